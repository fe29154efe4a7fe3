// SPDX-License-Identifier: GPL-2.0

//! The FFI layer: the only file that calls `bindings::` or the C shim (`shim.c`).
//!
//! Each C object the module holds is an owning type here whose `Drop` releases it; the rest of
//! the module only sees safe methods and plain data. The C tables with callbacks
//! (`file_operations`, `vm_operations_struct`) are Rust statics, one per implementing type (the
//! pattern of `rust/kernel/debugfs/file_ops.rs` and binder's `BINDER_VM_OPS`); the tracepoint
//! probes and the timekeeping notifier are C (their prototypes and the timekeeper are C-only) and
//! reach their instance through the tracepoint's `data` argument and `container_of`.

use core::{
    ffi::c_void,
    marker::PhantomData,
    mem::size_of,
    ptr::NonNull, //
};
use kernel::{
    bindings,
    error::{
        from_err_ptr,
        to_result, //
    },
    mm::{
        virt::{
            VmaNew,
            VmaRef, //
        },
        Mm,
        MmWithUser,
        MmWithUserAsync, //
    },
    page::{BorrowedPage, Page},
    prelude::*,
    seq_file::SeqFile,
    str::CString,
    sync::{
        aref::ARef,
        Arc,
        ArcBorrow, //
    },
    task::Task,
    uaccess::{
        UserPtr,
        UserSlice, //
    },
    workqueue::Queue,
};

/// The UTF-8 text of a NUL-padded C string buffer (`comm`, names), `?` if it is not UTF-8.
pub(crate) fn str_until_nul(buf: &[u8]) -> &str {
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    core::str::from_utf8(&buf[..len]).unwrap_or("?")
}

/// Length of `task_struct::comm`.
pub(crate) const COMM_LEN: usize = bindings::TASK_COMM_LEN as usize;
const _: () = assert!(COMM_LEN == 16); // VP_COMM_LEN in shim.h

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

/// Mirrors `struct vp_tp_stats` (`shim.h`): what the time page says about itself.
#[repr(C)]
pub(crate) struct TimePageStats {
    /// Timekeeping updates published.
    pub(crate) updates: u64,
    /// Whether the vDSO can read the clocksource (`vdso_clock_mode` is not `NONE`), 0 or 1.
    pub(crate) vdso_readable: u32,
    /// `sizeof(struct vdso_probe_time_page)` as compiled into the module.
    pub(crate) abi_size: u32,
    /// The clocksource's name, NUL-terminated.
    pub(crate) clocksource: [u8; 32],
    /// The kernel's name of the clocksource's `vdso_clock_mode`, NUL-terminated.
    pub(crate) clock_mode: [u8; 16],
    /// The page's `clock_was_set_seq`.
    pub(crate) clock_was_set_seq: u32,
    _pad: u32,
}

/// Mirrors `struct vp_time_call` (`shim.h`): one time system call or vsyscall, as a probe saw it.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct TimeCall {
    /// The process, in the initial pid namespace.
    pub(crate) tgid: i32,
    /// The `clockid_t` argument, the vsyscall number, else 0.
    pub(crate) clock: i32,
    /// `VP_SC_*`.
    pub(crate) syscall: u8,
    /// `VP_ORIGIN_*`.
    pub(crate) origin: u8,
    /// Whether it came through the ia32 entry point.
    pub(crate) compat: bool,
    /// For a call from the vDSO: whether the vDSO could read the clocksource then.
    pub(crate) readable: bool,
    /// For a call from the vDSO: the clocksource log's event count then (the last event names
    /// the clocksource).
    pub(crate) cs_seq: u32,
    /// How many such calls since the last take (the probe merges repeats; at least 1).
    pub(crate) count: u64,
}

impl TimeCall {
    /// An all-zero call (a buffer's initial value).
    pub(crate) const ZERO: TimeCall = TimeCall {
        tgid: 0,
        clock: 0,
        syscall: 0,
        origin: 0,
        compat: false,
        readable: false,
        cs_seq: 0,
        count: 0,
    };
}

/// Mirrors `struct vp_cs_event` (`shim.h`): one clocksource change the timekeeping notifier saw.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct CsEvent {
    /// The event's number since load.
    pub(crate) seq: u64,
    /// `CLOCK_MONOTONIC` at the update that showed the change.
    pub(crate) mono_ns: i64,
    /// `CLOCK_REALTIME` seconds at that update.
    pub(crate) real_sec: i64,
    /// The `vdso_clock_mode` value.
    pub(crate) mode: u32,
    /// The clocksource's rating.
    pub(crate) rating: u32,
    /// The clocksource's name, NUL-padded.
    pub(crate) clocksource: [u8; 32],
    /// The kernel's name of the `vdso_clock_mode`, NUL-padded.
    pub(crate) clock_mode: [u8; 16],
}

/// Mirrors `struct vp_fault_event` (`shim.h`): a fault that populated a page of `[vvar]`,
/// `[vvar_vclock]`, `[vdso]` or the time page.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct FaultEvent {
    /// The process, in the initial pid namespace.
    pub(crate) tgid: i32,
    /// `VP_MAP_*`: which mapping ([`MAP_VVAR`], ...).
    pub(crate) mapping: u8,
    /// `VP_ACCESS_*`: [`ACCESS_READ`] or [`ACCESS_EXEC`] (a write never populates).
    pub(crate) access: u8,
    /// The page's index in its mapping.
    pub(crate) page: u16,
    /// `CLOCK_MONOTONIC` at the fault, ns.
    pub(crate) ns: u64,
    /// `CLOCK_MONOTONIC` when the process was forked, ns.
    pub(crate) start_ns: u64,
}

/// `VP_MAP_*` (`shim.h`).
pub(crate) const MAP_VVAR: u8 = 0;
/// `[vvar_vclock]`.
pub(crate) const MAP_VCLOCK: u8 = 1;
/// `[vdso]`.
pub(crate) const MAP_VDSO: u8 = 2;
/// The module's time page.
pub(crate) const MAP_TIMEPAGE: u8 = 3;
/// `VP_ACCESS_*` (`shim.h`).
pub(crate) const ACCESS_READ: u8 = 0;
/// An instruction fetch.
pub(crate) const ACCESS_EXEC: u8 = 2;

impl FaultEvent {
    /// The calling task's fault of page `page` of `mapping`, now.
    pub(crate) fn now(mapping: u8, page: u16, access: u8) -> Self {
        let mut ev = FaultEvent {
            tgid: 0,
            mapping,
            access,
            page,
            ns: 0,
            start_ns: 0,
        };
        // SAFETY: `ev` is a writable `struct vp_fault_event`; the shim reads `current`.
        unsafe { vp_fault_event_now(&mut ev, mapping, page, access) };
        ev
    }
}

/// `VP_CS_LOG_LEN` (`shim.h`): how many clocksource events the shim keeps.
pub(crate) const CS_LOG_LEN: usize = 64;

// The C side asserts the same sizes (`VP_SIZEOF_*` in shim.h).
const _: () = assert!(size_of::<RawVma>() == 40);
const _: () = assert!(size_of::<MmInfo>() == 40);
const _: () = assert!(size_of::<Timens>() == 48);
const _: () = assert!(size_of::<VvarLayout>() == 36);
const _: () = assert!(size_of::<TimePageStats>() == 72);
const _: () = assert!(size_of::<TimeCall>() == 24);
const _: () = assert!(size_of::<CsEvent>() == 80);
const _: () = assert!(size_of::<FaultEvent>() == 24);

/// `struct vp_hooks` (`shim.c`): opaque.
#[repr(C)]
struct RawHooks {
    _p: [u8; 0],
}

/// `struct vp_attr` (`shim.c`): opaque.
#[repr(C)]
struct RawAttr {
    _p: [u8; 0],
}

/// `struct vp_timepage` (`shim.c`): opaque.
#[repr(C)]
struct RawTimePage {
    _p: [u8; 0],
}

