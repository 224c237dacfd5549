// Draws one RunSession: the run header, the plan, a card per agent and the
// deliverable. Changes are collected and drawn at most once per animation frame, so
// a fast token stream costs one layout per frame, not one per token.

import { renderMarkdown } from './markdown.js';
import { planEditor } from './review.js';
import { h, formatTokens, formatCost, formatElapsed, friendlyError, frameThrottle, traceLink } from './util.js';

const ACTIVE = new Set(['planning', 'running', 'writing', 'retrying']);
const HEX = /^#[0-9a-f]{3,8}$/i;

function stateLabel(agent) {
  if (agent.state === 'failed' && agent.cancelled) return 'cancelled';
  return agent.state || 'queued';
}

function badgeClass(label) {
  switch (label) {
    case 'planning':
    case 'running':
    case 'writing':
      return 'badge badge-running';
    case 'retrying':
      return 'badge badge-retrying';
    case 'done':
      return 'badge badge-done';
    case 'failed':
      return 'badge badge-failed';
    case 'cancelled':
      return 'badge badge-cancelled';
    default:
      return 'badge badge-idle';
  }
}

const RUN_LABELS = { running: 'running', completed: 'completed', cancelled: 'cancelled', failed: 'failed', gone: 'unavailable' };

/** Keeps a scrollable box pinned to its bottom while it grows, unless the reader scrolled up. */
function stickToBottom(el, fn) {
  const pinned = el.scrollHeight - el.scrollTop - el.clientHeight < 32;
  fn();
  if (pinned) el.scrollTop = el.scrollHeight;
}

function totalUsage(session) {
  if (session.usage) return session.usage;
  let any = false;
  const sum = { input_tokens: 0, output_tokens: 0 };
  for (const a of session.agents) {
    if (!a.usage) continue;
    any = true;
    sum.input_tokens += a.usage.input_tokens || 0;
    sum.output_tokens += a.usage.output_tokens || 0;
  }
  return any ? sum : null;
}

function totalCost(session) {
  if (session.cost !== null && session.cost !== undefined) return session.cost;
  let any = false;
  let sum = 0;
  for (const a of session.agents) {
    if (a.cost === null || a.cost === undefined) continue;
    any = true;
    sum += a.cost;
  }
  return any ? sum : null;
}

export class RunView {
  constructor(els) {
    this.els = els;
    this.session = null;
    this.unsubscribe = null;
    this.cards = new Map();
    this.dirty = { run: true, plan: true, doc: true, agents: new Set(), text: new Set() };
    this.schedule = frameThrottle(() => this.render());
    this.lastLive = '';
    this.onStateChange = () => {};
    this.tick = setInterval(() => this.tickClock(), 500);
  }

  /** Shows `session` (or nothing) from now on. */
  bind(session) {
    this.unsubscribe?.();
    this.session = session;
    this.cards.clear();
    this.els.cards.replaceChildren();
    this.els.plan.replaceChildren();
    this.els.plan.dataset.state = '';
    this.els.doc.replaceChildren();
    this.lastLive = '';
    this.docText = null;
    if (!session) return;
    for (const a of session.agents) this.ensureCard(a);
    this.dirty = { run: true, plan: true, doc: true, agents: new Set(session.agents.map((a) => a.name)), text: new Set(session.agents.map((a) => a.name)) };
    this.unsubscribe = session.onChange((what) => this.changed(what));
    this.render();
  }

  changed(what) {
    const d = this.dirty;
    if (what.startsWith('tools:')) {
      d.text.add(what.slice(6));
      d.run = true;
    } else if (what.startsWith('text:')) {
      const name = what.slice(5);
      d.text.add(name);
      if (this.session.agent(name).kind === 'writer') d.doc = true;
    } else if (what.startsWith('agent:')) {
      d.agents.add(what.slice(6));
      d.text.add(what.slice(6));
      d.run = true;
    } else if (what === 'plan') {
      d.plan = true;
      for (const a of this.session.agents) d.agents.add(a.name);
    } else {
      d.run = true;
      if (what === 'done') {
        d.doc = true;
        for (const a of this.session.agents) {
          d.agents.add(a.name);
          d.text.add(a.name);
        }
      }
    }
    this.schedule();
  }

