//! Real provider adapters against mock providers speaking each wire format over real
//! sockets (HTTP and HTTPS with a test CA): exact upstream requests, byte-exact relay,
//! retries, failures, timeouts, cancellation and secrets.

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::mock::{anthropic_stream, openai_stream, MockProvider, Part, Recorded, Reply};
use support::{text_of, Ev, Server};

const OR_KEY: &str = "sk-or-v1-test-key-0123456789";

/// A specialist answer longer than the 600-character digest, with multi-byte
/// characters straddling the cut.
fn long_answer(agent: &str) -> String {
    let mut s = format!("{agent} says: ");
    while s.chars().count() < 590 {
        s.push_str("lorem ipsum ");
    }
    s.push_str("ééééé😀😀😀😀😀ü and the tail that only the writer sees.");
    s
}

fn pieces(text: &str, size: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

/// Answers like a real model: a plan for the orchestrator, long notes for specialists.
fn openai_team(r: &Recorded, _: usize) -> Reply {
    let agent = r.agent();
    let text = match agent {
        "orchestrator" => r#"Here is the plan: {"agents":["analyst","researcher"],"reasoning":"facts then trade-offs","tasks":{"researcher":"find numbers"}}"#.to_string(),
        "writer" => "# Final answer\n\nAll good.".to_string(),
        other => long_answer(other),
    };
    let p = pieces(&text, 7);
    let refs: Vec<&str> = p.iter().map(String::as_str).collect();
    Reply::sse(&openai_stream(&refs, Some((100, 50, Some(0.001)))))
}

fn openrouter_server(mock: &MockProvider, extra: &[(&str, &str)]) -> Server {
    let base = mock.url("/api/v1");
    let mut env = vec![
        ("OPENROUTER_API_KEY", OR_KEY),
        ("OPENROUTER_BASE_URL", base.as_str()),
        ("MESH_LOG", "debug"),
    ];
    env.extend_from_slice(extra);
    Server::start(&env)
}

fn run_to_end(server: &Server, body: &str) -> (String, Vec<Ev>) {
    let id = server.start_run(body);
    let events = server.stream(&id, &[]).collect();
    (id, events)
}

#[test]
fn openrouter_run_sends_the_exact_requests_and_chains_context() {
    let mock = MockProvider::start(openai_team);
    let server = openrouter_server(&mock, &[]);
    let (id, events) = run_to_end(&server, r#"{"task":"Compare B-trees and LSM-trees"}"#);
    assert_eq!(
        events.last().unwrap().data["status"],
        "completed",
        "{events:?}"
    );

    let reqs = mock.chat_requests();
    let agents: Vec<&str> = reqs.iter().map(Recorded::agent).collect();
    assert_eq!(
        agents,
        ["orchestrator", "researcher", "analyst", "writer"],
        "roster order, not plan order"
    );
    for r in &reqs {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/api/v1/chat/completions");
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {OR_KEY}").as_str())
        );
        assert!(r.header("http-referer").is_some());
        assert_eq!(r.header("x-title"), Some("agent-mesh"));
        assert_eq!(r.header("content-type"), Some("application/json"));
        let b = r.json();
        assert_eq!(b["stream"], true);
        assert_eq!(b["stream_options"]["include_usage"], true);
        assert!(b.get("max_completion_tokens").is_none());
        assert_eq!(b["messages"][0]["role"], "system");
        assert_eq!(b["messages"][1]["role"], "user");
        assert!(b["messages"][1]["content"]
            .as_str()
            .unwrap()
            .contains("Compare B-trees and LSM-trees"));
    }
    let body = |agent: &str| mock.requests_of(agent)[0].json();
    assert_eq!(body("orchestrator")["model"], "anthropic/claude-haiku-4.5");
    assert_eq!(body("orchestrator")["max_tokens"], 1024);
    assert_eq!(
        body("researcher")["model"],
        "meta-llama/llama-3.1-8b-instruct"
    );
    assert_eq!(body("researcher")["max_tokens"], 4096);
    assert_eq!(
        body("analyst")["model"],
        "meta-llama/llama-3.3-70b-instruct"
    );
    assert_eq!(body("writer")["model"], "anthropic/claude-sonnet-4.5");
    assert_eq!(body("writer")["max_tokens"], 8192);

    // The researcher got its subtask; the analyst got exactly the 600-char digest.
    let researcher = long_answer("researcher");
    assert!(mock.requests_of("researcher")[0]
        .user()
        .contains("find numbers"));
    let digest: String = researcher.chars().take(600).collect::<String>() + "…";
    let analyst_user = mock.requests_of("analyst")[0].user();
    assert!(
        analyst_user.contains(&digest),
        "digest missing from {analyst_user}"
    );
    assert!(!analyst_user.contains("the tail that only the writer sees"));
    // The writer got both full outputs.
    let writer_user = mock.requests_of("writer")[0].user();
    assert!(writer_user.contains(&researcher));
    assert!(writer_user.contains(&long_answer("analyst")));

    // Tokens were relayed byte for byte, usage and cost summed.
    assert_eq!(text_of(&events, "researcher"), researcher);
    assert_eq!(text_of(&events, "writer"), "# Final answer\n\nAll good.");
    let ends: Vec<&Ev> = events.iter().filter(|e| e.event == "stream_end").collect();
    assert_eq!(ends.len(), 4);
    for e in &ends {
        assert_eq!(
            e.data["usage"],
            json!({"input_tokens": 100, "output_tokens": 50})
        );
        assert_eq!(e.data["cost_usd"], 0.001);
        assert!(e.data["ttft_ms"].is_u64());
    }
    let done = &events.last().unwrap().data;
    assert_eq!(
        done["usage"],
        json!({"input_tokens": 400, "output_tokens": 200})
    );
    assert!((done["cost_usd"].as_f64().unwrap() - 0.004).abs() < 1e-9);
    let snap = server.get(&format!("/api/runs/{id}")).json();
    assert_eq!(snap["plan"]["source"], "orchestrator");
    assert_eq!(snap["agents"][1]["usage"]["output_tokens"], 50);
    // The key never shows in events, snapshot or logs.
    assert!(
        !serde_json::to_string(&events.iter().map(|e| &e.data).collect::<Vec<_>>())
            .unwrap()
            .contains(OR_KEY)
    );
    assert!(!snap.to_string().contains(OR_KEY));
    assert!(!server.logs().contains(OR_KEY));
}

#[test]
fn anthropic_run_uses_native_ids_headers_and_usage() {
    let mock = MockProvider::start(|r, _| {
        let text = match r.agent() {
            "orchestrator" => r#"```json
{"team":["Coder"],"reasoning":"code only"}
```"#
                .to_string(),
            other => format!("{other} output"),
        };
        let p = pieces(&text, 5);
        let refs: Vec<&str> = p.iter().map(String::as_str).collect();
        Reply::sse(&anthropic_stream(&refs, 30, 12))
    });
    let base = mock.url("");
    let server = Server::start(&[
        ("ANTHROPIC_API_KEY", "sk-ant-test-secret"),
        ("ANTHROPIC_BASE_URL", &base),
    ]);
    let (run_id, events) = run_to_end(&server, r#"{"task":"Write a function"}"#);
    assert_eq!(
        events.last().unwrap().data["status"],
        "completed",
        "{events:?}"
    );
    for r in mock.chat_requests() {
        assert_eq!(r.path, "/v1/messages");
        assert_eq!(r.header("x-api-key"), Some("sk-ant-test-secret"));
        assert_eq!(r.header("anthropic-version"), Some("2023-06-01"));
        assert!(r.header("authorization").is_none());
        let b = r.json();
        assert!(b["system"].as_str().unwrap().starts_with("You are the"));
        assert_eq!(b["messages"].as_array().unwrap().len(), 1);
        assert_eq!(b["messages"][0]["role"], "user");
        assert_eq!(b["stream"], true);
    }
    assert_eq!(
        mock.requests_of("orchestrator")[0].json()["model"],
        "claude-haiku-4-5"
    );
    assert_eq!(
        mock.requests_of("writer")[0].json()["model"],
        "claude-sonnet-4-5"
    );
    assert_eq!(
        mock.requests_of("coder")[0].json()["model"],
        "claude-haiku-4-5"
    );
    let coder_start = events
        .iter()
        .find(|e| e.event == "stream_start" && e.data["agent"] == "coder")
        .unwrap();
    assert_eq!(coder_start.data["model"], "claude-haiku-4-5");
    assert_eq!(
        coder_start.data["substituted_for"],
        "qwen/qwen-2.5-coder-32b-instruct"
    );
    let writer_start = events
        .iter()
        .find(|e| e.event == "stream_start" && e.data["agent"] == "writer")
        .unwrap();
    assert!(writer_start.data.get("substituted_for").is_none());
    // The snapshot keeps what the stream said, for a page that reopens the run.
    let snap = server.get(&format!("/api/runs/{run_id}")).json();
    let coder = snap["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "coder")
        .unwrap()
        .clone();
    assert_eq!(coder["substituted_for"], "qwen/qwen-2.5-coder-32b-instruct");
    assert!(coder["ttft_ms"].is_u64());
    assert!(snap["elapsed_ms"].is_u64());
    assert_eq!(
        snap["agents"][4]["substituted_for"],
        serde_json::Value::Null
    );
    let end = events
        .iter()
        .find(|e| e.event == "stream_end" && e.data["agent"] == "coder")
        .unwrap();
    assert_eq!(
        end.data["usage"],
        json!({"input_tokens": 30, "output_tokens": 12})
    );
    assert_eq!(end.data["finish_reason"], "end_turn");
    assert_eq!(text_of(&events, "coder"), "coder output");
}

#[test]
fn a_plan_of_only_unknown_names_falls_back_and_reports_them() {
    let mock = MockProvider::start(|r, _| {
        let text = if r.agent() == "orchestrator" {
            r#"{"agents":["designer","Poet"]}"#.to_string()
        } else {
            format!("{} here", r.agent())
        };
        Reply::sse(&openai_stream(&[&text], None))
    });
    let base = mock.url("/v1");
    let server = Server::start(&[("CUSTOM_BASE_URL", &base), ("MESH_PROVIDER", "custom")]);
    let (_, events) = run_to_end(&server, r#"{"task":"t"}"#);
    let plan = events.iter().find(|e| e.event == "plan").unwrap();
    assert_eq!(plan.data["source"], "fallback");
    assert_eq!(
        plan.data["dropped"],
        serde_json::json!(["designer", "Poet"])
    );
    assert_eq!(
        plan.data["reason"],
        "the plan named no known specialist (dropped: designer, Poet)"
    );
    assert_eq!(
        plan.data["agents"],
        serde_json::json!(["researcher", "analyst"])
    );
    let done = events.last().unwrap();
    assert_eq!(done.data["status"], "completed");
}

#[test]
fn custom_provider_over_https_with_the_test_ca_and_per_agent_routing() {
    let mock = MockProvider::start_tls(|r, _| {
        let text = if r.agent() == "orchestrator" {
            r#"{"agents":["researcher"]}"#.to_string()
        } else {
            format!("{} via tls", r.agent())
        };
        Reply::sse(&openai_stream(&[&text], None))
    });
    let anthropic = MockProvider::start(|r, _| {
        Reply::sse(&anthropic_stream(
            &[&format!("{} via anthropic", r.agent())],
            1,
            1,
        ))
    });
    let base = mock.url("/v1");
    let abase = anthropic.url("");
    let ca = mock.ca_file.clone().unwrap();
    let server = Server::start(&[
        ("CUSTOM_BASE_URL", &base),
        ("MESH_CA_FILE", ca.to_str().unwrap()),
        ("ANTHROPIC_API_KEY", "sk-ant-x1"),
        ("ANTHROPIC_BASE_URL", &abase),
        ("MESH_PROVIDER", "custom"),
    ]);
    let (id, events) = run_to_end(
        &server,
        r#"{"task":"t","models":{"writer":"anthropic:claude-opus-4-1","researcher":"llama3.1:8b"}}"#,
    );
    assert_eq!(
        events.last().unwrap().data["status"],
        "completed",
        "{events:?}"
    );
    // Custom has no key: no Authorization header at all.
    for r in mock.chat_requests() {
        assert!(r.header("authorization").is_none());
        assert!(r.json()["max_tokens"].as_u64().is_some());
    }
    assert_eq!(
        mock.requests_of("researcher")[0].json()["model"],
        "llama3.1:8b"
    );
    let w = anthropic.chat_requests();
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].json()["model"], "claude-opus-4-1");
    assert_eq!(text_of(&events, "writer"), "writer via anthropic");
    assert_eq!(text_of(&events, "researcher"), "researcher via tls");
    let snap = server.get(&format!("/api/runs/{id}")).json();
    assert_eq!(snap["config"]["agents"]["writer"]["provider"], "anthropic");
    assert_eq!(snap["config"]["agents"]["researcher"]["provider"], "custom");
    assert_eq!(snap["config"]["provider"], "custom");
}

#[test]
fn tls_without_the_test_ca_fails_with_a_clear_error() {
    let mock = MockProvider::start_tls(|_, _| Reply::sse(&openai_stream(&["never"], None)));
    let base = mock.url("/v1");
    let server = Server::start(&[("CUSTOM_BASE_URL", &base)]);
    let (_, events) = run_to_end(&server, r#"{"task":"t","agents":["researcher"]}"#);
    let err = events
        .iter()
        .find(|e| e.event == "error" && e.data["agent"] == "researcher")
        .expect("researcher error");
    assert_eq!(err.data["kind"], "network");
    let msg = err.data["message"].as_str().unwrap();
    assert!(msg.contains("TLS") && msg.contains("MESH_CA_FILE"), "{msg}");
    assert_eq!(
        events.last().unwrap().data["status"],
        "failed",
        "the writer failed too"
    );
    // TLS failures are not retried: one attempt per agent.
    assert!(!events.iter().any(|e| e.data["state"] == "retrying"));
}

/// The SSE bytes of a writer answer with every awkward feature of the format.
fn awkward_stream(text_pieces: &[&str]) -> Vec<u8> {
    let mut raw: Vec<u8> = "\u{feff}".as_bytes().to_vec();
    raw.extend_from_slice(b": OPENROUTER PROCESSING\r\n\r\n");
    for (i, p) in text_pieces.iter().enumerate() {
        let chunk = json!({"choices":[{"delta":{"content":p}}]}).to_string();
        let eol: &[u8] = match i % 3 {
            0 => b"\r\n",
            1 => b"\n",
            _ => b"\r",
        };
        raw.extend_from_slice(b"data: ");
        raw.extend_from_slice(chunk.as_bytes());
        raw.extend_from_slice(eol);
        raw.extend_from_slice(eol);
        raw.extend_from_slice(b":keep going\n\n");
    }
    raw.extend_from_slice(b"data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\r\n\r\ndata: [DONE]\r\n\r\n");
    raw
}

#[test]
fn tokens_are_relayed_byte_for_byte_whatever_the_chunking() {
    let texts = [
        "Grüße, ",
        "世界 ",
        "😀 emoji ",
        "line\r\nbreaks\n",
        "\"quotes\" and \\ ",
        "tab\tend",
    ];
    let mock = MockProvider::start(move |r, _| {
        if r.agent() == "orchestrator" {
            return Reply::sse(&openai_stream(&[r#"{"agents":["researcher"]}"#], None));
        }
        Reply::bytewise(&awkward_stream(&texts))
    });
    let server = openrouter_server(&mock, &[]);
    let (_, events) = run_to_end(&server, r#"{"task":"t"}"#);
    assert_eq!(
        events.last().unwrap().data["status"],
        "completed",
        "{events:?}"
    );
    let expected: String = texts.concat();
    assert_eq!(text_of(&events, "researcher"), expected);
    assert_eq!(text_of(&events, "writer"), expected);
}

#[test]
fn rate_limit_then_success_is_retried_with_a_status_event() {
    let first_call = std::sync::atomic::AtomicBool::new(true);
    let mock = MockProvider::start(move |r, _| {
        if r.method == "POST" && first_call.swap(false, std::sync::atomic::Ordering::SeqCst) {
            return Reply::error(429, r#"{"error":{"message":"slow down"}}"#)
                .with_header("Retry-After", "0");
        }
        if r.agent() == "orchestrator" {
            return Reply::sse(&openai_stream(&[r#"{"agents":["researcher"]}"#], None));
        }
        Reply::sse(&openai_stream(&["ok"], None))
    });
    let server = openrouter_server(&mock, &[]);
    let (_, events) = run_to_end(&server, r#"{"task":"t"}"#);
    assert_eq!(events.last().unwrap().data["status"], "completed");
    let retry = events
        .iter()
        .find(|e| e.data["state"] == "retrying")
        .expect("retrying status");
    assert_eq!(retry.data["agent"], "orchestrator");
    assert!(retry.data["detail"]
        .as_str()
        .unwrap()
        .contains("rate_limit"));
    assert_eq!(mock.requests_of("orchestrator").len(), 2);
    // The retry came before the orchestrator's first token.
    let retry_pos = events
        .iter()
        .position(|e| e.data["state"] == "retrying")
        .unwrap();
    let first_token = events.iter().position(|e| e.event == "token").unwrap();
    assert!(retry_pos < first_token);
}

#[test]
fn a_failing_specialist_is_retried_twice_then_the_pipeline_goes_on() {
    let mock = MockProvider::start(|r, _| match r.agent() {
        "orchestrator" => Reply::sse(&openai_stream(
            &[r#"{"agents":["researcher","analyst"]}"#],
            None,
        )),
        "researcher" => Reply::error(500, r#"{"error":{"message":"internal kaboom"}}"#),
        other => Reply::sse(&openai_stream(&[&format!("{other} fine")], None)),
    });
    let server = openrouter_server(&mock, &[]);
    let started = Instant::now();
    let (id, events) = run_to_end(&server, r#"{"task":"t"}"#);
    assert!(
        started.elapsed() >= Duration::from_millis(1400),
        "backoff 0.5 s + 1 s"
    );
    assert_eq!(
        mock.requests_of("researcher").len(),
        3,
        "one try and two retries"
    );
    let retries: Vec<&Ev> = events
        .iter()
        .filter(|e| e.data["state"] == "retrying")
        .collect();
    assert_eq!(retries.len(), 2);
    let err = events.iter().find(|e| e.event == "error").unwrap();
    assert_eq!(err.data["agent"], "researcher");
    assert_eq!(err.data["kind"], "upstream");
    assert_eq!(err.data["status"], 500);
    assert!(err.data["message"]
        .as_str()
        .unwrap()
        .contains("internal kaboom"));
    assert!(events.iter().any(|e| e.event == "status"
        && e.data["agent"] == "researcher"
        && e.data["state"] == "failed"));
    assert_eq!(events.last().unwrap().data["status"], "completed");
    // The writer saw only the analyst's notes.
    assert!(!mock.requests_of("writer")[0]
        .user()
        .contains("researcher fine"));
    let snap = server.get(&format!("/api/runs/{id}")).json();
    assert_eq!(snap["agents"][1]["state"], "failed");
    assert!(snap["agents"][1]["error"]
        .as_str()
        .unwrap()
        .contains("kaboom"));
    assert_eq!(snap["agents"][1]["error_kind"], "upstream");
    assert_eq!(snap["agents"][1]["error_status"], 500);
}

#[test]
fn auth_failures_are_not_retried_and_never_leak_the_key() {
    // The upstream echoes the key back in its error and in a token, as some proxies do.
    let mock = MockProvider::start(|r, _| {
        let auth = r.header("authorization").unwrap_or("").to_string();
        if r.agent() == "writer" {
            return Reply::sse(&openai_stream(
                &["your key is ", &auth[..16], &auth[16..], " ok"],
                None,
            ));
        }
        Reply::error(
            401,
            &json!({"error": {"message": format!("Invalid key: {auth}")}}).to_string(),
        )
    });
    let server = openrouter_server(&mock, &[]);
    let (id, events) = run_to_end(&server, r#"{"task":"t"}"#);
    assert_eq!(
        mock.requests_of("orchestrator").len(),
        1,
        "401 is not retried"
    );
    let err = events.iter().find(|e| e.event == "error").unwrap();
    assert_eq!(err.data["kind"], "auth");
    assert_eq!(err.data["status"], 401);
    // Fallback plan after the failed orchestrator.
    let plan = events.iter().find(|e| e.event == "plan").unwrap();
    assert_eq!(plan.data["source"], "fallback");
    assert!(!plan.data["reason"].as_str().unwrap().is_empty());
    let all = serde_json::to_string(&events.iter().map(|e| &e.data).collect::<Vec<_>>()).unwrap();
    assert!(!all.contains(OR_KEY), "key leaked into events");
    assert!(all.contains("***"));
    assert_eq!(text_of(&events, "writer"), "your key is Bearer *** ok");
    let snap = server.get(&format!("/api/runs/{id}")).text();
    assert!(!snap.contains(OR_KEY));
    assert!(!server.logs().contains(OR_KEY));
}

#[test]
fn a_mid_stream_error_fails_the_agent_with_what_it_had() {
    let mock = MockProvider::start(|r, _| match r.agent() {
        "orchestrator" => Reply::sse(&openai_stream(&[r#"{"agents":["analyst"]}"#], None)),
        "analyst" => Reply::sse(&[
            format!(
                "data: {}\n\n",
                json!({"choices":[{"delta":{"content":"partial "}}]})
            ),
            format!(
                "data: {}\n\n",
                json!({"error":{"message":"Provider returned error","code":502}})
            ),
        ]),
        _ => Reply::sse(&openai_stream(&["final"], None)),
    });
    let server = openrouter_server(&mock, &[]);
    let (id, events) = run_to_end(&server, r#"{"task":"t"}"#);
    assert_eq!(
        mock.requests_of("analyst").len(),
        1,
        "nothing is retried after the first token"
    );
    let err = events.iter().find(|e| e.event == "error").unwrap();
    assert_eq!(
        (err.data["agent"].as_str(), err.data["kind"].as_str()),
        (Some("analyst"), Some("upstream"))
    );
    assert_eq!(text_of(&events, "analyst"), "partial ");
    let snap = server.get(&format!("/api/runs/{id}")).json();
    assert_eq!(snap["agents"][3]["output"], "partial ");
    assert_eq!(snap["status"], "completed");
}

#[test]
fn a_silent_upstream_hits_the_first_token_timeout() {
    let mock = MockProvider::start(|r, _| {
        if r.agent() == "orchestrator" {
            let mut reply = Reply::sse(&[": still thinking\n\n".to_string()]);
            reply.hold_open = true;
            return reply;
        }
        Reply::sse(&openai_stream(&["x"], None))
    });
    let server = openrouter_server(&mock, &[("MESH_TTFT_TIMEOUT_SECS", "1")]);
    let started = Instant::now();
    let (_, events) = run_to_end(&server, r#"{"task":"t"}"#);
    let err = events.iter().find(|e| e.event == "error").unwrap();
    assert_eq!(err.data["kind"], "timeout");
    assert_eq!(
        mock.requests_of("orchestrator").len(),
        1,
        "timeouts are not retried"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(
        events.last().unwrap().data["status"],
        "completed",
        "fallback plan, then the rest"
    );
}

#[test]
fn cancel_closes_the_upstream_connection_within_100_ms() {
    let mock = MockProvider::start(|r, _| {
        if r.agent() == "orchestrator" {
            let mut parts: Vec<Part> = vec![Part::Bytes(
                format!(
                    "data: {}\n\n",
                    json!({"choices":[{"delta":{"content":"thinking"}}]})
                )
                .into_bytes(),
            )];
            parts.push(Part::Sleep(Duration::from_millis(10)));
            let mut reply = Reply::sse(&[]);
            reply.parts = parts;
            reply.hold_open = true;
            return reply;
        }
        Reply::sse(&openai_stream(&["x"], None))
    });
    let server = openrouter_server(&mock, &[]);
    let id = server.start_run(r#"{"task":"t"}"#);
    let mut s = server.stream(&id, &[]);
    while s.next_event().unwrap().event != "token" {}
    let cancelled_at = Instant::now();
    assert_eq!(
        server
            .request("POST", &format!("/api/runs/{id}/cancel"), &[], b"")
            .status,
        202
    );
    let events = s.collect();
    assert_eq!(events.last().unwrap().data["status"], "cancelled");
    let deadline = Instant::now() + Duration::from_secs(2);
    while mock.closes().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let closed = *mock.closes().first().expect("upstream connection closed");
    let took = closed.saturating_duration_since(cancelled_at);
    assert!(
        took < Duration::from_millis(100),
        "upstream closed after {took:?}"
    );
    assert_eq!(
        mock.chat_requests().len(),
        1,
        "no further calls after cancel"
    );
}

#[test]
fn a_response_that_is_not_an_event_stream_is_a_bad_response() {
    let mock = MockProvider::start(|_, _| {
        Reply::error(
            200,
            r#"{"choices":[{"message":{"content":"not streamed"}}]}"#,
        )
    });
    let server = openrouter_server(&mock, &[]);
    let (_, events) = run_to_end(&server, r#"{"task":"t","agents":["researcher"]}"#);
    let err = events.iter().find(|e| e.event == "error").unwrap();
    assert_eq!(err.data["kind"], "bad_response");
}

#[test]
fn an_oversized_event_line_ends_the_call() {
    let mock = MockProvider::start(|_, _| {
        let mut reply = Reply::sse(&[]);
        let line = vec![b'a'; 256 * 1024];
        reply.parts = vec![Part::Bytes(b"data: ".to_vec())];
        for _ in 0..5 {
            reply.parts.push(Part::Bytes(line.clone()));
        }
        reply
    });
    let server = openrouter_server(&mock, &[]);
    let (_, events) = run_to_end(&server, r#"{"task":"t","agents":["researcher"]}"#);
    let err = events.iter().find(|e| e.event == "error").unwrap();
    assert_eq!(err.data["kind"], "bad_response");
}

#[test]
fn unconfigured_provider_overrides_are_rejected() {
    let server = Server::start(&[]);
    for body in [
        r#"{"task":"t","provider":"openrouter"}"#,
        r#"{"task":"t","models":{"writer":"anthropic:claude-sonnet-4-5"}}"#,
    ] {
        let r = server.post_json("/api/run", body);
        assert_eq!(r.status, 400, "{body}");
        let v: Value = r.json();
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not configured"));
    }
}
