// SPDX-License-Identifier: GPL-2.0
//! `vdso-strace-demo`: show that vDSO `clock_gettime` calls are invisible to a ptrace tracer
//! (and hence to strace), while the raw syscall is not.

use anyhow::Result;
use clap::Parser;
use vdso_probe::ptrace;

/// Count clock_gettime syscalls seen by ptrace for vDSO, libc and raw-syscall calls.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Calls per phase.
    #[arg(short, default_value_t = 1000)]
    n: u64,
    /// Print the counts as JSON.
    #[arg(long)]
    json: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let counts = ptrace::run(args.n)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&counts)?);
    } else {
        print!("{}", counts.explain());
        println!(
            "(tracer saw {} syscall entries in total; child called {:#x})",
            counts.total_entries, counts.vdso_function
        );
    }
    Ok(())
}
