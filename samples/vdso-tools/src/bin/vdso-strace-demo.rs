// SPDX-License-Identifier: GPL-2.0
//! `vdso-strace-demo`: show that vDSO `clock_gettime` calls are invisible to a ptrace tracer
//! (and hence to strace), while the raw syscall is not.
#![deny(clippy::print_stdout)]

use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use vdso_probe::cli::{self, Status, Tool};
use vdso_probe::{out, outln, ptrace};

/// Show that strace cannot see vDSO calls: count the syscalls a ptrace tracer sees.
///
/// A forked child calls __vdso_clock_gettime, then libc's clock_gettime, then the raw
/// syscall, N times each; the parent traces it with PTRACE_SYSCALL, as strace does, and counts
/// the syscall-entry stops of each phase. With a vDSO-capable clocksource (tsc, kvm-clock) the
/// vDSO phase makes none; with hpet or acpi_pm the vDSO falls back to the syscall, which is
/// explained, not an error.
#[derive(Debug, Parser)]
struct Args {
    /// Calls per phase.
    #[arg(short = 'n', long = "calls", value_name = "N", default_value_t = 1000)]
    n: u64,
    /// Print the counts as one JSON document (see the README, "Command-line conventions").
    #[arg(long)]
    json: bool,
}

static TOOL: Tool = Tool {
    name: env!("CARGO_BIN_NAME"),
    examples: &[
        ("vdso-strace-demo", "1000 calls per phase, explained"),
        (
            "vdso-strace-demo -n 200 --json",
            "200 calls per phase, as JSON",
        ),
    ],
    problem: Some("the tracer did not see every raw clock_gettime syscall"),
    cannot_run: "ptrace not permitted (seccomp, Yama, already traced), no vDSO",
};

fn main() -> ExitCode {
    TOOL.main(run)
}

fn run(args: Args) -> Result<Status> {
    let counts = ptrace::run(args.n)?;
    if args.json {
        cli::print_json("runs", std::slice::from_ref(&counts))?;
    } else {
        out!("{}", counts.explain());
        outln!(
            "(tracer saw {} syscall entries in total; child called {:#x})",
            counts.total_entries,
            counts.vdso_function
        );
    }
    if counts.syscall != counts.calls {
        return Err(cli::problem(format_args!(
            "the tracer saw {} clock_gettime syscalls for {} raw syscalls",
            counts.syscall, counts.calls
        )));
    }
    Ok(Status::Ok)
}
