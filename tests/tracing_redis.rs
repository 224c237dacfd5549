//! A run's trace across instances on one Redis (a real redis-server, two instances,
//! tracing on into the test OTLP collector): a run started with a `traceparent` on
//! one instance shows its trace id through the other once done, and when its instance
//! is killed mid-run, the instance that ends it `failed` still names the run's trace
//! (the stored run config keeps the parent).

mod support;

use std::time::Duration;
use support::otlp::Collector;
use support::redis::RedisServer;
use support::Server;

const REMOTE_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const LIMIT: Duration = Duration::from_secs(30);

fn instance(redis: &RedisServer, collector: &Collector, extra: &[(&str, &str)]) -> Server {
    let url = redis.url(0);
    let endpoint = collector.base_url();
    let mut env = vec![
        ("MESH_REDIS_URL", url.as_str()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
    ];
    env.extend_from_slice(extra);
    Server::start(&env)
}

/// Starts a run on `server` under a remote parent span; returns its id.
fn start_traced(server: &Server, span: &str, body: &str) -> String {
    let traceparent = format!("00-{REMOTE_TRACE}-{span}-01");
    let r = server.request(
        "POST",
        "/api/run",
        &[
            ("Content-Type", "application/json"),
            ("traceparent", &traceparent),
        ],
        body.as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["id"].as_str().expect("id").to_string()
}

#[test]
fn another_instance_shows_the_trace_id_of_a_finished_run_and_of_one_it_ends() {
    let redis = RedisServer::start();
    let collector = Collector::start(&[]);
    let slow = [("MESH_OFFLINE_DELAY_MS", "40")];
    let mut a = instance(&redis, &collector, &slow);
    let b = instance(&redis, &collector, &slow);

    let finished = start_traced(&a, "00f067aa0ba902b7", r#"{"task":"One word"}"#);
    let snap = b.wait_finished(&finished, LIMIT);
    assert_eq!(snap["status"], "completed", "{snap}");
    assert_eq!(snap["trace_id"], REMOTE_TRACE, "read through B");

    // A is killed mid-run: B ends the run `failed`, in the trace it was started in.
    let lost = start_traced(
        &a,
        "00f067aa0ba902b8",
        r#"{"task":"Explain why the sky is blue","detach":true}"#,
    );
    let mut stream = b.stream(&lost, &[]);
    let mut numbered = 0;
    while numbered < 5 {
        let e = stream.next_event().expect("stream ended early");
        numbered += usize::from(e.id.is_some());
    }
    a.signal("KILL");
    let _ = a.wait_exit(Duration::from_secs(5));
    let rest = stream.collect();
    let done = rest.last().expect("events");
    assert_eq!(done.event, "done", "{rest:?}");
    assert_eq!(done.data["status"], "failed");
    assert_eq!(done.data["trace_id"], REMOTE_TRACE, "{}", done.data);
    let snap = b.wait_finished(&lost, LIMIT);
    assert_eq!(snap["trace_id"], REMOTE_TRACE, "{snap}");
}
