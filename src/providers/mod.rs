//! The provider seam: one call = system + user prompt in, a stream of text deltas out,
//! then usage or a typed error. Adapters plug in behind `Providers::stream`.

pub mod anthropic;
pub mod catalog;
pub mod client;
pub mod decode;
pub mod error;
pub mod http_call;
pub mod nous_auth;
pub mod offline;
pub mod openai;
pub mod redact;
pub mod routing;
pub mod settings;
pub mod sse;

use crate::metrics::METRICS;
use crate::model::agent::AgentKind;
use crate::model::error_kind::ErrorKind;
use crate::model::events::Usage;
use crate::model::provider_id::ProviderId;
use crate::model::run_config::CallTimeouts;
use crate::secret::Secret;
use error::ProviderError;
use std::time::Duration;

/// Everything one model call needs. Real adapters send `system` and `user`; the
/// structured fields let the offline provider answer like a model that read them.
#[derive(Debug, Clone, Copy)]
pub struct CallRequest<'a> {
    pub agent: &'a str,
    pub kind: AgentKind,
    /// The provider-native model id.
    pub model: &'a str,
    pub system: &'a str,
    pub user: &'a str,
    pub max_tokens: u32,
    pub timeouts: CallTimeouts,
    pub task: &'a str,
    pub subtask: Option<&'a str>,
    /// Planner only: the specialists to choose from, `(name, one-line role)`.
    pub candidates: &'a [(String, String)],
    /// What this agent was given from earlier agents, `(title, text)`.
    pub context: &'a [(String, String)],
    /// The earlier turns of the conversation (already in `user`), oldest first.
    pub history: &'a [crate::model::conversation::Turn],
}

#[derive(Debug, Clone, PartialEq)]
pub struct CallOutcome {
    pub finish_reason: String,
    pub usage: Option<Usage>,
    pub cost_usd: Option<f64>,
}

/// Receives a call's output as it streams.
pub trait TokenSink: Send {
    /// A piece of model text, in order, byte for byte.
    fn token(&mut self, text: &str);
    /// The call failed before its first token and will be tried again after `delay`.
    fn retrying(&mut self, attempt: u32, delay: Duration, error: &ProviderError);
}

/// Retries before the first token (SPEC §5.1).
pub const MAX_RETRIES: u32 = 2;
const BACKOFF_BASE: Duration = Duration::from_millis(500);

/// How a provider is reached.
#[derive(Debug, Clone)]
struct Upstream {
    base_url: String,
    key: Option<Secret>,
    wire: Wire,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    OpenAi,
    Anthropic,
}

/// Every adapter this process can call, built once from the config.
pub struct Providers {
    offline: offline::OfflineProvider,
    client: client::HttpClient,
    upstreams: Vec<(ProviderId, Upstream)>,
    configured: Vec<ProviderId>,
    /// Every secret this process knows, masked in anything an upstream sends back.
    secrets: Vec<String>,
    /// The Hermes login, when Nous has no `NOUS_API_KEY`.
    nous_auth: Option<nous_auth::NousAuth>,
    catalog: std::sync::Arc<catalog::Catalog>,
}

impl Providers {
    /// `login` is the server's Basic password, masked in upstream text like the keys.
    pub fn from_settings(
        p: &settings::ProviderSettings,
        roster: &crate::pipeline::roster::Roster,
        login: Option<&Secret>,
    ) -> Result<Providers, String> {
        let client = client::build(p.ca_file.as_deref())?;
        let mut upstreams = Vec::new();
        let mut add = |id, base: &str, key: &Option<Secret>, wire| {
            upstreams.push((
                id,
                Upstream {
                    base_url: base.to_string(),
                    key: key.clone(),
                    wire,
                },
            ));
        };
        add(
            ProviderId::OpenRouter,
            &p.openrouter.base_url,
            &p.openrouter.api_key,
            Wire::OpenAi,
        );
        add(
            ProviderId::Nous,
            &p.nous.base_url,
            &p.nous.api_key,
            Wire::OpenAi,
        );
        add(
            ProviderId::Anthropic,
            &p.anthropic.base_url,
            &p.anthropic.api_key,
            Wire::Anthropic,
        );
        add(
            ProviderId::OpenAi,
            &p.openai.base_url,
            &p.openai.api_key,
            Wire::OpenAi,
        );
        if let Some(c) = &p.custom {
            add(ProviderId::Custom, &c.base_url, &c.api_key, Wire::OpenAi);
        }
        let mut secrets: Vec<String> = [
            &p.openrouter.api_key,
            &p.nous.api_key,
            &p.anthropic.api_key,
            &p.openai.api_key,
        ]
        .into_iter()
        .chain(p.custom.as_ref().map(|c| &c.api_key))
        .flatten()
        .map(|s| s.expose().to_string())
        .collect();
        if let Some(pass) = login {
            secrets.push(pass.expose().to_string());
        }
        // Very short values would mask ordinary words; keys and passwords are longer.
        secrets.retain(|s| s.len() >= 4);
        Ok(Providers {
            offline: offline::OfflineProvider::new(p.offline_delay),
            client,
            upstreams,
            configured: p.configured(),
            secrets,
            nous_auth: if p.nous.api_key.is_none() {
                nous_auth::NousAuth::new(&p.nous)
            } else {
                None
            },
            catalog: std::sync::Arc::new(catalog::Catalog::new(roster)),
        })
    }

