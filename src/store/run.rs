//! One run as this process holds it: its frozen config, its ordered event log (the
//! wire frames), the snapshot folded from those events, stream subscribers and their
//! wake-ups, and the cancel signal. Every store keeps its runs as `Run`s: the memory
//! store as the only copy, a shared store as this instance's copy of the stream.

use super::{spawn_detached, SubscribeError, MAX_SUBSCRIBERS};
use crate::clock;
use crate::model::agent::AgentKind;
use crate::model::error_kind::ErrorKind;
use crate::model::events::{
    write_frame, write_token_frame, AgentState, DoneEvent, ErrorEvent, Event, PlanEvent, RunStatus,
    Usage,
};
use crate::model::run_config::RunConfig;
use crate::pipeline::context::{CancelSignal, EventSink};
use crate::util::{cut_chars, lock};
use bytes::{Bytes, BytesMut};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, Weak};
use std::task::Waker;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::watch;

/// How long a request about a copy of another instance's run waits for the copy to
/// reach what that instance already showed (see [`Run::catch_up`]).
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
}

/// One run: its frozen config, event log and live state.
pub struct Run {
    pub id: String,
    pub task: String,
    pub config: Arc<RunConfig>,
    pub created_at: SystemTime,
    pub started: Instant,
    owner: Weak<dyn RunOwner>,
    state: Mutex<RunState>,
    /// The seq of the last logged event; subscribers wait on changes.
    seq_tx: watch::Sender<u64>,
    /// `Some(reason)` once cancellation was requested.
    cancel_tx: watch::Sender<Option<String>>,
}

struct RunState {
    log: EventLog,
    /// Stream subscribers waiting for the next event, by subscriber id.
    waiters: Vec<(u64, Waker)>,
    next_subscriber: u64,
    status: RunStatus,
    finished_at: Option<SystemTime>,
    subscribers: usize,
    /// Bumped whenever the subscriber count changes, so a stale grace timer knows
    /// someone came and went in between.
    subscriber_epoch: u64,
    /// Kept as the event itself; its JSON is built when a snapshot asks for it.
    plan: Option<PlanEvent>,
    agents: Vec<AgentSnapshot>,
    output: String,
    usage: Usage,
    cost_usd: Option<f64>,
    /// The whole run's duration, from its `done` event.
    elapsed_ms: Option<u64>,
}

