// SPDX-License-Identifier: GPL-2.0
//! The kernel's own verdict: splats in the kernel log (read from `/dev/kmsg` by sequence number,
//! so a test sees only what was logged while it ran) and kmemleak reports. The one list of what
//! counts as a splat; `/tests/check-dmesg` (the runner's final `kernel-log` test) uses it too.

use anyhow::{Context, Result};
use std::{
    fs::{self, OpenOptions},
    io::{ErrorKind, Read},
    os::unix::fs::OpenOptionsExt,
    path::Path,
    time::Duration,
};

/// Log lines that fail a run: BUG, WARNING, KASAN, UBSAN, lockdep, RCU, hung task, kmemleak,
/// Oops, panic, a Rust panic, a call trace, a failed KUnit case.
const SPLATS: &[&str] = &[
    "BUG:",
    "WARNING:",
    "KASAN:",
    "UBSAN:",
    "possible circular locking",
    "possible recursive locking",
    "inconsistent lock state",
    "suspicious RCU usage",
    "INFO: rcu_",
    "rcu: INFO:",
    "blocked for more than",
    "Oops",
    "Kernel panic",
    "kernel BUG",
    "rust_panic",
    "panicked at",
    "unreferenced object",
    "general protection fault",
    "Call Trace:",
    "ASSERTION FAILED",
];

/// Whether a kernel log line is a splat. KUnit's own `not ok` lines count as well (a KUnit
/// case failing inside the module).
pub fn is_splat(line: &str) -> bool {
    SPLATS.iter().any(|p| line.contains(p)) || line.trim_start().starts_with("not ok ")
}

const KMEMLEAK: &str = "/sys/kernel/debug/kmemleak";

/// One record of `/dev/kmsg`: its sequence number and its text (continuation lines joined).
struct Record {
    seq: u64,
    text: String,
}

/// Every record of `/dev/kmsg` still in the ring buffer, oldest first.
fn records() -> Result<Vec<Record>> {
    let mut f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
        .context("open /dev/kmsg")?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let rec = String::from_utf8_lossy(&buf[..n]);
                let Some((head, text)) = rec.split_once(';') else {
                    continue;
                };
                let Some(seq) = head.split(',').nth(1).and_then(|s| s.parse().ok()) else {
                    continue;
                };
                out.push(Record {
                    seq,
                    text: text.trim_end().to_string(),
                });
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            // EPIPE: records were overwritten before this read; the next read goes on.
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(e) => return Err(e).context("read /dev/kmsg"),
        }
    }
    Ok(out)
}

/// A point in the kernel log: what is logged after it belongs to the test that took it.
pub struct Mark {
    next_seq: u64,
    leaks: Option<usize>,
}

impl Mark {
    /// The log's current end, and the number of kmemleak reports listed now (no scan).
    pub fn now() -> Result<Self> {
        let next_seq = records()?.last().map_or(0, |r| r.seq + 1);
        Ok(Self {
            next_seq,
            leaks: kmemleak_listed(),
        })
    }

    /// A mark for leaks only: `listed` objects were listed before (its log position: the start).
    pub fn with_leaks(listed: usize) -> Self {
        Self {
            next_seq: 0,
            leaks: Some(listed),
        }
    }

    /// How many objects kmemleak listed at the mark (None: no kmemleak here).
    pub fn leaks(&self) -> Option<usize> {
        self.leaks
    }

    /// The splat lines logged since the mark.
    pub fn splats(&self) -> Result<Vec<String>> {
        Ok(self.splats_in(&records()?))
    }

    /// The splat lines of `records` logged since the mark.
    fn splats_in(&self, records: &[Record]) -> Vec<String> {
        records
            .iter()
            .filter(|r| r.seq >= self.next_seq)
            .flat_map(|r| r.text.lines().filter(|l| is_splat(l)).map(str::to_string))
            .collect()
    }

    /// kmemleak reports that appeared since the mark, after a scan (None: no kmemleak here).
    /// kmemleak does not report objects younger than 5 s, so the scan waits that long first.
    pub fn new_leaks(&self) -> Result<Option<usize>> {
        let Some(before) = self.leaks else {
            return Ok(None);
        };
        if !Path::new(KMEMLEAK).exists() {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_secs(5));
        fs::write(KMEMLEAK, "scan").context("kmemleak scan")?;
        Ok(kmemleak_listed().map(|now| now.saturating_sub(before)))
    }
}

/// How many objects kmemleak lists now (None: no kmemleak on this kernel).
fn kmemleak_listed() -> Option<usize> {
    let text = fs::read_to_string(KMEMLEAK).ok()?;
    Some(text.matches("unreferenced object").count())
}

/// The runner's final check over the whole boot: a kmemleak scan where there is kmemleak, then
/// every splat in the log. Prints what it found; Err if anything.
pub fn check_boot() -> Result<()> {
    let mark = Mark::with_leaks(0);
    let leaks = mark.new_leaks()?;
    if leaks.unwrap_or(0) > 0 {
        let text = fs::read_to_string(KMEMLEAK).unwrap_or_default();
        println!("kmemleak:");
        for l in text.lines().take(40) {
            println!("{l}");
        }
    }
    let all = records()?;
    let splats = mark.splats_in(&all);
    // The first splat with the records that follow it (the backtrace is logged separately).
    if let Some(first) = all.iter().position(|r| r.text.lines().any(is_splat)) {
        println!("kernel log has a splat:");
        for r in all.iter().skip(first).take(40) {
            println!("{}", r.text);
        }
    }
    let lines = all.len();
    anyhow::ensure!(
        splats.is_empty() && leaks.unwrap_or(0) == 0,
        "kernel log: {} splat lines, {} kmemleak reports",
        splats.len(),
        leaks.map_or("no kmemleak".into(), |n| n.to_string())
    );
    println!(
        "kernel log clean ({lines} records checked; kmemleak: {})",
        leaks.map_or("not in this kernel".into(), |_| "0 reports after a scan"
            .to_string())
    );
    Ok(())
}
