//! Unit tests of the run's readers: parked wakers are woken once each, and the
//! subscriber count moves its epoch both ways.

use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Wake;

struct Counter(AtomicUsize);
impl Wake for Counter {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_parked_reader_is_woken_once_and_a_removed_one_never() {
    let (a, b) = (
        Arc::new(Counter(AtomicUsize::new(0))),
        Arc::new(Counter(AtomicUsize::new(0))),
    );
    let mut wakers = Wakers::default();
    let (ida, idb) = (wakers.new_id(), wakers.new_id());
    assert_ne!(ida, idb);
    // Parking twice keeps one entry: one wake, not two.
    wakers.park(ida, &Waker::from(a.clone()));
    wakers.park(ida, &Waker::from(a.clone()));
    wakers.park(idb, &Waker::from(b.clone()));
    wakers.remove(idb);
    wakers.wake_all();
    wakers.wake_all();
    assert_eq!(a.0.load(Ordering::SeqCst), 1);
    assert_eq!(b.0.load(Ordering::SeqCst), 0);
}

#[test]
fn watchers_count_and_bump_the_epoch_both_ways() {
    let mut w = Watchers::default();
    w.joined();
    w.joined();
    assert!(!w.left());
    assert!(w.left());
    assert_eq!((w.count, w.epoch), (0, 4));
    assert!(w.left(), "never below zero");
    assert_eq!(w.count, 0);
}
