// SPDX-License-Identifier: GPL-2.0
//! Guest tests of the time page (`/dev/vdso_probe`).
//!
//! Each check compares the module with something it does not control: `/proc/self/smaps` and
//! `/proc/self/maps`, `clock_gettime`/`clock_getres`, the kernel's own mmap/mprotect/mremap
//! rules, `/sys/module/vdso_probe/refcnt`, the current clocksource in sysfs, and the ABI size
//! this program was compiled with.

use crate::{
    proc::{
        ensure_module, errno, errno_name, gettime, module_loaded, run, stable_count, wait_until,
        Forked, Reload, KO, MODULE,
    },
    Outcome, TestFn,
};
use anyhow::{bail, ensure, Context, Result};
use std::{
    fs::{self, File},
    hint::black_box,
    mem::offset_of,
    os::fd::AsRawFd,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};
use vdso_probe::{
    bench::{self, Bench, Config, CpuInfo, Entry},
    timepage::{
        self, vdso_probe_time_page, ClockMode, Stats, TimePage, ABI_SIZE, ABI_VERSION, DEVICE,
        MAGIC, PAGE_SIZE,
    },
    vdso::{self, Clock, LiveVdso},
};

/// The time-page tests, run after [`crate::tests::ALL`].
pub const TESTS: &[(&str, TestFn)] = &[
    ("timepage-fault-on-touch", fault_on_touch),
    ("timepage-abi", abi),
    (
        "timepage-precise-vs-clock_gettime",
        precise_vs_clock_gettime,
    ),
    ("timepage-coarse-lag", coarse_lag),
    ("timepage-monotonic-all-cpus", monotonic_all_cpus),
    ("timepage-fork-and-close", fork_and_close),
    ("timepage-rmmod-busy", rmmod_busy),
    ("timepage-timens", timens),
    ("timepage-timens-limit", timens_limit),
    ("timepage-bench", timepage_bench),
    ("bench-timepage-vs-vdso", bench_vs_vdso),
];

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Loads the module and waits for its device.
fn setup() -> Result<()> {
    ensure_module()?;
    wait_until(Duration::from_secs(2), DEVICE, || {
        Path::new(DEVICE).exists()
    })
    .with_context(|| format!("the module is loaded but {DEVICE} does not appear"))?;
    ensure!(
        Path::new(timepage::STATS_PATH).exists(),
        "no {}",
        timepage::STATS_PATH
    );
    Ok(())
}

fn open_ro() -> Result<File> {
    File::open(DEVICE).with_context(|| format!("open({DEVICE}, O_RDONLY)"))
}

/// A raw mapping of the device, unmapped on drop.
struct Map {
    addr: usize,
    len: usize,
}

impl Map {
    /// `mmap(NULL, len, prot, flags, fd, off)`; the errno on failure.
    fn new(
        file: &File,
        len: usize,
        prot: i32,
        flags: i32,
        off: i64,
    ) -> std::result::Result<Self, i32> {
        // SAFETY: a new mapping at an address of the kernel's choosing; it aliases nothing.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                flags,
                file.as_raw_fd(),
                off,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(errno());
        }
        Ok(Map {
            addr: addr as usize,
            len,
        })
    }

    /// The documented mapping: one page, `PROT_READ`, `MAP_SHARED`, offset 0.
    fn page(file: &File) -> Result<Self> {
        Map::new(file, PAGE_SIZE, libc::PROT_READ, libc::MAP_SHARED, 0)
            .map_err(|e| anyhow::anyhow!("mmap of {DEVICE}: {}", errno_name(e)))
    }

    /// Reads the page's `u32`/`u64` at `offset` (faulting the page in if needed).
    fn read<T: Copy>(&self, offset: usize) -> T {
        assert!(
            offset + std::mem::size_of::<T>() <= PAGE_SIZE
                && offset % std::mem::align_of::<T>() == 0
        );
        // SAFETY: `addr` is a live readable mapping of at least one page (PROT_READ, checked
        // by mmap) and the aligned field lies inside it (asserted). Volatile: the kernel
        // updates the page concurrently. A driver that failed the fault would raise SIGBUS,
        // a crash rather than undefined behaviour.
        unsafe { std::ptr::read_volatile((self.addr + offset) as *const T) }
    }

    /// Touches the page: reads the magic.
    fn touch(&self) -> u32 {
        self.read(offset_of!(vdso_probe_time_page, magic))
    }

    /// The page's `update_count` (a naturally aligned 8-byte load: never torn on x86_64).
    fn update_count(&self) -> u64 {
        self.read(offset_of!(vdso_probe_time_page, update_count))
    }
}

impl Drop for Map {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping; nothing refers into it past this point.
        unsafe { libc::munmap(self.addr as *mut libc::c_void, self.len) };
    }
}

/// True for a `/proc/<pid>/smaps` mapping header line (`start-end perms ...`).
fn is_maps_header(line: &str) -> bool {
    line.split_whitespace()
        .next()
        .is_some_and(|t| t.contains('-') && t.chars().all(|c| c.is_ascii_hexdigit() || c == '-'))
}

