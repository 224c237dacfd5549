//! Validation of an OpenAI Chat Completions request body (`POST /v1/chat/completions`):
//! what it asks of the team, and which `param` is at fault when it is refused.

use crate::api::run_request::MAX_TASK_CHARS;
use crate::model::conversation::Turn;
use crate::pipeline::roster::Roster;
use serde_json::Value;

/// The model that lets the orchestrator choose the team; `agent-mesh/<a>+<b>` fixes it.
pub const MODEL: &str = "agent-mesh";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatRequest {
    /// The `model` as sent, echoed back in every response.
    pub model: String,
    /// The fixed team (roster order), or `None` for the orchestrator's choice.
    pub team: Option<Vec<String>>,
    /// System (and developer) messages, joined: an extra instruction to the writer.
    pub instruction: Option<String>,
    /// Earlier user/assistant exchanges, oldest first.
    pub history: Vec<Turn>,
    /// The last user message.
    pub task: String,
    pub stream: bool,
    pub include_usage: bool,
}

/// A refusal in OpenAI's terms: the offending `param` and, for an unknown model,
/// the `model_not_found` code clients look for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatError {
    pub param: String,
    pub message: String,
    pub code: Option<&'static str>,
}

fn fail(param: &str, message: impl Into<String>) -> ChatError {
    ChatError {
        param: param.to_string(),
        message: message.into(),
        code: None,
    }
}

pub fn parse_chat_request(body: &[u8], roster: &Roster) -> Result<ChatRequest, ChatError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| fail("body", format!("the body is not valid JSON: {e}")))?;
    let Value::Object(fields) = value else {
        return Err(fail("body", "the body must be a JSON object"));
    };

    let model = match fields.get("model") {
        None | Some(Value::Null) => return Err(fail("model", "model is required")),
        Some(Value::String(m)) => m.clone(),
        Some(_) => return Err(fail("model", "model must be a string")),
    };
    let team = parse_model(&model, roster)?;

    // Other OpenAI parameters (temperature, top_p, max_tokens, user, …) are accepted
    // and ignored: the team's own settings decide. Only `n` would change the shape
    // of the answer, so anything but one choice is refused.
    match fields.get("n") {
        None | Some(Value::Null) => {}
        Some(n) if n.as_u64() == Some(1) => {}
        Some(_) => return Err(fail("n", "n must be 1 (one answer per request)")),
    }
    let stream = match fields.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(fail("stream", "stream must be true or false")),
    };
    let include_usage = match fields.get("stream_options") {
        None | Some(Value::Null) => false,
        Some(Value::Object(o)) => match o.get("include_usage") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(fail(
                    "stream_options.include_usage",
                    "stream_options.include_usage must be true or false",
                ))
            }
        },
        Some(_) => return Err(fail("stream_options", "stream_options must be an object")),
    };

    let messages = match fields.get("messages") {
        None | Some(Value::Null) => return Err(fail("messages", "messages is required")),
        Some(Value::Array(list)) if list.is_empty() => {
            return Err(fail("messages", "messages must not be empty"))
        }
        Some(Value::Array(list)) => list,
        Some(_) => return Err(fail("messages", "messages must be an array")),
    };
    let mut parsed = Vec::with_capacity(messages.len());
    for (i, m) in messages.iter().enumerate() {
        let Value::Object(m) = m else {
            return Err(fail(
                &format!("messages[{i}]"),
                format!("messages[{i}] must be an object"),
            ));
        };
        let role = match m.get("role") {
            Some(Value::String(r)) => r.as_str(),
            _ => {
                return Err(fail(
                    &format!("messages[{i}].role"),
                    format!("messages[{i}].role must be a string"),
                ))
            }
        };
        if !matches!(role, "system" | "developer" | "user" | "assistant" | "tool") {
            return Err(fail(
                &format!("messages[{i}].role"),
                format!(
                    "messages[{i}].role \"{}\" is not one of system, developer, user, assistant, tool",
                    crate::util::cut_chars(role, 40)
                ),
            ));
        }
        let text = content_text(m.get("content"), i)?;
        parsed.push((role, text));
    }

    let Some(last_user) = parsed.iter().rposition(|(r, _)| *r == "user") else {
        return Err(fail("messages", "messages has no user message"));
    };
    let task = parsed[last_user].1.trim().to_string();
    if task.is_empty() {
        return Err(fail(
            &format!("messages[{last_user}].content"),
            "the last user message is empty",
        ));
    }
    if let Some(why) = super::run_request::unreadable_text(&task) {
        return Err(fail(
            &format!("messages[{last_user}].content"),
            format!("the last user message {why}"),
        ));
    }
    let chars = task.chars().count();
    if chars > MAX_TASK_CHARS {
        return Err(fail(
            &format!("messages[{last_user}].content"),
            format!("the last user message is {chars} characters; the limit is {MAX_TASK_CHARS}"),
        ));
    }

    let mut instructions = Vec::new();
    let mut history: Vec<Turn> = Vec::new();
    // Earlier messages pair up as turns: user text opens one (consecutive user
    // messages join), assistant text is its deliverable. Tool messages carry no turn.
    let mut open: Option<Turn> = None;
    for (i, (role, text)) in parsed.iter().enumerate() {
        match *role {
            "system" | "developer" if !text.trim().is_empty() => {
                instructions.push(text.trim().to_string())
            }
            "user" if i < last_user => match &mut open {
                Some(t) if t.output.is_empty() => {
                    t.task.push_str("\n\n");
                    t.task.push_str(text);
                }
                _ => {
                    history.extend(open.take());
                    open = Some(Turn {
                        task: text.clone(),
                        output: String::new(),
                    });
                }
            },
            "assistant" if i < last_user => {
                let t = open.get_or_insert_with(|| Turn {
                    task: String::new(),
                    output: String::new(),
                });
                if !t.output.is_empty() {
                    t.output.push_str("\n\n");
                }
                t.output.push_str(text);
            }
            _ => {}
        }
    }
    history.extend(open);

    Ok(ChatRequest {
        model,
        team,
        instruction: (!instructions.is_empty()).then(|| instructions.join("\n\n")),
        history,
        task,
        stream,
        include_usage,
    })
}

