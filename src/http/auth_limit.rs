//! Per-client limit on failed Basic-auth attempts: after too many failures in a
//! window the client gets 429 until the window ends, so passwords cannot be guessed
//! at network speed. The client is the socket's peer, or with `MESH_TRUST_PROXY=1`
//! the address a trusted edge (Fly, Cloudflare, a reverse proxy) reports.

use hyper::HeaderMap;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const MAX_FAILURES: u32 = 10;
pub const WINDOW: Duration = Duration::from_secs(60);
/// Bounds the table against a flood of distinct addresses.
const MAX_TRACKED: usize = 10_000;

pub struct AuthLimiter {
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl Default for AuthLimiter {
    fn default() -> Self {
        AuthLimiter {
            failures: Mutex::new(HashMap::new()),
        }
    }
}

impl AuthLimiter {
    /// `Some(seconds to wait)` when the client is locked out.
    pub fn locked_out(&self, ip: IpAddr) -> Option<u64> {
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let (count, start) = map.get(&ip)?;
        let elapsed = start.elapsed();
        (*count >= MAX_FAILURES && elapsed < WINDOW).then(|| (WINDOW - elapsed).as_secs().max(1))
    }

    pub fn record_failure(&self, ip: IpAddr) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_TRACKED {
            map.retain(|_, (_, start)| start.elapsed() < WINDOW);
            if map.len() >= MAX_TRACKED {
                // Still full of live entries: forget the oldest half rather than grow.
                let mut starts: Vec<Instant> = map.values().map(|(_, s)| *s).collect();
                starts.sort();
                let cutoff = starts[starts.len() / 2];
                map.retain(|_, (_, s)| *s > cutoff);
            }
        }
        let entry = map.entry(ip).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= WINDOW {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }

    pub fn record_success(&self, ip: IpAddr) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.get(&ip).is_some_and(|(count, _)| *count < MAX_FAILURES) {
            map.remove(&ip);
        }
    }
}

/// The client's address: the socket peer, unless a trusted proxy names it.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trust_proxy: bool) -> IpAddr {
    if !trust_proxy {
        return peer;
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let from_list = |v: &str| {
        v.split(',')
            .next()
            .map(str::trim)
            .and_then(|s| s.parse::<IpAddr>().ok())
    };
    header("fly-client-ip")
        .and_then(|v| v.parse().ok())
        .or_else(|| header("cf-connecting-ip").and_then(|v| v.parse().ok()))
        .or_else(|| header("x-forwarded-for").and_then(from_list))
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_out_after_too_many_failures() {
        let l = AuthLimiter::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..MAX_FAILURES - 1 {
            l.record_failure(ip);
        }
        assert_eq!(l.locked_out(ip), None);
        l.record_failure(ip);
        assert!(l.locked_out(ip).is_some_and(|s| (1..=60).contains(&s)));
        assert_eq!(l.locked_out("10.0.0.2".parse().unwrap()), None);
        // A success does not lift an active lockout.
        l.record_success(ip);
        assert!(l.locked_out(ip).is_some());
    }

    #[test]
    fn proxy_headers_count_only_when_trusted() {
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "203.0.113.9, 10.0.0.1".parse().unwrap());
        assert_eq!(client_ip(peer, &h, false), peer);
        assert_eq!(
            client_ip(peer, &h, true),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        h.insert("fly-client-ip", "198.51.100.7".parse().unwrap());
        assert_eq!(
            client_ip(peer, &h, true),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        let mut bad = HeaderMap::new();
        bad.insert("x-forwarded-for", "not an ip".parse().unwrap());
        assert_eq!(client_ip(peer, &bad, true), peer);
    }
}
