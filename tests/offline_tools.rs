//! The offline provider's tool loop through the real binary: with `MESH_MCP_CONFIG`
//! naming the reference server (server-everything over stdio, and over Streamable
//! HTTP), each specialist calls `echo` once with the task, the run carries the
//! `tool_call` and `tool_result` events in order, and the answer quotes the result.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::mcp::{everything_js, node, EverythingHttp};
use support::{text_of, Ev, Server};

const TASK: &str = "Why is the sky blue?";

/// Runs `TASK` on a server whose MCP config is `config`; the run's events and snapshot.
fn offline_run(config: Value, name: &str) -> (Vec<Ev>, Value) {
    let file = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("offline-tools-{name}-{}.json", std::process::id()));
    std::fs::write(&file, config.to_string()).expect("write config");
    let path = file.to_string_lossy().into_owned();
    let server = Server::start(&[("MESH_MCP_CONFIG", path.as_str())]);
    let id = server.start_run(&json!({ "task": TASK }).to_string());
    let events = server.stream(&id, &[]).collect();
    let snapshot = server.wait_finished(&id, Duration::from_secs(60));
    let _ = std::fs::remove_file(&file);
    (events, snapshot)
}

fn position(events: &[Ev], what: &str, agent: &str) -> Vec<usize> {
    events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.event == what && e.data["agent"] == agent)
        .map(|(i, _)| i)
        .collect()
}

/// Every specialist of the plan made exactly one `echo` call with the task, in its
/// turn, got the echo back and quoted it; the orchestrator and the writer made none.
fn assert_one_echo_per_specialist(events: &[Ev], snapshot: &Value) {
    assert_eq!(snapshot["status"], "completed", "{snapshot}");
    let plan = events.iter().find(|e| e.event == "plan").expect("plan");
    let team: Vec<&str> = plan.data["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(team, ["researcher", "analyst"], "the task asks why");
    for agent in ["orchestrator", "writer"] {
        assert!(position(events, "tool_call", agent).is_empty(), "{agent}");
    }
    let mut ids = Vec::new();
    for agent in team {
        let calls = position(events, "tool_call", agent);
        let results = position(events, "tool_result", agent);
        assert_eq!((calls.len(), results.len()), (1, 1), "{agent}: {events:?}");
        let (call, result) = (&events[calls[0]].data, &events[results[0]].data);
        let start = position(events, "stream_start", agent);
        let end = position(events, "stream_end", agent);
        assert!(
            start[0] < calls[0] && calls[0] < results[0] && results[0] < end[0],
            "{agent}: call and result inside the turn"
        );
        assert_eq!(call["server"], "everything");
        assert_eq!(call["tool"], "echo");
        assert_eq!(call["arguments"], json!({ "message": TASK }));
        assert_eq!(call["call_id"], format!("call_offline_{agent}_1"));
        assert_eq!(result["call_id"], call["call_id"]);
        assert_eq!(result["ok"], true);
        let echoed = format!("Echo: {TASK}");
        assert_eq!(result["content"], echoed.as_str());
        assert!(result["elapsed_ms"].is_u64());
        // The answer is streamed after the result and quotes it.
        let text = text_of(events, agent);
        assert!(
            text.contains(&format!("- `everything__echo` answered: \"{echoed}\"")),
            "{agent}: {text}"
        );
        let first_token = events
            .iter()
            .position(|e| e.event == "token" && e.data["agent"] == agent)
            .expect("tokens");
        assert!(
            first_token > results[0],
            "{agent}: no text before the result"
        );
        // The snapshot keeps the call with its result under the agent.
        let kept = snapshot["agents"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["name"] == agent))
            .expect("agent in snapshot");
        assert_eq!(kept["tools"].as_array().map(Vec::len), Some(1), "{kept}");
        assert_eq!(kept["tools"][0]["content"], echoed.as_str());
        ids.push(call["call_id"].clone());
    }
    assert_ne!(ids[0], ids[1], "each agent's call has its own id");
}

#[test]
fn an_offline_run_calls_the_reference_server_over_stdio_and_quotes_it() {
    let config = json!({"mcpServers": {
        "everything": {"command": node(), "args": [everything_js(), "stdio"]}}});
    let (events, snapshot) = offline_run(config, "stdio");
    assert_one_echo_per_specialist(&events, &snapshot);
}

#[test]
fn an_offline_run_calls_the_reference_server_over_streamable_http_and_quotes_it() {
    let everything = EverythingHttp::start();
    let config = json!({"mcpServers": {"everything": {"url": everything.url()}}});
    let (events, snapshot) = offline_run(config, "http");
    assert_one_echo_per_specialist(&events, &snapshot);
}

#[test]
fn without_an_mcp_config_the_offline_run_has_no_tool_events() {
    let server = Server::start(&[]);
    let id = server.start_run(&json!({ "task": TASK }).to_string());
    let events = server.stream(&id, &[]).collect();
    assert!(events
        .iter()
        .all(|e| e.event != "tool_call" && e.event != "tool_result"));
    assert!(!text_of(&events, "researcher").contains("Tool results"));
    assert_eq!(events.last().map(|e| e.event.as_str()), Some("done"));
}
