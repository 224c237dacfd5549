//! Issue 20 item 6: a provider base URL that carries credentials never shows them, in
//! any response, event or log line; one with a query string stops startup.

mod support;

use std::time::{Duration, Instant};
use support::Server;

const PASSWORD: &str = "PASS-in-url-123";

#[test]
fn credentials_in_a_base_url_never_appear_in_any_response_or_log() {
    // A port nothing listens on: the catalog fetch and every call fail, so the URL's
    // host shows up in warnings and error events.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let url = format!("http://someone:{PASSWORD}@127.0.0.1:{port}/v1");
    let server = Server::start(&[("CUSTOM_BASE_URL", &url), ("MESH_PROVIDER", "custom")]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !server.logs().contains("catalog: custom") {
        assert!(
            Instant::now() < deadline,
            "no catalog warning: {}",
            server.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let id = server.start_run(r#"{"task":"where does this go?"}"#);
    let events = server.stream(&id, &[]).collect();
    let snapshot = server.wait_finished(&id, Duration::from_secs(60));
    assert_eq!(snapshot["status"], "failed", "{snapshot}");
    let providers = server.get("/api/providers");
    let custom = providers
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "custom")
        .cloned()
        .unwrap();
    assert_eq!(custom["base_url"], format!("http://127.0.0.1:{port}/v1"));
    let mut everything = vec![
        providers.text(),
        snapshot.to_string(),
        server.get("/api/runs").text(),
        server.get("/api/models").text(),
        server.get("/api/models?refresh=1").text(),
        server.get("/metrics").text(),
        server.logs(),
    ];
    everything.extend(events.iter().map(|e| format!("{e:?}")));
    for text in &everything {
        assert!(!text.contains(PASSWORD), "the password shows in: {text}");
        assert!(!text.contains("someone:"), "the user shows in: {text}");
    }
    // The operator is told, without the secret.
    let logs = server.logs();
    assert!(
        logs.contains("CUSTOM_BASE_URL") && logs.contains("***@127.0.0.1"),
        "{logs}"
    );
}

#[test]
fn a_base_url_with_a_query_string_or_fragment_stops_startup() {
    for (var, url) in [
        (
            "CUSTOM_BASE_URL",
            "http://u:PASS-q@127.0.0.1:9/v1?api_key=KEY-in-query",
        ),
        ("OPENAI_BASE_URL", "https://api.example/v1#KEY-in-fragment"),
    ] {
        let (code, stderr) = support::exit_of(&[(var, url)]);
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.contains(var), "{stderr}");
        assert!(stderr.contains("query string or fragment"), "{stderr}");
        assert!(
            !stderr.contains("KEY-in") && !stderr.contains("PASS-q"),
            "{stderr}"
        );
    }
}
