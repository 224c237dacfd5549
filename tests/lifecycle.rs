//! Process lifecycle: configuration errors exit 2, SIGTERM drains running pipelines,
//! and the `run` subcommand streams a pipeline in the terminal.

mod support;

use std::time::{Duration, Instant};
use support::{command, text_of, Server};

#[test]
fn bad_configuration_exits_2_naming_the_variable() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("MESH_RUN_TTL_SECS", "soon")], "MESH_RUN_TTL_SECS"),
        (&[("MESH_PROVIDER", "anthropic")], "MESH_PROVIDER"),
        (&[("MESH_ADDR", "0.0.0.0:0")], "MESH_USER"),
        (
            &[("MESH_AGENTS", "/nonexistent/roster.json")],
            "MESH_AGENTS",
        ),
        (&[("MESH_LOG", "chatty")], "MESH_LOG"),
    ];
    for (env, var) in cases {
        let out = command(env).output().expect("run");
        assert_eq!(out.status.code(), Some(2), "{env:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(err.contains(var), "{err}");
    }
    let out = command(&[]).arg("launch").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("launch"));
}

#[test]
fn the_listening_line_is_logged_even_at_warn_level() {
    // Server::start waits for the line and fails if it never comes.
    let server = support::Server::start(&[("MESH_LOG", "warn")]);
    assert_eq!(server.get("/health").status, 200);
    assert!(
        !server.logs().contains("provider offline"),
        "other info lines stay quiet"
    );
}

#[test]
fn an_invalid_custom_roster_names_the_json_path() {
    let dir = std::env::temp_dir().join(format!("mesh-roster-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("roster.json");
    std::fs::write(&path, r#"{"agents":[{"name":"boss","kind":"planner","model":"m"},{"name":"Bad Name","kind":"specialist","model":"m"},{"name":"pen","kind":"writer","model":"m"}]}"#).unwrap();
    let out = command(&[("MESH_AGENTS", path.to_str().unwrap())])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("$.agents[1].name"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_custom_roster_drives_the_pipeline() {
    let dir = std::env::temp_dir().join(format!("mesh-roster-ok-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("roster.json");
    std::fs::write(&path, r##"{"agents":[
        {"name":"boss","title":"Boss","emoji":"🎩","kind":"planner","model":"x/planner","max_tokens":300,"color":"#aa5500"},
        {"name":"poet","title":"Poet","emoji":"🪶","kind":"specialist","model":"x/poet","max_tokens":200,"color":"#335577"},
        {"name":"pen","title":"Pen","emoji":"🖋","kind":"writer","model":"x/pen","max_tokens":900,"color":"#553311"}]}"##).unwrap();
    let server = Server::start(&[("MESH_AGENTS", path.to_str().unwrap())]);
    let agents = server.get("/api/agents").json();
    assert_eq!(agents.as_array().unwrap().len(), 3);
    let id = server.start_run(r#"{"task":"a haiku"}"#);
    let events = server.stream(&id, &[]).collect();
    let plan = events.iter().find(|e| e.event == "plan").unwrap();
    assert_eq!(plan.data["agents"], serde_json::json!(["poet"]));
    assert!(!text_of(&events, "poet").is_empty());
    assert_eq!(events.last().unwrap().data["status"], "completed");
    let snap = server.get(&format!("/api/runs/{id}")).json();
    assert_eq!(snap["config"]["agents"]["pen"]["max_tokens"], 900);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sigterm_lets_running_pipelines_finish_then_exits_0() {
    let mut server = Server::start(&[
        ("MESH_OFFLINE_DELAY_MS", "3"),
        ("MESH_SHUTDOWN_GRACE_SECS", "20"),
    ]);
    let id = server.start_run(r#"{"task":"finish me during shutdown"}"#);
    let mut s = server.stream(&id, &[]);
    s.next_event().unwrap();
    server.signal("TERM");
    // New runs are refused while draining...
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = server.post_json("/api/run", r#"{"task":"too late"}"#);
        if r.status == 503 {
            assert_eq!(r.error_code(), "shutting_down");
            break;
        }
        assert!(Instant::now() < deadline, "never refused new runs");
    }
    // ...but the running one completes and its stream ends with done.
    let events = s.collect();
    assert_eq!(events.last().unwrap().data["status"], "completed");
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0));
}

#[test]
fn sigterm_cancels_what_outlives_the_grace() {
    let mut server = Server::start(&[
        ("MESH_OFFLINE_DELAY_MS", "200"),
        ("MESH_SHUTDOWN_GRACE_SECS", "1"),
    ]);
    let id = server.start_run(r#"{"task":"too slow to finish"}"#);
    let mut s = server.stream(&id, &[]);
    s.next_event().unwrap();
    let started = Instant::now();
    server.signal("TERM");
    let events = s.collect();
    let done = events.last().unwrap();
    assert_eq!(done.event, "done");
    assert_eq!(done.data["status"], "cancelled");
    assert!(events.iter().any(|e| e.data["detail"]
        .as_str()
        .is_some_and(|d| d.contains("server shutting down"))));
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0));
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn the_run_subcommand_streams_the_deliverable_to_stdout() {
    let out = command(&[])
        .args(["run", "Write a Python script that renames files"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.starts_with("# Write a Python script"), "{stdout}");
    assert!(
        stderr.contains("== plan (orchestrator): researcher, coder =="),
        "{stderr}"
    );
    assert!(stderr.contains("== done: completed"), "{stderr}");

    let out = command(&[])
        .args(["run", "--json", "Explain why"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.first().unwrap()["event"], "status");
    assert_eq!(lines.last().unwrap()["event"], "done");
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["id"], i as u64 + 1);
    }

    let out = command(&[]).arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("agent-mesh {}", env!("CARGO_PKG_VERSION"))
    );
    let out = command(&[]).arg("--help").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("agent-mesh run"));
}

#[test]
fn the_run_subcommand_prints_agents_running_at_once_as_whole_blocks() {
    let out = command(&[
        ("MESH_SCHEDULE", "parallel"),
        ("MESH_OFFLINE_DELAY_MS", "1"),
    ])
    .args(["run", "Write a Python script and compare two ways to do it"])
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("== plan (orchestrator): researcher, coder, analyst =="),
        "{stderr}"
    );
    // The offline plan puts the coder and the analyst after the researcher, so they
    // run at once; each still prints as one block with nothing of the other inside.
    for (who, title, other) in [
        ("coder", "Coder", "Analyst"),
        ("analyst", "Analyst", "Coder"),
    ] {
        let header = format!("\n== {who} (");
        assert_eq!(stderr.matches(&header).count(), 1, "{stderr}");
        let start = stderr.find(&header).unwrap() + 1;
        let block = match stderr[start..].find("\n== ") {
            Some(end) => &stderr[start..start + end],
            None => &stderr[start..],
        };
        assert!(block.contains(&format!("### {title} notes")), "{block}");
        assert!(!block.contains(&format!("### {other} notes")), "{block}");
        assert!(block.contains("from the Researcher"), "{block}");
        assert!(!block.contains(&format!("from the {other}")), "{block}");
    }
}
