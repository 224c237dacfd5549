//! The plan review scenarios (tests/scenarios/review.rs) on the Redis store: each
//! gets a `redis-server` of its own and two instances on it; runs start (and pause)
//! on one and are streamed, approved and cancelled through the other, so every
//! approval crosses instances.

mod support;

#[path = "scenarios/review.rs"]
mod review;

use support::instances::Instances;

/// Two instances on a fresh Redis, for one scenario.
fn instances(env: &[(&str, &str)]) -> Instances {
    Instances::redis(env)
}
