// SPDX-License-Identifier: GPL-2.0

//! The FFI layer: the only file that calls `bindings::` or the C shim (`shim.c`).
//!
//! Each C object the module holds is an owning type here whose `Drop` releases it; the rest of
//! the module only sees safe methods and plain data.

use core::{
    ffi::c_void,
    fmt,
    marker::PhantomData,
    ptr::NonNull, //
};
use kernel::{
    bindings,
    error::{
        from_err_ptr,
        to_result, //
    },
    mm::virt::{
        VmaNew,
        VmaRef, //
    },
    page::Page,
    prelude::*,
    sync::{
        Arc,
        ArcBorrow, //
    },
    workqueue::Queue,
};

/// The UTF-8 text of a NUL-padded C string buffer (`comm`, names), `?` if it is not UTF-8.
pub(crate) fn str_until_nul(buf: &[u8]) -> &str {
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    core::str::from_utf8(&buf[..len]).unwrap_or("?")
}

/// Length of `task_struct::comm`.
pub(crate) const COMM_LEN: usize = 16;

/// Mirrors `struct vp_vma` (`shim.h`).
#[repr(C)]
struct RawVma {
    start: usize,
    end: usize,
    pgoff: usize,
    name: *const c_char,
    flags: u32,
    has_file: bool,
}

/// Mirrors `struct vp_mm` (`shim.h`).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct MmInfo {
    /// `mm->context.vdso`.
    pub(crate) vdso_base: usize,
    /// `mm->context.vdso_image->size`.
    pub(crate) image_size: usize,
    /// `AT_SYSINFO_EHDR` from `mm->saved_auxv`.
    pub(crate) auxv_sysinfo_ehdr: usize,
    /// `mm->map_count`.
    pub(crate) map_count: i32,
    /// `e_machine` of the mapped vDSO image.
    pub(crate) image_machine: u16,
    /// `EI_CLASS` of the mapped vDSO image, 0 when there is no image.
    pub(crate) image_class: u8,
    /// Whether `saved_auxv` has an `AT_SYSINFO_EHDR` entry.
    pub(crate) auxv_has_sysinfo_ehdr: bool,
    /// `MM_CONTEXT_HAS_VSYSCALL`: the mm may use the vsyscall page.
    pub(crate) has_vsyscall: bool,
}

/// Mirrors `struct vp_timens` (`shim.h`).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct Timens {
    /// `CLOCK_MONOTONIC` offset, seconds.
    pub(crate) mono_sec: i64,
    /// `CLOCK_MONOTONIC` offset, nanoseconds.
    pub(crate) mono_nsec: i64,
    /// `CLOCK_BOOTTIME` offset, seconds.
    pub(crate) boot_sec: i64,
    /// `CLOCK_BOOTTIME` offset, nanoseconds.
    pub(crate) boot_nsec: i64,
    /// Page frame of the namespace's vvar page (0 in the root namespace).
    pub(crate) vvar_pfn: usize,
    /// Namespace inode number, as in `/proc/<pid>/ns/time`.
    pub(crate) inum: u32,
    /// Whether this is the initial time namespace.
    pub(crate) is_root: bool,
}

/// Mirrors `struct vp_vvar_layout` (`shim.h`): page indices of the `[vvar]` mapping.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct VvarLayout {
    /// `VDSO_NR_PAGES`.
    pub(crate) nr_pages: u32,
    /// `VDSO_TIME_PAGE_OFFSET`.
    pub(crate) time: u32,
    /// `VDSO_TIMENS_PAGE_OFFSET`.
    pub(crate) timens: u32,
    /// `VDSO_RNG_PAGE_OFFSET`.
    pub(crate) rng: u32,
    /// `VDSO_ARCH_PAGES_START`.
    pub(crate) arch_start: u32,
    /// `VDSO_ARCH_PAGES_END`.
    pub(crate) arch_end: u32,
    /// `VDSO_NR_VCLOCK_PAGES`: pages of `[vvar_vclock]`.
    pub(crate) vclock_pages: u32,
    /// `VDSO_PAGE_PVCLOCK_OFFSET`.
    pub(crate) pvclock: u32,
    /// `VDSO_PAGE_HVCLOCK_OFFSET`.
    pub(crate) hvclock: u32,
}

type FaultFn =
    unsafe extern "C" fn(*mut c_void, *mut bindings::vm_area_struct, usize, usize) -> u32;
type VmaFn = unsafe extern "C" fn(*mut c_void);
type EventFn = unsafe extern "C" fn(*mut c_void, *mut bindings::task_struct, c_int);
type OpenFn = unsafe extern "C" fn(*mut c_void) -> c_int;
type ShowFn = unsafe extern "C" fn(*mut bindings::seq_file, *mut c_void) -> c_int;

