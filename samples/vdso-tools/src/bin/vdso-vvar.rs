// SPDX-License-Identifier: GPL-2.0
//! `vdso-vvar [--json] [--layout FILE]`: decode this process's own `[vvar]` (the kernel's vDSO
//! data pages) with the running kernel's layout from the module, print every field, and check
//! the decode against the vDSO itself. Thin over `vdso_probe::vvar`.
#![deny(clippy::print_stdout)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use serde_json::{json, Value};
use vdso_probe::cli::{self, Status, Tool};
use vdso_probe::outln;
use vdso_probe::vdso::{Clock, LiveVdso};
use vdso_probe::vvar::{
    self, clock_name, fmt_ns, Comparison, Layout, Namespace, TimeData, VdsoClock, Vvar,
    VvarSnapshot, AUX_BASETIMES, LAYOUT_PATH, TIMENS_OFFSETS,
};

/// Decode this process's own [vvar] with the kernel's layout and check it against the vDSO.
///
/// Reads the running kernel's vDSO data layout (include/vdso/datapage.h as the kernel compiled
/// it) from /sys/kernel/debug/vdso/layout, which vdso_probe publishes; finds [vvar] in
/// /proc/self/maps and copies its time data in place with the vDSO's sequence rule: every
/// vdso_clock (clock_data[HRES_COARSE], clock_data[RAW], aux_clock_data[]) with its basetime[],
/// the timezone, hrtimer_res and, when the vDSO has getrandom, the rng page. In a time namespace
/// the namespace page's offset[] too, and the real data from the page the kernel moved it to.
/// Then checks the decode: the coarse clocks must equal __vdso_clock_gettime at the same seq,
/// and precise MONOTONIC (clock mode tsc) must lie between two __vdso_clock_gettime calls.
#[derive(Debug, Parser)]
struct Args {
    /// Print one JSON document instead of text (see the README, "Command-line conventions").
    #[arg(long)]
    json: bool,
    /// Read the layout from FILE instead of /sys/kernel/debug/vdso/layout (e.g. a saved copy).
    #[arg(long, value_name = "FILE", default_value = LAYOUT_PATH)]
    layout: PathBuf,
}

static TOOL: Tool = Tool {
    name: env!("CARGO_BIN_NAME"),
    examples: &[
        ("vdso-vvar", "decode [vvar] and check it against the vDSO"),
        ("vdso-vvar --json", "as one JSON document"),
        (
            "vdso-vvar --layout layout.txt",
            "with a saved copy of the module's layout file",
        ),
        (
            "unshare --time --monotonic 86400 --fork vdso-vvar",
            "in a new time namespace: its page's offsets too",
        ),
    ],
    problem: Some(
        "the layout cannot be decoded with (a field missing, a size not its type's), the \
         [vvar] data is inconsistent (fewer pages than the layout, a seq that never settles, a \
         namespace page where the real data must be), or the decode disagrees with the vDSO (a \
         coarse clock not equal at the same seq, precise MONOTONIC outside its bracket)",
    ),
    cannot_run: "no layout (vdso_probe not loaded: insmod vdso_probe.ko; debugfs not mounted), \
                 FILE unreadable, no [vvar] (vdso=0), /proc/self/maps unreadable",
};

fn main() -> ExitCode {
    TOOL.main(run)
}

/// The clocks the snapshot's time is shown for, each with how it is read.
const TIMES: [(Clock, &str); 7] = [
    (Clock::Realtime, "precise"),
    (Clock::Monotonic, "precise"),
    (Clock::MonotonicRaw, "precise"),
    (Clock::Boottime, "precise"),
    (Clock::Tai, "precise"),
    (Clock::RealtimeCoarse, "coarse"),
    (Clock::MonotonicCoarse, "coarse"),
];

fn time_of(s: &VvarSnapshot, clock: Clock, kind: &str) -> Option<i128> {
    if kind == "coarse" {
        s.coarse(clock)
    } else {
        s.precise(clock)
    }
}

/// The `basetime[]` entries shown for `clock_data[i]` (or an aux clock): `(id, shifted)`.
fn basetimes(l: &Layout, aux: bool, i: usize) -> &'static [(usize, bool)] {
    if aux {
        AUX_BASETIMES
    } else {
        l.role(i).basetimes()
    }
}

fn basetime_name(aux: bool, id: usize) -> String {
    if aux {
        "AUX".to_string()
    } else {
        clock_name(id)
    }
}

