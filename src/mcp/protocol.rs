//! MCP's JSON-RPC messages for both protocol eras: building requests (the legacy
//! `initialize` handshake, the 2026-07-28 per-request `_meta`), classifying what a server
//! sends, version negotiation, and the client's error type.

use serde_json::{json, Map, Value};
use std::fmt;
use std::time::Duration;

/// The newest handshake-based revision (the "legacy" era).
pub const LEGACY_VERSION: &str = "2025-11-25";
/// Older handshake revisions a server may answer `initialize` with; all speak tools alike.
const LEGACY_ACCEPTED: [&str; 4] = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];
/// The stateless revision: every request carries its version and capabilities in `_meta`.
pub const MODERN_VERSION: &str = "2026-07-28";

/// Modern JSON-RPC error codes (the range the 2026-07-28 revision reserves): a 400 carrying
/// one of these comes from a modern server, so the client must not fall back to `initialize`.
pub const HEADER_MISMATCH: i64 = -32020;
pub const MISSING_CLIENT_CAPABILITY: i64 = -32021;
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
pub const METHOD_NOT_FOUND: i64 = -32601;

pub fn is_modern_error(code: i64) -> bool {
    matches!(
        code,
        HEADER_MISMATCH | MISSING_CLIENT_CAPABILITY | UNSUPPORTED_PROTOCOL_VERSION
    )
}

/// Which protocol a server speaks, settled once per server (process or origin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Era {
    /// A session opened by `initialize` with the negotiated version.
    Legacy { version: String },
    /// Stateless: every request carries `_meta`.
    Modern { version: String },
}

impl Era {
    pub fn version(&self) -> &str {
        match self {
            Era::Legacy { version } | Era::Modern { version } => version,
        }
    }

    pub fn is_modern(&self) -> bool {
        matches!(self, Era::Modern { .. })
    }
}

/// Picks the era from a modern server's list of supported versions (a `server/discover`
/// result or an `UnsupportedProtocolVersionError`): ours if listed, else a legacy one.
pub fn choose_from_supported(supported: &[String]) -> Option<Era> {
    if supported.iter().any(|v| v == MODERN_VERSION) {
        return Some(Era::Modern {
            version: MODERN_VERSION.to_string(),
        });
    }
    LEGACY_ACCEPTED
        .iter()
        .find(|v| supported.iter().any(|s| s == *v))
        .map(|v| Era::Legacy {
            version: v.to_string(),
        })
}

/// The era an `initialize` result settles, if this client speaks its version.
pub fn legacy_era_of(initialize_result: &Value) -> Result<Era, McpError> {
    let version = initialize_result
        .get("protocolVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !LEGACY_ACCEPTED.contains(&version) {
        return Err(McpError::Protocol(format!(
            "the server answered initialize with protocol version \"{version}\", which this client does not speak"
        )));
    }
    Ok(Era::Legacy {
        version: version.to_string(),
    })
}

fn client_info() -> Value {
    json!({"name": "agent-mesh", "version": env!("CARGO_PKG_VERSION")})
}

/// The `initialize` params of the legacy handshake. The client offers no capabilities:
/// it answers no sampling, elicitation or roots requests.
pub fn initialize_params() -> Value {
    json!({
        "protocolVersion": LEGACY_VERSION,
        "capabilities": {},
        "clientInfo": client_info(),
    })
}

/// Adds the 2026-07-28 per-request metadata to `params` (an object, or none).
pub fn with_modern_meta(params: Option<Value>, version: &str) -> Value {
    let mut obj = match params {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let meta = obj
        .entry("_meta")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(m) = meta {
        m.insert(
            "io.modelcontextprotocol/protocolVersion".into(),
            Value::String(version.to_string()),
        );
        m.insert("io.modelcontextprotocol/clientInfo".into(), client_info());
        m.insert(
            "io.modelcontextprotocol/clientCapabilities".into(),
            json!({}),
        );
    }
    Value::Object(obj)
}

pub fn request(id: u64, method: &str, params: Option<Value>) -> Value {
    let mut m = json!({"jsonrpc": "2.0", "id": id, "method": method});
    if let Some(p) = params {
        m["params"] = p;
    }
    m
}

pub fn notification(method: &str, params: Option<Value>) -> Value {
    let mut m = json!({"jsonrpc": "2.0", "method": method});
    if let Some(p) = params {
        m["params"] = p;
    }
    m
}

pub fn cancelled(request_id: u64, reason: &str) -> Value {
    notification(
        "notifications/cancelled",
        Some(json!({"requestId": request_id, "reason": reason})),
    )
}

/// A JSON-RPC error object from a server.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl RpcError {
    fn from_wire(v: &Value) -> RpcError {
        RpcError {
            code: v.get("code").and_then(Value::as_i64).unwrap_or(0),
            message: v
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            data: v.get("data").cloned(),
        }
    }

    /// The versions an `UnsupportedProtocolVersionError` lists.
    pub fn supported_versions(&self) -> Vec<String> {
        strings(self.data.as_ref().and_then(|d| d.get("supported")))
    }
}

