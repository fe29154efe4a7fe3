// SPDX-License-Identifier: GPL-2.0
//! Micro-benchmark of the time-reading entry points: vDSO, raw system call and legacy
//! vsyscall page.
//!
//! Method: each row runs `batches` batches of `batch_size` calls. Every batch is bracketed
//! by
//!
//! * a raw `clock_gettime(CLOCK_MONOTONIC_RAW)` system call (ns; outermost), and
//! * ordered TSC reads (cycles; innermost): `lfence; rdtsc; lfence` before (the first fence
//!   waits for what came before, the second keeps the timed code from starting early) and
//!   `rdtscp; lfence` after (or `lfence; rdtsc; lfence` when the CPU lacks RDTSCP,
//!   CPUID.80000001H:EDX\[27\]).
//!
//! The per-call cost of a batch is its duration divided by `batch_size`; a row reports the
//! minimum, p10, median, p90 and maximum of these over all batches (nearest rank; one extra
//! warm-up batch is discarded) with the batch count. The bracket (the fastest pair of timer
//! reads around nothing, measured with each row) is subtracted from each batch's ns, as the
//! cycle columns exclude the clock reads; the `baseline (empty loop)` row shows what is left.
//!
//! "Cycles" are TSC ticks (reference cycles at the TSC frequency, which on CPUs with an
//! invariant TSC is constant and unrelated to the current core clock).
//!
//! Other code can add rows with [`Bench::measure`] (e.g. the module's time page).

use std::fmt::Write as _;
use std::hint::black_box;

use anyhow::{bail, ensure, Context, Result};
use serde::Serialize;

use crate::vdso::{self, Clock, LiveVdso, VdsoClockMode, VsyscallGettimeofday, VsyscallMode};

/// Default number of measured batches per row.
pub const DEFAULT_BATCHES: usize = 200;
/// Default number of calls per batch.
pub const DEFAULT_BATCH_SIZE: usize = 1000;

/// Why the vsyscall row is skipped on `vsyscall=xonly` unless asked for.
pub const XONLY_SKIP: &str = "[vsyscall] is xonly (--xp, not readable); a call still works, \
     faulting into the kernel's emulation as on emulate: --xonly-vsyscall measures it";

/// Benchmark parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Config {
    /// Measured batches per row.
    pub batches: usize,
    /// Calls per batch.
    pub batch_size: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            batches: DEFAULT_BATCHES,
            batch_size: DEFAULT_BATCH_SIZE,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// CPU identification and the TSC
// ---------------------------------------------------------------------------------------------

/// `cpuid(leaf, 0)` as `[eax, ebx, ecx, edx]`.
#[cfg(target_arch = "x86_64")]
fn cpuid(leaf: u32) -> [u32; 4] {
    #[allow(unused_unsafe)] // `__cpuid_count` is a safe fn on newer toolchains.
    // SAFETY: CPUID is available on every x86_64 CPU and has no side effects besides writing
    // the four registers the intrinsic returns; out-of-range leaves return defined values.
    let r = unsafe { core::arch::x86_64::__cpuid_count(leaf, 0) };
    [r.eax, r.ebx, r.ecx, r.edx]
}

#[cfg(not(target_arch = "x86_64"))]
fn cpuid(_leaf: u32) -> [u32; 4] {
    [0; 4]
}

fn regs_to_string(regs: &[u32]) -> String {
    let bytes: Vec<u8> = regs.iter().flat_map(|r| r.to_le_bytes()).collect();
    String::from_utf8_lossy(&bytes)
        .trim_matches(|c: char| c == '\0' || c.is_whitespace())
        .to_string()
}

/// CPU identification from CPUID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CpuInfo {
    /// Vendor string (leaf 0), e.g. `GenuineIntel`, `AuthenticAMD`.
    pub vendor: String,
    /// Brand string (leaves 0x80000002..4), e.g. `AMD EPYC 7R13 Processor`.
    pub model: String,
    /// Family/model/stepping from leaf 1 (display values); in JSON
    /// `{"family": 25, "model": 1, "stepping": 1}`.
    #[serde(serialize_with = "fms_json")]
    pub family_model_stepping: (u32, u32, u32),
    /// CPUID.1:EDX\[4\]: TSC present.
    pub tsc: bool,
    /// CPUID.80000001H:EDX\[27\]: RDTSCP present.
    pub rdtscp: bool,
    /// CPUID.80000007H:EDX\[8\]: invariant TSC.
    pub invariant_tsc: bool,
    /// CPUID.1:ECX\[31\]: running under a hypervisor (or an emulator that sets the bit).
    pub hypervisor: bool,
    /// Hypervisor vendor signature from leaf 0x40000000 (only read when `hypervisor` is set),
    /// e.g. `KVMKVMKVM`, `TCGTCGTCGTCG`, `Microsoft Hv`.
    pub hypervisor_vendor: Option<String>,
}

fn fms_json<S: serde::Serializer>(
    v: &(u32, u32, u32),
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Fms {
        family: u32,
        model: u32,
        stepping: u32,
    }
    Fms {
        family: v.0,
        model: v.1,
        stepping: v.2,
    }
    .serialize(s)
}

