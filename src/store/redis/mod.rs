//! The run store on Redis Streams (`MESH_REDIS_URL`): runs that survive restarts and
//! are shared by several instances.
//!
//! The instance that starts a run executes its pipeline and keeps the run in its
//! local [`MemoryStore`] as the memory store does (its subscribers read the local
//! log); the events also go to the run's stream, batched ([`writer`]). Any other
//! instance asked for the run builds a local copy from the stream and keeps it
//! current with one blocking reader for all the runs it follows ([`follower`]). The
//! running instance holds a lease on each of its runs; when a lease lapses, another
//! instance ends the run `failed` ([`lease`]). Keys are in [`keys`].

pub mod adopt;
pub mod conn;
pub mod finish;
pub mod follower;
pub mod keys;
pub mod lease;
pub mod reseed;
pub mod url;
pub mod writer;

pub use url::RedisUrl;

use super::memory::MemoryStore;
use super::run::{Run, RunHandle, RunOwner, RunSummary};
use super::seam::{
    spawn_detached, Approval, BoxFuture, CancelOutcome, CreateError, Created, RunStore, StoreError,
    StoreHealth, StoreLimits, MAX_RETAINED_RUNS,
};
use crate::model::events::{DoneEvent, Event, PlanEvent, RunStatus};
use crate::model::run_config::RunConfig;
use crate::model::run_context::EventSink;
use crate::util::{cut_chars, lock};
use conn::Connector;
use keys::unix_ms;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use writer::{RedisSink, Writer};

/// A finished copy of another instance's run is dropped from memory after this long;
/// the stream still has it.
const FINISHED_COPY_KEPT: Duration = Duration::from_secs(60);
/// Control streams of instances are short and expire when nobody writes to them.
const CONTROL_MAXLEN: usize = 256;
const CONTROL_TTL_SECS: i64 = 3600;
/// Events are written on shutdown for at most this long after the last pipeline ends.
const SHUTDOWN_FLUSH_BOUND: Duration = Duration::from_secs(5);

pub struct RedisStore {
    shared: Arc<Shared>,
}

/// What the store's tasks share.
pub(crate) struct Shared {
    pub connector: Arc<Connector>,
    /// This process's id among the instances (random, per start).
    pub instance: String,
    /// The runs this process executes.
    pub local: Arc<MemoryStore>,
    pub writer: Arc<Writer>,
    /// This process's copies of runs other instances execute (or executed).
    pub copies: Mutex<HashMap<String, Arc<Run>>>,
    pub limits: StoreLimits,
    /// A pipeline whose events cannot be written for this long ends `failed`
    /// (`MESH_REDIS_OUTAGE_SECS`).
    pub outage_bound: Duration,
    me: Weak<Shared>,
}

impl RedisStore {
    /// Opens the client and starts the store's tasks (call inside the runtime). No
    /// connection is made yet: see [`probe`] for the startup check.
    pub fn start(
        url: &RedisUrl,
        ca_file: Option<&Path>,
        limits: StoreLimits,
        outage_bound: Duration,
    ) -> Result<Arc<RedisStore>, String> {
        let connector = Arc::new(Connector::new(url, ca_file)?);
        let shared = Arc::new_cyclic(|me| Shared {
            connector: connector.clone(),
            instance: crate::ids::new_run_id(),
            local: MemoryStore::watched_from_elsewhere(limits, lease::WATCH_REPORT_LAG),
            writer: Writer::new(limits.run_ttl),
            copies: Mutex::new(HashMap::new()),
            limits,
            outage_bound,
            me: me.clone(),
        });
        tokio::spawn(shared.writer.clone().run(connector));
        tokio::spawn(follower::run(shared.clone()));
        tokio::spawn(lease::run(shared.clone()));
        Ok(Arc::new(RedisStore { shared }))
    }
}

/// Connects once and pings: the startup check behind "exit 2 naming MESH_REDIS_URL".
pub async fn probe(url: &RedisUrl, ca_file: Option<&Path>) -> Result<(), String> {
    let connector = Connector::new(url, ca_file)?;
    connector.ping().await.map_err(|e| e.0)
}

