//! Who follows a run: the readers parked until its next event ([`Wakers`]) and the
//! count of its stream subscribers, which the disconnect timer watches ([`Watchers`]).

use std::task::Waker;

/// At most this many live stream subscribers per run.
pub const MAX_SUBSCRIBERS: usize = 16;

/// Why a run refused a subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscribeError {
    TooManySubscribers,
}

/// Readers waiting for the run's next event, by reader id.
#[derive(Default)]
pub struct Wakers {
    waiting: Vec<(u64, Waker)>,
    next_id: u64,
    /// Set when the store let go of the run (evicted): readers get nothing more.
    closed: bool,
}

impl Wakers {
    pub fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn park(&mut self, id: u64, waker: &Waker) {
        match self.waiting.iter_mut().find(|(i, _)| *i == id) {
            Some((_, w)) => {
                if !w.will_wake(waker) {
                    w.clone_from(waker);
                }
            }
            None => self.waiting.push((id, waker.clone())),
        }
    }

    pub fn remove(&mut self, id: u64) {
        self.waiting.retain(|(i, _)| *i != id);
    }

    /// Ends every reader: the run was evicted, and what readers hold of it (the run
    /// itself, slices of its log) should go with it, not when they finish reading.
    pub fn close(&mut self) {
        self.closed = true;
        self.wake_all();
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Wakes every parked reader (each parks again when it wants more).
    pub fn wake_all(&mut self) {
        for (_, waker) in self.waiting.drain(..) {
            waker.wake();
        }
    }
}

/// The run's counted subscribers.
#[derive(Default)]
pub struct Watchers {
    pub count: usize,
    /// Bumped whenever the count changes, so a stale grace timer knows someone came
    /// and went in between.
    pub epoch: u64,
}

impl Watchers {
    pub fn joined(&mut self) {
        self.count += 1;
        self.epoch += 1;
    }

    /// Counts one gone; whether none is left.
    pub fn left(&mut self) -> bool {
        self.count = self.count.saturating_sub(1);
        self.epoch += 1;
        self.count == 0
    }
}

#[cfg(test)]
#[path = "readers_tests.rs"]
mod tests;
