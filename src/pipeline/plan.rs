//! Parses the orchestrator's reply into a team plan: forgiving about form (fences, prose, synonyms, case), strict about content (known names only, no duplicates, roster order, an acyclic dependency graph).

use crate::model::dependency::DroppedDependency;
use crate::pipeline::dependencies::{self, Named};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Longer replies are cut before scanning so a runaway model cannot make planning slow.
pub const MAX_REPLY_BYTES: usize = 256 * 1024;

/// Each serde_json attempt costs up to the candidate's length, so the attempts are
/// counted rather than the candidates: prose full of `{...}` cannot multiply the work.
pub const MAX_PARSE_ATTEMPTS: usize = 64;

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

/// `specialists` are the roster's specialist names (lowercase) in roster order.
///
/// Candidates are tried in order: fenced blocks (```` ```json ```` or bare ```` ``` ````),
/// the whole trimmed reply, then balanced `{...}` spans found by a linear scan. The first
/// candidate that parses, looks like a plan and names at least one known specialist wins;
/// when none does, the error of the first plan-looking candidate is returned, so a schema
/// echoed from the prompt ahead of the real answer does not sink the plan.
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

pub fn parse_plan(reply: &str, specialists: &[&str]) -> Result<Plan, PlanError> {
    let text = truncate(reply, MAX_REPLY_BYTES);
    let mut search = Search::new(specialists);

    for (start, end) in fenced_blocks(text) {
        if let Step::Done(result) = search.try_span(text, trim_range(text, start, end)) {
            return result;
        }
    }

    let whole = trim_range(text, 0, text.len());
    if text[whole.0..whole.1].starts_with('{') {
        if let Step::Done(result) = search.try_span(text, whole) {
            return result;
        }
    }

    // The second pass ignores string state: a stray `"` in prose between two braces
    // would otherwise swallow the real object into a never-ending "string".
    for track_strings in [true, false] {
        let mut skip_until = 0;
        for (start, end) in balanced_spans(text, track_strings) {
            if start < skip_until {
                // Nested inside an object that parsed: part of a value, not a new candidate.
                continue;
            }
            if !opens_with_key(&text[start..end]) {
                // Cannot be a non-empty JSON object; not worth a parse attempt.
                continue;
            }
            match search.try_span(text, (start, end)) {
                Step::Done(result) => return result,
                Step::Parsed => skip_until = end,
                Step::Unparsed => {}
            }
        }
    }
    Err(search.error())
}

enum Step {
    Done(Result<Plan, PlanError>),
    Parsed,
    Unparsed,
}

struct Search<'r> {
    roster: Roster<'r>,
    attempts_left: usize,
    // Span -> whether it parsed, so the later stages neither pay twice for a span nor
    // look inside one that parsed.
    seen: HashMap<(usize, usize), bool>,
    saw_object: bool,
    first_error: Option<PlanError>,
}

