//! Ending a run in the store, atomically: the last entries (`done`, or `error` then
//! `done` when another instance ends a run whose owner is gone), the status in the
//! metadata, the expiry, and a fence, in one script. Each entry uses the exact next
//! event id, so of two instances that try to end a run only the first writes
//! anything: the other's entry id is taken, and the script stops before touching the
//! metadata. The fence (`XSETID` to the largest id) then refuses every later entry,
//! so a cut-off owner that comes back cannot append to a run someone else ended, nor
//! can a late takeover append to one its owner ended.

use super::keys;
use crate::model::events::RunStatus;

/// `KEYS`: events, meta, lease. `ARGV`: ttl seconds, finished unix ms, status, then
/// (entry id, event name, data) for each entry; the last entry also carries the
/// finished time, for the copies other instances fold from the stream. Answers 1
/// when it wrote, 0 when an entry id was taken, and any other refusal as the error
/// it is.
const SCRIPT: &str = r#"
local TAKEN = 'equal or smaller than the target stream top item'
for i = 4, #ARGV, 3 do
  local added
  if i + 2 == #ARGV then
    added = redis.pcall('XADD', KEYS[1], ARGV[i], 'e', ARGV[i + 1], 'd', ARGV[i + 2], 'f', ARGV[2])
  else
    added = redis.pcall('XADD', KEYS[1], ARGV[i], 'e', ARGV[i + 1], 'd', ARGV[i + 2])
  end
  if type(added) == 'table' and added.err then
    if string.find(added.err, TAKEN, 1, true) then
      return 0
    end
    return added
  end
end
-- A server without XSETID still ends the run, unfenced.
redis.pcall('XSETID', KEYS[1], '0-18446744073709551615')
redis.call('HSET', KEYS[2], 'status', ARGV[3], 'finished_ms', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[3])
return 1
"#;

/// What Redis says of an `XADD` whose entry id is taken (by the same entry written
/// before, by another writer, or by the fence).
const TAKEN: &str = "equal or smaller than the target stream top item";

/// Whether a refused command was an entry whose id is already taken.
pub(crate) fn id_taken(e: &redis::ServerError) -> bool {
    e.details().is_some_and(|d| d.contains(TAKEN))
}

/// One entry to write: the event's number, name and data.
pub(crate) struct Entry<'a> {
    pub seq: u64,
    pub name: &'a str,
    pub data: &'a str,
}

/// The command that ends run `id` with `entries` (the first one at the next event id).
pub(crate) fn command(
    id: &str,
    entries: &[Entry<'_>],
    status: RunStatus,
    finished_ms: u64,
    ttl_secs: i64,
) -> redis::Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(SCRIPT)
        .arg(3)
        .arg(keys::events(id))
        .arg(keys::meta(id))
        .arg(keys::lease(id))
        .arg(ttl_secs)
        .arg(finished_ms)
        .arg(status.as_str());
    for e in entries {
        cmd.arg(keys::entry_id(e.seq)).arg(e.name).arg(e.data);
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_writes_the_fields_the_rest_of_the_store_reads() {
        for (field, quoted) in [
            (keys::F_EVENT, "'e'"),
            (keys::F_DATA, "'d'"),
            (keys::F_FINISHED, "'f'"),
            (keys::F_STATUS, "'status'"),
            (keys::F_FINISHED_MS, "'finished_ms'"),
        ] {
            assert_eq!(format!("'{field}'"), quoted);
            assert!(SCRIPT.contains(quoted), "{field}");
        }
        assert!(SCRIPT.contains(&format!("local TAKEN = '{TAKEN}'")));
    }
}
