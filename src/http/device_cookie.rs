//! Device cookies (OWASP's "slow down online guessing with device cookies"): a client
//! that signed in gets a signed `mesh_device` cookie, and a request carrying a valid
//! one is throttled only by its own failures, never by what other clients (the same
//! address included) got wrong. The cookie is no credential: every request still
//! needs the right ones.
//!
//! The value is `<issued, hex seconds>.<16 random bytes, hex>.<HMAC-SHA256, hex>`. The
//! HMAC key is derived from the credential that signed in (`MESH_USER`+`MESH_PASS`, or
//! one key of `MESH_API_KEYS`), so cookies survive restarts and work on every instance
//! with the same settings, lapse when that credential changes, and tell their holder
//! nothing it did not already know.

use super::auth::Principal;
use crate::config::Credentials;
use crate::secret::Secret;
use hyper::header::{HeaderMap, HeaderValue, COOKIE};
use ring::hmac;
use std::time::{SystemTime, UNIX_EPOCH};

pub const COOKIE_NAME: &str = "mesh_device";
/// How long a cookie is good for; it is renewed once half of that has passed.
pub const LIFETIME_SECS: u64 = 30 * 24 * 3600;

/// A device that signed in before: the random part of its cookie.
pub type DeviceId = [u8; 16];

pub struct DeviceCookies {
    /// One signing key per configured credential, in [`Principal`] order.
    keys: Vec<(Principal, hmac::Key)>,
    /// `Secure` is set when the page is served over HTTPS (directly, or by an edge).
    secure: bool,
}

/// A valid cookie's device and whether it is due for renewal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Device {
    pub id: DeviceId,
    pub renew: bool,
}

impl DeviceCookies {
    pub fn new(creds: Option<&Credentials>, api_keys: &[Secret], secure: bool) -> DeviceCookies {
        let domain = hmac::Key::new(hmac::HMAC_SHA256, b"agent-mesh device cookie v1");
        let derive = |material: &[&[u8]]| {
            let mut ctx = hmac::Context::with_key(&domain);
            for part in material {
                // Length-prefixed, so no two credentials give the same input.
                ctx.update(&(part.len() as u64).to_be_bytes());
                ctx.update(part);
            }
            hmac::Key::new(hmac::HMAC_SHA256, ctx.sign().as_ref())
        };
        let mut keys = Vec::new();
        if let Some(c) = creds {
            keys.push((
                Principal::Owner,
                derive(&[b"basic", c.user.as_bytes(), c.pass.expose().as_bytes()]),
            ));
        }
        for (i, key) in api_keys.iter().enumerate() {
            keys.push((
                Principal::Key(i),
                derive(&[b"key", key.expose().as_bytes()]),
            ));
        }
        DeviceCookies { keys, secure }
    }

