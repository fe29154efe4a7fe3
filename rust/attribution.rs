// SPDX-License-Identifier: GPL-2.0

//! Attribution: which time system calls each process makes, and why they are not vDSO reads.
//!
//! An ftrace callback on the entry points of the time system calls (`ffi::TimeCallProbes`) reports
//! each call with its clock id and origin: from the `[vdso]` text (the vDSO's own fallback) or from
//! elsewhere (the caller bypassed the vDSO); the vsyscall emulation's tracepoint reports each
//! call into the vsyscall page. Counts are per process (tgid), per (system call, clock, origin),
//! each with the reason of its last call; a process's counts go at its exec and exit (`forget`,
//! from the lifecycle hooks), so a new image, or a new process with a reused pid, starts at 0.
//!
//! The hot path is C and takes no lock: the probe appends the call to its CPU's ring
//! (`ffi::TimeCallProbes`). The counters are one spinlock-protected tree, brought up to date
//! from the rings ([`Attribution::drain`]) whenever they are read, before a process's counters
//! are dropped (exec, exit: so no call is ever counted for the wrong image), and when a ring is
//! full (the probe waits for that drain rather than lose the call). The drain runs in atomic
//! context too (the hooks): allocation with `GFP_NOWAIT`, the calls a failure drops counted in `lost`. Readers
//! copy what they show under the lock and format outside it. Only the probed functions pay (an
//! ftrace_ops filtered on them); `off` unregisters it, and then nothing pays.

use crate::{
    ffi::{
        self,
        CallSource,
        SeqShow,
        TakeCursor,
        TimeCall,
        TimeCallProbes,
        TimeCalls,
        COMM_LEN, //
    },
    timepage::TimeState,
    vsyscall,
};
use core::fmt;
use kernel::{
    new_mutex, new_spinlock,
    prelude::*,
    rbtree::{
        RBTree,
        RBTreeNode, //
    },
    seq_file::SeqFile,
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        Arc,
        ArcBorrow,
        Mutex,
        SpinLock,
        SpinLockGuard, //
    },
};

/// The names of `VP_SC_*` (`shim.h`), in that order.
const SYSCALLS: [&str; 9] = [
    "clock_gettime",
    "clock_gettime64",
    "gettimeofday",
    "time",
    "clock_getres",
    "clock_getres_time64",
    "getcpu",
    "getrandom",
    "vsyscall",
];
const SC_CLOCK_GETTIME: u8 = 0;
const SC_CLOCK_GETTIME64: u8 = 1;
const SC_CLOCK_GETRES: u8 = 4;
const SC_CLOCK_GETRES_TIME64: u8 = 5;
const SC_GETRANDOM: u8 = 7;
const SC_VSYSCALL: u8 = 8;

/// The vsyscall page's entry points, by number (`arch/x86/entry/vsyscall/vsyscall_64.c`).
const VSYSCALLS: [&str; 3] = ["gettimeofday", "time", "getcpu"];

// `VP_ORIGIN_*` (`shim.h`).
const ORIGIN_ELSEWHERE: u8 = 0;
const ORIGIN_VDSO: u8 = 1;
const ORIGIN_NO_VDSO: u8 = 2;
const ORIGIN_VSYSCALL: u8 = 3;

/// `CLOCK_*` names by id (`include/uapi/linux/time.h`); the auxiliary clocks follow from
/// `CLOCK_AUX` (16) on.
const CLOCKS: [&str; 12] = [
    "REALTIME",
    "MONOTONIC",
    "PROCESS_CPUTIME_ID",
    "THREAD_CPUTIME_ID",
    "MONOTONIC_RAW",
    "REALTIME_COARSE",
    "MONOTONIC_COARSE",
    "BOOTTIME",
    "REALTIME_ALARM",
    "BOOTTIME_ALARM",
    "SGI_CYCLE",
    "TAI",
];
const CLOCK_AUX: i32 = 16;
const MAX_AUX_CLOCKS: i32 = 8;

/// Distinct (system call, clock, origin) counters a process can have; beyond, calls are counted
/// in its `overflowed`.
const BUCKETS: usize = 24;

fn has_clock(syscall: u8) -> bool {
    matches!(
        syscall,
        SC_CLOCK_GETTIME | SC_CLOCK_GETTIME64 | SC_CLOCK_GETRES | SC_CLOCK_GETRES_TIME64
    )
}

