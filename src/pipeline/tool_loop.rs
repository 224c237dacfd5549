//! The tools of one agent's turn: which MCP tools it is offered (named so the model's
//! name maps back to one server and tool), and running one round of the model's tool
//! calls at once, with their `tool_call` / `tool_result` events and the results the
//! model reads next.

use crate::model::events::{Event, ToolCallEvent, ToolResultEvent};
use crate::model::run_config::AgentConfig;
use crate::model::run_context::RunContext;
use crate::model::tool_box::ToolBox;
use crate::providers::call::{Block, Message, Role, ToolCall, ToolResult, ToolSpec};
use crate::providers::Providers;
use crate::trace::{genai, Span};
use serde_json::Value;
use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

/// The longest tool name the providers accept (OpenAI's and Anthropic's limit).
const MAX_TOOL_NAME: usize = 64;

/// Sent after the last allowed round, with the tools taken away.
pub(crate) const ANSWER_NOW: &str =
    "You have used all the tool calls allowed for this turn. Answer now with what you have, without tools.";

/// The tools an agent is offered in one turn, by the names the model sees.
pub(crate) struct TurnTools {
    client: Arc<dyn ToolBox>,
    pub specs: Vec<ToolSpec>,
    /// Model-facing name -> (server, tool).
    targets: HashMap<String, (String, String)>,
}

/// The tools `agent` may use now: those of the connected servers its frozen grant
/// covers (by default every specialist gets every tool, the orchestrator and the writer
/// none). `None`: a turn without tools.
pub(crate) async fn turn_tools(providers: &Providers, agent: &AgentConfig) -> Option<TurnTools> {
    if !agent.may_use_any_tool() {
        return None;
    }
    let client = providers.tools()?.clone();
    let mut specs = Vec::new();
    let mut targets = HashMap::new();
    for server in client.servers().await {
        if !server.connected {
            continue;
        }
        for tool in server.tools {
            if !agent.may_use_tool(&server.name, &tool.name) {
                continue;
            }
            let name = model_tool_name(&server.name, &tool.name, &targets);
            targets.insert(name.clone(), (server.name.clone(), tool.name.clone()));
            specs.push(ToolSpec {
                name,
                description: tool.description,
                input_schema: tool.input_schema,
            });
        }
    }
    (!specs.is_empty()).then_some(TurnTools {
        client,
        specs,
        targets,
    })
}

/// `server__tool`, kept to what every provider accepts (`[a-zA-Z0-9_-]`, 64 characters);
/// a name that collides after that gets a numbered suffix, so each maps back to one tool.
fn model_tool_name(server: &str, tool: &str, taken: &HashMap<String, (String, String)>) -> String {
    let clean: String = format!("{server}__{tool}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut name: String = clean.chars().take(MAX_TOOL_NAME).collect();
    let mut n = 2;
    while taken.contains_key(&name) {
        let suffix = format!("_{n}");
        let base: String = clean.chars().take(MAX_TOOL_NAME - suffix.len()).collect();
        name = format!("{base}{suffix}");
        n += 1;
    }
    name
}

/// The assistant's message of a tool round: its text so far and every call it made.
pub(crate) fn assistant_message(text: &str, calls: &[ToolCall]) -> Message {
    let mut content = Vec::with_capacity(calls.len() + 1);
    if !text.is_empty() {
        content.push(Block::Text(text.to_string()));
    }
    content.extend(calls.iter().cloned().map(Block::ToolCall));
    Message {
        role: Role::Assistant,
        content,
    }
}

/// Runs one round of calls at once: a `tool_call` event for each first, then each
/// `tool_result` as it finishes. Returns the message of results, in the calls' order.
pub(crate) async fn run_round(
    run: &RunContext,
    agent: &str,
    agent_span: &Span,
    tools: &TurnTools,
    calls: &[ToolCall],
) -> Message {
    for call in calls {
        let (server, tool) = match tools.targets.get(&call.name) {
            Some((server, tool)) => (server.clone(), tool.clone()),
            None => (String::new(), call.name.clone()),
        };
        run.push(Event::ToolCall(ToolCallEvent {
            agent: agent.to_string(),
            call_id: call.id.clone(),
            server,
            tool,
            arguments: serde_json::from_str(&call.arguments)
                .unwrap_or_else(|_| Value::String(call.arguments.clone())),
        }));
    }
    let results = join_all(
        calls
            .iter()
            .map(|call| execute_tool(run, agent, agent_span, tools, call))
            .collect(),
    )
    .await;
    Message {
        role: Role::Tool,
        content: results.into_iter().map(Block::ToolResult).collect(),
    }
}

/// One tool call, start to `tool_result`, in an `execute_tool {tool}` span under the
/// agent's span (whose traceparent goes to the MCP server): a bad call (unknown tool,
/// arguments that are not a JSON object) and a failed one become an error result for the
/// model; the run goes on. The run's cancel signal and the tool timeout bound it.
async fn execute_tool(
    run: &RunContext,
    agent: &str,
    agent_span: &Span,
    tools: &TurnTools,
    call: &ToolCall,
) -> ToolResult {
    let started = Instant::now();
    let mut unfinished = UnfinishedCall {
        run,
        agent,
        call_id: &call.id,
        started,
        armed: true,
    };
    let target = tools.targets.get(&call.name);
    let tool_name = target.map_or(call.name.as_str(), |(_, tool)| tool.as_str());
    let mut span = genai::tool_span(agent_span, tool_name, &call.id, genai::TOOL_TYPE_EXTENSION);
    if let Some((server, _)) = target {
        span.set_str(genai::MESH_TOOL_SERVER, server);
    }
    span.set_content(genai::TOOL_CALL_ARGUMENTS, &call.arguments);
    let (ok, content, error_type) = match (target, arguments_of(call)) {
        (None, _) => (
            false,
            format!("there is no tool named \"{}\"", call.name),
            Some("unknown_tool".to_string()),
        ),
        (_, Err(why)) => (false, why, Some("invalid_arguments".to_string())),
        (Some((server, tool)), Ok(arguments)) => {
            let traceparent = span.traceparent();
            match tools
                .client
                .call_tool(
                    server,
                    tool,
                    arguments,
                    traceparent.as_deref(),
                    Box::pin(run.cancelled()),
                )
                .await
            {
                Ok(result) if result.is_error => {
                    (false, result.text(), Some(genai::TOOL_ERROR.to_string()))
                }
                Ok(result) => (true, result.text(), None),
                Err(failure) => (false, failure.message, Some(failure.error_type)),
            }
        }
    };
    unfinished.armed = false;
    match &error_type {
        Some(error_type) => span.record_error(error_type, &content),
        None => span.set_content(genai::TOOL_CALL_RESULT, &content),
    }
    span.end();
    let elapsed_ms = started.elapsed().as_millis() as u64;
    run.push(Event::ToolResult(ToolResultEvent::cut(
        agent, &call.id, ok, &content, elapsed_ms,
    )));
    ToolResult {
        call_id: call.id.clone(),
        content,
        is_error: !ok,
    }
}

/// A cancelled run drops its pipeline mid-call (the MCP client then tells the server);
/// this still gives the call its `tool_result`, so neither the page nor the snapshot
/// shows it running after the run's end.
struct UnfinishedCall<'a> {
    run: &'a RunContext,
    agent: &'a str,
    call_id: &'a str,
    started: Instant,
    armed: bool,
}

