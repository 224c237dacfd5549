//! The OpenAI-compatible Chat Completions wire (SPEC §5.2): OpenRouter, Nous, OpenAI
//! and any local server speaking the same protocol. The request body is built from the
//! call's messages (assistant `tool_calls`, `role: "tool"` results) and tools.

use super::call::{Block, CallOutcome, CallRequest, Message, Role, TokenSink, ToolSpec};
use super::decode::OpenAiDecoder;
use super::error::ProviderError;
use super::http_call::{json_post, stream_call, to_json_bytes};
use super::provider::{Attempt, BoxFuture, Provider};
use crate::model::provider_id::ProviderId;
use crate::secret::Secret;
use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

/// OpenRouter shows these on its dashboard to say which app made the call.
const OPENROUTER_REFERER: &str = "https://github.com/agent-mesh/agent-mesh";
const OPENROUTER_TITLE: &str = "agent-mesh";

/// A provider reached with a static key (or none, for a local server).
pub struct OpenAiCompatible {
    pub id: ProviderId,
    pub base_url: String,
    pub key: Option<Secret>,
    /// Send OpenRouter's app attribution headers.
    pub app_headers: bool,
    pub client: super::client::HttpClient,
}

impl Provider for OpenAiCompatible {
    fn id(&self) -> ProviderId {
        self.id
    }

    fn auth(&self) -> &'static str {
        if self.key.is_some() {
            "api_key"
        } else {
            "none"
        }
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
            let wire = Wire {
                base_url: &self.base_url,
                bearer: self.key.as_ref().map(Secret::expose),
                app_headers: self.app_headers,
            };
            send(&self.client, &wire, request, sink, progress, secrets).await
        })
    }

    fn catalog_endpoint(&self) -> BoxFuture<'_, Result<(String, Option<Secret>), String>> {
        Box::pin(async move { Ok((self.base_url.clone(), self.key.clone())) })
    }
}

/// Where and how one Chat Completions request goes.
pub struct Wire<'a> {
    pub base_url: &'a str,
    pub bearer: Option<&'a str>,
    pub app_headers: bool,
}

/// One attempt over the Chat Completions wire.
pub async fn send(
    client: &super::client::HttpClient,
    wire: &Wire<'_>,
    request: &CallRequest<'_>,
    sink: &mut dyn TokenSink,
    progress: &mut Attempt,
    secrets: &[String],
) -> Result<CallOutcome, ProviderError> {
    let http_request = build_request(wire, request)?;
    stream_call(
        client,
        http_request,
        &mut OpenAiDecoder::default(),
        sink,
        request.timeouts,
        secrets,
        &mut progress.emitted,
    )
    .await
}

pub fn build_request(
    wire: &Wire<'_>,
    req: &CallRequest<'_>,
) -> Result<Request<Full<Bytes>>, ProviderError> {
    let mut headers: Vec<(&str, String, bool)> = Vec::new();
    if let Some(key) = wire.bearer {
        headers.push(("authorization", format!("Bearer {key}"), true));
    }
    if wire.app_headers {
        headers.push(("http-referer", OPENROUTER_REFERER.to_string(), false));
        headers.push(("x-title", OPENROUTER_TITLE.to_string(), false));
    }
    if let Some(tp) = req.traceparent {
        headers.push(("traceparent", tp.to_string(), false));
    }
    json_post(
        &format!("{}/chat/completions", wire.base_url),
        &headers,
        body(req, is_openai_host(wire.base_url)),
    )
}

/// The request body, borrowing the call: serialized once, straight to bytes.
#[derive(Serialize)]
struct ChatBody<'a> {
    model: &'a str,
    messages: Messages<'a>,
    stream: bool,
    stream_options: StreamOptions,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Tools::is_empty")]
    tools: Tools<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<&'static str>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

/// The body's bytes; `openai` names the token limit the way api.openai.com wants it.
fn body(req: &CallRequest<'_>, openai: bool) -> Vec<u8> {
    // OpenAI's own API deprecated max_tokens for max_completion_tokens (its reasoning
    // models reject the old name); compatible servers only know max_tokens.
    let body = ChatBody {
        model: req.model,
        messages: Messages(req.messages),
        stream: true,
        stream_options: StreamOptions {
            include_usage: true,
        },
        max_tokens: (!openai).then_some(req.max_tokens),
        max_completion_tokens: openai.then_some(req.max_tokens),
        tools: Tools(req.tools),
        tool_choice: (req.answer_without_tools && !req.tools.is_empty()).then_some("none"),
    };
    to_json_bytes(&body)
}

/// The call's messages on the wire: a text-only message keeps its plain string
/// `content`; each tool result becomes its own `role: "tool"` message.
struct Messages<'a>(&'a [Message]);

impl Serialize for Messages<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for m in self.0 {
            let results: Vec<_> = m
                .content
                .iter()
                .filter_map(|b| match b {
                    Block::ToolResult(r) => Some(r),
                    _ => None,
                })
                .collect();
            if m.role == Role::Tool || !results.is_empty() {
                for r in results {
                    seq.serialize_element(&ToolMessage(r))?;
                }
            } else {
                seq.serialize_element(&WireMessage(m))?;
            }
        }
        seq.end()
    }
}

struct WireMessage<'a>(&'a Message);

impl Serialize for WireMessage<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let m = self.0;
        let role = match m.role {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        };
        let calls: Vec<_> = m
            .content
            .iter()
            .filter_map(|b| match b {
                Block::ToolCall(c) => Some(c),
                _ => None,
            })
            .collect();
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("role", role)?;
        match (m.only_text(), calls.is_empty()) {
            (Some(text), _) => map.serialize_entry("content", text)?,
            // An assistant turn of only tool calls has no text.
            (None, false) if m.texts().next().is_none() => map.serialize_entry("content", &())?,
            _ => map.serialize_entry("content", &m.texts().collect::<String>())?,
        }
        if !calls.is_empty() {
            let calls: Vec<_> = calls
                .iter()
                .map(|c| {
                    serde_json::json!({
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.name, "arguments": c.arguments},
                    })
                })
                .collect();
            map.serialize_entry("tool_calls", &calls)?;
        }
        map.end()
    }
}

/// A tool result. Chat Completions has no error flag, so an error says so in words.
struct ToolMessage<'a>(&'a super::call::ToolResult);

impl Serialize for ToolMessage<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        let mut map = s.serialize_map(Some(3))?;
        map.serialize_entry("role", "tool")?;
        map.serialize_entry("tool_call_id", &r.call_id)?;
        if r.is_error {
            map.serialize_entry("content", &format!("Error: {}", r.content))?;
        } else {
            map.serialize_entry("content", &r.content)?;
        }
        map.end()
    }
}

/// `tools` as `{"type":"function","function":{name, description, parameters}}`.
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
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.input_schema,
                },
            }))?;
        }
        seq.end()
    }
}

fn is_openai_host(base_url: &str) -> bool {
    let rest = base_url.split_once("://").map_or(base_url, |(_, r)| r);
    let host = rest.split(['/', ':']).next().unwrap_or("");
    host.eq_ignore_ascii_case("api.openai.com")
}

#[cfg(test)]
#[path = "openai_tests.rs"]
mod tests;
