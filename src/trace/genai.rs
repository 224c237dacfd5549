//! The OpenTelemetry GenAI semantic conventions this project emits (latest
//! experimental: open-telemetry/semantic-conventions-genai, the conventions' own
//! repository since semantic-conventions v1.41, status "Development"), as constants
//! and span starters, so wiring spans into the pipeline is mechanical.
//!
//! Spans of one run, and what each carries:
//!
//! | span | kind | name | attributes |
//! | --- | --- | --- | --- |
//! | run | INTERNAL | `invoke_workflow` | `gen_ai.operation.name`=`invoke_workflow`, `gen_ai.agent.name`=`agent-mesh` (conventions v0.1.0 name a workflow with `gen_ai.agent.name`; before, `gen_ai.workflow.name`), `mesh.run.id`, `mesh.task.length`, `mesh.run.schedule`, `mesh.run.status`; `error.type` when it fails |
//! | agent turn | INTERNAL | `invoke_agent {agent}` | `gen_ai.operation.name`=`invoke_agent`, `gen_ai.agent.name`, `gen_ai.provider.name`, `gen_ai.request.model` |
//! | model call | CLIENT | `chat {model}` | `gen_ai.operation.name`=`chat`, `gen_ai.provider.name`, `gen_ai.request.model`, `gen_ai.request.max_tokens`, `gen_ai.request.stream`, `server.address`, `server.port`; after: `gen_ai.response.model`, `gen_ai.response.id`, `gen_ai.response.finish_reasons`, `gen_ai.usage.input_tokens`, `gen_ai.usage.output_tokens`, `gen_ai.response.time_to_first_chunk` (seconds), `mesh.retries`; `error.type` when it fails |
//! | tool call | INTERNAL | `execute_tool {tool}` | `gen_ai.operation.name`=`execute_tool`, `gen_ai.tool.name` (the server's name for it), `gen_ai.tool.call.id`, `gen_ai.tool.type`=`extension` (an MCP tool is run by the agent side, calling an outside system), `mesh.tool.server`; `error.type` when it fails (`tool_error` for a result with `isError`, as the MCP conventions say; `timeout`, `cancelled`, `network`, `bad_response`, `unknown_tool`, `invalid_arguments`, or a JSON-RPC error code) |
//!
//! The conventions ask for the sampling-relevant attributes (operation, provider,
//! model, agent name, server address) at span creation: the starters below set them.
//!
//! Content (`gen_ai.input.messages`, `gen_ai.output.messages`,
//! `gen_ai.system_instructions`, `gen_ai.tool.call.arguments`/`result`) is opt-in in
//! the conventions and here: set it with `Span::set_content`, which records only
//! under `MESH_TRACE_CONTENT=1`. On spans the conventions allow it as a JSON string.
//!
//! `error.type` values this project reports (low cardinality, as asked): the
//! provider error kinds (`auth`, `rate_limit`, `timeout`, `upstream`,
//! `bad_response`, `network`, `cancelled`, `config`), or the HTTP status code as a
//! string when a provider answered with one; `_OTHER` otherwise.

use super::span::{Span, SpanKind};
use super::tracer::Tracer;
use crate::model::trace_context::SpanContext;

// ---- attribute names -------------------------------------------------------------

