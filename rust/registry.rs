// SPDX-License-Identifier: GPL-2.0

//! The pid → debugfs file registry, fed by the lifecycle hooks.
//!
//! Tracepoint probes run in atomic context, so they only take a `struct pid` reference and put
//! the event into a queue allocated at load (the probes never allocate); one work item drains it
//! and creates or removes files (debugfs sleeps). When the queue is full the event is not lost:
//! a flag asks the work item for a rescan of all processes (an add) or a sweep of all files (a
//! removal) instead. An add is applied only while the process is still alive, checked under the
//! registry's mutex, and a remove only to the entry of the same `struct pid`: with events that
//! may arrive late, out of order or coalesced, a file never outlives its process nor names
//! another one after pid reuse.
//!
//! A removal never waits for a reader: the files are debugfs "unsafe" files whose readers hold
//! their own reference to the file's data (`ffi::DebugfsFile`), so `debugfs_remove` waits only
//! for opens in progress, and a reader stalled inside `read()` (a page fault in its destination
//! buffer that is never served) holds up nothing but itself.

use crate::{
    attribution::{
        Attribution,
        Fallbacks, //
    },
    faults::FaultLog,
    ffi::{
        DebugfsDir,
        DebugfsFile,
        FaultEvent,
        MmIdentity,
        PidRef,
        SeqShow,
        TaskEvent,
        TaskEvents,
        WorkQueue, //
    },
    report::{self, TaskView},
    timepage::TimeState,
    vsyscall,
};
use kernel::{
    new_mutex,
    new_spinlock,
    prelude::*,
    rbtree::RBTree,
    seq_file::SeqFile,
    str::CString,
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        Arc,
        ArcBorrow,
        Mutex,
        SpinLock, //
    },
    workqueue::{
        impl_has_work,
        new_work,
        Work,
        WorkItem, //
    }, //
};

/// Events the probes can queue between two runs of the work item before falling back to a
/// rescan or sweep.
const QUEUE_LEN: usize = 1024;

/// What a file in `/sys/kernel/debug/vdso/` shows.
pub(crate) enum Node {
    /// `<tgid>`: one process's report.
    Task {
        /// The process (a counted `struct pid`: never another process after pid reuse).
        pid: PidRef,
        /// The vsyscall mode, shown in every report.
        vsyscall: vsyscall::Info,
        /// The process's time system calls.
        attribution: Arc<Attribution>,
        /// The process's faults on its vDSO mappings.
        faults: Arc<FaultLog>,
    },
    /// `vsyscall`: the mode and its evidence.
    Vsyscall(vsyscall::Info),
    /// `summary`: counters of the registry and the clocksource.
    Summary(Arc<Stats>, Arc<TimeState>),
    /// `timepage`: the time page's statistics.
    TimePage(Arc<TimeState>),
    /// `fallbacks`: every process's time system calls, with the reasons.
    Fallbacks(Arc<Attribution>),
    /// `clocksource_log`: the clocksource changes since load.
    ClocksourceLog(Arc<TimeState>),
    /// `layout`: this kernel's vDSO data structures, from its headers.
    Layout,
    /// `faults`: the last faults on every process's vDSO mappings.
    Faults(Arc<FaultLog>),
}

impl Node {
    fn task_pid(&self) -> Option<&PidRef> {
        match self {
            Node::Task { pid, .. } => Some(pid),
            _ => None,
        }
    }
}

// The content is formatted with `core::fmt` (`Display`) and printed with `seq_printf("%pA")`;
// seq_file retries with a larger buffer when it overflows.
impl SeqShow for Node {
    /// A report file is bound to the address space it was opened on.
    type Open = Option<MmIdentity>;

    fn open(&self) -> Result<Option<MmIdentity>> {
        match self {
            Node::Task { pid, .. } => report::open(pid).map(Some),
            Node::Vsyscall(_)
            | Node::Summary(..)
            | Node::TimePage(_)
            | Node::Fallbacks(_)
            | Node::ClocksourceLog(_)
            | Node::Layout
            | Node::Faults(_) => Ok(None),
        }
    }

