//! No subscriber can pin a run: HTTP/2 event streams whose flow-control window stays
//! closed (tests/h2_zero_window.py, the Python `h2` package) are reset after the write
//! timeout, give their places back (a 17th viewer is served), count as gone for the
//! disconnect grace, and let the runs they held be freed once evicted. The caps on
//! subscribers per client and in all answer `429 too_many_subscribers`.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};
use support::mock::{openai_stream, MockProvider, Reply};
use support::{rss_kib, Server};

/// A python3 h2 client holding zero-window streams, its output lines on a channel.
struct ZeroWindowClient {
    child: Child,
    lines: Receiver<String>,
}

impl ZeroWindowClient {
    fn start(server: &Server, connections: usize, paths: &[String]) -> ZeroWindowClient {
        let mut child = Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/h2_zero_window.py"
            ))
            .arg(server.addr.ip().to_string())
            .arg(server.addr.port().to_string())
            .arg(connections.to_string())
            .args(paths)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs (scripts/test-deps.sh python installs h2)");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        ZeroWindowClient { child, lines }
    }

    /// Waits for `n` lines starting with `word` (other lines are kept in `seen`).
    fn wait_for(&self, word: &str, n: usize, within: Duration, seen: &mut Vec<String>) {
        let deadline = Instant::now() + within;
        let count = |seen: &[String]| seen.iter().filter(|l| l.starts_with(word)).count();
        while count(seen) < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    assert!(!line.starts_with("timeout"), "client gave up: {seen:?}");
                    seen.push(line);
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "{} of {n} '{word}' lines within {within:?}: {seen:?}",
                        count(seen)
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!(
                        "client ended with {} of {n} '{word}' lines: {seen:?}",
                        count(seen)
                    )
                }
            }
        }
    }
}

impl Drop for ZeroWindowClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn zero_window_streams_are_reset_and_a_17th_viewer_is_served() {
    let server = Server::start(&[("MESH_WRITE_TIMEOUT_SECS", "2")]);
    let id = server.start_run(r#"{"task":"a finished run with a full house"}"#);
    server.wait_finished(&id, Duration::from_secs(20));
    let path = format!("/api/stream/{id}");
    let client = ZeroWindowClient::start(&server, 1, &vec![path.clone(); 16]);
    let mut seen = Vec::new();
    client.wait_for("open", 16, Duration::from_secs(10), &mut seen);
    let opened = Instant::now();
    assert!(
        seen.iter().all(|l| l.ends_with(" 200")),
        "every stream answered 200: {seen:?}"
    );

    // While they are held, every place of the run is taken.
    let r = server.get(&path);
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.error_code(), "too_many_subscribers");
    assert_eq!(r.header("retry-after"), Some("2"));

    // Each is reset once the client has taken nothing for the write timeout.
    client.wait_for("reset", 16, Duration::from_secs(15), &mut seen);
    let took = opened.elapsed();
    assert!(
        took >= Duration::from_millis(1500),
        "reset too early: {took:?}"
    );
    assert!(
        !seen.iter().any(|l| l.starts_with("data")),
        "no data through a closed window: {seen:?}"
    );

