// The settings panel's tools against the real GET /api/tools (issue 21): a server with
// an MCP config whose one server is down and a roster with per-agent `tools`; the
// panel says why the server is down and which agents it leaves without tools.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, launchBrowser, openPage, api } from './lib.mjs';

let server;
let browser;
let dir;

/** A loopback port nothing listens on (bound by the OS, then released). */
function closedPort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mesh-tool-settings-'));
  const port = await closedPort();
  writeFileSync(join(dir, 'mcp.json'), JSON.stringify({ mcpServers: { search: { url: `http://127.0.0.1:${port}/mcp` } } }));
  writeFileSync(
    join(dir, 'agents.json'),
    JSON.stringify({
      agents: [
        { name: 'orchestrator', kind: 'planner', model: 'm' },
        { name: 'researcher', kind: 'specialist', model: 'm', tools: ['search/web'] },
        { name: 'coder', kind: 'specialist', model: 'm', tools: [] },
        { name: 'writer', kind: 'writer', model: 'm' },
      ],
    }),
  );
  server = await startServer({ env: { MESH_MCP_CONFIG: join(dir, 'mcp.json'), MESH_AGENTS: join(dir, 'agents.json') } });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('a down tool server shows its error and the agents it leaves without tools', { timeout: 60000 }, async () => {
  const { body } = await api(server.url, '/api/tools');
  assert.equal(body.servers.length, 1);
  assert.equal(body.servers[0].connected, false);
  assert.deepEqual(body.servers[0].agents, ['researcher']);

  const { page, context } = await openPage(browser, server.url);
  try {
    await page.locator('#open-settings').click();
    await page.waitForFunction(() => /1 tool server, 0 connected/.test(document.getElementById('tools-status').textContent));
    assert.match(await page.locator('#tool-servers [data-server="search"]').textContent(), /unavailable: .*connect/);
    assert.deepEqual(await page.locator('#agent-tools [data-agent="researcher"] .tool-server-down').allTextContents(), [`search: unavailable (${body.servers[0].error})`]);
    for (const name of ['orchestrator', 'coder', 'writer']) {
      assert.equal(await page.locator(`#agent-tools [data-agent="${name}"] .tool-server-down`).count(), 0, name);
      assert.equal(await page.locator(`#agent-tools [data-agent="${name}"] .agent-tools-list`).first().textContent(), 'no tools', name);
    }
    assert.deepEqual(await page.problems(), []);
  } finally {
    await context.close();
  }
});
