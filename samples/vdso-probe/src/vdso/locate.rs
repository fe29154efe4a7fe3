// SPDX-License-Identifier: GPL-2.0
//! Locating the vDSO (`/proc/PID/maps`, the clocksource) and dumping an image from a process.

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::Path;

use anyhow::{ensure, Context, Result};
use serde::Serialize;

use super::*;

/// One line of `/proc/PID/maps`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MapsEntry {
    /// Start address (inclusive).
    pub start: u64,
    /// End address (exclusive).
    pub end: u64,
    /// Permission string, e.g. `r-xp`.
    pub perms: String,
    /// Path or pseudo name (`[vdso]`, `[vsyscall]`, ...), empty for anonymous memory.
    pub name: String,
}

impl MapsEntry {
    /// Length of the mapping in bytes.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// True if the mapping is empty (never the case for real mappings).
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }

    /// True if the permission string allows execution.
    pub fn executable(&self) -> bool {
        self.perms.as_bytes().get(2) == Some(&b'x')
    }
}

/// Splits off the first whitespace-separated field: `(field, rest)`.
fn split_field(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

/// Parses the text of a `/proc/PID/maps` file.
pub fn parse_maps(text: &str) -> Result<Vec<MapsEntry>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            // start-end perms offset dev inode [name]; the name may contain spaces.
            let (range, rest) = split_field(line);
            let (perms, mut rest) = split_field(rest);
            for _ in 0..3 {
                rest = split_field(rest).1;
            }
            let name = rest.trim();
            ensure!(
                !perms.is_empty(),
                "maps line without permissions: {}",
                crate::cli::quote(line)
            );
            let (start, end) = range.split_once('-').with_context(|| {
                format!("bad address range in maps line {}", crate::cli::quote(line))
            })?;
            let start = u64::from_str_radix(start, 16)
                .with_context(|| format!("bad start address in {}", crate::cli::quote(line)))?;
            let end = u64::from_str_radix(end, 16)
                .with_context(|| format!("bad end address in {}", crate::cli::quote(line)))?;
            ensure!(
                end >= start,
                "inverted range in maps line {}",
                crate::cli::quote(line)
            );
            Ok(MapsEntry {
                start,
                end,
                perms: perms.to_string(),
                name: name.to_string(),
            })
        })
        .collect()
}

/// Finds the mapping called `name` (e.g. `[vdso]`) in `/proc/PID/maps` (`pid = None`: self).
/// `Ok(None)` means the file was read and has no such line.
pub fn find_mapping(pid: Option<libc::pid_t>, name: &str) -> Result<Option<MapsEntry>> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/maps"),
        None => "/proc/self/maps".to_string(),
    };
    let text = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    Ok(parse_maps(&text)
        .with_context(|| format!("parsing {path}"))?
        .into_iter()
        .find(|e| e.name == name))
}

/// The system page size.
pub fn page_size() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(v).ok().filter(|&v| v > 0).unwrap_or(4096)
}

/// The current clocksource (`/sys/devices/system/clocksource/clocksource0/current_clocksource`).
pub fn current_clocksource() -> Result<String> {
    let path = "/sys/devices/system/clocksource/clocksource0/current_clocksource";
    Ok(fs::read_to_string(path)
        .with_context(|| format!("reading {path}"))?
        .trim()
        .to_string())
}

/// Whether the x86 vDSO can read a clocksource without entering the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VdsoClockMode {
    /// The clocksource has a vDSO clock mode (`tsc`: `VDSO_CLOCKMODE_TSC`, `kvm-clock`:
    /// `VDSO_CLOCKMODE_PVCLOCK`, Hyper-V TSC page: `VDSO_CLOCKMODE_HVCLOCK`).
    Capable,
    /// No vDSO clock mode (`hpet`, `acpi_pm`, `jiffies`, ...): the high-resolution clocks
    /// fall back to the real system call from inside the vDSO.
    Fallback,
    /// A clocksource this tool does not know.
    Unknown,
}

/// Classifies a clocksource name. Note that `kvm-clock` is only vDSO-capable while the host
/// advertises `PVCLOCK_TSC_STABLE_BIT`; without it the vDSO falls back to the syscall.
pub fn vdso_clock_mode(clocksource: &str) -> VdsoClockMode {
    match clocksource {
        "tsc" | "kvm-clock" | "hyperv_clocksource_tsc_page" => VdsoClockMode::Capable,
        // arm64's architected timer (vDSO clock mode ARCHTIMER; a CPU erratum can take it
        // away, which the clocksource name does not say).
        "arch_sys_counter" => VdsoClockMode::Capable,
        "hpet" | "acpi_pm" | "jiffies" | "refined-jiffies" | "pit" => VdsoClockMode::Fallback,
        _ => VdsoClockMode::Unknown,
    }
}