pub const OPERATION_NAME: &str = "gen_ai.operation.name";
pub const PROVIDER_NAME: &str = "gen_ai.provider.name";
pub const AGENT_NAME: &str = "gen_ai.agent.name";
pub const AGENT_ID: &str = "gen_ai.agent.id";
pub const CONVERSATION_ID: &str = "gen_ai.conversation.id";
pub const REQUEST_MODEL: &str = "gen_ai.request.model";
pub const REQUEST_MAX_TOKENS: &str = "gen_ai.request.max_tokens";
pub const REQUEST_TEMPERATURE: &str = "gen_ai.request.temperature";
pub const REQUEST_STREAM: &str = "gen_ai.request.stream";
pub const RESPONSE_MODEL: &str = "gen_ai.response.model";
pub const RESPONSE_ID: &str = "gen_ai.response.id";
pub const RESPONSE_FINISH_REASONS: &str = "gen_ai.response.finish_reasons";
pub const RESPONSE_TIME_TO_FIRST_CHUNK: &str = "gen_ai.response.time_to_first_chunk";
pub const USAGE_INPUT_TOKENS: &str = "gen_ai.usage.input_tokens";
pub const USAGE_OUTPUT_TOKENS: &str = "gen_ai.usage.output_tokens";
pub const TOOL_NAME: &str = "gen_ai.tool.name";
pub const TOOL_CALL_ID: &str = "gen_ai.tool.call.id";
pub const TOOL_TYPE: &str = "gen_ai.tool.type";
/// Opt-in content (see the module doc): JSON strings, under `MESH_TRACE_CONTENT=1` only.
pub const INPUT_MESSAGES: &str = "gen_ai.input.messages";
pub const OUTPUT_MESSAGES: &str = "gen_ai.output.messages";
pub const SYSTEM_INSTRUCTIONS: &str = "gen_ai.system_instructions";
pub const TOOL_CALL_ARGUMENTS: &str = "gen_ai.tool.call.arguments";
pub const TOOL_CALL_RESULT: &str = "gen_ai.tool.call.result";
/// Stable general attributes.
pub const ERROR_TYPE: &str = super::span::ERROR_TYPE;
pub const SERVER_ADDRESS: &str = "server.address";
pub const SERVER_PORT: &str = "server.port";
/// This project's own attributes (no convention covers them).
pub const MESH_RUN_ID: &str = "mesh.run.id";
pub const MESH_TASK_LENGTH: &str = "mesh.task.length";
pub const MESH_RUN_SCHEDULE: &str = "mesh.run.schedule";
pub const MESH_RUN_STATUS: &str = "mesh.run.status";
pub const MESH_RETRIES: &str = "mesh.retries";
pub const MESH_TOOL_SERVER: &str = "mesh.tool.server";

// ---- values ---------------------------------------------------------------------

pub const OP_INVOKE_WORKFLOW: &str = "invoke_workflow";
pub const OP_INVOKE_AGENT: &str = "invoke_agent";
pub const OP_CHAT: &str = "chat";
pub const OP_EXECUTE_TOOL: &str = "execute_tool";
/// `gen_ai.tool.type` of an MCP tool: run by the agent side against an outside system.
pub const TOOL_TYPE_EXTENSION: &str = "extension";
/// `error.type` of a tool call whose result says `isError` (the MCP conventions' value).
pub const TOOL_ERROR: &str = "tool_error";
/// The workflow's name on the run span.
pub const WORKFLOW_NAME: &str = "agent-mesh";
/// `error.type` when nothing more specific applies.
pub const ERROR_OTHER: &str = "_OTHER";

