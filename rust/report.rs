// SPDX-License-Identifier: GPL-2.0

//! One process's view of its vDSO, computed when its file is read.
//!
//! The view is gathered under the mmap read lock into a [`TaskView`], the lock is dropped, and
//! only then is it formatted. The line format (`key: value`, one fact per line) is specified in
//! the README and parsed by `samples/vdso-probe/src/report.rs`.

use crate::{
    ffi::{
        self,
        MmIdentity,
        MmInfo,
        MmReadGuard,
        PidRef,
        TaskExt,
        Timens,
        VmFlag,
        Vma,
        VvarLayout, //
    },
    vsyscall,
};
use core::fmt;
use kernel::{
    mm::MmWithUser,
    prelude::*, //
};

/// The most special mappings one report lists.
const MAX_MAPPINGS: usize = 8;

/// `EI_CLASS` and `e_machine` values of the vDSO images.
const ELFCLASS32: u8 = 1;
const ELFCLASS64: u8 = 2;
const EM_386: u16 = 3;
const EM_ARM: u16 = 40;
const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;

/// The process's ABI, from the ELF header of the vDSO image the kernel mapped for it.
#[derive(Clone, Copy)]
enum Abi {
    X86_64,
    Ia32,
    X32,
    Aarch64,
    /// AArch32 (`COMPAT` on arm64), with the compat vDSO.
    Aarch32,
    /// No vDSO image (e.g. `vdso=0`): only `TIF_ADDR32` (arm64: `TIF_32BIT`) is known.
    Unknown {
        addr32: bool,
    },
}

impl Abi {
    fn of(mm: &MmInfo, addr32: bool) -> Self {
        // The image class says ia32 or x32; without an image (vdso=0) only TIF_ADDR32 is known.
        match (mm.image_class, mm.image_machine) {
            (ELFCLASS64, EM_X86_64) => Abi::X86_64,
            (ELFCLASS32, EM_386) => Abi::Ia32,
            (ELFCLASS32, EM_X86_64) => Abi::X32,
            (ELFCLASS64, EM_AARCH64) => Abi::Aarch64,
            (ELFCLASS32, EM_ARM) => Abi::Aarch32,
            _ => Abi::Unknown { addr32 },
        }
    }

    fn name(self) -> &'static str {
        match self {
            Abi::X86_64 | Abi::Aarch64 => "64-bit",
            Abi::Ia32 => "ia32",
            Abi::X32 => "x32",
            Abi::Aarch32 => "aarch32",
            Abi::Unknown { addr32: true } => "unknown (addr32)",
            Abi::Unknown { addr32: false } => "unknown",
        }
    }
}

/// How the special mappings were found.
#[derive(Clone, Copy)]
enum Lookup {
    /// `mm->context.vdso` and its lower neighbours: no walk.
    Neighbours,
    /// A walk of every VMA (the fast path failed, e.g. after `mremap`).
    Walk { vmas: usize },
}

/// Pages of a mapping whose population is tracked (bits of [`Mapping::present`]).
const TRACKED_PAGES: usize = u64::BITS as usize;
/// Pages of a mapping whose page frame is kept (the `[vvar]` time page is among them).
const KEPT_PFNS: usize = 8;

/// One special mapping and its populated pages.
#[derive(Clone, Copy, Default)]
struct Mapping {
    vma: Vma,
    /// Bit `i` set: page `i` is populated (only the first [`TRACKED_PAGES`] are tracked).
    present: u64,
    /// Page frame of page `i` (only the first [`KEPT_PFNS`] are kept).
    pfns: [usize; KEPT_PFNS],
}

impl Mapping {
    fn read(guard: &MmReadGuard<'_>, vma: Vma) -> Self {
        let mut m = Mapping {
            vma,
            ..Default::default()
        };
        for i in 0..vma.pages().min(TRACKED_PAGES) {
            if let Some(pfn) = guard.pfn(vma.start + (i << kernel::page::PAGE_SHIFT)) {
                m.present |= 1 << i;
                if let Some(slot) = m.pfns.get_mut(i) {
                    *slot = pfn;
                }
            }
        }
        m
    }

    fn populated(&self, page: u32) -> bool {
        (page as usize) < TRACKED_PAGES && self.present & (1 << page) != 0
    }
}

