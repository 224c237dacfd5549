//! Agent kinds: the planner, the specialists and the writer of a team.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentKind {
    Planner,
    Specialist,
    Writer,
}

impl AgentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentKind::Planner => "planner",
            AgentKind::Specialist => "specialist",
            AgentKind::Writer => "writer",
        }
    }
}