/// `agent-mesh` → `None`; `agent-mesh/<a>+<b>` → that team in roster order.
pub(crate) fn parse_model(model: &str, roster: &Roster) -> Result<Option<Vec<String>>, ChatError> {
    let unknown = |why: String| ChatError {
        param: "model".to_string(),
        message: format!(
            "the model \"{}\" does not exist: {why} (GET /v1/models lists them)",
            crate::util::cut_chars(model, 80)
        ),
        code: Some("model_not_found"),
    };
    if model == MODEL {
        return Ok(None);
    }
    let Some(team) = model.strip_prefix("agent-mesh/") else {
        return Err(unknown(
            "use agent-mesh or agent-mesh/<agent>+<agent>".to_string(),
        ));
    };
    let specialists = roster.specialist_names();
    let mut chosen = Vec::new();
    for name in team.split('+') {
        let name = name.trim().to_ascii_lowercase();
        if !specialists.contains(&name.as_str()) {
            return Err(unknown(format!(
                "\"{}\" is not a specialist (choose from {})",
                crate::util::cut_chars(&name, 40),
                specialists.join(", ")
            )));
        }
        chosen.push(name);
    }
    Ok(Some(
        specialists
            .iter()
            .filter(|s| chosen.iter().any(|c| c == *s))
            .map(|s| s.to_string())
            .collect(),
    ))
}

