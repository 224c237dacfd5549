//! The Redis phase: agent-mesh with its Redis Streams store (`MESH_REDIS_URL`) on a
//! real `redis-server`, measured with the same clients as the memory store and
//! reported against the memory store's figures of the same run (the machine is
//! shared: only ratios and differences measured back to back compare).
//!
//! * Throughput: the flood of the throughput phase on a server with Redis on; its
//!   tokens/s over the memory store's. Subscribers there read the running
//!   instance's local log, so this is the cost of queueing and writing every event
//!   to Redis beside the relay. It does not wait for the events to reach Redis: the
//!   write queue is unbounded, and when Redis absorbs less than the flood the
//!   instance relays ahead of the store. The same flood read from a second instance
//!   says how much does cross Redis.
//! * Relay latency, at every level of the latency phase: runs start on instance A
//!   and are followed on instance B, which shares A's Redis: a token goes A → a
//!   pipelined `XADD` batch → Redis → B's blocking `XREAD` → B's subscriber. That is
//!   the figure "through the Redis store" means; a subscriber of A itself reads A's
//!   local log, measured too (same instance, Redis on) to show what the store costs
//!   A's own subscribers. Added latency is against clients reading the mock
//!   directly, back to back, as for the memory store.
//!
//! Everything runs on this machine: redis-server, both instances and the harness
//! share its cores, which a deployment (Redis and the instances on their own
//! machines) would not. Each part gets its own `redis-server`, so the flood's
//! hundreds of MB of entries do not weigh on the latency runs.

use crate::redis::RedisServer;
use crate::report::{fmt_num, Goal, Row, J};
use crate::{
    direct_latency, flood, level_json, relay_latency, Ctx, Flood, Latency, Level, FLOOD_RUNS,
    LAT_ROUNDS, LEVELS,
};

/// The targets: at least half the memory store's tokens/s, and an added p50
/// under 2 ms at 10 runs for a subscriber on another instance.
const MIN_THROUGHPUT_RATIO: f64 = 0.5;
const MAX_ADDED_P50_US: f64 = 2000.0;
const P50_TARGET_RUNS: usize = 10;

/// The memory store's flood of the same run: what the Redis figures are read against.
#[derive(Clone, Copy)]
pub struct Baseline {
    pub tokens_per_s: f64,
    pub rss_after_kib: u64,
}

/// The throughput part.
pub struct Throughput {
    pub memory: Baseline,
    /// Flood with Redis on, subscribers on the running instance.
    pub redis: Flood,
    pub redis_rss_after_kib: u64,
    /// The same flood, subscribers on a second instance.
    pub second: Flood,
    pub problems: Vec<String>,
}

/// The levels a subscriber on the running instance is measured at too: the target's.
/// Each measurement takes its ~2.5 s whatever the level, and the memory store's rows
/// already say what the local log costs at every level.
const SAME_LEVELS: [usize; 1] = [P50_TARGET_RUNS];

/// The latency part: per level of [`LEVELS`], a subscriber on a second instance
/// (the path through Redis); at [`SAME_LEVELS`], one on the running instance.
pub struct Latencies {
    pub cross: Vec<Level>,
    pub same: Vec<Level>,
    pub problems: Vec<String>,
}

impl Latencies {
    pub fn same_at(&self, runs: usize) -> Option<&Level> {
        self.same.iter().find(|l| l.runs == runs)
    }
}

pub struct Figures {
    pub throughput: Throughput,
    pub latency: Latencies,
}

impl Throughput {
    pub fn ratio(&self) -> f64 {
        self.redis.tokens_per_s / self.memory.tokens_per_s.max(1.0)
    }
}

/// Both parts. `memory` is the memory store's flood of this run, measured just
/// before; `None` measures it here first (`--phase redis`).
pub fn phase(ctx: &Ctx, clk: u64, memory: Option<Baseline>) -> Result<Figures, String> {
    Ok(Figures {
        throughput: throughput(ctx, clk, memory)?,
        latency: latency(ctx)?,
    })
}

