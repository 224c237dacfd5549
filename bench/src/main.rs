//! `make bench`: measures the agent-mesh release binary, as its own process, against a
//! local mock OpenAI-compatible provider (in this process, on its own threads) and raw
//! socket SSE clients — relay latency, pipeline overhead, throughput, memory, startup —
//! prints a table with each target beside its figure and writes `results.json`.
//!
//! Every loop is bounded in count and time; only loopback addresses are used.

mod http;
mod mock;
mod parallel;
mod redis;
mod redis_phase;
mod report;
mod server;
mod snapshot_phase;
mod sys;
mod tools_phase;
mod tracing_phase;

use http::{token_stamp, wait_until, Client, EventStream};
use mock::{Mock, Shape};
use report::{Goal, Row, J};
use server::{cancel_run, start_run, Server};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};
use sys::{now_ns, summarize, Summary};

/// Concurrency levels of the latency phase.
const LEVELS: [usize; 3] = [1, 10, 100];
/// Latency phase: tokens per agent call, and the pause between them (200 tokens/s per
/// stream, a fast model): 100 runs × 2 calls × 200 tokens = 40,000 samples at 20,000/s.
const LAT_TOKENS: u64 = 200;
const LAT_GAP_US: u64 = 5_000;
/// The first token waits this long, so every subscriber is connected before it.
const LAT_FIRST_US: u64 = 300_000;
/// Each level is measured this many times (direct, then relay, back to back).
const LAT_ROUNDS: usize = 3;
/// Pipeline phase: sequential runs per measurement.
const PIPELINE_RUNS: usize = 60;
/// Throughput phase: concurrent flooding runs, and the measured window.
/// 100 runs, so that even at 500,000 tokens/s no single answer nears the server's
/// 8 MiB response bound (SPEC §5.1) before the window ends.
const FLOOD_RUNS: usize = 100;
const FLOOD_WINDOW: Duration = Duration::from_secs(3);
/// Memory phase.
const MEM_RUNS: usize = 100;
const MEM_SUBS_PER_RUN: usize = 10;
const STARTUPS: usize = 7;

struct Ctx {
    bin: PathBuf,
    mock: Mock,
    next_tag: AtomicU64,
}

impl Ctx {
    fn tag(&self) -> u64 {
        self.next_tag.fetch_add(1, Ordering::Relaxed)
    }

    fn server(&self) -> Result<Server, String> {
        self.server_with(&[])
    }

    /// A server with extra environment (e.g. `MESH_REDIS_URL`), once healthy.
    fn server_with(&self, env: &[(&str, &str)]) -> Result<Server, String> {
        let s = Server::start(&self.bin, &self.mock.base_url(), env)?;
        s.wait_healthy()?;
        Ok(s)
    }
}

fn task(r: Shape, w: Shape, tag: u64) -> String {
    format!("BENCH r:{} w:{} tag={tag}", r.spec(), w.spec())
}

fn shape(n: u64, gap_us: u64, first_us: u64) -> Shape {
    Shape {
        n,
        gap_us,
        first_us,
        hold: false,
    }
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

fn main() {
    let mut repo = PathBuf::from("..");
    let mut out = PathBuf::from("results.json");
    let mut phase = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--repo" => repo = args.next().map(PathBuf::from).unwrap_or(repo),
            "--out" => out = args.next().map(PathBuf::from).unwrap_or(out),
            "--phase" => phase = args.next(),
            _ => {
                eprintln!("usage: agent-mesh-bench [--repo DIR] [--out results.json] [--phase latency|pipeline|throughput|redis|redis-throughput|redis-latency|memory|startup|parallel|snapshot|instructions|tracing|tools]");
                std::process::exit(2);
            }
        }
    }
    if let Some(p) = phase {
        // One phase alone, for profiling and quick comparisons; no files written.
        if let Err(e) = run_phase(&repo, &p) {
            eprintln!("bench failed: {e}");
            std::process::exit(1);
        }
        return;
    }
    match run(&repo, &out) {
        // A missed target is a finding, not a failure of the benchmark: exit 0.
        Ok(()) => {}
        Err(e) => {
            eprintln!("bench failed: {e}");
            std::process::exit(1);
        }
    }
}

/// Latency with tracing off, then on (every span exported to a sink answering 200):
/// per level, server CPU per token and added relay latency, and their ratios.
fn phase_tracing(ctx: &Ctx) -> Result<(), String> {
    let sink = tracing_phase::start_sink()?;
    let endpoint = format!("http://{sink}");
    let mut figures = Vec::new();
    for traced in [false, true] {
        let env: &[(&str, &str)] = if traced {
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
                ("OTEL_BSP_SCHEDULE_DELAY", "200"),
            ]
        } else {
            &[]
        };
        let srv = ctx.server_with(env)?;
        for c in LEVELS {
            let mut rounds = Vec::new();
            for _ in 0..LAT_ROUNDS {
                let d = direct_latency(ctx, c)?;
                let r = relay_latency(ctx, &srv, &srv, c)?;
                rounds.push((d, r));
            }
            let l = Level::from_rounds(c, rounds);
            println!(
                "tracing {}: {c:>3} runs: server CPU {:.2} µs/token, added p50 {:.1} p99 {:.1} µs, {} failures",
                if traced { "on " } else { "off" },
                l.cpu_us_per_token, l.added_p50, l.added_p99, l.failures
            );
            figures.push((traced, c, l.cpu_us_per_token, l.added_p50, l.added_p99));
        }
    }
    report_tracing_ratios(&figures);
    if std::process::Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        tracing_instructions(ctx, &endpoint)?;
    } else {
        println!("(valgrind not found: no instruction counts, which unlike times do not depend on the machine's load)");
    }
    Ok(())
}

/// Instructions the server executes per relayed token and per run, tracing off and
/// on (callgrind: exact and repeatable whatever else the machine runs, unlike the
/// CPU times above on a shared machine).
fn tracing_instructions(ctx: &Ctx, endpoint: &str) -> Result<(), String> {
    const RUNS: usize = 5;
    let (small, large, gap_us) = (50u64, 500u64, 1_000u64);
    let mut per_token = Vec::new();
    let mut per_run = Vec::new();
    for traced in [false, true] {
        let env: &[(&str, &str)] = if traced {
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
                ("OTEL_BSP_SCHEDULE_DELAY", "200"),
            ]
        } else {
            &[]
        };
        let tag = if traced { "on" } else { "off" };
        let mut totals = Vec::new();
        for n in [small, large] {
            totals.push(callgrind_total_with(
                ctx,
                &format!("tracing-{tag}-{n}"),
                env,
                |srv| {
                    for _ in 0..RUNS {
                        let t = task(shape(n, gap_us, 0), shape(n, gap_us, 0), ctx.tag());
                        follow_run(srv.addr, &t)?;
                    }
                    Ok(())
                },
            )?);
        }
        let tokens = (large - small) * 2 * RUNS as u64;
        per_token.push((totals[1] as f64 - totals[0] as f64) / tokens as f64);
        let mut totals = Vec::new();
        for runs in [5usize, 25] {
            totals.push(callgrind_total_with(
                ctx,
                &format!("tracing-{tag}-runs-{runs}"),
                env,
                |srv| {
                    for _ in 0..runs {
                        let t = task(shape(1, 0, 0), shape(1, 0, 0), ctx.tag());
                        follow_run(srv.addr, &t)?;
                    }
                    Ok(())
                },
            )?);
        }
        per_run.push((totals[1] as f64 - totals[0] as f64) / 20.0);
        println!(
            "tracing {tag}: {:.0} instructions per token (paced), {:.0} per run beyond its tokens",
            per_token[per_token.len() - 1],
            per_run[per_run.len() - 1]
        );
    }
    println!(
        "instructions on/off: per token {:.3}, per run {:.3} (+{:.0} per run)",
        per_token[1] / per_token[0],
        per_run[1] / per_run[0],
        per_run[1] - per_run[0]
    );
    Ok(())
}

type TracingFigure = (bool, usize, f64, f64, f64);