  /** Draws everything that changed since the last frame. */
  render() {
    const s = this.session;
    if (!s) return;
    const d = this.dirty;
    this.dirty = { run: false, plan: false, doc: false, agents: new Set(), text: new Set() };
    for (const a of s.agents) if (!this.cards.has(a.name)) this.ensureCard(a);
    if (d.plan) this.renderPlan();
    for (const name of d.agents) this.renderCard(s.agent(name));
    for (const name of d.text) this.renderText(s.agent(name));
    if (d.doc) this.renderDoc();
    if (d.run || d.agents.size > 0) this.renderRun();
    else if (d.text.size > 0 && s.budget) this.renderBudget();
  }

  /** Draws at once, without waiting for a frame (used when a run ends). */
  flush() {
    this.render();
  }

  tickClock() {
    const s = this.session;
    if (!s || s.finished) return;
    this.renderStats();
    for (const a of s.agents) {
      if (ACTIVE.has(a.state) && a.startedAt) {
        const card = this.cards.get(a.name);
        if (card) card.time.textContent = formatElapsed(Date.now() - a.startedAt);
      }
    }
  }

  // ------------------------------------------------------------ run header

  renderRun() {
    const s = this.session;
    const { badge, live, conn } = this.els;
    const label = RUN_LABELS[s.status] || s.status;
    badge.textContent = label;
    badge.className = `run-badge run-${s.status}`;
    const text = this.liveText();
    if (text !== this.lastLive) {
      live.textContent = text;
      this.lastLive = text;
    }
    const reconnecting = !s.finished && s.connection === 'reconnecting';
    conn.hidden = !reconnecting;
    this.renderStats();
    this.onStateChange(s);
  }

  liveText() {
    const s = this.session;
    if (s.status === 'completed') {
      const t = formatElapsed(s.elapsedMs);
      return `Done${t ? ` in ${t}` : ''}: the deliverable is ready.`;
    }
    if (s.status === 'cancelled') {
      const why = s.runError?.message?.replace(/^run cancelled:\s*/i, '').trim() || '';
      if (!why || why === 'cancelled') return 'Cancelled.';
      if (/^cancelled\b/i.test(why)) return `${why[0].toUpperCase()}${why.slice(1)}.`;
      return `Cancelled: ${why}.`;
    }
    if (s.status === 'failed') {
      const w = s.writer;
      if (w?.error) return `The run failed: the writer could not finish. ${friendlyError(w.error)}`;
      return `The run failed.${s.runError?.message ? ` ${s.runError.message}` : ''}`;
    }
    if (s.status === 'gone') return s.runError?.message || 'This run is no longer on the server.';
    const actives = s.agents.filter((a) => ACTIVE.has(a.state));
    const active = actives[0];
    if (s.awaitingReview) return 'Waiting for you to review the plan…';
    if (!active) return s.plan ? 'Handing over to the next agent…' : 'Starting the run…';
    if (actives.length > 1) return `${actives.map((a) => a.title).join(' and ')} are working at once…`;
    switch (active.state) {
      case 'planning':
        return `${active.title} is choosing the team…`;
      case 'writing':
        return `${active.title} is writing the deliverable…`;
      case 'retrying':
        return `${active.title} is retrying after a hiccup…`;
      default: {
        const pending = active.tools?.find((t) => t.ok === null);
        if (pending) return `${active.title} is calling the tool ${pending.tool} on ${pending.server}…`;
        return `${active.title} is working…`;
      }
    }
  }

