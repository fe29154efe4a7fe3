// SPDX-License-Identifier: GPL-2.0
//! Attribution (`fallback.*`, `direct.*`, `vsyscall.calls`, the `fallbacks` and
//! `clocksource_log` files): every count is compared with what the test program did and with a
//! ptrace count of the same run (`vdso_probe::ptrace::trace_phases`), never with the module.

use crate::{
    proc::{ensure_module, errno, maps_vsyscall_mode, report_path, Forked, Target},
    Outcome, TestFn,
};
use anyhow::{bail, ensure, Context, Result};
use std::{collections::BTreeMap, fs, hint::black_box, os::unix::fs::PermissionsExt};
use vdso_probe::{
    ptrace::trace_phases,
    report::{parse_clocksource_log, parse_fallbacks, Calls, DEBUGFS_DIR},
    vdso::{self, LiveVdso, VsyscallGettimeofday},
};

/// The attribution tests, in the order `/tests/run` runs them.
pub const TESTS: &[(&str, TestFn)] = &[
    ("attribution-counts", counts),
    ("attribution-isolation", isolation),
    ("attribution-ia32-static", ia32_static),
    ("attribution-switch", switch),
    ("attribution-hpet", hpet),
    ("bench-attribution-overhead", bench_overhead),
];

/// The attribution switch file.
pub const SWITCH: &str = "/sys/kernel/debug/vdso/attribution";
const CLOCKSOURCE: &str = "/sys/devices/system/clocksource/clocksource0/current_clocksource";
const AVAILABLE: &str = "/sys/devices/system/clocksource/clocksource0/available_clocksource";

fn set_attribution(cmd: &str) -> Result<()> {
    fs::write(SWITCH, cmd).with_context(|| format!("echo {cmd} > {SWITCH}"))
}

/// The switch file in one line (state, processes, calls, lost), for a failure's message: a
/// count that is off by the `lost` calls is an allocation failure, not a probe's miss.
fn switch_line() -> String {
    fs::read_to_string(SWITCH)
        .map(|t| t.trim().replace('\n', ", "))
        .unwrap_or_else(|e| format!("{SWITCH}: {e}"))
}

/// The `state:` of the switch file.
pub fn attribution_state() -> Result<String> {
    let text = fs::read_to_string(SWITCH)?;
    let kv = vdso_probe::report::key_values(&text)?;
    Ok(kv
        .iter()
        .find(|(k, _)| *k == "state")
        .map(|(_, v)| v.to_string())
        .unwrap_or_default())
}

/// The calls in `pid`'s report, once its file exists (files appear from the registry's work
/// item, shortly after the fork).
fn calls_of(pid: i32) -> Result<Calls> {
    Ok(crate::proc::report_of(pid)?.calls)
}

/// `{"clock_gettime.MONOTONIC": 3}` from pairs.
fn map(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect()
}

fn raw_clock_gettime(clock: libc::clockid_t) {
    let mut ts = vdso::zero_timespec();
    black_box(vdso::raw_syscall_clock_gettime(black_box(clock), &mut ts));
}

