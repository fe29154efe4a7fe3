// SPDX-License-Identifier: GPL-2.0
//! Hardening: guest tests for the findings of the kernel review (B1, B2, B4, B6, S1-S3, F2, F3,
//! dropped lifecycle events). Each compares the module with what the kernel itself does for the
//! same caller at the same moment, never with a hard-coded expectation of the module's output:
//!
//! | test | checks | against |
//! |---|---|---|
//! | `hardening-access-matrix` | readers {root, uid 1000, uid 1001, root without `CAP_SYS_PTRACE`, root and uid 1000 in a Landlock domain} x targets {dumpable uid 1000, undumpable uid 1000, vfork child, uid 1000 that execs a setuid-root binary after both files were opened}, and a vfork child reading its own (undumpable) parent: open + read of the report | open + read of `/proc/<pid>/maps` by the same reader at the same moment |
//! | `hardening-report-bound-at-open` | a report opened before its process execs never shows the new image | the new image's `[vdso]` in `/proc/<pid>/maps` |
//! | `hardening-zombie-leader` | a process whose main thread exited while another runs has a readable report | `/proc/<tgid>/task/<tid>/maps` and `auxv` of the live thread |
//! | `hardening-timepage-remote-fault` | `/proc/<pid>/mem` cannot fault in another process's time page | the same read of that process's not-yet-populated `[vvar]` page (`pagemap`) |
//! | `hardening-stalled-reader` | a read stalled on a userfaultfd page (its target exits meanwhile) does not stop 200 other processes (50 at `VP_SCALE=quick`)' files from appearing and going | the processes' own lifetimes |
//! | `hardening-scan-vs-exit` | after insmod amid process churn, no file of a dead process | the live processes in `/proc` |
//! | `hardening-fork-fault-injection`, `hardening-exit-fault-injection` | a fork or an exit whose task fails its N-th allocation (N = 1, 2, ...) still gets its file / loses it | the fork's own result, the process's exit |
//! | `hardening-report-read-sweep`, `hardening-timepage-fault-sweep`, `hardening-timepage-timens-fault-sweep` | open + read of a report, mmap + first touch of the time page (from the root time namespace, and from a new one, whose page the fault makes), N-th allocation failed: complete and right, or a clean errno | `/proc/<pid>/maps` and `auxv`; the page's magic |
//! | `hardening-init-sweep` | as `hardening-insmod-sweep`, for the allocations whose call stack is inside `do_init_module()` only (the module's init and what the loader does around it; fault-injection stacktrace filter): every one of them fails in turn, quick enough for `make check` | as below |
//! | `hardening-insmod-sweep` | `finit_module` with its N-th allocation failed (N = 1, 2, ... until none is left) amid forks and opens of the device: a failed load leaves nothing behind | `/proc/modules`, `/dev`, debugfs, kmemleak, the kernel log |
//!
//! Each runs under the stress tests' kernel verdict ([`crate::stress::run_stress`]): a splat
//! logged while it ran (or a kmemleak report after it) fails it. The fault-injection tests use
//! `/proc/thread-self/fail-nth` (`Documentation/fault-injection/fault-injection.rst`: it fails
//! the N-th `should_fail()` of the task, slab and page allocations alike) and skip on a kernel
//! without it; each sweep also stops at the first splat, naming the N that caused it.

use crate::{
    kernel_log::Mark,
    proc::{
        become_uid, ename, ensure_module, errno, module_loaded, report_path, reported_pids,
        user_pids, wait_until, DebugfsOpen, Forked, Link, Reload, KO,
    },
    stress::{
        budget, load_module, mmap, munmap, open, peek_u32, read_all, registry_counters,
        registry_drained, stress, unload_module, Rng, Sys,
    },
    Outcome, TestFn,
};
use anyhow::{bail, ensure, Context, Result};
use std::collections::BTreeMap;
use std::{
    ffi::CString,
    fs,
    io::{BufRead, BufReader, Write},
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd},
        unix::fs::PermissionsExt,
    },
    path::Path,
    process::ExitCode,
    time::{Duration, Instant},
};
use vdso_probe::{
    report::{self, parse_maps, MapsEntry, Report, DEBUGFS_DIR},
    timepage::{DEVICE, MAGIC, PAGE_SIZE},
};

/// The hardening tests, run after the reliability suite; the sweeps last (the insmod sweep is
/// the one most likely to leave the kernel in a bad state on a module with the bugs).
pub const TESTS: &[(&str, TestFn)] = &[
    stress!("hardening-access-matrix", access_matrix),
    stress!("hardening-report-bound-at-open", bound_at_open),
    stress!("hardening-zombie-leader", zombie_leader),
    stress!("hardening-timepage-remote-fault", timepage_remote_fault),
    stress!("hardening-stalled-reader", stalled_reader),
    stress!("hardening-scan-vs-exit", scan_vs_exit),
    stress!("hardening-fork-fault-injection", fork_fault_injection),
    stress!("hardening-exit-fault-injection", exit_fault_injection),
    stress!("hardening-report-read-sweep", report_read_sweep),
    stress!("hardening-timepage-fault-sweep", timepage_fault_sweep),
    stress!(
        "hardening-timepage-timens-fault-sweep",
        timepage_timens_fault_sweep
    ),
    stress!("hardening-attribution-on-sweep", attribution_on_sweep),
    stress!("hardening-attribution-lost-calls", attribution_lost_calls),
    stress!("hardening-init-sweep", init_sweep),
    stress!("hardening-insmod-sweep", insmod_sweep),
];

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// `ok` for `Ok`, else the errno's name.
fn shown(r: Sys) -> String {
    match r {
        Ok(v) => format!("ok {v}"),
        Err(e) => ename(e),
    }
}

/// The `[name]` line of maps text, if any.
fn maps_range(maps: &[MapsEntry], name: &str) -> Option<(u64, u64)> {
    maps.iter()
        .find(|l| l.name == name)
        .map(|l| (l.start, l.end))
}

/// A range as `/proc/<pid>/maps` prints it.
fn range_str(r: Option<(u64, u64)>) -> String {
    r.map_or("none".into(), |(a, b)| format!("{a:x}-{b:x}"))
}

/// The `[vdso]` range of report text, if it parses.
fn report_vdso(text: &str) -> Option<(u64, u64)> {
    let r = Report::parse(text).ok()?;
    r.mapping("[vdso]").map(|m| (m.start, m.end))
}

/// The report file of `pid`, once it exists.
fn wait_for_file(pid: i32) -> Result<String> {
    let path = report_path(pid);
    wait_until(Duration::from_secs(5), &path, || Path::new(&path).exists())?;
    Ok(path)
}

/// `prctl(PR_SET_DUMPABLE, 0)`.
fn set_undumpable() -> std::result::Result<(), String> {
    // SAFETY: plain prctl on this process.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
        return Err(format!("PR_SET_DUMPABLE 0: {}", ename(errno())));
    }
    Ok(())
}

/// Formats `prefix`, `v` in decimal and a newline into `buf` without allocating (for a vfork
/// child); returns the length.
fn fmt_line(buf: &mut [u8; 32], prefix: &[u8], mut v: u64) -> usize {
    buf[..prefix.len()].copy_from_slice(prefix);
    let mut digits = [0u8; 20];
    let mut n = 0;
    loop {
        digits[n] = b'0' + (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let mut at = prefix.len();
    for d in digits[..n].iter().rev() {
        buf[at] = *d;
        at += 1;
    }
    buf[at] = b'\n';
    at + 1
}

/// A stack for a `CLONE_VM | CLONE_VFORK` child, and its 16-byte-aligned top.
struct VforkStack(Vec<u8>);

impl VforkStack {
    fn new() -> Self {
        // Written, not just allocated: the child must not fault in fresh pages (it runs on a
        // borrowed address space while its parent waits).
        Self(vec![0x5a; 256 * 1024])
    }

    fn top(&mut self) -> *mut libc::c_void {
        let end = self.0.as_mut_ptr_range().end as usize;
        (end & !15) as *mut libc::c_void
    }
}

/// `clone(CLONE_VM | CLONE_VFORK | SIGCHLD)`, which is `vfork()` on a stack of its own: `f`
/// runs in the child with `arg` while this thread waits; returns the child's pid (to reap).
fn vfork_run(
    stack: &mut VforkStack,
    f: extern "C" fn(*mut libc::c_void) -> libc::c_int,
    arg: *mut libc::c_void,
) -> std::result::Result<i32, String> {
    // SAFETY: the child runs `f` on its own stack and shares our memory while we are suspended
    // (CLONE_VFORK) until it exits; `f` only makes raw system calls on memory prepared for it.
    let pid = unsafe {
        libc::clone(
            f,
            stack.top(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            arg,
        )
    };
    if pid < 0 {
        return Err(format!("clone(CLONE_VM | CLONE_VFORK): {}", ename(errno())));
    }
    Ok(pid)
}

// ---------------------------------------------------------------------------------------------
// Target processes: `vdso-guest-tests --hold`
// ---------------------------------------------------------------------------------------------

/// `vdso-guest-tests --hold [--undumpable] [--vfork]`: a target process. Prints `ready <pid>`,
/// then reads stdin: `exec <path> <args>...` execs that, end of file exits 0. `--undumpable`:
/// `prctl(PR_SET_DUMPABLE, 0)` first. `--vfork`: the process vforks and the vfork child (which
/// has its parent's mm) is the target: it prints `ready <its pid>` and exits at end of file.
pub fn hold(args: &[String]) -> ExitCode {
    let flag = |f: &str| args.iter().any(|a| a == f);
    if flag("--undumpable") {
        if let Err(e) = set_undumpable() {
            eprintln!("{e}");
            return ExitCode::from(3);
        }
    }
    // SAFETY: mlockall has no memory-safety preconditions.
    if flag("--mlockall") && unsafe { libc::mlockall(libc::MCL_CURRENT) } != 0 {
        eprintln!("mlockall(MCL_CURRENT): {}", ename(errno()));
        return ExitCode::from(3);
    }
    if flag("--vfork") {
        let mut stack = VforkStack::new();
        return match vfork_run(&mut stack, hold_in_vfork_child, std::ptr::null_mut())
            .and_then(crate::proc::reap)
        {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(3)
            }
        };
    }
    println!("ready {}", std::process::id());
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if let Some(cmd) = line.strip_prefix("exec ") {
            let argv: Vec<CString> = cmd
                .split_whitespace()
                .filter_map(|a| CString::new(a).ok())
                .collect();
            let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
            ptrs.push(std::ptr::null());
            // SAFETY: `ptrs` is a NULL-terminated array of NUL-terminated strings that outlive
            // the call; execv only returns on failure.
            unsafe { libc::execv(ptrs[0], ptrs.as_ptr()) };
            eprintln!("exec {cmd}: {}", ename(errno()));
            return ExitCode::from(3);
        }
    }
    ExitCode::SUCCESS
}

/// The vfork child of `--hold --vfork`: raw system calls only (it borrows its parent's memory).
extern "C" fn hold_in_vfork_child(_: *mut libc::c_void) -> libc::c_int {
    let mut line = [0u8; 32];
    let mut sink = [0u8; 64];
    // SAFETY: raw system calls on this child's own stack buffers and its fds 0 and 1; `_exit`
    // never returns.
    unsafe {
        let n = fmt_line(&mut line, b"ready ", libc::syscall(libc::SYS_getpid) as u64);
        libc::write(1, line.as_ptr().cast(), n);
        while libc::read(0, sink.as_mut_ptr().cast(), sink.len()) > 0 {}
        libc::_exit(0)
    }
}

/// A running `--hold` target.
struct Held {
    /// The process started (the vfork parent, with `--vfork`).
    child: i32,
    reaped: bool,
    stdin: Option<fs::File>,
    out: BufReader<fs::File>,
    /// The target's pid (the vfork child's with `--vfork`).
    pid: i32,
}

/// A pipe as owned descriptors.
fn pipe_owned() -> Result<(OwnedFd, OwnedFd)> {
    let (r, w) = crate::proc::pipe()?;
    // SAFETY: both were just returned by pipe2 and are owned by nothing else.
    Ok(unsafe { (OwnedFd::from_raw_fd(r), OwnedFd::from_raw_fd(w)) })
}

impl Held {
    /// Starts `vdso-guest-tests --hold FLAGS` as `uid` (and its gid; root if None). Forked by
    /// hand: std's `Command` with `uid` or `pre_exec` fails with `ENOSYS` on the test kernels.
    fn spawn(uid: Option<u32>, flags: &[&str]) -> Result<Self> {
        let exe = CString::new(std::env::current_exe()?.to_string_lossy().into_owned())?;
        let args: Vec<CString> = ["--hold"]
            .iter()
            .chain(flags)
            .map(|a| CString::new(*a))
            .collect::<std::result::Result<_, _>>()?;
        let mut argv: Vec<*const libc::c_char> = vec![exe.as_ptr()];
        argv.extend(args.iter().map(|a| a.as_ptr()));
        argv.push(std::ptr::null());
        let (in_r, in_w) = pipe_owned()?;
        let (out_r, out_w) = pipe_owned()?;
        // SAFETY: this program is single-threaded; the child only rearranges its descriptors,
        // changes its credentials and execs (or exits).
        let pid = unsafe { libc::fork() };
        ensure!(pid >= 0, "fork: {}", ename(errno()));
        if pid == 0 {
            // SAFETY: as above; `argv` is a NULL-terminated array of NUL-terminated strings.
            unsafe {
                if libc::dup2(in_r.as_raw_fd(), 0) < 0 || libc::dup2(out_w.as_raw_fd(), 1) < 0 {
                    libc::_exit(126);
                }
                if let Some(uid) = uid {
                    if become_uid(uid).is_err() {
                        libc::_exit(126);
                    }
                }
                libc::execv(exe.as_ptr(), argv.as_ptr());
                libc::_exit(127);
            }
        }
        drop((in_r, out_w));
        let mut h = Held {
            child: pid,
            reaped: false,
            stdin: Some(in_w.into()),
            out: BufReader::new(out_r.into()),
            pid: 0,
        };
        h.pid = h.ready()?;
        Ok(h)
    }

    /// Reads `ready <pid>`.
    fn ready(&mut self) -> Result<i32> {
        let mut line = String::new();
        self.out.read_line(&mut line)?;
        line.trim()
            .strip_prefix("ready ")
            .and_then(|p| p.parse().ok())
            .with_context(|| format!("--hold target said {line:?}"))
    }

    /// Execs `argv` in the target; returns when the new image says it is ready.
    fn exec(&mut self, argv: &[&str]) -> Result<()> {
        let stdin = self.stdin.as_mut().context("no stdin")?;
        writeln!(stdin, "exec {}", argv.join(" "))?;
        let pid = self.ready()?;
        ensure!(
            pid == self.pid,
            "exec'd image says pid {pid}, not {}",
            self.pid
        );
        Ok(())
    }

    /// Ends the target (end of file on its stdin) and checks that it exited with status 0.
    fn finish(mut self) -> Result<()> {
        self.stdin = None;
        self.reaped = true;
        crate::proc::reap_within(self.child, Duration::from_secs(10))
            .with_context(|| format!("--hold target {}", self.pid))
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if !self.reaped {
            // SAFETY: signalling our own target (the vfork child, with `--vfork`) and the
            // process we started.
            unsafe {
                if self.pid > 0 {
                    libc::kill(self.pid, libc::SIGKILL);
                }
                libc::kill(self.child, libc::SIGKILL);
            }
            let _ = crate::proc::reap_within(self.child, Duration::from_secs(10));
        }
    }
}

/// This program, copied to `/tmp` (tmpfs, no `nosuid`) as a setuid-root binary; removed when
/// dropped.
struct SuidCopy(String);

impl SuidCopy {
    fn new() -> Result<Self> {
        let path = "/tmp/vdso-guest-tests-suid".to_string();
        fs::copy(std::env::current_exe()?, &path)?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o4755))?;
        Ok(Self(path))
    }
}

