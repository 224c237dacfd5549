//! No connection is held forever: a client that goes silent at any stage (before its
//! first byte, inside the HTTP/2 preface, after SETTINGS, between requests, inside a
//! request body) or that stops reading an event stream loses its connection within
//! the limits, and what it pinned is freed. Run with 1 s limits
//! (`MESH_CONN_TIMEOUT_SECS`, `MESH_WRITE_TIMEOUT_SECS`).

mod support;

use std::io::{BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use support::mock::{openai_stream, MockProvider, Reply};
use support::{rss_kib, Server};

/// Within this, a 1 s stage limit must have closed the connection.
const CLOSE_WITHIN: Duration = Duration::from_secs(4);

fn quick_server(extra: &[(&str, &str)]) -> Server {
    let mut env = vec![("MESH_CONN_TIMEOUT_SECS", "1")];
    env.extend_from_slice(extra);
    Server::start(&env)
}

/// Reads (and discards) until the server closes the connection; panics if it is
/// still open after `within`. Returns how long that took.
fn wait_closed(s: &mut TcpStream, within: Duration) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        let left = within
            .checked_sub(started.elapsed())
            .unwrap_or_else(|| panic!("connection still open after {within:?}"));
        s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match s.read(&mut buf) {
            Ok(0) => return started.elapsed(),
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("connection still open after {within:?}")
            }
            // A reset is a close too.
            Err(_) => return started.elapsed(),
        }
    }
}

#[test]
fn a_connection_that_sends_nothing_is_closed() {
    let server = quick_server(&[]);
    let mut s = server.connect();
    let took = wait_closed(&mut s, CLOSE_WITHIN);
    assert!(
        took >= Duration::from_millis(800),
        "closed too early: {took:?}"
    );
}

#[test]
fn a_partial_http2_preface_is_closed() {
    let server = quick_server(&[]);
    let mut s = server.connect();
    s.write_all(b"PRI * HTTP/2.0\r\n").unwrap();
    wait_closed(&mut s, CLOSE_WITHIN);
}

#[test]
fn an_http2_connection_with_no_stream_is_closed() {
    let server = quick_server(&[]);
    let mut s = server.connect();
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
    // An empty SETTINGS frame: length 0, type 4, no flags, stream 0.
    s.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).unwrap();
    // The server answers with its own SETTINGS (it speaks HTTP/2), then, with nothing
    // more from us, says goodbye and closes.
    let mut head = [0u8; 9];
    s.read_exact(&mut head).unwrap();
    assert_eq!(head[3], 4, "a SETTINGS frame first: {head:?}");
    wait_closed(&mut s, CLOSE_WITHIN);
}

#[test]
fn an_idle_keep_alive_connection_is_closed() {
    let server = quick_server(&[]);
    let mut s = server.connect();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    let r = support::read_response(&mut reader);
    assert_eq!(r.status, 200);
    wait_closed(&mut s, CLOSE_WITHIN);
}

#[test]
fn a_stalled_request_body_gets_408() {
    let server = quick_server(&[("MESH_USER", "u"), ("MESH_PASS", "p")]);
    let mut s = server.connect();
    // Authenticated, announces 100 bytes, sends 10.
    s.write_all(
        b"POST /api/run HTTP/1.1\r\nHost: t\r\nAuthorization: Basic dTpw\r\n\
Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"task\":\"x",
    )
    .unwrap();
    let started = Instant::now();
    let r = support::read_response(&mut BufReader::new(s.try_clone().unwrap()));
    assert_eq!(r.status, 408, "{}", r.text());
    assert_eq!(r.error_code(), "request_timeout");
    assert!(started.elapsed() < CLOSE_WITHIN);
    wait_closed(&mut s, CLOSE_WITHIN);
}

