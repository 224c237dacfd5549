//! MCP (Model Context Protocol) servers as the team's tools: configuration, the Streamable
//! HTTP and stdio transports, and one client over all configured servers.

pub mod cli;
pub mod client;
pub mod config;
pub mod content;
pub mod http;
pub mod protocol;
pub mod stdio;
pub mod tool_box;

pub use client::{McpClient, ServerStatus};
pub use config::{McpConfig, McpConfigError};
pub use content::{ContentBlock, ToolInfo, ToolResult};
pub use protocol::McpError;

use std::sync::atomic::{AtomicBool, Ordering};

/// What a server told us on its own: set by the transports, read by the client.
#[derive(Debug, Default)]
pub struct ServerEvents {
    tools_changed: AtomicBool,
}

impl ServerEvents {
    /// Records a notification from `server`; only a changed tool list matters here.
    pub fn note(&self, server: &str, method: &str) {
        if method == "notifications/tools/list_changed" {
            crate::log_debug!("mcp {server}: its tool list changed");
            self.tools_changed.store(true, Ordering::Release);
        }
    }

    /// True once after each `notifications/tools/list_changed`.
    pub fn take_tools_changed(&self) -> bool {
        self.tools_changed.swap(false, Ordering::AcqRel)
    }
}
