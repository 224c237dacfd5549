//! The offline provider (SPEC §5.6): no network, deterministic. The orchestrator emits a
//! real JSON plan chosen by rules on the task's words; the others emit labelled
//! placeholder Markdown that quotes what they were given, one word at a time. Offered
//! tools, it first calls one (see `tools`) and then quotes what it answered.

mod tools;

use super::call::{
    Block, CallOutcome, CallRequest, Message, Role, TokenSink, ToolCall, ToolCallFragment,
    ToolResult,
};
use super::error::ProviderError;
use super::provider::{Attempt, BoxFuture, Provider};
use crate::model::agent::AgentKind;
use crate::model::events::Usage;
use crate::model::provider_id::ProviderId;
use crate::secret::Secret;
use std::time::Duration;

pub struct OfflineProvider {
    delay: Duration,
}

impl OfflineProvider {
    pub fn new(delay: Duration) -> Self {
        OfflineProvider { delay }
    }

    /// Streams the placeholder answer one word at a time; `emitted` turns true with
    /// the first word. Offered tools and holding no tool result yet, it makes one
    /// tool call instead.
    pub async fn stream(
        &self,
        req: &CallRequest<'_>,
        sink: &mut dyn TokenSink,
        emitted_any: &mut bool,
    ) -> CallOutcome {
        if let Some(call) = tool_call_for(req) {
            self.pace().await;
            sink.tool_call(&ToolCallFragment {
                index: 0,
                id: Some(&call.id),
                name: Some(&call.name),
                arguments: &call.arguments,
            });
            *emitted_any = true;
            let mut outcome = CallOutcome::new(
                "tool_calls",
                Some(Usage {
                    input_tokens: input_words(req),
                    output_tokens: words(&call.arguments).count() as u64,
                }),
            );
            outcome.tool_calls.push(call);
            return outcome;
        }
        let text = match req.kind {
            AgentKind::Planner => plan_reply(req.task, req.candidates),
            AgentKind::Specialist => specialist_reply(req),
            AgentKind::Writer => writer_reply(req),
        };
        let mut emitted = 0u64;
        for piece in words(&text) {
            self.pace().await;
            sink.token(piece);
            *emitted_any = true;
            emitted += 1;
        }
        CallOutcome::new(
            "stop",
            Some(Usage {
                input_tokens: input_words(req),
                output_tokens: emitted,
            }),
        )
    }

    /// The wait before each word (and before a tool call).
    async fn pace(&self) {
        if self.delay.is_zero() {
            // Even without a delay, let other tasks (subscribers, other runs) run.
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(self.delay).await;
        }
    }
}

/// The words of every message's text: the input tokens the offline provider reports.
fn input_words(req: &CallRequest<'_>) -> u64 {
    req.messages
        .iter()
        .flat_map(Message::texts)
        .map(|t| words(t).count() as u64)
        .sum()
}

/// The one tool call of a turn: made when tools are offered and the conversation holds
/// no tool result yet, to the first tool whose required arguments can be filled. Its id
/// is the agent's, so each agent's call is told apart in a run's events. Never when the
/// turn is out of tool rounds (the tools are still listed then, with tool choice none).
fn tool_call_for(req: &CallRequest<'_>) -> Option<ToolCall> {
    if req.tools.is_empty() || req.answer_without_tools || tool_results(req).next().is_some() {
        return None;
    }
    let (tool, arguments) = tools::first_callable(req.tools, req.task)?;
    Some(ToolCall {
        id: format!("call_offline_{}_1", req.agent),
        name: tool.name.clone(),
        arguments: arguments.to_string(),
    })
}

