//! The frozen configuration of one run: resolved at start, never changed while it runs.

use crate::model::agent::AgentKind;
use crate::model::conversation::Conversation;
use crate::model::provider_id::ProviderId;
use crate::model::tool_grant::{self, ToolPattern};
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
    /// The MCP tools this agent may use in this run: the roster's grant, narrowed by
    /// the request's `tools`. `None` only in a run stored before grants were frozen:
    /// then the old default holds (every tool for a specialist, none for the others).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<ToolPattern>>,
}

impl AgentConfig {
    /// Whether this agent may use `tool` of `server` in this run.
    pub fn may_use_tool(&self, server: &str, tool: &str) -> bool {
        match &self.tools {
            Some(grants) => tool_grant::allows(grants, server, tool),
            None => self.kind == AgentKind::Specialist,
        }
    }

    /// Whether this agent may use any tool at all in this run.
    pub fn may_use_any_tool(&self) -> bool {
        match &self.tools {
            Some(grants) => !grants.is_empty(),
            None => self.kind == AgentKind::Specialist,
        }
    }
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
    /// The run's spending caps with the prices and reserve they are counted by
    /// (`budget`, `MESH_RUN_BUDGET_*`); absent in runs stored before budgets existed.
    #[serde(default)]
    pub budget: Option<crate::model::budget::RunBudget>,
    /// Set when the request asked to review the plan (`review`): the run pauses
    /// after its `plan` until the plan is approved.
    #[serde(default)]
    pub review: Option<ReviewConfig>,
    /// The W3C trace context of the request that started the run (its `traceparent`
    /// header): the run span's parent. A shared store keeps it (as `traceparent` text;
    /// configs stored before it read as `None`), so an instance that ends the run on
    /// its owner's behalf still names the run's trace.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::model::trace_context::as_traceparent"
    )]
    pub trace_parent: Option<crate::model::trace_context::SpanContext>,
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
                json!({"provider": a.provider.as_str(), "model": a.model, "max_tokens": a.max_tokens, "tools": a.tools}),
            );
        }
        json!({
            "provider": self.provider.as_str(),
            "agents": agents,
            "schedule": self.schedule,
            "max_parallel": self.max_parallel,
            "budget": self.budget.as_ref().map(|b| b.caps),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent_json(kind: &str, tools: &str) -> String {
        format!(
            r#"{{"name":"a","title":"A","emoji":"","kind":"{kind}","role":"","prompt":"",
            "provider":"offline","model":"m","max_tokens":1,"warning":null{tools}}}"#
        )
    }

    #[test]
    fn a_stored_agent_without_tools_keeps_the_old_default() {
        let old: AgentConfig = serde_json::from_str(&agent_json("specialist", "")).unwrap();
        assert_eq!(old.tools, None);
        assert!(old.may_use_any_tool() && old.may_use_tool("fs", "read"));
        let old: AgentConfig = serde_json::from_str(&agent_json("writer", "")).unwrap();
        assert!(!old.may_use_any_tool() && !old.may_use_tool("fs", "read"));
    }

    #[test]
    fn frozen_tools_survive_the_store_and_decide() {
        let stored: AgentConfig =
            serde_json::from_str(&agent_json("writer", r#","tools":["fs/read","web/*"]"#)).unwrap();
        assert!(stored.may_use_tool("fs", "read") && stored.may_use_tool("web", "x"));
        assert!(!stored.may_use_tool("fs", "write"));
        let again: AgentConfig =
            serde_json::from_str(&serde_json::to_string(&stored).unwrap()).unwrap();
        assert_eq!(again.tools, stored.tools);
        let none: AgentConfig =
            serde_json::from_str(&agent_json("specialist", r#","tools":[]"#)).unwrap();
        assert!(!none.may_use_any_tool() && !none.may_use_tool("fs", "read"));
    }
}