fn report_tracing_ratios(figures: &[TracingFigure]) {
    for c in LEVELS {
        let of = |traced: bool| {
            figures
                .iter()
                .find(|f| f.0 == traced && f.1 == c)
                .copied()
                .unwrap_or((traced, c, 0.0, 0.0, 0.0))
        };
        let (off, on) = (of(false), of(true));
        let ratio = |a: f64, b: f64| if a > 0.0 { b / a } else { f64::NAN };
        println!(
            "{c:>3} runs: on/off CPU per token {:.3}, added p50 {:+.1} µs, added p99 {:+.1} µs (target: CPU within 5 %)",
            ratio(off.2, on.2),
            on.3 - off.3,
            on.4 - off.4
        );
    }
}

fn run_phase(repo: &std::path::Path, phase: &str) -> Result<(), String> {
    let (bin, _, _) = server::binaries(repo);
    let ctx = Ctx {
        bin,
        mock: Mock::start().map_err(|e| format!("mock: {e}"))?,
        next_tag: AtomicU64::new(1),
    };
    match phase {
        "startup" => {
            let s = phase_startup(&ctx)?;
            println!(
                "startup median {:.2} ms (min {:.2}, max {:.2})",
                s.median_ms, s.min_ms, s.max_ms
            );
        }
        "memory" => {
            let m = phase_memory(&ctx)?;
            println!(
                "idle {} KiB, runs {} KiB ({:.1} KiB/run), subscribers {} KiB ({:.1} KiB/sub)",
                m.idle_kib,
                m.runs_kib,
                m.per_run_kib(),
                m.subs_kib,
                m.per_sub_kib()
            );
        }
        "latency" => {
            let srv = ctx.server()?;
            eprintln!("[bench] server pid {}", srv.pid);
            for c in LEVELS {
                let d = direct_latency(&ctx, c)?;
                let r = relay_latency(&ctx, &srv, &srv, c)?;
                println!(
                    "{c:>3} runs: added p50 {:.1} p99 {:.1} max {:.1} µs, server CPU {:.1} µs/token (relay p50 {:.1} p99 {:.1}; direct p50 {:.1} p99 {:.1}; {} failures)",
                    r.lat.p50 - d.lat.p50, r.lat.p99 - d.lat.p99, r.lat.max - d.lat.max, r.cpu_us_per_token,
                    r.lat.p50, r.lat.p99, d.lat.p50, d.lat.p99, r.failures
                );
            }
        }
        "tracing" => phase_tracing(&ctx)?,
        "tools" => {
            let t = tools_phase::phase(&ctx)?;
            println!("{}", t.summary_line());
            t.problems
                .iter()
                .take(10)
                .for_each(|p| println!("  server warning: {p}"));
        }
        "pipeline" => {
            let srv = ctx.server()?;
            let p = phase_pipeline(&ctx, &srv)?;
            println!(
                "POST→upstream p50 {:.0} µs, POST→first token p50 {:.0} µs (direct {:.0}), hand-off client p50 {:.0} µs / server p50 {:.0} µs / upstream end → next first token p50 {:.0} µs, {:.2} new upstream connections per call",
                p.post_to_upstream.p50, p.post_to_first_token.p50, p.direct_first_chunk.p50,
                p.handoff_client.p50, p.handoff_server.p50, p.handoff_total.p50, p.connections_per_call
            );
        }
        "throughput" => {
            let t = phase_throughput(&ctx, sys::clk_tck())?;
            println!(
                "{:.0} tok/s (windows {:?}), {:.3} CPU s per 100k tokens, server CPU {:.0} %, ceiling {:.0}, RSS after {} KiB for {} tokens ({:.0} B/token), ended early {}",
                t.flood.tokens_per_s, t.flood.windows.iter().map(|w| *w as u64).collect::<Vec<_>>(),
                t.flood.cpu_s_per_100k, t.flood.cpu_share * 100.0, t.direct_ceiling, t.rss_after_kib,
                t.flood.total_tokens, t.rss_after_kib as f64 * 1024.0 / t.flood.total_tokens.max(1) as f64, t.flood.ended_early
            );
        }
        "redis" | "redis-throughput" => {
            let t = redis_phase::throughput(&ctx, sys::clk_tck(), None)?;
            println!(
                "throughput: Redis {:.0} tok/s (windows {:?}, {:.3} CPU s per 100k tokens, RSS after {} KiB) / memory {:.0} tok/s (RSS after {} KiB) = {:.3}; read on a second instance {:.0} tok/s (windows {:?})",
                t.redis.tokens_per_s,
                t.redis.windows.iter().map(|w| *w as u64).collect::<Vec<_>>(),
                t.redis.cpu_s_per_100k,
                t.redis_rss_after_kib,
                t.memory.tokens_per_s,
                t.memory.rss_after_kib,
                t.ratio(),
                t.second.tokens_per_s,
                t.second.windows.iter().map(|w| *w as u64).collect::<Vec<_>>()
            );
            t.problems
                .iter()
                .take(10)
                .for_each(|p| println!("  server warning: {p}"));
            if phase == "redis" {
                print_redis_latency(&ctx)?;
            }
        }
        "redis-latency" => print_redis_latency(&ctx)?,
        "instructions" => phase_instructions(&ctx)?,
        "snapshot" => {
            let srv = ctx.server()?;
            let f = snapshot_phase::phase(&srv, || ctx.tag())?;
            println!(
                "snapshot {} bytes, {:.1} ms alone (p50; max {:.1}); /health idle p50 {:.0} p99 {:.0} max {:.0} µs, with {} snapshot fetchers p50 {:.0} p99 {:.0} max {:.0} µs ({} snapshots served)",
                f.snapshot_bytes, f.snapshot_ms.p50, f.snapshot_ms.max,
                f.health_idle_us.p50, f.health_idle_us.p99, f.health_idle_us.max,
                snapshot_phase::FETCHERS,
                f.health_loaded_us.p50, f.health_loaded_us.p99, f.health_loaded_us.max,
                f.snapshots_served
            );
        }
        "parallel" => {
            let srv = ctx.server()?;
            let f = parallel::phase(&srv, &ctx.mock, || ctx.tag())?;
            println!(
                "three independent specialists (100 tokens at 10 ms): sequential {:.0} ms, parallel {:.0} ms, critical path {:.0} ms (parallel {:+.1} % of it)",
                f.sequential_ms,
                f.parallel_ms,
                f.critical_path_ms,
                (f.parallel_ms / f.critical_path_ms - 1.0) * 100.0
            );
        }
        other => return Err(format!("unknown phase {other}")),
    }
    Ok(())
}

fn print_redis_latency(ctx: &Ctx) -> Result<(), String> {
    let l = redis_phase::latency(ctx)?;
    for x in &l.cross {
        println!(
            "{:>3} runs: second instance added p50 {:.1} p99 {:.1} µs (p99 rounds {:?}, {} failures); CPU per token A {:.1} + B {:.1} µs",
            x.runs, x.added_p50, x.added_p99,
            x.added_p99_rounds.iter().map(|v| *v as i64).collect::<Vec<_>>(), x.failures,
            x.cpu_us_per_token, x.reader_cpu_us_per_token
        );
    }
    for s in &l.same {
        println!(
            "{:>3} runs: same instance added p50 {:.1} p99 {:.1} µs; A's CPU per token {:.1} µs",
            s.runs, s.added_p50, s.added_p99, s.cpu_us_per_token
        );
    }
    l.problems
        .iter()
        .take(10)
        .for_each(|p| println!("  server warning: {p}"));
    Ok(())
}

