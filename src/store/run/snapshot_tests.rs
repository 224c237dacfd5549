//! Unit tests of the snapshot fold: what each event does to it, how failed and
//! cancelled runs end, and the JSON the handler sends.

use super::*;
use crate::model::events::{PlanSource, TokenEvent};
use crate::model::run_config::Schedule;
use crate::store::run::test_support::{config, done, end, error, start, status};
use crate::store::run::{Run, RunOwner};
use std::collections::BTreeMap;
use std::sync::Weak;

fn fold_of(events: &[Event]) -> Fold {
    let mut fold = Fold::new(&config(true));
    for e in events {
        fold.apply(e);
    }
    fold
}

fn agent<'a>(fold: &'a Fold, name: &str) -> &'a AgentSnapshot {
    fold.agents.iter().find(|a| a.name == name).unwrap()
}

fn token(agent: &str, text: &str) -> Event {
    Event::Token(TokenEvent {
        agent: agent.to_string(),
        text: text.to_string(),
    })
}

#[test]
fn a_new_run_has_every_agent_queued_and_nothing_else() {
    let f = fold_of(&[]);
    assert_eq!(f.status, RunStatus::Running);
    assert_eq!(f.agents.len(), 3);
    assert!(f.agents.iter().all(|a| a.state == AgentState::Queued));
    assert_eq!(agent(&f, "analyst").model, "analyst-model");
    assert_eq!((f.output.as_str(), f.usage), ("", None));
    assert!(f.finished_at.is_none() && f.plan.is_none());
}

#[test]
fn status_events_set_the_named_agents_state_only() {
    let f = fold_of(&[
        status("orchestrator", AgentState::Planning),
        status("nobody", AgentState::Failed),
    ]);
    assert_eq!(agent(&f, "orchestrator").state, AgentState::Planning);
    assert_eq!(agent(&f, "analyst").state, AgentState::Queued);
}

#[test]
fn a_plan_is_kept_whole() {
    let plan = PlanEvent {
        agents: vec!["analyst".to_string()],
        reasoning: "why".to_string(),
        tasks: BTreeMap::new(),
        source: PlanSource::Orchestrator,
        dropped: vec![],
        reason: String::new(),
        schedule: Schedule::Sequential,
        after: BTreeMap::new(),
        dropped_after: vec![],
        stages: vec![vec!["analyst".to_string()]],
    };
    let f = fold_of(&[Event::Plan(plan)]);
    let kept = f.plan.unwrap();
    assert_eq!((kept.agents.len(), kept.reasoning.as_str()), (1, "why"));
}

#[test]
fn a_stream_start_sets_running_or_writing_and_the_served_model() {
    let f = fold_of(&[start("analyst"), start("writer")]);
    let a = agent(&f, "analyst");
    assert_eq!(a.state, AgentState::Running);
    assert_eq!(a.model, "analyst-served");
    assert_eq!(agent(&f, "writer").state, AgentState::Writing);
}

#[test]
fn tokens_append_to_their_agent_and_a_retry_starts_over() {
    let mut f = fold_of(&[
        start("analyst"),
        token("analyst", "ab"),
        token("writer", "w"),
    ]);
    f.apply_token("analyst", "c");
    assert_eq!(agent(&f, "analyst").output, "abc");
    assert_eq!(agent(&f, "writer").output, "w");
    f.apply(&error(Some("analyst"), ErrorKind::Upstream));
    f.apply(&start("analyst"));
    let a = agent(&f, "analyst");
    assert_eq!(
        a.output, "",
        "a retry's stream_start clears the earlier text"
    );
    assert!(a.error.is_none() && a.error_kind.is_none() && a.error_status.is_none());
}

#[test]
fn stream_ends_record_each_call_and_sum_the_run() {
    let f = fold_of(&[
        start("analyst"),
        end("analyst", 10, 20, 0.25),
        start("writer"),
        end("writer", 1, 2, 0.5),
    ]);
    let a = agent(&f, "analyst");
    assert_eq!(a.state, AgentState::Done);
    assert_eq!(a.usage.unwrap().output_tokens, 20);
    assert_eq!(
        (a.elapsed_ms, a.ttft_ms, a.cost_usd),
        (Some(9), Some(5), Some(0.25))
    );
    assert_eq!(
        f.usage,
        Some(Usage {
            input_tokens: 11,
            output_tokens: 22
        })
    );
    assert_eq!(f.cost_usd, Some(0.75));
}

#[test]
fn an_agents_error_is_kept_on_it_and_a_runs_error_on_nobody() {
    let f = fold_of(&[
        start("analyst"),
        error(Some("analyst"), ErrorKind::RateLimit),
    ]);
    let a = agent(&f, "analyst");
    assert_eq!(a.error.as_deref(), Some("it broke"));
    assert_eq!(
        (a.error_kind, a.error_status),
        (Some(ErrorKind::RateLimit), Some(502))
    );
    let f = fold_of(&[error(None, ErrorKind::Network)]);
    assert!(f.agents.iter().all(|a| a.error.is_none()));
}

