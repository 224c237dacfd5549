//! The plan parser, end to end: the schema's shapes, synonyms, names, tasks and
//! dependencies; `finding` covers locating the object in prose, junk and invariants.

mod finding;

use super::*;
use crate::model::dependency::DropReason;

const ROSTER: &[&str] = &["researcher", "analyst", "coder", "critic"];

fn parse(reply: &str) -> Result<Plan, PlanError> {
    parse_plan(reply, ROSTER)
}

fn agents(reply: &str) -> Vec<String> {
    match parse(reply) {
        Ok(plan) => plan.agents,
        Err(e) => panic!("expected a plan from {reply:?}, got error {e:?}"),
    }
}

fn error(reply: &str) -> String {
    match parse(reply) {
        Ok(plan) => panic!("expected an error from {reply:?}, got {plan:?}"),
        Err(e) => e.reason,
    }
}

/// Whatever comes back must satisfy the contract's invariants.
fn check_invariants(reply: &str, roster: &[&str]) {
    if let Ok(plan) = parse_plan(reply, roster) {
        assert!(!plan.agents.is_empty());
        let positions: Vec<usize> = plan
            .agents
            .iter()
            .map(|a| roster.iter().position(|r| r == a).expect("roster name"))
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{plan:?}");
        assert!(plan.tasks.keys().all(|k| plan.agents.contains(k)));
        let lowered: HashSet<String> = plan.dropped.iter().map(|d| d.to_lowercase()).collect();
        assert_eq!(lowered.len(), plan.dropped.len());
        assert_eq!(plan.after.len(), plan.agents.len());
        let team: Vec<String> = plan.agents.clone();
        let stages = crate::pipeline::dependencies::stages(&team, &plan.after);
        assert_eq!(stages.iter().map(Vec::len).sum::<usize>(), team.len());
    }
}

#[test]
fn dependencies_from_a_map_and_from_agent_objects() {
    let plan = parse(
        r#"{"agents":["researcher",{"name":"coder","after":["Researcher"]},"analyst"],"after":{"analyst":"coder, ghost","critic":["researcher"]}}"#,
    )
    .unwrap();
    assert_eq!(plan.after["coder"], ["researcher"]);
    assert_eq!(plan.after["analyst"], ["coder"]);
    assert!(plan.after["researcher"].is_empty());
    let dropped: Vec<(&str, &str)> = plan
        .dropped_after
        .iter()
        .map(|d| (d.agent.as_str(), d.after.as_str()))
        .collect();
    assert_eq!(dropped, [("analyst", "ghost"), ("critic", "researcher")]);
}

#[test]
fn a_dependency_cycle_is_broken_and_reported() {
    let plan = parse(
        r#"{"agents":["researcher","coder"],"after":{"coder":["researcher"],"researcher":["coder"]}}"#,
    )
    .unwrap();
    assert_eq!(plan.after["coder"], ["researcher"]);
    assert!(plan.after["researcher"].is_empty());
    assert_eq!(
        plan.dropped_after[0].reason,
        crate::model::dependency::DropReason::Cycle
    );
}

