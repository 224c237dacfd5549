//! The OpenAI-compatible surface: `GET /v1/models` and `POST /v1/chat/completions`,
//! each request a normal store run whose events are translated to Chat Completions
//! chunks; errors in OpenAI's `{"error":{message,type,param,code}}` shape.

use super::chat_request::{parse_chat_request, parse_model, ChatError, ChatRequest, MODEL};
use super::run_request::RunRequest;
use crate::api::state::AppState;
use crate::http::body::{json, Body};
use crate::http::error::ApiError;
use crate::http::sse::{ChannelBody, KEEP_ALIVE, KEEP_ALIVE_COMMENT};
use crate::model::agent::AgentKind;
use crate::model::conversation::Conversation;
use crate::model::events::{Event, PlanSource, RunStatus, Usage};
use crate::model::run_config::RunConfig;
use crate::store::{EventRef, RunHandle};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::header::CONTENT_TYPE;
use hyper::{HeaderMap, Response, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Chunks waiting for a slow client; beyond this the relay waits (the run goes on
/// logging into the store meanwhile, so nothing is lost).
const CHUNK_BUFFER: usize = 64;

/// `GET /v1/models`: the orchestrated team, then one fixed one-specialist team each.
pub fn models(state: &AppState) -> Response<Body> {
    let created = unix_now();
    let mut data = vec![model_object(MODEL, created)];
    for name in state.pipeline.roster.specialist_names() {
        data.push(model_object(&format!("{MODEL}/{name}"), created));
    }
    json(StatusCode::OK, &json!({"object": "list", "data": data}))
}

/// `GET /v1/models/{id}` (`id` as it came in the path, `/` possibly escaped as
/// `%2F`): the model object of any model a completion accepts, listed or a team
/// like `agent-mesh/researcher+coder`; otherwise OpenAI's 404 `model_not_found`.
pub fn model(state: &AppState, raw_id: &str) -> Response<Body> {
    let id = crate::util::percent_decode(raw_id).unwrap_or_else(|| raw_id.to_string());
    match parse_model(&id, &state.pipeline.roster) {
        Ok(_) => json(StatusCode::OK, &model_object(&id, unix_now())),
        Err(e) => error_response(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            &e.message,
            Some(&e.param),
            e.code,
        ),
    }
}

fn model_object(id: &str, created: u64) -> Value {
    json!({"id": id, "object": "model", "created": created, "owned_by": "agent-mesh"})
}

/// `POST /v1/chat/completions`. Always a response: failures are OpenAI-shaped errors.
pub async fn completions(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    body: &[u8],
) -> Response<Body> {
    match start(state, headers, body).await {
        Ok((req, run)) if req.stream => stream_response(req, run),
        Ok((req, run)) => complete(req, run).await,
        Err(resp) => resp,
    }
}

async fn start(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(ChatRequest, RunHandle), Response<Body>> {
    super::require_json(headers).map_err(openai_error)?;
    let req = parse_chat_request(body, &state.pipeline.roster).map_err(invalid_request)?;
    let run_req = RunRequest {
        task: req.task.clone(),
        provider: None,
        models: Default::default(),
        agents: req.team.clone(),
        // Detached: the store's disconnect grace watches stream subscribers, which a
        // chat client never is; the client's own connection decides instead (see
        // CancelOnDrop).
        detach: true,
        budget: None,
        schedule: None,
        parent: None,
        tools: None,
        review: false,
    };
    let mut config = state.freeze_run_config(&run_req);
    config.trace_parent = super::incoming_trace(headers);
    config.conversation = Conversation::from_turns(req.history.clone());
    crate::pipeline::budget::add_history(&mut config);
    if let Some(instruction) = &req.instruction {
        if let Some(writer) = config
            .agents
            .iter_mut()
            .find(|a| a.kind == AgentKind::Writer)
        {
            writer.prompt = format!(
                "{}\n\nThe person asking also gave this instruction; follow it:\n{instruction}",
                writer.prompt
            );
        }
    }
    let run = super::create_run(state, req.task.clone(), config)
        .await
        .map_err(openai_error)?;
    Ok((req, run))
}

/// Cancels the run when dropped before [`disarm`](Self::disarm): the response future
/// or the relay task went away because the client did.
struct CancelOnDrop(Option<RunHandle>);

impl CancelOnDrop {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(run) = self.0.take() {
            if !run.is_finished() {
                crate::log_info!("run {} cancelled: the chat client disconnected", run.id());
                run.cancel("the chat client disconnected");
            }
        }
    }
}

/// `stream: false`: wait for the run, then one `chat.completion`.
async fn complete(req: ChatRequest, run: RunHandle) -> Response<Body> {
    let mut guard = CancelOnDrop(Some(run.clone()));
    let mut last_error = None;
    // A run just created has no other subscriber: this cannot be refused.
    if let Ok(events) = run.subscribe() {
        let mut after = 0;
        while events
            .next_events(&mut after, |_, e| note_error(&mut last_error, e))
            .await
        {}
    }
    guard.disarm();
    let snap = run.snapshot();
    let finish_reason = match snap.status {
        // Whatever text exists is not an answer: an error, never a `stop`.
        RunStatus::Failed => {
            return error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                &failure_message(last_error),
                None,
                Some(RUN_FAILED),
            )
        }
        status => finish_reason(status),
    };
    json(
        StatusCode::OK,
        &json!({
            "id": completion_id(&run),
            "object": "chat.completion",
            "created": unix_now(),
            "model": req.model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": snap.output},
                "finish_reason": finish_reason,
            }],
            "usage": usage_of(snap.usage),
        }),
    )
}

