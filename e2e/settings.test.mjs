// The settings drawer: providers among the configured ones, a model per agent from the
// catalog (tier badges) or typed in, remembered across reloads, and sent with each run
// (only what the user changed). Works with and without GET /api/models.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, openPage, api, screenshot, currentRunId } from './lib.mjs';

let server;
let browser;

before(async () => {
  server = await startServer({ delayMs: 2 });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const CATALOG = {
  provider: 'offline',
  source: 'live',
  fetched_at: '2026-01-01T00:00:00Z',
  models: [
    { id: 'meta-llama/llama-3.1-8b-instruct:free', name: 'Llama 3.1 8B (free)', context_length: 131072, price_in_per_mtok: 0, price_out_per_mtok: 0, tier: 'free' },
    { id: 'meta-llama/llama-3.1-8b-instruct', name: 'Llama 3.1 8B', context_length: 131072, price_in_per_mtok: 0.02, price_out_per_mtok: 0.05, tier: 'budget' },
    { id: 'anthropic/claude-haiku-4.5', name: 'Claude Haiku 4.5', context_length: 200000, price_in_per_mtok: 1, price_out_per_mtok: 5, tier: 'standard' },
    { id: 'anthropic/claude-sonnet-4.5', name: 'Claude Sonnet 4.5', context_length: 1000000, price_in_per_mtok: 3, price_out_per_mtok: 15, tier: 'premium' },
    { id: 'anthropic/claude-opus-4.1', name: 'Claude Opus 4.1', context_length: 200000, price_in_per_mtok: 15, price_out_per_mtok: 75, tier: 'premium' },
  ],
};

async function openSettings(page) {
  await page.locator('#open-settings').click();
  await page.waitForSelector('#settings-dialog[open]');
}

async function closeSettings(page) {
  await page.locator('#settings-dialog .drawer-actions [data-close]').click();
  await page.waitForFunction(() => !document.getElementById('settings-dialog').open);
}

describe('settings', () => {
  test('without a catalog: typed and roster models are remembered across a reload and sent with the run', { timeout: 60000 }, async () => {
    // The catalog route fails (a provider outage): the page must fall back to the
    // roster's models plus free text.
    const catalogDown = (page) => page.route('**/api/models**', (route) => route.fulfill({
      status: 503,
      contentType: 'application/json',
      body: JSON.stringify({ error: { code: 'internal', message: 'catalog unavailable' } }),
    }));
    const { page, context } = await openPage(browser, server.url, {
      beforeGoto: catalogDown,
      allow: (text, url) => /Failed to load resource/.test(text) && /\/api\/models/.test(url),
    });
    try {
      await openSettings(page);
      const providers = await page.locator('#provider-select option').allTextContents();
      assert.deepEqual(providers, ['Server default (Offline)', 'Offline (placeholder answers)'], 'only configured providers');
      await page.waitForFunction(() => /No model catalog/.test(document.getElementById('catalog-status').textContent));

      await page.selectOption('#model-writer', '__custom__');
      assert.equal(await page.locator('#model-writer-custom').isVisible(), true);
      assert.equal(await page.evaluate(() => document.activeElement.id), 'model-writer-custom', 'focus goes to the text field');
      await page.keyboard.type('my-vendor/custom-writer');
      await page.selectOption('#model-researcher', 'meta-llama/llama-3.3-70b-instruct');
      await page.selectOption('#provider-select', 'offline');
      await screenshot(page, 'settings-1280', { fullPage: false });
      await closeSettings(page);
      assert.equal(await page.locator('#settings-summary').textContent(), 'Offline · 2 changed');

      await page.reload();
      await page.waitForSelector('body[data-ready="true"]');
      await openSettings(page);
      assert.equal(await page.locator('#provider-select').inputValue(), 'offline');
      assert.equal(await page.locator('#model-writer').inputValue(), '__custom__');
      assert.equal(await page.locator('#model-writer-custom').inputValue(), 'my-vendor/custom-writer');
      assert.equal(await page.locator('#model-researcher').inputValue(), 'meta-llama/llama-3.3-70b-instruct');
      assert.equal(await page.locator('#model-coder').inputValue(), '', 'untouched agents keep the roster default');
      assert.equal(await page.locator('.model-row[data-agent="writer"] .changed-pill').isVisible(), true);
      await closeSettings(page);

      await page.fill('#task', 'Tell me about olive oil');
      const posted = page.waitForRequest((r) => r.url().endsWith('/api/run') && r.method() === 'POST');
      await page.keyboard.press('Control+Enter');
      const body = JSON.parse((await posted).postData());
      assert.deepEqual(body, {
        task: 'Tell me about olive oil',
        provider: 'offline',
        models: { researcher: 'meta-llama/llama-3.3-70b-instruct', writer: 'my-vendor/custom-writer' },
      });
      await page.waitForSelector('body[data-run-state="completed"]', { timeout: 30000 });
      const { body: snap } = await api(server.url, `/api/runs/${await currentRunId(page)}`);
      assert.equal(snap.config.agents.writer.model, 'my-vendor/custom-writer');
      assert.equal(snap.config.agents.researcher.model, 'meta-llama/llama-3.3-70b-instruct');
      assert.equal(await page.locator('.agent-card[data-agent="writer"] .agent-model-id').textContent(), 'my-vendor/custom-writer');

      // Reset forgets everything; nothing but the task is sent again.
      await openSettings(page);
      await page.locator('#reset-settings').click();
      await closeSettings(page);
      assert.equal(await page.locator('#settings-summary').textContent(), 'Offline');
      await page.fill('#task', 'Tell me about vinegar');
      const posted2 = page.waitForRequest((r) => r.url().endsWith('/api/run') && r.method() === 'POST');
      await page.keyboard.press('Control+Enter');
      assert.deepEqual(JSON.parse((await posted2).postData()), { task: 'Tell me about vinegar' });
      await page.waitForSelector('body[data-run-state="completed"]', { timeout: 30000 });
      assert.deepEqual(await page.problems(), []);
    } finally {
      await context.close();
    }
  });

  test('with a catalog: models grouped by tier, with badges and prices', { timeout: 60000 }, async () => {
    const { page, context } = await openPage(browser, server.url);
    try {
      const asked = [];
      await page.route('**/api/models*', (route) => {
        const q = new URL(route.request().url()).searchParams;
        asked.push(`${q.get('provider')}${q.get('refresh') ? ' refresh' : ''}`);
        return route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(CATALOG) });
      });
      await page.reload();
      await page.waitForSelector('body[data-ready="true"]');
      await openSettings(page);
      await page.waitForFunction(() => /5 models from Offline \(live list\)/.test(document.getElementById('catalog-status').textContent));
      assert.equal(asked[0], 'offline');
      const groups = await page.locator('#model-writer optgroup').evaluateAll((gs) => gs.map((g) => [g.label, g.children.length]));
      assert.deepEqual(groups, [['Free', 1], ['Budget', 1], ['Standard', 1], ['Premium', 2]]);

      // The roster default is in the catalog: its tier shows without a change.
      const writerRow = page.locator('.model-row[data-agent="writer"]');
      assert.equal(await writerRow.locator('.tier-badge').textContent(), 'premium');
      assert.equal(await writerRow.locator('.changed-pill').isHidden(), true);

      await page.selectOption('#model-writer', 'anthropic/claude-opus-4.1');
      assert.equal(await writerRow.locator('.tier-badge').textContent(), 'premium');
      assert.match(await writerRow.locator('.model-info').textContent(), /\$15\.00 in \/ \$75\.00 out per million tokens · 200k context/);
      await page.selectOption('#model-researcher', 'meta-llama/llama-3.1-8b-instruct:free');
      const researcherRow = page.locator('.model-row[data-agent="researcher"]');
      assert.equal(await researcherRow.locator('.tier-badge').textContent(), 'free');
      assert.equal(await researcherRow.locator('.tier-badge').getAttribute('class'), 'tier-badge tier-free');
      await screenshot(page, 'settings-catalog-1280', { fullPage: false });
      // Refresh asks the server to fetch the catalog again.
      const refreshed = page.waitForResponse((r) => /\/api\/models\?provider=offline&refresh=1$/.test(r.url()));
      await page.locator('#refresh-catalog').click();
      await refreshed;
      await page.waitForFunction(() => /5 models/.test(document.getElementById('catalog-status').textContent));
      assert.equal(asked[asked.length - 1], 'offline refresh');
      assert.equal(await page.locator('#model-writer').inputValue(), 'anthropic/claude-opus-4.1', 'the choice survives a refresh');
      await closeSettings(page);

      await page.reload();
      await page.waitForSelector('body[data-ready="true"]');
      await openSettings(page);
      await page.waitForFunction(() => document.getElementById('model-writer').value === 'anthropic/claude-opus-4.1');
      assert.equal(await researcherRow.locator('.tier-badge').textContent(), 'free');
      const stored = JSON.parse(await page.evaluate(() => localStorage.getItem('agent-mesh.settings.v1')));
      assert.deepEqual(stored.models.offline, { writer: 'anthropic/claude-opus-4.1', researcher: 'meta-llama/llama-3.1-8b-instruct:free' });
      await closeSettings(page);
      assert.deepEqual(await page.problems(), []);
    } finally {
      await context.close();
    }
  });

  test('a remembered provider that is no longer configured is dropped', { timeout: 30000 }, async () => {
    const { page, context } = await openPage(browser, server.url);
    try {
      await page.evaluate(() => localStorage.setItem('agent-mesh.settings.v1', JSON.stringify({ v: 1, provider: 'openrouter', models: { openrouter: { writer: 'x/y' } } })));
      await page.reload();
      await page.waitForSelector('body[data-ready="true"]');
      assert.equal(await page.locator('#settings-summary').textContent(), 'Offline');
      await page.fill('#task', 'Tell me about capers');
      const posted = page.waitForRequest((r) => r.url().endsWith('/api/run') && r.method() === 'POST');
      await page.keyboard.press('Control+Enter');
      assert.deepEqual(JSON.parse((await posted).postData()), { task: 'Tell me about capers' });
      await page.waitForSelector('body[data-run-state="completed"]', { timeout: 30000 });
      assert.deepEqual(await page.problems(), []);
    } finally {
      await context.close();
    }
  });
});
