//! The two MCP tools: their descriptions and JSON Schemas (`tools/list`), the
//! validation of their arguments, and their results as `CallToolResult`s.

use super::run_adapter::{Outcome, Step};
use crate::api::run_request::{RunRequest, MAX_TASK_CHARS};
use crate::api::state::AppState;
use crate::model::events::RunStatus;
use serde_json::{json, Map, Value};

pub const RUN_TEAM: &str = "run_team";
pub const GET_RUN: &str = "get_run";

/// The fields `run_team` takes; each is validated exactly as `POST /api/run`'s field
/// of the same name.
const RUN_TEAM_FIELDS: [&str; 4] = ["task", "agents", "schedule", "parent"];

const RUN_ID_PATTERN: &str = "^[0-9a-f]{32}$";

/// `tools/list`'s `tools`.
pub fn definitions(state: &AppState) -> Value {
    let specialists = state.pipeline.roster.specialist_names();
    json!([
        {
            "name": RUN_TEAM,
            "title": "Run the agent team",
            "description": format!(
                "Hands a whole task to a team of AI specialists: an orchestrator picks the team \
                 (from {}), each specialist works on it with the others' results as context, and a \
                 writer turns their work into one deliverable, which is returned as text. Takes from \
                 seconds to minutes; progress is reported while the team works. Use it for tasks that \
                 benefit from research, analysis or several perspectives.",
                specialists.join(", ")
            ),
            "inputSchema": {
                "type": "object",
                "properties": {
                    "task": {
                        "type": "string", "minLength": 1, "maxLength": MAX_TASK_CHARS,
                        "description": "The task, in plain words, as you would give it to a person.",
                    },
                    "agents": {
                        "type": "array", "minItems": 1, "uniqueItems": true,
                        "items": {"type": "string", "enum": specialists},
                        "description": "The specialists to use; omit to let the orchestrator choose.",
                    },
                    "schedule": {
                        "type": "string", "enum": ["sequential", "parallel"],
                        "description": "sequential: each specialist sees the earlier ones' work; parallel: independent ones work at once. Omit for the server's default.",
                    },
                    "parent": {
                        "type": "string", "pattern": RUN_ID_PATTERN,
                        "description": "The run_id of a finished run this task follows up; the team sees that conversation.",
                    },
                },
                "required": ["task"],
                "additionalProperties": false,
            },
            "outputSchema": run_output_schema(false),
            "annotations": {"readOnlyHint": false, "destructiveHint": false, "idempotentHint": false, "openWorldHint": true},
        },
        {
            "name": GET_RUN,
            "title": "Get a team run",
            "description": "Returns a run of the team by its run_id: a finished run's deliverable and summary (status, token usage, cost), or the status of one still running.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "run_id": {
                        "type": "string", "pattern": RUN_ID_PATTERN,
                        "description": "The run_id that run_team returned.",
                    },
                },
                "required": ["run_id"],
                "additionalProperties": false,
            },
            "outputSchema": run_output_schema(true),
            "annotations": {"readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false},
        },
    ])
}

fn run_output_schema(with_summary: bool) -> Value {
    let mut properties = json!({
        "run_id": {"type": "string", "pattern": RUN_ID_PATTERN},
        "status": {"type": "string", "enum": ["running", "completed", "failed", "cancelled"]},
        "usage": {
            "type": ["object", "null"],
            "description": "null when the provider reports no token counts",
            "properties": {
                "input_tokens": {"type": "integer", "minimum": 0},
                "output_tokens": {"type": "integer", "minimum": 0},
            },
            "required": ["input_tokens", "output_tokens"],
        },
        "cost_usd": {"type": ["number", "null"], "description": "null when the provider reports no price"},
    });
    if with_summary {
        properties["task"] = json!({"type": "string"});
        properties["elapsed_ms"] = json!({"type": ["integer", "null"]});
        properties["error"] = json!({"type": ["string", "null"]});
    }
    json!({
        "type": "object",
        "properties": properties,
        "required": ["run_id", "status", "usage", "cost_usd"],
    })
}

