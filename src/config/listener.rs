//! The listener's settings, for `http` and `tls` (SPEC §2): where to listen, direct TLS, the connection cap
//! and per-connection time limits, and the shutdown grace.

use crate::util::env::{readable_file, ConfigError, Vars};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// The certificate chain and private key, both PEM (`MESH_TLS_CERT`, `MESH_TLS_KEY`).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone)]
pub struct ListenerSettings {
    /// `MESH_ADDR`, else `0.0.0.0:$PORT`, else 127.0.0.1:8080.
    pub addr: SocketAddr,
    /// `MESH_TLS_CERT` and `MESH_TLS_KEY`, both or neither.
    pub tls: Option<TlsFiles>,
    /// Open connections at once (`MESH_MAX_CONNECTIONS`, default 4096); beyond: 503.
    pub max_connections: usize,
    /// Open connections from one address, IPv6 by /64 (`MESH_MAX_CONNECTIONS_PER_PEER`,
    /// default 128); beyond: 503. Not applied behind a trusted edge.
    pub max_connections_per_peer: usize,
    /// Every silent stage of a connection (`MESH_CONN_TIMEOUT_SECS`, default 10 s): TLS
    /// handshake, first bytes, request head, no request in flight, request body.
    pub conn_timeout: Duration,
    /// A write the client does not read, or an HTTP/2 stream it takes nothing from
    /// (`MESH_WRITE_TIMEOUT_SECS`, default 30 s).
    pub write_timeout: Duration,
    /// Event streams open at once (`MESH_MAX_SUBSCRIBERS`, default 4096); beyond: 429.
    pub max_subscribers: usize,
    /// Event streams open at once from one client, IPv6 by /64
    /// (`MESH_MAX_SUBSCRIBERS_PER_PEER`, default 128); beyond: 429.
    pub max_subscribers_per_peer: usize,
    /// How long running pipelines may finish after SIGTERM (`MESH_SHUTDOWN_GRACE_SECS`,
    /// default 25 s).
    pub shutdown_grace: Duration,
    /// `MESH_CORS_ORIGINS`: the browser origins (`https://chat.example`) allowed to
    /// call `/v1`; empty (the default) means no CORS at all.
    pub cors_origins: Vec<String>,
}

impl ListenerSettings {
    pub fn from_env(vars: &Vars) -> Result<ListenerSettings, ConfigError> {
        Ok(ListenerSettings {
            addr: listen_addr(vars)?,
            tls: tls_files(vars)?,
            max_connections: vars.number("MESH_MAX_CONNECTIONS", 4096, 1)? as usize,
            max_connections_per_peer: vars.number("MESH_MAX_CONNECTIONS_PER_PEER", 128, 1)?
                as usize,
            conn_timeout: vars.secs("MESH_CONN_TIMEOUT_SECS", 10, 1)?,
            write_timeout: vars.secs("MESH_WRITE_TIMEOUT_SECS", 30, 1)?,
            max_subscribers: vars.number("MESH_MAX_SUBSCRIBERS", 4096, 1)? as usize,
            max_subscribers_per_peer: vars.number("MESH_MAX_SUBSCRIBERS_PER_PEER", 128, 1)?
                as usize,
            shutdown_grace: vars.secs("MESH_SHUTDOWN_GRACE_SECS", 25, 0)?,
            cors_origins: cors_origins(vars)?,
        })
    }
}

fn listen_addr(vars: &Vars) -> Result<SocketAddr, ConfigError> {
    Ok(match (vars.get("MESH_ADDR"), vars.get("PORT")) {
        (Some(a), _) => parse_addr(&a).ok_or_else(|| {
            ConfigError::new(
                "MESH_ADDR",
                format!("\"{a}\" is not a listen address like 127.0.0.1:8080"),
            )
        })?,
        (None, Some(p)) => {
            let port: u16 = p.parse().map_err(|_| {
                ConfigError::new("PORT", format!("\"{p}\" is not a port number (0-65535)"))
            })?;
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)
        }
        (None, None) => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080),
    })
}

fn parse_addr(s: &str) -> Option<SocketAddr> {
    if let Ok(a) = s.parse() {
        return Some(a);
    }
    // "localhost:8080" is what people type; resolve it without DNS.
    let port = s.strip_prefix("localhost:")?.parse().ok()?;
    Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
}

fn tls_files(vars: &Vars) -> Result<Option<TlsFiles>, ConfigError> {
    match (vars.get("MESH_TLS_CERT"), vars.get("MESH_TLS_KEY")) {
        (Some(cert), Some(key)) => Ok(Some(TlsFiles {
            cert: readable_file("MESH_TLS_CERT", &cert)?,
            key: readable_file("MESH_TLS_KEY", &key)?,
        })),
        (Some(_), None) => Err(ConfigError::new(
            "MESH_TLS_KEY",
            "is required when MESH_TLS_CERT is set",
        )),
        (None, Some(_)) => Err(ConfigError::new(
            "MESH_TLS_CERT",
            "is required when MESH_TLS_KEY is set",
        )),
        (None, None) => Ok(None),
    }
}

