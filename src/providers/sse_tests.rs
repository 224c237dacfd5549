//! The SSE parser's unit tests: line ends, fields, limits, and the same events
//! whatever the chunking.

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

fn run_chunks<'a>(mut parser: SseParser, chunks: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
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
            let outcome = run_chunks(SseParser::new(), [&input[..i], &input[i..j], &input[j..]]);
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

#[path = "sse_split_tests.rs"]
mod split;
