//! Throttling of failed Basic-auth attempts, built so that it can never lock anyone
//! out: it only ever shapes the answers to *wrong* credentials. The right credentials
//! are checked on every request and accepted at once, whatever any client (the same
//! address included) did before.
//!
//! * Each client (an IPv4 address, or an IPv6 /64: one household or one server gets a
//!   whole /64, so rotating inside it is free) has [`FREE_FAILURES`] quick `401`s, for
//!   typos. After that, each further failure is answered `429` with `Retry-After`, and
//!   only after a delay that doubles per failure: 1 s, 2 s, 4 s … up to [`MAX_DELAY`].
//!   The delay is a tokio timer in that request's own task, so nothing else waits.
//!   A client is forgotten [`FORGET_AFTER`] after its last failure. A success does not
//!   clear the record: behind a shared address it would hand an attacker a fresh
//!   allowance each time the owner signs in.
//! * Server-wide, at most [`GLOBAL_FAILURES_PER_SEC`] failures a second are counted per
//!   client; beyond that (many addresses guessing at once) a failure is not looked up
//!   at all and gets the longest delay and a `429`. That bounds both the guesses a
//!   spread-out attacker gets answered and how fast it can churn the table, which
//!   holds at most [`MAX_TRACKED`] clients.

use crate::metrics::ThrottleScope;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub const FREE_FAILURES: u32 = 5;
pub const FIRST_DELAY: Duration = Duration::from_secs(1);
pub const MAX_DELAY: Duration = Duration::from_secs(30);
pub const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
pub const GLOBAL_FAILURES_PER_SEC: u32 = 20;
/// Bounds the table against a flood of distinct addresses.
const MAX_TRACKED: usize = 10_000;

/// How to answer one failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Penalty {
    /// Within the client's allowance: `401` at once.
    None,
    /// Hold the answer for `delay`, then `429` with `Retry-After: retry_after_secs`.
    Delay {
        delay: Duration,
        retry_after_secs: u64,
        scope: ThrottleScope,
    },
}

pub struct AuthThrottle {
    inner: Mutex<Inner>,
}

struct Inner {
    clients: HashMap<IpAddr, Record>,
    global: TokenBucket,
}

struct Record {
    failures: u32,
    last_failure: Instant,
}

impl Default for AuthThrottle {
    fn default() -> Self {
        AuthThrottle {
            inner: Mutex::new(Inner {
                clients: HashMap::new(),
                global: TokenBucket::new(GLOBAL_FAILURES_PER_SEC, Instant::now()),
            }),
        }
    }
}

impl AuthThrottle {
    /// Counts a failed attempt from `client` and says how to answer it.
    pub fn failed(&self, client: IpAddr) -> Penalty {
        self.failed_at(client, Instant::now())
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Plain counters that every writer leaves consistent: a panic elsewhere must
        // not turn every sign-in into a 500.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn failed_at(&self, client: IpAddr, now: Instant) -> Penalty {
        let mut inner = self.lock();
        if !inner.global.take(now) {
            return Penalty::Delay {
                delay: MAX_DELAY,
                retry_after_secs: MAX_DELAY.as_secs(),
                scope: ThrottleScope::Global,
            };
        }
        let key = client_key(client);
        if !inner.clients.contains_key(&key) {
            inner.make_room(now);
        }
        let record = inner.clients.entry(key).or_insert(Record {
            failures: 0,
            last_failure: now,
        });
        if now.duration_since(record.last_failure) >= FORGET_AFTER {
            record.failures = 0;
        }
        record.failures = record.failures.saturating_add(1);
        record.last_failure = now;
        match record.failures.saturating_sub(FREE_FAILURES) {
            0 => Penalty::None,
            beyond => Penalty::Delay {
                delay: delay_for(beyond),
                retry_after_secs: delay_for(beyond + 1).as_secs(),
                scope: ThrottleScope::Client,
            },
        }
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.lock().clients.len()
    }
}

impl Inner {
    fn make_room(&mut self, now: Instant) {
        if self.clients.len() < MAX_TRACKED {
            return;
        }
        self.clients
            .retain(|_, r| now.duration_since(r.last_failure) < FORGET_AFTER);
        if self.clients.len() >= MAX_TRACKED {
            // Still full of live entries: forget the older half rather than grow.
            let mut lasts: Vec<Instant> = self.clients.values().map(|r| r.last_failure).collect();
            lasts.sort_unstable();
            let cutoff = lasts[lasts.len() / 2];
            self.clients.retain(|_, r| r.last_failure > cutoff);
        }
    }
}

