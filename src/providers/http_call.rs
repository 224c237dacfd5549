//! One streaming HTTP call to a provider: send, classify the status, then relay the
//! event stream incrementally under the first-token, idle and total timeouts and the
//! size bounds of SPEC §5.1.

use super::client::HttpClient;
use super::decode::{ChunkDecoder, Delta, Flow};
use super::error::ProviderError;
use super::redact::redact;
use super::sse::{SseError, SseParser};
use super::tool_calls::ToolCallAccumulator;
use super::{CallOutcome, TokenSink};
use crate::model::error_kind::ErrorKind;
use crate::model::run_config::CallTimeouts;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Request, StatusCode};
use std::time::Duration;
use tokio::time::{timeout_at, Instant};

/// A response over this size ends the call: no answer we relay is that long.
pub const MAX_RESPONSE_BYTES: usize = 8 << 20;
/// Error bodies are read only this far, for their message.
const MAX_ERROR_BODY: usize = 64 << 10;
/// `Retry-After` is honoured up to this long.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(20);

/// A request body's JSON. Serializing plain structs of strings and numbers cannot
/// fail; if it somehow did, the empty object makes the provider answer with a clear
/// error rather than this process panicking.
pub fn to_json_bytes(body: &impl serde::Serialize) -> Vec<u8> {
    serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec())
}

/// Builds a JSON POST. Headers carrying secrets are marked sensitive, so hyper
/// never prints them and HTTP/2 never indexes them.
pub fn json_post(
    url: &str,
    headers: &[(&str, String, bool)],
    body: Vec<u8>,
) -> Result<Request<Full<Bytes>>, ProviderError> {
    let mut builder = Request::post(url)
        .header(CONTENT_TYPE, "application/json")
        .header(hyper::header::ACCEPT, "text/event-stream")
        .header(
            hyper::header::USER_AGENT,
            concat!("agent-mesh/", env!("CARGO_PKG_VERSION")),
        );
    for (name, value, sensitive) in headers {
        let mut v = HeaderValue::from_str(value).map_err(|_| {
            ProviderError::new(
                ErrorKind::Config,
                format!("the {name} header value is not valid"),
            )
        })?;
        v.set_sensitive(*sensitive);
        builder = builder.header(
            HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| ProviderError::new(ErrorKind::Config, "bad header name"))?,
            v,
        );
    }
    builder.body(Full::new(Bytes::from(body))).map_err(|e| {
        ProviderError::new(
            ErrorKind::Config,
            format!("invalid provider URL {url}: {e}"),
        )
    })
}

