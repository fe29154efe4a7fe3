// SPDX-License-Identifier: GPL-2.0
//! Reliability: stress, fault and bad-input tests (meant for the debug kernel).
//!
//! Every test name starts with `stress-` or `badinput-`, so `/tests/run stress badinput` (or
//! either filter alone) selects them. Each takes the kernel's verdict on itself
//! ([`crate::kernel_log`]): a stress test fails on any splat (BUG, WARNING, KASAN, lockdep, RCU
//! stall, hung task, ...) logged while it ran and, on a kernel with kmemleak, on any report of
//! the scan that ends it; a bad-input case fails on a splat, and `badinput-summary` scans once
//! after the last case. `badinput-summary` prints the table (tests, cases, passed, splats,
//! kmemleak), and the runner's final `kernel-log` test checks the whole boot once more.
//! `STRESS_KMEMLEAK=end` (the short version in `make check`) drops the scans of their own
//! (about 15 s each on the debug kernel under TCG) and leaves leaks to that final test.
//!
//! # Stress tests
//!
//! Each is bounded in count and in time: it stops early, and says so, at a deadline of
//! `120 s x STRESS_SCALE` (`STRESS_DEADLINE=<seconds>` overrides it; `make check` sets a short
//! one), but never below its floor (`floor_*()`: it runs on past the deadline until it has done
//! that much, and fails if it could not). `STRESS_SCALE` (default 1: the short version)
//! multiplies the counts; the full version is `STRESS_SCALE=5` (`make stress`, `scripts/stress`). Each ends with a one-line summary. The
//! deadline is checked between units of work, so one unit always completes: a 60k-VMA round
//! (building the VMAs and the exit of the killed process cannot be cut short) takes about 2
//! minutes on the debug kernel under TCG, a few seconds on the default one.
//!
//! | test | short (scale 1) | full (scale 5) |
//! |---|---|---|
//! | `stress-readers-vs-forkers`: 2 threads fork and reap short-lived processes (`fork` + `nanosleep` + `_exit` only: the parent is multi-threaded; a quarter live 20 ms, a quarter 2 ms, the rest exit at once) while 8 threads read reports: each new child as soon as it is published (alive, exiting, a zombie or reaped by then), some again a little later, and random files of the directory; `dropped_events` must stay 0 and the set of files must equal the set of processes again afterwards | 2,000 processes | 10,000 |
//! | `stress-insmod-rmmod-cycles`: `finit_module`/`delete_module` while 4 threads read reports and the global files and 1 thread opens, maps, touches, unmaps and closes the device; a busy `delete_module` is retried | 20 cycles | 100 |
//! | `stress-timepage-churn`: one pinned thread per CPU maps, touches, forks (the child reads the magic), `MADV_DONTNEED`s (if `madvise(2)` is built in) and unmaps the page; `CLOCK_REALTIME` is set 1 hour forward and back in the middle; magic checked every time, MONOTONIC (precise and coarse) never goes back (nor jumps) within a thread, the update that publishes a set also carries a new `clock_was_set_seq`, the live-mapping count returns to its start | 250 rounds per CPU | 1,250 |
//! | `stress-60k-vmas-exit-while-reading`: a process with 60,000 VMAs is killed (`SIGKILL`) while 4 threads read its report; every successful read is a complete report of that pid with `map_count` >= 60,000 | 1 round | 3 |
//!
//! Errors that are fine while processes come and go: opening a report `ESRCH` (the process is
//! gone, its file not yet removed) or `ENOENT` (removed); reading an open one `ESRCH`, or `EIO`
//! once debugfs removed it. While the module is being unloaded or is absent, additionally
//! `ENXIO` (debugfs: the file's owner module is going away) and `ENODEV` (the misc device).
//! Anything else, a report that names another pid, or a report that does not parse, fails.
//!
//! # Bad input
//!
//! One test per case; each records its checks (printed as `# ` lines, and collected by
//! `badinput-summary` into one table). Values observed on Linux 7.3.4 (default and debug
//! kernels); "kernel" means the VFS/mm refuses before the module is asked.
//!
//! | test | input | result |
//! |---|---|---|
//! | `badinput-report-open-wronly` | `open(<pid>, O_WRONLY)` as root (`CAP_DAC_OVERRIDE` passes the 0400 mode) | opens; `write` `EINVAL`; `read` `EBADF` |
//! | `badinput-report-open-rdwr` | `open(<pid>, O_RDWR)` as root | opens; `write` `EINVAL`; `pwrite` `ESPIPE`; `read` the full report |
//! | `badinput-global-write-vsyscall` | `write` to `vsyscall` (`O_WRONLY`) | `EINVAL` |
//! | `badinput-global-write-summary` | `write` to `summary` | `EINVAL` |
//! | `badinput-global-write-timepage` | `write` to `timepage` | `EINVAL` |
//! | `badinput-report-read-bytewise` | `read` one byte at a time | the same bytes as one whole read of an idle process's report |
//! | `badinput-report-lseek-past-end` | `lseek(len + 1000, SEEK_SET)`, `read` | offset returned, 0 bytes; `lseek(0)` then the full report again |
//! | `badinput-report-lseek-whence` | `lseek` with `SEEK_END`, `SEEK_DATA`, `SEEK_HOLE`, whence 42 | `EINVAL` each; `SEEK_CUR` works |
//! | `badinput-report-lseek-negative` | `lseek(-1, SEEK_SET)`, `lseek(-(pos+1), SEEK_CUR)` | `EINVAL` |
//! | `badinput-report-pread` | `pread` at 0, 5, len - 1, len, 2^62 | the matching slices; 0 bytes at and past the end |
//! | `badinput-report-pread-negative` | `pread` at -1, at `i64::MIN` | `EINVAL` |
//! | `badinput-report-read-zero-length` | `read(fd, buf, 0)`, `read(fd, NULL, 0)` | 0; the next read gives the full report |
//! | `badinput-report-read-null-buffer` | `read(fd, NULL, 4096)`, into address 1 | `EFAULT`; the next read gives the full report |
//! | `badinput-report-read-kernel-address` | `read` into `0xffff888000000000`, `0xffffffff81000000`, `0x800000000000` | `EFAULT` |
//! | `badinput-report-read-partial-fault` | `read` of 4096 into a buffer with 100 bytes before an unmapped page | a short read of 100 bytes (arm64: 85 to 100, its copy_to_user() stops at the 16-byte store that faulted); the next read continues where it stopped |
//! | `badinput-report-nonexistent` | `open` of `99999999`, `abc`, `0`, `-1`, `2` (kthreadd) | `ENOENT` |
//! | `badinput-report-directory-read` | `read` on the directory; `open` it `O_WRONLY` | `EISDIR` |
//! | `badinput-report-ioctl` | `ioctl` 0, `TCGETS`, `_IOR('v', 1, u64)` | `ENOTTY` |
//! | `badinput-report-mmap` | `mmap` of a report, shared and private | `ENODEV` |
//! | `badinput-report-splice` | `sendfile` / `splice` from a report into a pipe | `EINVAL` (the debugfs proxy has no `splice_read`) |
//! | `badinput-report-create-unlink-rename` | `O_CREAT` a new name; `unlink`, `rename` a report | `EACCES`; `EPERM`; `EPERM` |
//! | `badinput-dev-open-wronly-mmap` | device opened `O_WRONLY`, `mmap(PROT_READ, MAP_SHARED)` | opens; `EACCES` (kernel: a shared mapping needs a readable fd) |
//! | `badinput-dev-read` | `read` on the device (`O_RDONLY`), also into NULL; `pread` | `EINVAL` (no read method) |
//! | `badinput-dev-write` | `write` on `O_RDWR`; on `O_RDONLY` | `EINVAL`; `EBADF` |
//! | `badinput-dev-ioctl` | `ioctl` 0, `TCGETS`, `FIONREAD`, `_IOR('v', 1, u64)` | `ENOTTY` |
//! | `badinput-dev-lseek` | `lseek(0, SEEK_SET)`, `lseek(4096, SEEK_SET)` | `ESPIPE` |
//! | `badinput-dev-mmap` | the table `DEV_MMAP`: flags (`MAP_PRIVATE`, `MAP_SHARED_VALIDATE`, `MAP_SYNC`), protections, offsets, lengths on `O_RDONLY` and `O_RDWR` fds; then `PROT_NONE` | the errno or mapping of each row, "kernel" rows refused before the module is asked; `PROT_NONE` works, then `mprotect(PROT_READ)` works |
//! | `badinput-dev-mmap-fixed` | `MAP_FIXED` over an anonymous page, over a mapping of the device; `MAP_FIXED_NOREPLACE` over one | works, magic readable; works; `EEXIST` (kernel) |
//! | `badinput-dev-mmap-populate` | `MAP_POPULATE`; `mlock` | works, the page is faulted in by the mmap (faults +1, no fault on touch); `mlock` works (the kernel skips `VM_SPECIAL` mappings) |
//! | `badinput-dev-mprotect` | `mprotect` to `PROT_READ\|PROT_WRITE`, `PROT_WRITE`, `PROT_READ\|PROT_EXEC`; `PROT_NONE` and back | `EACCES`; works, the magic still readable |
//! | `badinput-dev-mremap` | grow with and without `MREMAP_MAYMOVE`; new length 0; `MREMAP_DONTUNMAP`; old length 0 (duplicate); move | `EFAULT`; `EINVAL`; `EINVAL`; `EFAULT`; works: the magic and `/proc/self/maps` follow it |
//! | `badinput-dev-proc-mem` | `pread` of `/proc/self/mem` at the untouched mapping, then after the owner touched it; `pwrite` there | `EIO` and no fault (a remote fault is refused, as `vvar_fault` does), then the magic; `EIO`, page unchanged |
//! | `badinput-dev-unprivileged` | uid 1000 opens the device `O_RDONLY` | `EACCES` (the node is 0600) |
//!
//! Every `badinput-dev-*` test also checks that the module's count of live mappings is back to
//! its value from before the test (a refused or duplicated mapping leaks nothing).

use crate::{
    kernel_log::Mark,
    proc::{
        as_user, ename, ename_or_ok, ensure_module, errno, gettime, module_loaded, reap,
        report_path, reported_pids, spawn_many_vmas, user_pids, wait_until, Forked, Reload, KO,
    },
    Outcome, TestFn,
};
use anyhow::{bail, ensure, Context, Result};
use std::{
    collections::BTreeMap,
    ffi::CString,
    fmt::Write as _,
    fs::{self, File, OpenOptions},
    io::Write,
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
        unix::fs::MetadataExt,
    },
    path::Path,
    sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering::Relaxed},
    time::{Duration, Instant},
};
use vdso_probe::{
    bench::pin_to_cpu,
    report::{Report, DEBUGFS_DIR},
    timepage::{Stats, TimePage, DEVICE, MAGIC, PAGE_SIZE},
    vdso::Clock,
};

/// Builds a `(name, fn)` entry of a bad-input case (a closure that passes the name on).
macro_rules! case {
    ($name:literal, $f:path) => {
        ($name, || run_case($name, $f))
    };
}

/// Builds a `(name, fn)` entry of a stress or hardening test (run with the kernel's verdict
/// afterwards, [`run_stress`]).
macro_rules! stress {
    ($name:literal, $f:path) => {
        ($name, || crate::stress::run_stress($name, $f))
    };
}
pub(crate) use stress;

/// The stress and bad-input tests, run after the time-page tests.
pub const TESTS: &[(&str, TestFn)] = &[
    stress!("stress-readers-vs-forkers", readers_vs_forkers),
    stress!("stress-insmod-rmmod-cycles", insmod_rmmod_cycles),
    stress!("stress-timepage-churn", timepage_churn),
    stress!(
        "stress-60k-vmas-exit-while-reading",
        vmas_exit_while_reading
    ),
    case!("badinput-report-open-wronly", report_open_wronly),
    case!("badinput-report-open-rdwr", report_open_rdwr),
    case!("badinput-global-write-vsyscall", global_write_vsyscall),
    case!("badinput-global-write-summary", global_write_summary),
    case!("badinput-global-write-timepage", global_write_timepage),
    case!("badinput-report-read-bytewise", report_read_bytewise),
    case!("badinput-report-lseek-past-end", report_lseek_past_end),
    case!("badinput-report-lseek-whence", report_lseek_whence),
    case!("badinput-report-lseek-negative", report_lseek_negative),
    case!("badinput-report-pread", report_pread),
    case!("badinput-report-pread-negative", report_pread_negative),
    case!("badinput-report-read-zero-length", report_read_zero_length),
    case!("badinput-report-read-null-buffer", report_read_null),
    case!(
        "badinput-report-read-kernel-address",
        report_read_kernel_address
    ),
    case!(
        "badinput-report-read-partial-fault",
        report_read_partial_fault
    ),
    case!("badinput-report-nonexistent", report_nonexistent),
    case!("badinput-report-directory-read", report_directory_read),
    case!("badinput-report-ioctl", report_ioctl),
    case!("badinput-report-mmap", report_mmap),
    case!("badinput-report-splice", report_splice),
    case!("badinput-report-create-unlink-rename", report_create_unlink),
    case!("badinput-dev-open-wronly-mmap", dev_open_wronly_mmap),
    case!("badinput-dev-read", dev_read),
    case!("badinput-dev-write", dev_write),
    case!("badinput-dev-ioctl", dev_ioctl),
    case!("badinput-dev-lseek", dev_lseek),
    case!("badinput-dev-mmap", dev_mmap),
    case!("badinput-dev-mmap-fixed", dev_mmap_fixed),
    case!("badinput-dev-mmap-populate", dev_mmap_populate),
    case!("badinput-dev-mprotect", dev_mprotect),
    case!("badinput-dev-mremap", dev_mremap),
    case!("badinput-dev-proc-mem", dev_proc_mem),
    case!("badinput-dev-unprivileged", dev_unprivileged),
    ("badinput-summary", summary),
];

