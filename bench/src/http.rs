//! A minimal HTTP/1.1 client over raw blocking sockets: keep-alive JSON requests, and
//! event streams read with a chunked decoder and an SSE splitter. Light on purpose, so
//! the client never dominates what is measured; every read has a timeout.

use crate::sys::now_ns;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

pub const IO_TIMEOUT: Duration = Duration::from_secs(20);
const MAX_HEAD: usize = 64 * 1024;

fn err(msg: impl Into<String>) -> io::Error {
    io::Error::other(msg.into())
}

pub fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(s)
}

/// A response head: status, whether the body is chunked, its length if announced.
#[derive(Debug)]
pub struct Head {
    pub status: u16,
    pub chunked: bool,
    pub content_length: Option<usize>,
}

/// Reads until the blank line ending the head; returns the head and any body bytes
/// that came with it.
pub fn read_head(sock: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<Head> {
    let mut tmp = [0u8; 8192];
    loop {
        if let Some(end) = find(buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            buf.drain(..end + 4);
            let mut lines = head.split("\r\n");
            let status = lines
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| err("bad status line"))?;
            let mut chunked = false;
            let mut content_length = None;
            for l in lines {
                if let Some((k, v)) = l.split_once(':') {
                    let k = k.trim().to_ascii_lowercase();
                    let v = v.trim();
                    if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
                        chunked = true;
                    } else if k == "content-length" {
                        content_length = v.parse().ok();
                    }
                }
            }
            return Ok(Head {
                status,
                chunked,
                content_length,
            });
        }
        if buf.len() > MAX_HEAD {
            return Err(err("response head too large"));
        }
        let n = sock.read(&mut tmp)?;
        if n == 0 {
            return Err(err("connection closed before the response head"));
        }
        buf.extend_from_slice(&tmp[..n]);
    }
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    let first = needle[0];
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        match hay[i..=hay.len() - needle.len()]
            .iter()
            .position(|&b| b == first)
        {
            None => return None,
            Some(p) => {
                i += p;
                if &hay[i..i + needle.len()] == needle {
                    return Some(i);
                }
                i += 1;
            }
        }
    }
    None
}

/// One keep-alive connection for JSON requests.
pub struct Client {
    addr: SocketAddr,
    sock: Option<TcpStream>,
    buf: Vec<u8>,
}

impl Client {
    pub fn new(addr: SocketAddr) -> Client {
        Client {
            addr,
            sock: None,
            buf: Vec::new(),
        }
    }

    /// Sends one request and reads the whole answer; reconnects once if the kept
    /// connection was closed by the server in between.
    pub fn request(&mut self, method: &str, path: &str, body: &str) -> io::Result<(u16, String)> {
        match self.try_request(method, path, body) {
            Ok(r) => Ok(r),
            Err(_) => {
                self.sock = None;
                self.try_request(method, path, body)
            }
        }
    }

    fn try_request(&mut self, method: &str, path: &str, body: &str) -> io::Result<(u16, String)> {
        if self.sock.is_none() {
            self.sock = Some(connect(self.addr)?);
            self.buf.clear();
        }
        let sock = self.sock.as_mut().ok_or_else(|| err("no socket"))?;
        let mut req = format!("{method} {path} HTTP/1.1\r\nhost: {}\r\n", self.addr);
        if !body.is_empty() || method == "POST" {
            req.push_str(&format!(
                "content-type: application/json\r\ncontent-length: {}\r\n",
                body.len()
            ));
        }
        req.push_str("\r\n");
        req.push_str(body);
        sock.write_all(req.as_bytes())?;
        let head = read_head(sock, &mut self.buf)?;
        let len = head
            .content_length
            .ok_or_else(|| err("JSON answer without content-length"))?;
        let mut tmp = [0u8; 8192];
        while self.buf.len() < len {
            let n = sock.read(&mut tmp)?;
            if n == 0 {
                return Err(err("connection closed mid-body"));
            }
            self.buf.extend_from_slice(&tmp[..n]);
        }
        let text = String::from_utf8_lossy(&self.buf[..len]).to_string();
        self.buf.drain(..len);
        Ok((head.status, text))
    }
}

/// Incremental decoder of `Transfer-Encoding: chunked`.
#[derive(Default)]
pub struct Dechunk {
    state: ChunkState,
    size: usize,
    pub finished: bool,
}

#[derive(Default, PartialEq)]
enum ChunkState {
    #[default]
    Size,
    SizeRest,
    Data,
    DataCr,
    DataLf,
    Trailer,
}

impl Dechunk {
    /// Appends the payload bytes of `input` to `out`.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        while !input.is_empty() && !self.finished {
            match self.state {
                ChunkState::Size => {
                    let b = input[0];
                    input = &input[1..];
                    match b {
                        b'0'..=b'9' => self.size = self.size * 16 + (b - b'0') as usize,
                        b'a'..=b'f' => self.size = self.size * 16 + (b - b'a' + 10) as usize,
                        b'A'..=b'F' => self.size = self.size * 16 + (b - b'A' + 10) as usize,
                        b'\n' => self.end_size(),
                        _ => self.state = ChunkState::SizeRest,
                    }
                }
                ChunkState::SizeRest => {
                    let b = input[0];
                    input = &input[1..];
                    if b == b'\n' {
                        self.end_size();
                    }
                }
                ChunkState::Data => {
                    let n = self.size.min(input.len());
                    out.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    self.size -= n;
                    if self.size == 0 {
                        self.state = ChunkState::DataCr;
                    }
                }
                ChunkState::DataCr | ChunkState::DataLf => {
                    let b = input[0];
                    input = &input[1..];
                    if b == b'\n' {
                        self.state = ChunkState::Size;
                    } else {
                        self.state = ChunkState::DataLf;
                    }
                }
                ChunkState::Trailer => {
                    let b = input[0];
                    input = &input[1..];
                    if b == b'\n' {
                        self.finished = true;
                    }
                }
            }
        }
    }

    fn end_size(&mut self) {
        if self.size == 0 {
            self.state = ChunkState::Trailer;
        } else {
            self.state = ChunkState::Data;
        }
    }
}

