// SPDX-License-Identifier: GPL-2.0
//! `vdso-timepage`: print the module's time page (`/dev/vdso_probe`) and compare the precise
//! and coarse MONOTONIC/REALTIME values computed from it with `clock_gettime` called just
//! before and just after. Exits 1 on a header mismatch or a value outside its bracket.
#![deny(clippy::print_stdout)]

use std::{path::PathBuf, process::ExitCode, thread, time::Duration};

use anyhow::Result;
use clap::Parser;
use serde_json::{json, Value};
use vdso_probe::cli::{self, Status, Tool};
use vdso_probe::{
    outln,
    timepage::{self, ClockParams, Snapshot, Stats, TimePage},
    vdso::{self, Clock},
};

/// Print the vdso_probe time page and compare its time with clock_gettime.
///
/// Maps /dev/vdso_probe, prints a consistent snapshot of every field (header, sequence and
/// update counts, clock mode, coarse clocks, the conversion parameters and offsets), then
/// reads precise (TSC clock mode only) and coarse MONOTONIC and REALTIME from the page, each
/// between two clock_gettime calls of the same clock: a precise value must lie inside that
/// bracket, a coarse one (the time of the last tick) must not be ahead of the later call.
#[derive(Debug, Parser)]
struct Args {
    /// Print one JSON document of all samples instead of text (see the README,
    /// "Command-line conventions").
    #[arg(long)]
    json: bool,
    /// Take N samples.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..))]
    watch: u32,
    /// Milliseconds between samples with --watch.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    interval_ms: u64,
    /// The device to map (any file holding a time page will do, e.g. a saved copy).
    #[arg(long, value_name = "PATH", default_value = timepage::DEVICE)]
    device: PathBuf,
}

static TOOL: Tool = Tool {
    name: env!("CARGO_BIN_NAME"),
    examples: &[
        ("vdso-timepage", "one sample"),
        (
            "vdso-timepage --watch 5 --interval-ms 200",
            "five samples, 200 ms apart",
        ),
        (
            "vdso-timepage --json --watch 3",
            "three samples as one JSON document",
        ),
    ],
    problem: Some(
        "the page's header does not match this program (magic, ABI version, size: MISMATCH), \
         or a value from the page is outside its clock_gettime bracket (OUTSIDE, AHEAD)",
    ),
    cannot_run: "vdso_probe not loaded, no device node, permission denied (root-only)",
};

