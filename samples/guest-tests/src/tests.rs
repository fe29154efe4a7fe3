// SPDX-License-Identifier: GPL-2.0
//! The guest tests, in the order `/tests/run` runs them.

use crate::{
    proc::{
        as_user, check_against_proc, ensure_module, maps_vsyscall_mode, new_time_namespace,
        report_of, report_path, reported_pids, run, spawn_many_vmas, timens_offsets, user_pids,
        wait_until, Forked, Target,
    },
    Outcome, TestFn,
};
use anyhow::{bail, ensure, Context, Result};
use std::{
    fs,
    os::unix::fs::MetadataExt,
    path::Path,
    time::{Duration, Instant},
};
use vdso_probe::report::{Report, VsyscallInfo, DEBUGFS_DIR};

/// Every test, by name.
pub const ALL: &[(&str, TestFn)] = &[
    ("module-load-unload", module_load_unload),
    ("report-init", report_init),
    ("report-self-static64", report_self),
    ("report-shell", report_shell),
    ("report-ia32-static", report_ia32),
    ("report-timens", report_timens),
    ("report-60k-vmas", report_60k_vmas),
    ("report-after-vdso-mremap", report_after_mremap),
    ("report-mlockall", crate::hardening::report_mlockall),
    ("vsyscall-mode", vsyscall_mode),
    ("lifecycle-1000-processes", lifecycle_1000),
    ("exited-process-reads", exited_reads),
    ("access-unprivileged", access_unprivileged),
    ("coverage-and-kthreads", coverage),
    ("no-kernel-pointers", no_kernel_pointers),
    ("kunit-module-suites", kunit_suites),
    ("summary-file", summary_file),
    ("tool-vdso-report", tool_vdso_report),
    ("tool-vdso-call", tool_vdso_call),
    ("tool-vdso-strace-demo", tool_strace_demo),
    ("tool-vdso-bench", tool_vdso_bench),
    ("tool-vdso-timepage", tool_vdso_timepage),
    ("bench-load-5000-processes", bench_load_5000),
];

fn module_load_unload() -> Result<Outcome> {
    if Path::new(DEBUGFS_DIR).exists() {
        run("rmmod", &["vdso_probe"])?;
    }
    ensure!(
        !Path::new(DEBUGFS_DIR).exists(),
        "{DEBUGFS_DIR} exists without the module"
    );
    run("insmod", &["/lib/vdso_probe.ko"])?;
    for f in ["vsyscall", "summary", "1"] {
        ensure!(
            Path::new(&format!("{DEBUGFS_DIR}/{f}")).exists(),
            "no {DEBUGFS_DIR}/{f} after insmod"
        );
    }
    run("rmmod", &["vdso_probe"])?;
    ensure!(
        !Path::new(DEBUGFS_DIR).exists(),
        "{DEBUGFS_DIR} left behind by rmmod"
    );
    run("insmod", &["/lib/vdso_probe.ko"])?;
    Ok(Outcome::Pass)
}

/// The vDSO's mappings as the kernel lays them out (x86's `map_vdso()`, arm64's
/// `__setup_additional_pages()`: no `[vvar_vclock]`).
pub const VDSO_MAPPINGS: &[&str] = if cfg!(target_arch = "x86_64") {
    &["[vvar]", "[vvar_vclock]", "[vdso]"]
} else {
    &["[vvar]", "[vdso]"]
};

/// The vDSO's mappings, found by the fast path, consistent with `/proc`.
fn check_vdso_report(r: &Report) -> Result<()> {
    check_against_proc(r)?;
    for name in VDSO_MAPPINGS {
        ensure!(
            r.mapping(name).is_some(),
            "pid {}: no {name} in the report",
            r.pid
        );
    }
    ensure!(
        r.lookup.as_deref() == Some("neighbours"),
        "lookup was {:?}",
        r.lookup
    );
    ensure!(
        r.raw.get("context.vdso_matches").map(String::as_str) == Some("yes"),
        "context.vdso mismatch"
    );
    Ok(())
}

fn report_init() -> Result<Outcome> {
    ensure_module()?;
    let r = report_of(1)?;
    ensure!(r.comm == "init", "pid 1 comm is {}", r.comm);
    check_vdso_report(&r)?;
    Ok(Outcome::Pass)
}

fn report_self() -> Result<Outcome> {
    ensure_module()?;
    let me = std::process::id() as i32;
    let r = report_of(me)?;
    check_vdso_report(&r)?;
    // SAFETY: getauxval has no preconditions.
    let ehdr = unsafe { libc::getauxval(libc::AT_SYSINFO_EHDR) };
    ensure!(
        r.auxv_sysinfo_ehdr == Some(ehdr),
        "report {:x?}, getauxval {ehdr:x}",
        r.auxv_sysinfo_ehdr
    );
    ensure!(r.abi == "64-bit", "abi {}", r.abi);
    ensure!(
        r.vsyscall_usable == Some(maps_vsyscall_mode()? != "none"),
        "vsyscall.usable wrong"
    );
    Ok(Outcome::Pass)
}

