// SPDX-License-Identifier: GPL-2.0
//! Parser for `/sys/kernel/debug/vdso/<pid>` reports and `/proc/<pid>/maps`, and the cross-check
//! of one against the other (the format is specified in the README).

use anyhow::{anyhow, bail, Context, Result};
use serde::{Serialize, Serializer};
use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use crate::cli::{json, quote};

/// The directory the module creates.
pub const DEBUGFS_DIR: &str = "/sys/kernel/debug/vdso";
/// Where debugfs is mounted.
pub const DEBUGFS_MOUNT: &str = "/sys/kernel/debug";
/// Present while the module is loaded.
pub const MODULE_SYSFS: &str = "/sys/module/vdso_probe";

/// One special mapping of a report (`<name>.*` keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mapping {
    /// `[vdso]`, `[vvar]`, `[vvar_vclock]`, ...
    pub name: String,
    /// First address.
    #[serde(serialize_with = "json::hex")]
    pub start: u64,
    /// One past the last address.
    #[serde(serialize_with = "json::hex")]
    pub end: u64,
    /// Size in pages.
    pub pages: u64,
    /// `r-xp` style, as in `/proc/<pid>/maps`.
    pub perms: String,
    /// `io`, `pfnmap`, `mixedmap`, ...
    pub flags: Vec<String>,
    /// Number of populated pages.
    pub populated: u64,
    /// Per page: (role, populated); in JSON `[{"role": "time_data", "populated": true}]`.
    #[serde(serialize_with = "page_roles_json")]
    pub page_roles: Vec<(String, bool)>,
}

fn page_roles_json<S: Serializer>(
    roles: &[(String, bool)],
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Role<'a> {
        role: &'a str,
        populated: bool,
    }
    s.collect_seq(roles.iter().map(|(role, populated)| Role {
        role,
        populated: *populated,
    }))
}

/// A parsed per-process report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// TGID in the initial pid namespace.
    pub pid: i32,
    /// `comm`.
    pub comm: String,
    /// `64-bit`, `ia32`, `x32` or `unknown`.
    pub abi: String,
    /// Whether the process has an address space.
    pub has_mm: bool,
    /// `neighbours` or `walk (N vmas)`.
    pub lookup: Option<String>,
    /// `mm->map_count`.
    pub map_count: Option<u64>,
    /// Special mappings, in address order.
    pub mappings: Vec<Mapping>,
    /// `mm->context.vdso`.
    #[serde(serialize_with = "json::hex_opt")]
    pub context_vdso: Option<u64>,
    /// `AT_SYSINFO_EHDR` from the saved auxv (None: absent).
    #[serde(serialize_with = "json::hex_opt")]
    pub auxv_sysinfo_ehdr: Option<u64>,
    /// Size of the vDSO image.
    pub vdso_image_size: Option<u64>,
    /// `emulate`, `xonly` or `none`.
    pub vsyscall_mode: Option<String>,
    /// Whether the task can use the vsyscall page.
    pub vsyscall_usable: Option<bool>,
    /// Whether the task is in the root time namespace.
    pub timens_root: bool,
    /// Time namespace inode number.
    pub timens_inum: u64,
    /// CLOCK_MONOTONIC offset in ns.
    pub timens_monotonic_ns: i128,
    /// CLOCK_BOOTTIME offset in ns.
    pub timens_boottime_ns: i128,
    /// Where the timens page is.
    pub timens_page: String,
    /// The process's time system calls, as attribution counted them.
    pub calls: Calls,
    /// Its faults on its vDSO mappings and time page.
    pub faults: Faults,
    /// Every key and value, as read (not in the JSON form, which has them all as fields).
    #[serde(skip)]
    pub raw: BTreeMap<String, String>,
}

/// One process's time system calls, from its report: only the non-zero counters are there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Calls {
    /// Whether attribution was on at the read (`attribution:`); None from a module without it.
    pub on: Option<bool>,
    /// `<syscall>[.<CLOCK>]` → calls the vDSO itself made (its fallbacks): `fallback.*` lines.
    pub fallback: BTreeMap<String, u64>,
    /// `<syscall>[.<CLOCK>]` → calls the caller made itself, past the vDSO: `direct.*` lines.
    pub direct: BTreeMap<String, u64>,
    /// Calls into the vsyscall page (`vsyscall.calls`).
    pub vsyscall_calls: u64,
}

