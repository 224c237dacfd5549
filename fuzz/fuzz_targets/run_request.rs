//! Invariant: `parse_run_request` never panics; every rejection names a non-empty field that its message contains; an accepted request has a trimmed task of 1..=20000 chars, only configured providers, known agents, and a non-empty team of specialists in roster order.
//!
//! Input: a `POST /api/run` body, checked against the built-in roster with openrouter,
//! anthropic and offline configured (nous, openai and custom are not), so both the
//! "unknown" and the "not configured" paths are reachable.
#![no_main]

use agent_mesh::api::run_request::{parse_run_request, MAX_TASK_CHARS};
use agent_mesh::model::provider_id::ProviderId;
use agent_mesh::pipeline::roster::Roster;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// Bodies are capped at 64 KiB by the server (413 beyond).
const MAX_INPUT: usize = 64 * 1024;

fn is_configured(p: ProviderId) -> bool {
    matches!(
        p,
        ProviderId::OpenRouter | ProviderId::Anthropic | ProviderId::Offline
    )
}

fn roster() -> &'static Roster {
    static ROSTER: OnceLock<Roster> = OnceLock::new();
    ROSTER.get_or_init(Roster::builtin)
}

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT {
        return;
    }
    let roster = roster();
    match parse_run_request(data, roster, &is_configured) {
        Err(e) => {
            assert!(!e.field.is_empty(), "a rejection without a field: {e:?}");
            assert!(
                e.message.contains(&e.field),
                "the message does not name the field: {e:?}"
            );
        }
        Ok(req) => {
            assert_eq!(req.task, req.task.trim(), "the task is not trimmed");
            let chars = req.task.chars().count();
            assert!(
                (1..=MAX_TASK_CHARS).contains(&chars),
                "accepted a task of {chars} chars"
            );
            if let Some(p) = req.provider {
                assert!(is_configured(p), "accepted unconfigured provider {p}");
            }
            for (agent, choice) in &req.models {
                assert!(
                    roster.get(agent).is_some(),
                    "model for unknown agent {agent:?}"
                );
                assert!(
                    !choice.model.trim().is_empty(),
                    "empty model id for {agent}"
                );
                assert!(
                    !choice.model.chars().any(char::is_control),
                    "control character in the model id for {agent}"
                );
                if let Some(p) = choice.provider {
                    assert!(is_configured(p), "{agent} routed to unconfigured {p}");
                }
            }
            if let Some(team) = &req.agents {
                assert!(!team.is_empty(), "an empty team was accepted");
                let specialists = roster.specialist_names();
                let positions: Vec<usize> = team
                    .iter()
                    .map(|a| {
                        specialists
                            .iter()
                            .position(|s| s == a)
                            .unwrap_or_else(|| panic!("{a:?} is not a specialist"))
                    })
                    .collect();
                assert!(
                    positions.windows(2).all(|w| w[0] < w[1]),
                    "team not in roster order or duplicated: {team:?}"
                );
            }
        }
    }
});
