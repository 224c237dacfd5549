//! The tool loop through the real binary, over real sockets, in both provider wire
//! formats: mock providers stream tool calls the way real servers do (arguments split
//! anywhere, parallel calls, several in one chunk, Ollama's `index: 0`, `stop` with
//! calls, bad JSON, `tool_use` blocks with `input_json_delta`), the reference MCP server
//! server-everything (stdio) runs them, and the tests read what the mock receives next
//! and the run's events: exact shapes of the real APIs.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::mock::{MockProvider, Recorded, Reply};
use support::tools::{
    anthropic_answer, cut_every, events_named, mesh_with, offered_tools, openai_answer,
    openai_args, openai_call_start, openai_calls, openai_text, researcher_requests, rounds_done,
    snapshot_agent, start_researcher_run, AnthropicBlock, ToolSetup,
};
use support::{text_of, Ev, Server};

const RUN_TIMEOUT: Duration = Duration::from_secs(90);
const OPENAI_KEY: &str = "sk-test-openai-0123456789";
const ANTHROPIC_KEY: &str = "sk-ant-test-0123456789";

/// The answer of every agent but the researcher.
fn writer_answer() -> Reply {
    Reply::sse(&openai_text("# Final\n\nDone.", (10, 5, 0.0)))
}

fn anthropic_writer_answer() -> Reply {
    Reply::sse(&anthropic_answer(
        &[AnthropicBlock::Text("# Final\n\nDone.")],
        "end_turn",
        10,
        5,
    ))
}

/// agent-mesh on the OpenAI provider at `mock`, with server-everything over stdio.
fn openai_mesh(mock: &MockProvider, tools: &ToolSetup, extra: &[(&str, &str)]) -> Server {
    let config = tools.config(json!({"everything": tools.stdio_everything()}));
    let base = mock.url("/v1");
    let provider = [("OPENAI_API_KEY", OPENAI_KEY), ("OPENAI_BASE_URL", &base)];
    mesh_with(provider, &config, extra)
}

/// The same on the Anthropic provider.
fn anthropic_mesh(mock: &MockProvider, tools: &ToolSetup, extra: &[(&str, &str)]) -> Server {
    let config = tools.config(json!({"everything": tools.stdio_everything()}));
    let base = mock.url("");
    let provider = [
        ("ANTHROPIC_API_KEY", ANTHROPIC_KEY),
        ("ANTHROPIC_BASE_URL", &base),
    ];
    mesh_with(provider, &config, extra)
}

/// Runs the researcher alone (then the writer) to the end; its events and snapshot.
fn run(server: &Server, task: &str) -> (Vec<Ev>, Value) {
    let id = start_researcher_run(server, task);
    let events = server.stream(&id, &[]).collect();
    let snapshot = server.wait_finished(&id, RUN_TIMEOUT);
    let done = events.last().expect("events");
    assert_eq!(done.event, "done", "{events:?}");
    assert_eq!(
        done.data["status"],
        "completed",
        "{events:?}\n{}",
        server.logs()
    );
    (events, snapshot)
}

fn messages(r: &Recorded) -> Vec<Value> {
    r.json()["messages"].as_array().expect("messages").clone()
}

/// The researcher's `tool_call` and `tool_result` events, each checked to carry exactly
/// the issue's fields, in call order.
fn tool_events(events: &[Ev]) -> (Vec<Value>, Vec<Value>) {
    let calls: Vec<Value> = events_named(events, "tool_call")
        .into_iter()
        .map(|e| e.data.clone())
        .collect();
    let results: Vec<Value> = events_named(events, "tool_result")
        .into_iter()
        .map(|e| e.data.clone())
        .collect();
    for c in &calls {
        let keys: Vec<&str> = c.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys.len(),
            5,
            "tool_call has agent, call_id, server, tool, arguments: {c}"
        );
        assert_eq!(c["agent"], "researcher");
        assert!(c["call_id"].is_string() && c["server"].is_string() && c["tool"].is_string());
    }
    for r in &results {
        let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys.len(),
            5,
            "tool_result has agent, call_id, ok, content, elapsed_ms: {r}"
        );
        assert_eq!(r["agent"], "researcher");
        assert!(r["ok"].is_boolean() && r["content"].is_string() && r["elapsed_ms"].is_u64());
    }
    (calls, results)
}

fn result_for<'a>(results: &'a [Value], call_id: &str) -> &'a Value {
    results
        .iter()
        .find(|r| r["call_id"] == call_id)
        .unwrap_or_else(|| panic!("no tool_result for {call_id}: {results:?}"))
}

