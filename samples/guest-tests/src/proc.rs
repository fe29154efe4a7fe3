// SPDX-License-Identifier: GPL-2.0
//! Process plumbing for the guest tests: the module, target processes, `/proc` reads.

use anyhow::{bail, ensure, Context, Result};
use std::{
    fs,
    io::{BufRead, BufReader, Write},
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};
use vdso_probe::report::{self, Report, DEBUGFS_DIR};

/// Loads `/lib/vdso_probe.ko` unless it is loaded already.
pub fn ensure_module() -> Result<()> {
    if Path::new(DEBUGFS_DIR).exists() {
        return Ok(());
    }
    run("insmod", &[KO])
}

/// The module's name, and where the guest image keeps it (scripts/vm).
pub const MODULE: &str = "vdso_probe";
pub const KO: &str = "/lib/vdso_probe.ko";

/// Whether the module is loaded (`/sys/module/vdso_probe` exists).
pub fn module_loaded() -> bool {
    Path::new(&format!("/sys/module/{MODULE}")).exists()
}

/// Loads the module when dropped if it is not loaded (a failed test must not leave it out).
pub struct Reload;

impl Drop for Reload {
    fn drop(&mut self) {
        if !module_loaded() {
            let _ = run("insmod", &[KO]);
        }
    }
}

