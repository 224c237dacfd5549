// The page's entry point: loads the roster and providers, wires the task box, the
// settings and recent-runs drawers, and shows one run at a time. Runs started here
// keep streaming in the background while another one is shown, so the server never
// cancels them for want of a subscriber.

import { RunSession } from './run.js';
import { RunView } from './view.js';
import { Settings } from './settings.js';
import { ToolsPanel } from './tools.js';
import { api, h, timeAgo, slugify } from './util.js';

const CURRENT_KEY = 'agent-mesh.current';
const $ = (id) => document.getElementById(id);

const state = {
  roster: [],
  providers: [],
  sessions: new Map(),
  current: null,
  settings: null,
  tools: null,
  view: null,
  cancelling: new Set(),
  opening: 0,
};

function announce(text) {
  const el = $('announcer');
  el.textContent = '';
  // A fresh node each time so screen readers read a repeated message again.
  requestAnimationFrame(() => {
    el.textContent = text;
  });
}

function showFormError(message) {
  const el = $('form-error');
  el.textContent = message || '';
  el.hidden = !message;
}

// ------------------------------------------------------------ boot

async function boot() {
  const isMac = /Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent);
  if (isMac) $('mod-key').textContent = '⌘';

  let roster;
  let providers;
  let pageConfig;
  try {
    [roster, providers, pageConfig] = await Promise.all([
      api('/api/agents'),
      api('/api/providers'),
      // Optional extras (the trace link): the page works without them.
      api('/api/config').catch(() => ({})),
    ]);
  } catch (e) {
    const box = $('boot-error');
    box.textContent = `agent-mesh could not load its roster: ${e.message}`;
    box.hidden = false;
    return;
  }
  state.roster = Array.isArray(roster) ? roster : [];
  state.providers = Array.isArray(providers) ? providers : [];
  api('/health')
    .then((hl) => {
      if (hl?.version) $('version').textContent = `v${hl.version}`;
    })
    .catch(() => {});

  state.view = new RunView({
    cards: $('agent-cards'),
    plan: $('plan'),
    doc: $('deliverable'),
    docEmpty: $('doc-empty'),
    docState: $('doc-state'),
    copy: $('copy-doc'),
    download: $('download-doc'),
    badge: $('run-badge'),
    live: $('run-live'),
    conn: $('conn-status'),
    statTime: $('stat-time'),
    statTokens: $('stat-tokens'),
    statCost: $('stat-cost'),
    statTrace: $('stat-trace'),
    statTraceItem: $('stat-trace-item'),
    traceUrl: typeof pageConfig?.trace_url === 'string' ? pageConfig.trace_url : null,
    statBudget: $('stat-budget'),
    statBudgetBox: $('stat-budget-box'),
  });
  state.view.onStateChange = (s) => {
    if (s === state.current) updateButtons();
  };

  state.settings = new Settings({
    roster: state.roster,
    providers: state.providers,
    els: {
      provider: $('provider-select'),
      providerHelp: $('provider-help'),
      rows: $('model-rows'),
      catalogStatus: $('catalog-status'),
      refresh: $('refresh-catalog'),
      reset: $('reset-settings'),
      review: $('review-plan'),
    },
    onChange: () => updateSettingsSummary(),
  });
  updateSettingsSummary();
  state.settings.loadCatalog();
  state.tools = new ToolsPanel({ roster: state.roster, els: { status: $('tools-status'), servers: $('tool-servers'), agents: $('agent-tools') } });

  renderBrigade();
  wireComposer();
  wireDialogs();
  wireDeliverable();
  window.addEventListener('hashchange', () => {
    const id = runIdFromHash();
    if (id && id !== state.current?.id) openRun(id);
  });

  const wanted = runIdFromHash() || safeGet(CURRENT_KEY);
  if (wanted) await openRun(wanted, { quiet: true });
  refreshRecent();
  document.body.dataset.ready = 'true';
}