type EventFn = unsafe extern "C" fn(*mut c_void, *mut bindings::task_struct, c_int);
type FaultFn = unsafe extern "C" fn(*mut c_void, *const FaultEvent);

type FullFn = unsafe extern "C" fn(*mut c_void) -> bool;

// `VP_EV_*` (shim.h).
const EV_ADD: c_int = 0;
const EV_REMOVE: c_int = 1;
const EV_EXEC: c_int = 2;

// Only pointers to these kernel structs cross the boundary; Rust never reads them through these
// prototypes, so bindgen's zero-sized placeholders inside `task_struct` do not matter.
#[expect(improper_ctypes)]
extern "C" {
    fn vp_pid_alive(pid: *mut bindings::pid) -> bool;
    fn vp_next_tgid(nr: *mut c_int) -> *mut bindings::pid;
    fn vp_tgid_live_thread(pid: *mut bindings::pid) -> *mut bindings::task_struct;
    fn vp_task_comm(t: *mut bindings::task_struct, out: *mut u8);
    fn vp_tgid_comm(tgid: c_int, out: *mut u8) -> bool;
    fn vp_task_timens(t: *mut bindings::task_struct, out: *mut Timens) -> c_int;
    fn vp_task_addr32(t: *mut bindings::task_struct) -> bool;
    fn vp_mmap_read_lock(mm: *mut bindings::mm_struct) -> c_int;
    fn vp_mm_info(mm: *mut bindings::mm_struct, addr32: bool, out: *mut MmInfo);
    fn vp_user_pfn(mm: *mut bindings::mm_struct, addr: usize) -> usize;
    fn vp_vma_info(vma: *mut bindings::vm_area_struct, out: *mut RawVma);
    fn vp_vvar_layout(out: *mut VvarLayout);
    fn vp_layout_entry(i: c_uint) -> *const RawLayoutEntry;
    fn vp_vsyscall_pte_user() -> bool;
    fn vp_read_file(path: *const c_char, buf: *mut u8, len: usize) -> isize;
    fn vp_hooks_register(f: EventFn, fault: FaultFn, data: *mut c_void) -> *mut RawHooks;
    fn vp_fault_event_now(ev: *mut FaultEvent, mapping: u8, page: u16, access: u8);
    fn vp_hooks_unregister(h: *mut RawHooks);
    fn vp_vdso_faults_traced() -> bool;
    fn vp_timepage_start(page: *mut bindings::page) -> *mut RawTimePage;
    fn vp_timepage_stop(tp: *mut RawTimePage);
    fn vp_timepage_page_get(tp: *mut RawTimePage) -> *mut bindings::page;
    fn vp_timepage_page_put(page: *mut bindings::page);
    fn vp_timepage_stats(tp: *const RawTimePage, out: *mut TimePageStats);
    fn vp_timepage_log(
        tp: *mut RawTimePage,
        out: *mut CsEvent,
        max: c_uint,
        total: *mut u64,
    ) -> c_uint;
    fn vp_timepage_log_entry(tp: *mut RawTimePage, seq: u64, out: *mut CsEvent) -> bool;
    fn vp_attr_alloc(f: FullFn, data: *mut c_void, tp: *mut RawTimePage) -> *mut RawAttr;
    fn vp_attr_start(a: *mut RawAttr) -> c_int;
    fn vp_attr_stop(a: *mut RawAttr);
    fn vp_attr_take(a: *mut RawAttr, out: *mut TimeCall, max: c_uint, cpu: *mut c_uint) -> c_uint;
    fn vp_attr_unregister(a: *mut RawAttr);
    fn vp_alloc_wq(
        name: *const c_char,
        flags: c_uint,
        max_active: c_int,
    ) -> *mut bindings::workqueue_struct;
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

    /// The thread group id of `task`, in atomic context too.
    ///
    /// # Safety
    ///
    /// `task` must be a live task.
    unsafe fn of_task(task: *mut bindings::task_struct) -> Option<Self> {
        // SAFETY: `task` is live (caller); `get_task_pid` takes its own reference and does not
        // sleep.
        let p = unsafe { bindings::get_task_pid(task, bindings::pid_type_PIDTYPE_TGID) };
        // INVARIANT: `get_task_pid` returns NULL or a pid with a reference taken for us.
        NonNull::new(p).map(Self)
    }

    /// The pid number in the initial pid namespace.
    pub(crate) fn nr_init_ns(&self) -> i32 {
        // SAFETY: `self.0` is valid (invariant); `init_pid_ns` is a static that always exists.
        unsafe { bindings::pid_nr_ns(self.0.as_ptr(), &raw mut bindings::init_pid_ns) }
    }

    /// Whether this is the same `struct pid` as `other`.
    pub(crate) fn ptr_eq(&self, other: &PidRef) -> bool {
        self.0 == other.0
    }

    /// Whether a user process with this pid exists and has a thread that has not exited.
    pub(crate) fn alive(&self) -> bool {
        // SAFETY: `self.0` is valid by the type invariant.
        unsafe { vp_pid_alive(self.0.as_ptr()) }
    }

    /// The process's thread group leader, if it still exists (it may be a zombie).
    pub(crate) fn leader(&self) -> Option<ARef<Task>> {
        // SAFETY: `self.0` is valid by the type invariant.
        let t = unsafe { bindings::get_pid_task(self.0.as_ptr(), bindings::pid_type_PIDTYPE_TGID) };
        // SAFETY: `get_pid_task` returns NULL or a task with a reference taken for us, which the
        // `ARef` now owns; `Task` is a transparent wrapper of `task_struct`.
        NonNull::new(t).map(|t| unsafe { ARef::from_raw(t.cast::<Task>()) })
    }

    /// A thread of the process that still has its address space (the leader unless it exited
    /// first, e.g. after `pthread_exit()` in `main`), or `None` once every thread is past
    /// `exit_mm`.
    pub(crate) fn live_thread(&self) -> Option<ARef<Task>> {
        // SAFETY: `self.0` is valid by the type invariant.
        let t = unsafe { vp_tgid_live_thread(self.0.as_ptr()) };
        // SAFETY: as in `leader`: a task with a reference taken for us, or NULL.
        NonNull::new(t).map(|t| unsafe { ARef::from_raw(t.cast::<Task>()) })
    }
}

impl Drop for PidRef {
    fn drop(&mut self) {
        // SAFETY: we own one reference (type invariant) and give it back exactly once.
        unsafe { bindings::put_pid(self.0.as_ptr()) };
    }
}

/// What the module reads from a task beyond `kernel::task::Task`.
pub(crate) trait TaskExt {
    /// The task's `comm`, NUL-padded.
    fn comm(&self) -> [u8; COMM_LEN];
    /// Whether the task has `TIF_ADDR32` (a compat address space: ia32 or x32).
    fn addr32(&self) -> bool;
    /// The task's time namespace (`ESRCH` once it has exited).
    fn timens(&self) -> Result<Timens>;
    /// The task's address space (`get_task_mm`); its last `mmput`, if it is ours, runs
    /// asynchronously (`mmput_async`), never inside a debugfs read.
    fn mm_async(&self) -> Option<ARef<MmWithUserAsync>>;
}

impl TaskExt for Task {
    fn comm(&self) -> [u8; COMM_LEN] {
        let mut out = [0u8; COMM_LEN];
        // SAFETY: the task is valid for the lifetime of `&self`; `out` has `TASK_COMM_LEN` bytes.
        unsafe { vp_task_comm(self.as_ptr(), out.as_mut_ptr()) };
        out
    }

    fn addr32(&self) -> bool {
        // SAFETY: the task is valid for the lifetime of `&self`.
        unsafe { vp_task_addr32(self.as_ptr()) }
    }

    fn timens(&self) -> Result<Timens> {
        let mut out = Timens::default();
        // SAFETY: the task is valid for `&self`, `out` is a writable `struct vp_timens`.
        to_result(unsafe { vp_task_timens(self.as_ptr(), &mut out) })?;
        Ok(out)
    }