/// Sends the request and relays its stream. `emitted` turns true with the first
/// output (text or a tool call), after which the caller must not retry. The outcome
/// carries the tool calls joined from their fragments.
pub async fn stream_call(
    client: &HttpClient,
    request: Request<Full<Bytes>>,
    decoder: &mut dyn ChunkDecoder,
    sink: &mut dyn TokenSink,
    timeouts: CallTimeouts,
    secrets: &[String],
    emitted: &mut bool,
) -> Result<CallOutcome, ProviderError> {
    let started = Instant::now();
    let total_deadline = started + timeouts.total;
    let first_token_deadline = (started + timeouts.first_token).min(total_deadline);
    let host = request
        .uri()
        .authority()
        .map(|a| a.to_string())
        .unwrap_or_default();

    let response = match timeout_at(first_token_deadline, client.request(request)).await {
        Err(_) => {
            return Err(ProviderError::new(
                ErrorKind::Timeout,
                format!(
                    "{host} sent no response within {} s",
                    timeouts.first_token.as_secs()
                ),
            ))
        }
        Ok(Err(e)) => return Err(client_error(&host, &e)),
        Ok(Ok(r)) => r,
    };
    let status = response.status();
    if !status.is_success() {
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER));
        let body = read_error_body(response.into_body()).await;
        let mut e = status_error(status, &redact(&body, secrets));
        e.retry_after = retry_after;
        return Err(e);
    }
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if !content_type.is_empty() && !content_type.starts_with("text/event-stream") {
        let body = read_error_body(response.into_body()).await;
        return Err(ProviderError::new(
            ErrorKind::BadResponse,
            format!(
                "expected an event stream from {host}, got {content_type}: {}",
                crate::util::cut_chars(&redact(&body, secrets), 300)
            ),
        ));
    }

    let mut body = response.into_body();
    let mut calls = ToolCallAccumulator::default();
    let mut parser = SseParser::new();
    let mut events = Vec::new();
    let mut total_bytes = 0usize;
    let mut last_data = Instant::now();
    // One timer for the whole stream. The deadline moves later with every chunk, but
    // the timer is not re-armed per chunk (a wheel insert and remove each time): when
    // it fires before the current deadline it is moved there, so it is re-armed at
    // most once per idle period. It is moved earlier at once when the deadline is
    // (the first token switches from the first-token to the idle deadline).
    let mut armed = first_token_deadline;
    let timer = tokio::time::sleep_until(armed);
    tokio::pin!(timer);
    loop {
        let deadline = if *emitted {
            (last_data + timeouts.idle).min(total_deadline)
        } else {
            first_token_deadline
        };
        if deadline < armed {
            armed = deadline;
            timer.as_mut().reset(armed);
        }
        let next = tokio::select! {
            biased;
            frame = body.frame() => Ok(frame),
            () = &mut timer => Err(()),
        };
        let frame = match next {
            Err(()) if Instant::now() < deadline => {
                armed = deadline;
                timer.as_mut().reset(armed);
                continue;
            }
            Err(()) => {
                let message = if Instant::now() >= total_deadline {
                    format!("the call took longer than {} s", timeouts.total.as_secs())
                } else if *emitted {
                    format!("the stream went silent for {} s", timeouts.idle.as_secs())
                } else {
                    format!("no first token within {} s", timeouts.first_token.as_secs())
                };
                return Err(ProviderError::new(ErrorKind::Timeout, message));
            }
            Ok(None) => {
                parser.finish(&mut events);
                if decode_all(&mut events, decoder, sink, emitted, &mut calls)? {
                    return complete(decoder, calls, *emitted);
                }
                if decoder.saw_finish() {
                    return complete(decoder, calls, *emitted);
                }
                return Err(ProviderError::new(
                    ErrorKind::Upstream,
                    "the stream ended before the answer was complete",
                ));
            }
            Ok(Some(Err(e))) => {
                let mut err = ProviderError::new(
                    ErrorKind::Network,
                    format!("the connection to {host} broke mid-stream: {e}"),
                );
                err.retryable = true;
                return Err(err);
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        last_data = Instant::now();
        total_bytes += data.len();
        if total_bytes > MAX_RESPONSE_BYTES {
            return Err(ProviderError::new(
                ErrorKind::BadResponse,
                "the response exceeded 8 MiB",
            ));
        }
        parser.feed(&data, &mut events).map_err(|e| match e {
            SseError::LineTooLong | SseError::EventTooLarge => {
                ProviderError::new(ErrorKind::BadResponse, e.to_string())
            }
        })?;
        if decode_all(&mut events, decoder, sink, emitted, &mut calls)? {
            drain_after_end(&mut body).await;
            return complete(decoder, calls, *emitted);
        }
    }
}

/// After the provider's end marker (`[DONE]`, `message_stop`) the HTTP body's own end
/// follows at once (HTTP/1.1's chunked terminator). Dropping the body before reading
/// it makes hyper close the connection, so the next agent's call had to open a new
/// one — a TCP and, for a remote provider, a TLS handshake per agent — whenever the
/// terminator had not been read yet. Reading it first returns the connection to the
/// pool. Bounded, so an upstream that keeps the body open costs at most this.
const DRAIN_AFTER_END: Duration = Duration::from_millis(5);
const DRAIN_MAX_BYTES: usize = 64 << 10;

async fn drain_after_end(body: &mut hyper::body::Incoming) {
    let mut seen = 0usize;
    let _ = tokio::time::timeout(DRAIN_AFTER_END, async {
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data() {
                seen += data.len();
                if seen > DRAIN_MAX_BYTES {
                    break;
                }
            }
        }
    })
    .await;
}

