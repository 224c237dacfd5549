//! `GET /api/tools`: the configured MCP servers (connected, or why not), their tools,
//! and which agents of the roster may use each.

use crate::api::state::AppState;
use crate::http::body::{json, Body};
use crate::model::tool_box::ToolServer;
use crate::model::tool_grant;
use crate::pipeline::roster::Roster;
use hyper::{Response, StatusCode};
use serde_json::{json, Value};

pub async fn list(state: &AppState) -> Response<Body> {
    let servers = match state.providers.tools() {
        Some(client) => client.servers().await,
        None => Vec::new(),
    };
    json(
        StatusCode::OK,
        &tools_json(&state.pipeline.roster, &servers),
    )
}

/// `{"servers": [...]}`: each server with `agents` (who may use any of its tools, so a
/// down server still says whom it leaves without tools) and each tool with the agents
/// its grants cover. A request's `tools` can narrow these per run, never widen them.
fn tools_json(roster: &Roster, servers: &[ToolServer]) -> Value {
    let grants: Vec<(&str, Vec<tool_grant::ToolPattern>)> = roster
        .agents()
        .iter()
        .map(|a| (a.name.as_str(), roster.granted_tools(a)))
        .collect();
    let who = |allowed: &dyn Fn(&[tool_grant::ToolPattern]) -> bool| -> Vec<&str> {
        grants
            .iter()
            .filter(|(_, g)| allowed(g))
            .map(|(name, _)| *name)
            .collect()
    };
    let list: Vec<Value> = servers
        .iter()
        .map(|s| {
            let tools: Vec<Value> = s
                .tools
                .iter()
                .map(|t| {
                    json!({
                        "name": t.name,
                        "description": t.description,
                        "input_schema": t.input_schema,
                        "agents": who(&|g| tool_grant::allows(g, &s.name, &t.name)),
                    })
                })
                .collect();
            json!({
                "name": s.name,
                "transport": s.transport,
                "connected": s.connected,
                "error": s.error,
                "protocol": s.protocol,
                "agents": who(&|g| tool_grant::touches_server(g, &s.name)),
                "tools": tools,
            })
        })
        .collect();
    json!({ "servers": list })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tool_box::ToolDef;

    fn tool(name: &str) -> ToolDef {
        ToolDef {
            name: name.to_string(),
            description: format!("the {name} tool"),
            input_schema: json!({"type": "object"}),
        }
    }

    #[test]
    fn each_tool_names_the_agents_its_grants_cover() {
        let roster = Roster::from_json(
            r#"{"agents":[
                {"name":"boss","kind":"planner","model":"m"},
                {"name":"reader","kind":"specialist","model":"m","tools":["fs/read"]},
                {"name":"any","kind":"specialist","model":"m"},
                {"name":"pen","kind":"writer","model":"m","tools":["web/*"]}
            ]}"#,
        )
        .unwrap()
        .with_tool_servers(&["fs".to_string(), "web".to_string()])
        .unwrap();
        let servers = [
            ToolServer {
                name: "fs".into(),
                transport: "stdio",
                connected: true,
                error: None,
                protocol: Some("2025-11-25".into()),
                tools: vec![tool("read"), tool("write")],
            },
            ToolServer {
                name: "web".into(),
                transport: "http",
                connected: false,
                error: Some("connection refused".into()),
                protocol: None,
                tools: Vec::new(),
            },
        ];
        let body = tools_json(&roster, &servers);
        let fs = &body["servers"][0];
        assert_eq!(fs["connected"], true);
        assert_eq!(fs["agents"], json!(["reader", "any"]));
        assert_eq!(fs["tools"][0]["name"], "read");
        assert_eq!(fs["tools"][0]["input_schema"]["type"], "object");
        assert_eq!(fs["tools"][0]["agents"], json!(["reader", "any"]));
        assert_eq!(fs["tools"][1]["agents"], json!(["any"]));
        let web = &body["servers"][1];
        assert_eq!(web["connected"], false);
        assert_eq!(web["error"], "connection refused");
        assert_eq!(web["agents"], json!(["any", "pen"]));
        assert_eq!(web["tools"], json!([]));
    }
}
