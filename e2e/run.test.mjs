// A full offline run driven from the task box, at 1280 px and at 375 px: the plan,
// the cards, the rendered deliverable (compared with the server's snapshot), Copy and
// Download, keyboard use, contrast, and no console errors or CSP violations.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { startServer, launchBrowser, openPage, api, screenshot, currentRunId, referenceRender } from './lib.mjs';

let server;
let browser;

before(async () => {
  server = await startServer({ delayMs: 4 });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const TASK = 'Write a Python script that renames photos by date, and compare it with a shell approach';

/** Checks every card and the deliverable against the snapshot, exactly. */
async function assertMatchesSnapshot(page, snap) {
  for (const agent of snap.agents) {
    const card = page.locator(`.agent-card[data-agent="${agent.name}"]`);
    if (agent.kind === 'planner') {
      assert.equal(await card.locator('.agent-output').textContent(), agent.output, `${agent.name} text`);
    } else if (agent.kind === 'writer') {
      assert.equal(await card.locator('.raw-md').textContent(), agent.output, 'writer raw text');
    } else if (agent.state !== 'skipped') {
      const shown = await card.locator('.agent-output').innerHTML();
      assert.equal(shown, await referenceRender(page, agent.output), `${agent.name} rendered output`);
    }
  }
  assert.equal(await page.locator('#deliverable').innerHTML(), await referenceRender(page, snap.output), 'deliverable');
}

describe('a full run from the task box', () => {
  test('typed task + Ctrl+Enter streams to a rendered deliverable that matches the server', { timeout: 90000 }, async () => {
    const { page, context } = await openPage(browser, server.url);
    try {
      await screenshot(page, 'welcome-1280');
      assert.equal(await page.locator('#offline-banner').isVisible(), true, 'offline banner shown');
      assert.match(await page.locator('#offline-banner').textContent(), /placeholders until a provider key is set/);

      await page.locator('#task').click();
      await page.keyboard.type(TASK, { delay: 2 });
      const posted = page.waitForRequest((r) => r.url().endsWith('/api/run') && r.method() === 'POST');
      await page.keyboard.press('Control+Enter');
      const body = JSON.parse((await posted).postData());
      assert.deepEqual(body, { task: TASK }, 'nothing but the task is sent with default settings');

      // Live: the orchestrator plans, the plan appears, a specialist streams.
      await page.waitForSelector('#plan[data-state="ready"]');
      const chips = await page.locator('.team-chip.is-chosen').allTextContents();
      assert.ok(chips.some((c) => c.includes('Researcher')), `team chips: ${chips}`);
      await page.waitForSelector('.agent-card[data-agent="writer"][data-state="writing"]', { timeout: 30000 });
      await screenshot(page, 'streaming-1280');

      await page.waitForSelector('body[data-run-state="completed"]', { timeout: 60000 });
      const id = await currentRunId(page);
      assert.match(id, /^[0-9a-f]{32}$/);
      const { body: snap } = await api(server.url, `/api/runs/${id}`);
      assert.equal(snap.status, 'completed');

      // The rendered deliverable: real headings and list items, not Markdown source.
      const h1 = await page.locator('#deliverable h1').textContent();
      assert.equal(h1, snap.output.split('\n')[0].replace(/^# /, ''));
      const h2s = await page.locator('#deliverable h2').allTextContents();
      assert.deepEqual(h2s, ['Summary', 'What the team contributed', 'Next steps']);
      assert.equal(await page.locator('#deliverable blockquote strong').first().textContent(), 'Offline provider:');
      assert.equal(await page.locator('#deliverable ol > li').count(), 2);
      const lines = (await page.locator('#deliverable').innerText()).split('\n');
      assert.deepEqual(lines.filter((l) => /^#{1,6} /.test(l)), [], 'no raw Markdown headings');
      await assertMatchesSnapshot(page, snap);

      // Badges and numbers.
      for (const a of snap.agents) {
        const badge = await page.locator(`.agent-card[data-agent="${a.name}"] .badge`).textContent();
        assert.equal(badge, a.state, `${a.name} badge`);
      }
      assert.equal(await page.locator('#run-badge').textContent(), 'completed');
      assert.match(await page.locator('#run-live').textContent(), /^Done in .*deliverable is ready/);
      assert.match(await page.locator('#stat-tokens').textContent(), /^[\d,]+ in · [\d,]+ out$/);
      const researcherMeta = await page.locator('.agent-card[data-agent="researcher"] .agent-meta').textContent();
      assert.match(researcherMeta, /Tokens\d+ in · \d+ out/);
      assert.match(researcherMeta, /Time\d+(\.\d)? (ms|s)/);
      assert.equal(await page.locator('.agent-card[data-agent="researcher"] .agent-provider').textContent(), 'offline');
      assert.equal(await page.locator('#cancel-run').isDisabled(), true, 'Cancel is off once the run ended');
      await screenshot(page, 'completed-1280');

      // Download gives the Markdown itself.
      const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#download-doc').click()]);
      assert.match(download.suggestedFilename(), /^write-a-python-script-.*\.md$/);
      assert.equal(await readFile(await download.path(), 'utf8'), snap.output);

      // Copy puts the Markdown on the clipboard.
      await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url.replace(/\/$/, '') });
      await page.locator('#copy-doc').click();
      await page.waitForFunction(() => document.querySelector('#copy-doc span').textContent === 'Copied');
      assert.equal(await page.evaluate(() => navigator.clipboard.readText()), snap.output);

      assert.deepEqual(await page.problems(), []);
    } finally {
      await context.close();
    }
  });

  test('at 375 px wide nothing scrolls sideways, before, during and after a run', { timeout: 90000 }, async () => {
    const { page, context } = await openPage(browser, server.url, { viewport: { width: 375, height: 812 }, context: { isMobile: true, hasTouch: true, deviceScaleFactor: 2 } });
    try {
      const width = () => page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok((await width()) <= 375, `welcome scrollWidth ${await width()}`);
      await screenshot(page, 'welcome-375');
      await page.fill('#task', 'Compare B-trees and LSM-trees for a write-heavy workload, with a long-unbroken-identifier-like-this-one_that_should_wrap_nicely_everywhere');
      await page.locator('#run-button').click();
      await page.waitForSelector('.agent-card.is-active', { timeout: 30000 });
      assert.ok((await width()) <= 375, `streaming scrollWidth ${await width()}`);
      await page.waitForSelector('body[data-run-state="completed"]', { timeout: 60000 });
      assert.ok((await width()) <= 375, `completed scrollWidth ${await width()}`);
      await screenshot(page, 'completed-375');
      await page.locator('#open-settings').click();
      await page.waitForSelector('#settings-dialog[open]');
      assert.ok((await width()) <= 375, `settings scrollWidth ${await width()}`);
      await screenshot(page, 'settings-375', { fullPage: false });
      await page.keyboard.press('Escape');
      await page.locator('#open-history').click();
      await page.waitForSelector('#history-list .run-item');
      await screenshot(page, 'history-375', { fullPage: false });
      assert.deepEqual(await page.problems(), []);
    } finally {
      await context.close();
    }
  });

  test('keyboard only: skip link, task box, run, and the drawers', { timeout: 60000 }, async () => {
    const { page, context } = await openPage(browser, server.url);
    try {
      await page.keyboard.press('Tab');
      assert.equal(await page.evaluate(() => document.activeElement.className), 'skip-link');
      await page.keyboard.press('Enter');
      assert.equal(await page.evaluate(() => document.activeElement.id), 'task');
      await page.keyboard.type('Explain why bread rises');
      // With reduced motion asked for, nothing keeps moving while the run streams.
      await page.emulateMedia({ reducedMotion: 'reduce' });
      await page.keyboard.press('Control+Enter');
      await page.waitForSelector('.badge-running');
      const moving = await page.evaluate(() => document.getAnimations().filter((a) => a.playState === 'running' && a.effect.getComputedTiming().iterations === Infinity).length);
      assert.equal(moving, 0, 'no endless animation under prefers-reduced-motion');
      await page.waitForSelector('body[data-run-state="completed"]', { timeout: 60000 });
      assert.match(await page.title(), /^✓ Explain why bread rises · agent-mesh$/);

      // Settings opens from the keyboard, Escape closes it and gives focus back.
      await page.locator('#open-settings').focus();
      await page.keyboard.press('Enter');
      await page.waitForSelector('#settings-dialog[open]');
      assert.ok(await page.evaluate(() => document.getElementById('settings-dialog').contains(document.activeElement)), 'focus moved into the dialog');
      await page.keyboard.press('Escape');
      await page.waitForFunction(() => !document.getElementById('settings-dialog').open);
      assert.equal(await page.evaluate(() => document.activeElement.id), 'open-settings');

      // Every interactive control has an accessible name.
      const unnamed = await page.evaluate(() =>
        [...document.querySelectorAll('button, select, textarea, input, a[href]')]
          .filter((el) => el.offsetParent !== null || el.closest('dialog'))
          .filter((el) => {
            const label = el.getAttribute('aria-label') || el.textContent.trim() || (el.labels && el.labels.length > 0 && el.labels[0].textContent.trim());
            return !label;
          })
          .map((el) => el.outerHTML.slice(0, 80)),
      );
      assert.deepEqual(unnamed, []);
      // Status is announced politely.
      assert.equal(await page.locator('#run-live').getAttribute('aria-live'), 'polite');
      assert.deepEqual(await page.problems(), []);
    } finally {
      await context.close();
    }
  });

  test('text meets WCAG AA contrast on the finished run page', { timeout: 60000 }, async () => {
    const { page, context } = await openPage(browser, server.url);
    try {
      await page.fill('#task', 'Compare tea and coffee for a long night of coding, explain why');
      await page.keyboard.press('Tab');
      await page.locator('#run-button').click();
      await page.waitForSelector('body[data-run-state="completed"]', { timeout: 60000 });
      await page.emulateMedia({ reducedMotion: 'reduce' });
      const { checked, failures } = await page.evaluate(contrastFailures);
      assert.ok(checked > 60, `only ${checked} text elements checked`);
      assert.deepEqual(failures, []);
    } finally {
      await context.close();
    }
  });
});

/** Runs in the page: every visible text with a contrast below AA, with its colours. */
function contrastFailures() {
  const parse = (c) => {
    let m = /rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)(?:,\s*([\d.]+))?\)/.exec(c);
    if (m) return [+m[1], +m[2], +m[3], m[4] === undefined ? 1 : +m[4]];
    m = /color\(srgb ([\d.]+) ([\d.]+) ([\d.]+)(?: \/ ([\d.]+))?\)/.exec(c);
    if (m) return [m[1] * 255, m[2] * 255, m[3] * 255, m[4] === undefined ? 1 : +m[4]];
    return null;
  };
  const blend = (top, bottom) => {
    const a = top[3];
    return [top[0] * a + bottom[0] * (1 - a), top[1] * a + bottom[1] * (1 - a), top[2] * a + bottom[2] * (1 - a), 1];
  };
  const lum = ([r, g, b]) => {
    const f = (v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    const layers = [];
    for (let n = el; n; n = n.parentElement) {
      const bg = parse(getComputedStyle(n).backgroundColor);
      if (bg && bg[3] > 0) {
        layers.push(bg);
        if (bg[3] >= 1) break;
      }
    }
    let out = [251, 245, 234, 1]; // the page's paper under everything
    for (const layer of layers.reverse()) out = blend(layer, out);
    return out;
  };
  const failures = [];
  let checked = 0;
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const seen = new Set();
  for (let t = walker.nextNode(); t; t = walker.nextNode()) {
    const el = t.parentElement;
    if (!t.textContent.trim() || !el || seen.has(el)) continue;
    seen.add(el);
    if (el.closest('[hidden], .sr-only, .offscreen, svg, dialog:not([open]), button:disabled, .sprite')) continue;
    const rect = el.getBoundingClientRect();
    if (rect.width === 0 || rect.height === 0) continue;
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden' || +style.opacity === 0) continue;
    checked++;
    const bg = background(el);
    const fg = blend(parse(style.color) || [0, 0, 0, 1], bg);
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(style.fontSize);
    const bold = +style.fontWeight >= 700;
    const large = size >= 24 || (bold && size >= 18.66);
    if (ratio < (large ? 3 : 4.5)) {
      failures.push(`${ratio.toFixed(2)} for "${t.textContent.trim().slice(0, 40)}" (${el.tagName.toLowerCase()}.${el.className}) ${style.color} on rgb(${bg.slice(0, 3).map(Math.round)})`);
    }
  }
  return { checked, failures };
}
