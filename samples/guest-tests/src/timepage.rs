// SPDX-License-Identifier: GPL-2.0
//! Guest tests of the time page (`/dev/vdso_probe`).

use crate::TestFn;

/// The time-page tests, run after [`crate::tests::ALL`].
pub const TESTS: &[(&str, TestFn)] = &[];
