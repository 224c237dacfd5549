//! The kinds of failure a call can end with: retry decisions and `error` events read the kind, never a message.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    Auth,
    RateLimit,
    Timeout,
    Upstream,
    BadResponse,
    Network,
    Cancelled,
    Config,
    /// The run's budget stopped the call (SPEC §11).
    Budget,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Auth => "auth",
            ErrorKind::RateLimit => "rate_limit",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Upstream => "upstream",
            ErrorKind::BadResponse => "bad_response",
            ErrorKind::Network => "network",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Config => "config",
            ErrorKind::Budget => "budget",
        }
    }
}
