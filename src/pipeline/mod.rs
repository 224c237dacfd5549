//! The pipeline (SPEC §4): plan with the orchestrator, run the chosen specialists (one
//! after another, or as the plan's dependency graph: see `scheduler`), then the writer
//! with every full output.

mod agent_call;
pub mod budget;
pub mod conversation;
pub mod dependencies;
pub mod digest;
pub mod plan;
pub mod prompts;
pub mod review;
pub mod roster;
pub mod run_trace;
pub mod scheduler;
pub mod settings;
pub(crate) mod tool_loop;

use crate::metrics::METRICS;
use crate::model::error_kind::ErrorKind;
use crate::model::events::{
    AgentState, DoneEvent, ErrorEvent, Event, PlanEvent, PlanSource, RunStatus, StatusEvent,
};
use crate::model::run_config::Schedule;
use crate::model::run_context::RunContext;
use crate::providers::Providers;
pub(crate) use agent_call::{call_agent, AgentFailure};
use run_trace::RunTracing;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Starts a run's pipeline. A panic inside it (a bug, never expected) is contained:
/// the run ends `failed` with an internal error instead of hanging, and every other
/// run and connection carries on.
pub fn spawn(run: RunContext, providers: Arc<Providers>) {
    spawn_from(run, providers, None);
}

/// Starts the rest of the pipeline of a run paused for review on `plan` by a process
/// that is gone (a shared store's run taken over): it waits for the approval (no
/// second pause is logged) and goes on from there.
pub fn spawn_resumed(run: RunContext, providers: Arc<Providers>, plan: PlanEvent) {
    spawn_from(run, providers, Some(plan));
}

fn spawn_from(run: RunContext, providers: Arc<Providers>, paused_on: Option<PlanEvent>) {
    let run = Arc::new(run);
    let task = tokio::spawn(run_workflow_from(run.clone(), providers, paused_on));
    tokio::spawn(async move {
        if let Err(e) = task.await {
            if e.is_panic() {
                crate::log_error!(
                    "run {}: the pipeline panicked; the run is marked failed",
                    run.id
                );
                run.push(Event::Error(ErrorEvent {
                    agent: None,
                    kind: ErrorKind::Config,
                    message: "internal error: the pipeline stopped unexpectedly".to_string(),
                    status: None,
                }));
                let (usage, cost_usd) = run.totals();
                let trace_id = run.end_trace(RunStatus::Failed);
                run.push(Event::Done(DoneEvent {
                    status: RunStatus::Failed,
                    output: String::new(),
                    usage,
                    cost_usd,
                    elapsed_ms: run.started.elapsed().as_millis() as u64,
                    trace_id,
                    budget: run.budget.report(),
                }));
            }
        }
    });
}

/// Runs one pipeline to its `done` event. Cancellation (endpoint, disconnect grace,
/// shutdown) drops whatever call is in flight, which closes its upstream connection.
pub async fn run_workflow(run: Arc<RunContext>, providers: Arc<Providers>) {
    run_workflow_from(run, providers, None).await;
}

/// [`run_workflow`], or its rest after a review pause on `paused_on`.
async fn run_workflow_from(
    run: Arc<RunContext>,
    providers: Arc<Providers>,
    paused_on: Option<PlanEvent>,
) {
    run.begin_trace();
    budget::announce(&run);
    let in_flight = scheduler::InFlight::default();
    let result = tokio::select! {
        biased;
        _ = run.cancelled() => Err(()),
        r = workflow(&run, &providers, &in_flight, paused_on) => Ok(r),
    };
    let (status, output) = match result {
        Ok(r) => r,
        Err(()) => {
            let reason = run
                .cancel_reason()
                .unwrap_or_else(|| "cancelled".to_string());
            for agent in in_flight.take() {
                run.push(Event::Error(ErrorEvent {
                    agent: Some(agent.clone()),
                    kind: ErrorKind::Cancelled,
                    message: format!("cancelled: {reason}"),
                    status: None,
                }));
                run.push(status_event(
                    Some(&agent),
                    AgentState::Failed,
                    &format!("cancelled: {reason}"),
                ));
            }
            run.push(status_event(
                None,
                AgentState::Failed,
                &format!("run cancelled: {reason}"),
            ));
            (RunStatus::Cancelled, String::new())
        }
    };
    tokens_first().await;
    let (usage, cost_usd) = run.totals();
    let trace_id = run.end_trace(status);
    let budget = run.budget.report();
    if budget.as_ref().is_some_and(|b| b.exhausted) {
        METRICS.run_budget_exhausted();
    }
    run.push(Event::Done(DoneEvent {
        status,
        output,
        usage,
        cost_usd,
        elapsed_ms: run.started.elapsed().as_millis() as u64,
        trace_id,
        budget,
    }));
}

