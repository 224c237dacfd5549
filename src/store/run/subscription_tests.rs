//! Unit tests of subscriptions: readers see every event once, in order, from any
//! resume point, are woken by the next event, and end with the run.

use super::*;
use crate::model::events::RunStatus;
use crate::store::run::test_support::{config, done, start};
use crate::store::run::RunOwner;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Weak;
use std::task::Wake;

struct CountingWaker(AtomicUsize);
impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counting_waker() -> (Arc<CountingWaker>, Waker) {
    let c = Arc::new(CountingWaker(AtomicUsize::new(0)));
    (c.clone(), Waker::from(c))
}

struct NoOwner;
impl RunOwner for NoOwner {
    fn run_finished(&self, _: &str) {}
    fn disconnect_grace(&self) -> std::time::Duration {
        std::time::Duration::from_secs(1)
    }
}

fn run() -> Arc<Run> {
    Arc::new(Run::new(
        "r1".to_string(),
        "task".to_string(),
        config(true),
        Weak::<NoOwner>::new(),
    ))
}

fn all_bytes(run: &Arc<Run>) -> Vec<u8> {
    let s = run.observe();
    let (mut offset, mut out) = (0, VecDeque::new());
    let (_, w) = counting_waker();
    s.poll_log(&mut offset, &mut out, &w);
    out.iter().flat_map(|b| b.iter().copied()).collect()
}

#[test]
fn a_waiting_reader_is_woken_by_the_next_event_and_gets_it_once() {
    let run = run();
    let sub = run.subscribe().unwrap();
    let (count, waker) = counting_waker();
    let (mut offset, mut out) = (0, VecDeque::new());
    assert_eq!(
        sub.poll_log(&mut offset, &mut out, &waker),
        LogPoll::Pending
    );
    assert_eq!(count.0.load(Ordering::SeqCst), 0);
    run.push(start("writer"));
    assert_eq!(count.0.load(Ordering::SeqCst), 1, "woken by the event");
    assert_eq!(sub.poll_log(&mut offset, &mut out, &waker), LogPoll::Data);
    assert_eq!(
        sub.poll_log(&mut offset, &mut out, &waker),
        LogPoll::Pending
    );
    run.push_token("writer", "x");
    run.push_token("writer", "y");
    assert_eq!(count.0.load(Ordering::SeqCst), 2, "parked once, woken once");
    assert_eq!(sub.poll_log(&mut offset, &mut out, &waker), LogPoll::Data);
    let got: Vec<u8> = out.iter().flat_map(|b| b.iter().copied()).collect();
    assert_eq!(got, all_bytes(&run), "every byte once, in order");
}

#[test]
fn the_run_ending_ends_every_reader_after_its_last_event() {
    let run = run();
    let sub = run.subscribe().unwrap();
    let (_, waker) = counting_waker();
    run.push(done(RunStatus::Completed, "ok"));
    let mut after = 0;
    let mut names = Vec::new();
    assert_eq!(
        sub.poll_events(&mut after, &waker, |_, e| names.push(e.name())),
        LogPoll::Data
    );
    assert_eq!(names, ["done"]);
    assert_eq!(
        sub.poll_events(&mut after, &waker, |_, _| panic!("repeat")),
        LogPoll::Finished
    );
    let (mut offset, mut out) = (sub.offset_after(1), VecDeque::new());
    assert_eq!(
        sub.poll_log(&mut offset, &mut out, &waker),
        LogPoll::Finished
    );
}

/// Resuming after any event (as `Last-Event-ID` does) gives exactly the rest,
/// both as bytes and typed, while events keep arriving between polls.
#[test]
fn resuming_from_any_event_misses_nothing_and_repeats_nothing() {
    let run = run();
    run.push(start("writer"));
    for i in 0..20 {
        run.push_token("writer", &format!("t{i} "));
    }
    let full_before: Vec<u8> = all_bytes(&run);
    for resume in 0..=21u64 {
        let sub = run.subscribe().unwrap();
        let (_, waker) = counting_waker();
        let mut offset = sub.offset_after(resume);
        let mut out = VecDeque::new();
        let mut after = resume;
        let mut seqs = Vec::new();
        sub.poll_log(&mut offset, &mut out, &waker);
        sub.poll_events(&mut after, &waker, |seq, _| seqs.push(seq));
        let got: Vec<u8> = out.iter().flat_map(|b| b.iter().copied()).collect();
        assert_eq!(
            got,
            full_before[offset_of(&full_before, resume)..],
            "bytes after {resume}"
        );
        assert_eq!(
            seqs,
            (resume + 1..=21).collect::<Vec<_>>(),
            "events after {resume}"
        );
    }
    // Live: events pushed between polls arrive once each.
    let sub = run.subscribe().unwrap();
    let (_, waker) = counting_waker();
    let mut after = run.last_event_id();
    let mut seen = Vec::new();
    for i in 0..5 {
        run.push_token("writer", &format!("live{i}"));
        sub.poll_events(&mut after, &waker, |seq, e| {
            if let EventRef::Token { text, .. } = e {
                seen.push((seq, text.to_string()));
            }
        });
    }
    assert_eq!(seen.len(), 5);
    assert_eq!(seen[0], (22, "live0".to_string()));
    assert_eq!(seen[4], (26, "live4".to_string()));
}

/// The byte offset just past event `seq` in a whole log (frames end in "\n\n").
fn offset_of(log: &[u8], seq: u64) -> usize {
    let mut n = 0;
    let mut i = 0;
    while n < seq {
        i += log[i..].windows(2).position(|w| w == b"\n\n").unwrap() + 2;
        n += 1;
    }
    i
}

#[test]
fn a_run_takes_at_most_sixteen_subscribers_and_readers_the_store_uses_do_not_count() {
    let run = run();
    let subs: Vec<_> = (0..MAX_SUBSCRIBERS)
        .map(|_| run.subscribe().unwrap())
        .collect();
    let _store_reader = run.observe();
    assert_eq!(run.subscriber_count(), MAX_SUBSCRIBERS);
    assert!(matches!(
        run.subscribe(),
        Err(SubscribeError::TooManySubscribers)
    ));
    drop(subs);
    assert_eq!(run.subscriber_count(), 0);
    assert!(run.subscribe().is_ok());
}

#[tokio::test]
async fn next_events_follows_a_run_to_its_end() {
    let run = run();
    let sub = run.subscribe().unwrap();
    let writer = {
        let run = run.clone();
        tokio::spawn(async move {
            for i in 0..50 {
                run.push_token("writer", &i.to_string());
                tokio::task::yield_now().await;
            }
            run.push(done(RunStatus::Completed, "ok"));
        })
    };
    let mut after = 0;
    let mut texts = String::new();
    let follow = async {
        while sub
            .next_events(&mut after, |_, e| {
                if let EventRef::Token { text, .. } = e {
                    texts.push_str(text);
                    texts.push(',');
                }
            })
            .await
        {}
    };
    tokio::time::timeout(std::time::Duration::from_secs(5), follow)
        .await
        .unwrap();
    writer.await.unwrap();
    let want: String = (0..50).map(|i| format!("{i},")).collect();
    assert_eq!(texts, want);
    assert_eq!(after, 51);
}
