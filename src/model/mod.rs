//! The run model every layer shares, as plain typed data: events, the frozen run config and budget, agent kinds, conversation turns, error kinds, provider ids, the trace context, and the seams the pipeline calls through (the run span, the tool box). It imports only the small utilities below it (util, clock, ids), never tracing, the store or the pipeline.

pub mod agent;
pub mod budget;
pub mod conversation;
pub mod dependency;
pub mod error_kind;
pub mod events;
pub mod provider_id;
pub mod run_config;
pub mod run_context;
pub mod tool_box;
pub mod tool_grant;
pub mod trace_context;
