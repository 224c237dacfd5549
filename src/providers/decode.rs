//! Turning provider stream events into text deltas, usage and typed errors. Pure
//! functions over parsed SSE events, so unit tests and fuzz targets call the same code.

use super::error::{ErrorKind, ProviderError};
use super::sse::SseEvent;
use super::CallOutcome;
use crate::events::Usage;
use serde_json::Value;

/// What one upstream event meant for the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep reading.
    More,
    /// The provider said the answer is complete.
    Finished,
}

/// A decoder for one provider wire format.
pub trait ChunkDecoder: Send {
    /// Handles one event; `emit` receives each piece of model text in order.
    fn event(
        &mut self,
        event: &SseEvent,
        emit: &mut dyn FnMut(&str),
    ) -> Result<Flow, ProviderError>;
    /// Whether the stream may end without an explicit end marker (it reported a finish reason).
    fn saw_finish(&self) -> bool;
    fn outcome(&self) -> CallOutcome;
}

fn bad(message: impl Into<String>) -> ProviderError {
    ProviderError::new(ErrorKind::BadResponse, message)
}

fn upstream(message: impl Into<String>) -> ProviderError {
    ProviderError::new(ErrorKind::Upstream, message)
}

/// Chat Completions chunks (OpenRouter, Nous, OpenAI, Ollama, vLLM, llama.cpp).
#[derive(Debug, Default)]
pub struct OpenAiDecoder {
    finish_reason: Option<String>,
    usage: Option<Usage>,
    cost_usd: Option<f64>,
}

