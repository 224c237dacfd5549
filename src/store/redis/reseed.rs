//! Runs the store lost while their pipeline still runs here: a Redis that restarted
//! without its data (no persistence, as on free managed tiers) comes back empty, and
//! the events already written are gone there, though not from this process's log.
//! The owner notices the missing metadata at its next lease renewal and has the
//! writer put the run back whole: metadata, list entry, and every event so far at
//! its own entry id, so copies elsewhere resume from where they were and a client's
//! `Last-Event-ID` still holds. Finished runs of other instances cannot be brought
//! back: nobody keeps them.

use super::{finish, keys, writer::unix_ms};
use crate::events::RunStatus;
use crate::store::Run;
use std::sync::Arc;
use std::time::SystemTime;

/// A run to rewrite, and the instance that owns it.
pub(crate) struct Reseed {
    pub run: Arc<Run>,
    pub owner: String,
}

/// The metadata written when a run is created (and when it is rewritten).
pub(crate) fn meta_fields(run: &Run, owner: &str) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        (keys::F_TASK, run.task.clone()),
        (keys::F_CREATED_MS, unix_ms(run.created_at).to_string()),
        (keys::F_CONFIG, run.config.to_stored_json()),
        (keys::F_STATUS, RunStatus::Running.as_str().to_string()),
        (keys::F_OWNER, owner.to_string()),
    ];
    // The run list shows it without reading the whole config.
    if let Some(parent) = &run.config.conversation.parent {
        fields.push((keys::F_PARENT, parent.clone()));
    }
    fields
}

/// Adds the commands that rewrite the run to `pipe`; returns the last event number
/// they carry (every queued event up to it is covered).
pub(crate) fn add_to(pipe: &mut redis::Pipeline, r: &Reseed, ttl_secs: i64) -> u64 {
    let run = &r.run;
    let events = run.wire_events();
    let finished = run.is_finished().then(|| run.status());
    let events_key = keys::events(&run.id);
    pipe.del(&events_key)
        .hset_multiple(keys::meta(&run.id), &meta_fields(run, &r.owner))
        .zadd(keys::RUNS, &run.id, unix_ms(run.created_at));
    let last = events.last().map(|(seq, _, _)| *seq).unwrap_or(0);
    for (seq, name, data) in &events {
        match finished {
            // A run that finished meanwhile ends through the script, as always.
            Some(status) if *seq == last => {
                pipe.add_command(finish::command(
                    &run.id,
                    &[finish::Entry {
                        seq: *seq,
                        name,
                        data,
                    }],
                    status,
                    unix_ms(SystemTime::now()),
                    ttl_secs,
                ));
            }
            _ => {
                pipe.cmd("XADD")
                    .arg(&events_key)
                    .arg(keys::entry_id(*seq))
                    .arg(keys::F_EVENT)
                    .arg(name)
                    .arg(keys::F_DATA)
                    .arg(data);
            }
        }
    }
    last
}