/// A tool call's arguments that cannot be used: the field at fault and why. The spec
/// (2025-11-25) wants these as tool results with `isError`, so the model can fix
/// its call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgumentError {
    pub field: String,
    pub message: String,
}

/// `run_team`'s arguments as a run request, through `POST /api/run`'s validation.
pub fn run_team_request(
    state: &AppState,
    arguments: &Map<String, Value>,
) -> Result<RunRequest, ArgumentError> {
    if let Some(extra) = arguments
        .keys()
        .find(|k| !RUN_TEAM_FIELDS.contains(&k.as_str()))
    {
        let shown = crate::util::cut_chars(extra, 40);
        return Err(ArgumentError {
            field: shown.to_string(),
            message: format!(
                "unknown argument \"{shown}\" (run_team takes task, agents, schedule and parent)"
            ),
        });
    }
    let mut body = arguments.clone();
    // The MCP client's request decides how long the run lives (see the handler), not
    // the stream subscribers that the store's disconnect grace watches.
    body.insert("detach".to_string(), Value::Bool(true));
    let body = Value::Object(body).to_string();
    crate::api::parse_run_request(state, body.as_bytes()).map_err(|e| ArgumentError {
        field: e.field,
        message: e.message,
    })
}

/// `get_run`'s `run_id`.
pub fn run_id_argument(arguments: &Map<String, Value>) -> Result<String, ArgumentError> {
    let bad = |message: &str| ArgumentError {
        field: "run_id".to_string(),
        message: message.to_string(),
    };
    if let Some(extra) = arguments.keys().find(|k| *k != "run_id") {
        let shown = crate::util::cut_chars(extra, 40);
        return Err(ArgumentError {
            field: shown.to_string(),
            message: format!("unknown argument \"{shown}\" (get_run takes run_id)"),
        });
    }
    match arguments.get("run_id") {
        None | Some(Value::Null) => Err(bad("run_id is required")),
        Some(Value::String(id)) if crate::ids::is_run_id(id) => Ok(id.clone()),
        Some(Value::String(_)) => Err(bad("run_id must be a run id (32 lowercase hex characters)")),
        Some(_) => Err(bad("run_id must be a string")),
    }
}

/// A tool result that reports an error to the model (`isError`), naming what to fix.
pub fn error_result(message: &str) -> Value {
    json!({"content": [{"type": "text", "text": message}], "isError": true})
}

pub fn argument_error(e: &ArgumentError) -> Value {
    let mut result = error_result(&e.message);
    result["_meta"] = json!({"io.agent-mesh/field": e.field});
    result
}

/// The result of `run_team` (and `get_run`, with `summary`): the deliverable as
/// text and the run's figures as `structuredContent`; a run that did not complete
/// is an `isError` result saying why.
pub fn run_result(outcome: &Outcome, summary: bool) -> Value {
    let mut structured = json!({
        "run_id": outcome.run_id,
        "status": outcome.status.as_str(),
        "usage": outcome.usage.map(|u| json!({
            "input_tokens": u.input_tokens,
            "output_tokens": u.output_tokens,
        })),
        "cost_usd": outcome.cost_usd,
    });
    if summary {
        structured["task"] = json!(outcome.task);
        structured["elapsed_ms"] = json!(outcome.elapsed_ms);
        structured["error"] = json!(outcome.error);
    }
    let (text, is_error) = match outcome.status {
        RunStatus::Completed => (outcome.deliverable.clone(), false),
        RunStatus::Running => (
            format!(
                "Run {} is still running; ask get_run again later for its deliverable.",
                outcome.run_id
            ),
            false,
        ),
        RunStatus::Failed => (
            format!(
                "The team could not finish run {}: {}",
                outcome.run_id,
                outcome.error.as_deref().unwrap_or("the run failed")
            ),
            true,
        ),
        RunStatus::Cancelled => (
            format!(
                "Run {} was cancelled: {}",
                outcome.run_id,
                outcome.error.as_deref().unwrap_or("cancelled by request")
            ),
            true,
        ),
    };
    json!({
        "content": [{"type": "text", "text": text}],
        "structuredContent": structured,
        "isError": is_error,
    })
}

