//! Plan approvals on the shared store (`POST /api/runs/{id}/plan` on any instance).
//! A run paused for review lives on with its lease: the approval goes to the lease
//! holder through its control stream. When the instance that paused the run is gone
//! (stopped, restarted), a paused run is not ended like other orphans (see `lease`):
//! it waits, and the instance that takes the approval takes the lease too, adopts
//! the run (its events so far, going on at the next event number) and runs the rest
//! of its pipeline.

use super::writer::RedisSink;
use super::{keys, lease, Shared};
use crate::model::events::PlanEvent;
use crate::model::run_context::EventSink;
use crate::store::run::RunHandle;
use crate::store::seam::{Approval, CreateError, Created, RunStore, StoreError};
use std::sync::Arc;

pub(crate) async fn approve(
    shared: &Shared,
    id: &str,
    plan: &PlanEvent,
) -> Result<Approval, StoreError> {
    if let Some(run) = shared.local.get_run(id) {
        if shared.local.is_shutting_down() && run.is_awaiting_review() {
            // Its pause outlives this process; another instance takes it on.
            return Err(StoreError(SHUTTING_DOWN.to_string()));
        }
        return Ok(if run.approve(plan.clone()) {
            Approval::Delivered
        } else {
            Approval::NotAwaiting
        });
    }
    // Twice: a lease that lapses between the two commands is looked at again.
    for _ in 0..2 {
        let holder: Option<String> = shared
            .command(redis::cmd("GET").arg(keys::lease(id)))
            .await?;
        if let Some(owner) = holder {
            let plan = serde_json::to_string(plan).unwrap_or_default();
            shared
                .send_control(
                    &owner,
                    &[
                        (keys::F_KIND, keys::KIND_APPROVE),
                        (keys::F_RUN, id),
                        (keys::F_PLAN, &plan),
                    ],
                )
                .await?;
            return Ok(Approval::Sent);
        }
        let took: Option<String> = shared
            .command(
                redis::cmd("SET")
                    .arg(keys::lease(id))
                    .arg(&shared.instance)
                    .arg("NX")
                    .arg("PX")
                    .arg(lease::LEASE_TTL.as_millis() as u64),
            )
            .await?;
        if took.is_some() {
            return adopt(shared, id).await;
        }
    }
    Ok(Approval::NotAwaiting)
}

/// Makes the paused run `id`, whose lease this process has just taken, a run of
/// this process; gives the lease back when the run turns out not to be paused.
async fn adopt(shared: &Shared, id: &str) -> Result<Approval, StoreError> {
    let copy = match shared.find(id).await {
        Ok(Some(copy)) if copy.is_awaiting_review() && !copy.is_finished() => copy,
        other => {
            release(shared, id).await;
            other?;
            return Ok(Approval::NotAwaiting);
        }
    };
    shared
        .command::<()>(
            redis::cmd("HSET")
                .arg(keys::meta(id))
                .arg(keys::F_OWNER)
                .arg(&shared.instance),
        )
        .await?;
    let writer = shared.writer.clone();
    let adopted = shared.local.adopt_paused_run(&copy, |run| {
        Arc::new(RedisSink::new(run, writer)) as Arc<dyn EventSink>
    });
    let (run, context) = match adopted {
        Ok(adopted) => adopted,
        Err(e) => {
            release(shared, id).await;
            return Err(StoreError(match e {
                CreateError::ShuttingDown => "this instance is shutting down".to_string(),
                CreateError::TooManyRuns => "this instance holds too many runs".to_string(),
                CreateError::Unavailable(m) => m,
            }));
        }
    };
    crate::log_info!("run {id}: paused by an instance that stopped; taken over here");
    Ok(Approval::Adopted(Box::new(Created {
        run: RunHandle::new(run),
        context,
    })))
}

const SHUTTING_DOWN: &str =
    "the instance running this run is shutting down; approve again in a few seconds";

/// Lets go of this process's paused runs (on shutdown): their leases are given back,
/// so the next approval, on any instance, takes them over at once.
pub(crate) async fn release_paused(shared: &Shared) {
    for id in shared.local.running_ids() {
        if shared
            .local
            .get_run(&id)
            .is_some_and(|r| r.is_awaiting_review())
        {
            release(shared, &id).await;
        }
    }
}

/// Gives back a lease this process took, if it still holds it.
async fn release(shared: &Shared, id: &str) {
    const SCRIPT: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";
    let _: Result<i64, _> = shared
        .command(
            redis::cmd("EVAL")
                .arg(SCRIPT)
                .arg(1)
                .arg(keys::lease(id))
                .arg(&shared.instance),
        )
        .await;
}
