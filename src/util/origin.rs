//! Web origins (`scheme://host[:port]`), normalized as browsers send them in `Origin`.

/// Parses a comma-separated list of origins (`MESH_MCP_ALLOWED_ORIGINS`), each
/// normalized; an entry that is not an origin is named in the error.
pub fn parse_origin_list(value: &str) -> Result<Vec<String>, String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            normalize_origin(s).ok_or_else(|| {
                format!(
                    "\"{}\" is not an origin like https://mesh.example.com (scheme, host and optional port, no path)",
                    super::cut_chars(s, 80)
                )
            })
        })
        .collect()
}

/// `scheme://host[:port]` in lowercase without a default port; `None` for anything
/// else (a path, userinfo, another scheme, `null`).
pub fn normalize_origin(origin: &str) -> Option<String> {
    let origin = origin.trim().to_ascii_lowercase();
    let (scheme, authority) = origin.split_once("://")?;
    if !matches!(scheme, "http" | "https") || authority.is_empty() {
        return None;
    }
    let bad = |c: char| matches!(c, '/' | '?' | '#' | '@' | ' ') || c.is_control();
    if authority.chars().any(bad) {
        return None;
    }
    let authority = strip_default_port(&origin, authority);
    Some(format!("{scheme}://{authority}"))
}

/// `authority` without the default port of `origin`'s scheme (`:443`, `:80`).
pub fn strip_default_port<'a>(origin: &str, authority: &'a str) -> &'a str {
    let default = if origin.starts_with("https://") {
        ":443"
    } else {
        ":80"
    };
    authority.strip_suffix(default).unwrap_or(authority)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalized_and_bad_entries_named() {
        let list = parse_origin_list(" https://Mesh.Example.com:443 , http://a.test:8080").unwrap();
        assert_eq!(list, ["https://mesh.example.com", "http://a.test:8080"]);
        for bad in [
            "mesh.example.com",
            "ftp://x",
            "https://x/path",
            "https://u@x",
        ] {
            let e = parse_origin_list(bad).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
        assert_eq!(parse_origin_list(" , ").unwrap(), Vec::<String>::new());
        assert_eq!(normalize_origin("null"), None);
    }
}
