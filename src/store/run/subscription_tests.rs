//! Unit tests of the run's subscription.

use super::*;
