//! Operating the server safely: /metrics parsed by the reference Prometheus text
//! parser, the per-client auth lockout, and the open-connection cap.

mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;
use support::mock::{openai_stream, MockProvider, Reply};
use support::Server;

/// Parses exposition text with `prometheus_client`'s parser (Python) and returns
/// `name{labels}` → value for every sample.
fn parse_prometheus(text: &str) -> HashMap<String, f64> {
    let script = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
        print(f"{s.name}{{{labels}}}\t{s.value}")
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the Prometheus parser rejected the text: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.split_once('\t').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

#[test]
fn metrics_parse_and_count_what_happened() {
    // The first chat call fails once. Counted apart from the catalog's GET /models,
    // which races the first run's calls at startup.
    let chat_calls = std::sync::atomic::AtomicUsize::new(0);
    let mock = MockProvider::start(move |r, _| {
        if r.method == "GET" {
            return Reply::error(200, r#"{"data":[]}"#);
        }
        if chat_calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            return Reply::error(503, "{}").with_header("Retry-After", "0");
        }
        let text = if r.agent() == "orchestrator" {
            r#"{"agents":["researcher"]}"#
        } else {
            "one two three"
        };
        Reply::sse(&openai_stream(&[text], None))
    });
    let base = mock.url("/v1");
    let server = Server::start(&[
        ("CUSTOM_BASE_URL", &base),
        ("MESH_USER", "ops"),
        ("MESH_PASS", "metrics-pass"),
    ]);
    let auth = ("Authorization", "Basic b3BzOm1ldHJpY3MtcGFzcw==");
    let r = server.request(
        "POST",
        "/api/run",
        &[("Content-Type", "application/json"), auth],
        br#"{"task":"t"}"#,
    );
    assert_eq!(r.status, 201);
    let id = r.json()["id"].as_str().unwrap().to_string();
    let events = server.stream(&id, &[auth]).collect();
    assert_eq!(events.last().unwrap().data["status"], "completed");
    assert_eq!(server.get("/metrics").status, 401, "metrics need auth");

    let r = server.request("GET", "/metrics", &[auth], b"");
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let m = parse_prometheus(&r.text());
    assert_eq!(m["agent_mesh_runs_started_total{}"], 1.0);
    assert_eq!(
        m[r#"agent_mesh_runs_finished_total{status="completed"}"#],
        1.0
    );
    assert_eq!(m[r#"agent_mesh_runs{status="completed"}"#], 1.0);
    assert_eq!(m["agent_mesh_active_runs{}"], 0.0);
    let tokens = events.iter().filter(|e| e.event == "token").count() as f64;
    assert_eq!(
        m[r#"agent_mesh_tokens_relayed_total{provider="custom"}"#],
        tokens
    );
    // orchestrator, researcher and writer, one of them answered 503 once first.
    assert_eq!(
        m[r#"agent_mesh_upstream_calls_total{provider="custom"}"#],
        4.0
    );
    assert_eq!(
        m[r#"agent_mesh_upstream_retries_total{provider="custom"}"#],
        1.0
    );
    assert_eq!(
        m[r#"agent_mesh_upstream_errors_total{kind="upstream",provider="custom"}"#],
        1.0
    );
    assert_eq!(m["agent_mesh_auth_failures_total{}"], 1.0);
    assert_eq!(
        m[r#"agent_mesh_time_to_first_token_seconds_count{provider="custom"}"#],
        3.0
    );
    assert_eq!(
        m[r#"agent_mesh_http_request_duration_seconds_count{route="/api/run"}"#],
        1.0
    );
    assert!(
        m[r#"agent_mesh_http_request_duration_seconds_bucket{le="+Inf",route="/metrics"}"#] >= 1.0
    );
    assert!(!r.text().contains("metrics-pass"));
}

#[test]
fn repeated_auth_failures_lock_the_client_out() {
    let server = Server::start(&[
        ("MESH_USER", "u"),
        ("MESH_PASS", "right-pass"),
        ("MESH_TRUST_PROXY", "1"),
    ]);
    let good = "Basic dTpyaWdodC1wYXNz";
    let bad = "Basic dTp3cm9uZy1wYXNz";
    let as_client = |ip: &str, auth: &str| {
        server.request(
            "GET",
            "/api/runs",
            &[("Authorization", auth), ("X-Forwarded-For", ip)],
            b"",
        )
    };
    for _ in 0..10 {
        assert_eq!(as_client("203.0.113.5", bad).status, 401);
    }
    let locked = as_client("203.0.113.5", good);
    assert_eq!(
        locked.status, 429,
        "locked out even with the right password"
    );
    assert_eq!(locked.error_code(), "too_many_requests");
    assert!(
        locked
            .header("retry-after")
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    // Another client is unaffected; health stays open.
    assert_eq!(as_client("203.0.113.6", good).status, 200);
    assert_eq!(server.get("/health").status, 200);
    // Requests without any credentials (a browser's first try) do not count.
    for _ in 0..20 {
        assert_eq!(
            server
                .request(
                    "GET",
                    "/api/runs",
                    &[("X-Forwarded-For", "203.0.113.7")],
                    b""
                )
                .status,
            401
        );
    }
    assert_eq!(as_client("203.0.113.7", good).status, 200);
}

#[test]
fn forwarded_addresses_are_ignored_unless_the_proxy_is_trusted() {
    let server = Server::start(&[("MESH_USER", "u"), ("MESH_PASS", "right-pass")]);
    let bad = "Basic dTp3cm9uZy1wYXNz";
    // Rotating X-Forwarded-For does not evade the limit: the socket address counts.
    for i in 0..10 {
        let ip = format!("198.51.100.{i}");
        assert_eq!(
            server
                .request(
                    "GET",
                    "/api/runs",
                    &[("Authorization", bad), ("X-Forwarded-For", &ip)],
                    b""
                )
                .status,
            401
        );
    }
    let r = server.request(
        "GET",
        "/api/runs",
        &[
            ("Authorization", "Basic dTpyaWdodC1wYXNz"),
            ("X-Forwarded-For", "192.0.2.1"),
        ],
        b"",
    );
    assert_eq!(r.status, 429);
}

#[test]
fn connections_beyond_the_cap_get_a_quick_503() {
    let server = Server::start(&[("MESH_MAX_CONNECTIONS", "4")]);
    let idle: Vec<_> = (0..4).map(|_| server.connect()).collect();
    std::thread::sleep(Duration::from_millis(100));
    let mut extra = server.connect();
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = String::new();
    let _ = extra.read_to_string(&mut buf);
    assert!(buf.starts_with("HTTP/1.1 503"), "{buf}");
    assert!(
        buf.contains("Retry-After: 1") && buf.contains("\"overloaded\""),
        "{buf}"
    );
    drop(idle);
    // Once connections close, the server serves again.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let mut s = server.connect();
        support::write_request(&mut s, "GET", "/health", &[], b"");
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        if text.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never recovered: {text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
