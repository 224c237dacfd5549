//! The MCP client against real components: the reference server-everything over
//! Streamable HTTP and stdio, a stateless 2026-07-28 server, and the official
//! conformance suite's client scenarios run against a driver built on the same client.

#[path = "support/mcp.rs"]
mod mcp;
#[path = "support/mcp_modern.rs"]
mod mcp_modern;

use agent_mesh::mcp::config::{McpConfig, ServerConfig, TransportConfig};
use agent_mesh::mcp::{McpClient, McpError};
use mcp::{everything_js, node, wait_until, EverythingHttp, WireTap};
use serde_json::json;
use std::future::pending;
use std::time::{Duration, Instant};

const TEST_TIMEOUT: Duration = Duration::from_secs(120);

fn http_server(name: &str, url: &str) -> ServerConfig {
    ServerConfig {
        name: name.into(),
        transport: TransportConfig::Http {
            url: url.into(),
            headers: Vec::new(),
        },
    }
}

fn stdio_server(name: &str, command: &str, args: &[String]) -> ServerConfig {
    ServerConfig {
        name: name.into(),
        transport: TransportConfig::Stdio {
            command: command.into(),
            args: args.to_vec(),
            env: Vec::new(),
        },
    }
}

fn client(servers: Vec<ServerConfig>, timeout: Duration) -> McpClient {
    let http = agent_mesh::providers::client::build(None).expect("http client");
    McpClient::new(
        &McpConfig {
            servers,
            tool_timeout: timeout,
        },
        &http,
    )
}

/// server-everything on stdio behind bash: the pid file names the node process (bash
/// execs it) and `stdin.log` gets every line the client writes (tee).
struct StdioWrapper {
    dir: std::path::PathBuf,
}

