//! The short digest of an earlier specialist's output that the next specialist sees.

/// How many characters of an earlier specialist's output the next one sees (SPEC §4.2).
pub const DIGEST_CHARS: usize = 600;

/// The first `max_chars` Unicode scalar values of `text`, plus `…` when it was cut;
/// never splits a character.
pub fn digest(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => {
            let mut out = String::with_capacity(cut + 3);
            out.push_str(&text[..cut]);
            out.push('…');
            out
        }
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_unchanged() {
        assert_eq!(digest("", 600), "");
        let exactly = "x".repeat(600);
        assert_eq!(digest(&exactly, 600), exactly);
    }

    #[test]
    fn long_text_is_cut_at_600_chars_with_ellipsis() {
        let long = "y".repeat(601);
        let d = digest(&long, 600);
        assert_eq!(d.chars().count(), 601);
        assert!(d.ends_with('…'));
        assert_eq!(&d[..600], &long[..600]);
    }

    #[test]
    fn multibyte_characters_at_the_boundary_are_never_split() {
        // 599 ASCII chars, then multi-byte chars straddling the 600 boundary.
        let text = format!("{}é😀ü", "a".repeat(599));
        let d = digest(&text, 600);
        assert_eq!(d, format!("{}é…", "a".repeat(599)));
        let emoji = "😀".repeat(700);
        let d = digest(&emoji, 600);
        assert_eq!(d.chars().count(), 601);
        assert!(d.starts_with(&"😀".repeat(600)));
    }
}