fn report_shell() -> Result<Outcome> {
    ensure_module()?;
    // Read only after its exec finished (it prints then): during exec the new mm has its
    // mappings before the saved auxv is filled in.
    let sh = Target::spawn("sh", &["-c", "echo ready; read x"], true)?;
    let r = report_of(sh.pid())?;
    check_vdso_report(&r)?;
    ensure!(r.comm == "sh", "comm {}", r.comm);
    Ok(Outcome::Pass)
}

fn report_ia32() -> Result<Outcome> {
    if let Some(skip) = crate::proc::no_32bit_program() {
        return Ok(skip);
    }
    ensure_module()?;
    let t = Target::spawn("/bin/static32", &[], true)?;
    let ehdr =
        u64::from_str_radix(&t.line, 16).with_context(|| format!("static32 said {:?}", t.line))?;
    let r = report_of(t.pid())?;
    check_vdso_report(&r)?;
    ensure!(r.abi == "ia32", "abi {}", r.abi);
    ensure!(
        r.auxv_sysinfo_ehdr == Some(ehdr),
        "report {:x?}, its getauxval {ehdr:x}",
        r.auxv_sysinfo_ehdr
    );
    ensure!(
        r.vsyscall_usable == Some(false),
        "an ia32 task cannot use the vsyscall page"
    );
    let maps = fs::read_to_string(format!("/proc/{}/maps", t.pid()))?;
    ensure!(!maps.contains("[vsyscall]"), "ia32 maps show [vsyscall]");
    // It called clock_gettime: the time data page was faulted in.
    let vvar = r.mapping("[vvar]").context("no [vvar]")?;
    ensure!(
        vvar.page_roles[0] == ("time_data".into(), true),
        "vvar page 0: {:?}",
        vvar.page_roles[0]
    );
    Ok(Outcome::Pass)
}

fn report_timens() -> Result<Outcome> {
    ensure_module()?;
    new_time_namespace("monotonic 1000 250\nboottime 2000 0\n")?;
    // The child is the first task in the new namespace; it reads the clock through the vDSO.
    let child = Forked::spawn(|| {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid timespec.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        ts.tv_sec.to_string()
    })?;
    let r = report_of(child.pid())?;
    check_vdso_report(&r)?;
    let offsets = timens_offsets(&child.pid().to_string())?;
    let want = |clock: &str| -> Result<i128> {
        let (sec, nsec) = offsets
            .get(clock)
            .with_context(|| format!("no {clock} in timens_offsets: {offsets:?}"))?;
        Ok(i128::from(*sec) * 1_000_000_000 + i128::from(*nsec))
    };
    ensure!(!r.timens_root, "reported as root namespace");
    ensure!(
        r.timens_monotonic_ns == want("monotonic")?,
        "monotonic {} vs {offsets:?}",
        r.timens_monotonic_ns
    );
    ensure!(
        r.timens_boottime_ns == want("boottime")?,
        "boottime {} vs {offsets:?}",
        r.timens_boottime_ns
    );
    ensure!(
        r.timens_monotonic_ns == 1_000_000_000_250,
        "offsets not applied"
    );
    let link = fs::read_link(format!("/proc/{}/ns/time", child.pid()))?;
    ensure!(
        link.to_string_lossy() == format!("time:[{}]", r.timens_inum),
        "inum {} vs {link:?}",
        r.timens_inum
    );
    ensure!(
        r.timens_page == "swapped-in",
        "timens.page: {}",
        r.timens_page
    );
    println!(
        "pid {} in time namespace {link:?} (offsets written: monotonic 1000 s 250 ns, boottime \
         2000 s); its report:",
        child.pid()
    );
    for (k, v) in &r.raw {
        if k.starts_with("timens.") || k.starts_with("vvar.page") {
            println!("  {k}: {v}");
        }
    }
    println!("  (its CLOCK_MONOTONIC through the vDSO: {} s)", child.line);
    Ok(Outcome::Pass)
}

