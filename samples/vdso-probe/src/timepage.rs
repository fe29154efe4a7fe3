// SPDX-License-Identifier: GPL-2.0
//! Reader for the module's read-only time page (`/dev/vdso_probe`).
//!
//! The ABI is defined once, in `rust/uapi/vdso_probe.h`; `build.rs` turns it into Rust with
//! bindgen (whose compile-time layout assertions fail the build if the Rust view of a struct
//! ever differs from clang's), and this module includes the result in the private `sys`
//! module and re-exports the structs and constants.
//!
//! Mapping: `mmap(NULL, 4096, PROT_READ, MAP_SHARED, open("/dev/vdso_probe", O_RDONLY), 0)`.
//! Nothing is mapped until the first access, which faults the page in ([`TimePage::map`] leaves
//! the mapping untouched, [`TimePage::open`] also checks the header).
//!
//! Reading follows the page's sequence counter like the kernel's vDSO (`vdso_read_begin` /
//! `vdso_read_retry`): acquire-load `seq`, retry while it is odd, read the fields (volatile:
//! the kernel writes them concurrently), an acquire fence (`smp_rmb`), and retry if `seq`
//! changed. When the page's clock mode is the arch's counter ([`ClockMode::counter_readable`]:
//! x86's TSC, arm64's architected timer) the counter is read ([`counter_ordered`]: `lfence;
//! rdtsc`, `isb; mrs cntvct_el0`) inside the same loop, so the cycles and the conversion
//! parameters belong together, and the precise clocks are computed as the vDSO does (the rules
//! in the header: a 64-bit product below `max_cycles`, negative motion as the time at
//! `cycle_last`, a 128-bit product beyond; [`compute_ns`]).

use std::{
    collections::BTreeMap,
    ffi::CStr,
    fmt, fs,
    hint::black_box,
    os::fd::AsRawFd,
    path::Path,
    ptr::{self, NonNull},
    sync::atomic::{fence, AtomicU32, Ordering},
};

use anyhow::{ensure, Context, Result};
use serde::Serialize;

use crate::bench::{Bench, Entry};
use crate::vdso::Clock;

/// The bindgen output for `rust/uapi/vdso_probe.h` (generated code: C naming, no docs).
#[allow(
    dead_code,
    missing_docs,
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    unreachable_pub,
    clippy::all,
    clippy::undocumented_unsafe_blocks
)]
mod sys {
    include!(concat!(env!("OUT_DIR"), "/vdso_probe_uapi.rs"));
}

pub use sys::{vdso_probe_clock, vdso_probe_time_page, vdso_probe_timespec};

/// Conversion parameters of one clock (`struct vdso_probe_clock`, a `struct tk_read_base`).
pub type ClockParams = vdso_probe_clock;

/// `VDSO_PROBE_DEVICE` as a C string.
pub const DEVICE_CSTR: &CStr = sys::VDSO_PROBE_DEVICE;
/// `VDSO_PROBE_DEVICE`: the misc device that publishes the page.
pub const DEVICE: &str = match DEVICE_CSTR.to_str() {
    Ok(s) => s,
    Err(_) => panic!("VDSO_PROBE_DEVICE is not UTF-8"),
};
/// `VDSO_PROBE_MAGIC` (`"vdsp"` little endian).
pub const MAGIC: u32 = sys::VDSO_PROBE_MAGIC;
/// `VDSO_PROBE_ABI_VERSION`.
pub const ABI_VERSION: u32 = sys::VDSO_PROBE_ABI_VERSION;
/// `VDSO_PROBE_PAGE_SIZE`: the length to map.
pub const PAGE_SIZE: usize = sys::VDSO_PROBE_PAGE_SIZE as usize;
/// `sizeof(struct vdso_probe_time_page)` as this crate compiled it.
pub const ABI_SIZE: usize = std::mem::size_of::<vdso_probe_time_page>();
/// The module's statistics file (`key: value` lines).
pub const STATS_PATH: &str = "/sys/kernel/debug/vdso/timepage";

const _: () = assert!(
    ABI_SIZE <= PAGE_SIZE,
    "the time page struct must fit in the page"
);

/// `enum vdso_probe_clock_mode`: how (whether) userspace can read the clocksource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClockMode {
    /// `VDSO_PROBE_CLOCK_NONE`: not readable from userspace; only the coarse fields apply.
    None,
    /// `VDSO_PROBE_CLOCK_TSC`: the cycles are the TSC; precise time can be computed.
    Tsc,
    /// `VDSO_PROBE_CLOCK_PVCLOCK`: kvm-clock; the "cycles" are not the raw TSC.
    Pvclock,
    /// `VDSO_PROBE_CLOCK_HVCLOCK`: Hyper-V reference TSC page.
    Hvclock,
    /// arm64's `VDSO_PROBE_CLOCK_ARCHTIMER`: the cycles are the virtual counter `cntvct_el0`.
    ArchTimer,
    /// arm64's `VDSO_PROBE_CLOCK_ARCHTIMER_NOCOMPAT`: the same, for 64-bit tasks only (an
    /// erratum keeps AArch32 tasks' vDSO off the counter).
    ArchTimerNoCompat,
    /// A value this crate does not know.
    Unknown(u32),
}

impl ClockMode {
    /// From the page's `clock_mode` field, whose values after `NONE` are the arch's.
    pub fn from_raw(v: u32) -> Self {
        Self::from_raw_for(v, cfg!(target_arch = "aarch64"))
    }

    /// From a `clock_mode` value of an arm64 kernel (`arm64`) or an x86 one.
    pub fn from_raw_for(v: u32, arm64: bool) -> Self {
        match (v, arm64) {
            (sys::VDSO_PROBE_CLOCK_NONE, _) => ClockMode::None,
            (sys::VDSO_PROBE_CLOCK_TSC, false) => ClockMode::Tsc,
            (sys::VDSO_PROBE_CLOCK_PVCLOCK, false) => ClockMode::Pvclock,
            (sys::VDSO_PROBE_CLOCK_HVCLOCK, false) => ClockMode::Hvclock,
            (sys::VDSO_PROBE_CLOCK_ARCHTIMER, true) => ClockMode::ArchTimer,
            (sys::VDSO_PROBE_CLOCK_ARCHTIMER_NOCOMPAT, true) => ClockMode::ArchTimerNoCompat,
            (other, _) => ClockMode::Unknown(other),
        }
    }