    /// The `Set-Cookie` value for a client that just signed in as `principal`.
    pub fn issue(&self, principal: Principal) -> Option<HeaderValue> {
        let (_, key) = self.keys.iter().find(|(p, _)| *p == principal)?;
        let mut id = [0u8; 16];
        let provider = rustls::crypto::ring::default_provider();
        // Without randomness there is no unguessable device id: issue nothing.
        provider.secure_random.fill(&mut id).ok()?;
        let payload = format!("{:x}.{}", now_secs(), crate::ids::hex(&id));
        let tag = hmac::sign(key, payload.as_bytes());
        let secure = if self.secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{COOKIE_NAME}={payload}.{}; Path=/; Max-Age={LIFETIME_SECS}; HttpOnly; SameSite=Strict{secure}",
            crate::ids::hex(tag.as_ref())
        ))
        .ok()
    }

    /// The device named by a valid, unexpired `mesh_device` cookie in `headers`.
    pub fn verify(&self, headers: &HeaderMap) -> Option<Device> {
        self.verify_at(headers, now_secs())
    }

    fn verify_at(&self, headers: &HeaderMap, now: u64) -> Option<Device> {
        let value = headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|pair| pair.trim().strip_prefix(COOKIE_NAME)?.strip_prefix('='))?;
        let (payload, tag_hex) = value.rsplit_once('.')?;
        let (issued_hex, id_hex) = payload.split_once('.')?;
        let issued = u64::from_str_radix(issued_hex, 16).ok()?;
        let tag = from_hex(tag_hex)?;
        // Every key is tried (`verify` compares in constant time).
        let mut valid = false;
        for (_, key) in &self.keys {
            valid |= hmac::verify(key, payload.as_bytes(), &tag).is_ok();
        }
        let age = now.checked_sub(issued)?;
        if !valid || age >= LIFETIME_SECS {
            return None;
        }
        let id: DeviceId = from_hex(id_hex)?.try_into().ok()?;
        Some(Device {
            id,
            renew: age >= LIFETIME_SECS / 2,
        })
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> Credentials {
        Credentials {
            user: "u".into(),
            pass: Secret::new("right-pass"),
        }
    }

    fn cookie_header(set_cookie: &HeaderValue) -> HeaderMap {
        let pair = set_cookie.to_str().unwrap().split(';').next().unwrap();
        let mut h = HeaderMap::new();
        h.insert(COOKIE, format!("theme=dark; {pair}").parse().unwrap());
        h
    }

    #[test]
    fn an_issued_cookie_verifies_until_it_expires() {
        let cookies = DeviceCookies::new(Some(&owner()), &[Secret::new("key-1")], false);
        let set = cookies.issue(Principal::Key(0)).unwrap();
        let text = set.to_str().unwrap();
        assert!(text.starts_with("mesh_device="), "{text}");
        assert!(text.contains("HttpOnly") && text.contains("SameSite=Strict"));
        assert!(
            !text.contains("Secure") && !text.contains("key-1"),
            "{text}"
        );
        let h = cookie_header(&set);
        let device = cookies.verify(&h).unwrap();
        assert!(!device.renew);
        let now = now_secs();
        assert!(
            cookies
                .verify_at(&h, now + LIFETIME_SECS / 2)
                .unwrap()
                .renew
        );
        assert_eq!(cookies.verify_at(&h, now + LIFETIME_SECS), None);
        // Two sign-ins are two devices.
        let other = cookies.verify(&cookie_header(&cookies.issue(Principal::Owner).unwrap()));
        assert_ne!(other.unwrap().id, device.id);
        assert!(DeviceCookies::new(None, &[], true)
            .issue(Principal::Owner)
            .is_none());
        let secure = DeviceCookies::new(Some(&owner()), &[], true);
        assert!(secure
            .issue(Principal::Owner)
            .unwrap()
            .to_str()
            .unwrap()
            .ends_with("; Secure"));
    }

    #[test]
    fn a_forged_altered_or_foreign_cookie_is_no_device() {
        let cookies = DeviceCookies::new(Some(&owner()), &[], false);
        let set = cookies.issue(Principal::Owner).unwrap();
        let pair = set.to_str().unwrap().split(';').next().unwrap().to_string();
        let with = |value: &str| {
            let mut h = HeaderMap::new();
            h.insert(COOKIE, value.parse().unwrap());
            cookies.verify(&h)
        };
        assert!(with(&pair).is_some());
        // Another device id under the same tag, a changed date, garbage, nothing.
        let (head, tag) = pair.rsplit_once('.').unwrap();
        let flipped = format!("{}0.{tag}", &head[..head.len() - 1]);
        let flipped = if flipped == pair {
            format!("{}1.{tag}", &head[..head.len() - 1])
        } else {
            flipped
        };
        assert_eq!(with(&flipped), None);
        assert_eq!(with("mesh_device=1.00.00"), None);
        assert_eq!(with("mesh_device=zz"), None);
        assert_eq!(with("other=1"), None);
        // A new password (or another server's credentials) voids every cookie.
        let changed = Credentials {
            user: "u".into(),
            pass: Secret::new("new-pass"),
        };
        let mut h = HeaderMap::new();
        h.insert(COOKIE, pair.parse().unwrap());
        assert_eq!(
            DeviceCookies::new(Some(&changed), &[], false).verify(&h),
            None
        );
    }
}
