// SPDX-License-Identifier: GPL-2.0

//! One process's view of its vDSO, computed when its file is read.
//!
//! The view is gathered under the mmap read lock into a [`TaskView`], the lock is dropped, and
//! only then is it formatted. The line format (`key: value`, one fact per line) is specified in
//! the README and parsed by `samples/vdso-probe/src/report.rs`.

use crate::{
    ffi::{
        self,
        MmInfo,
        MmReadGuard,
        PidRef,
        Timens,
        VmFlag,
        Vma,
        VvarLayout, //
    },
    vsyscall,
};
use core::fmt;
use kernel::prelude::*;

/// The most special mappings one report lists.
const MAX_MAPPINGS: usize = 8;

/// `EI_CLASS` and `e_machine` values of the vDSO images.
const ELFCLASS32: u8 = 1;
const ELFCLASS64: u8 = 2;
const EM_386: u16 = 3;
const EM_X86_64: u16 = 62;

/// The process's ABI, from the ELF header of the vDSO image the kernel mapped for it.
#[derive(Clone, Copy)]
enum Abi {
    X86_64,
    Ia32,
    X32,
    /// No vDSO image (e.g. `vdso=0`): only `TIF_ADDR32` is known.
    Unknown {
        addr32: bool,
    },
}

impl Abi {
    fn of(mm: &MmInfo, addr32: bool) -> Self {
        match (mm.image_class, mm.image_machine) {
            (ELFCLASS64, EM_X86_64) => Abi::X86_64,
            (ELFCLASS32, EM_386) => Abi::Ia32,
            (ELFCLASS32, EM_X86_64) => Abi::X32,
            _ => Abi::Unknown { addr32 },
        }
    }

    fn name(self) -> &'static str {
        match self {
            Abi::X86_64 => "64-bit",
            Abi::Ia32 => "ia32",
            Abi::X32 => "x32",
            Abi::Unknown { addr32: true } => "unknown (addr32)",
            Abi::Unknown { addr32: false } => "unknown",
        }
    }
}

/// How the special mappings were found.
#[derive(Clone, Copy)]
enum Lookup {
    /// `mm->context.vdso` and its two lower neighbours: no walk.
    Neighbours,
    /// A walk of every VMA (the fast path failed, e.g. after `mremap`).
    Walk { vmas: usize },
}

/// One special mapping and its populated pages.
#[derive(Clone, Copy, Default)]
struct Mapping {
    vma: Vma,
    /// Bit `i` set: page `i` is populated (only the first 64 pages are tracked).
    present: u64,
    /// Page frame of page `i` (only the first 8 pages are kept).
    pfns: [usize; 8],
}

impl Mapping {
    fn read(guard: &MmReadGuard<'_>, vma: Vma) -> Self {
        let mut m = Mapping {
            vma,
            ..Default::default()
        };
        for i in 0..vma.pages().min(64) {
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
        page < 64 && self.present & (1 << page) != 0
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
    mm: Option<MmView>,
    timens: Timens,
    vsyscall: vsyscall::Info,
    layout: VvarLayout,
}

/// Finds `[vdso]` from `mm->context.vdso`, then `[vvar_vclock]` and `[vvar]` right below it.
fn by_neighbours(guard: &MmReadGuard<'_>, vdso_base: usize) -> Option<[Vma; 3]> {
    let vdso = guard.vma_at(vdso_base).filter(|v| v.name() == "[vdso]")?;
    let vclock = guard
        .vma_at(vdso.start.checked_sub(1)?)
        .filter(|v| v.name() == "[vvar_vclock]" && v.end == vdso.start)?;
    let vvar = guard
        .vma_at(vclock.start.checked_sub(1)?)
        .filter(|v| v.name() == "[vvar]" && v.end == vclock.start)?;
    Some([vvar, vclock, vdso])
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
    fn gather(mm: &ffi::MmRef) -> Result<Self> {
        let info = mm.info();
        let mut maps = KVec::with_capacity(3, GFP_KERNEL)?;
        let guard = mm.read_lock()?;
        let lookup = match by_neighbours(&guard, info.vdso_base) {
            Some(found) => {
                for vma in found {
                    maps.push(Mapping::read(&guard, vma), GFP_KERNEL)?;
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

impl TaskView {
    /// Computes the report of the process `pid` (`ESRCH` once it is gone).
    pub(crate) fn gather(pid: &PidRef, vsyscall: vsyscall::Info) -> Result<Self> {
        let task = pid.task().ok_or(ESRCH)?;
        let mm = match task.mm() {
            Some(mm) => Some(MmView::gather(&mm)?),
            // A user process without an mm is exiting: it is gone for our purposes.
            None if !task.is_kthread() => return Err(ESRCH),
            None => None,
        };
        let info = mm.as_ref().map(|m| m.info).unwrap_or_default();
        Ok(TaskView {
            pid: pid.nr(),
            comm: task.comm(),
            abi: Abi::of(&info, task.addr32()),
            mm,
            timens: task.timens()?,
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
struct Offset(i64, i64);

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Time namespace offsets are bounded by KTIME_MAX / 2, so nanoseconds fit an i64.
        let ns = self.0.saturating_mul(1_000_000_000).saturating_add(self.1);
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
        if v.has(VmFlag::Shared) { b's' } else { b'p' },
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

impl TaskView {
    fn page_role(&self, map: &str, page: u32) -> &'static str {
        let l = &self.layout;
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
        for page in 0..v.pages().min(64) as u32 {
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
        let Some(vvar) = self.mm.as_ref().and_then(|m| m.find("[vvar]")) else {
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
            yes_no(vdso == Some(i.vdso_base))
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
        let usable = i.has_vsyscall && self.vsyscall.mode != vsyscall::Mode::None;
        writeln!(f, "vsyscall.usable: {}", yes_no(usable))
    }
}

impl fmt::Display for TaskView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "pid: {}", self.pid)?;
        writeln!(f, "comm: {}", ffi::str_until_nul(&self.comm))?;
        writeln!(f, "abi: {}", self.abi.name())?;
        match &self.mm {
            Some(mm) => {
                writeln!(f, "mm: yes")?;
                self.fmt_mm(f, mm)?;
            }
            None => writeln!(f, "mm: none (kernel thread)")?,
        }
        let t = &self.timens;
        writeln!(f, "timens.root: {}", yes_no(t.is_root))?;
        writeln!(f, "timens.inum: {}", t.inum)?;
        writeln!(f, "timens.monotonic: {}", Offset(t.mono_sec, t.mono_nsec))?;
        writeln!(f, "timens.boottime: {}", Offset(t.boot_sec, t.boot_nsec))?;
        writeln!(f, "timens.page: {}", self.timens_page())
    }
}