    fn mm_async(&self) -> Option<ARef<MmWithUserAsync>> {
        // SAFETY: the task is valid for `&self`; `get_task_mm` takes `task_lock` (process context).
        let mm = NonNull::new(unsafe { bindings::get_task_mm(self.as_ptr()) })?;
        // SAFETY: `get_task_mm` raised `mm_users` for us; the `ARef` owns that reference and
        // `MmWithUser` is a transparent wrapper of `mm_struct`.
        let mm = unsafe { ARef::from_raw(mm.cast::<MmWithUser>()) };
        Some(MmWithUser::into_mmput_async(mm))
    }
}

/// Whether the current task may read the address space of `thread` (a thread of the process
/// whose leader is `leader`): the kernel's own answer, obtained by opening
/// `/proc/<tgid>/task/<tid>/maps` in the current task's context, so that `proc_maps_open` ->
/// `proc_mem_open` -> `mm_access(PTRACE_MODE_READ_FSCREDS)` decides with the current task's
/// credentials, LSMs (`security_ptrace_access_check`: SELinux, AppArmor, Landlock, ...) and
/// audit included. `ptrace_may_access`, `mm_access` and the LSM hook are not exported.
///
/// The numbers are those of the current task's pid namespace and the path is resolved in its
/// mount namespace: a task that cannot see the process there is refused (`EACCES`); without
/// such an entry (no procfs at `/proc`, or the thread was reaped since it was picked) the result
/// is `ENOENT`, for the caller to decide. Either is stricter than the kernel, never looser. Otherwise the errno
/// is procfs's (`EACCES` for a refusal).
pub(crate) fn proc_maps_allowed(leader: &Task, thread: &Task) -> Result {
    // SAFETY: called from a file operation (process context), so `current` is valid;
    // `task_active_pid_ns` takes no reference and the result lives as long as `current`.
    let ns = unsafe { bindings::task_active_pid_ns(bindings::get_current()) };
    if ns.is_null() {
        return Err(EACCES);
    }
    // SAFETY: both tasks are valid for the borrows; `ns` is the current task's pid namespace.
    let (tgid, tid) = unsafe {
        (
            bindings::__task_pid_nr_ns(leader.as_ptr(), bindings::pid_type_PIDTYPE_TGID, ns),
            bindings::__task_pid_nr_ns(thread.as_ptr(), bindings::pid_type_PIDTYPE_PID, ns),
        )
    };
    if tgid <= 0 || tid <= 0 {
        // SAFETY: as above; `init_pid_ns` is a static that always exists.
        let unhashed = unsafe {
            let init = &raw mut bindings::init_pid_ns;
            bindings::__task_pid_nr_ns(leader.as_ptr(), bindings::pid_type_PIDTYPE_TGID, init) == 0
                || bindings::__task_pid_nr_ns(thread.as_ptr(), bindings::pid_type_PIDTYPE_PID, init)
                    == 0
        };
        // No number in the initial namespace either: the task was reaped (detach_pid) after it
        // was picked, which is ENOENT as procfs would say; else it is not in the opener's.
        return Err(if unhashed { ENOENT } else { EACCES });
    }
    let path = CString::try_from_fmt(fmt!("/proc/{tgid}/task/{tid}/maps"))?;
    // SAFETY: `path` is NUL-terminated; process context.
    let f = unsafe { bindings::filp_open(path.as_char_ptr(), bindings::O_RDONLY as c_int, 0) };
    let f = from_err_ptr(f)?;
    // SAFETY: `f` is the file opened above, closed exactly once; no fd table owns it.
    unsafe { bindings::filp_close(f, core::ptr::null_mut()) };
    Ok(())
}

// ------------------------------------------------------------------ mm and VMAs

/// An address space pinned (`mmgrab`: the struct, not its pages), to recognise it later: the
/// address space a report file was opened on.
pub(crate) struct MmIdentity(ARef<Mm>);

impl MmIdentity {
    /// The identity of `mm`.
    pub(crate) fn of(mm: &MmWithUserAsync) -> Self {
        let mm: &Mm = mm;
        Self(ARef::from(mm))
    }

    /// Whether `mm` is this address space. Sound against reuse: the grabbed `mm_struct` cannot
    /// be freed, so no other address space can have its address.
    pub(crate) fn is(&self, mm: &MmWithUserAsync) -> bool {
        core::ptr::eq(self.0.as_raw(), mm.as_raw())
    }
}

/// The mmap read lock of an address space.
///
/// # Invariants
///
/// The mmap lock of `self.mm` is held for reading until this guard is dropped.
pub(crate) struct MmReadGuard<'a> {
    mm: &'a MmWithUser,
}

/// Takes the mmap lock of `mm` for reading (`EINTR` if a fatal signal arrives while waiting).
pub(crate) fn mmap_read_lock_killable(mm: &MmWithUser) -> Result<MmReadGuard<'_>> {
    // SAFETY: `mm` has a user (`MmWithUser`), so its lock may be taken; process context.
    to_result(unsafe { vp_mmap_read_lock(mm.as_raw()) })?;
    // INVARIANT: the lock was just taken.
    Ok(MmReadGuard { mm })
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
    /// `VM_MAYSHARE` (what `/proc/<pid>/maps` prints as `s`).
    MayShare = 1 << 3,
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
            // SAFETY: `vm_ops->name` of a special mapping returns a NUL-terminated string (a
            // static, or the `vm_special_mapping`'s name, which lives as long as the VMA);
            // it is copied here, under the mmap lock that keeps the VMA.
            let name = unsafe { CStr::from_char_ptr(raw.name) }.to_bytes();
            let n = name.len().min(out.name.len() - 1);
            out.name[..n].copy_from_slice(&name[..n]);
        }
        Some(out)
    }

    /// Facts about the address space (`mm->context` is written by `vdso_mremap` under the
    /// mmap write lock, so it is read here, under the read lock).
    pub(crate) fn info(&self, addr32: bool) -> MmInfo {
        let mut out = MmInfo::default();
        // SAFETY: the mm is live and locked (invariant); `out` is a writable `struct vp_mm`.
        unsafe { vp_mm_info(self.mm.as_raw(), addr32, &mut out) };
        out
    }

    /// The VMA containing `addr`.
    pub(crate) fn vma_at(&self, addr: usize) -> Option<Vma> {
        // SAFETY: the mmap lock is held (invariant), as `vma_lookup` requires.
        Self::describe(unsafe { bindings::vma_lookup(self.mm.as_raw(), addr) })
    }

    /// The first VMA that ends above `addr`.
    pub(crate) fn vma_after(&self, addr: usize) -> Option<Vma> {
        // SAFETY: the mmap lock is held (invariant), as `find_vma` requires.
        Self::describe(unsafe { bindings::find_vma(self.mm.as_raw(), addr) })
    }

    /// The page frame mapped at `addr`, `None` when no page is populated there.
    pub(crate) fn pfn(&self, addr: usize) -> Option<usize> {
        // SAFETY: the mmap lock is held (invariant), so the upper page-table levels stay; the
        // shim walks the PTE level under RCU.
        let pfn = unsafe { vp_user_pfn(self.mm.as_raw(), addr) };
        (pfn != 0).then_some(pfn)
    }
}

impl Drop for MmReadGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: the lock is held for reading (invariant) and released exactly once.
        unsafe { bindings::mmap_read_unlock(self.mm.as_raw()) };
    }
}

/// Mirrors `struct vp_layout_entry` (`shim.h`).
#[repr(C)]
struct RawLayoutEntry {
    name: *const c_char,
    v: [u32; 3],
    n: u32,
}

/// One entry of this kernel's vDSO data layout: a name (`vdso_clock.seq`, `vdso_pages.rng`,
/// ...) and its values (a constant; or offset, element size, element count).
pub(crate) struct LayoutEntry {
    /// The entry's name.
    pub(crate) name: &'static CStr,
    /// Its values.
    pub(crate) values: &'static [u32],
}

