// SPDX-License-Identifier: GPL-2.0
//! vdso_probe guest tests: run inside the QEMU test kernel by `/tests/run`.
//!
//! `vdso-guest-tests --list` prints the test names; `vdso-guest-tests NAME` runs one test and
//! exits 0 (pass), 4 (skip) or 1 (fail, with the reason on stderr); `--kernel-log` checks the
//! whole boot's kernel log and kmemleak (the runner's last test); `--hold` is a target process
//! of the hardening tests ([`hardening::hold`]); `--workload` reads the clock once a millisecond
//! until killed (`scripts/experiment clocksource`); `--fault-probe MODE` is a fresh process of the
//! fault-log tests ([`faults::probe`]). Every assertion compares the
//! module's output with an independent source: `/proc/<pid>/maps`, `/proc/<pid>/auxv`,
//! `getauxval`, `/proc/<pid>/timens_offsets`, the kernel's own access rules.

mod attribution;
mod faults;
mod hardening;
mod kernel_log;
mod proc;
mod stress;
mod tests;
mod timepage;
mod vvar;

use std::process::ExitCode;

/// A test's outcome besides failure.
pub enum Outcome {
    /// Passed.
    Pass,
    /// Not applicable on this boot, with the reason.
    Skip(String),
}

type TestFn = fn() -> anyhow::Result<Outcome>;

fn all() -> impl Iterator<Item = &'static (&'static str, TestFn)> {
    tests::ALL
        .iter()
        .chain(timepage::TESTS)
        .chain(stress::TESTS)
        .chain(hardening::TESTS)
        .chain(attribution::TESTS)
        .chain(faults::TESTS)
        .chain(vvar::TESTS)
}

/// The tests load and unload the module, remount debugfs, fork thousands of processes and
/// fail allocations: only in the test VM, whose kernel command line `scripts/vm` marks with
/// `VP_FLAVOUR=` (or with `VDSO_GUEST_TESTS_ANYWHERE=1`, for a kernel developer's own VM).
fn in_test_vm() -> bool {
    std::env::var("VDSO_GUEST_TESTS_ANYWHERE").as_deref() == Ok("1")
        || std::fs::read_to_string("/proc/cmdline")
            .is_ok_and(|c| c.split_whitespace().any(|w| w.starts_with("VP_FLAVOUR=")))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let first = args.first().map(String::as_str);
    if !matches!(first, Some("--list") | None) && !in_test_vm() {
        eprintln!(
            "vdso-guest-tests: refusing to run outside the test VM (no VP_FLAVOUR= in \
             /proc/cmdline): the tests insmod and rmmod vdso_probe, remount debugfs and fail \
             allocations; run them with `scripts/vm -- /tests/run`, or set \
             VDSO_GUEST_TESTS_ANYWHERE=1 in a VM of your own"
        );
        return ExitCode::from(2);
    }
    match first {
        Some("--kernel-log") => match kernel_log::check_boot() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("FAIL: {e:#}");
                ExitCode::FAILURE
            }
        },
        Some("--hold") => hardening::hold(&args[1..]),
        Some("--workload") => attribution::workload(),
        Some("--fault-probe") => faults::probe(&args[1..]),
        Some("--list") => {
            for (name, _) in all() {
                println!("{name}");
            }
            ExitCode::SUCCESS
        }
        Some(name) => match all().find(|(n, _)| *n == name) {
            Some((_, f)) => match f() {
                Ok(Outcome::Pass) => ExitCode::SUCCESS,
                Ok(Outcome::Skip(why)) => {
                    println!("SKIP: {why}");
                    ExitCode::from(4)
                }
                Err(e) => {
                    eprintln!("FAIL: {e:#}");
                    ExitCode::FAILURE
                }
            },
            None => {
                eprintln!("unknown test {name}; --list shows them");
                ExitCode::from(2)
            }
        },
        None => {
            eprintln!("usage: vdso-guest-tests --list | --kernel-log | NAME");
            ExitCode::from(2)
        }
    }
}