impl Drop for StdioWrapper {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl StdioWrapper {
    fn new() -> StdioWrapper {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("mcp-stdio-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        StdioWrapper { dir }
    }

    fn config(&self, name: &str) -> ServerConfig {
        let script = format!(
            "echo $$ > '{pid}'; exec '{node}' '{js}' stdio < <(exec tee -a '{log}')",
            pid = self.pid_file().display(),
            log = self.log_file().display(),
            node = node(),
            js = everything_js(),
        );
        stdio_server(name, "bash", &["-c".to_string(), script])
    }

    fn pid_file(&self) -> std::path::PathBuf {
        self.dir.join("pid")
    }

    fn log_file(&self) -> std::path::PathBuf {
        self.dir.join("stdin.log")
    }

    fn pid(&self) -> Option<String> {
        std::fs::read_to_string(self.pid_file())
            .ok()
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
    }

    fn sent(&self) -> String {
        std::fs::read_to_string(self.log_file()).unwrap_or_default()
    }

    async fn wait_sent(&self, needle: &str) -> String {
        wait_until(Duration::from_secs(30), || {
            let s = self.sent();
            s.contains(needle).then_some(s)
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "the client never wrote {needle:?}; it wrote:\n{}",
                self.sent()
            )
        })
    }
}

/// server-everything's 30 s operation, cut short by `cancel`.
async fn long_call(
    c: &McpClient,
    cancel: impl std::future::Future<Output = ()>,
) -> Result<agent_mesh::mcp::ToolResult, McpError> {
    c.call_tool(
        "everything",
        "trigger-long-running-operation",
        json!({"duration": 30, "steps": 30}),
        cancel,
    )
    .await
}

/// server-everything over Streamable HTTP, a wire tap in front, and a client through it.
fn everything_over_http(tool_timeout: Duration) -> (EverythingHttp, WireTap, McpClient) {
    let server = EverythingHttp::start();
    let tap = WireTap::start(server.port);
    let c = client(vec![http_server("everything", &tap.url())], tool_timeout);
    (server, tap, c)
}

async fn lists_and_calls_echo_and_get_sum(client: &McpClient, name: &str) {
    client.connect_all().await;
    let status = client.server(name).await.expect("configured");
    assert!(status.connected, "{status:?}");
    assert_eq!(status.protocol.as_deref(), Some("2025-11-25"));
    let names: Vec<&str> = status.tools.iter().map(|t| t.name.as_str()).collect();
    for want in ["echo", "get-sum", "trigger-long-running-operation"] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let echo = status.tools.iter().find(|t| t.name == "echo").unwrap();
    assert_eq!(echo.input_schema["properties"]["message"]["type"], "string");

    let r = client
        .call_tool(name, "echo", json!({"message": "hello mesh"}), pending())
        .await
        .expect("echo");
    assert!(!r.is_error);
    assert_eq!(r.text(), "Echo: hello mesh");

    let r = client
        .call_tool(name, "get-sum", json!({"a": 19, "b": 23}), pending())
        .await
        .expect("get-sum");
    assert!(!r.is_error);
    assert!(r.text().contains("42"), "{}", r.text());

    // An image comes back summarized, never as base64.
    let r = client
        .call_tool(name, "get-tiny-image", json!({}), pending())
        .await
        .expect("get-tiny-image");
    assert!(r.text().contains("[image: image/png"), "{}", r.text());
    assert!(r.text().len() < 1000);

    // A tool the server does not have is the server's error, not a panic or a hang.
    let r = client
        .call_tool(name, "no-such-tool", json!({}), pending())
        .await;
    match r {
        Ok(r) => assert!(r.is_error, "{r:?}"),
        Err(McpError::Rpc(e)) => assert!(e.message.contains("no-such-tool"), "{e:?}"),
        Err(other) => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn http_lists_tools_and_calls_echo_and_get_sum() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let (_server, tap, c) = everything_over_http(Duration::from_secs(30));
        lists_and_calls_echo_and_get_sum(&c, "everything").await;
        // The 2026-07-28 probe came first; the legacy server's 400 sent the client on to
        // the 2025-11-25 handshake, then every request carried the session and version.
        let sent = tap.sent();
        let discover = sent.find("\"server/discover\"").expect("probe sent");
        let initialize = sent.find("\"initialize\"").expect("initialize sent");
        assert!(discover < initialize);
        assert!(sent.contains("notifications/initialized"));
        assert!(sent.to_ascii_lowercase().contains("mcp-session-id: "));
        assert!(sent
            .to_ascii_lowercase()
            .contains("mcp-protocol-version: 2025-11-25"));
        c.shutdown().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn stdio_lists_tools_and_calls_echo_and_get_sum() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let c = client(
            vec![stdio_server(
                "everything",
                &node(),
                &[everything_js(), "stdio".into()],
            )],
            Duration::from_secs(30),
        );
        lists_and_calls_echo_and_get_sum(&c, "everything").await;
        c.shutdown().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn a_stdio_server_gets_its_env_and_not_the_whole_environment() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let c = client(
            vec![ServerConfig {
                name: "everything".into(),
                transport: TransportConfig::Stdio {
                    command: node(),
                    args: vec![everything_js(), "stdio".into()],
                    env: vec![(
                        "MESH_TEST_GIVEN".into(),
                        agent_mesh::secret::Secret::new("given-value"),
                    )],
                },
            }],
            Duration::from_secs(30),
        );
        let r = c
            .call_tool("everything", "get-env", json!({}), pending())
            .await
            .expect("get-env");
        let text = r.text();
        assert!(text.contains("given-value"), "{text}");
        assert!(text.contains("\"PATH\""), "{text}");
        // cargo sets this for the test process; the child must not inherit it.
        assert!(std::env::var("CARGO_MANIFEST_DIR").is_ok());
        assert!(!text.contains("CARGO_MANIFEST_DIR"), "{text}");
        c.shutdown().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn a_changed_tool_list_is_listed_again() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let script = mcp::repo().join("tests/mcp/changing-tools-server.mjs");
        let c = client(
            vec![stdio_server(
                "changing",
                &node(),
                &[script.to_string_lossy().into_owned()],
            )],
            Duration::from_secs(30),
        );
        let names = |s: &agent_mesh::mcp::ServerStatus| {
            s.tools.iter().map(|t| t.name.clone()).collect::<Vec<_>>()
        };
        let before = c.server("changing").await.expect("configured");
        assert_eq!(names(&before), ["first"]);
        // Nothing changed: the list is not fetched again.
        assert_eq!(names(&c.server("changing").await.unwrap()), ["first"]);
        let r = c
            .call_tool("changing", "first", json!({}), pending())
            .await
            .expect("call");
        assert_eq!(r.text(), "called first");
        // The notification arrived with the answer; the next look lists again.
        let after = c.server("changing").await.unwrap();
        assert_eq!(names(&after), ["first", "second"]);
        c.shutdown().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn http_long_running_call_cancelled_mid_call_tells_the_server() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let (_server, tap, c) = everything_over_http(Duration::from_secs(60));
        c.connect_all().await;
        let (cancel_tx, cancel_rx) = tokio::sync::oneshot::channel::<()>();
        let call = long_call(&c, async move {
            let _ = cancel_rx.await;
        });
        let cancel_when_running = async {
            tap.wait_for("trigger-long-running-operation\"", Duration::from_secs(30))
                .await;
            let _ = cancel_tx.send(());
            Instant::now()
        };
        let (outcome, cancelled_at) = tokio::join!(call, cancel_when_running);
        assert_eq!(outcome, Err(McpError::Cancelled));
        assert!(
            cancelled_at.elapsed() < Duration::from_secs(1),
            "cancel took {:?}",
            cancelled_at.elapsed()
        );
        let sent = tap
            .wait_for("notifications/cancelled", Duration::from_secs(5))
            .await;
        let call_id = request_id_of(&sent, "tools/call");
        assert!(
            sent.contains(&format!("\"requestId\":{call_id}")),
            "the cancel names the call's id {call_id}:\n{sent}"
        );
        // The session is still good for the next call.
        let r = c
            .call_tool("everything", "echo", json!({"message": "after"}), pending())
            .await
            .expect("echo");
        assert_eq!(r.text(), "Echo: after");
        c.shutdown().await;
    })
    .await
    .expect("test timed out");
}

