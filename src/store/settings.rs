//! The run store's settings (SPEC §2): how long runs are kept, how many may run, the
//! disconnect grace, and the shared Redis store with its CA and outage budget.

use super::redis::RedisUrl;
use super::StoreLimits;
use crate::util::env::{ConfigError, Vars};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// `MESH_RUN_TTL_SECS` (600), `MESH_MAX_ACTIVE_RUNS` (64),
    /// `MESH_DISCONNECT_GRACE_SECS` (10).
    pub limits: StoreLimits,
    /// `MESH_REDIS_URL`: the shared run store; `None` keeps runs in memory.
    pub redis: Option<RedisSettings>,
}

#[derive(Debug, Clone)]
pub struct RedisSettings {
    pub url: RedisUrl,
    /// `MESH_REDIS_CA_FILE`: the PEM roots a `rediss://` server is checked against,
    /// in place of the web PKI (a self-hosted Redis with its own CA).
    pub ca_file: Option<PathBuf>,
    /// `MESH_REDIS_OUTAGE_SECS` (default 30 s): how long a running pipeline keeps its
    /// events buffered while Redis is unreachable before it ends `failed`.
    pub outage: Duration,
}

impl StoreSettings {
    pub fn from_env(vars: &Vars) -> Result<StoreSettings, ConfigError> {
        let url = match vars.get("MESH_REDIS_URL") {
            Some(u) => {
                Some(RedisUrl::parse(&u).map_err(|why| ConfigError::new("MESH_REDIS_URL", why))?)
            }
            None => None,
        };
        let ca_file = redis_ca_file(vars, url.as_ref())?;
        let max_active_runs = vars.number("MESH_MAX_ACTIVE_RUNS", 64, 1)? as usize;
        // Running runs are retained runs, and at most 1,000 are retained: more could
        // never run at once, and the 429 would name a limit that is not the real one.
        if max_active_runs > super::MAX_RETAINED_RUNS {
            return Err(ConfigError::new(
                "MESH_MAX_ACTIVE_RUNS",
                format!(
                    "{max_active_runs} is above {}, the number of runs the server retains (running or finished)",
                    super::MAX_RETAINED_RUNS
                ),
            ));
        }
        let limits = StoreLimits {
            run_ttl: vars.secs("MESH_RUN_TTL_SECS", 600, 0)?,
            max_active_runs,
            disconnect_grace: vars.secs("MESH_DISCONNECT_GRACE_SECS", 10, 0)?,
        };
        let outage = vars.secs("MESH_REDIS_OUTAGE_SECS", 30, 1)?;
        Ok(StoreSettings {
            limits,
            redis: url.map(|url| RedisSettings {
                url,
                ca_file,
                outage,
            }),
        })
    }
}

/// `MESH_REDIS_CA_FILE`: only with a `rediss://` URL, and a file of PEM certificates.
fn redis_ca_file(vars: &Vars, url: Option<&RedisUrl>) -> Result<Option<PathBuf>, ConfigError> {
    const VAR: &str = "MESH_REDIS_CA_FILE";
    if vars.get(VAR).is_none() {
        return Ok(None);
    }
    if !url.is_some_and(|u| u.is_tls()) {
        return Err(ConfigError::new(
            VAR,
            "is set, but MESH_REDIS_URL is not a rediss:// (TLS) URL",
        ));
    }
    let path = vars.file(VAR)?;
    if let Some(p) = &path {
        crate::util::pem::load_ca_file(p).map_err(|e| ConfigError::new(VAR, e))?;
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<StoreSettings, ConfigError> {
        crate::util::env::read_pairs(pairs, StoreSettings::from_env)
    }

    #[test]
    fn redis_url_selects_the_shared_store_and_ttls_may_be_days() {
        assert!(load(&[]).unwrap().redis.is_none());
        let c = load(&[
            (
                "MESH_REDIS_URL",
                "rediss://default:pw-123@kv.render.com:6379",
            ),
            ("MESH_RUN_TTL_SECS", "2592000"),
        ])
        .unwrap();
        let redis = c.redis.as_ref().unwrap();
        assert!(redis.url.is_tls());
        assert_eq!(c.limits.run_ttl, Duration::from_secs(30 * 24 * 3600));
        assert_eq!(redis.outage, Duration::from_secs(30));
        assert!(!format!("{c:?}").contains("pw-123"));
        let e = load(&[("MESH_REDIS_URL", "redis://u:pw-123@")]).unwrap_err();
        assert_eq!(e.variable, "MESH_REDIS_URL");
        assert!(!e.to_string().contains("pw-123"), "{e}");
    }

    #[test]
    fn a_redis_ca_file_is_taken_with_a_tls_url() {
        let dir = std::env::temp_dir().join(format!("mesh-rca-{}", crate::ids::new_run_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let pem = dir.join("redis-ca.pem");
        std::fs::write(&pem, cert.cert.pem()).unwrap();
        let c = load(&[
            ("MESH_REDIS_URL", "rediss://kv.example:6379"),
            ("MESH_REDIS_CA_FILE", pem.to_str().unwrap()),
            ("MESH_REDIS_OUTAGE_SECS", "5"),
        ])
        .unwrap();
        let redis = c.redis.unwrap();
        assert_eq!(redis.ca_file.as_deref(), Some(pem.as_path()));
        assert_eq!(redis.outage, Duration::from_secs(5));
        let e = load(&[("MESH_REDIS_CA_FILE", pem.to_str().unwrap())]).unwrap_err();
        assert_eq!(e.variable, "MESH_REDIS_CA_FILE");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
