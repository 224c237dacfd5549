//! Throttling of failed sign-ins, built so that it holds nothing and never locks a
//! known device out. It bounds how many wrong guesses are *evaluated*, per client and
//! server-wide; a refused attempt is answered at once, and its connection is free.
//!
//! * Who a request is: a device that signed in before (a valid `mesh_device` cookie,
//!   `device_cookie`), or else its client address (an IPv4 address, or an IPv6 /64:
//!   one household or server gets a whole /64, so rotating inside it is free).
//! * Each of them has [`FREE_FAILURES`] evaluated failures (plain `401`s, for typos).
//!   Each failure beyond locks it for a delay that doubles per failure: 1 s, 2 s,
//!   4 s … up to [`MAX_DELAY`]. That failure and every attempt while locked are
//!   answered `429` with `Retry-After` at once, and a locked attempt's credentials are
//!   not even checked, right or wrong. It is forgotten [`FORGET_AFTER`] after its last
//!   failure; a success does not clear it (behind a shared address that would hand an
//!   attacker a fresh allowance each time the owner signs in).
//! * Server-wide, at most [`GLOBAL_FAILURES_PER_SEC`] failures a second (a burst of as
//!   many) are evaluated for clients known only by address; beyond that (guesses
//!   spread over many addresses), their attempts get a `429` without being checked.
//!   Devices are outside this ceiling: a guesser has no valid cookie, so the owner's
//!   browser keeps working through any attack. The table of clients holds at most
//!   [`MAX_TRACKED`] entries.

use super::device_cookie::DeviceId;
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

/// Who is signing in, as far as throttling is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Who {
    /// A client with a valid device cookie.
    Device(DeviceId),
    /// Any other client, by address (see [`client_key`]).
    Client(IpAddr),
}

/// An attempt refused by the throttle: `429` with `Retry-After` now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after_secs: u64,
    pub scope: ThrottleScope,
}

pub struct AuthThrottle {
    inner: Mutex<Inner>,
}

struct Inner {
    records: HashMap<Who, Record>,
    global: TokenBucket,
}

struct Record {
    failures: u32,
    last_failure: Instant,
    locked_until: Instant,
}

impl Default for AuthThrottle {
    fn default() -> Self {
        AuthThrottle {
            inner: Mutex::new(Inner {
                records: HashMap::new(),
                global: TokenBucket::new(GLOBAL_FAILURES_PER_SEC, Instant::now()),
            }),
        }
    }
}

impl AuthThrottle {
    /// Before the credentials are checked: may they be? `Err` means they are not
    /// looked at, and the answer is a `429` at once.
    pub fn admit(&self, who: Who) -> Result<(), Throttled> {
        self.admit_at(who, Instant::now())
    }

    /// Counts a failed attempt that was evaluated: `Ok` is a plain `401`, `Err` a
    /// `429` (this failure locked its client).
    pub fn failed(&self, who: Who) -> Result<(), Throttled> {
        self.failed_at(who, Instant::now())
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere must not turn every sign-in into a 500.
        crate::util::lock(&self.inner)
    }

    fn admit_at(&self, who: Who, now: Instant) -> Result<(), Throttled> {
        let who = normalize(who);
        let mut inner = self.lock();
        if let Some(record) = inner.records.get(&who) {
            if record.locked_until > now {
                return Err(Throttled {
                    retry_after_secs: secs_ceil(record.locked_until - now),
                    scope: ThrottleScope::Client,
                });
            }
        }
        if matches!(who, Who::Client(_)) && !inner.global.available(now) {
            return Err(Throttled {
                retry_after_secs: 1,
                scope: ThrottleScope::Global,
            });
        }
        Ok(())
    }