const EV_ADD: c_int = 0;
const EV_REMOVE: c_int = 1;

// Only pointers to these kernel structs cross the boundary; Rust never reads them through these
// prototypes, so bindgen's zero-sized placeholders inside `task_struct` do not matter.
#[expect(improper_ctypes)]
extern "C" {
    fn vp_task_tgid_pid(t: *mut bindings::task_struct) -> *mut bindings::pid;
    fn vp_pid_task(pid: *mut bindings::pid) -> *mut bindings::task_struct;
    fn vp_put_task(t: *mut bindings::task_struct);
    fn vp_put_pid(pid: *mut bindings::pid);
    fn vp_pid_nr(pid: *mut bindings::pid) -> c_int;
    fn vp_task_is_kthread(t: *mut bindings::task_struct) -> bool;
    fn vp_pid_alive(pid: *mut bindings::pid) -> bool;
    fn vp_next_tgid(nr: *mut c_int) -> *mut bindings::pid;
    fn vp_task_comm(t: *mut bindings::task_struct, out: *mut u8);
    fn vp_may_inspect(t: *mut bindings::task_struct) -> c_int;
    fn vp_task_timens(t: *mut bindings::task_struct, out: *mut Timens) -> c_int;
    fn vp_task_addr32(t: *mut bindings::task_struct) -> bool;
    fn vp_task_mm(t: *mut bindings::task_struct) -> *mut bindings::mm_struct;
    fn vp_mmput(mm: *mut bindings::mm_struct);
    fn vp_mmap_read_lock(mm: *mut bindings::mm_struct) -> c_int;
    fn vp_mmap_read_unlock(mm: *mut bindings::mm_struct);
    fn vp_mm_info(mm: *mut bindings::mm_struct, out: *mut MmInfo);
    fn vp_user_pfn(mm: *mut bindings::mm_struct, addr: usize) -> usize;
    fn vp_vma_lookup(mm: *mut bindings::mm_struct, addr: usize) -> *mut bindings::vm_area_struct;
    fn vp_vma_next(mm: *mut bindings::mm_struct, addr: usize) -> *mut bindings::vm_area_struct;
    fn vp_vma_info(vma: *mut bindings::vm_area_struct, out: *mut RawVma);
    fn vp_vvar_layout(out: *mut VvarLayout);
    fn vp_vsyscall_pte_user() -> bool;
    fn vp_read_cmdline(buf: *mut u8, len: usize) -> isize;
    fn vp_hooks_register(f: EventFn, data: *mut c_void) -> c_int;
    fn vp_hooks_unregister();
    fn vp_debugfs_set_ops(open: OpenFn, show: ShowFn);
    fn vp_debugfs_file(
        name: *const c_char,
        parent: *mut bindings::dentry,
        data: *mut c_void,
    ) -> *mut bindings::dentry;
    fn vp_seq_write(m: *mut bindings::seq_file, s: *const u8, len: usize) -> c_int;
    fn vp_timepage_start(page: *mut bindings::page) -> c_int;
    fn vp_timepage_stop();
    fn vp_timepage_stats(out: *mut TimePageStats);
    fn vp_vm_set_ops(fault: FaultFn, open: VmaFn, close: VmaFn);
    fn vp_vm_install(vma: *mut bindings::vm_area_struct, data: *mut c_void);
    fn vp_vma_pgoff(vma: *mut bindings::vm_area_struct) -> usize;
    fn vp_alloc_wq() -> *mut bindings::workqueue_struct;
    fn vp_flush_wq(wq: *mut bindings::workqueue_struct);
}

// ------------------------------------------------------------------ pids and tasks

/// A counted reference to a `struct pid` (a thread group id). It keeps naming the same process
/// after that process exits, so a reused pid number never shows another process.
///
/// # Invariants
///
/// `self.0` is a valid `struct pid` on which this object owns one reference.
pub(crate) struct PidRef(NonNull<bindings::pid>);

// SAFETY: a `struct pid` reference may be used and released from any thread.
unsafe impl Send for PidRef {}
// SAFETY: all methods take `&self` and only call thread-safe pid functions.
unsafe impl Sync for PidRef {}

impl PidRef {
    /// The thread group leader with the smallest tgid `>= *nr` (initial pid namespace), skipping
    /// kernel threads; `*nr` is set to its tgid.
    pub(crate) fn next_tgid(nr: &mut i32) -> Option<Self> {
        // SAFETY: `nr` is a valid `int`; the result is NULL or a pid on which we own a reference.
        let p = unsafe { vp_next_tgid(nr) };
        // INVARIANT: `vp_next_tgid` took a reference for us.
        NonNull::new(p).map(Self)
    }

