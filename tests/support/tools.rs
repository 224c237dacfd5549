//! Set-up for the tool-loop tests against the real binary: scripted tool-call streams in
//! both provider wire formats (OpenAI Chat Completions chunks, Anthropic Messages
//! events) cut into arbitrary byte pieces, an `mcp.json` in a temp dir naming the
//! reference server-everything (stdio behind a recording wrapper, or Streamable HTTP),
//! and helpers to read what the mock provider received.
#![allow(dead_code)]

use super::mcp::{everything_js, node};
use super::mock::{Part, Recorded, Reply};
use super::{Ev, Server};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One Chat Completions chunk whose first choice has `delta` (and `finish_reason`).
pub fn openai_chunk(delta: Value, finish: Option<&str>) -> String {
    let mut choice = json!({"index": 0, "delta": delta, "finish_reason": finish});
    if finish.is_none() {
        choice["finish_reason"] = Value::Null;
    }
    format!(
        "data: {}\n\n",
        json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [choice]})
    )
}

/// A `delta.tool_calls` chunk with these entries.
pub fn openai_calls(entries: Value) -> String {
    openai_chunk(json!({"tool_calls": entries}), None)
}

/// The first fragment of a call: its index, id and name, no arguments yet.
pub fn openai_call_start(index: u32, id: &str, name: &str) -> Value {
    json!({"index": index, "id": id, "type": "function", "function": {"name": name, "arguments": ""}})
}

/// A later fragment of call `index`: a piece of its arguments.
pub fn openai_args(index: u32, piece: &str) -> Value {
    json!({"index": index, "function": {"arguments": piece}})
}

/// A whole Chat Completions answer: an opening chunk with `text` (if any), the given
/// middle chunks, the finish reason, usage `(prompt, completion, cost)`, `[DONE]`.
pub fn openai_answer(
    text: &str,
    middle: Vec<String>,
    finish: &str,
    usage: (u64, u64, f64),
) -> Vec<String> {
    let mut out = vec![openai_chunk(
        json!({"role": "assistant", "content": ""}),
        None,
    )];
    if !text.is_empty() {
        out.push(openai_chunk(json!({"content": text}), None));
    }
    out.extend(middle);
    out.push(openai_chunk(json!({}), Some(finish)));
    out.push(format!(
        "data: {}\n\n",
        json!({"choices": [], "usage": {"prompt_tokens": usage.0, "completion_tokens": usage.1,
            "total_tokens": usage.0 + usage.1, "cost": usage.2}})
    ));
    out.push("data: [DONE]\n\n".to_string());
    out
}

/// A plain text Chat Completions answer.
pub fn openai_text(text: &str, usage: (u64, u64, f64)) -> Vec<String> {
    openai_answer(text, Vec::new(), "stop", usage)
}

