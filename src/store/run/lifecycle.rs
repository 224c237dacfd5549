//! A run's lifecycle: who watches it, cancellation, the disconnect-grace timer that
//! cancels a run nobody watches, and its ending (reported once to the store and to
//! the metrics).

use super::state::Run;
use crate::model::events::RunStatus;
use crate::model::run_context::CancelSignal;
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