    /// The pid number in the initial pid namespace.
    pub(crate) fn nr(&self) -> i32 {
        // SAFETY: `self.0` is valid by the type invariant.
        unsafe { vp_pid_nr(self.0.as_ptr()) }
    }

    /// Whether this is the same `struct pid` as `other`.
    pub(crate) fn same(&self, other: &PidRef) -> bool {
        self.0 == other.0
    }

    /// Whether a user process with this pid exists and has a thread that has not exited.
    pub(crate) fn alive(&self) -> bool {
        // SAFETY: `self.0` is valid by the type invariant.
        unsafe { vp_pid_alive(self.0.as_ptr()) }
    }

    /// The process's thread group leader, if it still exists.
    pub(crate) fn task(&self) -> Option<TaskRef> {
        // SAFETY: `self.0` is valid by the type invariant.
        let t = unsafe { vp_pid_task(self.0.as_ptr()) };
        // INVARIANT: `get_pid_task` returns NULL or a task with a reference taken for us.
        NonNull::new(t).map(TaskRef)
    }
}

impl Drop for PidRef {
    fn drop(&mut self) {
        // SAFETY: we own one reference (type invariant) and give it back exactly once.
        unsafe { vp_put_pid(self.0.as_ptr()) };
    }
}

/// A counted reference to a `task_struct`.
///
/// # Invariants
///
/// `self.0` is a valid task on which this object owns one reference.
pub(crate) struct TaskRef(NonNull<bindings::task_struct>);

impl TaskRef {
    /// The task's `comm`, NUL-padded.
    pub(crate) fn comm(&self) -> [u8; COMM_LEN] {
        let mut out = [0u8; COMM_LEN];
        // SAFETY: `self.0` is valid (invariant); `out` has the `TASK_COMM_LEN` bytes written.
        unsafe { vp_task_comm(self.0.as_ptr(), out.as_mut_ptr()) };
        out
    }

    /// Whether the task is a kernel thread.
    pub(crate) fn is_kthread(&self) -> bool {
        // SAFETY: `self.0` is valid by the type invariant.
        unsafe { vp_task_is_kthread(self.0.as_ptr()) }
    }

    /// Whether the task has `TIF_ADDR32` (a 32-bit address space: ia32).
    pub(crate) fn addr32(&self) -> bool {
        // SAFETY: `self.0` is valid by the type invariant.
        unsafe { vp_task_addr32(self.0.as_ptr()) }
    }

    /// `Ok` when the current task may inspect this one as `/proc/<pid>/maps` requires
    /// (`PTRACE_MODE_READ_FSCREDS`), `EACCES` otherwise.
    pub(crate) fn may_inspect(&self) -> Result {
        // SAFETY: `self.0` is valid by the type invariant; we run in process context.
        to_result(unsafe { vp_may_inspect(self.0.as_ptr()) })
    }

    /// The task's time namespace (`ESRCH` once it has exited).
    pub(crate) fn timens(&self) -> Result<Timens> {
        let mut out = Timens::default();
        // SAFETY: `self.0` is valid (invariant), `out` is a writable `struct vp_timens`.
        to_result(unsafe { vp_task_timens(self.0.as_ptr(), &mut out) })?;
        Ok(out)
    }

    /// The task's address space, or `None` for kernel threads and exited tasks.
    pub(crate) fn mm(&self) -> Option<MmRef> {
        // SAFETY: `self.0` is valid by the type invariant.
        let mm = unsafe { vp_task_mm(self.0.as_ptr()) };
        // INVARIANT: `get_task_mm` returns NULL or an mm with `mm_users` raised for us.
        NonNull::new(mm).map(MmRef)
    }
}

impl Drop for TaskRef {
    fn drop(&mut self) {
        // SAFETY: we own one reference (type invariant) and give it back exactly once.
        unsafe { vp_put_task(self.0.as_ptr()) };
    }
}

// ------------------------------------------------------------------ mm and VMAs

/// A counted user of an address space (`mm_users`), released with `mmput`.
///
/// # Invariants
///
/// `self.0` is a valid `mm_struct` on which this object holds one `mm_users` reference.
pub(crate) struct MmRef(NonNull<bindings::mm_struct>);

impl MmRef {
    /// Facts about the address space that need no lock.
    pub(crate) fn info(&self) -> MmInfo {
        let mut out = MmInfo::default();
        // SAFETY: `self.0` is valid (invariant); `out` is a writable `struct vp_mm`.
        unsafe { vp_mm_info(self.0.as_ptr(), &mut out) };
        out
    }

