//! The MCP client as the pipeline's [`ToolBox`]: connected servers, their tools, calls.

use super::client::McpClient;
use crate::model::tool_box::{BoxFuture, ToolBox, ToolDef, ToolOutput, ToolServer};
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
                    connected: server.connected,
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
        cancel: BoxFuture<'a, ()>,
    ) -> BoxFuture<'a, Result<ToolOutput, String>> {
        Box::pin(async move {
            McpClient::call_tool(self, server, tool, arguments, cancel)
                .await
                .map(|result| ToolOutput::new(result.is_error, result.text()))
                .map_err(|e| e.to_string())
        })
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(McpClient::shutdown(self))
    }
}
