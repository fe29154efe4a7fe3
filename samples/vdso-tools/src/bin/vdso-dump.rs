// SPDX-License-Identifier: GPL-2.0
//! `vdso-dump`: copy the vDSO image of this process (or of `--pid PID`) to a file that
//! `objdump -T` / `readelf -a` accept, and print its address, flavour, size and build-id.
//! `--pid` also works on ia32 and x32 processes, whose vDSO is an ELF32 image.
#![deny(clippy::print_stdout)]

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Parser;
use vdso_probe::cli::{self, Status, Tool};
use vdso_probe::{out, vdso};

/// Dump the vDSO image of this process, or of another with --pid, as an ELF file.
///
/// Prints where the image was read, its address, ABI, size, build-id and Linux version. The
/// image is the ELF file the kernel linked (up to the end of its section header table), which
/// objdump and readelf accept; ia32 and x32 processes have an ELF32 vDSO. With -o the file is
/// written before anything is printed.
#[derive(Debug, Parser)]
struct Args {
    /// Write the image to FILE; `-` writes it to stdout (and prints nothing else).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Dump the vDSO of process PID (via /proc/PID/maps and /proc/PID/mem) instead of our own.
    #[arg(short, long, value_name = "PID")]
    pid: Option<libc::pid_t>,
    /// Write (and compare) the whole [vdso] mapping, the image and the zeros that pad it to
    /// whole pages, instead of the ELF file alone.
    #[arg(long)]
    whole_mapping: bool,
    /// Compare the image with BUILT, the stripped image of the kernel build
    /// (arch/x86/entry/vdso/vdso64/vdso64.so, vdso32/vdso32.so): list the alternative sites
    /// the kernel rewrote at boot; exit 1 if any other byte differs.
    #[arg(long, value_name = "BUILT")]
    compare: Option<PathBuf>,
}

static TOOL: Tool = Tool {
    name: env!("CARGO_BIN_NAME"),
    examples: &[
        (
            "vdso-dump",
            "print this process's vDSO address, ABI, size and build-id",
        ),
        (
            "vdso-dump -o vdso.so && objdump -T vdso.so",
            "dump it and list it with binutils",
        ),
        (
            "vdso-dump --pid 1234 -o vdso32.so",
            "dump the vDSO of process 1234 (e.g. ia32)",
        ),
        ("vdso-dump -o - | sha256sum", "write the image to stdout"),
        (
            "vdso-dump --compare $KBUILD/arch/x86/entry/vdso/vdso64/vdso64.so",
            "which alternatives the kernel applied to its vDSO at boot",
        ),
    ],
    problem: Some(
        "with --compare: a size, or a byte outside the build's alternative sites, differs",
    ),
    cannot_run: "no vDSO mapped, no such process, /proc/PID/mem not readable, FILE not \
                 writable, -o - to a terminal",
};

fn main() -> ExitCode {
    TOOL.main(run)
}

fn run(args: Args) -> Result<Status> {
    let dump = match args.pid {
        Some(pid) => vdso::dump_pid(pid)?,
        None => vdso::dump_self()?,
    };
    // Everything that can fail before anything is written.
    let mut meta = String::new();
    match dump.pid {
        Some(pid) => writeln!(meta, "source:   /proc/{pid}/mem")?,
        None => writeln!(meta, "source:   AT_SYSINFO_EHDR of this process")?,
    }
    writeln!(meta, "address:  {:#x}", dump.address)?;
    writeln!(meta, "abi:      {}", dump.elf().abi())?;
    let size = dump.image.len();
    writeln!(
        meta,
        "size:     {size} bytes ({size:#x}): the ELF file, up to the end of its section headers"
    )?;
    if let Some(tail) = &dump.tail {
        let len = size + tail.len();
        let zeros = tail.iter().all(|&b| b == 0);
        writeln!(
            meta,
            "mapping:  {len} bytes ({} pages); the {} bytes after the file are {}",
            len.div_ceil(vdso::page_size().max(1)),
            tail.len(),
            if zeros { "zeros" } else { "NOT all zero" }
        )?;
    }
    // What -o writes and --compare compares: the image itself, or the whole mapping.
    let bytes: std::borrow::Cow<'_, [u8]> = if args.whole_mapping {
        dump.whole_mapping()?.into()
    } else {
        dump.image.as_slice().into()
    };
    match dump.elf().build_id() {
        Some(id) => writeln!(meta, "build-id: {}", vdso::hex(id))?,
        None => writeln!(meta, "build-id: none")?,
    }
    if let Some(code) = dump.elf().linux_version_code() {
        writeln!(
            meta,
            "linux:    {} (LINUX_VERSION_CODE {code:#x}, from the vDSO's Linux note)",
            vdso::format_version_code(code)
        )?;
    }
    let (mut status, mut compared) = (Status::Ok, String::new());
    if let Some(built) = &args.compare {
        let file = std::fs::read(built).with_context(|| format!("reading {}", built.display()))?;
        let diff = vdso::compare_with_build(&bytes, &file)
            .with_context(|| format!("comparing with {}", built.display()))?;
        let verdict = if diff.live_size != diff.built_size {
            format!(
                "the live image is {} bytes, the build's {}: not the image this kernel was \
                 built with",
                diff.live_size, diff.built_size
            )
        } else {
            format!(
                "{} of {} alternative sites ({} entries) rewritten at boot{}",
                diff.patched.len(),
                diff.sites,
                diff.entries,
                match diff.unexplained.first() {
                    None => ", no other byte differs".to_string(),
                    Some((at, b, l)) => format!(
                        "; {} other bytes differ, the first at {at:#x} ({b:02x} in the build, \
                         {l:02x} live): not the image this kernel was built with",
                        diff.unexplained.len()
                    ),
                }
            )
        };
        writeln!(compared, "compare:  {}: {verdict}", built.display())?;
        for p in &diff.patched {
            let flags: Vec<String> = p.ft_flags.iter().map(|f| format!("{f:#010x}")).collect();
            writeln!(
                compared,
                "  {:#06x} {} bytes (ft_flags {}): {} -> {}",
                p.offset,
                p.len,
                flags.join(" "),
                vdso::hex(&p.built),
                vdso::hex(&p.live)
            )?;
        }
        if !diff.is_the_build() {
            status = Status::Problem;
        }
        meta.push_str(&compared);
    }
    match args.output {
        Some(path) if path.as_os_str() == "-" => {
            // SAFETY: isatty only inspects the descriptor.
            if unsafe { libc::isatty(libc::STDOUT_FILENO) } == 1 {
                bail!("refusing to write the binary image to a terminal: redirect stdout");
            }
            cli::write_stdout(&bytes);
            // Nothing else goes to stdout: a --compare verdict goes to stderr.
            eprint!("{compared}");
        }
        Some(path) => {
            // The file first: `vdso-dump -o F | head -1` still writes F.
            std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
            writeln!(meta, "written:  {}", path.display())?;
            out!("{meta}");
        }
        None => out!("{meta}"),
    }
    Ok(status)
}
