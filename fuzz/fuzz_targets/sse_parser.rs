//! Invariant: any split of the input yields the same events, the same error (or none) and the same `retry` as one piece; with small limits no event's data exceeds the limit.
//!
//! Input: byte 0 and bytes 1..=4 drive the splitting (chunk sizes and empty feeds),
//! everything after byte 4 is the event stream. Every input is checked twice: with the
//! production limits (1 MiB, never reached by a capped input) and with 64/128-byte
//! limits, where `LineTooLong`/`EventTooLarge` are easy to reach.
#![no_main]

use agent_mesh::providers::sse::{SseError, SseEvent, SseParser};
use libfuzzer_sys::fuzz_target;

/// Large enough for a few hundred events, small enough for many executions per second.
const MAX_INPUT: usize = 16 * 1024;
const SMALL_LINE: usize = 64;
const SMALL_EVENT: usize = 128;
const HEADER: usize = 5;

#[derive(Debug, PartialEq)]
struct Outcome {
    events: Vec<SseEvent>,
    error: Option<SseError>,
    retry: Option<u64>,
}

fn parse(limits: (usize, usize), chunks: &[&[u8]]) -> Outcome {
    let mut parser = SseParser::with_limits(limits.0, limits.1);
    let mut events = Vec::new();
    for chunk in chunks {
        if let Err(e) = parser.feed(chunk, &mut events) {
            // The caller ends the call on the first error; so does the check.
            return Outcome {
                events,
                error: Some(e),
                retry: parser.retry_ms(),
            };
        }
    }
    parser.finish(&mut events);
    Outcome {
        events,
        error: None,
        retry: parser.retry_ms(),
    }
}

/// Chunks whose sizes cycle through the four seed bytes (1..=64 bytes each); a seed's
/// bit 6 puts an empty chunk before its chunk, so empty feeds are exercised too.
fn split<'a>(body: &'a [u8], seeds: &[u8]) -> Vec<&'a [u8]> {
    let mut chunks = Vec::new();
    let mut rest = body;
    let mut i = 0;
    while !rest.is_empty() {
        let seed = seeds[i % seeds.len()];
        if seed & 0x40 != 0 {
            chunks.push(&rest[..0]);
        }
        let n = (usize::from(seed & 0x3f) + 1).min(rest.len());
        let (head, tail) = rest.split_at(n);
        chunks.push(head);
        rest = tail;
        i += 1;
    }
    chunks
}

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT || data.len() < HEADER {
        return;
    }
    let (header, body) = data.split_at(HEADER);
    let byte_by_byte: Vec<&[u8]> = body.chunks(1).collect();
    let seeded = split(body, &header[1..]);
    // Byte 0 chooses a split point for a two-piece feed: the simplest split that puts a
    // CR/LF pair, a BOM or a UTF-8 sequence across a chunk boundary.
    let cut = usize::from(header[0]) % (body.len() + 1);
    let two = [&body[..cut], &body[cut..]];

    for limits in [
        (
            agent_mesh::providers::sse::MAX_LINE_BYTES,
            agent_mesh::providers::sse::MAX_EVENT_BYTES,
        ),
        (SMALL_LINE, SMALL_EVENT),
    ] {
        let whole = parse(limits, &[body]);
        for (name, chunks) in [
            ("two pieces", &two[..]),
            ("seeded split", &seeded[..]),
            ("byte by byte", &byte_by_byte[..]),
        ] {
            let split = parse(limits, chunks);
            assert_eq!(
                whole, split,
                "{name} (limits {limits:?}) differs from one piece"
            );
        }
        if limits.0 > MAX_INPUT {
            assert_eq!(
                whole.error, None,
                "a capped input cannot reach 1 MiB limits"
            );
        }
        for event in &whole.events {
            assert!(
                event.data.len() <= limits.1,
                "event data of {} bytes exceeds the {}-byte limit",
                event.data.len(),
                limits.1
            );
            assert!(!event.event.is_empty(), "an event always has a type");
            assert!(
                event.id.as_deref().is_none_or(|id| !id.contains('\0')),
                "an id containing NUL must be ignored"
            );
        }
    }
});