impl Calls {
    fn parse(raw: &BTreeMap<String, String>) -> Result<Self> {
        let mut c = Calls {
            on: raw.get("attribution").map(|v| v == "on"),
            ..Calls::default()
        };
        for (k, v) in raw {
            let n = || {
                v.parse::<u64>()
                    .with_context(|| format!("bad count in `{k}: {v}`"))
            };
            if let Some(key) = k.strip_prefix("fallback.") {
                c.fallback.insert(key.to_string(), n()?);
            } else if let Some(key) = k.strip_prefix("direct.") {
                c.direct.insert(key.to_string(), n()?);
            } else if k == "vsyscall.calls" {
                c.vsyscall_calls = n()?;
            }
        }
        Ok(c)
    }

    /// Calls of `syscall` (`clock_gettime`, ...) over every clock: fallbacks and direct.
    pub fn syscalls(&self, syscall: &str) -> u64 {
        let of = |m: &BTreeMap<String, u64>| {
            m.iter()
                .filter(|(k, _)| k.split('.').next() == Some(syscall))
                .map(|(_, n)| n)
                .sum::<u64>()
        };
        of(&self.fallback) + of(&self.direct)
    }
}

/// One fault that populated a page, as a report or the `faults` file gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PageFault {
    /// Microseconds since the process's exec (or fork: [`Faults::since`]).
    pub after_us: u64,
    /// `read`, `write` or `exec`.
    pub access: String,
}

/// One process's faults on its vDSO mappings and time page, from its report (`faults.*`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Faults {
    /// `exec` or `fork`: what the times count from; None from a module without the fault log.
    pub since: Option<String>,
    /// Faults logged (those kept per page below, and any dropped beyond the module's limit).
    pub count: u64,
    /// The mappings whose faults the module sees (`faults.traced`): `vvar vvar_vclock vdso
    /// timepage` on x86, `timepage` on arm64 (no page-fault tracepoint); empty from a module
    /// before the line.
    pub traced: Vec<String>,
    /// `<mapping>.page<N>` (`vvar.page0`, `vdso.page1`, `timepage.page0`) → its role and its
    /// faults, in order.
    pub pages: BTreeMap<String, (String, Vec<PageFault>)>,
}

impl Faults {
    fn parse(raw: &BTreeMap<String, String>) -> Result<Self> {
        let mut f = Faults {
            since: raw.get("faults.since").cloned(),
            ..Faults::default()
        };
        for (k, v) in raw {
            let Some(key) = k.strip_prefix("faults.") else {
                continue;
            };
            match key {
                "since" | "dropped" => {}
                // `vvar vvar_vclock vdso timepage`, or `timepage (why)`.
                "traced" => {
                    let names = v.split(" (").next().unwrap_or_default();
                    f.traced = names.split_whitespace().map(str::to_string).collect();
                }
                "count" => f.count = v.parse().with_context(|| format!("bad `{k}: {v}`"))?,
                page => {
                    // `+1.234 ms read (time_data)[, +5.678 ms read]...`
                    let bad = || anyhow!("bad fault line {}", quote(&format!("{k}: {v}")));
                    let (first, role) = v
                        .split_once(" (")
                        .and_then(|(a, rest)| {
                            let (role, more) = rest.split_once(')')?;
                            Some((format!("{a}{more}"), role.to_string()))
                        })
                        .ok_or_else(bad)?;
                    let faults = first
                        .split(", ")
                        .map(|one| {
                            let mut w = one.split_whitespace();
                            let (Some(t), Some("ms"), Some(access), None) =
                                (w.next(), w.next(), w.next(), w.next())
                            else {
                                return Err(bad());
                            };
                            Ok(PageFault {
                                after_us: parse_ms(t).ok_or_else(bad)?,
                                access: access.to_string(),
                            })
                        })
                        .collect::<Result<Vec<_>>>()?;
                    f.pages.insert(page.to_string(), (role, faults));
                }
            }
        }
        Ok(f)
    }

    /// The faults of `<mapping>` (`vvar`, `vvar_vclock`, `vdso`, `timepage`), by page name.
    pub fn of(&self, mapping: &str) -> BTreeMap<&str, &[PageFault]> {
        self.pages
            .iter()
            .filter(|(k, _)| k.split('.').next() == Some(mapping))
            .map(|(k, (_, v))| (k.as_str(), v.as_slice()))
            .collect()
    }
}

/// One line of the global `faults` file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FaultLine {
    /// TGID.
    pub pid: i32,
    /// `comm`, blanks shown as `?`.
    pub comm: String,
    /// `exec` or `fork`.
    pub since: String,
    /// Microseconds since then.
    pub after_us: u64,
    /// `vvar`, `vvar_vclock`, `vdso` or `timepage`.
    pub mapping: String,
    /// The page's index in the mapping.
    pub page: u32,
    /// Its role (`time_data`, `text`, ...).
    pub role: String,
    /// `read`, `write` or `exec`.
    pub access: String,
}

