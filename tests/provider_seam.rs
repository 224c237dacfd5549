//! The provider seam keeps text runs as they were: against the mock providers (real
//! sockets, real wire formats), every request body is exactly the text-only body of
//! SPEC §5.2/§5.3 byte for byte (no `tools`, plain string contents), and the tokens,
//! usage and ending of the run are relayed unchanged.

mod support;

use serde_json::Value;
use support::mock::{anthropic_stream, openai_stream, MockProvider, Recorded, Reply};
use support::{text_of, Ev, Server};

fn answer_of(agent: &str) -> String {
    match agent {
        "orchestrator" => {
            r#"{"agents":["researcher"],"reasoning":"facts","tasks":{"researcher":"dig"}}"#
                .to_string()
        }
        other => format!("{other} says \"hi\" — ünïcode 😀\nline two"),
    }
}

fn pieces(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars.chunks(3).map(|c| c.iter().collect()).collect()
}

fn json_str(v: &Value) -> String {
    serde_json::to_string(v.as_str().expect("a string")).unwrap()
}

/// The Chat Completions body as it was before messages and tools, rebuilt from what
/// the mock received.
fn expected_openai_body(r: &Recorded) -> String {
    let b = r.json();
    format!(
        r#"{{"model":{},"messages":[{{"role":"system","content":{}}},{{"role":"user","content":{}}}],"stream":true,"stream_options":{{"include_usage":true}},"max_tokens":{}}}"#,
        json_str(&b["model"]),
        json_str(&b["messages"][0]["content"]),
        json_str(&b["messages"][1]["content"]),
        b["max_tokens"].as_u64().expect("max_tokens"),
    )
}

fn expected_anthropic_body(r: &Recorded) -> String {
    let b = r.json();
    format!(
        r#"{{"model":{},"system":{},"messages":[{{"role":"user","content":{}}}],"max_tokens":{},"stream":true}}"#,
        json_str(&b["model"]),
        json_str(&b["system"]),
        json_str(&b["messages"][0]["content"]),
        b["max_tokens"].as_u64().expect("max_tokens"),
    )
}

fn run(server: &Server) -> Vec<Ev> {
    let id = server.start_run(r#"{"task":"Explain \"quoted\" things","schedule":"sequential"}"#);
    server.stream(&id, &[]).collect()
}

fn assert_text_run(events: &[Ev], output_tokens: u64) {
    assert_eq!(
        events.last().unwrap().data["status"],
        "completed",
        "{events:?}"
    );
    for agent in ["orchestrator", "researcher", "writer"] {
        assert_eq!(text_of(events, agent), answer_of(agent), "{agent}");
        let end = events
            .iter()
            .find(|e| e.event == "stream_end" && e.data["agent"] == agent)
            .expect("stream_end");
        assert_eq!(end.data["usage"]["output_tokens"], output_tokens, "{agent}");
    }
    assert_eq!(events.last().unwrap().data["output"], answer_of("writer"));
}

#[test]
fn an_openai_compatible_text_run_sends_and_relays_exactly_as_before() {
    let mock = MockProvider::start(|r, _| {
        let p = pieces(&answer_of(r.agent()));
        let refs: Vec<&str> = p.iter().map(String::as_str).collect();
        Reply::sse(&openai_stream(&refs, Some((21, 7, None))))
    });
    let base = mock.url("/v1");
    let server = Server::start(&[
        ("OPENROUTER_API_KEY", "sk-or-seam-test-0123456789"),
        ("OPENROUTER_BASE_URL", base.as_str()),
    ]);
    let events = run(&server);
    assert_text_run(&events, 7);
    let requests = mock.chat_requests();
    assert_eq!(requests.len(), 3);
    for r in &requests {
        assert_eq!(r.text(), expected_openai_body(r), "{}", r.agent());
    }
}

#[test]
fn an_anthropic_text_run_sends_and_relays_exactly_as_before() {
    let mock = MockProvider::start(|r, _| {
        let p = pieces(&answer_of(r.agent()));
        let refs: Vec<&str> = p.iter().map(String::as_str).collect();
        Reply::sse(&anthropic_stream(&refs, 30, 9))
    });
    let base = mock.url("");
    let server = Server::start(&[
        ("ANTHROPIC_API_KEY", "sk-ant-seam-test-0123"),
        ("ANTHROPIC_BASE_URL", base.as_str()),
    ]);
    let events = run(&server);
    assert_text_run(&events, 9);
    let requests = mock.chat_requests();
    assert_eq!(requests.len(), 3);
    for r in &requests {
        assert_eq!(r.text(), expected_anthropic_body(r), "{}", r.agent());
    }
}