impl CpuInfo {
    /// Reads CPUID.
    pub fn detect() -> Self {
        let l0 = cpuid(0);
        let vendor = regs_to_string(&[l0[1], l0[3], l0[2]]);
        let l1 = if l0[0] >= 1 { cpuid(1) } else { [0; 4] };
        let max_ext = cpuid(0x8000_0000)[0];
        let ext = |leaf: u32| {
            if max_ext >= leaf {
                cpuid(leaf)
            } else {
                [0; 4]
            }
        };
        let model = if max_ext >= 0x8000_0004 {
            let mut regs = Vec::with_capacity(12);
            for leaf in 0x8000_0002..=0x8000_0004 {
                regs.extend_from_slice(&cpuid(leaf));
            }
            regs_to_string(&regs)
        } else {
            String::new()
        };
        let base_family = (l1[0] >> 8) & 0xf;
        let family = if base_family == 0xf {
            base_family + ((l1[0] >> 20) & 0xff)
        } else {
            base_family
        };
        let mut cpu_model = (l1[0] >> 4) & 0xf;
        if base_family == 0x6 || base_family == 0xf {
            cpu_model |= ((l1[0] >> 16) & 0xf) << 4;
        }
        let stepping = l1[0] & 0xf;
        let hypervisor = l1[2] & (1 << 31) != 0;
        let hypervisor_vendor = hypervisor.then(|| {
            let h = cpuid(0x4000_0000);
            regs_to_string(&h[1..4])
        });
        CpuInfo {
            vendor,
            model,
            family_model_stepping: (family, cpu_model, stepping),
            tsc: l1[3] & (1 << 4) != 0,
            rdtscp: ext(0x8000_0001)[3] & (1 << 27) != 0,
            invariant_tsc: ext(0x8000_0007)[3] & (1 << 8) != 0,
            hypervisor,
            hypervisor_vendor,
        }
    }

    /// A human name for the hypervisor signature; `None` on bare metal.
    pub fn hypervisor_name(&self) -> Option<&'static str> {
        let v = self.hypervisor_vendor.as_deref()?;
        Some(match v {
            "KVMKVMKVM" => "KVM",
            "TCGTCGTCGTCG" => "QEMU TCG (emulation)",
            "Microsoft Hv" => "Hyper-V",
            "VMwareVMware" => "VMware",
            "XenVMMXenVMM" => "Xen",
            "VBoxVBoxVBox" => "VirtualBox",
            "bhyve bhyve" => "bhyve",
            "ACRNACRNACRN" => "ACRN",
            "lrpepyh  vr" | "prl hyperv" => "Parallels",
            "" => "unknown (empty signature)",
            _ => "unknown",
        })
    }

    /// True under full-system emulation (QEMU TCG), where cycle counts do not reflect any
    /// real CPU.
    pub fn emulated(&self) -> bool {
        self.hypervisor_vendor.as_deref() == Some("TCGTCGTCGTCG")
    }
}

/// Serialised TSC reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Tsc {
    rdtscp: bool,
}

impl Tsc {
    /// `None` if the CPU has no TSC (CPUID.1:EDX\[4\] clear).
    /// On arm64 the counter is the architected virtual counter (`cntvct_el0`), always there.
    pub fn detect(cpu: &CpuInfo) -> Option<Self> {
        if cfg!(target_arch = "aarch64") {
            return Some(Tsc { rdtscp: false });
        }
        (cfg!(target_arch = "x86_64") && cpu.tsc).then_some(Tsc { rdtscp: cpu.rdtscp })
    }

    /// True if the end-of-interval read uses RDTSCP.
    pub fn uses_rdtscp(&self) -> bool {
        self.rdtscp
    }

    /// Start-of-interval read: `lfence; rdtsc; lfence` (earlier instructions complete first, and
    /// the timed ones start only after the read).
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    pub fn start(&self) -> u64 {
        use core::arch::x86_64::{_mm_lfence, _rdtsc};
        // SAFETY: LFENCE is part of SSE2, which every x86_64 CPU has; RDTSC exists because
        // `Tsc` is only constructed when CPUID.1:EDX.TSC is set. Neither touches memory.
        // (With CR4.TSD set RDTSC would raise SIGSEGV, a crash, not undefined behaviour.)
        unsafe {
            _mm_lfence();
            let t = _rdtsc();
            _mm_lfence();
            t
        }
    }

    /// End-of-interval read: `rdtscp; lfence` (or `lfence; rdtsc; lfence` without RDTSCP).
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    pub fn end(&self) -> u64 {
        use core::arch::x86_64::{__rdtscp, _mm_lfence, _rdtsc};
        if self.rdtscp {
            let mut aux = 0u32;
            // SAFETY: RDTSCP is present (CPUID.80000001H:EDX[27] checked in `detect`), `aux`
            // is a valid exclusive u32 for IA32_TSC_AUX; LFENCE is baseline SSE2.
            unsafe {
                let t = __rdtscp(&mut aux);
                _mm_lfence();
                t
            }
        } else {
            // SAFETY: as in `start`: LFENCE (SSE2) and RDTSC (checked CPUID bit) are present.
            unsafe {
                _mm_lfence();
                let t = _rdtsc();
                _mm_lfence();
                t
            }
        }
    }

    /// arm64: `isb; mrs cntvct_el0; isb`, the virtual counter ordered against the instructions
    /// around it (the vDSO's `__arch_get_hw_counter` has the first `isb`).
    #[cfg(target_arch = "aarch64")]
    #[inline(always)]
    pub fn start(&self) -> u64 {
        cntvct()
    }