/// Lets the tokens other runs have waiting be relayed before this run's next
/// hand-off. A hand-off (the previous agent's end, the next prompt and request, or
/// the run's `done`) is the longest stretch of work a run does at once, and the
/// runtime has one thread: when many runs hand off together (the same team shape
/// started together), their hand-offs queued in front of every waiting token and
/// the relay stalled for milliseconds. Yielding puts this task behind the I/O that is
/// already ready, so hand-offs take what the relay leaves; a hand-off waits at most
/// one scheduler pass, small beside a model's time to first token.
pub(crate) async fn tokens_first() {
    tokio::task::yield_now().await;
}

fn status_event(agent: Option<&str>, state: AgentState, detail: &str) -> Event {
    Event::Status(StatusEvent {
        agent: agent.map(str::to_string),
        state,
        detail: detail.to_string(),
    })
}

async fn workflow(
    run: &Arc<RunContext>,
    providers: &Arc<Providers>,
    in_flight: &scheduler::InFlight,
    paused_on: Option<PlanEvent>,
) -> (RunStatus, String) {
    let cfg = run.config.clone();
    let resumed = paused_on.is_some();
    let mut plan = match paused_on {
        Some(plan) => plan,
        None => {
            let mut plan = make_plan(run, providers, in_flight).await;
            plan.schedule = cfg.schedule;
            plan.stages = stages_of(&plan);
            run.push(Event::Plan(plan.clone()));
            plan
        }
    };
    if let Some(review) = cfg.review {
        // Nothing more is spent until a person approves the plan (maybe edited).
        match review::await_approval(run, review, !resumed).await {
            Ok(mut approved) => {
                approved.schedule = cfg.schedule;
                approved.stages = stages_of(&approved);
                run.push(Event::Plan(approved.clone()));
                plan = approved;
            }
            Err(unanswered) => {
                run.push(status_event(
                    None,
                    AgentState::Failed,
                    &format!("run cancelled: {}", unanswered.detail),
                ));
                return (RunStatus::Cancelled, String::new());
            }
        }
    }
    for s in cfg.specialists() {
        if !plan.agents.contains(&s.name) {
            run.push(status_event(
                Some(&s.name),
                AgentState::Skipped,
                "not chosen by the plan",
            ));
        }
    }

    let outputs = scheduler::run_specialists(run, providers, &plan, in_flight).await;

    let writer = cfg.writer();
    tokens_first().await;
    let user = prompts::writer_message(&run.task, &plan, &outputs);
    in_flight.start(&writer.name);
    let result = call_agent(run, providers, writer, &user, None, &[], &outputs).await;
    in_flight.end(&writer.name);
    match result {
        // An empty deliverable is no answer: the run fails rather than report a
        // deliverable that is not there (no retry: the same prompt to the same model
        // is likely to answer the same).
        Ok(text) if text.trim().is_empty() => {
            let message = "the writer returned no text: there is no deliverable";
            run.push(Event::Error(ErrorEvent {
                agent: Some(writer.name.clone()),
                kind: ErrorKind::BadResponse,
                message: message.to_string(),
                status: None,
            }));
            run.push(status_event(
                Some(&writer.name),
                AgentState::Failed,
                &format!("{message} (the run fails)"),
            ));
            (RunStatus::Failed, text)
        }
        Ok(text) => (RunStatus::Completed, text),
        Err(failure) => (RunStatus::Failed, failure.partial),
    }
}