/// Whether the vDSO answers this call itself when the clocksource is readable
/// (`lib/vdso/gettimeofday.c`: the high-resolution, coarse and raw clocks, and the auxiliary
/// clocks; `gettimeofday`, `time` and `getcpu` always; `getrandom` only in the 64-bit vDSO).
fn vdso_has_path(syscall: u8, clock: i32, compat: bool) -> bool {
    match syscall {
        SC_GETRANDOM => !compat,
        s if has_clock(s) => {
            matches!(clock, 0 | 1 | 4 | 5 | 6 | 7 | 11)
                || (cfg!(CONFIG_POSIX_AUX_CLOCKS)
                    && (CLOCK_AUX..CLOCK_AUX + MAX_AUX_CLOCKS).contains(&clock))
        }
        _ => true,
    }
}

/// The name of a clock id as the report keys use it: `MONOTONIC`, `AUX0`, or the number.
struct ClockName(i32);

impl fmt::Display for ClockName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = self.0;
        match usize::try_from(id).ok().and_then(|i| CLOCKS.get(i)) {
            Some(name) => f.write_str(name),
            None if (CLOCK_AUX..CLOCK_AUX + MAX_AUX_CLOCKS).contains(&id) => {
                write!(f, "AUX{}", id - CLOCK_AUX)
            }
            None => write!(f, "{id}"),
        }
    }
}

/// Why a call was a system call (the last call of its counter decides).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Why {
    /// The vDSO has no path for this clock id and fell back.
    NoVdsoPath,
    /// The vDSO fell back because the clocksource was not readable from userspace.
    ClockModeNone,
    /// The vDSO fell back with the clocksource readable (an unstable pvclock, a disabled
    /// auxiliary clock, vgetrandom without state).
    VdsoFellBack,
    /// The caller made the system call itself.
    Bypass,
    /// The caller made the system call itself; the vDSO would have fallen back too.
    BypassNoPath,
    /// The process has no `[vdso]`.
    NoVdso,
    /// A call into the vsyscall page.
    Vsyscall,
}

/// One counter.
#[derive(Clone, Copy)]
struct Bucket {
    count: u64,
    clock: i32,
    syscall: u8,
    origin: u8,
    why: Why,
    /// The clocksource and its vDSO clock mode at the last call (for the vDSO's fallbacks).
    clocksource: [u8; 32],
    clock_mode: [u8; 8],
}

impl Bucket {
    const EMPTY: Bucket = Bucket {
        count: 0,
        clock: 0,
        syscall: 0,
        origin: 0,
        why: Why::Bypass,
        clocksource: [0; 32],
        clock_mode: [0; 8],
    };

    /// The report key's first part.
    fn kind(&self) -> &'static str {
        match self.origin {
            ORIGIN_VDSO => "fallback",
            ORIGIN_VSYSCALL => "vsyscall",
            _ => "direct",
        }
    }
}

/// `fallback.clock_gettime.MONOTONIC`, `direct.getrandom`, `vsyscall.gettimeofday`.
struct Key<'a>(&'a Bucket);

impl fmt::Display for Key<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        let name = if b.syscall == SC_VSYSCALL {
            usize::try_from(b.clock)
                .ok()
                .and_then(|i| VSYSCALLS.get(i))
                .copied()
                .unwrap_or("?")
        } else {
            SYSCALLS.get(usize::from(b.syscall)).copied().unwrap_or("?")
        };
        write!(f, "{}.{name}", b.kind())?;
        if has_clock(b.syscall) {
            write!(f, ".{}", ClockName(b.clock))?;
        }
        Ok(())
    }
}

/// The reason of a counter, as text.
struct Reason<'a>(&'a Bucket, &'static str);

impl fmt::Display for Reason<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        let cs = ffi::str_until_nul(&b.clocksource);
        let mode = ffi::str_until_nul(&b.clock_mode);
        match b.why {
            Why::NoVdsoPath => f.write_str("no vDSO path for this clock"),
            Why::ClockModeNone => write!(f, "clock_mode none ({cs})"),
            Why::VdsoFellBack if b.syscall == SC_GETRANDOM => {
                f.write_str("vgetrandom fell back (no state, flags or rng not ready)")
            }
            Why::VdsoFellBack => write!(f, "the vDSO fell back with clock_mode {mode} ({cs})"),
            Why::Bypass => f.write_str("bypass"),
            Why::BypassNoPath => f.write_str("bypass (no vDSO path for this clock either)"),
            Why::NoVdso => f.write_str("no vDSO mapped"),
            Why::Vsyscall => write!(f, "vsyscall page ({})", self.1),
        }
    }
}

