//! Runs traced end to end: the real binary, a mock provider and the test OTLP
//! collector over loopback, spans decoded by the official protobuf definitions
//! (tests/otlp_decode.py) in both encodings. One run is one tree under the incoming
//! `traceparent`; the provider receives the chat span's context; a failed call has
//! `error.type`; `done` and the snapshot carry the trace id only when tracing is on;
//! a dead or failing collector leaves runs alone and counts the dropped spans; no
//! secret and no prompt text is in any exported byte.

mod support;

use serde_json::Value;
use std::io::BufReader;
use std::time::{Duration, Instant};
use support::mock::{openai_stream, MockProvider, Recorded, Reply};
use support::otlp::{closed_port, decode, Answer, Collector};
use support::{read_response, write_request, Ev, Server};

const OR_KEY: &str = "sk-or-v1-trace-key-0123456789";
const PASSWORD: &str = "basic-pass-77c1e0";
/// `mesh:basic-pass-77c1e0`
const AUTH: &str = "Basic bWVzaDpiYXNpYy1wYXNzLTc3YzFlMA==";
const API_KEY: &str = "mesh-client-key-5511";
const TASK: &str = "Summarise the unreleased merger memo";
const REMOTE_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const REMOTE_SPAN: &str = "00f067aa0ba902b7";
const LIMIT: Duration = Duration::from_secs(30);

/// The orchestrator picks two specialists; the analyst's call fails with a 400.
fn team(r: &Recorded, _: usize) -> Reply {
    let text = match r.agent() {
        "orchestrator" => r#"{"agents":["researcher","analyst"],"reasoning":"r"}"#.to_string(),
        "analyst" => return Reply::error(400, r#"{"error":{"message":"bad model"}}"#),
        other => format!("{other} wrote this"),
    };
    Reply::sse(&openai_stream(&[&text], Some((11, 7, None))))
}

fn server(mock: &MockProvider, extra: &[(&str, &str)]) -> Server {
    let base = mock.url("/api/v1");
    let mut env = vec![
        ("OPENROUTER_API_KEY", OR_KEY),
        ("OPENROUTER_BASE_URL", base.as_str()),
        ("MESH_USER", "mesh"),
        ("MESH_PASS", PASSWORD),
    ];
    env.extend_from_slice(extra);
    Server::start(&env)
}

/// Starts a run with a `traceparent` and follows it to `done`.
fn traced_run(server: &Server) -> (String, Vec<Ev>) {
    let traceparent = format!("00-{REMOTE_TRACE}-{REMOTE_SPAN}-01");
    let body = format!(r#"{{"task":"{TASK}"}}"#);
    let r = server.request(
        "POST",
        "/api/run",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", AUTH),
            ("traceparent", &traceparent),
        ],
        body.as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().expect("id").to_string();
    let events = server.stream(&id, &[("Authorization", AUTH)]).collect();
    (id, events)
}

fn snapshot(server: &Server, id: &str) -> Value {
    server
        .request(
            "GET",
            &format!("/api/runs/{id}"),
            &[("Authorization", AUTH)],
            b"",
        )
        .json()
}

fn metric(server: &Server, name: &str) -> u64 {
    let text = server
        .request("GET", "/metrics", &[("Authorization", AUTH)], b"")
        .text();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0)
}

/// A collector, the team's mock provider, and a server exporting to the collector in
/// `protocol` with a short batch delay.
fn exporting(protocol: &str) -> (Collector, MockProvider, Server) {
    let collector = Collector::start(&[]);
    let mock = MockProvider::start(team);
    let endpoint = collector.base_url();
    let server = server(
        &mock,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            ("OTEL_BSP_SCHEDULE_DELAY", "50"),
        ],
    );
    (collector, mock, server)
}

