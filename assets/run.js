// One run as the page knows it: its state folded from a snapshot and/or the event
// stream (SPEC §6), exactly as the server folds it, plus who is listening.

import { followStream } from './sse.js';

const titleCase = (s) => (s ? s[0].toUpperCase() + s.slice(1) : s);

/** The page's view of one agent of a run. */
function agentFrom(meta, name) {
  return {
    name,
    title: meta?.title || titleCase(name),
    emoji: meta?.emoji || '•',
    color: meta?.color || '',
    kind: meta?.kind || 'specialist',
    state: 'queued',
    detail: '',
    model: meta?.model || '',
    provider: '',
    substitutedFor: null,
    text: '',
    usage: null,
    cost: null,
    elapsedMs: null,
    ttftMs: null,
    startedAt: null,
    error: null, // {kind, message, status}
    cancelled: false,
    // Tool calls in the order they were made; `at` is how much of `text` came before
    // each, so the card keeps tokens and calls in the order they happened.
    tools: [],
  };
}

/** One tool call of an agent, from a `tool_call` event or a snapshot entry. */
function toolFrom(d, at) {
  return {
    callId: String(d.call_id ?? ''),
    server: d.server || '',
    tool: d.tool || '',
    arguments: d.arguments ?? null,
    ok: null, // null until the result arrives
    content: '',
    elapsedMs: null,
    at,
  };
}

function settleTool(call, d) {
  call.ok = d.ok !== false;
  call.content = typeof d.content === 'string' ? d.content : d.content === null || d.content === undefined ? '' : JSON.stringify(d.content);
  call.elapsedMs = d.elapsed_ms ?? null;
}

/** A `budget` object of the server's, or null; numbers checked, names kept as strings. */
export function validBudget(b) {
  if (!b || typeof b !== 'object') return null;
  const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  const usd = num(b.usd);
  const tokens = num(b.tokens);
  if (usd === null && tokens === null) return null;
  return {
    usd,
    tokens,
    spent_usd: num(b.spent_usd) ?? 0,
    spent_tokens: num(b.spent_tokens) ?? 0,
    exhausted: b.exhausted === true,
    unpriced: Array.isArray(b.unpriced) ? b.unpriced.filter((n) => typeof n === 'string') : [],
  };
}

export class RunSession {
  /** roster: the /api/agents list, in pipeline order. */
  constructor(id, roster, task = '') {
    this.id = id;
    this.task = task;
    this.status = 'running';
    this.plan = null;
    this.awaitingReview = false; // paused until the plan is approved (`review`)
    this.roster = roster;
    this.agents = roster.map((a) => agentFrom(a, a.name));
    this.output = '';
    this.usage = null;
    this.cost = null;
    this.elapsedMs = null;
    /** The run's trace id (`done`, or the snapshot once done) when the server traces. */
    this.traceId = null;
    this.createdAt = Date.now();
    this.finishedAt = null;
    this.runError = null; // a run-level error event or detail
    this.lastEventId = 0;
    this.connection = 'idle'; // idle | connecting | open | reconnecting | gone | closed
    this.connectionInfo = null;
    this.config = null;
    // {usd, tokens, spent_usd, spent_tokens, exhausted, unpriced} when the run has a
    // budget (from the snapshot, then `done`); spend while running is folded live.
    this.budget = null;
    this.budgetStopped = false;
    this.listeners = new Set();
    this.stream = null;
  }

  agent(name) {
    let a = this.agents.find((x) => x.name === name);
    if (!a) {
      a = agentFrom(null, name);
      this.agents.push(a);
    }
    return a;
  }

  get writer() {
    return this.agents.find((a) => a.kind === 'writer') || null;
  }

  /** The deliverable: the final output once done, else whatever the writer has written. */
  get deliverable() {
    if (this.output) return this.output;
    return this.writer?.text || '';
  }

  get finished() {
    return this.status !== 'running';
  }

