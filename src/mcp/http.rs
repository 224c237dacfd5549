//! The Streamable HTTP transport on the project's HTTP client: era negotiation (a
//! 2026-07-28 `server/discover` probe, falling back to the 2025-11-25 `initialize`
//! handshake), session headers, re-initialization on 404, JSON or SSE answers, resuming a
//! dropped legacy stream with `Last-Event-ID` after `retry`, and the GET notification stream.

use super::protocol::{self, classify, Era, Incoming, McpError};
use super::ServerEvents;
use crate::providers::client::HttpClient;
use crate::providers::sse::SseParser;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming as Body;
use hyper::header::{HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE, USER_AGENT};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;

/// A JSON answer or one SSE event over this size ends the call.
const MAX_MESSAGE_BYTES: usize = 8 << 20;
/// Error bodies are read this far, for their message.
const MAX_ERROR_BODY: usize = 16 << 10;
/// Reconnection wait when a stream set no `retry`, and the most a `retry` may ask for.
const DEFAULT_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(30);
/// How many times one answer's stream is resumed before the call fails.
const MAX_RESUMES: u32 = 5;
const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";

#[derive(Debug, Clone, Default)]
struct Session {
    era: Option<Era>,
    session_id: Option<String>,
    /// Bumped on every (re)connection, so a stale 404 resets the session only once.
    generation: u64,
}

pub struct HttpTransport {
    server: String,
    url: String,
    headers: Arc<Vec<(HeaderName, HeaderValue)>>,
    client: HttpClient,
    session: Mutex<Session>,
    known_era: Mutex<Option<Era>>,
    connect_lock: tokio::sync::Mutex<()>,
    events: Arc<ServerEvents>,
    next_id: AtomicU64,
    listener: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for HttpTransport {
    fn drop(&mut self) {
        if let Some(task) = self.listener.lock().ok().and_then(|mut l| l.take()) {
            task.abort();
        }
    }
}

impl HttpTransport {
    /// `headers` are the configured ones (secrets): marked sensitive so hyper never prints
    /// them and HTTP/2 never indexes them. The config parser validated names and values.
    pub fn new(
        server: &str,
        url: &str,
        headers: &[(String, crate::secret::Secret)],
        client: HttpClient,
        events: Arc<ServerEvents>,
    ) -> Result<HttpTransport, McpError> {
        let mut parsed = Vec::with_capacity(headers.len());
        for (name, value) in headers {
            let n = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| McpError::Connect(format!("bad header name {name}")))?;
            let mut v = HeaderValue::from_str(value.expose())
                .map_err(|_| McpError::Connect(format!("the {name} header value is not valid")))?;
            v.set_sensitive(true);
            parsed.push((n, v));
        }
        Ok(HttpTransport {
            server: server.to_string(),
            url: url.to_string(),
            headers: Arc::new(parsed),
            client,
            session: Mutex::new(Session::default()),
            known_era: Mutex::new(None),
            connect_lock: tokio::sync::Mutex::new(()),
            events,
            next_id: AtomicU64::new(1),
            listener: Mutex::new(None),
        })
    }

    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The era once settled (for status lines), `None` before the first connection.
    pub fn era(&self) -> Option<Era> {
        self.snapshot().era
    }

