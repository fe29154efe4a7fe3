// SPDX-License-Identifier: GPL-2.0
//! Locating, dumping and parsing the x86_64 vDSO, and calling into it.
//!
//! The kernel passes the address of the vDSO's ELF header in the auxiliary vector
//! (`AT_SYSINFO_EHDR`). The vDSO is a complete, prelinked ELF shared object: the kernel maps
//! the whole image, section header table included, so its size can be derived from its own
//! headers (the section header table is at the end of the image, see `vdso2c` in
//! `arch/x86/entry/vdso/`).
//!
//! This module, one file per concern:
//!
//! * `locate`: finds the image in another process through `/proc/PID/maps` and
//!   `/proc/PID/mem` and copies it ([`dump_pid`], [`Dump`]); the clocksource and its vDSO mode;
//! * `image`: parses the ELF64 x86_64 vDSO and the ELF32 ones (ia32: `EM_386`, x32:
//!   `EM_X86_64`) with helpers generic over object's `FileHeader` trait ([`ElfClass`],
//!   [`VdsoAbi`]): the size from the headers alone ([`elf_image_size`], for the first page of a
//!   mapping), then one parse per image ([`ElfImage::parse`]) that validates it and keeps its
//!   build-id, version note, load segments and dynamic symbols with versions in `objdump -T`
//!   layout ([`DynamicSymbol::objdump_line`]);
//! * `call`: the vDSO of this process ([`LiveVdso::locate`], parsed once), `name@VERSION`
//!   resolved to an address in the live mapping, and safe callers for `__vdso_clock_gettime` /
//!   `__vdso_gettimeofday` ([`VdsoClockGettime`], [`VdsoGettimeofday`]); only the native x86_64
//!   image is called;
//! * `sys`: the clocks and the raw `clock_gettime`/`gettimeofday` system calls, and `vsyscall`:
//!   the legacy vsyscall page ([`VsyscallMode`], [`VsyscallGettimeofday`]), so that the
//!   benchmark and the ptrace demo compare like with like.
//!
//! All raw-pointer work is confined to a few small `unsafe` blocks, each with the argument
//! for its preconditions.

mod call;
mod image;
mod locate;
mod sys;
#[cfg(test)]
mod tests;
mod vsyscall;

pub use call::*;
pub use image::*;
pub use locate::*;
pub use sys::*;
pub use vsyscall::*;

/// Version under which the x86_64 vDSO exports its symbols (`arch/x86/entry/vdso/vdso.lds.S`).
#[cfg(not(target_arch = "aarch64"))]
pub const VDSO_VERSION: &str = "LINUX_2.6";
/// Name of the vDSO `clock_gettime` entry point.
#[cfg(not(target_arch = "aarch64"))]
pub const CLOCK_GETTIME_SYMBOL: &str = "__vdso_clock_gettime";
/// Name of the vDSO `gettimeofday` entry point.
#[cfg(not(target_arch = "aarch64"))]
pub const GETTIMEOFDAY_SYMBOL: &str = "__vdso_gettimeofday";
/// Version under which the arm64 vDSO exports its symbols (`arch/arm64/kernel/vdso/vdso.lds.S`).
#[cfg(target_arch = "aarch64")]
pub const VDSO_VERSION: &str = "LINUX_2.6.39";
/// Name of the arm64 vDSO `clock_gettime` entry point.
#[cfg(target_arch = "aarch64")]
pub const CLOCK_GETTIME_SYMBOL: &str = "__kernel_clock_gettime";
/// Name of the arm64 vDSO `gettimeofday` entry point.
#[cfg(target_arch = "aarch64")]
pub const GETTIMEOFDAY_SYMBOL: &str = "__kernel_gettimeofday";
/// Address of the legacy vsyscall `gettimeofday` entry (`VSYSCALL_ADDR`, first slot).
pub const VSYSCALL_GETTIMEOFDAY_ADDR: usize = 0xffff_ffff_ff60_0000;

/// ABI of `__vdso_clock_gettime`: returns 0 or a *negative errno* (not -1/errno).
pub type ClockGettimeFn = unsafe extern "C" fn(libc::clockid_t, *mut libc::timespec) -> libc::c_int;
/// ABI of `__vdso_gettimeofday` and of the vsyscall `gettimeofday` slot.
pub type GettimeofdayFn =
    unsafe extern "C" fn(*mut libc::timeval, *mut libc::timezone) -> libc::c_int;
