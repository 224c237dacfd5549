//! `MESH_REDIS_URL`: validated once at startup, kept whole for the client (it carries
//! the password) and shown only with its user and password replaced by `***`.

use crate::secret::Secret;
use std::fmt;

/// A `redis://` or `rediss://` URL. `Debug` and `Display` print the redacted form, so
/// it can sit in the config and appear in log lines and errors without leaking.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    full: Secret,
    redacted: String,
}

impl RedisUrl {
    /// Checks the scheme and that a host is named; the reason never repeats the
    /// credentials.
    pub fn parse(url: &str) -> Result<RedisUrl, String> {
        let redacted = redact(url);
        let rest = url
            .strip_prefix("rediss://")
            .or_else(|| url.strip_prefix("redis://"))
            .ok_or_else(|| format!("\"{redacted}\" must start with redis:// or rediss://"))?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        if rest[authority.len()..].contains('@') {
            // A password with `/`, `?` or `#` in it (common in generated ones) ends
            // the authority early: the client would take part of it for a path, and
            // the URL cannot be shown redacted. Say what to do without quoting it.
            return Err(
                "the user or password holds '/', '?' or '#': write them as %2F, %3F, %23"
                    .to_string(),
            );
        }
        let host = authority.rsplit('@').next().unwrap_or("");
        if host.is_empty() || host.starts_with(':') {
            return Err(format!("\"{redacted}\" has no host"));
        }
        if let Some((_, port)) = host.rsplit_once(':').filter(|_| !host.ends_with(']')) {
            if port.parse::<u16>().is_err() {
                return Err(format!("\"{redacted}\" has a bad port"));
            }
        }
        Ok(RedisUrl {
            full: Secret::new(url),
            redacted,
        })
    }

    pub fn is_tls(&self) -> bool {
        self.full.expose().starts_with("rediss://")
    }

    /// The whole URL, for the one place that must use it: opening the client.
    pub fn expose(&self) -> &str {
        self.full.expose()
    }

    /// `text` (an error message that may quote the URL or its credentials) with the
    /// URL redacted and any user or password in it replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.replace(self.full.expose(), &self.redacted);
        for part in userinfo(self.full.expose()).split(':') {
            // Single characters would garble the message and reveal little.
            if part.len() > 1 {
                out = out.replace(part, "***");
            }
        }
        out
    }

    /// The URL with any user and password replaced by `***`.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }
}

/// Replaces the userinfo (everything before the last `@` of the authority) with `***`.
/// Also used on error messages from the client, which may quote the URL.
pub fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &url[..scheme_end], &rest[at..]),
        None => url.to_string(),
    }
}

/// The `user:password` part of a URL (empty when there is none).
fn userinfo(url: &str) -> &str {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return "";
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => &rest[..at],
        None => "",
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({})", self.redacted)
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_show_in_debug_display_or_redacted() {
        let u = RedisUrl::parse("rediss://default:s3cr3t-pw@eu1.upstash.io:6379/0").unwrap();
        for shown in [format!("{u:?}"), u.to_string(), u.redacted().to_string()] {
            assert!(!shown.contains("s3cr3t-pw"), "{shown}");
            assert!(!shown.contains("default"), "{shown}");
            assert!(shown.contains("***@eu1.upstash.io:6379"), "{shown}");
        }
        assert!(u.is_tls());
        assert_eq!(
            u.expose(),
            "rediss://default:s3cr3t-pw@eu1.upstash.io:6379/0"
        );
    }

    #[test]
    fn scrub_removes_the_credentials_from_any_message() {
        let u = RedisUrl::parse("redis://admin:hunter22@10.0.0.5:6379").unwrap();
        let msg = "WRONGPASS for admin with hunter22 at redis://admin:hunter22@10.0.0.5:6379";
        let clean = u.scrub(msg);
        assert!(!clean.contains("hunter22"), "{clean}");
        assert!(!clean.contains("admin"), "{clean}");
        assert!(clean.contains("10.0.0.5:6379"), "{clean}");
    }

    #[test]
    fn a_password_with_an_at_sign_is_redacted_whole() {
        assert_eq!(redact("redis://:p@ss@host:1/2"), "redis://***@host:1/2");
        assert_eq!(redact("redis://host:1/a@b"), "redis://host:1/a@b");
    }

    #[test]
    fn bad_urls_are_refused_without_their_password() {
        for bad in [
            "http://u:hunter2@host",
            "redis://",
            "redis://u:hunter2@",
            "redis://u:hunter2@host:port",
            "redis://:6379",
            "redis://default:hun/ter2@host:6379",
            "rediss://default:hunter2?x@host:6379/0",
            "redis://u:hunter2#@host",
        ] {
            let why = RedisUrl::parse(bad).unwrap_err();
            assert!(!why.contains("hunter2"), "{why}");
        }
        let why = RedisUrl::parse("redis://default:hun/ter2@host:6379").unwrap_err();
        assert!(why.contains("%2F"), "{why}");
        assert!(RedisUrl::parse("redis://default:hun%2Fter2@host:6379").is_ok());
        assert!(RedisUrl::parse("redis://127.0.0.1:6379").is_ok());
        assert!(!RedisUrl::parse("redis://127.0.0.1").unwrap().is_tls());
    }
}