    fn snapshot(&self) -> Session {
        self.session.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Connects (negotiates the era and, for a legacy server, opens the session) unless
    /// already connected.
    pub async fn ensure_ready(&self) -> Result<(), McpError> {
        self.ready_session().await.map(|_| ())
    }

    async fn ready_session(&self) -> Result<Session, McpError> {
        let current = self.snapshot();
        if current.era.is_some() {
            return Ok(current);
        }
        let _one_at_a_time = self.connect_lock.lock().await;
        let current = self.snapshot();
        if current.era.is_some() {
            return Ok(current);
        }
        // The era is a property of the server: probe it once, keep it across re-inits.
        let known = self.known_era.lock().ok().and_then(|k| k.clone());
        let era = match known {
            Some(era) => era,
            None => {
                let era = self.negotiate().await?;
                if let Ok(mut k) = self.known_era.lock() {
                    *k = Some(era.clone());
                }
                era
            }
        };
        let session = match era {
            Era::Modern { .. } => Session {
                era: Some(era),
                session_id: None,
                generation: current.generation + 1,
            },
            Era::Legacy { .. } => self.legacy_initialize(current.generation + 1).await?,
        };
        if let Ok(mut s) = self.session.lock() {
            *s = session.clone();
        }
        Ok(session)
    }

    /// Forgets a session the server no longer knows (HTTP 404), once per generation.
    fn reset(&self, generation: u64) {
        if let Ok(mut s) = self.session.lock() {
            if s.generation == generation {
                s.era = None;
                s.session_id = None;
            }
        }
        if let Some(task) = self.listener.lock().ok().and_then(|mut l| l.take()) {
            task.abort();
        }
    }

    /// A modern `server/discover` first; a 2xx that is not a discover result, or a 4xx
    /// without a modern JSON-RPC error, identifies a legacy server.
    async fn negotiate(&self) -> Result<Era, McpError> {
        let id = self.next_id();
        let modern = Session {
            era: Some(Era::Modern {
                version: protocol::MODERN_VERSION.to_string(),
            }),
            ..Session::default()
        };
        let body = protocol::request(
            id,
            "server/discover",
            Some(protocol::with_modern_meta(None, protocol::MODERN_VERSION)),
        );
        let response = self
            .post(&modern, &body, "server/discover", None, &[])
            .await?;
        let status = response.status();
        if status.is_server_error() {
            let text = read_error_body(response.into_body()).await;
            return Err(McpError::Connect(format!("HTTP {status}: {text}")));
        }
        let legacy = Era::Legacy {
            version: protocol::LEGACY_VERSION.to_string(),
        };
        let outcome = if status.is_success() {
            // A legacy server may answer anything here, even an SSE stream; a failure to
            // read it as a discover result only means "legacy".
            match self.read_answer(&modern, response, id).await {
                Ok(result) => Ok(result),
                Err(McpError::Rpc(e)) => Err(e),
                Err(_) => return Ok(legacy),
            }
        } else {
            let text = read_error_body(response.into_body()).await;
            match serde_json::from_str::<Value>(&text)
                .ok()
                .as_ref()
                .and_then(classify)
            {
                Some(Incoming::Response {
                    outcome: Err(e), ..
                }) => Err(e),
                _ => return Ok(legacy),
            }
        };
        match outcome {
            Ok(result) => {
                let supported = protocol::strings(result.get("supportedVersions"));
                Ok(protocol::choose_from_supported(&supported)
                    .filter(Era::is_modern)
                    .unwrap_or(legacy))
            }
            Err(e) if e.code == protocol::UNSUPPORTED_PROTOCOL_VERSION => {
                protocol::choose_from_supported(&e.supported_versions()).ok_or_else(|| {
                    McpError::Protocol(format!(
                        "the server supports none of our protocol versions (it lists {:?})",
                        e.supported_versions()
                    ))
                })
            }
            Err(e) if protocol::is_modern_error(e.code) => Err(McpError::Rpc(e)),
            Err(_) => Ok(legacy),
        }
    }

    async fn legacy_initialize(&self, generation: u64) -> Result<Session, McpError> {
        let id = self.next_id();
        let pre = Session {
            era: None,
            session_id: None,
            generation,
        };
        let body = protocol::request(id, "initialize", Some(protocol::initialize_params()));
        let response = self.post(&pre, &body, "initialize", None, &[]).await?;
        let session_id = response
            .headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let result = self.read_answer(&pre, response, id).await?;
        let era = protocol::legacy_era_of(&result)?;
        let version = era.version().to_string();
        let session = Session {
            era: Some(era),
            session_id,
            generation,
        };
        let note = protocol::notification("notifications/initialized", None);
        let response = self
            .post(&session, &note, "notifications/initialized", None, &[])
            .await?;
        if !response.status().is_success() {
            let status = response.status();
            let text = read_error_body(response.into_body()).await;
            return Err(McpError::Protocol(format!(
                "notifications/initialized was refused: HTTP {status}: {text}"
            )));
        }
        let lists_change = result
            .pointer("/capabilities/tools/listChanged")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if lists_change {
            self.start_listener(&session);
        }
        crate::log_debug!(
            "mcp {}: connected over Streamable HTTP, protocol {version}",
            self.server
        );
        Ok(session)
    }

    /// One request and its answer. A legacy session the server forgot (404) is
    /// re-initialized and the request sent once more.
    pub async fn request(
        &self,
        id: u64,
        method: &str,
        params: Option<Value>,
        name: Option<&str>,
        extra_headers: &[(String, String)],
    ) -> Result<Value, McpError> {
        for attempt in 0..2 {
            let session = self.ready_session().await?;
            let body = match &session.era {
                Some(Era::Modern { version }) => protocol::request(
                    id,
                    method,
                    Some(protocol::with_modern_meta(params.clone(), version)),
                ),
                _ => protocol::request(id, method, params.clone()),
            };
            let response = self
                .post(&session, &body, method, name, extra_headers)
                .await?;
            let status = response.status();
            let outcome = self.read_answer(&session, response, id).await;
            if session.session_id.is_some() && attempt == 0 && session_lost(status, &outcome) {
                crate::log_info!(
                    "mcp {}: the server no longer knows the session (HTTP {status}); initializing a new one",
                    self.server
                );
                self.reset(session.generation);
                continue;
            }
            return outcome;
        }
        Err(McpError::Protocol(
            "the server forgot the new session at once (HTTP 404 twice)".to_string(),
        ))
    }

    /// Tells a legacy server that request `id` is cancelled. A modern server learns it from
    /// the closed response stream (dropping the call's future closes it).
    pub async fn send_cancelled(&self, id: u64, reason: &str) {
        let session = self.snapshot();
        if !matches!(session.era, Some(Era::Legacy { .. })) {
            return;
        }
        let note = protocol::cancelled(id, reason);
        match self
            .post(&session, &note, "notifications/cancelled", None, &[])
            .await
        {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => crate::log_debug!(
                "mcp {}: notifications/cancelled got HTTP {}",
                self.server,
                r.status()
            ),
            Err(e) => crate::log_debug!("mcp {}: notifications/cancelled failed: {e}", self.server),
        }
    }

    /// Ends a legacy session (HTTP DELETE, as the spec asks of a client that is done).
    pub async fn shutdown(&self) {
        let session = self.snapshot();
        if let Some(task) = self.listener.lock().ok().and_then(|mut l| l.take()) {
            task.abort();
        }
        let Some(id) = session.session_id.as_deref() else {
            return;
        };
        let mut req = Request::builder().method(Method::DELETE).uri(&self.url);
        for (n, v) in self.headers.iter() {
            req = req.header(n, v);
        }
        req = req.header(SESSION_HEADER, id);
        if let Some(era) = &session.era {
            req = req.header(VERSION_HEADER, era.version());
        }
        if let Ok(req) = req.body(Full::new(Bytes::new())) {
            let _ = tokio::time::timeout(Duration::from_secs(2), self.client.request(req)).await;
        }
    }

    async fn post(
        &self,
        session: &Session,
        body: &Value,
        method: &str,
        name: Option<&str>,
        extra_headers: &[(String, String)],
    ) -> Result<Response<Body>, McpError> {
        let bytes = serde_json::to_vec(body).map_err(|e| McpError::Protocol(e.to_string()))?;
        let mut req = Request::post(&self.url)
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json, text/event-stream")
            .header(
                USER_AGENT,
                concat!("agent-mesh/", env!("CARGO_PKG_VERSION")),
            );
        for (n, v) in self.headers.iter() {
            req = req.header(n, v);
        }
        match &session.era {
            Some(Era::Modern { version }) => {
                req = req
                    .header(VERSION_HEADER, version.as_str())
                    .header("mcp-method", method);
                if let Some(name) = name {
                    req = req.header("mcp-name", header_safe(name));
                }
                for (n, v) in extra_headers {
                    req = req.header(format!("mcp-param-{n}"), header_safe(v));
                }
            }
            Some(Era::Legacy { version }) => {
                req = req.header(VERSION_HEADER, version.as_str());
                if let Some(id) = &session.session_id {
                    req = req.header(SESSION_HEADER, id.as_str());
                }
            }
            None => {}
        }
        let req = req
            .body(Full::new(Bytes::from(bytes)))
            .map_err(|e| McpError::Connect(format!("invalid request to {}: {e}", self.url)))?;
        self.client
            .request(req)
            .await
            .map_err(|e| McpError::Connect(describe_client_error(&self.url, &e)))
    }

    /// Reads the answer to request `id` from a POST's response: JSON, or an SSE stream
    /// (resumed over GET when a legacy server closes it early).
    async fn read_answer(
        &self,
        session: &Session,
        response: Response<Body>,
        id: u64,
    ) -> Result<Value, McpError> {
        let status = response.status();
        if !status.is_success() {
            let text = read_error_body(response.into_body()).await;
            if let Some(Incoming::Response {
                outcome: Err(e), ..
            }) = serde_json::from_str::<Value>(&text)
                .ok()
                .as_ref()
                .and_then(classify)
            {
                return Err(McpError::Rpc(e));
            }
            return Err(McpError::Protocol(format!("HTTP {status}: {text}")));
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if content_type.starts_with("text/event-stream") {
            return self.read_stream(session, response.into_body(), id).await;
        }
        let bytes = read_limited(response.into_body(), MAX_MESSAGE_BYTES).await?;
        let message: Value = serde_json::from_slice(&bytes).map_err(|e| {
            McpError::Protocol(format!(
                "the answer is not JSON ({e}), content type \"{content_type}\""
            ))
        })?;
        let messages = match message {
            Value::Array(items) => items,
            one => vec![one],
        };
        for m in messages {
            if let Some(answer) = self.handle(session, &m, id).await {
                return answer;
            }
        }
        Err(McpError::Protocol(format!(
            "the answer to request {id} was missing"
        )))
    }

    async fn read_stream(
        &self,
        session: &Session,
        mut body: Body,
        id: u64,
    ) -> Result<Value, McpError> {
        let mut parser = SseParser::with_limits(MAX_MESSAGE_BYTES, MAX_MESSAGE_BYTES);
        let mut events = Vec::new();
        let mut resumes = 0;
        loop {
            let ended_by = loop {
                match body.frame().await {
                    None => break None,
                    Some(Err(e)) => break Some(e.to_string()),
                    Some(Ok(frame)) => {
                        let Ok(chunk) = frame.into_data() else {
                            continue;
                        };
                        events.clear();
                        parser
                            .feed(&chunk, &mut events)
                            .map_err(|e| McpError::Protocol(e.to_string()))?;
                        for event in events.drain(..) {
                            if event.data.trim().is_empty() {
                                continue; // a priming event: only its id and retry matter
                            }
                            let Ok(message) = serde_json::from_str::<Value>(&event.data) else {
                                crate::log_debug!(
                                    "mcp {}: an SSE event that is not JSON was skipped",
                                    self.server
                                );
                                continue;
                            };
                            if let Some(answer) = self.handle(session, &message, id).await {
                                return answer;
                            }
                        }
                    }
                }
            };
            parser.finish(&mut Vec::new());
            // Only a legacy stream that set an event id can be resumed; a modern one is lost.
            let last_id = parser.last_event_id().map(str::to_string);
            let resumable = matches!(session.era, Some(Era::Legacy { .. })) && last_id.is_some();
            if !resumable || resumes >= MAX_RESUMES {
                return Err(McpError::Protocol(format!(
                    "the server closed the response stream before answering{}",
                    ended_by.map(|e| format!(" ({e})")).unwrap_or_default()
                )));
            }
            resumes += 1;
            let wait = parser
                .retry_ms()
                .map(Duration::from_millis)
                .unwrap_or(DEFAULT_RETRY)
                .min(MAX_RETRY);
            tokio::time::sleep(wait).await;
            let response = self.get_stream(session, last_id.as_deref()).await?;
            if !response.status().is_success() {
                let status = response.status();
                let text = read_error_body(response.into_body()).await;
                return Err(McpError::Protocol(format!(
                    "resuming the response stream failed: HTTP {status}: {text}"
                )));
            }
            body = response.into_body();
        }
    }

    async fn get_stream(
        &self,
        session: &Session,
        last_event_id: Option<&str>,
    ) -> Result<Response<Body>, McpError> {
        let req = listen_request(&self.url, &self.headers, session, last_event_id)?;
        self.client
            .request(req)
            .await
            .map_err(|e| McpError::Connect(describe_client_error(&self.url, &e)))
    }

    /// Handles one message; `Some` when it was the answer to request `id`.
    async fn handle(
        &self,
        session: &Session,
        message: &Value,
        id: u64,
    ) -> Option<Result<Value, McpError>> {
        match classify(message)? {
            Incoming::Response {
                id: Some(got),
                outcome,
            } if got == id => Some(match outcome {
                Ok(result) => check_result_type(result),
                Err(e) => Err(McpError::Rpc(e)),
            }),
            Incoming::Response { .. } => None,
            Incoming::Notification { method, .. } => {
                self.events.note(&self.server, &method);
                None
            }
            Incoming::Request { id: rid, method } => {
                let answer = protocol::answer_server_request(&rid, &method);
                if let Ok(r) = self.post(session, &answer, "", None, &[]).await {
                    let _ = read_error_body(r.into_body()).await;
                }
                None
            }
        }
    }

    /// The standalone GET stream of a legacy session, for `notifications/tools/list_changed`;
    /// reconnected after `retry` while the session lives, given up on a 405.
    fn start_listener(&self, session: &Session) {
        let url = self.url.clone();
        let headers = self.headers.clone();
        let client = self.client.clone();
        let events = self.events.clone();
        let server = self.server.clone();
        let session = session.clone();
        let task = tokio::spawn(async move {
            let mut parser = SseParser::new();
            let mut failures = 0u32;
            loop {
                let Ok(req) = listen_request(&url, &headers, &session, parser.last_event_id())
                else {
                    return;
                };
                let response = match client.request(req).await {
                    Ok(r) if r.status().is_success() => r,
                    Ok(r) => {
                        crate::log_debug!(
                            "mcp {server}: no notification stream (HTTP {})",
                            r.status()
                        );
                        return;
                    }
                    Err(_) => {
                        failures += 1;
                        if failures > 5 {
                            return;
                        }
                        tokio::time::sleep(DEFAULT_RETRY * failures).await;
                        continue;
                    }
                };
                failures = 0;
                let mut body = response.into_body();
                let mut out = Vec::new();
                while let Some(Ok(frame)) = body.frame().await {
                    let Ok(chunk) = frame.into_data() else {
                        continue;
                    };
                    out.clear();
                    if parser.feed(&chunk, &mut out).is_err() {
                        return;
                    }
                    for event in out.drain(..) {
                        if let Some(Incoming::Notification { method, .. }) =
                            serde_json::from_str::<Value>(&event.data)
                                .ok()
                                .as_ref()
                                .and_then(classify)
                        {
                            events.note(&server, &method);
                        }
                    }
                }
                parser.finish(&mut Vec::new());
                let wait = parser
                    .retry_ms()
                    .map(Duration::from_millis)
                    .unwrap_or(DEFAULT_RETRY);
                tokio::time::sleep(wait.min(MAX_RETRY)).await;
            }
        });
        if let Ok(mut l) = self.listener.lock() {
            if let Some(old) = l.replace(task) {
                old.abort();
            }
        }
    }
}

/// A session the server forgot: HTTP 404 as the spec says, or the 400 "No valid session
/// ID" the reference SDK's servers answer after a restart or a DELETE.
fn session_lost(status: StatusCode, outcome: &Result<Value, McpError>) -> bool {
    match (status, outcome) {
        (StatusCode::NOT_FOUND, _) => true,
        (StatusCode::BAD_REQUEST, Err(McpError::Rpc(e))) => {
            e.message.to_ascii_lowercase().contains("session")
        }
        _ => false,
    }
}

fn listen_request(
    url: &str,
    headers: &[(HeaderName, HeaderValue)],
    session: &Session,
    last_event_id: Option<&str>,
) -> Result<Request<Full<Bytes>>, McpError> {
    let mut req = Request::get(url)
        .header(ACCEPT, "text/event-stream")
        .header(
            USER_AGENT,
            concat!("agent-mesh/", env!("CARGO_PKG_VERSION")),
        );
    for (n, v) in headers {
        req = req.header(n, v);
    }
    if let Some(era) = &session.era {
        req = req.header(VERSION_HEADER, era.version());
    }
    if let Some(id) = &session.session_id {
        req = req.header(SESSION_HEADER, id.as_str());
    }
    if let Some(last) = last_event_id {
        req = req.header("last-event-id", last);
    }
    req.body(Full::new(Bytes::new()))
        .map_err(|e| McpError::Connect(format!("invalid request to {url}: {e}")))
}

/// A 2026-07-28 `input_required` result asks for user input this client cannot give.
fn check_result_type(result: Value) -> Result<Value, McpError> {
    match result.get("resultType").and_then(Value::as_str) {
        Some("input_required") => Err(McpError::Protocol(
            "the server asked for user input (elicitation, sampling or roots), which agent-mesh does not provide".to_string(),
        )),
        _ => Ok(result),
    }
}

async fn read_limited(mut body: Body, max: usize) -> Result<Vec<u8>, McpError> {
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| McpError::Protocol(format!("the answer broke off: {e}")))?;
        if let Ok(chunk) = frame.into_data() {
            if out.len() + chunk.len() > max {
                return Err(McpError::Protocol(format!(
                    "the answer is over {max} bytes"
                )));
            }
            out.extend_from_slice(&chunk);
        }
    }
    Ok(out)
}

