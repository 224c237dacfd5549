//! Test harness: starts the real `agent-mesh` binary on 127.0.0.1:0 and talks to it
//! over plain TCP sockets (HTTP/1.1, chunked bodies, SSE), with timeouts everywhere.
#![allow(dead_code)]

pub mod certs;
pub mod cut_proxy;
pub mod instances;
pub mod mcp;
pub mod mock;
pub mod otlp;
pub mod redis;
pub mod tools;

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    logs: Arc<Mutex<Vec<String>>>,
    exited: Arc<Mutex<bool>>,
}

/// A process's resident memory in KiB, from /proc (the tests that bound memory use it).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status")
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_agent-mesh")
}

/// A command for the binary with a clean environment: no provider keys leak in
/// from the machine, and no Hermes login is found.
pub fn command(env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.env_clear()
        .env("HOME", "/nonexistent-agent-mesh-home")
        .env("MESH_ADDR", "127.0.0.1:0")
        .env("MESH_OFFLINE_DELAY_MS", "0");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs the binary with `env` and returns its exit code and stderr, for settings that
/// must stop startup. The wait is bounded: a server that started anyway is killed and
/// the test fails.
pub fn exit_of(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut child = command(env)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run agent-mesh");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{env:?} was accepted: the server started");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        pipe.read_to_string(&mut stderr).expect("read stderr");
    }
    (status.code(), stderr)
}

impl Server {
    pub fn start(env: &[(&str, &str)]) -> Server {
        let mut child = command(env)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn agent-mesh");
        let stderr = child.stderr.take().expect("stderr");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let exited = Arc::new(Mutex::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let logs = logs.clone();
            let exited = exited.clone();
            std::thread::spawn(move || {
                let mut sent = false;
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if !sent {
                        if let Some(i) = line.find("listening on http://") {
                            let addr = line[i + "listening on http://".len()..].trim().to_string();
                            let _ = tx.send(addr);
                            sent = true;
                        } else if let Some(i) = line.find("listening on https://") {
                            let addr = line[i + "listening on https://".len()..].trim().to_string();
                            let _ = tx.send(addr);
                            sent = true;
                        }
                    }
                    logs.lock().unwrap().push(line);
                }
                *exited.lock().unwrap() = true;
            });
        }
        let addr = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| {
                panic!(
                    "server did not report its address; logs: {:?}",
                    logs.lock().unwrap()
                )
            });
        Server {
            child,
            addr: addr.parse().expect("bound address"),
            logs,
            exited,
        }
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for the process to exit and returns its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code();
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect_timeout(&self.addr, IO_TIMEOUT).expect("connect");
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        s
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let mut s = self.connect();
        write_request(&mut s, method, path, headers, body);
        read_response(&mut BufReader::new(s))
    }

    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], b"")
    }

    pub fn post_json(&self, path: &str, body: &str) -> Response {
        self.request(
            "POST",
            path,
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
    }

    /// Starts a run and returns its id.
    pub fn start_run(&self, body: &str) -> String {
        let r = self.post_json("/api/run", body);
        assert_eq!(r.status, 201, "start run: {}", r.text());
        let v = r.json();
        let id = v["id"].as_str().expect("id").to_string();
        assert_eq!(v["stream"], format!("/api/stream/{id}"));
        id
    }

    pub fn stream(&self, id: &str, headers: &[(&str, &str)]) -> SseStream {
        self.stream_path(&format!("/api/stream/{id}"), headers)
    }

    pub fn stream_path(&self, path: &str, headers: &[(&str, &str)]) -> SseStream {
        let mut s = self.connect();
        write_request(&mut s, "GET", path, headers, b"");
        let mut reader = BufReader::new(s);
        let head = read_head(&mut reader);
        SseStream {
            head,
            body: ChunkedReader::new(reader),
            pending: String::new(),
        }
    }

    /// Polls the snapshot until the run is finished.
    pub fn wait_finished(&self, id: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let v = self.get(&format!("/api/runs/{id}")).json();
            if v["status"] != "running" {
                return v;
            }
            assert!(Instant::now() < deadline, "run {id} still running: {v}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn write_request(
    s: &mut TcpStream,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).expect("write request");
    s.write_all(body).expect("write body");
}

#[derive(Debug, Clone)]
pub struct Head {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// Asserts the JSON error shape and returns the code.
    pub fn error_code(&self) -> String {
        let v = self.json();
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "no message: {v}"
        );
        v["error"]["code"].as_str().expect("error.code").to_string()
    }
}

