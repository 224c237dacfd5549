//! Typed provider failures: retry decisions and `error` events read the kind, never a message.

use crate::model::error_kind::ErrorKind;
use std::fmt;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ProviderError {
    pub kind: ErrorKind,
    pub message: String,
    /// The upstream HTTP status, when there was one.
    pub status: Option<u16>,
    /// Whether trying again (before any token was relayed) may succeed.
    pub retryable: bool,
    /// The upstream's `Retry-After`, when it sent one.
    pub retry_after: Option<Duration>,
}

impl ProviderError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ProviderError {
            kind,
            message: message.into(),
            status: None,
            retryable: false,
            retry_after: None,
        }
    }

    pub fn cancelled() -> Self {
        ProviderError::new(ErrorKind::Cancelled, "the run was cancelled")
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}

impl std::error::Error for ProviderError {}
