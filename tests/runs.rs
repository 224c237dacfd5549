//! The run-lifecycle scenarios (tests/scenarios/run_store.rs) on the in-memory store:
//! one server, which runs, streams and answers for every run.

mod support;

#[path = "scenarios/run_store.rs"]
mod run_store;

use support::instances::Instances;

/// A server on a store of its own, for one scenario.
fn instances(env: &[(&str, &str)]) -> Instances {
    Instances::memory(env)
}