/// Where the tests leave their results for `badinput-summary` (the guest's `/tmp` is a tmpfs).
const RESULTS: &str = "/tmp/vdso-probe-reliability.txt";

// ---------------------------------------------------------------------------------------------
// Helpers: scale, errno, raw system calls
// ---------------------------------------------------------------------------------------------

/// `STRESS_SCALE` (default 1, at least 1).
fn scale() -> u64 {
    std::env::var("STRESS_SCALE")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1u64)
        .max(1)
}

/// Whether each stress test, and the bad-input cases together, end with a kmemleak scan of their
/// own (about 15 s each on the debug kernel under TCG); `STRESS_KMEMLEAK=end` leaves it to the
/// runner's final `kernel-log` test (the short version in `make check`).
fn scan_each() -> bool {
    std::env::var("STRESS_KMEMLEAK").as_deref() != Ok("end")
}

/// What the kmemleak column says when there was no scan of a test's own.
const NOT_SCANNED: &str = "no scan of its own (no kmemleak in this kernel, or STRESS_KMEMLEAK=end)";

/// Each stress test's time budget: `STRESS_DEADLINE` seconds, default 120 s x scale.
pub(crate) fn budget() -> Duration {
    let secs = std::env::var("STRESS_DEADLINE")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(120 * scale());
    Duration::from_secs(secs)
}

/// The least work each stress test does, deadline or not, and below which it fails: the
/// deadline (`make check` sets a short one) stops a test only once it has done this much, so a
/// slow kernel makes it run longer instead of passing on next to nothing. Chosen so that each
/// race is exercised many times over: 50 processes forked and reaped under 8 readers (each a
/// fork/exit/publish/remove), 3 unload/load cycles under readers and a mapper, 25 map/fork/
/// unmap rounds per CPU. At `VP_SCALE=quick` (make check's debug and arm64 boots; on the debug
/// kernel a fork takes 0.2-0.8 s and a cycle 5-40 s under KASAN and TCG) 16 processes, one
/// cycle, 8 rounds per CPU.
fn floor_processes() -> u64 {
    crate::tests::scaled(50, 16) as u64
}
fn floor_cycles() -> u64 {
    crate::tests::scaled(3, 1) as u64
}
fn floor_rounds_per_cpu() -> u64 {
    crate::tests::scaled(25, 8) as u64
}

/// Whether a loop that has done `done` units may stop at `end`: past the deadline and at or
/// above its floor.
fn may_stop(done: u64, floor: u64, end: Instant) -> bool {
    done >= floor && Instant::now() >= end
}

/// A system call's result: the non-negative return value, or the errno.
pub(crate) type Sys = std::result::Result<isize, i32>;

pub(crate) fn sys(rc: isize) -> Sys {
    if rc < 0 {
        Err(errno())
    } else {
        Ok(rc)
    }
}

/// `ok` or the errno's name.
fn show(r: Sys) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => ename(e),
    }
}

/// `open(2)` with `O_CLOEXEC`.
pub(crate) fn open(path: &str, flags: i32) -> std::result::Result<OwnedFd, i32> {
    let c = CString::new(path).map_err(|_| libc::EINVAL)?;
    // SAFETY: `c` is a NUL-terminated path that outlives the call.
    let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC, 0o600) };
    if fd < 0 {
        return Err(errno());
    }
    // SAFETY: `fd` was just returned by open(2) and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `read(2)` into `buf`.
pub(crate) fn read(fd: RawFd, buf: &mut [u8]) -> Sys {
    // SAFETY: `buf` is a valid, exclusively borrowed buffer of `buf.len()` bytes.
    sys(unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) })
}

/// `read(2)` into an address this program does not use for anything (NULL, a kernel address,
/// a page of a mapping this test owns): the kernel validates it.
fn read_raw(fd: RawFd, addr: usize, len: usize) -> Sys {
    // SAFETY: `addr` is either not a user address of this process (the kernel fails with
    // EFAULT) or inside a mapping that the calling test created for this purpose and that no
    // Rust object refers to, so a write there aliases nothing.
    sys(unsafe { libc::read(fd, addr as *mut libc::c_void, len) })
}

/// `pread(2)` into `buf` at `off`.
pub(crate) fn pread(fd: RawFd, buf: &mut [u8], off: i64) -> Sys {
    // SAFETY: `buf` is a valid, exclusively borrowed buffer of `buf.len()` bytes.
    sys(unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), buf.len(), off) })
}

/// `write(2)` of `buf`.
fn write(fd: RawFd, buf: &[u8]) -> Sys {
    // SAFETY: `buf` is a valid buffer of `buf.len()` bytes.
    sys(unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) })
}

/// `lseek(2)`.
fn lseek(fd: RawFd, off: i64, whence: i32) -> Sys {
    // SAFETY: plain system call on a descriptor; no memory is passed.
    sys(unsafe { libc::lseek(fd, off, whence) } as isize)
}

/// `lseek`'s result as `ok <offset>` or the errno's name.
fn seek_shown(fd: RawFd, off: i64, whence: i32) -> String {
    match lseek(fd, off, whence) {
        Ok(v) => format!("ok {v}"),
        Err(e) => ename(e),
    }
}

/// `ioctl(2)` with an argument that points at a zeroed 8-byte buffer.
fn ioctl(fd: RawFd, cmd: u64) -> Sys {
    let mut arg = 0u64;
    // SAFETY: `arg` is a valid 8-byte buffer; every command used is refused or reads/writes at
    // most that (FIONREAD and TCGETS are refused before touching memory on these files).
    sys(unsafe { libc::ioctl(fd, cmd as _, &mut arg as *mut u64) } as isize)
}

/// Reads until end of file.
pub(crate) fn read_all(fd: RawFd) -> std::result::Result<Vec<u8>, i32> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = read(fd, &mut buf)? as usize;
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// `mmap(NULL or addr, len, prot, flags, fd, off)`: the address, or the errno.
fn mmap_at(addr: usize, len: usize, prot: i32, flags: i32, fd: RawFd, off: i64) -> Sys {
    // SAFETY: a new mapping at an address of the kernel's choosing, or (MAP_FIXED) over a
    // mapping that the calling test created itself and no Rust object refers to.
    let p = unsafe { libc::mmap(addr as *mut libc::c_void, len, prot, flags, fd, off) };
    if p == libc::MAP_FAILED {
        Err(errno())
    } else {
        Ok(p as isize)
    }
}

pub(crate) fn mmap(len: usize, prot: i32, flags: i32, fd: RawFd, off: i64) -> Sys {
    mmap_at(0, len, prot, flags, fd, off)
}

/// Maps the device's page read-only and shared, as a well-behaved reader does.
fn map_page(fd: RawFd) -> Result<isize> {
    mmap(PAGE_SIZE, libc::PROT_READ, libc::MAP_SHARED, fd, 0)
        .map_err(|e| anyhow::anyhow!("mmap: {}", ename(e)))
}

pub(crate) fn munmap(addr: isize, len: usize) {
    // SAFETY: unmapping a mapping the calling test created; nothing refers into it.
    unsafe { libc::munmap(addr as *mut libc::c_void, len) };
}

/// Reads the `u32` at `addr` (the magic, at offset 0 of the time page).
pub(crate) fn peek_u32(addr: isize) -> u32 {
    // SAFETY: callers pass the start of a live readable mapping of at least 4 bytes, which
    // the kernel may update concurrently (hence volatile). A failed fault is SIGBUS, a crash.
    unsafe { std::ptr::read_volatile(addr as *const u32) }
}

