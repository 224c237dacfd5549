//! Incremental WHATWG event-stream parser for upstream provider responses: any chunking of the same bytes yields the same events, memory bounded.

use std::fmt;

/// One dispatched event, as the WHATWG "dispatch the event" step would create it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event` field, or "message" when the event named no type.
    pub event: String,
    pub data: String,
    /// The last-event-id buffer at dispatch; `None` if it was never set (or set to empty).
    pub id: Option<String>,
}

/// Why the parser gave up on a stream. Both mean the upstream is misbehaving (or hostile).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SseError {
    LineTooLong,
    EventTooLarge,
}

impl fmt::Display for SseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The variants carry no size, because limits are per parser; name the defaults for context.
        match self {
            SseError::LineTooLong => write!(
                f,
                "an event-stream line exceeded the line length limit (default {MAX_LINE_BYTES} bytes)"
            ),
            SseError::EventTooLarge => write!(
                f,
                "an event-stream event's data exceeded the event size limit (default {MAX_EVENT_BYTES} bytes)"
            ),
        }
    }
}

impl std::error::Error for SseError {}

pub const MAX_LINE_BYTES: usize = 1 << 20;
pub const MAX_EVENT_BYTES: usize = 1 << 20;

const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// Line-buffer capacity kept between lines: one rare huge line should not pin a megabyte
/// for the rest of a long-lived connection.
const RETAINED_LINE_CAPACITY: usize = 64 * 1024;

/// Incremental parser; feed it the body chunks as they arrive.
#[derive(Debug)]
pub struct SseParser {
    max_line: usize,
    max_event: usize,
    /// How many BOM bytes have matched at the start of the stream; `None` once past it.
    /// The BOM may arrive split across chunks, so a partial match is held back until decided.
    bom_matched: Option<usize>,
    /// The previous byte was a CR. Its line already ended; an LF arriving next (possibly in
    /// the next chunk) is the second half of a CRLF and must not end another, blank, line.
    after_cr: bool,
    /// Bytes of a line whose end has not arrived yet. Never longer than `max_line`.
    line: Vec<u8>,
    /// Data buffer per spec: every `data` value followed by "\n".
    data: String,
    event_type: String,
    last_id: String,
    retry_ms: Option<u64>,
    /// Errors are sticky: after one, the stream's framing can no longer be trusted.
    failed: Option<SseError>,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new()
    }
}

impl SseParser {
    pub fn new() -> Self {
        Self::with_limits(MAX_LINE_BYTES, MAX_EVENT_BYTES)
    }

    /// `max_line` bounds one line in raw bytes (excluding its line end); `max_event` bounds
    /// the data of one event, in decoded UTF-8 bytes, as it would be dispatched.
    pub fn with_limits(max_line: usize, max_event: usize) -> Self {
        SseParser {
            max_line,
            max_event,
            bom_matched: Some(0),
            after_cr: false,
            line: Vec::new(),
            data: String::new(),
            event_type: String::new(),
            last_id: String::new(),
            retry_ms: None,
            failed: None,
        }
    }

