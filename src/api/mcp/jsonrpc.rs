//! JSON-RPC 2.0 as MCP uses it: one message per POST body, parsed and checked into
//! a request, a notification or a response, and the error objects the spec names.

use serde_json::{json, Map, Value};

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;
/// 2026-07-28: an `MCP-Protocol-Version`, `Mcp-Method` or `Mcp-Name` header that is
/// missing or disagrees with the body.
pub const HEADER_MISMATCH: i64 = -32020;
/// 2026-07-28: a protocol version the server does not implement.
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// A JSON-RPC error object, with the id of the request it answers (`null` when the
/// request could not be read far enough to know it).
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub id: Value,
    pub code: i64,
    pub message: String,
    /// Boxed: most errors carry none, and a `Value` inline would make every
    /// `Result<_, RpcError>` large.
    pub data: Option<Box<Value>>,
}

impl RpcError {
    pub fn new(id: Value, code: i64, message: impl Into<String>) -> RpcError {
        RpcError {
            id,
            code,
            message: message.into(),
            data: None,
        }
    }

    /// -32602 naming the parameter at fault, in the message and in `data.param`.
    pub fn invalid_param(id: Value, param: &str, message: impl Into<String>) -> RpcError {
        let message = message.into();
        let message = if message.contains(param) {
            message
        } else {
            format!("{param}: {message}")
        };
        RpcError {
            data: Some(Box::new(json!({"param": param}))),
            ..RpcError::new(id, INVALID_PARAMS, message)
        }
    }

    pub fn with_data(mut self, data: Value) -> RpcError {
        self.data = Some(Box::new(data));
        self
    }

    pub fn to_json(&self) -> Value {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(data) = &self.data {
            error["data"] = (**data).clone();
        }
        json!({"jsonrpc": "2.0", "id": self.id, "error": error})
    }
}

/// One well-formed message from the client.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Request {
        id: Value,
        method: String,
        params: Map<String, Value>,
    },
    Notification {
        method: String,
        params: Map<String, Value>,
    },
    /// A response to a request of ours; this server sends none, so it is only acknowledged.
    Response,
}

impl Message {
    pub fn method(&self) -> Option<&str> {
        match self {
            Message::Request { method, .. } | Message::Notification { method, .. } => Some(method),
            Message::Response => None,
        }
    }

    pub fn params(&self) -> Option<&Map<String, Value>> {
        match self {
            Message::Request { params, .. } | Message::Notification { params, .. } => Some(params),
            Message::Response => None,
        }
    }
}

/// A successful response to request `id`.
pub fn result(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// A notification from the server.
pub fn notification(method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "method": method, "params": params})
}