    /// Takes the mmap lock for reading (`EINTR` if a fatal signal arrives while waiting).
    pub(crate) fn read_lock(&self) -> Result<MmReadGuard<'_>> {
        // SAFETY: `self.0` is valid (invariant); process context, no other mm lock held.
        to_result(unsafe { vp_mmap_read_lock(self.0.as_ptr()) })?;
        // INVARIANT: the lock was just taken.
        Ok(MmReadGuard { mm: self })
    }
}

impl Drop for MmRef {
    fn drop(&mut self) {
        // SAFETY: we hold one `mm_users` reference (invariant) and drop it exactly once, in
        // process context (mmput may sleep).
        unsafe { vp_mmput(self.0.as_ptr()) };
    }
}

/// The mmap read lock of an [`MmRef`].
///
/// # Invariants
///
/// The mmap lock of `self.mm` is held for reading until this guard is dropped.
pub(crate) struct MmReadGuard<'a> {
    mm: &'a MmRef,
}

/// A copy of one VMA's description, taken under the mmap lock.
#[derive(Clone, Copy, Default)]
pub(crate) struct Vma {
    /// First address.
    pub(crate) start: usize,
    /// One past the last address.
    pub(crate) end: usize,
    /// `VP_VM_*` bits (see [`VmFlag`]).
    pub(crate) flags: u32,
    /// Whether the VMA maps a file.
    pub(crate) has_file: bool,
    name: [u8; 32],
}

/// The decoded `vm_flags` bits of a [`Vma`] (values of `VP_VM_*` in `shim.h`).
#[derive(Clone, Copy)]
#[repr(u32)]
pub(crate) enum VmFlag {
    /// `VM_READ`.
    Read = 1 << 0,
    /// `VM_WRITE`.
    Write = 1 << 1,
    /// `VM_EXEC`.
    Exec = 1 << 2,
    /// `VM_SHARED`.
    Shared = 1 << 3,
    /// `VM_IO`.
    Io = 1 << 4,
    /// `VM_PFNMAP`.
    PfnMap = 1 << 5,
    /// `VM_MIXEDMAP`.
    MixedMap = 1 << 6,
    /// `VM_DONTEXPAND`.
    DontExpand = 1 << 7,
    /// `VM_DONTDUMP`.
    DontDump = 1 << 8,
    /// `VM_SEALED` (mseal).
    Sealed = 1 << 9,
    /// `VM_MAYWRITE`.
    MayWrite = 1 << 10,
    /// `VM_MAYEXEC`.
    MayExec = 1 << 11,
}

impl Vma {
    /// The special-mapping name (`vm_ops->name`), e.g. `[vdso]`; empty when there is none.
    pub(crate) fn name(&self) -> &str {
        str_until_nul(&self.name)
    }

    /// Whether `flag` is set.
    pub(crate) fn has(&self, flag: VmFlag) -> bool {
        self.flags & flag as u32 != 0
    }

    /// Size in pages.
    pub(crate) fn pages(&self) -> usize {
        (self.end - self.start) >> bindings::PAGE_SHIFT
    }
}

impl MmReadGuard<'_> {
    fn describe(vma: *mut bindings::vm_area_struct) -> Option<Vma> {
        if vma.is_null() {
            return None;
        }
        let mut raw = RawVma {
            start: 0,
            end: 0,
            pgoff: 0,
            name: core::ptr::null(),
            flags: 0,
            has_file: false,
        };
        // SAFETY: `vma` is a VMA of the locked mm (it came from a lookup under this guard) and
        // stays valid while the lock is held; `raw` is a writable `struct vp_vma`.
        unsafe { vp_vma_info(vma, &mut raw) };
        let mut out = Vma {
            start: raw.start,
            end: raw.end,
            flags: raw.flags,
            has_file: raw.has_file,
            name: [0; 32],
        };
        if !raw.name.is_null() {
            // SAFETY: `vm_ops->name` returns a NUL-terminated string that lives at least as long
            // as the VMA, which the lock keeps.
            let name = unsafe { CStr::from_char_ptr(raw.name) }.to_bytes();
            let n = name.len().min(out.name.len() - 1);
            out.name[..n].copy_from_slice(&name[..n]);
        }
        Some(out)
    }

    /// The VMA containing `addr`.
    pub(crate) fn vma_at(&self, addr: usize) -> Option<Vma> {
        // SAFETY: the mmap lock is held (invariant), as `vma_lookup` requires.
        Self::describe(unsafe { vp_vma_lookup(self.mm.0.as_ptr(), addr) })
    }

    /// The first VMA that ends above `addr`.
    pub(crate) fn vma_after(&self, addr: usize) -> Option<Vma> {
        // SAFETY: the mmap lock is held (invariant), as `find_vma` requires.
        Self::describe(unsafe { vp_vma_next(self.mm.0.as_ptr(), addr) })
    }

    /// The page frame mapped at `addr`, `None` when no page is populated there.
    pub(crate) fn pfn(&self, addr: usize) -> Option<usize> {
        // SAFETY: the mmap lock is held (invariant), so the upper page-table levels stay; the
        // shim walks the PTE level under RCU.
        let pfn = unsafe { vp_user_pfn(self.mm.0.as_ptr(), addr) };
        (pfn != 0).then_some(pfn)
    }
}