fn run(repo: &std::path::Path, out: &std::path::Path) -> Result<(), String> {
    let bench_started = Instant::now();
    let (bin, size_bin, size_label) = server::binaries(repo);
    if !bin.exists() {
        return Err(format!(
            "{} not found: run `cargo build --release` first",
            bin.display()
        ));
    }
    let ctx = Ctx {
        bin,
        mock: Mock::start().map_err(|e| format!("mock: {e}"))?,
        next_tag: AtomicU64::new(1),
    };
    let load_before = sys::loadavg();
    let clk = sys::clk_tck();
    let mut rows: Vec<Row> = Vec::new();
    let mut json: Vec<(&str, J)> = Vec::new();

    eprintln!("[bench] startup ({STARTUPS} starts)");
    let startup = phase_startup(&ctx)?;
    let size = std::fs::metadata(&size_bin).map(|m| m.len()).unwrap_or(0);

    eprintln!(
        "[bench] memory (idle, {MEM_RUNS} waiting runs, {} idle subscribers)",
        MEM_RUNS * MEM_SUBS_PER_RUN
    );
    let mem = phase_memory(&ctx)?;

    eprintln!("[bench] relay latency at {LEVELS:?} concurrent runs, {LAT_ROUNDS} rounds");
    let srv = ctx.server()?;
    let mut rounds: Vec<Vec<(Latency, Latency)>> = LEVELS.iter().map(|_| Vec::new()).collect();
    let noise_start = sys::Noise::start(srv.pid);
    for _ in 0..LAT_ROUNDS {
        for (i, c) in LEVELS.iter().enumerate() {
            let direct = direct_latency(&ctx, *c)?;
            let relay = relay_latency(&ctx, &srv, &srv, *c)?;
            rounds[i].push((direct, relay));
        }
    }
    let noise = noise_start.other_share(srv.pid);
    let lat: Vec<Level> = LEVELS
        .iter()
        .zip(rounds)
        .map(|(c, r)| Level::from_rounds(*c, r))
        .collect();

    eprintln!("[bench] pipeline overhead ({PIPELINE_RUNS} sequential runs each)");
    let pipe = phase_pipeline(&ctx, &srv)?;
    eprintln!("[bench] parallel specialists (3 runs per schedule)");
    let par = parallel::phase(&srv, &ctx.mock, || ctx.tag())?;
    let problems_lat = srv.problems.lock().map(|p| p.clone()).unwrap_or_default();
    drop(srv);
    eprintln!(
        "[bench] tools ({} runs with a tool round, {} without)",
        tools_phase::TOOL_RUNS,
        tools_phase::TOOL_RUNS
    );
    let tools = tools_phase::phase(&ctx)?;

    eprintln!(
        "[bench] throughput ({FLOOD_RUNS} flooding runs, {} s window)",
        FLOOD_WINDOW.as_secs()
    );
    let tp = phase_throughput(&ctx, clk)?;
    // Right after the memory store's flood, so the ratio compares neighbours. A
    // failure here (no redis-server, say) leaves the other figures standing: they
    // are reported, and the bench exits 1 at the end.
    let redis = redis_phase::phase(
        &ctx,
        clk,
        Some(redis_phase::Baseline {
            tokens_per_s: tp.flood.tokens_per_s,
            rss_after_kib: tp.rss_after_kib,
        }),
    );
    if let Err(e) = &redis {
        eprintln!("[bench] redis phase FAILED: {e}");
    }
    let load_after = sys::loadavg();

    // --- the table ---
    for l in &lat {
        let c = &l.runs;
        let (direct, relay) = (&l.direct, &l.relay);
        let note = format!(
            "relay {} / direct {} µs pooled, {} samples{}",
            report::fmt_num(relay.p99),
            report::fmt_num(direct.p99),
            relay.n,
            if l.failures > 0 {
                format!(", {} runs FAILED", l.failures)
            } else {
                String::new()
            }
        );
        rows.push(Row {
            section: "relay latency",
            metric: format!("added p50 at {c} runs"),
            value: l.added_p50,
            unit: "µs",
            goal: Goal::None,
            note: format!(
                "relay {} / direct {} µs pooled",
                report::fmt_num(relay.p50),
                report::fmt_num(direct.p50)
            ),
        });
        rows.push(Row {
            section: "relay latency",
            metric: format!("added p99 at {c} runs"),
            value: l.added_p99,
            unit: "µs",
            goal: if *c == 100 {
                Goal::Below(1000.0)
            } else {
                Goal::None
            },
            note,
        });
        rows.push(Row {
            section: "relay latency",
            metric: format!("added max at {c} runs"),
            value: l.added_max,
            unit: "µs",
            goal: Goal::None,
            note: format!(
                "relay {} / direct {} µs pooled",
                report::fmt_num(relay.max),
                report::fmt_num(direct.max)
            ),
        });
        if *c == 100 {
            rows.push(Row {
                section: "relay latency",
                metric: format!("server CPU per token at {c} runs"),
                value: l.cpu_us_per_token,
                unit: "µs",
                goal: Goal::None,
                note: "one token per upstream chunk; schedstat ns / tokens".into(),
            });
        }
    }
    rows.push(Row {
        section: "relay latency",
        metric: "noise: other processes' CPU during the phase".into(),
        value: noise * 100.0,
        unit: "%",
        goal: Goal::None,
        note: format!(
            "of all {} CPUs: /proc/stat busy minus the bench and the server; coarse, ≈ 0 on an otherwise quiet machine",
            sys::nproc()
        ),
    });
    if let Ok(r) = &redis {
        rows.extend(r.latency.latency_rows());
    }
    rows.push(Row {
        section: "pipeline",
        metric: "POST /api/run → upstream request (p50)".into(),
        value: pipe.post_to_upstream.p50,
        unit: "µs",
        goal: Goal::None,
        note: format!("p99 {} µs", report::fmt_num(pipe.post_to_upstream.p99)),
    });
    rows.push(Row {
        section: "pipeline",
        metric: "POST /api/run → first token event (p50)".into(),
        value: pipe.post_to_first_token.p50,
        unit: "µs",
        goal: Goal::None,
        note: format!(
            "p99 {} µs; instant upstream; includes the client's stream connect; direct request→first chunk {} µs",
            report::fmt_num(pipe.post_to_first_token.p99),
            report::fmt_num(pipe.direct_first_chunk.p50)
        ),
    });
    rows.push(Row {
        section: "pipeline",
        metric: "last token → next agent's first token (p50)".into(),
        value: pipe.handoff_client.p50,
        unit: "µs",
        goal: Goal::None,
        note: format!(
            "p99 {} µs at the client; upstream [DONE] → next request {} µs (p50)",
            report::fmt_num(pipe.handoff_client.p99),
            report::fmt_num(pipe.handoff_server.p50)
        ),
    });
    rows.push(Row {
        section: "pipeline",
        metric: "upstream end → next agent's first token at the client (p50)".into(),
        value: pipe.handoff_total.p50,
        unit: "µs",
        goal: Goal::None,
        note: format!(
            "p99 {} µs; the hand-off against the upstream's clock, so a faster relay of the last token does not make it look longer",
            report::fmt_num(pipe.handoff_total.p99)
        ),
    });
    rows.push(Row {
        section: "pipeline",
        metric: "new upstream connections per call".into(),
        value: pipe.connections_per_call,
        unit: "",
        goal: Goal::None,
        note: "accepted by the mock / chat calls, sequential runs (0 = always reused)".into(),
    });
    rows.push(Row {
        section: "throughput",
        metric: format!("tokens relayed per second ({FLOOD_RUNS} runs)"),
        value: tp.flood.tokens_per_s,
        unit: "tok/s",
        goal: Goal::AtLeast(100_000.0),
        note: format!(
            "server CPU {:.0} % of one core; harness ceiling {} tok/s direct",
            tp.flood.cpu_share * 100.0,
            report::fmt_num(tp.direct_ceiling)
        ),
    });
    rows.push(Row {
        section: "throughput",
        metric: format!("CPU per 100k tokens ({FLOOD_RUNS} runs)"),
        value: tp.flood.cpu_s_per_100k,
        unit: "s",
        goal: Goal::None,
        note: "utime+stime from /proc/PID/stat over the window".into(),
    });
    if let Ok(r) = &redis {
        rows.extend(r.throughput.throughput_rows());
    }
    rows.push(Row {
        section: "parallel",
        metric: "3 independent specialists, sequential: wall time".into(),
        value: par.sequential_ms,
        unit: "ms",
        goal: Goal::None,
        note: "100 tokens at 10 ms each; POST → done at the client; median of 3".into(),
    });
    rows.push(Row {
        section: "parallel",
        metric: "3 independent specialists, parallel: wall time over the critical path".into(),
        value: (par.parallel_ms / par.critical_path_ms - 1.0) * 100.0,
        unit: "%",
        goal: Goal::Below(5.0),
        note: format!(
            "parallel {:.0} ms, critical path {:.0} ms (longest specialist + writer, the mock's clock)",
            par.parallel_ms, par.critical_path_ms
        ),
    });
    rows.extend(tools.rows());
    rows.push(Row {
        section: "memory",
        metric: "RSS idle".into(),
        value: mem.idle_kib as f64 / 1024.0,
        unit: "MB",
        goal: Goal::Below(10.0),
        note: "VmRSS after /health, MiB".into(),
    });
    rows.push(Row {
        section: "memory",
        metric: format!("RSS with {MEM_RUNS} waiting runs"),
        value: mem.runs_kib as f64 / 1024.0,
        unit: "MB",
        goal: Goal::None,
        note: format!("per run {} KB", report::fmt_num(mem.per_run_kib())),
    });
    rows.push(Row {
        section: "memory",
        metric: format!("RSS with {} idle subscribers", mem.subscribers),
        value: mem.subs_kib as f64 / 1024.0,
        unit: "MB",
        goal: Goal::None,
        note: format!("{MEM_RUNS} runs × {MEM_SUBS_PER_RUN}"),
    });
    rows.push(Row {
        section: "memory",
        metric: "per idle subscriber".into(),
        value: mem.per_sub_kib(),
        unit: "KB",
        goal: Goal::Below(40.0),
        note: "(RSS with subscribers − RSS with runs) / subscribers".into(),
    });
    rows.push(Row {
        section: "memory",
        metric: "RSS with 100 active runs (streaming)".into(),
        value: lat
            .iter()
            .find(|l| l.runs == 100)
            .map_or(0.0, |l| l.max_rss_kib as f64 / 1024.0),
        unit: "MB",
        goal: Goal::None,
        note: "peak during the 100-run latency phase".into(),
    });
    rows.push(Row {
        section: "startup",
        metric: "process start → /health answers (median)".into(),
        value: startup.median_ms,
        unit: "ms",
        goal: Goal::Below(50.0),
        note: format!(
            "of {STARTUPS}; min {:.1} ms, max {:.1} ms",
            startup.min_ms, startup.max_ms
        ),
    });
    rows.push(Row {
        section: "startup",
        metric: "binary size".into(),
        value: size as f64 / (1024.0 * 1024.0),
        unit: "MB",
        goal: Goal::None,
        note: size_label.to_string(),
    });

    let machine = format!(
        "{} × {} (nproc {}), load average {} before / {} after",
        sys::nproc(),
        sys::cpu_model(),
        sys::nproc(),
        load_before,
        load_after
    );
    let table = report::text_table(&rows);
    println!("\nagent-mesh benchmark — {machine}\n");
    println!("{table}");
    let mut problems = problems_lat;
    problems.extend(tp.problems.clone());
    problems.extend(tools.problems.clone());
    match &redis {
        Ok(r) => problems.extend(r.problems().cloned()),
        Err(e) => println!("redis phase FAILED, no Redis rows: {e}"),
    }
    if !problems.is_empty() {
        println!("server warnings during the run:");
        for p in problems.iter().take(10) {
            println!("  {p}");
        }
    }
    let with_target = rows.iter().filter(|r| !r.verdict().is_empty()).count();
    let met = rows.iter().filter(|r| r.verdict() == "met").count();
    println!("{met} of {with_target} targets met");
    let elapsed = bench_started.elapsed().as_secs_f64();
    println!("bench took {elapsed:.1} s");

    json.push((
        "machine",
        J::obj(vec![
            ("nproc", J::Num(sys::nproc() as f64)),
            ("cpu_model", J::Str(sys::cpu_model())),
            ("loadavg_before", J::Str(load_before)),
            ("loadavg_after", J::Str(load_after)),
        ]),
    ));
    json.push(("rows", J::Arr(rows.iter().map(Row::to_json).collect())));
    json.push(("latency", J::Arr(lat.iter().map(level_json).collect())));
    json.push(("noise_other_cpu_share_during_latency", J::Num(noise)));
    json.push((
        "redis",
        match &redis {
            Ok(r) => r.to_json(),
            Err(e) => J::obj(vec![("error", J::Str(e.clone()))]),
        },
    ));
    json.push((
        "pipeline_us",
        J::obj(vec![
            (
                "new_upstream_connections_per_call",
                J::Num(pipe.connections_per_call),
            ),
            (
                "handoff_upstream_end_to_next_first_token_at_client",
                summary_json(&pipe.handoff_total),
            ),
            (
                "post_to_upstream_request",
                summary_json(&pipe.post_to_upstream),
            ),
            (
                "post_to_first_token",
                summary_json(&pipe.post_to_first_token),
            ),
            (
                "direct_request_to_first_chunk",
                summary_json(&pipe.direct_first_chunk),
            ),
            ("handoff_at_client", summary_json(&pipe.handoff_client)),
            (
                "handoff_upstream_done_to_next_request",
                summary_json(&pipe.handoff_server),
            ),
        ]),
    ));
    json.push(("tools", tools.to_json()));
    json.push((
        "throughput",
        J::obj(vec![
            ("flood_runs", J::Num(FLOOD_RUNS as f64)),
            ("tokens_per_s", J::Num(tp.flood.tokens_per_s)),
            (
                "windows_tokens_per_s",
                J::Arr(tp.flood.windows.iter().map(|w| J::Num(*w)).collect()),
            ),
            ("cpu_s_per_100k_tokens", J::Num(tp.flood.cpu_s_per_100k)),
            ("server_cpu_share", J::Num(tp.flood.cpu_share)),
            ("streams_ended_early", J::Num(tp.flood.ended_early as f64)),
            ("harness_ceiling_tokens_per_s", J::Num(tp.direct_ceiling)),
            ("rss_after_kib", J::Num(tp.rss_after_kib as f64)),
        ]),
    ));
    json.push((
        "memory_kib",
        J::obj(vec![
            ("idle", J::Num(mem.idle_kib as f64)),
            ("with_runs", J::Num(mem.runs_kib as f64)),
            ("with_subscribers", J::Num(mem.subs_kib as f64)),
            ("runs", J::Num(MEM_RUNS as f64)),
            ("subscribers", J::Num(mem.subscribers as f64)),
            ("per_run", J::Num(mem.per_run_kib())),
            ("per_subscriber", J::Num(mem.per_sub_kib())),
        ]),
    ));
    json.push((
        "startup_ms",
        J::obj(vec![
            ("median", J::Num(startup.median_ms)),
            ("min", J::Num(startup.min_ms)),
            ("max", J::Num(startup.max_ms)),
            ("listening_line_median", J::Num(startup.listening_ms)),
        ]),
    ));
    json.push((
        "binary",
        J::obj(vec![
            ("path", J::Str(size_bin.display().to_string())),
            ("kind", J::Str(size_label.to_string())),
            ("bytes", J::Num(size as f64)),
        ]),
    ));
    json.push(("bench_seconds", J::Num(elapsed)));
    let mut text = String::new();
    J::obj(json).write(&mut text, 0);
    text.push('\n');
    std::fs::write(out, text).map_err(|e| format!("writing {}: {e}", out.display()))?;
    let redis_failed = match &redis {
        Ok(_) => String::new(),
        Err(e) => format!("Redis phase FAILED, no Redis rows: {e}\n\n"),
    };
    let md = format!(
        "Machine: {machine}.\n\n{redis_failed}{}",
        report::markdown_table(&rows)
    );
    let md_path = out.with_extension("md");
    std::fs::write(&md_path, md).map_err(|e| format!("writing {}: {e}", md_path.display()))?;
    println!("wrote {} and {}", out.display(), md_path.display());
    redis.map(|_| ()).map_err(|e| format!("redis phase: {e}"))
}

