//! The Anthropic Messages request (SPEC §5.3).

use super::error::ProviderError;
use super::http_call::json_post;
use super::CallRequest;
use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use serde_json::json;

pub const API_VERSION: &str = "2023-06-01";

pub fn build_request(
    base_url: &str,
    key: &str,
    req: &CallRequest<'_>,
) -> Result<Request<Full<Bytes>>, ProviderError> {
    let body = json!({
        "model": req.model,
        "system": req.system,
        "messages": [{"role": "user", "content": req.user}],
        "max_tokens": req.max_tokens,
        "stream": true,
    });
    let headers = [
        ("x-api-key", key.to_string(), true),
        ("anthropic-version", API_VERSION.to_string(), false),
    ];
    json_post(
        &format!("{base_url}/v1/messages"),
        &headers,
        body.to_string().into_bytes(),
    )
}
