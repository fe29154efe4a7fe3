// SPDX-License-Identifier: GPL-2.0
//! `vdso-call`: resolve `__vdso_clock_gettime@LINUX_2.6` in the live vDSO, call it, and check
//! the result lies between two raw `clock_gettime` system calls. Exits 1 otherwise.
#![deny(clippy::print_stdout)]

use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use vdso_probe::cli::{self, Status, Tool};
use vdso_probe::outln;
use vdso_probe::vdso::{self, Clock, LiveVdso};

/// Call __vdso_clock_gettime and check its value lies between two raw clock_gettime syscalls.
///
/// Resolves __vdso_clock_gettime@LINUX_2.6 in this process's vDSO (as the kernel's
/// parse_vdso.c does), calls it between two clock_gettime system calls of the same clock and
/// prints the three readings.
#[derive(Debug, Parser)]
struct Args {
    /// Clock to read (realtime, monotonic, monotonic-raw, boottime, tai, realtime-coarse,
    /// monotonic-coarse).
    #[arg(short, long, default_value = "monotonic", conflicts_with = "clock_id")]
    clock: Clock,
    /// A clockid_t by number instead, e.g. 16 for CLOCK_AUX (the first auxiliary clock,
    /// POSIX_AUX_CLOCKS): the vDSO serves an enabled one, and falls back to the syscall for
    /// a disabled one, which refuses it.
    #[arg(long, value_name = "N")]
    clock_id: Option<libc::clockid_t>,
}

static TOOL: Tool = Tool {
    name: env!("CARGO_BIN_NAME"),
    examples: &[
        (
            "vdso-call",
            "CLOCK_MONOTONIC through the vDSO, bracketed by syscalls",
        ),
        ("vdso-call --clock tai", "the same for CLOCK_TAI"),
        (
            "vdso-call --clock-id 16",
            "the first auxiliary clock (enable it first: echo 1 > \
             /sys/kernel/time/aux_clocks/0/aux_clock_enable)",
        ),
    ],
    problem: Some("the vDSO value is not between the two syscall readings"),
    cannot_run: "no vDSO, symbol not found, the clock refused (EINVAL)",
};

fn main() -> ExitCode {
    TOOL.main(run)
}

fn fmt_ts(ts: &libc::timespec) -> String {
    format!("{}.{:09}", ts.tv_sec, ts.tv_nsec)
}

fn run(args: Args) -> Result<Status> {
    let (id, clock) = match args.clock_id {
        Some(id) => (id, format!("clock {id}")),
        None => (args.clock.id(), args.clock.to_string()),
    };
    let live = LiveVdso::locate()?;
    let f = live.clock_gettime()?;
    outln!(
        "vDSO at {:#x}; {}@{} at {:#x} (+{:#x})",
        live.base(),
        vdso::CLOCK_GETTIME_SYMBOL,
        vdso::VDSO_VERSION,
        f.address(),
        f.address() - live.base()
    );
    let before = vdso::syscall_clock_gettime(id)?;
    let mut mid = vdso::zero_timespec();
    let rc = f.call(id, &mut mid);
    anyhow::ensure!(
        rc == 0,
        "{} for {clock}: {}",
        vdso::CLOCK_GETTIME_SYMBOL,
        std::io::Error::from_raw_os_error(-rc)
    );
    let after = vdso::syscall_clock_gettime(id)?;
    outln!("syscall  {clock}: {}", fmt_ts(&before));
    outln!("vDSO     {clock}: {}", fmt_ts(&mid));
    outln!("syscall  {clock}: {}", fmt_ts(&after));
    let (b, m, a) = (
        vdso::timespec_ns(&before),
        vdso::timespec_ns(&mid),
        vdso::timespec_ns(&after),
    );
    if !(b <= m && m <= a) {
        return Err(cli::problem(format_args!(
            "{clock}: vDSO value {} is not between the syscall readings {} and {}",
            fmt_ts(&mid),
            fmt_ts(&before),
            fmt_ts(&after)
        )));
    }
    outln!(
        "OK: syscall <= vDSO <= syscall ({} ns, {} ns)",
        m - b,
        a - m
    );
    Ok(Status::Ok)
}