/// `Rss:` in kB of the mapping that starts at `addr`, from `/proc/self/smaps`.
fn smaps_rss_kb(addr: usize) -> Result<u64> {
    let head = format!("{addr:08x}-");
    let text = fs::read_to_string("/proc/self/smaps")?;
    let mut inside = false;
    for line in text.lines() {
        if is_maps_header(line) {
            inside = line.starts_with(&head);
        } else if inside {
            if let Some(v) = line.strip_prefix("Rss:") {
                let kb = v.trim().trim_end_matches("kB").trim();
                return kb.parse().with_context(|| format!("smaps Rss {v:?}"));
            }
        }
    }
    bail!("no mapping at {addr:#x} (with an Rss line) in /proc/self/smaps")
}

fn faults() -> Result<u64> {
    Ok(Stats::read()?.faults)
}

/// Skips unless the page's counter is readable here (TSC; arm64: the architected timer), so that
/// precise time is available.
fn require_tsc(page: &TimePage) -> Option<Outcome> {
    let s = page.snapshot();
    (!s.clock_mode().counter_readable()).then(|| {
        Outcome::Skip(format!(
            "clock mode {} (clocksource {}): the page gives no precise time",
            s.clock_mode(),
            s.clocksource()
        ))
    })
}

/// The accelerator the VM runs on: `VP_ACCEL` from our or init's environment, else CPUID
/// (`tcg-icount`: `scripts/vm --icount`, where a guest nanosecond is one instruction).
pub fn accelerator() -> String {
    if let Ok(v) = std::env::var("VP_ACCEL") {
        return v;
    }
    if let Ok(env) = fs::read("/proc/1/environ") {
        for var in env.split(|&b| b == 0) {
            if let Some(v) = var.strip_prefix(b"VP_ACCEL=") {
                return String::from_utf8_lossy(v).into_owned();
            }
        }
    }
    let cpu = CpuInfo::detect();
    match cpu.hypervisor_name() {
        Some(name) => format!("{name} (from CPUID)"),
        None => "none (bare metal, from CPUID)".to_string(),
    }
}

/// [`accelerator`], saying what a nanosecond is under `-icount`.
pub fn accelerator_stamp() -> String {
    match accelerator().as_str() {
        "tcg-icount" => "tcg-icount (1 ns = 1 instruction executed)".to_string(),
        other => other.to_string(),
    }
}

/// A benchmark's verdict against `limit` from the median run's `ratio` and the fastest runs'
/// `best`: under plain TCG the two can straddle the limit, a run's noise, which no verdict
/// should hide (under `-icount` they are exact and equal).
pub fn verdict(ratio: f64, best: f64, limit: f64) -> &'static str {
    match (ratio <= limit, best <= limit) {
        (true, true) => "met",
        (false, false) => "NOT met",
        _ => "within this run's noise: the -icount boot's count decides",
    }
}

