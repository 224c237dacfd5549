// A provider that reports no token counts (llama-cpp-python sends no usage in streams):
// the run's and each agent's usage are null in the snapshot, and the page says
// "not reported" where it used to say "0 in · 0 out". The provider is a small local
// OpenAI-compatible mock speaking the real SSE wire.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { startServer, launchBrowser, openPage, api, waitForRunEnd } from './lib.mjs';

let upstream;
let server;
let browser;

/** Answers every chat call with "<agent> answer" and a finish reason, never usage. */
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
        const chunk = (delta, finish = null) =>
          `data: ${JSON.stringify({ choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.end(chunk({ role: 'assistant', content: '' }) + chunk({ content: 'An answer.' }) + chunk({}, 'stop') + 'data: [DONE]\n\n');
      });
    });
    srv.listen(0, '127.0.0.1', () => resolve(srv));
  });
}

before(async () => {
  upstream = await startUpstream();
  const { port } = upstream.address();
  server = await startServer({ env: { CUSTOM_BASE_URL: `http://127.0.0.1:${port}/v1`, MESH_PROVIDER: 'custom' } });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await new Promise((r) => upstream?.close(r));
});

test('usage a provider did not report is null and shown as not reported', { timeout: 60000 }, async () => {
  const { status, body } = await api(server.url, '/api/run', {
    method: 'POST',
    body: JSON.stringify({ task: 'A task', agents: ['researcher'], detach: true }),
  });
  assert.equal(status, 201);
  const snap = await waitForRunEnd(server.url, body.id);
  assert.equal(snap.status, 'completed');
  assert.equal(snap.usage, null);
  for (const a of snap.agents.filter((a) => a.state === 'done')) assert.equal(a.usage, null, a.name);

  const { page, context } = await openPage(browser, `${server.url}#run/${body.id}`);
  try {
    await page.waitForSelector('body[data-run-state="completed"]');
    assert.equal(await page.locator('#stat-tokens').textContent(), 'not reported');
    const meta = await page.locator('.agent-card[data-agent="researcher"] .agent-meta').textContent();
    assert.match(meta, /^Tokensnot reported/);
    assert.doesNotMatch(await page.locator('body').textContent(), /0 in · 0 out/);
    assert.deepEqual(await page.problems(), []);
  } finally {
    await context.close();
  }
});
