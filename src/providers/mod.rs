//! The provider seam: one call = system + user prompt in, a stream of text deltas out,
//! then usage or a typed error. Adapters plug in behind `Providers::stream`.

pub mod error;
pub mod id;
pub mod offline;
pub mod routing;
pub mod sse;

use crate::config::Config;
use crate::events::Usage;
use crate::pipeline::roster::AgentKind;
use crate::pipeline::run_config::CallTimeouts;
use error::{ErrorKind, ProviderError};
use id::ProviderId;
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

/// Every adapter this process can call, built once from the config.
pub struct Providers {
    offline: offline::OfflineProvider,
    configured: Vec<ProviderId>,
}

impl Providers {
    pub fn from_config(config: &Config) -> Providers {
        Providers {
            offline: offline::OfflineProvider::new(config.offline_delay),
            configured: config.providers.configured(),
        }
    }

    pub fn is_configured(&self, id: ProviderId) -> bool {
        self.configured.contains(&id)
    }

    /// Streams one call through the named provider's adapter.
    pub async fn stream(
        &self,
        provider: ProviderId,
        request: &CallRequest<'_>,
        sink: &mut dyn TokenSink,
    ) -> Result<CallOutcome, ProviderError> {
        match provider {
            ProviderId::Offline => Ok(self.offline.stream(request, sink).await),
            other => Err(ProviderError::new(
                ErrorKind::Config,
                format!("the {other} adapter is not available in this build"),
            )),
        }
    }
}
