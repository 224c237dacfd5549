//! Runs the store lost while their pipeline still runs here: a Redis that restarted
//! without its data (no persistence, as on free managed tiers) comes back empty, and
//! the events already written are gone there, though not from this process's log.
//! The owner notices the missing metadata at its next lease renewal and has the
//! writer put the run back whole: metadata, list entry, and every event so far at
//! its own entry id, so copies elsewhere resume from where they were and a client's
//! `Last-Event-ID` still holds. Finished runs of other instances cannot be brought
//! back: nobody keeps them.

use super::keys::unix_ms;
use super::{finish, keys};
use crate::model::events::RunStatus;
use crate::store::run::Run;
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

/// Rewrites a run, but only if its metadata is still missing: another instance
/// may have ended it (or the owner's own earlier attempt got through) since the
/// loss was seen, and that must not be undone. `KEYS`: events, meta, the run list.
/// `ARGV`: run id, created unix ms, the number of metadata fields, the fields as
/// name/value pairs, then (entry id, event name, data) for each event.
const SCRIPT: &str = r#"
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
redis.call('DEL', KEYS[1])
local n = tonumber(ARGV[3])
for i = 4, 3 + 2 * n, 2 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
end
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
for i = 4 + 2 * n, #ARGV, 3 do
  redis.call('XADD', KEYS[1], ARGV[i], 'e', ARGV[i + 1], 'd', ARGV[i + 2])
end
return 1
"#;

/// Adds the commands that rewrite the run to `pipe`: the script with every event
/// so far, and for a run that finished meanwhile its `done` through the ending
/// script, as always.
pub(crate) fn add_to(pipe: &mut redis::Pipeline, r: &Reseed, ttl_secs: i64) {
    let run = &r.run;
    let mut events = run.wire_events();
    let finished = run.is_finished().then(|| run.status());
    let done = match finished {
        Some(_) => events.pop(),
        None => None,
    };
    let fields = meta_fields(run, &r.owner);
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(SCRIPT)
        .arg(3)
        .arg(keys::events(&run.id))
        .arg(keys::meta(&run.id))
        .arg(keys::RUNS)
        .arg(&run.id)
        .arg(unix_ms(run.created_at))
        .arg(fields.len());
    for (name, value) in &fields {
        cmd.arg(*name).arg(value);
    }
    for (seq, name, data) in &events {
        cmd.arg(keys::entry_id(*seq)).arg(name).arg(data);
    }
    pipe.add_command(cmd);
    if let (Some(status), Some((seq, name, data))) = (finished, done) {
        pipe.add_command(finish::command(
            &run.id,
            &[finish::Entry {
                seq,
                name,
                data: &data,
            }],
            status,
            unix_ms(run.finished_at().unwrap_or_else(SystemTime::now)),
            ttl_secs,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_writes_the_fields_the_rest_of_the_store_reads() {
        assert_eq!((keys::F_EVENT, keys::F_DATA), ("e", "d"));
        assert!(SCRIPT.contains("'e', ARGV[i + 1], 'd', ARGV[i + 2]"));
    }
}
