// SPDX-License-Identifier: GPL-2.0
//! `vdso-bench`: time `gettimeofday`/`clock_gettime` through the vDSO, the raw syscall and the
//! vsyscall page (min/median ns and TSC cycles per call), optionally with the classic C loop, and
//! the module's time page when `/dev/vdso_probe` exists.

use anyhow::{bail, Result};
use clap::Parser;
use vdso_probe::bench::{self, Config, Report};
use vdso_probe::timepage;

/// Benchmark vDSO vs syscall vs vsyscall time reads.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Measured batches per row.
    #[arg(long, default_value_t = bench::DEFAULT_BATCHES)]
    batches: usize,
    /// Calls per batch.
    #[arg(long, default_value_t = bench::DEFAULT_BATCH_SIZE)]
    batch_size: usize,
    /// Pin to this CPU (sched_setaffinity).
    #[arg(long, value_name = "N")]
    cpu: Option<usize>,
    /// Also measure the vsyscall `gettimeofday` on `vsyscall=xonly` (each call faults into
    /// the kernel's emulation); by default that row is measured on `emulate` only.
    #[arg(long)]
    xonly_vsyscall: bool,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
    /// Also run the classic C loop (c/classic_loop.c).
    #[arg(long)]
    classic: bool,
    /// Calls per loop for --classic.
    #[arg(long, default_value_t = 1_000_000)]
    classic_iterations: u64,
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

fn main() -> Result<()> {
    let args = Args::parse();
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
        let mut value = serde_json::to_value(&report)?;
        if let Some(c) = classic {
            value["classic"] = serde_json::json!({
                "iterations": c.iterations,
                "libc_gettimeofday_ns_per_call": per_call(c.libc_ns, c.iterations),
                "syscall_gettimeofday_ns_per_call": per_call(c.syscall_ns, c.iterations),
            });
        }
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print!("{}", report.render_environment());
        println!();
        print!("{}", report.render_table());
        if let Some(c) = classic {
            println!();
            println!("classic C loop ({} calls each):", c.iterations);
            println!(
                "  gettimeofday() via libc (vDSO):    {:8.2} ns/call",
                per_call(c.libc_ns, c.iterations)
            );
            println!(
                "  syscall(SYS_gettimeofday):         {:8.2} ns/call",
                per_call(c.syscall_ns, c.iterations)
            );
        }
    }
    if report.rows.iter().any(|r| {
        matches!(r, bench::Entry::Skipped { name, .. }
            if !name.contains("vsyscall") && !name.starts_with("time page"))
    }) {
        bail!("some rows were skipped (see above)");
    }
    Ok(())
}