impl Drop for MmReadGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: the lock is held for reading (invariant) and released exactly once.
        unsafe { vp_mmap_read_unlock(self.mm.0.as_ptr()) };
    }
}

/// The page indices of the `[vvar]` mapping in this kernel.
pub(crate) fn vvar_layout() -> VvarLayout {
    let mut out = VvarLayout::default();
    // SAFETY: `out` is a writable `struct vp_vvar_layout`.
    unsafe { vp_vvar_layout(&mut out) };
    out
}

// ------------------------------------------------------------------ vsyscall

/// Whether the fixmap vsyscall page has a user-accessible PTE (only `vsyscall=emulate`).
pub(crate) fn vsyscall_pte_user() -> bool {
    // SAFETY: no preconditions: `lookup_address` walks `init_mm`, whose upper levels stay.
    unsafe { vp_vsyscall_pte_user() }
}

/// Reads `/proc/cmdline` into `buf`; returns the bytes read.
pub(crate) fn read_cmdline(buf: &mut [u8]) -> Result<usize> {
    // SAFETY: `buf` is writable for `buf.len()` bytes; process context.
    let n = unsafe { vp_read_cmdline(buf.as_mut_ptr(), buf.len()) };
    if n < 0 {
        return Err(Error::from_errno(n as c_int));
    }
    Ok(n as usize)
}

// ------------------------------------------------------------------ lifecycle hooks

/// What the lifecycle tracepoints report.
pub(crate) enum TaskEvent {
    /// A process appeared (fork of a thread group leader, or the first exec of a kernel-spawned
    /// user process).
    Add(PidRef),
    /// A process's last thread exited.
    Remove(PidRef),
}

/// Receives [`TaskEvent`]s. Called from tracepoint probes: must not sleep.
pub(crate) trait TaskEvents: Send + Sync {
    /// Handles one event, in atomic context.
    fn on_event(this: ArcBorrow<'_, Self>, ev: TaskEvent);
}

/// The registered `sched_process_{fork,exec,exit}` probes; unregistered on drop.
///
/// # Invariants
///
/// The probes are registered with `Arc::into_raw(self.data)`'s reference as their data.
pub(crate) struct Hooks<T: TaskEvents + 'static> {
    data: *const T,
}

// SAFETY: the only state is a pointer to a `T: Send + Sync` held through an `Arc`.
unsafe impl<T: TaskEvents> Send for Hooks<T> {}
// SAFETY: as above, and `Hooks` has no `&self` methods.
unsafe impl<T: TaskEvents> Sync for Hooks<T> {}

/// The probe callback: turns a task into a [`TaskEvent`] for `T`.
///
/// # Safety
///
/// `data` must be the `Arc::into_raw` pointer of a registered [`Hooks<T>`] and `task` a live task.
unsafe extern "C" fn on_task_event<T: TaskEvents + 'static>(
    data: *mut c_void,
    task: *mut bindings::task_struct,
    ev: c_int,
) {
    // SAFETY: `data` is the pointer `Hooks::register` got from `Arc::into_raw`, which stays valid
    // until `Hooks::drop` has unregistered the probes and waited for running ones.
    let this = unsafe { ArcBorrow::from_raw(data.cast::<T>().cast_const()) };
    // SAFETY: tracepoints pass a live task.
    let pid = unsafe { vp_task_tgid_pid(task) };
    // INVARIANT: `get_task_pid` returns NULL or a pid with a reference taken for us.
    let Some(pid) = NonNull::new(pid).map(PidRef) else {
        return;
    };
    match ev {
        EV_ADD => T::on_event(this, TaskEvent::Add(pid)),
        EV_REMOVE => T::on_event(this, TaskEvent::Remove(pid)),
        _ => {}
    }
}

impl<T: TaskEvents + 'static> Hooks<T> {
    /// Attaches the probes; they call `T::on_event(target, ..)` until dropped.
    pub(crate) fn register(target: Arc<T>) -> Result<Self> {
        let data = Arc::into_raw(target);
        // SAFETY: `on_task_event::<T>` matches `vp_task_event_fn` and expects exactly this `data`.
        let ret = unsafe { vp_hooks_register(on_task_event::<T>, data.cast_mut().cast()) };
        if ret != 0 {
            // SAFETY: `data` came from `Arc::into_raw` above and no probe is registered.
            drop(unsafe { Arc::from_raw(data) });
            return Err(Error::from_errno(ret));
        }
        // INVARIANT: registered with `data` just now.
        Ok(Self { data })
    }
}

