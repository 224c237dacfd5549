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
mod tests {
    use super::*;

    fn ev(event: &str, data: &str, id: Option<&str>) -> SseEvent {
        SseEvent {
            event: event.to_string(),
            data: data.to_string(),
            id: id.map(str::to_string),
        }
    }

    fn msg(data: &str) -> SseEvent {
        ev("message", data, None)
    }

    /// Everything observable about one parse: events (including those before an error),
    /// the error if any, and the reconnection time.
    #[derive(Debug, PartialEq, Eq)]
    struct Outcome {
        events: Vec<SseEvent>,
        error: Option<SseError>,
        retry: Option<u64>,
    }

    fn run_chunks<'a>(
        mut parser: SseParser,
        chunks: impl IntoIterator<Item = &'a [u8]>,
    ) -> Outcome {
        let mut events = Vec::new();
        let mut error = None;
        for chunk in chunks {
            if let Err(e) = parser.feed(chunk, &mut events) {
                error = Some(e);
                break;
            }
        }
        if error.is_none() {
            parser.finish(&mut events);
        }
        Outcome {
            events,
            error,
            retry: parser.retry_ms(),
        }
    }

    fn parse(input: &[u8]) -> Vec<SseEvent> {
        let outcome = run_chunks(SseParser::new(), [input]);
        assert_eq!(outcome.error, None);
        outcome.events
    }

    fn parse_bytewise(input: &[u8]) -> Vec<SseEvent> {
        let outcome = run_chunks(SseParser::new(), input.chunks(1));
        assert_eq!(outcome.error, None);
        outcome.events
    }

    /// Checks a parse in one piece and byte by byte agree, and returns the events.
    fn parse_both(input: &[u8]) -> Vec<SseEvent> {
        let whole = parse(input);
        assert_eq!(parse_bytewise(input), whole, "bytewise differs");
        whole
    }

    #[test]
    fn openai_style_stream() {
        let input = b"data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n\
                      data: {\"choices\":[{\"delta\":{\"content\":\"!\"}}]}\n\n\
                      data: [DONE]\n\n";
        assert_eq!(
            parse_both(input),
            vec![
                msg("{\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}"),
                msg("{\"choices\":[{\"delta\":{\"content\":\"!\"}}]}"),
                msg("[DONE]"),
            ]
        );
    }

    #[test]
    fn anthropic_style_stream() {
        let input = b"event: message_start\ndata: {\"type\":\"message_start\"}\n\n\
                      event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"Hello\"}}\n\n\
                      event: ping\ndata: {\"type\": \"ping\"}\n\n\
                      event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
        assert_eq!(
            parse_both(input),
            vec![
                ev("message_start", "{\"type\":\"message_start\"}", None),
                ev(
                    "content_block_delta",
                    "{\"type\":\"content_block_delta\",\"delta\":{\"text\":\"Hello\"}}",
                    None
                ),
                ev("ping", "{\"type\": \"ping\"}", None),
                ev("message_stop", "{\"type\":\"message_stop\"}", None),
            ]
        );
    }

    #[test]
    fn openrouter_comments_are_ignored() {
        let input = b": OPENROUTER PROCESSING\n\n: OPENROUTER PROCESSING\n\n\
                      data: {\"x\":1}\n: mid-event comment\ndata: {\"y\":2}\n\n";
        assert_eq!(parse_both(input), vec![msg("{\"x\":1}\n{\"y\":2}")]);
    }

    #[test]
    fn crlf_lone_cr_and_mixed_line_ends() {
        assert_eq!(parse_both(b"data: a\r\n\r\n"), vec![msg("a")]);
        assert_eq!(parse_both(b"data: a\r\r"), vec![msg("a")]);
        assert_eq!(
            parse_both(b"data: a\r\ndata: b\rdata: c\n\r\ndata: d\r\n\n"),
            vec![msg("a\nb\nc"), msg("d")]
        );
        // LF then CR is two line ends, unlike CR then LF.
        assert_eq!(
            parse_both(b"data: a\n\rdata: b\n\n"),
            vec![msg("a"), msg("b")]
        );
    }

    #[test]
    fn cr_at_chunk_end_followed_by_lf_is_one_line_end() {
        let outcome = run_chunks(
            SseParser::new(),
            [&b"data: a\r"[..], b"\ndata: b\r", b"\n\r", b"\n"],
        );
        assert_eq!(outcome.events, vec![msg("a\nb")]);
        assert_eq!(outcome.error, None);
    }

    #[test]
    fn cr_at_chunk_end_followed_by_other_byte_was_the_line_end() {
        let mut parser = SseParser::new();
        let mut out = Vec::new();
        parser.feed(b"data: a\r", &mut out).unwrap();
        assert!(out.is_empty());
        // The next CR starts with a non-LF, so it ends a blank line and dispatches at once.
        parser.feed(b"\r", &mut out).unwrap();
        assert_eq!(out, vec![msg("a")]);
        parser.feed(b"data: b\r", &mut out).unwrap();
        parser.feed(b"\r", &mut out).unwrap();
        assert_eq!(out, vec![msg("a"), msg("b")]);
    }

    #[test]
    fn trailing_cr_at_end_of_stream_dispatches() {
        let mut parser = SseParser::new();
        let mut out = Vec::new();
        parser.feed(b"data: a\n\r", &mut out).unwrap();
        parser.finish(&mut out);
        assert_eq!(out, vec![msg("a")]);
    }

    #[test]
    fn multi_line_data_and_colon_and_space_rules() {
        assert_eq!(
            parse_both(b"data: one\ndata: two\ndata: three\n\n"),
            vec![msg("one\ntwo\nthree")]
        );
        assert_eq!(parse_both(b"data\n\n"), vec![msg("")]);
        assert_eq!(parse_both(b"data\ndata\n\n"), vec![msg("\n")]);
        assert_eq!(parse_both(b"data:\n\n"), vec![msg("")]);
        assert_eq!(parse_both(b"data:x\n\n"), vec![msg("x")]);
        assert_eq!(parse_both(b"data:  x\n\n"), vec![msg(" x")]);
        assert_eq!(parse_both(b"data: x \n\n"), vec![msg("x ")]);
        // Only the first colon splits; later ones belong to the value.
        assert_eq!(parse_both(b"data: a: b:c\n\n"), vec![msg("a: b:c")]);
        // Field names are case-sensitive and unknown fields are ignored.
        assert_eq!(parse_both(b"Data: x\nfoo: y\ndata: z\n\n"), vec![msg("z")]);
        assert_eq!(
            parse_both(b"event:ping\ndata\n\n"),
            vec![ev("ping", "", None)]
        );
    }

    #[test]
    fn id_persists_and_nul_ids_are_ignored() {
        let input = b"id: 1\ndata: a\n\n\
                      data: b\n\n\
                      id: 2\x003\ndata: c\n\n\
                      id: 7\nid\ndata: d\n\n\
                      id:\x00\ndata: e\n\n\
                      id: x y\ndata: f\n\n";
        assert_eq!(
            parse_both(input),
            vec![
                ev("message", "a", Some("1")),
                ev("message", "b", Some("1")),
                ev("message", "c", Some("1")),
                // A bare `id` resets the buffer to empty, reported as None.
                ev("message", "d", None),
                ev("message", "e", None),
                ev("message", "f", Some("x y")),
            ]
        );
    }

    #[test]
    fn id_set_by_data_less_event_still_applies_to_the_next() {
        assert_eq!(
            parse_both(b"id: 5\n\ndata: a\n\n"),
            vec![ev("message", "a", Some("5"))]
        );
    }

    #[test]
    fn retry_accepts_ascii_digits_only() {
        let retry = |input: &[u8]| run_chunks(SseParser::new(), [input]).retry;
        assert_eq!(retry(b"retry: 3000\n"), Some(3000));
        assert_eq!(retry(b"retry:0\n"), Some(0));
        assert_eq!(retry(b"retry: 3000\nretry: 12a\n"), Some(3000));
        assert_eq!(retry(b"retry: 12a\n"), None);
        assert_eq!(retry(b"retry:  12\n"), None);
        assert_eq!(retry(b"retry: -1\n"), None);
        assert_eq!(retry(b"retry: 1.5\n"), None);
        assert_eq!(retry(b"retry\n"), None);
        assert_eq!(retry(b"retry: \xd9\xa3\n"), None); // Arabic-Indic digit three
        assert_eq!(retry(b"retry: 99999999999999999999999\n"), Some(u64::MAX));
        // A line without its end is not a line yet.
        assert_eq!(retry(b"retry: 10"), None);
        assert_eq!(parse_both(b"retry: 10\ndata: x\n\n"), vec![msg("x")]);
    }

    #[test]
    fn event_without_data_is_not_dispatched_and_type_does_not_leak() {
        assert_eq!(parse_both(b"event: ping\n\ndata: a\n\n"), vec![msg("a")]);
        assert_eq!(parse_both(b"event: x\nid: 1\n\n\n\n"), vec![]);
        // A type set after the data still applies, and is reset after dispatch.
        assert_eq!(
            parse_both(b"data: a\nevent: late\n\ndata: b\n\n"),
            vec![ev("late", "a", None), msg("b")]
        );
    }

    #[test]
    fn leading_bom_is_skipped_even_when_split() {
        let input = b"\xEF\xBB\xBFdata: a\n\n";
        assert_eq!(parse_both(input), vec![msg("a")]);
        let outcome = run_chunks(SseParser::new(), [&input[..1], &input[1..2], &input[2..]]);
        assert_eq!(outcome.events, vec![msg("a")]);
        let outcome = run_chunks(SseParser::new(), [&b""[..], &input[..2], b"", &input[2..]]);
        assert_eq!(outcome.events, vec![msg("a")]);
    }

    #[test]
    fn bom_is_only_special_at_the_very_start() {
        // A second BOM makes the field name "\u{feff}data", an unknown field: ignored.
        assert_eq!(
            parse_both(b"\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\ndata: b\n\n"),
            vec![msg("b")]
        );
        assert_eq!(
            parse_both(b"data: a\n\n\xEF\xBB\xBFdata: b\n\ndata: c\n\n"),
            vec![msg("a"), msg("c")]
        );
        // Inside a value it is just a character.
        assert_eq!(
            parse_both(b"data: \xEF\xBB\xBFx\n\n"),
            vec![msg("\u{feff}x")]
        );
        // A line holding only a BOM is not blank, so it does not dispatch.
        assert_eq!(
            parse_both(b"data: a\n\xEF\xBB\xBF\ndata: b\n\n"),
            vec![msg("a\nb")]
        );
    }

    #[test]
    fn partial_bom_at_start_is_ordinary_bytes() {
        // EF BB then 'd' is no BOM: the held-back bytes are kept, giving field "\u{fffd}data".
        assert_eq!(
            parse_both(b"\xEF\xBBdata: a\n\ndata: b\n\n"),
            vec![msg("b")]
        );
        assert_eq!(parse_both(b"\xEFdata: a\n\ndata: b\n\n"), vec![msg("b")]);
        assert_eq!(parse_both(b"\xEF\xBB\n\ndata: b\n\n"), vec![msg("b")]);
        // A held-back prefix followed by a line end is a (non-blank) line, not nothing.
        assert_eq!(parse_both(b"data: a\n\xEF\n"), vec![]);
    }

    #[test]
    fn multibyte_characters_split_across_chunks_decode_intact() {
        let input = "data: caf\u{e9} \u{1f600} \u{65e5}\n\n".as_bytes();
        for i in 0..=input.len() {
            for j in i..=input.len() {
                let outcome =
                    run_chunks(SseParser::new(), [&input[..i], &input[i..j], &input[j..]]);
                assert_eq!(outcome.events, vec![msg("caf\u{e9} \u{1f600} \u{65e5}")]);
            }
        }
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters() {
        assert_eq!(
            parse_both(b"data: a\xffb\xc3\n\n"),
            vec![msg("a\u{fffd}b\u{fffd}")]
        );
        // A truncated emoji followed by the line end is one replacement character.
        assert_eq!(parse_both(b"data: \xf0\x9f\x98\n\n"), vec![msg("\u{fffd}")]);
        assert_eq!(
            parse_both(b"event: \xc0\x80\nid: \xfe\ndata: x\n\n"),
            vec![ev("\u{fffd}\u{fffd}", "x", Some("\u{fffd}"))]
        );
    }

    #[test]
    fn unterminated_event_at_end_is_dropped() {
        assert_eq!(parse_both(b"data: a\n\ndata: b\n"), vec![msg("a")]);
        assert_eq!(parse_both(b"data: a\n\ndata: b"), vec![msg("a")]);
        assert_eq!(parse_both(b"data: a\n\ndata: b\r"), vec![msg("a")]);
        assert_eq!(parse_both(b"data: a"), vec![]);
        assert_eq!(parse_both(b""), vec![]);
    }

    #[test]
    fn finish_readies_parser_for_a_new_stream() {
        let mut parser = SseParser::new();
        let mut out = Vec::new();
        parser
            .feed(b"id: 9\nretry: 50\ndata: a\n\ndata: dropped\n", &mut out)
            .unwrap();
        parser.finish(&mut out);
        parser.feed(b"\xEF\xBB\xBFdata: b\n\n", &mut out).unwrap();
        assert_eq!(
            out,
            vec![ev("message", "a", Some("9")), ev("message", "b", Some("9"))]
        );
        assert_eq!(parser.retry_ms(), Some(50));
    }

    #[test]
    fn feed_appends_to_out_without_clearing() {
        let mut parser = SseParser::new();
        let mut out = vec![msg("earlier")];
        parser.feed(b"data: x\n\n", &mut out).unwrap();
        assert_eq!(out, vec![msg("earlier"), msg("x")]);
    }

    #[test]
    fn custom_line_limit_is_exact() {
        // "data: 1234" is 10 bytes: allowed; one more byte is not.
        let ok = run_chunks(
            SseParser::with_limits(10, 100),
            [&b"data: 1234\r\n\r\n"[..]],
        );
        assert_eq!(ok.events, vec![msg("1234")]);
        assert_eq!(ok.error, None);
        let input = b"data: a\n\ndata: 12345\n\n";
        let whole = run_chunks(SseParser::with_limits(10, 100), [&input[..]]);
        assert_eq!(whole.error, Some(SseError::LineTooLong));
        assert_eq!(whole.events, vec![msg("a")]);
        let bytewise = run_chunks(SseParser::with_limits(10, 100), input.chunks(1));
        assert_eq!(bytewise, whole);
        // Comments are lines too and are bounded the same way.
        let comment = run_chunks(SseParser::with_limits(10, 100), [&b": 1234567890"[..]]);
        assert_eq!(comment.error, Some(SseError::LineTooLong));
    }

    #[test]
    fn custom_event_limit_is_exact() {
        // Dispatched data "12345\n1234" is exactly 10 bytes.
        let ok = run_chunks(
            SseParser::with_limits(100, 10),
            [&b"data: 12345\ndata: 1234\n\n"[..]],
        );
        assert_eq!(ok.events, vec![msg("12345\n1234")]);
        assert_eq!(ok.error, None);
        let input = b"data: 12345\ndata: 12345\n\n";
        let whole = run_chunks(SseParser::with_limits(100, 10), [&input[..]]);
        assert_eq!(whole.error, Some(SseError::EventTooLarge));
        assert!(whole.events.is_empty());
        assert_eq!(
            run_chunks(SseParser::with_limits(100, 10), input.chunks(1)),
            whole
        );
        // Empty data lines still grow the event by their separators.
        let blanks = run_chunks(SseParser::with_limits(100, 3), [&b"data\n".repeat(5)[..]]);
        assert_eq!(blanks.error, Some(SseError::EventTooLarge));
        // The limit is per event: many small events are fine.
        let many = run_chunks(
            SseParser::with_limits(100, 10),
            [&b"data: 0123456789\n\n".repeat(50)[..]],
        );
        assert_eq!(many.error, None);
        assert_eq!(many.events.len(), 50);
    }

    #[test]
    fn zero_limits_never_panic() {
        let outcome = run_chunks(SseParser::with_limits(0, 0), [&b"\n\r\n\r"[..]]);
        assert_eq!(outcome, run_chunks(SseParser::new(), [&b"\n\r\n\r"[..]]));
        let outcome = run_chunks(SseParser::with_limits(0, 0), [&b"d"[..]]);
        assert_eq!(outcome.error, Some(SseError::LineTooLong));
    }

    #[test]
    fn default_line_limit_holds_when_fed_in_small_chunks() {
        let mut parser = SseParser::new();
        let mut out = Vec::new();
        parser.feed(b"data: ", &mut out).unwrap();
        let chunk = [b'a'; 4096];
        let mut fed = 6;
        let err = loop {
            match parser.feed(&chunk, &mut out) {
                Ok(()) => fed += chunk.len(),
                Err(e) => break e,
            }
            assert!(parser.line.len() <= MAX_LINE_BYTES);
            assert!(
                fed <= MAX_LINE_BYTES,
                "accepted a line longer than the limit"
            );
        };
        assert_eq!(err, SseError::LineTooLong);
        assert!(fed + chunk.len() > MAX_LINE_BYTES);
        assert!(parser.line.len() <= MAX_LINE_BYTES);
        // Sticky: the stream cannot be resynchronised.
        assert_eq!(parser.feed(b"\n\n", &mut out), Err(SseError::LineTooLong));
        assert!(out.is_empty());
    }

    #[test]
    fn default_event_limit_holds() {
        let mut line = b"data: ".to_vec();
        line.extend_from_slice(&[b'x'; 1000]);
        line.push(b'\n');
        let mut parser = SseParser::new();
        let mut out = Vec::new();
        let mut lines = 0;
        let err = loop {
            match parser.feed(&line, &mut out) {
                Ok(()) => lines += 1,
                Err(e) => break e,
            }
            assert!(parser.data.len() <= MAX_EVENT_BYTES + 1);
        };
        assert_eq!(err, SseError::EventTooLarge);
        // 1047 lines of 1001 bytes (with separators) is 1_048_047 bytes; the 1048th would pass 1 MiB.
        assert_eq!(lines, 1047);
        assert!(out.is_empty());
    }

    #[test]
    fn error_messages_are_sentences() {
        assert_eq!(
            SseError::LineTooLong.to_string(),
            "an event-stream line exceeded the line length limit (default 1048576 bytes)"
        );
        assert!(SseError::EventTooLarge
            .to_string()
            .contains("event size limit"));
    }

    // ---- split invariance -------------------------------------------------------------

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    fn representative_inputs() -> Vec<Vec<u8>> {
        let openai_crlf = [
            &b": OPENROUTER PROCESSING\r\n\r\n"[..],
            b"data: {\"choices\":[{\"delta\":{\"content\":\"H\xc3\xa9llo\"}}]}\r\n\r\n",
            b"data: {\"choices\":[{\"delta\":{\"content\":\" w\xf0\x9f\x98\x80rld\"}}]}\r\n\r\n",
            b": OPENROUTER PROCESSING\r\n\r\n",
            b"data: [DONE]\r\n\r\n",
        ]
        .concat();
        let anthropic_mixed = [
            &b"\xEF\xBB\xBFretry: 2500\n"[..],
            b"event: message_start\nid: 1\ndata: {\"type\":\"message_start\"}\n\n",
            b"event: content_block_delta\r\ndata: {\"text\":\"\xe6\x97\xa5\xe6\x9c\xac\"}\r\r",
            b": ping\revent: ping\n\n",
            b"data\ndata:x\ndata:  y\rid: a\x00b\n\n",
            b"event: message_stop\ndata: {}\n\ndata: unterminated",
        ]
        .concat();
        let hostile = [
            &b"\xEF\xBB:not quite a bom\n"[..],
            b"data: \xff\xfe bad \xc3\n\n\r\r\n\n\r",
            b"data: \xEF\xBB\xBF later bom\r\n",
            b"\xEF\xBB\xBFdata: ignored\r\n\r\n",
            b"id\ndata: after empty id\n\n",
            b"retry: 12a\nretry: 99999999999999999999999\n",
            b"data: \xf0\x9f\x98\n\ndata: \xe2\x82\xac euro\r\n\r\n",
            b"id: 42\r\nevent:\r\ndata:last\r\n\r\n\r",
        ]
        .concat();
        let cr_heavy = [
            &b"\xEF\xBB\xBF\xEF\xBB\xBFdata: second bom\r\r"[..],
            b"data:a\r\rdata:b\r\n\rdata:c\n\r\ndata:d\r\r\r\r",
            b"event:e\rdata\rdata\r\r",
            b":\r:\n:\r\n",
            b"data: caf\xc3\xa9\rdata: \xf0\x9f\x98\x80\r\n\r\n",
            b"retry:777\rid:\xce\xbb\rdata: end\r\r\n",
        ]
        .concat();
        vec![openai_crlf, anthropic_mixed, hostile, cr_heavy]
    }

    fn assert_split_invariant(input: &[u8], make: &dyn Fn() -> SseParser, seed: u64) {
        let whole = run_chunks(make(), [input]);
        for i in 0..=input.len() {
            let split = run_chunks(make(), [&input[..i], &input[i..]]);
            assert_eq!(split, whole, "split at {i}");
        }
        assert_eq!(run_chunks(make(), input.chunks(1)), whole, "bytewise");
        let mut rng = XorShift(seed);
        for round in 0..3000 {
            let max_chunk = [1, 2, 3, 5, 8, 16, 64][rng.below(7)];
            let mut chunks = Vec::new();
            let mut start = 0;
            while start < input.len() {
                // Zero-length chunks are included on purpose: they must change nothing.
                let len = rng.below(max_chunk + 1).min(input.len() - start);
                chunks.push(&input[start..start + len]);
                start += len;
            }
            let split = run_chunks(make(), chunks.iter().copied());
            assert_eq!(split, whole, "random partition round {round}: {chunks:?}");
        }
    }

    #[test]
    fn representative_inputs_parse_as_expected() {
        let inputs = representative_inputs();
        for input in &inputs {
            assert!((100..=300).contains(&input.len()), "{}", input.len());
        }
        let outcomes: Vec<Outcome> = inputs
            .iter()
            .map(|input| run_chunks(SseParser::new(), [&input[..]]))
            .collect();
        assert_eq!(
            outcomes[0].events,
            vec![
                msg("{\"choices\":[{\"delta\":{\"content\":\"H\u{e9}llo\"}}]}"),
                msg("{\"choices\":[{\"delta\":{\"content\":\" w\u{1f600}rld\"}}]}"),
                msg("[DONE]"),
            ]
        );
        assert_eq!(
            outcomes[1].events,
            vec![
                ev("message_start", "{\"type\":\"message_start\"}", Some("1")),
                ev(
                    "content_block_delta",
                    "{\"text\":\"\u{65e5}\u{672c}\"}",
                    Some("1")
                ),
                ev("message", "\nx\n y", Some("1")),
                ev("message_stop", "{}", Some("1")),
            ]
        );
        assert_eq!(outcomes[1].retry, Some(2500));
        assert_eq!(
            outcomes[2].events,
            vec![
                msg("\u{fffd}\u{fffd} bad \u{fffd}"),
                msg("\u{feff} later bom"),
                msg("after empty id"),
                msg("\u{fffd}"),
                msg("\u{20ac} euro"),
                ev("message", "last", Some("42")),
            ]
        );
        assert_eq!(outcomes[2].retry, Some(u64::MAX));
        assert_eq!(
            outcomes[3].events,
            vec![
                msg("a"),
                msg("b"),
                msg("c"),
                msg("d"),
                ev("e", "\n", None),
                msg("caf\u{e9}\n\u{1f600}"),
                ev("message", "end", Some("\u{3bb}")),
            ]
        );
        assert_eq!(outcomes[3].retry, Some(777));
    }

    #[test]
    fn any_split_yields_the_same_events() {
        for (n, input) in representative_inputs().iter().enumerate() {
            assert_split_invariant(input, &SseParser::new, 0x9E37_79B9_7F4A_7C15 ^ n as u64);
        }
    }

    #[test]
    fn any_split_yields_the_same_errors() {
        // Tight limits make each input fail part-way; where and how must not depend on chunking.
        let limits = [(40, 1000), (1000, 12), (24, 30)];
        for (n, input) in representative_inputs().iter().enumerate() {
            for &(max_line, max_event) in &limits {
                let make = || SseParser::with_limits(max_line, max_event);
                assert_split_invariant(input, &make, 0xD1B5_4A32_D192_ED03 ^ n as u64);
            }
        }
    }

    #[test]
    fn tight_limits_actually_fail_the_inputs() {
        let inputs = representative_inputs();
        let line = run_chunks(SseParser::with_limits(40, 1000), [&inputs[0][..]]);
        assert_eq!(line.error, Some(SseError::LineTooLong));
        let event = run_chunks(SseParser::with_limits(1000, 12), [&inputs[1][..]]);
        assert_eq!(event.error, Some(SseError::EventTooLarge));
    }

    #[test]
    fn regression_empty_chunk_after_cr_keeps_crlf_one_line_end() {
        // Found by the sse_parser fuzz target: an empty feed between the CR and the LF
        // of a CRLF must not turn the LF into a second (blank) line.
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for chunk in [&b"data: x\r"[..], b"", b"\n"] {
            p.feed(chunk, &mut out).unwrap();
        }
        assert!(out.is_empty(), "no blank line was sent: {out:?}");
        p.feed(b"\n", &mut out).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].data, "x");
    }
}
