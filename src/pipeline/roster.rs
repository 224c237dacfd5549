//! The team: the built-in roster of SPEC §4.1 and the validated custom roster of `MESH_AGENTS` (§4.4).

use crate::model::agent::AgentKind;
use crate::model::tool_grant::ToolPattern;
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Serialize)]
pub struct Agent {
    pub name: String,
    pub title: String,
    pub emoji: String,
    pub kind: AgentKind,
    pub model: String,
    pub max_tokens: u32,
    pub color: String,
    /// One line the orchestrator reads when it picks the team.
    #[serde(skip)]
    pub role: String,
    #[serde(skip)]
    pub prompt: String,
    /// The roster file's `tools` (`server/tool`, `server/*`); `None`: the default
    /// (every tool for a specialist, none for the orchestrator and the writer).
    #[serde(skip)]
    pub tools: Option<Vec<ToolPattern>>,
}

/// Exactly one planner, 1–8 specialists, one writer; `agents` is in pipeline
/// order (planner, specialists in roster order, writer).
#[derive(Debug, Clone)]
pub struct Roster {
    agents: Vec<Agent>,
    /// The MCP servers of `MESH_MCP_CONFIG`, in its order (what `server/*` grants
    /// and a default grant resolve against).
    tool_servers: Vec<String>,
}

impl Roster {
    /// The model ids the roster names, in roster order (the offline catalog lists them).
    pub fn model_ids(&self) -> Vec<String> {
        self.agents().iter().map(|a| a.model.clone()).collect()
    }

    pub fn agents(&self) -> &[Agent] {
        &self.agents
    }

    pub fn get(&self, name: &str) -> Option<&Agent> {
        self.agents.iter().find(|a| a.name == name)
    }

    pub fn planner(&self) -> &Agent {
        self.of_kind(AgentKind::Planner)
            .next()
            .expect("a validated roster has a planner")
    }

    pub fn writer(&self) -> &Agent {
        self.of_kind(AgentKind::Writer)
            .next()
            .expect("a validated roster has a writer")
    }

    pub fn specialists(&self) -> impl Iterator<Item = &Agent> {
        self.of_kind(AgentKind::Specialist)
    }

    pub fn specialist_names(&self) -> Vec<&str> {
        self.specialists().map(|a| a.name.as_str()).collect()
    }

    fn of_kind(&self, kind: AgentKind) -> impl Iterator<Item = &Agent> {
        self.agents.iter().filter(move |a| a.kind == kind)
    }

    /// The configured MCP servers' names.
    pub fn tool_servers(&self) -> &[String] {
        &self.tool_servers
    }

    /// The tools `agent` may use, as explicit patterns: its own list, or by default
    /// every server's tools for a specialist and none for the orchestrator and writer.
    pub fn granted_tools(&self, agent: &Agent) -> Vec<ToolPattern> {
        match &agent.tools {
            Some(list) => list.clone(),
            None if agent.kind == AgentKind::Specialist => self
                .tool_servers
                .iter()
                .map(|s| ToolPattern::whole_server(s))
                .collect(),
            None => Vec::new(),
        }
    }

    /// Ties the roster to the configured MCP servers: every server a `tools` entry
    /// names must be one of them (a typo would silently leave an agent without its
    /// tools). Whether a named tool exists is only known once its server answers, so
    /// that is checked (and warned about) after connecting, not here.
    pub fn with_tool_servers(mut self, servers: &[String]) -> Result<Roster, String> {
        for agent in &self.agents {
            for (i, pattern) in agent.tools.iter().flatten().enumerate() {
                if !servers.contains(&pattern.server) {
                    let configured = if servers.is_empty() {
                        "MESH_MCP_CONFIG configures none".to_string()
                    } else {
                        format!("configured: {}", servers.join(", "))
                    };
                    return Err(format!(
                        "agent \"{}\": tools[{i}]: \"{pattern}\" names no configured MCP server ({configured})",
                        agent.name
                    ));
                }
            }
        }
        self.tool_servers = servers.to_vec();
        Ok(self)
    }

