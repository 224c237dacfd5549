//! Golden request bodies for the Chat Completions wire: text-only byte for byte as
//! before tools existed, then tool calls, tool results and tool definitions.

use super::*;
use crate::providers::call::{ToolCall, ToolResult};
use crate::providers::test_call;

#[test]
fn body_is_the_chat_completions_request_byte_for_byte() {
    let messages = [
        Message::system("be \"brief\""),
        Message::user("line1\nline2 ü"),
    ];
    let b = body(&test_call("m/x", &messages, 77), false);
    assert_eq!(
        String::from_utf8(b).unwrap(),
        r#"{"model":"m/x","messages":[{"role":"system","content":"be \"brief\""},{"role":"user","content":"line1\nline2 ü"}],"stream":true,"stream_options":{"include_usage":true},"max_tokens":77}"#
    );
    let messages = [Message::system("s"), Message::user("u")];
    let b = body(&test_call("m/x", &messages, 77), true);
    assert!(String::from_utf8(b)
        .unwrap()
        .ends_with(r#""include_usage":true},"max_completion_tokens":77}"#));
}

#[test]
fn body_with_tool_calls_results_and_tools() {
    let messages = [
        Message::system("s"),
        Message::user("weather?"),
        Message {
            role: Role::Assistant,
            content: vec![
                Block::ToolCall(ToolCall {
                    id: "c1".into(),
                    name: "weather".into(),
                    arguments: r#"{"city":"Oslo"}"#.into(),
                }),
                Block::ToolCall(ToolCall {
                    id: "c2".into(),
                    name: "time".into(),
                    arguments: "{}".into(),
                }),
            ],
        },
        Message {
            role: Role::Tool,
            content: vec![
                Block::ToolResult(ToolResult {
                    call_id: "c1".into(),
                    content: "rain".into(),
                    is_error: false,
                }),
                Block::ToolResult(ToolResult {
                    call_id: "c2".into(),
                    content: "no clock".into(),
                    is_error: true,
                }),
            ],
        },
    ];
    let tools = [ToolSpec {
        name: "weather".into(),
        description: "Weather for a city".into(),
        input_schema: serde_json::json!({"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}),
    }];
    let mut call = test_call("m", &messages, 10);
    call.tools = &tools;
    let got: serde_json::Value = serde_json::from_slice(&body(&call, false)).unwrap();
    let want = serde_json::json!({
        "model": "m",
        "messages": [
            {"role": "system", "content": "s"},
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}},
                {"id": "c2", "type": "function", "function": {"name": "time", "arguments": "{}"}}
            ]},
            {"role": "tool", "tool_call_id": "c1", "content": "rain"},
            {"role": "tool", "tool_call_id": "c2", "content": "Error: no clock"}
        ],
        "stream": true,
        "stream_options": {"include_usage": true},
        "max_tokens": 10,
        "tools": [{"type": "function", "function": {
            "name": "weather",
            "description": "Weather for a city",
            "parameters": {"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}
        }}]
    });
    assert_eq!(got, want);
}

#[test]
fn only_api_openai_com_gets_max_completion_tokens() {
    assert!(is_openai_host("https://api.openai.com/v1"));
    assert!(is_openai_host("https://API.openai.com:443/v1"));
    assert!(!is_openai_host("https://openrouter.ai/api/v1"));
    assert!(!is_openai_host("http://127.0.0.1:11434/v1"));
    assert!(!is_openai_host("https://api.openai.com.evil.test/v1"));
}
