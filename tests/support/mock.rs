//! A mock model provider: a small threaded HTTP/1.1 server (plain or TLS with a test
//! CA) that records every request and answers with a scripted reply, streamed in
//! chunks exactly as scripted, and notes when the client closes the connection.
#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`null` when it is not JSON, e.g. a GET or a form).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }

    /// The system prompt, wherever the wire format puts it.
    pub fn system(&self) -> String {
        let v = self.json();
        if let Some(s) = v["system"].as_str() {
            return s.to_string();
        }
        v["messages"][0]["content"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// The user message.
    pub fn user(&self) -> String {
        let v = self.json();
        let msgs = v["messages"].as_array().unwrap();
        msgs.last().unwrap()["content"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Which agent made the call, from the role its system prompt names.
    pub fn agent(&self) -> &'static str {
        let s = self.system();
        for (title, name) in [
            ("Orchestrator", "orchestrator"),
            ("Researcher", "researcher"),
            ("Coder", "coder"),
            ("Analyst", "analyst"),
            ("Writer", "writer"),
        ] {
            if s.starts_with(&format!("You are the {title}")) {
                return name;
            }
        }
        "unknown"
    }
}

#[derive(Clone)]
pub enum Part {
    Bytes(Vec<u8>),
    Sleep(Duration),
    /// When the flag is set by the time this part is reached: these bytes, then the
    /// end of the response (a server cutting a stream short).
    EndIf(Arc<std::sync::atomic::AtomicBool>, Vec<u8>),
    /// Runs when reached (a mock server's own bookkeeping, e.g. freeing its slot).
    Call(Arc<dyn Fn() + Send + Sync>),
}

impl std::fmt::Debug for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Part::Bytes(b) => write!(f, "Bytes({:?})", String::from_utf8_lossy(b)),
            Part::Sleep(d) => write!(f, "Sleep({d:?})"),
            Part::EndIf(..) => f.write_str("EndIf"),
            Part::Call(_) => f.write_str("Call"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub parts: Vec<Part>,
    /// Keep the connection open after the parts until the client closes it.
    pub hold_open: bool,
}

impl Reply {
    pub fn sse(events: &[String]) -> Reply {
        Reply {
            status: 200,
            headers: vec![("Content-Type".into(), "text/event-stream".into())],
            parts: events
                .iter()
                .map(|e| Part::Bytes(e.clone().into_bytes()))
                .collect(),
            hold_open: false,
        }
    }

    /// The same bytes, each one its own chunk on the wire.
    pub fn bytewise(raw: &[u8]) -> Reply {
        Reply {
            status: 200,
            headers: vec![("Content-Type".into(), "text/event-stream".into())],
            parts: raw.iter().map(|b| Part::Bytes(vec![*b])).collect(),
            hold_open: false,
        }
    }

    pub fn error(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            parts: vec![Part::Bytes(body.as_bytes().to_vec())],
            hold_open: false,
        }
    }

    pub fn with_header(mut self, k: &str, v: &str) -> Reply {
        self.headers.push((k.into(), v.into()));
        self
    }
}

/// OpenAI-style chunks for `text`, one per piece, then usage and `[DONE]`.
pub fn openai_stream(pieces: &[&str], usage: Option<(u64, u64, Option<f64>)>) -> Vec<String> {
    let mut out: Vec<String> = vec![": OPENROUTER PROCESSING\n\n".to_string()];
    out.push(format!(
        "data: {}\n\n",
        serde_json::json!({"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]})
    ));
    for p in pieces {
        out.push(format!(
            "data: {}\n\n",
            serde_json::json!({"choices":[{"index":0,"delta":{"content":p}}]})
        ));
    }
    out.push(format!(
        "data: {}\n\n",
        serde_json::json!({"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})
    ));
    if let Some((i, o, cost)) = usage {
        let mut u =
            serde_json::json!({"prompt_tokens": i, "completion_tokens": o, "total_tokens": i + o});
        if let Some(c) = cost {
            u["cost"] = serde_json::json!(c);
        }
        out.push(format!(
            "data: {}\n\n",
            serde_json::json!({"choices":[], "usage": u})
        ));
    }
    out.push("data: [DONE]\n\n".to_string());
    out
}

/// Anthropic Messages events for `pieces`.
pub fn anthropic_stream(pieces: &[&str], input_tokens: u64, output_tokens: u64) -> Vec<String> {
    let ev = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
    let mut out = vec![ev(
        "message_start",
        serde_json::json!({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"m","usage":{"input_tokens":input_tokens,"output_tokens":1}}}),
    )];
    out.push(ev("content_block_start", serde_json::json!({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})));
    out.push(ev("ping", serde_json::json!({"type":"ping"})));
    for p in pieces {
        out.push(ev("content_block_delta", serde_json::json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":p}})));
    }
    out.push(ev(
        "content_block_stop",
        serde_json::json!({"type":"content_block_stop","index":0}),
    ));
    out.push(ev("message_delta", serde_json::json!({"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":output_tokens}})));
    out.push(ev(
        "message_stop",
        serde_json::json!({"type":"message_stop"}),
    ));
    out
}

type Handler = dyn Fn(&Recorded, usize) -> Reply + Send + Sync;

pub struct MockProvider {
    pub addr: SocketAddr,
    pub scheme: &'static str,
    requests: Arc<Mutex<Vec<Recorded>>>,
    closes: Arc<Mutex<Vec<Instant>>>,
    /// The PEM file of the CA that signed this mock's certificate (TLS only).
    pub ca_file: Option<PathBuf>,
}

impl MockProvider {
    /// `handler(request, n)` answers the n-th request (0-based).
    pub fn start(
        handler: impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static,
    ) -> MockProvider {
        Self::launch(Arc::new(handler), None)
    }

    pub fn start_tls(
        handler: impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static,
    ) -> MockProvider {
        let (config, ca_pem) = tls_config();
        let dir = std::env::temp_dir().join(format!(
            "mesh-mock-ca-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, ca_pem).unwrap();
        let mut m = Self::launch(Arc::new(handler), Some(Arc::new(config)));
        m.ca_file = Some(ca_file);
        m
    }

    fn launch(handler: Arc<Handler>, tls: Option<Arc<rustls::ServerConfig>>) -> MockProvider {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let closes = Arc::new(Mutex::new(Vec::new()));
        let scheme = if tls.is_some() { "https" } else { "http" };
        {
            let requests = requests.clone();
            let closes = closes.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(stream) = stream else { continue };
                    let handler = handler.clone();
                    let requests = requests.clone();
                    let closes = closes.clone();
                    let tls = tls.clone();
                    std::thread::spawn(move || {
                        stream.set_read_timeout(Some(Duration::from_secs(30))).ok();
                        match tls {
                            None => serve(stream, &handler, &requests, &closes),
                            Some(cfg) => {
                                let Ok(conn) = rustls::ServerConnection::new(cfg) else {
                                    return;
                                };
                                let tls_stream = rustls::StreamOwned::new(conn, stream);
                                serve(tls_stream, &handler, &requests, &closes)
                            }
                        }
                    });
                }
            });
        }
        MockProvider {
            addr,
            scheme,
            requests,
            closes,
            ca_file: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{}", self.scheme, self.addr, path)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// The model calls only (POSTs), leaving out catalog fetches.
    pub fn chat_requests(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "POST")
            .collect()
    }

    pub fn requests_of(&self, agent: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.agent() == agent)
            .collect()
    }

    pub fn closes(&self) -> Vec<Instant> {
        self.closes.lock().unwrap().clone()
    }
}

static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn serve<S: Read + Write>(
    stream: S,
    handler: &Arc<Handler>,
    requests: &Mutex<Vec<Recorded>>,
    closes: &Mutex<Vec<Instant>>,
) {
    let mut reader = BufReader::new(stream);
    // One request per connection: every reply says `Connection: close`.
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 {
            return;
        }
        let h = h.trim_end().to_string();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let len = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let rec = Recorded {
        method,
        path,
        headers,
        body,
        at: Instant::now(),
    };
    let n = {
        let mut r = requests.lock().unwrap();
        r.push(rec.clone());
        r.len() - 1
    };
    let reply = handler(&rec, n);
    let mut head = format!(
        "HTTP/1.1 {} Mock\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n",
        reply.status
    );
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let stream = reader.get_mut();
    if stream
        .write_all(head.as_bytes())
        .and_then(|_| stream.flush())
        .is_err()
    {
        closes.lock().unwrap().push(Instant::now());
        return;
    }
    for part in &reply.parts {
        match part {
            Part::Sleep(d) => std::thread::sleep(*d),
            Part::Call(f) => f(),
            Part::EndIf(flag, b) => {
                if flag.load(std::sync::atomic::Ordering::SeqCst) {
                    if write_chunk(stream, b) {
                        break;
                    }
                    closes.lock().unwrap().push(Instant::now());
                    return;
                }
            }
            Part::Bytes(b) => {
                if !write_chunk(stream, b) {
                    closes.lock().unwrap().push(Instant::now());
                    return;
                }
            }
        }
    }
    if reply.hold_open {
        // Wait for the client to hang up; a read of 0 bytes (or an error) is the close.
        let mut buf = [0u8; 64];
        loop {
            match reader.get_mut().read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => continue,
            }
        }
        closes.lock().unwrap().push(Instant::now());
        return;
    }
    let _ = stream.write_all(b"0\r\n\r\n");
    let _ = stream.flush();
}

/// One chunk of a chunked body; false when the client is gone.
fn write_chunk(stream: &mut impl Write, b: &[u8]) -> bool {
    let framed = [format!("{:x}\r\n", b.len()).as_bytes(), b, b"\r\n"].concat();
    stream
        .write_all(&framed)
        .and_then(|_| stream.flush())
        .is_ok()
}

/// A server config with a certificate of a throwaway CA, and that CA's PEM.
fn tls_config() -> (rustls::ServerConfig, String) {
    let certs = super::certs::localhost();
    let key = certs.leaf_key();
    let chain = vec![certs.leaf_der.clone()];
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    (cfg, certs.ca_pem)
}
