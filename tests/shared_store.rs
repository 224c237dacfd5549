//! Several instances on one Redis (`MESH_REDIS_URL`, a real redis-server): a run
//! started on one is streamed, resumed, inspected and cancelled through another; a
//! killed owner's run ends `failed`; finished runs outlive every instance; Redis
//! crashing mid-run, an outage past the bound, a partition of one instance and a
//! Redis back empty each lose nothing acknowledged and end a run exactly once;
//! `rediss://` with a private CA; a follow-up continues a run whose instance has
//! stopped. The run-lifecycle and follow-up scenarios across two instances are
//! tests/runs_redis.rs.

mod support;

use std::time::{Duration, Instant};
use support::cut_proxy::CutProxy;
use support::redis::RedisServer;
use support::{Ev, Server};

fn instance(redis: &RedisServer, extra: &[(&str, &str)]) -> Server {
    let url = redis.url(0);
    let mut env = vec![("MESH_REDIS_URL", url.as_str())];
    env.extend_from_slice(extra);
    Server::start(&env)
}

/// The run's row in a server's `GET /api/runs` (it must be there).
fn listed_row(server: &Server, id: &str) -> serde_json::Value {
    let listed = server.get("/api/runs").json();
    listed
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("{id} not listed: {listed}"))
}

/// The stream ended `error` (its message starting with `message`), then `done`
/// `failed`: how a store ends a run it cannot go on with.
fn assert_ends_failed(events: &[Ev], message: &str) {
    let n = events.len();
    assert!(n >= 2, "{events:?}");
    assert_eq!(events[n - 2].event, "error", "{events:?}");
    let said = events[n - 2].data["message"].as_str().unwrap_or_default();
    assert!(said.starts_with(message), "{said:?}, not {message:?}");
    assert_eq!(events[n - 1].event, "done");
    assert_eq!(events[n - 1].data["status"], "failed");
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
    assert_ends_failed(&rest, "the instance running it stopped");
    let snap = b.get(&format!("/api/runs/{id}")).json();
    assert_eq!(snap["status"], "failed");
    let row = listed_row(&b, &id);
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
    let row = listed_row(&c, &id);
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
    let row = listed_row(&b, &second);
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

/// A gauge's value in the server's `/metrics`.
fn gauge(server: &Server, name: &str) -> u64 {
    let text = server.get("/metrics").text();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

/// Asks for a new run until the store takes it (what a client does with the
/// `Retry-After` of a 503); the answer to every refused attempt is checked.
fn start_run_when_the_store_is_back(server: &Server, body: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let r = server.post_json("/api/run", body);
        if r.status == 201 {
            return r.json()["id"].as_str().unwrap().to_string();
        }
        assert_eq!(r.status, 503, "{}", r.text());
        assert_eq!(
            r.json()["error"]["code"],
            "store_unavailable",
            "{}",
            r.text()
        );
        assert!(Instant::now() < deadline, "the store did not come back");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn redis_going_away_mid_run_loses_nothing_and_new_runs_wait_for_it() {
    let mut redis = RedisServer::start_durable();
    let slow = [("MESH_OFFLINE_DELAY_MS", "25")];
    let a = instance(&redis, &slow);
    let b = instance(&redis, &slow);
    let id = a.start_run(r#"{"task":"Explain how a Bloom filter works","detach":true}"#);
    let mut on_b = b.stream(&id, &[]);
    let mut on_a = a.stream(&id, &[]);
    let mut seen_on_b = read_events(&mut on_b, 10);
    read_events(&mut on_a, 10);

    redis.stop();
    let down = Instant::now();
    // Subscribers on the running instance read its own log: the run goes on.
    let during = read_events(&mut on_a, 40);
    assert!(during.iter().all(|e| e.event != "error"), "{during:?}");
    // New runs are refused with a clear code on both instances, and so is the list.
    for server in [&a, &b] {
        let r = server.post_json("/api/run", r#"{"task":"Not now"}"#);
        assert_eq!(r.status, 503, "{}", r.text());
        assert_eq!(r.json()["error"]["code"], "store_unavailable");
        assert_eq!(r.header("retry-after"), Some("5"));
        assert!(!r.text().contains("very-secret"), "{}", r.text());
    }
    assert_eq!(b.get("/api/runs").status, 503);
    assert_eq!(gauge(&a, "agent_mesh_store_writes_failing"), 1);
    assert!(gauge(&a, "agent_mesh_store_unwritten_events") > 0);
    // Longer than a lease: when Redis is back every lease has lapsed, and B must
    // still not end a run whose instance is alive.
    std::thread::sleep(Duration::from_secs(4).saturating_sub(down.elapsed()));
    redis.restart();

    let rest = on_b.collect();
    seen_on_b.extend(rest);
    let done = seen_on_b.last().unwrap();
    assert_eq!(done.event, "done", "{done:?}");
    assert_eq!(done.data["status"], "completed", "{done:?}");
    assert!(
        seen_on_b.iter().all(|e| e.event != "error"),
        "an error reached B: {:?}",
        seen_on_b.iter().find(|e| e.event == "error")
    );
    for (i, e) in seen_on_b.iter().enumerate() {
        assert_eq!(e.id, Some(i as u64 + 1), "{e:?}");
    }
    let whole_on_a = a.stream(&id, &[]).collect();
    assert_eq!(whole_on_a, seen_on_b);
    // Everything reached Redis itself: an instance started now reads it all there.
    let c = instance(&redis, &[]);
    assert_eq!(c.stream(&id, &[]).collect(), whole_on_a);
    assert_eq!(gauge(&a, "agent_mesh_store_unwritten_events"), 0);
    assert_eq!(gauge(&a, "agent_mesh_store_writes_failing"), 0);

    let body = r#"{"task":"Now again"}"#;
    for server in [&a, &b] {
        let id = start_run_when_the_store_is_back(server, body, Duration::from_secs(10));
        let end = server.stream(&id, &[]).collect();
        assert_eq!(end.last().unwrap().data["status"], "completed");
    }
}

#[test]
fn a_pipeline_cut_off_from_redis_past_the_bound_ends_failed_and_that_end_is_stored() {
    let mut redis = RedisServer::start_durable();
    let a = instance(
        &redis,
        &[
            ("MESH_OFFLINE_DELAY_MS", "25"),
            ("MESH_REDIS_OUTAGE_SECS", "2"),
        ],
    );
    let id = a.start_run(r#"{"task":"Summarise the CAP theorem"}"#);
    let mut on_a = a.stream(&id, &[]);
    read_events(&mut on_a, 10);
    redis.stop();
    let down = Instant::now();
    let rest = on_a.collect();
    let ended = down.elapsed();
    assert!(
        ended >= Duration::from_secs(2) && ended < Duration::from_secs(5),
        "{ended:?}"
    );
    assert_ends_failed(&rest, "the run store is unreachable");
    let whole_on_a = a.stream(&id, &[]).collect();

    // The end, and everything before it, is written once Redis is back.
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    while gauge(&a, "agent_mesh_store_unwritten_events") > 0 {
        assert!(Instant::now() < deadline, "A never flushed");
        std::thread::sleep(Duration::from_millis(50));
    }
    let b = instance(&redis, &[]);
    let snap = b.get(&format!("/api/runs/{id}")).json();
    assert_eq!(snap["status"], "failed", "{snap}");
    assert_eq!(b.stream(&id, &[]).collect(), whole_on_a);
}

#[test]
fn an_instance_cut_off_from_redis_loses_its_run_to_another_and_the_run_ends_once() {
    let redis = RedisServer::start();
    let proxy = CutProxy::start(([127, 0, 0, 1], redis.port).into());
    let through_proxy = proxy.url(0);
    let a = Server::start(&[
        ("MESH_REDIS_URL", through_proxy.as_str()),
        ("MESH_OFFLINE_DELAY_MS", "50"),
    ]);
    let b = instance(&redis, &[("MESH_OFFLINE_DELAY_MS", "50")]);
    let id = a.start_run(r#"{"task":"Design a rate limiter","detach":true}"#);
    let mut on_b = b.stream(&id, &[]);
    let mut on_a = a.stream(&id, &[]);
    let mut seen_on_b = read_events(&mut on_b, 10);
    read_events(&mut on_a, 10);

    // Only A loses Redis: to B, A is gone, and B ends the run for its clients.
    proxy.cut();
    let cut = Instant::now();
    let rest = on_b.collect();
    assert!(
        cut.elapsed() < Duration::from_secs(12),
        "{:?}",
        cut.elapsed()
    );
    assert_ends_failed(&rest, "the instance running it stopped");
    seen_on_b.extend(rest);
    // A, cut off, has kept its own subscribers going meanwhile.
    let more = read_events(&mut on_a, 5);
    assert!(more.iter().all(|e| e.event != "done"), "{more:?}");

    // Back in touch, A finds the run ended and stops spending on it; whatever it
    // buffered is refused by the ended stream, so the run ends exactly once.
    proxy.mend();
    let mended = Instant::now();
    let rest_on_a = on_a.collect();
    assert!(
        mended.elapsed() < Duration::from_secs(5),
        "{:?}",
        mended.elapsed()
    );
    assert_eq!(rest_on_a.last().unwrap().data["status"], "cancelled");
    let deadline = Instant::now() + Duration::from_secs(10);
    while gauge(&a, "agent_mesh_store_unwritten_events") > 0 {
        assert!(Instant::now() < deadline, "A never drained its queue");
        std::thread::sleep(Duration::from_millis(50));
    }
    let c = instance(&redis, &[]);
    assert_eq!(c.stream(&id, &[]).collect(), seen_on_b);
    assert_eq!(c.get(&format!("/api/runs/{id}")).json()["status"], "failed");
    let row = listed_row(&c, &id);
    assert_eq!(row["status"], "failed");
}

#[test]
fn a_redis_that_comes_back_empty_gets_the_running_run_back_whole() {
    // No persistence: a restart loses every key, as on a managed tier without disk.
    let mut redis = RedisServer::start();
    let slow = [("MESH_OFFLINE_DELAY_MS", "25")];
    let a = instance(&redis, &slow);
    let b = instance(&redis, &slow);
    let id = a.start_run(r#"{"task":"Explain consistent hashing","detach":true}"#);
    let mut on_b = b.stream(&id, &[]);
    let mut seen_on_b = read_events(&mut on_b, 20);
    redis.restart();
    // B's copy picks up where it was once A has written the run again.
    seen_on_b.extend(on_b.collect());
    let done = seen_on_b.last().unwrap();
    assert_eq!(done.data["status"], "completed", "{done:?}");
    for (i, e) in seen_on_b.iter().enumerate() {
        assert_eq!(e.id, Some(i as u64 + 1), "{e:?}");
    }
    let whole_on_a = a.stream(&id, &[]).collect();
    assert_eq!(whole_on_a, seen_on_b);
    // Redis has it all again, metadata and list entry included.
    let c = instance(&redis, &[]);
    assert_eq!(c.stream(&id, &[]).collect(), whole_on_a);
    let snap = c.get(&format!("/api/runs/{id}")).json();
    assert_eq!(snap["status"], "completed");
    assert_eq!(snap["task"], "Explain consistent hashing");
    let row = listed_row(&c, &id);
    assert_eq!(row["status"], "completed");
}

#[test]
fn rediss_with_a_private_ca_and_a_password_shares_runs_and_never_shows_the_password() {
    let certs = support::certs::localhost();
    let password = "kv-Secret-8d1f";
    let redis = RedisServer::start_tls(&certs, password);
    let dir = std::env::temp_dir().join(format!("mesh-rediss-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &certs.ca_pem).unwrap();
    let ca = ca.to_str().unwrap();
    let url = format!("rediss://default:{password}@localhost:{}/0", redis.port);
    let env = [("MESH_REDIS_URL", url.as_str()), ("MESH_REDIS_CA_FILE", ca)];
    let a = Server::start(&env);
    let b = Server::start(&env);
    let id = a.start_run(r#"{"task":"Explain TLS session resumption"}"#);
    let on_b = b.stream(&id, &[]).collect();
    assert_eq!(on_b.last().unwrap().data["status"], "completed");
    assert_eq!(a.stream(&id, &[]).collect(), on_b);
    for s in [&a, &b] {
        assert!(!s.logs().contains(password), "{}", s.logs());
        let metrics = s.get("/metrics").text();
        assert!(!metrics.contains(password));
    }

    // The web PKI does not know the private CA, and a wrong password is refused:
    // both stop the start, naming the variable and why, without the password.
    let wrong = format!("rediss://default:not-{password}@localhost:{}/0", redis.port);
    for (env, why) in [
        (vec![("MESH_REDIS_URL", url.as_str())], "UnknownIssuer"),
        (
            vec![
                ("MESH_REDIS_URL", wrong.as_str()),
                ("MESH_REDIS_CA_FILE", ca),
            ],
            "authentication failed",
        ),
    ] {
        let out = support::command(&env).output().expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("MESH_REDIS_URL"), "{err}");
        assert!(err.contains(why), "{err}");
        assert!(!err.contains(password), "{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_subscriber_on_another_instance_keeps_a_run_going_even_with_a_one_second_grace() {
    let redis = RedisServer::start();
    let env = [
        ("MESH_OFFLINE_DELAY_MS", "15"),
        ("MESH_DISCONNECT_GRACE_SECS", "1"),
    ];
    let a = instance(&redis, &env);
    let b = instance(&redis, &env);
    let id = a.start_run(r#"{"task":"Watched only from elsewhere"}"#);
    let events = b.stream(&id, &[]).collect();
    let done = events.last().unwrap();
    assert_eq!(done.data["status"], "completed", "{done:?}");
}

#[test]
fn a_pipeline_ended_by_the_outage_bound_stops_its_upstream_call() {
    use support::mock::{MockProvider, Part, Reply};
    // One token, then the call stays open: only a cancel closes it.
    let mock = MockProvider::start(|_, _| {
        let mut reply = Reply::sse(&[]);
        reply.parts.push(Part::Bytes(
            b"data: {\"choices\":[{\"delta\":{\"content\":\"thinking\"}}]}\n\n".to_vec(),
        ));
        reply.hold_open = true;
        reply
    });
    let mut redis = RedisServer::start();
    let base = mock.url("/v1");
    let a = instance(
        &redis,
        &[
            ("CUSTOM_BASE_URL", base.as_str()),
            ("MESH_REDIS_OUTAGE_SECS", "1"),
        ],
    );
    let id = a.start_run(r#"{"task":"t","agents":["researcher"]}"#);
    let mut s = a.stream(&id, &[]);
    while s.next_event().unwrap().event != "token" {}
    redis.stop();
    let rest = s.collect();
    let ended = Instant::now();
    assert_eq!(rest.last().unwrap().data["status"], "failed", "{rest:?}");
    let deadline = Instant::now() + Duration::from_secs(3);
    while mock.closes().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let closes = mock.closes();
    assert_eq!(closes.len(), 1, "the upstream call was left running");
    let took = closes[0].saturating_duration_since(ended);
    assert!(
        took < Duration::from_millis(500),
        "closed {took:?} after the end"
    );
}

#[test]
fn writes_redis_refuses_are_kept_and_retried_until_it_takes_them() {
    let redis = RedisServer::start();
    let slow = [("MESH_OFFLINE_DELAY_MS", "25")];
    let a = instance(&redis, &slow);
    let b = instance(&redis, &slow);
    let id = a.start_run(r#"{"task":"Explain write-ahead logging","detach":true}"#);
    let mut on_b = b.stream(&id, &[]);
    let mut seen_on_b = read_events(&mut on_b, 10);
    // Out of memory, as a full free tier with no eviction answers: reads still work,
    // every write is refused with -OOM.
    assert_eq!(redis.command(&["CONFIG", "SET", "maxmemory", "1"]), "+OK");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(gauge(&a, "agent_mesh_store_writes_failing"), 1);
    assert!(gauge(&a, "agent_mesh_store_unwritten_events") > 0);
    let r = a.post_json("/api/run", r#"{"task":"Not now"}"#);
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(redis.command(&["CONFIG", "SET", "maxmemory", "0"]), "+OK");

    seen_on_b.extend(on_b.collect());
    assert_eq!(seen_on_b.last().unwrap().data["status"], "completed");
    let whole_on_a = a.stream(&id, &[]).collect();
    assert_eq!(whole_on_a, seen_on_b);
    let c = instance(&redis, &[]);
    assert_eq!(c.stream(&id, &[]).collect(), whole_on_a);
    assert_eq!(gauge(&a, "agent_mesh_store_unwritten_events"), 0);
}

#[test]
fn a_copy_that_cannot_continue_its_stream_ends_instead_of_spinning() {
    let redis = RedisServer::start();
    let slow = [("MESH_OFFLINE_DELAY_MS", "25")];
    let a = instance(&redis, &slow);
    let b = instance(&redis, &slow);
    let id = a.start_run(r#"{"task":"Explain vector clocks","detach":true}"#);
    let mut on_b = b.stream(&id, &[]);
    read_events(&mut on_b, 5);
    // The stream jumps past what B has (as after a failover to a replica that had
    // not got every entry): B can apply nothing more from it.
    let key = format!("mesh:run:{id}:events");
    let added = redis.command(&["XADD", &key, "0-1000000", "e", "token", "d", "{}"]);
    assert!(added.starts_with('$'), "{added}");
    let cut = Instant::now();
    let rest = on_b.collect();
    assert!(
        cut.elapsed() < Duration::from_secs(3),
        "{:?}",
        cut.elapsed()
    );
    assert_ends_failed(&rest, "this instance cannot read the run's stored event");
    std::thread::sleep(Duration::from_millis(500));
    let warnings = b.logs().matches("ending this instance's copy").count();
    assert_eq!(warnings, 1, "{}", b.logs());
}
