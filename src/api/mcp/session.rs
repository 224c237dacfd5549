//! MCP sessions (2025-11-25 Streamable HTTP): the `MCP-Session-Id`s this process
//! issued, bounded in number and ended by `DELETE /mcp` or by idling, and the
//! `tools/call` requests in flight in each, so `notifications/cancelled` can find
//! the run a request started.

use crate::util::lock;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most this many sessions at once; a new one first drops expired ones, then the
/// longest idle one with nothing in flight.
pub const MAX_SESSIONS: usize = 1024;
/// A session unused this long is ended (its next request gets 404, and the client
/// starts a new one, as the spec says).
pub const SESSION_IDLE_TTL: Duration = Duration::from_secs(60 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionError {
    /// No `MCP-Session-Id` header on a request that needs one (400).
    Missing,
    /// Not a session of this process, or one that was ended or expired (404).
    Unknown,
    /// Every session is busy with a call in flight (503).
    Full,
}

struct Session {
    protocol_version: String,
    last_seen: Instant,
    /// Request id (its JSON text) -> the run that `tools/call` started.
    in_flight: HashMap<String, String>,
}

pub struct Sessions {
    inner: Mutex<HashMap<String, Session>>,
    max: usize,
    idle_ttl: Duration,
}

impl Default for Sessions {
    fn default() -> Sessions {
        Sessions::new(MAX_SESSIONS, SESSION_IDLE_TTL)
    }
}

impl Sessions {
    pub fn new(max: usize, idle_ttl: Duration) -> Sessions {
        Sessions {
            inner: Mutex::new(HashMap::new()),
            max: max.max(1),
            idle_ttl,
        }
    }

    /// Opens a session for a client that initialized with `protocol_version`; returns
    /// its id (128 random bits, visible ASCII as the spec requires).
    pub fn open(&self, protocol_version: &str) -> Result<String, SessionError> {
        let now = Instant::now();
        let mut sessions = lock(&self.inner);
        let ttl = self.idle_ttl;
        sessions.retain(|_, s| !s.in_flight.is_empty() || now.duration_since(s.last_seen) < ttl);
        if sessions.len() >= self.max {
            let idlest = sessions
                .iter()
                .filter(|(_, s)| s.in_flight.is_empty())
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(id, _)| id.clone());
            match idlest {
                Some(id) => {
                    sessions.remove(&id);
                }
                None => return Err(SessionError::Full),
            }
        }
        let id = crate::ids::new_run_id();
        sessions.insert(
            id.clone(),
            Session {
                protocol_version: protocol_version.to_string(),
                last_seen: now,
                in_flight: HashMap::new(),
            },
        );
        Ok(id)
    }

    /// Checks the session of a request and marks it used; returns its negotiated
    /// protocol version.
    pub fn touch(&self, id: Option<&str>) -> Result<String, SessionError> {
        let id = id.ok_or(SessionError::Missing)?;
        let now = Instant::now();
        let mut sessions = lock(&self.inner);
        let session = sessions.get_mut(id).ok_or(SessionError::Unknown)?;
        if session.in_flight.is_empty() && now.duration_since(session.last_seen) >= self.idle_ttl {
            sessions.remove(id);
            return Err(SessionError::Unknown);
        }
        session.last_seen = now;
        Ok(session.protocol_version.clone())
    }

    /// Ends a session; returns the runs its calls still had in flight.
    pub fn close(&self, id: &str) -> Result<Vec<String>, SessionError> {
        let session = lock(&self.inner).remove(id).ok_or(SessionError::Unknown)?;
        Ok(session.in_flight.into_values().collect())
    }

    /// Records that request `request_id` of session `id` started run `run_id`.
    pub fn call_started(&self, id: &str, request_id: &str, run_id: &str) {
        if let Some(s) = lock(&self.inner).get_mut(id) {
            s.in_flight
                .insert(request_id.to_string(), run_id.to_string());
        }
    }

    /// Forgets a finished call; false when it was no longer recorded (the client
    /// cancelled it, or ended the session), so no response is owed.
    pub fn call_finished(&self, id: &str, request_id: &str) -> bool {
        let mut sessions = lock(&self.inner);
        match sessions.get_mut(id) {
            Some(s) => {
                s.last_seen = Instant::now();
                s.in_flight.remove(request_id).is_some()
            }
            None => false,
        }
    }

    /// Takes the run of an in-flight request the client cancels.
    pub fn cancel_call(&self, id: &str, request_id: &str) -> Option<String> {
        lock(&self.inner).get_mut(id)?.in_flight.remove(request_id)
    }

    pub fn len(&self) -> usize {
        lock(&self.inner).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_found_until_closed() {
        let s = Sessions::default();
        let id = s.open("2025-11-25").unwrap();
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| (0x21..=0x7e).contains(&b)));
        assert_eq!(s.touch(Some(&id)).unwrap(), "2025-11-25");
        assert_eq!(s.touch(None), Err(SessionError::Missing));
        assert_eq!(s.touch(Some("nope")), Err(SessionError::Unknown));
        s.call_started(&id, "1", "run-a");
        assert_eq!(s.close(&id).unwrap(), ["run-a"]);
        assert_eq!(s.touch(Some(&id)), Err(SessionError::Unknown));
        assert_eq!(s.close(&id), Err(SessionError::Unknown));
    }

    #[test]
    fn the_number_of_sessions_is_bounded_and_busy_ones_are_kept() {
        let s = Sessions::new(2, SESSION_IDLE_TTL);
        let a = s.open("2025-11-25").unwrap();
        let b = s.open("2025-11-25").unwrap();
        s.call_started(&a, "1", "run");
        s.call_started(&b, "1", "run");
        assert_eq!(s.open("2025-11-25"), Err(SessionError::Full));
        assert!(s.call_finished(&b, "1"));
        let c = s.open("2025-11-25").unwrap();
        assert_eq!(s.len(), 2);
        assert!(s.touch(Some(&a)).is_ok());
        assert_eq!(s.touch(Some(&b)), Err(SessionError::Unknown));
        assert!(s.touch(Some(&c)).is_ok());
    }

    #[test]
    fn idle_sessions_expire_and_cancelled_calls_owe_no_answer() {
        let s = Sessions::new(8, Duration::ZERO);
        let a = s.open("2025-06-18").unwrap();
        assert_eq!(s.touch(Some(&a)), Err(SessionError::Unknown));
        let s = Sessions::default();
        let a = s.open("2025-11-25").unwrap();
        s.call_started(&a, "\"req\"", "run-1");
        assert_eq!(s.cancel_call(&a, "\"req\""), Some("run-1".to_string()));
        assert!(!s.call_finished(&a, "\"req\""));
    }
}