/// Every tool result in the conversation, with the name of the tool that gave it.
fn tool_results<'r>(req: &'r CallRequest<'_>) -> impl Iterator<Item = (&'r str, &'r ToolResult)> {
    let calls: Vec<&ToolCall> = req
        .conversation()
        .filter(|m| m.role == Role::Assistant)
        .flat_map(|m| &m.content)
        .filter_map(|b| match b {
            Block::ToolCall(call) => Some(call),
            _ => None,
        })
        .collect();
    req.conversation()
        .filter(|m| m.role == Role::Tool)
        .flat_map(|m| &m.content)
        .filter_map(move |b| match b {
            Block::ToolResult(result) => {
                let name = calls
                    .iter()
                    .find(|c| c.id == result.call_id)
                    .map_or("a tool", |c| c.name.as_str());
                Some((name, result))
            }
            _ => None,
        })
}

/// Offline answers through the same retry and redaction path as every provider; it
/// never fails, so it is tried once.
impl Provider for OfflineProvider {
    fn id(&self) -> ProviderId {
        ProviderId::Offline
    }

    fn auth(&self) -> &'static str {
        "none"
    }

    /// Placeholder answers cost nothing, and say so by reporting no cost at all.
    fn estimates_cost(&self) -> bool {
        false
    }

    fn attempt<'a>(
        &'a self,
        request: &'a CallRequest<'a>,
        sink: &'a mut dyn TokenSink,
        progress: &'a mut Attempt,
        _secrets: &'a [String],
    ) -> BoxFuture<'a, Result<CallOutcome, ProviderError>> {
        Box::pin(async move { Ok(self.stream(request, sink, &mut progress.emitted).await) })
    }

    fn catalog_endpoint(&self) -> BoxFuture<'_, Result<(String, Option<Secret>), String>> {
        Box::pin(async { Err("the offline provider has no live catalog".to_string()) })
    }
}

/// Splits text into word tokens, each carrying the whitespace that follows it, so
/// that concatenating the tokens gives back the text exactly.
pub fn words(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let word_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let after_space = rest[word_end..]
            .find(|c: char| !c.is_whitespace())
            .map_or(rest.len(), |i| word_end + i);
        // A token is at least one character even when the text starts with spaces.
        let end = if after_space == 0 {
            rest.len()
        } else {
            after_space
        };
        let (token, tail) = rest.split_at(end);
        rest = tail;
        Some(token)
    })
}

fn has_any(words: &[String], keys: &[&str]) -> bool {
    words.iter().any(|w| {
        keys.iter()
            .any(|k| w == k || (k.len() > 4 && w.starts_with(k)))
    })
}

const CODE_WORDS: &[&str] = &[
    "code",
    "coding",
    "implement",
    "function",
    "script",
    "program",
    "snippet",
    "regex",
    "sql",
    "query",
    "api",
    "bug",
    "debug",
    "refactor",
    "class",
    "library",
    "rust",
    "python",
    "javascript",
    "typescript",
    "bash",
    "shell",
    "compile",
    "algorithm",
    "endpoint",
];
const ANALYSIS_WORDS: &[&str] = &[
    "compare",
    "comparison",
    "versus",
    "vs",
    "analyse",
    "analyze",
    "analysis",
    "decide",
    "decision",
    "why",
    "trade-off",
    "tradeoff",
    "trade-offs",
    "tradeoffs",
    "pros",
    "cons",
    "evaluate",
    "should",
    "choose",
    "better",
    "best",
    "recommend",
    "explain",
];

