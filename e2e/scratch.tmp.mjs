import { startServer, launchBrowser, openPage, allowMissingCatalog, ARTIFACTS } from './lib.mjs';
const srv = await startServer({ delayMs: 3 });
const browser = await launchBrowser();
try {
  const { page, context } = await openPage(browser, srv.url, { viewport: {width:375,height:800}, allow: allowMissingCatalog });
  await page.fill('#task', 'Write a Python script and compare approaches for renaming photos by date');
  await page.press('#task', 'Control+Enter');
  await page.waitForSelector('body[data-run-state="completed"]', { timeout: 30000 });
  await page.waitForTimeout(300);
  const H = await page.evaluate(() => document.documentElement.scrollHeight);
  for (let y = 0, i = 0; y < H && i < 8; y += 800, i++) {
    await page.screenshot({ path: `${ARTIFACTS}/scratch-375-${i}.png`, clip: { x: 0, y, width: 375, height: Math.min(800, H - y) }, fullPage: true });
  }
  console.log(H);
  await context.close();
} finally { await browser.close(); await srv.stop(); }
