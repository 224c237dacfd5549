//! A run's lifecycle: who watches it, cancellation, the disconnect-grace timer that
//! cancels a run nobody watches (not while it awaits review), and its ending (reported once to the store and to
//! the metrics).

use super::state::Run;
use crate::model::events::PlanEvent;
use crate::model::events::RunStatus;
use crate::model::run_context::{ApprovalSignal, CancelSignal};
use crate::store::seam::spawn_detached;
use std::sync::Arc;

impl Run {
    /// Requests cancellation; the pipeline notices at once and ends with `done`
    /// `cancelled`. The first reason wins; a finished run is left as it is.
    pub fn cancel(&self, reason: &str) {
        if self.is_finished() {
            return;
        }
        self.cancel_tx.send_if_modified(|r| {
            if r.is_none() {
                *r = Some(reason.to_string());
                true
            } else {
                false
            }
        });
    }

    pub fn cancel_reason(&self) -> Option<String> {
        self.cancel_tx.borrow().clone()
    }

    /// The signal a pipeline waits on; it fires when [`cancel`](Self::cancel) is called.
    pub fn cancel_signal(&self) -> CancelSignal {
        CancelSignal::new(self.cancel_tx.subscribe())
    }

    /// The run's `done` was logged (exactly once: nothing is logged after it).
    pub(super) fn ended(&self, status: RunStatus) {
        crate::metrics::METRICS.run_finished(status);
        if let Some(owner) = self.owner.upgrade() {
            owner.run_finished(&self.id);
        }
    }

    /// Hands a reviewer's approved plan to the run's pipeline, if the run is paused
    /// for review and no plan was approved yet; false otherwise (the first wins).
    pub fn approve(&self, plan: PlanEvent) -> bool {
        if !self.is_awaiting_review() {
            return false;
        }
        self.approval_tx.send_if_modified(|p| {
            if p.is_none() {
                *p = Some(plan);
                true
            } else {
                false
            }
        })
    }

    /// The signal a paused pipeline waits on for its approved plan.
    pub fn approval_signal(&self) -> ApprovalSignal {
        ApprovalSignal::new(self.approval_tx.subscribe())
    }

    /// The run paused for review or went on: the store is told (see
    /// [`RunOwner::review_paused`](super::state::RunOwner::review_paused)).
    pub(super) fn review_paused(&self, paused: bool) {
        if let Some(owner) = self.owner.upgrade() {
            owner.review_paused(&self.id, paused);
        }
    }

    /// With no subscriber for the grace period, a non-detached running run is cancelled.
    pub(crate) fn arm_disconnect_timer(self: &Arc<Self>) {
        if self.config.detach {
            return;
        }
        let grace = match self.owner.upgrade() {
            Some(owner) if owner.runs_pipelines() => owner.disconnect_grace(),
            _ => return,
        };
        let epoch = self.state().watchers.epoch;
        let run = Arc::downgrade(self);
        spawn_detached(async move {
            let mut wait = grace;
            let mut rechecked = false;
            loop {
                tokio::time::sleep(wait).await;
                let Some(run) = run.upgrade() else { return };
                let idle = {
                    let st = run.state();
                    st.watchers.count == 0 && st.watchers.epoch == epoch
                };
                if !idle || run.is_finished() {
                    return;
                }
                // A run paused for review waits for a person, who may close the page
                // and come back: it is never cancelled for want of subscribers while
                // paused (its own review timeout ends it). Looked at again later.
                if run.is_awaiting_review() {
                    (wait, rechecked) = (grace, false);
                    continue;
                }
                let Some(owner) = run.owner.upgrade() else {
                    return;
                };
                // Watched through another instance: look again after another grace.
                if owner.watched_elsewhere(&run.id) {
                    (wait, rechecked) = (grace, false);
                    continue;
                }
                // Other instances' subscribers are reported a little late: one that
                // came near the end of the grace may not be known here yet.
                let lag = owner.elsewhere_report_lag();
                if !rechecked && !lag.is_zero() {
                    (wait, rechecked) = (lag, true);
                    continue;
                }
                run.cancel(&format!("no stream subscriber for {} s", grace.as_secs()));
                return;
            }
        });
    }
}

#[cfg(test)]
#[path = "lifecycle_tests.rs"]
mod tests;
