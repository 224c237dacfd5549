//! Unit tests of the pipeline and its scheduler against a fake provider written
//! through the `Provider` trait (so every call also goes through the registry's retry
//! and redaction path): plan → specialists (sequential and parallel) → writer, a
//! failed specialist, and a cancel in the middle of a call. They assert on the run's
//! events in order, as a minimal event sink records them.

use super::*;
use crate::model::agent::AgentKind;
use crate::model::provider_id::ProviderId;
use crate::model::run_config::{AgentConfig, CallTimeouts, RunConfig, Schedule};
use crate::model::run_context::{CancelSignal, EventSink};
use crate::providers::error::ProviderError;
use crate::providers::{Attempt, BoxFuture, CallOutcome, CallRequest, Provider, TokenSink};
use crate::secret::Secret;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// What the fake does for one agent.
#[derive(Clone)]
enum Script {
    /// Streams these pieces, then finishes with usage.
    Answer(Vec<&'static str>),
    /// Fails before any output, not retryable.
    Fail,
    /// Streams one piece, then waits forever (until the call is dropped).
    Hang,
}

#[derive(Default)]
struct Seen {
    /// `(agent, user message)` of every call, in the order they started.
    calls: Vec<(String, String)>,
    in_flight: usize,
    most_at_once: usize,
}

struct FakeProvider {
    scripts: Vec<(&'static str, Script)>,
    seen: Mutex<Seen>,
    /// Notified once a `Hang` call has sent its piece.
    hanging: Notify,
}

impl FakeProvider {
    fn new(scripts: Vec<(&'static str, Script)>) -> Arc<FakeProvider> {
        Arc::new(FakeProvider {
            scripts,
            seen: Mutex::new(Seen::default()),
            hanging: Notify::new(),
        })
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap()
    }
}

/// Keeps the in-flight count right however the call ends (a cancel drops it).
struct InFlightGuard<'a>(&'a FakeProvider);

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.0.seen().in_flight -= 1;
    }
}

impl Provider for FakeProvider {
    fn id(&self) -> ProviderId {
        ProviderId::OpenRouter
    }

    fn attempt<'a>(
        &'a self,
        request: &'a CallRequest<'a>,
        sink: &'a mut dyn TokenSink,
        progress: &'a mut Attempt,
        _secrets: &'a [String],
    ) -> BoxFuture<'a, Result<CallOutcome, ProviderError>> {
        Box::pin(async move {
            let user = request
                .conversation()
                .flat_map(|m| m.texts())
                .collect::<String>();
            {
                let mut seen = self.seen();
                seen.calls.push((request.agent.to_string(), user));
                seen.in_flight += 1;
                seen.most_at_once = seen.most_at_once.max(seen.in_flight);
            }
            let _guard = InFlightGuard(self);
            // Let every other ready call start before this one answers.
            for _ in 0..4 {
                tokio::task::yield_now().await;
            }
            let script = self
                .scripts
                .iter()
                .find(|(agent, _)| *agent == request.agent)
                .map(|(_, s)| s.clone())
                .unwrap_or(Script::Answer(vec!["ok"]));
            match script {
                Script::Answer(pieces) => {
                    for piece in &pieces {
                        sink.token(piece);
                        progress.emitted = true;
                        tokio::task::yield_now().await;
                    }
                    Ok(CallOutcome::new(
                        "stop",
                        Some(crate::model::events::Usage {
                            input_tokens: 10,
                            output_tokens: pieces.len() as u64,
                        }),
                    ))
                }
                Script::Fail => {
                    let mut e = ProviderError::new(ErrorKind::Upstream, "model exploded");
                    e.status = Some(400);
                    Err(e)
                }
                Script::Hang => {
                    sink.token("partial ");
                    progress.emitted = true;
                    self.hanging.notify_one();
                    std::future::pending::<()>().await;
                    unreachable!("a pending future never resolves")
                }
            }
        })
    }

    fn catalog_endpoint(&self) -> BoxFuture<'_, Result<(String, Option<Secret>), String>> {
        Box::pin(async { Err("no catalog".to_string()) })
    }
}

fn agent(name: &str, kind: AgentKind) -> AgentConfig {
    AgentConfig {
        name: name.to_string(),
        title: name.to_uppercase(),
        emoji: String::new(),
        kind,
        role: format!("the {name}"),
        prompt: format!("You are the {name}."),
        provider: ProviderId::OpenRouter,
        model: "m/x".to_string(),
        max_tokens: 100,
        warning: None,
        tools: None,
    }
}

