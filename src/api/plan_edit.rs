//! A reviewer's edits of a paused run's plan (`POST /api/runs/{id}/plan`): parsed and
//! validated as strictly as a request's `agents` (the same team rules) and as the
//! orchestrator's plan is resolved (known team members only, no self-dependency, an
//! acyclic graph), except that a person is told what to fix (a 400 naming the field,
//! `agents[2]`, `tasks.coder`, `after.analyst[0]`) where a model's plan is repaired.

use super::run_request::{fail, parse_team, unreadable_text, FieldError, MAX_TASK_CHARS};
use crate::model::dependency::DropReason;
use crate::model::events::{PlanEvent, PlanSource};
use crate::pipeline::dependencies::{self, Named};
use serde_json::Value;
use std::collections::BTreeMap;

/// The fields an approval may carry.
const FIELDS: &str = "agents, tasks, after";

/// Applies the edits in `body` (a JSON object, `{}` or empty for none) to `current`,
/// the plan the run paused on; `specialists` are the roster's specialist names in
/// roster order. Each of `agents`, `tasks` and `after` given replaces that part of
/// the plan; a part left out keeps the current one, restricted to the team. The
/// result is the plan to run, `source` `review` (`stages` left for the pipeline).
pub fn apply_plan_edits(
    body: &[u8],
    specialists: &[&str],
    current: &PlanEvent,
) -> Result<PlanEvent, FieldError> {
    let fields = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::Map::new()
    } else {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(fields)) => fields,
            Ok(_) => {
                return Err(fail(
                    "body",
                    "body must be a JSON object: {} approves the plan as it is",
                ))
            }
            Err(e) => return Err(fail("body", format!("body is not valid JSON: {e}"))),
        }
    };
    if let Some(key) = fields
        .keys()
        .find(|k| !matches!(k.as_str(), "agents" | "tasks" | "after"))
    {
        let shown = crate::util::cut_chars(key, 40);
        let field = if shown.is_empty() { "\"\"" } else { shown };
        return Err(fail(
            field,
            format!("unknown field \"{shown}\" (expected {FIELDS})"),
        ));
    }

    let team = match fields.get("agents") {
        None | Some(Value::Null) => current.agents.clone(),
        Some(list) => parse_team("agents", list, specialists)?,
    };
    let on_team = |name: &str| team.iter().any(|t| t == name);

    let tasks = match fields.get("tasks") {
        None | Some(Value::Null) => current
            .tasks
            .iter()
            .filter(|(name, _)| on_team(name))
            .map(|(n, t)| (n.clone(), t.clone()))
            .collect(),
        Some(Value::Object(map)) => {
            let mut tasks = BTreeMap::new();
            for (name, task) in map {
                let field = format!("tasks.{}", crate::util::cut_chars(name, 40));
                let member = team_member(&team, name).ok_or_else(|| {
                    fail(
                        &field,
                        format!("{field}: not a member of the team ({})", team.join(", ")),
                    )
                })?;
                let text = match task {
                    Value::Null => continue,
                    Value::String(s) => s.trim(),
                    _ => return Err(fail(&field, "a task must be a string")),
                };
                if text.is_empty() {
                    continue;
                }
                if let Some(why) = unreadable_text(text) {
                    return Err(fail(&field, format!("{field}: the task {why}")));
                }
                let chars = text.chars().count();
                if chars > MAX_TASK_CHARS {
                    return Err(fail(
                        &field,
                        format!("{field}: the task is {chars} characters; the limit is {MAX_TASK_CHARS}"),
                    ));
                }
                tasks.insert(member, text.to_string());
            }
            tasks
        }
        Some(_) => {
            return Err(fail(
                "tasks",
                "tasks must be an object mapping team members to their task",
            ))
        }
    };

    let after = match fields.get("after") {
        None | Some(Value::Null) => {
            let edges: Vec<(Named, Named)> = current
                .after
                .iter()
                .filter(|(agent, _)| on_team(agent))
                .flat_map(|(agent, deps)| {
                    deps.iter()
                        .filter(|d| on_team(d))
                        .map(|d| (Named::Known(agent.clone()), Named::Known(d.clone())))
                })
                .collect();
            dependencies::resolve(&team, &edges).after
        }
        Some(Value::Object(map)) => edited_dependencies(&team, map)?,
        Some(_) => {
            return Err(fail(
                "after",
                "after must be an object mapping team members to the members they work after",
            ))
        }
    };

    Ok(PlanEvent {
        agents: team,
        reasoning: current.reasoning.clone(),
        tasks,
        source: PlanSource::Review,
        dropped: Vec::new(),
        reason: String::new(),
        schedule: current.schedule,
        after,
        dropped_after: Vec::new(),
        stages: Vec::new(),
    })
}

/// The team's name for `name` (case and surrounding space aside), if it is a member.
fn team_member(team: &[String], name: &str) -> Option<String> {
    let wanted = name.trim().to_ascii_lowercase();
    team.iter().find(|t| **t == wanted).cloned()
}

/// `after` as the reviewer wrote it: every edge between team members, none onto
/// itself, none closing a cycle; the first one that breaks a rule is named.
fn edited_dependencies(
    team: &[String],
    map: &serde_json::Map<String, Value>,
) -> Result<BTreeMap<String, Vec<String>>, FieldError> {
    let not_member = |field: &str, name: &str| {
        fail(
            field,
            format!(
                "{field}: \"{}\" is not a member of the team ({})",
                crate::util::cut_chars(name, 40),
                team.join(", ")
            ),
        )
    };
    let mut edges: Vec<(Named, Named)> = Vec::new();
    let mut edge_fields: Vec<String> = Vec::new();
    for (name, deps) in map {
        let field = format!("after.{}", crate::util::cut_chars(name, 40));
        let agent = team_member(team, name).ok_or_else(|| not_member(&field, name))?;
        let list = match deps {
            Value::Null => continue,
            Value::Array(list) => list,
            _ => {
                return Err(fail(
                    &field,
                    "an agent's dependencies must be an array of names",
                ))
            }
        };
        for (i, dep) in list.iter().enumerate() {
            let entry = format!("{field}[{i}]");
            let Value::String(dep) = dep else {
                return Err(fail(&entry, "each dependency must be a string"));
            };
            let dep = team_member(team, dep).ok_or_else(|| not_member(&entry, dep))?;
            if dep == agent {
                return Err(fail(
                    &entry,
                    format!("{entry}: {agent} cannot work after itself"),
                ));
            }
            edges.push((Named::Known(agent.clone()), Named::Known(dep)));
            edge_fields.push(entry);
        }
    }
    let resolved = dependencies::resolve(team, &edges);
    if let Some(drop) = resolved.dropped.first() {
        let at = edges
            .iter()
            .position(|(a, b)| {
                *a == Named::Known(drop.agent.clone()) && *b == Named::Known(drop.after.clone())
            })
            .map_or("after", |i| edge_fields[i].as_str());
        let why = match drop.reason {
            DropReason::Cycle => format!(
                "{} after {} would close a cycle of dependencies",
                drop.agent, drop.after
            ),
            _ => format!("{} after {} cannot be kept", drop.agent, drop.after),
        };
        return Err(fail(at, format!("{at}: {why}")));
    }
    Ok(resolved.after)
}

#[cfg(test)]
#[path = "plan_edit_tests.rs"]
mod tests;
