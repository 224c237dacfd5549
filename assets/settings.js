// The settings panel: which provider new runs use and a model per agent, picked from
// the provider's catalog (GET /api/models, with tier badges) or typed in. Choices are
// remembered in localStorage, per provider, and only models the user changed are sent.

import { api, h } from './util.js';

const STORAGE_KEY = 'agent-mesh.settings.v1';
const CUSTOM = '__custom__';
const TIERS = ['free', 'budget', 'standard', 'premium'];
const TIER_TITLES = { free: 'Free', budget: 'Budget', standard: 'Standard', premium: 'Premium' };

function loadStored() {
  try {
    const v = JSON.parse(localStorage.getItem(STORAGE_KEY) || 'null');
    if (v && typeof v === 'object') {
      return { provider: typeof v.provider === 'string' ? v.provider : '', models: v.models && typeof v.models === 'object' ? v.models : {}, review: v.review === true };
    }
  } catch {
    /* a broken entry is replaced on the next save */
  }
  return { provider: '', models: {}, review: false };
}

function price(p) {
  if (p === null || p === undefined || Number.isNaN(Number(p))) return null;
  const n = Number(p);
  if (n === 0) return '$0';
  return `$${n.toFixed(n < 0.1 ? 3 : 2)}`;
}

function contextLabel(n) {
  if (!n) return null;
  return n >= 1000 ? `${Math.round(n / 1000)}k context` : `${n} context`;
}

export class Settings {
  /** roster: /api/agents; providers: /api/providers; els: the dialog's elements. */
  constructor({ roster, providers, els, onChange }) {
    this.roster = roster;
    this.providers = providers;
    this.els = els;
    this.onChange = onChange || (() => {});
    this.stored = loadStored();
    this.catalogs = new Map(); // provider id -> {models, source, fetched_at} | {error}
    this.rows = new Map();
    this.active = providers.find((p) => p.active) || null;
    // A remembered provider that is no longer configured is forgotten.
    if (this.stored.provider && !this.selectable().some((p) => p.id === this.stored.provider)) {
      this.stored.provider = '';
    }
    this.buildProviderSelect();
    this.buildRows();
    this.els.reset.addEventListener('click', () => this.reset());
    if (this.els.review) {
      this.els.review.checked = this.stored.review;
      this.els.review.addEventListener('change', () => {
        this.stored.review = this.els.review.checked;
        this.save();
      });
    }
    this.els.refresh?.addEventListener('click', () => this.loadCatalog(true));
  }

  selectable() {
    return this.providers.filter((p) => p.configured);
  }

  /** The provider the next run uses: the chosen one, else the server's active one. */
  get effectiveProvider() {
    return this.stored.provider || this.active?.id || '';
  }

  providerName(id) {
    return this.providers.find((p) => p.id === id)?.name || id;
  }

  /** The provider's name without its parenthesised note: "Offline", "Custom". */
  shortName(id) {
    return this.providerName(id).replace(/\s*\(.*\)$/, '');
  }

  overrides() {
    const all = this.stored.models[this.effectiveProvider] || {};
    const out = {};
    for (const a of this.roster) {
      const v = (all[a.name] || '').trim();
      if (v && v !== a.model) out[a.name] = v;
    }
    return out;
  }

  /** The `provider`, `models` and `review` fields for POST /api/run (only what the user changed). */
  runOptions() {
    const body = {};
    if (this.stored.provider) body.provider = this.stored.provider;
    const models = this.overrides();
    if (Object.keys(models).length > 0) body.models = models;
    if (this.stored.review) body.review = true;
    return body;
  }

  summary() {
    const n = Object.keys(this.overrides()).length;
    return { provider: this.shortName(this.effectiveProvider) || 'default', changed: n };
  }

  save() {
    try {
      localStorage.setItem(STORAGE_KEY, JSON.stringify({ v: 1, provider: this.stored.provider, models: this.stored.models, review: this.stored.review }));
    } catch {
      /* private mode: the choice still holds for this page */
    }
    this.onChange(this);
  }

