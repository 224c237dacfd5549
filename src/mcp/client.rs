//! One client over every configured MCP server: connection status, tool lists (paged,
//! re-listed after `list_changed`), and tool calls bounded by a timeout and a cancel signal
//! that tell the server (`notifications/cancelled`, or a closed stream) when cut short.

use super::config::{McpConfig, TransportConfig};
use super::content::{ToolInfo, ToolResult, MAX_RESULT_BYTES};
use super::http::{param_headers, x_mcp_header_problem, HttpTransport};
use super::protocol::{Era, McpError};
use super::stdio::StdioTransport;
use super::ServerEvents;
use crate::providers::client::HttpClient;
use serde::Serialize;
use serde_json::{json, Value};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The W3C trace context's key, in `params._meta` and as an HTTP header.
const TRACEPARENT: &str = "traceparent";
/// `tools/list` pages followed before the list is taken as complete (a server that
/// always returns a cursor must not loop forever).
const MAX_LIST_PAGES: usize = 100;
/// Connecting and listing get at least this long, whatever the tool timeout.
const MIN_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

enum Transport {
    Http(Box<HttpTransport>),
    Stdio(Box<StdioTransport>),
    /// A server whose transport could not be set up: every use fails with the reason.
    Unusable(String),
}

impl Transport {
    fn next_id(&self) -> u64 {
        match self {
            Transport::Http(t) => t.next_id(),
            Transport::Stdio(t) => t.next_id(),
            Transport::Unusable(_) => 0,
        }
    }

    fn era(&self) -> Option<Era> {
        match self {
            Transport::Http(t) => t.era(),
            Transport::Stdio(t) => t.era(),
            Transport::Unusable(_) => None,
        }
    }

    async fn request(
        &self,
        id: u64,
        method: &str,
        params: Option<Value>,
        name: Option<&str>,
        extra_headers: &[(String, String)],
        traceparent: Option<&str>,
    ) -> Result<Value, McpError> {
        match self {
            Transport::Http(t) => {
                t.request(id, method, params, name, extra_headers, traceparent)
                    .await
            }
            Transport::Stdio(t) => t.request(id, method, params).await,
            Transport::Unusable(why) => Err(McpError::Connect(why.clone())),
        }
    }

    async fn send_cancelled(&self, id: u64, reason: &str) {
        match self {
            Transport::Http(t) => t.send_cancelled(id, reason).await,
            Transport::Stdio(t) => t.send_cancelled(id, reason).await,
            Transport::Unusable(_) => {}
        }
    }

    async fn shutdown(&self) {
        match self {
            Transport::Http(t) => t.shutdown().await,
            Transport::Stdio(t) => t.shutdown().await,
            Transport::Unusable(_) => {}
        }
    }

    async fn ensure_ready(&self) -> Result<(), McpError> {
        match self {
            Transport::Http(t) => t.ensure_ready().await,
            Transport::Stdio(t) => t.ensure_ready().await,
            Transport::Unusable(why) => Err(McpError::Connect(why.clone())),
        }
    }
}

/// A server's state as the last attempt left it.
#[derive(Default)]
struct Known {
    /// `None` before the first attempt; `Some(Err)` says why it is not usable.
    status: Option<Result<(), String>>,
    tools: Vec<ToolInfo>,
}

struct Server {
    name: String,
    kind: &'static str,
    transport: Arc<Transport>,
    events: Arc<ServerEvents>,
    known: Mutex<Known>,
    /// A background re-list of a failed server is under way.
    retrying: AtomicBool,
}

/// One server as `agent-mesh mcp tools` and (later) `GET /api/tools` show it.
#[derive(Debug, Clone, Serialize)]
pub struct ServerStatus {
    pub name: String,
    /// "http" or "stdio".
    pub transport: &'static str,
    pub connected: bool,
    /// Why it is not connected (no secrets: config values never reach an error text).
    pub error: Option<String>,
    /// The protocol version in use once connected.
    pub protocol: Option<String>,
    pub tools: Vec<ToolInfo>,
}

/// Every configured MCP server behind one API.
pub struct McpClient {
    servers: Vec<Arc<Server>>,
    tool_timeout: Duration,
}