fn traced_run_is_one_tree(protocol: &str, encoding: &str) {
    let (collector, mock, mut server) = exporting(protocol);
    let (id, events) = traced_run(&server);
    let done = events.last().expect("events");
    assert_eq!(done.event, "done");
    assert_eq!(done.data["status"], "completed", "{events:?}");
    assert_eq!(done.data["trace_id"], REMOTE_TRACE);
    assert_eq!(snapshot(&server, &id)["trace_id"], REMOTE_TRACE);

    // Every provider call carried a traceparent in the run's trace.
    let calls = mock.chat_requests();
    assert_eq!(calls.len(), 4, "orchestrator, two specialists, writer");
    let mut sent_span_ids = Vec::new();
    for c in &calls {
        let tp = c.header("traceparent").expect("a traceparent upstream");
        let parts: Vec<&str> = tp.split('-').collect();
        assert_eq!(parts.len(), 4, "{tp}");
        assert_eq!(parts[1], REMOTE_TRACE);
        assert_eq!(parts[3], "01");
        sent_span_ids.push((c.agent(), parts[2].to_string()));
    }

    // Stopping the server flushes what is queued.
    server.signal("TERM");
    assert_eq!(server.wait_exit(LIMIT), Some(0));
    let received = collector.received();
    assert!(!received.is_empty(), "nothing exported");
    for r in &received {
        let bytes = String::from_utf8_lossy(&r.body);
        for secret in [OR_KEY, PASSWORD, AUTH, TASK, "researcher wrote this"] {
            assert!(!bytes.contains(secret), "{secret} in an exported body");
        }
    }
    let bodies: Vec<Vec<u8>> = received.iter().map(|r| r.body.clone()).collect();
    let got = decode(encoding, &bodies);
    let spans = got["spans"].as_array().expect("spans");
    let named = |name: &str| -> &Value {
        spans
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no span {name} in {got}"))
    };
    assert_eq!(spans.len(), 9, "run + 4 agents + 4 chats: {got}");
    for s in spans {
        assert_eq!(s["trace_id"], REMOTE_TRACE);
    }
    let run = named("invoke_workflow");
    assert_eq!(
        run["parent_span_id"], REMOTE_SPAN,
        "the incoming traceparent"
    );
    assert_eq!(run["kind"], "SPAN_KIND_INTERNAL");
    let a = &run["attributes"];
    assert_eq!(a["gen_ai.operation.name"], "invoke_workflow");
    assert_eq!(a["mesh.run.id"], id.as_str());
    assert_eq!(a["mesh.task.length"], TASK.chars().count() as u64);
    assert_eq!(a["mesh.run.schedule"], "sequential");
    assert_eq!(a["mesh.run.status"], "completed");

    for agent in ["orchestrator", "researcher", "analyst", "writer"] {
        let span = named(&format!("invoke_agent {agent}"));
        assert_eq!(span["parent_span_id"], run["span_id"], "{agent}");
        assert_eq!(span["kind"], "SPAN_KIND_INTERNAL");
        assert_eq!(span["attributes"]["gen_ai.agent.name"], agent);
        assert_eq!(span["attributes"]["gen_ai.provider.name"], "openrouter");
        let chat = spans
            .iter()
            .find(|s| s["parent_span_id"] == span["span_id"])
            .unwrap_or_else(|| panic!("no chat under {agent}: {got}"));
        let model = span["attributes"]["gen_ai.request.model"].as_str().unwrap();
        assert_eq!(chat["name"], format!("chat {model}"));
        assert_eq!(chat["kind"], "SPAN_KIND_CLIENT");
        let c = &chat["attributes"];
        assert_eq!(c["gen_ai.operation.name"], "chat");
        assert_eq!(c["gen_ai.provider.name"], "openrouter");
        assert_eq!(c["gen_ai.request.model"], model);
        assert!(c["gen_ai.request.max_tokens"].as_u64().unwrap() > 0);
        assert_eq!(c["mesh.retries"], 0);
        assert!(c.get("gen_ai.input.messages").is_none(), "content is off");
        assert!(c.get("gen_ai.system_instructions").is_none());
        // The provider saw this chat span's context.
        let sent = sent_span_ids
            .iter()
            .find(|(a, _)| *a == agent)
            .map(|(_, s)| s.as_str());
        assert_eq!(chat["span_id"].as_str(), sent, "{agent}");
        if agent == "analyst" {
            assert_eq!(c["error.type"], "400");
            assert_eq!(chat["status_code"], "STATUS_CODE_ERROR");
        } else {
            assert!(c.get("error.type").is_none(), "{agent}: {chat}");
            assert_eq!(
                c["gen_ai.response.finish_reasons"],
                serde_json::json!(["stop"])
            );
            assert_eq!(c["gen_ai.usage.input_tokens"], 11);
            assert_eq!(c["gen_ai.usage.output_tokens"], 7);
            assert!(c["gen_ai.response.time_to_first_chunk"].as_f64().unwrap() >= 0.0);
        }
    }
}

#[test]
fn a_traced_run_is_one_tree_over_http_protobuf() {
    traced_run_is_one_tree("http/protobuf", "protobuf");
}

#[test]
fn a_traced_run_is_one_tree_over_http_json() {
    traced_run_is_one_tree("http/json", "json");
}

#[test]
fn without_tracing_nothing_new_is_shown_and_the_traceparent_still_passes_on() {
    let mock = MockProvider::start(team);
    let server = server(&mock, &[]);
    let (id, events) = traced_run(&server);
    let done = events.last().expect("events");
    assert_eq!(done.event, "done");
    assert!(done.data.get("trace_id").is_none(), "{}", done.data);
    assert!(snapshot(&server, &id).get("trace_id").is_none());
    for c in mock.chat_requests() {
        let tp = c.header("traceparent").expect("propagated");
        assert_eq!(tp, format!("00-{REMOTE_TRACE}-{REMOTE_SPAN}-01"));
    }
}

