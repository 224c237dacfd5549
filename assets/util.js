// Small shared helpers: building DOM nodes, talking to the API, and saying numbers
// and errors the way a person would.

/** Creates an element: h('p', {className: 'x', text: 'hi'}, child, ...). */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') el.textContent = v;
    else if (k === 'className') el.className = v;
    else if (k === 'htmlFor') el.setAttribute('for', v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
  }
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/** A small line icon from the sprite in index.html. */
export function icon(name, className = 'icon') {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('class', className);
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  const use = document.createElementNS(SVG_NS, 'use');
  use.setAttribute('href', `#i-${name}`);
  svg.appendChild(use);
  return svg;
}

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

/** fetch + JSON, turning `{"error":{...}}` bodies into an ApiError with the server's sentence. */
export async function api(path, options = {}) {
  let res;
  try {
    res = await fetch(path, {
      ...options,
      headers: { Accept: 'application/json', ...(options.body ? { 'Content-Type': 'application/json' } : {}), ...options.headers },
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, 'network', 'The server could not be reached. Check that agent-mesh is still running.');
  }
  let body = null;
  const text = await res.text();
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
  }
  if (!res.ok) {
    const e = body?.error;
    throw new ApiError(res.status, e?.code || 'http', e?.message || `The server answered ${res.status}.`, e?.field);
  }
  return body;
}

export function formatTokens(usage) {
  if (!usage) return null;
  const fmt = (n) => Number(n || 0).toLocaleString('en-US');
  return `${fmt(usage.input_tokens)} in · ${fmt(usage.output_tokens)} out`;
}

export function formatCost(cost) {
  if (cost === null || cost === undefined || Number.isNaN(cost)) return null;
  if (cost === 0) return '$0';
  return `$${cost.toFixed(cost < 1 ? 4 : 2)}`;
}

export function formatElapsed(ms) {
  if (ms === null || ms === undefined) return null;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - m * 60)} s`;
}

export function timeAgo(iso, now = Date.now()) {
  const t = Date.parse(iso);
  if (!t) return '';
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 45) return 'just now';
  if (s < 90) return '1 min ago';
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min ago`;
  const hr = Math.round(m / 60);
  if (hr < 24) return `${hr} h ago`;
  return new Date(t).toLocaleDateString();
}

/** The error kinds of SPEC §5.1, in words a user understands. */
const ERROR_WORDS = {
  auth: 'The provider refused the API key. Check the key set for this provider and restart agent-mesh.',
  rate_limit: 'The provider is limiting requests right now. Wait a little and run again.',
  timeout: 'The model took too long to answer, so agent-mesh stopped waiting.',
  upstream: 'The provider ran into a problem while answering.',
  bad_response: 'The provider sent an answer agent-mesh could not read.',
  network: 'agent-mesh could not reach the provider. Check the network or the provider address.',
  cancelled: 'Stopped because the run was cancelled.',
  config: 'This agent is not set up correctly: check its provider and model in Settings.',
  budget: "Stopped: the run's budget was reached, so the writer works from what the team had so far.",
};

export function friendlyError(err) {
  if (!err) return '';
  return ERROR_WORDS[err.kind] || 'Something went wrong with this agent.';
}

export function slugify(text, fallback = 'deliverable') {
  const s = String(text || '')
    .toLowerCase()
    .normalize('NFKD')
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 60)
    .replace(/-+$/, '');
  return s || fallback;
}

/** Runs `fn` at most once per animation frame, however often it is asked for. */
export function frameThrottle(fn) {
  let queued = false;
  return () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      fn();
    });
  };
}

/**
 * The link to a run's trace from the server's template (`MESH_TRACE_URL`, with
 * `{trace_id}`), or null: the id must be 32 hex digits (it is URL-encoded all the
 * same), and only an http(s) URL is ever returned.
 */
export function traceLink(template, traceId) {
  if (typeof template !== 'string' || !template.includes('{trace_id}')) return null;
  if (typeof traceId !== 'string' || !/^[0-9a-f]{32}$/i.test(traceId)) return null;
  let url;
  try {
    url = new URL(template.replaceAll('{trace_id}', encodeURIComponent(traceId)));
  } catch {
    return null;
  }
  return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : null;
}

export const prefersReducedMotion = () => window.matchMedia?.('(prefers-reduced-motion: reduce)').matches;
