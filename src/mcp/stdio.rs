//! The stdio transport: newline-delimited JSON-RPC to a supervised child process, started
//! on first use, restarted with backoff after it dies, killed on shutdown and on drop,
//! its stderr logged at debug.

use super::protocol::{self, classify, Era, Incoming, McpError};
use super::ServerEvents;
use crate::secret::Secret;
use serde_json::Value;
use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{ChildStdin, Command};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long the `server/discover` probe may take before the server is taken as legacy.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// A process that lived at least this long was healthy: its death resets the backoff.
const HEALTHY_UPTIME: Duration = Duration::from_secs(10);
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// One message line over this size ends the process's connection.
const MAX_LINE_BYTES: usize = 8 << 20;

/// The variables a child process inherits from agent-mesh; everything else it needs goes
/// in the server's `env`.
const INHERITED_ENV: [&str; 8] = [
    "HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER", "LANG", "TMPDIR",
];

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Value, McpError>>>>>;

/// A started process: its stdin, the calls awaiting answers, and its tasks.
struct Running {
    stdin: Arc<tokio::sync::Mutex<ChildStdin>>,
    pending: Pending,
    alive: Arc<AtomicBool>,
    era: Era,
    started: Instant,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        // The reader task owns the child (spawned with kill_on_drop): aborting it kills it.
        for t in &self.tasks {
            t.abort();
        }
    }
}

#[derive(Default)]
struct Backoff {
    failures: u32,
    last_death: Option<Instant>,
}

pub struct StdioTransport {
    server: String,
    command: String,
    args: Vec<String>,
    env: Vec<(String, Secret)>,
    events: Arc<ServerEvents>,
    next_id: AtomicU64,
    running: tokio::sync::Mutex<Option<Running>>,
    backoff: Mutex<Backoff>,
    known_era: Mutex<Option<Era>>,
}

