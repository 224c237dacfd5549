// Tool calls on the page (issue 21). The first group is page-rendering tests against
// recorded events: the real server serves the page and the roster, and the run's
// stream, snapshot and GET /api/tools are answered with events whose shapes are the
// issue's (`tool_call` {agent, call_id, server, tool, arguments}, `tool_result`
// {agent, call_id, ok, content, elapsed_ms}, snapshot agents' `tools`).

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, openPage, screenshot, api } from './lib.mjs';

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

const PAYLOAD = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>';
const LONG = 'x'.repeat(600);
const RESULT = `Sky: Rayleigh scattering ${PAYLOAD}\nline two ${LONG}`;

/** A run whose researcher says a few words, calls a tool, says more, calls a failing one. */
function recordedRun() {
  return [
    ['status', { agent: 'orchestrator', state: 'planning', detail: 'choosing the team' }],
    ['stream_start', { agent: 'orchestrator', model: 'offline', provider: 'offline' }],
    ['token', { agent: 'orchestrator', text: '{"agents":["researcher"]}' }],
    ['stream_end', { agent: 'orchestrator', finish_reason: 'stop', chars: 25, usage: { input_tokens: 5, output_tokens: 5 }, cost_usd: 0, ttft_ms: 1, elapsed_ms: 10 }],
    ['plan', { agents: ['researcher'], reasoning: '', tasks: {}, source: 'orchestrator', dropped: [] }],
    ['stream_start', { agent: 'researcher', model: 'offline', provider: 'offline' }],
    ['token', { agent: 'researcher', text: 'Let me look ' }],
    ['token', { agent: 'researcher', text: 'that up.' }],
    ['tool_call', { agent: 'researcher', call_id: 'call_1', server: 'everything', tool: 'echo', arguments: { message: `why blue ${PAYLOAD} ${LONG}` } }],
    // (8 events up to here: the first connection of the live test ends after the call)
    ['tool_result', { agent: 'researcher', call_id: 'call_1', ok: true, content: RESULT, elapsed_ms: 42 }],
    ['token', { agent: 'researcher', text: 'Found it.' }],
    ['tool_call', { agent: 'researcher', call_id: 'call_2', server: 'everything', tool: 'get-sum', arguments: { a: 1, b: 'two' } }],
    ['tool_result', { agent: 'researcher', call_id: 'call_2', ok: false, content: 'MCP error -32602: b must be a number', elapsed_ms: 3 }],
    ['token', { agent: 'researcher', text: ' Done.' }],
    ['stream_end', { agent: 'researcher', finish_reason: 'stop', chars: 30, usage: { input_tokens: 10, output_tokens: 6 }, cost_usd: 0, ttft_ms: 1, elapsed_ms: 90 }],
    ['stream_start', { agent: 'writer', model: 'offline', provider: 'offline' }],
    ['token', { agent: 'writer', text: 'The sky is blue.' }],
    ['stream_end', { agent: 'writer', finish_reason: 'stop', chars: 16, usage: { input_tokens: 20, output_tokens: 4 }, cost_usd: 0, ttft_ms: 1, elapsed_ms: 20 }],
    ['done', { status: 'completed', output: 'The sky is blue.', usage: { input_tokens: 35, output_tokens: 15 }, cost_usd: 0, elapsed_ms: 200 }],
  ];
}

const frame = (run, list, from = 0) =>
  `retry: 2000\n\nevent: connection\ndata: {"run_id":"${run}","resumed_from":null}\n\n` +
  list
    .map(([type, data], i) => [i + 1, type, data])
    .filter(([id]) => id > from)
    .map(([id, type, data]) => `id: ${id}\nevent: ${type}\ndata: ${JSON.stringify(data)}\n\n`)
    .join('');

/** The page's researcher card: each tool box's call id, state and text, in order. */
function toolBoxes(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll('.agent-card[data-agent="researcher"] .tool-call')].map((el) => ({
      id: el.dataset.callId,
      state: el.dataset.state,
      name: el.querySelector('.tool-name').textContent,
      args: el.querySelector('.tool-args').textContent,
      status: el.querySelector('.tool-status').textContent,
      time: el.querySelector('.tool-time').textContent,
      result: el.querySelector('.tool-content').textContent,
      resultShown: !el.querySelector('.tool-details').hidden,
    })),
  );
}

