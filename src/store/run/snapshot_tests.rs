//! Unit tests of the run's snapshot.

use super::*;
