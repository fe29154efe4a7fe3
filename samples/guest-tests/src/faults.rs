// SPDX-License-Identifier: GPL-2.0
//! The fault log (`faults.*` in a report, the global `faults` file) against what the kernel's
//! own files say is populated: `/proc/<pid>/pagemap` present bits and `/proc/<pid>/smaps` Rss of
//! `[vvar]` and `[vvar_vclock]`. The processes are fresh images (`vdso-guest-tests
//! --fault-probe MODE`, exec'd), so their faults count from their exec:
//!
//! | test | process | log | kernel |
//! |---|---|---|---|
//! | `faults-read-once` | reads CLOCK_MONOTONIC once through the vDSO | exactly one `[vvar]` fault: page 0 (time data), read | `[vvar]` page 0 present, alone; Rss 4 kB |
//! | `faults-no-time` | never reads the time | no `[vvar]` fault | no `[vvar]` page present; Rss 0 |
//! | `faults-mlockall` | `mlockall(MCL_CURRENT)`, no time read | no `[vvar]` or `[vvar_vclock]` fault | every `[vvar]` page present (7.3 dropped `VM_IO`), no `[vvar_vclock]` page (still `VM_IO \| VM_PFNMAP`) |
//! | `faults-setns` | reads the time, enters a new time namespace (`setns`), reads again | page 0 faults twice, the second after the `setns` | page 0 and the timens slot present |
//! | `faults-fork` | a forked child of a process that read the time reads it | no `[vvar]` fault (fork copied the PTEs), a `[vdso]` text fault (exec) | the child's `[vvar]` page 0 present |
//! | `faults-timepage` | maps the time page, reads it | one `timepage.page0` fault | smaps Rss of the mapping 4 kB |

use crate::{
    proc::{ensure_module, report_of, Forked, Target},
    Outcome, TestFn,
};
use anyhow::{bail, ensure, Context, Result};
use std::{fs, hint::black_box, io::BufRead};
use vdso_probe::{
    report::{parse_fault_log, Faults, Report, DEBUGFS_DIR},
    vdso::{self, find_mapping, LiveVdso},
};

pub const TESTS: &[(&str, TestFn)] = &[
    ("faults-read-once", read_once),
    ("faults-no-time", no_time),
    ("faults-mlockall", mlockall),
    ("faults-setns", setns),
    ("faults-fork", fork),
    ("faults-timepage", timepage),
];

const PAGE: u64 = 4096;

/// Reads CLOCK_MONOTONIC once through the vDSO.
fn read_time() -> Result<()> {
    let f = LiveVdso::locate()?.clock_gettime()?;
    let mut ts = vdso::zero_timespec();
    ensure!(
        f.call(black_box(libc::CLOCK_MONOTONIC), &mut ts) == 0,
        "vDSO clock_gettime failed"
    );
    black_box(ts);
    Ok(())
}