impl McpClient {
    /// Builds the client; nothing connects until [`connect_all`](Self::connect_all) or a
    /// first use (stdio processes start lazily).
    pub fn new(config: &McpConfig, http: &HttpClient) -> McpClient {
        let servers = config
            .servers
            .iter()
            .map(|s| {
                let events = Arc::new(ServerEvents::default());
                let (kind, transport) = match &s.transport {
                    TransportConfig::Http { url, headers } => (
                        "http",
                        HttpTransport::new(&s.name, url, headers, http.clone(), events.clone())
                            .map(|t| Transport::Http(Box::new(t))),
                    ),
                    TransportConfig::Stdio { command, args, env } => (
                        "stdio",
                        Ok(Transport::Stdio(Box::new(StdioTransport::new(
                            &s.name,
                            command,
                            args,
                            env,
                            events.clone(),
                        )))),
                    ),
                };
                let (transport, status) = match transport {
                    Ok(t) => (t, None),
                    // Unreachable after config validation; kept as a status, not a panic.
                    Err(e) => (Transport::Unusable(e.to_string()), Some(Err(e.to_string()))),
                };
                Arc::new(Server {
                    name: s.name.clone(),
                    kind,
                    transport: Arc::new(transport),
                    events,
                    known: Mutex::new(Known {
                        status,
                        tools: Vec::new(),
                    }),
                    retrying: AtomicBool::new(false),
                })
            })
            .collect();
        McpClient {
            servers,
            tool_timeout: config.tool_timeout,
        }
    }

    pub fn tool_timeout(&self) -> Duration {
        self.tool_timeout
    }

    pub fn server_names(&self) -> Vec<String> {
        self.servers.iter().map(|s| s.name.clone()).collect()
    }