/// One dispatched SSE event, borrowed from the reader's buffer.
pub struct Event<'a> {
    pub name: &'a [u8],
    pub data: &'a [u8],
}

/// An open event stream: the socket, the chunked decoder and the undispatched bytes.
pub struct EventStream {
    pub sock: TcpStream,
    chunked: Option<Dechunk>,
    raw: Vec<u8>,
    pending: Vec<u8>,
    /// Realtime ns when the response head had arrived (the subscription is live).
    pub established_ns: u64,
    pub closed: bool,
}

impl EventStream {
    /// Sends a request and reads the response head of an event stream.
    pub fn open(addr: SocketAddr, method: &str, path: &str, body: &str) -> io::Result<EventStream> {
        EventStream::open_on(connect(addr)?, addr, method, path, body)
    }

    /// The same over an already connected socket.
    pub fn open_on(
        mut sock: TcpStream,
        addr: SocketAddr,
        method: &str,
        path: &str,
        body: &str,
    ) -> io::Result<EventStream> {
        let mut req =
            format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\naccept: text/event-stream\r\n");
        if method == "POST" {
            req.push_str(&format!(
                "content-type: application/json\r\ncontent-length: {}\r\n",
                body.len()
            ));
        }
        req.push_str("\r\n");
        req.push_str(body);
        sock.write_all(req.as_bytes())?;
        let mut buf = Vec::new();
        let head = read_head(&mut sock, &mut buf)?;
        if head.status != 200 {
            return Err(err(format!("{method} {path}: status {}", head.status)));
        }
        let established_ns = now_ns();
        let mut s = EventStream {
            sock,
            chunked: head.chunked.then(Dechunk::default),
            raw: Vec::with_capacity(16 * 1024),
            pending: Vec::new(),
            established_ns,
            closed: false,
        };
        s.ingest(&buf);
        Ok(s)
    }

    fn ingest(&mut self, bytes: &[u8]) {
        match &mut self.chunked {
            Some(d) => {
                d.feed(bytes, &mut self.pending);
                if d.finished {
                    self.closed = true;
                }
            }
            None => self.pending.extend_from_slice(bytes),
        }
    }

    /// Reads once (blocking, up to the read timeout) and hands every complete event
    /// to `f` with the arrival time of that read. Returns false at end of stream.
    pub fn read_events(&mut self, f: &mut dyn FnMut(u64, Event<'_>)) -> io::Result<bool> {
        // Events that came with the response head are handed out first, on their own.
        if self.dispatch(now_ns(), f) > 0 {
            return Ok(true);
        }
        if self.closed {
            return Ok(false);
        }
        self.raw.resize(64 * 1024, 0);
        let n = self.sock.read(&mut self.raw)?;
        let arrived = now_ns();
        if n == 0 {
            self.closed = true;
            return Ok(false);
        }
        let raw = std::mem::take(&mut self.raw);
        self.ingest(&raw[..n]);
        self.raw = raw;
        self.dispatch(arrived, f);
        Ok(!self.closed || !self.pending.is_empty())
    }

    fn dispatch(&mut self, arrived: u64, f: &mut dyn FnMut(u64, Event<'_>)) -> usize {
        let mut start = 0;
        let mut count = 0;
        while let Some(end) = find(&self.pending[start..], b"\n\n") {
            let block = &self.pending[start..start + end];
            let mut name: &[u8] = b"message";
            let mut data: &[u8] = b"";
            for line in block.split(|&b| b == b'\n') {
                if let Some(v) = line.strip_prefix(b"event: ") {
                    name = v;
                } else if let Some(v) = line.strip_prefix(b"data: ") {
                    data = v;
                }
            }
            f(arrived, Event { name, data });
            count += 1;
            start += end + 2;
        }
        self.pending.drain(..start);
        count
    }
}

/// The send time the mock embedded in a token's text (`@<ns>@`).
pub fn token_stamp(data: &[u8]) -> Option<u64> {
    let at = data.iter().position(|&b| b == b'@')?;
    let mut v: u64 = 0;
    let mut digits = 0;
    for &b in &data[at + 1..] {
        if b.is_ascii_digit() {
            v = v * 10 + u64::from(b - b'0');
            digits += 1;
        } else {
            break;
        }
    }
    (digits > 0).then_some(v)
}

/// Waits (bounded) until `cond` holds, polling every `step`.
pub fn wait_until(limit: Duration, step: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(step);
    }
    cond()
}

/// One request read off a keep-alive server connection.
pub struct Request {
    pub method: String,
    pub path: String,
    pub body: Vec<u8>,
}

/// Reads the next request from `conn` (its head, then a `Content-Length` body of at
/// most `max_body` bytes); `buf` keeps what arrived beyond it for the next one. `None`
/// when the client closed or timed out, or the request is too big.
pub fn read_request(conn: &mut TcpStream, buf: &mut Vec<u8>, max_body: usize) -> Option<Request> {
    let mut tmp = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i;
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
        match conn.read(&mut tmp) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    buf.drain(..head_end + 4);
    let mut lines = head.split("\r\n");
    let mut parts = lines.next().unwrap_or("").split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let length: usize = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    if length > max_body {
        return None;
    }
    while buf.len() < length {
        match conn.read(&mut tmp) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
        }
    }
    let body = buf.drain(..length).collect();
    Some(Request { method, path, body })
}
