//! Liveness across instances, once a second: the instance running a pipeline renews
//! a short lease on each of its runs; an instance with subscribers of another's run
//! says so (so the owner does not cancel it for want of local subscribers); and an
//! instance following a run whose lease lapsed ends it `failed` in the run's own
//! stream (a run paused for review is left to wait: see `adopt`). That write is guarded by the stream itself ([`finish`]): it uses the
//! exact next entry id, which only one writer can take, and fences the stream.

use super::keys::unix_ms;
use super::reseed::Reseed;
use super::{finish, keys, parse_status, Shared};
use crate::model::error_kind::ErrorKind;
use crate::model::events::{AgentState, Event, RunStatus, StatusEvent};
use crate::store::run::Run;
use crate::store::seam::{RunStore, StoreError};
use crate::util::lock;
use redis::Value;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// How long a lease lasts unless renewed; renewed every [`TICK`].
pub(crate) const LEASE_TTL: Duration = Duration::from_secs(3);
const TICK: Duration = Duration::from_secs(1);
/// A subscriber on another instance is known to the owner within two ticks (its
/// instance says so at its next tick, the owner reads it at its own), plus a margin
/// for the round trips.
pub(crate) const WATCH_REPORT_LAG: Duration = Duration::from_millis(2500);
/// A lease found missing on this many checks in a row means its holder is gone. One
/// miss could be a run its owner has just finished; and after Redis itself was away,
/// every lease may have lapsed at once while the owners are alive: they renew on
/// their first tick back, so a check that failed starts the count again.
const MISSES_TO_TAKE_OVER: u32 = 3;
pub(crate) const STOPPED_MESSAGE: &str = "the instance running it stopped";
pub(crate) const UNREACHABLE_MESSAGE: &str = "the run store is unreachable";
const TAKEN_OVER_MESSAGE: &str = "another instance ended this run while it could not be reached";

pub(crate) async fn run(shared: Arc<Shared>) {
    let mut misses: HashMap<String, u32> = HashMap::new();
    // Paused runs nobody holds, since when this process knows it (see `adopt`).
    let mut orphans: HashMap<String, Instant> = HashMap::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if shared
            .writer
            .failing_for()
            .is_some_and(|d| d >= shared.outage_bound)
        {
            for id in shared.local.running_ids() {
                if let Some(run) = shared.local.get_run(&id) {
                    shared.fail_local(&run, UNREACHABLE_MESSAGE);
                }
            }
        }
        let checked = renew_and_check(&shared, &mut misses, &mut orphans).await;
        if checked.is_ok() {
            shared.writer.note_reachable();
        }
        if let Err(e) = checked {
            shared.writer.note_unreachable();
            misses.clear();
            crate::log_debug!("run store: lease check failed: {}", e.0);
        }
    }
}