fn anthropic_event(name: &str, data: Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

/// A block of an Anthropic answer.
pub enum AnthropicBlock<'a> {
    Text(&'a str),
    /// `tool_use` with id, name, and its input JSON as `input_json_delta` pieces.
    ToolUse(&'a str, &'a str, Vec<&'a str>),
}

/// A whole Anthropic Messages answer: `message_start`, each block (start, deltas, stop),
/// `message_delta` with `stop_reason` and output tokens, `message_stop`.
pub fn anthropic_answer(
    blocks: &[AnthropicBlock<'_>],
    stop_reason: &str,
    input_tokens: u64,
    output_tokens: u64,
) -> Vec<String> {
    let mut out = vec![anthropic_event(
        "message_start",
        json!({"type": "message_start", "message": {"id": "msg_1", "type": "message",
            "role": "assistant", "content": [], "model": "claude-haiku-4-5",
            "stop_reason": null, "usage": {"input_tokens": input_tokens, "output_tokens": 1}}}),
    )];
    for (index, block) in blocks.iter().enumerate() {
        match block {
            AnthropicBlock::Text(text) => {
                out.push(anthropic_event(
                    "content_block_start",
                    json!({"type": "content_block_start",
                    "index": index, "content_block": {"type": "text", "text": ""}}),
                ));
                out.push(anthropic_event(
                    "content_block_delta",
                    json!({"type": "content_block_delta",
                    "index": index, "delta": {"type": "text_delta", "text": text}}),
                ));
            }
            AnthropicBlock::ToolUse(id, name, pieces) => {
                out.push(anthropic_event("content_block_start", json!({"type": "content_block_start",
                    "index": index, "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}})));
                for piece in pieces {
                    out.push(anthropic_event("content_block_delta", json!({"type": "content_block_delta",
                        "index": index, "delta": {"type": "input_json_delta", "partial_json": piece}})));
                }
            }
        }
        out.push(anthropic_event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        ));
        if index == 0 {
            out.push(anthropic_event("ping", json!({"type": "ping"})));
        }
    }
    out.push(anthropic_event(
        "message_delta",
        json!({"type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": null},
        "usage": {"output_tokens": output_tokens}}),
    ));
    out.push(anthropic_event(
        "message_stop",
        json!({"type": "message_stop"}),
    ));
    out
}

/// The events' bytes cut every `size` bytes, whatever they split (a JSON key, an
/// escape, a UTF-8 character, an SSE line), each piece its own chunk on the wire.
pub fn cut_every(events: &[String], size: usize) -> Reply {
    let raw: Vec<u8> = events.concat().into_bytes();
    let mut reply = Reply::sse(&[]);
    reply.parts = raw.chunks(size).map(|c| Part::Bytes(c.to_vec())).collect();
    reply
}

/// How many tool rounds the conversation in `r` already holds (assistant messages).
pub fn rounds_done(r: &Recorded) -> usize {
    r.json()["messages"]
        .as_array()
        .map(|m| m.iter().filter(|m| m["role"] == "assistant").count())
        .unwrap_or(0)
}

/// The names of the tools offered in `r` (either wire format).
pub fn offered_tools(r: &Recorded) -> Vec<String> {
    r.json()["tools"]
        .as_array()
        .map(|tools| {
            tools
                .iter()
                .map(|t| {
                    t["function"]["name"]
                        .as_str()
                        .or(t["name"].as_str())
                        .unwrap_or("")
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The events of one kind.
pub fn events_named<'a>(events: &'a [Ev], name: &str) -> Vec<&'a Ev> {
    events.iter().filter(|e| e.event == name).collect()
}

/// Polls `check` every 20 ms until it yields or `timeout` passes.
pub fn wait_until<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A temp dir holding an `mcp.json` and what the stdio wrapper records (the child's pid,
/// every line agent-mesh writes to it); removed on drop.
pub struct ToolSetup {
    pub dir: PathBuf,
}

impl Drop for ToolSetup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl ToolSetup {
    pub fn new() -> ToolSetup {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("tool-wire-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        ToolSetup { dir }
    }

    /// server-everything on stdio behind bash: bash writes its pid (it then execs node)
    /// and tees every line agent-mesh sends into `stdin.log`.
    pub fn stdio_everything(&self) -> Value {
        let script = format!(
            "echo $$ > '{pid}'; exec '{node}' '{js}' stdio < <(exec tee -a '{log}')",
            pid = self.pid_file().display(),
            log = self.log_file().display(),
            node = node(),
            js = everything_js(),
        );
        json!({"command": "/usr/bin/bash", "args": ["-c", script], "env": {"PATH": "/usr/bin:/bin"}})
    }

    /// Writes `mcp.json` with these servers and returns its path.
    pub fn config(&self, servers: Value) -> String {
        let path = self.dir.join("mcp.json");
        std::fs::write(&path, json!({"mcpServers": servers}).to_string()).expect("write mcp.json");
        path.to_string_lossy().into_owned()
    }

    pub fn pid_file(&self) -> PathBuf {
        self.dir.join("pid")
    }

    pub fn log_file(&self) -> PathBuf {
        self.dir.join("stdin.log")
    }

    /// The pid of the stdio server running now (node: bash exec'd it).
    pub fn pid(&self) -> Option<String> {
        std::fs::read_to_string(self.pid_file())
            .ok()
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
    }

    /// Every line agent-mesh wrote to the stdio server, over all its processes.
    pub fn sent(&self) -> String {
        std::fs::read_to_string(self.log_file()).unwrap_or_default()
    }

    pub fn wait_sent(&self, needle: &str, timeout: Duration) -> String {
        wait_until(timeout, || {
            let s = self.sent();
            s.contains(needle).then_some(s)
        })
        .unwrap_or_else(|| {
            panic!(
                "agent-mesh never wrote {needle:?}; it wrote:\n{}",
                self.sent()
            )
        })
    }
}

/// The JSON-RPC messages in `sent` (newline-delimited, or HTTP bodies).
pub fn json_messages(sent: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for line in sent.split(['\n', '\r']) {
        let Some(start) = line.find('{') else {
            continue;
        };
        let mut values = serde_json::Deserializer::from_str(&line[start..]).into_iter::<Value>();
        if let Some(Ok(v)) = values.next() {
            out.push(v);
        }
    }
    out
}

/// The id of the last `tools/call` of `tool` in `sent`.
pub fn call_id_of(sent: &str, tool: &str) -> Value {
    json_messages(sent)
        .into_iter()
        .rev()
        .find(|m| m["method"] == "tools/call" && m["params"]["name"] == tool)
        .map(|m| m["id"].clone())
        .unwrap_or_else(|| panic!("no tools/call of {tool} in:\n{sent}"))
}

/// Whether `sent` holds a `notifications/cancelled` for request `id`.
pub fn cancelled_request(sent: &str, id: &Value) -> bool {
    json_messages(sent)
        .iter()
        .any(|m| m["method"] == "notifications/cancelled" && &m["params"]["requestId"] == id)
}

/// Starts a run of only the researcher (no orchestrator) and returns its id.
pub fn start_researcher_run(server: &Server, task: &str) -> String {
    server.start_run(&json!({"task": task, "agents": ["researcher"]}).to_string())
}

/// Reads the stream until an event matching `is` arrives (bounded by the stream's
/// socket timeout); returns every event seen, that one last.
pub fn read_until(stream: &mut super::SseStream, is: impl Fn(&Ev) -> bool) -> Vec<Ev> {
    let mut seen = Vec::new();
    while let Some(e) = stream.next_event() {
        let stop = is(&e);
        seen.push(e);
        if stop {
            return seen;
        }
    }
    panic!("the stream ended before the awaited event: {seen:?}");
}

/// agent-mesh on one provider (its key and base URL variables) with `config` as
/// MESH_MCP_CONFIG, logging at debug.
pub fn mesh_with(provider: [(&str, &str); 2], config: &str, extra: &[(&str, &str)]) -> Server {
    let mut env = provider.to_vec();
    env.push(("MESH_MCP_CONFIG", config));
    env.push(("MESH_LOG", "debug"));
    env.extend_from_slice(extra);
    Server::start(&env)
}

/// The researcher's model calls, in order.
pub fn researcher_requests(mock: &super::mock::MockProvider) -> Vec<Recorded> {
    mock.chat_requests()
        .into_iter()
        .filter(|r| r.agent() == "researcher")
        .collect()
}

/// One agent of a run's snapshot.
pub fn snapshot_agent<'a>(snapshot: &'a Value, name: &str) -> &'a Value {
    snapshot["agents"]
        .as_array()
        .and_then(|agents| agents.iter().find(|a| a["name"] == name))
        .unwrap_or_else(|| panic!("no agent {name} in {snapshot}"))
}