    pub fn builtin() -> Roster {
        let agent = |name: &str,
                     title: &str,
                     emoji: &str,
                     kind,
                     model: &str,
                     max_tokens,
                     color: &str,
                     role: &str,
                     prompt: &str| Agent {
            name: name.into(),
            title: title.into(),
            emoji: emoji.into(),
            kind,
            model: model.into(),
            max_tokens,
            color: color.into(),
            role: role.into(),
            prompt: prompt.into(),
            tools: None,
        };
        Roster {
            agents: vec![
                agent(
                    "orchestrator",
                    "Orchestrator",
                    "🧠",
                    AgentKind::Planner,
                    "anthropic/claude-haiku-4.5",
                    1024,
                    "#b8862b",
                    "reads the task and picks the team",
                    PLANNER_PROMPT,
                ),
                agent(
                    "researcher",
                    "Researcher",
                    "🔍",
                    AgentKind::Specialist,
                    "meta-llama/llama-3.1-8b-instruct",
                    4096,
                    "#6b7a34",
                    "gathers the relevant facts, definitions and prior art from its training data",
                    "You are the Researcher on a small team of AI specialists. Gather the facts, \
                     definitions, numbers and prior art that matter for the task, from what you \
                     know (you have no web access: say when something may be out of date or \
                     uncertain). Be concise and concrete; use short Markdown sections and bullet \
                     points. Do not write the final answer: a writer will use your notes.",
                ),
                agent(
                    "coder",
                    "Coder",
                    "💻",
                    AgentKind::Specialist,
                    "qwen/qwen-2.5-coder-32b-instruct",
                    4096,
                    "#2f6f6a",
                    "writes code, configuration or commands the task needs (never runs them)",
                    "You are the Coder on a small team of AI specialists. Write the code, \
                     configuration or commands the task needs, in fenced Markdown code blocks \
                     with the language named, plus brief notes on how to use them. You cannot \
                     run code, so keep it simple and say what you could not verify. Do not \
                     write the final answer: a writer will use your work.",
                ),
                agent(
                    "analyst",
                    "Analyst",
                    "📊",
                    AgentKind::Specialist,
                    "meta-llama/llama-3.3-70b-instruct",
                    4096,
                    "#7b2d3b",
                    "reasons about trade-offs, risks and decisions, and explains why",
                    "You are the Analyst on a small team of AI specialists. Reason about the \
                     task: compare options, weigh trade-offs, risks and costs, and reach a \
                     clear, justified recommendation. Build on your teammates' notes where \
                     given and point out anything in them you doubt. Do not write the final \
                     answer: a writer will use your analysis.",
                ),
                agent(
                    "writer",
                    "Writer",
                    "✍️",
                    AgentKind::Writer,
                    "anthropic/claude-sonnet-4.5",
                    8192,
                    "#c2553a",
                    "synthesizes the final deliverable in Markdown",
                    "You are the Writer on a small team of AI specialists. Using the task, the \
                     plan and your teammates' full notes, write the final deliverable for the \
                     user in well-structured Markdown: lead with the answer, keep what is \
                     accurate and useful, resolve contradictions, include code blocks where \
                     the team produced code, and do not mention the team or the process.",
                ),
            ],
            tool_servers: Vec::new(),
        }
    }

    /// The grants naming a tool that `server` (connected, listing `tools`) lacks, as
    /// warnings for the log: such an entry gives its agent nothing, like a typo would.
    pub fn grants_missing_from(&self, server: &str, tools: &[&str]) -> Vec<String> {
        self.agents
            .iter()
            .flat_map(|a| a.tools.iter().flatten().map(move |p| (a, p)))
            .filter(|(_, p)| p.server == server)
            .filter_map(|(a, p)| {
                let tool = p.tool.as_deref()?;
                (!tools.contains(&tool)).then(|| {
                    format!(
                        "agent \"{}\": tools: \"{p}\": server \"{server}\" has no tool \"{tool}\"",
                        a.name
                    )
                })
            })
            .collect()
    }

