//! Plan review scenarios over real sockets with a mock provider, passed by every run
//! store: `"review": true` pauses the run after its plan (`status` `awaiting_review`)
//! with no provider call until `POST /api/runs/{id}/plan` approves it (as is, or
//! edited: the second `plan` event, `source` `review`, and the prompts follow the
//! edits), invalid edits are a 400 naming the field, and a paused run ends
//! `cancelled` by a cancel or by `MESH_REVIEW_TIMEOUT_SECS`. Shared like
//! tests/scenarios/run_store.rs: runs start on `origin` and are streamed, approved
//! and cancelled through `viewer()` (another instance on the Redis store).

use crate::instances;
use crate::support::instances::Instances;
use crate::support::mock::{MockProvider, Recorded, Reply};
use crate::support::{Ev, SseStream};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const PLAN: &str = r#"{"agents":["researcher","analyst"],"tasks":{"researcher":"find sources","analyst":"weigh them"}}"#;

fn answer(text: &str) -> Reply {
    Reply::sse(&crate::support::mock::openai_stream(&[text], None))
}

/// A provider whose orchestrator plans [`PLAN`] and whose agents answer their name.
fn provider() -> MockProvider {
    MockProvider::start(|r: &Recorded, _| match r.agent() {
        "orchestrator" => answer(PLAN),
        other => answer(&format!("{other} wrote this")),
    })
}

fn start(mock: &MockProvider, extra: &[(&str, &str)]) -> Instances {
    let base = mock.url("/v1");
    let mut env = vec![("CUSTOM_BASE_URL", base.as_str())];
    env.extend_from_slice(extra);
    instances(&env)
}

/// Reads the stream up to the pause; returns the events so far (the pause last).
fn until_paused(stream: &mut SseStream) -> Vec<Ev> {
    let mut seen = Vec::new();
    while let Some(e) = stream.next_event() {
        let paused = e.event == "status" && e.data["state"] == "awaiting_review";
        assert_ne!(e.event, "done", "the run ended before its review: {seen:?}");
        seen.push(e);
        if paused {
            return seen;
        }
    }
    panic!("the stream ended before the pause: {seen:?}");
}

/// The rest of the stream, to `done`.
fn rest(stream: &mut SseStream) -> Vec<Ev> {
    stream.collect()
}

fn plans(events: &[Ev]) -> Vec<&Value> {
    events
        .iter()
        .filter(|e| e.event == "plan")
        .map(|e| &e.data)
        .collect()
}

fn approve(mesh: &Instances, id: &str, body: &str) -> crate::support::Response {
    mesh.viewer()
        .post_json(&format!("/api/runs/{id}/plan"), body)
}

/// 200 once the approved plan is logged; 202 from another instance that sent it on.
fn assert_approved(r: &crate::support::Response) {
    assert!(
        r.status == 200 || r.status == 202,
        "approval: {} {}",
        r.status,
        r.text()
    );
    assert_eq!(r.json()["plan"]["source"], "review");
}