#[derive(Debug, Clone)]
struct AgentSnapshot {
    name: String,
    kind: AgentKind,
    state: AgentState,
    model: String,
    provider: String,
    output: String,
    usage: Option<Usage>,
    cost_usd: Option<f64>,
    elapsed_ms: Option<u64>,
    ttft_ms: Option<u64>,
    substituted_for: Option<String>,
    error: Option<String>,
    error_kind: Option<ErrorKind>,
    error_status: Option<u16>,
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
        let agents = config
            .agents
            .iter()
            .map(|a| AgentSnapshot {
                name: a.name.clone(),
                kind: a.kind,
                state: AgentState::Queued,
                model: a.model.clone(),
                provider: a.provider.as_str().to_string(),
                output: String::new(),
                usage: None,
                cost_usd: None,
                elapsed_ms: None,
                ttft_ms: None,
                substituted_for: None,
                error: None,
                error_kind: None,
                error_status: None,
            })
            .collect();
        Run {
            id,
            task,
            config: Arc::new(config),
            created_at,
            started: Instant::now(),
            owner,
            state: Mutex::new(RunState {
                log: EventLog::default(),
                waiters: Vec::new(),
                next_subscriber: 0,
                status: RunStatus::Running,
                finished_at: None,
                subscribers: 0,
                subscriber_epoch: 0,
                plan: None,
                agents,
                output: String::new(),
                usage: Usage::default(),
                cost_usd: None,
                elapsed_ms: None,
            }),
            seq_tx: watch::Sender::new(0),
            cancel_tx: watch::Sender::new(None),
        }
    }

    pub fn status(&self) -> RunStatus {
        lock(&self.state).status
    }

    pub fn is_finished(&self) -> bool {
        self.status() != RunStatus::Running
    }

    /// Appends an event to the log (giving it the next seq), folds it into the
    /// snapshot and wakes every subscriber; returns its seq. Events after `done` are
    /// ignored (`None`).
    pub fn push(&self, event: Event) -> Option<u64> {
        let (finished, seq) = {
            let mut st = lock(&self.state);
            if st.status != RunStatus::Running {
                return None;
            }
            let seq = st.log.len() + 1;
            st.log
                .append(|out| write_frame(out, seq, event.name(), |o| event.write_data(o)));
            st.apply(&event);
            self.notify(&mut st, seq);
            if let Event::Done(d) = &event {
                crate::metrics::METRICS.run_finished(d.status);
                (true, seq)
            } else {
                (false, seq)
            }
        };
        if finished {
            if let Some(owner) = self.owner.upgrade() {
                owner.run_finished(&self.id);
            }
        }
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
        let mut st = lock(&self.state);
        if st.status != RunStatus::Running {
            st.finished_at = Some(at);
        }
    }

    /// When the run finished (`None` while it runs).
    pub fn finished_at(&self) -> Option<SystemTime> {
        lock(&self.state).finished_at
    }

    /// The `error` and `done` `failed` that end the run on its behalf (a store that
    /// cannot go on with it): the `done` carries the writer's output so far and the
    /// totals of the finished agent calls.
    pub fn failed_ending(&self, kind: ErrorKind, message: &str) -> [Event; 2] {
        let (output, usage, cost_usd) = {
            let st = lock(&self.state);
            let output = st
                .agents
                .iter()
                .find(|a| a.kind == AgentKind::Writer)
                .map(|a| a.output.clone())
                .unwrap_or_default();
            (output, st.usage, st.cost_usd)
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
            }),
        ]
    }

    /// The `token` event, from borrowed text: framed straight into the log, with no
    /// owned event built first. Same effect as `push(Event::Token(..))`.
    pub fn push_token(&self, agent: &str, text: &str) -> Option<u64> {
        let mut st = lock(&self.state);
        if st.status != RunStatus::Running {
            return None;
        }
        let seq = st.log.len() + 1;
        st.log
            .append(|out| write_token_frame(out, seq, agent, text));
        if let Some(a) = st.agent_mut(agent) {
            a.output.push_str(text);
        }
        self.notify(&mut st, seq);
        Some(seq)
    }

    /// Wakes the stream subscribers waiting for an event, and the `watch_seq`
    /// receivers if there are any (a watch send with nobody to tell still takes
    /// eight locks).
    fn notify(&self, st: &mut RunState, seq: u64) {
        for (_, waker) in st.waiters.drain(..) {
            waker.wake();
        }
        if self.seq_tx.receiver_count() > 0 {
            self.seq_tx.send_replace(seq);
        }
    }

    /// Framed events with seq > `after`, and the seq of the last one.
    pub fn frames_after(&self, after: u64) -> (Vec<Bytes>, u64, bool) {
        let mut st = lock(&self.state);
        let last = st.log.len();
        let frames = st.log.frames_after(after.min(last));
        (frames, last, st.status != RunStatus::Running)
    }

    /// Every logged event as (seq, name, data JSON), for rewriting the run elsewhere.
    pub fn wire_events(&self) -> Vec<(u64, String, String)> {
        let (frames, _, _) = self.frames_after(0);
        frames
            .iter()
            .filter_map(|f| {
                let (seq, name, data) = crate::model::events::parse_frame(f)?;
                Some((seq, name.to_string(), data.to_string()))
            })
            .collect()
    }

    pub fn last_event_id(&self) -> u64 {
        lock(&self.state).log.len()
    }

    /// A receiver that changes whenever an event is logged.
    pub fn watch_seq(&self) -> watch::Receiver<u64> {
        self.seq_tx.subscribe()
    }

    /// Whether this is a shared store's copy of a run another instance executes.
    pub fn is_copy(&self) -> bool {
        self.owner.upgrade().is_some_and(|o| !o.runs_pipelines())
    }

    /// A copy trails the log its instance serves by the time events take through
    /// the store (normally milliseconds), and a client may have seen more there (an
    /// event id, the run's end) before asking here. This waits until `ready` holds,
    /// the copy has finished, or [`COPY_LAG_BOUND`] passed, and returns `ready`. A
    /// run of this process's own is never behind: it returns at once.
    pub async fn catch_up(&self, ready: impl Fn(&Run) -> bool) -> bool {
        if self.is_copy() {
            let mut logged = self.watch_seq();
            let _ = tokio::time::timeout(COPY_LAG_BOUND, async {
                while !ready(self) && !self.is_finished() {
                    // The sender lives in `self`: this cannot fail while we wait.
                    if logged.changed().await.is_err() {
                        return;
                    }
                }
            })
            .await;
        }
        ready(self)
    }

    pub fn subscribe(self: &Arc<Self>) -> Result<SubscriberGuard, SubscribeError> {
        let mut st = lock(&self.state);
        if st.subscribers >= MAX_SUBSCRIBERS {
            return Err(SubscribeError::TooManySubscribers);
        }
        st.subscribers += 1;
        st.subscriber_epoch += 1;
        st.next_subscriber += 1;
        Ok(SubscriberGuard {
            run: self.clone(),
            id: st.next_subscriber,
        })
    }

    pub fn subscriber_count(&self) -> usize {
        lock(&self.state).subscribers
    }

    /// Requests cancellation; the pipeline notices at once and ends with `done` `cancelled`.
    pub fn cancel(&self, reason: &str) {
        if self.is_finished() {
            return;
        }
        self.cancel_tx.send_if_modified(|r| {
            if r.is_none() {
                *r = Some(reason.to_string());
                true
            } else {
                false
            }
        });
    }

    pub fn cancel_reason(&self) -> Option<String> {
        self.cancel_tx.borrow().clone()
    }

    /// The signal a pipeline waits on; it fires when [`cancel`](Self::cancel) is called.
    pub fn cancel_signal(&self) -> CancelSignal {
        CancelSignal::new(self.cancel_tx.subscribe())
    }

    /// With no subscriber for the grace period, a non-detached running run is cancelled.
    pub(crate) fn arm_disconnect_timer(self: &Arc<Self>) {
        if self.config.detach {
            return;
        }
        let grace = match self.owner.upgrade() {
            Some(owner) if owner.runs_pipelines() => owner.disconnect_grace(),
            _ => return,
        };
        let epoch = lock(&self.state).subscriber_epoch;
        let run = Arc::downgrade(self);
        spawn_detached(async move {
            let mut wait = grace;
            let mut rechecked = false;
            loop {
                tokio::time::sleep(wait).await;
                let Some(run) = run.upgrade() else { return };
                let idle = {
                    let st = lock(&run.state);
                    st.subscribers == 0 && st.subscriber_epoch == epoch
                };
                if !idle || run.is_finished() {
                    return;
                }
                let Some(owner) = run.owner.upgrade() else {
                    return;
                };
                // Watched through another instance: look again after another grace.
                if owner.watched_elsewhere(&run.id) {
                    (wait, rechecked) = (grace, false);
                    continue;
                }
                // Other instances' subscribers are reported a little late: one that
                // came near the end of the grace may not be known here yet.
                let lag = owner.elsewhere_report_lag();
                if !rechecked && !lag.is_zero() {
                    (wait, rechecked) = (lag, true);
                    continue;
                }
                run.cancel(&format!("no stream subscriber for {} s", grace.as_secs()));
                return;
            }
        });
    }

    pub fn summary_json(&self) -> Value {
        let st = lock(&self.state);
        json!({
            "id": self.id,
            "task": cut_chars(&self.task, 200),
            "status": st.status,
            "created_at": clock::rfc3339(self.created_at),
            "finished_at": st.finished_at.map(clock::rfc3339),
            "parent": self.config.conversation.parent,
        })
    }

    /// The full snapshot of `GET /api/runs/{id}`.
    pub fn snapshot_json(&self) -> Value {
        let st = lock(&self.state);
        let agents: Vec<Value> = st
            .agents
            .iter()
            .map(|a| {
                json!({
                    "name": a.name,
                    "kind": a.kind,
                    "state": a.state,
                    "model": a.model,
                    "provider": a.provider,
                    "output": a.output,
                    "usage": a.usage,
                    "cost_usd": a.cost_usd,
                    "elapsed_ms": a.elapsed_ms,
                    "ttft_ms": a.ttft_ms,
                    "substituted_for": a.substituted_for,
                    "error": a.error,
                    "error_kind": a.error_kind,
                    "error_status": a.error_status,
                })
            })
            .collect();
        json!({
            "id": self.id,
            "status": st.status,
            "task": self.task,
            "created_at": clock::rfc3339(self.created_at),
            "finished_at": st.finished_at.map(clock::rfc3339),
            "config": self.config.to_json(),
            "parent": self.config.conversation.parent,
            "thread": self.config.conversation.thread(&self.id),
            "plan": st.plan.as_ref().and_then(|p| serde_json::to_value(p).ok()),
            "agents": agents,
            "output": st.output,
            "usage": st.usage,
            "elapsed_ms": st.elapsed_ms,
            "cost_usd": st.cost_usd,
            "last_event_id": st.log.len(),
        })
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

impl RunState {
    fn agent_mut(&mut self, name: &str) -> Option<&mut AgentSnapshot> {
        self.agents.iter_mut().find(|a| a.name == name)
    }

    /// Folds one event into the snapshot, so the snapshot is always exactly what
    /// the event log says.
    fn apply(&mut self, event: &Event) {
        match event {
            Event::Status(s) => {
                if let Some(name) = &s.agent {
                    if let Some(a) = self.agent_mut(name) {
                        a.state = s.state;
                    }
                }
            }
            Event::Plan(p) => self.apply_plan(p),
            Event::StreamStart(s) => {
                if let Some(a) = self.agent_mut(&s.agent) {
                    a.state = if a.kind == AgentKind::Writer {
                        AgentState::Writing
                    } else {
                        AgentState::Running
                    };
                    a.model.clone_from(&s.model);
                    a.provider.clone_from(&s.provider);
                    a.substituted_for.clone_from(&s.substituted_for);
                    a.output.clear();
                    a.error = None;
                    a.error_kind = None;
                    a.error_status = None;
                }
            }
            Event::Token(t) => {
                if let Some(a) = self.agent_mut(&t.agent) {
                    a.output.push_str(&t.text);
                }
            }
            Event::StreamEnd(e) => {
                if let Some(a) = self.agent_mut(&e.agent) {
                    a.state = AgentState::Done;
                    a.usage = e.usage;
                    a.cost_usd = e.cost_usd;
                    a.elapsed_ms = Some(e.elapsed_ms);
                    a.ttft_ms = e.ttft_ms;
                }
                if let Some(u) = e.usage {
                    self.usage.add(u);
                }
                if let Some(c) = e.cost_usd {
                    self.cost_usd = Some(self.cost_usd.unwrap_or(0.0) + c);
                }
            }
            Event::Error(e) => self.apply_error(e),
            Event::Done(d) => self.apply_done(d),
        }
    }

    fn apply_plan(&mut self, p: &PlanEvent) {
        self.plan = Some(p.clone());
    }

    fn apply_error(&mut self, e: &ErrorEvent) {
        if let Some(name) = &e.agent {
            if let Some(a) = self.agent_mut(name) {
                a.error = Some(e.message.clone());
                a.error_kind = Some(e.kind);
                a.error_status = e.status;
            }
        }
    }

    fn apply_done(&mut self, d: &DoneEvent) {
        self.status = d.status;
        self.finished_at = Some(SystemTime::now());
        self.output.clone_from(&d.output);
        self.elapsed_ms = Some(d.elapsed_ms);
        for a in &mut self.agents {
            match a.state {
                AgentState::Queued => a.state = AgentState::Skipped,
                AgentState::Planning
                | AgentState::Running
                | AgentState::Writing
                | AgentState::Retrying => {
                    a.state = AgentState::Failed;
                    if a.error.is_none() && d.status == RunStatus::Cancelled {
                        a.error = Some("cancelled".to_string());
                        a.error_kind = Some(ErrorKind::Cancelled);
                    }
                }
                AgentState::Done | AgentState::Skipped | AgentState::Failed => {}
            }
        }
    }
}

/// Counts one live stream subscriber; dropping it (the client went away) may arm
/// the disconnect-grace timer.
pub struct SubscriberGuard {
    run: Arc<Run>,
    id: u64,
}

/// What [`SubscriberGuard::poll_log`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogPoll {
    /// New bytes were handed out.
    Data,
    /// Nothing new, and nothing will come: the run has ended.
    Finished,
    /// Nothing new yet; the waker is woken by the next event.
    Pending,
}

