// SPDX-License-Identifier: GPL-2.0
//! The `[vvar]` decoder (`vdso_probe::vvar`, `vdso-vvar`) against the vDSO itself: what it
//! decodes from the kernel's own data pages, with the module's layout, must be what
//! `__vdso_clock_gettime` returns from them: the coarse clocks exactly, at the same `seq`;
//! precise MONOTONIC between two calls. On tsc, on hpet (clock mode `none`: no precise time,
//! coarse still exact) and in a time namespace (the namespace page's offsets equal
//! `/proc/self/timens_offsets`, the real data in the timens slot).

use crate::{
    proc::{ensure_module, new_time_namespace, timens_offsets, wait_until, Forked},
    Outcome, TestFn,
};
use anyhow::{bail, ensure, Context, Result};
use std::{fs, time::Duration};
use vdso_probe::{
    vdso::{self, timespec_ns, Clock, LiveVdso, VdsoClockGettime},
    vvar::{fmt_ns, Layout, Namespace, Vvar, VvarSnapshot},
};

/// The `[vvar]` decoder tests.
pub const TESTS: &[(&str, TestFn)] = &[
    ("vvar-decode-tsc", decode_tsc),
    ("vvar-decode-hpet", decode_hpet),
    ("vvar-decode-timens", decode_timens),
];

const CLOCKSOURCE: &str = "/sys/devices/system/clocksource/clocksource0/current_clocksource";
const AVAILABLE: &str = "/sys/devices/system/clocksource/clocksource0/available_clocksource";
/// The tool, as the guest image installs it.
const TOOL: &str = "/bin/vdso-vvar";
/// Coarse comparisons retried while the data's `seq` moves.
const TRIES: usize = 20;
/// Precise readings bracketed per test.
const PRECISE_READS: usize = 200;

/// Switches the clocksource; switches back to the one before when dropped (a failed test too).
struct Clocksource(String);

impl Clocksource {
    fn switch(to: &str) -> Result<Self> {
        let old = vdso::current_clocksource()?;
        fs::write(CLOCKSOURCE, to).with_context(|| format!("echo {to} > {CLOCKSOURCE}"))?;
        let guard = Clocksource(old);
        let now = vdso::current_clocksource()?;
        ensure!(now == to, "clocksource is {now} after switching to {to}");
        Ok(guard)
    }
}

impl Drop for Clocksource {
    fn drop(&mut self) {
        let _ = fs::write(CLOCKSOURCE, &self.0);
    }
}

/// The module's layout and this process's `[vvar]`, and its vDSO's `clock_gettime`.
fn open() -> Result<(Vvar, VdsoClockGettime)> {
    ensure_module()?;
    let layout = Layout::read()?;
    Ok((Vvar::locate(layout)?, LiveVdso::locate()?.clock_gettime()?))
}

fn mode_of(s: &VvarSnapshot) -> &str {
    &s.data.clock_data[s.layout.cs_hres_coarse].clock_mode.name
}

fn seq_of(s: &VvarSnapshot) -> u32 {
    s.data.clock_data[s.layout.cs_hres_coarse].seq
}

/// (a) A snapshot at seq s, then the vDSO's MONOTONIC_COARSE and REALTIME_COARSE; with seq
/// still s afterwards, the decoded coarse values are the vDSO's exactly. Tried again while the
/// seq moves; returns the snapshot compared.
fn coarse_equal(v: &Vvar, f: &VdsoClockGettime) -> Result<VvarSnapshot> {
    for _ in 0..TRIES {
        let s = v.snapshot()?;
        s.check()?;
        let mono = timespec_ns(&f.get(Clock::MonotonicCoarse)?);
        let real = timespec_ns(&f.get(Clock::RealtimeCoarse)?);
        if v.data_seq() != seq_of(&s) {
            continue;
        }
        let (dm, dr) = (
            s.coarse(Clock::MonotonicCoarse)
                .context("no MONOTONIC_COARSE decoded")?,
            s.coarse(Clock::RealtimeCoarse)
                .context("no REALTIME_COARSE decoded")?,
        );
        ensure!(
            dm == mono && dr == real,
            "at seq {} ({}): decoded MONOTONIC_COARSE {} REALTIME_COARSE {}, the vDSO {} and {}",
            seq_of(&s),
            s.namespace,
            fmt_ns(dm),
            fmt_ns(dr),
            fmt_ns(mono),
            fmt_ns(real)
        );
        return Ok(s);
    }
    bail!("the time data changed during each of {TRIES} coarse comparisons")
}

