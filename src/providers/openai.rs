//! The OpenAI-compatible Chat Completions request (SPEC §5.2): OpenRouter, Nous, OpenAI
//! and any local server speaking the same protocol.

use super::error::ProviderError;
use super::http_call::{json_post, to_json_bytes};
use super::CallRequest;
use crate::model::provider_id::ProviderId;
use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use serde::Serialize;

/// OpenRouter shows these on its dashboard to say which app made the call.
const OPENROUTER_REFERER: &str = "https://github.com/agent-mesh/agent-mesh";
const OPENROUTER_TITLE: &str = "agent-mesh";

/// The request body, borrowing the prompts: serialized once, straight to bytes (a
/// `json!` tree copied both prompts into owned strings, hashed every key into an
/// ordered map, then went through `fmt::Write` to print itself).
#[derive(Serialize)]
struct ChatBody<'a> {
    model: &'a str,
    messages: [Message<'a>; 2],
    stream: bool,
    stream_options: StreamOptions,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

pub fn build_request(
    provider: ProviderId,
    base_url: &str,
    bearer: Option<&str>,
    req: &CallRequest<'_>,
) -> Result<Request<Full<Bytes>>, ProviderError> {
    let mut headers: Vec<(&str, String, bool)> = Vec::new();
    if let Some(key) = bearer {
        headers.push(("authorization", format!("Bearer {key}"), true));
    }
    if provider == ProviderId::OpenRouter {
        headers.push(("http-referer", OPENROUTER_REFERER.to_string(), false));
        headers.push(("x-title", OPENROUTER_TITLE.to_string(), false));
    }
    json_post(
        &format!("{base_url}/chat/completions"),
        &headers,
        body(req, is_openai_host(base_url)),
    )
}

/// The body's bytes; `openai` names the token limit the way api.openai.com wants it.
fn body(req: &CallRequest<'_>, openai: bool) -> Vec<u8> {
    // OpenAI's own API deprecated max_tokens for max_completion_tokens (its reasoning
    // models reject the old name); compatible servers only know max_tokens.
    let body = ChatBody {
        model: req.model,
        messages: [
            Message {
                role: "system",
                content: req.system,
            },
            Message {
                role: "user",
                content: req.user,
            },
        ],
        stream: true,
        stream_options: StreamOptions {
            include_usage: true,
        },
        max_tokens: (!openai).then_some(req.max_tokens),
        max_completion_tokens: openai.then_some(req.max_tokens),
    };
    to_json_bytes(&body)
}

fn is_openai_host(base_url: &str) -> bool {
    let rest = base_url.split_once("://").map_or(base_url, |(_, r)| r);
    let host = rest.split(['/', ':']).next().unwrap_or("");
    host.eq_ignore_ascii_case("api.openai.com")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(system: &'static str, user: &'static str) -> CallRequest<'static> {
        crate::providers::test_call("m/x", system, user, 77)
    }

    #[test]
    fn body_is_the_chat_completions_request_byte_for_byte() {
        let b = body(&call("be \"brief\"", "line1\nline2 ü"), false);
        assert_eq!(
            String::from_utf8(b).unwrap(),
            r#"{"model":"m/x","messages":[{"role":"system","content":"be \"brief\""},{"role":"user","content":"line1\nline2 ü"}],"stream":true,"stream_options":{"include_usage":true},"max_tokens":77}"#
        );
        let b = body(&call("s", "u"), true);
        assert!(String::from_utf8(b)
            .unwrap()
            .ends_with(r#""include_usage":true},"max_completion_tokens":77}"#));
    }

    #[test]
    fn only_api_openai_com_gets_max_completion_tokens() {
        assert!(is_openai_host("https://api.openai.com/v1"));
        assert!(is_openai_host("https://API.openai.com:443/v1"));
        assert!(!is_openai_host("https://openrouter.ai/api/v1"));
        assert!(!is_openai_host("http://127.0.0.1:11434/v1"));
        assert!(!is_openai_host("https://api.openai.com.evil.test/v1"));
    }
}
