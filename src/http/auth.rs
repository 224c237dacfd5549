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
    let given = header.map(trim).and_then(|h| {
        (h.len() > 7 && h[..7].eq_ignore_ascii_case(b"bearer ")).then(|| trim(&h[7..]))
    });
    let mut ok = false;
    for key in keys {
        ok |= ct_eq(given.unwrap_or(&[]), key.expose().as_bytes());
    }
    given.is_some_and(|g| !g.is_empty()) & ok
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
