//! The deployment files agree with the server: health check on /health everywhere,
//! secrets never in the files, port 8080 inside the image, an empty final image with
//! the binary in it, stop timeouts longer than the shutdown grace, and the edge that
//! names the client.

use std::path::Path;

/// MESH_SHUTDOWN_GRACE_SECS's default (SPEC §2): platforms must wait longer than this
/// between SIGTERM and SIGKILL.
const SHUTDOWN_GRACE_SECS: u64 = 25;
const PORT: u16 = 8080;
const SECRETS: [&str; 6] = [
    "MESH_USER",
    "MESH_PASS",
    "OPENROUTER_API_KEY",
    "ANTHROPIC_API_KEY",
    "OPENAI_API_KEY",
    "NOUS_API_KEY",
];

fn read(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `35`, `"35s"`, `"1m"` → seconds.
fn seconds(v: &toml::Value) -> u64 {
    match v {
        toml::Value::Integer(n) => u64::try_from(*n).expect("non-negative"),
        toml::Value::String(s) => {
            let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
            let n: u64 = n.parse().unwrap_or_else(|_| panic!("duration {s:?}"));
            match unit {
                "" | "s" => n,
                "m" => n * 60,
                _ => panic!("unexpected duration unit in {s:?}"),
            }
        }
        other => panic!("not a duration: {other:?}"),
    }
}

#[test]
fn render_yaml_checks_health_and_keeps_secrets_out() {
    let doc: serde_norway::Value = serde_norway::from_str(&read("render.yaml")).unwrap();
    let services = doc["services"].as_sequence().expect("services list");
    let web: Vec<_> = services
        .iter()
        .filter(|s| s["type"].as_str() == Some("web"))
        .collect();
    assert_eq!(web.len(), 1, "exactly one web service");
    let web = web[0];
    assert_eq!(web["healthCheckPath"].as_str(), Some("/health"));
    assert_eq!(web["runtime"].as_str(), Some("docker"));
    let dockerfile = web["dockerfilePath"].as_str().expect("dockerfilePath");
    assert!(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(dockerfile)
            .is_file(),
        "{dockerfile} does not exist"
    );
    // In-memory runs: more than one instance breaks streams (README, "What state is per instance").
    assert_eq!(web["numInstances"].as_u64(), Some(1));
    let stop = web["maxShutdownDelaySeconds"]
        .as_u64()
        .expect("maxShutdownDelaySeconds");
    assert!(
        stop > SHUTDOWN_GRACE_SECS && stop <= 300,
        "Render waits {stop}s"
    );

    let vars = web["envVars"].as_sequence().expect("envVars");
    for secret in SECRETS {
        let var = vars
            .iter()
            .find(|v| v["key"].as_str() == Some(secret))
            .unwrap_or_else(|| panic!("{secret} missing from render.yaml"));
        assert_eq!(
            var["sync"].as_bool(),
            Some(false),
            "{secret} must be sync: false"
        );
        assert!(
            var.get("value").is_none(),
            "{secret} must not have a value in the file"
        );
    }
    for var in vars {
        let key = var["key"].as_str().expect("key");
        assert!(
            !(key.ends_with("_KEY") || key.ends_with("_PASS") || key.ends_with("_TOKEN"))
                || var["sync"].as_bool() == Some(false),
            "{key} looks secret but is not sync: false"
        );
        // PORT is Render's to set.
        assert_ne!(key, "PORT");
    }
}

#[test]
fn fly_toml_checks_health_on_the_image_port_and_outwaits_the_grace() {
    let doc: toml::Table = read("fly.toml").parse().unwrap();
    assert!(doc["app"].as_str().is_some_and(|a| !a.is_empty()));
    assert_eq!(doc["build"]["dockerfile"].as_str(), Some("Dockerfile"));
    assert_eq!(doc["kill_signal"].as_str(), Some("SIGTERM"));
    let kill = seconds(&doc["kill_timeout"]);
    assert!(
        kill > SHUTDOWN_GRACE_SECS,
        "kill_timeout {kill}s must exceed the {SHUTDOWN_GRACE_SECS}s shutdown grace"
    );

    let service = doc["http_service"].as_table().expect("[http_service]");
    assert_eq!(service["internal_port"].as_integer(), Some(i64::from(PORT)));
    assert_eq!(service["force_https"].as_bool(), Some(true));
    assert!(service.contains_key("auto_stop_machines"));
    assert_eq!(service["auto_start_machines"].as_bool(), Some(true));
    let checks = service["checks"]
        .as_array()
        .expect("[[http_service.checks]]");
    assert!(!checks.is_empty());
    for check in checks {
        assert_eq!(check["path"].as_str(), Some("/health"));
        assert_eq!(
            check["method"].as_str().map(str::to_uppercase).as_deref(),
            Some("GET")
        );
        assert!(seconds(&check["grace_period"]) > 0);
    }

    let env = doc["env"].as_table().expect("[env]");
    if let Some(port) = env.get("PORT") {
        assert_eq!(port.as_str(), Some("8080"), "PORT must match internal_port");
    }
    if let Some(grace) = env.get("MESH_SHUTDOWN_GRACE_SECS") {
        let grace: u64 = grace.as_str().expect("a string").parse().unwrap();
        assert!(
            kill > grace,
            "kill_timeout must exceed MESH_SHUTDOWN_GRACE_SECS"
        );
    }
    for secret in SECRETS {
        assert!(
            !env.contains_key(secret),
            "{secret} belongs in `fly secrets`"
        );
    }
}

/// Sign-in throttling is per client: behind an edge, the server must be told which
/// header the edge names the client in, or every visitor is the edge's address.
#[test]
fn deploy_files_name_the_edge_that_reports_the_client() {
    use agent_mesh::http::client_addr::TrustProxy;
    let fly: toml::Table = read("fly.toml").parse().unwrap();
    let fly_value = fly["env"]["MESH_TRUST_PROXY"]
        .as_str()
        .expect("fly.toml sets MESH_TRUST_PROXY");
    assert_eq!(TrustProxy::parse(Some(fly_value)), Ok(TrustProxy::Fly));

    let render: serde_norway::Value = serde_norway::from_str(&read("render.yaml")).unwrap();
    let vars = render["services"][0]["envVars"]
        .as_sequence()
        .expect("envVars");
    let render_value = vars
        .iter()
        .find(|v| v["key"].as_str() == Some("MESH_TRUST_PROXY"))
        .and_then(|v| v["value"].as_str())
        .expect("render.yaml sets MESH_TRUST_PROXY");
    // Cloudflare, then Render's proxy, each append to X-Forwarded-For.
    assert_eq!(
        TrustProxy::parse(Some(render_value)),
        Ok(TrustProxy::ForwardedHops(2))
    );
}

/// Dockerfile instructions of the final stage: `(INSTRUCTION, arguments)`, with line
/// continuations joined and comments dropped.
fn stages(dockerfile: &str) -> Vec<Vec<(String, String)>> {
    let mut joined = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                joined.push(std::mem::take(&mut current));
            }
        }
    }
    let mut stages: Vec<Vec<(String, String)>> = Vec::new();
    for line in joined {
        let (op, args) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
        let op = op.to_uppercase();
        if op == "FROM" {
            stages.push(Vec::new());
        }
        if let Some(stage) = stages.last_mut() {
            stage.push((op, args.trim().to_string()));
        }
    }
    stages
}

