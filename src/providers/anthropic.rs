//! The Anthropic Messages wire (SPEC §5.3): `system` apart, `tool_use` and
//! `tool_result` blocks (with `is_error`), `tools` with `input_schema`.

use super::call::{Block, CallOutcome, CallRequest, Message, Role, TokenSink, ToolSpec};
use super::decode::AnthropicDecoder;
use super::error::ProviderError;
use super::http_call::{json_post, stream_call, to_json_bytes};
use super::provider::{Attempt, BoxFuture, Provider};
use crate::model::error_kind::ErrorKind;
use crate::model::provider_id::ProviderId;
use crate::secret::Secret;
use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

pub const API_VERSION: &str = "2023-06-01";

pub struct Anthropic {
    pub base_url: String,
    pub key: Option<Secret>,
    pub client: super::client::HttpClient,
}

impl Provider for Anthropic {
    fn id(&self) -> ProviderId {
        ProviderId::Anthropic
    }

    fn secrets(&self) -> Vec<String> {
        self.key.iter().map(|k| k.expose().to_string()).collect()
    }

    fn attempt<'a>(
        &'a self,
        request: &'a CallRequest<'a>,
        sink: &'a mut dyn TokenSink,
        progress: &'a mut Attempt,
        secrets: &'a [String],
    ) -> BoxFuture<'a, Result<CallOutcome, ProviderError>> {
        Box::pin(async move {
            let key = self.key.as_ref().map(Secret::expose).ok_or_else(|| {
                ProviderError::new(ErrorKind::Config, "ANTHROPIC_API_KEY is not set")
            })?;
            let http_request = build_request(&self.base_url, key, request)?;
            stream_call(
                &self.client,
                http_request,
                &mut AnthropicDecoder::default(),
                sink,
                request.timeouts,
                secrets,
                &mut progress.emitted,
            )
            .await
        })
    }

    fn catalog_endpoint(&self) -> BoxFuture<'_, Result<(String, Option<Secret>), String>> {
        Box::pin(async move { Ok((self.base_url.clone(), self.key.clone())) })
    }
}

pub fn build_request(
    base_url: &str,
    key: &str,
    req: &CallRequest<'_>,
) -> Result<Request<Full<Bytes>>, ProviderError> {
    let mut headers = vec![
        ("x-api-key", key.to_string(), true),
        ("anthropic-version", API_VERSION.to_string(), false),
    ];
    if let Some(tp) = req.traceparent {
        headers.push(("traceparent", tp.to_string(), false));
    }
    json_post(&format!("{base_url}/v1/messages"), &headers, body(req))
}

/// The request body, borrowing the call (serialized once, straight to bytes).
#[derive(Serialize)]
struct MessagesBody<'a> {
    model: &'a str,
    system: &'a str,
    messages: Messages<'a>,
    max_tokens: u32,
    stream: bool,
    #[serde(skip_serializing_if = "Tools::is_empty")]
    tools: Tools<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<serde_json::Value>,
}

fn body(req: &CallRequest<'_>) -> Vec<u8> {
    let system = req.system_text();
    let conversation: Vec<&Message> = req.conversation().collect();
    let body = MessagesBody {
        model: req.model,
        system: &system,
        messages: Messages(&conversation),
        max_tokens: req.max_tokens,
        stream: true,
        tools: Tools(req.tools),
        tool_choice: (req.answer_without_tools && !req.tools.is_empty())
            .then(|| serde_json::json!({"type": "none"})),
    };
    to_json_bytes(&body)
}

/// The non-system messages: a text-only one keeps its plain string `content`; tool
/// results go back as a `user` message of `tool_result` blocks.
struct Messages<'a>(&'a [&'a Message]);

impl Serialize for Messages<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for m in self.0 {
            seq.serialize_element(&WireMessage(m))?;
        }
        seq.end()
    }
}

struct WireMessage<'a>(&'a Message);

