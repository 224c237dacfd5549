//! Operating the server safely: /metrics parsed by the reference Prometheus text
//! parser, sign-in throttling that never locks the owner out, client addresses from
//! the named edge only, and the open-connection cap.

mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
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
    // Tracing is off: the trace counters are there, at zero.
    for name in [
        "agent_mesh_trace_spans_exported_total{}",
        "agent_mesh_trace_spans_dropped_total{}",
        "agent_mesh_trace_export_failures_total{}",
    ] {
        assert_eq!(m[name], 0.0, "{name}");
    }
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

const GOOD: &str = "Basic dTpyaWdodC1wYXNz"; // u:right-pass
const BAD: &str = "Basic dTp3cm9uZy1wYXNz"; // u:wrong-pass
/// Failures a client may make before its answers are held (`auth_limit::FREE_FAILURES`).
const FREE_FAILURES: usize = 5;

fn signed_in_server(trust_proxy: Option<&str>) -> Server {
    let mut env = vec![("MESH_USER", "u"), ("MESH_PASS", "right-pass")];
    if let Some(t) = trust_proxy {
        env.push(("MESH_TRUST_PROXY", t));
    }
    Server::start(&env)
}

/// One `GET /api/runs` with these headers: the status and how long the answer took.
fn timed(server: &Server, headers: &[(&str, &str)]) -> (u16, Duration, support::Response) {
    let started = Instant::now();
    let r = server.request("GET", "/api/runs", headers, b"");
    (r.status, started.elapsed(), r)
}

/// Fires `GET /api/runs` from a thread of its own; its status arrives on `tx` when
/// (if) the server answers. The thread ends when the server goes away.
fn fire(addr: SocketAddr, headers: Vec<(String, String)>, tx: mpsc::Sender<u16>) {
    std::thread::spawn(move || {
        let Ok(mut s) = TcpStream::connect(addr) else {
            return;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
        let mut req = "GET /api/runs HTTP/1.1\r\nHost: t\r\nConnection: close\r\n".to_string();
        for (k, v) in &headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        if s.write_all(req.as_bytes()).is_err() {
            return;
        }
        let mut status_line = [0u8; 12];
        if s.read_exact(&mut status_line).is_ok() {
            if let Some(code) = std::str::from_utf8(&status_line[9..12])
                .ok()
                .and_then(|c| c.parse().ok())
            {
                let _ = tx.send(code);
            }
        }
    });
}

/// The statuses that arrived within `window`.
fn answered_within(rx: &mpsc::Receiver<u16>, window: Duration) -> Vec<u16> {
    let deadline = Instant::now() + window;
    let mut got = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(code) => got.push(code),
            Err(_) => break,
        }
    }
    got
}

/// Uses up a client's free failures, then checks that the next one is held about a
/// second and answered 429 with Retry-After.
fn exhaust_allowance(server: &Server, headers: &[(&str, &str)]) {
    let mut with_bad = headers.to_vec();
    with_bad.push(("Authorization", BAD));
    for i in 0..FREE_FAILURES {
        let (status, took, _) = timed(server, &with_bad);
        assert_eq!(status, 401, "failure {i} is a plain 401");
        assert!(
            took < Duration::from_millis(500),
            "failure {i} took {took:?}"
        );
    }
    let (status, took, r) = timed(server, &with_bad);
    assert_eq!(status, 429, "{}", r.text());
    assert_eq!(r.error_code(), "too_many_requests");
    assert!(took >= Duration::from_millis(900), "held only {took:?}");
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!(retry >= 1, "Retry-After {retry}");
}

#[test]
fn the_owner_signs_in_while_an_attacker_keeps_failing_from_the_same_address() {
    // No MESH_TRUST_PROXY: every client is 127.0.0.1, as every visitor is the edge's
    // address behind a proxy the server was not told about.
    let server = signed_in_server(None);
    exhaust_allowance(&server, &[]);
    // The attacker keeps guessing, twenty at once.
    let (tx, rx) = mpsc::channel();
    for _ in 0..20 {
        fire(
            server.addr,
            vec![("Authorization".into(), BAD.into())],
            tx.clone(),
        );
    }
    // The owner, from the same address, is served at once every time.
    for i in 0..5 {
        let (status, took, r) = timed(&server, &[("Authorization", GOOD)]);
        assert_eq!(status, 200, "owner's request {i}: {}", r.text());
        assert!(took < Duration::from_millis(500), "owner waited {took:?}");
    }
    // None of the guesses got an answer quickly: each is held for its delay (2 s and up).
    let answered = answered_within(&rx, Duration::from_millis(1500));
    assert!(
        answered.is_empty(),
        "guesses answered at once: {answered:?}"
    );
    // Health and a browser's credential-less first request are not throttled.
    assert_eq!(server.get("/health").status, 200);
    let (status, took, _) = timed(&server, &[]);
    assert_eq!(status, 401);
    assert!(took < Duration::from_millis(500));
}

