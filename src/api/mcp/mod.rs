//! `/mcp`: the team as an MCP server over Streamable HTTP. Protocol 2025-11-25 (and
//! 2025-06-18, 2025-03-26) with `initialize` and `MCP-Session-Id` sessions, and the
//! stateless 2026-07-28 revision (`server/discover`, per-request metadata) for
//! requests that declare it. This file checks the `Origin`, picks the era of a POST,
//! answers the methods, and ends sessions on `DELETE`.

pub mod call;
pub mod jsonrpc;
pub mod modern;
pub mod origin;
pub mod run_adapter;
pub mod session;
pub mod tools;

use crate::api::state::AppState;
use crate::http::body::{json, Body};
use bytes::Bytes;
use hyper::header::{HeaderValue, ALLOW, ORIGIN, RETRY_AFTER};
use hyper::{HeaderMap, Method, Response, StatusCode};
use jsonrpc::{Message, RpcError, INTERNAL_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND};
use modern::MODERN_VERSION;
use serde_json::{json, Map, Value};
use session::SessionError;
use std::sync::Arc;

/// The handshake-era versions this server negotiates, newest first.
pub const LEGACY_VERSIONS: [&str; 3] = ["2025-11-25", "2025-06-18", "2025-03-26"];
const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";
/// The code the official SDKs answer an unknown session with.
const SESSION_NOT_FOUND: i64 = -32001;

const INSTRUCTIONS: &str = "agent-mesh runs a team of AI specialists on a task. Call run_team \
with the task to get the team's deliverable (it can take minutes; send a progressToken to \
follow the team's progress). get_run returns an earlier run by its run_id.";

/// Every version this server speaks, for `server/discover` and version errors.
fn supported_versions() -> Vec<&'static str> {
    let mut all = vec![MODERN_VERSION];
    all.extend(LEGACY_VERSIONS);
    all
}

fn capabilities() -> Value {
    json!({"tools": {"listChanged": false}})
}

/// Answers one request to `/mcp` (after the router's authentication). `host` is the
/// authority the client addressed; `body` is the POST body.
pub async fn handle(
    state: &Arc<AppState>,
    method: &Method,
    headers: &HeaderMap,
    host: Option<&str>,
    body: Option<Bytes>,
) -> Response<Body> {
    let origin = headers.get(ORIGIN).map(HeaderValue::as_bytes);
    if !origin::allowed(origin, host, &state.auth.mcp_allowed_origins) {
        let shown = String::from_utf8_lossy(origin.unwrap_or_default()).into_owned();
        crate::log_warn!(
            "/mcp refused a request from Origin {}",
            crate::util::cut_chars(&shown, 100)
        );
        return http_error(
            StatusCode::FORBIDDEN,
            RpcError::new(
                Value::Null,
                INVALID_REQUEST,
                format!(
                    "Forbidden: Origin {} is not allowed to use this MCP server (list it in {})",
                    crate::util::cut_chars(&shown, 100),
                    origin::ALLOWED_ORIGINS_VAR
                ),
            ),
        );
    }
    match *method {
        Method::POST => post(state, headers, &body.unwrap_or_default()).await,
        Method::DELETE => delete(state, headers).await,
        // No standalone server-to-client stream is offered: the spec's answer is 405.
        _ => {
            let mut resp = http_error(
                StatusCode::METHOD_NOT_ALLOWED,
                RpcError::new(
                    Value::Null,
                    INVALID_REQUEST,
                    "Method Not Allowed: this server offers no standalone SSE stream; POST requests to /mcp",
                ),
            );
            resp.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("POST, DELETE"));
            resp
        }
    }
}

