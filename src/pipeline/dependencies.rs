//! The plan's dependency graph: which specialist works after which. Edges as the
//! orchestrator wrote them are resolved against the team: unknown names, agents outside
//! the team, self-dependencies and edges that would close a cycle are dropped and
//! reported, never a failed run. Stages group the team by longest dependency depth.

use crate::model::dependency::{DropReason, DroppedDependency};
use std::collections::{BTreeMap, HashSet};

/// A plan may name far more edges than a team of 8 can have (a runaway model): past
/// this many distinct edges between team members the rest are dropped, so the cycle
/// checks stay small whatever the reply holds.
pub const MAX_DEPENDENCIES: usize = 256;

/// The plan event reports at most this many dropped edges (it is one line of JSON).
pub const MAX_REPORTED_DROPS: usize = 32;

/// One side of an edge as the plan wrote it: a roster specialist (by its roster name)
/// or a name the roster does not have (as written, trimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Named {
    Known(String),
    Unknown(String),
}

impl Named {
    fn text(&self) -> &str {
        match self {
            Named::Known(n) | Named::Unknown(n) => n,
        }
    }
}

/// The resolved graph.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dependencies {
    /// Every team member -> the members it works after, in team order (maybe none).
    pub after: BTreeMap<String, Vec<String>>,
    /// In the order the edges were written, deduplicated, at most [`MAX_REPORTED_DROPS`].
    pub dropped: Vec<DroppedDependency>,
}

/// Resolves `edges` (`(agent, after)` pairs, in the order the plan wrote them) against
/// `team` (roster order). Earlier edges win: an edge that would close a cycle with the
/// ones kept before it is the one dropped, so the result is deterministic.
pub fn resolve(team: &[String], edges: &[(Named, Named)]) -> Dependencies {
    let index = |name: &str| team.iter().position(|t| t == name);
    // deps[i]: team indices that member i works after.
    let mut deps: Vec<Vec<usize>> = vec![Vec::new(); team.len()];
    let mut kept = 0usize;
    let mut dropped = Vec::new();
    let mut reported: HashSet<(String, String)> = HashSet::new();
    let mut drop = |agent: &Named, after: &Named, reason: DropReason| {
        if dropped.len() >= MAX_REPORTED_DROPS {
            return;
        }
        let key = (agent.text().to_lowercase(), after.text().to_lowercase());
        if reported.insert(key) {
            dropped.push(DroppedDependency {
                agent: agent.text().to_string(),
                after: after.text().to_string(),
                reason,
            });
        }
    };
    for (agent, after) in edges {
        let (Named::Known(a), Named::Known(b)) = (agent, after) else {
            drop(agent, after, DropReason::Unknown);
            continue;
        };
        let (Some(i), Some(j)) = (index(a), index(b)) else {
            drop(agent, after, DropReason::NotInTeam);
            continue;
        };
        if i == j {
            drop(agent, after, DropReason::SelfDependency);
            continue;
        }
        if deps[i].contains(&j) {
            continue;
        }
        if kept >= MAX_DEPENDENCIES {
            drop(agent, after, DropReason::TooMany);
            continue;
        }
        if reaches(&deps, j, i) {
            drop(agent, after, DropReason::Cycle);
            continue;
        }
        deps[i].push(j);
        kept += 1;
    }
    let after = team
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut d = deps[i].clone();
            d.sort_unstable();
            (
                name.clone(),
                d.into_iter().map(|j| team[j].clone()).collect(),
            )
        })
        .collect();
    Dependencies { after, dropped }
}

/// Whether `to` is reachable from `from` along "works after" edges.
fn reaches(deps: &[Vec<usize>], from: usize, to: usize) -> bool {
    let mut seen = vec![false; deps.len()];
    let mut stack = vec![from];
    while let Some(n) = stack.pop() {
        if n == to {
            return true;
        }
        if !std::mem::replace(&mut seen[n], true) {
            stack.extend(deps[n].iter().copied());
        }
    }
    false
}