/// `+1.234` (milliseconds, three decimals, as the module prints them) in microseconds.
fn parse_ms(s: &str) -> Option<u64> {
    let (ms, frac) = s.strip_prefix('+')?.split_once('.')?;
    if frac.len() != 3 {
        return None;
    }
    Some(ms.parse::<u64>().ok()? * 1000 + frac.parse::<u64>().ok()?)
}

/// Parses the global `faults` file.
pub fn parse_fault_log(text: &str) -> Result<Vec<FaultLine>> {
    table_lines(text)
        .map(|l| {
            let bad = || anyhow!("bad faults line {}", quote(l));
            let w: Vec<&str> = l.split_whitespace().collect();
            let [pid, comm, since, after, mapping, page, role, access] = w[..] else {
                return Err(bad());
            };
            Ok(FaultLine {
                pid: pid.parse().map_err(|_| bad())?,
                comm: comm.to_string(),
                since: since.to_string(),
                after_us: parse_ms(after).ok_or_else(bad)?,
                mapping: mapping.to_string(),
                page: page
                    .strip_prefix("page")
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(bad)?,
                role: role.to_string(),
                access: access.to_string(),
            })
        })
        .collect()
}

/// One line of the global `fallbacks` file: one process's calls of one system call (and
/// clock) from one origin, with the reason of the last one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FallbackLine {
    /// TGID.
    pub pid: i32,
    /// `comm`, blanks shown as `?`.
    pub comm: String,
    /// `fallback` (from the vDSO), `direct` (past it) or `vsyscall`.
    pub origin: String,
    /// `clock_gettime`, ..., or the vsyscall's name.
    pub syscall: String,
    /// `MONOTONIC`, ...; None for system calls without a clock.
    pub clock: Option<String>,
    /// How many.
    pub calls: u64,
    /// `clock_mode none (hpet)`, `no vDSO path for this clock`, `bypass`, ...
    pub reason: String,
}

/// The lines of a table file of the module (`fallbacks`, `clocksource_log`): blank lines and
/// `# ...` comments skipped.
fn table_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// Parses the global `fallbacks` file (`# ...` lines are comments).
pub fn parse_fallbacks(text: &str) -> Result<Vec<FallbackLine>> {
    table_lines(text)
        .map(|l| {
            let bad = || anyhow!("not a fallbacks line: {}", quote(l));
            let mut f = l.splitn(5, ' ');
            let (pid, comm, key, calls, reason) =
                (f.next(), f.next(), f.next(), f.next(), f.next());
            let (Some(pid), Some(comm), Some(key), Some(calls), Some(reason)) =
                (pid, comm, key, calls, reason)
            else {
                return Err(bad());
            };
            let mut k = key.splitn(3, '.');
            let (origin, syscall) = (k.next().ok_or_else(bad)?, k.next().ok_or_else(bad)?);
            Ok(FallbackLine {
                pid: pid.parse().map_err(|_| bad())?,
                comm: comm.to_string(),
                origin: origin.to_string(),
                syscall: syscall.to_string(),
                clock: k.next().map(str::to_string),
                calls: calls.parse().map_err(|_| bad())?,
                reason: reason.to_string(),
            })
        })
        .collect()
}

/// One line of the global `clocksource_log` file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClocksourceEvent {
    /// The event's number since the module was loaded.
    pub seq: u64,
    /// CLOCK_MONOTONIC at the timekeeping update that showed the change, ns.
    pub monotonic_ns: i64,
    /// CLOCK_REALTIME at that update, seconds.
    pub realtime_s: i64,
    /// The clocksource.
    pub clocksource: String,
    /// Its rating.
    pub rating: u32,
    /// Its `vdso_clock_mode` (`tsc`, `pvclock`, `none`, ...).
    pub vdso_clock_mode: String,
}

/// Parses the global `clocksource_log` file (`# ...` lines are comments).
pub fn parse_clocksource_log(text: &str) -> Result<Vec<ClocksourceEvent>> {
    table_lines(text)
        .map(|l| {
            let bad = || anyhow!("not a clocksource_log line: {}", quote(l));
            let f: Vec<&str> = l.split(' ').collect();
            let [seq, mono, real, cs, rating, mode] = f[..] else {
                return Err(bad());
            };
            Ok(ClocksourceEvent {
                seq: seq.parse().map_err(|_| bad())?,
                monotonic_ns: mono.parse().map_err(|_| bad())?,
                realtime_s: real.parse().map_err(|_| bad())?,
                clocksource: cs.to_string(),
                rating: rating.parse().map_err(|_| bad())?,
                vdso_clock_mode: mode.to_string(),
            })
        })
        .collect()
}

