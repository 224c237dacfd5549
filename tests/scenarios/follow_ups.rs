//! Follow-up scenarios over real sockets, passed by every run store: `parent` carries
//! the earlier turns into every agent's prompt, the snapshot and the run list name the
//! parent and the thread, an evicted ancestor stays in the thread, and a bad parent is
//! a 400 naming `parent`. The store is where a parent is found (`get`), so these are
//! store scenarios too.
//!
//! Shared like tests/scenarios/run_store.rs (see its header): a `#[path]` module of
//! tests/conversation.rs (memory store) and tests/runs_redis.rs (Redis store), servers
//! from `crate::instances(env)`. On Redis the follow-ups are asked of the instance that
//! did not run the parent (`viewer()`), and a later turn of the origin again: the
//! load-balanced case, where each turn may land on another instance.

use crate::instances;
use crate::support::mock::{openai_stream, MockProvider, Reply};
use crate::support::Server;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Starts a run on `server`, follows its stream there to `done` as the page does,
/// and returns its snapshot from `server`. The next turn is asked at once, as a
/// client that has just seen the deliverable would.
fn finished_run(server: &Server, body: &str) -> (String, Value) {
    let id = server.start_run(body);
    let events = server.stream(&id, &[]).collect();
    let done = events.last().expect("events");
    assert_eq!(
        (done.event.as_str(), &done.data["status"]),
        ("done", &Value::from("completed"))
    );
    let snap = server.get(&format!("/api/runs/{id}")).json();
    assert_eq!(snap["status"], "completed", "{snap}");
    (id, snap)
}

