// SPDX-License-Identifier: GPL-2.0
//! `vdso-bench`: time `gettimeofday`/`clock_gettime` through the vDSO, the raw syscall and the
//! vsyscall page (min/median ns and TSC cycles per call), optionally with the classic C loop, and
//! the module's time page when `/dev/vdso_probe` exists.
#![deny(clippy::print_stdout)]

use std::process::ExitCode;

use anyhow::Result;
use clap::builder::RangedU64ValueParser;
use clap::Parser;
use serde::Serialize;
use vdso_probe::bench::{self, Config, Report};
use vdso_probe::cli::{self, Status, Tool};
use vdso_probe::vdso::VsyscallMode;
use vdso_probe::{out, outln, timepage};

/// Benchmark time reads: vDSO vs syscall vs vsyscall page vs the module's time page.
///
/// Each row is `--batches` batches of `--batch-size` calls, each batch bracketed by a raw
/// CLOCK_MONOTONIC_RAW syscall (ns) and serialised TSC reads (cycles); the row gives the
/// minimum and median per call. The table is stamped with kernel, clocksource, vsyscall mode,
/// CPU, hypervisor, TSC rate and pinning.
///
/// A row is "skipped", with its reason in place of the figures, when that path cannot be
/// measured here: no [vsyscall] page (vsyscall=none), vsyscall=xonly without
/// --xonly-vsyscall, no /dev/vdso_probe or no TSC clock mode for the time-page rows, a symbol
/// the vDSO lacks. A skipped row is not an error: the exit status is 0 once the table (or the
/// JSON document) is complete.
#[derive(Debug, Parser)]
struct Args {
    /// Measured batches per row.
    #[arg(long, default_value_t = bench::DEFAULT_BATCHES,
          value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    batches: usize,
    /// Calls per batch.
    #[arg(long, default_value_t = bench::DEFAULT_BATCH_SIZE,
          value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    batch_size: usize,
    /// Pin to this CPU (sched_setaffinity); by default to the CPU it starts on.
    #[arg(long, value_name = "N")]
    cpu: Option<usize>,
    /// Do not pin: the scheduler may move the process between CPUs within a row.
    #[arg(long, conflicts_with = "cpu")]
    no_pin: bool,
    /// Also measure the vsyscall `gettimeofday` on `vsyscall=xonly` (each call faults into
    /// the kernel's emulation); by default that row is measured on `emulate` only.
    #[arg(long)]
    xonly_vsyscall: bool,
    /// Print one JSON document instead of the table (see the README, "Command-line conventions").
    #[arg(long)]
    json: bool,
    /// Also run the classic C loop (c/classic_loop.c).
    #[arg(long)]
    classic: bool,
    /// Calls per loop for --classic (the classic benchmark's 10,000,000).
    #[arg(long, default_value_t = 10_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    classic_iterations: u64,
}

static TOOL: Tool = Tool {
    name: env!("CARGO_BIN_NAME"),
    examples: &[
        (
            "vdso-bench",
            "the default run: 200 batches x 1000 calls per row",
        ),
        (
            "vdso-bench --cpu 0 --xonly-vsyscall",
            "pinned, with the vsyscall row on xonly",
        ),
        (
            "vdso-bench --batches 30 --batch-size 200 --json",
            "a short run as JSON",
        ),
        (
            "vdso-bench --classic",
            "also the classic gettimeofday C loop",
        ),
    ],
    problem: None,
    cannot_run: "--cpu not allowed, no vDSO, every row skipped",
};

fn main() -> ExitCode {
    TOOL.main(run)
}

/// The classic loop's figures in the JSON document.
#[derive(Debug, Serialize)]
struct ClassicJson {
    iterations: u64,
    libc_gettimeofday_ns_per_call: f64,
    syscall_gettimeofday_ns_per_call: f64,
    /// `null` when the vsyscall loop did not run (none, or xonly without --xonly-vsyscall).
    vsyscall_gettimeofday_ns_per_call: Option<f64>,
    libc_gettimeofday_cycles_per_call: f64,
    syscall_gettimeofday_cycles_per_call: f64,
    vsyscall_gettimeofday_cycles_per_call: Option<f64>,
}

/// One element of `runs`: the report, plus the classic loop (`null` without --classic).
#[derive(Debug, Serialize)]
struct Run<'a> {
    #[serde(flatten)]
    report: &'a Report,
    classic: Option<ClassicJson>,
}

/// FFI to `c/classic_loop.c`, compiled by build.rs.
mod classic {
    use anyhow::{ensure, Result};