/// One process's counters.
#[derive(Clone, Copy)]
struct Proc {
    comm: [u8; COMM_LEN],
    used: usize,
    /// Calls not counted because every bucket was taken.
    overflowed: u64,
    buckets: [Bucket; BUCKETS],
}

impl Proc {
    /// Empty counters for process `tgid`.
    fn new(tgid: i32) -> Self {
        Proc {
            comm: ffi::tgid_comm(tgid).unwrap_or(*b"?\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"),
            used: 0,
            overflowed: 0,
            buckets: [Bucket::EMPTY; BUCKETS],
        }
    }

    fn count(&mut self, call: &TimeCall, why: Why, cs: Option<&ffi::CsEvent>) {
        let clock = if has_clock(call.syscall) || call.syscall == SC_VSYSCALL {
            call.clock
        } else {
            0
        };
        let used = &mut self.buckets[..self.used];
        let bucket = match used
            .iter_mut()
            .position(|b| b.syscall == call.syscall && b.clock == clock && b.origin == call.origin)
        {
            Some(i) => &mut self.buckets[i],
            None if self.used < BUCKETS => {
                self.used += 1;
                let b = &mut self.buckets[self.used - 1];
                *b = Bucket {
                    clock,
                    syscall: call.syscall,
                    origin: call.origin,
                    ..Bucket::EMPTY
                };
                b
            }
            None => {
                self.overflowed += call.count;
                return;
            }
        };
        bucket.count += call.count;
        bucket.why = why;
        if let Some(e) = cs {
            copy_name(&mut bucket.clocksource, &e.clocksource);
            copy_name(&mut bucket.clock_mode, &e.clock_mode);
        }
    }

    fn buckets(&self) -> impl Iterator<Item = &Bucket> {
        self.buckets[..self.used].iter().filter(|b| b.count != 0)
    }
}

/// Copies a NUL-padded name, truncated and still NUL-terminated.
fn copy_name(out: &mut [u8], name: &[u8]) {
    let n = out.len() - 1;
    let len = name
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(name.len())
        .min(n);
    out.fill(0);
    out[..len].copy_from_slice(&name[..len]);
}

/// The probes while attribution is on.
struct Switch {
    probes: Option<TimeCallProbes<Attribution>>,
    /// Set at teardown: nothing registers any more.
    closed: bool,
}

/// The counters, and where the calls not yet counted wait.
struct Table {
    /// By tgid (initial pid namespace).
    procs: RBTree<i32, Proc>,
    /// The probes' rings while attribution is on (set and cleared under the lock, so a drain
    /// never uses rings that are freed).
    source: Option<CallSource>,
}

/// Calls taken from the rings at a time.
const DRAIN_BATCH: usize = 32;

/// The attribution state: the table and the switch.
#[pin_data]
pub(crate) struct Attribution {
    #[pin]
    table: SpinLock<Table>,
    #[pin]
    switch: Mutex<Switch>,
    time: Arc<TimeState>,
    vsyscall: &'static str,
    /// Whether the probes are attached (written under `switch`; read without it, so that a
    /// report never waits for a registration in progress).
    on: Atomic<bool>,
    /// Calls not counted because a process's counters could not be allocated.
    lost: Atomic<u64>,
}

impl Attribution {
    /// An empty table; the probes are attached by [`Attribution::set`].
    pub(crate) fn new(time: Arc<TimeState>, vsyscall: vsyscall::Info) -> Result<Arc<Self>> {
        Arc::pin_init(
            try_pin_init!(Self {
                table <- new_spinlock!(Table {
                    procs: RBTree::new(),
                    source: None,
                }),
                switch <- new_mutex!(Switch {
                    probes: None,
                    closed: false,
                }),
                time,
                vsyscall: vsyscall.mode.name(),
                on: Atomic::new(false),
                lost: Atomic::new(0),
            }),
            GFP_KERNEL,
        )
    }

    /// Turns attribution on (attaches the probes) or off (detaches them; the counts stay).
    /// Process context: registering and unregistering sleep.
    pub(crate) fn set(self: &Arc<Self>, on: bool) -> Result {
        let mut sw = self.switch.lock();
        if on && sw.closed {
            return Err(ENODEV);
        }
        if on && sw.probes.is_none() {
            // SAFETY: the probes hold an `Arc` of `self`, which holds the `Arc<TimeState>` whose
            // page this is: the page outlives them.
            let probes = unsafe { TimeCallProbes::new(self.clone(), self.time.page())? };
            // The rings are known before the first call reaches them: a full ring, or an exit
            // or exec, always drains them.
            self.table.lock().source = Some(probes.source());
            if let Err(e) = probes.start() {
                self.table.lock().source = None;
                return Err(e);
            }
            sw.probes = Some(probes);
        } else if !on {
            self.detach(&mut sw);
        }
        self.on.store(on, Relaxed);
        Ok(())
    }

