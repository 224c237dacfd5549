//! The in-memory run store (the default): every run lives in this process, is
//! evicted `MESH_RUN_TTL_SECS` after it finishes, and at most 1,000 are retained
//! (oldest finished first).

use super::run::{Run, RunHandle, RunOwner, RunSummary};
use super::seam::{
    spawn_detached, Approval, BoxFuture, CancelOutcome, CreateError, Created, RunStore, StoreError,
    StoreLimits, MAX_RETAINED_RUNS,
};
use crate::model::events::{PlanEvent, RunStatus};
use crate::model::run_config::RunConfig;
use crate::model::run_context::{EventSink, RunContext};
use crate::util::lock;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::watch;

pub struct MemoryStore {
    inner: Mutex<Inner>,
    limits: StoreLimits,
    /// The number of running pipelines; shutdown waits on it.
    active_tx: watch::Sender<usize>,
    /// This store itself, handed to its runs so they can report their end.
    me: Weak<MemoryStore>,
    /// Running runs that another instance streams (set by a shared store around
    /// this one; always empty for the memory store alone).
    watched_elsewhere: Mutex<HashSet<String>>,
    /// How late `watched_elsewhere` may be (zero for the memory store alone).
    elsewhere_report_lag: Duration,
}

struct Inner {
    runs: HashMap<String, Arc<Run>>,
    /// Ids in creation order, oldest first.
    order: VecDeque<String>,
    active: usize,
    shutting_down: bool,
}

impl MemoryStore {
    pub fn new(limits: StoreLimits) -> Arc<MemoryStore> {
        MemoryStore::watched_from_elsewhere(limits, Duration::ZERO)
    }

    /// The local runs of a shared store, whose other instances report their
    /// subscribers (through `set_watched_elsewhere`) up to `report_lag` late.
    pub fn watched_from_elsewhere(limits: StoreLimits, report_lag: Duration) -> Arc<MemoryStore> {
        Arc::new_cyclic(|me| MemoryStore {
            inner: Mutex::new(Inner {
                runs: HashMap::new(),
                order: VecDeque::new(),
                active: 0,
                shutting_down: false,
            }),
            limits,
            active_tx: watch::Sender::new(0),
            me: me.clone(),
            watched_elsewhere: Mutex::new(HashSet::new()),
            elsewhere_report_lag: report_lag,
        })
    }

    /// Registers a new running run (the synchronous core of [`RunStore::create`]).
    pub fn create_run(&self, task: String, config: RunConfig) -> Result<Created, CreateError> {
        let (run, context) = self.create_run_with(task, config, |run| run.clone())?;
        Ok(Created {
            run: RunHandle::new(run),
            context,
        })
    }

    /// Like [`create_run`](Self::create_run), with the pipeline's events going to
    /// the sink `sink` makes of the run (a shared store also sends them on).
    pub fn create_run_with(
        &self,
        task: String,
        config: RunConfig,
        sink: impl FnOnce(&Arc<Run>) -> Arc<dyn EventSink>,
    ) -> Result<(Arc<Run>, RunContext), CreateError> {
        let run = {
            let mut inner = lock(&self.inner);
            if inner.shutting_down {
                return Err(CreateError::ShuttingDown);
            }
            if inner.active >= self.limits.max_active_runs {
                return Err(CreateError::TooManyRuns);
            }
            if inner.runs.len() >= MAX_RETAINED_RUNS && !inner.evict_oldest_finished() {
                return Err(CreateError::TooManyRuns);
            }
            let id = crate::ids::new_run_id();
            let owner: Weak<dyn RunOwner> = self.me.clone();
            let run = Arc::new(Run::new(id.clone(), task, config, owner));
            inner.runs.insert(id.clone(), run.clone());
            inner.order.push_back(id);
            inner.active += 1;
            self.active_tx.send_replace(inner.active);
            run
        };
        let context = context_of(&run, sink);
        Ok((run, context))
    }