/// The vDSO data layout of this kernel (the shim's table, compiled from its headers), in order.
pub(crate) fn layout() -> impl Iterator<Item = LayoutEntry> {
    (0..).map_while(|i| {
        // SAFETY: no preconditions; the result is NULL or points into a static const table.
        let e = unsafe { vp_layout_entry(i).as_ref()? };
        // SAFETY: the table's names are string literals, its `n` at most 3.
        let name = unsafe { CStr::from_char_ptr(e.name) };
        Some(LayoutEntry {
            name,
            values: &e.v[..(e.n as usize).min(3)],
        })
    })
}

/// The page indices of the `[vvar]` mapping in this kernel.
pub(crate) fn vvar_layout() -> VvarLayout {
    let mut out = VvarLayout::default();
    // SAFETY: `out` is a writable `struct vp_vvar_layout`.
    unsafe { vp_vvar_layout(&mut out) };
    out
}

// ------------------------------------------------------------------ vsyscall

/// Whether the fixmap vsyscall page has a user-accessible PTE (only `vsyscall=emulate`; never on
/// arm64, which has no vsyscall page).
pub(crate) fn vsyscall_pte_user() -> bool {
    // SAFETY: no preconditions: `lookup_address` walks `init_mm`, whose upper levels stay.
    unsafe { vp_vsyscall_pte_user() }
}

/// Whether the arch's fault hook sees the faults on `[vvar]`, `[vvar_vclock]` and `[vdso]`
/// (x86: `exceptions:page_fault_user`); else only the time page's own faults are logged.
pub(crate) fn vdso_faults_traced() -> bool {
    // SAFETY: no preconditions: a constant of the arch's shim.
    unsafe { vp_vdso_faults_traced() }
}

/// Reads the file at `path` (resolved in the current task's context) into `buf`; returns the
/// bytes read.
pub(crate) fn read_file(path: &CStr, buf: &mut [u8]) -> Result<usize> {
    // SAFETY: `path` is NUL-terminated, `buf` is writable for `buf.len()` bytes; process context.
    let n = unsafe { vp_read_file(path.as_char_ptr(), buf.as_mut_ptr(), buf.len()) };
    if n < 0 {
        return Err(Error::from_errno(n as c_int));
    }
    Ok(n as usize)
}

// ------------------------------------------------------------------ lifecycle hooks

/// What the lifecycle tracepoints report.
pub(crate) enum TaskEvent {
    /// A process appeared (fork of a thread group leader).
    Add(PidRef),
    /// A process's last thread exited.
    Remove(PidRef),
    /// A process called exec (after `de_thread`: the calling thread is the only one).
    Exec(PidRef),
}

/// Receives [`TaskEvent`]s and faults. Called from tracepoint probes: must not sleep.
pub(crate) trait TaskEvents: Send + Sync {
    /// Handles one event, in atomic context.
    fn on_event(this: ArcBorrow<'_, Self>, ev: TaskEvent);
    /// A fault populating a page of the calling task's vDSO mappings, interrupts off.
    fn on_fault(this: ArcBorrow<'_, Self>, ev: &FaultEvent);
}

/// The registered `sched_process_{fork,exit,exec}` probes; unregistered on drop.
///
/// # Invariants
///
/// `self.hooks` is a `struct vp_hooks` registered with `self.data`, the `Arc::into_raw` pointer
/// of a `T`, as the data of its probes.
pub(crate) struct Hooks<T: TaskEvents + 'static> {
    hooks: NonNull<RawHooks>,
    data: *const T,
}

// SAFETY: the state is a C object usable from any thread and a pointer to a `T: Send + Sync`
// held through an `Arc`.
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
    let Some(pid) = (unsafe { PidRef::of_task(task) }) else {
        return;
    };
    match ev {
        EV_ADD => T::on_event(this, TaskEvent::Add(pid)),
        EV_REMOVE => T::on_event(this, TaskEvent::Remove(pid)),
        EV_EXEC => T::on_event(this, TaskEvent::Exec(pid)),
        _ => {}
    }
}

/// The fault probe's callback.
///
/// # Safety
///
/// As [`on_task_event`]; `ev` points to a valid event for the duration of the call.
unsafe extern "C" fn on_fault<T: TaskEvents + 'static>(data: *mut c_void, ev: *const FaultEvent) {
    // SAFETY: as in `on_task_event`.
    let this = unsafe { ArcBorrow::from_raw(data.cast::<T>().cast_const()) };
    // SAFETY: the probe passes its own event, valid during the call.
    T::on_fault(this, unsafe { &*ev });
}

impl<T: TaskEvents + 'static> Hooks<T> {
    /// Attaches the probes; they call `T::on_event(target, ..)` and `T::on_fault` until
    /// dropped. Any number of instances may exist: each is its own C object and tracepoint data.
    pub(crate) fn register(target: Arc<T>) -> Result<Self> {
        let data = Arc::into_raw(target);
        // SAFETY: `on_task_event::<T>` and `on_fault::<T>` match `vp_task_event_fn` and
        // `vp_fault_fn` and expect exactly this `data`.
        let h =
            unsafe { vp_hooks_register(on_task_event::<T>, on_fault::<T>, data.cast_mut().cast()) };
        match from_err_ptr(h).and_then(|h| NonNull::new(h).ok_or(EINVAL)) {
            // INVARIANT: registered with `data` just now.
            Ok(hooks) => Ok(Self { hooks, data }),
            Err(e) => {
                // SAFETY: `data` came from `Arc::into_raw` above and no probe is registered.
                drop(unsafe { Arc::from_raw(data) });
                Err(e)
            }
        }
    }
}

impl<T: TaskEvents + 'static> Drop for Hooks<T> {
    fn drop(&mut self) {
        // SAFETY: the probes are registered (invariant); this waits until none is running and
        // frees the C object.
        unsafe { vp_hooks_unregister(self.hooks.as_ptr()) };
        // SAFETY: `self.data` came from `Arc::into_raw` and no probe can use it any more.
        drop(unsafe { Arc::from_raw(self.data) });
    }
}

// ------------------------------------------------------------------ attribution probes

/// The `comm` of process `tgid` (initial pid namespace), if it exists (any context).
pub(crate) fn tgid_comm(tgid: i32) -> Option<[u8; COMM_LEN]> {
    let mut out = [0u8; COMM_LEN];
    // SAFETY: `out` has room for `TASK_COMM_LEN` bytes; the shim looks the process up under RCU.
    unsafe { vp_tgid_comm(tgid, out.as_mut_ptr()) }.then_some(out)
}

/// Drains the attribution probes' per-CPU rings when one is full. Called from the probes, inside
/// a traced function or a tracepoint: must not sleep, and may run with preemption disabled
/// (ftrace's list function, when another ftrace user shares one of the functions) or enabled.
pub(crate) trait TimeCalls: Send + Sync {
    /// Takes every waiting call ([`CallSource::take`]); false if it cannot (the call is then
    /// dropped).
    fn on_full(this: ArcBorrow<'_, Self>) -> bool;
}

/// The probe callback.
///
/// # Safety
///
/// `data` must be the `Arc::into_raw` pointer of a registered [`TimeCallProbes<T>`].
unsafe extern "C" fn on_full<T: TimeCalls + 'static>(data: *mut c_void) -> bool {
    // SAFETY: `data` is the pointer `TimeCallProbes::register` got from `Arc::into_raw`, valid
    // until `TimeCallProbes::drop` has unregistered the probes and waited for running ones.
    let this = unsafe { ArcBorrow::from_raw(data.cast::<T>().cast_const()) };
    T::on_full(this)
}

/// The registered ftrace callback on the time system calls and the vsyscall tracepoint probe,
/// and their per-CPU rings of calls; unregistered and freed on drop (which sleeps).
///
/// # Invariants
///
/// `self.attr` is a `struct vp_attr` allocated with `self.data`, the `Arc::into_raw` pointer of a
/// `T`, as its callback data (and attached once `start` succeeded).
pub(crate) struct TimeCallProbes<T: TimeCalls + 'static> {
    attr: NonNull<RawAttr>,
    data: *const T,
}