/// `vdso-guest-tests --fault-probe MODE`: does what MODE says, prints `ready` and waits for its
/// stdin to close. Modes: `read`, `none`, `mlockall`, `setns`, `timepage`.
pub fn probe(args: &[String]) -> std::process::ExitCode {
    let run = || -> Result<()> {
        // The time page stays mapped until the process exits.
        let mut _page = None;
        match args.first().map(String::as_str) {
            Some("read") => read_time()?,
            Some("none") => {}
            Some("mlockall") => {
                // SAFETY: plain system call.
                if unsafe { libc::mlockall(libc::MCL_CURRENT) } != 0 {
                    bail!("mlockall: {}", std::io::Error::last_os_error());
                }
            }
            Some("setns") => {
                read_time()?;
                crate::proc::enter_new_time_namespace("monotonic 1000 0\n")?;
                read_time()?;
            }
            Some("timepage") => {
                let p = vdso_probe::timepage::TimePage::open()?;
                black_box(p.snapshot());
                _page = Some(p);
            }
            other => bail!("unknown mode {other:?}"),
        }
        println!("ready");
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        Ok(())
    };
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vdso-guest-tests --fault-probe: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// A fresh process in `mode`, once it has done what the mode says.
fn spawn(mode: &str) -> Result<Target> {
    let t = Target::spawn("/proc/self/exe", &["--fault-probe", mode], true)?;
    ensure!(t.line == "ready", "the {mode} probe said {:?}", t.line);
    Ok(t)
}

/// The pages of `pid`'s mapping `name` that `/proc/<pid>/pagemap` says are present, and the
/// mapping's smaps Rss in kB.
fn kernel_view(pid: i32, name: &str) -> Result<(Vec<u64>, u64)> {
    let m = find_mapping(Some(pid), name)?.with_context(|| format!("no {name} in pid {pid}"))?;
    let f = fs::File::open(format!("/proc/{pid}/pagemap"))?;
    let mut present = Vec::new();
    for (i, addr) in (m.start..m.end).step_by(PAGE as usize).enumerate() {
        let mut b = [0u8; 8];
        std::os::unix::fs::FileExt::read_exact_at(&f, &mut b, addr / PAGE * 8)?;
        if u64::from_le_bytes(b) >> 63 == 1 {
            present.push(i as u64);
        }
    }
    let smaps = fs::read_to_string(format!("/proc/{pid}/smaps"))?;
    let header = format!("{:x}-{:x} ", m.start, m.end);
    let rss = smaps
        .lines()
        .skip_while(|l| !l.starts_with(&header))
        .find_map(|l| l.strip_prefix("Rss:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no Rss for {name} of pid {pid} in smaps"))?;
    Ok((present, rss))
}

/// `pid`'s faults from its report, which must have the fault log.
fn faults_of(pid: i32) -> Result<(Report, Faults)> {
    let r = report_of(pid)?;
    ensure!(
        r.faults.since.is_some(),
        "report of {pid} has no faults.since line"
    );
    let f = r.faults.clone();
    Ok((r, f))
}

/// Skips where the module does not see the faults on the vDSO's mappings, as its reports say
/// (`faults.traced`: arm64 has no page-fault tracepoint); on x86_64 it must see them.
fn vdso_faults_or_skip() -> Result<Option<Outcome>> {
    let (_, f) = faults_of(std::process::id() as i32)?;
    let traced = f.traced.iter().any(|m| m == "vdso") && f.traced.iter().any(|m| m == "vvar");
    if traced {
        return Ok(None);
    }
    ensure!(
        !cfg!(target_arch = "x86_64"),
        "x86_64 module without the vDSO mappings' faults: faults.traced {:?}",
        f.traced
    );
    Ok(Some(Outcome::Skip(format!(
        "the module logs faults on {} only here (faults.traced; no page-fault tracepoint)",
        f.traced.join(" ")
    ))))
}

/// The `[vvar]` faults as (page name, accesses).
fn vvar_faults(f: &Faults) -> Vec<(String, Vec<String>)> {
    f.of("vvar")
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.iter().map(|x| x.access.clone()).collect()))
        .collect()
}

fn read_once() -> Result<Outcome> {
    ensure_module()?;
    if let Some(skip) = vdso_faults_or_skip()? {
        return Ok(skip);
    }
    let t = spawn("read")?;
    let (_, f) = faults_of(t.pid())?;
    let (present, rss) = kernel_view(t.pid(), "[vvar]")?;
    println!("faults {f:?}; [vvar] present {present:?}, Rss {rss} kB");
    ensure!(f.since.as_deref() == Some("exec"), "since {:?}", f.since);
    ensure!(
        vvar_faults(&f) == [("vvar.page0".to_string(), vec!["read".to_string()])],
        "want exactly one [vvar] fault, page 0, read: {f:?}"
    );
    ensure!(
        f.pages["vvar.page0"].0 == "time_data",
        "page 0's role: {:?}",
        f.pages["vvar.page0"].0
    );
    ensure!(
        present == [0] && rss == 4,
        "the kernel: [vvar] pages present {present:?}, Rss {rss} kB (want page 0 alone, 4 kB)"
    );
    // The global log has the same fault.
    let log = parse_fault_log(&fs::read_to_string(format!("{DEBUGFS_DIR}/faults"))?)?;
    let mine: Vec<_> = log
        .iter()
        .filter(|l| l.pid == t.pid() && l.mapping == "vvar")
        .collect();
    ensure!(
        mine.len() == 1 && mine[0].page == 0 && mine[0].role == "time_data",
        "the faults file for pid {}: {mine:?}",
        t.pid()
    );
    Ok(Outcome::Pass)
}

fn no_time() -> Result<Outcome> {
    ensure_module()?;
    if let Some(skip) = vdso_faults_or_skip()? {
        return Ok(skip);
    }
    let t = spawn("none")?;
    let (_, f) = faults_of(t.pid())?;
    let (present, rss) = kernel_view(t.pid(), "[vvar]")?;
    ensure!(
        vvar_faults(&f).is_empty() && f.of("vvar_vclock").is_empty(),
        "a process that never read the time has [vvar] faults: {f:?}"
    );
    ensure!(
        present.is_empty() && rss == 0,
        "the kernel: [vvar] pages present {present:?}, Rss {rss} kB (want none)"
    );
    Ok(Outcome::Pass)
}

