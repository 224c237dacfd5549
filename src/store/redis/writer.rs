//! The write path of the instance running a pipeline: its events go to the local
//! run first (subscribers here read them at memory speed), and are queued for Redis;
//! one task flushes the queue as a single pipelined batch of `XADD`s per wake-up, so
//! a burst of tokens costs one round trip, not one each. While Redis is unreachable
//! the queue keeps everything, and the batch is sent again once it is back: an entry
//! that did arrive the first time is refused as a duplicate id, so nothing is
//! stored twice.

use super::conn::Connector;
use super::keys::unix_ms;
use super::reseed::{self, Reseed};
use super::{finish, keys};
use crate::model::events::{Event, RunStatus};
use crate::model::run_context::EventSink;
use crate::store::run::log::token_data_json;
use crate::store::run::Run;
use crate::store::seam::StoreError;
use crate::util::lock;
use redis::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{watch, Notify};

/// One event waiting to be written.
struct Pending {
    run: Arc<str>,
    seq: u64,
    name: &'static str,
    data: String,
    /// Set on `done` (with when the run finished here): the run's metadata and
    /// expiry are written with it, so every instance shows the same end time.
    finished: Option<(RunStatus, SystemTime)>,
}

/// Appends entries to one run's stream: `KEYS[1]` the stream, `ARGV` (entry id,
/// event name, data) for each. An entry whose id is taken (written by an earlier,
/// interrupted attempt, or fenced) is skipped; any other refusal stops the script
/// and is its answer.
const APPEND_SCRIPT: &str = r#"
for i = 1, #ARGV, 3 do
  local added = redis.pcall('XADD', KEYS[1], ARGV[i], 'e', ARGV[i + 1], 'd', ARGV[i + 2])
  if type(added) == 'table' and added.err
      and not string.find(added.err, 'equal or smaller than the target stream top item', 1, true) then
    return added
  end
end
return 0
"#;

/// Events per pipelined write at most (a few hundred KB of commands).
const MAX_BATCH: usize = 4096;

pub(crate) struct Writer {
    queue: Mutex<Vec<Pending>>,
    wake: Notify,
    /// Events queued or being written; shutdown waits for zero.
    unflushed_tx: watch::Sender<usize>,
    /// When the oldest unwritten batch first failed (`None` while writes succeed).
    failing_since: Mutex<Option<Instant>>,
    /// Runs to write again whole (the store lost them); taken before each batch.
    reseeds: Mutex<Vec<Reseed>>,
    run_ttl: Duration,
}

impl Writer {
    pub fn new(run_ttl: Duration) -> Arc<Writer> {
        Arc::new(Writer {
            queue: Mutex::new(Vec::new()),
            wake: Notify::new(),
            unflushed_tx: watch::Sender::new(0),
            failing_since: Mutex::new(None),
            reseeds: Mutex::new(Vec::new()),
            run_ttl,
        })
    }

    fn enqueue(&self, p: Pending) {
        lock(&self.queue).push(p);
        self.unflushed_tx.send_modify(|n| *n += 1);
        self.wake.notify_one();
    }

    /// Asks for run `r` to be written again whole, before the next batch.
    pub fn reseed(&self, r: Reseed) {
        let mut reseeds = lock(&self.reseeds);
        if !reseeds.iter().any(|q| q.run.id == r.run.id) {
            reseeds.push(r);
        }
        drop(reseeds);
        self.wake.notify_one();
    }

    /// Events queued or being written now.
    pub fn unwritten(&self) -> usize {
        *self.unflushed_tx.borrow()
    }

    /// Another command to the store failed (a lease renewal): a pipeline with
    /// nothing to write meanwhile is cut off all the same, and the outage bound
    /// counts from here.
    pub fn note_unreachable(&self) {
        lock(&self.failing_since).get_or_insert_with(Instant::now);
    }

    /// Another command was answered: with nothing waiting to be written, the store
    /// is back (with writes waiting, only their success says so).
    pub fn note_reachable(&self) {
        if self.unwritten() == 0 {
            *lock(&self.failing_since) = None;
        }
    }

    /// How long writes have been failing, if they are.
    pub fn failing_for(&self) -> Option<Duration> {
        lock(&self.failing_since).map(|t| t.elapsed())
    }

    /// Resolves once every queued event is written (or `bound` passed).
    pub async fn wait_flushed(&self, bound: Duration) {
        let mut rx = self.unflushed_tx.subscribe();
        let _ = tokio::time::timeout(bound, rx.wait_for(|n| *n == 0)).await;
    }

