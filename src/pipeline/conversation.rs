//! A run's conversation: the earlier turns (task and deliverable of each ancestor run)
//! that a follow-up carries in its frozen config, bounded so prompts stay small, and
//! the history block every agent's prompt starts with.

use crate::model::conversation::{Conversation, Turn};

/// At most this many characters of earlier turns (tasks and deliverables together)
/// reach the prompts. Three or four long deliverables fit; a long thread drops its
/// oldest turns first, so the most recent context, which a follow-up usually refers
/// to, is always kept.
pub const MAX_HISTORY_CHARS: usize = 24_000;

/// A run keeps at most this many ancestor ids (the newest), and a count of the rest:
/// a thread thousands of turns deep costs each run no more than a short one.
pub const MAX_ANCESTORS: usize = 50;

impl Conversation {
    /// The conversation of a follow-up to `parent_id`, whose own conversation was
    /// `parent` and which asked `task` and delivered `output`.
    pub fn follow_up(parent_id: &str, parent: &Conversation, task: &str, output: &str) -> Self {
        let mut ancestors = parent.ancestors.clone();
        ancestors.push(parent_id.to_string());
        let extra = ancestors.len().saturating_sub(MAX_ANCESTORS);
        ancestors.drain(..extra);
        let mut turns = parent.turns.clone();
        turns.push(Turn {
            task: task.to_string(),
            output: output.to_string(),
        });
        let mut conversation = Conversation::bounded(
            Some(parent_id.to_string()),
            ancestors,
            turns,
            parent.omitted,
        );
        conversation.ancestors_omitted = parent.ancestors_omitted + extra;
        conversation
    }

    /// Turns from outside the store (a chat client's `messages`), oldest first.
    pub fn from_turns(turns: Vec<Turn>) -> Self {
        Conversation::bounded(None, Vec::new(), turns, 0)
    }

