// SPDX-License-Identifier: GPL-2.0
//! Shows that vDSO time reads are invisible to `strace`: a ptrace tracer counting
//! `clock_gettime` syscall-entry stops of a child that reads the clock through the vDSO,
//! through libc and through the raw system call.
//!
//! The child (forked, so it shares the resolved vDSO function pointer):
//!
//! 1. `PTRACE_TRACEME`, `raise(SIGSTOP)`;
//! 2. marker `getppid()`, then `calls` x `__vdso_clock_gettime(CLOCK_MONOTONIC)` (resolved
//!    `name@LINUX_2.6` symbol);
//! 3. marker, then `calls` x libc `clock_gettime(CLOCK_MONOTONIC)`;
//! 4. marker, then `calls` x `syscall(SYS_clock_gettime, CLOCK_MONOTONIC)`;
//! 5. marker, `_exit(0)`.
//!
//! The parent sets `PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL`, steps with `PTRACE_SYSCALL`,
//! and at each syscall-entry stop reads the number with `PTRACE_GET_SYSCALL_INFO` (the same on
//! every arch). Entry and exit stops alternate; each entry is cross-checked by the kernel's own
//! `op == PTRACE_SYSCALL_INFO_ENTRY`.
//!
//! With a vDSO-capable clocksource (`tsc`, `kvm-clock` with a stable pvclock, Hyper-V TSC page)
//! the vDSO phase makes no syscalls. With `hpet`/`acpi_pm`/`jiffies` the vDSO cannot read the
//! clock from user space and its fallback executes the real syscall, which the tracer sees.

use std::hint::black_box;
use std::io;
use std::ptr;

use anyhow::{bail, ensure, Context, Result};
use serde::Serialize;

use crate::vdso::{self, LiveVdso, VdsoClockMode};

/// Exit status of the child when `PTRACE_TRACEME` fails.
const CHILD_TRACEME_FAILED: libc::c_int = 90;
/// Exit status of the child when `raise(SIGSTOP)` fails.
const CHILD_RAISE_FAILED: libc::c_int = 91;
/// The marker system call separating phases.
const MARKER: libc::c_long = libc::SYS_getppid;
/// The clock the child reads.
const CLOCK: libc::clockid_t = libc::CLOCK_MONOTONIC;

/// Syscall-entry counts observed by the tracer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Calls made in each phase.
    pub calls: u64,
    /// `clock_gettime` syscalls during the vDSO phase (0 unless the vDSO falls back).
    pub vdso: u64,
    /// `clock_gettime` syscalls during the libc phase (0 if libc uses the vDSO).
    pub libc: u64,
    /// `clock_gettime` syscalls during the raw-syscall phase (== `calls`).
    pub syscall: u64,
    /// Other syscalls seen inside the three phases (expected 0).
    pub other_in_phases: u64,
    /// Syscall-entry stops seen in total (markers and `exit_group` included).
    pub total_entries: u64,
    /// Address of the vDSO function the child called (JSON: a hex string).
    #[serde(serialize_with = "crate::cli::json::hex")]
    pub vdso_function: usize,
    /// Clocksource at the time of the run.
    pub clocksource: Option<String>,
}

impl Counts {
    /// The expected outcome for a vDSO-capable clocksource.
    pub fn vdso_invisible(&self) -> bool {
        self.vdso == 0 && self.syscall == self.calls
    }

    /// A few lines explaining the result.
    pub fn explain(&self) -> String {
        let n = self.calls;
        let mut s = format!(
            "vDSO path: {} clock_gettime syscalls for {n} calls; syscall path: {} for {n} calls\n\
             libc path: {} clock_gettime syscalls for {n} calls\n",
            self.vdso, self.syscall, self.libc
        );
        let cs = self.clocksource.as_deref();
        let mode = cs.map(vdso::vdso_clock_mode);
        let cs_name = cs.unwrap_or("unknown");
        if self.vdso == 0 {
            s += &format!(
                "The vDSO read CLOCK_MONOTONIC in user space (clocksource {cs_name}): no kernel \
                 entry, so ptrace/strace cannot see these calls.\n"
            );
        } else if self.vdso == n {
            s += &format!(
                "The vDSO fell back to the real syscall for every call: clocksource {cs_name} "
            );
            s += match mode {
                Some(VdsoClockMode::Fallback) => {
                    "has no vDSO clock mode (VDSO_CLOCKMODE_NONE; hpet/acpi_pm/jiffies cannot be \
                     read from user space), so __vdso_clock_gettime issues the syscall itself.\n"
                }
                Some(VdsoClockMode::Capable) => {
                    "is normally vDSO-capable; kvm-clock without PVCLOCK_TSC_STABLE_BIT or a TSC \
                     marked unstable also forces the fallback.\n"
                }
                _ => "is not known to have a vDSO clock mode.\n",
            };
        } else {
            s += "The vDSO fell back to the syscall for some calls (clocksource changed, or the \
                  vDSO sequence count retried into the fallback).\n";
        }
        if self.libc == 0 {
            s += "libc's clock_gettime went through the vDSO as well.\n";
        } else if self.libc == n {
            s += "libc's clock_gettime made the syscall (libc without vDSO support, or vDSO \
                  fallback).\n";
        }
        if self.other_in_phases != 0 {
            s += &format!(
                "Note: {} unrelated syscalls happened inside the measured phases.\n",
                self.other_in_phases
            );
        }
        s
    }
}