    /// Feeds one chunk; pushes every event completed by it onto `out` in order.
    ///
    /// On error, events completed before the offending line are still on `out`, and every
    /// later call returns the same error until [`finish`](Self::finish).
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if let Some(err) = self.failed {
            return Err(err);
        }
        let result = self.feed_inner(chunk, out);
        if let Err(err) = result {
            self.failed = Some(err);
        }
        result
    }

    /// End of stream: drops any unterminated event.
    ///
    /// A CR takes effect as a line end as soon as it is seen (only the swallowing of a
    /// following LF is deferred), so a trailing CR has already dispatched whatever it
    /// completed and nothing is ever pushed here; `_out` keeps the call shape of `feed`.
    ///
    /// Afterwards the parser is ready for a fresh stream (a reconnection): the last event
    /// ID and the reconnection time survive, as the spec keeps them on the event source.
    pub fn finish(&mut self, _out: &mut Vec<SseEvent>) {
        self.bom_matched = Some(0);
        self.after_cr = false;
        self.line.clear();
        self.line.shrink_to(RETAINED_LINE_CAPACITY);
        self.data = String::new();
        self.event_type.clear();
        self.failed = None;
    }

    /// The reconnection time from the last valid `retry` field, if any.
    pub fn retry_ms(&self) -> Option<u64> {
        self.retry_ms
    }

    /// The last event ID buffer, also set by events that dispatch nothing (an MCP server's
    /// priming event has an `id` and empty data): what a reconnection sends as `Last-Event-ID`.
    pub fn last_event_id(&self) -> Option<&str> {
        (!self.last_id.is_empty()).then_some(self.last_id.as_str())
    }

    fn feed_inner(&mut self, mut chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if let Some(already) = self.bom_matched {
            let mut matched = already;
            let mut used = 0;
            while matched < BOM.len() && used < chunk.len() && chunk[used] == BOM[matched] {
                matched += 1;
                used += 1;
            }
            if matched == BOM.len() {
                self.bom_matched = None;
                chunk = &chunk[used..];
            } else if used == chunk.len() {
                self.bom_matched = Some(matched);
                return Ok(());
            } else {
                // Not a BOM after all: the held-back prefix is ordinary stream bytes.
                self.bom_matched = None;
                self.scan(&BOM[..matched], out)?;
                chunk = &chunk[used..];
            }
        }
        self.scan(chunk, out)
    }

    fn scan(&mut self, mut chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if self.after_cr && !chunk.is_empty() {
            self.after_cr = false;
            if chunk[0] == b'\n' {
                chunk = &chunk[1..];
            }
        }
        while let Some(pos) = chunk.iter().position(|&b| b == b'\n' || b == b'\r') {
            let (head, rest) = chunk.split_at(pos);
            if self.line.is_empty() {
                // Common case: the whole line is inside this chunk; parse it in place.
                self.check_line(head.len())?;
                self.process_line(head, out)?;
            } else {
                self.check_line(self.line.len().saturating_add(head.len()))?;
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(head);
                let result = self.process_line(&line, out);
                line.clear();
                line.shrink_to(RETAINED_LINE_CAPACITY);
                self.line = line;
                result?;
            }
            chunk = &rest[1..];
            if rest[0] == b'\r' {
                match chunk.first() {
                    Some(b'\n') => chunk = &chunk[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
        }
        self.check_line(self.line.len().saturating_add(chunk.len()))?;
        self.line.extend_from_slice(chunk);
        Ok(())
    }

    fn check_line(&self, len: usize) -> Result<(), SseError> {
        if len > self.max_line {
            Err(SseError::LineTooLong)
        } else {
            Ok(())
        }
    }

    /// One complete line, without its line end. Working on bytes is safe because ':' and
    /// ' ' are ASCII, which never occurs inside a UTF-8 sequence and ends any broken one,
    /// so splitting before the lossy decode gives the same text as decoding first.
    fn process_line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            // A comment; providers use these as keep-alives (": OPENROUTER PROCESSING").
            Some(0) => return Ok(()),
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        match field {
            b"event" => {
                self.event_type.clear();
                self.event_type.push_str(&String::from_utf8_lossy(value));
            }
            b"data" => {
                let value = String::from_utf8_lossy(value);
                // The buffer's final "\n" is stripped at dispatch, so this is exactly the
                // size the dispatched data would have.
                if self.data.len().saturating_add(value.len()) > self.max_event {
                    return Err(SseError::EventTooLarge);
                }
                self.data.push_str(&value);
                self.data.push('\n');
            }
            // An id containing NUL is ignored, so one bad id cannot reset Last-Event-ID.
            b"id" if !value.contains(&0) => {
                self.last_id.clear();
                self.last_id.push_str(&String::from_utf8_lossy(value));
            }
            // Only pure ASCII digits count; " 10", "10ms" or "" leave the time unchanged.
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                // The spec's integer is unbounded; a value past u64 still means "very long".
                let ms = value.iter().fold(0u64, |acc, &d| {
                    acc.saturating_mul(10).saturating_add(u64::from(d - b'0'))
                });
                self.retry_ms = Some(ms);
            }
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        if self.data.is_empty() {
            // A data-less event is not dispatched, and its type must not leak into the next.
            self.event_type.clear();
            return;
        }
        let mut data = std::mem::take(&mut self.data);
        data.pop();
        let event = if self.event_type.is_empty() {
            String::from("message")
        } else {
            std::mem::take(&mut self.event_type)
        };
        let id = if self.last_id.is_empty() {
            None
        } else {
            Some(self.last_id.clone())
        };
        out.push(SseEvent { event, data, id });
    }
}

#[cfg(test)]
#[path = "sse_tests.rs"]
mod tests;