/// The global `vsyscall` file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VsyscallInfo {
    /// `emulate`, `xonly` or `none`.
    pub mode: String,
    /// `pte-probe`, `gate-vma`, `cmdline` or `kconfig-default`.
    pub source: String,
}

/// The `key: value` lines of a debugfs file of the module (`key:` alone: an empty value), in
/// order; empty lines are skipped and any other line is an error. Every reader of the module's
/// files parses them with this one function.
pub fn key_values(text: &str) -> Result<Vec<(&str, &str)>> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.split_once(": ")
                .or_else(|| l.strip_suffix(':').map(|k| (k, "")))
                .ok_or_else(|| anyhow!("not a `key: value` line: {}", quote(l)))
        })
        .collect()
}

fn hex(s: &str) -> Result<u64> {
    let s = s.trim_start_matches("0x");
    u64::from_str_radix(s, 16).with_context(|| format!("bad hex number {}", quote(s)))
}

fn yes_no(s: &str) -> Result<bool> {
    match s {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => bail!("expected yes/no, got {}", quote(s)),
    }
}

/// Parses `[-]sec.nsec` into nanoseconds.
fn offset_ns(s: &str) -> Result<i128> {
    let (neg, s) = s.strip_prefix('-').map_or((false, s), |r| (true, r));
    let (sec, nsec) = s
        .split_once('.')
        .ok_or_else(|| anyhow!("bad offset {}", quote(s)))?;
    let v = sec.parse::<i128>()? * 1_000_000_000 + nsec.parse::<i128>()?;
    Ok(if neg { -v } else { v })
}

/// Parses a range `start-end` (hex, as in `/proc/<pid>/maps`).
pub fn parse_range(s: &str) -> Result<(u64, u64)> {
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| anyhow!("bad range {}", quote(s)))?;
    Ok((hex(a)?, hex(b)?))
}

/// The pages of a special mapping the module reports one by one (`<name>.page<N>` lines): the
/// first 64, a `u64` bitmap in the module (`TRACKED_PAGES`, rust/report.rs); `<name>.pages`
/// gives the whole count. The x86 special mappings have at most four pages.
pub const TRACKED_PAGES: u64 = 64;

impl Report {
    /// Parses the text of `/sys/kernel/debug/vdso/<pid>`.
    pub fn parse(text: &str) -> Result<Self> {
        let pairs = key_values(text)?;
        let raw: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let get = |k: &str| raw.get(k).map(String::as_str);
        let need = |k: &str| get(k).ok_or_else(|| anyhow!("report has no `{k}` line"));

        // Mappings appear in file order: the first key of each is `<name>.range`.
        let mut mappings = Vec::new();
        for (k, v) in &pairs {
            if let Some(key) = k.strip_suffix(".range") {
                let (start, end) = parse_range(v)?;
                let field = |f: &str| need(&format!("{key}.{f}"));
                let pages: u64 = field("pages")?.parse()?;
                let page_roles = (0..pages.min(TRACKED_PAGES))
                    .map(|i| {
                        let v = field(&format!("page{i}"))?;
                        let (role, state) = v
                            .split_once(' ')
                            .ok_or_else(|| anyhow!("bad page line {}", quote(v)))?;
                        Ok((role.to_string(), state == "populated"))
                    })
                    .collect::<Result<_>>()?;
                mappings.push(Mapping {
                    name: format!("[{key}]"),
                    start,
                    end,
                    pages,
                    perms: field("perms")?.to_string(),
                    flags: field("flags")?
                        .split_whitespace()
                        .map(str::to_string)
                        .collect(),
                    populated: field("populated")?.parse()?,
                    page_roles,
                });
            }
        }
        let has_mm = yes_no(need("mm")?)?;
        let opt_hex = |k: &str| get(k).filter(|v| *v != "absent").map(hex).transpose();
        Ok(Report {
            pid: need("pid")?.parse()?,
            comm: need("comm")?.to_string(),
            abi: need("abi")?.to_string(),
            has_mm,
            lookup: get("lookup").map(str::to_string),
            map_count: get("map_count").map(str::parse).transpose()?,
            mappings,
            context_vdso: opt_hex("context.vdso")?,
            auxv_sysinfo_ehdr: opt_hex("auxv.sysinfo_ehdr")?,
            vdso_image_size: get("vdso_image.size").map(str::parse).transpose()?,
            vsyscall_mode: get("vsyscall.mode").map(str::to_string),
            vsyscall_usable: get("vsyscall.usable").map(yes_no).transpose()?,
            timens_root: yes_no(need("timens.root")?)?,
            timens_inum: need("timens.inum")?.parse()?,
            timens_monotonic_ns: offset_ns(need("timens.monotonic")?)?,
            timens_boottime_ns: offset_ns(need("timens.boottime")?)?,
            timens_page: need("timens.page")?.to_string(),
            calls: Calls::parse(&raw)?,
            faults: Faults::parse(&raw)?,
            raw,
        })
    }