/// Runs a command and fails with its output unless it succeeds.
pub fn run(cmd: &str, args: &[&str]) -> Result<()> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .with_context(|| format!("running {cmd}"))?;
    if !out.status.success() {
        bail!(
            "{cmd} {args:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Path of a process's report.
pub fn report_path(pid: i32) -> String {
    format!("{DEBUGFS_DIR}/{pid}")
}

/// Polls until `cond` holds; returns how long it took, or fails after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) -> Result<Duration> {
    let t0 = Instant::now();
    loop {
        if cond() {
            return Ok(t0.elapsed());
        }
        if t0.elapsed() > limit {
            bail!("timed out after {limit:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// Waits for the report file of `pid` to exist, then reads it.
pub fn report_of(pid: i32) -> Result<Report> {
    wait_until(Duration::from_secs(5), &report_path(pid), || {
        Path::new(&report_path(pid)).exists()
    })?;
    Report::read(pid)
}

/// Fails with every disagreement between a report and `/proc/<pid>/{maps,auxv}`.
pub fn check_against_proc(r: &Report) -> Result<()> {
    let bad = report::cross_check(r)?;
    if !bad.is_empty() {
        bail!("pid {} ({}): {}", r.pid, r.comm, bad.join("; "));
    }
    Ok(())
}

/// A target process that lives until dropped (its stdin is closed, then it is reaped).
pub struct Target {
    child: Child,
    /// The first line it printed, if asked for.
    pub line: String,
}

impl Target {
    /// Starts `cmd` with a pipe on stdin; waits for a first line on stdout when `read_line`.
    pub fn spawn(cmd: &str, args: &[&str], read_line: bool) -> Result<Self> {
        let mut child = Command::new(cmd)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {cmd}"))?;
        let mut line = String::new();
        if read_line {
            let out = child.stdout.take().context("no stdout")?;
            BufReader::new(out).read_line(&mut line)?;
        }
        Ok(Target {
            child,
            line: line.trim().to_string(),
        })
    }

    /// Its pid.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = stdin.write_all(b"\n");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A forked copy of this (single-threaded) test program. [`Forked::spawn`]: the child runs `f`,
/// hands its one-line result back and blocks until the parent drops (or [`Forked::finish`]es)
/// the handle. [`Forked::talk`]: the child converses with the parent over a [`Link`] (lines
/// both ways) and exits with what its function returns.
pub struct Forked {
    pid: i32,
    /// Parent to child; closing it releases the child (end of file on its side).
    tx: Option<OwnedFd>,
    /// Child to parent (None once [`Forked::spawn`] has read its line).
    rx: Option<BufReader<fs::File>>,
    reaped: bool,
    /// When fork returned in the parent.
    pub forked_at: Instant,
    /// What `f` returned ([`Forked::spawn`] only).
    pub line: String,
}

/// The child's end of a [`Forked::talk`] conversation: raw pipe descriptors.
#[derive(Clone)]
pub struct Link {
    tx: i32,
    rx: i32,
}

impl Link {
    /// Sends one line to the parent (best effort: a parent that is gone cannot be told).
    pub fn say(&self, line: &str) {
        let line = format!("{line}\n");
        let mut b = line.as_bytes();
        while !b.is_empty() {
            // SAFETY: `b` is a valid buffer; `tx` is this process's pipe end.
            let n = unsafe { libc::write(self.tx, b.as_ptr().cast(), b.len()) };
            if n <= 0 {
                return;
            }
            b = &b[n as usize..];
        }
    }

    /// The parent's next line (without the newline); None at end of file (the parent released
    /// the child).
    pub fn hear(&self) -> Option<String> {
        let mut line = Vec::new();
        loop {
            let mut c = 0u8;
            // SAFETY: reading one byte into a valid byte; `rx` is this process's pipe end.
            let n = unsafe { libc::read(self.rx, (&mut c as *mut u8).cast(), 1) };
            match n {
                1 if c == b'\n' => return Some(String::from_utf8_lossy(&line).into_owned()),
                1 => line.push(c),
                _ if n < 0 && errno() == libc::EINTR => {}
                _ => return None,
            }
        }
    }

    /// Whether the parent has sent something (or released the child), without waiting.
    pub fn pending(&self) -> bool {
        self.wait(Duration::ZERO)
    }

    /// Whether the parent sends something (or releases the child) within `timeout`.
    pub fn wait(&self, timeout: Duration) -> bool {
        readable(self.rx, timeout)
    }
}

/// `clock_gettime(clock)` in ns through libc (the vDSO where it can); for the guest tests' own
/// clock readings, in tight loops too.
#[inline(always)]
pub fn gettime(clock: libc::clockid_t) -> i128 {
    let mut ts = vdso_probe::vdso::zero_timespec();
    // SAFETY: `ts` is a valid, exclusively borrowed timespec; the clock ids used are valid.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    vdso_probe::vdso::timespec_ns(&ts)
}

/// `vdso_probe::ptrace::run(50)` (the vDSO's clock_gettime system calls, counted by ptrace)
/// with the clock mode `mode()` read before and after it: measured again (up to 3 times) if the
/// clocksource watchdog switched clocksource meanwhile.
pub fn stable_count<M: PartialEq>(mode: impl Fn() -> M) -> Result<(M, vdso_probe::ptrace::Counts)> {
    let mut tries = 0;
    loop {
        let before = mode();
        let calls = vdso_probe::ptrace::run(50)?;
        let after = mode();
        tries += 1;
        if before == after || tries == 3 {
            return Ok((after, calls));
        }
        println!("the clock mode changed during the ptrace count: counting again");
    }
}

/// Creates a time namespace for this process's future children (`unshare(CLONE_NEWTIME)`: the
/// caller itself stays where it is) and sets its offsets: `/proc/self/timens_offsets` lines,
/// e.g. `"monotonic 86400 0\nboottime 172800 0\n"` (before a task enters it, which freezes
/// them). The caller must be single-threaded.
pub fn new_time_namespace(offsets: &str) -> Result<()> {
    // SAFETY: a plain system call; the test program is single-threaded.
    if unsafe { libc::unshare(libc::CLONE_NEWTIME) } != 0 {
        bail!(
            "unshare(CLONE_NEWTIME): {}",
            std::io::Error::last_os_error()
        );
    }
    fs::write("/proc/self/timens_offsets", offsets).context("writing timens_offsets")
}

/// [`new_time_namespace`], then enters it (`setns` on `/proc/self/ns/time_for_children`): the
/// caller itself is in the namespace from now on, and its `[vvar]` is zapped (refaulted on the
/// next read of the time).
pub fn enter_new_time_namespace(offsets: &str) -> Result<()> {
    new_time_namespace(offsets)?;
    let ns = fs::File::open("/proc/self/ns/time_for_children")?;
    // SAFETY: a valid descriptor of a time namespace; the caller is single-threaded.
    if unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&ns), libc::CLONE_NEWTIME) } != 0 {
        bail!("setns(CLONE_NEWTIME): {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// `/proc/<pid>/timens_offsets` (`pid` may be `self`), the offsets of the time namespace of
/// the process's children: clock name (`monotonic`, `boottime`) to (seconds, nanoseconds).
pub fn timens_offsets(pid: &str) -> Result<std::collections::BTreeMap<String, (i64, i64)>> {
    let path = format!("/proc/{pid}/timens_offsets");
    let text = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let [clock, sec, nsec] = f[..] else {
                bail!("{path}: not `clock sec nsec`: {l:?}");
            };
            let num = |v: &str| v.parse::<i64>().with_context(|| format!("{path}: {l:?}"));
            Ok((clock.to_string(), (num(sec)?, num(nsec)?)))
        })
        .collect()
}

/// `Some(skip)` unless this is the benchmark boot (`VP_BENCH=1` on the kernel command line:
/// `make bench`), where the bench-* tests run.
pub fn unless_bench_boot() -> Option<crate::Outcome> {
    (std::env::var("VP_BENCH").as_deref() != Ok("1"))
        .then(|| crate::Outcome::Skip("benchmarks run on the boot with VP_BENCH=1".into()))
}

/// The calling thread's errno.
pub fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// `ok` for 0, else the errno's name (`EACCES`): for comparing outcomes.
pub fn ename_or_ok(e: i32) -> String {
    if e == 0 {
        "ok".into()
    } else {
        ename(e)
    }
}

/// `EPERM (Operation not permitted)`, or `success` for 0: for messages.
pub fn errno_name(e: i32) -> String {
    if e == 0 {
        return "success".into();
    }
    format!("{} ({})", ename(e), std::io::Error::from_raw_os_error(e))
}

/// The symbolic name of an errno (`EINVAL`), or `errno N`.
pub fn ename(e: i32) -> String {
    let name = match e {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::ENXIO => "ENXIO",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::ENODEV => "ENODEV",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::ENOTTY => "ENOTTY",
        libc::ESPIPE => "ESPIPE",
        libc::EROFS => "EROFS",
        libc::ENOSYS => "ENOSYS",
        libc::EOVERFLOW => "EOVERFLOW",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::ESTALE => "ESTALE",
        libc::E2BIG => "E2BIG",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::ECHILD => "ECHILD",
        _ => return format!("errno {e}"),
    };
    name.to_string()
}

/// Whether `fd` is readable (data or end of file) within `timeout`.
fn readable(fd: i32, timeout: Duration) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, ms) > 0 }
}

/// A pipe (read end, write end), both close-on-exec.
pub fn pipe() -> Result<(i32, i32)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        bail!("pipe: {}", std::io::Error::last_os_error());
    }
    Ok((fds[0], fds[1]))
}

