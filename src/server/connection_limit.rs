//! The per-peer cap on open connections (`MESH_MAX_CONNECTIONS_PER_PEER`), so one
//! address cannot take every slot of `MESH_MAX_CONNECTIONS`. A peer is an IPv4
//! address or an IPv6 /64 (the unit one household or server gets), as for sign-in
//! throttling. Behind a trusted edge (`MESH_TRUST_PROXY`) every connection comes from
//! the edge, so the cap is off there: counting the edge would lock everyone out, and
//! the edge limits its own clients.

use crate::http::auth_limit::client_key;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

pub struct PeerConnections {
    /// `None`: not capped (behind a trusted edge).
    max: Option<usize>,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One open connection of a peer; dropping it gives the slot back.
pub struct PeerSlot {
    table: Option<(Arc<PeerConnections>, IpAddr)>,
}

impl PeerConnections {
    pub fn new(max: Option<usize>) -> Arc<PeerConnections> {
        Arc::new(PeerConnections {
            max,
            open: Mutex::new(HashMap::new()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
        // A panic elsewhere must not stop the accept loop.
        crate::util::lock(&self.open)
    }

    /// A slot for a new connection from `peer`, or `None` at the peer's cap.
    pub fn try_open(self: &Arc<Self>, peer: IpAddr) -> Option<PeerSlot> {
        let Some(max) = self.max else {
            return Some(PeerSlot { table: None });
        };
        let key = client_key(peer);
        let mut open = self.lock();
        let count = open.entry(key).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(PeerSlot {
            table: Some((self.clone(), key)),
        })
    }

    #[cfg(test)]
    fn peers(&self) -> usize {
        self.lock().len()
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let Some((table, key)) = &self.table else {
            return;
        };
        let mut open = table.lock();
        if let Some(count) = open.get_mut(key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                // Only peers with open connections are kept: the map stays as small
                // as the number of connected peers.
                open.remove(key);
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
    fn each_peer_gets_its_share_and_gives_it_back() {
        let table = PeerConnections::new(Some(2));
        let a1 = table.try_open(ip("198.51.100.1")).unwrap();
        let _a2 = table.try_open(ip("198.51.100.1")).unwrap();
        assert!(table.try_open(ip("198.51.100.1")).is_none());
        // Another address is not affected.
        let b = table.try_open(ip("198.51.100.2")).unwrap();
        drop(a1);
        assert!(table.try_open(ip("198.51.100.1")).is_some());
        drop(b);
        assert_eq!(table.peers(), 1);
    }

    #[test]
    fn an_ipv6_slash_64_is_one_peer_and_no_cap_counts_nothing() {
        let table = PeerConnections::new(Some(1));
        let _held = table.try_open(ip("2001:db8:1:2::1")).unwrap();
        assert!(table.try_open(ip("2001:db8:1:2:ffff::7")).is_none());
        assert!(table.try_open(ip("2001:db8:1:3::1")).is_some());
        let off = PeerConnections::new(None);
        let slots: Vec<_> = (0..10).map(|_| off.try_open(ip("10.0.0.1"))).collect();
        assert!(slots.iter().all(Option::is_some));
        assert_eq!(off.peers(), 0);
    }
}
