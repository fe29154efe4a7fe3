// SPDX-License-Identifier: GPL-2.0
//! Another process to look at: a child that prints the address of its own vDSO (hex, one line)
//! and then waits, such as `samples/guest-tests/c/static32.c` (an ia32 process). Tests dump or
//! read that process's vDSO and compare it with the address it printed.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
};

/// A running child and the vDSO address it printed; killed and reaped on drop.
pub struct VdsoChild {
    child: Child,
    vdso: u64,
}

impl VdsoChild {
    /// Starts `exe` with a piped stdin (the helper exits when it closes) and reads its first
    /// line. The error says why (cannot run it: e.g. no IA32 emulation; or what it printed).
    pub fn spawn(exe: &Path) -> Result<Self, String> {
        let mut child = Command::new(exe)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {} ({e})", exe.display()))?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = BufReader::new(out).read_line(&mut line);
        }
        let this = Self {
            child,
            vdso: u64::from_str_radix(line.trim(), 16).unwrap_or(0),
        };
        if this.vdso == 0 {
            // `this` is dropped here: the child is killed and reaped.
            return Err(format!(
                "{} printed {}, not a vDSO address",
                exe.display(),
                crate::cli::quote(&line)
            ));
        }
        Ok(this)
    }

    /// Its pid.
    pub fn pid(&self) -> libc::pid_t {
        self.child.id() as libc::pid_t
    }

    /// The vDSO address it printed (its `getauxval(AT_SYSINFO_EHDR)`).
    pub fn vdso(&self) -> u64 {
        self.vdso
    }
}

impl Drop for VdsoChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