fn last_err(what: &str) -> anyhow::Error {
    anyhow::Error::new(io::Error::last_os_error()).context(what.to_string())
}

/// `ptrace(req, pid, addr, data)` with errno turned into an error.
///
/// # Safety
///
/// `addr` and `data` must be valid for `req` (e.g. `addr` is the size of the
/// `ptrace_syscall_info` that `data` points to for `PTRACE_GET_SYSCALL_INFO`).
unsafe fn ptrace(
    req: libc::c_uint,
    pid: libc::pid_t,
    addr: *mut libc::c_void,
    data: *mut libc::c_void,
    what: &str,
) -> Result<libc::c_long> {
    // SAFETY: forwarded from the caller.
    let rc = unsafe { libc::ptrace(req, pid, addr, data) };
    if rc == -1 {
        return Err(last_err(what));
    }
    Ok(rc)
}

/// `waitpid(pid, &status, 0)`, retrying on EINTR.
fn wait(pid: libc::pid_t) -> Result<libc::c_int> {
    loop {
        let mut status = 0;
        // SAFETY: `status` is a valid, exclusively borrowed c_int.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc == pid {
            return Ok(status);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(anyhow::Error::new(err).context("waitpid"));
        }
    }
}

/// Kills and reaps the child unless it was reaped normally.
struct ChildGuard {
    pid: libc::pid_t,
    reaped: bool,
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if !self.reaped {
            // SAFETY: `pid` is our own unreaped child, so the pid cannot have been reused;
            // SIGKILL and waitpid have no memory-safety preconditions.
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
                libc::waitpid(self.pid, ptr::null_mut(), 0);
            }
        }
    }
}

/// Marker syscall.
#[inline(always)]
fn marker() {
    // SAFETY: getppid takes no arguments and cannot fail.
    unsafe { libc::syscall(MARKER) };
}

/// The child's program. Runs after `fork()` in a possibly multi-threaded parent, so it only
/// uses async-signal-safe operations: ptrace, raise, the phases (which must be as safe: the vDSO,
/// libc `clock_gettime`, raw syscalls, the vsyscall page) and `_exit`. No allocation, no locks,
/// no unwinding.
fn child(phases: &[&dyn Fn()]) -> ! {
    // SAFETY: PTRACE_TRACEME ignores pid/addr/data.
    let rc = unsafe {
        libc::ptrace(
            libc::PTRACE_TRACEME,
            0,
            ptr::null_mut::<libc::c_void>(),
            ptr::null_mut::<libc::c_void>(),
        )
    };
    if rc == -1 {
        // SAFETY: _exit is async-signal-safe and never returns.
        unsafe { libc::_exit(CHILD_TRACEME_FAILED) };
    }
    // SAFETY: raise is async-signal-safe; SIGSTOP stops us until the tracer resumes us.
    if unsafe { libc::raise(libc::SIGSTOP) } != 0 {
        // SAFETY: as above.
        unsafe { libc::_exit(CHILD_RAISE_FAILED) };
    }
    for phase in phases {
        marker();
        phase();
    }
    marker();
    // SAFETY: _exit never returns and skips atexit handlers and stdio flushing, which must
    // not run in a forked child of a multi-threaded process.
    unsafe { libc::_exit(0) }
}

/// System-call entries of one phase, by number.
pub type PhaseCounts = std::collections::BTreeMap<libc::c_long, u64>;

/// What [`trace_phases`] saw.
pub struct Traced<R> {
    /// Each phase's system-call entries.
    pub phases: Vec<PhaseCounts>,
    /// Entry stops in total (markers, the set-up and `exit_group` included).
    pub total_entries: u64,
    /// What `at_end` returned.
    pub at_end: R,
}