impl Drop for SuidCopy {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

// ---------------------------------------------------------------------------------------------
// hardening-access-matrix
// ---------------------------------------------------------------------------------------------

/// What a reader saw of one file: refused at open, the read failed, an empty read, or text.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Refused(i32),
    ReadFailed(i32),
    Empty,
    Text(String),
}

impl Seen {
    /// Opens `path` now (the reader's view at this moment).
    fn open(path: &str) -> std::result::Result<OwnedFd, Seen> {
        open(path, libc::O_RDONLY).map_err(Seen::Refused)
    }

    /// Reads an open file (or keeps the refusal).
    fn read(fd: std::result::Result<OwnedFd, Seen>) -> Seen {
        match fd {
            Err(refused) => refused,
            Ok(fd) => match read_all(fd.as_raw_fd()) {
                Ok(b) if b.is_empty() => Seen::Empty,
                Ok(b) => Seen::Text(String::from_utf8_lossy(&b).into_owned()),
                Err(e) => Seen::ReadFailed(e),
            },
        }
    }

    /// From a vfork child's raw results: the open's errno, the read's errno, the bytes read.
    fn from_raw(open_errno: i32, read_errno: i32, bytes: &[u8]) -> Seen {
        match (open_errno, read_errno) {
            (0, 0) if bytes.is_empty() => Seen::Empty,
            (0, 0) => Seen::Text(String::from_utf8_lossy(bytes).into_owned()),
            (0, e) => Seen::ReadFailed(e),
            (e, _) => Seen::Refused(e),
        }
    }

    /// One line for the conversation with the parent.
    fn encode(&self) -> String {
        match self {
            Seen::Refused(e) => format!("refused {e}"),
            Seen::ReadFailed(e) => format!("readfail {e}"),
            Seen::Empty => "empty".into(),
            Seen::Text(t) => format!("text {}", serde_json::Value::from(t.as_str())),
        }
    }

    fn decode(line: &str) -> Result<Seen> {
        let (kind, rest) = line.split_once(' ').unwrap_or((line, ""));
        Ok(match kind {
            "refused" => Seen::Refused(rest.parse()?),
            "readfail" => Seen::ReadFailed(rest.parse()?),
            "empty" => Seen::Empty,
            "text" => Seen::Text(serde_json::from_str(rest)?),
            _ => bail!("reader said {line:?}"),
        })
    }

    fn shows_data(&self) -> bool {
        matches!(self, Seen::Text(_))
    }

    /// `open EACCES`, `read ESTALE`, `0 bytes`, `[vdso] a-b` (a report) or `text` (maps).
    fn describe(&self) -> String {
        match self {
            Seen::Refused(e) => format!("open {}", ename(*e)),
            Seen::ReadFailed(e) => format!("read {}", ename(*e)),
            Seen::Empty => "0 bytes".into(),
            Seen::Text(t) => match report_vdso(t) {
                Some(r) => format!("report, [vdso] {}", range_str(Some(r))),
                None => match parse_maps(t) {
                    Ok(m) => format!("maps, [vdso] {}", range_str(maps_range(&m, "[vdso]"))),
                    Err(_) => format!("{} bytes of text", t.len()),
                },
            },
        }
    }
}

/// One cell of the matrix: Ok(what both showed) if the report behaved as `/proc/<pid>/maps` did
/// for the same reader, Err(the difference) otherwise. `new_image`: the `[vdso]` of the image the
/// target exec'd after the files were opened.
fn judge(
    module: &Seen,
    procfs: &Seen,
    new_image: Option<(u64, u64)>,
) -> std::result::Result<String, String> {
    let differ = || {
        let mut s = format!("module {}, /proc {}", module.describe(), procfs.describe());
        if let (Seen::Text(t), Some(new)) = (module, new_image) {
            if report_vdso(t) == Some(new) {
                s.push_str(" (the setuid image exec'd after the open)");
            }
        }
        Err(s)
    };
    match (module, procfs) {
        (Seen::Refused(a), Seen::Refused(b)) if a == b => {
            Ok(format!("both refused: {}", ename(*a)))
        }
        (Seen::Refused(_), _) | (_, Seen::Refused(_)) => differ(),
        (Seen::Text(t), Seen::Text(m)) => {
            let maps = parse_maps(m).map_err(|e| format!("/proc maps text: {e:#}"))?;
            match (report_vdso(t), maps_range(&maps, "[vdso]")) {
                (Some(a), Some(b)) if a == b => {
                    Ok(format!("both show [vdso] {}", range_str(Some(a))))
                }
                _ => differ(),
            }
        }
        _ if module.shows_data() != procfs.shows_data() => differ(),
        _ => Ok(format!(
            "neither shows data: module {}, /proc {}",
            module.describe(),
            procfs.describe()
        )),
    }
}

/// A reader of the matrix: who opens the files.
#[derive(Clone, Copy, PartialEq)]
enum Reader {
    Root,
    SameUid,
    OtherUid,
    RootNoPtrace,
    LandlockRoot,
    LandlockUser,
}

const READERS: [Reader; 6] = [
    Reader::Root,
    Reader::SameUid,
    Reader::OtherUid,
    Reader::RootNoPtrace,
    Reader::LandlockRoot,
    Reader::LandlockUser,
];

/// Why a reader could not be set up: the cell is skipped, or fails.
enum NoReader {
    Skip(String),
    Fail(String),
}

impl Reader {
    fn name(self) -> &'static str {
        match self {
            Reader::Root => "root",
            Reader::SameUid => "uid 1000",
            Reader::OtherUid => "uid 1001",
            Reader::RootNoPtrace => "root without CAP_SYS_PTRACE",
            Reader::LandlockRoot => "root in a Landlock domain",
            Reader::LandlockUser => "uid 1000 in a Landlock domain",
        }
    }

    /// Becomes this reader (in a forked child of the root test process).
    fn enter(self) -> std::result::Result<(), NoReader> {
        match self {
            Reader::Root => Ok(()),
            Reader::SameUid => become_uid(1000).map_err(NoReader::Fail),
            Reader::OtherUid => become_uid(1001).map_err(NoReader::Fail),
            Reader::RootNoPtrace => drop_cap(CAP_SYS_PTRACE).map_err(NoReader::Fail),
            Reader::LandlockRoot => landlock_self(),
            Reader::LandlockUser => {
                become_uid(1000).map_err(NoReader::Fail)?;
                landlock_self()
            }
        }
    }
}

const CAP_SYS_PTRACE: u32 = 19;

/// `capset(2)`'s header and one of its two data words (`_LINUX_CAPABILITY_VERSION_3`).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Drops capability `cap` (< 32) from this process's effective and permitted sets.
fn drop_cap(cap: u32) -> std::result::Result<(), String> {
    let hdr = CapHeader {
        version: 0x2008_0522,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: `hdr` and the two-element `data` are what capget(2) version 3 reads and writes.
    if unsafe { libc::syscall(libc::SYS_capget, &hdr, data.as_mut_ptr()) } != 0 {
        return Err(format!("capget: {}", ename(errno())));
    }
    data[0].effective &= !(1 << cap);
    data[0].permitted &= !(1 << cap);
    // SAFETY: as above; capset only reads them.
    if unsafe { libc::syscall(libc::SYS_capset, &hdr, data.as_ptr()) } != 0 {
        return Err(format!("capset: {}", ename(errno())));
    }
    Ok(())
}

/// `struct landlock_ruleset_attr` of Landlock ABI 1.
#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
}

const LANDLOCK_ACCESS_FS_MAKE_REG: u64 = 1 << 8;
const LANDLOCK_CREATE_RULESET_VERSION: u32 = 1;

/// Puts this process in a new Landlock domain that handles creating regular files only (so it
/// can still read everything): every process outside it is then outside its ptrace scope.
fn landlock_self() -> std::result::Result<(), NoReader> {
    // SAFETY: the version query takes no attribute.
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<RulesetAttr>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if abi < 0 {
        return Err(NoReader::Skip(format!(
            "no Landlock in this kernel (landlock_create_ruleset: {})",
            ename(errno())
        )));
    }
    let attr = RulesetAttr {
        handled_access_fs: LANDLOCK_ACCESS_FS_MAKE_REG,
    };
    let fail = |what: &str| NoReader::Fail(format!("{what}: {}", ename(errno())));
    // SAFETY: `attr` is a valid ABI-1 ruleset attribute of the size passed.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            &attr,
            std::mem::size_of::<RulesetAttr>(),
            0u32,
        )
    };
    if fd < 0 {
        return Err(fail("landlock_create_ruleset"));
    }
    // SAFETY: plain prctl and Landlock calls on this process and the descriptor just created.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(fail("PR_SET_NO_NEW_PRIVS"));
        }
        if libc::syscall(libc::SYS_landlock_restrict_self, fd as i32, 0u32) != 0 {
            return Err(fail("landlock_restrict_self"));
        }
        libc::close(fd as i32);
    }
    Ok(())
}

/// A cell's verdict.
enum Cell {
    Same(String),
    Differ(String),
    Skip(String),
}

impl Cell {
    fn short(&self) -> String {
        match self {
            Cell::Same(s) => format!("ok: {s}"),
            Cell::Differ(s) => format!("FAIL: {s}"),
            Cell::Skip(s) => format!("SKIP: {s}"),
        }
    }
}

/// Reader `who` opens the report and `/proc/<pid>/maps` of `pid`; `between` runs after both
/// opens (the target may exec there; it returns the new image's `[vdso]`); then the reader reads
/// both, and the two are judged.
fn cell(
    who: Reader,
    pid: i32,
    between: impl FnOnce() -> Result<Option<(u64, u64)>>,
) -> Result<Cell> {
    let (report, maps) = (report_path(pid), format!("/proc/{pid}/maps"));
    let mut r = Forked::talk(move |link| {
        match who.enter() {
            Ok(()) => {}
            Err(NoReader::Skip(why)) => {
                link.say(&format!("skip {why}"));
                return 0;
            }
            Err(NoReader::Fail(why)) => {
                link.say(&format!("fail {why}"));
                return 1;
            }
        }
        let fds = (Seen::open(&report), Seen::open(&maps));
        link.say("opened");
        if link.hear().is_none() {
            return 1;
        }
        link.say(&Seen::read(fds.0).encode());
        link.say(&Seen::read(fds.1).encode());
        0
    })?;
    let first = r.recv_timeout(Duration::from_secs(30))?;
    if let Some(why) = first.strip_prefix("skip ") {
        r.finish()?;
        return Ok(Cell::Skip(why.to_string()));
    }
    ensure!(first == "opened", "reader {}: {first}", who.name());
    let new_image = between()?;
    r.send("read")?;
    let module = Seen::decode(&r.recv_timeout(Duration::from_secs(30))?)?;
    let procfs = Seen::decode(&r.recv_timeout(Duration::from_secs(30))?)?;
    r.finish()?;
    Ok(match judge(&module, &procfs, new_image) {
        Ok(s) => Cell::Same(s),
        Err(s) => Cell::Differ(s),
    })
}