fn print_clock(l: &Layout, name: &str, aux: bool, i: usize, c: &VdsoClock) {
    let p = format!("{name}[{i}]");
    outln!("{p}.seq: {}", c.seq);
    outln!("{p}.clock_mode: {}", c.clock_mode);
    outln!("{p}.cycle_last: {}", c.cycle_last);
    match c.max_cycles {
        Some(m) => outln!("{p}.max_cycles: {m}"),
        None => outln!("{p}.max_cycles: absent"),
    }
    outln!("{p}.mask: {:#x}", c.mask);
    outln!("{p}.mult: {}", c.mult);
    outln!("{p}.shift: {}", c.shift);
    for &(id, shifted) in basetimes(l, aux, i) {
        if let Some(ts) = c.basetime(id) {
            outln!(
                "{p}.basetime.{}: {}",
                basetime_name(aux, id),
                fmt_ns(ts.ns(shifted.then_some(c.shift)))
            );
        }
    }
}

fn print_ns_page(ns: &TimeData) {
    for (i, c) in ns.clock_data.iter().enumerate() {
        let p = format!("ns.clock_data[{i}]");
        outln!("{p}.seq: {}", c.seq);
        outln!("{p}.clock_mode: {}", c.clock_mode);
        for &id in TIMENS_OFFSETS {
            if let Some(o) = c.offset(id) {
                outln!("{p}.offset.{}: {}", clock_name(id), fmt_ns(o.ns()));
            }
        }
    }
}

fn opt_ns(v: Option<i128>) -> String {
    v.map_or_else(|| "-".to_string(), fmt_ns)
}

fn comparison_line(c: &Comparison) -> String {
    match (c.kind, c.verdict) {
        (_, vvar::Verdict::Unavailable) => format!(
            "unavailable: clock_mode {} (only tsc can be computed here)",
            c.clock_mode
        ),
        (_, vvar::Verdict::Unsettled) => format!(
            "unsettled: the data changed during each of {} tries",
            vvar::COMPARE_TRIES
        ),
        ("coarse", v) => format!(
            "{v}: decoded {}, vDSO {} at seq {}",
            opt_ns(c.decoded_ns),
            opt_ns(c.vdso_ns),
            c.seq
        ),
        (_, v) => format!(
            "{v}: {} <= {} <= {}",
            opt_ns(c.before_ns),
            opt_ns(c.decoded_ns),
            opt_ns(c.after_ns)
        ),
    }
}

fn print_text(args: &Args, v: &Vvar, s: &VvarSnapshot, checks: &[Comparison]) {
    let l = &s.layout;
    outln!("layout: {}", args.layout.display());
    outln!("vvar: {:#x}-{:#x}", v.start(), v.end());
    outln!("namespace: {}", s.namespace);
    outln!("data_page: {}", s.data_page);
    for (i, c) in s.data.clock_data.iter().enumerate() {
        print_clock(l, "clock_data", false, i, c);
    }
    for (i, c) in s.data.aux_clock_data.iter().enumerate() {
        print_clock(l, "aux_clock_data", true, i, c);
    }
    outln!("tz_minuteswest: {}", s.data.tz_minuteswest);
    outln!("tz_dsttime: {}", s.data.tz_dsttime);
    outln!("hrtimer_res: {}", s.data.hrtimer_res);
    match &s.rng {
        Some(r) => {
            outln!("rng.generation: {}", r.generation);
            outln!("rng.is_ready: {}", r.is_ready);
        }
        None => outln!("rng: absent (the vDSO has no __vdso_getrandom)"),
    }
    if let Some(ns) = &s.ns_page {
        print_ns_page(ns);
    }
    match s.cycles {
        Some(c) => outln!("cycles: {c}"),
        None => outln!("cycles: - (clock_mode is not tsc)"),
    }
    for (clock, kind) in TIMES {
        let v = time_of(s, clock, kind);
        outln!(
            "time.{}: {}",
            clock.short_name(),
            v.map_or_else(|| "unavailable".to_string(), fmt_ns)
        );
    }
    for c in checks {
        outln!("check.{}: {}", c.clock.short_name(), comparison_line(c));
    }
}

fn clock_json(l: &Layout, aux: bool, i: usize, c: &VdsoClock) -> Value {
    let basetime: Vec<Value> = basetimes(l, aux, i)
        .iter()
        .filter_map(|&(id, shifted)| {
            let ts = c.basetime(id)?;
            Some(json!({
                "clock": basetime_name(aux, id),
                "id": id,
                "sec": ts.sec,
                "nsec": ts.nsec,
                "ns": ts.ns(shifted.then_some(c.shift)),
            }))
        })
        .collect();
    json!({
        "seq": c.seq,
        "clock_mode": c.clock_mode.name,
        "clock_mode_raw": c.clock_mode.raw,
        "cycle_last": c.cycle_last,
        "max_cycles": c.max_cycles,
        "mask": format!("{:#x}", c.mask),
        "mult": c.mult,
        "shift": c.shift,
        "basetime": basetime,
    })
}

