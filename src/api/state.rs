//! The shared state of one server process and the freezing of a run's configuration.

use crate::api::run_request::ModelChoice;
use crate::api::run_request::RunRequest;
use crate::config::auth::AuthSettings;
use crate::config::listener::ListenerSettings;
use crate::config::Settings;
use crate::model::provider_id::ProviderId;
use crate::model::run_config::{AgentConfig, CallTimeouts, RunConfig};
use crate::pipeline::settings::PipelineSettings;
use crate::providers::catalog::Source;
use crate::providers::settings::ProviderSettings;
use crate::providers::Providers;
use crate::store::redis::RedisStore;
use crate::store::{MemoryStore, RunStore};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long one agent call may take in all (SPEC §5.1).
pub const CALL_TOTAL_TIMEOUT: Duration = Duration::from_secs(600);

pub struct AppState {
    /// The listener's settings: connections and the router read their time limits here.
    pub listener: ListenerSettings,
    pub auth: AuthSettings,
    /// The endpoints and the active provider, as configured.
    pub provider_settings: ProviderSettings,
    pub pipeline: PipelineSettings,
    pub store: Arc<dyn RunStore>,
    pub providers: Arc<Providers>,
    pub started: Instant,
    pub auth_throttle: crate::http::auth_limit::AuthThrottle,
    pub device_cookies: crate::http::device_cookie::DeviceCookies,
    /// The MCP sessions of `/mcp` (2025-11-25 clients).
    pub mcp_sessions: crate::api::mcp::session::Sessions,
    /// Open event streams, per client and in all.
    pub subscribers: Arc<crate::http::subscriber_limit::SubscriberCaps>,
}

impl AppState {
    /// Fails only when the provider client cannot be built (an unusable `MESH_CA_FILE`).
    /// With `MESH_REDIS_URL` the runs live in Redis (call inside the runtime: the
    /// store starts its tasks).
    pub fn new(settings: Settings) -> Result<Arc<AppState>, String> {
        let Settings {
            listener,
            auth,
            providers,
            store,
            pipeline,
            mcp,
        } = settings;
        let limits = store.limits;
        let store: Arc<dyn RunStore> = match &store.redis {
            Some(redis) => {
                RedisStore::start(&redis.url, redis.ca_file.as_deref(), limits, redis.outage)
                    .map_err(|e| format!("MESH_REDIS_URL: {e}"))?
            }
            None => MemoryStore::new(limits),
        };
        let login = auth.credentials.as_ref().map(|c| &c.pass);
        let mut built = Providers::from_settings(&providers, &pipeline.roster.model_ids(), login)?;
        let subscribers = crate::http::subscriber_limit::SubscriberCaps::new(
            listener.max_subscribers,
            listener.max_subscribers_per_peer,
        );
        // The MCP client shares the providers' HTTP client (one HTTP stack, one CA set).
        if let Some(mcp) = &mcp {
            let client = crate::mcp::McpClient::new(mcp, built.client());
            built = built.with_tools(Arc::new(client));
        }
        // Served over HTTPS: by the server itself, or by the edge in front of it.
        let https =
            listener.tls.is_some() || auth.trust_proxy != crate::http::client_addr::TrustProxy::Off;
        let device_cookies = crate::http::device_cookie::DeviceCookies::new(
            auth.credentials.as_ref(),
            &auth.api_keys,
            https,
        );
        Ok(Arc::new(AppState {
            listener,
            auth,
            provider_settings: providers,
            pipeline,
            store,
            providers: Arc::new(built),
            started: Instant::now(),
            auth_throttle: Default::default(),
            device_cookies,
            mcp_sessions: Default::default(),
            subscribers,
        }))
    }

    /// Catalogs lag behind providers, so a model the live catalog lacks is still
    /// tried, with a warning.
    fn unlisted_model_warning(&self, provider: ProviderId, model: &str) -> Option<String> {
        let entry = self.providers.catalog().get(provider);
        (entry.source == Source::Live && entry.find(model).is_none())
            .then(|| format!("model {model} is not in {provider}'s catalog; trying it anyway"))
    }

    /// The tools `agent` may use in a run of `req`: the roster's grant, narrowed by the
    /// request's `tools`.
    fn granted_tools(
        &self,
        agent: &crate::pipeline::roster::Agent,
        req: &RunRequest,
    ) -> Vec<crate::model::tool_grant::ToolPattern> {
        let granted = self.pipeline.roster.granted_tools(agent);
        match &req.tools {
            Some(narrowing) => narrowing.narrow(&agent.name, granted),
            None => granted,
        }
    }

    /// Resolves provider, model and max_tokens of every agent now, so nothing that
    /// changes later can affect the run.
    pub fn freeze_run_config(&self, req: &RunRequest) -> RunConfig {
        let provider = req.provider.unwrap_or(self.provider_settings.active);
        let agents = self
            .pipeline
            .roster
            .agents()
            .iter()
            .map(|a| {
                let choice = req.models.get(&a.name);
                AgentConfig {
                    name: a.name.clone(),
                    title: a.title.clone(),
                    emoji: a.emoji.clone(),
                    kind: a.kind,
                    role: a.role.clone(),
                    prompt: a.prompt.clone(),
                    provider: choice.and_then(|c| c.provider).unwrap_or(provider),
                    model: choice.map_or_else(|| a.model.clone(), |c| c.model.clone()),
                    max_tokens: a.max_tokens,
                    warning: choice.and_then(|c| {
                        self.unlisted_model_warning(choice_provider(c, provider), &c.model)
                    }),
                    tools: Some(self.granted_tools(a, req)),
                }
            })
            .collect::<Vec<_>>();
        let budget = crate::pipeline::budget::freeze(
            req.budget,
            self.pipeline.budget,
            &agents,
            self.providers.catalog(),
            &req.task,
        );
        RunConfig {
            provider,
            agents,
            requested_team: req.agents.clone(),
            detach: req.detach,
            schedule: req.schedule.unwrap_or(self.pipeline.schedule),
            max_parallel: self.pipeline.max_parallel,
            tool_rounds: self.pipeline.tool_rounds,
            timeouts: CallTimeouts {
                first_token: self.pipeline.ttft_timeout,
                idle: self.pipeline.idle_timeout,
                total: CALL_TOTAL_TIMEOUT,
            },
            conversation: Default::default(),
            budget,
            review: None,
            trace_parent: None,
        }
    }
}

fn choice_provider(choice: &ModelChoice, run_provider: ProviderId) -> ProviderId {
    choice.provider.unwrap_or(run_provider)
}
