//! Shared pieces of the run's unit tests: a small frozen config and event builders.

use crate::model::agent::AgentKind;
use crate::model::conversation::Conversation;
use crate::model::error_kind::ErrorKind;
use crate::model::events::{
    AgentState, DoneEvent, ErrorEvent, Event, RunStatus, StatusEvent, StreamEndEvent,
    StreamStartEvent, Usage,
};
use crate::model::provider_id::ProviderId;
use crate::model::run_config::{AgentConfig, CallTimeouts, RunConfig, Schedule};
use std::time::Duration;

fn agent(name: &str, kind: AgentKind) -> AgentConfig {
    AgentConfig {
        name: name.to_string(),
        title: name.to_string(),
        emoji: String::new(),
        kind,
        role: String::new(),
        prompt: String::new(),
        provider: ProviderId::OpenRouter,
        model: format!("{name}-model"),
        max_tokens: 100,
        warning: None,
        tools: None,
    }
}

/// Planner, one specialist (`analyst`) and the writer (`writer`).
pub fn config(detach: bool) -> RunConfig {
    RunConfig {
        provider: ProviderId::OpenRouter,
        agents: vec![
            agent("orchestrator", AgentKind::Planner),
            agent("analyst", AgentKind::Specialist),
            agent("writer", AgentKind::Writer),
        ],
        requested_team: None,
        detach,
        timeouts: CallTimeouts {
            first_token: Duration::from_secs(1),
            idle: Duration::from_secs(1),
            total: Duration::from_secs(1),
        },
        schedule: Schedule::Sequential,
        max_parallel: 1,
        tool_rounds: 8,
        conversation: Conversation::default(),
        budget: None,
        review: None,
        trace_parent: None,
    }
}

pub fn start(agent: &str) -> Event {
    Event::StreamStart(StreamStartEvent {
        agent: agent.to_string(),
        model: format!("{agent}-served"),
        provider: "openrouter".to_string(),
        substituted_for: None,
    })
}

pub fn end(agent: &str, input: u64, output: u64, cost: f64) -> Event {
    Event::StreamEnd(StreamEndEvent {
        agent: agent.to_string(),
        finish_reason: "stop".to_string(),
        chars: 3,
        usage: Some(Usage {
            input_tokens: input,
            output_tokens: output,
        }),
        cost_usd: Some(cost),
        ttft_ms: Some(5),
        elapsed_ms: 9,
    })
}

pub fn status(agent: &str, state: AgentState) -> Event {
    Event::Status(StatusEvent {
        agent: Some(agent.to_string()),
        state,
        detail: String::new(),
    })
}

pub fn error(agent: Option<&str>, kind: ErrorKind) -> Event {
    Event::Error(ErrorEvent {
        agent: agent.map(str::to_string),
        kind,
        message: "it broke".to_string(),
        status: Some(502),
    })
}

pub fn done(status: RunStatus, output: &str) -> Event {
    Event::Done(DoneEvent {
        status,
        output: output.to_string(),
        usage: None,
        cost_usd: None,
        elapsed_ms: 42,
        trace_id: None,
        budget: None,
    })
}
