//! The frozen configuration of one run: resolved at start, never changed while it runs.

use crate::model::agent::AgentKind;
use crate::model::conversation::Conversation;
use crate::model::provider_id::ProviderId;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentConfig {
    pub name: String,
    pub title: String,
    pub emoji: String,
    pub kind: AgentKind,
    pub role: String,
    pub prompt: String,
    pub provider: ProviderId,
    /// The model as configured (canonical id, or a native id the user chose).
    pub model: String,
    pub max_tokens: u32,
    /// Said in a `status` event before the agent's call (a model the catalog lacks).
    pub warning: Option<String>,
}

/// How the team's specialists are ordered (`MESH_SCHEDULE`, or `schedule` per run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// One after another, each with digests of every earlier one (SPEC §4.2).
    #[default]
    Sequential,
    /// The plan's dependency graph: each as soon as what it is `after` has finished.
    Parallel,
}

impl Schedule {
    pub fn parse(s: &str) -> Option<Schedule> {
        match s.trim().to_ascii_lowercase().as_str() {
            "sequential" => Some(Schedule::Sequential),
            "parallel" => Some(Schedule::Parallel),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Schedule::Sequential => "sequential",
            Schedule::Parallel => "parallel",
        }
    }
}

/// Serialized whole (serde derives) where a shared store keeps it, so a field added
/// here is carried with no other change.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunConfig {
    pub provider: ProviderId,
    /// Pipeline order: planner, specialists in roster order, writer.
    pub agents: Vec<AgentConfig>,
    /// The team named by the request (`agents`), which skips the orchestrator.
    pub requested_team: Option<Vec<String>>,
    pub detach: bool,
    pub timeouts: CallTimeouts,
    pub schedule: Schedule,
    /// Agent calls of this run at once at most (`MESH_MAX_PARALLEL`).
    pub max_parallel: usize,
    /// Tool rounds one agent turn may take at most (`MESH_TOOL_ROUNDS`).
    pub tool_rounds: u32,
    /// The earlier turns a follow-up continues (empty for a first question).
    pub conversation: Conversation,
    /// Set when the request asked to review the plan (`review`): the run pauses
    /// after its `plan` until the plan is approved.
    #[serde(default)]
    pub review: Option<ReviewConfig>,
    /// The W3C trace context of the request that started the run (its `traceparent`
    /// header): the run span's parent. Not stored: it only matters while the run runs.
    #[serde(skip)]
    pub trace_parent: Option<crate::trace::SpanContext>,
}

/// How a run waits for its plan to be approved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewConfig {
    /// Unanswered this long (`MESH_REVIEW_TIMEOUT_SECS`), the run ends `cancelled`.
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct CallTimeouts {
    pub first_token: Duration,
    pub idle: Duration,
    pub total: Duration,
}

impl RunConfig {
    pub fn agent(&self, name: &str) -> Option<&AgentConfig> {
        self.agents.iter().find(|a| a.name == name)
    }

    pub fn planner(&self) -> &AgentConfig {
        self.of_kind(AgentKind::Planner)
            .next()
            .expect("validated roster has a planner")
    }

    pub fn writer(&self) -> &AgentConfig {
        self.of_kind(AgentKind::Writer)
            .next()
            .expect("validated roster has a writer")
    }

    pub fn specialists(&self) -> impl Iterator<Item = &AgentConfig> {
        self.of_kind(AgentKind::Specialist)
    }

    fn of_kind(&self, kind: AgentKind) -> impl Iterator<Item = &AgentConfig> {
        self.agents.iter().filter(move |a| a.kind == kind)
    }

    /// The whole frozen config as JSON, for a shared store (not the snapshot's view).
    pub fn to_stored_json(&self) -> String {
        // Plain structs with string keys: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_stored_json(text: &str) -> Result<RunConfig, String> {
        serde_json::from_str(text).map_err(|e| format!("stored run config: {e}"))
    }

    /// The `config` object of the run snapshot (SPEC §3).
    pub fn to_json(&self) -> Value {
        let mut agents = Map::new();
        for a in &self.agents {
            agents.insert(
                a.name.clone(),
                json!({"provider": a.provider.as_str(), "model": a.model, "max_tokens": a.max_tokens}),
            );
        }
        json!({
            "provider": self.provider.as_str(),
            "agents": agents,
            "schedule": self.schedule,
            "max_parallel": self.max_parallel,
        })
    }
}
