//! The client driver the MCP conformance suite runs (`conformance client --command`): it
//! connects to the URL given as the last argument with agent-mesh's own MCP client and
//! does what the scenario in `MCP_CONFORMANCE_SCENARIO` expects of a client.
#![forbid(unsafe_code)]

use agent_mesh::mcp::config::{McpConfig, ServerConfig, TransportConfig, DEFAULT_TOOL_TIMEOUT};
use agent_mesh::mcp::McpClient;
use serde_json::json;
use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let Some(url) = std::env::args().skip(1).last() else {
        eprintln!("usage: mcp_conformance_client SERVER_URL");
        return ExitCode::from(2);
    };
    let scenario = std::env::var("MCP_CONFORMANCE_SCENARIO").unwrap_or_default();
    agent_mesh::log::set_level(agent_mesh::log::Level::Debug);
    let config = McpConfig {
        servers: vec![ServerConfig {
            name: "conformance".into(),
            transport: TransportConfig::Http {
                url,
                headers: Vec::new(),
            },
        }],
        tool_timeout: DEFAULT_TOOL_TIMEOUT,
    };
    let http = match agent_mesh::providers::client::build(None) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let client = McpClient::new(&config, &http);
    let status = match client.server("conformance").await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    if let Some(why) = &status.error {
        eprintln!("not connected: {why}");
        return ExitCode::from(1);
    }
    let tools: Vec<&str> = status.tools.iter().map(|t| t.name.as_str()).collect();
    println!("connected ({:?}), tools: {tools:?}", status.protocol);
    let call = match scenario.as_str() {
        "tools_call" => Some(("add_numbers", json!({"a": 2, "b": 3}))),
        "sse-retry" => Some(("test_reconnection", json!({}))),
        // Any other scenario: call the first listed tool with no arguments.
        _ => tools.first().map(|t| (*t, json!({}))),
    };
    let mut code = 0;
    if let Some((tool, args)) = call {
        match client
            .call_tool("conformance", tool, args, std::future::pending())
            .await
        {
            Ok(r) => {
                println!("{tool}: {}", r.text());
                code = u8::from(r.is_error);
            }
            Err(e) => {
                eprintln!("{tool}: {e}");
                code = 1;
            }
        }
    }
    client.shutdown().await;
    ExitCode::from(code)
}
