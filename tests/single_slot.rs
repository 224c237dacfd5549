//! Local model servers that serve one request at a time (llama.cpp, Ollama by
//! default), as small mock servers over real sockets: one that queues the second
//! request, one that cuts the first stream short with a bare `[DONE]` when a second
//! arrives (llama-cpp-python's `interrupt_requests`). Under the parallel schedule with
//! `CUSTOM_MAX_CONCURRENCY=1`, every specialist completes; a bare `[DONE]` is an
//! error of kind `bad_response`, never an empty success.

mod support;

use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use support::mock::{openai_stream, MockProvider, Part, Reply};
use support::{text_of, Ev, Server};

const SPECIALISTS: [&str; 3] = ["researcher", "coder", "analyst"];

/// The one slot of a single-slot server: the interrupt flag of the stream it serves.
#[derive(Default)]
struct Slot {
    busy: Mutex<Option<Arc<AtomicBool>>>,
    freed: Condvar,
}

impl Slot {
    /// Frees the slot if `mine` still holds it.
    fn release(&self, mine: &Arc<AtomicBool>) {
        let mut busy = self.busy.lock().unwrap();
        if busy.as_ref().is_some_and(|b| Arc::ptr_eq(b, mine)) {
            *busy = None;
            self.freed.notify_all();
        }
    }
}

/// A stream of `text` that first "processes the prompt" for 300 ms (where an
/// interrupted stream ends with a bare `[DONE]`), then sends its text slowly.
fn slow_reply(slot: &Arc<Slot>, mine: Arc<AtomicBool>, text: &str) -> Reply {
    let mut parts = Vec::new();
    for _ in 0..6 {
        parts.push(Part::Sleep(Duration::from_millis(50)));
        parts.push(Part::EndIf(mine.clone(), b"data: [DONE]\n\n".to_vec()));
    }
    for event in openai_stream(&[text, " in full"], None) {
        parts.push(Part::Bytes(event.into_bytes()));
        parts.push(Part::Sleep(Duration::from_millis(100)));
    }
    let slot = slot.clone();
    parts.push(Part::Call(Arc::new(move || slot.release(&mine))));
    let mut reply = Reply::sse(&[]);
    reply.parts = parts;
    reply
}

/// The model list is not what these servers are about (and takes no slot).
fn no_catalog() -> Reply {
    Reply::error(404, r#"{"error":{"message":"no model list"}}"#)
}

/// Serves one stream at a time: a request waits until the one before it is done.
fn queueing_server() -> MockProvider {
    let slot = Arc::new(Slot::default());
    MockProvider::start(move |req, _| {
        if req.method != "POST" {
            return no_catalog();
        }
        let mine = Arc::new(AtomicBool::new(false));
        {
            let mut busy = slot.busy.lock().unwrap();
            while busy.is_some() {
                busy = slot.freed.wait(busy).unwrap();
            }
            *busy = Some(mine.clone());
        }
        slow_reply(&slot, mine, &format!("{} answer", req.agent()))
    })
}

/// Serves one stream at a time by interrupting: a new request cuts the stream in
/// progress short with a bare `[DONE]` and takes the slot.
fn interrupting_server() -> MockProvider {
    let slot = Arc::new(Slot::default());
    MockProvider::start(move |req, _| {
        if req.method != "POST" {
            return no_catalog();
        }
        let mine = Arc::new(AtomicBool::new(false));
        if let Some(previous) = slot.busy.lock().unwrap().replace(mine.clone()) {
            previous.store(true, Ordering::SeqCst);
        }
        slow_reply(&slot, mine, &format!("{} answer", req.agent()))
    })
}

fn run_parallel_team(server: &Server) -> Vec<Ev> {
    let id = server.start_run(
        r#"{"task":"t","schedule":"parallel","agents":["researcher","coder","analyst"]}"#,
    );
    server.stream(&id, &[]).collect()
}

fn of<'a>(events: &'a [Ev], kind: &'a str) -> impl Iterator<Item = &'a Ev> + 'a {
    events.iter().filter(move |e| e.event == kind)
}

