//! The mock OpenAI-compatible provider: `GET /v1/models`, and `POST /v1/chat/completions`
//! streaming chunked SSE whose every token carries the realtime ns it was written at.
//!
//! What to stream is read from the task text inside the request body, so each run (and
//! each agent of it) can ask for its own shape without any shared mode switch:
//! `BENCH r:n=200,gap=5000,first=300000,hold=1 w:n=5 tag=17` — for the researcher (`r`)
//! and the writer (`w`, recognised by "You are the Writer" in its system prompt):
//! `n` tokens, `gap` µs between them (0 = as fast as the socket takes them, 16 per
//! write), `first` µs before the first, `hold=1` to stop after the first token until
//! released (bounded). One thread per connection, keep-alive, TCP_NODELAY.
//!
//! A call offered tools that holds no tool result yet is answered with one call of
//! the tool `bench__echo` (the tools phase's MCP server), its arguments carrying the
//! tag; the call after the result gets the shape's text.

use crate::sys::{now_ns, sleep_until_ns};
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// A held stream waits at most this long for its release.
const MAX_HOLD: Duration = Duration::from_secs(60);
/// No answer streams more tokens than this.
const MAX_TOKENS: u64 = 1_000_000;
/// Events per write when streaming as fast as possible.
const FLOOD_BATCH: u64 = 16;

#[derive(Debug, Clone, Copy, Default)]
pub struct Shape {
    pub n: u64,
    pub gap_us: u64,
    pub first_us: u64,
    pub hold: bool,
}

impl Shape {
    pub fn spec(&self) -> String {
        format!(
            "n={},gap={},first={},hold={}",
            self.n,
            self.gap_us,
            self.first_us,
            u8::from(self.hold)
        )
    }
}

/// One chat call as the mock saw it.
#[derive(Debug, Clone, Copy)]
pub struct Record {
    pub tag: u64,
    pub writer: bool,
    /// When the request had fully arrived.
    pub arrived_ns: u64,
    /// When the last byte of the answer was written (0 if the call was cut).
    pub done_ns: u64,
}

#[derive(Default)]
pub struct Shared {
    release_gen: Mutex<u64>,
    release_cv: Condvar,
    pub records: Mutex<Vec<Record>>,
    /// Streams currently waiting in `hold`.
    pub held: AtomicUsize,
    /// Tokens written, over all streams.
    pub tokens_sent: AtomicUsize,
    /// Connections accepted, and chat requests answered.
    pub connections: AtomicUsize,
    pub chat_requests: AtomicUsize,
    stop: AtomicBool,
}

impl Shared {
    /// Lets every held stream go on.
    pub fn release_all(&self) {
        let mut g = self.release_gen.lock().unwrap_or_else(|p| p.into_inner());
        *g += 1;
        self.release_cv.notify_all();
    }

    pub fn records_for(&self, tag: u64) -> Vec<Record> {
        self.records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|r| r.tag == tag)
            .copied()
            .collect()
    }
}

pub struct Mock {
    pub addr: SocketAddr,
    pub shared: Arc<Shared>,
}

impl Mock {
    pub fn start() -> std::io::Result<Mock> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        std::thread::Builder::new()
            .name("mock-accept".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if s.stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    s.connections.fetch_add(1, Ordering::Relaxed);
                    let s = s.clone();
                    let _ = std::thread::Builder::new()
                        .name("mock-conn".into())
                        .stack_size(256 * 1024)
                        .spawn(move || serve(conn, &s));
                }
            })?;
        Ok(Mock { addr, shared })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.release_all();
        // Wake the accept loop so it sees the stop flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

