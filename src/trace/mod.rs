//! Distributed tracing: OpenTelemetry spans for runs, agents, model and tool calls,
//! exported over OTLP/HTTP (protobuf or JSON) by a small encoder on the project's own
//! HTTP client. Off unless an OTLP endpoint is configured; then off costs nothing.
//!
//! How the pipeline uses it (see `genai` for the span starters and attribute names):
//!
//! ```ignore
//! let tracer = trace::global();
//! // POST /api/run: the incoming traceparent, if any, is the run span's parent.
//! let remote = headers.get("traceparent").and_then(|v| v.to_str().ok())
//!     .and_then(SpanContext::from_traceparent);
//! let mut run = genai::run_span(tracer, remote.as_ref(), &run_id, task.len());
//! let agent = genai::agent_span(&run, "researcher", "openrouter", &model);
//! let mut chat = genai::chat_span(&agent, "openrouter", &model, Some(max_tokens), None);
//! if let Some(tp) = chat.traceparent() { request.headers_mut().insert("traceparent", tp.parse()?); }
//! chat.set_int(genai::USAGE_OUTPUT_TOKENS, n);  // or chat.record_error("timeout", &msg)
//! drop(chat); drop(agent);                        // or .end(); dropping ends a span
//! run.set_static(genai::MESH_RUN_STATUS, "completed");
//! let trace_id = run.context().trace_id;          // for the done event and the snapshot
//! ```

pub mod context;
pub mod export;
pub mod genai;
pub mod json;
pub mod proto;
pub mod sampler;
pub mod settings;
pub mod span;
pub mod tracer;

pub use context::{SpanContext, SpanId, TraceId};
pub use export::{ExportOptions, Exporter};
pub use settings::TraceSettings;
pub use span::{Span, SpanKind};
pub use tracer::{global, install, Tracer};

use crate::providers::client::HttpClient;
use std::path::Path;
use std::time::Duration;

/// How long the process waits at exit for queued spans to reach the collector.
pub const FLUSH_ON_EXIT: Duration = Duration::from_secs(5);

/// What every exported batch says about this process: the resource attributes
/// (`service.name` first) and the instrumentation scope.
#[derive(Debug, Clone)]
pub struct Resource {
    pub attributes: Vec<(String, String)>,
    pub scope_name: &'static str,
    pub scope_version: &'static str,
}

impl Resource {
    pub fn new(settings: &TraceSettings) -> Resource {
        let version = env!("CARGO_PKG_VERSION");
        let mut attributes = vec![("service.name".to_string(), settings.service_name.clone())];
        for (k, v) in [
            ("service.version", version),
            ("telemetry.sdk.name", "agent-mesh"),
            ("telemetry.sdk.language", "rust"),
            ("telemetry.sdk.version", version),
        ] {
            attributes.push((k.to_string(), v.to_string()));
        }
        // OTEL_RESOURCE_ATTRIBUTES adds to these (its service.name was already
        // weighed against OTEL_SERVICE_NAME by the settings).
        for (k, v) in &settings.resource_attributes {
            match attributes.iter_mut().find(|(key, _)| key == k) {
                Some(_) if k == "service.name" => {}
                Some(existing) => existing.1 = v.clone(),
                None => attributes.push((k.clone(), v.clone())),
            }
        }
        Resource {
            attributes,
            scope_name: "agent-mesh",
            scope_version: version,
        }
    }
}

/// Starts tracing as configured: with no endpoint (or `OTEL_SDK_DISABLED=true`) a
/// disabled tracer and no exporter; otherwise the export task on the current Tokio
/// runtime. `main` installs the tracer (`install`) and calls `Exporter::shutdown`
/// before exiting.
pub fn start(
    settings: &TraceSettings,
    client: HttpClient,
    options: ExportOptions,
) -> Result<(Tracer, Option<Exporter>), String> {
    let Some(export) = &settings.export else {
        return Ok((Tracer::disabled(), None));
    };
    let (queue, exporter) = export::spawn(export, Resource::new(settings), client, options)?;
    let tracer = Tracer::new(settings.sampler, settings.record_content, queue);
    Ok((tracer, Some(exporter)))
}

/// What `main` calls once inside the runtime: starts tracing with its own client
/// (`MESH_CA_FILE` roots apply to the collector too), installs the process tracer
/// (`global()`), and says where spans go (the host only: a URL may carry a token).
/// Returns the exporter to shut down before exit, `None` when tracing is off.
pub fn start_for_process(
    settings: &TraceSettings,
    ca_file: Option<&Path>,
) -> Result<Option<Exporter>, String> {
    if settings.export.is_none() {
        return Ok(None);
    }
    let client = crate::providers::client::build(ca_file)?;
    let (tracer, exporter) = start(settings, client, ExportOptions::default())?;
    if let Some(export) = &settings.export {
        let protocol = match export.protocol {
            settings::Protocol::HttpProtobuf => "http/protobuf",
            settings::Protocol::HttpJson => "http/json",
        };
        crate::log_info!(
            "tracing on: OTLP {protocol} to {} as service {}",
            export::display_host_of(&export.endpoint),
            settings.service_name
        );
    }
    install(tracer);
    Ok(exporter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn the_service_name_may_come_from_the_resource_attributes() {
        let env: HashMap<&str, &str> = [("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-resource")]
            .into_iter()
            .collect();
        let settings = TraceSettings::from_env(&env).unwrap();
        assert_eq!(Resource::new(&settings).attributes[0].1, "from-resource");
    }

    #[test]
    fn the_resource_names_the_service_and_takes_extra_attributes() {
        let env: HashMap<&str, &str> = [
            ("OTEL_SERVICE_NAME", "mesh-eu"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment=prod,service.name=ignored,service.version=9",
            ),
        ]
        .into_iter()
        .collect();
        let settings = TraceSettings::from_env(&env).unwrap();
        let r = Resource::new(&settings);
        let get = |k: &str| {
            r.attributes
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(r.attributes[0].0, "service.name");
        assert_eq!(get("service.name"), Some("mesh-eu"));
        assert_eq!(get("deployment.environment"), Some("prod"));
        assert_eq!(get("service.version"), Some("9"));
        assert_eq!(get("telemetry.sdk.language"), Some("rust"));
    }
}
