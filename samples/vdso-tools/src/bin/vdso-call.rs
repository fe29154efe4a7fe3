// SPDX-License-Identifier: GPL-2.0
//! `vdso-call`: resolve `__vdso_clock_gettime@LINUX_2.6` in the live vDSO, call it, and check
//! the result lies between two raw `clock_gettime` system calls. Exits non-zero otherwise.

use anyhow::{ensure, Result};
use clap::Parser;
use vdso_probe::vdso::{self, Clock, LiveVdso};

/// Call __vdso_clock_gettime bracketed by two raw syscalls.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Clock to read (realtime, monotonic, monotonic-raw, boottime, tai, realtime-coarse,
    /// monotonic-coarse).
    #[arg(short, long, default_value = "monotonic")]
    clock: Clock,
}

fn fmt_ts(ts: &libc::timespec) -> String {
    format!("{}.{:09}", ts.tv_sec, ts.tv_nsec)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let clock = args.clock;
    let live = LiveVdso::locate()?;
    let f = live.clock_gettime()?;
    println!(
        "vDSO at {:#x}; {}@{} at {:#x} (+{:#x})",
        live.base(),
        vdso::CLOCK_GETTIME_SYMBOL,
        vdso::VDSO_VERSION,
        f.address(),
        f.address() - live.base()
    );
    let before = vdso::syscall_clock_gettime(clock.id())?;
    let mid = f.get(clock)?;
    let after = vdso::syscall_clock_gettime(clock.id())?;
    println!("syscall  {clock}: {}", fmt_ts(&before));
    println!("vDSO     {clock}: {}", fmt_ts(&mid));
    println!("syscall  {clock}: {}", fmt_ts(&after));
    let (b, m, a) = (
        vdso::timespec_ns(&before),
        vdso::timespec_ns(&mid),
        vdso::timespec_ns(&after),
    );
    ensure!(
        b <= m && m <= a,
        "vDSO value {} is not between the syscall readings {} and {}",
        fmt_ts(&mid),
        fmt_ts(&before),
        fmt_ts(&after)
    );
    println!(
        "OK: syscall <= vDSO <= syscall ({} ns, {} ns)",
        m - b,
        a - m
    );
    Ok(())
}
