//! Empty answers over real sockets: a writer that streams nothing (with a finish
//! reason) ends the run `failed`, never "completed" with no deliverable; a specialist
//! that answers nothing gets a `status` saying so, and the agents after it are told
//! their input is empty.

mod support;

use std::time::Duration;
use support::mock::{openai_stream, MockProvider, Reply};
use support::{Ev, Server};

fn answers(empty: &'static str) -> MockProvider {
    MockProvider::start(move |req, _| {
        let agent = req.agent();
        let pieces: Vec<String> = if agent == empty {
            Vec::new()
        } else {
            vec![format!("{agent} answer")]
        };
        let pieces: Vec<&str> = pieces.iter().map(String::as_str).collect();
        Reply::sse(&openai_stream(&pieces, None))
    })
}

fn server_for(mock: &MockProvider) -> Server {
    let base = mock.url("/v1");
    Server::start(&[("CUSTOM_BASE_URL", &base), ("MESH_PROVIDER", "custom")])
}

fn of<'a>(events: &'a [Ev], kind: &'a str, agent: &'a str) -> Vec<&'a Ev> {
    events
        .iter()
        .filter(|e| e.event == kind && e.data["agent"] == agent)
        .collect()
}

#[test]
fn an_empty_deliverable_fails_the_run() {
    let mock = answers("writer");
    let server = server_for(&mock);
    let id = server.start_run(r#"{"task":"t","agents":["researcher"]}"#);
    let events = server.stream(&id, &[]).collect();
    let done = &events.last().unwrap().data;
    assert_eq!(done["status"], "failed", "{events:?}");
    assert_eq!(done["output"], "");
    let errors = of(&events, "error", "writer");
    assert_eq!(errors.len(), 1, "{events:?}");
    assert_eq!(errors[0].data["kind"], "bad_response");
    assert!(errors[0].data["message"]
        .as_str()
        .unwrap()
        .contains("the writer returned no text"));
    let snap = server.wait_finished(&id, Duration::from_secs(10));
    assert_eq!(snap["status"], "failed");
}

#[test]
fn an_empty_specialist_is_said_and_its_dependants_are_told() {
    let mock = answers("researcher");
    let server = server_for(&mock);
    let id = server.start_run(r#"{"task":"t","agents":["researcher","coder"]}"#);
    let events = server.stream(&id, &[]).collect();
    assert_eq!(events.last().unwrap().data["status"], "completed");
    let said = of(&events, "status", "researcher").into_iter().any(|e| {
        e.data["detail"]
            .as_str()
            .unwrap()
            .contains("returned no text")
    });
    assert!(said, "{events:?}");
    // Sequential: the coder works after the researcher and is told.
    let coder = mock.requests_of("coder");
    assert!(
        coder[0]
            .user()
            .contains("Input missing: the Researcher's work, which you were to build on, is not available (it produced no text)"),
        "{}",
        coder[0].user()
    );
}