/// The `code` of the error a failed run answers with, streaming or not.
const RUN_FAILED: &str = "run_failed";

/// The `finish_reason` of a run that ended without failing: `stop` only for a
/// finished answer, `cancelled` for one cut short (a cancel, a shutdown).
fn finish_reason(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Completed => "stop",
        _ => "cancelled",
    }
}

/// What the client is told when the run failed, from its last `error` event.
fn failure_message(last_error: Option<String>) -> String {
    let message = last_error.unwrap_or_else(|| "the run failed".to_string());
    format!("the team could not finish: {message}")
}

/// Keeps the message of the latest `error` event.
fn note_error(last_error: &mut Option<String>, event: EventRef<'_>) {
    if let EventRef::Other(Event::Error(e)) = event {
        *last_error = Some(e.message.clone());
    }
}

/// `stream: true`: a relay task turns the run's events into chunks; the body drains
/// them. A client that goes away drops the body, the relay notices the closed channel
/// at once and its guard cancels the run.
fn stream_response(req: ChatRequest, run: RunHandle) -> Response<Body> {
    let (tx, rx) = mpsc::channel(CHUNK_BUFFER);
    tokio::spawn(relay(req, run, tx));
    crate::http::body::sse(ChannelBody::new(rx).boxed())
}

async fn relay(req: ChatRequest, run: RunHandle, tx: mpsc::Sender<Bytes>) {
    let mut guard = CancelOnDrop(Some(run.clone()));
    let chunks = Chunks {
        id: completion_id(&run),
        created: unix_now(),
        model: req.model.clone(),
    };
    // A run just created has no other subscriber: this cannot be refused.
    let Ok(events) = run.subscribe() else { return };
    if tx
        .send(chunks.delta(json!({"role": "assistant", "content": ""}), None))
        .await
        .is_err()
    {
        return;
    }
    let config = run.config().clone();
    let mut after = 0;
    let mut last_error = None;
    let mut batch = Vec::new();
    let mut last_sent = Instant::now();
    loop {
        // Translated under the run's lock (no waiting there), sent after it. While
        // the specialists work nothing may be sent for minutes: a comment after
        // `KEEP_ALIVE` of silence keeps proxies (nginx cuts at 60 s) from closing
        // the stream, as on /api/stream. Waiting for events is cancel-safe.
        let more = tokio::select! {
            more = events.next_events(&mut after, |_, event| {
                note_error(&mut last_error, event);
                if let Some(delta) = translate(&config, event) {
                    batch.push(chunks.delta(delta, None));
                }
            }) => more,
            _ = tx.closed() => return,
            _ = tokio::time::sleep_until(last_sent + KEEP_ALIVE) => {
                batch.push(Bytes::from_static(KEEP_ALIVE_COMMENT));
                true
            }
        };
        if !batch.is_empty() {
            last_sent = Instant::now();
        }
        for chunk in batch.drain(..) {
            if tx.send(chunk).await.is_err() {
                return;
            }
        }
        if !more {
            break;
        }
    }
    guard.disarm();
    let snap = run.snapshot();
    // A failed run ends with an error object in the stream: OpenAI's SDKs raise it
    // as an APIError, where a plain stop would pass for a complete (empty) answer.
    let mut tail = if snap.status == RunStatus::Failed {
        vec![sse_data(&json!({"error": {
            "message": failure_message(last_error),
            "type": "server_error", "param": null, "code": RUN_FAILED,
        }}))]
    } else {
        vec![chunks.delta(json!({}), Some(finish_reason(snap.status)))]
    };
    if req.include_usage {
        tail.push(sse_data(&json!({
            "id": chunks.id, "object": "chat.completion.chunk", "created": chunks.created,
            "model": chunks.model, "choices": [], "usage": usage_of(snap.usage),
        })));
    }
    tail.push(Bytes::from_static(b"data: [DONE]\n\n"));
    for b in tail {
        if tx.send(b).await.is_err() {
            return;
        }
    }
}

struct Chunks {
    id: String,
    created: u64,
    model: String,
}

