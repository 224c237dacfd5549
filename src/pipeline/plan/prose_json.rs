//! Finding the JSON object a model meant in its prose reply: ```` ```json ```` fences
//! first, then the whole reply, then balanced `{...}` spans from a linear scan, within
//! a size cap and a parse budget so no reply can make the search slow. What the object
//! must hold is the caller's business (see `plan`).

use serde_json::{Map, Value};
use std::collections::HashMap;

/// Longer replies are cut before scanning so a runaway model cannot make planning slow.
pub const MAX_REPLY_BYTES: usize = 256 * 1024;

/// Each serde_json attempt costs up to the candidate's length, so the attempts are
/// counted rather than the candidates: prose full of `{...}` cannot multiply the work.
pub const MAX_PARSE_ATTEMPTS: usize = 64;

/// What a scan found.
pub struct Scan<T> {
    /// The first candidate object that `accept` took.
    pub accepted: Option<T>,
    /// Whether any candidate parsed as a JSON object at all.
    pub saw_object: bool,
}

/// Offers `accept` every candidate object in `reply`, in order, until it takes one.
///
/// Candidates are tried in order: fenced blocks (```` ```json ```` or bare ```` ``` ````),
/// the whole trimmed reply, then balanced `{...}` spans found by a linear scan. Objects
/// nested inside a candidate that parsed are part of its values, not candidates of
/// their own. The scan stops early when the parse budget is spent.
pub fn first_object<T>(
    reply: &str,
    accept: impl FnMut(&Map<String, Value>) -> Option<T>,
) -> Scan<T> {
    let text = truncate(reply, MAX_REPLY_BYTES);
    let mut scanner = Scanner {
        accept,
        attempts_left: MAX_PARSE_ATTEMPTS,
        seen: HashMap::new(),
        saw_object: false,
    };
    let accepted = scanner.scan(text);
    Scan {
        accepted,
        saw_object: scanner.saw_object,
    }
}

enum Step<T> {
    /// Taken, or the budget is spent (`None`): the scan ends.
    Done(Option<T>),
    /// A JSON object the caller did not take.
    Parsed,
    /// Not a JSON object.
    Unparsed,
}

struct Scanner<F> {
    accept: F,
    attempts_left: usize,
    // Span -> whether it parsed, so the later stages neither pay twice for a span nor
    // look inside one that parsed.
    seen: HashMap<(usize, usize), bool>,
    saw_object: bool,
}

impl<T, F: FnMut(&Map<String, Value>) -> Option<T>> Scanner<F> {
    fn scan(&mut self, text: &str) -> Option<T> {
        for (start, end) in fenced_blocks(text) {
            if let Step::Done(found) = self.try_span(text, trim_range(text, start, end)) {
                return found;
            }
        }

        let whole = trim_range(text, 0, text.len());
        if text[whole.0..whole.1].starts_with('{') {
            if let Step::Done(found) = self.try_span(text, whole) {
                return found;
            }
        }

        // The second pass ignores string state: a stray `"` in prose between two braces
        // would otherwise swallow the real object into a never-ending "string".
        for track_strings in [true, false] {
            let mut skip_until = 0;
            for (start, end) in balanced_spans(text, track_strings) {
                if start < skip_until {
                    // Nested inside an object that parsed: part of a value, not a new candidate.
                    continue;
                }
                if !opens_with_key(&text[start..end]) {
                    // Cannot be a non-empty JSON object; not worth a parse attempt.
                    continue;
                }
                match self.try_span(text, (start, end)) {
                    Step::Done(found) => return found,
                    Step::Parsed => skip_until = end,
                    Step::Unparsed => {}
                }
            }
        }
        None
    }

    fn try_span(&mut self, text: &str, span: (usize, usize)) -> Step<T> {
        if let Some(&parsed) = self.seen.get(&span) {
            return if parsed { Step::Parsed } else { Step::Unparsed };
        }
        if self.attempts_left == 0 {
            return Step::Done(None);
        }
        self.attempts_left -= 1;
        let step = self.judge(&text[span.0..span.1]);
        if let Step::Parsed | Step::Unparsed = step {
            self.seen.insert(span, matches!(step, Step::Parsed));
        }
        step
    }

