// Follow-ups from the page: "Ask a follow-up" under a finished deliverable starts a run
// with `parent`, the earlier turn reaches its prompts, the thread is shown and links
// back, and recent runs group the follow-up under the run it continues.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, openPage, api, screenshot, currentRunId } from './lib.mjs';

let server;
let browser;

before(async () => {
  server = await startServer({ delayMs: 2 });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const FIRST = 'Explain why sourdough needs a starter';
const SECOND = 'And how do I keep one alive on holiday?';

describe('conversations', () => {
  test('a follow-up continues the finished run, shows its thread and groups in recent runs', { timeout: 90000 }, async () => {
    const { page, context } = await openPage(browser, server.url);
    try {
      await page.fill('#task', FIRST);
      await page.keyboard.press('Control+Enter');
      // No follow-up box while the run is going.
      await page.waitForSelector('body[data-run-state="running"]');
      assert.equal(await page.locator('#follow-up-form').isVisible(), false);
      await page.waitForSelector('body[data-run-state="completed"]', { timeout: 60000 });
      const first = await currentRunId(page);
      await page.waitForSelector('#follow-up-form:not([hidden])');
      assert.equal(await page.locator('#thread').isVisible(), false, 'a first question has no thread to show');

      // An empty follow-up never leaves the page.
      await page.locator('#follow-up-button').click();
      assert.match(await page.locator('#follow-up-error').textContent(), /Write the follow-up/);

      await page.fill('#follow-up', SECOND);
      const posted = page.waitForRequest((r) => r.url().endsWith('/api/run') && r.method() === 'POST');
      await page.locator('#follow-up-button').click();
      const body = JSON.parse((await posted).postData());
      assert.deepEqual(body, { task: SECOND, parent: first });

      await page.waitForFunction((f) => location.hash.startsWith('#run/') && !location.hash.endsWith(f), first);
      const second = await currentRunId(page);
      await page.waitForSelector('body[data-run-state="completed"]', { timeout: 60000 });
      // The offline writer quotes the earlier turn it was given.
      const shown = await page.locator('#deliverable').textContent();
      assert.match(shown, /Earlier turns received/);
      assert.ok(shown.includes(`asked "${FIRST}"`), shown);
      const { body: snap } = await api(server.url, `/api/runs/${second}`);
      assert.equal(snap.parent, first);

      // The thread: the first question as a link, this one as the current item.
      await page.waitForSelector('#thread:not([hidden])');
      const items = page.locator('#thread-list .thread-item');
      assert.equal(await items.count(), 2);
      assert.equal(await items.nth(0).textContent(), FIRST);
      assert.equal(await items.nth(1).getAttribute('aria-current'), 'true');
      assert.equal(await items.nth(1).textContent(), SECOND);
      await screenshot(page, 'follow-up-1280');

      // Recent runs: the follow-up right after its parent, marked as one.
      await page.locator('#open-history').click();
      await page.waitForSelector(`#history-list .run-item[data-run-id="${second}"]`);
      const ids = await page.locator('#history-list .run-item').evaluateAll((els) => els.map((e) => e.dataset.runId));
      assert.deepEqual(ids, [first, second]);
      const follow = page.locator(`#history-list .run-item[data-run-id="${second}"]`);
      assert.match(await follow.getAttribute('class'), /run-item-follow/);
      assert.equal(await page.locator(`#history-list .run-item[data-run-id="${first}"]`).getAttribute('class'), 'run-item');
      await page.keyboard.press('Escape');

      // The thread's link opens the earlier run.
      await page.locator('#thread-list .thread-link').click();
      await page.waitForFunction((f) => location.hash === `#run/${f}`, first);
      assert.equal(await page.locator('#run-task').textContent(), FIRST);
      assert.deepEqual(await page.problems(), []);
    } finally {
      await context.close();
    }
  });
});