impl Forked {
    /// Forks; the child runs `f`, reports its result and waits to be released.
    pub fn spawn(f: impl FnOnce() -> String) -> Result<Self> {
        let mut child = Self::talk(|link| {
            link.say(&f());
            while link.hear().is_some() {}
            0
        })?;
        let line = child.recv()?;
        child.rx = None;
        child.line = line;
        Ok(child)
    }

    /// Forks; the child runs `f` with its end of the conversation and exits with what `f`
    /// returns.
    pub fn talk(f: impl FnOnce(&mut Link) -> i32) -> Result<Self> {
        let (up_r, up_w) = pipe()?;
        let (down_r, down_w) = pipe()?;
        // SAFETY: the test program is single-threaded, so the child may run arbitrary code.
        let pid = unsafe { libc::fork() };
        let forked_at = Instant::now();
        if pid < 0 {
            bail!("fork: {}", std::io::Error::last_os_error());
        }
        if pid == 0 {
            // Keep only our two pipe ends: an inherited pipe end of a sibling would keep that
            // sibling from ever seeing end of file.
            let (lo, hi) = (up_w.min(down_r) as u32, up_w.max(down_r) as u32);
            // SAFETY: closing descriptor ranges of this (child) process; none is in use.
            unsafe {
                libc::syscall(libc::SYS_close_range, 3u32, lo - 1, 0u32);
                libc::syscall(libc::SYS_close_range, lo + 1, hi - 1, 0u32);
                libc::syscall(libc::SYS_close_range, hi + 1, u32::MAX, 0u32);
            }
            let code = f(&mut Link {
                tx: up_w,
                rx: down_r,
            });
            // SAFETY: `_exit` never returns; nothing of this copy of the program is needed.
            unsafe { libc::_exit(code) };
        }
        // SAFETY: the child's ends, which this process also owns, closed once; ours handed to
        // owning types exactly once.
        let (tx, rx) = unsafe {
            libc::close(up_w);
            libc::close(down_r);
            (OwnedFd::from_raw_fd(down_w), fs::File::from_raw_fd(up_r))
        };
        Ok(Forked {
            pid,
            tx: Some(tx),
            rx: Some(BufReader::new(rx)),
            reaped: false,
            forked_at,
            line: String::new(),
        })
    }