fn thread_ids(snap: &Value) -> Vec<String> {
    snap["thread"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_follow_up_quotes_the_earlier_turns_and_lists_its_thread() {
    let t = instances(&[]);
    let (first, first_snap) = finished_run(
        &t.origin,
        r#"{"task":"Explain the zebra crossing rules","detach":true}"#,
    );
    assert_eq!(first_snap["parent"], Value::Null);
    assert_eq!(
        first_snap["thread"],
        json!([{"id": first, "task": "Explain the zebra crossing rules", "status": "completed"}])
    );

    // Asked of the viewer: on a shared store, not the instance that ran the parent.
    let body = format!(r#"{{"task":"And for cyclists?","parent":"{first}","detach":true}}"#);
    let (second, second_snap) = finished_run(t.viewer(), &body);
    assert_eq!(second_snap["parent"], first.as_str());
    assert_eq!(thread_ids(&second_snap), [first.clone(), second.clone()]);
    assert_eq!(second_snap["thread"][1]["task"], "And for cyclists?");
    // The offline writer quotes the earlier turn it received: task and deliverable.
    let output = second_snap["output"].as_str().unwrap();
    assert!(output.contains("Earlier turns received"), "{output}");
    assert!(
        output.contains("asked \"Explain the zebra crossing rules\""),
        "{output}"
    );
    assert!(
        output.contains("delivered \"# Explain the zebra"),
        "{output}"
    );
    // So does every specialist.
    for agent in second_snap["agents"].as_array().unwrap() {
        if agent["kind"] == "specialist" && agent["state"] == "done" {
            assert!(
                agent["output"]
                    .as_str()
                    .unwrap()
                    .contains("asked \"Explain the zebra crossing rules\""),
                "{agent}"
            );
        }
    }

    // A third turn, asked of the origin again, sees both earlier ones, oldest first.
    let body = format!(r#"{{"task":"And at night?","parent":"{second}","detach":true}}"#);
    let (third, third_snap) = finished_run(&t.origin, &body);
    assert_eq!(
        thread_ids(&third_snap),
        [first.clone(), second.clone(), third.clone()]
    );
    let output = third_snap["output"].as_str().unwrap();
    let a = output.find("asked \"Explain the zebra").expect(output);
    let b = output.find("asked \"And for cyclists?\"").expect(output);
    assert!(a < b, "{output}");

    for server in t.all() {
        // Every instance shows the same thread, with each turn's task and status.
        let snap = server.get(&format!("/api/runs/{third}")).json();
        assert_eq!(
            snap["thread"],
            json!([
                {"id": first, "task": "Explain the zebra crossing rules", "status": "completed"},
                {"id": second, "task": "And for cyclists?", "status": "completed"},
                {"id": third, "task": "And at night?", "status": "completed"},
            ]),
            "{}",
            server.addr
        );
        // The run list carries `parent` too.
        let list = server.get("/api/runs").json();
        let parent_of = |id: &str| {
            list.as_array()
                .unwrap()
                .iter()
                .find(|r| r["id"] == id)
                .map(|r| r["parent"].clone())
                .unwrap_or_else(|| panic!("{id} not listed: {list}"))
        };
        assert_eq!(parent_of(&first), Value::Null, "{list}");
        assert_eq!(parent_of(&second), first.as_str(), "{list}");
        assert_eq!(parent_of(&third), second.as_str(), "{list}");
    }
}

#[test]
fn the_history_reaches_a_real_providers_prompts() {
    let mock = MockProvider::start(|_, _| {
        Reply::sse(&openai_stream(&["Remember: the answer is 42."], None))
    });
    let base = mock.url("/v1");
    let t = instances(&[("CUSTOM_BASE_URL", &base)]);
    let (first, _) = finished_run(
        &t.origin,
        r#"{"task":"What is the answer?","agents":["researcher"],"detach":true}"#,
    );
    let seen_before = mock.chat_requests().len();
    let body = format!(
        r#"{{"task":"Why that number?","agents":["researcher"],"parent":"{first}","detach":true}}"#
    );
    finished_run(t.viewer(), &body);
    let requests = mock.chat_requests();
    let follow_up = &requests[seen_before..];
    assert_eq!(follow_up.len(), 2, "researcher and writer");
    for r in follow_up {
        let user = r.user();
        let earlier = user.find("What is the answer?").expect(&user);
        let delivered = user.find("Remember: the answer is 42.").expect(&user);
        let now = user.find("Why that number?").expect(&user);
        assert!(earlier < delivered && delivered < now, "{user}");
    }
}

#[test]
fn a_bad_parent_is_a_400_naming_parent() {
    let t = instances(&[("MESH_OFFLINE_DELAY_MS", "40")]);
    let unknown = "0123456789abcdef0123456789abcdef";
    for body in [
        format!(r#"{{"task":"x","parent":"{unknown}"}}"#),
        r#"{"task":"x","parent":"../etc"}"#.to_string(),
        r#"{"task":"x","parent":42}"#.to_string(),
    ] {
        let r = t.viewer().post_json("/api/run", &body);
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert_eq!(r.error_code(), "bad_request");
        assert_eq!(r.json()["error"]["field"], "parent", "{body}");
    }
    // A running parent is refused, with a message that says why, on every instance.
    let running = t
        .origin
        .start_run(r#"{"task":"A slow first question","detach":true}"#);
    for server in t.all() {
        let r = server.post_json(
            "/api/run",
            &format!(r#"{{"task":"too soon","parent":"{running}"}}"#),
        );
        assert_eq!(r.status, 400, "{}", r.text());
        assert_eq!(r.json()["error"]["field"], "parent");
        assert!(r.text().contains("still running"), "{}", r.text());
    }
}

/// Shared store: the parent's keys expire from Redis, and every instance, including
/// one that had read the parent, then shows it `evicted` and refuses it as a parent.
#[test]
fn an_evicted_ancestor_stays_in_the_thread_as_evicted() {
    // Slow tokens keep the follow-up retained well after its parent is evicted.
    let t = instances(&[("MESH_RUN_TTL_SECS", "1"), ("MESH_OFFLINE_DELAY_MS", "5")]);
    let (first, _) = finished_run(&t.origin, r#"{"task":"First question","detach":true}"#);
    let body = format!(r#"{{"task":"Second question","parent":"{first}","detach":true}}"#);
    let second = t.viewer().start_run(&body);
    let deadline = Instant::now() + Duration::from_secs(5);
    for server in t.all() {
        loop {
            let snap = server.get(&format!("/api/runs/{second}")).json();
            assert_eq!(thread_ids(&snap), [first.clone(), second.clone()]);
            if snap["thread"][0]["status"] == "evicted" {
                assert_eq!(snap["thread"][0]["task"], Value::Null);
                assert_eq!(snap["thread"][1]["task"], "Second question");
                assert_eq!(snap["parent"], first.as_str());
                break;
            }
            assert_eq!(snap["thread"][0]["status"], "completed", "{snap}");
            assert!(Instant::now() < deadline, "parent never evicted: {snap}");
            std::thread::sleep(Duration::from_millis(20));
        }
        let r = server.post_json(
            "/api/run",
            &format!(r#"{{"task":"Third question","parent":"{first}"}}"#),
        );
        assert_eq!(r.status, 400, "{}", r.text());
        assert_eq!(r.json()["error"]["field"], "parent");
        assert!(r.text().contains("evicted"), "{}", r.text());
    }
}

/// A long thread has a bounded footprint: a run keeps its last 50 ancestors and a
/// count of the rest, and the snapshot's `thread` lists those with tasks cut to 200
/// characters, saying how many earlier turns it leaves out.
#[test]
fn a_deep_thread_keeps_its_last_fifty_ancestors_and_cuts_their_tasks() {
    const DEPTH: usize = 56;
    let t = instances(&[]);
    let long_task = |i: usize| format!("Turn {i}: {}", "why ".repeat(200));
    let mut ids = Vec::new();
    for i in 0..DEPTH {
        let mut body = json!({"task": long_task(i), "detach": true});
        if let Some(parent) = ids.last() {
            body["parent"] = json!(parent);
        }
        // Alternate instances on a shared store, as a load balancer would.
        let server = t.all()[i % t.all().len()];
        let id = server.start_run(&body.to_string());
        server.wait_finished(&id, Duration::from_secs(20));
        ids.push(id);
    }
    let last = ids.last().unwrap();
    let snap = t.origin.get(&format!("/api/runs/{last}")).json();
    let thread = snap["thread"].as_array().unwrap();
    assert_eq!(thread.len(), 51, "the last 50 ancestors and the run itself");
    assert_eq!(
        snap["thread_omitted"],
        DEPTH - 51,
        "{}",
        snap["thread_omitted"]
    );
    let listed: Vec<&str> = thread.iter().map(|e| e["id"].as_str().unwrap()).collect();
    let want: Vec<&str> = ids[DEPTH - 51..].iter().map(String::as_str).collect();
    assert_eq!(listed, want, "the newest turns, oldest first");
    for entry in thread {
        let task = entry["task"].as_str().unwrap();
        assert_eq!(task.chars().count(), 200, "{task}");
        assert!(task.starts_with("Turn "));
    }
    // Uncut, 56 tasks of ~800 characters each would make ~45 KB of thread.
    let size = serde_json::to_string(&snap["thread"]).unwrap().len();
    assert!(size < 51 * 300, "thread of {size} bytes");
}
