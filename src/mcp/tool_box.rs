//! The MCP client as the pipeline's [`ToolBox`]: connected servers, their tools, calls.

use super::client::McpClient;
use super::McpError;
use crate::model::tool_box::{BoxFuture, ToolBox, ToolDef, ToolFailure, ToolOutput, ToolServer};
use serde_json::Value;

impl ToolBox for McpClient {
    fn connect_all(&self) -> BoxFuture<'_, ()> {
        Box::pin(McpClient::connect_all(self))
    }

    fn servers(&self) -> BoxFuture<'_, Vec<ToolServer>> {
        Box::pin(async move {
            McpClient::servers(self)
                .await
                .into_iter()
                .map(|server| ToolServer {
                    name: server.name,
                    transport: server.transport,
                    connected: server.connected,
                    error: server.error,
                    protocol: server.protocol,
                    tools: server
                        .tools
                        .into_iter()
                        .map(|tool| ToolDef {
                            name: tool.name,
                            description: tool.description,
                            input_schema: tool.input_schema,
                        })
                        .collect(),
                })
                .collect()
        })
    }

    fn call_tool<'a>(
        &'a self,
        server: &'a str,
        tool: &'a str,
        arguments: Value,
        traceparent: Option<&'a str>,
        cancel: BoxFuture<'a, ()>,
    ) -> BoxFuture<'a, Result<ToolOutput, ToolFailure>> {
        Box::pin(async move {
            McpClient::call_tool_traced(self, server, tool, arguments, traceparent, cancel)
                .await
                .map(|result| ToolOutput::new(result.is_error, result.text()))
                .map_err(|e| ToolFailure {
                    error_type: error_type(&e),
                    message: e.to_string(),
                })
        })
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(McpClient::shutdown(self))
    }
}

/// The trace's `error.type` for a call that did not complete.
fn error_type(e: &McpError) -> String {
    match e {
        McpError::Connect(_) => "network".to_string(),
        McpError::Protocol(_) => "bad_response".to_string(),
        McpError::Rpc(rpc) => rpc.code.to_string(),
        McpError::Timeout(_) => "timeout".to_string(),
        McpError::Cancelled => "cancelled".to_string(),
        McpError::UnknownServer(_) => "unknown_tool".to_string(),
    }
}