/// One latency level in `results.json` (the memory store's and the Redis phase's).
fn level_json(l: &Level) -> J {
    J::obj(vec![
        ("runs", J::Num(l.runs as f64)),
        ("rounds", J::Num(LAT_ROUNDS as f64)),
        ("direct_us_pooled", summary_json(&l.direct)),
        ("relay_us_pooled", summary_json(&l.relay)),
        ("added_p50_us_median_of_rounds", J::Num(l.added_p50)),
        ("added_p99_us_median_of_rounds", J::Num(l.added_p99)),
        ("added_max_us_median_of_rounds", J::Num(l.added_max)),
        (
            "added_p99_us_per_round",
            J::Arr(l.added_p99_rounds.iter().map(|v| J::Num(*v)).collect()),
        ),
        ("server_cpu_us_per_token", J::Num(l.cpu_us_per_token)),
        ("reader_cpu_us_per_token", J::Num(l.reader_cpu_us_per_token)),
        ("excluded_replayed_tokens", J::Num(l.excluded as f64)),
        ("failed_runs", J::Num(l.failures as f64)),
    ])
}

fn summary_json(s: &Summary) -> J {
    J::obj(vec![
        ("n", J::Num(s.n as f64)),
        ("p50", J::Num(s.p50)),
        ("p99", J::Num(s.p99)),
        ("max", J::Num(s.max)),
        ("mean", J::Num(s.mean)),
    ])
}