impl Shared {
    /// Runs a command on the shared connection; an I/O failure resets it.
    pub(crate) async fn command<T: redis::FromRedisValue>(
        &self,
        cmd: &redis::Cmd,
    ) -> Result<T, StoreError> {
        let mut conn = self.connector.commands().await?;
        cmd.query_async(&mut conn)
            .await
            .map_err(|e| self.failed(&e))
    }

    pub(crate) async fn pipeline<T: redis::FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
    ) -> Result<T, StoreError> {
        let mut conn = self.connector.commands().await?;
        pipe.query_async(&mut conn)
            .await
            .map_err(|e| self.failed(&e))
    }

    fn failed(&self, e: &redis::RedisError) -> StoreError {
        if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() {
            self.connector.reset();
        }
        self.connector.error(e)
    }

    /// Sends a control entry to an instance's control stream.
    pub(crate) async fn send_control(
        &self,
        instance: &str,
        fields: &[(&str, &str)],
    ) -> Result<(), StoreError> {
        let key = keys::control(instance);
        let mut pipe = redis::pipe();
        pipe.cmd("XADD")
            .arg(&key)
            .arg("MAXLEN")
            .arg("~")
            .arg(CONTROL_MAXLEN)
            .arg("*");
        for (k, v) in fields {
            pipe.arg(*k).arg(*v);
        }
        pipe.ignore().expire(&key, CONTROL_TTL_SECS).ignore();
        self.pipeline::<()>(&pipe).await
    }

    /// The run with this id: this process's own, its copy, or a copy built now from
    /// the store (`None` when the store has no such run, or its keys have expired).
    pub(crate) async fn find(&self, id: &str) -> Result<Option<Arc<Run>>, StoreError> {
        if let Some(run) = self.local.get_run(id) {
            return Ok(Some(run));
        }
        let kept = lock(&self.copies).get(id).cloned();
        let copy = match kept {
            Some(run) => Some(run),
            None => follower::load_copy(self, id).await?,
        };
        match copy {
            // A finished run's keys expire `MESH_RUN_TTL_SECS` after it finished; a
            // copy held longer (or built from keys about to expire) goes with them,
            // so every instance answers 404 once the run is evicted.
            Some(run) if self.expired(&run) => {
                lock(&self.copies).remove(id);
                run.close_readers();
                Ok(None)
            }
            other => Ok(other),
        }
    }

    /// Whether a run finished longer than the run TTL ago.
    fn expired(&self, run: &Run) -> bool {
        run.finished_at()
            .is_some_and(|at| at + self.limits.run_ttl <= SystemTime::now())
    }

    /// The owner handed to copies of other instances' runs.
    pub(crate) fn copy_owner(&self) -> Weak<dyn RunOwner> {
        self.me.clone()
    }

    /// Ends a run of this process that cannot reach the store any more: its
    /// pipeline is cancelled, then `error` and `done` `failed` are logged (queued
    /// too, so the store gets them when it is back).
    pub(crate) fn fail_local(&self, run: &Arc<Run>, message: &str) {
        // Cancelled first: once `done` is logged the run is finished and a cancel
        // would be ignored, leaving the pipeline (and its provider call) running.
        run.cancel(message);
        let sink = RedisSink::new(run, self.writer.clone());
        for event in run.failed_ending(crate::model::error_kind::ErrorKind::Network, message) {
            sink.push(event);
        }
    }
}

/// Copies of other instances' runs: they never cancel for want of subscribers here,
/// and once finished they are dropped after a while (the stream keeps the run).
impl RunOwner for Shared {
    fn run_finished(&self, id: &str) {
        let me = self.me.clone();
        let id = id.to_string();
        spawn_detached(async move {
            tokio::time::sleep(FINISHED_COPY_KEPT).await;
            if let Some(shared) = me.upgrade() {
                lock(&shared.copies).remove(&id);
            }
        });
    }

    fn disconnect_grace(&self) -> Duration {
        self.limits.disconnect_grace
    }

    fn runs_pipelines(&self) -> bool {
        false
    }
}

pub(crate) fn time_of_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