    fn show(&self, open: &Option<MmIdentity>, out: &SeqFile) -> Result {
        match (self, open) {
            (
                Node::Task {
                    pid,
                    vsyscall,
                    attribution,
                    faults,
                },
                Some(bound),
            ) => {
                let view = TaskView::gather(pid, bound, *vsyscall)?;
                let calls = attribution.report(pid.nr_init_ns())?;
                let faults = faults.report(pid.nr_init_ns());
                out.call_printf(format_args!("{view}{calls}{faults}"));
            }
            (Node::Task { .. }, None) => return Err(EINVAL),
            (Node::Vsyscall(info), _) => out.call_printf(format_args!("{info}")),
            (Node::Summary(stats, time), _) => {
                out.call_printf(format_args!("{}{}", &**stats, time.clocksource()))
            }
            (Node::TimePage(state), _) => out.call_printf(format_args!("{}", &**state)),
            (Node::Fallbacks(a), _) => Fallbacks(a).show(out)?,
            (Node::ClocksourceLog(time), _) => time.show_log(out)?,
            (Node::Faults(log), _) => log.show(out)?,
            (Node::Layout, _) => {
                for e in crate::ffi::layout() {
                    out.call_printf(format_args!("{}:", e.name.to_str().unwrap_or("?")));
                    for v in e.values {
                        out.call_printf(format_args!(" {v}"));
                    }
                    out.call_printf(format_args!("\n"));
                }
            }
        }
        Ok(())
    }
}

/// Counters shown in `summary`.
pub(crate) struct Stats {
    /// Files currently present.
    tracked: Atomic<usize>,
    /// Files created since load.
    added: Atomic<usize>,
    /// Files removed since load.
    removed: Atomic<usize>,
    /// Adds skipped because the process was already gone.
    stale: Atomic<usize>,
    /// Events the probes reported (queued or overflowed).
    events: Atomic<usize>,
    /// Events applied by the work item (an overflowed one once its rescan or sweep is done):
    /// `events - events_applied` is the backlog, 0 once everything reported has been applied.
    applied: Atomic<usize>,
    /// Events that did not fit into the queue (a rescan or sweep made up for them).
    overflowed: Atomic<usize>,
    /// Adds that failed (an allocation in debugfs or the tree): the file is missing until the
    /// next rescan.
    add_failures: Atomic<usize>,
    /// Full rescans of the processes.
    rescans: Atomic<usize>,
    /// Full sweeps of the files.
    sweeps: Atomic<usize>,
}

impl Stats {
    fn new() -> Self {
        Self {
            tracked: Atomic::new(0),
            added: Atomic::new(0),
            removed: Atomic::new(0),
            stale: Atomic::new(0),
            events: Atomic::new(0),
            applied: Atomic::new(0),
            overflowed: Atomic::new(0),
            add_failures: Atomic::new(0),
            rescans: Atomic::new(0),
            sweeps: Atomic::new(0),
        }
    }
}

impl core::fmt::Display for Stats {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        writeln!(f, "tracked: {}", self.tracked.load(Relaxed))?;
        writeln!(f, "added: {}", self.added.load(Relaxed))?;
        writeln!(f, "removed: {}", self.removed.load(Relaxed))?;
        writeln!(f, "stale_events: {}", self.stale.load(Relaxed))?;
        // `events` first: a reader that sees `events_applied` equal to it knows that every
        // event reported before its read has been applied.
        let events = self.events.load(Relaxed);
        writeln!(f, "events: {events}")?;
        writeln!(f, "events_applied: {}", self.applied.load(Relaxed))?;
        writeln!(f, "overflowed_events: {}", self.overflowed.load(Relaxed))?;
        writeln!(f, "add_failures: {}", self.add_failures.load(Relaxed))?;
        writeln!(f, "rescans: {}", self.rescans.load(Relaxed))?;
        writeln!(f, "sweeps: {}", self.sweeps.load(Relaxed))
    }
}

/// The events queued by the probes since the work item last ran.
struct Pending {
    /// Allocated at load with room for [`QUEUE_LEN`] events; never grows.
    events: KVec<TaskEvent>,
    /// An add did not fit: scan all processes.
    rescan: bool,
    /// A removal did not fit: check every file's process.
    sweep: bool,
    /// Events that did not fit since the last run (applied by its rescan or sweep).
    overflowed: usize,
}

/// The registry: one debugfs file per live user process.
#[pin_data]
pub(crate) struct Registry {
    /// Files by tgid (initial pid namespace). Dropped before `dir`, which contains them.
    #[pin]
    files: Mutex<RBTree<i32, DebugfsFile<Node>>>,
    /// Filled by the probes (atomic context: a spinlock, no allocation).
    #[pin]
    pending: SpinLock<Pending>,
    /// The work item's own buffer, swapped with `pending.events` (same capacity).
    #[pin]
    batch: Mutex<KVec<TaskEvent>>,
    #[pin]
    work: Work<Registry>,
    /// Set at teardown: the work item stops creating anything.
    closing: Atomic<bool>,
    /// Runs `work`.
    events: WorkQueue,
    dir: DebugfsDir,
    stats: Arc<Stats>,
    vsyscall: vsyscall::Info,
    /// Told of every exec and exit: a process's counts start over.
    attribution: Arc<Attribution>,
    /// Told of every fault, exec and exit.
    faults: Arc<FaultLog>,
}