    /// The mapping called `name` (e.g. `[vdso]`).
    pub fn mapping(&self, name: &str) -> Option<&Mapping> {
        self.mappings.iter().find(|m| m.name == name)
    }

    /// Reads and parses the report of `pid` from [`DEBUGFS_DIR`].
    pub fn read(pid: i32) -> Result<Self> {
        Self::read_in(Path::new(DEBUGFS_DIR), pid)
    }

    /// Reads and parses the report of `pid` from `dir` (the debugfs directory, or a copy of
    /// it). A file that cannot be read gives a [`ReadError`] that says why and what to do.
    pub fn read_in(dir: &Path, pid: i32) -> Result<Self> {
        let path = dir.join(pid.to_string());
        let text = std::fs::read_to_string(&path).map_err(|error| ReadError {
            pid,
            reason: unreadable_reason(dir, pid, &error),
            error,
        })?;
        Self::parse(&text).with_context(|| format!("parsing {}", path.display()))
    }
}

/// A report that could not be read, with the cause told apart (debugfs not mounted, module
/// not loaded, no such process, kernel thread, zombie, thread id, permission).
#[derive(Debug)]
pub struct ReadError {
    /// The pid asked for.
    pub pid: i32,
    /// Why, and what to do: `no such process`, `vdso_probe is not loaded (insmod ...)`, ...
    pub reason: String,
    /// The error of the read itself.
    pub error: io::Error,
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {}: {}", self.pid, self.reason)
    }
}

impl std::error::Error for ReadError {}

/// `0x...`, or `absent`.
pub fn hex_or_absent(v: Option<u64>) -> String {
    v.map_or_else(|| "absent".to_string(), |v| format!("{v:#x}"))
}

/// `DEBUGFS_MAGIC` (`include/uapi/linux/magic.h`).
const DEBUGFS_MAGIC: u64 = 0x6462_6720;

/// Whether debugfs is mounted on [`DEBUGFS_MOUNT`] (by the file system type `statfs` reports,
/// which needs no permission on the directory itself).
pub fn debugfs_mounted() -> bool {
    // SAFETY: statfs is plain integers; all-zero is a valid value.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a writable statfs buffer, which is all statfs takes.
    let rc = unsafe { libc::statfs(c"/sys/kernel/debug".as_ptr(), &mut st) };
    rc == 0 && st.f_type as u64 == DEBUGFS_MAGIC
}

/// Whether `vdso_probe` is loaded ([`MODULE_SYSFS`] exists).
pub fn module_loaded() -> bool {
    Path::new(MODULE_SYSFS).exists()
}

/// Why the module's debugfs files are missing, with what to do: debugfs not mounted, the
/// module not loaded, or both; `None` when neither.
pub fn debugfs_problem() -> Option<String> {
    let mount = format!("mount -t debugfs none {DEBUGFS_MOUNT}");
    match (debugfs_mounted(), module_loaded()) {
        (true, true) => None,
        (false, true) => Some(format!(
            "debugfs is not mounted on {DEBUGFS_MOUNT} ({mount})"
        )),
        (true, false) => Some("vdso_probe is not loaded (insmod vdso_probe.ko)".to_string()),
        (false, false) => Some(format!(
            "vdso_probe is not loaded and debugfs is not mounted (insmod vdso_probe.ko; {mount})"
        )),
    }
}

/// `PF_KTHREAD` (`include/linux/sched.h`).
const PF_KTHREAD: u64 = 0x0020_0000;

/// Why `/proc` says `pid` has no report: no such process, a kernel thread, a zombie, a thread
/// id that is not its process's; `None` for a live user process.
fn process_problem(pid: i32) -> Option<String> {
    let stat = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Some("no such process".to_string())
        }
        Err(_) => return None,
    };
    // `pid (comm) state ppid pgrp session tty_nr tpgid flags ...`; comm may contain ") ".
    let (comm, rest) = stat.split_once(" (")?.1.rsplit_once(") ")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let flags: u64 = fields.get(6)?.parse().ok()?;
    if flags & PF_KTHREAD != 0 {
        return Some(format!(
            "{comm} is a kernel thread: kernel threads have no mm, so no vDSO and no report"
        ));
    }
    if fields.first() == Some(&"Z") {
        return Some(format!(
            "{comm} is a zombie (exited, not yet reaped): it has no address space any more"
        ));
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let tgid: i32 = status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))?
        .trim()
        .parse()
        .ok()?;
    (tgid != pid).then(|| {
        format!("a thread of process {tgid}: reports are per process, named by its pid ({tgid})")
    })
}

