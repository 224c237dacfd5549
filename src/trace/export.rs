//! The background exporter: ended spans wait in a bounded queue; one task batches them
//! (up to 512, or every 5 s), encodes the batch, and POSTs it to the collector with
//! the configured headers, retrying 429/502/503/504, timeouts and connection errors
//! with exponential backoff (and `Retry-After`). A slow or dead collector never slows
//! a run and never grows memory: spans that find the queue full are dropped and
//! counted. `Exporter::shutdown` flushes what is queued, bounded by a deadline.

use super::resource::Resource;
use super::settings::{ExportSettings, Protocol};
use super::span::SpanData;
use super::{json, proto};
use crate::ids::random_bytes;
use crate::metrics::METRICS;
use crate::secret::Secret;
use crate::{log_debug, log_info, log_warn};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use hyper::{Request, StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, timeout_at, Instant};

/// The HTTP client the exporter posts with: the type `providers::client::build`
/// returns, named here so `trace` sits below `providers` (which will send
/// `traceparent`) in the layering.
pub type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The exporter's tunables; the defaults are the OpenTelemetry batch processor's.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Ended spans waiting for export; beyond this they are dropped.
    pub queue_capacity: usize,
    /// Spans per request.
    pub max_batch: usize,
    /// How long the first span of a batch waits for others.
    pub batch_delay: Duration,
    /// One request's limit (`OTEL_EXPORTER_OTLP_TIMEOUT`'s default).
    pub attempt_timeout: Duration,
    /// Attempts per batch, the first included.
    pub max_attempts: u32,
    /// The wait before the first retry; it doubles per retry.
    pub first_backoff: Duration,
    /// The longest wait between attempts, `Retry-After` included.
    pub max_backoff: Duration,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            queue_capacity: 2048,
            max_batch: 512,
            batch_delay: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(10),
            max_attempts: 5,
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// Responses are read this far (and dropped) so the connection can be reused.
const MAX_RESPONSE_BYTES: usize = 64 << 10;

/// The running export task. Call `shutdown` before the process exits.
pub struct Exporter {
    stop: watch::Sender<Option<Instant>>,
    task: JoinHandle<()>,
    queue: mpsc::Sender<Box<SpanData>>,
    in_flight: Arc<AtomicUsize>,
}

/// Spawns the export task on the current Tokio runtime; returns the queue's sending
/// end (for `Tracer::new`) and the task's handle.
pub fn spawn(
    settings: &ExportSettings,
    resource: Resource,
    client: HttpClient,
    options: ExportOptions,
) -> Result<(mpsc::Sender<Box<SpanData>>, Exporter), String> {
    let endpoint: Uri = settings
        .endpoint
        .parse()
        .map_err(|_| "the OTLP endpoint is not a URL".to_string())?;
    let (queue, rx) = mpsc::channel(options.queue_capacity.max(1));
    let (stop, stop_rx) = watch::channel(None);
    let in_flight = Arc::new(AtomicUsize::new(0));
    let poster = Poster {
        host: display_host(&endpoint),
        endpoint,
        headers: settings.headers.clone(),
        protocol: settings.protocol,
        resource: Arc::new(resource),
        client,
        options,
        in_flight: in_flight.clone(),
        failing: false,
    };
    let task = tokio::spawn(run(rx, stop_rx, poster));
    Ok((
        queue.clone(),
        Exporter {
            stop,
            task,
            queue,
            in_flight,
        },
    ))
}

impl Exporter {
    /// Exports what is queued, then stops; gives up at `deadline`, counting what was
    /// left as dropped. Spans ended afterwards are dropped and counted.
    pub async fn shutdown(self, deadline: Instant) {
        let Exporter {
            stop,
            mut task,
            queue,
            in_flight,
        } = self;
        let _ = stop.send(Some(deadline));
        if timeout_at(deadline, &mut task).await.is_err() {
            task.abort();
            let queued = queue.max_capacity() - queue.capacity();
            let lost = queued + in_flight.load(Ordering::Relaxed);
            METRICS.trace_spans_dropped(lost as u64);
            log_warn!("trace export: shutdown deadline reached, {lost} spans not exported");
        }
    }
}

/// The shutdown deadline once `shutdown` was called (now, if the handle was dropped).
fn stop_deadline(stop: &watch::Receiver<Option<Instant>>) -> Option<Instant> {
    match stop.has_changed() {
        Err(_) => Some(Instant::now()),
        Ok(_) => *stop.borrow(),
    }
}