/// The delay of the `n`-th failure beyond the allowance (n ≥ 1): doubling, capped.
fn delay_for(n: u32) -> Duration {
    let doublings = n.saturating_sub(1).min(16);
    (FIRST_DELAY * 2u32.pow(doublings)).min(MAX_DELAY)
}

/// The unit a client is tracked as: the address itself for IPv4 (an IPv4-mapped IPv6
/// address is IPv4), its /64 prefix for IPv6.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        v4 => v4,
    }
}

/// `rate` tokens a second, holding at most `rate`.
struct TokenBucket {
    rate: f64,
    tokens: f64,
    refilled: Instant,
}

impl TokenBucket {
    fn new(rate: u32, now: Instant) -> TokenBucket {
        TokenBucket {
            rate: f64::from(rate),
            tokens: f64::from(rate),
            refilled: now,
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn delay_of(p: Penalty) -> Option<Duration> {
        match p {
            Penalty::None => None,
            Penalty::Delay { delay, .. } => Some(delay),
        }
    }

    #[test]
    fn typos_are_free_then_delays_double_up_to_the_cap() {
        let t = AuthThrottle::default();
        // Spaced out so the global ceiling never comes into it.
        let mut now = Instant::now();
        let client = ip("203.0.113.5");
        for _ in 0..FREE_FAILURES {
            now += Duration::from_secs(1);
            assert_eq!(t.failed_at(client, now), Penalty::None);
        }
        let mut delays = Vec::new();
        for _ in 0..8 {
            now += Duration::from_secs(1);
            delays.push(delay_of(t.failed_at(client, now)).unwrap().as_secs());
        }
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30, 30]);
        // Another client is untouched.
        assert_eq!(t.failed_at(ip("203.0.113.6"), now), Penalty::None);
        // Retry-After announces the next delay.
        now += Duration::from_secs(1);
        let fresh = ip("198.51.100.1");
        for _ in 0..FREE_FAILURES {
            t.failed_at(fresh, now);
        }
        now += Duration::from_secs(1);
        assert!(matches!(
            t.failed_at(fresh, now),
            Penalty::Delay {
                retry_after_secs: 2,
                scope: ThrottleScope::Client,
                ..
            }
        ));
    }

    #[test]
    fn a_quiet_client_is_forgotten() {
        let t = AuthThrottle::default();
        let mut now = Instant::now();
        let client = ip("203.0.113.5");
        for _ in 0..FREE_FAILURES + 3 {
            now += Duration::from_secs(1);
            t.failed_at(client, now);
        }
        now += FORGET_AFTER;
        assert_eq!(t.failed_at(client, now), Penalty::None);
    }

    #[test]
    fn an_ipv6_slash_64_is_one_client() {
        let t = AuthThrottle::default();
        let mut now = Instant::now();
        for i in 0..FREE_FAILURES {
            now += Duration::from_secs(1);
            let addr = ip(&format!("2001:db8:1:2:{i}::1"));
            assert_eq!(t.failed_at(addr, now), Penalty::None);
        }
        now += Duration::from_secs(1);
        assert!(delay_of(t.failed_at(ip("2001:db8:1:2:ffff::9"), now)).is_some());
        // The next /64 is someone else; a mapped IPv4 address is that IPv4 address.
        assert_eq!(t.failed_at(ip("2001:db8:1:3::1"), now), Penalty::None);
        assert_eq!(client_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
    }

    #[test]
    fn the_global_ceiling_holds_failures_beyond_it_without_tracking_them() {
        let t = AuthThrottle::default();
        let now = Instant::now();
        for i in 0..GLOBAL_FAILURES_PER_SEC {
            let addr = ip(&format!("10.0.{}.{}", i / 200, i % 200));
            assert_eq!(t.failed_at(addr, now), Penalty::None, "client {i}");
        }
        let over = t.failed_at(ip("10.9.9.9"), now);
        assert_eq!(
            over,
            Penalty::Delay {
                delay: MAX_DELAY,
                retry_after_secs: MAX_DELAY.as_secs(),
                scope: ThrottleScope::Global,
            }
        );
        assert_eq!(t.tracked(), GLOBAL_FAILURES_PER_SEC as usize);
        // Tokens come back with time.
        let later = now + Duration::from_millis(100);
        assert_eq!(t.failed_at(ip("10.9.9.9"), later), Penalty::None);
    }

    #[test]
    fn the_table_stays_bounded() {
        let t = AuthThrottle::default();
        let mut now = Instant::now();
        for i in 0..(MAX_TRACKED as u32 + 500) {
            // One failure each, slow enough for the global ceiling.
            now += Duration::from_millis(60);
            t.failed_at(IpAddr::V4(i.into()), now);
        }
        assert!(t.tracked() <= MAX_TRACKED, "{}", t.tracked());
    }
}