/// Everything the report shows about a process with an address space.
struct MmView {
    info: MmInfo,
    lookup: Lookup,
    maps: KVec<Mapping>,
}

/// One process's report.
pub(crate) struct TaskView {
    pid: i32,
    comm: [u8; ffi::COMM_LEN],
    abi: Abi,
    mm: MmView,
    timens: Timens,
    vsyscall: vsyscall::Info,
    layout: VvarLayout,
}

/// The mappings the kernel puts right below `[vdso]`, nearest first: x86's `map_vdso()`
/// (`arch/x86/entry/vdso/vma.c`) and arm64's `__setup_additional_pages()`
/// (`arch/arm64/kernel/vdso.c`).
const BELOW_VDSO: &[&str] = if cfg!(CONFIG_X86) {
    &["[vvar_vclock]", "[vvar]"]
} else {
    &["[vvar]"]
};

/// Finds `[vdso]` from `mm->context.vdso`, then the [`BELOW_VDSO`] mappings right below it;
/// returns them, `[vdso]` first, and how many.
fn by_neighbours(guard: &MmReadGuard<'_>, vdso_base: usize) -> Option<([Vma; 3], usize)> {
    let mut found = [Vma::default(); 3];
    found[0] = guard.vma_at(vdso_base).filter(|v| v.name() == "[vdso]")?;
    for (i, name) in BELOW_VDSO.iter().enumerate() {
        let above = found[i];
        found[i + 1] = guard
            .vma_at(above.start.checked_sub(1)?)
            .filter(|v| v.name() == *name && v.end == above.start)?;
    }
    Some((found, BELOW_VDSO.len() + 1))
}

/// Collects every special (named, not file-backed) mapping by walking all VMAs.
fn by_walk(guard: &MmReadGuard<'_>, out: &mut KVec<Mapping>) -> Result<usize> {
    let mut addr = 0;
    let mut vmas = 0;
    while let Some(vma) = guard.vma_after(addr) {
        vmas += 1;
        addr = vma.end;
        if !vma.has_file && !vma.name().is_empty() && out.len() < MAX_MAPPINGS {
            out.push(Mapping::read(guard, vma), GFP_KERNEL)?;
        }
    }
    Ok(vmas)
}

impl MmView {
    fn gather(mm: &MmWithUser, addr32: bool) -> Result<Self> {
        let mut maps = KVec::with_capacity(3, GFP_KERNEL)?;
        let guard = ffi::mmap_read_lock_killable(mm)?;
        let info = guard.info(addr32);
        let lookup = match by_neighbours(&guard, info.vdso_base) {
            Some((found, n)) => {
                // In address order, as /proc/<pid>/maps lists them.
                for vma in found[..n].iter().rev() {
                    maps.push(Mapping::read(&guard, *vma), GFP_KERNEL)?;
                }
                Lookup::Neighbours
            }
            None => Lookup::Walk {
                vmas: by_walk(&guard, &mut maps)?,
            },
        };
        drop(guard);
        Ok(MmView { info, lookup, maps })
    }

    fn find(&self, name: &str) -> Option<&Mapping> {
        self.maps.iter().find(|m| m.vma.name() == name)
    }
}

/// The open-time part of a report file: the access decision and the address space the file is
/// bound to (as `proc_mem_open` binds `/proc/<pid>/maps`): a file opened before its process
/// execs never shows the new image (a setuid exec's layout included). The decision is the
/// kernel's own for `/proc/<pid>/maps` ([`ffi::proc_maps_allowed`]), taken between two reads of
/// the address space: if the process exec'd meanwhile, the open fails with `EAGAIN`.
pub(crate) fn open(pid: &PidRef) -> Result<MmIdentity> {
    // A thread may exit between being picked and procfs looking it up (ENOENT): pick again.
    for _ in 0..3 {
        let leader = pid.leader().ok_or(ESRCH)?;
        let thread = pid.live_thread().ok_or(ESRCH)?;
        let before = thread.mm_async().ok_or(ESRCH)?;
        match ffi::proc_maps_allowed(&leader, &thread) {
            Ok(()) => {}
            Err(e) if e == ENOENT => continue,
            Err(e) => return Err(e),
        }
        let after = thread.mm_async().ok_or(ESRCH)?;
        let bound = MmIdentity::of(&before);
        if !bound.is(&after) {
            return Err(EAGAIN);
        }
        return Ok(bound);
    }
    // Still no such procfs entry: the process is gone, or the opener cannot see it.
    Err(if pid.alive() { EACCES } else { ESRCH })
}

