use super::*;
use crate::model::run_config::Schedule;

const ROSTER: [&str; 4] = ["researcher", "analyst", "coder", "critic"];

fn current() -> PlanEvent {
    PlanEvent {
        agents: vec!["researcher".into(), "analyst".into(), "coder".into()],
        reasoning: "why".into(),
        tasks: BTreeMap::from([
            ("researcher".to_string(), "find sources".to_string()),
            ("coder".to_string(), "write the code".to_string()),
        ]),
        source: PlanSource::Orchestrator,
        dropped: vec!["poet".into()],
        reason: String::new(),
        schedule: Schedule::Parallel,
        after: BTreeMap::from([
            ("researcher".to_string(), vec![]),
            ("analyst".to_string(), vec!["researcher".to_string()]),
            ("coder".to_string(), vec!["analyst".to_string()]),
        ]),
        dropped_after: Vec::new(),
        stages: Vec::new(),
    }
}

fn apply(body: &str) -> Result<PlanEvent, FieldError> {
    apply_plan_edits(body.as_bytes(), &ROSTER, &current())
}

#[test]
fn no_edits_keep_the_plan_as_review() {
    for body in [
        "",
        "  ",
        "{}",
        r#"{"agents":null,"tasks":null,"after":null}"#,
    ] {
        let plan = apply(body).unwrap();
        let was = current();
        assert_eq!(plan.agents, was.agents, "{body}");
        assert_eq!(plan.tasks, was.tasks);
        assert_eq!(plan.after, was.after);
        assert_eq!(plan.source, PlanSource::Review);
        assert_eq!(plan.reasoning, "why");
        assert!(plan.dropped.is_empty());
    }
}

#[test]
fn a_smaller_team_keeps_only_its_own_tasks_and_edges() {
    let plan = apply(r#"{"agents":["Coder","researcher","coder"]}"#).unwrap();
    assert_eq!(plan.agents, ["researcher", "coder"]);
    assert_eq!(plan.tasks.len(), 2);
    // coder worked after analyst, who is gone.
    assert_eq!(plan.after["coder"], Vec::<String>::new());
    assert_eq!(plan.after.len(), 2);
}

#[test]
fn edits_replace_tasks_and_dependencies() {
    let plan = apply(
        r#"{"agents":["critic","coder"],"tasks":{"Critic":"  review it ","coder":""},"after":{"critic":["coder"]}}"#,
    )
    .unwrap();
    assert_eq!(plan.agents, ["coder", "critic"]);
    assert_eq!(
        plan.tasks,
        BTreeMap::from([("critic".to_string(), "review it".to_string())])
    );
    assert_eq!(plan.after["critic"], ["coder"]);
    assert_eq!(plan.after["coder"], Vec::<String>::new());
}

#[test]
fn rejections_name_the_field() {
    let long = "x".repeat(MAX_TASK_CHARS + 1);
    let too_long = format!(r#"{{"tasks":{{"coder":"{long}"}}}}"#);
    let cases = [
        ("[]", "body"),
        ("{", "body"),
        (r#"{"agnts":[]}"#, "agnts"),
        (r#"{"":1}"#, "\"\""),
        (r#"{"agents":[]}"#, "agents"),
        (r#"{"agents":"coder"}"#, "agents"),
        (r#"{"agents":["coder","writer"]}"#, "agents[1]"),
        (r#"{"agents":["researcher","analyst",3]}"#, "agents[2]"),
        (r#"{"tasks":[]}"#, "tasks"),
        (r#"{"tasks":{"critic":"x"}}"#, "tasks.critic"),
        (r#"{"tasks":{"coder":5}}"#, "tasks.coder"),
        (r#"{"tasks":{"coder":"a\u0000b"}}"#, "tasks.coder"),
        (too_long.as_str(), "tasks.coder"),
        (r#"{"after":[]}"#, "after"),
        (r#"{"after":{"critic":[]}}"#, "after.critic"),
        (r#"{"after":{"analyst":"researcher"}}"#, "after.analyst"),
        (r#"{"after":{"analyst":[7]}}"#, "after.analyst[0]"),
        (r#"{"after":{"analyst":["critic"]}}"#, "after.analyst[0]"),
        (
            r#"{"after":{"analyst":["researcher","analyst"]}}"#,
            "after.analyst[1]",
        ),
        (
            r#"{"after":{"researcher":["coder"],"coder":["analyst"],"analyst":["researcher"]}}"#,
            "after.analyst[0]",
        ),
    ];
    for (body, field) in cases {
        let e = apply(body).expect_err(body);
        assert_eq!(e.field, field, "{body}: {}", e.message);
        assert!(e.message.contains(&e.field), "{body}: {}", e.message);
    }
}

#[test]
fn a_cycle_is_named_at_the_edge_that_closes_it() {
    // Edges are taken in the order written (serde_json keeps it): the last one closes it.
    let e =
        apply(r#"{"after":{"coder":["analyst"],"analyst":["researcher"],"researcher":["coder"]}}"#)
            .unwrap_err();
    assert_eq!(e.field, "after.researcher[0]");
    assert!(e.message.contains("cycle"), "{}", e.message);
}
