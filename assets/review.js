// The plan editor of a run paused for review (`"review": true`): the team as chips to
// add or remove, each member's task, and what each member works after, with Approve
// (POST /api/runs/{id}/plan with the edits) and Cancel. Everything shown comes from the
// model's plan, so it is only ever set as text and form values, never as markup.

import { api, h } from './util.js';

/** The editor's state for one paused run, from the plan it paused on. */
function draftOf(plan) {
  return {
    agents: new Set(plan.agents || []),
    tasks: { ...(plan.tasks || {}) },
    after: Object.fromEntries(Object.entries(plan.after || {}).map(([k, v]) => [k, new Set(v)])),
  };
}

/** The approval body: the team in roster order, its tasks and dependencies. */
function bodyOf(draft, specialists) {
  const agents = specialists.filter((a) => draft.agents.has(a.name)).map((a) => a.name);
  const tasks = {};
  const after = {};
  for (const name of agents) {
    const task = (draft.tasks[name] || '').trim();
    if (task) tasks[name] = task;
    after[name] = [...(draft.after[name] || [])].filter((d) => d !== name && draft.agents.has(d));
  }
  return { agents, tasks, after };
}

/**
 * Builds the editor for `session` (paused on `session.plan`); `onError(message)` shows
 * what the server refused. Returns the element.
 */
export function planEditor(session, { onError }) {
  const specialists = session.agents.filter((a) => a.kind === 'specialist');
  const draft = draftOf(session.plan);
  const error = h('p', { className: 'review-error', role: 'alert', hidden: true });
  const members = h('div', { className: 'review-members' });
  const approve = h('button', { className: 'btn btn-primary', type: 'button', dataset: { action: 'approve' }, text: 'Approve and run' });
  const cancel = h('button', { className: 'btn btn-secondary', type: 'button', dataset: { action: 'cancel' }, text: 'Cancel the run' });

  const showError = (message) => {
    error.hidden = !message;
    error.textContent = message || '';
    if (message) onError?.(message);
  };

  const chips = specialists.map((a) => {
    const chip = h('button', {
      type: 'button',
      className: 'team-chip review-chip',
      dataset: { agent: a.name },
      'aria-pressed': String(draft.agents.has(a.name)),
      onclick: () => {
        if (draft.agents.has(a.name)) draft.agents.delete(a.name);
        else draft.agents.add(a.name);
        chip.setAttribute('aria-pressed', String(draft.agents.has(a.name)));
        chip.classList.toggle('is-chosen', draft.agents.has(a.name));
        chip.classList.toggle('is-skipped', !draft.agents.has(a.name));
        drawMembers();
      },
    }, h('span', { className: 'team-chip-emoji', 'aria-hidden': 'true', text: a.emoji }), h('span', { text: a.title }));
    chip.classList.add(draft.agents.has(a.name) ? 'is-chosen' : 'is-skipped');
    return chip;
  });

  function drawMembers() {
    const team = specialists.filter((a) => draft.agents.has(a.name));
    if (!team.length) {
      members.replaceChildren(h('p', { className: 'help', text: 'Choose at least one specialist.' }));
      approve.disabled = true;
      return;
    }
    approve.disabled = false;
    members.replaceChildren(
      ...team.map((a) => {
        const id = `review-task-${a.name}`;
        const task = h('textarea', {
          id,
          className: 'textarea review-task',
          rows: 2,
          dataset: { agent: a.name },
          oninput: () => {
            draft.tasks[a.name] = task.value;
          },
        });
        task.value = draft.tasks[a.name] || '';
        const others = team.filter((o) => o.name !== a.name);
        const deps = others.map((o) => {
          const box = h('input', {
            type: 'checkbox',
            dataset: { agent: a.name, after: o.name },
            onchange: () => {
              const set = draft.after[a.name] || (draft.after[a.name] = new Set());
              if (box.checked) set.add(o.name);
              else set.delete(o.name);
            },
          });
          box.checked = draft.after[a.name]?.has(o.name) || false;
          return h('label', { className: 'review-dep' }, box, ` ${o.title}`);
        });
        return h(
          'div',
          { className: 'review-member', dataset: { agent: a.name } },
          h('label', { className: 'field-label', htmlFor: id, text: `${a.emoji} ${a.title}: task` }),
          task,
          deps.length ? h('p', { className: 'review-deps' }, h('span', { className: 'plan-kicker', text: 'Works after' }), ...deps) : null,
        );
      }),
    );
  }

  approve.addEventListener('click', async () => {
    approve.disabled = true;
    cancel.disabled = true;
    showError('');
    try {
      await api(`/api/runs/${encodeURIComponent(session.id)}/plan`, { method: 'POST', body: JSON.stringify(bodyOf(draft, specialists)) });
      approve.textContent = 'Approved…';
    } catch (e) {
      showError(`Not approved: ${e.message}`);
      approve.disabled = false;
      cancel.disabled = false;
    }
  });
  cancel.addEventListener('click', async () => {
    approve.disabled = true;
    cancel.disabled = true;
    try {
      await api(`/api/runs/${encodeURIComponent(session.id)}/cancel`, { method: 'POST' });
    } catch (e) {
      showError(`Could not cancel: ${e.message}`);
      approve.disabled = false;
      cancel.disabled = false;
    }
  });

  drawMembers();
  return h(
    'div',
    { className: 'review', dataset: { run: session.id } },
    h('p', { className: 'plan-source' }, h('span', { className: 'plan-kicker', text: 'Plan' }), ' · waiting for your review'),
    h('p', { className: 'help', text: 'Nothing runs until you approve. Change the team, a task or who works after whom, then approve; or cancel the run.' }),
    h('div', { className: 'team-chips review-chips', role: 'group', 'aria-label': 'Team' }, chips),
    members,
    error,
    h('div', { className: 'review-actions' }, approve, cancel),
  );
}
