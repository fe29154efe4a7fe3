// SPDX-License-Identifier: GPL-2.0

//! The fault log: every fault that populates a page of a process's `[vvar]`, `[vvar_vclock]`,
//! `[vdso]` or time page, with the time since the process's exec (or fork), the page and its role,
//! and the access.
//!
//! The vDSO's mappings are populated on fault since v4.5 (`vm_special_mapping.fault`); x86's
//! `exceptions:page_fault_user` tracepoint sees each user fault at its entry (the shim filters it
//! to the three mappings), and the time page's own fault handler logs its user faults. arm64 has
//! no such tracepoint: there only the time page's faults are logged, and the report says so
//! (`faults.traced`). A page the
//! kernel populates without a fault (`mlockall(MCL_CURRENT)`'s prefault of `[vvar]`, which 7.3
//! allows by dropping `VM_IO`; the PTEs `fork` copies) is not logged: that is the point.
//!
//! Each process keeps its first [`PER_PROCESS`] faults since its exec (a process that has not
//! exec'd since the module was loaded counts from its fork); the global `faults` file the last
//! [`LOG_LEN`] of all processes. The probe runs with interrupts off in the faulting task: the
//! table is a spinlock, a process's entry is allocated with `GFP_NOWAIT` (a fault whose entry
//! cannot be allocated is not logged and counts in `lost`). Only a first-touch fault that can
//! populate is logged (not-present, not a write: none of the mappings is writable).

use crate::ffi::{
    self,
    FaultEvent,
    VvarLayout,
    ACCESS_EXEC,
    COMM_LEN,
    MAP_TIMEPAGE,
    MAP_VCLOCK,
    MAP_VDSO,
    MAP_VVAR, //
};
use core::fmt;
use kernel::{
    new_spinlock,
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
        Arc, SpinLock,
    },
};

/// Faults kept per process.
pub(crate) const PER_PROCESS: usize = 32;
/// Faults kept in the global log.
pub(crate) const LOG_LEN: usize = 256;

/// What a process's fault times count from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Since {
    /// Its exec (seen by the module).
    Exec,
    /// Its fork (it has not exec'd since the module was loaded).
    Fork,
}

impl Since {
    fn name(self) -> &'static str {
        match self {
            Since::Exec => "exec",
            Since::Fork => "fork",
        }
    }
}

/// One fault, as kept.
#[derive(Clone, Copy)]
struct Fault {
    /// Nanoseconds since the process's exec or fork.
    after_ns: u64,
    mapping: u8,
    access: u8,
    page: u16,
}

impl Fault {
    const EMPTY: Fault = Fault {
        after_ns: 0,
        mapping: 0,
        access: 0,
        page: 0,
    };
}

/// One process's faults.
struct Proc {
    /// `CLOCK_MONOTONIC` at its exec or fork.
    base_ns: u64,
    since: Since,
    used: usize,
    /// Faults beyond [`PER_PROCESS`] (still in the global log).
    dropped: u64,
    faults: [Fault; PER_PROCESS],
}

impl Proc {
    fn new(base_ns: u64, since: Since) -> Self {
        Proc {
            base_ns,
            since,
            used: 0,
            dropped: 0,
            faults: [Fault::EMPTY; PER_PROCESS],
        }
    }

    fn push(&mut self, f: Fault) {
        match self.faults.get_mut(self.used) {
            Some(slot) => {
                *slot = f;
                self.used += 1;
            }
            None => self.dropped += 1,
        }
    }
}

/// One line of the global log.
#[derive(Clone, Copy)]
struct Record {
    tgid: i32,
    comm: [u8; COMM_LEN],
    since: Since,
    fault: Fault,
}

struct Table {
    procs: RBTree<i32, Proc>,
    /// The global log, a ring: entry `i % LOG_LEN` is the `i`-th fault.
    log: KVec<Record>,
    /// Faults logged since load.
    total: u64,
}

/// The fault log of every process.
#[pin_data]
pub(crate) struct FaultLog {
    #[pin]
    table: SpinLock<Table>,
    /// Faults not logged: their process's entry could not be allocated.
    lost: Atomic<u64>,
    layout: VvarLayout,
    /// The vDSO's mappings' faults are seen ([`ffi::vdso_faults_traced`]), not only the time
    /// page's.
    vdso_traced: bool,
}