impl std::fmt::Debug for StdioTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StdioTransport")
            .field("server", &self.server)
            .field("command", &self.command)
            .field("args", &self.args)
            .field(
                "env",
                &self.env.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl StdioTransport {
    pub fn new(
        server: &str,
        command: &str,
        args: &[String],
        env: &[(String, Secret)],
        events: Arc<ServerEvents>,
    ) -> StdioTransport {
        StdioTransport {
            server: server.to_string(),
            command: command.to_string(),
            args: args.to_vec(),
            env: env.to_vec(),
            events,
            next_id: AtomicU64::new(1),
            running: tokio::sync::Mutex::new(None),
            backoff: Mutex::new(Backoff::default()),
            known_era: Mutex::new(None),
        }
    }

    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn era(&self) -> Option<Era> {
        self.known_era.lock().ok().and_then(|e| e.clone())
    }

    pub async fn ensure_ready(&self) -> Result<(), McpError> {
        self.handles().await.map(|_| ())
    }

    /// The running process's handles, starting (or restarting) it first when needed.
    async fn handles(
        &self,
    ) -> Result<(Arc<tokio::sync::Mutex<ChildStdin>>, Pending, Era), McpError> {
        let mut running = self.running.lock().await;
        if let Some(r) = running.as_ref() {
            if r.alive.load(Ordering::Acquire) {
                return Ok((r.stdin.clone(), r.pending.clone(), r.era.clone()));
            }
            self.record_death(r.started);
            *running = None;
        }
        self.wait_backoff().await;
        let started = match self.start().await {
            Ok(r) => r,
            Err(e) => {
                self.record_death(Instant::now());
                return Err(e);
            }
        };
        let handles = (
            started.stdin.clone(),
            started.pending.clone(),
            started.era.clone(),
        );
        *running = Some(started);
        Ok(handles)
    }

    fn record_death(&self, started: Instant) {
        if let Ok(mut b) = self.backoff.lock() {
            if started.elapsed() >= HEALTHY_UPTIME {
                b.failures = 0;
            }
            b.failures += 1;
            b.last_death = Some(Instant::now());
        }
    }

    /// Restarts after a death wait 250 ms, doubling per quick death up to 30 s, so a server
    /// that crashes at once is not respawned in a tight loop.
    async fn wait_backoff(&self) {
        let until = self.backoff.lock().ok().and_then(|b| {
            let death = b.last_death?;
            let wait = FIRST_BACKOFF
                .saturating_mul(1 << b.failures.saturating_sub(1).min(8))
                .min(MAX_BACKOFF);
            Some(death + wait)
        });
        if let Some(until) = until {
            tokio::time::sleep_until(until).await;
        }
    }

    async fn start(&self) -> Result<Running, McpError> {
        let mut cmd = Command::new(&self.command);
        cmd.args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // Not agent-mesh's whole environment: that holds provider keys and MESH_PASS. The
        // child gets what programs need to run (the MCP SDKs' default set) and its `env`.
        cmd.env_clear();
        for var in INHERITED_ENV {
            if let Some(v) = std::env::var_os(var) {
                cmd.env(var, v);
            }
        }
        for (k, v) in &self.env {
            cmd.env(k, v.expose());
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| McpError::Connect(format!("cannot start \"{}\": {e}", self.command)))?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(McpError::Connect("the child process has no pipes".into()));
        };
        crate::log_debug!(
            "mcp {}: started \"{}\" (pid {})",
            self.server,
            self.command,
            child.id().unwrap_or(0)
        );
        let stdin = Arc::new(tokio::sync::Mutex::new(stdin));
        let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
        let alive = Arc::new(AtomicBool::new(true));

        let stderr_task = {
            let server = self.server.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    crate::log_debug!("mcp {server} stderr: {line}");
                }
            })
        };
        let reader_task = {
            let server = self.server.clone();
            let pending = pending.clone();
            let alive = alive.clone();
            let events = self.events.clone();
            let stdin = stdin.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(stdout);
                let mut line = Vec::new();
                loop {
                    line.clear();
                    match (&mut reader)
                        .take(MAX_LINE_BYTES as u64 + 1)
                        .read_until(b'\n', &mut line)
                        .await
                    {
                        Ok(0) | Err(_) => break,
                        Ok(n) if n > MAX_LINE_BYTES => {
                            crate::log_warn!("mcp {server}: a message line over {MAX_LINE_BYTES} bytes; dropping the process");
                            break;
                        }
                        Ok(_) => {}
                    }
                    let Ok(message) = serde_json::from_slice::<Value>(&line) else {
                        crate::log_debug!(
                            "mcp {server}: a stdout line that is not JSON-RPC was skipped"
                        );
                        continue;
                    };
                    match classify(&message) {
                        Some(Incoming::Response {
                            id: Some(id),
                            outcome,
                        }) => {
                            let waiter = pending.lock().ok().and_then(|mut p| p.remove(&id));
                            if let Some(tx) = waiter {
                                let _ = tx.send(outcome.map_err(McpError::Rpc));
                            }
                        }
                        Some(Incoming::Notification { method, .. }) => {
                            events.note(&server, &method)
                        }
                        Some(Incoming::Request { id, method }) => {
                            let answer = protocol::answer_server_request(&id, &method);
                            let _ = write_line(&stdin, &answer).await;
                        }
                        _ => {}
                    }
                }
                alive.store(false, Ordering::Release);
                let waiters: Vec<_> = pending
                    .lock()
                    .map(|mut p| p.drain().map(|(_, tx)| tx).collect())
                    .unwrap_or_default();
                for tx in waiters {
                    let _ = tx.send(Err(McpError::Connect("the server process exited".into())));
                }
                let status = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
                match status {
                    Ok(Ok(s)) => crate::log_info!("mcp {server}: the server process exited ({s})"),
                    _ => {
                        let _ = child.kill().await;
                        crate::log_info!("mcp {server}: the server closed its stdout; killed it");
                    }
                }
            })
        };
        let mut running = Running {
            stdin,
            pending,
            alive,
            era: Era::Legacy {
                version: protocol::LEGACY_VERSION.into(),
            },
            started: Instant::now(),
            tasks: vec![reader_task, stderr_task],
        };
        running.era = self.handshake(&running).await?;
        Ok(running)
    }

    /// Settles the era: a `server/discover` probe (once per configuration), and for a legacy
    /// server the `initialize` handshake on every new process.
    async fn handshake(&self, running: &Running) -> Result<Era, McpError> {
        let known = self.era();
        let era = match known {
            Some(era) => era,
            None => {
                let id = self.next_id();
                let probe = protocol::request(
                    id,
                    "server/discover",
                    Some(protocol::with_modern_meta(None, protocol::MODERN_VERSION)),
                );
                let answer = tokio::time::timeout(
                    PROBE_TIMEOUT,
                    exchange(&running.stdin, &running.pending, id, &probe),
                )
                .await;
                let legacy = Era::Legacy {
                    version: protocol::LEGACY_VERSION.into(),
                };
                let era = match answer {
                    Ok(Ok(result)) => {
                        let supported = protocol::strings(result.get("supportedVersions"));
                        protocol::choose_from_supported(&supported).unwrap_or(legacy)
                    }
                    Ok(Err(McpError::Rpc(e))) if e.code == protocol::UNSUPPORTED_PROTOCOL_VERSION => {
                        protocol::choose_from_supported(&e.supported_versions()).ok_or_else(|| {
                            McpError::Protocol(format!("the server supports none of our protocol versions (it lists {:?})", e.supported_versions()))
                        })?
                    }
                    Ok(Err(McpError::Connect(why))) => return Err(McpError::Connect(why)),
                    // Any other error, or silence, identifies a legacy server.
                    _ => {
                        running.pending.lock().ok().map(|mut p| p.remove(&id));
                        legacy
                    }
                };
                if let Ok(mut k) = self.known_era.lock() {
                    *k = Some(era.clone());
                }
                era
            }
        };
        if era.is_modern() {
            return Ok(era);
        }
        let id = self.next_id();
        let init = protocol::request(id, "initialize", Some(protocol::initialize_params()));
        let result = tokio::time::timeout(
            HANDSHAKE_TIMEOUT,
            exchange(&running.stdin, &running.pending, id, &init),
        )
        .await
        .map_err(|_| McpError::Timeout(HANDSHAKE_TIMEOUT))??;
        let era = protocol::legacy_era_of(&result)?;
        let version = era.version();
        write_line(
            &running.stdin,
            &protocol::notification("notifications/initialized", None),
        )
        .await?;
        crate::log_debug!(
            "mcp {}: connected over stdio, protocol {version}",
            self.server
        );
        Ok(era)
    }

    /// One request and its answer; fails when the process dies before answering.
    pub async fn request(
        &self,
        id: u64,
        method: &str,
        params: Option<Value>,
    ) -> Result<Value, McpError> {
        let (stdin, pending, era) = self.handles().await?;
        let params = match &era {
            Era::Modern { version } => Some(protocol::with_modern_meta(params, version)),
            Era::Legacy { .. } => params,
        };
        exchange(&stdin, &pending, id, &protocol::request(id, method, params)).await
    }

    /// Tells the process request `id` is cancelled (when it still runs).
    pub async fn send_cancelled(&self, id: u64, reason: &str) {
        let handles = {
            let running = self.running.lock().await;
            running
                .as_ref()
                .filter(|r| r.alive.load(Ordering::Acquire))
                .map(|r| (r.stdin.clone(), r.pending.clone()))
        };
        if let Some((stdin, pending)) = handles {
            pending.lock().ok().map(|mut p| p.remove(&id));
            if let Err(e) = write_line(&stdin, &protocol::cancelled(id, reason)).await {
                crate::log_debug!("mcp {}: notifications/cancelled failed: {e}", self.server);
            }
        }
    }

    /// Stops the process: closes its stdin, then kills it (its tasks are aborted).
    pub async fn shutdown(&self) {
        let taken = self.running.lock().await.take();
        if let Some(r) = taken {
            // Dropping `r` aborts the reader task, which owns the child: kill_on_drop kills it.
            drop(r);
        }
    }
}

async fn write_line(
    stdin: &tokio::sync::Mutex<ChildStdin>,
    message: &Value,
) -> Result<(), McpError> {
    let mut line = serde_json::to_vec(message).map_err(|e| McpError::Protocol(e.to_string()))?;
    line.push(b'\n');
    let mut w = stdin.lock().await;
    w.write_all(&line)
        .await
        .map_err(|e| McpError::Connect(format!("cannot write to the server process: {e}")))?;
    w.flush()
        .await
        .map_err(|e| McpError::Connect(format!("cannot write to the server process: {e}")))
}

/// Registers `id`, writes the request, waits for its answer (or the process's death).
async fn exchange(
    stdin: &tokio::sync::Mutex<ChildStdin>,
    pending: &Pending,
    id: u64,
    request: &Value,
) -> Result<Value, McpError> {
    let (tx, rx) = oneshot::channel();
    if let Ok(mut p) = pending.lock() {
        p.insert(id, tx);
    }
    if let Err(e) = write_line(stdin, request).await {
        pending.lock().ok().map(|mut p| p.remove(&id));
        return Err(e);
    }
    match rx.await {
        Ok(answer) => answer,
        Err(_) => Err(McpError::Connect("the server process exited".into())),
    }
}