fn config(schedule: Schedule) -> RunConfig {
    let second = Duration::from_secs(5);
    RunConfig {
        provider: ProviderId::OpenRouter,
        agents: vec![
            agent("orchestrator", AgentKind::Planner),
            agent("researcher", AgentKind::Specialist),
            agent("coder", AgentKind::Specialist),
            agent("analyst", AgentKind::Specialist),
            agent("writer", AgentKind::Writer),
        ],
        requested_team: None,
        detach: false,
        timeouts: CallTimeouts {
            first_token: second,
            idle: second,
            total: second,
        },
        schedule,
        max_parallel: 4,
        tool_rounds: 8,
        conversation: Default::default(),
        budget: None,
        review: None,
        trace_parent: None,
    }
}

const PLAN: &str = r#"{"agents":["researcher","coder"],"reasoning":"facts then code","tasks":{"coder":"write it"}}"#;

fn registry(fake: &Arc<FakeProvider>) -> Arc<Providers> {
    let client = crate::providers::client::build(None).unwrap();
    let catalog = Arc::new(crate::providers::catalog::Catalog::new(
        &roster::Roster::builtin().model_ids(),
    ));
    Arc::new(Providers::from_parts(
        client,
        vec![fake.clone() as Arc<dyn Provider>],
        Vec::new(),
        catalog,
    ))
}

/// Records the run's events as `(name, data JSON)`, as the store would log them.
#[derive(Default)]
struct Recorder(Mutex<Vec<(String, String)>>);

impl EventSink for Recorder {
    fn push(&self, event: Event) {
        let line = (event.name().to_string(), event.data_json());
        self.0.lock().unwrap().push(line);
    }

    fn push_token(&self, agent: &str, text: &str) {
        let data = serde_json::json!({"agent": agent, "text": text}).to_string();
        self.0.lock().unwrap().push(("token".to_string(), data));
    }
}

/// A run's context whose events go to a fresh recorder; cancel by sending a reason.
fn context(
    schedule: Schedule,
) -> (
    Arc<RunContext>,
    Arc<Recorder>,
    watch::Sender<Option<String>>,
) {
    let recorder = Arc::new(Recorder::default());
    let (cancel, rx) = watch::channel(None);
    let run = RunContext::new(
        "run-1".to_string(),
        "build a thing".to_string(),
        Arc::new(config(schedule)),
        recorder.clone(),
        CancelSignal::new(rx),
    );
    (Arc::new(run), recorder, cancel)
}

/// The run's events as short lines; consecutive tokens of one agent are joined.
fn summary(recorder: &Recorder) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut last_token_agent: Option<String> = None;
    for (name, data) in recorder.0.lock().unwrap().iter() {
        let v: serde_json::Value = serde_json::from_str(data).unwrap();
        let s = |k: &str| v[k].as_str().unwrap_or("-").to_string();
        if name == "token" {
            let agent = s("agent");
            if last_token_agent.as_deref() == Some(agent.as_str()) {
                if let Some(line) = lines.last_mut() {
                    line.push_str(&s("text"));
                }
            } else {
                lines.push(format!("token {agent}: {}", s("text")));
            }
            last_token_agent = Some(agent);
            continue;
        }
        last_token_agent = None;
        lines.push(match name.as_str() {
            "status" => format!("status {} {}", s("agent"), s("state")),
            "stream_start" => format!("start {}", s("agent")),
            "stream_end" => format!("end {}", s("agent")),
            "error" => format!("error {} {}", s("agent"), s("kind")),
            "plan" => format!("plan {}", v["agents"]),
            "done" => format!("done {}", s("status")),
            other => other.to_string(),
        });
    }
    lines
}

/// Runs a whole pipeline against the fake, within a bound.
async fn run_with(fake: &Arc<FakeProvider>, schedule: Schedule) -> Vec<String> {
    let (run, recorder, _cancel) = context(schedule);
    tokio::time::timeout(Duration::from_secs(10), run_workflow(run, registry(fake)))
        .await
        .expect("the pipeline finishes");
    summary(&recorder)
}

fn planner_says(plan: &'static str) -> (&'static str, Script) {
    ("orchestrator", Script::Answer(vec![plan]))
}

