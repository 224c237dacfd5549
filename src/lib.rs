//! agent-mesh: a team of language models behind one small server, streamed live over SSE.
#![forbid(unsafe_code)]

pub mod log;

/// Command-line parsing and the terminal front end of `agent-mesh run`.
pub mod cli;
/// RFC 3339 timestamps.
pub mod clock;
/// Every environment variable, parsed and validated before binding.
pub mod config;
/// Run ids.
pub mod ids;
/// Secret values that never print.
pub mod secret;

/// Thin JSON handlers and request validation.
pub mod api;
/// The request and response toolkit: bodies, errors, the event stream, auth, client address.
pub mod http;
/// MCP servers: the tools agents may call.
pub mod mcp;
/// Counters and histograms in the Prometheus text format.
pub mod metrics;
/// The run model every layer shares: events, frozen run config, agent kinds, turns, error kinds.
pub mod model;
/// The plan → specialists → writer workflow.
pub mod pipeline;
/// Provider adapters behind one seam.
pub mod providers;
/// The HTTP server: serve loop, connections, router, CORS and the embedded page.
pub mod server;
/// Runs, event logs, subscribers, cancellation and eviction.
pub mod store;
/// Direct HTTPS serving.
pub mod tls;
/// OpenTelemetry spans exported over OTLP/HTTP.
pub mod trace;
/// Small helpers several layers use: locking, character cutting, base64.
pub mod util;
