//! Follow-ups over real sockets: `parent` carries the earlier turns into every
//! agent's prompt, the snapshot and the run list name the parent and the thread, and
//! a bad parent is a 400 naming `parent`.

mod support;

use std::time::Duration;
use support::mock::{openai_stream, MockProvider, Reply};
use support::Server;

const WITHIN: Duration = Duration::from_secs(20);

fn finished_run(server: &Server, body: &str) -> (String, serde_json::Value) {
    let id = server.start_run(body);
    let snap = server.wait_finished(&id, WITHIN);
    assert_eq!(snap["status"], "completed", "{snap}");
    (id, snap)
}

#[test]
fn a_follow_up_quotes_the_earlier_turns_and_lists_its_thread() {
    let server = Server::start(&[]);
    let (first, first_snap) = finished_run(
        &server,
        r#"{"task":"Explain the zebra crossing rules","detach":true}"#,
    );
    assert_eq!(first_snap["parent"], serde_json::Value::Null);
    assert_eq!(
        first_snap["thread"],
        serde_json::json!([{"id": first, "task": "Explain the zebra crossing rules", "status": "completed"}])
    );

    let body = format!(r#"{{"task":"And for cyclists?","parent":"{first}","detach":true}}"#);
    let (second, second_snap) = finished_run(&server, &body);
    assert_eq!(second_snap["parent"], first.as_str());
    let ids = |snap: &serde_json::Value| -> Vec<String> {
        snap["thread"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&second_snap), [first.clone(), second.clone()]);
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

    // A third turn sees both earlier ones, oldest first.
    let body = format!(r#"{{"task":"And at night?","parent":"{second}","detach":true}}"#);
    let (third, third_snap) = finished_run(&server, &body);
    assert_eq!(
        ids(&third_snap),
        [first.clone(), second.clone(), third.clone()]
    );
    assert_eq!(third_snap["thread"][0]["status"], "completed");
    let output = third_snap["output"].as_str().unwrap();
    let a = output.find("asked \"Explain the zebra").expect(output);
    let b = output.find("asked \"And for cyclists?\"").expect(output);
    assert!(a < b, "{output}");

    // The run list carries `parent` too.
    let list = server.get("/api/runs").json();
    let parent_of = |id: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .map(|r| r["parent"].clone())
            .unwrap()
    };
    assert_eq!(parent_of(&first), serde_json::Value::Null);
    assert_eq!(parent_of(&second), first.as_str());
    assert_eq!(parent_of(&third), second.as_str());
}

#[test]
fn the_history_reaches_a_real_providers_prompts() {
    let mock = MockProvider::start(|_, _| {
        Reply::sse(&openai_stream(&["Remember: the answer is 42."], None))
    });
    let base = mock.url("/v1");
    let server = Server::start(&[("CUSTOM_BASE_URL", &base)]);
    let (first, _) = finished_run(
        &server,
        r#"{"task":"What is the answer?","agents":["researcher"],"detach":true}"#,
    );
    let seen_before = mock.chat_requests().len();
    let body = format!(
        r#"{{"task":"Why that number?","agents":["researcher"],"parent":"{first}","detach":true}}"#
    );
    finished_run(&server, &body);
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
    let server = Server::start(&[("MESH_OFFLINE_DELAY_MS", "40")]);
    let unknown = "0123456789abcdef0123456789abcdef";
    for body in [
        format!(r#"{{"task":"x","parent":"{unknown}"}}"#),
        r#"{"task":"x","parent":"../etc"}"#.to_string(),
        r#"{"task":"x","parent":42}"#.to_string(),
    ] {
        let r = server.post_json("/api/run", &body);
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert_eq!(r.error_code(), "bad_request");
        assert_eq!(r.json()["error"]["field"], "parent", "{body}");
    }
    // A running parent is refused, with a message that says why.
    let running = server.start_run(r#"{"task":"A slow first question","detach":true}"#);
    let r = server.post_json(
        "/api/run",
        &format!(r#"{{"task":"too soon","parent":"{running}"}}"#),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"]["field"], "parent");
    assert!(r.text().contains("still running"), "{}", r.text());
}

#[test]
fn a_bearer_key_is_accepted_beside_basic_auth_and_a_wrong_one_is_a_401() {
    let server = Server::start(&[
        ("MESH_USER", "u"),
        ("MESH_PASS", "p"),
        ("MESH_API_KEYS", "key-one,key-two"),
    ]);
    let get = |auth: &str| server.request("GET", "/api/runs", &[("Authorization", auth)], b"");
    assert_eq!(get("Bearer key-two").status, 200);
    assert_eq!(get("Basic dTpw").status, 200);
    let wrong = get("Bearer key-three");
    assert_eq!(wrong.status, 401, "{}", wrong.text());
    assert!(!wrong.text().contains("key-"), "{}", wrong.text());
    assert!(!server.logs().contains("key-one"), "{}", server.logs());
}
