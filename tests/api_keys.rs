//! Issue 25: configured credentials of any kind turn authentication on. API keys alone
//! guard every route but `/health` (Bearer, or Basic with any user name and a key as
//! the password, which is how a browser signs in); an edge in front
//! (`MESH_TRUST_PROXY`) needs credentials; the loopback default still needs none.

mod support;

use std::time::Duration;
use support::Server;

const KEY: &str = "k-secret-1";
const OTHER_KEY: &str = "k-secret-2";

/// `Basic base64("<user>:<password>")`, for the few values these tests use.
fn basic(user: &str, password: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let raw = format!("{user}:{password}").into_bytes();
    let mut out = String::new();
    for chunk in raw.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    format!("Basic {out}")
}

struct Route {
    method: &'static str,
    path: String,
    body: &'static str,
}

fn routes(run_id: &str) -> Vec<Route> {
    let get = |path: String| Route {
        method: "GET",
        path,
        body: "",
    };
    vec![
        get("/".into()),
        get("/index.html".into()),
        get("/assets/app.js".into()),
        Route {
            method: "POST",
            path: "/api/run".into(),
            body: r#"{"task":"guarded"}"#,
        },
        get(format!("/api/stream/{run_id}")),
        get("/api/runs".into()),
        get(format!("/api/runs/{run_id}")),
        Route {
            method: "POST",
            path: format!("/api/runs/{run_id}/cancel"),
            body: "",
        },
        get("/api/agents".into()),
        get("/api/models".into()),
        get("/api/providers".into()),
        get("/metrics".into()),
        get("/no/such/route".into()),
        get("/v1/models".into()),
        Route {
            method: "POST",
            path: "/v1/chat/completions".into(),
            body: r#"{"model":"agent-mesh","messages":[{"role":"user","content":"hi"}]}"#,
        },
    ]
}

/// Sends the route's request; `accepted` says the answer is expected to be the real
/// one (an event stream is then read only up to its head).
fn send(
    server: &Server,
    route: &Route,
    headers: &[(&str, &str)],
    accepted: bool,
) -> support::Response {
    let mut headers = headers.to_vec();
    headers.push(("Content-Type", "application/json"));
    if accepted && route.path.starts_with("/api/stream/") {
        // An event stream never ends by itself: read only its head.
        let s = server.stream_path(&route.path, &headers);
        return support::Response {
            status: s.head.status,
            headers: s.head.headers.clone(),
            body: Vec::new(),
        };
    }
    server.request(route.method, &route.path, &headers, route.body.as_bytes())
}

fn assert_refused(route: &Route, r: &support::Response, what: &str) {
    let at = format!("{} {} with {what}", route.method, route.path);
    assert_eq!(r.status, 401, "{at}: {}", r.text());
    let v = r.json();
    if route.path.starts_with("/v1/") {
        // OpenAI's shape, and the challenge OpenAI clients understand.
        assert_eq!(v["error"]["type"], "authentication_error", "{at}");
        assert_eq!(v["error"]["code"], "invalid_api_key", "{at}");
        assert_eq!(
            r.header("www-authenticate"),
            Some("Bearer realm=\"agent-mesh\""),
            "{at}"
        );
    } else {
        assert_eq!(v["error"]["code"], "unauthorized", "{at}");
        assert_eq!(
            r.header("www-authenticate"),
            Some("Basic realm=\"agent-mesh\", charset=\"UTF-8\""),
            "{at}"
        );
    }
    assert!(!r.text().contains("k-secret"), "{at}");
}

