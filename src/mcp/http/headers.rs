//! The 2026-07-28 header encoding: values made header-safe (`=?base64?…?=`), the
//! `Mcp-Param-*` headers a tool's `x-mcp-header` annotations ask for, and checking those
//! annotations.

use serde_json::Value;

/// A header value as the 2026-07-28 transport requires: plain visible ASCII as is,
/// anything else (or the sentinel pattern itself) as `=?base64?…?=`.
pub fn header_safe(value: &str) -> String {
    let plain = !value.is_empty()
        && value.bytes().all(|b| (0x20..=0x7e).contains(&b))
        && !value.starts_with(' ')
        && !value.ends_with(' ')
        && (!value.starts_with("=?base64?") || !value.ends_with("?="));
    if plain {
        value.to_string()
    } else {
        format!(
            "=?base64?{}?=",
            crate::util::base64::base64_encode(value.as_bytes())
        )
    }
}

/// An HTTP header name token (RFC 9110 `tchar`s, at least one).
fn is_header_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The `Mcp-Param-{name}` headers a 2026-07-28 tool asks for: every property reachable
/// through `properties` keys alone that carries `x-mcp-header`, with a primitive value.
pub fn param_headers(schema: &Value, arguments: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    collect_param_headers(schema, Some(arguments), &mut out);
    out
}

fn collect_param_headers(schema: &Value, value: Option<&Value>, out: &mut Vec<(String, String)>) {
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (key, sub) in props {
        let v = value.and_then(|v| v.get(key));
        if let Some(name) = sub.get("x-mcp-header").and_then(Value::as_str) {
            let token = is_header_token(name);
            let text = match v {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Bool(b)) => Some(b.to_string()),
                Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Some(n.to_string()),
                _ => None,
            };
            if let (true, Some(text)) = (token, text) {
                out.push((name.to_string(), text));
            }
        }
        collect_param_headers(sub, v, out);
    }
}

/// Why a tool's `x-mcp-header` annotations are invalid (the 2026-07-28 revision has an
/// HTTP client drop such a tool from its list), or `None` when they are fine.
pub fn x_mcp_header_problem(schema: &Value) -> Option<String> {
    let mut seen: Vec<String> = Vec::new();
    check_annotations(schema, true, &mut seen)
}

fn check_annotations(node: &Value, reachable: bool, seen: &mut Vec<String>) -> Option<String> {
    let Value::Object(map) = node else {
        if let Value::Array(items) = node {
            return items.iter().find_map(|v| check_annotations(v, false, seen));
        }
        return None;
    };
    if let Some(header) = map.get("x-mcp-header") {
        let Some(name) = header.as_str() else {
            return Some("x-mcp-header is not a string".into());
        };
        let token = is_header_token(name);
        if !token {
            return Some(format!(
                "x-mcp-header \"{name}\" is not a header name token"
            ));
        }
        if !reachable {
            return Some(format!(
                "x-mcp-header \"{name}\" is not on a property reached through properties alone"
            ));
        }
        if !matches!(
            map.get("type").and_then(Value::as_str),
            Some("string" | "integer" | "boolean")
        ) {
            return Some(format!(
                "x-mcp-header \"{name}\" is on a property that is not a string, integer or boolean"
            ));
        }
        let lower = name.to_ascii_lowercase();
        if seen.contains(&lower) {
            return Some(format!("x-mcp-header \"{name}\" is used twice"));
        }
        seen.push(lower);
    }
    for (key, value) in map {
        let problem = if key == "properties" {
            match value {
                Value::Object(props) => props
                    .values()
                    .find_map(|p| check_annotations(p, reachable, seen)),
                other => check_annotations(other, false, seen),
            }
        } else {
            check_annotations(value, false, seen)
        };
        if problem.is_some() {
            return problem;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn header_values_outside_plain_ascii_are_base64_wrapped() {
        assert_eq!(header_safe("us-west1"), "us-west1");
        assert_eq!(
            header_safe("Hello, 世界"),
            "=?base64?SGVsbG8sIOS4lueVjA==?="
        );
        assert_eq!(header_safe(" padded "), "=?base64?IHBhZGRlZCA=?=");
        assert_eq!(header_safe("line1\nline2"), "=?base64?bGluZTEKbGluZTI=?=");
        assert_eq!(
            header_safe("=?base64?literal?="),
            "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?="
        );
    }

    #[test]
    fn invalid_x_mcp_header_annotations_are_found() {
        let ok = json!({"type": "object", "properties": {"a": {"type": "string", "x-mcp-header": "A"},
            "o": {"type": "object", "properties": {"n": {"type": "integer", "x-mcp-header": "N"}}}}});
        assert_eq!(x_mcp_header_problem(&ok), None);
        let cases = [
            json!({"properties": {"a": {"type": "number", "x-mcp-header": "A"}}}),
            json!({"properties": {"a": {"type": "string", "x-mcp-header": "A B"}}}),
            json!({"properties": {"a": {"type": "string", "x-mcp-header": ""}}}),
            json!({"properties": {"a": {"type": "string", "x-mcp-header": "A"}, "b": {"type": "string", "x-mcp-header": "a"}}}),
            json!({"properties": {"l": {"type": "array", "items": {"type": "string", "x-mcp-header": "I"}}}}),
            json!({"properties": {"u": {"anyOf": [{"type": "string", "x-mcp-header": "U"}]}}}),
        ];
        for c in cases {
            assert!(x_mcp_header_problem(&c).is_some(), "{c}");
        }
    }

    #[test]
    fn x_mcp_header_properties_become_param_headers() {
        let schema = json!({"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "query": {"type": "string"},
            "opts": {"type": "object", "properties": {"n": {"type": "integer", "x-mcp-header": "N"}}},
            "bad": {"type": "string", "x-mcp-header": "Bad Name"}
        }});
        let got = param_headers(
            &schema,
            &json!({"region": "us-west1", "query": "q", "opts": {"n": 42}, "bad": "x"}),
        );
        assert_eq!(
            got,
            vec![
                ("Region".to_string(), "us-west1".to_string()),
                ("N".to_string(), "42".to_string())
            ]
        );
        assert!(param_headers(&schema, &json!({"query": "q"})).is_empty());
    }
}