/** The researcher's output as a sequence: text blocks and tool boxes, in order. */
function outputSequence(page) {
  return page.evaluate(() =>
    [...document.querySelector('.agent-card[data-agent="researcher"] .agent-output').children]
      .filter((el) => !el.classList.contains('caret'))
      .map((el) => (el.classList.contains('tool-call') ? `[tool ${el.dataset.callId}]` : el.textContent.trim())),
  );
}

async function assertNothingInjected(page) {
  assert.equal(await page.evaluate(() => window.__pwned), undefined, 'no injected script ran');
  assert.equal(await page.locator('.agent-output img, .tool-call img, .tool-call script').count(), 0, 'tool text is never markup');
}

describe('tool calls in the agent card (page rendering against recorded events)', () => {
  test('a call shows live with a spinner, then its result; a failed result is marked; order kept', { timeout: 60000 }, async () => {
    const RUN = 'cd'.repeat(16);
    const events = recordedRun();
    const { page, context } = await openPage(browser, server.url);
    try {
      let release;
      const released = new Promise((r) => {
        release = r;
      });
      const lastIds = [];
      await page.route('**/api/run', (route) => route.fulfill({ status: 201, contentType: 'application/json', body: JSON.stringify({ id: RUN, stream: `/api/stream/${RUN}` }) }));
      await page.route(`**/api/stream/${RUN}`, async (route) => {
        lastIds.push(route.request().headers()['last-event-id'] || null);
        if (lastIds.length === 1) {
          await route.fulfill({ status: 200, contentType: 'text/event-stream', body: frame(RUN, events.slice(0, 9)) });
          return;
        }
        await released;
        // A careless server that replays from the start: nothing may show twice.
        await route.fulfill({ status: 200, contentType: 'text/event-stream', body: frame(RUN, events) });
      });

      await page.fill('#task', 'Why is the sky blue?');
      await page.keyboard.press('Control+Enter');
      const box = page.locator('.agent-card[data-agent="researcher"] .tool-call[data-call-id="call_1"]');
      await box.waitFor();
      // In flight: a spinner, no result yet, and the status line says what is happening.
      assert.equal(await box.getAttribute('data-state'), 'running');
      assert.equal(await box.locator('.tool-spinner').count(), 1);
      assert.equal(await box.locator('.tool-details').isHidden(), true);
      assert.equal(await box.locator('.tool-name').textContent(), 'everything › echo');
      assert.equal(await box.getAttribute('role'), 'group');
      assert.match(await box.getAttribute('aria-label'), /echo on everything/);
      const args = await box.locator('.tool-args').textContent();
      assert.ok(args.startsWith('{"message":"why blue <img src=x'), `compact arguments as text: ${args.slice(0, 60)}`);
      assert.ok(args.length <= 160 && args.endsWith('…'), 'long arguments are cut');
      await page.waitForFunction(() => /Researcher is calling the tool echo on everything/.test(document.getElementById('run-live').textContent));
      assert.deepEqual(await outputSequence(page), ['Let me look that up.', '[tool call_1]']);
      await screenshot(page, 'tool-call-running-1280');
      release();

      await page.waitForSelector('body[data-run-state="completed"]');
      assert.equal(lastIds[1], '9', 'resumed after the tool call');
      const boxes = await toolBoxes(page);
      assert.deepEqual(
        boxes.map((b) => [b.id, b.state, b.name, b.status, b.time, b.resultShown]),
        [
          ['call_1', 'ok', 'everything › echo', 'done', '42 ms', true],
          ['call_2', 'error', 'everything › get-sum', 'error', '3 ms', true],
        ],
      );
      assert.equal(boxes[0].result, RESULT, 'the result, exactly, as text');
      assert.equal(boxes[1].result, 'MCP error -32602: b must be a number');
      assert.equal(boxes[1].args, '{"a":1,"b":"two"}');
      assert.deepEqual(await outputSequence(page), ['Let me look that up.', '[tool call_1]', 'Found it.', '[tool call_2]', 'Done.']);
      assert.match(await page.locator('.tool-call[data-call-id="call_2"] .tool-summary').textContent(), /^Error result/);

      // The result is collapsed and opens from the keyboard.
      const details = page.locator('.tool-call[data-call-id="call_1"] details');
      assert.equal(await details.evaluate((d) => d.open), false);
      await page.locator('.tool-call[data-call-id="call_1"] summary').focus();
      await page.keyboard.press('Enter');
      assert.equal(await details.evaluate((d) => d.open), true);
      assert.equal(await page.locator('.tool-call[data-call-id="call_1"] .tool-content').isVisible(), true);
      await assertNothingInjected(page);
      await page.locator('.agent-card[data-agent="researcher"]').screenshot({ path: new URL('./artifacts/tool-card-1280.png', import.meta.url).pathname });
      assert.deepEqual(await page.problems(), []);
    } finally {
      await context.close();
    }
  });

  test('a reload in the middle rebuilds from the snapshot and shows each call and result exactly once', { timeout: 60000 }, async () => {
    const RUN = 'ce'.repeat(16);
    const events = recordedRun();
    // The snapshot as of event 11 (call_1, its result, the token after it).
    const snapshot = {
      id: RUN,
      task: 'Why is the sky blue?',
      status: 'running',
      created_at: new Date().toISOString(),
      plan: events[4][1],
      agents: [
        { name: 'orchestrator', kind: 'planner', state: 'done', model: 'offline', provider: 'offline', output: '{"agents":["researcher"]}', elapsed_ms: 10 },
        { name: 'researcher', kind: 'specialist', state: 'running', model: 'offline', provider: 'offline', output: 'Let me look that up.Found it.', tools: [{ call_id: 'call_1', server: 'everything', tool: 'echo', arguments: events[8][1].arguments, ok: true, content: RESULT, elapsed_ms: 42 }] },
        { name: 'writer', kind: 'writer', state: 'queued', output: '' },
      ],
      output: '',
      last_event_id: 11,
    };
    const { page, context } = await openPage(browser, server.url);
    try {
      const lastIds = [];
      await page.route(`**/api/runs/${RUN}`, (route) => route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(snapshot) }));
      let release;
      const released = new Promise((r) => {
        release = r;
      });
      await page.route(`**/api/stream/${RUN}`, async (route) => {
        lastIds.push(route.request().headers()['last-event-id'] || null);
        await released;
        // Replays a few events the snapshot already holds (9 to 11), as a store may.
        await route.fulfill({ status: 200, contentType: 'text/event-stream', body: frame(RUN, events, 8) });
      });
      await page.goto(`${server.url}#run/${RUN}`);
      await page.reload();
      await page.waitForSelector('body[data-ready="true"]');
      await page.locator('.tool-call[data-call-id="call_1"]').waitFor();
      // From the snapshot alone: the call and its result, once, before the text after it.
      let boxes = await toolBoxes(page);
      assert.deepEqual(boxes.map((b) => [b.id, b.state, b.result === RESULT]), [['call_1', 'ok', true]]);
      assert.equal(lastIds.at(-1), '11', 'the stream is asked only for what came after the snapshot');
      release();
      await page.waitForSelector('body[data-run-state="completed"]');
      boxes = await toolBoxes(page);
      assert.deepEqual(boxes.map((b) => [b.id, b.state]), [['call_1', 'ok'], ['call_2', 'error']], 'each call exactly once');
      assert.equal(await page.locator('.tool-call').count(), 2);
      const text = await page.locator('.agent-card[data-agent="researcher"] .agent-output').textContent();
      assert.equal(text.split('Found it.').length - 1, 1, 'no text twice');
      assert.equal(text.split('Rayleigh scattering').length - 1, 1, 'no result twice');
      await assertNothingInjected(page);
      assert.deepEqual(await page.problems(), []);
    } finally {
      await context.close();
    }
  });

  test('at 375 px a card with long tool arguments and results has no horizontal overflow', { timeout: 60000 }, async () => {
    const RUN = 'cf'.repeat(16);
    const events = recordedRun();
    const { page, context } = await openPage(browser, server.url, { viewport: { width: 375, height: 800 } });
    try {
      await page.route('**/api/run', (route) => route.fulfill({ status: 201, contentType: 'application/json', body: JSON.stringify({ id: RUN, stream: `/api/stream/${RUN}` }) }));
      await page.route(`**/api/stream/${RUN}`, (route) => route.fulfill({ status: 200, contentType: 'text/event-stream', body: frame(RUN, events) }));
      await page.fill('#task', 'Why is the sky blue?');
      await page.locator('#run-button').click();
      await page.waitForSelector('body[data-run-state="completed"]');
      for (const id of ['call_1', 'call_2']) await page.locator(`.tool-call[data-call-id="${id}"] summary`).click();
      const overflow = await page.evaluate(() => ({
        doc: document.documentElement.scrollWidth - document.documentElement.clientWidth,
        boxes: [...document.querySelectorAll('.tool-call')].map((el) => el.scrollWidth - el.clientWidth),
      }));
      assert.equal(overflow.doc, 0, 'the page does not scroll sideways');
      assert.deepEqual(overflow.boxes, [0, 0], 'tool boxes fit their card');
      const card = page.locator('.agent-card[data-agent="researcher"]');
      const width = await card.evaluate((el) => el.getBoundingClientRect().right);
      assert.ok(width <= 375, `card fits the screen (${width})`);
      await card.screenshot({ path: new URL('./artifacts/tool-card-375.png', import.meta.url).pathname });
      assert.deepEqual(await page.problems(), []);
    } finally {
      await context.close();
    }
  });
});