function safeGet(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

function safeSet(key, value) {
  try {
    if (value === null) localStorage.removeItem(key);
    else localStorage.setItem(key, value);
  } catch {
    /* private mode */
  }
}

function runIdFromHash() {
  const m = /^#run\/([0-9a-f]{8,64})$/i.exec(location.hash);
  return m ? m[1].toLowerCase() : null;
}

function updateSettingsSummary() {
  const s = state.settings;
  const sum = s.summary();
  $('settings-summary').textContent = sum.changed ? `${sum.provider} · ${sum.changed} changed` : sum.provider;
  const offline = s.effectiveProvider === 'offline';
  $('offline-banner').hidden = !offline;
}

function renderBrigade() {
  const list = $('brigade-list');
  const kindWords = { planner: 'plans the team', specialist: 'specialist', writer: 'writes the deliverable' };
  list.replaceChildren(
    ...state.roster.map((a) => {
      const li = h(
        'li',
        { className: 'brigade-item' },
        h('span', { className: 'agent-emoji', 'aria-hidden': 'true', text: a.emoji }),
        h('span', { className: 'brigade-text' }, h('span', { className: 'brigade-title', text: a.title }), h('span', { className: 'brigade-role', text: kindWords[a.kind] || a.kind })),
        h('span', { className: 'brigade-model', text: a.model }),
      );
      if (/^#[0-9a-f]{3,8}$/i.test(a.color)) li.style.setProperty('--accent', a.color);
      return li;
    }),
  );
}

// ------------------------------------------------------------ runs

function show(session) {
  state.current = session;
  state.view.bind(session);
  $('welcome').hidden = !!session;
  $('run-view').hidden = !session;
  if (session) {
    $('run-task').textContent = session.task;
    safeSet(CURRENT_KEY, session.id);
    if (location.hash !== `#run/${session.id}`) history.replaceState(null, '', `#run/${session.id}`);
    // Only a follow-up has a thread beyond itself; a first question needs no fetch.
    if (session.parent) loadThread(session.id);
    else $('thread').hidden = true;
  }
  updateButtons();
  markCurrentInLists();
}

/** The conversation the shown run belongs to, from its snapshot's `thread`. */
let threadTicket = 0;
async function loadThread(id) {
  const ticket = ++threadTicket;
  let snap;
  try {
    snap = await api(`/api/runs/${encodeURIComponent(id)}`);
  } catch {
    return;
  }
  if (ticket !== threadTicket || state.current?.id !== id) return;
  const thread = Array.isArray(snap.thread) ? snap.thread : [];
  $('thread').hidden = thread.length < 2;
  $('thread-list').replaceChildren(
    ...thread.map((t) => {
      const label = t.task ? t.task.replace(/\s+/g, ' ').slice(0, 80) : '(no longer on the server)';
      if (t.id === id) return h('li', { className: 'thread-item', 'aria-current': 'true' }, h('span', { text: label }));
      const b = h('button', { className: 'btn btn-link thread-link', type: 'button', text: label, disabled: !t.task });
      b.addEventListener('click', () => openRun(t.id));
      return h('li', { className: 'thread-item' }, b);
    }),
  );
}

function track(session) {
  state.sessions.set(session.id, session);
  session.onChange((what) => {
    if (what === 'done') {
      state.cancelling.delete(session.id);
      if (session === state.current) {
        state.view.flush();
        announce(session.status === 'completed' ? 'The run is complete. The deliverable is ready.' : `The run ended: ${session.status}.`);
      }
      refreshRecent();
    }
    if (session === state.current) updateButtons();
  });
}

async function startRun() {
  const task = $('task').value.trim();
  if (!task) {
    showFormError('Write a task for the team first.');
    $('task').focus();
    return;
  }
  showFormError('');
  const runButton = $('run-button');
  runButton.disabled = true;
  runButton.querySelector('span').textContent = 'Starting…';
  try {
    await launch(task, null);
  } catch (e) {
    let message = e.message;
    if (e.field && /^(provider|models)/.test(e.field)) message += ' Check the provider and models in Settings.';
    showFormError(message);
  } finally {
    runButton.disabled = false;
    runButton.querySelector('span').textContent = 'Run the team';
    updateButtons();
  }
}

/** Starts a run (a follow-up of `parent` when given) and shows it. */
async function launch(task, parent) {
  const body = { task, ...state.settings.runOptions() };
  if (parent) body.parent = parent;
  const res = await api('/api/run', { method: 'POST', body: JSON.stringify(body) });
  const session = new RunSession(res.id, state.roster, task);
  session.config = null;
  session.parent = parent;
  track(session);
  show(session);
  session.follow();
  // The stream says a run's budget only at its end: the start's answer has its caps.
  session.learnBudget(res.budget);
  announce(parent ? 'Follow-up started.' : 'Run started.');
  refreshRecent();
  $('run-view').scrollIntoView({ block: 'start', behavior: window.matchMedia('(prefers-reduced-motion: reduce)').matches ? 'auto' : 'smooth' });
}

async function askFollowUp() {
  const parent = state.current;
  const box = $('follow-up');
  const error = $('follow-up-error');
  const task = box.value.trim();
  if (!parent || parent.status !== 'completed') return;
  if (!task) {
    error.textContent = 'Write the follow-up question first.';
    error.hidden = false;
    box.focus();
    return;
  }
  error.hidden = true;
  const button = $('follow-up-button');
  button.disabled = true;
  try {
    await launch(task, parent.id);
    box.value = '';
  } catch (e) {
    error.textContent = e.message;
    error.hidden = false;
  } finally {
    button.disabled = false;
  }
}

/** Shows run `id`: from memory if this page follows it, else from its snapshot. */
async function openRun(id, { quiet = false } = {}) {
  const known = state.sessions.get(id);
  if (known) {
    show(known);
    return;
  }
  const ticket = ++state.opening;
  let snap;
  try {
    snap = await api(`/api/runs/${encodeURIComponent(id)}`);
  } catch (e) {
    if (ticket !== state.opening) return;
    if (safeGet(CURRENT_KEY) === id) safeSet(CURRENT_KEY, null);
    if (runIdFromHash() === id) history.replaceState(null, '', location.pathname);
    if (!quiet || e.status !== 404) {
      const message = e.status === 404 ? 'That run is no longer on the server (finished runs are kept for a while, then removed).' : e.message;
      showHistoryStatus(message);
      showFormError(quiet ? '' : message);
    }
    return;
  }
  if (ticket !== state.opening) return;
  const session = state.sessions.get(id) || RunSession.fromSnapshot(snap, state.roster);
  session.parent = snap.parent || null;
  track(session);
  show(session);
  // Render from the snapshot, then stream only what came after it.
  if (!session.finished) session.follow();
}

async function cancelCurrent() {
  const s = state.current;
  if (!s || s.finished) return;
  state.cancelling.add(s.id);
  updateButtons();
  try {
    await api(`/api/runs/${encodeURIComponent(s.id)}/cancel`, { method: 'POST' });
    announce('Cancelling the run…');
  } catch (e) {
    state.cancelling.delete(s.id);
    showFormError(`Could not cancel: ${e.message}`);
    updateButtons();
  }
}

function updateButtons() {
  const s = state.current;
  const cancel = $('cancel-run');
  const running = !!s && !s.finished;
  const cancelling = running && state.cancelling.has(s.id);
  cancel.disabled = !running || cancelling;
  cancel.querySelector('span').textContent = cancelling ? 'Cancelling…' : 'Cancel';
  document.body.dataset.runState = s ? s.status : 'none';
  // A follow-up answers a finished deliverable, so the box shows once there is one.
  $('follow-up-form').hidden = s?.status !== 'completed';
  const mark = { running: '● ', completed: '✓ ', cancelled: '■ ', failed: '✕ ' }[s?.status] || '';
  const task = s ? s.task.replace(/\s+/g, ' ').slice(0, 48) : '';
  document.title = s ? `${mark}${task}${s.task.length > 48 ? '…' : ''} · agent-mesh` : 'agent-mesh';
}

// ------------------------------------------------------------ composer

function wireComposer() {
  const form = $('run-form');
  const task = $('task');
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    startRun();
  });
  task.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      startRun();
    }
  });
  task.addEventListener('input', () => {
    if (!$('form-error').hidden && task.value.trim()) showFormError('');
  });
  $('cancel-run').addEventListener('click', cancelCurrent);
  for (const chip of document.querySelectorAll('[data-example]')) {
    chip.addEventListener('click', () => {
      task.value = chip.dataset.example;
      task.focus();
    });
  }
  $('follow-up-form').addEventListener('submit', (e) => {
    e.preventDefault();
    askFollowUp();
  });
  $('follow-up').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      askFollowUp();
    }
  });
  $('reuse-task').addEventListener('click', () => {
    if (!state.current) return;
    task.value = state.current.task;
    task.focus();
    task.scrollIntoView({ block: 'center' });
  });
}

