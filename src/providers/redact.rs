//! Keeping secrets out of everything a provider sends back: error messages, and token
//! text even when an upstream echoes a key split across several chunks.

use super::call::ToolCallFragment;
use super::error::ProviderError;
use super::TokenSink;
use std::time::Duration;

pub const MASK: &str = "***";

/// Replaces every occurrence of any secret with `***`.
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), MASK);
        }
    }
    out
}

/// A sink wrapper that holds back only the tail of the text that could be the start
/// of a secret, so ordinary text passes through at once and a secret split across
/// chunks is still masked.
pub struct RedactingSink<'a> {
    inner: &'a mut dyn TokenSink,
    secrets: Vec<String>,
    pending: String,
}

impl<'a> RedactingSink<'a> {
    pub fn new(inner: &'a mut dyn TokenSink, secrets: Vec<String>) -> Self {
        RedactingSink {
            inner,
            secrets,
            pending: String::new(),
        }
    }

    /// Replaces the secrets to mask (a token was refreshed mid-call).
    pub fn set_secrets(&mut self, secrets: Vec<String>) {
        self.secrets = secrets;
    }

    /// Sends whatever is still held back (the stream ended, or failed).
    pub fn flush(&mut self) {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            self.inner.token(&rest);
        }
    }

    /// The longest suffix of `text` that is a proper prefix of a secret, in bytes.
    fn held_tail(&self, text: &str) -> usize {
        let mut longest = 0;
        for s in self.secrets.iter().filter(|s| !s.is_empty()) {
            let max = s.len().saturating_sub(1).min(text.len());
            for len in (longest + 1..=max).rev() {
                let start = text.len() - len;
                if text.is_char_boundary(start) && s.starts_with(&text[start..]) {
                    longest = len;
                    break;
                }
            }
        }
        longest
    }

    fn holds_secret(&self, text: &str) -> bool {
        self.secrets
            .iter()
            .any(|s| !s.is_empty() && text.contains(s.as_str()))
    }
}

impl TokenSink for RedactingSink<'_> {
    fn token(&mut self, text: &str) {
        // Nothing held back and nothing to mask or hold: straight through, no copy.
        if self.secrets.is_empty()
            || (self.pending.is_empty() && !self.holds_secret(text) && self.held_tail(text) == 0)
        {
            self.inner.token(text);
            return;
        }
        self.pending.push_str(text);
        if self.holds_secret(&self.pending) {
            self.pending = redact(&self.pending, &self.secrets);
        }
        let keep = self.held_tail(&self.pending);
        let cut = self.pending.len() - keep;
        if cut > 0 {
            let ready: String = self.pending.drain(..cut).collect();
            self.inner.token(&ready);
        }
    }

    /// Arguments are masked per fragment (the complete calls in the outcome are masked
    /// whole by the caller).
    fn tool_call(&mut self, fragment: &ToolCallFragment<'_>) {
        if !self.holds_secret(fragment.arguments) {
            self.inner.tool_call(fragment);
            return;
        }
        let masked = redact(fragment.arguments, &self.secrets);
        self.inner.tool_call(&ToolCallFragment {
            arguments: &masked,
            ..*fragment
        });
    }

    fn retrying(&mut self, attempt: u32, delay: Duration, error: &ProviderError) {
        self.inner.retrying(attempt, delay, error);
    }

    fn queued(&mut self, why: &str) {
        self.inner.queued(why);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Collect(Vec<String>);
    impl TokenSink for Collect {
        fn token(&mut self, text: &str) {
            self.0.push(text.to_string());
        }
        fn tool_call(&mut self, fragment: &ToolCallFragment<'_>) {
            self.0.push(format!("call:{}", fragment.arguments));
        }
        fn retrying(&mut self, _: u32, _: Duration, _: &ProviderError) {}
    }

    fn feed(pieces: &[&str], secrets: &[String]) -> Vec<String> {
        let mut c = Collect::default();
        {
            let mut r = RedactingSink::new(&mut c, secrets.to_vec());
            for p in pieces {
                r.token(p);
            }
            r.flush();
        }
        c.0
    }

    #[test]
    fn plain_text_passes_through_unchanged_and_at_once() {
        let secrets = vec!["sk-secret-123".to_string()];
        assert_eq!(feed(&["Hello ", "world"], &secrets), ["Hello ", "world"]);
    }

    #[test]
    fn a_secret_split_across_chunks_is_masked() {
        let secrets = vec!["sk-secret-123".to_string()];
        let out = feed(&["key is sk-", "secr", "et-1", "23 ok"], &secrets);
        let joined: String = out.concat();
        assert_eq!(joined, "key is *** ok");
        assert!(!joined.contains("sk-secret"));
        // A near miss is released unchanged.
        let out: String = feed(&["sk-", "secret-12", "4"], &secrets).concat();
        assert_eq!(out, "sk-secret-124");
    }

    #[test]
    fn redact_replaces_every_secret() {
        let secrets = vec!["aa11".to_string(), "bb22".to_string()];
        assert_eq!(redact("x aa11 y bb22 aa11", &secrets), "x *** y *** ***");
    }

    #[test]
    fn tool_call_arguments_are_masked() {
        let secrets = vec!["sk-secret-123".to_string()];
        let mut c = Collect::default();
        {
            let mut r = RedactingSink::new(&mut c, secrets);
            for arguments in [r#"{"key":"sk-secret-123"}"#, r#"{"q":1}"#] {
                r.tool_call(&ToolCallFragment {
                    index: 0,
                    id: None,
                    name: None,
                    arguments,
                });
            }
        }
        assert_eq!(c.0, [r#"call:{"key":"***"}"#, r#"call:{"q":1}"#]);
    }
}
