//! Turning provider stream events into typed deltas (text, tool-call fragments, usage,
//! finish) and typed errors. Pure functions over parsed SSE events, so unit tests and
//! fuzz targets call the same code.

mod anthropic;
mod fast_chunk;
mod openai;

pub use super::call::{Delta, ToolCallFragment};
pub use anthropic::AnthropicDecoder;
pub use openai::OpenAiDecoder;

use super::call::CallOutcome;
use super::error::ProviderError;
use super::sse::SseEvent;
use crate::model::error_kind::ErrorKind;

/// What one upstream event meant for the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep reading.
    More,
    /// The provider said the answer is complete.
    Finished,
}

/// A decoder for one provider wire format.
pub trait ChunkDecoder: Send {
    /// Handles one event; `emit` receives what it holds, in order: at most one piece
    /// of text, then any tool-call fragments, usage, and the finish reason.
    fn event(
        &mut self,
        event: &SseEvent,
        emit: &mut dyn FnMut(Delta<'_>),
    ) -> Result<Flow, ProviderError>;
    /// Whether the stream may end without an explicit end marker (it reported a finish reason).
    fn saw_finish(&self) -> bool;
    /// Finish reason and usage; the caller adds the tool calls it joined.
    fn outcome(&self) -> CallOutcome;
}

fn bad(message: impl Into<String>) -> ProviderError {
    ProviderError::new(ErrorKind::BadResponse, message)
}

fn upstream(message: impl Into<String>) -> ProviderError {
    ProviderError::new(ErrorKind::Upstream, message)
}

#[cfg(test)]
mod tests;
