//! Operating the server safely: /metrics parsed by the reference Prometheus text
//! parser, sign-in throttling that holds nothing and never locks the owner out, client
//! addresses from the named edge only, and the open-connection caps (overall and per
//! peer).

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
/// Failures a client may make before it is locked (`auth_limit::FREE_FAILURES`).
const FREE_FAILURES: usize = 5;
/// Every answer to a refused sign-in must come at least this fast: nothing is held.
const PROMPT: Duration = Duration::from_millis(500);

fn signed_in_server(env: &[(&str, &str)]) -> Server {
    let mut all = vec![("MESH_USER", "u"), ("MESH_PASS", "right-pass")];
    all.extend_from_slice(env);
    Server::start(&all)
}

/// One `GET /api/runs` with these headers: the status and how long the answer took.
fn timed(server: &Server, headers: &[(&str, &str)]) -> (u16, Duration, support::Response) {
    let started = Instant::now();
    let r = server.request("GET", "/api/runs", headers, b"");
    (r.status, started.elapsed(), r)
}

/// A connection to `to` from the loopback address `from` (127.0.0.2, 127.0.0.3 …),
/// which the server sees as another peer than 127.0.0.1.
fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stream = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), socket.connect(to))
            .await
            .expect("connect in time")
            .expect("connect")
    });
    let s = stream.into_std().unwrap();
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// One request on a connection made from `from`; the response.
fn request_from(from: &str, server: &Server, headers: &[(&str, &str)]) -> support::Response {
    let mut s = connect_from(from, server.addr);
    support::write_request(&mut s, "GET", "/api/runs", headers, b"");
    support::read_response(&mut std::io::BufReader::new(s))
}

/// Signs in with the right password and returns the device cookie (`name=value`).
fn sign_in(server: &Server, headers: &[(&str, &str)]) -> String {
    let mut with = headers.to_vec();
    with.push(("Authorization", GOOD));
    let (status, _, r) = timed(server, &with);
    assert_eq!(status, 200, "{}", r.text());
    let set = r.header("set-cookie").expect("a device cookie");
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let pair = set.split(';').next().unwrap().to_string();
    assert!(pair.starts_with("mesh_device="), "{set}");
    pair
}

/// `/metrics` as the signed-in owner: the text, and its samples parsed.
fn metrics_of(server: &Server, cookie: &str) -> (String, HashMap<String, f64>) {
    let text = server
        .request(
            "GET",
            "/metrics",
            &[("Authorization", GOOD), ("Cookie", cookie)],
            b"",
        )
        .text();
    let samples = parse_prometheus(&text);
    (text, samples)
}

/// Fires `GET /api/runs` from a thread of its own; its status and how long the answer
/// took arrive on `tx` when (if) the server answers.
fn fire(addr: SocketAddr, headers: Vec<(String, String)>, tx: mpsc::Sender<(u16, Duration)>) {
    std::thread::spawn(move || {
        let started = Instant::now();
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
                let _ = tx.send((code, started.elapsed()));
            }
        }
    });
}

/// Everything that arrived within `window`.
fn answered_within(rx: &mpsc::Receiver<(u16, Duration)>, window: Duration) -> Vec<(u16, Duration)> {
    let deadline = Instant::now() + window;
    let mut got = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(answer) => got.push(answer),
            Err(_) => break,
        }
    }
    got
}

/// Uses up a client's free failures, then checks that the next one is answered 429
/// with Retry-After at once.
fn exhaust_allowance(server: &Server, headers: &[(&str, &str)]) {
    let mut with_bad = headers.to_vec();
    with_bad.push(("Authorization", BAD));
    for i in 0..FREE_FAILURES {
        let (status, took, _) = timed(server, &with_bad);
        assert_eq!(status, 401, "failure {i} is a plain 401");
        assert!(took < PROMPT, "failure {i} took {took:?}");
    }
    let (status, took, r) = timed(server, &with_bad);
    assert_eq!(status, 429, "{}", r.text());
    assert_eq!(r.error_code(), "too_many_requests");
    assert!(took < PROMPT, "a throttled failure was held {took:?}");
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!(retry >= 1, "Retry-After {retry}");
}

