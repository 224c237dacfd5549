//! A run's conversation as data: the earlier turns (task and deliverable of each
//! ancestor run) that a follow-up carries in its frozen config. Bounding it and
//! building the history block of the prompts is the pipeline's (`pipeline::conversation`).

use serde::{Deserialize, Serialize};

/// One earlier turn: what was asked and what the writer delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Turn {
    pub task: String,
    pub output: String,
}

/// The conversation a run continues. Plain data, so any store that keeps the run's
/// config keeps it too.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    /// The run this one follows up, when it came from `POST /api/run` with `parent`.
    pub parent: Option<String>,
    /// The last ancestor run ids (at most `pipeline::conversation::MAX_ANCESTORS`),
    /// oldest first, not including this run. Kept even when the ancestors are
    /// evicted, so the thread can still be shown.
    pub ancestors: Vec<String>,
    /// How many older ancestors `ancestors` leaves out (a long thread's footprint
    /// stays bounded). Absent from configs stored before it existed.
    #[serde(default)]
    pub ancestors_omitted: usize,
    /// The earlier turns within `pipeline::conversation::MAX_HISTORY_CHARS`, oldest first.
    pub turns: Vec<Turn>,
    /// How many older turns were left out to respect the bound.
    pub omitted: usize,
}
