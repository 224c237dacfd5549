//! Joining streamed tool-call fragments into complete calls, robust to what real
//! servers send: arguments split anywhere, several calls in one chunk, and parallel
//! calls that all say `index: 0` (Ollama) — a different `id` starts a new call.

use super::call::{ToolCall, ToolCallFragment};

#[derive(Debug, Default)]
pub struct ToolCallAccumulator {
    calls: Vec<ToolCall>,
    /// `(fragment index, position in calls)` of the latest call with that index.
    open: Vec<(u32, usize)>,
}

impl ToolCallAccumulator {
    pub fn push(&mut self, fragment: &ToolCallFragment<'_>) {
        let id = fragment.id.filter(|id| !id.is_empty());
        let slot = self
            .open
            .iter()
            .rev()
            .find(|(index, _)| *index == fragment.index)
            .map(|(_, slot)| *slot);
        let slot = match (slot, id) {
            (Some(slot), Some(id))
                if !self.calls[slot].id.is_empty() && self.calls[slot].id != id =>
            {
                None
            }
            (slot, _) => slot,
        };
        let slot = match slot {
            Some(slot) => slot,
            None => {
                self.calls.push(ToolCall::default());
                let slot = self.calls.len() - 1;
                self.open.retain(|(index, _)| *index != fragment.index);
                self.open.push((fragment.index, slot));
                slot
            }
        };
        let call = &mut self.calls[slot];
        if let (Some(id), true) = (id, call.id.is_empty()) {
            call.id = id.to_string();
        }
        if let Some(name) = fragment.name.filter(|n| !n.is_empty()) {
            if call.name.is_empty() {
                call.name = name.to_string();
            }
        }
        call.arguments.push_str(fragment.arguments);
    }

    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// The complete calls in the order they started. A call the server sent without
    /// an id gets `call_N` (its position), so its result can still be matched to it; one
    /// without any arguments (a tool with no parameters: Anthropic then sends no
    /// `input_json_delta`) has `{}`, what it is called with, in its event and its repeat.
    pub fn finish(self) -> Vec<ToolCall> {
        let mut calls = self.calls;
        for (n, call) in calls.iter_mut().enumerate() {
            if call.id.is_empty() {
                call.id = format!("call_{n}");
            }
            if call.arguments.trim().is_empty() {
                call.arguments = "{}".to_string();
            }
        }
        calls
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frag<'a>(
        index: u32,
        id: Option<&'a str>,
        name: Option<&'a str>,
        arguments: &'a str,
    ) -> ToolCallFragment<'a> {
        ToolCallFragment {
            index,
            id,
            name,
            arguments,
        }
    }

    fn call(id: &str, name: &str, arguments: &str) -> ToolCall {
        ToolCall {
            id: id.to_string(),
            name: name.to_string(),
            arguments: arguments.to_string(),
        }
    }

    fn join(fragments: &[ToolCallFragment<'_>]) -> Vec<ToolCall> {
        let mut acc = ToolCallAccumulator::default();
        for f in fragments {
            acc.push(f);
        }
        acc.finish()
    }

    #[test]
    fn arguments_split_anywhere_join_per_index() {
        let args = r#"{"query":"rust \"sse\"","n":3}"#;
        for cut in 0..=args.len() {
            let (a, b) = args.split_at(cut);
            let calls = join(&[
                frag(0, Some("c1"), Some("search"), ""),
                frag(0, None, None, a),
                frag(0, None, None, b),
            ]);
            assert_eq!(calls, vec![call("c1", "search", args)], "cut at {cut}");
        }
    }

    #[test]
    fn parallel_calls_interleaved_by_index() {
        let calls = join(&[
            frag(0, Some("a"), Some("get"), "{\"x\""),
            frag(1, Some("b"), Some("put"), "{\"y\""),
            frag(0, None, None, ":1}"),
            frag(1, None, None, ":2}"),
        ]);
        assert_eq!(
            calls,
            vec![call("a", "get", "{\"x\":1}"), call("b", "put", "{\"y\":2}")]
        );
    }

    #[test]
    fn ollama_parallel_calls_all_at_index_zero_split_on_a_new_id() {
        let calls = join(&[
            frag(0, Some("call_a"), Some("weather"), r#"{"city":"Oslo"}"#),
            frag(0, Some("call_b"), Some("weather"), r#"{"city":"Rome"}"#),
        ]);
        assert_eq!(
            calls,
            vec![
                call("call_a", "weather", r#"{"city":"Oslo"}"#),
                call("call_b", "weather", r#"{"city":"Rome"}"#)
            ]
        );
        // Repeating the same id continues the same call.
        let calls = join(&[
            frag(0, Some("x"), Some("f"), "{"),
            frag(0, Some("x"), None, "}"),
        ]);
        assert_eq!(calls, vec![call("x", "f", "{}")]);
    }

    #[test]
    fn calls_without_ids_are_numbered() {
        let calls = join(&[frag(3, None, Some("f"), "{}"), frag(5, None, Some("g"), "")]);
        assert_eq!(
            calls,
            vec![call("call_0", "f", "{}"), call("call_1", "g", "{}")]
        );
        assert!(ToolCallAccumulator::default().is_empty());
    }
}
