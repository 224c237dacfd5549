//! Poison-tolerant mutex locking.

use std::sync::{Mutex, MutexGuard};

/// Locks a mutex, recovering the data if a panic elsewhere poisoned it: the state
/// is plain data that every writer leaves consistent, and one bad request must not
/// take the store down for everyone.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
