// The run's trace link (issue 24): with tracing on (spans go to a local sink answering
// 200) and MESH_TRACE_URL set, a finished run shows a "Trace" link built from the
// template and the run's trace_id, live from `done` and again from the snapshot after
// a reload; without MESH_TRACE_URL there is no link. The link helper's safety rules
// are checked in Node.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { startServer, launchBrowser, openPage, api, currentRunId, screenshot } from './lib.mjs';
import { traceLink } from '../assets/util.js';

const TEMPLATE = 'https://grafana.example/explore?left={"q":"{trace_id}"}&traceId={trace_id}';

let sink;
let sinkUrl;
let traced;
let untraced;
let browser;

before(async () => {
  // An OTLP/HTTP sink: takes every export and answers 200.
  sink = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end());
  });
  await new Promise((r) => sink.listen(0, '127.0.0.1', r));
  sinkUrl = `http://127.0.0.1:${sink.address().port}`;
  traced = await startServer({
    delayMs: 2,
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: sinkUrl, MESH_TRACE_URL: TEMPLATE },
  });
  untraced = await startServer({ delayMs: 2, env: { OTEL_EXPORTER_OTLP_ENDPOINT: sinkUrl } });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await traced?.stop();
  await untraced?.stop();
  await new Promise((r) => sink?.close(r));
});

/** Runs a short task from the task box to the end; returns the run's id. */
async function runFromTaskBox(page) {
  await page.locator('#task').fill('Compare two ways to rename photos by date');
  await page.keyboard.press('Control+Enter');
  await page.waitForSelector('body[data-run-state="completed"]', { timeout: 60000 });
  return currentRunId(page);
}

describe('the trace link', () => {
  test('a finished run links its trace, live and after a reload', { timeout: 120000 }, async () => {
    const { body: config } = await api(traced.url, '/api/config');
    assert.equal(config.trace_url, TEMPLATE);
    const { page, context } = await openPage(browser, traced.url);
    try {
      const id = await runFromTaskBox(page);
      const { body: snap } = await api(traced.url, `/api/runs/${id}`);
      assert.match(snap.trace_id, /^[0-9a-f]{32}$/);
      const expected = `https://grafana.example/explore?left={"q":"${snap.trace_id}"}&traceId=${snap.trace_id}`;
      const link = page.locator('#stat-trace');
      await link.waitFor({ state: 'visible' });
      assert.equal(await link.getAttribute('href'), new URL(expected).href);
      assert.equal(await link.getAttribute('target'), '_blank');
      assert.equal(await link.getAttribute('rel'), 'noopener noreferrer');
      await screenshot(page, 'trace-link-1280');

      // A reload builds the run from its snapshot: the link is there again.
      await page.reload();
      await page.waitForSelector('body[data-run-state="completed"]');
      await link.waitFor({ state: 'visible' });
      assert.equal(await link.getAttribute('href'), new URL(expected).href);
      assert.deepEqual(await page.problems(), []);
    } finally {
      await context.close();
    }
  });

  test('without MESH_TRACE_URL no link is shown', { timeout: 120000 }, async () => {
    const { body: config } = await api(untraced.url, '/api/config');
    assert.equal(config.trace_url, null);
    const { page, context } = await openPage(browser, untraced.url);
    try {
      const id = await runFromTaskBox(page);
      const { body: snap } = await api(untraced.url, `/api/runs/${id}`);
      assert.match(snap.trace_id, /^[0-9a-f]{32}$/, 'tracing is on; only the link is off');
      assert.equal(await page.locator('#stat-trace-item').isHidden(), true);
      assert.equal(await page.locator('#stat-trace').getAttribute('href'), null);
      assert.deepEqual(await page.problems(), []);
    } finally {
      await context.close();
    }
  });

  test('the link helper only builds http(s) links around a well-formed trace id', () => {
    const id = '4bf92f3577b34da6a3ce929d0e0e4736';
    assert.equal(traceLink('https://t.example/trace/{trace_id}', id), `https://t.example/trace/${id}`);
    assert.equal(traceLink('http://t.example/?id={trace_id}', id), `http://t.example/?id=${id}`);
    assert.equal(traceLink('javascript:alert(1)//{trace_id}', id), null);
    assert.equal(traceLink('data:text/html,{trace_id}', id), null);
    assert.equal(traceLink('https://t.example/', id), null, 'no {trace_id} in the template');
    assert.equal(traceLink('https://t.example/{trace_id}', '"><img src=x>'), null);
    assert.equal(traceLink('https://t.example/{trace_id}', `${id}/../x`), null);
    assert.equal(traceLink('https://t.example/{trace_id}', null), null);
    assert.equal(traceLink(null, id), null);
    assert.equal(traceLink('not a url {trace_id}', id), null);
  });
});