// ---------------------------------------------------------------- instructions

/// Instructions the server executes per relayed token, counted by callgrind: exact
/// and repeatable where times on a shared machine are not (user space only; the
/// kernel's share of each read and write is not counted). Each mode runs twice with
/// a small and a large answer, in fresh processes; the difference over the difference
/// in tokens is the cost of one more token, with startup and per-run costs cancelled.
fn phase_instructions(ctx: &Ctx) -> Result<(), String> {
    const RUNS: usize = 5;
    // paced: one token per upstream chunk (1 ms apart, slower than callgrind needs
    // per token); flood: as fast as the socket takes them, 16 per write.
    // fanout: paced, with 10 subscribers on every run (costs per subscriber show).
    for (mode, gap_us, small, large, subscribers) in [
        ("paced", 1_000u64, 50u64, 500u64, 1usize),
        ("flood", 0, 200, 2_000, 1),
        ("fanout", 1_000, 50, 500, 10),
    ] {
        let mut totals = Vec::new();
        for n in [small, large] {
            totals.push(callgrind_total(ctx, &format!("{mode}-{n}"), |srv| {
                for _ in 0..RUNS {
                    let t = task(shape(n, gap_us, 0), shape(n, gap_us, 0), ctx.tag());
                    follow_run_with(srv.addr, &t, subscribers - 1)?;
                }
                Ok(())
            })?);
        }
        let tokens = (large - small) * 2 * RUNS as u64;
        let per_token = (totals[1] as f64 - totals[0] as f64) / tokens as f64;
        println!(
            "{mode} ({subscribers} subscriber{}): {per_token:.0} instructions per token ({} vs {} Ir over {tokens} more tokens)",
            if subscribers == 1 { "" } else { "s" },
            totals[1], totals[0]
        );
    }
    // per run: runs of one token per agent, 5 then 25 in fresh processes; the
    // difference over 20 runs is what a run costs beyond its tokens: the POST, the
    // stream's set-up, each agent's request and hand-off, the `done`.
    let mut totals = Vec::new();
    for runs in [5usize, 25] {
        totals.push(callgrind_total(ctx, &format!("runs-{runs}"), |srv| {
            for _ in 0..runs {
                let t = task(shape(1, 0, 0), shape(1, 0, 0), ctx.tag());
                follow_run(srv.addr, &t)?;
            }
            Ok(())
        })?);
    }
    println!(
        "per run (researcher and writer, one token each): {:.0} instructions ({} vs {} Ir over 20 more runs)",
        (totals[1] as f64 - totals[0] as f64) / 20.0,
        totals[1],
        totals[0]
    );
    Ok(())
}

/// Total instructions of one server process under callgrind, from start to exit,
/// while `drive` talks to it.
fn callgrind_total(
    ctx: &Ctx,
    label: &str,
    drive: impl FnOnce(&Server) -> Result<(), String>,
) -> Result<u64, String> {
    callgrind_total_with(ctx, label, &[], drive)
}

/// [`callgrind_total`] of a server started with `env` added.
fn callgrind_total_with(
    ctx: &Ctx,
    label: &str,
    env: &[(&str, &str)],
    drive: impl FnOnce(&Server) -> Result<(), String>,
) -> Result<u64, String> {
    let out = std::env::temp_dir().join(format!(
        "agent-mesh-bench-{}-{label}.callgrind",
        std::process::id()
    ));
    let wrapper = [
        "valgrind".to_string(),
        "--tool=callgrind".to_string(),
        format!("--callgrind-out-file={}", out.display()),
    ];
    let srv = Server::start_wrapped(&ctx.bin, &ctx.mock.base_url(), env, &wrapper)?;
    srv.wait_healthy()?;
    drive(&srv)?;
    srv.terminate(Duration::from_secs(60))?;
    let text = std::fs::read_to_string(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    // BENCH_KEEP_CALLGRIND=1 keeps the profile for callgrind_annotate.
    if std::env::var_os("BENCH_KEEP_CALLGRIND").is_some() {
        eprintln!("[bench] kept {}", out.display());
    } else {
        let _ = std::fs::remove_file(&out);
    }
    text.lines()
        .find_map(|l| {
            l.strip_prefix("totals: ")
                .or_else(|| l.strip_prefix("summary: "))
        })
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| "no totals in the callgrind output".to_string())
}

// ---------------------------------------------------------------- startup

struct Startup {
    median_ms: f64,
    min_ms: f64,
    max_ms: f64,
    listening_ms: f64,
}

fn phase_startup(ctx: &Ctx) -> Result<Startup, String> {
    let mut total = Vec::new();
    let mut listening = Vec::new();
    for _ in 0..STARTUPS {
        let t0 = Instant::now();
        let s = Server::start(&ctx.bin, &ctx.mock.base_url(), &[])?;
        s.wait_healthy()?;
        total.push(t0.elapsed().as_secs_f64() * 1000.0);
        listening.push(s.listening_after.as_secs_f64() * 1000.0);
    }
    let mut t = total.clone();
    let s = summarize(&mut t);
    Ok(Startup {
        median_ms: s.p50,
        min_ms: t[0],
        max_ms: s.max,
        listening_ms: sys::median(listening),
    })
}

// ---------------------------------------------------------------- memory

struct Memory {
    idle_kib: u64,
    runs_kib: u64,
    subs_kib: u64,
    subscribers: usize,
}

impl Memory {
    fn per_run_kib(&self) -> f64 {
        (self.runs_kib as f64 - self.idle_kib as f64) / MEM_RUNS as f64
    }
    fn per_sub_kib(&self) -> f64 {
        if self.subscribers == 0 {
            return 0.0;
        }
        (self.subs_kib as f64 - self.runs_kib as f64) / self.subscribers as f64
    }
}

fn settled_rss(s: &Server) -> u64 {
    std::thread::sleep(Duration::from_millis(300));
    let mut v: Vec<f64> = (0..3)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(50));
            s.rss_kib() as f64
        })
        .collect();
    summarize(&mut v).p50 as u64
}

fn phase_memory(ctx: &Ctx) -> Result<Memory, String> {
    let srv = ctx.server()?;
    // Let the background catalog fetch finish first.
    std::thread::sleep(Duration::from_millis(200));
    let idle_kib = settled_rss(&srv);

    let held_before = ctx.mock.shared.held.load(Ordering::SeqCst);
    let mut client = Client::new(srv.addr);
    let mut ids = Vec::new();
    let hold = Shape {
        n: 2,
        gap_us: 0,
        first_us: 0,
        hold: true,
    };
    for _ in 0..MEM_RUNS {
        ids.push(start_run(
            &mut client,
            &task(hold, shape(1, 0, 0), ctx.tag()),
        )?);
    }
    if !wait_until(Duration::from_secs(15), Duration::from_millis(10), || {
        ctx.mock.shared.held.load(Ordering::SeqCst) >= held_before + MEM_RUNS
    }) {
        return Err("the waiting runs did not all reach the mock".into());
    }
    let runs_kib = settled_rss(&srv);

    let mut subs: Vec<EventStream> = Vec::new();
    for id in &ids {
        for _ in 0..MEM_SUBS_PER_RUN {
            let mut es = EventStream::open(srv.addr, "GET", &format!("/api/stream/{id}"), "")
                .map_err(|e| format!("subscribe: {e}"))?;
            let _ = es.sock.set_read_timeout(Some(Duration::from_secs(5)));
            // Read the replay up to the first token, then leave the stream idle.
            let mut seen = false;
            let mut names = Vec::new();
            for _ in 0..20 {
                let open = es
                    .read_events(&mut |_, ev| {
                        seen |= ev.name == b"token";
                        names.push(String::from_utf8_lossy(ev.name).to_string());
                    })
                    .map_err(|e| format!("subscriber {} read: {e}; saw {names:?}", subs.len()))?;
                if seen || !open {
                    break;
                }
            }
            subs.push(es);
        }
    }
    let subscribers = subs.len();
    let subs_kib = settled_rss(&srv);

    ctx.mock.shared.release_all();
    for mut es in subs {
        let _ = es.sock.set_read_timeout(Some(Duration::from_secs(2)));
        for _ in 0..50 {
            let mut done = false;
            match es.read_events(&mut |_, ev| done |= ev.name == b"done") {
                Ok(true) if !done => continue,
                _ => break,
            }
        }
    }
    for id in &ids {
        cancel_run(&mut client, id);
    }
    Ok(Memory {
        idle_kib,
        runs_kib,
        subs_kib,
        subscribers,
    })
}