#[tokio::test(flavor = "current_thread")]
async fn sequential_plan_specialists_then_writer_in_order() {
    let fake = FakeProvider::new(vec![
        planner_says(PLAN),
        ("researcher", Script::Answer(vec!["found ", "facts"])),
        ("coder", Script::Answer(vec!["fn main() {}"])),
        ("writer", Script::Answer(vec!["# Done"])),
    ]);
    let events = run_with(&fake, Schedule::Sequential).await;
    assert_eq!(
        events,
        [
            "status orchestrator planning",
            "start orchestrator",
            &format!("token orchestrator: {PLAN}"),
            "end orchestrator",
            r#"plan ["researcher","coder"]"#,
            "status analyst skipped",
            "start researcher",
            "token researcher: found facts",
            "end researcher",
            "start coder",
            "token coder: fn main() {}",
            "end coder",
            "start writer",
            "token writer: # Done",
            "end writer",
            "done completed",
        ]
    );
    let seen = fake.seen();
    let order: Vec<&str> = seen.calls.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(order, ["orchestrator", "researcher", "coder", "writer"]);
    assert_eq!(seen.most_at_once, 1, "sequential runs one call at a time");
    // The coder got the researcher's digest and its own subtask; the writer both outputs.
    let coder = &seen.calls[2].1;
    assert!(
        coder.contains("found facts") && coder.contains("write it"),
        "{coder}"
    );
    let writer = &seen.calls[3].1;
    assert!(
        writer.contains("found facts") && writer.contains("fn main() {}"),
        "{writer}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn parallel_specialists_without_dependencies_run_at_once() {
    let fake = FakeProvider::new(vec![
        planner_says(
            r#"{"agents":["researcher","coder","analyst"],"reasoning":"r","after":{"analyst":["researcher"]}}"#,
        ),
        ("researcher", Script::Answer(vec!["r1 ", "r2"])),
        ("coder", Script::Answer(vec!["c1 ", "c2"])),
        ("analyst", Script::Answer(vec!["a1"])),
        ("writer", Script::Answer(vec!["w"])),
    ]);
    let events = run_with(&fake, Schedule::Parallel).await;
    let seen = fake.seen();
    assert_eq!(
        seen.most_at_once, 2,
        "researcher and coder at once: {events:#?}"
    );
    let order: Vec<&str> = seen.calls.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(order[0], "orchestrator");
    assert_eq!(order[1..3], ["researcher", "coder"]);
    assert_eq!(order[3..], ["analyst", "writer"]);
    // The analyst started only after the researcher ended, and saw its digest.
    let pos = |line: &str| events.iter().position(|e| e == line).expect(line);
    assert!(pos("end researcher") < pos("start analyst"), "{events:#?}");
    assert!(seen.calls[3].1.contains("r1 r2"));
    assert!(pos("end analyst") < pos("start writer"));
    assert!(pos("end coder") < pos("start writer"));
    assert_eq!(events.last().map(String::as_str), Some("done completed"));
}

#[tokio::test(flavor = "current_thread")]
async fn a_failed_specialist_is_reported_and_the_pipeline_goes_on() {
    let fake = FakeProvider::new(vec![
        planner_says(PLAN),
        ("researcher", Script::Fail),
        ("coder", Script::Answer(vec!["code"])),
        ("writer", Script::Answer(vec!["final"])),
    ]);
    let events = run_with(&fake, Schedule::Sequential).await;
    let pos = |line: &str| events.iter().position(|e| e == line).expect(line);
    assert!(pos("start researcher") < pos("error researcher upstream"));
    assert_eq!(
        events[pos("error researcher upstream") + 1],
        "status researcher failed"
    );
    assert!(pos("status researcher failed") < pos("start coder"));
    assert!(pos("end coder") < pos("start writer"));
    assert_eq!(events.last().map(String::as_str), Some("done completed"));
    // Not retryable: one call each, and the writer never saw the failed one's text.
    let seen = fake.seen();
    assert_eq!(seen.calls.len(), 4, "{:?}", seen.calls);
    assert!(seen.calls[3].1.contains("code"));
}

#[tokio::test(flavor = "current_thread")]
async fn a_failed_writer_fails_the_run() {
    let fake = FakeProvider::new(vec![planner_says(PLAN), ("writer", Script::Fail)]);
    let events = run_with(&fake, Schedule::Sequential).await;
    let tail: Vec<&str> = events.iter().rev().take(3).map(String::as_str).collect();
    assert_eq!(
        tail,
        [
            "done failed",
            "status writer failed",
            "error writer upstream"
        ]
    );
}

#[tokio::test(flavor = "current_thread")]
async fn cancel_mid_call_ends_the_agent_and_the_run() {
    let fake = FakeProvider::new(vec![planner_says(PLAN), ("researcher", Script::Hang)]);
    let (run, recorder, cancel) = context(Schedule::Sequential);
    let pipeline = tokio::spawn(run_workflow(run, registry(&fake)));
    tokio::time::timeout(Duration::from_secs(10), fake.hanging.notified())
        .await
        .expect("the researcher's call started");
    cancel.send_replace(Some("stopped by the test".to_string()));
    tokio::time::timeout(Duration::from_secs(10), pipeline)
        .await
        .expect("the pipeline ends after the cancel")
        .unwrap();
    let events = summary(&recorder);
    let tail: Vec<&str> = events
        .iter()
        .rev()
        .take(5)
        .rev()
        .map(String::as_str)
        .collect();
    assert_eq!(
        tail,
        [
            "token researcher: partial ",
            "error researcher cancelled",
            "status researcher failed",
            "status - failed",
            "done cancelled",
        ],
        "{events:#?}"
    );
    assert_eq!(fake.seen().in_flight, 0, "the call was dropped");
    assert!(!events.iter().any(|e| e.contains("writer")));
}

#[path = "tool_loop_tests.rs"]
mod tool_loop_tests;
