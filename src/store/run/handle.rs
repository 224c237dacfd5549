//! The narrow view of a run the store hands out: what the HTTP layer, `/v1` and the
//! CLI may do with a run (read its snapshot, follow its events, cancel it), and
//! nothing of how the store keeps it.

use super::readers::SubscribeError;
use super::snapshot::{RunSnapshot, RunSummary};
use super::state::{Run, COPY_LAG_BOUND};
use super::subscription::Subscription;
use crate::model::events::RunStatus;
use crate::model::run_config::RunConfig;
use std::sync::Arc;

/// A retained run, as readers see it. Cheap to clone.
#[derive(Clone)]
pub struct RunHandle(Arc<Run>);

impl RunHandle {
    pub(crate) fn new(run: Arc<Run>) -> RunHandle {
        RunHandle(run)
    }

    pub fn id(&self) -> &str {
        &self.0.id
    }

    pub fn task(&self) -> &str {
        &self.0.task
    }

    pub fn config(&self) -> &Arc<RunConfig> {
        &self.0.config
    }

    pub fn status(&self) -> RunStatus {
        self.0.status()
    }

    pub fn is_finished(&self) -> bool {
        self.0.is_finished()
    }

    /// The seq of the last logged event (0 before the first).
    pub fn last_event_id(&self) -> u64 {
        self.0.last_event_id()
    }

    /// The run's snapshot as typed data (`thread` left for the caller to fill).
    pub fn snapshot(&self) -> RunSnapshot {
        self.0.snapshot()
    }

    pub fn summary(&self) -> RunSummary {
        self.0.summary()
    }

    /// Follows the run's events as one of its (at most 16) stream subscribers.
    pub fn subscribe(&self) -> Result<Subscription, SubscribeError> {
        self.0.subscribe()
    }

    /// Whether the run is paused until its plan is approved (`review`).
    pub fn is_awaiting_review(&self) -> bool {
        self.0.is_awaiting_review()
    }

    /// Whether another instance of a shared store runs this run (this is its copy).
    pub fn is_copy(&self) -> bool {
        self.0.is_copy()
    }

    /// Hands an approved plan to the run's pipeline, when this process runs it and
    /// it awaits review with no plan approved yet.
    pub fn approve(&self, plan: crate::model::events::PlanEvent) -> bool {
        !self.0.is_copy() && self.0.approve(plan)
    }

    /// Requests cancellation (nothing happens to a finished run).
    pub fn cancel(&self, reason: &str) {
        self.0.cancel(reason);
    }

    /// A copy of another instance's run trails the log that instance serves by the
    /// time events take through the store (normally milliseconds), and a client may
    /// have seen more there (an event id, the run's end) before asking here. This
    /// waits until `ready` holds, the copy has finished, or [`COPY_LAG_BOUND`]
    /// passed, and returns `ready`. A run of this process's own is never behind: it
    /// returns at once.
    pub async fn catch_up(&self, ready: impl Fn(&RunHandle) -> bool) -> bool {
        if self.0.is_copy() {
            let watch = self.0.observe();
            let wait = watch.wait_until(|_| ready(self));
            let _ = tokio::time::timeout(COPY_LAG_BOUND, wait).await;
        }
        ready(self)
    }
}