/// Parses one POST body. MCP ids are strings or integers (never null); `params` is
/// an object when present; 2025-11-25 removed JSON-RPC batches, so an array is an
/// invalid request.
pub fn parse(body: &[u8]) -> Result<Message, RpcError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        RpcError::new(
            Value::Null,
            PARSE_ERROR,
            format!("Parse error: the body is not valid JSON ({e})"),
        )
    })?;
    let fields = match value {
        Value::Object(fields) => fields,
        Value::Array(_) => {
            return Err(RpcError::new(
                Value::Null,
                INVALID_REQUEST,
                "Invalid Request: JSON-RPC batches are not supported (MCP 2025-11-25 removed them); send one message per request",
            ))
        }
        _ => {
            return Err(RpcError::new(
                Value::Null,
                INVALID_REQUEST,
                "Invalid Request: the body must be a JSON-RPC object",
            ))
        }
    };
    // The id is echoed in the error when it is usable, so the client can match it.
    let id = match fields.get("id") {
        None => None,
        Some(id @ Value::String(_)) => Some(id.clone()),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Some(Value::Number(n.clone())),
        Some(_) => {
            return Err(RpcError::new(
                Value::Null,
                INVALID_REQUEST,
                "Invalid Request: id must be a string or an integer",
            ))
        }
    };
    let echo = id.clone().unwrap_or(Value::Null);
    match fields.get("jsonrpc") {
        Some(Value::String(v)) if v == "2.0" => {}
        Some(other) => {
            return Err(RpcError::new(
                echo,
                INVALID_REQUEST,
                format!(
                    "Invalid Request: jsonrpc must be \"2.0\", not {}",
                    crate::util::cut_chars(&other.to_string(), 40)
                ),
            ))
        }
        None => {
            return Err(RpcError::new(
                echo,
                INVALID_REQUEST,
                "Invalid Request: jsonrpc is missing (it must be \"2.0\")",
            ))
        }
    }
    let method = match fields.get("method") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        Some(_) => {
            return Err(RpcError::new(
                echo,
                INVALID_REQUEST,
                "Invalid Request: method must be a non-empty string",
            ))
        }
        None if id.is_some() && (fields.contains_key("result") || fields.contains_key("error")) => {
            return Ok(Message::Response)
        }
        None => {
            return Err(RpcError::new(
                echo,
                INVALID_REQUEST,
                "Invalid Request: method is missing",
            ))
        }
    };
    let params = match fields.get("params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(p)) => p.clone(),
        Some(_) => {
            return Err(RpcError::invalid_param(
                echo,
                "params",
                "params must be an object",
            ))
        }
    };
    Ok(match id {
        Some(id) => Message::Request { id, method, params },
        None => Message::Notification { method, params },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(body: &str) -> (i64, Value) {
        let e = parse(body.as_bytes()).expect_err(body);
        (e.code, e.id)
    }

    #[test]
    fn requests_notifications_and_responses_are_told_apart() {
        let m = parse(br#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#).unwrap();
        assert_eq!(
            m,
            Message::Request {
                id: json!(7),
                method: "ping".into(),
                params: Map::new()
            }
        );
        let m = parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert!(matches!(m, Message::Notification { .. }));
        let m = parse(br#"{"jsonrpc":"2.0","id":"a","result":{}}"#).unwrap();
        assert_eq!(m, Message::Response);
    }

    #[test]
    fn malformed_messages_get_the_spec_codes() {
        assert_eq!(code("{not json").0, PARSE_ERROR);
        assert_eq!(code("").0, PARSE_ERROR);
        assert_eq!(
            code(r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#).0,
            INVALID_REQUEST
        );
        assert_eq!(code("3").0, INVALID_REQUEST);
        assert_eq!(
            code(r#"{"jsonrpc":"1.0","id":4,"method":"ping"}"#),
            (INVALID_REQUEST, json!(4))
        );
        assert_eq!(code(r#"{"id":4,"method":"ping"}"#).0, INVALID_REQUEST);
        assert_eq!(
            code(r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#).0,
            INVALID_REQUEST
        );
        assert_eq!(
            code(r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#).0,
            INVALID_REQUEST
        );
        assert_eq!(
            code(r#"{"jsonrpc":"2.0","id":"x","method":5}"#),
            (INVALID_REQUEST, json!("x"))
        );
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":1}"#).0, INVALID_REQUEST);
        let e = parse(br#"{"jsonrpc":"2.0","id":1,"method":"ping","params":[1]}"#).unwrap_err();
        assert_eq!(e.code, INVALID_PARAMS);
        assert_eq!(e.data.as_deref(), Some(&json!({"param": "params"})));
    }

    #[test]
    fn an_invalid_param_error_names_the_param() {
        let e = RpcError::invalid_param(json!(1), "name", "unknown tool \"x\"");
        assert_eq!(e.message, "name: unknown tool \"x\"");
        let v = e.to_json();
        assert_eq!(v["error"]["code"], INVALID_PARAMS);
        assert_eq!(v["error"]["data"]["param"], "name");
        assert_eq!(v["id"], 1);
    }
}