fn report_60k_vmas() -> Result<Outcome> {
    ensure_module()?;
    const PAGES: usize = 60_000;
    let child = spawn_many_vmas(PAGES)?;
    let r = report_of(child.pid())?;
    // The kernel's own count: the lines of its maps, but the gate VMA ([vsyscall]), which is
    // not in mm->map_count. The child holds still.
    let lines = fs::read_to_string(format!("/proc/{}/maps", child.pid()))?
        .lines()
        .filter(|l| !l.ends_with("[vsyscall]"))
        .count() as u64;
    ensure!(
        r.map_count == Some(lines) && lines >= PAGES as u64,
        "map_count {:?}, /proc/{}/maps has {lines} VMAs",
        r.map_count,
        child.pid()
    );
    check_vdso_report(&r)?;
    // Printed, not asserted: the report's cost against grepping maps.
    let t = Instant::now();
    for _ in 0..10 {
        fs::read_to_string(report_path(child.pid()))?;
    }
    let report_us = t.elapsed().as_micros() / 10;
    let t = Instant::now();
    let maps = fs::read_to_string(format!("/proc/{}/maps", child.pid()))?;
    let n = maps.lines().filter(|l| l.contains("vdso")).count();
    let maps_us = t.elapsed().as_micros();
    println!("bench: 60k-VMA process: report read {report_us} us, /proc/pid/maps + grep {maps_us} us ({n} line)");
    let me = std::process::id() as i32;
    let t = Instant::now();
    for _ in 0..10 {
        fs::read_to_string(report_path(me))?;
    }
    println!(
        "bench: small process: report read {} us",
        t.elapsed().as_micros() / 10
    );
    Ok(Outcome::Pass)
}

/// The end of the user address space: x86_64's 47-bit half, arm64's up to 52 bits (its kernel
/// addresses start at 0xfff0_0000_0000_0000 or above).
const USER_VA_END: u64 = if cfg!(target_arch = "x86_64") {
    1 << 47
} else {
    1 << 52
};

fn vsyscall_mode() -> Result<Outcome> {
    ensure_module()?;
    let info = VsyscallInfo::parse(&fs::read_to_string(format!("{DEBUGFS_DIR}/vsyscall"))?)?;
    let truth = maps_vsyscall_mode()?;
    println!(
        "vsyscall: module says {} ({}), /proc/self/maps says {truth}",
        info.mode, info.source
    );
    ensure!(info.mode == truth, "module {} vs maps {truth}", info.mode);
    // Loaded by a 64-bit insmod with procfs: the evidence is the kernel's own, never the command
    // line or the Kconfig default (the PTE for emulate, the gate VMA for xonly and none); arm64
    // has no vsyscall page at all.
    let evidence = if !cfg!(target_arch = "x86_64") {
        "arch-has-none"
    } else if truth == "emulate" {
        "pte-probe"
    } else {
        "gate-vma"
    };
    ensure!(
        info.source == evidence,
        "the mode's source is {}, not {evidence}",
        info.source
    );
    let me = report_of(std::process::id() as i32)?;
    ensure!(
        me.vsyscall_mode.as_deref() == Some(truth),
        "per-process mode {:?}",
        me.vsyscall_mode
    );
    Ok(Outcome::Pass)
}

/// Whether the guest runs the debug kernel (KASAN, lockdep, ...: 5-10x slower under TCG).
pub(crate) fn on_debug_kernel() -> bool {
    std::env::var("VP_FLAVOUR").as_deref() == Ok("debug")
}

/// `full`, or `quick` when the boot asks for the short suite (`VP_SCALE=quick`).
pub(crate) fn scaled(full: usize, quick: usize) -> usize {
    if std::env::var("VP_SCALE").as_deref() == Ok("quick") {
        quick
    } else {
        full
    }
}

fn percentile(v: &mut [Duration], p: usize) -> Duration {
    v.sort();
    v[(v.len() - 1) * p / 100]
}

