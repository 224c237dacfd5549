//! `MESH_MCP_CONFIG` (the de-facto `{"mcpServers": {...}}` file) and `MESH_TOOL_TIMEOUT_SECS`,
//! parsed and validated through the project's [`Env`] trait so bad input names its field.

use crate::secret::Secret;
use crate::util::env::Env;
use serde_json::{Map, Value};
use std::fmt;
use std::time::Duration;

pub const DEFAULT_TOOL_TIMEOUT: Duration = Duration::from_secs(60);
/// A tool call may be bounded to at most a day: a larger number is a typo.
const MAX_TOOL_TIMEOUT_SECS: u64 = 86_400;

/// Every configured MCP server, in the file's order, and the per-call bound.
#[derive(Debug, Clone)]
pub struct McpConfig {
    pub servers: Vec<ServerConfig>,
    pub tool_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub name: String,
    pub transport: TransportConfig,
}

/// How to reach a server. Header and env values are secrets (bearer tokens, API keys).
#[derive(Debug, Clone)]
pub enum TransportConfig {
    /// Streamable HTTP at `url`, every request carrying `headers`.
    Http {
        url: String,
        headers: Vec<(String, Secret)>,
    },
    /// A child process speaking newline-delimited JSON-RPC on stdin/stdout.
    Stdio {
        command: String,
        args: Vec<String>,
        env: Vec<(String, Secret)>,
    },
}

/// A configuration problem: which server (if any), which field, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpConfigError {
    pub variable: &'static str,
    pub server: Option<String>,
    pub field: String,
    pub reason: String,
}

impl fmt::Display for McpConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.server {
            Some(s) => write!(
                f,
                "{}: server \"{s}\": {}: {}",
                self.variable, self.field, self.reason
            ),
            None => write!(f, "{}: {}: {}", self.variable, self.field, self.reason),
        }
    }
}

impl std::error::Error for McpConfigError {}

fn file_err(field: &str, reason: impl Into<String>) -> McpConfigError {
    McpConfigError {
        variable: "MESH_MCP_CONFIG",
        server: None,
        field: field.to_string(),
        reason: reason.into(),
    }
}

fn server_err(server: &str, field: &str, reason: impl Into<String>) -> McpConfigError {
    McpConfigError {
        variable: "MESH_MCP_CONFIG",
        server: Some(server.to_string()),
        field: field.to_string(),
        reason: reason.into(),
    }
}

impl McpConfig {
    /// Reads `MESH_MCP_CONFIG` (a file path) and `MESH_TOOL_TIMEOUT_SECS`. `Ok(None)` when no
    /// MCP config is set: the team then runs without tools.
    pub fn from_env(env: &dyn Env) -> Result<Option<McpConfig>, McpConfigError> {
        let tool_timeout = tool_timeout(env)?;
        let Some(path) = env
            .var("MESH_MCP_CONFIG")
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
        else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| file_err("path", format!("cannot read {path}: {e}")))?;
        Self::parse(&text, env, tool_timeout).map(Some)
    }

    /// Parses the file's text; `${VAR}` in header and env values is read from `env`.
    pub fn parse(
        text: &str,
        env: &dyn Env,
        tool_timeout: Duration,
    ) -> Result<McpConfig, McpConfigError> {
        let root: Value = serde_json::from_str(text).map_err(|e| {
            file_err(
                "file",
                format!(
                    "not valid JSON at line {} column {}: {e}",
                    e.line(),
                    e.column()
                ),
            )
        })?;
        let servers = root
            .get("mcpServers")
            .ok_or_else(|| {
                file_err(
                    "mcpServers",
                    "missing: the file needs {\"mcpServers\": {\"name\": {...}}}",
                )
            })?
            .as_object()
            .ok_or_else(|| file_err("mcpServers", "must be an object of servers by name"))?;
        let mut parsed = Vec::with_capacity(servers.len());
        for (name, server) in servers {
            parsed.push(parse_server(name, server, env)?);
        }
        Ok(McpConfig {
            servers: parsed,
            tool_timeout,
        })
    }
}

