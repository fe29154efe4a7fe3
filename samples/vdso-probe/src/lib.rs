// SPDX-License-Identifier: GPL-2.0
//! vdso_probe userspace library: locating and parsing the vDSO, benchmarking time reads,
//! parsing `/sys/kernel/debug/vdso/<pid>` reports, reading the module's time page and decoding
//! the process's own `[vvar]` with the kernel's layout (`vvar`); `cli`: the one command-line
//! convention of the tools (errors, exit status, `--help`, JSON).

pub mod bench;
pub mod child;
pub mod cli;
pub mod doctor;
pub mod ptrace;
pub mod report;
pub mod testing;
pub mod timepage;
pub mod vdso;
pub mod vvar;

/// A NUL-terminated C character array (a `utsname` or ABI field) as a string, lossily.
pub(crate) fn c_chars(chars: &[libc::c_char]) -> String {
    let bytes: Vec<u8> = chars
        .iter()
        .take_while(|&&c| c != 0)
        // c_char is i8 on x86_64 and u8 on arm64: the byte, either way.
        .map(|&c| u8::from_ne_bytes(c.to_ne_bytes()))
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}