/// The raw results of the vfork child in [`shared_mm_cell`]: it opens and reads two files into
/// buffers its parent prepared (its parent waits meanwhile, and it has its parent's memory).
#[repr(C)]
struct VforkReads {
    paths: [*const libc::c_char; 2],
    bufs: [*mut u8; 2],
    cap: usize,
    open_errno: [i32; 2],
    read_errno: [i32; 2],
    len: [usize; 2],
}

extern "C" fn vfork_reader(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the parent's `VforkReads`, whose paths are NUL-terminated and whose
    // buffers hold `cap` bytes; the parent is suspended until this child exits. Raw system
    // calls only; `_exit` never returns.
    unsafe {
        let v = &mut *arg.cast::<VforkReads>();
        for i in 0..2 {
            let fd = libc::open(v.paths[i], libc::O_RDONLY);
            if fd < 0 {
                v.open_errno[i] = *libc::__errno_location();
                continue;
            }
            loop {
                let n = libc::read(fd, v.bufs[i].add(v.len[i]).cast(), v.cap - v.len[i]);
                if n < 0 {
                    v.read_errno[i] = *libc::__errno_location();
                    break;
                }
                if n == 0 || v.len[i] + n as usize == v.cap {
                    v.len[i] += n as usize;
                    break;
                }
                v.len[i] += n as usize;
            }
            libc::close(fd);
        }
        libc::_exit(0)
    }
}

/// The reader that shares its target's mm: an undumpable uid-1000 process P vforks, and the
/// vfork child opens and reads P's report and P's `/proc/<P>/maps` (procfs allows it: the mm is
/// the reader's own).
fn shared_mm_cell(dbgfs: &DebugfsOpen) -> Result<Cell> {
    let mut p = Forked::talk(|link| {
        if let Err(e) = become_uid(1000).and_then(|()| set_undumpable()) {
            link.say(&format!("fail {e}"));
            return 1;
        }
        link.say("ready");
        if link.hear().is_none() {
            return 1;
        }
        // SAFETY: getpid has no preconditions.
        let me = unsafe { libc::getpid() };
        let paths = [
            CString::new(report_path(me)).unwrap_or_default(),
            CString::new(format!("/proc/{me}/maps")).unwrap_or_default(),
        ];
        const CAP: usize = 256 * 1024;
        let mut bufs = [vec![1u8; CAP], vec![1u8; CAP]];
        let mut v = VforkReads {
            paths: [paths[0].as_ptr(), paths[1].as_ptr()],
            bufs: [bufs[0].as_mut_ptr(), bufs[1].as_mut_ptr()],
            cap: CAP,
            open_errno: [0; 2],
            read_errno: [0; 2],
            len: [0; 2],
        };
        let mut stack = VforkStack::new();
        let done = vfork_run(&mut stack, vfork_reader, (&mut v as *mut VforkReads).cast())
            .and_then(crate::proc::reap);
        if let Err(e) = done {
            link.say(&format!("fail vfork child: {e}"));
            return 1;
        }
        for i in 0..2 {
            let seen = Seen::from_raw(v.open_errno[i], v.read_errno[i], &bufs[i][..v.len[i]]);
            link.say(&seen.encode());
        }
        0
    })?;
    let first = p.recv_timeout(Duration::from_secs(30))?;
    ensure!(first == "ready", "undumpable uid-1000 process: {first}");
    dbgfs.expose(p.pid())?;
    p.send("go")?;
    let module = Seen::decode(&p.recv_timeout(Duration::from_secs(30))?)?;
    let procfs = Seen::decode(&p.recv_timeout(Duration::from_secs(30))?)?;
    p.finish()?;
    Ok(match judge(&module, &procfs, None) {
        Ok(s) => Cell::Same(s),
        Err(s) => Cell::Differ(s),
    })
}

const TARGETS: [&str; 4] = [
    "dumpable uid 1000",
    "undumpable uid 1000 (PR_SET_DUMPABLE 0)",
    "vfork child of a uid-1000 process",
    "uid 1000, execs a setuid-root binary after the opens",
];

fn access_matrix() -> Result<Outcome> {
    ensure_module()?;
    let dbgfs = DebugfsOpen::new()?;
    let suid = SuidCopy::new()?;
    let fixed = [
        Held::spawn(Some(1000), &[])?,
        Held::spawn(Some(1000), &["--undumpable"])?,
        Held::spawn(Some(1000), &["--vfork"])?,
    ];
    for t in &fixed {
        dbgfs.expose(t.pid)?;
    }
    let mut rows = Vec::new();
    for who in READERS {
        let mut cells = Vec::new();
        for t in &fixed {
            cells.push(cell(who, t.pid, || Ok(None))?);
        }
        // A fresh target per reader: it execs the setuid copy between the opens and the reads.
        let mut t = Held::spawn(Some(1000), &[])?;
        let pid = t.pid;
        dbgfs.expose(pid)?;
        let c = cell(who, pid, || {
            t.exec(&[&suid.0, "--hold"])?;
            let maps = parse_maps(&fs::read_to_string(format!("/proc/{pid}/maps"))?)?;
            Ok(maps_range(&maps, "[vdso]"))
        })?;
        t.finish()?;
        cells.push(c);
        rows.push((who.name(), cells));
    }
    let shared = shared_mm_cell(&dbgfs)?;
    for t in fixed {
        t.finish()?;
    }

    println!(
        "access matrix: open + read of /sys/kernel/debug/vdso/<pid> against open + read of \
         /proc/<pid>/maps by the same reader at the same moment (debugfs 0755, files 0444)"
    );
    println!("| reader | {} |", TARGETS.join(" | "));
    println!("|---|---|---|---|---|");
    let mut bad = Vec::new();
    for (who, cells) in &rows {
        println!(
            "| {who} | {} |",
            cells
                .iter()
                .map(Cell::short)
                .collect::<Vec<_>>()
                .join(" | ")
        );
        for (c, t) in cells.iter().zip(TARGETS) {
            if let Cell::Differ(d) = c {
                bad.push(format!("{who} reading {t}: {d}"));
            }
        }
    }
    println!(
        "| vfork child of an undumpable uid-1000 process P, reading P (the same mm) | {} | | | |",
        shared.short()
    );
    if let Cell::Differ(d) = &shared {
        bad.push(format!(
            "a vfork child reading its undumpable parent (same mm): {d}"
        ));
    }
    ensure!(
        bad.is_empty(),
        "{} cells differ from /proc: {}",
        bad.len(),
        bad.join("; ")
    );
    Ok(Outcome::Pass)
}

// ---------------------------------------------------------------------------------------------
// report-mlockall
// ---------------------------------------------------------------------------------------------

/// `mlockall(MCL_CURRENT)` populates `[vvar]` (7.3 dropped `VM_IO` from it) without a single
/// read, while `[vvar_vclock]` (`VM_IO | VM_PFNMAP`) is left alone: the same program held with
/// and without it, as the report sees both. (arm64 has no `[vvar_vclock]`: only `[vvar]`.)
pub(crate) fn report_mlockall() -> Result<Outcome> {
    ensure_module()?;
    let mut seen = Vec::new();
    for flags in [&[][..], &["--mlockall"][..]] {
        let t = Held::spawn(None, flags)?;
        wait_for_file(t.pid)?;
        let r = Report::read(t.pid)?;
        crate::proc::check_against_proc(&r)?;
        let m = |name: &str| {
            r.mapping(name)
                .map(|m| {
                    (
                        m.populated,
                        m.pages,
                        m.flags.join(" "),
                        m.page_roles.clone(),
                    )
                })
                .with_context(|| format!("no {name} in the report"))
        };
        let vvar = m("[vvar]")?;
        let vclock = if cfg!(target_arch = "x86_64") {
            Some(m("[vvar_vclock]")?)
        } else {
            None
        };
        println!(
            "--hold {}: [vvar] {} of {} pages populated ({:?}), flags [{}]",
            flags.join(" "),
            vvar.0,
            vvar.1,
            vvar.3,
            vvar.2
        );
        if let Some(v) = &vclock {
            println!(
                "    [vvar_vclock] {} of {} populated, flags [{}]",
                v.0, v.1, v.2
            );
        }
        seen.push((vvar, vclock));
    }
    let (plain, locked) = (&seen[0], &seen[1]);
    ensure!(
        locked.0 .0 > plain.0 .0,
        "mlockall populated no [vvar] page ({} -> {})",
        plain.0 .0,
        locked.0 .0
    );
    ensure!(
        !locked.0 .2.split(' ').any(|f| f == "io"),
        "[vvar] has VM_IO: {}",
        locked.0 .2
    );
    if let (Some(p), Some(l)) = (&plain.1, &locked.1) {
        ensure!(
            l.0 == p.0,
            "mlockall populated [vvar_vclock] ({} -> {})",
            p.0,
            l.0
        );
    }
    Ok(Outcome::Pass)
}

// ---------------------------------------------------------------------------------------------
// hardening-report-bound-at-open
// ---------------------------------------------------------------------------------------------

fn bound_at_open() -> Result<Outcome> {
    ensure_module()?;
    let mut t = Held::spawn(None, &[])?;
    let pid = t.pid;
    let path = wait_for_file(pid)?;
    let fd =
        open(&path, libc::O_RDONLY).map_err(|e| anyhow::anyhow!("open {path}: {}", ename(e)))?;
    let before =
        read_all(fd.as_raw_fd()).map_err(|e| anyhow::anyhow!("first read: {}", ename(e)))?;
    let before = Report::parse(&String::from_utf8_lossy(&before)).context("first read")?;
    crate::proc::check_against_proc(&before)?;
    let old = before.mapping("[vdso]").map(|m| (m.start, m.end));
    // Any exec: a new mm. The same program again.
    let exe = std::env::current_exe()?;
    t.exec(&[&exe.to_string_lossy(), "--hold"])?;
    let maps = parse_maps(&fs::read_to_string(format!("/proc/{pid}/maps"))?)?;
    let new = maps_range(&maps, "[vdso]");
    // SAFETY: plain lseek on our descriptor.
    let rewound = unsafe { libc::lseek(fd.as_raw_fd(), 0, libc::SEEK_SET) };
    ensure!(rewound == 0, "lseek: {}", ename(errno()));
    let after = read_all(fd.as_raw_fd());
    println!(
        "report fd opened before exec: [vdso] {} before; after the exec (/proc: [vdso] {}) a read \
         of it gives {}",
        range_str(old),
        range_str(new),
        match &after {
            Ok(b) if b.is_empty() => "0 bytes".to_string(),
            Ok(b) => format!(
                "{} bytes, [vdso] {}",
                b.len(),
                range_str(report_vdso(&String::from_utf8_lossy(b)))
            ),
            Err(e) => ename(*e),
        }
    );
    t.finish()?;
    match after {
        Err(e) if [libc::ESTALE, libc::ESRCH, libc::EIO].contains(&e) => Ok(Outcome::Pass),
        Err(e) => bail!(
            "read after exec: {} (want ESTALE, ESRCH, EIO or 0 bytes)",
            ename(e)
        ),
        Ok(b) if b.is_empty() => Ok(Outcome::Pass),
        Ok(b) => {
            let shown = report_vdso(&String::from_utf8_lossy(&b));
            bail!(
                "a report opened before the exec shows the new image: [vdso] {}{}",
                range_str(shown),
                if shown.is_some() && shown == new {
                    " (the new image's, as /proc/<pid>/maps shows it)"
                } else {
                    ""
                }
            )
        }
    }
}

// ---------------------------------------------------------------------------------------------
// hardening-zombie-leader
// ---------------------------------------------------------------------------------------------

/// The state letter of `/proc/<pid>/stat` (`Z`: zombie).
fn proc_state(pid: i32) -> Option<String> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(
        s.rsplit_once(") ")?
            .1
            .split_whitespace()
            .next()?
            .to_string(),
    )
}

