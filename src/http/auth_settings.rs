//! Who may call the server (SPEC §2): the Basic login, bearer API keys, the opt-out for
//! a non-loopback listener without a login, and the trusted edge that names the client.

use super::client_addr::TrustProxy;
use crate::env::{ConfigError, Vars};
use crate::secret::Secret;
use std::net::SocketAddr;

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
    /// Bearer keys for API clients (`MESH_API_KEYS`, comma-separated), accepted
    /// beside Basic auth.
    pub api_keys: Vec<Secret>,
    /// Which edge names the client (`MESH_TRUST_PROXY`), for sign-in throttling.
    pub trust_proxy: TrustProxy,
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
        Ok(AuthSettings {
            credentials,
            insecure_no_auth,
            api_keys: api_keys(vars)?,
            trust_proxy: TrustProxy::parse(vars.get("MESH_TRUST_PROXY").as_deref())
                .map_err(|why| ConfigError::new("MESH_TRUST_PROXY", why))?,
        })
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
        crate::env::read_pairs(pairs, |vars| {
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