  renderStats() {
    const s = this.session;
    const { statTime, statTokens, statCost } = this.els;
    const elapsed = s.elapsedMs ?? (s.finished ? null : Math.max(0, Date.now() - s.createdAt));
    statTime.textContent = formatElapsed(elapsed) || '—';
    // A finished run whose provider sent no token counts: say so, never "0 in · 0 out".
    statTokens.textContent = formatTokens(totalUsage(s)) || (s.finished ? 'not reported' : '—');
    const cost = totalCost(s);
    const offline = s.agents.some((a) => a.provider === 'offline') && s.agents.every((a) => !a.provider || a.provider === 'offline');
    statCost.textContent = formatCost(cost) || (offline ? 'free' : 'not reported');
    // The trace link, when the server names a trace viewer (MESH_TRACE_URL).
    const { statTrace, statTraceItem, traceUrl } = this.els;
    if (statTrace && statTraceItem) {
      const link = traceLink(traceUrl, s.traceId);
      statTraceItem.hidden = !link;
      if (link) {
        statTrace.href = link;
        statTrace.title = `Trace ${s.traceId}`;
      } else {
        statTrace.removeAttribute('href');
      }
    }
    this.renderBudget();
  }

  /** Spend against the run's budget (hidden without one); text only, never markup. */
  renderBudget() {
    const { statBudget, statBudgetBox } = this.els;
    if (!statBudget || !statBudgetBox) return;
    const s = this.session;
    const spend = s.budgetSpend();
    statBudgetBox.hidden = !spend;
    if (!spend) return;
    const b = s.budget;
    const about = spend.estimated ? '≈' : '';
    const parts = [];
    if (b.tokens !== null) parts.push(`${about}${Math.round(spend.tokens).toLocaleString('en-US')} / ${b.tokens.toLocaleString('en-US')} tokens`);
    if (b.usd !== null) parts.push(`${formatCost(spend.usd) || '$0'} / ${formatCost(b.usd)}`);
    let text = parts.join(' · ');
    if (spend.exhausted) text += ' · budget reached';
    statBudget.textContent = text;
    statBudgetBox.classList.toggle('is-exhausted', spend.exhausted);
    const unpriced = b.usd !== null ? b.unpriced : [];
    statBudgetBox.title = unpriced.length ? `No price is known for: ${unpriced.join(', ')}. Their dollars count only when the provider reports a cost.` : '';
  }

  // ------------------------------------------------------------ plan

  renderPlan() {
    const s = this.session;
    const box = this.els.plan;
    const plan = s.plan;
    if (!plan) {
      box.replaceChildren(h('p', { className: 'plan-pending', text: s.finished ? 'No plan was made.' : 'The orchestrator is reading the task and choosing a team…' }));
      box.dataset.state = 'pending';
      return;
    }
    if (s.awaitingReview && !s.finished) {
      // Built once per pause: later renders must not wipe what the user typed.
      if (box.dataset.state !== 'review' || box.dataset.run !== s.id) {
        box.replaceChildren(planEditor(s, { onError: () => {} }));
        box.dataset.state = 'review';
        box.dataset.run = s.id;
      }
      return;
    }
    box.dataset.state = 'ready';
    const source = {
      orchestrator: 'chosen by the orchestrator',
      fallback: 'default team (fallback)',
      request: 'chosen by the request',
      review: 'approved by your review',
    }[plan.source] || plan.source;
    const team = new Set(plan.agents || []);
    const chips = s.agents
      .filter((a) => a.kind === 'specialist' || team.has(a.name))
      .map((a) => {
        const chosen = team.has(a.name);
        const chip = h(
          'li',
          { className: `team-chip ${chosen ? 'is-chosen' : 'is-skipped'}` },
          h('span', { className: 'team-chip-emoji', 'aria-hidden': 'true', text: a.emoji }),
          h('span', { text: a.title }),
          h('span', { className: chosen ? 'sr-only' : 'team-chip-note', text: chosen ? ' (on the team)' : 'skipped' }),
        );
        if (HEX.test(a.color)) chip.style.setProperty('--accent', a.color);
        return chip;
      });
    const parts = [
      h('p', { className: 'plan-source' }, h('span', { className: 'plan-kicker', text: 'Plan' }), ` · ${source}`),
      h('ul', { className: 'team-chips', 'aria-label': 'Team' }, chips),
    ];
    // The parallel schedule's stages: members of one stage work at once, each stage
    // after what it depends on (longest dependency depth).
    if (plan.schedule === 'parallel' && Array.isArray(plan.stages) && plan.stages.length) {
      const titleOf = (n) => s.agents.find((a) => a.name === n)?.title || n;
      parts.push(
        h(
          'ol',
          { className: 'plan-stages', 'aria-label': 'Stages' },
          plan.stages.map((stage, i) =>
            h('li', { className: 'plan-stage', dataset: { stage: String(i + 1) } }, h('span', { className: 'plan-kicker', text: `Stage ${i + 1}` }), ` ${stage.map(titleOf).join(' · ')}`),
          ),
        ),
      );
    }
    if (plan.reasoning) parts.push(h('p', { className: 'plan-reasoning', text: plan.reasoning }));
    if (plan.source === 'fallback') {
      parts.push(
        h('p', { className: 'plan-fallback' }, h('strong', { text: 'Fallback: ' }), `the orchestrator's plan could not be used${plan.reason ? ` (${plan.reason})` : ''}, so the default team runs.`),
      );
    }
    if (plan.dropped?.length) {
      parts.push(h('p', { className: 'plan-dropped', text: `Left out names the roster does not have: ${plan.dropped.join(', ')}.` }));
    }
    box.replaceChildren(...parts);
  }

