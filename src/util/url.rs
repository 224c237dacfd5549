//! Provider base URLs as configured (`*_BASE_URL`, `NOUS_PORTAL_URL`): checked at
//! startup, with any secret they carry kept out of everything the server says.
//!
//! * A query string or fragment is refused: request paths are appended to the base URL
//!   (`{base}/chat/completions`), so `…/v1?api_key=K` would become `…/v1?api_key=K/chat/completions`
//!   and send the key to the wrong place. A key belongs in the provider's `_API_KEY`.
//! * A user name and password (`http://user:pass@host/v1`) are removed: the HTTP client
//!   never sends them, so the URL is kept without them, and a warning (without them,
//!   logged by `providers::settings`) says so. Nothing downstream (`GET /api/providers`, catalog logs, error events)
//!   can show what it never holds.
//! * Messages about a URL show it with userinfo and query values as `***`.

/// A checked base URL: without userinfo and trailing `/`; `dropped_userinfo` says
/// whether credentials were removed (for the caller's warning).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    pub url: String,
    pub dropped_userinfo: bool,
}

/// Checks `url`; the error is the one-line reason (never quoting a secret).
pub fn check(url: &str) -> Result<BaseUrl, String> {
    let shown = redacted(url);
    let Some((scheme, rest)) = url
        .split_once("://")
        .filter(|(s, _)| *s == "http" || *s == "https")
    else {
        return Err(format!("\"{shown}\" must start with http:// or https://"));
    };
    if url.contains('?') || url.contains('#') {
        return Err(format!(
            "\"{shown}\" has a query string or fragment, which paths cannot be appended to; put a key in the provider's _API_KEY variable instead"
        ));
    }
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((userinfo, host)) => (Some(userinfo), host),
        None => (None, authority),
    };
    if host.is_empty() {
        return Err(format!("\"{shown}\" has no host"));
    }
    let cleaned = format!("{scheme}://{host}{path}");
    if cleaned.parse::<hyper::Uri>().is_err() {
        return Err(format!("\"{shown}\" is not a valid URL"));
    }
    Ok(BaseUrl {
        url: cleaned.trim_end_matches('/').to_string(),
        dropped_userinfo: userinfo.is_some(),
    })
}

/// `url` with its userinfo and every query value replaced by `***`, for messages.
pub fn redacted(url: &str) -> String {
    let (before_fragment, fragment) = match url.split_once('#') {
        Some((b, _)) => (b, Some("***")),
        None => (url, None),
    };
    let (base, query) = match before_fragment.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (before_fragment, None),
    };
    let mut out = match base.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            match authority.rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://***@{host}{path}"),
                None => base.to_string(),
            }
        }
        // Not a URL at all: it may be anything, so show none of what follows an `@`.
        None => match base.rsplit_once('@') {
            Some((_, host)) => format!("***@{host}"),
            None => base.to_string(),
        },
    };
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) => format!("{name}=***"),
                None => "***".to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_dropped_and_a_query_or_fragment_refused() {
        assert_eq!(
            check("http://127.0.0.1:11434/v1/").unwrap(),
            BaseUrl {
                url: "http://127.0.0.1:11434/v1".into(),
                dropped_userinfo: false
            }
        );
        assert_eq!(
            check("https://user:PASS@host.example/v1").unwrap(),
            BaseUrl {
                url: "https://host.example/v1".into(),
                dropped_userinfo: true
            }
        );
        for bad in [
            "http://user:PASS@host/v1?api_key=KEY",
            "http://host/v1?api_key=KEY",
            "http://host/v1#KEY",
            "ftp://user:PASS@host",
            "http://user:PASS@/v1",
            "http://",
        ] {
            let why = check(bad).unwrap_err();
            assert!(
                !why.contains("PASS") && !why.contains("=KEY") && !why.contains("#KEY"),
                "{bad}: {why}"
            );
        }
        assert!(check("http://host/v1?x=1").unwrap_err().contains("query"));
    }

    #[test]
    fn messages_show_no_userinfo_or_query_value() {
        assert_eq!(
            redacted("http://user:PASS@host:8080/v1?api_key=KEY&debug#frag"),
            "http://***@host:8080/v1?api_key=***&***#***"
        );
        assert_eq!(redacted("https://host/v1"), "https://host/v1");
        assert_eq!(redacted("user:PASS@host"), "***@host");
    }
}