    /// Connects to every server at once and lists its tools; a server that fails keeps
    /// the reason in its status (the team goes on without its tools).
    pub async fn connect_all(&self) {
        let mut tasks = Vec::new();
        for server in &self.servers {
            let server = server.clone();
            let timeout = self.tool_timeout;
            tasks.push(tokio::spawn(async move {
                refresh(&server, timeout).await;
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    }

    /// Every server with its status and tools; a server whose list changed (or that was
    /// never reached) is listed again first. A server that failed is tried again in the
    /// background (one attempt at a time), so one that was down at startup, or came back,
    /// is used again without a restart and without holding up the caller.
    pub async fn servers(&self) -> Vec<ServerStatus> {
        let mut out = Vec::with_capacity(self.servers.len());
        for server in &self.servers {
            let (never_tried, failed) = server
                .known
                .lock()
                .map(|k| (k.status.is_none(), matches!(k.status, Some(Err(_)))))
                .unwrap_or((true, false));
            if server.events.take_tools_changed() || never_tried {
                refresh(server, self.tool_timeout).await;
            } else if failed && !server.retrying.swap(true, Ordering::AcqRel) {
                let server = server.clone();
                let timeout = self.tool_timeout;
                tokio::spawn(async move {
                    refresh(&server, timeout).await;
                    server.retrying.store(false, Ordering::Release);
                });
            }
            out.push(status_of(server));
        }
        out
    }

    /// One server's status and tools.
    pub async fn server(&self, name: &str) -> Result<ServerStatus, McpError> {
        let server = self.find(name)?;
        if server.events.take_tools_changed()
            || server
                .known
                .lock()
                .map(|k| k.status.is_none())
                .unwrap_or(true)
        {
            refresh(server, self.tool_timeout).await;
        }
        Ok(status_of(server))
    }

    fn find(&self, name: &str) -> Result<&Arc<Server>, McpError> {
        self.servers
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| McpError::UnknownServer(name.to_string()))
    }

    /// Calls `tool` on `server` with JSON `arguments`, bounded by the tool timeout and
    /// `cancel` (resolve it to cancel). A call cut short, by the timeout, the signal or
    /// the drop of this future, is cancelled on the server too. `Err` is a call that did
    /// not complete; a tool's own failure is `Ok` with `is_error`.
    pub async fn call_tool(
        &self,
        server: &str,
        tool: &str,
        arguments: Value,
        cancel: impl Future<Output = ()>,
    ) -> Result<ToolResult, McpError> {
        self.call_tool_traced(server, tool, arguments, None, cancel)
            .await
    }

    /// [`call_tool`](Self::call_tool) inside a trace: `traceparent` (the W3C header value
    /// of the caller's `execute_tool` span) goes in the request's `params._meta` under
    /// `traceparent`, where the MCP spec reserves it (SEP-414: the one channel a stdio
    /// server has), and over Streamable HTTP also as the `traceparent` header, for
    /// HTTP-level instrumentation in front of the server.
    pub async fn call_tool_traced(
        &self,
        server: &str,
        tool: &str,
        arguments: Value,
        traceparent: Option<&str>,
        cancel: impl Future<Output = ()>,
    ) -> Result<ToolResult, McpError> {
        let server = self.find(server)?.clone();
        let transport = server.transport.clone();
        let timeout = self.tool_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        // Connecting counts against the call's time too.
        tokio::select! {
            r = transport.ensure_ready() => r?,
            _ = tokio::time::sleep_until(deadline) => return Err(McpError::Timeout(timeout)),
        }
        // A 2026-07-28 tool may ask for some arguments to be mirrored into headers.
        let extra_headers = match transport.era() {
            Some(Era::Modern { .. }) => server
                .known
                .lock()
                .ok()
                .and_then(|k| {
                    k.tools
                        .iter()
                        .find(|t| t.name == tool)
                        .map(|t| t.input_schema.clone())
                })
                .map(|schema| param_headers(&schema, &arguments))
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let id = transport.next_id();
        let mut guard = CancelOnDrop {
            transport: transport.clone(),
            id,
            armed: true,
        };
        let mut params = json!({"name": tool, "arguments": arguments});
        if let Some(tp) = traceparent {
            params["_meta"] = json!({ TRACEPARENT: tp });
        }
        let call = transport.request(
            id,
            "tools/call",
            Some(params),
            Some(tool),
            &extra_headers,
            traceparent,
        );
        let outcome = tokio::select! {
            r = call => r,
            _ = cancel => {
                guard.armed = false;
                transport.send_cancelled(id, "cancelled by agent-mesh").await;
                return Err(McpError::Cancelled);
            }
            _ = tokio::time::sleep_until(deadline) => {
                guard.armed = false;
                transport.send_cancelled(id, &format!("timed out after {} s", timeout.as_secs())).await;
                return Err(McpError::Timeout(timeout));
            }
        };
        guard.armed = false;
        outcome.map(|result| ToolResult::from_wire(&result, MAX_RESULT_BYTES))
    }

    /// Ends every session and stops every child process.
    pub async fn shutdown(&self) {
        for server in &self.servers {
            server.transport.shutdown().await;
        }
    }
}

/// Sends `notifications/cancelled` when a call's future is dropped before its answer.
struct CancelOnDrop {
    transport: Arc<Transport>,
    id: u64,
    armed: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let transport = self.transport.clone();
            let id = self.id;
            runtime.spawn(async move {
                transport.send_cancelled(id, "the call was abandoned").await;
            });
        }
    }
}

/// Lists `server`'s tools (every page), recording the outcome as its status. Starting a
/// server (a `npx` download, a cold runtime) may take longer than one short tool call.
async fn refresh(server: &Server, tool_timeout: Duration) {
    let timeout = tool_timeout.max(MIN_CONNECT_TIMEOUT);
    let listed = tokio::time::timeout(timeout, list_tools(&server.transport)).await;
    let outcome = match listed {
        Ok(Ok(tools)) => Ok(tools),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(McpError::Timeout(timeout).to_string()),
    };
    if let Ok(mut k) = server.known.lock() {
        // A server that stays down is tried again on every turn: say so once per reason.
        if let Err(why) = &outcome {
            if k.status.as_ref().and_then(|s| s.as_ref().err()) == Some(why) {
                crate::log_debug!("mcp {}: {why}", server.name);
            } else {
                crate::log_warn!("mcp {}: {why}", server.name);
            }
        } else if matches!(k.status, Some(Err(_))) {
            crate::log_info!("mcp {}: connected again", server.name);
        }
        match outcome {
            Ok(tools) => {
                k.tools = tools;
                k.status = Some(Ok(()));
            }
            Err(why) => {
                k.tools.clear();
                k.status = Some(Err(why));
            }
        }
    }
}

async fn list_tools(transport: &Transport) -> Result<Vec<ToolInfo>, McpError> {
    let mut tools = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_LIST_PAGES {
        let params = cursor.as_ref().map(|c| json!({"cursor": c}));
        let id = transport.next_id();
        let result = transport
            .request(id, "tools/list", params, None, &[], None)
            .await?;
        let page = result
            .get("tools")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                McpError::Protocol("tools/list answered without a tools array".into())
            })?;
        let modern_http = matches!(transport, Transport::Http(_))
            && transport.era().is_some_and(|e| e.is_modern());
        for tool in page.iter().filter_map(ToolInfo::from_wire) {
            // A 2026-07-28 HTTP client must leave out a tool whose header annotations are
            // invalid, so one bad definition does not spoil the others.
            if modern_http {
                if let Some(why) = x_mcp_header_problem(&tool.input_schema) {
                    crate::log_warn!("mcp: tool \"{}\" left out: {why}", tool.name);
                    continue;
                }
            }
            tools.push(tool);
        }
        match result.get("nextCursor").and_then(Value::as_str) {
            Some(next) if !next.is_empty() && cursor.as_deref() != Some(next) => {
                cursor = Some(next.to_string());
            }
            _ => return Ok(tools),
        }
    }
    Ok(tools)
}

fn status_of(server: &Server) -> ServerStatus {
    let (connected, error, tools) = match server.known.lock() {
        Ok(k) => match &k.status {
            Some(Ok(())) => (true, None, k.tools.clone()),
            Some(Err(why)) => (false, Some(why.clone()), Vec::new()),
            None => (false, Some("not connected yet".to_string()), Vec::new()),
        },
        Err(_) => (
            false,
            Some("internal state unavailable".to_string()),
            Vec::new(),
        ),
    };
    ServerStatus {
        name: server.name.clone(),
        transport: server.kind,
        connected,
        error,
        protocol: server.transport.era().map(|e| e.version().to_string()),
        tools,
    }
}
