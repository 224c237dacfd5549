//! The OpenAI-compatible surface: `GET /v1/models` and `POST /v1/chat/completions`,
//! each request a normal store run whose events are translated to Chat Completions
//! chunks; errors in OpenAI's `{"error":{message,type,param,code}}` shape.

use super::chat_request::{parse_chat_request, ChatError, ChatRequest, MODEL};
use super::run_request::RunRequest;
use crate::app::AppState;
use crate::http::body::{json, Body};
use crate::http::error::ApiError;
use crate::http::sse::ChannelBody;
use crate::model::agent::AgentKind;
use crate::model::conversation::Conversation;
use crate::store::Run;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::header::CONTENT_TYPE;
use hyper::{HeaderMap, Response, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// Chunks waiting for a slow client; beyond this the relay waits (the run goes on
/// logging into the store meanwhile, so nothing is lost).
const CHUNK_BUFFER: usize = 64;

/// `GET /v1/models`: the orchestrated team, then one fixed one-specialist team each.
pub fn models(state: &AppState) -> Response<Body> {
    let created = unix_now();
    let entry = |id: String| json!({"id": id, "object": "model", "created": created, "owned_by": "agent-mesh"});
    let mut data = vec![entry(MODEL.to_string())];
    for name in state.config.roster.specialist_names() {
        data.push(entry(format!("{MODEL}/{name}")));
    }
    json(StatusCode::OK, &json!({"object": "list", "data": data}))
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
) -> Result<(ChatRequest, Arc<Run>), Response<Body>> {
    super::require_json(headers).map_err(openai_error)?;
    let req = parse_chat_request(body, &state.config.roster).map_err(invalid_request)?;
    let run_req = RunRequest {
        task: req.task.clone(),
        provider: None,
        models: Default::default(),
        agents: req.team.clone(),
        // Detached: the store's disconnect grace watches stream subscribers, which a
        // chat client never is; the client's own connection decides instead (see
        // CancelOnDrop).
        detach: true,
        schedule: None,
        parent: None,
    };
    let mut config = state.freeze_run_config(&run_req);
    config.conversation = Conversation::from_turns(req.history.clone());
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
struct CancelOnDrop(Option<Arc<Run>>);

impl CancelOnDrop {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(run) = self.0.take() {
            if !run.is_finished() {
                crate::log_info!("run {} cancelled: the chat client disconnected", run.id);
                run.cancel("the chat client disconnected");
            }
        }
    }
}

/// `stream: false`: wait for the run, then one `chat.completion`.
async fn complete(req: ChatRequest, run: Arc<Run>) -> Response<Body> {
    let mut guard = CancelOnDrop(Some(run.clone()));
    let mut seq = run.watch_seq();
    while !run.is_finished() {
        if seq.changed().await.is_err() {
            break;
        }
    }
    guard.disarm();
    let snap = run.snapshot_json();
    let usage = usage_of(&snap["usage"]);
    let status = snap["status"].as_str().unwrap_or("");
    if status != "completed" && snap["output"].as_str().unwrap_or("").is_empty() {
        return openai_error(ApiError::Internal(format!(
            "the run {} ended {status} without a deliverable",
            run.id
        )));
    }
    json(
        StatusCode::OK,
        &json!({
            "id": completion_id(&run),
            "object": "chat.completion",
            "created": unix_now(),
            "model": req.model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": snap["output"]},
                "finish_reason": "stop",
            }],
            "usage": usage,
        }),
    )
}

/// `stream: true`: a relay task turns the run's events into chunks; the body drains
/// them. A client that goes away drops the body, the relay notices the closed channel
/// at once and its guard cancels the run.
fn stream_response(req: ChatRequest, run: Arc<Run>) -> Response<Body> {
    let (tx, rx) = mpsc::channel(CHUNK_BUFFER);
    tokio::spawn(relay(req, run, tx));
    crate::http::body::sse(ChannelBody::new(rx).boxed())
}

