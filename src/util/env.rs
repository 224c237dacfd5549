//! Reading settings from environment variables: where they come from (the process, or
//! a map in tests), the rules every variable shares (trimmed; empty means unset),
//! typed readers, and the exit-2 error that names the variable.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Where configuration comes from: the process environment in production, a map in tests.
pub trait Env {
    fn var(&self, key: &str) -> Option<String>;
}

pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, key: &str) -> Option<String> {
        std::env::var(key).ok()
    }
}

impl Env for HashMap<String, String> {
    fn var(&self, key: &str) -> Option<String> {
        self.get(key).cloned()
    }
}

impl Env for HashMap<&str, &str> {
    fn var(&self, key: &str) -> Option<String> {
        self.get(key).map(|v| v.to_string())
    }
}

/// A configuration problem: the variable and a one-line reason (exit code 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub variable: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(variable: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            variable: variable.to_string(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.variable, self.reason)
    }
}

impl std::error::Error for ConfigError {}

/// The variables as every subsystem's settings read them.
#[derive(Clone, Copy)]
pub struct Vars<'a> {
    env: &'a dyn Env,
}

impl<'a> Vars<'a> {
    pub fn new(env: &'a dyn Env) -> Vars<'a> {
        Vars { env }
    }

    /// The value, trimmed; unset or blank is `None`.
    pub fn get(&self, var: &str) -> Option<String> {
        self.env
            .var(var)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// The value as given (a password may begin or end with spaces); empty is `None`.
    pub fn get_untrimmed(&self, var: &str) -> Option<String> {
        self.env.var(var).filter(|v| !v.is_empty())
    }

    /// An on/off switch: unset, `0`, `false`, `no` or `off` is off; `1`, `true`, `yes`
    /// or `on` is on; anything else is an error.
    pub fn flag(&self, var: &str) -> Result<bool, ConfigError> {
        match self.get(var).as_deref() {
            None | Some("0") | Some("false") | Some("no") | Some("off") => Ok(false),
            Some("1") | Some("true") | Some("yes") | Some("on") => Ok(true),
            Some(v) => Err(ConfigError::new(var, format!("\"{v}\" is not 1 or 0"))),
        }
    }

    /// A whole number from `min` to 10,000,000; `default` when unset.
    pub fn number(&self, var: &str, default: u64, min: u64) -> Result<u64, ConfigError> {
        match self.get(var) {
            None => Ok(default),
            Some(v) => match v.parse::<u64>() {
                Ok(n) if n >= min && n <= 10_000_000 => Ok(n),
                _ => Err(ConfigError::new(
                    var,
                    format!("\"{v}\" is not a whole number from {min} to 10000000"),
                )),
            },
        }
    }

    /// [`Vars::number`] as whole seconds.
    pub fn secs(&self, var: &str, default: u64, min: u64) -> Result<Duration, ConfigError> {
        self.number(var, default, min).map(Duration::from_secs)
    }

    /// An http(s) base URL without its trailing `/`; `default` when unset.
    pub fn url(&self, var: &str, default: &str) -> Result<String, ConfigError> {
        match self.get(var) {
            Some(u) => validate_url(var, &u),
            None => Ok(default.to_string()),
        }
    }

    /// A path to a file this process can read, when set.
    pub fn file(&self, var: &str) -> Result<Option<PathBuf>, ConfigError> {
        self.get(var).map(|p| readable_file(var, &p)).transpose()
    }
}

/// Checks an http(s) base URL (`super::url`): a query string or fragment is refused,
/// a user name and password are removed; returns it without its trailing `/`. No
/// message quotes a secret.
pub fn validate_url(var: &str, url: &str) -> Result<String, ConfigError> {
    super::url::check(url)
        .map(|checked| checked.url)
        .map_err(|why| ConfigError::new(var, why))
}

/// A path that opens and is a regular file.
pub fn readable_file(var: &str, path: &str) -> Result<PathBuf, ConfigError> {
    let p = PathBuf::from(path);
    match std::fs::File::open(&p) {
        Ok(_) if p.is_file() => Ok(p),
        Ok(_) => Err(ConfigError::new(var, format!("{path} is not a file"))),
        Err(e) => Err(ConfigError::new(var, format!("cannot read {path}: {e}"))),
    }
}

/// Parses with `pairs` as the whole environment: the tests of every settings file.
#[cfg(test)]
pub fn read_pairs<T>(pairs: &[(&str, &str)], parse: impl FnOnce(&Vars) -> T) -> T {
    let map: HashMap<&str, &str> = pairs.iter().copied().collect();
    parse(&Vars::new(&map))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with<'a>(map: &'a HashMap<&'a str, &'a str>) -> Vars<'a> {
        Vars::new(map)
    }

    #[test]
    fn blank_is_unset_and_values_are_trimmed() {
        let map: HashMap<&str, &str> = [("A", "  x "), ("B", "   "), ("P", " pw ")].into();
        let vars = with(&map);
        assert_eq!(vars.get("A").as_deref(), Some("x"));
        assert_eq!(vars.get("B"), None);
        assert_eq!(vars.get("MISSING"), None);
        assert_eq!(vars.get_untrimmed("P").as_deref(), Some(" pw "));
    }

    #[test]
    fn flags_take_the_usual_spellings() {
        for (value, on) in [("1", true), ("yes", true), ("on", true), ("true", true)]
            .into_iter()
            .chain([
                ("0", false),
                ("no", false),
                ("off", false),
                ("false", false),
            ])
        {
            let map: HashMap<&str, &str> = [("F", value)].into();
            assert_eq!(with(&map).flag("F"), Ok(on), "{value}");
        }
        let map: HashMap<&str, &str> = [("F", "maybe")].into();
        assert_eq!(with(&map).flag("F").unwrap_err().variable, "F");
    }

    #[test]
    fn numbers_keep_to_their_range() {
        let map: HashMap<&str, &str> =
            [("N", "10000000"), ("BIG", "10000001"), ("LOW", "0")].into();
        let vars = with(&map);
        assert_eq!(vars.number("N", 1, 1), Ok(10_000_000));
        assert!(vars.number("BIG", 1, 1).is_err());
        assert!(vars.number("LOW", 1, 1).is_err());
        assert_eq!(vars.secs("UNSET", 7, 1), Ok(Duration::from_secs(7)));
    }

    #[test]
    fn urls_need_a_scheme_and_a_host() {
        assert_eq!(
            validate_url("U", "https://example.com/v1/").as_deref(),
            Ok("https://example.com/v1")
        );
        for bad in [
            "ftp://x",
            "https://",
            "http:///path",
            "https://exa mple.com",
        ] {
            let e = validate_url("U", bad).unwrap_err();
            assert_eq!(e.variable, "U", "{bad}");
        }
    }

    #[test]
    fn files_must_be_readable_regular_files() {
        let dir = std::env::temp_dir();
        let e = readable_file("F", &dir.to_string_lossy()).unwrap_err();
        assert!(e.reason.ends_with("is not a file"), "{e}");
        let e = readable_file("F", "/definitely/missing").unwrap_err();
        assert!(e.reason.starts_with("cannot read"), "{e}");
    }
}
