//! Validation of the `POST /api/run` body: every rejection names the field at fault.

use crate::model::budget::BudgetCaps;
use crate::model::provider_id::ProviderId;
use crate::model::run_config::Schedule;
use crate::model::tool_grant::{self, ToolPattern};
use crate::pipeline::roster::Roster;
use serde_json::Value;
use std::collections::BTreeMap;

pub const MAX_TASK_CHARS: usize = 20_000;
const MAX_MODEL_ID_CHARS: usize = 200;

/// A model override: the model id and, with a `provider:` prefix, another provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelChoice {
    pub provider: Option<ProviderId>,
    pub model: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunRequest {
    pub task: String,
    pub provider: Option<ProviderId>,
    pub models: BTreeMap<String, ModelChoice>,
    /// The team, in roster order, when the request names one.
    pub agents: Option<Vec<String>>,
    pub detach: bool,
    /// Spending caps for this run, over `MESH_RUN_BUDGET_*` (see `budget`).
    pub budget: Option<BudgetCaps>,
    /// Overrides `MESH_SCHEDULE` for this run.
    pub schedule: Option<Schedule>,
    /// The run this one follows up (checked to exist and be finished by the handler).
    pub parent: Option<String>,
    /// Narrows the roster's tool grants for this run.
    pub tools: Option<ToolsRequest>,
    /// Pause after the plan until it is approved (`POST /api/runs/{id}/plan`).
    pub review: bool,
}

/// A request's `tools`: it can only take tools away from what the roster grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolsRequest {
    /// `["server/tool", "server/*"]`: every agent keeps only these (`[]`: no tools).
    Everyone(Vec<ToolPattern>),
    /// `{"researcher": ["web/*"]}`: each named agent keeps only its list; the others
    /// keep the roster's grant.
    PerAgent(BTreeMap<String, Vec<ToolPattern>>),
}

impl ToolsRequest {
    /// What `agent` may use in a run: `granted` (the roster's) narrowed by this request.
    pub fn narrow(&self, agent: &str, granted: Vec<ToolPattern>) -> Vec<ToolPattern> {
        match self {
            ToolsRequest::Everyone(wanted) => tool_grant::narrow(&granted, wanted),
            ToolsRequest::PerAgent(map) => match map.get(agent) {
                Some(wanted) => tool_grant::narrow(&granted, wanted),
                None => granted,
            },
        }
    }
}

/// A rejected request: the field (a JSON path like `models.writer`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// The message always names the field, so a client that shows only the message
/// still tells the user what to fix.
pub(crate) fn fail(field: &str, message: impl Into<String>) -> FieldError {
    let message = message.into();
    let message = if message.contains(field) {
        message
    } else {
        format!("{field}: {message}")
    };
    FieldError {
        field: field.to_string(),
        message,
    }
}