    /// arm64: as [`Tsc::start`].
    #[cfg(target_arch = "aarch64")]
    #[inline(always)]
    pub fn end(&self) -> u64 {
        cntvct()
    }

    /// No counter on other arches.
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    #[inline(always)]
    pub fn start(&self) -> u64 {
        0
    }

    /// No counter on other arches.
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    #[inline(always)]
    pub fn end(&self) -> u64 {
        0
    }
}

/// The CPU line of an arm64 `/proc/cpuinfo`: implementer, part, variant, revision (MIDR_EL1).
fn arm64_cpu() -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let field = |k: &str| {
        text.lines()
            .find(|l| l.split(':').next().is_some_and(|n| n.trim() == k))
            .and_then(|l| l.split(':').nth(1))
            .map(|v| v.trim().to_string())
    };
    Some(format!(
        "implementer {} part {} variant {} revision {} (MIDR_EL1, /proc/cpuinfo)",
        field("CPU implementer")?,
        field("CPU part")?,
        field("CPU variant")?,
        field("CPU revision")?
    ))
}

/// The arm64 virtual counter, between two `isb`s: the time page's ordered read
/// ([`crate::timepage::counter_ordered`], the vDSO's), then an `isb` so that the instructions
/// after it do not start before it.
#[cfg(target_arch = "aarch64")]
#[inline(always)]
fn cntvct() -> u64 {
    let v = crate::timepage::counter_ordered().unwrap_or(0);
    // SAFETY: isb touches no memory and no register.
    unsafe { core::arch::asm!("isb", options(nostack, preserves_flags)) };
    v
}

/// `CLOCK_MONOTONIC_RAW` via the raw syscall, in ns.
#[inline]
fn monotonic_raw_ns() -> Result<u64> {
    let ts = vdso::syscall_clock_gettime(libc::CLOCK_MONOTONIC_RAW)?;
    u64::try_from(vdso::timespec_ns(&ts)).context("negative CLOCK_MONOTONIC_RAW")
}

/// Estimates the TSC frequency in MHz over `ms` milliseconds.
pub fn estimate_tsc_mhz(tsc: &Tsc, ms: u64) -> Result<f64> {
    let t0 = monotonic_raw_ns()?;
    let c0 = tsc.start();
    std::thread::sleep(std::time::Duration::from_millis(ms));
    let c1 = tsc.end();
    let t1 = monotonic_raw_ns()?;
    ensure!(t1 > t0, "CLOCK_MONOTONIC_RAW did not advance");
    Ok(c1.wrapping_sub(c0) as f64 * 1000.0 / (t1 - t0) as f64)
}

// ---------------------------------------------------------------------------------------------
// Measurement
// ---------------------------------------------------------------------------------------------

/// One measured row. Per-call values.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// Row label, e.g. `clock_gettime MONOTONIC vdso`.
    pub name: String,
    /// Measured batches.
    pub batches: usize,
    /// Calls per batch.
    pub batch_size: usize,
    /// Minimum over batches of (batch ns / batch size). A batch's ns exclude the bracket: the
    /// cost of the timer reads around it (their fastest empty pair, measured with the row) is
    /// subtracted, as the cycle columns exclude the clock_gettime() calls.
    pub min_ns: f64,
    /// 10th percentile over batches (nearest rank).
    pub p10_ns: f64,
    /// Median over batches of (batch ns / batch size).
    pub median_ns: f64,
    /// 90th percentile over batches (nearest rank).
    pub p90_ns: f64,
    /// Maximum over batches.
    pub max_ns: f64,
    /// The bracket subtracted from each batch, ns (a whole batch's, not per call).
    pub bracket_ns: f64,
    /// Minimum over batches of (batch TSC ticks / batch size); `None` without a TSC.
    pub min_cycles: Option<f64>,
    /// Median over batches of (batch TSC ticks / batch size).
    pub median_cycles: Option<f64>,
}

/// A row of the report: measured, or skipped with a reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Entry {
    /// The row was measured.
    Measured(Row),
    /// The row could not be measured.
    Skipped {
        /// Row label.
        name: String,
        /// Why it was skipped.
        reason: String,
    },
}

impl Entry {
    /// The row label.
    pub fn name(&self) -> &str {
        match self {
            Entry::Measured(r) => &r.name,
            Entry::Skipped { name, .. } => name,
        }
    }

    fn skipped(name: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Entry::Skipped {
            name: name.into(),
            reason: crate::cli::one_line(&format!("{reason:#}")),
        }
    }
}

/// Minimum and median of `v` (which must be non-empty).
fn min_median(v: &mut [f64]) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    (v[0], median)
}

/// The `p`-th percentile of sorted, non-empty `v` by nearest rank (`p` in 0..=100).
fn percentile(v: &[f64], p: usize) -> f64 {
    let rank = (p * v.len()).div_ceil(100).max(1);
    v[rank - 1]
}

/// The benchmark driver.
#[derive(Debug, Clone)]
pub struct Bench {
    config: Config,
    tsc: Option<Tsc>,
}

impl Bench {
    /// A driver for `config`, with TSC support detected from CPUID.
    pub fn new(config: Config) -> Result<Self> {
        ensure!(config.batches > 0, "batches must be > 0");
        ensure!(config.batch_size > 0, "batch size must be > 0");
        Ok(Bench {
            config,
            tsc: Tsc::detect(&CpuInfo::detect()),
        })
    }

    /// The configuration.
    pub fn config(&self) -> Config {
        self.config
    }