/// The rule-based plan: researcher always, coder for code, analyst for comparisons and
/// "why" questions. Candidates not in the built-in roster are used only if nothing else fits.
pub fn plan_reply(task: &str, candidates: &[(String, String)]) -> String {
    let lowered: Vec<String> = task
        .split(|c: char| !(c.is_alphanumeric() || c == '-'))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let has = |name: &str| candidates.iter().any(|(n, _)| n == name);
    let mut team: Vec<&str> = Vec::new();
    let mut reasons: Vec<&str> = Vec::new();
    if has("researcher") {
        team.push("researcher");
        reasons.push("the researcher gathers the facts");
    }
    if has("coder") && has_any(&lowered, CODE_WORDS) {
        team.push("coder");
        reasons.push("the task asks for code");
    }
    if has("analyst") && has_any(&lowered, ANALYSIS_WORDS) {
        team.push("analyst");
        reasons.push("it asks for a comparison, a decision or an explanation");
    }
    if team.is_empty() {
        if let Some((first, _)) = candidates.first() {
            team.push(first);
            reasons.push("the first specialist covers the task");
        }
    }
    let short_task: String = task.chars().take(120).collect();
    let tasks: serde_json::Map<String, serde_json::Value> = team
        .iter()
        .map(|name| {
            let focus = match *name {
                "researcher" => format!("Collect the key facts and background for: {short_task}"),
                "coder" => format!("Write the code this needs: {short_task}"),
                "analyst" => format!("Weigh the options and trade-offs for: {short_task}"),
                other => format!("Cover your part ({other}) of: {short_task}"),
            };
            (name.to_string(), serde_json::Value::String(focus))
        })
        .collect();
    // Everyone else builds on the researcher's facts, so `make run` with
    // MESH_SCHEDULE=parallel shows the coder and the analyst working at once.
    let after: serde_json::Map<String, serde_json::Value> = team
        .iter()
        .filter(|n| team.contains(&"researcher") && **n != "researcher")
        .map(|n| (n.to_string(), serde_json::json!(["researcher"])))
        .collect();
    let plan = serde_json::json!({
        "agents": team,
        "after": after,
        "reasoning": format!("Offline plan by keyword rules: {}.", reasons.join("; ")),
        "tasks": tasks,
    });
    plan.to_string()
}

const BANNER: &str = "> **Offline provider:** placeholder text, not a model's answer. \
Set a provider key (for example `OPENROUTER_API_KEY`) to get real answers.";

fn quote(text: &str, max_chars: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let cut: String = flat.chars().take(max_chars).collect();
    if cut.len() < flat.len() {
        format!("{cut}…")
    } else {
        cut
    }
}

fn specialist_reply(req: &CallRequest<'_>) -> String {
    let mut out = format!(
        "### {} notes (placeholder)\n\n{BANNER}\n\n",
        title_of(req.agent)
    );
    out.push_str(&format!("**Task:** {}\n\n", quote(req.task, 300)));
    match req.subtask {
        Some(s) => out.push_str(&format!("**My subtask:** {}\n\n", quote(s, 300))),
        None => out.push_str("**My subtask:** none given, so I cover the whole task.\n\n"),
    }
    push_earlier_turns(&mut out, req);
    push_tool_results(&mut out, req);
    if req.context.is_empty() {
        out.push_str("**Context received:** none, I am the first specialist.\n\n");
    } else {
        out.push_str("**Context received:**\n\n");
        for (title, text) in req.context {
            out.push_str(&format!("- from the {title}: \"{}\"\n", quote(text, 120)));
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "- Placeholder point one on \"{}\".\n- Placeholder point two, building on the context above.\n- Placeholder point three: a real model would go deeper here.\n",
        quote(req.task, 60)
    ));
    out
}

fn writer_reply(req: &CallRequest<'_>) -> String {
    let mut out = format!("# {}\n\n{BANNER}\n\n", quote(req.task, 80));
    out.push_str("## Summary\n\nThis deliverable is assembled by the offline provider from the team's placeholder notes, so the whole pipeline can be seen working without a key.\n\n");
    push_earlier_turns(&mut out, req);
    push_tool_results(&mut out, req);
    out.push_str("## What the team contributed\n\n");
    if req.context.is_empty() {
        out.push_str("No specialist produced text.\n\n");
    }
    for (title, text) in req.context {
        out.push_str(&format!(
            "- **{title}** ({} characters): \"{}\"\n",
            text.chars().count(),
            quote(text, 100)
        ));
    }
    out.push_str("\n## Next steps\n\n1. Set `OPENROUTER_API_KEY` (or another provider's key).\n2. Run the same task again for a real answer.\n");
    out
}