describe('the tools each agent may use, in the settings panel', () => {
  test('tools per agent from GET /api/tools, "no tools", and a server that is down', { timeout: 60000 }, async () => {
    const body = {
      servers: [
        { name: 'everything', connected: true, error: null, tools: [
          { name: 'echo', description: 'Echoes', agents: ['researcher', 'coder'] },
          { name: 'get-sum', description: 'Adds', agents: ['coder'] },
        ] },
        { name: 'search', connected: false, error: 'connection refused (127.0.0.1:9)', tools: [] },
      ],
    };
    // The roster of a server with tools carries each agent's `tools` patterns.
    const { body: roster } = await api(server.url, '/api/agents');
    const patterns = { researcher: ['everything/echo', 'search/*'], coder: ['everything/*'] };
    const withTools = roster.map((a) => ({ ...a, tools: patterns[a.name] || [] }));
    const { page, context } = await openPage(browser, server.url, {
      beforeGoto: async (p) => {
        await p.route('**/api/agents', (route) => route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(withTools) }));
        await p.route('**/api/tools', (route) => route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(body) }));
      },
    });
    try {
      await page.locator('#open-settings').click();
      await page.waitForFunction(() => /2 tool servers, 1 connected/.test(document.getElementById('tools-status').textContent));
      const row = (name) => page.locator(`#agent-tools [data-agent="${name}"] .agent-tools-list`).first().textContent();
      assert.equal(await row('researcher'), 'everything/echo');
      assert.equal(await row('coder'), 'everything/echo, everything/get-sum');
      assert.equal(await row('writer'), 'no tools');
      assert.equal(await row('orchestrator'), 'no tools');
      assert.match(await page.locator('#tool-servers [data-server="search"]').textContent(), /unavailable: connection refused \(127\.0\.0\.1:9\)/);
      // The researcher may use the down server's tools: it says why they are missing.
      assert.deepEqual(await page.locator('#agent-tools [data-agent="researcher"] .tool-server-down').allTextContents(), ['search: unavailable (connection refused (127.0.0.1:9))']);
      assert.equal(await page.locator('#agent-tools [data-agent="coder"] .tool-server-down').count(), 0);
      assert.match(await page.locator('#tool-servers [data-server="everything"]').textContent(), /connected · 2 tools/);
      assert.deepEqual(await page.problems(), []);
    } finally {
      await context.close();
    }
  });

  test('a server without tools says so and every agent has "no tools"', { timeout: 60000 }, async () => {
    const { page, context } = await openPage(browser, server.url);
    try {
      await page.locator('#open-settings').click();
      await page.waitForFunction(() => /No tool servers are configured/.test(document.getElementById('tools-status').textContent));
      const rows = await page.locator('#agent-tools .agent-tools-list').allTextContents();
      assert.ok(rows.length >= 3);
      assert.ok(rows.every((r) => r === 'no tools'), rows.join('|'));
      assert.deepEqual(await page.problems(), []);
    } finally {
      await context.close();
    }
  });
});