impl_has_work! {
    impl HasWork<Self> for Registry { self.work }
}

impl Registry {
    /// Creates `/sys/kernel/debug/vdso/` and an empty registry.
    pub(crate) fn new(
        vsyscall: vsyscall::Info,
        attribution: Arc<Attribution>,
        faults: Arc<FaultLog>,
    ) -> Result<Arc<Self>> {
        let stats = Arc::new(Stats::new(), GFP_KERNEL)?;
        let pending = Pending {
            events: KVec::with_capacity(QUEUE_LEN, GFP_KERNEL)?,
            rescan: false,
            sweep: false,
            overflowed: 0,
        };
        let batch = KVec::with_capacity(QUEUE_LEN, GFP_KERNEL)?;
        Arc::pin_init(
            try_pin_init!(Self {
                files <- new_mutex!(RBTree::new()),
                pending <- new_spinlock!(pending),
                batch <- new_mutex!(batch),
                work <- new_work!("vdso_probe::Registry::work"),
                closing: Atomic::new(false),
                events: WorkQueue::ordered(c"vdso_probe")?,
                dir: DebugfsDir::new(c"vdso")?,
                stats,
                vsyscall,
                attribution,
                faults,
            }),
            GFP_KERNEL,
        )
    }

    /// Creates a global file (`vsyscall`, `summary`, ...) in the directory.
    pub(crate) fn global_file(&self, name: &CStr, node: Node) -> Result<DebugfsFile<Node>> {
        self.other_file(name, Arc::new(node, GFP_KERNEL)?)
    }

    /// Creates a file of another kind in the directory.
    pub(crate) fn other_file<T: SeqShow>(
        &self,
        name: &CStr,
        data: Arc<T>,
    ) -> Result<DebugfsFile<T>> {
        self.dir.file(name, data)
    }

    /// The registry's counters.
    pub(crate) fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// The vsyscall mode detected at load.
    pub(crate) fn vsyscall(&self) -> vsyscall::Info {
        self.vsyscall
    }

    /// Adds a file for every user process that exists now (process context).
    pub(crate) fn scan(&self) -> Result {
        let mut nr = 1;
        while let Some(pid) = PidRef::next_tgid(&mut nr) {
            self.add(pid)?;
            nr += 1;
        }
        Ok(())
    }

    /// Creates the file of `pid` unless the process is gone or already has it.
    fn add(&self, pid: PidRef) -> Result {
        let nr = pid.nr_init_ns();
        let mut files = self.files.lock();
        // Under the mutex: the exit probe (registered before the fork probe and the scan) queues
        // a removal only after `signal->live` has reached 0, and the removal takes this mutex,
        // so a process seen alive here is removed later.
        if !pid.alive() {
            self.stats.stale.fetch_add(1, Relaxed);
            return Ok(());
        }
        if let Some(old) = files.get(&nr).and_then(|f| f.data().task_pid()) {
            if old.ptr_eq(&pid) || old.alive() {
                return Ok(());
            }
            // A dead process's entry whose removal has not run yet: the pid was reused.
        }
        let name = CString::try_from_fmt(fmt!("{nr}"))?;
        let node = Arc::new(
            Node::Task {
                pid,
                vsyscall: self.vsyscall,
                attribution: self.attribution.clone(),
                faults: self.faults.clone(),
            },
            GFP_KERNEL,
        )?;
        // A dead process's entry goes first, which frees the name. Removing sleeps (briefly:
        // only opens in progress are waited for); the mutex allows it, and neither probes nor
        // readers take it.
        if let Some(stale) = files.remove(&nr) {
            drop(stale);
            self.stats.tracked.fetch_sub(1, Relaxed);
            self.stats.removed.fetch_add(1, Relaxed);
        }
        let file = self.dir.file(&name, node)?;
        files.try_create_and_insert(nr, file, GFP_KERNEL)?;
        self.stats.tracked.fetch_add(1, Relaxed);
        self.stats.added.fetch_add(1, Relaxed);
        Ok(())
    }