  reset() {
    this.stored = { provider: '', models: {}, review: false };
    this.els.provider.value = '';
    if (this.els.review) this.els.review.checked = false;
    this.save();
    this.refreshProviderHelp();
    this.loadCatalog();
  }

  // ------------------------------------------------------------ provider

  buildProviderSelect() {
    const sel = this.els.provider;
    const activeName = this.active ? this.shortName(this.active.id) : 'none';
    const options = [h('option', { value: '', text: `Server default (${activeName})` })];
    for (const p of this.selectable()) {
      options.push(h('option', { value: p.id, text: p.usable === false ? `${p.name} — unavailable` : p.name }));
    }
    sel.replaceChildren(...options);
    sel.value = this.stored.provider;
    sel.addEventListener('change', () => {
      this.stored.provider = sel.value;
      this.save();
      this.refreshProviderHelp();
      this.loadCatalog();
    });
    this.refreshProviderHelp();
  }

  refreshProviderHelp() {
    const p = this.providers.find((x) => x.id === this.effectiveProvider);
    const others = this.providers.filter((x) => !x.configured).map((x) => x.name);
    const parts = [];
    if (p && p.usable === false && p.error) parts.push(`${p.name} cannot be used right now: ${p.error}.`);
    if (p?.id === 'offline') parts.push('The offline provider answers with placeholders, so you can see the whole pipeline without a key.');
    if (others.length) parts.push(`To add ${others.join(', ')}: set its key in the server's environment.`);
    this.els.providerHelp.textContent = parts.join(' ');
  }

  // ------------------------------------------------------------ models

  buildRows() {
    const rows = this.roster.map((a) => {
      const id = `model-${a.name}`;
      const select = h('select', { id, className: 'select', 'aria-describedby': `${id}-info` });
      const custom = h('input', {
        id: `${id}-custom`,
        className: 'input',
        type: 'text',
        spellcheck: 'false',
        autocomplete: 'off',
        placeholder: 'vendor/model or provider:model',
        'aria-label': `Model id for the ${a.title}`,
        hidden: true,
      });
      const tier = h('span', { className: 'tier-badge', hidden: true });
      const changed = h('span', { className: 'changed-pill', text: 'changed', hidden: true });
      const info = h('p', { id: `${id}-info`, className: 'model-info' });
      const row = h(
        'div',
        { className: 'model-row', dataset: { agent: a.name } },
        h(
          'div',
          { className: 'model-row-head' },
          h('span', { className: 'model-row-emoji', 'aria-hidden': 'true', text: a.emoji }),
          h('label', { htmlFor: id, className: 'model-row-label', text: a.title }),
          tier,
          changed,
        ),
        select,
        custom,
        info,
      );
      select.addEventListener('change', () => {
        if (select.value === CUSTOM) {
          custom.hidden = false;
          custom.focus();
          this.setModel(a.name, custom.value.trim());
        } else {
          custom.hidden = true;
          this.setModel(a.name, select.value);
        }
        this.refreshRow(a.name);
      });
      custom.addEventListener('input', () => {
        this.setModel(a.name, custom.value.trim());
        this.refreshRow(a.name, { keepCustom: true });
      });
      this.rows.set(a.name, { agent: a, select, custom, tier, changed, info });
      return row;
    });
    this.els.rows.replaceChildren(...rows);
  }

  modelFor(name) {
    return (this.stored.models[this.effectiveProvider] || {})[name] || '';
  }

  setModel(name, id) {
    const key = this.effectiveProvider;
    const map = { ...(this.stored.models[key] || {}) };
    const agent = this.roster.find((a) => a.name === name);
    if (!id || id === agent?.model) delete map[name];
    else map[name] = id;
    this.stored.models = { ...this.stored.models, [key]: map };
    this.save();
  }

  catalog() {
    return this.catalogs.get(this.effectiveProvider) || null;
  }