    /// The TSC reader, if the CPU has a TSC.
    pub fn tsc(&self) -> Option<Tsc> {
        self.tsc
    }

    /// Measures `f` (one call per invocation): one discarded warm-up batch, then
    /// `config.batches` batches of `config.batch_size` calls.
    pub fn measure(&self, name: &str, mut f: impl FnMut()) -> Result<Row> {
        let Config {
            batches,
            batch_size,
        } = self.config;
        let mut ns = Vec::with_capacity(batches);
        let mut cycles = Vec::with_capacity(batches);
        // The bracket: the same timer reads around nothing, the fastest of 32.
        let mut bracket = u64::MAX;
        for _ in 0..32 {
            let t0 = monotonic_raw_ns()?;
            let c0 = self.tsc.map_or(0, |t| t.start());
            let c1 = self.tsc.map_or(0, |t| t.end());
            let t1 = monotonic_raw_ns()?;
            black_box((c0, c1));
            bracket = bracket.min(t1.saturating_sub(t0));
        }
        for batch in 0..=batches {
            let t0 = monotonic_raw_ns()?;
            let c0 = self.tsc.map_or(0, |t| t.start());
            for _ in 0..batch_size {
                f();
            }
            let c1 = self.tsc.map_or(0, |t| t.end());
            let t1 = monotonic_raw_ns()?;
            if batch == 0 {
                continue; // warm-up: page faults, cold caches, branch predictors
            }
            ns.push(t1.saturating_sub(t0).saturating_sub(bracket) as f64 / batch_size as f64);
            cycles.push(c1.wrapping_sub(c0) as f64 / batch_size as f64);
        }
        let (min_ns, median_ns) = min_median(&mut ns);
        let (p10_ns, p90_ns, max_ns) = (percentile(&ns, 10), percentile(&ns, 90), ns[ns.len() - 1]);
        let (min_cycles, median_cycles) = if self.tsc.is_some() {
            let (a, b) = min_median(&mut cycles);
            (Some(a), Some(b))
        } else {
            (None, None)
        };
        Ok(Row {
            name: name.to_string(),
            batches,
            batch_size,
            min_ns,
            p10_ns,
            median_ns,
            p90_ns,
            max_ns,
            bracket_ns: bracket as f64,
            min_cycles,
            median_cycles,
        })
    }

    /// Like [`Bench::measure`] but turns an error into a skipped entry.
    pub fn entry(&self, name: &str, f: impl FnMut()) -> Entry {
        match self.measure(name, f) {
            Ok(row) => Entry::Measured(row),
            Err(e) => Entry::skipped(name, e),
        }
    }

    /// Runs the standard rows: an empty-loop baseline, `gettimeofday` via vDSO, syscall and
    /// vsyscall, and `clock_gettime` via vDSO and syscall for every [`Clock`].
    ///
    /// Each entry point is called once before measuring; a failing call turns the row into a
    /// skipped entry carrying the error. `xonly_vsyscall`: see [`Bench::vsyscall_row`].
    pub fn standard_rows(&self, xonly_vsyscall: bool) -> Vec<Entry> {
        let mut rows = vec![self.entry("baseline (empty loop)", || black_box(()))];

        let live = LiveVdso::locate();
        let vdso_gtod = live
            .as_ref()
            .map_err(|e| format!("{e:#}"))
            .and_then(|l| l.gettimeofday().map_err(|e| format!("{e:#}")));
        let vdso_cgt = live
            .as_ref()
            .map_err(|e| format!("{e:#}"))
            .and_then(|l| l.clock_gettime().map_err(|e| format!("{e:#}")));

        // gettimeofday
        let name = "gettimeofday vdso";
        rows.push(match vdso_gtod {
            Err(e) => Entry::skipped(name, e),
            Ok(f) => self.gettimeofday_entry(name, |tv| f.call(tv)),
        });
        rows.push(self.gettimeofday_entry("gettimeofday syscall", |tv| {
            vdso::raw_syscall_gettimeofday(tv) as libc::c_int
        }));
        rows.push(self.vsyscall_row(xonly_vsyscall));

        // clock_gettime, each clock via vDSO then syscall
        for clock in Clock::ALL {
            let id = clock.id();
            let name = format!("clock_gettime {} vdso", clock.short_name());
            rows.push(match &vdso_cgt {
                Err(e) => Entry::skipped(name, e),
                Ok(f) => self.checked_entry(
                    &name,
                    || f.call(id, &mut vdso::zero_timespec()),
                    || {
                        let mut ts = vdso::zero_timespec();
                        black_box(f.call(black_box(id), black_box(&mut ts)));
                    },
                ),
            });
            let name = format!("clock_gettime {} syscall", clock.short_name());
            rows.push(self.checked_entry(
                &name,
                || vdso::raw_syscall_clock_gettime(id, &mut vdso::zero_timespec()) as i32,
                || {
                    let mut ts = vdso::zero_timespec();
                    black_box(vdso::raw_syscall_clock_gettime(
                        black_box(id),
                        black_box(&mut ts),
                    ));
                },
            ));
        }
        rows
    }

