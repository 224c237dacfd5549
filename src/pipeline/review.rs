//! The pause for plan review (`review`): after its `plan` a run logs `status`
//! `awaiting_review` and waits, spending nothing, until a reviewer's plan arrives
//! through its [`RunContext`] (the store hands it over: `POST /api/runs/{id}/plan`,
//! from any instance of a shared store), the run is cancelled (which drops this
//! wait with the pipeline), or `MESH_REVIEW_TIMEOUT_SECS` passes.

use crate::model::events::{AgentState, Event, PlanEvent, StatusEvent};
use crate::model::run_config::ReviewConfig;
use crate::model::run_context::RunContext;

/// Why a review ended without an approval, for the run's final status event.
pub(crate) struct Unanswered {
    pub detail: String,
}

/// Pauses the run until its plan is approved (`announce`: log the pause; a run
/// taken over while paused has it logged already); returns the approved plan
/// (validated by whoever accepted the approval), or [`Unanswered`] when the timeout
/// passed.
pub(crate) async fn await_approval(
    run: &RunContext,
    review: ReviewConfig,
    announce: bool,
) -> Result<PlanEvent, Unanswered> {
    let secs = review.timeout.as_secs();
    if announce {
        run.push(Event::Status(StatusEvent {
            agent: None,
            state: AgentState::AwaitingReview,
            detail: format!(
                "waiting for the plan to be approved or edited (POST /api/runs/{}/plan); \
                 cancelled if unanswered within {secs} s",
                run.id
            ),
        }));
    }
    tokio::time::timeout(review.timeout, run.approved_plan())
        .await
        .map_err(|_| Unanswered {
            detail: format!("the plan was not reviewed within {secs} s (MESH_REVIEW_TIMEOUT_SECS)"),
        })
}