  // ------------------------------------------------------------ cards

  ensureCard(agent) {
    if (this.cards.has(agent.name)) return this.cards.get(agent.name);
    const id = `agent-${agent.name}`;
    const badge = h('span', { className: 'badge badge-idle' });
    const model = h('span', { className: 'agent-model-id' });
    const provider = h('span', { className: 'agent-provider' });
    const note = h('p', { className: 'agent-note', hidden: true });
    const sub = h('p', { className: 'agent-sub', hidden: true });
    const error = h('div', { className: 'agent-error', hidden: true });
    const tokens = h('dd', { text: '—' });
    const cost = h('dd', { text: '—' });
    const time = h('dd', { text: '—' });
    let output;
    let raw = null;
    let rawDetails = null;
    if (agent.kind === 'writer') {
      raw = h('pre', { className: 'raw-md' });
      output = h('p', { className: 'agent-writer-note', text: 'Writes the deliverable.' });
      rawDetails = h('details', { className: 'raw-details', hidden: true }, h('summary', { text: 'Raw Markdown' }), raw);
    } else if (agent.kind === 'planner') {
      output = h('pre', { className: 'agent-output agent-output-raw', tabindex: '0', role: 'region', 'aria-label': `${agent.title} output` });
    } else {
      output = h('div', { className: 'agent-output prose prose-small', tabindex: '0', role: 'region', 'aria-label': `${agent.title} output` });
    }
    const li = h(
      'li',
      { className: `agent-card kind-${agent.kind}`, dataset: { agent: agent.name, state: 'queued' }, 'aria-labelledby': `${id}-title` },
      h(
        'header',
        { className: 'agent-head' },
        h('span', { className: 'agent-emoji', 'aria-hidden': 'true', text: agent.emoji }),
        h(
          'div',
          { className: 'agent-id' },
          h('h3', { id: `${id}-title`, className: 'agent-title', text: agent.title }),
          h('p', { className: 'agent-model' }, model, h('span', { className: 'agent-dot', 'aria-hidden': 'true', text: ' · ' }), provider),
        ),
        badge,
      ),
      sub,
      note,
      output,
      rawDetails,
      error,
      h(
        'dl',
        { className: 'agent-meta' },
        h('div', {}, h('dt', { text: 'Tokens' }), tokens),
        h('div', {}, h('dt', { text: 'Cost' }), cost),
        h('div', {}, h('dt', { text: 'Time' }), time),
      ),
    );
    if (HEX.test(agent.color)) li.style.setProperty('--accent', agent.color);
    const card = { li, badge, model, provider, note, sub, error, output, raw, rawDetails, tokens, cost, time, rendered: null, rawLen: 0, toolEls: new Map(), toolsDrawn: '' };
    this.cards.set(agent.name, card);
    this.els.cards.appendChild(li);
    return card;
  }

