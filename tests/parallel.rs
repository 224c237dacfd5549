//! The parallel schedule over real sockets against a paced mock provider: overlap in
//! time, dependants after their inputs, digests of exactly the dependencies, a broken
//! cycle, a failed input, cancel with several calls in flight, MESH_MAX_PARALLEL.

mod support;

use serde_json::json;
use std::time::{Duration, Instant};
use support::mock::{MockProvider, Part, Recorded, Reply};
use support::{Ev, Server};

/// OpenAI-style chunks of `words`, with `gap` between them (a paced upstream).
fn paced(words: &[String], gap: Duration) -> Reply {
    let mut reply = Reply::sse(&[]);
    for w in words {
        reply.parts.push(Part::Sleep(gap));
        reply.parts.push(Part::Bytes(
            format!("data: {}\n\n", json!({"choices":[{"delta":{"content":w}}]})).into_bytes(),
        ));
    }
    reply.parts.push(Part::Bytes(b"data: [DONE]\n\n".to_vec()));
    reply
}

fn team_reply(plan: &'static str) -> impl Fn(&Recorded, usize) -> Reply + Send + Sync {
    move |r, _| match r.agent() {
        "orchestrator" => paced(&[plan.to_string()], Duration::ZERO),
        "writer" => paced(&["done".to_string()], Duration::ZERO),
        "researcher" if plan.contains("FAIL") => Reply::error(401, r#"{"error":{"message":"no"}}"#),
        other => paced(
            &(0..8).map(|i| format!("{other}-{i} ")).collect::<Vec<_>>(),
            Duration::from_millis(25),
        ),
    }
}

fn server(mock: &MockProvider, extra: &[(&str, &str)]) -> Server {
    let base = mock.url("/v1");
    let mut env = vec![
        ("CUSTOM_BASE_URL", base.as_str()),
        ("MESH_SCHEDULE", "parallel"),
    ];
    env.extend_from_slice(extra);
    Server::start(&env)
}

fn pos(events: &[Ev], event: &str, agent: &str) -> usize {
    events
        .iter()
        .position(|e| e.event == event && e.data["agent"] == agent)
        .unwrap_or_else(|| panic!("no {event} of {agent}: {events:?}"))
}

fn prompt_of(mock: &MockProvider, agent: &str) -> String {
    mock.requests_of(agent)
        .first()
        .unwrap_or_else(|| panic!("{agent} was not called"))
        .user()
}

#[test]
fn independent_specialists_overlap_and_a_dependant_waits_for_exactly_its_input() {
    let mock = MockProvider::start(team_reply(
        r#"{"agents":["researcher","coder","analyst"],"after":{"analyst":["researcher"],"researcher":["analyst","ghost"]}}"#,
    ));
    let server = server(&mock, &[]);
    let id = server.start_run(r#"{"task":"t"}"#);
    let events = server.stream(&id, &[]).collect();
    assert_eq!(
        events.last().unwrap().data["status"],
        "completed",
        "{events:?}"
    );

    let plan = &events.iter().find(|e| e.event == "plan").unwrap().data;
    assert_eq!(plan["schedule"], "parallel");
    assert_eq!(
        plan["after"],
        json!({"researcher":[],"coder":[],"analyst":["researcher"]})
    );
    assert_eq!(
        plan["stages"],
        json!([["researcher", "coder"], ["analyst"]])
    );
    let dropped = plan["dropped_after"].as_array().unwrap();
    assert!(
        dropped.contains(&json!({"agent":"researcher","after":"analyst","reason":"cycle"})),
        "{plan}"
    );
    assert!(
        dropped.contains(&json!({"agent":"researcher","after":"ghost","reason":"unknown"})),
        "{plan}"
    );

    // Researcher and coder run at once; the analyst only after the researcher ended.
    let (rs, re) = (
        pos(&events, "stream_start", "researcher"),
        pos(&events, "stream_end", "researcher"),
    );
    let (cs, ce) = (
        pos(&events, "stream_start", "coder"),
        pos(&events, "stream_end", "coder"),
    );
    assert!(rs < ce && cs < re, "researcher and coder overlap");
    assert!(pos(&events, "stream_start", "analyst") > re);
    assert!(pos(&events, "stream_start", "writer") > pos(&events, "stream_end", "analyst"));
    assert!(pos(&events, "stream_start", "writer") > ce);

    // Digests of exactly the dependencies.
    let analyst = prompt_of(&mock, "analyst");
    assert!(
        analyst.contains("--- Researcher ---\nresearcher-0"),
        "{analyst}"
    );
    assert!(!analyst.contains("Coder"), "{analyst}");
    assert!(!prompt_of(&mock, "coder").contains("---"));
    // The writer has every full output.
    let writer = prompt_of(&mock, "writer");
    for who in ["researcher-7", "coder-7", "analyst-7"] {
        assert!(writer.contains(who), "{writer}");
    }
    // The orchestrator was asked for dependencies.
    assert!(prompt_of(&mock, "orchestrator").contains("\"after\""));

    let snap = server.get(&format!("/api/runs/{id}")).json();
    assert_eq!(snap["config"]["schedule"], "parallel");
    assert_eq!(snap["plan"]["after"]["analyst"], json!(["researcher"]));
}

#[test]
fn a_failed_input_still_runs_its_dependant_told_what_is_missing() {
    let mock = MockProvider::start(team_reply(
        r#"{"agents":["researcher","analyst"],"after":{"analyst":["researcher"]},"reasoning":"FAIL"}"#,
    ));
    let server = server(&mock, &[]);
    let id = server.start_run(r#"{"task":"t"}"#);
    let events = server.stream(&id, &[]).collect();
    assert_eq!(events.last().unwrap().data["status"], "completed");
    assert!(pos(&events, "stream_start", "analyst") > pos(&events, "error", "researcher"));
    let analyst = prompt_of(&mock, "analyst");
    assert!(
        analyst.contains("Input missing: the Researcher's work") && analyst.contains("auth"),
        "{analyst}"
    );
}

#[test]
fn max_parallel_caps_the_calls_at_once() {
    let mock = MockProvider::start(team_reply(r#"{"agents":["researcher","coder","analyst"]}"#));
    let server = server(&mock, &[("MESH_MAX_PARALLEL", "2")]);
    let id = server.start_run(r#"{"task":"t"}"#);
    let events = server.stream(&id, &[]).collect();
    let mut open = 0;
    let mut most = 0;
    for e in &events {
        match e.event.as_str() {
            "stream_start" if e.data["agent"] != "orchestrator" => open += 1,
            "stream_end" if e.data["agent"] != "orchestrator" => open -= 1,
            _ => {}
        }
        most = most.max(open);
    }
    assert_eq!(most, 2, "{events:?}");
}

#[test]
fn schedule_in_the_request_overrides_and_a_bad_one_is_a_400() {
    let mock = MockProvider::start(team_reply(r#"{"agents":["researcher","coder"]}"#));
    let server = server(&mock, &[]);
    let r = server.post_json("/api/run", r#"{"task":"t","schedule":"sideways"}"#);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["field"], "schedule");
    let id = server.start_run(r#"{"task":"t","schedule":"sequential"}"#);
    let events = server.stream(&id, &[]).collect();
    assert!(pos(&events, "stream_start", "coder") > pos(&events, "stream_end", "researcher"));
    assert_eq!(
        server.get(&format!("/api/runs/{id}")).json()["config"]["schedule"],
        "sequential"
    );
}

#[test]
fn cancel_closes_three_upstream_calls_in_flight_within_100_ms() {
    let mock = MockProvider::start(|r, _| {
        let mut reply = paced(&[format!("{} thinking", r.agent())], Duration::ZERO);
        reply.parts.pop(); // no [DONE]: the call stays open
        reply.hold_open = true;
        reply
    });
    let server = server(&mock, &[]);
    let id = server.start_run(r#"{"task":"t","agents":["researcher","coder","analyst"]}"#);
    let mut s = server.stream(&id, &[]);
    let mut tokens = 0;
    while tokens < 3 {
        if s.next_event().unwrap().event == "token" {
            tokens += 1;
        }
    }
    let cancelled_at = Instant::now();
    let r = server.request("POST", &format!("/api/runs/{id}/cancel"), &[], b"");
    assert_eq!(r.status, 202);
    let rest = s.collect();
    assert_eq!(rest.last().unwrap().data["status"], "cancelled");
    for who in ["researcher", "coder", "analyst"] {
        assert!(
            rest.iter().any(|e| e.event == "error"
                && e.data["agent"] == who
                && e.data["kind"] == "cancelled"),
            "{who}: {rest:?}"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while mock.closes().len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let closes = mock.closes();
    assert_eq!(closes.len(), 3, "every upstream call closed");
    for c in closes {
        let took = c.saturating_duration_since(cancelled_at);
        assert!(took < Duration::from_millis(100), "closed after {took:?}");
    }
}

#[test]
fn three_independent_specialists_all_run_at_once() {
    let mock = MockProvider::start(team_reply(r#"{"agents":["researcher","coder","analyst"]}"#));
    let server = server(&mock, &[]);
    let id = server.start_run(r#"{"task":"t"}"#);
    let events = server.stream(&id, &[]).collect();
    assert_eq!(events.last().unwrap().data["status"], "completed");
    let team = ["researcher", "coder", "analyst"];
    for a in team {
        for b in team.iter().filter(|b| **b != a) {
            assert!(
                pos(&events, "stream_start", a) < pos(&events, "stream_end", b),
                "{a} started after {b} ended: {events:?}"
            );
        }
        // Nobody is after anybody, so no specialist gets a digest.
        assert!(!prompt_of(&mock, a).contains("---"), "{a}");
    }
}

#[test]
fn sequential_is_unchanged_whatever_the_plan_says_about_after() {
    let mock = MockProvider::start(team_reply(
        r#"{"agents":["researcher","coder","analyst"],"after":{"researcher":["analyst"]}}"#,
    ));
    let base = mock.url("/v1");
    let server = Server::start(&[("CUSTOM_BASE_URL", base.as_str())]);
    let id = server.start_run(r#"{"task":"t"}"#);
    let events = server.stream(&id, &[]).collect();
    assert_eq!(events.last().unwrap().data["status"], "completed");
    let plan = &events.iter().find(|e| e.event == "plan").unwrap().data;
    assert_eq!(plan["schedule"], "sequential");
    assert_eq!(
        plan["stages"],
        json!([["researcher"], ["coder"], ["analyst"]])
    );
    // Roster order, one at a time, whatever the plan's graph.
    let order = ["researcher", "coder", "analyst", "writer"];
    for w in order.windows(2) {
        assert!(
            pos(&events, "stream_start", w[1]) > pos(&events, "stream_end", w[0]),
            "{} before {} ended",
            w[1],
            w[0]
        );
    }
    // Digests of every earlier specialist (SPEC §4.2), no "input missing" note.
    assert!(!prompt_of(&mock, "researcher").contains("---"));
    let coder = prompt_of(&mock, "coder");
    assert!(
        coder.contains("--- Researcher ---\nresearcher-0"),
        "{coder}"
    );
    let analyst = prompt_of(&mock, "analyst");
    assert!(
        analyst.contains("--- Researcher ---") && analyst.contains("--- Coder ---\ncoder-0"),
        "{analyst}"
    );
    assert!(!analyst.contains("Input missing"), "{analyst}");
    assert!(!prompt_of(&mock, "orchestrator").contains("\"after\""));
    assert_eq!(
        server.get(&format!("/api/runs/{id}")).json()["config"]["schedule"],
        "sequential"
    );
}