// ---------------------------------------------------------------- latency

#[derive(Clone)]
struct Latency {
    samples: Vec<f64>,
    /// Server CPU (utime+stime) per token relayed, µs; 0 for the direct clients.
    cpu_us_per_token: f64,
    /// The same of the instance the streams were read from, when another (0 if not).
    reader_cpu_us_per_token: f64,
    lat: Summary,
    excluded: usize,
    failures: usize,
    max_rss_kib: u64,
}

/// One concurrency level over every round: the added latency of each round is relay
/// minus direct measured back to back, and the figure reported is the median round,
/// so one round disturbed by other work on the machine does not decide it.
struct Level {
    runs: usize,
    direct: Summary,
    relay: Summary,
    cpu_us_per_token: f64,
    reader_cpu_us_per_token: f64,
    added_p50: f64,
    added_p99: f64,
    added_max: f64,
    added_p99_rounds: Vec<f64>,
    excluded: usize,
    failures: usize,
    max_rss_kib: u64,
}

impl Level {
    fn from_rounds(runs: usize, rounds: Vec<(Latency, Latency)>) -> Level {
        let med = |f: &dyn Fn(&Summary) -> f64| {
            sys::median(rounds.iter().map(|(d, r)| f(&r.lat) - f(&d.lat)).collect())
        };
        let added_p99_rounds = rounds.iter().map(|(d, r)| r.lat.p99 - d.lat.p99).collect();
        let mut direct: Vec<f64> = rounds
            .iter()
            .flat_map(|(d, _)| d.samples.iter().copied())
            .collect();
        let mut relay: Vec<f64> = rounds
            .iter()
            .flat_map(|(_, r)| r.samples.iter().copied())
            .collect();
        Level {
            runs,
            cpu_us_per_token: sys::median(rounds.iter().map(|(_, r)| r.cpu_us_per_token).collect()),
            reader_cpu_us_per_token: sys::median(
                rounds
                    .iter()
                    .map(|(_, r)| r.reader_cpu_us_per_token)
                    .collect(),
            ),
            added_p50: med(&|s| s.p50),
            added_p99: med(&|s| s.p99),
            added_max: med(&|s| s.max),
            added_p99_rounds,
            direct: summarize(&mut direct),
            relay: summarize(&mut relay),
            excluded: rounds.iter().map(|(_, r)| r.excluded).sum(),
            failures: rounds.iter().map(|(d, r)| d.failures + r.failures).sum(),
            // The first round's: later rounds also hold the finished runs before them.
            max_rss_kib: rounds.first().map_or(0, |(_, r)| r.max_rss_kib),
        }
    }
}

/// When stream `i` of `c` sends its first token: after every subscriber is connected,
/// with the streams' phases spread evenly over one gap, as independent users' would
/// be (started in lockstep, all `c` tokens would arrive in one burst every gap).
fn stagger(i: usize, c: usize) -> u64 {
    LAT_FIRST_US + (i as u64 * LAT_GAP_US) / c as u64
}