// SAFETY: a C object usable from any thread and a pointer to a `T: Send + Sync` held through an
// `Arc`.
unsafe impl<T: TimeCalls> Send for TimeCallProbes<T> {}
// SAFETY: as above; `stop` may run from any thread.
unsafe impl<T: TimeCalls> Sync for TimeCallProbes<T> {}

impl<T: TimeCalls + 'static> TimeCallProbes<T> {
    /// Allocates the probes and their rings, attached to nothing yet ([`TimeCallProbes::start`]);
    /// the probes will read the clock mode and the clocksource log of `page` at each vDSO
    /// fallback. Process context.
    ///
    /// # Safety
    ///
    /// `page` must outlive the returned object.
    pub(crate) unsafe fn new(target: Arc<T>, page: &PublishedPage) -> Result<Self> {
        let data = Arc::into_raw(target);
        // SAFETY: `on_full::<T>` matches `vp_attr_full_fn` and expects exactly this `data`; the
        // time page object outlives the probes (the caller's contract).
        let a = unsafe { vp_attr_alloc(on_full::<T>, data.cast_mut().cast(), page.tp.as_ptr()) };
        match from_err_ptr(a).and_then(|a| NonNull::new(a).ok_or(EINVAL)) {
            // INVARIANT: allocated with `data` just now (attached by `start`).
            Ok(attr) => Ok(Self { attr, data }),
            Err(e) => {
                // SAFETY: `data` came from `Arc::into_raw` above and no probe uses it.
                drop(unsafe { Arc::from_raw(data) });
                Err(e)
            }
        }
    }

    /// Attaches the probes (process context: registration sleeps). On failure none is attached.
    pub(crate) fn start(&self) -> Result {
        // SAFETY: `self.attr` is live (invariant) and not started: `start` is called once, by
        // the owner, right after `new`.
        to_result(unsafe { vp_attr_start(self.attr.as_ptr()) })
    }

    /// Detaches the probes (sleeps; idempotent): afterwards no probe runs, and the rings hold
    /// every call that was made.
    pub(crate) fn stop(&self) {
        // SAFETY: `self.attr` is live (invariant); `vp_attr_stop` may be called more than once.
        unsafe { vp_attr_stop(self.attr.as_ptr()) };
    }

    /// Where the rings' calls are taken from.
    pub(crate) fn source(&self) -> CallSource {
        CallSource(self.attr)
    }
}

impl<T: TimeCalls + 'static> Drop for TimeCallProbes<T> {
    fn drop(&mut self) {
        // SAFETY: allocated (invariant); this detaches what is attached, waits until no probe
        // runs, then frees the object and its rings (calls not taken are dropped).
        unsafe { vp_attr_unregister(self.attr.as_ptr()) };
        // SAFETY: `self.data` came from `Arc::into_raw` and no probe can use it any more.
        drop(unsafe { Arc::from_raw(self.data) });
    }
}

/// A handle on the rings of a [`TimeCallProbes`], for taking calls under the owner's lock.
#[derive(Clone, Copy)]
pub(crate) struct CallSource(NonNull<RawAttr>);

// SAFETY: the rings may be drained from any thread (serialised by the caller, see `take`).
unsafe impl Send for CallSource {}

impl CallSource {
    /// Moves up to `out.len()` waiting calls into `out`, each CPU's in order from `cursor.cpu`
    /// on, and moves the cursor; returns how many. Fewer than `out.len()`: every CPU is read.
    ///
    /// # Safety
    ///
    /// The [`TimeCallProbes`] it came from is alive, and no other `take` on it runs meanwhile.
    pub(crate) unsafe fn take(&self, out: &mut [TimeCall], cursor: &mut TakeCursor) -> usize {
        let max = c_uint::try_from(out.len()).unwrap_or(c_uint::MAX);
        // SAFETY: the object is live and takes are serialised (the caller's contract); `out`
        // has room for `max` calls; `cursor.cpu` is a valid `unsigned int` to update.
        let n = unsafe { vp_attr_take(self.0.as_ptr(), out.as_mut_ptr(), max, &mut cursor.cpu) };
        (n as usize).min(out.len())
    }
}

/// Where a drain's next [`CallSource::take`] goes on: one drain reads every CPU's ring once.
#[derive(Default)]
pub(crate) struct TakeCursor {
    cpu: c_uint,
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
    /// An ordered workqueue: one item at a time, in queueing order.
    pub(crate) fn ordered(name: &'static CStr) -> Result<Self> {
        let flags = bindings::wq_flags_WQ_UNBOUND | bindings::wq_flags___WQ_ORDERED;
        Self::alloc(name, flags, 1)
    }

    fn alloc(name: &'static CStr, flags: u32, max_active: c_int) -> Result<Self> {
        // SAFETY: `name` is a NUL-terminated static; process context.
        let wq = unsafe { vp_alloc_wq(name.as_char_ptr(), flags, max_active) };
        // INVARIANT: allocated just now.
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
        unsafe { bindings::__flush_workqueue(self.0.as_ptr()) };
    }
}

impl Drop for WorkQueue {
    fn drop(&mut self) {
        // SAFETY: `self.0` is live (invariant) and destroyed exactly once.
        unsafe { bindings::destroy_workqueue(self.0.as_ptr()) };
    }
}

// ------------------------------------------------------------------ debugfs

/// The content of a debugfs file: an open-time decision with per-open state, and the text,
/// computed at each read.
pub(crate) trait SeqShow: Send + Sync + Sized + 'static {
    /// What an open file remembers (e.g. the address space it was opened on).
    type Open: Send + Sync;
    /// Decides whether the current task may open the file (process context).
    fn open(&self) -> Result<Self::Open>;
    /// Writes the file's content, computed now (process context, may sleep).
    fn show(&self, open: &Self::Open, out: &SeqFile) -> Result;
    /// Whether the file takes writes: mode 0600 instead of 0400.
    const WRITABLE: bool = false;
    /// Handles one `write(2)` of `input` (at most [`WRITE_MAX`] bytes, already copied from
    /// userspace; process context, may sleep).
    fn write(&self, _input: &[u8]) -> Result {
        Err(EINVAL)
    }
}

/// The longest `write(2)` a debugfs file takes (`EINVAL` beyond): the files take short commands.
pub(crate) const WRITE_MAX: usize = 64;

/// The private data of an open file: its own reference to the file's `T`, and the per-open
/// state. Reads use only this, so they need no protection against the file's removal, and a
/// removal never waits for a reader (a reader can stall inside `read()`, e.g. on a fault in its
/// buffer that is never served).
struct OpenFile<T: SeqShow> {
    node: Arc<T>,
    state: T::Open,
}

/// `open` of the files of type `T`.
///
/// # Safety
///
/// Called by the VFS for a file created by [`DebugfsDir::file`] for `T`.
unsafe extern "C" fn seq_open<T: SeqShow>(
    inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    // SAFETY: `i_private` of a file created by `DebugfsDir::file::<T>` is the `Arc::into_raw` of
    // a `T`; debugfs keeps the file, and so that reference, alive during `open` (its open proxy
    // holds `debugfs_file_get` for "unsafe" files too).
    let node: Arc<T> = unsafe { ArcBorrow::from_raw((*inode).i_private.cast::<T>()) }.into();
    let state = match node.open() {
        Ok(s) => s,
        Err(e) => return e.to_errno(),
    };
    let of = match KBox::new(OpenFile { node, state }, GFP_KERNEL) {
        Ok(b) => KBox::into_raw(b),
        Err(_) => return ENOMEM.to_errno(),
    };
    // SAFETY: `file` is the file being opened; `seq_show::<T>` expects exactly this private data.
    let ret = unsafe { bindings::single_open(file, Some(seq_show::<T>), of.cast()) };
    if ret != 0 {
        // SAFETY: `of` came from `KBox::into_raw` and `single_open` failed, so nothing uses it.
        drop(unsafe { KBox::from_raw(of) });
    }
    ret
}

