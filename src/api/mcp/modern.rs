//! The stateless 2026-07-28 revision: its request metadata checks (the
//! `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` headers against the body) and
//! its `server/discover` answer.

use super::jsonrpc::{RpcError, HEADER_MISMATCH};
use hyper::HeaderMap;
use serde_json::{json, Map, Value};

pub const MODERN_VERSION: &str = "2026-07-28";
const PROTOCOL_VERSION_META: &str = "io.modelcontextprotocol/protocolVersion";
/// How long a client may keep `server/discover` and `tools/list` answers (5 minutes).
pub const LIST_TTL_MS: u64 = 300_000;

/// Checks that the headers mirror the body, as every 2026-07-28 request must.
pub fn check_request_metadata(
    headers: &HeaderMap,
    id: &Value,
    method: &str,
    params: &Map<String, Value>,
) -> Result<(), RpcError> {
    let mismatch = |message: String| RpcError::new(id.clone(), HEADER_MISMATCH, message);
    let body_version = params
        .get("_meta")
        .and_then(|m| m.get(PROTOCOL_VERSION_META))
        .and_then(Value::as_str);
    match body_version {
        Some(v) if v == MODERN_VERSION => {}
        Some(v) => {
            return Err(mismatch(format!(
                "Header mismatch: MCP-Protocol-Version header value '{MODERN_VERSION}' does not match body value '{}'",
                crate::util::cut_chars(v, 40)
            )))
        }
        None => {
            return Err(mismatch(format!(
                "Header mismatch: params._meta[\"{PROTOCOL_VERSION_META}\"] is required with MCP-Protocol-Version {MODERN_VERSION}"
            )))
        }
    }
    match header(headers, "mcp-method") {
        Some(h) if h == method => {}
        Some(h) => {
            return Err(mismatch(format!(
                "Header mismatch: Mcp-Method header value '{}' does not match body value '{}'",
                crate::util::cut_chars(&h, 60),
                crate::util::cut_chars(method, 60)
            )))
        }
        None => {
            return Err(mismatch(
                "Header mismatch: the Mcp-Method header is required".into(),
            ))
        }
    }
    if method == "tools/call" {
        let name = params.get("name").and_then(Value::as_str).unwrap_or("");
        match header(headers, "mcp-name") {
            Some(h) if h == name => {}
            Some(h) => {
                return Err(mismatch(format!(
                    "Header mismatch: Mcp-Name header value '{}' does not match body value '{}'",
                    crate::util::cut_chars(&h, 60),
                    crate::util::cut_chars(name, 60)
                )))
            }
            None => {
                return Err(mismatch(
                    "Header mismatch: the Mcp-Name header is required for tools/call".into(),
                ))
            }
        }
    }
    Ok(())
}

/// A header's value, decoded from the `=?base64?…?=` form when it has it; `None`
/// when absent or not text.
fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    let raw = headers.get(name)?.to_str().ok()?;
    match raw
        .strip_prefix("=?base64?")
        .and_then(|r| r.strip_suffix("?="))
    {
        Some(encoded) => String::from_utf8(crate::util::base64_decode(encoded.as_bytes())?).ok(),
        None => Some(raw.to_string()),
    }
}

/// The `server/discover` result.
pub fn discover_result(supported: &[&str], capabilities: Value, instructions: &str) -> Value {
    json!({
        "supportedVersions": supported,
        "capabilities": capabilities,
        "instructions": instructions,
        "resultType": "complete",
        "ttlMs": LIST_TTL_MS,
        "cacheScope": "private",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn params(name: &str, version: &str) -> Map<String, Value> {
        json!({"name": name, "_meta": {PROTOCOL_VERSION_META: version}})
            .as_object()
            .unwrap()
            .clone()
    }

    #[test]
    fn headers_must_mirror_the_body() {
        let id = json!(1);
        let good = headers(&[("mcp-method", "tools/call"), ("mcp-name", "get_run")]);
        assert!(check_request_metadata(
            &good,
            &id,
            "tools/call",
            &params("get_run", MODERN_VERSION)
        )
        .is_ok());
        let encoded = headers(&[
            ("mcp-method", "tools/call"),
            ("mcp-name", "=?base64?Z2V0X3J1bg==?="),
        ]);
        assert!(check_request_metadata(
            &encoded,
            &id,
            "tools/call",
            &params("get_run", MODERN_VERSION)
        )
        .is_ok());
        for (h, p) in [
            (&good, params("run_team", MODERN_VERSION)),
            (&good, params("get_run", "2025-11-25")),
            (
                &headers(&[("mcp-method", "tools/call")]),
                params("get_run", MODERN_VERSION),
            ),
            (
                &headers(&[("mcp-name", "get_run")]),
                params("get_run", MODERN_VERSION),
            ),
            (&good, Map::new()),
        ] {
            let e = check_request_metadata(h, &id, "tools/call", &p).unwrap_err();
            assert_eq!(e.code, HEADER_MISMATCH, "{}", e.message);
        }
    }
}