  onChange(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  emit(what) {
    for (const fn of this.listeners) fn(what, this);
  }

  /** Builds a session from GET /api/runs/{id}: the state as of `last_event_id`. */
  static fromSnapshot(snap, roster) {
    const s = new RunSession(snap.id, roster, snap.task);
    s.status = snap.status;
    s.plan = snap.plan || null;
    s.awaitingReview = snap.awaiting_review === true;
    s.config = snap.config || null;
    s.createdAt = Date.parse(snap.created_at) || Date.now();
    s.finishedAt = snap.finished_at ? Date.parse(snap.finished_at) : null;
    const byName = new Map(roster.map((a) => [a.name, a]));
    s.agents = (snap.agents || []).map((a) => {
      const agent = agentFrom(byName.get(a.name), a.name);
      agent.kind = a.kind || agent.kind;
      agent.state = a.state;
      agent.model = a.model || agent.model;
      agent.provider = a.provider || '';
      agent.text = a.output || '';
      agent.usage = a.usage || null;
      agent.cost = a.cost_usd ?? null;
      agent.elapsedMs = a.elapsed_ms ?? null;
      // The snapshot does not say where in the text a call happened; a call made
      // before any token (the usual case) sits first, as it did live.
      agent.tools = (Array.isArray(a.tools) ? a.tools : []).map((t) => {
        const call = toolFrom(t, Number.isSafeInteger(t.at) ? Math.min(t.at, agent.text.length) : 0);
        if (t.ok !== undefined && t.ok !== null) settleTool(call, t);
        return call;
      });
      if (a.error) {
        const cancelled = /^cancelled\b/i.test(a.error);
        agent.error = { kind: cancelled ? 'cancelled' : null, message: a.error, status: null };
        agent.cancelled = cancelled;
      }
      if (a.state === 'running' || a.state === 'writing' || a.state === 'planning' || a.state === 'retrying') {
        agent.startedAt = Date.now() - (a.elapsed_ms || 0);
      }
      return agent;
    });
    s.budget = validBudget(snap.budget);
    s.budgetStopped = Boolean(s.budget?.exhausted);
    s.output = snap.output || '';
    s.usage = snap.usage || null;
    s.cost = snap.cost_usd ?? null;
    s.traceId = snap.trace_id || null;
    if (s.finishedAt) s.elapsedMs = Math.max(0, s.finishedAt - s.createdAt);
    s.lastEventId = Number(snap.last_event_id) || 0;
    return s;
  }

  /** Follows the stream from `lastEventId` (0: from the first event). */
  follow() {
    if (this.stream || this.finished) return;
    this.stream = followStream(`/api/stream/${encodeURIComponent(this.id)}`, {
      lastEventId: this.lastEventId,
      onEvent: (ev) => this.apply(ev),
      onState: (state, info) => {
        this.connection = state;
        this.connectionInfo = info || null;
        if (state === 'gone' && !this.finished) {
          this.status = 'gone';
          this.runError = { kind: null, message: info?.message || 'This run is no longer on the server.' };
        }
        if (state === 'gone' || state === 'closed') this.stream = null;
        this.emit('connection');
      },
    });
  }

  /** Takes the caps of a snapshot's `budget` (the spend stays what the events say). */
  learnBudget(budget) {
    const b = validBudget(budget);
    if (!b) return;
    if (this.budget?.final) return;
    this.budget = { ...b, unpriced: b.unpriced };
    this.emit('run');
  }

  /**
   * Spend against the budget: `done`'s report once the run ended; while it runs, the
   * finished calls' reported usage and cost plus about a token per four characters of
   * what is streaming now (`estimated` true).
   */
  budgetSpend() {
    const b = this.budget;
    if (!b) return null;
    if (b.final) return { tokens: b.spent_tokens, usd: b.spent_usd, estimated: false, exhausted: b.exhausted };
    let tokens = 0;
    let usd = 0;
    let estimated = false;
    for (const a of this.agents) {
      if (a.usage) tokens += (a.usage.input_tokens || 0) + (a.usage.output_tokens || 0);
      if (typeof a.cost === 'number') usd += a.cost;
      if (['running', 'writing', 'planning'].includes(a.state) && a.text) {
        tokens += Math.ceil(a.text.length / 4);
        estimated = true;
      }
    }
    return { tokens: Math.max(tokens, b.spent_tokens || 0), usd: Math.max(usd, b.spent_usd || 0), estimated, exhausted: this.budgetStopped || b.exhausted };
  }

  stop() {
    this.stream?.close();
    this.stream = null;
  }

  /** Folds one numbered event into the state. */
  apply({ type, data, id }) {
    if (id <= this.lastEventId) return;
    this.lastEventId = id;
    const d = data || {};
    switch (type) {
      case 'status': {
        if (d.agent) {
          const a = this.agent(d.agent);
          a.state = d.state;
          a.detail = d.detail || '';
          if (d.state === 'planning' && !a.startedAt) a.startedAt = Date.now();
          this.emit(`agent:${d.agent}`);
        } else if (d.state === 'awaiting_review') {
          this.awaitingReview = true;
          this.emit('plan');
          this.emit('run');
        } else if (d.state === 'failed') {
          this.runError = { kind: /cancel/i.test(d.detail || '') ? 'cancelled' : null, message: d.detail || '' };
          this.emit('run');
        } else {
          this.emit('run');
        }
        break;
      }
      case 'plan':
        this.plan = d;
        if (d.source === 'review') this.awaitingReview = false;
        this.emit('plan');
        break;
      case 'stream_start': {
        const a = this.agent(d.agent);
        a.state = a.kind === 'writer' ? 'writing' : 'running';
        a.detail = '';
        a.model = d.model || a.model;
        a.provider = d.provider || '';
        a.substitutedFor = d.substituted_for || null;
        a.text = '';
        a.tools = [];
        a.error = null;
        a.startedAt = Date.now();
        this.emit(`agent:${d.agent}`);
        break;
      }
      case 'token': {
        const a = this.agent(d.agent);
        a.text += d.text;
        this.emit(`text:${d.agent}`);
        break;
      }
      case 'tool_call': {
        const a = this.agent(d.agent);
        const id = String(d.call_id ?? '');
        // A call id seen before (a repeated event) updates that call, never adds one.
        const known = a.tools.find((t) => t.callId === id);
        if (known) Object.assign(known, { server: d.server || known.server, tool: d.tool || known.tool, arguments: d.arguments ?? known.arguments });
        else a.tools.push(toolFrom(d, a.text.length));
        this.emit(`tools:${d.agent}`);
        break;
      }
      case 'tool_result': {
        const a = this.agent(d.agent);
        const id = String(d.call_id ?? '');
        let call = a.tools.find((t) => t.callId === id);
        if (!call) {
          call = toolFrom(d, a.text.length);
          a.tools.push(call);
        }
        settleTool(call, d);
        this.emit(`tools:${d.agent}`);
        break;
      }
      case 'stream_end': {
        const a = this.agent(d.agent);
        a.state = 'done';
        a.usage = d.usage || null;
        a.cost = d.cost_usd ?? null;
        a.elapsedMs = d.elapsed_ms ?? null;
        a.ttftMs = d.ttft_ms ?? null;
        this.emit(`agent:${d.agent}`);
        break;
      }
      case 'error': {
        const err = { kind: d.kind || null, message: d.message || '', status: d.status ?? null };
        if (d.kind === 'budget') {
          this.budgetStopped = true;
          this.emit('run');
        }
        if (d.agent) {
          const a = this.agent(d.agent);
          a.error = err;
          a.cancelled = d.kind === 'cancelled';
          this.emit(`agent:${d.agent}`);
        } else {
          this.runError = err;
          this.emit('run');
        }
        break;
      }
      case 'done': {
        this.status = d.status;
        if (this.awaitingReview) {
          this.awaitingReview = false;
          this.emit('plan');
        }
        this.output = d.output || '';
        this.usage = d.usage || null;
        this.cost = d.cost_usd ?? null;
        this.elapsedMs = d.elapsed_ms ?? null;
        this.traceId = d.trace_id || null;
        this.finishedAt = Date.now();
        if (validBudget(d.budget)) {
          this.budget = { ...validBudget(d.budget), unpriced: this.budget?.unpriced || [], final: true };
        }
        // The same settling the server's snapshot does.
        for (const a of this.agents) {
          if (a.state === 'queued') a.state = 'skipped';
          else if (['planning', 'running', 'writing', 'retrying'].includes(a.state)) {
            a.state = 'failed';
            if (!a.error && d.status === 'cancelled') {
              a.error = { kind: 'cancelled', message: 'cancelled', status: null };
              a.cancelled = true;
            }
          }
        }
        this.emit('done');
        break;
      }
      default:
        break;
    }
  }
}