/// (b) t0 = the vDSO's MONOTONIC, a snapshot (with the TSC read inside its read section),
/// t1 = the vDSO's MONOTONIC: t0 <= decoded precise MONOTONIC <= t1, [`PRECISE_READS`] times.
/// Fails if the clock mode is not `tsc` (then nothing precise can be decoded).
fn precise_in_bracket(v: &Vvar, f: &VdsoClockGettime) -> Result<()> {
    let mut widest = 0;
    for i in 0..PRECISE_READS {
        let t0 = timespec_ns(&f.get(Clock::Monotonic)?);
        let s = v.snapshot()?;
        let t1 = timespec_ns(&f.get(Clock::Monotonic)?);
        ensure!(
            s.is_tsc(),
            "read {i}: clock mode {} (clocksource {}), not {COUNTER_MODE}",
            mode_of(&s),
            vdso::current_clocksource().unwrap_or_default()
        );
        let d = s
            .precise_monotonic()
            .context("tsc, but no precise MONOTONIC decoded")?;
        ensure!(
            t0 <= d && d <= t1,
            "read {i} ({}): decoded MONOTONIC {} outside [{}, {}] (cycles {:?}, seq {})",
            s.namespace,
            fmt_ns(d),
            fmt_ns(t0),
            fmt_ns(t1),
            s.cycles,
            seq_of(&s)
        );
        widest = widest.max(t1 - t0);
    }
    println!(
        "{PRECISE_READS} precise MONOTONIC decodes inside their brackets (widest {widest} ns)"
    );
    Ok(())
}

