//! The session: connecting once (era, then the 2025-11-25 `initialize` handshake for a
//! legacy server), re-initializing a session the server forgot, cancelling, and the DELETE
//! that ends it.

use super::answer::read_error_body;
use super::wire::{SESSION_HEADER, VERSION_HEADER};
use super::{HttpTransport, Session};
use crate::mcp::protocol::{self, Era, McpError};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, StatusCode};
use serde_json::Value;
use std::time::Duration;

impl HttpTransport {
    /// Connects (negotiates the era and, for a legacy server, opens the session) unless
    /// already connected.
    pub async fn ensure_ready(&self) -> Result<(), McpError> {
        self.ready_session().await.map(|_| ())
    }

    pub(super) async fn ready_session(&self) -> Result<Session, McpError> {
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
    pub(super) fn reset(&self, generation: u64) {
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
        traceparent: Option<&str>,
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
                .post_traced(&session, &body, method, name, extra_headers, traceparent)
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
