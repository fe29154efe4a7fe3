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
    /// Pin to this CPU (sched_setaffinity).
    #[arg(long, value_name = "N")]
    cpu: Option<usize>,
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
    /// Calls per loop for --classic.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
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
    }

    unsafe extern "C" {
        fn vdso_probe_classic_loop(iterations: u64, out: *mut ClassicResult) -> libc::c_int;
    }

    /// Runs the C loop.
    pub fn run(iterations: u64) -> Result<ClassicResult> {
        ensure!(iterations > 0, "iterations must be > 0");
        let mut out = ClassicResult::default();
        // SAFETY: the C function only writes `*out`, a valid exclusively borrowed
        // ClassicResult whose #[repr(C)] layout matches `struct vdso_probe_classic_result`
        // (three uint64_t); it does not retain the pointer.
        let rc = unsafe { vdso_probe_classic_loop(iterations, &mut out) };
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
    let mut report = Report::run(config, args.cpu, args.xonly_vsyscall)?;
    // The time page rows (skipped with the reason when the module is not loaded).
    report
        .rows
        .extend(timepage::bench_rows(&bench::Bench::new(config)?));
    let classic = if args.classic {
        Some(classic::run(args.classic_iterations)?)
    } else {
        None
    };
    let per_call = |ns: u64, n: u64| ns as f64 / n as f64;

    if args.json {
        let run = Run {
            report: &report,
            classic: classic.map(|c| ClassicJson {
                iterations: c.iterations,
                libc_gettimeofday_ns_per_call: per_call(c.libc_ns, c.iterations),
                syscall_gettimeofday_ns_per_call: per_call(c.syscall_ns, c.iterations),
            }),
        };
        cli::print_json("runs", &[run])?;
    } else {
        out!("{}", report.render_environment());
        outln!();
        out!("{}", report.render_table());
        if let Some(c) = classic {
            outln!();
            outln!("classic C loop ({} calls each):", c.iterations);
            outln!(
                "  gettimeofday() via libc (vDSO):    {:8.2} ns/call",
                per_call(c.libc_ns, c.iterations)
            );
            outln!(
                "  syscall(SYS_gettimeofday):         {:8.2} ns/call",
                per_call(c.syscall_ns, c.iterations)
            );
        }
    }
    Ok(Status::Ok)
}
