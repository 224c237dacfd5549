//! Character-safe cutting of text.

/// The first `max` characters (Unicode scalar values) of `s`.
pub fn cut_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}