// ------------------------------------------------------------ deliverable actions

function wireDeliverable() {
  $('copy-doc').addEventListener('click', async () => {
    const text = state.current?.deliverable || '';
    if (!text) return;
    let ok = false;
    try {
      await navigator.clipboard.writeText(text);
      ok = true;
    } catch {
      // Without the async clipboard (plain http on another host), copy via a selection.
      const ta = h('textarea', { className: 'offscreen', readOnly: true, 'aria-hidden': 'true' });
      ta.value = text;
      document.body.appendChild(ta);
      ta.select();
      try {
        ok = document.execCommand('copy');
      } catch {
        ok = false;
      }
      ta.remove();
    }
    const label = $('copy-doc').querySelector('span');
    label.textContent = ok ? 'Copied' : 'Copy failed';
    announce(ok ? 'The deliverable was copied as Markdown.' : 'Copying failed: select the text and copy it by hand.');
    setTimeout(() => {
      label.textContent = 'Copy';
    }, 1800);
  });
  $('download-doc').addEventListener('click', () => {
    const s = state.current;
    const text = s?.deliverable || '';
    if (!text) return;
    const blob = new Blob([text], { type: 'text/markdown;charset=utf-8' });
    const url = URL.createObjectURL(blob);
    const a = h('a', { href: url, download: `${slugify(s.task)}.md`, className: 'offscreen' });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  });
}