    fn failed_at(&self, who: Who, now: Instant) -> Result<(), Throttled> {
        let who = normalize(who);
        let mut inner = self.lock();
        if matches!(who, Who::Client(_)) {
            inner.global.take(now);
        }
        if !inner.records.contains_key(&who) {
            inner.make_room(now);
        }
        let record = inner.records.entry(who).or_insert(Record {
            failures: 0,
            last_failure: now,
            locked_until: now,
        });
        if now.duration_since(record.last_failure) >= FORGET_AFTER {
            record.failures = 0;
        }
        record.failures = record.failures.saturating_add(1);
        record.last_failure = now;
        match record.failures.saturating_sub(FREE_FAILURES) {
            0 => Ok(()),
            beyond => {
                let delay = delay_for(beyond);
                record.locked_until = now + delay;
                Err(Throttled {
                    retry_after_secs: delay.as_secs(),
                    scope: ThrottleScope::Client,
                })
            }
        }
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.lock().records.len()
    }
}

impl Inner {
    fn make_room(&mut self, now: Instant) {
        if self.records.len() < MAX_TRACKED {
            return;
        }
        self.records
            .retain(|_, r| now.duration_since(r.last_failure) < FORGET_AFTER);
        if self.records.len() >= MAX_TRACKED {
            // Still full of live entries: forget the older half rather than grow.
            let mut lasts: Vec<Instant> = self.records.values().map(|r| r.last_failure).collect();
            lasts.sort_unstable();
            let cutoff = lasts[lasts.len() / 2];
            self.records.retain(|_, r| r.last_failure > cutoff);
        }
    }
}

/// The delay of the `n`-th failure beyond the allowance (n ≥ 1): doubling, capped.
fn delay_for(n: u32) -> Duration {
    let doublings = n.saturating_sub(1).min(16);
    (FIRST_DELAY * 2u32.pow(doublings)).min(MAX_DELAY)
}

