// SPDX-License-Identifier: GPL-2.0
//! Process plumbing for the guest tests: the module, target processes, `/proc` reads.

use anyhow::{bail, Context, Result};
use std::{
    fs,
    io::{BufRead, BufReader, Write},
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
    run("insmod", &["/lib/vdso_probe.ko"])
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

/// A forked copy of this (single-threaded) test program that runs `f` and then blocks until the
/// parent drops the handle. `f`'s one-line result is handed back through a pipe.
pub struct Forked {
    pid: i32,
    release: i32,
    /// When fork returned in the parent.
    pub forked_at: Instant,
    /// What `f` returned.
    pub line: String,
}

fn pipe() -> Result<(i32, i32)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        bail!("pipe: {}", std::io::Error::last_os_error());
    }
    Ok((fds[0], fds[1]))
}

impl Forked {
    /// Forks; the child runs `f`, reports its result and waits to be released.
    pub fn spawn(f: impl FnOnce() -> String) -> Result<Self> {
        let (res_r, res_w) = pipe()?;
        let (rel_r, rel_w) = pipe()?;
        // SAFETY: the test program is single-threaded, so the child may run arbitrary code.
        let pid = unsafe { libc::fork() };
        let forked_at = Instant::now();
        if pid < 0 {
            bail!("fork: {}", std::io::Error::last_os_error());
        }
        if pid == 0 {
            // Keep only our two pipe ends: an inherited release pipe of a sibling would keep
            // that sibling from ever seeing EOF.
            let (lo, hi) = (res_w.min(rel_r) as u32, res_w.max(rel_r) as u32);
            // SAFETY: closing descriptor ranges of this (child) process; none is in use.
            unsafe {
                libc::syscall(libc::SYS_close_range, 3u32, lo - 1, 0u32);
                libc::syscall(libc::SYS_close_range, lo + 1, hi - 1, 0u32);
                libc::syscall(libc::SYS_close_range, hi + 1, u32::MAX, 0u32);
            }
            let line = f() + "\n";
            let mut b = [0u8; 1];
            // SAFETY: plain fd I/O on descriptors this process owns; `_exit` never returns.
            unsafe {
                libc::write(res_w, line.as_ptr().cast(), line.len());
                libc::close(rel_w);
                libc::read(rel_r, b.as_mut_ptr().cast(), 1);
                libc::_exit(0);
            }
        }
        // SAFETY: closing the child's ends, which this process also owns.
        unsafe {
            libc::close(res_w);
            libc::close(rel_r);
        }
        let mut line = String::new();
        // SAFETY: `res_r` is an open pipe end owned by us, handed to the File exactly once.
        let file = unsafe { <fs::File as std::os::fd::FromRawFd>::from_raw_fd(res_r) };
        BufReader::new(file).read_line(&mut line)?;
        Ok(Forked {
            pid,
            release: rel_w,
            forked_at,
            line: line.trim().to_string(),
        })
    }

    /// The child's pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }
}

impl Drop for Forked {
    fn drop(&mut self) {
        // SAFETY: closing our pipe end releases the child; waitpid reaps our own child.
        unsafe {
            libc::close(self.release);
            libc::waitpid(self.pid, std::ptr::null_mut(), 0);
        }
    }
}

/// Pids of every user process now (kernel threads and zombies excluded), from `/proc`.
pub fn user_pids() -> Result<Vec<i32>> {
    let mut out = Vec::new();
    for e in fs::read_dir("/proc")? {
        let Ok(pid) = e?.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the `(comm)`: state is the first, flags the seventh.
        let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let flags: u64 = f.get(6).and_then(|s| s.parse().ok()).unwrap_or(0);
        const PF_KTHREAD: u64 = 0x0020_0000;
        if f.first() != Some(&"Z") && f.first() != Some(&"X") && flags & PF_KTHREAD == 0 {
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
