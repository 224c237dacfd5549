//! The OpenAI-compatible Chat Completions request (SPEC §5.2): OpenRouter, Nous, OpenAI
//! and any local server speaking the same protocol.

use super::error::ProviderError;
use super::http_call::json_post;
use super::id::ProviderId;
use super::CallRequest;
use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use serde_json::json;

/// OpenRouter shows these on its dashboard to say which app made the call.
const OPENROUTER_REFERER: &str = "https://github.com/agent-mesh/agent-mesh";
const OPENROUTER_TITLE: &str = "agent-mesh";

pub fn build_request(
    provider: ProviderId,
    base_url: &str,
    bearer: Option<&str>,
    req: &CallRequest<'_>,
) -> Result<Request<Full<Bytes>>, ProviderError> {
    let mut body = json!({
        "model": req.model,
        "messages": [
            {"role": "system", "content": req.system},
            {"role": "user", "content": req.user},
        ],
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    // OpenAI's own API deprecated max_tokens for max_completion_tokens (its reasoning
    // models reject the old name); compatible servers only know max_tokens.
    let token_field = if is_openai_host(base_url) {
        "max_completion_tokens"
    } else {
        "max_tokens"
    };
    body[token_field] = json!(req.max_tokens);
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
        body.to_string().into_bytes(),
    )
}

fn is_openai_host(base_url: &str) -> bool {
    let rest = base_url.split_once("://").map_or(base_url, |(_, r)| r);
    let host = rest.split(['/', ':']).next().unwrap_or("");
    host.eq_ignore_ascii_case("api.openai.com")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_api_openai_com_gets_max_completion_tokens() {
        assert!(is_openai_host("https://api.openai.com/v1"));
        assert!(is_openai_host("https://API.openai.com:443/v1"));
        assert!(!is_openai_host("https://openrouter.ai/api/v1"));
        assert!(!is_openai_host("http://127.0.0.1:11434/v1"));
        assert!(!is_openai_host("https://api.openai.com.evil.test/v1"));
    }
}
