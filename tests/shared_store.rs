//! Several instances on one Redis (`MESH_REDIS_URL`, a real redis-server): a run
//! started on one is streamed, resumed, inspected and cancelled through another; a
//! killed owner's run ends `failed`; finished runs outlive every instance; Redis
//! going away mid-run loses nothing the pipeline produced; a follow-up continues a
//! run whose instance has stopped. The run-lifecycle and follow-up scenarios across
//! two instances are tests/runs_redis.rs.

mod support;

use std::time::{Duration, Instant};
use support::redis::RedisServer;
use support::{Ev, Server};

fn instance(redis: &RedisServer, extra: &[(&str, &str)]) -> Server {
    let url = redis.url(0);
    let mut env = vec![("MESH_REDIS_URL", url.as_str())];
    env.extend_from_slice(extra);
    Server::start(&env)
}

/// The numbered events of a stream until `n` were read (the greeting left out).
fn read_events(stream: &mut support::SseStream, n: usize) -> Vec<Ev> {
    let mut out = Vec::new();
    while out.len() < n {
        let e = stream.next_event().expect("stream ended early");
        if e.id.is_some() {
            out.push(e);
        }
    }
    out
}

#[test]
fn a_run_started_on_one_instance_is_streamed_resumed_and_cancelled_through_another() {
    let redis = RedisServer::start();
    // A short disconnect grace: the run has no subscriber on A, only on B, and must
    // not be cancelled for that.
    let slow = [
        ("MESH_OFFLINE_DELAY_MS", "40"),
        ("MESH_DISCONNECT_GRACE_SECS", "3"),
    ];
    let a = instance(&redis, &slow);
    let b = instance(&redis, &slow);
    let id = a.start_run(r#"{"task":"Compare B-trees and LSM-trees"}"#);

    let mut first = b.stream(&id, &[]);
    assert_eq!(first.head.status, 200);
    let mut seen = read_events(&mut first, 10);
    drop(first);

    // Past the grace with nobody on A: B's subscriber keeps the run going.
    let mut resumed = b.stream(&id, &[("Last-Event-ID", "10")]);
    let hello = resumed.next_event().unwrap();
    assert_eq!(hello.data["resumed_from"], 10, "{hello:?}");
    seen.extend(read_events(&mut resumed, 30));
    std::thread::sleep(Duration::from_millis(3500));
    seen.extend(read_events(&mut resumed, 5));
    assert!(seen.iter().all(|e| e.event != "done"), "run ended early");

    let snap = b.get(&format!("/api/runs/{id}")).json();
    assert_eq!(snap["status"], "running");
    assert_eq!(snap["config"]["provider"], "offline");
    let listed = b.get("/api/runs").json();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == id.as_str()),
        "{listed}"
    );

    let asked = Instant::now();
    let r = b.post_json(&format!("/api/runs/{id}/cancel"), "{}");
    assert_eq!(r.status, 202, "{}", r.text());
    let rest = resumed.collect();
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "{:?}",
        asked.elapsed()
    );
    let done = rest.last().unwrap();
    assert_eq!(done.event, "done");
    assert_eq!(done.data["status"], "cancelled");
    seen.extend(rest);

    // No gap, no repeat, and exactly the log of the instance that ran it.
    for (i, e) in seen.iter().enumerate() {
        assert_eq!(e.id, Some(i as u64 + 1), "{e:?}");
    }
    let on_a = a.stream(&id, &[]).collect();
    assert_eq!(on_a, seen);
    let snap_b = b.wait_finished(&id, Duration::from_secs(5));
    let snap_a = a.get(&format!("/api/runs/{id}")).json();
    assert_eq!(snap_b["status"], "cancelled");
    assert_eq!(snap_b["last_event_id"], snap_a["last_event_id"]);
    assert_eq!(snap_b["agents"], snap_a["agents"]);
}

