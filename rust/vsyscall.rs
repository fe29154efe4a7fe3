// SPDX-License-Identifier: GPL-2.0

//! The vsyscall mode (`emulate`, `xonly`, `none`) and how it was determined.
//!
//! Nothing in `arch/x86/entry/vsyscall/vsyscall_64.c` is exported, so the mode is inferred:
//! only `emulate` installs a user-accessible PTE for the fixmap page at `VSYSCALL_ADDR` (a
//! runtime fact); `xonly` and `none` differ only in static data, so they come from the last
//! `vsyscall=` token of `/proc/cmdline`, else from the Kconfig default.

use crate::ffi;
use core::fmt;
use kernel::prelude::*;

/// The vsyscall mode of the running kernel.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Readable and executable page, calls emulated on fault.
    Emulate,
    /// Execute-only: calls emulated, reads fault.
    Xonly,
    /// No vsyscall page.
    None,
}

/// Where the mode was learned.
#[derive(Clone, Copy)]
pub(crate) enum Source {
    /// The user-accessible fixmap PTE, present only in `emulate` mode.
    PteProbe,
    /// A `vsyscall=` boot option.
    Cmdline,
    /// The Kconfig default (`LEGACY_VSYSCALL_*`, or no `X86_VSYSCALL_EMULATION`).
    KconfigDefault,
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
            Mode::None => "none",
        }
    }

    fn parse(s: &[u8]) -> Option<Self> {
        match s {
            b"emulate" => Some(Mode::Emulate),
            b"xonly" => Some(Mode::Xonly),
            b"none" => Some(Mode::None),
            _ => None,
        }
    }
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Source::PteProbe => "pte-probe",
            Source::Cmdline => "cmdline",
            Source::KconfigDefault => "kconfig-default",
        }
    }
}

/// The mode selected by the last valid `vsyscall=` token, as the kernel's early_param parses it.
fn mode_from_cmdline(cmdline: &[u8]) -> Option<Mode> {
    cmdline
        .split(|c| c.is_ascii_whitespace())
        .filter_map(|tok| tok.strip_prefix(b"vsyscall="))
        .filter_map(Mode::parse)
        .next_back()
}

/// The Kconfig default of this kernel.
fn kconfig_default() -> Mode {
    if cfg!(not(CONFIG_X86_VSYSCALL_EMULATION)) {
        Mode::None
    } else if cfg!(CONFIG_LEGACY_VSYSCALL_XONLY) {
        Mode::Xonly
    } else {
        Mode::None
    }
}

/// Determines the mode (process context: reads `/proc/cmdline`).
pub(crate) fn detect() -> Info {
    let pte_user = ffi::vsyscall_pte_user();
    let mut buf = KVec::<u8>::new();
    let cmdline = match buf.resize(4096, 0, GFP_KERNEL) {
        Ok(()) => ffi::read_cmdline(&mut buf)
            .ok()
            .and_then(|n| mode_from_cmdline(&buf[..n])),
        Err(_) => None,
    };
    let (mode, source) = if !cfg!(CONFIG_X86_VSYSCALL_EMULATION) {
        (Mode::None, Source::KconfigDefault)
    } else if pte_user {
        (Mode::Emulate, Source::PteProbe)
    } else if let Some(m) = cmdline.filter(|&m| m != Mode::Emulate) {
        (m, Source::Cmdline)
    } else {
        (kconfig_default(), Source::KconfigDefault)
    };
    Info {
        mode,
        source,
        pte_user,
        cmdline,
    }
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
    fn cmdline_last_valid_token_wins() {
        assert!(mode_from_cmdline(b"console=ttyS0 vsyscall=emulate") == Some(Mode::Emulate));
        assert!(mode_from_cmdline(b"vsyscall=none quiet vsyscall=xonly") == Some(Mode::Xonly));
        assert!(mode_from_cmdline(b"vsyscall=xonly vsyscall=bogus") == Some(Mode::Xonly));
        assert!(mode_from_cmdline(b"novsyscall=none") == None);
        assert!(mode_from_cmdline(b"") == None);
    }
}