/// `CLOCK_MONOTONIC` now, ns.
fn now_ns() -> u64 {
    // SAFETY: `ktime_get` has no preconditions (not from NMI: never called there).
    let t = unsafe { kernel::bindings::ktime_get() };
    t.max(0) as u64
}

impl FaultLog {
    pub(crate) fn new() -> Result<Arc<Self>> {
        let log = KVec::with_capacity(LOG_LEN, GFP_KERNEL)?;
        Arc::pin_init(
            pin_init!(Self {
                table <- new_spinlock!(Table {
                    procs: RBTree::new(),
                    log,
                    total: 0,
                }),
                lost: Atomic::new(0),
                layout: ffi::vvar_layout(),
                vdso_traced: ffi::vdso_faults_traced(),
            }),
            GFP_KERNEL,
        )
    }

    /// A fault of the calling task (any context but NMI; interrupts may be off).
    pub(crate) fn record(&self, ev: &FaultEvent) {
        let comm = ffi::tgid_comm(ev.tgid).unwrap_or([0; COMM_LEN]);
        let mut t = self.table.lock();
        if t.procs.get(&ev.tgid).is_none() {
            let p = Proc::new(ev.start_ns, Since::Fork);
            match RBTreeNode::new(ev.tgid, p, GFP_NOWAIT) {
                // No entry for `ev.tgid`: nothing is replaced.
                Ok(node) => drop(t.procs.insert(node)),
                Err(_) => {
                    self.lost.fetch_add(1, Relaxed);
                    return;
                }
            }
        }
        let Some(p) = t.procs.get_mut(&ev.tgid) else {
            return;
        };
        let fault = Fault {
            after_ns: ev.ns.saturating_sub(p.base_ns),
            mapping: ev.mapping,
            access: ev.access,
            page: ev.page,
        };
        p.push(fault);
        let rec = Record {
            tgid: ev.tgid,
            comm,
            since: p.since,
            fault,
        };
        let slot = (t.total % LOG_LEN as u64) as usize;
        if slot < t.log.len() {
            t.log[slot] = rec;
        } else {
            // Within the capacity reserved at load: cannot fail.
            let _ = t.log.push_within_capacity(rec);
        }
        t.total += 1;
    }

    /// Process `tgid` exec'd (in its context, atomic): its faults count from now, from none.
    pub(crate) fn exec(&self, tgid: i32) {
        let now = now_ns();
        let mut t = self.table.lock();
        if let Some(p) = t.procs.get_mut(&tgid) {
            *p = Proc::new(now, Since::Exec);
            return;
        }
        match RBTreeNode::new(tgid, Proc::new(now, Since::Exec), GFP_NOWAIT) {
            Ok(node) => drop(t.procs.insert(node)),
            Err(_) => {
                self.lost.fetch_add(1, Relaxed);
            }
        }
    }

    /// Process `tgid` is gone: a process reusing the pid starts from none.
    pub(crate) fn forget(&self, tgid: i32) {
        self.table.lock().procs.remove(&tgid);
    }

    /// The page's role in its mapping (as the report names the pages).
    fn role(&self, mapping: u8, page: u16) -> &'static str {
        let l = &self.layout;
        let page = u32::from(page);
        match mapping {
            MAP_VVAR => crate::report::vvar_page_role(l, "[vvar]", page),
            MAP_VCLOCK => crate::report::vvar_page_role(l, "[vvar_vclock]", page),
            MAP_VDSO => "text",
            _ => "time_page",
        }
    }

    /// Process `tgid`'s faults, for its report.
    pub(crate) fn report(&self, tgid: i32) -> ProcFaults<'_> {
        let t = self.table.lock();
        let p = t.procs.get(&tgid).map(|p| ProcFaults {
            log: self,
            since: p.since,
            used: p.used,
            dropped: p.dropped,
            faults: p.faults,
        });
        drop(t);
        p.unwrap_or(ProcFaults {
            log: self,
            since: Since::Fork,
            used: 0,
            dropped: 0,
            faults: [Fault::EMPTY; PER_PROCESS],
        })
    }

    /// The global log (`faults`), oldest first.
    pub(crate) fn show(&self, out: &SeqFile) -> Result {
        let mut copy = KVec::<Record>::with_capacity(LOG_LEN, GFP_KERNEL)?;
        let (total, lost) = {
            let t = self.table.lock();
            let n = t.log.len() as u64;
            for i in t.total - n.min(t.total)..t.total {
                if let Some(r) = t.log.get((i % LOG_LEN as u64) as usize) {
                    // Within the capacity reserved above: cannot fail.
                    let _ = copy.push_within_capacity(*r);
                }
            }
            (t.total, self.lost.load(Relaxed))
        };
        out.call_printf(format_args!(
            "# pid comm since +ms mapping page role access ({total} faults, the last {LOG_LEN} \
             kept; {lost} faults lost; traced: {})\n",
            Traced(self.vdso_traced)
        ));
        for r in copy.iter() {
            out.call_printf(format_args!(
                "{} {} {} {} {}\n",
                r.tgid,
                Comm(&r.comm),
                r.since.name(),
                Ms(r.fault.after_ns),
                Line(self, &r.fault)
            ));
        }
        Ok(())
    }
}