    fn bounded(
        parent: Option<String>,
        ancestors: Vec<String>,
        mut turns: Vec<Turn>,
        mut omitted: usize,
    ) -> Self {
        let size = |t: &Turn| t.task.chars().count() + t.output.chars().count();
        let mut total: usize = turns.iter().map(size).sum();
        while total > MAX_HISTORY_CHARS && turns.len() > 1 {
            total -= size(&turns.remove(0));
            omitted += 1;
        }
        if let Some(only) = turns.first_mut() {
            if total > MAX_HISTORY_CHARS {
                // One turn alone is over the bound: keep its task and the start of its
                // deliverable (where a writer puts its summary).
                let room = MAX_HISTORY_CHARS.saturating_sub(only.task.chars().count());
                let cut: String = only.output.chars().take(room).collect();
                only.output = format!("{cut}…");
            }
        }
        Conversation {
            parent,
            ancestors,
            ancestors_omitted: 0,
            turns,
            omitted,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.turns.is_empty()
    }

    /// The thread this run belongs to: ancestor ids, oldest first, then `own_id`.
    pub fn thread(&self, own_id: &str) -> Vec<String> {
        let mut ids = self.ancestors.clone();
        ids.push(own_id.to_string());
        ids
    }

    /// The block put before an agent's message, or `None` without earlier turns.
    pub fn history_block(&self) -> Option<String> {
        if self.turns.is_empty() {
            return None;
        }
        let mut out =
            String::from("This task continues a conversation. The earlier turns, oldest first:\n");
        if self.omitted > 0 {
            out.push_str(&format!(
                "\n({} older turn(s) left out to keep the history within {MAX_HISTORY_CHARS} characters.)\n",
                self.omitted
            ));
        }
        for (i, t) in self.turns.iter().enumerate() {
            let output = if t.output.is_empty() {
                "(no deliverable)"
            } else {
                &t.output
            };
            out.push_str(&format!(
                "\n--- Turn {} ---\nTask:\n{}\n\nDeliverable:\n{output}\n",
                i + 1 + self.omitted,
                t.task
            ));
        }
        out.push_str("\n--- The current task follows ---\n\n");
        Some(out)
    }

    /// `message` with the history block before it (unchanged without earlier turns).
    pub fn with_history<'a>(&self, message: &'a str) -> std::borrow::Cow<'a, str> {
        match self.history_block() {
            None => std::borrow::Cow::Borrowed(message),
            Some(mut block) => {
                block.push_str(message);
                std::borrow::Cow::Owned(block)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(task: &str, output_chars: usize) -> Turn {
        Turn {
            task: task.to_string(),
            output: "o".repeat(output_chars),
        }
    }

    #[test]
    fn a_follow_up_adds_the_parent_turn_and_its_id() {
        let first = Conversation::default();
        let second = Conversation::follow_up("a", &first, "Q1", "A1");
        let third = Conversation::follow_up("b", &second, "Q2", "A2");
        assert_eq!(third.parent.as_deref(), Some("b"));
        assert_eq!(third.ancestors, ["a", "b"]);
        assert_eq!(third.thread("c"), ["a", "b", "c"]);
        assert_eq!(
            third.turns,
            [
                Turn {
                    task: "Q1".into(),
                    output: "A1".into()
                },
                Turn {
                    task: "Q2".into(),
                    output: "A2".into()
                }
            ]
        );
        let block = third.history_block().unwrap();
        assert!(block.find("Q1").unwrap() < block.find("A1").unwrap());
        assert!(block.find("A1").unwrap() < block.find("Q2").unwrap());
        assert!(!block.contains("left out"));
        assert_eq!(third.with_history("now"), format!("{block}now"));
        assert_eq!(Conversation::default().with_history("now"), "now");
    }

    #[test]
    fn the_oldest_turns_are_cut_first_with_a_note() {
        let turns = vec![
            turn("old", 10_000),
            turn("mid", 10_000),
            turn("new", 10_000),
        ];
        let c = Conversation::from_turns(turns);
        assert_eq!(c.omitted, 1);
        assert_eq!(
            c.turns.iter().map(|t| t.task.as_str()).collect::<Vec<_>>(),
            ["mid", "new"]
        );
        let block = c.history_block().unwrap();
        assert!(block.contains("1 older turn(s) left out"), "{block}");
        assert!(block.contains("--- Turn 2 ---") && block.contains("--- Turn 3 ---"));
        // The count carries on down the thread.
        let next = Conversation::follow_up("x", &c, "newer", "y");
        assert_eq!(next.omitted, 1);
        let next = Conversation::follow_up("z", &next, "newest", &"w".repeat(9_000));
        assert_eq!(next.omitted, 2);
    }

    #[test]
    fn one_turn_over_the_bound_is_cut_to_fit() {
        let c = Conversation::from_turns(vec![turn("big", 50_000)]);
        assert_eq!(c.turns.len(), 1);
        let chars: usize = c
            .turns
            .iter()
            .map(|t| t.task.chars().count() + t.output.chars().count())
            .sum();
        assert!(chars <= MAX_HISTORY_CHARS + 1, "{chars}");
        assert!(c.turns[0].output.ends_with('…'));
    }

    #[test]
    fn it_round_trips_through_json() {
        let c = Conversation::follow_up("a", &Conversation::default(), "Q", "A");
        let text = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<Conversation>(&text).unwrap(), c);
    }

    #[test]
    fn a_deep_thread_keeps_its_last_ancestors_and_counts_the_rest() {
        let mut c = Conversation::default();
        for i in 0..MAX_ANCESTORS + 7 {
            c = Conversation::follow_up(&format!("r{i}"), &c, "q", "a");
        }
        assert_eq!(c.ancestors.len(), MAX_ANCESTORS);
        assert_eq!(c.ancestors_omitted, 7);
        assert_eq!(c.ancestors[0], "r7", "the oldest kept");
        assert_eq!(
            c.ancestors[MAX_ANCESTORS - 1],
            format!("r{}", MAX_ANCESTORS + 6)
        );
        // A config stored before the count existed reads as none left out.
        let old = r#"{"parent":null,"ancestors":["a"],"turns":[],"omitted":0}"#;
        let read: Conversation = serde_json::from_str(old).unwrap();
        assert_eq!((read.ancestors.len(), read.ancestors_omitted), (1, 0));
    }
}
