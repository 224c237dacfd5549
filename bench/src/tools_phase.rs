//! The tools phase: what one tool round adds to an agent's turn beyond the tool
//! server's own time, over Streamable HTTP on loopback, and the server CPU per tool call.
//!
//! A tiny MCP server (2025-11-25 Streamable HTTP, JSON answers, one `echo` tool) runs
//! here and times its own handling of each `tools/call` (body read → answer written).
//! Two agent-mesh servers run side by side on the mock provider: one with
//! `MESH_MCP_CONFIG` naming that server (the mock answers the researcher's first call
//! with one `bench__echo` call, the next with text), one without (the same text at
//! once). Runs alternate between them, and the figures are:
//! * per tool run, on the mock's clock: the tool-call answer's end → the researcher's
//!   next request, minus the MCP server's own time (agent-mesh's part of the round:
//!   decoding the call, its events, the MCP request and answer, the next request);
//! * the same run with and without the round: the researcher's first request → the
//!   writer's request (p50 each), whose difference is what the round adds;
//! * each server's schedstat CPU over its runs: the difference per tool call.

use crate::http::{find, read_request, wait_until, Client, EventStream};
use crate::mock::Shape;
use crate::report::{fmt_num, Goal, Row, J};
use crate::server::{start_run, Server};
use crate::sys::{cpu_ns, now_ns, summarize, Summary};
use crate::Ctx;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Runs with a tool round, and as many without, alternating.
pub const TOOL_RUNS: usize = 200;
/// Runs of each kind before measuring (connections, the MCP session, caches).
const WARMUP_RUNS: usize = 10;

/// One `tools/call` as the MCP server handled it.
#[derive(Debug, Clone, Copy)]
struct Handled {
    tag: u64,
    /// Body read → answer written, ns.
    own_ns: u64,
}

#[derive(Default)]
struct McpShared {
    calls: Mutex<Vec<Handled>>,
}

/// The MCP server on loopback; lives until the bench exits.
struct McpServer {
    addr: SocketAddr,
    shared: Arc<McpShared>,
}

impl McpServer {
    fn start() -> Result<McpServer, String> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("mcp: {e}"))?;
        let addr = listener.local_addr().map_err(|e| format!("mcp: {e}"))?;
        let shared = Arc::new(McpShared::default());
        let s = shared.clone();
        std::thread::Builder::new()
            .name("mcp-accept".into())
            .spawn(move || {
                for conn in listener.incoming().flatten() {
                    let s = s.clone();
                    let _ = std::thread::Builder::new()
                        .name("mcp-conn".into())
                        .stack_size(256 * 1024)
                        .spawn(move || serve(conn, &s));
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(McpServer { addr, shared })
    }

    fn own_ns_of(&self, tag: u64) -> Option<u64> {
        self.shared
            .calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|h| h.tag == tag)
            .map(|h| h.own_ns)
    }
}

/// One connection, keep-alive: JSON-RPC over `POST /mcp`, each answered as JSON.
fn serve(mut conn: TcpStream, shared: &McpShared) {
    let _ = conn.set_nodelay(true);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(120)));
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    while let Some(request) = read_request(&mut conn, &mut buf, 1 << 20) {
        let (method, body) = (request.method, request.body);
        let arrived = now_ns();
        let (status, extra, answer) = if method == "POST" {
            answer(&body)
        } else {
            // No standalone GET stream, and sessions end with the process.
            ("405 Method Not Allowed", "", String::new())
        };
        let response = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n{extra}content-length: {}\r\n\r\n{answer}",
            answer.len()
        );
        if conn.write_all(response.as_bytes()).is_err() {
            return;
        }
        if let Some(tag) = call_tag(&body) {
            let own_ns = now_ns().saturating_sub(arrived);
            shared
                .calls
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(Handled { tag, own_ns });
        }
    }
}

