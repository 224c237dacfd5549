//! Which agent gets which tools, end to end over real sockets: the real reference MCP
//! server (server-everything over Streamable HTTP) and a server that is down, a roster
//! with per-agent `tools`, a mock OpenAI-compatible provider recording the `tools` each
//! agent is offered, the request's `tools` narrowing further, `GET /api/tools`, and the
//! startup and request errors that name the field at fault.

mod support;

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;
use support::mcp::{free_port, EverythingHttp};
use support::mock::{openai_stream, MockProvider, Reply};
use support::{exit_of, Server};

const RUN_TIMEOUT: Duration = Duration::from_secs(60);
const KEY: &str = "mesh-tools-test-key-0123456789abcdef";

/// A temp dir with `mcp.json` and `agents.json`, removed on drop.
struct Files {
    dir: PathBuf,
}

impl Files {
    fn new(mcp_json: &str, agents_json: &str) -> Files {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("tool-grants-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(dir.join("mcp.json"), mcp_json).expect("mcp.json");
        std::fs::write(dir.join("agents.json"), agents_json).expect("agents.json");
        Files { dir }
    }

    fn mcp(&self) -> String {
        self.dir.join("mcp.json").display().to_string()
    }

    fn agents(&self) -> String {
        self.dir.join("agents.json").display().to_string()
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `everything` (up) and `down` (an HTTP URL on a port nothing listens on).
fn mcp_json(everything: &EverythingHttp) -> String {
    format!(
        r#"{{"mcpServers": {{
            "everything": {{"url": "{}"}},
            "down": {{"url": "http://127.0.0.1:{}/mcp"}}
        }}}}"#,
        everything.url(),
        free_port()
    )
}

/// The researcher may use two tools of `everything` (and a third it does not have) and
/// all of `down`; the coder has
/// the default (every tool); the analyst none; the orchestrator and writer the default
/// (none).
const ROSTER: &str = r#"{"agents": [
    {"name": "orchestrator", "kind": "planner", "model": "m/plan"},
    {"name": "researcher", "kind": "specialist", "model": "m/r",
     "tools": ["everything/echo", "everything/get-sum", "everything/no-such-tool", "down/*"]},
    {"name": "coder", "kind": "specialist", "model": "m/c"},
    {"name": "analyst", "kind": "specialist", "model": "m/a", "tools": []},
    {"name": "writer", "kind": "writer", "model": "m/w"}
]}"#;

/// A provider whose orchestrator picks the three specialists and whose agents answer
/// in plain text (no tool calls): what matters is what each is offered.
fn provider() -> MockProvider {
    MockProvider::start(|r, _| {
        let text = match r.agent() {
            "orchestrator" => {
                r#"{"agents":["researcher","coder","analyst"],"reasoning":"all","tasks":{}}"#
            }
            _ => "noted",
        };
        Reply::sse(&openai_stream(&[text], Some((3, 1, None))))
    })
}

fn start(mock: &MockProvider, files: &Files) -> Server {
    let base = mock.url("/v1");
    Server::start(&[
        ("OPENROUTER_API_KEY", "sk-or-tools-test-0123456789"),
        ("OPENROUTER_BASE_URL", base.as_str()),
        ("MESH_MCP_CONFIG", files.mcp().as_str()),
        ("MESH_AGENTS", files.agents().as_str()),
        ("MESH_API_KEYS", KEY),
    ])
}

fn auth() -> (&'static str, String) {
    ("Authorization", format!("Bearer {KEY}"))
}

fn post(server: &Server, body: &str) -> support::Response {
    let (k, v) = auth();
    server.request(
        "POST",
        "/api/run",
        &[("Content-Type", "application/json"), (k, v.as_str())],
        body.as_bytes(),
    )
}

fn get(server: &Server, path: &str) -> support::Response {
    let (k, v) = auth();
    server.request("GET", path, &[(k, v.as_str())], b"")
}