impl<'r> Search<'r> {
    fn new(specialists: &'r [&'r str]) -> Self {
        Search {
            roster: Roster::new(specialists),
            attempts_left: MAX_PARSE_ATTEMPTS,
            seen: HashMap::new(),
            saw_object: false,
            first_error: None,
        }
    }

    fn try_span(&mut self, text: &str, span: (usize, usize)) -> Step {
        if let Some(&parsed) = self.seen.get(&span) {
            return if parsed { Step::Parsed } else { Step::Unparsed };
        }
        if self.attempts_left == 0 {
            return Step::Done(Err(self.error()));
        }
        self.attempts_left -= 1;
        let step = self.judge(&text[span.0..span.1]);
        if let Step::Parsed | Step::Unparsed = step {
            self.seen.insert(span, matches!(step, Step::Parsed));
        }
        step
    }

    fn judge(&mut self, candidate: &str) -> Step {
        let Ok(Value::Object(map)) = serde_json::from_str::<Value>(candidate) else {
            return Step::Unparsed;
        };
        self.saw_object = true;
        let Some(plan) = plan_object(&map) else {
            return Step::Parsed;
        };
        match build_plan(plan, &self.roster) {
            Ok(plan) => Step::Done(Ok(plan)),
            Err(e) => {
                self.first_error.get_or_insert(e);
                Step::Parsed
            }
        }
    }

    fn error(&self) -> PlanError {
        match &self.first_error {
            Some(e) => e.clone(),
            None if self.saw_object => PlanError::new(NO_AGENTS),
            None => PlanError::new(NO_OBJECT),
        }
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

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn trim_range(text: &str, start: usize, end: usize) -> (usize, usize) {
    let slice = &text[start..end];
    let lead = slice.len() - slice.trim_start().len();
    let kept = slice.trim().len();
    (start + lead, start + lead + kept)
}

/// Byte ranges of the bodies of ```` ```json ```` and bare ```` ``` ```` fences. A fence
/// left open (a reply cut off mid-answer) runs to the end of the text. Fences in other
/// languages are stepped over so their closing ```` ``` ```` is not taken for an opening.
fn fenced_blocks(text: &str) -> Vec<(usize, usize)> {
    let mut blocks = Vec::new();
    let mut pos = 0;
    while let Some(found) = text[pos..].find("```") {
        let info_start = pos + found + 3;
        let after = &text[info_start..];
        let info_len = after
            .find(|c: char| c.is_whitespace() || c == '{')
            .unwrap_or(after.len());
        let info = after[..info_len].trim_start_matches('`');
        let body_start = info_start + info_len;
        let (body_end, next) = match text[body_start..].find("```") {
            Some(close) => (body_start + close, body_start + close + 3),
            None => (text.len(), text.len()),
        };
        let is_json = info.is_empty()
            || info
                .get(..4)
                .is_some_and(|head| head.eq_ignore_ascii_case("json"));
        if is_json {
            blocks.push((body_start, body_end));
        }
        pos = next;
    }
    blocks
}

/// Every balanced `{...}` span, sorted by start, found in one forward pass with a stack
/// of open braces: O(n) however the braces are arranged, and an unclosed stray `{` in
/// prose only leaves an entry on the stack instead of hiding the object after it.
///
/// String state is tracked only inside an open brace, so apostrophes and quotes in the
/// prose before the object cannot flip it. A raw newline ends a string because JSON
/// strings cannot contain one, which limits the damage a stray quote can do to one line.
/// Offsets are those of ASCII bytes, hence always char boundaries.
fn balanced_spans(text: &str, track_strings: bool) -> Vec<(usize, usize)> {
    let mut open: Vec<usize> = Vec::new();
    let mut spans = Vec::new();
    let mut in_string = false;
    let mut escaped = false;
    for (i, &b) in text.as_bytes().iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' || b == b'\n' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'{' => open.push(i),
            b'}' => {
                if let Some(start) = open.pop() {
                    spans.push((start, i + 1));
                }
            }
            b'"' if track_strings && !open.is_empty() => in_string = true,
            _ => {}
        }
    }
    spans.sort_unstable();
    spans
}