    /// The child's pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The child's next line; fails at end of file (the child ended: how is in the error).
    pub fn recv(&mut self) -> Result<String> {
        let rx = self.rx.as_mut().context("no conversation")?;
        let mut line = String::new();
        if rx.read_line(&mut line)? == 0 {
            let how = match self.wait_for(Duration::from_secs(5)) {
                Ok(()) => "exited with status 0".to_string(),
                Err(e) => format!("{e:#}"),
            };
            bail!("child {} ended the conversation: {how}", self.pid);
        }
        Ok(line.trim_end_matches('\n').to_string())
    }

    /// [`Forked::recv`], failing if no line comes within `timeout`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<String> {
        let rx = self.rx.as_ref().context("no conversation")?;
        if rx.buffer().is_empty() && !readable(rx.get_ref().as_raw_fd(), timeout) {
            bail!("child {} said nothing within {timeout:?}", self.pid);
        }
        self.recv()
    }

    /// Whether a line from the child is waiting (or its end of file): a [`Forked::recv`] would
    /// not block.
    pub fn ready(&self) -> Result<bool> {
        let rx = self.rx.as_ref().context("no conversation")?;
        Ok(!rx.buffer().is_empty() || readable(rx.get_ref().as_raw_fd(), Duration::ZERO))
    }

    /// Sends one line to the child.
    pub fn send(&mut self, line: &str) -> Result<()> {
        let tx = self.tx.as_ref().context("child already released")?;
        let mut f = fs::File::from(tx.try_clone()?);
        f.write_all(format!("{line}\n").as_bytes())
            .with_context(|| format!("telling child {}", self.pid))
    }

    /// Releases the child (end of file on its side) and waits for it: Ok if it exited with
    /// status 0; its exit status or the signal that killed it otherwise, or that it did not exit
    /// within 10 s (it is killed then).
    pub fn finish(mut self) -> Result<()> {
        self.tx = None;
        self.wait_for(Duration::from_secs(10))
    }

    /// Waits up to `timeout` for the child to exit (then kills it and says so), and reaps it.
    fn wait_for(&mut self, timeout: Duration) -> Result<()> {
        if self.reaped {
            return Ok(());
        }
        self.reaped = true;
        reap_within(self.pid, timeout)
    }
}

/// Waits up to `timeout` for our child `pid` to exit, reaps it, and says how it ended: Ok if
/// with status 0; a child still running after `timeout` is killed (and that is the error).
pub fn reap_within(pid: i32, timeout: Duration) -> Result<()> {
    let t0 = Instant::now();
    let mut killed = false;
    let mut st = 0;
    loop {
        // SAFETY: polling our own child; `st` is a valid int.
        let rc = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
        if rc == pid {
            break;
        }
        if rc < 0 && errno() != libc::EINTR {
            bail!("waitpid({pid}): {}", std::io::Error::last_os_error());
        }
        if !killed && t0.elapsed() > timeout {
            // SAFETY: signalling our own child; it is reaped below.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    ensure!(
        !killed,
        "child {pid} did not exit within {timeout:?}: killed"
    );
    status_ok(pid, st).map_err(anyhow::Error::msg)
}

impl Drop for Forked {
    fn drop(&mut self) {
        // Releases the child; one that does not exit within 5 s is killed. Either way it is
        // reaped (an exit already under way, as of a 60,000-VMA process, is waited for). A
        // test that cares how it ended calls `finish`; here a bad end is at least said.
        self.tx = None;
        if let Err(e) = self.wait_for(Duration::from_secs(5)) {
            println!("forked child {}: {e:#}", self.pid);
        }
    }
}

/// The name of a signal (`SIGSEGV`), or `signal N`.
pub fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGSYS => "SIGSYS",
        _ => return format!("signal {sig}"),
    };
    name.to_string()
}

