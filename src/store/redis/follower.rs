//! Copies of runs that other instances execute: built from the run's stream
//! (`HGETALL` of its metadata, `XRANGE` of its events), then kept current by one
//! task per process that blocks in `XREAD` on a dedicated connection over every
//! running copy's stream and this instance's control stream. Subscribers read the
//! copy, so any number of them costs the store nothing more: the fan-out happens here.

use super::{keys, parse_status, time_of_ms, Shared};
use crate::model::error_kind::ErrorKind;
use crate::model::events::PlanEvent;
use crate::model::run_config::RunConfig;
use crate::store::run::Run;
use crate::store::seam::{RunStore, StoreError};
use crate::util::lock;
use redis::streams::{StreamId, StreamRangeReply, StreamReadReply};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// How long one `XREAD` waits: a new copy wakes it earlier (a control entry).
const BLOCK: Duration = Duration::from_secs(5);
/// At most this many entries per stream per read, so one busy run cannot starve the rest.
const READ_COUNT: usize = 512;

/// Builds this process's copy of run `id` from the store; `None` if there is none.
pub(crate) async fn load_copy(shared: &Shared, id: &str) -> Result<Option<Arc<Run>>, StoreError> {
    let meta: HashMap<String, String> = shared
        .command(redis::cmd("HGETALL").arg(keys::meta(id)))
        .await?;
    let (Some(task), Some(config)) = (meta.get(keys::F_TASK), meta.get(keys::F_CONFIG)) else {
        return Ok(None);
    };
    let config = RunConfig::from_stored_json(config).map_err(StoreError)?;
    let created_ms = meta
        .get(keys::F_CREATED_MS)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let run = Arc::new(Run::restore(
        id.to_string(),
        task.clone(),
        config,
        time_of_ms(created_ms),
        shared.copy_owner(),
    ));
    let entries: StreamRangeReply = shared
        .command(redis::cmd("XRANGE").arg(keys::events(id)).arg("-").arg("+"))
        .await?;
    apply_entries(&run, &entries.ids);
    if let Some(ms) = meta
        .get(keys::F_FINISHED_MS)
        .and_then(|v| v.parse::<u64>().ok())
    {
        run.set_finished_at(time_of_ms(ms));
    }
    let status = meta.get(keys::F_STATUS).map(|s| parse_status(s));
    // Two requests may build a copy at once: the first one kept wins.
    let (run, is_new) = {
        let mut copies = lock(&shared.copies);
        match copies.get(id) {
            Some(existing) => (existing.clone(), false),
            None => {
                copies.insert(id.to_string(), run.clone());
                (run, true)
            }
        }
    };
    if is_new && !run.is_finished() && status.is_some() {
        // The reader is blocked on the streams it knew: wake it to add this one.
        let _ = shared
            .send_control(&shared.instance, &[(keys::F_KIND, keys::KIND_WAKE)])
            .await;
    }
    Ok(Some(run))
}

/// Appends the entries that continue the copy's log, in order; returns whether the
/// copy moved on (false when the first entry does not continue it).
fn apply_entries(run: &Run, entries: &[StreamId]) -> bool {
    let before = run.last_event_id();
    for entry in entries {
        let Some(seq) = keys::seq_of(&entry.id) else {
            continue;
        };
        let (Some(name), Some(data)) = (text(entry, keys::F_EVENT), text(entry, keys::F_DATA))
        else {
            continue;
        };
        if run.push_stored(seq, &name, &data) {
            // The ending's own time, not when this instance read it.
            if let Some(ms) = text(entry, keys::F_FINISHED).and_then(|v| v.parse().ok()) {
                run.set_finished_at(time_of_ms(ms));
            }
        }
    }
    run.last_event_id() > before
}

/// A copy whose stream goes on past an entry it cannot apply (one missing, as after
/// a failover to a replica that lagged, or one this version cannot read): every read
/// would answer at once with the same entries, and nothing after them can be shown.
/// The copy is ended here, `failed`, with the reason, so its clients are not left
/// waiting, and dropped, so a later request builds it afresh from the stream.
fn end_stuck_copy(shared: &Shared, run: &Run) {
    let next = run.last_event_id() + 1;
    crate::log_warn!(
        "run {}: stored event {next} is missing or cannot be read; ending this instance's copy",
        run.id
    );
    let message = format!("this instance cannot read the run's stored event {next}");
    for event in run.failed_ending(ErrorKind::BadResponse, &message) {
        run.push(event);
    }
    lock(&shared.copies).remove(&run.id);
}

fn text(entry: &StreamId, field: &str) -> Option<String> {
    entry
        .map
        .get(field)
        .and_then(|v| redis::from_redis_value::<String>(v.clone()).ok())
}

