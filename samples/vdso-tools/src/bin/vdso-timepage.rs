// SPDX-License-Identifier: GPL-2.0
//! `vdso-timepage`: print the module's time page (`/dev/vdso_probe`) and compare the precise
//! and coarse MONOTONIC/REALTIME values computed from it with `clock_gettime` called just
//! before and just after.

use std::{path::Path, process::ExitCode, thread, time::Duration};

use anyhow::Result;
use clap::Parser;
use serde_json::{json, Value};
use vdso_probe::{
    timepage::{self, ClockParams, Snapshot, Stats, TimePage},
    vdso::{self, Clock},
};

/// Print the vdso_probe time page and compare it with clock_gettime.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Print JSON (one object per sample) instead of text.
    #[arg(long)]
    json: bool,
    /// Print N samples.
    #[arg(long, value_name = "N", default_value_t = 1)]
    watch: u32,
    /// Milliseconds between samples with --watch.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    interval_ms: u64,
}

/// `clock_gettime(clock)` in ns (through libc, i.e. the vDSO when it can).
fn gettime(clock: Clock) -> Result<i128> {
    Ok(vdso::timespec_ns(&vdso::libc_clock_gettime(clock.id())?))
}

/// A page value bracketed by two `clock_gettime` calls of the same clock.
struct Bracket {
    clock: Clock,
    kind: &'static str,
    before: i128,
    page: Option<i128>,
    after: i128,
}

impl Bracket {
    fn take(clock: Clock, kind: &'static str, read: impl FnOnce() -> Option<i128>) -> Result<Self> {
        let before = gettime(clock)?;
        let page = read();
        let after = gettime(clock)?;
        Ok(Bracket {
            clock,
            kind,
            before,
            page,
            after,
        })
    }

    fn json(&self) -> Value {
        json!({
            "clock": self.clock.short_name(),
            "kind": self.kind,
            "before_ns": self.before.to_string(),
            "page_ns": self.page.map(|v| v.to_string()),
            "after_ns": self.after.to_string(),
            "page_minus_before_ns": self.page.map(|v| (v - self.before) as i64),
            "after_minus_page_ns": self.page.map(|v| (self.after - v) as i64),
        })
    }

    fn line(&self) -> String {
        let name = format!("{} {}", self.kind, self.clock.short_name());
        match self.page {
            None => format!("{name:<18} not available from the page"),
            Some(v) => {
                let verdict = if self.kind == "coarse" {
                    // The time at the last timekeeping update: behind by up to a tick.
                    format!("behind the later call by {} ns", self.after - v)
                } else if (self.before..=self.after).contains(&v) {
                    format!("inside the bracket of {} ns", self.after - self.before)
                } else {
                    format!("OUTSIDE the bracket of {} ns", self.after - self.before)
                };
                format!(
                    "{name:<18} {}  page-before {:+} ns, after-page {:+} ns ({verdict})",
                    fmt_ns(v),
                    v - self.before,
                    self.after - v,
                )
            }
        }
    }
}

/// `sec.nnnnnnnnn`.
fn fmt_ns(ns: i128) -> String {
    let sign = if ns < 0 { "-" } else { "" };
    let a = ns.unsigned_abs();
    format!("{sign}{}.{:09}", a / 1_000_000_000, a % 1_000_000_000)
}

fn fmt_ts(ts: &timepage::vdso_probe_timespec) -> String {
    fmt_ns(i128::from(ts.sec) * 1_000_000_000 + i128::from(ts.nsec))
}

fn fmt_clock(c: &ClockParams) -> String {
    format!(
        "cycle_last={} mask={:#x} mult={} shift={} xtime_nsec={} base_ns={}",
        c.cycle_last, c.mask, c.mult, c.shift, c.xtime_nsec, c.base_ns
    )
}

fn clock_json(c: &ClockParams) -> Value {
    json!({
        "cycle_last": c.cycle_last,
        "mask": c.mask,
        "mult": c.mult,
        "shift": c.shift,
        "xtime_nsec": c.xtime_nsec,
        "base_ns": c.base_ns,
    })
}

fn page_json(s: &Snapshot) -> Value {
    let p = &s.page;
    let ts = |t: &timepage::vdso_probe_timespec| json!({ "sec": t.sec, "nsec": t.nsec });
    json!({
        "magic": p.magic,
        "abi_version": p.abi_version,
        "size": p.size,
        "seq": p.seq,
        "update_count": p.update_count,
        "clock_mode": s.clock_mode(),
        "clock_was_set_seq": p.clock_was_set_seq,
        "clocksource": s.clocksource(),
        "realtime_coarse": ts(&p.realtime_coarse),
        "monotonic_coarse": ts(&p.monotonic_coarse),
        "boottime_coarse": ts(&p.boottime_coarse),
        "tai_coarse": ts(&p.tai_coarse),
        "mono": clock_json(&p.mono),
        "raw": clock_json(&p.raw),
        "offs_real_ns": p.offs_real_ns,
        "offs_boot_ns": p.offs_boot_ns,
        "offs_tai_ns": p.offs_tai_ns,
        "cycles": s.cycles,
    })
}