/// A message's text: a string, an array of `{"type":"text","text":…}` parts, or
/// null (an assistant message that only called tools).
fn content_text(content: Option<&Value>, i: usize) -> Result<String, ChatError> {
    let param = format!("messages[{i}].content");
    match content {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(parts)) => {
            let mut text = String::new();
            for part in parts {
                match (part.get("type").and_then(Value::as_str), part.get("text")) {
                    (Some("text"), Some(Value::String(t))) => text.push_str(t),
                    _ => {
                        return Err(fail(
                            &param,
                            format!("{param}: only text parts ({{\"type\":\"text\",\"text\":\"…\"}}) are supported"),
                        ))
                    }
                }
            }
            Ok(text)
        }
        Some(_) => Err(fail(
            &param,
            format!("{param} must be a string or an array of text parts"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roster() -> Roster {
        Roster::builtin()
    }

    fn parse(body: &str) -> Result<ChatRequest, ChatError> {
        parse_chat_request(body.as_bytes(), &roster())
    }

    #[test]
    fn messages_become_instruction_history_and_task() {
        let r = parse(
            r#"{"model":"agent-mesh","temperature":0.2,"n":1,"messages":[
                {"role":"system","content":"Answer in French."},
                {"role":"user","content":"Q1"},
                {"role":"assistant","content":[{"type":"text","text":"A1"}]},
                {"role":"user","content":[{"type":"text","text":"Q2"}]}]}"#,
        )
        .unwrap();
        assert_eq!(r.team, None);
        assert_eq!(r.instruction.as_deref(), Some("Answer in French."));
        assert_eq!(
            r.history,
            [Turn {
                task: "Q1".into(),
                output: "A1".into()
            }]
        );
        assert_eq!(r.task, "Q2");
        assert!(!r.stream);
    }

    #[test]
    fn a_fixed_team_is_put_in_roster_order() {
        let names = roster()
            .specialist_names()
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>();
        let model = format!("agent-mesh/{}+{}", names[1], names[0]);
        let r = parse(&format!(
            r#"{{"model":"{model}","messages":[{{"role":"user","content":"x"}}]}}"#
        ))
        .unwrap();
        assert_eq!(r.team, Some(vec![names[0].clone(), names[1].clone()]));
    }

    #[test]
    fn every_refusal_names_its_param() {
        let cases = [
            (r#"[]"#, "body"),
            (r#"{"messages":[{"role":"user","content":"x"}]}"#, "model"),
            (
                r#"{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}"#,
                "model",
            ),
            (
                r#"{"model":"agent-mesh/nobody","messages":[{"role":"user","content":"x"}]}"#,
                "model",
            ),
            (r#"{"model":"agent-mesh"}"#, "messages"),
            (r#"{"model":"agent-mesh","messages":[]}"#, "messages"),
            (r#"{"model":"agent-mesh","messages":"hi"}"#, "messages"),
            (
                r#"{"model":"agent-mesh","messages":[{"role":"system","content":"x"}]}"#,
                "messages",
            ),
            (
                r#"{"model":"agent-mesh","messages":[{"role":"user","content":5}]}"#,
                "messages[0].content",
            ),
            (
                r#"{"model":"agent-mesh","messages":[{"role":"user","content":[{"type":"image_url"}]}]}"#,
                "messages[0].content",
            ),
            (
                r#"{"model":"agent-mesh","messages":[{"role":"wizard","content":"x"}]}"#,
                "messages[0].role",
            ),
            (
                r#"{"model":"agent-mesh","messages":[{"role":"user","content":"  "}]}"#,
                "messages[0].content",
            ),
            (
                r#"{"model":"agent-mesh","n":2,"messages":[{"role":"user","content":"x"}]}"#,
                "n",
            ),
            (
                r#"{"model":"agent-mesh","stream":"yes","messages":[{"role":"user","content":"x"}]}"#,
                "stream",
            ),
        ];
        for (body, param) in cases {
            let e = parse(body).expect_err(body);
            assert_eq!(e.param, param, "{body}: {}", e.message);
        }
    }
}