fn secs_ceil(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

fn normalize(who: Who) -> Who {
    match who {
        Who::Client(ip) => Who::Client(client_key(ip)),
        device => device,
    }
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

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        self.refilled = self.refilled.max(now);
    }

    fn available(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= 1.0
    }

    fn take(&mut self, now: Instant) {
        self.refill(now);
        self.tokens = (self.tokens - 1.0).max(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Who {
        Who::Client(s.parse().unwrap())
    }

    /// Fails once at `now` after being admitted; the answer's Retry-After if a 429.
    fn attempt(t: &AuthThrottle, who: Who, now: Instant) -> Option<u64> {
        match t.admit_at(who, now).and_then(|()| t.failed_at(who, now)) {
            Ok(()) => None,
            Err(th) => Some(th.retry_after_secs),
        }
    }

    #[test]
    fn typos_are_free_then_locks_double_up_to_the_cap() {
        let t = AuthThrottle::default();
        let mut now = Instant::now();
        let client = ip("203.0.113.5");
        for _ in 0..FREE_FAILURES {
            now += Duration::from_secs(1);
            assert_eq!(attempt(&t, client, now), None);
        }
        // Each failure beyond locks for longer; attempts are spaced past each lock.
        let mut locks = Vec::new();
        for _ in 0..8 {
            let retry = attempt(&t, client, now).unwrap();
            locks.push(retry);
            now += Duration::from_secs(retry);
        }
        assert_eq!(locks, [1, 2, 4, 8, 16, 30, 30, 30]);
        // Another client is untouched.
        assert_eq!(attempt(&t, ip("203.0.113.6"), now), None);
    }

    #[test]
    fn a_locked_client_is_refused_unevaluated_and_told_the_time_left() {
        let t = AuthThrottle::default();
        let now = Instant::now();
        let client = ip("203.0.113.5");
        for _ in 0..FREE_FAILURES {
            t.failed_at(client, now).unwrap();
        }
        let first = t.failed_at(client, now).unwrap_err();
        assert_eq!(first.retry_after_secs, 1);
        assert_eq!(first.scope, ThrottleScope::Client);
        let later = now + Duration::from_millis(400);
        assert_eq!(
            t.admit_at(client, later),
            Err(Throttled {
                retry_after_secs: 1,
                scope: ThrottleScope::Client
            })
        );
        // Refused attempts are not failures: the lock does not grow while refused.
        for _ in 0..100 {
            assert!(t.admit_at(client, later).is_err());
        }
        let unlocked = now + Duration::from_secs(1);
        assert_eq!(t.admit_at(client, unlocked), Ok(()));
        assert_eq!(
            t.failed_at(client, unlocked).unwrap_err().retry_after_secs,
            2
        );
    }

    #[test]
    fn a_device_is_throttled_only_by_its_own_failures() {
        let t = AuthThrottle::default();
        let now = Instant::now();
        // Everyone else is locked out: the address and the server-wide ceiling.
        for i in 0..GLOBAL_FAILURES_PER_SEC * 2 {
            let _ = attempt(&t, ip(&format!("10.0.0.{}", i % 250)), now);
        }
        let _ = attempt(&t, ip("127.0.0.1"), now);
        assert!(t.admit_at(ip("127.0.0.1"), now).is_err());
        let device = Who::Device([7; 16]);
        assert_eq!(t.admit_at(device, now), Ok(()));
        for _ in 0..FREE_FAILURES {
            assert_eq!(attempt(&t, device, now), None);
        }
        assert_eq!(attempt(&t, device, now), Some(1));
        assert!(t.admit_at(device, now).is_err());
        assert_eq!(t.admit_at(Who::Device([8; 16]), now), Ok(()));
    }

    #[test]
    fn a_quiet_client_is_forgotten() {
        let t = AuthThrottle::default();
        let mut now = Instant::now();
        let client = ip("203.0.113.5");
        for _ in 0..FREE_FAILURES + 3 {
            now += Duration::from_secs(60);
            let _ = attempt(&t, client, now);
        }
        now += FORGET_AFTER;
        assert_eq!(attempt(&t, client, now), None);
    }

    #[test]
    fn an_ipv6_slash_64_is_one_client() {
        let t = AuthThrottle::default();
        let now = Instant::now();
        for i in 0..FREE_FAILURES {
            let addr = ip(&format!("2001:db8:1:2:{i}::1"));
            assert_eq!(attempt(&t, addr, now), None);
        }
        assert!(attempt(&t, ip("2001:db8:1:2:ffff::9"), now).is_some());
        // The next /64 is someone else; a mapped IPv4 address is that IPv4 address.
        assert_eq!(attempt(&t, ip("2001:db8:1:3::1"), now), None);
        assert_eq!(
            client_key("::ffff:192.0.2.1".parse().unwrap()),
            "192.0.2.1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn the_global_ceiling_refuses_unevaluated_beyond_it() {
        let t = AuthThrottle::default();
        let now = Instant::now();
        for i in 0..GLOBAL_FAILURES_PER_SEC {
            let addr = ip(&format!("10.0.{}.{}", i / 200, i % 200));
            assert_eq!(attempt(&t, addr, now), None, "client {i}");
        }
        assert_eq!(
            t.admit_at(ip("10.9.9.9"), now),
            Err(Throttled {
                retry_after_secs: 1,
                scope: ThrottleScope::Global,
            })
        );
        assert_eq!(t.tracked(), GLOBAL_FAILURES_PER_SEC as usize);
        // Tokens come back with time.
        let later = now + Duration::from_millis(100);
        assert_eq!(attempt(&t, ip("10.9.9.9"), later), None);
    }

    #[test]
    fn the_table_stays_bounded() {
        let t = AuthThrottle::default();
        let mut now = Instant::now();
        for i in 0..(MAX_TRACKED as u32 + 500) {
            // One failure each, slow enough for the global ceiling.
            now += Duration::from_millis(60);
            let _ = attempt(&t, Who::Client(IpAddr::V4(i.into())), now);
        }
        assert!(t.tracked() <= MAX_TRACKED, "{}", t.tracked());
    }
}