async fn run(
    mut rx: mpsc::Receiver<Box<SpanData>>,
    mut stop: watch::Receiver<Option<Instant>>,
    mut poster: Poster,
) {
    let max_batch = poster.options.max_batch.max(1);
    let mut batch: Vec<Box<SpanData>> = Vec::with_capacity(max_batch);
    // Collect a batch: wait for its first span, then for more until it is full or
    // the batch delay has passed since that first span.
    while stop_deadline(&stop).is_none() {
        tokio::select! {
            biased;
            _ = stop.changed() => continue,
            got = rx.recv() => match got {
                Some(span) => batch.push(span),
                None => break,
            },
        }
        let flush_at = Instant::now() + poster.options.batch_delay;
        while batch.len() < max_batch {
            tokio::select! {
                biased;
                _ = stop.changed() => break,
                _ = sleep_until(flush_at) => break,
                got = rx.recv() => match got {
                    Some(span) => batch.push(span),
                    None => break,
                },
            }
        }
        poster.export(&mut batch, &mut stop).await;
    }
    // Shutting down: what is queued now goes out in full batches until the deadline.
    rx.close();
    loop {
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(span) => batch.push(span),
                Err(_) => break,
            }
        }
        if batch.is_empty() {
            return;
        }
        poster.export(&mut batch, &mut stop).await;
    }
}

struct Poster {
    endpoint: Uri,
    /// scheme://host:port only: what log lines name (no user info, path or query).
    host: String,
    headers: Vec<(HeaderName, Secret)>,
    protocol: Protocol,
    resource: Arc<Resource>,
    client: HttpClient,
    options: ExportOptions,
    in_flight: Arc<AtomicUsize>,
    /// The last batch failed: the next failure is logged at debug level only, and the
    /// next success says the collector is back.
    failing: bool,
}

/// What one attempt came to.
enum Attempt {
    Done,
    Retry {
        why: String,
        after: Option<Duration>,
    },
    Fail(String),
}

impl Poster {
    /// Sends `batch` (emptying it), retrying as configured; counts the outcome.
    /// The spans stay boxed as they came through the queue: moving the box is a
    /// pointer copy, unboxing would copy every span once more.
    #[allow(clippy::vec_box)]
    async fn export(
        &mut self,
        batch: &mut Vec<Box<SpanData>>,
        stop: &mut watch::Receiver<Option<Instant>>,
    ) {
        if batch.is_empty() {
            return;
        }
        let n = batch.len();
        self.in_flight.store(n, Ordering::Relaxed);
        // Encoding a full batch takes milliseconds (more in JSON): it runs on the
        // blocking pool, off the single runtime thread that relays tokens.
        let (spans, resource, protocol) =
            (std::mem::take(batch), self.resource.clone(), self.protocol);
        let encoded = tokio::task::spawn_blocking(move || match protocol {
            Protocol::HttpProtobuf => proto::encode_request(&resource, &spans),
            Protocol::HttpJson => json::encode_request(&resource, &spans),
        })
        .await;
        let Ok(body) = encoded.map(Bytes::from) else {
            METRICS.trace_export_failure();
            METRICS.trace_spans_dropped(n as u64);
            self.in_flight.store(0, Ordering::Relaxed);
            return;
        };
        let mut attempt = 1;
        let outcome = loop {
            let mut deadline = Instant::now() + self.options.attempt_timeout;
            if let Some(stop_at) = stop_deadline(stop) {
                deadline = deadline.min(stop_at);
            }
            let result = match timeout_at(deadline, self.post(body.clone())).await {
                Ok(result) => result,
                Err(_) => Attempt::Retry {
                    why: "no answer in time".to_string(),
                    after: None,
                },
            };
            match result {
                Attempt::Retry { why, after } if attempt < self.options.max_attempts => {
                    let wait = after
                        .unwrap_or_else(|| backoff(self.options.first_backoff, attempt))
                        .min(self.options.max_backoff);
                    log_debug!(
                        "trace export to {}: {why}; retry {attempt} in {} ms",
                        self.host,
                        wait.as_millis()
                    );
                    if !pause(wait, stop).await {
                        break Err(format!("{why}; shutting down"));
                    }
                    attempt += 1;
                }
                Attempt::Retry { why, .. } => {
                    break Err(format!("{why} (after {attempt} attempts)"))
                }
                Attempt::Fail(why) => break Err(why),
                Attempt::Done => break Ok(()),
            }
        };
        self.in_flight.store(0, Ordering::Relaxed);
        match outcome {
            Ok(()) => {
                METRICS.trace_spans_exported(n as u64);
                if std::mem::take(&mut self.failing) {
                    log_info!("trace export to {} works again", self.host);
                }
            }
            Err(why) => {
                METRICS.trace_export_failure();
                METRICS.trace_spans_dropped(n as u64);
                if std::mem::replace(&mut self.failing, true) {
                    log_debug!("trace export to {}: {why}; {n} span(s) dropped", self.host);
                } else {
                    log_warn!(
                        "trace export to {}: {why}; {n} span(s) dropped (later failures are counted in agent_mesh_trace_export_failures_total)",
                        self.host
                    );
                }
            }
        }
    }

