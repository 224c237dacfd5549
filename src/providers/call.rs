//! The call contract every provider speaks: a list of messages (role plus content
//! blocks: text, tool call, tool result) and optional tool definitions in; typed deltas
//! (text, tool-call fragment, usage, finish) out, then an outcome or a typed error.

use super::error::ProviderError;
use crate::model::agent::AgentKind;
use crate::model::events::Usage;
use crate::model::run_config::CallTimeouts;
use std::time::Duration;

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
    /// Results of the assistant's tool calls.
    Tool,
}

/// One tool call the model made: `arguments` is the JSON text it sent, unparsed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// What a tool answered to one call, sent back to the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolResult {
    pub call_id: String,
    pub content: String,
    pub is_error: bool,
}

/// One piece of a message's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    Text(String),
    ToolCall(ToolCall),
    ToolResult(ToolResult),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub role: Role,
    pub content: Vec<Block>,
}

impl Message {
    pub fn text(role: Role, text: impl Into<String>) -> Message {
        Message {
            role,
            content: vec![Block::Text(text.into())],
        }
    }

    pub fn system(text: impl Into<String>) -> Message {
        Message::text(Role::System, text)
    }

    pub fn user(text: impl Into<String>) -> Message {
        Message::text(Role::User, text)
    }

    /// The message's text blocks, in order.
    pub fn texts(&self) -> impl Iterator<Item = &str> {
        self.content.iter().filter_map(|b| match b {
            Block::Text(t) => Some(t.as_str()),
            _ => None,
        })
    }

    /// The text when the message is exactly one text block (how every text-only call
    /// is sent: a plain string `content`, as before tools existed).
    pub fn only_text(&self) -> Option<&str> {
        match self.content.as_slice() {
            [Block::Text(t)] => Some(t),
            _ => None,
        }
    }
}

/// A tool the model may call: `input_schema` is a JSON Schema object.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub input_schema: serde_json::Value,
}

/// Everything one model call needs. Real adapters send `messages` and `tools`; the
/// structured fields let the offline provider answer like a model that read them.
#[derive(Debug, Clone, Copy)]
pub struct CallRequest<'a> {
    pub agent: &'a str,
    pub kind: AgentKind,
    /// The provider-native model id.
    pub model: &'a str,
    /// The conversation so far: today a system and a user message.
    pub messages: &'a [Message],
    /// The tools the model may call (none: a text-only call).
    pub tools: &'a [ToolSpec],
    /// The model must answer in text now (`tool_choice` none): `tools` stay listed only
    /// because the conversation holds earlier calls, which Anthropic's API refuses to
    /// take without the tools defined.
    pub answer_without_tools: bool,
    pub max_tokens: u32,
    pub timeouts: CallTimeouts,
    pub task: &'a str,
    pub subtask: Option<&'a str>,
    /// Planner only: the specialists to choose from, `(name, one-line role)`.
    pub candidates: &'a [(String, String)],
    /// What this agent was given from earlier agents, `(title, text)`.
    pub context: &'a [(String, String)],
    /// The earlier turns of the conversation (already in the user message), oldest first.
    pub history: &'a [crate::model::conversation::Turn],
    /// The W3C `traceparent` of the call's `chat` span, sent upstream so a provider
    /// that traces can join the run's trace; `None` when there is no trace.
    pub traceparent: Option<&'a str>,
}

impl CallRequest<'_> {
    /// Every system message's text, joined by blank lines (one today).
    pub fn system_text(&self) -> String {
        let mut texts = self
            .messages
            .iter()
            .filter(|m| m.role == Role::System)
            .flat_map(Message::texts);
        let first = texts.next().unwrap_or("").to_string();
        texts.fold(first, |mut all, t| {
            all.push_str("\n\n");
            all.push_str(t);
            all
        })
    }

    /// The messages after the system ones, in order.
    pub fn conversation(&self) -> impl Iterator<Item = &Message> {
        self.messages.iter().filter(|m| m.role != Role::System)
    }
}

/// A piece of one streamed tool call. Fragments of one call share `index`; the first
/// carries `id` and `name`, and `arguments` pieces join into the JSON text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolCallFragment<'a> {
    pub index: u32,
    pub id: Option<&'a str>,
    pub name: Option<&'a str>,
    pub arguments: &'a str,
}

/// What a decoder found in one upstream event, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Delta<'a> {
    /// A piece of model text, in order, byte for byte.
    Text(&'a str),
    ToolCall(ToolCallFragment<'a>),
    /// Token counts (possibly a running total: the last one counts).
    Usage(Usage),
    /// Why the model stopped (`stop`, `length`, `tool_calls`, `end_turn`, `tool_use`…).
    Finish(&'a str),
}

#[derive(Debug, Clone, PartialEq)]
pub struct CallOutcome {
    pub finish_reason: String,
    pub usage: Option<Usage>,
    pub cost_usd: Option<f64>,
    /// The complete tool calls the model made, in order (empty for a text answer).
    pub tool_calls: Vec<ToolCall>,
}

impl CallOutcome {
    pub fn new(finish_reason: impl Into<String>, usage: Option<Usage>) -> CallOutcome {
        CallOutcome {
            finish_reason: finish_reason.into(),
            usage,
            cost_usd: None,
            tool_calls: Vec::new(),
        }
    }

    /// Whether the model asked for tools: any emitted call makes it a tool turn, even
    /// when the finish reason says `stop` (as some servers send).
    pub fn wants_tools(&self) -> bool {
        !self.tool_calls.is_empty()
    }
}

/// Receives a call's output as it streams.
pub trait TokenSink: Send {
    /// A piece of model text, in order, byte for byte.
    fn token(&mut self, text: &str);
    /// A piece of a tool call as it streams (complete calls are in the outcome).
    fn tool_call(&mut self, _fragment: &ToolCallFragment<'_>) {}
    /// The call failed before its first output and will be tried again after `delay`.
    fn retrying(&mut self, attempt: u32, delay: Duration, error: &ProviderError);
    /// The provider already has as many calls in flight as it takes: this one waits
    /// in agent-mesh's queue (`why` says so) until one ends.
    fn queued(&mut self, _why: &str) {}
}
