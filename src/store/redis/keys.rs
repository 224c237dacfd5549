//! The Redis keys and fields of the shared run store, in one place. Every key starts
//! with `mesh:` so the store can share a database with other data.

/// The sorted set of every retained run id, scored by creation time (unix ms).
pub const RUNS: &str = "mesh:runs";

/// A run's metadata hash: the fields below.
pub fn meta(id: &str) -> String {
    format!("mesh:run:{id}")
}

/// A run's event log: one stream entry per event, entry id `0-<seq>`, so the SSE
/// `Last-Event-ID` is the stream position on every instance.
pub fn events(id: &str) -> String {
    format!("mesh:run:{id}:events")
}

/// Held (with a short TTL, renewed) by the instance running the pipeline.
pub fn lease(id: &str) -> String {
    format!("mesh:run:{id}:lease")
}

/// Set (with a short TTL, renewed) while another instance has stream subscribers,
/// so the owner does not cancel the run for want of local ones.
pub fn watched(id: &str) -> String {
    format!("mesh:run:{id}:watched")
}

/// One instance's control stream: cancel requests and plan approvals for its runs, and wake-ups of its
/// blocking reader when it starts following another run.
pub fn control(instance: &str) -> String {
    format!("mesh:instance:{instance}:control")
}

/// The stream entry id of event `seq`.
pub fn entry_id(seq: u64) -> String {
    format!("0-{seq}")
}

/// The event seq of a stream entry id written by [`entry_id`].
pub fn seq_of(entry_id: &str) -> Option<u64> {
    entry_id.strip_prefix("0-")?.parse().ok()
}

// Fields of an event entry.
pub const F_EVENT: &str = "e";
pub const F_DATA: &str = "d";
/// On a run's last entry: when it finished (unix ms), so every instance's copy
/// says the same time as the run list does.
pub const F_FINISHED: &str = "f";

// Fields of the metadata hash.
pub const F_TASK: &str = "task";
pub const F_CREATED_MS: &str = "created_ms";
pub const F_CONFIG: &str = "config";
pub const F_STATUS: &str = "status";
pub const F_FINISHED_MS: &str = "finished_ms";
pub const F_OWNER: &str = "owner";
/// The run a follow-up continues (absent for a first question).
pub const F_PARENT: &str = "parent";

// Fields of a control entry.
pub const F_KIND: &str = "kind";
pub const F_RUN: &str = "run";
pub const F_REASON: &str = "reason";
pub const KIND_CANCEL: &str = "cancel";
pub const KIND_WAKE: &str = "wake";
/// A reviewer approved the plan of a run paused for review: the plan is in [`F_PLAN`].
pub const KIND_APPROVE: &str = "approve";
/// The approved plan of a [`KIND_APPROVE`] entry (a `plan` event's JSON).
pub const F_PLAN: &str = "plan";

/// A time as the store writes it: unix milliseconds.
pub(crate) fn unix_ms(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_ids_are_event_numbers() {
        assert_eq!(entry_id(42), "0-42");
        assert_eq!(seq_of("0-42"), Some(42));
        assert_eq!(seq_of("1700000000000-0"), None);
        assert_eq!(seq_of("0-x"), None);
    }
}