fn mlockall() -> Result<Outcome> {
    ensure_module()?;
    if let Some(skip) = vdso_faults_or_skip()? {
        return Ok(skip);
    }
    let t = spawn("mlockall")?;
    let (_, f) = faults_of(t.pid())?;
    let (vvar, vvar_rss) = kernel_view(t.pid(), "[vvar]")?;
    let (vclock, vclock_rss) = kernel_view(t.pid(), "[vvar_vclock]")?;
    println!(
        "after mlockall: [vvar] present {vvar:?} (Rss {vvar_rss} kB), [vvar_vclock] present \
         {vclock:?} (Rss {vclock_rss} kB); faults {f:?}"
    );
    let pages = find_mapping(Some(t.pid()), "[vvar]")?
        .map(|m| (m.end - m.start) / PAGE)
        .unwrap_or(0);
    ensure!(
        vvar.len() as u64 == pages && pages > 0,
        "mlockall(MCL_CURRENT) did not prefault every [vvar] page: {vvar:?} of {pages}"
    );
    ensure!(
        vclock.is_empty(),
        "[vvar_vclock] (VM_IO | VM_PFNMAP) has pages present after mlockall: {vclock:?}"
    );
    ensure!(
        vvar_faults(&f).is_empty() && f.of("vvar_vclock").is_empty(),
        "the prefault was logged as faults: {f:?}"
    );
    Ok(Outcome::Pass)
}

fn setns() -> Result<Outcome> {
    ensure_module()?;
    if let Some(skip) = vdso_faults_or_skip()? {
        return Ok(skip);
    }
    let t = spawn("setns")?;
    let (r, f) = faults_of(t.pid())?;
    let (present, _) = kernel_view(t.pid(), "[vvar]")?;
    println!(
        "faults {f:?}; [vvar] present {present:?}; timens page {}",
        r.timens_page
    );
    let page0 = f
        .of("vvar")
        .get("vvar.page0")
        .map(|v| v.to_vec())
        .unwrap_or_default();
    ensure!(
        page0.len() == 2 && page0[0].after_us <= page0[1].after_us,
        "want page 0 faulted twice (before and after setns): {f:?}"
    );
    ensure!(
        present.contains(&0) && present.contains(&1),
        "in the namespace the kernel maps the namespace page and the real one: present \
         {present:?}"
    );
    Ok(Outcome::Pass)
}

fn fork() -> Result<Outcome> {
    ensure_module()?;
    if let Some(skip) = vdso_faults_or_skip()? {
        return Ok(skip);
    }
    // This process reads the time: its [vvar] page 0 is present before the fork.
    read_time()?;
    let child = Forked::spawn(|| match read_time() {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("{e:#}"),
    })?;
    ensure!(child.line == "ok", "child: {}", child.line);
    let (_, f) = faults_of(child.pid())?;
    let (present, _) = kernel_view(child.pid(), "[vvar]")?;
    println!("child faults {f:?}; [vvar] present {present:?}");
    ensure!(f.since.as_deref() == Some("fork"), "since {:?}", f.since);
    ensure!(
        vvar_faults(&f).is_empty(),
        "fork copies the [vvar] PTEs, yet the child faulted: {f:?}"
    );
    ensure!(
        present.contains(&0),
        "the child's [vvar] page 0 is not present: {present:?}"
    );
    ensure!(
        f.of("vdso")
            .values()
            .flat_map(|v| v.iter())
            .any(|x| x.access == "exec"),
        "the child's [vdso] text did not fault again (exec): {f:?}"
    );
    Ok(Outcome::Pass)
}

fn timepage() -> Result<Outcome> {
    ensure_module()?;
    let t = spawn("timepage")?;
    let (_, f) = faults_of(t.pid())?;
    let (present, rss) = kernel_view(t.pid(), vdso_probe::timepage::DEVICE)?;
    ensure!(
        f.of("timepage").len() == 1
            && f.pages.get("timepage.page0").map(|(_, v)| v.len()) == Some(1),
        "want one time page fault: {f:?}"
    );
    ensure!(
        present == [0] && rss == 4,
        "the kernel: time page present {present:?}, Rss {rss} kB"
    );
    Ok(Outcome::Pass)
}
