//! Dependency edges of a plan that the graph left out, with the reason (the `plan` event's `dropped_after`).

use serde::{Deserialize, Serialize};

/// Why an edge was left out of the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// One of the two names is not a specialist of the roster.
    Unknown,
    /// Both are specialists, but one is not on this run's team.
    NotInTeam,
    /// An agent named as its own dependency.
    SelfDependency,
    /// Keeping it would close a cycle with edges kept before it.
    Cycle,
    /// Past `pipeline::dependencies::MAX_DEPENDENCIES`.
    TooMany,
}

/// An edge `agent` after `after` that the graph does not keep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DroppedDependency {
    pub agent: String,
    pub after: String,
    pub reason: DropReason,
}