impl ChunkDecoder for OpenAiDecoder {
    fn event(
        &mut self,
        event: &SseEvent,
        emit: &mut dyn FnMut(&str),
    ) -> Result<Flow, ProviderError> {
        let data = event.data.trim();
        if data == "[DONE]" {
            return Ok(Flow::Finished);
        }
        if data.is_empty() {
            return Ok(Flow::More);
        }
        let chunk: Value =
            serde_json::from_str(data).map_err(|e| bad(format!("unparsable stream chunk: {e}")))?;
        if let Some(err) = chunk.get("error").filter(|e| !e.is_null()) {
            return Err(chunk_error(err));
        }
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            let n = |k: &str| usage.get(k).and_then(Value::as_u64).unwrap_or(0);
            self.usage = Some(Usage {
                input_tokens: n("prompt_tokens"),
                output_tokens: n("completion_tokens"),
            });
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
                    emit(text);
                }
            }
            if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
                if reason == "error" {
                    return Err(upstream(
                        "the provider ended the answer with an error (finish_reason \"error\")",
                    ));
                }
                self.finish_reason = Some(reason.to_string());
            }
        }
        Ok(Flow::More)
    }

    fn saw_finish(&self) -> bool {
        self.finish_reason.is_some()
    }

    fn outcome(&self) -> CallOutcome {
        CallOutcome {
            finish_reason: self
                .finish_reason
                .clone()
                .unwrap_or_else(|| "stop".to_string()),
            usage: self.usage,
            cost_usd: self.cost_usd,
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

/// Anthropic Messages streaming events.
#[derive(Debug, Default)]
pub struct AnthropicDecoder {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    stop_reason: Option<String>,
}

impl ChunkDecoder for AnthropicDecoder {
    fn event(
        &mut self,
        event: &SseEvent,
        emit: &mut dyn FnMut(&str),
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
            }
            "content_block_delta"
                if data.pointer("/delta/type").and_then(Value::as_str) == Some("text_delta") =>
            {
                if let Some(text) = data.pointer("/delta/text").and_then(Value::as_str) {
                    if !text.is_empty() {
                        emit(text);
                    }
                }
            }
            "message_delta" => {
                if let Some(r) = data.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.stop_reason = Some(r.to_string());
                }
                // A running total: keep the last one.
                if let Some(n) = data.pointer("/usage/output_tokens").and_then(Value::as_u64) {
                    self.output_tokens = Some(n);
                }
                if let Some(n) = data.pointer("/usage/input_tokens").and_then(Value::as_u64) {
                    self.input_tokens = Some(n);
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
            // ping, content_block_start/stop and future event types carry nothing we relay.
            _ => {}
        }
        Ok(Flow::More)
    }

    fn saw_finish(&self) -> bool {
        self.stop_reason.is_some()
    }

    fn outcome(&self) -> CallOutcome {
        let usage = match (self.input_tokens, self.output_tokens) {
            (None, None) => None,
            (i, o) => Some(Usage {
                input_tokens: i.unwrap_or(0),
                output_tokens: o.unwrap_or(0),
            }),
        };
        CallOutcome {
            finish_reason: self
                .stop_reason
                .clone()
                .unwrap_or_else(|| "end_turn".to_string()),
            usage,
            cost_usd: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.to_string(),
            data: data.to_string(),
            id: None,
        }
    }

    fn run(
        decoder: &mut dyn ChunkDecoder,
        events: &[SseEvent],
    ) -> (String, Result<Flow, ProviderError>) {
        let mut text = String::new();
        let mut last = Ok(Flow::More);
        for e in events {
            last = decoder.event(e, &mut |t| text.push_str(t));
            if !matches!(last, Ok(Flow::More)) {
                break;
            }
        }
        (text, last)
    }

    #[test]
    fn openai_text_usage_cost_and_done() {
        let mut d = OpenAiDecoder::default();
        let (text, flow) = run(
            &mut d,
            &[
                ev("message", r#"{"choices":[{"delta":{"role":"assistant"}}]}"#),
                ev("message", r#"{"choices":[{"delta":{"content":"Hel"}}]}"#),
                ev("message", r#"{"choices":[{"delta":{"content":null}}]}"#),
                ev("message", r#"{"choices":[]}"#),
                ev(
                    "message",
                    r#"{"choices":[{"delta":{"content":"lo"},"finish_reason":"stop"}]}"#,
                ),
                ev(
                    "message",
                    r#"{"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":2,"cost":0.00042}}"#,
                ),
                ev("message", "[DONE]"),
            ],
        );
        assert_eq!(text, "Hello");
        assert_eq!(flow.unwrap(), Flow::Finished);
        let out = d.outcome();
        assert_eq!(out.finish_reason, "stop");
        assert_eq!(
            out.usage,
            Some(Usage {
                input_tokens: 12,
                output_tokens: 2
            })
        );
        assert_eq!(out.cost_usd, Some(0.00042));
    }

    #[test]
    fn openai_mid_stream_errors_with_string_or_numeric_codes() {
        for (data, kind) in [
            (
                r#"{"error":{"message":"Provider overloaded","code":502}}"#,
                ErrorKind::Upstream,
            ),
            (
                r#"{"error":{"message":"slow down","code":"rate_limit_exceeded"}}"#,
                ErrorKind::RateLimit,
            ),
            (
                r#"{"error":{"message":"boom","code":"server_error"}}"#,
                ErrorKind::Upstream,
            ),
            (
                r#"{"choices":[{"delta":{},"finish_reason":"error"}]}"#,
                ErrorKind::Upstream,
            ),
        ] {
            let mut d = OpenAiDecoder::default();
            let (_, flow) = run(
                &mut d,
                &[
                    ev("message", r#"{"choices":[{"delta":{"content":"a"}}]}"#),
                    ev("message", data),
                ],
            );
            assert_eq!(flow.unwrap_err().kind, kind, "{data}");
        }
        let mut d = OpenAiDecoder::default();
        let (_, flow) = run(&mut d, &[ev("message", "{not json")]);
        assert_eq!(flow.unwrap_err().kind, ErrorKind::BadResponse);
    }

    #[test]
    fn anthropic_full_event_sequence() {
        let mut d = AnthropicDecoder::default();
        let (text, flow) = run(
            &mut d,
            &[
                ev(
                    "message_start",
                    r#"{"type":"message_start","message":{"usage":{"input_tokens":25,"output_tokens":1}}}"#,
                ),
                ev(
                    "content_block_start",
                    r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
                ),
                ev("ping", r#"{"type":"ping"}"#),
                ev(
                    "content_block_delta",
                    r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi "}}"#,
                ),
                ev(
                    "content_block_delta",
                    r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{}"}}"#,
                ),
                ev(
                    "content_block_delta",
                    r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"there"}}"#,
                ),
                ev(
                    "content_block_stop",
                    r#"{"type":"content_block_stop","index":0}"#,
                ),
                ev(
                    "message_delta",
                    r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":5}}"#,
                ),
                ev(
                    "message_delta",
                    r#"{"type":"message_delta","delta":{},"usage":{"output_tokens":7}}"#,
                ),
                ev("brand_new_event", r#"{"type":"brand_new_event"}"#),
                ev("message_stop", r#"{"type":"message_stop"}"#),
            ],
        );
        assert_eq!(text, "Hi there");
        assert_eq!(flow.unwrap(), Flow::Finished);
        let out = d.outcome();
        assert_eq!(out.finish_reason, "end_turn");
        assert_eq!(
            out.usage,
            Some(Usage {
                input_tokens: 25,
                output_tokens: 7
            })
        );
    }

    #[test]
    fn anthropic_error_events() {
        for (etype, kind) in [
            ("overloaded_error", ErrorKind::Upstream),
            ("rate_limit_error", ErrorKind::RateLimit),
            ("api_error", ErrorKind::Upstream),
        ] {
            let mut d = AnthropicDecoder::default();
            let data = format!(
                r#"{{"type":"error","error":{{"type":"{etype}","message":"Overloaded"}}}}"#
            );
            let (_, flow) = run(&mut d, &[ev("error", &data)]);
            let e = flow.unwrap_err();
            assert_eq!(e.kind, kind);
            assert!(e.message.contains("Overloaded") && e.message.contains(etype));
        }
    }

    #[test]
    fn regression_empty_error_message_still_says_something() {
        // Found by the chunk_decoders fuzz target: `{"error":""}` ended the call
        // with an empty message.
        for data in [
            r#"{"error":""}"#,
            r#"{"error":{"message":""}}"#,
            r#"{"error":{"message":"  "}}"#,
        ] {
            let mut d = OpenAiDecoder::default();
            let e = d.event(&ev("message", data), &mut |_| {}).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Upstream);
            assert!(
                e.message.contains("reported an error"),
                "{data}: {}",
                e.message
            );
        }
    }
}
