//! Parses the orchestrator's reply into a team plan: forgiving about form (fences, prose, synonyms, case), strict about content (known names only, no duplicates, roster order, an acyclic dependency graph). Finding the JSON object in the prose is `prose_json`'s part.

mod prose_json;
#[cfg(test)]
mod tests;

use crate::model::dependency::DroppedDependency;
use crate::pipeline::dependencies::{self, Named};
pub use prose_json::{MAX_PARSE_ATTEMPTS, MAX_REPLY_BYTES};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Keys that mark an object as a plan, in order of preference.
pub const AGENT_KEYS: [&str; 3] = ["agents", "team", "specialists"];

/// Keys of an agent's dependencies, in an agent object or as a top-level map.
pub const AFTER_KEYS: [&str; 4] = ["after", "depends_on", "dependencies", "needs"];

const NO_OBJECT: &str = "no JSON object found in the orchestrator's reply";
const NO_AGENTS: &str = "the plan has no \"agents\" list";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Roster names, roster order, no duplicates, non-empty.
    pub agents: Vec<String>,
    pub reasoning: String,
    /// Roster name -> subtask, only for agents in the team.
    pub tasks: BTreeMap<String, String>,
    /// Unknown names as the model wrote them (trimmed), in order of appearance,
    /// deduplicated case-insensitively.
    pub dropped: Vec<String>,
    /// Every team member -> the members it works after (team order, maybe none);
    /// acyclic.
    pub after: BTreeMap<String, Vec<String>>,
    /// Dependency edges left out of `after`, with the reason.
    pub dropped_after: Vec<DroppedDependency>,
}

/// Why no plan came out of a reply, and the unknown names it held: the fallback plan
/// reports them in its `dropped` like a parsed plan would (SPEC §4: "unknown names are
/// dropped and reported").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    pub reason: String,
    pub dropped: Vec<String>,
}

impl PlanError {
    fn new(reason: &str) -> Self {
        PlanError {
            reason: reason.to_string(),
            dropped: Vec::new(),
        }
    }
}
/// `specialists` are the roster's specialist names (lowercase) in roster order.
///
/// The first candidate object of the reply (see [`prose_json::first_object`]) that
/// looks like a plan and names at least one known specialist wins; when none does,
/// the error of the first plan-looking candidate is returned, so a schema echoed from
/// the prompt ahead of the real answer does not sink the plan.
pub fn parse_plan(reply: &str, specialists: &[&str]) -> Result<Plan, PlanError> {
    let roster = Roster::new(specialists);
    let mut first_error: Option<PlanError> = None;
    let scan =
        prose_json::first_object(reply, |map| match build_plan(plan_object(map)?, &roster) {
            Ok(plan) => Some(plan),
            Err(e) => {
                first_error.get_or_insert(e);
                None
            }
        });
    match (scan.accepted, first_error) {
        (Some(plan), _) => Ok(plan),
        (None, Some(e)) => Err(e),
        (None, None) if scan.saw_object => Err(PlanError::new(NO_AGENTS)),
        (None, None) => Err(PlanError::new(NO_OBJECT)),
    }
}

struct Roster<'r> {
    names: &'r [&'r str],
    // Lowercased, trimmed roster name -> its first index, so each lookup is O(1) even
    // when the model lists thousands of names.
    index: HashMap<String, usize>,
}

impl<'r> Roster<'r> {
    fn new(names: &'r [&'r str]) -> Self {
        let mut index = HashMap::new();
        for (i, name) in names.iter().enumerate() {
            let key = name.trim().to_lowercase();
            if !key.is_empty() {
                index.entry(key).or_insert(i);
            }
        }
        Roster { names, index }
    }

    fn find(&self, name: &str) -> Option<usize> {
        self.index.get(&name.trim().to_lowercase()).copied()
    }

    /// The roster name for `name`, or `name` as written when the roster lacks it.
    fn named(&self, name: &str) -> Named {
        match self.find(name) {
            Some(i) => Named::Known(self.names[i].to_string()),
            None => Named::Unknown(name.trim().to_string()),
        }
    }
}

/// The object itself when it has an agents key, else its first direct child object that
/// has one: models sometimes wrap the plan as `{"plan": {...}}`. One level only, so no
/// recursion on untrusted depth.
fn plan_object(map: &Map<String, Value>) -> Option<&Map<String, Value>> {
    if has_agents_key(map) {
        return Some(map);
    }
    map.values()
        .filter_map(Value::as_object)
        .find(|child| has_agents_key(child))
}

fn has_agents_key(map: &Map<String, Value>) -> bool {
    AGENT_KEYS.iter().any(|k| get_key(map, k).is_some())
}