/// Why the report of `pid` in `dir` could not be read (`e`), and what to do.
pub fn unreadable_reason(dir: &Path, pid: i32, e: &io::Error) -> String {
    if dir == Path::new(DEBUGFS_DIR) {
        if let Some(p) = debugfs_problem() {
            return p;
        }
    }
    if e.kind() == io::ErrorKind::PermissionDenied {
        return if std::fs::read_dir(dir).is_err() {
            format!(
                "permission denied: {} is not readable ({DEBUGFS_MOUNT} is root-only, mode 0700,                  unless mounted otherwise): run as root",
                dir.display()
            )
        } else {
            format!(
                "permission denied: a report is readable where /proc/{pid}/maps is (same user                  and a dumpable process, or CAP_SYS_PTRACE): run as root or as its owner"
            )
        };
    }
    if let Some(p) = process_problem(pid) {
        return p;
    }
    match e.raw_os_error() {
        Some(libc::ENOENT) => format!(
            "no report in {} (the process has only just started, or is exiting?)",
            dir.display()
        ),
        Some(libc::ESRCH) | Some(libc::EIO) => {
            "the process exited while its report was being read".to_string()
        }
        _ => format!("reading {}: {e}", dir.join(pid.to_string()).display()),
    }
}

impl VsyscallInfo {
    /// Parses the text of `/sys/kernel/debug/vdso/vsyscall`.
    pub fn parse(text: &str) -> Result<Self> {
        let raw: BTreeMap<&str, &str> = key_values(text)?.into_iter().collect();
        let need = |k: &str| {
            raw.get(k)
                .map(|s| s.to_string())
                .ok_or_else(|| anyhow!("no `{k}` line"))
        };
        Ok(VsyscallInfo {
            mode: need("mode")?,
            source: need("source")?,
        })
    }
}

/// `/proc/<pid>/maps` lines, parsed once for the whole workspace (names with spaces kept).
pub use crate::vdso::{parse_maps, MapsEntry};

/// Reads `/proc/<pid>/maps` and the `AT_SYSINFO_EHDR` of `/proc/<pid>/auxv`, and returns every
/// disagreement with the report (empty: all consistent).
pub fn cross_check(report: &Report) -> Result<Vec<String>> {
    let pid = report.pid;
    let path = |f: &str| format!("/proc/{pid}/{f}");
    let read = |f: &str| std::fs::read(path(f)).with_context(|| format!("reading {}", path(f)));
    let maps = parse_maps(&String::from_utf8_lossy(&read("maps")?))
        .with_context(|| format!("parsing {}", path("maps")))?;
    let auxv = read("auxv")?;
    // The auxv word size is the executable's ELF class (EI_CLASS 1: 32-bit words).
    let mut ident = [0u8; 5];
    std::fs::File::open(path("exe"))
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut ident))
        .with_context(|| format!("reading the ELF header of {}", path("exe")))?;
    let word = if ident[4] == 1 { 4 } else { 8 };
    Ok(compare(
        report,
        &maps,
        auxv_entry(&auxv, word, libc::AT_SYSINFO_EHDR),
    ))
}

/// The value of `key` in raw `/proc/<pid>/auxv` bytes made of `word`-byte (4 or 8) words.
pub fn auxv_entry(auxv: &[u8], word: usize, key: u64) -> Option<u64> {
    auxv.chunks_exact(2 * word)
        .map(|c| {
            let w = |i: usize| {
                let mut b = [0u8; 8];
                b[..word].copy_from_slice(&c[i..i + word]);
                u64::from_le_bytes(b)
            };
            (w(0), w(word))
        })
        .take_while(|&(k, _)| k != 0)
        .find(|&(k, _)| k == key)
        .map(|(_, v)| v)
}