/// A small xorshift generator for picking targets (no external crate needed).
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(salt: u64) -> Self {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        Rng((t ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Appends lines to the results file that `badinput-summary` reads (best effort).
fn record(lines: &[String]) {
    if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(RESULTS) {
        let mut s = String::new();
        for l in lines {
            s.push_str(l);
            s.push('\n');
        }
        let _ = f.write_all(s.as_bytes());
    }
}

/// Prints a stress test's summary line and records it for `badinput-summary`.
fn summary_line(test: &str, line: &str) {
    println!("{test}: {line}");
    record(&[format!("stress\t{test}\t{line}")]);
}

/// Waits until the registry has applied every lifecycle event reported so far (`events_applied`
/// equals `events` in one read of `summary`); how long it took. After a process has been reaped
/// its exit event has been reported (`sched_process_exit` runs before the zombie is visible to
/// `wait`), so afterwards the files are exactly the user processes, unless another process
/// started or exited since.
pub(crate) fn registry_drained(limit: Duration) -> Result<Duration> {
    let backlog = || -> Result<(u64, u64)> {
        let c = registry_counters()?;
        let get = |k: &str| {
            c.get(k)
                .copied()
                .with_context(|| format!("summary has no `{k}` counter"))
        };
        Ok((get("events")?, get("events_applied")?))
    };
    backlog()?;
    let mut last = (0, 0);
    wait_until(limit, "the registry to apply every event", || {
        last = backlog().unwrap_or((1, 0));
        last.0 == last.1
    })
    .with_context(|| format!("events {}, events_applied {}", last.0, last.1))
}

/// The numeric counters of `/sys/kernel/debug/vdso/summary` (other lines are skipped).
pub(crate) fn registry_counters() -> Result<BTreeMap<String, u64>> {
    let text = fs::read_to_string(format!("{DEBUGFS_DIR}/summary"))?;
    Ok(vdso_probe::report::key_values(&text)?
        .into_iter()
        .filter_map(|(k, v)| Some((k.to_string(), v.trim().parse().ok()?)))
        .collect())
}

/// Counts of outcomes by errno (0: success), and the first few failures.
#[derive(Default)]
struct Tally {
    by_errno: BTreeMap<i32, u64>,
    failures: Vec<String>,
    nfail: u64,
}

impl Tally {
    fn count(&mut self, e: i32) {
        *self.by_errno.entry(e).or_default() += 1;
    }

    fn fail(&mut self, what: String) {
        self.nfail += 1;
        if self.failures.len() < 10 {
            self.failures.push(what);
        }
    }

    fn merge(&mut self, o: Tally) {
        for (k, v) in o.by_errno {
            *self.by_errno.entry(k).or_default() += v;
        }
        self.nfail += o.nfail;
        for f in o.failures {
            if self.failures.len() < 10 {
                self.failures.push(f);
            }
        }
    }

    fn total(&self) -> u64 {
        self.by_errno.values().sum()
    }

    /// `12 ok, ESRCH 3, ENOENT 5`.
    fn describe(&self) -> String {
        let mut s = format!("{} ok", self.by_errno.get(&0).copied().unwrap_or(0));
        for (e, n) in &self.by_errno {
            if *e != 0 {
                let _ = write!(s, ", {} {n}", ename(*e));
            }
        }
        s
    }

    fn check(&self, what: &str) -> Result<()> {
        ensure!(
            self.nfail == 0,
            "{what}: {} failures, first: {}",
            self.nfail,
            self.failures.join("; ")
        );
        Ok(())
    }
}

/// Checks the text of report `pid`: it names `pid`, parses completely, and has at least
/// `min_map_count` VMAs.
fn check_report_text(pid: i32, text: &str, min_map_count: u64) -> std::result::Result<(), String> {
    let first = text.lines().next().unwrap_or("");
    if first != format!("pid: {pid}") {
        return Err(format!("file {pid}: first line {first:?}"));
    }
    if !text.ends_with('\n') {
        return Err(format!("file {pid}: report does not end with a newline"));
    }
    let r = Report::parse(text).map_err(|e| format!("file {pid}: {e:#}"))?;
    if r.pid != pid {
        return Err(format!("file {pid} reports pid {}", r.pid));
    }
    if r.map_count.unwrap_or(0) < min_map_count {
        return Err(format!(
            "file {pid}: map_count {:?} < {min_map_count}",
            r.map_count
        ));
    }
    Ok(())
}

/// Opens and reads a whole file: its bytes, or the errno of `open` or `read`.
pub(crate) fn read_file(path: &str) -> std::result::Result<String, i32> {
    let fd = open(path, libc::O_RDONLY)?;
    let bytes = read_all(fd.as_raw_fd())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Reads the report of `pid` into `t`: a complete report of that pid counts as 0, an errno in
/// `fine` as itself, anything else is a failure.
fn read_report_into(t: &mut Tally, pid: i32, fine: &[i32], min_map_count: u64) {
    match read_file(&report_path(pid)) {
        Ok(text) => match check_report_text(pid, &text, min_map_count) {
            Ok(()) => t.count(0),
            Err(e) => t.fail(e),
        },
        Err(e) if fine.contains(&e) => t.count(e),
        Err(e) => {
            // Where it was, at once after: procfs's own answer and the process's state.
            let maps = read_file(&format!("/proc/{pid}/maps")).map(|_| ()).err();
            let state = fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| Some(s.rsplit_once(") ")?.1.split(' ').next()?.to_string()));
            t.fail(format!(
                "reading the report of {pid}: {} (then /proc/{pid}/maps: {}, state {})",
                ename(e),
                maps.map_or("readable".into(), ename),
                state.as_deref().unwrap_or("gone")
            ))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Module loading
// ---------------------------------------------------------------------------------------------

/// `finit_module(2)` of the module.
pub(crate) fn load_module() -> Sys {
    let f = File::open(KO).map_err(|e| e.raw_os_error().unwrap_or(libc::ENOENT))?;
    // SAFETY: a valid descriptor and a NUL-terminated (empty) parameter string.
    let rc = unsafe { libc::syscall(libc::SYS_finit_module, f.as_raw_fd(), c"".as_ptr(), 0) };
    sys(rc as isize)
}

/// `delete_module(2)` with `O_NONBLOCK`, as `rmmod` calls it.
pub(crate) fn unload_module() -> Sys {
    // SAFETY: a NUL-terminated module name; no other memory is passed.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_delete_module,
            c"vdso_probe".as_ptr(),
            libc::O_NONBLOCK,
        )
    };
    sys(rc as isize)
}

// ---------------------------------------------------------------------------------------------
// stress-readers-vs-forkers
// ---------------------------------------------------------------------------------------------

fn readers_vs_forkers() -> Result<Outcome> {
    let floor_processes = floor_processes();
    const READERS: usize = 8;
    const FORKERS: usize = 2;
    const RECENT: usize = 64;
    ensure_module()?;
    let total = 2000 * scale();
    let t0 = Instant::now();
    let end = t0 + budget();
    let c0 = registry_counters()?;
    let started = AtomicU64::new(0);
    let reaped = AtomicU64::new(0);
    let (fork_ns, wait_ns) = (AtomicU64::new(0), AtomicU64::new(0));
    let recent: [AtomicI32; RECENT] = std::array::from_fn(|_| AtomicI32::new(0));
    let next = AtomicUsize::new(0);
    let done = AtomicBool::new(false);
    let mut fork_failures = Tally::default();
    let fine = [libc::ESRCH, libc::ENOENT, libc::EIO];

    let mut reads = Tally::default();
    std::thread::scope(|s| {
        let forkers: Vec<_> = (0..FORKERS)
            .map(|_| {
                s.spawn(|| {
                    let mut t = Tally::default();
                    loop {
                        let i = started.fetch_add(1, Relaxed);
                        if i >= total || may_stop(i, floor_processes, end) {
                            break;
                        }
                        // A quarter live 20 ms (their file appears), a quarter 2 ms, the
                        // rest exit at once (their file may never appear).
                        let ns = [20_000_000, 2_000_000, 0, 0][(i % 4) as usize];
                        let ts = libc::timespec {
                            tv_sec: 0,
                            tv_nsec: ns,
                        };
                        let tf = Instant::now();
                        // SAFETY: this process is multi-threaded here, so the child only
                        // calls the async-signal-safe nanosleep(2) and _exit(2).
                        let pid = unsafe { libc::fork() };
                        if pid == 0 {
                            // SAFETY: as above; `ts` is a valid timespec.
                            unsafe {
                                if ns > 0 {
                                    libc::nanosleep(&ts, std::ptr::null_mut());
                                }
                                libc::_exit(0);
                            }
                        }
                        if pid < 0 {
                            t.fail(format!("fork: {}", ename(errno())));
                            break;
                        }
                        fork_ns.fetch_add(tf.elapsed().as_nanos() as u64, Relaxed);
                        recent[next.fetch_add(1, Relaxed) % RECENT].store(pid, Relaxed);
                        let tw = Instant::now();
                        match reap(pid) {
                            Ok(()) => {
                                reaped.fetch_add(1, Relaxed);
                            }
                            Err(e) => t.fail(e),
                        }
                        wait_ns.fetch_add(
                            tw.elapsed()
                                .saturating_sub(Duration::from_nanos(ns as u64))
                                .as_nanos() as u64,
                            Relaxed,
                        );
                    }
                    t
                })
            })
            .collect();
        let readers: Vec<_> = (0..READERS)
            .map(|r| {
                let (recent, done, next) = (&recent, &done, &next);
                s.spawn(move || {
                    let mut rng = Rng::new(r as u64 + 1);
                    let mut t = Tally::default();
                    let mut listing = Vec::new();
                    let (mut seen, mut n) = (0usize, 0u64);
                    // Paced by the forkers (the guest may have a single CPU): every reader
                    // reads each new child once as soon as it is published (alive, exiting,
                    // a zombie or reaped by then), a quarter of them again a little later,
                    // sometimes one of the last 8 children or any file of the directory, and
                    // otherwise waits for the next child.
                    while !done.load(Relaxed) {
                        let published = next.load(Relaxed);
                        let pid = if published != seen {
                            seen = published;
                            recent[published.wrapping_sub(1) % RECENT].load(Relaxed)
                        } else {
                            match rng.below(16) {
                                0..=2 => {
                                    std::thread::sleep(Duration::from_micros(rng.below(3000)));
                                    let back = 1 + rng.below(8) as usize;
                                    recent[published.wrapping_sub(back) % RECENT].load(Relaxed)
                                }
                                3 => {
                                    if n % 8 == 0 {
                                        listing = reported_pids().unwrap_or_default();
                                    }
                                    n += 1;
                                    match listing.len() as u64 {
                                        0 => 1,
                                        len => listing[rng.below(len) as usize],
                                    }
                                }
                                _ => {
                                    std::thread::sleep(Duration::from_micros(200 + rng.below(300)));
                                    0
                                }
                            }
                        };
                        if pid > 0 {
                            read_report_into(&mut t, pid, &fine, 0);
                        }
                    }
                    t
                })
            })
            .collect();
        for h in forkers {
            let t = h.join().unwrap_or_else(|_| {
                let mut t = Tally::default();
                t.fail("forker thread panicked".into());
                t
            });
            fork_failures.merge(t);
        }
        done.store(true, Relaxed);
        for h in readers {
            reads.merge(h.join().unwrap_or_else(|_| {
                let mut t = Tally::default();
                t.fail("reader thread panicked".into());
                t
            }));
        }
    });
    let elapsed = t0.elapsed();
    let forks = reaped.load(Relaxed);
    fork_failures.check("forkers")?;
    reads.check("readers")?;
    // After the storm, once every event is applied, exactly the live processes have files.
    let settle = registry_drained(Duration::from_secs(30))?;
    let (users, files) = (user_pids()?, reported_pids()?);
    ensure!(
        users == files,
        "after the storm and every event applied: processes {users:?}, files {files:?}"
    );
    let c1 = registry_counters()?;
    let delta = |k: &str| {
        c1.get(k)
            .copied()
            .unwrap_or(0)
            .saturating_sub(c0.get(k).copied().unwrap_or(0))
    };
    let stopped = if forks < total {
        format!(
            " (stopped at the {:?} deadline, floor {floor_processes})",
            budget()
        )
    } else {
        String::new()
    };
    summary_line(
        "stress-readers-vs-forkers",
        &format!(
            "{forks}/{total} processes forked and reaped by {FORKERS} threads in {:.1} s{stopped} \
             (per process: fork() {:.2} ms, exit to reaped beyond its sleep {:.2} ms); {READERS} \
             readers: {} reads: {}; registry: events +{}, added +{}, removed +{}, stale_events \
             +{}, overflowed_events +{}; every event applied {:.2?} after the last exit, then \
             files == processes",
            elapsed.as_secs_f64(),
            fork_ns.load(Relaxed) as f64 / 1e6 / forks.max(1) as f64,
            wait_ns.load(Relaxed) as f64 / 1e6 / forks.max(1) as f64,
            reads.total(),
            reads.describe(),
            delta("events"),
            delta("added"),
            delta("removed"),
            delta("stale_events"),
            delta("overflowed_events"),
            settle
        ),
    );
    ensure!(
        forks >= floor_processes,
        "{forks} processes forked and reaped, below the floor of {floor_processes}"
    );
    ensure!(
        reads.by_errno.get(&0).copied().unwrap_or(0) > 0,
        "no read returned a report"
    );
    // Nothing is injected here: "every event applied" must not hide an event that was applied
    // by failing to create a file.
    ensure!(
        delta("add_failures") == 0,
        "{} file creations failed during the storm (summary add_failures)",
        delta("add_failures")
    );
    Ok(Outcome::Pass)
}

// ---------------------------------------------------------------------------------------------
// stress-insmod-rmmod-cycles
// ---------------------------------------------------------------------------------------------

/// One open/mmap/touch/munmap/close of the device; the errno of `open` if it failed.
fn map_device_once(t: &mut Tally) {
    let fd = match open(DEVICE, libc::O_RDONLY) {
        Ok(fd) => fd,
        Err(e) if [libc::ENOENT, libc::ENODEV, libc::ENXIO].contains(&e) => {
            t.count(e);
            return;
        }
        Err(e) => {
            t.fail(format!("open {DEVICE}: {}", ename(e)));
            return;
        }
    };
    // The open file pins the module: mmap and the fault must work.
    match mmap(
        PAGE_SIZE,
        libc::PROT_READ,
        libc::MAP_SHARED,
        fd.as_raw_fd(),
        0,
    ) {
        Ok(addr) => {
            let magic = peek_u32(addr);
            munmap(addr, PAGE_SIZE);
            if magic == MAGIC {
                t.count(0);
            } else {
                t.fail(format!("magic {magic:#x}"));
            }
        }
        Err(e) => t.fail(format!("mmap of an open {DEVICE}: {}", ename(e))),
    }
}

fn insmod_rmmod_cycles() -> Result<Outcome> {
    let floor_cycles = floor_cycles();
    const READERS: usize = 4;
    ensure_module()?;
    let _reload = Reload;
    let cycles = 20 * scale();
    let t0 = Instant::now();
    let end = t0 + budget();
    let done = AtomicBool::new(false);
    let me = std::process::id() as i32;
    // While the module comes and goes, these are fine too.
    let fine = [
        libc::ENOENT,
        libc::ENODEV,
        libc::ENXIO,
        libc::EIO,
        libc::ESRCH,
    ];
    let (mut reads, mut maps) = (Tally::default(), Tally::default());
    let mut main = Tally::default();
    let (mut loads, mut unloads, mut busy, mut max_unload) = (0u64, 0u64, 0u64, Duration::ZERO);

    std::thread::scope(|s| {
        let readers: Vec<_> = (0..READERS)
            .map(|r| {
                let done = &done;
                let fine = &fine;
                s.spawn(move || {
                    let mut rng = Rng::new(100 + r as u64);
                    let mut t = Tally::default();
                    let mut listing = Vec::new();
                    let mut n = 0u64;
                    while !done.load(Relaxed) {
                        if n % 16 == 0 {
                            listing = reported_pids().unwrap_or_default();
                        }
                        n += 1;
                        match rng.below(6) {
                            0 => read_report_into(&mut t, me, fine, 0),
                            1 => read_report_into(&mut t, 1, fine, 0),
                            2 if !listing.is_empty() => {
                                let pid = listing[rng.below(listing.len() as u64) as usize];
                                read_report_into(&mut t, pid, fine, 0);
                            }
                            k => {
                                let name = ["summary", "timepage", "vsyscall"][(k % 3) as usize];
                                match read_file(&format!("{DEBUGFS_DIR}/{name}")) {
                                    Ok(text) if text.contains(": ") => t.count(0),
                                    Ok(text) => t.fail(format!("{name}: {text:?}")),
                                    Err(e) if fine.contains(&e) => t.count(e),
                                    Err(e) => t.fail(format!("reading {name}: {}", ename(e))),
                                }
                            }
                        }
                        // Leave the module unreferenced now and then, or rmmod never wins.
                        std::thread::sleep(Duration::from_micros(rng.below(1000)));
                    }
                    t
                })
            })
            .collect();
        let mapper = s.spawn(|| {
            let mut rng = Rng::new(200);
            let mut t = Tally::default();
            while !done.load(Relaxed) {
                map_device_once(&mut t);
                std::thread::sleep(Duration::from_micros(rng.below(2000)));
            }
            t
        });

        let mut rng = Rng::new(300);
        for i in 0..cycles {
            if may_stop(i, floor_cycles, end) {
                break;
            }
            // Unload: retried while something holds the module.
            let tu = Instant::now();
            loop {
                match unload_module() {
                    Ok(_) => break,
                    Err(e) if e == libc::EAGAIN || e == libc::EBUSY => {
                        busy += 1;
                        if tu.elapsed() > Duration::from_secs(30) {
                            main.fail(format!("cycle {i}: rmmod busy for 30 s"));
                            break;
                        }
                        std::thread::sleep(Duration::from_micros(200));
                    }
                    Err(e) => {
                        main.fail(format!("cycle {i}: delete_module: {}", ename(e)));
                        break;
                    }
                }
            }
            if module_loaded() {
                break; // a failure was recorded
            }
            unloads += 1;
            max_unload = max_unload.max(tu.elapsed());
            if Path::new(DEBUGFS_DIR).exists() {
                main.fail(format!("cycle {i}: {DEBUGFS_DIR} left behind by rmmod"));
            }
            std::thread::sleep(Duration::from_millis(rng.below(20)));
            match load_module() {
                Ok(_) => loads += 1,
                Err(e) => {
                    main.fail(format!("cycle {i}: finit_module: {}", ename(e)));
                    break;
                }
            }
            if !Path::new(DEBUGFS_DIR).exists() || !Path::new(DEVICE).exists() {
                main.fail(format!(
                    "cycle {i}: after insmod: {DEBUGFS_DIR} {}, {DEVICE} {}",
                    Path::new(DEBUGFS_DIR).exists(),
                    Path::new(DEVICE).exists()
                ));
            }
            std::thread::sleep(Duration::from_millis(5 + rng.below(30)));
        }
        done.store(true, Relaxed);
        for h in readers {
            reads.merge(h.join().unwrap_or_else(|_| {
                let mut t = Tally::default();
                t.fail("reader thread panicked".into());
                t
            }));
        }
        maps.merge(mapper.join().unwrap_or_else(|_| {
            let mut t = Tally::default();
            t.fail("mapper thread panicked".into());
            t
        }));
    });
    let elapsed = t0.elapsed();
    if !module_loaded() {
        load_module().map_err(|e| anyhow::anyhow!("final insmod: {}", ename(e)))?;
    }
    ensure!(
        Path::new(DEBUGFS_DIR).exists() && Path::new(DEVICE).exists(),
        "the module is not back"
    );
    let stopped = if unloads < cycles {
        format!(
            " (stopped at the {:?} deadline, floor {floor_cycles}, or a failure)",
            budget()
        )
    } else {
        String::new()
    };
    summary_line(
        "stress-insmod-rmmod-cycles",
        &format!(
            "{unloads}/{cycles} rmmod + {loads} insmod in {:.1} s{stopped}; rmmod busy (retried) \
             {busy} times, longest unload incl. retries {max_unload:?}; {READERS} readers: {} \
             reads: {}; mapper: {} open/mmap/touch/munmap/close cycles: {}; module loaded at the end",
            elapsed.as_secs_f64(),
            reads.total(),
            reads.describe(),
            maps.total(),
            maps.describe()
        ),
    );
    main.check("insmod/rmmod")?;
    reads.check("readers")?;
    maps.check("mapper")?;
    ensure!(
        unloads >= floor_cycles,
        "{unloads} cycles completed, below the floor of {floor_cycles}"
    );
    ensure!(
        maps.by_errno.get(&0).copied().unwrap_or(0) > 0,
        "the mapper never mapped the page"
    );
    Ok(Outcome::Pass)
}

// ---------------------------------------------------------------------------------------------
// stress-timepage-churn
// ---------------------------------------------------------------------------------------------

/// Sets `CLOCK_REALTIME` forward; dropping (or [`ClockJump::restore`]) puts it back where it
/// would have been (by `CLOCK_MONOTONIC`).
struct ClockJump {
    real0: i128,
    mono0: i128,
    active: bool,
}

fn set_realtime(ns: i128) -> Result<()> {
    let ts = libc::timespec {
        tv_sec: (ns.div_euclid(1_000_000_000)) as libc::time_t,
        tv_nsec: (ns.rem_euclid(1_000_000_000)) as libc::c_long,
    };
    // SAFETY: `ts` is a valid timespec; CLOCK_REALTIME is settable by root.
    if unsafe { libc::clock_settime(libc::CLOCK_REALTIME, &ts) } != 0 {
        bail!("clock_settime(CLOCK_REALTIME): {}", ename(errno()));
    }
    Ok(())
}

impl ClockJump {
    fn forward(secs: i128) -> Result<Self> {
        let (real0, mono0) = (
            gettime(libc::CLOCK_REALTIME),
            gettime(libc::CLOCK_MONOTONIC),
        );
        set_realtime(real0 + secs * 1_000_000_000)?;
        Ok(ClockJump {
            real0,
            mono0,
            active: true,
        })
    }

    fn restore(&mut self) -> Result<()> {
        self.active = false;
        set_realtime(self.real0 + gettime(libc::CLOCK_MONOTONIC) - self.mono0)
    }
}

impl Drop for ClockJump {
    fn drop(&mut self) {
        if self.active {
            let _ = self.restore();
        }
    }
}

/// What the page showed after a `clock_settime`.
struct SetSeen {
    /// Until the page's coarse REALTIME was within 1 s of `clock_gettime(REALTIME)`.
    follow: Duration,
    /// `update_count` of the first snapshot that showed the new REALTIME.
    update: u64,
    /// Its `clock_was_set_seq`.
    seq: u32,
    /// `clock_was_set_seq` before the set.
    before: u32,
    /// `update_count` of the first snapshot whose `clock_was_set_seq` differed from `before`
    /// (watched for 2 s).
    seq_changed_at: Option<u64>,
}

impl SetSeen {
    /// When `clock_was_set_seq` changed, relative to the update that showed the new time.
    fn lag(&self) -> String {
        match self.seq_changed_at {
            Some(u) if u == self.update => "in that update".into(),
            Some(u) => format!("{} update(s) later", u - self.update),
            None => "not within 2 s".into(),
        }
    }

    /// The update that published the new time must also carry a new `clock_was_set_seq`.
    fn finding(&self, what: &str) -> Option<String> {
        (self.seq == self.before).then(|| {
            format!(
                "{what}: the page's update {} already shows the new REALTIME but its \
                 clock_was_set_seq is still {}; it changed {}",
                self.update,
                self.before,
                match self.seq_changed_at {
                    Some(u) => format!("at update {u}, {} update(s) later", u - self.update),
                    None => "not within 2 s".to_string(),
                }
            )
        })
    }
}

/// Sets REALTIME with `set`, then watches the page publish it.
fn watch_set(page: &TimePage, set: impl FnOnce() -> Result<()>) -> Result<SetSeen> {
    let before = page.snapshot().page.clock_was_set_seq;
    set()?;
    let t = Instant::now();
    let snap = loop {
        let s = page.snapshot();
        let c = s.coarse(Clock::Realtime).unwrap_or(0);
        if (gettime(libc::CLOCK_REALTIME) - c).abs() < 1_000_000_000 {
            break s;
        }
        ensure!(
            t.elapsed() < Duration::from_secs(5),
            "the page's REALTIME did not follow clock_settime in 5 s"
        );
        std::thread::sleep(Duration::from_micros(100));
    };
    let follow = t.elapsed();
    let mut seq_changed_at =
        (snap.page.clock_was_set_seq != before).then_some(snap.page.update_count);
    while seq_changed_at.is_none() && t.elapsed() < Duration::from_secs(2) {
        let s = page.snapshot();
        if s.page.clock_was_set_seq != before {
            seq_changed_at = Some(s.page.update_count);
        } else {
            std::thread::sleep(Duration::from_micros(100));
        }
    }
    Ok(SetSeen {
        follow,
        update: snap.page.update_count,
        seq: snap.page.clock_was_set_seq,
        before,
        seq_changed_at,
    })
}

#[derive(Default)]
struct Churn {
    cpu: usize,
    rounds: u64,
    forks: u64,
    precise_reads: u64,
    dontneed: u64,
    updates_seen: u64,
    madvise_enosys: bool,
}

/// One CPU's loop: map, check, fork, (MADV_DONTNEED,) unmap.
fn churn_on(cpu: usize, rounds: u64, end: Instant, progress: &AtomicU64) -> Result<Churn> {
    pin_to_cpu(cpu)?;
    let mut st = Churn {
        cpu,
        ..Default::default()
    };
    let (mut prev_coarse, mut prev_precise) = (i128::MIN, i128::MIN);
    let mut first_update = None;
    let mut last_update = 0;
    let mut madvise_ok = true;
    const HOUR_NS: i128 = 3_600_000_000_000;
    let floor = floor_rounds_per_cpu();
    for i in 0..rounds {
        if may_stop(i, floor, end) {
            break;
        }
        let page = TimePage::map(Path::new(DEVICE))?;
        page.check_header()
            .with_context(|| format!("CPU {cpu} round {i}: header after the first touch"))?;
        let coarse = page
            .read_coarse(Clock::Monotonic)
            .context("no coarse MONOTONIC")?;
        ensure!(
            coarse >= prev_coarse,
            "CPU {cpu} round {i}: coarse MONOTONIC went back by {} ns",
            prev_coarse - coarse
        );
        ensure!(
            prev_coarse == i128::MIN || coarse - prev_coarse < HOUR_NS / 2,
            "CPU {cpu} round {i}: coarse MONOTONIC jumped by {} ns",
            coarse - prev_coarse
        );
        prev_coarse = coarse;
        if let Some(p) = page.read_precise(Clock::Monotonic) {
            ensure!(
                p >= prev_precise,
                "CPU {cpu} round {i}: precise MONOTONIC went back by {} ns",
                prev_precise - p
            );
            ensure!(
                prev_precise == i128::MIN || p - prev_precise < HOUR_NS / 2,
                "CPU {cpu} round {i}: precise MONOTONIC jumped by {} ns",
                p - prev_precise
            );
            ensure!(
                p >= coarse,
                "CPU {cpu} round {i}: precise MONOTONIC {p} before the coarse value {coarse} read earlier"
            );
            prev_precise = p;
            st.precise_reads += 1;
        }
        let u = page.update_count();
        first_update.get_or_insert(u);
        last_update = u;

        // A child that inherits the mapping reads the magic and exits.
        let addr = page.addr() as isize;
        // SAFETY: this process is multi-threaded here, so the child only reads memory that
        // is mapped in it (the inherited page) and calls the async-signal-safe _exit(2).
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let ok = peek_u32(addr) == MAGIC;
            // SAFETY: as above.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        ensure!(pid > 0, "CPU {cpu}: fork: {}", ename(errno()));
        reap(pid).map_err(|e| anyhow::anyhow!("CPU {cpu} round {i}: fork child: {e}"))?;
        st.forks += 1;

        if madvise_ok {
            // SAFETY: zapping the page table entries of our own mapping of the page.
            let rc =
                unsafe { libc::madvise(addr as *mut libc::c_void, PAGE_SIZE, libc::MADV_DONTNEED) };
            if rc != 0 && errno() == libc::ENOSYS {
                madvise_ok = false;
                st.madvise_enosys = true;
            } else if rc != 0 {
                bail!("CPU {cpu}: madvise(MADV_DONTNEED): {}", ename(errno()));
            } else {
                ensure!(
                    peek_u32(addr) == MAGIC,
                    "CPU {cpu} round {i}: magic after MADV_DONTNEED"
                );
                st.dontneed += 1;
            }
        }
        drop(page);
        st.rounds += 1;
        progress.fetch_add(1, Relaxed);
    }
    st.updates_seen = last_update - first_update.unwrap_or(last_update);
    Ok(st)
}

fn timepage_churn() -> Result<Outcome> {
    let floor_rounds_per_cpu = floor_rounds_per_cpu();
    ensure_module()?;
    wait_until(Duration::from_secs(2), DEVICE, || {
        Path::new(DEVICE).exists()
    })?;
    let cpus = crate::proc::allowed_cpus()?;
    let rounds = 250 * scale();
    let total = rounds * cpus.len() as u64;
    let t0 = Instant::now();
    let end = t0 + budget();
    let s0 = Stats::read()?;
    let progress = AtomicU64::new(0);
    let page = TimePage::open()?;
    let mut jump_report = String::new();
    let mut findings = Vec::new();

    let results: Vec<Result<Churn>> = std::thread::scope(|s| -> Result<Vec<Result<Churn>>> {
        let handles: Vec<_> = cpus
            .iter()
            .map(|&cpu| {
                let progress = &progress;
                s.spawn(move || churn_on(cpu, rounds, end, progress))
            })
            .collect();
        let all_done = || handles.iter().all(|h| h.is_finished());
        let third = budget() / 3;
        // One third in: an hour forward.
        while progress.load(Relaxed) < total / 3 && t0.elapsed() < third && !all_done() {
            std::thread::sleep(Duration::from_millis(1));
        }
        let at1 = progress.load(Relaxed);
        let mut jump = None;
        let fwd = watch_set(&page, || {
            jump = Some(ClockJump::forward(3600)?);
            Ok(())
        })?;
        let mut jump = jump.context("no clock jump")?;
        // Two thirds in (and at least 200 ms later): back.
        let tj = Instant::now();
        while (progress.load(Relaxed) < 2 * total / 3 || tj.elapsed() < Duration::from_millis(200))
            && t0.elapsed() < 2 * third
            && !all_done()
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        let at2 = progress.load(Relaxed);
        let back = watch_set(&page, || jump.restore())?;
        findings.extend(fwd.finding("REALTIME +1 h"));
        findings.extend(back.finding("REALTIME restored"));
        jump_report = format!(
            "REALTIME +1 h after {at1} rounds (the page followed in {:?}; clock_was_set_seq was \
             {} before, {} in the update with the new time, changed {}), restored after {at2} \
             rounds (followed in {:?}; clock_was_set_seq {} before, {} in that update, changed {})",
            fwd.follow,
            fwd.before,
            fwd.seq,
            fwd.lag(),
            back.follow,
            back.before,
            back.seq,
            back.lag(),
        );
        Ok(handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("churn thread panicked")))
            })
            .collect())
    })?;
    drop(page);
    let elapsed = t0.elapsed();
    let mut per_cpu = Vec::new();
    let (mut done, mut enosys) = (0, false);
    for r in results {
        let c = r?;
        done += c.rounds;
        enosys |= c.madvise_enosys;
        per_cpu.push(format!(
            "CPU {}: {} rounds, {} forks, {} precise reads, {} MADV_DONTNEED, {} page updates",
            c.cpu, c.rounds, c.forks, c.precise_reads, c.dontneed, c.updates_seen
        ));
    }
    let s1 = Stats::read()?;
    ensure!(
        s1.mappings == s0.mappings,
        "live mappings {} after the churn (was {})",
        s1.mappings,
        s0.mappings
    );
    ensure!(
        s1.mmaps >= s0.mmaps + done,
        "mmaps {} -> {} for {done} rounds",
        s0.mmaps,
        s1.mmaps
    );
    ensure!(
        s1.updates > s0.updates,
        "no timekeeping update during the churn"
    );
    let stopped = if done < total {
        format!(
            " (stopped at the {:?} deadline, floor {floor_rounds_per_cpu} per CPU)",
            budget()
        )
    } else {
        String::new()
    };
    let madv = if enosys {
        "; MADV_DONTNEED not exercised: madvise(2) returns ENOSYS (CONFIG_ADVISE_SYSCALLS=n)"
    } else {
        ""
    };
    summary_line(
        "stress-timepage-churn",
        &format!(
            "{done}/{total} rounds on {} CPUs in {:.1} s{stopped}; {}; {jump_report}; stats: \
             mmaps +{}, faults +{}, updates +{}, live mappings {} -> {}{madv}",
            cpus.len(),
            elapsed.as_secs_f64(),
            per_cpu.join("; "),
            s1.mmaps - s0.mmaps,
            s1.faults - s0.faults,
            s1.updates - s0.updates,
            s0.mappings,
            s1.mappings
        ),
    );
    let floor = floor_rounds_per_cpu * cpus.len() as u64;
    ensure!(
        done >= floor,
        "{done} rounds on {} CPUs, below the floor of {floor_rounds_per_cpu} per CPU",
        cpus.len()
    );
    // Checked last, so that the figures above are printed either way.
    ensure!(findings.is_empty(), "{}", findings.join("; "));
    Ok(Outcome::Pass)
}