/// The team grouped by longest dependency depth: stage 0 needs nobody, stage k needs
/// someone of stage k-1 (and maybe earlier ones). Members keep team order in a stage.
/// Names in `after` outside `team` are ignored; the graph is acyclic by construction.
pub fn stages(team: &[String], after: &BTreeMap<String, Vec<String>>) -> Vec<Vec<String>> {
    let mut depth: Vec<Option<usize>> = vec![None; team.len()];
    // Team order is not a topological order, so settle depths until nothing changes;
    // an acyclic graph of n members settles within n passes.
    for _ in 0..=team.len() {
        let mut changed = false;
        for (i, name) in team.iter().enumerate() {
            let deps = after.get(name).map(Vec::as_slice).unwrap_or(&[]);
            let mut d = Some(0);
            for dep in deps {
                match team.iter().position(|t| t == dep).map(|j| depth[j]) {
                    Some(Some(dd)) => d = d.map(|x: usize| x.max(dd + 1)),
                    Some(None) => d = None,
                    None => {}
                }
            }
            if d.is_some() && depth[i] != d {
                depth[i] = d;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let mut out: Vec<Vec<String>> = Vec::new();
    for (i, name) in team.iter().enumerate() {
        let d = depth[i].unwrap_or(0);
        if out.len() <= d {
            out.resize(d + 1, Vec::new());
        }
        out[d].push(name.clone());
    }
    out.retain(|s| !s.is_empty());
    out
}

/// Each member after the one before it: the sequential schedule as a graph.
pub fn chain(team: &[String]) -> Vec<Vec<String>> {
    team.iter().map(|n| vec![n.clone()]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn team(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn known(a: &str, b: &str) -> (Named, Named) {
        (Named::Known(a.into()), Named::Known(b.into()))
    }

    #[test]
    fn every_member_has_an_entry_and_deps_are_in_team_order() {
        let t = team(&["researcher", "coder", "analyst"]);
        let d = resolve(
            &t,
            &[known("analyst", "coder"), known("analyst", "researcher")],
        );
        assert_eq!(d.after["researcher"], Vec::<String>::new());
        assert_eq!(d.after["coder"], Vec::<String>::new());
        assert_eq!(d.after["analyst"], ["researcher", "coder"]);
        assert!(d.dropped.is_empty());
    }

    #[test]
    fn a_cycle_is_broken_at_the_edge_that_closes_it() {
        let t = team(&["researcher", "coder", "analyst"]);
        let d = resolve(
            &t,
            &[
                known("coder", "researcher"),
                known("analyst", "coder"),
                known("researcher", "analyst"),
            ],
        );
        assert_eq!(d.after["coder"], ["researcher"]);
        assert_eq!(d.after["analyst"], ["coder"]);
        assert!(d.after["researcher"].is_empty());
        assert_eq!(
            d.dropped,
            [DroppedDependency {
                agent: "researcher".into(),
                after: "analyst".into(),
                reason: DropReason::Cycle
            }]
        );
    }

    #[test]
    fn unknown_outside_team_and_self_edges_are_dropped_with_their_reason() {
        let t = team(&["researcher", "coder"]);
        let d = resolve(
            &t,
            &[
                (Named::Known("coder".into()), Named::Unknown("Ghost".into())),
                known("coder", "analyst"),
                known("coder", "coder"),
                known("coder", "researcher"),
                known("coder", "researcher"),
                (Named::Known("coder".into()), Named::Unknown("ghost".into())),
            ],
        );
        assert_eq!(d.after["coder"], ["researcher"]);
        let reasons: Vec<(&str, DropReason)> = d
            .dropped
            .iter()
            .map(|e| (e.after.as_str(), e.reason))
            .collect();
        assert_eq!(
            reasons,
            [
                ("Ghost", DropReason::Unknown),
                ("analyst", DropReason::NotInTeam),
                ("coder", DropReason::SelfDependency)
            ]
        );
    }

    #[test]
    fn reports_are_capped() {
        let t = team(&["a"]);
        let edges: Vec<(Named, Named)> = (0..100)
            .map(|i| (Named::Known("a".into()), Named::Unknown(format!("x{i}"))))
            .collect();
        assert_eq!(resolve(&t, &edges).dropped.len(), MAX_REPORTED_DROPS);
    }

    #[test]
    fn stages_are_the_longest_dependency_depth() {
        let t = team(&["researcher", "coder", "analyst", "critic"]);
        let d = resolve(
            &t,
            &[
                known("researcher", "critic"),
                known("analyst", "researcher"),
                known("analyst", "coder"),
            ],
        );
        assert_eq!(
            stages(&t, &d.after),
            [
                team(&["coder", "critic"]),
                team(&["researcher"]),
                team(&["analyst"])
            ]
        );
        assert_eq!(
            stages(&t, &resolve(&t, &[]).after),
            [team(&["researcher", "coder", "analyst", "critic"])]
        );
        assert_eq!(chain(&t[..2]), [team(&["researcher"]), team(&["coder"])]);
    }
}