fn emulated() -> bool {
    accelerator().starts_with("tcg") || CpuInfo::detect().emulated()
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

fn fault_on_touch() -> Result<Outcome> {
    setup()?;
    let file = open_ro()?;
    let before = Stats::read()?;
    let m = Map::page(&file)?;
    let f0 = faults()?;
    ensure!(
        f0 == before.faults,
        "mmap alone faulted: faults {} -> {f0}",
        before.faults
    );
    ensure!(
        smaps_rss_kb(m.addr)? == 0,
        "Rss {} kB before any access",
        smaps_rss_kb(m.addr)?
    );

    let magic = m.touch();
    ensure!(magic == MAGIC, "magic {magic:#x}");
    ensure!(
        faults()? == f0 + 1,
        "first touch: faults {f0} -> {}",
        faults()?
    );
    ensure!(
        smaps_rss_kb(m.addr)? == 4,
        "Rss {} kB after the first touch",
        smaps_rss_kb(m.addr)?
    );
    m.touch();
    ensure!(
        faults()? == f0 + 1,
        "second touch faulted again: {}",
        faults()?
    );

    // SAFETY: zapping the page table entries of our own mapping.
    let rc = unsafe { libc::madvise(m.addr as *mut libc::c_void, PAGE_SIZE, libc::MADV_DONTNEED) };
    if rc != 0 && errno() == libc::ENOSYS {
        // Nothing else zaps the PTEs of a live mapping (mprotect and mremap keep them).
        println!(
            "MADV_DONTNEED not checked: madvise(2) is not built into this kernel \
             (CONFIG_ADVISE_SYSCALLS=n)"
        );
    } else if rc != 0 {
        bail!("madvise(MADV_DONTNEED): {}", errno_name(errno()));
    } else {
        ensure!(
            smaps_rss_kb(m.addr)? == 0,
            "Rss {} kB after MADV_DONTNEED",
            smaps_rss_kb(m.addr)?
        );
        ensure!(m.touch() == MAGIC, "magic after MADV_DONTNEED");
        ensure!(
            faults()? == f0 + 2,
            "touch after MADV_DONTNEED: faults {} (want {})",
            faults()?,
            f0 + 2
        );
        ensure!(
            smaps_rss_kb(m.addr)? == 4,
            "Rss {} kB after the re-fault",
            smaps_rss_kb(m.addr)?
        );
        println!("MADV_DONTNEED: Rss 4 -> 0 kB, the next touch faulted once more");
    }
    let f0 = faults()?; // the base for the next mappings

    // Two more mappings: one fault each, on first touch only.
    let a = Map::page(&file)?;
    let b = Map::page(&file)?;
    let f1 = faults()?;
    ensure!(f1 == f0, "two new mmaps faulted: {f0} -> {f1}");
    ensure!(
        a.touch() == MAGIC && faults()? == f1 + 1,
        "mapping A: faults {}",
        faults()?
    );
    ensure!(
        b.touch() == MAGIC && faults()? == f1 + 2,
        "mapping B: faults {}",
        faults()?
    );
    a.touch();
    b.touch();
    ensure!(
        faults()? == f1 + 2,
        "re-touching A and B faulted: {}",
        faults()?
    );
    for (name, map) in [("A", &a), ("B", &b)] {
        ensure!(
            smaps_rss_kb(map.addr)? == 4,
            "mapping {name}: Rss {} kB",
            smaps_rss_kb(map.addr)?
        );
    }

    let during = Stats::read()?;
    ensure!(
        during.mappings == before.mappings + 3,
        "mappings {} -> {} with 3 live mappings",
        before.mappings,
        during.mappings
    );
    ensure!(
        during.mmaps == before.mmaps + 3,
        "mmaps {} -> {} after 3 mmaps",
        before.mmaps,
        during.mmaps
    );
    drop((m, a, b));
    let after = Stats::read()?;
    ensure!(
        after.mappings == before.mappings,
        "mappings {} after unmapping everything (was {})",
        after.mappings,
        before.mappings
    );
    println!(
        "faults {} -> {}, mmaps {} -> {}, mappings {} -> {} -> {}",
        before.faults,
        after.faults,
        before.mmaps,
        after.mmaps,
        before.mappings,
        during.mappings,
        after.mappings
    );
    Ok(Outcome::Pass)
}

fn abi() -> Result<Outcome> {
    setup()?;
    let page = TimePage::map(Path::new(DEVICE))?;
    let s = page.snapshot();
    let stats = Stats::read()?;
    let p = &s.page;
    ensure!(p.magic == MAGIC, "magic {:#x}, want {MAGIC:#x}", p.magic);
    ensure!(
        p.abi_version == ABI_VERSION,
        "abi_version {}, want {ABI_VERSION}",
        p.abi_version
    );
    ensure!(
        p.size as usize == ABI_SIZE,
        "page says size {}, this program's struct is {ABI_SIZE}",
        p.size
    );
    ensure!(
        stats.abi_size as usize == ABI_SIZE,
        "debugfs abi_size {}, this program's struct is {ABI_SIZE}",
        stats.abi_size
    );
    let current = vdso::current_clocksource()?;
    ensure!(
        s.clocksource() == current,
        "page clocksource {:?}, sysfs current_clocksource {current:?}",
        s.clocksource()
    );
    ensure!(
        stats.clocksource == current,
        "debugfs clocksource {:?}, sysfs {current:?}",
        stats.clocksource
    );
    ensure!(
        stats.clock_mode == s.clock_mode().to_string(),
        "debugfs clock_mode {}, page {}",
        stats.clock_mode,
        s.clock_mode()
    );
    // The kernel defines tsc's vdso_clock_mode as TSC, arm64's arch_sys_counter's as ARCHTIMER
    // (ARCHTIMER_NOCOMPAT with an erratum that keeps AArch32 off the counter).
    ensure!(
        current != "tsc" || s.clock_mode() == ClockMode::Tsc,
        "tsc with clock mode {}",
        s.clock_mode()
    );
    ensure!(
        current != "arch_sys_counter"
            || matches!(
                s.clock_mode(),
                ClockMode::ArchTimer | ClockMode::ArchTimerNoCompat
            ),
        "arch_sys_counter with clock mode {}",
        s.clock_mode()
    );
    // Any clocksource: the page says the vDSO can read it exactly when the vDSO makes no
    // clock_gettime system call (counted by ptrace), whatever the clocksource's name. The
    // clocksource watchdog may switch clocksource meanwhile: then measure again.
    let (mode, calls) = stable_count(|| page.snapshot().clock_mode())?;
    ensure!(
        (mode != ClockMode::None) == (calls.vdso == 0),
        "clocksource {current}, page clock mode {mode}, but the vDSO made {} clock_gettime \
         system calls for 50 calls (ptrace)",
        calls.vdso
    );
    println!(
        "magic {:#x} version {} size {} (ours {ABI_SIZE}, module {}), clocksource {current}, clock mode {}, vDSO syscalls {} for 50 calls",
        p.magic, p.abi_version, p.size, stats.abi_size, s.clock_mode(), calls.vdso
    );
    Ok(Outcome::Pass)
}

fn precise_vs_clock_gettime() -> Result<Outcome> {
    setup()?;
    let page = TimePage::open()?;
    if let Some(skip) = require_tsc(&page) {
        return Ok(skip);
    }
    const READS: usize = 100_000;
    // None: the page is computed from the timekeeper's own snapshot with the vDSO's arithmetic,
    // and the reader's TSC read is ordered as the vDSO's, so each value lies inside the bracket
    // of the clock_gettime() calls around it (0 ns outside, measured on both kernels).
    const SLACK: i128 = 0;
    let mut max_outside = [0i128; 2]; // beyond the [before, after] bracket
    let mut max_from_mid = [0i128; 2];
    let clocks = [
        (Clock::Monotonic, libc::CLOCK_MONOTONIC),
        (Clock::Realtime, libc::CLOCK_REALTIME),
    ];
    for i in 0..READS {
        for (k, &(clock, id)) in clocks.iter().enumerate() {
            let before = gettime(id);
            let v = page
                .read_precise(clock)
                .context("precise time vanished (clock mode changed?)")?;
            let after = gettime(id);
            ensure!(
                v >= before - SLACK && v <= after + SLACK,
                "read {i}: {clock}: page {v} outside [{before}, {after}] \
                 (page - before {} ns, after - page {} ns)",
                v - before,
                after - v
            );
            max_outside[k] = max_outside[k].max(before - v).max(v - after);
            max_from_mid[k] = max_from_mid[k].max((v - (before + after) / 2).abs());
        }
    }
    for (k, (clock, _)) in clocks.iter().enumerate() {
        println!(
            "{clock}: {READS} reads, max deviation outside the clock_gettime bracket {} ns, \
             max distance from the bracket's middle {} ns",
            max_outside[k].max(0),
            max_from_mid[k]
        );
    }
    Ok(Outcome::Pass)
}

/// The time page in a time namespace, against `clock_gettime` there: the namespace's offsets in
/// the page equal `/proc/self/timens_offsets`, coarse MONOTONIC equals
/// `clock_gettime(CLOCK_MONOTONIC_COARSE)` of the same update (no page update between them), and precise MONOTONIC, BOOTTIME
/// and REALTIME lie inside the bracket of two `clock_gettime` calls; a host process reading at
/// the same time gets the host's values.
fn timens() -> Result<Outcome> {
    setup()?;
    const MONO_S: i64 = 86_400;
    const BOOT_S: i64 = 2 * 86_400;
    crate::proc::new_time_namespace(&format!("monotonic {MONO_S} 0\nboottime {BOOT_S} 0\n"))?;
    /// Coarse MONOTONIC equal to the kernel's whenever no update of the page came between the
    /// two reads (and never ahead of it), precise clocks inside their brackets; the page's
    /// timens offsets.
    fn check(page: &TimePage) -> Result<String> {
        const READS: u64 = 20_000;
        let mut res = vdso::zero_timespec();
        // SAFETY: `res` is a valid, exclusively borrowed timespec.
        if unsafe { libc::clock_getres(libc::CLOCK_MONOTONIC_COARSE, &mut res) } != 0 {
            bail!(
                "clock_getres(CLOCK_MONOTONIC_COARSE): {}",
                std::io::Error::last_os_error()
            );
        }
        let tick = vdso::timespec_ns(&res);
        let (mut same, mut differ) = (0u64, 0u64);
        for i in 0..READS {
            let u0 = page.update_count();
            let c = page.read_coarse(Clock::Monotonic).context("no coarse")?;
            let k = gettime(libc::CLOCK_MONOTONIC_COARSE);
            let u1 = page.update_count();
            ensure!(
                c <= k,
                "read {i}: coarse MONOTONIC {c} ahead of MONOTONIC_COARSE {k}"
            );
            // The kernel updates its own vDSO data, then the module's notifier the page (the
            // host's, then each namespace's): a tick between the two reads shows in
            // update_count, or, while the notifier is still writing, as a page one update
            // behind: counted and bounded below, each by at most two ticks.
            if u0 == u1 {
                same += 1;
                if c != k {
                    differ += 1;
                    ensure!(
                        k - c <= 2 * tick,
                        "read {i}: coarse MONOTONIC {c} is {} ns behind MONOTONIC_COARSE {k}, \
                         more than two ticks ({tick} ns)",
                        k - c
                    );
                }
            }
            for (clock, id) in [
                (Clock::Monotonic, libc::CLOCK_MONOTONIC),
                (Clock::Boottime, libc::CLOCK_BOOTTIME),
                (Clock::Realtime, libc::CLOCK_REALTIME),
            ] {
                let before = gettime(id);
                let Some(v) = page.read_precise(clock) else {
                    continue; // not on tsc: the coarse check is the test
                };
                let after = gettime(id);
                ensure!(
                    before <= v && v <= after,
                    "read {i}: {clock} {v} outside [{before}, {after}]"
                );
            }
        }
        ensure!(
            same * 2 >= READS && differ * 10 <= same,
            "coarse MONOTONIC differed from MONOTONIC_COARSE in {differ} of the {same} reads \
             with no page update between them ({READS} reads)"
        );
        let s = page.snapshot();
        Ok(format!(
            "{} {} {differ}/{same}",
            s.page.timens_monotonic_ns, s.page.timens_boottime_ns
        ))
    }
    // The child is the first task of the namespace.
    let child = Forked::spawn(|| {
        let offsets = fs::read_to_string("/proc/self/timens_offsets").unwrap_or_default();
        match TimePage::open().and_then(|p| check(&p)) {
            Ok(s) => format!("ok {s} | {}", offsets.replace('\n', ";")),
            Err(e) => format!("{e:#}"),
        }
    })?;
    // This process is still in the root namespace (unshare changed its children's).
    let host = check(&TimePage::open()?).context("the host process")?;
    let line = child.line.clone();
    drop(child);
    println!("namespace: {line}; host: {host}");
    let fields: Vec<&str> = line.split_whitespace().collect();
    ensure!(fields.first() == Some(&"ok"), "in the namespace: {line}");
    let ns = |s: i64| (s * 1_000_000_000).to_string();
    ensure!(
        fields[1] == ns(MONO_S) && fields[2] == ns(BOOT_S),
        "the namespace's page has offsets {} {}, want {} {} (timens_offsets: {line})",
        fields[1],
        fields[2],
        ns(MONO_S),
        ns(BOOT_S)
    );
    // The page's offsets against the namespace's own file, read in the namespace.
    let file = line.split_once(" | ").map(|(_, f)| f).unwrap_or_default();
    let from_file = |name: &str| -> Option<String> {
        let l = file
            .split(';')
            .find(|l| l.split_whitespace().next() == Some(name))?;
        let w: Vec<i64> = l
            .split_whitespace()
            .skip(1)
            .filter_map(|v| v.parse().ok())
            .collect();
        Some((w.first()? * 1_000_000_000 + w.get(1)?).to_string())
    };
    ensure!(
        from_file("monotonic").as_deref() == Some(fields[1])
            && from_file("boottime").as_deref() == Some(fields[2]),
        "the page's offsets {} {} differ from /proc/self/timens_offsets ({file})",
        fields[1],
        fields[2]
    );
    ensure!(
        host.starts_with("0 0 "),
        "the host's page has offsets: {host}"
    );
    Ok(Outcome::Pass)
}

/// A process that enters a time namespace of its own (monotonic offset `secs`), maps and
/// touches the time page, says `mapped` and holds the mapping until released; a fault the
/// module refuses kills it with SIGBUS.
fn timens_holder(secs: u64) -> Result<Forked> {
    Forked::talk(move |link| {
        let enter = || -> Result<TimePage> {
            crate::proc::enter_new_time_namespace(&format!("monotonic {secs} 0\n"))?;
            TimePage::open() // touches the page
        };
        match enter() {
            Ok(_page) => {
                link.say("mapped");
                while link.hear().is_some() {}
                0
            }
            Err(e) => {
                link.say(&format!("{e:#}"));
                1
            }
        }
    })
}

/// At most 16 time namespaces have a page at a time: a 17th namespace's fault gets SIGBUS,
/// and once one of the 16 is no longer mapped its page is reused for the next namespace.
fn timens_limit() -> Result<Outcome> {
    setup()?;
    const MAX: u64 = 16;
    let mut holders = Vec::new();
    for i in 0..MAX {
        let mut h = timens_holder(1000 + i)?;
        let line = h.recv()?;
        ensure!(line == "mapped", "namespace {i}: {line}");
        holders.push(h);
    }
    let mut extra = timens_holder(1000 + MAX)?;
    match extra.recv() {
        Ok(line) => bail!("a 17th namespace's process touched the page: {line}"),
        Err(e) => ensure!(
            format!("{e:#}").contains("SIGBUS"),
            "the 17th namespace's process did not get SIGBUS: {e:#}"
        ),
    }
    if let Some(h) = holders.pop() {
        h.finish()?;
    }
    let mut again = timens_holder(2000)?;
    let line = again.recv()?;
    ensure!(
        line == "mapped",
        "with one namespace's page unmapped, a new namespace still failed: {line}"
    );
    println!("16 namespaces mapped, the 17th got SIGBUS, one released, the next mapped");
    Ok(Outcome::Pass)
}

fn coarse_lag() -> Result<Outcome> {
    setup()?;
    let page = TimePage::open()?;
    let mut res = vdso::zero_timespec();
    // SAFETY: `res` is a valid, exclusively borrowed timespec.
    if unsafe { libc::clock_getres(libc::CLOCK_MONOTONIC_COARSE, &mut res) } != 0 {
        bail!(
            "clock_getres(CLOCK_MONOTONIC_COARSE): {}",
            errno_name(errno())
        );
    }
    let tick = vdso::timespec_ns(&res);
    let slack: i128 = 1_000_000;
    let (mut reads, mut distinct, mut last, mut behind) = (0u64, 0u64, None, 0u64);
    let (mut max_lag, mut max_lag_kernel, mut max_lag_after) = (0i128, 0i128, 0i128);
    let t0 = Instant::now();
    // At least 100,000 reads and 250 ms: dozens of ticks. Per sample, in this order: the
    // precise clock, the page, the kernel's own coarse clock, the precise clock again. The
    // kernel updates its vDSO data before it calls the module's notifier, so neither later
    // read may be behind the page. The lag is taken against the first read: a preemption
    // after the page read cannot inflate it.
    while reads < 100_000 || t0.elapsed() < Duration::from_millis(250) {
        let before = gettime(libc::CLOCK_MONOTONIC);
        let c = page
            .read_coarse(Clock::Monotonic)
            .context("no coarse MONOTONIC")?;
        let k = gettime(libc::CLOCK_MONOTONIC_COARSE);
        let after = gettime(libc::CLOCK_MONOTONIC);
        ensure!(
            c <= after,
            "coarse MONOTONIC {c} is ahead of clock_gettime(MONOTONIC) {after} by {} ns",
            c - after
        );
        ensure!(
            c <= k,
            "page coarse MONOTONIC {c} is ahead of clock_gettime(MONOTONIC_COARSE) {k} by {} ns",
            c - k
        );
        if c != k {
            behind += 1; // an update landed between the two reads
        }
        max_lag = max_lag.max(before - c);
        max_lag_kernel = max_lag_kernel.max(before - k);
        max_lag_after = max_lag_after.max(after - c);
        if last != Some(c) {
            distinct += 1;
            last = Some(c);
        }
        reads += 1;
    }
    let elapsed = t0.elapsed();
    // Where ticks themselves come late (an emulator on a busy host), the kernel's own coarse
    // clock lags by more than a tick too; the page may lag as much as it does.
    let excess = (max_lag_kernel - tick).max(0);
    let limit = tick + slack + excess;
    println!(
        "{reads} reads over {elapsed:?}: max lag {max_lag} ns (CLOCK_MONOTONIC_COARSE's own: \
         {max_lag_kernel} ns; behind the following clock_gettime: {max_lag_after} ns), \
         tick {tick} ns, limit {limit} ns (tick + {slack} slack + {excess} by which the \
         kernel's coarse clock exceeded a tick), {distinct} distinct coarse values, page \
         behind CLOCK_MONOTONIC_COARSE in {behind} reads, accelerator {}",
        accelerator()
    );
    ensure!(
        max_lag <= limit,
        "coarse MONOTONIC lagged clock_gettime by {max_lag} ns > {limit} ns"
    );
    ensure!(
        behind * 100 <= reads,
        "the page's coarse value differed from CLOCK_MONOTONIC_COARSE in {behind} of {reads} reads"
    );
    ensure!(
        distinct >= 2,
        "the coarse value never changed in {elapsed:?}"
    );
    Ok(Outcome::Pass)
}

fn monotonic_all_cpus() -> Result<Outcome> {
    setup()?;
    let page = TimePage::open()?;
    if let Some(skip) = require_tsc(&page) {
        return Ok(skip);
    }
    const READS: u64 = 200_000;
    let cpus = crate::proc::allowed_cpus()?;
    let u0 = Stats::read()?.updates;
    let page = &page;
    // Across CPUs: the largest value any thread has read so far. A thread takes it before its
    // own read, so a value another CPU read (and published) earlier must not be ahead of its.
    use std::sync::atomic::{AtomicI64, Ordering};
    let latest = AtomicI64::new(i64::MIN);
    let latest = &latest;
    let results: Vec<Result<(usize, u64, Duration, u64)>> = std::thread::scope(|s| {
        let handles: Vec<_> = cpus
            .iter()
            .map(|&cpu| {
                s.spawn(move || -> Result<(usize, u64, Duration, u64)> {
                    bench::pin_to_cpu(cpu)?;
                    ensure!(
                        bench::current_cpu() == Some(cpu),
                        "pinned to CPU {cpu} but running on {:?}",
                        bench::current_cpu()
                    );
                    let first_update = page.update_count();
                    let t0 = Instant::now();
                    let mut prev = page
                        .read_precise(Clock::Monotonic)
                        .context("no precise time")?;
                    let mut n = 0u64;
                    // The reads span several ticks even where they are fast.
                    while n < READS || t0.elapsed() < Duration::from_millis(100) {
                        let seen = i128::from(latest.load(Ordering::Acquire));
                        let v = page
                            .read_precise(Clock::Monotonic)
                            .context("no precise time")?;
                        ensure!(
                            v >= prev,
                            "CPU {cpu}: read {n}: MONOTONIC went back by {} ns ({prev} -> {v})",
                            prev - v
                        );
                        ensure!(
                            v >= seen,
                            "CPU {cpu}: read {n}: MONOTONIC {v} behind {seen}, read before on \
                             another CPU, by {} ns",
                            seen - v
                        );
                        latest.fetch_max(i64::try_from(v).unwrap_or(i64::MAX), Ordering::Release);
                        prev = v;
                        n += 1;
                    }
                    Ok((cpu, n, t0.elapsed(), page.update_count() - first_update))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("reader thread panicked")))
            })
            .collect()
    });
    let u1 = Stats::read()?.updates;
    for r in results {
        let (cpu, n, t, updates) = r?;
        println!("CPU {cpu}: {n} precise MONOTONIC reads in {t:?}, never behind its own last read nor any other CPU's earlier one, {updates} page updates seen");
    }
    ensure!(
        u1 > u0,
        "debugfs updates did not increase during the run ({u0} -> {u1})"
    );
    println!("{} CPUs, updates {u0} -> {u1}", cpus.len());
    Ok(Outcome::Pass)
}

fn fork_and_close() -> Result<Outcome> {
    setup()?;
    let file = open_ro()?;
    let m = Map::page(&file)?;
    drop(file); // close(fd): the VMA keeps its own reference to the file
    ensure!(m.touch() == MAGIC, "magic {:#x} after close(fd)", m.touch());
    let maps = vdso_probe::report::parse_maps(&fs::read_to_string("/proc/self/maps")?)?;
    let entry = maps
        .iter()
        .find(|e| e.start == m.addr as u64)
        .context("the mapping is not in /proc/self/maps")?;
    ensure!(
        entry.name == DEVICE && entry.perms == "r--s",
        "/proc/self/maps: {entry:?}, want {DEVICE} r--s"
    );
    println!(
        "maps: {:#x}-{:#x} {} {}",
        entry.start, entry.end, entry.perms, entry.name
    );

    let f0 = faults()?;
    let u_parent = m.update_count();
    let addr = m.addr;
    let child = Forked::spawn(move || {
        let page = Map {
            addr,
            len: PAGE_SIZE,
        };
        let magic = page.touch();
        let u0 = page.update_count();
        let t0 = Instant::now();
        let mut u1 = u0;
        while u1 == u0 && t0.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(1));
            u1 = page.update_count();
        }
        std::mem::forget(page); // the mapping stays until the child exits
        format!("{magic:x} {u0} {u1}")
    })?;
    let fields: Vec<u64> = child
        .line
        .split_whitespace()
        .enumerate()
        .map(|(i, s)| {
            if i == 0 {
                u64::from_str_radix(s, 16)
            } else {
                s.parse()
            }
        })
        .collect::<std::result::Result<_, _>>()
        .with_context(|| format!("child said {:?}", child.line))?;
    let [magic, u0, u1] = fields[..] else {
        bail!("child said {:?}", child.line);
    };
    ensure!(magic == u64::from(MAGIC), "child read magic {magic:#x}");
    ensure!(
        u0 >= u_parent,
        "child's update_count {u0} < parent's earlier {u_parent}"
    );
    ensure!(
        u1 > u0,
        "child saw no update in 2 s ({u0}): not the live page"
    );
    let f1 = faults()?;
    ensure!(
        f1 == f0,
        "the child faulted ({f0} -> {f1}): the page tables were not copied at fork"
    );
    child.finish()?;
    ensure!(
        m.touch() == MAGIC,
        "parent lost the page after the child exited"
    );
    println!("child read magic {magic:#x}, update_count {u0} -> {u1}, no fault (faults {f0})");
    Ok(Outcome::Pass)
}