/// Parses and validates a run request. `is_configured` says whether a provider can be used.
pub fn parse_run_request(
    body: &[u8],
    roster: &Roster,
    is_configured: &dyn Fn(ProviderId) -> bool,
) -> Result<RunRequest, FieldError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| fail("body", format!("body is not valid JSON: {e}")))?;
    let Value::Object(fields) = value else {
        return Err(fail(
            "body",
            "body must be a JSON object like {\"task\": \"...\"}",
        ));
    };
    for key in fields.keys() {
        if key.is_empty() {
            // A field must be named for the client to fix it; `""` names the empty key.
            return Err(fail(
                "\"\"",
                "unknown field \"\" (expected task, provider, models, agents, detach, schedule, parent, tools, budget, review)",
            ));
        }
        if !matches!(
            key.as_str(),
            "task"
                | "provider"
                | "models"
                | "agents"
                | "detach"
                | "schedule"
                | "parent"
                | "tools"
                | "budget"
                | "review"
        ) {
            return Err(fail(
                key,
                format!(
                    "unknown field \"{key}\" (expected task, provider, models, agents, detach, schedule, parent, tools, budget, review)"
                ),
            ));
        }
    }

    let task = match fields.get("task") {
        None | Some(Value::Null) => return Err(fail("task", "task is required")),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(_) => return Err(fail("task", "task must be a string")),
    };
    let chars = task.chars().count();
    if chars == 0 {
        return Err(fail("task", "task must not be empty"));
    }
    if let Some(why) = unreadable_text(&task) {
        return Err(fail("task", format!("task {why}")));
    }
    if chars > MAX_TASK_CHARS {
        return Err(fail(
            "task",
            format!("task is {chars} characters; the limit is {MAX_TASK_CHARS}"),
        ));
    }

    let provider = match fields.get("provider") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(known_provider("provider", s, is_configured)?),
        Some(_) => return Err(fail("provider", "provider must be a string")),
    };

    let mut models = BTreeMap::new();
    match fields.get("models") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (name, v) in map {
                let field = format!("models.{name}");
                if roster.get(name).is_none() {
                    return Err(fail(&field, format!("unknown agent \"{name}\"")));
                }
                let Value::String(id) = v else {
                    return Err(fail(&field, "a model id must be a string"));
                };
                models.insert(name.clone(), parse_model_choice(&field, id, is_configured)?);
            }
        }
        Some(_) => {
            return Err(fail(
                "models",
                "models must be an object mapping agent names to model ids",
            ))
        }
    }

    let agents = match fields.get("agents") {
        None | Some(Value::Null) => None,
        Some(list) => Some(parse_team("agents", list, &roster.specialist_names())?),
    };

    let detach = match fields.get("detach") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(fail("detach", "detach must be true or false")),
    };

    let schedule = match fields.get("schedule") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(Schedule::parse(s).ok_or_else(|| {
            fail(
                "schedule",
                format!("schedule \"{s}\" is not sequential or parallel"),
            )
        })?),
        Some(_) => {
            return Err(fail(
                "schedule",
                "schedule must be \"sequential\" or \"parallel\"",
            ))
        }
    };
    let parent = match fields.get("parent") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if crate::ids::is_run_id(id) => Some(id.clone()),
        Some(Value::String(_)) => {
            return Err(fail(
                "parent",
                "parent must be a run id (32 lowercase hex characters)",
            ))
        }
        Some(_) => return Err(fail("parent", "parent must be a run id string")),
    };

    let tools = match fields.get("tools") {
        None | Some(Value::Null) => None,
        Some(Value::Array(list)) => {
            let patterns = requested_tools("tools", list, roster, None)?;
            Some(ToolsRequest::Everyone(patterns))
        }
        Some(Value::Object(map)) => {
            let mut per_agent = BTreeMap::new();
            for (name, v) in map {
                let field = format!("tools.{name}");
                let Some(agent) = roster.get(name) else {
                    return Err(fail(&field, format!("unknown agent \"{name}\"")));
                };
                let Value::Array(list) = v else {
                    return Err(fail(
                        &field,
                        "must be an array of \"server/tool\" or \"server/*\" strings",
                    ));
                };
                let patterns = requested_tools(&field, list, roster, Some(agent))?;
                per_agent.insert(name.clone(), patterns);
            }
            Some(ToolsRequest::PerAgent(per_agent))
        }
        Some(_) => {
            return Err(fail(
                "tools",
                "tools must be an array of \"server/tool\" or \"server/*\" strings, or an object of such arrays by agent",
            ))
        }
    };

    let budget = match fields.get("budget") {
        None | Some(Value::Null) => None,
        Some(v) => Some(parse_budget(v)?),
    };

    let review = match fields.get("review") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(fail("review", "review must be true or false")),
    };

    Ok(RunRequest {
        task,
        provider,
        models,
        agents,
        detach,
        budget,
        schedule,
        parent,
        tools,
        review,
    })
}