fn serve(mut conn: TcpStream, shared: &Shared) {
    let _ = conn.set_nodelay(true);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(120)));
    let _ = conn.set_write_timeout(Some(Duration::from_secs(30)));
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    while let Some(request) = crate::http::read_request(&mut conn, &mut buf, 64 << 20) {
        let (method, path, body) = (request.method, request.path, request.body);
        let arrived_ns = now_ns();
        let ok = match (method.as_str(), path.as_str()) {
            ("GET", "/v1/models") => {
                let b = r#"{"object":"list","data":[]}"#;
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{b}",
                    b.len()
                );
                conn.write_all(resp.as_bytes()).is_ok()
            }
            ("POST", "/v1/chat/completions") => {
                shared.chat_requests.fetch_add(1, Ordering::Relaxed);
                let (tag, writer, shape) = parse_request(&body);
                let done = if wants_tool_call(&body) {
                    tool_call(&mut conn, tag)
                } else {
                    stream(&mut conn, shared, shape)
                };
                shared
                    .records
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(Record {
                        tag,
                        writer,
                        arrived_ns,
                        done_ns: done.unwrap_or(0),
                    });
                done.is_some()
            }
            _ => {
                let resp = "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n";
                conn.write_all(resp.as_bytes()).is_ok()
            }
        };
        if !ok {
            return;
        }
    }
}

/// Reads the `BENCH ...` line out of the request body: the tag, whether the caller is
/// the writer, and the shape asked for that agent.
pub fn parse_request(body: &[u8]) -> (u64, bool, Shape) {
    let text = String::from_utf8_lossy(body);
    let writer = text.contains("You are the Writer");
    let spec = text
        .find("BENCH ")
        .map(|i| {
            let rest = &text[i + 6..];
            let end = rest.find(['\\', '"']).unwrap_or(rest.len());
            rest[..end].to_string()
        })
        .unwrap_or_default();
    let mut tag = 0;
    let mut shape = Shape {
        n: 5,
        ..Shape::default()
    };
    for word in spec.split_whitespace() {
        if let Some(t) = word.strip_prefix("tag=") {
            tag = t.parse().unwrap_or(0);
        } else if let Some(s) = word.strip_prefix(if writer { "w:" } else { "r:" }) {
            shape = parse_shape(s);
        }
    }
    (tag, writer, shape)
}

pub fn parse_shape(s: &str) -> Shape {
    let mut shape = Shape {
        n: 5,
        ..Shape::default()
    };
    for kv in s.split(',') {
        let Some((k, v)) = kv.split_once('=') else {
            continue;
        };
        let v: u64 = v.parse().unwrap_or(0);
        match k {
            "n" => shape.n = v.min(MAX_TOKENS),
            "gap" => shape.gap_us = v,
            "first" => shape.first_us = v,
            "hold" => shape.hold = v != 0,
            _ => {}
        }
    }
    shape
}