// ---------------------------------------------------------------------------------------------
// stress-60k-vmas-exit-while-reading
// ---------------------------------------------------------------------------------------------

/// `state` of `/proc/<pid>/stat` and the top of `/proc/<pid>/stack`, for a slow exit.
fn task_state(pid: i32, at: Duration) -> String {
    let state = fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(") ")?.1.to_string();
            rest.split_whitespace().next().map(str::to_string)
        })
        .unwrap_or_else(|| "?".into());
    let stack = match fs::read_to_string(format!("/proc/{pid}/stack")) {
        Ok(s) if !s.trim().is_empty() => s
            .lines()
            .take(6)
            .filter_map(|l| l.split_whitespace().nth(1))
            .collect::<Vec<_>>()
            .join(" < "),
        // The kernel shows no stack of a task running on another CPU.
        Ok(_) => "running (no stack)".into(),
        Err(e) => format!("no stack: {e}"),
    };
    format!("at {:.0} s state {state}: {stack}", at.as_secs_f64())
}

fn vmas_exit_while_reading() -> Result<Outcome> {
    const READERS: usize = 4;
    ensure_module()?;
    let rounds = scale().min(3);
    let t0 = Instant::now();
    let end = t0 + budget();
    let fine = [libc::ESRCH, libc::ENOENT, libc::EIO];
    let mut total = Tally::default();
    let mut lines = Vec::new();
    let mut done_rounds = 0;
    for round in 0..rounds {
        if Instant::now() >= end {
            break;
        }
        // Forked before any thread of this round exists (Forked needs a single thread).
        let tc = Instant::now();
        let child = spawn_many_vmas(60_000)?;
        let created = tc.elapsed();
        let pid = child.pid();
        let path = report_path(pid);
        wait_until(Duration::from_secs(10), &path, || Path::new(&path).exists())?;
        let killed = AtomicBool::new(false);
        let stop = AtomicBool::new(false);
        let full_before = AtomicU64::new(0);
        let mut tally = Tally::default();
        let mut kill_to_gone = Duration::ZERO;
        let mut reap_time = Duration::ZERO;
        let mut samples = Vec::new();
        std::thread::scope(|s| -> Result<()> {
            let readers: Vec<_> = (0..READERS)
                .map(|_| {
                    let (killed, stop, full_before, fine) = (&killed, &stop, &full_before, &fine);
                    s.spawn(move || {
                        let mut t = Tally::default();
                        while !stop.load(Relaxed) {
                            let ok0 = t.by_errno.get(&0).copied().unwrap_or(0);
                            let gone = t.by_errno.get(&libc::ENOENT).copied();
                            read_report_into(&mut t, pid, fine, 60_000);
                            let ok1 = t.by_errno.get(&0).copied().unwrap_or(0);
                            if ok1 > ok0 && !killed.load(Relaxed) {
                                full_before.fetch_add(1, Relaxed);
                            }
                            if t.by_errno.get(&libc::ENOENT).copied() != gone {
                                if killed.load(Relaxed) {
                                    // Removed after the kill: nothing more to read (the pid
                                    // is not reused before the reap). Leave the CPU to the
                                    // exiting child.
                                    break;
                                }
                                std::thread::sleep(Duration::from_micros(100));
                            }
                        }
                        t
                    })
                })
                .collect();
            // Let the readers get going (a few full reports), then SIGKILL mid-read.
            let _ = wait_until(Duration::from_secs(20), "reads before the kill", || {
                full_before.load(Relaxed) >= 4 * READERS as u64
            });
            std::thread::sleep(Duration::from_millis(3));
            let tk = Instant::now();
            // SAFETY: signalling our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            killed.store(true, Relaxed);
            // The file goes at the exit tracepoint, before the address space is torn down.
            let gone = wait_until(Duration::from_secs(60), &format!("{path} to go"), || {
                !Path::new(&path).exists()
            });
            kill_to_gone = tk.elapsed();
            // Reaped once exit_mmap() of its 60,000 VMAs is done (in the child, or in a reader
            // whose read held the last reference). A kill cannot be hurried: wait, and show
            // where the child is if it takes long.
            let mut next_sample = Duration::from_secs(15);
            loop {
                let mut st = 0;
                // SAFETY: polling our own child; `st` is a valid int.
                let rc = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
                if rc == pid || (rc < 0 && errno() != libc::EINTR) {
                    break;
                }
                if tk.elapsed() >= next_sample && samples.len() < 4 {
                    next_sample += Duration::from_secs(30);
                    samples.push(task_state(pid, tk.elapsed()));
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            reap_time = tk.elapsed();
            drop(child); // already reaped: this only closes its pipe
                         // A little more reading of the vanished file.
            std::thread::sleep(Duration::from_millis(20));
            stop.store(true, Relaxed);
            for h in readers {
                tally.merge(h.join().unwrap_or_else(|_| {
                    let mut t = Tally::default();
                    t.fail("reader thread panicked".into());
                    t
                }));
            }
            gone.map(|_| ())
        })?;
        lines.push(format!(
            "round {}: 60,000 VMAs set up in {:.1} s; {} reads ({} full before the kill): {}; \
             kill to file gone {kill_to_gone:.2?}, to reaped {reap_time:.2?}{}",
            round + 1,
            created.as_secs_f64(),
            tally.total(),
            full_before.load(Relaxed),
            tally.describe(),
            if samples.is_empty() {
                String::new()
            } else {
                format!(" (while exiting: {})", samples.join(" | "))
            }
        ));
        total.merge(tally);
        done_rounds += 1;
    }
    let elapsed = t0.elapsed();
    let stopped = if done_rounds < rounds {
        format!(" (stopped at the {:?} deadline)", budget())
    } else {
        String::new()
    };
    summary_line(
        "stress-60k-vmas-exit-while-reading",
        &format!(
            "{done_rounds}/{rounds} rounds in {:.1} s{stopped}, {READERS} readers; {}",
            elapsed.as_secs_f64(),
            lines.join("; ")
        ),
    );
    total.check("readers")?;
    ensure!(done_rounds > 0, "no round ran");
    Ok(Outcome::Pass)
}

// ---------------------------------------------------------------------------------------------
// Bad input: the checks recorder
// ---------------------------------------------------------------------------------------------

/// One check of a case: what was done, the documented result, the observed one.
struct Row {
    what: String,
    want: String,
    got: String,
}

/// The checks of one bad-input case.
struct Checks {
    rows: Vec<Row>,
}

impl Checks {
    /// Records a check; true if `got` equals `want`.
    fn eq(&mut self, what: impl Into<String>, want: impl ToString, got: impl ToString) -> bool {
        let (want, got) = (want.to_string(), got.to_string());
        let ok = want == got;
        self.rows.push(Row {
            what: what.into(),
            want,
            got,
        });
        ok
    }

    /// Expects reading `fd` to its end to give the whole report `want`.
    fn reads_whole(&mut self, what: impl Into<String>, fd: RawFd, want: &[u8]) -> bool {
        self.reads_rest(what, fd, want, 0)
    }

    /// Expects reading `fd` to its end to give the report `want` from byte `from` on.
    fn reads_rest(&mut self, what: impl Into<String>, fd: RawFd, want: &[u8], from: usize) -> bool {
        let expected = match from {
            0 => "the full report".to_string(),
            n => format!("the report from byte {n}"),
        };
        let got = describe_bytes(read_all(fd), want.get(from..), &expected);
        self.eq(what, expected, got)
    }

    /// Expects every ioctl `(name, command)` on `fd` to fail with `ENOTTY` (no ioctl handler).
    fn ioctls_refused(&mut self, fd: RawFd, cmds: &[(&str, u64)]) {
        for (what, cmd) in cmds {
            self.errno(format!("ioctl {what}"), libc::ENOTTY, ioctl(fd, *cmd));
        }
    }

    /// Expects the call to fail with `want`.
    fn errno(&mut self, what: impl Into<String>, want: i32, got: Sys) -> bool {
        self.eq(what, ename(want), show(got))
    }

    /// Expects the call to succeed; its value if it did.
    fn ok(&mut self, what: impl Into<String>, got: Sys) -> Option<isize> {
        self.eq(what, "ok", show(got));
        got.ok()
    }

    /// Expects `open` to succeed; the descriptor if it did.
    fn open(&mut self, what: impl Into<String>, path: &str, flags: i32) -> Option<OwnedFd> {
        match open(path, flags) {
            Ok(fd) => {
                self.eq(what, "ok", "ok");
                Some(fd)
            }
            Err(e) => {
                self.eq(what, "ok", ename(e));
                None
            }
        }
    }
}

/// Runs one case: records its rows (printed, and appended to the results file) and fails if
/// any observed result differs from the documented one. Device cases also check that the
/// module's live mappings are back to where they were.
fn run_case(name: &'static str, f: fn(&mut Checks) -> Result<()>) -> Result<Outcome> {
    ensure_module()?;
    let mut mark = Mark::now()?;
    let dev = name.starts_with("badinput-dev-");
    let before = if dev {
        Some(Stats::read()?.mappings)
    } else {
        None
    };
    let mut c = Checks { rows: Vec::new() };
    let res = f(&mut c);
    if let Err(e) = &res {
        c.eq("the case ran to the end", "yes", format!("no: {e:#}"));
    }
    if let Some(before) = before {
        let after = Stats::read().map(|s| s.mappings.to_string());
        c.eq(
            "live mappings (debugfs timepage) back to the value before",
            before,
            after.unwrap_or_else(|e| format!("{e:#}")),
        );
    }
    let splats = splats_shown(&mut mark)?;
    c.eq(SPLAT_CHECK, 0, splats.len());
    let mut lines = vec![format!("begin\t{name}")];
    if let Some(n) = mark.leaks() {
        lines.push(format!("kmemleak-before\t{name}\t{n}"));
    }
    let mut bad = Vec::new();
    for r in &c.rows {
        let ok = r.want == r.got;
        println!(
            "{} {}: want {}, got {}",
            if ok { "ok  " } else { "FAIL" },
            r.what,
            r.want,
            r.got
        );
        lines.push(format!(
            "case\t{name}\t{}\t{}\t{}\t{}",
            if ok { "ok" } else { "FAIL" },
            r.what,
            r.want,
            r.got
        ));
        if !ok {
            bad.push(format!("{}: want {}, got {}", r.what, r.want, r.got));
        }
    }
    record(&lines);
    ensure!(bad.is_empty(), "{}", bad.join("; "));
    Ok(Outcome::Pass)
}

/// The check of each bad-input case that counts the splats logged while it ran.
const SPLAT_CHECK: &str = "kernel log lines that are splats";

/// The splat lines logged since `mark`, the first 20 of them printed.
fn splats_shown(mark: &mut Mark) -> Result<Vec<String>> {
    let splats = mark.splats()?;
    for l in splats.iter().take(20) {
        println!("splat: {l}");
    }
    Ok(splats)
}

/// Runs one stress test, then takes the kernel's verdict on it: the splats logged while it ran
/// and, where the kernel has kmemleak, the reports of a scan afterwards. Either fails it.
pub(crate) fn run_stress(name: &'static str, f: TestFn) -> Result<Outcome> {
    let mut mark = Mark::now()?;
    let res = f();
    let splats = splats_shown(&mut mark)?;
    let leaks = if scan_each() { mark.new_leaks()? } else { None };
    let leaks_shown = leaks.map_or(NOT_SCANNED.into(), |n| n.to_string());
    println!(
        "{name}: kernel log: {} splat lines; kmemleak reports after a scan: {leaks_shown}",
        splats.len()
    );
    record(&[format!(
        "kernel\t{name}\t{}\t{}\t{}",
        if res.is_ok() { "ok" } else { "FAIL" },
        splats.len(),
        leaks.map_or("-".into(), |n| n.to_string())
    )]);
    let out = res?;
    ensure!(
        splats.is_empty() && leaks.unwrap_or(0) == 0,
        "{} splat lines in the kernel log, kmemleak: {leaks_shown}",
        splats.len()
    );
    Ok(out)
}

/// An idle process (a forked copy of this program blocked on a pipe) and its report's path.
struct Idle {
    _child: Forked,
    path: String,
}

fn idle() -> Result<Idle> {
    let child = Forked::spawn(String::new)?;
    let pid = child.pid();
    let path = report_path(pid);
    wait_until(Duration::from_secs(5), &path, || Path::new(&path).exists())?;
    Ok(Idle {
        _child: child,
        path,
    })
}

/// `path` opened read-only, for a case whose subject is what comes after the open.
fn open_ro(path: &str) -> Result<OwnedFd> {
    open(path, libc::O_RDONLY).map_err(|e| anyhow::anyhow!("open {path}: {}", ename(e)))
}

/// An idle process's report open read-only, and its whole content from another open.
struct OpenReport {
    _idle: Idle,
    want: Vec<u8>,
    fd: OwnedFd,
}

fn open_report() -> Result<OpenReport> {
    let idle = idle()?;
    let want = whole(&idle.path)?;
    let fd = open_ro(&idle.path)?;
    Ok(OpenReport {
        _idle: idle,
        want,
        fd,
    })
}

/// The whole report of `path` from one open.
fn whole(path: &str) -> Result<Vec<u8>> {
    let fd = open_ro(path)?;
    read_all(fd.as_raw_fd()).map_err(|e| anyhow::anyhow!("read {path}: {}", ename(e)))
}

/// `label` if `got` is `want` (None: nothing can match), else how it differs.
fn describe_bytes(
    got: std::result::Result<Vec<u8>, i32>,
    want: Option<&[u8]>,
    label: &str,
) -> String {
    match got {
        Ok(v) if want == Some(&v[..]) => label.into(),
        Ok(v) => format!("{} different bytes", v.len()),
        Err(e) => ename(e),
    }
}

// ---------------------------------------------------------------------------------------------
// Bad input: reports and global files
// ---------------------------------------------------------------------------------------------

fn report_open_wronly(c: &mut Checks) -> Result<()> {
    let t = idle()?;
    if let Some(fd) = c.open("open O_WRONLY as root", &t.path, libc::O_WRONLY) {
        c.errno(
            "write 4 bytes",
            libc::EINVAL,
            write(fd.as_raw_fd(), b"1234"),
        );
        let mut b = [0u8; 16];
        c.errno("read", libc::EBADF, read(fd.as_raw_fd(), &mut b));
    }
    Ok(())
}

fn report_open_rdwr(c: &mut Checks) -> Result<()> {
    let t = idle()?;
    let want = whole(&t.path)?;
    if let Some(fd) = c.open("open O_RDWR as root", &t.path, libc::O_RDWR) {
        let fd = fd.as_raw_fd();
        c.errno("write 4 bytes", libc::EINVAL, write(fd, b"1234"));
        // SAFETY: the buffer is a valid 4-byte slice.
        let pw = sys(unsafe { libc::pwrite(fd, b"1234".as_ptr().cast(), 4, 0) });
        c.errno("pwrite 4 bytes at 0", libc::ESPIPE, pw);
        c.reads_whole("read after the refused writes", fd, &want);
    }
    Ok(())
}

fn global_write(c: &mut Checks, name: &str) -> Result<()> {
    let path = format!("{DEBUGFS_DIR}/{name}");
    let before = whole(&path)?;
    if let Some(fd) = c.open(format!("open {name} O_WRONLY"), &path, libc::O_WRONLY) {
        c.errno(
            format!("write \"0\\n\" to {name}"),
            libc::EINVAL,
            write(fd.as_raw_fd(), b"0\n"),
        );
    }
    // The file still reads as before (the counters of summary/timepage may move; compare keys).
    let keys = |b: &[u8]| -> Vec<String> {
        vdso_probe::report::key_values(&String::from_utf8_lossy(b))
            .map(|kv| kv.into_iter().map(|(k, _)| k.to_string()).collect())
            .unwrap_or_else(|e| vec![format!("{e:#}")])
    };
    c.eq(
        format!("{name} keys after the write"),
        keys(&before).join(","),
        keys(&whole(&path)?).join(","),
    );
    Ok(())
}

fn global_write_vsyscall(c: &mut Checks) -> Result<()> {
    global_write(c, "vsyscall")
}

fn global_write_summary(c: &mut Checks) -> Result<()> {
    global_write(c, "summary")
}

fn global_write_timepage(c: &mut Checks) -> Result<()> {
    global_write(c, "timepage")
}

fn report_read_bytewise(c: &mut Checks) -> Result<()> {
    let t = idle()?;
    let want = whole(&t.path)?;
    let fd = open_ro(&t.path)?;
    let mut got = Vec::new();
    let mut b = [0u8; 1];
    let mut calls = 0;
    let res = loop {
        calls += 1;
        match read(fd.as_raw_fd(), &mut b) {
            Ok(0) => break Ok(got),
            Ok(_) => got.push(b[0]),
            Err(e) => break Err(e),
        }
        if calls > 1 << 20 {
            break Err(libc::EOVERFLOW);
        }
    };
    c.eq(
        format!("{} one-byte reads of an idle process's report", calls),
        "the full report",
        describe_bytes(res, Some(&want), "the full report"),
    );
    c.eq("report length", want.len(), calls - 1);
    Ok(())
}

fn report_lseek_past_end(c: &mut Checks) -> Result<()> {
    let r = open_report()?;
    let (fd, want) = (r.fd.as_raw_fd(), &r.want);
    let past = want.len() as i64 + 1000;
    c.eq(
        "lseek(len + 1000, SEEK_SET)",
        format!("ok {past}"),
        seek_shown(fd, past, libc::SEEK_SET),
    );
    let mut b = [0u8; 256];
    c.eq(
        "read there",
        "0 bytes",
        match read(fd, &mut b) {
            Ok(n) => format!("{n} bytes"),
            Err(e) => ename(e),
        },
    );
    c.eq(
        "lseek(0, SEEK_SET)",
        "ok 0",
        seek_shown(fd, 0, libc::SEEK_SET),
    );
    c.reads_whole("read from 0", fd, want);
    Ok(())
}

fn report_lseek_whence(c: &mut Checks) -> Result<()> {
    let r = open_report()?;
    let (fd, want) = (r.fd.as_raw_fd(), &r.want);
    for (what, whence) in [
        ("SEEK_END", libc::SEEK_END),
        ("SEEK_DATA", libc::SEEK_DATA),
        ("SEEK_HOLE", libc::SEEK_HOLE),
        ("whence 42", 42),
    ] {
        c.errno(
            format!("lseek(0, {what})"),
            libc::EINVAL,
            lseek(fd, 0, whence),
        );
    }
    let mut b = [0u8; 10];
    c.ok("read 10 bytes", read(fd, &mut b));
    c.eq(
        "lseek(5, SEEK_CUR)",
        "ok 15",
        seek_shown(fd, 5, libc::SEEK_CUR),
    );
    c.reads_rest("read from 15", fd, want, 15);
    Ok(())
}

fn report_lseek_negative(c: &mut Checks) -> Result<()> {
    let t = idle()?;
    let fd = open_ro(&t.path)?;
    let fd = fd.as_raw_fd();
    c.errno(
        "lseek(-1, SEEK_SET)",
        libc::EINVAL,
        lseek(fd, -1, libc::SEEK_SET),
    );
    let mut b = [0u8; 10];
    c.ok("read 10 bytes", read(fd, &mut b));
    c.errno(
        "lseek(-11, SEEK_CUR)",
        libc::EINVAL,
        lseek(fd, -11, libc::SEEK_CUR),
    );
    c.eq(
        "position after the refused seeks",
        "ok 10",
        seek_shown(fd, 0, libc::SEEK_CUR),
    );
    Ok(())
}

fn report_pread(c: &mut Checks) -> Result<()> {
    let t = idle()?;
    let want = whole(&t.path)?;
    let len = want.len();
    let fd = open_ro(&t.path)?;
    let fd = fd.as_raw_fd();
    for (off, n) in [
        (0usize, 10usize),
        (5, 20),
        (len - 1, 10),
        (len, 10),
        (1 << 62, 10),
    ] {
        let mut b = vec![0u8; n];
        let expect = &want[off.min(len)..(off.saturating_add(n)).min(len)];
        let got = pread(fd, &mut b, off as i64);
        let what = format!("pread {n} bytes at {off}");
        let want_s = format!("{} bytes of the report", expect.len());
        match got {
            Ok(k) if b[..k as usize] == *expect => c.eq(what, &want_s, &want_s),
            Ok(k) => c.eq(what, &want_s, format!("{k} different bytes")),
            Err(e) => c.eq(what, &want_s, ename(e)),
        };
    }
    c.reads_whole("read after the preads (file position 0)", fd, &want);
    Ok(())
}

fn report_pread_negative(c: &mut Checks) -> Result<()> {
    let t = idle()?;
    let fd = open_ro(&t.path)?;
    let mut b = [0u8; 10];
    c.errno(
        "pread at -1",
        libc::EINVAL,
        pread(fd.as_raw_fd(), &mut b, -1),
    );
    c.errno(
        "pread at i64::MIN",
        libc::EINVAL,
        pread(fd.as_raw_fd(), &mut b, i64::MIN),
    );
    Ok(())
}

fn report_read_zero_length(c: &mut Checks) -> Result<()> {
    let r = open_report()?;
    let (fd, want) = (r.fd.as_raw_fd(), &r.want);
    let mut b = [0u8; 0];
    c.eq(
        "read of 0 bytes",
        "0",
        match read(fd, &mut b) {
            Ok(n) => n.to_string(),
            Err(e) => ename(e),
        },
    );
    c.eq(
        "read of 0 bytes into NULL",
        "0",
        match read_raw(fd, 0, 0) {
            Ok(n) => n.to_string(),
            Err(e) => ename(e),
        },
    );
    c.reads_whole("read after", fd, want);
    Ok(())
}

fn report_read_null(c: &mut Checks) -> Result<()> {
    let r = open_report()?;
    let (fd, want) = (r.fd.as_raw_fd(), &r.want);
    c.errno(
        "read 4096 bytes into NULL",
        libc::EFAULT,
        read_raw(fd, 0, 4096),
    );
    c.errno(
        "read 4096 bytes into address 1",
        libc::EFAULT,
        read_raw(fd, 1, 4096),
    );
    c.reads_whole("read after the faults", fd, want);
    Ok(())
}

fn report_read_kernel_address(c: &mut Checks) -> Result<()> {
    let t = idle()?;
    let fd = open_ro(&t.path)?;
    for addr in [
        0xffff_8880_0000_0000usize,
        0xffff_ffff_8100_0000,
        0x0000_8000_0000_0000,
    ] {
        c.errno(
            format!("read 4096 bytes into {addr:#x}"),
            libc::EFAULT,
            read_raw(fd.as_raw_fd(), addr, 4096),
        );
    }
    Ok(())
}

fn report_read_partial_fault(c: &mut Checks) -> Result<()> {
    let t = idle()?;
    let want = whole(&t.path)?;
    ensure!(want.len() > 200, "report of {} bytes", want.len());
    // Two pages, the second unmapped: a buffer of which only 100 bytes are writable.
    let rw = libc::PROT_READ | libc::PROT_WRITE;
    let base = mmap(
        2 * PAGE_SIZE,
        rw,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
        -1,
        0,
    )
    .map_err(|e| anyhow::anyhow!("mmap: {}", ename(e)))?;
    munmap(base + PAGE_SIZE as isize, PAGE_SIZE);
    let buf = base as usize + PAGE_SIZE - 100;
    let fd = open_ro(&t.path)?;
    let fd = fd.as_raw_fd();
    let got = read_raw(fd, buf, 4096).map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    // SAFETY: the 100 bytes before the hole are inside our own readable mapping.
    let head: Vec<u8> = unsafe { std::slice::from_raw_parts(buf as *const u8, 100) }.to_vec();
    munmap(base, PAGE_SIZE);
    // x86_64's copy_to_user() stops exactly at the fault. arm64's stops at the store that
    // faulted, up to 15 bytes before it (arch/arm64/lib/copy_to_user.S: 16-byte stores, and
    // "bytes not copied" counted from the failed one): the read says how many it copied.
    let slack = if cfg!(target_arch = "aarch64") { 15 } else { 0 };
    let n = match got {
        Ok(n) if (100 - slack..=100).contains(&n) => n,
        _ => 100,
    };
    let expected = if slack == 0 {
        "100 bytes".to_string()
    } else {
        format!("{} to 100 bytes", 100 - slack)
    };
    c.eq(
        "read 4096 bytes into a buffer with 100 writable bytes",
        &expected,
        match got {
            Ok(m) if m == n => expected.clone(),
            Ok(m) => format!("{m} bytes"),
            Err(e) => ename(e),
        },
    );
    c.eq(
        "those bytes",
        "the report's first ones",
        if head[..n] == want[..n] {
            "the report's first ones".to_string()
        } else {
            "different".to_string()
        },
    );
    c.reads_rest("the next read", fd, &want, n);
    Ok(())
}

fn report_nonexistent(c: &mut Checks) -> Result<()> {
    for name in ["99999999", "abc", "0", "-1", "2"] {
        c.eq(
            format!("open {DEBUGFS_DIR}/{name}"),
            "ENOENT",
            match open(&format!("{DEBUGFS_DIR}/{name}"), libc::O_RDONLY) {
                Ok(_) => "ok".into(),
                Err(e) => ename(e),
            },
        );
    }
    Ok(())
}

fn report_directory_read(c: &mut Checks) -> Result<()> {
    let fd = open(DEBUGFS_DIR, libc::O_RDONLY | libc::O_DIRECTORY)
        .map_err(|e| anyhow::anyhow!("open {DEBUGFS_DIR}: {}", ename(e)))?;
    let mut b = [0u8; 64];
    c.errno(
        "read on the directory",
        libc::EISDIR,
        read(fd.as_raw_fd(), &mut b),
    );
    c.errno(
        "open the directory O_WRONLY",
        libc::EISDIR,
        open(DEBUGFS_DIR, libc::O_WRONLY).map(|_| 0),
    );
    Ok(())
}

/// `_IOR('v', 1, u64)`.
const IOR_V1_U64: u64 = (2 << 30) | (8 << 16) | ((b'v' as u64) << 8) | 1;

fn report_ioctl(c: &mut Checks) -> Result<()> {
    let t = idle()?;
    let fd = open_ro(&t.path)?;
    c.ioctls_refused(
        fd.as_raw_fd(),
        &[
            ("0", 0),
            ("TCGETS", libc::TCGETS),
            ("_IOR('v', 1, u64)", IOR_V1_U64),
        ],
    );
    Ok(())
}

fn report_mmap(c: &mut Checks) -> Result<()> {
    let t = idle()?;
    let fd = open_ro(&t.path)?;
    for (what, flags) in [
        ("MAP_SHARED", libc::MAP_SHARED),
        ("MAP_PRIVATE", libc::MAP_PRIVATE),
    ] {
        let r = mmap(PAGE_SIZE, libc::PROT_READ, flags, fd.as_raw_fd(), 0);
        if let Ok(a) = r {
            munmap(a, PAGE_SIZE);
        }
        c.errno(format!("mmap PROT_READ {what}"), libc::ENODEV, r);
    }
    Ok(())
}

fn report_splice(c: &mut Checks) -> Result<()> {
    let t = idle()?;
    let fd = open_ro(&t.path)?;
    let mut p = [0; 2];
    // SAFETY: `p` has room for the two descriptors pipe2(2) writes.
    let rc = unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) };
    ensure!(rc == 0, "pipe2: {}", ename(errno()));
    // SAFETY: both descriptors were just created and are owned by nothing else.
    let (pr, pw) = unsafe { (OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1])) };
    // SAFETY: plain system calls on descriptors; the offset pointer is NULL.
    let sf =
        sys(unsafe { libc::sendfile(pw.as_raw_fd(), fd.as_raw_fd(), std::ptr::null_mut(), 4096) });
    c.errno("sendfile report -> pipe", libc::EINVAL, sf);
    // SAFETY: as above; NULL offsets.
    let sp = sys(unsafe {
        libc::splice(
            fd.as_raw_fd(),
            std::ptr::null_mut(),
            pw.as_raw_fd(),
            std::ptr::null_mut(),
            4096,
            0,
        )
    });
    c.errno("splice report -> pipe", libc::EINVAL, sp);
    drop(pr);
    Ok(())
}