    /// `add` from the work item: a failure is counted, the next rescan retries.
    fn add_counted(&self, pid: PidRef) {
        if self.add(pid).is_err() {
            self.stats.add_failures.fetch_add(1, Relaxed);
        }
    }

    /// Removes the file of `nr` if `is_gone` says it is to go; outside the mutex.
    fn remove_if(&self, nr: i32, is_gone: impl Fn(&PidRef) -> bool) {
        let mut files = self.files.lock();
        let gone = files
            .get(&nr)
            .and_then(|f| f.data().task_pid())
            .is_some_and(is_gone);
        if gone {
            let file = files.remove(&nr);
            drop(files);
            drop(file);
            self.stats.tracked.fetch_sub(1, Relaxed);
            self.stats.removed.fetch_add(1, Relaxed);
        }
    }

    /// Removes the file of `pid`, if it is that process's.
    fn remove(&self, pid: &PidRef) {
        self.remove_if(pid.nr_init_ns(), |p| p.ptr_eq(pid));
    }

    /// Removes every file whose process is gone.
    fn sweep(&self) {
        self.stats.sweeps.fetch_add(1, Relaxed);
        let mut dead = KVec::new();
        {
            let files = self.files.lock();
            for (nr, f) in files.iter() {
                let gone = f.data().task_pid().is_some_and(|p| !p.alive());
                if gone && dead.push(*nr, GFP_KERNEL).is_err() {
                    break;
                }
            }
        }
        for nr in dead.drain_all() {
            self.remove_if(nr, |p| !p.alive());
        }
    }

    /// Applies what the probes queued.
    fn drain(&self) {
        let mut batch = self.batch.lock();
        let (rescan, sweep, overflowed) = {
            let mut p = self.pending.lock();
            core::mem::swap(&mut p.events, &mut *batch);
            (
                core::mem::take(&mut p.rescan),
                core::mem::take(&mut p.sweep),
                core::mem::take(&mut p.overflowed),
            )
        };
        for ev in batch.drain_all() {
            match ev {
                TaskEvent::Add(pid) => self.add_counted(pid),
                TaskEvent::Remove(pid) => self.remove(&pid),
                // Never queued (`on_event`).
                TaskEvent::Exec(_) => {}
            }
            self.stats.applied.fetch_add(1, Relaxed);
        }
        drop(batch);
        if sweep {
            self.sweep();
        }
        if rescan {
            self.stats.rescans.fetch_add(1, Relaxed);
            if self.scan().is_err() {
                self.stats.add_failures.fetch_add(1, Relaxed);
            }
        }
        self.stats.applied.fetch_add(overflowed, Relaxed);
    }

    /// Stops the registry's background work: afterwards no work item runs or holds a reference.
    /// Call after the hooks are gone.
    pub(crate) fn shutdown(&self) {
        self.closing.store(true, Relaxed);
        self.events.flush();
    }
}

impl WorkItem for Registry {
    type Pointer = Arc<Registry>;

    fn run(this: Arc<Registry>) {
        if !this.closing.load(Relaxed) {
            this.drain();
        }
    }
}

impl TaskEvents for Registry {
    fn on_event(this: ArcBorrow<'_, Self>, ev: TaskEvent) {
        // The counts of a process's old image, or of a process that is gone, go now: a new
        // image, or a process that reuses the pid, starts from 0.
        match &ev {
            TaskEvent::Exec(pid) => {
                this.attribution.forget(pid.nr_init_ns());
                this.faults.exec(pid.nr_init_ns());
                return;
            }
            TaskEvent::Remove(pid) => {
                this.attribution.forget(pid.nr_init_ns());
                this.faults.forget(pid.nr_init_ns());
            }
            TaskEvent::Add(_) => {}
        }
        {
            let mut p = this.pending.lock();
            this.stats.events.fetch_add(1, Relaxed);
            if let Err(full) = p.events.push_within_capacity(ev) {
                match full.0 {
                    TaskEvent::Add(_) => p.rescan = true,
                    TaskEvent::Remove(_) | TaskEvent::Exec(_) => p.sweep = true,
                }
                p.overflowed += 1;
                this.stats.overflowed.fetch_add(1, Relaxed);
                // The event's pid reference is put here: `put_pid` does not sleep.
            }
        }
        let reg: Arc<Self> = this.into();
        // Already queued: the run that is pending will see this event too.
        let _ = this.events.queue().enqueue(reg);
    }

    fn on_fault(this: ArcBorrow<'_, Self>, ev: &FaultEvent) {
        this.faults.record(ev);
    }
}
