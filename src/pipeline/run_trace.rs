//! The run's spans on its context: the root `invoke_workflow` span (held by the
//! context as a `RunSpan`, since the run model knows no tracing) and the agents'
//! spans under it.

use crate::model::events::RunStatus;
use crate::model::run_context::{RunContext, RunSpan};
use crate::model::trace_context::SpanContext;
use crate::trace::{self, genai, Span};

impl RunSpan for Span {
    fn context(&self) -> SpanContext {
        Span::context(self)
    }

    fn end(mut self: Box<Self>, status: RunStatus) -> Option<String> {
        self.set_static(genai::MESH_RUN_STATUS, status.as_str());
        match status {
            RunStatus::Completed => {}
            RunStatus::Cancelled => self.record_error("cancelled", "the run was cancelled"),
            _ => self.record_error(genai::ERROR_OTHER, "the run failed"),
        }
        let trace_id = trace::global()
            .is_enabled()
            .then(|| Span::context(&self).trace_id.to_hex());
        Span::end(*self);
        trace_id
    }
}

/// What the pipeline does with a run's trace.
pub trait RunTracing {
    /// Starts the run's root span in the process tracer, under the trace context of
    /// the request that started the run, if it had one.
    fn begin_trace(&self);
    /// A span under the run's span (`start` builds it from the parent); a
    /// non-recording one carrying no context before `begin_trace`.
    fn child_span(&self, start: impl FnOnce(&Span) -> Span) -> Span;
    /// Ends the run's span with the run's status (and `error.type` when it did not
    /// complete); returns the trace id for the `done` event when tracing is on.
    fn end_trace(&self, status: RunStatus) -> Option<String>;
}

impl RunTracing for RunContext {
    fn begin_trace(&self) {
        let mut span = genai::run_span(
            trace::global(),
            self.config.trace_parent.as_ref(),
            &self.id,
            self.task.chars().count(),
        );
        span.set_static(genai::MESH_RUN_SCHEDULE, self.config.schedule.as_str());
        self.set_span(Box::new(span));
    }

    fn child_span(&self, start: impl FnOnce(&Span) -> Span) -> Span {
        // A child needs only its parent's context and the tracer, and the run span was
        // started by the process tracer: this stand-in parent starts the same child.
        let parent = self.span_context().unwrap_or(SpanContext::INVALID);
        start(&Span::non_recording(parent, trace::global().clone()))
    }

    fn end_trace(&self, status: RunStatus) -> Option<String> {
        self.end_span(status)
    }
}
