//! The run itself: its frozen config and, under one lock, its event log, the
//! snapshot fold and its readers; logging an event folds it and wakes the readers in
//! one step. Its lifecycle and subscriptions are `impl Run` blocks of their own files.

use super::log::EventLog;
use super::readers::{Wakers, Watchers};
use super::snapshot::{BudgetView, Fold, RunSnapshot, RunSummary};
use crate::model::error_kind::ErrorKind;
use crate::model::events::{DoneEvent, ErrorEvent, Event, RunStatus};
use crate::model::run_config::RunConfig;
use crate::model::run_context::EventSink;
use crate::util::{cut_chars, lock};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// How long a request about a copy of another instance's run waits for the copy to
/// reach what that instance already showed (see [`RunHandle::catch_up`](super::RunHandle::catch_up)).
pub const COPY_LAG_BOUND: Duration = Duration::from_secs(2);

/// What a run needs of the store that holds it.
pub trait RunOwner: Send + Sync {
    /// Called once, when the run's `done` event is logged.
    fn run_finished(&self, id: &str);
    /// How long a non-detached run may have no subscriber before it is cancelled.
    fn disconnect_grace(&self) -> Duration;
    /// Whether another instance has stream subscribers of this run (a shared store),
    /// so having none here does not make it unwatched.
    fn watched_elsewhere(&self, _id: &str) -> bool {
        false
    }
    /// How late [`watched_elsewhere`](Self::watched_elsewhere) may learn of a new
    /// subscriber elsewhere; a run is cancelled only after looking again this late.
    fn elsewhere_report_lag(&self) -> Duration {
        Duration::ZERO
    }
    /// False for a store's copy of a run that another instance executes: nothing
    /// here can cancel it for want of subscribers.
    fn runs_pipelines(&self) -> bool {
        true
    }
    /// The run paused for review (`true`) or went on (`false`): a paused pipeline
    /// spends nothing, so a store may stop counting it as active meanwhile.
    fn review_paused(&self, _id: &str, _paused: bool) {}
}

/// One run: its frozen config, event log and live state.
pub struct Run {
    pub id: String,
    pub task: String,
    pub config: Arc<RunConfig>,
    pub created_at: SystemTime,
    pub(super) owner: Weak<dyn RunOwner>,
    state: Mutex<RunState>,
    /// `Some(reason)` once cancellation was requested.
    pub(super) cancel_tx: watch::Sender<Option<String>>,
    /// `Some(plan)` once a reviewer approved the plan of a run paused for review.
    pub(super) approval_tx: watch::Sender<Option<crate::model::events::PlanEvent>>,
}

/// Everything that changes as events arrive, under one lock: an event is logged,
/// folded and its readers woken in one step, and a reader's "anything new?" and
/// "wake me" happen in one step too, so nothing is missed.
pub(super) struct RunState {
    pub log: EventLog,
    pub fold: Fold,
    pub wakers: Wakers,
    pub watchers: Watchers,
}

impl Run {
    pub fn new(id: String, task: String, config: RunConfig, owner: Weak<dyn RunOwner>) -> Run {
        Run::restore(id, task, config, SystemTime::now(), owner)
    }

    /// A run created earlier (possibly by another instance), with its creation time.
    pub fn restore(
        id: String,
        task: String,
        config: RunConfig,
        created_at: SystemTime,
        owner: Weak<dyn RunOwner>,
    ) -> Run {
        Run {
            id,
            task,
            state: Mutex::new(RunState {
                log: EventLog::default(),
                fold: Fold::new(&config),
                wakers: Wakers::default(),
                watchers: Watchers::default(),
            }),
            config: Arc::new(config),
            created_at,
            owner,
            cancel_tx: watch::Sender::new(None),
            approval_tx: watch::Sender::new(None),
        }
    }

