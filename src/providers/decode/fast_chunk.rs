//! The borrowed fast path for the common Chat Completions chunk (text and finish
//! reason only): the per-token hot path, decoded without building a JSON tree.

use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;
use std::borrow::Cow;

/// The shape of nearly every chunk, borrowed from the event's data: the first choice's
/// `delta.content` and `finish_reason`, nothing else kept. Decoding a `Value` tree
/// instead cost one ordered map per object (a SipHash per key), an owned `String` per
/// key and value, and a `pointer()` that allocates per path segment: more than half of
/// the server's user-space time per relayed token.
#[derive(Deserialize)]
pub(super) struct FastChunk<'a> {
    #[serde(default, borrow, deserialize_with = "first_choice")]
    pub(super) choices: Option<FastChoice<'a>>,
    #[serde(default)]
    error: Option<IgnoredAny>,
    #[serde(default)]
    usage: Option<IgnoredAny>,
}

#[derive(Deserialize)]
pub(super) struct FastChoice<'a> {
    #[serde(default, borrow)]
    pub(super) delta: Option<FastDelta<'a>>,
    #[serde(default, borrow, deserialize_with = "borrowed_str")]
    pub(super) finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
pub(super) struct FastDelta<'a> {
    #[serde(default, borrow, deserialize_with = "borrowed_str")]
    pub(super) content: Option<Cow<'a, str>>,
    /// Only looked at to decline: tool-call chunks take the general path.
    #[serde(default)]
    tool_calls: Option<IgnoredAny>,
}

/// A string or null, borrowed from the input unless it holds escapes. (`#[serde(borrow)]`
/// alone borrows a bare `Cow<str>` field, not one inside an `Option`: that one was
/// always copied into a new String.)
fn borrowed_str<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    struct OrNull;
    struct Str;
    impl<'de> Visitor<'de> for OrNull {
        type Value = Option<Cow<'de, str>>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a string, or null")
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_str(Str).map(Some)
        }
    }
    impl<'de> Visitor<'de> for Str {
        type Value = Cow<'de, str>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a string")
        }
        fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Cow::Borrowed(v))
        }
        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Cow::Owned(v.to_owned()))
        }
        fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
            Ok(Cow::Owned(v))
        }
    }
    d.deserialize_option(OrNull)
}

/// `choices`: null, or an array whose first element is kept and the rest skipped.
fn first_choice<'de, D: Deserializer<'de>>(d: D) -> Result<Option<FastChoice<'de>>, D::Error> {
    struct OrNull;
    struct First;
    impl<'de> Visitor<'de> for OrNull {
        type Value = Option<FastChoice<'de>>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an array of choices, or null")
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_seq(First)
        }
    }
    impl<'de> Visitor<'de> for First {
        type Value = Option<FastChoice<'de>>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an array of choices")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let first = seq.next_element::<FastChoice<'de>>()?;
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(first)
        }
    }
    d.deserialize_option(OrNull)
}

/// The fast shape, or `None` to let the general path decide. It declines anything
/// unusual — not an object, an `error` or `usage` member, `delta.tool_calls`, a field of an unexpected
/// type, a duplicate key — so for those inputs nothing changes. Where it accepts, it
/// yields what the general path yields, with one deliberate difference: fields it does
/// not read are checked for JSON syntax only, so a chunk whose *unread* fields hold a
/// number beyond f64 or a lone surrogate escape (both valid JSON, RFC 8259 §6, §8.2)
/// is relayed instead of failing the call as unparsable.
pub(super) fn fast_chunk(data: &str) -> Option<FastChunk<'_>> {
    if !data.starts_with('{') {
        return None;
    }
    let chunk: FastChunk<'_> = serde_json::from_str(data).ok()?;
    let tool_calls = chunk
        .choices
        .as_ref()
        .and_then(|c| c.delta.as_ref())
        .is_some_and(|d| d.tool_calls.is_some());
    if chunk.error.is_some() || chunk.usage.is_some() || tool_calls {
        return None;
    }
    Some(chunk)
}
