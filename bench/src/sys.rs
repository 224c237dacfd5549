//! Clock, /proc readers and small statistics: everything the phases measure with.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// CLOCK_REALTIME in nanoseconds since the epoch: the clock every process on the
/// machine reads the same way, so the send time the mock embeds in a token can be
/// compared with the arrival time at any client (here they share this process).
/// NTP may slew it by at most 500 ppm (0.5 µs per ms measured): negligible here.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Resident set size of a process, in KiB (VmRSS of /proc/PID/status).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat).
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; fields after it are plain.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14 → index 11.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// CPU time of every thread of a process in ns (field 1 of /proc/PID/task/*/schedstat):
/// nanosecond resolution where utime+stime count 10 ms ticks.
pub fn cpu_ns(pid: u32) -> Option<u64> {
    let mut total = 0u64;
    for entry in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let path = entry.ok()?.path().join("schedstat");
        if let Ok(s) = std::fs::read_to_string(path) {
            total += s.split_whitespace().next()?.parse::<u64>().ok()?;
        }
    }
    Some(total)
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 on every common Linux).
pub fn clk_tck() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".to_string())
}

pub fn nproc() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Percentiles by nearest rank over a sample, in the sample's unit.
#[derive(Debug, Clone, Copy, Default)]
pub struct Summary {
    pub n: usize,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

pub fn summarize(samples: &mut [f64]) -> Summary {
    if samples.is_empty() {
        return Summary::default();
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    let rank = |p: f64| {
        let i = ((p / 100.0) * samples.len() as f64).ceil() as usize;
        samples[i.clamp(1, samples.len()) - 1]
    };
    Summary {
        n: samples.len(),
        p50: rank(50.0),
        p99: rank(99.0),
        max: samples[samples.len() - 1],
        mean: samples.iter().sum::<f64>() / samples.len() as f64,
    }
}

pub fn median(mut v: Vec<f64>) -> f64 {
    summarize(&mut v).p50
}

/// Sleeps until `deadline_ns` on the realtime clock (returns at once if past).
pub fn sleep_until_ns(deadline_ns: u64) {
    let now = now_ns();
    if deadline_ns > now {
        std::thread::sleep(Duration::from_nanos(deadline_ns - now));
    }
}

/// CPU used by everything else on the machine over a phase: the share of all CPUs'
/// time that was busy (/proc/stat) minus what this process and the server used.
pub struct Noise {
    busy: u64,
    total: u64,
    own: u64,
    server: u64,
}

fn machine_ticks() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = s
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total.saturating_sub(idle), total)
}

impl Noise {
    pub fn start(server_pid: u32) -> Noise {
        let (busy, total) = machine_ticks();
        Noise {
            busy,
            total,
            own: cpu_ticks(std::process::id()).unwrap_or(0),
            server: cpu_ticks(server_pid).unwrap_or(0),
        }
    }

    /// The others' share of all CPU time since `start`, 0..1.
    pub fn other_share(&self, server_pid: u32) -> f64 {
        let (busy, total) = machine_ticks();
        let own = cpu_ticks(std::process::id()).unwrap_or(0) - self.own;
        let server = cpu_ticks(server_pid).unwrap_or(0) - self.server;
        let others = (busy - self.busy).saturating_sub(own + server);
        others as f64 / (total - self.total).max(1) as f64
    }
}
