//! `tools/call`: the checks of `name` and `arguments`, `get_run` answered as JSON,
//! and `run_team` answered as an SSE stream of progress notifications ending with
//! the result (or as one JSON result for a client that accepts no stream). A client
//! that goes away or cancels the request cancels the run.

use super::jsonrpc::{self, RpcError};
use super::run_adapter::{self, Outcome, Step, TeamRun};
use super::tools;
use crate::api::state::AppState;
use crate::http::body::{json, Body};
use crate::http::sse::{ChannelBody, KEEP_ALIVE};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::header::ACCEPT;
use hyper::{HeaderMap, Response, StatusCode};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Frames waiting for a slow client; beyond this the relay waits.
const FRAME_BUFFER: usize = 64;

/// One `tools/call` request and how its answer is to be shaped.
pub struct Call {
    pub id: Value,
    pub params: Map<String, Value>,
    /// The session it came in (2025-11-25); `None` for a stateless request.
    pub session: Option<String>,
    /// 2026-07-28 results carry `resultType`.
    pub modern: bool,
    /// The client accepts `text/event-stream`.
    pub stream: bool,
    /// The request's W3C trace context: the parent of a run it starts.
    pub trace_parent: Option<crate::trace::SpanContext>,
}

impl Call {
    /// A call in `session` (2025-11-25), or a stateless one (2026-07-28) without.
    pub fn new(
        id: Value,
        params: Map<String, Value>,
        session: Option<String>,
        headers: &HeaderMap,
    ) -> Call {
        Call {
            id,
            params,
            modern: session.is_none(),
            session,
            stream: accepts_stream(headers),
            trace_parent: crate::api::incoming_trace(headers),
        }
    }

    fn respond(&self, mut result: Value) -> Response<Body> {
        if self.modern {
            result["resultType"] = json!("complete");
        }
        rpc_result(&self.id, result)
    }

    fn request_key(&self) -> String {
        self.id.to_string()
    }
}

pub async fn call_tool(state: &Arc<AppState>, call: Call) -> Response<Body> {
    let id = call.id.clone();
    let name = match call.params.get("name") {
        Some(Value::String(n)) => n.clone(),
        None | Some(Value::Null) => {
            return rpc_error(RpcError::invalid_param(id, "name", "name is required"))
        }
        Some(_) => return rpc_error(RpcError::invalid_param(id, "name", "name must be a string")),
    };
    let arguments = match call.params.get("arguments") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(a)) => a.clone(),
        Some(_) => {
            return rpc_error(RpcError::invalid_param(
                id,
                "arguments",
                "arguments must be an object",
            ))
        }
    };
    match name.as_str() {
        tools::GET_RUN => {
            let result = match tools::run_id_argument(&arguments) {
                Err(e) => tools::argument_error(&e),
                Ok(run_id) => match run_adapter::report(state, &run_id).await {
                    Ok(outcome) => tools::run_result(&outcome, true),
                    Err(e) => tools::error_result(&e.message()),
                },
            };
            call.respond(result)
        }
        tools::RUN_TEAM => {
            let req = match tools::run_team_request(state, &arguments) {
                Ok(req) => req,
                Err(e) => return call.respond(tools::argument_error(&e)),
            };
            let run = match run_adapter::start(state, req, call.trace_parent).await {
                Ok(run) => run,
                // Limits, shutdown, an unknown parent: the model can read and act on it.
                Err(e) => return call.respond(tools::error_result(&e.message())),
            };
            crate::log_info!("run {} started by an MCP client", run.id());
            let guard = CancelOnDrop::arm(state, &run, &call);
            let progress_token = call
                .params
                .get("_meta")
                .and_then(|m| m.get("progressToken"))
                .filter(|t| t.is_string() || t.is_i64() || t.is_u64())
                .cloned();
            if call.stream {
                let (tx, rx) = mpsc::channel(FRAME_BUFFER);
                tokio::spawn(relay(run, call, progress_token, guard, tx));
                let mut resp = crate::http::body::sse(ChannelBody::new(rx).boxed());
                *resp.status_mut() = StatusCode::OK;
                resp
            } else {
                // No stream: no progress, one result once the run ends. The response
                // future is dropped if the client goes away, and the guard with it.
                match drive(&run, None, None).await {
                    Some(outcome) => {
                        finish(guard, &call, &outcome).map_or_else(accepted, |r| call.respond(r))
                    }
                    None => accepted(),
                }
            }
        }
        other => rpc_error(RpcError::invalid_param(
            id,
            "name",
            format!(
                "unknown tool \"{}\" (this server has run_team and get_run)",
                crate::util::cut_chars(other, 60)
            ),
        )),
    }
}

/// A JSON-RPC error answering a request that was read (HTTP 200, as the transport
/// carries method-level errors).
pub fn rpc_error(e: RpcError) -> Response<Body> {
    json(StatusCode::OK, &e.to_json())
}

/// A JSON-RPC result for request `id`.
pub fn rpc_result(id: &Value, result: Value) -> Response<Body> {
    json(StatusCode::OK, &jsonrpc::result(id, result))
}

