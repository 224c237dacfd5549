//! `agent-mesh mcp tools [SERVER]` and `agent-mesh mcp call SERVER TOOL [JSON]`: the
//! commands a user runs to check an MCP setup. Exit 2 for bad usage or config, 1 for a
//! server or call that failed, 0 otherwise.

use super::client::{McpClient, ServerStatus};
use super::config::McpConfig;
use crate::util::env::Env;
use serde_json::Value;
use std::io::Write;
use std::path::Path;

/// Builds the client from `MESH_MCP_CONFIG`; `Err` is the exit code after the message.
fn client_from(ca_file: Option<&Path>, env: &dyn Env) -> Result<McpClient, i32> {
    let mcp = match McpConfig::from_env(env) {
        Ok(Some(c)) => c,
        Ok(None) => {
            eprintln!("agent-mesh: MESH_MCP_CONFIG is not set; point it at an mcp.json (see the README, \"Tools (MCP)\")");
            return Err(2);
        }
        Err(e) => {
            eprintln!("agent-mesh: {e}");
            return Err(2);
        }
    };
    let http = match crate::providers::client::build(ca_file) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("agent-mesh: MESH_CA_FILE: {e}");
            return Err(2);
        }
    };
    Ok(McpClient::new(&mcp, &http))
}

/// `mcp tools [SERVER]`: every server (or one) with its status and tools.
pub async fn print_tools(ca_file: Option<&Path>, env: &dyn Env, server: Option<&str>) -> i32 {
    let client = match client_from(ca_file, env) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let statuses = match server {
        Some(name) => match client.server(name).await {
            Ok(s) => vec![s],
            Err(e) => {
                eprintln!(
                    "agent-mesh: {e} (configured: {})",
                    client.server_names().join(", ")
                );
                client.shutdown().await;
                return 2;
            }
        },
        None => {
            client.connect_all().await;
            client.servers().await
        }
    };
    client.shutdown().await;
    let mut out = std::io::stdout().lock();
    for s in &statuses {
        let _ = out.write_all(describe(s).as_bytes());
    }
    i32::from(statuses.iter().any(|s| !s.connected))
}

fn describe(s: &ServerStatus) -> String {
    let protocol = s
        .protocol
        .as_deref()
        .map(|p| format!(", protocol {p}"))
        .unwrap_or_default();
    let mut text = match &s.error {
        None => format!(
            "{} ({}{protocol}): connected, {} tool{}\n",
            s.name,
            s.transport,
            s.tools.len(),
            if s.tools.len() == 1 { "" } else { "s" }
        ),
        Some(why) => format!("{} ({}): not connected: {why}\n", s.name, s.transport),
    };
    for t in &s.tools {
        let description = t.description.lines().next().unwrap_or("").trim();
        text.push_str(&format!("  {}/{}", s.name, t.name));
        if !description.is_empty() {
            text.push_str(&format!(" - {description}"));
        }
        text.push('\n');
        let args = arguments_line(&t.input_schema);
        if !args.is_empty() {
            text.push_str(&format!("      arguments: {args}\n"));
        }
    }
    text
}

/// `a (string, required), b (number)` from a JSON Schema's top-level properties.
fn arguments_line(schema: &Value) -> String {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|props| {
            props
                .iter()
                .map(|(name, p)| {
                    let kind = p.get("type").and_then(Value::as_str).unwrap_or("any");
                    if required.contains(&name.as_str()) {
                        format!("{name} ({kind}, required)")
                    } else {
                        format!("{name} ({kind})")
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// `mcp call SERVER TOOL [JSON]`: the result's text on stdout; Ctrl+C cancels the call.
pub async fn call(
    ca_file: Option<&Path>,
    env: &dyn Env,
    server: &str,
    tool: &str,
    json: Option<&str>,
) -> i32 {
    let arguments: Value = match json.map(str::trim).filter(|j| !j.is_empty()) {
        None => Value::Object(Default::default()),
        Some(text) => match serde_json::from_str(text) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => {
                eprintln!("agent-mesh: the tool arguments must be a JSON object, like '{{\"message\": \"hi\"}}'");
                return 2;
            }
            Err(e) => {
                eprintln!("agent-mesh: the tool arguments are not valid JSON: {e}");
                return 2;
            }
        },
    };
    let client = match client_from(ca_file, env) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if !client.server_names().iter().any(|n| n == server) {
        eprintln!(
            "agent-mesh: no MCP server named \"{server}\" (configured: {})",
            client.server_names().join(", ")
        );
        return 2;
    }
    let interrupted = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let outcome = client.call_tool(server, tool, arguments, interrupted).await;
    client.shutdown().await;
    match outcome {
        Ok(result) => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", result.text());
            if result.is_error {
                eprintln!("agent-mesh: {server}/{tool} reported an error");
                1
            } else {
                0
            }
        }
        Err(e) => {
            eprintln!("agent-mesh: {server}/{tool}: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_status_lists_tools_with_their_arguments() {
        let s = ServerStatus {
            name: "everything".into(),
            transport: "stdio",
            connected: true,
            error: None,
            protocol: Some("2025-11-25".into()),
            tools: vec![crate::mcp::ToolInfo {
                name: "echo".into(),
                description: "Echoes back the input\nmore".into(),
                input_schema: json!({"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]}),
            }],
        };
        assert_eq!(
            describe(&s),
            "everything (stdio, protocol 2025-11-25): connected, 1 tool\n  everything/echo - Echoes back the input\n      arguments: message (string, required)\n"
        );
        let down = ServerStatus {
            connected: false,
            error: Some("cannot connect: refused".into()),
            tools: vec![],
            protocol: None,
            ..s
        };
        assert_eq!(
            describe(&down),
            "everything (stdio): not connected: cannot connect: refused\n"
        );
    }
}