/// The JSON-RPC id of the first request with `method` in the recorded bytes.
fn request_id_of(sent: &str, method: &str) -> u64 {
    for line in sent.split(['\n', '\r']) {
        let Some(start) = line.find('{') else {
            continue;
        };
        let mut values =
            serde_json::Deserializer::from_str(&line[start..]).into_iter::<serde_json::Value>();
        if let Some(Ok(v)) = values.next() {
            if v["method"] == method {
                return v["id"].as_u64().expect("numeric id");
            }
        }
    }
    panic!("no {method} request in:\n{sent}")
}

#[tokio::test]
async fn stdio_call_cancelled_and_timed_out_sends_notifications_cancelled() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let wrapper = StdioWrapper::new();
        let c = client(vec![wrapper.config("everything")], Duration::from_secs(2));
        c.connect_all().await;
        assert!(c.server("everything").await.unwrap().connected);

        let (cancel_tx, cancel_rx) = tokio::sync::oneshot::channel::<()>();
        let call = long_call(&c, async move {
            let _ = cancel_rx.await;
        });
        let cancel = async {
            wrapper.wait_sent("trigger-long-running-operation").await;
            let _ = cancel_tx.send(());
        };
        let (outcome, ()) = tokio::join!(call, cancel);
        assert_eq!(outcome, Err(McpError::Cancelled));
        let sent = wrapper.wait_sent("notifications/cancelled").await;
        let id = request_id_of(&sent, "tools/call");
        assert!(sent.contains(&format!("\"requestId\":{id}")), "{sent}");

        // The tool timeout (2 s here) cancels the same way.
        let started = Instant::now();
        let outcome = long_call(&c, pending()).await;
        assert_eq!(outcome, Err(McpError::Timeout(Duration::from_secs(2))));
        assert!(started.elapsed() < Duration::from_secs(4));
        let sent = wait_until(Duration::from_secs(5), || {
            let s = wrapper.sent();
            (s.matches("notifications/cancelled").count() == 2).then_some(s)
        })
        .await
        .expect("a second notifications/cancelled");
        assert!(sent.contains("timed out after 2 s"), "{sent}");
        c.shutdown().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn a_dropped_call_future_is_cancelled_on_the_server() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let wrapper = StdioWrapper::new();
        let c = client(vec![wrapper.config("everything")], Duration::from_secs(60));
        c.connect_all().await;
        let call = long_call(&c, pending());
        // The call loses the race and is dropped mid-call.
        tokio::select! {
            _ = call => panic!("the call cannot finish first"),
            _ = wrapper.wait_sent("trigger-long-running-operation") => {}
        }
        let sent = wrapper.wait_sent("notifications/cancelled").await;
        assert!(sent.contains("the call was abandoned"), "{sent}");
        c.shutdown().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn a_stdio_server_killed_mid_call_fails_the_call_and_is_restarted() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let wrapper = StdioWrapper::new();
        let c = client(vec![wrapper.config("everything")], Duration::from_secs(60));
        c.connect_all().await;
        let first_pid = wrapper.pid().expect("pid written");
        let call = long_call(&c, pending());
        let kill = async {
            wrapper.wait_sent("trigger-long-running-operation").await;
            let status = std::process::Command::new("kill")
                .args(["-9", &first_pid])
                .status()
                .expect("kill");
            assert!(status.success());
            Instant::now()
        };
        let (outcome, killed_at) = tokio::join!(call, kill);
        match outcome {
            Err(McpError::Connect(why)) => assert!(why.contains("exited"), "{why}"),
            other => panic!("expected the process's death as the error, got {other:?}"),
        }
        assert!(killed_at.elapsed() < Duration::from_secs(2));
        // The next call starts a new process (after the backoff) and works.
        let r = c
            .call_tool("everything", "echo", json!({"message": "back"}), pending())
            .await
            .expect("echo after restart");
        assert_eq!(r.text(), "Echo: back");
        let second_pid = wrapper.pid().expect("pid");
        assert_ne!(first_pid, second_pid, "a new process");
        c.shutdown().await;
        // Shutdown kills the child.
        let gone = wait_until(Duration::from_secs(5), || {
            (!std::path::Path::new(&format!("/proc/{second_pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{second_pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z ")))
            .then_some(())
        })
        .await;
        assert!(
            gone.is_some(),
            "the server process {second_pid} still runs after shutdown"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn an_http_session_the_server_forgot_is_initialized_again() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let (server, tap, c) = everything_over_http(Duration::from_secs(30));
        c.connect_all().await;
        let sent = tap.sent();
        let lower = sent.to_ascii_lowercase();
        let at = lower
            .find("mcp-session-id: ")
            .expect("a session id was sent")
            + "mcp-session-id: ".len();
        let session: String = sent[at..]
            .chars()
            .take_while(|c| !c.is_whitespace())
            .collect();
        // End the session behind the client's back, as a server restart or expiry would.
        let http = agent_mesh::providers::client::build(None).unwrap();
        let req = hyper::Request::delete(server.url())
            .header("mcp-session-id", &session)
            .header("mcp-protocol-version", "2025-11-25")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        let resp = http.request(req).await.expect("delete");
        assert!(resp.status().is_success(), "{}", resp.status());

        let r = c
            .call_tool("everything", "echo", json!({"message": "again"}), pending())
            .await
            .expect("echo");
        assert_eq!(r.text(), "Echo: again");
        assert_eq!(
            tap.sent().matches("\"method\":\"initialize\"").count(),
            2,
            "re-initialized once"
        );
        c.shutdown().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn servers_down_at_startup_say_why_and_the_others_work() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let closed_port = mcp::free_port();
        let c = client(
            vec![
                http_server("down", &format!("http://127.0.0.1:{closed_port}/mcp")),
                stdio_server("missing", "/nonexistent/mcp-server", &[]),
                stdio_server("everything", &node(), &[everything_js(), "stdio".into()]),
            ],
            Duration::from_secs(30),
        );
        c.connect_all().await;
        let all = c.servers().await;
        assert_eq!(all.len(), 3);
        assert!(!all[0].connected);
        let why = all[0].error.as_deref().unwrap();
        assert!(why.contains("refused"), "{why}");
        assert!(!all[1].connected);
        let why = all[1].error.as_deref().unwrap();
        assert!(
            why.contains("cannot start \"/nonexistent/mcp-server\""),
            "{why}"
        );
        assert!(all[2].connected && !all[2].tools.is_empty());
        let failed = c.call_tool("down", "echo", json!({}), pending()).await;
        assert!(matches!(failed, Err(McpError::Connect(_))), "{failed:?}");
        assert!(matches!(
            c.call_tool("nope", "echo", json!({}), pending()).await,
            Err(McpError::UnknownServer(_))
        ));
        c.shutdown().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn a_2026_07_28_server_is_spoken_to_statelessly() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let server = mcp_modern::ModernServer::start().await;
        let c = client(
            vec![http_server("modern", &server.url())],
            Duration::from_secs(10),
        );
        let status = c.server("modern").await.expect("configured");
        assert!(status.connected, "{status:?}");
        assert_eq!(status.protocol.as_deref(), Some("2026-07-28"));
        let names: Vec<&str> = status.tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["echo", "add"], "both pages listed");
        let r = c
            .call_tool(
                "modern",
                "echo",
                json!({"message": "hi", "region": "us-west1"}),
                pending(),
            )
            .await
            .expect("call");
        assert_eq!(r.text(), "modern echo: hi");
        assert_eq!(
            server.methods(),
            ["server/discover", "tools/list", "tools/list", "tools/call"]
        );
        let seen = server.seen.lock().unwrap().clone();
        for s in &seen {
            assert_eq!(
                s.header("mcp-session-id"),
                None,
                "no sessions in 2026-07-28"
            );
        }
        assert_eq!(seen[3].header("mcp-name"), Some("echo"));
        assert_eq!(seen[3].header("mcp-param-region"), Some("us-west1"));
        c.shutdown().await;
    })
    .await
    .expect("test timed out");
}

