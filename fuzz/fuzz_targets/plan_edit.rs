//! Invariant: `apply_plan_edits` never panics; every rejection names a non-empty field that its message contains; an accepted plan has `source` review, a non-empty team of roster specialists in roster order without duplicates, tasks only for team members (trimmed, non-empty, at most 20000 chars, no NUL), and dependencies for exactly the team, only onto other members, acyclic.
//!
//! Input: a `POST /api/runs/{id}/plan` body, applied to a fixed paused plan (researcher
//! and analyst, with tasks and an edge) of the built-in roster.
#![no_main]

use agent_mesh::api::plan_edit::apply_plan_edits;
use agent_mesh::api::run_request::MAX_TASK_CHARS;
use agent_mesh::model::events::{PlanEvent, PlanSource};
use agent_mesh::model::run_config::Schedule;
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

/// Bodies are capped at 64 KiB by the server (413 beyond).
const MAX_INPUT: usize = 64 * 1024;
const SPECIALISTS: [&str; 3] = ["researcher", "coder", "analyst"];

fn paused_plan() -> PlanEvent {
    PlanEvent {
        agents: vec!["researcher".into(), "analyst".into()],
        reasoning: "r".into(),
        tasks: BTreeMap::from([("researcher".to_string(), "find".to_string())]),
        source: PlanSource::Orchestrator,
        dropped: Vec::new(),
        reason: String::new(),
        schedule: Schedule::Parallel,
        after: BTreeMap::from([
            ("researcher".to_string(), vec![]),
            ("analyst".to_string(), vec!["researcher".to_string()]),
        ]),
        dropped_after: Vec::new(),
        stages: Vec::new(),
    }
}

/// Whether the graph has no cycle (members removed once all they wait for are gone).
fn acyclic(after: &BTreeMap<String, Vec<String>>) -> bool {
    let mut left: Vec<&String> = after.keys().collect();
    while !left.is_empty() {
        let before = left.len();
        let done: Vec<&String> = left
            .iter()
            .copied()
            .filter(|a| after[*a].iter().all(|d| !left.contains(&d)))
            .collect();
        left.retain(|a| !done.contains(a));
        if left.len() == before {
            return false;
        }
    }
    true
}

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT {
        return;
    }
    match apply_plan_edits(data, &SPECIALISTS, &paused_plan()) {
        Err(e) => {
            assert!(!e.field.is_empty(), "a rejection without a field: {e:?}");
            assert!(
                e.message.contains(&e.field),
                "the message does not name the field: {e:?}"
            );
        }
        Ok(plan) => {
            assert_eq!(plan.source, PlanSource::Review);
            assert!(!plan.agents.is_empty(), "an empty team was accepted");
            let positions: Vec<usize> = plan
                .agents
                .iter()
                .map(|a| {
                    SPECIALISTS
                        .iter()
                        .position(|s| s == a)
                        .unwrap_or_else(|| panic!("{a:?} is not a specialist"))
                })
                .collect();
            assert!(
                positions.windows(2).all(|w| w[0] < w[1]),
                "team not in roster order or duplicated: {:?}",
                plan.agents
            );
            for (agent, task) in &plan.tasks {
                assert!(
                    plan.agents.contains(agent),
                    "task for {agent}, off the team"
                );
                assert_eq!(task, task.trim(), "untrimmed task");
                assert!(!task.is_empty() && !task.contains('\0'));
                assert!(task.chars().count() <= MAX_TASK_CHARS);
            }
            let members: Vec<&String> = plan.after.keys().collect();
            let mut team: Vec<&String> = plan.agents.iter().collect();
            team.sort();
            assert_eq!(members, team, "dependencies not for exactly the team");
            for (agent, deps) in &plan.after {
                for d in deps {
                    assert!(plan.agents.contains(d) && d != agent, "{agent} after {d}");
                }
            }
            assert!(acyclic(&plan.after), "a cycle: {:?}", plan.after);
        }
    }
});