    /// The raw value.
    pub fn raw(self) -> u32 {
        match self {
            ClockMode::None => sys::VDSO_PROBE_CLOCK_NONE,
            ClockMode::Tsc => sys::VDSO_PROBE_CLOCK_TSC,
            ClockMode::Pvclock => sys::VDSO_PROBE_CLOCK_PVCLOCK,
            ClockMode::Hvclock => sys::VDSO_PROBE_CLOCK_HVCLOCK,
            ClockMode::ArchTimer => sys::VDSO_PROBE_CLOCK_ARCHTIMER,
            ClockMode::ArchTimerNoCompat => sys::VDSO_PROBE_CLOCK_ARCHTIMER_NOCOMPAT,
            ClockMode::Unknown(v) => v,
        }
    }

    /// Whether this program can read the clocksource's counter ([`counter_ordered`]) and so
    /// compute precise time: the TSC on x86_64, the architected timer on arm64.
    pub fn counter_readable(self) -> bool {
        match self {
            ClockMode::Tsc => cfg!(target_arch = "x86_64"),
            ClockMode::ArchTimer | ClockMode::ArchTimerNoCompat => {
                cfg!(target_arch = "aarch64")
            }
            _ => false,
        }
    }
}

/// The spelling of the debugfs statistics (the kernel's names): `none`, `tsc`, `pvclock`,
/// `hvclock`, `archtimer`, `archtimer_nocompat` (or `unknown(N)`).
impl fmt::Display for ClockMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClockMode::None => f.write_str("none"),
            ClockMode::Tsc => f.write_str("tsc"),
            ClockMode::Pvclock => f.write_str("pvclock"),
            ClockMode::Hvclock => f.write_str("hvclock"),
            ClockMode::ArchTimer => f.write_str("archtimer"),
            ClockMode::ArchTimerNoCompat => f.write_str("archtimer_nocompat"),
            ClockMode::Unknown(v) => write!(f, "unknown({v})"),
        }
    }
}

impl Serialize for ClockMode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

// ---------------------------------------------------------------------------------------------
// The arithmetic (pure, host-testable)
// ---------------------------------------------------------------------------------------------

/// Nanoseconds of the clock `c` at counter value `cycles`, by the rules the x86 vDSO follows
/// (`uapi/vdso_probe.h`; `vdso_calc_ns()` in `arch/x86/include/asm/vdso/gettimeofday.h`): the
/// counter masked to 63 bits, `delta = (cycles - cycle_last) & mask`; up to `max_cycles`
/// (the bound below which `delta * mult` fits) `base_ns + ((delta * mult + xtime_nsec) >> shift)`
/// in 64 bits; beyond it, bit 62 set means negative motion (a counter read slightly behind
/// `cycle_last`, on another CPU) and gives the time at `cycle_last`; otherwise (a long idle
/// period) the same sum with a 128-bit product.
#[inline(always)]
pub fn compute_ns(c: &ClockParams, cycles: u64) -> i128 {
    let delta = (cycles & i64::MAX as u64).wrapping_sub(c.cycle_last) & c.mask;
    let ns = crate::vvar::x86_ns(delta, c.max_cycles, c.mult, c.xtime_nsec, c.shift);
    i128::from(c.base_ns) + i128::from(ns)
}

fn timespec_ns(ts: &vdso_probe_timespec) -> i128 {
    i128::from(ts.sec) * 1_000_000_000 + i128::from(ts.nsec)
}

/// The precise value of `clock` from a consistent copy of the page's parameters and a counter
/// value; `None` for the coarse clocks.
fn precise_from(page: &vdso_probe_time_page, clock: Clock, cycles: u64) -> Option<i128> {
    let offset = match clock {
        Clock::Monotonic => 0,
        Clock::Realtime => page.offs_real_ns,
        Clock::Boottime => page.offs_boot_ns,
        Clock::Tai => page.offs_tai_ns,
        Clock::MonotonicRaw => return Some(compute_ns(&page.raw, cycles)),
        Clock::RealtimeCoarse | Clock::MonotonicCoarse => return None,
    };
    Some(compute_ns(&page.mono, cycles) + i128::from(offset))
}

/// The coarse field that serves `clock`; `None` for `MONOTONIC_RAW` (the page has no coarse
/// raw clock).
fn coarse_field(page: &vdso_probe_time_page, clock: Clock) -> Option<&vdso_probe_timespec> {
    Some(match clock {
        Clock::Realtime | Clock::RealtimeCoarse => &page.realtime_coarse,
        Clock::Monotonic | Clock::MonotonicCoarse => &page.monotonic_coarse,
        Clock::Boottime => &page.boottime_coarse,
        Clock::Tai => &page.tai_coarse,
        Clock::MonotonicRaw => return None,
    })
}

// ---------------------------------------------------------------------------------------------
// Snapshots
// ---------------------------------------------------------------------------------------------

/// A consistent copy of the page (all fields from one even sequence number), with the TSC read
/// inside the same read section when the page's clock mode is TSC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    /// The page's fields.
    pub page: vdso_probe_time_page,
    /// The counter read inside the read section; `None` unless it is readable
    /// ([`ClockMode::counter_readable`]).
    pub cycles: Option<u64>,
}

impl Snapshot {
    /// The clock mode.
    pub fn clock_mode(&self) -> ClockMode {
        ClockMode::from_raw(self.page.clock_mode)
    }

    /// The clocksource's name.
    pub fn clocksource(&self) -> String {
        crate::c_chars(&self.page.clocksource)
    }

    /// True if the header is the one this crate was built for.
    pub fn header_ok(&self) -> bool {
        self.page.magic == MAGIC && self.page.abi_version == ABI_VERSION
    }

    /// Precise `clock` in ns at the moment of the snapshot's counter read: `None` unless the
    /// counter is readable, and for the coarse clocks.
    pub fn precise(&self, clock: Clock) -> Option<i128> {
        if !self.clock_mode().counter_readable() {
            return None;
        }
        precise_from(&self.page, clock, self.cycles?)
    }

