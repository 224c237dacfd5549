//! The provider seam: a registry of `Provider`s (one per wire and login), each call
//! made through the same retry and redaction path. A call is a list of messages and
//! optional tools in; text and tool calls stream out, then usage or a typed error.

pub mod anthropic;
pub mod call;
pub mod catalog;
pub mod client;
pub mod decode;
pub mod descriptor;
pub mod error;
pub mod http_call;
pub mod nous_auth;
pub mod nous_login;
pub mod offline;
pub mod openai;
pub mod provider;
pub mod redact;
pub mod routing;
pub mod settings;
pub mod sse;
pub mod tool_calls;

pub use call::{
    Block, CallOutcome, CallRequest, Delta, Message, Role, TokenSink, ToolCall, ToolCallFragment,
    ToolResult, ToolSpec,
};
pub use provider::{Attempt, BoxFuture, Provider};

use crate::metrics::METRICS;
use crate::model::error_kind::ErrorKind;
use crate::model::provider_id::ProviderId;
use crate::model::tool_box::ToolBox;
use error::ProviderError;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Retries before the first token (SPEC §5.1).
pub const MAX_RETRIES: u32 = 2;
const BACKOFF_BASE: Duration = Duration::from_millis(500);

/// Every provider this process can call, built once from the config.
pub struct Providers {
    client: client::HttpClient,
    /// The configured providers (offline always among them).
    providers: Vec<Arc<dyn Provider>>,
    /// Secrets that are not any provider's (the page's password), masked too.
    other_secrets: Vec<String>,
    catalog: Arc<catalog::Catalog>,
    /// Per-provider limits on calls at once (`<PROVIDER>_MAX_CONCURRENCY`).
    limits: Vec<(ProviderId, usize, Arc<Semaphore>)>,
    /// The tool servers agents may call (the MCP client; `None`: no `MESH_MCP_CONFIG`),
    /// carried to the pipeline.
    tools: Option<Arc<dyn ToolBox>>,
}

impl Providers {
    /// `login` is the server's Basic password, masked in upstream text like the keys.
    pub fn from_settings(
        p: &settings::ProviderSettings,
        roster_models: &[String],
        login: Option<&crate::secret::Secret>,
    ) -> Result<Providers, String> {
        let client = client::build(p.ca_file.as_deref())?;
        let mut providers: Vec<Arc<dyn Provider>> = Vec::new();
        for id in p.configured() {
            let keyed = |endpoint: &settings::Endpoint| openai::OpenAiCompatible {
                id,
                base_url: endpoint.base_url.clone(),
                key: endpoint.api_key.clone(),
                app_headers: id == ProviderId::OpenRouter,
                client: client.clone(),
            };
            let provider: Arc<dyn Provider> = match id {
                ProviderId::OpenRouter => Arc::new(keyed(&p.openrouter)),
                ProviderId::OpenAi => Arc::new(keyed(&p.openai)),
                ProviderId::Custom => match &p.custom {
                    Some(custom) => Arc::new(keyed(custom)),
                    None => continue,
                },
                ProviderId::Nous => match (&p.nous.api_key, nous_auth::NousAuth::new(&p.nous)) {
                    (Some(key), _) => Arc::new(openai::OpenAiCompatible {
                        id,
                        base_url: p.nous.base_url.clone(),
                        key: Some(key.clone()),
                        app_headers: false,
                        client: client.clone(),
                    }),
                    (None, Some(auth)) => Arc::new(nous_login::NousLogin {
                        auth: Arc::new(auth),
                        client: client.clone(),
                    }),
                    (None, None) => continue,
                },
                ProviderId::Anthropic => Arc::new(anthropic::Anthropic {
                    base_url: p.anthropic.base_url.clone(),
                    key: p.anthropic.api_key.clone(),
                    client: client.clone(),
                }),
                ProviderId::Offline => Arc::new(offline::OfflineProvider::new(p.offline_delay)),
            };
            providers.push(provider);
        }
        let other_secrets = login.iter().map(|pass| pass.expose().to_string()).collect();
        Ok(Providers::from_parts(
            client,
            providers,
            other_secrets,
            Arc::new(catalog::Catalog::new(roster_models)),
        )
        .with_concurrency_limits(&p.max_concurrency))
    }