/// A wait status: Ok if the child `pid` exited with status 0, else how it ended.
pub fn status_ok(pid: i32, st: i32) -> std::result::Result<(), String> {
    if libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0 {
        Ok(())
    } else if libc::WIFSIGNALED(st) {
        Err(format!(
            "child {pid} killed by {}{}",
            signal_name(libc::WTERMSIG(st)),
            if libc::WCOREDUMP(st) {
                " (core dumped)"
            } else {
                ""
            }
        ))
    } else {
        Err(format!(
            "child {pid} exited with status {}",
            libc::WEXITSTATUS(st)
        ))
    }
}

/// `waitpid` on our own child: `Ok(())` if it exited with status 0, else how it ended.
pub fn reap(pid: i32) -> std::result::Result<(), String> {
    let mut st = 0;
    loop {
        // SAFETY: waiting for our own child; `st` is a valid int.
        let rc = unsafe { libc::waitpid(pid, &mut st, 0) };
        if rc == pid {
            return status_ok(pid, st);
        }
        if errno() != libc::EINTR {
            return Err(format!(
                "waitpid({pid}): {}",
                std::io::Error::last_os_error()
            ));
        }
    }
}

/// `setgroups(0)`, `setgid(uid)`, `setuid(uid)`.
pub fn become_uid(uid: u32) -> std::result::Result<(), String> {
    // SAFETY: plain credential system calls of this (child) process.
    let ok = unsafe {
        libc::setgroups(0, std::ptr::null()) == 0
            && libc::setgid(uid) == 0
            && libc::setuid(uid) == 0
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "becoming uid {uid}: {}",
            std::io::Error::last_os_error()
        ))
    }
}

/// Pids of every live user process now, from `/proc`: a process with a thread that is neither a
/// zombie nor in `do_exit()` (`PF_EXITING`), kernel threads excluded, as the module counts them.
pub fn user_pids() -> Result<Vec<i32>> {
    /// Whether a `/proc/.../stat` is of a user thread that is not exiting: state neither Z nor
    /// X, flags (the seventh field after `(comm)`) without PF_KTHREAD and PF_EXITING.
    fn live_user_thread(stat: &str) -> bool {
        let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) else {
            return false;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let flags: u64 = f.get(6).and_then(|s| s.parse().ok()).unwrap_or(0);
        const PF_EXITING: u64 = 0x0000_0004;
        const PF_KTHREAD: u64 = 0x0020_0000;
        !matches!(f.first(), Some(&"Z") | Some(&"X")) && flags & (PF_KTHREAD | PF_EXITING) == 0
    }
    let mut out = Vec::new();
    for e in fs::read_dir("/proc")? {
        let Ok(pid) = e?.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        // A process is live while one of its threads is (the module's rule: signal->live):
        // its leader may have exited alone, and a process in do_exit() is not live any more.
        let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        let live = tasks
            .filter_map(|t| t.ok())
            .any(|t| fs::read_to_string(t.path().join("stat")).is_ok_and(|s| live_user_thread(&s)));
        if live {
            out.push(pid);
        }
    }
    out.sort();
    Ok(out)
}

/// Pids that have a file in the module's directory.
pub fn reported_pids() -> Result<Vec<i32>> {
    let mut out: Vec<i32> = fs::read_dir(DEBUGFS_DIR)?
        .filter_map(|e| e.ok()?.file_name().to_string_lossy().parse().ok())
        .collect();
    out.sort();
    Ok(out)
}

/// The `[vsyscall]` line's mode in `/proc/self/maps`: `r-xp` emulate, `--xp` xonly, none absent.
pub fn maps_vsyscall_mode() -> Result<&'static str> {
    let maps = report::parse_maps(&fs::read_to_string("/proc/self/maps")?)?;
    Ok(
        match maps
            .iter()
            .find(|l| l.name == "[vsyscall]")
            .map(|l| l.perms.as_str())
        {
            Some("r-xp") => "emulate",
            Some("--xp") => "xonly",
            Some(other) => bail!("unexpected [vsyscall] permissions {other}"),
            None => "none",
        },
    )
}