/// `MESH_CORS_ORIGINS`: comma-separated origins, each `http(s)://host[:port]` exactly
/// as a browser sends it in `Origin` (no path, no trailing slash); `*` is refused, so
/// only origins someone chose can read answers made with a key.
fn cors_origins(vars: &Vars) -> Result<Vec<String>, ConfigError> {
    const VAR: &str = "MESH_CORS_ORIGINS";
    let Some(list) = vars.get(VAR) else {
        return Ok(Vec::new());
    };
    list.split(',')
        .map(|origin| {
            let origin = origin.trim().to_ascii_lowercase();
            let host = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            match host {
                Some(host)
                    if !host.is_empty()
                        && host
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b)) =>
                {
                    Ok(origin)
                }
                _ => Err(ConfigError::new(
                    VAR,
                    format!(
                        "\"{}\" is not an origin like https://chat.example or http://localhost:3000 (no path, no trailing slash, no *)",
                        crate::util::cut_chars(&origin, 80)
                    ),
                )),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<ListenerSettings, ConfigError> {
        crate::util::env::read_pairs(pairs, ListenerSettings::from_env)
    }

    #[test]
    fn localhost_is_read_without_dns_and_mesh_addr_wins_over_port() {
        let c = load(&[("MESH_ADDR", "localhost:9100"), ("PORT", "9000")]).unwrap();
        assert_eq!(c.addr.to_string(), "127.0.0.1:9100");
        assert_eq!(
            load(&[("PORT", "0")]).unwrap().addr.to_string(),
            "0.0.0.0:0"
        );
        let c = load(&[("MESH_ADDR", "[::1]:8443")]).unwrap();
        assert!(c.addr.ip().is_loopback());
    }

    #[test]
    fn tls_needs_both_readable_files() {
        let file = "/etc/hostname";
        let c = load(&[("MESH_TLS_CERT", file), ("MESH_TLS_KEY", file)]).unwrap();
        let tls = c.tls.unwrap();
        assert_eq!(tls.cert.to_str(), Some(file));
        assert_eq!(tls.key.to_str(), Some(file));
        let e = load(&[("MESH_TLS_KEY", file)]).unwrap_err();
        assert_eq!(e.variable, "MESH_TLS_CERT");
        let dir = std::env::temp_dir();
        let e = load(&[
            ("MESH_TLS_CERT", file),
            ("MESH_TLS_KEY", dir.to_str().unwrap()),
        ]);
        assert_eq!(e.unwrap_err().variable, "MESH_TLS_KEY");
    }

    #[test]
    fn connection_limits_are_read() {
        let c = load(&[
            ("MESH_MAX_CONNECTIONS", "2"),
            ("MESH_CONN_TIMEOUT_SECS", "3"),
            ("MESH_WRITE_TIMEOUT_SECS", "4"),
            ("MESH_SHUTDOWN_GRACE_SECS", "0"),
        ])
        .unwrap();
        assert_eq!(c.max_connections, 2);
        assert_eq!(load(&[]).unwrap().max_connections_per_peer, 128);
        let e = load(&[("MESH_MAX_CONNECTIONS_PER_PEER", "0")]).unwrap_err();
        assert_eq!(e.variable, "MESH_MAX_CONNECTIONS_PER_PEER");
        assert_eq!(c.conn_timeout, Duration::from_secs(3));
        assert_eq!(c.write_timeout, Duration::from_secs(4));
        assert_eq!(c.shutdown_grace, Duration::ZERO);
    }

    #[test]
    fn subscriber_caps_are_read() {
        let c = load(&[]).unwrap();
        assert_eq!((c.max_subscribers, c.max_subscribers_per_peer), (4096, 128));
        let c = load(&[
            ("MESH_MAX_SUBSCRIBERS", "10"),
            ("MESH_MAX_SUBSCRIBERS_PER_PEER", "3"),
        ])
        .unwrap();
        assert_eq!((c.max_subscribers, c.max_subscribers_per_peer), (10, 3));
        let e = load(&[("MESH_MAX_SUBSCRIBERS_PER_PEER", "0")]).unwrap_err();
        assert_eq!(e.variable, "MESH_MAX_SUBSCRIBERS_PER_PEER");
    }

    #[test]
    fn cors_origins_are_exact_origins_or_refused() {
        assert!(load(&[]).unwrap().cors_origins.is_empty());
        let c = load(&[(
            "MESH_CORS_ORIGINS",
            "https://Chat.Example, http://localhost:3000",
        )])
        .unwrap();
        assert_eq!(
            c.cors_origins,
            ["https://chat.example", "http://localhost:3000"]
        );
        for bad in [
            "*",
            "chat.example",
            "https://chat.example/",
            "https://a,",
            "ftp://x",
        ] {
            let e = load(&[("MESH_CORS_ORIGINS", bad)]).unwrap_err();
            assert_eq!(e.variable, "MESH_CORS_ORIGINS", "{bad}");
        }
    }
}
