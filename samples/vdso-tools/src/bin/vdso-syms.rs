// SPDX-License-Identifier: GPL-2.0
//! `vdso-syms`: list the vDSO's dynamic symbols with versions, in the layout of `objdump -T`.
//! Reads ELF64 (x86_64) and ELF32 (ia32, x32) images; for ELF32 the value and size columns
//! have 8 hex digits, as `objdump -T` prints them.
#![deny(clippy::print_stdout)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use vdso_probe::cli::{Status, Tool};
use vdso_probe::{outln, vdso};

/// List the dynamic symbols of the vDSO, or of an ELF file, exactly as `objdump -T` does.
///
/// One line per .dynsym entry, in table order: value, flags, section, size, version
/// (parenthesised for a non-default version and for a requirement from .gnu.version_r),
/// visibility (.protected, .hidden, .internal) and name, with the widths and TAB of binutils
/// 2.40 (8 hex digits for ELF32, 16 for ELF64).
#[derive(Debug, Parser)]
struct Args {
    /// ELF file to read, ELF64 or ELF32 (default: the vDSO mapped into this process).
    #[arg(conflicts_with = "pid")]
    file: Option<PathBuf>,
    /// List the vDSO of process PID (read through /proc/PID/mem, as vdso-dump --pid does).
    #[arg(short, long, value_name = "PID")]
    pid: Option<libc::pid_t>,
}

static TOOL: Tool = Tool {
    name: env!("CARGO_BIN_NAME"),
    examples: &[
        ("vdso-syms", "list this process's vDSO"),
        ("vdso-syms vdso32.so", "list an image saved by vdso-dump"),
        (
            "vdso-syms --pid 1234",
            "list the vDSO of process 1234 (e.g. ia32)",
        ),
        (
            "diff <(vdso-syms F) <(objdump -T F | sed -n '/^DYNAMIC/,$p')",
            "compare with binutils",
        ),
    ],
    problem: None,
    cannot_run: "FILE unreadable, not ELF, or not a dynamic object (no .dynsym); no such \
                 process, or /proc/PID/mem not readable",
};

fn main() -> ExitCode {
    TOOL.main(run)
}

fn run(args: Args) -> Result<Status> {
    let owned;
    let (image, what): (&[u8], String) = match (&args.file, args.pid) {
        (Some(path), _) => {
            owned = std::fs::read(path).with_context(|| path.display().to_string())?;
            (&owned, path.display().to_string())
        }
        (None, Some(pid)) => {
            owned = vdso::dump_pid(pid)?.image;
            (&owned, format!("the vDSO of process {pid}"))
        }
        (None, None) => (vdso::LiveVdso::locate()?.image(), "the vDSO".to_string()),
    };
    let symbols = vdso::dynamic_symbols(image).context(what)?;
    outln!("DYNAMIC SYMBOL TABLE:");
    for sym in &symbols {
        outln!("{}", sym.objdump_line());
    }
    if symbols.is_empty() {
        outln!("no symbols"); // as objdump says of an empty .dynsym (a static-pie binary)
    }
    Ok(Status::Ok)
}