fn print_page(s: &Snapshot) {
    let p = &s.page;
    let ok = |good: bool| if good { "ok" } else { "MISMATCH" };
    println!(
        "magic:             {:#010x} ({})",
        p.magic,
        ok(p.magic == timepage::MAGIC)
    );
    println!(
        "abi_version:       {} (this program: {}, {})",
        p.abi_version,
        timepage::ABI_VERSION,
        ok(p.abi_version == timepage::ABI_VERSION)
    );
    println!(
        "size:              {} (this program: {}, {})",
        p.size,
        timepage::ABI_SIZE,
        ok(p.size as usize == timepage::ABI_SIZE)
    );
    println!("seq:               {}", p.seq);
    println!("update_count:      {}", p.update_count);
    println!(
        "clock_mode:        {} ({})",
        s.clock_mode(),
        s.clock_mode().raw()
    );
    println!("clock_was_set_seq: {}", p.clock_was_set_seq);
    println!("clocksource:       {}", s.clocksource());
    println!("realtime_coarse:   {}", fmt_ts(&p.realtime_coarse));
    println!("monotonic_coarse:  {}", fmt_ts(&p.monotonic_coarse));
    println!("boottime_coarse:   {}", fmt_ts(&p.boottime_coarse));
    println!("tai_coarse:        {}", fmt_ts(&p.tai_coarse));
    println!("mono:              {}", fmt_clock(&p.mono));
    println!("raw:               {}", fmt_clock(&p.raw));
    println!(
        "offs_real_ns:      {} ({})",
        p.offs_real_ns,
        fmt_ns(p.offs_real_ns.into())
    );
    println!(
        "offs_boot_ns:      {} ({})",
        p.offs_boot_ns,
        fmt_ns(p.offs_boot_ns.into())
    );
    println!(
        "offs_tai_ns:       {} ({})",
        p.offs_tai_ns,
        fmt_ns(p.offs_tai_ns.into())
    );
    match s.cycles {
        Some(c) => println!("tsc at read:       {c}"),
        None => println!("tsc at read:       - (clock mode is not tsc)"),
    }
    if let Some(v) = s.precise(Clock::MonotonicRaw) {
        println!(
            "MONOTONIC_RAW:     {} (precise, from the snapshot)",
            fmt_ns(v)
        );
    }
    if let Some(v) = s.precise(Clock::Boottime) {
        println!(
            "BOOTTIME:          {} (precise, from the snapshot)",
            fmt_ns(v)
        );
    }
    if let Some(v) = s.precise(Clock::Tai) {
        println!(
            "TAI:               {} (precise, from the snapshot)",
            fmt_ns(v)
        );
    }
}

fn sample(page: &TimePage, args: &Args) -> Result<()> {
    let snap = page.snapshot();
    let mut brackets = Vec::new();
    for clock in [Clock::Monotonic, Clock::Realtime] {
        brackets.push(Bracket::take(clock, "precise", || {
            page.read_precise(clock)
        })?);
        brackets.push(Bracket::take(clock, "coarse", || page.read_coarse(clock))?);
    }
    let stats = Stats::read();
    if args.json {
        let value = json!({
            "page": page_json(&snap),
            "compare": brackets.iter().map(Bracket::json).collect::<Vec<_>>(),
            "stats": match &stats {
                Ok(s) => serde_json::to_value(s)?,
                Err(e) => json!({ "error": format!("{e:#}") }),
            },
        });
        println!("{}", serde_json::to_string(&value)?);
    } else {
        print_page(&snap);
        println!();
        println!("compared with clock_gettime() called before and after the page read:");
        for b in &brackets {
            println!("  {}", b.line());
        }
        if snap.clock_mode() != timepage::ClockMode::Tsc {
            println!(
                "  (clock mode {}: no precise time from the page; coarse values lag by up to a tick)",
                snap.clock_mode()
            );
        }
        match &stats {
            Ok(s) => println!(
                "stats:             mappings {} mmaps {} faults {} updates {} clock_mode {} clocksource {} abi_size {}",
                s.mappings, s.mmaps, s.faults, s.updates, s.clock_mode, s.clocksource, s.abi_size
            ),
            Err(e) => println!("stats:             unavailable ({e:#})"),
        }
    }
    Ok(())
}

fn run(args: &Args) -> Result<()> {
    let page = TimePage::open()?;
    for i in 0..args.watch.max(1) {
        if i > 0 {
            thread::sleep(Duration::from_millis(args.interval_ms));
            if !args.json {
                println!("----");
            }
        }
        sample(&page, args)?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !Path::new(timepage::DEVICE).exists() {
        eprintln!(
            "vdso-timepage: {} does not exist: insmod vdso_probe.ko first",
            timepage::DEVICE
        );
        return ExitCode::FAILURE;
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vdso-timepage: {e:#}");
            ExitCode::FAILURE
        }
    }
}