/// A plan is a non-empty object, so its first token after `{` must be a key's quote.
/// Skipping `{}` and `{not json}` here keeps them from spending parse attempts.
fn opens_with_key(span: &str) -> bool {
    span.get(1..)
        .map(|rest| rest.trim_start_matches([' ', '\t', '\n', '\r']))
        .is_some_and(|rest| rest.starts_with('"'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::dependency::DropReason;

    const ROSTER: &[&str] = &["researcher", "analyst", "coder", "critic"];

    fn parse(reply: &str) -> Result<Plan, PlanError> {
        parse_plan(reply, ROSTER)
    }

    fn agents(reply: &str) -> Vec<String> {
        match parse(reply) {
            Ok(plan) => plan.agents,
            Err(e) => panic!("expected a plan from {reply:?}, got error {e:?}"),
        }
    }

    fn error(reply: &str) -> String {
        match parse(reply) {
            Ok(plan) => panic!("expected an error from {reply:?}, got {plan:?}"),
            Err(e) => e.reason,
        }
    }

    /// Whatever comes back must satisfy the contract's invariants.
    fn check_invariants(reply: &str, roster: &[&str]) {
        if let Ok(plan) = parse_plan(reply, roster) {
            assert!(!plan.agents.is_empty());
            let positions: Vec<usize> = plan
                .agents
                .iter()
                .map(|a| roster.iter().position(|r| r == a).expect("roster name"))
                .collect();
            assert!(positions.windows(2).all(|w| w[0] < w[1]), "{plan:?}");
            assert!(plan.tasks.keys().all(|k| plan.agents.contains(k)));
            let lowered: HashSet<String> = plan.dropped.iter().map(|d| d.to_lowercase()).collect();
            assert_eq!(lowered.len(), plan.dropped.len());
            assert_eq!(plan.after.len(), plan.agents.len());
            let team: Vec<String> = plan.agents.clone();
            let stages = crate::pipeline::dependencies::stages(&team, &plan.after);
            assert_eq!(stages.iter().map(Vec::len).sum::<usize>(), team.len());
        }
    }

    #[test]
    fn bare_object() {
        let plan = parse(
            r#"{"agents":["researcher","analyst"],"reasoning":"needs data","tasks":{"researcher":"find sources"}}"#,
        )
        .unwrap();
        assert_eq!(plan.agents, ["researcher", "analyst"]);
        assert_eq!(plan.reasoning, "needs data");
        assert_eq!(
            plan.tasks.get("researcher").map(String::as_str),
            Some("find sources")
        );
        assert_eq!(plan.tasks.len(), 1);
        assert!(plan.dropped.is_empty());
    }

    #[test]
    fn json_fence() {
        let reply = "Here is my plan:\n```json\n{\"agents\": [\"coder\"], \"reasoning\": \"code\"}\n```\nDone.";
        let plan = parse(reply).unwrap();
        assert_eq!(plan.agents, ["coder"]);
        assert_eq!(plan.reasoning, "code");
    }

    #[test]
    fn dependencies_from_a_map_and_from_agent_objects() {
        let plan = parse(
            r#"{"agents":["researcher",{"name":"coder","after":["Researcher"]},"analyst"],"after":{"analyst":"coder, ghost","critic":["researcher"]}}"#,
        )
        .unwrap();
        assert_eq!(plan.after["coder"], ["researcher"]);
        assert_eq!(plan.after["analyst"], ["coder"]);
        assert!(plan.after["researcher"].is_empty());
        let dropped: Vec<(&str, &str)> = plan
            .dropped_after
            .iter()
            .map(|d| (d.agent.as_str(), d.after.as_str()))
            .collect();
        assert_eq!(dropped, [("analyst", "ghost"), ("critic", "researcher")]);
    }

    #[test]
    fn a_dependency_cycle_is_broken_and_reported() {
        let plan = parse(
            r#"{"agents":["researcher","coder"],"after":{"coder":["researcher"],"researcher":["coder"]}}"#,
        )
        .unwrap();
        assert_eq!(plan.after["coder"], ["researcher"]);
        assert!(plan.after["researcher"].is_empty());
        assert_eq!(
            plan.dropped_after[0].reason,
            crate::model::dependency::DropReason::Cycle
        );
    }

    #[test]
    fn bare_fence() {
        assert_eq!(agents("```\n{\"agents\": [\"critic\"]}\n```"), ["critic"]);
    }

    #[test]
    fn uppercase_fence_without_newline() {
        assert_eq!(agents("```JSON{\"agents\": [\"critic\"]}```"), ["critic"]);
    }

    #[test]
    fn unterminated_fence() {
        assert_eq!(
            agents("```json\n{\"agents\": [\"analyst\"]}\n"),
            ["analyst"]
        );
    }

    #[test]
    fn fence_is_tried_before_prose_objects() {
        let reply =
            "Earlier draft {\"agents\":[\"critic\"]}\n```json\n{\"agents\":[\"coder\"]}\n```";
        assert_eq!(agents(reply), ["coder"]);
    }

    #[test]
    fn other_language_fence_is_stepped_over() {
        let reply = "```python\nprint('{')\n```\n```json\n{\"agents\":[\"coder\"]}\n```";
        assert_eq!(agents(reply), ["coder"]);
    }

    #[test]
    fn object_inside_prose() {
        let reply = "Sure! Based on the task, {\"agents\": [\"analyst\"], \"reasoning\": \"numbers\"} is the team I'd pick. Thanks.";
        let plan = parse(reply).unwrap();
        assert_eq!(plan.agents, ["analyst"]);
        assert_eq!(plan.reasoning, "numbers");
    }

    #[test]
    fn prose_with_apostrophe_and_fake_braces_before_object() {
        let reply = "Here's what I'd do — the placeholder {not json} isn't a plan, nor is {x: 1}. \
                     \"Quoted\" words too. {\"agents\":[\"researcher\",\"critic\"],\"reasoning\":\"it's {tricky}\"}";
        let plan = parse(reply).unwrap();
        assert_eq!(plan.agents, ["researcher", "critic"]);
        assert_eq!(plan.reasoning, "it's {tricky}");
    }

    #[test]
    fn stray_quote_before_first_brace() {
        let reply = "The user said \"analyse this, then {\"agents\":[\"analyst\"]}";
        assert_eq!(agents(reply), ["analyst"]);
    }

    #[test]
    fn prose_quote_before_object_whose_strings_hold_a_brace() {
        // Only the string-aware pass can pair these braces, and only if the prose quote
        // before the object is ignored.
        let reply = r#"He said "hi. {"agents":["analyst"],"reasoning":"close with }"}"#;
        let plan = parse(reply).unwrap();
        assert_eq!(plan.agents, ["analyst"]);
        assert_eq!(plan.reasoning, "close with }");
    }

    #[test]
    fn stray_quote_inside_an_unclosed_brace_ends_at_the_line() {
        // The `"` after the stray `{` opens a bogus string; the newline closes it so the
        // string-aware pass still sees the object whose reasoning holds a lone `}`.
        let reply = "A { and a 5\" screen\n{\"agents\":[\"coder\"],\"reasoning\":\"}\"}";
        let plan = parse(reply).unwrap();
        assert_eq!(plan.agents, ["coder"]);
        assert_eq!(plan.reasoning, "}");
    }

    #[test]
    fn placeholder_braces_do_not_spend_the_parse_budget() {
        let reply = format!(
            "{}{}{{\"agents\":[\"critic\"]}}",
            "Fill in {name} and {}. ".repeat(200),
            "{ }".repeat(200)
        );
        assert_eq!(agents(&reply), ["critic"]);
    }

    #[test]
    fn stray_unclosed_brace_before_object() {
        let reply = "Sets look like { a, b. Plan: {\"agents\":[\"coder\"]}";
        assert_eq!(agents(reply), ["coder"]);
    }

    #[test]
    fn stray_quote_between_braces_uses_the_stringless_pass() {
        // The unclosed `{` keeps the scanner inside an object, so the lone `"` after it
        // would open a string that hides the real object's braces on the same line.
        let reply = "A { and 5\" screen {\"agents\":[\"critic\"]}";
        assert_eq!(agents(reply), ["critic"]);
    }

    #[test]
    fn team_synonym() {
        assert_eq!(
            agents(r#"{"team":["coder","critic"]}"#),
            ["coder", "critic"]
        );
    }

    #[test]
    fn specialists_synonym() {
        assert_eq!(agents(r#"{"specialists":["analyst"]}"#), ["analyst"]);
    }

    #[test]
    fn key_case_is_ignored() {
        let plan = parse(r#"{"Agents":["coder"],"Reasoning":"r","TASKS":{"coder":"t"}}"#).unwrap();
        assert_eq!(plan.agents, ["coder"]);
        assert_eq!(plan.reasoning, "r");
        assert_eq!(plan.tasks.get("coder").map(String::as_str), Some("t"));
    }

    #[test]
    fn mixed_case_and_padded_names() {
        let plan = parse(r#"{"agents":["Researcher"," ANALYST ","  "]}"#).unwrap();
        assert_eq!(plan.agents, ["researcher", "analyst"]);
        assert!(plan.dropped.is_empty());
    }

    #[test]
    fn object_entries_with_name_and_agent() {
        let plan = parse(
            r#"{"agents":[{"name":"Coder","task":"write it"},{"agent":"critic","task":" review it "},{"agent":"analyst"}]}"#,
        )
        .unwrap();
        assert_eq!(plan.agents, ["analyst", "coder", "critic"]);
        assert_eq!(
            plan.tasks.get("coder").map(String::as_str),
            Some("write it")
        );
        assert_eq!(
            plan.tasks.get("critic").map(String::as_str),
            Some("review it")
        );
        assert!(!plan.tasks.contains_key("analyst"));
    }

    #[test]
    fn tasks_map_with_mixed_case_keys() {
        let plan = parse(
            r#"{"agents":["researcher","analyst"],"tasks":{"RESEARCHER":"dig","Analyst":"count","coder":"not chosen","ghost":"x"}}"#,
        )
        .unwrap();
        let expected: BTreeMap<String, String> = [
            ("researcher".to_string(), "dig".to_string()),
            ("analyst".to_string(), "count".to_string()),
        ]
        .into_iter()
        .collect();
        assert_eq!(plan.tasks, expected);
    }

    #[test]
    fn entry_task_wins_over_tasks_map_which_fills_gaps() {
        let plan = parse(
            r#"{"agents":[{"name":"coder","task":"from entry"},{"name":"critic"}],"tasks":{"coder":"from map","critic":"map fills"}}"#,
        )
        .unwrap();
        assert_eq!(
            plan.tasks.get("coder").map(String::as_str),
            Some("from entry")
        );
        assert_eq!(
            plan.tasks.get("critic").map(String::as_str),
            Some("map fills")
        );
    }

    #[test]
    fn non_string_task_values_are_ignored() {
        let plan = parse(
            r#"{"agents":[{"name":"coder","task":7}],"tasks":{"coder":["a"],"analyst":"x"}}"#,
        )
        .unwrap();
        assert!(plan.tasks.is_empty());
    }

    #[test]
    fn roster_order_not_model_order() {
        assert_eq!(
            agents(r#"{"agents":["critic","analyst","researcher"]}"#),
            ["researcher", "analyst", "critic"]
        );
    }

    #[test]
    fn duplicates_removed() {
        let plan = parse(r#"{"agents":["coder","Coder","coder ","ghost","GHOST"]}"#).unwrap();
        assert_eq!(plan.agents, ["coder"]);
        assert_eq!(plan.dropped, ["ghost"]);
    }

    #[test]
    fn unknown_names_dropped_and_reported() {
        let plan = parse(r#"{"agents":["writer"," Designer ","analyst",42,null]}"#).unwrap();
        assert_eq!(plan.agents, ["analyst"]);
        assert_eq!(plan.dropped, ["writer", "Designer"]);
    }

    #[test]
    fn all_unknown_is_an_error_naming_them() {
        let e = error(r#"{"agents":["foo","bar"]}"#);
        assert_eq!(e, "the plan named no known specialist (dropped: foo, bar)");
    }

    #[test]
    fn all_unknown_error_carries_the_dropped_names_for_the_fallback() {
        let e = parse(r#"{"agents":["foo"," Bar ","FOO"]}"#).unwrap_err();
        assert_eq!(e.dropped, ["foo", "Bar"]);
        let e = parse(r#"{"agents":[]}"#).unwrap_err();
        assert!(e.dropped.is_empty());
        let e = parse("no JSON at all").unwrap_err();
        assert!(e.dropped.is_empty());
    }

    #[test]
    fn long_dropped_list_is_shortened_in_the_error() {
        let names: Vec<String> = (0..20).map(|i| format!("\"x{i}\"")).collect();
        let e = error(&format!("{{\"agents\":[{}]}}", names.join(",")));
        assert!(e.contains("x0, x1, x2, x3, x4, and 15 more"), "{e}");
    }

    #[test]
    fn empty_list_is_an_error() {
        assert_eq!(
            error(r#"{"agents":[]}"#),
            "the plan's \"agents\" list is empty"
        );
    }

    #[test]
    fn list_of_non_names_is_an_error() {
        assert_eq!(
            error(r#"{"agents":[1,true,{}]}"#),
            "the plan named no known specialist"
        );
    }

    #[test]
    fn no_json_is_an_error() {
        assert_eq!(error("I think the researcher should go first."), NO_OBJECT);
    }

    #[test]
    fn array_is_an_error() {
        assert_eq!(error(r#"["researcher","analyst"]"#), NO_OBJECT);
    }

    #[test]
    fn object_without_agents_key_is_an_error() {
        assert_eq!(
            error(r#"{"reasoning":"x","tasks":{"coder":"y"}}"#),
            NO_AGENTS
        );
    }

    #[test]
    fn agents_of_the_wrong_type_is_an_error() {
        assert_eq!(error(r#"{"agents":5}"#), NO_AGENTS);
        assert_eq!(error(r#"{"agents":null}"#), NO_AGENTS);
    }

    #[test]
    fn first_balanced_object_not_a_plan_then_a_plan() {
        let reply = r#"Context: {"task":"summarise","length":3}. Plan: {"agents":["analyst"]}"#;
        assert_eq!(agents(reply), ["analyst"]);
    }

    #[test]
    fn echoed_schema_with_unknown_names_does_not_hide_the_real_plan() {
        let reply = r#"Format: {"agents":["name1"]}. Mine: {"agents":["coder"]}"#;
        let plan = parse(reply).unwrap();
        assert_eq!(plan.agents, ["coder"]);
        assert!(plan.dropped.is_empty());
    }

    #[test]
    fn objects_nested_in_a_parsed_non_plan_are_not_candidates_but_a_wrapper_is() {
        assert_eq!(
            error(r#"{"example":{"x":{"agents":["coder"]}}}"#),
            NO_AGENTS
        );
        assert_eq!(
            error(r#"Context: {"example":{"x":{"agents":["coder"]}}} ends here."#),
            NO_AGENTS
        );
        assert_eq!(agents(r#"{"plan":{"agents":["coder"]}}"#), ["coder"]);
    }

    #[test]
    fn non_string_reasoning() {
        assert_eq!(
            parse(r#"{"agents":["coder"],"reasoning":42}"#)
                .unwrap()
                .reasoning,
            "42"
        );
        assert_eq!(
            parse(r#"{"agents":["coder"],"reasoning":null}"#)
                .unwrap()
                .reasoning,
            ""
        );
        assert_eq!(parse(r#"{"agents":["coder"]}"#).unwrap().reasoning, "");
        assert_eq!(
            parse(r#"{"agents":["coder"],"reasoning":["a","b"]}"#)
                .unwrap()
                .reasoning,
            "a b"
        );
        assert_eq!(
            parse(r#"{"agents":["coder"],"reasoning":{"k":1}}"#)
                .unwrap()
                .reasoning,
            r#"{"k":1}"#
        );
    }

    #[test]
    fn agents_as_string_or_name_task_object() {
        assert_eq!(
            agents(r#"{"agents":"Analyst, coder"}"#),
            ["analyst", "coder"]
        );
        let plan = parse(r#"{"agents":{"critic":"check","researcher":5}}"#).unwrap();
        assert_eq!(plan.agents, ["researcher", "critic"]);
        assert_eq!(plan.tasks.get("critic").map(String::as_str), Some("check"));
        assert_eq!(plan.tasks.len(), 1);
    }

    #[test]
    fn roster_names_are_returned_as_given() {
        let plan = parse_plan(r#"{"agents":["ANALYST"]}"#, &["Analyst"]).unwrap();
        assert_eq!(plan.agents, ["Analyst"]);
    }

    #[test]
    fn empty_roster_drops_everything() {
        let e = parse_plan(r#"{"agents":["coder"]}"#, &[]).unwrap_err();
        assert!(e.reason.contains("coder"), "{e:?}");
        assert_eq!(e.dropped, ["coder"]);
    }

    #[test]
    fn plan_past_the_size_cap_is_not_seen() {
        let reply = format!("{}{{\"agents\":[\"coder\"]}}", "é".repeat(MAX_REPLY_BYTES));
        assert_eq!(error(&reply), NO_OBJECT);
    }

    #[test]
    fn many_junk_candidates_exhaust_the_budget_without_panicking() {
        let junk = r#"{"a":1} "#.repeat(10_000);
        let reply = format!("{junk}{{\"agents\":[\"coder\"]}}");
        assert_eq!(error(&reply), NO_AGENTS);
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        let s = format!("a{}", "😀".repeat(10));
        for max in 0..s.len() {
            let t = truncate(&s, max);
            assert!(t.len() <= max);
            assert!(s.starts_with(t));
        }
    }

    #[test]
    fn junk_inputs_never_panic() {
        let big_open = "{".repeat(100_000);
        let big_close = "}".repeat(100_000);
        let nested = format!("{}{}", "{\"a\":".repeat(50_000), "}".repeat(50_000));
        let quotes = "\"{".repeat(50_000);
        let fences = "```".repeat(50_000);
        let fenced_braces = "```json\n{".repeat(20_000);
        let escapes = format!("{{\"agents\":[\"{}", "\\".repeat(100_001));
        let huge = format!("{{\"agents\":[{}\"coder\"]}}", "\"x\",".repeat(50_000));
        let inputs: Vec<&str> = vec![
            "",
            " ",
            "{",
            "}",
            "{}",
            "}{",
            "{{}}",
            "```",
            "```json",
            "```json\n```",
            "\"",
            "{\"",
            "{\"agents\":[\"researcher",
            "{\"agents\":[\"researcher\\",
            "{\"agents\": [\"😀\", \"\u{202E}analyst\u{202C}\", \"ана́лиз\"]}",
            "\u{200F}\u{202B}{\"agents\":[\"coder\"]}\u{202C} ✨🚀",
            "\u{FEFF}{\"agents\":[\"coder\"]}",
            "{\"agents\":[\"\u{0}\"]}",
            "{\"agents\":[\"\\ud800\"]}",
            "ǅ{ǅ\"ǅ}ǅ",
            &big_open,
            &big_close,
            &nested,
            &quotes,
            &fences,
            &fenced_braces,
            &escapes,
            &huge,
        ];
        for input in inputs {
            check_invariants(input, ROSTER);
            check_invariants(input, &[]);
        }
        // The huge list is within the cap, so its one known name is still found.
        let plan = parse(&huge).unwrap();
        assert_eq!(plan.agents, ["coder"]);
        assert_eq!(plan.dropped, ["x"]);
    }

    #[test]
    fn unicode_around_a_plan() {
        assert_eq!(
            agents("\u{200F}\u{202B}{\"agents\":[\"coder\"]}\u{202C} ✨🚀"),
            ["coder"]
        );
        assert_eq!(agents("\u{FEFF}{\"agents\":[\"coder\"]}"), ["coder"]);
        let plan = parse("{\"agents\": [\"😀\", \"\u{202E}analyst\", \"critic\"]}").unwrap();
        assert_eq!(plan.agents, ["critic"]);
        assert_eq!(plan.dropped, ["😀", "\u{202E}analyst"]);
    }

    /// A tiny deterministic fuzzer: random mixes of JSON-ish fragments, checked for
    /// panics and for the contract's invariants on every success.
    #[test]
    fn random_fragments_never_break_invariants() {
        const PIECES: &[&str] = &[
            "{",
            "}",
            "[",
            "]",
            "\"",
            "\\",
            ":",
            ",",
            " ",
            "\n",
            "```",
            "```json",
            "agents",
            "\"agents\"",
            "\"team\"",
            "\"tasks\"",
            "\"researcher\"",
            "\"Coder\"",
            "\"x\"",
            "{\"name\":",
            "\"task\"",
            "null",
            "1",
            "'",
            "é",
            "😀",
            "\u{202E}",
            "\\u00e9",
            "{\"agents\":[\"analyst\"]}",
        ];
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut found = 0;
        for _ in 0..3_000 {
            let len = (next() % 40) as usize;
            let reply: String = (0..len)
                .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                .collect();
            check_invariants(&reply, ROSTER);
            if parse(&reply).is_ok() {
                found += 1;
            }
        }
        assert!(
            found > 0,
            "the fuzzer never produced a plan; its pieces are wrong"
        );
    }

    fn after_of(plan: &Plan, name: &str) -> Vec<String> {
        plan.after
            .get(name)
            .cloned()
            .unwrap_or_else(|| panic!("no entry for {name}"))
    }

    #[test]
    fn after_map_resolves_with_an_entry_for_every_member() {
        let plan = parse(
            r#"{"agents":["researcher","coder","analyst"],"after":{"Coder":["researcher"]}}"#,
        )
        .unwrap();
        assert_eq!(plan.after.len(), 3);
        assert_eq!(after_of(&plan, "coder"), ["researcher"]);
        assert!(after_of(&plan, "researcher").is_empty());
        assert!(after_of(&plan, "analyst").is_empty());
        assert!(plan.dropped_after.is_empty());
    }

    #[test]
    fn after_inside_agent_objects_and_as_a_string() {
        let plan = parse(
            r#"{"agents":[{"name":"researcher"},{"name":"coder","after":["researcher"]},{"name":"analyst","depends_on":"researcher, coder"}]}"#,
        )
        .unwrap();
        assert_eq!(after_of(&plan, "coder"), ["researcher"]);
        assert_eq!(after_of(&plan, "analyst"), ["researcher", "coder"]);
    }

    #[test]
    fn unknown_and_outside_team_dependencies_are_dropped_and_reported() {
        let plan = parse(
            r#"{"agents":["researcher","analyst"],"after":{"analyst":["Ghost","coder","researcher"],"nobody":["researcher"]}}"#,
        )
        .unwrap();
        assert_eq!(after_of(&plan, "analyst"), ["researcher"]);
        let drops: Vec<(&str, &str, DropReason)> = plan
            .dropped_after
            .iter()
            .map(|d| (d.agent.as_str(), d.after.as_str(), d.reason))
            .collect();
        assert_eq!(
            drops,
            [
                ("analyst", "Ghost", DropReason::Unknown),
                ("analyst", "coder", DropReason::NotInTeam),
                ("nobody", "researcher", DropReason::Unknown),
            ]
        );
    }

    #[test]
    fn a_cycle_in_the_plan_is_broken_and_reported() {
        let plan = parse(
            r#"{"agents":["researcher","coder"],"after":{"coder":["researcher"],"researcher":["coder"]}}"#,
        )
        .unwrap();
        assert_eq!(after_of(&plan, "coder"), ["researcher"]);
        assert!(after_of(&plan, "researcher").is_empty());
        assert_eq!(plan.dropped_after.len(), 1);
        assert_eq!(plan.dropped_after[0].reason, DropReason::Cycle);
        assert_eq!(plan.dropped_after[0].agent, "researcher");
    }

    #[test]
    fn odd_after_shapes_add_nothing_and_never_fail_the_plan() {
        for reply in [
            r#"{"agents":["coder"],"after":5}"#,
            r#"{"agents":["coder"],"after":{"coder":7}}"#,
            r#"{"agents":["coder"],"after":{"coder":[1,null,{}]}}"#,
            r#"{"agents":[{"name":"coder","after":{"x":1}}]}"#,
        ] {
            let plan = parse(reply).unwrap();
            assert_eq!(plan.agents, ["coder"], "{reply}");
            assert!(after_of(&plan, "coder").is_empty(), "{reply}");
        }
    }
}
