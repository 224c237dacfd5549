//! The run-lifecycle scenarios over real sockets, passed by every run store: the exact
//! event order, resume without gap or duplicate, cancellation, the disconnect grace,
//! detach, eviction, limits, many runs at once, keep-alive, a parallel plan.
//!
//! How the suite is shared: this file is a module of each test crate that runs it
//! (`#[path = "scenarios/run_store.rs"] mod run_store;`): tests/runs.rs on the memory
//! store, tests/runs_redis.rs on the Redis store. It gets its servers from
//! `crate::instances(env)`, which each crate defines for its store (see
//! tests/support/instances.rs): runs start on `origin` and are streamed, inspected and
//! cancelled through `viewer()`, the same server on the memory store and another
//! instance on the same Redis, so the Redis suite crosses instances in every scenario
//! while the memory suite is exactly the single-server one. A `#[path]` module rather
//! than `include!` or a macro: rustfmt and clippy check it like any other test code,
//! a failure points into plain functions, and the names read `run_store::<scenario>`
//! in both binaries (the binary says which store).
//!
//! Where a scenario means something more on a shared store, its comment says what,
//! and the assertion covers every instance (`all()`), which on the memory store is the
//! one server.

use crate::instances;
use crate::support::{text_of, Ev, Item, Server, SseStream};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

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

fn first_event(events: &[Ev], event: &str, agent: &str) -> usize {
    events
        .iter()
        .position(|e| e.event == event && e.data["agent"] == agent)
        .unwrap_or_else(|| panic!("no {event} of {agent}: {events:?}"))
}