/// N vDSO `clock_gettime(MONOTONIC)`, M raw-syscall ones, K vDSO `PROCESS_CPUTIME_ID` and (where
/// the page can be called) V vsyscall `gettimeofday`: the report has exactly the calls a ptrace
/// count of the same run saw, split by origin, and the vsyscall calls.
fn counts() -> Result<Outcome> {
    const N: u64 = 40;
    const M: u64 = 7;
    const K: u64 = 13;
    const V: u64 = 5;
    ensure_module()?;
    set_attribution("on")?;
    let f = LiveVdso::locate()?.clock_gettime()?;
    let vsys = match maps_vsyscall_mode()? {
        "none" => None,
        _ => Some(VsyscallGettimeofday::new()?),
    };
    let vdso_mono = || {
        let mut ts = vdso::zero_timespec();
        for _ in 0..N {
            black_box(f.call(black_box(libc::CLOCK_MONOTONIC), &mut ts));
        }
    };
    let raw_mono = || {
        for _ in 0..M {
            raw_clock_gettime(libc::CLOCK_MONOTONIC);
        }
    };
    let vdso_cputime = || {
        let mut ts = vdso::zero_timespec();
        for _ in 0..K {
            black_box(f.call(black_box(libc::CLOCK_PROCESS_CPUTIME_ID), &mut ts));
        }
    };
    let vsyscall = || {
        if let Some(v) = &vsys {
            let mut tv = vdso::zero_timeval();
            for _ in 0..V {
                black_box(v.call(&mut tv));
            }
        }
    };
    let t = trace_phases(&[&vdso_mono, &raw_mono, &vdso_cputime, &vsyscall], calls_of)?;
    let seen = |phase: usize| {
        t.phases[phase]
            .get(&libc::SYS_clock_gettime)
            .copied()
            .unwrap_or(0)
    };
    let c = &t.at_end;
    println!(
        "ptrace: clock_gettime entries per phase {:?}; report: {c:?}",
        (0..4).map(seen).collect::<Vec<_>>()
    );
    ensure!(c.on == Some(true), "report says attribution is {:?}", c.on);
    // ptrace: the vDSO's MONOTONIC reads enter the kernel only where the clocksource cannot be
    // read from userspace; the raw syscalls and the CPUTIME reads always do.
    ensure!(
        seen(1) == M && seen(2) == K,
        "ptrace saw {} and {}, not {M} and {K}",
        seen(1),
        seen(2)
    );
    let mut fallback = vec![("clock_gettime.PROCESS_CPUTIME_ID", K)];
    if seen(0) != 0 {
        fallback.push(("clock_gettime.MONOTONIC", seen(0)));
    }
    ensure!(
        c.fallback == map(&fallback),
        "fallbacks {:?}, expected {:?} (ptrace saw {} of the {N} vDSO MONOTONIC reads enter)",
        c.fallback,
        map(&fallback),
        seen(0)
    );
    ensure!(
        c.direct == map(&[("clock_gettime.MONOTONIC", M)]),
        "direct {:?}, expected clock_gettime.MONOTONIC {M}",
        c.direct
    );
    let ptrace_total: u64 = (0..4).map(seen).sum();
    ensure!(
        c.syscalls("clock_gettime") == ptrace_total,
        "the report counts {} clock_gettime calls, ptrace saw {ptrace_total}",
        c.syscalls("clock_gettime")
    );
    let want_v = if vsys.is_some() { V } else { 0 };
    ensure!(
        c.vsyscall_calls == want_v,
        "vsyscall.calls {} after {want_v} vsyscall gettimeofday calls",
        c.vsyscall_calls
    );
    Ok(Outcome::Pass)
}