    /// The legacy vsyscall `gettimeofday` row: measured on `vsyscall=emulate`, and on `xonly`
    /// only if `xonly_vsyscall` (otherwise skipped with [`XONLY_SKIP`]); skipped on `none`.
    pub fn vsyscall_row(&self, xonly_vsyscall: bool) -> Entry {
        let name = "gettimeofday vsyscall";
        match VsyscallGettimeofday::new() {
            Err(e) => Entry::skipped(name, e),
            Ok(f) if f.xonly() && !xonly_vsyscall => Entry::skipped(name, XONLY_SKIP),
            Ok(f) => self.gettimeofday_entry(name, |tv| f.call(tv)),
        }
    }

    /// A `gettimeofday` row: `call` is probed once, then measured.
    fn gettimeofday_entry(
        &self,
        name: &str,
        call: impl Fn(&mut libc::timeval) -> libc::c_int,
    ) -> Entry {
        self.checked_entry(
            name,
            || call(&mut vdso::zero_timeval()),
            || {
                let mut tv = vdso::zero_timeval();
                black_box(call(black_box(&mut tv)));
            },
        )
    }

    /// Runs `probe` once; if it returns non-zero, skips the row, else measures `f`.
    fn checked_entry(
        &self,
        name: &str,
        probe: impl FnOnce() -> libc::c_int,
        f: impl FnMut(),
    ) -> Entry {
        match probe() {
            0 => self.entry(name, f),
            // -1: syscall(2) convention, errno set; other negatives: vDSO -errno convention.
            -1 => Entry::skipped(
                name,
                format!("probe call failed: {}", std::io::Error::last_os_error()),
            ),
            rc => Entry::skipped(
                name,
                format!(
                    "probe call returned {rc}: {}",
                    std::io::Error::from_raw_os_error(rc.saturating_neg())
                ),
            ),
        }
    }
}

/// Measures `f` with `config` (convenience wrapper around [`Bench::measure`]).
/// The medians of several runs of one row, as (fastest, median, slowest): side-by-side
/// comparisons under an emulator whose runs land in a fast or a slow state compare both the
/// median run and the fastest (0, 0, 0 for no runs).
pub fn run_medians(runs: &[Row]) -> (f64, f64, f64) {
    let mut v: Vec<f64> = runs.iter().map(|r| r.median_ns).collect();
    v.sort_by(f64::total_cmp);
    match (v.first(), v.get(v.len() / 2), v.last()) {
        (Some(&a), Some(&b), Some(&c)) => (a, b, c),
        _ => (0.0, 0.0, 0.0),
    }
}

pub fn measure(name: &str, config: Config, f: impl FnMut()) -> Result<Row> {
    Bench::new(config)?.measure(name, f)
}

// ---------------------------------------------------------------------------------------------
// Environment stamps and the report
// ---------------------------------------------------------------------------------------------

/// Pins the calling thread to `cpu` with `sched_setaffinity`.
pub fn pin_to_cpu(cpu: usize) -> Result<()> {
    let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
    ensure!(cpu < max, "CPU {cpu} is beyond CPU_SETSIZE ({max})");
    // SAFETY: cpu_set_t is a plain bitmask for which all-zero is the valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, exclusively borrowed cpu_set_t and `cpu` < CPU_SETSIZE was
    // checked above (the libc crate's CPU_SET also panics rather than writing out of bounds).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t and its exact size is passed; pid 0 = this thread.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("sched_setaffinity(CPU {cpu})"));
    }
    Ok(())
}

/// The CPU the calling thread runs on (`sched_getcpu`).
pub fn current_cpu() -> Option<usize> {
    // SAFETY: sched_getcpu has no preconditions.
    let cpu = unsafe { libc::sched_getcpu() };
    usize::try_from(cpu).ok()
}

/// `uname(2)` fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Uname {
    /// `release`, e.g. `6.8.0-45-generic`.
    pub release: String,
    /// `version`, e.g. `#1 SMP PREEMPT_DYNAMIC ...`.
    pub version: String,
    /// `machine`, e.g. `x86_64`.
    pub machine: String,
}

/// Calls `uname(2)`.
pub fn uname() -> Result<Uname> {
    // SAFETY: utsname is plain arrays of c_char; all-zero is a valid value.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, exclusively borrowed utsname.
    if unsafe { libc::uname(&mut u) } != 0 {
        return Err(std::io::Error::last_os_error()).context("uname");
    }
    let field = crate::c_chars;
    Ok(Uname {
        release: field(&u.release),
        version: field(&u.version),
        machine: field(&u.machine),
    })
}

/// What the benchmark ran on.
#[derive(Debug, Clone, Serialize)]
pub struct Environment {
    /// `uname` of the running kernel.
    pub kernel: Option<Uname>,
    /// Current clocksource.
    pub clocksource: Option<String>,
    /// Whether the clocksource lets the vDSO avoid the syscall.
    pub clocksource_vdso: Option<VdsoClockMode>,
    /// vsyscall page mode from `/proc/self/maps`.
    pub vsyscall: Option<VsyscallMode>,
    /// CPUID-derived identification, hypervisor bit and signature.
    pub cpu: CpuInfo,
    /// Human hypervisor name (`None`: bare metal as far as CPUID tells).
    pub hypervisor: Option<String>,
    /// QEMU TCG: cycle counts are emulated.
    pub emulated: bool,
    /// TSC frequency estimated against `CLOCK_MONOTONIC_RAW`, in MHz.
    pub tsc_mhz_estimate: Option<f64>,
    /// End-of-interval TSC read uses RDTSCP.
    pub tsc_uses_rdtscp: Option<bool>,
    /// CPU the benchmark was pinned to, if any.
    pub pinned_cpu: Option<usize>,
    /// CPU the benchmark thread was on when the stamps were taken.
    pub current_cpu: Option<usize>,
    /// Address of the vDSO.
    pub vdso_base: Option<String>,
    /// vDSO build-id (hex).
    pub vdso_build_id: Option<String>,
    /// Whether this binary is statically linked (no `PT_INTERP`, judged by `AT_BASE == 0`).
    pub static_binary: bool,
}