fn token_event(out: &mut Vec<u8>, ts: u64) {
    out.extend_from_slice(b"data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"@");
    out.extend_from_slice(ts.to_string().as_bytes());
    out.extend_from_slice(b"@ \"},\"finish_reason\":null}]}\n\n");
}

fn write_chunk(conn: &mut TcpStream, payload: &[u8]) -> bool {
    let mut out = Vec::with_capacity(payload.len() + 16);
    out.extend_from_slice(format!("{:x}\r\n", payload.len()).as_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
    conn.write_all(&out).is_ok()
}

/// Streams one answer; returns when the last byte was written, or None if the
/// caller went away.
fn stream(conn: &mut TcpStream, shared: &Shared, shape: Shape) -> Option<u64> {
    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n";
    conn.write_all(head.as_bytes()).ok()?;
    let start = now_ns();
    let mut sent = 0u64;
    let mut payload = Vec::with_capacity(4096);
    while sent < shape.n {
        let due = start + shape.first_us * 1000 + sent * shape.gap_us * 1000;
        sleep_until_ns(due);
        payload.clear();
        let batch = if shape.gap_us == 0 && !(shape.hold && sent == 0) {
            FLOOD_BATCH.min(shape.n - sent)
        } else {
            1
        };
        for _ in 0..batch {
            token_event(&mut payload, now_ns());
        }
        sent += batch;
        if sent == shape.n {
            end_events(&mut payload, shape.n);
        }
        if !write_chunk(conn, &payload) {
            return None;
        }
        shared
            .tokens_sent
            .fetch_add(batch as usize, Ordering::Relaxed);
        if shape.hold && sent == 1 {
            hold(shared);
        }
    }
    if shape.n == 0 {
        payload.clear();
        end_events(&mut payload, 0);
        if !write_chunk(conn, &payload) {
            return None;
        }
    }
    conn.write_all(b"0\r\n\r\n").ok()?;
    Some(now_ns())
}

/// Tools offered (`"tools":[`) and no `role: "tool"` result in the conversation yet.
pub fn wants_tool_call(body: &[u8]) -> bool {
    crate::http::find(body, b"\"tools\":[").is_some()
        && crate::http::find(body, b"\"role\":\"tool\"").is_none()
}

/// One streamed tool call of `bench__echo` with `{"message":"tag=TAG"}`, then
/// `finish_reason: "tool_calls"`; returns when the last byte was written.
fn tool_call(conn: &mut TcpStream, tag: u64) -> Option<u64> {
    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n";
    conn.write_all(head.as_bytes()).ok()?;
    let payload = format!(
        "data: {{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"choices\":[{{\"index\":0,\"delta\":{{\"tool_calls\":[{{\"index\":0,\"id\":\"call_bench_{tag}\",\"type\":\"function\",\"function\":{{\"name\":\"bench__echo\",\"arguments\":\"{{\\\"message\\\":\\\"tag={tag}\\\"}}\"}}}}]}},\"finish_reason\":null}}]}}\n\n\
         data: {{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"choices\":[{{\"index\":0,\"delta\":{{}},\"finish_reason\":\"tool_calls\"}}]}}\n\n\
         data: {{\"id\":\"chatcmpl-bench\",\"choices\":[],\"usage\":{{\"prompt_tokens\":20,\"completion_tokens\":5}}}}\n\n\
         data: [DONE]\n\n"
    );
    if !write_chunk(conn, payload.as_bytes()) {
        return None;
    }
    conn.write_all(b"0\r\n\r\n").ok()?;
    Some(now_ns())
}

fn end_events(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(b"data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n");
    out.extend_from_slice(
        format!(
            "data: {{\"id\":\"chatcmpl-bench\",\"choices\":[],\"usage\":{{\"prompt_tokens\":20,\"completion_tokens\":{n}}}}}\n\n"
        )
        .as_bytes(),
    );
    out.extend_from_slice(b"data: [DONE]\n\n");
}

fn hold(shared: &Shared) {
    shared.held.fetch_add(1, Ordering::SeqCst);
    let g = shared.release_gen.lock().unwrap_or_else(|p| p.into_inner());
    let start_gen = *g;
    let _ = shared.release_cv.wait_timeout_while(g, MAX_HOLD, |gen| {
        *gen == start_gen && !shared.stop.load(Ordering::Relaxed)
    });
    shared.held.fetch_sub(1, Ordering::SeqCst);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_agent_shape_from_the_task() {
        let body = br#"{"messages":[{"role":"system","content":"You are the Writer on"},{"role":"user","content":"Task:\nBENCH r:n=7,gap=10 w:n=3,hold=1 tag=42\n"}]}"#;
        let (tag, writer, shape) = parse_request(body);
        assert_eq!((tag, writer, shape.n, shape.hold), (42, true, 3, true));
        let body = br#"{"content":"You are the Researcher"},{"content":"Task:\nBENCH r:n=7,gap=10 w:n=3 tag=1\n"}"#;
        let (_, writer, shape) = parse_request(body);
        assert_eq!((writer, shape.n, shape.gap_us), (false, 7, 10));
    }

    #[test]
    fn a_tool_call_only_when_tools_are_offered_and_no_result_came_back() {
        assert!(wants_tool_call(
            br#"{"messages":[],"tools":[{"type":"function"}]}"#
        ));
        assert!(!wants_tool_call(br#"{"messages":[]}"#));
        assert!(!wants_tool_call(
            br#"{"messages":[{"role":"tool","content":"x"}],"tools":[{"type":"function"}]}"#
        ));
    }
}
