//! The decoders' unit tests: text, usage, errors, the fast path, and tool-call
//! fragments in both wire formats.

use super::fast_chunk::fast_chunk;
use super::*;
use crate::model::events::Usage;
use crate::providers::call::ToolCall;
use crate::providers::tool_calls::ToolCallAccumulator;
use std::borrow::Cow;

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
        last = decoder.event(e, &mut |d| {
            if let Delta::Text(t) = d {
                text.push_str(t)
            }
        });
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
        r#"{"choices":[{"delta":{"content":"x","tool_calls":[{"id":"t"}]},"finish_reason":null}],"system_fingerprint":"fp"}"#,
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
        let slow_flow = slow.value_event(data, &mut |d| slow_text.push_str(&format!("{d:?}")));
        let Some(chunk) = chunk else { continue };
        let mut fast = OpenAiDecoder::default();
        let mut fast_text = String::new();
        let fast_flow = fast.fast_event(chunk, &mut |d| fast_text.push_str(&format!("{d:?}")));
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
        let data =
            format!(r#"{{"type":"error","error":{{"type":"{etype}","message":"Overloaded"}}}}"#);
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

/// Feeds the events and joins what they yield: text, complete calls, the last
/// usage and finish reason seen as deltas.
fn collect(
    decoder: &mut dyn ChunkDecoder,
    events: &[SseEvent],
) -> (String, Vec<ToolCall>, Option<Usage>, Option<String>) {
    let mut text = String::new();
    let mut calls = ToolCallAccumulator::default();
    let mut usage = None;
    let mut finish = None;
    for e in events {
        let flow = decoder
            .event(e, &mut |d| match d {
                Delta::Text(t) => text.push_str(t),
                Delta::ToolCall(f) => calls.push(&f),
                Delta::Usage(u) => usage = Some(u),
                Delta::Finish(r) => finish = Some(r.to_string()),
            })
            .unwrap();
        if flow == Flow::Finished {
            break;
        }
    }
    (text, calls.finish(), usage, finish)
}

fn call(id: &str, name: &str, arguments: &str) -> ToolCall {
    ToolCall {
        id: id.to_string(),
        name: name.to_string(),
        arguments: arguments.to_string(),
    }
}

/// One OpenAI chunk carrying `delta.tool_calls` entries, JSON-escaped properly.
fn openai_tool_chunk(entries: &[(u32, Option<&str>, Option<&str>, &str)]) -> SseEvent {
    let calls: Vec<serde_json::Value> = entries
        .iter()
        .map(|(index, id, name, args)| {
            let mut function = serde_json::json!({ "arguments": args });
            if let Some(n) = name {
                function["name"] = serde_json::json!(n);
            }
            let mut entry = serde_json::json!({ "index": index, "function": function });
            if let Some(id) = id {
                entry["id"] = serde_json::json!(id);
                entry["type"] = serde_json::json!("function");
            }
            entry
        })
        .collect();
    let chunk =
        serde_json::json!({"choices": [{"delta": {"tool_calls": calls}, "finish_reason": null}]});
    ev("message", &chunk.to_string())
}

#[test]
fn openai_tool_call_arguments_split_anywhere() {
    let args = r#"{"q":"käse \"x\"","n":[1,2]}"#;
    for cut in (0..=args.len()).filter(|c| args.is_char_boundary(*c)) {
        let (a, b) = args.split_at(cut);
        let events = [
            ev(
                "message",
                r#"{"choices":[{"delta":{"role":"assistant","content":null}}]}"#,
            ),
            openai_tool_chunk(&[(0, Some("call_1"), Some("search"), "")]),
            openai_tool_chunk(&[(0, None, None, a)]),
            openai_tool_chunk(&[(0, None, None, b)]),
            ev(
                "message",
                r#"{"choices":[{"delta":{},"finish_reason":"tool_calls"}]}"#,
            ),
            ev("message", "[DONE]"),
        ];
        let mut d = OpenAiDecoder::default();
        let (text, calls, _, finish) = collect(&mut d, &events);
        assert_eq!(text, "");
        assert_eq!(calls, vec![call("call_1", "search", args)], "cut at {cut}");
        assert_eq!(finish.as_deref(), Some("tool_calls"));
        assert_eq!(d.outcome().finish_reason, "tool_calls");
    }
}

#[test]
fn openai_two_calls_in_one_chunk_then_fragments_by_index() {
    let events = [
        openai_tool_chunk(&[
            (0, Some("a"), Some("get"), "{\"k\":"),
            (1, Some("b"), Some("put"), "{\"v\":"),
        ]),
        openai_tool_chunk(&[(1, None, None, "2}"), (0, None, None, "1}")]),
        ev(
            "message",
            r#"{"choices":[{"delta":{},"finish_reason":"tool_calls"}]}"#,
        ),
    ];
    let (_, calls, _, _) = collect(&mut OpenAiDecoder::default(), &events);
    assert_eq!(
        calls,
        vec![call("a", "get", "{\"k\":1}"), call("b", "put", "{\"v\":2}")]
    );
}

#[test]
fn ollama_index_zero_parallel_calls_and_stop_with_calls() {
    // Ollama sends each parallel call whole, every one at index 0, then "stop".
    let events = [
        openai_tool_chunk(&[(0, Some("call_x"), Some("weather"), r#"{"city":"Oslo"}"#)]),
        openai_tool_chunk(&[(0, Some("call_y"), Some("weather"), r#"{"city":"Lima"}"#)]),
        ev(
            "message",
            r#"{"choices":[{"delta":{"content":""},"finish_reason":"stop"}]}"#,
        ),
        ev("message", "[DONE]"),
    ];
    let mut d = OpenAiDecoder::default();
    let (_, calls, _, finish) = collect(&mut d, &events);
    assert_eq!(
        calls,
        vec![
            call("call_x", "weather", r#"{"city":"Oslo"}"#),
            call("call_y", "weather", r#"{"city":"Lima"}"#)
        ]
    );
    assert_eq!(finish.as_deref(), Some("stop"));
    let mut outcome = d.outcome();
    outcome.tool_calls = calls;
    assert!(
        outcome.wants_tools(),
        "calls make a tool turn whatever the reason"
    );
}

#[test]
fn openai_text_and_usage_deltas() {
    let events = [
        ev("message", r#"{"choices":[{"delta":{"content":"Hi"}}]}"#),
        ev(
            "message",
            r#"{"choices":[{"delta":{},"finish_reason":"length"}]}"#,
        ),
        ev(
            "message",
            r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1}}"#,
        ),
    ];
    let (text, calls, usage, finish) = collect(&mut OpenAiDecoder::default(), &events);
    assert_eq!(text, "Hi");
    assert!(calls.is_empty());
    assert_eq!(
        usage,
        Some(Usage {
            input_tokens: 3,
            output_tokens: 1
        })
    );
    assert_eq!(finish.as_deref(), Some("length"));
}

#[test]
fn anthropic_tool_use_blocks_with_input_json_delta() {
    let delta = |index: u32, partial: &str| {
        let data = serde_json::json!({"type":"content_block_delta","index":index,
            "delta":{"type":"input_json_delta","partial_json":partial}});
        ev("content_block_delta", &data.to_string())
    };
    let events = [
        ev(
            "message_start",
            r#"{"type":"message_start","message":{"usage":{"input_tokens":40,"output_tokens":1}}}"#,
        ),
        ev(
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        ),
        ev(
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Let me look."}}"#,
        ),
        ev(
            "content_block_start",
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{}}}"#,
        ),
        delta(1, ""),
        delta(1, "{\"loc"),
        delta(1, "ation\": \"Par"),
        delta(1, "is\"}"),
        ev(
            "content_block_stop",
            r#"{"type":"content_block_stop","index":1}"#,
        ),
        ev(
            "content_block_start",
            r#"{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_2","name":"now","input":{}}}"#,
        ),
        delta(2, "{}"),
        ev(
            "message_delta",
            r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":30}}"#,
        ),
        ev("message_stop", r#"{"type":"message_stop"}"#),
    ];
    let mut d = AnthropicDecoder::default();
    let (text, calls, usage, finish) = collect(&mut d, &events);
    assert_eq!(text, "Let me look.");
    assert_eq!(
        calls,
        vec![
            call("toolu_1", "get_weather", r#"{"location": "Paris"}"#),
            call("toolu_2", "now", "{}")
        ]
    );
    assert_eq!(
        usage,
        Some(Usage {
            input_tokens: 40,
            output_tokens: 30
        })
    );
    assert_eq!(finish.as_deref(), Some("tool_use"));
    assert_eq!(d.outcome().finish_reason, "tool_use");
}

#[test]
fn anthropic_json_delta_outside_a_tool_block_is_no_call() {
    let events = [ev(
        "content_block_delta",
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{}"}}"#,
    )];
    let (_, calls, _, _) = collect(&mut AnthropicDecoder::default(), &events);
    assert!(calls.is_empty());
}