fn lifecycle_1000() -> Result<Outcome> {
    ensure_module()?;
    let (mut appear, mut vanish) = (Vec::new(), Vec::new());
    for i in 0..scaled(1000, 200) {
        let child = Forked::spawn(String::new)?;
        let pid = child.pid();
        let path = report_path(pid);
        wait_until(Duration::from_secs(5), &path, || Path::new(&path).exists())?;
        appear.push(child.forked_at.elapsed());
        if i % 10 == 0 {
            // The report of a live process reads and names it.
            let r = Report::read(pid)?;
            ensure!(r.pid == pid, "file {pid} reports pid {}", r.pid);
        }
        let f = fs::File::open(&path);
        child.finish()?; // released, reaped, and it exited with status 0
        let t1 = Instant::now();
        // Reading a file of a process that exited: an error, never another process's data.
        if let Ok(mut f) = f {
            let mut s = String::new();
            match std::io::Read::read_to_string(&mut f, &mut s) {
                // Reaped: its address space is gone, so no report (not even an empty one).
                Ok(_) => bail!("read of {pid}'s report after it was reaped succeeded: {s:.40}"),
                Err(e) => {
                    let errno = e.raw_os_error().unwrap_or(0);
                    ensure!(
                        [libc::ESRCH, libc::EIO, libc::ENOENT].contains(&errno),
                        "read after exit: {e}"
                    )
                }
            }
        }
        wait_until(Duration::from_secs(5), &format!("{path} to go"), || {
            !Path::new(&path).exists()
        })?;
        vanish.push(t1.elapsed());
    }
    let (a50, a99, amax) = (
        percentile(&mut appear, 50),
        percentile(&mut appear, 99),
        percentile(&mut appear, 100),
    );
    let (v50, vmax) = (percentile(&mut vanish, 50), percentile(&mut vanish, 100));
    println!("fork to file visible: median {a50:?}, p99 {a99:?}, max {amax:?}");
    println!("exit to file gone: median {v50:?}, max {vmax:?}");
    // The README's bound: a new process's file is visible within 25 ms (median; 1.1 ms measured
    // alone, 10.8 ms once in make check with the debug boot beside it), and no event
    // is lost or stuck: a missed wake-up of the work item would leave a file waiting for the next
    // event, here the next fork, >= 1 s away only if it is stuck. Under TCG the tail is the host's
    // scheduling of the vCPU threads (p99 6-12 ms measured alone, a single 125 ms with the debug
    // boot beside it on 2 cores), so it is printed; the max bound is 1 s. The KASAN + lockdep
    // kernel runs 5-10x slower.
    let (median_bound, max_bound) = if on_debug_kernel() {
        (60, 2000)
    } else {
        (25, 1000)
    };
    ensure!(
        a50 <= Duration::from_millis(median_bound),
        "median fork-to-visible {a50:?} > {median_bound} ms"
    );
    ensure!(
        amax <= Duration::from_millis(max_bound),
        "max fork-to-visible {amax:?} > {max_bound} ms"
    );
    ensure!(
        vmax <= Duration::from_millis(max_bound),
        "max exit-to-gone {vmax:?} > {max_bound} ms"
    );
    Ok(Outcome::Pass)
}

fn exited_reads() -> Result<Outcome> {
    ensure_module()?;
    for _ in 0..scaled(50, 20) {
        let child = Forked::spawn(String::new)?;
        let path = report_path(child.pid());
        wait_until(Duration::from_secs(5), &path, || Path::new(&path).exists())?;
        let mut f = fs::File::open(&path)?;
        child.finish()?;
        let mut s = String::new();
        match std::io::Read::read_to_string(&mut f, &mut s) {
            Ok(_) => bail!("read of a reaped process's open report succeeded: {s:.40}"),
            Err(e) => {
                let errno = e.raw_os_error().unwrap_or(0);
                ensure!(
                    errno == libc::ESRCH || errno == libc::EIO,
                    "errno {errno} ({e})"
                );
            }
        }
        // Opening it now: gone (ENOENT) or, before the removal work ran, ESRCH.
        if let Err(e) = fs::File::open(&path) {
            let errno = e.raw_os_error().unwrap_or(0);
            ensure!(
                errno == libc::ENOENT || errno == libc::ESRCH,
                "open after exit: {e}"
            );
        }
    }
    Ok(Outcome::Pass)
}

/// 0 if `path` can be read, else the errno.
fn read_errno(path: &str) -> i32 {
    match fs::read(path) {
        Ok(_) => 0,
        Err(e) => e.raw_os_error().unwrap_or(-1),
    }
}

fn access_unprivileged() -> Result<Outcome> {
    ensure_module()?;
    let root_target = Target::spawn("sh", &["-c", "read x"], false)?;
    // With the mount's own mode (0700: debugfs's default) a DAC check refuses uid 1000 first.
    let mode0 = fs::metadata(crate::proc::DEBUGFS)?.mode() & 0o7777;
    if mode0 & 0o001 != 0 {
        println!("debugfs is mounted {mode0:o} (searchable by others): no DAC refusal to check");
    } else {
        let path = report_path(root_target.pid());
        let e = as_user(move || read_errno(&path))?;
        println!("uid 1000 reading a root process's report with debugfs mode {mode0:o}: errno {e}");
        ensure!(
            e == libc::EACCES,
            "debugfs mode {mode0:o}: errno {e}, want EACCES"
        );
    }
    // Loosen everything a DAC check would catch: only the module's own check remains (the
    // mount's mode is put back at the end).
    let dbgfs = crate::proc::DebugfsOpen::new()?;
    // A uid-1000 process that is dumpable (it exec'd after setuid).
    let mut user_target = std::process::Command::new("/bin/su");
    user_target.args(["user", "-c", "exec sleep 30"]);
    let mut user_target = user_target.spawn().context("su")?;
    let upid = user_target.id() as i32;
    wait_until(Duration::from_secs(10), "sleep to exec", || {
        fs::read_to_string(format!("/proc/{upid}/comm")).is_ok_and(|c| c.trim() == "sleep")
    })?;
    for pid in [1, root_target.pid(), upid] {
        let path = dbgfs.expose(pid)?;
        let maps = format!("/proc/{pid}/maps");
        let (p2, m2) = (path.clone(), maps.clone());
        let report_errno = as_user(move || read_errno(&p2))?;
        let maps_errno = as_user(move || read_errno(&m2))?;
        println!("uid 1000 reading pid {pid}: report errno {report_errno}, /proc maps errno {maps_errno}");
        // The module must allow exactly what /proc/<pid>/maps allows.
        ensure!(
            (report_errno == 0) == (maps_errno == 0),
            "pid {pid}: report {report_errno}, maps {maps_errno}"
        );
        // And that is: root's processes refused, uid 1000's own allowed (so the reader really
        // was uid 1000, and the module's check, not a DAC one, decided).
        ensure!(
            (report_errno == 0) == (pid == upid),
            "pid {pid} (uid 1000's own: {}): report errno {report_errno}",
            pid == upid
        );
        if report_errno != 0 {
            ensure!(
                report_errno == libc::EACCES,
                "refusal errno {report_errno}, want EACCES"
            );
        }
    }
    let _ = user_target.kill();
    let _ = user_target.wait();
    drop(dbgfs);
    let mode1 = fs::metadata(crate::proc::DEBUGFS)?.mode() & 0o7777;
    ensure!(
        mode1 == mode0,
        "the debugfs mount mode is {mode1:o} after the test, was {mode0:o}"
    );
    Ok(Outcome::Pass)
}