/// `show` of the files of type `T`.
///
/// # Safety
///
/// `m` must be the `seq_file` of a file opened by [`seq_open::<T>`], during a read.
unsafe extern "C" fn seq_show<T: SeqShow>(m: *mut bindings::seq_file, _v: *mut c_void) -> c_int {
    // SAFETY: `m->private` is the `OpenFile<T>` of `seq_open`, freed only at release.
    let of = unsafe { &*(*m).private.cast::<OpenFile<T>>() };
    // SAFETY: `m` is the live `seq_file` of this read.
    let out = unsafe { SeqFile::from_raw(m) };
    match of.node.show(&of.state, out) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// `write` of the files of type `T` that take writes: copies the input, then `T::write`.
///
/// # Safety
///
/// `file` must be a file opened by [`seq_open::<T>`]; `buf` a user pointer to `count` bytes.
unsafe extern "C" fn seq_file_write<T: SeqShow>(
    file: *mut bindings::file,
    buf: *const c_char,
    count: usize,
    _pos: *mut bindings::loff_t,
) -> isize {
    if count == 0 {
        return 0;
    }
    let mut input = [0u8; WRITE_MAX];
    let Some(input) = input.get_mut(..count) else {
        return EINVAL.to_errno() as isize;
    };
    let mut reader = UserSlice::new(UserPtr::from_ptr(buf.cast_mut().cast()), count).reader();
    if let Err(e) = reader.read_slice(input) {
        return e.to_errno() as isize;
    }
    // SAFETY: `single_open` made `private_data` a `seq_file` whose private data is the
    // `OpenFile<T>` of `seq_open`, freed only at release, after the last write returned.
    let of = unsafe {
        &*(*(*file).private_data.cast::<bindings::seq_file>())
            .private
            .cast::<OpenFile<T>>()
    };
    match of.node.write(input) {
        // `count <= WRITE_MAX`: no truncation.
        Ok(()) => count as isize,
        Err(e) => e.to_errno() as isize,
    }
}

/// `release` of the files of type `T`.
///
/// # Safety
///
/// `file` must be a file opened by [`seq_open::<T>`], being released.
unsafe extern "C" fn seq_release<T: SeqShow>(
    inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    // SAFETY: `single_open` made `private_data` a `seq_file` whose private data is our box.
    let of = unsafe { (*(*file).private_data.cast::<bindings::seq_file>()).private };
    // SAFETY: `of` came from `KBox::into_raw` in `seq_open`; released once, with its reference
    // to the `T`.
    drop(unsafe { KBox::from_raw(of.cast::<OpenFile<T>>()) });
    // SAFETY: the file was opened with `single_open`.
    unsafe { bindings::single_release(inode, file) }
}

/// A `file_operations` table made for `T`.
struct SeqOps<T>(bindings::file_operations, PhantomData<T>);

// SAFETY: the table is immutable and its functions may be called from any thread.
unsafe impl<T> Sync for SeqOps<T> {}

/// One static `file_operations` per [`SeqShow`] type (generic statics do not exist; associated
/// constants are promoted to statics).
trait HasSeqOps: SeqShow {
    const OPS: SeqOps<Self>;
}

impl<T: SeqShow> HasSeqOps for T {
    const OPS: SeqOps<T> = SeqOps(
        bindings::file_operations {
            // An open file pins the module.
            owner: kernel::module::this_module::<crate::LocalModule>().as_ptr(),
            open: Some(seq_open::<T>),
            read: Some(bindings::seq_read),
            // Read-only files have none: a write fails as the kernel fails it (EINVAL).
            write: if T::WRITABLE {
                Some(seq_file_write::<T>)
            } else {
                None
            },
            llseek: Some(bindings::seq_lseek),
            release: Some(seq_release::<T>),
            ..pin_init::zeroed()
        },
        PhantomData,
    );
}

/// A debugfs directory; removed (recursively) on drop. Its files borrow it, so they are removed
/// first.
///
/// # Invariants
///
/// `self.dentry` is a directory created by `debugfs_create_dir`.
pub(crate) struct DebugfsDir {
    dentry: NonNull<bindings::dentry>,
}

// SAFETY: debugfs functions may be called from any process context.
unsafe impl Send for DebugfsDir {}
// SAFETY: as above.
unsafe impl Sync for DebugfsDir {}

impl DebugfsDir {
    /// Creates `/sys/kernel/debug/<name>`.
    pub(crate) fn new(name: &CStr) -> Result<Self> {
        // SAFETY: `name` is NUL-terminated; a NULL parent means the debugfs root.
        let d = unsafe { bindings::debugfs_create_dir(name.as_char_ptr(), core::ptr::null_mut()) };
        let d = from_err_ptr(d)?;
        // INVARIANT: created above.
        NonNull::new(d).map(|dentry| Self { dentry }).ok_or(ENODEV)
    }

    /// Creates a file `name` showing `data`: mode 0400, 0600 if `T` takes writes.
    pub(crate) fn file<T: SeqShow>(&self, name: &CStr, data: Arc<T>) -> Result<DebugfsFile<T>> {
        let data = Arc::into_raw(data);
        // SAFETY: `name` is NUL-terminated, the parent is live (invariant); the file's reference
        // `data` is released only after the file is removed (`DebugfsFile::drop`), and open files
        // take their own (`seq_open`), so no file operation needs debugfs' removal protection:
        // hence the "unsafe" variant. `T::OPS` is a static table for `T` data.
        let d = unsafe {
            bindings::debugfs_create_file_unsafe(
                name.as_char_ptr(),
                if T::WRITABLE { 0o600 } else { 0o400 },
                self.dentry.as_ptr(),
                data.cast_mut().cast(),
                &<T as HasSeqOps>::OPS.0,
            )
        };
        match from_err_ptr(d).and_then(|d| NonNull::new(d).ok_or(ENODEV)) {
            // INVARIANT: the file was created with `data` as its private data.
            Ok(dentry) => Ok(DebugfsFile { dentry, data }),
            Err(e) => {
                // SAFETY: `data` came from `Arc::into_raw` and no file refers to it.
                drop(unsafe { Arc::from_raw(data) });
                Err(e)
            }
        }
    }
}

impl Drop for DebugfsDir {
    fn drop(&mut self) {
        // SAFETY: the dentry is live (invariant). Files still in it are removed with it; their
        // `DebugfsFile`s are always dropped first by their owners (the registry's tree and the
        // module's fields are declared before the directory they live in).
        unsafe { bindings::debugfs_remove(self.dentry.as_ptr()) };
    }
}

/// A debugfs file and the data it shows; the file is removed before its reference to the data
/// is dropped.
///
/// # Invariants
///
/// `self.dentry` is a live debugfs file whose private data is `self.data`, a reference leaked by
/// `Arc::into_raw` in [`DebugfsDir::file`].
pub(crate) struct DebugfsFile<T: SeqShow> {
    dentry: NonNull<bindings::dentry>,
    data: *const T,
}

// SAFETY: `T: Send + Sync`, and removing a debugfs file may happen from any process context.
unsafe impl<T: SeqShow> Send for DebugfsFile<T> {}
// SAFETY: `&self` only gives `&T`, and `T: Sync`.
unsafe impl<T: SeqShow> Sync for DebugfsFile<T> {}

impl<T: SeqShow> DebugfsFile<T> {
    /// The data the file shows.
    pub(crate) fn data(&self) -> &T {
        // SAFETY: `self.data` holds a reference until drop (invariant); nothing mutates it.
        unsafe { &*self.data }
    }
}

impl<T: SeqShow> Drop for DebugfsFile<T> {
    fn drop(&mut self) {
        // SAFETY: the file is live (invariant). `debugfs_remove` sleeps (we are in process
        // context) and waits only for opens in progress: readers hold references of their own.
        unsafe { bindings::debugfs_remove(self.dentry.as_ptr()) };
        // SAFETY: no new open can take the file's reference any more; it is released once.
        drop(unsafe { Arc::from_raw(self.data) });
    }
}

// ------------------------------------------------------------------ time page

/// A reference to an order-0 page that the time page's shim gave (a namespace's page, or the
/// host's), dropped with `put_page`.
///
/// # Invariants
///
/// `self.0` is a live page on which this object owns one reference.
pub(crate) struct PageRef(NonNull<bindings::page>);

impl PageRef {
    /// The page (it stays live while `self` does).
    pub(crate) fn page(&self) -> BorrowedPage<'_> {
        // SAFETY: the page is live, of order 0, for as long as `self` holds its reference.
        unsafe { BorrowedPage::from_raw(self.0) }
    }
}

