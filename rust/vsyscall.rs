// SPDX-License-Identifier: GPL-2.0

//! The vsyscall mode (`emulate`, `xonly`, `none`) and how it was determined.
//!
//! Nothing in `arch/x86/entry/vsyscall/vsyscall_64.c` is exported, so the mode is observed:
//! only `emulate` installs a user-accessible PTE for the fixmap page at `VSYSCALL_ADDR`; `xonly`
//! and `none` differ in the gate VMA (`get_gate_vma()`: `VM_EXEC` only for `xonly`, none for
//! `none`), which the kernel shows as the `[vsyscall] --xp` line, or no line, of a 64-bit task's
//! `/proc/<pid>/maps`: the loading task's own maps are read. Only when that cannot tell (a
//! 32-bit loader, no procfs) does the last `vsyscall=` option before `--` in `/proc/cmdline`
//! decide, else the Kconfig default. Any other failure to read them fails the load.

use crate::ffi;
use core::fmt;
use kernel::prelude::*;

/// The vsyscall mode of the running kernel.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Mode {
    /// Readable and executable page, calls emulated on fault.
    Emulate,
    /// Execute-only: calls emulated, reads fault.
    Xonly,
    /// No vsyscall page.
    Disabled,
}

/// Where the mode was learned.
#[derive(Clone, Copy)]
pub(crate) enum Source {
    /// The user-accessible fixmap PTE, present only in `emulate` mode.
    PteProbe,
    /// The gate VMA in the loading task's `/proc/self/maps`.
    GateVma,
    /// A `vsyscall=` boot option.
    Cmdline,
    /// The Kconfig default (`LEGACY_VSYSCALL_*`, or no `X86_VSYSCALL_EMULATION`).
    KconfigDefault,
    /// The architecture has no vsyscall page (arm64).
    Arch,
}

/// The detected mode and its evidence.
#[derive(Clone, Copy)]
pub(crate) struct Info {
    /// The mode.
    pub(crate) mode: Mode,
    /// How it was determined.
    pub(crate) source: Source,
    /// Whether the fixmap PTE is user-accessible.
    pub(crate) pte_user: bool,
    /// The `vsyscall=` boot option, if any.
    pub(crate) cmdline: Option<Mode>,
}

impl Mode {
    /// The name used by the `vsyscall=` boot option.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mode::Emulate => "emulate",
            Mode::Xonly => "xonly",
            Mode::Disabled => "none",
        }
    }

    fn parse(s: &[u8]) -> Option<Self> {
        match s {
            b"emulate" => Some(Mode::Emulate),
            b"xonly" => Some(Mode::Xonly),
            b"none" => Some(Mode::Disabled),
            _ => None,
        }
    }
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Source::PteProbe => "pte-probe",
            Source::GateVma => "gate-vma",
            Source::Cmdline => "cmdline",
            Source::Arch => "arch-has-none",
            Source::KconfigDefault => "kconfig-default",
        }
    }
}

/// The mode selected by the last valid `vsyscall=` option, as the kernel's early_param parses
/// it: tokens after `--` belong to init, a quoted value is unquoted (`next_arg()`).
fn mode_from_cmdline(cmdline: &[u8]) -> Option<Mode> {
    cmdline
        .split(|c| c.is_ascii_whitespace())
        .take_while(|tok| *tok != b"--")
        .filter_map(|tok| tok.strip_prefix(b"vsyscall="))
        .map(|v| {
            v.strip_prefix(b"\"")
                .and_then(|v| v.strip_suffix(b"\""))
                .unwrap_or(v)
        })
        .filter_map(Mode::parse)
        .last()
}

/// What a 64-bit task's maps show of the gate area.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Gate {
    /// A `[vsyscall]` line without read permission: `xonly`.
    ExecOnly,
    /// A readable `[vsyscall]` line: `emulate`.
    Readable,
    /// No `[vsyscall]` line: `none`.
    Absent,
}

/// The gate VMA as `/proc/<pid>/maps` shows it (`None` when the text is cut short). The gate
/// line is the last one (`show_map` lists it after every VMA) at the fixed `VSYSCALL_ADDR`: a
/// file mapped under a name ending in `[vsyscall]` cannot pass for it.
fn gate_from_maps(maps: &[u8], complete: bool) -> Option<Gate> {
    let line = maps
        .split(|&c| c == b'\n')
        .rfind(|l| !l.is_empty())
        .filter(|l| l.starts_with(b"ffffffffff600000-") && l.ends_with(b" [vsyscall]"));
    match line {
        Some(l) => match l.split(|&c| c == b' ').nth(1) {
            Some([b'r', ..]) => Some(Gate::Readable),
            Some(_) => Some(Gate::ExecOnly),
            None => None,
        },
        None if complete => Some(Gate::Absent),
        None => None,
    }
}

/// The loading task's view of the gate area, when it can show it: a 64-bit task (the gate VMA
/// is never shown to compat tasks) whose `/proc/self/maps` can be read whole.
fn gate_of_current() -> Result<Option<Gate>> {
    if ffi::current_addr32() {
        return Ok(None);
    }
    // 64 KiB: kvmalloc, not an order-4 kmalloc that a fragmented machine may refuse.
    let mut buf = KVVec::<u8>::new();
    buf.resize(64 * 1024, 0, GFP_KERNEL)?;
    Ok(read_optional(c"/proc/self/maps", &mut buf)?
        .and_then(|n| gate_from_maps(&buf[..n], n < buf.len())))
}