  renderCard(a) {
    const card = this.ensureCard(a);
    const s = this.session;
    const label = stateLabel(a);
    card.li.dataset.state = label;
    card.badge.textContent = label;
    card.badge.className = badgeClass(label);
    card.model.textContent = a.model || '—';
    card.provider.textContent = a.provider || (s.config?.agents?.[a.name]?.provider ?? '');
    card.provider.hidden = !card.provider.textContent;
    card.li.querySelector('.agent-dot').hidden = card.provider.hidden;

    // The agent's brief from the plan, or why it sits this one out.
    const task = s.plan?.tasks?.[a.name];
    if (a.state === 'skipped') {
      const planned = s.plan?.agents?.includes(a.name);
      card.sub.textContent = a.kind === 'specialist' && s.plan && !planned ? 'Not needed for this task.' : 'Did not run: the run ended first.';
      card.sub.hidden = false;
    } else if (task || (s.plan?.schedule === 'parallel' && s.plan?.after?.[a.name]?.length)) {
      const needs = s.plan?.schedule === 'parallel' ? s.plan?.after?.[a.name] || [] : [];
      const after = needs.length ? `After ${needs.map((n) => s.agents.find((x) => x.name === n)?.title || n).join(', ')}. ` : '';
      card.sub.textContent = `${after}${task ? `Brief: ${task}` : ''}`;
      card.sub.hidden = false;
    } else {
      card.sub.hidden = true;
    }

    const notes = [];
    if (a.substitutedFor) notes.push(`Stands in for ${a.substitutedFor}, which ${a.provider || 'this provider'} does not serve.`);
    if (a.state === 'retrying' && a.detail) notes.push(`Retrying: ${a.detail}`);
    card.note.textContent = notes.join(' ');
    card.note.hidden = notes.length === 0;

    if (a.error) {
      const parts = [h('p', { className: 'agent-error-title', text: friendlyError(a.error) })];
      const detail = a.error.kind === 'cancelled' ? '' : a.error.message;
      if (detail) parts.push(h('p', { className: 'agent-error-detail', text: `Details: ${detail}${a.error.status ? ` (HTTP ${a.error.status})` : ''}` }));
      card.error.replaceChildren(...parts);
      card.error.hidden = false;
      card.error.className = `agent-error${a.cancelled ? ' is-cancelled' : ''}`;
    } else {
      card.error.hidden = true;
    }

    card.tokens.textContent = formatTokens(a.usage) || (ACTIVE.has(a.state) ? 'streaming…' : a.state === 'done' ? 'not reported' : '—');
    const offline = a.provider === 'offline';
    card.cost.textContent = formatCost(a.cost) || (a.usage ? (offline ? 'free' : 'not reported') : '—');
    if (a.elapsedMs !== null && a.elapsedMs !== undefined) card.time.textContent = formatElapsed(a.elapsedMs);
    else if (ACTIVE.has(a.state) && a.startedAt) card.time.textContent = formatElapsed(Date.now() - a.startedAt);
    else card.time.textContent = '—';

    const hasOutput = a.text.length > 0 || (a.kind === 'specialist' && a.tools.length > 0);
    if (a.kind === 'writer') {
      card.rawDetails.hidden = !hasOutput;
      card.output.textContent = a.state === 'writing' ? 'Writing the deliverable now — it streams into the Deliverable panel.' : hasOutput ? 'Wrote the deliverable.' : 'Writes the deliverable once the specialists are done.';
    } else {
      card.output.hidden = !hasOutput && a.state !== 'queued' && !ACTIVE.has(a.state);
      card.output.classList.toggle('is-empty', !hasOutput);
    }
    card.li.classList.toggle('is-active', ACTIVE.has(a.state));
  }

