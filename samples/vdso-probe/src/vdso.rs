// SPDX-License-Identifier: GPL-2.0
//! Locating, dumping and parsing the x86_64 vDSO, and calling into it.
//!
//! The kernel passes the address of the vDSO's ELF header in the auxiliary vector
//! (`AT_SYSINFO_EHDR`). The vDSO is a complete, prelinked ELF shared object: the kernel maps
//! the whole image, section header table included, so its size can be derived from its own
//! headers (the section header table is at the end of the image, see `vdso2c` in
//! `arch/x86/entry/vdso/`).
//!
//! This module:
//!
//! * finds the image in the current process ([`LiveVdso::locate`]) or in another process
//!   through `/proc/PID/maps` and `/proc/PID/mem` ([`dump_pid`]);
//! * parses both the ELF64 x86_64 vDSO and the ELF32 ones (ia32: `EM_386`, x32: `EM_X86_64`)
//!   with one set of helpers generic over object's [`FileHeader`] trait ([`ElfClass`],
//!   [`VdsoAbi`]); only calling into the vDSO is restricted to the native x86_64 image;
//! * computes the image size from the ELF headers ([`elf_image_size`]);
//! * extracts the GNU build-id and the Linux version note ([`build_id`], [`linux_version_code`]);
//! * lists dynamic symbols with their versions in `objdump -T` layout ([`dynamic_symbols`],
//!   [`DynamicSymbol::objdump_line`]);
//! * resolves `name@VERSION` to an address in the live mapping and wraps
//!   `__vdso_clock_gettime` / `__vdso_gettimeofday` in safe callers ([`VdsoClockGettime`],
//!   [`VdsoGettimeofday`]);
//! * wraps the raw `clock_gettime`/`gettimeofday` system calls and the legacy vsyscall page
//!   ([`VsyscallGettimeofday`]) so that the benchmark and the ptrace demo compare like with like.
//!
//! All raw-pointer work is confined to a few small `unsafe` blocks, each with the argument
//! for its preconditions.

use std::fmt;
use std::fs;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::str::FromStr;

use anyhow::{anyhow, bail, ensure, Context, Result};
use object::elf;
use object::read::elf::{FileHeader, ProgramHeader as _, SectionHeader as _, Sym as _};
use object::read::SectionIndex;
use object::Endianness;
use serde::Serialize;

/// Version under which the x86_64 vDSO exports its symbols (`arch/x86/entry/vdso/vdso.lds.S`).
pub const VDSO_VERSION: &str = "LINUX_2.6";
/// Name of the vDSO `clock_gettime` entry point.
pub const CLOCK_GETTIME_SYMBOL: &str = "__vdso_clock_gettime";
/// Name of the vDSO `gettimeofday` entry point.
pub const GETTIMEOFDAY_SYMBOL: &str = "__vdso_gettimeofday";
/// Address of the legacy vsyscall `gettimeofday` entry (`VSYSCALL_ADDR`, first slot).
pub const VSYSCALL_GETTIMEOFDAY_ADDR: usize = 0xffff_ffff_ff60_0000;

/// ABI of `__vdso_clock_gettime`: returns 0 or a *negative errno* (not -1/errno).
pub type ClockGettimeFn = unsafe extern "C" fn(libc::clockid_t, *mut libc::timespec) -> libc::c_int;
/// ABI of `__vdso_gettimeofday` and of the vsyscall `gettimeofday` slot.
pub type GettimeofdayFn =
    unsafe extern "C" fn(*mut libc::timeval, *mut libc::timezone) -> libc::c_int;

// ---------------------------------------------------------------------------------------------
// Clocks and raw system calls
// ---------------------------------------------------------------------------------------------

/// The POSIX clocks the vDSO implements (or falls back to the syscall for).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Clock {
    /// `CLOCK_REALTIME`
    Realtime,
    /// `CLOCK_MONOTONIC`
    Monotonic,
    /// `CLOCK_MONOTONIC_RAW`
    MonotonicRaw,
    /// `CLOCK_BOOTTIME`
    Boottime,
    /// `CLOCK_TAI`
    Tai,
    /// `CLOCK_REALTIME_COARSE`
    RealtimeCoarse,
    /// `CLOCK_MONOTONIC_COARSE`
    MonotonicCoarse,
}

impl Clock {
    /// Every clock, in the order the benchmark reports them.
    pub const ALL: [Clock; 7] = [
        Clock::Realtime,
        Clock::Monotonic,
        Clock::MonotonicRaw,
        Clock::Boottime,
        Clock::Tai,
        Clock::RealtimeCoarse,
        Clock::MonotonicCoarse,
    ];

    /// The `clockid_t` value.
    pub fn id(self) -> libc::clockid_t {
        match self {
            Clock::Realtime => libc::CLOCK_REALTIME,
            Clock::Monotonic => libc::CLOCK_MONOTONIC,
            Clock::MonotonicRaw => libc::CLOCK_MONOTONIC_RAW,
            Clock::Boottime => libc::CLOCK_BOOTTIME,
            Clock::Tai => libc::CLOCK_TAI,
            Clock::RealtimeCoarse => libc::CLOCK_REALTIME_COARSE,
            Clock::MonotonicCoarse => libc::CLOCK_MONOTONIC_COARSE,
        }
    }

    /// The name without the `CLOCK_` prefix, e.g. `MONOTONIC_RAW`.
    pub fn short_name(self) -> &'static str {
        match self {
            Clock::Realtime => "REALTIME",
            Clock::Monotonic => "MONOTONIC",
            Clock::MonotonicRaw => "MONOTONIC_RAW",
            Clock::Boottime => "BOOTTIME",
            Clock::Tai => "TAI",
            Clock::RealtimeCoarse => "REALTIME_COARSE",
            Clock::MonotonicCoarse => "MONOTONIC_COARSE",
        }
    }
}

impl fmt::Display for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CLOCK_{}", self.short_name())
    }
}

impl FromStr for Clock {
    type Err = anyhow::Error;

    /// Accepts `monotonic`, `MONOTONIC`, `CLOCK_MONOTONIC`, `monotonic-raw`, ...
    fn from_str(s: &str) -> Result<Self> {
        let upper = s.trim().to_ascii_uppercase().replace('-', "_");
        let bare = upper.strip_prefix("CLOCK_").unwrap_or(&upper);
        Clock::ALL
            .into_iter()
            .find(|c| c.short_name() == bare)
            .ok_or_else(|| {
                let names: Vec<_> = Clock::ALL.iter().map(|c| c.short_name()).collect();
                anyhow!(
                    "unknown clock {}; expected one of {}",
                    crate::cli::quote(s),
                    names.join(", ")
                )
            })
    }
}

/// A zeroed `timespec`.
pub fn zero_timespec() -> libc::timespec {
    libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    }
}

/// A zeroed `timeval`.
pub fn zero_timeval() -> libc::timeval {
    libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    }
}

/// `timespec` as nanoseconds (valid for any clock value a running system produces).
pub fn timespec_ns(ts: &libc::timespec) -> i128 {
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

/// Raw `clock_gettime` system call (never the vDSO). Returns the kernel's return value
/// (0 on success, -1 with `errno` set on failure, as `syscall(2)` reports it).
#[inline]
pub fn raw_syscall_clock_gettime(clock: libc::clockid_t, ts: &mut libc::timespec) -> libc::c_long {
    // SAFETY: SYS_clock_gettime takes (clockid_t, struct __kernel_timespec *). On x86_64
    // `libc::timespec` has the same layout as `__kernel_timespec` (two 64-bit fields), and `ts`
    // is a valid, exclusively borrowed pointer for the duration of the call. An invalid clock
    // id makes the kernel return -EINVAL without touching memory.
    unsafe { libc::syscall(libc::SYS_clock_gettime, clock, ts as *mut libc::timespec) }
}

/// Raw `gettimeofday` system call (never the vDSO), with a NULL timezone.
#[inline]
pub fn raw_syscall_gettimeofday(tv: &mut libc::timeval) -> libc::c_long {
    // SAFETY: SYS_gettimeofday takes (struct timeval *, struct timezone *); `tv` is a valid,
    // exclusively borrowed `timeval` (the kernel layout on x86_64) and the timezone pointer
    // is NULL, which the kernel accepts and ignores.
    unsafe {
        libc::syscall(
            libc::SYS_gettimeofday,
            tv as *mut libc::timeval,
            std::ptr::null_mut::<libc::timezone>(),
        )
    }
}

/// Reads `clock` through the raw system call.
pub fn syscall_clock_gettime(clock: libc::clockid_t) -> Result<libc::timespec> {
    let mut ts = zero_timespec();
    if raw_syscall_clock_gettime(clock, &mut ts) != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("syscall(SYS_clock_gettime, {clock})"));
    }
    Ok(ts)
}

/// Reads `clock` through libc's `clock_gettime` (which itself uses the vDSO when it can).
pub fn libc_clock_gettime(clock: libc::clockid_t) -> Result<libc::timespec> {
    let mut ts = zero_timespec();
    // SAFETY: `ts` is a valid, exclusively borrowed timespec; libc validates the clock id.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("clock_gettime({clock})"));
    }
    Ok(ts)
}

// ---------------------------------------------------------------------------------------------
// /proc helpers
// ---------------------------------------------------------------------------------------------

/// One line of `/proc/PID/maps`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MapsEntry {
    /// Start address (inclusive).
    pub start: u64,
    /// End address (exclusive).
    pub end: u64,
    /// Permission string, e.g. `r-xp`.
    pub perms: String,
    /// Path or pseudo name (`[vdso]`, `[vsyscall]`, ...), empty for anonymous memory.
    pub name: String,
}

impl MapsEntry {
    /// Length of the mapping in bytes.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// True if the mapping is empty (never the case for real mappings).
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }

    /// True if the permission string allows execution.
    pub fn executable(&self) -> bool {
        self.perms.as_bytes().get(2) == Some(&b'x')
    }
}

