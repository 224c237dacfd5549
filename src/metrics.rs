//! Process metrics in the Prometheus text format: runs, streams, tokens, upstream calls,
//! errors and retries, trace export, request latency by route, time to first token by provider.
//! Every label set is closed (providers, error kinds, routes), so the counters are
//! fixed arrays of atomics: no locks and no allocation on the token path.

use crate::model::error_kind::ErrorKind;
use crate::model::provider_id::ProviderId;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

const PROVIDERS: usize = ProviderId::ALL.len();
const KINDS: [ErrorKind; 9] = [
    ErrorKind::Auth,
    ErrorKind::RateLimit,
    ErrorKind::Timeout,
    ErrorKind::Upstream,
    ErrorKind::BadResponse,
    ErrorKind::Network,
    ErrorKind::Cancelled,
    ErrorKind::Config,
    ErrorKind::Budget,
];

/// Why a failed sign-in was answered late with a 429 (see `http::auth_limit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleScope {
    /// The client failed too often.
    Client,
    /// The server-wide ceiling on failures per second was reached.
    Global,
}

impl ThrottleScope {
    const ALL: [ThrottleScope; 2] = [ThrottleScope::Client, ThrottleScope::Global];

    fn label(self) -> &'static str {
        match self {
            ThrottleScope::Client => "client",
            ThrottleScope::Global => "global",
        }
    }

    fn index(self) -> usize {
        match self {
            ThrottleScope::Client => 0,
            ThrottleScope::Global => 1,
        }
    }
}

/// The routes requests are counted under (a fixed set, so labels stay bounded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Health,
    Page,
    Assets,
    StartRun,
    Stream,
    Runs,
    RunSnapshot,
    Cancel,
    Agents,
    Models,
    Providers,
    Metrics,
    Other,
}

impl Route {
    const ALL: [Route; 13] = [
        Route::Health,
        Route::Page,
        Route::Assets,
        Route::StartRun,
        Route::Stream,
        Route::Runs,
        Route::RunSnapshot,
        Route::Cancel,
        Route::Agents,
        Route::Models,
        Route::Providers,
        Route::Metrics,
        Route::Other,
    ];

    fn label(self) -> &'static str {
        match self {
            Route::Health => "/health",
            Route::Page => "/",
            Route::Assets => "/assets/*",
            Route::StartRun => "/api/run",
            Route::Stream => "/api/stream/{id}",
            Route::Runs => "/api/runs",
            Route::RunSnapshot => "/api/runs/{id}",
            Route::Cancel => "/api/runs/{id}/cancel",
            Route::Agents => "/api/agents",
            Route::Models => "/api/models",
            Route::Providers => "/api/providers",
            Route::Metrics => "/metrics",
            Route::Other => "other",
        }
    }

    fn index(self) -> usize {
        Route::ALL
            .iter()
            .position(|r| *r == self)
            .unwrap_or(Route::ALL.len() - 1)
    }
}

const LATENCY_BUCKETS: [f64; 9] = [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0];
const TTFT_BUCKETS: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 90.0];

