//! The Hermes login for the Nous Portal, against a mock portal and a mock inference
//! server: refresh before expiry, atomic write-back, single flight across runs and
//! processes, refresh after a 401, dead grants and malformed files.

mod support;

use serde_json::{json, Value};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::mock::{openai_stream, MockProvider, Recorded, Reply};
use support::{text_of, Server};

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// ISO-8601 with an offset, as the Hermes CLI writes it.
fn iso(epoch: i64) -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "-d", &format!("@{epoch}"), "+%Y-%m-%dT%H:%M:%S+00:00"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn hermes_home(name: &str, access: &str, expires_at: i64) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mesh-hermes-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let auth = json!({
        "version": 1,
        "active_provider": "nous",
        "providers": {
            "nous": {
                "access_token": access,
                "refresh_token": "rt-1",
                "expires_at": iso(expires_at),
                "portal_base_url": "https://portal.nousresearch.com",
                "inference_base_url": "https://inference-api.nousresearch.com/v1",
                "client_id": "hermes-cli",
                "scope": "inference:invoke",
                "token_type": "Bearer",
                "agent_key": "keep-me"
            },
            "openai": {"api_key": "unrelated", "nested": {"a": [1, 2, 3]}}
        },
        "updated_at": "2026-01-01T00:00:00+00:00",
        "zz_extra": true
    });
    std::fs::write(
        dir.join("auth.json"),
        serde_json::to_string_pretty(&auth).unwrap(),
    )
    .unwrap();
    dir
}

fn read_auth(home: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(home.join("auth.json")).unwrap()).unwrap()
}

