//! One run as this process holds it: its frozen config and one lock over its event
//! log ([`log`]), the snapshot folded from its events ([`snapshot`]), the readers
//! waiting for the next event ([`subscription`]) and its lifecycle (cancel, the
//! disconnect timer, the ending: [`lifecycle`]). Every store keeps its runs as
//! `Run`s (the memory store as the only copy, a shared store as this instance's copy
//! of the stream) and hands them out as narrow [`RunHandle`]s.

pub mod handle;
mod lifecycle;
pub mod log;
pub mod readers;
pub mod snapshot;
mod state;
#[cfg(test)]
mod stored_config_tests;
pub mod subscription;
#[cfg(test)]
pub(crate) mod test_support;

pub use handle::RunHandle;
pub use log::EventRef;
pub use readers::{SubscribeError, MAX_SUBSCRIBERS};
pub use snapshot::{AgentSnapshot, RunSnapshot, RunSummary, ThreadEntry};
pub use state::{Run, RunOwner, COPY_LAG_BOUND};
pub use subscription::{LogPoll, Subscription};
