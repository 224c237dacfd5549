//! The standalone GET notification stream of a legacy session: tool-list changes as they
//! happen, reconnected after the stream's `retry`.

use super::wire::listen_request;
use super::{HttpTransport, Session, DEFAULT_RETRY, MAX_RETRY};
use crate::mcp::protocol::{classify, Incoming};
use crate::providers::sse::SseParser;
use http_body_util::BodyExt;
use serde_json::Value;
use std::time::Duration;

impl HttpTransport {
    /// The standalone GET stream of a legacy session, for `notifications/tools/list_changed`;
    /// reconnected after `retry` while the session lives, given up on a 405.
    pub(super) fn start_listener(&self, session: &Session) {
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
