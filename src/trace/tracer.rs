//! The handle the pipeline starts spans with: decides sampling, makes ids, and hands
//! ended spans to the export queue without ever waiting (a full queue drops the span
//! and counts it). A disabled tracer makes spans that record nothing and allocate
//! nothing, and that pass an incoming parent's context through unchanged.

use super::sampler::Sampler;
use super::span::{Span, SpanData, SpanKind};
use crate::metrics::METRICS;
use crate::model::trace_context::{SpanContext, SpanId, TraceId};
use std::borrow::Cow;
use std::sync::{Arc, OnceLock};
use tokio::sync::mpsc;

/// Cheap to clone (one reference count); `Tracer::default()` is disabled.
#[derive(Clone, Default)]
pub struct Tracer {
    shared: Option<Arc<Shared>>,
}

struct Shared {
    sampler: Sampler,
    record_content: bool,
    queue: mpsc::Sender<Box<SpanData>>,
}

impl Tracer {
    pub const fn disabled() -> Tracer {
        Tracer { shared: None }
    }

    /// A tracer whose recorded spans go to `queue` (the exporter's receiving end).
    pub fn new(
        sampler: Sampler,
        record_content: bool,
        queue: mpsc::Sender<Box<SpanData>>,
    ) -> Tracer {
        Tracer {
            shared: Some(Arc::new(Shared {
                sampler,
                record_content,
                queue,
            })),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.shared.is_some()
    }

    pub fn records_content(&self) -> bool {
        self.shared.as_ref().is_some_and(|s| s.record_content)
    }

    /// Starts a span under `parent` (a local span's context, or a remote one from
    /// `SpanContext::from_traceparent`); with no valid parent it starts a new trace.
    pub fn start_span(
        &self,
        name: impl Into<Cow<'static, str>>,
        kind: SpanKind,
        parent: Option<&SpanContext>,
    ) -> Span {
        self.start_with(kind, parent, || name.into())
    }

    /// Starts a span named `"{operation} {subject}"` (`invoke_agent researcher`,
    /// `chat gpt-4o`), formatting the name only when the span is recorded.
    pub fn start_span_named(
        &self,
        operation: &'static str,
        subject: &str,
        kind: SpanKind,
        parent: Option<&SpanContext>,
    ) -> Span {
        self.start_with(kind, parent, || {
            if subject.is_empty() {
                Cow::Borrowed(operation)
            } else {
                Cow::Owned(format!("{operation} {subject}"))
            }
        })
    }

    fn start_with(
        &self,
        kind: SpanKind,
        parent: Option<&SpanContext>,
        name: impl FnOnce() -> Cow<'static, str>,
    ) -> Span {
        let parent = parent.filter(|p| p.is_valid());
        let Some(shared) = &self.shared else {
            let passed_on = parent.copied().unwrap_or(SpanContext::INVALID);
            return Span::non_recording(passed_on, Tracer::disabled());
        };
        let trace_id = parent.map_or_else(TraceId::random, |p| p.trace_id);
        let sampled = shared.sampler.should_sample(parent, &trace_id);
        let context = SpanContext {
            trace_id,
            span_id: SpanId::random(),
            sampled,
            remote: false,
        };
        if sampled {
            Span::recording(context, parent, name(), kind, self.clone())
        } else {
            Span::non_recording(context, self.clone())
        }
    }

    /// Queues an ended span; never waits. A full queue (a slow or dead collector) or
    /// a stopped exporter drops it, counted in `agent_mesh_trace_spans_dropped_total`.
    pub(crate) fn export(&self, span: Box<SpanData>) {
        if let Some(shared) = &self.shared {
            if shared.queue.try_send(span).is_err() {
                METRICS.trace_spans_dropped(1);
            }
        }
    }
}

static GLOBAL: OnceLock<Tracer> = OnceLock::new();
static DISABLED: Tracer = Tracer::disabled();

/// Makes `tracer` the process's tracer (once; `main` calls it at start). Returns false
/// when one was installed already.
pub fn install(tracer: Tracer) -> bool {
    GLOBAL.set(tracer).is_ok()
}

/// The process's tracer: the installed one, or a disabled one.
pub fn global() -> &'static Tracer {
    GLOBAL.get().unwrap_or(&DISABLED)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::sampler::RootSampler;

    fn tracer(sampler: Sampler, capacity: usize) -> (Tracer, mpsc::Receiver<Box<SpanData>>) {
        let (tx, rx) = mpsc::channel(capacity);
        (Tracer::new(sampler, false, tx), rx)
    }