/// Shared store: the viewer, which did not run the pipeline, streams the whole log
/// from the store, and every instance has the same snapshot and list.
#[test]
fn a_full_offline_run_streams_every_event_in_order() {
    let t = instances(&[]);
    let id = t
        .origin
        .start_run(r#"{"task":"Compare B-trees and LSM-trees for a write-heavy workload"}"#);
    let mut stream = t.viewer().stream(&id, &[]);
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
    // The analyst saw the researcher's digest: the offline provider quotes its context.
    assert!(text_of(&events, "analyst").contains("from the Researcher"));

    for server in t.all() {
        // A replay of the finished run is the live stream, event for event.
        assert_eq!(server.stream(&id, &[]).collect(), events);

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

        let list = server.get("/api/runs").json();
        assert_eq!(list[0]["id"], id.as_str());
        assert_eq!(list[0]["status"], "completed");
        assert_eq!(list[0]["finished_at"], snap["finished_at"]);
    }
}

#[test]
fn a_requested_team_skips_the_orchestrator() {
    let t = instances(&[]);
    let id = t
        .origin
        .start_run(r#"{"task":"Anything","agents":["coder"]}"#);
    let events = t.viewer().stream(&id, &[]).collect();
    assert_eq!(events[0].event, "status", "{events:?}");
    assert_eq!(events[1].event, "plan");
    assert_eq!(events[1].data["source"], "request");
    assert_eq!(events[1].data["agents"], json!(["coder"]));
    assert!(!events
        .iter()
        .any(|e| e.event == "stream_start" && e.data["agent"] == "orchestrator"));
    assert_eq!(events.last().unwrap().data["status"], "completed");
}

/// Shared store: the connections alternate between the instances (origin, viewer,
/// origin, viewer), so each resume point was issued by the other one.
#[test]
fn resuming_with_last_event_id_has_no_gap_and_no_duplicate() {
    let t = instances(&[("MESH_OFFLINE_DELAY_MS", "2")]);
    let id = t
        .origin
        .start_run(r#"{"task":"Explain why LSM-trees suit write-heavy loads"}"#);
    let server_of = |round: usize| {
        if round.is_multiple_of(2) {
            &t.origin
        } else {
            t.viewer()
        }
    };
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
        let mut s = server_of(round).stream_path(&path, &headers);
        assert_eq!(s.head.status, 200, "round {round} after {last:?}");
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
    let mut last = server_of(3).stream(&id, &[("Last-Event-ID", &h)]);
    assert_eq!(last.head.status, 200);
    received.extend(last.collect());
    assert_event_order(&received);
    for server in t.all() {
        let snap = server.get(&format!("/api/runs/{id}")).json();
        assert_eq!(snap["output"], text_of(&received, "writer").as_str());
    }
}

/// Shared store: the cancel is asked of the viewer, which sends it to the origin
/// running the pipeline; the viewer's stream ends with `done` `cancelled` all the same.
#[test]
fn cancel_ends_the_run_within_a_second() {
    let t = instances(&[("MESH_OFFLINE_DELAY_MS", "20")]);
    let id = t.origin.start_run(r#"{"task":"A long task"}"#);
    let mut s = t.viewer().stream(&id, &[]);
    // Wait until the orchestrator is streaming.
    while s.next_event().unwrap().event != "token" {}
    let started = Instant::now();
    let r = t
        .viewer()
        .request("POST", &format!("/api/runs/{id}/cancel"), &[], b"");
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
    for server in t.all() {
        // Cancelling a finished run answers 200 with its status.
        let again = server.request("POST", &format!("/api/runs/{id}/cancel"), &[], b"");
        assert_eq!(again.status, 200);
        assert_eq!(again.json()["status"], "cancelled");
        let snap = server.get(&format!("/api/runs/{id}")).json();
        assert_eq!(snap["status"], "cancelled");
        assert_eq!(snap["agents"][0]["state"], "failed");
        assert_eq!(snap["agents"][4]["state"], "skipped");
    }
}

/// Shared store: the watched run's subscriber is on the viewer; once it leaves, the
/// origin cancels the run as it would for a subscriber of its own, after looking
/// again once the lease ticks could have reported a late one (2.5 s more; a viewer
/// that stays keeps the run going even with a 1 s grace: tests/shared_store.rs).
#[test]
fn a_run_nobody_follows_is_cancelled_after_the_grace_but_detach_keeps_it() {
    let t = instances(&[
        ("MESH_OFFLINE_DELAY_MS", "30"),
        ("MESH_DISCONNECT_GRACE_SECS", "1"),
    ]);
    let orphan = t.origin.start_run(r#"{"task":"nobody watches this"}"#);
    let detached = t
        .origin
        .start_run(r#"{"task":"a script polls this","detach":true,"agents":["researcher"]}"#);
    let watched = t
        .origin
        .start_run(r#"{"task":"someone watches then leaves"}"#);
    let mut s = t.viewer().stream(&watched, &[]);
    s.next_event().unwrap();
    drop(s);

    let viewer = t.viewer();
    let snap = viewer.wait_finished(&orphan, Duration::from_secs(5));
    assert_eq!(snap["status"], "cancelled");
    let snap = viewer.wait_finished(&watched, Duration::from_secs(5));
    assert_eq!(snap["status"], "cancelled");
    let snap = viewer.wait_finished(&detached, Duration::from_secs(60));
    assert_eq!(snap["status"], "completed");
}

/// Shared store: the run expires from Redis `MESH_RUN_TTL_SECS` after it finished, and
/// then every instance answers 404 for it, including one that had streamed it.
#[test]
fn finished_runs_are_evicted_after_the_ttl() {
    let t = instances(&[("MESH_RUN_TTL_SECS", "1")]);
    let id = t.origin.start_run(r#"{"task":"short"}"#);
    let events = t.viewer().stream(&id, &[]).collect();
    assert_eq!(events.last().unwrap().event, "done");
    for server in t.all() {
        assert_eq!(server.get(&format!("/api/runs/{id}")).status, 200);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    for server in t.all() {
        loop {
            let r = server.get(&format!("/api/runs/{id}"));
            if r.status == 404 {
                assert_eq!(r.error_code(), "not_found");
                break;
            }
            assert!(Instant::now() < deadline, "run not evicted");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    for server in t.all() {
        assert_eq!(server.get(&format!("/api/stream/{id}")).status, 404);
        assert_eq!(server.get(&format!("/api/runs/{id}")).status, 404);
        assert_eq!(server.get("/api/runs").json(), json!([]));
    }
}

/// The limit is on the pipelines a process runs (the origin's); the cancel that frees
/// a slot goes through the viewer.
#[test]
fn the_active_run_limit_answers_429_with_retry_after() {
    let t = instances(&[
        ("MESH_MAX_ACTIVE_RUNS", "2"),
        ("MESH_OFFLINE_DELAY_MS", "50"),
    ]);
    let a = t.origin.start_run(r#"{"task":"one","detach":true}"#);
    t.origin.start_run(r#"{"task":"two","detach":true}"#);
    let r = t.origin.post_json("/api/run", r#"{"task":"three"}"#);
    assert_eq!(r.status, 429);
    assert_eq!(r.error_code(), "too_many_runs");
    assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() > 0);
    assert_eq!(t.origin.get("/health").json()["active_runs"], 2);
    t.viewer()
        .request("POST", &format!("/api/runs/{a}/cancel"), &[], b"");
    t.viewer().wait_finished(&a, Duration::from_secs(5));
    t.origin
        .start_run(r#"{"task":"three, now that a slot is free","detach":true}"#);
}

/// Shared store: the limit is per instance (each counts its own subscribers), so
/// every instance takes sixteen and refuses the seventeenth.
#[test]
fn at_most_sixteen_subscribers_per_run() {
    let t = instances(&[("MESH_OFFLINE_DELAY_MS", "50")]);
    let id = t.origin.start_run(r#"{"task":"popular"}"#);
    let mut per_server: Vec<Vec<SseStream>> = Vec::new();
    for server in t.all() {
        let mut streams: Vec<_> = (0..16).map(|_| server.stream(&id, &[])).collect();
        for s in &mut streams {
            assert_eq!(s.head.status, 200);
            assert_eq!(s.next_event().unwrap().event, "connection");
        }
        let r = server.get(&format!("/api/stream/{id}"));
        assert_eq!(r.status, 429);
        assert_eq!(r.error_code(), "too_many_subscribers");
        assert!(r.header("retry-after").is_some());
        per_server.push(streams);
    }
    for (server, streams) in t.all().into_iter().zip(&mut per_server) {
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
}

/// Shared store: half the runs are streamed from the origin, half from the viewer,
/// which follows them all at once.
#[test]
fn forty_concurrent_runs_do_not_cross_talk() {
    let t = std::sync::Arc::new(instances(&[("MESH_OFFLINE_DELAY_MS", "1")]));
    let handles: Vec<_> = (0..40u32)
        .map(|i| {
            let t = t.clone();
            std::thread::spawn(move || {
                let (watch, other): (&Server, &Server) = if i.is_multiple_of(2) {
                    (&t.origin, t.viewer())
                } else {
                    (t.viewer(), &t.origin)
                };
                let marker = format!("marker{i:02}x");
                let id = t
                    .origin
                    .start_run(&format!(r#"{{"task":"Compare options for {marker}"}}"#));
                let events = watch.stream(&id, &[]).collect();
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
                    watch.get(&format!("/api/runs/{id}")).json()["output"],
                    text_of(&events, "writer").as_str()
                );
                assert_eq!(
                    other.wait_finished(&id, Duration::from_secs(20))["output"],
                    text_of(&events, "writer").as_str()
                );
            })
        })
        .collect();
    for h in handles {
        h.join().expect("run thread");
    }
    for server in t.all() {
        assert_eq!(server.get("/api/runs").json().as_array().unwrap().len(), 40);
    }
}

/// Shared store: the viewer's stream, fed from Redis, keeps itself alive the same way.
#[test]
fn keep_alive_comments_flow_during_silence() {
    // One token every 20 s: after the first events the stream is silent, so the
    // server must send a keep-alive comment after 15 s.
    let t = instances(&[("MESH_OFFLINE_DELAY_MS", "20000")]);
    let id = t.origin.start_run(r#"{"task":"slow"}"#);
    let mut s = t.viewer().stream(&id, &[]);
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

/// The parallel schedule's plan (`schedule`, `after`, `stages`) and the frozen
/// `schedule` are part of the stored run: the viewer's stream and every snapshot have
/// them. The offline plan puts the coder and the analyst after the researcher.
#[test]
fn a_parallel_run_s_plan_and_schedule_reach_every_instance() {
    let t = instances(&[]);
    let id = t
        .origin
        .start_run(r#"{"task":"Write code to compare two sorting options","schedule":"parallel"}"#);
    let events = t.viewer().stream(&id, &[]).collect();
    assert_eq!(
        events.last().unwrap().data["status"],
        "completed",
        "{events:?}"
    );
    let plan = &events.iter().find(|e| e.event == "plan").unwrap().data;
    assert_eq!(plan["schedule"], "parallel");
    assert_eq!(
        plan["after"],
        json!({"researcher":[],"coder":["researcher"],"analyst":["researcher"]})
    );
    assert_eq!(
        plan["stages"],
        json!([["researcher"], ["coder", "analyst"]])
    );
    let researcher_end = first_event(&events, "stream_end", "researcher");
    for dependant in ["coder", "analyst"] {
        assert!(first_event(&events, "stream_start", dependant) > researcher_end);
    }
    for server in t.all() {
        let snap = server.get(&format!("/api/runs/{id}")).json();
        assert_eq!(snap["config"]["schedule"], "parallel");
        assert_eq!(snap["plan"]["after"], plan["after"]);
        assert_eq!(snap["plan"]["stages"], plan["stages"]);
    }
}
