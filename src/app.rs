//! The shared state of one server process and the freezing of a run's configuration.

use crate::api::run_request::RunRequest;
use crate::config::Config;
use crate::pipeline::run_config::{AgentConfig, CallTimeouts, RunConfig};
use crate::providers::Providers;
use crate::store::{RunStore, StoreLimits};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long one agent call may take in all (SPEC §5.1).
pub const CALL_TOTAL_TIMEOUT: Duration = Duration::from_secs(600);

pub struct AppState {
    pub config: Arc<Config>,
    pub store: Arc<RunStore>,
    pub providers: Arc<Providers>,
    pub started: Instant,
}

impl AppState {
    /// Fails only when the provider client cannot be built (an unusable `MESH_CA_FILE`).
    pub fn new(config: Config) -> Result<Arc<AppState>, String> {
        let store = RunStore::new(StoreLimits {
            run_ttl: config.run_ttl,
            max_active_runs: config.max_active_runs,
            disconnect_grace: config.disconnect_grace,
        });
        let providers = Arc::new(Providers::from_config(&config)?);
        Ok(Arc::new(AppState {
            config: Arc::new(config),
            store,
            providers,
            started: Instant::now(),
        }))
    }

    /// Resolves provider, model and max_tokens of every agent now, so nothing that
    /// changes later can affect the run.
    pub fn freeze_run_config(&self, req: &RunRequest) -> RunConfig {
        let provider = req.provider.unwrap_or(self.config.provider);
        let agents = self
            .config
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
                }
            })
            .collect();
        RunConfig {
            provider,
            agents,
            requested_team: req.agents.clone(),
            detach: req.detach,
            timeouts: CallTimeouts {
                first_token: self.config.ttft_timeout,
                idle: self.config.idle_timeout,
                total: CALL_TOTAL_TIMEOUT,
            },
        }
    }
}
