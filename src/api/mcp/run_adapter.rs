//! The MCP server's only contact with runs: starting one the way `POST /api/run`
//! does, following its typed events as progress steps until it ends, reporting a
//! run for `get_run`, and cancelling one. When the store's API changes, this file
//! is the one to port.

use crate::api::state::AppState;
use crate::http::error::ApiError;
use crate::model::agent::AgentKind;
use crate::model::events::{Event, RunStatus, Usage};
use crate::model::run_config::RunConfig;
use crate::store::{EventRef, RunHandle};
use std::sync::Arc;
use tokio::sync::mpsc;

/// A run the MCP server started.
pub struct TeamRun {
    run: RunHandle,
}

impl TeamRun {
    pub fn id(&self) -> &str {
        self.run.id()
    }
}

/// What happened in a run that a client is shown as progress.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// The team is chosen: these specialists, then the writer.
    Planned {
        agents: Vec<String>,
        reasoning: String,
    },
    AgentStarted {
        agent: String,
        model: String,
        writer: bool,
    },
    AgentFinished {
        agent: String,
        chars: u64,
    },
    AgentFailed {
        agent: String,
        message: String,
    },
}

/// A run as a tool result reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub run_id: String,
    pub status: RunStatus,
    pub task: String,
    pub deliverable: String,
    /// Null when no call of the run reported usage.
    pub usage: Option<Usage>,
    pub cost_usd: Option<f64>,
    pub elapsed_ms: Option<u64>,
    /// The last error the run logged (why a failed run failed).
    pub error: Option<String>,
}

/// Starts a run exactly as `POST /api/run` does (same config freezing, follow-up,
/// store and limits).
pub async fn start(
    state: &Arc<AppState>,
    req: crate::api::run_request::RunRequest,
    trace_parent: Option<crate::trace::SpanContext>,
) -> Result<TeamRun, ApiError> {
    Ok(TeamRun {
        run: crate::api::launch(state, req, trace_parent).await?,
    })
}

/// Sends the run's steps to `steps` as they are logged and returns how it ended;
/// `None` when the receiver went away first (the client is gone).
pub async fn follow(run: &TeamRun, steps: &mpsc::Sender<Step>) -> Option<Outcome> {
    let run = &run.run;
    // A run just created has no other subscriber: this cannot be refused.
    let events = run.subscribe().ok()?;
    let config = run.config().clone();
    let mut after = 0;
    let mut last_error = None;
    let mut batch = Vec::new();
    loop {
        // Translated under the run's lock (no waiting there), sent after it.
        let more = tokio::select! {
            more = events.next_events(&mut after, |_, event| {
                if let EventRef::Other(event) = event {
                    if let Event::Error(e) = event {
                        last_error = Some(e.message.clone());
                    }
                    batch.extend(step_of(&config, event));
                }
            }) => more,
            _ = steps.closed() => return None,
        };
        for step in batch.drain(..) {
            if steps.send(step).await.is_err() {
                return None;
            }
        }
        if !more {
            return Some(outcome_of(run, last_error));
        }
    }
}

/// The run `run_id` as it stands (a finished one with its deliverable).
pub async fn report(state: &AppState, run_id: &str) -> Result<Outcome, ApiError> {
    let run = crate::api::find_run(state, run_id).await?;
    // A copy of another instance's run may trail the end that instance already showed.
    run.catch_up(RunHandle::is_finished).await;
    let last_error = run
        .snapshot()
        .agents
        .iter()
        .rev()
        .find_map(|a| a.error.clone());
    Ok(outcome_of(&run, last_error))
}

/// Asks the store to cancel a run (the client cancelled, or went away).
pub async fn cancel(state: &AppState, run_id: &str, reason: &str) {
    if let Err(e) = state.store.cancel(run_id, reason).await {
        crate::log_warn!("run {run_id}: could not cancel ({})", e.0);
    }
}

fn step_of(config: &RunConfig, event: &Event) -> Option<Step> {
    let kind = |agent: &str| config.agent(agent).map(|a| a.kind);
    let shown = |agent: &str| kind(agent) != Some(AgentKind::Planner);
    match event {
        Event::Plan(p) => Some(Step::Planned {
            agents: p.agents.clone(),
            reasoning: p.reasoning.clone(),
        }),
        Event::StreamStart(s) if shown(&s.agent) => Some(Step::AgentStarted {
            writer: kind(&s.agent) == Some(AgentKind::Writer),
            agent: s.agent.clone(),
            model: s.model.clone(),
        }),
        Event::StreamEnd(s) if shown(&s.agent) => Some(Step::AgentFinished {
            agent: s.agent.clone(),
            chars: s.chars,
        }),
        Event::Error(e) => match &e.agent {
            Some(agent) if shown(agent) => Some(Step::AgentFailed {
                agent: agent.clone(),
                message: e.message.clone(),
            }),
            _ => None,
        },
        _ => None,
    }
}

fn outcome_of(run: &RunHandle, error: Option<String>) -> Outcome {
    let snap = run.snapshot();
    Outcome {
        run_id: snap.id,
        status: snap.status,
        task: snap.task,
        deliverable: snap.output,
        usage: snap.usage,
        cost_usd: snap.cost_usd,
        elapsed_ms: snap.elapsed_ms,
        error,
    }
}