    pub(super) fn state(&self) -> MutexGuard<'_, RunState> {
        lock(&self.state)
    }

    pub fn status(&self) -> RunStatus {
        self.state().fold.status
    }

    /// Whether the run is paused until its plan is approved (`review`).
    pub fn is_awaiting_review(&self) -> bool {
        self.state().fold.awaiting_review
    }

    pub fn is_finished(&self) -> bool {
        self.status() != RunStatus::Running
    }

    /// Appends an event to the log (giving it the next seq), folds it into the
    /// snapshot and wakes every reader; returns its seq. Events after `done` are
    /// ignored (`None`).
    pub fn push(&self, event: Event) -> Option<u64> {
        let (seq, ended, paused) = {
            let mut st = self.state();
            if st.fold.status != RunStatus::Running {
                return None;
            }
            let was_paused = st.fold.awaiting_review;
            st.fold.apply(&event);
            let ended = match &event {
                Event::Done(d) => Some(d.status),
                _ => None,
            };
            let paused = (st.fold.awaiting_review != was_paused).then_some(!was_paused);
            let seq = st.log.append_event(event);
            st.wakers.wake_all();
            (seq, ended, paused)
        };
        if let Some(paused) = paused {
            self.review_paused(paused);
        }
        if let Some(status) = ended {
            self.ended(status);
        }
        Some(seq)
    }

    /// The `token` event, from borrowed text: framed straight into the log, with no
    /// owned event built first. Same effect as `push(Event::Token(..))`.
    pub fn push_token(&self, agent: &str, text: &str) -> Option<u64> {
        let mut st = self.state();
        if st.fold.status != RunStatus::Running {
            return None;
        }
        let seq = st.log.append_token(agent, text);
        st.fold.apply_token(agent, text);
        st.wakers.wake_all();
        Some(seq)
    }

    /// Appends event `seq` read from a shared store's copy of the log, if it is the
    /// next one (an event seen twice, or after a gap, is left out). Returns whether
    /// it was logged; data that is not an event is refused too.
    pub fn push_stored(&self, seq: u64, name: &str, data: &str) -> bool {
        if seq != self.last_event_id() + 1 {
            return false;
        }
        match Event::from_wire(name, data) {
            Some(event) => self.push(event).is_some(),
            None => false,
        }
    }

    /// Sets when the run finished, as the store recorded it (a copy built after the
    /// fact would otherwise say "now").
    pub fn set_finished_at(&self, at: SystemTime) {
        let mut st = self.state();
        if st.fold.status != RunStatus::Running {
            st.fold.finished_at = Some(at);
        }
    }

    /// When the run finished (`None` while it runs).
    pub fn finished_at(&self) -> Option<SystemTime> {
        self.state().fold.finished_at
    }

    /// The `error` and `done` `failed` that end the run on its behalf (a store that
    /// cannot go on with it): the `done` carries the writer's output so far, the
    /// totals of the finished agent calls, and, with tracing on, the trace the run
    /// was started in (its run span, on the lost instance, had that trace id).
    pub fn failed_ending(&self, kind: ErrorKind, message: &str) -> [Event; 2] {
        let (output, usage, cost_usd, budget) = {
            let st = self.state();
            let f = &st.fold;
            let budget = f.budget(&self.config);
            (f.writer_output().to_string(), f.usage, f.cost_usd, budget)
        };
        let elapsed_ms = SystemTime::now()
            .duration_since(self.created_at)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        [
            Event::Error(ErrorEvent {
                agent: None,
                kind,
                message: message.to_string(),
                status: None,
            }),
            Event::Done(DoneEvent {
                status: RunStatus::Failed,
                output,
                usage,
                cost_usd,
                elapsed_ms,
                trace_id: self
                    .config
                    .trace_parent
                    .filter(|_| crate::trace::global().is_enabled())
                    .map(|parent| parent.trace_id.to_hex()),
                budget,
            }),
        ]
    }

    /// Every logged event as (seq, name, data JSON), for rewriting the run elsewhere.
    pub fn wire_events(&self) -> Vec<(u64, &'static str, String)> {
        let st = self.state();
        let mut events = Vec::with_capacity(st.log.len() as usize);
        st.log
            .visit_after(0, |seq, e| events.push((seq, e.name(), e.stored_json())));
        events
    }

    pub fn last_event_id(&self) -> u64 {
        self.state().log.len()
    }

    /// Whether this is a shared store's copy of a run another instance executes.
    pub fn is_copy(&self) -> bool {
        self.owner.upgrade().is_some_and(|o| !o.runs_pipelines())
    }

    pub fn subscriber_count(&self) -> usize {
        self.state().watchers.count
    }

    pub fn summary(&self) -> RunSummary {
        let st = self.state();
        RunSummary {
            id: self.id.clone(),
            task: cut_chars(&self.task, 200).to_string(),
            status: st.fold.status,
            created_at: Some(self.created_at),
            finished_at: st.fold.finished_at,
            parent: self.config.conversation.parent.clone(),
            budget: st.fold.budget(&self.config),
        }
    }

    /// The full snapshot of `GET /api/runs/{id}`, `thread` left empty.
    pub fn snapshot(&self) -> RunSnapshot {
        let st = self.state();
        let f = &st.fold;
        RunSnapshot {
            id: self.id.clone(),
            status: f.status,
            awaiting_review: f.awaiting_review,
            task: self.task.clone(),
            created_at: self.created_at,
            finished_at: f.finished_at,
            config: self.config.clone(),
            parent: self.config.conversation.parent.clone(),
            thread: Vec::new(),
            thread_omitted: self.config.conversation.ancestors_omitted,
            plan: f.plan.clone(),
            agents: f.agents.clone(),
            output: f.output.clone(),
            usage: f.usage,
            elapsed_ms: f.elapsed_ms,
            cost_usd: f.cost_usd,
            last_event_id: st.log.len(),
            trace_id: f.trace_id.clone(),
            budget: f.budget(&self.config).map(|report| BudgetView {
                report,
                unpriced: self
                    .config
                    .budget
                    .as_ref()
                    .map(|b| b.unpriced())
                    .unwrap_or_default(),
            }),
        }
    }
}

/// The memory store's events go straight into the run's own log.
impl EventSink for Run {
    fn push(&self, event: Event) {
        Run::push(self, event);
    }

    fn push_token(&self, agent: &str, text: &str) {
        Run::push_token(self, agent, text);
    }
}
