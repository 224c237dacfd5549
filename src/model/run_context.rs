//! What a pipeline sees of its run: who it is, its frozen config, where its events
//! go, its cancel signal and its running totals. A store builds it and implements
//! [`EventSink`]; the pipeline writes to it. Neither knows the other, so any store
//! (in memory, or shared) and any schedule plug in here.

use super::events::{Event, PlanEvent, RunStatus, Usage};
use super::run_config::RunConfig;
use crate::trace::{self, genai, Span};
use crate::util::lock;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::watch;

/// Where a run's events go. Calls come from the pipeline's task (and, with several
/// agents at once, from several futures of it), in the order the events happen.
pub trait EventSink: Send + Sync {
    /// Logs one event, the next in the run's order; events after `done` are ignored.
    fn push(&self, event: Event);
    /// Logs a `token` event from borrowed text (the hot path: no owned event is built).
    fn push_token(&self, agent: &str, text: &str);
}

/// Fires once cancellation of the run was requested, with the reason.
#[derive(Clone)]
pub struct CancelSignal {
    rx: watch::Receiver<Option<String>>,
}

impl CancelSignal {
    pub fn new(rx: watch::Receiver<Option<String>>) -> CancelSignal {
        CancelSignal { rx }
    }

    /// Resolves once cancellation was requested (at once if it already was).
    pub async fn cancelled(&self) {
        let mut rx = self.rx.clone();
        // A dropped sender (the run is gone) counts as cancelled too: nobody is
        // left to see the pipeline's work.
        let _ = rx.wait_for(|r| r.is_some()).await;
    }

    pub fn reason(&self) -> Option<String> {
        self.rx.borrow().clone()
    }
}

/// Carries the plan a reviewer approved to a run paused for review (`review`).
#[derive(Clone)]
pub struct ApprovalSignal {
    rx: watch::Receiver<Option<PlanEvent>>,
}

impl ApprovalSignal {
    pub fn new(rx: watch::Receiver<Option<PlanEvent>>) -> ApprovalSignal {
        ApprovalSignal { rx }
    }

    /// Resolves with the approved plan; never, if the run goes without one.
    async fn approved(&self) -> PlanEvent {
        let mut rx = self.rx.clone();
        loop {
            if let Some(plan) = rx.borrow_and_update().clone() {
                return plan;
            }
            if rx.changed().await.is_err() {
                // The run is gone: nothing will approve it (its cancel ends the wait).
                return std::future::pending().await;
            }
        }
    }
}

/// One running pipeline's view of its run.
pub struct RunContext {
    pub id: String,
    pub task: String,
    pub config: Arc<RunConfig>,
    pub started: Instant,
    events: Arc<dyn EventSink>,
    cancel: CancelSignal,
    /// Where an approved plan arrives (`None`: nothing can approve one, as in tests).
    approval: Option<ApprovalSignal>,
    /// Tokens and cost of every finished agent call so far (from their `stream_end`s).
    totals: Mutex<(Option<Usage>, Option<f64>)>,
    /// The run's `invoke_workflow` span from `begin_trace` to `end_trace`: the parent
    /// of its agents' spans. Touched once per agent call, never per token.
    span: Mutex<Option<Span>>,
}

impl RunContext {
    /// The context of run `id` just created, whose events go to `events` (the
    /// store's run, or a sink that also writes them elsewhere) and which stops when
    /// `cancel` fires.
    pub fn new(
        id: String,
        task: String,
        config: Arc<RunConfig>,
        events: Arc<dyn EventSink>,
        cancel: CancelSignal,
    ) -> RunContext {
        RunContext {
            id,
            task,
            config,
            started: Instant::now(),
            events,
            cancel,
            approval: None,
            totals: Mutex::new((None, None)),
            span: Mutex::new(None),
        }
    }

    /// The same context, with approved plans arriving through `approval`.
    pub fn with_approval(mut self, approval: ApprovalSignal) -> RunContext {
        self.approval = Some(approval);
        self
    }

    /// Resolves with the plan a reviewer approved (never, if none can arrive).
    pub async fn approved_plan(&self) -> PlanEvent {
        match &self.approval {
            Some(approval) => approval.approved().await,
            None => std::future::pending().await,
        }
    }

    /// Starts the run's root span in the process tracer, under the trace context of
    /// the request that started the run, if it had one.
    pub fn begin_trace(&self) {
        let mut span = genai::run_span(
            trace::global(),
            self.config.trace_parent.as_ref(),
            &self.id,
            self.task.chars().count(),
        );
        span.set_static(genai::MESH_RUN_SCHEDULE, self.config.schedule.as_str());
        *lock(&self.span) = Some(span);
    }

    /// A span under the run's span (`start` builds it from the parent); a
    /// non-recording one carrying no context before `begin_trace`.
    pub fn child_span(&self, start: impl FnOnce(&Span) -> Span) -> Span {
        match lock(&self.span).as_ref() {
            Some(run_span) => start(run_span),
            None => start(&Span::non_recording(
                trace::SpanContext::INVALID,
                trace::global().clone(),
            )),
        }
    }

    /// Ends the run's span with the run's status (and `error.type` when it did not
    /// complete); returns the trace id for the `done` event when tracing is on.
    pub fn end_trace(&self, status: RunStatus) -> Option<String> {
        let mut span = lock(&self.span).take()?;
        span.set_static(genai::MESH_RUN_STATUS, status.as_str());
        match status {
            RunStatus::Completed => {}
            RunStatus::Cancelled => span.record_error("cancelled", "the run was cancelled"),
            _ => span.record_error(genai::ERROR_OTHER, "the run failed"),
        }
        let trace_id = trace::global()
            .is_enabled()
            .then(|| span.context().trace_id.to_hex());
        span.end();
        trace_id
    }

    pub fn push(&self, event: Event) {
        if let Event::StreamEnd(end) = &event {
            let mut totals = lock(&self.totals);
            Usage::add_to(&mut totals.0, end.usage);
            if let Some(c) = end.cost_usd {
                totals.1 = Some(totals.1.unwrap_or(0.0) + c);
            }
        }
        self.events.push(event);
    }

    pub fn push_token(&self, agent: &str, text: &str) {
        self.events.push_token(agent, text);
    }

    pub async fn cancelled(&self) {
        self.cancel.cancelled().await;
    }

    pub fn cancel_reason(&self) -> Option<String> {
        self.cancel.reason()
    }

    /// Tokens and cost summed over every finished agent call so far.
    pub fn totals(&self) -> (Option<Usage>, Option<f64>) {
        *lock(&self.totals)
    }
}
