//! The plan review scenarios (tests/scenarios/review.rs) on the in-memory store: one
//! server, which runs, pauses, streams and takes the approval of every run.

mod support;

#[path = "scenarios/review.rs"]
mod review;

use support::instances::Instances;

/// A server on a store of its own, for one scenario.
fn instances(env: &[(&str, &str)]) -> Instances {
    Instances::memory(env)
}