    /// Mirrors `struct vdso_probe_classic_result`.
    #[repr(C)]
    #[derive(Debug, Default, Clone, Copy)]
    pub struct ClassicResult {
        pub iterations: u64,
        pub libc_ns: u64,
        pub syscall_ns: u64,
        pub vsyscall_ns: u64,
        pub libc_cycles: u64,
        pub syscall_cycles: u64,
        pub vsyscall_cycles: u64,
    }

    unsafe extern "C" {
        fn vdso_probe_classic_loop(
            iterations: u64,
            vsyscall: libc::c_int,
            out: *mut ClassicResult,
        ) -> libc::c_int;
    }

    /// Runs the C loops; the vsyscall one only if `vsyscall` (the page must be executable).
    pub fn run(iterations: u64, vsyscall: bool) -> Result<ClassicResult> {
        ensure!(iterations > 0, "iterations must be > 0");
        let mut out = ClassicResult::default();
        // SAFETY: the C function only writes `*out`, a valid exclusively borrowed
        // ClassicResult whose #[repr(C)] layout matches `struct vdso_probe_classic_result`
        // (seven uint64_t); it does not retain the pointer. It calls the vsyscall page only
        // when asked, which the caller does only when the page is executable.
        let rc =
            unsafe { vdso_probe_classic_loop(iterations, libc::c_int::from(vsyscall), &mut out) };
        if rc != 0 {
            return Err(std::io::Error::from_raw_os_error(rc).into());
        }
        Ok(out)
    }
}

fn run(args: Args) -> Result<Status> {
    let config = Config {
        batches: args.batches,
        batch_size: args.batch_size,
    };
    let cpu = if args.no_pin {
        None
    } else {
        args.cpu.or_else(bench::current_cpu)
    };
    let mut report = Report::run(config, cpu, args.xonly_vsyscall)?;
    // The time page rows (skipped with the reason when the module is not loaded).
    report
        .rows
        .extend(timepage::bench_rows(&bench::Bench::new(config)?));
    let classic = if args.classic {
        let mode = VsyscallMode::detect()?;
        let vsyscall = mode == VsyscallMode::Emulate || (mode.executable() && args.xonly_vsyscall);
        Some(classic::run(args.classic_iterations, vsyscall)?)
    } else {
        None
    };
    let per_call = |ns: u64, n: u64| ns as f64 / n as f64;
    let ran = |ns: u64, n: u64| (ns > 0).then(|| per_call(ns, n));

    if args.json {
        let run = Run {
            report: &report,
            classic: classic.map(|c| ClassicJson {
                iterations: c.iterations,
                libc_gettimeofday_ns_per_call: per_call(c.libc_ns, c.iterations),
                syscall_gettimeofday_ns_per_call: per_call(c.syscall_ns, c.iterations),
                vsyscall_gettimeofday_ns_per_call: ran(c.vsyscall_ns, c.iterations),
                libc_gettimeofday_cycles_per_call: per_call(c.libc_cycles, c.iterations),
                syscall_gettimeofday_cycles_per_call: per_call(c.syscall_cycles, c.iterations),
                vsyscall_gettimeofday_cycles_per_call: ran(c.vsyscall_ns, c.iterations)
                    .map(|_| per_call(c.vsyscall_cycles, c.iterations)),
            }),
        };
        cli::print_json("runs", &[run])?;
    } else {
        out!("{}", report.render_environment());
        outln!();
        out!("{}", report.render_table());
        if let Some(c) = classic {
            outln!();
            let (counter, unit) = if cfg!(target_arch = "aarch64") {
                ("cntvct_el0 ticks", "ticks/call")
            } else {
                ("cycles from one rdtsc pair", "cycles/call")
            };
            outln!(
                "classic C loop ({} calls each; ns from CLOCK_MONOTONIC_RAW, {counter} around \
                 the loop):",
                c.iterations
            );
            let line = |what: &str, ns: u64, cyc: u64| {
                outln!(
                    "  {what:<34} {:8.2} ns/call {:8.1} {unit}",
                    per_call(ns, c.iterations),
                    per_call(cyc, c.iterations)
                );
            };
            line("gettimeofday() via libc (vDSO):", c.libc_ns, c.libc_cycles);
            line("syscall(SYS_gettimeofday):", c.syscall_ns, c.syscall_cycles);
            if c.vsyscall_ns > 0 {
                line(
                    "vsyscall page 0xffffffffff600000:",
                    c.vsyscall_ns,
                    c.vsyscall_cycles,
                );
            } else {
                outln!(
                    "  vsyscall page: not run (vsyscall=none, or xonly without --xonly-vsyscall)"
                );
            }
        }
    }
    Ok(Status::Ok)
}