/// Follows every running copy and this instance's control stream until the process ends.
pub(crate) async fn run(shared: Arc<Shared>) {
    let control = keys::control(&shared.instance);
    // The control stream is this process's own (its id is new each start): read it all.
    let mut control_last = "0-0".to_string();
    let mut conn = None;
    let mut backoff = Duration::from_millis(100);
    loop {
        let c = match &mut conn {
            Some(c) => c,
            None => match shared.connector.dedicated(BLOCK).await {
                Ok(c) => {
                    backoff = Duration::from_millis(100);
                    conn.insert(c)
                }
                Err(_) => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    continue;
                }
            },
        };
        // Keyed by stream name, so each stream of the answer finds its copy at once
        // (a scan formatting every copy's key per stream was quadratic in copies).
        let followed: HashMap<String, Arc<Run>> = lock(&shared.copies)
            .values()
            .filter(|r| !r.is_finished())
            .map(|r| (keys::events(&r.id), r.clone()))
            .collect();
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT")
            .arg(READ_COUNT)
            .arg("BLOCK")
            .arg(BLOCK.as_millis() as u64)
            .arg("STREAMS")
            .arg(&control);
        // Keys first, then the ids in the same order (one iteration order of the map).
        for key in followed.keys() {
            cmd.arg(key);
        }
        cmd.arg(&control_last);
        for run in followed.values() {
            cmd.arg(keys::entry_id(run.last_event_id()));
        }
        let reply: Option<StreamReadReply> = match cmd.query_async(c).await {
            Ok(r) => r,
            Err(e) => {
                crate::log_debug!(
                    "run store: follower read failed: {}",
                    shared.connector.error(&e).0
                );
                conn = None;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        let Some(reply) = reply else { continue };
        for stream in reply.keys {
            if stream.key == control {
                if let Some(last) = stream.ids.last() {
                    control_last = last.id.clone();
                }
                for entry in &stream.ids {
                    handle_control(&shared, entry);
                }
            } else if let Some(run) = followed.get(&stream.key) {
                if !apply_entries(run, &stream.ids) && !stream.ids.is_empty() && !run.is_finished()
                {
                    end_stuck_copy(&shared, run);
                }
            }
        }
    }
}

fn handle_control(shared: &Shared, entry: &StreamId) {
    let kind = text(entry, keys::F_KIND);
    let Some(id) = text(entry, keys::F_RUN) else {
        return;
    };
    let Some(run) = shared.local.get_run(&id) else {
        return;
    };
    match kind.as_deref() {
        Some(keys::KIND_CANCEL) => {
            let reason = text(entry, keys::F_REASON).unwrap_or_else(|| "cancelled".to_string());
            run.cancel(&reason);
        }
        // Validated by the instance that took the approval, against the same plan.
        Some(keys::KIND_APPROVE) => {
            let plan =
                text(entry, keys::F_PLAN).and_then(|p| serde_json::from_str::<PlanEvent>(&p).ok());
            // A process shutting down lets its paused runs go (see `adopt`).
            if shared.local.is_shutting_down() || !plan.is_some_and(|plan| run.approve(plan)) {
                crate::log_warn!(
                    "run {id}: a plan approval from another instance was not used \
                     (not awaiting review, or unreadable)"
                );
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::events::{Event, RunStatus};
    use crate::store::run::test_support::{config, done, start};
    use crate::store::run::RunOwner;
    use redis::Value;
    use std::sync::Weak;
    use std::time::{Duration, SystemTime};

    struct NoOwner;
    impl RunOwner for NoOwner {
        fn run_finished(&self, _: &str) {}
        fn disconnect_grace(&self) -> Duration {
            Duration::from_secs(1)
        }
    }

    fn entry(seq: u64, event: &Event, finished_ms: Option<u64>) -> StreamId {
        let mut map = HashMap::new();
        map.insert(
            keys::F_EVENT.to_string(),
            Value::BulkString(event.name().into()),
        );
        map.insert(
            keys::F_DATA.to_string(),
            Value::BulkString(event.data_json().into()),
        );
        if let Some(ms) = finished_ms {
            map.insert(
                keys::F_FINISHED.to_string(),
                Value::BulkString(ms.to_string().into()),
            );
        }
        StreamId {
            id: keys::entry_id(seq),
            map,
            ..StreamId::default()
        }
    }

    /// A copy reads the ending seconds after it was written (or builds itself from
    /// the stream long after): its finish time is the one the owner recorded, the
    /// same the run list shows, not when this instance happened to read it.
    #[test]
    fn a_copy_takes_the_finish_time_written_with_the_last_entry() {
        let run = Run::new(
            "r1".into(),
            "task".into(),
            config(true),
            Weak::<NoOwner>::new(),
        );
        let finished_ms = 1_700_000_000_123;
        let entries = [
            entry(1, &start("writer"), None),
            entry(2, &done(RunStatus::Completed, "text"), Some(finished_ms)),
        ];
        assert!(apply_entries(&run, &entries));
        assert!(run.is_finished());
        assert_eq!(run.finished_at(), Some(time_of_ms(finished_ms)));
        assert!(run.finished_at().unwrap() < SystemTime::now() - Duration::from_secs(60));
    }
}
