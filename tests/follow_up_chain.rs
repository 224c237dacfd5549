//! A 1,000-deep follow-up chain has a bounded footprint: each run keeps a bounded
//! conversation (the last 50 ancestor ids and the history within 24,000 characters),
//! so what each follow-up adds to the server's RSS does not grow with the depth (it
//! did: every run kept every ancestor's id), and the deepest run's snapshot (`thread`
//! cut to 51 entries) stays small. The offline provider at no delay, small tasks.

mod support;

use serde_json::json;
use std::io::Read;
use std::time::{Duration, Instant};
use support::{rss_kib, Server};

const DEPTH: usize = 1000;

#[test]
fn a_thousand_deep_follow_up_chain_keeps_memory_and_snapshot_bounded() {
    let server = Server::start(&[("MESH_OFFLINE_DELAY_MS", "0")]);
    let pid = server.pid();
    let started = Instant::now();
    let mut parent: Option<String> = None;
    let mut rss_at = Vec::new();
    for depth in 1..=DEPTH {
        let mut body = json!({"task": format!("turn {depth}: and then what?")});
        if let Some(p) = &parent {
            body["parent"] = json!(p);
        }
        let id = server.start_run(&body.to_string());
        // The stream ends after `done`: read it whole, raw (parsing every event here
        // would cost more than the server's work).
        let mut s = server.connect();
        support::write_request(&mut s, "GET", &format!("/api/stream/{id}"), &[], b"");
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let text = String::from_utf8_lossy(&raw);
        let done = text.rfind("event: done").map(|at| &text[at..]);
        assert!(
            done.is_some_and(|d| d.contains(r#""status":"completed""#)),
            "turn {depth}: {done:?}"
        );
        if depth % 250 == 0 {
            rss_at.push(rss_kib(pid));
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "only {depth} turns in 180 s"
        );
        parent = Some(id);
    }
    let last = parent.unwrap();
    let r = server.get(&format!("/api/runs/{last}"));
    assert_eq!(r.status, 200);
    let size = r.body.len();
    let snapshot = r.json();
    let thread = snapshot["thread"].as_array().unwrap();
    assert_eq!(thread.len(), 51, "the last 50 ancestors and the run itself");
    assert_eq!(snapshot["thread_omitted"], DEPTH - 51);
    assert_eq!(thread.last().unwrap()["id"], last.as_str());
    // KiB each follow-up added between depths 250 and 500, and 750 and 1,000.
    let early = rss_at[1].saturating_sub(rss_at[0]) as f64 / 250.0;
    let late = rss_at[3].saturating_sub(rss_at[2]) as f64 / 250.0;
    eprintln!(
        "chain of {DEPTH} in {:.1} s: deepest snapshot {size} bytes; RSS at depth 250/500/750/1000: {rss_at:?} KiB; per follow-up {early:.1} KiB early, {late:.1} KiB late",
        started.elapsed().as_secs_f64()
    );
    assert!(
        size < 32 * 1024,
        "snapshot of the deepest run: {size} bytes"
    );
    // A follow-up costs no more deep in the thread than early on (allocator noise
    // aside); before, each one kept every ancestor's id and cost more and more.
    assert!(
        late <= early * 1.25 + 16.0,
        "{late:.1} KiB per follow-up at depth 750-1000, {early:.1} at 250-500"
    );
    assert!(
        rss_at[3] < 320 * 1024,
        "RSS {} KiB at depth {DEPTH}",
        rss_at[3]
    );
}