impl TaskView {
    /// Computes the report of the process `pid`, whose file was opened on the address space
    /// `bound`: `ESRCH` once the process is gone, `ESTALE` once it has exec'd.
    pub(crate) fn gather(
        pid: &PidRef,
        bound: &MmIdentity,
        vsyscall: vsyscall::Info,
    ) -> Result<Self> {
        let leader = pid.leader().ok_or(ESRCH)?;
        // The leader may be a zombie (pthread_exit() in main) while other threads run.
        let thread = pid.live_thread().ok_or(ESRCH)?;
        let mm = thread.mm_async().ok_or(ESRCH)?;
        if !bound.is(&mm) {
            return Err(ESTALE);
        }
        let addr32 = thread.addr32();
        let view = MmView::gather(&mm, addr32)?;
        // If the process exited meanwhile, this is the last reference: `mmput_async` hands the
        // teardown of the address space to a worker, outside this read.
        drop(mm);
        Ok(TaskView {
            pid: pid.nr_init_ns(),
            comm: leader.comm(),
            abi: Abi::of(&view.info, addr32),
            mm: view,
            timens: thread.timens()?,
            vsyscall,
            layout: ffi::vvar_layout(),
        })
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// Writes `sec.nsec` of a timespec offset, with the sign in front.
struct Offset {
    sec: i64,
    nsec: i64,
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Time namespace offsets are bounded by KTIME_MAX / 2, so nanoseconds fit an i64.
        let ns = self
            .sec
            .saturating_mul(1_000_000_000)
            .saturating_add(self.nsec);
        let sign = if ns < 0 { "-" } else { "" };
        let ns = ns.unsigned_abs();
        write!(f, "{sign}{}.{:09}", ns / 1_000_000_000, ns % 1_000_000_000)
    }
}

fn perms(v: &Vma) -> [u8; 4] {
    [
        if v.has(VmFlag::Read) { b'r' } else { b'-' },
        if v.has(VmFlag::Write) { b'w' } else { b'-' },
        if v.has(VmFlag::Exec) { b'x' } else { b'-' },
        if v.has(VmFlag::MayShare) { b's' } else { b'p' },
    ]
}

const FLAG_NAMES: [(VmFlag, &str); 8] = [
    (VmFlag::Io, "io"),
    (VmFlag::PfnMap, "pfnmap"),
    (VmFlag::MixedMap, "mixedmap"),
    (VmFlag::DontExpand, "dontexpand"),
    (VmFlag::DontDump, "dontdump"),
    (VmFlag::Sealed, "sealed"),
    (VmFlag::MayWrite, "maywrite"),
    (VmFlag::MayExec, "mayexec"),
];

/// The role of page `page` of the mapping called `map` (`[vvar]`, `[vvar_vclock]`, `[vdso]`).
pub(crate) fn vvar_page_role(l: &VvarLayout, map: &str, page: u32) -> &'static str {
    match map {
        "[vvar]" if page == l.time => "time_data",
        "[vvar]" if page == l.timens => "timens_data",
        "[vvar]" if page == l.rng => "rng_data",
        "[vvar]" if (l.arch_start..=l.arch_end).contains(&page) => "arch_data",
        "[vvar_vclock]" if page == l.pvclock => "pvclock",
        "[vvar_vclock]" if page == l.hvclock => "hvclock",
        "[vdso]" => "text",
        _ => "other",
    }
}