/// The patterns of one `tools` array (`field` is its path). Each must name a configured
/// server and match something the roster grants (`agent`'s grant, or any agent's):
/// an entry that can select nothing is a mistake worth saying.
fn requested_tools(
    field: &str,
    list: &[Value],
    roster: &Roster,
    agent: Option<&crate::pipeline::roster::Agent>,
) -> Result<Vec<ToolPattern>, FieldError> {
    let mut patterns = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let at = format!("{field}[{i}]");
        let Value::String(text) = item else {
            return Err(fail(&at, "must be a string like \"server/tool\""));
        };
        let pattern = ToolPattern::parse(text).map_err(|why| fail(&at, why))?;
        if !roster.tool_servers().contains(&pattern.server) {
            return Err(fail(
                &at,
                format!(
                    "\"{}\" is not a configured tool server ({})",
                    pattern.server,
                    match roster.tool_servers() {
                        [] => "this server has no tool servers".to_string(),
                        names => format!("choose from {}", names.join(", ")),
                    }
                ),
            ));
        }
        let one = std::slice::from_ref(&pattern);
        let granted = |a: &crate::pipeline::roster::Agent| {
            !tool_grant::narrow(&roster.granted_tools(a), one).is_empty()
        };
        let usable = match agent {
            Some(a) => granted(a),
            None => roster.agents().iter().any(granted),
        };
        if !usable {
            return Err(fail(
                &at,
                match agent {
                    Some(a) => {
                        format!("the roster gives {} no tool matching \"{pattern}\"", a.name)
                    }
                    None => format!("the roster gives no agent a tool matching \"{pattern}\""),
                },
            ));
        }
        patterns.push(pattern);
    }
    Ok(patterns)
}

/// `{"usd": 0.5, "tokens": 200000}`: either or both, positive numbers (tokens whole).
fn parse_budget(value: &Value) -> Result<BudgetCaps, FieldError> {
    let Value::Object(map) = value else {
        return Err(fail(
            "budget",
            "budget must be an object like {\"usd\": 0.5, \"tokens\": 200000}",
        ));
    };
    let mut caps = BudgetCaps::default();
    for (key, v) in map {
        let field = format!("budget.{key}");
        match key.as_str() {
            "usd" => match v.as_f64() {
                Some(usd) if usd.is_finite() && usd > 0.0 => caps.usd = Some(usd),
                _ => {
                    return Err(fail(
                        &field,
                        "budget.usd must be a positive number of US dollars",
                    ))
                }
            },
            "tokens" => match v.as_u64() {
                Some(tokens) if tokens > 0 => caps.tokens = Some(tokens),
                _ => {
                    return Err(fail(
                        &field,
                        "budget.tokens must be a positive whole number of tokens",
                    ))
                }
            },
            _ => {
                let shown = if key.is_empty() {
                    "budget.\"\""
                } else {
                    &field
                };
                return Err(fail(
                    shown,
                    format!("unknown field {shown} (expected budget.usd, budget.tokens)"),
                ));
            }
        }
    }
    if !caps.is_set() {
        return Err(fail("budget", "budget must set usd, tokens or both"));
    }
    Ok(caps)
}

/// A team as a request or a plan review names it (`field` is `agents`): an array of
/// specialist names, matched case-insensitively, at least one, duplicates folded,
/// returned in roster order (`specialists`). A rejection names the entry at fault
/// (`agents[2]`).
pub fn parse_team(
    field: &str,
    list: &Value,
    specialists: &[&str],
) -> Result<Vec<String>, FieldError> {
    let Value::Array(list) = list else {
        return Err(fail(
            field,
            format!("{field} must be an array of specialist names"),
        ));
    };
    let mut chosen: Vec<String> = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let entry = format!("{field}[{i}]");
        let Value::String(name) = item else {
            return Err(fail(&entry, "each agent must be a string"));
        };
        let wanted = name.trim().to_ascii_lowercase();
        if !specialists.contains(&wanted.as_str()) {
            return Err(fail(
                &entry,
                format!(
                    "\"{}\" is not a specialist (choose from {})",
                    crate::util::cut_chars(name, 60),
                    specialists.join(", ")
                ),
            ));
        }
        if !chosen.contains(&wanted) {
            chosen.push(wanted);
        }
    }
    if chosen.is_empty() {
        return Err(fail(
            field,
            format!("{field} must name at least one specialist"),
        ));
    }
    Ok(specialists
        .iter()
        .filter(|s| chosen.iter().any(|c| c == *s))
        .map(|s| s.to_string())
        .collect())
}