    async fn post(&self, body: Bytes) -> Attempt {
        let mut request = match Request::post(self.endpoint.clone())
            .header(
                USER_AGENT,
                concat!("agent-mesh/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(body))
        {
            Ok(r) => r,
            Err(_) => return Attempt::Fail("cannot build the request".to_string()),
        };
        let headers = request.headers_mut();
        for (name, value) in &self.headers {
            // Validated when the settings were read; sensitive keeps it out of hyper's
            // Debug output and out of HTTP/2 header compression tables.
            if let Ok(mut v) = HeaderValue::from_str(value.expose()) {
                v.set_sensitive(true);
                headers.insert(name.clone(), v);
            }
        }
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static(self.protocol.content_type()),
        );
        let response = match self.client.request(request).await {
            Ok(r) => r,
            Err(e) => {
                let why = if e.is_connect() {
                    "cannot connect"
                } else {
                    "the connection failed"
                };
                return Attempt::Retry {
                    why: why.to_string(),
                    after: None,
                };
            }
        };
        let status = response.status();
        let after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        // Read the (small) answer so the connection goes back to the pool.
        let _ = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await;
        if status.is_success() {
            Attempt::Done
        } else if is_retryable(status) {
            Attempt::Retry {
                why: format!("HTTP {}", status.as_u16()),
                after,
            }
        } else {
            Attempt::Fail(format!("HTTP {}", status.as_u16()))
        }
    }
}

/// The statuses OTLP/HTTP says to retry.
fn is_retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 502 | 503 | 504)
}

/// `first × 2^(attempt-1)`, plus up to a quarter more at random so many instances
/// that failed together do not retry together.
fn backoff(first: Duration, attempt: u32) -> Duration {
    let base = first.saturating_mul(1 << (attempt - 1).min(16));
    let jitter = f64::from(random_bytes::<1>()[0]) / 255.0 * 0.25;
    base.mul_f64(1.0 + jitter)
}

/// Waits `wait`, unless that would pass the shutdown deadline: false then.
async fn pause(wait: Duration, stop: &mut watch::Receiver<Option<Instant>>) -> bool {
    let until = Instant::now() + wait;
    loop {
        if stop_deadline(stop).is_some_and(|deadline| until > deadline) {
            return false;
        }
        tokio::select! {
            _ = sleep_until(until) => return true,
            _ = stop.changed() => {}
        }
    }
}

/// `display_host` of a URL string (empty when it does not parse).
pub fn display_host_of(url: &str) -> String {
    url.parse::<Uri>()
        .map(|u| display_host(&u))
        .unwrap_or_default()
}

fn display_host(uri: &Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("http");
    let host = uri.host().unwrap_or("");
    match uri.port_u16() {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_bounded_jitter() {
        let first = Duration::from_millis(100);
        for attempt in 1..=4 {
            let base = first * (1 << (attempt - 1));
            let b = backoff(first, attempt);
            assert!(b >= base && b <= base.mul_f64(1.26), "{attempt}: {b:?}");
        }
    }

    #[test]
    fn only_the_otlp_retryable_statuses_are_retried() {
        for code in [429, 502, 503, 504] {
            assert!(is_retryable(StatusCode::from_u16(code).unwrap()));
        }
        for code in [400, 401, 403, 404, 413, 500] {
            assert!(!is_retryable(StatusCode::from_u16(code).unwrap()));
        }
    }

    #[test]
    fn log_lines_name_the_host_without_user_info_path_or_query() {
        let uri: Uri = "https://user:pw@otlp.example.com:4318/v1/traces?key=k"
            .parse()
            .unwrap();
        assert_eq!(display_host(&uri), "https://otlp.example.com:4318");
        let uri: Uri = "http://c/v1/traces".parse().unwrap();
        assert_eq!(display_host(&uri), "http://c");
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_that_would_pass_the_shutdown_deadline_is_refused() {
        let (tx, mut rx) = watch::channel(None);
        assert!(pause(Duration::from_secs(1), &mut rx).await);
        tx.send(Some(Instant::now() + Duration::from_secs(2)))
            .unwrap();
        assert!(pause(Duration::from_secs(1), &mut rx).await);
        assert!(!pause(Duration::from_secs(5), &mut rx).await);
        drop(tx);
        assert!(!pause(Duration::from_millis(1), &mut rx).await);
    }
}
