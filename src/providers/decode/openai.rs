//! The Chat Completions stream decoder: text, `delta.tool_calls` fragments, usage,
//! finish reasons and mid-stream errors.

use super::fast_chunk::{fast_chunk, FastChunk};
use super::{bad, upstream, ChunkDecoder, Delta, Flow, ToolCallFragment};
use crate::model::error_kind::ErrorKind;
use crate::model::events::Usage;
use crate::providers::call::CallOutcome;
use crate::providers::error::ProviderError;
use crate::providers::sse::SseEvent;
use serde_json::Value;

/// Chat Completions chunks (OpenRouter, Nous, OpenAI, Ollama, vLLM, llama.cpp).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct OpenAiDecoder {
    finish_reason: Option<String>,
    usage: Option<Usage>,
    cost_usd: Option<f64>,
}

impl ChunkDecoder for OpenAiDecoder {
    fn event(
        &mut self,
        event: &SseEvent,
        emit: &mut dyn FnMut(Delta<'_>),
    ) -> Result<Flow, ProviderError> {
        let data = event.data.trim();
        if data == "[DONE]" {
            return Ok(Flow::Finished);
        }
        if data.is_empty() {
            return Ok(Flow::More);
        }
        match fast_chunk(data) {
            Some(chunk) => self.fast_event(chunk, emit),
            None => self.value_event(data, emit),
        }
    }

    fn saw_finish(&self) -> bool {
        self.finish_reason.is_some()
    }

    fn outcome(&self) -> CallOutcome {
        let mut outcome =
            CallOutcome::new(self.finish_reason.as_deref().unwrap_or("stop"), self.usage);
        outcome.cost_usd = self.cost_usd;
        outcome
    }
}

impl OpenAiDecoder {
    pub(super) fn fast_event(
        &mut self,
        chunk: FastChunk<'_>,
        emit: &mut dyn FnMut(Delta<'_>),
    ) -> Result<Flow, ProviderError> {
        if let Some(choice) = chunk.choices {
            if let Some(text) = choice.delta.and_then(|d| d.content) {
                if !text.is_empty() {
                    emit(Delta::Text(&text));
                }
            }
            if let Some(reason) = choice.finish_reason {
                if reason == "error" {
                    return Err(upstream(
                        "the provider ended the answer with an error (finish_reason \"error\")",
                    ));
                }
                emit(Delta::Finish(&reason));
                self.finish_reason = Some(reason.into_owned());
            }
        }
        Ok(Flow::More)
    }

    /// The general path: any JSON object, read leniently through a `Value`.
    pub(super) fn value_event(
        &mut self,
        data: &str,
        emit: &mut dyn FnMut(Delta<'_>),
    ) -> Result<Flow, ProviderError> {
        let chunk: Value =
            serde_json::from_str(data).map_err(|e| bad(format!("unparsable stream chunk: {e}")))?;
        if let Some(err) = chunk.get("error").filter(|e| !e.is_null()) {
            return Err(chunk_error(err));
        }
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            let n = |k: &str| usage.get(k).and_then(Value::as_u64).unwrap_or(0);
            let counted = Usage {
                input_tokens: n("prompt_tokens"),
                output_tokens: n("completion_tokens"),
            };
            self.usage = Some(counted);
            emit(Delta::Usage(counted));
            if let Some(cost) = usage.get("cost").and_then(Value::as_f64) {
                self.cost_usd = Some(cost);
            }
        }
        let choice = chunk
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|c| c.first());
        if let Some(choice) = choice {
            if let Some(text) = choice.pointer("/delta/content").and_then(Value::as_str) {
                if !text.is_empty() {
                    emit(Delta::Text(text));
                }
            }
            if let Some(calls) = choice
                .pointer("/delta/tool_calls")
                .and_then(Value::as_array)
            {
                tool_call_fragments(calls, emit);
            }
            if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
                if reason == "error" {
                    return Err(upstream(
                        "the provider ended the answer with an error (finish_reason \"error\")",
                    ));
                }
                emit(Delta::Finish(reason));
                self.finish_reason = Some(reason.to_string());
            }
        }
        Ok(Flow::More)
    }
}

/// `delta.tool_calls`: one fragment per entry that carries anything. Entries without
/// an `index` take their position (several calls in one chunk).
fn tool_call_fragments(calls: &[Value], emit: &mut dyn FnMut(Delta<'_>)) {
    for (position, call) in calls.iter().enumerate() {
        let index = call
            .get("index")
            .and_then(Value::as_u64)
            .and_then(|i| u32::try_from(i).ok())
            .unwrap_or(u32::try_from(position).unwrap_or(u32::MAX));
        let id = call.get("id").and_then(Value::as_str);
        let name = call.pointer("/function/name").and_then(Value::as_str);
        let arguments = call
            .pointer("/function/arguments")
            .and_then(Value::as_str)
            .unwrap_or("");
        if id.is_some() || name.is_some() || !arguments.is_empty() {
            emit(Delta::ToolCall(ToolCallFragment {
                index,
                id,
                name,
                arguments,
            }));
        }
    }
}

/// A mid-stream `{"error": {...}}` object; `code` may be a string or a number.
fn chunk_error(err: &Value) -> ProviderError {
    let message = err
        .get("message")
        .and_then(Value::as_str)
        .or_else(|| err.as_str())
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .unwrap_or("the provider reported an error mid-stream")
        .to_string();
    let code = match err.get("code") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let mut e = upstream(match &code {
        Some(c) => format!("{message} (code {c})"),
        None => message,
    });
    e.status = err
        .get("code")
        .and_then(Value::as_u64)
        .and_then(|n| u16::try_from(n).ok())
        .filter(|n| (400..600).contains(n));
    if e.status == Some(429) || code.as_deref() == Some("rate_limit_exceeded") {
        e.kind = ErrorKind::RateLimit;
    }
    e
}
