// The settings panel's Tools section: the MCP servers from GET /api/tools (connected,
// or the error that keeps one down) and, per agent, the tools it may use.

import { api, h } from './util.js';

/** The servers of a GET /api/tools body, in a tolerant reading of its shape. */
export function serversOf(body) {
  const list = Array.isArray(body) ? body : Array.isArray(body?.servers) ? body.servers : [];
  return list
    .filter((s) => s && typeof s === 'object')
    .map((s) => ({
      name: String(s.name ?? s.server ?? ''),
      connected: s.connected !== false && !s.error,
      error: s.error ? String(s.error) : '',
      agents: Array.isArray(s.agents) ? s.agents.map(String) : null,
      tools: (Array.isArray(s.tools) ? s.tools : []).filter((t) => t && typeof t === 'object').map((t) => ({ name: String(t.name ?? ''), agents: Array.isArray(t.agents) ? t.agents.map(String) : null })),
    }));
}

/** Does an agent's roster `tools` entry (`server/tool` or `server/*`) cover this tool? */
function covers(pattern, server, tool) {
  const [s, t] = String(pattern).split('/', 2);
  return s === server && (t === '*' || t === tool || t === undefined);
}

/** Which agents may use a tool (or, with no tool, any of a server's): the server's word, else the roster's patterns, else the default (every specialist). */
function mayUse(agent, server, tool) {
  if (tool?.agents) return tool.agents.includes(agent.name);
  if (!tool && server.agents) return server.agents.includes(agent.name);
  if (Array.isArray(agent.tools)) return agent.tools.some((p) => covers(p, server.name, tool?.name ?? '*'));
  return agent.kind === 'specialist';
}

/** Per agent: the `server/tool` names it may use and the down servers it would use. */
export function toolsByAgent(roster, servers) {
  return roster.map((agent) => {
    const tools = [];
    const down = [];
    for (const s of servers) {
      if (!s.connected) {
        if (mayUse(agent, s, null)) down.push(s);
        continue;
      }
      for (const t of s.tools) if (mayUse(agent, s, t)) tools.push(`${s.name}/${t.name}`);
    }
    return { agent, tools, down };
  });
}

export class ToolsPanel {
  /** els: status (a role=status line), servers (ul), agents (ul). */
  constructor({ roster, els }) {
    this.roster = roster;
    this.els = els;
    this.ticket = 0;
  }

  async load() {
    const ticket = ++this.ticket;
    this.els.status.textContent = 'Loading the tools…';
    let servers = [];
    let failure = '';
    // A server that knows tools says which each agent may use in its roster; one
    // without that field has no GET /api/tools either, so it is not asked.
    if (!this.roster.some((a) => Array.isArray(a.tools))) {
      this.render([]);
      return;
    }
    try {
      servers = serversOf(await api('/api/tools'));
    } catch (e) {
      // A server without the endpoint has no tools; any other failure is said.
      if (e.status !== 404) failure = `Could not load the tools: ${e.message}`;
    }
    if (ticket !== this.ticket) return;
    this.render(servers, failure);
  }

  render(servers, failure = '') {
    const { status, servers: serverList, agents } = this.els;
    const up = servers.filter((s) => s.connected).length;
    status.textContent =
      failure ||
      (servers.length === 0
        ? 'No tool servers are configured (MESH_MCP_CONFIG on the server).'
        : `${servers.length} tool server${servers.length === 1 ? '' : 's'}, ${up} connected.`);
    serverList.replaceChildren(
      ...servers.map((s) =>
        h(
          'li',
          { className: s.connected ? 'tool-server' : 'tool-server tool-server-down', dataset: { server: s.name } },
          h('span', { className: 'agent-tools-name', text: s.name }),
          s.connected ? ` · connected · ${s.tools.length} tool${s.tools.length === 1 ? '' : 's'}` : ` · unavailable: ${s.error || 'not connected'}`,
        ),
      ),
    );
    agents.replaceChildren(
      ...toolsByAgent(this.roster, servers).map(({ agent, tools, down }) =>
        h(
          'li',
          { className: 'agent-tools-row', dataset: { agent: agent.name } },
          h('span', { className: 'model-row-emoji', 'aria-hidden': 'true', text: `${agent.emoji || '•'} ` }),
          h('span', { className: 'agent-tools-name', text: agent.title || agent.name }),
          h('p', { className: 'agent-tools-list', text: tools.length ? tools.join(', ') : 'no tools' }),
          ...down.map((s) => h('p', { className: 'agent-tools-list tool-server-down', text: `${s.name}: unavailable (${s.error || 'not connected'})` })),
        ),
      ),
    );
  }
}
