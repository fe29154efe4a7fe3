// SPDX-License-Identifier: GPL-2.0
//! The legacy vsyscall page: its mode and its `gettimeofday` slot.

use std::fmt;

use anyhow::{bail, Result};
use serde::Serialize;

use super::*;

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