fn refcnt() -> Result<i64> {
    let path = format!("/sys/module/{MODULE}/refcnt");
    let v = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    v.trim().parse().with_context(|| format!("{path}: {v:?}"))
}

fn rmmod_busy() -> Result<Outcome> {
    setup()?;
    let _reload = Reload;
    let r0 = refcnt()?;
    let file = open_ro()?;
    let m = Map::page(&file)?;
    drop(file);
    ensure!(m.touch() == MAGIC, "magic");
    let r1 = refcnt()?;
    ensure!(
        r1 > r0,
        "refcnt {r0} -> {r1}: the mapping does not pin the module"
    );

    let out = Command::new("rmmod")
        .arg(MODULE)
        .output()
        .context("running rmmod")?;
    ensure!(
        !out.status.success(),
        "rmmod {MODULE} succeeded with a live mapping"
    );
    println!(
        "rmmod with a live mapping: {} ({})",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    // SAFETY: delete_module(2) with a NUL-terminated name; O_NONBLOCK as rmmod passes it.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_delete_module,
            c"vdso_probe".as_ptr(),
            libc::O_NONBLOCK,
        )
    };
    let e = errno();
    ensure!(rc == -1, "delete_module succeeded with a live mapping");
    // kernel/module/main.c: try_stop_module() answers -EWOULDBLOCK for a module whose
    // refcount is not zero (EBUSY is for a module that is not live or cannot be unloaded).
    ensure!(
        e == libc::EWOULDBLOCK,
        "delete_module: {}, want EWOULDBLOCK (module in use)",
        errno_name(e)
    );
    println!(
        "delete_module(O_NONBLOCK) with a live mapping: {}",
        errno_name(e)
    );
    ensure!(
        m.touch() == MAGIC,
        "the page went away with the failed rmmod"
    );
    ensure!(Path::new(DEVICE).exists(), "{DEVICE} vanished");

    drop(m);
    let r2 = refcnt()?;
    ensure!(r2 == r0, "refcnt {r2} after munmap + close (was {r0})");
    run("rmmod", &[MODULE])?;
    ensure!(!module_loaded(), "module still loaded");
    ensure!(!Path::new(DEVICE).exists(), "{DEVICE} left behind by rmmod");
    run("insmod", &[KO])?;
    setup()?;
    println!("refcnt {r0} -> {r1} with the mapping -> {r2}; rmmod then insmod ok");
    Ok(Outcome::Pass)
}

