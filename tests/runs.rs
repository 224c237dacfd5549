//! Runs over real sockets: the exact event order, resume without gap or duplicate,
//! cancellation, the disconnect grace, detach, eviction, limits, and many runs at once.

mod support;

use serde_json::Value;
use std::time::{Duration, Instant};
use support::{text_of, Ev, Item, Server};

/// Asserts the event grammar of SPEC §6 for a completed run and returns the plan's team.
fn assert_event_order(events: &[Ev]) -> Vec<String> {
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.id, Some(i as u64 + 1), "ids are contiguous from 1: {e:?}");
    }
    let mut it = events.iter().peekable();
    let first = it.next().unwrap();
    assert_eq!(
        (first.event.as_str(), &first.data["state"]),
        ("status", &Value::from("planning"))
    );
    let expect_call = |it: &mut std::iter::Peekable<std::slice::Iter<Ev>>, agent: &str| {
        let start = it.next().unwrap();
        assert_eq!(
            (start.event.as_str(), start.data["agent"].as_str()),
            ("stream_start", Some(agent)),
            "{start:?}"
        );
        while it.peek().is_some_and(|e| e.event == "token") {
            assert_eq!(it.next().unwrap().data["agent"], agent);
        }
        let end = it.next().unwrap();
        assert_eq!(
            (end.event.as_str(), end.data["agent"].as_str()),
            ("stream_end", Some(agent)),
            "{end:?}"
        );
    };
    expect_call(&mut it, "orchestrator");
    let plan = it.next().unwrap();
    assert_eq!(plan.event, "plan");
    let team: Vec<String> = plan.data["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    for s in ["researcher", "coder", "analyst"] {
        if !team.iter().any(|t| t == s) {
            let e = it.next().unwrap();
            assert_eq!(
                (
                    e.event.as_str(),
                    e.data["agent"].as_str(),
                    e.data["state"].as_str()
                ),
                ("status", Some(s), Some("skipped"))
            );
        }
    }
    for member in &team {
        expect_call(&mut it, member);
    }
    expect_call(&mut it, "writer");
    let done = it.next().unwrap();
    assert_eq!(done.event, "done");
    assert!(it.next().is_none(), "nothing after done");
    team
}