async fn post(state: &Arc<AppState>, headers: &HeaderMap, body: &[u8]) -> Response<Body> {
    if crate::api::require_json(headers).is_err() {
        return http_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            RpcError::new(
                Value::Null,
                INVALID_REQUEST,
                "Content-Type must be application/json",
            ),
        );
    }
    let message = match jsonrpc::parse(body) {
        Ok(m) => m,
        Err(e) => return http_error(StatusCode::BAD_REQUEST, e),
    };
    // `initialize` opens a handshake-era session, whatever else the request says.
    if let Message::Request { id, method, params } = &message {
        if method == "initialize" {
            return initialize(state, id, params);
        }
    }
    let version = headers
        .get(VERSION_HEADER)
        .map(|v| v.to_str().unwrap_or("(not text)").trim().to_string());
    match version.as_deref() {
        Some(MODERN_VERSION) => stateless(state, headers, message).await,
        Some(v) if !LEGACY_VERSIONS.contains(&v) => {
            let id = request_id(&message);
            http_error(
                StatusCode::BAD_REQUEST,
                RpcError::new(
                    id,
                    jsonrpc::UNSUPPORTED_PROTOCOL_VERSION,
                    format!(
                        "Bad Request: unsupported MCP-Protocol-Version \"{}\" (supported: {})",
                        crate::util::cut_chars(v, 40),
                        supported_versions().join(", ")
                    ),
                )
                .with_data(json!({"supported": supported_versions(), "requested": v})),
            )
        }
        // No header: the spec says to assume 2025-03-26, which this server speaks.
        _ => in_session(state, headers, message).await,
    }
}

fn initialize(state: &AppState, id: &Value, params: &Map<String, Value>) -> Response<Body> {
    let requested = match params.get("protocolVersion") {
        Some(Value::String(v)) => v.as_str(),
        None | Some(Value::Null) => {
            return call::rpc_error(RpcError::invalid_param(
                id.clone(),
                "protocolVersion",
                "protocolVersion is required",
            ))
        }
        Some(_) => {
            return call::rpc_error(RpcError::invalid_param(
                id.clone(),
                "protocolVersion",
                "protocolVersion must be a string",
            ))
        }
    };
    // The client's version when this server speaks it, else the newest handshake one.
    let version = LEGACY_VERSIONS
        .into_iter()
        .find(|v| *v == requested)
        .unwrap_or(LEGACY_VERSIONS[0]);
    let session = match state.mcp_sessions.open(version) {
        Ok(session) => session,
        Err(_) => {
            let mut resp = http_error(
                StatusCode::SERVICE_UNAVAILABLE,
                RpcError::new(
                    id.clone(),
                    INTERNAL_ERROR,
                    format!(
                        "all {} MCP sessions are busy; try again shortly",
                        session::MAX_SESSIONS
                    ),
                ),
            );
            resp.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("5"));
            return resp;
        }
    };
    let result = json!({
        "protocolVersion": version,
        "capabilities": capabilities(),
        "serverInfo": {
            "name": "agent-mesh",
            "title": "agent-mesh: a team of AI specialists",
            "version": env!("CARGO_PKG_VERSION"),
        },
        "instructions": INSTRUCTIONS,
    });
    let mut resp = json(StatusCode::OK, &jsonrpc::result(id, result));
    if let Ok(value) = HeaderValue::from_str(&session) {
        resp.headers_mut().insert(SESSION_HEADER, value);
    }
    resp
}

/// A 2025-11-25 request after `initialize`: it must name a live session.
async fn in_session(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    message: Message,
) -> Response<Body> {
    let session = match session_of(state, headers, request_id(&message)) {
        Ok(session) => session,
        Err(resp) => return *resp,
    };
    match message {
        Message::Response => call::accepted(),
        Message::Notification { method, params } => {
            if method == "notifications/cancelled" {
                let Some(request) = params.get("requestId").filter(|r| !r.is_null()) else {
                    return http_error(
                        StatusCode::BAD_REQUEST,
                        RpcError::invalid_param(Value::Null, "requestId", "requestId is required"),
                    );
                };
                if let Some(run_id) = state
                    .mcp_sessions
                    .cancel_call(&session, &request.to_string())
                {
                    crate::log_info!("run {run_id} cancelled by its MCP client");
                    run_adapter::cancel(state, &run_id, "cancelled by the MCP client").await;
                }
            }
            // Other notifications (initialized, progress, roots...) need nothing here.
            call::accepted()
        }
        Message::Request { id, method, params } => match method.as_str() {
            "ping" => call::rpc_result(&id, json!({})),
            "tools/list" => call::rpc_result(&id, json!({"tools": tools::definitions(state)})),
            "tools/call" => {
                let call = call::Call::new(id, params, Some(session), headers);
                call::call_tool(state, call).await
            }
            other => call::rpc_error(method_not_found(id, other)),
        },
    }
}