/// A follow-up's earlier turns, quoted so the conversation's chaining is visible too.
/// Nothing is written for a first question, so its placeholder stays as it was.
fn push_earlier_turns(out: &mut String, req: &CallRequest<'_>) {
    if req.history.is_empty() {
        return;
    }
    out.push_str("**Earlier turns received:**\n\n");
    for turn in req.history {
        out.push_str(&format!(
            "- asked \"{}\", delivered \"{}\"\n",
            quote(&turn.task, 120),
            quote(&turn.output, 120)
        ));
    }
    out.push('\n');
}

/// What the turn's tool calls answered, each quoted to a bound. Nothing is written
/// without tool results, so a turn without tools reads as it always did.
fn push_tool_results(out: &mut String, req: &CallRequest<'_>) {
    let mut results = tool_results(req).peekable();
    if results.peek().is_none() {
        return;
    }
    out.push_str("**Tool results received:**\n\n");
    for (name, result) in results {
        let said = if result.is_error {
            "failed"
        } else {
            "answered"
        };
        out.push_str(&format!(
            "- `{name}` {said}: \"{}\"\n",
            quote(&result.content, 200)
        ));
    }
    out.push('\n');
}

fn title_of(agent: &str) -> String {
    let mut c = agent.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidates() -> Vec<(String, String)> {
        ["researcher", "coder", "analyst"]
            .iter()
            .map(|n| (n.to_string(), String::new()))
            .collect()
    }

    fn team_of(task: &str) -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(&plan_reply(task, &candidates())).unwrap();
        v["agents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn plan_rules_follow_the_task_words() {
        assert_eq!(team_of("Tell me about the history of Rome"), ["researcher"]);
        assert_eq!(
            team_of("Write a Python script to rename files"),
            ["researcher", "coder"]
        );
        assert_eq!(
            team_of("Compare B-trees and LSM-trees"),
            ["researcher", "analyst"]
        );
        assert_eq!(
            team_of("Implement a rate limiter and explain why it works"),
            ["researcher", "coder", "analyst"]
        );
    }

    #[test]
    fn words_reassemble_exactly() {
        for text in ["", "one", "  lead", "a b  c\n\nd ", "é 😀\tx"] {
            let joined: String = words(text).collect();
            assert_eq!(joined, text);
        }
        assert_eq!(words("a b").collect::<Vec<_>>(), ["a ", "b"]);
    }

    /// Keeps what the provider streamed.
    #[derive(Default)]
    struct Recorder {
        text: String,
        fragments: Vec<(Option<String>, Option<String>, String)>,
    }

    impl TokenSink for Recorder {
        fn token(&mut self, text: &str) {
            self.text.push_str(text);
        }
        fn tool_call(&mut self, f: &ToolCallFragment<'_>) {
            self.fragments.push((
                f.id.map(str::to_string),
                f.name.map(str::to_string),
                f.arguments.to_string(),
            ));
        }
        fn retrying(&mut self, _: u32, _: Duration, _: &ProviderError) {}
    }

    fn tool(name: &str, schema: serde_json::Value) -> super::super::call::ToolSpec {
        super::super::call::ToolSpec {
            name: name.to_string(),
            description: String::new(),
            input_schema: schema,
        }
    }

    async fn answer(
        messages: &[Message],
        tools: &[super::super::call::ToolSpec],
    ) -> (CallOutcome, Recorder) {
        let mut request = crate::providers::test_call("offline", messages, 100);
        request.task = "Why is the sky blue?";
        request.tools = tools;
        let mut sink = Recorder::default();
        let mut emitted = false;
        let outcome = OfflineProvider::new(Duration::ZERO)
            .stream(&request, &mut sink, &mut emitted)
            .await;
        assert!(emitted);
        (outcome, sink)
    }

    #[tokio::test(flavor = "current_thread")]
    async fn offered_tools_it_calls_the_first_it_can_fill_once_then_quotes_the_result() {
        let tools = [
            tool(
                "fetch__fetch",
                serde_json::json!({"type": "object",
                    "properties": {"url": {"type": "string", "format": "uri"}}, "required": ["url"]}),
            ),
            tool(
                "everything__echo",
                serde_json::json!({"type": "object",
                    "properties": {"message": {"type": "string"}}, "required": ["message"]}),
            ),
        ];
        let mut messages = vec![Message::system("s"), Message::user("u")];
        let (first, sink) = answer(&messages, &tools).await;
        assert_eq!(first.finish_reason, "tool_calls");
        let expected = ToolCall {
            id: "call_offline_researcher_1".into(),
            name: "everything__echo".into(),
            arguments: r#"{"message":"Why is the sky blue?"}"#.into(),
        };
        assert_eq!(first.tool_calls, std::slice::from_ref(&expected));
        assert_eq!(sink.text, "", "a tool round says nothing");
        assert_eq!(
            sink.fragments,
            [(
                Some(expected.id.clone()),
                Some(expected.name.clone()),
                expected.arguments.clone()
            )]
        );
        // The same call again gives the same id and arguments: deterministic.
        assert_eq!(
            answer(&messages, &tools).await.0.tool_calls,
            first.tool_calls
        );

        messages.push(Message {
            role: Role::Assistant,
            content: vec![Block::ToolCall(expected.clone())],
        });
        messages.push(Message {
            role: Role::Tool,
            content: vec![Block::ToolResult(ToolResult {
                call_id: expected.id.clone(),
                content: format!("Echo: Why is the sky blue? {}", "more ".repeat(100)),
                is_error: false,
            })],
        });
        let (second, sink) = answer(&messages, &tools).await;
        assert_eq!(second.finish_reason, "stop");
        assert!(second.tool_calls.is_empty(), "one call per turn");
        let quoted = "- `everything__echo` answered: \"Echo: Why is the sky blue? more more";
        assert!(sink.text.contains(quoted), "{}", sink.text);
        let line = sink.text.lines().find(|l| l.contains("answered")).unwrap();
        assert!(
            line.chars().count() < 260 && line.ends_with("…\""),
            "{line}"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn out_of_tool_rounds_it_answers_without_calling() {
        let tools = [tool(
            "everything__echo",
            serde_json::json!({"type": "object",
                "properties": {"message": {"type": "string"}}, "required": ["message"]}),
        )];
        let messages = [Message::system("s"), Message::user("u")];
        let mut request = crate::providers::test_call("offline", &messages, 100);
        request.task = "Why is the sky blue?";
        request.tools = &tools;
        request.answer_without_tools = true;
        let mut sink = Recorder::default();
        let mut emitted = false;
        let outcome = OfflineProvider::new(Duration::ZERO)
            .stream(&request, &mut sink, &mut emitted)
            .await;
        assert_eq!(outcome.finish_reason, "stop");
        assert!(outcome.tool_calls.is_empty());
        assert!(!sink.text.is_empty());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_error_result_is_quoted_as_a_failure() {
        let tools = [tool("t", serde_json::json!({"type": "object"}))];
        let messages = [
            Message::system("s"),
            Message::user("u"),
            Message {
                role: Role::Tool,
                content: vec![Block::ToolResult(ToolResult {
                    call_id: "other".into(),
                    content: "boom".into(),
                    is_error: true,
                })],
            },
        ];
        let (outcome, sink) = answer(&messages, &tools).await;
        assert!(outcome.tool_calls.is_empty());
        assert!(
            sink.text.contains("- `a tool` failed: \"boom\""),
            "{}",
            sink.text
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn without_a_tool_it_can_fill_the_answer_is_the_same_as_without_tools() {
        let messages = [Message::system("s"), Message::user("u")];
        let unfillable = [tool(
            "fs__read",
            serde_json::json!({"type": "object",
                "properties": {"path": {"type": "string", "pattern": "^/"}}, "required": ["path"]}),
        )];
        let (plain, plain_sink) = answer(&messages, &[]).await;
        let (offered, offered_sink) = answer(&messages, &unfillable).await;
        assert_eq!(plain, offered);
        assert_eq!(plain_sink.text, offered_sink.text);
        assert!(offered_sink.fragments.is_empty());
        assert!(!plain_sink.text.contains("Tool results"));
    }
}