impl Environment {
    /// Collects the stamps. Missing information becomes `None` rather than an error.
    pub fn collect(tsc: Option<Tsc>, pinned_cpu: Option<usize>) -> Self {
        let cpu = CpuInfo::detect();
        let clocksource = vdso::current_clocksource().ok();
        let live = LiveVdso::locate().ok();
        // SAFETY: getauxval has no preconditions.
        let at_base = unsafe { libc::getauxval(libc::AT_BASE) };
        Environment {
            kernel: uname().ok(),
            clocksource_vdso: clocksource.as_deref().map(vdso::vdso_clock_mode),
            clocksource,
            vsyscall: VsyscallMode::detect().ok(),
            hypervisor: cpu.hypervisor_name().map(str::to_string),
            emulated: cpu.emulated(),
            tsc_mhz_estimate: tsc.and_then(|t| estimate_tsc_mhz(&t, 50).ok()),
            tsc_uses_rdtscp: tsc.map(|t| t.uses_rdtscp()),
            cpu,
            pinned_cpu,
            current_cpu: current_cpu(),
            vdso_base: live.as_ref().map(|l| format!("{:#x}", l.base())),
            vdso_build_id: live
                .as_ref()
                .and_then(|l| l.elf().build_id())
                .map(vdso::hex),
            static_binary: at_base == 0,
        }
    }
}

/// A complete benchmark report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Where it ran.
    pub environment: Environment,
    /// Parameters.
    pub config: Config,
    /// Rows, in order.
    pub rows: Vec<Entry>,
}

impl Report {
    /// Runs the standard benchmark (optionally pinned to `cpu`; `xonly_vsyscall`: see
    /// [`Bench::standard_rows`]).
    pub fn run(config: Config, cpu: Option<usize>, xonly_vsyscall: bool) -> Result<Self> {
        if let Some(cpu) = cpu {
            pin_to_cpu(cpu)?;
        }
        let bench = Bench::new(config)?;
        let rows = bench.standard_rows(xonly_vsyscall);
        if rows.iter().all(|r| matches!(r, Entry::Skipped { .. })) {
            bail!("every benchmark row was skipped");
        }
        Ok(Report {
            environment: Environment::collect(bench.tsc(), cpu),
            config,
            rows,
        })
    }

    /// The stamps as `key: value` lines.
    pub fn render_environment(&self) -> String {
        let e = &self.environment;
        let opt = |v: Option<String>| v.unwrap_or_else(|| "unknown".to_string());
        let mut s = String::new();
        let kernel = e
            .kernel
            .as_ref()
            .map(|k| format!("{} {} ({})", k.release, k.version, k.machine));
        let _ = writeln!(s, "kernel:       {}", opt(kernel));
        let cs = e.clocksource.as_ref().map(|c| {
            let mode = match vdso::vdso_clock_mode(c) {
                VdsoClockMode::Capable => "vDSO-capable",
                VdsoClockMode::Fallback => "no vDSO clock mode: vDSO falls back to syscall",
                VdsoClockMode::Unknown => "vDSO capability unknown",
            };
            format!("{c} ({mode})")
        });
        let _ = writeln!(s, "clocksource:  {}", opt(cs));
        let _ = writeln!(
            s,
            "vsyscall:     {}",
            opt(e.vsyscall.as_ref().map(ToString::to_string))
        );
        if cfg!(target_arch = "aarch64") {
            // No CPUID: the MIDR fields /proc/cpuinfo prints, no hypervisor bit.
            let _ = writeln!(s, "cpu:          {}", opt(arm64_cpu()));
            let counter = match e.tsc_mhz_estimate {
                Some(mhz) => format!("cntvct_el0, ~{mhz:.1} MHz, read isb;mrs;isb"),
                None => "cntvct_el0, frequency unknown".to_string(),
            };
            let _ = writeln!(
                s,
                "counter:      {counter} (the cyc columns count its ticks)"
            );
        } else {
            self.render_x86_cpu(&mut s);
        }
        let _ = writeln!(
            s,
            "cpu pinning:  {}",
            match e.pinned_cpu {
                Some(c) => format!("pinned to CPU {c}"),
                None => format!(
                    "not pinned (running on CPU {})",
                    opt(e.current_cpu.map(|c| c.to_string()))
                ),
            }
        );
        let _ = writeln!(
            s,
            "vdso:         {} build-id {}",
            opt(e.vdso_base.clone()),
            opt(e.vdso_build_id.clone())
        );
        let _ = writeln!(
            s,
            "binary:       {}",
            if e.static_binary { "static" } else { "dynamic" }
        );
        self.render_method(&mut s);
        s
    }