    /// At most `n` calls at once to each listed provider; the rest wait their turn.
    pub fn with_concurrency_limits(mut self, limits: &[(ProviderId, usize)]) -> Providers {
        self.limits = limits
            .iter()
            .map(|&(id, n)| (id, n, Arc::new(Semaphore::new(n))))
            .collect();
        self
    }

    /// A registry of the given providers (tests register fakes through this).
    pub fn from_parts(
        client: client::HttpClient,
        providers: Vec<Arc<dyn Provider>>,
        other_secrets: Vec<String>,
        catalog: Arc<catalog::Catalog>,
    ) -> Providers {
        Providers {
            client,
            providers,
            other_secrets,
            catalog,
            limits: Vec::new(),
            tools: None,
        }
    }

    /// The same registry with the tool servers (the MCP client) agents may call.
    pub fn with_tools(mut self, tools: Arc<dyn ToolBox>) -> Providers {
        self.tools = Some(tools);
        self
    }

    /// The tool servers, when `MESH_MCP_CONFIG` configured them.
    pub fn tools(&self) -> Option<&Arc<dyn ToolBox>> {
        self.tools.as_ref()
    }

    fn provider(&self, id: ProviderId) -> Option<&Arc<dyn Provider>> {
        self.providers.iter().find(|p| p.id() == id)
    }

    pub fn is_configured(&self, id: ProviderId) -> bool {
        self.provider(id).is_some()
    }

    pub fn catalog(&self) -> &Arc<catalog::Catalog> {
        &self.catalog
    }

    /// The configured providers' ids, in preference order.
    pub fn configured(&self) -> Vec<ProviderId> {
        let mut ids: Vec<ProviderId> = self.providers.iter().map(|p| p.id()).collect();
        ids.sort();
        ids
    }

    pub fn client(&self) -> &client::HttpClient {
        &self.client
    }

    /// Whether a configured provider can be called now, with a reason when not
    /// (a dead or malformed Hermes login).
    pub fn usability(&self, id: ProviderId) -> Result<(), String> {
        match self.provider(id) {
            Some(p) => p.usability(),
            None => Err("not configured".to_string()),
        }
    }