/// Runs `vdso-vvar ARGS`; its exit status and stdout.
fn run_tool(args: &[&str]) -> Result<(i32, String)> {
    let out = std::process::Command::new(TOOL)
        .args(args)
        .output()
        .with_context(|| format!("running {TOOL}"))?;
    let code = out.status.code().unwrap_or(-1);
    if code != 0 {
        print!("{}", String::from_utf8_lossy(&out.stdout));
        println!(
            "{TOOL} {args:?} stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok((code, String::from_utf8_lossy(&out.stdout).into_owned()))
}

/// (c) `vdso-vvar` exits 0, and its `--json` document says clock mode `mode` with every check
/// passed.
fn tool_agrees(mode: &str) -> Result<()> {
    let (code, _) = run_tool(&[])?;
    ensure!(code == 0, "{TOOL} exits {code}, not 0");
    let (code, text) = run_tool(&["--json"])?;
    ensure!(code == 0, "{TOOL} --json exits {code}, not 0");
    let doc: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{TOOL} --json: {text}"))?;
    ensure!(
        doc["tool"] == "vdso-vvar",
        "not a vdso-vvar document: {text}"
    );
    let s = &doc["snapshots"][0];
    ensure!(
        s["clock_data"][0]["clock_mode"] == mode,
        "{TOOL} --json: clock_mode {}, not {mode}",
        s["clock_data"][0]["clock_mode"]
    );
    ensure!(
        s["namespace"] == "root",
        "{TOOL} --json: namespace {}",
        s["namespace"]
    );
    let checks = s["checks"].as_array().context("no checks")?;
    ensure!(checks.len() == 3, "{} checks: {text}", checks.len());
    for c in checks {
        let want: &[&str] = if mode == COUNTER_MODE {
            &["equal", "inside"]
        } else {
            &["equal", "unavailable"]
        };
        ensure!(
            want.contains(&c["verdict"].as_str().unwrap_or("")),
            "{TOOL} --json: check {c}"
        );
    }
    Ok(())
}

/// The clocksource whose counter the vDSO (and this program) reads, and its `clock_mode` name:
/// x86's TSC, arm64's architected timer. (`vvar-decode-tsc` is named after x86's.)
const COUNTER_CS: &str = if cfg!(target_arch = "aarch64") {
    "arch_sys_counter"
} else {
    "tsc"
};
const COUNTER_MODE: &str = if cfg!(target_arch = "aarch64") {
    "archtimer"
} else {
    "tsc"
};

/// Skip unless the clocksource is the counter one ([`COUNTER_CS`]).
fn tsc_or_skip() -> Result<Option<Outcome>> {
    let cs = vdso::current_clocksource()?;
    Ok((cs != COUNTER_CS)
        .then(|| Outcome::Skip(format!("the clocksource is {cs}, not {COUNTER_CS}"))))
}

/// On tsc: the coarse clocks decoded equal the vDSO's at the same seq, precise MONOTONIC lies
/// between two vDSO calls, and `vdso-vvar` agrees.
fn decode_tsc() -> Result<Outcome> {
    ensure_module()?;
    if let Some(skip) = tsc_or_skip()? {
        return Ok(skip);
    }
    let (v, f) = open()?;
    ensure!(
        v.namespace() == Namespace::Root,
        "the test process is in a time namespace"
    );
    let s = coarse_equal(&v, &f)?;
    ensure!(
        mode_of(&s) == COUNTER_MODE,
        "clock_mode {} on {COUNTER_CS}",
        mode_of(&s)
    );
    ensure!(
        s.data_page == s.layout.time_page && s.ns_page.is_none(),
        "root namespace, but the data came from page {}",
        s.data_page
    );
    println!(
        "seq {}: MONOTONIC_COARSE {} REALTIME_COARSE {} equal the vDSO's",
        seq_of(&s),
        fmt_ns(s.coarse(Clock::MonotonicCoarse).unwrap_or(0)),
        fmt_ns(s.coarse(Clock::RealtimeCoarse).unwrap_or(0))
    );
    precise_in_bracket(&v, &f)?;
    tool_agrees(COUNTER_MODE)?;
    Ok(Outcome::Pass)
}

/// Waits until the decoded clock mode is `mode` (a clocksource switch reaches [vvar] at the
/// timekeeping update it makes).
fn wait_for_mode(v: &Vvar, mode: &str) -> Result<()> {
    let mut last = String::new();
    let r = wait_until(
        Duration::from_secs(2),
        &format!("clock_mode {mode}"),
        || match v.snapshot() {
            Ok(s) => {
                last = mode_of(&s).to_string();
                last == mode
            }
            Err(e) => {
                last = format!("{e:#}");
                false
            }
        },
    );
    r.with_context(|| format!("the decoded clock mode is {last}"))?;
    Ok(())
}

/// On hpet the decoded clock mode is `none` (both clock_data[]), nothing precise is decoded,
/// the coarse clocks still equal the vDSO's, and `vdso-vvar` agrees; back on the first
/// clocksource, its mode again.
fn decode_hpet() -> Result<Outcome> {
    ensure_module()?;
    let available = fs::read_to_string(AVAILABLE)?;
    if !available.split_whitespace().any(|c| c == "hpet") {
        return Ok(Outcome::Skip(format!(
            "no hpet clocksource ({})",
            available.trim()
        )));
    }
    let (v, f) = open()?;
    let start = v.snapshot()?;
    let start_mode = mode_of(&start).to_string();
    {
        let _cs = Clocksource::switch("hpet")?;
        wait_for_mode(&v, "none")?;
        let s = coarse_equal(&v, &f)?;
        for (i, c) in s.data.clock_data.iter().enumerate() {
            ensure!(
                c.clock_mode.name == "none",
                "on hpet clock_data[{i}].clock_mode is {}",
                c.clock_mode
            );
        }
        ensure!(!s.is_tsc(), "on hpet the snapshot says tsc");
        ensure!(
            s.cycles.is_none() && s.precise_monotonic().is_none(),
            "on hpet a precise MONOTONIC was decoded: {:?}",
            s.precise_monotonic()
        );
        tool_agrees("none")?;
        println!(
            "hpet: clock_mode none, coarse equal at seq {}, no precise time",
            seq_of(&s)
        );
    }
    wait_for_mode(&v, &start_mode)?;
    coarse_equal(&v, &f)?;
    Ok(Outcome::Pass)
}

/// The offsets written (seconds, nanoseconds): MONOTONIC and BOOTTIME.
const NS_MONOTONIC: (i64, i64) = (86_400, 0);
const NS_BOOTTIME: (i64, i64) = (172_800, 0);

/// In the grandchild, inside the new time namespace: every check; the line to report.
fn in_namespace() -> Result<String> {
    let (v, f) = open()?;
    ensure!(
        v.namespace() == Namespace::Time,
        "in a time namespace, the time slot is not a namespace page"
    );
    let s = coarse_equal(&v, &f)?;
    let l = &s.layout;
    ensure!(
        s.namespace == Namespace::Time && s.data_page == l.timens_page,
        "snapshot: {} from page {}",
        s.namespace,
        s.data_page
    );
    ensure!(
        mode_of(&s) == COUNTER_MODE,
        "the real data's clock_mode is {}",
        mode_of(&s)
    );
    let ns = s.ns_page.as_ref().context("no namespace page")?;
    let offsets = timens_offsets("self")?;
    let want = |clock: &str| -> Result<(i64, i64)> {
        offsets
            .get(clock)
            .copied()
            .with_context(|| format!("no {clock} in /proc/self/timens_offsets: {offsets:?}"))
    };
    let (mono, boot) = (want("monotonic")?, want("boottime")?);
    ensure!(
        mono == NS_MONOTONIC && boot == NS_BOOTTIME,
        "/proc/self/timens_offsets says monotonic {mono:?} boottime {boot:?}"
    );
    // timens_setup_vdso_clock_data: seq 1, timens, the offsets, in every clock_data[].
    for (i, c) in ns.clock_data.iter().enumerate() {
        ensure!(
            c.seq == 1 && c.clock_mode.name == "timens",
            "namespace page clock_data[{i}]: seq {} clock_mode {}",
            c.seq,
            c.clock_mode
        );
        for (id, name, (sec, nsec)) in [
            (libc::CLOCK_MONOTONIC, "MONOTONIC", mono),
            (libc::CLOCK_MONOTONIC_RAW, "MONOTONIC_RAW", mono),
            (libc::CLOCK_MONOTONIC_COARSE, "MONOTONIC_COARSE", mono),
            (libc::CLOCK_BOOTTIME, "BOOTTIME", boot),
        ] {
            let o = c
                .offset(id as usize)
                .with_context(|| format!("no offset[{name}]"))?;
            ensure!(
                o.sec == sec && i128::from(o.nsec) == i128::from(nsec),
                "namespace page clock_data[{i}].offset[{name}] is {} s {} ns, \
                 /proc/self/timens_offsets {sec} s {nsec} ns",
                o.sec,
                o.nsec
            );
        }
    }
    precise_in_bracket(&v, &f)?;
    Ok(format!(
        "ok: seq {}, MONOTONIC_COARSE {} (real + {} s) equal to the vDSO's",
        seq_of(&s),
        fmt_ns(s.coarse(Clock::MonotonicCoarse).unwrap_or(0)),
        mono.0
    ))
}

/// In a time namespace (made in a forked child, entered by its child): the time slot is the
/// namespace page (clock mode timens, seq 1, offsets equal to /proc/self/timens_offsets), the
/// real data (clock mode tsc) comes from the timens slot, coarse MONOTONIC decoded (real +
/// offset) equals the vDSO's at the same seq, and precise MONOTONIC lies in its bracket.
fn decode_timens() -> Result<Outcome> {
    ensure_module()?;
    if let Some(skip) = tsc_or_skip()? {
        return Ok(skip);
    }
    let child = Forked::spawn(|| {
        let offsets = format!(
            "monotonic {} {}\nboottime {} {}\n",
            NS_MONOTONIC.0, NS_MONOTONIC.1, NS_BOOTTIME.0, NS_BOOTTIME.1
        );
        if let Err(e) = new_time_namespace(&offsets) {
            return format!("FAIL: {e:#}");
        }
        // The grandchild is the namespace's first task.
        match Forked::spawn(|| match in_namespace() {
            Ok(line) => line,
            Err(e) => format!("FAIL: {e:#}"),
        }) {
            Ok(grandchild) => {
                let line = grandchild.line.clone();
                match grandchild.finish() {
                    Ok(()) => line,
                    Err(e) => format!("FAIL: {line}; the grandchild: {e:#}"),
                }
            }
            Err(e) => format!("FAIL: forking into the namespace: {e:#}"),
        }
    })?;
    let line = child.line.clone();
    child.finish()?;
    println!("in the namespace: {line}");
    ensure!(line.starts_with("ok: "), "in the time namespace: {line}");
    Ok(Outcome::Pass)
}