#[test]
fn the_openai_endpoint_honours_an_incoming_traceparent() {
    let collector = Collector::start(&[]);
    let mock = MockProvider::start(team);
    let endpoint = collector.base_url();
    let server = server(
        &mock,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("MESH_API_KEYS", API_KEY),
        ],
    );
    let body = r#"{"model":"agent-mesh","messages":[{"role":"user","content":"hi"}]}"#;
    let mut s = server.connect();
    let traceparent = format!("00-{REMOTE_TRACE}-{REMOTE_SPAN}-01");
    write_request(
        &mut s,
        "POST",
        "/v1/chat/completions",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &format!("Bearer {API_KEY}")),
            ("traceparent", &traceparent),
        ],
        body.as_bytes(),
    );
    let r = read_response(&mut BufReader::new(s));
    assert_eq!(r.status, 200, "{}", r.text());
    let calls = mock.chat_requests();
    assert!(!calls.is_empty());
    for c in calls {
        let tp = c.header("traceparent").expect("a traceparent upstream");
        assert!(tp.starts_with(&format!("00-{REMOTE_TRACE}-")), "{tp}");
        assert!(
            !tp.contains(REMOTE_SPAN),
            "a span of ours, not the caller's"
        );
    }
}

/// Runs finish while the collector fails; once the exporter gives up, `/metrics`
/// counts the spans it dropped.
fn runs_survive(endpoint: &str) {
    let mock = MockProvider::start(team);
    let server = server(
        &mock,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
            // Long enough that the whole run is one batch.
            ("OTEL_BSP_SCHEDULE_DELAY", "2000"),
        ],
    );
    let started = Instant::now();
    let (_, events) = traced_run(&server);
    assert_eq!(events.last().unwrap().data["status"], "completed");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the run was slowed"
    );
    // The batch after 2 s, five attempts with backoff 1 + 2 + 4 + 8 s, then dropped.
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let dropped = metric(&server, "agent_mesh_trace_spans_dropped_total");
        if dropped >= 9 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "dropped spans not counted: {dropped}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_dead_collector_leaves_runs_unaffected_and_counts_dropped_spans() {
    runs_survive(&format!("http://{}", closed_port()));
}

#[test]
fn a_collector_answering_503_leaves_runs_unaffected_and_counts_dropped_spans() {
    let collector = Collector::start(&[Answer::status(503); 64]);
    runs_survive(&collector.base_url());
    assert!(collector.received().len() >= 5, "retried");
}

#[test]
fn the_mcp_endpoint_honours_an_incoming_traceparent() {
    let (collector, mock, mut server) = exporting("http/protobuf");
    let post = |headers: &[(&str, &str)], body: &str| {
        let mut all = vec![
            ("Content-Type", "application/json"),
            ("Accept", "application/json"),
            ("Authorization", AUTH),
        ];
        all.extend_from_slice(headers);
        server.request("POST", "/mcp", &all, body.as_bytes())
    };
    let init = post(
        &[],
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#,
    );
    assert_eq!(init.status, 200, "{}", init.text());
    let session = init
        .header("mcp-session-id")
        .expect("a session")
        .to_string();
    let s = [
        ("MCP-Session-Id", session.as_str()),
        ("MCP-Protocol-Version", "2025-11-25"),
    ];
    let r = post(
        &s,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let traceparent = format!("00-{REMOTE_TRACE}-{REMOTE_SPAN}-01");
    let call = serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "run_team", "arguments": {"task": TASK}}});
    let r = post(
        &[s[0], s[1], ("traceparent", &traceparent)],
        &call.to_string(),
    );
    let v = r.json();
    assert_eq!(
        v["result"]["structuredContent"]["status"], "completed",
        "{v}"
    );
    for c in mock.chat_requests() {
        let tp = c.header("traceparent").expect("a traceparent upstream");
        assert!(tp.starts_with(&format!("00-{REMOTE_TRACE}-")), "{tp}");
    }

    server.signal("TERM");
    assert_eq!(server.wait_exit(LIMIT), Some(0));
    let bodies: Vec<Vec<u8>> = collector.received().into_iter().map(|r| r.body).collect();
    let got = decode("protobuf", &bodies);
    let run = got["spans"]
        .as_array()
        .expect("spans")
        .iter()
        .find(|s| s["name"] == "invoke_workflow")
        .unwrap_or_else(|| panic!("no run span in {got}"))
        .clone();
    assert_eq!(run["trace_id"], REMOTE_TRACE);
    assert_eq!(run["parent_span_id"], REMOTE_SPAN, "the caller's span");
}