/// A forked child with one VMA per page of a `pages`-page mapping (every other page
/// `PROT_NONE`), ready when this returns.
pub fn spawn_many_vmas(pages: usize) -> Result<Forked> {
    let child = Forked::spawn(|| many_vmas(pages))?;
    anyhow::ensure!(child.line == "ready", "child: {}", child.line);
    Ok(child)
}

/// In the forked child: maps `pages` pages and makes every other one `PROT_NONE`. Returns
/// "ready", or what failed.
fn many_vmas(pages: usize) -> String {
    // SAFETY: an anonymous mapping of fresh memory; mprotect of pages inside it.
    unsafe {
        let base = libc::mmap(
            std::ptr::null_mut(),
            pages * 4096,
            libc::PROT_READ,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if base == libc::MAP_FAILED {
            return "mmap failed".into();
        }
        for i in (0..pages).step_by(2) {
            libc::mprotect(
                base.cast::<u8>().add(i * 4096).cast(),
                4096,
                libc::PROT_NONE,
            );
        }
    }
    "ready".into()
}

/// Runs `f` as uid/gid 1000 in a forked child (the caller is single-threaded); returns what it
/// returned (an errno, 0 for success). Fails unless the child exited normally after dropping
/// its privileges.
pub fn as_user(f: impl FnOnce() -> i32) -> Result<i32> {
    // SAFETY: single-threaded test program; the child only runs `f` and exits.
    let pid = unsafe { libc::fork() };
    ensure!(pid >= 0, "fork: {}", ename(errno()));
    if pid == 0 {
        let code = match become_uid(1000) {
            Ok(()) => f(),
            Err(_) => 255,
        };
        // SAFETY: `_exit` never returns; nothing of this copy of the program is needed.
        unsafe { libc::_exit(code) }
    }
    let mut st = 0;
    // SAFETY: reaping our own child into a valid status word.
    let r = unsafe { libc::waitpid(pid, &mut st, 0) };
    ensure!(r == pid, "waitpid: {}", ename(errno()));
    ensure!(libc::WIFEXITED(st), "uid-1000 child died: status {st:#x}");
    let rc = libc::WEXITSTATUS(st);
    ensure!(rc != 255, "setuid(1000) failed in the child");
    Ok(rc)
}

/// Loosens debugfs to 0755 (the module's own check is then all that stands between a reader and
/// a report); puts the mount's mode back when dropped.
pub struct DebugfsOpen {
    mode: u32,
}

pub const DEBUGFS: &str = "/sys/kernel/debug";

impl DebugfsOpen {
    pub fn new() -> Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(DEBUGFS)?.permissions().mode() & 0o7777;
        run("mount", &["-o", "remount,mode=0755", DEBUGFS])?;
        Ok(Self { mode })
    }

    /// Makes the report of `pid` world-readable once it exists; returns its path.
    pub fn expose(&self, pid: i32) -> Result<String> {
        use std::os::unix::fs::PermissionsExt;
        let path = report_path(pid);
        wait_until(Duration::from_secs(5), &path, || Path::new(&path).exists())?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o444))?;
        Ok(path)
    }
}

impl Drop for DebugfsOpen {
    fn drop(&mut self) {
        let _ = run(
            "mount",
            &["-o", &format!("remount,mode={:o}", self.mode), DEBUGFS],
        );
    }
}

/// The CPUs this process may run on.
pub fn allowed_cpus() -> Result<Vec<usize>> {
    // SAFETY: cpu_set_t is a plain bitmask; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is this thread.
    if unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) } != 0 {
        bail!("sched_getaffinity: {}", ename(errno()));
    }
    let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: every index is below CPU_SETSIZE.
    Ok((0..max)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect())
}

/// The 32-bit test program (`/bin/static32`) is ia32's; on arm64 an AArch32 one would need an
/// armhf C toolchain and libc, which `scripts/setup` does not install (README, arm64): a skip
/// that says so, there.
pub fn no_32bit_program() -> Option<crate::Outcome> {
    (!cfg!(target_arch = "x86_64")).then(|| {
        crate::Outcome::Skip(
            "no AArch32 test program: it needs an armhf toolchain and libc \
             (libc6-dev-armhf-cross), not installed (README, arm64)"
                .into(),
        )
    })
}
