//! HTTP Basic auth: header decoding and a constant-time check of user and password.

use crate::config::auth::Credentials;
use crate::secret::Secret;
use crate::util::base64_decode;

/// True when the `Authorization` header carries exactly the configured credentials.
/// User and password are both compared in full, in time that depends only on the
/// configured values' lengths, so a wrong user and a wrong password look alike.
pub fn check(header: Option<&[u8]>, creds: &Credentials) -> bool {
    let decoded = header.and_then(decode_basic);
    // Compare even when decoding failed, so a malformed header takes the same time;
    // then fail closed whatever the configured values are.
    let (user, pass) = decoded
        .as_ref()
        .map_or((&[][..], &[][..]), |(u, p)| (&u[..], &p[..]));
    let user_ok = ct_eq(user, creds.user.as_bytes());
    let pass_ok = ct_eq(pass, creds.pass.expose().as_bytes());
    decoded.is_some() & user_ok & pass_ok
}

/// True when the `Authorization` header is `Bearer <key>` with one of `keys`. Every
/// key is compared in full, whichever matches, so the time says nothing about which
/// key (or how much of one) was right.
pub fn check_bearer(header: Option<&[u8]>, keys: &[Secret]) -> bool {
    matching_key(bearer_token(header), keys).is_some()
}

/// Which configured credential a request proved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    /// `MESH_USER` and `MESH_PASS` over Basic auth.
    Owner,
    /// The `MESH_API_KEYS` entry at this index, as a bearer token or as the Basic
    /// password (with any user name: how a browser signs in with a key).
    Key(usize),
}

/// Checks the `Authorization` header against every configured credential: Basic
/// `MESH_USER:MESH_PASS`, `Bearer <key>`, or Basic with any user name and a key as the
/// password. Every comparison runs in full whatever matched, so the time depends only
/// on the configured values.
pub fn authenticate(
    header: Option<&[u8]>,
    creds: Option<&Credentials>,
    keys: &[Secret],
) -> Option<Principal> {
    let owner = creds.is_some_and(|c| check(header, c));
    let bearer = matching_key(bearer_token(header), keys);
    let decoded = header.and_then(decode_basic);
    let password = decoded.as_ref().map(|(_, pass)| &pass[..]);
    let as_password = matching_key(password, keys);
    if owner {
        Some(Principal::Owner)
    } else {
        bearer.or(as_password).map(Principal::Key)
    }
}

/// The token of `Bearer <token>`; `None` for any other shape or an empty token.
fn bearer_token(header: Option<&[u8]>) -> Option<&[u8]> {
    header
        .map(trim)
        .and_then(|h| {
            (h.len() > 7 && h[..7].eq_ignore_ascii_case(b"bearer ")).then(|| trim(&h[7..]))
        })
        .filter(|token| !token.is_empty())
}

/// The index of the key equal to `given`, comparing every key in full.
fn matching_key(given: Option<&[u8]>, keys: &[Secret]) -> Option<usize> {
    let mut found = None;
    for (i, key) in keys.iter().enumerate() {
        if ct_eq(given.unwrap_or(&[]), key.expose().as_bytes()) & given.is_some() {
            found = found.or(Some(i));
        }
    }
    found
}

/// Decodes `Basic <base64(user:pass)>`; `None` for any other shape.
pub fn decode_basic(header: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let header = trim(header);
    if header.len() < 6 || !header[..6].eq_ignore_ascii_case(b"basic ") {
        return None;
    }
    let decoded = base64_decode(trim(&header[6..]))?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    Some((decoded[..colon].to_vec(), decoded[colon + 1..].to_vec()))
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &s[start..end.max(start)]
}