/// Compares a report with maps lines and an auxv value; returns the disagreements.
pub fn compare(report: &Report, maps: &[MapsEntry], sysinfo_ehdr: Option<u64>) -> Vec<String> {
    let mut bad = Vec::new();
    for name in ["[vvar]", "[vvar_vclock]", "[vdso]"] {
        let m = report.mapping(name);
        let l = maps.iter().find(|l| l.name == name);
        match (m, l) {
            (Some(m), Some(l)) => {
                if (m.start, m.end) != (l.start, l.end) {
                    bad.push(format!(
                        "{name}: report {:x}-{:x}, maps {:x}-{:x}",
                        m.start, m.end, l.start, l.end
                    ));
                }
                if m.perms != l.perms {
                    bad.push(format!(
                        "{name}: report perms {}, maps {}",
                        m.perms, l.perms
                    ));
                }
            }
            (None, None) => {}
            (Some(_), None) => bad.push(format!("{name}: in the report, not in maps")),
            (None, Some(_)) => bad.push(format!("{name}: in maps, not in the report")),
        }
    }
    if report.auxv_sysinfo_ehdr != sysinfo_ehdr {
        bad.push(format!(
            "AT_SYSINFO_EHDR: report {}, /proc auxv {}",
            hex_or_absent(report.auxv_sysinfo_ehdr),
            hex_or_absent(sysinfo_ehdr)
        ));
    }
    let vsyscall = maps
        .iter()
        .find(|l| l.name == "[vsyscall]")
        .map(|l| l.perms.as_str());
    let expect = match vsyscall {
        Some("r-xp") => "emulate",
        Some("--xp") => "xonly",
        Some(_) => "unknown",
        None => "none",
    };
    // A task without a vsyscall page (ia32) says nothing about the system's mode.
    if report.vsyscall_usable == Some(true) && report.vsyscall_mode.as_deref() != Some(expect) {
        bad.push(format!(
            "vsyscall: report {}, maps says {expect}",
            report.vsyscall_mode.as_deref().unwrap_or("absent")
        ));
    }
    bad
}

#[cfg(test)]
mod tests {
    use super::*;

    const INIT: &str = include_str!("../tests/data/report-init.txt");