fn report_create_unlink(c: &mut Checks) -> Result<()> {
    let t = idle()?;
    let newpath = format!("{DEBUGFS_DIR}/stress-new");
    c.errno(
        "open O_CREAT of a new name",
        libc::EACCES,
        open(&newpath, libc::O_CREAT | libc::O_WRONLY).map(|_| 0),
    );
    let cpath = CString::new(t.path.clone())?;
    let cnew = CString::new(newpath)?;
    // SAFETY: NUL-terminated paths.
    c.errno(
        "unlink a report",
        libc::EPERM,
        sys(unsafe { libc::unlink(cpath.as_ptr()) } as isize),
    );
    // SAFETY: NUL-terminated paths.
    c.errno(
        "rename a report",
        libc::EPERM,
        sys(unsafe { libc::rename(cpath.as_ptr(), cnew.as_ptr()) } as isize),
    );
    c.eq("the report still exists", true, Path::new(&t.path).exists());
    Ok(())
}

/// `open(path, O_RDONLY)`: 0 or the errno.
fn open_errno(path: &str) -> i32 {
    match open(path, libc::O_RDONLY) {
        Ok(_) => 0,
        Err(e) => e,
    }
}

// ---------------------------------------------------------------------------------------------
// Bad input: the device
// ---------------------------------------------------------------------------------------------

