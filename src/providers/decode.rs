//! Turning provider stream events into text deltas, usage and typed errors. Pure
//! functions over parsed SSE events, so unit tests and fuzz targets call the same code.

use super::error::ProviderError;
use super::sse::SseEvent;
use super::CallOutcome;
use crate::model::error_kind::ErrorKind;
use crate::model::events::Usage;
use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;

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
        emit: &mut dyn FnMut(&str),
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

/// The shape of nearly every chunk, borrowed from the event's data: the first choice's
/// `delta.content` and `finish_reason`, nothing else kept. Decoding a `Value` tree
/// instead cost one ordered map per object (a SipHash per key), an owned `String` per
/// key and value, and a `pointer()` that allocates per path segment: more than half of
/// the server's user-space time per relayed token.
#[derive(Deserialize)]
struct FastChunk<'a> {
    #[serde(default, borrow, deserialize_with = "first_choice")]
    choices: Option<FastChoice<'a>>,
    #[serde(default)]
    error: Option<IgnoredAny>,
    #[serde(default)]
    usage: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct FastChoice<'a> {
    #[serde(default, borrow)]
    delta: Option<FastDelta<'a>>,
    #[serde(default, borrow, deserialize_with = "borrowed_str")]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct FastDelta<'a> {
    #[serde(default, borrow, deserialize_with = "borrowed_str")]
    content: Option<Cow<'a, str>>,
}

/// A string or null, borrowed from the input unless it holds escapes. (`#[serde(borrow)]`
/// alone borrows a bare `Cow<str>` field, not one inside an `Option`: that one was
/// always copied into a new String.)
fn borrowed_str<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    struct OrNull;
    struct Str;
    impl<'de> Visitor<'de> for OrNull {
        type Value = Option<Cow<'de, str>>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a string, or null")
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_str(Str).map(Some)
        }
    }
    impl<'de> Visitor<'de> for Str {
        type Value = Cow<'de, str>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a string")
        }
        fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Cow::Borrowed(v))
        }
        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Cow::Owned(v.to_owned()))
        }
        fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
            Ok(Cow::Owned(v))
        }
    }
    d.deserialize_option(OrNull)
}

/// `choices`: null, or an array whose first element is kept and the rest skipped.
fn first_choice<'de, D: Deserializer<'de>>(d: D) -> Result<Option<FastChoice<'de>>, D::Error> {
    struct OrNull;
    struct First;
    impl<'de> Visitor<'de> for OrNull {
        type Value = Option<FastChoice<'de>>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an array of choices, or null")
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_seq(First)
        }
    }
    impl<'de> Visitor<'de> for First {
        type Value = Option<FastChoice<'de>>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an array of choices")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let first = seq.next_element::<FastChoice<'de>>()?;
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(first)
        }
    }
    d.deserialize_option(OrNull)
}

/// The fast shape, or `None` to let the general path decide. It declines anything
/// unusual — not an object, an `error` or `usage` member, a field of an unexpected
/// type, a duplicate key — so for those inputs nothing changes. Where it accepts, it
/// yields what the general path yields, with one deliberate difference: fields it does
/// not read are checked for JSON syntax only, so a chunk whose *unread* fields hold a
/// number beyond f64 or a lone surrogate escape (both valid JSON, RFC 8259 §6, §8.2)
/// is relayed instead of failing the call as unparsable.
fn fast_chunk(data: &str) -> Option<FastChunk<'_>> {
    if !data.starts_with('{') {
        return None;
    }
    let chunk: FastChunk<'_> = serde_json::from_str(data).ok()?;
    if chunk.error.is_some() || chunk.usage.is_some() {
        return None;
    }
    Some(chunk)
}

impl OpenAiDecoder {
    fn fast_event(
        &mut self,
        chunk: FastChunk<'_>,
        emit: &mut dyn FnMut(&str),
    ) -> Result<Flow, ProviderError> {
        if let Some(choice) = chunk.choices {
            if let Some(text) = choice.delta.and_then(|d| d.content) {
                if !text.is_empty() {
                    emit(&text);
                }
            }
            if let Some(reason) = choice.finish_reason {
                if reason == "error" {
                    return Err(upstream(
                        "the provider ended the answer with an error (finish_reason \"error\")",
                    ));
                }
                self.finish_reason = Some(reason.into_owned());
            }
        }
        Ok(Flow::More)
    }