#[test]
fn a_full_offline_run_streams_every_event_in_order() {
    let server = Server::start(&[]);
    let id =
        server.start_run(r#"{"task":"Compare B-trees and LSM-trees for a write-heavy workload"}"#);
    let mut stream = server.stream(&id, &[]);
    assert_eq!(stream.head.status, 200);
    assert_eq!(
        stream.head.header("content-type"),
        Some("text/event-stream")
    );
    assert_eq!(stream.head.header("cache-control"), Some("no-cache"));
    assert_eq!(stream.head.header("x-accel-buffering"), Some("no"));
    assert!(matches!(stream.next_item(), Some(Item::Retry(2000))));
    let hello = stream.next_event().unwrap();
    assert_eq!(hello.event, "connection");
    assert_eq!(hello.id, None);
    assert_eq!(hello.data["run_id"], id.as_str());
    assert_eq!(hello.data["resumed_from"], Value::Null);
    let events = stream.collect();
    let team = assert_event_order(&events);
    assert_eq!(
        team,
        ["researcher", "analyst"],
        "compare → researcher + analyst"
    );

    let done = &events.last().unwrap().data;
    assert_eq!(done["status"], "completed");
    let writer_text = text_of(&events, "writer");
    assert!(!writer_text.is_empty());
    assert_eq!(done["output"], writer_text.as_str());
    assert!(done["usage"]["output_tokens"].as_u64().unwrap() > 0);

    // The snapshot is exactly what the events said.
    let snap = server.get(&format!("/api/runs/{id}")).json();
    assert_eq!(snap["status"], "completed");
    assert_eq!(snap["output"], writer_text.as_str());
    assert_eq!(snap["last_event_id"], events.len());
    assert_eq!(snap["config"]["provider"], "offline");
    assert_eq!(snap["config"]["agents"]["writer"]["max_tokens"], 8192);
    assert_eq!(snap["plan"]["source"], "orchestrator");
    let states: Vec<(&str, &str)> = snap["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["name"].as_str().unwrap(), a["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        [
            ("orchestrator", "done"),
            ("researcher", "done"),
            ("coder", "skipped"),
            ("analyst", "done"),
            ("writer", "done")
        ]
    );
    let analyst = snap["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "analyst")
        .unwrap();
    assert_eq!(analyst["output"], text_of(&events, "analyst").as_str());
    assert!(snap["finished_at"].as_str().unwrap().ends_with('Z'));

    // The analyst saw the researcher's digest: the offline provider quotes its context.
    assert!(text_of(&events, "analyst").contains("from the Researcher"));

    let list = server.get("/api/runs").json();
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["status"], "completed");
}

#[test]
fn a_requested_team_skips_the_orchestrator() {
    let server = Server::start(&[]);
    let id = server.start_run(r#"{"task":"Anything","agents":["coder"]}"#);
    let events = server.stream(&id, &[]).collect();
    assert_eq!(events[0].event, "status", "{events:?}");
    assert_eq!(events[1].event, "plan");
    assert_eq!(events[1].data["source"], "request");
    assert_eq!(events[1].data["agents"], serde_json::json!(["coder"]));
    assert!(!events
        .iter()
        .any(|e| e.data["agent"] == "orchestrator" && e.event == "stream_start"));
    assert_eq!(events.last().unwrap().data["status"], "completed");
}

#[test]
fn resuming_with_last_event_id_has_no_gap_and_no_duplicate() {
    let server = Server::start(&[("MESH_OFFLINE_DELAY_MS", "2")]);
    let id = server.start_run(r#"{"task":"Explain why LSM-trees suit write-heavy loads"}"#);
    let mut received: Vec<Ev> = Vec::new();
    // Three partial connections, each dropped after a few events, then one to the end.
    for (round, take) in [7usize, 40, 25].into_iter().enumerate() {
        let last = received.last().and_then(|e| e.id);
        let header = last.map(|l| l.to_string());
        let headers: Vec<(&str, &str)> = match &header {
            // Alternate between the header and the query parameter.
            Some(h) if round % 2 == 1 => vec![("Last-Event-ID", h.as_str())],
            _ => vec![],
        };
        let path = match (&header, round % 2) {
            (Some(h), 0) => format!("/api/stream/{id}?last_event_id={h}"),
            _ => format!("/api/stream/{id}"),
        };
        let mut s = server.stream_path(&path, &headers);
        let hello = s.next_event().unwrap();
        assert_eq!(hello.event, "connection");
        assert_eq!(
            hello.data["resumed_from"],
            last.map_or(Value::Null, Value::from)
        );
        for _ in 0..take {
            received.push(s.next_event().expect("run still going"));
        }
        drop(s);
    }
    let h = received.last().unwrap().id.unwrap().to_string();
    received.extend(server.stream(&id, &[("Last-Event-ID", &h)]).collect());
    assert_event_order(&received);
    let snap = server.get(&format!("/api/runs/{id}")).json();
    assert_eq!(snap["output"], text_of(&received, "writer").as_str());
}

#[test]
fn cancel_ends_the_run_within_a_second() {
    let server = Server::start(&[("MESH_OFFLINE_DELAY_MS", "20")]);
    let id = server.start_run(r#"{"task":"A long task"}"#);
    let mut s = server.stream(&id, &[]);
    // Wait until the orchestrator is streaming.
    while s.next_event().unwrap().event != "token" {}
    let started = Instant::now();
    let r = server.request("POST", &format!("/api/runs/{id}/cancel"), &[], b"");
    assert_eq!(r.status, 202);
    assert_eq!(r.json()["status"], "cancelling");
    let rest = s.collect();
    let elapsed = started.elapsed();
    let done = rest.last().unwrap();
    assert_eq!(done.event, "done");
    assert_eq!(done.data["status"], "cancelled");
    assert!(elapsed < Duration::from_secs(1), "cancel took {elapsed:?}");
    assert!(rest.iter().any(|e| e.event == "error"
        && e.data["kind"] == "cancelled"
        && e.data["agent"] == "orchestrator"));
    // Cancelling a finished run answers 200 with its status.
    let again = server.request("POST", &format!("/api/runs/{id}/cancel"), &[], b"");
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["status"], "cancelled");
    let snap = server.get(&format!("/api/runs/{id}")).json();
    assert_eq!(snap["status"], "cancelled");
    assert_eq!(snap["agents"][0]["state"], "failed");
    assert_eq!(snap["agents"][4]["state"], "skipped");
}

#[test]
fn a_run_nobody_follows_is_cancelled_after_the_grace_but_detach_keeps_it() {
    let server = Server::start(&[
        ("MESH_OFFLINE_DELAY_MS", "30"),
        ("MESH_DISCONNECT_GRACE_SECS", "1"),
    ]);
    let orphan = server.start_run(r#"{"task":"nobody watches this"}"#);
    let detached =
        server.start_run(r#"{"task":"a script polls this","detach":true,"agents":["researcher"]}"#);
    let watched = server.start_run(r#"{"task":"someone watches then leaves"}"#);
    let mut s = server.stream(&watched, &[]);
    s.next_event().unwrap();
    drop(s);

    let snap = server.wait_finished(&orphan, Duration::from_secs(5));
    assert_eq!(snap["status"], "cancelled");
    let snap = server.wait_finished(&watched, Duration::from_secs(5));
    assert_eq!(snap["status"], "cancelled");
    let snap = server.wait_finished(&detached, Duration::from_secs(60));
    assert_eq!(snap["status"], "completed");
}

#[test]
fn finished_runs_are_evicted_after_the_ttl() {
    let server = Server::start(&[("MESH_RUN_TTL_SECS", "1")]);
    let id = server.start_run(r#"{"task":"short"}"#);
    let events = server.stream(&id, &[]).collect();
    assert_eq!(events.last().unwrap().event, "done");
    assert_eq!(server.get(&format!("/api/runs/{id}")).status, 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = server.get(&format!("/api/runs/{id}"));
        if r.status == 404 {
            assert_eq!(r.error_code(), "not_found");
            break;
        }
        assert!(Instant::now() < deadline, "run not evicted");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(server.get(&format!("/api/stream/{id}")).status, 404);
    assert_eq!(server.get("/api/runs").json(), serde_json::json!([]));
}

#[test]
fn the_active_run_limit_answers_429_with_retry_after() {
    let server = Server::start(&[
        ("MESH_MAX_ACTIVE_RUNS", "2"),
        ("MESH_OFFLINE_DELAY_MS", "50"),
    ]);
    let a = server.start_run(r#"{"task":"one","detach":true}"#);
    server.start_run(r#"{"task":"two","detach":true}"#);
    let r = server.post_json("/api/run", r#"{"task":"three"}"#);
    assert_eq!(r.status, 429);
    assert_eq!(r.error_code(), "too_many_runs");
    assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() > 0);
    assert_eq!(server.get("/health").json()["active_runs"], 2);
    server.request("POST", &format!("/api/runs/{a}/cancel"), &[], b"");
    server.wait_finished(&a, Duration::from_secs(5));
    server.start_run(r#"{"task":"three, now that a slot is free","detach":true}"#);
}

#[test]
fn at_most_sixteen_subscribers_per_run() {
    let server = Server::start(&[("MESH_OFFLINE_DELAY_MS", "50")]);
    let id = server.start_run(r#"{"task":"popular"}"#);
    let mut streams: Vec<_> = (0..16).map(|_| server.stream(&id, &[])).collect();
    for s in &mut streams {
        assert_eq!(s.head.status, 200);
        assert_eq!(s.next_event().unwrap().event, "connection");
    }
    let r = server.get(&format!("/api/stream/{id}"));
    assert_eq!(r.status, 429);
    drop(streams.pop());
    // A slot frees when a subscriber leaves (the server notices the closed socket).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut s = server.stream(&id, &[]);
        if s.head.status == 200 {
            assert_eq!(s.next_event().unwrap().event, "connection");
            break;
        }
        assert!(Instant::now() < deadline, "slot never freed");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn forty_concurrent_runs_do_not_cross_talk() {
    let server = Server::start(&[("MESH_OFFLINE_DELAY_MS", "1")]);
    let server = std::sync::Arc::new(server);
    let handles: Vec<_> = (0..40)
        .map(|i| {
            let server = server.clone();
            std::thread::spawn(move || {
                let marker = format!("marker{i:02}x");
                let id = server.start_run(&format!(r#"{{"task":"Compare options for {marker}"}}"#));
                let events = server.stream(&id, &[]).collect();
                assert_event_order(&events);
                let all_text: String = events
                    .iter()
                    .filter(|e| e.event == "token")
                    .map(|e| e.data["text"].as_str().unwrap())
                    .collect();
                assert!(all_text.contains(&marker), "run {i} lost its own task");
                for j in (0..40).filter(|j| *j != i) {
                    assert!(
                        !all_text.contains(&format!("marker{j:02}x")),
                        "run {i} saw run {j}'s text"
                    );
                }
                assert_eq!(
                    server.get(&format!("/api/runs/{id}")).json()["output"],
                    text_of(&events, "writer").as_str()
                );
            })
        })
        .collect();
    for h in handles {
        h.join().expect("run thread");
    }
    assert_eq!(server.get("/api/runs").json().as_array().unwrap().len(), 40);
}

#[test]
fn keep_alive_comments_flow_during_silence() {
    // One token every 20 s: after the first events the stream is silent, so the
    // server must send a keep-alive comment after 15 s.
    let server = Server::start(&[("MESH_OFFLINE_DELAY_MS", "20000")]);
    let id = server.start_run(r#"{"task":"slow"}"#);
    let mut s = server.stream(&id, &[]);
    let started = Instant::now();
    loop {
        match s.next_item().expect("stream open") {
            Item::Comment(c) => {
                assert_eq!(c, "keep-alive");
                assert!(
                    started.elapsed() >= Duration::from_secs(14),
                    "too early: {:?}",
                    started.elapsed()
                );
                break;
            }
            Item::Event(e) => assert_ne!(e.event, "token", "no token expected before 20 s"),
            Item::Retry(r) => assert_eq!(r, 2000),
        }
    }
}
