//! Tool calls that go wrong, through the real binary over real sockets: a run cancelled
//! during a long-running tool call (stdio and Streamable HTTP) ends within 1 s and the
//! MCP server is told (`notifications/cancelled`); a call over MESH_TOOL_TIMEOUT_SECS;
//! a server killed mid-call (stdio restarted for the next call, HTTP an error result);
//! a server down at startup. The tool server is the reference server-everything; the
//! model is a mock OpenAI provider whose requests the tests read.

mod support;

use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::mcp::{EverythingHttp, WireTap};
use support::mock::{MockProvider, Reply};
use support::tools::{
    call_id_of, cancelled_request, events_named, mesh_with, offered_tools, openai_answer,
    openai_calls, openai_text, read_until, researcher_requests, rounds_done, snapshot_agent,
    start_researcher_run, wait_until, ToolSetup,
};
use support::{Ev, Server};

const LONG_TOOL: &str = "trigger-long-running-operation";

/// A model turn that calls `tool` of server `everything` once, as `call_id`.
fn call_tool(call_id: &str, tool: &str, arguments: Value) -> Reply {
    let middle = vec![openai_calls(
        json!([{"index": 0, "id": call_id, "type": "function",
        "function": {"name": format!("everything__{tool}"), "arguments": arguments.to_string()}}]),
    )];
    Reply::sse(&openai_answer("", middle, "tool_calls", (20, 5, 0.0)))
}

/// server-everything's 30 s operation.
fn long_call() -> Reply {
    call_tool("call_long", LONG_TOOL, json!({"duration": 30, "steps": 30}))
}

fn text(t: &str) -> Reply {
    Reply::sse(&openai_text(t, (20, 5, 0.0)))
}

fn mesh(mock: &MockProvider, config: &str, extra: &[(&str, &str)]) -> Server {
    let base = mock.url("/v1");
    let provider = [
        ("OPENAI_API_KEY", "sk-test-openai-0123456789"),
        ("OPENAI_BASE_URL", &base),
    ];
    mesh_with(provider, config, extra)
}

/// A model whose researcher starts the long call, then answers `then` (if asked).
fn long_call_then(then: &'static str) -> MockProvider {
    MockProvider::start(move |r, _| match (r.agent(), rounds_done(r)) {
        ("researcher", 0) => long_call(),
        ("researcher", _) => text(then),
        _ => text("# Final"),
    })
}

/// The `role: "tool"` message answering `call_id` in the researcher's `n`-th request.
fn tool_message(mock: &MockProvider, n: usize, call_id: &str) -> String {
    let body = researcher_requests(mock)[n].json();
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool" && m["tool_call_id"] == call_id)
        .unwrap_or_else(|| panic!("no tool message for {call_id}: {body}"))["content"]
        .as_str()
        .unwrap()
        .to_string()
}

fn result_of<'a>(events: &'a [Ev], call_id: &str) -> &'a Value {
    &events_named(events, "tool_result")
        .into_iter()
        .find(|e| e.data["call_id"] == call_id)
        .unwrap_or_else(|| panic!("no tool_result for {call_id}: {events:?}"))
        .data
}

fn assert_completed(events: &[Ev], server: &Server) {
    let done = events.last().expect("events");
    assert_eq!(done.event, "done");
    assert_eq!(
        done.data["status"],
        "completed",
        "{events:?}\n{}",
        server.logs()
    );
}

/// Starts the researcher on the long call; returns the open stream once the tool server
/// has the call (`sent` reads what agent-mesh wrote to it), and the call's JSON-RPC id.
fn run_into_long_call(
    server: &Server,
    sent: impl Fn() -> String,
) -> (String, support::SseStream, Vec<Ev>, Value) {
    let id = start_researcher_run(server, "Run the long operation");
    let mut stream = server.stream(&id, &[]);
    let mut seen = read_until(&mut stream, |e| e.event == "tool_call");
    assert_eq!(seen.last().unwrap().data["tool"], LONG_TOOL);
    let request_id = wait_until(Duration::from_secs(30), || {
        let s = sent();
        s.contains(LONG_TOOL).then(|| call_id_of(&s, LONG_TOOL))
    })
    .unwrap_or_else(|| panic!("the long call never reached the server:\n{}", sent()));
    // The operation is under way on the server (it answers only after 30 s).
    seen.retain(|e| e.event != "connection");
    (id, stream, seen, request_id)
}