    /// Coarse `clock` in ns (the time at the last timekeeping update); `MONOTONIC` gives
    /// `monotonic_coarse` and so on. `None` for `MONOTONIC_RAW`.
    pub fn coarse(&self, clock: Clock) -> Option<i128> {
        coarse_field(&self.page, clock).map(timespec_ns)
    }

    /// `clock` in ns: precise when the counter is readable, else the coarse value (`None` for
    /// `MONOTONIC_RAW` without it).
    pub fn now(&self, clock: Clock) -> Option<i128> {
        self.precise(clock).or_else(|| self.coarse(clock))
    }
}

/// The clocksource's counter, read as the vDSO reads it, after every earlier load has completed:
/// x86_64 `lfence; rdtsc` (the kernel's `rdtsc_ordered()`), arm64 `isb; mrs cntvct_el0`
/// (`__arch_get_hw_counter()`). The asm has no `nomem` option, so the compiler does not move
/// memory accesses across it either.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub fn counter_ordered() -> Option<u64> {
    let (lo, hi): (u32, u32);
    // SAFETY: LFENCE (SSE2) and RDTSC are part of the x86_64 baseline; the asm writes only the
    // declared outputs eax/edx, uses no stack and leaves the flags alone. (With CR4.TSD set
    // RDTSC raises SIGSEGV: a crash, not undefined behaviour; callers only read the TSC when
    // the kernel itself exports it to userspace, clock mode TSC.)
    unsafe {
        core::arch::asm!(
            "lfence",
            "rdtsc",
            out("eax") lo,
            out("edx") hi,
            options(nostack, preserves_flags)
        );
    }
    Some((u64::from(hi) << 32) | u64::from(lo))
}

/// See the x86_64 variant.
#[cfg(target_arch = "aarch64")]
#[inline(always)]
pub fn counter_ordered() -> Option<u64> {
    let v: u64;
    // SAFETY: CNTVCT_EL0 is readable at EL0 under Linux (CNTKCTL_EL1.EL0VCTEN, which the vDSO
    // relies on too); isb and mrs touch no memory and leave the flags alone.
    unsafe {
        core::arch::asm!("isb", "mrs {v}, cntvct_el0", v = out(reg) v,
                         options(nostack, preserves_flags))
    };
    Some(v)
}

/// No counter this crate can read on other arches.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
#[inline(always)]
pub fn counter_ordered() -> Option<u64> {
    None
}

// ---------------------------------------------------------------------------------------------
// The mapping
// ---------------------------------------------------------------------------------------------

/// One read-only shared mapping of the time page; unmapped on drop.
///
/// The file descriptor is closed right after `mmap`: the mapping holds its own reference to
/// the file (and so the module stays pinned while it exists).
#[derive(Debug)]
pub struct TimePage {
    ptr: NonNull<vdso_probe_time_page>,
}

// SAFETY: the mapping is read-only shared memory that lives until `drop`; every access goes
// through volatile reads and the atomic view of `seq`, so sharing it between threads or moving
// it to another thread is no different from reading it on one.
unsafe impl Send for TimePage {}
// SAFETY: as for `Send`: `&TimePage` only allows reads.
unsafe impl Sync for TimePage {}

/// Reads a field of the page.
///
/// # Safety
///
/// `p` must point into a live mapping of the page and be aligned for `T` (a field address
/// taken with `addr_of!` on the page pointer is).
#[inline(always)]
unsafe fn field<T: Copy>(p: *const T) -> T {
    // SAFETY: the caller guarantees `p` is valid and aligned; volatile, because the kernel
    // writes the page concurrently (torn values are discarded by the sequence check).
    unsafe { ptr::read_volatile(p) }
}

impl TimePage {
    /// Opens [`DEVICE`] read-only, maps the page and checks its header (touching the page).
    pub fn open() -> Result<Self> {
        let page = Self::map(Path::new(DEVICE))?;
        page.check_header().context(DEVICE)?;
        Ok(page)
    }

    /// Opens `path` read-only and maps one page `PROT_READ`, `MAP_SHARED`, without touching
    /// it (no page fault happens yet). An error says why (module not loaded, no device node,
    /// permission) and what to do.
    pub fn map(path: &Path) -> Result<Self> {
        let file = fs::File::open(path).map_err(|e| {
            let why = match e.kind() {
                std::io::ErrorKind::NotFound if path == Path::new(DEVICE) => {
                    if crate::report::module_loaded() {
                        "vdso_probe is loaded, but the device node is missing (is devtmpfs \
                         mounted on /dev?)"
                            .to_string()
                    } else {
                        "vdso_probe is not loaded (insmod vdso_probe.ko)".to_string()
                    }
                }
                std::io::ErrorKind::PermissionDenied if path == Path::new(DEVICE) => {
                    "permission denied (the node is root-only, mode 0600: run as root)".to_string()
                }
                _ => e.to_string(),
            };
            anyhow::anyhow!("{}: {why}", path.display())
        })?;
        // A regular file (a saved page) must hold the struct: an access past its end faults.
        if let Ok(meta) = file.metadata() {
            ensure!(
                !meta.is_file() || meta.len() >= ABI_SIZE as u64,
                "{}: {} bytes, too small to hold a time page ({ABI_SIZE} bytes)",
                path.display(),
                meta.len()
            );
        }
        // SAFETY: a fresh mapping at an address of the kernel's choosing (NULL hint), of an
        // open file descriptor; it does not alias any Rust object.
        let addr = unsafe {
            libc::mmap(
                ptr::null_mut(),
                PAGE_SIZE,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("mmap of {}", path.display()));
        }
        drop(file);
        let ptr =
            NonNull::new(addr.cast::<vdso_probe_time_page>()).context("mmap returned NULL")?;
        Ok(TimePage { ptr })
    }

