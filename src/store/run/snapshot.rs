//! A run's snapshot (`GET /api/runs/{id}`, SPEC §3) as typed data folded from its
//! events, and its list summary. Nothing here builds JSON: the HTTP handler
//! serializes the snapshot once, at the edge; follow-ups and `/v1` read its fields.

use crate::clock;
use crate::model::agent::AgentKind;
use crate::model::budget::BudgetReport;
use crate::model::error_kind::ErrorKind;
use crate::model::events::{
    AgentState, DoneEvent, ErrorEvent, Event, PlanEvent, PlanSource, RunStatus, Usage,
};
use crate::model::run_config::RunConfig;
use serde::{Serialize, Serializer};
use std::sync::Arc;
use std::time::SystemTime;

/// One agent as the snapshot shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentSnapshot {
    pub name: String,
    pub kind: AgentKind,
    pub state: AgentState,
    pub model: String,
    pub provider: String,
    pub output: String,
    pub usage: Option<Usage>,
    pub cost_usd: Option<f64>,
    pub elapsed_ms: Option<u64>,
    pub ttft_ms: Option<u64>,
    pub substituted_for: Option<String>,
    pub error: Option<String>,
    pub error_kind: Option<ErrorKind>,
    pub error_status: Option<u16>,
    /// The agent's tool calls of its current turn, in the order it made them.
    pub tools: Vec<ToolCallSnapshot>,
}

/// One tool call of an agent: its `tool_call` event, then its `tool_result`
/// (`ok`, `content` and `elapsed_ms` stay `None` while the call runs).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolCallSnapshot {
    pub call_id: String,
    pub server: String,
    pub tool: String,
    pub arguments: serde_json::Value,
    pub ok: Option<bool>,
    pub content: Option<String>,
    pub elapsed_ms: Option<u64>,
}

/// One run of a conversation in the snapshot's `thread`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThreadEntry {
    pub id: String,
    /// `None` for an ancestor the store no longer holds.
    pub task: Option<String>,
    /// `evicted` for an ancestor the store no longer holds.
    pub status: &'static str,
}

/// The full snapshot of `GET /api/runs/{id}`; fields in SPEC order.
#[derive(Debug, Clone, Serialize)]
pub struct RunSnapshot {
    pub id: String,
    pub status: RunStatus,
    pub task: String,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: SystemTime,
    #[serde(serialize_with = "rfc3339_opt")]
    pub finished_at: Option<SystemTime>,
    #[serde(serialize_with = "config_json")]
    pub config: Arc<RunConfig>,
    pub parent: Option<String>,
    /// Filled by whoever can look the ancestors up (the HTTP handler); the store
    /// leaves it empty.
    pub thread: Vec<ThreadEntry>,
    /// Earlier turns of the thread that `thread` leaves out (a run keeps only its
    /// last ancestors).
    pub thread_omitted: usize,
    pub plan: Option<PlanEvent>,
    pub agents: Vec<AgentSnapshot>,
    pub output: String,
    pub usage: Option<Usage>,
    pub elapsed_ms: Option<u64>,
    pub cost_usd: Option<f64>,
    pub last_event_id: u64,
    /// The run is paused until its plan is approved (`review`); `status` stays `running`.
    pub awaiting_review: bool,
    /// The run's trace once it is done, when tracing is on (from its `done` event).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// The run's budget and spend (null without one).
    pub budget: Option<BudgetView>,
}

/// A run's budget as the snapshot shows it: the `done` report's fields (spend so far
/// while it runs) and the agents whose model has no known price.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetView {
    #[serde(flatten)]
    pub report: BudgetReport,
    /// Their dollars count only when the provider reports a cost, after the call.
    pub unpriced: Vec<String>,
}

