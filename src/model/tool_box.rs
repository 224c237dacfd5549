//! The tools an agent's turn may call, as the pipeline sees them: a trait the MCP client
//! implements, so neither the run model nor the provider registry that carries it to
//! the pipeline knows MCP.

use serde_json::Value;
use std::future::Future;
use std::pin::Pin;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One tool server and the tools it lists.
#[derive(Debug, Clone)]
pub struct ToolServer {
    pub name: String,
    /// "http" or "stdio".
    pub transport: &'static str,
    pub connected: bool,
    /// Why it is not connected (no secrets: config values never reach an error text).
    pub error: Option<String>,
    /// The protocol version in use once connected.
    pub protocol: Option<String>,
    pub tools: Vec<ToolDef>,
}

/// One tool as its server describes it.
#[derive(Debug, Clone)]
pub struct ToolDef {
    pub name: String,
    pub description: String,
    pub input_schema: Value,
}

/// A tool call that completed: its text for the model, and whether the tool failed.
#[derive(Debug, Clone)]
pub struct ToolOutput {
    pub is_error: bool,
    text: String,
}

impl ToolOutput {
    pub fn new(is_error: bool, text: String) -> ToolOutput {
        ToolOutput { is_error, text }
    }

    pub fn text(&self) -> String {
        self.text.clone()
    }
}

/// A tool call that did not complete: why, and its kind for the trace's `error.type`
/// (`network`, `bad_response`, `timeout`, `cancelled`, `unknown_tool`, or the JSON-RPC
/// error code).
#[derive(Debug, Clone)]
pub struct ToolFailure {
    pub error_type: String,
    pub message: String,
}

/// The configured tool servers behind one seam.
pub trait ToolBox: Send + Sync {
    /// Connects to every server and lists its tools; a failing server keeps its reason.
    fn connect_all(&self) -> BoxFuture<'_, ()>;
    /// Every server with its status and tools (listed again when stale).
    fn servers(&self) -> BoxFuture<'_, Vec<ToolServer>>;
    /// Calls `tool` on `server`, bounded by the tool timeout and `cancel`; `traceparent`
    /// (the W3C value of the caller's `execute_tool` span) travels with the request.
    /// `Err` is a call that did not complete; a tool's own failure is `Ok` with
    /// `is_error`.
    fn call_tool<'a>(
        &'a self,
        server: &'a str,
        tool: &'a str,
        arguments: Value,
        traceparent: Option<&'a str>,
        cancel: BoxFuture<'a, ()>,
    ) -> BoxFuture<'a, Result<ToolOutput, ToolFailure>>;
    /// Ends every session and stops every child process.
    fn shutdown(&self) -> BoxFuture<'_, ()>;
}