impl<T: TaskEvents + 'static> Drop for Hooks<T> {
    fn drop(&mut self) {
        // SAFETY: the probes are registered (invariant); this waits until none is running.
        unsafe { vp_hooks_unregister() };
        // SAFETY: `self.data` came from `Arc::into_raw` and no probe can use it any more.
        drop(unsafe { Arc::from_raw(self.data) });
    }
}

// ------------------------------------------------------------------ workqueue

/// A module-owned workqueue (`destroy_workqueue` on drop waits for queued work).
///
/// # Invariants
///
/// `self.0` is a workqueue allocated by `vp_alloc_wq` and not yet destroyed.
pub(crate) struct WorkQueue(NonNull<bindings::workqueue_struct>);

// SAFETY: workqueues are used from any context and thread.
unsafe impl Send for WorkQueue {}
// SAFETY: as above.
unsafe impl Sync for WorkQueue {}

impl WorkQueue {
    /// Allocates an ordered, unbound, high-priority workqueue.
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: no preconditions.
        let wq = unsafe { vp_alloc_wq() };
        NonNull::new(wq).map(Self).ok_or(ENOMEM)
    }

    /// The queue, for `enqueue`/`try_spawn`.
    pub(crate) fn queue(&self) -> &Queue {
        // SAFETY: `self.0` is a live workqueue (invariant) that outlives the returned borrow.
        unsafe { Queue::from_raw(self.0.as_ptr()) }
    }

    /// Waits until every work item queued so far has run.
    pub(crate) fn flush(&self) {
        // SAFETY: `self.0` is live (invariant); process context.
        unsafe { vp_flush_wq(self.0.as_ptr()) };
    }
}

impl Drop for WorkQueue {
    fn drop(&mut self) {
        // SAFETY: `self.0` is live (invariant) and destroyed exactly once.
        unsafe { bindings::destroy_workqueue(self.0.as_ptr()) };
    }
}

// ------------------------------------------------------------------ debugfs

/// Output of a debugfs file (a `seq_file`).
pub(crate) struct SeqWriter<'a> {
    m: *mut bindings::seq_file,
    _p: PhantomData<&'a mut bindings::seq_file>,
}

impl fmt::Write for SeqWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // SAFETY: `self.m` is the `seq_file` of the `show` call this writer was made for.
        match unsafe { vp_seq_write(self.m, s.as_ptr(), s.len()) } {
            0 => Ok(()),
            // Overflow: seq_file retries `show` with a bigger buffer.
            _ => Err(fmt::Error),
        }
    }
}

/// The content of the files of a [`DebugfsDir`].
pub(crate) trait SeqShow: Send + Sync + Sized + 'static {
    /// Decides whether the current task may open the file (process context).
    fn open(&self) -> Result;
    /// Writes the file's content, computed now (process context, may sleep).
    fn show(&self, out: &mut SeqWriter<'_>) -> Result;
}

