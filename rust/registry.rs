// SPDX-License-Identifier: GPL-2.0

//! The pid → debugfs file registry, fed by the lifecycle hooks.
//!
//! Tracepoint probes run in atomic context, so they only take a `struct pid` reference and queue
//! the change on the module's workqueue; the work item creates or removes the file (debugfs
//! sleeps). An add is applied only while the process is still alive, and a remove only to the
//! entry of the same `struct pid`: with events that may arrive late or out of order, a file
//! never outlives its process nor names another one after pid reuse.

use crate::{
    ffi::{
        DebugfsDir,
        DebugfsFile,
        PidRef,
        SeqShow,
        SeqWriter,
        TaskEvent,
        TaskEvents,
        WorkQueue, //
    },
    report::TaskView,
    timepage::TimeState,
    vsyscall,
};
use core::fmt::Write;
use kernel::{
    new_mutex,
    prelude::*,
    rbtree::RBTree,
    str::CString,
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        Arc, ArcBorrow, Mutex,
    },
};

/// What a file in `/sys/kernel/debug/vdso/` shows.
pub(crate) enum Node {
    /// `<tgid>`: one process's report.
    Task {
        /// The process (a counted `struct pid`: never another process after pid reuse).
        pid: PidRef,
        /// The vsyscall mode, shown in every report.
        vsyscall: vsyscall::Info,
    },
    /// `vsyscall`: the mode and its evidence.
    Vsyscall(vsyscall::Info),
    /// `summary`: counters of the registry and the clocksource.
    Summary(Arc<Stats>, Arc<TimeState>),
    /// `timepage`: the time page's statistics.
    TimePage(Arc<TimeState>),
}

impl SeqShow for Node {
    fn open(&self) -> Result {
        match self {
            // As /proc/<pid>/maps: the reader must be allowed to inspect the target.
            Node::Task { pid, .. } => pid.task().ok_or(ESRCH)?.may_inspect(),
            Node::Vsyscall(_) | Node::Summary(..) | Node::TimePage(_) => Ok(()),
        }
    }

    fn show(&self, out: &mut SeqWriter<'_>) -> Result {
        // A formatting error is a full seq_file buffer: seq_file retries with a larger one.
        let _ = match self {
            Node::Task { pid, vsyscall } => write!(out, "{}", TaskView::gather(pid, *vsyscall)?),
            Node::Vsyscall(info) => write!(out, "{info}"),
            Node::Summary(stats, time) => write!(out, "{}{}", &**stats, time.clocksource()),
            Node::TimePage(state) => write!(out, "{}", &**state),
        };
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
    /// Events lost because the work item could not be allocated.
    dropped: Atomic<usize>,
}

impl core::fmt::Display for Stats {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        writeln!(f, "tracked: {}", self.tracked.load(Relaxed))?;
        writeln!(f, "added: {}", self.added.load(Relaxed))?;
        writeln!(f, "removed: {}", self.removed.load(Relaxed))?;
        writeln!(f, "stale_events: {}", self.stale.load(Relaxed))?;
        writeln!(f, "dropped_events: {}", self.dropped.load(Relaxed))
    }
}

/// The registry: one debugfs file per live user process.
#[pin_data]
pub(crate) struct Registry {
    /// Files by tgid (initial pid namespace). Dropped before `dir`, which contains them.
    #[pin]
    files: Mutex<RBTree<i32, DebugfsFile<Node>>>,
    queue: WorkQueue,
    dir: DebugfsDir<Node>,
    stats: Arc<Stats>,
    vsyscall: vsyscall::Info,
}

impl Registry {
    /// Creates `/sys/kernel/debug/vdso/` and an empty registry.
    pub(crate) fn new(vsyscall: vsyscall::Info) -> Result<Arc<Self>> {
        let stats = Arc::new(
            Stats {
                tracked: Atomic::new(0),
                added: Atomic::new(0),
                removed: Atomic::new(0),
                stale: Atomic::new(0),
                dropped: Atomic::new(0),
            },
            GFP_KERNEL,
        )?;
        Arc::pin_init(
            try_pin_init!(Self {
                files <- new_mutex!(RBTree::new()),
                queue: WorkQueue::new()?,
                dir: DebugfsDir::new(c"vdso")?,
                stats,
                vsyscall,
            }),
            GFP_KERNEL,
        )
    }

    /// Creates a global file (`vsyscall`, `summary`) in the directory.
    pub(crate) fn global_file(&self, name: &CStr, node: Node) -> Result<DebugfsFile<Node>> {
        self.dir.file(name, KBox::new(node, GFP_KERNEL)?)
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
        if !pid.alive() {
            self.stats.stale.fetch_add(1, Relaxed);
            return Ok(());
        }
        let nr = pid.nr();
        let mut files = self.files.lock();
        if let Some(old) = files.get(&nr) {
            match old.data() {
                Node::Task { pid: old, .. } if old.same(&pid) || old.alive() => return Ok(()),
                // A dead process's entry whose remove has not run yet: the pid was reused.
                _ => {}
            }
        }
        let name = CString::try_from_fmt(fmt!("{nr}"))?;
        let node = KBox::new(
            Node::Task {
                pid,
                vsyscall: self.vsyscall,
            },
            GFP_KERNEL,
        )?;
        // A dead process's entry goes first, which frees the name. Removing sleeps: the mutex
        // allows it, and neither probes nor readers take it.
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

    /// Removes the file of `pid`, if it is that process's.
    fn remove(&self, pid: PidRef) {
        let nr = pid.nr();
        let mut files = self.files.lock();
        let ours = matches!(files.get(&nr).map(|f| f.data()), Some(Node::Task { pid: p, .. }) if p.same(&pid));
        if ours {
            let file = files.remove(&nr);
            drop(files);
            drop(file);
            self.stats.tracked.fetch_sub(1, Relaxed);
            self.stats.removed.fetch_add(1, Relaxed);
        }
    }

    /// Waits until every queued event has been applied.
    pub(crate) fn flush(&self) {
        self.queue.flush();
    }
}

impl TaskEvents for Registry {
    fn on_event(this: ArcBorrow<'_, Self>, ev: TaskEvent) {
        let reg: Arc<Self> = this.into();
        let stats = reg.stats.clone();
        let spawned = this.queue.queue().try_spawn(GFP_ATOMIC, move || match ev {
            TaskEvent::Add(pid) => {
                if reg.add(pid).is_err() {
                    reg.stats.dropped.fetch_add(1, Relaxed);
                }
            }
            TaskEvent::Remove(pid) => reg.remove(pid),
        });
        if spawned.is_err() {
            stats.dropped.fetch_add(1, Relaxed);
        }
    }
}
