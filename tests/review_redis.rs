//! The plan review scenarios (tests/scenarios/review.rs) on the Redis store: each
//! gets a `redis-server` of its own and two instances on it; runs start (and pause)
//! on one and are streamed, approved and cancelled through the other, so every
//! approval crosses instances.

mod support;

#[path = "scenarios/review.rs"]
mod review;

use support::instances::Instances;

/// Two instances on a fresh Redis, for one scenario.
fn instances(env: &[(&str, &str)]) -> Instances {
    Instances::redis(env)
}

// ---------------------------------------------------------------- restarts

use serde_json::json;
use std::time::{Duration, Instant};
use support::mock::{openai_stream, MockProvider, Recorded, Reply};
use support::redis::RedisServer;
use support::{Ev, Server, SseStream};

const PLAN: &str = r#"{"agents":["researcher","analyst"],"tasks":{"researcher":"find sources","analyst":"weigh them"}}"#;

fn provider() -> MockProvider {
    MockProvider::start(|r: &Recorded, _| match r.agent() {
        "orchestrator" => Reply::sse(&openai_stream(&[PLAN], None)),
        other => Reply::sse(&openai_stream(&[&format!("{other} wrote this")], None)),
    })
}

fn instance(redis: &RedisServer, mock: &MockProvider, extra: &[(&str, &str)]) -> Server {
    let url = redis.url(0);
    let base = mock.url("/v1");
    let mut env = vec![
        ("MESH_REDIS_URL", url.as_str()),
        ("CUSTOM_BASE_URL", base.as_str()),
    ];
    env.extend_from_slice(extra);
    Server::start(&env)
}

fn until_paused(stream: &mut SseStream) -> Vec<Ev> {
    let mut seen = Vec::new();
    while let Some(e) = stream.next_event() {
        let paused = e.event == "status" && e.data["state"] == "awaiting_review";
        assert_ne!(e.event, "done", "ended before the pause: {seen:?}");
        if e.id.is_some() {
            seen.push(e);
        }
        if paused {
            return seen;
        }
    }
    panic!("the stream ended before the pause: {seen:?}");
}

/// The pause outlives the instance that made the plan (stopped by SIGTERM, as in a
/// deploy): a fresh instance takes the approval, takes the run over and finishes it,
/// with the event numbers going on where the stopped instance left them.
#[test]
fn a_pause_survives_a_restart_and_the_run_continues_where_approved() {
    let redis = RedisServer::start();
    let mock = provider();
    let mut a = instance(&redis, &mock, &[]);
    let id = a.start_run(r#"{"task":"compare B-trees","review":true}"#);
    let before = until_paused(&mut a.stream(&id, &[]));
    a.signal("TERM");
    assert_eq!(a.wait_exit(Duration::from_secs(15)), Some(0));
    assert_eq!(mock.chat_requests().len(), 1);

    let c = instance(&redis, &mock, &[]);
    let snap = c.get(&format!("/api/runs/{id}")).json();
    assert_eq!(snap["status"], "running", "{snap}");
    assert_eq!(snap["awaiting_review"], true, "{snap}");
    let r = c.post_json(
        &format!("/api/runs/{id}/plan"),
        r#"{"agents":["analyst"],"tasks":{"analyst":"EDITED after the restart"}}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let events = c.stream(&id, &[]).collect();
    assert_eq!(
        events.last().unwrap().data["status"],
        "completed",
        "{events:?}"
    );
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.id, Some(i as u64 + 1), "contiguous ids: {e:?}");
    }
    assert_eq!(
        &events[..before.len()],
        &before[..],
        "the log before the pause is kept"
    );
    let plans: Vec<&Ev> = events.iter().filter(|e| e.event == "plan").collect();
    assert_eq!(plans.len(), 2);
    assert_eq!(plans[1].data["source"], "review");
    assert_eq!(plans[1].data["agents"], json!(["analyst"]));
    assert_eq!(
        events
            .iter()
            .filter(|e| e.event == "status" && e.data["state"] == "awaiting_review")
            .count(),
        1,
        "one pause"
    );
    let analyst = mock.requests_of("analyst");
    assert_eq!(analyst.len(), 1);
    assert!(analyst[0].user().contains("EDITED after the restart"));
    assert!(mock.requests_of("researcher").is_empty());
    // A second approval, anywhere, is a conflict now.
    let again = c.post_json(&format!("/api/runs/{id}/plan"), "{}");
    assert_eq!(again.status, 409, "{}", again.text());
}

/// A killed owner's paused run is not ended `failed` like other orphans (its lease
/// lapses in 3 s, an orphan ends within about 6 s): another instance that follows
/// it keeps it paused, and approving there takes it over.
#[test]
fn a_killed_owners_paused_run_waits_and_is_approved_elsewhere() {
    let redis = RedisServer::start();
    let mock = provider();
    let a = instance(&redis, &mock, &[]);
    let b = instance(&redis, &mock, &[]);
    let id = a.start_run(r#"{"task":"t","review":true}"#);
    let mut stream = b.stream(&id, &[]);
    until_paused(&mut stream);
    a.signal("KILL");
    let deadline = Instant::now() + Duration::from_secs(9);
    while Instant::now() < deadline {
        let snap = b.get(&format!("/api/runs/{id}")).json();
        assert_eq!(snap["status"], "running", "{snap}");
        assert_eq!(snap["awaiting_review"], true, "{snap}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let r = b.post_json(&format!("/api/runs/{id}/plan"), "{}");
    assert_eq!(r.status, 200, "{}", r.text());
    // The subscriber of b's copy sees the run go on, to its end.
    let rest = stream.collect();
    assert_eq!(rest.last().unwrap().data["status"], "completed", "{rest:?}");
    assert_eq!(mock.requests_of("researcher").len(), 1);
    assert_eq!(mock.requests_of("analyst").len(), 1);
    drop(a);
}

/// A paused run nobody holds still has its review timeout: an instance that
/// follows it ends it `cancelled`, saying why.
#[test]
fn an_orphaned_pause_still_times_out() {
    let redis = RedisServer::start();
    let mock = provider();
    let env = [("MESH_REVIEW_TIMEOUT_SECS", "2")];
    let a = instance(&redis, &mock, &env);
    let b = instance(&redis, &mock, &env);
    let id = a.start_run(r#"{"task":"t","review":true}"#);
    let mut stream = b.stream(&id, &[]);
    until_paused(&mut stream);
    a.signal("KILL");
    let rest = stream.collect();
    let done = &rest.last().unwrap().data;
    assert_eq!(done["status"], "cancelled", "{rest:?}");
    assert!(rest.iter().any(|e| e.event == "status"
        && e.data["detail"]
            .as_str()
            .unwrap_or("")
            .contains("not reviewed within 2 s")));
    assert_eq!(mock.chat_requests().len(), 1);
    drop(a);
}