#[test]
fn a_completed_run_skips_the_agents_that_never_ran() {
    let f = fold_of(&[
        start("writer"),
        end("writer", 1, 1, 0.0),
        done(RunStatus::Completed, "answer"),
    ]);
    assert_eq!(f.status, RunStatus::Completed);
    assert_eq!((f.output.as_str(), f.elapsed_ms), ("answer", Some(42)));
    assert!(f.finished_at.is_some());
    assert_eq!(agent(&f, "analyst").state, AgentState::Skipped);
    assert_eq!(agent(&f, "writer").state, AgentState::Done);
}

#[test]
fn a_cancelled_run_marks_the_running_agent_cancelled_unless_it_had_an_error() {
    let f = fold_of(&[
        start("analyst"),
        error(Some("analyst"), ErrorKind::Timeout),
        status("analyst", AgentState::Retrying),
        start("writer"),
        token("writer", "half"),
        done(RunStatus::Cancelled, "half"),
    ]);
    let w = agent(&f, "writer");
    assert_eq!(w.state, AgentState::Failed);
    assert_eq!(w.error.as_deref(), Some("cancelled"));
    assert_eq!(w.error_kind, Some(ErrorKind::Cancelled));
    let a = agent(&f, "analyst");
    assert_eq!(a.state, AgentState::Failed);
    assert_eq!(
        a.error_kind,
        Some(ErrorKind::Timeout),
        "its own error stays"
    );
    assert_eq!(agent(&f, "orchestrator").state, AgentState::Skipped);
}

#[test]
fn a_failed_run_marks_the_running_agent_failed_without_calling_it_cancelled() {
    let f = fold_of(&[
        start("writer"),
        token("writer", "part"),
        done(RunStatus::Failed, "part"),
    ]);
    assert_eq!(f.status, RunStatus::Failed);
    let w = agent(&f, "writer");
    assert_eq!(w.state, AgentState::Failed);
    assert!(w.error.is_none());
    assert_eq!(f.writer_output(), "part");
}

struct NoOwner;
impl RunOwner for NoOwner {
    fn run_finished(&self, _: &str) {}
    fn disconnect_grace(&self) -> std::time::Duration {
        std::time::Duration::from_secs(1)
    }
}

fn run_with(cfg: RunConfig, task: &str) -> Run {
    Run::new(
        "r1".to_string(),
        task.to_string(),
        cfg,
        Weak::<NoOwner>::new(),
    )
}

#[test]
fn the_snapshot_serializes_every_spec_field_in_order() {
    let run = run_with(config(true), "the task");
    run.push(start("writer"));
    run.push_token("writer", "hi");
    let text = serde_json::to_string(&run.snapshot()).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "id",
            "status",
            "task",
            "created_at",
            "finished_at",
            "config",
            "parent",
            "thread",
            "thread_omitted",
            "plan",
            "agents",
            "output",
            "usage",
            "elapsed_ms",
            "cost_usd",
            "last_event_id",
            "awaiting_review",
            "budget"
        ]
    );
    assert_eq!(v["budget"], serde_json::Value::Null, "no budget: null");
    assert_eq!(v["status"], "running");
    assert_eq!(v["awaiting_review"], false);
    assert_eq!(v["last_event_id"], 2);
    assert_eq!(v["finished_at"], serde_json::Value::Null);
    assert_eq!(v["config"]["agents"]["writer"]["max_tokens"], 100);
    assert_eq!(v["agents"][2]["state"], "writing");
    assert_eq!(v["agents"][2]["output"], "hi");
    assert_eq!(v["agents"][2]["kind"], "writer");
    assert!(v["created_at"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn a_follow_up_names_its_parent_in_snapshot_and_summary() {
    let mut cfg = config(true);
    cfg.conversation = crate::model::conversation::Conversation::follow_up(
        "parent1",
        &Default::default(),
        "first question",
        "first answer",
    );
    let run = run_with(cfg, &"é".repeat(300));
    let snap = run.snapshot();
    assert_eq!(snap.parent.as_deref(), Some("parent1"));
    assert!(snap.thread.is_empty(), "the handler fills the thread");
    let summary = run.summary();
    assert_eq!(summary.parent.as_deref(), Some("parent1"));
    assert_eq!(summary.task.chars().count(), 200);
    let v = serde_json::to_value(&summary).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "id",
            "task",
            "status",
            "created_at",
            "finished_at",
            "parent",
            "budget"
        ]
    );
}

