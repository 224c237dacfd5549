//! The run store seam: one trait for creating, finding, listing and cancelling runs,
//! with the in-memory store behind it (and room for a shared one). The HTTP layer and
//! the CLI see only [`RunStore`]; the pipeline sees only its
//! [`RunContext`](crate::model::run_context::RunContext).

pub mod memory;
pub mod redis;
pub mod run;
pub mod seam;
pub mod settings;

pub use memory::MemoryStore;
pub use run::{
    AgentSnapshot, EventRef, LogPoll, RunHandle, RunSnapshot, RunSummary, SubscribeError,
    Subscription, ThreadEntry, MAX_SUBSCRIBERS,
};
pub use seam::{
    Approval, BoxFuture, CancelOutcome, CreateError, Created, RunStore, StoreError, StoreHealth,
    StoreLimits, MAX_RETAINED_RUNS,
};