/// The status line, extra headers and body for one JSON-RPC message.
fn answer(body: &[u8]) -> (&'static str, &'static str, String) {
    let text = String::from_utf8_lossy(body);
    let method = string_field(&text, "method").unwrap_or_default();
    let id = number_field(&text, "id");
    let result = |result: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":{},"result":{result}}}"#,
            id.unwrap_or(0)
        )
    };
    match method.as_str() {
        // Not a 2026-07-28 server: a plain 400, so the client uses the 2025-11-25 handshake.
        "server/discover" => ("400 Bad Request", "", String::new()),
        "initialize" => (
            "200 OK",
            "mcp-session-id: bench-session\r\n",
            result(
                r#"{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"bench","version":"1"}}"#,
            ),
        ),
        "tools/list" => (
            "200 OK",
            "",
            result(
                r#"{"tools":[{"name":"echo","description":"Echoes the message.","inputSchema":{"type":"object","properties":{"message":{"type":"string"}},"required":["message"]}}]}"#,
            ),
        ),
        "tools/call" => {
            let tag = call_tag(body).unwrap_or(0);
            (
                "200 OK",
                "",
                result(&format!(
                    r#"{{"content":[{{"type":"text","text":"tag={tag}"}}],"isError":false}}"#
                )),
            )
        }
        _ if id.is_none() => ("202 Accepted", "", String::new()),
        _ => (
            "200 OK",
            "",
            format!(
                r#"{{"jsonrpc":"2.0","id":{},"error":{{"code":-32601,"message":"no such method"}}}}"#,
                id.unwrap_or(0)
            ),
        ),
    }
}

