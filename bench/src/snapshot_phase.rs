//! The snapshot phase: the biggest snapshot the limits allow, fetched again and again
//! by 8 clients at once, while another client polls `/health`. The run is a follow-up
//! at the end of a thread longer than the snapshot's `thread` keeps (56 turns, every
//! task 20,000 characters, the limit) whose researcher and writer each stream close to
//! the 8 MiB an answer may take. Reported: the snapshot's size and time, and what the
//! snapshot load adds to `/health`'s latency (the runtime has one thread: a snapshot
//! built in one go holds every other client for as long as it takes).

use crate::http::Client;
use crate::server::Server;
use crate::sys::{summarize, Summary};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Turns before the measured run: more than the 51 the snapshot's `thread` shows.
const THREAD_TURNS: usize = 55;
/// Tokens of the measured run's researcher and writer: about 7.6 MiB of upstream SSE
/// each, under the 8 MiB bound.
const BIG_TOKENS: u64 = 50_000;
pub const FETCHERS: usize = 8;
const LOAD_WINDOW: Duration = Duration::from_secs(3);
const HEALTH_GAP: Duration = Duration::from_millis(2);

pub struct Figures {
    pub snapshot_bytes: usize,
    /// One snapshot alone, client-side.
    pub snapshot_ms: Summary,
    pub health_idle_us: Summary,
    pub health_loaded_us: Summary,
    pub snapshots_served: usize,
}

/// A 20,000-character task; the measured run's tells the mock its shape (the earlier
/// turns, quoted in its prompts, must not: the mock reads the first `BENCH`).
fn long_task(head: String) -> String {
    let filler = "x".repeat(20_000 - head.len());
    format!("{head}{filler}")
}

fn start(client: &mut Client, task: &str, parent: Option<&str>) -> Result<String, String> {
    let parent = parent.map_or(String::new(), |p| format!(r#","parent":"{p}""#));
    let body = format!(r#"{{"task":"{task}","agents":["researcher"],"detach":true{parent}}}"#);
    let (status, text) = client
        .request("POST", "/api/run", &body)
        .map_err(|e| format!("POST /api/run: {e}"))?;
    if status != 201 {
        return Err(format!(
            "POST /api/run: {status} {}",
            &text[..text.len().min(300)]
        ));
    }
    let i = text.find("\"id\":\"").ok_or("no id in the answer")? + 6;
    Ok(text[i..i + 32].to_string())
}

fn wait_finished(client: &mut Client, id: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, text) = client
            .request("GET", &format!("/api/runs/{id}"), "")
            .map_err(|e| format!("GET run: {e}"))?;
        if status != 200 {
            return Err(format!("GET run: {status}"));
        }
        if !text.contains(r#""status":"running""#) {
            return if text.contains(r#""status":"completed""#) {
                Ok(())
            } else {
                Err(format!("run {id} did not complete"))
            };
        }
        if Instant::now() > deadline {
            return Err(format!("run {id} still running after 120 s"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn health_samples(client: &mut Client, until: impl Fn() -> bool) -> Result<Vec<f64>, String> {
    let mut samples = Vec::new();
    while !until() {
        let t = Instant::now();
        let (status, _) = client
            .request("GET", "/health", "")
            .map_err(|e| format!("/health: {e}"))?;
        if status != 200 {
            return Err(format!("/health: {status}"));
        }
        samples.push(t.elapsed().as_secs_f64() * 1e6);
        std::thread::sleep(HEALTH_GAP);
    }
    Ok(samples)
}

pub fn phase(srv: &Server, mut tag: impl FnMut() -> u64) -> Result<Figures, String> {
    let mut client = Client::new(srv.addr);
    let mut parent: Option<String> = None;
    for _ in 0..THREAD_TURNS {
        let task = long_task(format!("turn {} ", tag()));
        let id = start(&mut client, &task, parent.as_deref())?;
        wait_finished(&mut client, &id)?;
        parent = Some(id);
    }
    let shape = format!("r:n={BIG_TOKENS},gap=0 w:n={BIG_TOKENS},gap=0");
    let task = long_task(format!("BENCH {shape} tag={} ", tag()));
    let id = start(&mut client, &task, parent.as_deref())?;
    wait_finished(&mut client, &id)?;
    let path = format!("/api/runs/{id}");

    let mut alone = Vec::new();
    let mut snapshot_bytes = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let (status, text) = client
            .request("GET", &path, "")
            .map_err(|e| format!("snapshot: {e}"))?;
        if status != 200 {
            return Err(format!("snapshot: {status}"));
        }
        alone.push(t.elapsed().as_secs_f64() * 1e3);
        snapshot_bytes = text.len();
    }

    let start_at = Instant::now();
    let idle = health_samples(&mut client, || start_at.elapsed() >= LOAD_WINDOW)?;

    let stop = Arc::new(AtomicBool::new(false));
    let fetchers: Vec<_> = (0..FETCHERS)
        .map(|_| {
            let stop = stop.clone();
            let path = path.clone();
            let addr = srv.addr;
            std::thread::spawn(move || {
                let mut c = Client::new(addr);
                let mut served = 0;
                while !stop.load(Ordering::Relaxed) {
                    match c.request("GET", &path, "") {
                        Ok((200, _)) => served += 1,
                        _ => break,
                    }
                }
                served
            })
        })
        .collect();
    // Let every fetcher get going first.
    std::thread::sleep(Duration::from_millis(200));
    let start_at = Instant::now();
    let loaded = health_samples(&mut client, || start_at.elapsed() >= LOAD_WINDOW);
    stop.store(true, Ordering::Relaxed);
    let snapshots_served = fetchers.into_iter().map(|f| f.join().unwrap_or(0)).sum();
    let (mut idle, mut loaded) = (idle, loaded?);
    Ok(Figures {
        snapshot_bytes,
        snapshot_ms: summarize(&mut alone),
        health_idle_us: summarize(&mut idle),
        health_loaded_us: summarize(&mut loaded),
        snapshots_served,
    })
}