#[test]
fn rotating_forwarded_addresses_neither_bypass_nor_redirect_the_throttle() {
    // One trusted hop: the proxy appends the real client (203.0.113.5) on the right;
    // everything left of it is the attacker's own text.
    let server = signed_in_server(Some("1"));
    let victim = "198.51.100.20";
    // The attacker names the victim as the client again and again: five plain
    // failures, then more at once (held, so only waited for a moment).
    let xff = format!("{victim}, 203.0.113.5");
    let spoofing = vec![
        ("Authorization".to_string(), BAD.to_string()),
        ("X-Forwarded-For".to_string(), xff.clone()),
    ];
    for _ in 0..FREE_FAILURES {
        let (status, _, _) = timed(
            &server,
            &[("Authorization", BAD), ("X-Forwarded-For", &xff)],
        );
        assert_eq!(status, 401);
    }
    let (tx, rx) = mpsc::channel();
    for _ in 0..FREE_FAILURES {
        fire(server.addr, spoofing.clone(), tx.clone());
    }
    let _ = answered_within(&rx, Duration::from_millis(500));
    // The victim is untouched: a typo gets a plain, prompt 401, the password gets in.
    let (status, took, _) = timed(
        &server,
        &[("Authorization", BAD), ("X-Forwarded-For", victim)],
    );
    assert_eq!(status, 401);
    assert!(took < Duration::from_millis(500), "victim held {took:?}");
    let (status, _, _) = timed(
        &server,
        &[("Authorization", GOOD), ("X-Forwarded-For", victim)],
    );
    assert_eq!(status, 200);
    // Rotating the spoofed part does not give the attacker fresh allowances.
    let (tx, rx) = mpsc::channel();
    for i in 0..20 {
        let xff = format!("192.0.2.{i}, 203.0.113.5");
        fire(
            server.addr,
            vec![
                ("Authorization".into(), BAD.into()),
                ("X-Forwarded-For".into(), xff),
            ],
            tx.clone(),
        );
    }
    let answered = answered_within(&rx, Duration::from_millis(1500));
    assert!(
        answered.is_empty(),
        "rotated guesses answered: {answered:?}"
    );
}

#[test]
fn only_the_named_edges_header_is_believed() {
    // Behind Cloudflare, Fly-Client-IP is the client's own text.
    let server = signed_in_server(Some("cloudflare"));
    let mut n = 0;
    let mut rotating = || {
        n += 1;
        format!("192.0.2.{n}")
    };
    for _ in 0..FREE_FAILURES {
        let fly = rotating();
        let (status, _, _) = timed(
            &server,
            &[
                ("Authorization", BAD),
                ("CF-Connecting-IP", "203.0.113.5"),
                ("Fly-Client-IP", &fly),
            ],
        );
        assert_eq!(status, 401);
    }
    let fly = rotating();
    let (status, took, _) = timed(
        &server,
        &[
            ("Authorization", BAD),
            ("CF-Connecting-IP", "203.0.113.5"),
            ("Fly-Client-IP", &fly),
        ],
    );
    assert_eq!(status, 429);
    assert!(took >= Duration::from_millis(900), "held only {took:?}");
    // Another Cloudflare client is its own.
    let (status, took, _) = timed(
        &server,
        &[("Authorization", BAD), ("CF-Connecting-IP", "203.0.113.6")],
    );
    assert_eq!(status, 401);
    assert!(took < Duration::from_millis(500));
}

#[test]
fn forwarded_addresses_are_ignored_unless_the_proxy_is_trusted() {
    let server = signed_in_server(None);
    let mut with_rotating = Vec::new();
    for i in 0..FREE_FAILURES {
        with_rotating.push(format!("198.51.100.{i}"));
    }
    for ip in &with_rotating {
        let (status, _, _) = timed(
            &server,
            &[
                ("Authorization", BAD),
                ("X-Forwarded-For", ip),
                ("Fly-Client-IP", ip),
                ("CF-Connecting-IP", ip),
            ],
        );
        assert_eq!(status, 401);
    }
    // The socket address counts: the next guess is held, whatever the headers say.
    let (status, took, _) = timed(
        &server,
        &[("Authorization", BAD), ("X-Forwarded-For", "192.0.2.1")],
    );
    assert_eq!(status, 429);
    assert!(took >= Duration::from_millis(900), "held only {took:?}");
}

#[test]
fn a_spread_out_attack_meets_the_server_wide_ceiling() {
    let server = signed_in_server(Some("fly"));
    // Forty clients, one guess each, all at once: about twenty a second are answered
    // as usual, the rest are held and then refused.
    let (tx, rx) = mpsc::channel();
    for i in 0..40 {
        fire(
            server.addr,
            vec![
                ("Authorization".into(), BAD.into()),
                ("Fly-Client-IP".into(), format!("192.0.2.{i}")),
            ],
            tx.clone(),
        );
    }
    let answered = answered_within(&rx, Duration::from_millis(1500));
    assert!(
        (15..=30).contains(&answered.len()) && answered.iter().all(|s| *s == 401),
        "answered at once: {answered:?}"
    );
    // The owner is not part of it.
    let (status, took, _) = timed(
        &server,
        &[("Authorization", GOOD), ("Fly-Client-IP", "203.0.113.77")],
    );
    assert_eq!(status, 200);
    assert!(took < Duration::from_millis(500), "owner waited {took:?}");
    let metrics = server
        .request("GET", "/metrics", &[("Authorization", GOOD)], b"")
        .text();
    let m = parse_prometheus(&metrics);
    assert!(
        m[r#"agent_mesh_auth_throttled_total{scope="global"}"#] >= 10.0,
        "{metrics}"
    );
    assert_eq!(m[r#"agent_mesh_auth_throttled_total{scope="client"}"#], 0.0);
}

#[test]
fn an_unknown_trust_proxy_value_stops_startup() {
    for value in ["yes", "true", "render", "0.5"] {
        let mut child = support::command(&[
            ("MESH_TRUST_PROXY", value),
            ("MESH_USER", "u"),
            ("MESH_PASS", "p"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run agent-mesh");
        // A server that accepted the value would serve forever: wait a bounded time.
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("MESH_TRUST_PROXY={value} was accepted: the server started");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert_eq!(status.code(), Some(2), "{value}: {stderr}");
        assert!(
            stderr.contains("MESH_TRUST_PROXY") && stderr.contains("fly"),
            "{value}: {stderr}"
        );
    }
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