/// The time page against the vDSO, side by side in one boot (`make bench`): precise MONOTONIC
/// against `clock_gettime(CLOCK_MONOTONIC)` through the vDSO, coarse MONOTONIC against the
/// vDSO's `CLOCK_MONOTONIC_COARSE`, alternated 12 times, pinned to CPU 0.
fn bench_vs_vdso() -> Result<Outcome> {
    use vdso_probe::bench::{run_medians, Row};
    if let Some(skip) = crate::proc::unless_bench_boot() {
        return Ok(skip);
    }
    setup()?;
    vdso_probe::bench::pin_to_cpu(0)?;
    let page = TimePage::open()?;
    if let Some(skip) = require_tsc(&page) {
        return Ok(skip);
    }
    let f = LiveVdso::locate()?.clock_gettime()?;
    let bench = Bench::new(Config {
        batches: 40,
        batch_size: 200,
    })?;
    let vdso_call = |clock: libc::clockid_t| {
        let mut ts = vdso::zero_timespec();
        black_box(f.call(black_box(clock), black_box(&mut ts)));
    };
    const ALTERNATIONS: usize = 12;
    let mut runs: [Vec<Row>; 4] = Default::default();
    for _ in 0..ALTERNATIONS {
        runs[0].push(bench.measure("time page precise", || {
            black_box(page.read_precise(black_box(Clock::Monotonic)));
        })?);
        runs[1].push(bench.measure("vdso MONOTONIC", || vdso_call(libc::CLOCK_MONOTONIC))?);
        runs[2].push(bench.measure("time page coarse", || {
            black_box(page.read_coarse(black_box(Clock::MonotonicCoarse)));
        })?);
        runs[3].push(bench.measure("vdso MONOTONIC_COARSE", || {
            vdso_call(libc::CLOCK_MONOTONIC_COARSE)
        })?);
    }
    println!(
        "bench: time page vs vDSO, accelerator {}, clocksource {}, pinned to CPU 0, {} batches \
         x {} calls, {ALTERNATIONS} alternations; per row the median and range of the runs' \
         medians",
        accelerator_stamp(),
        vdso::current_clocksource().unwrap_or_default(),
        bench.config().batches,
        bench.config().batch_size
    );
    for (page_row, vdso_row, name, limit) in [
        (0, 1, "precise MONOTONIC", 1.05),
        (2, 3, "coarse MONOTONIC", 1.0),
    ] {
        let (p, v) = (run_medians(&runs[page_row]), run_medians(&runs[vdso_row]));
        let (ratio, best) = (p.1 / v.1, p.0 / v.0);
        println!(
            "bench: {name:<18} page {:.1} ns (runs {:.1}-{:.1}), vDSO {:.1} ns (runs \
             {:.1}-{:.1}): ratio {ratio:.3}, fastest runs {best:.3} (target <= {limit}: {})",
            p.1,
            p.0,
            p.2,
            v.1,
            v.0,
            v.2,
            verdict(ratio, best, limit)
        );
    }
    Ok(Outcome::Pass)
}

