//! The pipeline (SPEC §4): plan with the orchestrator, run the chosen specialists (one
//! after another, or as the plan's dependency graph: see `scheduler`), then the writer
//! with every full output.

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
use crate::model::agent::AgentKind;
use crate::model::budget::CallId;
use crate::model::error_kind::ErrorKind;
use crate::model::events::{
    AgentState, DoneEvent, ErrorEvent, Event, PlanEvent, PlanSource, RunStatus, StatusEvent,
    StreamEndEvent, StreamStartEvent, Usage,
};
use crate::model::provider_id::ProviderId;
use crate::model::run_config::{AgentConfig, Schedule};
use crate::model::run_context::RunContext;
use crate::providers::error::ProviderError;
use crate::providers::routing::resolve_model;
use crate::providers::{CallRequest, Message, Providers, Role, TokenSink};
use crate::trace::genai;
use run_trace::RunTracing;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// Streams the run's events for one agent call.
struct RunSink<'a> {
    run: &'a RunContext,
    agent: &'a str,
    provider: ProviderId,
    text: String,
    first_token: Option<Instant>,
    /// Attempts retried before output (for the `chat` span's `mesh.retries`).
    retries: u32,
    /// The model round the run's budget meter counts now (none without a budget).
    budget_call: Option<CallId>,
}

impl TokenSink for RunSink<'_> {
    fn token(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        if self.first_token.is_none() {
            self.first_token = Some(Instant::now());
        }
        METRICS.token(self.provider);
        if let Some(call) = self.budget_call {
            self.run.budget.output(call, text.chars().count());
        }
        self.text.push_str(text);
        // Framed from the borrowed text straight into the run's log.
        self.run.push_token(self.agent, text);
    }

    fn queued(&mut self, why: &str) {
        self.run
            .push(status_event(Some(self.agent), AgentState::Queued, why));
    }

    fn retrying(&mut self, attempt: u32, delay: Duration, error: &ProviderError) {
        self.retries = attempt;
        self.run.push(status_event(
            Some(self.agent),
            AgentState::Retrying,
            &format!(
                "retry {attempt} in {:.1} s after {}: {}",
                delay.as_secs_f64(),
                error.kind.as_str(),
                error.message
            ),
        ));
    }
}

/// Why an agent call failed, and whatever text had arrived.
pub(crate) struct AgentFailure {
    pub partial: String,
    /// `kind: message`, for the prompts of the agents that needed this one.
    pub reason: String,
}