/// The official conformance suite's client scenarios against the driver example.
#[test]
fn conformance_client_scenarios_pass() {
    let driver = conformance_driver();
    for scenario in ["initialize", "tools_call", "sse-retry"] {
        let out = std::process::Command::new(node())
            .arg(mcp::conformance_js())
            .args([
                "client",
                "--command",
                &driver,
                "--scenario",
                scenario,
                "--timeout",
                "30000",
            ])
            .output()
            .expect("run the conformance suite");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success()
                && text.contains("OVERALL: PASSED")
                && text.contains(" 0 failed, 0 warnings"),
            "scenario {scenario}:\n{text}"
        );
    }
}

/// The example binary `mcp_conformance_client` (built by `cargo test --all-targets`;
/// built here when a narrower `cargo test` did not).
fn conformance_driver() -> String {
    let bin = std::path::PathBuf::from(env!("CARGO_BIN_EXE_agent-mesh"));
    let path = bin
        .parent()
        .expect("target dir")
        .join("examples/mcp_conformance_client");
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = std::process::Command::new(cargo)
            .args(["build", "--example", "mcp_conformance_client"])
            .current_dir(mcp::repo())
            .status()
            .expect("cargo build");
        assert!(status.success());
    }
    path.to_string_lossy().into_owned()
}