    /// Fails unless the magic, the ABI version and the size are the ones this crate was built
    /// for (a larger size would be a compatible extension).
    pub fn check_header(&self) -> Result<()> {
        let p = self.ptr.as_ptr();
        // SAFETY: the three header fields are never written after the module initialised the
        // page; the pointers are field addresses inside our live mapping.
        let (magic, version, size) = unsafe {
            (
                field(ptr::addr_of!((*p).magic)),
                field(ptr::addr_of!((*p).abi_version)),
                field(ptr::addr_of!((*p).size)),
            )
        };
        ensure!(
            magic == MAGIC,
            "magic {magic:#x}, expected {MAGIC:#x}: not a vdso_probe time page"
        );
        ensure!(
            version == ABI_VERSION,
            "ABI version {version}, this program was built for {ABI_VERSION}"
        );
        ensure!(
            size as usize >= ABI_SIZE,
            "the module's struct is {size} bytes, ours {ABI_SIZE}"
        );
        Ok(())
    }

    /// The mapping's address (e.g. to find it in `/proc/self/maps`).
    pub fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    fn seq(&self) -> &AtomicU32 {
        // SAFETY: `seq` is a 4-byte aligned u32 inside our mapping, which lives as long as
        // `&self`; AtomicU32 has the size and alignment of u32. It is only loaded through
        // this view (the mapping is read-only; atomic loads from read-only memory are fine),
        // and the kernel writes it with WRITE_ONCE-style single stores.
        unsafe { AtomicU32::from_ptr(ptr::addr_of!((*self.ptr.as_ptr()).seq).cast_mut()) }
    }

    /// Runs `read` until it ran entirely within one even sequence number.
    #[inline(always)]
    fn read_section<T>(&self, mut read: impl FnMut(*const vdso_probe_time_page) -> T) -> T {
        let seq = self.seq();
        let mut spins = 0u32;
        loop {
            let start = seq.load(Ordering::Acquire);
            if start & 1 == 0 {
                let value = read(self.ptr.as_ptr());
                // smp_rmb(): the reads above are complete before seq is read again.
                fence(Ordering::Acquire);
                if seq.load(Ordering::Relaxed) == start {
                    return value;
                }
            }
            spins = spins.wrapping_add(1);
            if spins % 1024 == 0 {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
    }

    /// A consistent copy of the whole page (plus the TSC when the clock mode is TSC).
    pub fn snapshot(&self) -> Snapshot {
        self.read_section(|p| {
            // SAFETY: `p` is our live, aligned mapping of the whole struct (ABI_SIZE <=
            // PAGE_SIZE); torn copies are discarded by the sequence check.
            let page = unsafe { field(p) };
            let cycles = if ClockMode::from_raw(page.clock_mode).counter_readable() {
                counter_ordered()
            } else {
                None
            };
            Snapshot { page, cycles }
        })
    }

    /// Precise `clock` in ns, reading only the fields it needs: `None` unless the clock mode
    /// is TSC, and for the coarse clocks. The vDSO's fast path, step by step (the header's
    /// rules): the fields and the counter inside one sequence section, a 64-bit product.
    #[inline]
    pub fn read_precise(&self, clock: Clock) -> Option<i128> {
        let p = self.ptr.as_ptr();
        // SAFETY: only field addresses inside our live mapping are computed, nothing is read.
        let (params, offset) = unsafe {
            let offset = match clock {
                Clock::Monotonic | Clock::MonotonicRaw => None,
                Clock::Realtime => Some(ptr::addr_of!((*p).offs_real_ns)),
                Clock::Boottime => Some(ptr::addr_of!((*p).offs_boot_ns)),
                Clock::Tai => Some(ptr::addr_of!((*p).offs_tai_ns)),
                Clock::RealtimeCoarse | Clock::MonotonicCoarse => return None,
            };
            let params = if clock == Clock::MonotonicRaw {
                ptr::addr_of!((*p).raw)
            } else {
                ptr::addr_of!((*p).mono)
            };
            (params, offset)
        };
        let seq = self.seq();
        loop {
            let start = seq.load(Ordering::Acquire);
            if start & 1 == 0 {
                // SAFETY: field addresses inside our live mapping; the sequence check
                // discards torn values.
                let read = unsafe {
                    if !ClockMode::from_raw(field(ptr::addr_of!((*p).clock_mode)))
                        .counter_readable()
                    {
                        return None;
                    }
                    let c = ClockParams {
                        cycle_last: field(ptr::addr_of!((*params).cycle_last)),
                        mask: field(ptr::addr_of!((*params).mask)),
                        max_cycles: field(ptr::addr_of!((*params).max_cycles)),
                        mult: field(ptr::addr_of!((*params).mult)),
                        shift: field(ptr::addr_of!((*params).shift)),
                        xtime_nsec: field(ptr::addr_of!((*params).xtime_nsec)),
                        base_ns: field(ptr::addr_of!((*params).base_ns)),
                    };
                    let offset = offset.map_or(0, |o| field(o));
                    (c, offset, counter_ordered()?)
                };
                // smp_rmb(): the reads above are complete before seq is read again.
                fence(Ordering::Acquire);
                if seq.load(Ordering::Relaxed) == start {
                    let (c, offset, cycles) = read;
                    return Some(compute_ns(&c, cycles) + i128::from(offset));
                }
            }
            std::hint::spin_loop();
        }
    }

    /// Coarse `clock` in ns (the time at the last update), reading only that field; `None`
    /// for `MONOTONIC_RAW`.
    #[inline]
    pub fn read_coarse(&self, clock: Clock) -> Option<i128> {
        let p = self.ptr.as_ptr();
        // SAFETY: only a field address inside our live mapping is computed (no access).
        let field_ptr = unsafe {
            match clock {
                Clock::Realtime | Clock::RealtimeCoarse => ptr::addr_of!((*p).realtime_coarse),
                Clock::Monotonic | Clock::MonotonicCoarse => {
                    ptr::addr_of!((*p).monotonic_coarse)
                }
                Clock::Boottime => ptr::addr_of!((*p).boottime_coarse),
                Clock::Tai => ptr::addr_of!((*p).tai_coarse),
                Clock::MonotonicRaw => return None,
            }
        };
        // SAFETY: a field address inside our live mapping; torn values are discarded.
        let ts = self.read_section(|_| unsafe { field(field_ptr) });
        Some(timespec_ns(&ts))
    }

    /// `clock` in ns: precise when the clock mode is TSC, else coarse (see [`Snapshot::now`]).
    pub fn now(&self, clock: Clock) -> Option<i128> {
        self.read_precise(clock).or_else(|| self.read_coarse(clock))
    }

    /// The page's `update_count`.
    pub fn update_count(&self) -> u64 {
        // SAFETY: a field address inside our live mapping; torn values are discarded.
        self.read_section(|p| unsafe { field(ptr::addr_of!((*p).update_count)) })
    }
}

impl Drop for TimePage {
    fn drop(&mut self) {
        // SAFETY: `ptr` is the start of a PAGE_SIZE mapping that this value owns; no reference
        // into it outlives `self` (every accessor copies out).
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), PAGE_SIZE) };
    }
}

