// Node-only tests of the page's pure modules: the event-stream parser and the
// Markdown parser's safety rules. No browser, no server.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventStreamParser } from '../assets/sse.js';
import { parseMarkdown, parseInline, safeHref } from '../assets/markdown.js';
import { serversOf, toolsByAgent } from '../assets/tools.js';
import { RunSession } from '../assets/run.js';

function parseAll(chunks) {
  const events = [];
  const retries = [];
  const p = new EventStreamParser(
    (e) => events.push(e),
    (ms) => retries.push(ms),
  );
  for (const c of chunks) p.feed(c);
  p.end();
  return { events, retries };
}

const STREAM =
  '\uFEFFretry: 2000\r\n\r\n' +
  'event: connection\ndata: {"run_id":"x","resumed_from":null}\n\n' +
  ': keep-alive\n\n' +
  'id: 1\revent: token\rdata: {"agent":"writer","text":"a\\nb"}\r\r' +
  'id: 2\r\nevent: token\r\ndata:{"text":"no space"}\r\n\r\n' +
  'id: 3\nevent: multi\ndata: one\ndata: two\nunknown: x\nretry: 12x\n\n' +
  'id: 4\nevent: empty\ndata\n\n' +
  'id: 5\nevent: nodata\n\n' +
  'id: 6\nevent: cut\ndata: never dispatched';

test('the event-stream parser follows the WHATWG rules', { timeout: 5000 }, () => {
  const { events, retries } = parseAll([STREAM]);
  assert.deepEqual(retries, [2000]);
  assert.deepEqual(
    events.map((e) => [e.type, e.id, e.data]),
    [
      ['connection', null, '{"run_id":"x","resumed_from":null}'],
      ['token', '1', '{"agent":"writer","text":"a\\nb"}'],
      ['token', '2', '{"text":"no space"}'],
      ['multi', '3', 'one\ntwo'],
      ['empty', '4', ''],
    ],
  );
});

test('the event-stream parser gives the same events for any split of the input', { timeout: 10000 }, () => {
  const whole = parseAll([STREAM]).events;
  for (let i = 0; i <= STREAM.length; i++) {
    assert.deepEqual(parseAll([STREAM.slice(0, i), STREAM.slice(i)]).events, whole, `split at ${i}`);
  }
  // Every character in its own chunk, the hardest split for CR LF pairs.
  assert.deepEqual(parseAll([...STREAM]).events, whole);
});

test('the event-stream parser ignores an id containing NUL', { timeout: 5000 }, () => {
  const { events } = parseAll(['id: 7\nevent: a\ndata: x\n\nid: 8\u0000\nevent: b\ndata: y\n\n']);
  assert.equal(events[0].id, '7');
  assert.equal(events[1].id, null);
  assert.equal(events[1].lastEventId, '7');
});

test('only http, https and mailto links are allowed', { timeout: 5000 }, () => {
  assert.equal(safeHref('https://example.com/a?b=c'), 'https://example.com/a?b=c');
  assert.equal(safeHref('HTTP://Example.com'), 'http://example.com/');
  assert.equal(safeHref('mailto:chef@example.com'), 'mailto:chef@example.com');
  for (const bad of [
    'javascript:alert(1)',
    'JaVaScRiPt:alert(1)',
    'java\tscript:alert(1)',
    ' javascript:alert(1)',
    'java\nscript:alert(1)',
    'data:text/html,<script>alert(1)</script>',
    'vbscript:msgbox(1)',
    'file:///etc/passwd',
    '/relative/path',
    '//evil.example/x',
    'https:evil',
    '',
  ]) {
    assert.equal(safeHref(bad), null, bad);
  }
});

function linksIn(nodes, out = []) {
  for (const n of nodes) {
    if (n.t === 'link') out.push(n.href);
    if (n.c) linksIn(n.c, out);
  }
  return out;
}

test('links to anything but http(s) and mailto stay plain text', { timeout: 5000 }, () => {
  const nodes = parseInline('[click](javascript:window.__pwned=1) and [ok](https://example.com) and <javascript:alert(1)> and ![x](javascript:alert(1))');
  assert.deepEqual(linksIn(nodes), ['https://example.com/']);
  const text = nodes.filter((n) => n.t === 'text').map((n) => n.v).join('');
  assert.match(text, /\[click\]\(javascript:window\.__pwned=1\)/);
});

test('raw HTML in Markdown stays text', { timeout: 5000 }, () => {
  const blocks = parseMarkdown('<img src=x onerror="window.__pwned=1">\n\n<script>window.__pwned=1</script>');
  assert.deepEqual(
    blocks.map((b) => b.t),
    ['p', 'p'],
  );
  assert.deepEqual(parseInline(blocks[0].text), [{ t: 'text', v: '<img src=x onerror="window.__pwned=1">' }]);
});

test('the block parser knows headings, lists, quotes, fences and tables', { timeout: 5000 }, () => {
  const md = [
    '# Title',
    '',
    'Setext',
    '---',
    '',
    '> quoted **bold**',
    '',
    '- one',
    '- two',
    '  - nested',
    '',
    '3. three',
    '4. four',
    '',
    '```rust',
    'fn main() { println!("<b>"); }',
    '```',
    '',
    '| a | b |',
    '|:--|--:|',
    '| 1 | 2 |',
    '',
    '***',
  ].join('\n');
  const blocks = parseMarkdown(md);
  assert.deepEqual(
    blocks.map((b) => b.t + (b.level ? b.level : '')),
    ['h1', 'h2', 'quote', 'list', 'list', 'code', 'table', 'hr'],
  );
  assert.equal(blocks[3].items[1][1].t, 'list');
  assert.equal(blocks[4].ordered, true);
  assert.equal(blocks[4].start, 3);
  assert.equal(blocks[5].lang, 'rust');
  assert.equal(blocks[5].text, 'fn main() { println!("<b>"); }');
  assert.deepEqual(blocks[6].aligns, ['left', 'right']);
});