fn zombie_leader() -> Result<Outcome> {
    ensure_module()?;
    let mut p = Forked::talk(|link| {
        let l = link.clone();
        std::thread::spawn(move || {
            // SAFETY: gettid has no preconditions.
            let tid = unsafe { libc::gettid() };
            l.say(&format!("ready {tid}"));
            while l.hear().is_some() {}
            // SAFETY: ends the whole process; nothing of it is needed any more.
            unsafe { libc::_exit(0) };
        });
        // The main thread exits alone (what pthread_exit() ends with: exit(2), not
        // exit_group(2); raw, so that no Rust frame is unwound): the leader is a zombie while
        // the other thread runs.
        // SAFETY: ends this thread only; the other one owns the conversation from now on.
        unsafe { libc::syscall(libc::SYS_exit, 0) };
        1
    })?;
    let tgid = p.pid();
    let tid: i32 = p
        .recv_timeout(Duration::from_secs(10))?
        .strip_prefix("ready ")
        .and_then(|t| t.parse().ok())
        .context("no tid")?;
    wait_until(Duration::from_secs(5), "the leader to be a zombie", || {
        proc_state(tgid).as_deref() == Some("Z")
    })?;
    let task = format!("/proc/{tgid}/task/{tid}");
    let maps = parse_maps(&fs::read_to_string(format!("{task}/maps"))?)?;
    let auxv = fs::read(format!("{task}/auxv"))?;
    let leader_maps = fs::read_to_string(format!("/proc/{tgid}/maps")).map(|s| s.len());
    println!(
        "pid {tgid}: leader a zombie, thread {tid} alive; /proc/{tgid}/task/{tid}/maps: [vdso] {}, \
         [vvar] {}; /proc/{tgid}/maps (the leader's): {}",
        range_str(maps_range(&maps, "[vdso]")),
        range_str(maps_range(&maps, "[vvar]")),
        match &leader_maps {
            Ok(n) => format!("{n} bytes"),
            Err(e) => e.to_string(),
        }
    );
    let path = wait_for_file(tgid)?;
    let text = crate::stress::read_file(&path);
    let res = (|| -> Result<()> {
        let text = text.map_err(|e| anyhow::anyhow!("reading {path}: {}", ename(e)))?;
        let r = Report::parse(&text).with_context(|| format!("parsing {path}"))?;
        ensure!(r.has_mm, "mm: no");
        let bad = report::compare(
            &r,
            &maps,
            report::auxv_entry(&auxv, 8, libc::AT_SYSINFO_EHDR),
        );
        ensure!(bad.is_empty(), "against {task}/maps: {}", bad.join("; "));
        println!("report: mm yes, [vdso]/[vvar]/[vvar_vclock] and AT_SYSINFO_EHDR equal {task}'s");
        Ok(())
    })();
    p.finish()?;
    res?;
    Ok(Outcome::Pass)
}

// ---------------------------------------------------------------------------------------------
// hardening-timepage-remote-fault
// ---------------------------------------------------------------------------------------------

/// Whether the page at `addr` of `pid` is present (`/proc/<pid>/pagemap`, bit 63).
fn page_present(pid: i32, addr: u64) -> Result<bool> {
    let f = fs::File::open(format!("/proc/{pid}/pagemap"))?;
    let mut b = [0u8; 8];
    std::os::unix::fs::FileExt::read_exact_at(&f, &mut b, addr / PAGE_SIZE as u64 * 8)?;
    Ok(u64::from_le_bytes(b) >> 63 == 1)
}

/// `pread` of 4 bytes at `addr` of `/proc/<pid>/mem`: the value, or how it failed.
fn remote_read(mem: &OwnedFd, addr: u64) -> std::result::Result<u32, String> {
    let mut b = [0u8; 4];
    match crate::stress::pread(mem.as_raw_fd(), &mut b, addr as i64) {
        Ok(4) => Ok(u32::from_ne_bytes(b)),
        Ok(n) => Err(format!("a short read of {n} bytes")),
        Err(e) => Err(ename(e)),
    }
}

fn timepage_remote_fault() -> Result<Outcome> {
    ensure_module()?;
    let mut t = Forked::talk(|link| {
        let fd = match open(DEVICE, libc::O_RDONLY) {
            Ok(fd) => fd,
            Err(e) => {
                link.say(&format!("open {DEVICE}: {}", ename(e)));
                return 1;
            }
        };
        match mmap(
            PAGE_SIZE,
            libc::PROT_READ,
            libc::MAP_SHARED,
            fd.as_raw_fd(),
            0,
        ) {
            Ok(a) => link.say(&format!("mapped {a:x}")),
            Err(e) => link.say(&format!("mmap: {}", ename(e))),
        }
        while link.hear().is_some() {}
        0
    })?;
    let pid = t.pid();
    let line = t.recv_timeout(Duration::from_secs(10))?;
    let page = line
        .strip_prefix("mapped ")
        .and_then(|a| u64::from_str_radix(a, 16).ok())
        .with_context(|| format!("target: {line}"))?;
    let maps = parse_maps(&fs::read_to_string(format!("/proc/{pid}/maps"))?)?;
    let (vs, ve) = maps_range(&maps, "[vvar]").context("no [vvar]")?;
    let mut vvar = None;
    for a in (vs..ve).step_by(PAGE_SIZE) {
        if !page_present(pid, a)? {
            vvar = Some(a);
            break;
        }
    }
    let vvar =
        vvar.context("every [vvar] page of the target is populated: nothing to compare with")?;
    ensure!(
        !page_present(pid, page)?,
        "the target's time page is populated already"
    );
    let mem = open(&format!("/proc/{pid}/mem"), libc::O_RDONLY)
        .map_err(|e| anyhow::anyhow!("open /proc/{pid}/mem: {}", ename(e)))?;
    let time = remote_read(&mem, page);
    let kernel = remote_read(&mem, vvar);
    let show = |r: &std::result::Result<u32, String>| match r {
        Ok(v) => format!("ok, {v:#x}"),
        Err(e) => e.clone(),
    };
    println!(
        "pread of /proc/{pid}/mem, neither page populated before: the time page at {page:x}: {}; \
         [vvar] page {} at {vvar:x}: {}; time page populated after: {}",
        show(&time),
        (vvar - vs) / PAGE_SIZE as u64,
        show(&kernel),
        page_present(pid, page)?
    );
    t.finish()?;
    ensure!(
        time.is_err() && time == kernel,
        "a remote fault on the time page is {}, on the kernel's own [vvar] page {} (vvar_fault() \
         refuses FAULT_FLAG_REMOTE)",
        show(&time),
        show(&kernel)
    );
    Ok(Outcome::Pass)
}

// ---------------------------------------------------------------------------------------------
// hardening-stalled-reader
// ---------------------------------------------------------------------------------------------

// userfaultfd(2) ABI (include/uapi/linux/userfaultfd.h).
const UFFD_API: u64 = 0xAA;
const UFFD_EVENT_PAGEFAULT: u8 = 0x12;
const UFFDIO_REGISTER_MODE_MISSING: u64 = 1;

const fn uffdio(nr: u64, size: usize) -> u64 {
    (3 << 30) | ((size as u64) << 16) | (0xAA << 8) | nr
}

#[repr(C)]
#[derive(Default)]
struct UffdioApi {
    api: u64,
    features: u64,
    ioctls: u64,
}

#[repr(C)]
#[derive(Default)]
struct UffdioRange {
    start: u64,
    len: u64,
}

#[repr(C)]
#[derive(Default)]
struct UffdioRegister {
    range: UffdioRange,
    mode: u64,
    ioctls: u64,
}

#[repr(C)]
#[derive(Default)]
struct UffdioZeropage {
    range: UffdioRange,
    mode: u64,
    zeropage: i64,
}

const UFFDIO_API: u64 = uffdio(0x3F, std::mem::size_of::<UffdioApi>());
const UFFDIO_REGISTER: u64 = uffdio(0x00, std::mem::size_of::<UffdioRegister>());
const UFFDIO_ZEROPAGE: u64 = uffdio(0x04, std::mem::size_of::<UffdioZeropage>());

/// `ioctl(fd, cmd, arg)`: Ok or the errno.
fn ioctl_ptr<T>(fd: i32, cmd: u64, arg: &mut T) -> std::result::Result<(), i32> {
    // SAFETY: `arg` is the structure of the size that `cmd` encodes.
    if unsafe { libc::ioctl(fd, cmd as _, arg as *mut T) } != 0 {
        return Err(errno());
    }
    Ok(())
}

/// The longest a stalled read is left unserved when the parent does not ask for it: on a module
/// with the bug the parent itself hangs (a lookup in the directory waits for the removal that
/// waits for the stalled read), and only this ends the stall. Below the kernel's hung-task
/// timeout (120 s).
const STALL_WATCHDOG: Duration = Duration::from_secs(60);

/// In the stalling child: reads report `path` into a userfaultfd-registered buffer (MISSING
/// mode) from a thread, says `stalled <address>` once that read waits on the fault, and serves
/// it (`UFFDIO_ZEROPAGE`, then closes the userfaultfd) when the parent says so or after
/// [`STALL_WATCHDOG`]; says how the read ended (`served ...` or `hung ...`).
fn stall_read(link: &Link, path: &str) -> std::result::Result<(), String> {
    let e = |what: &str| format!("{what}: {}", ename(errno()));
    // SAFETY: plain system call.
    let uffd = unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC | libc::O_NONBLOCK) };
    if uffd < 0 {
        link.say(&format!("skip no userfaultfd: {}", ename(errno())));
        return Ok(());
    }
    let uffd = uffd as i32;
    let mut api = UffdioApi {
        api: UFFD_API,
        ..Default::default()
    };
    ioctl_ptr(uffd, UFFDIO_API, &mut api).map_err(|_| e("UFFDIO_API"))?;
    const LEN: usize = 4 * PAGE_SIZE;
    let buf = mmap(
        LEN,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
        -1,
        0,
    )
    .map_err(|_| e("mmap"))? as usize;
    let mut reg = UffdioRegister {
        range: UffdioRange {
            start: buf as u64,
            len: LEN as u64,
        },
        mode: UFFDIO_REGISTER_MODE_MISSING,
        ..Default::default()
    };
    ioctl_ptr(uffd, UFFDIO_REGISTER, &mut reg).map_err(|_| e("UFFDIO_REGISTER"))?;
    let fd = open(path, libc::O_RDONLY).map_err(|x| format!("open {path}: {}", ename(x)))?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // SAFETY: `buf` is this process's own anonymous mapping of LEN bytes, used by nothing
        // else; the kernel copies into it (and waits on its missing pages).
        let n = unsafe { libc::read(fd.as_raw_fd(), buf as *mut libc::c_void, LEN) };
        let _ = tx.send(if n < 0 { Err(errno()) } else { Ok(n) });
    });
    let mut p = libc::pollfd {
        fd: uffd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    if unsafe { libc::poll(&mut p, 1, 10_000) } != 1 {
        return Err(format!(
            "the read did not fault on its registered buffer within 10 s ({:?})",
            rx.try_recv()
        ));
    }
    let mut msg = [0u8; 32];
    // SAFETY: reading one uffd_msg (32 bytes) into a buffer of that size.
    if unsafe { libc::read(uffd, msg.as_mut_ptr().cast(), msg.len()) } != 32 {
        return Err(e("reading the userfaultfd message"));
    }
    ensure_event(msg[0])?;
    let addr = u64::from_ne_bytes(msg[16..24].try_into().unwrap_or_default());
    link.say(&format!("stalled {addr:x}"));
    let t0 = Instant::now();
    let asked = link.wait(STALL_WATCHDOG);
    let t = Instant::now();
    let mut zp = UffdioZeropage {
        range: UffdioRange {
            start: addr & !(PAGE_SIZE as u64 - 1),
            len: PAGE_SIZE as u64,
        },
        ..Default::default()
    };
    let served = ioctl_ptr(uffd, UFFDIO_ZEROPAGE, &mut zp);
    // SAFETY: closing our userfaultfd: any later fault on the range is an ordinary one.
    unsafe { libc::close(uffd) };
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(r) => link.say(&format!(
            "served {:.1?} after the stall began ({}): the read returned {} {:.0?} after \
             UFFDIO_ZEROPAGE ({})",
            t - t0,
            if asked {
                "asked by the test"
            } else {
                "by the watchdog: the test did not ask"
            },
            shown(r),
            t.elapsed(),
            match served {
                Ok(()) => "ok".to_string(),
                Err(x) => ename(x),
            }
        )),
        Err(_) => link.say("hung: the read did not return within 10 s of the fault being served"),
    }
    Ok(())
}