// ---------------------------------------------------------------------------------------------
// debugfs statistics
// ---------------------------------------------------------------------------------------------

/// The module's statistics ([`STATS_PATH`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Live mappings.
    pub mappings: u64,
    /// Successful mmaps ever.
    pub mmaps: u64,
    /// Page faults served.
    pub faults: u64,
    /// Timekeeping updates written to the page.
    pub updates: u64,
    /// `tsc`, `none`, `pvclock` or `hvclock`.
    pub clock_mode: String,
    /// The clocksource's name.
    pub clocksource: String,
    /// `sizeof(struct vdso_probe_time_page)` as the module was compiled.
    pub abi_size: u64,
    /// Every `key: value` line, including the ones above (not in the JSON form).
    #[serde(skip)]
    pub raw: BTreeMap<String, String>,
}

impl Stats {
    /// Parses `key: value` lines; every documented key must be present.
    pub fn parse(text: &str) -> Result<Self> {
        let raw: BTreeMap<String, String> = crate::report::key_values(text)
            .context("time page statistics")?
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let text_of = |key: &str| {
            raw.get(key)
                .cloned()
                .with_context(|| format!("no `{key}:` line in the time page statistics"))
        };
        let num = |key: &str| -> Result<u64> {
            let v = text_of(key)?;
            v.parse().with_context(|| {
                format!(
                    "time page statistics: {key}: {} is not a number",
                    crate::cli::quote(&v)
                )
            })
        };
        Ok(Stats {
            mappings: num("mappings")?,
            mmaps: num("mmaps")?,
            faults: num("faults")?,
            updates: num("updates")?,
            clock_mode: text_of("clock_mode")?,
            clocksource: text_of("clocksource")?,
            abi_size: num("abi_size")?,
            raw,
        })
    }

    /// Reads [`STATS_PATH`]; an error says why it is missing (debugfs not mounted, module not
    /// loaded).
    pub fn read() -> Result<Self> {
        let text =
            fs::read_to_string(STATS_PATH).map_err(|e| match crate::report::debugfs_problem() {
                Some(why) => anyhow::anyhow!("{STATS_PATH}: {why}"),
                None => anyhow::Error::new(e).context(format!("reading {STATS_PATH}")),
            })?;
        Self::parse(&text)
    }
}

// ---------------------------------------------------------------------------------------------
// Benchmark rows
// ---------------------------------------------------------------------------------------------

/// Name of the coarse benchmark row.
pub const BENCH_COARSE: &str = "time page coarse";
/// Name of the precise benchmark row.
pub const BENCH_PRECISE: &str = "time page precise";

