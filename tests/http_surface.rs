//! The HTTP surface over real sockets: auth, the error shape, routes and methods,
//! bad input of every kind (SPEC §7), slow and oversized requests.

mod support;

use std::io::{Read, Write};
use std::time::{Duration, Instant};
use support::Server;

// "alice:open sesame" and variants, base64-encoded.
const GOOD: &str = "Basic YWxpY2U6b3BlbiBzZXNhbWU=";
const WRONG_PASS: &str = "Basic YWxpY2U6b3BlbiBzZXNhbWY=";
const WRONG_USER: &str = "Basic YWxpY2Y6b3BlbiBzZXNhbWU=";

#[test]
fn basic_auth_guards_everything_but_health() {
    // Each wrong attempt comes from a client of its own (named by the trusted edge),
    // so sign-in throttling, tested in hardening.rs, leaves every answer a plain 401.
    let server = Server::start(&[
        ("MESH_USER", "alice"),
        ("MESH_PASS", "open sesame"),
        ("MESH_TRUST_PROXY", "fly"),
    ]);
    let mut attempt = 0;
    let h = server.get("/health");
    assert_eq!(h.status, 200);
    let v = h.json();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert!(v["uptime_s"].is_u64() && v["active_runs"].is_u64());

    for path in ["/", "/api/runs", "/api/agents", "/api/providers"] {
        for auth in [
            None,
            Some(WRONG_PASS),
            Some(WRONG_USER),
            Some("Basic !!!"),
            Some("Bearer x"),
        ] {
            attempt += 1;
            let client = format!("192.0.2.{attempt}");
            let mut headers: Vec<(&str, &str)> = vec![("Fly-Client-IP", &client)];
            headers.extend(auth.map(|a| ("Authorization", a)));
            let r = server.request("GET", path, &headers, b"");
            assert_eq!(r.status, 401, "{path} with {auth:?}");
            assert_eq!(
                r.header("www-authenticate"),
                Some("Basic realm=\"agent-mesh\", charset=\"UTF-8\"")
            );
            assert_eq!(r.error_code(), "unauthorized");
        }
        let ok = server.request("GET", path, &[("Authorization", GOOD)], b"");
        assert_eq!(ok.status, 200, "{path}");
    }
    let r = server.request(
        "POST",
        "/api/run",
        &[("Content-Type", "application/json")],
        br#"{"task":"x"}"#,
    );
    assert_eq!(r.status, 401);
    let r = server.request(
        "POST",
        "/api/run",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", GOOD),
        ],
        br#"{"task":"x"}"#,
    );
    assert_eq!(r.status, 201);
    // The password never appears in any log line.
    assert!(!server.logs().contains("open sesame"));
}

#[test]
fn agents_route_lists_the_roster() {
    let server = Server::start(&[]);
    let v = server.get("/api/agents").json();
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["orchestrator", "researcher", "coder", "analyst", "writer"]
    );
    for a in v.as_array().unwrap() {
        for k in ["title", "emoji", "kind", "model", "color"] {
            assert!(a[k].as_str().is_some_and(|s| !s.is_empty()), "{k} of {a}");
        }
        assert!(a["max_tokens"].as_u64().unwrap() >= 1024);
        assert!(a.get("prompt").is_none(), "prompts stay server-side");
    }
}

#[test]
fn unknown_routes_and_wrong_methods() {
    let server = Server::start(&[]);
    let r = server.get("/nope");
    assert_eq!(r.status, 404);
    assert_eq!(r.error_code(), "not_found");
    let r = server.get("/api/run");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST"));
    assert_eq!(r.error_code(), "method_not_allowed");
    let r = server.request("DELETE", "/api/runs", &[], b"");
    assert_eq!((r.status, r.header("allow")), (405, Some("GET, HEAD")));
    let r = server.request("POST", "/health", &[], b"");
    assert_eq!(r.status, 405);
    for id in [
        "0123",
        "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ",
        "00000000000000000000000000000000",
    ] {
        assert_eq!(server.get(&format!("/api/runs/{id}")).status, 404);
        assert_eq!(server.get(&format!("/api/stream/{id}")).status, 404);
        assert_eq!(
            server
                .request("POST", &format!("/api/runs/{id}/cancel"), &[], b"")
                .status,
            404
        );
    }
}

