//! The store's contract: the [`RunStore`] trait every store implements, its limits,
//! errors and answers. The HTTP layer, the CLI and the stores themselves import it
//! from here.

use super::run::handle::RunHandle;
use super::run::snapshot::RunSummary;
pub use crate::metrics::StoreHealth;
use crate::model::events::{PlanEvent, RunStatus};
use crate::model::run_config::RunConfig;
use crate::model::run_context::RunContext;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// At most this many runs are retained, running or finished (oldest finished evicted first).
pub const MAX_RETAINED_RUNS: usize = 1000;
/// A boxed future, so the store trait can be used as `dyn RunStore`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Debug, Clone, Copy)]
pub struct StoreLimits {
    pub run_ttl: Duration,
    pub max_active_runs: usize,
    pub disconnect_grace: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateError {
    TooManyRuns,
    ShuttingDown,
    /// The store cannot be reached now; the message says why (no secrets).
    Unavailable(String),
}

/// The store could not answer now (a shared store that is unreachable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

/// What a cancel request found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The run was running; it ends with `done` `cancelled` shortly.
    Cancelling,
    /// The run had already finished with this status.
    Finished(RunStatus),
}

/// What became of a plan approval.
pub enum Approval {
    /// The run is not (any more) awaiting review here or anywhere.
    NotAwaiting,
    /// Handed to the run's pipeline in this process.
    Delivered,
    /// Sent on to the instance running the run (a shared store), which checks again.
    Sent,
    /// The instance that paused the run is gone: this process took the run over
    /// (paused, its events so far) and the caller starts its pipeline from the
    /// plan it paused on, then hands it the approval.
    Adopted(Box<Created>),
}

/// A run just created: the store's handle (for subscribers and snapshots) and the
/// context its pipeline writes to.
pub struct Created {
    pub run: RunHandle,
    pub context: RunContext,
}

/// Where runs live. Every method is safe to call from any task; none blocks the
/// runtime thread.
pub trait RunStore: Send + Sync {
    fn limits(&self) -> StoreLimits;

    /// Registers a new running run that this process will execute. It is cancelled
    /// if nobody subscribes within the disconnect grace (unless detached).
    fn create(
        &self,
        task: String,
        config: RunConfig,
    ) -> BoxFuture<'_, Result<Created, CreateError>>;

    /// The run with this id, if it is retained.
    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<RunHandle>, StoreError>>;

    /// Summaries of the retained runs, newest first (SPEC §3 `GET /api/runs`).
    fn list(&self) -> BoxFuture<'_, Result<Vec<RunSummary>, StoreError>>;

    /// Requests cancellation of a run; `None` when no such run is retained.
    fn cancel<'a>(
        &'a self,
        id: &'a str,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<Option<CancelOutcome>, StoreError>>;

    /// Hands a reviewer's approved plan to run `id`, paused for review.
    fn approve<'a>(
        &'a self,
        id: &'a str,
        plan: &'a PlanEvent,
    ) -> BoxFuture<'a, Result<Approval, StoreError>>;

    /// Pipelines running in this process (a run paused for review is not one).
    fn active_runs(&self) -> usize;

    /// Retained runs by status, as this process knows them (for `/metrics`).
    fn counts_by_status(&self) -> [(RunStatus, usize); 4];

    /// Writes not yet confirmed by a shared store; nothing to report in memory.
    fn health(&self) -> StoreHealth {
        StoreHealth::default()
    }

    /// Stops accepting runs (`create` answers `ShuttingDown`).
    fn begin_shutdown(&self);

    fn is_shutting_down(&self) -> bool;

    /// Resolves when no pipeline is running in this process.
    fn wait_idle(&self) -> BoxFuture<'_, ()>;

    /// Cancels every pipeline running in this process with the given reason.
    fn cancel_all(&self, reason: &str);
}

pub(crate) fn spawn_detached<F>(fut: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    // Timers are only armed from inside the runtime; outside it (a unit test that
    // drops a guard after the runtime ended) there is nothing left to time.
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        handle.spawn(fut);
    }
}
