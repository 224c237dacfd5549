// Resilience: a reload in the middle of a run, a connection cut in the middle of an
// event, a run that ends while the page is cut off, and reopening runs from the
// recent-runs list. Every case ends by comparing what the page shows with the
// server's snapshot, exactly: no duplicated and no missing text.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, openPage, api, screenshot, currentRunId, referenceRender, waitForRunEnd } from './lib.mjs';

let server;
let browser;

before(async () => {
  // Slow enough to act in the middle of a run; a generous grace so a cut-off page
  // does not get its run cancelled while the test holds the connection down.
  server = await startServer({ delayMs: 25, env: { MESH_DISCONNECT_GRACE_SECS: '60' } });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function assertMatchesSnapshot(page, id) {
  const { body: snap } = await api(server.url, `/api/runs/${id}`);
  assert.notEqual(snap.status, 'running');
  for (const agent of snap.agents) {
    const card = page.locator(`.agent-card[data-agent="${agent.name}"]`);
    assert.equal(await card.getAttribute('data-state'), agent.state === 'failed' && /^cancelled/.test(agent.error || '') ? 'cancelled' : agent.state, `${agent.name} state`);
    if (agent.kind === 'planner') {
      assert.equal(await card.locator('.agent-output').textContent(), agent.output, `${agent.name} text`);
    } else if (agent.kind === 'writer') {
      assert.equal(await card.locator('.raw-md').textContent(), agent.output, 'writer raw text');
    } else if (agent.state !== 'skipped') {
      assert.equal(await card.locator('.agent-output').innerHTML(), await referenceRender(page, agent.output), `${agent.name} output`);
    }
  }
  assert.equal(await page.locator('#deliverable').innerHTML(), await referenceRender(page, snap.output), 'deliverable');
  assert.equal(await page.locator('#run-badge').textContent(), snap.status);
  return snap;
}

/**
 * Reads the real event stream from the server until `enough(events)` says so, then
 * returns the text of those whole events plus the first half of the next one, as a
 * connection that dropped in the middle of an event would have delivered it.
 */
async function cutStream(url, enough) {
  const controller = new AbortController();
  const res = await fetch(url, { signal: controller.signal, headers: { accept: 'text/event-stream' } });
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let text = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error('the stream ended before the cut point');
      text += value;
      const blocks = text.split('\n\n');
      const whole = blocks.slice(0, -1);
      const events = whole
        .map((b) => ({ id: /^id: (\d+)$/m.exec(b)?.[1], type: /^event: (.+)$/m.exec(b)?.[1], data: /^data: (.*)$/m.exec(b)?.[1] }))
        .filter((e) => e.id);
      if (events.length > 0 && enough(events) && blocks[blocks.length - 1] === '' && whole.length < blocks.length) {
        const lastId = Number(events[events.length - 1].id);
        // Half of a next event, cut inside its JSON: the page must drop it.
        const partial = `id: ${lastId + 1}\nevent: token\ndata: {"agent":"wri`;
        return { body: `${whole.join('\n\n')}\n\n${partial}`, lastId };
      }
    }
  } finally {
    controller.abort();
  }
}