/// Cancels run `id` and asserts it ends `cancelled` within 1 s; returns its last events.
fn cancel_within_a_second(server: &Server, id: &str, stream: &mut support::SseStream) -> Vec<Ev> {
    let started = Instant::now();
    let r = server.request("POST", &format!("/api/runs/{id}/cancel"), &[], b"");
    assert_eq!(r.status, 202, "{}", r.text());
    let rest = stream.collect();
    let elapsed = started.elapsed();
    let done = rest.last().expect("done");
    assert_eq!(done.event, "done");
    assert_eq!(done.data["status"], "cancelled", "{rest:?}");
    assert!(
        elapsed < Duration::from_secs(1),
        "the run took {elapsed:?} to end after the cancel"
    );
    // The call's card does not spin forever: its result says it was cancelled.
    let result = result_of(&rest, "call_long");
    assert_eq!(result["ok"], false);
    assert_eq!(result["content"], "cancelled");
    let snapshot = server.get(&format!("/api/runs/{id}")).json();
    let researcher = snapshot_agent(&snapshot, "researcher");
    assert_eq!(researcher["tools"][0]["ok"], false, "{snapshot}");
    rest
}

#[test]
fn cancel_during_a_stdio_tool_call_ends_the_run_within_a_second_and_tells_the_server() {
    let tools = ToolSetup::new();
    let mock = long_call_then("should not be asked");
    let config = tools.config(json!({"everything": tools.stdio_everything()}));
    let server = mesh(&mock, &config, &[]);
    let (id, mut stream, _, request_id) = run_into_long_call(&server, || tools.sent());
    let rest = cancel_within_a_second(&server, &id, &mut stream);

    let sent = tools.wait_sent("notifications/cancelled", Duration::from_secs(5));
    assert!(
        cancelled_request(&sent, &request_id),
        "the cancel names the call {request_id}:\n{sent}"
    );
    assert_eq!(
        researcher_requests(&mock).len(),
        1,
        "the model is not asked again"
    );
    assert!(!rest
        .iter()
        .any(|e| e.event == "stream_start" && e.data["agent"] == "writer"));
}

#[test]
fn cancel_during_an_http_tool_call_ends_the_run_within_a_second_and_tells_the_server() {
    let tools = ToolSetup::new();
    let everything = EverythingHttp::start();
    let tap = WireTap::start(everything.port);
    let mock = long_call_then("should not be asked");
    let config = tools.config(json!({"everything": {"url": tap.url()}}));
    let server = mesh(&mock, &config, &[]);
    let (id, mut stream, _, request_id) = run_into_long_call(&server, || tap.sent());
    cancel_within_a_second(&server, &id, &mut stream);

    let sent = wait_until(Duration::from_secs(5), || {
        let s = tap.sent();
        cancelled_request(&s, &request_id).then_some(s)
    });
    assert!(
        sent.is_some(),
        "no notifications/cancelled for {request_id}:\n{}",
        tap.sent()
    );
    assert_eq!(researcher_requests(&mock).len(), 1);
}

#[test]
fn a_call_over_the_tool_timeout_becomes_an_error_result_and_the_run_goes_on() {
    let tools = ToolSetup::new();
    let mock = long_call_then("It took too long.");
    let config = tools.config(json!({"everything": tools.stdio_everything()}));
    let server = mesh(&mock, &config, &[("MESH_TOOL_TIMEOUT_SECS", "1")]);
    let id = start_researcher_run(&server, "Run the long operation");
    let events = server.stream(&id, &[]).collect();
    assert_completed(&events, &server);

    let result = result_of(&events, "call_long");
    assert_eq!(result["ok"], false);
    assert!(
        result["content"].as_str().unwrap().contains("within 1 s"),
        "{result}"
    );
    let elapsed = result["elapsed_ms"].as_u64().unwrap();
    assert!((1_000..5_000).contains(&elapsed), "{elapsed} ms");
    let told = tool_message(&mock, 1, "call_long");
    assert!(
        told.starts_with("Error: ") && told.contains("within 1 s"),
        "{told}"
    );
    // The server is told to stop the operation.
    let sent = tools.wait_sent("notifications/cancelled", Duration::from_secs(5));
    assert!(cancelled_request(&sent, &call_id_of(&sent, LONG_TOOL)));
}