impl SubscriberGuard {
    /// The log offset just past event `after` (the start of a replay after it).
    pub fn offset_after(&self, after: u64) -> u64 {
        let st = lock(&self.run.state);
        st.log.offset_after(after.min(st.log.len()))
    }

    /// Hands out every logged byte after log offset `offset` (advancing it) as
    /// shared slices of the log — no copy — or registers `waker` for the next event.
    /// The check and the registration happen under one lock, so no event is missed.
    pub fn poll_log(&self, offset: &mut u64, out: &mut VecDeque<Bytes>, waker: &Waker) -> LogPoll {
        let mut st = lock(&self.run.state);
        if st.log.total_bytes() > *offset {
            *offset = st.log.bytes_from(*offset, out);
            return LogPoll::Data;
        }
        if st.status != RunStatus::Running {
            return LogPoll::Finished;
        }
        match st.waiters.iter_mut().find(|(id, _)| *id == self.id) {
            Some((_, w)) => {
                if !w.will_wake(waker) {
                    w.clone_from(waker);
                }
            }
            None => st.waiters.push((self.id, waker.clone())),
        }
        LogPoll::Pending
    }
}

impl Drop for SubscriberGuard {
    fn drop(&mut self) {
        let none_left = {
            let mut st = lock(&self.run.state);
            st.waiters.retain(|(id, _)| *id != self.id);
            st.subscribers = st.subscribers.saturating_sub(1);
            st.subscriber_epoch += 1;
            st.subscribers == 0 && st.status == RunStatus::Running
        };
        if none_left {
            self.run.arm_disconnect_timer();
        }
    }
}