#[test]
fn silent_connections_give_their_slots_back() {
    // Before: a handful of silent sockets at the cap made every request a 503 forever.
    let server = quick_server(&[("MESH_MAX_CONNECTIONS", "4")]);
    let _silent: Vec<TcpStream> = (0..4).map(|_| server.connect()).collect();
    let deadline = Instant::now() + CLOSE_WITHIN;
    loop {
        let mut s = server.connect();
        support::write_request(&mut s, "GET", "/health", &[], b"");
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        if text.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(text.starts_with("HTTP/1.1 503"), "{text}");
        assert!(
            Instant::now() < deadline,
            "still refused after {CLOSE_WITHIN:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn metric(server: &Server, name: &str) -> f64 {
    let text = server.get("/metrics").text();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} not in {text}"))
}

#[test]
fn a_subscriber_that_never_reads_is_dropped_and_the_evicted_run_freed() {
    // A writer deliverable of about 6 MB, in 3,000 chunks: more than the socket
    // buffers between the server and a client that reads nothing can hold.
    let piece = "x".repeat(1999) + " ";
    let pieces: Vec<&str> = (0..3000).map(|_| piece.as_str()).collect();
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
        ("MESH_RUN_TTL_SECS", "1"),
        ("MESH_WRITE_TIMEOUT_SECS", "1"),
        // Measure what the process holds, not what glibc's malloc keeps cached for
        // reuse: blocks from 32 KiB up are mapped and unmapped on their own (no
        // moving threshold), and free memory at the heap's top goes back at once.
        (
            "GLIBC_TUNABLES",
            "glibc.malloc.mmap_threshold=32768:glibc.malloc.trim_threshold=131072",
        ),
    ]);
    let pid = server.pid();
    let evicted = |id: &str| server.get(&format!("/api/runs/{id}")).status == 404;
    let wait_evicted = |ids: &[String]| {
        let deadline = Instant::now() + Duration::from_secs(150);
        while !ids.iter().all(|id| evicted(id)) {
            assert!(Instant::now() < deadline, "runs never evicted");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    // The baseline: the same five runs at once, each with a subscriber that reads to
    // the end, then evicted. It is the footprint of a process that has done this work
    // (its allocator grown and settled), with nothing left pinned.
    let mut readers = Vec::new();
    let mut ids = Vec::new();
    for i in 0..5 {
        let id = server.start_run(&format!(r#"{{"task":"warm up {i}"}}"#));
        let mut s = server.connect();
        support::write_request(&mut s, "GET", &format!("/api/stream/{id}"), &[], b"");
        readers.push(std::thread::spawn(move || {
            let mut all = Vec::new();
            s.read_to_end(&mut all).map(|_| all.len())
        }));
        ids.push(id);
    }
    for r in readers {
        let read = r
            .join()
            .unwrap()
            .expect("a reading subscriber gets the whole stream");
        assert!(read > 10_000_000, "only {read} bytes");
    }
    wait_evicted(&ids);
    let baseline = rss_kib(pid);

    // Five runs again, each with a subscriber that asks for the stream and never reads.
    let mut silent = Vec::new();
    let mut ids = Vec::new();
    for i in 0..5 {
        let id = server.start_run(&format!(r#"{{"task":"big {i}"}}"#));
        let mut s = server.connect();
        support::write_request(&mut s, "GET", &format!("/api/stream/{id}"), &[], b"");
        silent.push(s);
        ids.push(id);
    }
    // A bound on "ever", not a speed: on a loaded 2-core machine the five 6 MB
    // runs alone can take most of a minute.
    let deadline = Instant::now() + Duration::from_secs(150);
    let mut peak = baseline;
    loop {
        peak = peak.max(rss_kib(pid));
        let gone = ids.iter().all(|id| evicted(id));
        if gone && metric(&server, "agent_mesh_active_streams") == 0.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "runs or their silent subscribers still held: {} streams",
            metric(&server, "agent_mesh_active_streams")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The runs really were big while they lived.
    assert!(
        peak > baseline + 40 * 1024,
        "peak {peak} KiB, baseline {baseline} KiB"
    );
    // And their memory is given back once the subscribers are gone: the process is
    // back near where the same work with reading subscribers left it, having returned
    // at least two thirds of what the runs took (pinned runs return nothing).
    let near_baseline = baseline + (peak - baseline) / 3;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = rss_kib(pid);
        if now < near_baseline {
            eprintln!("RSS: baseline {baseline} KiB, peak {peak} KiB, after eviction {now} KiB");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "RSS {now} KiB after eviction, baseline {baseline} KiB, peak {peak} KiB"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Each silent client's connection was closed by the server.
    for mut s in silent {
        wait_closed(&mut s, CLOSE_WITHIN);
    }
}