/// A 2026-07-28 request: self-contained, no session; its headers must mirror the body.
async fn stateless(state: &Arc<AppState>, headers: &HeaderMap, message: Message) -> Response<Body> {
    let Message::Request { id, method, params } = message else {
        return call::accepted();
    };
    if let Err(e) = modern::check_request_metadata(headers, &id, &method, &params) {
        return http_error(StatusCode::BAD_REQUEST, e);
    }
    let complete = |mut result: Value| {
        result["resultType"] = json!("complete");
        call::rpc_result(&id, result)
    };
    match method.as_str() {
        "server/discover" => call::rpc_result(
            &id,
            modern::discover_result(&supported_versions(), capabilities(), INSTRUCTIONS),
        ),
        "ping" => complete(json!({})),
        "tools/list" => complete(json!({
            "tools": tools::definitions(state),
            "ttlMs": modern::LIST_TTL_MS,
            "cacheScope": "private",
        })),
        "tools/call" => call::call_tool(state, call::Call::new(id, params, None, headers)).await,
        // 2026-07-28 answers an unknown method with 404 and -32601.
        other => http_error(StatusCode::NOT_FOUND, method_not_found(id, other)),
    }
}

/// `DELETE /mcp`: ends the session; calls still running in it are cancelled.
async fn delete(state: &Arc<AppState>, headers: &HeaderMap) -> Response<Body> {
    let session = match session_header(headers) {
        Some(s) => s,
        None => return session_error(SessionError::Missing, Value::Null),
    };
    match state.mcp_sessions.close(&session) {
        Ok(runs) => {
            for run_id in runs {
                run_adapter::cancel(state, &run_id, "the MCP client ended its session").await;
            }
            let mut resp = Response::new(crate::http::body::empty());
            *resp.status_mut() = StatusCode::NO_CONTENT;
            resp
        }
        Err(e) => session_error(e, Value::Null),
    }
}

fn session_header(headers: &HeaderMap) -> Option<String> {
    headers
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn session_of(
    state: &AppState,
    headers: &HeaderMap,
    id: Value,
) -> Result<String, Box<Response<Body>>> {
    let session = session_header(headers);
    match state.mcp_sessions.touch(session.as_deref()) {
        Ok(_) => Ok(session.unwrap_or_default()),
        Err(e) => Err(Box::new(session_error(e, id))),
    }
}

fn session_error(e: SessionError, id: Value) -> Response<Body> {
    match e {
        SessionError::Missing => http_error(
            StatusCode::BAD_REQUEST,
            RpcError::new(
                id,
                INVALID_REQUEST,
                "Bad Request: the MCP-Session-Id header is required (send initialize first)",
            ),
        ),
        SessionError::Unknown | SessionError::Full => http_error(
            StatusCode::NOT_FOUND,
            RpcError::new(
                id,
                SESSION_NOT_FOUND,
                "Session not found: it ended or expired; send initialize to start a new one",
            ),
        ),
    }
}

fn method_not_found(id: Value, method: &str) -> RpcError {
    RpcError::new(
        id,
        METHOD_NOT_FOUND,
        format!("Method not found: {}", crate::util::cut_chars(method, 60)),
    )
    .with_data(json!({"method": crate::util::cut_chars(method, 60)}))
}

fn request_id(message: &Message) -> Value {
    match message {
        Message::Request { id, .. } => id.clone(),
        _ => Value::Null,
    }
}

fn http_error(status: StatusCode, e: RpcError) -> Response<Body> {
    json(status, &e.to_json())
}