impl Drop for PageRef {
    fn drop(&mut self) {
        // SAFETY: the reference is ours (invariant), dropped once.
        unsafe { vp_timepage_page_put(self.0.as_ptr()) };
    }
}

/// A zeroed page that the shim fills with `struct vdso_probe_time_page` (`uapi/vdso_probe.h`) on
/// every timekeeping update, from a pvclock_gtod notifier of its own.
///
/// # Invariants
///
/// `self.tp` is a `struct vp_timepage` whose registered notifier writes into `self.page`.
pub(crate) struct PublishedPage {
    /// The host's page: written by the notifier, mapped through [`Self::page_for_current`]
    /// (which takes a reference for each mapping), released after the notifier stops.
    #[expect(dead_code, reason = "owned here; the shim reaches it through `tp`")]
    page: Page,
    tp: NonNull<RawTimePage>,
}

// SAFETY: the page and the C object may be used and released from any thread; the C object is
// only read (`stats`) through `&self`.
unsafe impl Send for PublishedPage {}
// SAFETY: as above.
unsafe impl Sync for PublishedPage {}

impl PublishedPage {
    /// Allocates the page and starts publishing (it is filled once before this returns).
    pub(crate) fn new() -> Result<Self> {
        let page = Page::alloc_page(GFP_KERNEL | __GFP_ZERO)?;
        // SAFETY: `page` is a live, zeroed page that outlives the registration: `Drop` stops the
        // notifier before the page is freed.
        let tp = unsafe { vp_timepage_start(page.as_ptr()) };
        let tp = from_err_ptr(tp).and_then(|tp| NonNull::new(tp).ok_or(EINVAL))?;
        // INVARIANT: registered above, writing into `page`.
        Ok(Self { page, tp })
    }

    /// The page for the calling task's time namespace: this one in the root namespace, else
    /// the namespace's own (the shim makes it on the first fault from the namespace, and keeps
    /// it up to date while any process maps it). Process context.
    pub(crate) fn page_for_current(&self) -> Result<PageRef> {
        // SAFETY: `self.tp` is live (invariant); the call is made in process context.
        let p = unsafe { vp_timepage_page_get(self.tp.as_ptr()) };
        let p = from_err_ptr(p).and_then(|p| NonNull::new(p).ok_or(EINVAL))?;
        // INVARIANT: the shim gave a reference to this page.
        Ok(PageRef(p))
    }

    /// A consistent copy of the page's statistics.
    pub(crate) fn stats(&self) -> TimePageStats {
        let mut out = TimePageStats {
            updates: 0,
            vdso_readable: 0,
            abi_size: 0,
            clocksource: [0; 32],
            clock_mode: [0; 16],
            clock_was_set_seq: 0,
            _pad: 0,
        };
        // SAFETY: `self.tp` is live (invariant); `out` is a writable `struct vp_tp_stats`.
        unsafe { vp_timepage_stats(self.tp.as_ptr(), &mut out) };
        out
    }

    /// Event number `seq` of the clocksource log, if it is still kept.
    pub(crate) fn log_entry(&self, seq: u64) -> Option<CsEvent> {
        let mut out = CsEvent {
            seq: 0,
            mono_ns: 0,
            real_sec: 0,
            mode: 0,
            rating: 0,
            clocksource: [0; 32],
            clock_mode: [0; 16],
        };
        // SAFETY: `self.tp` is live (invariant); `out` is a writable `struct vp_cs_event`.
        unsafe { vp_timepage_log_entry(self.tp.as_ptr(), seq, &mut out) }.then_some(out)
    }

    /// The clocksource log, oldest first, and how many events there were since load.
    pub(crate) fn clocksource_log(&self) -> Result<(KVec<CsEvent>, u64)> {
        let mut out = KVec::<CsEvent>::with_capacity(CS_LOG_LEN, GFP_KERNEL)?;
        let mut total = 0u64;
        // SAFETY: `self.tp` is live (invariant); `out` has room for `CS_LOG_LEN` events and the
        // shim writes at most that many; its lock serialises it with the notifier.
        let n = unsafe {
            vp_timepage_log(
                self.tp.as_ptr(),
                out.as_mut_ptr(),
                CS_LOG_LEN as c_uint,
                &mut total,
            )
        };
        // SAFETY: the shim initialised the first `n <= CS_LOG_LEN` elements.
        unsafe { out.inc_len((n as usize).min(CS_LOG_LEN)) };
        Ok((out, total))
    }
}

impl Drop for PublishedPage {
    fn drop(&mut self) {
        // SAFETY: registered (invariant); after this returns the notifier no longer runs and the
        // C object is freed, so the page can be freed when `self.page` drops.
        unsafe { vp_timepage_stop(self.tp.as_ptr()) };
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
    /// A fault by the mapping's own process at `address` (page `pgoff` of the file) in `vma`,
    /// under the mmap read lock or the VMA lock; may sleep. `user`: a fault of the process's
    /// own access (`FAULT_FLAG_USER`), not a population by the kernel (`mlockall`, GUP).
    fn fault(&self, vma: &VmaRef, pgoff: usize, address: usize, user: bool) -> Fault;
    /// A VMA was duplicated (fork, split, move).
    fn open(&self);
    /// A VMA went away.
    fn close(&self);
}

/// # Safety
///
/// Called by the fault path for a VMA whose `vm_ops` are `T`'s and whose private data is the `T`
/// given to [`install`].
unsafe extern "C" fn vma_fault<T: VmaHandler>(
    vmf: *mut bindings::vm_fault,
) -> bindings::vm_fault_t {
    // SAFETY: the fault path passes a valid `vm_fault` for the duration of the call.
    let vmf = unsafe { &*vmf };
    // As `vvar_fault` (lib/vdso/datastore.c): a page only the mapping's own process may fault in
    // (ptrace, /proc/<pid>/mem and process_vm_readv of an unpopulated page get SIGBUS -> EFAULT).
    if vmf.flags & bindings::fault_flag_FAULT_FLAG_REMOTE != 0 {
        return bindings::vm_fault_reason_VM_FAULT_SIGBUS;
    }
    let f = &vmf.__bindgen_anon_1;
    // SAFETY: `install`'s caller guarantees the private data is a live `T` while the VMA exists.
    let this = unsafe { &*(*f.vma).vm_private_data.cast::<T>() };
    // SAFETY: in 7.3, `->fault` of a VMA without `->map_pages` runs under the mmap read lock (or
    // the per-VMA lock), so `vma` is valid for the duration of the call.
    let vma = unsafe { VmaRef::from_raw(f.vma) };
    let user = vmf.flags & bindings::fault_flag_FAULT_FLAG_USER != 0;
    match this.fault(vma, f.pgoff, f.address, user) {
        Fault::NoPage => bindings::vm_fault_reason_VM_FAULT_NOPAGE,
        Fault::Oom => bindings::vm_fault_reason_VM_FAULT_OOM,
        Fault::SigBus => bindings::vm_fault_reason_VM_FAULT_SIGBUS,
    }
}

/// # Safety
///
/// Called by mm for a VMA whose `vm_ops` are `T`'s, as for [`vma_fault`].
unsafe extern "C" fn vma_open<T: VmaHandler>(vma: *mut bindings::vm_area_struct) {
    // SAFETY: as in `vma_fault`: the private data is a live `T`.
    unsafe { &*(*vma).vm_private_data.cast::<T>() }.open();
}

/// # Safety
///
/// As for [`vma_open`].
unsafe extern "C" fn vma_close<T: VmaHandler>(vma: *mut bindings::vm_area_struct) {
    // SAFETY: as in `vma_fault`: the private data is a live `T`.
    unsafe { &*(*vma).vm_private_data.cast::<T>() }.close();
}

/// A `vm_operations_struct` made for `T`.
struct VmOps<T>(bindings::vm_operations_struct, PhantomData<T>);

// SAFETY: the table is immutable and its functions may be called from any thread.
unsafe impl<T> Sync for VmOps<T> {}

/// One static `vm_operations_struct` per [`VmaHandler`] type.
trait HasVmOps: VmaHandler {
    const OPS: VmOps<Self>;
}

impl<T: VmaHandler> HasVmOps for T {
    const OPS: VmOps<T> = VmOps(
        bindings::vm_operations_struct {
            fault: Some(vma_fault::<T>),
            open: Some(vma_open::<T>),
            close: Some(vma_close::<T>),
            ..pin_init::zeroed()
        },
        PhantomData,
    );
}

/// The file offset of a new mapping, in pages.
pub(crate) fn vma_pgoff(vma: &VmaNew) -> usize {
    // SAFETY: `vma` is a VMA being set up by `mmap`, valid for this call; nothing else writes it.
    unsafe { (*vma.as_ptr()).vm_pgoff }
}

/// Makes `handler` the `vm_ops` and private data of `vma`.
///
/// # Safety
///
/// `handler` must stay valid until every VMA derived from `vma` (fork, split, mremap) is closed.
pub(crate) unsafe fn install<T: VmaHandler>(vma: &VmaNew, handler: &T) {
    let raw = vma.as_ptr();
    // SAFETY: `vma` is being set up by `mmap` (no one else sees it yet, the mmap write lock is
    // held); `T::OPS` is a static table for `T` private data; `handler` outlives the VMA by the
    // caller's guarantee.
    unsafe {
        (*raw).vm_private_data = core::ptr::from_ref(handler).cast_mut().cast();
        (*raw).vm_ops = &<T as HasVmOps>::OPS.0;
    }
}

/// Whether the current task has a compat address space (`TIF_ADDR32`).
pub(crate) fn current_addr32() -> bool {
    // SAFETY: `current` is valid in process context, where the module's init runs.
    unsafe { vp_task_addr32(bindings::get_current()) }
}

/// Review B3: several instances of the types that once hid a C global work side by side, each
/// with its own C object (tracepoint data, embedded `notifier_block`), and dropping one leaves
/// the others attached. Before the fix the second `Hooks::register` and `PublishedPage::new`
/// failed (`-EEXIST`, a notifier WARN), and dropping one detached all.
#[kunit_tests(vdso_probe_ffi)]
mod tests {
    use super::*;
    use kernel::{
        sync::atomic::{
            Atomic,
            Relaxed, //
        },
        time::{
            delay::fsleep,
            Delta, //
        },
    };

