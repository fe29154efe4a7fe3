// SPDX-License-Identifier: GPL-2.0
//! `vdso-doctor`'s diagnosis: is the vDSO working here, for each process, and if not, why?
//!
//! From the module: the clocksource and its `vdso_clock_mode` (`summary`), the vsyscall mode,
//! every process's time system calls with their reasons (`fallbacks`) and the clocksource log.
//! Without it, what `/sys` and `/proc` still tell: the clocksource (its vDSO readability then
//! only guessed from its name) and the vsyscall mode from `/proc/self/maps`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::report::{
    self, key_values, parse_clocksource_log, parse_fallbacks, ClocksourceEvent, FallbackLine,
};
use crate::vdso::{self, VdsoClockMode};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing, nothing wrong (e.g. the CPU-time clocks have no vDSO path).
    Note,
    /// Time reads that enter the kernel although the vDSO could serve them here.
    Problem,
}

/// One finding.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// How bad.
    pub severity: Severity,
    /// What, in one sentence.
    pub what: String,
}

/// What one process did that did not stay in userspace.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessCalls {
    /// TGID.
    pub pid: i32,
    /// `comm`.
    pub comm: String,
    /// Its `fallbacks` lines.
    pub calls: Vec<FallbackLine>,
}

/// The whole diagnosis.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnosis {
    /// The current clocksource.
    pub clocksource: String,
    /// The clocksources the kernel offers.
    pub available: Vec<String>,
    /// The clocksource's `vdso_clock_mode` (from the module), or None without it.
    pub vdso_clock_mode: Option<String>,
    /// Whether the vDSO can read the clocksource from userspace: the module's answer, or a
    /// guess from the clocksource's name without it (`vdso_readable_source` says which).
    pub vdso_readable: Option<bool>,
    /// `module` or `name`.
    pub vdso_readable_source: &'static str,
    /// `emulate`, `xonly` or `none`.
    pub vsyscall_mode: String,
    /// Whether attribution was on (None: the module is not loaded).
    pub attribution: Option<bool>,
    /// Processes that called into the vsyscall page.
    pub vsyscall_users: Vec<ProcessCalls>,
    /// Processes whose vDSO fell back to a system call.
    pub fallbacks: Vec<ProcessCalls>,
    /// Processes that made time system calls themselves, past the vDSO.
    pub direct: Vec<ProcessCalls>,
    /// The system calls a seccomp allowlist must still permit here, with why.
    pub seccomp_must_allow: BTreeMap<String, String>,
    /// The clocksource changes since the module was loaded.
    pub clocksource_log: Vec<ClocksourceEvent>,
    /// Everything worth saying, worst first.
    pub findings: Vec<Finding>,
    /// Whether the module was loaded (else the diagnosis is partial).
    pub module: bool,
}

impl Diagnosis {
    /// Whether some finding is a problem.
    pub fn has_problems(&self) -> bool {
        self.findings
            .iter()
            .any(|f| f.severity == Severity::Problem)
    }
}

const SYSFS_CS: &str = "/sys/devices/system/clocksource/clocksource0";