/// Two processes making different calls at the same time have their own counts; a process that
/// reuses a pid, and a process after exec, start from 0.
fn isolation() -> Result<Outcome> {
    ensure_module()?;
    set_attribution("on")?;
    // Each call goes to a new ring slot when it differs from the one before (A alternates two
    // clocks: its CPU's ring fills and is drained many times) and is merged into the waiting
    // slot's count when it repeats (B), while the parent drains the rings meanwhile by reading
    // B's report: the probe's increments race with the drain's take.
    let worker = |clocks: [libc::clockid_t; 2], n: usize| {
        move |link: &mut crate::proc::Link| {
            // Both start together: the parent releases them with one line each.
            link.say("ready");
            if link.hear().is_none() {
                return 3;
            }
            for i in 0..n {
                raw_clock_gettime(clocks[i % 2]);
            }
            link.say("done");
            while link.hear().is_some() {}
            0
        }
    };
    let mut a = Forked::talk(worker([libc::CLOCK_MONOTONIC, libc::CLOCK_BOOTTIME], 3000))?;
    let mut b = Forked::talk(worker([libc::CLOCK_REALTIME; 2], 17000))?;
    for c in [&mut a, &mut b] {
        ensure!(c.recv()? == "ready", "child not ready");
    }
    a.send("go")?;
    b.send("go")?;
    let report = format!("/sys/kernel/debug/vdso/{}", b.pid());
    let mut reads = 0;
    for c in [&mut a, &mut b] {
        while !c.ready()? {
            fs::read_to_string(&report).with_context(|| format!("reading {report}"))?;
            reads += 1;
        }
        ensure!(c.recv()? == "done", "child did not finish");
    }
    let (ca, cb) = (calls_of(a.pid())?, calls_of(b.pid())?);
    ensure!(
        ca.direct
            == map(&[
                ("clock_gettime.MONOTONIC", 1500),
                ("clock_gettime.BOOTTIME", 1500)
            ])
            && ca.fallback.is_empty(),
        "process A: {ca:?} ({})",
        switch_line()
    );
    ensure!(
        cb.direct == map(&[("clock_gettime.REALTIME", 17000)]) && cb.fallback.is_empty(),
        "process B ({reads} reads of its report meanwhile): {cb:?} ({})",
        switch_line()
    );
    println!("{reads} reads of B's report while A and B ran");
    let pid = a.pid();
    a.finish()?;
    b.finish()?;

    // The same pid again (clone3 with set_tid), making no time calls: nothing counted. A's file
    // goes when the registry's work item has applied its exit, and until then reads give ESRCH
    // (exited-process-reads): the new process's file is the one created after that.
    let old = crate::proc::report_path(pid);
    crate::proc::wait_until(
        std::time::Duration::from_secs(30),
        &format!("{old} of the exited process A to go"),
        || !std::path::Path::new(&old).exists(),
    )?;
    let again = fork_with_pid(pid)?;
    let c = calls_of(again.pid);
    drop(again);
    let c = c?;
    ensure!(
        c.direct.is_empty() && c.fallback.is_empty(),
        "a new process with the reused pid {pid} has counts: {c:?} ({})",
        switch_line()
    );

    // Exec: the new image starts from 0. The child counts, then execs busybox sleep, which makes
    // no time calls; once it sleeps in nanosleep (comm "sleep", state S) its exec is complete.
    let mut c = Forked::talk(|link| {
        for _ in 0..20 {
            raw_clock_gettime(libc::CLOCK_TAI);
        }
        link.say("counted");
        if link.hear().is_none() {
            return 3;
        }
        // SAFETY: NUL-terminated strings and a NULL-terminated argv; execv returns only on
        // failure.
        unsafe {
            libc::execv(
                c"/bin/sleep".as_ptr(),
                [c"sleep".as_ptr(), c"60".as_ptr(), std::ptr::null()].as_ptr(),
            )
        };
        4
    })?;
    ensure!(c.recv()? == "counted", "child did not count");
    let p = c.pid();
    let before = calls_of(p)?;
    ensure!(
        before.direct == map(&[("clock_gettime.TAI", 20)]),
        "before exec: {before:?} ({})",
        switch_line()
    );
    c.send("exec")?;
    crate::proc::wait_until(
        std::time::Duration::from_secs(5),
        "the exec'd sleep to sleep",
        || {
            let stat = fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            stat.contains("(sleep) S ")
        },
    )?;
    let after = calls_of(p)?;
    // SAFETY: our own child; the Forked handle reaps it.
    unsafe { libc::kill(p, libc::SIGKILL) };
    // The new image's own calls count (static glibc's getrandom at start-up); the old one's
    // do not.
    ensure!(
        after.syscalls("clock_gettime") == 0,
        "after exec the counts of the old image remain: {after:?} (before exec: {before:?})"
    );
    Ok(Outcome::Pass)
}

/// A child created with `clone3(set_tid = [pid])`, stopped until dropped.
struct PidChild {
    pid: i32,
}

impl Drop for PidChild {
    fn drop(&mut self) {
        // SAFETY: our own unreaped child; SIGKILL and waitpid have no memory preconditions.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            libc::waitpid(self.pid, std::ptr::null_mut(), 0);
        }
    }
}

/// Forks a child that gets exactly `pid` (which must be free) and pauses.
fn fork_with_pid(pid: i32) -> Result<PidChild> {
    #[repr(C)]
    #[derive(Default)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    let tid = [pid as libc::pid_t];
    let args = CloneArgs {
        exit_signal: libc::SIGCHLD as u64,
        set_tid: tid.as_ptr() as u64,
        set_tid_size: 1,
        ..CloneArgs::default()
    };
    // SAFETY: clone3 with no CLONE_VM behaves like fork; `args` is a valid clone_args of the
    // size passed, and `tid` outlives the call. The test program is single-threaded.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if rc < 0 {
        bail!("clone3(set_tid = {pid}): {}", crate::proc::ename(errno()));
    }
    if rc == 0 {
        // SAFETY: pause and _exit are async-signal-safe; the child only waits to be killed.
        unsafe {
            libc::pause();
            libc::_exit(0);
        }
    }
    let child = PidChild { pid: rc as i32 };
    ensure!(
        child.pid == pid,
        "clone3 gave pid {} instead of {pid}",
        child.pid
    );
    crate::proc::wait_until(std::time::Duration::from_secs(5), "its report", || {
        std::path::Path::new(&report_path(pid)).exists()
    })?;
    Ok(child)
}