/// Runs `body` to the end and returns, per agent, the tool names its requests offered
/// (`None`: a request without `tools`), one entry per model call.
fn offered_per_agent(
    server: &Server,
    mock: &MockProvider,
    body: &str,
) -> Vec<(String, Option<BTreeSet<String>>)> {
    let before = mock.chat_requests().len();
    let r = post(server, body);
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().expect("id").to_string();
    let deadline = std::time::Instant::now() + RUN_TIMEOUT;
    let snapshot = loop {
        let v = get(server, &format!("/api/runs/{id}")).json();
        if v["status"] != "running" {
            break v;
        }
        assert!(std::time::Instant::now() < deadline, "still running: {v}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(snapshot["status"], "completed", "{snapshot}");
    mock.chat_requests()[before..]
        .iter()
        .map(|r| {
            let names = r.json()["tools"].as_array().map(|tools| {
                tools
                    .iter()
                    .map(|t| t["function"]["name"].as_str().expect("name").to_string())
                    .collect()
            });
            (r.agent().to_string(), names)
        })
        .collect()
}

fn offered(list: &[(String, Option<BTreeSet<String>>)], agent: &str) -> Option<BTreeSet<String>> {
    let calls: Vec<_> = list.iter().filter(|(a, _)| a == agent).collect();
    assert_eq!(calls.len(), 1, "{agent} is called once: {list:?}");
    calls[0].1.clone()
}

fn set(names: &[&str]) -> Option<BTreeSet<String>> {
    Some(names.iter().map(|s| s.to_string()).collect())
}

#[test]
fn roster_and_request_tools_decide_what_each_agent_is_offered() {
    let everything = EverythingHttp::start();
    let files = Files::new(&mcp_json(&everything), ROSTER);
    let mock = provider();
    let server = start(&mock, &files);

    // The roster alone: the researcher its two tools (the down server adds none), the
    // coder every tool of the server that is up, nobody else any tool.
    let calls = offered_per_agent(&server, &mock, r#"{"task":"t"}"#);
    assert_eq!(
        offered(&calls, "researcher"),
        set(&["everything__echo", "everything__get-sum"])
    );
    let coder = offered(&calls, "coder").expect("the coder is offered tools");
    assert!(
        coder.len() > 2
            && coder.contains("everything__echo")
            && coder.contains("everything__get-sum"),
        "{coder:?}"
    );
    assert!(
        coder.iter().all(|n| n.starts_with("everything__")),
        "{coder:?}"
    );
    for agent in ["orchestrator", "analyst", "writer"] {
        assert_eq!(offered(&calls, agent), None, "{agent}");
    }

    // The request narrows every agent at once...
    let calls = offered_per_agent(
        &server,
        &mock,
        r#"{"task":"t","tools":["everything/echo"]}"#,
    );
    assert_eq!(offered(&calls, "researcher"), set(&["everything__echo"]));
    assert_eq!(offered(&calls, "coder"), set(&["everything__echo"]));
    assert_eq!(offered(&calls, "analyst"), None);

    // ...or one agent, the others keeping the roster's grant...
    let calls = offered_per_agent(
        &server,
        &mock,
        r#"{"task":"t","tools":{"coder":["everything/get-sum"]}}"#,
    );
    assert_eq!(offered(&calls, "coder"), set(&["everything__get-sum"]));
    assert_eq!(
        offered(&calls, "researcher"),
        set(&["everything__echo", "everything__get-sum"])
    );

    // ...and `[]` is a run without tools.
    let calls = offered_per_agent(&server, &mock, r#"{"task":"t","tools":[]}"#);
    assert!(calls.iter().all(|(_, tools)| tools.is_none()), "{calls:?}");

    // The frozen grants are in the run's snapshot config.
    let id = post(&server, r#"{"task":"t","tools":["everything/*"]}"#).json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    let snap = get(&server, &format!("/api/runs/{id}")).json();
    let agents = &snap["config"]["agents"];
    assert_eq!(
        agents["researcher"]["tools"],
        serde_json::json!([
            "everything/echo",
            "everything/get-sum",
            "everything/no-such-tool"
        ]),
        "{snap}"
    );
    assert_eq!(
        agents["coder"]["tools"],
        serde_json::json!(["everything/*"])
    );
    assert_eq!(agents["writer"]["tools"], serde_json::json!([]));
}

#[test]
fn get_api_tools_lists_servers_up_and_down_their_tools_and_agents() {
    let everything = EverythingHttp::start();
    let files = Files::new(&mcp_json(&everything), ROSTER);
    let mock = provider();
    let server = start(&mock, &files);

    // Behind the same authentication as every other /api route.
    let r = server.get("/api/tools");
    assert_eq!(r.status, 401, "{}", r.text());

    let r = get(&server, "/api/tools");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = r.json();
    let servers = body["servers"].as_array().expect("servers");
    let names: Vec<&str> = servers
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["everything", "down"], "{body}");

    let up = &servers[0];
    assert_eq!(up["connected"], true, "{up}");
    assert_eq!(up["error"], Value::Null);
    assert_eq!(up["transport"], "http");
    assert_eq!(up["agents"], serde_json::json!(["researcher", "coder"]));
    let tools = up["tools"].as_array().expect("tools");
    let tool = |name: &str| {
        tools
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {up}"))
    };
    let echo = tool("echo");
    assert!(!echo["description"].as_str().unwrap().is_empty());
    assert_eq!(echo["input_schema"]["type"], "object");
    assert!(
        echo["input_schema"]["properties"]["message"].is_object(),
        "{echo}"
    );
    assert_eq!(echo["agents"], serde_json::json!(["researcher", "coder"]));
    assert_eq!(
        tool("get-sum")["agents"],
        serde_json::json!(["researcher", "coder"])
    );
    let only_coder = tools
        .iter()
        .find(|t| t["name"] != "echo" && t["name"] != "get-sum")
        .expect("a third tool");
    assert_eq!(only_coder["agents"], serde_json::json!(["coder"]));

    let down = &servers[1];
    assert_eq!(down["connected"], false, "{down}");
    assert!(
        down["error"]
            .as_str()
            .expect("an error")
            .contains("connect"),
        "{down}"
    );
    assert_eq!(down["tools"], serde_json::json!([]));
    assert_eq!(down["agents"], serde_json::json!(["researcher", "coder"]));

    // The roster says each agent's grant too.
    let agents = get(&server, "/api/agents").json();
    let grant = |name: &str| {
        agents
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .expect("agent")["tools"]
            .clone()
    };
    assert_eq!(
        grant("researcher"),
        serde_json::json!([
            "everything/echo",
            "everything/get-sum",
            "everything/no-such-tool",
            "down/*"
        ])
    );

    // Startup went on; the log says why `down` is missing and which grant names a
    // tool its server lacks.
    let deadline = std::time::Instant::now() + RUN_TIMEOUT;
    while !server.logs().contains("has no tool \"no-such-tool\"") {
        assert!(std::time::Instant::now() < deadline, "{}", server.logs());
        std::thread::sleep(Duration::from_millis(20));
    }
    let logs = server.logs();
    assert!(logs.contains("mcp down:"), "{logs}");
    assert!(
        logs.contains("agent \"researcher\": tools: \"everything/no-such-tool\""),
        "{logs}"
    );
    assert_eq!(
        grant("coder"),
        serde_json::json!(["everything/*", "down/*"])
    );
    assert_eq!(grant("writer"), serde_json::json!([]));
}

#[test]
fn a_bad_request_entry_is_a_400_naming_the_field() {
    let everything = EverythingHttp::start();
    let files = Files::new(&mcp_json(&everything), ROSTER);
    let mock = provider();
    let server = start(&mock, &files);
    let cases = [
        (
            r#"{"task":"t","tools":["everything/echo","everything"]}"#,
            "tools[1]",
        ),
        (r#"{"task":"t","tools":["nowhere/*"]}"#, "tools[0]"),
        (
            r#"{"task":"t","tools":{"analyst":["everything/echo"]}}"#,
            "tools.analyst[0]",
        ),
        (r#"{"task":"t","tools":{"poet":[]}}"#, "tools.poet"),
        (r#"{"task":"t","tools":"everything/*"}"#, "tools"),
    ];
    for (body, field) in cases {
        let r = post(&server, body);
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        let v = r.json();
        assert_eq!(v["error"]["code"], "bad_request", "{v}");
        assert_eq!(v["error"]["field"], field, "{body}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(field),
            "{v}"
        );
    }
    assert!(mock.chat_requests().is_empty(), "no run started");
}

/// Starts the binary with `mcp` and `roster`, which must stop startup (exit 2) with one
/// line; returns that line.
fn refused_startup(mcp: &str, roster: &str) -> String {
    let files = Files::new(mcp, roster);
    let (code, stderr) = exit_of(&[
        ("MESH_MCP_CONFIG", files.mcp().as_str()),
        ("MESH_AGENTS", files.agents().as_str()),
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("MESH_AGENTS"), "{stderr}");
    lines[0].to_string()
}

#[test]
fn a_bad_roster_entry_stops_startup_naming_the_agent_and_the_field() {
    // No server needs to run: the configuration is refused before anything connects.
    let port = free_port();
    let mcp = format!(
        r#"{{"mcpServers": {{"everything": {{"url": "http://127.0.0.1:{port}/mcp"}},
            "down": {{"url": "http://127.0.0.1:{port}/mcp"}}}}}}"#
    );
    let line = refused_startup(
        &mcp,
        &ROSTER.replace(r#""tools": []"#, r#""tools": ["everything"]"#),
    );
    assert!(
        line.contains("$.agents[3].tools[0]") && line.contains("agent \"analyst\""),
        "{line}"
    );
    let line = refused_startup(
        &mcp,
        &ROSTER.replace(r#""tools": []"#, r#""tools": ["evrything/*"]"#),
    );
    assert!(
        line.contains("agent \"analyst\": tools[0]") && line.contains("evrything"),
        "{line}"
    );
}

#[test]
fn frozen_grants_cross_instances_on_a_shared_store() {
    // Runs live in Redis: the instance that did not start the run reads the grants
    // frozen in its stored config. The one tool server is down: the run goes on.
    let mcp = format!(
        r#"{{"mcpServers": {{"search": {{"url": "http://127.0.0.1:{}/mcp"}}}}}}"#,
        free_port()
    );
    let files = Files::new(&mcp, ROSTER);
    let mcp_path = files.mcp();
    let instances = support::instances::Instances::redis(&[("MESH_MCP_CONFIG", mcp_path.as_str())]);
    let id = instances
        .origin
        .start_run(r#"{"task":"t","tools":{"coder":[]},"detach":true}"#);
    let snap = instances.viewer().wait_finished(&id, RUN_TIMEOUT);
    assert_eq!(snap["status"], "completed", "{snap}");
    let agents = &snap["config"]["agents"];
    assert_eq!(
        agents["researcher"]["tools"],
        serde_json::json!(["search/*"]),
        "{snap}"
    );
    assert_eq!(agents["analyst"]["tools"], serde_json::json!(["search/*"]));
    assert_eq!(agents["coder"]["tools"], serde_json::json!([]));
    assert_eq!(agents["orchestrator"]["tools"], serde_json::json!([]));
    assert_eq!(agents["writer"]["tools"], serde_json::json!([]));
}