pub fn throughput(ctx: &Ctx, clk: u64, memory: Option<Baseline>) -> Result<Throughput, String> {
    let memory = match memory {
        Some(m) => m,
        None => {
            eprintln!("[bench] redis: memory store flood first, for the ratio");
            let (f, rss_after_kib, _) = flood(ctx, clk, &[], false)?;
            Baseline {
                tokens_per_s: f.tokens_per_s,
                rss_after_kib,
            }
        }
    };
    let mut problems = Vec::new();
    eprintln!("[bench] redis: throughput ({FLOOD_RUNS} flooding runs, Redis store)");
    let store = RedisServer::start()?;
    let url = store.url();
    let env = [("MESH_REDIS_URL", url.as_str())];
    let (redis, redis_rss_after_kib, p) = flood(ctx, clk, &env, false)?;
    problems.extend(p);
    eprintln!("[bench] redis: the same flood read from a second instance");
    let (second, _, p) = flood(ctx, clk, &env, true)?;
    problems.extend(p);
    for (what, f) in [("same-instance", &redis), ("second-instance", &second)] {
        if f.ended_early > 0 {
            eprintln!(
                "[bench] WARNING: redis {what} flood: {} streams ended before the window did",
                f.ended_early
            );
        }
    }
    Ok(Throughput {
        memory,
        redis,
        redis_rss_after_kib,
        second,
        problems,
    })
}

pub fn latency(ctx: &Ctx) -> Result<Latencies, String> {
    eprintln!(
        "[bench] redis: relay latency at {LEVELS:?} concurrent runs, {LAT_ROUNDS} rounds, subscriber on a second instance (and on the running one at {SAME_LEVELS:?})"
    );
    let store = RedisServer::start()?;
    let url = store.url();
    let env = [("MESH_REDIS_URL", url.as_str())];
    let a = ctx.server_with(&env)?;
    let b = ctx.server_with(&env)?;
    eprintln!(
        "[bench] redis-server pid {}, instance A pid {}, B pid {}",
        store.pid(),
        a.pid,
        b.pid
    );
    type Rounds = Vec<Vec<(Latency, Latency)>>;
    let mut cross: Rounds = LEVELS.iter().map(|_| Vec::new()).collect();
    let mut same: Rounds = SAME_LEVELS.iter().map(|_| Vec::new()).collect();
    for _ in 0..LAT_ROUNDS {
        for (i, c) in LEVELS.iter().enumerate() {
            // One direct baseline for both: they run back to back with it.
            let direct = direct_latency(ctx, *c)?;
            let x = relay_latency(ctx, &a, &b, *c)?;
            if let Some(j) = SAME_LEVELS.iter().position(|s| s == c) {
                let s = relay_latency(ctx, &a, &a, *c)?;
                same[j].push((direct.clone(), s));
            }
            cross[i].push((direct, x));
        }
    }
    let mut problems = Vec::new();
    for s in [&a, &b] {
        problems.extend(s.problems.lock().map(|p| p.clone()).unwrap_or_default());
    }
    let levels = |runs: &[usize], rounds: Rounds| -> Vec<Level> {
        runs.iter()
            .zip(rounds)
            .map(|(c, r)| Level::from_rounds(*c, r))
            .collect()
    };
    Ok(Latencies {
        cross: levels(&LEVELS, cross),
        same: levels(&SAME_LEVELS, same),
        problems,
    })
}

impl Throughput {
    /// The throughput rows, to go beside the memory store's.
    pub fn throughput_rows(&self) -> Vec<Row> {
        vec![
            Row {
                section: "throughput, Redis",
                metric: format!("tokens/s, Redis store over memory store ({FLOOD_RUNS} runs)"),
                value: self.ratio(),
                unit: "×",
                goal: Goal::AtLeast(MIN_THROUGHPUT_RATIO),
                note: format!(
                    "Redis {} / memory {} tok/s, this run; subscribers on the running instance (its local log), every event also written to Redis",
                    fmt_num(self.redis.tokens_per_s),
                    fmt_num(self.memory.tokens_per_s)
                ),
            },
            Row {
                section: "throughput, Redis",
                metric: format!("CPU per 100k tokens, Redis store ({FLOOD_RUNS} runs)"),
                value: self.redis.cpu_s_per_100k,
                unit: "s",
                goal: Goal::None,
                note: format!(
                    "the running instance's utime+stime; server CPU {:.0} % of one core; RSS after the window {} MB (memory store {} MB)",
                    self.redis.cpu_share * 100.0,
                    fmt_num(self.redis_rss_after_kib as f64 / 1024.0),
                    fmt_num(self.memory.rss_after_kib as f64 / 1024.0)
                ),
            },
            Row {
                section: "throughput, Redis",
                metric: format!("tokens/s at a second instance ({FLOOD_RUNS} runs)"),
                value: self.second.tokens_per_s,
                unit: "tok/s",
                goal: Goal::None,
                note: "runs on A, streams read on B: tokens that crossed Redis (A's XADD batches, B's XREAD) within the window".into(),
            },
        ]
    }
}