#[test]
fn tool_calls_are_kept_under_their_agent_with_their_results() {
    use crate::model::events::{ToolCallEvent, ToolResultEvent};
    let call = |id: &str, tool: &str| {
        Event::ToolCall(ToolCallEvent {
            agent: "analyst".into(),
            call_id: id.into(),
            server: "everything".into(),
            tool: tool.into(),
            arguments: serde_json::json!({"message": "hi"}),
        })
    };
    let f = fold_of(&[
        start("analyst"),
        call("c1", "echo"),
        call("c2", "get-sum"),
        Event::ToolResult(ToolResultEvent::cut("analyst", "c2", false, "boom", 7)),
        Event::ToolResult(ToolResultEvent::cut("nobody", "c1", true, "x", 1)),
    ]);
    let tools = &agent(&f, "analyst").tools;
    assert_eq!(tools.len(), 2);
    assert_eq!((tools[0].tool.as_str(), tools[0].ok), ("echo", None));
    assert_eq!(tools[1].ok, Some(false));
    assert_eq!(tools[1].content.as_deref(), Some("boom"));
    assert_eq!(tools[1].elapsed_ms, Some(7));
    let json = serde_json::to_value(agent(&f, "analyst")).unwrap();
    assert_eq!(json["tools"][0]["arguments"]["message"], "hi");
    assert_eq!(json["tools"][0]["server"], "everything");
    // A retry starts the agent's turn over, its tool calls too.
    let mut f = f;
    f.apply(&start("analyst"));
    assert!(agent(&f, "analyst").tools.is_empty());
}

/// The event carries a cut; the snapshot keeps the whole bounded result, also when
/// folded from the data a shared store keeps (another instance's copy).
#[test]
fn a_cut_tool_result_is_kept_whole_in_the_snapshot() {
    use crate::model::events::{ToolCallEvent, ToolResultEvent, TOOL_RESULT_EVENT_CHARS};
    let call = Event::ToolCall(ToolCallEvent {
        agent: "analyst".into(),
        call_id: "c1".into(),
        server: "everything".into(),
        tool: "echo".into(),
        arguments: serde_json::json!({}),
    });
    let long = "ab".repeat(TOOL_RESULT_EVENT_CHARS);
    let result = Event::ToolResult(ToolResultEvent::cut("analyst", "c1", true, &long, 3));
    let stored = Event::from_wire(result.name(), &result.stored_json()).unwrap();
    let streamed = Event::from_wire(result.name(), &result.data_json()).unwrap();
    for (event, kept) in [(&result, long.as_str()), (&stored, long.as_str())] {
        let f = fold_of(&[start("analyst"), call.clone(), event.clone()]);
        assert_eq!(agent(&f, "analyst").tools[0].content.as_deref(), Some(kept));
    }
    // What a stream shows cannot give the whole back: the fold has the cut.
    let f = fold_of(&[start("analyst"), call, streamed]);
    let cut = agent(&f, "analyst").tools[0].content.clone().unwrap();
    assert!(
        cut.len() < long.len() && cut.contains("more characters"),
        "{cut}"
    );
}

fn budgeted_config() -> RunConfig {
    use crate::model::budget::{BudgetCaps, RunBudget};
    let mut cfg = config(true);
    let caps = BudgetCaps {
        usd: Some(1.0),
        tokens: Some(5000),
    };
    cfg.budget = Some(RunBudget {
        caps,
        requested: caps,
        prices: [("analyst".to_string(), None), ("writer".to_string(), None)].into(),
        writer: "writer".into(),
        writer_max_tokens: 100,
        writer_base_input_tokens: 10,
    });
    cfg
}

#[test]
fn the_budget_shows_finished_calls_while_running_and_dones_report_at_the_end() {
    use crate::model::budget::BudgetReport;
    let cfg = budgeted_config();
    let mut fold = Fold::new(&cfg);
    assert_eq!(fold_of(&[]).budget(&config(true)), None, "no budget, none");
    fold.apply(&end("analyst", 100, 20, 0.25));
    let live = fold.budget(&cfg).unwrap();
    assert_eq!(
        (live.spent_tokens, live.spent_usd, live.exhausted),
        (120, 0.25, false)
    );
    fold.apply(&error(Some("analyst"), ErrorKind::Budget));
    assert!(fold.budget(&cfg).unwrap().exhausted);
    let report = BudgetReport {
        usd: Some(1.0),
        tokens: Some(5000),
        spent_usd: 0.5,
        spent_tokens: 900,
        exhausted: true,
    };
    let Event::Done(mut d) = done(RunStatus::Completed, "x") else {
        unreachable!()
    };
    d.budget = Some(report.clone());
    fold.apply(&Event::Done(d));
    assert_eq!(fold.budget(&cfg), Some(report));
}

#[test]
fn a_run_stored_before_budgets_reads_as_having_none() {
    let stored = config(false).to_stored_json();
    let mut value: serde_json::Value = serde_json::from_str(&stored).unwrap();
    assert!(value.as_object_mut().unwrap().remove("budget").is_some());
    let back = RunConfig::from_stored_json(&value.to_string()).unwrap();
    assert!(back.budget.is_none());
    let with = RunConfig::from_stored_json(&budgeted_config().to_stored_json()).unwrap();
    assert_eq!(with.budget, budgeted_config().budget);
    assert_eq!(
        budgeted_config().to_json()["budget"],
        serde_json::json!({"usd": 1.0, "tokens": 5000})
    );
}