#[test]
fn approved_unchanged_runs_the_orchestrators_plan_after_the_pause() {
    let mock = provider();
    let mesh = start(&mock, &[]);
    let id = mesh
        .origin
        .start_run(r#"{"task":"compare B-trees","review":true}"#);
    let mut stream = mesh.viewer().stream(&id, &[]);
    let before = until_paused(&mut stream);
    let pause = before.last().unwrap();
    assert_eq!(pause.data["agent"], Value::Null, "{pause:?}");
    assert!(
        pause.data["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("/api/runs/{id}/plan")),
        "{pause:?}"
    );
    let first = plans(&before);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0]["source"], "orchestrator");

    // Paused: the snapshot says so on every instance, and the provider hears nothing
    // (looked at for a while: the pause must hold, not just begin).
    for server in mesh.all() {
        let snap = server.get(&format!("/api/runs/{id}")).json();
        assert_eq!(snap["status"], "running");
        assert_eq!(snap["awaiting_review"], true, "{snap}");
    }
    let deadline = Instant::now() + Duration::from_millis(600);
    while Instant::now() < deadline {
        assert_eq!(
            mock.chat_requests().len(),
            1,
            "only the orchestrator was called"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    assert_approved(&approve(&mesh, &id, "{}"));
    let after = rest(&mut stream);
    let second = plans(&after);
    assert_eq!(second.len(), 1, "{after:?}");
    assert_eq!(second[0]["source"], "review");
    assert_eq!(second[0]["agents"], json!(["researcher", "analyst"]));
    assert_eq!(second[0]["tasks"], first[0]["tasks"]);
    assert_eq!(second[0]["stages"], json!([["researcher"], ["analyst"]]));
    assert_eq!(
        after.last().unwrap().data["status"],
        "completed",
        "{after:?}"
    );
    assert_eq!(mock.requests_of("researcher").len(), 1);
    assert!(mock.requests_of("researcher")[0]
        .user()
        .contains("find sources"));

    let snap = mesh.viewer().get(&format!("/api/runs/{id}")).json();
    assert_eq!(snap["awaiting_review"], false);
    assert_eq!(snap["plan"]["source"], "review");
    // Approved once: a second approval is a conflict.
    let again = approve(&mesh, &id, "{}");
    assert_eq!(again.status, 409, "{}", again.text());
    assert_eq!(again.error_code(), "not_awaiting_review");
}

#[test]
fn an_edited_team_and_tasks_are_what_the_agents_get() {
    let mock = provider();
    let mesh = start(&mock, &[]);
    let id = mesh.origin.start_run(r#"{"task":"t","review":true}"#);
    let mut stream = mesh.viewer().stream(&id, &[]);
    until_paused(&mut stream);
    let r = approve(
        &mesh,
        &id,
        r#"{"agents":["coder","analyst"],"tasks":{"coder":"EDITED: write a B-tree","analyst":"check the coder"},"after":{"analyst":["coder"]}}"#,
    );
    assert_approved(&r);
    let after = rest(&mut stream);
    let plan = plans(&after)[0];
    assert_eq!(plan["agents"], json!(["coder", "analyst"]));
    assert_eq!(plan["after"], json!({"coder": [], "analyst": ["coder"]}));
    assert_eq!(
        plan["tasks"],
        json!({"coder": "EDITED: write a B-tree", "analyst": "check the coder"})
    );
    assert_eq!(after.last().unwrap().data["status"], "completed");
    assert!(
        mock.requests_of("researcher").is_empty(),
        "taken off the team"
    );
    let coder = mock.requests_of("coder");
    assert_eq!(coder.len(), 1);
    assert!(
        coder[0].user().contains("EDITED: write a B-tree"),
        "{}",
        coder[0].user()
    );
    assert!(mock.requests_of("analyst")[0]
        .user()
        .contains("check the coder"));
    // The researcher, chosen by the orchestrator, is skipped by the review.
    assert!(after.iter().any(|e| e.event == "status"
        && e.data["agent"] == "researcher"
        && e.data["state"] == "skipped"));
}

#[test]
fn invalid_edits_are_refused_naming_the_field_and_the_run_stays_paused() {
    let mock = provider();
    let mesh = start(&mock, &[]);
    let id = mesh.origin.start_run(r#"{"task":"t","review":true}"#);
    let mut stream = mesh.viewer().stream(&id, &[]);
    until_paused(&mut stream);
    for (body, field) in [
        (r#"{"agents":["coder","analyst","writer"]}"#, "agents[2]"),
        (r#"{"agents":[]}"#, "agents"),
        (r#"{"tasks":{"coder":"x"}}"#, "tasks.coder"),
        (r#"{"tasks":{"analyst":7}}"#, "tasks.analyst"),
        (r#"{"after":{"analyst":["ghost"]}}"#, "after.analyst[0]"),
        (
            r#"{"after":{"analyst":["researcher"],"researcher":["analyst"]}}"#,
            "after.researcher[0]",
        ),
        (r#"{"team":["coder"]}"#, "team"),
        ("[1]", "body"),
    ] {
        let r = approve(&mesh, &id, body);
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert_eq!(r.json()["error"]["field"], field, "{body}: {}", r.text());
    }
    let snap = mesh.viewer().get(&format!("/api/runs/{id}")).json();
    assert_eq!(snap["awaiting_review"], true);
    assert_eq!(mock.chat_requests().len(), 1);
    // Still approvable after the refusals.
    assert_approved(&approve(&mesh, &id, r#"{"agents":["analyst"]}"#));
    let after = rest(&mut stream);
    assert_eq!(after.last().unwrap().data["status"], "completed");
    assert_eq!(plans(&after)[0]["agents"], json!(["analyst"]));
}

#[test]
fn approving_what_is_not_paused_is_a_conflict_or_not_found() {
    let mock = provider();
    let mesh = start(&mock, &[]);
    let id = mesh.origin.start_run(r#"{"task":"t"}"#);
    let done = mesh.viewer().stream(&id, &[]).collect();
    assert_eq!(done.last().unwrap().data["status"], "completed");
    let r = approve(&mesh, &id, "{}");
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.error_code(), "not_awaiting_review");
    assert!(r.json()["error"]["message"].as_str().unwrap().contains(&id));
    let unknown = approve(&mesh, &"0".repeat(32), "{}");
    assert_eq!(unknown.status, 404, "{}", unknown.text());
    let bad = mesh
        .origin
        .post_json("/api/run", r#"{"task":"t","review":"yes"}"#);
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"]["field"], "review");
    let get = mesh.viewer().get(&format!("/api/runs/{id}/plan"));
    assert_eq!(get.status, 405);
}

#[test]
fn cancelled_while_paused_ends_cancelled_without_another_call() {
    let mock = provider();
    let mesh = start(&mock, &[]);
    let id = mesh.origin.start_run(r#"{"task":"t","review":true}"#);
    let mut stream = mesh.viewer().stream(&id, &[]);
    until_paused(&mut stream);
    let r = mesh
        .viewer()
        .post_json(&format!("/api/runs/{id}/cancel"), "{}");
    assert_eq!(r.status, 202, "{}", r.text());
    let after = rest(&mut stream);
    let done = &after.last().unwrap().data;
    assert_eq!(done["status"], "cancelled", "{after:?}");
    assert!(plans(&after).is_empty());
    assert_eq!(mock.chat_requests().len(), 1);
    assert_eq!(approve(&mesh, &id, "{}").status, 409);
}

#[test]
fn an_unanswered_review_times_out_cancelled_with_the_reason() {
    let mock = provider();
    let mesh = start(&mock, &[("MESH_REVIEW_TIMEOUT_SECS", "1")]);
    let started = Instant::now();
    let id = mesh.origin.start_run(r#"{"task":"t","review":true}"#);
    let mut stream = mesh.viewer().stream(&id, &[]);
    let before = until_paused(&mut stream);
    assert!(before.last().unwrap().data["detail"]
        .as_str()
        .unwrap()
        .contains("within 1 s"));
    let after = rest(&mut stream);
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(after.last().unwrap().data["status"], "cancelled");
    let why = after
        .iter()
        .find(|e| e.event == "status" && e.data["agent"].is_null() && e.data["state"] == "failed")
        .expect("a run-level status says why");
    let detail = why.data["detail"].as_str().unwrap();
    assert!(
        detail.contains("not reviewed within 1 s") && detail.contains("MESH_REVIEW_TIMEOUT_SECS"),
        "{detail}"
    );
    assert_eq!(mock.chat_requests().len(), 1);
}

#[test]
fn a_paused_run_outlives_the_disconnect_grace_and_frees_its_active_slot() {
    let mock = provider();
    let mesh = start(
        &mock,
        &[
            ("MESH_DISCONNECT_GRACE_SECS", "1"),
            ("MESH_MAX_ACTIVE_RUNS", "1"),
        ],
    );
    let id = mesh.origin.start_run(r#"{"task":"t","review":true}"#);
    // Watched until the pause, then nobody watches.
    until_paused(&mut mesh.viewer().stream(&id, &[]));
    // The only active slot is free while the run is paused: another run starts
    // (detached, so nothing cancels it) and completes.
    let other = mesh.origin.start_run(r#"{"task":"u","detach":true}"#);
    let done = mesh.origin.wait_finished(&other, Duration::from_secs(20));
    assert_eq!(done["status"], "completed", "{done}");
    // Well past the grace with no subscriber: still paused.
    let deadline = Instant::now() + Duration::from_millis(3500);
    while Instant::now() < deadline {
        let snap = mesh.viewer().get(&format!("/api/runs/{id}")).json();
        assert_eq!(snap["awaiting_review"], true, "{snap}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut stream = mesh.viewer().stream(&id, &[]);
    assert_approved(&approve(&mesh, &id, "{}"));
    let events = stream.collect();
    assert_eq!(events.last().unwrap().data["status"], "completed");
}