    /// The general path: any JSON object, read leniently through a `Value`.
    fn value_event(
        &mut self,
        data: &str,
        emit: &mut dyn FnMut(&str),
    ) -> Result<Flow, ProviderError> {
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

    /// Every chunk the fast path accepts decodes exactly as the `Value` path does, and
    /// the unusual shapes are left to the `Value` path.
    #[test]
    fn fast_path_agrees_with_the_value_path() {
        let accepted = [
            r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#,
            r#"{"choices":[{"delta":{"content":"Hello"}}]}"#,
            r#"{"choices":[{"delta":{"content":"line\nbreak \"q\" \\ \u00e9 \ud83d\ude00 ü"}}]}"#,
            r#"{"choices":[{"delta":{"content":null}}]}"#,
            r#"{"choices":[{"delta":{}}]}"#,
            r#"{"choices":[{}]}"#,
            r#"{"choices":[]}"#,
            r#"{"choices":null}"#,
            r#"{}"#,
            r#"{"error":null,"usage":null,"choices":[{"delta":{"content":"x"}}]}"#,
            r#"{"choices":[{"delta":{"content":"a"}},7,"junk",{"delta":5}]}"#,
            r#"{"choices":[{"delta":{"content":"end"},"finish_reason":"stop"}]}"#,
            r#"{"choices":[{"delta":{},"finish_reason":"length"}]}"#,
            r#"{"choices":[{"delta":{},"finish_reason":"error"}]}"#,
            r#"{"choices":[{"delta":{"content":"x","tool_calls":[{"id":"t"}]},"finish_reason":null}],"system_fingerprint":"fp"}"#,
        ];
        let declined = [
            r#"[{"choices":[{"delta":{"content":"x"}}]}]"#,
            r#""text""#,
            r#"{"choices":[null]}"#,
            r#"{"choices":{"0":{"delta":{"content":"x"}}}}"#,
            r#"{"choices":[{"delta":"x"}]}"#,
            r#"{"choices":[{"delta":{"content":5}}]}"#,
            r#"{"choices":[{"delta":{"content":"a","content":"b"}}]}"#,
            r#"{"choices":[{"finish_reason":1}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"cost":0.5}}"#,
            r#"{"choices":[],"usage":7}"#,
            r#"{"error":{"message":"boom","code":502}}"#,
            r#"{"error":"plain"}"#,
            r#"{not json"#,
            r#"{"choices":[]} trailing"#,
        ];
        for data in accepted.iter().chain(declined.iter()) {
            let chunk = fast_chunk(data);
            assert_eq!(
                chunk.is_some(),
                accepted.contains(data),
                "fast path acceptance of {data}"
            );
            let mut slow = OpenAiDecoder::default();
            let mut slow_text = String::new();
            let slow_flow = slow.value_event(data, &mut |t| slow_text.push_str(t));
            let Some(chunk) = chunk else { continue };
            let mut fast = OpenAiDecoder::default();
            let mut fast_text = String::new();
            let fast_flow = fast.fast_event(chunk, &mut |t| fast_text.push_str(t));
            assert_eq!(fast_text, slow_text, "{data}");
            assert_eq!(fast, slow, "{data}");
            match (fast_flow, slow_flow) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{data}"),
                (Err(a), Err(b)) => {
                    assert_eq!((a.kind, a.message), (b.kind, b.message), "{data}")
                }
                (a, b) => panic!("{data}: fast {a:?}, value {b:?}"),
            }
        }
    }

    #[test]
    fn fast_path_borrows_unescaped_text() {
        let data = r#"{"choices":[{"delta":{"content":"plain"},"finish_reason":"stop"}]}"#;
        let choice = fast_chunk(data).and_then(|c| c.choices).unwrap();
        let content = choice.delta.and_then(|d| d.content).unwrap();
        assert!(matches!(content, Cow::Borrowed("plain")));
        assert!(matches!(choice.finish_reason, Some(Cow::Borrowed("stop"))));
        let data = r#"{"choices":[{"delta":{"content":"a\nb"}}]}"#;
        let content = fast_chunk(data)
            .and_then(|c| c.choices)
            .and_then(|c| c.delta)
            .and_then(|d| d.content)
            .unwrap();
        assert_eq!(content, "a\nb");
        assert!(matches!(content, Cow::Owned(_)));
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