    pub fn is_configured(&self, id: ProviderId) -> bool {
        self.configured.contains(&id)
    }

    pub fn catalog(&self) -> &std::sync::Arc<catalog::Catalog> {
        &self.catalog
    }

    pub fn configured(&self) -> &[ProviderId] {
        &self.configured
    }

    pub fn client(&self) -> &client::HttpClient {
        &self.client
    }

    pub fn nous_auth(&self) -> Option<&nous_auth::NousAuth> {
        self.nous_auth.as_ref()
    }

    /// Whether a configured provider can be called now, with a reason when not
    /// (a dead or malformed Hermes login).
    pub fn usability(&self, id: ProviderId) -> Result<(), String> {
        if !self.is_configured(id) {
            return Err("not configured".to_string());
        }
        match (id, &self.nous_auth) {
            (ProviderId::Nous, Some(auth)) => auth.status(),
            _ => Ok(()),
        }
    }

    /// How a configured provider is reached.
    fn upstream(&self, provider: ProviderId) -> Option<&Upstream> {
        self.upstreams
            .iter()
            .find(|(id, _)| *id == provider && self.is_configured(provider))
            .map(|(_, u)| u)
    }

    /// Where a provider's model list lives, and the key to ask with.
    pub async fn catalog_endpoint(
        &self,
        provider: ProviderId,
    ) -> Result<(String, Option<Secret>), String> {
        let upstream = self
            .upstream(provider)
            .ok_or_else(|| format!("provider {provider} is not configured"))?;
        if upstream.wire == Wire::Anthropic {
            return Ok((upstream.base_url.clone(), upstream.key.clone()));
        }
        let (key, base) = self
            .credentials(provider, upstream)
            .await
            .map_err(|e| e.message)?;
        Ok((base, key))
    }

    /// The static secrets plus the Hermes tokens currently in use.
    fn all_secrets(&self) -> Vec<String> {
        let mut all = self.secrets.clone();
        if let Some(auth) = &self.nous_auth {
            all.extend(auth.live_secrets());
        }
        all
    }

    /// The bearer and base URL for an OpenAI-compatible upstream.
    async fn credentials(
        &self,
        provider: ProviderId,
        upstream: &Upstream,
    ) -> Result<(Option<Secret>, String), ProviderError> {
        match (provider, &self.nous_auth) {
            (ProviderId::Nous, Some(auth)) if upstream.key.is_none() => {
                let b = auth.bearer(&self.client).await?;
                Ok((Some(b.token), b.base_url))
            }
            _ => Ok((upstream.key.clone(), upstream.base_url.clone())),
        }
    }

    /// Streams one call through the named provider, retrying before the first token.
    pub async fn stream(
        &self,
        provider: ProviderId,
        request: &CallRequest<'_>,
        sink: &mut dyn TokenSink,
    ) -> Result<CallOutcome, ProviderError> {
        if provider == ProviderId::Offline {
            METRICS.upstream_call(provider);
            return Ok(self.offline.stream(request, sink).await);
        }
        if let (ProviderId::Nous, Some(auth)) = (provider, &self.nous_auth) {
            // Load (or refresh) the login first, so its token is masked from the start.
            auth.bearer(&self.client).await?;
        }
        let mut sink = redact::RedactingSink::new(sink, self.all_secrets());
        let result = self.with_retries(provider, request, &mut sink).await;
        sink.flush();
        // Without a reported cost, estimate it from catalog prices.
        let result = result.map(|mut outcome| {
            if outcome.cost_usd.is_none() {
                if let Some(u) = outcome.usage {
                    outcome.cost_usd =
                        self.catalog
                            .cost(provider, request.model, u.input_tokens, u.output_tokens);
                }
            }
            outcome
        });
        // Tokens refreshed during the call are masked too.
        let secrets = self.all_secrets();
        result.map_err(|mut e| {
            e.message = redact::redact(&e.message, &secrets);
            e
        })
    }