#[test]
fn dockerfile_ships_the_static_binary_in_an_empty_image() {
    let dockerfile = read("Dockerfile");
    let stages = stages(&dockerfile);
    assert!(stages.len() >= 2, "multi-stage build");
    let build = &stages[0];
    let build_text: String = build.iter().map(|(op, a)| format!("{op} {a}\n")).collect();
    assert!(
        build_text.contains("x86_64-unknown-linux-musl"),
        "builds for musl"
    );
    assert!(
        build_text.contains("musl-gcc"),
        "uses musl-gcc for C code (ring)"
    );
    assert!(build_text.contains("--release") && build_text.contains("--locked"));
    assert!(
        build_text.contains("ldd") && build_text.contains("statically linked"),
        "verifies the binary is static"
    );

    let last = stages.last().unwrap();
    let get = |op: &str| -> Vec<&str> {
        last.iter()
            .filter(|(o, _)| o == op)
            .map(|(_, a)| a.as_str())
            .collect()
    };
    assert_eq!(get("FROM"), ["scratch"], "the final image is empty");
    let copies = get("COPY");
    assert!(
        copies
            .iter()
            .any(|c| c.starts_with("--from=") && c.ends_with(" /agent-mesh")),
        "the binary is copied from the build stage: {copies:?}"
    );
    let entry = get("ENTRYPOINT");
    assert_eq!(entry.len(), 1);
    let entry: Vec<String> = serde_json::from_str(entry[0]).expect("exec-form ENTRYPOINT");
    assert_eq!(entry, ["/agent-mesh"]);

    let user = get("USER");
    assert_eq!(user.len(), 1, "USER is set once");
    let uid = user[0].split(':').next().unwrap();
    let uid: u32 = uid
        .parse()
        .expect("a numeric uid (scratch has no /etc/passwd)");
    assert_ne!(uid, 0, "runs as non-root");

    assert!(get("EXPOSE").iter().any(|p| *p == PORT.to_string()));
    let env = get("ENV").join(" ");
    assert!(
        env.split_whitespace().any(|kv| kv == "PORT=8080"),
        "ENV PORT=8080 makes it listen on 0.0.0.0:8080: {env}"
    );
    assert!(
        get("HEALTHCHECK").is_empty(),
        "scratch has no shell to run one"
    );
    for secret in SECRETS {
        assert!(
            !env.contains(secret),
            "{secret} must not be baked into the image"
        );
    }

    // Everything the build copies must survive .dockerignore.
    let ignore = read(".dockerignore");
    let ignored: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for needed in ["Cargo.toml", "Cargo.lock", "src", "assets"] {
        assert!(!ignored.contains(&needed), "{needed} is ignored");
        assert!(
            dockerfile.contains(&format!("COPY {needed}"))
                || dockerfile.contains(&format!(" {needed} ")),
            "the build copies {needed}"
        );
    }
    assert!(
        ignored.contains(&"target"),
        "target/ stays out of the context"
    );
}

#[test]
fn systemd_unit_outwaits_the_grace_and_is_sandboxed() {
    let unit = read("deploy/agent-mesh.service");
    let settings: Vec<(&str, &str)> = unit
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .collect();
    let get = |key: &str| settings.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
    let stop: u64 = get("TimeoutStopSec")
        .expect("TimeoutStopSec")
        .parse()
        .expect("seconds");
    assert!(stop > SHUTDOWN_GRACE_SECS);
    assert_eq!(get("KillSignal"), Some("SIGTERM"));
    assert!(get("ExecStart").is_some_and(|e| e.contains("agent-mesh")));
    assert!(get("EnvironmentFile").is_some());
    assert!(get("DynamicUser") == Some("yes") || get("User").is_some());
    for hardening in [
        "NoNewPrivileges",
        "ProtectSystem",
        "PrivateTmp",
        "ProtectHome",
    ] {
        assert!(get(hardening).is_some(), "{hardening} missing");
    }
    assert_eq!(get("ProtectSystem"), Some("strict"));
}