/// Splits off the first whitespace-separated field: `(field, rest)`.
fn split_field(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

/// Parses the text of a `/proc/PID/maps` file.
pub fn parse_maps(text: &str) -> Result<Vec<MapsEntry>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            // start-end perms offset dev inode [name]; the name may contain spaces.
            let (range, rest) = split_field(line);
            let (perms, mut rest) = split_field(rest);
            for _ in 0..3 {
                rest = split_field(rest).1;
            }
            let name = rest.trim();
            ensure!(
                !perms.is_empty(),
                "maps line without permissions: {}",
                crate::cli::quote(line)
            );
            let (start, end) = range.split_once('-').with_context(|| {
                format!("bad address range in maps line {}", crate::cli::quote(line))
            })?;
            let start = u64::from_str_radix(start, 16)
                .with_context(|| format!("bad start address in {}", crate::cli::quote(line)))?;
            let end = u64::from_str_radix(end, 16)
                .with_context(|| format!("bad end address in {}", crate::cli::quote(line)))?;
            ensure!(
                end >= start,
                "inverted range in maps line {}",
                crate::cli::quote(line)
            );
            Ok(MapsEntry {
                start,
                end,
                perms: perms.to_string(),
                name: name.to_string(),
            })
        })
        .collect()
}

/// Finds the mapping called `name` (e.g. `[vdso]`) in `/proc/PID/maps` (`pid = None`: self).
/// `Ok(None)` means the file was read and has no such line.
pub fn find_mapping(pid: Option<libc::pid_t>, name: &str) -> Result<Option<MapsEntry>> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/maps"),
        None => "/proc/self/maps".to_string(),
    };
    let text = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    Ok(parse_maps(&text)
        .with_context(|| format!("parsing {path}"))?
        .into_iter()
        .find(|e| e.name == name))
}

/// The system page size.
pub fn page_size() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(v).ok().filter(|&v| v > 0).unwrap_or(4096)
}

/// The current clocksource (`/sys/devices/system/clocksource/clocksource0/current_clocksource`).
pub fn current_clocksource() -> Result<String> {
    let path = "/sys/devices/system/clocksource/clocksource0/current_clocksource";
    Ok(fs::read_to_string(path)
        .with_context(|| format!("reading {path}"))?
        .trim()
        .to_string())
}

/// Whether the x86 vDSO can read a clocksource without entering the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VdsoClockMode {
    /// The clocksource has a vDSO clock mode (`tsc`: `VDSO_CLOCKMODE_TSC`, `kvm-clock`:
    /// `VDSO_CLOCKMODE_PVCLOCK`, Hyper-V TSC page: `VDSO_CLOCKMODE_HVCLOCK`).
    Capable,
    /// No vDSO clock mode (`hpet`, `acpi_pm`, `jiffies`, ...): the high-resolution clocks
    /// fall back to the real system call from inside the vDSO.
    Fallback,
    /// A clocksource this tool does not know.
    Unknown,
}

/// Classifies a clocksource name. Note that `kvm-clock` is only vDSO-capable while the host
/// advertises `PVCLOCK_TSC_STABLE_BIT`; without it the vDSO falls back to the syscall.
pub fn vdso_clock_mode(clocksource: &str) -> VdsoClockMode {
    match clocksource {
        "tsc" | "kvm-clock" | "hyperv_clocksource_tsc_page" => VdsoClockMode::Capable,
        "hpet" | "acpi_pm" | "jiffies" | "refined-jiffies" | "pit" => VdsoClockMode::Fallback,
        _ => VdsoClockMode::Unknown,
    }
}

// ---------------------------------------------------------------------------------------------
// ELF parsing (works on any byte slice: a live mapping, a /proc/PID/mem copy or a file)
// ---------------------------------------------------------------------------------------------
/// ELF header of the ia32 (`EM_386`) and x32 (`EM_X86_64`) vDSOs.
type Ehdr32 = elf::FileHeader32<Endianness>;
/// ELF header of the x86_64 vDSO. Endianness is checked at parse time for both classes.
type Ehdr64 = elf::FileHeader64<Endianness>;

/// Evaluates `$body` with the type alias `$h` bound to the ELF header type ([`Ehdr32`] or
/// [`Ehdr64`]) that matches the class of `$data`, so that one generic helper serves both.
/// Returns early with an error if `$data` is not an ELF image of a known class.
macro_rules! with_ehdr {
    ($data:expr, $h:ident => $body:expr) => {
        match ElfClass::of($data)? {
            ElfClass::Elf32 => {
                type $h = Ehdr32;
                $body
            }
            ElfClass::Elf64 => {
                type $h = Ehdr64;
                $body
            }
        }
    };
}

/// The ELF class (`e_ident[EI_CLASS]`) of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ElfClass {
    /// `ELFCLASS32`: the ia32 vDSO (`vdso32.so`) and the x32 vDSO (`vdsox32.so`).
    Elf32,
    /// `ELFCLASS64`: the x86_64 vDSO (`vdso64.so`).
    Elf64,
}

impl ElfClass {
    /// Reads the class from the ELF identification at the start of `data`.
    pub fn of(data: &[u8]) -> Result<Self> {
        ensure!(
            data.len() >= std::mem::size_of::<elf::Ident>() && data[..4] == elf::ELFMAG,
            "not an ELF image (no ELF magic)"
        );
        match data[4] {
            elf::ELFCLASS32 => Ok(ElfClass::Elf32),
            elf::ELFCLASS64 => Ok(ElfClass::Elf64),
            other => bail!("unsupported ELF class {other}"),
        }
    }

    /// The class of the header type `H`.
    fn of_header<H: FileHeader>() -> Self {
        if H::is_type_64_sized() {
            ElfClass::Elf64
        } else {
            ElfClass::Elf32
        }
    }

    /// Number of hex digits binutils prints for addresses and sizes of this class
    /// (`bfd_sprintf_vma`): 8 for ELF32, 16 for ELF64.
    pub fn address_digits(self) -> usize {
        match self {
            ElfClass::Elf32 => 8,
            ElfClass::Elf64 => 16,
        }
    }

    /// `value` truncated to the address width of the class, as binutils prints it.
    fn truncate(self, value: u64) -> u64 {
        match self {
            ElfClass::Elf32 => value & 0xffff_ffff,
            ElfClass::Elf64 => value,
        }
    }
}

impl fmt::Display for ElfClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ElfClass::Elf32 => "ELF32",
            ElfClass::Elf64 => "ELF64",
        })
    }
}

/// The x86 vDSO flavours (`arch/x86/entry/vdso/`), told apart by ELF class and `e_machine`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VdsoAbi {
    /// `vdso64.so`: ELF64, `EM_X86_64`, mapped into 64-bit processes.
    X86_64,
    /// `vdso32.so`: ELF32, `EM_386`, mapped into ia32 (compat) processes.
    Ia32,
    /// `vdsox32.so`: ELF32, `EM_X86_64`, mapped into x32 processes.
    X32,
}

impl VdsoAbi {
    /// Classifies an image from its ELF header (class and `e_machine`).
    pub fn of(data: &[u8]) -> Result<Self> {
        with_ehdr!(data, H => {
            let (ehdr, endian) = parse_ehdr::<H>(data)?;
            Self::from_header(ElfClass::of_header::<H>(), ehdr.e_machine(endian))
        })
    }

    fn from_header(class: ElfClass, machine: u16) -> Result<Self> {
        match (class, machine) {
            (ElfClass::Elf64, elf::EM_X86_64) => Ok(VdsoAbi::X86_64),
            (ElfClass::Elf32, elf::EM_386) => Ok(VdsoAbi::Ia32),
            (ElfClass::Elf32, elf::EM_X86_64) => Ok(VdsoAbi::X32),
            (ElfClass::Elf64, m) => bail!("e_machine of the ELF64 image is {m}, not EM_X86_64"),
            (ElfClass::Elf32, m) => {
                bail!("e_machine of the ELF32 image is {m}, not EM_386 (ia32) or EM_X86_64 (x32)")
            }
        }
    }

    /// The ELF class of this flavour.
    pub fn class(self) -> ElfClass {
        match self {
            VdsoAbi::X86_64 => ElfClass::Elf64,
            VdsoAbi::Ia32 | VdsoAbi::X32 => ElfClass::Elf32,
        }
    }
}

impl fmt::Display for VdsoAbi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VdsoAbi::X86_64 => "x86_64 (ELF64, EM_X86_64)",
            VdsoAbi::Ia32 => "ia32 (ELF32, EM_386)",
            VdsoAbi::X32 => "x32 (ELF32, EM_X86_64)",
        })
    }
}

/// Parses the ELF header as `H` ([`Ehdr32`] or [`Ehdr64`]); fails if the class differs.
fn parse_ehdr<H: FileHeader<Endian = Endianness>>(data: &[u8]) -> Result<(&H, Endianness)> {
    let class = ElfClass::of_header::<H>();
    let ehdr = H::parse(data).map_err(|e| anyhow!("not an {class} image: {e}"))?;
    let endian = ehdr
        .endian()
        .map_err(|e| anyhow!("bad ELF endianness: {e}"))?;
    Ok((ehdr, endian))
}

/// The program header table of `data`.
fn program_headers<'data, H: FileHeader<Endian = Endianness>>(
    ehdr: &H,
    endian: Endianness,
    data: &'data [u8],
) -> Result<&'data [H::ProgramHeader]> {
    ehdr.program_headers(endian, data)
        .map_err(|e| anyhow!("bad program headers: {e}"))
}

/// Widens an ELF word (`u32` for ELF32, `u64` for ELF64).
fn word(w: impl Into<u64>) -> u64 {
    w.into()
}

/// Size of an ELF image from its own headers: the maximum of the end of the ELF header, the
/// program header table, the section header table (`e_shoff + e_shnum * e_shentsize`) and
/// every `PT_LOAD` segment's file image (`p_offset + p_filesz`). ELF32 and ELF64 images.
///
/// Only the ELF header and the program headers are read, so `data` may be just the first page
/// of a mapping whose length is not known yet.
pub fn elf_image_size(data: &[u8]) -> Result<usize> {
    with_ehdr!(data, H => elf_image_size_as::<H>(data))
}

