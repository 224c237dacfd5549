//! DNS-rebinding protection for `/mcp`: which `Origin` headers are let in, and the
//! parsing of the allow-list `MESH_MCP_ALLOWED_ORIGINS`.
//!
//! A rebinding page is served from a domain of the attacker's that resolves to this
//! server, so its requests carry a matching `Host` *and* `Origin`: "Origin equals
//! Host" proves nothing for a domain name. It does for names no attacker can point
//! here: `localhost` (browsers resolve it to loopback themselves) and IP literals.
//! Any other origin (the public name of an edge in front) must be listed.

use crate::util::origin::{normalize_origin, strip_default_port};

/// The variable that lists the extra origins allowed to call `/mcp`.
pub const ALLOWED_ORIGINS_VAR: &str = "MESH_MCP_ALLOWED_ORIGINS";

/// Whether a request with this `Origin` (if any) and `Host` may use `/mcp`.
pub fn allowed(origin: Option<&[u8]>, host: Option<&str>, allow_list: &[String]) -> bool {
    // Non-browser clients send no Origin; browsers always send one on a POST.
    let Some(origin) = origin else {
        return true;
    };
    let Some(origin) = std::str::from_utf8(origin).ok().and_then(normalize_origin) else {
        return false;
    };
    if allow_list.contains(&origin) {
        return true;
    }
    let Some(host) = host else {
        return false;
    };
    let Some((_, authority)) = origin.split_once("://") else {
        return false;
    };
    let host = host.trim().to_ascii_lowercase();
    strip_default_port(&origin, &host) == authority && cannot_be_rebound(hostname(authority))
}

/// The host part of `host[:port]` (an IPv6 literal keeps its brackets).
fn hostname(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority
            .find(']')
            .map_or(authority, |end| &authority[..=end]);
    }
    authority.split(':').next().unwrap_or(authority)
}

fn cannot_be_rebound(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    host == "localhost"
        || host.ends_with(".localhost")
        || host.parse::<std::net::Ipv4Addr>().is_ok()
        || host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .is_some_and(|h| h.parse::<std::net::Ipv6Addr>().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(origin: &str, host: &str, list: &[&str]) -> bool {
        let list: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        allowed(Some(origin.as_bytes()), Some(host), &list)
    }

    #[test]
    fn loopback_and_ip_origins_matching_the_host_pass() {
        assert!(ok("http://localhost:8080", "localhost:8080", &[]));
        assert!(ok("http://127.0.0.1:8080", "127.0.0.1:8080", &[]));
        assert!(ok("http://[::1]:8080", "[::1]:8080", &[]));
        assert!(ok("https://10.0.0.5", "10.0.0.5:443", &[]));
        assert!(ok("HTTP://LOCALHOST:8080", "localhost:8080", &[]));
        assert!(allowed(None, Some("anything"), &[]));
    }

    #[test]
    fn a_rebound_domain_is_refused_even_when_host_matches() {
        assert!(!ok(
            "http://evil.example.com",
            "evil.example.com",
            &["https://mesh.example.com"]
        ));
        assert!(!ok("http://localhost:9999", "localhost:8080", &[]));
        assert!(!ok("null", "localhost:8080", &[]));
        assert!(!ok("http://127.0.0.1.evil.com", "127.0.0.1.evil.com", &[]));
    }

    #[test]
    fn the_allow_list_lets_an_edge_origin_in() {
        let list =
            crate::util::origin::parse_origin_list("https://mesh.example.com, http://a.test:8080")
                .unwrap();
        let list: Vec<&str> = list.iter().map(String::as_str).collect();
        assert!(ok("https://mesh.example.com", "10.1.2.3:8080", &list));
        assert!(ok("http://a.test:8080", "internal:8080", &list));
        assert!(!ok("http://a.test:8081", "internal:8080", &list));
    }
}
