//! Every environment variable of SPEC §2, parsed and validated before the server binds.

use crate::http::client_addr::TrustProxy;
use crate::model::provider_id::ProviderId;
use crate::pipeline::roster::Roster;
use crate::secret::Secret;
use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// Where configuration comes from: the process environment in production, a map in tests.
pub trait Env {
    fn var(&self, key: &str) -> Option<String>;
}

pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, key: &str) -> Option<String> {
        std::env::var(key).ok()
    }
}

impl Env for HashMap<String, String> {
    fn var(&self, key: &str) -> Option<String> {
        self.get(key).cloned()
    }
}

impl Env for HashMap<&str, &str> {
    fn var(&self, key: &str) -> Option<String> {
        self.get(key).map(|v| v.to_string())
    }
}

/// A configuration problem: the variable and a one-line reason (exit code 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub variable: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.variable, self.reason)
    }
}

impl std::error::Error for ConfigError {}

fn err(variable: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        variable: variable.to_string(),
        reason: reason.into(),
    }
}

#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: String,
    pub pass: Secret,
}

/// One OpenAI-compatible or Anthropic endpoint.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub api_key: Option<Secret>,
    pub base_url: String,
}

#[derive(Debug, Clone)]
pub struct NousSettings {
    pub api_key: Option<Secret>,
    pub base_url: String,
    /// True when `NOUS_BASE_URL` was set: a portal-returned inference URL must then equal it.
    pub base_url_explicit: bool,
    pub portal_url: String,
    /// True when `NOUS_PORTAL_URL` was set: it then wins over the portal named in auth.json.
    pub portal_url_explicit: bool,
    pub hermes_home: Option<PathBuf>,
}

impl NousSettings {
    pub fn auth_file(&self) -> Option<PathBuf> {
        self.hermes_home.as_ref().map(|h| h.join("auth.json"))
    }
}

#[derive(Debug, Clone)]
pub struct ProviderSettings {
    pub openrouter: Endpoint,
    pub nous: NousSettings,
    pub anthropic: Endpoint,
    pub openai: Endpoint,
    /// `None` unless `CUSTOM_BASE_URL` is set; its key is optional.
    pub custom: Option<Endpoint>,
}

impl ProviderSettings {
    /// Whether the provider has what it needs to be called (a key, a base URL, or a
    /// Hermes login file). Offline is always configured.
    pub fn is_configured(&self, id: ProviderId) -> bool {
        match id {
            ProviderId::OpenRouter => self.openrouter.api_key.is_some(),
            ProviderId::Nous => {
                self.nous.api_key.is_some() || self.nous.auth_file().is_some_and(|p| p.is_file())
            }
            ProviderId::Anthropic => self.anthropic.api_key.is_some(),
            ProviderId::OpenAi => self.openai.api_key.is_some(),
            ProviderId::Custom => self.custom.is_some(),
            ProviderId::Offline => true,
        }
    }

    pub fn configured(&self) -> Vec<ProviderId> {
        ProviderId::ALL
            .into_iter()
            .filter(|p| self.is_configured(*p))
            .collect()
    }