    /// Parses and validates a custom roster file's JSON; the error is
    /// `(json_path, reason)` of the first problem, e.g. `("$.agents[2].name", "…")`.
    pub fn from_json(text: &str) -> Result<Roster, (String, String)> {
        let root: Value = serde_json::from_str(text)
            .map_err(|e| ("$".to_string(), format!("not valid JSON: {e}")))?;
        let list = root
            .get("agents")
            .ok_or_else(|| ("$.agents".to_string(), "missing".to_string()))?
            .as_array()
            .ok_or_else(|| ("$.agents".to_string(), "must be an array".to_string()))?;
        let mut agents = Vec::with_capacity(list.len());
        for (i, item) in list.iter().enumerate() {
            let at = |field: &str| format!("$.agents[{i}]{field}");
            let obj = item
                .as_object()
                .ok_or_else(|| (at(""), "must be an object".to_string()))?;
            for key in obj.keys() {
                if !matches!(
                    key.as_str(),
                    "name"
                        | "title"
                        | "emoji"
                        | "kind"
                        | "model"
                        | "max_tokens"
                        | "color"
                        | "prompt"
                        | "role"
                        | "tools"
                ) {
                    return Err((at(&format!(".{key}")), "unknown field".to_string()));
                }
            }
            let text_field =
                |field: &str, required: bool| -> Result<Option<String>, (String, String)> {
                    match obj.get(field) {
                        None | Some(Value::Null) if !required => Ok(None),
                        None | Some(Value::Null) => {
                            Err((at(&format!(".{field}")), "missing".to_string()))
                        }
                        Some(Value::String(s)) if s.trim().is_empty() => {
                            Err((at(&format!(".{field}")), "must not be empty".to_string()))
                        }
                        Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
                        Some(_) => Err((at(&format!(".{field}")), "must be a string".to_string())),
                    }
                };
            let name = text_field("name", true)?.unwrap_or_default();
            if !valid_agent_name(&name) {
                return Err((at(".name"), "must match [a-z][a-z0-9_-]{0,31}".to_string()));
            }
            if agents.iter().any(|a: &Agent| a.name == name) {
                return Err((at(".name"), format!("duplicate agent name \"{name}\"")));
            }
            let kind = match text_field("kind", true)?.as_deref() {
                Some("planner") => AgentKind::Planner,
                Some("specialist") => AgentKind::Specialist,
                Some("writer") => AgentKind::Writer,
                _ => {
                    return Err((
                        at(".kind"),
                        "must be \"planner\", \"specialist\" or \"writer\"".to_string(),
                    ))
                }
            };
            let model = text_field("model", true)?.unwrap_or_default();
            let max_tokens = match obj.get("max_tokens") {
                None | Some(Value::Null) => 4096,
                Some(v) => match v.as_u64() {
                    Some(n) if (1..=1_000_000).contains(&n) => n as u32,
                    _ => {
                        return Err((
                            at(".max_tokens"),
                            "must be an integer from 1 to 1000000".to_string(),
                        ))
                    }
                },
            };
            let title = text_field("title", false)?.unwrap_or_else(|| title_case(&name));
            let emoji = text_field("emoji", false)?.unwrap_or_else(|| "🤖".to_string());
            let color = text_field("color", false)?.unwrap_or_else(|| "#8a6e4b".to_string());
            if !valid_color(&color) {
                return Err((at(".color"), "must be a #rgb or #rrggbb colour".to_string()));
            }
            let prompt = match text_field("prompt", false)? {
                Some(p) => p,
                None => format!("You are the {title} on a small team of AI specialists."),
            };
            let role = text_field("role", false)?.unwrap_or_else(|| first_sentence(&prompt));
            let tools = tool_patterns(obj.get("tools"), &name, &at)?;
            agents.push(Agent {
                name,
                title,
                emoji,
                kind,
                model,
                max_tokens,
                color,
                role,
                prompt,
                tools,
            });
        }
        let count = |k| agents.iter().filter(|a| a.kind == k).count();
        if count(AgentKind::Planner) != 1 {
            return Err((
                "$.agents".to_string(),
                "must contain exactly one planner".to_string(),
            ));
        }
        if count(AgentKind::Writer) != 1 {
            return Err((
                "$.agents".to_string(),
                "must contain exactly one writer".to_string(),
            ));
        }
        let specialists = count(AgentKind::Specialist);
        if !(1..=8).contains(&specialists) {
            return Err((
                "$.agents".to_string(),
                "must contain 1 to 8 specialists".to_string(),
            ));
        }
        // Pipeline order: planner first, specialists as listed, writer last.
        let mut ordered: Vec<Agent> = Vec::with_capacity(agents.len());
        ordered.extend(
            agents
                .iter()
                .filter(|a| a.kind == AgentKind::Planner)
                .cloned(),
        );
        ordered.extend(
            agents
                .iter()
                .filter(|a| a.kind == AgentKind::Specialist)
                .cloned(),
        );
        ordered.extend(
            agents
                .iter()
                .filter(|a| a.kind == AgentKind::Writer)
                .cloned(),
        );
        Ok(Roster {
            agents: ordered,
            tool_servers: Vec::new(),
        })
    }
}