    /// Detaches the probes, counts what their rings still hold, and frees them.
    fn detach(&self, sw: &mut Switch) {
        let Some(probes) = sw.probes.take() else {
            return;
        };
        // A probe that finds its ring full meanwhile can still drain it: `source` is set.
        probes.stop();
        self.drained().source = None;
        drop(probes);
    }

    /// Detaches the probes for good (module teardown): breaks the probes' reference cycle.
    pub(crate) fn close(&self) {
        let mut sw = self.switch.lock();
        sw.closed = true;
        self.detach(&mut sw);
        self.on.store(false, Relaxed);
    }

    fn is_on(&self) -> bool {
        self.on.load(Relaxed)
    }

    /// The table, locked, with every call waiting in the rings counted (any context but NMI).
    fn drained(&self) -> SpinLockGuard<'_, Table> {
        let mut table = self.table.lock();
        self.drain(&mut table);
        table
    }

    /// Counts every call waiting in the rings (any context but NMI; with the lock held).
    fn drain(&self, table: &mut Table) {
        let Some(source) = table.source else {
            return;
        };
        let mut buf = [TimeCall::ZERO; DRAIN_BATCH];
        // From CPU 0 to the last once, however fast the CPUs call meanwhile.
        let mut cursor = TakeCursor::default();
        loop {
            // SAFETY: `source` is set only while its probes are alive (cleared under this lock
            // before they are freed), and takes are serialised by this lock.
            let n = unsafe { source.take(&mut buf, &mut cursor) };
            for call in &buf[..n] {
                self.count(&mut table.procs, call);
            }
            if n < buf.len() {
                return;
            }
        }
    }

    /// Counts one call.
    fn count(&self, procs: &mut RBTree<i32, Proc>, call: &TimeCall) {
        let (why, cs) = self.why(call);
        if procs.get(&call.tgid).is_none() {
            match RBTreeNode::new(call.tgid, Proc::new(call.tgid), GFP_NOWAIT) {
                // No entry for `call.tgid`: nothing is replaced.
                Ok(node) => drop(procs.insert(node)),
                Err(_) => {
                    // A merged event stands for `count` calls.
                    self.lost.fetch_add(call.count, Relaxed);
                    return;
                }
            }
        }
        if let Some(p) = procs.get_mut(&call.tgid) {
            p.count(call, why, cs.as_ref());
        }
    }

    /// Drops the counters of process `tgid` (it exec'd or exited), after counting what the
    /// rings hold: calls made before the exec or exit go to the image that made them. Atomic
    /// context.
    pub(crate) fn forget(&self, tgid: i32) {
        let node = self.drained().procs.remove_node(&tgid);
        // Freed outside the lock (kfree does not sleep).
        drop(node);
    }

    /// Drops every counter.
    fn reset(&self) {
        // Freed after the statement, outside the lock.
        let old = core::mem::take(&mut self.drained().procs);
        drop(old);
    }

    /// A copy of process `tgid`'s counters, if it has any (process context).
    fn snapshot(&self, tgid: i32) -> Result<Option<KBox<Proc>>> {
        let out = KBox::<Proc>::new_uninit(GFP_KERNEL)?;
        let table = self.drained();
        Ok(table.procs.get(&tgid).map(|p| KBox::write(out, *p)))
    }

    /// What the report of process `tgid` shows.
    pub(crate) fn report(&self, tgid: i32) -> Result<ProcReport> {
        Ok(ProcReport {
            on: self.is_on(),
            proc: self.snapshot(tgid)?,
        })
    }

    /// A copy of every non-zero counter, with its process (process context).
    fn all(&self) -> Result<KVec<(i32, [u8; COMM_LEN], Bucket)>> {
        let mut want = 0;
        loop {
            let mut out = KVec::with_capacity(want, GFP_KERNEL)?;
            let table = self.drained();
            let need: usize = table.procs.values().map(|p| p.buckets().count()).sum();
            if need > out.capacity() {
                drop(table);
                want = need + 16;
                continue;
            }
            for (tgid, p) in table.procs.iter() {
                for b in p.buckets() {
                    // Within capacity, checked above under the same lock.
                    let _ = out.push_within_capacity((*tgid, p.comm, *b));
                }
            }
            return Ok(out);
        }
    }

    /// Why the call was a system call, and for the vDSO's own fallbacks the clocksource then.
    fn why(&self, call: &TimeCall) -> (Why, Option<ffi::CsEvent>) {
        let path = vdso_has_path(call.syscall, call.clock, call.compat);
        match call.origin {
            ORIGIN_VSYSCALL => (Why::Vsyscall, None),
            ORIGIN_NO_VDSO => (Why::NoVdso, None),
            ORIGIN_VDSO if !path => (Why::NoVdsoPath, None),
            ORIGIN_VDSO => {
                let why = if call.readable {
                    Why::VdsoFellBack
                } else {
                    Why::ClockModeNone
                };
                // The last clocksource event before the call names the clocksource then.
                let cs = call
                    .cs_seq
                    .checked_sub(1)
                    .and_then(|seq| self.time.log_entry(u64::from(seq)));
                (why, cs)
            }
            ORIGIN_ELSEWHERE if !path => (Why::BypassNoPath, None),
            _ => (Why::Bypass, None),
        }
    }
}