    pub fn base_url(&self, id: ProviderId) -> Option<&str> {
        match id {
            ProviderId::OpenRouter => Some(&self.openrouter.base_url),
            ProviderId::Nous => Some(&self.nous.base_url),
            ProviderId::Anthropic => Some(&self.anthropic.base_url),
            ProviderId::OpenAi => Some(&self.openai.base_url),
            ProviderId::Custom => self.custom.as_ref().map(|c| c.base_url.as_str()),
            ProviderId::Offline => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub addr: SocketAddr,
    pub credentials: Option<Credentials>,
    pub insecure_no_auth: bool,
    pub provider: ProviderId,
    pub providers: ProviderSettings,
    pub ca_file: Option<PathBuf>,
    pub roster: Roster,
    pub run_ttl: Duration,
    pub max_active_runs: usize,
    pub disconnect_grace: Duration,
    pub ttft_timeout: Duration,
    pub idle_timeout: Duration,
    pub shutdown_grace: Duration,
    pub offline_delay: Duration,
    pub log_level: crate::log::Level,
    pub tls: Option<TlsFiles>,
    /// Which edge names the client (`MESH_TRUST_PROXY`), for sign-in throttling.
    pub trust_proxy: TrustProxy,
    /// Open connections at once (`MESH_MAX_CONNECTIONS`, default 4096); beyond: 503.
    pub max_connections: usize,
    /// Every silent stage of a connection (`MESH_CONN_TIMEOUT_SECS`, default 10 s): TLS
    /// handshake, first bytes, request head, no request in flight, request body.
    pub conn_timeout: Duration,
    /// A write the client does not read (`MESH_WRITE_TIMEOUT_SECS`, default 30 s).
    pub write_timeout: Duration,
    /// `MESH_SCHEDULE`: sequential (default) or parallel.
    pub schedule: crate::model::run_config::Schedule,
    /// `MESH_MAX_PARALLEL`: agent calls of one run at once (default 3, 1-16).
    pub max_parallel: usize,
    /// Bearer keys for API clients (`MESH_API_KEYS`, comma-separated), accepted
    /// beside Basic auth.
    pub api_keys: Vec<Secret>,
    /// `MESH_REDIS_URL`: the shared run store; `None` keeps runs in memory.
    pub redis_url: Option<crate::store::redis::RedisUrl>,
    /// `MESH_REDIS_CA_FILE`: the PEM roots a `rediss://` server is checked against,
    /// in place of the web PKI (a self-hosted Redis with its own CA).
    pub redis_ca_file: Option<PathBuf>,
    /// `MESH_REDIS_OUTAGE_SECS` (default 30 s): how long a running pipeline keeps its
    /// events buffered while Redis is unreachable before it ends `failed`.
    pub redis_outage: Duration,
    /// `MESH_MCP_ALLOWED_ORIGINS`: browser origins allowed to call `/mcp` besides
    /// loopback and IP-literal ones (see `api::mcp::origin`).
    pub mcp_allowed_origins: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Config {
    /// Reads and validates every variable; the first problem is returned.
    pub fn from_env(env: &dyn Env) -> Result<Config, ConfigError> {
        let get = |k: &str| {
            env.var(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };

        let addr = match (get("MESH_ADDR"), get("PORT")) {
            (Some(a), _) => parse_addr(&a).ok_or_else(|| {
                err(
                    "MESH_ADDR",
                    format!("\"{a}\" is not a listen address like 127.0.0.1:8080"),
                )
            })?,
            (None, Some(p)) => {
                let port: u16 = p
                    .parse()
                    .map_err(|_| err("PORT", format!("\"{p}\" is not a port number (0-65535)")))?;
                SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)
            }
            (None, None) => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080),
        };

        let credentials = match (
            get("MESH_USER"),
            env.var("MESH_PASS").filter(|p| !p.is_empty()),
        ) {
            (Some(user), Some(pass)) => {
                if user.contains(':') {
                    return Err(err(
                        "MESH_USER",
                        "must not contain ':' (Basic auth separates user and password with it)",
                    ));
                }
                Some(Credentials {
                    user,
                    pass: Secret::new(pass),
                })
            }
            (Some(_), None) => return Err(err("MESH_PASS", "is required when MESH_USER is set")),
            (None, Some(_)) => return Err(err("MESH_USER", "is required when MESH_PASS is set")),
            (None, None) => None,
        };
        let insecure_no_auth = parse_flag(&get, "MESH_INSECURE_NO_AUTH")?;
        if credentials.is_none() && !addr.ip().is_loopback() && !insecure_no_auth {
            return Err(err(
                "MESH_USER",
                format!(
                    "listening on non-loopback address {addr} needs MESH_USER and MESH_PASS (or MESH_INSECURE_NO_AUTH=1)"
                ),
            ));
        }

        let key = |k: &str| get(k).map(Secret::new);
        let url = |k: &str, default: &str| -> Result<String, ConfigError> {
            match get(k) {
                Some(u) => validate_url(k, &u),
                None => Ok(default.to_string()),
            }
        };
        let hermes_home = match get("HERMES_HOME") {
            Some(h) => Some(PathBuf::from(h)),
            None => default_hermes_home(&get),
        };
        let providers = ProviderSettings {
            openrouter: Endpoint {
                api_key: key("OPENROUTER_API_KEY"),
                base_url: url("OPENROUTER_BASE_URL", "https://openrouter.ai/api/v1")?,
            },
            nous: NousSettings {
                api_key: key("NOUS_API_KEY"),
                base_url: url("NOUS_BASE_URL", "https://inference-api.nousresearch.com/v1")?,
                base_url_explicit: get("NOUS_BASE_URL").is_some(),
                portal_url: url("NOUS_PORTAL_URL", "https://portal.nousresearch.com")?,
                portal_url_explicit: get("NOUS_PORTAL_URL").is_some(),
                hermes_home,
            },
            anthropic: Endpoint {
                api_key: key("ANTHROPIC_API_KEY"),
                base_url: url("ANTHROPIC_BASE_URL", "https://api.anthropic.com")?,
            },
            openai: Endpoint {
                api_key: key("OPENAI_API_KEY"),
                base_url: url("OPENAI_BASE_URL", "https://api.openai.com/v1")?,
            },
            custom: match get("CUSTOM_BASE_URL") {
                Some(u) => Some(Endpoint {
                    api_key: key("CUSTOM_API_KEY"),
                    base_url: validate_url("CUSTOM_BASE_URL", &u)?,
                }),
                None => None,
            },
        };

        let provider = match get("MESH_PROVIDER") {
            Some(name) => {
                let id = ProviderId::parse(&name).ok_or_else(|| {
                    err("MESH_PROVIDER", format!(
                        "unknown provider \"{name}\" (expected openrouter, nous, anthropic, openai, custom or offline)"
                    ))
                })?;
                if !providers.is_configured(id) {
                    return Err(err(
                        "MESH_PROVIDER",
                        format!("provider \"{id}\" is not configured: {}", missing_hint(id)),
                    ));
                }
                id
            }
            None => providers
                .configured()
                .into_iter()
                .next()
                .unwrap_or(ProviderId::Offline),
        };

        let ca_file = match get("MESH_CA_FILE") {
            Some(p) => {
                let path = readable_file("MESH_CA_FILE", &p)?;
                crate::providers::client::load_ca_file(&path)
                    .map_err(|e| err("MESH_CA_FILE", e))?;
                Some(path)
            }
            None => None,
        };
        let redis_url = match get("MESH_REDIS_URL") {
            Some(u) => Some(
                crate::store::redis::RedisUrl::parse(&u)
                    .map_err(|why| err("MESH_REDIS_URL", why))?,
            ),
            None => None,
        };
        let redis_ca_file = match get("MESH_REDIS_CA_FILE") {
            Some(p) => {
                if !redis_url.as_ref().is_some_and(|u| u.is_tls()) {
                    return Err(err(
                        "MESH_REDIS_CA_FILE",
                        "is set, but MESH_REDIS_URL is not a rediss:// (TLS) URL".to_string(),
                    ));
                }
                let path = readable_file("MESH_REDIS_CA_FILE", &p)?;
                crate::providers::client::load_ca_file(&path)
                    .map_err(|e| err("MESH_REDIS_CA_FILE", e))?;
                Some(path)
            }
            None => None,
        };
        let roster = match get("MESH_AGENTS") {
            Some(p) => {
                let path = readable_file("MESH_AGENTS", &p)?;
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| err("MESH_AGENTS", format!("cannot read {p}: {e}")))?;
                Roster::from_json(&text)
                    .map_err(|(at, why)| err("MESH_AGENTS", format!("{p}: {at}: {why}")))?
            }
            None => Roster::builtin(),
        };
        let tls = match (get("MESH_TLS_CERT"), get("MESH_TLS_KEY")) {
            (Some(c), Some(k)) => Some(TlsFiles {
                cert: readable_file("MESH_TLS_CERT", &c)?,
                key: readable_file("MESH_TLS_KEY", &k)?,
            }),
            (Some(_), None) => {
                return Err(err("MESH_TLS_KEY", "is required when MESH_TLS_CERT is set"))
            }
            (None, Some(_)) => {
                return Err(err("MESH_TLS_CERT", "is required when MESH_TLS_KEY is set"))
            }
            (None, None) => None,
        };

        let log_level = match get("MESH_LOG") {
            Some(l) => crate::log::Level::parse(&l).ok_or_else(|| {
                err(
                    "MESH_LOG",
                    format!("\"{l}\" is not one of error, warn, info, debug"),
                )
            })?,
            None => crate::log::Level::Info,
        };

        let schedule = match get("MESH_SCHEDULE") {
            Some(s) => crate::model::run_config::Schedule::parse(&s).ok_or_else(|| {
                err(
                    "MESH_SCHEDULE",
                    format!("\"{s}\" is not sequential or parallel"),
                )
            })?,
            None => Default::default(),
        };
        let max_parallel = match get("MESH_MAX_PARALLEL") {
            None => 3,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=16).contains(&n) => n,
                _ => {
                    return Err(err(
                        "MESH_MAX_PARALLEL",
                        format!("\"{v}\" is not a whole number from 1 to 16"),
                    ))
                }
            },
        };