fn ensure_event(ev: u8) -> std::result::Result<(), String> {
    if ev == UFFD_EVENT_PAGEFAULT {
        Ok(())
    } else {
        Err(format!("userfaultfd event {ev:#x}, not a page fault"))
    }
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v.get(v.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or_default()
}

fn stalled_reader() -> Result<Outcome> {
    // At VP_SCALE=quick (make check's debug and arm64 boots; a fork takes ~200 ms on the debug
    // kernel) 50 processes,
    // and the read stays stalled only while they come and go.
    let processes = crate::tests::scaled(200, 50);
    let stall = Duration::from_secs(crate::tests::scaled(10, 0) as u64);
    ensure_module()?;
    let target = Forked::spawn(String::new)?;
    let tpid = target.pid();
    let path = wait_for_file(tpid)?;
    let mut staller = Forked::talk(move |link| match stall_read(link, &path) {
        Ok(()) => 0,
        Err(e) => {
            link.say(&format!("error {e}"));
            1
        }
    })?;
    let line = staller.recv_timeout(Duration::from_secs(30))?;
    if let Some(why) = line.strip_prefix("skip ") {
        staller.finish()?;
        return Ok(Outcome::Skip(why.to_string()));
    }
    ensure!(line.starts_with("stalled "), "stalling reader: {line}");
    let stall_t0 = Instant::now();
    // Its target exits during the stall: removing its file is what a single ordered worker
    // would wait for.
    target.finish()?;
    // Each wait is timed around the whole check: on a module with the bug, the check itself (a
    // lookup in the directory) blocks until the stall ends.
    let timed = |path: &str, present: bool| {
        let t = Instant::now();
        let r = wait_until(Duration::from_secs(5), path, || {
            Path::new(path).exists() == present
        });
        (
            r.is_ok() && t.elapsed() <= Duration::from_secs(5),
            t.elapsed(),
        )
    };
    let (mut appear, mut vanish, mut problem) = (Vec::new(), Vec::new(), None);
    for i in 0..processes {
        let child = Forked::spawn(String::new)?;
        let (pid, path) = (child.pid(), report_path(child.pid()));
        let (ok, _) = timed(&path, true);
        let seen = child.forked_at.elapsed();
        if !ok {
            problem = Some(format!(
                "process {} of {processes} (pid {pid}): its file did not appear within 5 s \
                 (checking took until {seen:.1?} after its fork)",
                i + 1
            ));
            child.finish()?;
            break;
        }
        appear.push(seen);
        let t = Instant::now();
        child.finish()?;
        let (ok, _) = timed(&path, false);
        if !ok {
            problem = Some(format!(
                "process {} of {processes} (pid {pid}): its file was still there 5 s after its \
                 exit (checking took {:.1?})",
                i + 1,
                t.elapsed()
            ));
            break;
        }
        vanish.push(t.elapsed());
    }
    let churn = stall_t0.elapsed();
    std::thread::sleep(stall.saturating_sub(churn));
    // Best effort: after its watchdog the staller may be gone.
    let _ = staller.send("serve");
    let served = staller.recv_timeout(STALL_WATCHDOG + Duration::from_secs(15));
    let staller_end = staller.finish();
    let (ma, mv) = (median(&mut appear), median(&mut vanish));
    let stats = |v: &[Duration], m: Duration| match v.iter().max() {
        Some(x) => format!("{} (median {m:.1?}, max {x:.1?})", v.len()),
        None => "none".to_string(),
    };
    println!(
        "{line} (the read of pid {tpid}'s report, which exited); meanwhile, of {processes} \
         processes, files appeared after fork: {}; went after the reap: {}; in {churn:.1?}",
        stats(&appear, ma),
        stats(&vanish, mv)
    );
    let served = served?;
    println!("stalled read: {served}");
    staller_end?;
    if let Some(p) = problem {
        bail!("while a reader was stalled: {p}");
    }
    ensure!(served.starts_with("served"), "the stalled read: {served}");
    // Behind the stalled read (the bug this catches) each wait lasts until the stall ends, 5 s
    // and more; unstalled it is a fork's or a reap's publication: 45-110 ms medians on the debug
    // kernel beside another guest (make check), a few ms on the default one.
    let bound = if crate::tests::on_debug_kernel() {
        Duration::from_millis(500)
    } else {
        Duration::from_millis(100)
    };
    ensure!(
        ma <= bound && mv <= bound,
        "median latency over {bound:?}: appear {ma:.1?}, disappear {mv:.1?}"
    );
    Ok(Outcome::Pass)
}

// ---------------------------------------------------------------------------------------------
// Churn helpers (hardening-scan-vs-exit, hardening-insmod-sweep)
// ---------------------------------------------------------------------------------------------

/// A forked process that, while told `go`, forks short-lived children in batches of 4 (each
/// sleeps 0-2 ms and exits 0), reaps them and sleeps `pause`, until told `stop` (it answers
/// `stopped <n>`); end of file ends it. A child that does not exit with status 0 ends it with
/// `error ...`.
fn churner(pause: Duration) -> Result<Forked> {
    Forked::talk(|link| {
        let mut rng = Rng::new(u64::from(std::process::id()));
        loop {
            match link.hear().as_deref() {
                Some("go") => {}
                _ => return 0,
            }
            let mut n = 0u64;
            while !link.pending() {
                let mut batch = [0; 4];
                for slot in &mut batch {
                    let ts = libc::timespec {
                        tv_sec: 0,
                        tv_nsec: rng.below(2_000_000) as libc::c_long,
                    };
                    // SAFETY: this process is single-threaded; the child only sleeps and exits.
                    let pid = unsafe { libc::fork() };
                    if pid == 0 {
                        // SAFETY: as above.
                        unsafe {
                            libc::nanosleep(&ts, std::ptr::null_mut());
                            libc::_exit(0);
                        }
                    }
                    if pid < 0 {
                        link.say(&format!("error fork: {}", ename(errno())));
                        return 1;
                    }
                    *slot = pid;
                }
                for pid in batch {
                    if let Err(e) = crate::proc::reap(pid) {
                        link.say(&format!("error {e}"));
                        return 1;
                    }
                    n += 1;
                }
                std::thread::sleep(pause);
            }
            match link.hear().as_deref() {
                Some("stop") => link.say(&format!("stopped {n}")),
                _ => return 0,
            }
        }
    })
}

/// Tells a churner or the device opener to stop; returns what it said (`stopped <count>`) once it
/// exited with status 0.
fn stop(mut c: Forked) -> Result<String> {
    c.send("stop")?;
    let line = c.recv_timeout(Duration::from_secs(30))?;
    c.finish()?;
    Ok(line)
}

/// Stops a churner; returns how many processes it forked since `go`.
fn stop_churn(c: &mut Forked) -> Result<u64> {
    c.send("stop")?;
    let line = c.recv_timeout(Duration::from_secs(30))?;
    line.strip_prefix("stopped ")
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("churner: {line}"))
}