/// Counts a run's steps into `notifications/progress` figures: `progress` grows by
/// one a step; `total` is known once the plan says how many agents will work (each
/// starts and finishes), and never falls below `progress`.
#[derive(Debug, Default)]
pub struct ProgressCounter {
    done: u64,
    total: Option<u64>,
}

impl ProgressCounter {
    /// The figures and message for one more step.
    pub fn step(&mut self, step: &Step) -> (u64, Option<u64>, String) {
        self.done += 1;
        let message = match step {
            Step::Planned { agents, reasoning } => {
                // Each specialist and the writer start and finish.
                self.total = Some(self.done + 2 * (agents.len() as u64 + 1));
                let why = if reasoning.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", crate::util::cut_chars(reasoning, 300))
                };
                format!("Plan: {}, then the writer{why}", agents.join(", "))
            }
            Step::AgentStarted {
                agent,
                model,
                writer: true,
            } => format!("{agent} is writing the deliverable ({model})"),
            Step::AgentStarted { agent, model, .. } => format!("{agent} started ({model})"),
            Step::AgentFinished { agent, chars } => {
                format!("{agent} finished ({chars} characters)")
            }
            Step::AgentFailed { agent, message } => {
                format!("{agent} failed: {}", crate::util::cut_chars(message, 300))
            }
        };
        if let Some(total) = &mut self.total {
            *total = (*total).max(self.done);
        }
        (self.done, self.total, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::events::Usage;

    #[test]
    fn progress_counts_up_and_learns_its_total_from_the_plan() {
        let mut p = ProgressCounter::default();
        let (n, total, msg) = p.step(&Step::Planned {
            agents: vec!["researcher".into(), "analyst".into()],
            reasoning: "two views".into(),
        });
        assert_eq!((n, total), (1, Some(7)));
        assert_eq!(
            msg,
            "Plan: researcher, analyst, then the writer (two views)"
        );
        let (n, total, msg) = p.step(&Step::AgentStarted {
            agent: "researcher".into(),
            model: "m".into(),
            writer: false,
        });
        assert_eq!(
            (n, total, msg.as_str()),
            (2, Some(7), "researcher started (m)")
        );
        for _ in 0..10 {
            let (n, total, _) = p.step(&Step::AgentFinished {
                agent: "x".into(),
                chars: 1,
            });
            assert!(total.unwrap() >= n);
        }
    }

    #[test]
    fn a_failed_run_is_an_error_result_with_its_reason() {
        let outcome = Outcome {
            run_id: "0".repeat(32),
            status: RunStatus::Failed,
            task: "t".into(),
            deliverable: String::new(),
            usage: Some(Usage {
                input_tokens: 3,
                output_tokens: 4,
            }),
            cost_usd: None,
            elapsed_ms: Some(5),
            error: Some("writer: upstream 500".into()),
        };
        let r = run_result(&outcome, false);
        assert_eq!(r["isError"], true);
        assert!(r["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("writer: upstream 500"));
        assert_eq!(r["structuredContent"]["status"], "failed");
        assert_eq!(r["structuredContent"]["usage"]["output_tokens"], 4);
        assert!(r["structuredContent"]["cost_usd"].is_null());
        let r = run_result(&outcome, true);
        assert_eq!(r["structuredContent"]["error"], "writer: upstream 500");
    }

    #[test]
    fn get_run_arguments_name_the_field() {
        let args = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(
            run_id_argument(&args(json!({}))).unwrap_err().field,
            "run_id"
        );
        assert_eq!(
            run_id_argument(&args(json!({"run_id": 5})))
                .unwrap_err()
                .field,
            "run_id"
        );
        assert_eq!(
            run_id_argument(&args(json!({"run_id": "abc"})))
                .unwrap_err()
                .field,
            "run_id"
        );
        assert_eq!(
            run_id_argument(&args(json!({"run_id": "a".repeat(32), "x": 1})))
                .unwrap_err()
                .field,
            "x"
        );
        assert_eq!(
            run_id_argument(&args(json!({"run_id": "a".repeat(32)}))).unwrap(),
            "a".repeat(32)
        );
    }
}