/// One entry of `GET /api/runs`.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub id: String,
    /// Cut to 200 characters.
    pub task: String,
    pub status: RunStatus,
    /// `None` only where a shared store lost the time.
    #[serde(serialize_with = "rfc3339_opt")]
    pub created_at: Option<SystemTime>,
    #[serde(serialize_with = "rfc3339_opt")]
    pub finished_at: Option<SystemTime>,
    pub parent: Option<String>,
    /// The run's budget and spend (null without one, or where a shared store's
    /// instance does not follow the run).
    pub budget: Option<BudgetReport>,
}

fn rfc3339<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&clock::rfc3339(*t))
}

fn rfc3339_opt<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => rfc3339(t, s),
        None => s.serialize_none(),
    }
}

fn config_json<S: Serializer>(c: &Arc<RunConfig>, s: S) -> Result<S::Ok, S::Error> {
    c.to_json().serialize(s)
}

/// The live state a run's events fold into; the snapshot is a copy of it.
#[derive(Debug, Clone)]
pub(crate) struct Fold {
    pub status: RunStatus,
    pub finished_at: Option<SystemTime>,
    pub plan: Option<PlanEvent>,
    pub agents: Vec<AgentSnapshot>,
    pub output: String,
    pub usage: Option<Usage>,
    pub cost_usd: Option<f64>,
    /// The whole run's duration, from its `done` event.
    pub elapsed_ms: Option<u64>,
    /// The run's trace id, from its `done` event (tracing on only).
    pub trace_id: Option<String>,
    /// Whether an `error` of kind `budget` was logged (a cap stopped a call).
    pub budget_stopped: bool,
    /// The final budget report, from the `done` event.
    pub budget_done: Option<BudgetReport>,
    /// Paused for review: from its `status` `awaiting_review` to the approved plan
    /// (a `plan` event with `source` `review`) or its end.
    pub awaiting_review: bool,
}

impl Fold {
    /// Every agent of `config` queued, the run running.
    pub fn new(config: &RunConfig) -> Fold {
        let agents = config
            .agents
            .iter()
            .map(|a| AgentSnapshot {
                name: a.name.clone(),
                kind: a.kind,
                state: AgentState::Queued,
                model: a.model.clone(),
                provider: a.provider.as_str().to_string(),
                output: String::new(),
                usage: None,
                cost_usd: None,
                elapsed_ms: None,
                ttft_ms: None,
                substituted_for: None,
                error: None,
                error_kind: None,
                error_status: None,
                tools: Vec::new(),
            })
            .collect();
        Fold {
            status: RunStatus::Running,
            finished_at: None,
            plan: None,
            agents,
            output: String::new(),
            usage: None,
            cost_usd: None,
            elapsed_ms: None,
            trace_id: None,
            budget_stopped: false,
            budget_done: None,
            awaiting_review: false,
        }
    }

    /// The run's budget and spend: `done`'s report once it ended; until then the caps
    /// and the reported spend of the calls finished so far.
    pub fn budget(&self, config: &RunConfig) -> Option<BudgetReport> {
        let budget = config.budget.as_ref()?;
        if let Some(done) = &self.budget_done {
            return Some(done.clone());
        }
        Some(BudgetReport {
            usd: budget.caps.usd,
            tokens: budget.caps.tokens,
            spent_usd: self.cost_usd.unwrap_or(0.0),
            spent_tokens: self.usage.map_or(0, |u| u.input_tokens + u.output_tokens),
            exhausted: self.budget_stopped,
        })
    }

    fn agent_mut(&mut self, name: &str) -> Option<&mut AgentSnapshot> {
        self.agents.iter_mut().find(|a| a.name == name)
    }

    /// The writer's output so far (the deliverable of a run that ends early).
    pub fn writer_output(&self) -> &str {
        self.agents
            .iter()
            .find(|a| a.kind == AgentKind::Writer)
            .map_or("", |a| a.output.as_str())
    }

    /// A `token` of `agent` (the hot path: borrowed text).
    pub fn apply_token(&mut self, agent: &str, text: &str) {
        if let Some(a) = self.agent_mut(agent) {
            a.output.push_str(text);
        }
    }