fn elf_image_size_as<H: FileHeader<Endian = Endianness>>(data: &[u8]) -> Result<usize> {
    let (ehdr, endian) = parse_ehdr::<H>(data)?;
    let phoff = word(ehdr.e_phoff(endian));
    let phnum = u64::from(ehdr.e_phnum(endian));
    let phentsize = u64::from(ehdr.e_phentsize(endian));
    let shoff = word(ehdr.e_shoff(endian));
    let shnum = u64::from(ehdr.e_shnum(endian));
    let shentsize = u64::from(ehdr.e_shentsize(endian));
    ensure!(
        !(shnum == 0 && shoff != 0),
        "extended section numbering (e_shnum == 0) is not supported"
    );

    let overflow = || anyhow!("ELF header fields overflow");
    let mut end = u64::from(ehdr.e_ehsize(endian));
    end = end.max(
        phnum
            .checked_mul(phentsize)
            .and_then(|n| n.checked_add(phoff))
            .ok_or_else(overflow)?,
    );
    end = end.max(
        shnum
            .checked_mul(shentsize)
            .and_then(|n| n.checked_add(shoff))
            .ok_or_else(overflow)?,
    );
    let phdrs = program_headers(ehdr, endian, data)?;
    for ph in phdrs.iter().filter(|ph| ph.p_type(endian) == elf::PT_LOAD) {
        let seg_end = word(ph.p_offset(endian))
            .checked_add(word(ph.p_filesz(endian)))
            .ok_or_else(overflow)?;
        end = end.max(seg_end);
    }
    usize::try_from(end).context("ELF image size does not fit in usize")
}

/// Checks that `data` is a complete x86 vDSO-style ELF shared object: `ET_DYN`, one of the
/// [`VdsoAbi`] flavours (ELF64 `EM_X86_64`, ELF32 `EM_386` or ELF32 `EM_X86_64`), exactly
/// [`elf_image_size`] bytes long (or longer), and every section with file contents lies inside
/// it.
pub fn validate_image(data: &[u8]) -> Result<()> {
    with_ehdr!(data, H => validate_image_as::<H>(data))
}

fn validate_image_as<H: FileHeader<Endian = Endianness>>(data: &[u8]) -> Result<()> {
    let (ehdr, endian) = parse_ehdr::<H>(data)?;
    VdsoAbi::from_header(ElfClass::of_header::<H>(), ehdr.e_machine(endian))?;
    ensure!(
        ehdr.e_type(endian) == elf::ET_DYN,
        "e_type is {}, not ET_DYN",
        ehdr.e_type(endian)
    );
    let size = elf_image_size_as::<H>(data)?;
    ensure!(
        size <= data.len(),
        "image is truncated: headers describe {size} bytes, have {}",
        data.len()
    );
    let sections = ehdr
        .sections(endian, data)
        .map_err(|e| anyhow!("bad section headers: {e}"))?;
    for (index, sh) in sections.enumerate() {
        if sh.sh_type(endian) == elf::SHT_NOBITS {
            continue;
        }
        let end = word(sh.sh_offset(endian)).checked_add(word(sh.sh_size(endian)));
        ensure!(
            end.is_some_and(|end| end <= size as u64),
            "section {} extends beyond the {size}-byte image",
            index.0
        );
    }
    Ok(())
}

/// Iterates over the ELF notes of `data`, via `PT_NOTE` segments if there are any, otherwise
/// via `SHT_NOTE` sections. Calls `f(name, type, desc)` until it returns `Some`.
fn find_note<'data, T>(
    data: &'data [u8],
    mut f: impl FnMut(&'data [u8], u32, &'data [u8]) -> Option<T>,
) -> Result<Option<T>> {
    with_ehdr!(data, H => find_note_as::<H, T>(data, &mut f))
}

fn find_note_as<'data, H: FileHeader<Endian = Endianness>, T>(
    data: &'data [u8],
    f: &mut impl FnMut(&'data [u8], u32, &'data [u8]) -> Option<T>,
) -> Result<Option<T>> {
    let (ehdr, endian) = parse_ehdr::<H>(data)?;
    let phdrs = program_headers(ehdr, endian, data)?;
    let mut saw_pt_note = false;
    for ph in phdrs {
        let Some(mut notes) = ph
            .notes(endian, data)
            .map_err(|e| anyhow!("bad PT_NOTE segment: {e}"))?
        else {
            continue;
        };
        saw_pt_note = true;
        while let Some(note) = notes.next().map_err(|e| anyhow!("bad note: {e}"))? {
            if let Some(v) = f(note.name(), note.n_type(endian), note.desc()) {
                return Ok(Some(v));
            }
        }
    }
    if saw_pt_note {
        return Ok(None);
    }
    let sections = ehdr
        .sections(endian, data)
        .map_err(|e| anyhow!("bad section headers: {e}"))?;
    for sh in sections.iter() {
        let Some(mut notes) = sh
            .notes(endian, data)
            .map_err(|e| anyhow!("bad SHT_NOTE section: {e}"))?
        else {
            continue;
        };
        while let Some(note) = notes.next().map_err(|e| anyhow!("bad note: {e}"))? {
            if let Some(v) = f(note.name(), note.n_type(endian), note.desc()) {
                return Ok(Some(v));
            }
        }
    }
    Ok(None)
}

/// The GNU build-id (`NT_GNU_BUILD_ID` note, owner `GNU`), if present.
pub fn build_id(data: &[u8]) -> Result<Option<&[u8]>> {
    find_note(data, |name, ty, desc| {
        (name == elf::ELF_NOTE_GNU && ty == elf::NT_GNU_BUILD_ID).then_some(desc)
    })
}

/// `LINUX_VERSION_CODE` from the vDSO's `Linux` note of type 0 (`ELFNOTE32("Linux", 0,
/// LINUX_VERSION_CODE)` in `arch/x86/entry/vdso/vdso-note.S`), if present.
pub fn linux_version_code(data: &[u8]) -> Result<Option<u32>> {
    find_note(data, |name, ty, desc| {
        (name == b"Linux" && ty == 0 && desc.len() == 4)
            .then(|| u32::from_le_bytes([desc[0], desc[1], desc[2], desc[3]]))
    })
}

/// Formats a `LINUX_VERSION_CODE` as `major.minor.patch`.
pub fn format_version_code(code: u32) -> String {
    format!("{}.{}.{}", code >> 16, (code >> 8) & 0xff, code & 0xff)
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Version information of a dynamic symbol, as GNU tools present it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum SymbolVersion {
    /// The file has no `.gnu.version` table.
    Unversioned,
    /// `VER_NDX_LOCAL` (0).
    Local,
    /// `VER_NDX_GLOBAL` (1): the base version, printed as `Base`.
    Base,
    /// A named version from `.gnu.version_d` / `.gnu.version_r`.
    Named(String),
}

/// One entry of the dynamic symbol table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DynamicSymbol {
    /// Index in `.dynsym`.
    pub index: usize,
    /// Symbol name.
    pub name: String,
    /// `st_value` (link-time address; add the load bias for the runtime address).
    pub value: u64,
    /// `st_size`.
    pub size: u64,
    /// `ELF_ST_BIND(st_info)`.
    pub bind: u8,
    /// `ELF_ST_TYPE(st_info)`.
    pub kind: u8,
    /// Section name, or `*ABS*`, `*UND*`, `*COM*` for the special indices.
    pub section: String,
    /// True if the section index is `SHN_UNDEF`.
    pub undefined: bool,
    /// Version.
    pub version: SymbolVersion,
    /// The version is printed in parentheses by `objdump -T`: `VERSYM_HIDDEN` is set (a
    /// non-default version, `name@VERSION` rather than `@@`), or the version is a requirement
    /// from `.gnu.version_r` (binutils `_bfd_elf_get_symbol_version_string` marks those hidden).
    pub hidden: bool,
    /// `VERSYM_HIDDEN` itself is set: a non-default version of a defined symbol.
    pub versym_hidden: bool,
    /// `st_other`: the visibility (`STV_*`) in its low two bits.
    pub other: u8,
    /// Class of the image the symbol was read from; sets the width of the value and size
    /// columns of [`DynamicSymbol::objdump_line`].
    pub class: ElfClass,
}

impl DynamicSymbol {
    /// The seven flag characters of `objdump -T` (binutils `bfd_print_symbol_vandf`, with the
    /// `BSF_*` flags `elf_slurp_symbol_table` derives from the ELF symbol), e.g. `g    DF` for
    /// a global function, ` w   DF` for a weak one, `      D ` for an undefined global.
    pub fn objdump_flags(&self) -> String {
        let bind = match self.bind {
            elf::STB_LOCAL => 'l',
            // BSF_GLOBAL is only set for defined, non-common global symbols.
            elf::STB_GLOBAL if !self.undefined && self.section != "*COM*" => 'g',
            elf::STB_GNU_UNIQUE => 'u',
            _ => ' ',
        };
        let weak = if self.bind == elf::STB_WEAK { 'w' } else { ' ' };
        let indirect = if self.kind == elf::STT_GNU_IFUNC {
            'i'
        } else {
            ' '
        };
        let debug = if matches!(self.kind, elf::STT_SECTION | elf::STT_FILE) {
            'd'
        } else {
            'D'
        };
        // STT_TLS (BSF_THREAD_LOCAL) and STT_GNU_IFUNC (BSF_GNU_INDIRECT_FUNCTION) get no
        // type letter.
        let kind = match self.kind {
            elf::STT_FUNC => 'F',
            elf::STT_FILE => 'f',
            elf::STT_OBJECT | elf::STT_COMMON => 'O',
            _ => ' ',
        };
        [bind, weak, ' ', ' ', indirect, debug, kind]
            .into_iter()
            .collect()
    }

    /// The version column as `objdump -T` prints it (without padding), `None` when the file
    /// has no version table. Hidden versions are parenthesised.
    pub fn objdump_version(&self) -> Option<String> {
        let name = match &self.version {
            SymbolVersion::Unversioned => return None,
            SymbolVersion::Local => String::new(),
            SymbolVersion::Base => "Base".to_string(),
            SymbolVersion::Named(n) => n.clone(),
        };
        Some(if self.hidden {
            format!("({name})")
        } else {
            name
        })
    }