/// `agent-mesh mcp …` with `MESH_MCP_CONFIG` holding `config`; (exit code, stdout, stderr).
fn mesh_mcp(
    config: Option<&str>,
    args: &[&str],
    extra_env: &[(&str, &str)],
) -> (i32, String, String) {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let file = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("mcp-cli-{}-{n}.json", std::process::id()));
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_agent-mesh"));
    cmd.arg("mcp").args(args);
    cmd.env_remove("MESH_MCP_CONFIG");
    if let Some(text) = config {
        std::fs::write(&file, text).expect("write config");
        cmd.env("MESH_MCP_CONFIG", &file);
    }
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run agent-mesh");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_mcp_cli_lists_tools_calls_one_and_exits_by_outcome() {
    let config = json!({"mcpServers": {"everything": {"command": node(), "args": [everything_js(), "stdio"]}}}).to_string();
    let (code, out, err) = mesh_mcp(Some(&config), &["tools"], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("everything (stdio, protocol 2025-11-25): connected, "),
        "{out}"
    );
    assert!(out.contains("  everything/get-sum - Returns the sum of two numbers\n      arguments: a (number, required), b (number, required)\n"), "{out}");

    let (code, out, err) = mesh_mcp(
        Some(&config),
        &["call", "everything", "get-sum", r#"{"a": 1, "b": 2}"#],
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("The sum of 1 and 2 is 3"), "{out}");

    // A tool error exits 1; bad usage exits 2 with one line saying why.
    let (code, _, err) = mesh_mcp(Some(&config), &["call", "everything", "no-such-tool"], &[]);
    assert_eq!(code, 1, "{err}");
    let (code, _, err) = mesh_mcp(
        Some(&config),
        &["call", "everything", "echo", "{not json"],
        &[],
    );
    assert_eq!(code, 2);
    assert!(err.contains("not valid JSON"), "{err}");
    let (code, _, err) = mesh_mcp(Some(&config), &["call", "nope", "echo"], &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no MCP server named \"nope\" (configured: everything)"),
        "{err}"
    );
    let (code, _, err) = mesh_mcp(None, &["tools"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("MESH_MCP_CONFIG is not set"), "{err}");
}

#[test]
fn the_mcp_cli_names_the_bad_field_and_never_prints_secrets() {
    let (code, out, err) = mesh_mcp(
        Some(r#"{"mcpServers": {"old": {"type": "sse", "url": "http://127.0.0.1:1/sse"}}}"#),
        &["tools"],
        &[],
    );
    assert_eq!(code, 2, "{out}{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("MESH_MCP_CONFIG: server \"old\": type:"),
        "{err}"
    );

    let port = mcp::free_port();
    let config = json!({"mcpServers": {"down": {"url": format!("http://127.0.0.1:{port}/mcp"), "headers": {"Authorization": "Bearer ${MESH_TEST_TOKEN}"}}}}).to_string();
    let (code, out, err) = mesh_mcp(
        Some(&config),
        &["tools"],
        &[
            ("MESH_TEST_TOKEN", "tok-very-secret"),
            ("MESH_LOG", "debug"),
        ],
    );
    assert_eq!(code, 1, "a server that is down: {out}{err}");
    assert!(
        out.contains("down (http): not connected: cannot connect:"),
        "{out}"
    );
    assert!(
        !out.contains("tok-very-secret") && !err.contains("tok-very-secret"),
        "{out}{err}"
    );
}
