//! Unit tests of the lifecycle: cancel, the disconnect-grace timer (on tokio's
//! paused clock) and the ending reported exactly once.

use super::*;
use crate::store::run::test_support::{config, done, start};
use crate::store::run::RunOwner;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Weak;
use std::time::Duration;

const GRACE: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Owner {
    finished: AtomicUsize,
    elsewhere: AtomicBool,
}

impl RunOwner for Owner {
    fn run_finished(&self, _: &str) {
        self.finished.fetch_add(1, Ordering::SeqCst);
    }
    fn disconnect_grace(&self) -> Duration {
        GRACE
    }
    fn watched_elsewhere(&self, _: &str) -> bool {
        self.elsewhere.load(Ordering::SeqCst)
    }
}

fn run_of(owner: &Arc<Owner>, detach: bool) -> Arc<Run> {
    let weak: Weak<dyn RunOwner> = Arc::downgrade(owner) as Weak<Owner>;
    Arc::new(Run::new("r1".into(), "task".into(), config(detach), weak))
}

#[test]
fn the_first_cancel_reason_wins_and_a_finished_run_is_not_cancelled() {
    let owner = Arc::new(Owner::default());
    let run = run_of(&owner, true);
    let signal = run.cancel_signal();
    assert_eq!(signal.reason(), None);
    run.cancel("first");
    run.cancel("second");
    assert_eq!(run.cancel_reason().as_deref(), Some("first"));
    assert_eq!(signal.reason().as_deref(), Some("first"));

    let done_run = run_of(&owner, true);
    done_run.push(done(RunStatus::Completed, "ok"));
    done_run.cancel("too late");
    assert_eq!(done_run.cancel_reason(), None);
}

#[tokio::test]
async fn the_cancel_signal_fires_once_cancelled() {
    let owner = Arc::new(Owner::default());
    let run = run_of(&owner, true);
    let signal = run.cancel_signal();
    let waiting = tokio::spawn(async move { signal.cancelled().await });
    tokio::task::yield_now().await;
    assert!(!waiting.is_finished());
    run.cancel("stop");
    tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .unwrap()
        .unwrap();
}

#[test]
fn a_run_ends_exactly_once() {
    let owner = Arc::new(Owner::default());
    let run = run_of(&owner, true);
    assert_eq!(run.push(start("writer")), Some(1));
    assert_eq!(run.push(done(RunStatus::Completed, "ok")), Some(2));
    assert_eq!(
        run.push(done(RunStatus::Failed, "")),
        None,
        "nothing after done"
    );
    assert_eq!(run.push_token("writer", "late"), None);
    assert!(!run.push_stored(3, "token", r#"{"agent":"writer","text":"x"}"#));
    assert_eq!(owner.finished.load(Ordering::SeqCst), 1);
    assert_eq!(run.status(), RunStatus::Completed);
    assert_eq!(run.last_event_id(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_run_nobody_watches_for_the_grace_is_cancelled() {
    let owner = Arc::new(Owner::default());
    let run = run_of(&owner, false);
    run.arm_disconnect_timer();
    tokio::time::sleep(GRACE - Duration::from_millis(10)).await;
    assert_eq!(run.cancel_reason(), None);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        run.cancel_reason().as_deref(),
        Some("no stream subscriber for 5 s")
    );
}

#[tokio::test(start_paused = true)]
async fn a_subscriber_within_the_grace_keeps_the_run_and_its_leaving_rearms_the_timer() {
    let owner = Arc::new(Owner::default());
    let run = run_of(&owner, false);
    run.arm_disconnect_timer();
    tokio::time::sleep(GRACE / 2).await;
    let sub = run.subscribe().unwrap();
    tokio::time::sleep(GRACE * 3).await;
    assert_eq!(run.cancel_reason(), None, "watched: never cancelled");
    drop(sub);
    tokio::time::sleep(GRACE - Duration::from_millis(10)).await;
    assert_eq!(run.cancel_reason(), None);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        run.cancel_reason().is_some(),
        "cancelled a grace after the last left"
    );
}

#[tokio::test(start_paused = true)]
async fn a_subscriber_that_came_and_went_makes_the_old_timer_stale() {
    let owner = Arc::new(Owner::default());
    let run = run_of(&owner, false);
    run.arm_disconnect_timer();
    tokio::time::sleep(GRACE - Duration::from_secs(1)).await;
    drop(run.subscribe().unwrap());
    // The first timer is due now, but someone came and went: only the new one counts.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(run.cancel_reason(), None);
    tokio::time::sleep(GRACE).await;
    assert!(run.cancel_reason().is_some());
}

#[tokio::test(start_paused = true)]
async fn detached_finished_and_elsewhere_watched_runs_are_not_cancelled() {
    let owner = Arc::new(Owner::default());
    let detached = run_of(&owner, true);
    detached.arm_disconnect_timer();
    let finished = run_of(&owner, false);
    finished.arm_disconnect_timer();
    finished.push(done(RunStatus::Completed, "ok"));
    owner.elsewhere.store(true, Ordering::SeqCst);
    let elsewhere = run_of(&owner, false);
    elsewhere.arm_disconnect_timer();
    tokio::time::sleep(GRACE * 3).await;
    assert_eq!(detached.cancel_reason(), None);
    assert_eq!(finished.cancel_reason(), None);
    assert_eq!(elsewhere.cancel_reason(), None);
    // Once nobody watches it elsewhere either, the next look cancels it.
    owner.elsewhere.store(false, Ordering::SeqCst);
    tokio::time::sleep(GRACE + Duration::from_millis(10)).await;
    assert!(elsewhere.cancel_reason().is_some());
}