async fn relay(req: ChatRequest, run: Arc<Run>, tx: mpsc::Sender<Bytes>) {
    let mut guard = CancelOnDrop(Some(run.clone()));
    let chunks = Chunks {
        id: completion_id(&run),
        created: unix_now(),
        model: req.model.clone(),
    };
    // Subscribed before the first read, so no event logged in between is missed.
    let mut seq = run.watch_seq();
    if tx
        .send(chunks.delta(json!({"role": "assistant", "content": ""}), None))
        .await
        .is_err()
    {
        return;
    }
    let mut after = 0;
    let mut last_error = None;
    loop {
        let (frames, last, finished) = run.frames_after(after);
        after = last;
        for frame in &frames {
            let Some((name, data)) = logged_event(frame) else {
                continue;
            };
            if name == "error" {
                last_error = data["message"].as_str().map(str::to_string);
            }
            if let Some(delta) = translate(&run, name, &data) {
                if tx.send(chunks.delta(delta, None)).await.is_err() {
                    return;
                }
            }
        }
        if finished {
            break;
        }
        tokio::select! {
            changed = seq.changed() => if changed.is_err() { break },
            _ = tx.closed() => return,
        }
    }
    guard.disarm();
    let snap = run.snapshot_json();
    // A failed run ends with an error object in the stream: OpenAI's SDKs raise it
    // as an APIError, where a plain stop would pass for a complete (empty) answer.
    let mut tail = if snap["status"] == "failed" {
        let message = last_error.unwrap_or_else(|| "the run failed".to_string());
        vec![sse_data(&json!({"error": {
            "message": format!("the team could not finish: {message}"),
            "type": "server_error", "param": null, "code": "run_failed",
        }}))]
    } else {
        vec![chunks.delta(json!({}), Some("stop"))]
    };
    if req.include_usage {
        tail.push(sse_data(&json!({
            "id": chunks.id, "object": "chat.completion.chunk", "created": chunks.created,
            "model": chunks.model, "choices": [], "usage": usage_of(&snap["usage"]),
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

/// The name and data of one logged frame (as `events::write_frame` writes it).
fn logged_event(frame: &[u8]) -> Option<(&str, Value)> {
    let (_, name, data) = crate::model::events::parse_frame(frame)?;
    Some((name, serde_json::from_str(data).ok()?))
}

/// One run event as a chunk's delta: the writer's tokens are the answer; the plan,
/// each specialist's start and end, and errors are progress, sent as
/// `reasoning_content` (the field reasoning models use, which clients show apart
/// from the answer or ignore).
fn translate(run: &Run, name: &str, data: &Value) -> Option<Value> {
    let agent = data["agent"].as_str().unwrap_or("");
    let kind = run.config.agent(agent).map(|a| a.kind);
    let reasoning = |text: String| Some(json!({"reasoning_content": text}));
    match name {
        "token" if kind == Some(AgentKind::Writer) => {
            Some(json!({"content": data["text"].as_str().unwrap_or("")}))
        }
        "plan" => {
            let agents: Vec<&str> = data["agents"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let why = data["reasoning"].as_str().unwrap_or("");
            let why = if why.is_empty() {
                String::new()
            } else {
                format!(" ({why})")
            };
            reasoning(format!("Plan: {}{why}\n", agents.join(", ")))
        }
        "stream_start" if kind == Some(AgentKind::Specialist) => {
            let model = data["model"].as_str().unwrap_or("");
            reasoning(format!("{agent} started ({model})\n"))
        }
        "stream_end" if kind == Some(AgentKind::Specialist) => {
            let chars = data["chars"].as_u64().unwrap_or(0);
            reasoning(format!("{agent} finished ({chars} characters)\n"))
        }
        "error" => {
            let who = if agent.is_empty() { "run" } else { agent };
            let message = data["message"].as_str().unwrap_or("");
            reasoning(format!("{who}: error: {message}\n"))
        }
        _ => None,
    }
}

fn usage_of(usage: &Value) -> Value {
    let prompt = usage["input_tokens"].as_u64().unwrap_or(0);
    let completion = usage["output_tokens"].as_u64().unwrap_or(0);
    json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
}

/// `chatcmpl-<run id>`: the run stays findable from what the client logged.
fn completion_id(run: &Run) -> String {
    format!("chatcmpl-{}", run.id)
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
        ApiError::TooManyRuns { .. } | ApiError::TooManyAuthFailures { .. } => {
            ("rate_limit_error", None)
        }
        _ if status.is_client_error() => ("invalid_request_error", None),
        _ => ("server_error", None),
    };
    let code = match &e {
        ApiError::Unauthorized => "invalid_api_key",
        other => other.code(),
    };
    let message = e.message();
    let mut resp = error_response(status, kind, &message, param.as_deref(), Some(code));
    let original = e.into_response();
    for (name, value) in original.headers() {
        if name != CONTENT_TYPE && name != hyper::header::WWW_AUTHENTICATE {
            resp.headers_mut().insert(name.clone(), value.clone());
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_frames_parse_back_into_events() {
        let mut out = bytes::BytesMut::new();
        crate::model::events::write_token_frame(&mut out, 1, "writer", "a \"quoted\"\nline");
        let (name, data) = logged_event(&out).unwrap();
        assert_eq!(name, "token");
        assert_eq!(data["text"], "a \"quoted\"\nline");
        assert!(logged_event(b": keep-alive\n\n").is_none());
    }
}