  renderText(a) {
    const card = this.ensureCard(a);
    const streaming = ACTIVE.has(a.state);
    if (a.kind === 'writer') {
      if (a.text.length < card.rawLen) {
        card.raw.textContent = '';
        card.rawLen = 0;
      }
      if (a.text.length > card.rawLen) {
        card.raw.appendChild(document.createTextNode(a.text.slice(card.rawLen)));
        card.rawLen = a.text.length;
      }
      card.rawDetails.hidden = a.text.length === 0;
      return;
    }
    const out = card.output;
    if (a.kind === 'planner') {
      stickToBottom(out, () => {
        if (!a.text) {
          out.textContent = a.state === 'queued' ? 'Waiting for its turn.' : '';
        } else if (card.rawLen === 0 || a.text.length < card.rawLen) {
          out.textContent = a.text;
        } else if (a.text.length > card.rawLen) {
          out.appendChild(document.createTextNode(a.text.slice(card.rawLen)));
        }
        card.rawLen = a.text.length;
      });
      return;
    }
    const toolsKey = toolsSignature(a, streaming);
    if (card.rendered === a.text && card.renderedStreaming === streaming && card.toolsDrawn === toolsKey) return;
    const paint = streaming ? stickToBottom : (el, fn) => fn();
    paint(out, () => {
      if (a.tools.length > 0) {
        out.replaceChildren(...this.textWithTools(card, a, streaming));
        if (streaming && a.text.length > (a.tools[a.tools.length - 1].at || 0)) appendCaret(out);
      } else if (!a.text) {
        out.replaceChildren(h('p', { className: 'placeholder', text: streaming ? 'Thinking…' : a.state === 'queued' ? 'Waiting for its turn.' : '' }));
      } else {
        out.replaceChildren(renderMarkdown(a.text));
        if (streaming) appendCaret(out);
      }
    });
    card.rendered = a.text;
    card.renderedStreaming = streaming;
    card.toolsDrawn = toolsKey;
    out.setAttribute('aria-busy', streaming ? 'true' : 'false');
  }

  /**
   * The agent's text cut at each tool call, with the call's box in between: the
   * order things happened. A call's box is built once and updated in place, so an
   * opened result stays open while tokens keep arriving.
   */
  textWithTools(card, a, streaming) {
    const parts = [];
    let from = 0;
    for (const call of a.tools) {
      const at = Math.max(from, Math.min(call.at || 0, a.text.length));
      if (at > from) parts.push(renderMarkdown(a.text.slice(from, at)));
      from = at;
      let el = card.toolEls.get(call.callId);
      if (!el) {
        el = toolBox(call);
        card.toolEls.set(call.callId, el);
      }
      updateToolBox(el, call, streaming);
      parts.push(el.root);
    }
    if (a.text.length > from) parts.push(renderMarkdown(a.text.slice(from)));
    // Boxes of calls the agent no longer has (a restarted stream) are dropped.
    const live = new Set(a.tools.map((t) => t.callId));
    for (const id of card.toolEls.keys()) if (!live.has(id)) card.toolEls.delete(id);
    return parts;
  }

  // ------------------------------------------------------------ deliverable

  renderDoc() {
    const s = this.session;
    const text = s.deliverable;
    const writing = s.writer && ACTIVE.has(s.writer.state);
    const { doc, docEmpty, docState, copy, download } = this.els;
    if (text !== this.docText || writing !== this.docWriting) {
      doc.replaceChildren(renderMarkdown(text));
      if (writing && text) appendCaret(doc);
      this.docText = text;
      this.docWriting = writing;
    }
    doc.setAttribute('aria-busy', writing ? 'true' : 'false');
    docEmpty.hidden = text.length > 0;
    if (!text) {
      docEmpty.textContent = s.finished
        ? s.status === 'completed'
          ? 'The writer returned no text.'
          : 'No deliverable: the run ended before the writer wrote anything.'
        : 'The writer’s deliverable appears here, word by word, once the specialists are done.';
    }
    let state = '';
    if (writing) state = 'Writing…';
    else if (text && s.status === 'completed') state = 'Ready';
    else if (text && s.finished) state = 'Incomplete';
    docState.textContent = state;
    docState.className = `doc-state${state ? ` doc-state-${state.replace(/\W/g, '').toLowerCase()}` : ''}`;
    copy.disabled = !text;
    download.disabled = !text;
  }
}

// ------------------------------------------------------------ tool calls

const ARGS_SHOWN = 160;

/** A tool call's arguments on one line: compact JSON, cut with an ellipsis. */
export function compactArguments(args) {
  if (args === null || args === undefined) return '';
  let text = typeof args === 'string' ? args : JSON.stringify(args);
  if (text === undefined) text = String(args);
  text = text.replace(/\s+/g, ' ').trim();
  return text.length > ARGS_SHOWN ? `${text.slice(0, ARGS_SHOWN - 1)}…` : text;
}