async fn read_error_body(body: Body) -> String {
    let mut body = body;
    let mut out = Vec::new();
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(chunk) = frame.into_data() {
            let room = MAX_ERROR_BODY.saturating_sub(out.len());
            out.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if room <= chunk.len() {
                break;
            }
        }
    }
    String::from_utf8_lossy(&out).trim().to_string()
}

fn describe_client_error(url: &str, e: &hyper_util::client::legacy::Error) -> String {
    use std::error::Error;
    let mut why = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        why = format!("{why}: {s}");
        source = s.source();
    }
    format!("{url}: {why}")
}

/// A header value as the 2026-07-28 transport requires: plain visible ASCII as is,
/// anything else (or the sentinel pattern itself) as `=?base64?…?=`.
pub fn header_safe(value: &str) -> String {
    let plain = !value.is_empty()
        && value.bytes().all(|b| (0x20..=0x7e).contains(&b))
        && !value.starts_with(' ')
        && !value.ends_with(' ')
        && (!value.starts_with("=?base64?") || !value.ends_with("?="));
    if plain {
        value.to_string()
    } else {
        format!(
            "=?base64?{}?=",
            crate::util::base64::base64_encode(value.as_bytes())
        )
    }
}

/// The `Mcp-Param-{name}` headers a 2026-07-28 tool asks for: every property reachable
/// through `properties` keys alone that carries `x-mcp-header`, with a primitive value.
pub fn param_headers(schema: &Value, arguments: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    collect_param_headers(schema, Some(arguments), &mut out);
    out
}

