//! OTLP/HTTP binary encoding: the protobuf wire format of `ExportTraceServiceRequest`
//! and the few messages inside it (ResourceSpans, ScopeSpans, Span, Event, Status,
//! KeyValue, AnyValue, ArrayValue, Resource, InstrumentationScope), written by hand
//! from opentelemetry-proto's `trace/v1/trace.proto` and `common/v1/common.proto`.
//! Field numbers are the contract; proto3 defaults (empty, zero) are left out.

use super::resource::Resource;
use super::span::{AttrValue, Event, KeyValue, SpanData, Status};

const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;
const FIXED32: u32 = 5;

/// OTLP `SpanFlags`: the context's remote-ness is known (bit 8) and is remote (bit 9).
pub const FLAG_CONTEXT_HAS_IS_REMOTE: u32 = 0x100;
pub const FLAG_CONTEXT_IS_REMOTE: u32 = 0x200;

/// The request body for one batch of spans of this process.
pub fn encode_request(resource: &Resource, spans: &[Box<SpanData>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + spans.len() * 256);
    // ExportTraceServiceRequest.resource_spans = 1
    message(&mut out, 1, |b| {
        // ResourceSpans.resource = 1
        message(b, 1, |b| {
            for (key, value) in &resource.attributes {
                // Resource.attributes = 1
                message(b, 1, |b| {
                    string(b, 1, key);
                    message(b, 2, |b| string_always(b, 1, value));
                });
            }
        });
        // ResourceSpans.scope_spans = 2
        message(b, 2, |b| {
            // ScopeSpans.scope = 1: InstrumentationScope { name = 1, version = 2 }
            message(b, 1, |b| {
                string(b, 1, resource.scope_name);
                string(b, 2, resource.scope_version);
            });
            for span in spans {
                // ScopeSpans.spans = 2
                message(b, 2, |b| encode_span(b, span));
            }
        });
    });
    out
}

fn encode_span(b: &mut Vec<u8>, s: &SpanData) {
    bytes(b, 1, &s.context.trace_id.0);
    bytes(b, 2, &s.context.span_id.0);
    if let Some(parent) = &s.parent_span_id {
        bytes(b, 4, &parent.0);
    }
    string(b, 5, &s.name);
    uint(b, 6, s.kind as u64);
    fixed64(b, 7, s.start_unix_nanos);
    fixed64(b, 8, s.end_unix_nanos);
    for kv in &s.attributes {
        message(b, 9, |b| key_value(b, kv));
    }
    uint(b, 10, u64::from(s.dropped_attributes));
    for event in &s.events {
        message(b, 11, |b| encode_event(b, event));
    }
    uint(b, 12, u64::from(s.dropped_events));
    match &s.status {
        Status::Unset => {}
        // Status { message = 2, code = 3 } with codes UNSET 0, OK 1, ERROR 2.
        Status::Ok => message(b, 15, |b| uint(b, 3, 1)),
        Status::Error(description) => message(b, 15, |b| {
            string(b, 2, description);
            uint(b, 3, 2);
        }),
    }
    fixed32(b, 16, span_flags(s));
}

/// Span.flags: the W3C trace flags in bits 0-7, and whether the parent is remote.
pub fn span_flags(s: &SpanData) -> u32 {
    let mut flags = u32::from(s.context.trace_flags()) | FLAG_CONTEXT_HAS_IS_REMOTE;
    if s.parent_is_remote {
        flags |= FLAG_CONTEXT_IS_REMOTE;
    }
    flags
}

fn encode_event(b: &mut Vec<u8>, e: &Event) {
    fixed64(b, 1, e.time_unix_nanos);
    string(b, 2, e.name);
    for kv in &e.attributes {
        message(b, 3, |b| key_value(b, kv));
    }
}

fn key_value(b: &mut Vec<u8>, kv: &KeyValue) {
    string(b, 1, kv.key);
    message(b, 2, |b| any_value(b, &kv.value));
}