/// The ia32 static program's calls through glibc: `clock_gettime64` from the 32-bit vDSO
/// (MONOTONIC: none; PROCESS_CPUTIME_ID: the vDSO's fallback, made through `__kernel_vsyscall`)
/// and `syscall(SYS_clock_gettime64)` (direct, though it also returns through the vDSO's
/// landing pad).
fn ia32_static() -> Result<Outcome> {
    const N: u64 = 25;
    if let Some(skip) = crate::proc::no_32bit_program() {
        return Ok(skip);
    }
    ensure_module()?;
    set_attribution("on")?;
    let t = Target::spawn("/bin/static32", &["attribution", &N.to_string()], true)?;
    ensure!(t.line == "ready", "static32 said {:?}", t.line);
    let mut c = calls_of(t.pid())?;
    println!("static32: {c:?}");
    // Static glibc's own start-up call (getrandom, for malloc) is not the program's.
    c.direct.retain(|k, _| k.starts_with("clock_"));
    let readable =
        vdso::vdso_clock_mode(&vdso::current_clocksource()?) == vdso::VdsoClockMode::Capable;
    let mut fallback = vec![("clock_gettime64.PROCESS_CPUTIME_ID", N)];
    if !readable {
        fallback.push(("clock_gettime64.MONOTONIC", N));
    }
    ensure!(
        c.fallback == map(&fallback),
        "fallbacks {:?}, expected {fallback:?}",
        c.fallback
    );
    ensure!(
        c.direct == map(&[("clock_gettime64.MONOTONIC", N)]),
        "direct {:?}, expected clock_gettime64.MONOTONIC {N}",
        c.direct
    );
    Ok(Outcome::Pass)
}

/// The switch: `off` stops counting (and the report says so), `on` resumes, `reset` clears;
/// anything else is EINVAL; the file is 0600 and an unprivileged writer gets EACCES.
fn switch() -> Result<Outcome> {
    ensure_module()?;
    let mode = fs::metadata(SWITCH)?.permissions().mode() & 0o777;
    ensure!(mode == 0o600, "{SWITCH} has mode {mode:o}");
    let child = Forked::talk(|link| {
        while let Some(cmd) = link.hear() {
            let n: usize = cmd.parse().unwrap_or(0);
            for _ in 0..n {
                raw_clock_gettime(libc::CLOCK_BOOTTIME);
            }
            link.say("done");
        }
        0
    })?;
    let mut child = child;
    let mut run = |n: usize| -> Result<Calls> {
        child.send(&n.to_string())?;
        ensure!(child.recv()? == "done", "child did not answer");
        calls_of(child.pid())
    };
    set_attribution("on")?;
    let key = "clock_gettime.BOOTTIME";
    ensure!(
        run(10)?.direct.get(key) == Some(&10),
        "10 calls not counted"
    );
    set_attribution("off")?;
    ensure!(attribution_state()? == "off", "state is not off");
    let c = run(5)?;
    ensure!(
        c.on == Some(false),
        "report: attribution {:?} after off",
        c.on
    );
    ensure!(c.direct.get(key) == Some(&10), "counted while off: {c:?}");
    set_attribution("on\n")?;
    ensure!(
        run(3)?.direct.get(key) == Some(&13),
        "3 more calls after on not counted"
    );
    set_attribution("reset")?;
    ensure!(run(0)?.direct.is_empty(), "reset left counts");
    // (A zero-length write never reaches the file: write_all makes no system call for it.)
    for bad in ["maybe", "on off", "onn", "\n", &"x".repeat(100)] {
        match fs::write(SWITCH, bad) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            other => bail!("writing {bad:?}: {other:?}, expected EINVAL"),
        }
    }
    ensure!(
        attribution_state()? == "on",
        "a bad write changed the state"
    );
    let code = crate::proc::as_user(|| match fs::write(SWITCH, "off") {
        Err(e) if e.raw_os_error() == Some(libc::EACCES) => 0,
        Err(e) => e.raw_os_error().unwrap_or(1),
        Ok(()) => 100,
    })?;
    ensure!(
        code == 0,
        "an unprivileged write got {code} (100: it succeeded), not EACCES"
    );
    // The read-only files have no write operation: root (whom mode 0400 does not stop) gets
    // the kernel's EINVAL.
    match fs::OpenOptions::new()
        .write(true)
        .open(format!("{DEBUGFS_DIR}/summary"))
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"on"))
    {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
        other => bail!("writing summary: {other:?}, expected EINVAL"),
    }
    child.finish()?;
    Ok(Outcome::Pass)
}

