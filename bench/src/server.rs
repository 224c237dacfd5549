//! Starting the agent-mesh release binary as its own process, pointed at the mock as
//! the `custom` provider, and talking to its API.

use crate::http::Client;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub pid: u32,
    /// Time from spawn to the `listening on` line.
    pub listening_after: Duration,
    /// Log lines at WARN or ERROR, for the report.
    pub problems: Arc<Mutex<Vec<String>>>,
}

impl Server {
    pub fn start(
        bin: &Path,
        mock_base: &str,
        extra_env: &[(&str, &str)],
    ) -> Result<Server, String> {
        Server::start_wrapped(bin, mock_base, extra_env, &[])
    }

    /// The same, run under `wrapper` (e.g. valgrind and its options).
    pub fn start_wrapped(
        bin: &Path,
        mock_base: &str,
        extra_env: &[(&str, &str)],
        wrapper: &[String],
    ) -> Result<Server, String> {
        let started = Instant::now();
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            // No Hermes login or provider key from this machine leaks in.
            .env("HOME", "/nonexistent-agent-mesh-bench")
            .env("MESH_ADDR", "127.0.0.1:0")
            .env("MESH_PROVIDER", "custom")
            .env("CUSTOM_BASE_URL", mock_base)
            .env("MESH_MAX_ACTIVE_RUNS", "256")
            // Every bench client is 127.0.0.1: the memory phase alone holds 1,000
            // subscribers, far beyond the per-peer cap meant for one internet client.
            .env("MESH_MAX_CONNECTIONS_PER_PEER", "100000")
            // `listening on` is logged at INFO, so WARN would hide the address; the
            // per-run INFO line costs one short write per run, nothing per token.
            .env("MESH_LOG", "info");
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let pid = child.id();
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let problems = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        {
            let problems = problems.clone();
            std::thread::Builder::new()
                .name("server-log".into())
                .spawn(move || {
                    let mut sent = false;
                    for line in BufReader::new(stderr).lines() {
                        let Ok(line) = line else { break };
                        if !sent {
                            if let Some(i) = line.find("listening on http://") {
                                let _ = tx.send(line[i + 20..].trim().to_string());
                                sent = true;
                            }
                        }
                        // Authentication is off on loopback by design here.
                        if (line.contains(" WARN ") || line.contains(" ERROR "))
                            && !line.contains("authentication is off")
                        {
                            let mut p = problems.lock().unwrap_or_else(|p| p.into_inner());
                            if p.len() < 50 {
                                p.push(line);
                            }
                        }
                    }
                })
                .map_err(|e| e.to_string())?;
        }
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("agent-mesh did not report its address within 20 s".into());
            }
        };
        let listening_after = started.elapsed();
        let addr: SocketAddr = addr
            .parse()
            .map_err(|e| format!("bad address {addr}: {e}"))?;
        Ok(Server {
            child,
            addr,
            pid,
            listening_after,
            problems,
        })
    }

    /// Polls `GET /health` until it answers 200 (bounded).
    pub fn wait_healthy(&self) -> Result<(), String> {
        let end = Instant::now() + Duration::from_secs(30);
        while Instant::now() < end {
            let mut c = Client::new(self.addr);
            if let Ok((200, _)) = c.request("GET", "/health", "") {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Err("agent-mesh /health did not answer within 30 s".into())
    }

    pub fn rss_kib(&self) -> u64 {
        crate::sys::rss_kib(self.pid).unwrap_or(0)
    }
}

impl Server {
    /// SIGTERM (a graceful exit, so a wrapper like callgrind writes its results),
    /// then waits for the exit, at most `limit`.
    pub fn terminate(mut self, limit: Duration) -> Result<(), String> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err("agent-mesh did not exit after SIGTERM".into())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts one run; returns its id.
pub fn start_run(client: &mut Client, task: &str) -> Result<String, String> {
    let body = format!(r#"{{"task":"{task}","agents":["researcher"],"detach":true}}"#);
    let (status, text) = client
        .request("POST", "/api/run", &body)
        .map_err(|e| format!("POST /api/run: {e}"))?;
    if status != 201 {
        return Err(format!("POST /api/run: {status} {text}"));
    }
    let i = text.find("\"id\":\"").ok_or("no id in the answer")? + 6;
    Ok(text[i..i + 32].to_string())
}

pub fn cancel_run(client: &mut Client, id: &str) {
    let _ = client.request("POST", &format!("/api/runs/{id}/cancel"), "");
}

/// The release binary to measure, and the static one whose size is reported.
pub fn binaries(repo: &Path) -> (PathBuf, PathBuf, &'static str) {
    let release = repo.join("target/release/agent-mesh");
    let musl = repo.join("target/x86_64-unknown-linux-musl/release/agent-mesh");
    if musl.exists() {
        (release, musl, "static musl binary")
    } else {
        (
            release,
            repo.join("target/release/agent-mesh"),
            "release binary (glibc; no musl build found)",
        )
    }
}