#[test]
fn team_synonym() {
    assert_eq!(
        agents(r#"{"team":["coder","critic"]}"#),
        ["coder", "critic"]
    );
}

#[test]
fn specialists_synonym() {
    assert_eq!(agents(r#"{"specialists":["analyst"]}"#), ["analyst"]);
}

#[test]
fn key_case_is_ignored() {
    let plan = parse(r#"{"Agents":["coder"],"Reasoning":"r","TASKS":{"coder":"t"}}"#).unwrap();
    assert_eq!(plan.agents, ["coder"]);
    assert_eq!(plan.reasoning, "r");
    assert_eq!(plan.tasks.get("coder").map(String::as_str), Some("t"));
}

#[test]
fn mixed_case_and_padded_names() {
    let plan = parse(r#"{"agents":["Researcher"," ANALYST ","  "]}"#).unwrap();
    assert_eq!(plan.agents, ["researcher", "analyst"]);
    assert!(plan.dropped.is_empty());
}

#[test]
fn object_entries_with_name_and_agent() {
    let plan = parse(
        r#"{"agents":[{"name":"Coder","task":"write it"},{"agent":"critic","task":" review it "},{"agent":"analyst"}]}"#,
    )
    .unwrap();
    assert_eq!(plan.agents, ["analyst", "coder", "critic"]);
    assert_eq!(
        plan.tasks.get("coder").map(String::as_str),
        Some("write it")
    );
    assert_eq!(
        plan.tasks.get("critic").map(String::as_str),
        Some("review it")
    );
    assert!(!plan.tasks.contains_key("analyst"));
}

#[test]
fn tasks_map_with_mixed_case_keys() {
    let plan = parse(
        r#"{"agents":["researcher","analyst"],"tasks":{"RESEARCHER":"dig","Analyst":"count","coder":"not chosen","ghost":"x"}}"#,
    )
    .unwrap();
    let expected: BTreeMap<String, String> = [
        ("researcher".to_string(), "dig".to_string()),
        ("analyst".to_string(), "count".to_string()),
    ]
    .into_iter()
    .collect();
    assert_eq!(plan.tasks, expected);
}

#[test]
fn entry_task_wins_over_tasks_map_which_fills_gaps() {
    let plan = parse(
        r#"{"agents":[{"name":"coder","task":"from entry"},{"name":"critic"}],"tasks":{"coder":"from map","critic":"map fills"}}"#,
    )
    .unwrap();
    assert_eq!(
        plan.tasks.get("coder").map(String::as_str),
        Some("from entry")
    );
    assert_eq!(
        plan.tasks.get("critic").map(String::as_str),
        Some("map fills")
    );
}

#[test]
fn non_string_task_values_are_ignored() {
    let plan =
        parse(r#"{"agents":[{"name":"coder","task":7}],"tasks":{"coder":["a"],"analyst":"x"}}"#)
            .unwrap();
    assert!(plan.tasks.is_empty());
}

#[test]
fn roster_order_not_model_order() {
    assert_eq!(
        agents(r#"{"agents":["critic","analyst","researcher"]}"#),
        ["researcher", "analyst", "critic"]
    );
}

#[test]
fn duplicates_removed() {
    let plan = parse(r#"{"agents":["coder","Coder","coder ","ghost","GHOST"]}"#).unwrap();
    assert_eq!(plan.agents, ["coder"]);
    assert_eq!(plan.dropped, ["ghost"]);
}

#[test]
fn unknown_names_dropped_and_reported() {
    let plan = parse(r#"{"agents":["writer"," Designer ","analyst",42,null]}"#).unwrap();
    assert_eq!(plan.agents, ["analyst"]);
    assert_eq!(plan.dropped, ["writer", "Designer"]);
}

#[test]
fn all_unknown_is_an_error_naming_them() {
    let e = error(r#"{"agents":["foo","bar"]}"#);
    assert_eq!(e, "the plan named no known specialist (dropped: foo, bar)");
}

#[test]
fn all_unknown_error_carries_the_dropped_names_for_the_fallback() {
    let e = parse(r#"{"agents":["foo"," Bar ","FOO"]}"#).unwrap_err();
    assert_eq!(e.dropped, ["foo", "Bar"]);
    let e = parse(r#"{"agents":[]}"#).unwrap_err();
    assert!(e.dropped.is_empty());
    let e = parse("no JSON at all").unwrap_err();
    assert!(e.dropped.is_empty());
}

#[test]
fn long_dropped_list_is_shortened_in_the_error() {
    let names: Vec<String> = (0..20).map(|i| format!("\"x{i}\"")).collect();
    let e = error(&format!("{{\"agents\":[{}]}}", names.join(",")));
    assert!(e.contains("x0, x1, x2, x3, x4, and 15 more"), "{e}");
}

#[test]
fn empty_list_is_an_error() {
    assert_eq!(
        error(r#"{"agents":[]}"#),
        "the plan's \"agents\" list is empty"
    );
}

#[test]
fn list_of_non_names_is_an_error() {
    assert_eq!(
        error(r#"{"agents":[1,true,{}]}"#),
        "the plan named no known specialist"
    );
}

#[test]
fn object_without_agents_key_is_an_error() {
    assert_eq!(
        error(r#"{"reasoning":"x","tasks":{"coder":"y"}}"#),
        NO_AGENTS
    );
}

#[test]
fn agents_of_the_wrong_type_is_an_error() {
    assert_eq!(error(r#"{"agents":5}"#), NO_AGENTS);
    assert_eq!(error(r#"{"agents":null}"#), NO_AGENTS);
}

#[test]
fn non_string_reasoning() {
    assert_eq!(
        parse(r#"{"agents":["coder"],"reasoning":42}"#)
            .unwrap()
            .reasoning,
        "42"
    );
    assert_eq!(
        parse(r#"{"agents":["coder"],"reasoning":null}"#)
            .unwrap()
            .reasoning,
        ""
    );
    assert_eq!(parse(r#"{"agents":["coder"]}"#).unwrap().reasoning, "");
    assert_eq!(
        parse(r#"{"agents":["coder"],"reasoning":["a","b"]}"#)
            .unwrap()
            .reasoning,
        "a b"
    );
    assert_eq!(
        parse(r#"{"agents":["coder"],"reasoning":{"k":1}}"#)
            .unwrap()
            .reasoning,
        r#"{"k":1}"#
    );
}

#[test]
fn agents_as_string_or_name_task_object() {
    assert_eq!(
        agents(r#"{"agents":"Analyst, coder"}"#),
        ["analyst", "coder"]
    );
    let plan = parse(r#"{"agents":{"critic":"check","researcher":5}}"#).unwrap();
    assert_eq!(plan.agents, ["researcher", "critic"]);
    assert_eq!(plan.tasks.get("critic").map(String::as_str), Some("check"));
    assert_eq!(plan.tasks.len(), 1);
}

#[test]
fn roster_names_are_returned_as_given() {
    let plan = parse_plan(r#"{"agents":["ANALYST"]}"#, &["Analyst"]).unwrap();
    assert_eq!(plan.agents, ["Analyst"]);
}

#[test]
fn empty_roster_drops_everything() {
    let e = parse_plan(r#"{"agents":["coder"]}"#, &[]).unwrap_err();
    assert!(e.reason.contains("coder"), "{e:?}");
    assert_eq!(e.dropped, ["coder"]);
}

fn after_of(plan: &Plan, name: &str) -> Vec<String> {
    plan.after
        .get(name)
        .cloned()
        .unwrap_or_else(|| panic!("no entry for {name}"))
}

#[test]
fn after_map_resolves_with_an_entry_for_every_member() {
    let plan =
        parse(r#"{"agents":["researcher","coder","analyst"],"after":{"Coder":["researcher"]}}"#)
            .unwrap();
    assert_eq!(plan.after.len(), 3);
    assert_eq!(after_of(&plan, "coder"), ["researcher"]);
    assert!(after_of(&plan, "researcher").is_empty());
    assert!(after_of(&plan, "analyst").is_empty());
    assert!(plan.dropped_after.is_empty());
}

#[test]
fn after_inside_agent_objects_and_as_a_string() {
    let plan = parse(
        r#"{"agents":[{"name":"researcher"},{"name":"coder","after":["researcher"]},{"name":"analyst","depends_on":"researcher, coder"}]}"#,
    )
    .unwrap();
    assert_eq!(after_of(&plan, "coder"), ["researcher"]);
    assert_eq!(after_of(&plan, "analyst"), ["researcher", "coder"]);
}

#[test]
fn unknown_and_outside_team_dependencies_are_dropped_and_reported() {
    let plan = parse(
        r#"{"agents":["researcher","analyst"],"after":{"analyst":["Ghost","coder","researcher"],"nobody":["researcher"]}}"#,
    )
    .unwrap();
    assert_eq!(after_of(&plan, "analyst"), ["researcher"]);
    let drops: Vec<(&str, &str, DropReason)> = plan
        .dropped_after
        .iter()
        .map(|d| (d.agent.as_str(), d.after.as_str(), d.reason))
        .collect();
    assert_eq!(
        drops,
        [
            ("analyst", "Ghost", DropReason::Unknown),
            ("analyst", "coder", DropReason::NotInTeam),
            ("nobody", "researcher", DropReason::Unknown),
        ]
    );
}

#[test]
fn a_cycle_in_the_plan_is_broken_and_reported() {
    let plan = parse(
        r#"{"agents":["researcher","coder"],"after":{"coder":["researcher"],"researcher":["coder"]}}"#,
    )
    .unwrap();
    assert_eq!(after_of(&plan, "coder"), ["researcher"]);
    assert!(after_of(&plan, "researcher").is_empty());
    assert_eq!(plan.dropped_after.len(), 1);
    assert_eq!(plan.dropped_after[0].reason, DropReason::Cycle);
    assert_eq!(plan.dropped_after[0].agent, "researcher");
}

#[test]
fn odd_after_shapes_add_nothing_and_never_fail_the_plan() {
    for reply in [
        r#"{"agents":["coder"],"after":5}"#,
        r#"{"agents":["coder"],"after":{"coder":7}}"#,
        r#"{"agents":["coder"],"after":{"coder":[1,null,{}]}}"#,
        r#"{"agents":[{"name":"coder","after":{"x":1}}]}"#,
    ] {
        let plan = parse(reply).unwrap();
        assert_eq!(plan.agents, ["coder"], "{reply}");
        assert!(after_of(&plan, "coder").is_empty(), "{reply}");
    }
}
