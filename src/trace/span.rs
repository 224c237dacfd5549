//! A span while it runs (`Span`: attributes, error, end on drop) and the record it
//! leaves for the exporter (`SpanData`). A span that is not recorded (tracing off, or
//! sampled out) holds no record at all, so every setter on it is a no-op that
//! allocates nothing.

use super::tracer::Tracer;
use crate::model::trace_context::{SpanContext, SpanId};
use std::borrow::Cow;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Attributes per span (and per event) beyond this are counted, not kept: the
/// OpenTelemetry SDK default.
pub const MAX_ATTRIBUTES: usize = 128;
/// Events per span beyond this are counted, not kept.
pub const MAX_EVENTS: usize = 128;
/// A string attribute is cut to this many bytes (at a character boundary), so a long
/// prompt recorded under `MESH_TRACE_CONTENT=1` cannot make one span huge.
pub const MAX_VALUE_BYTES: usize = 64 << 10;

/// The attribute `record_error` sets (a stable general convention; `genai` re-exports it).
pub const ERROR_TYPE: &str = "error.type";

/// OTLP span kinds (the protobuf enum values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    Internal = 1,
    Server = 2,
    Client = 3,
    Producer = 4,
    Consumer = 5,
}

/// An attribute value: the OTLP `AnyValue` cases the conventions need.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Str(Cow<'static, str>),
    Int(i64),
    Float(f64),
    Bool(bool),
    StrArray(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct KeyValue {
    pub key: &'static str,
    pub value: AttrValue,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub name: &'static str,
    pub time_unix_nanos: u64,
    pub attributes: Vec<KeyValue>,
}

/// The span status; `Error` carries a short description.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Status {
    #[default]
    Unset,
    Ok,
    Error(String),
}

/// Everything the exporter sends for one ended span.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanData {
    pub context: SpanContext,
    pub parent_span_id: Option<SpanId>,
    pub parent_is_remote: bool,
    pub name: Cow<'static, str>,
    pub kind: SpanKind,
    pub start_unix_nanos: u64,
    pub end_unix_nanos: u64,
    pub attributes: Vec<KeyValue>,
    pub dropped_attributes: u32,
    pub events: Vec<Event>,
    pub dropped_events: u32,
    pub status: Status,
}

/// A running span. It ends when `end` is called or when it is dropped (an early
/// return or a cancelled task still ends it), and its record goes to the exporter.
pub struct Span {
    context: SpanContext,
    tracer: Tracer,
    /// The record and the monotonic start (durations survive wall-clock jumps).
    record: Option<(Box<SpanData>, Instant)>,
}

pub(crate) fn unix_nanos_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

impl Span {
    /// A span that records nothing and carries `context` (that of a sampled-out span,
    /// or the parent's when tracing is off, so propagation still passes it on).
    pub(crate) fn non_recording(context: SpanContext, tracer: Tracer) -> Span {
        Span {
            context,
            tracer,
            record: None,
        }
    }

    pub(crate) fn recording(
        context: SpanContext,
        parent: Option<&SpanContext>,
        name: Cow<'static, str>,
        kind: SpanKind,
        tracer: Tracer,
    ) -> Span {
        let data = SpanData {
            context,
            parent_span_id: parent.map(|p| p.span_id),
            parent_is_remote: parent.is_some_and(|p| p.remote),
            name,
            kind,
            start_unix_nanos: unix_nanos_now(),
            end_unix_nanos: 0,
            attributes: Vec::new(),
            dropped_attributes: 0,
            events: Vec::new(),
            dropped_events: 0,
            status: Status::Unset,
        };
        Span {
            context,
            tracer,
            record: Some((Box::new(data), Instant::now())),
        }
    }

    /// This span's context: the parent of its children, and what `traceparent` on an
    /// outgoing request carries (see `SpanContext::traceparent`).
    pub fn context(&self) -> SpanContext {
        self.context
    }

    /// The `traceparent` header for a request made inside this span; `None` when
    /// there is no trace to continue.
    pub fn traceparent(&self) -> Option<String> {
        self.context.traceparent()
    }

    /// True when attributes set on this span will be exported. Check it before
    /// building an expensive value.
    pub fn is_recording(&self) -> bool {
        self.record.is_some()
    }

    /// True when prompts and outputs may be recorded (`MESH_TRACE_CONTENT=1`) and the
    /// span is recorded.
    pub fn records_content(&self) -> bool {
        self.is_recording() && self.tracer.records_content()
    }