    /// The `st_other` column of `objdump -T`: ` .internal`, ` .hidden`, ` .protected`, or
    /// ` 0x..` for any other non-zero value; empty for 0 (default visibility).
    pub fn objdump_other(&self) -> String {
        match self.other {
            0 => String::new(),
            elf::STV_INTERNAL => " .internal".to_string(),
            elf::STV_HIDDEN => " .hidden".to_string(),
            elf::STV_PROTECTED => " .protected".to_string(),
            other => format!(" 0x{other:02x}"),
        }
    }

    /// One line in the exact layout of `objdump -T` (binutils 2.40 `bfd_elf_print_symbol`):
    /// value, flags, section, TAB, size, version column, `st_other`, name. Value and size have
    /// 16 hex digits for an ELF64 image and 8 for an ELF32 one (`bfd_fprintf_vma`). For a
    /// common symbol BFD's value is the size and the second column the alignment (`st_value`).
    pub fn objdump_line(&self) -> String {
        let width = self.class.address_digits();
        let (value, size) = if self.section == "*COM*" {
            (self.size, self.value)
        } else {
            (self.value, self.size)
        };
        let mut line = format!(
            "{:0width$x} {} {}\t{:0width$x}",
            self.class.truncate(value),
            self.objdump_flags(),
            self.section,
            self.class.truncate(size)
        );
        match self.objdump_version() {
            None => {}
            Some(v) if self.hidden => {
                line.push(' ');
                line.push_str(&v);
                let name_len = v.len().saturating_sub(2);
                line.extend(std::iter::repeat_n(' ', 10usize.saturating_sub(name_len)));
            }
            Some(v) => line.push_str(&format!("  {v:<11}")),
        }
        line.push_str(&self.objdump_other());
        line.push(' ');
        line.push_str(&self.name);
        line
    }

    /// True if this symbol is a defined function or object with global or weak binding,
    /// i.e. something a dynamic linker would bind to.
    pub fn is_exported(&self) -> bool {
        !self.undefined
            && matches!(self.bind, elf::STB_GLOBAL | elf::STB_WEAK)
            && matches!(self.kind, elf::STT_FUNC | elf::STT_OBJECT | elf::STT_NOTYPE)
    }

    /// True if this symbol has version `version` (a named version).
    pub fn has_version(&self, version: &str) -> bool {
        matches!(&self.version, SymbolVersion::Named(v) if v == version)
    }
}

/// Lists `.dynsym` (without the null entry at index 0) with versions from `.gnu.version`,
/// `.gnu.version_d` and `.gnu.version_r`, in table order, as `objdump -T` does. ELF32 and
/// ELF64 images.
pub fn dynamic_symbols(data: &[u8]) -> Result<Vec<DynamicSymbol>> {
    with_ehdr!(data, H => dynamic_symbols_as::<H>(data))
}

fn dynamic_symbols_as<H: FileHeader<Endian = Endianness>>(
    data: &[u8],
) -> Result<Vec<DynamicSymbol>> {
    let class = ElfClass::of_header::<H>();
    let (ehdr, endian) = parse_ehdr::<H>(data)?;
    let sections = ehdr
        .sections(endian, data)
        .map_err(|e| anyhow!("bad section headers: {e}"))?;
    let symbols = sections
        .symbols(endian, data, elf::SHT_DYNSYM)
        .map_err(|e| anyhow!("bad .dynsym: {e}"))?;
    ensure!(
        !symbols.is_empty(),
        "not a dynamic object (no SHT_DYNSYM section)"
    );
    let versions = sections
        .versions(endian, data)
        .map_err(|e| anyhow!("bad version tables: {e}"))?;
    let verdefs = sections
        .gnu_verdef(endian, data)
        .map_err(|e| anyhow!("bad .gnu.version_d: {e}"))?;
    let has_verneed = sections
        .gnu_verneed(endian, data)
        .map_err(|e| anyhow!("bad .gnu.version_r: {e}"))?
        .is_some();
    // binutils prints a version column only when there is a `.gnu.version` and a
    // `.gnu.version_d` or `.gnu.version_r` to name the versions.
    let versions = versions.filter(|_| verdefs.is_some() || has_verneed);
    // Index 1 (VER_NDX_GLOBAL) is `Base` unless the verdef of index 1 has flags other than
    // exactly VER_FLG_BASE: then binutils prints that definition's name.
    let mut global_name = None;
    if let Some((mut defs, link)) = verdefs {
        let strings = sections
            .strings(endian, data, link)
            .map_err(|e| anyhow!("bad .gnu.version_d strings: {e}"))?;
        while let Some((def, mut aux)) = defs
            .next()
            .map_err(|e| anyhow!("bad .gnu.version_d: {e}"))?
        {
            if def.vd_ndx.get(endian) & elf::VERSYM_VERSION != elf::VER_NDX_GLOBAL {
                continue;
            }
            if def.vd_flags.get(endian) != elf::VER_FLG_BASE {
                if let Some(a) = aux.next().map_err(|e| anyhow!("bad verdaux: {e}"))? {
                    let name = a
                        .name(endian, strings)
                        .map_err(|e| anyhow!("bad verdaux name: {e}"))?;
                    global_name = Some(String::from_utf8_lossy(name).into_owned());
                }
            }
            break;
        }
    }

    let mut out = Vec::with_capacity(symbols.len());
    for (index, sym) in symbols.enumerate().skip(1) {
        let name = symbols
            .symbol_name(endian, sym)
            .map_err(|e| anyhow!("bad name of symbol {}: {e}", index.0))?;
        let shndx = sym.st_shndx(endian);
        let section = match shndx {
            elf::SHN_UNDEF => "*UND*".to_string(),
            elf::SHN_ABS => "*ABS*".to_string(),
            elf::SHN_COMMON => "*COM*".to_string(),
            _ => match symbols
                .symbol_section(endian, sym, index)
                .map_err(|e| anyhow!("bad section of symbol {}: {e}", index.0))?
            {
                Some(SectionIndex(i)) => {
                    let sh = sections
                        .section(SectionIndex(i))
                        .map_err(|e| anyhow!("symbol {}: {e}", index.0))?;
                    String::from_utf8_lossy(
                        sections
                            .section_name(endian, sh)
                            .map_err(|e| anyhow!("bad section name: {e}"))?,
                    )
                    .into_owned()
                }
                None => format!("*{shndx:#x}*"),
            },
        };
        let (version, hidden, versym_hidden) = match &versions {
            None => (SymbolVersion::Unversioned, false, false),
            Some(table) => {
                let vi = table.version_index(endian, index);
                let (version, verneed) = if vi.is_local() {
                    (SymbolVersion::Local, false)
                } else if vi.is_global() {
                    match &global_name {
                        Some(n) => (SymbolVersion::Named(n.clone()), false),
                        None => (SymbolVersion::Base, false),
                    }
                } else {
                    match table.version(vi) {
                        Ok(Some(v)) => (
                            SymbolVersion::Named(String::from_utf8_lossy(v.name()).into_owned()),
                            v.file().is_some(),
                        ),
                        // An index neither table defines: what binutils prints for it.
                        _ => (SymbolVersion::Named("<corrupt>".to_string()), false),
                    }
                };
                (version, vi.is_hidden() || verneed, vi.is_hidden())
            }
        };
        out.push(DynamicSymbol {
            index: index.0,
            name: String::from_utf8_lossy(name).into_owned(),
            value: word(sym.st_value(endian)),
            size: word(sym.st_size(endian)),
            bind: sym.st_bind(),
            kind: sym.st_type(),
            section,
            undefined: shndx == elf::SHN_UNDEF,
            version,
            hidden,
            versym_hidden,
            other: sym.st_other(),
            class,
        });
    }
    Ok(out)
}

/// Finds the exported symbol `name` with version `version`, preferring the default
/// (non-hidden) version, as the kernel's `tools/testing/selftests/vDSO/parse_vdso.c` does.
pub fn find_symbol(data: &[u8], name: &str, version: &str) -> Result<DynamicSymbol> {
    let syms = dynamic_symbols(data)?;
    let mut candidates: Vec<_> = syms
        .into_iter()
        .filter(|s| s.name == name && s.has_version(version) && s.is_exported())
        .collect();
    candidates.sort_by_key(|s| s.hidden);
    candidates
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("symbol {name}@{version} not found in the vDSO"))
}

/// Load bias of an image mapped at `base`: the value to add (wrapping) to `st_value`. For the
/// vDSO this is `base + p_offset - p_vaddr` of its (single) `PT_LOAD` segment. ELF32 and ELF64
/// images.
pub fn load_bias(data: &[u8], base: u64) -> Result<u64> {
    with_ehdr!(data, H => load_bias_as::<H>(data, base))
}

fn load_bias_as<H: FileHeader<Endian = Endianness>>(data: &[u8], base: u64) -> Result<u64> {
    let (ehdr, endian) = parse_ehdr::<H>(data)?;
    let ph = program_headers(ehdr, endian, data)?
        .iter()
        .find(|ph| ph.p_type(endian) == elf::PT_LOAD)
        .context("no PT_LOAD segment")?;
    Ok(base
        .wrapping_add(word(ph.p_offset(endian)))
        .wrapping_sub(word(ph.p_vaddr(endian))))
}

/// Checks that `[value, value + size)` lies in the file image of an executable `PT_LOAD`
/// segment of `data`, so that `bias + value` is code inside the mapping.
fn check_in_exec_segment(data: &[u8], value: u64, size: u64) -> Result<()> {
    with_ehdr!(data, H => check_in_exec_segment_as::<H>(data, value, size))
}

