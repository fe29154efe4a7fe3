// SPDX-License-Identifier: GPL-2.0
//! The live vDSO of this process: resolving `name@VERSION` and calling it.

use anyhow::{bail, ensure, Context, Result};
use object::elf;

use super::*;

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
#[derive(Debug, Clone)]
pub struct LiveVdso {
    base: usize,
    image: &'static [u8],
    elf: ElfImage,
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
        // Calling into the vDSO is only supported for the native 64-bit flavour.
        let native = if cfg!(target_arch = "aarch64") {
            VdsoAbi::Arm64
        } else {
            VdsoAbi::X86_64
        };
        let abi = VdsoAbi::of(head)?;
        ensure!(
            abi == native,
            "the vDSO at {base:#x} is {abi}; only the {native} vDSO can be called from here"
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
        let elf = ElfImage::parse(image)?;
        Ok(LiveVdso { base, image, elf })
    }

    /// Runtime address of the ELF header.
    pub fn base(&self) -> usize {
        self.base
    }

    /// The image bytes (exactly [`elf_image_size`] bytes).
    pub fn image(&self) -> &'static [u8] {
        self.image
    }

    /// The image as parsed at [`LiveVdso::locate`]: build-id, symbols, segments.
    pub fn elf(&self) -> &ElfImage {
        &self.elf
    }

    /// Runtime address of the function `name@version`, checked to lie in executable code
    /// inside the mapping.
    pub fn function_address(&self, name: &str, version: &str) -> Result<usize> {
        let sym = self.elf.find_symbol(name, version)?;
        ensure!(
            sym.kind == elf::STT_FUNC,
            "{name}@{version} is not a function"
        );
        self.elf
            .check_in_exec_segment(sym.value, sym.size)
            .with_context(|| format!("{name}@{version}"))?;
        let bias = self.elf.load_bias(self.base as u64)?;
        let addr = bias.wrapping_add(sym.value);
        let end = self.base as u64 + self.image.len() as u64;
        ensure!(
            addr >= self.base as u64 && addr.saturating_add(sym.size) <= end,
            "{name}@{version} resolves to {addr:#x}, outside the vDSO [{:#x}, {end:#x})",
            self.base
        );
        usize::try_from(addr).context("address does not fit in usize")
    }

    /// `__vdso_clock_gettime@LINUX_2.6` (arm64: `__kernel_clock_gettime@LINUX_2.6.39`) as a
    /// callable.
    pub fn clock_gettime(&self) -> Result<VdsoClockGettime> {
        let address = self.function_address(CLOCK_GETTIME_SYMBOL, VDSO_VERSION)?;
        // SAFETY: `address` is the non-null runtime address of the exported function
        // `__vdso_clock_gettime@LINUX_2.6` (arm64: `__kernel_clock_gettime@LINUX_2.6.39`),
        // checked above to lie in the executable PT_LOAD of
        // the vDSO mapping. Its ABI is documented (Documentation/ABI/stable/vdso, vdso(7)) as
        // `int clock_gettime(clockid_t, struct timespec *)` with the SysV calling convention,
        // (AAPCS64 on arm64), which is what `ClockGettimeFn` declares; the mapping lives as
        // long as the process.
        let f = unsafe { std::mem::transmute::<usize, ClockGettimeFn>(address) };
        Ok(VdsoClockGettime { f, address })
    }

    /// `__vdso_gettimeofday@LINUX_2.6` (arm64: `__kernel_gettimeofday@LINUX_2.6.39`) as a
    /// callable.
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
