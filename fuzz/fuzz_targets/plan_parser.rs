//! Invariant: `parse_plan` never panics; an Ok plan is non-empty, names only roster specialists, without duplicates, in roster order, has tasks only for team members, drops only unknown names, and has an acyclic `after` with an entry for every member naming only other members.
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
    // Every member has an `after` entry naming only earlier-finishing team members:
    // following the edges from any member never comes back to it (acyclic).
    assert_eq!(
        plan.after.len(),
        plan.agents.len(),
        "after per member: {plan:?}"
    );
    for (name, deps) in &plan.after {
        assert!(plan.agents.contains(name), "after of a non-member {name:?}");
        for d in deps {
            assert!(
                plan.agents.contains(d) && d != name,
                "bad edge {name:?} after {d:?}"
            );
        }
    }
    let mut depth: Vec<usize> = vec![0; plan.agents.len()];
    for _ in 0..=plan.agents.len() {
        for (i, a) in plan.agents.iter().enumerate() {
            for d in &plan.after[a] {
                let j = plan.agents.iter().position(|x| x == d).unwrap();
                depth[i] = depth[i].max(depth[j] + 1);
            }
        }
    }
    assert!(
        depth.iter().all(|&d| d < plan.agents.len()),
        "a cycle: {plan:?}"
    );
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

/// `after` names only team members, never the agent itself, and has no cycle.
fn check_after(plan: &Plan) {
    assert_eq!(
        plan.after.len(),
        plan.agents.len(),
        "after must have exactly one entry per member: {plan:?}"
    );
    for (name, deps) in &plan.after {
        assert!(plan.agents.contains(name), "after key {name:?} not in team");
        for d in deps {
            assert!(
                plan.agents.contains(d) && d != name,
                "bad edge {name:?} after {d:?}"
            );
        }
    }
    // Kahn's algorithm: an acyclic graph removes every member.
    let mut left: Vec<&String> = plan.agents.iter().collect();
    let mut done: HashSet<&String> = HashSet::new();
    while !left.is_empty() {
        let before = left.len();
        left.retain(|n| {
            let ready = plan.after[*n].iter().all(|d| done.contains(d));
            if ready {
                done.insert(*n);
            }
            !ready
        });
        assert!(left.len() < before, "cycle among {left:?}");
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
            check_after(&plan);
        }
    }
});