/// Clients reading the mock directly: the same path minus agent-mesh.
fn direct_latency(ctx: &Ctx, c: usize) -> Result<Latency, String> {
    let barrier = Barrier::new(c);
    let samples = Mutex::new(Vec::new());
    let failures = AtomicU64::new(0);
    std::thread::scope(|s| {
        for i in 0..c {
            let r = shape(LAT_TOKENS, LAT_GAP_US, stagger(i, c));
            let body = format!(
                r#"{{"model":"bench","messages":[{{"role":"system","content":"You are the Researcher"}},{{"role":"user","content":"Task:\nBENCH r:{} tag=0\n"}}],"stream":true}}"#,
                r.spec()
            );
            let (barrier, samples, failures) = (&barrier, &samples, &failures);
            s.spawn(move || {
                barrier.wait();
                let mut local = Vec::with_capacity(LAT_TOKENS as usize * 2);
                let ok = (|| -> Result<(), String> {
                    let mut es =
                        EventStream::open(ctx.mock.addr, "POST", "/v1/chat/completions", &body)
                            .map_err(|e| e.to_string())?;
                    let end = Instant::now() + Duration::from_secs(60);
                    let mut done = false;
                    while !done && Instant::now() < end {
                        let open = es
                            .read_events(&mut |arrived, ev| {
                                if ev.data == b"[DONE]" {
                                    done = true;
                                } else if let Some(ts) = token_stamp(ev.data) {
                                    local.push(us(arrived.saturating_sub(ts)));
                                }
                            })
                            .map_err(|e| e.to_string())?;
                        if !open {
                            break;
                        }
                    }
                    Ok(())
                })();
                if ok.is_err() {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
                samples
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend(local);
            });
        }
    });
    let mut v = samples.into_inner().unwrap_or_else(|p| p.into_inner());
    Ok(Latency {
        lat: summarize(&mut v),
        samples: v,
        cpu_us_per_token: 0.0,
        reader_cpu_us_per_token: 0.0,
        excluded: 0,
        failures: failures.load(Ordering::Relaxed) as usize,
        max_rss_kib: 0,
    })
}

/// Follows one run to its `done`; returns token latencies (µs), tokens sent before the
/// subscription was live (excluded), and whether the run completed.
fn follow_run(addr: SocketAddr, task: &str) -> Result<(Vec<f64>, usize), String> {
    follow_run_with(addr, task, 0)
}

/// The same with the run started on `run_on` and its stream read from `follow_on`.
fn follow_run_on(
    run_on: SocketAddr,
    follow_on: SocketAddr,
    task: &str,
) -> Result<(Vec<f64>, usize), String> {
    let id = start_run(&mut Client::new(run_on), task)?;
    follow_stream(follow_on, &id)
}

/// The same, with `extra` more subscribers reading the run to its end alongside.
fn follow_run_with(
    addr: SocketAddr,
    task: &str,
    extra: usize,
) -> Result<(Vec<f64>, usize), String> {
    let mut client = Client::new(addr);
    let id = start_run(&mut client, task)?;
    let others: Vec<_> = (0..extra)
        .map(|_| {
            let path = format!("/api/stream/{id}");
            std::thread::spawn(move || {
                let Ok(mut es) = EventStream::open(addr, "GET", &path, "") else {
                    return;
                };
                let end = Instant::now() + Duration::from_secs(120);
                let mut done = false;
                while !done && Instant::now() < end {
                    match es.read_events(&mut |_, ev| done |= ev.name == b"done") {
                        Ok(true) => {}
                        _ => break,
                    }
                }
            })
        })
        .collect();
    let result = follow_stream(addr, &id);
    for h in others {
        let _ = h.join();
    }
    result
}

fn follow_stream(addr: SocketAddr, id: &str) -> Result<(Vec<f64>, usize), String> {
    let mut es = EventStream::open(addr, "GET", &format!("/api/stream/{id}"), "")
        .map_err(|e| format!("stream: {e}"))?;
    let established = es.established_ns;
    let mut lat = Vec::with_capacity(LAT_TOKENS as usize * 2);
    let mut excluded = 0;
    let mut status = None;
    let end = Instant::now() + Duration::from_secs(60);
    while status.is_none() && Instant::now() < end {
        let open = es
            .read_events(&mut |arrived, ev| {
                if ev.name == b"token" {
                    if let Some(ts) = token_stamp(ev.data) {
                        if ts >= established {
                            lat.push(us(arrived.saturating_sub(ts)));
                        } else {
                            excluded += 1;
                        }
                    }
                } else if ev.name == b"done" {
                    status = Some(http::find(ev.data, b"\"status\":\"completed\"").is_some());
                }
            })
            .map_err(|e| format!("stream read: {e}"))?;
        if !open {
            break;
        }
    }
    match status {
        Some(true) => Ok((lat, excluded)),
        Some(false) => Err("run did not complete".into()),
        None => Err("stream ended without done".into()),
    }
}

/// Relay latency of `c` concurrent runs started on `srv`, each followed by one
/// subscriber of `reader`: `srv` itself, or another instance sharing its store.
/// CPU and RSS are `srv`'s, the instance running the pipelines, and the reader's
/// CPU is counted too when it is another.
fn relay_latency(ctx: &Ctx, srv: &Server, reader: &Server, c: usize) -> Result<Latency, String> {
    let follow_on = reader.addr;
    let other_reader = (reader.pid != srv.pid).then_some(reader.pid);
    let reader_cpu_before = other_reader.map_or(0, |p| sys::cpu_ns(p).unwrap_or(0));
    let barrier = Barrier::new(c);
    let samples = Mutex::new(Vec::new());
    let excluded = AtomicU64::new(0);
    let failures = AtomicU64::new(0);
    let sampling = AtomicBool::new(true);
    let max_rss = AtomicU64::new(0);
    let w = shape(LAT_TOKENS, LAT_GAP_US, 0);
    let cpu_before = sys::cpu_ns(srv.pid).unwrap_or(0);
    std::thread::scope(|s| {
        s.spawn(|| {
            let end = Instant::now() + Duration::from_secs(120);
            while sampling.load(Ordering::Relaxed) && Instant::now() < end {
                max_rss.fetch_max(srv.rss_kib(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let handles: Vec<_> = (0..c)
            .map(|i| {
                let r = shape(LAT_TOKENS, LAT_GAP_US, stagger(i, c));
                let t = task(r, w, ctx.tag());
                let barrier = &barrier;
                let samples = &samples;
                let excluded = &excluded;
                let failures = &failures;
                s.spawn(move || {
                    barrier.wait();
                    match follow_run_on(srv.addr, follow_on, &t) {
                        Ok((lat, ex)) => {
                            excluded.fetch_add(ex as u64, Ordering::Relaxed);
                            samples
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .extend(lat);
                        }
                        Err(e) => {
                            eprintln!("[bench] relay run failed: {e}");
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            let _ = h.join();
        }
        sampling.store(false, Ordering::Relaxed);
    });
    let cpu_s = sys::cpu_ns(srv.pid).unwrap_or(0).saturating_sub(cpu_before) as f64 / 1e9;
    let reader_cpu_s = other_reader.map_or(0.0, |p| {
        sys::cpu_ns(p)
            .unwrap_or(0)
            .saturating_sub(reader_cpu_before) as f64
            / 1e9
    });
    let mut v = samples.into_inner().unwrap_or_else(|p| p.into_inner());
    let relayed = v.len() + excluded.load(Ordering::Relaxed) as usize;
    let per_token = |s: f64| {
        if relayed > 0 {
            s * 1e6 / relayed as f64
        } else {
            0.0
        }
    };
    Ok(Latency {
        lat: summarize(&mut v),
        samples: v,
        cpu_us_per_token: per_token(cpu_s),
        reader_cpu_us_per_token: per_token(reader_cpu_s),
        excluded: excluded.load(Ordering::Relaxed) as usize,
        failures: failures.load(Ordering::Relaxed) as usize,
        max_rss_kib: max_rss.load(Ordering::Relaxed),
    })
}

// ---------------------------------------------------------------- pipeline

struct Pipeline {
    /// Upstream connections the mock accepted per chat request it answered, over
    /// the pipeline phase's sequential runs (1.0 = a new connection every call).
    connections_per_call: f64,
    post_to_upstream: Summary,
    post_to_first_token: Summary,
    direct_first_chunk: Summary,
    handoff_client: Summary,
    handoff_server: Summary,
    /// The researcher's end written by the mock → the writer's first token at the
    /// client: the whole hand-off as a user sees it against the upstream.
    handoff_total: Summary,
}

fn phase_pipeline(ctx: &Ctx, srv: &Server) -> Result<Pipeline, String> {
    let conns_before = ctx.mock.shared.connections.load(Ordering::Relaxed);
    let calls_before = ctx.mock.shared.chat_requests.load(Ordering::Relaxed);
    let mut client = Client::new(srv.addr);
    let mut post_to_upstream = Vec::new();
    let mut post_to_first = Vec::new();
    // Instant upstream: POST → the researcher's request at the mock, and → first token.
    for _ in 0..PIPELINE_RUNS {
        let tag = ctx.tag();
        let t = task(shape(5, 0, 0), shape(5, 0, 0), tag);
        let t0 = now_ns();
        let id = start_run(&mut client, &t)?;
        let mut es = EventStream::open(srv.addr, "GET", &format!("/api/stream/{id}"), "")
            .map_err(|e| format!("stream: {e}"))?;
        let mut first = None;
        let mut done = false;
        for _ in 0..1000 {
            let open = es
                .read_events(&mut |arrived, ev| {
                    if ev.name == b"token" && first.is_none() {
                        first = Some(arrived);
                    }
                    done |= ev.name == b"done";
                })
                .map_err(|e| format!("stream read: {e}"))?;
            if done || !open {
                break;
            }
        }
        if let Some(f) = first {
            post_to_first.push(us(f.saturating_sub(t0)));
        }
        if let Some(r) = ctx.mock.shared.records_for(tag).iter().find(|r| !r.writer) {
            post_to_upstream.push(us(r.arrived_ns.saturating_sub(t0)));
        }
    }
    // The same request straight to the mock: request → first chunk.
    let mut direct = Vec::new();
    let body = r#"{"model":"bench","messages":[{"role":"system","content":"You are the Researcher"},{"role":"user","content":"Task:\nBENCH r:n=5,gap=0 tag=0\n"}],"stream":true}"#;
    for _ in 0..PIPELINE_RUNS {
        // Connected beforehand, as agent-mesh's pooled upstream connection is.
        let sock = http::connect(ctx.mock.addr).map_err(|e| e.to_string())?;
        std::thread::sleep(Duration::from_millis(2));
        let t0 = now_ns();
        let mut es =
            EventStream::open_on(sock, ctx.mock.addr, "POST", "/v1/chat/completions", body)
                .map_err(|e| e.to_string())?;
        let mut first = None;
        let mut done = false;
        for _ in 0..1000 {
            let open = es
                .read_events(&mut |arrived, ev| {
                    if first.is_none() && token_stamp(ev.data).is_some() {
                        first = Some(arrived);
                    }
                    done |= ev.data == b"[DONE]";
                })
                .map_err(|e| e.to_string())?;
            if done || !open {
                break;
            }
        }
        if let Some(f) = first {
            direct.push(us(f.saturating_sub(t0)));
        }
    }
    // Hand-off between agents: the researcher starts late, so the subscriber is live.
    let mut handoff_client = Vec::new();
    let mut handoff_server = Vec::new();
    let mut handoff_total = Vec::new();
    for _ in 0..PIPELINE_RUNS {
        let tag = ctx.tag();
        let t = task(shape(5, 0, 30_000), shape(5, 0, 0), tag);
        let id = start_run(&mut client, &t)?;
        let mut es = EventStream::open(srv.addr, "GET", &format!("/api/stream/{id}"), "")
            .map_err(|e| format!("stream: {e}"))?;
        let mut last_r = None;
        let mut first_w = None;
        let mut done = false;
        for _ in 0..1000 {
            let open = es
                .read_events(&mut |arrived, ev| {
                    if ev.name == b"token" {
                        if ev.data.starts_with(b"{\"agent\":\"researcher\"") {
                            last_r = Some(arrived);
                        } else if first_w.is_none() {
                            first_w = Some(arrived);
                        }
                    }
                    done |= ev.name == b"done";
                })
                .map_err(|e| format!("stream read: {e}"))?;
            if done || !open {
                break;
            }
        }
        if let (Some(a), Some(b)) = (last_r, first_w) {
            handoff_client.push(us(b.saturating_sub(a)));
        }
        let recs = ctx.mock.shared.records_for(tag);
        if let (Some(r), Some(w)) = (
            recs.iter().find(|r| !r.writer),
            recs.iter().find(|r| r.writer),
        ) {
            handoff_server.push(us(w.arrived_ns.saturating_sub(r.done_ns)));
            if let Some(b) = first_w {
                handoff_total.push(us(b.saturating_sub(r.done_ns)));
            }
        }
    }
    // The direct requests above opened one connection each; count only the server's.
    let conns = ctx.mock.shared.connections.load(Ordering::Relaxed) - conns_before - PIPELINE_RUNS;
    let calls =
        ctx.mock.shared.chat_requests.load(Ordering::Relaxed) - calls_before - PIPELINE_RUNS;
    Ok(Pipeline {
        connections_per_call: conns as f64 / calls.max(1) as f64,
        post_to_upstream: summarize(&mut post_to_upstream),
        post_to_first_token: summarize(&mut post_to_first),
        direct_first_chunk: summarize(&mut direct),
        handoff_client: summarize(&mut handoff_client),
        handoff_server: summarize(&mut handoff_server),
        handoff_total: summarize(&mut handoff_total),
    })
}

// ---------------------------------------------------------------- throughput

struct Flood {
    tokens_per_s: f64,
    windows: Vec<f64>,
    cpu_s_per_100k: f64,
    cpu_share: f64,
    /// Streams that ended (or failed) before the window was over: must be 0.
    ended_early: usize,
    /// Tokens received from the first to the end of the window.
    total_tokens: u64,
}

struct Throughput {
    flood: Flood,
    direct_ceiling: f64,
    rss_after_kib: u64,
    problems: Vec<String>,
}

/// Counts token events on `c` streams over a window; `open` opens stream `i`.
fn count_window(
    c: usize,
    window: Duration,
    pid: Option<(u32, u64)>,
    open: &(dyn Fn(usize) -> Result<EventStream, String> + Sync),
    count_data: bool,
) -> Result<Flood, String> {
    let tokens = AtomicU64::new(0);
    let started = AtomicU64::new(0);
    let ended_early = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let mut result = Err("no measurement".to_string());
    std::thread::scope(|s| {
        for i in 0..c {
            let tokens = &tokens;
            let started = &started;
            let ended_early = &ended_early;
            let stop = &stop;
            s.spawn(move || {
                let Ok(mut es) = open(i) else {
                    started.fetch_add(1, Ordering::Relaxed);
                    return;
                };
                let _ = es.sock.set_read_timeout(Some(Duration::from_secs(5)));
                let mut first = true;
                let end = Instant::now() + Duration::from_secs(120);
                while !stop.load(Ordering::Relaxed) && Instant::now() < end {
                    let mut n = 0u64;
                    let mut done = false;
                    let open = es.read_events(&mut |_, ev| {
                        if count_data {
                            n += u64::from(token_stamp(ev.data).is_some());
                        } else {
                            n += u64::from(ev.name == b"token");
                        }
                        done |= ev.name == b"done";
                    });
                    if n > 0 {
                        tokens.fetch_add(n, Ordering::Relaxed);
                        if first {
                            first = false;
                            started.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    if done || !matches!(open, Ok(true)) {
                        if !stop.load(Ordering::Relaxed) {
                            ended_early.fetch_add(1, Ordering::Relaxed);
                        }
                        break;
                    }
                }
                if first {
                    started.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        result = (|| {
            if !wait_until(Duration::from_secs(20), Duration::from_millis(5), || {
                started.load(Ordering::Relaxed) as usize >= c
            }) {
                return Err("the flooding streams did not all start".to_string());
            }
            std::thread::sleep(Duration::from_millis(500));
            let subwindows = 3;
            let step = window / subwindows;
            let mut windows = Vec::new();
            let t_start = Instant::now();
            let tok_start = tokens.load(Ordering::Relaxed);
            let cpu_start = pid.map(|(p, _)| sys::cpu_ticks(p).unwrap_or(0));
            let mut last = (t_start, tok_start);
            for _ in 0..subwindows {
                std::thread::sleep(step);
                let now = (Instant::now(), tokens.load(Ordering::Relaxed));
                windows.push((now.1 - last.1) as f64 / (now.0 - last.0).as_secs_f64());
                last = now;
            }
            let secs = t_start.elapsed().as_secs_f64();
            let n = tokens.load(Ordering::Relaxed) - tok_start;
            let (cpu_s, share) = match (pid, cpu_start) {
                (Some((p, clk)), Some(c0)) => {
                    let c1 = sys::cpu_ticks(p).unwrap_or(c0);
                    let cpu = (c1 - c0) as f64 / clk as f64;
                    (cpu, cpu / secs)
                }
                _ => (0.0, 0.0),
            };
            Ok(Flood {
                tokens_per_s: n as f64 / secs,
                windows,
                cpu_s_per_100k: if n > 0 {
                    cpu_s / n as f64 * 100_000.0
                } else {
                    0.0
                },
                cpu_share: share,
                ended_early: ended_early.load(Ordering::Relaxed) as usize,
                total_tokens: tokens.load(Ordering::Relaxed),
            })
        })();
        stop.store(true, Ordering::Relaxed);
    });
    result
}

fn phase_throughput(ctx: &Ctx, clk: u64) -> Result<Throughput, String> {
    // The harness's own ceiling: the same clients reading the mock directly.
    let body = r#"{"model":"bench","messages":[{"role":"system","content":"You are the Researcher"},{"role":"user","content":"Task:\nBENCH r:n=1000000,gap=0 tag=0\n"}],"stream":true}"#;
    let mock_addr = ctx.mock.addr;
    let direct = count_window(
        FLOOD_RUNS,
        Duration::from_secs(2),
        None,
        &|_| {
            EventStream::open(mock_addr, "POST", "/v1/chat/completions", body)
                .map_err(|e| e.to_string())
        },
        true,
    )?;

    let (flood, rss_after_kib, problems) = flood(ctx, clk, &[], false)?;
    if flood.ended_early > 0 {
        eprintln!(
            "[bench] WARNING: {} flooding streams ended before the window did",
            flood.ended_early
        );
    }
    Ok(Throughput {
        flood,
        direct_ceiling: direct.tokens_per_s,
        rss_after_kib,
        problems,
    })
}

/// [`FLOOD_RUNS`] flooding runs on a fresh server with `env` (two sharing a store
/// when `second`: the runs start on the first and are read from the second), counted
/// at the clients over [`FLOOD_WINDOW`]; with the first server's RSS after the window
/// and its warnings. CPU figures are the first server's, the one running the pipelines.
fn flood(
    ctx: &Ctx,
    clk: u64,
    env: &[(&str, &str)],
    second: bool,
) -> Result<(Flood, u64, Vec<String>), String> {
    let flood_task = |tag| task(shape(1_000_000, 0, 0), shape(5, 0, 0), tag);
    let srv = ctx.server_with(env)?;
    let reader = if second {
        Some(ctx.server_with(env)?)
    } else {
        None
    };
    eprintln!(
        "[bench] server pid {}{}",
        srv.pid,
        reader.as_ref().map_or(String::new(), |r| format!(
            ", streams read from pid {}",
            r.pid
        ))
    );
    let ids = Mutex::new(Vec::new());
    let addr = srv.addr;
    let read_addr = reader.as_ref().map_or(addr, |r| r.addr);
    let r = count_window(
        FLOOD_RUNS,
        FLOOD_WINDOW,
        Some((srv.pid, clk)),
        &|_| {
            let mut client = Client::new(addr);
            let id = start_run(&mut client, &flood_task(ctx.tag()))?;
            ids.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(id.clone());
            EventStream::open(read_addr, "GET", &format!("/api/stream/{id}"), "")
                .map_err(|e| e.to_string())
        },
        false,
    );
    let rss = srv.rss_kib();
    let mut client = Client::new(addr);
    for id in ids.into_inner().unwrap_or_else(|p| p.into_inner()) {
        cancel_run(&mut client, &id);
    }
    let mut problems = srv.problems.lock().map(|p| p.clone()).unwrap_or_default();
    if let Some(r) = &reader {
        problems.extend(r.problems.lock().map(|p| p.clone()).unwrap_or_default());
    }
    Ok((r?, rss, problems))
}