/// `gen_ai.provider.name` for a provider id of this project: the conventions' well-known
/// value where there is one (`openai`, `anthropic`), else the id itself.
pub fn provider_name(provider_id: &'static str) -> &'static str {
    match provider_id {
        "openai" => "openai",
        "anthropic" => "anthropic",
        other => other,
    }
}

// ---- span starters --------------------------------------------------------------

/// The run's root span, under the incoming request's `traceparent` when it had one.
pub fn run_span(
    tracer: &Tracer,
    remote_parent: Option<&SpanContext>,
    run_id: &str,
    task_length: usize,
) -> Span {
    let mut span = tracer.start_span(OP_INVOKE_WORKFLOW, SpanKind::Internal, remote_parent);
    span.set_static(OPERATION_NAME, OP_INVOKE_WORKFLOW);
    span.set_static(AGENT_NAME, WORKFLOW_NAME);
    span.set_str(MESH_RUN_ID, run_id);
    span.set_int(MESH_TASK_LENGTH, task_length as i64);
    span
}

/// One agent's turn, under the run span.
pub fn agent_span(parent: &Span, agent: &str, provider: &'static str, model: &str) -> Span {
    let mut span = parent.child_named(OP_INVOKE_AGENT, agent, SpanKind::Internal);
    span.set_static(OPERATION_NAME, OP_INVOKE_AGENT);
    span.set_str(AGENT_NAME, agent);
    span.set_static(PROVIDER_NAME, provider_name(provider));
    span.set_str(REQUEST_MODEL, model);
    span
}

/// One model call (each retry is inside it, counted in `mesh.retries`). The caller
/// sends `span.traceparent()` with the request.
pub fn chat_span(
    parent: &Span,
    provider: &'static str,
    model: &str,
    max_tokens: Option<u32>,
    server: Option<(&str, u16)>,
) -> Span {
    let mut span = parent.child_named(OP_CHAT, model, SpanKind::Client);
    span.set_static(OPERATION_NAME, OP_CHAT);
    span.set_static(PROVIDER_NAME, provider_name(provider));
    span.set_str(REQUEST_MODEL, model);
    span.set_bool(REQUEST_STREAM, true);
    if let Some(n) = max_tokens {
        span.set_int(REQUEST_MAX_TOKENS, i64::from(n));
    }
    if let Some((host, port)) = server {
        span.set_str(SERVER_ADDRESS, host);
        span.set_int(SERVER_PORT, i64::from(port));
    }
    span
}

/// One tool call (MCP or built-in).
pub fn tool_span(parent: &Span, tool: &str, call_id: &str, tool_type: &'static str) -> Span {
    let mut span = parent.child_named(OP_EXECUTE_TOOL, tool, SpanKind::Internal);
    span.set_static(OPERATION_NAME, OP_EXECUTE_TOOL);
    span.set_str(TOOL_NAME, tool);
    if !call_id.is_empty() {
        span.set_str(TOOL_CALL_ID, call_id);
    }
    span.set_static(TOOL_TYPE, tool_type);
    span
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::sampler::{RootSampler, Sampler};
    use crate::trace::span::AttrValue;
    use tokio::sync::mpsc;

    #[test]
    fn the_starters_name_and_tag_spans_by_the_conventions() {
        let (tx, mut rx) = mpsc::channel(8);
        let tracer = Tracer::new(Sampler::ParentBased(RootSampler::AlwaysOn), false, tx);
        let run = run_span(&tracer, None, "r1", 42);
        let agent = agent_span(&run, "researcher", "openrouter", "m/x");
        let chat = chat_span(
            &agent,
            "openai",
            "gpt-4o",
            Some(512),
            Some(("api.openai.com", 443)),
        );
        let tool = tool_span(&agent, "search", "call_1", "function");
        drop((tool, chat, agent, run));
        let spans: Vec<_> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
        assert_eq!(
            names,
            [
                "execute_tool search",
                "chat gpt-4o",
                "invoke_agent researcher",
                "invoke_workflow"
            ]
        );
        let attr = |i: usize, k: &str| {
            spans[i]
                .attributes
                .iter()
                .find(|kv| kv.key == k)
                .map(|kv| kv.value.clone())
        };
        assert_eq!(attr(1, OPERATION_NAME), Some(AttrValue::Str("chat".into())));
        assert_eq!(
            attr(1, PROVIDER_NAME),
            Some(AttrValue::Str("openai".into()))
        );
        assert_eq!(attr(1, REQUEST_MAX_TOKENS), Some(AttrValue::Int(512)));
        assert_eq!(attr(1, SERVER_PORT), Some(AttrValue::Int(443)));
        assert_eq!(spans[1].kind, SpanKind::Client);
        assert_eq!(
            attr(2, AGENT_NAME),
            Some(AttrValue::Str("researcher".into()))
        );
        assert_eq!(attr(3, MESH_TASK_LENGTH), Some(AttrValue::Int(42)));
        assert_eq!(attr(0, TOOL_CALL_ID), Some(AttrValue::Str("call_1".into())));
        assert_eq!(spans[0].parent_span_id, Some(spans[2].context.span_id));
        assert_eq!(spans[2].parent_span_id, Some(spans[3].context.span_id));
    }
}