/// The `key: value` lines of a module file, as a map.
fn module_file(dir: &Path, name: &str) -> Result<BTreeMap<String, String>> {
    let path = dir.join(name);
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(key_values(&text)?
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

/// Groups `fallbacks` lines by process, keeping those `keep` selects.
fn by_process(lines: &[FallbackLine], keep: impl Fn(&FallbackLine) -> bool) -> Vec<ProcessCalls> {
    let mut out: BTreeMap<i32, ProcessCalls> = BTreeMap::new();
    for l in lines.iter().filter(|l| keep(l)) {
        out.entry(l.pid)
            .or_insert_with(|| ProcessCalls {
                pid: l.pid,
                comm: l.comm.clone(),
                calls: Vec::new(),
            })
            .calls
            .push(l.clone());
    }
    out.into_values().collect()
}

/// Diagnoses this machine, from the module's directory `dir` when the module is loaded, and for
/// process `only` alone if given.
pub fn diagnose(dir: &Path, only: Option<i32>) -> Result<Diagnosis> {
    let clocksource = vdso::current_clocksource()?;
    let available = fs::read_to_string(format!("{SYSFS_CS}/available_clocksource"))
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let module = report::module_loaded() && dir.join("summary").exists();
    let mut d = Diagnosis {
        clocksource: clocksource.clone(),
        available,
        vdso_clock_mode: None,
        vdso_readable: None,
        vdso_readable_source: "name",
        vsyscall_mode: String::new(),
        attribution: None,
        vsyscall_users: Vec::new(),
        fallbacks: Vec::new(),
        direct: Vec::new(),
        seccomp_must_allow: BTreeMap::new(),
        clocksource_log: Vec::new(),
        findings: Vec::new(),
        module,
    };
    if module {
        let summary = module_file(dir, "summary")?;
        d.vdso_clock_mode = summary.get("vdso_clock_mode").cloned();
        d.vdso_readable = summary.get("vdso_readable").map(|v| v == "yes");
        d.vdso_readable_source = "module";
        d.vsyscall_mode = module_file(dir, "vsyscall")?
            .get("mode")
            .cloned()
            .unwrap_or_default();
        d.attribution = module_file(dir, "attribution")?
            .get("state")
            .map(|s| s == "on");
        let path = dir.join("fallbacks");
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let lines: Vec<FallbackLine> = parse_fallbacks(&text)?
            .into_iter()
            .filter(|l| only.is_none_or(|p| p == l.pid))
            .collect();
        d.vsyscall_users = by_process(&lines, |l| l.origin == "vsyscall");
        d.fallbacks = by_process(&lines, |l| l.origin == "fallback");
        d.direct = by_process(&lines, |l| l.origin == "direct");
        let path = dir.join("clocksource_log");
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        d.clocksource_log = parse_clocksource_log(&text)?;
    } else {
        d.vdso_readable = match vdso::vdso_clock_mode(&clocksource) {
            VdsoClockMode::Capable => Some(true),
            VdsoClockMode::Fallback => Some(false),
            VdsoClockMode::Unknown => None,
        };
        d.vsyscall_mode = vdso::VsyscallMode::detect()
            .map(|m| match m {
                vdso::VsyscallMode::Emulate => "emulate".to_string(),
                vdso::VsyscallMode::Xonly => "xonly".to_string(),
                vdso::VsyscallMode::None => "none".to_string(),
                vdso::VsyscallMode::Other(p) => format!("unknown ({p})"),
            })
            .unwrap_or_else(|_| "unknown".to_string());
    }
    d.judge();
    Ok(d)
}

impl Diagnosis {
    fn judge(&mut self) {
        let cs = self.clocksource.clone();
        let mut f = Vec::new();
        match self.vdso_readable {
            Some(false) => {
                f.push(Finding {
                    severity: Severity::Problem,
                    what: format!(
                        "clocksource {cs} cannot be read from userspace (vdso_clock_mode {}): \
                         every precise clock_gettime and gettimeofday falls back to the system \
                         call; a vDSO-readable one is among [{}]",
                        self.vdso_clock_mode.as_deref().unwrap_or("none"),
                        self.available
                            .iter()
                            .filter(|c| vdso::vdso_clock_mode(c) == VdsoClockMode::Capable)
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(" ")
                    ),
                });
                self.seccomp_must_allow.insert(
                    "clock_gettime".into(),
                    format!("every precise clock falls back on {cs}"),
                );
                self.seccomp_must_allow
                    .insert("gettimeofday".into(), format!("it falls back on {cs}"));
            }
            None => f.push(Finding {
                severity: Severity::Note,
                what: format!("whether the vDSO can read clocksource {cs} is not known"),
            }),
            Some(true) => {}
        }
        self.seccomp_must_allow
            .entry("clock_gettime".into())
            .or_insert_with(|| {
                "CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID and the alarm and \
                 dynamic clocks have no vDSO path"
                    .into()
            });
        for p in &self.fallbacks {
            for l in &p.calls {
                // The clocksource named in the reason: the current one, or an earlier one.
                let earlier = l.reason.starts_with("clock_mode none")
                    && !l.reason.contains(&format!("({cs})"));
                let expected =
                    l.reason.starts_with("no vDSO path") || l.reason.starts_with("vgetrandom");
                let severity = if expected || earlier {
                    Severity::Note
                } else {
                    Severity::Problem
                };
                let when = if earlier {
                    " (an earlier clocksource)"
                } else {
                    ""
                };
                f.push(Finding {
                    severity,
                    what: format!(
                        "pid {} ({}): the vDSO fell back {} times for {}{}: {}{when}",
                        p.pid,
                        p.comm,
                        l.calls,
                        l.syscall,
                        l.clock
                            .as_deref()
                            .map(|c| format!(" {c}"))
                            .unwrap_or_default(),
                        l.reason
                    ),
                });
                self.seccomp_must_allow
                    .entry(l.syscall.clone())
                    .or_insert_with(|| format!("the vDSO fell back: {}", l.reason));
            }
        }
        for p in &self.direct {
            let n: u64 = p.calls.iter().map(|l| l.calls).sum();
            let names: BTreeSet<&str> = p.calls.iter().map(|l| l.syscall.as_str()).collect();
            f.push(Finding {
                severity: Severity::Note,
                what: format!(
                    "pid {} ({}): made {n} time system calls itself, past the vDSO ({})",
                    p.pid,
                    p.comm,
                    names.into_iter().collect::<Vec<_>>().join(", ")
                ),
            });
        }
        for p in &self.vsyscall_users {
            let n: u64 = p.calls.iter().map(|l| l.calls).sum();
            f.push(Finding {
                severity: Severity::Note,
                what: format!(
                    "pid {} ({}): called the vsyscall page {n} times: it breaks with \
                     vsyscall=none",
                    p.pid, p.comm
                ),
            });
        }
        if !self.module {
            f.push(Finding {
                severity: Severity::Note,
                what: "which processes fall back, and why, needs the module (insmod \
                       vdso_probe.ko): attribution counts their time system calls"
                    .into(),
            });
        } else if self.attribution == Some(false) {
            f.push(Finding {
                severity: Severity::Note,
                what: "attribution is off (echo on > /sys/kernel/debug/vdso/attribution): \
                       the counts stopped"
                    .into(),
            });
        }
        f.sort_by_key(|f| std::cmp::Reverse(f.severity));
        self.findings = f;
    }
}
