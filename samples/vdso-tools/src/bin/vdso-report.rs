// SPDX-License-Identifier: GPL-2.0
//! `vdso-report [PID]...`: read `/sys/kernel/debug/vdso/<pid>` (default: this process), print
//! it for humans or as `--json`, and cross-check it against `/proc/<pid>/maps` and the process's
//! auxv. Exits 1 on any disagreement, 2 when a report cannot be read.

use clap::Parser;
use std::process::ExitCode;
use vdso_probe::report::{cross_check, Report};

#[derive(Parser)]
#[command(about = "Read and cross-check vdso_probe per-process reports")]
struct Args {
    /// Processes to report (default: this one).
    pids: Vec<i32>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let pids = if args.pids.is_empty() {
        vec![std::process::id() as i32]
    } else {
        args.pids
    };
    let mut status = ExitCode::SUCCESS;
    for pid in pids {
        let report = match Report::read(pid) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("vdso-report: {e:#} (is vdso_probe.ko loaded and debugfs mounted?)");
                return ExitCode::from(2);
            }
        };
        let problems = match cross_check(&report) {
            Ok(p) => p,
            Err(e) => vec![format!("cannot cross-check: {e:#}")],
        };
        if args.json {
            let v = serde_json::json!({ "report": report, "disagreements": problems });
            println!("{v}");
        } else {
            println!(
                "pid {} ({}), {}, lookup {}",
                report.pid,
                report.comm,
                report.abi,
                report.lookup.as_deref().unwrap_or("-")
            );
            for m in &report.mappings {
                println!(
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
            println!(
                "  AT_SYSINFO_EHDR {:x?}, vsyscall {} (usable: {:?}), timens root: {}",
                report.auxv_sysinfo_ehdr,
                report.vsyscall_mode.as_deref().unwrap_or("-"),
                report.vsyscall_usable,
                report.timens_root
            );
            if problems.is_empty() {
                println!("  consistent with /proc/{pid}/maps and auxv");
            }
            for p in &problems {
                println!("  DISAGREES: {p}");
            }
        }
        if !problems.is_empty() {
            status = ExitCode::FAILURE;
        }
    }
    status
}