        Ok(Config {
            schedule,
            max_parallel,
            addr,
            credentials,
            insecure_no_auth,
            provider,
            providers,
            ca_file,
            roster,
            run_ttl: secs(&get, "MESH_RUN_TTL_SECS", 600, 0)?,
            max_active_runs: number(&get, "MESH_MAX_ACTIVE_RUNS", 64, 1)? as usize,
            disconnect_grace: secs(&get, "MESH_DISCONNECT_GRACE_SECS", 10, 0)?,
            ttft_timeout: secs(&get, "MESH_TTFT_TIMEOUT_SECS", 90, 1)?,
            idle_timeout: secs(&get, "MESH_IDLE_TIMEOUT_SECS", 60, 1)?,
            shutdown_grace: secs(&get, "MESH_SHUTDOWN_GRACE_SECS", 25, 0)?,
            offline_delay: Duration::from_millis(number(&get, "MESH_OFFLINE_DELAY_MS", 12, 0)?),
            log_level,
            tls,
            trust_proxy: TrustProxy::parse(get("MESH_TRUST_PROXY").as_deref())
                .map_err(|why| err("MESH_TRUST_PROXY", why))?,
            max_connections: number(&get, "MESH_MAX_CONNECTIONS", 4096, 1)? as usize,
            conn_timeout: secs(&get, "MESH_CONN_TIMEOUT_SECS", 10, 1)?,
            write_timeout: secs(&get, "MESH_WRITE_TIMEOUT_SECS", 30, 1)?,
            api_keys: api_keys(&get)?,
            redis_url,
            redis_ca_file,
            redis_outage: secs(&get, "MESH_REDIS_OUTAGE_SECS", 30, 1)?,
            mcp_allowed_origins: crate::util::origin::parse_origin_list(
                &get("MESH_MCP_ALLOWED_ORIGINS").unwrap_or_default(),
            )
            .map_err(|why| err("MESH_MCP_ALLOWED_ORIGINS", why))?,
        })
    }
}

