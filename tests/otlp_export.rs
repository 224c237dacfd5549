//! Trace export end to end, through the tracer API and the real exporter, to a test
//! OTLP/HTTP collector on loopback (tests/support/otlp.rs); what it receives is decoded
//! by the official protobuf definitions (Python's `opentelemetry-proto`, through
//! tests/otlp_decode.py) in both encodings. Also: a 503 is retried, Retry-After is
//! honoured, a dead collector neither blocks the span API nor grows memory (spans are
//! dropped and counted), and no configured header value reaches the process log.

mod support;

use agent_mesh::metrics::METRICS;
use agent_mesh::trace::genai;
use agent_mesh::trace::{self, ExportOptions, SpanContext, SpanKind, TraceSettings};
use serde_json::json;
use std::collections::HashMap;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::otlp::{closed_port, decode, wait_exit, wait_output, Answer, Collector};

const API_KEY: &str = "otlp-key-7d1f0c";
const BEARER: &str = "tok-4455aa";
const PROMPT: &str = "the confidential launch plan";
const REMOTE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TEST_LIMIT: Duration = Duration::from_secs(20);

fn settings(endpoint: &str, protocol: &str) -> TraceSettings {
    let headers = format!("x-api-key={API_KEY},authorization=Bearer%20{BEARER}");
    let env: HashMap<&str, &str> = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
        ("OTEL_EXPORTER_OTLP_HEADERS", headers.as_str()),
        ("OTEL_SERVICE_NAME", "mesh-under-test"),
    ]
    .into_iter()
    .collect();
    TraceSettings::from_env(&env).expect("settings")
}