/// Switches the clocksource; returns a guard that switches back.
struct Clocksource(String);

impl Clocksource {
    fn switch(to: &str) -> Result<Self> {
        let old = vdso::current_clocksource()?;
        fs::write(CLOCKSOURCE, to).with_context(|| format!("echo {to} > {CLOCKSOURCE}"))?;
        let now = vdso::current_clocksource()?;
        ensure!(now == to, "clocksource is {now} after switching to {to}");
        Ok(Clocksource(old))
    }
}

impl Drop for Clocksource {
    fn drop(&mut self) {
        let _ = fs::write(CLOCKSOURCE, &self.0);
    }
}

/// On hpet every vDSO MONOTONIC read is a fallback whose reason names hpet (ptrace agrees);
/// back on the first clocksource, none; the clocksource log has both switches; vdso-doctor
/// says 1 on hpet (naming hpet and the process), 0 on a readable clocksource, 2 without the
/// module.
fn hpet() -> Result<Outcome> {
    const N: u64 = 30;
    ensure_module()?;
    set_attribution("on")?;
    let available = fs::read_to_string(AVAILABLE)?;
    if !available.split_whitespace().any(|c| c == "hpet") {
        return Ok(Outcome::Skip(format!(
            "no hpet clocksource ({})",
            available.trim()
        )));
    }
    let start = vdso::current_clocksource()?;
    if vdso::vdso_clock_mode(&start) != vdso::VdsoClockMode::Capable {
        bail!("the boot clocksource {start} is not vDSO-readable: this test needs one that is");
    }
    let f = LiveVdso::locate()?.clock_gettime()?;
    let reads = || {
        let mut ts = vdso::zero_timespec();
        for _ in 0..N {
            black_box(f.call(black_box(libc::CLOCK_MONOTONIC), &mut ts));
        }
    };
    let log_before = parse_clocksource_log(&fs::read_to_string(format!(
        "{DEBUGFS_DIR}/clocksource_log"
    ))?)?;
    let doctor = |args: &[&str]| -> Result<(i32, String)> {
        let out = std::process::Command::new("/bin/vdso-doctor")
            .args(args)
            .output()?;
        Ok((
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        ))
    };
    let (on_tsc, _) = doctor(&[])?;
    ensure!(on_tsc == 0, "vdso-doctor exits {on_tsc} on {start}, not 0");
    {
        let _cs = Clocksource::switch("hpet")?;
        let t = trace_phases(&[&reads], |pid| {
            let c = calls_of(pid)?;
            let lines = parse_fallbacks(&fs::read_to_string(format!("{DEBUGFS_DIR}/fallbacks"))?)?;
            let (code, text) = doctor(&[])?;
            Ok((
                c,
                lines
                    .into_iter()
                    .filter(|l| l.pid == pid)
                    .collect::<Vec<_>>(),
                code,
                text,
                pid,
            ))
        })?;
        let (c, lines, code, text, pid) = t.at_end;
        let seen = t.phases[0]
            .get(&libc::SYS_clock_gettime)
            .copied()
            .unwrap_or(0);
        ensure!(
            seen == N,
            "ptrace saw {seen} of {N} vDSO reads on hpet enter the kernel"
        );
        ensure!(
            c.fallback == map(&[("clock_gettime.MONOTONIC", N)]) && c.direct.is_empty(),
            "on hpet: {c:?}"
        );
        ensure!(
            lines.len() == 1 && lines[0].reason == "clock_mode none (hpet)" && lines[0].calls == N,
            "fallbacks lines of {pid}: {lines:?}"
        );
        ensure!(
            code == 1,
            "vdso-doctor exits {code} on hpet, not 1:\n{text}"
        );
        ensure!(
            text.contains("hpet") && text.contains(&pid.to_string()),
            "vdso-doctor on hpet names neither hpet nor process {pid}:\n{text}"
        );
    }
    let t = trace_phases(&[&reads], calls_of)?;
    ensure!(
        t.phases[0].is_empty() && t.at_end.fallback.is_empty(),
        "back on {start}: ptrace {:?}, report {:?}",
        t.phases[0],
        t.at_end
    );
    let log = parse_clocksource_log(&fs::read_to_string(format!(
        "{DEBUGFS_DIR}/clocksource_log"
    ))?)?;
    let new: Vec<_> = log.iter().filter(|e| !log_before.contains(e)).collect();
    let names: Vec<(&str, &str)> = new
        .iter()
        .map(|e| (e.clocksource.as_str(), e.vdso_clock_mode.as_str()))
        .collect();
    ensure!(
        names.len() == 2 && names[0] == ("hpet", "none") && names[1].0 == start,
        "clocksource_log gained {names:?}, expected hpet (none) then {start}"
    );
    ensure!(
        new[0].monotonic_ns < new[1].monotonic_ns,
        "the log's times do not increase: {new:?}"
    );
    // Without the module: 2, and still what /sys and /proc tell.
    let _reload = crate::proc::Reload;
    crate::proc::run("rmmod", &[crate::proc::MODULE])?;
    let (code, text) = doctor(&[])?;
    ensure!(
        code == 2,
        "vdso-doctor exits {code} without the module, not 2:\n{text}"
    );
    ensure!(
        text.contains(&start),
        "without the module vdso-doctor does not name {start}:\n{text}"
    );
    Ok(Outcome::Pass)
}

