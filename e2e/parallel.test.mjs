// The parallel schedule on the page: two cards stream at once, the plan shows its
// stages, and after a reload in the middle each card's text is exactly the snapshot's.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, openPage, api, referenceRender, waitForRunEnd, currentRunId } from './lib.mjs';

let server;
let browser;

before(async () => {
  server = await startServer({ delayMs: 25, env: { MESH_SCHEDULE: 'parallel', MESH_DISCONNECT_GRACE_SECS: '60' } });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

describe('parallel specialists', () => {
  test('two cards stream at once and survive a reload exactly', { timeout: 90000 }, async () => {
    const { page, context } = await openPage(browser, server.url);
    try {
      // researcher always; coder for code; analyst for "explain why": both after the researcher.
      await page.fill('#task', 'Write a Python script and explain why it works');
      await page.keyboard.press('Control+Enter');
      await page.waitForFunction(() => document.querySelectorAll('.agent-card.kind-specialist[data-state="running"]').length >= 2);
      const running = await page.$$eval('.agent-card.kind-specialist[data-state="running"]', (els) => els.map((e) => e.dataset.agent).sort());
      assert.deepEqual(running, ['analyst', 'coder']);
      assert.match(await page.locator('.plan-stages').textContent(), /Stage 1\s+Researcher.*Stage 2\s+Coder · Analyst/s);
      const id = await currentRunId(page);
      await page.reload();
      await page.waitForSelector('body[data-ready="true"]');
      const snap = await waitForRunEnd(server.url, id);
      assert.equal(snap.status, 'completed');
      await page.waitForFunction(() => document.querySelector('#run-badge')?.textContent === 'completed');
      for (const a of snap.agents.filter((x) => x.kind === 'specialist')) {
        const card = page.locator(`.agent-card[data-agent="${a.name}"]`);
        assert.equal(await card.locator('.agent-output').innerHTML(), await referenceRender(page, a.output), `${a.name} output`);
      }
      assert.equal(await page.locator('#deliverable').innerHTML(), await referenceRender(page, snap.output));
      assert.deepEqual(await page.problems(), []);
    } finally {
      await context.close();
    }
  });
});