/// The order the plan's team runs in under its schedule.
fn stages_of(plan: &PlanEvent) -> Vec<Vec<String>> {
    match plan.schedule {
        Schedule::Sequential => dependencies::chain(&plan.agents),
        Schedule::Parallel => dependencies::stages(&plan.agents, &plan.after),
    }
}

/// A plan of `agents` with no dependencies (each member's `after` is empty).
fn no_dependencies(agents: &[String]) -> BTreeMap<String, Vec<String>> {
    agents.iter().map(|a| (a.clone(), Vec::new())).collect()
}

async fn make_plan(
    run: &RunContext,
    providers: &Providers,
    in_flight: &scheduler::InFlight,
) -> PlanEvent {
    let cfg = run.config.clone();
    let roster_order: Vec<&str> = cfg.specialists().map(|a| a.name.as_str()).collect();
    if let Some(team) = &cfg.requested_team {
        run.push(status_event(
            None,
            AgentState::Planning,
            "team chosen by the request",
        ));
        let agents: Vec<String> = roster_order
            .iter()
            .filter(|n| team.iter().any(|t| t == *n))
            .map(|n| n.to_string())
            .collect();
        return PlanEvent {
            after: no_dependencies(&agents),
            agents,
            reasoning: "The team was chosen by the request.".to_string(),
            tasks: Default::default(),
            source: PlanSource::Request,
            dropped: Vec::new(),
            reason: String::new(),
            schedule: cfg.schedule,
            dropped_after: Vec::new(),
            stages: Vec::new(),
        };
    }

    let planner = cfg.planner();
    run.push(status_event(
        Some(&planner.name),
        AgentState::Planning,
        "choosing the team",
    ));
    let candidates: Vec<(String, String)> = cfg
        .specialists()
        .map(|a| (a.name.clone(), a.role.clone()))
        .collect();
    let user = prompts::planner_message(&run.task, &candidates, cfg.schedule);
    in_flight.start(&planner.name);
    let reply = call_agent(run, providers, planner, &user, None, &candidates, &[]).await;
    in_flight.end(&planner.name);
    let fallback = |reason: String, dropped: Vec<String>| {
        let agents = default_team(&roster_order);
        PlanEvent {
            after: no_dependencies(&agents),
            agents,
            reasoning: String::new(),
            tasks: Default::default(),
            source: PlanSource::Fallback,
            dropped,
            reason,
            schedule: cfg.schedule,
            dropped_after: Vec::new(),
            stages: Vec::new(),
        }
    };
    match reply {
        Err(_) => fallback("the orchestrator call failed".to_string(), Vec::new()),
        Ok(text) => match plan::parse_plan(&text, &roster_order) {
            Ok(p) => PlanEvent {
                agents: p.agents,
                reasoning: p.reasoning,
                tasks: p.tasks,
                source: PlanSource::Orchestrator,
                dropped: p.dropped,
                reason: String::new(),
                schedule: cfg.schedule,
                after: p.after,
                dropped_after: p.dropped_after,
                stages: Vec::new(),
            },
            Err(e) => fallback(e.reason, e.dropped),
        },
    }
}

/// The fallback team: researcher and analyst when the roster has them, else its first specialist.
fn default_team(roster_order: &[&str]) -> Vec<String> {
    let wanted: Vec<String> = ["researcher", "analyst"]
        .iter()
        .filter(|n| roster_order.contains(n))
        .map(|n| n.to_string())
        .collect();
    if wanted.is_empty() {
        roster_order.iter().take(1).map(|n| n.to_string()).collect()
    } else {
        wanted
    }
}

#[cfg(test)]
mod tests;