/// Printed (`make bench`), not asserted: what attribution costs the system calls it probes
/// (`clock_gettime`) and those it does not (`getppid`), as the ratio of medians with it on and
/// off, measured side by side in one boot, alternating off/on.
fn bench_overhead() -> Result<Outcome> {
    use vdso_probe::bench::{Bench, Config, Row};
    if let Some(skip) = crate::proc::unless_bench_boot() {
        return Ok(skip);
    }
    ensure_module()?;
    // Pinned: the two vCPUs of a TCG guest differ (one also runs QEMU's other work).
    vdso_probe::bench::pin_to_cpu(0)?;
    let bench = Bench::new(Config {
        batches: 40,
        batch_size: 200,
    })?;
    let getppid = || {
        // SAFETY: getppid takes no arguments and cannot fail.
        black_box(unsafe { libc::syscall(libc::SYS_getppid) });
    };
    let clock = || raw_clock_gettime(black_box(libc::CLOCK_MONOTONIC));
    let mut rows: BTreeMap<(&str, &str), Vec<Row>> = BTreeMap::new();
    const ALTERNATIONS: usize = 12;
    for _ in 0..ALTERNATIONS {
        for state in ["off", "on"] {
            set_attribution(state)?;
            rows.entry(("getppid", state))
                .or_default()
                .push(bench.measure(&format!("getppid attribution {state}"), getppid)?);
            rows.entry(("clock_gettime syscall", state))
                .or_default()
                .push(bench.measure(&format!("clock_gettime attribution {state}"), clock)?);
        }
    }
    set_attribution("on")?;
    println!(
        "bench: attribution overhead, accelerator {}, clocksource {}, pinned to CPU 0, {} \
         batches x {} calls, {ALTERNATIONS} alternations off/on; per state the median and range \
         of the runs' medians",
        crate::timepage::accelerator_stamp(),
        vdso::current_clocksource().unwrap_or_default(),
        bench.config().batches,
        bench.config().batch_size
    );
    for (name, limit) in [("getppid", 1.02), ("clock_gettime syscall", 1.25)] {
        // The runs' medians are bimodal under TCG (a run lands in a fast or a slow state of the
        // emulator): the fastest run's median of each state is compared besides the median run.
        let med = |state| vdso_probe::bench::run_medians(&rows[&(name, state)]);
        let (off, on) = (med("off"), med("on"));
        let (ratio, best) = (on.1 / off.1, on.0 / off.0);
        println!(
            "bench: {name:<22} off {:.1} ns (runs {:.1}-{:.1}), on {:.1} ns (runs {:.1}-{:.1}): \
             ratio {ratio:.3}, fastest runs {best:.3} (target <= {limit}: {})",
            off.1,
            off.0,
            off.2,
            on.1,
            on.0,
            on.2,
            crate::timepage::verdict(ratio, best, limit)
        );
    }
    Ok(Outcome::Pass)
}

/// `vdso-guest-tests --workload`: reads CLOCK_MONOTONIC through libc once a millisecond until
/// killed (the running workload of `scripts/experiment clocksource`).
pub fn workload() -> std::process::ExitCode {
    loop {
        black_box(crate::proc::gettime(libc::CLOCK_MONOTONIC));
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}
