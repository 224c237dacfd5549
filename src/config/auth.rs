//! Who may call the server, for `http` (SPEC §2): the Basic login, bearer API keys, the opt-out for
//! a non-loopback listener without a login, and the trusted edge that names the client.

use crate::secret::Secret;
use crate::util::env::{ConfigError, Vars};
use std::net::SocketAddr;

/// Which edge stands in front of the server, and so which header names the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustProxy {
    /// No edge: the socket's peer is the client.
    Off,
    /// Fly.io's proxy, which sets `Fly-Client-IP`.
    Fly,
    /// Cloudflare, which sets `CF-Connecting-IP`.
    Cloudflare,
    /// This many proxies that each append the address they were connected from to
    /// `X-Forwarded-For`: the client is the Nth entry from the right. Entries further
    /// left were written by the client itself.
    ForwardedHops(u8),
}

/// More hops than any real chain of proxies; a larger number is a typo.
const MAX_HOPS: u8 = 10;

impl TrustProxy {
    /// Parses `MESH_TRUST_PROXY`: unset or `0`/`off` is [`TrustProxy::Off`]; `fly`,
    /// `cloudflare`, or a number of `X-Forwarded-For` hops (`1` = the entry the one
    /// proxy in front appended). The error is the one-line reason for exit code 2.
    pub fn parse(value: Option<&str>) -> Result<TrustProxy, String> {
        let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
            return Ok(TrustProxy::Off);
        };
        match v.to_ascii_lowercase().as_str() {
            "0" | "off" | "no" | "false" => return Ok(TrustProxy::Off),
            "fly" => return Ok(TrustProxy::Fly),
            "cloudflare" => return Ok(TrustProxy::Cloudflare),
            _ => {}
        }
        match v.parse::<u8>() {
            Ok(n) if (1..=MAX_HOPS).contains(&n) => Ok(TrustProxy::ForwardedHops(n)),
            _ => Err(format!(
                "\"{v}\" is not off, fly (Fly-Client-IP), cloudflare (CF-Connecting-IP) or a number of X-Forwarded-For hops from 1 to {MAX_HOPS} (1 = the address the one proxy in front of the server appends)"
            )),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: String,
    pub pass: Secret,
}

#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// `MESH_USER` and `MESH_PASS`, both or neither; `None` leaves the server open.
    pub credentials: Option<Credentials>,
    /// `MESH_INSECURE_NO_AUTH`: listen beyond loopback without a login.
    pub insecure_no_auth: bool,
    /// Keys for API clients (`MESH_API_KEYS`, comma-separated): set alone, they turn
    /// authentication on; accepted as `Bearer <key>` or as the Basic password.
    pub api_keys: Vec<Secret>,
    /// Which edge names the client (`MESH_TRUST_PROXY`), for sign-in throttling.
    pub trust_proxy: TrustProxy,
    /// `MESH_MCP_ALLOWED_ORIGINS`: browser origins allowed to call `/mcp` besides
    /// loopback and IP-literal ones (see `api::mcp::origin`).
    pub mcp_allowed_origins: Vec<String>,
}