pub fn read_head(r: &mut impl BufRead) -> Head {
    let mut line = String::new();
    r.read_line(&mut line).expect("status line");
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).expect("header line");
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    Head { status, headers }
}

pub fn read_response(r: &mut BufReader<TcpStream>) -> Response {
    let head = read_head(r);
    let mut body = Vec::new();
    let chunked = head
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    if chunked {
        let mut c = ChunkedReader {
            inner: r,
            done: false,
        };
        while let Some(chunk) = c.next_chunk() {
            body.extend_from_slice(&chunk);
        }
    } else if let Some(len) = head
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        body.resize(len, 0);
        r.read_exact(&mut body).expect("body");
    } else if head.status != 304 && head.status != 204 {
        let _ = r.read_to_end(&mut body);
    }
    Response {
        status: head.status,
        headers: head.headers,
        body,
    }
}

pub struct ChunkedReader<R> {
    inner: R,
    done: bool,
}

impl<R: BufRead> ChunkedReader<R> {
    pub fn new(inner: R) -> Self {
        ChunkedReader { inner, done: false }
    }

    /// The next chunk, or `None` at the end of the body (or on a closed/timed-out socket).
    pub fn next_chunk(&mut self) -> Option<Vec<u8>> {
        if self.done {
            return None;
        }
        let mut size_line = String::new();
        if self.inner.read_line(&mut size_line).ok()? == 0 {
            self.done = true;
            return None;
        }
        let size = usize::from_str_radix(size_line.trim().split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            self.done = true;
            let mut crlf = String::new();
            let _ = self.inner.read_line(&mut crlf);
            return None;
        }
        let mut buf = vec![0; size + 2];
        self.inner.read_exact(&mut buf).ok()?;
        buf.truncate(size);
        Some(buf)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ev {
    pub id: Option<u64>,
    pub event: String,
    pub data: Value,
}

/// An SSE client over one HTTP/1.1 chunked response.
pub struct SseStream {
    pub head: Head,
    body: ChunkedReader<BufReader<TcpStream>>,
    pending: String,
}

pub enum Item {
    Event(Ev),
    Comment(String),
    Retry(u64),
}

impl SseStream {
    /// The next block (event, comment or retry), or `None` when the stream ended.
    pub fn next_item(&mut self) -> Option<Item> {
        loop {
            if let Some(end) = self.pending.find("\n\n") {
                let block: String = self.pending[..end].to_string();
                self.pending.drain(..end + 2);
                if let Some(c) = block.strip_prefix(':') {
                    return Some(Item::Comment(c.trim().to_string()));
                }
                if let Some(r) = block.strip_prefix("retry: ") {
                    return Some(Item::Retry(r.trim().parse().expect("retry value")));
                }
                let mut ev = Ev {
                    id: None,
                    event: String::new(),
                    data: Value::Null,
                };
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        ev.id = Some(v.parse().expect("numeric id"));
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        ev.event = v.to_string();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        ev.data = serde_json::from_str(v)
                            .unwrap_or_else(|e| panic!("data not JSON ({e}): {v}"));
                    } else {
                        panic!("unexpected line in event block: {line:?}");
                    }
                }
                return Some(Item::Event(ev));
            }
            let chunk = self.body.next_chunk()?;
            self.pending
                .push_str(std::str::from_utf8(&chunk).expect("UTF-8 stream"));
        }
    }

    pub fn next_event(&mut self) -> Option<Ev> {
        loop {
            match self.next_item()? {
                Item::Event(e) => return Some(e),
                Item::Comment(_) | Item::Retry(_) => continue,
            }
        }
    }

    /// Every logged (numbered) event until the server ends the stream; the unnumbered
    /// `connection` greeting is checked to be well-formed and left out.
    pub fn collect(&mut self) -> Vec<Ev> {
        let mut out = Vec::new();
        while let Some(e) = self.next_event() {
            if e.event == "connection" && e.id.is_none() {
                assert!(e.data["run_id"].is_string(), "{e:?}");
                continue;
            }
            out.push(e);
        }
        out
    }
}

/// Concatenated token text per agent, in order.
pub fn text_of(events: &[Ev], agent: &str) -> String {
    events
        .iter()
        .filter(|e| e.event == "token" && e.data["agent"] == agent)
        .map(|e| e.data["text"].as_str().unwrap().to_string())
        .collect()
}