    #[test]
    fn parses_captured_report() {
        let r = Report::parse(INIT).unwrap();
        assert_eq!(r.pid, 1);
        assert_eq!(r.comm, "init");
        assert_eq!(r.abi, "64-bit");
        assert!(r.has_mm);
        let names: Vec<_> = r.mappings.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["[vvar]", "[vvar_vclock]", "[vdso]"]);
        let vdso = r.mapping("[vdso]").unwrap();
        assert_eq!(vdso.perms, "r-xp");
        assert_eq!(vdso.pages, 2);
        assert_eq!(vdso.end - vdso.start, 2 * 4096);
        assert_eq!(r.context_vdso, Some(vdso.start));
        assert_eq!(r.auxv_sysinfo_ehdr, Some(vdso.start));
        let vvar = r.mapping("[vvar]").unwrap();
        assert_eq!(vvar.page_roles[0].0, "time_data");
        assert_eq!(vvar.flags, ["mixedmap", "dontexpand", "dontdump"]);
        assert!(r.timens_root);
        assert_eq!(r.timens_monotonic_ns, 0);
        assert_eq!(r.vsyscall_mode.as_deref(), Some("xonly"));
    }

    #[test]
    fn compare_detects_each_disagreement() {
        let r = Report::parse(INIT).unwrap();
        let maps_text = r
            .mappings
            .iter()
            .map(|m| {
                format!(
                    "{:x}-{:x} {} 00000000 00:00 0 {}\n",
                    m.start, m.end, m.perms, m.name
                )
            })
            .collect::<String>()
            + "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0 [vsyscall]\n";
        let maps = parse_maps(&maps_text).unwrap();
        assert!(compare(&r, &maps, r.auxv_sysinfo_ehdr).is_empty());
        assert_eq!(compare(&r, &maps, Some(0x1000)).len(), 1);
        let mut moved = maps.clone();
        moved[2].start += 0x1000;
        assert_eq!(compare(&r, &moved, r.auxv_sysinfo_ehdr).len(), 1);
        let emulate: Vec<_> = maps
            .iter()
            .cloned()
            .map(|mut l| {
                if l.name == "[vsyscall]" {
                    l.perms = "r-xp".into();
                }
                l
            })
            .collect();
        assert_eq!(compare(&r, &emulate, r.auxv_sysinfo_ehdr).len(), 1);
        // Each mapping's permissions, presence in both and absence from both.
        for i in 0..r.mappings.len() {
            let mut perms = maps.clone();
            perms[i].perms = if perms[i].perms == "r--p" {
                "r-xp"
            } else {
                "r--p"
            }
            .into();
            let bad = compare(&r, &perms, r.auxv_sysinfo_ehdr);
            assert_eq!(bad.len(), 1, "{bad:?}");
            assert!(bad[0].contains("perms"), "{bad:?}");
            let mut gone = maps.clone();
            gone.remove(i);
            let bad = compare(&r, &gone, r.auxv_sysinfo_ehdr);
            assert_eq!(bad.len(), 1, "{bad:?}");
            assert!(bad[0].contains("in the report, not in maps"), "{bad:?}");
            let mut fewer = r.clone();
            fewer.mappings.remove(i);
            let bad = compare(&fewer, &maps, fewer.auxv_sysinfo_ehdr);
            assert_eq!(bad.len(), 1, "{bad:?}");
            assert!(bad[0].contains("in maps, not in the report"), "{bad:?}");
        }
    }

    #[test]
    fn offsets_and_errors() {
        assert_eq!(offset_ns("-1.500000000").unwrap(), -1_500_000_000);
        assert_eq!(offset_ns("86400.000000001").unwrap(), 86_400_000_000_001);
        assert!(Report::parse("pid 1\n").is_err());
        assert!(Report::parse("pid: 1\n").is_err());
    }

    #[test]
    fn auxv_lookup() {
        let mut a = Vec::new();
        for (k, v) in [(6u64, 4096u64), (33, 0x7fff_0000), (0, 0), (33, 1)] {
            a.extend_from_slice(&k.to_ne_bytes());
            a.extend_from_slice(&v.to_ne_bytes());
        }
        assert_eq!(auxv_entry(&a, 8, 33), Some(0x7fff_0000));
        assert_eq!(auxv_entry(&a, 8, 7), None);
        let mut b = Vec::new();
        for (k, v) in [(33u32, 0xf7f7_4000u32), (0, 0)] {
            b.extend_from_slice(&k.to_le_bytes());
            b.extend_from_slice(&v.to_le_bytes());
        }
        assert_eq!(auxv_entry(&b, 4, 33), Some(0xf7f7_4000));
    }

    #[test]
    fn attribution_lines() {
        let raw: BTreeMap<String, String> = [
            ("attribution", "on"),
            ("fallback.clock_gettime.PROCESS_CPUTIME_ID", "13"),
            ("direct.clock_gettime.MONOTONIC", "7"),
            ("direct.getrandom", "2"),
            ("vsyscall.calls", "5"),
            ("vsyscall.mode", "emulate"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let c = Calls::parse(&raw).unwrap();
        assert_eq!(c.on, Some(true));
        assert_eq!(
            c.fallback.get("clock_gettime.PROCESS_CPUTIME_ID"),
            Some(&13)
        );
        assert_eq!(c.direct.len(), 2);
        assert_eq!(c.vsyscall_calls, 5);
        assert_eq!(c.syscalls("clock_gettime"), 20);
        assert_eq!(c.syscalls("getrandom"), 2);
        assert_eq!(c.syscalls("clock_gettime64"), 0);
        let bad: BTreeMap<String, String> = [("direct.time".to_string(), "x".to_string())]
            .into_iter()
            .collect();
        assert!(Calls::parse(&bad).is_err());
        assert_eq!(Calls::parse(&BTreeMap::new()).unwrap().on, None);
    }

    #[test]
    fn fallbacks_and_clocksource_log() {
        let text = "# pid comm origin.syscall[.clock] calls reason\n\
                    12 a?b fallback.clock_gettime.MONOTONIC 30 clock_mode none (hpet)\n\
                    12 a?b direct.getrandom 1 bypass\n\
                    7 sh vsyscall.gettimeofday 2 vsyscall page (emulate)\n";
        let l = parse_fallbacks(text).unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(
            (
                l[0].pid,
                l[0].origin.as_str(),
                l[0].syscall.as_str(),
                l[0].clock.as_deref()
            ),
            (12, "fallback", "clock_gettime", Some("MONOTONIC"))
        );
        assert_eq!(
            (l[0].calls, l[0].reason.as_str()),
            (30, "clock_mode none (hpet)")
        );
        assert_eq!(
            (l[1].clock.as_deref(), l[1].reason.as_str()),
            (None, "bypass")
        );
        assert_eq!(l[2].reason, "vsyscall page (emulate)");
        assert!(parse_fallbacks("12 sh direct.time\n").is_err());
        assert!(parse_fallbacks("x sh direct.time 1 bypass\n").is_err());

        let log = "# seq monotonic_ns realtime_s clocksource rating vdso_clock_mode (2 events, the last 64 kept)\n\
                   0 1000 1700000000 tsc 300 tsc\n\
                   1 2000 1700000001 hpet 250 none\n";
        let e = parse_clocksource_log(log).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(
            (e[1].clocksource.as_str(), e[1].vdso_clock_mode.as_str()),
            ("hpet", "none")
        );
        assert_eq!((e[1].seq, e[1].monotonic_ns, e[1].rating), (1, 2000, 250));
        assert!(parse_clocksource_log("0 1 2 tsc 300\n").is_err());
    }
}
