// SPDX-License-Identifier: GPL-2.0
//! `vdso-syms`: list the vDSO's dynamic symbols with versions, in the layout of `objdump -T`.
//! Reads ELF64 (x86_64) and ELF32 (ia32, x32) images; for ELF32 the value and size columns
//! have 8 hex digits, as `objdump -T` prints them.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use vdso_probe::vdso;

/// List dynamic symbols of a vDSO image like `objdump -T`.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// ELF file to read, ELF64 or ELF32 (default: the vDSO mapped into this process).
    file: Option<PathBuf>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let owned;
    let image: &[u8] = match &args.file {
        Some(path) => {
            owned = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            &owned
        }
        None => vdso::LiveVdso::locate()?.image(),
    };
    let symbols = vdso::dynamic_symbols(image)?;
    println!("DYNAMIC SYMBOL TABLE:");
    for sym in &symbols {
        println!("{}", sym.objdump_line());
    }
    Ok(())
}