impl AuthSettings {
    /// `listen` is the listener's address: beyond loopback a login is required.
    pub fn from_env(vars: &Vars, listen: SocketAddr) -> Result<AuthSettings, ConfigError> {
        let credentials = credentials(vars)?;
        let insecure_no_auth = vars.flag("MESH_INSECURE_NO_AUTH")?;
        if credentials.is_none() && !listen.ip().is_loopback() && !insecure_no_auth {
            return Err(ConfigError::new(
                "MESH_USER",
                format!(
                    "listening on non-loopback address {listen} needs MESH_USER and MESH_PASS (or MESH_INSECURE_NO_AUTH=1)"
                ),
            ));
        }
        let api_keys = api_keys(vars)?;
        let trust_proxy = TrustProxy::parse(vars.get("MESH_TRUST_PROXY").as_deref())
            .map_err(|why| ConfigError::new("MESH_TRUST_PROXY", why))?;
        // An edge in front means the internet reaches this server, loopback or not.
        if trust_proxy != TrustProxy::Off
            && credentials.is_none()
            && api_keys.is_empty()
            && !insecure_no_auth
        {
            return Err(ConfigError::new(
                "MESH_TRUST_PROXY",
                "is set (an edge in front forwards the internet to this server), so credentials are required: set MESH_USER and MESH_PASS, or MESH_API_KEYS (or MESH_INSECURE_NO_AUTH=1 to serve it without authentication)",
            ));
        }
        Ok(AuthSettings {
            credentials,
            insecure_no_auth,
            api_keys,
            trust_proxy,
            mcp_allowed_origins: crate::util::origin::parse_origin_list(
                &vars.get("MESH_MCP_ALLOWED_ORIGINS").unwrap_or_default(),
            )
            .map_err(|why| ConfigError::new("MESH_MCP_ALLOWED_ORIGINS", why))?,
        })
    }

    /// Whether requests must authenticate: any configured credential turns it on,
    /// Basic credentials or API keys alike.
    pub fn auth_required(&self) -> bool {
        self.credentials.is_some() || !self.api_keys.is_empty()
    }
}

fn credentials(vars: &Vars) -> Result<Option<Credentials>, ConfigError> {
    match (vars.get("MESH_USER"), vars.get_untrimmed("MESH_PASS")) {
        (Some(user), Some(pass)) => {
            if user.contains(':') {
                return Err(ConfigError::new(
                    "MESH_USER",
                    "must not contain ':' (Basic auth separates user and password with it)",
                ));
            }
            Ok(Some(Credentials {
                user,
                pass: Secret::new(pass),
            }))
        }
        (Some(_), None) => Err(ConfigError::new(
            "MESH_PASS",
            "is required when MESH_USER is set",
        )),
        (None, Some(_)) => Err(ConfigError::new(
            "MESH_USER",
            "is required when MESH_PASS is set",
        )),
        (None, None) => Ok(None),
    }
}