    fn judge(&mut self, candidate: &str) -> Step<T> {
        let Ok(Value::Object(map)) = serde_json::from_str::<Value>(candidate) else {
            return Step::Unparsed;
        };
        self.saw_object = true;
        match (self.accept)(&map) {
            Some(found) => Step::Done(Some(found)),
            None => Step::Parsed,
        }
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn trim_range(text: &str, start: usize, end: usize) -> (usize, usize) {
    let slice = &text[start..end];
    let lead = slice.len() - slice.trim_start().len();
    let kept = slice.trim().len();
    (start + lead, start + lead + kept)
}

/// Byte ranges of the bodies of ```` ```json ```` and bare ```` ``` ```` fences. A fence
/// left open (a reply cut off mid-answer) runs to the end of the text. Fences in other
/// languages are stepped over so their closing ```` ``` ```` is not taken for an opening.
fn fenced_blocks(text: &str) -> Vec<(usize, usize)> {
    let mut blocks = Vec::new();
    let mut pos = 0;
    while let Some(found) = text[pos..].find("```") {
        let info_start = pos + found + 3;
        let after = &text[info_start..];
        let info_len = after
            .find(|c: char| c.is_whitespace() || c == '{')
            .unwrap_or(after.len());
        let info = after[..info_len].trim_start_matches('`');
        let body_start = info_start + info_len;
        let (body_end, next) = match text[body_start..].find("```") {
            Some(close) => (body_start + close, body_start + close + 3),
            None => (text.len(), text.len()),
        };
        let is_json = info.is_empty()
            || info
                .get(..4)
                .is_some_and(|head| head.eq_ignore_ascii_case("json"));
        if is_json {
            blocks.push((body_start, body_end));
        }
        pos = next;
    }
    blocks
}

/// Every balanced `{...}` span, sorted by start, found in one forward pass with a stack
/// of open braces: O(n) however the braces are arranged, and an unclosed stray `{` in
/// prose only leaves an entry on the stack instead of hiding the object after it.
///
/// String state is tracked only inside an open brace, so apostrophes and quotes in the
/// prose before the object cannot flip it. A raw newline ends a string because JSON
/// strings cannot contain one, which limits the damage a stray quote can do to one line.
/// Offsets are those of ASCII bytes, hence always char boundaries.
fn balanced_spans(text: &str, track_strings: bool) -> Vec<(usize, usize)> {
    let mut open: Vec<usize> = Vec::new();
    let mut spans = Vec::new();
    let mut in_string = false;
    let mut escaped = false;
    for (i, &b) in text.as_bytes().iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' || b == b'\n' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'{' => open.push(i),
            b'}' => {
                if let Some(start) = open.pop() {
                    spans.push((start, i + 1));
                }
            }
            b'"' if track_strings && !open.is_empty() => in_string = true,
            _ => {}
        }
    }
    spans.sort_unstable();
    spans
}

/// A plan is a non-empty object, so its first token after `{` must be a key's quote.
/// Skipping `{}` and `{not json}` here keeps them from spending parse attempts.
fn opens_with_key(span: &str) -> bool {
    span.get(1..)
        .map(|rest| rest.trim_start_matches([' ', '\t', '\n', '\r']))
        .is_some_and(|rest| rest.starts_with('"'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every object offered, in order, until one has the key `want`.
    fn offered(reply: &str, want: &str) -> (Vec<String>, Scan<String>) {
        let mut seen = Vec::new();
        let scan = first_object(reply, |map| {
            seen.push(Value::Object(map.clone()).to_string());
            map.contains_key(want).then(|| want.to_string())
        });
        (seen, scan)
    }

    #[test]
    fn fences_come_first_then_the_whole_reply_then_prose_spans() {
        let reply = "{\"a\":1} and\n```json\n{\"b\":2}\n```";
        let (seen, scan) = offered(reply, "none");
        assert_eq!(seen, [r#"{"b":2}"#, r#"{"a":1}"#]);
        assert!(scan.accepted.is_none() && scan.saw_object);
        let (seen, _) = offered(r#"{"c": {"d": 1}}"#, "none");
        assert_eq!(
            seen,
            [r#"{"c":{"d":1}}"#],
            "a nested object is part of a value"
        );
    }

    #[test]
    fn the_first_accepted_object_ends_the_scan() {
        let (seen, scan) = offered(r#"x {"a":1} y {"b":2} z {"b":3}"#, "b");
        assert_eq!(seen.len(), 2);
        assert_eq!(scan.accepted.as_deref(), Some("b"));
    }

    #[test]
    fn no_object_at_all_is_told_apart_from_objects_not_taken() {
        let (seen, scan) = offered("no braces [1, 2] {} {not json}", "a");
        assert!(seen.is_empty() && !scan.saw_object && scan.accepted.is_none());
    }

    #[test]
    fn the_parse_budget_bounds_the_attempts() {
        let reply = r#"{"x": 1 "#.repeat(10) + &r#"{"a": 1 }"#.repeat(MAX_PARSE_ATTEMPTS * 2);
        let mut attempts = 0;
        let scan = first_object(&reply, |_| {
            attempts += 1;
            None::<()>
        });
        assert!(attempts <= MAX_PARSE_ATTEMPTS, "{attempts}");
        assert!(scan.saw_object);
    }

    #[test]
    fn fenced_blocks_step_over_other_languages_and_run_to_the_end_when_open() {
        let text = "```rust\nfn x() {}\n```\n```JSON{\"a\":1}```\n```\n{\"b\":2}";
        let bodies: Vec<&str> = fenced_blocks(text)
            .into_iter()
            .map(|(s, e)| text[s..e].trim())
            .collect();
        assert_eq!(bodies, [r#"{"a":1}"#, r#"{"b":2}"#]);
    }

    #[test]
    fn balanced_spans_ignore_strings_only_when_asked() {
        let text = r#"{"k": "}"}"#;
        assert_eq!(balanced_spans(text, true), [(0, text.len())]);
        assert_eq!(balanced_spans(text, false), [(0, 8)]);
        assert!(opens_with_key(" {\n \"k\": 1}".trim()));
        assert!(!opens_with_key("{}"));
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        let s = format!("a{}", "😀".repeat(10));
        for max in 0..s.len() {
            let t = truncate(&s, max);
            assert!(t.len() <= max);
            assert!(s.starts_with(t));
        }
    }
}
