//! One agent's turn with the run's events around it: `stream_start`, its tokens
//! (through the tool loop when it has tools), then `stream_end`, or `error` and
//! `status failed`; with its `invoke_agent` and `chat` spans and its budget.

use super::run_trace::RunTracing;
use super::{budget, status_event, tool_loop};
use crate::metrics::METRICS;
use crate::model::agent::AgentKind;
use crate::model::budget::CallId;
use crate::model::error_kind::ErrorKind;
use crate::model::events::{
    AgentState, ErrorEvent, Event, StreamEndEvent, StreamStartEvent, Usage,
};
use crate::model::provider_id::ProviderId;
use crate::model::run_config::AgentConfig;
use crate::model::run_context::RunContext;
use crate::providers::error::ProviderError;
use crate::providers::routing::resolve_model;
use crate::providers::{CallRequest, Message, Providers, Role, TokenSink};
use crate::trace::genai;
use std::time::{Duration, Instant};

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