#[test]
fn paths_never_escape_the_embedded_assets() {
    let server = Server::start(&[]);
    let index = server.get("/");
    assert_eq!(index.status, 200);
    assert!(index
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(index
        .header("content-security-policy")
        .unwrap()
        .contains("default-src 'self'"));
    assert_eq!(index.header("x-content-type-options"), Some("nosniff"));
    let etag = index.header("etag").unwrap().to_string();
    let again = server.request("GET", "/", &[("If-None-Match", &etag)], b"");
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    for path in [
        "/assets/../Cargo.toml",
        "/assets/%2e%2e/Cargo.toml",
        "/assets/%2E%2E%2FCargo.toml",
        "/assets/..%2fsrc/main.rs",
        "/assets/..\\Cargo.toml",
        "/assets/%00index.html",
        "/assets/index.html%00",
        "/assets//etc/passwd",
        "/assets/",
        "/assets/missing.js",
        "/../../etc/passwd",
    ] {
        let r = server.get(path);
        assert_eq!(r.status, 404, "{path}");
        assert!(
            !r.text().contains("[package]") && !r.text().contains("root:"),
            "{path}"
        );
    }
}

#[test]
fn bad_run_requests_get_clear_errors() {
    let server = Server::start(&[]);
    let post = |ct: Option<&str>, body: &[u8]| {
        let headers: Vec<(&str, &str)> = ct.map(|c| vec![("Content-Type", c)]).unwrap_or_default();
        server.request("POST", "/api/run", &headers, body)
    };
    let r = post(None, br#"{"task":"x"}"#);
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (415, "unsupported_media_type")
    );
    let r = post(Some("text/plain"), br#"{"task":"x"}"#);
    assert_eq!(r.status, 415);
    assert!(post(Some("application/json; charset=utf-8"), br#"{"task":"x"}"#).status == 201);

    let cases: &[(&[u8], &str)] = &[
        (b"{not json", "body"),
        (b"", "body"),
        (b"\xff\xfe", "body"),
        (b"[]", "body"),
        (b"{}", "task"),
        (br#"{"task":""}"#, "task"),
        (br#"{"task":42}"#, "task"),
        (br#"{"task":"x","colour":"red"}"#, "colour"),
        (br#"{"task":"x","provider":"openai"}"#, "provider"),
        (br#"{"task":"x","provider":"skynet"}"#, "provider"),
        (
            br#"{"task":"x","models":{"painter":"m"}}"#,
            "models.painter",
        ),
        (br#"{"task":"x","agents":["writer"]}"#, "agents[0]"),
        (br#"{"task":"x","detach":1}"#, "detach"),
    ];
    for (body, field) in cases {
        let r = post(Some("application/json"), body);
        assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(body));
        assert_eq!(r.error_code(), "bad_request");
        let v = r.json();
        assert_eq!(v["error"]["field"], *field, "{v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(field),
            "{v}"
        );
    }
    let long = format!(r#"{{"task":"{}"}}"#, "x".repeat(20_001));
    let r = post(Some("application/json"), long.as_bytes());
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["field"], "task");

    let huge = format!(r#"{{"task":"{}"}}"#, "x".repeat(70_000));
    let r = post(Some("application/json"), huge.as_bytes());
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (413, "payload_too_large")
    );
    // Nothing was started by any of the bad requests.
    assert_eq!(server.get("/api/runs").json().as_array().unwrap().len(), 1);
}

#[test]
fn a_body_without_length_is_cut_at_64_kib() {
    let server = Server::start(&[]);
    let mut s = server.connect();
    let head = "POST /api/run HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    s.write_all(head.as_bytes()).unwrap();
    let chunk = vec![b'x'; 8192];
    let mut status = None;
    for _ in 0..16 {
        if s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .is_err()
            || s.write_all(&chunk).is_err()
            || s.write_all(b"\r\n").is_err()
        {
            break;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n");
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    if let Some(line) = buf.lines().next() {
        status = line.split_whitespace().nth(1).map(str::to_string);
    }
    assert_eq!(status.as_deref(), Some("413"), "{buf}");
}

#[test]
fn a_slow_client_that_never_finishes_its_headers_does_not_block_others() {
    let server = Server::start(&[]);
    let mut slow = server.connect();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        .unwrap();
    // Others are served meanwhile.
    for _ in 0..5 {
        assert_eq!(server.get("/health").status, 200);
    }
    let id = server.start_run(r#"{"task":"served while a client dawdles"}"#);
    assert_eq!(
        server.stream(&id, &[]).collect().last().unwrap().data["status"],
        "completed"
    );
    // The slow client is cut off after the 10 s header timeout.
    let started = Instant::now();
    slow.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let mut buf = Vec::new();
    let _ = slow.read_to_end(&mut buf);
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(14),
        "connection not closed, waited {waited:?}"
    );
    let text = String::from_utf8_lossy(&buf);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
}

#[test]
fn too_many_or_too_large_headers_are_refused() {
    let server = Server::start(&[]);
    let mut req = String::from("GET /health HTTP/1.1\r\nHost: t\r\n");
    for i in 0..100 {
        req.push_str(&format!("X-H{i}: v\r\n"));
    }
    req.push_str("\r\n");
    let mut s = server.connect();
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    assert!(buf.is_empty() || buf.starts_with("HTTP/1.1 431"), "{buf}");

    let big = format!(
        "GET /health HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "a".repeat(40_000)
    );
    let mut s = server.connect();
    let _ = s.write_all(big.as_bytes());
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    assert!(
        buf.is_empty() || buf.starts_with("HTTP/1.1 431"),
        "{}",
        &buf[..buf.len().min(200)]
    );
    // And the server still serves.
    assert_eq!(server.get("/health").status, 200);
}

#[test]
fn a_bad_last_event_id_is_a_400() {
    let server = Server::start(&[]);
    let id = server.start_run(r#"{"task":"x","detach":true}"#);
    let r = server.request(
        "GET",
        &format!("/api/stream/{id}"),
        &[("Last-Event-ID", "abc")],
        b"",
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["field"], "Last-Event-ID");
    let snap = server.wait_finished(&id, Duration::from_secs(10));
    let last = snap["last_event_id"].as_u64().unwrap();
    let beyond = (last + 1).to_string();
    let r = server.request(
        "GET",
        &format!("/api/stream/{id}"),
        &[("Last-Event-ID", &beyond)],
        b"",
    );
    assert_eq!(r.status, 400, "an id the run never issued");
    // The last id of a finished run: nothing left to send, so 204, which ends an
    // EventSource's reconnecting (the SSE standard); no body.
    let r = server.request(
        "GET",
        &format!("/api/stream/{id}"),
        &[("Last-Event-ID", &last.to_string())],
        b"",
    );
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(r.body.is_empty());
    // An earlier id still replays the rest, `done` last.
    let mut s = server.stream(&id, &[("Last-Event-ID", &(last - 1).to_string())]);
    assert_eq!(s.head.status, 200);
    let rest = s.collect();
    assert_eq!(rest.len(), 1, "{rest:?}");
    assert_eq!(rest[0].event, "done");
}