/// An agent's `tools`: absent or null for the default, else an array of patterns
/// (empty: no tools). Errors name the entry and the agent.
fn tool_patterns(
    value: Option<&Value>,
    agent: &str,
    at: &dyn Fn(&str) -> String,
) -> Result<Option<Vec<ToolPattern>>, (String, String)> {
    let list = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(list)) => list,
        Some(_) => {
            return Err((
                at(".tools"),
                format!(
                "agent \"{agent}\": must be an array of \"server/tool\" or \"server/*\" strings"
            ),
            ))
        }
    };
    let mut patterns: Vec<ToolPattern> = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let Value::String(text) = item else {
            return Err((
                at(&format!(".tools[{i}]")),
                format!("agent \"{agent}\": must be a string like \"server/tool\""),
            ));
        };
        let pattern = ToolPattern::parse(text).map_err(|why| {
            (
                at(&format!(".tools[{i}]")),
                format!("agent \"{agent}\": {why}"),
            )
        })?;
        patterns.push(pattern);
    }
    Ok(Some(patterns))
}

pub fn valid_agent_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 32
        && bytes[0].is_ascii_lowercase()
        && bytes[1..]
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_' || *b == b'-')
}

fn valid_color(c: &str) -> bool {
    let hex = c.strip_prefix('#').unwrap_or("");
    (hex.len() == 3 || hex.len() == 6) && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

fn title_case(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn first_sentence(prompt: &str) -> String {
    let end = prompt.find(['.', '\n']).unwrap_or(prompt.len());
    prompt[..end].chars().take(160).collect()
}

const PLANNER_PROMPT: &str = "You are the Orchestrator of a small team of AI specialists. \
Read the user's task and choose which specialists should work on it, in a JSON plan. \
Pick only the specialists the task really needs (usually one to three). \
Reply with JSON only, no prose and no code fence, exactly in this shape: \
{\"agents\":[\"researcher\",\"analyst\"],\"reasoning\":\"one or two sentences on why this team\",\
\"tasks\":{\"researcher\":\"what the researcher should focus on\",\"analyst\":\"what the analyst should focus on\"}}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_roster_matches_the_spec_table() {
        let r = Roster::builtin();
        let names: Vec<&str> = r.agents().iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            ["orchestrator", "researcher", "coder", "analyst", "writer"]
        );
        assert_eq!(r.planner().max_tokens, 1024);
        assert_eq!(r.writer().max_tokens, 8192);
        assert_eq!(
            r.get("coder").map(|a| a.model.as_str()),
            Some("qwen/qwen-2.5-coder-32b-instruct")
        );
        for a in r.agents() {
            assert!(
                a.prompt.starts_with(&format!("You are the {}", a.title)),
                "{}",
                a.name
            );
        }
        let mut colors: Vec<&str> = r.agents().iter().map(|a| a.color.as_str()).collect();
        colors.sort();
        colors.dedup();
        assert_eq!(colors.len(), 5, "accent colours are distinct");
    }

    fn roster_json(agents: &str) -> String {
        format!("{{\"agents\":[{agents}]}}")
    }

    const P: &str = r#"{"name":"boss","kind":"planner","model":"m"}"#;
    const W: &str = r#"{"name":"pen","kind":"writer","model":"m"}"#;

    #[test]
    fn custom_roster_is_reordered_and_defaults_filled() {
        let text = roster_json(&format!(
            r#"{W},{{"name":"poet","kind":"specialist","model":"x/y","max_tokens":77}},{P}"#
        ));
        let r = Roster::from_json(&text).unwrap();
        let names: Vec<&str> = r.agents().iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["boss", "poet", "pen"]);
        let poet = r.get("poet").unwrap();
        assert_eq!(poet.max_tokens, 77);
        assert_eq!(poet.title, "Poet");
        assert!(poet.prompt.starts_with("You are the Poet"));
    }

    #[test]
    fn custom_roster_errors_name_the_json_path() {
        let cases = [
            ("nope".to_string(), "$"),
            ("{}".to_string(), "$.agents"),
            (roster_json(&format!(r#"{P},{W}"#)), "$.agents"),
            (
                roster_json(&format!(
                    r#"{P},{W},{{"name":"Bad","kind":"specialist","model":"m"}}"#
                )),
                "$.agents[2].name",
            ),
            (
                roster_json(&format!(
                    r#"{P},{W},{{"name":"a","kind":"helper","model":"m"}}"#
                )),
                "$.agents[2].kind",
            ),
            (
                roster_json(&format!(r#"{P},{W},{{"name":"a","kind":"specialist"}}"#)),
                "$.agents[2].model",
            ),
            (
                roster_json(&format!(
                    r#"{P},{W},{{"name":"a","kind":"specialist","model":"m","max_tokens":0}}"#
                )),
                "$.agents[2].max_tokens",
            ),
            (
                roster_json(&format!(
                    r#"{P},{W},{{"name":"pen","kind":"specialist","model":"m"}}"#
                )),
                "$.agents[2].name",
            ),
            (roster_json(&format!(r#"{P},{P},{W}"#)), "$.agents[1].name"),
            (
                roster_json(&format!(
                    r#"{P},{W},{{"name":"a","kind":"specialist","model":"m","colour":"red"}}"#
                )),
                "$.agents[2].colour",
            ),
        ];
        for (text, path) in cases {
            let err = Roster::from_json(&text).expect_err(&text);
            assert_eq!(err.0, path, "{text}: {}", err.1);
        }
        let nine: Vec<String> = (0..9)
            .map(|i| format!(r#"{{"name":"s{i}","kind":"specialist","model":"m"}}"#))
            .collect();
        let err =
            Roster::from_json(&roster_json(&format!("{P},{W},{}", nine.join(",")))).unwrap_err();
        assert!(err.1.contains("1 to 8"));
    }

    #[test]
    fn tools_default_by_kind_and_explicit_lists_are_kept() {
        let servers = ["fs".to_string(), "web".to_string()];
        let r = Roster::builtin().with_tool_servers(&servers).unwrap();
        let shown = |a: &Agent| -> Vec<String> {
            r.granted_tools(a).iter().map(ToString::to_string).collect()
        };
        assert_eq!(shown(r.get("researcher").unwrap()), ["fs/*", "web/*"]);
        assert!(shown(r.planner()).is_empty());
        assert!(shown(r.writer()).is_empty());

        let text = roster_json(&format!(
            r#"{P},{{"name":"pen","kind":"writer","model":"m","tools":["web/fetch"]}},
               {{"name":"a","kind":"specialist","model":"m","tools":[]}},
               {{"name":"b","kind":"specialist","model":"m","tools":["fs/read","web/*"]}}"#
        ));
        let r = Roster::from_json(&text)
            .unwrap()
            .with_tool_servers(&servers)
            .unwrap();
        let shown = |name: &str| -> Vec<String> {
            r.granted_tools(r.get(name).unwrap())
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(shown("pen"), ["web/fetch"]);
        assert!(shown("a").is_empty());
        assert_eq!(shown("b"), ["fs/read", "web/*"]);
        assert_eq!(r.tool_servers(), servers);
        assert_eq!(
            r.grants_missing_from("fs", &["write"]),
            ["agent \"b\": tools: \"fs/read\": server \"fs\" has no tool \"read\""]
        );
        assert!(r.grants_missing_from("fs", &["read"]).is_empty());
    }

    #[test]
    fn bad_tools_entries_name_the_agent_and_the_field() {
        let cases = [
            (r#""tools":"fs/*""#, "$.agents[2].tools"),
            (r#""tools":[1]"#, "$.agents[2].tools[0]"),
            (r#""tools":["fs/*","fs"]"#, "$.agents[2].tools[1]"),
            (r#""tools":["fs/read*"]"#, "$.agents[2].tools[0]"),
        ];
        for (field, path) in cases {
            let text = roster_json(&format!(
                r#"{P},{W},{{"name":"scout","kind":"specialist","model":"m",{field}}}"#
            ));
            let err = Roster::from_json(&text).expect_err(&text);
            assert_eq!(err.0, path, "{text}: {}", err.1);
            assert!(err.1.contains("agent \"scout\""), "{}", err.1);
        }
        let text = roster_json(&format!(
            r#"{P},{W},{{"name":"scout","kind":"specialist","model":"m","tools":["fs/*","wbe/fetch"]}}"#
        ));
        let roster = Roster::from_json(&text).unwrap();
        let err = roster
            .clone()
            .with_tool_servers(&["fs".to_string(), "web".to_string()])
            .unwrap_err();
        assert!(
            err.starts_with("agent \"scout\": tools[1]: \"wbe/fetch\"")
                && err.contains("configured: fs, web"),
            "{err}"
        );
        let err = roster.with_tool_servers(&[]).unwrap_err();
        assert!(err.contains("MESH_MCP_CONFIG configures none"), "{err}");
    }
}
