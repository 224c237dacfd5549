//! Typed tool descriptions and tool results: content blocks kept as text, binary content
//! summarized, the whole result bounded (untrusted text headed for a model's context).

use serde::Serialize;
use serde_json::Value;

/// Tool output kept for a model: at most this many bytes of text in all, then a note.
pub const MAX_RESULT_BYTES: usize = 16 * 1024;

/// One tool as a server lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolInfo {
    pub name: String,
    pub description: String,
    #[serde(rename = "inputSchema")]
    pub input_schema: Value,
}

impl ToolInfo {
    /// A `tools/list` entry; `None` when it has no usable name.
    pub fn from_wire(tool: &Value) -> Option<ToolInfo> {
        let name = tool.get("name")?.as_str()?.trim();
        if name.is_empty() {
            return None;
        }
        let input_schema = match tool.get("inputSchema") {
            Some(s @ Value::Object(_)) => s.clone(),
            _ => serde_json::json!({"type": "object"}),
        };
        Some(ToolInfo {
            name: name.to_string(),
            description: tool
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            input_schema,
        })
    }
}

/// One content block of a result, reduced to what a model can read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlock {
    /// Text content, kept (up to the bound).
    Text { text: String },
    /// Images, audio, embedded or linked resources: a one-line description of what it was.
    Summary { text: String },
}

impl ContentBlock {
    pub fn text(&self) -> &str {
        match self {
            ContentBlock::Text { text } | ContentBlock::Summary { text } => text,
        }
    }
}

/// The outcome of `tools/call`: its blocks, bounded, and whether the tool reported an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToolResult {
    pub content: Vec<ContentBlock>,
    pub is_error: bool,
    /// True when the output was cut to [`MAX_RESULT_BYTES`].
    pub truncated: bool,
}

impl ToolResult {
    /// An error result made here (timeout, cancelled, server gone), for the model to read.
    pub fn error(message: impl Into<String>) -> ToolResult {
        ToolResult {
            content: vec![ContentBlock::Text {
                text: message.into(),
            }],
            is_error: true,
            truncated: false,
        }
    }

    /// Every block's text, one per paragraph: what a model or a terminal is shown.
    pub fn text(&self) -> String {
        self.content
            .iter()
            .map(ContentBlock::text)
            .collect::<Vec<_>>()
            .join("\n\n")
    }

    /// Builds the typed result of a `tools/call` result object, bounded to `max_bytes`.
    pub fn from_wire(result: &Value, max_bytes: usize) -> ToolResult {
        let is_error = result
            .get("isError")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let mut blocks: Vec<ContentBlock> = result
            .get("content")
            .and_then(Value::as_array)
            .map(|items| items.iter().map(block_from_wire).collect())
            .unwrap_or_default();
        // A result with only structured output still says something.
        if blocks.is_empty() {
            if let Some(structured) = result.get("structuredContent") {
                blocks.push(ContentBlock::Text {
                    text: structured.to_string(),
                });
            }
        }
        let (content, truncated) = bound(blocks, max_bytes);
        ToolResult {
            content,
            is_error,
            truncated,
        }
    }
}

fn block_from_wire(block: &Value) -> ContentBlock {
    let kind = block.get("type").and_then(Value::as_str).unwrap_or("");
    let str_field = |k: &str| block.get(k).and_then(Value::as_str).unwrap_or("");
    let b64_len = |k: &str| str_field(k).len() / 4 * 3;
    match kind {
        "text" => ContentBlock::Text {
            text: str_field("text").to_string(),
        },
        "image" | "audio" => ContentBlock::Summary {
            text: format!(
                "[{kind}: {}, about {} bytes, not shown]",
                mime_or_unknown(str_field("mimeType")),
                b64_len("data")
            ),
        },
        "resource" => {
            let resource = block.get("resource").cloned().unwrap_or(Value::Null);
            let uri = resource.get("uri").and_then(Value::as_str).unwrap_or("");
            let mime = resource
                .get("mimeType")
                .and_then(Value::as_str)
                .unwrap_or("");
            match resource.get("text").and_then(Value::as_str) {
                // Embedded text is text: keep it, saying where it came from.
                Some(text) => ContentBlock::Text {
                    text: format!("[resource {uri}]\n{text}"),
                },
                None => ContentBlock::Summary {
                    text: format!(
                        "[resource {uri}: {}, about {} bytes of binary, not shown]",
                        mime_or_unknown(mime),
                        resource
                            .get("blob")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .len()
                            / 4
                            * 3
                    ),
                },
            }
        }
        "resource_link" => ContentBlock::Summary {
            text: format!(
                "[resource link {}{}]",
                str_field("uri"),
                match str_field("name") {
                    "" => String::new(),
                    n => format!(" ({n})"),
                }
            ),
        },
        other => ContentBlock::Summary {
            text: format!(
                "[{} content, not shown]",
                if other.is_empty() { "untyped" } else { other }
            ),
        },
    }
}