impl RunStore for RedisStore {
    fn limits(&self) -> StoreLimits {
        self.shared.limits
    }

    fn create(
        &self,
        task: String,
        config: RunConfig,
    ) -> BoxFuture<'_, Result<Created, CreateError>> {
        Box::pin(async move {
            let shared = &self.shared;
            if shared.writer.failing_for().is_some() {
                return Err(CreateError::Unavailable(
                    lease::UNREACHABLE_MESSAGE.to_string(),
                ));
            }
            let writer = shared.writer.clone();
            let (run, context) = shared.local.create_run_with(task, config, |run| {
                Arc::new(RedisSink::new(run, writer)) as Arc<dyn EventSink>
            })?;
            let created_ms = unix_ms(run.created_at);
            let mut pipe = redis::pipe();
            pipe.atomic()
                .hset_multiple(
                    keys::meta(&run.id),
                    &reseed::meta_fields(&run, &shared.instance),
                )
                .ignore()
                .zadd(keys::RUNS, &run.id, created_ms)
                .ignore()
                .cmd("SET")
                .arg(keys::lease(&run.id))
                .arg(&shared.instance)
                .arg("PX")
                .arg(lease::LEASE_TTL.as_millis() as u64)
                .ignore();
            if let Err(e) = shared.pipeline::<()>(&pipe).await {
                // Nobody has seen the run: end it quietly and forget it.
                run.cancel(lease::UNREACHABLE_MESSAGE);
                run.push(Event::Done(DoneEvent {
                    status: RunStatus::Failed,
                    output: String::new(),
                    usage: None,
                    cost_usd: None,
                    elapsed_ms: 0,
                    trace_id: None,
                    budget: None,
                }));
                shared.local.discard(&run.id);
                crate::log_warn!("run store: cannot create a run: {}", e.0);
                return Err(CreateError::Unavailable(
                    lease::UNREACHABLE_MESSAGE.to_string(),
                ));
            }
            Ok(Created {
                run: RunHandle::new(run),
                context,
            })
        })
    }

    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<RunHandle>, StoreError>> {
        Box::pin(async move { Ok(self.shared.find(id).await?.map(RunHandle::new)) })
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<RunSummary>, StoreError>> {
        Box::pin(async move {
            let shared = &self.shared;
            let ids: Vec<String> = shared
                .command(
                    redis::cmd("ZREVRANGE")
                        .arg(keys::RUNS)
                        .arg(0)
                        .arg(MAX_RETAINED_RUNS - 1),
                )
                .await?;
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let mut pipe = redis::pipe();
            for id in &ids {
                pipe.cmd("HMGET")
                    .arg(keys::meta(id))
                    .arg(keys::F_TASK)
                    .arg(keys::F_STATUS)
                    .arg(keys::F_CREATED_MS)
                    .arg(keys::F_FINISHED_MS)
                    .arg(keys::F_PARENT)
                    .exists(keys::lease(id));
            }
            type Row = (Vec<Option<String>>, bool);
            let rows: Vec<(Vec<Option<String>>, bool)> = {
                let flat: Vec<redis::Value> = shared.pipeline(&pipe).await?;
                let mut rows = Vec::with_capacity(ids.len());
                let mut it = flat.into_iter();
                while let (Some(meta), Some(lease)) = (it.next(), it.next()) {
                    let row: Row = (
                        redis::from_redis_value(meta).unwrap_or_default(),
                        redis::from_redis_value(lease).unwrap_or(false),
                    );
                    rows.push(row);
                }
                rows
            };
            let mut list = Vec::with_capacity(ids.len());
            let mut expired = Vec::new();
            for (id, (fields, leased)) in ids.iter().zip(rows) {
                let field = |i: usize| fields.get(i).cloned().flatten();
                let Some(task) = field(0) else {
                    expired.push(id.clone());
                    continue;
                };
                let mut status = parse_status(&field(1).unwrap_or_default());
                let mut budget = None;
                if let Some(run) = shared.local.get_run(id) {
                    status = run.status();
                    budget = run.summary().budget;
                } else if status == RunStatus::Running && !leased {
                    // Nobody holds the run: following it lets the lease check end it.
                    let me = shared.me.clone();
                    let id = id.clone();
                    spawn_detached(async move {
                        if let Some(shared) = me.upgrade() {
                            let _ = shared.find(&id).await;
                        }
                    });
                }
                let ms = |i: usize| field(i).and_then(|v| v.parse::<u64>().ok());
                list.push(RunSummary {
                    id: id.clone(),
                    task: cut_chars(&task, 200).to_string(),
                    status,
                    created_at: ms(2).map(time_of_ms),
                    finished_at: ms(3).map(time_of_ms),
                    parent: field(4),
                    budget,
                });
            }
            if !expired.is_empty() {
                // Their keys expired: drop them from the list too.
                let _: Result<(), _> = shared
                    .command(redis::cmd("ZREM").arg(keys::RUNS).arg(&expired))
                    .await;
            }
            Ok(list)
        })
    }

    fn cancel<'a>(
        &'a self,
        id: &'a str,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<Option<CancelOutcome>, StoreError>> {
        Box::pin(async move {
            let shared = &self.shared;
            if let Some(run) = shared.local.get_run(id) {
                return Ok(Some(match run.status() {
                    RunStatus::Running => {
                        run.cancel(reason);
                        CancelOutcome::Cancelling
                    }
                    finished => CancelOutcome::Finished(finished),
                }));
            }
            let (status, owner): (Option<String>, Option<String>) = shared
                .command(
                    redis::cmd("HMGET")
                        .arg(keys::meta(id))
                        .arg(keys::F_STATUS)
                        .arg(keys::F_OWNER),
                )
                .await?;
            let Some(status) = status else {
                return Ok(None);
            };
            Ok(Some(match parse_status(&status) {
                RunStatus::Running => {
                    let owner = owner.unwrap_or_default();
                    shared
                        .send_control(
                            &owner,
                            &[
                                (keys::F_KIND, keys::KIND_CANCEL),
                                (keys::F_RUN, id),
                                (keys::F_REASON, reason),
                            ],
                        )
                        .await?;
                    CancelOutcome::Cancelling
                }
                finished => CancelOutcome::Finished(finished),
            }))
        })
    }

    fn approve<'a>(
        &'a self,
        id: &'a str,
        plan: &'a PlanEvent,
    ) -> BoxFuture<'a, Result<Approval, StoreError>> {
        Box::pin(adopt::approve(&self.shared, id, plan))
    }

    fn active_runs(&self) -> usize {
        self.shared.local.active_runs()
    }

    fn counts_by_status(&self) -> [(RunStatus, usize); 4] {
        self.shared.local.counts_by_status()
    }

    fn health(&self) -> StoreHealth {
        StoreHealth {
            unwritten_events: self.shared.writer.unwritten(),
            writes_failing: self.shared.writer.failing_for().is_some(),
        }
    }

    /// Paused runs are left as they are: their pause is in the store, and whichever
    /// instance takes their approval goes on with them (see `adopt`).
    fn begin_shutdown(&self) {
        self.shared.local.stop_accepting();
    }

    fn is_shutting_down(&self) -> bool {
        self.shared.local.is_shutting_down()
    }

    fn wait_idle(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.shared.local.wait_idle().await;
            // The last events of the drained runs must reach the store before exit.
            self.shared.writer.wait_flushed(SHUTDOWN_FLUSH_BOUND).await;
            if self.shared.local.is_shutting_down() {
                // Paused runs stay in the store for whichever instance takes their
                // approval: let go of them now rather than when their leases lapse.
                adopt::release_paused(&self.shared).await;
            }
        })
    }

    fn cancel_all(&self, reason: &str) {
        for id in self.shared.local.running_ids() {
            if let Some(run) = self.shared.local.get_run(&id) {
                if !run.is_awaiting_review() {
                    run.cancel(reason);
                }
            }
        }
    }
}

pub(crate) fn parse_status(s: &str) -> RunStatus {
    match s {
        "completed" => RunStatus::Completed,
        "cancelled" => RunStatus::Cancelled,
        "failed" => RunStatus::Failed,
        _ => RunStatus::Running,
    }
}