fn stream_end_of<'a>(events: &'a [Ev], agent: &str) -> &'a Ev {
    events
        .iter()
        .find(|e| e.event == "stream_end" && e.data["agent"] == agent)
        .unwrap_or_else(|| panic!("no stream_end for {agent}"))
}

// The arguments of `call_a` as the model streams them: cut mid-key, mid-escape (`\"`
// and a `\ud83d\ude00` surrogate pair), around raw multi-byte characters.
const SPLIT_ARGS: [&str; 4] = [
    "{\"mes",
    "sage\": \"caf",
    r#"é \"q\" \ud8"#,
    r#"3d\ude00 😀"}"#,
];
const SPLIT_MESSAGE: &str = "café \"q\" 😀 😀";

#[test]
fn openai_split_arguments_and_parallel_calls_go_to_the_tools_and_back_as_tool_messages() {
    let tools = ToolSetup::new();
    let mock = MockProvider::start(|r, _| match (r.agent(), rounds_done(r)) {
        ("researcher", 0) => {
            let middle = vec![
                openai_calls(json!([openai_call_start(0, "call_a", "everything__echo")])),
                openai_calls(json!([openai_args(0, SPLIT_ARGS[0])])),
                openai_calls(json!([openai_args(0, SPLIT_ARGS[1])])),
                openai_calls(json!([openai_call_start(
                    1,
                    "call_b",
                    "everything__get-sum"
                )])),
                openai_calls(json!([openai_args(1, "{\"a\": 2")])),
                openai_calls(json!([openai_args(0, SPLIT_ARGS[2])])),
                openai_calls(json!([openai_args(0, SPLIT_ARGS[3])])),
                openai_calls(json!([openai_args(1, ", \"b\": 40}")])),
            ];
            // Five bytes a chunk: the wire splits lines, keys and UTF-8 characters too.
            cut_every(
                &openai_answer("Checking. ", middle, "tool_calls", (100, 20, 0.001)),
                5,
            )
        }
        ("researcher", _) => Reply::sse(&openai_text("The answer is 42.", (150, 10, 0.002))),
        _ => writer_answer(),
    });
    let server = openai_mesh(&mock, &tools, &[]);
    let (events, snapshot) = run(&server, "What is 2 + 40?");

    let reqs = researcher_requests(&mock);
    assert_eq!(reqs.len(), 2, "one tool round, then the answer");
    // The first request offers every server-everything tool in the OpenAI shape.
    let first = reqs[0].json();
    let echo = first["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .find(|t| t["function"]["name"] == "everything__echo")
        .expect("echo offered")
        .clone();
    assert_eq!(echo["type"], "function");
    assert_eq!(echo["function"]["parameters"]["type"], "object");
    assert!(echo["function"]["parameters"]["properties"]["message"].is_object());
    assert!(offered_tools(&reqs[0]).contains(&"everything__get-sum".to_string()));

    // What the mock receives next: the assistant message repeating both calls, then
    // one `role: "tool"` message per call, matched by id, in the calls' order.
    let next = messages(&reqs[1]);
    assert_eq!(next.len(), 5, "{next:?}");
    assert_eq!(
        next[2],
        json!({"role": "assistant", "content": "Checking. ", "tool_calls": [
            {"id": "call_a", "type": "function",
             "function": {"name": "everything__echo", "arguments": SPLIT_ARGS.concat()}},
            {"id": "call_b", "type": "function",
             "function": {"name": "everything__get-sum", "arguments": "{\"a\": 2, \"b\": 40}"}},
        ]})
    );
    assert_eq!(
        next[3],
        json!({"role": "tool", "tool_call_id": "call_a", "content": format!("Echo: {SPLIT_MESSAGE}")})
    );
    assert_eq!(
        next[4],
        json!({"role": "tool", "tool_call_id": "call_b", "content": "The sum of 2 and 40 is 42."})
    );
    assert!(
        offered_tools(&reqs[1]).contains(&"everything__echo".to_string()),
        "tools stay offered within the round bound"
    );

    // The events: both calls announced before any result, with the issue's fields.
    let (calls, results) = tool_events(&events);
    assert_eq!(
        calls,
        vec![
            json!({"agent": "researcher", "call_id": "call_a", "server": "everything",
                   "tool": "echo", "arguments": {"message": SPLIT_MESSAGE}}),
            json!({"agent": "researcher", "call_id": "call_b", "server": "everything",
                   "tool": "get-sum", "arguments": {"a": 2, "b": 40}}),
        ]
    );
    let last_call = events.iter().rposition(|e| e.event == "tool_call").unwrap();
    let first_result = events
        .iter()
        .position(|e| e.event == "tool_result")
        .unwrap();
    assert!(last_call < first_result, "calls first, then results");
    assert_eq!(results.len(), 2);
    assert_eq!(result_for(&results, "call_a")["ok"], true);
    assert_eq!(
        result_for(&results, "call_a")["content"],
        format!("Echo: {SPLIT_MESSAGE}")
    );
    assert_eq!(
        result_for(&results, "call_b")["content"],
        "The sum of 2 and 40 is 42."
    );

    // One stream for the turn: the text of both rounds, usage and cost added up.
    assert_eq!(
        events_named(&events, "stream_start")
            .iter()
            .filter(|e| e.data["agent"] == "researcher")
            .count(),
        1
    );
    assert_eq!(
        text_of(&events, "researcher"),
        "Checking. The answer is 42."
    );
    let end = stream_end_of(&events, "researcher");
    assert_eq!(
        end.data["usage"],
        json!({"input_tokens": 250, "output_tokens": 30})
    );
    let cost = end.data["cost_usd"].as_f64().expect("cost");
    assert!((cost - 0.003).abs() < 1e-9, "{cost}");

    // The snapshot keeps each call under its agent.
    let researcher = snapshot_agent(&snapshot, "researcher");
    let kept = researcher["tools"].as_array().expect("tools in snapshot");
    assert_eq!(kept.len(), 2);
    assert_eq!(kept[0]["call_id"], "call_a");
    assert_eq!(kept[0]["ok"], true);
    assert_eq!(kept[1]["content"], "The sum of 2 and 40 is 42.");
    assert_eq!(
        researcher["usage"],
        json!({"input_tokens": 250, "output_tokens": 30})
    );
}

#[test]
fn openai_several_calls_in_one_chunk_with_finish_reason_stop_are_a_tool_turn() {
    let tools = ToolSetup::new();
    let mock = MockProvider::start(|r, _| match (r.agent(), rounds_done(r)) {
        ("researcher", 0) => {
            // Both calls complete in one chunk, and the server says `stop`.
            let middle = vec![openai_calls(json!([
                {"index": 0, "id": "call_1", "type": "function",
                 "function": {"name": "everything__echo", "arguments": "{\"message\":\"one\"}"}},
                {"index": 1, "id": "call_2", "type": "function",
                 "function": {"name": "everything__get-sum", "arguments": "{\"a\":1,\"b\":1}"}},
            ]))];
            Reply::sse(&openai_answer("", middle, "stop", (50, 5, 0.0)))
        }
        ("researcher", _) => Reply::sse(&openai_text("Both done.", (60, 5, 0.0))),
        _ => writer_answer(),
    });
    let server = openai_mesh(&mock, &tools, &[]);
    let (events, _) = run(&server, "Echo one and add one and one");

    let reqs = researcher_requests(&mock);
    assert_eq!(
        reqs.len(),
        2,
        "`stop` with calls present is still a tool turn"
    );
    let next = messages(&reqs[1]);
    assert_eq!(next.len(), 5, "{next:?}");
    // An assistant turn of only calls carries `content: null`.
    assert_eq!(next[2]["role"], "assistant");
    assert_eq!(next[2]["content"], Value::Null);
    let ids: Vec<&str> = next[2]["tool_calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["call_1", "call_2"]);
    assert_eq!(
        next[3],
        json!({"role": "tool", "tool_call_id": "call_1", "content": "Echo: one"})
    );
    assert_eq!(
        next[4],
        json!({"role": "tool", "tool_call_id": "call_2", "content": "The sum of 1 and 1 is 2."})
    );
    let (calls, results) = tool_events(&events);
    assert_eq!(calls.len(), 2);
    assert!(results.iter().all(|r| r["ok"] == true), "{results:?}");
    assert_eq!(text_of(&events, "researcher"), "Both done.");
}

#[test]
fn ollama_parallel_calls_all_at_index_zero_are_told_apart_by_id() {
    let tools = ToolSetup::new();
    let mock = MockProvider::start(|r, _| match (r.agent(), rounds_done(r)) {
        ("researcher", 0) => {
            // Ollama: every parallel call says `index: 0`, each whole in its own chunk.
            let middle = vec![
                openai_calls(json!([{"index": 0, "id": "call_x", "type": "function",
                    "function": {"name": "everything__echo", "arguments": "{\"message\":\"Oslo\"}"}}])),
                openai_calls(json!([{"index": 0, "id": "call_y", "type": "function",
                    "function": {"name": "everything__echo", "arguments": "{\"message\":\"Rome\"}"}}])),
            ];
            Reply::sse(&openai_answer("", middle, "stop", (40, 8, 0.0)))
        }
        ("researcher", _) => Reply::sse(&openai_text("Oslo and Rome.", (70, 4, 0.0))),
        _ => writer_answer(),
    });
    let config = tools.config(json!({"everything": tools.stdio_everything()}));
    let base = mock.url("/v1");
    let server = Server::start(&[
        ("CUSTOM_BASE_URL", base.as_str()),
        ("MESH_MCP_CONFIG", config.as_str()),
    ]);
    let (events, _) = run(&server, "Echo two cities");

    let reqs = researcher_requests(&mock);
    assert_eq!(reqs.len(), 2);
    let next = messages(&reqs[1]);
    assert_eq!(
        next[2]["tool_calls"],
        json!([
            {"id": "call_x", "type": "function",
             "function": {"name": "everything__echo", "arguments": "{\"message\":\"Oslo\"}"}},
            {"id": "call_y", "type": "function",
             "function": {"name": "everything__echo", "arguments": "{\"message\":\"Rome\"}"}},
        ])
    );
    assert_eq!(
        &next[3..],
        &[
            json!({"role": "tool", "tool_call_id": "call_x", "content": "Echo: Oslo"}),
            json!({"role": "tool", "tool_call_id": "call_y", "content": "Echo: Rome"}),
        ]
    );
    let (calls, results) = tool_events(&events);
    let args: Vec<&Value> = calls.iter().map(|c| &c["arguments"]).collect();
    assert_eq!(
        args,
        [&json!({"message": "Oslo"}), &json!({"message": "Rome"})]
    );
    assert_eq!(results.len(), 2);
}

#[test]
fn invalid_json_arguments_and_a_tool_error_go_back_to_the_model_and_the_run_goes_on() {
    let tools = ToolSetup::new();
    let mock = MockProvider::start(|r, _| match (r.agent(), rounds_done(r)) {
        ("researcher", 0) => {
            let middle = vec![
                openai_calls(json!([openai_call_start(
                    0,
                    "call_bad",
                    "everything__echo"
                )])),
                openai_calls(json!([openai_args(0, "{\"message\": \"unterminated")])),
                // Valid JSON the tool rejects: server-everything answers `isError: true`.
                openai_calls(json!([openai_call_start(
                    1,
                    "call_err",
                    "everything__echo"
                )])),
                openai_calls(json!([openai_args(1, "{\"message\": 5}")])),
                openai_calls(json!([openai_call_start(
                    2,
                    "call_none",
                    "nowhere__nothing"
                )])),
            ];
            Reply::sse(&openai_answer("", middle, "tool_calls", (30, 3, 0.0)))
        }
        ("researcher", _) => Reply::sse(&openai_text("Recovered.", (40, 2, 0.0))),
        _ => writer_answer(),
    });
    let server = openai_mesh(&mock, &tools, &[]);
    let (events, _) = run(&server, "Try the tools badly");

    let reqs = researcher_requests(&mock);
    assert_eq!(reqs.len(), 2);
    let next = messages(&reqs[1]);
    assert_eq!(next.len(), 6, "{next:?}");
    // The call is repeated as the model sent it, broken arguments and all.
    assert_eq!(
        next[2]["tool_calls"][0]["function"]["arguments"],
        "{\"message\": \"unterminated"
    );
    let tool_message = |i: usize, id: &str| -> String {
        assert_eq!(next[i]["role"], "tool");
        assert_eq!(next[i]["tool_call_id"], id);
        next[i]["content"].as_str().unwrap().to_string()
    };
    let bad = tool_message(3, "call_bad");
    assert!(
        bad.starts_with("Error: the arguments are not valid JSON"),
        "{bad}"
    );
    let err = tool_message(4, "call_err");
    assert!(
        err.starts_with("Error: ") && err.contains("Input validation error"),
        "the tool's isError result reaches the model as an error: {err}"
    );
    let none = tool_message(5, "call_none");
    assert!(none.contains("no tool named"), "{none}");

    let (calls, results) = tool_events(&events);
    assert_eq!(calls[0]["arguments"], "{\"message\": \"unterminated");
    assert_eq!(calls[2]["server"], "");
    assert!(results.iter().all(|r| r["ok"] == false), "{results:?}");
    assert!(result_for(&results, "call_err")["content"]
        .as_str()
        .unwrap()
        .contains("Input validation error"));
    assert_eq!(text_of(&events, "researcher"), "Recovered.");
    assert!(!events.iter().any(|e| e.event == "error"), "{events:?}");
}

#[test]
fn anthropic_tool_use_blocks_go_to_the_tools_and_back_as_tool_results() {
    let tools = ToolSetup::new();
    let mock = MockProvider::start(|r, _| match (r.agent(), rounds_done(r)) {
        ("researcher", 0) => {
            let events = anthropic_answer(
                &[
                    AnthropicBlock::Text("Let me look."),
                    AnthropicBlock::ToolUse(
                        "toolu_01",
                        "everything__echo",
                        vec!["", "{\"mess", r#"age": "h\u00e9"#, "llo ✓\"}"],
                    ),
                    AnthropicBlock::ToolUse(
                        "toolu_02",
                        "everything__get-sum",
                        vec!["{\"a\": 1,", " \"b\": 2}"],
                    ),
                    AnthropicBlock::ToolUse(
                        "toolu_03",
                        "everything__echo",
                        vec!["{\"message\"", ": 7}"],
                    ),
                ],
                "tool_use",
                200,
                40,
            );
            cut_every(&events, 7)
        }
        ("researcher", _) => Reply::sse(&anthropic_answer(
            &[AnthropicBlock::Text("All three tried.")],
            "end_turn",
            300,
            12,
        )),
        _ => anthropic_writer_answer(),
    });
    let server = anthropic_mesh(&mock, &tools, &[]);
    let (events, _) = run(&server, "Look things up");

    let reqs = researcher_requests(&mock);
    assert_eq!(reqs.len(), 2);
    for r in &reqs {
        assert_eq!(r.path, "/v1/messages");
        assert_eq!(r.header("x-api-key"), Some(ANTHROPIC_KEY));
        assert!(r.header("anthropic-version").is_some());
    }
    let first = reqs[0].json();
    let echo = first["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .find(|t| t["name"] == "everything__echo")
        .expect("echo offered")
        .clone();
    assert_eq!(echo["input_schema"]["type"], "object");
    assert!(echo["description"].is_string());

    let next = messages(&reqs[1]);
    assert_eq!(next.len(), 3, "{next:?}");
    assert_eq!(
        next[1],
        json!({"role": "assistant", "content": [
            {"type": "text", "text": "Let me look."},
            {"type": "tool_use", "id": "toolu_01", "name": "everything__echo", "input": {"message": "héllo ✓"}},
            {"type": "tool_use", "id": "toolu_02", "name": "everything__get-sum", "input": {"a": 1, "b": 2}},
            {"type": "tool_use", "id": "toolu_03", "name": "everything__echo", "input": {"message": 7}},
        ]})
    );
    assert_eq!(next[2]["role"], "user");
    let blocks = next[2]["content"].as_array().expect("tool_result blocks");
    assert_eq!(blocks.len(), 3);
    assert_eq!(
        blocks[0],
        json!({"type": "tool_result", "tool_use_id": "toolu_01", "content": "Echo: héllo ✓", "is_error": false})
    );
    assert_eq!(
        blocks[1],
        json!({"type": "tool_result", "tool_use_id": "toolu_02", "content": "The sum of 1 and 2 is 3.", "is_error": false})
    );
    assert_eq!(blocks[2]["type"], "tool_result");
    assert_eq!(blocks[2]["tool_use_id"], "toolu_03");
    assert_eq!(blocks[2]["is_error"], true, "isError goes back as is_error");
    assert!(blocks[2]["content"]
        .as_str()
        .unwrap()
        .contains("Input validation error"));

    let (calls, results) = tool_events(&events);
    assert_eq!(
        calls[0],
        json!({"agent": "researcher", "call_id": "toolu_01", "server": "everything",
               "tool": "echo", "arguments": {"message": "héllo ✓"}})
    );
    assert_eq!(result_for(&results, "toolu_03")["ok"], false);
    assert_eq!(result_for(&results, "toolu_01")["ok"], true);
    assert_eq!(
        text_of(&events, "researcher"),
        "Let me look.All three tried."
    );
    let end = stream_end_of(&events, "researcher");
    assert_eq!(
        end.data["usage"],
        json!({"input_tokens": 500, "output_tokens": 52})
    );
}

/// The model asks for a tool every time it may: after MESH_TOOL_ROUNDS rounds it is told
/// to answer, and may not call tools any more (`tool_choice` none, in the format's
/// shape). The tools stay listed: the Messages API refuses a conversation holding
/// tool_use / tool_result blocks without `tools` ("Requests which include tool_use or
/// tool_result blocks must define tools").
fn assert_round_bound(
    mock: &MockProvider,
    events: &[Ev],
    tool_choice_none: Value,
    answer_now_in: impl Fn(&Value) -> bool,
) {
    let reqs = researcher_requests(mock);
    assert_eq!(reqs.len(), 3, "two tool rounds, then the answer");
    for r in &reqs[..2] {
        assert!(offered_tools(r).contains(&"everything__echo".to_string()));
        assert!(r.json().get("tool_choice").is_none());
    }
    let last = reqs[2].json();
    assert_eq!(
        last["tool_choice"], tool_choice_none,
        "the last request allows no tool: {last}"
    );
    assert_eq!(offered_tools(&reqs[2]), offered_tools(&reqs[0]));
    let msgs = last["messages"].as_array().unwrap();
    assert!(
        answer_now_in(msgs.last().unwrap()),
        "the agent is told to answer now: {:?}",
        msgs.last()
    );
    let (calls, results) = tool_events(events);
    assert_eq!((calls.len(), results.len()), (2, 2));
    let end = stream_end_of(events, "researcher");
    assert_eq!(
        end.data["usage"],
        json!({"input_tokens": 300, "output_tokens": 30}),
        "usage adds up over every round"
    );
}

const ANSWER_NOW: &str = "You have used all the tool calls allowed for this turn";

#[test]
fn openai_after_the_round_bound_the_agent_answers_without_tools() {
    let tools = ToolSetup::new();
    let mock = MockProvider::start(|r, _| match r.agent() {
        "researcher" if !offered_tools(r).is_empty() && r.json().get("tool_choice").is_none() => {
            let id = format!("call_{}", rounds_done(r));
            let middle = vec![openai_calls(
                json!([{"index": 0, "id": id, "type": "function",
                "function": {"name": "everything__echo", "arguments": "{\"message\":\"again\"}"}}]),
            )];
            Reply::sse(&openai_answer("", middle, "tool_calls", (100, 10, 0.0)))
        }
        "researcher" => Reply::sse(&openai_text("Enough tools.", (100, 10, 0.0))),
        _ => writer_answer(),
    });
    let server = openai_mesh(&mock, &tools, &[("MESH_TOOL_ROUNDS", "2")]);
    let (events, _) = run(&server, "Loop on tools");
    assert_round_bound(&mock, &events, json!("none"), |m| {
        m["role"] == "user" && m["content"].as_str().unwrap_or("").contains(ANSWER_NOW)
    });
    assert_eq!(text_of(&events, "researcher"), "Enough tools.");
}

#[test]
fn anthropic_after_the_round_bound_the_agent_answers_without_tools() {
    let tools = ToolSetup::new();
    let mock = MockProvider::start(|r, _| match r.agent() {
        "researcher" if !offered_tools(r).is_empty() && r.json().get("tool_choice").is_none() => {
            let id = format!("toolu_{}", rounds_done(r));
            Reply::sse(&anthropic_answer(
                &[AnthropicBlock::ToolUse(
                    &id,
                    "everything__echo",
                    vec!["{\"message\":\"again\"}"],
                )],
                "tool_use",
                100,
                10,
            ))
        }
        "researcher" => Reply::sse(&anthropic_answer(
            &[AnthropicBlock::Text("Enough tools.")],
            "end_turn",
            100,
            10,
        )),
        _ => anthropic_writer_answer(),
    });
    let server = anthropic_mesh(&mock, &tools, &[("MESH_TOOL_ROUNDS", "2")]);
    let (events, _) = run(&server, "Loop on tools");
    assert_round_bound(&mock, &events, json!({"type": "none"}), |m| {
        m["role"] == "user" && m.to_string().contains(ANSWER_NOW)
    });
    assert_eq!(text_of(&events, "researcher"), "Enough tools.");
}

/// The bounded result goes to the model whole; the event carries 2,000 characters
/// and a note; the snapshot keeps the call's whole bounded result, on the instance
/// that ran it and on another instance of a shared Redis store that folded it from
/// the stream, while streams from either never carry more than the cut.
#[test]
fn a_tool_result_over_16_kib_is_cut_with_a_note() {
    let tools = ToolSetup::new();
    let long = "ü".repeat(10_000); // 20,000 bytes
    let args = json!({"message": long}).to_string();
    let mock = MockProvider::start(move |r, _| match (r.agent(), rounds_done(r)) {
        ("researcher", 0) => {
            let middle = vec![openai_calls(
                json!([{"index": 0, "id": "call_long", "type": "function",
                "function": {"name": "everything__echo", "arguments": args}}]),
            )];
            Reply::sse(&openai_answer("", middle, "tool_calls", (10, 1, 0.0)))
        }
        ("researcher", _) => Reply::sse(&openai_text("Long read.", (10, 1, 0.0))),
        _ => writer_answer(),
    });
    let redis = support::redis::RedisServer::start();
    let url = redis.url(0);
    let shared = [("MESH_REDIS_URL", url.as_str())];
    let server = openai_mesh(&mock, &tools, &shared);
    let other = openai_mesh(&mock, &tools, &shared);
    let (events, snapshot) = run(&server, "Echo something long");

    let next = messages(&researcher_requests(&mock)[1]);
    let content = next[3]["content"].as_str().expect("tool content");
    let note = "[tool output cut: 16384 of 20006 bytes shown]";
    assert!(
        content.ends_with(note),
        "{}",
        &content[content.len() - 80..]
    );
    let kept = content.strip_suffix(note).unwrap().trim_end();
    assert!(kept.len() <= 16 * 1024, "{}", kept.len());
    assert!(kept.starts_with("Echo: üü"));
    // The event carries less still, and says where the rest is.
    let (_, results) = tool_events(&events);
    let event_content = results[0]["content"].as_str().unwrap();
    assert!(event_content.chars().count() < 2_100);
    assert!(event_content.contains("more characters"), "{event_content}");
    assert!(results[0].get("full_content").is_none(), "{}", results[0]);
    let researcher = snapshot_agent(&snapshot, "researcher");
    assert_eq!(researcher["tools"][0]["ok"], true);
    let kept_whole = |snapshot_content: &Value| {
        let got = snapshot_content.as_str().unwrap_or_default();
        assert!(
            got == content,
            "the snapshot kept {} of the {} characters",
            got.chars().count(),
            content.chars().count()
        );
    };
    kept_whole(&researcher["tools"][0]["content"]);

    let id = snapshot["id"].as_str().unwrap();
    let copied = other.get(&format!("/api/runs/{id}")).json();
    assert_eq!(copied["status"], "completed", "{copied}");
    kept_whole(&snapshot_agent(&copied, "researcher")["tools"][0]["content"]);
    let replayed = other.stream(id, &[]).collect();
    let (_, results) = tool_events(&replayed);
    assert_eq!(results[0]["content"], event_content);
    assert!(results[0].get("full_content").is_none(), "{}", results[0]);
}

#[test]
fn anthropic_tool_use_without_input_deltas_calls_with_no_arguments_and_images_are_summarized() {
    let tools = ToolSetup::new();
    let mock = MockProvider::start(|r, _| match (r.agent(), rounds_done(r)) {
        // A tool with no parameters: the block carries no input_json_delta at all.
        ("researcher", 0) => Reply::sse(&anthropic_answer(
            &[AnthropicBlock::ToolUse(
                "toolu_img",
                "everything__get-tiny-image",
                Vec::new(),
            )],
            "tool_use",
            20,
            4,
        )),
        ("researcher", _) => Reply::sse(&anthropic_answer(
            &[AnthropicBlock::Text("A logo.")],
            "end_turn",
            30,
            3,
        )),
        _ => anthropic_writer_answer(),
    });
    let server = anthropic_mesh(&mock, &tools, &[]);
    let (events, _) = run(&server, "Show the logo");

    let next = messages(&researcher_requests(&mock)[1]);
    assert_eq!(
        next[1]["content"],
        json!([{"type": "tool_use", "id": "toolu_img", "name": "everything__get-tiny-image", "input": {}}])
    );
    let result = &next[2]["content"][0];
    assert_eq!(result["is_error"], false);
    let content = result["content"].as_str().unwrap();
    assert!(
        content.starts_with("Here's the image you requested:\n\n[image: image/png, about ")
            && content.ends_with("bytes, not shown]\n\nThe image above is the MCP logo."),
        "the image is summarized, never passed on: {content}"
    );
    assert!(!content.contains("iVBOR"), "no image data: {content}");
    let (calls, results) = tool_events(&events);
    assert_eq!(
        calls[0]["arguments"],
        json!({}),
        "no arguments are an empty object, as the tool was called"
    );
    assert_eq!(results[0]["content"], content);
}

#[test]
fn parallel_calls_run_at_once() {
    let tools = ToolSetup::new();
    let mock = MockProvider::start(|r, _| match (r.agent(), rounds_done(r)) {
        ("researcher", 0) => {
            let long = |i: u32, id: &str| {
                json!({"index": i, "id": id, "type": "function", "function": {
                    "name": "everything__trigger-long-running-operation",
                    "arguments": "{\"duration\": 2, \"steps\": 1}"}})
            };
            let middle = vec![openai_calls(json!([
                long(0, "call_1"),
                long(1, "call_2"),
                long(2, "call_3")
            ]))];
            Reply::sse(&openai_answer("", middle, "tool_calls", (10, 1, 0.0)))
        }
        ("researcher", _) => Reply::sse(&openai_text("All three.", (10, 1, 0.0))),
        _ => writer_answer(),
    });
    let server = openai_mesh(&mock, &tools, &[]);
    let (events, _) = run(&server, "Three slow things");

    let reqs = researcher_requests(&mock);
    let round = reqs[1].at - reqs[0].at;
    assert!(
        round < Duration::from_millis(5_500),
        "three 2 s calls took {round:?}: not at once"
    );
    let (_, results) = tool_events(&events);
    assert_eq!(results.len(), 3);
    for r in &results {
        assert_eq!(r["ok"], true, "{r}");
        assert!(r["elapsed_ms"].as_u64().unwrap() >= 2_000, "{r}");
    }
}

#[test]
fn parallel_specialists_each_get_their_own_calls_and_results() {
    let tools = ToolSetup::new();
    let mock = MockProvider::start(|r, _| {
        let agent = r.agent();
        match (agent, rounds_done(r)) {
            ("researcher" | "coder", 0) => {
                // Both agents hold their call open a moment so the two rounds overlap.
                let middle = vec![openai_calls(
                    json!([{"index": 0, "id": format!("call_{agent}"),
                    "type": "function", "function": {"name": "everything__trigger-long-running-operation",
                    "arguments": "{\"duration\": 1, \"steps\": 1}"}}]),
                )];
                Reply::sse(&openai_answer("", middle, "tool_calls", (10, 1, 0.0)))
            }
            ("researcher" | "coder", _) => {
                Reply::sse(&openai_text(&format!("{agent} done."), (10, 1, 0.0)))
            }
            _ => writer_answer(),
        }
    });
    let server = openai_mesh(&mock, &tools, &[("MESH_SCHEDULE", "parallel")]);
    let id = server.start_run(r#"{"task":"Two at once","agents":["researcher","coder"]}"#);
    let events = server.stream(&id, &[]).collect();
    assert_eq!(events.last().unwrap().data["status"], "completed");

    let calls = events_named(&events, "tool_call");
    let results = events_named(&events, "tool_result");
    assert_eq!((calls.len(), results.len()), (2, 2));
    for e in calls.iter().chain(results.iter()) {
        assert_eq!(
            e.data["call_id"],
            format!("call_{}", e.data["agent"].as_str().unwrap()),
            "each event names the agent that made the call: {e:?}"
        );
    }
    // The two calls overlapped: both were made before either finished.
    let second_call = events.iter().rposition(|e| e.event == "tool_call").unwrap();
    let first_result = events
        .iter()
        .position(|e| e.event == "tool_result")
        .unwrap();
    assert!(second_call < first_result, "{events:?}");
    // Each agent's next request holds only its own call and result.
    for agent in ["researcher", "coder"] {
        let reqs = mock.requests_of(agent);
        assert_eq!(reqs.len(), 2, "{agent}");
        let next = messages(&reqs[1]);
        let ids: Vec<&Value> = next.iter().filter_map(|m| m.get("tool_call_id")).collect();
        assert_eq!(ids, [&json!(format!("call_{agent}"))], "{agent}: {next:?}");
    }
    let snapshot = server.get(&format!("/api/runs/{id}")).json();
    for agent in snapshot["agents"].as_array().unwrap() {
        let name = agent["name"].as_str().unwrap();
        let kept: Vec<&Value> = agent["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| &t["call_id"])
            .collect();
        match name {
            "researcher" | "coder" => assert_eq!(kept, [&json!(format!("call_{name}"))]),
            _ => assert!(kept.is_empty(), "{name}: {kept:?}"),
        }
    }
}

#[test]
fn on_v1_tool_activity_is_reasoning_content() {
    let tools = ToolSetup::new();
    let mock = MockProvider::start(|r, _| match (r.agent(), rounds_done(r)) {
        ("researcher", 0) => {
            let middle = vec![openai_calls(
                json!([{"index": 0, "id": "call_v1", "type": "function",
                "function": {"name": "everything__echo", "arguments": "{\"message\":\"via v1\"}"}}]),
            )];
            Reply::sse(&openai_answer("", middle, "tool_calls", (10, 1, 0.0)))
        }
        ("researcher", _) => Reply::sse(&openai_text("Echoed.", (10, 1, 0.0))),
        _ => writer_answer(),
    });
    let server = openai_mesh(&mock, &tools, &[]);
    let body = json!({"model": "agent-mesh/researcher", "stream": true,
        "messages": [{"role": "user", "content": "Echo via v1"}]});
    let r = server.request(
        "POST",
        "/v1/chat/completions",
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    let chunks: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).expect("chunk JSON"))
        .collect();
    let field = |name: &str| -> String {
        chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"][name].as_str())
            .collect()
    };
    let reasoning = field("reasoning_content");
    assert!(
        reasoning.contains("researcher calls everything/echo {\"message\":\"via v1\"}\n"),
        "{reasoning}"
    );
    assert!(
        reasoning.contains("researcher tool result (") && reasoning.contains("ms): Echo: via v1\n"),
        "{reasoning}"
    );
    assert_eq!(field("content"), "# Final\n\nDone.");
}