fn tool_timeout(env: &dyn Env) -> Result<Duration, McpConfigError> {
    let Some(raw) = env
        .var("MESH_TOOL_TIMEOUT_SECS")
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
    else {
        return Ok(DEFAULT_TOOL_TIMEOUT);
    };
    match raw.parse::<u64>() {
        Ok(secs) if (1..=MAX_TOOL_TIMEOUT_SECS).contains(&secs) => Ok(Duration::from_secs(secs)),
        _ => Err(McpConfigError {
            variable: "MESH_TOOL_TIMEOUT_SECS",
            server: None,
            field: "value".to_string(),
            reason: format!(
                "\"{raw}\" is not a whole number of seconds from 1 to {MAX_TOOL_TIMEOUT_SECS}"
            ),
        }),
    }
}

fn parse_server(name: &str, value: &Value, env: &dyn Env) -> Result<ServerConfig, McpConfigError> {
    if !crate::model::tool_grant::valid_server_name(name) {
        return Err(server_err(
            name,
            "name",
            "use 1-64 letters, digits, '-', '_' or '.'",
        ));
    }
    let obj = value.as_object().ok_or_else(|| {
        server_err(
            name,
            "server",
            "must be an object with \"url\" or \"command\"",
        )
    })?;
    let kind = match obj.get("type") {
        None => None,
        Some(Value::String(t)) => Some(t.as_str()),
        Some(_) => return Err(server_err(name, "type", "must be a string")),
    };
    match kind {
        Some("sse") => {
            return Err(server_err(
                name,
                "type",
                "the deprecated HTTP+SSE transport is not supported; use the server's Streamable HTTP endpoint (\"type\": \"http\")",
            ))
        }
        None | Some("http") | Some("streamable-http") | Some("streamableHttp") | Some("stdio") => {}
        Some(other) => {
            return Err(server_err(
                name,
                "type",
                format!("\"{other}\" is not a transport (use \"http\" or \"stdio\")"),
            ))
        }
    }
    let has_url = obj.contains_key("url");
    let has_command = obj.contains_key("command");
    let transport = match (has_url, has_command) {
        (true, true) => {
            return Err(server_err(
                name,
                "url",
                "give either \"url\" (HTTP) or \"command\" (stdio), not both",
            ))
        }
        (false, false) => {
            return Err(server_err(
                name,
                "url",
                "missing: give \"url\" (Streamable HTTP) or \"command\" (stdio)",
            ))
        }
        (true, false) => {
            if kind == Some("stdio") {
                return Err(server_err(
                    name,
                    "type",
                    "\"stdio\" needs \"command\", not \"url\"",
                ));
            }
            let url = string_field(name, obj, "url")?;
            let lower = url.to_ascii_lowercase();
            if !(lower.starts_with("http://") || lower.starts_with("https://"))
                || url.parse::<hyper::Uri>().is_err()
            {
                return Err(server_err(
                    name,
                    "url",
                    format!("\"{url}\" is not an http:// or https:// URL"),
                ));
            }
            let headers = secret_map(name, obj, "headers", env)?;
            for (header, value) in &headers {
                if hyper::header::HeaderName::from_bytes(header.as_bytes()).is_err() {
                    return Err(server_err(
                        name,
                        &format!("headers.{header}"),
                        "not a valid header name",
                    ));
                }
                if hyper::header::HeaderValue::from_str(value.expose()).is_err() {
                    return Err(server_err(
                        name,
                        &format!("headers.{header}"),
                        "the value is not a valid header value (control characters or non-ASCII)",
                    ));
                }
            }
            TransportConfig::Http { url, headers }
        }
        (false, true) => {
            if matches!(
                kind,
                Some("http") | Some("streamable-http") | Some("streamableHttp")
            ) {
                return Err(server_err(
                    name,
                    "type",
                    "an HTTP server needs \"url\", not \"command\"",
                ));
            }
            let command = string_field(name, obj, "command")?;
            let args = match obj.get("args") {
                None => Vec::new(),
                Some(Value::Array(items)) => items
                    .iter()
                    .enumerate()
                    .map(|(i, a)| {
                        a.as_str().map(str::to_string).ok_or_else(|| {
                            server_err(name, &format!("args[{i}]"), "must be a string")
                        })
                    })
                    .collect::<Result<_, _>>()?,
                Some(_) => return Err(server_err(name, "args", "must be an array of strings")),
            };
            let env_vars = secret_map(name, obj, "env", env)?;
            for (var, _) in &env_vars {
                if var.is_empty() || var.contains('=') || var.contains('\0') {
                    return Err(server_err(
                        name,
                        &format!("env.{var}"),
                        "not a valid variable name",
                    ));
                }
            }
            TransportConfig::Stdio {
                command,
                args,
                env: env_vars,
            }
        }
    };
    Ok(ServerConfig {
        name: name.to_string(),
        transport,
    })
}