    /// The x86 stamps: CPUID's identification, the hypervisor, the TSC.
    fn render_x86_cpu(&self, s: &mut String) {
        let e = &self.environment;
        let (f, m, st) = e.cpu.family_model_stepping;
        let _ = writeln!(
            s,
            "cpu:          {} [{} family {f:#x} model {m:#x} stepping {st}]",
            e.cpu.model, e.cpu.vendor
        );
        let hv = match (&e.hypervisor, &e.cpu.hypervisor_vendor) {
            (Some(name), Some(sig)) => format!(
                "{name} (signature {}){}",
                crate::cli::quote(sig),
                if e.emulated {
                    "; cycle counts are emulated"
                } else {
                    ""
                }
            ),
            _ => "none (CPUID.1:ECX[31] clear)".to_string(),
        };
        let _ = writeln!(s, "hypervisor:   {hv}");
        let tsc = match (e.tsc_mhz_estimate, e.tsc_uses_rdtscp) {
            (Some(mhz), Some(rdtscp)) => format!(
                "~{mhz:.0} MHz, {}invariant, end read {}",
                if e.cpu.invariant_tsc { "" } else { "not " },
                if rdtscp {
                    "rdtscp;lfence"
                } else {
                    "lfence;rdtsc;lfence (no RDTSCP)"
                }
            ),
            (None, Some(_)) => "present, frequency unknown".to_string(),
            _ => "not available (cycles not reported)".to_string(),
        };
        let _ = writeln!(s, "tsc:          {tsc}");
    }

    /// The method line.
    fn render_method(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "method:       {} batches x {} calls (+1 warm-up), per call = (batch - bracket) / {}; \
             bracket = the fastest CLOCK_MONOTONIC_RAW + counter read pair around nothing; \
             percentiles by nearest rank over the batches",
            self.config.batches, self.config.batch_size, self.config.batch_size
        );
    }

    /// The rows as an aligned table.
    pub fn render_table(&self) -> String {
        render_rows(&self.rows)
    }
}