    #[test]
    fn a_disabled_tracer_records_nothing_and_passes_a_remote_parent_through() {
        let t = Tracer::disabled();
        let mut span = t.start_span("run", SpanKind::Internal, None);
        assert!(!span.is_recording());
        assert_eq!(span.context(), SpanContext::INVALID);
        assert_eq!(span.traceparent(), None);
        span.set_str("k", "v");
        span.record_error("timeout", "slow");
        let remote = SpanContext::from_traceparent(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .unwrap();
        let span = t.start_span("run", SpanKind::Internal, Some(&remote));
        assert_eq!(span.context(), remote);
        let child = span.child_named("chat", "m", SpanKind::Client);
        assert_eq!(
            child.traceparent().unwrap(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
    }

    #[test]
    fn children_share_the_trace_and_name_their_parent() {
        let (t, mut rx) = tracer(Sampler::ParentBased(RootSampler::AlwaysOn), 16);
        let root = t.start_span("invoke_workflow", SpanKind::Internal, None);
        let mut child = root.child_named("chat", "gpt-4o", SpanKind::Client);
        child.set_int("gen_ai.usage.input_tokens", 3);
        child.set_int("gen_ai.usage.input_tokens", 4);
        child.record_error("timeout", "no answer in 30 s");
        let (root_ctx, child_ctx) = (root.context(), child.context());
        child.end();
        root.end();
        let c = rx.try_recv().unwrap();
        let r = rx.try_recv().unwrap();
        assert_eq!(c.name, "chat gpt-4o");
        assert_eq!(c.kind, SpanKind::Client);
        assert_eq!(c.context, child_ctx);
        assert_eq!(c.context.trace_id, root_ctx.trace_id);
        assert_eq!(c.parent_span_id, Some(root_ctx.span_id));
        assert_eq!(r.parent_span_id, None);
        assert!(c.end_unix_nanos >= c.start_unix_nanos);
        let tokens: Vec<_> = c
            .attributes
            .iter()
            .filter(|kv| kv.key == "gen_ai.usage.input_tokens")
            .collect();
        assert_eq!(tokens.len(), 1, "a key set twice is replaced");
        assert_eq!(tokens[0].value, crate::trace::span::AttrValue::Int(4));
        assert_eq!(
            c.status,
            crate::trace::span::Status::Error("no answer in 30 s".into())
        );
        assert!(c.attributes.iter().any(|kv| kv.key == "error.type"
            && kv.value == crate::trace::span::AttrValue::Str("timeout".into())));
    }

    #[test]
    fn a_remote_parent_is_recorded_as_remote_and_its_decision_followed() {
        let (t, mut rx) = tracer(Sampler::ParentBased(RootSampler::AlwaysOn), 16);
        let sampled = SpanContext::from_traceparent(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .unwrap();
        drop(t.start_span("run", SpanKind::Server, Some(&sampled)));
        let s = rx.try_recv().unwrap();
        assert!(s.parent_is_remote);
        assert_eq!(s.context.trace_id, sampled.trace_id);
        let unsampled = SpanContext {
            sampled: false,
            ..sampled
        };
        let span = t.start_span("run", SpanKind::Server, Some(&unsampled));
        assert!(!span.is_recording());
        // Not recorded, but still a new span id in the same trace, flagged unsampled.
        assert_eq!(span.context().trace_id, sampled.trace_id);
        assert_ne!(span.context().span_id, sampled.span_id);
        assert!(span.traceparent().unwrap().ends_with("-00"));
        drop(span);
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn content_is_recorded_only_when_enabled() {
        let (tx, mut rx) = mpsc::channel(4);
        let t = Tracer::new(Sampler::Root(RootSampler::AlwaysOn), false, tx.clone());
        let mut s = t.start_span("chat", SpanKind::Client, None);
        s.set_content("gen_ai.input.messages", "the secret plan");
        drop(s);
        assert!(rx.try_recv().unwrap().attributes.is_empty());
        let t = Tracer::new(Sampler::Root(RootSampler::AlwaysOn), true, tx);
        let mut s = t.start_span("chat", SpanKind::Client, None);
        s.set_content("gen_ai.input.messages", "the plan");
        drop(s);
        assert_eq!(rx.try_recv().unwrap().attributes.len(), 1);
    }

    #[test]
    fn a_full_queue_drops_and_counts_without_waiting() {
        let (t, _rx) = tracer(Sampler::Root(RootSampler::AlwaysOn), 2);
        let before = METRICS.trace_counts().dropped;
        for _ in 0..5 {
            drop(t.start_span("s", SpanKind::Internal, None));
        }
        assert!(METRICS.trace_counts().dropped >= before + 3);
    }
}