/// `MESH_API_KEYS`: comma-separated bearer keys. An empty entry is refused: it
/// usually means a stray comma, and an empty key would let anyone in.
fn api_keys(get: &dyn Fn(&str) -> Option<String>) -> Result<Vec<Secret>, ConfigError> {
    let Some(list) = get("MESH_API_KEYS") else {
        return Ok(Vec::new());
    };
    list.split(',')
        .enumerate()
        .map(|(i, k)| {
            let k = k.trim();
            if k.is_empty() {
                Err(err(
                    "MESH_API_KEYS",
                    format!("entry {} is empty (keys are separated by commas)", i + 1),
                ))
            } else {
                Ok(Secret::new(k))
            }
        })
        .collect()
}

fn missing_hint(id: ProviderId) -> &'static str {
    match id {
        ProviderId::OpenRouter => "set OPENROUTER_API_KEY",
        ProviderId::Nous => {
            "set NOUS_API_KEY or log in with the Hermes CLI (auth.json in HERMES_HOME)"
        }
        ProviderId::Anthropic => "set ANTHROPIC_API_KEY",
        ProviderId::OpenAi => "set OPENAI_API_KEY",
        ProviderId::Custom => "set CUSTOM_BASE_URL",
        ProviderId::Offline => "always available",
    }
}

