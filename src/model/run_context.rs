//! What a pipeline sees of its run: who it is, its frozen config, where its events
//! go, its cancel signal and its running totals. A store builds it and implements
//! [`EventSink`]; the pipeline writes to it. Neither knows the other, so any store
//! (in memory, or shared) and any schedule plug in here.

use super::budget::BudgetMeter;
use super::events::{Event, PlanEvent, RunStatus, Usage};
use super::run_config::RunConfig;
use super::trace_context::SpanContext;
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

/// The run's root span, opaque here (tracing sits above the model): the pipeline starts
/// it, its agents' spans hang under its context, and it ends with the run's status.
pub trait RunSpan: Send {
    /// The span's context: the parent of the run's agent spans.
    fn context(&self) -> SpanContext;
    /// Ends the span with the run's status; the trace id for the `done` event when
    /// tracing is on.
    fn end(self: Box<Self>, status: RunStatus) -> Option<String>;
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
    /// The run's spend against its budget, live (a no-op without one).
    pub budget: BudgetMeter,
    /// Where an approved plan arrives (`None`: nothing can approve one, as in tests).
    approval: Option<ApprovalSignal>,
    /// Tokens and cost of every finished agent call so far (from their `stream_end`s).
    totals: Mutex<(Option<Usage>, Option<f64>)>,
    /// The run's `invoke_workflow` span from `begin_trace` to `end_trace` (the
    /// pipeline's `RunTracing`): the parent of its agents' spans. Touched once per agent
    /// call, never per token.
    span: Mutex<Option<Box<dyn RunSpan>>>,
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
        let budget = BudgetMeter::new(config.budget.clone());
        RunContext {
            id,
            task,
            config,
            started: Instant::now(),
            budget,
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

    /// Holds the run's root span until `end_span`.
    pub fn set_span(&self, span: Box<dyn RunSpan>) {
        *lock(&self.span) = Some(span);
    }

    /// The root span's context; `None` before `set_span` and after `end_span`.
    pub fn span_context(&self) -> Option<SpanContext> {
        lock(&self.span).as_ref().map(|span| span.context())
    }

    /// Ends the root span with the run's status (see [`RunSpan::end`]); `None` when
    /// there was none.
    pub fn end_span(&self, status: RunStatus) -> Option<String> {
        let span = lock(&self.span).take()?;
        span.end(status)
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
