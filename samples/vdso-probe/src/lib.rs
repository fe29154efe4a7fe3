// SPDX-License-Identifier: GPL-2.0
//! vdso_probe userspace library: locating and parsing the vDSO, benchmarking time reads,
//! parsing `/sys/kernel/debug/vdso/<pid>` reports and reading the module's time page; `cli`: the
//! one command-line convention of the tools (errors, exit status, `--help`, JSON).

pub mod bench;
pub mod child;
pub mod cli;
pub mod ptrace;
pub mod report;
pub mod timepage;
pub mod vdso;