/// A run's events as wire frames, in order, with the byte offset where each ends.
///
/// Frames are appended to one growing buffer (`tail`). When subscribers ask for new
/// bytes, the tail is frozen into a shared segment and handed out as reference-counted
/// slices: replay and live delivery copy nothing, and a frame costs its bytes plus an
/// 8-byte offset instead of an allocation of its own.
#[derive(Default)]
struct EventLog {
    /// Frozen bytes, in order; each segment holds whole frames.
    segments: Vec<Bytes>,
    /// The log offset at which each segment starts.
    seg_starts: Vec<u64>,
    /// Frames appended since the last freeze.
    tail: BytesMut,
    /// The log offset at which `tail` starts.
    tail_start: u64,
    /// `ends[i]` is the log offset just past the frame of seq `i + 1`.
    ends: Vec<u64>,
}

/// The tail grows in blocks this large at most, and as large as the log so far at
/// least 1 KiB: a short run's log stays small, a long one's takes few allocations.
const MAX_LOG_BLOCK: usize = 64 << 10;
const MIN_LOG_BLOCK: usize = 1 << 10;

impl EventLog {
    fn len(&self) -> u64 {
        self.ends.len() as u64
    }

    fn total_bytes(&self) -> u64 {
        self.tail_start + self.tail.len() as u64
    }

