//! Reading the answer to a request: a JSON body or an SSE stream (a dropped legacy
//! stream resumed with `Last-Event-ID` after its `retry`), the server's notifications and
//! requests met on the way, and bounded reads of bodies.

use super::{HttpTransport, Session, DEFAULT_RETRY, MAX_RETRY};
use crate::mcp::protocol::{self, classify, Era, Incoming, McpError};
use crate::providers::sse::SseParser;
use http_body_util::BodyExt;
use hyper::body::Incoming as Body;
use hyper::header::CONTENT_TYPE;
use hyper::Response;
use serde_json::Value;
use std::time::Duration;

/// A JSON answer or one SSE event over this size ends the call.
const MAX_MESSAGE_BYTES: usize = 8 << 20;
/// Error bodies are read this far, for their message.
const MAX_ERROR_BODY: usize = 16 << 10;
/// How many times one answer's stream is resumed before the call fails.
const MAX_RESUMES: u32 = 5;

impl HttpTransport {
    /// Reads the answer to request `id` from a POST's response: JSON, or an SSE stream
    /// (resumed over GET when a legacy server closes it early).
    pub(super) async fn read_answer(
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

pub(super) async fn read_error_body(body: Body) -> String {
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
