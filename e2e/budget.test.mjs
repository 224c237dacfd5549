// A run with a token budget (MESH_RUN_BUDGET_TOKENS) started from the task box: the
// run header shows spend against the budget live while a specialist streams, then
// "budget reached" once the cap stopped it; the stopped agent's card says why; a
// reopened run shows the same from its snapshot. The provider is a small local
// OpenAI-compatible mock whose specialists would stream without end.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { startServer, launchBrowser, openPage, api, waitForRunEnd, currentRunId } from './lib.mjs';

let upstream;
let server;
let browser;

const chunk = (delta, finish = null) => `data: ${JSON.stringify({ choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;

/** The orchestrator picks researcher and analyst; they stream 40 characters every 15 ms until stopped. */
function startUpstream() {
  return new Promise((resolve) => {
    const srv = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        if (req.method !== 'POST') {
          res.writeHead(404, { 'content-type': 'application/json' });
          res.end('{"error":{"message":"no model list"}}');
          return;
        }
        const system = JSON.parse(body).messages?.[0]?.content || '';
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        if (system.startsWith('You are the Orchestrator')) {
          res.end(chunk({ content: '{"agents":["researcher","analyst"]}' }) + chunk({}, 'stop') + 'data: [DONE]\n\n');
          return;
        }
        if (system.startsWith('You are the Writer')) {
          res.end(chunk({ content: 'The <b>deliverable</b>.' }) + chunk({}, 'stop') + 'data: [DONE]\n\n');
          return;
        }
        let n = 0;
        const timer = setInterval(() => {
          if (n++ > 2000) {
            clearInterval(timer);
            res.end('data: [DONE]\n\n');
            return;
          }
          res.write(chunk({ content: 'A specialist writes forty characters… ' }));
        }, 15);
        res.on('close', () => clearInterval(timer));
      });
    });
    srv.listen(0, '127.0.0.1', () => resolve(srv));
  });
}

before(async () => {
  upstream = await startUpstream();
  const { port } = upstream.address();
  server = await startServer({
    env: { CUSTOM_BASE_URL: `http://127.0.0.1:${port}/v1`, MESH_PROVIDER: 'custom', MESH_RUN_BUDGET_TOKENS: '11000' },
  });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  upstream?.closeAllConnections?.();
  await new Promise((r) => upstream?.close(r));
});

test('the run header shows spend against the budget live, then that the budget was reached', { timeout: 90000 }, async () => {
  const { page, context } = await openPage(browser, server.url);
  try {
    await page.fill('#task', 'Explain B-trees');
    await page.locator('#run-button').click();
    // Live: the researcher streams and the budget box counts it (an estimate, "≈").
    await page.waitForSelector('#stat-budget-box:not([hidden])', { timeout: 30000 });
    await page.waitForFunction(() => /^≈[\d,]+ \/ 11,000 tokens$/.test(document.getElementById('stat-budget').textContent), null, { timeout: 30000 });
    const seen = [];
    for (let i = 0; i < 2; i++) {
      await page.waitForFunction((prev) => document.getElementById('stat-budget').textContent !== prev, seen[seen.length - 1] ?? '', { timeout: 30000 });
      seen.push(await page.locator('#stat-budget').textContent());
    }
    assert.ok(seen.length === 2, 'the spend moved while streaming');

    await page.waitForSelector('body[data-run-state="completed"]', { timeout: 60000 });
    const id = await currentRunId(page);
    const snap = await waitForRunEnd(server.url, id);
    assert.equal(snap.budget.exhausted, true);
    const expected = `${snap.budget.spent_tokens.toLocaleString('en-US')} / 11,000 tokens · budget reached`;
    await page.waitForFunction((text) => document.getElementById('stat-budget').textContent === text, expected);
    assert.match(await page.locator('#stat-budget-box').getAttribute('class'), /is-exhausted/);
    // The stopped agent's card says why; the analyst was skipped; the writer wrote.
    const researcher = page.locator('.agent-card[data-agent="researcher"]');
    assert.match(await researcher.textContent(), /budget was reached/);
    assert.equal(await page.locator('.agent-card[data-agent="analyst"]').getAttribute('data-state'), 'skipped');
    // Model text stays text: no markup from the writer reaches the page.
    assert.equal(await page.locator('#deliverable b').count(), 0);
    assert.deepEqual(await page.problems(), []);

    // Reopened from the snapshot, the same figure.
    const reopened = await openPage(browser, `${server.url}#run/${id}`);
    try {
      await reopened.page.waitForSelector('body[data-run-state="completed"]');
      assert.equal(await reopened.page.locator('#stat-budget').textContent(), expected);
      assert.deepEqual(await reopened.page.problems(), []);
    } finally {
      await reopened.context.close();
    }
  } finally {
    await context.close();
  }
});

test('a cap too small for the writer is refused naming budget.tokens; the page shows no budget box before a run', { timeout: 60000 }, async () => {
  const { status, body } = await api(server.url, '/api/run', {
    method: 'POST',
    body: JSON.stringify({ task: 'A task', agents: ['researcher'], detach: true, budget: { tokens: 10 } }),
  });
  assert.equal(status, 400);
  assert.equal(body.error.field, 'budget.tokens');
  const { page, context } = await openPage(browser, server.url);
  try {
    assert.equal(await page.locator('#stat-budget-box').isHidden(), true);
    assert.deepEqual(await page.problems(), []);
  } finally {
    await context.close();
  }
});
