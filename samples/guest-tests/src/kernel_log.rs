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

/// The one excuse: the fault-injection sweeps make the kernel report the failures they inject.
/// A `Call Trace:` record is not a splat when it is the stack dump of `warn_alloc()` reporting an
/// injected failure: a `warn_alloc()` header (`page allocation failure` from the page
/// allocator's slow path, or `vmalloc error` from vmalloc, whose page allocations an injected
/// failure reaches first: 7.3.4's `prepare_alloc_pages()` returns NULL without a report) at most
/// [`HEADER_WINDOW`] records before it, a `FAULT_INJECTION: forcing a failure` record at most
/// [`INJECTION_WINDOW`] records before that header, and `warn_alloc` in the stack that follows
/// (up to its `</TASK>`, at most [`STACK_WINDOW`] records). Everything else stays a splat.
const WARN_ALLOC_HEADERS: &[&str] = &["page allocation failure", "vmalloc error"];
const INJECTED: &str = "FAULT_INJECTION: forcing a failure";
const HEADER_WINDOW: usize = 6;
const INJECTION_WINDOW: usize = 6;
const STACK_WINDOW: usize = 12;

/// Whether record `i` of `texts` (a `Call Trace:`) is `warn_alloc()`'s report of an injected
/// failure (see [`WARN_ALLOC_HEADERS`]).
fn injected_failure_trace(texts: &[&str], i: usize) -> bool {
    let last_before = |end: usize, window: usize, pats: &[&str]| {
        (end.saturating_sub(window)..end)
            .rev()
            .find(|&j| pats.iter().any(|p| texts[j].contains(p)))
    };
    let Some(header) = last_before(i, HEADER_WINDOW, WARN_ALLOC_HEADERS) else {
        return false;
    };
    last_before(header, INJECTION_WINDOW, &[INJECTED]).is_some()
        && texts[i + 1..]
            .iter()
            .take(STACK_WINDOW)
            .take_while(|t| !t.contains("</TASK>"))
            .any(|t| t.contains("warn_alloc"))
}

/// What [`splat_lines`] found.
#[derive(Debug, Default, PartialEq)]
struct Found {
    /// `(record index, line)` of every splat line.
    splats: Vec<(usize, String)>,
    /// Stack dumps excused as `warn_alloc()` reports of injected failures.
    excused: usize,
}

/// The splats of `texts` (whole records, oldest first) from record `first` on, the excused
/// stack dumps left out. Records before `first` only serve as context.
fn splat_lines(texts: &[&str], first: usize) -> Found {
    let mut found = Found::default();
    for (i, t) in texts.iter().enumerate().skip(first) {
        for l in t.lines().filter(|l| is_splat(l)) {
            if l.contains("Call Trace:") && injected_failure_trace(texts, i) {
                found.excused += 1;
            } else {
                found.splats.push((i, l.to_string()));
            }
        }
    }
    found
}

const KMEMLEAK: &str = "/sys/kernel/debug/kmemleak";

/// One record of `/dev/kmsg`: its sequence number and its text (continuation lines joined).
struct Record {
    seq: u64,
    text: String,
}

/// `/dev/kmsg`, opened for reading without blocking: it reads from the oldest record on.
fn open_kmsg() -> Result<fs::File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
        .context("open /dev/kmsg")
}

/// Appends the records `f` has not returned yet to `out` (each read returns one record).
fn read_records(f: &mut fs::File, out: &mut Vec<Record>) -> Result<()> {
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
    Ok(())
}

/// Every record of `/dev/kmsg` still in the ring buffer, oldest first.
fn records() -> Result<Vec<Record>> {
    let mut out = Vec::new();
    read_records(&mut open_kmsg()?, &mut out)?;
    Ok(out)
}

/// Records kept before the first unscanned one: the look-back of [`injected_failure_trace`].
const CONTEXT: usize = HEADER_WINDOW + INJECTION_WINDOW;

/// A point in the kernel log: what is logged after it belongs to the test that took it. It keeps
/// `/dev/kmsg` open, so each [`Mark::splats`] reads only the records logged since the previous
/// one (a fault-injection sweep logs thousands).
pub struct Mark {
    next_seq: u64,
    leaks: Option<usize>,
    /// Read up to the end of the log (None: a mark for leaks only).
    kmsg: Option<fs::File>,
    /// The records read since the mark not yet scanned, after up to [`CONTEXT`] scanned ones.
    seen: Vec<Record>,
    /// How many of `seen` were scanned.
    scanned: usize,
    /// The splat lines found so far.
    found: Vec<String>,
}