fn check_in_exec_segment_as<H: FileHeader<Endian = Endianness>>(
    data: &[u8],
    value: u64,
    size: u64,
) -> Result<()> {
    let (ehdr, endian) = parse_ehdr::<H>(data)?;
    let phdrs = program_headers(ehdr, endian, data)?;
    let end = value.checked_add(size.max(1)).context("symbol overflows")?;
    let ok = phdrs.iter().any(|ph| {
        let vaddr = word(ph.p_vaddr(endian));
        ph.p_type(endian) == elf::PT_LOAD
            && ph.p_flags(endian) & elf::PF_X != 0
            && value >= vaddr
            && vaddr
                .checked_add(word(ph.p_filesz(endian)))
                .is_some_and(|seg_end| end <= seg_end)
    });
    ensure!(
        ok,
        "[{value:#x}, {end:#x}) is not inside an executable PT_LOAD segment"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The live vDSO of this process
// ---------------------------------------------------------------------------------------------

/// `getauxval(AT_SYSINFO_EHDR)`: the vDSO's address, `None` if the kernel mapped no vDSO
/// (e.g. `vdso=0` on the command line). Works in static binaries too: glibc saves the
/// auxiliary vector in `_dl_aux_init` before `main`.
pub fn sysinfo_ehdr() -> Option<usize> {
    // SAFETY: getauxval only reads the auxiliary vector libc saved at startup; it has no
    // preconditions and returns 0 for a missing entry.
    let v = unsafe { libc::getauxval(libc::AT_SYSINFO_EHDR) };
    usize::try_from(v).ok().filter(|&v| v != 0)
}

/// Borrows `len` bytes of the vDSO mapping at `addr` for the rest of the process lifetime.
///
/// # Safety
///
/// `[addr, addr + len)` must be readable memory that stays mapped and unmodified for the rest
/// of the process lifetime.
unsafe fn vdso_bytes(addr: usize, len: usize) -> &'static [u8] {
    // SAFETY: the caller guarantees the range is mapped, readable, and immutable for
    // 'static; u8 has no alignment or validity requirements and `addr` is non-null.
    unsafe { std::slice::from_raw_parts(addr as *const u8, len) }
}

/// The vDSO mapped into the current process.
#[derive(Debug, Clone, Copy)]
pub struct LiveVdso {
    base: usize,
    image: &'static [u8],
}

impl LiveVdso {
    /// Locates the vDSO through `AT_SYSINFO_EHDR`, sizes it from its ELF headers and checks it.
    ///
    /// When `/proc/self/maps` is readable, the `[vdso]` mapping must start at the auxv address
    /// and be large enough for the image (it would not be if the vDSO had been moved with
    /// `mremap`, leaving the auxv entry stale). Without `/proc` the auxv value is trusted.
    pub fn locate() -> Result<Self> {
        let base = sysinfo_ehdr().context(
            "AT_SYSINFO_EHDR is absent from the auxiliary vector: the kernel mapped no vDSO \
             (booted with vdso=0?)",
        )?;
        let page = page_size();
        ensure!(
            base % page == 0,
            "AT_SYSINFO_EHDR {base:#x} is not page aligned"
        );
        let mapping = match find_mapping(None, "[vdso]") {
            Ok(Some(m)) => {
                ensure!(
                    m.start == base as u64,
                    "[vdso] is mapped at {:#x} but AT_SYSINFO_EHDR says {base:#x} (vDSO moved?)",
                    m.start
                );
                Some(m)
            }
            Ok(None) => bail!("AT_SYSINFO_EHDR is {base:#x} but /proc/self/maps has no [vdso]"),
            // No /proc (early boot, minimal guest): trust the auxiliary vector.
            Err(_) => None,
        };
        let first_len = mapping
            .as_ref()
            .map_or(page, |m| usize::try_from(m.len()).unwrap_or(page).min(page));
        // SAFETY: AT_SYSINFO_EHDR is the page-aligned start of the vDSO mapping, which the
        // kernel maps read+exec for the life of the process and which this program never
        // unmaps or writes. The mapping is at least one page long (checked against
        // /proc/self/maps when available), so the first `first_len` <= page bytes are mapped.
        let head = unsafe { vdso_bytes(base, first_len) };
        // Calling into the vDSO is only supported for the native x86_64 flavour.
        let abi = VdsoAbi::of(head)?;
        ensure!(
            abi == VdsoAbi::X86_64,
            "the vDSO at {base:#x} is {abi}; only the x86_64 vDSO can be called from here"
        );
        let size = elf_image_size(head)?;
        let limit = mapping.as_ref().map_or(usize::MAX, |m| {
            usize::try_from(m.len()).unwrap_or(usize::MAX)
        });
        ensure!(
            size <= limit,
            "vDSO headers describe {size} bytes but the [vdso] mapping is only {limit} bytes"
        );
        ensure!(
            size >= std::mem::size_of::<Ehdr64>(),
            "vDSO image is implausibly small ({size} bytes)"
        );
        // SAFETY: as above, and `size` (derived from the image's own ELF headers) does not
        // exceed the mapping: the kernel maps the whole image including the section header
        // table at its end, and when /proc is available `size` was checked against the
        // [vdso] mapping length.
        let image = unsafe { vdso_bytes(base, size) };
        validate_image(image)?;
        Ok(LiveVdso { base, image })
    }

    /// Runtime address of the ELF header.
    pub fn base(&self) -> usize {
        self.base
    }

    /// The image bytes (exactly [`elf_image_size`] bytes).
    pub fn image(&self) -> &'static [u8] {
        self.image
    }

    /// GNU build-id of the running vDSO.
    pub fn build_id(&self) -> Result<Option<&'static [u8]>> {
        build_id(self.image)
    }

    /// The dynamic symbols of the running vDSO.
    pub fn symbols(&self) -> Result<Vec<DynamicSymbol>> {
        dynamic_symbols(self.image)
    }

    /// Runtime address of the function `name@version`, checked to lie in executable code
    /// inside the mapping.
    pub fn function_address(&self, name: &str, version: &str) -> Result<usize> {
        let sym = find_symbol(self.image, name, version)?;
        ensure!(
            sym.kind == elf::STT_FUNC,
            "{name}@{version} is not a function"
        );
        check_in_exec_segment(self.image, sym.value, sym.size)
            .with_context(|| format!("{name}@{version}"))?;
        let bias = load_bias(self.image, self.base as u64)?;
        let addr = bias.wrapping_add(sym.value);
        let end = self.base as u64 + self.image.len() as u64;
        ensure!(
            addr >= self.base as u64 && addr.saturating_add(sym.size) <= end,
            "{name}@{version} resolves to {addr:#x}, outside the vDSO [{:#x}, {end:#x})",
            self.base
        );
        usize::try_from(addr).context("address does not fit in usize")
    }

    /// `__vdso_clock_gettime@LINUX_2.6` as a callable.
    pub fn clock_gettime(&self) -> Result<VdsoClockGettime> {
        let address = self.function_address(CLOCK_GETTIME_SYMBOL, VDSO_VERSION)?;
        // SAFETY: `address` is the non-null runtime address of the exported function
        // `__vdso_clock_gettime@LINUX_2.6`, checked above to lie in the executable PT_LOAD of
        // the vDSO mapping. Its ABI is documented (Documentation/ABI/stable/vdso, vdso(7)) as
        // `int clock_gettime(clockid_t, struct timespec *)` with the SysV calling convention,
        // which is what `ClockGettimeFn` declares; the mapping lives as long as the process.
        let f = unsafe { std::mem::transmute::<usize, ClockGettimeFn>(address) };
        Ok(VdsoClockGettime { f, address })
    }

    /// `__vdso_gettimeofday@LINUX_2.6` as a callable.
    pub fn gettimeofday(&self) -> Result<VdsoGettimeofday> {
        let address = self.function_address(GETTIMEOFDAY_SYMBOL, VDSO_VERSION)?;
        // SAFETY: as for `clock_gettime`: a checked, non-null address of the exported
        // `__vdso_gettimeofday@LINUX_2.6`, whose documented ABI is
        // `int gettimeofday(struct timeval *, struct timezone *)`, matching `GettimeofdayFn`.
        let f = unsafe { std::mem::transmute::<usize, GettimeofdayFn>(address) };
        Ok(VdsoGettimeofday { f, address })
    }
}

/// A resolved `__vdso_clock_gettime`.
#[derive(Debug, Clone, Copy)]
pub struct VdsoClockGettime {
    f: ClockGettimeFn,
    address: usize,
}

impl VdsoClockGettime {
    /// Runtime address of the function.
    pub fn address(&self) -> usize {
        self.address
    }

    /// Calls the vDSO. Returns 0 or a negative errno (the vDSO does not set `errno`).
    /// Async-signal-safe: it touches nothing but the vDSO/vvar pages and `ts` (or makes the
    /// `clock_gettime` syscall when the vDSO cannot serve the clock).
    #[inline(always)]
    pub fn call(&self, clock: libc::clockid_t, ts: &mut libc::timespec) -> libc::c_int {
        // SAFETY: `self.f` was built by `LiveVdso::clock_gettime` from the verified address
        // of `__vdso_clock_gettime`, which stays mapped for the process lifetime. `ts` is a
        // valid exclusive pointer to a `timespec` (the vDSO writes `__kernel_timespec`, the
        // same layout on x86_64). Unknown clock ids are handled inside the vDSO (syscall
        // fallback returning -EINVAL), so any `clock` value is sound.
        unsafe { (self.f)(clock, ts) }
    }

    /// Reads `clock` through the vDSO.
    pub fn get(&self, clock: Clock) -> Result<libc::timespec> {
        let mut ts = zero_timespec();
        let rc = self.call(clock.id(), &mut ts);
        if rc != 0 {
            return Err(std::io::Error::from_raw_os_error(-rc))
                .with_context(|| format!("__vdso_clock_gettime({clock})"));
        }
        Ok(ts)
    }
}

/// A resolved `__vdso_gettimeofday`.
#[derive(Debug, Clone, Copy)]
pub struct VdsoGettimeofday {
    f: GettimeofdayFn,
    address: usize,
}

impl VdsoGettimeofday {
    /// Runtime address of the function.
    pub fn address(&self) -> usize {
        self.address
    }

    /// Calls the vDSO with a NULL timezone. Returns 0 or a negative errno.
    #[inline(always)]
    pub fn call(&self, tv: &mut libc::timeval) -> libc::c_int {
        // SAFETY: `self.f` is the verified address of `__vdso_gettimeofday` (see
        // `LiveVdso::gettimeofday`); `tv` is a valid exclusive pointer and a NULL timezone is
        // allowed by the ABI.
        unsafe { (self.f)(tv, std::ptr::null_mut()) }
    }
}

// ---------------------------------------------------------------------------------------------
// The legacy vsyscall page
// ---------------------------------------------------------------------------------------------

