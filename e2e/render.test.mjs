// Model text is untrusted: an XSS task through the real pipeline, the renderer's
// output checked against an allowlist of tags and attributes, and a scripted event
// stream with every kind of trouble (fallback plan, retry, substitution, failures)
// shown in words a user understands — and replayed twice without duplicating text.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, openPage, screenshot, currentRunId, api, referenceRender } from './lib.mjs';

let server;
let browser;

before(async () => {
  server = await startServer({ delayMs: 3 });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const PAYLOAD = '<img src=x onerror="window.__pwned=1"> <script>window.__pwned=1</script> [click](javascript:window.__pwned=1)';

async function assertNothingInjected(page) {
  const found = await page.evaluate(() => ({
    pwned: typeof window.__pwned,
    imgs: document.querySelectorAll('img').length,
    scripts: [...document.querySelectorAll('script')].map((s) => s.getAttribute('src')),
    inOutputs: document.querySelectorAll('#deliverable img, #deliverable script, .agent-output img, .agent-output script, .raw-md *, #plan img, #plan script').length,
    jsLinks: [...document.querySelectorAll('a[href]')].map((a) => a.getAttribute('href')).filter((h) => !/^(https?:|mailto:|#|\/$|blob:)/i.test(h)),
    handlers: [...document.querySelectorAll('*')].flatMap((el) => [...el.attributes].filter((a) => /^on/i.test(a.name)).map((a) => `${el.tagName}[${a.name}]`)),
  }));
  assert.equal(found.pwned, 'undefined', 'no injected script ran');
  assert.equal(found.imgs, 0, 'no <img> was created');
  assert.deepEqual(found.scripts, ['/assets/app.js'], 'the page’s own module is the only script');
  assert.equal(found.inOutputs, 0);
  assert.deepEqual(found.jsLinks, [], 'no javascript: (or other) link targets');
  assert.deepEqual(found.handlers, [], 'no inline event handlers');
}

describe('untrusted model text', () => {
  test('an XSS task travels through the pipeline as visible text only', { timeout: 60000 }, async () => {
    const { page, context } = await openPage(browser, server.url);
    try {
      await page.fill('#task', `Compare ${PAYLOAD}`);
      await page.keyboard.press('Control+Enter');
      await page.waitForSelector('body[data-run-state="completed"]', { timeout: 60000 });
      await assertNothingInjected(page);
      // The payload is there, as text: in the deliverable's heading and the researcher's notes.
      const heading = await page.locator('#deliverable h1').textContent();
      assert.ok(heading.startsWith('Compare <img src=x onerror="window.__pwned=1"> <script>'), heading);
      const notes = await page.locator('.agent-card[data-agent="researcher"] .agent-output').textContent();
      assert.ok(notes.includes(PAYLOAD), 'the whole payload shows as text');
      assert.equal(await page.locator('#run-task').textContent(), `Compare ${PAYLOAD}`);
      const { body: snap } = await api(server.url, `/api/runs/${await currentRunId(page)}`);
      assert.equal(await page.locator('#deliverable').innerHTML(), await referenceRender(page, snap.output));
      // Recent runs show the task as text too.
      await page.locator('#open-history').click();
      await page.waitForSelector('#history-list .run-item');
      await assertNothingInjected(page);
      assert.deepEqual(await page.problems(), []);
    } finally {
      await context.close();
    }
  });

  test('the renderer only ever builds allowlisted tags and attributes', { timeout: 60000 }, async () => {
    const { page, context } = await openPage(browser, server.url);
    try {
      const result = await page.evaluate(async () => {
        const { renderMarkdown } = await import('/assets/markdown.js');
        const TAGS = new Set(['H1', 'H2', 'H3', 'H4', 'H5', 'H6', 'P', 'EM', 'STRONG', 'DEL', 'CODE', 'PRE', 'A', 'UL', 'OL', 'LI', 'BLOCKQUOTE', 'HR', 'BR', 'TABLE', 'THEAD', 'TBODY', 'TR', 'TH', 'TD', 'DIV']);
        const ATTRS = new Set(['href', 'rel', 'target', 'title', 'class', 'start', 'scope', 'data-lang']);
        const pieces = ['# ', '## ', '- ', '1. ', '> ', '```', '`', '*', '**', '_', '~~', '[', ']', '(', ')', '<', '>', '!', '"', "'", '\n', '\n\n', '|', '---', ' ', 'javascript:alert(1)', 'https://example.com', 'mailto:a@b.c', '<img src=x onerror=alert(1)>', '<script>alert(1)</script>', '<a href="javascript:alert(1)">x</a>', 'data:text/html,x', '&lt;', '&#106;avascript:', 'java\tscript:', '<svg onload=alert(1)>', 'word', 'é😀', '\\', '    '];
        let seed = 12345;
        const rand = (n) => {
          seed = (seed * 1103515245 + 12345) % 2147483648;
          return seed % n;
        };
        const bad = [];
        for (let round = 0; round < 400; round++) {
          let md = '';
          const len = 5 + rand(60);
          for (let i = 0; i < len; i++) md += pieces[rand(pieces.length)];
          const box = document.createElement('div');
          box.appendChild(renderMarkdown(md));
          for (const el of box.querySelectorAll('*')) {
            if (!TAGS.has(el.tagName)) bad.push(`${el.tagName} from ${JSON.stringify(md)}`);
            for (const a of el.attributes) {
              if (!ATTRS.has(a.name)) bad.push(`${el.tagName}[${a.name}] from ${JSON.stringify(md)}`);
              if (a.name === 'href' && !/^(https?:|mailto:)/.test(a.value)) bad.push(`href ${a.value} from ${JSON.stringify(md)}`);
            }
          }
        }
        // A few exact shapes.
        const box = document.createElement('div');
        box.appendChild(renderMarkdown('[site](https://example.com "Title") ![pic](https://example.com/p.png) <https://x.org> [bad](javascript:alert(1))\n\n```html\n<b>kept as text</b>\n```\n\n| a | b |\n|---|--:|\n| `x` | **y** |'));
        const link = box.querySelector('a');
        return {
          bad: bad.slice(0, 10),
          link: [link.getAttribute('href'), link.rel, link.target, link.title],
          anchors: [...box.querySelectorAll('a')].map((a) => a.textContent),
          code: box.querySelector('pre code').textContent,
          lang: box.querySelector('pre').dataset.lang,
          cells: [...box.querySelectorAll('td')].map((td) => td.innerHTML),
          alignRight: box.querySelector('th:last-child').className,
          text: box.querySelector('p').textContent,
        };
      });
      assert.deepEqual(result.bad, []);
      assert.deepEqual(result.link, ['https://example.com/', 'noopener noreferrer nofollow ugc', '_blank', 'Title']);
      assert.deepEqual(result.anchors, ['site', '🖼 pic', 'https://x.org']);
      assert.ok(result.text.endsWith('[bad](javascript:alert(1))'), result.text);
      assert.equal(result.code, '<b>kept as text</b>');
      assert.equal(result.lang, 'html');
      assert.deepEqual(result.cells, ['<code>x</code>', '<strong>y</strong>']);
      assert.equal(result.alignRight, 'align-right');
      assert.equal(await page.evaluate(() => typeof window.__pwned), 'undefined');
      assert.deepEqual(await page.problems(), []);
    } finally {
      await context.close();
    }
  });

  test('trouble is shown where it happened, in plain words, and a replayed stream adds nothing twice', { timeout: 60000 }, async () => {
    const RUN = 'ab'.repeat(16);
    const writerText = `# Plan for dinner ${PAYLOAD}\n\nA **bold** claim and a [safe link](https://example.com).\n\n- one\n- two\n`;
    const writerTokens = writerText.match(/\S+\s*/g);
    const events = [
      ['status', { agent: 'orchestrator', state: 'planning', detail: 'choosing the team' }],
      ['stream_start', { agent: 'orchestrator', model: 'anthropic/claude-haiku-4.5', provider: 'openrouter' }],
      ['error', { agent: 'orchestrator', kind: 'timeout', message: 'no first token within 90 s', status: null }],
      ['status', { agent: 'orchestrator', state: 'failed', detail: 'timeout' }],
      ['plan', { agents: ['researcher', 'analyst'], reasoning: '', tasks: {}, source: 'fallback', dropped: [], reason: 'the orchestrator call failed' }],
      ['status', { agent: 'coder', state: 'skipped', detail: 'not chosen by the plan' }],
      ['status', { agent: 'researcher', state: 'retrying', detail: 'retry 1 in 0.5 s after rate_limit: 429 Too Many Requests' }],
      // The first connection ends here; the rest comes on the next one.
      ['stream_start', { agent: 'researcher', model: 'claude-haiku-4-5', provider: 'anthropic', substituted_for: 'meta-llama/llama-3.1-8b-instruct' }],
      ['token', { agent: 'researcher', text: 'Some ' }],
      ['token', { agent: 'researcher', text: 'facts.' }],
      ['stream_end', { agent: 'researcher', finish_reason: 'stop', chars: 11, usage: { input_tokens: 10, output_tokens: 3 }, cost_usd: 0.0002, ttft_ms: 5, elapsed_ms: 1234 }],
      ['stream_start', { agent: 'analyst', model: 'meta-llama/llama-3.3-70b-instruct', provider: 'openrouter' }],
      ['error', { agent: 'analyst', kind: 'auth', message: 'invalid x-api-key', status: 401 }],
      ['status', { agent: 'analyst', state: 'failed', detail: 'auth' }],
      ['stream_start', { agent: 'writer', model: 'anthropic/claude-sonnet-4.5', provider: 'openrouter' }],
      ...writerTokens.map((t) => ['token', { agent: 'writer', text: t }]),
      ['stream_end', { agent: 'writer', finish_reason: 'stop', chars: writerText.length, usage: { input_tokens: 100, output_tokens: 40 }, cost_usd: 0.012, ttft_ms: 5, elapsed_ms: 2000 }],
      ['done', { status: 'completed', output: writerText, usage: { input_tokens: 110, output_tokens: 43 }, cost_usd: 0.0122, elapsed_ms: 5000 }],
    ];
    const frame = (list) =>
      'retry: 2000\n\nevent: connection\ndata: {"run_id":"' + RUN + '","resumed_from":null}\n\n' +
      list.map(([type, data], i) => `id: ${i + 1}\nevent: ${type}\ndata: ${JSON.stringify(data)}\n\n`).join('');

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
          const head = frame(events).split('id: 8\n')[0];
          await route.fulfill({ status: 200, contentType: 'text/event-stream', body: head });
          return;
        }
        await released;
        // A careless server that replays everything from the start: the page must skip what it has.
        await route.fulfill({ status: 200, contentType: 'text/event-stream', body: frame(events) });
      });

      await page.fill('#task', 'Plan a dinner party');
      await page.keyboard.press('Control+Enter');
      const researcher = page.locator('.agent-card[data-agent="researcher"]');
      await page.waitForFunction(() => document.querySelector('.agent-card[data-agent="researcher"] .badge')?.textContent === 'retrying');
      assert.match(await researcher.locator('.agent-note').textContent(), /Retrying: retry 1 in 0\.5 s after rate_limit/);
      assert.equal(await page.locator('#plan .plan-fallback').count(), 1);
      assert.match(await page.locator('#plan').textContent(), /default team \(fallback\)/);
      assert.match(await page.locator('#plan .plan-fallback').textContent(), /the orchestrator call failed/);
      assert.match(await page.locator('.agent-card[data-agent="orchestrator"] .agent-error').textContent(), /took too long to answer.*Details: no first token within 90 s/);
      assert.equal(await page.locator('.agent-card[data-agent="orchestrator"] .badge').textContent(), 'failed');
      assert.equal(await page.locator('.agent-card[data-agent="coder"] .badge').textContent(), 'skipped');
      assert.match(await page.locator('.agent-card[data-agent="coder"]').textContent(), /Not needed for this task/);
      release();

      await page.waitForSelector('body[data-run-state="completed"]');
      assert.equal(lastIds[1], '7', 'resumed after the last event applied');
      assert.equal(await researcher.locator('.agent-output').textContent(), 'Some facts.', 'replayed tokens are not applied twice');
      assert.match(await researcher.locator('.agent-note').textContent(), /Stands in for meta-llama\/llama-3\.1-8b-instruct/);
      assert.equal(await researcher.locator('.agent-model-id').textContent(), 'claude-haiku-4-5');
      assert.equal(await researcher.locator('.agent-provider').textContent(), 'anthropic');
      const analystError = await page.locator('.agent-card[data-agent="analyst"] .agent-error').textContent();
      assert.match(analystError, /refused the API key/);
      assert.match(analystError, /invalid x-api-key \(HTTP 401\)/);
      assert.equal(await page.locator('.agent-card[data-agent="writer"] .raw-md').textContent(), writerText);
      assert.equal(await page.locator('#deliverable').innerHTML(), await referenceRender(page, writerText));
      assert.equal(await page.locator('#deliverable h1').count(), 1);
      assert.equal(await page.locator('#deliverable a').getAttribute('href'), 'https://example.com/');
      assert.equal(await page.locator('#stat-cost').textContent(), '$0.0122');
      assert.equal(await page.locator('#stat-tokens').textContent(), '110 in · 43 out');
      assert.equal(await researcher.locator('.agent-meta').textContent(), 'Tokens10 in · 3 outCost$0.0002Time1.2 s');
      await assertNothingInjected(page);
      await screenshot(page, 'trouble-1280');
      assert.deepEqual(await page.problems(), []);
    } finally {
      await context.close();
    }
  });
});