impl Mark {
    /// The log's current end, and the number of kmemleak reports listed now (no scan).
    pub fn now() -> Result<Self> {
        let mut kmsg = open_kmsg()?;
        let mut seen = Vec::new();
        read_records(&mut kmsg, &mut seen)?;
        let next_seq = seen.last().map_or(0, |r| r.seq + 1);
        seen.drain(..seen.len().saturating_sub(CONTEXT));
        Ok(Self {
            next_seq,
            leaks: kmemleak_listed(),
            kmsg: Some(kmsg),
            scanned: seen.len(),
            seen,
            found: Vec::new(),
        })
    }

    /// A mark for leaks only: `listed` objects were listed before (its log position: the start).
    pub fn with_leaks(listed: usize) -> Self {
        Self {
            next_seq: 0,
            leaks: Some(listed),
            kmsg: None,
            seen: Vec::new(),
            scanned: 0,
            found: Vec::new(),
        }
    }

    /// How many objects kmemleak listed at the mark (None: no kmemleak here).
    pub fn leaks(&self) -> Option<usize> {
        self.leaks
    }

    /// The splat lines logged since the mark.
    pub fn splats(&mut self) -> Result<Vec<String>> {
        let Some(kmsg) = self.kmsg.as_mut() else {
            return Ok(self
                .splats_in(&records()?)
                .splats
                .into_iter()
                .map(|(_, l)| l)
                .collect());
        };
        read_records(kmsg, &mut self.seen)?;
        let texts: Vec<&str> = self.seen.iter().map(|r| r.text.as_str()).collect();
        let new = splat_lines(&texts, self.scanned);
        self.found.extend(new.splats.into_iter().map(|(_, l)| l));
        let keep = self.seen.len().saturating_sub(CONTEXT);
        self.seen.drain(..keep);
        self.scanned = self.seen.len();
        Ok(self.found.clone())
    }