    /// Takes over a run paused for review that another instance made and left (it
    /// stopped): a run of this process from now on, with `copy`'s events so far (so it
    /// goes on at the next event number), whose pipeline the caller starts. Not held
    /// to `MESH_MAX_ACTIVE_RUNS` here: it is paused (it counts once approved).
    pub fn adopt_paused_run(
        &self,
        copy: &Run,
        sink: impl FnOnce(&Arc<Run>) -> Arc<dyn EventSink>,
    ) -> Result<(Arc<Run>, RunContext), CreateError> {
        let run = {
            let mut inner = lock(&self.inner);
            if inner.shutting_down {
                return Err(CreateError::ShuttingDown);
            }
            if inner.runs.len() >= MAX_RETAINED_RUNS && !inner.evict_oldest_finished() {
                return Err(CreateError::TooManyRuns);
            }
            let owner: Weak<dyn RunOwner> = self.me.clone();
            let run = Arc::new(Run::restore(
                copy.id.clone(),
                copy.task.clone(),
                (*copy.config).clone(),
                copy.created_at,
                owner,
            ));
            inner.runs.insert(run.id.clone(), run.clone());
            inner.order.push_back(run.id.clone());
            // Counted as running until its replayed pause gives the slot back.
            inner.active += 1;
            self.active_tx.send_replace(inner.active);
            run
        };
        for (seq, name, data) in copy.wire_events() {
            run.push_stored(seq, name, &data);
        }
        let context = context_of(&run, sink);
        Ok((run, context))
    }

    /// Stops accepting runs, leaving every run as it is (a shared store's paused
    /// runs outlive this process: another instance takes them on).
    pub fn stop_accepting(&self) {
        lock(&self.inner).shutting_down = true;
    }

    /// The ids of the runs this process is executing.
    pub fn running_ids(&self) -> Vec<String> {
        let inner = lock(&self.inner);
        inner
            .runs
            .values()
            .filter(|r| !r.is_finished())
            .map(|r| r.id.clone())
            .collect()
    }

    /// Forgets a run at once (one whose creation could not be completed elsewhere).
    pub fn discard(&self, id: &str) {
        self.evict(id);
    }

    /// Which running runs are watched through other instances.
    pub fn set_watched_elsewhere(&self, ids: HashSet<String>) {
        *lock(&self.watched_elsewhere) = ids;
    }

    pub fn get_run(&self, id: &str) -> Option<Arc<Run>> {
        lock(&self.inner).runs.get(id).cloned()
    }

    fn evict(&self, id: &str) {
        let mut inner = lock(&self.inner);
        if let Some(run) = inner.runs.remove(id) {
            inner.order.retain(|x| x != id);
            run.close_readers();
        }
    }
}

/// Arms a run's disconnect timer and builds the context its pipeline writes to.
fn context_of(run: &Arc<Run>, sink: impl FnOnce(&Arc<Run>) -> Arc<dyn EventSink>) -> RunContext {
    run.arm_disconnect_timer();
    RunContext::new(
        run.id.clone(),
        run.task.clone(),
        run.config.clone(),
        sink(run),
        run.cancel_signal(),
    )
    .with_approval(run.approval_signal())
}

impl RunOwner for MemoryStore {
    fn run_finished(&self, id: &str) {
        {
            let mut inner = lock(&self.inner);
            inner.active = inner.active.saturating_sub(1);
            self.active_tx.send_replace(inner.active);
        }
        let store = self.me.clone();
        let id = id.to_string();
        let ttl = self.limits.run_ttl;
        spawn_detached(async move {
            tokio::time::sleep(ttl).await;
            if let Some(store) = store.upgrade() {
                store.evict(&id);
            }
        });
    }

    fn disconnect_grace(&self) -> Duration {
        self.limits.disconnect_grace
    }

    /// A paused run gives its `MESH_MAX_ACTIVE_RUNS` slot back; approved, it takes
    /// one again even past the cap (it was admitted once; new runs wait instead).
    /// Paused runs still count against the store's capacity of retained runs: an
    /// unfinished run is never evicted.
    fn review_paused(&self, _id: &str, paused: bool) {
        let mut inner = lock(&self.inner);
        inner.active = if paused {
            inner.active.saturating_sub(1)
        } else {
            inner.active + 1
        };
        self.active_tx.send_replace(inner.active);
    }