/// A forked process that opens and closes the device every millisecond until told anything
/// (then says `stopped <opens>`).
fn device_opener() -> Result<Forked> {
    Forked::talk(|link| {
        let mut opens = 0u64;
        while !link.pending() {
            if open(DEVICE, libc::O_RDONLY).is_ok() {
                opens += 1;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        link.say(&format!("stopped {opens}"));
        0
    })
}

/// `delete_module`, retried while the module is busy (up to 30 s); the time it took.
fn unload_retrying() -> Result<Duration> {
    let t = Instant::now();
    loop {
        match unload_module() {
            Ok(_) => return Ok(t.elapsed()),
            Err(e)
                if (e == libc::EAGAIN || e == libc::EBUSY)
                    && t.elapsed() < Duration::from_secs(30) =>
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => bail!("delete_module: {} after {:?}", ename(e), t.elapsed()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// hardening-scan-vs-exit
// ---------------------------------------------------------------------------------------------

fn scan_vs_exit() -> Result<Outcome> {
    ensure_module()?;
    let _reload = Reload;
    let mut churners = [churner(Duration::ZERO)?, churner(Duration::ZERO)?];
    let (cycles, end) = (20, Instant::now() + budget());
    let (mut done, mut forked, mut bad) = (0, 0, Vec::new());
    let mut rng = Rng::new(7);
    for i in 0..cycles {
        if Instant::now() >= end {
            break;
        }
        unload_retrying()?;
        for c in &mut churners {
            c.send("go")?;
        }
        std::thread::sleep(Duration::from_millis(5 + rng.below(20)));
        load_module().map_err(|e| anyhow::anyhow!("cycle {i}: finit_module: {}", ename(e)))?;
        for c in &mut churners {
            forked += stop_churn(c)?;
        }
        registry_drained(Duration::from_secs(30))?;
        let (users, files) = (user_pids()?, reported_pids()?);
        let extra: Vec<_> = files.iter().filter(|p| !users.contains(p)).collect();
        let missing: Vec<_> = users.iter().filter(|p| !files.contains(p)).collect();
        if !extra.is_empty() {
            bad.push(format!(
                "cycle {}: files of dead processes {extra:?}",
                i + 1
            ));
        }
        if !missing.is_empty() {
            bad.push(format!(
                "cycle {}: live processes without a file {missing:?}",
                i + 1
            ));
        }
        done += 1;
    }
    for c in churners {
        c.finish()?;
    }
    println!(
        "{done}/{cycles} insmod cycles with 2 churners ({forked} short-lived processes forked \
         during the loads); after each, files == live processes: {}",
        if bad.is_empty() {
            "yes".to_string()
        } else {
            bad.join("; ")
        }
    );
    ensure!(done > 0, "no cycle ran");
    ensure!(bad.is_empty(), "{}", bad.join("; "));
    Ok(Outcome::Pass)
}

// ---------------------------------------------------------------------------------------------
// Fault injection: configuration, the child-side arming, the sweep driver
// ---------------------------------------------------------------------------------------------

/// The calling thread's fail-nth (`Documentation/fault-injection/fault-injection.rst`).
const FAIL_NTH: &str = "/proc/thread-self/fail-nth";
const FAULT_DIRS: [&str; 2] = [
    "/sys/kernel/debug/failslab",
    "/sys/kernel/debug/fail_page_alloc",
];

/// fail-nth counts every allocation of the task: `ignore-gfp-wait` N (sleeping allocations too),
/// fail_page_alloc also for highmem and order 0; one line per failure (`verbose` 1, the record
/// that [`crate::kernel_log`] pairs with `warn_alloc()`'s report); probability 0 (fail-nth needs
/// none). Not counted, where the kernel has them and the stack filter: the debug kernel's own
/// bookkeeping, which follows allocations and absorbs its failures by design ([`BOOKKEEPING`]):
/// counted, it was every other site of a sweep, each an uneventful load and unload. The previous
/// values are put back when dropped.
struct FaultInjection {
    saved: Vec<(String, String)>,
}

const FAULT_SETTINGS: [(&str, &str); 8] = [
    ("failslab/ignore-gfp-wait", "N"),
    ("failslab/verbose", "1"),
    ("failslab/probability", "0"),
    ("fail_page_alloc/ignore-gfp-wait", "N"),
    ("fail_page_alloc/ignore-gfp-highmem", "N"),
    ("fail_page_alloc/min-order", "0"),
    ("fail_page_alloc/verbose", "1"),
    ("fail_page_alloc/probability", "0"),
];

/// (injector, function): allocations made inside the function are not counted: kmemleak's
/// metadata for each new object (slab; on failure kmemleak takes one from its pool) and KASAN's
/// stack depot (pages; on failure the allocation's stack is not recorded).
const BOOKKEEPING: [(&str, &str); 2] = [
    ("failslab", "__alloc_object"),
    ("fail_page_alloc", "stack_depot_save_flags"),
];

impl FaultInjection {
    /// Configures the injectors; Err(Skip) on a kernel without them.
    fn configure() -> Result<std::result::Result<Self, Outcome>> {
        Self::configure_with(&[])
    }

    /// As `configure`, then sets `extra` (`file`, value) in both injectors' directories.
    fn configure_with(extra: &[(&str, String)]) -> Result<std::result::Result<Self, Outcome>> {
        if !Path::new(FAIL_NTH).exists() || FAULT_DIRS.iter().any(|d| !Path::new(d).exists()) {
            return Ok(Err(Outcome::Skip(
                "no fault injection in this kernel (CONFIG_FAULT_INJECTION, FAILSLAB, \
                 FAIL_PAGE_ALLOC, FAULT_INJECTION_DEBUG_FS: /proc/thread-self/fail-nth, \
                 /sys/kernel/debug/{failslab,fail_page_alloc})"
                    .into(),
            )));
        }
        let mut fi = FaultInjection { saved: Vec::new() };
        for (k, v) in FAULT_SETTINGS {
            let path = format!("/sys/kernel/debug/{k}");
            let old = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
            fs::write(&path, v).with_context(|| format!("writing {v} to {path}"))?;
            fi.saved.push((path, old.trim().to_string()));
        }
        let filter = Path::new("/sys/kernel/debug/failslab/reject-start").exists();
        for (injector, function) in BOOKKEEPING.iter().filter(|_| filter) {
            let Ok((start, end)) = kernel_function_range(function) else {
                continue;
            };
            let dir = format!("/sys/kernel/debug/{injector}");
            for (k, v) in [
                ("reject-start", start.to_string()),
                ("reject-end", end.to_string()),
                ("stacktrace-depth", "32".to_string()),
            ] {
                let path = format!("{dir}/{k}");
                let old = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
                fs::write(&path, &v).with_context(|| format!("writing {v} to {path}"))?;
                fi.saved.push((path, old.trim().to_string()));
            }
        }
        for dir in FAULT_DIRS {
            for (k, v) in extra {
                let path = format!("{dir}/{k}");
                let Ok(old) = fs::read_to_string(&path) else {
                    return Ok(Err(Outcome::Skip(format!(
                        "no {path} in this kernel (CONFIG_FAULT_INJECTION_STACKTRACE_FILTER)"
                    ))));
                };
                fs::write(&path, v).with_context(|| format!("writing {v} to {path}"))?;
                fi.saved.push((path, old.trim().to_string()));
            }
        }
        Ok(Ok(fi))
    }
}

impl Drop for FaultInjection {
    fn drop(&mut self) {
        for (path, old) in self.saved.iter().rev() {
            let _ = fs::write(path, old);
        }
    }
}

/// In a forked child: runs `op` with the `n`-th fault-injection point of this thread failed,
/// then disarms; returns what `op` returned and whether the fault was injected (false: `op`
/// reached fewer than `n` points, which ends a sweep). Everything `op` needs must be prepared
/// (opened, allocated and touched) before: what this process does in between counts too.
fn under_fail_nth<T>(n: u32, op: impl FnOnce() -> T) -> std::result::Result<(T, bool), String> {
    let fd = open(FAIL_NTH, libc::O_RDWR).map_err(|e| format!("open {FAIL_NTH}: {}", ename(e)))?;
    let arm = n.to_string();
    let mut back = [0u8; 16];
    let fd = fd.as_raw_fd();
    // SAFETY: a write of a valid buffer to our descriptor.
    let armed = unsafe { libc::write(fd, arm.as_ptr().cast(), arm.len()) };
    let v = op();
    // The count may run out after `op`, in the read-back itself: after a fork the parent's
    // first write to each of its pages is a copy-on-write fault, whose allocation is failed
    // (EFAULT) if the count is still armed. That failure disarms it, so a retry succeeds.
    let retry = |f: &mut dyn FnMut() -> isize| {
        let mut r = f();
        for _ in 0..2 {
            if r >= 0 || errno() != libc::EFAULT {
                break;
            }
            r = f();
        }
        r
    };
    // SAFETY: a pread into a valid buffer on our descriptor.
    let read = retry(&mut || unsafe { libc::pread(fd, back.as_mut_ptr().cast(), back.len(), 0) });
    // SAFETY: a write of a valid buffer to our descriptor.
    let disarmed = retry(&mut || unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) });
    if armed != arm.len() as isize || read <= 0 || disarmed != 1 {
        return Err(format!(
            "{FAIL_NTH}: arm {armed}, read back {read}, disarm {disarmed}: {}",
            ename(errno())
        ));
    }
    let left: u32 = String::from_utf8_lossy(&back[..read as usize])
        .trim()
        .parse()
        .map_err(|_| format!("{FAIL_NTH} said {:?}", String::from_utf8_lossy(&back)))?;
    Ok((v, left == 0))
}

/// One step of a sweep: whether the fault was injected (false ends the sweep) and what went
/// wrong, if anything.
struct Step {
    injected: bool,
    /// What happened, in a word or two (`fork ENOMEM`, `loaded`): the sweep prints them by N.
    outcome: String,
    failure: Option<String>,
}

/// What a sweep did.
struct Swept {
    passes: u32,
    /// Which N were tried: every `stride`-th from `first` ([`Sample`]), narrowed when the
    /// sweep has fewer sites than the first N of the one asked for (`asked`).
    sample: Sample,
    asked: Sample,
    /// The last N that failed an allocation (with a stride > 1, the sites end below `end`).
    sites: u32,
    /// The N that reached no allocation, which ended the sweep (0 if it did not end so).
    end: u32,
    /// Steps taken per pass (N values tried that failed an allocation).
    tried: u32,
    elapsed: Duration,
    failures: Vec<String>,
    /// Why it stopped before the end, if it did.
    stopped: Option<String>,
    /// The outcomes by N, runs of equal ones merged: (first N, last N, outcome).
    outcomes: Vec<(u32, u32, String)>,
}

impl Swept {
    fn summary(&self, what: &str) -> String {
        let Sample { first, stride } = self.sample;
        let narrowed = if stride == self.asked.stride {
            String::new()
        } else {
            format!(
                " (HARDENING_SWEEP_STRIDE={} FIRST={}: fewer sites than that first one)",
                self.asked.stride, self.asked.first
            )
        };
        format!(
            "{what}: {} allocation sites swept (fail-nth {}{}{}) in {:.1} s ({:.2} s per site); {} failures{}",
            self.tried,
            if stride == 1 && first == 1 {
                format!("1..={}{narrowed}", self.sites)
            } else if self.tried <= 1 {
                format!("{}: 1 in {stride}{narrowed}; all of them in make stress", self.sites)
            } else {
                format!(
                    "{first}, {}, ... {}: 1 in {stride}{narrowed}, HARDENING_SWEEP_STRIDE and \
                     HARDENING_SWEEP_FIRST; all of them in make stress",
                    first + stride,
                    self.sites
                )
            },
            if self.passes > 1 {
                format!(", {} passes", self.passes)
            } else {
                String::new()
            },
            match &self.stopped {
                Some(why) => format!(", then stopped: {why}"),
                None => format!("; fail-nth {} reached no allocation", self.end),
            },
            self.elapsed.as_secs_f64(),
            self.elapsed.as_secs_f64() / f64::from((self.tried * self.passes).max(1)),
            self.failures.len(),
            if self.failures.is_empty() {
                String::new()
            } else {
                format!(
                    ", first: {}",
                    self.failures.iter().take(10).cloned().collect::<Vec<_>>().join("; ")
                )
            }
        ) + &format!("\n{what}, by fail-nth: {}", self.by_n())
    }

    /// `1-73 fork ENOMEM, 74 fork ok (FAIL), ...` (the first 60 runs).
    fn by_n(&self) -> String {
        let mut runs: Vec<String> = self
            .outcomes
            .iter()
            .take(60)
            .map(|(a, b, o)| {
                if a == b {
                    format!("{a} {o}")
                } else {
                    format!("{a}-{b} {o}")
                }
            })
            .collect();
        if self.outcomes.len() > 60 {
            runs.push(format!("... ({} runs in all)", self.outcomes.len()));
        }
        runs.join(", ")
    }

    /// Fails with the summary unless the sweep reached its end without a failure, having failed
    /// at least one allocation (a sweep that reaches none tests nothing).
    fn check(&self, what: &str) -> Result<()> {
        ensure!(
            self.failures.is_empty() && self.stopped.is_none() && self.tried > 0,
            "{}{}",
            self.summary(what),
            if self.tried == 0 && self.stopped.is_none() {
                ": no allocation site was reached, nothing was swept"
            } else {
                ""
            }
        );
        Ok(())
    }
}

/// Which N a sweep tries: `first`, `first + stride`, ... A sample of the sites, for the time
/// budget of `make check`: `HARDENING_SWEEP_STRIDE` (default 1: every site) and
/// `HARDENING_SWEEP_FIRST` (1 ..= stride, default 1; scripts/check derives it from the commit, so
/// that successive runs fail different sites).
#[derive(Clone, Copy)]
struct Sample {
    first: u32,
    stride: u32,
}

impl Sample {
    fn from_env() -> Result<Self> {
        let var = |name: &str| -> Result<Option<u32>> {
            match std::env::var(name) {
                Ok(v) => match v.trim().parse::<u32>() {
                    Ok(n) if n >= 1 => Ok(Some(n)),
                    _ => bail!("{name}={v:?}: want a whole number from 1"),
                },
                Err(_) => Ok(None),
            }
        };
        let stride = var("HARDENING_SWEEP_STRIDE")?.unwrap_or(1);
        let first = var("HARDENING_SWEEP_FIRST")?.unwrap_or(1);
        ensure!(
            first <= stride,
            "HARDENING_SWEEP_FIRST={first} is past HARDENING_SWEEP_STRIDE={stride}"
        );
        Ok(Sample { first, stride })
    }
}

/// The deadline of one sweep: `HARDENING_SWEEP_DEADLINE` seconds, default `default`.
fn sweep_deadline(default: u64) -> Duration {
    Duration::from_secs(
        std::env::var("HARDENING_SWEEP_DEADLINE")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(default),
    )
}

/// Runs `step(n)` for n = 1, 2, ... (or the [`Sample`] of them) until a step reports no injection (every site swept), the
/// deadline passes, a splat appears in the kernel log (checked after each step: the N is then
/// known) or, with `stop_on_failure`, a step fails; `passes` times over (the count of
/// allocations before a given one varies a little from run to run, so one pass can step over a
/// site). The outcomes by N are those of the first pass. `HARDENING_SWEEP_KEEP_GOING=1` (to
/// measure a whole sweep on a module that has the bugs) records splats as failures and goes on.
fn sweep(
    passes: u32,
    deadline: Duration,
    stop_on_failure: bool,
    mut step: impl FnMut(u32) -> Result<Step>,
) -> Result<Swept> {
    let keep_going = std::env::var("HARDENING_SWEEP_KEEP_GOING").as_deref() == Ok("1");
    let mut mark = Mark::now()?;
    let t0 = Instant::now();
    let asked = Sample::from_env()?;
    let mut sample = asked;
    let mut s = Swept {
        passes,
        sample,
        asked,
        sites: 0,
        end: 0,
        tried: 0,
        elapsed: Duration::ZERO,
        failures: Vec::new(),
        stopped: None,
        outcomes: Vec::new(),
    };
    'passes: for pass in 1..=passes {
        let at = |n: u32| {
            if passes > 1 {
                format!("pass {pass}, fail-nth {n}")
            } else {
                format!("fail-nth {n}")
            }
        };
        let (mut n, mut reached) = (sample.first, false);
        loop {
            if t0.elapsed() > deadline {
                s.stopped = Some(format!("the {deadline:?} deadline passed before {}", at(n)));
                break 'passes;
            }
            let st = step(n).with_context(|| at(n))?;
            if pass == 1 {
                let outcome = match st.failure {
                    Some(_) => format!("{} (FAIL)", st.outcome),
                    None => st.outcome,
                };
                match s.outcomes.last_mut() {
                    Some((_, last, o)) if *o == outcome && n > *last => *last = n,
                    _ => s.outcomes.push((n, n, outcome)),
                }
            }
            if let Some(f) = st.failure {
                s.failures.push(format!("{}: {f}", at(n)));
            }
            let splats = mark.splats()?;
            if !splats.is_empty() {
                let what = format!(
                    "a splat in the kernel log after {}: {}",
                    at(n),
                    splats
                        .iter()
                        .take(8)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(" | ")
                );
                if !keep_going {
                    s.stopped = Some(what);
                    break 'passes;
                }
                s.failures.push(what);
                mark = Mark::now()?;
            }
            if !st.injected {
                if !reached && sample.stride > 1 {
                    // Fewer sites than the first N: a smaller stride, with a first that fits it
                    // (down to every site from 1), so that a short sweep still fails some.
                    sample.stride /= 2;
                    sample.first = 1 + (sample.first - 1) % sample.stride;
                    n = sample.first;
                    continue;
                }
                s.end = n;
                break;
            }
            reached = true;
            s.sites = s.sites.max(n);
            if pass == 1 {
                s.tried += 1;
            }
            if stop_on_failure && !keep_going && !s.failures.is_empty() {
                s.stopped = Some(format!("the first failure, at {}", at(n)));
                break 'passes;
            }
            n += sample.stride;
        }
    }
    s.sample = sample;
    s.elapsed = t0.elapsed();
    Ok(s)
}

/// Parses `<key> <value>` fields of a child's answer.
fn field<T: std::str::FromStr>(line: &str, key: &str) -> Result<T> {
    let mut it = line.split_whitespace();
    while let Some(k) = it.next() {
        if k == key {
            if let Some(v) = it.next().and_then(|v| v.parse().ok()) {
                return Ok(v);
            }
        }
    }
    bail!("no {key} in {line:?}")
}

/// Passes of the short sweeps (fork, exit, report read, time page: seconds each).
const PASSES: u32 = 3;

/// Errnos with which an operation may fail cleanly when an allocation is failed.
const CLEAN: [i32; 2] = [libc::ENOMEM, libc::EAGAIN];

// ---------------------------------------------------------------------------------------------
// hardening-fork-fault-injection, hardening-exit-fault-injection
// ---------------------------------------------------------------------------------------------

/// The forking task of [`fork_fault_injection`]: per `N` from the parent, forks with its N-th
/// allocation failed and says `pid <pid or -errno> injected <0|1>`; then `release` lets the child
/// exit, and it says `reaped ok` or how the child ended.
fn forker(link: &mut Link) -> i32 {
    while let Some(n) = link.hear().and_then(|l| l.parse::<u32>().ok()) {
        let (rel_r, rel_w) = match crate::proc::pipe() {
            Ok(p) => p,
            Err(e) => {
                link.say(&format!("error {e:#}"));
                return 1;
            }
        };
        let r = under_fail_nth(n, || {
            // SAFETY: this process is single-threaded; the child only waits for the release
            // (its copy of the write end closed) and exits.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                let mut b = [0u8; 1];
                // SAFETY: as above.
                unsafe {
                    libc::close(rel_w);
                    libc::read(rel_r, b.as_mut_ptr().cast(), 1);
                    libc::_exit(0);
                }
            }
            if pid < 0 {
                -errno()
            } else {
                pid
            }
        });
        // SAFETY: our copy of the read end, not needed any more.
        unsafe { libc::close(rel_r) };
        let (pid, injected) = match r {
            Ok(v) => v,
            Err(e) => {
                link.say(&format!("error {e}"));
                return 1;
            }
        };
        link.say(&format!("pid {pid} injected {}", u8::from(injected)));
        if link.hear().is_none() {
            return 1;
        }
        // SAFETY: closing the write end releases the child.
        unsafe { libc::close(rel_w) };
        if pid > 0 {
            match crate::proc::reap(pid) {
                Ok(()) => link.say("reaped ok"),
                Err(e) => link.say(&format!("reaped {e}")),
            }
        } else {
            link.say("reaped none");
        }
    }
    0
}

fn fork_fault_injection() -> Result<Outcome> {
    ensure_module()?;
    let _fi = match FaultInjection::configure()? {
        Ok(fi) => fi,
        Err(skip) => return Ok(skip),
    };
    let c0 = registry_counters()?;
    let mut f = Forked::talk(forker)?;
    let (mut forks, mut refused) = (0, 0);
    let swept = sweep(PASSES, sweep_deadline(600), false, |n| {
        f.send(&n.to_string())?;
        let line = f.recv_timeout(Duration::from_secs(60))?;
        let (pid, injected): (i32, u8) = (field(&line, "pid")?, field(&line, "injected")?);
        let mut failure = None;
        let path = report_path(pid);
        if pid < 0 {
            refused += 1;
            if !CLEAN.contains(&-pid) {
                failure = Some(format!("fork failed with {}", ename(-pid)));
            }
        } else {
            forks += 1;
            if wait_until(Duration::from_secs(2), &path, || Path::new(&path).exists()).is_err() {
                failure = Some(format!(
                    "fork succeeded (pid {pid}) but its file did not appear within 2 s"
                ));
            }
        }
        f.send("release")?;
        let reaped = f.recv_timeout(Duration::from_secs(30))?;
        if pid > 0 {
            if reaped != "reaped ok" {
                failure.get_or_insert(format!("the child {reaped}"));
            }
            if wait_until(Duration::from_secs(2), &path, || !Path::new(&path).exists()).is_err() {
                failure.get_or_insert(format!("pid {pid}'s file still there 2 s after its exit"));
            }
        }
        Ok(Step {
            injected: injected == 1,
            outcome: if pid < 0 {
                format!("fork {}", ename(-pid))
            } else {
                "fork ok".into()
            },
            failure,
        })
    })?;
    f.finish()?;
    let c1 = registry_counters()?;
    println!(
        "{}; {forks} forks succeeded, {refused} failed cleanly; summary: {}",
        swept.summary("fork with the forking task's N-th allocation failed"),
        registry_deltas(&c0, &c1)
    );
    swept.check("fork sweep")?;
    Ok(Outcome::Pass)
}

/// The registry's event counters' growth, for a sweep's summary line.
fn registry_deltas(c0: &BTreeMap<String, u64>, c1: &BTreeMap<String, u64>) -> String {
    [
        "events",
        "events_applied",
        "added",
        "removed",
        "overflowed_events",
        "add_failures",
    ]
    .iter()
    .map(|k| format!("{k} +{}", counter_delta(c0, c1, k)))
    .collect::<Vec<_>>()
    .join(", ")
}

/// How much the registry counter `k` grew from `c0` to `c1`.
fn counter_delta(c0: &BTreeMap<String, u64>, c1: &BTreeMap<String, u64>, k: &str) -> u64 {
    let get = |c: &BTreeMap<String, u64>| c.get(k).copied().unwrap_or(0);
    get(c1).saturating_sub(get(c0))
}

fn exit_fault_injection() -> Result<Outcome> {
    ensure_module()?;
    let _fi = match FaultInjection::configure()? {
        Ok(fi) => fi,
        Err(skip) => return Ok(skip),
    };
    let c0 = registry_counters()?;
    let swept = sweep(PASSES, sweep_deadline(600), false, |n| {
        let mut c = Forked::talk(move |link| {
            let fd = match open(FAIL_NTH, libc::O_RDWR) {
                Ok(fd) => fd,
                Err(e) => {
                    link.say(&format!("error open {FAIL_NTH}: {}", ename(e)));
                    return 1;
                }
            };
            let arm = n.to_string();
            link.say("ready");
            if link.hear().is_none() {
                return 1;
            }
            // SAFETY: a write of a valid buffer to our descriptor; then this process exits with
            // its N-th allocation (from here on, in the exit path) failed.
            unsafe {
                libc::write(fd.as_raw_fd(), arm.as_ptr().cast(), arm.len());
                libc::_exit(0)
            }
        })?;
        let pid = c.pid();
        ensure!(
            c.recv_timeout(Duration::from_secs(30))? == "ready",
            "child not ready"
        );
        let path = wait_for_file(pid)?;
        c.send("exit")?;
        let t = Instant::now();
        // SAFETY: waiting, without reaping, for our own child to exit; `info` is valid.
        let rc = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        ensure!(rc == 0, "waitid: {}", ename(errno()));
        // The zombie's fail-nth: 0 if the N-th allocation of its exit was failed.
        let left: u32 = fs::read_to_string(format!("/proc/{pid}/fail-nth"))?
            .trim()
            .parse()?;
        let gone = wait_until(Duration::from_secs(2), &path, || !Path::new(&path).exists());
        let mut failure = gone.err().map(|_| {
            format!(
                "pid {pid}'s file still there 2 s after its exit ({:.0?})",
                t.elapsed()
            )
        });
        if let Err(e) = c.finish() {
            failure.get_or_insert(format!("{e:#}"));
        }
        Ok(Step {
            injected: left == 0,
            outcome: "exit".into(),
            failure,
        })
    })?;
    let c1 = registry_counters()?;
    println!(
        "{}; summary: {}",
        swept.summary("exit with the exiting task's N-th allocation failed"),
        registry_deltas(&c0, &c1)
    );
    swept.check("exit sweep")?;
    Ok(Outcome::Pass)
}

// ---------------------------------------------------------------------------------------------
// hardening-report-read-sweep, hardening-timepage-fault-sweep
// ---------------------------------------------------------------------------------------------

fn report_read_sweep() -> Result<Outcome> {
    ensure_module()?;
    let _fi = match FaultInjection::configure()? {
        Ok(fi) => fi,
        Err(skip) => return Ok(skip),
    };
    let idle = Forked::spawn(String::new)?;
    let ipid = idle.pid();
    let path = wait_for_file(ipid)?;
    let (mut whole, mut clean) = (0, 0);
    let swept = sweep(PASSES, sweep_deadline(600), false, |n| {
        let path = path.clone();
        let mut c = Forked::talk(move |link| {
            let Ok(cpath) = CString::new(path) else {
                return 1;
            };
            const CAP: usize = 256 * 1024;
            let mut buf = vec![1u8; CAP]; // written: no page fault during the read
            let r = under_fail_nth(n, || {
                // SAFETY: open of a NUL-terminated path; reads into our own buffer of CAP bytes.
                unsafe {
                    let fd = libc::open(cpath.as_ptr(), libc::O_RDONLY);
                    if fd < 0 {
                        return (errno(), 0, 0);
                    }
                    let (mut len, mut err) = (0usize, 0);
                    while len < CAP {
                        let k = libc::read(fd, buf.as_mut_ptr().add(len).cast(), CAP - len);
                        if k <= 0 {
                            err = if k < 0 { errno() } else { 0 };
                            break;
                        }
                        len += k as usize;
                    }
                    libc::close(fd);
                    (0, err, len)
                }
            });
            match r {
                Ok(((open_e, read_e, len), injected)) => {
                    let text = String::from_utf8_lossy(&buf[..len]).into_owned();
                    link.say(&format!(
                        "open {open_e} read {read_e} injected {}",
                        u8::from(injected)
                    ));
                    link.say(&Seen::Text(text).encode());
                    0
                }
                Err(e) => {
                    link.say(&format!("error {e}"));
                    1
                }
            }
        })?;
        let line = c.recv_timeout(Duration::from_secs(60))?;
        let (open_e, read_e, injected): (i32, i32, u8) = (
            field(&line, "open")?,
            field(&line, "read")?,
            field(&line, "injected")?,
        );
        let Seen::Text(text) = Seen::decode(&c.recv_timeout(Duration::from_secs(30))?)? else {
            bail!("no text");
        };
        c.finish()?;
        let outcome = match (open_e, read_e) {
            (0, 0) => "whole read".to_string(),
            (0, e) => format!("read {}", ename(e)),
            (e, _) => format!("open {}", ename(e)),
        };
        let failure = if open_e != 0 {
            clean += 1;
            (!CLEAN.contains(&open_e)).then(|| format!("open failed with {}", ename(open_e)))
        } else if read_e != 0 {
            clean += 1;
            match (CLEAN.contains(&read_e), text.len()) {
                (true, 0) => None,
                (true, len) => Some(format!("partial: {len} bytes, then {}", ename(read_e))),
                (false, len) => Some(format!(
                    "read failed with {} after {len} bytes",
                    ename(read_e)
                )),
            }
        } else {
            whole += 1;
            let r = Report::parse(&text)
                .map_err(|e| format!("{e:#}"))
                .and_then(|r| {
                    if r.pid != ipid {
                        return Err(format!("names pid {}", r.pid));
                    }
                    crate::proc::check_against_proc(&r).map_err(|e| format!("{e:#}"))
                });
            r.err()
                .map(|e| format!("{} bytes that are not its report: {e}", text.len()))
        };
        Ok(Step {
            injected: injected == 1,
            outcome,
            failure,
        })
    })?;
    idle.finish()?;
    println!(
        "{}; {whole} whole reports (checked against /proc/{ipid}/maps and auxv), {clean} clean errnos",
        swept.summary("open + read of a report with the reader's N-th allocation failed")
    );
    swept.check("report read sweep")?;
    Ok(Outcome::Pass)
}

fn timepage_fault_sweep() -> Result<Outcome> {
    timepage_sweep(false)
}

/// The same from a time namespace of the child's own: the fault also makes the namespace's page.
fn timepage_timens_fault_sweep() -> Result<Outcome> {
    timepage_sweep(true)
}

fn timepage_sweep(timens: bool) -> Result<Outcome> {
    ensure_module()?;
    let _fi = match FaultInjection::configure()? {
        Ok(fi) => fi,
        Err(skip) => return Ok(skip),
    };
    let (mut mapped, mut refused) = (0, 0);
    let swept = sweep(PASSES, sweep_deadline(600), false, |n| {
        let mut c = Forked::talk(move |link| {
            if timens {
                // Offsets of its own per step: every step's fault makes a namespace page.
                let offsets = format!("monotonic {} 0\n", 1000 + n);
                if let Err(e) = crate::proc::enter_new_time_namespace(&offsets) {
                    link.say(&format!("error {e:#}"));
                    return 1;
                }
            }
            let fd = match open(DEVICE, libc::O_RDONLY) {
                Ok(fd) => fd,
                Err(e) => {
                    link.say(&format!("error open {DEVICE}: {}", ename(e)));
                    return 1;
                }
            };
            let r = under_fail_nth(n, || {
                match mmap(
                    PAGE_SIZE,
                    libc::PROT_READ,
                    libc::MAP_SHARED,
                    fd.as_raw_fd(),
                    0,
                ) {
                    // The first touch faults the page in (a SIGBUS would end this child).
                    Ok(a) => (0, peek_u32(a), a),
                    Err(e) => (e, 0, 0),
                }
            });
            match r {
                Ok(((e, magic, a), injected)) => {
                    if a != 0 {
                        munmap(a, PAGE_SIZE);
                    }
                    link.say(&format!(
                        "mmap {e} magic {magic} injected {}",
                        u8::from(injected)
                    ));
                    0
                }
                Err(e) => {
                    link.say(&format!("error {e}"));
                    1
                }
            }
        })?;
        let answer = c.recv_timeout(Duration::from_secs(60));
        let end = c.finish();
        let line = match (answer, end) {
            (Ok(l), Ok(())) => l,
            // A child killed by the fault (SIGBUS) is a failure of this site, not of the sweep.
            (Err(e), _) | (_, Err(e)) => {
                return Ok(Step {
                    injected: true,
                    outcome: "child died".into(),
                    failure: Some(format!("{e:#}")),
                })
            }
        };
        let (e, magic, injected): (i32, u32, u8) = (
            field(&line, "mmap")?,
            field(&line, "magic")?,
            field(&line, "injected")?,
        );
        let failure = if e != 0 {
            refused += 1;
            (!CLEAN.contains(&e)).then(|| format!("mmap failed with {}", ename(e)))
        } else {
            mapped += 1;
            (magic != MAGIC)
                .then(|| format!("first read of the page: {magic:#x}, not the magic {MAGIC:#x}"))
        };
        Ok(Step {
            injected: injected == 1,
            outcome: if e == 0 {
                "mapped, read".into()
            } else {
                format!("mmap {}", ename(e))
            },
            failure,
        })
    })?;
    println!(
        "{}; {mapped} mappings read the magic, {refused} mmaps failed cleanly",
        swept.summary(if timens {
            "mmap + first touch of the time page in a time namespace with the N-th allocation \
             failed"
        } else {
            "mmap + first touch of the time page with the N-th allocation failed"
        })
    );
    swept.check("time page sweep")?;
    Ok(Outcome::Pass)
}

// ---------------------------------------------------------------------------------------------
// hardening-insmod-sweep
// ---------------------------------------------------------------------------------------------

/// What a failed (or undone) load left behind: the device, the directory, the module.
fn leftovers() -> Vec<&'static str> {
    let modules = fs::read_to_string("/proc/modules").unwrap_or_default();
    let mut left = Vec::new();
    if Path::new(DEVICE).exists() {
        left.push(DEVICE);
    }
    if Path::new(DEBUGFS_DIR).exists() {
        left.push(DEBUGFS_DIR);
    }
    if modules.lines().any(|l| l.starts_with("vdso_probe ")) {
        left.push("vdso_probe in /proc/modules");
    }
    left
}

/// Keeps KUnit from running the module's suites at load (`kunit.filter_glob` matching none)
/// until dropped. With the suites run at load, in the loading task, the sweep fails their own
/// allocations too and a case fails (`not ok`, a splat): a finding about the module's KUnit
/// tests, which `kunit-module-suites` covers, not about its init and teardown.
struct KunitOffAtLoad(Option<String>);

const KUNIT_GLOB: &str = "/sys/module/kunit/parameters/filter_glob";

impl KunitOffAtLoad {
    fn new() -> Result<Self> {
        let Ok(old) = fs::read_to_string(KUNIT_GLOB) else {
            return Ok(Self(None));
        };
        fs::write(KUNIT_GLOB, "none_during_the_insmod_sweep")
            .with_context(|| format!("writing {KUNIT_GLOB}"))?;
        Ok(Self(Some(old.trim().to_string())))
    }
}

impl Drop for KunitOffAtLoad {
    fn drop(&mut self) {
        if let Some(old) = &self.0 {
            // Unset reads "(null)", which means every suite ("*.*").
            let old = if old == "(null)" { "*.*" } else { old.as_str() };
            let _ = fs::write(KUNIT_GLOB, old);
        }
    }
}

/// `[start, end)` of the kernel function `name`, from `/proc/kallsyms` (root sees addresses).
fn kernel_function_range(name: &str) -> Result<(u64, u64)> {
    let text = fs::read_to_string("/proc/kallsyms").context("reading /proc/kallsyms")?;
    let mut addrs: Vec<u64> = Vec::new();
    let mut start = None;
    for l in text.lines() {
        let mut f = l.split_whitespace();
        let (Some(a), Some(_), Some(sym)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let Ok(a) = u64::from_str_radix(a, 16) else {
            continue;
        };
        if sym == name && f.next().is_none() {
            start = Some(a);
        }
        addrs.push(a);
    }
    let start = start.with_context(|| format!("{name} is not in /proc/kallsyms"))?;
    ensure!(start != 0, "/proc/kallsyms hides addresses (kptr_restrict)");
    let end = addrs
        .into_iter()
        .filter(|&a| a > start)
        .min()
        .with_context(|| format!("no symbol after {name}"))?;
    Ok((start, end))
}

/// Every allocation inside `do_init_module()` fails in turn: fail-nth counts only calls whose
/// stack has a frame in that function (`require-start`/`require-end`, `stacktrace-depth` 32:
/// the deepest the filter walks), which is the module's init and the loader's work around it.
fn init_sweep() -> Result<Outcome> {
    let (start, end) = kernel_function_range("do_init_module")?;
    println!("do_init_module: {start:#x}-{end:#x}");
    let extra = [
        ("require-start", start.to_string()),
        ("require-end", end.to_string()),
        ("stacktrace-depth", "32".to_string()),
    ];
    let fi = match FaultInjection::configure_with(&extra)? {
        Ok(fi) => fi,
        Err(skip) => return Ok(skip),
    };
    load_sweep(
        fi,
        "finit_module with the N-th allocation inside do_init_module failed",
        600,
    )
}

/// `echo on > attribution` with the writer's N-th allocation failed, N = 1, 2, ...: the allocation
/// of the probes and their rings, the ftrace filter and registration, the tracepoint probe.
/// Each either turns attribution on (and `off` then turns it off again) or fails with the
/// allocation's errno and leaves it off; no splat, no leak (kmemleak at the end of the run).
/// The insmod sweeps load with `attribution=0`: this covers the start they leave out, at a
/// fraction of their cost (an ftrace registration and its RCU-tasks wait at every load).
/// The `lost:` of the attribution file (reading it drains the rings).
fn attribution_lost() -> Result<u64> {
    let text = fs::read_to_string(crate::attribution::SWITCH)?;
    let kv = vdso_probe::report::key_values(&text)?;
    kv.iter()
        .find(|(k, _)| *k == "lost")
        .and_then(|(_, v)| v.parse().ok())
        .context("no lost: line in the attribution file")
}

/// A process's 50 identical calls wait in a ring as one merged event; the drain that counts
/// them (a read of the attribution file, open and read once before, so that the read allocates
/// nothing but the drain's counters) has its first allocation failed: `lost` grows by the 50
/// calls dropped with the process's counters, and the process has none counted.
fn attribution_lost_calls() -> Result<Outcome> {
    use crate::attribution::SWITCH;
    use std::os::unix::fs::FileExt;
    const CALLS: u64 = 50;
    ensure_module()?;
    let _fi = match FaultInjection::configure()? {
        Ok(fi) => fi,
        Err(skip) => return Ok(skip),
    };
    fs::write(SWITCH, "on")?;
    let file = fs::File::open(SWITCH)?;
    let mut buf = [0u8; 4096];
    // Drains everything waiting, and allocates the file's seq_file buffer.
    file.read_at(&mut buf, 0)?;
    let before = attribution_lost()?;
    let mut child = Forked::talk(|link| {
        // One CPU, so one ring and one merged event: a migration in the loop split the calls
        // into two events, the first lost and the second counted (21 + 29, a debug boot of
        // make check).
        if let Err(e) = vdso_probe::bench::pin_to_cpu(0) {
            link.say(&format!("pinning: {e}"));
            return 1;
        }
        for _ in 0..CALLS {
            let mut ts = vdso_probe::vdso::zero_timespec();
            std::hint::black_box(vdso_probe::vdso::raw_syscall_clock_gettime(
                libc::CLOCK_TAI,
                &mut ts,
            ));
        }
        link.say("done");
        while link.hear().is_some() {}
        0
    })?;
    let said = child.recv()?;
    ensure!(said == "done", "child did not count: {said}");
    let (read, injected) =
        under_fail_nth(1, || file.read_at(&mut buf, 0)).map_err(|e| anyhow::anyhow!(e))?;
    let lost = attribution_lost()? - before;
    let tai = crate::proc::report_of(child.pid())?
        .calls
        .direct
        .get("clock_gettime.TAI")
        .copied()
        .unwrap_or(0);
    child.finish()?;
    println!(
        "the drain's first allocation failed (injected: {injected}, the read: {}): lost +{lost}, \
         the process has {tai} counted",
        match &read {
            Ok(n) => format!("{n} bytes"),
            Err(e) => e.to_string(),
        }
    );
    ensure!(injected, "no allocation in the drain");
    ensure!(
        lost == CALLS && tai == 0,
        "want the {CALLS} calls of the merged event lost and none counted"
    );
    Ok(Outcome::Pass)
}

fn attribution_on_sweep() -> Result<Outcome> {
    use crate::attribution::{attribution_state as state, SWITCH};
    ensure_module()?;
    let _fi = match FaultInjection::configure()? {
        Ok(fi) => fi,
        Err(skip) => return Ok(skip),
    };
    fs::write(SWITCH, "off")?;
    // One pass: each site costs an ftrace registration and its RCU-tasks wait, ~0.5 s under
    // KASAN and TCG (three passes of the ~200 sites took 290 s).
    let swept = sweep(1, sweep_deadline(600), false, |n| {
        let (r, injected) =
            under_fail_nth(n, || fs::write(SWITCH, "on")).map_err(|e| anyhow::anyhow!(e))?;
        let now = state()?;
        let (outcome, failure) = match &r {
            Ok(()) => (
                "on".to_string(),
                (now != "on").then(|| format!("the write succeeded, the state is {now}")),
            ),
            Err(e) => (
                format!("write {}", ename(e.raw_os_error().unwrap_or(0))),
                (now != "off").then(|| format!("the write failed ({e}), the state is {now}")),
            ),
        };
        fs::write(SWITCH, "off")?;
        Ok(Step {
            injected,
            outcome,
            failure,
        })
    });
    let swept = swept?;
    println!(
        "{}",
        swept.summary("echo on > attribution with its N-th allocation failed")
    );
    fs::write(SWITCH, "on")?;
    swept.check("attribution on sweep")?;
    Ok(Outcome::Pass)
}

fn insmod_sweep() -> Result<Outcome> {
    let fi = match FaultInjection::configure()? {
        Ok(fi) => fi,
        Err(skip) => return Ok(skip),
    };
    load_sweep(fi, "finit_module with its N-th allocation failed", 1800)
}

/// The insmod sweeps: `finit_module` with the N-th injection point failed, N = 1, 2, ... (what
/// `fi` lets fail-nth count), amid forks and device opens.
fn load_sweep(_fi: FaultInjection, what: &str, deadline: u64) -> Result<Outcome> {
    let _reload = Reload;
    let _kunit = KunitOffAtLoad::new()?;
    if module_loaded() {
        unload_retrying()?;
    }
    // Paced, so that the two vCPUs are not all theirs (a fork takes ~200 ms under KASAN + TCG,
    // and the churner forks 4 at a time): a pause of 1 s keeps forks and exits under way during
    // about half of the loads, and the ~300 loads take ~110 s instead of ~150 s at 50 ms.
    let mut churn = churner(Duration::from_millis(1000))?;
    churn.send("go")?;
    let opener = device_opener()?;
    let (mut failed, mut loaded) = (std::collections::BTreeMap::new(), 0);
    let ko = open(KO, libc::O_RDONLY).map_err(|e| anyhow::anyhow!("open {KO}: {}", ename(e)))?;
    let swept = sweep(1, sweep_deadline(deadline), true, |n| {
        // In this thread: fail-nth counts only its allocations, and between arming and
        // disarming it makes none but the system call's.
        let (e, injected) = under_fail_nth(n, || {
            // SAFETY: a valid descriptor and a NUL-terminated parameter string.
            // With attribution off: its start is swept by hardening-attribution-on-sweep.
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_finit_module,
                    ko.as_raw_fd(),
                    c"attribution=0".as_ptr(),
                    0,
                )
            };
            if rc == 0 {
                0
            } else {
                errno()
            }
        })
        .map_err(|e| anyhow::anyhow!(e))?;
        let mut failure = None;
        if e == 0 {
            loaded += 1;
            if let Err(err) = unload_retrying() {
                failure = Some(format!("loaded despite the failure, then {err:#}"));
            }
        } else {
            *failed.entry(ename(e)).or_insert(0u32) += 1;
        }
        let left = leftovers();
        if !left.is_empty() {
            failure.get_or_insert(format!(
                "{} left behind by a load that {}",
                left.join(", "),
                if e == 0 {
                    "succeeded and was unloaded".to_string()
                } else {
                    format!("failed with {}", ename(e))
                }
            ));
        }
        Ok(Step {
            injected,
            outcome: if e == 0 {
                "loaded".into()
            } else {
                format!("finit {}", ename(e))
            },
            failure,
        })
    });
    // The helpers' ends are reported even when the sweep itself broke off.
    let (churned, opened) = (stop(churn), stop(opener));
    let shown = |r: &Result<String>| match r {
        Ok(l) => l.clone(),
        Err(e) => format!("failed: {e:#}"),
    };
    let swept = swept?;
    println!(
        "{}; failed loads by errno {failed:?}, {loaded} loads succeeded anyway (the failure was \
         absorbed) and were unloaded; meanwhile the churner {}, the device opener {}",
        swept.summary(what),
        shown(&churned),
        shown(&opened)
    );
    swept.check("insmod sweep")?;
    churned.context("the churner")?;
    opened.context("the device opener")?;
    // Afterwards the module loads and unloads normally.
    load_module().map_err(|e| anyhow::anyhow!("finit_module after the sweep: {}", ename(e)))?;
    ensure!(
        Path::new(DEVICE).exists() && Path::new(&report_path(1)).exists(),
        "after the sweep the module loads but {DEVICE} or init's report is missing"
    );
    unload_retrying()?;
    let left = leftovers();
    ensure!(
        left.is_empty(),
        "rmmod after the sweep left {}",
        left.join(", ")
    );
    load_module().map_err(|e| anyhow::anyhow!("finit_module: {}", ename(e)))?;
    Ok(Outcome::Pass)
}