    /// How a provider is signed in (`api_key`, `hermes_login` or `none`); for one not
    /// configured, how it would be without a key of its own.
    pub fn auth_kind(&self, id: ProviderId) -> &'static str {
        match self.provider(id) {
            Some(p) => p.auth(),
            None => descriptor::descriptor(id).unkeyed_auth,
        }
    }

    /// Where a provider's model list lives, and the key to ask with.
    pub async fn catalog_endpoint(
        &self,
        provider: ProviderId,
    ) -> Result<(String, Option<crate::secret::Secret>), String> {
        match self.provider(provider) {
            Some(p) => p.catalog_endpoint().await,
            None => Err(format!("provider {provider} is not configured")),
        }
    }

    /// Every secret this process knows, including login tokens in use now. Very short
    /// values would mask ordinary words; keys and passwords are longer.
    fn all_secrets(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .providers
            .iter()
            .flat_map(|p| p.secrets())
            .chain(self.other_secrets.iter().cloned())
            .filter(|s| s.len() >= 4)
            .collect();
        all.extend(self.providers.iter().flat_map(|p| p.live_secrets()));
        all
    }

    /// Streams one call through the named provider, retrying before the first output,
    /// with every secret masked in what comes back.
    pub async fn stream(
        &self,
        provider: ProviderId,
        request: &CallRequest<'_>,
        sink: &mut dyn TokenSink,
    ) -> Result<CallOutcome, ProviderError> {
        let Some(p) = self.provider(provider) else {
            METRICS.upstream_call(provider);
            let e = ProviderError::new(
                ErrorKind::Config,
                format!("provider {provider} is not configured"),
            );
            METRICS.upstream_error(provider, e.kind);
            return Err(e);
        };
        // Held for the whole call, retries included; the call's timeouts start when
        // an attempt is sent, so time spent waiting here never counts against them.
        let _slot = self.call_slot(provider, sink).await;
        p.prepare().await?;
        let mut sink = redact::RedactingSink::new(sink, self.all_secrets());
        let result = self.with_retries(p.as_ref(), request, &mut sink).await;
        sink.flush();
        // Without a reported cost, estimate it from catalog prices.
        let result = result.map(|mut outcome| {
            if outcome.cost_usd.is_none() && p.estimates_cost() {
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
        match result {
            Ok(mut outcome) => {
                for call in &mut outcome.tool_calls {
                    call.arguments = redact::redact(&call.arguments, &secrets);
                }
                Ok(outcome)
            }
            Err(mut e) => {
                e.message = redact::redact(&e.message, &secrets);
                Err(e)
            }
        }
    }

    /// A place among the provider's calls in flight when it has a limit: at once if
    /// one is free, else after saying (through `sink`) that the call is queued.
    async fn call_slot(
        &self,
        provider: ProviderId,
        sink: &mut dyn TokenSink,
    ) -> Option<OwnedSemaphorePermit> {
        let (_, limit, slots) = self.limits.iter().find(|(id, _, _)| *id == provider)?;
        if let Ok(permit) = slots.clone().try_acquire_owned() {
            return Some(permit);
        }
        let calls = if *limit == 1 { "call" } else { "calls" };
        sink.queued(&format!(
            "waiting for {provider}: it takes {limit} {calls} at once ({}_MAX_CONCURRENCY)",
            provider.as_str().to_ascii_uppercase()
        ));
        // The semaphore is never closed.
        slots.clone().acquire_owned().await.ok()
    }

    async fn with_retries(
        &self,
        provider: &dyn Provider,
        request: &CallRequest<'_>,
        sink: &mut redact::RedactingSink<'_>,
    ) -> Result<CallOutcome, ProviderError> {
        let id = provider.id();
        let mut attempt = 0;
        let mut refreshed_login = false;
        loop {
            let mut progress = Attempt::default();
            METRICS.upstream_call(id);
            let secrets = self.all_secrets();
            let result = provider
                .attempt(request, sink, &mut progress, &secrets)
                .await;
            if let Err(e) = &result {
                METRICS.upstream_error(id, e.kind);
            }
            match result {
                // A 401 with a login: refresh once (unless another call already did)
                // and try again at once.
                Err(e) if e.status == Some(401) && !progress.emitted && !refreshed_login => {
                    let Some(used) = progress.login_bearer else {
                        return Err(e);
                    };
                    refreshed_login = true;
                    if !provider.after_unauthorized(&used).await? {
                        return Err(e);
                    }
                    sink.set_secrets(self.all_secrets());
                }
                Err(e) if e.retryable && !progress.emitted && attempt < MAX_RETRIES => {
                    attempt += 1;
                    let delay = e.retry_after.unwrap_or_else(|| backoff(attempt));
                    METRICS.retry(id);
                    sink.retrying(attempt, delay, &e);
                    tokio::time::sleep(delay).await;
                }
                other => return other,
            }
        }
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

/// A call for the request builders' tests: the messages they put on the wire, the
/// rest fixed.
#[cfg(test)]
pub(crate) fn test_call<'a>(
    model: &'a str,
    messages: &'a [Message],
    max_tokens: u32,
) -> CallRequest<'a> {
    let second = Duration::from_secs(1);
    CallRequest {
        agent: "researcher",
        kind: crate::model::agent::AgentKind::Specialist,
        model,
        messages,
        tools: &[],
        answer_without_tools: false,
        max_tokens,
        timeouts: crate::model::run_config::CallTimeouts {
            first_token: second,
            idle: second,
            total: second,
        },
        task: "t",
        subtask: None,
        candidates: &[],
        context: &[],
        history: &[],
        traceparent: None,
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