  async loadCatalog(refresh = false) {
    const provider = this.effectiveProvider;
    if (!provider) return;
    if (!refresh && this.catalogs.has(provider)) {
      this.fillSelects();
      return;
    }
    this.els.catalogStatus.textContent = 'Loading the model catalog…';
    let entry;
    try {
      const q = `/api/models?provider=${encodeURIComponent(provider)}${refresh ? '&refresh=1' : ''}`;
      const body = await api(q);
      entry = { models: Array.isArray(body?.models) ? body.models : [], source: body?.source || '', fetchedAt: body?.fetched_at || null };
    } catch (e) {
      entry = { models: [], error: e.status === 404 ? 'unavailable' : e.message };
    }
    this.catalogs.set(provider, entry);
    if (provider === this.effectiveProvider) this.fillSelects();
  }

  fillSelects() {
    const cat = this.catalog();
    const models = cat?.models || [];
    const name = this.shortName(this.effectiveProvider);
    if (this.els.refresh) this.els.refresh.hidden = !cat || !!cat.error;
    if (!cat) {
      this.els.catalogStatus.textContent = '';
    } else if (cat.error || models.length === 0) {
      this.els.catalogStatus.textContent = `No model catalog for ${name} right now, so pick a roster default or type any model id the provider accepts.`;
    } else {
      const src = cat.source === 'live' ? 'live list' : 'built-in list';
      this.els.catalogStatus.textContent = `${models.length} models from ${name} (${src}). Tiers go by output price: free, budget (< $1 per million tokens), standard (< $10), premium.`;
    }
    const byTier = new Map(TIERS.map((t) => [t, []]));
    for (const m of models) {
      const t = TIERS.includes(m.tier) ? m.tier : 'standard';
      byTier.get(t).push(m);
    }
    const rosterModels = [...new Set(this.roster.map((a) => a.model))];
    for (const row of this.rows.values()) {
      const { agent, select } = row;
      const opts = [h('option', { value: '', text: `Roster default · ${agent.model}` })];
      if (models.length > 0) {
        for (const t of TIERS) {
          const list = byTier.get(t);
          if (list.length === 0) continue;
          opts.push(h('optgroup', { label: TIER_TITLES[t] }, list.map((m) => h('option', { value: m.id, text: m.name && m.name !== m.id ? `${m.name} — ${m.id}` : m.id }))));
        }
      } else {
        const others = rosterModels.filter((m) => m !== agent.model);
        if (others.length) opts.push(h('optgroup', { label: 'Other roster models' }, others.map((m) => h('option', { value: m, text: m }))));
      }
      opts.push(h('option', { value: CUSTOM, text: 'Type another model id…' }));
      select.replaceChildren(...opts);
      this.refreshRow(agent.name, { syncSelect: true });
    }
  }

  /** Shows the row's current choice: select value, free-text field, tier badge, price. */
  refreshRow(name, { syncSelect = false, keepCustom = false } = {}) {
    const row = this.rows.get(name);
    if (!row) return;
    const { agent, select, custom, tier, changed, info } = row;
    const chosen = this.modelFor(name);
    const models = this.catalog()?.models || [];
    if (syncSelect || keepCustom) {
      const inList = chosen === '' || [...select.options].some((o) => o.value === chosen && o.value !== CUSTOM);
      if (!keepCustom) {
        select.value = inList ? chosen : CUSTOM;
        custom.hidden = inList;
        custom.value = inList ? '' : chosen;
      }
    }
    const effective = chosen || agent.model;
    const meta = models.find((m) => m.id === effective);
    if (meta && TIERS.includes(meta.tier)) {
      tier.textContent = meta.tier;
      tier.className = `tier-badge tier-${meta.tier}`;
      tier.hidden = false;
    } else {
      tier.hidden = true;
    }
    changed.hidden = !chosen;
    const bits = [];
    if (meta) {
      const pin = price(meta.price_in_per_mtok);
      const pout = price(meta.price_out_per_mtok);
      if (pin === '$0' && pout === '$0') bits.push('free to use');
      else if (pin && pout) bits.push(`${pin} in / ${pout} out per million tokens`);
      const ctx = contextLabel(meta.context_length);
      if (ctx) bits.push(ctx);
    } else if (chosen && models.length > 0) {
      bits.push('Not in the catalog: sent as typed.');
    }
    if (!chosen) bits.push(`Uses the roster default (${agent.model}).`);
    info.textContent = bits.join(' · ');
  }
}