fn ns_page_json(ns: &TimeData) -> Value {
    let clocks: Vec<Value> = ns
        .clock_data
        .iter()
        .map(|c| {
            let offset: Vec<Value> = TIMENS_OFFSETS
                .iter()
                .filter_map(|&id| {
                    let o = c.offset(id)?;
                    Some(json!({
                        "clock": clock_name(id),
                        "id": id,
                        "sec": o.sec,
                        "nsec": o.nsec,
                        "ns": o.ns(),
                    }))
                })
                .collect();
            json!({
                "seq": c.seq,
                "clock_mode": c.clock_mode.name,
                "clock_mode_raw": c.clock_mode.raw,
                "offset": offset,
            })
        })
        .collect();
    json!({ "clock_data": clocks })
}

fn snapshot_json(args: &Args, v: &Vvar, s: &VvarSnapshot, checks: &[Comparison]) -> Value {
    let l = &s.layout;
    let clocks = |aux: bool, list: &[VdsoClock]| -> Vec<Value> {
        list.iter()
            .enumerate()
            .map(|(i, c)| clock_json(l, aux, i, c))
            .collect()
    };
    let times: Vec<Value> = TIMES
        .iter()
        .map(|&(clock, kind)| {
            json!({
                "clock": clock.short_name(),
                "kind": kind,
                "ns": time_of(s, clock, kind),
            })
        })
        .collect();
    let checks: Vec<Value> = checks
        .iter()
        .map(|c| {
            json!({
                "clock": c.clock.short_name(),
                "kind": c.kind,
                "verdict": c.verdict.to_string(),
                "decoded_ns": c.decoded_ns,
                "vdso_ns": c.vdso_ns,
                "before_ns": c.before_ns,
                "after_ns": c.after_ns,
                "seq": c.seq,
                "clock_mode": c.clock_mode,
            })
        })
        .collect();
    json!({
        "layout": args.layout.display().to_string(),
        "vvar_start": format!("{:#x}", v.start()),
        "vvar_end": format!("{:#x}", v.end()),
        "namespace": s.namespace.to_string(),
        "data_page": s.data_page,
        "clock_data": clocks(false, &s.data.clock_data),
        "aux_clock_data": clocks(true, &s.data.aux_clock_data),
        "tz_minuteswest": s.data.tz_minuteswest,
        "tz_dsttime": s.data.tz_dsttime,
        "hrtimer_res": s.data.hrtimer_res,
        "rng": s.rng.map(|r| json!({"generation": r.generation, "is_ready": r.is_ready})),
        "ns_page": s.ns_page.as_ref().map(ns_page_json),
        "cycles": s.cycles,
        "time": times,
        "checks": checks,
    })
}

fn run(args: Args) -> Result<Status> {
    // Unreadable: cannot tell (2). Readable but not decodable with: a problem (1).
    let text = Layout::read_text(&args.layout)?;
    let layout = Layout::parse(&text).map_err(|e| {
        cli::problem(format_args!(
            "{}: {}",
            args.layout.display(),
            cli::error_line(&e)
        ))
    })?;
    let v = Vvar::locate(layout)?;
    let snap = v.snapshot()?;
    let consistent = snap.check();
    let checks = match &consistent {
        Ok(()) => vvar::compare_with_vdso(&v, &LiveVdso::locate()?.clock_gettime()?)?,
        Err(_) => Vec::new(),
    };
    if args.json {
        cli::print_json("snapshots", &[snapshot_json(&args, &v, &snap, &checks)])?;
    } else {
        print_text(&args, &v, &snap, &checks);
    }
    if let Err(e) = consistent {
        return Err(cli::problem(cli::error_line(&e)));
    }
    let bad: Vec<String> = checks
        .iter()
        .filter(|c| c.verdict.is_bad())
        .map(|c| format!("{} {} {}", c.kind, c.clock.short_name(), c.verdict))
        .collect();
    if !bad.is_empty() {
        return Err(cli::problem(format_args!(
            "the decode disagrees with the vDSO: {}{}",
            bad.join(", "),
            match snap.namespace {
                Namespace::Root => "",
                Namespace::Time => " (in a time namespace)",
            }
        )));
    }
    Ok(Status::Ok)
}