fn string_field(
    server: &str,
    obj: &Map<String, Value>,
    field: &str,
) -> Result<String, McpConfigError> {
    match obj.get(field) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        Some(Value::String(_)) => Err(server_err(server, field, "must not be empty")),
        _ => Err(server_err(server, field, "must be a string")),
    }
}

/// An object of string values (`headers`, `env`), each with `${VAR}` expanded: secrets.
fn secret_map(
    server: &str,
    obj: &Map<String, Value>,
    field: &str,
    env: &dyn Env,
) -> Result<Vec<(String, Secret)>, McpConfigError> {
    let Some(value) = obj.get(field) else {
        return Ok(Vec::new());
    };
    let map = value
        .as_object()
        .ok_or_else(|| server_err(server, field, "must be an object of string values"))?;
    map.iter()
        .map(|(key, v)| {
            let at = format!("{field}.{key}");
            let raw = v
                .as_str()
                .ok_or_else(|| server_err(server, &at, "must be a string"))?;
            let expanded = expand_vars(raw, env).map_err(|why| server_err(server, &at, why))?;
            Ok((key.clone(), Secret::new(expanded)))
        })
        .collect()
}

/// Replaces every `${VAR}` with the variable's value. An unset variable is an error (a
/// missing token should stop startup, not send `Bearer ` to a server); `$` alone is kept.
pub fn expand_vars(raw: &str, env: &dyn Env) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| "an unclosed ${ in the value".to_string())?;
        let var = &after[..end];
        let valid = !var.is_empty() && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!(
                "${{{var}}} is not a variable reference like ${{TOKEN}}"
            ));
        }
        match env.var(var) {
            Some(v) => out.push_str(&v),
            None => return Err(format!("references ${{{var}}}, which is not set")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&'static str, &'static str)]) -> HashMap<&'static str, &'static str> {
        pairs.iter().copied().collect()
    }

    fn parse(
        text: &str,
        e: &HashMap<&'static str, &'static str>,
    ) -> Result<McpConfig, McpConfigError> {
        McpConfig::parse(text, e, DEFAULT_TOOL_TIMEOUT)
    }

    #[test]
    fn parses_http_and_stdio_servers_with_expanded_secrets() {
        let e = env(&[("TOKEN", "s3cret"), ("KEY", "k-1")]);
        let cfg = parse(
            r#"{"mcpServers": {
                "search": {"url": "https://example.com/mcp", "headers": {"Authorization": "Bearer ${TOKEN}"}},
                "files": {"type": "stdio", "command": "npx", "args": ["-y", "server"], "env": {"API_KEY": "${KEY}"}},
                "web": {"type": "streamable-http", "url": "http://127.0.0.1:3001/mcp"}
            }}"#,
            &e,
        )
        .expect("valid config");
        assert_eq!(cfg.servers.len(), 3);
        assert_eq!(cfg.servers[0].name, "search");
        match &cfg.servers[0].transport {
            TransportConfig::Http { url, headers } => {
                assert_eq!(url, "https://example.com/mcp");
                assert_eq!(headers[0].0, "Authorization");
                assert_eq!(headers[0].1.expose(), "Bearer s3cret");
            }
            other => panic!("expected http, got {other:?}"),
        }
        match &cfg.servers[1].transport {
            TransportConfig::Stdio { command, args, env } => {
                assert_eq!(command, "npx");
                assert_eq!(args, &["-y", "server"]);
                assert_eq!(env[0].1.expose(), "k-1");
            }
            other => panic!("expected stdio, got {other:?}"),
        }
        assert!(matches!(
            cfg.servers[2].transport,
            TransportConfig::Http { .. }
        ));
    }

    #[test]
    fn debug_output_never_shows_header_or_env_values() {
        let e = env(&[("TOKEN", "s3cret-token")]);
        let cfg = parse(
            r#"{"mcpServers": {"a": {"url": "https://x.test/mcp", "headers": {"X-Key": "${TOKEN}"}},
                "b": {"command": "srv", "env": {"K": "plain-secret"}}}}"#,
            &e,
        )
        .expect("valid");
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("s3cret-token"), "{shown}");
        assert!(!shown.contains("plain-secret"), "{shown}");
        assert!(shown.contains("X-Key"));
    }

    #[test]
    fn errors_name_the_server_and_the_field() {
        let e = env(&[]);
        let cases: &[(&str, &str)] = &[
            (
                r#"{"mcpServers": {"old": {"type": "sse", "url": "https://x.test/sse"}}}"#,
                "server \"old\": type: the deprecated HTTP+SSE",
            ),
            (
                r#"{"mcpServers": {"a": {"url": "ftp://x"}}}"#,
                "server \"a\": url:",
            ),
            (r#"{"mcpServers": {"a": {}}}"#, "server \"a\": url: missing"),
            (
                r#"{"mcpServers": {"a": {"url": "https://x.test", "command": "y"}}}"#,
                "not both",
            ),
            (
                r#"{"mcpServers": {"a": {"command": "y", "args": [1]}}}"#,
                "server \"a\": args[0]: must be a string",
            ),
            (
                r#"{"mcpServers": {"a": {"command": "y", "env": {"K": "${MISSING}"}}}}"#,
                "server \"a\": env.K: references ${MISSING}, which is not set",
            ),
            (
                r#"{"mcpServers": {"a": {"url": "https://x.test", "headers": {"Bad Name": "v"}}}}"#,
                "headers.Bad Name: not a valid header name",
            ),
            (
                r#"{"mcpServers": {"a b": {"command": "y"}}}"#,
                "server \"a b\": name:",
            ),
            (
                r#"{"mcpServers": {"a": {"type": "ws", "url": "https://x.test"}}}"#,
                "server \"a\": type: \"ws\"",
            ),
            (r#"{"servers": {}}"#, "MESH_MCP_CONFIG: mcpServers: missing"),
            (
                r#"{"mcpServers": "#,
                "MESH_MCP_CONFIG: file: not valid JSON",
            ),
        ];
        for (text, want) in cases {
            let got = parse(text, &e).expect_err(text).to_string();
            assert!(
                got.contains(want),
                "{text}: got {got:?}, want it to contain {want:?}"
            );
            assert!(!got.contains('\n'), "one line: {got:?}");
        }
    }

    #[test]
    fn var_expansion_keeps_plain_dollars_and_rejects_bad_references() {
        let e = env(&[("A", "1")]);
        assert_eq!(expand_vars("x${A}y${A}", &e).as_deref(), Ok("x1y1"));
        assert_eq!(expand_vars("cost $5", &e).as_deref(), Ok("cost $5"));
        assert!(expand_vars("${A", &e).is_err());
        assert!(expand_vars("${A-B}", &e).is_err());
    }

    #[test]
    fn tool_timeout_defaults_to_60_and_rejects_nonsense() {
        let none: Option<McpConfig> = McpConfig::from_env(&env(&[])).expect("no config");
        assert!(none.is_none());
        assert_eq!(tool_timeout(&env(&[])), Ok(DEFAULT_TOOL_TIMEOUT));
        assert_eq!(
            tool_timeout(&env(&[("MESH_TOOL_TIMEOUT_SECS", "5")])),
            Ok(Duration::from_secs(5))
        );
        for bad in ["0", "-1", "abc", "1.5", "999999"] {
            let e = tool_timeout(&env(&[("MESH_TOOL_TIMEOUT_SECS", bad)])).expect_err(bad);
            assert_eq!(e.variable, "MESH_TOOL_TIMEOUT_SECS");
        }
    }

    #[test]
    fn a_missing_file_names_the_path() {
        let e = env(&[("MESH_MCP_CONFIG", "/nonexistent/mcp.json")]);
        let got = McpConfig::from_env(&e)
            .expect_err("missing file")
            .to_string();
        assert!(got.contains("/nonexistent/mcp.json"), "{got}");
    }
}