fn dev_fd(flags: i32) -> Result<OwnedFd> {
    open(DEVICE, flags).map_err(|e| anyhow::anyhow!("open {DEVICE}: {}", ename(e)))
}

/// Records an mmap that must fail with `want`; unmaps it if it did not.
/// `m`: `(len, prot, flags, offset)`.
fn refused_map(c: &mut Checks, what: &str, want: i32, fd: RawFd, m: (usize, i32, i32, i64)) {
    let (len, prot, flags, off) = m;
    let r = mmap(len, prot, flags, fd, off);
    if let Ok(a) = r {
        munmap(a, len.max(1));
    }
    c.errno(format!("mmap {what}"), want, r);
}

/// Records an mmap that must work; checks the magic through it and unmaps it.
/// `m`: `(len, prot, flags, offset)`.
fn working_map(c: &mut Checks, what: &str, m: (usize, i32, i32, i64), fd: RawFd) {
    let (len, prot, flags, off) = m;
    let r = mmap(len, prot, flags, fd, off);
    if let Some(a) = c.ok(format!("mmap {what}"), r) {
        if prot & libc::PROT_READ != 0 {
            c.eq(
                format!("magic through mmap {what}"),
                format!("{MAGIC:#x}"),
                format!("{:#x}", peek_u32(a)),
            );
        }
        munmap(a, len);
    }
}