#[test]
fn a_locked_client_is_answered_at_once_and_its_connection_is_free() {
    let server = signed_in_server(&[]);
    exhaust_allowance(&server, &[]);
    // Locked: not even the right password is looked at from this address without a
    // device cookie; the answer still comes at once.
    let (status, took, r) = timed(&server, &[("Authorization", GOOD)]);
    assert_eq!(status, 429, "{}", r.text());
    assert!(took < PROMPT);
    // The same keep-alive connection serves the next request right away.
    let mut s = server.connect();
    for _ in 0..3 {
        let req = format!("GET /api/runs HTTP/1.1\r\nHost: t\r\nAuthorization: {BAD}\r\n\r\n");
        s.write_all(req.as_bytes()).unwrap();
        let started = Instant::now();
        let mut reader = std::io::BufReader::new(s.try_clone().unwrap());
        let r = support::read_response(&mut reader);
        assert_eq!(r.status, 429);
        assert!(started.elapsed() < PROMPT);
    }
    // Health and a browser's credential-less first request are not throttled.
    assert_eq!(server.get("/health").status, 200);
    let (status, took, _) = timed(&server, &[]);
    assert_eq!(status, 401);
    assert!(took < PROMPT);
}

#[test]
fn the_owner_signs_in_within_a_second_while_200_wrong_passwords_a_second_arrive() {
    // A connection cap the old held answers filled with 20 guesses a second.
    let server = signed_in_server(&[("MESH_MAX_CONNECTIONS", "256")]);
    // The owner's browser signed in before and holds its device cookie.
    let cookie = sign_in(&server, &[]);
    // The attacker: 200 wrong-password connections a second for 3 s, from the owner's
    // own address (127.0.0.1, as behind a proxy the server was not told about).
    let (tx, rx) = mpsc::channel();
    let attack = {
        let addr = server.addr;
        std::thread::spawn(move || {
            let started = Instant::now();
            for i in 0..600u32 {
                let due = started + Duration::from_millis(5 * u64::from(i));
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                fire(addr, vec![("Authorization".into(), BAD.into())], tx.clone());
            }
        })
    };
    let owner_started = Instant::now();
    let mut owner_checks = 0;
    while !attack.is_finished() {
        // The owner's browser (its cookie, any address) …
        let (status, took, r) = timed(&server, &[("Authorization", GOOD), ("Cookie", &cookie)]);
        assert_eq!(status, 200, "owner with the device cookie: {}", r.text());
        assert!(took < Duration::from_secs(1), "owner waited {took:?}");
        // … and the owner on a new device from another address.
        let started = Instant::now();
        let r = request_from("127.0.0.3", &server, &[("Authorization", GOOD)]);
        assert_eq!(r.status, 200, "owner on a new device: {}", r.text());
        assert!(started.elapsed() < Duration::from_secs(1));
        owner_checks += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    attack.join().unwrap();
    assert!(
        owner_checks >= 10,
        "only {owner_checks} checks in {:?}",
        owner_started.elapsed()
    );
    // Every guess was answered, at once: nothing is held, no slot stays taken.
    let answers = answered_within(&rx, Duration::from_secs(5));
    assert_eq!(answers.len(), 600, "unanswered guesses");
    let slowest = answers.iter().map(|(_, took)| *took).max().unwrap();
    assert!(
        slowest < Duration::from_secs(1),
        "a guess waited {slowest:?}"
    );
    let plain = answers.iter().filter(|(s, _)| *s == 401).count();
    let throttled = answers.iter().filter(|(s, _)| *s == 429).count();
    assert_eq!(plain + throttled, 600, "{answers:?}");
    assert_eq!(
        plain, FREE_FAILURES,
        "only the free failures are plain 401s"
    );
    // Few guesses were evaluated at all: the free ones, and one each time the lock
    // (1 s, then 2 s, then 4 s) ran out.
    let (_, m) = metrics_of(&server, &cookie);
    let evaluated = m["agent_mesh_auth_failures_total{}"];
    assert!(
        evaluated <= (FREE_FAILURES + 3) as f64,
        "{evaluated} guesses evaluated"
    );
    assert!(m[r#"agent_mesh_auth_throttled_total{scope="client"}"#] >= 590.0);
}

#[test]
fn one_peer_at_its_connection_cap_locks_out_nobody_else() {
    let server = signed_in_server(&[("MESH_MAX_CONNECTIONS_PER_PEER", "8")]);
    // One peer (127.0.0.2) opens connections up to its cap and holds them.
    let held: Vec<TcpStream> = (0..8)
        .map(|_| connect_from("127.0.0.2", server.addr))
        .collect();
    // Its next connection is refused at once with a reason.
    let mut extra = connect_from("127.0.0.2", server.addr);
    let started = Instant::now();
    let mut text = String::new();
    let _ = extra.read_to_string(&mut text);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(
        text.contains("\"overloaded\"") && text.contains("MESH_MAX_CONNECTIONS_PER_PEER"),
        "{text}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    // The owner, from another address, signs in at once.
    let started = Instant::now();
    let r = request_from("127.0.0.1", &server, &[("Authorization", GOOD)]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(started.elapsed() < Duration::from_secs(1));
    // Closing one gives the peer its slot back.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = request_from("127.0.0.2", &server, &[("Authorization", GOOD)]);
        if r.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the peer never got its slots back"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn behind_a_trusted_edge_the_per_peer_cap_does_not_count_the_edge() {
    // Every connection comes from the edge (here 127.0.0.1): capping it would lock
    // everyone out.
    let server = signed_in_server(&[
        ("MESH_MAX_CONNECTIONS_PER_PEER", "2"),
        ("MESH_TRUST_PROXY", "fly"),
    ]);
    let mut open: Vec<TcpStream> = (0..6).map(|_| server.connect()).collect();
    for (i, s) in open.iter_mut().enumerate() {
        let client = format!("192.0.2.{i}");
        support::write_request(
            s,
            "GET",
            "/api/runs",
            &[("Authorization", GOOD), ("Fly-Client-IP", &client)],
            b"",
        );
    }
    for s in open {
        let r = support::read_response(&mut std::io::BufReader::new(s));
        assert_eq!(r.status, 200, "{}", r.text());
    }
}

#[test]
fn rotating_forwarded_addresses_neither_bypass_nor_redirect_the_throttle() {
    // One trusted hop: the proxy appends the real client (203.0.113.5) on the right;
    // everything left of it is the attacker's own text.
    let server = signed_in_server(&[("MESH_TRUST_PROXY", "1")]);
    let victim = "198.51.100.20";
    // The attacker names the victim as the client again and again.
    let xff = format!("{victim}, 203.0.113.5");
    exhaust_allowance(&server, &[("X-Forwarded-For", &xff)]);
    // The victim is untouched: a typo gets a plain, prompt 401, the password gets in.
    let (status, took, _) = timed(
        &server,
        &[("Authorization", BAD), ("X-Forwarded-For", victim)],
    );
    assert_eq!(status, 401);
    assert!(took < PROMPT, "victim waited {took:?}");
    let (status, _, _) = timed(
        &server,
        &[("Authorization", GOOD), ("X-Forwarded-For", victim)],
    );
    assert_eq!(status, 200);
    // Rotating the spoofed part gives the attacker no fresh allowance.
    for i in 0..10 {
        let xff = format!("192.0.2.{i}, 203.0.113.5");
        let (status, took, _) = timed(
            &server,
            &[("Authorization", BAD), ("X-Forwarded-For", &xff)],
        );
        assert_eq!(status, 429, "rotated guess {i}");
        assert!(took < PROMPT);
    }
}

#[test]
fn only_the_named_edges_header_is_believed() {
    // Behind Cloudflare, Fly-Client-IP is the client's own text.
    let server = signed_in_server(&[("MESH_TRUST_PROXY", "cloudflare")]);
    for i in 0..=FREE_FAILURES {
        let fly = format!("192.0.2.{i}");
        let (status, took, _) = timed(
            &server,
            &[
                ("Authorization", BAD),
                ("CF-Connecting-IP", "203.0.113.5"),
                ("Fly-Client-IP", &fly),
            ],
        );
        let want = if i < FREE_FAILURES { 401 } else { 429 };
        assert_eq!(status, want, "attempt {i}");
        assert!(took < PROMPT);
    }
    // Another Cloudflare client is its own.
    let (status, took, _) = timed(
        &server,
        &[("Authorization", BAD), ("CF-Connecting-IP", "203.0.113.6")],
    );
    assert_eq!(status, 401);
    assert!(took < PROMPT);
}

#[test]
fn forwarded_addresses_are_ignored_unless_the_proxy_is_trusted() {
    let server = signed_in_server(&[]);
    for i in 0..=FREE_FAILURES {
        let ip = format!("198.51.100.{i}");
        let (status, _, _) = timed(
            &server,
            &[
                ("Authorization", BAD),
                ("X-Forwarded-For", &ip),
                ("Fly-Client-IP", &ip),
                ("CF-Connecting-IP", &ip),
            ],
        );
        // The socket address counts, whatever the headers say.
        let want = if i < FREE_FAILURES { 401 } else { 429 };
        assert_eq!(status, want, "attempt {i}");
    }
}

#[test]
fn a_spread_out_attack_meets_the_server_wide_ceiling_but_not_a_known_device() {
    let server = signed_in_server(&[("MESH_TRUST_PROXY", "fly")]);
    let cookie = sign_in(&server, &[("Fly-Client-IP", "203.0.113.77")]);
    // Sixty clients, one guess each, all at once: about twenty are evaluated (401),
    // the rest refused unevaluated (429), every one at once.
    let (tx, rx) = mpsc::channel();
    for i in 0..60 {
        fire(
            server.addr,
            vec![
                ("Authorization".into(), BAD.into()),
                ("Fly-Client-IP".into(), format!("192.0.2.{i}")),
            ],
            tx.clone(),
        );
    }
    let answers = answered_within(&rx, Duration::from_secs(3));
    assert_eq!(answers.len(), 60, "{answers:?}");
    assert!(
        answers
            .iter()
            .all(|(_, took)| *took < Duration::from_secs(1)),
        "{answers:?}"
    );
    let plain = answers.iter().filter(|(s, _)| *s == 401).count();
    assert!((15..=40).contains(&plain), "{answers:?}");
    assert!(
        answers.iter().all(|(s, _)| *s == 401 || *s == 429),
        "{answers:?}"
    );
    // The owner's device is not part of it, even from a new address.
    let (status, took, _) = timed(
        &server,
        &[
            ("Authorization", GOOD),
            ("Cookie", &cookie),
            ("Fly-Client-IP", "198.51.100.9"),
        ],
    );
    assert_eq!(status, 200);
    assert!(took < PROMPT, "owner waited {took:?}");
    let (metrics, m) = metrics_of(&server, &cookie);
    assert!(
        m[r#"agent_mesh_auth_throttled_total{scope="global"}"#] >= 10.0,
        "{metrics}"
    );
    assert_eq!(m[r#"agent_mesh_auth_throttled_total{scope="client"}"#], 0.0);
}

#[test]
fn an_unknown_trust_proxy_value_stops_startup() {
    for value in ["yes", "true", "render", "0.5"] {
        let (code, stderr) = support::exit_of(&[
            ("MESH_TRUST_PROXY", value),
            ("MESH_USER", "u"),
            ("MESH_PASS", "p"),
        ]);
        assert_eq!(code, Some(2), "{value}: {stderr}");
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
