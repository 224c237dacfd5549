//! The run-lifecycle and follow-up scenarios (tests/scenarios/) on the Redis store: each
//! scenario gets a `redis-server` of its own (Debian's package, on a free port, nothing
//! saved) and two agent-mesh instances on it with `MESH_REDIS_URL`; runs start on one
//! and are watched through the other.
//!
//! One redis-server per scenario rather than one per test binary with a database
//! number each: measured, the suite takes the same time either way (about 20 s on the
//! 2-core machine; a redis-server starts in about 50 ms, a scenario takes seconds),
//! no state can leak between scenarios, and the server is killed with its scenario,
//! where one shared through a `static` is never dropped and outlives the test
//! process.

mod support;

#[path = "scenarios/run_store.rs"]
mod run_store;

#[path = "scenarios/follow_ups.rs"]
mod follow_ups;

use support::instances::Instances;

/// Two instances on a fresh Redis, for one scenario.
fn instances(env: &[(&str, &str)]) -> Instances {
    Instances::redis(env)
}