/// Runs `phases` in a forked, ptrace-traced child, one after the other, each after a marker
/// system call (`getppid`), and counts each phase's system-call entries by number: the truth of
/// what the kernel was entered for, independent of any counter in it. `at_end` runs while the
/// child is stopped at the entry of its last marker: its phases are done and it is still alive
/// (its mm and its `/sys/kernel/debug/vdso/<pid>` are there).
///
/// The phases run in the child after `fork()`: they must be async-signal-safe (no allocation,
/// no locks). The parent sets `PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL` and steps with
/// `PTRACE_SYSCALL`; entry and exit stops alternate, and each entry is cross-checked by
/// `PTRACE_GET_SYSCALL_INFO`'s `op`, the kernel's own word on which stop this is.
pub fn trace_phases<R>(
    phases: &[&dyn Fn()],
    at_end: impl FnOnce(libc::pid_t) -> Result<R>,
) -> Result<Traced<R>> {
    let mut at_end = Some(at_end);
    let mut result = None;
    // SAFETY: fork has no memory-safety preconditions by itself; the child only runs the
    // async-signal-safe `child()` and then `_exit`s, as required after fork() in a
    // multi-threaded process.
    let pid = unsafe { libc::fork() };
    if pid == -1 {
        return Err(last_err("fork"));
    }
    if pid == 0 {
        child(phases);
    }
    let mut guard = ChildGuard { pid, reaped: false };

    let status = wait(pid)?;
    if libc::WIFEXITED(status) {
        guard.reaped = true;
        match libc::WEXITSTATUS(status) {
            CHILD_TRACEME_FAILED => match tracer_pid() {
                Some(tracer) => bail!(
                    "child: PTRACE_TRACEME failed: this process is already traced (TracerPid \
                     {tracer}, e.g. strace -f or gdb); run it untraced"
                ),
                None => bail!(
                    "child: PTRACE_TRACEME failed (ptrace forbidden by seccomp, Yama or a \
                     container runtime?)"
                ),
            },
            CHILD_RAISE_FAILED => bail!("child: raise(SIGSTOP) failed"),
            code => bail!("child exited early with status {code}"),
        }
    }
    ensure!(
        libc::WIFSTOPPED(status) && libc::WSTOPSIG(status) == libc::SIGSTOP,
        "child did not stop with SIGSTOP (wait status {status:#x})"
    );

    let options = libc::PTRACE_O_TRACESYSGOOD | libc::PTRACE_O_EXITKILL;
    // SAFETY: PTRACE_SETOPTIONS takes the option mask in `data`; `addr` is ignored.
    unsafe {
        ptrace(
            libc::PTRACE_SETOPTIONS,
            pid,
            ptr::null_mut(),
            options as usize as *mut libc::c_void,
            "PTRACE_SETOPTIONS",
        )
    }?;

    // Markers seen: phase k runs after marker k + 1; marker phases.len() + 1 is the last.
    let mut markers = 0usize;
    let mut counts = vec![PhaseCounts::new(); phases.len()];
    let mut total_entries = 0u64;
    let mut in_syscall = false;
    let mut deliver: libc::c_int = 0; // the initial SIGSTOP is suppressed
    let exit_code = loop {
        // SAFETY: PTRACE_SYSCALL takes the signal to deliver in `data`; `addr` is ignored.
        unsafe {
            ptrace(
                libc::PTRACE_SYSCALL,
                pid,
                ptr::null_mut(),
                deliver as usize as *mut libc::c_void,
                "PTRACE_SYSCALL",
            )
        }?;
        deliver = 0;
        let status = wait(pid)?;
        if libc::WIFEXITED(status) {
            guard.reaped = true;
            break libc::WEXITSTATUS(status);
        }
        if libc::WIFSIGNALED(status) {
            guard.reaped = true;
            bail!("child killed by signal {}", libc::WTERMSIG(status));
        }
        ensure!(
            libc::WIFSTOPPED(status),
            "unexpected wait status {status:#x}"
        );
        let sig = libc::WSTOPSIG(status);
        if sig != (libc::SIGTRAP | 0x80) {
            // Signal-delivery stop: pass the signal on.
            deliver = sig;
            continue;
        }
        if in_syscall {
            in_syscall = false; // syscall-exit stop
            continue;
        }
        in_syscall = true;
        total_entries += 1;
        let nr = syscall_entry(pid)?;
        if nr == MARKER && markers <= phases.len() {
            markers += 1;
            if markers == phases.len() + 1 {
                if let Some(f) = at_end.take() {
                    result = Some(f(pid)?);
                }
            }
        } else if (1..=phases.len()).contains(&markers) {
            *counts[markers - 1].entry(nr).or_default() += 1;
        }
    };
    ensure!(exit_code == 0, "child exited with status {exit_code}");
    let Some(at_end) = result else {
        bail!("saw {markers} of {} phase markers", phases.len() + 1);
    };
    Ok(Traced {
        phases: counts,
        total_entries,
        at_end,
    })
}

