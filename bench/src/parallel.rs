//! The parallel phase: wall time of a run with three independent specialists (100
//! tokens each at 10 ms), sequential vs parallel, against the run's critical path as
//! the mock measured it (the longest specialist call plus the writer's call).

use crate::http::{Client, EventStream};
use crate::mock::Mock;
use crate::server::Server;
use std::time::{Duration, Instant};

pub struct Figures {
    pub sequential_ms: f64,
    pub parallel_ms: f64,
    pub critical_path_ms: f64,
}

/// One run of `schedule` to its `done`: wall ms (POST → done at the client) and the
/// critical path ms from the mock's own records.
fn one_run(srv: &Server, mock: &Mock, tag: u64, schedule: &str) -> Result<(f64, f64), String> {
    let task =
        format!("BENCH r:n=100,gap=10000,first=0,hold=0 w:n=5,gap=0,first=0,hold=0 tag={tag}");
    let body = format!(
        r#"{{"task":"{task}","agents":["researcher","coder","analyst"],"schedule":"{schedule}","detach":true}}"#
    );
    let mut client = Client::new(srv.addr);
    let started = Instant::now();
    let (status, text) = client
        .request("POST", "/api/run", &body)
        .map_err(|e| format!("POST /api/run: {e}"))?;
    if status != 201 {
        return Err(format!("POST /api/run: {status} {text}"));
    }
    let i = text.find("\"id\":\"").ok_or("no id")? + 6;
    let id = &text[i..i + 32];
    let mut es = EventStream::open(srv.addr, "GET", &format!("/api/stream/{id}"), "")
        .map_err(|e| format!("stream: {e}"))?;
    let mut done = false;
    let end = Instant::now() + Duration::from_secs(60);
    while !done && Instant::now() < end {
        let open = es
            .read_events(&mut |_, ev| done |= ev.name == b"done")
            .map_err(|e| format!("stream read: {e}"))?;
        if !open {
            break;
        }
    }
    let wall = started.elapsed().as_secs_f64() * 1000.0;
    if !done {
        return Err("the run did not end".into());
    }
    let records = mock.shared.records_for(tag);
    let ms = |r: &crate::mock::Record| r.done_ns.saturating_sub(r.arrived_ns) as f64 / 1e6;
    let longest = records
        .iter()
        .filter(|r| !r.writer)
        .map(ms)
        .fold(0.0, f64::max);
    let writer = records
        .iter()
        .filter(|r| r.writer)
        .map(ms)
        .fold(0.0, f64::max);
    Ok((wall, longest + writer))
}

/// Three runs of each schedule; the medians.
pub fn phase(srv: &Server, mock: &Mock, mut tag: impl FnMut() -> u64) -> Result<Figures, String> {
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (mut seq, mut par, mut crit) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..3 {
        seq.push(one_run(srv, mock, tag(), "sequential")?.0);
        let (wall, path) = one_run(srv, mock, tag(), "parallel")?;
        par.push(wall);
        crit.push(path);
    }
    Ok(Figures {
        sequential_ms: median(seq),
        parallel_ms: median(par),
        critical_path_ms: median(crit),
    })
}