/// One agent's call with its events: `stream_start`, tokens, then `stream_end`, or
/// `error` + `status failed`. Returns the text, or on failure whatever text arrived.
pub(crate) async fn call_agent(
    run: &RunContext,
    providers: &Providers,
    agent: &AgentConfig,
    user: &str,
    subtask: Option<&str>,
    candidates: &[(String, String)],
    context: &[(String, String)],
) -> Result<String, AgentFailure> {
    let (model, substituted_for) = resolve_model(agent.provider, &agent.model, agent.kind);
    // Every agent sees the earlier turns of a follow-up before its own message.
    let mut messages = vec![
        Message::system(agent.prompt.as_str()),
        Message::user(run.config.conversation.with_history(user)),
    ];
    // A cap already reached, or a prompt that alone would pass it: the agent is
    // skipped (the writer never is: its share was held back for it).
    if let Err(why) = run
        .budget
        .admits(&agent.name, agent.kind, budget::input_chars(&messages))
    {
        run.push(status_event(
            Some(&agent.name),
            AgentState::Skipped,
            &format!("budget: {why}"),
        ));
        return Err(AgentFailure {
            partial: String::new(),
            reason: format!("budget: {why}"),
        });
    }
    if let Some(warning) = &agent.warning {
        run.push(status_event(Some(&agent.name), AgentState::Queued, warning));
    }
    run.push(Event::StreamStart(StreamStartEvent {
        agent: agent.name.clone(),
        model: model.clone(),
        provider: agent.provider.as_str().to_string(),
        substituted_for,
    }));
    // `invoke_agent` holds one `chat` span for the turn, whose tool rounds are calls of
    // the same conversation (each sends the span's traceparent).
    let provider_name = agent.provider.as_str();
    let agent_span =
        run.child_span(|parent| genai::agent_span(parent, &agent.name, provider_name, &model));
    let mut chat_span = genai::chat_span(
        &agent_span,
        provider_name,
        &model,
        Some(agent.max_tokens),
        None,
    );
    chat_span.set_content(genai::SYSTEM_INSTRUCTIONS, agent.prompt.as_str());
    if chat_span.records_content() {
        chat_span.set_content(genai::INPUT_MESSAGES, &input_messages_json(&messages));
    }
    let traceparent = chat_span.traceparent();
    let tools = tool_loop::turn_tools(providers, agent).await;
    let started = Instant::now();
    let mut sink = RunSink {
        run,
        agent: &agent.name,
        provider: agent.provider,
        text: String::new(),
        first_token: None,
        retries: 0,
        budget_call: None,
    };
    // One stream_start/stream_end per turn: every tool round streams its text and tool
    // events between them, and the stream_end carries the sum of every round.
    let mut usage: Option<Usage> = None;
    let mut cost_usd: Option<f64> = None;
    let mut rounds = 0u32;
    let result = loop {
        // After the last allowed round the tools stay listed (the conversation holds
        // calls of them) but the model may call none.
        let answer_now = rounds >= run.config.tool_rounds;
        let offered = tools.as_ref().map_or(&[][..], |t| t.specs.as_slice());
        let request = CallRequest {
            agent: &agent.name,
            kind: agent.kind,
            model: &model,
            messages: &messages,
            tools: offered,
            answer_without_tools: answer_now,
            max_tokens: agent.max_tokens,
            timeouts: run.config.timeouts,
            task: &run.task,
            subtask,
            candidates,
            context,
            history: &run.config.conversation.turns,
            traceparent: traceparent.as_deref(),
        };
        let round_text_from = sink.text.len();
        // Every round counts against the budget; a cap reached mid-stream (by this
        // call or another at once) drops the call, closing its upstream connection.
        let call = match run
            .budget
            .begin(&agent.name, agent.kind, budget::input_chars(&messages))
        {
            Ok(call) => call,
            Err(why) => break Err(ProviderError::new(ErrorKind::Budget, why)),
        };
        sink.budget_call = call;
        let streamed = tokio::select! {
            biased;
            _ = run.budget.stopped(call) => {
                Err(ProviderError::new(ErrorKind::Budget, run.budget.stop_reason()))
            }
            r = providers.stream(agent.provider, &request, &mut sink) => r,
        };
        let outcome = match (streamed, call) {
            (Ok(outcome), Some(call)) => {
                run.budget.finish(call, outcome.usage, outcome.cost_usd);
                outcome
            }
            (Ok(outcome), None) => outcome,
            (Err(e), call) => {
                if let Some(call) = call {
                    run.budget.abandon(call);
                }
                break Err(e);
            }
        };
        if let Some(u) = outcome.usage {
            usage.get_or_insert_with(Usage::default).add(u);
        }
        if let Some(c) = outcome.cost_usd {
            cost_usd = Some(cost_usd.unwrap_or(0.0) + c);
        }
        let Some(turn_tools) = tools.as_ref().filter(|_| !answer_now) else {
            break Ok(outcome);
        };
        if !outcome.wants_tools() {
            break Ok(outcome);
        }
        rounds += 1;
        let round_text = &sink.text[round_text_from..];
        messages.push(tool_loop::assistant_message(
            round_text,
            &outcome.tool_calls,
        ));
        messages.push(
            tool_loop::run_round(
                run,
                &agent.name,
                &agent_span,
                turn_tools,
                &outcome.tool_calls,
            )
            .await,
        );
        if run.cancel_reason().is_some() {
            break Err(ProviderError::cancelled());
        }
        if rounds >= run.config.tool_rounds {
            messages.push(Message::user(tool_loop::ANSWER_NOW));
        }
    };
    let RunSink {
        text,
        first_token,
        retries,
        ..
    } = sink;
    if let Some(t) = first_token {
        METRICS.first_token(agent.provider, t - started);
        chat_span.set_f64(
            genai::RESPONSE_TIME_TO_FIRST_CHUNK,
            (t - started).as_secs_f64(),
        );
    }
    chat_span.set_int(genai::MESH_RETRIES, i64::from(retries));
    match &result {
        Ok(outcome) => {
            chat_span.set_str_array(
                genai::RESPONSE_FINISH_REASONS,
                &[outcome.finish_reason.as_str()],
            );
            if let Some(u) = outcome.usage {
                chat_span.set_int(genai::USAGE_INPUT_TOKENS, u.input_tokens as i64);
                chat_span.set_int(genai::USAGE_OUTPUT_TOKENS, u.output_tokens as i64);
            }
            if chat_span.records_content() {
                chat_span.set_content(
                    genai::OUTPUT_MESSAGES,
                    &output_messages_json(&text, &outcome.finish_reason),
                );
            }
        }
        Err(e) => chat_span.record_error(&error_type(e), &e.message),
    }
    chat_span.end();
    drop(agent_span);
    match result {
        Ok(outcome) => {
            run.push(Event::StreamEnd(StreamEndEvent {
                agent: agent.name.clone(),
                finish_reason: outcome.finish_reason,
                chars: text.chars().count() as u64,
                usage,
                cost_usd,
                ttft_ms: first_token.map(|t| (t - started).as_millis() as u64),
                elapsed_ms: started.elapsed().as_millis() as u64,
            }));
            if agent.kind == AgentKind::Specialist && text.trim().is_empty() {
                run.push(status_event(
                    Some(&agent.name),
                    AgentState::Done,
                    "returned no text: the agents after it are told their input is empty",
                ));
            }
            Ok(text)
        }
        Err(e) => {
            run.push(Event::Error(ErrorEvent {
                agent: Some(agent.name.clone()),
                kind: e.kind,
                message: e.message.clone(),
                status: e.status,
            }));
            let what = if agent.kind == AgentKind::Writer {
                "the run fails"
            } else {
                "the pipeline goes on"
            };
            run.push(status_event(
                Some(&agent.name),
                AgentState::Failed,
                &format!("{} ({what})", e.message),
            ));
            Err(AgentFailure {
                partial: text,
                reason: format!("{}: {}", e.kind.as_str(), e.message),
            })
        }
    }
}

/// `error.type` for a failed call: the HTTP status a provider answered with, else
/// the error's kind (both low-cardinality, as the conventions ask).
fn error_type(e: &ProviderError) -> String {
    match e.status {
        Some(status) => status.to_string(),
        None => e.kind.as_str().to_string(),
    }
}

/// `gen_ai.input.messages` in the conventions' JSON shape (content recording only).
fn input_messages_json(messages: &[Message]) -> String {
    let parts: Vec<serde_json::Value> = messages
        .iter()
        .map(|m| {
            serde_json::json!({
                "role": match m.role {
                    Role::System => "system",
                    Role::User => "user",
                    Role::Assistant => "assistant",
                    Role::Tool => "tool",
                },
                "parts": m.texts().map(|t| serde_json::json!({"type": "text", "content": t})).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::Value::Array(parts).to_string()
}

/// `gen_ai.output.messages` in the conventions' JSON shape (content recording only).
fn output_messages_json(text: &str, finish_reason: &str) -> String {
    serde_json::json!([{
        "role": "assistant",
        "parts": [{"type": "text", "content": text}],
        "finish_reason": finish_reason,
    }])
    .to_string()
}

#[cfg(test)]
mod tests;