/// Which mappings' faults are logged.
struct Traced(bool);

impl fmt::Display for Traced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.0 {
            return write!(
                f,
                "{} (this arch has no page-fault tracepoint)",
                mapping_key(MAP_TIMEPAGE)
            );
        }
        for (i, m) in [MAP_VVAR, MAP_VCLOCK, MAP_VDSO, MAP_TIMEPAGE]
            .into_iter()
            .enumerate()
        {
            write!(f, "{}{}", if i == 0 { "" } else { " " }, mapping_key(m))?;
        }
        Ok(())
    }
}

/// A fault as `mapping page role access`.
struct Line<'a>(&'a FaultLog, &'a Fault);

impl fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let x = self.1;
        write!(
            f,
            "{} page{} {} {}",
            mapping_key(x.mapping),
            x.page,
            self.0.role(x.mapping, x.page),
            access_name(x.access)
        )
    }
}

fn mapping_key(m: u8) -> &'static str {
    match m {
        MAP_VVAR => "vvar",
        MAP_VCLOCK => "vvar_vclock",
        MAP_VDSO => "vdso",
        MAP_TIMEPAGE => "timepage",
        _ => "other",
    }
}

fn access_name(a: u8) -> &'static str {
    match a {
        ACCESS_EXEC => "exec",
        _ => "read",
    }
}

/// Nanoseconds as milliseconds with 3 decimals and a sign: `+1.234`.
struct Ms(u64);

impl fmt::Display for Ms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "+{}.{:03}", self.0 / 1_000_000, self.0 / 1000 % 1000)
    }
}

/// A NUL-padded comm.
struct Comm<'a>(&'a [u8; COMM_LEN]);

impl fmt::Display for Comm<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match ffi::str_until_nul(self.0) {
            "" => f.write_str("?"),
            s => f.write_str(s),
        }
    }
}

/// One process's faults, as its report shows them: `faults.since: exec`, then per page
/// `faults.<mapping>.page<N>: +T ms <access> (<role>)`, its later faults after commas.
pub(crate) struct ProcFaults<'a> {
    log: &'a FaultLog,
    since: Since,
    used: usize,
    dropped: u64,
    faults: [Fault; PER_PROCESS],
}

impl fmt::Display for ProcFaults<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let faults = &self.faults[..self.used];
        writeln!(f, "faults.traced: {}", Traced(self.log.vdso_traced))?;
        writeln!(f, "faults.since: {}", self.since.name())?;
        writeln!(f, "faults.count: {}", self.used as u64 + self.dropped)?;
        for (i, x) in faults.iter().enumerate() {
            let same = |y: &Fault| y.mapping == x.mapping && y.page == x.page;
            // Each page once, at its first fault, with its later ones.
            if faults[..i].iter().any(same) {
                continue;
            }
            write!(
                f,
                "faults.{}.page{}: {} ms {} ({})",
                mapping_key(x.mapping),
                x.page,
                Ms(x.after_ns),
                access_name(x.access),
                self.log.role(x.mapping, x.page)
            )?;
            for y in faults[i + 1..].iter().filter(|y| same(y)) {
                write!(f, ", {} ms {}", Ms(y.after_ns), access_name(y.access))?;
            }
            writeln!(f)?;
        }
        if self.dropped != 0 {
            writeln!(f, "faults.dropped: {}", self.dropped)?;
        }
        Ok(())
    }
}