describe('resuming without duplicated or missing text', () => {
  test('a reload in the middle of the writer re-attaches to the same run', { timeout: 90000 }, async () => {
    const { page, context } = await openPage(browser, server.url);
    try {
      await page.fill('#task', 'Explain why the sky is blue');
      await page.keyboard.press('Tab');
      await page.locator('#run-button').click();
      await page.waitForFunction(() => (document.querySelector('.agent-card[data-agent="writer"] .raw-md')?.textContent.length || 0) > 40, null, { timeout: 60000 });
      const id = await currentRunId(page);
      const streamRequests = [];
      page.on('request', (r) => {
        if (r.url().includes('/api/stream/')) streamRequests.push(r.headers()['last-event-id'] || null);
      });
      await page.reload();
      await page.waitForSelector('body[data-ready="true"]');
      assert.equal(await currentRunId(page), id, 'the same run is shown after the reload');
      await page.waitForSelector('body[data-run-state="completed"]', { timeout: 60000 });
      await assertMatchesSnapshot(page, id);
      assert.ok(streamRequests.length >= 1, 'the page re-attached to the stream');
      assert.ok(Number(streamRequests[0]) > 0, `re-attached after the snapshot (Last-Event-ID ${streamRequests[0]})`);
      assert.deepEqual(await page.problems(), []);
    } finally {
      await context.close();
    }
  });

  test('a connection cut in the middle of an event resumes from the last whole event', { timeout: 90000 }, async () => {
    const { page, context } = await openPage(browser, server.url);
    try {
      const resumedWith = [];
      let calls = 0;
      let cutAt = null;
      await page.route('**/api/stream/**', async (route) => {
        calls++;
        if (calls === 1) {
          // Cut once the writer has streamed a few words.
          const cut = await cutStream(route.request().url(), (events) => events.filter((e) => e.type === 'token' && e.data.includes('"writer"')).length >= 5);
          cutAt = cut.lastId;
          await route.fulfill({ status: 200, headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' }, body: cut.body });
          return;
        }
        resumedWith.push(route.request().headers()['last-event-id']);
        await route.continue();
      });
      await page.fill('#task', 'Write a bash script that rotates logs');
      await page.locator('#run-button').click();
      await page.waitForSelector('body[data-run-state="completed"]', { timeout: 60000 });
      const id = await currentRunId(page);
      assert.ok(cutAt > 0);
      assert.equal(resumedWith[0], String(cutAt), 'resumed right after the last whole event');
      await assertMatchesSnapshot(page, id);
      assert.deepEqual(await page.problems(), []);
    } finally {
      await context.close();
    }
  });

  test('a run that ends while the page is cut off shows its final state, with "reconnecting…" meanwhile', { timeout: 90000 }, async () => {
    // Aborted requests are logged by Chromium as failed resources: expected here.
    const { page, context } = await openPage(browser, server.url, { allow: (t, u) => (/Failed to load resource/.test(t) && /\/api\/stream\//.test(u)) });
    try {
      let calls = 0;
      let blocked = true;
      let cutAt = null;
      await page.route('**/api/stream/**', async (route) => {
        calls++;
        if (calls === 1) {
          const cut = await cutStream(route.request().url(), (events) => events.some((e) => e.type === 'plan'));
          cutAt = cut.lastId;
          await route.fulfill({ status: 200, headers: { 'content-type': 'text/event-stream' }, body: cut.body });
          return;
        }
        if (blocked) {
          await route.abort('connectionfailed');
          return;
        }
        await route.continue();
      });
      await page.fill('#task', 'Compare sourdough and yeast bread');
      await page.locator('#run-button').click();
      await page.waitForSelector('#conn-status:not([hidden])', { timeout: 20000 });
      assert.equal((await page.locator('#conn-status').textContent()).trim(), 'reconnecting…');
      assert.equal(await page.locator('#run-badge').textContent(), 'running');
      await screenshot(page, 'reconnecting-1280');
      const id = await currentRunId(page);
      const finished = await waitForRunEnd(server.url, id, 60000);
      assert.equal(finished.status, 'completed', 'the run went on without the page');
      assert.ok(finished.last_event_id > cutAt + 100, 'much happened while away');
      blocked = false;
      // The network is back: browsers say so with an `online` event.
      await page.evaluate(() => window.dispatchEvent(new Event('online')));
      await page.waitForSelector('body[data-run-state="completed"]', { timeout: 30000 });
      assert.equal(await page.locator('#conn-status').isHidden(), true);
      await assertMatchesSnapshot(page, id);
    } finally {
      await context.close();
    }
  });

  test('recent runs reopen a finished run from its snapshot and re-attach to a running one', { timeout: 90000 }, async () => {
    // A finished run and a running one, both started without the page.
    const done = await api(server.url, '/api/run', { method: 'POST', body: JSON.stringify({ task: 'Tell me about the history of espresso', detach: true }) });
    assert.equal(done.status, 201);
    await waitForRunEnd(server.url, done.body.id, 60000);
    const live = await api(server.url, '/api/run', { method: 'POST', body: JSON.stringify({ task: 'Implement a rate limiter in Rust and explain why it works', detach: true }) });
    assert.equal(live.status, 201);

    const { page, context } = await openPage(browser, server.url);
    try {
      // A fresh browser shows the welcome page with the recent runs beside it.
      await page.waitForSelector(`#recent-inline-list .run-item[data-run-id="${done.body.id}"]`);
      await screenshot(page, 'welcome-with-recent-1280');

      await page.locator('#open-history').click();
      await page.waitForSelector('#history-dialog[open]');
      await page.waitForSelector(`#history-list .run-item[data-run-id="${live.body.id}"]`);
      await screenshot(page, 'history-1280', { fullPage: false });
      await page.locator(`#history-list .run-item[data-run-id="${done.body.id}"]`).click();
      await page.waitForSelector('body[data-run-state="completed"]');
      assert.equal(await currentRunId(page), done.body.id);
      await assertMatchesSnapshot(page, done.body.id);
      assert.equal(await page.locator('#plan[data-state="ready"] .plan-reasoning').count(), 1, 'the plan is shown');

      await page.locator('#open-history').click();
      await page.locator(`#history-list .run-item[data-run-id="${live.body.id}"]`).click();
      await page.waitForFunction((rid) => location.hash === `#run/${rid}`, live.body.id);
      await page.waitForSelector('body[data-run-state="completed"]', { timeout: 60000 });
      await assertMatchesSnapshot(page, live.body.id);
      assert.deepEqual(await page.problems(), []);
    } finally {
      await context.close();
    }
  });

  test('a run that is gone from the server is reported, not shown half-loaded', { timeout: 30000 }, async () => {
    const { page, context } = await openPage(browser, server.url, { allow: (t, u) => (/Failed to load resource/.test(t) && /\/api\/runs\/0{32}/.test(u)) });
    try {
      await page.evaluate(() => {
        location.hash = `#run/${'0'.repeat(32)}`;
      });
      await page.waitForSelector('#form-error:not([hidden])');
      assert.match(await page.locator('#form-error').textContent(), /no longer on the server/);
      assert.equal(await page.locator('#run-view').isHidden(), true);
      assert.deepEqual(await page.problems(), []);
    } finally {
      await context.close();
    }
  });
});