/// How the kernel provides the legacy vsyscall page (`vsyscall=` boot parameter), as seen in
/// the `[vsyscall]` line of `/proc/self/maps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VsyscallMode {
    /// `r-xp`: `vsyscall=emulate`; the page is readable, calls trap and are emulated.
    Emulate,
    /// `--xp`: `vsyscall=xonly` (the default since 5.3); calls trap and are emulated.
    Xonly,
    /// No `[vsyscall]` line: `vsyscall=none`; a call would SIGSEGV.
    None,
    /// Some other permission string.
    Other(String),
}

impl VsyscallMode {
    /// Reads the mode from `/proc/self/maps`.
    pub fn detect() -> Result<Self> {
        Ok(Self::from_entry(find_mapping(None, "[vsyscall]")?.as_ref()))
    }

    /// Classifies a `[vsyscall]` maps entry (`None`: no such line).
    pub fn from_entry(entry: Option<&MapsEntry>) -> Self {
        match entry.map(|e| e.perms.as_str()) {
            None => VsyscallMode::None,
            Some("r-xp") => VsyscallMode::Emulate,
            Some("--xp") => VsyscallMode::Xonly,
            Some(other) => VsyscallMode::Other(other.to_string()),
        }
    }

    /// True if executing the page is expected to work (permission string has `x`).
    pub fn executable(&self) -> bool {
        match self {
            VsyscallMode::Emulate | VsyscallMode::Xonly => true,
            VsyscallMode::None => false,
            VsyscallMode::Other(p) => p.as_bytes().get(2) == Some(&b'x'),
        }
    }
}

/// JSON: always a string, `emulate`, `xonly`, `none` or `unknown (PERMS)`.
impl Serialize for VsyscallMode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            VsyscallMode::Emulate => s.serialize_str("emulate"),
            VsyscallMode::Xonly => s.serialize_str("xonly"),
            VsyscallMode::None => s.serialize_str("none"),
            VsyscallMode::Other(p) => s.collect_str(&format_args!("unknown ({p})")),
        }
    }
}

impl fmt::Display for VsyscallMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VsyscallMode::Emulate => f.write_str("emulate (r-xp)"),
            VsyscallMode::Xonly => f.write_str("xonly (--xp)"),
            VsyscallMode::None => f.write_str("none (no [vsyscall] mapping)"),
            VsyscallMode::Other(p) => write!(f, "unknown ({p})"),
        }
    }
}

/// The legacy `gettimeofday` at `0xffffffffff600000`.
#[derive(Debug, Clone, Copy)]
pub struct VsyscallGettimeofday {
    f: GettimeofdayFn,
    xonly: bool,
}

impl VsyscallGettimeofday {
    /// Returns the callable if `/proc/self/maps` shows an executable `[vsyscall]` page at the
    /// fixed address; otherwise an error explaining why it is skipped.
    pub fn new() -> Result<Self> {
        let entry = find_mapping(None, "[vsyscall]")?;
        let mode = VsyscallMode::from_entry(entry.as_ref());
        match entry {
            None => bail!("no [vsyscall] mapping (vsyscall=none)"),
            Some(e) if !mode.executable() => {
                bail!("[vsyscall] page is not executable ({})", e.perms)
            }
            Some(e) if e.start != VSYSCALL_GETTIMEOFDAY_ADDR as u64 => {
                bail!("[vsyscall] page at unexpected address {:#x}", e.start)
            }
            Some(_) => {}
        }
        // SAFETY: the address is the fixed, non-null vsyscall `gettimeofday` slot
        // (arch/x86/include/uapi/asm/vsyscall.h), and /proc/self/maps shows the page present
        // and executable. In both `emulate` and `xonly` modes the instruction fetch faults
        // and the kernel emulates `gettimeofday(struct timeval *, struct timezone *)`
        // (emulate_vsyscall()), returning to the caller like a normal SysV call.
        let f = unsafe { std::mem::transmute::<usize, GettimeofdayFn>(VSYSCALL_GETTIMEOFDAY_ADDR) };
        Ok(VsyscallGettimeofday {
            f,
            xonly: mode == VsyscallMode::Xonly,
        })
    }

    /// Whether the page is execute-only (`vsyscall=xonly`), as `new()` found it.
    pub fn xonly(&self) -> bool {
        self.xonly
    }

    /// Calls the vsyscall `gettimeofday` with a NULL timezone.
    #[inline(always)]
    pub fn call(&self, tv: &mut libc::timeval) -> libc::c_int {
        // SAFETY: `new()` checked that the page is mapped executable; the kernel's emulation
        // writes only through `tv`, a valid exclusive pointer (NULL timezone is allowed).
        unsafe { (self.f)(tv, std::ptr::null_mut()) }
    }
}

// ---------------------------------------------------------------------------------------------
// Dumps
// ---------------------------------------------------------------------------------------------

/// A copy of a vDSO image and where it was mapped.
#[derive(Debug, Clone)]
pub struct Dump {
    /// Runtime address of the ELF header in the source process.
    pub address: u64,
    /// Process the image was read from (`None`: this process).
    pub pid: Option<libc::pid_t>,
    /// The image, trimmed to [`elf_image_size`].
    pub image: Vec<u8>,
}

impl Dump {
    /// GNU build-id.
    pub fn build_id(&self) -> Result<Option<&[u8]>> {
        build_id(&self.image)
    }

    /// `LINUX_VERSION_CODE` from the Linux note.
    pub fn linux_version_code(&self) -> Result<Option<u32>> {
        linux_version_code(&self.image)
    }

    /// Which vDSO this is: x86_64 (ELF64), ia32 or x32 (ELF32).
    pub fn abi(&self) -> Result<VdsoAbi> {
        VdsoAbi::of(&self.image)
    }

    /// The dynamic symbols of the image.
    pub fn symbols(&self) -> Result<Vec<DynamicSymbol>> {
        dynamic_symbols(&self.image)
    }

    /// Writes the image to `path` (a valid ELF shared object for `objdump`/`readelf`).
    pub fn write_to(&self, path: &Path) -> Result<()> {
        fs::write(path, &self.image).with_context(|| format!("writing {}", path.display()))
    }
}

/// Copies this process's vDSO.
pub fn dump_self() -> Result<Dump> {
    let live = LiveVdso::locate()?;
    Ok(Dump {
        address: live.base() as u64,
        pid: None,
        image: live.image().to_vec(),
    })
}