fn mime_or_unknown(mime: &str) -> &str {
    if mime.is_empty() {
        "unknown type"
    } else {
        mime
    }
}

/// Keeps blocks until `max_bytes` of text are used; cuts the one that crosses the bound at a
/// character boundary and appends a note saying how much was left out.
fn bound(blocks: Vec<ContentBlock>, max_bytes: usize) -> (Vec<ContentBlock>, bool) {
    let total: usize = blocks.iter().map(|b| b.text().len()).sum();
    if total <= max_bytes {
        return (blocks, false);
    }
    let mut kept = Vec::new();
    let mut used = 0;
    for block in blocks {
        let len = block.text().len();
        if used + len <= max_bytes {
            used += len;
            kept.push(block);
            continue;
        }
        let room = max_bytes - used;
        if room > 0 {
            let text = block.text();
            let mut cut = room;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            let piece = text[..cut].to_string();
            used += cut;
            kept.push(match block {
                ContentBlock::Text { .. } => ContentBlock::Text { text: piece },
                ContentBlock::Summary { .. } => ContentBlock::Summary { text: piece },
            });
        }
        break;
    }
    kept.push(ContentBlock::Summary {
        text: format!("[tool output cut: {} of {} bytes shown]", used, total),
    });
    (kept, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_is_kept_and_binary_is_summarized() {
        let r = ToolResult::from_wire(
            &json!({"content": [
                {"type": "text", "text": "hello"},
                {"type": "image", "data": "AAAAAAAA", "mimeType": "image/png"},
                {"type": "audio", "data": "AAAA", "mimeType": "audio/wav"},
                {"type": "resource", "resource": {"uri": "file:///a.txt", "text": "inside"}},
                {"type": "resource", "resource": {"uri": "file:///b.bin", "blob": "AAAA", "mimeType": "application/octet-stream"}},
                {"type": "resource_link", "uri": "file:///c", "name": "c"}
            ]}),
            MAX_RESULT_BYTES,
        );
        assert!(!r.is_error && !r.truncated);
        assert_eq!(
            r.content[0],
            ContentBlock::Text {
                text: "hello".into()
            }
        );
        assert_eq!(
            r.content[1].text(),
            "[image: image/png, about 6 bytes, not shown]"
        );
        assert_eq!(
            r.content[2].text(),
            "[audio: audio/wav, about 3 bytes, not shown]"
        );
        assert_eq!(r.content[3].text(), "[resource file:///a.txt]\ninside");
        assert!(r.content[4]
            .text()
            .contains("file:///b.bin: application/octet-stream"));
        assert_eq!(r.content[5].text(), "[resource link file:///c (c)]");
        assert!(!r.text().contains("AAAA"));
    }

    #[test]
    fn is_error_is_passed_on() {
        let r = ToolResult::from_wire(
            &json!({"content": [{"type": "text", "text": "boom"}], "isError": true}),
            100,
        );
        assert!(r.is_error);
        assert_eq!(r.text(), "boom");
    }

    #[test]
    fn long_output_is_cut_at_a_char_boundary_with_a_note() {
        let long = "é".repeat(20_000); // 40,000 bytes
        let r = ToolResult::from_wire(
            &json!({"content": [{"type": "text", "text": long}]}),
            MAX_RESULT_BYTES,
        );
        assert!(r.truncated);
        assert_eq!(r.content.len(), 2);
        assert!(r.content[0].text().len() <= MAX_RESULT_BYTES);
        assert_eq!(
            r.content[1].text(),
            "[tool output cut: 16384 of 40000 bytes shown]"
        );
    }

    #[test]
    fn structured_only_results_are_shown_as_json() {
        let r = ToolResult::from_wire(
            &json!({"content": [], "structuredContent": {"sum": 3}}),
            100,
        );
        assert_eq!(r.text(), "{\"sum\":3}");
    }

    #[test]
    fn tool_info_needs_a_name_and_defaults_the_schema() {
        assert!(ToolInfo::from_wire(&json!({"description": "x"})).is_none());
        let t = ToolInfo::from_wire(&json!({"name": "echo"})).expect("named");
        assert_eq!(t.input_schema, json!({"type": "object"}));
        assert_eq!(t.description, "");
    }
}