fn collect_param_headers(schema: &Value, value: Option<&Value>, out: &mut Vec<(String, String)>) {
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (key, sub) in props {
        let v = value.and_then(|v| v.get(key));
        if let Some(name) = sub.get("x-mcp-header").and_then(Value::as_str) {
            let token = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            let text = match v {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Bool(b)) => Some(b.to_string()),
                Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Some(n.to_string()),
                _ => None,
            };
            if let (true, Some(text)) = (token, text) {
                out.push((name.to_string(), text));
            }
        }
        collect_param_headers(sub, v, out);
    }
}

/// Why a tool's `x-mcp-header` annotations are invalid (the 2026-07-28 revision has an
/// HTTP client drop such a tool from its list), or `None` when they are fine.
pub fn x_mcp_header_problem(schema: &Value) -> Option<String> {
    let mut seen: Vec<String> = Vec::new();
    check_annotations(schema, true, &mut seen)
}

fn check_annotations(node: &Value, reachable: bool, seen: &mut Vec<String>) -> Option<String> {
    let Value::Object(map) = node else {
        if let Value::Array(items) = node {
            return items.iter().find_map(|v| check_annotations(v, false, seen));
        }
        return None;
    };
    if let Some(header) = map.get("x-mcp-header") {
        let Some(name) = header.as_str() else {
            return Some("x-mcp-header is not a string".into());
        };
        let token = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !token {
            return Some(format!(
                "x-mcp-header \"{name}\" is not a header name token"
            ));
        }
        if !reachable {
            return Some(format!(
                "x-mcp-header \"{name}\" is not on a property reached through properties alone"
            ));
        }
        if !matches!(
            map.get("type").and_then(Value::as_str),
            Some("string" | "integer" | "boolean")
        ) {
            return Some(format!(
                "x-mcp-header \"{name}\" is on a property that is not a string, integer or boolean"
            ));
        }
        let lower = name.to_ascii_lowercase();
        if seen.contains(&lower) {
            return Some(format!("x-mcp-header \"{name}\" is used twice"));
        }
        seen.push(lower);
    }
    for (key, value) in map {
        let problem = if key == "properties" {
            match value {
                Value::Object(props) => props
                    .values()
                    .find_map(|p| check_annotations(p, reachable, seen)),
                other => check_annotations(other, false, seen),
            }
        } else {
            check_annotations(value, false, seen)
        };
        if problem.is_some() {
            return problem;
        }
    }
    None
}