impl TimeCalls for Attribution {
    /// A probe's ring is full: count everything waiting, so that it can append.
    fn on_full(this: ArcBorrow<'_, Self>) -> bool {
        this.drained().source.is_some()
    }
}

/// One process's attribution lines in its report.
pub(crate) struct ProcReport {
    on: bool,
    proc: Option<KBox<Proc>>,
}

impl fmt::Display for ProcReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "attribution: {}", if self.on { "on" } else { "off" })?;
        let Some(p) = &self.proc else {
            return Ok(());
        };
        let mut vsyscalls = 0;
        for b in p.buckets() {
            if b.origin == ORIGIN_VSYSCALL {
                vsyscalls += b.count;
            } else {
                writeln!(f, "{}: {}", Key(b), b.count)?;
            }
        }
        if vsyscalls != 0 {
            writeln!(f, "vsyscall.calls: {vsyscalls}")?;
        }
        if p.overflowed != 0 {
            writeln!(f, "attribution.overflowed: {}", p.overflowed)?;
        }
        Ok(())
    }
}

/// A process name without blanks, so that it stays one field.
struct Comm<'a>(&'a [u8]);

impl fmt::Display for Comm<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.0.iter().take_while(|&&b| b != 0) {
            let c = if b.is_ascii_graphic() { b as char } else { '?' };
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

/// `fallbacks`: every non-zero counter of every process, with its reason.
pub(crate) struct Fallbacks<'a>(pub(crate) &'a Attribution);

impl Fallbacks<'_> {
    /// Writes the file (the counters are copied first; the lock is not held while printing).
    pub(crate) fn show(&self, out: &SeqFile) -> Result {
        let a = self.0;
        out.call_printf(format_args!(
            "# pid comm origin.syscall[.clock] calls reason\n"
        ));
        for (tgid, comm, b) in a.all()?.iter() {
            out.call_printf(format_args!(
                "{tgid} {} {} {} {}\n",
                Comm(comm),
                Key(b),
                b.count,
                Reason(b, a.vsyscall)
            ));
        }
        Ok(())
    }
}

/// `attribution`: the state, and the switch (`on`, `off`, `reset`).
pub(crate) struct SwitchFile(pub(crate) Arc<Attribution>);

impl SeqShow for SwitchFile {
    type Open = ();

    fn open(&self) -> Result {
        Ok(())
    }

    fn show(&self, _open: &(), out: &SeqFile) -> Result {
        let a = &self.0;
        let (processes, calls) = {
            let table = a.drained();
            let table = &table.procs;
            let calls: u64 = table
                .values()
                .map(|p| p.buckets().map(|b| b.count).sum::<u64>() + p.overflowed)
                .sum();
            (table.iter().count(), calls)
        };
        out.call_printf(format_args!(
            "state: {}\nprocesses: {processes}\ncalls: {calls}\nlost: {}\n",
            if a.is_on() { "on" } else { "off" },
            a.lost.load(Relaxed),
        ));
        Ok(())
    }

    const WRITABLE: bool = true;

    /// `on`, `off` or `reset` (drops every counter), with or without a newline.
    fn write(&self, input: &[u8]) -> Result {
        match input.strip_suffix(b"\n").unwrap_or(input) {
            b"on" => self.0.set(true),
            b"off" => self.0.set(false),
            b"reset" => {
                self.0.reset();
                Ok(())
            }
            _ => Err(EINVAL),
        }
    }
}
