// Cancelling a run from the page, and what the page says when the server refuses one.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, openPage, api, screenshot, currentRunId } from './lib.mjs';

let server;
let browser;

before(async () => {
  server = await startServer({ delayMs: 20 });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

describe('cancel and refusals', () => {
  test('Cancel stops the run: the working agent shows cancelled, the rest never start', { timeout: 60000 }, async () => {
    const { page, context } = await openPage(browser, server.url);
    try {
      await page.fill('#task', 'Write a Python script that compares two CSV files and explain why');
      await page.keyboard.press('Control+Enter');
      await page.waitForSelector('.agent-card[data-agent="researcher"][data-state="running"]', { timeout: 30000 });
      assert.equal(await page.locator('#cancel-run').isEnabled(), true);
      const cancelPosted = page.waitForRequest((r) => /\/api\/runs\/[0-9a-f]+\/cancel$/.test(r.url()) && r.method() === 'POST');
      await page.locator('#cancel-run').click();
      await cancelPosted;
      await page.waitForSelector('body[data-run-state="cancelled"]', { timeout: 10000 });

      const id = await currentRunId(page);
      const { body: snap } = await api(server.url, `/api/runs/${id}`);
      assert.equal(snap.status, 'cancelled');

      assert.equal(await page.locator('#run-badge').textContent(), 'cancelled');
      assert.match(await page.locator('#run-live').textContent(), /^Cancelled/);
      const researcher = page.locator('.agent-card[data-agent="researcher"]');
      assert.equal(await researcher.locator('.badge').textContent(), 'cancelled');
      assert.match(await researcher.locator('.agent-error').textContent(), /Stopped because the run was cancelled/);
      for (const name of ['analyst', 'writer']) {
        assert.equal(await page.locator(`.agent-card[data-agent="${name}"] .badge`).textContent(), 'skipped', `${name} never ran`);
      }
      assert.equal(await page.locator('.agent-card[data-agent="orchestrator"] .badge').textContent(), 'done');
      // The page agrees with the server on every agent.
      for (const a of snap.agents) {
        const shown = await page.locator(`.agent-card[data-agent="${a.name}"]`).getAttribute('data-state');
        assert.equal(shown, a.state === 'failed' && /^cancelled/.test(a.error || '') ? 'cancelled' : a.state, a.name);
      }
      assert.equal(await page.locator('#cancel-run').isDisabled(), true);
      assert.match(await page.locator('#doc-empty').textContent(), /ended before the writer/);
      await screenshot(page, 'cancelled-1280');
      assert.deepEqual(await page.problems(), []);
    } finally {
      await context.close();
    }
  });

  test('a refused run shows the server’s own sentence', { timeout: 30000 }, async () => {
    const { page, context } = await openPage(browser, server.url, { allow: (t, u) => (/Failed to load resource/.test(t) && /\/api\/run$/.test(u)) });
    try {
      // An empty task never leaves the page.
      await page.locator('#run-button').click();
      assert.match(await page.locator('#form-error').textContent(), /Write a task/);

      await page.route('**/api/run', (route) =>
        route.fulfill({
          status: 429,
          headers: { 'content-type': 'application/json', 'retry-after': '5' },
          body: JSON.stringify({ error: { code: 'too_many_runs', message: '64 runs are already going; try again in a few seconds.' } }),
        }),
      );
      await page.fill('#task', 'Anything at all');
      await page.locator('#run-button').click();
      await page.waitForSelector('#form-error:not([hidden])');
      assert.equal(await page.locator('#form-error').textContent(), '64 runs are already going; try again in a few seconds.');
      assert.equal(await page.locator('#run-button').isEnabled(), true, 'ready to try again');
      assert.deepEqual(await page.problems(), []);
    } finally {
      await context.close();
    }
  });
});