impl std::fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTransport")
            .field("server", &self.server)
            .field("url", &self.url)
            .field(
                "headers",
                &self
                    .headers
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn header_values_outside_plain_ascii_are_base64_wrapped() {
        assert_eq!(header_safe("us-west1"), "us-west1");
        assert_eq!(
            header_safe("Hello, 世界"),
            "=?base64?SGVsbG8sIOS4lueVjA==?="
        );
        assert_eq!(header_safe(" padded "), "=?base64?IHBhZGRlZCA=?=");
        assert_eq!(header_safe("line1\nline2"), "=?base64?bGluZTEKbGluZTI=?=");
        assert_eq!(
            header_safe("=?base64?literal?="),
            "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?="
        );
    }

    #[test]
    fn invalid_x_mcp_header_annotations_are_found() {
        let ok = json!({"type": "object", "properties": {"a": {"type": "string", "x-mcp-header": "A"},
            "o": {"type": "object", "properties": {"n": {"type": "integer", "x-mcp-header": "N"}}}}});
        assert_eq!(x_mcp_header_problem(&ok), None);
        let cases = [
            json!({"properties": {"a": {"type": "number", "x-mcp-header": "A"}}}),
            json!({"properties": {"a": {"type": "string", "x-mcp-header": "A B"}}}),
            json!({"properties": {"a": {"type": "string", "x-mcp-header": ""}}}),
            json!({"properties": {"a": {"type": "string", "x-mcp-header": "A"}, "b": {"type": "string", "x-mcp-header": "a"}}}),
            json!({"properties": {"l": {"type": "array", "items": {"type": "string", "x-mcp-header": "I"}}}}),
            json!({"properties": {"u": {"anyOf": [{"type": "string", "x-mcp-header": "U"}]}}}),
        ];
        for c in cases {
            assert!(x_mcp_header_problem(&c).is_some(), "{c}");
        }
    }

    #[test]
    fn x_mcp_header_properties_become_param_headers() {
        let schema = json!({"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "query": {"type": "string"},
            "opts": {"type": "object", "properties": {"n": {"type": "integer", "x-mcp-header": "N"}}},
            "bad": {"type": "string", "x-mcp-header": "Bad Name"}
        }});
        let got = param_headers(
            &schema,
            &json!({"region": "us-west1", "query": "q", "opts": {"n": 42}, "bad": "x"}),
        );
        assert_eq!(
            got,
            vec![
                ("Region".to_string(), "us-west1".to_string()),
                ("N".to_string(), "42".to_string())
            ]
        );
        assert!(param_headers(&schema, &json!({"query": "q"})).is_empty());
    }
}