/// AnyValue is a oneof: its one field is written even when it holds a default value.
fn any_value(b: &mut Vec<u8>, v: &AttrValue) {
    match v {
        AttrValue::Str(s) => string_always(b, 1, s),
        AttrValue::Bool(x) => {
            tag(b, 2, VARINT);
            varint(b, u64::from(*x));
        }
        AttrValue::Int(x) => {
            tag(b, 3, VARINT);
            varint(b, *x as u64);
        }
        AttrValue::Float(x) => {
            tag(b, 4, FIXED64);
            b.extend_from_slice(&x.to_bits().to_le_bytes());
        }
        // ArrayValue { repeated AnyValue values = 1 }
        AttrValue::StrArray(items) => message(b, 5, |b| {
            for item in items {
                message(b, 1, |b| string_always(b, 1, item));
            }
        }),
    }
}

// ---- wire primitives ------------------------------------------------------------

fn tag(b: &mut Vec<u8>, field: u32, wire_type: u32) {
    varint(b, u64::from((field << 3) | wire_type));
}

fn varint(b: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        b.push((v as u8) | 0x80);
        v >>= 7;
    }
    b.push(v as u8);
}

fn uint(b: &mut Vec<u8>, field: u32, v: u64) {
    if v != 0 {
        tag(b, field, VARINT);
        varint(b, v);
    }
}

fn fixed64(b: &mut Vec<u8>, field: u32, v: u64) {
    if v != 0 {
        tag(b, field, FIXED64);
        b.extend_from_slice(&v.to_le_bytes());
    }
}

fn fixed32(b: &mut Vec<u8>, field: u32, v: u32) {
    if v != 0 {
        tag(b, field, FIXED32);
        b.extend_from_slice(&v.to_le_bytes());
    }
}

fn bytes(b: &mut Vec<u8>, field: u32, v: &[u8]) {
    if !v.is_empty() {
        tag(b, field, LEN);
        varint(b, v.len() as u64);
        b.extend_from_slice(v);
    }
}

fn string(b: &mut Vec<u8>, field: u32, v: &str) {
    bytes(b, field, v.as_bytes());
}

fn string_always(b: &mut Vec<u8>, field: u32, v: &str) {
    tag(b, field, LEN);
    varint(b, v.len() as u64);
    b.extend_from_slice(v.as_bytes());
}

/// A length-delimited sub-message. The body is written in place after a one-byte
/// length; a body of 128 bytes or more moves right by the extra length bytes, so
/// the common small message costs no copy at all.
fn message(b: &mut Vec<u8>, field: u32, body: impl FnOnce(&mut Vec<u8>)) {
    tag(b, field, LEN);
    let at = b.len();
    b.push(0);
    body(b);
    let len = b.len() - at - 1;
    if len < 0x80 {
        b[at] = len as u8;
    } else {
        let mut prefix = Vec::with_capacity(10);
        varint(&mut prefix, len as u64);
        b.splice(at..at + 1, prefix);
    }
}

/// A minimal protobuf reader for tests: the fields of one message, in order.
#[cfg(test)]
pub mod read {
    #[derive(Debug, Clone, PartialEq)]
    pub enum Wire<'a> {
        Varint(u64),
        Fixed64(u64),
        Len(&'a [u8]),
        Fixed32(u32),
    }

    pub fn fields(mut b: &[u8]) -> Vec<(u32, Wire<'_>)> {
        let mut out = Vec::new();
        while !b.is_empty() {
            let key = varint(&mut b);
            let field = (key >> 3) as u32;
            let value = match key & 7 {
                0 => Wire::Varint(varint(&mut b)),
                1 => {
                    let (v, rest) = b.split_at(8);
                    b = rest;
                    Wire::Fixed64(u64::from_le_bytes(v.try_into().unwrap()))
                }
                2 => {
                    let len = varint(&mut b) as usize;
                    let (v, rest) = b.split_at(len);
                    b = rest;
                    Wire::Len(v)
                }
                5 => {
                    let (v, rest) = b.split_at(4);
                    b = rest;
                    Wire::Fixed32(u32::from_le_bytes(v.try_into().unwrap()))
                }
                t => panic!("wire type {t}"),
            };
            out.push((field, value));
        }
        out
    }