impl Latencies {
    /// The latency rows, to go beside the memory store's: added p50 and p99 at each
    /// level, subscriber on a second instance (the Redis figure), then on the same.
    pub fn latency_rows(&self) -> Vec<Row> {
        let mut rows = Vec::new();
        // Only the second instance's p50 has a target: that is the path through Redis.
        for (levels, where_, how, targeted) in [
            (
                &self.cross,
                "subscriber on a second instance",
                "run on A, stream read on B: A → XADD → Redis → XREAD → B",
                true,
            ),
            (
                &self.same,
                "subscriber on the running instance",
                "Redis on; the subscriber reads A's local log",
                false,
            ),
        ] {
            for l in levels {
                let c = l.runs;
                rows.push(Row {
                    section: "relay latency, Redis",
                    metric: format!("added p50 at {c} runs, {where_}"),
                    value: l.added_p50,
                    unit: "µs",
                    goal: if targeted && c == P50_TARGET_RUNS {
                        Goal::Below(MAX_ADDED_P50_US)
                    } else {
                        Goal::None
                    },
                    note: format!(
                        "{how}; relay {} / direct {} µs pooled",
                        fmt_num(l.relay.p50),
                        fmt_num(l.direct.p50)
                    ),
                });
                rows.push(Row {
                    section: "relay latency, Redis",
                    metric: format!("added p99 at {c} runs, {where_}"),
                    value: l.added_p99,
                    unit: "µs",
                    goal: Goal::None,
                    note: format!(
                        "relay {} / direct {} µs pooled, {} samples{}",
                        fmt_num(l.relay.p99),
                        fmt_num(l.direct.p99),
                        l.relay.n,
                        if l.failures > 0 {
                            format!(", {} runs FAILED", l.failures)
                        } else {
                            String::new()
                        }
                    ),
                });
            }
        }
        if let Some(l) = self.cross.iter().find(|l| l.runs == 100) {
            rows.push(Row {
                section: "relay latency, Redis",
                metric: "server CPU per token at 100 runs, A + B".into(),
                value: l.cpu_us_per_token + l.reader_cpu_us_per_token,
                unit: "µs",
                goal: Goal::None,
                note: format!(
                    "A (runs the pipelines, writes to Redis) {} + B (follows Redis, serves the stream) {} µs; redis-server not counted",
                    fmt_num(l.cpu_us_per_token),
                    fmt_num(l.reader_cpu_us_per_token)
                ),
            });
        }
        rows
    }
}

impl Figures {
    pub fn problems(&self) -> impl Iterator<Item = &String> {
        self.throughput
            .problems
            .iter()
            .chain(&self.latency.problems)
    }

    pub fn to_json(&self) -> J {
        let (tp, lat) = (&self.throughput, &self.latency);
        let flood = |f: &Flood| {
            J::obj(vec![
                ("tokens_per_s", J::Num(f.tokens_per_s)),
                (
                    "windows_tokens_per_s",
                    J::Arr(f.windows.iter().map(|w| J::Num(*w)).collect()),
                ),
                ("cpu_s_per_100k_tokens", J::Num(f.cpu_s_per_100k)),
                ("server_cpu_share", J::Num(f.cpu_share)),
                ("streams_ended_early", J::Num(f.ended_early as f64)),
            ])
        };
        J::obj(vec![
            (
                "throughput",
                J::obj(vec![
                    ("flood_runs", J::Num(FLOOD_RUNS as f64)),
                    ("memory_tokens_per_s", J::Num(tp.memory.tokens_per_s)),
                    (
                        "memory_rss_after_kib",
                        J::Num(tp.memory.rss_after_kib as f64),
                    ),
                    ("ratio_redis_over_memory", J::Num(tp.ratio())),
                    ("ratio_target_at_least", J::Num(MIN_THROUGHPUT_RATIO)),
                    ("same_instance", flood(&tp.redis)),
                    (
                        "same_instance_rss_after_kib",
                        J::Num(tp.redis_rss_after_kib as f64),
                    ),
                    ("second_instance", flood(&tp.second)),
                ]),
            ),
            (
                "latency",
                J::Arr(
                    lat.cross
                        .iter()
                        .map(|x| {
                            J::obj(vec![
                                ("runs", J::Num(x.runs as f64)),
                                ("second_instance", level_json(x)),
                                (
                                    "same_instance",
                                    lat.same_at(x.runs).map_or(J::Null, level_json),
                                ),
                            ])
                        })
                        .collect(),
                ),
            ),
            (
                "added_p50_target_us",
                J::obj(vec![
                    ("runs", J::Num(P50_TARGET_RUNS as f64)),
                    ("below", J::Num(MAX_ADDED_P50_US)),
                ]),
            ),
        ])
    }
}