/// The tag in a `tools/call`'s arguments (`"message":"tag=N"`).
fn call_tag(body: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(body).ok()?;
    if string_field(text, "method").as_deref() != Some("tools/call") {
        return None;
    }
    let at = text.find("tag=")? + 4;
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The first `"name":"value"` in the text (the bench has no JSON parser; the client's
/// messages put `jsonrpc`, `id` and `method` first).
fn string_field(text: &str, name: &str) -> Option<String> {
    let key = format!("\"{name}\":\"");
    let at = text.find(&key)? + key.len();
    let end = text[at..].find('"')?;
    Some(text[at..at + end].to_string())
}

fn number_field(text: &str, name: &str) -> Option<u64> {
    let key = format!("\"{name}\":");
    let at = text.find(&key)? + key.len();
    let digits: String = text[at..]
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

pub struct Tools {
    /// Per tool run: tool-call answer's end → next request, minus the server's own time.
    pub round_own: Summary,
    /// The MCP server's own time per call.
    pub server_own: Summary,
    /// The mock's own time for the tool-call answer (request in → last byte out).
    pub provider_own: Summary,
    /// Researcher's first request → writer's request, with and without the round.
    pub span_with: Summary,
    pub span_without: Summary,
    /// POST → `done` at the client, with and without.
    pub client_with: Summary,
    pub client_without: Summary,
    /// Server CPU per run, with and without the round, µs.
    pub cpu_with_us: f64,
    pub cpu_without_us: f64,
    pub problems: Vec<String>,
}

impl Tools {
    /// What one round adds: the difference of the spans' p50s, µs.
    pub fn added_p50(&self) -> f64 {
        self.span_with.p50 - self.span_without.p50
    }

    /// What it adds beyond the tool server's own time (the target: < 1 ms).
    pub fn beyond_server_p50(&self) -> f64 {
        self.added_p50() - self.server_own.p50
    }

    pub fn cpu_per_call_us(&self) -> f64 {
        self.cpu_with_us - self.cpu_without_us
    }

    /// `--phase tools`' line.
    pub fn summary_line(&self) -> String {
        format!(
            "tool round: adds {:.0} µs at p50 (researcher → writer request p50 {:.0} with / {:.0} without), {:.0} µs beyond the tool server's own {:.0} µs (target < 1000); \
             in-run, call answered → next request minus the server: p50 {:.0} p99 {:.0} µs (the provider's tool-call answer took {:.0} µs); \
             POST → done at the client p50 {:.0} / {:.0} µs ({:.3}×); server CPU per run {:.0} / {:.0} µs ({:.3}×), {:.0} µs per tool call; {} runs each",
            self.added_p50(),
            self.span_with.p50,
            self.span_without.p50,
            self.beyond_server_p50(),
            self.server_own.p50,
            self.round_own.p50,
            self.round_own.p99,
            self.provider_own.p50,
            self.client_with.p50,
            self.client_without.p50,
            self.client_with.p50 / self.client_without.p50,
            self.cpu_with_us,
            self.cpu_without_us,
            self.cpu_with_us / self.cpu_without_us,
            self.cpu_per_call_us(),
            self.span_with.n
        )
    }

    /// The table's rows.
    pub fn rows(&self) -> Vec<Row> {
        vec![
            Row {
                section: "tools",
                metric: "one tool round beyond the tool server's own time (p50)".into(),
                value: self.beyond_server_p50(),
                unit: "µs",
                goal: Goal::Below(1000.0),
                note: format!(
                    "Streamable HTTP on loopback; researcher → writer request p50 {} with a round / {} without (+{}), minus the server's own {} µs; {} runs each",
                    fmt_num(self.span_with.p50),
                    fmt_num(self.span_without.p50),
                    fmt_num(self.added_p50()),
                    fmt_num(self.server_own.p50),
                    self.span_with.n
                ),
            },
            Row {
                section: "tools",
                metric: "tool call answered → next model request, minus the tool server (p50)".into(),
                value: self.round_own.p50,
                unit: "µs",
                goal: Goal::None,
                note: format!(
                    "p99 {} µs; the same run, on the mock's clock: decoding the call, its events, the MCP request and answer, the next request",
                    fmt_num(self.round_own.p99)
                ),
            },
            Row {
                section: "tools",
                metric: "server CPU per tool call".into(),
                value: self.cpu_per_call_us(),
                unit: "µs",
                goal: Goal::None,
                note: format!(
                    "schedstat per run {} with a round / {} without ({:.3}×)",
                    fmt_num(self.cpu_with_us),
                    fmt_num(self.cpu_without_us),
                    self.cpu_with_us / self.cpu_without_us
                ),
            },
        ]
    }

    pub fn to_json(&self) -> J {
        let summary = crate::summary_json;
        J::obj(vec![
            ("added_p50_us", J::Num(self.added_p50())),
            ("beyond_server_p50_us", J::Num(self.beyond_server_p50())),
            ("round_minus_server_us", summary(&self.round_own)),
            ("server_own_us", summary(&self.server_own)),
            ("provider_tool_answer_us", summary(&self.provider_own)),
            ("researcher_to_writer_with_us", summary(&self.span_with)),
            (
                "researcher_to_writer_without_us",
                summary(&self.span_without),
            ),
            ("post_to_done_with_us", summary(&self.client_with)),
            ("post_to_done_without_us", summary(&self.client_without)),
            ("cpu_per_run_with_us", J::Num(self.cpu_with_us)),
            ("cpu_per_run_without_us", J::Num(self.cpu_without_us)),
            ("cpu_per_tool_call_us", J::Num(self.cpu_per_call_us())),
        ])
    }
}

pub fn phase(ctx: &Ctx) -> Result<Tools, String> {
    let mcp = McpServer::start()?;
    let config =
        std::env::temp_dir().join(format!("agent-mesh-bench-mcp-{}.json", std::process::id()));
    std::fs::write(
        &config,
        format!(
            r#"{{"mcpServers":{{"bench":{{"url":"http://{}/mcp"}}}}}}"#,
            mcp.addr
        ),
    )
    .map_err(|e| format!("write {}: {e}", config.display()))?;
    let path = config.to_string_lossy().into_owned();
    let with = ctx.server_with(&[("MESH_MCP_CONFIG", path.as_str())]);
    let _ = std::fs::remove_file(&config);
    let with = with?;
    let without = ctx.server()?;
    let (mut c_with, mut c_without) = (Client::new(with.addr), Client::new(without.addr));
    for _ in 0..WARMUP_RUNS {
        one_run(ctx, &with, &mut c_with, true)?;
        one_run(ctx, &without, &mut c_without, false)?;
    }
    let cpu = |s: &Server| cpu_ns(s.pid).unwrap_or(0);
    let (cpu_with0, cpu_without0) = (cpu(&with), cpu(&without));
    let mut round_own = Vec::new();
    let mut server_own = Vec::new();
    let mut provider_own = Vec::new();
    let (mut span_with, mut span_without) = (Vec::new(), Vec::new());
    let (mut client_with, mut client_without) = (Vec::new(), Vec::new());
    for _ in 0..TOOL_RUNS {
        let r = one_run(ctx, &with, &mut c_with, true)?;
        let own = mcp
            .own_ns_of(r.tag)
            .ok_or_else(|| format!("run tag={} made no tool call", r.tag))?;
        let next = r.second_request.ok_or("no request after the tool round")?;
        round_own.push(us(next.saturating_sub(r.first_done).saturating_sub(own)));
        server_own.push(us(own));
        provider_own.push(us(r.first_done.saturating_sub(r.first_request)));
        span_with.push(us(r.writer_request.saturating_sub(r.first_request)));
        client_with.push(us(r.client_ns));
        let r = one_run(ctx, &without, &mut c_without, false)?;
        span_without.push(us(r.writer_request.saturating_sub(r.first_request)));
        client_without.push(us(r.client_ns));
    }
    let per_run =
        |before: u64, after: u64| after.saturating_sub(before) as f64 / 1000.0 / TOOL_RUNS as f64;
    let cpu_with_us = per_run(cpu_with0, cpu(&with));
    let cpu_without_us = per_run(cpu_without0, cpu(&without));
    let mut problems = with.problems.lock().map(|p| p.clone()).unwrap_or_default();
    problems.extend(
        without
            .problems
            .lock()
            .map(|p| p.clone())
            .unwrap_or_default(),
    );
    Ok(Tools {
        round_own: summarize(&mut round_own),
        server_own: summarize(&mut server_own),
        provider_own: summarize(&mut provider_own),
        span_with: summarize(&mut span_with),
        span_without: summarize(&mut span_without),
        client_with: summarize(&mut client_with),
        client_without: summarize(&mut client_without),
        cpu_with_us,
        cpu_without_us,
        problems,
    })
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// One run's times on the mock's clock (ns) and at the client.
struct RunTimes {
    tag: u64,
    first_request: u64,
    first_done: u64,
    /// The researcher's request after the tool round (tool runs only).
    second_request: Option<u64>,
    writer_request: u64,
    client_ns: u64,
}

/// A researcher (5 instant tokens, after a tool round or not) and a 5-token writer,
/// followed to `done` at the client.
fn one_run(ctx: &Ctx, srv: &Server, client: &mut Client, tools: bool) -> Result<RunTimes, String> {
    let tag = ctx.tag();
    let instant = Shape {
        n: 5,
        ..Shape::default()
    };
    let task = crate::task(instant, instant, tag);
    let t0 = now_ns();
    let id = start_run(client, &task)?;
    let mut es = EventStream::open(srv.addr, "GET", &format!("/api/stream/{id}"), "")
        .map_err(|e| format!("stream: {e}"))?;
    let mut done_at = None;
    let mut tool_events = 0;
    for _ in 0..1000 {
        let open = es
            .read_events(&mut |arrived, ev| {
                if ev.name == b"done" {
                    done_at = Some(arrived);
                }
                if ev.name == b"tool_result" && find(ev.data, b"\"ok\":true").is_some() {
                    tool_events += 1;
                }
            })
            .map_err(|e| format!("stream read: {e}"))?;
        if done_at.is_some() || !open {
            break;
        }
    }
    let done_at = done_at.ok_or_else(|| format!("run {id} did not end"))?;
    if tool_events != usize::from(tools) {
        return Err(format!(
            "run {id}: {tool_events} successful tool results, expected {}",
            usize::from(tools)
        ));
    }
    // The mock records a call after its last byte, which may be after `done` arrived.
    let calls = 2 + usize::from(tools);
    let mut records = Vec::new();
    wait_until(Duration::from_secs(5), Duration::from_micros(200), || {
        records = ctx.mock.shared.records_for(tag);
        records.len() >= calls
    });
    records.sort_by_key(|r| r.arrived_ns);
    let researcher: Vec<_> = records.iter().filter(|r| !r.writer).collect();
    let writer = records
        .iter()
        .find(|r| r.writer)
        .ok_or_else(|| format!("run {id}: no writer call"))?;
    let first = researcher
        .first()
        .ok_or_else(|| format!("run {id}: no researcher call"))?;
    Ok(RunTimes {
        tag,
        first_request: first.arrived_ns,
        first_done: first.done_ns,
        second_request: researcher.get(1).map(|r| r.arrived_ns),
        writer_request: writer.arrived_ns,
        client_ns: done_at.saturating_sub(t0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_the_legacy_handshake_and_times_only_tool_calls() {
        let (status, _, _) = answer(br#"{"jsonrpc":"2.0","id":1,"method":"server/discover"}"#);
        assert_eq!(status, "400 Bad Request");
        let (status, extra, body) =
            answer(br#"{"jsonrpc":"2.0","id":2,"method":"initialize","params":{}}"#);
        assert_eq!(
            (status, extra),
            ("200 OK", "mcp-session-id: bench-session\r\n")
        );
        assert!(
            body.starts_with(r#"{"jsonrpc":"2.0","id":2,"result":{"protocolVersion":"2025-11-25""#)
        );
        let (status, _, body) =
            answer(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        assert_eq!((status, body.as_str()), ("202 Accepted", ""));
        let call = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"message":"tag=42"}}}"#;
        let (_, _, body) = answer(call);
        assert!(
            body.contains(r#""id":7"#) && body.contains(r#""text":"tag=42""#),
            "{body}"
        );
        assert_eq!(call_tag(call), Some(42));
        assert_eq!(
            call_tag(br#"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#),
            None
        );
    }
}