    fn varint(b: &mut &[u8]) -> u64 {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let byte = b[0];
            *b = &b[1..];
            v |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return v;
            }
            shift += 7;
        }
    }

    /// Every value of `field`, as sub-messages.
    pub fn all<'a>(fields: &[(u32, Wire<'a>)], field: u32) -> Vec<&'a [u8]> {
        fields
            .iter()
            .filter(|(f, _)| *f == field)
            .map(|(_, w)| match w {
                Wire::Len(b) => *b,
                other => panic!("field {field} is {other:?}"),
            })
            .collect()
    }

    pub fn one<'a>(fields: &[(u32, Wire<'a>)], field: u32) -> Wire<'a> {
        let found: Vec<_> = fields.iter().filter(|(f, _)| *f == field).collect();
        assert_eq!(found.len(), 1, "field {field} in {fields:?}");
        found[0].1.clone()
    }

    pub fn len<'a>(fields: &[(u32, Wire<'a>)], field: u32) -> &'a [u8] {
        match one(fields, field) {
            Wire::Len(b) => b,
            other => panic!("field {field} is {other:?}"),
        }
    }

    pub fn text<'a>(fields: &[(u32, Wire<'a>)], field: u32) -> &'a str {
        std::str::from_utf8(len(fields, field)).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::read::{all, fields, len, one, text, Wire};
    use super::*;
    use crate::model::trace_context::{SpanContext, SpanId, TraceId};
    use crate::trace::span::SpanKind;
    use std::borrow::Cow;

    fn sample_span() -> Box<SpanData> {
        Box::new(SpanData {
            context: SpanContext {
                trace_id: TraceId([0x11; 16]),
                span_id: SpanId([0x22; 8]),
                sampled: true,
                remote: false,
            },
            parent_span_id: Some(SpanId([0x33; 8])),
            parent_is_remote: true,
            name: Cow::Borrowed("chat gpt-4o"),
            kind: SpanKind::Client,
            start_unix_nanos: 1_700_000_000_000_000_000,
            end_unix_nanos: 1_700_000_000_500_000_000,
            attributes: vec![
                KeyValue {
                    key: "s",
                    value: AttrValue::Str("x".repeat(200).into()),
                },
                KeyValue {
                    key: "i",
                    value: AttrValue::Int(-5),
                },
                KeyValue {
                    key: "z",
                    value: AttrValue::Int(0),
                },
                KeyValue {
                    key: "f",
                    value: AttrValue::Float(0.25),
                },
                KeyValue {
                    key: "b",
                    value: AttrValue::Bool(false),
                },
                KeyValue {
                    key: "a",
                    value: AttrValue::StrArray(vec!["stop".into(), "length".into()]),
                },
            ],
            dropped_attributes: 2,
            events: vec![Event {
                name: "first_chunk",
                time_unix_nanos: 1_700_000_000_100_000_000,
                attributes: vec![],
            }],
            dropped_events: 0,
            status: Status::Error("timed out".into()),
        })
    }

    fn resource() -> Resource {
        Resource {
            attributes: vec![("service.name".into(), "agent-mesh".into())],
            scope_name: "agent-mesh",
            scope_version: "1.2.3",
        }
    }

    #[test]
    fn varints_match_the_protobuf_examples() {
        let mut b = Vec::new();
        varint(&mut b, 150);
        assert_eq!(b, [0x96, 0x01]);
        b.clear();
        varint(&mut b, 1);
        assert_eq!(b, [0x01]);
        b.clear();
        // int64 -1 is ten bytes, two's complement.
        varint(&mut b, -1i64 as u64);
        assert_eq!(b.len(), 10);
        // A message of 300 bytes gets a two-byte length.
        b.clear();
        message(&mut b, 1, |b| b.extend_from_slice(&[7u8; 300]));
        assert_eq!(&b[..3], &[0x0a, 0xac, 0x02]);
        assert_eq!(b.len(), 303);
    }

    #[test]
    fn a_request_decodes_back_to_the_span() {
        let body = encode_request(&resource(), &[sample_span()]);
        let request = fields(&body);
        let rs = fields(len(&request, 1));
        let res = fields(len(&rs, 1));
        let attr = fields(all(&res, 1)[0]);
        assert_eq!(text(&attr, 1), "service.name");
        assert_eq!(text(&fields(len(&attr, 2)), 1), "agent-mesh");
        let ss = fields(len(&rs, 2));
        let scope = fields(len(&ss, 1));
        assert_eq!(text(&scope, 1), "agent-mesh");
        assert_eq!(text(&scope, 2), "1.2.3");
        let spans = all(&ss, 2);
        assert_eq!(spans.len(), 1);
        let span = fields(spans[0]);
        assert_eq!(len(&span, 1), &[0x11; 16]);
        assert_eq!(len(&span, 2), &[0x22; 8]);
        assert_eq!(len(&span, 4), &[0x33; 8]);
        assert_eq!(text(&span, 5), "chat gpt-4o");
        assert_eq!(one(&span, 6), Wire::Varint(3));
        assert_eq!(one(&span, 7), Wire::Fixed64(1_700_000_000_000_000_000));
        assert_eq!(one(&span, 8), Wire::Fixed64(1_700_000_000_500_000_000));
        assert_eq!(one(&span, 10), Wire::Varint(2));
        assert_eq!(one(&span, 16), Wire::Fixed32(0x301));
        let status = fields(len(&span, 15));
        assert_eq!(text(&status, 2), "timed out");
        assert_eq!(one(&status, 3), Wire::Varint(2));
        let event = fields(all(&span, 11)[0]);
        assert_eq!(text(&event, 2), "first_chunk");
        assert_eq!(one(&event, 1), Wire::Fixed64(1_700_000_000_100_000_000));

        let attrs: Vec<_> = all(&span, 9).into_iter().map(fields).collect();
        assert_eq!(attrs.len(), 6);
        let value = |i: usize| fields(len(&attrs[i], 2));
        assert_eq!(text(&attrs[0], 1), "s");
        assert_eq!(text(&value(0), 1), "x".repeat(200));
        assert_eq!(one(&value(1), 3), Wire::Varint(-5i64 as u64));
        // Defaults inside the oneof are still written.
        assert_eq!(one(&value(2), 3), Wire::Varint(0));
        assert_eq!(one(&value(3), 4), Wire::Fixed64(0.25f64.to_bits()));
        assert_eq!(one(&value(4), 2), Wire::Varint(0));
        let array = fields(len(&value(5), 5));
        let items: Vec<&str> = all(&array, 1)
            .into_iter()
            .map(|v| text(&fields(v), 1))
            .collect();
        assert_eq!(items, ["stop", "length"]);
    }

    #[test]
    fn unset_fields_are_left_out() {
        let mut s = sample_span();
        s.parent_span_id = None;
        s.parent_is_remote = false;
        s.status = Status::Unset;
        s.dropped_attributes = 0;
        s.events.clear();
        s.attributes.clear();
        let body = encode_request(&resource(), &[s]);
        let request = fields(&body);
        let ss = fields(len(&fields(len(&request, 1)), 2));
        let span = fields(all(&ss, 2)[0]);
        let numbers: Vec<u32> = span.iter().map(|(f, _)| *f).collect();
        assert_eq!(numbers, [1, 2, 5, 6, 7, 8, 16]);
        assert_eq!(one(&span, 16), Wire::Fixed32(0x101));
    }
}
