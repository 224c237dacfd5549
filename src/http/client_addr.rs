//! Who the client is: the socket's peer, or the address the one trusted edge in front
//! of the server reports (`MESH_TRUST_PROXY`). Only that edge's header is read: any
//! other forwarding header is the client's own text and proves nothing.

pub use crate::config::auth::TrustProxy;
use hyper::HeaderMap;
use std::net::{IpAddr, SocketAddr};

/// The client's address for this request.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trust: TrustProxy) -> IpAddr {
    let named = match trust {
        TrustProxy::Off => None,
        TrustProxy::Fly => single_address(headers, "fly-client-ip"),
        TrustProxy::Cloudflare => single_address(headers, "cf-connecting-ip"),
        TrustProxy::ForwardedHops(n) => forwarded_hop(headers, n),
    };
    // Without the header the edge promises (a request that did not come through it,
    // or a chain shorter than configured), the peer is the only address known.
    named.unwrap_or(peer)
}

fn single_address(headers: &HeaderMap, name: &str) -> Option<IpAddr> {
    let mut values = headers.get_all(name).iter();
    let value = values.next()?;
    // Two copies means something other than the edge added one: trust neither.
    if values.next().is_some() {
        return None;
    }
    parse_address(value.to_str().ok()?)
}

/// The `hops`-th entry from the right of every `X-Forwarded-For` line, in order (a
/// repeated header is one comma-separated list, RFC 9110 §5.3).
fn forwarded_hop(headers: &HeaderMap, hops: u8) -> Option<IpAddr> {
    let mut seen = 0u8;
    for line in headers.get_all("x-forwarded-for").iter().rev() {
        for entry in line.to_str().ok()?.rsplit(',') {
            seen += 1;
            if seen == hops {
                return parse_address(entry);
            }
        }
    }
    None
}

/// `203.0.113.9`, `2001:db8::1`, and the forms with a port some proxies write
/// (`203.0.113.9:4711`, `[2001:db8::1]:4711`).
fn parse_address(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn only_the_named_edges_header_counts() {
        let peer = ip("10.0.0.1");
        let h = headers(&[
            ("fly-client-ip", "198.51.100.7"),
            ("cf-connecting-ip", "203.0.113.9"),
            ("x-forwarded-for", "192.0.2.1, 192.0.2.2"),
        ]);
        assert_eq!(client_ip(peer, &h, TrustProxy::Off), peer);
        assert_eq!(client_ip(peer, &h, TrustProxy::Fly), ip("198.51.100.7"));
        assert_eq!(
            client_ip(peer, &h, TrustProxy::Cloudflare),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_ip(peer, &h, TrustProxy::ForwardedHops(1)),
            ip("192.0.2.2")
        );
        assert_eq!(
            client_ip(peer, &h, TrustProxy::ForwardedHops(2)),
            ip("192.0.2.1")
        );
        // The edge's header missing: the peer, never another header.
        let only_fly = headers(&[("fly-client-ip", "198.51.100.7")]);
        assert_eq!(client_ip(peer, &only_fly, TrustProxy::Cloudflare), peer);
    }

    #[test]
    fn forwarded_hops_count_from_the_right_across_lines() {
        let peer = ip("10.0.0.1");
        // The client wrote the first line and the left part; the proxies appended.
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6, 7.7.7.7"),
            ("x-forwarded-for", "203.0.113.5,104.22.17.40"),
        ]);
        assert_eq!(
            client_ip(peer, &h, TrustProxy::ForwardedHops(1)),
            ip("104.22.17.40")
        );
        assert_eq!(
            client_ip(peer, &h, TrustProxy::ForwardedHops(2)),
            ip("203.0.113.5")
        );
        assert_eq!(
            client_ip(peer, &h, TrustProxy::ForwardedHops(3)),
            ip("7.7.7.7")
        );
        // A chain shorter than promised, or garbage at that hop: the peer.
        assert_eq!(client_ip(peer, &h, TrustProxy::ForwardedHops(5)), peer);
        let bad = headers(&[("x-forwarded-for", "not an ip")]);
        assert_eq!(client_ip(peer, &bad, TrustProxy::ForwardedHops(1)), peer);
    }

    #[test]
    fn addresses_with_ports_and_mapped_v4_are_understood() {
        let peer = ip("10.0.0.1");
        for (value, want) in [
            ("203.0.113.9:4711", "203.0.113.9"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            ("::ffff:203.0.113.9", "203.0.113.9"),
        ] {
            let h = headers(&[("x-forwarded-for", value)]);
            assert_eq!(
                client_ip(peer, &h, TrustProxy::ForwardedHops(1)),
                ip(want),
                "{value}"
            );
        }
        // A duplicated single-address header is not believed.
        let twice = headers(&[
            ("fly-client-ip", "198.51.100.7"),
            ("fly-client-ip", "198.51.100.8"),
        ]);
        assert_eq!(client_ip(peer, &twice, TrustProxy::Fly), peer);
    }
}