fn coverage() -> Result<Outcome> {
    ensure_module()?;
    // No process is being created by us now: once every event is applied, the files are the
    // user processes.
    crate::stress::registry_drained(Duration::from_secs(30))?;
    let users = user_pids()?;
    let reported = reported_pids()?;
    let missing: Vec<_> = users.iter().filter(|p| !reported.contains(p)).collect();
    let extra: Vec<_> = reported.iter().filter(|p| !users.contains(p)).collect();
    // `ls`-style helpers of this test are gone already; anything else is a bug.
    ensure!(
        missing.is_empty(),
        "user processes without a file: {missing:?}"
    );
    ensure!(
        extra.is_empty(),
        "files without a live user process: {extra:?}"
    );
    ensure!(
        !Path::new(&report_path(2)).exists(),
        "kthreadd (pid 2) has a file"
    );
    println!("{} processes, each with exactly one file", users.len());
    Ok(Outcome::Pass)
}

fn no_kernel_pointers() -> Result<Outcome> {
    ensure_module()?;
    let mut n = 0;
    for e in fs::read_dir(DEBUGFS_DIR)? {
        let path = e?.path();
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        for tok in text.split(|c: char| c.is_whitespace() || c == '-') {
            let t = tok.trim_start_matches("0x");
            if t.len() >= 12 && t.chars().all(|c| c.is_ascii_hexdigit()) {
                let v = u64::from_str_radix(t, 16)?;
                // The vsyscall page is a fixed user-visible address, not a kernel pointer.
                ensure!(
                    v < USER_VA_END || v == 0xffff_ffff_ff60_0000,
                    "{}: kernel address {tok}",
                    path.display()
                );
            }
        }
        n += 1;
    }
    ensure!(n >= 3, "only {n} files read");
    Ok(Outcome::Pass)
}

/// Slab memory (reclaimable + unreclaimable) in kB, from `/proc/meminfo`.
fn slab_kb() -> Result<i64> {
    let m = fs::read_to_string("/proc/meminfo")?;
    let field = |k: &str| -> Result<i64> {
        let l = m
            .lines()
            .find(|l| l.starts_with(k))
            .with_context(|| format!("no {k}"))?;
        Ok(l.split_whitespace().nth(1).context("no value")?.parse()?)
    };
    Ok(field("SReclaimable:")? + field("SUnreclaim:")?)
}

/// Printed, not asserted (apart from every process getting its file): load time of the module
/// with 5,000 processes running, and slab memory per tracked process.
fn bench_load_5000() -> Result<Outcome> {
    const N: usize = 5000;
    if let Some(skip) = crate::proc::unless_bench_boot() {
        return Ok(skip);
    }
    if Path::new(DEBUGFS_DIR).exists() {
        run("rmmod", &["vdso_probe"])?;
    }
    // Each child keeps one pipe end open in this process.
    let lim = libc::rlimit {
        rlim_cur: 16384,
        rlim_max: 16384,
    };
    // SAFETY: `lim` is a valid rlimit.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        bail!("setrlimit: {}", std::io::Error::last_os_error());
    }
    let children: Vec<Forked> = (0..N)
        .map(|_| Forked::spawn(String::new))
        .collect::<Result<_>>()?;
    let before = slab_kb()?;
    let t = Instant::now();
    run("insmod", &["/lib/vdso_probe.ko"])?;
    let load = t.elapsed();
    let files = reported_pids()?.len();
    let after = slab_kb()?;
    println!(
        "bench: insmod with {} processes: {load:?}; {files} files; slab +{} kB ({} bytes per tracked process)",
        N + 1,
        after - before,
        (after - before) * 1024 / files.max(1) as i64
    );
    let missing = children
        .iter()
        .filter(|c| !Path::new(&report_path(c.pid())).exists())
        .count();
    ensure!(
        missing == 0,
        "{missing} of {N} processes have no file after insmod"
    );
    drop(children);
    Ok(Outcome::Pass)
}

