//! The caps on event-stream subscribers across runs: per client
//! (`MESH_MAX_SUBSCRIBERS_PER_PEER`) and in all (`MESH_MAX_SUBSCRIBERS`), beside the
//! 16 a run takes. Over HTTP/2 one connection carries up to 200 streams, so the
//! connection caps alone bound nothing; these do, and the per-client one keeps a
//! single address from taking every slot. A client is an IPv4 address or an IPv6 /64,
//! as for sign-in throttling, named by the trusted edge when there is one.

use super::auth_limit::client_key;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

pub struct SubscriberCaps {
    max_total: usize,
    max_per_peer: usize,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    total: usize,
    /// Only clients with an open stream: as small as the number of them.
    by_peer: HashMap<IpAddr, usize>,
}

/// Which cap a new subscriber met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapReached {
    Server(usize),
    Peer(usize),
}

impl CapReached {
    pub fn message(self) -> String {
        match self {
            CapReached::Server(n) => format!(
                "the server already serves {n} event streams (MESH_MAX_SUBSCRIBERS); try again shortly"
            ),
            CapReached::Peer(n) => format!(
                "your address already has {n} event streams open (MESH_MAX_SUBSCRIBERS_PER_PEER); close some and try again"
            ),
        }
    }
}

/// One open event stream; dropping it gives the slot back.
pub struct SubscriberSlot {
    caps: Arc<SubscriberCaps>,
    peer: IpAddr,
}

impl SubscriberCaps {
    pub fn new(max_total: usize, max_per_peer: usize) -> Arc<SubscriberCaps> {
        Arc::new(SubscriberCaps {
            max_total,
            max_per_peer,
            open: Mutex::new(Open::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Open> {
        // Counters every writer leaves consistent.
        crate::util::lock(&self.open)
    }

    /// A slot for a new subscriber from `client`, or the cap it met.
    pub fn try_take(self: &Arc<Self>, client: IpAddr) -> Result<SubscriberSlot, CapReached> {
        let peer = client_key(client);
        let mut open = self.lock();
        if open.total >= self.max_total {
            return Err(CapReached::Server(self.max_total));
        }
        let count = open.by_peer.entry(peer).or_insert(0);
        if *count >= self.max_per_peer {
            return Err(CapReached::Peer(self.max_per_peer));
        }
        *count += 1;
        open.total += 1;
        Ok(SubscriberSlot {
            caps: self.clone(),
            peer,
        })
    }

    /// Open event streams in all.
    pub fn open(&self) -> usize {
        self.lock().total
    }
}

impl Drop for SubscriberSlot {
    fn drop(&mut self) {
        let mut open = self.caps.lock();
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.by_peer.get_mut(&self.peer) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.by_peer.remove(&self.peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn each_client_gets_its_share_within_the_total() {
        let caps = SubscriberCaps::new(3, 2);
        let a1 = caps.try_take(ip("198.51.100.1")).unwrap();
        let _a2 = caps.try_take(ip("198.51.100.1")).unwrap();
        let refused = caps.try_take(ip("198.51.100.1")).err();
        assert_eq!(refused, Some(CapReached::Peer(2)));
        let _b = caps.try_take(ip("198.51.100.2")).unwrap();
        // Three open: the total refuses a fourth client too.
        let refused = caps.try_take(ip("198.51.100.3")).err();
        assert_eq!(refused, Some(CapReached::Server(3)));
        assert!(refused.unwrap().message().contains("MESH_MAX_SUBSCRIBERS"));
        drop(a1);
        assert_eq!(caps.open(), 2);
        assert!(caps.try_take(ip("198.51.100.3")).is_ok());
        assert_eq!(caps.lock().by_peer.len(), 2);
    }

    #[test]
    fn an_ipv6_slash_64_is_one_client() {
        let caps = SubscriberCaps::new(10, 1);
        let _held = caps.try_take(ip("2001:db8:1:2::1")).unwrap();
        assert!(caps.try_take(ip("2001:db8:1:2:ffff::7")).is_err());
        assert!(caps.try_take(ip("2001:db8:1:3::1")).is_ok());
    }
}