/// One mock serving both the portal's token endpoint and inference.
fn nous_mock(token_answer: Value, token_status: u16) -> MockProvider {
    MockProvider::start(move |r: &Recorded, _| {
        if r.path == "/api/oauth/token" {
            return Reply::error(token_status, &token_answer.to_string());
        }
        let bearer = r.header("authorization").unwrap_or("").to_string();
        if bearer == "Bearer expired-token" || bearer == "Bearer revoked-on-server" {
            return Reply::error(401, r#"{"error":{"message":"token expired"}}"#);
        }
        let text = if r.agent() == "orchestrator" {
            r#"{"agents":["researcher"]}"#.to_string()
        } else {
            format!("{} with {bearer}", r.agent())
        };
        Reply::sse(&openai_stream(&[&text], Some((5, 5, None))))
    })
}

fn start(home: &Path, mock: &MockProvider) -> Server {
    let base = mock.url("/v1");
    let portal = mock.url("");
    Server::start(&[
        ("HERMES_HOME", home.to_str().unwrap()),
        ("NOUS_BASE_URL", &base),
        ("NOUS_PORTAL_URL", &portal),
    ])
}

fn token_requests(mock: &MockProvider) -> Vec<Recorded> {
    mock.requests()
        .into_iter()
        .filter(|r| r.path == "/api/oauth/token")
        .collect()
}

#[test]
fn an_expiring_token_is_refreshed_first_and_written_back_atomically() {
    let home = hermes_home("refresh", "expired-token", now() - 600);
    let before = read_auth(&home);
    let mock = nous_mock(
        json!({"access_token": "fresh-token", "refresh_token": "rt-2", "expires_in": 3600, "token_type": "Bearer"}),
        200,
    );
    let server = start(&home, &mock);
    let providers = server.get("/api/providers").json();
    let nous = providers
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "nous")
        .unwrap()
        .clone();
    assert_eq!(
        (
            nous["configured"].as_bool(),
            nous["active"].as_bool(),
            nous["auth"].as_str()
        ),
        (Some(true), Some(true), Some("hermes_login"))
    );

    let id = server.start_run(r#"{"task":"t"}"#);
    let events = server.stream(&id, &[]).collect();
    assert_eq!(
        events.last().unwrap().data["status"],
        "completed",
        "{events:?}"
    );

    let refreshes = token_requests(&mock);
    assert_eq!(refreshes.len(), 1);
    let r = &refreshes[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.header("x-nous-refresh-token"), Some("rt-1"));
    assert_eq!(
        r.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(r.text(), "grant_type=refresh_token&client_id=hermes-cli");
    let first_inference = mock
        .requests()
        .into_iter()
        .find(|r| r.path == "/v1/chat/completions")
        .unwrap();
    assert_eq!(
        first_inference.header("authorization"),
        Some("Bearer fresh-token")
    );
    assert!(first_inference.at > refreshes[0].at);
    // The mock echoes the bearer back; it is masked like every secret.
    assert_eq!(text_of(&events, "researcher"), "researcher with Bearer ***");

    let after = read_auth(&home);
    let n = &after["providers"]["nous"];
    assert_eq!(n["access_token"], "fresh-token");
    assert_eq!(n["refresh_token"], "rt-2");
    assert_eq!(n["expires_in"], 3600);
    let exp = n["expires_at"].as_str().unwrap();
    assert!(exp.ends_with("+00:00"), "{exp}");
    assert!(n["obtained_at"].as_str().unwrap().ends_with("+00:00"));
    assert_ne!(after["updated_at"], before["updated_at"]);
    // Every other field and provider is exactly as it was, in the same order.
    for key in [
        "portal_base_url",
        "inference_base_url",
        "client_id",
        "scope",
        "token_type",
        "agent_key",
    ] {
        assert_eq!(n[key], before["providers"]["nous"][key], "{key}");
    }
    assert_eq!(after["providers"]["openai"], before["providers"]["openai"]);
    assert_eq!(after["version"], 1);
    assert_eq!(after["zz_extra"], true);
    let keys: Vec<&String> = after.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "version",
            "active_provider",
            "providers",
            "updated_at",
            "zz_extra"
        ]
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(home.join("auth.json"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
    // No temp files left behind, and no token in the logs.
    let leftovers: Vec<_> = std::fs::read_dir(&home)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.contains("tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let logs = server.logs();
    assert!(!logs.contains("fresh-token") && !logs.contains("rt-2") && !logs.contains("rt-1"));
    std::fs::remove_dir_all(&home).unwrap();
}

#[test]
fn twenty_concurrent_runs_cause_exactly_one_refresh() {
    let home = hermes_home("single", "expired-token", now() - 5);
    let mock = nous_mock(
        json!({"access_token": "fresh-token", "expires_in": 3600}),
        200,
    );
    let server = std::sync::Arc::new(start(&home, &mock));
    let ids: Vec<String> = (0..20)
        .map(|i| {
            server.start_run(&format!(
                r#"{{"task":"run {i}","agents":["researcher"],"detach":true}}"#
            ))
        })
        .collect();
    for id in &ids {
        assert_eq!(
            server.wait_finished(id, Duration::from_secs(30))["status"],
            "completed"
        );
    }
    assert_eq!(token_requests(&mock).len(), 1);
    let inference: Vec<Recorded> = mock
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v1/chat/completions")
        .collect();
    assert_eq!(inference.len(), 40);
    assert!(inference
        .iter()
        .all(|r| r.header("authorization") == Some("Bearer fresh-token")));
    // The refresh token was not rotated by the portal, so it is kept.
    assert_eq!(
        read_auth(&home)["providers"]["nous"]["refresh_token"],
        "rt-1"
    );
    std::fs::remove_dir_all(&home).unwrap();
}

#[test]
fn a_token_another_process_refreshed_under_the_lock_is_adopted() {
    let home = hermes_home("lock", "expired-token", now() - 5);
    let mock = nous_mock(json!({"access_token": "ours", "expires_in": 3600}), 200);
    // Another process (this test) holds auth.lock while it refreshes.
    let lock = File::options()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(home.join("auth.lock"))
        .unwrap();
    lock.lock().unwrap();
    // The server starts while the lock is held: its startup catalog fetch and the
    // run both wait for it.
    let server = start(&home, &mock);
    let id = server.start_run(r#"{"task":"t","agents":["researcher"]}"#);
    let mut stream = server.stream(&id, &[]);
    std::thread::sleep(Duration::from_millis(600));
    assert!(
        mock.requests().is_empty(),
        "nothing may be sent while another process holds the lock: {:?}",
        mock.requests()
            .iter()
            .map(|r| r.path.clone())
            .collect::<Vec<_>>()
    );
    let mut auth = read_auth(&home);
    auth["providers"]["nous"]["access_token"] = json!("theirs");
    auth["providers"]["nous"]["refresh_token"] = json!("rt-theirs");
    auth["providers"]["nous"]["expires_at"] = json!(iso(now() + 3600));
    std::fs::write(
        home.join("auth.json"),
        serde_json::to_string_pretty(&auth).unwrap(),
    )
    .unwrap();
    let released = Instant::now();
    drop(lock);
    let events = stream.collect();
    assert_eq!(
        events.last().unwrap().data["status"],
        "completed",
        "{events:?}"
    );
    assert!(token_requests(&mock).is_empty(), "no refresh of ours");
    assert_eq!(
        text_of(&events, "researcher"),
        "researcher with Bearer ***",
        "the adopted token is masked too"
    );
    assert!(released.elapsed() < Duration::from_secs(10));
    assert_eq!(
        read_auth(&home)["providers"]["nous"]["refresh_token"],
        "rt-theirs"
    );
    std::fs::remove_dir_all(&home).unwrap();
}

#[test]
fn a_401_from_inference_refreshes_once_and_retries_once() {
    // The token looks valid for an hour, but the server has revoked it.
    let home = hermes_home("401", "revoked-on-server", now() + 3600);
    let mock = nous_mock(
        json!({"access_token": "fresh-token", "refresh_token": "rt-2", "expires_in": 3600}),
        200,
    );
    let server = start(&home, &mock);
    let id = server.start_run(r#"{"task":"t","agents":["researcher"]}"#);
    let events = server.stream(&id, &[]).collect();
    assert_eq!(
        events.last().unwrap().data["status"],
        "completed",
        "{events:?}"
    );
    assert_eq!(token_requests(&mock).len(), 1);
    let researcher: Vec<Recorded> = mock.requests_of("researcher");
    assert_eq!(researcher.len(), 2, "one 401, one retry");
    assert_eq!(
        researcher[0].header("authorization"),
        Some("Bearer revoked-on-server")
    );
    assert_eq!(
        researcher[1].header("authorization"),
        Some("Bearer fresh-token")
    );
    assert!(!events.iter().any(|e| e.event == "error"));
    std::fs::remove_dir_all(&home).unwrap();
}

#[test]
fn a_dead_grant_asks_the_user_to_log_in_again() {
    let home = hermes_home("dead", "expired-token", now() - 5);
    let mock = nous_mock(
        json!({"error": "invalid_grant", "error_description": "refresh token revoked"}),
        400,
    );
    let server = start(&home, &mock);
    let id = server.start_run(r#"{"task":"t","agents":["researcher"]}"#);
    let events = server.stream(&id, &[]).collect();
    let err = events.iter().find(|e| e.event == "error").unwrap();
    assert_eq!(err.data["kind"], "auth");
    assert!(
        err.data["message"]
            .as_str()
            .unwrap()
            .contains("log in again with the Hermes CLI"),
        "{err:?}"
    );
    assert_eq!(events.last().unwrap().data["status"], "failed");
    assert_eq!(
        token_requests(&mock).len(),
        1,
        "a dead grant is not retried"
    );
    let providers = server.get("/api/providers").json();
    let nous = providers
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "nous")
        .unwrap()
        .clone();
    assert_eq!(nous["usable"], false);
    assert!(nous["error"].as_str().unwrap().contains("log in again"));
    // The file was not touched.
    assert_eq!(
        read_auth(&home)["providers"]["nous"]["access_token"],
        "expired-token"
    );
    std::fs::remove_dir_all(&home).unwrap();
}

#[test]
fn malformed_login_files_give_clear_errors() {
    let cases: &[(&str, &str)] = &[
        ("{not json", "not valid JSON"),
        (r#"{"version":1,"providers":{}}"#, "providers.nous"),
        (
            r#"{"providers":{"nous":{"refresh_token":"x"}}}"#,
            "access_token",
        ),
        (r#"[1,2,3]"#, "providers.nous"),
    ];
    for (i, (content, expect)) in cases.iter().enumerate() {
        let dir = std::env::temp_dir().join(format!("mesh-hermes-bad{i}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("auth.json"), content).unwrap();
        let mock = nous_mock(json!({}), 200);
        let server = start(&dir, &mock);
        let providers = server.get("/api/providers").json();
        let nous = providers
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == "nous")
            .unwrap()
            .clone();
        assert_eq!(nous["usable"], false, "{content}");
        let msg = nous["error"].as_str().unwrap();
        assert!(msg.contains(expect), "{content}: {msg}");
        let id = server.start_run(r#"{"task":"t","agents":["researcher"]}"#);
        let events = server.stream(&id, &[]).collect();
        let err = events.iter().find(|e| e.event == "error").unwrap();
        assert_eq!(err.data["kind"], "config");
        assert!(err.data["message"].as_str().unwrap().contains(expect));
        assert!(mock.requests().is_empty());
        assert_eq!(server.get("/health").status, 200, "still serving");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