async fn renew_and_check(
    shared: &Shared,
    misses: &mut HashMap<String, u32>,
    orphans: &mut HashMap<String, Instant>,
) -> Result<(), StoreError> {
    let mut owned = shared.local.running_ids();
    if shared.local.is_shutting_down() {
        // Paused runs are let go on shutdown (see `adopt`): their leases lapse.
        owned.retain(|id| {
            !shared
                .local
                .get_run(id)
                .is_some_and(|r| r.is_awaiting_review())
        });
    }
    let copies: Vec<Arc<Run>> = lock(&shared.copies)
        .values()
        .filter(|r| !r.is_finished())
        .cloned()
        .collect();
    if owned.is_empty() && copies.is_empty() {
        misses.clear();
        return Ok(());
    }
    let ttl_ms = LEASE_TTL.as_millis() as u64;
    let mut pipe = redis::pipe();
    for id in &owned {
        pipe.cmd("SET")
            .arg(keys::lease(id))
            .arg(&shared.instance)
            .arg("PX")
            .arg(ttl_ms)
            .ignore()
            .exists(keys::watched(id))
            .hget(keys::meta(id), keys::F_STATUS);
    }
    for run in &copies {
        if run.subscriber_count() > 0 {
            pipe.cmd("SET")
                .arg(keys::watched(&run.id))
                .arg(&shared.instance)
                .arg("PX")
                .arg(ttl_ms)
                .ignore();
        }
        pipe.exists(keys::lease(&run.id));
    }
    let answers: Vec<Value> = shared.pipeline(&pipe).await?;
    let mut answers = answers.into_iter();
    let mut watched = HashSet::new();
    for id in &owned {
        let elsewhere = answers.next().and_then(as_bool).unwrap_or(false);
        let status: Option<String> = answers.next().and_then(|v| redis::from_redis_value(v).ok());
        if elsewhere {
            watched.insert(id.clone());
        }
        let Some(status) = status else {
            // The store lost the run (Redis came back without its data): put it back.
            if let Some(run) = shared.local.get_run(id) {
                crate::log_warn!("run {id}: the store lost it; writing it again");
                shared.writer.reseed(Reseed {
                    run,
                    owner: shared.instance.clone(),
                });
            }
            continue;
        };
        if parse_status(&status) != RunStatus::Running {
            // The stream already ends the run (another instance found the lease
            // lapsed while this one was cut off): stop spending on a pipeline whose
            // further events nobody elsewhere will read.
            if let Some(run) = shared.local.get_run(id) {
                crate::log_warn!("run {id}: {TAKEN_OVER_MESSAGE}");
                run.cancel(TAKEN_OVER_MESSAGE);
            }
        }
    }
    shared.local.set_watched_elsewhere(watched);
    let mut still_missing = HashMap::new();
    let mut still_orphaned = HashMap::new();
    for run in &copies {
        if answers.next().and_then(as_bool).unwrap_or(true) {
            continue;
        }
        // A run paused for review outlives the instance that paused it: it waits for
        // an approval (which adopts it) or its review timeout, counted from when this
        // process saw it orphaned (so never early).
        if let Some(review) = run.config.review.filter(|_| run.is_awaiting_review()) {
            let since = orphans.get(&run.id).copied().unwrap_or_else(Instant::now);
            if since.elapsed() >= review.timeout {
                end_unreviewed(shared, run, review.timeout).await?;
            } else {
                still_orphaned.insert(run.id.clone(), since);
            }
            continue;
        }
        let n = misses.get(&run.id).copied().unwrap_or(0) + 1;
        if n >= MISSES_TO_TAKE_OVER {
            take_over(shared, run).await?;
        } else {
            still_missing.insert(run.id.clone(), n);
        }
    }
    *misses = still_missing;
    *orphans = still_orphaned;
    Ok(())
}

/// Ends a paused run nobody holds whose review went unanswered: a run-level
/// `status` saying so and `done` `cancelled`, written like [`take_over`]'s ending.
async fn end_unreviewed(shared: &Shared, run: &Run, timeout: Duration) -> Result<(), StoreError> {
    let detail = format!(
        "run cancelled: the plan was not reviewed within {} s (MESH_REVIEW_TIMEOUT_SECS)",
        timeout.as_secs()
    );
    let [_, done] = run.failed_ending(ErrorKind::Cancelled, &detail);
    let done = match done {
        Event::Done(mut d) => {
            d.status = RunStatus::Cancelled;
            Event::Done(d)
        }
        other => other,
    };
    let status = Event::Status(StatusEvent {
        agent: None,
        state: AgentState::Failed,
        detail,
    });
    if write_ending(shared, run, [status, done], RunStatus::Cancelled).await? {
        crate::log_info!(
            "run {}: ended cancelled (its review went unanswered)",
            run.id
        );
    }
    Ok(())
}

fn as_bool(v: Value) -> Option<bool> {
    redis::from_redis_value(v).ok()
}

/// Ends a run whose instance is gone: `error` then `done` `failed`, written at the
/// entry ids right after the last event this copy has. If another instance (or a
/// late write of the owner) took that id first, nothing is written: the copy
/// catches up and is checked again.
async fn take_over(shared: &Shared, run: &Run) -> Result<(), StoreError> {
    let ending = run.failed_ending(ErrorKind::Network, STOPPED_MESSAGE);
    if write_ending(shared, run, ending, RunStatus::Failed).await? {
        crate::log_info!("run {}: ended failed ({STOPPED_MESSAGE})", run.id);
    }
    Ok(())
}

/// Writes the two events that end a run on its behalf at the entry ids right after
/// the last event this copy has, with the run's final `status`, through the ending
/// script; false when another writer took those ids first (nothing written).
async fn write_ending(
    shared: &Shared,
    run: &Run,
    [first, done]: [Event; 2],
    status: RunStatus,
) -> Result<bool, StoreError> {
    let last = run.last_event_id();
    let (first_data, done_data) = (first.data_json(), done.data_json());
    let entries = [
        finish::Entry {
            seq: last + 1,
            name: first.name(),
            data: &first_data,
        },
        finish::Entry {
            seq: last + 2,
            name: done.name(),
            data: &done_data,
        },
    ];
    let ttl = shared.limits.run_ttl.as_secs().max(1) as i64;
    let cmd = finish::command(&run.id, &entries, status, unix_ms(SystemTime::now()), ttl);
    let wrote: i64 = shared.command(&cmd).await?;
    Ok(wrote != 0)
}
