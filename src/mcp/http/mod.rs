//! The Streamable HTTP transport on the project's HTTP client: the transport's state
//! (era, session, listener) and its construction; the concerns live in the child modules:
//! era negotiation (`discover`), the session handshake and re-initialization (`session`),
//! reading answers (`answer`), the requests sent (`wire`), the GET notification stream
//! (`listener`) and the 2026-07-28 header encoding (`headers`).

mod answer;
mod discover;
mod headers;
mod listener;
mod session;
mod wire;

pub use headers::{header_safe, param_headers, x_mcp_header_problem};

use super::protocol::{Era, McpError};
use super::ServerEvents;
use crate::providers::client::HttpClient;
use hyper::header::{HeaderName, HeaderValue};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;

/// Reconnection wait when a stream set no `retry`, and the most a `retry` may ask for.
const DEFAULT_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(30);

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