/// Every specialist and the writer streamed their whole answer; no error, no retry.
fn assert_every_agent_completed(events: &[Ev]) {
    let done = &events.last().unwrap().data;
    assert_eq!(done["status"], "completed", "{events:?}");
    assert_eq!(of(events, "error").count(), 0, "{events:?}");
    for agent in SPECIALISTS.iter().chain(&["writer"]) {
        assert_eq!(text_of(events, agent), format!("{agent} answer in full"));
        let end = of(events, "stream_end")
            .find(|e| e.data["agent"] == *agent)
            .unwrap_or_else(|| panic!("no stream_end for {agent}"));
        assert_eq!(end.data["chars"], format!("{agent} answer in full").len());
    }
    let retries = of(events, "status").filter(|e| e.data["state"] == "retrying");
    assert_eq!(retries.count(), 0, "{events:?}");
}

/// The calls beyond the limit waited in agent-mesh's queue, and said so.
fn queued_agents(events: &[Ev]) -> Vec<&Value> {
    of(events, "status")
        .filter(|e| e.data["state"] == "queued")
        .map(|e| {
            let detail = e.data["detail"].as_str().unwrap();
            assert!(detail.contains("CUSTOM_MAX_CONCURRENCY"), "{detail}");
            &e.data["agent"]
        })
        .collect()
}

fn server_for(mock: &MockProvider, extra: &[(&str, &str)]) -> Server {
    let base = mock.url("/v1");
    let mut env = vec![
        ("CUSTOM_BASE_URL", base.as_str()),
        ("MESH_PROVIDER", "custom"),
        ("MESH_MAX_PARALLEL", "3"),
    ];
    env.extend_from_slice(extra);
    Server::start(&env)
}

/// Each stream takes about 0.7 s and the first token must come within 1 s of the
/// call being sent: the third of three parallel calls, queued at the server, would
/// miss it; queued in agent-mesh, its clock starts when it is sent.
#[test]
fn a_server_that_queues_serves_every_specialist_with_a_limit_of_one() {
    let mock = queueing_server();
    let server = server_for(
        &mock,
        &[
            ("CUSTOM_MAX_CONCURRENCY", "1"),
            ("MESH_TTFT_TIMEOUT_SECS", "1"),
        ],
    );
    let events = run_parallel_team(&server);
    assert_every_agent_completed(&events);
    assert!(queued_agents(&events).len() >= 2, "{events:?}");
}

#[test]
fn a_server_that_interrupts_serves_every_specialist_with_a_limit_of_one() {
    let mock = interrupting_server();
    let server = server_for(&mock, &[("CUSTOM_MAX_CONCURRENCY", "1")]);
    let events = run_parallel_team(&server);
    assert_every_agent_completed(&events);
    assert!(queued_agents(&events).len() >= 2, "{events:?}");
    // One call at a time: each request arrived after the one before had ended.
    assert_eq!(mock.chat_requests().len(), 4);
}

/// A stream that is only `[DONE]`: no content, no finish reason. It is retried like
/// any failed attempt, then the agent's `error` of kind `bad_response`; never a
/// specialist that "finished" with 0 characters.
#[test]
fn a_bare_done_is_a_bad_response_not_an_empty_success() {
    let mock = MockProvider::start(|req, _| {
        if req.agent() == "researcher" {
            Reply::sse(&["data: [DONE]\n\n".to_string()])
        } else {
            Reply::sse(&openai_stream(&[&format!("{} answer", req.agent())], None))
        }
    });
    let server = server_for(&mock, &[]);
    let id = server.start_run(r#"{"task":"t","agents":["researcher"]}"#);
    let events = server.stream(&id, &[]).collect();
    let error = of(&events, "error")
        .find(|e| e.data["agent"] == "researcher")
        .unwrap_or_else(|| panic!("no error: {events:?}"));
    assert_eq!(error.data["kind"], "bad_response");
    assert!(error.data["message"]
        .as_str()
        .unwrap()
        .contains("no content and no finish reason"));
    assert!(!of(&events, "stream_end").any(|e| e.data["agent"] == "researcher"));
    // Tried three times (two retries), as any failure before the first token.
    assert_eq!(mock.requests_of("researcher").len(), 3);
}
