//! Invariant: Basic-auth decoding never panics, and `check` passes only when an independent decode of the header gives exactly the configured user and password (and always passes for the canonical header of those credentials).
//!
//! Input: `user \n pass \n header-bytes`. The credentials are used as configured when
//! they are what `Config` accepts (non-empty user without `:`, non-empty password),
//! else fixed ones are used, so every input still exercises the header path.
//! Each input is checked three ways: the header bytes as sent, the header bytes as the
//! base64 payload of a well-formed `Basic` header, and `ct_eq` against plain equality.
#![no_main]

use agent_mesh::config::Credentials;
use agent_mesh::http::auth::{check, ct_eq, decode_basic};
use agent_mesh::secret::Secret;
use agent_mesh::util::base64_decode;
use libfuzzer_sys::fuzz_target;

/// Real headers are capped at 16 KiB by the server; 4 KiB covers every path.
const MAX_INPUT: usize = 4096;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Canonical RFC 4648 encoding with padding.
fn encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for group in bytes.chunks(3) {
        let b = [
            group[0],
            group.get(1).copied().unwrap_or(0),
            group.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= group.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A deliberately permissive decoder (any trailing `=` up to two, leftover bits
/// ignored): whatever a correct strict decoder accepts, this accepts with the same bytes.
fn lenient_base64(input: &[u8]) -> Option<Vec<u8>> {
    let mut body = input;
    for _ in 0..2 {
        if let [rest @ .., b'='] = body {
            body = rest;
        }
    }
    if body.len() % 4 == 1 {
        return None;
    }
    let mut bits: Vec<u8> = Vec::with_capacity(body.len() * 6);
    for &c in body {
        let v = ALPHABET.iter().position(|&a| a == c)? as u8;
        bits.extend((0..6).rev().map(|i| (v >> i) & 1));
    }
    Some(
        bits.chunks_exact(8)
            .map(|byte| byte.iter().fold(0u8, |acc, bit| (acc << 1) | bit))
            .collect(),
    )
}

/// `Basic` (any case), whitespace, base64 of `user:pass`; split at the first colon.
fn lenient_basic(header: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let header = header.trim_ascii();
    let (scheme, rest) = header.split_at_checked(5)?;
    if !scheme.eq_ignore_ascii_case(b"basic") || !rest.first()?.is_ascii_whitespace() {
        return None;
    }
    let decoded = lenient_base64(rest.trim_ascii())?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    Some((decoded[..colon].to_vec(), decoded[colon + 1..].to_vec()))
}

fn credentials(user: &[u8], pass: &[u8]) -> Credentials {
    let user = String::from_utf8_lossy(user).into_owned();
    let pass = String::from_utf8_lossy(pass).into_owned();
    if user.is_empty() || user.contains(':') || pass.is_empty() {
        return Credentials {
            user: "alice".to_string(),
            pass: Secret::new("s3cret:with:colons"),
        };
    }
    Credentials {
        user,
        pass: Secret::new(pass),
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT {
        return;
    }
    let mut parts = data.splitn(3, |&b| b == b'\n');
    let user = parts.next().unwrap_or_default();
    let pass = parts.next().unwrap_or_default();
    let header = parts.next().unwrap_or(data);
    let creds = credentials(user, pass);
    let expected = (
        creds.user.as_bytes().to_vec(),
        creds.pass.expose().as_bytes().to_vec(),
    );
    let mut pair = expected.0.clone();
    pair.push(b':');
    pair.extend_from_slice(&expected.1);

    // 1. The header exactly as a client sent it.
    let passed = check(Some(header), &creds);
    let independent = lenient_basic(header);
    if passed {
        assert_eq!(
            independent.as_ref(),
            Some(&expected),
            "check passed a header that does not carry the configured credentials"
        );
    }
    if let Some(decoded) = decode_basic(header) {
        assert_eq!(Some(decoded), independent, "decode_basic invented bytes");
    }
    if let Some(decoded) = base64_decode(header) {
        assert_eq!(
            Some(decoded),
            lenient_base64(header),
            "base64_decode invented bytes"
        );
    }
    let payload = encode(&pair);
    let canonical = format!("Basic {payload}");
    if header.len() == canonical.len()
        && header[..6].eq_ignore_ascii_case(b"basic ")
        && &header[6..] == payload.as_bytes()
    {
        assert!(
            passed,
            "a well-formed header with the credentials was refused"
        );
    }

    // 2. The header bytes as the payload of a well-formed header: passes iff they are
    // exactly `user:pass`.
    let encoded = encode(header);
    assert_eq!(base64_decode(encoded.as_bytes()).as_deref(), Some(header));
    let wrapped = format!("Basic {encoded}");
    assert_eq!(
        check(Some(wrapped.as_bytes()), &creds),
        header == pair.as_slice(),
        "check disagrees with an exact comparison of {header:?}"
    );
    let split = header
        .iter()
        .position(|&b| b == b':')
        .map(|i| (header[..i].to_vec(), header[i + 1..].to_vec()));
    assert_eq!(decode_basic(wrapped.as_bytes()), split);
    assert!(check(Some(canonical.as_bytes()), &creds));
    assert!(!check(None, &creds), "no header must never pass");

    // 3. ct_eq is plain equality, whatever the lengths.
    for (a, b) in [
        (header, expected.0.as_slice()),
        (header, expected.1.as_slice()),
        (user, pass),
        (header, header),
    ] {
        assert_eq!(ct_eq(a, b), a == b, "ct_eq({a:?}, {b:?})");
    }
});