/// Copies the vDSO of process `pid` through `/proc/PID/mem`, using the `[vdso]` line of
/// `/proc/PID/maps`. Needs ptrace-read access to the process (same user, or CAP_SYS_PTRACE).
/// Works for 64-bit processes (ELF64 x86_64 vDSO) as well as ia32 and x32 ones (ELF32).
pub fn dump_pid(pid: libc::pid_t) -> Result<Dump> {
    let entry = find_mapping(Some(pid), "[vdso]")?
        .with_context(|| format!("process {pid} has no [vdso] mapping"))?;
    let len = usize::try_from(entry.len()).context("[vdso] mapping too large")?;
    ensure!(len > 0, "empty [vdso] mapping");
    let path = format!("/proc/{pid}/mem");
    let mem = fs::File::open(&path).with_context(|| format!("opening {path}"))?;
    let mut buf = vec![0u8; len];
    mem.read_exact_at(&mut buf, entry.start)
        .with_context(|| format!("reading {len} bytes at {:#x} from {path}", entry.start))?;
    let size = elf_image_size(&buf)?;
    ensure!(
        size <= len,
        "vDSO headers describe {size} bytes but the [vdso] mapping is only {len} bytes"
    );
    buf.truncate(size);
    validate_image(&buf)?;
    Ok(Dump {
        address: entry.start,
        pid: Some(pid),
        image: buf,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// A fields-wise parse of one `objdump -T` symbol line.
    #[derive(Debug, PartialEq, Eq)]
    struct ObjdumpSym {
        value: String,
        flags: String,
        section: String,
        size: String,
        version: Option<String>,
        name: String,
    }

    fn parse_objdump_t(text: &str) -> Vec<ObjdumpSym> {
        let mut out = Vec::new();
        let mut in_table = false;
        for line in text.lines() {
            if line.starts_with("DYNAMIC SYMBOL TABLE:") {
                in_table = true;
                continue;
            }
            if !in_table || line.trim().is_empty() {
                continue;
            }
            // 16 hex digits for ELF64, 8 for ELF32.
            let w = line.find(' ').expect("space after value");
            let value = line[..w].to_string();
            let flags = line[w + 1..w + 8].to_string();
            let (section, rest) = line[w + 9..].split_once('\t').expect("tab after section");
            let size = rest[..w].to_string();
            let rest = rest[w..].trim_start();
            let (version, name) = if rest.starts_with('(') {
                let close = rest.find(')').expect("closing paren");
                (
                    Some(rest[..=close].to_string()),
                    rest[close + 1..].trim().to_string(),
                )
            } else {
                let toks: Vec<_> = rest.split_whitespace().collect();
                match toks.as_slice() {
                    [name] => (None, (*name).to_string()),
                    [v, name] => (Some((*v).to_string()), (*name).to_string()),
                    _ => panic!("unexpected objdump line {line:?}"),
                }
            };
            out.push(ObjdumpSym {
                value,
                flags,
                section: section.to_string(),
                size,
                version,
                name,
            });
        }
        out
    }

    /// Finds a host tool in PATH. Missing, the calling test skips, unless
    /// `VDSO_PROBE_REQUIRE_TOOLS=1` (as `make check` sets it): then a missing tool fails the test
    /// instead of letting it pass untested.
    fn tool(name: &str) -> Option<std::path::PathBuf> {
        let found = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        });
        if found.is_none() && std::env::var("VDSO_PROBE_REQUIRE_TOOLS").as_deref() == Ok("1") {
            panic!(
                "{name} is not in PATH, and VDSO_PROBE_REQUIRE_TOOLS=1: install it (scripts/setup)"
            );
        }
        found
    }

    fn temp_path(tag: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("vdso-probe-{tag}-{}.so", std::process::id()))
    }

    #[test]
    fn image_size_covers_headers_and_segments() {
        let live = LiveVdso::locate().expect("locate vDSO");
        let img = live.image();
        assert_eq!(elf_image_size(img).unwrap(), img.len());
        // Size is derivable from the first page alone.
        assert_eq!(
            elf_image_size(&img[..img.len().min(4096)]).unwrap(),
            img.len()
        );
        validate_image(img).unwrap();
        assert!(validate_image(&img[..img.len() - 1]).is_err());
    }

    /// The dumped image is exactly the ELF file: it ends where readelf says its last part (the
    /// section header table, which the linker puts last) ends, not at the mapping's page end.
    #[test]
    fn dump_ends_where_readelf_says_the_file_ends() {
        let readelf = tool("readelf").expect("readelf (binutils) is needed by this test");
        let dump = dump_self().unwrap();
        let path = temp_path("size");
        dump.write_to(&path).unwrap();
        let out = Command::new(readelf)
            .arg("-hlW")
            .arg(&path)
            .output()
            .unwrap();
        let len = fs::metadata(&path).unwrap().len();
        let _ = fs::remove_file(&path);
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        let field = |key: &str| -> u64 {
            let v = text
                .lines()
                .find_map(|l| l.trim().strip_prefix(key))
                .unwrap_or_else(|| panic!("readelf -h shows no {key}"));
            v.trim_start_matches([':', ' '])
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{key}: {v}"))
        };
        let shdrs_end = field("Start of section headers")
            + field("Number of section headers") * field("Size of section headers");
        // The end of every LOAD segment's file contents (readelf -lW: Offset, FileSiz in hex).
        let loads_end = text
            .lines()
            .filter(|l| l.trim_start().starts_with("LOAD"))
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap();
                hex(f[1]) + hex(f[4])
            })
            .max()
            .expect("readelf -l shows a LOAD segment");
        assert_eq!(len, shdrs_end.max(loads_end), "{text}");
    }

    #[test]
    fn build_id_present() {
        let live = LiveVdso::locate().unwrap();
        let id = live.build_id().unwrap().expect("vDSO has a build-id");
        assert!(id.len() >= 8, "build-id too short: {}", hex(id));
    }

    #[test]
    fn build_id_matches_readelf() {
        let Some(readelf) = tool("readelf") else {
            eprintln!("skipped: readelf not found in PATH");
            return;
        };
        let dump = dump_self().unwrap();
        let path = temp_path("buildid");
        dump.write_to(&path).unwrap();
        let out = Command::new(readelf).arg("-n").arg(&path).output().unwrap();
        let _ = fs::remove_file(&path);
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        let theirs = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("Build ID: "))
            .expect("readelf shows a Build ID");
        assert_eq!(theirs.trim(), hex(dump.build_id().unwrap().unwrap()));
    }

    #[test]
    fn symbols_match_objdump() {
        let Some(objdump) = tool("objdump") else {
            eprintln!("skipped: objdump not found in PATH");
            return;
        };
        let dump = dump_self().unwrap();
        let path = temp_path("syms");
        dump.write_to(&path).unwrap();
        let out = Command::new(objdump).arg("-T").arg(&path).output().unwrap();
        let _ = fs::remove_file(&path);
        assert!(
            out.status.success(),
            "objdump -T rejected the dump: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stderr.is_empty(), "objdump warned: {:?}", out.stderr);
        let theirs = parse_objdump_t(&String::from_utf8_lossy(&out.stdout));
        let ours: Vec<_> = dynamic_symbols(&dump.image)
            .unwrap()
            .iter()
            .map(|s| ObjdumpSym {
                value: format!("{:016x}", s.value),
                flags: s.objdump_flags(),
                section: s.section.clone(),
                size: format!("{:016x}", s.size),
                version: s.objdump_version().filter(|v| !v.is_empty()),
                name: s.name.clone(),
            })
            .collect();
        assert!(!ours.is_empty());
        assert_eq!(ours, theirs);
        // The formatted line re-parses to the same fields.
        let ours_text: String = dynamic_symbols(&dump.image)
            .unwrap()
            .iter()
            .map(|s| s.objdump_line() + "\n")
            .collect();
        let reparsed = parse_objdump_t(&format!("DYNAMIC SYMBOL TABLE:\n{ours_text}"));
        assert_eq!(reparsed, theirs);
    }

    #[test]
    fn clock_gettime_symbol_is_versioned() {
        let live = LiveVdso::locate().unwrap();
        let sym = find_symbol(live.image(), CLOCK_GETTIME_SYMBOL, VDSO_VERSION).unwrap();
        assert_eq!(sym.kind, elf::STT_FUNC);
        assert_eq!(sym.section, ".text");
        assert!(find_symbol(live.image(), CLOCK_GETTIME_SYMBOL, "LINUX_9.9").is_err());
        assert!(find_symbol(live.image(), "__vdso_nonexistent", VDSO_VERSION).is_err());
    }

    #[test]
    fn vdso_clock_gettime_between_syscalls() {
        let f = LiveVdso::locate().unwrap().clock_gettime().unwrap();
        for clock in [
            Clock::Monotonic,
            Clock::Realtime,
            Clock::MonotonicRaw,
            Clock::Boottime,
        ] {
            let before = syscall_clock_gettime(clock.id()).unwrap();
            let mid = f.get(clock).unwrap();
            let after = syscall_clock_gettime(clock.id()).unwrap();
            let (b, m, a) = (timespec_ns(&before), timespec_ns(&mid), timespec_ns(&after));
            assert!(b <= m && m <= a, "{clock}: {b} <= {m} <= {a} violated");
        }
    }

    #[test]
    fn vdso_rejects_bad_clock() {
        let f = LiveVdso::locate().unwrap().clock_gettime().unwrap();
        let mut ts = zero_timespec();
        assert_eq!(f.call(-12345, &mut ts), -libc::EINVAL);
    }

    #[test]
    fn vdso_gettimeofday_between_syscalls() {
        let f = LiveVdso::locate().unwrap().gettimeofday().unwrap();
        let us = |tv: &libc::timeval| i128::from(tv.tv_sec) * 1_000_000 + i128::from(tv.tv_usec);
        let (mut a, mut b, mut c) = (zero_timeval(), zero_timeval(), zero_timeval());
        assert_eq!(raw_syscall_gettimeofday(&mut a), 0);
        assert_eq!(f.call(&mut b), 0);
        assert_eq!(raw_syscall_gettimeofday(&mut c), 0);
        assert!(us(&a) <= us(&b) && us(&b) <= us(&c));
    }

    #[test]
    fn dump_pid_self_matches_live() {
        // SAFETY: getpid has no preconditions.
        let pid = unsafe { libc::getpid() };
        let a = dump_pid(pid).unwrap();
        let b = dump_self().unwrap();
        assert_eq!(a.address, b.address);
        assert_eq!(a.image, b.image);
    }

    #[test]
    fn maps_parsing() {
        let text = "7f17-7f18 r-xp 00000000 00:00 0                          [vdso]\n\
                    ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0  [vsyscall]\n\
                    5600-5700 r--p 00000000 fe:00 1 /usr/bin/a b\n";
        let m = parse_maps(text).unwrap();
        assert_eq!(m[0].name, "[vdso]");
        assert_eq!(m[0].start, 0x7f17);
        assert!(m[0].executable());
        assert_eq!(VsyscallMode::from_entry(Some(&m[1])), VsyscallMode::Xonly);
        assert_eq!(m[2].name, "/usr/bin/a b");
        assert_eq!(VsyscallMode::from_entry(None), VsyscallMode::None);
    }

    #[test]
    fn clock_names() {
        assert_eq!(
            "monotonic-raw".parse::<Clock>().unwrap(),
            Clock::MonotonicRaw
        );
        assert_eq!("CLOCK_TAI".parse::<Clock>().unwrap(), Clock::Tai);
        assert!("bogus".parse::<Clock>().is_err());
        assert_eq!(Clock::Boottime.to_string(), "CLOCK_BOOTTIME");
    }

    #[test]
    fn objdump_line_layout() {
        let s = DynamicSymbol {
            index: 1,
            name: "clock_gettime".into(),
            value: 0xaf0,
            size: 0x386,
            bind: elf::STB_WEAK,
            kind: elf::STT_FUNC,
            section: ".text".into(),
            undefined: false,
            version: SymbolVersion::Named("LINUX_2.6".into()),
            hidden: false,
            versym_hidden: false,
            other: 0,
            class: ElfClass::Elf64,
        };
        assert_eq!(
            s.objdump_line(),
            "0000000000000af0  w   DF .text\t0000000000000386  LINUX_2.6   clock_gettime"
        );
        let h = DynamicSymbol {
            version: SymbolVersion::Base,
            hidden: true,
            bind: elf::STB_GLOBAL,
            name: "example".into(),
            ..s.clone()
        };
        assert_eq!(
            h.objdump_line(),
            "0000000000000af0 g    DF .text\t0000000000000386 (Base)       example"
        );
        // A requirement from .gnu.version_r (parenthesised like a hidden version) and the
        // visibilities, as binutils 2.40 prints them.
        let need = DynamicSymbol {
            version: SymbolVersion::Named("GLIBC_2.2.5".into()),
            hidden: true,
            bind: elf::STB_GLOBAL,
            value: 0,
            size: 0,
            section: "*UND*".into(),
            undefined: true,
            name: "getenv".into(),
            ..s.clone()
        };
        assert_eq!(
            need.objdump_line(),
            "0000000000000000      DF *UND*\t0000000000000000 (GLIBC_2.2.5) getenv"
        );
        for (other, tail) in [
            (elf::STV_PROTECTED, "  LINUX_2.6   .protected clock_gettime"),
            (elf::STV_HIDDEN, "  LINUX_2.6   .hidden clock_gettime"),
            (elf::STV_INTERNAL, "  LINUX_2.6   .internal clock_gettime"),
            (0x83, "  LINUX_2.6   0x83 clock_gettime"),
        ] {
            let v = DynamicSymbol { other, ..s.clone() };
            assert!(v.objdump_line().ends_with(tail), "{}", v.objdump_line());
        }
        // ELF32 (ia32/x32): 8 hex digits, as `objdump -T` prints for an elf32-i386 file.
        let s32 = DynamicSymbol {
            name: "__vdso_clock_gettime".into(),
            value: 0xc70,
            size: 0x5ae,
            bind: elf::STB_GLOBAL,
            class: ElfClass::Elf32,
            ..s
        };
        assert_eq!(
            s32.objdump_line(),
            "00000c70 g    DF .text\t000005ae  LINUX_2.6   __vdso_clock_gettime"
        );
        let h32 = DynamicSymbol {
            class: ElfClass::Elf32,
            ..h
        };
        assert_eq!(
            h32.objdump_line(),
            "00000af0 g    DF .text\t00000386 (Base)       example"
        );
    }

    #[test]
    fn elf_class_and_abi() {
        let live = LiveVdso::locate().unwrap();
        assert_eq!(ElfClass::of(live.image()).unwrap(), ElfClass::Elf64);
        assert_eq!(VdsoAbi::of(live.image()).unwrap(), VdsoAbi::X86_64);
        assert!(live
            .symbols()
            .unwrap()
            .iter()
            .all(|s| s.class == ElfClass::Elf64));
        assert!(ElfClass::of(b"\x7fELF").is_err());
        assert!(ElfClass::of(&[0u8; 64]).is_err());
        // Flip the class byte: the ELF64 header no longer parses as ELF32 (or at all).
        let mut img = live.image().to_vec();
        img[4] = elf::ELFCLASS32;
        assert_eq!(ElfClass::of(&img).unwrap(), ElfClass::Elf32);
        img[4] = 3;
        assert!(elf_image_size(&img).is_err());
        assert_eq!(VdsoAbi::Ia32.class(), ElfClass::Elf32);
        assert_eq!(VdsoAbi::X32.to_string(), "x32 (ELF32, EM_X86_64)");
    }

    /// Compiles `args` with gcc into `out`; `None` (with the reason printed) if gcc is missing
    /// or cannot build for the requested ABI (e.g. no gcc-multilib).
    fn gcc(args: &[&std::ffi::OsStr], out: &Path) -> Option<()> {
        let Some(gcc) = tool("gcc") else {
            eprintln!("skipped: gcc not found in PATH");
            return None;
        };
        let o = Command::new(gcc)
            .args(args)
            .arg("-o")
            .arg(out)
            .output()
            .ok()?;
        if !o.status.success() {
            eprintln!(
                "skipped: gcc {args:?} failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            return None;
        }
        Some(())
    }

    /// The symbol lines of `objdump -T path`, verbatim.
    fn objdump_t_lines(objdump: &Path, path: &Path) -> Vec<String> {
        let out = Command::new(objdump).arg("-T").arg(path).output().unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "objdump -T {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .skip_while(|l| !l.starts_with("DYNAMIC SYMBOL TABLE:"))
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect()
    }

    /// Removes a directory tree on drop.
    struct TempDir(std::path::PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("vdso-probe-{tag}-{}", std::process::id()));
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// ELF64, ia32 and x32 shared objects shaped like a vDSO (versioned with a version script)
    /// plus the symbol kinds a vDSO lacks (weak, hidden version, undefined, weak undefined, TLS,
    /// IFUNC, protected visibility): our listing equals `objdump -T` exactly for each class.
    #[test]
    fn shared_objects_of_each_class_match_objdump() {
        let Some(objdump) = tool("objdump") else {
            eprintln!("skipped: objdump not found in PATH");
            return;
        };
        let dir = TempDir::new("so");
        let src = dir.0.join("v.c");
        let lds = dir.0.join("v.lds");
        fs::write(
            &src,
            "extern int ext_fn(void);\n\
             extern int ext_weak(void) __attribute__((weak));\n\
             __thread int tls_var = 1;\n\
             int __vdso_clock_gettime(int c, void *ts)\n\
             { return c + (ts != 0) + ext_fn() + (ext_weak ? ext_weak() : 0) + tls_var; }\n\
             __attribute__((weak)) int __vdso_time(void *t) { return t != 0; }\n\
             int old_fn(void) { return 1; }\n\
             int new_fn(void) { return 2; }\n\
             __asm__(\".symver old_fn,compat_fn@LINUX_2.5\");\n\
             __asm__(\".symver new_fn,compat_fn@@LINUX_2.6\");\n\
             static int ifn_impl(void) { return 0; }\n\
             static void *ifn_resolver(void) { return ifn_impl; }\n\
             int ifn(void) __attribute__((ifunc(\"ifn_resolver\")));\n\
             int data_obj = 3;\n\
             __attribute__((visibility(\"protected\"))) int prot_fn(void) { return 4; }\n",
        )
        .unwrap();
        fs::write(
            &lds,
            "LINUX_2.5 { global: __vdso_time; compat_fn; local: *; };\n\
             LINUX_2.6 { global: __vdso_clock_gettime; data_obj; compat_fn; tls_var; ifn; prot_fn; }\n\
             LINUX_2.5;\n",
        )
        .unwrap();
        let mut tested = 0;
        for (flag, abi) in [
            ("-m64", VdsoAbi::X86_64),
            ("-m32", VdsoAbi::Ia32),
            ("-mx32", VdsoAbi::X32),
        ] {
            let so = dir.0.join(format!("v{flag}.so"));
            let script = format!("-Wl,--version-script={}", lds.display());
            let args = [
                flag,
                "-shared",
                "-nostdlib",
                "-fPIC",
                "-O2",
                "-Wl,--build-id",
                "-Wl,--hash-style=both",
                &script,
            ];
            let mut args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
            args.push(src.as_os_str());
            if gcc(&args, &so).is_none() {
                continue;
            }
            let data = fs::read(&so).unwrap();
            assert_eq!(VdsoAbi::of(&data).unwrap(), abi, "{flag}");
            assert_eq!(ElfClass::of(&data).unwrap(), abi.class(), "{flag}");
            validate_image(&data).unwrap();
            assert!(elf_image_size(&data).unwrap() <= data.len());
            assert!(build_id(&data).unwrap().is_some_and(|id| id.len() == 20));
            let syms = dynamic_symbols(&data).unwrap();
            assert!(syms.iter().all(|s| s.class == abi.class()));
            let ours: Vec<_> = syms.iter().map(DynamicSymbol::objdump_line).collect();
            assert_eq!(ours, objdump_t_lines(&objdump, &so), "{flag}");
            let w = abi.class().address_digits();
            for (tail, flags) in [
                (" ext_fn", "     D "),
                (" ext_weak", " w   D "),
                (" tls_var", "g    D "),
                (" ifn", "g   iD "),
                (" __vdso_time", " w   DF"),
                (" .protected prot_fn", "g    DF"),
            ] {
                assert!(
                    ours.iter()
                        .any(|l| l.ends_with(tail) && &l[w + 1..w + 8] == flags),
                    "{flag}: no {tail:?} with flags {flags:?}: {ours:#?}"
                );
            }
            let compat = find_symbol(&data, "compat_fn", "LINUX_2.6").unwrap();
            assert!(!compat.hidden);
            assert!(find_symbol(&data, "compat_fn", "LINUX_2.5").unwrap().hidden);
            let f = find_symbol(&data, CLOCK_GETTIME_SYMBOL, VDSO_VERSION).unwrap();
            check_in_exec_segment(&data, f.value, f.size).unwrap();
            assert_eq!(load_bias(&data, 0x1000_0000).unwrap(), 0x1000_0000);
            tested += 1;
        }
        eprintln!("{tested} of 3 classes tested");
    }

    /// Builds and starts `samples/guest-tests/c/static32.c` (`gcc -m32 -static`), an ia32
    /// process; `None` (reason printed) if it cannot be built or run here.
    fn start_ia32(dir: &TempDir) -> Option<crate::child::VdsoChild> {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-tests/c/static32.c");
        let exe = dir.0.join("static32");
        gcc(
            &[
                "-m32".as_ref(),
                "-static".as_ref(),
                "-O2".as_ref(),
                src.as_os_str(),
            ],
            &exe,
        )?;
        crate::child::VdsoChild::spawn(&exe)
            .map_err(|e| eprintln!("skipped: {e}: no IA32 emulation?"))
            .ok()
    }

    /// The ia32 vDSO of a running 32-bit process: an ELF32 `EM_386` image with the same
    /// kernel version note as our own, versioned symbols, and an `objdump -T` identical listing.
    #[test]
    fn ia32_process_vdso_parses() {
        let dir = TempDir::new("ia32");
        let Some(helper) = start_ia32(&dir) else {
            return;
        };
        let dump = dump_pid(helper.pid()).unwrap();
        assert_eq!(dump.address, helper.vdso());
        let img = &dump.image;
        assert_eq!(dump.abi().unwrap(), VdsoAbi::Ia32);
        assert_eq!(elf_image_size(img).unwrap(), img.len());
        validate_image(img).unwrap();
        assert!(validate_image(&img[..img.len() - 1]).is_err());
        assert!(dump.build_id().unwrap().is_some());
        assert_eq!(
            dump.linux_version_code().unwrap(),
            dump_self().unwrap().linux_version_code().unwrap()
        );
        let syms = dump.symbols().unwrap();
        assert!(syms.iter().all(|s| s.class == ElfClass::Elf32));
        let cg = find_symbol(img, CLOCK_GETTIME_SYMBOL, VDSO_VERSION).unwrap();
        assert_eq!(cg.kind, elf::STT_FUNC);
        assert_eq!(cg.section, ".text");
        check_in_exec_segment(img, cg.value, cg.size).unwrap();
        find_symbol(img, "__kernel_vsyscall", "LINUX_2.5").unwrap();
        let bias = load_bias(img, dump.address).unwrap();
        assert!(bias.wrapping_add(cg.value) < dump.address + img.len() as u64);
        if let Some(objdump) = tool("objdump") {
            let path = dir.0.join("vdso32.so");
            dump.write_to(&path).unwrap();
            let ours: Vec<_> = syms.iter().map(DynamicSymbol::objdump_line).collect();
            assert_eq!(ours, objdump_t_lines(&objdump, &path));
            assert!(ours.iter().all(|l| l.as_bytes()[8] == b' '), "{ours:#?}");
        } else {
            eprintln!("objdump comparison skipped: objdump not found in PATH");
        }
    }
}
