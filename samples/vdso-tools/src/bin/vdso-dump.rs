// SPDX-License-Identifier: GPL-2.0
//! `vdso-dump`: copy the vDSO image of this process (or of `--pid PID`) to a file that
//! `objdump -T` / `readelf -a` accept, and print its address, flavour, size and build-id.
//! `--pid` also works on ia32 and x32 processes, whose vDSO is an ELF32 image.

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use vdso_probe::vdso;

/// Dump the vDSO (x86_64, or ia32/x32 with --pid) as an ELF file.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Write the image to FILE.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Dump the vDSO of process PID (via /proc/PID/maps and /proc/PID/mem) instead of our own.
    #[arg(short, long, value_name = "PID")]
    pid: Option<libc::pid_t>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let dump = match args.pid {
        Some(pid) => vdso::dump_pid(pid)?,
        None => vdso::dump_self()?,
    };
    match dump.pid {
        Some(pid) => println!("source:   /proc/{pid}/mem"),
        None => println!("source:   AT_SYSINFO_EHDR of this process"),
    }
    println!("address:  {:#x}", dump.address);
    println!("abi:      {}", dump.abi()?);
    println!(
        "size:     {} bytes ({:#x})",
        dump.image.len(),
        dump.image.len()
    );
    match dump.build_id()? {
        Some(id) => println!("build-id: {}", vdso::hex(id)),
        None => println!("build-id: none"),
    }
    if let Some(code) = dump.linux_version_code()? {
        println!(
            "linux:    {} (LINUX_VERSION_CODE {code:#x}, from the vDSO's Linux note)",
            vdso::format_version_code(code)
        );
    }
    if let Some(path) = args.output {
        dump.write_to(&path)?;
        println!("written:  {}", path.display());
    }
    Ok(())
}