fn timepage_bench() -> Result<Outcome> {
    setup()?;
    let config = Config {
        batches: 100,
        batch_size: 500,
    };
    let bench = Bench::new(config)?;
    let mut rows = timepage::bench_rows(&bench);

    let mono = libc::CLOCK_MONOTONIC;
    let name = "clock_gettime MONOTONIC vdso";
    rows.push(match LiveVdso::locate().and_then(|l| l.clock_gettime()) {
        Ok(f) => bench.entry(name, || {
            let mut ts = vdso::zero_timespec();
            black_box(f.call(black_box(mono), black_box(&mut ts)));
        }),
        Err(e) => Entry::Skipped {
            name: name.to_string(),
            reason: format!("{e:#}"),
        },
    });
    rows.push(bench.entry("clock_gettime MONOTONIC syscall", || {
        let mut ts = vdso::zero_timespec();
        black_box(vdso::raw_syscall_clock_gettime(
            black_box(mono),
            black_box(&mut ts),
        ));
    }));
    // Measured on vsyscall=emulate, skipped with the reason elsewhere (as vdso-bench does).
    rows.push(bench.vsyscall_row(false));

    let page = TimePage::open()?;
    let s = page.snapshot();
    let cpu = CpuInfo::detect();
    println!(
        "bench: clocksource {}, page clock mode {}, accelerator {}, hypervisor {}{}",
        vdso::current_clocksource().unwrap_or_else(|e| format!("unknown ({e:#})")),
        s.clock_mode(),
        accelerator(),
        cpu.hypervisor_name().unwrap_or("none"),
        if emulated() {
            " (cycle counts are emulated)"
        } else {
            ""
        }
    );
    println!(
        "bench: {} batches x {} calls, per call; cycles are {} ticks",
        config.batches,
        config.batch_size,
        if cfg!(target_arch = "aarch64") {
            "cntvct_el0"
        } else {
            "TSC"
        }
    );
    for line in bench::render_rows(&rows).lines() {
        println!("bench: {line}");
    }
    let measured = |n: &str| {
        rows.iter()
            .any(|r| matches!(r, Entry::Measured(row) if row.name == n))
    };
    ensure!(
        measured(timepage::BENCH_COARSE),
        "the coarse page row was not measured"
    );
    ensure!(
        measured(timepage::BENCH_PRECISE) || !s.clock_mode().counter_readable(),
        "the precise page row was not measured with clock mode tsc"
    );
    Ok(Outcome::Pass)
}
