//! Trace and span ids, the span context that links spans into one tree, and the W3C
//! Trace Context `traceparent` header that carries it across processes.
//!
//! `traceparent` is `{version}-{trace-id}-{parent-id}-{trace-flags}` in lowercase hex
//! (<https://www.w3.org/TR/trace-context/#traceparent-header>). A header that breaks
//! the format is ignored (the span starts a new trace), as the specification asks.

use crate::ids::{hex, random_bytes};
use std::fmt;

/// A 16-byte trace id; all zeros is the invalid id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TraceId(pub [u8; 16]);

/// An 8-byte span id; all zeros is the invalid id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SpanId(pub [u8; 8]);

impl TraceId {
    pub const INVALID: TraceId = TraceId([0; 16]);

    /// A random id (never all zeros).
    pub fn random() -> TraceId {
        loop {
            let id = TraceId(random_bytes());
            if id.is_valid() {
                return id;
            }
        }
    }

    pub fn is_valid(&self) -> bool {
        self.0 != [0; 16]
    }

    /// 32 lowercase hex characters, as in `traceparent`, OTLP/JSON and `MESH_TRACE_URL`.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }
}

impl SpanId {
    pub const INVALID: SpanId = SpanId([0; 8]);

    /// A random id (never all zeros).
    pub fn random() -> SpanId {
        loop {
            let id = SpanId(random_bytes());
            if id.is_valid() {
                return id;
            }
        }
    }

    pub fn is_valid(&self) -> bool {
        self.0 != [0; 8]
    }

    /// 16 lowercase hex characters.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// What a span hands to its children and to outgoing requests: its trace, its own id,
/// whether the trace is sampled, and whether it came from another process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SpanContext {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    /// Bit 0 of the W3C trace flags: the trace is recorded.
    pub sampled: bool,
    /// True for a context read from an incoming `traceparent`.
    pub remote: bool,
}

impl SpanContext {
    /// The context of no span: what a disabled tracer's spans carry when they have
    /// no parent. It is never propagated.
    pub const INVALID: SpanContext = SpanContext {
        trace_id: TraceId::INVALID,
        span_id: SpanId::INVALID,
        sampled: false,
        remote: false,
    };

    pub fn is_valid(&self) -> bool {
        self.trace_id.is_valid() && self.span_id.is_valid()
    }

    /// The W3C trace flags byte (only `sampled` is defined).
    pub fn trace_flags(&self) -> u8 {
        u8::from(self.sampled)
    }

    /// Reads a `traceparent` header value; `None` when it is malformed, so the caller
    /// starts a new trace. Surrounding whitespace (HTTP's optional whitespace) is
    /// allowed; uppercase hex, version `ff`, and all-zero ids are not.
    pub fn from_traceparent(value: &str) -> Option<SpanContext> {
        let value = value.trim_matches(|c| c == ' ' || c == '\t');
        let b = value.as_bytes();
        // version(2) - trace-id(32) - parent-id(16) - flags(2) = 55 characters.
        if b.len() < 55 || b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
            return None;
        }
        let version = decode_hex::<1>(&b[0..2])?[0];
        if version == 0xff {
            return None;
        }
        // Version 00 is exactly 55 characters. A later version may append fields
        // after another dash; a parser of version 00 reads the first four and ignores
        // the rest (W3C Trace Context §3.2.4, "versioning").
        if (version == 0 && b.len() != 55) || (b.len() > 55 && b[55] != b'-') {
            return None;
        }
        let trace_id = TraceId(decode_hex::<16>(&b[3..35])?);
        let span_id = SpanId(decode_hex::<8>(&b[36..52])?);
        let flags = decode_hex::<1>(&b[53..55])?[0];
        if !trace_id.is_valid() || !span_id.is_valid() {
            return None;
        }
        Some(SpanContext {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
            remote: true,
        })
    }

    /// The `traceparent` value that makes this span the parent of the receiver's
    /// spans (version 00); `None` for an invalid context, which is not propagated.
    pub fn traceparent(&self) -> Option<String> {
        if !self.is_valid() {
            return None;
        }
        let mut out = String::with_capacity(55);
        out.push_str("00-");
        out.push_str(&self.trace_id.to_hex());
        out.push('-');
        out.push_str(&self.span_id.to_hex());
        out.push_str(if self.sampled { "-01" } else { "-00" });
        Some(out)
    }
}

/// Serde for an optional context as its `traceparent` text: how a shared store keeps
/// the context a run was started under. Text that does not parse reads as `None`, so
/// a damaged or foreign value never makes a stored run unreadable.
pub mod as_traceparent {
    use super::SpanContext;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        context: &Option<SpanContext>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match context.as_ref().and_then(SpanContext::traceparent) {
            Some(text) => s.serialize_some(&text),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SpanContext>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        Ok(text.as_deref().and_then(SpanContext::from_traceparent))
    }
}

/// Lowercase hex only, exactly `2 * N` digits.
fn decode_hex<const N: usize>(digits: &[u8]) -> Option<[u8; N]> {
    if digits.len() != 2 * N {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, pair) in digits.chunks_exact(2).enumerate() {
        out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_parses_and_formats_back() {
        let ctx = SpanContext::from_traceparent(GOOD).unwrap();
        assert_eq!(ctx.trace_id.to_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(ctx.span_id.to_hex(), "00f067aa0ba902b7");
        assert!(ctx.sampled);
        assert!(ctx.remote);
        assert_eq!(ctx.traceparent().unwrap(), GOOD);
        let unsampled = SpanContext::from_traceparent(&GOOD.replace("-01", "-00")).unwrap();
        assert!(!unsampled.sampled);
        assert!(unsampled.traceparent().unwrap().ends_with("-00"));
    }

    #[test]
    fn surrounding_whitespace_is_allowed_and_unknown_flag_bits_are_ignored() {
        assert!(SpanContext::from_traceparent(&format!(" {GOOD}\t")).is_some());
        let ctx = SpanContext::from_traceparent(&GOOD.replace("-01", "-03")).unwrap();
        assert!(ctx.sampled);
        let ctx = SpanContext::from_traceparent(&GOOD.replace("-01", "-02")).unwrap();
        assert!(!ctx.sampled);
    }

    #[test]
    fn malformed_headers_are_rejected() {
        let zero_trace = "00-00000000000000000000000000000000-00f067aa0ba902b7-01";
        let zero_span = "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01";
        let bad = [
            "",
            "00",
            zero_trace,
            zero_span,
            // Version ff is forbidden.
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            // Uppercase hex is not the format.
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "0G-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            // Version 00 has exactly four fields.
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
            // A later version may only extend after a dash.
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
        ];
        for value in bad {
            assert_eq!(SpanContext::from_traceparent(value), None, "{value:?}");
        }
    }

    #[test]
    fn a_later_version_is_read_for_its_first_four_fields() {
        let v = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds";
        let ctx = SpanContext::from_traceparent(v).unwrap();
        assert_eq!(ctx.span_id.to_hex(), "00f067aa0ba902b7");
        let exact = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert!(SpanContext::from_traceparent(exact).is_some());
        // What is sent onward is always version 00.
        assert!(ctx.traceparent().unwrap().starts_with("00-"));
    }

    #[test]
    fn random_ids_are_valid_and_distinct_and_invalid_contexts_do_not_propagate() {
        let (a, b) = (TraceId::random(), TraceId::random());
        assert!(a.is_valid() && a != b);
        assert!(SpanId::random().is_valid());
        assert_eq!(SpanContext::INVALID.traceparent(), None);
        assert_eq!(a.to_hex().len(), 32);
    }
}
