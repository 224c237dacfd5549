//! The providers' settings (SPEC §2): each endpoint's key and base URL, the Hermes
//! login for Nous, the active provider, extra CA roots and the offline pace.

use crate::model::provider_id::ProviderId;
use crate::secret::Secret;
use crate::util::env::{validate_url, ConfigError, Vars};
use std::path::PathBuf;
use std::time::Duration;

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
    /// `MESH_PROVIDER`, else the first configured provider, else offline.
    pub active: ProviderId,
    /// `MESH_CA_FILE`: extra PEM roots for provider calls.
    pub ca_file: Option<PathBuf>,
    /// `MESH_OFFLINE_DELAY_MS` (default 12 ms): the offline provider's pace per token.
    pub offline_delay: Duration,
    /// `<PROVIDER>_MAX_CONCURRENCY` (`CUSTOM_MAX_CONCURRENCY`, …): calls a provider
    /// takes at once; beyond, calls wait in agent-mesh's queue. Unset: no limit.
    pub max_concurrency: Vec<(ProviderId, usize)>,
}

/// The providers a concurrency limit can be set for, with its variable (the offline
/// provider is not a server).
const CONCURRENCY_VARS: [(ProviderId, &str); 5] = [
    (ProviderId::OpenRouter, "OPENROUTER_MAX_CONCURRENCY"),
    (ProviderId::Nous, "NOUS_MAX_CONCURRENCY"),
    (ProviderId::Anthropic, "ANTHROPIC_MAX_CONCURRENCY"),
    (ProviderId::OpenAi, "OPENAI_MAX_CONCURRENCY"),
    (ProviderId::Custom, "CUSTOM_MAX_CONCURRENCY"),
];

fn max_concurrency(vars: &Vars) -> Result<Vec<(ProviderId, usize)>, ConfigError> {
    let mut limits = Vec::new();
    for (id, var) in CONCURRENCY_VARS {
        if vars.get(var).is_some() {
            limits.push((id, vars.number(var, 0, 1)? as usize));
        }
    }
    Ok(limits)
}

/// Every base URL variable, checked by `util::url`.
const URL_VARS: [&str; 6] = [
    "OPENROUTER_BASE_URL",
    "NOUS_BASE_URL",
    "NOUS_PORTAL_URL",
    "ANTHROPIC_BASE_URL",
    "OPENAI_BASE_URL",
    "CUSTOM_BASE_URL",
];

/// A user name and password in a base URL are dropped (the HTTP client never sent
/// them): say so, showing them as `***`.
fn warn_of_dropped_userinfo(vars: &Vars) {
    for var in URL_VARS {
        let Some(raw) = vars.get(var) else { continue };
        if crate::util::url::check(&raw).is_ok_and(|c| c.dropped_userinfo) {
            crate::log_warn!(
                "{var}: the user name and password in \"{}\" are dropped (they are never sent); set the provider's _API_KEY for its key",
                crate::util::url::redacted(&raw)
            );
        }
    }
}

impl ProviderSettings {
    pub fn from_env(vars: &Vars) -> Result<ProviderSettings, ConfigError> {
        let key = |k: &str| vars.get(k).map(Secret::new);
        let hermes_home = match vars.get("HERMES_HOME") {
            Some(h) => Some(PathBuf::from(h)),
            None => default_hermes_home(vars),
        };
        let mut settings = ProviderSettings {
            openrouter: Endpoint {
                api_key: key("OPENROUTER_API_KEY"),
                base_url: vars.url("OPENROUTER_BASE_URL", "https://openrouter.ai/api/v1")?,
            },
            nous: NousSettings {
                api_key: key("NOUS_API_KEY"),
                base_url: vars.url("NOUS_BASE_URL", "https://inference-api.nousresearch.com/v1")?,
                base_url_explicit: vars.get("NOUS_BASE_URL").is_some(),
                portal_url: vars.url("NOUS_PORTAL_URL", "https://portal.nousresearch.com")?,
                portal_url_explicit: vars.get("NOUS_PORTAL_URL").is_some(),
                hermes_home,
            },
            anthropic: Endpoint {
                api_key: key("ANTHROPIC_API_KEY"),
                base_url: vars.url("ANTHROPIC_BASE_URL", "https://api.anthropic.com")?,
            },
            openai: Endpoint {
                api_key: key("OPENAI_API_KEY"),
                base_url: vars.url("OPENAI_BASE_URL", "https://api.openai.com/v1")?,
            },
            custom: match vars.get("CUSTOM_BASE_URL") {
                Some(u) => Some(Endpoint {
                    api_key: key("CUSTOM_API_KEY"),
                    base_url: validate_url("CUSTOM_BASE_URL", &u)?,
                }),
                None => None,
            },
            // Chosen below, from which endpoints are configured.
            active: ProviderId::Offline,
            ca_file: None,
            offline_delay: Duration::ZERO,
            max_concurrency: max_concurrency(vars)?,
        };
        warn_of_dropped_userinfo(vars);
        settings.active = settings.active_from(vars)?;
        settings.ca_file = ca_file(vars)?;
        settings.offline_delay =
            Duration::from_millis(vars.number("MESH_OFFLINE_DELAY_MS", 12, 0)?);
        Ok(settings)
    }

