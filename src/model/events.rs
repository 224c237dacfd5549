//! The run events of SPEC §6: their data shapes, their wire names, and their SSE framing.

use crate::model::error_kind::ErrorKind;
use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentState {
    Planning,
    Running,
    Writing,
    Queued,
    Retrying,
    Done,
    Skipped,
    Failed,
    /// The run waits for its plan to be approved (`review`): no agent works meanwhile.
    #[serde(rename = "awaiting_review")]
    AwaitingReview,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Running,
    Completed,
    Cancelled,
    Failed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl Usage {
    pub fn add(&mut self, other: Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
    }

    /// Adds a call's usage to a run's total. The total stays `None` (null: not
    /// reported) until some call reports usage; a server that reports none is never
    /// shown as 0 tokens.
    pub fn add_to(total: &mut Option<Usage>, call: Option<Usage>) {
        if let Some(u) = call {
            total.get_or_insert_with(Usage::default).add(u);
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusEvent {
    pub agent: Option<String>,
    pub state: AgentState,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlanSource {
    Orchestrator,
    Fallback,
    Request,
    /// The plan as a reviewer approved it (`POST /api/runs/{id}/plan`).
    Review,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanEvent {
    pub agents: Vec<String>,
    pub reasoning: String,
    pub tasks: BTreeMap<String, String>,
    pub source: PlanSource,
    pub dropped: Vec<String>,
    /// Why the fallback was used (empty otherwise).
    pub reason: String,
    /// How the team runs: `sequential` or `parallel`.
    pub schedule: crate::model::run_config::Schedule,
    /// Every team member -> the members it works after (acyclic, maybe empty lists).
    pub after: BTreeMap<String, Vec<String>>,
    /// Dependency edges of the plan left out of `after`, with the reason.
    pub dropped_after: Vec<crate::model::dependency::DroppedDependency>,
    /// The team in the order it runs under `schedule`: members of one stage may run
    /// at once (parallel: grouped by longest dependency depth; sequential: one each).
    pub stages: Vec<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamStartEvent {
    pub agent: String,
    pub model: String,
    pub provider: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub substituted_for: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenEvent {
    pub agent: String,
    pub text: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamEndEvent {
    pub agent: String,
    pub finish_reason: String,
    pub chars: u64,
    pub usage: Option<Usage>,
    pub cost_usd: Option<f64>,
    pub ttft_ms: Option<u64>,
    pub elapsed_ms: u64,
}

/// An agent asked for a tool (SPEC §11): logged before the call runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToolCallEvent {
    pub agent: String,
    pub call_id: String,
    pub server: String,
    pub tool: String,
    /// The arguments as the model sent them (a JSON value; a string when not JSON).
    pub arguments: serde_json::Value,
}

/// A tool call's result (SPEC §11); `content` is cut for the event (the snapshot
/// keeps the full bounded result).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToolResultEvent {
    pub agent: String,
    pub call_id: String,
    pub ok: bool,
    pub content: String,
    pub elapsed_ms: u64,
    /// The whole (bounded) result when `content` was cut. Never part of the event's
    /// data as streams show it; the snapshot folds it in, and a shared store keeps
    /// it beside the event (see [`Event::stored_json`]) so every instance's
    /// snapshot has it.
    #[serde(default, skip_serializing)]
    pub full_content: Option<String>,
}

/// How much of a tool result a `tool_result` event carries.
pub const TOOL_RESULT_EVENT_CHARS: usize = 2_000;

impl ToolResultEvent {
    /// The event for a result, its content cut to [`TOOL_RESULT_EVENT_CHARS`] with a note.
    pub fn cut(agent: &str, call_id: &str, ok: bool, content: &str, elapsed_ms: u64) -> Self {
        let (content, full_content) = match cut_for_event(content) {
            Some(cut) => (cut, Some(content.to_string())),
            None => (content.to_string(), None),
        };
        ToolResultEvent {
            agent: agent.to_string(),
            call_id: call_id.to_string(),
            ok,
            content,
            elapsed_ms,
            full_content,
        }
    }

    /// The result as the snapshot keeps it: whole, not cut.
    pub fn full(&self) -> &str {
        self.full_content.as_deref().unwrap_or(&self.content)
    }
}

/// The content cut for the event with a note, or `None` when it fits whole.
fn cut_for_event(content: &str) -> Option<String> {
    let (end, _) = content.char_indices().nth(TOOL_RESULT_EVENT_CHARS)?;
    let total = content.chars().count();
    Some(format!(
        "{}\n[… {} more characters; the run's snapshot has the full result]",
        &content[..end],
        total - TOOL_RESULT_EVENT_CHARS
    ))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorEvent {
    pub agent: Option<String>,
    pub kind: ErrorKind,
    pub message: String,
    pub status: Option<u16>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DoneEvent {
    pub status: RunStatus,
    pub output: String,
    /// Null when no call of the run reported usage.
    pub usage: Option<Usage>,
    pub cost_usd: Option<f64>,
    pub elapsed_ms: u64,
    /// The run's trace (32 hex digits) when tracing is on; absent otherwise, so
    /// clients of a server without tracing see nothing new.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// The run's budget and its spend, when the run has one (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<crate::model::budget::BudgetReport>,
}

#[derive(Debug, Clone)]
pub enum Event {
    Status(StatusEvent),
    Plan(PlanEvent),
    StreamStart(StreamStartEvent),
    Token(TokenEvent),
    StreamEnd(StreamEndEvent),
    ToolCall(ToolCallEvent),
    ToolResult(ToolResultEvent),
    Error(ErrorEvent),
    Done(DoneEvent),
}

impl Event {
    pub fn name(&self) -> &'static str {
        match self {
            Event::Status(_) => "status",
            Event::Plan(_) => "plan",
            Event::StreamStart(_) => "stream_start",
            Event::Token(_) => "token",
            Event::StreamEnd(_) => "stream_end",
            Event::ToolCall(_) => "tool_call",
            Event::ToolResult(_) => "tool_result",
            Event::Error(_) => "error",
            Event::Done(_) => "done",
        }
    }

    /// The event back from its wire name and data JSON (a shared store's copy of the
    /// log); `None` for an unknown name or data that does not fit it.
    pub fn from_wire(name: &str, data: &str) -> Option<Event> {
        fn parse<'a, T: Deserialize<'a>>(data: &'a str) -> Option<T> {
            serde_json::from_str(data).ok()
        }
        Some(match name {
            "status" => Event::Status(parse(data)?),
            "plan" => Event::Plan(parse(data)?),
            "stream_start" => Event::StreamStart(parse(data)?),
            "token" => Event::Token(parse(data)?),
            "stream_end" => Event::StreamEnd(parse(data)?),
            "tool_call" => Event::ToolCall(parse(data)?),
            "tool_result" => Event::ToolResult(parse(data)?),
            "error" => Event::Error(parse(data)?),
            "done" => Event::Done(parse(data)?),
            _ => return None,
        })
    }

    /// The event's data as one line of JSON (serde_json never emits raw newlines).
    pub fn data_json(&self) -> String {
        let result = match self {
            Event::Status(e) => serde_json::to_string(e),
            Event::Plan(e) => serde_json::to_string(e),
            Event::StreamStart(e) => serde_json::to_string(e),
            Event::Token(e) => serde_json::to_string(e),
            Event::StreamEnd(e) => serde_json::to_string(e),
            Event::ToolCall(e) => serde_json::to_string(e),
            Event::ToolResult(e) => serde_json::to_string(e),
            Event::Error(e) => serde_json::to_string(e),
            Event::Done(e) => serde_json::to_string(e),
        };
        // Serializing these plain structs cannot fail: no maps with non-string keys,
        // and non-finite floats become null in serde_json.
        result.unwrap_or_else(|_| "{}".to_string())
    }

    /// The data a shared store keeps for the event: [`data_json`](Self::data_json),
    /// and for a tool result whose content was cut also its `full_content`, which
    /// [`from_wire`](Self::from_wire) reads back (streams never show it).
    pub fn stored_json(&self) -> String {
        match self {
            Event::ToolResult(e) if e.full_content.is_some() => {
                let mut value = serde_json::to_value(e).unwrap_or_default();
                if let Some(fields) = value.as_object_mut() {
                    fields.insert("full_content".into(), e.full_content.clone().into());
                }
                value.to_string()
            }
            _ => self.data_json(),
        }
    }

    /// Appends the same JSON as [`data_json`](Self::data_json) to `out`, in place.
    pub fn write_data(&self, out: &mut BytesMut) {
        let mark = out.len();
        let w = out.writer();
        let result = match self {
            Event::Status(e) => serde_json::to_writer(w, e),
            Event::Plan(e) => serde_json::to_writer(w, e),
            Event::StreamStart(e) => serde_json::to_writer(w, e),
            Event::Token(e) => serde_json::to_writer(w, e),
            Event::StreamEnd(e) => serde_json::to_writer(w, e),
            Event::ToolCall(e) => serde_json::to_writer(w, e),
            Event::ToolResult(e) => serde_json::to_writer(w, e),
            Event::Error(e) => serde_json::to_writer(w, e),
            Event::Done(e) => serde_json::to_writer(w, e),
        };
        // As in `data_json`: cannot fail (and BytesMut's writer never does).
        if result.is_err() {
            out.truncate(mark);
            out.extend_from_slice(b"{}");
        }
    }
}

/// Frames one logged event for the wire: `id`, `event`, one `data` line, blank line.
pub fn frame(seq: u64, name: &str, data_json: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(data_json.len() + name.len() + 32);
    write_frame(&mut out, seq, name, |o| {
        o.extend_from_slice(data_json.as_bytes())
    });
    out.freeze()
}

/// The parts of one frame written by [`write_frame`]: its number, event name and
/// data JSON (`None` for anything else). A shared store rewriting a run from the
/// local log reads them back this way.
pub fn parse_frame(frame: &[u8]) -> Option<(u64, &str, &str)> {
    let text = std::str::from_utf8(frame).ok()?;
    let rest = text.strip_prefix("id: ")?.strip_suffix("\n\n")?;
    let (seq, rest) = rest.split_once("\nevent: ")?;
    let (name, data) = rest.split_once("\ndata: ")?;
    Some((seq.parse().ok()?, name, data))
}

/// Appends one frame to `out`; `data` writes the one-line JSON in place, so an event's
/// JSON is built once, straight into the log.
pub fn write_frame(out: &mut BytesMut, seq: u64, name: &str, data: impl FnOnce(&mut BytesMut)) {
    out.extend_from_slice(b"id: ");
    write_u64(out, seq);
    out.extend_from_slice(b"\nevent: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    data(out);
    out.extend_from_slice(b"\n\n");
}

/// The frame of a `token` event, written from borrowed text: byte for byte what
/// framing `Event::Token` gives, without building the event's owned strings first.
pub fn write_token_frame(out: &mut BytesMut, seq: u64, agent: &str, text: &str) {
    write_frame(out, seq, "token", |o| {
        o.extend_from_slice(b"{\"agent\":");
        write_json_str(o, agent);
        o.extend_from_slice(b",\"text\":");
        write_json_str(o, text);
        o.extend_from_slice(b"}");
    });
}

/// A JSON string literal, escaped by serde_json itself (so exactly as the derived
/// serializers escape it).
fn write_json_str(out: &mut BytesMut, s: &str) {
    // Serializing a str into BytesMut cannot fail.
    let _ = serde_json::to_writer(out.writer(), s);
}

fn write_u64(out: &mut BytesMut, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_frames_are_one_data_line_even_with_newlines_in_text() {
        let e = Event::Token(TokenEvent {
            agent: "writer".into(),
            text: "a\nb\r\n\"c\"".into(),
        });
        let f = frame(7, e.name(), &e.data_json());
        let s = std::str::from_utf8(&f).unwrap();
        assert_eq!(s, "id: 7\nevent: token\ndata: {\"agent\":\"writer\",\"text\":\"a\\nb\\r\\n\\\"c\\\"\"}\n\n");
    }

    #[test]
    fn token_frames_from_borrowed_text_match_the_event_framing() {
        for (seq, agent, text) in [
            (1, "researcher", "Hello"),
            (7, "writer", "a\nb\r\n\"c\" \\ \t"),
            (10, "coder", "\u{0}\u{1f}\u{7f} é 😀 \u{2028}"),
            (123_456_789_012, "x", ""),
            (u64::MAX, "analyst", "</script>"),
        ] {
            let e = Event::Token(TokenEvent {
                agent: agent.into(),
                text: text.into(),
            });
            let mut out = BytesMut::new();
            write_token_frame(&mut out, seq, agent, text);
            assert_eq!(out.freeze(), frame(seq, e.name(), &e.data_json()));
            let mut data = BytesMut::new();
            e.write_data(&mut data);
            assert_eq!(data.freeze(), Bytes::from(e.data_json()));
        }
        assert_eq!(
            frame(u64::MAX, "done", "{}"),
            Bytes::from(format!("id: {}\nevent: done\ndata: {{}}\n\n", u64::MAX))
        );
    }

    #[test]
    fn stream_start_omits_substituted_for_when_absent() {
        let e = Event::StreamStart(StreamStartEvent {
            agent: "coder".into(),
            model: "m".into(),
            provider: "offline".into(),
            substituted_for: None,
        });
        assert_eq!(
            e.data_json(),
            r#"{"agent":"coder","model":"m","provider":"offline"}"#
        );
    }

    /// A shared store keeps each event as its name and data JSON and rebuilds it on
    /// other instances: every event must come back byte for byte, or a copy would
    /// differ from the log it copies (and stop at the first event that fails).
    #[test]
    fn every_event_comes_back_from_its_wire_form_unchanged() {
        use crate::model::dependency::{DropReason, DroppedDependency};
        let tricky =
            "quote \" back \\ nl \n cr \r tab \t nul \u{0} ls \u{2028} emoji \u{1F980} </script>";
        let events = vec![
            Event::Status(StatusEvent {
                agent: None,
                state: AgentState::Planning,
                detail: tricky.into(),
            }),
            Event::Status(StatusEvent {
                agent: Some("coder".into()),
                state: AgentState::Retrying,
                detail: String::new(),
            }),
            Event::Plan(PlanEvent {
                agents: vec!["researcher".into(), "coder".into()],
                reasoning: tricky.into(),
                tasks: [("coder".to_string(), tricky.to_string())].into(),
                source: PlanSource::Fallback,
                dropped: vec!["poet".into()],
                reason: "bad json".into(),
                schedule: crate::model::run_config::Schedule::Parallel,
                after: [("coder".to_string(), vec!["researcher".to_string()])].into(),
                dropped_after: vec![DroppedDependency {
                    agent: "researcher".into(),
                    after: "coder".into(),
                    reason: DropReason::Cycle,
                }],
                stages: vec![vec!["researcher".into()], vec!["coder".into()]],
            }),
            Event::StreamStart(StreamStartEvent {
                agent: "writer".into(),
                model: "m/x:free".into(),
                provider: "openrouter".into(),
                substituted_for: Some("m/y".into()),
            }),
            Event::StreamStart(StreamStartEvent {
                agent: "writer".into(),
                model: "m".into(),
                provider: "offline".into(),
                substituted_for: None,
            }),
            Event::Token(TokenEvent {
                agent: "writer".into(),
                text: tricky.into(),
            }),
            Event::StreamEnd(StreamEndEvent {
                agent: "writer".into(),
                finish_reason: "stop".into(),
                chars: u64::MAX,
                usage: Some(Usage {
                    input_tokens: 1,
                    output_tokens: u64::MAX,
                }),
                cost_usd: Some(0.1 + 0.2),
                ttft_ms: Some(0),
                elapsed_ms: 12,
            }),
            Event::StreamEnd(StreamEndEvent {
                agent: "coder".into(),
                finish_reason: "length".into(),
                chars: 0,
                usage: None,
                cost_usd: Some(1e-9),
                ttft_ms: None,
                elapsed_ms: 0,
            }),
            Event::ToolCall(ToolCallEvent {
                agent: "researcher".into(),
                call_id: "call_1".into(),
                server: "everything".into(),
                tool: "echo".into(),
                arguments: serde_json::json!({"message": tricky, "n": [1, 2.5, null]}),
            }),
            Event::ToolResult(ToolResultEvent {
                agent: "researcher".into(),
                call_id: "call_1".into(),
                ok: false,
                content: tricky.into(),
                elapsed_ms: 3,
                full_content: None,
            }),
            Event::Error(ErrorEvent {
                agent: Some("coder".into()),
                kind: ErrorKind::RateLimit,
                message: tricky.into(),
                status: Some(429),
            }),
            Event::Error(ErrorEvent {
                agent: None,
                kind: ErrorKind::Network,
                message: "the instance running it stopped".into(),
                status: None,
            }),
            Event::Done(DoneEvent {
                status: RunStatus::Cancelled,
                output: tricky.into(),
                usage: None,
                cost_usd: None,
                elapsed_ms: 1,
                trace_id: None,
                budget: None,
            }),
        ];
        for e in events {
            let data = e.data_json();
            let mut written = BytesMut::new();
            e.write_data(&mut written);
            assert_eq!(&written[..], data.as_bytes(), "{}", e.name());
            let back = Event::from_wire(e.name(), &data)
                .unwrap_or_else(|| panic!("{} did not parse back: {data}", e.name()));
            assert_eq!(back.name(), e.name());
            assert_eq!(back.data_json(), data);
        }
        assert!(Event::from_wire("tokens", r#"{"agent":"a","text":"b"}"#).is_none());
        assert!(Event::from_wire("token", r#"{"agent":"a"}"#).is_none());
    }

    #[test]
    fn tool_result_events_cut_long_content_with_a_note() {
        let short = ToolResultEvent::cut("a", "c", true, "héllo", 5);
        assert_eq!(short.content, "héllo");
        let long = "é".repeat(TOOL_RESULT_EVENT_CHARS + 10);
        let cut = ToolResultEvent::cut("a", "c", true, &long, 5);
        assert!(cut
            .content
            .starts_with(&"é".repeat(TOOL_RESULT_EVENT_CHARS)));
        assert!(cut
            .content
            .ends_with("[… 10 more characters; the run's snapshot has the full result]"));
        assert_eq!(short.full_content, None);
        assert_eq!(cut.full_content.as_deref(), Some(long.as_str()));
        assert_eq!(cut.full(), long);
        // Streams carry the cut only; the store's copy carries the whole as well.
        let event = Event::ToolResult(cut);
        let streamed: serde_json::Value = serde_json::from_str(&event.data_json()).unwrap();
        assert!(streamed.get("full_content").is_none(), "{streamed}");
        let mut framed = BytesMut::new();
        event.write_data(&mut framed);
        assert_eq!(&framed[..], event.data_json().as_bytes());
        let Some(Event::ToolResult(back)) = Event::from_wire("tool_result", &event.stored_json())
        else {
            panic!("the stored tool result did not parse back");
        };
        assert_eq!(back.full_content.as_deref(), Some(long.as_str()));
        assert_eq!(Event::ToolResult(back).data_json(), event.data_json());
        let short = Event::ToolResult(short);
        assert_eq!(short.stored_json(), short.data_json());
        assert_eq!(
            Event::ToolCall(ToolCallEvent {
                agent: "a".into(),
                call_id: "c".into(),
                server: "s".into(),
                tool: "t".into(),
                arguments: serde_json::json!({"x": 1}),
            })
            .data_json(),
            r#"{"agent":"a","call_id":"c","server":"s","tool":"t","arguments":{"x":1}}"#
        );
    }

    #[test]
    fn frames_parse_back_into_their_parts() {
        let data = r#"{"agent":"a","text":"x\ny: \"event: z\""}"#;
        let f = frame(42, "token", data);
        assert_eq!(parse_frame(&f), Some((42, "token", data)));
        assert_eq!(parse_frame(b"id: x\nevent: a\ndata: {}\n\n"), None);
        assert_eq!(parse_frame(b"id: 1\nevent: a\ndata: {}\n"), None);
        assert_eq!(parse_frame(b": keep-alive\n\n"), None);
    }
}