/// A cumulative histogram with fixed buckets; the sum is kept in microseconds.
struct Histogram<const N: usize> {
    buckets: [AtomicU64; N],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl<const N: usize> Histogram<N> {
    const fn new() -> Self {
        Histogram {
            buckets: [const { AtomicU64::new(0) }; N],
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    fn observe(&self, bounds: &[f64; N], value: Duration) {
        let secs = value.as_secs_f64();
        for (bucket, bound) in self.buckets.iter().zip(bounds) {
            if secs <= *bound {
                bucket.fetch_add(1, Relaxed);
            }
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micros.fetch_add(value.as_micros() as u64, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str, bounds: &[f64; N]) {
        for (bucket, bound) in self.buckets.iter().zip(bounds) {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels},le=\"{bound}\"}} {}",
                bucket.load(Relaxed)
            );
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum{{{labels}}} {}",
            self.sum_micros.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

pub struct Metrics {
    runs_started: AtomicU64,
    runs_budget_exhausted: AtomicU64,
    runs_finished: [AtomicU64; 3],
    tokens: [AtomicU64; PROVIDERS],
    calls: [AtomicU64; PROVIDERS],
    retries: [AtomicU64; PROVIDERS],
    errors: [[AtomicU64; KINDS.len()]; PROVIDERS],
    auth_failures: AtomicU64,
    auth_throttled: [AtomicU64; ThrottleScope::ALL.len()],
    connections_refused: AtomicU64,
    trace_spans_exported: AtomicU64,
    trace_spans_dropped: AtomicU64,
    trace_export_failures: AtomicU64,
    latency: [Histogram<9>; Route::ALL.len()],
    ttft: [Histogram<10>; PROVIDERS],
}

pub static METRICS: Metrics = Metrics::new();

fn provider_index(p: ProviderId) -> usize {
    ProviderId::ALL.iter().position(|x| *x == p).unwrap_or(0)
}

impl Metrics {
    const fn new() -> Self {
        Metrics {
            runs_started: AtomicU64::new(0),
            runs_budget_exhausted: AtomicU64::new(0),
            runs_finished: [const { AtomicU64::new(0) }; 3],
            tokens: [const { AtomicU64::new(0) }; PROVIDERS],
            calls: [const { AtomicU64::new(0) }; PROVIDERS],
            retries: [const { AtomicU64::new(0) }; PROVIDERS],
            errors: [const { [const { AtomicU64::new(0) }; KINDS.len()] }; PROVIDERS],
            auth_failures: AtomicU64::new(0),
            auth_throttled: [const { AtomicU64::new(0) }; ThrottleScope::ALL.len()],
            connections_refused: AtomicU64::new(0),
            trace_spans_exported: AtomicU64::new(0),
            trace_spans_dropped: AtomicU64::new(0),
            trace_export_failures: AtomicU64::new(0),
            latency: [const { Histogram::new() }; Route::ALL.len()],
            ttft: [const { Histogram::new() }; PROVIDERS],
        }
    }

    pub fn run_started(&self) {
        self.runs_started.fetch_add(1, Relaxed);
    }

    /// A run whose budget stopped work (a call dropped or a specialist skipped).
    pub fn run_budget_exhausted(&self) {
        self.runs_budget_exhausted.fetch_add(1, Relaxed);
    }

    pub fn run_finished(&self, status: crate::model::events::RunStatus) {
        use crate::model::events::RunStatus;
        let i = match status {
            RunStatus::Completed => 0,
            RunStatus::Cancelled => 1,
            RunStatus::Failed | RunStatus::Running => 2,
        };
        self.runs_finished[i].fetch_add(1, Relaxed);
    }

    pub fn token(&self, provider: ProviderId) {
        self.tokens[provider_index(provider)].fetch_add(1, Relaxed);
    }

    pub fn upstream_call(&self, provider: ProviderId) {
        self.calls[provider_index(provider)].fetch_add(1, Relaxed);
    }

    pub fn retry(&self, provider: ProviderId) {
        self.retries[provider_index(provider)].fetch_add(1, Relaxed);
    }

    pub fn upstream_error(&self, provider: ProviderId, kind: ErrorKind) {
        let k = KINDS.iter().position(|x| *x == kind).unwrap_or(0);
        self.errors[provider_index(provider)][k].fetch_add(1, Relaxed);
    }

    pub fn auth_failure(&self) {
        self.auth_failures.fetch_add(1, Relaxed);
    }

    pub fn auth_throttled(&self, scope: ThrottleScope) {
        self.auth_throttled[scope.index()].fetch_add(1, Relaxed);
    }

    pub fn connection_refused(&self) {
        self.connections_refused.fetch_add(1, Relaxed);
    }

    pub fn trace_spans_exported(&self, n: u64) {
        self.trace_spans_exported.fetch_add(n, Relaxed);
    }

    pub fn trace_spans_dropped(&self, n: u64) {
        self.trace_spans_dropped.fetch_add(n, Relaxed);
    }

    pub fn trace_export_failure(&self) {
        self.trace_export_failures.fetch_add(1, Relaxed);
    }

    /// The three trace export counters (for tests and the exporter's own log lines).
    pub fn trace_counts(&self) -> TraceCounts {
        TraceCounts {
            exported: self.trace_spans_exported.load(Relaxed),
            dropped: self.trace_spans_dropped.load(Relaxed),
            export_failures: self.trace_export_failures.load(Relaxed),
        }
    }

    pub fn request(&self, route: Route, took: Duration) {
        self.latency[route.index()].observe(&LATENCY_BUCKETS, took);
    }

    pub fn first_token(&self, provider: ProviderId, took: Duration) {
        self.ttft[provider_index(provider)].observe(&TTFT_BUCKETS, took);
    }

    /// The exposition text. `live` carries the gauges read from elsewhere.
    pub fn render(&self, live: &LiveGauges) -> String {
        let mut out = String::with_capacity(8192);
        let header = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        header(
            &mut out,
            "agent_mesh_build_info",
            "gauge",
            "The running version.",
        );
        let _ = writeln!(
            out,
            "agent_mesh_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        header(
            &mut out,
            "agent_mesh_uptime_seconds",
            "gauge",
            "Seconds since the process started.",
        );
        let _ = writeln!(out, "agent_mesh_uptime_seconds {}", live.uptime_secs);
        header(
            &mut out,
            "agent_mesh_runs_started_total",
            "counter",
            "Runs started.",
        );
        let _ = writeln!(
            out,
            "agent_mesh_runs_started_total {}",
            self.runs_started.load(Relaxed)
        );
        header(
            &mut out,
            "agent_mesh_runs_budget_exhausted_total",
            "counter",
            "Runs a budget stopped: a call dropped or specialists skipped at a cap.",
        );
        let _ = writeln!(
            out,
            "agent_mesh_runs_budget_exhausted_total {}",
            self.runs_budget_exhausted.load(Relaxed)
        );
        header(
            &mut out,
            "agent_mesh_runs_finished_total",
            "counter",
            "Runs finished, by final status.",
        );
        for (i, status) in ["completed", "cancelled", "failed"].iter().enumerate() {
            let _ = writeln!(
                out,
                "agent_mesh_runs_finished_total{{status=\"{status}\"}} {}",
                self.runs_finished[i].load(Relaxed)
            );
        }
        header(
            &mut out,
            "agent_mesh_runs",
            "gauge",
            "Runs held in memory, by status.",
        );
        for (status, n) in &live.runs_by_status {
            let _ = writeln!(out, "agent_mesh_runs{{status=\"{status}\"}} {n}");
        }
        header(
            &mut out,
            "agent_mesh_active_runs",
            "gauge",
            "Pipelines running now.",
        );
        let _ = writeln!(out, "agent_mesh_active_runs {}", live.active_runs);
        header(
            &mut out,
            "agent_mesh_active_streams",
            "gauge",
            "Event-stream subscribers connected now.",
        );
        let _ = writeln!(out, "agent_mesh_active_streams {}", live.active_streams);
        header(
            &mut out,
            "agent_mesh_store_unwritten_events",
            "gauge",
            "Events produced here that the shared run store has not confirmed yet.",
        );
        let _ = writeln!(
            out,
            "agent_mesh_store_unwritten_events {}",
            live.store.unwritten_events
        );
        header(
            &mut out,
            "agent_mesh_store_writes_failing",
            "gauge",
            "1 while writes to the shared run store fail and are retried.",
        );
        let _ = writeln!(
            out,
            "agent_mesh_store_writes_failing {}",
            u8::from(live.store.writes_failing)
        );
        header(
            &mut out,
            "agent_mesh_tokens_relayed_total",
            "counter",
            "Model text deltas relayed, by provider.",
        );
        for p in ProviderId::ALL {
            let _ = writeln!(
                out,
                "agent_mesh_tokens_relayed_total{{provider=\"{p}\"}} {}",
                self.tokens[provider_index(p)].load(Relaxed)
            );
        }
        header(
            &mut out,
            "agent_mesh_upstream_calls_total",
            "counter",
            "Model calls attempted, by provider (each retry counts).",
        );
        for p in ProviderId::ALL {
            let _ = writeln!(
                out,
                "agent_mesh_upstream_calls_total{{provider=\"{p}\"}} {}",
                self.calls[provider_index(p)].load(Relaxed)
            );
        }
        header(
            &mut out,
            "agent_mesh_upstream_retries_total",
            "counter",
            "Model calls retried before their first token, by provider.",
        );
        for p in ProviderId::ALL {
            let _ = writeln!(
                out,
                "agent_mesh_upstream_retries_total{{provider=\"{p}\"}} {}",
                self.retries[provider_index(p)].load(Relaxed)
            );
        }
        header(
            &mut out,
            "agent_mesh_upstream_errors_total",
            "counter",
            "Failed model call attempts, by provider and error kind.",
        );
        for p in ProviderId::ALL {
            for (k, kind) in KINDS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "agent_mesh_upstream_errors_total{{provider=\"{p}\",kind=\"{}\"}} {}",
                    kind.as_str(),
                    self.errors[provider_index(p)][k].load(Relaxed)
                );
            }
        }
        header(
            &mut out,
            "agent_mesh_auth_failures_total",
            "counter",
            "Requests with missing or wrong Basic-auth credentials.",
        );
        let _ = writeln!(
            out,
            "agent_mesh_auth_failures_total {}",
            self.auth_failures.load(Relaxed)
        );
        header(
            &mut out,
            "agent_mesh_auth_throttled_total",
            "counter",
            "Failed sign-ins answered late with 429: their client failed too often, or the server-wide ceiling on failures per second was reached.",
        );
        for scope in ThrottleScope::ALL {
            let _ = writeln!(
                out,
                "agent_mesh_auth_throttled_total{{scope=\"{}\"}} {}",
                scope.label(),
                self.auth_throttled[scope.index()].load(Relaxed)
            );
        }
        header(
            &mut out,
            "agent_mesh_connections_refused_total",
            "counter",
            "Connections refused at the open-connection cap.",
        );
        let _ = writeln!(
            out,
            "agent_mesh_connections_refused_total {}",
            self.connections_refused.load(Relaxed)
        );
        let trace = self.trace_counts();
        for (name, help, value) in [
            (
                "agent_mesh_trace_spans_exported_total",
                "Spans the OTLP collector accepted.",
                trace.exported,
            ),
            (
                "agent_mesh_trace_spans_dropped_total",
                "Spans dropped: the export queue was full, or the collector refused or could not be reached after retries.",
                trace.dropped,
            ),
            (
                "agent_mesh_trace_export_failures_total",
                "Span batches that could not be exported after retries.",
                trace.export_failures,
            ),
        ] {
            header(&mut out, name, "counter", help);
            let _ = writeln!(out, "{name} {value}");
        }
        header(
            &mut out,
            "agent_mesh_http_request_duration_seconds",
            "histogram",
            "Time to answer a request (to the response head for streams), by route.",
        );
        for r in Route::ALL {
            self.latency[r.index()].render(
                &mut out,
                "agent_mesh_http_request_duration_seconds",
                &format!("route=\"{}\"", r.label()),
                &LATENCY_BUCKETS,
            );
        }
        header(
            &mut out,
            "agent_mesh_time_to_first_token_seconds",
            "histogram",
            "Time from a model call to its first token, by provider.",
        );
        for p in ProviderId::ALL {
            self.ttft[provider_index(p)].render(
                &mut out,
                "agent_mesh_time_to_first_token_seconds",
                &format!("provider=\"{p}\""),
                &TTFT_BUCKETS,
            );
        }
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceCounts {
    pub exported: u64,
    pub dropped: u64,
    pub export_failures: u64,
}

/// Gauges owned by other parts of the process, read when rendering.
pub struct LiveGauges {
    pub uptime_secs: u64,
    pub active_runs: usize,
    pub active_streams: usize,
    pub runs_by_status: Vec<(&'static str, usize)>,
    pub store: StoreHealth,
}

/// How the store is doing, for `/metrics`: what an operator watches while a shared
/// store is away.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreHealth {
    /// Events this process's pipelines produced that the shared store has not yet
    /// confirmed (always 0 in memory).
    pub unwritten_events: usize,
    /// Writes to the shared store are failing now (and being retried).
    pub writes_failing: bool,
}