#[test]
fn api_keys_alone_guard_every_route_but_health() {
    // Each wrong attempt comes from a client of its own (named by the trusted edge),
    // so throttling (hardening.rs) leaves every answer a plain 401; the attempts stay
    // under the server-wide ceiling of 20 evaluated failures a second.
    let server = Server::start(&[
        ("MESH_API_KEYS", &format!("{KEY},{OTHER_KEY}")),
        ("MESH_TRUST_PROXY", "fly"),
    ]);
    assert_eq!(server.get("/health").status, 200);
    let bearer = format!("Bearer {KEY}");
    let started = server.request(
        "POST",
        "/api/run",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &bearer),
        ],
        br#"{"task":"a run to look at","detach":true}"#,
    );
    assert_eq!(started.status, 201, "{}", started.text());
    let run_id = started.json()["id"].as_str().unwrap().to_string();
    let routes = routes(&run_id);

    let mut client = 0;
    let mut as_new_client = |auth: Option<&str>| -> Vec<(&'static str, String)> {
        client += 1;
        let mut h = vec![("Fly-Client-IP", format!("192.0.2.{client}"))];
        h.extend(auth.map(|a| ("Authorization", a.to_string())));
        h
    };
    let refused = |server: &Server, route: &Route, headers: Vec<(&'static str, String)>, what| {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_refused(route, &send(server, route, &h, false), what);
    };
    let wrong_basic = basic("anyone", "k-secret-3");
    for (i, route) in routes.iter().enumerate() {
        // No credentials: a browser's first request, or a client that forgot the key.
        refused(&server, route, as_new_client(None), "no credentials");
        refused(
            &server,
            route,
            as_new_client(Some("Bearer k-secret-3")),
            "a wrong bearer key",
        );
        if i % 4 == 0 {
            refused(
                &server,
                route,
                as_new_client(Some(&wrong_basic)),
                "a wrong key as the password",
            );
        }
    }
    // Nothing refused started a run.
    let runs = server.request("GET", "/api/runs", &[("Authorization", &bearer)], b"");
    assert_eq!(
        runs.json().as_array().map(Vec::len),
        Some(1),
        "{}",
        runs.text()
    );

    // The right key, as a bearer token and as the Basic password with any user name.
    for (i, route) in routes.iter().enumerate() {
        let auth = if i % 2 == 0 {
            bearer.clone()
        } else {
            basic(&format!("user-{i}"), OTHER_KEY)
        };
        let r = send(&server, route, &[("Authorization", &auth)], true);
        let wanted: &[u16] = match (route.method, route.path.as_str()) {
            ("POST", "/api/run") => &[201],
            (_, "/no/such/route") => &[404],
            // 202 while the run is still cancelling, 200 once it has ended.
            ("POST", path) if path.ends_with("/cancel") => &[200, 202],
            _ => &[200],
        };
        assert!(
            wanted.contains(&r.status),
            "{} {}: {} {}",
            route.method,
            route.path,
            r.status,
            r.text()
        );
    }
    assert!(!server.logs().contains("k-secret"), "{}", server.logs());
}

#[test]
fn an_edge_in_front_without_credentials_stops_startup() {
    for value in ["fly", "cloudflare", "1", "2"] {
        let (code, stderr) = support::exit_of(&[("MESH_TRUST_PROXY", value)]);
        assert_eq!(code, Some(2), "{value}: {stderr}");
        for named in [
            "MESH_TRUST_PROXY",
            "MESH_USER",
            "MESH_PASS",
            "MESH_API_KEYS",
        ] {
            assert!(stderr.contains(named), "{value}: {stderr}");
        }
    }
    // Said on purpose, it serves without authentication.
    let server = Server::start(&[("MESH_TRUST_PROXY", "fly"), ("MESH_INSECURE_NO_AUTH", "1")]);
    assert_eq!(server.get("/api/runs").status, 200);
    // Keys are credentials enough behind an edge.
    let server = Server::start(&[("MESH_TRUST_PROXY", "1"), ("MESH_API_KEYS", KEY)]);
    assert_eq!(server.get("/api/runs").status, 401);
    let ok = server.request(
        "GET",
        "/api/runs",
        &[("Authorization", &format!("Bearer {KEY}"))],
        b"",
    );
    assert_eq!(ok.status, 200);
}

#[test]
fn the_loopback_default_needs_no_credentials() {
    // What `make run` starts: no variables at all (the harness only picks a free port).
    let server = Server::start(&[]);
    assert_eq!(server.get("/").status, 200);
    assert_eq!(server.get("/api/runs").status, 200);
    assert_eq!(server.get("/v1/models").status, 200);
    let id = server.start_run(r#"{"task":"local use"}"#);
    assert_eq!(
        server.wait_finished(&id, Duration::from_secs(20))["status"],
        "completed"
    );
    assert!(
        server.logs().contains("authentication is off"),
        "{}",
        server.logs()
    );
}
