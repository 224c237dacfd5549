//! Unit tests of the run's lifecycle.

use super::*;
