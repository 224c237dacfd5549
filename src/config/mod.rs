//! Every environment variable of SPEC §2, read and validated before the server binds.
//! Each concern parses its own variables: the providers, the store and the pipeline in
//! their `settings.rs`, `MESH_LOG` in `log`; the listener and auth, whose consumer
//! (`http`) sits above this module, here in `listener` and `auth`. This module reads
//! them in one pass and hands each subsystem its own part.

pub mod auth;
pub mod listener;

pub use crate::util::env::{ConfigError, Env, ProcessEnv};
pub use auth::Credentials;

use crate::log::Level;
use crate::pipeline::settings::PipelineSettings;
use crate::providers::settings::ProviderSettings;
use crate::store::settings::StoreSettings;
use crate::util::env::Vars;
use auth::AuthSettings;
use listener::ListenerSettings;

/// Each subsystem's own settings: each part goes to its subsystem.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listener: ListenerSettings,
    pub auth: AuthSettings,
    pub providers: ProviderSettings,
    pub store: StoreSettings,
    pub pipeline: PipelineSettings,
    /// `MESH_MCP_CONFIG`: the MCP servers whose tools the team may use (`None`: no tools).
    pub mcp: Option<crate::mcp::McpConfig>,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// `MESH_LOG`, set before anything else runs.
    pub log_level: Level,
    /// What the server (or the terminal front end) is built from.
    pub app: Settings,
}

