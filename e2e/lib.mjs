// Shared test plumbing: start a real agent-mesh server on a free port, drive Debian's
// Chromium with playwright-core, and collect console errors and CSP violations.

import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const ARTIFACTS = join(here, 'artifacts');
mkdirSync(ARTIFACTS, { recursive: true });

export const MESH_BIN = resolve(here, process.env.MESH_BIN || '../target/debug/agent-mesh');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/**
 * Starts the server with MESH_ADDR=127.0.0.1:0 and resolves once it logs its
 * `listening on http://ADDR` line. Never assumes a port, never sleeps.
 */
export function startServer({ delayMs = 5, env = {}, timeoutMs = 20000 } = {}) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(MESH_BIN, [], {
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME || '/tmp',
        MESH_ADDR: '127.0.0.1:0',
        MESH_OFFLINE_DELAY_MS: String(delayMs),
        MESH_LOG: 'info',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not start within ${timeoutMs} ms; log:\n${log}`));
    }, timeoutMs);
    const onData = (chunk) => {
      log += chunk.toString();
      const m = /listening on (https?:\/\/[^\s]+)/.exec(log);
      if (m) {
        clearTimeout(timer);
        child.stdout.removeAllListeners('data');
        child.stderr.removeAllListeners('data');
        // Keep draining the pipes so the server never blocks on a full buffer.
        child.stdout.resume();
        child.stderr.resume();
        resolvePromise({
          url: m[1],
          child,
          async stop() {
            if (child.exitCode !== null || child.signalCode !== null) return;
            const exited = new Promise((r) => child.once('exit', r));
            child.kill('SIGTERM');
            const t = setTimeout(() => child.kill('SIGKILL'), 5000);
            await exited;
            clearTimeout(t);
          },
        });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`could not start ${MESH_BIN}: ${e.message} (build it with cargo build, or set MESH_BIN)`));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening; log:\n${log}`));
    });
  });
}

export function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-quic',
      '--no-first-run',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/**
 * A new page that records problems: console errors, uncaught exceptions and CSP
 * violations (the page's `securitypolicyviolation` events, seen by an init script).
 * `allow(message)` may excuse a known, expected message.
 */
/**
 * Opens the page with console, page-error and CSP watchers. `beforeGoto(page)` runs
 * before the first navigation (e.g. to route a request to a simulated failure);
 * `allow(text, url)` excuses console errors a test provokes on purpose.
 */
export async function openPage(browser, baseUrl, { viewport = { width: 1280, height: 900 }, allow = () => false, context: ctxOptions = {}, beforeGoto = null } = {}) {
  const context = await browser.newContext({ viewport, ...ctxOptions });
  const page = await context.newPage();
  const problems = [];
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const text = msg.text();
    const url = msg.location()?.url || '';
    if (allow(text, url)) return;
    problems.push(`console error: ${text} (${url})`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'}`);
    });
  });
  page.problems = async () => {
    let csp = [];
    try {
      csp = await page.evaluate(() => window.__csp || []);
    } catch {
      /* the page may be gone */
    }
    return [...problems, ...csp.map((c) => `CSP violation: ${c}`)];
  };
  page.setDefaultTimeout(15000);
  if (beforeGoto) await beforeGoto(page);
  await page.goto(baseUrl);
  await page.waitForSelector('body[data-ready="true"]');
  return { page, context };
}

export async function api(baseUrl, path, options = {}) {
  const res = await fetch(new URL(path, baseUrl), {
    ...options,
    headers: { 'content-type': 'application/json', ...(options.headers || {}) },
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/** Polls the run's snapshot until it is no longer running. */
export async function waitForRunEnd(baseUrl, id, timeoutMs = 30000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const { body } = await api(baseUrl, `/api/runs/${id}`);
    if (body && body.status !== 'running') return body;
    if (Date.now() > until) throw new Error(`run ${id} still running after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Saves e2e/artifacts/NAME.png: the whole page, or just the viewport (for open drawers). */
export async function screenshot(page, name, { fullPage = true } = {}) {
  // Let finite animations (a drawer sliding in) settle first.
  await page.evaluate(() =>
    Promise.all(
      document
        .getAnimations()
        .filter((a) => a.effect?.getComputedTiming().iterations !== Infinity)
        .map((a) => a.finished.catch(() => {})),
    ),
  );
  return page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage });
}

/** The id of the run the page shows (from its #run/<id> address). */
export async function currentRunId(page) {
  return page.evaluate(() => (/^#run\/([0-9a-f]+)$/.exec(location.hash) || [])[1] || null);
}

/** Renders Markdown with the page's own renderer, for comparing with what is shown. */
export function referenceRender(page, markdown) {
  return page.evaluate(async (md) => {
    const { renderMarkdown } = await import('/assets/markdown.js');
    const box = document.createElement('div');
    box.appendChild(renderMarkdown(md));
    return box.innerHTML;
  }, markdown);
}
