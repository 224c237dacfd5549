//! The offline provider (SPEC §5.6): no network, deterministic. The orchestrator emits a
//! real JSON plan chosen by rules on the task's words; the others emit labelled
//! placeholder Markdown that quotes what they were given, one word at a time.

use super::call::{CallOutcome, CallRequest, Message, TokenSink};
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
    /// the first word.
    pub async fn stream(
        &self,
        req: &CallRequest<'_>,
        sink: &mut dyn TokenSink,
        emitted_any: &mut bool,
    ) -> CallOutcome {
        let text = match req.kind {
            AgentKind::Planner => plan_reply(req.task, req.candidates),
            AgentKind::Specialist => specialist_reply(req),
            AgentKind::Writer => writer_reply(req),
        };
        let mut emitted = 0u64;
        for piece in words(&text) {
            if self.delay.is_zero() {
                // Even without a delay, let other tasks (subscribers, other runs) run.
                tokio::task::yield_now().await;
            } else {
                tokio::time::sleep(self.delay).await;
            }
            sink.token(piece);
            *emitted_any = true;
            emitted += 1;
        }
        let input_words = req
            .messages
            .iter()
            .flat_map(Message::texts)
            .map(|t| words(t).count())
            .sum::<usize>();
        CallOutcome::new(
            "stop",
            Some(Usage {
                input_tokens: input_words as u64,
                output_tokens: emitted,
            }),
        )
    }
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
}