fn dev_open_wronly_mmap(c: &mut Checks) -> Result<()> {
    if let Some(fd) = c.open("open the device O_WRONLY as root", DEVICE, libc::O_WRONLY) {
        refused_map(
            c,
            "PROT_READ MAP_SHARED on an O_WRONLY fd",
            libc::EACCES,
            fd.as_raw_fd(),
            (PAGE_SIZE, libc::PROT_READ, libc::MAP_SHARED, 0),
        );
    }
    Ok(())
}

fn dev_read(c: &mut Checks) -> Result<()> {
    let fd = dev_fd(libc::O_RDONLY)?;
    let mut b = [0u8; 64];
    c.errno("read 64 bytes", libc::EINVAL, read(fd.as_raw_fd(), &mut b));
    c.errno(
        "read 64 bytes into NULL",
        libc::EINVAL,
        read_raw(fd.as_raw_fd(), 0, 64),
    );
    c.errno(
        "pread 64 bytes at 0",
        libc::EINVAL,
        pread(fd.as_raw_fd(), &mut b, 0),
    );
    Ok(())
}

fn dev_write(c: &mut Checks) -> Result<()> {
    let rw = dev_fd(libc::O_RDWR)?;
    c.errno(
        "write 4 bytes (O_RDWR fd)",
        libc::EINVAL,
        write(rw.as_raw_fd(), b"1234"),
    );
    let ro = dev_fd(libc::O_RDONLY)?;
    c.errno(
        "write 4 bytes (O_RDONLY fd)",
        libc::EBADF,
        write(ro.as_raw_fd(), b"1234"),
    );
    Ok(())
}

fn dev_ioctl(c: &mut Checks) -> Result<()> {
    let fd = dev_fd(libc::O_RDONLY)?;
    c.ioctls_refused(
        fd.as_raw_fd(),
        &[
            ("0", 0),
            ("TCGETS", libc::TCGETS),
            ("FIONREAD", libc::FIONREAD),
            ("_IOR('v', 1, u64)", IOR_V1_U64),
        ],
    );
    Ok(())
}

fn dev_lseek(c: &mut Checks) -> Result<()> {
    let fd = dev_fd(libc::O_RDONLY)?;
    c.errno(
        "lseek(0, SEEK_SET)",
        libc::ESPIPE,
        lseek(fd.as_raw_fd(), 0, libc::SEEK_SET),
    );
    c.errno(
        "lseek(4096, SEEK_SET)",
        libc::ESPIPE,
        lseek(fd.as_raw_fd(), 4096, libc::SEEK_SET),
    );
    Ok(())
}

/// The device fd an mmap case uses.
#[derive(Clone, Copy)]
enum DevFd {
    Ro,
    Rw,
}

/// One `mmap` of the device and what it must give: `Some(errno)`, or `None` for a mapping
/// (through which the magic must read, when `PROT_READ`). A "kernel:" comment above a row: the
/// VFS/mm refuses before the module's `mmap` is asked.
struct MmapCase {
    what: &'static str,
    fd: DevFd,
    len: usize,
    prot: i32,
    flags: i32,
    off: i64,
    want: Option<i32>,
}

const fn mmap_case(
    what: &'static str,
    fd: DevFd,
    (len, prot, flags, off): (usize, i32, i32, i64),
    want: Option<i32>,
) -> MmapCase {
    MmapCase {
        what,
        fd,
        len,
        prot,
        flags,
        off,
        want,
    }
}

const R: i32 = libc::PROT_READ;
const W: i32 = libc::PROT_WRITE;
const X: i32 = libc::PROT_EXEC;
const SH: i32 = libc::MAP_SHARED;
const PG: usize = PAGE_SIZE;

/// `badinput-dev-mmap`: every refused or accepted `mmap` of the device, as data.
#[rustfmt::skip]
const DEV_MMAP: &[MmapCase] = &[
    // Flags.
    mmap_case("MAP_PRIVATE (O_RDONLY fd)", DevFd::Ro, (PG, R, libc::MAP_PRIVATE, 0), Some(libc::EINVAL)),
    mmap_case("MAP_PRIVATE (O_RDWR fd)", DevFd::Rw, (PG, R, libc::MAP_PRIVATE, 0), Some(libc::EINVAL)),
    mmap_case("MAP_SHARED_VALIDATE", DevFd::Ro, (PG, R, libc::MAP_SHARED_VALIDATE, 0), None),
    // kernel: MAP_SYNC needs VM_SYNC support (the device has none).
    mmap_case("MAP_SHARED_VALIDATE|MAP_SYNC", DevFd::Ro,
         (PG, R, libc::MAP_SHARED_VALIDATE | libc::MAP_SYNC, 0), Some(libc::EOPNOTSUPP)),
    // Protections: the page is never writable or executable.
    mmap_case("PROT_WRITE (O_RDWR fd)", DevFd::Rw, (PG, W, SH, 0), Some(libc::EPERM)),
    mmap_case("PROT_READ|PROT_WRITE (O_RDWR fd)", DevFd::Rw, (PG, R | W, SH, 0), Some(libc::EPERM)),
    // kernel: a shared writable mapping needs a writable fd.
    mmap_case("PROT_READ|PROT_WRITE (O_RDONLY fd)", DevFd::Ro, (PG, R | W, SH, 0), Some(libc::EACCES)),
    mmap_case("PROT_EXEC", DevFd::Ro, (PG, X, SH, 0), Some(libc::EPERM)),
    mmap_case("PROT_READ|PROT_EXEC", DevFd::Ro, (PG, R | X, SH, 0), Some(libc::EPERM)),
    // Offsets: only page 0 exists.
    mmap_case("offset 4096", DevFd::Ro, (PG, R, SH, 4096), Some(libc::EINVAL)),
    // kernel: an unaligned offset.
    mmap_case("offset 1", DevFd::Ro, (PG, R, SH, 1), Some(libc::EINVAL)),
    mmap_case("offset 2^40", DevFd::Ro, (PG, R, SH, 1 << 40), Some(libc::EINVAL)),
    // kernel: the page offset overflows.
    mmap_case("offset -4096", DevFd::Ro, (PG, R, SH, -4096), Some(libc::EOVERFLOW)),
    // Lengths: one page, rounded up.
    mmap_case("length 8192", DevFd::Ro, (2 * PG, R, SH, 0), Some(libc::EINVAL)),
    // kernel: length 0.
    mmap_case("length 0", DevFd::Ro, (0, R, SH, 0), Some(libc::EINVAL)),
    mmap_case("length 2^40", DevFd::Ro, (1 << 40, R, SH, 0), Some(libc::EINVAL)),
    mmap_case("length 1", DevFd::Ro, (1, R, SH, 0), None),
    mmap_case("length 4095", DevFd::Ro, (PG - 1, R, SH, 0), None),
];

fn dev_mmap(c: &mut Checks) -> Result<()> {
    let (ro, rw) = (dev_fd(libc::O_RDONLY)?, dev_fd(libc::O_RDWR)?);
    for m in DEV_MMAP {
        let fd = match m.fd {
            DevFd::Ro => ro.as_raw_fd(),
            DevFd::Rw => rw.as_raw_fd(),
        };
        match m.want {
            Some(want) => refused_map(c, m.what, want, fd, (m.len, m.prot, m.flags, m.off)),
            None => working_map(c, m.what, (m.len, m.prot, m.flags, m.off), fd),
        }
    }
    // PROT_NONE works, and may become readable (never writable: badinput-dev-mprotect).
    let none = mmap(PAGE_SIZE, libc::PROT_NONE, SH, ro.as_raw_fd(), 0);
    if let Some(a) = c.ok("mmap PROT_NONE", none) {
        // SAFETY: changing the protection of our own mapping.
        let rc = sys(unsafe { libc::mprotect(a as *mut libc::c_void, PAGE_SIZE, R) } as isize);
        if c.ok("mprotect(PROT_READ) of the PROT_NONE mapping", rc)
            .is_some()
        {
            c.eq(
                "magic",
                format!("{MAGIC:#x}"),
                format!("{:#x}", peek_u32(a)),
            );
        }
        munmap(a, PAGE_SIZE);
    }
    Ok(())
}

