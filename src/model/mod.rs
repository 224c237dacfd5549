//! The run model every layer shares, as plain typed data: events, the frozen run config and budget, agent kinds, conversation turns, error kinds and provider ids. A leaf: it imports nothing else of the crate.

pub mod agent;
pub mod budget;
pub mod conversation;
pub mod dependency;
pub mod error_kind;
pub mod events;
pub mod provider_id;
pub mod run_config;
pub mod run_context;