/// Exact key first, then a case- and whitespace-insensitive match (`"Agents"`, `" team"`).
fn get_key<'m>(map: &'m Map<String, Value>, key: &str) -> Option<&'m Value> {
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn build_plan(map: &Map<String, Value>, roster: &Roster) -> Result<Plan, PlanError> {
    let list = AGENT_KEYS
        .iter()
        .filter_map(|k| get_key(map, k))
        .find(|v| !v.is_null())
        .ok_or_else(|| PlanError::new(NO_AGENTS))?;
    let entries = entries_of(list).ok_or_else(|| PlanError::new(NO_AGENTS))?;
    let list_is_empty = match list {
        Value::Array(items) => items.is_empty(),
        Value::Object(obj) => obj.is_empty(),
        Value::String(names) => names.trim().is_empty(),
        _ => false,
    };

    let mut chosen = vec![false; roster.names.len()];
    let mut tasks: Vec<Option<String>> = vec![None; roster.names.len()];
    let mut dropped = Vec::new();
    let mut dropped_seen = HashSet::new();
    // Edges written next to a name come first: like tasks, the more deliberate ones.
    let mut edges: Vec<(Named, Named)> = Vec::new();
    if let Value::Array(items) = list {
        for obj in items.iter().filter_map(Value::as_object) {
            if let Some(name) = entry_name(obj) {
                if let Some(after) = get_any_key(obj, &AFTER_KEYS) {
                    push_edges(&mut edges, roster, name, after);
                }
            }
        }
    }
    for (raw, task) in entries {
        let name = raw.trim();
        if name.is_empty() {
            continue;
        }
        match roster.find(name) {
            Some(i) => {
                chosen[i] = true;
                if tasks[i].is_none() {
                    tasks[i] = task.and_then(clean_task);
                }
            }
            None => {
                if dropped_seen.insert(name.to_lowercase()) {
                    dropped.push(name.to_string());
                }
            }
        }
    }

    if !chosen.contains(&true) {
        let reason = if !dropped.is_empty() {
            format!(
                "the plan named no known specialist (dropped: {})",
                list_names(&dropped)
            )
        } else if list_is_empty {
            "the plan's \"agents\" list is empty".to_string()
        } else {
            "the plan named no known specialist".to_string()
        };
        return Err(PlanError { reason, dropped });
    }

    // The map only fills gaps: a task written next to the name is the more deliberate one.
    if let Some(map_tasks) = get_key(map, "tasks").and_then(entries_of) {
        for (name, task) in map_tasks {
            if let Some(i) = roster.find(name) {
                if chosen[i] && tasks[i].is_none() {
                    tasks[i] = task.and_then(clean_task);
                }
            }
        }
    }

    if let Some(Value::Object(map_after)) = get_any_key(map, &AFTER_KEYS) {
        for (name, after) in map_after {
            push_edges(&mut edges, roster, name, after);
        }
    }

    let mut agents = Vec::new();
    let mut task_map = BTreeMap::new();
    for (i, name) in roster.names.iter().enumerate() {
        if !chosen[i] {
            continue;
        }
        agents.push(name.to_string());
        if let Some(task) = tasks[i].take() {
            task_map.insert(name.to_string(), task);
        }
    }

    let deps = dependencies::resolve(&agents, &edges);
    Ok(Plan {
        agents,
        reasoning: reasoning_of(get_key(map, "reasoning")),
        tasks: task_map,
        dropped,
        after: deps.after,
        dropped_after: deps.dropped,
    })
}

/// The first of `keys` the object has (each matched as [`get_key`] does).
fn get_any_key<'m>(map: &'m Map<String, Value>, keys: &[&str]) -> Option<&'m Value> {
    keys.iter().find_map(|k| get_key(map, k))
}

fn entry_name(obj: &Map<String, Value>) -> Option<&str> {
    ["name", "agent"]
        .iter()
        .find_map(|k| get_key(obj, k).and_then(Value::as_str))
}

/// Adds `agent` after each name in `after`: a list of names, or one string of names
/// separated like the agents string (`"researcher, coder"`). Other shapes add nothing.
fn push_edges(edges: &mut Vec<(Named, Named)>, roster: &Roster, agent: &str, after: &Value) {
    let agent = agent.trim();
    if agent.is_empty() {
        return;
    }
    let names: Vec<&str> = match after {
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        Value::String(s) => s.split([',', ';', '\n']).collect(),
        _ => return,
    };
    for dep in names.into_iter().map(str::trim).filter(|d| !d.is_empty()) {
        // Bounded by the reply's size; the resolver caps what it keeps and reports.
        edges.push((roster.named(agent), roster.named(dep)));
    }
}

/// `(name, task)` pairs from the shapes models actually produce: a list of names or
/// `{"name"|"agent": .., "task": ..}` objects, a `"name -> task"` object, or one
/// comma-separated string. `None` when the value is none of these.
fn entries_of(value: &Value) -> Option<Vec<(&str, Option<&str>)>> {
    match value {
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(|item| match item {
                    Value::String(name) => Some((name.as_str(), None)),
                    Value::Object(obj) => {
                        let name = entry_name(obj)?;
                        let task = ["task", "subtask"]
                            .iter()
                            .find_map(|k| get_key(obj, k).and_then(Value::as_str));
                        Some((name, task))
                    }
                    _ => None,
                })
                .collect(),
        ),
        Value::Object(obj) => Some(
            obj.iter()
                .map(|(name, task)| (name.as_str(), task.as_str()))
                .collect(),
        ),
        Value::String(names) => Some(
            names
                .split([',', ';', '\n'])
                .map(|name| (name, None))
                .collect(),
        ),
        _ => None,
    }
}

fn clean_task(task: &str) -> Option<String> {
    let task = task.trim();
    (!task.is_empty()).then(|| task.to_string())
}

fn reasoning_of(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" "),
        Some(other) => other.to_string(),
    }
}

/// The error goes into a one-line status, so it stays short whatever the model wrote.
fn list_names(names: &[String]) -> String {
    const SHOWN: usize = 5;
    const NAME_CHARS: usize = 40;
    let mut parts: Vec<String> = names
        .iter()
        .take(SHOWN)
        .map(|name| {
            let mut clipped: String = name
                .chars()
                .take(NAME_CHARS)
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            if name.chars().nth(NAME_CHARS).is_some() {
                clipped.push('…');
            }
            clipped
        })
        .collect();
    if names.len() > SHOWN {
        parts.push(format!("and {} more", names.len() - SHOWN));
    }
    parts.join(", ")
}