fn quick() -> ExportOptions {
    ExportOptions {
        batch_delay: Duration::from_millis(20),
        first_backoff: Duration::from_millis(50),
        ..ExportOptions::default()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn client() -> agent_mesh::providers::client::HttpClient {
    agent_mesh::providers::client::build(None).expect("client")
}

/// Starts tracing against `endpoint`, lets `record` make spans, then shuts the
/// exporter down (which flushes them) and returns what `record` returned.
fn export_spans<T>(
    endpoint: &str,
    protocol: &str,
    options: ExportOptions,
    record: impl FnOnce(&trace::Tracer) -> T,
) -> T {
    runtime().block_on(async {
        let (tracer, exporter) =
            trace::start(&settings(endpoint, protocol), client(), options).expect("start");
        let out = record(&tracer);
        exporter
            .expect("an exporter")
            .shutdown(tokio::time::Instant::now() + Duration::from_secs(10))
            .await;
        out
    })
}

/// A run's worth of spans: a run span under a remote parent, an agent span, and a
/// failed model call; the prompt is offered as content but content is off.
fn record_a_run(tracer: &trace::Tracer) -> (String, String) {
    let remote = SpanContext::from_traceparent(REMOTE).expect("traceparent");
    let mut run = genai::run_span(tracer, Some(&remote), "run-1", 1234);
    let mut agent = genai::agent_span(&run, "researcher", "openrouter", "m/small");
    agent.set_str_array("mesh.skills", &["search", "summarize"]);
    agent.set_f64("mesh.temperature", 0.5);
    agent.set_bool("mesh.parallel", false);
    let mut chat = genai::chat_span(
        &agent,
        "openai",
        "gpt-4o",
        Some(256),
        Some(("api.example", 443)),
    );
    chat.set_content(genai::INPUT_MESSAGES, PROMPT);
    chat.set_int(genai::USAGE_INPUT_TOKENS, 17);
    chat.record_error("timeout", "no first chunk within 30 s");
    let chat_traceparent = chat.traceparent().expect("a traceparent to send upstream");
    drop(chat);
    agent.end();
    run.set_static(genai::MESH_RUN_STATUS, "failed");
    run.record_error("timeout", "the researcher failed");
    let trace_id = run.context().trace_id.to_hex();
    run.end();
    (trace_id, chat_traceparent)
}

fn one_run_forms_one_tree(protocol: &str, encoding: &str) {
    let collector = Collector::start(&[]);
    let (trace_id, chat_traceparent) =
        export_spans(&collector.base_url(), protocol, quick(), record_a_run);
    let requests = collector.wait_for(1, TEST_LIMIT);
    for r in &requests {
        assert_eq!(r.path, "/v1/traces");
        let want_type = if encoding == "json" {
            "application/json"
        } else {
            "application/x-protobuf"
        };
        assert_eq!(r.header("content-type"), Some(want_type));
        assert_eq!(r.header("x-api-key"), Some(API_KEY));
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {BEARER}").as_str())
        );
        let text = String::from_utf8_lossy(&r.body);
        for secret in [API_KEY, BEARER, PROMPT] {
            assert!(!text.contains(secret), "{secret} in an exported body");
        }
    }
    let bodies: Vec<Vec<u8>> = requests.iter().map(|r| r.body.clone()).collect();
    let got = decode(encoding, &bodies);
    assert_eq!(got["resources"][0]["service.name"], "mesh-under-test");
    assert_eq!(got["scopes"][0]["name"], "agent-mesh");
    let spans = got["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 3, "{got}");
    let by_name = |name: &str| {
        spans
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no span {name} in {got}"))
    };
    let run = by_name("invoke_workflow");
    let agent = by_name("invoke_agent researcher");
    let chat = by_name("chat gpt-4o");

    // One tree, under the incoming traceparent.
    assert_eq!(trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    for s in [run, agent, chat] {
        assert_eq!(s["trace_id"], trace_id);
        assert!(s["end"].as_u64().unwrap() >= s["start"].as_u64().unwrap());
    }
    assert_eq!(run["parent_span_id"], "00f067aa0ba902b7");
    assert_eq!(agent["parent_span_id"], run["span_id"]);
    assert_eq!(chat["parent_span_id"], agent["span_id"]);
    // Sampled, remote-ness known; only the run's parent is remote.
    assert_eq!(run["flags"], 0x301);
    assert_eq!(agent["flags"], 0x101);
    // The model call's outgoing traceparent names the chat span.
    assert_eq!(
        chat_traceparent,
        format!("00-{trace_id}-{}-01", chat["span_id"].as_str().unwrap())
    );

    assert_eq!(run["kind"], "SPAN_KIND_INTERNAL");
    assert_eq!(agent["kind"], "SPAN_KIND_INTERNAL");
    assert_eq!(chat["kind"], "SPAN_KIND_CLIENT");

    let a = &run["attributes"];
    assert_eq!(a["gen_ai.operation.name"], "invoke_workflow");
    assert_eq!(a["mesh.run.id"], "run-1");
    assert_eq!(a["mesh.task.length"], 1234);
    assert_eq!(a["mesh.run.status"], "failed");
    assert_eq!(run["status_code"], "STATUS_CODE_ERROR");

    let a = &agent["attributes"];
    assert_eq!(a["gen_ai.agent.name"], "researcher");
    assert_eq!(a["gen_ai.provider.name"], "openrouter");
    assert_eq!(a["gen_ai.request.model"], "m/small");
    assert_eq!(a["mesh.skills"], json!(["search", "summarize"]));
    assert_eq!(a["mesh.temperature"], 0.5);
    assert_eq!(a["mesh.parallel"], false);
    assert_eq!(agent["status_code"], "STATUS_CODE_UNSET");
    assert!(a.get("error.type").is_none());

    let a = &chat["attributes"];
    assert_eq!(a["gen_ai.operation.name"], "chat");
    assert_eq!(a["gen_ai.provider.name"], "openai");
    assert_eq!(a["gen_ai.request.model"], "gpt-4o");
    assert_eq!(a["gen_ai.request.max_tokens"], 256);
    assert_eq!(a["gen_ai.usage.input_tokens"], 17);
    assert_eq!(a["server.port"], 443);
    assert_eq!(a["error.type"], "timeout");
    assert!(
        a.get("gen_ai.input.messages").is_none(),
        "content is off by default"
    );
    assert_eq!(chat["status_code"], "STATUS_CODE_ERROR");
    assert_eq!(chat["status_message"], "no first chunk within 30 s");
}

#[test]
fn a_run_arrives_as_one_tree_over_http_protobuf() {
    one_run_forms_one_tree("http/protobuf", "protobuf");
}

#[test]
fn a_run_arrives_as_one_tree_over_http_json() {
    one_run_forms_one_tree("http/json", "json");
}

#[test]
fn a_503_is_retried_and_the_batch_arrives() {
    let collector = Collector::start(&[Answer::status(503)]);
    let exported_before = METRICS.trace_counts().exported;
    export_spans(&collector.base_url(), "http/protobuf", quick(), |tracer| {
        let mut span = tracer.start_span("invoke_workflow", SpanKind::Internal, None);
        span.set_str("mesh.run.id", "retried");
        span.end();
    });
    let requests = collector.wait_for(2, TEST_LIMIT);
    assert_eq!(requests.len(), 2, "one 503, one retry");
    assert_eq!(requests[0].body, requests[1].body, "the same batch again");
    let got = decode("protobuf", &[requests[1].body.clone()]);
    assert_eq!(got["spans"][0]["attributes"]["mesh.run.id"], "retried");
    assert!(METRICS.trace_counts().exported > exported_before);
}

#[test]
fn retry_after_is_honoured() {
    let collector = Collector::start(&[Answer {
        status: 429,
        retry_after: Some(1),
    }]);
    let options = ExportOptions {
        first_backoff: Duration::from_millis(10),
        ..quick()
    };
    export_spans(&collector.base_url(), "http/json", options, |tracer| {
        drop(tracer.start_span("s", SpanKind::Internal, None));
    });
    let requests = collector.wait_for(2, TEST_LIMIT);
    let gap = requests[1].at - requests[0].at;
    assert!(gap >= Duration::from_millis(950), "retried after {gap:?}");
}

#[test]
fn a_dead_collector_never_blocks_spans_and_drops_what_does_not_fit() {
    let dead = closed_port();
    let before = METRICS.trace_counts();
    let n = 2_000;
    let options = ExportOptions {
        queue_capacity: 64,
        max_batch: 16,
        batch_delay: Duration::from_millis(5),
        first_backoff: Duration::from_millis(20),
        max_attempts: 2,
        ..ExportOptions::default()
    };
    let took = runtime().block_on(async {
        let (tracer, exporter) = trace::start(
            &settings(&format!("http://{dead}"), "http/protobuf"),
            client(),
            options,
        )
        .expect("start");
        let started = Instant::now();
        for i in 0..n {
            let mut span = tracer.start_span("execute_tool search", SpanKind::Internal, None);
            span.set_int("i", i);
            span.end();
            if i % 100 == 0 {
                // Let the exporter run (and fail) in between, as a real run would.
                tokio::task::yield_now().await;
            }
        }
        let took = started.elapsed();
        exporter
            .unwrap()
            .shutdown(tokio::time::Instant::now() + Duration::from_secs(5))
            .await;
        took
    });
    // 2,000 spans against a dead collector take no longer than spans ever take.
    assert!(took < Duration::from_secs(2), "span API blocked: {took:?}");
    let after = METRICS.trace_counts();
    // Every span was lost somewhere: the full queue, or a batch that failed.
    assert!(
        after.dropped - before.dropped >= n as u64,
        "dropped {} of {n}",
        after.dropped - before.dropped
    );
    assert!(after.export_failures > before.export_failures);
}

/// Also run as a child process by `no_header_value_reaches_the_log`: a collector
/// answering 503 then 401 makes the exporter log at every level; the batch is not
/// retried after the 401 and is counted as failed.
#[test]
fn a_refusing_collector_fails_the_batch_without_further_retries() {
    agent_mesh::log::set_level(agent_mesh::log::Level::Debug);
    let collector = Collector::start(&[Answer::status(503), Answer::status(401)]);
    let before = METRICS.trace_counts();
    export_spans(&collector.base_url(), "http/protobuf", quick(), |tracer| {
        drop(tracer.start_span("s", SpanKind::Internal, None));
    });
    assert_eq!(
        collector.received().len(),
        2,
        "503, retried, then 401: no more"
    );
    let after = METRICS.trace_counts();
    assert!(after.export_failures > before.export_failures);
    assert!(after.dropped > before.dropped);
}

#[test]
fn no_header_value_reaches_the_log() {
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_refusing_collector_fails_the_batch_without_further_retries",
            "--nocapture",
            "--test-threads=1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the test binary runs");
    let (out, log) = wait_output(child, TEST_LIMIT);
    assert!(out.contains("1 passed"), "{out}\n{log}");
    // The exporter did log, naming the collector and the statuses...
    assert!(log.contains("trace export to http://127.0.0.1:"), "{log}");
    assert!(
        log.contains("HTTP 503") && log.contains("HTTP 401"),
        "{log}"
    );
    // ...and never a header value.
    for secret in [API_KEY, BEARER] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
        assert!(!out.contains(secret), "{secret} in the output:\n{out}");
    }
}

#[test]
fn the_binary_refuses_grpc_and_bad_headers_at_start_with_exit_2() {
    for (env, variable, reason) in [
        (
            [
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ],
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            "grpc is not supported",
        ),
        (
            [
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
                ("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=otlp-key-7d1f0c%0a"),
            ],
            "OTEL_EXPORTER_OTLP_HEADERS",
            "not a valid header value",
        ),
    ] {
        let child = support::command(&env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn agent-mesh");
        let (status, out, err) = wait_exit(child, TEST_LIMIT);
        assert_eq!(status.code(), Some(2), "{err}");
        assert!(out.is_empty(), "{out}");
        assert!(err.contains(variable) && err.contains(reason), "{err}");
        assert!(!err.contains(API_KEY), "{err}");
    }
}
