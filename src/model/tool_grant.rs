//! Which MCP tools an agent may use: the `server/tool` and `server/*` patterns of the
//! roster's and a run request's `tools`, parsed, matched and narrowed.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// The longest tool name a pattern may name (MCP's own advice for tool names).
const MAX_TOOL_NAME_CHARS: usize = 128;

/// One grant: one tool of one server, or (`tool: None`, written `server/*`) all of them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ToolPattern {
    pub server: String,
    /// `None`: every tool of the server.
    pub tool: Option<String>,
}

/// MCP server names are plain (they prefix tool names and are CLI arguments): the
/// configuration and the patterns share this rule.
pub fn valid_server_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

impl ToolPattern {
    /// Every tool of `server`.
    pub fn whole_server(server: &str) -> ToolPattern {
        ToolPattern {
            server: server.to_string(),
            tool: None,
        }
    }

    /// `server/tool` or `server/*`; the error says what is wrong with `text`.
    pub fn parse(text: &str) -> Result<ToolPattern, String> {
        const SHAPE: &str = "must be \"server/tool\" or \"server/*\"";
        let text = text.trim();
        let Some((server, tool)) = text.split_once('/') else {
            return Err(format!("\"{text}\" {SHAPE}"));
        };
        if !valid_server_name(server) {
            return Err(format!(
                "\"{text}\" {SHAPE}: \"{server}\" is not a server name (letters, digits, '-', '_', '.')"
            ));
        }
        if tool == "*" {
            return Ok(ToolPattern::whole_server(server));
        }
        if tool.is_empty() {
            return Err(format!("\"{text}\" {SHAPE}: the tool name is missing"));
        }
        if tool.contains('*') {
            return Err(format!(
                "\"{text}\" {SHAPE}: '*' stands only for a whole server's tools"
            ));
        }
        if tool.chars().count() > MAX_TOOL_NAME_CHARS
            || tool.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(format!(
                "\"{text}\" {SHAPE}: the tool name must be 1 to {MAX_TOOL_NAME_CHARS} characters without spaces"
            ));
        }
        Ok(ToolPattern {
            server: server.to_string(),
            tool: Some(tool.to_string()),
        })
    }

    pub fn covers(&self, server: &str, tool: &str) -> bool {
        self.server == server && self.tool.as_deref().is_none_or(|t| t == tool)
    }

    /// The tools both patterns cover, as one pattern (`None`: none in common).
    fn common(&self, other: &ToolPattern) -> Option<ToolPattern> {
        if self.server != other.server {
            return None;
        }
        match (&self.tool, &other.tool) {
            (None, _) => Some(other.clone()),
            (_, None) => Some(self.clone()),
            (Some(a), Some(b)) if a == b => Some(self.clone()),
            _ => None,
        }
    }
}

impl fmt::Display for ToolPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.server, self.tool.as_deref().unwrap_or("*"))
    }
}

impl Serialize for ToolPattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ToolPattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ToolPattern, D::Error> {
        let text = String::deserialize(d)?;
        ToolPattern::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Whether `grants` let an agent use `tool` of `server`.
pub fn allows(grants: &[ToolPattern], server: &str, tool: &str) -> bool {
    grants.iter().any(|g| g.covers(server, tool))
}

/// Whether `grants` let an agent use any tool of `server`.
pub fn touches_server(grants: &[ToolPattern], server: &str) -> bool {
    grants.iter().any(|g| g.server == server)
}

/// The tools in both `granted` and `wanted`: a request can narrow a grant, never widen
/// it. In `granted`'s order, without repeats.
pub fn narrow(granted: &[ToolPattern], wanted: &[ToolPattern]) -> Vec<ToolPattern> {
    let mut out: Vec<ToolPattern> = Vec::new();
    for g in granted {
        for w in wanted {
            if let Some(c) = g.common(w) {
                if !out.contains(&c) {
                    out.push(c);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> ToolPattern {
        ToolPattern::parse(text).unwrap()
    }

    #[test]
    fn patterns_parse_and_print_back() {
        assert_eq!(p("fs/*"), ToolPattern::whole_server("fs"));
        assert_eq!(p(" web/fetch ").tool.as_deref(), Some("fetch"));
        assert_eq!(p("a.b/x/y").tool.as_deref(), Some("x/y"));
        assert_eq!(p("fs/read").to_string(), "fs/read");
        assert_eq!(p("fs/*").to_string(), "fs/*");
        for bad in [
            "", "fs", "/x", "fs/", "f s/x", "fs/re ad", "fs/get-*", "*/x", "*", "fs/\u{7}",
        ] {
            let err = ToolPattern::parse(bad).expect_err(bad);
            assert!(err.contains("server/tool"), "{bad}: {err}");
        }
        let long = format!("fs/{}", "t".repeat(MAX_TOOL_NAME_CHARS + 1));
        assert!(ToolPattern::parse(&long).is_err());
    }

    #[test]
    fn patterns_round_trip_through_json_and_refuse_bad_text() {
        let list = vec![p("fs/*"), p("web/fetch")];
        let json = serde_json::to_string(&list).unwrap();
        assert_eq!(json, r#"["fs/*","web/fetch"]"#);
        let back: Vec<ToolPattern> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, list);
        assert!(serde_json::from_str::<Vec<ToolPattern>>(r#"["nope"]"#).is_err());
    }

    #[test]
    fn narrowing_keeps_only_what_both_allow() {
        let granted = [p("fs/*"), p("web/fetch"), p("git/log")];
        let wanted = [p("fs/read"), p("web/*"), p("git/diff"), p("other/*")];
        let got: Vec<String> = narrow(&granted, &wanted)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(got, ["fs/read", "web/fetch"]);
        assert!(narrow(&granted, &[]).is_empty());
        assert!(narrow(&[], &wanted).is_empty());
        let twice = narrow(&[p("fs/*"), p("fs/read")], &[p("fs/read")]);
        assert_eq!(twice, [p("fs/read")]);
    }

    #[test]
    fn grants_cover_their_tools_only() {
        let grants = [p("fs/*"), p("web/fetch")];
        assert!(allows(&grants, "fs", "anything"));
        assert!(allows(&grants, "web", "fetch"));
        assert!(!allows(&grants, "web", "post"));
        assert!(!allows(&grants, "git", "log"));
        assert!(touches_server(&grants, "web"));
        assert!(!touches_server(&grants, "git"));
    }
}