/// 202 with no body: a notification or response taken in, or a cancelled request
/// (which gets no JSON-RPC response, as the spec says).
pub fn accepted() -> Response<Body> {
    let mut resp = Response::new(crate::http::body::empty());
    *resp.status_mut() = StatusCode::ACCEPTED;
    resp
}

/// Follows the run to its end, sending a progress notification per step when the
/// client asked for them (`token`) over `frames`; `None` when the client went away.
async fn drive(
    run: &TeamRun,
    frames: Option<&mpsc::Sender<Bytes>>,
    token: Option<&Value>,
) -> Option<Outcome> {
    let (step_tx, mut steps) = mpsc::channel::<Step>(FRAME_BUFFER);
    let follow = run_adapter::follow(run, &step_tx);
    tokio::pin!(follow);
    let mut counter = tools::ProgressCounter::default();
    let mut keep_alive = tokio::time::interval(KEEP_ALIVE);
    keep_alive.tick().await;
    let client_gone = async {
        match frames {
            Some(f) => f.closed().await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(client_gone);
    let send = |frame: Bytes| async move {
        match frames {
            Some(f) => f.send(frame).await.is_ok(),
            None => true,
        }
    };
    let outcome = loop {
        tokio::select! {
            outcome = &mut follow => break outcome?,
            Some(step) = steps.recv() => {
                if let Some(frame) = progress_frame(&mut counter, token, &step) {
                    if !send(frame).await {
                        return None;
                    }
                }
            }
            _ = keep_alive.tick() => {
                if !send(Bytes::from_static(b": keep-alive\n\n")).await {
                    return None;
                }
            }
            _ = &mut client_gone => return None,
        }
    };
    // The steps sent just before the end are still queued.
    while let Ok(step) = steps.try_recv() {
        if let Some(frame) = progress_frame(&mut counter, token, &step) {
            if !send(frame).await {
                return None;
            }
        }
    }
    Some(outcome)
}

fn progress_frame(
    counter: &mut tools::ProgressCounter,
    token: Option<&Value>,
    step: &Step,
) -> Option<Bytes> {
    let (progress, total, message) = counter.step(step);
    let token = token?;
    let mut params = json!({"progressToken": token, "progress": progress, "message": message});
    if let Some(total) = total {
        params["total"] = json!(total);
    }
    Some(sse_message(&jsonrpc::notification(
        "notifications/progress",
        params,
    )))
}

async fn relay(
    run: TeamRun,
    call: Call,
    token: Option<Value>,
    guard: CancelOnDrop,
    tx: mpsc::Sender<Bytes>,
) {
    let Some(outcome) = drive(&run, Some(&tx), token.as_ref()).await else {
        return; // the guard cancels the run
    };
    if let Some(mut result) = finish(guard, &call, &outcome) {
        if call.modern {
            result["resultType"] = json!("complete");
        }
        let _ = tx
            .send(sse_message(&jsonrpc::result(&call.id, result)))
            .await;
    }
}

/// The run ended: the guard stands down, and the result is owed unless the client
/// cancelled the request meanwhile.
fn finish(mut guard: CancelOnDrop, call: &Call, outcome: &Outcome) -> Option<Value> {
    guard.disarm();
    let owed = match &call.session {
        Some(session) => guard
            .state
            .mcp_sessions
            .call_finished(session, &call.request_key()),
        None => true,
    };
    crate::log_info!(
        "run {} ended {} for an MCP client",
        outcome.run_id,
        outcome.status.as_str()
    );
    owed.then(|| tools::run_result(outcome, false))
}

fn sse_message(message: &Value) -> Bytes {
    Bytes::from(format!("event: message\ndata: {message}\n\n"))
}

/// Cancels the run when dropped armed: the relay or the response future went away
/// because the client did.
struct CancelOnDrop {
    state: Arc<AppState>,
    run_id: String,
    /// The session and request key the call is recorded under.
    call: Option<(String, String)>,
    armed: bool,
}

impl CancelOnDrop {
    fn arm(state: &Arc<AppState>, run: &TeamRun, call: &Call) -> CancelOnDrop {
        let recorded = call
            .session
            .as_ref()
            .map(|s| (s.clone(), call.request_key()));
        if let Some((session, key)) = &recorded {
            state.mcp_sessions.call_started(session, key, run.id());
        }
        CancelOnDrop {
            state: state.clone(),
            run_id: run.id().to_string(),
            call: recorded,
            armed: true,
        }
    }

    fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some((session, key)) = &self.call {
            self.state.mcp_sessions.call_finished(session, key);
        }
        crate::log_info!("run {} cancelled: the MCP client went away", self.run_id);
        let state = self.state.clone();
        let run_id = std::mem::take(&mut self.run_id);
        crate::store::seam::spawn_detached(async move {
            run_adapter::cancel(&state, &run_id, "the MCP client disconnected").await;
        });
    }
}

/// Whether the client takes an SSE answer: it lists `text/event-stream` (as the spec
/// requires of clients), or sends no `Accept` or `*/*`.
fn accepts_stream(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(ACCEPT).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    accept.split(',').any(|part| {
        let mime = part.split(';').next().unwrap_or("").trim();
        mime.eq_ignore_ascii_case("text/event-stream") || mime == "*/*"
    })
}
