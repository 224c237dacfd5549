//! Reading a run as it grows: the one way every reader (event streams, `/v1`, the
//! CLI, a copy catching up) follows a run. A [`Subscription`] holds a place among
//! the run's wakers; each poll hands out what was logged since the reader's
//! position (frames as shared slices, or typed events) or parks the reader's waker
//! until the next event, checking and parking under the run's one lock, so no
//! event is missed and none is handed out twice.

use super::log::EventRef;
use super::readers::{SubscribeError, MAX_SUBSCRIBERS};
use super::state::{Run, RunState};
use crate::model::events::RunStatus;
use bytes::Bytes;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Poll, Waker};

/// What a poll found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogPoll {
    /// New events were handed out.
    Data,
    /// Nothing new, and nothing will come: the run has ended (or was evicted).
    Finished,
    /// Nothing new yet; the waker is woken by the next event.
    Pending,
}

/// One reader of a run. A counted one (a stream subscriber) keeps the run watched;
/// dropping the last may arm the disconnect-grace timer.
pub struct Subscription {
    run: Arc<Run>,
    id: u64,
    counted: bool,
}

impl Run {
    /// A counted reader: at most [`MAX_SUBSCRIBERS`] at once.
    pub(crate) fn subscribe(self: &Arc<Self>) -> Result<Subscription, SubscribeError> {
        let mut st = self.state();
        if st.watchers.count >= MAX_SUBSCRIBERS {
            return Err(SubscribeError::TooManySubscribers);
        }
        st.watchers.joined();
        let id = st.wakers.new_id();
        Ok(Subscription {
            run: self.clone(),
            id,
            counted: true,
        })
    }

    /// A reader the store itself uses (a copy waiting to catch up): not a subscriber.
    pub(crate) fn observe(self: &Arc<Self>) -> Subscription {
        let id = self.state().wakers.new_id();
        Subscription {
            run: self.clone(),
            id,
            counted: false,
        }
    }
}

impl Run {
    /// The store let go of the run: every reader ends at its next poll (parked ones
    /// are woken for it), so no subscription keeps the run alive after eviction.
    pub(crate) fn close_readers(&self) {
        self.state().wakers.close();
    }
}

impl Subscription {
    /// The log offset just past event `after` (the start of a replay after it).
    pub fn offset_after(&self, after: u64) -> u64 {
        let st = self.run.state();
        st.log.offset_after(after.min(st.log.len()))
    }

    /// Hands over what is new (`take` says whether there was any) or parks
    /// `waker`, under one lock.
    fn poll_with(&self, waker: &Waker, take: impl FnOnce(&mut RunState) -> bool) -> LogPoll {
        let mut st = self.run.state();
        if st.wakers.is_closed() {
            return LogPoll::Finished;
        }
        if take(&mut st) {
            return LogPoll::Data;
        }
        if st.fold.status != RunStatus::Running {
            return LogPoll::Finished;
        }
        st.wakers.park(self.id, waker);
        LogPoll::Pending
    }

    /// Hands out every logged byte after log offset `offset` (advancing it) as
    /// shared slices of the log (no copy), or parks `waker` for the next event.
    pub fn poll_log(&self, offset: &mut u64, out: &mut VecDeque<Bytes>, waker: &Waker) -> LogPoll {
        self.poll_with(waker, |st| {
            let new = st.log.total_bytes() > *offset;
            if new {
                *offset = st.log.bytes_from(*offset, out);
            }
            new
        })
    }

    /// Calls `visit` with every event after seq `after` (advancing it), typed, or
    /// parks `waker` for the next event. `visit` runs under the run's lock: keep it
    /// short (no waiting).
    pub fn poll_events(
        &self,
        after: &mut u64,
        waker: &Waker,
        visit: impl FnMut(u64, EventRef<'_>),
    ) -> LogPoll {
        self.poll_with(waker, |st| {
            let new = st.log.len() > *after;
            if new {
                st.log.visit_after(*after, visit);
                *after = st.log.len();
            }
            new
        })
    }

    /// Waits for events after seq `after` and visits them (see
    /// [`poll_events`](Self::poll_events)); `false` once the run has ended and every
    /// event was visited.
    pub async fn next_events(
        &self,
        after: &mut u64,
        mut visit: impl FnMut(u64, EventRef<'_>),
    ) -> bool {
        poll_fn(|cx| match self.poll_events(after, cx.waker(), &mut visit) {
            LogPoll::Data => Poll::Ready(true),
            LogPoll::Finished => Poll::Ready(false),
            LogPoll::Pending => Poll::Pending,
        })
        .await
    }

    /// Waits until `ready` holds of the run or it has ended; returns `ready`.
    pub(crate) async fn wait_until(&self, ready: impl Fn(&Run) -> bool) -> bool {
        let mut seen = self.run.last_event_id();
        loop {
            if ready(&self.run) {
                return true;
            }
            if !self.next_events(&mut seen, |_, _| {}).await {
                return ready(&self.run);
            }
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let none_left = {
            let mut st = self.run.state();
            st.wakers.remove(self.id);
            self.counted && st.watchers.left() && st.fold.status == RunStatus::Running
        };
        if none_left {
            self.run.arm_disconnect_timer();
        }
    }
}

#[cfg(test)]
#[path = "subscription_tests.rs"]
mod tests;
