//! The MCP server's only contact with runs: starting one the way `POST /api/run`
//! does, following its typed events as progress steps until it ends, reporting a
//! run for `get_run`, and cancelling one. When the store's API changes, this file
//! is the one to port.

use crate::app::AppState;
use crate::http::error::ApiError;
use crate::model::agent::AgentKind;
use crate::model::events::{Event, RunStatus, Usage};
use crate::store::Run;
use std::sync::Arc;
use tokio::sync::mpsc;

/// A run the MCP server started.
pub struct TeamRun {
    run: Arc<Run>,
}

impl TeamRun {
    pub fn id(&self) -> &str {
        &self.run.id
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
    pub usage: Usage,
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
) -> Result<TeamRun, ApiError> {
    Ok(TeamRun {
        run: crate::api::launch(state, req).await?,
    })
}

/// Sends the run's steps to `steps` as they are logged and returns how it ended;
/// `None` when the receiver went away first (the client is gone).
pub async fn follow(run: &TeamRun, steps: &mpsc::Sender<Step>) -> Option<Outcome> {
    let run = &run.run;
    // Subscribed before the first read, so no event logged in between is missed.
    let mut logged = run.watch_seq();
    let mut after = 0;
    let mut last_error = None;
    loop {
        let (frames, last, finished) = run.frames_after(after);
        after = last;
        for frame in &frames {
            let Some(event) = typed_event(frame) else {
                continue;
            };
            if let Event::Error(e) = &event {
                last_error = Some(e.message.clone());
            }
            if let Some(step) = step_of(run, event) {
                if steps.send(step).await.is_err() {
                    return None;
                }
            }
        }
        if finished {
            return Some(outcome_of(run, last_error));
        }
        tokio::select! {
            changed = logged.changed() => if changed.is_err() {
                return Some(outcome_of(run, last_error));
            },
            _ = steps.closed() => return None,
        }
    }
}

/// The run `run_id` as it stands (a finished one with its deliverable).
pub async fn report(state: &AppState, run_id: &str) -> Result<Outcome, ApiError> {
    let run = crate::api::find_run(state, run_id).await?;
    // A copy of another instance's run may trail the end that instance already showed.
    run.catch_up(Run::is_finished).await;
    let (frames, _, _) = run.frames_after(0);
    let last_error = frames
        .iter()
        .filter_map(|f| typed_event(f))
        .filter_map(|e| match e {
            Event::Error(e) => Some(e.message),
            _ => None,
        })
        .last();
    Ok(outcome_of(&run, last_error))
}

/// Asks the store to cancel a run (the client cancelled, or went away).
pub async fn cancel(state: &AppState, run_id: &str, reason: &str) {
    if let Err(e) = state.store.cancel(run_id, reason).await {
        crate::log_warn!("run {run_id}: could not cancel ({})", e.0);
    }
}

fn typed_event(frame: &[u8]) -> Option<Event> {
    let (_, name, data) = crate::model::events::parse_frame(frame)?;
    Event::from_wire(name, data)
}

fn step_of(run: &Run, event: Event) -> Option<Step> {
    let kind = |agent: &str| run.config.agent(agent).map(|a| a.kind);
    match event {
        Event::Plan(p) => Some(Step::Planned {
            agents: p.agents,
            reasoning: p.reasoning,
        }),
        Event::StreamStart(s) if kind(&s.agent) != Some(AgentKind::Planner) => {
            Some(Step::AgentStarted {
                writer: kind(&s.agent) == Some(AgentKind::Writer),
                agent: s.agent,
                model: s.model,
            })
        }
        Event::StreamEnd(s) if kind(&s.agent) != Some(AgentKind::Planner) => {
            Some(Step::AgentFinished {
                agent: s.agent,
                chars: s.chars,
            })
        }
        Event::Error(e) => match e.agent {
            Some(agent) if kind(&agent) != Some(AgentKind::Planner) => Some(Step::AgentFailed {
                agent,
                message: e.message,
            }),
            _ => None,
        },
        _ => None,
    }
}

fn outcome_of(run: &Run, error: Option<String>) -> Outcome {
    let snap = run.snapshot_json();
    Outcome {
        run_id: run.id.clone(),
        status: run.status(),
        task: run.task.clone(),
        deliverable: snap["output"].as_str().unwrap_or("").to_string(),
        usage: serde_json::from_value(snap["usage"].clone()).unwrap_or_default(),
        cost_usd: snap["cost_usd"].as_f64(),
        elapsed_ms: snap["elapsed_ms"].as_u64(),
        error,
    }
}