/// A copy of a vDSO image, where it was mapped, and the image parsed (once, when it was copied).
#[derive(Debug, Clone)]
pub struct Dump {
    /// Runtime address of the ELF header in the source process.
    pub address: u64,
    /// Process the image was read from (`None`: this process).
    pub pid: Option<libc::pid_t>,
    /// The image, trimmed to [`elf_image_size`].
    pub image: Vec<u8>,
    /// The rest of the `[vdso]` mapping after the image (vdso2c pads the image with zeros to
    /// whole pages); `None` when `/proc/self/maps` could not be read for this process.
    pub tail: Option<Vec<u8>>,
    elf: ElfImage,
}

impl Dump {
    /// The image as parsed when it was copied: flavour, build-id, version note, symbols.
    pub fn elf(&self) -> &ElfImage {
        &self.elf
    }

    /// Writes the image to `path` (a valid ELF shared object for `objdump`/`readelf`).
    pub fn write_to(&self, path: &Path) -> Result<()> {
        fs::write(path, &self.image).with_context(|| format!("writing {}", path.display()))
    }

    /// The whole `[vdso]` mapping: the image and its tail.
    pub fn whole_mapping(&self) -> Result<Vec<u8>> {
        let tail = self
            .tail
            .as_ref()
            .context("the [vdso] mapping's extent is unknown (/proc/self/maps unreadable)")?;
        Ok([self.image.as_slice(), tail].concat())
    }
}

/// The `[vdso]` mapping of `pid` (`None`: this process) read whole through `/proc/PID/mem`, and
/// where it starts.
fn read_mapping(pid: Option<libc::pid_t>) -> Result<Option<(u64, Vec<u8>)>> {
    let who = pid.map_or("self".to_string(), |p| p.to_string());
    let Some(entry) = find_mapping(pid, "[vdso]")? else {
        return Ok(None);
    };
    let len = usize::try_from(entry.len()).context("[vdso] mapping too large")?;
    ensure!(len > 0, "empty [vdso] mapping");
    let path = format!("/proc/{who}/mem");
    let mem = fs::File::open(&path).with_context(|| format!("opening {path}"))?;
    let mut buf = vec![0u8; len];
    mem.read_exact_at(&mut buf, entry.start)
        .with_context(|| format!("reading {len} bytes at {:#x} from {path}", entry.start))?;
    Ok(Some((entry.start, buf)))
}

/// Copies this process's vDSO.
pub fn dump_self() -> Result<Dump> {
    let live = LiveVdso::locate()?;
    let image = live.image().to_vec();
    // The tail, where /proc says where the mapping ends (and it is the one AT_SYSINFO_EHDR
    // points to).
    let tail = match read_mapping(None) {
        Ok(Some((start, whole))) if start == live.base() as u64 && whole.len() >= image.len() => {
            Some(whole[image.len()..].to_vec())
        }
        _ => None,
    };
    Ok(Dump {
        address: live.base() as u64,
        pid: None,
        image,
        tail,
        elf: live.elf().clone(),
    })
}

/// Copies the vDSO of process `pid` through `/proc/PID/mem`, using the `[vdso]` line of
/// `/proc/PID/maps`. Needs ptrace-read access to the process (same user, or CAP_SYS_PTRACE).
/// Works for 64-bit processes (ELF64 x86_64 vDSO) as well as ia32 and x32 ones (ELF32).
pub fn dump_pid(pid: libc::pid_t) -> Result<Dump> {
    let (start, mut buf) =
        read_mapping(Some(pid))?.with_context(|| format!("process {pid} has no [vdso] mapping"))?;
    let (size, len) = (elf_image_size(&buf)?, buf.len());
    ensure!(
        size <= len,
        "vDSO headers describe {size} bytes but the [vdso] mapping is only {len} bytes"
    );
    let tail = buf.split_off(size);
    let elf = ElfImage::parse(&buf)?;
    Ok(Dump {
        address: start,
        pid: Some(pid),
        image: buf,
        tail: Some(tail),
        elf,
    })
}