impl Chunks {
    fn delta(&self, delta: Value, finish_reason: Option<&str>) -> Bytes {
        sse_data(&json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }))
    }
}

fn sse_data(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

/// One run event as a chunk's delta: the writer's tokens are the answer; the plan,
/// each specialist's start and end, tool calls and their results, and errors are progress, sent as
/// `reasoning_content` (the field reasoning models use, which clients show apart
/// from the answer or ignore).
fn translate(config: &RunConfig, event: EventRef<'_>) -> Option<Value> {
    let kind = |agent: &str| config.agent(agent).map(|a| a.kind);
    let reasoning = |text: String| Some(json!({"reasoning_content": text}));
    match event {
        EventRef::Token { agent, text } if kind(agent) == Some(AgentKind::Writer) => {
            Some(json!({"content": text}))
        }
        EventRef::Other(Event::Plan(p)) => {
            let team = p.agents.join(", ");
            // A fallback plan is not the orchestrator's choice: say so, and why.
            if p.source == PlanSource::Fallback {
                return reasoning(format!(
                    "Plan: {team} (a fallback team, not the orchestrator's choice: {})\n",
                    p.reason
                ));
            }
            let why = if p.reasoning.is_empty() {
                String::new()
            } else {
                format!(" ({})", p.reasoning)
            };
            reasoning(format!("Plan: {team}{why}\n"))
        }
        EventRef::Other(Event::StreamStart(s)) if kind(&s.agent) == Some(AgentKind::Specialist) => {
            reasoning(format!("{} started ({})\n", s.agent, s.model))
        }
        EventRef::Other(Event::StreamEnd(e)) if kind(&e.agent) == Some(AgentKind::Specialist) => {
            reasoning(format!("{} finished ({} characters)\n", e.agent, e.chars))
        }
        EventRef::Other(Event::ToolCall(c)) => reasoning(format!(
            "{} calls {}/{} {}\n",
            c.agent, c.server, c.tool, c.arguments
        )),
        EventRef::Other(Event::ToolResult(r)) => {
            let outcome = if r.ok { "result" } else { "error" };
            reasoning(format!(
                "{} tool {outcome} ({} ms): {}\n",
                r.agent, r.elapsed_ms, r.content
            ))
        }
        EventRef::Other(Event::Error(e)) => {
            let who = e.agent.as_deref().unwrap_or("run");
            reasoning(format!("{who}: error: {}\n", e.message))
        }
        _ => None,
    }
}

/// OpenAI's usage object; `null` when no call of the run reported usage (a server
/// that sends none), never zeros.
fn usage_of(usage: Option<Usage>) -> Value {
    let Some(usage) = usage else {
        return Value::Null;
    };
    let (prompt, completion) = (usage.input_tokens, usage.output_tokens);
    json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
}

/// `chatcmpl-<run id>`: the run stays findable from what the client logged.
fn completion_id(run: &RunHandle) -> String {
    format!("chatcmpl-{}", run.id())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn invalid_request(e: ChatError) -> Response<Body> {
    error_response(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        &e.message,
        Some(&e.param),
        e.code,
    )
}

/// Any `ApiError` (auth, limits, store) in OpenAI's shape, keeping its status and
/// headers (`Retry-After`, `Allow`).
pub fn openai_error(e: ApiError) -> Response<Body> {
    let status = e.status();
    let (kind, param) = match &e {
        ApiError::BadRequest { field, .. } => ("invalid_request_error", field.clone()),
        ApiError::Unauthorized => ("authentication_error", None),
        ApiError::TooManyRuns { .. }
        | ApiError::TooManySubscribers { .. }
        | ApiError::TooManyAuthFailures { .. } => ("rate_limit_error", None),
        _ if status.is_client_error() => ("invalid_request_error", None),
        _ => ("server_error", None),
    };
    let code = match &e {
        ApiError::Unauthorized => "invalid_api_key",
        other => other.code(),
    };
    let message = e.message();
    let mut resp = error_response(status, kind, &message, param.as_deref(), Some(code));
    let unauthorized = matches!(e, ApiError::Unauthorized);
    let original = e.into_response();
    for (name, value) in original.headers() {
        if name != CONTENT_TYPE && name != hyper::header::WWW_AUTHENTICATE {
            resp.headers_mut().insert(name.clone(), value.clone());
        }
    }
    // OpenAI clients authenticate with a bearer key (RFC 6750 §3), not Basic.
    if unauthorized {
        resp.headers_mut().insert(
            hyper::header::WWW_AUTHENTICATE,
            hyper::header::HeaderValue::from_static("Bearer realm=\"agent-mesh\""),
        );
    }
    resp
}

fn error_response(
    status: StatusCode,
    kind: &str,
    message: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Response<Body> {
    json(
        status,
        &json!({"error": {"message": message, "type": kind, "param": param, "code": code}}),
    )
}