impl Config {
    /// Reads and validates every variable, concern by concern; the first problem is
    /// returned.
    pub fn from_env(env: &dyn Env) -> Result<Config, ConfigError> {
        let vars = Vars::new(env);
        let listener = ListenerSettings::from_env(&vars)?;
        let auth = AuthSettings::from_env(&vars, listener.addr)?;
        let providers = ProviderSettings::from_env(&vars)?;
        let store = StoreSettings::from_env(&vars)?;
        let mut pipeline = PipelineSettings::from_env(&vars)?;
        // Its error already names the variable, the server and the field.
        let mcp = crate::mcp::McpConfig::from_env(env).map_err(|e| ConfigError {
            variable: e.variable.to_string(),
            reason: match &e.server {
                Some(server) => format!("server \"{server}\": {}: {}", e.field, e.reason),
                None => format!("{}: {}", e.field, e.reason),
            },
        })?;
        // The roster's `tools` may name only configured servers.
        let servers: Vec<String> = mcp
            .iter()
            .flat_map(|m| m.servers.iter().map(|s| s.name.clone()))
            .collect();
        pipeline.roster = pipeline.roster.with_tool_servers(&servers).map_err(|why| {
            // Only a roster file lists tools, so the variable is set here.
            let file = vars.file("MESH_AGENTS").ok().flatten().unwrap_or_default();
            ConfigError::new("MESH_AGENTS", format!("{}: {why}", file.display()))
        })?;
        Ok(Config {
            log_level: Level::from_env(&vars)?,
            app: Settings {
                listener,
                auth,
                providers,
                store,
                pipeline,
                mcp,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::provider_id::ProviderId;
    use std::collections::HashMap;
    use std::time::Duration;

    fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut map: HashMap<&str, &str> = pairs.iter().copied().collect();
        map.entry("HOME").or_insert("/nonexistent-home");
        Config::from_env(&map)
    }

    #[test]
    fn defaults_are_the_spec_values() {
        let c = load(&[]).unwrap();
        assert_eq!(c.log_level, Level::Info);
        let c = c.app;
        assert_eq!(c.listener.addr.to_string(), "127.0.0.1:8080");
        assert_eq!(c.providers.active, ProviderId::Offline);
        assert!(c.auth.credentials.is_none());
        assert_eq!(c.store.limits.run_ttl, Duration::from_secs(600));
        assert_eq!(c.store.limits.max_active_runs, 64);
        assert_eq!(c.store.limits.disconnect_grace, Duration::from_secs(10));
        assert_eq!(c.pipeline.ttft_timeout, Duration::from_secs(90));
        assert_eq!(c.pipeline.idle_timeout, Duration::from_secs(60));
        assert_eq!(c.listener.shutdown_grace, Duration::from_secs(25));
        assert_eq!(c.providers.offline_delay, Duration::from_millis(12));
        assert_eq!(c.listener.conn_timeout, Duration::from_secs(10));
        assert_eq!(c.listener.write_timeout, Duration::from_secs(30));
        assert_eq!(c.listener.max_connections, 4096);
        assert!(c.listener.tls.is_none());
        assert_eq!(
            c.providers.openrouter.base_url,
            "https://openrouter.ai/api/v1"
        );
        assert_eq!(c.providers.anthropic.base_url, "https://api.anthropic.com");
        assert_eq!(
            c.providers.nous.portal_url,
            "https://portal.nousresearch.com"
        );
        assert!(c.providers.ca_file.is_none());
        assert_eq!(c.pipeline.roster.agents().len(), 5);
        assert_eq!(
            c.pipeline.schedule,
            crate::model::run_config::Schedule::Sequential
        );
        assert_eq!(c.pipeline.max_parallel, 3);
        assert!(c.store.redis.is_none());
        assert!(c.auth.api_keys.is_empty());
        assert_eq!(c.auth.trust_proxy, auth::TrustProxy::Off);
    }

    /// The auth concern sees the listener's address: beyond loopback it needs a login.
    #[test]
    fn port_means_all_interfaces_and_needs_credentials() {
        let e = load(&[("PORT", "9000")]).unwrap_err();
        assert_eq!(e.variable, "MESH_USER");
        let c = load(&[("PORT", "9000"), ("MESH_USER", "u"), ("MESH_PASS", "p")]).unwrap();
        assert_eq!(c.app.listener.addr.to_string(), "0.0.0.0:9000");
        let c = load(&[("PORT", "9000"), ("MESH_INSECURE_NO_AUTH", "1")]).unwrap();
        assert!(c.app.auth.insecure_no_auth);
        let c = load(&[("PORT", "9000"), ("MESH_ADDR", "127.0.0.1:0")]).unwrap();
        assert_eq!(c.app.listener.addr.port(), 0);
    }

    #[test]
    fn bad_values_name_their_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("MESH_ADDR", "nowhere")], "MESH_ADDR"),
            (&[("PORT", "99999")], "PORT"),
            (&[("MESH_RUN_TTL_SECS", "ten")], "MESH_RUN_TTL_SECS"),
            (&[("MESH_MAX_ACTIVE_RUNS", "0")], "MESH_MAX_ACTIVE_RUNS"),
            (&[("MESH_MAX_ACTIVE_RUNS", "1001")], "MESH_MAX_ACTIVE_RUNS"),
            (
                &[("MESH_MAX_CONNECTIONS_PER_PEER", "0")],
                "MESH_MAX_CONNECTIONS_PER_PEER",
            ),
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
            (
                &[("CUSTOM_BASE_URL", "http://h/v1?api_key=k")],
                "CUSTOM_BASE_URL",
            ),
            (
                &[("OPENROUTER_BASE_URL", "http://h/v1#k")],
                "OPENROUTER_BASE_URL",
            ),
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
            (&[("MESH_USER", "a:b"), ("MESH_PASS", "p")], "MESH_USER"),
            (&[("MESH_TLS_KEY", "/etc/hostname")], "MESH_TLS_CERT"),
            (
                &[("MESH_SHUTDOWN_GRACE_SECS", "soon")],
                "MESH_SHUTDOWN_GRACE_SECS",
            ),
            (&[("MESH_MAX_CONNECTIONS", "0")], "MESH_MAX_CONNECTIONS"),
            (&[("MESH_IDLE_TIMEOUT_SECS", "0")], "MESH_IDLE_TIMEOUT_SECS"),
            (
                &[("MESH_DISCONNECT_GRACE_SECS", "x")],
                "MESH_DISCONNECT_GRACE_SECS",
            ),
            (&[("CUSTOM_BASE_URL", "https://")], "CUSTOM_BASE_URL"),
            (&[("NOUS_PORTAL_URL", "portal")], "NOUS_PORTAL_URL"),
        ];
        for (pairs, var) in cases {
            let e = load(pairs).expect_err(var);
            assert_eq!(&e.variable, var, "{pairs:?} gave {e}");
            assert!(!e.reason.is_empty());
        }
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
        assert_eq!(c.app.auth.api_keys.len(), 2);
        assert_eq!(c.app.auth.api_keys[1].expose(), "mesh-key-two");
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("mesh-key"));
        assert!(!dbg.contains("sk-very-secret"));
        assert!(!dbg.contains("hunter2"));
    }
}
