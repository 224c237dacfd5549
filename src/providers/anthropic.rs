//! The Anthropic Messages request (SPEC §5.3).

use super::error::ProviderError;
use super::http_call::{json_post, to_json_bytes};
use super::CallRequest;
use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use serde::Serialize;

pub const API_VERSION: &str = "2023-06-01";

/// The request body, borrowing the prompts (serialized once, straight to bytes).
#[derive(Serialize)]
struct MessagesBody<'a> {
    model: &'a str,
    system: &'a str,
    messages: [Message<'a>; 1],
    max_tokens: u32,
    stream: bool,
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'static str,
    content: &'a str,
}

pub fn build_request(
    base_url: &str,
    key: &str,
    req: &CallRequest<'_>,
) -> Result<Request<Full<Bytes>>, ProviderError> {
    let headers = [
        ("x-api-key", key.to_string(), true),
        ("anthropic-version", API_VERSION.to_string(), false),
    ];
    json_post(&format!("{base_url}/v1/messages"), &headers, body(req))
}

fn body(req: &CallRequest<'_>) -> Vec<u8> {
    let body = MessagesBody {
        model: req.model,
        system: req.system,
        messages: [Message {
            role: "user",
            content: req.user,
        }],
        max_tokens: req.max_tokens,
        stream: true,
    };
    to_json_bytes(&body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_the_messages_request_byte_for_byte() {
        let req = crate::providers::test_call("claude-x", "sys \"q\"", "u\tü", 900);
        assert_eq!(
            String::from_utf8(body(&req)).unwrap(),
            r#"{"model":"claude-x","system":"sys \"q\"","messages":[{"role":"user","content":"u\tü"}],"max_tokens":900,"stream":true}"#
        );
    }
}
