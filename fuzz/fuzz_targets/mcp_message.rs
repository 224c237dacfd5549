//! Invariant: `jsonrpc::parse` never panics; a rejection is one of the spec's codes (-32700, -32600, -32602) with a message, and its JSON serializes with `jsonrpc` "2.0" and an id that is null, a string or an integer; an accepted request has a non-empty method and a string or integer id.
//!
//! Input: a `POST /mcp` body (one JSON-RPC message, at most 64 KiB as the server reads).
#![no_main]

use agent_mesh::api::mcp::jsonrpc::{parse, Message, INVALID_PARAMS, INVALID_REQUEST, PARSE_ERROR};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// Bodies are capped at 64 KiB by the server (413 beyond).
const MAX_INPUT: usize = 64 * 1024;

fn usable_id(id: &Value) -> bool {
    id.is_string() || id.is_i64() || id.is_u64()
}

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT {
        return;
    }
    match parse(data) {
        Err(e) => {
            assert!(
                [PARSE_ERROR, INVALID_REQUEST, INVALID_PARAMS].contains(&e.code),
                "unexpected code {}",
                e.code
            );
            assert!(!e.message.is_empty(), "an error without a message");
            let v = e.to_json();
            assert_eq!(v["jsonrpc"], "2.0");
            assert!(
                v["id"].is_null() || usable_id(&v["id"]),
                "bad id {}",
                v["id"]
            );
        }
        Ok(Message::Request { id, method, .. }) => {
            assert!(usable_id(&id), "accepted id {id}");
            assert!(!method.is_empty(), "accepted an empty method");
        }
        Ok(Message::Notification { method, .. }) => {
            assert!(!method.is_empty(), "accepted an empty method");
        }
        Ok(Message::Response) => {}
    }
});