#[test]
fn killing_the_instance_running_a_run_ends_it_failed_on_another() {
    let redis = RedisServer::start();
    let slow = [("MESH_OFFLINE_DELAY_MS", "40")];
    let mut a = instance(&redis, &slow);
    let b = instance(&redis, &slow);
    let id = a.start_run(r#"{"task":"Explain why the sky is blue","detach":true}"#);
    let mut stream = b.stream(&id, &[]);
    read_events(&mut stream, 5);
    a.signal("KILL");
    // Killed by a signal: no exit code, and nothing listens any more.
    let _ = a.wait_exit(Duration::from_secs(5));
    assert!(
        std::net::TcpStream::connect(a.addr).is_err(),
        "A still serves"
    );
    let killed = Instant::now();
    let rest = stream.collect();
    assert!(
        killed.elapsed() < Duration::from_secs(10),
        "{:?}",
        killed.elapsed()
    );
    let n = rest.len();
    assert!(n >= 2, "{rest:?}");
    assert_eq!(rest[n - 2].event, "error");
    assert_eq!(
        rest[n - 2].data["message"],
        "the instance running it stopped"
    );
    assert_eq!(rest[n - 1].event, "done");
    assert_eq!(rest[n - 1].data["status"], "failed");
    let snap = b.get(&format!("/api/runs/{id}")).json();
    assert_eq!(snap["status"], "failed");
    let listed = b.get("/api/runs").json();
    let row = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id.as_str())
        .cloned()
        .unwrap();
    assert_eq!(row["status"], "failed");
}

#[test]
fn a_finished_run_outlives_a_restart_of_every_instance() {
    let redis = RedisServer::start();
    let (id, events) = {
        let mut a = instance(&redis, &[]);
        let mut b = instance(&redis, &[]);
        let id = a.start_run(r#"{"task":"Write a bash script that rotates logs"}"#);
        let events = a.stream(&id, &[]).collect();
        assert_eq!(events.last().unwrap().data["status"], "completed");
        // SIGTERM: the drain writes the last events before the exit.
        for s in [&mut a, &mut b] {
            s.signal("TERM");
            assert_eq!(s.wait_exit(Duration::from_secs(10)), Some(0));
        }
        (id, events)
    };
    let c = instance(&redis, &[]);
    let d = instance(&redis, &[]);
    let listed = c.get("/api/runs").json();
    let row = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("{id} not listed: {listed}"));
    assert_eq!(row["status"], "completed");
    assert!(row["finished_at"].is_string());
    let snap = d.get(&format!("/api/runs/{id}")).json();
    assert_eq!(snap["status"], "completed");
    assert_eq!(snap["output"], events.last().unwrap().data["output"]);
    assert_eq!(snap["last_event_id"], events.len());
    assert_eq!(d.stream(&id, &[]).collect(), events);
    let r = d.get("/api/runs/0123456789abcdef0123456789abcdef");
    assert_eq!(r.status, 404);
}

/// Load-balanced follow-ups: the next turn lands on another instance, after the one
/// that ran the first turn has gone (a deploy, a scale-down). The parent is found in
/// Redis, its turn reaches the prompts, and the thread and list name it.
#[test]
fn a_follow_up_continues_a_run_whose_instance_has_since_stopped() {
    let redis = RedisServer::start();
    let mut a = instance(&redis, &[]);
    let b = instance(&redis, &[]);
    let first = a.start_run(r#"{"task":"Explain the zebra crossing rules"}"#);
    let events = a.stream(&first, &[]).collect();
    assert_eq!(events.last().unwrap().data["status"], "completed");
    a.signal("TERM");
    assert_eq!(a.wait_exit(Duration::from_secs(10)), Some(0));

    let body = format!(r#"{{"task":"And for cyclists?","parent":"{first}"}}"#);
    let second = b.start_run(&body);
    let events = b.stream(&second, &[]).collect();
    let done = &events.last().unwrap().data;
    assert_eq!(done["status"], "completed", "{events:?}");
    let output = done["output"].as_str().unwrap();
    assert!(
        output.contains("asked \"Explain the zebra crossing rules\""),
        "{output}"
    );
    assert!(
        output.contains("delivered \"# Explain the zebra"),
        "{output}"
    );
    let snap = b.get(&format!("/api/runs/{second}")).json();
    assert_eq!(snap["parent"], first.as_str());
    assert_eq!(
        snap["thread"],
        serde_json::json!([
            {"id": first, "task": "Explain the zebra crossing rules", "status": "completed"},
            {"id": second, "task": "And for cyclists?", "status": "completed"},
        ])
    );
    let listed = b.get("/api/runs").json();
    let row = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == second.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("{second} not listed: {listed}"));
    assert_eq!(row["parent"], first.as_str());
}

#[test]
fn an_unreachable_redis_at_startup_is_exit_2_naming_the_variable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://user:very-secret-pw@127.0.0.1:{port}");
    let out = support::command(&[("MESH_REDIS_URL", &url)])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("MESH_REDIS_URL"), "{err}");
    assert!(!err.contains("very-secret-pw"), "{err}");
}
