//! The SSE parser yields the same events and errors however its input is split.

use super::*;

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