/// `open` of the files of a [`DebugfsDir<T>`].
///
/// # Safety
///
/// `data` must be the private data of a live file created by [`DebugfsDir::file`] for `T`.
unsafe extern "C" fn seq_open<T: SeqShow>(data: *mut c_void) -> c_int {
    // SAFETY: `data` is the `i_private` of a file created by `DebugfsDir::<T>::file`: a live `T`
    // that debugfs keeps alive (proxied fops) during this call.
    let this = unsafe { &*data.cast::<T>() };
    match this.open() {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// `show` of the files of a [`DebugfsDir<T>`].
///
/// # Safety
///
/// `m` must be the `seq_file` of the current read and `data` as for [`seq_open`].
unsafe extern "C" fn seq_show<T: SeqShow>(m: *mut bindings::seq_file, data: *mut c_void) -> c_int {
    // SAFETY: as in `seq_open`: `data` is the file's live `T` while debugfs runs our fops.
    let this = unsafe { &*data.cast::<T>() };
    let mut out = SeqWriter { m, _p: PhantomData };
    match this.show(&mut out) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// A debugfs directory whose files all show a `T`; removed (recursively) on drop.
///
/// # Invariants
///
/// `self.dentry` is a directory created by `debugfs_create_dir`, and the shim's file operations
/// dispatch to `T`.
pub(crate) struct DebugfsDir<T: SeqShow> {
    dentry: NonNull<bindings::dentry>,
    _t: PhantomData<T>,
}

// SAFETY: debugfs functions may be called from any process context.
unsafe impl<T: SeqShow> Send for DebugfsDir<T> {}
// SAFETY: as above.
unsafe impl<T: SeqShow> Sync for DebugfsDir<T> {}

impl<T: SeqShow> DebugfsDir<T> {
    /// Creates `/sys/kernel/debug/<name>`. Only one `DebugfsDir` may exist at a time.
    pub(crate) fn new(name: &CStr) -> Result<Self> {
        // SAFETY: the trampolines match the shim's typedefs and expect `T` file data, which
        // `file` is the only way to create.
        unsafe { vp_debugfs_set_ops(seq_open::<T>, seq_show::<T>) };
        // SAFETY: `name` is NUL-terminated; a NULL parent means the debugfs root.
        let d = unsafe { bindings::debugfs_create_dir(name.as_char_ptr(), core::ptr::null_mut()) };
        let d = from_err_ptr(d)?;
        // INVARIANT: created above; the ops were set for `T`.
        NonNull::new(d)
            .map(|dentry| Self {
                dentry,
                _t: PhantomData,
            })
            .ok_or(ENODEV)
    }

    /// Creates a mode-0400 file `name` showing `data`.
    pub(crate) fn file(&self, name: &CStr, data: KBox<T>) -> Result<DebugfsFile<T>> {
        let data = KBox::into_raw(data);
        // SAFETY: `name` is NUL-terminated, the parent is live (invariant), `data` outlives the
        // file because `DebugfsFile::drop` removes the file before freeing it.
        let d = unsafe { vp_debugfs_file(name.as_char_ptr(), self.dentry.as_ptr(), data.cast()) };
        match from_err_ptr(d).and_then(|d| NonNull::new(d).ok_or(ENODEV)) {
            // INVARIANT: the file was created with `data` as its private data.
            Ok(dentry) => Ok(DebugfsFile { dentry, data }),
            Err(e) => {
                // SAFETY: `data` came from `KBox::into_raw` and no file refers to it.
                drop(unsafe { KBox::from_raw(data) });
                Err(e)
            }
        }
    }
}

impl<T: SeqShow> Drop for DebugfsDir<T> {
    fn drop(&mut self) {
        // SAFETY: the dentry is live (invariant); its files were removed first (they borrow the
        // directory through the owner of this `DebugfsDir`, which drops them before it).
        unsafe { bindings::debugfs_remove(self.dentry.as_ptr()) };
    }
}

/// A debugfs file and the data it shows; the file is removed before the data is freed.
///
/// # Invariants
///
/// `self.dentry` is a live debugfs file whose private data is `self.data`, a `KBox<T>` leaked by
/// [`DebugfsDir::file`].
pub(crate) struct DebugfsFile<T: SeqShow> {
    dentry: NonNull<bindings::dentry>,
    data: *mut T,
}

// SAFETY: `T: Send`, and removing a debugfs file may happen from any process context.
unsafe impl<T: SeqShow> Send for DebugfsFile<T> {}
// SAFETY: `&self` only gives `&T`, and `T: Sync`.
unsafe impl<T: SeqShow> Sync for DebugfsFile<T> {}

impl<T: SeqShow> DebugfsFile<T> {
    /// The data the file shows.
    pub(crate) fn data(&self) -> &T {
        // SAFETY: `self.data` is live until drop (invariant); nothing mutates it.
        unsafe { &*self.data }
    }
}

impl<T: SeqShow> Drop for DebugfsFile<T> {
    fn drop(&mut self) {
        // SAFETY: the file is live (invariant). `debugfs_remove` sleeps (we are in process
        // context) and returns only when no file operation runs any more.
        unsafe { bindings::debugfs_remove(self.dentry.as_ptr()) };
        // SAFETY: the only other user of `data` was the file, which is gone.
        drop(unsafe { KBox::from_raw(self.data) });
    }
}

// ------------------------------------------------------------------ time page

/// Mirrors `struct vp_tp_stats` (`shim.h`): what the time page says about itself.
#[repr(C)]
pub(crate) struct TimePageStats {
    /// Timekeeping updates published.
    pub(crate) updates: u64,
    /// `vdso_clock_mode` of the clocksource.
    pub(crate) clock_mode: u32,
    /// `sizeof(struct vdso_probe_time_page)` as compiled into the module.
    pub(crate) abi_size: u32,
    /// The clocksource's name, NUL-terminated.
    pub(crate) clocksource: [u8; 32],
}

/// A zeroed page that the shim fills with `struct vdso_probe_time_page` (`uapi/vdso_probe.h`) on
/// every timekeeping update, from the pvclock_gtod notifier.
///
/// # Invariants
///
/// The notifier is registered and writes into `self.page`; only one `PublishedPage` exists.
pub(crate) struct PublishedPage {
    page: Page,
}

impl PublishedPage {
    /// Allocates the page and starts publishing (it is filled once before this returns).
    pub(crate) fn new() -> Result<Self> {
        let page = Page::alloc_page(GFP_KERNEL | __GFP_ZERO)?;
        // SAFETY: `page` is a live, zeroed page that outlives the registration: `Drop`
        // unregisters before the page is freed.
        to_result(unsafe { vp_timepage_start(page.as_ptr()) })?;
        // INVARIANT: registered above.
        Ok(Self { page })
    }

    /// The page, for mapping into userspace.
    pub(crate) fn page(&self) -> &Page {
        &self.page
    }

    /// A consistent copy of the page's statistics.
    pub(crate) fn stats(&self) -> TimePageStats {
        let mut out = TimePageStats {
            updates: 0,
            clock_mode: 0,
            abi_size: 0,
            clocksource: [0; 32],
        };
        // SAFETY: publishing is active (invariant); `out` is a writable `struct vp_tp_stats`.
        unsafe { vp_timepage_stats(&mut out) };
        out
    }
}

impl Drop for PublishedPage {
    fn drop(&mut self) {
        // SAFETY: registered (invariant); after this returns the notifier no longer runs, so the
        // page can be freed when `self.page` drops.
        unsafe { vp_timepage_stop() };
    }
}

/// What a fault handler tells the kernel.
pub(crate) enum Fault {
    /// The handler installed the page table entry itself.
    NoPage,
    /// Out of memory.
    Oom,
    /// The access is outside what the mapping publishes.
    SigBus,
}

/// Handles faults and the lifetime events of the VMAs it is installed on.
pub(crate) trait VmaHandler: Sync + Sized + 'static {
    /// A fault at `address` (page `pgoff` of the file) in `vma`; may sleep.
    fn fault(&self, vma: &VmaRef, pgoff: usize, address: usize) -> Fault;
    /// A VMA was duplicated (fork, split, move).
    fn open(&self);
    /// A VMA went away.
    fn close(&self);
}

/// # Safety
///
/// `data` must be the `T` given to [`install`] for `vma`, and `vma` a VMA in a fault.
unsafe extern "C" fn vma_fault<T: VmaHandler>(
    data: *mut c_void,
    vma: *mut bindings::vm_area_struct,
    pgoff: usize,
    address: usize,
) -> u32 {
    // SAFETY: `install`'s caller guarantees `data` is a live `T` for as long as the VMA exists.
    let this = unsafe { &*data.cast::<T>() };
    // SAFETY: the fault path holds the mmap lock or the VMA lock for reading, so `vma` is valid
    // for the duration of the call.
    let vma = unsafe { VmaRef::from_raw(vma) };
    match this.fault(vma, pgoff, address) {
        Fault::NoPage => bindings::vm_fault_reason_VM_FAULT_NOPAGE,
        Fault::Oom => bindings::vm_fault_reason_VM_FAULT_OOM,
        Fault::SigBus => bindings::vm_fault_reason_VM_FAULT_SIGBUS,
    }
}

/// # Safety
///
/// `data` must be the `T` given to [`install`] for the VMA being opened or closed.
unsafe extern "C" fn vma_open<T: VmaHandler>(data: *mut c_void) {
    // SAFETY: as in `vma_fault`.
    unsafe { &*data.cast::<T>() }.open();
}

/// # Safety
///
/// As for [`vma_open`].
unsafe extern "C" fn vma_close<T: VmaHandler>(data: *mut c_void) {
    // SAFETY: as in `vma_fault`.
    unsafe { &*data.cast::<T>() }.close();
}

/// The file offset of a new mapping, in pages.
pub(crate) fn vma_pgoff(vma: &VmaNew) -> usize {
    // SAFETY: `vma` is a VMA being set up by `mmap`, valid for this call.
    unsafe { vp_vma_pgoff(vma.as_ptr()) }
}

/// Makes `handler` the `vm_ops` of `vma` (one handler type per module).
///
/// # Safety
///
/// `handler` must stay valid until every VMA derived from `vma` (fork, split, mremap) is closed.
pub(crate) unsafe fn install<T: VmaHandler>(vma: &VmaNew, handler: &T) {
    // SAFETY: the trampolines match the shim's typedefs and take `T` data, which is what every
    // VMA with these ops carries.
    unsafe { vp_vm_set_ops(vma_fault::<T>, vma_open::<T>, vma_close::<T>) };
    // SAFETY: `vma` is being set up by `mmap` (no one else sees it yet); `handler` outlives it
    // by the caller's guarantee.
    unsafe { vp_vm_install(vma.as_ptr(), core::ptr::from_ref(handler).cast_mut().cast()) };
}