test('an unclosed fence while streaming is still a code block', { timeout: 5000 }, () => {
  const blocks = parseMarkdown('Intro\n\n```js\nconst a = "**not bold**";');
  assert.equal(blocks[1].t, 'code');
  assert.equal(blocks[1].text, 'const a = "**not bold**";');
});

test('emphasis follows the usual rules', { timeout: 5000 }, () => {
  const show = (s) => JSON.stringify(parseInline(s));
  assert.equal(show('**bold** and *it*'), JSON.stringify([{ t: 'strong', c: [{ t: 'text', v: 'bold' }] }, { t: 'text', v: ' and ' }, { t: 'em', c: [{ t: 'text', v: 'it' }] }]));
  assert.equal(show('snake_case_name'), JSON.stringify([{ t: 'text', v: 'snake_case_name' }]));
  assert.equal(show('2 * 3 * 4'), JSON.stringify([{ t: 'text', v: '2 * 3 * 4' }]));
  assert.equal(show('`a * b`'), JSON.stringify([{ t: 'code', v: 'a * b' }]));
});

test('hostile nesting neither throws nor takes long', { timeout: 10000 }, () => {
  const started = Date.now();
  parseMarkdown('>'.repeat(5000) + ' deep');
  parseMarkdown('- '.repeat(3000) + 'x');
  parseInline('['.repeat(3000) + ']('.repeat(3000));
  parseInline('*a '.repeat(3000));
  parseInline('**'.repeat(3000));
  assert.ok(Date.now() - started < 5000);
});

test('tools per agent: the server\'s word, else roster patterns, else every specialist; down servers named', () => {
  const servers = serversOf({
    servers: [
      { name: 'fs', connected: true, tools: [{ name: 'read' }, { name: 'write' }] },
      { name: 'web', connected: true, tools: [{ name: 'fetch', agents: ['analyst'] }] },
      { name: 'git', connected: false, error: 'spawn git-mcp ENOENT', tools: [] },
    ],
  });
  const roster = [
    { name: 'orchestrator', kind: 'planner' },
    { name: 'researcher', kind: 'specialist' },
    { name: 'analyst', kind: 'specialist', tools: ['fs/read', 'web/*'] },
    { name: 'writer', kind: 'writer' },
  ];
  const got = Object.fromEntries(toolsByAgent(roster, servers).map((r) => [r.agent.name, [r.tools, r.down.map((s) => `${s.name}: ${s.error}`)]]));
  assert.deepEqual(got, {
    orchestrator: [[], []],
    researcher: [['fs/read', 'fs/write'], ['git: spawn git-mcp ENOENT']],
    analyst: [['fs/read', 'web/fetch'], []],
    writer: [[], []],
  });
  assert.deepEqual(serversOf(null), []);
  assert.deepEqual(serversOf([{ name: 'a', connected: false }])[0].connected, false);
});

test('a down server names the agents GET /api/tools says it leaves without tools', () => {
  const servers = serversOf({ servers: [{ name: 'git', connected: false, error: 'refused', agents: ['analyst'], tools: [] }] });
  const roster = [
    { name: 'researcher', kind: 'specialist', tools: ['git/*'] },
    { name: 'analyst', kind: 'specialist', tools: ['git/log'] },
  ];
  const got = Object.fromEntries(toolsByAgent(roster, servers).map((r) => [r.agent.name, r.down.map((s) => s.name)]));
  assert.deepEqual(got, { researcher: [], analyst: ['git'] });
});

test('tool events fold once per call id, in text order, and a snapshot call without a result stays pending', () => {
  const roster = [{ name: 'researcher', kind: 'specialist' }];
  const s = new RunSession('r', roster);
  let id = 0;
  const ev = (type, data) => s.apply({ type, data: { agent: 'researcher', ...data }, id: ++id });
  ev('stream_start', {});
  ev('token', { text: 'abc' });
  ev('tool_call', { call_id: 'c1', server: 'fs', tool: 'read', arguments: { path: '/x' } });
  ev('tool_call', { call_id: 'c1', server: 'fs', tool: 'read', arguments: { path: '/x' } });
  ev('tool_result', { call_id: 'c1', ok: false, content: 'denied', elapsed_ms: 7 });
  ev('token', { text: 'def' });
  const a = s.agent('researcher');
  assert.deepEqual(a.tools.map((t) => [t.callId, t.at, t.ok, t.content, t.elapsedMs]), [['c1', 3, false, 'denied', 7]]);
  s.apply({ type: 'tool_call', data: { agent: 'researcher', call_id: 'c2', server: 'fs', tool: 'read' }, id: 3 });
  assert.equal(a.tools.length, 1, 'an event id already applied changes nothing');

  const snap = RunSession.fromSnapshot(
    { id: 'r', status: 'running', agents: [{ name: 'researcher', kind: 'specialist', state: 'running', output: 'hi', tools: [{ call_id: 'c9', server: 'fs', tool: 'read', arguments: {}, ok: null, content: null, elapsed_ms: null }] }], last_event_id: 4 },
    roster,
  );
  assert.deepEqual(snap.agent('researcher').tools.map((t) => [t.callId, t.ok, t.at]), [['c9', null, 0]]);
});