fn known_provider(
    field: &str,
    name: &str,
    is_configured: &dyn Fn(ProviderId) -> bool,
) -> Result<ProviderId, FieldError> {
    let id = ProviderId::parse(name).ok_or_else(|| {
        fail(field, format!("unknown provider \"{name}\" (expected openrouter, nous, anthropic, openai, custom or offline)"))
    })?;
    if !is_configured(id) {
        return Err(fail(
            field,
            format!("provider \"{id}\" is not configured on this server"),
        ));
    }
    Ok(id)
}

/// `anthropic:claude-sonnet-4-5` routes to another provider; a prefix that is not a
/// provider name is part of the id (Ollama's `llama3:8b`).
fn parse_model_choice(
    field: &str,
    id: &str,
    is_configured: &dyn Fn(ProviderId) -> bool,
) -> Result<ModelChoice, FieldError> {
    let id = id.trim();
    let (provider, model) = match id.split_once(':') {
        Some((prefix, rest)) if ProviderId::parse(prefix).is_some() => (
            Some(known_provider(field, prefix, is_configured)?),
            rest.trim(),
        ),
        _ => (None, id),
    };
    if model.is_empty() {
        return Err(fail(field, "model id must not be empty"));
    }
    if model.chars().count() > MAX_MODEL_ID_CHARS {
        return Err(fail(
            field,
            format!("model id is longer than {MAX_MODEL_ID_CHARS} characters"),
        ));
    }
    if model.chars().any(char::is_control) {
        return Err(fail(field, "model id must not contain control characters"));
    }
    Ok(ModelChoice {
        provider,
        model: model.to_string(),
    })
}

/// Why `text` cannot be a task although it is not empty: a NUL character (which
/// terminates strings in many tools downstream), or nothing visible at all (only
/// whitespace, control and zero-width or other invisible formatting characters such
/// as U+FEFF or U+200B).
pub fn unreadable_text(text: &str) -> Option<&'static str> {
    if text.contains('\0') {
        return Some("must not contain NUL characters");
    }
    if text.chars().all(is_invisible) {
        return Some("has no visible characters");
    }
    None
}