    /// `MESH_PROVIDER`, which must be configured; unset, the first configured one.
    fn active_from(&self, vars: &Vars) -> Result<ProviderId, ConfigError> {
        let Some(name) = vars.get("MESH_PROVIDER") else {
            return Ok(self
                .configured()
                .into_iter()
                .next()
                .unwrap_or(ProviderId::Offline));
        };
        let id = ProviderId::parse(&name).ok_or_else(|| {
            ConfigError::new("MESH_PROVIDER", format!(
                "unknown provider \"{name}\" (expected openrouter, nous, anthropic, openai, custom or offline)"
            ))
        })?;
        if !self.is_configured(id) {
            return Err(ConfigError::new(
                "MESH_PROVIDER",
                format!("provider \"{id}\" is not configured: {}", missing_hint(id)),
            ));
        }
        Ok(id)
    }

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

/// `MESH_CA_FILE`: a readable file with at least one PEM certificate.
fn ca_file(vars: &Vars) -> Result<Option<PathBuf>, ConfigError> {
    let Some(path) = vars.file("MESH_CA_FILE")? else {
        return Ok(None);
    };
    crate::util::pem::load_ca_file(&path).map_err(|e| ConfigError::new("MESH_CA_FILE", e))?;
    Ok(Some(path))
}

fn missing_hint(id: ProviderId) -> &'static str {
    super::descriptor::descriptor(id).setup_hint
}

fn default_hermes_home(vars: &Vars) -> Option<PathBuf> {
    if cfg!(windows) {
        vars.get("LOCALAPPDATA")
            .map(|d| PathBuf::from(d).join("hermes"))
    } else {
        vars.get("HOME").map(|h| PathBuf::from(h).join(".hermes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<ProviderSettings, ConfigError> {
        // HERMES_HOME falls back to $HOME: keep a real one out of the tests.
        let pairs = [&[("HOME", "/nonexistent-home")][..], pairs].concat();
        crate::util::env::read_pairs(&pairs, ProviderSettings::from_env)
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mesh-{tag}-{}", crate::ids::new_run_id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn first_configured_provider_is_active() {
        let c = load(&[("OPENAI_API_KEY", "sk"), ("ANTHROPIC_API_KEY", "ak")]).unwrap();
        assert_eq!(c.active, ProviderId::Anthropic);
        let c = load(&[("CUSTOM_BASE_URL", "http://127.0.0.1:11434/v1/")]).unwrap();
        assert_eq!(c.active, ProviderId::Custom);
        assert_eq!(c.custom.unwrap().base_url, "http://127.0.0.1:11434/v1");
        let c = load(&[("OPENAI_API_KEY", "sk"), ("MESH_PROVIDER", "offline")]).unwrap();
        assert_eq!(c.active, ProviderId::Offline);
    }

    #[test]
    fn an_unconfigured_provider_says_what_to_set() {
        let e = load(&[("MESH_PROVIDER", "openrouter")]).unwrap_err();
        assert_eq!(e.variable, "MESH_PROVIDER");
        assert!(e.reason.ends_with("set OPENROUTER_API_KEY"), "{e}");
        let c = load(&[
            ("OPENROUTER_API_KEY", "k"),
            ("MESH_PROVIDER", " OpenRouter "),
        ]);
        assert_eq!(c.unwrap().active, ProviderId::OpenRouter);
    }

    #[test]
    fn hermes_login_file_configures_nous() {
        let dir = temp_dir("cfg");
        std::fs::write(dir.join("auth.json"), "{}").unwrap();
        let home = dir.to_string_lossy().to_string();
        let c = load(&[("HERMES_HOME", &home)]).unwrap();
        assert_eq!(c.active, ProviderId::Nous);
        assert!(!c.nous.base_url_explicit && !c.nous.portal_url_explicit);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn explicit_nous_urls_are_marked_explicit() {
        let c = load(&[
            ("NOUS_BASE_URL", "https://inference.example/v1/"),
            ("NOUS_PORTAL_URL", "https://portal.example"),
        ])
        .unwrap();
        assert_eq!(c.nous.base_url, "https://inference.example/v1");
        assert!(c.nous.base_url_explicit && c.nous.portal_url_explicit);
    }

    #[test]
    fn ca_file_must_hold_a_pem_certificate() {
        let dir = temp_dir("ca");
        let not_pem = dir.join("not.pem");
        std::fs::write(&not_pem, "hello").unwrap();
        let e = load(&[("MESH_CA_FILE", not_pem.to_str().unwrap())]).unwrap_err();
        assert_eq!(e.variable, "MESH_CA_FILE");
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let pem = dir.join("ca.pem");
        std::fs::write(&pem, cert.cert.pem()).unwrap();
        let c = load(&[("MESH_CA_FILE", pem.to_str().unwrap())]).unwrap();
        assert_eq!(c.ca_file.as_deref(), Some(pem.as_path()));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn concurrency_limits_are_per_provider_and_at_least_one() {
        assert!(load(&[]).unwrap().max_concurrency.is_empty());
        let c = load(&[
            ("CUSTOM_MAX_CONCURRENCY", "1"),
            ("OPENAI_MAX_CONCURRENCY", "8"),
        ])
        .unwrap();
        assert_eq!(
            c.max_concurrency,
            [(ProviderId::OpenAi, 8), (ProviderId::Custom, 1)]
        );
        for bad in ["0", "x", "-1"] {
            let e = load(&[("CUSTOM_MAX_CONCURRENCY", bad)]).unwrap_err();
            assert_eq!(e.variable, "CUSTOM_MAX_CONCURRENCY", "{bad}");
        }
    }
}