    /// Writes batches until the process ends.
    pub async fn run(self: Arc<Self>, connector: Arc<Connector>) {
        let mut batch: Vec<Pending> = Vec::new();
        let mut backoff = Duration::from_millis(50);
        loop {
            // Whatever came meanwhile (on a retry too) goes in the batch, in order.
            batch.append(&mut lock(&self.queue));
            let reseeds = std::mem::take(&mut *lock(&self.reseeds));
            if batch.is_empty() && reseeds.is_empty() {
                self.wake.notified().await;
                continue;
            }
            let mut pipe = redis::pipe();
            // Each command's own answer is looked at (`send`): a taken id is no
            // failure, any other refusal is.
            pipe.ignore_errors();
            let ttl = self.run_ttl.as_secs().max(1) as i64;
            // A rewrite goes before the batch; the batch's events it covers are sent
            // all the same and refused as taken, so none is lost if the rewrite
            // finds the run already there and does nothing.
            for r in &reseeds {
                reseed::add_to(&mut pipe, r, ttl);
            }
            // Bounded, so a backlog (after an outage, or a flood faster than Redis)
            // goes in several round trips, each well inside the response timeout.
            let n = batch.len().min(MAX_BATCH);
            self.add_events(&mut pipe, &batch[..n], ttl);
            match self.send(&connector, &pipe).await {
                Ok(()) => {
                    if !reseeds.is_empty() {
                        crate::log_info!("run store: rewrote {} run(s) it had lost", reseeds.len());
                    }
                    batch.drain(..n);
                    self.unflushed_tx.send_modify(|u| *u = u.saturating_sub(n));
                    if batch.is_empty() {
                        *lock(&self.failing_since) = None;
                    }
                    backoff = Duration::from_millis(50);
                }
                Err(why) => {
                    // Snapshotted again on the next attempt, with whatever came since.
                    for r in reseeds {
                        self.reseed(r);
                    }
                    let first = {
                        let mut since = lock(&self.failing_since);
                        let first = since.is_none();
                        since.get_or_insert_with(Instant::now);
                        first
                    };
                    if first {
                        crate::log_warn!("run store: writes are failing, retrying: {}", why.0);
                    }
                    connector.reset();
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// Adds the batch's commands to `pipe`: per run, one script call that appends
    /// its events in order (one command and one reply for many entries, where an
    /// `XADD` each cost this thread a command to encode and a reply to parse per
    /// token), then its `done` through the ending script (status, expiry and fence
    /// go only with the `done` itself).
    fn add_events(&self, pipe: &mut redis::Pipeline, batch: &[Pending], ttl: i64) {
        // Runs in the order they first appear; each run's events keep their order.
        let mut runs: Vec<(&str, Vec<&Pending>)> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        for p in batch {
            let i = *index.entry(&p.run).or_insert_with(|| {
                runs.push((&p.run, Vec::new()));
                runs.len() - 1
            });
            runs[i].1.push(p);
        }
        for (id, events) in runs {
            let (ends, entries): (Vec<&Pending>, Vec<&Pending>) =
                events.into_iter().partition(|p| p.finished.is_some());
            if !entries.is_empty() {
                let mut cmd = redis::cmd("EVAL");
                cmd.arg(APPEND_SCRIPT).arg(1).arg(keys::events(id));
                for p in &entries {
                    cmd.arg(keys::entry_id(p.seq)).arg(p.name).arg(&p.data);
                }
                pipe.add_command(cmd);
            }
            for p in ends {
                let (status, at) = p
                    .finished
                    .unwrap_or((RunStatus::Completed, SystemTime::now()));
                pipe.add_command(finish::command(
                    id,
                    &[finish::Entry {
                        seq: p.seq,
                        name: p.name,
                        data: &p.data,
                    }],
                    status,
                    unix_ms(at),
                    ttl,
                ));
            }
        }
    }

    /// Sends a batch. Entries refused because their id is taken were written before
    /// (an interrupted attempt) or belong to a run another instance ended (the
    /// fence): both are done. Any other refusal (out of memory, a read-only
    /// replica after a failover, a server still loading) fails the whole attempt,
    /// which is retried with everything in it.
    async fn send(&self, connector: &Connector, pipe: &redis::Pipeline) -> Result<(), StoreError> {
        let mut conn = connector.commands().await?;
        let replies = pipe
            .query_async::<Vec<Value>>(&mut conn)
            .await
            .map_err(|e| connector.error(&e))?;
        match replies.iter().find_map(|v| match v {
            Value::ServerError(e) if !finish::id_taken(e) => Some(e),
            _ => None,
        }) {
            Some(e) => Err(StoreError(format!(
                "redis refused a write: {} {}",
                e.code(),
                e.details().unwrap_or_default()
            ))),
            None => Ok(()),
        }
    }
}

/// A pipeline's events: into the local run, then queued for Redis.
pub(crate) struct RedisSink {
    run: Arc<Run>,
    id: Arc<str>,
    writer: Arc<Writer>,
}

impl RedisSink {
    pub fn new(run: &Arc<Run>, writer: Arc<Writer>) -> RedisSink {
        RedisSink {
            run: run.clone(),
            id: Arc::from(run.id.as_str()),
            writer,
        }
    }
}

impl EventSink for RedisSink {
    fn push(&self, event: Event) {
        let name = event.name();
        let finished = match &event {
            Event::Done(d) => Some(d.status),
            _ => None,
        };
        let data = event.stored_json();
        if let Some(seq) = self.run.push(event) {
            let finished = finished.map(|status| {
                (
                    status,
                    self.run.finished_at().unwrap_or_else(SystemTime::now),
                )
            });
            self.writer.enqueue(Pending {
                run: self.id.clone(),
                seq,
                name,
                data,
                finished,
            });
        }
    }

    fn push_token(&self, agent: &str, text: &str) {
        if let Some(seq) = self.run.push_token(agent, text) {
            // The same JSON as the token frame's data (serde escapes both alike).
            let data = token_data_json(agent, text);
            self.writer.enqueue(Pending {
                run: self.id.clone(),
                seq,
                name: "token",
                data,
                finished: None,
            });
        }
    }
}
