//! Minimal leveled logging to stderr (`MESH_LOG`), one line per message.

use crate::util::env::{ConfigError, Vars};
use std::sync::atomic::{AtomicU8, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error = 0,
    Warn = 1,
    Info = 2,
    Debug = 3,
}

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        match s.trim().to_ascii_lowercase().as_str() {
            "error" => Some(Level::Error),
            "warn" | "warning" => Some(Level::Warn),
            "info" => Some(Level::Info),
            "debug" | "trace" => Some(Level::Debug),
            _ => None,
        }
    }

    /// `MESH_LOG`: error, warn, info (default) or debug.
    pub fn from_env(vars: &Vars) -> Result<Level, ConfigError> {
        match vars.get("MESH_LOG") {
            Some(l) => Level::parse(&l).ok_or_else(|| {
                ConfigError::new(
                    "MESH_LOG",
                    format!("\"{l}\" is not one of error, warn, info, debug"),
                )
            }),
            None => Ok(Level::Info),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Level::Error => "ERROR",
            Level::Warn => "WARN",
            Level::Info => "INFO",
            Level::Debug => "DEBUG",
        }
    }
}

static MAX_LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);

pub fn set_level(level: Level) {
    MAX_LEVEL.store(level as u8, Ordering::Relaxed);
}

pub fn enabled(level: Level) -> bool {
    level as u8 <= MAX_LEVEL.load(Ordering::Relaxed)
}

/// A line printed whatever `MESH_LOG` says: the address the server listens on is
/// what every operator and script needs (SPEC §2).
pub fn announce(message: std::fmt::Arguments<'_>) {
    emit(Level::Info, message);
}

pub fn write(level: Level, message: std::fmt::Arguments<'_>) {
    if enabled(level) {
        emit(level, message);
    }
}

/// Formats the whole line first and hands it to stderr in one `write`: `eprintln!`
/// on the unbuffered stderr made one system call per piece of the format (13 for a
/// run's start line), let lines of concurrent processes interleave, and panicked if
/// stderr was gone. A failed log write is dropped: logging must never stop the server.
fn emit(level: Level, message: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let line = format!(
        "{} {:5} {}\n",
        crate::clock::now_rfc3339(),
        level.label(),
        message
    );
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

#[macro_export]
macro_rules! log_error { ($($t:tt)*) => { $crate::log::write($crate::log::Level::Error, format_args!($($t)*)) } }
#[macro_export]
macro_rules! log_warn { ($($t:tt)*) => { $crate::log::write($crate::log::Level::Warn, format_args!($($t)*)) } }
#[macro_export]
macro_rules! log_info { ($($t:tt)*) => { $crate::log::write($crate::log::Level::Info, format_args!($($t)*)) } }
#[macro_export]
macro_rules! log_debug { ($($t:tt)*) => { $crate::log::write($crate::log::Level::Debug, format_args!($($t)*)) } }

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn mesh_log_names_a_level_and_defaults_to_info() {
        let level = |value: Option<&str>| {
            let map: HashMap<&str, &str> = value.map(|v| ("MESH_LOG", v)).into_iter().collect();
            Level::from_env(&Vars::new(&map))
        };
        assert_eq!(level(None), Ok(Level::Info));
        assert_eq!(level(Some("WARNING")), Ok(Level::Warn));
        assert_eq!(level(Some("trace")), Ok(Level::Debug));
        assert_eq!(level(Some("loud")).unwrap_err().variable, "MESH_LOG");
    }
}
