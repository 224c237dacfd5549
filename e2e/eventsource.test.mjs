// The npm `eventsource` package (the EventSource of node tools and chat front ends)
// against a real server: one left open after `done` reconnects once, with the last
// event's id, gets 204, and stops reconnecting (the SSE standard's rule for 204),
// where it used to reconnect every 2 s forever.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EventSource } from 'eventsource';
import { startServer, api, waitForRunEnd } from './lib.mjs';

let server;

before(async () => {
  server = await startServer({ delayMs: 1 });
});

after(async () => {
  await server?.stop();
});

test('an EventSource left open after done stops reconnecting', { timeout: 30000 }, async () => {
  const { status, body } = await api(server.url, '/api/run', {
    method: 'POST',
    body: JSON.stringify({ task: 'A short task', detach: true }),
  });
  assert.equal(status, 201);
  const snap = await waitForRunEnd(server.url, body.id);
  assert.equal(snap.status, 'completed');

  // Every request the EventSource makes, with the Last-Event-ID it sent and the status.
  const requests = [];
  const countingFetch = async (url, init) => {
    const res = await fetch(url, init);
    const headers = new Headers(init?.headers);
    requests.push({ lastEventId: headers.get('last-event-id'), status: res.status });
    return res;
  };
  const es = new EventSource(new URL(body.stream, server.url), { fetch: countingFetch });
  let doneId = null;
  es.addEventListener('done', (e) => {
    doneId = e.lastEventId;
  });
  // The source is closed for good: its error event with readyState CLOSED.
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`still reconnecting: ${JSON.stringify(requests)}`)), 20000);
    es.addEventListener('error', () => {
      if (es.readyState === EventSource.CLOSED) {
        clearTimeout(t);
        resolve();
      }
    });
  });
  es.close();
  assert.equal(doneId, String(snap.last_event_id), 'done came with the last id');
  assert.deepEqual(requests, [
    { lastEventId: null, status: 200 },
    { lastEventId: String(snap.last_event_id), status: 204 },
  ]);
});