/// Reads a procfs file: `None` when there is none (no procfs mounted at `/proc`), any other
/// failure (`ENOMEM`) fails the load rather than falling back to a guess.
fn read_optional(path: &CStr, buf: &mut [u8]) -> Result<Option<usize>> {
    match ffi::read_file(path, buf) {
        Ok(n) => Ok(Some(n)),
        Err(e) if e == ENOENT => Ok(None),
        Err(e) => Err(e),
    }
}

/// The Kconfig default of this kernel.
fn kconfig_default() -> Mode {
    if cfg!(not(CONFIG_X86_VSYSCALL_EMULATION)) {
        Mode::Disabled
    } else if cfg!(CONFIG_LEGACY_VSYSCALL_XONLY) {
        Mode::Xonly
    } else {
        Mode::Disabled
    }
}

/// Determines the mode (process context: reads `/proc/self/maps` and `/proc/cmdline`).
pub(crate) fn detect() -> Result<Info> {
    if !cfg!(CONFIG_X86) {
        // No vsyscall page to look for: nothing to read, nothing that can fail the load.
        return Ok(Info {
            mode: Mode::Disabled,
            source: Source::Arch,
            pte_user: false,
            cmdline: None,
        });
    }
    let pte_user = ffi::vsyscall_pte_user();
    let mut buf = KVec::<u8>::new();
    buf.resize(4096, 0, GFP_KERNEL)?;
    let cmdline =
        read_optional(c"/proc/cmdline", &mut buf)?.and_then(|n| mode_from_cmdline(&buf[..n]));
    let gate = gate_of_current()?;
    let (mode, source) = if !cfg!(CONFIG_X86_VSYSCALL_EMULATION) {
        (Mode::Disabled, Source::KconfigDefault)
    } else if pte_user {
        (Mode::Emulate, Source::PteProbe)
    } else if let Some(g) = gate.filter(|&g| g != Gate::Readable) {
        let mode = if g == Gate::ExecOnly {
            Mode::Xonly
        } else {
            Mode::Disabled
        };
        (mode, Source::GateVma)
    } else if let Some(m) = cmdline.filter(|&m| m != Mode::Emulate) {
        (m, Source::Cmdline)
    } else {
        (kconfig_default(), Source::KconfigDefault)
    };
    Ok(Info {
        mode,
        source,
        pte_user,
        cmdline,
    })
}

impl fmt::Display for Info {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "mode: {}", self.mode.name())?;
        writeln!(f, "source: {}", self.source.name())?;
        writeln!(f, "pte_user: {}", if self.pte_user { "yes" } else { "no" })?;
        writeln!(f, "cmdline: {}", self.cmdline.map_or("absent", Mode::name))?;
        writeln!(f, "kconfig_default: {}", kconfig_default().name())
    }
}

#[kunit_tests(vdso_probe_vsyscall)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_last_valid_option_before_dashdash_wins() {
        assert_eq!(
            mode_from_cmdline(b"console=ttyS0 vsyscall=emulate"),
            Some(Mode::Emulate)
        );
        assert_eq!(
            mode_from_cmdline(b"vsyscall=none quiet vsyscall=xonly"),
            Some(Mode::Xonly)
        );
        assert_eq!(
            mode_from_cmdline(b"vsyscall=xonly vsyscall=bogus"),
            Some(Mode::Xonly)
        );
        assert_eq!(
            mode_from_cmdline(b"vsyscall=xonly -- vsyscall=none"),
            Some(Mode::Xonly)
        );
        assert_eq!(
            mode_from_cmdline(b"vsyscall=\"none\""),
            Some(Mode::Disabled)
        );
        assert_eq!(mode_from_cmdline(b"novsyscall=none"), None);
        assert_eq!(mode_from_cmdline(b""), None);
    }

    #[test]
    fn gate_line_of_maps() {
        let xonly = b"7ffd1000-7ffd3000 r-xp 00000000 00:00 0      [vdso]\n\
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n";
        assert_eq!(gate_from_maps(xonly, true), Some(Gate::ExecOnly));
        let emulate = b"ffffffffff600000-ffffffffff601000 r-xp 00000000 00:00 0  [vsyscall]\n";
        assert_eq!(gate_from_maps(emulate, true), Some(Gate::Readable));
        let none = b"7ffd1000-7ffd3000 r-xp 00000000 00:00 0      [vdso]\n";
        assert_eq!(gate_from_maps(none, true), Some(Gate::Absent));
        assert_eq!(gate_from_maps(none, false), None);
        // A file named "... [vsyscall]" is not the gate, wherever it is listed.
        let spoof = b"7f0000000000-7f0000001000 r--p 00000000 00:1f 42  /tmp/x [vsyscall]\n\
7ffd1000-7ffd3000 r-xp 00000000 00:00 0      [vdso]\n";
        assert_eq!(gate_from_maps(spoof, true), Some(Gate::Absent));
        let spoof_last = b"7ffd1000-7ffd3000 r-xp 00000000 00:00 0      [vdso]\n\
7f0000000000-7f0000001000 r--p 00000000 00:1f 42  /tmp/x [vsyscall]\n";
        assert_eq!(gate_from_maps(spoof_last, true), Some(Gate::Absent));
        let spoof_before_gate =
            b"7f0000000000-7f0000001000 r--p 00000000 00:1f 42  /tmp/x [vsyscall]\n\
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n";
        assert_eq!(
            gate_from_maps(spoof_before_gate, true),
            Some(Gate::ExecOnly)
        );
    }
}
