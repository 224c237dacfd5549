//! The requests this transport sends: the POST with its era's headers (session id, or the
//! 2026-07-28 `Mcp-Method`, `Mcp-Name` and `Mcp-Param-*`; a tool call's `traceparent`), the GET stream request, and the
//! text of a failed connection.

use super::headers::header_safe;
use super::{HttpTransport, Session};
use crate::mcp::protocol::{Era, McpError};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming as Body;
use hyper::header::{HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE, USER_AGENT};
use hyper::{Request, Response};
use serde_json::Value;

pub(super) const SESSION_HEADER: &str = "mcp-session-id";
pub(super) const VERSION_HEADER: &str = "mcp-protocol-version";

impl HttpTransport {
    pub(super) async fn post(
        &self,
        session: &Session,
        body: &Value,
        method: &str,
        name: Option<&str>,
        extra_headers: &[(String, String)],
    ) -> Result<Response<Body>, McpError> {
        self.post_traced(session, body, method, name, extra_headers, None)
            .await
    }

    /// `post` with the W3C `traceparent` of the span the request is made in.
    pub(super) async fn post_traced(
        &self,
        session: &Session,
        body: &Value,
        method: &str,
        name: Option<&str>,
        extra_headers: &[(String, String)],
        traceparent: Option<&str>,
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
        if let Some(tp) = traceparent {
            req = req.header("traceparent", tp);
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

    pub(super) async fn get_stream(
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
}

pub(super) fn listen_request(
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