/// Renders entries as an aligned table (min/median ns and TSC cycles per call).
pub fn render_rows(rows: &[Entry]) -> String {
    let width = rows
        .iter()
        .map(|r| r.name().len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<width$}  {:>9}  {:>9}  {:>9}  {:>9}  {:>9}  {:>9}  {:>10}",
        "call", "min ns", "p10 ns", "median ns", "p90 ns", "max ns", "min cyc", "median cyc"
    );
    let cyc = |c: Option<f64>| c.map_or_else(|| "-".to_string(), |c| format!("{c:.1}"));
    for row in rows {
        match row {
            Entry::Measured(r) => {
                let _ = writeln!(
                    s,
                    "{:<width$}  {:>9.2}  {:>9.2}  {:>9.2}  {:>9.2}  {:>9.2}  {:>9}  {:>10}",
                    r.name,
                    r.min_ns,
                    r.p10_ns,
                    r.median_ns,
                    r.p90_ns,
                    r.max_ns,
                    cyc(r.min_cycles),
                    cyc(r.median_cycles)
                );
            }
            Entry::Skipped { name, reason } => {
                let _ = writeln!(s, "{name:<width$}  skipped: {reason}");
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: Config = Config {
        batches: 5,
        batch_size: 50,
    };

    #[test]
    fn min_median_odd_even() {
        assert_eq!(min_median(&mut [3.0, 1.0, 2.0]), (1.0, 2.0));
        assert_eq!(min_median(&mut [4.0, 1.0, 2.0, 3.0]), (1.0, 2.5));
    }

    #[test]
    fn measure_custom_closure() {
        let mut calls = 0u64;
        let row = measure("counter", SMALL, || calls += 1).unwrap();
        assert_eq!(calls, (SMALL.batches as u64 + 1) * SMALL.batch_size as u64);
        assert_eq!(row.batches, SMALL.batches);
        assert!(row.min_ns <= row.p10_ns && row.p10_ns <= row.median_ns);
        assert!(row.median_ns <= row.p90_ns && row.p90_ns <= row.max_ns);
        assert!(row.bracket_ns > 0.0, "{row:?}");
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&v, 10), 2.0);
        assert_eq!(percentile(&v, 50), 10.0);
        assert_eq!(percentile(&v, 90), 18.0);
        assert_eq!(percentile(&v, 100), 20.0);
        assert_eq!(percentile(&[7.0], 10), 7.0);
    }

    /// Where the clocksource can be read from userspace, the vDSO row is faster than the system
    /// call row by far (a kernel entry costs 50-100 ns on real hardware, far more under TCG).
    #[test]
    fn vdso_beats_the_syscall_on_a_vdso_clocksource() {
        let cs = crate::vdso::current_clocksource().unwrap_or_default();
        if crate::vdso::vdso_clock_mode(&cs) != crate::vdso::VdsoClockMode::Capable {
            crate::testing::skip_env(format!("clocksource {cs} cannot be read from userspace"));
            return;
        }
        let bench = Bench::new(Config {
            batches: 21,
            batch_size: 200,
        })
        .unwrap();
        let rows = bench.standard_rows(false);
        let median = |name: &str| match rows.iter().find(|r| r.name() == name) {
            Some(Entry::Measured(r)) => r.median_ns,
            other => panic!("{name}: {other:?}"),
        };
        let (vdso, sys) = (
            median("clock_gettime MONOTONIC vdso"),
            median("clock_gettime MONOTONIC syscall"),
        );
        assert!(
            vdso > 0.0 && vdso * 3.0 < sys,
            "vdso {vdso} ns, syscall {sys} ns"
        );
    }

    #[test]
    fn rejects_empty_config() {
        assert!(Bench::new(Config {
            batches: 0,
            batch_size: 1
        })
        .is_err());
    }

    #[test]
    fn standard_rows_complete() {
        let bench = Bench::new(SMALL).unwrap();
        let rows = bench.standard_rows(true);
        // baseline + 3 gettimeofday + 2 per clock
        assert_eq!(rows.len(), 1 + 3 + 2 * Clock::ALL.len());
        for r in &rows {
            match r {
                Entry::Measured(row) => {
                    assert!(row.min_ns > 0.0 || row.name.starts_with("baseline"))
                }
                Entry::Skipped { name, reason } => {
                    // Only the vsyscall row may legitimately be skipped on a host.
                    assert_eq!(name, "gettimeofday vsyscall", "{name} skipped: {reason}");
                    assert!(!VsyscallMode::detect().unwrap().executable());
                }
            }
        }
        let vsyscall = VsyscallMode::detect().unwrap();
        let measured = rows
            .iter()
            .any(|r| matches!(r, Entry::Measured(row) if row.name == "gettimeofday vsyscall"));
        assert_eq!(measured, vsyscall.executable());
        // Without the opt-in, xonly's row is skipped with its reason.
        let rows = bench.standard_rows(false);
        let row = rows
            .iter()
            .find(|r| r.name() == "gettimeofday vsyscall")
            .unwrap();
        match row {
            Entry::Measured(_) => assert_eq!(vsyscall, VsyscallMode::Emulate),
            Entry::Skipped { reason, .. } => {
                assert!(vsyscall != VsyscallMode::Emulate, "{reason}");
                if vsyscall == VsyscallMode::Xonly {
                    assert_eq!(reason, XONLY_SKIP);
                }
            }
        }
    }

    #[test]
    fn report_serialises() {
        let report = Report::run(SMALL, None, false).unwrap();
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["config"]["batches"], 5);
        assert!(json["rows"].as_array().unwrap().len() > 10);
        assert!(json["rows"][0]["status"] == "measured");
        assert!(!report.render_table().is_empty());
        assert!(report.render_environment().contains("clocksource:"));
    }

    /// CPUID as this code decodes it against the kernel's decoding of the same CPU
    /// (`/proc/cpuinfo`, first processor).
    #[test]
    fn cpu_detect_matches_proc_cpuinfo() {
        let text = std::fs::read_to_string("/proc/cpuinfo").expect("/proc/cpuinfo");
        let first = text.split("\n\n").next().unwrap_or_default();
        let field = |k: &str| {
            first
                .lines()
                .find_map(|l| {
                    let (key, v) = l.split_once(':')?;
                    (key.trim() == k).then(|| v.trim().to_string())
                })
                .unwrap_or_else(|| panic!("no `{k}` in /proc/cpuinfo"))
        };
        let flags = field("flags");
        let flag = |f: &str| flags.split_whitespace().any(|x| x == f);
        let num = |k: &str| field(k).parse::<u32>().expect(k);
        let cpu = CpuInfo::detect();
        assert_eq!(cpu.vendor, field("vendor_id"));
        assert_eq!(
            cpu.family_model_stepping,
            (num("cpu family"), num("model"), num("stepping"))
        );
        assert_eq!(cpu.model.trim(), field("model name"));
        assert_eq!(cpu.tsc, flag("tsc"), "tsc flag");
        assert_eq!(cpu.rdtscp, flag("rdtscp"), "rdtscp flag");
        assert_eq!(cpu.hypervisor, flag("hypervisor"), "hypervisor flag");
        // The kernel sets nonstop_tsc from CPUID.80000007H:EDX[8] only (early_init_intel,
        // early_init_amd; constant_tsc also has family/model rules).
        assert_eq!(
            cpu.invariant_tsc,
            flag("nonstop_tsc"),
            "invariant TSC against nonstop_tsc"
        );
    }

    /// The TSC rate this code estimates, against the kernel's own (`tsc_khz`, as its log says
    /// it: the refined calibration if any, else the detected one).
    #[test]
    fn tsc_estimate_matches_the_kernel_rate() {
        let Ok(out) = std::process::Command::new("dmesg").output() else {
            return crate::testing::skip_env("dmesg cannot run");
        };
        let log = String::from_utf8_lossy(&out.stdout);
        let mhz = |tag: &str| {
            log.lines()
                .filter_map(|l| l.split_once(tag))
                .filter_map(|(_, rest)| rest.split_whitespace().next()?.parse::<f64>().ok())
                .next_back()
        };
        let Some(kernel) =
            mhz("tsc: Refined TSC clocksource calibration: ").or_else(|| mhz("tsc: Detected "))
        else {
            return crate::testing::skip_env("the kernel log has no TSC rate (dmesg restricted?)");
        };
        let cpu = CpuInfo::detect();
        let tsc = Tsc::detect(&cpu).expect("a TSC");
        let ours = estimate_tsc_mhz(&tsc, 200).unwrap();
        assert!(
            (ours - kernel).abs() / kernel < 0.01,
            "estimated {ours:.3} MHz, the kernel's tsc_khz {kernel:.3} MHz"
        );
    }

    #[test]
    fn cpu_detect_sane() {
        let cpu = CpuInfo::detect();
        assert!(!cpu.vendor.is_empty());
        assert!(cpu.tsc, "x86_64 CPUs have a TSC");
        if let Some(t) = Tsc::detect(&cpu) {
            let a = t.start();
            let b = t.end();
            assert!(b >= a);
        }
    }
}