// ------------------------------------------------------------ dialogs and recent runs

function wireDialogs() {
  const pairs = [
    ['open-history', 'history-dialog', () => refreshRecent()],
    ['open-settings', 'settings-dialog', () => {
      state.settings.loadCatalog();
      state.tools.load();
    }],
  ];
  for (const [buttonId, dialogId, onOpen] of pairs) {
    const dialog = $(dialogId);
    const button = $(buttonId);
    button.setAttribute('aria-expanded', 'false');
    button.addEventListener('click', () => {
      onOpen();
      dialog.showModal();
      button.setAttribute('aria-expanded', 'true');
    });
    dialog.addEventListener('close', () => {
      button.setAttribute('aria-expanded', 'false');
      button.focus();
    });
    for (const closer of dialog.querySelectorAll('[data-close]')) {
      closer.addEventListener('click', () => dialog.close());
    }
    // A click on the backdrop (the dialog box itself, outside its content) closes it.
    dialog.addEventListener('click', (e) => {
      if (e.target === dialog) dialog.close();
    });
  }
  document.querySelector('[data-refresh-history]').addEventListener('click', () => refreshRecent());
}

function showHistoryStatus(text) {
  $('history-status').textContent = text || '';
}

const STATUS_WORDS = { running: 'running', completed: 'completed', cancelled: 'cancelled', failed: 'failed' };

/**
 * Runs grouped by conversation: each first question (newest first), then its
 * follow-ups in the order they were asked, marked with their depth.
 */
function groupByThread(runs) {
  const ids = new Set(runs.map((r) => r.id));
  const children = new Map();
  for (const r of runs) {
    if (r.parent && ids.has(r.parent)) {
      if (!children.has(r.parent)) children.set(r.parent, []);
      children.get(r.parent).push(r);
    }
  }
  const out = [];
  const visit = (r, depth) => {
    out.push({ ...r, depth });
    const kids = (children.get(r.id) || []).slice().sort((a, b) => (a.created_at < b.created_at ? -1 : 1));
    for (const k of kids) visit(k, depth + 1);
  };
  for (const r of runs) if (!(r.parent && ids.has(r.parent))) visit(r, 0);
  return out;
}

function runItem(run) {
  const follow = run.depth > 0;
  const button = h(
    'button',
    { className: follow ? 'run-item run-item-follow' : 'run-item', type: 'button', dataset: { runId: run.id } },
    h('span', { className: `run-dot run-dot-${run.status}`, 'aria-hidden': 'true' }),
    h('span', { className: 'run-item-task', text: `${follow ? '↳ ' : ''}${run.task || '(no task)'}` }),
    h(
      'span',
      { className: 'run-item-meta' },
      h('span', { className: `run-item-status status-${run.status}`, text: STATUS_WORDS[run.status] || run.status }),
      h('span', { text: ` · ${timeAgo(run.created_at)}` }),
    ),
  );
  button.addEventListener('click', () => {
    const dialog = $('history-dialog');
    if (dialog.open) dialog.close();
    openRun(run.id);
    $('run-view').scrollIntoView({ block: 'start' });
  });
  return h('li', follow ? { className: 'run-follow', dataset: { depth: String(Math.min(run.depth, 4)) } } : {}, button);
}

function markCurrentInLists() {
  for (const b of document.querySelectorAll('.run-item')) {
    if (state.current && b.dataset.runId === state.current.id) b.setAttribute('aria-current', 'true');
    else b.removeAttribute('aria-current');
  }
}

let recentTicket = 0;
async function refreshRecent() {
  const ticket = ++recentTicket;
  let runs;
  try {
    runs = await api('/api/runs');
  } catch (e) {
    if (ticket === recentTicket) showHistoryStatus(`Could not load recent runs: ${e.message}`);
    return;
  }
  if (ticket !== recentTicket || !Array.isArray(runs)) return;
  showHistoryStatus(runs.length ? '' : 'No runs yet. Start one from the task box.');
  const grouped = groupByThread(runs);
  $('history-list').replaceChildren(...grouped.map(runItem));
  $('recent-inline-list').replaceChildren(...grouped.slice(0, 5).map(runItem));
  $('recent-inline').hidden = runs.length === 0;
  markCurrentInLists();
}

boot();
