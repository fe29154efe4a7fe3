// SPDX-License-Identifier: GPL-2.0
//! `vdso-doctor [--pid PID] [--json]`: is the vDSO working here, for each process, and if not,
//! why? The clocksource and its vDSO clock mode, the vsyscall mode and who calls the page, every
//! process's vDSO fallbacks and direct time system calls with their reasons (from the module's
//! attribution), and what a seccomp allowlist must still permit on this machine.
#![deny(clippy::print_stdout)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use vdso_probe::cli::{self, Status, Tool};
use vdso_probe::doctor::{diagnose, Diagnosis, Severity};
use vdso_probe::outln;
use vdso_probe::report::DEBUGFS_DIR;

/// Tell whether the vDSO is working on this machine and for each process, and if not, why.
///
/// Reads the module's summary, vsyscall, attribution, fallbacks and clocksource_log files in
/// /sys/kernel/debug/vdso. Without the module it says what /sys and /proc still tell (the
/// clocksource, the vsyscall mode) and exits 2: which processes fall back needs the module.
#[derive(Debug, Parser)]
struct Args {
    /// Only this process's calls.
    #[arg(long, value_name = "PID")]
    pid: Option<i32>,
    /// Print one JSON document instead of text (see the README, "Command-line conventions").
    #[arg(long)]
    json: bool,
    /// Read the module's files from DIR instead of /sys/kernel/debug/vdso.
    #[arg(long, value_name = "DIR", default_value = DEBUGFS_DIR)]
    dir: PathBuf,
}

static TOOL: Tool = Tool {
    name: env!("CARGO_BIN_NAME"),
    examples: &[
        ("vdso-doctor", "the whole machine"),
        ("vdso-doctor --pid $(pidof myserver)", "one process"),
        ("vdso-doctor --json", "as one JSON document"),
    ],
    problem: Some(
        "time reads enter the kernel although they need not: a clocksource the vDSO cannot \
         read, or a process whose vDSO fell back with a readable one",
    ),
    cannot_run: "the module is not loaded (the partial diagnosis is printed), /sys not readable",
};

fn main() -> ExitCode {
    TOOL.main(run)
}

fn print_text(d: &Diagnosis) {
    let readable = match (d.vdso_readable, d.vdso_readable_source) {
        (Some(true), "module") => "readable from userspace".to_string(),
        (Some(false), "module") => "NOT readable from userspace".to_string(),
        (Some(r), _) => format!(
            "{} (guessed from the name: the module says for sure)",
            if r {
                "readable from userspace"
            } else {
                "not readable from userspace"
            }
        ),
        (None, _) => "unknown".to_string(),
    };
    outln!(
        "clocksource: {} ({}), vdso_clock_mode {}; available: {}",
        d.clocksource,
        readable,
        d.vdso_clock_mode.as_deref().unwrap_or("-"),
        d.available.join(" ")
    );
    outln!(
        "vsyscall: {}; processes calling the page: {}",
        d.vsyscall_mode,
        if d.module {
            d.vsyscall_users.len().to_string()
        } else {
            "unknown without the module".to_string()
        }
    );
    if d.module {
        outln!(
            "attribution: {}; processes with vDSO fallbacks: {}, with direct time system calls: {}",
            match d.attribution {
                Some(true) => "on",
                Some(false) => "off",
                None => "-",
            },
            d.fallbacks.len(),
            d.direct.len()
        );
        if let Some(last) = d.clocksource_log.last() {
            outln!(
                "clocksource log: {} changes since load, the last to {} ({}) at {} ns",
                d.clocksource_log.len(),
                last.clocksource,
                last.vdso_clock_mode,
                last.monotonic_ns
            );
        }
    }
    outln!("seccomp: an allowlist must still permit here:");
    for (sc, why) in &d.seccomp_must_allow {
        outln!("  {sc}: {why}");
    }
    for f in &d.findings {
        let tag = match f.severity {
            Severity::Problem => "PROBLEM",
            Severity::Note => "note",
        };
        outln!("{tag}: {}", f.what);
    }
    outln!(
        "verdict: {}",
        match (d.module, d.has_problems()) {
            (_, true) => "problems found",
            (true, false) => "the vDSO is working",
            (false, false) => "cannot tell without the module",
        }
    );
}

fn run(args: Args) -> Result<Status> {
    let d = diagnose(&args.dir, args.pid)?;
    if args.json {
        cli::print_json("diagnoses", std::slice::from_ref(&d))?;
    } else {
        print_text(&d);
    }
    Ok(if d.has_problems() {
        Status::Problem
    } else if !d.module {
        Status::CannotRun
    } else {
        Status::Ok
    })
}