#[test]
fn a_stdio_server_killed_mid_call_is_an_error_result_and_the_next_call_restarts_it() {
    let tools = ToolSetup::new();
    let mock = MockProvider::start(|r, _| match (r.agent(), rounds_done(r)) {
        ("researcher", 0) => long_call(),
        ("researcher", 1) => call_tool("call_echo", "echo", json!({"message": "back again"})),
        ("researcher", _) => text("Recovered."),
        _ => text("# Final"),
    });
    let config = tools.config(json!({"everything": tools.stdio_everything()}));
    let server = mesh(&mock, &config, &[]);
    let (_, mut stream, mut seen, _) = run_into_long_call(&server, || tools.sent());

    let first_pid = tools.pid().expect("pid of the stdio server");
    let status = std::process::Command::new("kill")
        .args(["-KILL", &first_pid])
        .status()
        .expect("kill");
    assert!(status.success());
    seen.extend(stream.collect());
    assert_completed(&seen, &server);

    let long = result_of(&seen, "call_long");
    assert_eq!(long["ok"], false);
    assert!(
        long["content"].as_str().unwrap().contains("exited"),
        "{long}"
    );
    assert!(tool_message(&mock, 1, "call_long").starts_with("Error: "));
    // The next call started a new process (after the backoff) and it answered.
    let echo = result_of(&seen, "call_echo");
    assert_eq!(echo["ok"], true, "{echo}\n{}", server.logs());
    assert_eq!(echo["content"], "Echo: back again");
    assert_eq!(tool_message(&mock, 2, "call_echo"), "Echo: back again");
    let second_pid = tools.pid().expect("pid");
    assert_ne!(first_pid, second_pid, "a new process answered");
    assert!(
        echo["elapsed_ms"].as_u64().unwrap() >= 200,
        "the restart waited its backoff: {echo}"
    );
}

#[test]
fn an_http_server_killed_mid_call_is_an_error_result_and_the_run_goes_on() {
    let tools = ToolSetup::new();
    let mut everything = Some(EverythingHttp::start());
    let tap = WireTap::start(everything.as_ref().unwrap().port);
    let mock = long_call_then("The server went away.");
    let config = tools.config(json!({"everything": {"url": tap.url()}}));
    let server = mesh(&mock, &config, &[("MESH_TOOL_TIMEOUT_SECS", "20")]);
    let (_, mut stream, mut seen, _) = run_into_long_call(&server, || tap.sent());

    let killed_at = Instant::now();
    drop(everything.take()); // kills the server process
    seen.extend(stream.collect());
    assert_completed(&seen, &server);
    let long = result_of(&seen, "call_long");
    assert_eq!(long["ok"], false, "{long}");
    assert!(
        killed_at.elapsed() < Duration::from_secs(15),
        "the error came from the dead server, not the tool timeout: {long}"
    );
    let told = tool_message(&mock, 1, "call_long");
    assert!(told.starts_with("Error: "), "{told}");
    let writer = mock
        .chat_requests()
        .into_iter()
        .filter(|r| r.agent() == "writer")
        .count();
    assert_eq!(writer, 1, "the run went on to the writer");
}

#[test]
fn an_http_server_restarted_after_dying_mid_call_serves_the_next_call() {
    let tools = ToolSetup::new();
    let mut everything = Some(EverythingHttp::start());
    let port = everything.as_ref().unwrap().port;
    // The process that takes over the URL once the first one dies.
    let replacement = EverythingHttp::start();
    let restarted = Arc::new(AtomicBool::new(false));
    let mock = {
        let restarted = restarted.clone();
        MockProvider::start(move |r, _| match (r.agent(), rounds_done(r)) {
            ("researcher", 0) => long_call(),
            ("researcher", 1) => {
                // The model's next call comes once the server is back.
                wait_until(Duration::from_secs(60), || {
                    restarted.load(Ordering::SeqCst).then_some(())
                });
                call_tool("call_echo", "echo", json!({"message": "new session"}))
            }
            ("researcher", _) => text("Back."),
            _ => text("# Final"),
        })
    };
    // The URL agent-mesh knows is the tap's, which then relays to the replacement.
    let tap = WireTap::start(port);
    let config = tools.config(json!({"everything": {"url": tap.url()}}));
    let server = mesh(&mock, &config, &[("MESH_TOOL_TIMEOUT_SECS", "20")]);
    let (_, mut stream, mut seen, _) = run_into_long_call(&server, || tap.sent());
    drop(everything.take());
    seen.extend(read_until(&mut stream, |e| e.event == "tool_result"));
    assert_eq!(result_of(&seen, "call_long")["ok"], false);
    tap.retarget(replacement.port);
    restarted.store(true, Ordering::SeqCst);
    seen.extend(stream.collect());
    assert_completed(&seen, &server);
    // The restarted server does not know the old session: agent-mesh opens a new one.
    let echo = result_of(&seen, "call_echo");
    assert_eq!(echo["ok"], true, "{echo}\n{}", server.logs());
    assert_eq!(echo["content"], "Echo: new session");
    let initializes = support::tools::json_messages(&tap.sent())
        .iter()
        .filter(|m| m["method"] == "initialize")
        .count();
    assert_eq!(initializes, 2, "one session per server process");
}

