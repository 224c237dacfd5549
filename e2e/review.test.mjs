// Plan review on the page: the "Review the plan" setting (remembered across a reload and
// sent with each run), the editable plan of a paused run (team chips, each task, who
// works after whom) with Approve and Cancel, the approved plan (the second `plan`
// event, source review) shown afterwards, and model text kept as text.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, openPage, api, screenshot, currentRunId, waitForRunEnd } from './lib.mjs';

let server;
let browser;

before(async () => {
  server = await startServer({ delayMs: 5 });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function turnReviewOn(page) {
  await page.locator('#open-settings').click();
  await page.waitForSelector('#settings-dialog[open]');
  await page.locator('#review-plan').check();
  await page.locator('#settings-dialog .drawer-actions [data-close]').click();
  await page.waitForFunction(() => !document.getElementById('settings-dialog').open);
}

async function startPausedRun(page, task) {
  const posted = page.waitForRequest((r) => /\/api\/run$/.test(r.url()) && r.method() === 'POST');
  await page.fill('#task', task);
  await page.keyboard.press('Control+Enter');
  const body = JSON.parse((await posted).postData());
  assert.equal(body.review, true, 'the run asks for review');
  await page.waitForSelector('#plan .review', { timeout: 30000 });
  return currentRunId(page);
}

describe('plan review', () => {
  test('the setting is remembered; a paused plan is approved unchanged and the approved plan shows', { timeout: 90000 }, async () => {
    const { page, context } = await openPage(browser, server.url);
    try {
      await turnReviewOn(page);
      await page.reload();
      await page.locator('#open-settings').click();
      await page.waitForSelector('#settings-dialog[open]');
      assert.equal(await page.locator('#review-plan').isChecked(), true, 'remembered across a reload');
      await page.locator('#settings-dialog .drawer-actions [data-close]').click();
      await page.waitForFunction(() => !document.getElementById('settings-dialog').open);

      const id = await startPausedRun(page, 'Compare B-trees and LSM trees for a write-heavy store');
      const { body: paused } = await api(server.url, `/api/runs/${id}`);
      assert.equal(paused.awaiting_review, true);
      assert.match(await page.locator('#run-live').textContent(), /review the plan/);
      // The editor starts from the orchestrator's plan: its team pressed, one task box each.
      for (const name of paused.plan.agents) {
        assert.equal(await page.locator(`.review-chip[data-agent="${name}"]`).getAttribute('aria-pressed'), 'true', name);
        assert.equal(await page.locator(`textarea.review-task[data-agent="${name}"]`).count(), 1, name);
      }
      await screenshot(page, 'review-paused-1280');

      const approved = page.waitForResponse((r) => /\/api\/runs\/[0-9a-f]+\/plan$/.test(r.url()));
      await page.locator('.review [data-action="approve"]').click();
      const res = await approved;
      assert.equal(res.status(), 200);
      assert.deepEqual(JSON.parse(res.request().postData()).agents, paused.plan.agents);
      await page.waitForSelector('body[data-run-state="completed"]', { timeout: 30000 });
      assert.match(await page.locator('#plan .plan-source').textContent(), /approved by your review/);
      assert.equal(await page.locator('#plan .review').count(), 0, 'the editor is gone');
      const { body: snap } = await api(server.url, `/api/runs/${id}`);
      assert.equal(snap.plan.source, 'review');
      assert.deepEqual(snap.plan.agents, paused.plan.agents);
      assert.deepEqual(await page.problems(), []);
    } finally {
      await context.close();
    }
  });

  test('a task edited and a member removed are what runs; model text stays text', { timeout: 90000 }, async () => {
    const { page, context } = await openPage(browser, server.url);
    try {
      await turnReviewOn(page);
      const id = await startPausedRun(page, 'Write a Python script that compares two CSV files');
      const { body: paused } = await api(server.url, `/api/runs/${id}`);
      assert.ok(paused.plan.agents.length >= 2, `a team of two or more: ${paused.plan.agents}`);
      const [kept, removed] = paused.plan.agents;
      const edited = '<img src=x onerror="window.__pwned=1"> EDITED: only the happy path';
      await page.locator(`textarea.review-task[data-agent="${kept}"]`).fill(edited);
      await page.locator(`.review-chip[data-agent="${removed}"]`).click();
      assert.equal(await page.locator(`.review-chip[data-agent="${removed}"]`).getAttribute('aria-pressed'), 'false');
      assert.equal(await page.locator(`textarea.review-task[data-agent="${removed}"]`).count(), 0);

      const approved = page.waitForResponse((r) => /\/api\/runs\/[0-9a-f]+\/plan$/.test(r.url()));
      await page.locator('.review [data-action="approve"]').click();
      assert.equal((await approved).status(), 200);
      await page.waitForSelector('body[data-run-state="completed"]', { timeout: 30000 });
      const snap = await waitForRunEnd(server.url, id);
      assert.equal(snap.plan.source, 'review');
      assert.ok(!snap.plan.agents.includes(removed), 'removed from the team');
      assert.equal(snap.plan.tasks[kept], edited);
      // The second plan event reached the page: the card shows the edited brief, as text.
      const sub = page.locator(`.agent-card[data-agent="${kept}"] .agent-sub`);
      assert.match(await sub.textContent(), /EDITED: only the happy path/);
      assert.match(await sub.textContent(), /<img src=x/);
      assert.equal(await page.locator('.agent-card img[src="x"]').count(), 0);
      assert.equal(await page.evaluate(() => window.__pwned), undefined);
      assert.equal(await page.locator(`.agent-card[data-agent="${removed}"] .badge`).textContent(), 'skipped');
      assert.deepEqual(await page.problems(), []);
    } finally {
      await context.close();
    }
  });

  test('Cancel on a paused plan ends the run cancelled', { timeout: 60000 }, async () => {
    const { page, context } = await openPage(browser, server.url);
    try {
      await turnReviewOn(page);
      const id = await startPausedRun(page, 'Summarise the CAP theorem');
      await page.locator('.review [data-action="cancel"]').click();
      await page.waitForSelector('body[data-run-state="cancelled"]', { timeout: 10000 });
      const snap = await waitForRunEnd(server.url, id);
      assert.equal(snap.status, 'cancelled');
      assert.equal(await page.locator('#plan .review').count(), 0);
      assert.deepEqual(await page.problems(), []);
    } finally {
      await context.close();
    }
  });
});