impl Serialize for WireMessage<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let m = self.0;
        let role = match m.role {
            Role::Assistant => "assistant",
            Role::System | Role::User | Role::Tool => "user",
        };
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry("role", role)?;
        match m.only_text() {
            Some(text) => map.serialize_entry("content", text)?,
            None => {
                let blocks: Vec<serde_json::Value> = m.content.iter().map(block).collect();
                map.serialize_entry("content", &blocks)?;
            }
        }
        map.end()
    }
}

fn block(b: &Block) -> serde_json::Value {
    match b {
        Block::Text(text) => serde_json::json!({"type": "text", "text": text}),
        // `input` must be an object; arguments the model sent unparsable go back as
        // `{}` (the tool's error result tells the model what was wrong).
        Block::ToolCall(c) => {
            let input = serde_json::from_str::<serde_json::Value>(&c.arguments)
                .ok()
                .filter(serde_json::Value::is_object)
                .unwrap_or_else(|| serde_json::json!({}));
            serde_json::json!({"type": "tool_use", "id": c.id, "name": c.name, "input": input})
        }
        Block::ToolResult(r) => serde_json::json!({
            "type": "tool_result",
            "tool_use_id": r.call_id,
            "content": r.content,
            "is_error": r.is_error,
        }),
    }
}

struct Tools<'a>(&'a [ToolSpec]);

impl Tools<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Tools<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for t in self.0 {
            seq.serialize_element(&serde_json::json!({
                "name": t.name,
                "description": t.description,
                "input_schema": t.input_schema,
            }))?;
        }
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::call::{ToolCall, ToolResult};
    use crate::providers::test_call;

    #[test]
    fn body_is_the_messages_request_byte_for_byte() {
        let messages = [Message::system("sys \"q\""), Message::user("u\tü")];
        let req = test_call("claude-x", &messages, 900);
        assert_eq!(
            String::from_utf8(body(&req)).unwrap(),
            r#"{"model":"claude-x","system":"sys \"q\"","messages":[{"role":"user","content":"u\tü"}],"max_tokens":900,"stream":true}"#
        );
    }

    #[test]
    fn body_with_tool_use_tool_result_and_tools() {
        let messages = [
            Message::system("s"),
            Message::user("weather?"),
            Message {
                role: Role::Assistant,
                content: vec![
                    Block::Text("Looking.".into()),
                    Block::ToolCall(ToolCall {
                        id: "toolu_1".into(),
                        name: "weather".into(),
                        arguments: r#"{"city":"Oslo"}"#.into(),
                    }),
                    Block::ToolCall(ToolCall {
                        id: "toolu_2".into(),
                        name: "weather".into(),
                        arguments: "{not json".into(),
                    }),
                ],
            },
            Message {
                role: Role::Tool,
                content: vec![
                    Block::ToolResult(ToolResult {
                        call_id: "toolu_1".into(),
                        content: "rain".into(),
                        is_error: false,
                    }),
                    Block::ToolResult(ToolResult {
                        call_id: "toolu_2".into(),
                        content: "bad arguments".into(),
                        is_error: true,
                    }),
                ],
            },
        ];
        let tools = [ToolSpec {
            name: "weather".into(),
            description: "Weather".into(),
            input_schema: serde_json::json!({"type":"object"}),
        }];
        let mut req = test_call("c", &messages, 5);
        req.tools = &tools;
        let got: serde_json::Value = serde_json::from_slice(&body(&req)).unwrap();
        let want = serde_json::json!({
            "model": "c",
            "system": "s",
            "messages": [
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Looking."},
                    {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Oslo"}},
                    {"type": "tool_use", "id": "toolu_2", "name": "weather", "input": {}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "rain", "is_error": false},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": "bad arguments", "is_error": true}
                ]}
            ],
            "max_tokens": 5,
            "stream": true,
            "tools": [{"name": "weather", "description": "Weather", "input_schema": {"type": "object"}}]
        });
        assert_eq!(got, want);
    }
}