fn main() -> ExitCode {
    TOOL.main(run)
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

    /// `inside`/`outside` (precise), `behind`/`ahead` (coarse), `unavailable`.
    fn verdict(&self) -> &'static str {
        match self.page {
            None => "unavailable",
            // The time at the last timekeeping update: behind by up to a tick, never ahead.
            Some(v) if self.kind == "coarse" => {
                if v <= self.after {
                    "behind"
                } else {
                    "ahead"
                }
            }
            Some(v) if (self.before..=self.after).contains(&v) => "inside",
            Some(_) => "outside",
        }
    }

    fn bad(&self) -> bool {
        matches!(self.verdict(), "outside" | "ahead")
    }

    fn json(&self) -> Value {
        json!({
            "clock": self.clock.short_name(),
            "kind": self.kind,
            "before_ns": self.before,
            "page_ns": self.page,
            "after_ns": self.after,
            "page_minus_before_ns": self.page.map(|v| v - self.before),
            "after_minus_page_ns": self.page.map(|v| self.after - v),
            "verdict": self.verdict(),
        })
    }

    fn name(&self) -> String {
        format!("{} {}", self.kind, self.clock.short_name())
    }

    fn line(&self) -> String {
        let name = self.name();
        match self.page {
            None => format!("{name:<18} not available from the page"),
            Some(v) => {
                let verdict = match self.verdict() {
                    "behind" => format!("behind the later call by {} ns", self.after - v),
                    "ahead" => format!(
                        "AHEAD of the later call by {} ns: a coarse value cannot be",
                        v - self.after
                    ),
                    "inside" => format!("inside the bracket of {} ns", self.after - self.before),
                    _ => format!("OUTSIDE the bracket of {} ns", self.after - self.before),
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
        "cycle_last={} mask={:#x} max_cycles={} mult={} shift={} xtime_nsec={} base_ns={}",
        c.cycle_last, c.mask, c.max_cycles, c.mult, c.shift, c.xtime_nsec, c.base_ns
    )
}

fn clock_json(c: &ClockParams) -> Value {
    json!({
        "cycle_last": c.cycle_last,
        "mask": format!("{:#x}", c.mask),
        "max_cycles": c.max_cycles,
        "mult": c.mult,
        "shift": c.shift,
        "xtime_nsec": c.xtime_nsec,
        "base_ns": c.base_ns,
    })
}

fn page_json(s: &Snapshot) -> Value {
    let p = &s.page;
    let ns =
        |t: &timepage::vdso_probe_timespec| i128::from(t.sec) * 1_000_000_000 + i128::from(t.nsec);
    json!({
        "magic": format!("{:#010x}", p.magic),
        "abi_version": p.abi_version,
        "size": p.size,
        "seq": p.seq,
        "update_count": p.update_count,
        "clock_mode": s.clock_mode(),
        "clock_was_set_seq": p.clock_was_set_seq,
        "clocksource": s.clocksource(),
        "realtime_coarse_ns": ns(&p.realtime_coarse),
        "monotonic_coarse_ns": ns(&p.monotonic_coarse),
        "boottime_coarse_ns": ns(&p.boottime_coarse),
        "tai_coarse_ns": ns(&p.tai_coarse),
        "mono": clock_json(&p.mono),
        "raw": clock_json(&p.raw),
        "offs_real_ns": p.offs_real_ns,
        "offs_boot_ns": p.offs_boot_ns,
        "offs_tai_ns": p.offs_tai_ns,
        "timens_monotonic_ns": p.timens_monotonic_ns,
        "timens_boottime_ns": p.timens_boottime_ns,
        "cycles": s.cycles,
    })
}

fn print_page(s: &Snapshot) {
    let p = &s.page;
    let ok = |good: bool| if good { "ok" } else { "MISMATCH" };
    outln!(
        "magic:             {:#010x} ({})",
        p.magic,
        ok(p.magic == timepage::MAGIC)
    );
    outln!(
        "abi_version:       {} (this program: {}, {})",
        p.abi_version,
        timepage::ABI_VERSION,
        ok(p.abi_version == timepage::ABI_VERSION)
    );
    outln!(
        "size:              {} (this program: {}, {})",
        p.size,
        timepage::ABI_SIZE,
        match (p.size as usize).cmp(&timepage::ABI_SIZE) {
            std::cmp::Ordering::Equal => "ok",
            std::cmp::Ordering::Greater => "ok, a compatible extension",
            std::cmp::Ordering::Less => "MISMATCH",
        }
    );
    outln!("seq:               {}", p.seq);
    outln!("update_count:      {}", p.update_count);
    outln!(
        "clock_mode:        {} ({})",
        s.clock_mode(),
        s.clock_mode().raw()
    );
    outln!("clock_was_set_seq: {}", p.clock_was_set_seq);
    outln!("clocksource:       {}", s.clocksource());
    outln!("realtime_coarse:   {}", fmt_ts(&p.realtime_coarse));
    outln!("monotonic_coarse:  {}", fmt_ts(&p.monotonic_coarse));
    outln!("boottime_coarse:   {}", fmt_ts(&p.boottime_coarse));
    outln!("tai_coarse:        {}", fmt_ts(&p.tai_coarse));
    outln!("mono:              {}", fmt_clock(&p.mono));
    outln!("raw:               {}", fmt_clock(&p.raw));
    outln!(
        "offs_real_ns:      {} ({})",
        p.offs_real_ns,
        fmt_ns(p.offs_real_ns.into())
    );
    outln!(
        "offs_boot_ns:      {} ({})",
        p.offs_boot_ns,
        fmt_ns(p.offs_boot_ns.into())
    );
    outln!(
        "offs_tai_ns:       {} ({})",
        p.offs_tai_ns,
        fmt_ns(p.offs_tai_ns.into())
    );
    outln!(
        "timens offsets:    monotonic {}, boottime {} (the page's time namespace; included \
         above)",
        fmt_ns(p.timens_monotonic_ns.into()),
        fmt_ns(p.timens_boottime_ns.into())
    );
    match s.cycles {
        Some(c) => outln!("counter at read:   {c}"),
        None => outln!(
            "counter at read:   - (clock mode {} has no counter this program reads)",
            s.clock_mode()
        ),
    }
    if let Some(v) = s.precise(Clock::MonotonicRaw) {
        outln!(
            "MONOTONIC_RAW:     {} (precise, from the snapshot)",
            fmt_ns(v)
        );
    }
    if let Some(v) = s.precise(Clock::Boottime) {
        outln!(
            "BOOTTIME:          {} (precise, from the snapshot)",
            fmt_ns(v)
        );
    }
    if let Some(v) = s.precise(Clock::Tai) {
        outln!(
            "TAI:               {} (precise, from the snapshot)",
            fmt_ns(v)
        );
    }
}

/// Takes one sample: prints it (text) or returns it (JSON); adds what is wrong to `bad`.
fn sample(page: &TimePage, args: &Args, bad: &mut Vec<String>) -> Result<Option<Value>> {
    let snap = page.snapshot();
    let mut brackets = Vec::new();
    for clock in [Clock::Monotonic, Clock::Realtime] {
        brackets.push(Bracket::take(clock, "precise", || {
            page.read_precise(clock)
        })?);
        brackets.push(Bracket::take(clock, "coarse", || page.read_coarse(clock))?);
    }
    for b in brackets.iter().filter(|b| b.bad()) {
        bad.push(format!("{} {}", b.name(), b.verdict()));
    }
    let stats = Stats::read();
    if args.json {
        let (stats, stats_error) = match &stats {
            Ok(s) => (serde_json::to_value(s)?, Value::Null),
            Err(e) => (Value::Null, Value::String(cli::error_line(e))),
        };
        return Ok(Some(json!({
            "page": page_json(&snap),
            "compare": brackets.iter().map(Bracket::json).collect::<Vec<_>>(),
            "stats": stats,
            "stats_error": stats_error,
        })));
    }
    print_page(&snap);
    outln!();
    outln!("compared with clock_gettime() called before and after the page read:");
    for b in &brackets {
        outln!("  {}", b.line());
    }
    if !snap.clock_mode().counter_readable() {
        outln!(
            "  (clock mode {}: no precise time from the page; coarse values lag by up to a tick)",
            snap.clock_mode()
        );
    }
    match &stats {
        Ok(s) => outln!(
            "stats:             mappings {} mmaps {} faults {} updates {} clock_mode {} clocksource {} abi_size {}",
            s.mappings, s.mmaps, s.faults, s.updates, s.clock_mode, s.clocksource, s.abi_size
        ),
        Err(e) => outln!("stats:             unavailable ({})", cli::error_line(e)),
    }
    Ok(None)
}

fn run(args: Args) -> Result<Status> {
    let page = TimePage::map(&args.device)?;
    // Nothing of a page with another layout can be interpreted (not even its sequence count).
    if let Err(e) = page.check_header() {
        if args.json {
            cli::print_json::<Value>("samples", &[])?;
        }
        return Err(cli::problem(format_args!(
            "{}: {} (MISMATCH)",
            args.device.display(),
            cli::error_line(&e)
        )));
    }
    let mut bad = Vec::new();
    let mut samples = Vec::new();
    for i in 0..args.watch {
        if i > 0 {
            thread::sleep(Duration::from_millis(args.interval_ms));
            if !args.json {
                outln!("----");
            }
        }
        samples.extend(sample(&page, &args, &mut bad)?);
    }
    if args.json {
        cli::print_json("samples", &samples)?;
    }
    if !bad.is_empty() {
        // Each kind once, in the order first seen, with how often over the samples.
        let mut kinds: Vec<(String, usize)> = Vec::new();
        for b in bad {
            match kinds.iter_mut().find(|(k, _)| *k == b) {
                Some((_, n)) => *n += 1,
                None => kinds.push((b, 1)),
            }
        }
        let list: Vec<String> = kinds
            .into_iter()
            .map(|(k, n)| {
                if n > 1 {
                    format!("{k} ({n} samples)")
                } else {
                    k
                }
            })
            .collect();
        return Err(cli::problem(format_args!(
            "{}: {}",
            args.device.display(),
            list.join("; ")
        )));
    }
    Ok(Status::Ok)
}
