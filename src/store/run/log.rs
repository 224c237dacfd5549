//! A run's event log: every event in order, both as its wire frame (what event
//! streams send, handed out as shared slices, no copy) and as typed data (what
//! `/v1`, the CLI and a shared store read, no re-parsing of frames). A token is
//! kept typed as its agent and a range of one growing text buffer, so logging it
//! costs no allocation of its own.

use crate::model::events::{write_frame, write_token_frame, Event};
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::ops::Range;

/// One logged event as a reader sees it.
#[derive(Debug, Clone, Copy)]
pub enum EventRef<'a> {
    /// A `token` event, borrowed from the log.
    Token { agent: &'a str, text: &'a str },
    /// Any other event.
    Other(&'a Event),
}

impl EventRef<'_> {
    /// The event's SPEC name (`token`, `plan`, …).
    pub fn name(&self) -> &'static str {
        match self {
            EventRef::Token { .. } => "token",
            EventRef::Other(e) => e.name(),
        }
    }

    /// The event's `data` as a JSON value (for readers that print or reshape it).
    pub fn data_value(&self) -> serde_json::Value {
        use serde_json::to_value;
        let value = match self {
            EventRef::Token { agent, text } => {
                Ok(serde_json::json!({"agent": agent, "text": text}))
            }
            EventRef::Other(Event::Status(e)) => to_value(e),
            EventRef::Other(Event::Plan(e)) => to_value(e),
            EventRef::Other(Event::StreamStart(e)) => to_value(e),
            EventRef::Other(Event::Token(e)) => to_value(e),
            EventRef::Other(Event::StreamEnd(e)) => to_value(e),
            EventRef::Other(Event::ToolCall(e)) => to_value(e),
            EventRef::Other(Event::ToolResult(e)) => to_value(e),
            EventRef::Other(Event::Error(e)) => to_value(e),
            EventRef::Other(Event::Done(e)) => to_value(e),
        };
        value.unwrap_or_default()
    }

    /// What a shared store keeps of the event (see [`Event::stored_json`]).
    pub fn stored_json(&self) -> String {
        match self {
            EventRef::Token { agent, text } => token_data_json(agent, text),
            EventRef::Other(e) => e.stored_json(),
        }
    }

    /// The event's `data` JSON, as its frame carries it.
    pub fn data_json(&self) -> String {
        match self {
            EventRef::Token { agent, text } => token_data_json(agent, text),
            EventRef::Other(e) => e.data_json(),
        }
    }
}

/// The `data` JSON of a `token` event (serde escapes it exactly as the frame does).
pub fn token_data_json(agent: &str, text: &str) -> String {
    #[derive(serde::Serialize)]
    struct TokenData<'a> {
        agent: &'a str,
        text: &'a str,
    }
    serde_json::to_string(&TokenData { agent, text }).unwrap_or_default()
}

/// A logged event, typed.
#[derive(Debug)]
enum Entry {
    /// Agent (an index into `EventLog::agents`) and text (a range of `EventLog::text`).
    Token {
        agent: u32,
        text: Range<usize>,
    },
    Other(Box<Event>),
}

/// A run's events as wire frames, in order, with the byte offset where each ends.
///
/// Frames are appended to one growing buffer (`tail`). When subscribers ask for new
/// bytes, the tail is frozen into a shared segment and handed out as reference-counted
/// slices: replay and live delivery copy nothing, and a frame costs its bytes plus an
/// 8-byte offset instead of an allocation of its own.
#[derive(Default)]
pub(crate) struct EventLog {
    /// Frozen bytes, in order; each segment holds whole frames.
    segments: Vec<Bytes>,
    /// The log offset at which each segment starts.
    seg_starts: Vec<u64>,
    /// Frames appended since the last freeze.
    tail: BytesMut,
    /// The log offset at which `tail` starts.
    tail_start: u64,
    /// `ends[i]` is the log offset just past the frame of seq `i + 1`.
    ends: Vec<u64>,
    /// `entries[i]` is the event of seq `i + 1`, typed.
    entries: Vec<Entry>,
    /// Every token's text, one after the other.
    text: String,
    /// The agents tokens came from (a few per run).
    agents: Vec<Box<str>>,
}

/// The tail grows in blocks this large at most, and as large as the log so far at
/// least 1 KiB: a short run's log stays small, a long one's takes few allocations.
const MAX_LOG_BLOCK: usize = 64 << 10;
const MIN_LOG_BLOCK: usize = 1 << 10;

impl EventLog {
    pub fn len(&self) -> u64 {
        self.ends.len() as u64
    }

    pub fn total_bytes(&self) -> u64 {
        self.tail_start + self.tail.len() as u64
    }