    fn watched_elsewhere(&self, id: &str) -> bool {
        lock(&self.watched_elsewhere).contains(id)
    }

    fn elsewhere_report_lag(&self) -> Duration {
        self.elsewhere_report_lag
    }
}

impl RunStore for MemoryStore {
    fn limits(&self) -> StoreLimits {
        self.limits
    }

    fn create(
        &self,
        task: String,
        config: RunConfig,
    ) -> BoxFuture<'_, Result<Created, CreateError>> {
        let created = self.create_run(task, config);
        Box::pin(async move { created })
    }

    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<RunHandle>, StoreError>> {
        let run = self.get_run(id).map(RunHandle::new);
        Box::pin(async move { Ok(run) })
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<RunSummary>, StoreError>> {
        let runs: Vec<Arc<Run>> = {
            let inner = lock(&self.inner);
            inner
                .order
                .iter()
                .rev()
                .filter_map(|id| inner.runs.get(id).cloned())
                .collect()
        };
        let list = runs.iter().map(|r| r.summary()).collect();
        Box::pin(async move { Ok(list) })
    }

    fn cancel<'a>(
        &'a self,
        id: &'a str,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<Option<CancelOutcome>, StoreError>> {
        let outcome = self.get_run(id).map(|run| match run.status() {
            RunStatus::Running => {
                run.cancel(reason);
                CancelOutcome::Cancelling
            }
            finished => CancelOutcome::Finished(finished),
        });
        Box::pin(async move { Ok(outcome) })
    }

    fn approve<'a>(
        &'a self,
        id: &'a str,
        plan: &'a PlanEvent,
    ) -> BoxFuture<'a, Result<Approval, StoreError>> {
        let approved = self
            .get_run(id)
            .is_some_and(|run| run.approve(plan.clone()));
        Box::pin(async move {
            Ok(if approved {
                Approval::Delivered
            } else {
                Approval::NotAwaiting
            })
        })
    }

    fn active_runs(&self) -> usize {
        lock(&self.inner).active
    }

    fn counts_by_status(&self) -> [(RunStatus, usize); 4] {
        let runs: Vec<Arc<Run>> = lock(&self.inner).runs.values().cloned().collect();
        let mut counts = [
            (RunStatus::Running, 0),
            (RunStatus::Completed, 0),
            (RunStatus::Cancelled, 0),
            (RunStatus::Failed, 0),
        ];
        for r in runs {
            let s = r.status();
            if let Some(c) = counts.iter_mut().find(|(k, _)| *k == s) {
                c.1 += 1;
            }
        }
        counts
    }

    fn begin_shutdown(&self) {
        let paused: Vec<Arc<Run>> = {
            let mut inner = lock(&self.inner);
            inner.shutting_down = true;
            inner.runs.values().cloned().collect()
        };
        // Nobody can approve a paused run once this process is gone, and it does
        // not count among the pipelines shutdown waits for: it ends now, so its
        // subscribers get their `done`.
        for run in paused.iter().filter(|r| r.is_awaiting_review()) {
            run.cancel("server shutting down");
        }
    }

    fn is_shutting_down(&self) -> bool {
        lock(&self.inner).shutting_down
    }

    fn wait_idle(&self) -> BoxFuture<'_, ()> {
        let mut rx = self.active_tx.subscribe();
        Box::pin(async move {
            // The sender lives as long as `self`, so this cannot fail while we borrow it.
            let _ = rx.wait_for(|n| *n == 0).await;
        })
    }

    fn cancel_all(&self, reason: &str) {
        let runs: Vec<Arc<Run>> = lock(&self.inner).runs.values().cloned().collect();
        for r in runs {
            r.cancel(reason);
        }
    }
}

impl Inner {
    fn evict_oldest_finished(&mut self) -> bool {
        let victim = self.order.iter().position(|id| {
            self.runs
                .get(id)
                .is_some_and(|r| r.status() != RunStatus::Running)
        });
        match victim.and_then(|i| self.order.remove(i)) {
            Some(id) => {
                if let Some(run) = self.runs.remove(&id) {
                    run.close_readers();
                }
                true
            }
            None => false,
        }
    }
}