    /// The offset just past event `seq` (0 for none).
    fn offset_after(&self, seq: u64) -> u64 {
        match seq {
            0 => 0,
            n => self.ends[n as usize - 1],
        }
    }

    /// Appends one frame written by `write` (exactly one, so offsets stay per event).
    fn append(&mut self, write: impl FnOnce(&mut BytesMut)) {
        // Frames are small; reserve ahead in blocks so a shared tail (after a freeze)
        // is not reallocated per frame.
        if self.tail.capacity() - self.tail.len() < 512 {
            let block = (self.total_bytes() as usize).clamp(MIN_LOG_BLOCK, MAX_LOG_BLOCK);
            self.tail.reserve(block);
        }
        write(&mut self.tail);
        self.ends.push(self.total_bytes());
    }

    /// Moves the tail into a frozen segment.
    fn freeze(&mut self) {
        if !self.tail.is_empty() {
            let segment = self.tail.split().freeze();
            self.seg_starts.push(self.tail_start);
            self.tail_start += segment.len() as u64;
            self.segments.push(segment);
        }
    }

    /// The index of the segment holding log offset `offset` (< total bytes, frozen).
    fn segment_at(&self, offset: u64) -> usize {
        self.seg_starts.partition_point(|&s| s <= offset) - 1
    }