/// Runs the demonstration with `calls` calls per phase and returns the counts.
pub fn run(calls: u64) -> Result<Counts> {
    // Resolve before fork: the child must not allocate or parse ELF.
    let f = LiveVdso::locate()?.clock_gettime()?;
    let clocksource = vdso::current_clocksource().ok();
    let vdso_phase = || {
        let mut ts = vdso::zero_timespec();
        for _ in 0..calls {
            black_box(f.call(black_box(CLOCK), &mut ts));
        }
    };
    let libc_phase = || {
        let mut ts = vdso::zero_timespec();
        for _ in 0..calls {
            // SAFETY: `ts` is a valid, exclusively borrowed timespec.
            black_box(unsafe { libc::clock_gettime(black_box(CLOCK), &mut ts) });
        }
    };
    let syscall_phase = || {
        let mut ts = vdso::zero_timespec();
        for _ in 0..calls {
            black_box(vdso::raw_syscall_clock_gettime(black_box(CLOCK), &mut ts));
        }
    };
    let t = trace_phases(&[&vdso_phase, &libc_phase, &syscall_phase], |_| Ok(()))?;
    let clock = |p: &PhaseCounts| p.get(&libc::SYS_clock_gettime).copied().unwrap_or(0);
    let others = |p: &PhaseCounts| {
        p.iter()
            .filter(|(&nr, _)| nr != libc::SYS_clock_gettime)
            .map(|(_, n)| n)
            .sum::<u64>()
    };
    Ok(Counts {
        calls,
        vdso: clock(&t.phases[0]),
        libc: clock(&t.phases[1]),
        syscall: clock(&t.phases[2]),
        other_in_phases: t.phases.iter().map(others).sum(),
        total_entries: t.total_entries,
        vdso_function: f.address(),
        clocksource,
    })
}

/// The `TracerPid` of this process when it is traced (a traced parent's children are
/// traced too under `strace -f`, so their `PTRACE_TRACEME` fails).
fn tracer_pid() -> Option<u32> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("TracerPid:"))?
        .trim()
        .parse()
        .ok()
        .filter(|&p| p != 0)
}

/// The number of the system call a tracee stopped at the entry of (`PTRACE_GET_SYSCALL_INFO`);
/// an error if the kernel says the stop is not a syscall-entry stop.
fn syscall_entry(pid: libc::pid_t) -> Result<libc::c_long> {
    // SAFETY: ptrace_syscall_info is plain integers and a union of them; all-zero is valid.
    let mut info: libc::ptrace_syscall_info = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our ptrace-stopped tracee; `data` points to a writable
    // ptrace_syscall_info of the size passed in `addr`, which the kernel fills at most.
    unsafe {
        ptrace(
            libc::PTRACE_GET_SYSCALL_INFO,
            pid,
            std::mem::size_of_val(&info) as *mut libc::c_void,
            (&mut info as *mut libc::ptrace_syscall_info).cast(),
            "PTRACE_GET_SYSCALL_INFO",
        )
    }
    .context("reading the tracee's system call")?;
    ensure!(
        info.op == libc::PTRACE_SYSCALL_INFO_ENTRY,
        "lost track of syscall entry/exit (op {} at a presumed entry stop)",
        info.op
    );
    // SAFETY: op is ENTRY: the kernel filled the union's entry member.
    Ok(unsafe { info.u.entry.nr } as libc::c_long)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vdso_calls_are_invisible_to_ptrace() {
        const N: u64 = 1000;
        let counts = run(N).expect("ptrace demo");
        eprintln!("{}", counts.explain());
        // The raw syscall phase is always visible.
        assert_eq!(counts.syscall, N, "{counts:?}");
        assert_eq!(counts.other_in_phases, 0, "{counts:?}");
        // What the vDSO does depends on the clocksource: no system call where it can read it,
        // the real one from inside the vDSO where it cannot.
        match counts
            .clocksource
            .as_deref()
            .map(crate::vdso::vdso_clock_mode)
        {
            Some(crate::vdso::VdsoClockMode::Capable) => {
                assert_eq!(counts.vdso, 0, "{counts:?}");
                assert!(counts.vdso_invisible());
            }
            Some(crate::vdso::VdsoClockMode::Fallback) => {
                assert_eq!(counts.vdso, N, "{counts:?}");
            }
            _ => crate::testing::skip_env(format!(
                "vDSO-count assertion: clocksource {:?} unknown",
                counts.clocksource
            )),
        }
    }

    #[test]
    fn zero_calls() {
        let counts = run(0).unwrap();
        assert_eq!((counts.vdso, counts.libc, counts.syscall), (0, 0, 0));
        // 4 markers + exit_group at least.
        assert!(counts.total_entries >= 5, "{counts:?}");
    }
}