    /// Counts the events that reach one instance.
    struct Counter {
        adds: Atomic<u64>,
        removes: Atomic<u64>,
    }

    impl TaskEvents for Counter {
        fn on_event(this: ArcBorrow<'_, Self>, ev: TaskEvent) {
            match ev {
                TaskEvent::Add(_) => this.adds.fetch_add(1, Relaxed),
                TaskEvent::Remove(_) => this.removes.fetch_add(1, Relaxed),
                TaskEvent::Exec(_) => 0,
            };
        }

        fn on_fault(_this: ArcBorrow<'_, Self>, _ev: &FaultEvent) {}
    }

    impl Counter {
        fn new() -> Result<Arc<Self>> {
            Ok(Arc::new(
                Counter {
                    adds: Atomic::new(0),
                    removes: Atomic::new(0),
                },
                GFP_KERNEL,
            )?)
        }

        fn get(&self) -> (u64, u64) {
            (self.adds.load(Relaxed), self.removes.load(Relaxed))
        }
    }

    /// Runs a usermode helper and returns once it has been reaped: a process that forks and
    /// exits (`user_mode_thread` does not set `PF_KTHREAD`), whether or not the path execs.
    fn run_process() {
        let path = c"/bin/true";
        let mut argv = [path.as_char_ptr().cast_mut(), core::ptr::null_mut()];
        let mut envp = [core::ptr::null_mut()];
        // SAFETY: a NUL-terminated path and NULL-terminated arrays that outlive the call, which
        // waits (`UMH_WAIT_PROC`) until the helper has exited and been reaped.
        let _status = unsafe {
            bindings::call_usermodehelper(
                path.as_char_ptr(),
                argv.as_mut_ptr(),
                envp.as_mut_ptr(),
                bindings::UMH_WAIT_PROC as c_int,
            )
        };
    }

    /// Fails the case, saying why in the kernel log (KUnit's `assert!` takes no message).
    fn check(ok: bool, what: &str) -> Result {
        if !ok {
            pr_err!("vdso_probe_ffi: {what}\n");
            return Err(EINVAL);
        }
        Ok(())
    }

    /// Polls `done` every 10 ms for up to 5 s.
    fn wait_for(done: impl Fn() -> bool) -> bool {
        for _ in 0..500 {
            if done() {
                return true;
            }
            fsleep(Delta::from_millis(10));
        }
        done()
    }

    #[test]
    fn two_hooks_each_get_every_event_and_detach_alone() -> Result {
        let (a, b) = (Counter::new()?, Counter::new()?);
        let ha = Hooks::register(a.clone())?;
        let hb = Hooks::register(b.clone())?;
        let (a0, b0) = (a.get(), b.get());
        run_process();
        let (a1, b1) = (a.get(), b.get());
        check(
            a1.0 > a0.0 && a1.1 > a0.1,
            "instance A saw no fork or no exit",
        )?;
        check(
            b1.0 > b0.0 && b1.1 > b0.1,
            "instance B saw no fork or no exit",
        )?;
        drop(ha);
        let (a2, b2) = (a.get(), b.get());
        run_process();
        check(
            a.get() == a2,
            "instance A still called after its Hooks was dropped",
        )?;
        let b3 = b.get();
        check(b3.0 > b2.0 && b3.1 > b2.1, "dropping A's Hooks detached B")?;
        drop(hb);
        Ok(())
    }

    #[test]
    fn two_time_pages_publish_independently() -> Result {
        let a = PublishedPage::new()?;
        let b = PublishedPage::new()?;
        let (a0, b0) = (a.stats().updates, b.stats().updates);
        check(a0 >= 1 && b0 >= 1, "a page was not filled at registration")?;
        check(
            wait_for(|| a.stats().updates > a0 && b.stats().updates > b0),
            "a page saw no timekeeping update in 5 s",
        )?;
        drop(a);
        let b1 = b.stats().updates;
        check(
            wait_for(|| b.stats().updates > b1),
            "stopping page A stopped page B",
        )?;
        Ok(())
    }

    /// `pvclock_gtod_register_notifier` calls the whole chain with `was_set` true and the live
    /// timekeeper, and no `clock_was_set_seq` increment follows: a page already registered must
    /// not count another's registration as a clock set (before the fix, page A published one
    /// more than the kernel's value, and went back down at the next tick). A tick between the two
    /// reads would hide it; such an attempt (A saw more than the one call) is tried again.
    #[test]
    fn another_registration_is_not_a_clock_set() -> Result {
        let a = PublishedPage::new()?;
        for _ in 0..100 {
            let before = a.stats();
            let b = PublishedPage::new()?;
            let (a1, b1) = (a.stats(), b.stats());
            drop(b);
            if a1.updates != before.updates + 1 || b1.updates != 1 {
                continue;
            }
            return check(
                a1.clock_was_set_seq == b1.clock_was_set_seq
                    && a1.clock_was_set_seq == before.clock_was_set_seq,
                "page A counted page B's registration as a clock set",
            );
        }
        check(false, "no attempt without a tick in between (100 tries)")
    }
}