    /// A child span of this one, in the same tracer.
    pub fn child(&self, name: impl Into<Cow<'static, str>>, kind: SpanKind) -> Span {
        self.tracer.start_span(name, kind, Some(&self.context))
    }

    /// A child named `"{operation} {subject}"` (`chat gpt-4o`); the name is only
    /// formatted when the child is recorded.
    pub fn child_named(&self, operation: &'static str, subject: &str, kind: SpanKind) -> Span {
        self.tracer
            .start_span_named(operation, subject, kind, Some(&self.context))
    }

    fn set(&mut self, key: &'static str, value: impl FnOnce() -> AttrValue) {
        let Some((data, _)) = self.record.as_mut() else {
            return;
        };
        let attributes = &mut data.attributes;
        if let Some(kv) = attributes.iter_mut().find(|kv| kv.key == key) {
            kv.value = value();
        } else if attributes.len() < MAX_ATTRIBUTES {
            attributes.push(KeyValue {
                key,
                value: value(),
            });
        } else {
            data.dropped_attributes += 1;
        }
    }

    pub fn set_str(&mut self, key: &'static str, value: &str) {
        self.set(key, || {
            AttrValue::Str(Cow::Owned(truncated(value).to_string()))
        });
    }

    /// A string known at compile time (an operation or provider name): never copied.
    pub fn set_static(&mut self, key: &'static str, value: &'static str) {
        self.set(key, || AttrValue::Str(Cow::Borrowed(truncated(value))));
    }

    pub fn set_int(&mut self, key: &'static str, value: i64) {
        self.set(key, || AttrValue::Int(value));
    }

    pub fn set_f64(&mut self, key: &'static str, value: f64) {
        self.set(key, || AttrValue::Float(value));
    }

    pub fn set_bool(&mut self, key: &'static str, value: bool) {
        self.set(key, || AttrValue::Bool(value));
    }

    pub fn set_str_array<S: AsRef<str>>(&mut self, key: &'static str, values: &[S]) {
        self.set(key, || {
            AttrValue::StrArray(
                values
                    .iter()
                    .map(|v| truncated(v.as_ref()).to_string())
                    .collect(),
            )
        });
    }

    /// Prompt or output text: recorded only under `MESH_TRACE_CONTENT=1`.
    pub fn set_content(&mut self, key: &'static str, value: &str) {
        if self.records_content() {
            self.set_str(key, value);
        }
    }

    /// A timestamped event (e.g. the first chunk of a stream). Build `attributes`
    /// only when `is_recording()`, or pass none.
    pub fn add_event(&mut self, name: &'static str, attributes: Vec<KeyValue>) {
        let Some((data, started)) = self.record.as_mut() else {
            return;
        };
        if data.events.len() < MAX_EVENTS {
            let time_unix_nanos = data.start_unix_nanos + started.elapsed().as_nanos() as u64;
            data.events.push(Event {
                name,
                time_unix_nanos,
                attributes,
            });
        } else {
            data.dropped_events += 1;
        }
    }

    /// Marks the span failed, following the conventions' "recording errors": a
    /// low-cardinality `error.type` (`timeout`, `rate_limit`, `500`, …) and the error
    /// status with a short description (already free of secrets: provider errors are
    /// redacted before they get here).
    pub fn record_error(&mut self, error_type: &str, description: &str) {
        if self.record.is_none() {
            return;
        }
        self.set_str(ERROR_TYPE, error_type);
        if let Some((data, _)) = self.record.as_mut() {
            data.status = Status::Error(truncated(description).to_string());
        }
    }

    /// Marks the span explicitly successful (rarely needed: unset means no error).
    pub fn set_ok(&mut self) {
        if let Some((data, _)) = self.record.as_mut() {
            data.status = Status::Ok;
        }
    }

    /// Ends the span now; dropping it does the same.
    pub fn end(self) {}
}

impl Drop for Span {
    fn drop(&mut self) {
        if let Some((mut data, started)) = self.record.take() {
            data.end_unix_nanos = data.start_unix_nanos + started.elapsed().as_nanos() as u64;
            self.tracer.export(data);
        }
    }
}

fn truncated(s: &str) -> &str {
    if s.len() <= MAX_VALUE_BYTES {
        return s;
    }
    let mut end = MAX_VALUE_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut_at_a_character_boundary() {
        let s = "é".repeat(MAX_VALUE_BYTES);
        let t = truncated(&s);
        assert!(t.len() <= MAX_VALUE_BYTES && t.len() > MAX_VALUE_BYTES - 2);
        assert!(t.chars().all(|c| c == 'é'));
        assert_eq!(truncated("short"), "short");
    }
}
