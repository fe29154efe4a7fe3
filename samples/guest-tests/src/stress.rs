// SPDX-License-Identifier: GPL-2.0
//! Reliability: stress and bad-input tests (meant for the debug kernel).

use crate::TestFn;

/// The stress and bad-input tests, run after the time-page tests.
pub const TESTS: &[(&str, TestFn)] = &[];