    /// The offset just past event `seq` (0 for none).
    pub fn offset_after(&self, seq: u64) -> u64 {
        match seq {
            0 => 0,
            n => self.ends[n as usize - 1],
        }
    }

    /// Logs `event` as the next seq: its frame, written once, and the event itself.
    pub fn append_event(&mut self, event: Event) -> u64 {
        // One shape per event kind for readers: a token (from a shared store's copy)
        // is kept like any other token; its frame is byte for byte the same.
        if let Event::Token(t) = &event {
            return self.append_token(&t.agent, &t.text);
        }
        let seq = self.len() + 1;
        self.append(|out| write_frame(out, seq, event.name(), |o| event.write_data(o)));
        self.entries.push(Entry::Other(Box::new(event)));
        seq
    }

    /// Logs a `token` from borrowed text as the next seq (the hot path: the text is
    /// copied into the frame and the text buffer, both grown in blocks).
    pub fn append_token(&mut self, agent: &str, text: &str) -> u64 {
        let seq = self.len() + 1;
        self.append(|out| write_token_frame(out, seq, agent, text));
        let agent = match self.agents.iter().position(|a| **a == *agent) {
            Some(i) => i,
            None => {
                self.agents.push(agent.into());
                self.agents.len() - 1
            }
        };
        let start = self.text.len();
        self.text.push_str(text);
        self.entries.push(Entry::Token {
            agent: agent as u32,
            text: start..self.text.len(),
        });
        seq
    }

    /// Calls `visit` with each event after seq `after`, in order, typed.
    pub fn visit_after(&self, after: u64, mut visit: impl FnMut(u64, EventRef<'_>)) {
        let from = (after as usize).min(self.entries.len());
        for (i, entry) in self.entries[from..].iter().enumerate() {
            let seq = (from + i) as u64 + 1;
            visit(seq, self.event_ref(entry));
        }
    }

    fn event_ref<'a>(&'a self, entry: &'a Entry) -> EventRef<'a> {
        match entry {
            Entry::Token { agent, text } => EventRef::Token {
                agent: &self.agents[*agent as usize],
                text: &self.text[text.clone()],
            },
            Entry::Other(e) => EventRef::Other(e),
        }
    }

    /// Appends one frame written by `write` (exactly one, so offsets stay per event).
    fn append(&mut self, write: impl FnOnce(&mut BytesMut)) {
        // Frames are small; reserve ahead in blocks so a shared tail (after a freeze)
        // is not reallocated per frame.
        if self.tail.capacity() - self.tail.len() < 512 {
            let block = (self.total_bytes() as usize).clamp(MIN_LOG_BLOCK, MAX_LOG_BLOCK);
            self.tail.reserve(block);
        }
        write(&mut self.tail);
        self.ends.push(self.total_bytes());
    }

    /// Moves the tail into a frozen segment.
    fn freeze(&mut self) {
        if !self.tail.is_empty() {
            let segment = self.tail.split().freeze();
            self.seg_starts.push(self.tail_start);
            self.tail_start += segment.len() as u64;
            self.segments.push(segment);
        }
    }

    /// The index of the segment holding log offset `offset` (< total bytes, frozen).
    fn segment_at(&self, offset: u64) -> usize {
        self.seg_starts.partition_point(|&s| s <= offset) - 1
    }

    /// Pushes every byte from `offset` on as slices of the segments; returns the end.
    pub fn bytes_from(&mut self, offset: u64, out: &mut VecDeque<Bytes>) -> u64 {
        self.freeze();
        let total = self.total_bytes();
        if offset >= total {
            return total;
        }
        let first = self.segment_at(offset);
        for (start, segment) in self.seg_starts[first..].iter().zip(&self.segments[first..]) {
            let from = offset.saturating_sub(*start) as usize;
            out.push_back(segment.slice(from..));
        }
        total
    }

    /// Each frame after event `after`, as its own slice.
    #[cfg(test)]
    fn frames_after(&mut self, after: u64) -> Vec<Bytes> {
        self.freeze();
        let mut frames = Vec::with_capacity((self.len() - after) as usize);
        let mut start = self.offset_after(after);
        let mut seg = if after < self.len() {
            self.segment_at(start)
        } else {
            0
        };
        for &end in &self.ends[after as usize..] {
            while self.seg_starts[seg] + self.segments[seg].len() as u64 <= start {
                seg += 1;
            }
            let base = self.seg_starts[seg];
            frames.push(self.segments[seg].slice((start - base) as usize..(end - base) as usize));
            start = end;
        }
        frames
    }
}

#[cfg(test)]
#[path = "log_tests.rs"]
mod tests;