function fullArguments(args) {
  if (args === null || args === undefined) return '';
  if (typeof args === 'string') {
    try {
      return JSON.stringify(JSON.parse(args), null, 2);
    } catch {
      return args;
    }
  }
  return JSON.stringify(args, null, 2) ?? String(args);
}

/** What decides a card's tool boxes: redrawn when any of it changes. */
function toolsSignature(a, streaming) {
  return `${streaming}|${a.tools.map((t) => `${t.callId}:${t.ok}:${t.at}:${t.content.length}`).join(',')}`;
}

/** The box of one tool call (all model and tool text goes in as text, never markup). */
function toolBox(call) {
  const name = h('span', { className: 'tool-name' });
  const status = h('span', { className: 'tool-status' });
  const time = h('span', { className: 'tool-time' });
  const args = h('code', { className: 'tool-args' });
  const argsFull = h('pre', { className: 'tool-pre' });
  const argsBlock = h('div', { className: 'tool-block', hidden: true }, h('p', { className: 'tool-block-title', text: 'Arguments' }), argsFull);
  const content = h('pre', { className: 'tool-pre tool-content' });
  const summary = h('summary', { className: 'tool-summary' });
  const details = h('details', { className: 'tool-details', hidden: true }, summary, argsBlock, h('div', { className: 'tool-block' }, h('p', { className: 'tool-block-title', text: 'Result' }), content));
  const root = h(
    'div',
    { className: 'tool-call', role: 'group', dataset: { callId: call.callId } },
    h('p', { className: 'tool-head' }, h('span', { className: 'tool-icon', 'aria-hidden': 'true' }), name, status, time),
    args,
    details,
  );
  return { root, name, status, time, args, argsFull, argsBlock, content, summary, details };
}

function updateToolBox(el, call, streaming) {
  const label = call.server ? `${call.server} › ${call.tool}` : call.tool;
  el.root.setAttribute('aria-label', `Tool call ${call.tool}${call.server ? ` on ${call.server}` : ''}`);
  el.name.textContent = label;
  const compact = compactArguments(call.arguments);
  el.args.textContent = compact || '(no arguments)';
  const full = fullArguments(call.arguments);
  el.argsFull.textContent = full;
  // The full arguments are worth a second look only when the line above was cut.
  el.argsBlock.hidden = !full || !compact.endsWith('…');
  let state;
  if (call.ok === null) state = streaming ? 'running' : 'unfinished';
  else state = call.ok ? 'ok' : 'error';
  el.root.dataset.state = state;
  el.status.replaceChildren(
    ...(state === 'running' ? [h('span', { className: 'tool-spinner', 'aria-hidden': 'true' })] : []),
    { running: 'calling…', unfinished: 'no result', ok: 'done', error: 'error' }[state],
  );
  el.status.className = `tool-status tool-status-${state}`;
  el.time.textContent = call.elapsedMs !== null && call.elapsedMs !== undefined ? formatElapsed(call.elapsedMs) : '';
  el.time.hidden = !el.time.textContent;
  const hasResult = call.ok !== null;
  el.details.hidden = !hasResult;
  if (hasResult) {
    if (el.content.textContent !== call.content) el.content.textContent = call.content || '(empty result)';
    const size = call.content.length;
    el.summary.textContent = `${call.ok ? 'Result' : 'Error result'} · ${size.toLocaleString('en-US')} character${size === 1 ? '' : 's'}`;
  }
}

const BLOCKS = new Set(['P', 'LI', 'UL', 'OL', 'BLOCKQUOTE', 'H1', 'H2', 'H3', 'H4', 'H5', 'H6']);

function appendCaret(container) {
  // Put the caret inside the last block so it sits right after the last word.
  let target = container;
  while (target.lastChild && target.lastChild === target.lastElementChild && BLOCKS.has(target.lastElementChild.tagName)) {
    target = target.lastElementChild;
  }
  target.appendChild(h('span', { className: 'caret', 'aria-hidden': 'true' }));
}