/// `MESH_API_KEYS`: comma-separated bearer keys. An empty entry is refused: it
/// usually means a stray comma, and an empty key would let anyone in.
fn api_keys(vars: &Vars) -> Result<Vec<Secret>, ConfigError> {
    let Some(list) = vars.get("MESH_API_KEYS") else {
        return Ok(Vec::new());
    };
    list.split(',')
        .enumerate()
        .map(|(i, k)| {
            let k = k.trim();
            if k.is_empty() {
                Err(ConfigError::new(
                    "MESH_API_KEYS",
                    format!("entry {} is empty (keys are separated by commas)", i + 1),
                ))
            } else {
                Ok(Secret::new(k))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOOPBACK: &str = "127.0.0.1:8080";

    fn load(pairs: &[(&str, &str)], listen: &str) -> Result<AuthSettings, ConfigError> {
        crate::util::env::read_pairs(pairs, |vars| {
            AuthSettings::from_env(vars, listen.parse().unwrap())
        })
    }

    #[test]
    fn the_password_is_kept_as_given_and_the_user_trimmed() {
        let c = load(
            &[("MESH_USER", " ann "), ("MESH_PASS", " pass word ")],
            LOOPBACK,
        )
        .unwrap();
        let creds = c.credentials.unwrap();
        assert_eq!(creds.user, "ann");
        assert_eq!(creds.pass.expose(), " pass word ");
        let e = load(&[("MESH_USER", "a:b"), ("MESH_PASS", "p")], LOOPBACK).unwrap_err();
        assert_eq!(e.variable, "MESH_USER");
        assert!(e.reason.contains("':'"), "{e}");
    }

    #[test]
    fn beyond_loopback_a_login_or_the_opt_out_is_required() {
        let e = load(&[], "0.0.0.0:8080").unwrap_err();
        assert_eq!(e.variable, "MESH_USER");
        assert!(e.reason.contains("0.0.0.0:8080"), "{e}");
        let c = load(&[("MESH_INSECURE_NO_AUTH", "yes")], "0.0.0.0:8080").unwrap();
        assert!(c.insecure_no_auth && c.credentials.is_none());
        let c = load(&[("MESH_USER", "u"), ("MESH_PASS", "p")], "0.0.0.0:8080").unwrap();
        assert!(!c.insecure_no_auth);
    }

    #[test]
    fn the_setting_names_one_edge_or_a_hop_count() {
        assert_eq!(TrustProxy::parse(None), Ok(TrustProxy::Off));
        assert_eq!(TrustProxy::parse(Some(" ")), Ok(TrustProxy::Off));
        assert_eq!(TrustProxy::parse(Some("0")), Ok(TrustProxy::Off));
        assert_eq!(TrustProxy::parse(Some("off")), Ok(TrustProxy::Off));
        assert_eq!(TrustProxy::parse(Some("fly")), Ok(TrustProxy::Fly));
        assert_eq!(TrustProxy::parse(Some("Fly")), Ok(TrustProxy::Fly));
        assert_eq!(
            TrustProxy::parse(Some("cloudflare")),
            Ok(TrustProxy::Cloudflare)
        );
        assert_eq!(
            TrustProxy::parse(Some("1")),
            Ok(TrustProxy::ForwardedHops(1))
        );
        assert_eq!(
            TrustProxy::parse(Some("2")),
            Ok(TrustProxy::ForwardedHops(2))
        );
        for bad in ["true", "yes", "on", "11", "-1", "render", "1.5"] {
            let why = TrustProxy::parse(Some(bad)).unwrap_err();
            assert!(why.contains("fly") && why.contains("hops"), "{bad}: {why}");
        }
    }

    #[test]
    fn an_edge_in_front_needs_credentials_of_some_kind() {
        for value in ["fly", "cloudflare", "1"] {
            let e = load(&[("MESH_TRUST_PROXY", value)], LOOPBACK).unwrap_err();
            assert_eq!(e.variable, "MESH_TRUST_PROXY");
            for named in [
                "MESH_USER",
                "MESH_PASS",
                "MESH_API_KEYS",
                "MESH_INSECURE_NO_AUTH",
            ] {
                assert!(e.reason.contains(named), "{e}");
            }
            let with_keys = [("MESH_TRUST_PROXY", value), ("MESH_API_KEYS", "k")];
            assert!(load(&with_keys, LOOPBACK).unwrap().auth_required());
            let with_login = [
                ("MESH_TRUST_PROXY", value),
                ("MESH_USER", "u"),
                ("MESH_PASS", "p"),
            ];
            assert!(load(&with_login, LOOPBACK).unwrap().auth_required());
            let opted_out = [("MESH_TRUST_PROXY", value), ("MESH_INSECURE_NO_AUTH", "1")];
            assert!(!load(&opted_out, LOOPBACK).unwrap().auth_required());
        }
        // "off" is no edge, and loopback without anything stays open for local use.
        let off = [("MESH_TRUST_PROXY", "off")];
        assert!(!load(&off, LOOPBACK).unwrap().auth_required());
        assert!(!load(&[], LOOPBACK).unwrap().auth_required());
        let keys = [("MESH_API_KEYS", "k")];
        assert!(load(&keys, LOOPBACK).unwrap().auth_required());
    }

    #[test]
    fn keys_and_the_trusted_edge_are_read() {
        let c = load(
            &[("MESH_API_KEYS", " k1 ,k2"), ("MESH_TRUST_PROXY", "fly")],
            LOOPBACK,
        )
        .unwrap();
        let keys: Vec<&str> = c.api_keys.iter().map(|k| k.expose()).collect();
        assert_eq!(keys, ["k1", "k2"]);
        assert_eq!(c.trust_proxy, TrustProxy::Fly);
        let e = load(&[("MESH_API_KEYS", ",k")], LOOPBACK).unwrap_err();
        assert!(e.reason.starts_with("entry 1 is empty"), "{e}");
    }
}