fn parse_addr(s: &str) -> Option<SocketAddr> {
    if let Ok(a) = s.parse() {
        return Some(a);
    }
    // "localhost:8080" is what people type; resolve it without DNS.
    let port = s.strip_prefix("localhost:")?.parse().ok()?;
    Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
}

fn parse_flag(get: &dyn Fn(&str) -> Option<String>, var: &str) -> Result<bool, ConfigError> {
    match get(var).as_deref() {
        None | Some("0") | Some("false") | Some("no") | Some("off") => Ok(false),
        Some("1") | Some("true") | Some("yes") | Some("on") => Ok(true),
        Some(v) => Err(err(var, format!("\"{v}\" is not 1 or 0"))),
    }
}

fn number(
    get: &dyn Fn(&str) -> Option<String>,
    var: &str,
    default: u64,
    min: u64,
) -> Result<u64, ConfigError> {
    match get(var) {
        None => Ok(default),
        Some(v) => match v.parse::<u64>() {
            Ok(n) if n >= min && n <= 10_000_000 => Ok(n),
            _ => Err(err(
                var,
                format!("\"{v}\" is not a whole number from {min} to 10000000"),
            )),
        },
    }
}

fn secs(
    get: &dyn Fn(&str) -> Option<String>,
    var: &str,
    default: u64,
    min: u64,
) -> Result<Duration, ConfigError> {
    number(get, var, default, min).map(Duration::from_secs)
}

fn validate_url(var: &str, url: &str) -> Result<String, ConfigError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| {
            err(
                var,
                format!("\"{url}\" must start with http:// or https://"),
            )
        })?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(err(var, format!("\"{url}\" has no host")));
    }
    if url.parse::<hyper::Uri>().is_err() {
        return Err(err(var, format!("\"{url}\" is not a valid URL")));
    }
    Ok(url.trim_end_matches('/').to_string())
}

fn readable_file(var: &str, path: &str) -> Result<PathBuf, ConfigError> {
    let p = PathBuf::from(path);
    match std::fs::File::open(&p) {
        Ok(_) if p.is_file() => Ok(p),
        Ok(_) => Err(err(var, format!("{path} is not a file"))),
        Err(e) => Err(err(var, format!("cannot read {path}: {e}"))),
    }
}