impl TaskView {
    fn page_role(&self, map: &str, page: u32) -> &'static str {
        vvar_page_role(&self.layout, map, page)
    }

    fn fmt_mapping(&self, f: &mut fmt::Formatter<'_>, m: &Mapping) -> fmt::Result {
        let v = &m.vma;
        let key = v.name().trim_start_matches('[').trim_end_matches(']');
        let p = perms(v);
        writeln!(f, "{key}.range: {:08x}-{:08x}", v.start, v.end)?;
        writeln!(f, "{key}.pages: {}", v.pages())?;
        writeln!(
            f,
            "{key}.perms: {}",
            core::str::from_utf8(&p).unwrap_or("????")
        )?;
        write!(f, "{key}.flags:")?;
        for (flag, name) in FLAG_NAMES {
            if v.has(flag) {
                write!(f, " {name}")?;
            }
        }
        writeln!(f)?;
        writeln!(f, "{key}.populated: {}", m.present.count_ones())?;
        for page in 0..v.pages().min(TRACKED_PAGES) as u32 {
            writeln!(
                f,
                "{key}.page{page}: {} {}",
                self.page_role(v.name(), page),
                if m.populated(page) {
                    "populated"
                } else {
                    "not-populated"
                }
            )?;
        }
        Ok(())
    }

    /// Where the timens page is: in a time namespace the kernel swaps the namespace's page into
    /// the time-data slot of `[vvar]` and the real data into the timens slot.
    fn timens_page(&self) -> &'static str {
        if self.timens.is_root {
            return "none (root namespace)";
        }
        let Some(vvar) = self.mm.find("[vvar]") else {
            return "no [vvar] mapping";
        };
        match vvar.pfns.get(self.layout.time as usize) {
            Some(0) | None => "not-populated",
            Some(&pfn) if pfn == self.timens.vvar_pfn => "swapped-in",
            Some(_) => "mismatch",
        }
    }

    fn fmt_mm(&self, f: &mut fmt::Formatter<'_>, mm: &MmView) -> fmt::Result {
        writeln!(f, "map_count: {}", mm.info.map_count)?;
        match mm.lookup {
            Lookup::Neighbours => writeln!(f, "lookup: neighbours")?,
            Lookup::Walk { vmas } => writeln!(f, "lookup: walk ({vmas} vmas)")?,
        }
        for m in mm.maps.iter() {
            self.fmt_mapping(f, m)?;
        }
        let vdso = mm.find("[vdso]").map(|m| m.vma.start);
        let i = &mm.info;
        writeln!(f, "context.vdso: {:#x}", i.vdso_base)?;
        writeln!(
            f,
            "context.vdso_matches: {}",
            // No [vdso] (vdso=0) and a NULL mm->context.vdso agree too.
            yes_no(vdso.unwrap_or(0) == i.vdso_base)
        )?;
        if i.auxv_has_sysinfo_ehdr {
            writeln!(f, "auxv.sysinfo_ehdr: {:#x}", i.auxv_sysinfo_ehdr)?;
            let ok = vdso == Some(i.auxv_sysinfo_ehdr);
            writeln!(f, "auxv.sysinfo_ehdr_matches: {}", yes_no(ok))?;
        } else {
            writeln!(f, "auxv.sysinfo_ehdr: absent")?;
        }
        writeln!(f, "vdso_image.size: {}", i.image_size)?;
        writeln!(f, "vsyscall.mode: {}", self.vsyscall.mode.name())?;
        let usable = i.has_vsyscall && self.vsyscall.mode != vsyscall::Mode::Disabled;
        writeln!(f, "vsyscall.usable: {}", yes_no(usable))
    }
}

impl fmt::Display for TaskView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "pid: {}", self.pid)?;
        writeln!(f, "comm: {}", ffi::str_until_nul(&self.comm))?;
        writeln!(f, "abi: {}", self.abi.name())?;
        // Files exist for user processes only, and a report needs the address space.
        writeln!(f, "mm: yes")?;
        self.fmt_mm(f, &self.mm)?;
        let t = &self.timens;
        writeln!(f, "timens.root: {}", yes_no(t.is_root))?;
        writeln!(f, "timens.inum: {}", t.inum)?;
        writeln!(
            f,
            "timens.monotonic: {}",
            Offset {
                sec: t.mono_sec,
                nsec: t.mono_nsec
            }
        )?;
        writeln!(
            f,
            "timens.boottime: {}",
            Offset {
                sec: t.boot_sec,
                nsec: t.boot_nsec
            }
        )?;
        writeln!(f, "timens.page: {}", self.timens_page())
    }
}