    /// Folds one event in, so the snapshot is always exactly what the log says.
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::Status(s) => {
                if s.agent.is_none() && s.state == AgentState::AwaitingReview {
                    self.awaiting_review = true;
                }
                if let Some(a) = s.agent.as_deref().and_then(|n| self.agent_mut(n)) {
                    a.state = s.state;
                }
            }
            Event::Plan(p) => {
                if p.source == PlanSource::Review {
                    self.awaiting_review = false;
                }
                self.plan = Some(p.clone());
            }
            Event::StreamStart(s) => {
                if let Some(a) = self.agent_mut(&s.agent) {
                    a.state = if a.kind == AgentKind::Writer {
                        AgentState::Writing
                    } else {
                        AgentState::Running
                    };
                    a.model.clone_from(&s.model);
                    a.provider.clone_from(&s.provider);
                    a.substituted_for.clone_from(&s.substituted_for);
                    // A retry starts the agent's text over.
                    a.output.clear();
                    a.error = None;
                    a.error_kind = None;
                    a.error_status = None;
                    a.tools.clear();
                }
            }
            Event::ToolCall(c) => {
                if let Some(a) = self.agent_mut(&c.agent) {
                    a.tools.push(ToolCallSnapshot {
                        call_id: c.call_id.clone(),
                        server: c.server.clone(),
                        tool: c.tool.clone(),
                        arguments: c.arguments.clone(),
                        ok: None,
                        content: None,
                        elapsed_ms: None,
                    });
                }
            }
            Event::ToolResult(r) => {
                let call = self
                    .agent_mut(&r.agent)
                    .and_then(|a| a.tools.iter_mut().rev().find(|t| t.call_id == r.call_id));
                if let Some(call) = call {
                    call.ok = Some(r.ok);
                    call.content = Some(r.full().to_string());
                    call.elapsed_ms = Some(r.elapsed_ms);
                }
            }
            Event::Token(t) => self.apply_token(&t.agent, &t.text),
            Event::StreamEnd(e) => {
                if let Some(a) = self.agent_mut(&e.agent) {
                    a.state = AgentState::Done;
                    a.usage = e.usage;
                    a.cost_usd = e.cost_usd;
                    a.elapsed_ms = Some(e.elapsed_ms);
                    a.ttft_ms = e.ttft_ms;
                }
                Usage::add_to(&mut self.usage, e.usage);
                if let Some(c) = e.cost_usd {
                    self.cost_usd = Some(self.cost_usd.unwrap_or(0.0) + c);
                }
            }
            Event::Error(e) => self.apply_error(e),
            Event::Done(d) => self.apply_done(d),
        }
    }

    fn apply_error(&mut self, e: &ErrorEvent) {
        if e.kind == ErrorKind::Budget {
            self.budget_stopped = true;
        }
        if let Some(a) = e.agent.as_deref().and_then(|n| self.agent_mut(n)) {
            a.error = Some(e.message.clone());
            a.error_kind = Some(e.kind);
            a.error_status = e.status;
        }
    }

    fn apply_done(&mut self, d: &DoneEvent) {
        self.status = d.status;
        self.awaiting_review = false;
        self.finished_at = Some(SystemTime::now());
        self.output.clone_from(&d.output);
        self.elapsed_ms = Some(d.elapsed_ms);
        self.trace_id.clone_from(&d.trace_id);
        self.budget_done.clone_from(&d.budget);
        for a in &mut self.agents {
            match a.state {
                AgentState::Queued => a.state = AgentState::Skipped,
                AgentState::Planning
                | AgentState::Running
                | AgentState::Writing
                | AgentState::Retrying => {
                    a.state = AgentState::Failed;
                    if a.error.is_none() && d.status == RunStatus::Cancelled {
                        a.error = Some("cancelled".to_string());
                        a.error_kind = Some(ErrorKind::Cancelled);
                    }
                }
                AgentState::Done
                | AgentState::Skipped
                | AgentState::Failed
                | AgentState::AwaitingReview => {}
            }
        }
    }
}

#[cfg(test)]
#[path = "snapshot_tests.rs"]
mod tests;