/// Feeds the parsed events to the decoder: text and tool-call fragments go to the
/// sink, fragments also to `calls`. True once the provider said the answer is complete.
fn decode_all(
    events: &mut Vec<super::sse::SseEvent>,
    decoder: &mut dyn ChunkDecoder,
    sink: &mut dyn TokenSink,
    emitted: &mut bool,
    calls: &mut ToolCallAccumulator,
) -> Result<bool, ProviderError> {
    for event in events.drain(..) {
        let flow = decoder.event(&event, &mut |delta| match delta {
            Delta::Text(text) => {
                *emitted = true;
                sink.token(text);
            }
            Delta::ToolCall(fragment) => {
                *emitted = true;
                calls.push(&fragment);
                sink.tool_call(&fragment);
            }
            // Both are kept by the decoder for its outcome.
            Delta::Usage(_) | Delta::Finish(_) => {}
        })?;
        if flow == Flow::Finished {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The outcome of a stream the provider ended. One that ended with no output and no
/// finish reason (a bare `[DONE]`) is no answer: a server that serves one request at
/// a time (llama.cpp's `interrupt_requests`) ends a stream so when a second request
/// arrives. Nothing was emitted, so it is tried again like any failed attempt.
fn complete(
    decoder: &dyn ChunkDecoder,
    calls: ToolCallAccumulator,
    emitted: bool,
) -> Result<CallOutcome, ProviderError> {
    if !emitted && !decoder.saw_finish() {
        let mut e = ProviderError::new(
            ErrorKind::BadResponse,
            "the stream ended with no content and no finish reason (a server that serves one request at a time may have cut it off: see <PROVIDER>_MAX_CONCURRENCY)",
        );
        e.retryable = true;
        return Err(e);
    }
    Ok(with_calls(decoder.outcome(), calls))
}

fn with_calls(mut outcome: CallOutcome, calls: ToolCallAccumulator) -> CallOutcome {
    outcome.tool_calls = calls.finish();
    outcome
}

async fn read_error_body(body: hyper::body::Incoming) -> String {
    let limited = http_body_util::Limited::new(body, MAX_ERROR_BODY);
    match tokio::time::timeout(Duration::from_secs(10), limited.collect()).await {
        Ok(Ok(c)) => String::from_utf8_lossy(&c.to_bytes()).to_string(),
        _ => String::new(),
    }
}

/// The provider's own words from an error body (OpenAI and Anthropic both use
/// `{"error":{"message":..}}`), else the start of the body.
fn provider_message(body: &str) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let msg = parsed.as_ref().and_then(|v| {
        v.pointer("/error/message")
            .and_then(|m| m.as_str())
            .or_else(|| v.get("message").and_then(|m| m.as_str()))
            .or_else(|| v.get("error").and_then(|m| m.as_str()))
            .map(str::to_string)
    });
    let text = msg.unwrap_or_else(|| body.trim().to_string());
    crate::util::cut_chars(&text, 500).to_string()
}

pub fn status_error(status: StatusCode, body: &str) -> ProviderError {
    let code = status.as_u16();
    let detail = provider_message(body);
    let (kind, retryable, what) = match code {
        401 | 403 => (
            ErrorKind::Auth,
            false,
            "the provider rejected the credentials",
        ),
        408 => (
            ErrorKind::Timeout,
            true,
            "the provider timed out the request",
        ),
        429 => (ErrorKind::RateLimit, true, "the provider is rate limiting"),
        500 | 502 | 503 | 504 | 529 => (ErrorKind::Upstream, true, "the provider failed"),
        500..=599 => (ErrorKind::Upstream, false, "the provider failed"),
        _ => (
            ErrorKind::Upstream,
            false,
            "the provider refused the request",
        ),
    };
    let message = if detail.is_empty() {
        format!("{what} ({code})")
    } else {
        format!("{what} ({code}): {detail}")
    };
    let mut e = ProviderError::new(kind, message);
    e.status = Some(code);
    e.retryable = retryable;
    e
}

/// A failure before any response: TLS problems are explained and not retried
/// (they do not fix themselves); other connection failures are retried.
fn client_error(host: &str, e: &hyper_util::client::legacy::Error) -> ProviderError {
    let mut chain = Vec::new();
    let mut tls = false;
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if s.downcast_ref::<rustls::Error>().is_some() {
            tls = true;
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
            {
                tls = true;
            }
        }
        chain.push(s.to_string());
        source = s.source();
    }
    chain.dedup();
    let detail = chain.join(": ");
    // `io::Error::source()` skips its own payload, so a rustls error wrapped in an
    // io::Error may be invisible to the walk above; its wording still says what it is.
    let lowered = detail.to_ascii_lowercase();
    if lowered.contains("certificate") || lowered.contains("handshake") || lowered.contains("tls") {
        tls = true;
    }
    if tls {
        return ProviderError::new(
            ErrorKind::Network,
            format!("TLS handshake with {host} failed: {detail} (for a private CA, add it with MESH_CA_FILE)"),
        );
    }
    let mut err = ProviderError::new(
        ErrorKind::Network,
        format!(
            "cannot reach {host}: {}",
            if detail.is_empty() {
                e.to_string()
            } else {
                detail
            }
        ),
    );
    err.retryable = true;
    err
}