pub fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// What a server sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// The answer to one of our requests (only numeric ids are ours).
    Response {
        id: Option<u64>,
        outcome: Result<Value, RpcError>,
    },
    Notification {
        method: String,
        params: Value,
    },
    /// A request from the server (ping, sampling, elicitation, roots): answered here.
    Request {
        id: Value,
        method: String,
    },
}

/// Classifies one message; `None` for anything that is not JSON-RPC.
pub fn classify(message: &Value) -> Option<Incoming> {
    let obj = message.as_object()?;
    match (obj.get("method").and_then(Value::as_str), obj.get("id")) {
        (Some(method), Some(id)) if !id.is_null() => Some(Incoming::Request {
            id: id.clone(),
            method: method.to_string(),
        }),
        (Some(method), _) => Some(Incoming::Notification {
            method: method.to_string(),
            params: obj.get("params").cloned().unwrap_or(Value::Null),
        }),
        (None, id) => {
            let id = id.and_then(Value::as_u64);
            if let Some(e) = obj.get("error") {
                Some(Incoming::Response {
                    id,
                    outcome: Err(RpcError::from_wire(e)),
                })
            } else {
                obj.get("result").map(|r| Incoming::Response {
                    id,
                    outcome: Ok(r.clone()),
                })
            }
        }
    }
}

/// The answer this client gives to a server's request: `ping` is answered, everything
/// else (sampling, elicitation, roots: capabilities it never offered) is refused.
pub fn answer_server_request(id: &Value, method: &str) -> Value {
    if method == "ping" {
        json!({"jsonrpc": "2.0", "id": id, "result": {}})
    } else {
        json!({"jsonrpc": "2.0", "id": id, "error": {"code": METHOD_NOT_FOUND, "message": format!("agent-mesh does not provide {method}")}})
    }
}

/// Why a call to an MCP server failed (as opposed to a tool reporting `isError`).
#[derive(Debug, Clone, PartialEq)]
pub enum McpError {
    /// The server could not be reached or started.
    Connect(String),
    /// The server answered something this client cannot use.
    Protocol(String),
    /// A JSON-RPC error answer.
    Rpc(RpcError),
    Timeout(Duration),
    Cancelled,
    UnknownServer(String),
}

impl fmt::Display for McpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            McpError::Connect(why) => write!(f, "cannot connect: {why}"),
            McpError::Protocol(why) => write!(f, "protocol error: {why}"),
            McpError::Rpc(e) => write!(f, "server error {}: {}", e.code, e.message),
            McpError::Timeout(d) => write!(f, "no answer within {} s", d.as_secs()),
            McpError::Cancelled => f.write_str("cancelled"),
            McpError::UnknownServer(name) => write!(f, "no MCP server named \"{name}\""),
        }
    }
}

impl std::error::Error for McpError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_responses_notifications_and_requests() {
        assert_eq!(
            classify(&json!({"jsonrpc": "2.0", "id": 3, "result": {"a": 1}})),
            Some(Incoming::Response {
                id: Some(3),
                outcome: Ok(json!({"a": 1}))
            })
        );
        match classify(
            &json!({"jsonrpc": "2.0", "id": 4, "error": {"code": -32022, "message": "x", "data": {"supported": ["2025-11-25"]}}}),
        ) {
            Some(Incoming::Response {
                id: Some(4),
                outcome: Err(e),
            }) => {
                assert!(is_modern_error(e.code));
                assert_eq!(e.supported_versions(), vec!["2025-11-25"]);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            classify(&json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})),
            Some(Incoming::Notification { .. })
        ));
        assert!(matches!(
            classify(&json!({"jsonrpc": "2.0", "id": "s1", "method": "ping"})),
            Some(Incoming::Request { .. })
        ));
        assert_eq!(classify(&json!([1])), None);
    }

    #[test]
    fn modern_meta_is_added_without_losing_params() {
        let p = with_modern_meta(
            Some(json!({"name": "echo", "_meta": {"progressToken": 1}})),
            MODERN_VERSION,
        );
        assert_eq!(p["name"], "echo");
        assert_eq!(p["_meta"]["progressToken"], 1);
        assert_eq!(
            p["_meta"]["io.modelcontextprotocol/protocolVersion"],
            MODERN_VERSION
        );
        assert_eq!(
            p["_meta"]["io.modelcontextprotocol/clientInfo"]["name"],
            "agent-mesh"
        );
    }

    #[test]
    fn version_choice_prefers_modern_then_a_known_legacy_version() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(
            choose_from_supported(&s(&["2026-07-28", "2025-11-25"])).is_some_and(|e| e.is_modern())
        );
        assert_eq!(
            choose_from_supported(&s(&["2025-06-18"])),
            Some(Era::Legacy {
                version: "2025-06-18".into()
            })
        );
        assert_eq!(choose_from_supported(&s(&["2099-01-01"])), None);
    }

    #[test]
    fn only_ping_is_answered() {
        assert_eq!(
            answer_server_request(&json!(1), "ping")["result"],
            json!({})
        );
        assert_eq!(
            answer_server_request(&json!(2), "sampling/createMessage")["error"]["code"],
            METHOD_NOT_FOUND
        );
    }
}