    // A 17th viewer is served, the whole run.
    let deadline = Instant::now() + Duration::from_secs(5);
    let events = loop {
        let mut s = server.stream(&id, &[]);
        if s.head.status == 200 {
            break s.collect();
        }
        assert_eq!(s.head.status, 429);
        assert!(
            Instant::now() < deadline,
            "the 17th viewer is still refused"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(events.last().map(|e| e.event.as_str()), Some("done"));
}

#[test]
fn a_run_watched_only_through_a_closed_window_is_cancelled() {
    // Slow tokens keep the run going for minutes; its only subscriber takes nothing.
    let server = Server::start(&[
        ("MESH_WRITE_TIMEOUT_SECS", "1"),
        ("MESH_DISCONNECT_GRACE_SECS", "1"),
        ("MESH_OFFLINE_DELAY_MS", "500"),
    ]);
    let id = server.start_run(r#"{"task":"a long run nobody reads"}"#);
    let client = ZeroWindowClient::start(&server, 1, &[format!("/api/stream/{id}")]);
    let mut seen = Vec::new();
    client.wait_for("reset", 1, Duration::from_secs(10), &mut seen);
    // Reset counts as gone: the disconnect grace runs out and the run is cancelled.
    let snapshot = server.wait_finished(&id, Duration::from_secs(10));
    assert_eq!(snapshot["status"], "cancelled", "{snapshot}");
}

#[test]
fn subscribers_are_capped_per_client_and_in_all() {
    let server = Server::start(&[
        ("MESH_MAX_SUBSCRIBERS_PER_PEER", "3"),
        ("MESH_MAX_SUBSCRIBERS", "4"),
        // 10.0.0.x name the clients (one reverse proxy appends to X-Forwarded-For).
        ("MESH_TRUST_PROXY", "1"),
        ("MESH_INSECURE_NO_AUTH", "1"),
        ("MESH_OFFLINE_DELAY_MS", "200"),
    ]);
    let id = server.start_run(r#"{"task":"watched by many"}"#);
    let from = |ip: &str| [("X-Forwarded-For", ip.to_string())];
    let open = |ip: &str| {
        let h = from(ip);
        let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
        server.stream(&id, &h)
    };
    let a: Vec<_> = (0..3).map(|_| open("10.0.0.1")).collect();
    assert!(a.iter().all(|s| s.head.status == 200));
    let refused = server.request(
        "GET",
        &format!("/api/stream/{id}"),
        &[("X-Forwarded-For", "10.0.0.1")],
        b"",
    );
    assert_eq!(refused.status, 429);
    assert_eq!(refused.error_code(), "too_many_subscribers");
    assert!(refused.text().contains("MESH_MAX_SUBSCRIBERS_PER_PEER"));
    assert_eq!(refused.header("retry-after"), Some("2"));
    // Another client still gets in, up to the total.
    let b = open("10.0.0.2");
    assert_eq!(b.head.status, 200);
    let refused = server.request(
        "GET",
        &format!("/api/stream/{id}"),
        &[("X-Forwarded-For", "10.0.0.3")],
        b"",
    );
    assert_eq!(refused.status, 429);
    assert!(refused.text().contains("MESH_MAX_SUBSCRIBERS"));
    // A closed stream gives its place back.
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let s = open("10.0.0.3");
        if s.head.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the place was not given back");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn runs_held_by_zero_window_streams_are_freed_after_eviction() {
    const RUNS: usize = 8;
    // A writer deliverable of about 2 MB each, so a run held is plain in the RSS.
    let piece = "x".repeat(1999) + " ";
    let pieces: Vec<&str> = (0..1000).map(|_| piece.as_str()).collect();
    let deliverable = openai_stream(&pieces, None);
    let mock = MockProvider::start(move |r, _| {
        if r.method == "GET" {
            return Reply::error(200, r#"{"data":[]}"#);
        }
        match r.agent() {
            "orchestrator" => Reply::sse(&openai_stream(&[r#"{"agents":["researcher"]}"#], None)),
            "writer" => Reply::sse(&deliverable),
            _ => Reply::sse(&openai_stream(&["notes"], None)),
        }
    });
    let base = mock.url("/v1");
    let server = Server::start(&[
        ("CUSTOM_BASE_URL", &base),
        ("MESH_WRITE_TIMEOUT_SECS", "2"),
        ("MESH_RUN_TTL_SECS", "20"),
        // Measure what the process holds, not what glibc's malloc keeps cached: blocks
        // from 32 KiB up are mapped and unmapped on their own.
        (
            "GLIBC_TUNABLES",
            "glibc.malloc.mmap_threshold=32768:glibc.malloc.trim_threshold=131072",
        ),
    ]);
    let pid = server.pid();
    let wait_evicted = |ids: &[String]| {
        let deadline = Instant::now() + Duration::from_secs(90);
        while !ids
            .iter()
            .all(|id| server.get(&format!("/api/runs/{id}")).status == 404)
        {
            assert!(Instant::now() < deadline, "runs never evicted");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    // The baseline: the same work, every run read to its end by a subscriber, evicted.
    let ids: Vec<String> = (0..RUNS)
        .map(|i| {
            let id = server.start_run(&format!(r#"{{"task":"warm up {i}","detach":true}}"#));
            let events = server.stream(&id, &[]).collect();
            assert_eq!(events.last().map(|e| e.event.as_str()), Some("done"));
            id
        })
        .collect();
    wait_evicted(&ids);
    let baseline = rss_kib(pid);

    // Now every run is held by a zero-window stream, on two connections.
    let ids: Vec<String> = (0..RUNS)
        .map(|i| server.start_run(&format!(r#"{{"task":"held {i}","detach":true}}"#)))
        .collect();
    for id in &ids {
        let v = server.wait_finished(id, Duration::from_secs(30));
        assert_eq!(v["status"], "completed", "{id} evicted before it was held?");
    }
    let paths: Vec<String> = ids.iter().map(|id| format!("/api/stream/{id}")).collect();
    let client = ZeroWindowClient::start(&server, 2, &paths);
    let mut seen = Vec::new();
    client.wait_for("open", RUNS, Duration::from_secs(10), &mut seen);
    assert!(seen.iter().all(|l| l.ends_with(" 200")), "{seen:?}");
    let held = rss_kib(pid);
    // The runs really are big while they live (over 1 MB each).
    assert!(
        held > baseline + 8 * 1024,
        "held {held} KiB, baseline {baseline} KiB"
    );
    client.wait_for("reset", RUNS, Duration::from_secs(10), &mut seen);
    wait_evicted(&ids);
    // Back near the baseline with the client still connected: within 3 MiB of it,
    // where runs pinned by their streams would keep everything they took.
    let bound = baseline + 3 * 1024;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = rss_kib(pid);
        if now <= bound {
            eprintln!("RSS: baseline {baseline} KiB, held {held} KiB, after eviction {now} KiB");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "RSS {now} KiB after eviction, baseline {baseline} KiB, held {held} KiB"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