#[test]
fn a_server_down_at_startup_leaves_the_run_with_the_other_servers_tools() {
    let tools = ToolSetup::new();
    let mock = MockProvider::start(|r, _| match (r.agent(), rounds_done(r)) {
        ("researcher", 0) => call_tool("call_up", "echo", json!({"message": "still here"})),
        ("researcher", _) => text("Used what was up."),
        _ => text("# Final"),
    });
    // Port 1: nothing listens there, and no test is ever given it (not ephemeral).
    let down = "http://127.0.0.1:1/mcp";
    let config = tools.config(json!({
        "down": {"url": down},
        "missing": {"command": "/nonexistent/mcp-server"},
        "everything": tools.stdio_everything(),
    }));
    let server = mesh(&mock, &config, &[]);
    let id = start_researcher_run(&server, "Use a tool");
    let events = server.stream(&id, &[]).collect();
    assert_completed(&events, &server);

    let offered = offered_tools(&researcher_requests(&mock)[0]);
    assert!(
        offered.contains(&"everything__echo".to_string()),
        "{offered:?}"
    );
    assert!(
        offered.iter().all(|t| t.starts_with("everything__")),
        "only the up server's tools: {offered:?}"
    );
    assert_eq!(result_of(&events, "call_up")["ok"], true);
    assert!(
        server.logs().contains("mcp down:") && server.logs().contains("mcp missing:"),
        "the log says why: {}",
        server.logs()
    );
}

#[test]
fn a_server_down_at_startup_is_used_once_it_comes_up() {
    let tools = ToolSetup::new();
    let mock = MockProvider::start(|r, _| match (r.agent(), rounds_done(r)) {
        ("researcher", 0) if offered_tools(r).contains(&"late__echo".to_string()) => {
            let middle = vec![openai_calls(
                json!([{"index": 0, "id": "call_late", "type": "function",
                "function": {"name": "late__echo", "arguments": "{\"message\":\"up now\"}"}}]),
            )];
            Reply::sse(&openai_answer("", middle, "tool_calls", (10, 1, 0.0)))
        }
        ("researcher", _) => text("Answered."),
        _ => text("# Final"),
    });
    // The server runs, but a closed tap in front hangs up on every connection until
    // it is opened: down at startup, without a port another test could take meanwhile.
    let late = EverythingHttp::start();
    let tap = WireTap::start_closed(late.port);
    let config = tools.config(json!({"late": {"url": tap.url()}}));
    let server = mesh(&mock, &config, &[]);
    let run_once = || {
        let id = start_researcher_run(&server, "Use a tool if you have one");
        let events = server.stream(&id, &[]).collect();
        assert_completed(&events, &server);
        events
    };
    let first = run_once();
    assert!(events_named(&first, "tool_call").is_empty());
    assert!(offered_tools(&researcher_requests(&mock)[0]).is_empty());

    tap.open();
    // Each turn tries the failed server again in the background: within a few runs the
    // server's tools are offered, without a restart.
    let deadline = Instant::now() + Duration::from_secs(60);
    let events = loop {
        let events = run_once();
        if !events_named(&events, "tool_call").is_empty() {
            break events;
        }
        assert!(
            Instant::now() < deadline,
            "the server's tools never came back:\n{}",
            server.logs()
        );
    };
    let result = result_of(&events, "call_late");
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["content"], "Echo: up now");
    assert!(
        server.logs().contains("mcp late: connected again"),
        "{}",
        server.logs()
    );
}