    /// The splat lines of `records` logged since the mark, with their record's index.
    fn splats_in(&self, records: &[Record]) -> Found {
        let texts: Vec<&str> = records.iter().map(|r| r.text.as_str()).collect();
        let first = records
            .iter()
            .position(|r| r.seq >= self.next_seq)
            .unwrap_or(records.len());
        splat_lines(&texts, first)
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
    let Found { splats, excused } = mark.splats_in(&all);
    // The first splat with the records that follow it (the backtrace is logged separately).
    if let Some(&(first, _)) = splats.first() {
        println!("kernel log has a splat:");
        for r in all.iter().skip(first).take(40) {
            println!("{}", r.text);
        }
    }
    // What was excused, for the record.
    for r in all
        .iter()
        .filter(|r| WARN_ALLOC_HEADERS.iter().any(|h| r.text.contains(h)))
        .take(5)
    {
        println!(
            "warn_alloc() report: {}",
            r.text.lines().next().unwrap_or("")
        );
    }
    let lines = all.len();
    anyhow::ensure!(
        splats.is_empty() && leaks.unwrap_or(0) == 0,
        "kernel log: {} splat lines, {} kmemleak reports",
        splats.len(),
        leaks.map_or("no kmemleak".into(), |n| n.to_string())
    );
    println!(
        "kernel log clean ({lines} records checked; {excused} stack dumps excused as warn_alloc() \
         reports of injected allocation failures; kmemleak: {})",
        leaks.map_or("not in this kernel".into(), |_| "0 reports after a scan"
            .to_string())
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `warn_alloc()` report as 7.3.4 logs it after an injected slab failure in vmalloc, one
    /// `/dev/kmsg` record per line (`\x0a`: an embedded newline as `/dev/kmsg` escapes it).
    const INJECTED_REPORT: &[&str] = &[
        "FAULT_INJECTION: forcing a failure.\\x0aname failslab, interval 1, probability 0, space 0, times 1",
        "vdso-guest-test: vmalloc error: size 1245184, vm_struct allocation failed, mode:0xcc0(GFP_KERNEL), nodemask=(null),cpuset=/,mems_allowed=0",
        "CPU: 1 UID: 0 PID: 245 Comm: vdso-guest-test Tainted: G           O        7.3.4 #1 PREEMPT(voluntary) ",
        "Tainted: [O]=OOT_MODULE",
        "Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.2-debian-1.16.2-1 04/01/2014",
        "Call Trace:",
        " <TASK>",
        " dump_stack_lvl+0x91/0xd0",
        " warn_alloc+0x1b6/0x2d0",
        " __vmalloc_node_range_noprof+0x1d9/0x8e0",
        " </TASK>",
        "Mem-Info:",
    ];

    fn found(texts: &[&str]) -> Found {
        splat_lines(texts, 0)
    }

    fn lines(f: &Found) -> Vec<&str> {
        f.splats.iter().map(|(_, l)| l.as_str()).collect()
    }

    #[test]
    fn injected_failure_report_is_excused() {
        assert_eq!(
            found(INJECTED_REPORT),
            Found {
                splats: vec![],
                excused: 1
            }
        );
        // The page allocator's own header (its slow path) is excused the same way.
        let mut page = INJECTED_REPORT.to_vec();
        page[1] =
            "modprobe: page allocation failure: order:0, mode:0xcc0(GFP_KERNEL), nodemask=(null)";
        assert_eq!(found(&page).excused, 1);
        assert!(found(&page).splats.is_empty());
    }

    #[test]
    fn context_before_the_mark_counts() {
        // The mark falls between the injection and the stack dump: still excused.
        let f = splat_lines(INJECTED_REPORT, 3);
        assert!(f.splats.is_empty(), "{f:?}");
        assert_eq!(f.excused, 1);
    }

    #[test]
    fn stack_dump_without_an_injection_is_a_splat() {
        let t: Vec<&str> = INJECTED_REPORT[1..].to_vec();
        assert_eq!(lines(&found(&t)), ["Call Trace:"]);
    }

    #[test]
    fn stack_dump_without_a_header_is_a_splat() {
        let mut t = INJECTED_REPORT.to_vec();
        t[1] = "percpu: allocation failed, size=8 align=8 atomic=0, failed to populate";
        assert_eq!(lines(&found(&t)), ["Call Trace:"]);
    }

    #[test]
    fn stack_without_warn_alloc_is_a_splat() {
        let mut t = INJECTED_REPORT.to_vec();
        t[8] = " kobject_add_internal+0x2a0/0x6d0";
        assert_eq!(lines(&found(&t)), ["Call Trace:"]);
    }

    #[test]
    fn far_away_header_is_not_enough() {
        let mut t = INJECTED_REPORT[..2].to_vec();
        t.extend(["some other line"; HEADER_WINDOW]);
        t.extend(&INJECTED_REPORT[5..]);
        assert_eq!(lines(&found(&t)), ["Call Trace:"]);
    }

    #[test]
    fn real_splats_next_to_an_injected_failure_stay_splats() {
        let mut t = INJECTED_REPORT.to_vec();
        t.extend([
            "BUG: KASAN: slab-use-after-free in vdso_probe_open+0x1c/0x90 [vdso_probe]",
            "Read of size 8 at addr ffff888104c2a418 by task vdso-guest-test/246",
            "CPU: 0 UID: 0 PID: 246 Comm: vdso-guest-test Tainted: G           O        7.3.4 #1",
            "Call Trace:",
            " <TASK>",
            " dump_stack_lvl+0x91/0xd0",
            " print_report+0x174/0x4f0",
            " </TASK>",
        ]);
        assert_eq!(
            lines(&found(&t)),
            [
                "BUG: KASAN: slab-use-after-free in vdso_probe_open+0x1c/0x90 [vdso_probe]",
                "Call Trace:"
            ]
        );
        let warn = [
            "FAULT_INJECTION: forcing a failure.\\x0aname failslab, interval 1",
            "WARNING: CPU: 0 PID: 1 at lib/kobject.c:234 kobject_add_internal+0x2a0/0x6d0",
            "Call Trace:",
            " <TASK>",
            " warn_alloc+0x1b6/0x2d0",
            " </TASK>",
        ];
        assert_eq!(lines(&found(&warn)), [warn[1], "Call Trace:"]);
    }
}