    async fn with_retries(
        &self,
        provider: ProviderId,
        request: &CallRequest<'_>,
        sink: &mut redact::RedactingSink<'_>,
    ) -> Result<CallOutcome, ProviderError> {
        let mut attempt = 0;
        let mut refreshed_login = false;
        loop {
            let mut emitted = false;
            let mut used_bearer = None;
            METRICS.upstream_call(provider);
            let result = self
                .attempt(provider, request, sink, &mut emitted, &mut used_bearer)
                .await;
            if let Err(e) = &result {
                METRICS.upstream_error(provider, e.kind);
            }
            match result {
                // A 401 with the Hermes login: refresh once (unless another call
                // already did) and try again at once.
                Err(e)
                    if e.status == Some(401)
                        && !emitted
                        && !refreshed_login
                        && used_bearer.is_some() =>
                {
                    let (Some(auth), Some(used)) = (&self.nous_auth, used_bearer) else {
                        return Err(e);
                    };
                    refreshed_login = true;
                    auth.after_unauthorized(&self.client, &used).await?;
                    sink.set_secrets(self.all_secrets());
                }
                Err(e) if e.retryable && !emitted && attempt < MAX_RETRIES => {
                    attempt += 1;
                    let delay = e.retry_after.unwrap_or_else(|| backoff(attempt));
                    METRICS.retry(provider);
                    sink.retrying(attempt, delay, &e);
                    tokio::time::sleep(delay).await;
                }
                other => return other,
            }
        }
    }

    async fn attempt(
        &self,
        provider: ProviderId,
        request: &CallRequest<'_>,
        sink: &mut dyn TokenSink,
        emitted: &mut bool,
        used_login_bearer: &mut Option<Secret>,
    ) -> Result<CallOutcome, ProviderError> {
        let upstream = self.upstream(provider).ok_or_else(|| {
            ProviderError::new(
                ErrorKind::Config,
                format!("provider {provider} is not configured"),
            )
        })?;
        let (http_request, mut decoder): (_, Box<dyn decode::ChunkDecoder>) = match upstream.wire {
            Wire::OpenAi => {
                let (key, base_url) = self.credentials(provider, upstream).await?;
                if provider == ProviderId::Nous && upstream.key.is_none() {
                    used_login_bearer.clone_from(&key);
                }
                let key = key.as_ref().map(Secret::expose);
                (
                    openai::build_request(provider, &base_url, key, request)?,
                    Box::new(decode::OpenAiDecoder::default()),
                )
            }
            Wire::Anthropic => {
                let key = upstream.key.as_ref().map(Secret::expose).ok_or_else(|| {
                    ProviderError::new(ErrorKind::Config, "ANTHROPIC_API_KEY is not set")
                })?;
                (
                    anthropic::build_request(&upstream.base_url, key, request)?,
                    Box::new(decode::AnthropicDecoder::default()),
                )
            }
        };
        let secrets = self.all_secrets();
        http_call::stream_call(
            &self.client,
            http_request,
            decoder.as_mut(),
            sink,
            request.timeouts,
            &secrets,
            emitted,
        )
        .await
    }
}

/// 0.5 s × 2^(attempt-1), plus up to 25 % jitter so many clients do not retry in step.
fn backoff(attempt: u32) -> Duration {
    let base = BACKOFF_BASE * 2u32.saturating_pow(attempt.saturating_sub(1));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let jitter = base.mul_f64(f64::from(nanos % 1000) / 4000.0);
    base + jitter
}

/// A call for the request builders' tests: the fields they put on the wire, the
/// rest fixed.
#[cfg(test)]
pub(crate) fn test_call(
    model: &'static str,
    system: &'static str,
    user: &'static str,
    max_tokens: u32,
) -> CallRequest<'static> {
    let second = Duration::from_secs(1);
    CallRequest {
        agent: "researcher",
        kind: crate::model::agent::AgentKind::Specialist,
        model,
        system,
        user,
        max_tokens,
        timeouts: CallTimeouts {
            first_token: second,
            idle: second,
            total: second,
        },
        task: "t",
        subtask: None,
        candidates: &[],
        context: &[],
        history: &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_bounded_jitter() {
        for (attempt, base_ms) in [(1, 500u64), (2, 1000)] {
            let d = backoff(attempt).as_millis() as u64;
            assert!(
                d >= base_ms && d <= base_ms * 5 / 4,
                "attempt {attempt}: {d} ms"
            );
        }
    }
}
