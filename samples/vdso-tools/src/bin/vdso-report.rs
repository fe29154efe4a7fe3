// SPDX-License-Identifier: GPL-2.0
//! `vdso-report [PID]...`: read `/sys/kernel/debug/vdso/<pid>` (default: this process), print
//! it for humans or as `--json`, and cross-check it against `/proc/<pid>/maps` and the process's
//! auxv. Every pid is reported; the exit status is the worst outcome (1 a disagreement, 2 a
//! report that cannot be read).
#![deny(clippy::print_stdout)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Parser;
use serde::Serialize;
use vdso_probe::cli::{self, Status, Tool};
use vdso_probe::outln;
use vdso_probe::report::{self, cross_check, Report, DEBUGFS_DIR};

/// Read the vdso_probe report of each process and cross-check it with /proc.
///
/// For each PID, reads /sys/kernel/debug/vdso/PID (the [vvar], [vvar_vclock] and [vdso]
/// mappings as the kernel sees them, mm->context.vdso, AT_SYSINFO_EHDR, ABI, vsyscall, time
/// namespace), prints it, and checks every range and permission against /proc/PID/maps and
/// AT_SYSINFO_EHDR against /proc/PID/auxv. Every PID is reported even when an earlier one
/// fails; a report that cannot be read is explained on stderr (debugfs not mounted, module not
/// loaded, no such process, kernel thread, permission).
#[derive(Debug, Parser)]
struct Args {
    /// Processes to report (default: this one).
    #[arg(value_name = "PID")]
    pids: Vec<i32>,
    /// Print one JSON document instead of text (see the README, "Command-line conventions").
    #[arg(long)]
    json: bool,
    /// Read the reports from DIR instead of /sys/kernel/debug/vdso (e.g. saved copies; the
    /// cross-check still reads /proc).
    #[arg(long, value_name = "DIR", default_value = DEBUGFS_DIR)]
    dir: PathBuf,
}

static TOOL: Tool = Tool {
    name: env!("CARGO_BIN_NAME"),
    examples: &[
        ("vdso-report", "this process"),
        (
            "vdso-report 1 $$",
            "init and the shell; both are reported whatever happens",
        ),
        ("vdso-report --json $(pidof sleep)", "as one JSON document"),
    ],
    problem: Some("a report disagrees with /proc/PID/maps or /proc/PID/auxv"),
    cannot_run: "a report not readable (debugfs not mounted, vdso_probe not loaded, no such \
                 process, kernel thread, permission), /proc/PID not readable for the check",
};

fn main() -> ExitCode {
    TOOL.main(run)
}

/// One element of `reports`: the report's fields and its disagreements.
#[derive(Serialize)]
struct Entry<'a> {
    #[serde(flatten)]
    report: &'a Report,
    disagreements: &'a [String],
}

fn yes_no(v: bool) -> &'static str {
    if v {
        "yes"
    } else {
        "no"
    }
}

fn print_text(r: &Report, problems: &[String], checked: bool) {
    outln!(
        "pid {} ({}), {}, lookup {}",
        r.pid,
        r.comm,
        r.abi,
        r.lookup.as_deref().unwrap_or("-")
    );
    for m in &r.mappings {
        outln!(
            "  {:<14} {:x}-{:x} {} {:>2} pages, {} populated  {}",
            m.name,
            m.start,
            m.end,
            m.perms,
            m.pages,
            m.populated,
            m.flags.join(" ")
        );
    }
    outln!(
        "  AT_SYSINFO_EHDR {}, vsyscall {} (usable: {}), timens root: {}",
        report::hex_or_absent(r.auxv_sysinfo_ehdr),
        r.vsyscall_mode.as_deref().unwrap_or("-"),
        r.vsyscall_usable.map_or("-", yes_no),
        yes_no(r.timens_root)
    );
    if !checked {
        outln!("  not cross-checked (see the error)");
    } else if problems.is_empty() {
        outln!("  consistent with /proc/{}/maps and auxv", r.pid);
    }
    for p in problems {
        outln!("  DISAGREES: {p}");
    }
}

fn run(args: Args) -> Result<Status> {
    let pids = if args.pids.is_empty() {
        vec![std::process::id() as i32]
    } else {
        args.pids
    };
    // One cause for every pid: said once.
    if args.dir == std::path::Path::new(DEBUGFS_DIR) {
        if let Some(why) = report::debugfs_problem() {
            bail!("{why}: no report can be read");
        }
    }
    let mut status = Status::Ok;
    let mut json = Vec::new();
    for pid in pids {
        let report = match Report::read_in(&args.dir, pid) {
            Ok(r) => r,
            Err(e) => {
                cli::error(cli::error_line(&e));
                status = status.worst(Status::CannotRun);
                continue;
            }
        };
        let (problems, checked) = match cross_check(&report) {
            Ok(p) => (p, true),
            Err(e) => {
                cli::error(format_args!(
                    "pid {pid}: cannot cross-check: {}",
                    cli::error_line(&e)
                ));
                status = status.worst(Status::CannotRun);
                (Vec::new(), false)
            }
        };
        if !problems.is_empty() {
            let more = match problems.len() {
                1 => String::new(),
                n => format!(" and {} more", n - 1),
            };
            cli::error(format_args!(
                "pid {pid}: the report disagrees with /proc/{pid}/maps and auxv: {}{more}",
                problems[0]
            ));
            status = status.worst(Status::Problem);
        }
        if args.json {
            json.push((report, problems));
        } else {
            print_text(&report, &problems, checked);
        }
    }
    if args.json {
        let entries: Vec<Entry<'_>> = json
            .iter()
            .map(|(report, disagreements)| Entry {
                report,
                disagreements,
            })
            .collect();
        cli::print_json("reports", &entries)?;
    }
    Ok(status)
}
