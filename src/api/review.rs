//! `POST /api/runs/{id}/plan`: a reviewer approves the plan of a run paused for
//! review (`"review": true`), as it is (`{}`) or edited (`agents`, `tasks`, `after`,
//! validated by [`plan_edit`](super::plan_edit)). The approved plan goes to the
//! run's pipeline through the store, which then logs it as a second `plan` event
//! with `source` `review`.

use super::{find_run, plan_edit, store_unavailable};
use crate::api::state::AppState;
use crate::http::body::{json, Body};
use crate::http::error::ApiError;
use crate::model::run_config::ReviewConfig;
use crate::store::{Approval, Created};
use hyper::{HeaderMap, Response, StatusCode};
use serde_json::json;

/// The review settings a run request freezes into its config (`review`), or none.
pub(crate) fn config_of(
    state: &AppState,
    req: &super::run_request::RunRequest,
) -> Option<ReviewConfig> {
    req.review.then_some(ReviewConfig {
        timeout: state.pipeline.review_timeout,
    })
}

pub async fn approve_plan(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
    body: &[u8],
) -> Result<Response<Body>, ApiError> {
    // An empty body approves as is; anything else must say it is JSON.
    if !body.iter().all(u8::is_ascii_whitespace) {
        super::require_json(headers)?;
    }
    let run = find_run(state, id).await?;
    // A copy of another instance's run may not have the pause (or its end) yet.
    run.catch_up(|r| r.is_awaiting_review() || r.is_finished())
        .await;
    if !run.is_awaiting_review() {
        return Err(not_awaiting(&run));
    }
    let Some(current) = run.snapshot().plan else {
        return Err(not_awaiting(&run));
    };
    let specialists: Vec<&str> = run
        .config()
        .specialists()
        .map(|a| a.name.as_str())
        .collect();
    let plan = plan_edit::apply_plan_edits(body, &specialists, &current).map_err(|e| {
        ApiError::BadRequest {
            message: e.message,
            field: Some(e.field),
        }
    })?;
    let mut attempts = 0;
    let resumed = loop {
        attempts += 1;
        let approval = state
            .store
            .approve(id, &plan)
            .await
            .map_err(store_unavailable)?;
        break match approval {
            Approval::NotAwaiting => return Err(not_awaiting(&run)),
            Approval::Delivered => true,
            // Sent on to the instance running the run: answered once its copy here
            // shows the approved plan. An instance that died (its lease not lapsed yet)
            // never answers: sent again, the lease lapsed, the run is taken over here.
            // Else 202 (that instance checks the pause itself).
            Approval::Sent => {
                if run.catch_up(|r| !r.is_awaiting_review()).await {
                    true
                } else if attempts < SEND_ATTEMPTS && run.is_awaiting_review() {
                    continue;
                } else {
                    false
                }
            }
            // The instance that paused it is gone: the run goes on here.
            Approval::Adopted(created) => {
                let Created { run, context } = *created;
                crate::pipeline::spawn_resumed(context, state.providers.clone(), current);
                if !run.approve(plan.clone()) {
                    return Err(not_awaiting(&run));
                }
                true
            }
        };
    };
    crate::log_info!("run {id}: plan approved ({} agents)", plan.agents.len());
    let (status, word) = if resumed {
        (StatusCode::OK, "approved")
    } else {
        (StatusCode::ACCEPTED, "approving")
    };
    Ok(json(status, &json!({"status": word, "plan": plan})))
}

/// An approval sent on to another instance is sent at most this many times, 2 s
/// apart (a dead instance's 3 s lease lapses meanwhile).
const SEND_ATTEMPTS: u32 = 3;

fn not_awaiting(run: &crate::store::RunHandle) -> ApiError {
    let id = run.id();
    ApiError::NotAwaitingReview(if run.is_finished() {
        format!(
            "run {id} has finished ({}): there is no plan to approve",
            run.status().as_str()
        )
    } else if run.config().review.is_none() {
        format!("run {id} was not started with \"review\": true; its plan needs no approval")
    } else {
        format!(
            "run {id} is not awaiting review (its plan was already approved, or is not made yet)"
        )
    })
}