    /// Pushes every byte from `offset` on as slices of the segments; returns the end.
    fn bytes_from(&mut self, offset: u64, out: &mut VecDeque<Bytes>) -> u64 {
        self.freeze();
        let total = self.total_bytes();
        if offset >= total {
            return total;
        }
        let first = self.segment_at(offset);
        for (start, segment) in self.seg_starts[first..].iter().zip(&self.segments[first..]) {
            let from = offset.saturating_sub(*start) as usize;
            out.push_back(segment.slice(from..));
        }
        total
    }

    /// Each frame after event `after`, as its own slice (for frame-by-frame readers).
    fn frames_after(&mut self, after: u64) -> Vec<Bytes> {
        self.freeze();
        let mut frames = Vec::with_capacity((self.len() - after) as usize);
        let mut start = self.offset_after(after);
        let mut seg = if after < self.len() {
            self.segment_at(start)
        } else {
            0
        };
        for &end in &self.ends[after as usize..] {
            while self.seg_starts[seg] + self.segments[seg].len() as u64 <= start {
                seg += 1;
            }
            let base = self.seg_starts[seg];
            frames.push(self.segments[seg].slice((start - base) as usize..(end - base) as usize));
            start = end;
        }
        frames
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_text(seq: u64, len: usize) -> Vec<u8> {
        format!("id: {seq}\ndata: {}\n\n", "x".repeat(len)).into_bytes()
    }

    /// Whatever the freeze points (one per subscriber wake), every reader sees each
    /// frame exactly once, in order, from any resume point.
    #[test]
    fn the_log_hands_out_every_frame_once_from_any_point() {
        for freeze_every in [1u64, 2, 3, 7, 1000] {
            let mut log = EventLog::default();
            let mut all = Vec::new();
            for seq in 1..=40u64 {
                // Sizes cross the block boundaries, including one frame larger than a block.
                let f = frame_text(
                    seq,
                    if seq == 20 {
                        70_000
                    } else {
                        (seq as usize * 37) % 900
                    },
                );
                all.push(f.clone());
                log.append(|out| out.extend_from_slice(&f));
                if seq % freeze_every == 0 {
                    log.freeze();
                }
            }
            assert_eq!(log.len(), 40);
            for after in 0..=40u64 {
                let frames = log.frames_after(after);
                let want: Vec<&[u8]> = all[after as usize..].iter().map(Vec::as_slice).collect();
                let got: Vec<&[u8]> = frames.iter().map(|b| b.as_ref()).collect();
                assert_eq!(
                    got, want,
                    "frames after {after}, freeze every {freeze_every}"
                );

                let mut out = VecDeque::new();
                let end = log.bytes_from(log.offset_after(after), &mut out);
                assert_eq!(end, log.total_bytes());
                let joined: Vec<u8> = out.iter().flat_map(|b| b.iter().copied()).collect();
                assert_eq!(joined, want.concat(), "bytes after {after}");
            }
        }
    }

    #[test]
    fn a_reader_that_is_up_to_date_gets_nothing() {
        let mut log = EventLog::default();
        log.append(|out| out.extend_from_slice(b"id: 1\n\n"));
        let mut out = VecDeque::new();
        let end = log.bytes_from(0, &mut out);
        assert_eq!(out.len(), 1);
        out.clear();
        assert_eq!(log.bytes_from(end, &mut out), end);
        assert!(out.is_empty());
        assert!(log.frames_after(1).is_empty());
    }
}