fn default_hermes_home(get: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if cfg!(windows) {
        get("LOCALAPPDATA").map(|d| PathBuf::from(d).join("hermes"))
    } else {
        get("HOME").map(|h| PathBuf::from(h).join(".hermes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut map: HashMap<&str, &str> = pairs.iter().copied().collect();
        map.entry("HOME").or_insert("/nonexistent-home");
        Config::from_env(&map)
    }

    #[test]
    fn defaults_are_the_spec_values() {
        let c = load(&[]).unwrap();
        assert_eq!(c.addr.to_string(), "127.0.0.1:8080");
        assert_eq!(c.provider, ProviderId::Offline);
        assert!(c.credentials.is_none());
        assert_eq!(c.run_ttl, Duration::from_secs(600));
        assert_eq!(c.max_active_runs, 64);
        assert_eq!(c.disconnect_grace, Duration::from_secs(10));
        assert_eq!(c.ttft_timeout, Duration::from_secs(90));
        assert_eq!(c.idle_timeout, Duration::from_secs(60));
        assert_eq!(c.shutdown_grace, Duration::from_secs(25));
        assert_eq!(c.offline_delay, Duration::from_millis(12));
        assert_eq!(c.conn_timeout, Duration::from_secs(10));
        assert_eq!(c.write_timeout, Duration::from_secs(30));
        assert_eq!(
            c.providers.openrouter.base_url,
            "https://openrouter.ai/api/v1"
        );
        assert_eq!(c.providers.anthropic.base_url, "https://api.anthropic.com");
        assert_eq!(
            c.providers.nous.portal_url,
            "https://portal.nousresearch.com"
        );
        assert_eq!(c.roster.agents().len(), 5);
        assert_eq!(c.schedule, crate::model::run_config::Schedule::Sequential);
        assert_eq!(c.max_parallel, 3);
    }

    #[test]
    fn port_means_all_interfaces_and_needs_credentials() {
        let e = load(&[("PORT", "9000")]).unwrap_err();
        assert_eq!(e.variable, "MESH_USER");
        let c = load(&[("PORT", "9000"), ("MESH_USER", "u"), ("MESH_PASS", "p")]).unwrap();
        assert_eq!(c.addr.to_string(), "0.0.0.0:9000");
        let c = load(&[("PORT", "9000"), ("MESH_INSECURE_NO_AUTH", "1")]).unwrap();
        assert!(c.insecure_no_auth);
        let c = load(&[("PORT", "9000"), ("MESH_ADDR", "127.0.0.1:0")]).unwrap();
        assert_eq!(c.addr.port(), 0);
    }

    #[test]
    fn first_configured_provider_is_active() {
        let c = load(&[("OPENAI_API_KEY", "sk"), ("ANTHROPIC_API_KEY", "ak")]).unwrap();
        assert_eq!(c.provider, ProviderId::Anthropic);
        let c = load(&[("CUSTOM_BASE_URL", "http://127.0.0.1:11434/v1/")]).unwrap();
        assert_eq!(c.provider, ProviderId::Custom);
        assert_eq!(
            c.providers.custom.unwrap().base_url,
            "http://127.0.0.1:11434/v1"
        );
        let c = load(&[("OPENAI_API_KEY", "sk"), ("MESH_PROVIDER", "offline")]).unwrap();
        assert_eq!(c.provider, ProviderId::Offline);
    }

    #[test]
    fn redis_url_selects_the_shared_store_and_ttls_may_be_days() {
        let c = load(&[]).unwrap();
        assert!(c.redis_url.is_none());
        let c = load(&[
            (
                "MESH_REDIS_URL",
                "rediss://default:pw-123@kv.render.com:6379",
            ),
            ("MESH_RUN_TTL_SECS", "2592000"),
        ])
        .unwrap();
        let url = c.redis_url.as_ref().unwrap();
        assert!(url.is_tls());
        assert_eq!(c.run_ttl, Duration::from_secs(30 * 24 * 3600));
        assert_eq!(c.redis_outage, Duration::from_secs(30));
        assert!(!format!("{c:?}").contains("pw-123"));
        let e = load(&[("MESH_REDIS_URL", "redis://u:pw-123@")]).unwrap_err();
        assert_eq!(e.variable, "MESH_REDIS_URL");
        assert!(!e.to_string().contains("pw-123"), "{e}");
    }

    #[test]
    fn bad_values_name_their_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("MESH_ADDR", "nowhere")], "MESH_ADDR"),
            (&[("PORT", "99999")], "PORT"),
            (&[("MESH_RUN_TTL_SECS", "ten")], "MESH_RUN_TTL_SECS"),
            (&[("MESH_MAX_ACTIVE_RUNS", "0")], "MESH_MAX_ACTIVE_RUNS"),
            (
                &[("MESH_TTFT_TIMEOUT_SECS", "-1")],
                "MESH_TTFT_TIMEOUT_SECS",
            ),
            (&[("MESH_OFFLINE_DELAY_MS", "1.5")], "MESH_OFFLINE_DELAY_MS"),
            (&[("MESH_LOG", "loud")], "MESH_LOG"),
            (&[("MESH_SCHEDULE", "random")], "MESH_SCHEDULE"),
            (&[("MESH_MAX_PARALLEL", "0")], "MESH_MAX_PARALLEL"),
            (&[("MESH_MAX_PARALLEL", "17")], "MESH_MAX_PARALLEL"),
            (
                &[("MESH_REDIS_URL", "http://u:pw@host:6379")],
                "MESH_REDIS_URL",
            ),
            (&[("MESH_REDIS_OUTAGE_SECS", "0")], "MESH_REDIS_OUTAGE_SECS"),
            (
                &[
                    ("MESH_REDIS_URL", "redis://127.0.0.1:6379"),
                    ("MESH_REDIS_CA_FILE", "/etc/hostname"),
                ],
                "MESH_REDIS_CA_FILE",
            ),
            (
                &[
                    ("MESH_REDIS_URL", "rediss://kv.example:6379"),
                    ("MESH_REDIS_CA_FILE", "/definitely/missing.pem"),
                ],
                "MESH_REDIS_CA_FILE",
            ),
            (&[("MESH_PROVIDER", "gemini")], "MESH_PROVIDER"),
            (&[("MESH_PROVIDER", "openai")], "MESH_PROVIDER"),
            (&[("MESH_PROVIDER", "nous")], "MESH_PROVIDER"),
            (
                &[("MESH_CA_FILE", "/definitely/missing.pem")],
                "MESH_CA_FILE",
            ),
            (
                &[("MESH_AGENTS", "/definitely/missing.json")],
                "MESH_AGENTS",
            ),
            (
                &[("MESH_TLS_CERT", "/definitely/missing.pem")],
                "MESH_TLS_KEY",
            ),
            (&[("OPENAI_BASE_URL", "ftp://x")], "OPENAI_BASE_URL"),
            (&[("MESH_USER", "u")], "MESH_PASS"),
            (&[("MESH_PASS", "p")], "MESH_USER"),
            (
                &[("MESH_INSECURE_NO_AUTH", "maybe")],
                "MESH_INSECURE_NO_AUTH",
            ),
            (&[("MESH_TRUST_PROXY", "yes")], "MESH_TRUST_PROXY"),
            (&[("MESH_CONN_TIMEOUT_SECS", "0")], "MESH_CONN_TIMEOUT_SECS"),
            (
                &[("MESH_WRITE_TIMEOUT_SECS", "x")],
                "MESH_WRITE_TIMEOUT_SECS",
            ),
            (&[("MESH_TRUST_PROXY", "render")], "MESH_TRUST_PROXY"),
            (&[("MESH_API_KEYS", "k1,,k2")], "MESH_API_KEYS"),
            (&[("MESH_API_KEYS", "k1, ")], "MESH_API_KEYS"),
        ];
        for (pairs, var) in cases {
            let e = load(pairs).expect_err(var);
            assert_eq!(&e.variable, var, "{pairs:?} gave {e}");
            assert!(!e.reason.is_empty());
        }
    }

    #[test]
    fn hermes_login_file_configures_nous() {
        let dir = std::env::temp_dir().join(format!("mesh-cfg-{}", crate::ids::new_run_id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("auth.json"), "{}").unwrap();
        let home = dir.to_string_lossy().to_string();
        let c = load(&[("HERMES_HOME", &home)]).unwrap();
        assert_eq!(c.provider, ProviderId::Nous);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let c = load(&[
            ("OPENAI_API_KEY", "sk-very-secret"),
            ("MESH_USER", "u"),
            ("MESH_PASS", "hunter2"),
            ("MESH_API_KEYS", "mesh-key-one, mesh-key-two"),
        ])
        .unwrap();
        assert_eq!(c.api_keys.len(), 2);
        assert_eq!(c.api_keys[1].expose(), "mesh-key-two");
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("mesh-key"));
        assert!(!dbg.contains("sk-very-secret"));
        assert!(!dbg.contains("hunter2"));
    }
}