/// The benchmark rows of the time page: [`BENCH_COARSE`] (coarse MONOTONIC) and
/// [`BENCH_PRECISE`] (precise MONOTONIC), or skipped entries with the reason (no device, no
/// TSC clock mode, ...).
pub fn bench_rows(bench: &Bench) -> Vec<Entry> {
    let skipped = |name: &str, reason: String| Entry::Skipped {
        name: name.to_string(),
        reason,
    };
    if !Path::new(DEVICE).exists() {
        let why = format!("no {DEVICE} (insmod vdso_probe.ko first)");
        return vec![
            skipped(BENCH_COARSE, why.clone()),
            skipped(BENCH_PRECISE, why),
        ];
    }
    let page = match TimePage::open() {
        Ok(p) => p,
        Err(e) => {
            let why = crate::cli::one_line(&format!("{e:#}"));
            return vec![
                skipped(BENCH_COARSE, why.clone()),
                skipped(BENCH_PRECISE, why),
            ];
        }
    };
    let entry = |name: &str, f: &mut dyn FnMut()| match bench.measure(name, f) {
        Ok(row) => Entry::Measured(row),
        Err(e) => skipped(name, crate::cli::one_line(&format!("{e:#}"))),
    };
    let coarse = entry(BENCH_COARSE, &mut || {
        black_box(page.read_coarse(black_box(Clock::MonotonicCoarse)));
    });
    let precise = if page.read_precise(Clock::Monotonic).is_some() {
        entry(BENCH_PRECISE, &mut || {
            black_box(page.read_precise(black_box(Clock::Monotonic)));
        })
    } else {
        let s = page.snapshot();
        skipped(
            BENCH_PRECISE,
            format!(
                "clock mode {} (clocksource {}): the page gives no precise time",
                s.clock_mode(),
                s.clocksource()
            ),
        )
    };
    vec![coarse, precise]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::DEBUGFS_DIR;
    use std::mem::{offset_of, size_of};
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    #[test]
    fn header_constants_as_documented() {
        assert_eq!(MAGIC, 0x7073_6476);
        assert_eq!(&MAGIC.to_le_bytes(), b"vdsp");
        assert_eq!(ABI_VERSION, 2);
        assert_eq!(PAGE_SIZE, 4096);
        assert_eq!(DEVICE, "/dev/vdso_probe");
        assert_eq!(DEVICE_CSTR.to_bytes(), b"/dev/vdso_probe");
        assert!(size_of::<vdso_probe_time_page>() <= 4096);
        // The kernel's values (asm/vdso/clocksource.h of x86 and arm64; shim_<arch>.c asserts
        // the UAPI's against them): the same numbers, different counters.
        let x86 = |v| ClockMode::from_raw_for(v, false);
        let arm64 = |v| ClockMode::from_raw_for(v, true);
        assert_eq!(x86(0), ClockMode::None);
        assert_eq!(x86(1), ClockMode::Tsc);
        assert_eq!(x86(2), ClockMode::Pvclock);
        assert_eq!(x86(3), ClockMode::Hvclock);
        assert_eq!(x86(9), ClockMode::Unknown(9));
        assert_eq!(arm64(0), ClockMode::None);
        assert_eq!(arm64(1), ClockMode::ArchTimer);
        assert_eq!(arm64(2), ClockMode::ArchTimerNoCompat);
        assert_eq!(arm64(3), ClockMode::Unknown(3));
        for m in [0, 1, 2, 3, 9] {
            assert_eq!(x86(m).raw(), m);
            assert_eq!(arm64(m).raw(), m);
        }
        // This program reads its own arch's counter only.
        let native = cfg!(target_arch = "x86_64");
        assert_eq!(ClockMode::Tsc.counter_readable(), native);
        assert_eq!(ClockMode::ArchTimer.counter_readable(), !native);
        assert_eq!(ClockMode::ArchTimerNoCompat.counter_readable(), !native);
        assert!(!ClockMode::Pvclock.counter_readable() && !ClockMode::None.counter_readable());
        assert_eq!(ClockMode::from_raw(1), ClockMode::from_raw_for(1, !native));
        assert!(STATS_PATH.starts_with(DEBUGFS_DIR));
    }

    /// The layout worked out by hand from the header (x86_64: __u64/__s64 8-aligned), so a
    /// change of the header that moves a field fails here as well as in the module's build.
    #[test]
    fn layout_by_hand() {
        type P = vdso_probe_time_page;
        assert_eq!(size_of::<vdso_probe_clock>(), 48);
        assert_eq!(size_of::<vdso_probe_timespec>(), 16);
        assert_eq!(size_of::<P>(), 264);
        assert_eq!(std::mem::align_of::<P>(), 8);
        let offsets = [
            (offset_of!(P, magic), 0),
            (offset_of!(P, abi_version), 4),
            (offset_of!(P, size), 8),
            (offset_of!(P, seq), 12),
            (offset_of!(P, update_count), 16),
            (offset_of!(P, clock_mode), 24),
            (offset_of!(P, clock_was_set_seq), 28),
            (offset_of!(P, clocksource), 32),
            (offset_of!(P, realtime_coarse), 64),
            (offset_of!(P, monotonic_coarse), 80),
            (offset_of!(P, boottime_coarse), 96),
            (offset_of!(P, tai_coarse), 112),
            (offset_of!(P, mono), 128),
            (offset_of!(P, raw), 176),
            (offset_of!(P, offs_real_ns), 224),
            (offset_of!(P, offs_boot_ns), 232),
            (offset_of!(P, offs_tai_ns), 240),
            (offset_of!(P, timens_monotonic_ns), 248),
            (offset_of!(P, timens_boottime_ns), 256),
        ];
        for (i, (got, want)) in offsets.iter().enumerate() {
            assert_eq!(got, want, "field #{i}");
        }
        type C = vdso_probe_clock;
        assert_eq!(offset_of!(C, max_cycles), 16);
        assert_eq!(offset_of!(C, mult), 24);
        assert_eq!(offset_of!(C, shift), 28);
        assert_eq!(offset_of!(C, xtime_nsec), 32);
        assert_eq!(offset_of!(C, base_ns), 40);
    }

    /// Parameters with the `max_cycles` a clocksource of that `mult` gets: the largest delta
    /// whose product fits 64 bits (the kernel's is smaller still, with a safety margin).
    fn params(cycle_last: u64, mask: u64, mult: u32, shift: u32, xtime: u64, base: i64) -> C {
        C {
            cycle_last,
            mask,
            max_cycles: (u64::MAX - xtime) / u64::from(mult.max(1)),
            mult,
            shift,
            xtime_nsec: xtime,
            base_ns: base,
        }
    }
    type C = ClockParams;

    /// The sum with a 128-bit product, for comparison.
    fn wide(c: &C, delta: u64) -> i128 {
        i128::from(c.base_ns)
            + ((u128::from(delta) * u128::from(c.mult) + u128::from(c.xtime_nsec)) >> c.shift)
                as i128
    }

    #[test]
    fn compute_small() {
        // delta 100, (100 * 3 + 20) >> 1 = 160, + 5000.
        let c = params(1000, u64::MAX, 3, 1, 10 << 1, 5000);
        assert_eq!(compute_ns(&c, 1100), 5160);
        // At cycle_last: base + xtime_nsec >> shift.
        assert_eq!(compute_ns(&c, 1000), 5010);
    }

    #[test]
    fn compute_64_bit_path_up_to_max_cycles() {
        // At max_cycles and one below, the 64-bit product is the 128-bit one.
        let mult = ((1u64 << 24) / 3) as u32;
        let c = params(0, u64::MAX, mult, 24, 12345, 0);
        for delta in [0, 1, c.max_cycles - 1, c.max_cycles] {
            assert_eq!(compute_ns(&c, delta), wide(&c, delta), "delta {delta}");
        }
    }

    #[test]
    fn compute_needs_128_bits() {
        // A 2 GHz counter: mult / 2^shift = 0.5 ns per cycle. 2^40 cycles (~550 s idle):
        // delta * mult = 2^71 does not fit in 64 bits, and delta > max_cycles (2^33).
        let c = params(7, u64::MAX, 1 << 31, 32, 5 << 32, 1_000_000_000);
        let cycles = 7 + (1u64 << 40);
        // (2^71 + 5 * 2^32) >> 32 = 2^39 + 5 = 549_755_813_893; + 1 s.
        assert_eq!(compute_ns(&c, cycles), 550_755_813_893);
        let wrapped = ((1u64 << 40).wrapping_mul(1 << 31).wrapping_add(5 << 32)) >> 32;
        assert_ne!(1_000_000_000 + i128::from(wrapped), 550_755_813_893);
        // A realistic TSC: 3 GHz, shift 24, mult = 2^24 / 3; one hour of cycles.
        let mult = ((1u64 << 24) / 3) as u32;
        let c = params(0, u64::MAX, mult, 24, 0, 0);
        let hour = 3_000_000_000u64 * 3600;
        assert!(hour > c.max_cycles);
        let want = (u128::from(hour) * u128::from(mult)) >> 24;
        assert_eq!(compute_ns(&c, hour), want as i128);
        assert!((compute_ns(&c, hour) - 3_600_000_000_000).abs() < 1_000_000);
    }

    #[test]
    fn compute_mask_wrap_and_negative_motion() {
        // A 32-bit counter that wrapped: 0xffff_fff0 -> 0x10 is 0x20 cycles.
        let c = params(0xffff_fff0, 0xffff_ffff, 1, 0, 0, 100);
        assert_eq!(compute_ns(&c, 0x10), 132);
        // Bits above the mask are ignored.
        assert_eq!(compute_ns(&c, 0xabcd_0000_0000_0010), 132);
        // The TSC read 1000 cycles behind cycle_last: negative motion, the time at cycle_last
        // (the 64-bit product of the wrapped delta would be garbage).
        let c = params(1_000_000, u64::MAX, 3, 1, 20, 5000);
        assert_eq!(compute_ns(&c, 999_000), 5010);
        // Bit 63 of the counter is ignored (the vDSO's S64_MAX mask).
        assert_eq!(compute_ns(&c, (1 << 63) | 1_000_100), 5160);
        // Degenerate parameters do not panic.
        assert_eq!(compute_ns(&params(0, u64::MAX, 1, 200, 0, 1), 5), 1);
        assert_eq!(compute_ns(&params(0, 0, 1, 0, 0, 1), 5), 1);
    }

    fn sample_page(mode: u32) -> vdso_probe_time_page {
        let mut p = vdso_probe_time_page {
            magic: MAGIC,
            abi_version: ABI_VERSION,
            size: ABI_SIZE as u32,
            clock_mode: mode,
            update_count: 42,
            realtime_coarse: vdso_probe_timespec {
                sec: 1_700_000_000,
                nsec: 5,
            },
            monotonic_coarse: vdso_probe_timespec { sec: 100, nsec: 7 },
            boottime_coarse: vdso_probe_timespec { sec: 101, nsec: 7 },
            tai_coarse: vdso_probe_timespec {
                sec: 1_700_000_037,
                nsec: 5,
            },
            mono: params(1000, u64::MAX, 2, 1, 14 << 1, 100_000_000_000),
            raw: params(1000, u64::MAX, 4, 1, 0, 99_000_000_000),
            offs_real_ns: 1_600_000_000_000_000_000,
            offs_boot_ns: 1_000_000_000,
            offs_tai_ns: 1_600_000_037_000_000_000,
            ..Default::default()
        };
        for (d, s) in p.clocksource.iter_mut().zip(b"tsc") {
            *d = *s as libc::c_char;
        }
        p
    }

    #[test]
    fn snapshot_clocks() {
        let s = Snapshot {
            page: sample_page(1),
            cycles: Some(1010),
        };
        // mono: 100 s + ((10 * 2 + 28) >> 1) = 100 s + 24 ns.
        let mono = 100_000_000_024;
        assert_eq!(s.precise(Clock::Monotonic), Some(mono));
        assert_eq!(
            s.precise(Clock::Realtime),
            Some(mono + 1_600_000_000_000_000_000)
        );
        assert_eq!(s.precise(Clock::Boottime), Some(mono + 1_000_000_000));
        assert_eq!(
            s.precise(Clock::Tai),
            Some(mono + 1_600_000_037_000_000_000)
        );
        // raw: 99 s + (10 * 4) >> 1.
        assert_eq!(s.precise(Clock::MonotonicRaw), Some(99_000_000_020));
        assert_eq!(s.precise(Clock::MonotonicCoarse), None);
        assert_eq!(s.now(Clock::MonotonicCoarse), Some(100_000_000_007));
        assert_eq!(s.now(Clock::Monotonic), Some(mono));
        assert_eq!(s.clocksource(), "tsc");
        assert_eq!(s.clock_mode(), ClockMode::Tsc);
        assert!(s.header_ok());

        // Not TSC: coarse values, nothing for MONOTONIC_RAW.
        let s = Snapshot {
            page: sample_page(0),
            cycles: None,
        };
        assert_eq!(s.precise(Clock::Monotonic), None);
        assert_eq!(s.now(Clock::Monotonic), Some(100_000_000_007));
        assert_eq!(s.now(Clock::Realtime), Some(1_700_000_000_000_000_005));
        assert_eq!(s.now(Clock::Boottime), Some(101_000_000_007));
        assert_eq!(s.now(Clock::Tai), Some(1_700_000_037_000_000_005));
        assert_eq!(s.now(Clock::MonotonicRaw), None);
    }

    #[test]
    fn stats_parse() {
        let text = "mappings: 1\nmmaps: 3\nfaults: 4\nupdates: 1234\nclock_mode: tsc\n\
                    clocksource: tsc\nabi_size: 232\nextra: x y\n";
        let s = Stats::parse(text).unwrap();
        assert_eq!(
            (s.mappings, s.mmaps, s.faults, s.updates, s.abi_size),
            (1, 3, 4, 1234, 232)
        );
        assert_eq!(s.clock_mode, "tsc");
        assert_eq!(s.clocksource, "tsc");
        assert_eq!(s.raw["extra"], "x y");
        let err = Stats::parse("mappings: 1\n").unwrap_err();
        assert!(format!("{err:#}").contains("mmaps"), "{err:#}");
        assert!(Stats::parse(&text.replace("faults: 4", "faults: four")).is_err());
    }

    /// An anonymous page standing in for the device, written by a "kernel" thread that keeps
    /// every coarse field equal to the update number under the sequence protocol.
    struct FakePage {
        page: TimePage,
    }

    impl FakePage {
        fn new() -> Self {
            let addr = crate::testing::anon_shared_mapping(PAGE_SIZE);
            let ptr = NonNull::new(addr as *mut vdso_probe_time_page).unwrap();
            // SAFETY: the fresh mapping is writable, aligned and large enough.
            unsafe { ptr.as_ptr().write(sample_page(0)) };
            FakePage {
                page: TimePage { ptr },
            }
        }

        /// One update with the writer's protocol (seq odd, fields, seq even).
        fn update(ptr: usize, n: i64) {
            let p = ptr as *mut vdso_probe_time_page;
            // SAFETY: `p` is the test's writable mapping; `seq` is aligned for AtomicU32.
            unsafe {
                let seq = AtomicU32::from_ptr(ptr::addr_of_mut!((*p).seq));
                let s = seq.load(Ordering::Relaxed);
                seq.store(s.wrapping_add(1), Ordering::Relaxed);
                fence(Ordering::Release);
                for f in [
                    ptr::addr_of_mut!((*p).realtime_coarse),
                    ptr::addr_of_mut!((*p).monotonic_coarse),
                    ptr::addr_of_mut!((*p).boottime_coarse),
                    ptr::addr_of_mut!((*p).tai_coarse),
                ] {
                    ptr::write_volatile(f, vdso_probe_timespec { sec: n, nsec: n });
                }
                ptr::write_volatile(ptr::addr_of_mut!((*p).update_count), n as u64);
                seq.store(s.wrapping_add(2), Ordering::Release);
            }
        }
    }

    /// A writer thread rewrites the page under its sequence counter while readers check every
    /// snapshot is one generation. Its limit: x86 is TSO (stores are not reordered with stores,
    /// loads not with loads), so this catches a missing or wrong sequence re-check, not a
    /// missing barrier; those show only on a weakly ordered CPU (arm64, issue 14), where the
    /// reader's Acquire loads and the writer's Release stores are what keep it correct.
    #[test]
    fn seq_loop_never_returns_torn_data() {
        let fake = FakePage::new();
        let ptr = fake.page.addr();
        FakePage::update(ptr, 0);
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    FakePage::update(ptr, n);
                }
                n
            })
        };
        // Check without panicking while the writer runs (it must stop before the unmap). The
        // reads start once the writer has: on a loaded machine the reads once all ended before
        // the writer thread ran at all. With the writer running, most whole-page snapshots
        // retry, so 20,000 of them take about two seconds.
        let check = || -> std::result::Result<(), String> {
            let t0 = std::time::Instant::now();
            while fake.page.update_count() == 0 {
                if t0.elapsed() > std::time::Duration::from_secs(10) {
                    return Err("the writer thread made no update in 10 s".into());
                }
                std::thread::yield_now();
            }
            let mut last = 0;
            for _ in 0..20_000 {
                let s = fake.page.snapshot();
                let p = &s.page;
                let n = p.monotonic_coarse.sec;
                let want = vdso_probe_timespec { sec: n, nsec: n };
                for ts in [p.realtime_coarse, p.boottime_coarse, p.tai_coarse] {
                    if ts != want || p.monotonic_coarse != want {
                        return Err(format!("torn snapshot {p:?}"));
                    }
                }
                if p.update_count != n as u64 || p.seq % 2 != 0 || n < last {
                    return Err(format!("bad snapshot after {last}: {p:?}"));
                }
                last = n;
                let c = fake.page.read_coarse(Clock::Monotonic).unwrap_or(-1);
                if c % 1_000_000_001 != 0 {
                    return Err(format!("torn coarse read {c}"));
                }
            }
            Ok(())
        };
        let result = check();
        stop.store(true, Ordering::Relaxed);
        let updates = writer.join().unwrap();
        result.unwrap();
        assert!(updates > 0);
        // Mode NONE: no precise time, coarse available.
        assert_eq!(fake.page.read_precise(Clock::Monotonic), None);
        assert!(fake.page.now(Clock::Monotonic).is_some());
        fake.page.check_header().unwrap();
    }

    #[test]
    fn read_precise_uses_the_tsc() {
        let fake = FakePage::new();
        let p = fake.page.addr() as *mut vdso_probe_time_page;
        let before = counter_ordered().unwrap();
        // SAFETY: the test's writable mapping, no concurrent reader yet.
        unsafe {
            (*p).clock_mode = sys::VDSO_PROBE_CLOCK_TSC;
            (*p).mono = params(before, u64::MAX, 1, 0, 0, 0);
            (*p).raw = params(before, u64::MAX, 2, 0, 0, 0);
            (*p).offs_real_ns = 1_000;
        }
        let mono = fake.page.read_precise(Clock::Monotonic).unwrap();
        let real = fake.page.read_precise(Clock::Realtime).unwrap();
        let raw = fake.page.read_precise(Clock::MonotonicRaw).unwrap();
        let after = counter_ordered().unwrap();
        let span = i128::from(after - before);
        // mult 1, shift 0: ns == TSC ticks since `before`.
        assert!((0..=span).contains(&mono), "{mono} not in 0..={span}");
        assert!(real >= mono + 1_000 && real <= span + 1_000);
        assert!(raw >= 2 * mono && raw <= 2 * span);
        let s = fake.page.snapshot();
        let cycles = s.cycles.unwrap();
        assert!(cycles >= before && cycles <= counter_ordered().unwrap());
        assert_eq!(
            s.precise(Clock::Monotonic),
            Some(i128::from(cycles - before))
        );
        assert_eq!(fake.page.read_precise(Clock::MonotonicCoarse), None);
    }

    #[test]
    fn map_missing_device_says_why() {
        let err = TimePage::map(Path::new("/nonexistent/vdso_probe")).unwrap_err();
        assert!(
            format!("{err:#}").starts_with("/nonexistent/vdso_probe: No such file"),
            "{err:#}"
        );
        if !Path::new(DEVICE).exists() && !crate::report::module_loaded() {
            let err = TimePage::map(Path::new(DEVICE)).unwrap_err();
            assert_eq!(
                format!("{err:#}"),
                format!("{DEVICE}: vdso_probe is not loaded (insmod vdso_probe.ko)")
            );
        }
    }

    #[test]
    fn bench_rows_without_device() {
        if Path::new(DEVICE).exists() {
            return; // a host with the module loaded measures instead
        }
        let bench = Bench::new(crate::bench::Config {
            batches: 2,
            batch_size: 10,
        })
        .unwrap();
        let rows = bench_rows(&bench);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].name(), BENCH_COARSE);
        assert_eq!(rows[1].name(), BENCH_PRECISE);
        for r in rows {
            assert!(
                matches!(&r, Entry::Skipped { reason, .. } if reason.contains("insmod")),
                "{r:?}"
            );
        }
    }
}