/// Runs a tool; returns its stdout, failing on a non-zero exit.
fn tool(cmd: &str, args: &[&str]) -> Result<String> {
    let out = std::process::Command::new(cmd)
        .args(args)
        .output()
        .with_context(|| format!("running {cmd}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    print!("{stdout}");
    ensure!(
        out.status.success(),
        "{cmd} {args:?}: {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(stdout)
}

fn tool_vdso_report() -> Result<Outcome> {
    ensure_module()?;
    let me = std::process::id().to_string();
    // Exits non-zero on any disagreement with /proc/<pid>/maps and auxv.
    tool("vdso-report", &["1", &me])?;
    // One JSON document (README, "Command-line conventions"): both reports, addresses as hex strings.
    let doc: serde_json::Value =
        serde_json::from_str(&tool("vdso-report", &["--json", "1", &me])?)?;
    ensure!(doc["tool"] == "vdso-report", "not a vdso-report document");
    let reports = doc["reports"].as_array().context("no reports array")?;
    ensure!(reports.len() == 2, "{} reports for 2 pids", reports.len());
    ensure!(reports[0]["pid"] == 1, "the first report is not pid 1's");
    for r in reports {
        ensure!(
            r["auxv_sysinfo_ehdr"]
                .as_str()
                .is_some_and(|a| a.starts_with("0x"))
                && r["mappings"][0]["start"]
                    .as_str()
                    .is_some_and(|a| a.starts_with("0x")),
            "addresses are not hex strings: {r}"
        );
        ensure!(
            r["disagreements"].as_array().is_some_and(Vec::is_empty),
            "disagreements: {}",
            r["disagreements"]
        );
    }
    // A kernel thread has no report: exit 2 and one line that says why.
    let out = std::process::Command::new("vdso-report")
        .arg("2")
        .output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    println!("vdso-report 2: {}: {}", out.status, err.trim());
    ensure!(
        out.status.code() == Some(2)
            && err.lines().count() == 1
            && err.starts_with("vdso-report: pid 2: ")
            && err.contains("is a kernel thread"),
        "vdso-report 2 (kthreadd): {}: {err}",
        out.status
    );
    Ok(Outcome::Pass)
}

fn tool_vdso_timepage() -> Result<Outcome> {
    ensure_module()?;
    // Exits 1 on a header mismatch or a value outside its clock_gettime bracket.
    tool("vdso-timepage", &[])?;
    let out = tool(
        "vdso-timepage",
        &["--json", "--watch", "2", "--interval-ms", "10"],
    )?;
    let doc: serde_json::Value = serde_json::from_str(&out)?;
    ensure!(
        doc["tool"] == "vdso-timepage",
        "not a vdso-timepage document"
    );
    let samples = doc["samples"].as_array().context("no samples array")?;
    ensure!(
        samples.len() == 2,
        "{} samples for --watch 2",
        samples.len()
    );
    for s in samples {
        ensure!(
            s["page"]["magic"]
                .as_str()
                .is_some_and(|m| m.starts_with("0x")),
            "magic: {}",
            s["page"]["magic"]
        );
        ensure!(
            s["stats"].is_object(),
            "no statistics: {}",
            s["stats_error"]
        );
        let compare = s["compare"].as_array().context("no compare array")?;
        ensure!(compare.len() == 4, "{} comparisons", compare.len());
        for c in compare {
            ensure!(
                ["inside", "behind", "unavailable"].contains(&c["verdict"].as_str().unwrap_or("")),
                "{c}"
            );
        }
    }
    Ok(Outcome::Pass)
}

fn tool_vdso_call() -> Result<Outcome> {
    // Exits non-zero unless the vDSO's clock_gettime lies between two syscall readings.
    tool("vdso-call", &[])?;
    Ok(Outcome::Pass)
}

fn tool_strace_demo() -> Result<Outcome> {
    ensure_module()?;
    // The clock mode before and after the run must agree (the clocksource watchdog may switch
    // clocksource): otherwise run again.
    let mut tries = 0;
    let (out, stats) = loop {
        let before = vdso_probe::timepage::Stats::read()?.clock_mode;
        let out = tool("vdso-strace-demo", &["-n", "200", "--json"])?;
        let stats = vdso_probe::timepage::Stats::read()?;
        tries += 1;
        if stats.clock_mode == before || tries == 3 {
            break (out, stats);
        }
    };
    // One document, `{"tool", "version", "runs": [counts]}` (README, "Command-line conventions").
    let doc: serde_json::Value = serde_json::from_str(&out)?;
    ensure!(
        doc["tool"] == "vdso-strace-demo",
        "not a vdso-strace-demo document"
    );
    let v = &doc["runs"][0];
    ensure!(
        v["syscall"] == 200,
        "syscall path: {} syscalls for 200 calls",
        v["syscall"]
    );
    // The kernel's own view of its clocksource (vdso_clock_mode, through the module): the vDSO
    // path makes no syscall when the vDSO can read it, one per call when it falls back.
    let want = if stats.clock_mode == "none" { 200 } else { 0 };
    ensure!(
        v["vdso"] == want,
        "vDSO path made {} syscalls for 200 calls, clocksource {} with vdso_clock_mode {}: want \
         {want}",
        v["vdso"],
        stats.clocksource,
        stats.clock_mode
    );
    Ok(Outcome::Pass)
}

fn tool_vdso_bench() -> Result<Outcome> {
    // The vsyscall row: measured on emulate, skipped with its reason on xonly and none; with
    // --xonly-vsyscall measured wherever the page is executable (emulate, xonly).
    let mode = maps_vsyscall_mode()?;
    for (args, measured) in [
        (&[][..], mode == "emulate"),
        (&["--xonly-vsyscall"][..], mode != "none"),
    ] {
        let mut all = vec!["--batches", "30", "--batch-size", "200"];
        all.extend_from_slice(args);
        let out = tool("vdso-bench", &all)?;
        let row = out
            .lines()
            .find(|l| l.starts_with("gettimeofday vsyscall"))
            .context("no vsyscall row")?;
        println!("vsyscall={mode}, vdso-bench {args:?}: {row}");
        ensure!(
            row.contains("skipped") != measured,
            "vsyscall={mode}, vdso-bench {args:?}: expected the row {}: {row}",
            if measured { "measured" } else { "skipped" }
        );
    }
    Ok(Outcome::Pass)
}

/// The module's `#[kunit_tests]` suites ran at load and passed (kernels with `CONFIG_KUNIT`):
/// `vdso_probe_vsyscall` (the command-line and maps parsers) and `vdso_probe_ffi` (review B3:
/// two instances of the hook and time-page types side by side).
fn kunit_suites() -> Result<Outcome> {
    ensure_module()?;
    if !Path::new("/sys/kernel/debug/kunit").exists() {
        return Ok(Outcome::Skip("kernel without CONFIG_KUNIT".into()));
    }
    for suite in ["vdso_probe_vsyscall", "vdso_probe_ffi"] {
        let path = Path::new("/sys/kernel/debug/kunit")
            .join(suite)
            .join("results");
        let results = fs::read_to_string(&path)
            .with_context(|| format!("suite {suite} did not run ({})", path.display()))?;
        print!("{results}");
        ensure!(
            results
                .lines()
                .any(|l| l.trim_start().starts_with("ok ") && l.contains(suite)),
            "suite {suite}: result missing"
        );
        ensure!(
            !results.contains("not ok"),
            "suite {suite}: a KUnit case failed"
        );
    }
    Ok(Outcome::Pass)
}

fn summary_file() -> Result<Outcome> {
    ensure_module()?;
    // `summary` read between two equal listings of the directory: no file came or went while
    // it was read (a helper of an earlier test may still be exiting), so `tracked` must equal it.
    let mut tries = 0;
    let (text, files) = loop {
        let before = reported_pids()?;
        crate::stress::registry_drained(Duration::from_secs(30))?;
        let text = fs::read_to_string(format!("{DEBUGFS_DIR}/summary"))?;
        let after = reported_pids()?;
        tries += 1;
        if before == after || tries == 50 {
            break (text, after);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    print!("{text}");
    let kv = vdso_probe::report::key_values(&text)?;
    let get = |k: &str| kv.iter().find(|(key, _)| *key == k).map_or("", |(_, v)| *v);
    let cs =
        fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")?;
    ensure!(
        get("clocksource") == cs.trim(),
        "summary clocksource {} vs sysfs {}",
        get("clocksource"),
        cs.trim()
    );
    let tracked: usize = get("tracked").parse()?;
    ensure!(
        tracked == files.len(),
        "tracked {tracked}, files {}",
        files.len()
    );
    let (events, applied): (u64, u64) = (get("events").parse()?, get("events_applied").parse()?);
    ensure!(
        applied <= events,
        "events_applied {applied} > events {events}"
    );
    // Readable exactly when the vDSO makes no clock_gettime system call (counted by ptrace).
    let readable_now = || {
        let text = fs::read_to_string(format!("{DEBUGFS_DIR}/summary")).unwrap_or_default();
        let kv = vdso_probe::report::key_values(&text).unwrap_or_default();
        kv.iter()
            .find(|(k, _)| *k == "vdso_readable")
            .map(|(_, v)| v.to_string())
    };
    let (now, calls) = crate::proc::stable_count(readable_now)?;
    let want = if calls.vdso == 0 { "yes" } else { "no" };
    ensure!(
        get("vdso_readable") == want && now.as_deref() == Some(want),
        "vdso_readable {} (then {now:?}) with {}, but the vDSO made {} clock_gettime syscalls \
         for 50 calls",
        get("vdso_readable"),
        cs.trim(),
        calls.vdso
    );
    Ok(Outcome::Pass)
}

/// After `mremap` moves `[vdso]` away from `[vvar_vclock]`, the neighbour lookup fails and the
/// report falls back to a walk, still consistent with `/proc` (the kernel updates
/// `mm->context.vdso` on the move).
fn report_after_mremap() -> Result<Outcome> {
    ensure_module()?;
    let child = Forked::spawn(|| {
        let Ok(maps) = fs::read_to_string("/proc/self/maps") else {
            return "no maps".into();
        };
        let Ok(maps) = vdso_probe::report::parse_maps(&maps) else {
            return "bad maps".into();
        };
        let Some((start, end)) = maps
            .iter()
            .find(|m| m.name == "[vdso]")
            .map(|m| (m.start, m.end))
        else {
            return "no vdso".into();
        };
        let len = (end - start) as usize;
        // SAFETY: reserve a fresh range, then move the vDSO onto it; nothing else uses either.
        unsafe {
            let dst = libc::mmap(
                std::ptr::null_mut(),
                len + 0x10000,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            if dst == libc::MAP_FAILED {
                return "mmap failed".into();
            }
            let dst = dst.cast::<u8>().add(0x8000);
            let r = libc::mremap(
                start as *mut libc::c_void,
                len,
                len,
                libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
                dst.cast::<libc::c_void>(),
            );
            if r == libc::MAP_FAILED {
                return format!("mremap: {}", std::io::Error::last_os_error());
            }
            format!("{:x}", r as usize)
        }
    })?;
    // A kernel that seals its system mappings (MSEAL_SYSTEM_MAPPINGS: the debug flavour)
    // refuses the move with EPERM, and the report says why.
    let r = report_of(child.pid())?;
    let sealed = r
        .mapping("[vdso]")
        .is_some_and(|m| m.flags.iter().any(|f| f == "sealed"));
    // The sealed experiment (scripts/experiment sealed) boots with VP_EXPECT_SEALED=1.
    ensure!(
        sealed || std::env::var("VP_EXPECT_SEALED").as_deref() != Ok("1"),
        "VP_EXPECT_SEALED=1 but the report shows no sealed [vdso] ({:?})",
        r.raw.get("vdso.flags")
    );
    if sealed {
        check_against_proc(&r)?;
        let eperm = std::io::Error::from_raw_os_error(libc::EPERM).to_string();
        ensure!(
            child.line == format!("mremap: {eperm}"),
            "a sealed [vdso] (report flags: sealed): the child's mremap said {:?}, want EPERM",
            child.line
        );
        println!(
            "pid {}: [vdso] is sealed (report: vdso.flags {}); mremap: {eperm}; the report \
             still shows it at {:#x}",
            child.pid(),
            r.raw.get("vdso.flags").map_or("?", String::as_str),
            r.mapping("[vdso]").map_or(0, |m| m.start)
        );
        return Ok(Outcome::Pass);
    }
    let moved = u64::from_str_radix(&child.line, 16)
        .map_err(|_| anyhow::anyhow!("child: {}", child.line))?;
    check_against_proc(&r)?;
    ensure!(
        r.lookup.as_deref().is_some_and(|l| l.starts_with("walk")),
        "lookup {:?}",
        r.lookup
    );
    ensure!(
        r.mapping("[vdso]").map(|m| m.start) == Some(moved),
        "vdso not at the new address"
    );
    ensure!(
        r.context_vdso == Some(moved),
        "context.vdso {:x?}",
        r.context_vdso
    );
    println!(
        "pid {} moved its [vdso] to {moved:#x} with mremap(MREMAP_FIXED); its report:",
        child.pid()
    );
    for (k, v) in &r.raw {
        if k.starts_with("vdso.") || k.starts_with("context.") || k == "lookup" {
            println!("  {k}: {v}");
        }
    }
    Ok(Outcome::Pass)
}
