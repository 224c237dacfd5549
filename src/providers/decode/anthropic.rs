//! The Anthropic Messages stream decoder: text, `tool_use` blocks with their
//! `input_json_delta` fragments, usage, stop reasons and error events.

use super::{bad, upstream, ChunkDecoder, Delta, Flow, ToolCallFragment};
use crate::model::error_kind::ErrorKind;
use crate::model::events::Usage;
use crate::providers::call::CallOutcome;
use crate::providers::error::ProviderError;
use crate::providers::sse::SseEvent;
use serde_json::Value;

/// Anthropic Messages streaming events.
#[derive(Debug, Default)]
pub struct AnthropicDecoder {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    stop_reason: Option<String>,
    /// Indexes of the content blocks that are `tool_use` (their JSON deltas are calls).
    tool_blocks: Vec<u32>,
}

fn block_index(data: &Value) -> Option<u32> {
    data.get("index")
        .and_then(Value::as_u64)
        .and_then(|i| u32::try_from(i).ok())
}

impl AnthropicDecoder {
    fn usage(&self) -> Option<Usage> {
        match (self.input_tokens, self.output_tokens) {
            (None, None) => None,
            (i, o) => Some(Usage {
                input_tokens: i.unwrap_or(0),
                output_tokens: o.unwrap_or(0),
            }),
        }
    }

    fn emit_usage(&self, emit: &mut dyn FnMut(Delta<'_>)) {
        if let Some(u) = self.usage() {
            emit(Delta::Usage(u));
        }
    }
}

impl ChunkDecoder for AnthropicDecoder {
    fn event(
        &mut self,
        event: &SseEvent,
        emit: &mut dyn FnMut(Delta<'_>),
    ) -> Result<Flow, ProviderError> {
        if event.data.trim().is_empty() {
            return Ok(Flow::More);
        }
        let data: Value = serde_json::from_str(&event.data)
            .map_err(|e| bad(format!("unparsable stream event: {e}")))?;
        // The event name is authoritative; `type` inside the data repeats it.
        let kind = if event.event != "message" {
            event.event.as_str()
        } else {
            data.get("type").and_then(Value::as_str).unwrap_or("")
        };
        match kind {
            "message_start" => {
                let usage = data.pointer("/message/usage");
                self.input_tokens = usage
                    .and_then(|u| u.get("input_tokens"))
                    .and_then(Value::as_u64);
                self.output_tokens = usage
                    .and_then(|u| u.get("output_tokens"))
                    .and_then(Value::as_u64);
                self.emit_usage(emit);
            }
            "content_block_start"
                if data.pointer("/content_block/type").and_then(Value::as_str)
                    == Some("tool_use") =>
            {
                if let Some(index) = block_index(&data) {
                    self.tool_blocks.push(index);
                    emit(Delta::ToolCall(ToolCallFragment {
                        index,
                        id: data.pointer("/content_block/id").and_then(Value::as_str),
                        name: data.pointer("/content_block/name").and_then(Value::as_str),
                        arguments: "",
                    }));
                }
            }
            "content_block_delta" => match data.pointer("/delta/type").and_then(Value::as_str) {
                Some("text_delta") => {
                    if let Some(text) = data.pointer("/delta/text").and_then(Value::as_str) {
                        if !text.is_empty() {
                            emit(Delta::Text(text));
                        }
                    }
                }
                Some("input_json_delta") => {
                    let partial = data
                        .pointer("/delta/partial_json")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    match block_index(&data) {
                        Some(index) if !partial.is_empty() && self.tool_blocks.contains(&index) => {
                            emit(Delta::ToolCall(ToolCallFragment {
                                index,
                                id: None,
                                name: None,
                                arguments: partial,
                            }));
                        }
                        _ => {}
                    }
                }
                _ => {}
            },
            "message_delta" => {
                // A running total: keep the last one.
                if let Some(n) = data.pointer("/usage/output_tokens").and_then(Value::as_u64) {
                    self.output_tokens = Some(n);
                }
                if let Some(n) = data.pointer("/usage/input_tokens").and_then(Value::as_u64) {
                    self.input_tokens = Some(n);
                }
                if data.get("usage").is_some_and(Value::is_object) {
                    self.emit_usage(emit);
                }
                if let Some(r) = data.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    emit(Delta::Finish(r));
                    self.stop_reason = Some(r.to_string());
                }
            }
            "message_stop" => return Ok(Flow::Finished),
            "error" => {
                let etype = data
                    .pointer("/error/type")
                    .and_then(Value::as_str)
                    .unwrap_or("error");
                let message = data
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .unwrap_or("the provider reported an error");
                let mut e = upstream(format!("{message} ({etype})"));
                if etype == "rate_limit_error" {
                    e.kind = ErrorKind::RateLimit;
                }
                return Err(e);
            }
            // ping, text block starts, block stops and future event types carry
            // nothing we relay.
            _ => {}
        }
        Ok(Flow::More)
    }

    fn saw_finish(&self) -> bool {
        self.stop_reason.is_some()
    }

    fn outcome(&self) -> CallOutcome {
        CallOutcome::new(
            self.stop_reason.as_deref().unwrap_or("end_turn"),
            self.usage(),
        )
    }
}