impl Drop for UnfinishedCall<'_> {
    fn drop(&mut self) {
        if self.armed {
            let elapsed_ms = self.started.elapsed().as_millis() as u64;
            self.run.push(Event::ToolResult(ToolResultEvent::cut(
                self.agent,
                self.call_id,
                false,
                "cancelled",
                elapsed_ms,
            )));
        }
    }
}

/// The call's arguments as a JSON object (no arguments at all count as `{}`).
fn arguments_of(call: &ToolCall) -> Result<Value, String> {
    if call.arguments.trim().is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    match serde_json::from_str::<Value>(&call.arguments) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err("the arguments must be a JSON object".to_string()),
        Err(e) => Err(format!("the arguments are not valid JSON: {e}")),
    }
}

/// Every future driven at once on this task (tool calls borrow the run, so they are not
/// spawned); outputs in the futures' order.
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pending: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    poll_fn(|cx| {
        let mut waiting = false;
        for (future, output) in pending.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(v) => *output = Some(v),
                    Poll::Pending => waiting = true,
                }
            }
        }
        if waiting {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_tool_names_fit_the_providers_and_map_back_uniquely() {
        let mut taken = HashMap::new();
        let a = model_tool_name("my server", "get.sum", &taken);
        assert_eq!(a, "my_server__get_sum");
        taken.insert(a.clone(), ("my server".into(), "get.sum".into()));
        let b = model_tool_name("my_server", "get_sum", &taken);
        assert_eq!(b, "my_server__get_sum_2");
        let long = model_tool_name(&"s".repeat(50), &"t".repeat(50), &taken);
        assert_eq!(long.len(), MAX_TOOL_NAME);
        taken.insert(long.clone(), (String::new(), String::new()));
        let long2 = model_tool_name(&"s".repeat(50), &"t".repeat(50), &taken);
        assert!(long2.len() <= MAX_TOOL_NAME && long2.ends_with("_2") && long2 != long);
    }

    #[test]
    fn arguments_must_be_a_json_object_or_nothing() {
        let call = |a: &str| ToolCall {
            id: "c".into(),
            name: "t".into(),
            arguments: a.into(),
        };
        assert_eq!(arguments_of(&call("")).unwrap(), serde_json::json!({}));
        assert_eq!(arguments_of(&call(r#"{"a":1}"#)).unwrap()["a"], 1);
        assert!(arguments_of(&call("[1]"))
            .unwrap_err()
            .contains("JSON object"));
        assert!(arguments_of(&call("{\"a\":"))
            .unwrap_err()
            .contains("not valid JSON"));
    }
}