/// Whitespace, control characters, and the format and filler characters that render
/// as nothing (Unicode's `Cf` set and its look-alikes).
fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(c,
            '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
            | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}' | '\u{2800}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}' | '\u{FFA0}' | '\u{FFF0}'..='\u{FFF8}' | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<RunRequest, FieldError> {
        parse_with(Roster::builtin(), body)
    }

    fn parse_with(roster: Roster, body: &str) -> Result<RunRequest, FieldError> {
        parse_run_request(body.as_bytes(), &roster, &|p| {
            matches!(p, ProviderId::Offline | ProviderId::Anthropic)
        })
    }

    /// The built-in team with a `fs` and a `web` tool server; the coder may use only
    /// `fs/read`.
    fn tool_roster() -> Roster {
        Roster::from_json(
            r#"{"agents":[
                {"name":"orchestrator","kind":"planner","model":"m"},
                {"name":"researcher","kind":"specialist","model":"m"},
                {"name":"coder","kind":"specialist","model":"m","tools":["fs/read"]},
                {"name":"writer","kind":"writer","model":"m"}
            ]}"#,
        )
        .unwrap()
        .with_tool_servers(&["fs".to_string(), "web".to_string()])
        .unwrap()
    }

    fn narrowed(req: &RunRequest, roster: &Roster, agent: &str) -> Vec<String> {
        let granted = roster.granted_tools(roster.get(agent).unwrap());
        let list = match &req.tools {
            Some(t) => t.narrow(agent, granted),
            None => granted,
        };
        list.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn tools_narrow_the_roster_for_everyone_or_per_agent() {
        let roster = tool_roster();
        let r = parse_with(tool_roster(), r#"{"task":"x"}"#).unwrap();
        assert_eq!(narrowed(&r, &roster, "researcher"), ["fs/*", "web/*"]);
        assert_eq!(narrowed(&r, &roster, "coder"), ["fs/read"]);

        let r = parse_with(tool_roster(), r#"{"task":"x","tools":["fs/*"]}"#).unwrap();
        assert_eq!(narrowed(&r, &roster, "researcher"), ["fs/*"]);
        assert_eq!(narrowed(&r, &roster, "coder"), ["fs/read"]);
        assert!(narrowed(&r, &roster, "writer").is_empty());

        let r = parse_with(tool_roster(), r#"{"task":"x","tools":[]}"#).unwrap();
        assert!(narrowed(&r, &roster, "researcher").is_empty());
        assert!(narrowed(&r, &roster, "coder").is_empty());

        let r = parse_with(
            tool_roster(),
            r#"{"task":"x","tools":{"researcher":["web/fetch"]}}"#,
        )
        .unwrap();
        assert_eq!(narrowed(&r, &roster, "researcher"), ["web/fetch"]);
        assert_eq!(narrowed(&r, &roster, "coder"), ["fs/read"]);
    }

    #[test]
    fn bad_tools_name_the_field() {
        let cases = [
            (r#"{"task":"x","tools":"fs/*"}"#, "tools"),
            (r#"{"task":"x","tools":["fs/*",3]}"#, "tools[1]"),
            (r#"{"task":"x","tools":["fs/*","fs"]}"#, "tools[1]"),
            (r#"{"task":"x","tools":["nope/*"]}"#, "tools[0]"),
            (r#"{"task":"x","tools":{"poet":["fs/*"]}}"#, "tools.poet"),
            (r#"{"task":"x","tools":{"coder":"fs/*"}}"#, "tools.coder"),
            (
                r#"{"task":"x","tools":{"coder":["fs/read","web/*"]}}"#,
                "tools.coder[1]",
            ),
            (
                r#"{"task":"x","tools":{"writer":["fs/*"]}}"#,
                "tools.writer[0]",
            ),
        ];
        for (body, field) in cases {
            let e = parse_with(tool_roster(), body).expect_err(body);
            assert_eq!(e.field, field, "{body}: {}", e.message);
            assert!(e.message.contains(field), "{}", e.message);
        }
        // A server without tool servers accepts `[]` but no entry.
        assert!(parse(r#"{"task":"x","tools":[]}"#).is_ok());
        let e = parse(r#"{"task":"x","tools":["fs/*"]}"#).unwrap_err();
        assert!(e.message.contains("no tool servers"), "{}", e.message);
    }

    #[test]
    fn accepts_the_spec_example_shape() {
        let r = parse(r#"{"task":"  Compare B-trees  ","provider":"anthropic","models":{"writer":"anthropic:claude-sonnet-4-5","coder":"llama3:8b"},"agents":["Analyst","researcher","analyst"],"detach":true}"#).unwrap();
        assert_eq!(r.task, "Compare B-trees");
        assert_eq!(r.provider, Some(ProviderId::Anthropic));
        assert_eq!(
            r.models["writer"],
            ModelChoice {
                provider: Some(ProviderId::Anthropic),
                model: "claude-sonnet-4-5".into()
            }
        );
        assert_eq!(
            r.models["coder"],
            ModelChoice {
                provider: None,
                model: "llama3:8b".into()
            }
        );
        assert_eq!(r.agents.unwrap(), ["researcher", "analyst"]);
        assert!(r.detach);
        assert!(!r.review);
        assert!(parse(r#"{"task":"x","review":true}"#).unwrap().review);
    }

    #[test]
    fn rejections_name_the_field() {
        let cases = [
            ("", "body"),
            ("[1]", "body"),
            ("{}", "task"),
            (r#"{"task":"   "}"#, "task"),
            (r#"{"task":"\ufeff\u200b"}"#, "task"),
            (r#"{"task":" \u2060\u00ad\ufe0f\u200d "}"#, "task"),
            (r#"{"task":"fine\u0000"}"#, "task"),
            (r#"{"task":5}"#, "task"),
            (r#"{"task":"x","extra":1}"#, "extra"),
            (r#"{"task":"x","provider":"gemini"}"#, "provider"),
            (r#"{"task":"x","provider":"openai"}"#, "provider"),
            (r#"{"task":"x","provider":7}"#, "provider"),
            (r#"{"task":"x","models":{"poet":"m"}}"#, "models.poet"),
            (r#"{"task":"x","models":{"writer":3}}"#, "models.writer"),
            (
                r#"{"task":"x","models":{"writer":"openai:gpt-4o"}}"#,
                "models.writer",
            ),
            (r#"{"task":"x","models":{"writer":"  "}}"#, "models.writer"),
            (r#"{"task":"x","models":[]}"#, "models"),
            (r#"{"task":"x","agents":["writer"]}"#, "agents[0]"),
            (r#"{"task":"x","agents":[]}"#, "agents"),
            (r#"{"task":"x","agents":"researcher"}"#, "agents"),
            (r#"{"task":"x","agents":["researcher",1]}"#, "agents[1]"),
            (r#"{"task":"x","detach":"yes"}"#, "detach"),
            (r#"{"task":"x","schedule":"fast"}"#, "schedule"),
            (r#"{"task":"x","schedule":1}"#, "schedule"),
            (r#"{"task":"x","parent":7}"#, "parent"),
            (r#"{"task":"x","parent":"not-an-id"}"#, "parent"),
            (r#"{"task":"x","budget":5}"#, "budget"),
            (r#"{"task":"x","budget":{}}"#, "budget"),
            (r#"{"task":"x","budget":{"usd":0}}"#, "budget.usd"),
            (r#"{"task":"x","budget":{"usd":-1}}"#, "budget.usd"),
            (r#"{"task":"x","budget":{"usd":"1"}}"#, "budget.usd"),
            (r#"{"task":"x","budget":{"tokens":1.5}}"#, "budget.tokens"),
            (r#"{"task":"x","budget":{"tokens":0}}"#, "budget.tokens"),
            (r#"{"task":"x","budget":{"tokens":-5}}"#, "budget.tokens"),
            (r#"{"task":"x","budget":{"dollars":1}}"#, "budget.dollars"),
            (r#"{"task":"x","budget":{"":1}}"#, "budget.\"\""),
        ];
        for (body, field) in cases {
            let e = parse(body).expect_err(body);
            assert_eq!(e.field, field, "{body}: {}", e.message);
        }
    }

    #[test]
    fn a_budget_takes_either_cap_or_both() {
        let r = parse(r#"{"task":"x","budget":{"usd":0.5,"tokens":200000}}"#).unwrap();
        assert_eq!(
            r.budget,
            Some(BudgetCaps {
                usd: Some(0.5),
                tokens: Some(200_000)
            })
        );
        let r = parse(r#"{"task":"x","budget":{"tokens":10}}"#).unwrap();
        assert_eq!(r.budget.unwrap().usd, None);
        assert_eq!(parse(r#"{"task":"x","budget":null}"#).unwrap().budget, None);
        assert_eq!(parse(r#"{"task":"x"}"#).unwrap().budget, None);
    }

    #[test]
    fn regression_empty_field_name_is_still_named() {
        // Found by the run_request fuzz target: `{"":""}` gave an empty `field`.
        let e = parse(r#"{"":"","task":"x"}"#).unwrap_err();
        assert!(!e.field.is_empty());
        assert!(e.message.contains(&e.field), "{e:?}");
    }

    #[test]
    fn task_length_is_counted_in_characters() {
        let ok = format!(r#"{{"task":"{}"}}"#, "é".repeat(MAX_TASK_CHARS));
        assert!(parse(&ok).is_ok());
        let long = format!(r#"{{"task":"{}"}}"#, "é".repeat(MAX_TASK_CHARS + 1));
        assert_eq!(parse(&long).unwrap_err().field, "task");
    }
}
