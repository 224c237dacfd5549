//! The user messages each agent receives: the task, its subtask, and what earlier agents wrote.

use crate::model::events::PlanEvent;
use crate::model::run_config::Schedule;

pub fn planner_message(task: &str, candidates: &[(String, String)], schedule: Schedule) -> String {
    let mut out = format!("Task:\n{task}\n\nSpecialists you can choose from:\n");
    for (name, role) in candidates {
        out.push_str(&format!("- {name}: {role}\n"));
    }
    if schedule == Schedule::Parallel {
        out.push_str(
            "\nThe specialists work in parallel unless one needs another's work first. \
             Say who needs whom with an \"after\" map, e.g. \
             \"after\":{\"coder\":[\"researcher\"]}; leave out the ones that can start at once.",
        );
    }
    out.push_str("\nReply with the JSON plan only.");
    out
}

/// `digests` are `(title, digest)` of the specialists this one works after that
/// produced text; `missing` are `(title, why)` of those whose input is not there.
pub fn specialist_message(
    task: &str,
    subtask: Option<&str>,
    digests: &[(String, String)],
    missing: &[(String, String)],
) -> String {
    let mut out = format!("Task:\n{task}\n");
    if let Some(s) = subtask {
        out.push_str(&format!("\nYour part:\n{s}\n"));
    }
    if !digests.is_empty() {
        out.push_str("\nDigests of your teammates' earlier work:\n");
        for (title, text) in digests {
            out.push_str(&format!("\n--- {title} ---\n{text}\n"));
        }
    }
    for (title, why) in missing {
        out.push_str(&format!(
            "\nInput missing: the {title}'s work, which you were to build on, is not available ({why}). Do your part without it and say what it would have changed.\n"
        ));
    }
    out
}

/// `outputs` are `(title, full text)` of every specialist that produced text.
pub fn writer_message(task: &str, plan: &PlanEvent, outputs: &[(String, String)]) -> String {
    let mut out = format!("Task:\n{task}\n\nPlan: team {}.", plan.agents.join(", "));
    if !plan.reasoning.is_empty() {
        out.push_str(&format!(" Reasoning: {}", plan.reasoning));
    }
    out.push('\n');
    if outputs.is_empty() {
        out.push_str("\nNo specialist produced notes; answer from your own knowledge.\n");
    } else {
        out.push_str("\nThe specialists' full notes:\n");
        for (title, text) in outputs {
            out.push_str(&format!("\n=== {title} ===\n{text}\n"));
        }
    }
    out.push_str("\nWrite the final deliverable now, in Markdown.");
    out
}