/// Compares `given` with `expected` touching every byte of `expected`, whatever `given` is.
pub fn ct_eq(given: &[u8], expected: &[u8]) -> bool {
    let mut diff = (given.len() ^ expected.len()) as u64;
    for (i, e) in expected.iter().enumerate() {
        let g = given.get(i).copied().unwrap_or(0);
        diff |= u64::from(g ^ e);
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_configured_bearer_key_passes() {
        let keys = [Secret::new("key-one"), Secret::new("key-two")];
        assert!(check_bearer(Some(b"Bearer key-one"), &keys));
        assert!(check_bearer(Some(b"bearer  key-two "), &keys));
        assert!(!check_bearer(Some(b"Bearer key-three"), &keys));
        assert!(!check_bearer(Some(b"Bearer key-on"), &keys));
        assert!(!check_bearer(Some(b"Bearer "), &keys));
        assert!(!check_bearer(Some(b"Basic a2V5LW9uZQ=="), &keys));
        assert!(!check_bearer(None, &keys));
        assert!(!check_bearer(Some(b"Bearer key-one"), &[]));
    }

    #[test]
    fn a_key_works_as_bearer_or_as_the_basic_password_with_any_user() {
        let keys = [Secret::new("key-one"), Secret::new("key-two")];
        let owner = creds();
        let both = Some(&owner);
        // "anyone:key-two", "alice:s3cret:with:colons", "alice:key-three", "alice:"
        assert_eq!(
            authenticate(Some(b"Basic YW55b25lOmtleS10d28="), None, &keys),
            Some(Principal::Key(1))
        );
        assert_eq!(
            authenticate(Some(b"Bearer key-one"), both, &keys),
            Some(Principal::Key(0))
        );
        assert_eq!(
            authenticate(Some(b"Basic YWxpY2U6czNjcmV0OndpdGg6Y29sb25z"), both, &keys),
            Some(Principal::Owner)
        );
        assert_eq!(
            authenticate(Some(b"Basic YWxpY2U6a2V5LXRocmVl"), both, &keys),
            None
        );
        assert_eq!(authenticate(Some(b"Basic YWxpY2U6"), None, &keys), None);
        assert_eq!(authenticate(Some(b"Bearer "), None, &keys), None);
        assert_eq!(authenticate(None, both, &keys), None);
        // The owner's password is not a key, and a key is not the owner's password.
        assert_eq!(
            authenticate(Some(b"Bearer s3cret:with:colons"), both, &keys),
            None
        );
        assert_eq!(authenticate(Some(b"Bearer key-one"), both, &[]), None);
    }

    fn creds() -> Credentials {
        Credentials {
            user: "alice".into(),
            pass: Secret::new("s3cret:with:colons"),
        }
    }

    #[test]
    fn only_the_exact_credentials_pass() {
        // "alice:s3cret:with:colons" — the password may contain colons.
        assert!(check(
            Some(b"Basic YWxpY2U6czNjcmV0OndpdGg6Y29sb25z"),
            &creds()
        ));
        assert!(check(
            Some(b"basic   YWxpY2U6czNjcmV0OndpdGg6Y29sb25z "),
            &creds()
        ));
        // "alice:wrong", "bob:s3cret:with:colons", "alice:", garbage, missing
        assert!(!check(Some(b"Basic YWxpY2U6d3Jvbmc="), &creds()));
        assert!(!check(
            Some(b"Basic Ym9iOnMzY3JldDp3aXRoOmNvbG9ucw=="),
            &creds()
        ));
        assert!(!check(Some(b"Basic YWxpY2U6"), &creds()));
        assert!(!check(Some(b"Bearer abc"), &creds()));
        assert!(!check(Some(b"Basic !!!"), &creds()));
        assert!(!check(None, &creds()));
        // Even with empty configured credentials, a missing or broken header fails.
        let empty = Credentials {
            user: String::new(),
            pass: Secret::new(""),
        };
        assert!(!check(None, &empty));
        assert!(!check(Some(b"Basic !!!"), &empty));
        assert!(check(Some(b"Basic Og=="), &empty));
    }

    #[test]
    fn ct_eq_compares_whole_values() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"ab", b"abc"));
        assert!(!ct_eq(b"abcd", b"abc"));
        assert!(!ct_eq(b"", b"a"));
        assert!(ct_eq(b"", b""));
    }
}