fn dev_mmap_fixed(c: &mut Checks) -> Result<()> {
    let ro = dev_fd(libc::O_RDONLY)?;
    let (r, s, fd) = (libc::PROT_READ, libc::MAP_SHARED, ro.as_raw_fd());
    let anon = mmap(
        PAGE_SIZE,
        r | libc::PROT_WRITE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
        -1,
        0,
    )
    .map_err(|e| anyhow::anyhow!("anonymous mmap: {}", ename(e)))?;
    let got = mmap_at(anon as usize, PAGE_SIZE, r, s | libc::MAP_FIXED, fd, 0);
    let placed = c.eq(
        "MAP_FIXED over an anonymous page",
        format!("ok at {anon:#x}"),
        match got {
            Ok(a) => format!("ok at {a:#x}"),
            Err(e) => ename(e),
        },
    );
    if placed {
        c.eq(
            "magic there",
            format!("{MAGIC:#x}"),
            format!("{:#x}", peek_u32(anon)),
        );
        let again = mmap_at(anon as usize, PAGE_SIZE, r, s | libc::MAP_FIXED, fd, 0);
        c.ok("MAP_FIXED over the device mapping", again);
        c.eq(
            "magic there",
            format!("{MAGIC:#x}"),
            format!("{:#x}", peek_u32(anon)),
        );
        let nore = mmap_at(
            anon as usize,
            PAGE_SIZE,
            r,
            s | libc::MAP_FIXED_NOREPLACE,
            fd,
            0,
        );
        if let Ok(a) = nore {
            if a != anon {
                munmap(a, PAGE_SIZE);
            }
        }
        c.errno(
            "MAP_FIXED_NOREPLACE over the device mapping",
            libc::EEXIST,
            nore,
        );
    }
    munmap(anon, PAGE_SIZE);
    Ok(())
}

fn dev_mmap_populate(c: &mut Checks) -> Result<()> {
    let ro = dev_fd(libc::O_RDONLY)?;
    let f0 = Stats::read()?.faults;
    let r = mmap(
        PAGE_SIZE,
        libc::PROT_READ,
        libc::MAP_SHARED | libc::MAP_POPULATE,
        ro.as_raw_fd(),
        0,
    );
    if let Some(a) = c.ok("mmap MAP_POPULATE", r) {
        let f1 = Stats::read()?.faults;
        c.eq("faults during the mmap (populated through GUP)", 1, f1 - f0);
        c.eq(
            "magic",
            format!("{MAGIC:#x}"),
            format!("{:#x}", peek_u32(a)),
        );
        c.eq("faults on the first touch", 0, Stats::read()?.faults - f1);
        // SAFETY: locking our own mapping's range.
        let ml = sys(unsafe { libc::mlock(a as *const libc::c_void, PAGE_SIZE) } as isize);
        c.ok("mlock", ml);
        // SAFETY: as above.
        unsafe { libc::munlock(a as *const libc::c_void, PAGE_SIZE) };
        munmap(a, PAGE_SIZE);
    }
    Ok(())
}

fn dev_mprotect(c: &mut Checks) -> Result<()> {
    let ro = dev_fd(libc::O_RDONLY)?;
    let a = map_page(ro.as_raw_fd())?;
    c.eq(
        "magic",
        format!("{MAGIC:#x}"),
        format!("{:#x}", peek_u32(a)),
    );
    let mprotect = |prot| {
        // SAFETY: changing the protection of our own mapping.
        sys(unsafe { libc::mprotect(a as *mut libc::c_void, PAGE_SIZE, prot) } as isize)
    };
    let (r, w, x) = (libc::PROT_READ, libc::PROT_WRITE, libc::PROT_EXEC);
    c.errno(
        "mprotect PROT_READ|PROT_WRITE",
        libc::EACCES,
        mprotect(r | w),
    );
    c.errno("mprotect PROT_WRITE", libc::EACCES, mprotect(w));
    c.errno(
        "mprotect PROT_READ|PROT_EXEC",
        libc::EACCES,
        mprotect(r | x),
    );
    c.ok("mprotect PROT_NONE", mprotect(libc::PROT_NONE));
    c.ok("mprotect PROT_READ", mprotect(r));
    c.eq(
        "magic after",
        format!("{MAGIC:#x}"),
        format!("{:#x}", peek_u32(a)),
    );
    munmap(a, PAGE_SIZE);
    Ok(())
}

fn dev_mremap(c: &mut Checks) -> Result<()> {
    let ro = dev_fd(libc::O_RDONLY)?;
    let mut a = map_page(ro.as_raw_fd())?;
    c.eq(
        "magic",
        format!("{MAGIC:#x}"),
        format!("{:#x}", peek_u32(a)),
    );
    // `mremap` that must fail: the errno; an unexpected success is undone.
    let mut refused =
        |c: &mut Checks, what: &str, want: i32, old: usize, new: usize, flags: i32| {
            // SAFETY: remapping our own mapping; a result is unmapped right away.
            let p = unsafe { libc::mremap(a as *mut libc::c_void, old, new, flags) };
            let r = if p == libc::MAP_FAILED {
                Err(errno())
            } else {
                Ok(p as isize)
            };
            if let Ok(p) = r {
                if p != a && old != 0 {
                    a = p; // moved: the old address is gone
                }
                if old == 0 {
                    munmap(p, new);
                }
            }
            c.errno(what, want, r);
        };
    refused(
        c,
        "mremap grow 4096 -> 8192 MREMAP_MAYMOVE",
        libc::EFAULT,
        PAGE_SIZE,
        2 * PAGE_SIZE,
        libc::MREMAP_MAYMOVE,
    );
    refused(
        c,
        "mremap grow 4096 -> 8192 in place",
        libc::EFAULT,
        PAGE_SIZE,
        2 * PAGE_SIZE,
        0,
    );
    refused(c, "mremap shrink 4096 -> 0", libc::EINVAL, PAGE_SIZE, 0, 0);
    refused(
        c,
        "mremap MREMAP_DONTUNMAP",
        libc::EINVAL,
        PAGE_SIZE,
        PAGE_SIZE,
        libc::MREMAP_MAYMOVE | libc::MREMAP_DONTUNMAP,
    );
    refused(
        c,
        "mremap old length 0 (duplicate) to 4096",
        libc::EFAULT,
        0,
        PAGE_SIZE,
        libc::MREMAP_MAYMOVE,
    );
    // Moving works.
    let hole = mmap(
        PAGE_SIZE,
        libc::PROT_NONE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
        -1,
        0,
    )
    .map_err(|e| anyhow::anyhow!("placeholder mmap: {}", ename(e)))?;
    let old = a;
    // SAFETY: moving our own mapping over our own placeholder (MREMAP_FIXED replaces it).
    let p = unsafe {
        libc::mremap(
            a as *mut libc::c_void,
            PAGE_SIZE,
            PAGE_SIZE,
            libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
            hole as *mut libc::c_void,
        )
    };
    if p == libc::MAP_FAILED {
        c.eq("mremap move", "ok", ename(errno()));
        munmap(hole, PAGE_SIZE);
    } else {
        a = p as isize;
        c.eq(
            "mremap move",
            format!("ok at {hole:#x}"),
            format!("ok at {a:#x}"),
        );
        c.eq(
            "magic at the new address",
            format!("{MAGIC:#x}"),
            format!("{:#x}", peek_u32(a)),
        );
        // /proc/self/maps follows the move: the device at the new address, nothing at the old.
        let maps = vdso_probe::report::parse_maps(&fs::read_to_string("/proc/self/maps")?)?;
        let at = |addr: isize| {
            maps.iter()
                .find(|m| (m.start..m.end).contains(&(addr as u64)))
                .map_or("nothing", |m| m.name.as_str())
        };
        c.eq("/proc/self/maps at the new address", DEVICE, at(a));
        c.eq(
            "/proc/self/maps: the device is gone from the old address",
            true,
            at(old) != DEVICE,
        );
    }
    munmap(a, PAGE_SIZE);
    Ok(())
}

fn dev_proc_mem(c: &mut Checks) -> Result<()> {
    let ro = dev_fd(libc::O_RDONLY)?;
    let a = map_page(ro.as_raw_fd())?;
    let mem = open("/proc/self/mem", libc::O_RDWR)
        .map_err(|e| anyhow::anyhow!("open /proc/self/mem: {}", ename(e)))?;
    let shown = |r: Sys, b: &[u8; 4]| match r {
        Ok(4) => format!("{:#x}", u32::from_ne_bytes(*b)),
        Ok(n) => format!("{n} bytes"),
        Err(e) => ename(e),
    };
    // /proc/<pid>/mem is a remote access (FOLL_REMOTE), even of one's own memory: like
    // `[vvar]`'s `vvar_fault`, the module refuses to fault the page in for it.
    let f0 = Stats::read()?.faults;
    let mut b = [0u8; 4];
    let r = pread(mem.as_raw_fd(), &mut b, a as i64);
    c.eq(
        "pread 4 bytes of /proc/self/mem at the untouched mapping (a remote fault)",
        "EIO",
        shown(r, &b),
    );
    c.eq(
        "faults handled during that read",
        0,
        Stats::read()?.faults - f0,
    );
    // Once the owner has faulted it in, the page is there to read.
    c.eq(
        "magic read by the owner",
        format!("{MAGIC:#x}"),
        format!("{:#x}", peek_u32(a)),
    );
    let r = pread(mem.as_raw_fd(), &mut b, a as i64);
    c.eq(
        "pread of /proc/self/mem at the populated mapping",
        format!("{MAGIC:#x}"),
        shown(r, &b),
    );
    // SAFETY: the buffer is a valid 4-byte array; the target is our own mapping, which the
    // kernel must refuse to write (a success would be found by the magic check below).
    let w = sys(unsafe { libc::pwrite(mem.as_raw_fd(), [0u8; 4].as_ptr().cast(), 4, a as i64) });
    c.errno("pwrite 4 bytes of /proc/self/mem there", libc::EIO, w);
    c.eq(
        "magic after",
        format!("{MAGIC:#x}"),
        format!("{:#x}", peek_u32(a)),
    );
    munmap(a, PAGE_SIZE);
    Ok(())
}

fn dev_unprivileged(c: &mut Checks) -> Result<()> {
    let md = fs::metadata(DEVICE)?;
    c.eq(
        "device node mode and owner",
        "600 0:0",
        format!("{:o} {}:{}", md.mode() & 0o7777, md.uid(), md.gid()),
    );
    let e = as_user(|| open_errno(DEVICE))?;
    c.eq(
        "uid 1000 opens the device O_RDONLY",
        "EACCES",
        ename_or_ok(e),
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// badinput-summary
// ---------------------------------------------------------------------------------------------

fn summary() -> Result<Outcome> {
    let Ok(text) = fs::read_to_string(RESULTS) else {
        return Ok(Outcome::Skip(format!(
            "no {RESULTS}: run the stress-* and badinput-* tests first"
        )));
    };
    // The last run of each test counts.
    let mut cases: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut stress: BTreeMap<String, String> = BTreeMap::new();
    // Stress test -> (passed, splat lines, kmemleak reports or "-").
    let mut verdicts: BTreeMap<String, (bool, usize, String)> = BTreeMap::new();
    let mut leaks_at_start: Option<usize> = None;
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f.as_slice() {
            ["begin", name] => {
                if !order.iter().any(|n| n == name) {
                    order.push(name.to_string());
                }
                cases.insert(name.to_string(), Vec::new());
            }
            ["case", name, rest @ ..] => cases
                .entry(name.to_string())
                .or_default()
                .push(rest.iter().map(|s| s.to_string()).collect()),
            ["stress", name, line] => {
                stress.insert(name.to_string(), line.to_string());
            }
            ["kernel", name, ok, splats, leaks] => {
                let splats = splats.parse().unwrap_or(usize::MAX);
                verdicts.insert(name.to_string(), (*ok == "ok", splats, leaks.to_string()));
            }
            ["kmemleak-before", _, n] => {
                leaks_at_start = leaks_at_start.or(n.parse().ok());
            }
            _ => {}
        }
    }
    let (mut tried, mut passed, mut checks, mut checks_ok, mut splats) = (0, 0, 0, 0, 0);
    println!("| case | check | expected | observed | |");
    println!("|---|---|---|---|---|");
    for name in &order {
        let rows = &cases[name];
        tried += 1;
        let mut all = true;
        for r in rows {
            let [ok, what, want, got] = &r[..] else {
                continue;
            };
            checks += 1;
            if ok == "ok" {
                checks_ok += 1;
            } else {
                all = false;
            }
            if what == SPLAT_CHECK {
                splats += got.parse::<usize>().unwrap_or(1);
            }
            println!("| {name} | {what} | {want} | {got} | {ok} |");
        }
        if all {
            passed += 1;
        }
    }
    for (name, line) in &stress {
        println!("{name}: {line}");
    }
    // The bad-input cases' leaks: one scan after the last case, against the count before the
    // first (each stress test scanned after itself).
    let leaks = match leaks_at_start {
        Some(before) if scan_each() => Mark::with_leaks(before).new_leaks()?,
        _ => None,
    };
    let leaks_shown = leaks.map_or("-".to_string(), |n| n.to_string());
    println!();
    println!("| tests | cases | passed | splats | kmemleak |");
    println!("|---|---|---|---|---|");
    let mut clean = true;
    for (name, (ok, s, l)) in &verdicts {
        println!("| {name} | 1 | {} | {s} | {l} |", u8::from(*ok));
        clean &= *s == 0 && (l == "-" || l == "0");
    }
    println!("| badinput-* | {tried} | {passed} | {splats} | {leaks_shown} |");
    println!(
        "bad input: {tried} cases tried, {passed} passed ({checks} checks, {checks_ok} as \
         documented), {splats} splat lines, kmemleak: {leaks_shown}"
    );
    println!(
        "(splats: kernel log lines logged while the test ran; kmemleak: new reports after a scan, \
         '-': {NOT_SCANNED}; the runner's final kernel-log test checks the whole boot once more)"
    );
    clean &= splats == 0 && leaks.unwrap_or(0) == 0;
    ensure!(clean, "splats or kmemleak reports (table above)");
    Ok(Outcome::Pass)
}
