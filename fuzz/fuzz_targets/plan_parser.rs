//! Invariant: `parse_plan` never panics; an Ok plan is non-empty, names only roster specialists, without duplicates, in roster order, has tasks only for team members, and drops only unknown names.
//!
//! Input: the orchestrator's reply (lossy UTF-8), parsed against the built-in roster and
//! against a larger custom one (names with `_` and `-`, one that prefixes another).
#![no_main]

use agent_mesh::pipeline::plan::{parse_plan, Plan};
use libfuzzer_sys::fuzz_target;
use std::collections::HashSet;

/// Replies are cut at 256 KiB inside the parser; 64 KiB reaches every code path.
const MAX_INPUT: usize = 64 * 1024;

const BUILTIN: &[&str] = &["researcher", "coder", "analyst"];
const CUSTOM: &[&str] = &[
    "poet",
    "critic",
    "fact_checker",
    "data-viz",
    "poet2",
    "a",
    "translator",
    "editor",
];

fn check(roster: &[&str], plan: &Plan) {
    assert!(!plan.agents.is_empty(), "an Ok plan has a team: {plan:?}");
    let positions: Vec<usize> = plan
        .agents
        .iter()
        .map(|a| {
            roster
                .iter()
                .position(|r| r == a)
                .unwrap_or_else(|| panic!("{a:?} is not in the roster {roster:?}"))
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "team not in roster order or duplicated: {:?}",
        plan.agents
    );
    for (name, task) in &plan.tasks {
        assert!(
            plan.agents.contains(name),
            "task for {name:?}, who is not in the team {:?}",
            plan.agents
        );
        assert!(!task.trim().is_empty(), "empty task for {name:?}");
    }
    let mut seen = HashSet::new();
    for dropped in &plan.dropped {
        assert!(
            !dropped.trim().is_empty(),
            "an empty name was reported dropped"
        );
        let key = dropped.trim().to_lowercase();
        assert!(
            !roster.contains(&key.as_str()),
            "known specialist {dropped:?} reported as dropped"
        );
        assert!(seen.insert(key), "{dropped:?} dropped twice");
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT {
        return;
    }
    let reply = String::from_utf8_lossy(data);
    for roster in [BUILTIN, CUSTOM] {
        if let Ok(plan) = parse_plan(&reply, roster) {
            check(roster, &plan);
        }
    }
});
