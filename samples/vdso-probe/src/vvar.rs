// SPDX-License-Identifier: GPL-2.0
//! A layout-driven decoder of this process's own `[vvar]`: the kernel's vDSO data pages
//! (`include/vdso/datapage.h`), read with the vDSO's own rules.
//!
//! Nothing here knows an offset: [`Layout`] is parsed from the module's
//! `/sys/kernel/debug/vdso/layout` ([`LAYOUT_PATH`]), the running kernel's `struct
//! vdso_time_data`, `struct vdso_clock`, `struct vdso_timestamp`, `struct timens_offset` and
//! `struct vdso_rng_data` as its own headers compiled them, with `enum vdso_pages` and `enum
//! vdso_clock_mode`. Parsing checks every field this decoder reads: present, of the size of
//! the kernel's type (`seq` a `u32`, `clock_mode` an `s32`, ...), with the element counts the
//! constants say (`clock_data[CS_BASES]`, `basetime[VDSO_BASES]`), inside its struct; a layout
//! that fails any of that is an error naming the field, never a guess. What this module does
//! know is the ABI: the clock ids (`include/uapi/linux/time.h`), `VDSO_BASE_AUX` (0) and which
//! `basetime[]` entries the kernel writes (`kernel/time/vsyscall.c`).
//!
//! * **Decoding** ([`VvarSnapshot::decode`]) works on byte slices, so that synthetic pages can
//!   be decoded; every `vdso_clock` (the `clock_data[]`, HRES_COARSE and RAW, and the
//!   `aux_clock_data[]`) with its `basetime[]` or, on a time-namespace page, its `offset[]`;
//!   `tz_*`, `hrtimer_res`; the rng page's `generation` and `is_ready`.
//! * **Reading** ([`Vvar`]): `[vvar]` is found in `/proc/self/maps` and read in place, with
//!   volatile reads (a local read: remote reads of `[vvar]`, `/proc/PID/mem`, fault by design,
//!   `vvar_fault` in `lib/vdso/datastore.c`). Only pages that exist are touched: the time slot
//!   (`vdso_pages.time`) always; the timens slot only when the time slot is a time-namespace
//!   page (its `clock_data[HRES_COARSE].clock_mode` is `clock_mode.timens`), which is when the
//!   kernel maps the real data there (the two are swapped for a task in a time namespace); the
//!   rng slot only when the vDSO exports `__vdso_getrandom`. A consistent copy follows the
//!   vDSO's sequence rule (`vdso_read_begin`/`vdso_read_retry`): acquire-load `seq`, retry while
//!   it is odd, copy, acquire fence, retry if it changed; here for every `vdso_clock` of the
//!   page at once (the aux clocks have their own `seq`), with the TSC read inside the same
//!   section when the clock mode is `tsc`, as the vDSO reads its counter between the two `seq`
//!   reads.
//! * **The arithmetic** ([`calc_ns`]) is the vDSO's: `lib/vdso/gettimeofday.c`'s generic
//!   `vdso_calc_ns` and the x86 one (`arch/x86/include/asm/vdso/gettimeofday.h`), which x86
//!   builds instead ([`CalcNs`]); the time-namespace offsets are added as `do_hres_timens` and
//!   `do_coarse_timens` add them ([`VvarSnapshot::precise_at`], [`VvarSnapshot::coarse`]).
//! * **The check** ([`compare_with_vdso`]): the coarse clocks decoded equal
//!   `__vdso_clock_gettime` at the same `seq`, precise MONOTONIC lies between two calls.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::ptr;
use std::sync::atomic::{fence, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use serde::Serialize;

use crate::cli::{problem, quote};
use crate::report::DEBUGFS_DIR;
use crate::vdso::{timespec_ns, Clock, VdsoClockGettime};

/// The module's layout file.
pub const LAYOUT_PATH: &str = "/sys/kernel/debug/vdso/layout";

/// `VDSO_BASE_AUX` (`include/vdso/datapage.h`): the `basetime[]` entry of an auxiliary clock.
pub const VDSO_BASE_AUX: usize = 0;

/// How long [`Vvar::snapshot`] retries a page whose sequence count stays odd or keeps changing
/// before it gives up (a kernel update takes microseconds).
pub const SETTLE_LIMIT: Duration = Duration::from_secs(1);

/// The name of clock id `id` without `CLOCK_` (`include/uapi/linux/time.h`), `CLOCK_N` for
/// an id that has none.
pub fn clock_name(id: usize) -> String {
    const NAMES: [&str; 12] = [
        "REALTIME",
        "MONOTONIC",
        "PROCESS_CPUTIME_ID",
        "THREAD_CPUTIME_ID",
        "MONOTONIC_RAW",
        "REALTIME_COARSE",
        "MONOTONIC_COARSE",
        "BOOTTIME",
        "REALTIME_ALARM",
        "BOOTTIME_ALARM",
        "SGI_CYCLE",
        "TAI",
    ];
    NAMES
        .get(id)
        .map_or_else(|| format!("CLOCK_{id}"), |n| n.to_string())
}

fn clock_index(clock: Clock) -> usize {
    // The clock ids are small non-negative constants.
    usize::try_from(clock.id()).unwrap_or(usize::MAX)
}

/// `sec.nnnnnnnnn` of a nanosecond count (negative: `-sec.nnnnnnnnn`).
pub fn fmt_ns(ns: i128) -> String {
    let sign = if ns < 0 { "-" } else { "" };
    let a = ns.unsigned_abs();
    format!("{sign}{}.{:09}", a / 1_000_000_000, a % 1_000_000_000)
}

// ---------------------------------------------------------------------------------------------
// The layout
// ---------------------------------------------------------------------------------------------

/// Where a field is: `OFFSET ELEMENT_SIZE COUNT` (COUNT > 1: an array of COUNT elements).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Field {
    /// Byte offset in its struct.
    pub offset: usize,
    /// Size of one element.
    pub size: usize,
    /// Number of elements.
    pub count: usize,
}

impl Field {
    /// One past its last byte.
    pub fn end(&self) -> Option<usize> {
        self.size
            .checked_mul(self.count)
            .and_then(|n| n.checked_add(self.offset))
    }

    /// Offset of element `i`.
    pub fn at(&self, i: usize) -> usize {
        self.offset + i * self.size
    }
}

/// `struct vdso_clock` as the layout describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockLayout {
    /// `sizeof(struct vdso_clock)`.
    pub size: usize,
    /// `u32 seq`.
    pub seq: Field,
    /// `s32 clock_mode`.
    pub clock_mode: Field,
    /// `u64 cycle_last`.
    pub cycle_last: Field,
    /// `u64 max_cycles`: only with `CONFIG_GENERIC_VDSO_OVERFLOW_PROTECT`.
    pub max_cycles: Option<Field>,
    /// `u64 mask`.
    pub mask: Field,
    /// `u32 mult`.
    pub mult: Field,
    /// `u32 shift`.
    pub shift: Field,
    /// `struct vdso_timestamp basetime[VDSO_BASES]` (one side of a union).
    pub basetime: Field,
    /// `struct timens_offset offset[VDSO_BASES]` (the other side).
    pub offset: Field,
    /// `vdso_timestamp.sec` (`u64`) and `.nsec` (`u64`).
    pub ts_sec: Field,
    /// See `ts_sec`.
    pub ts_nsec: Field,
    /// `timens_offset.sec` (`s64`) and `.nsec` (`u64`).
    pub off_sec: Field,
    /// See `off_sec`.
    pub off_nsec: Field,
}

/// `struct vdso_time_data` as the layout describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeDataLayout {
    /// `sizeof(struct vdso_time_data)`.
    pub size: usize,
    /// `struct vdso_clock clock_data[CS_BASES]`.
    pub clock_data: Field,
    /// `struct vdso_clock aux_clock_data[MAX_AUX_CLOCKS]`.
    pub aux_clock_data: Field,
    /// `s32 tz_minuteswest`.
    pub tz_minuteswest: Field,
    /// `s32 tz_dsttime`.
    pub tz_dsttime: Field,
    /// `u32 hrtimer_res`.
    pub hrtimer_res: Field,
    /// The `struct vdso_clock` of both arrays.
    pub clock: ClockLayout,
}

/// `struct vdso_rng_data` as the layout describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RngLayout {
    /// `sizeof(struct vdso_rng_data)`.
    pub size: usize,
    /// `u64 generation`.
    pub generation: Field,
    /// `u8 is_ready`.
    pub is_ready: Field,
}

/// The running kernel's vDSO data layout (the module's `layout` file), checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// `PAGE_SIZE`.
    pub page_size: usize,
    /// `VDSO_NR_PAGES`: the pages of `[vvar]`.
    pub vdso_pages: usize,
    /// `VDSO_TIME_PAGE_OFFSET`: the slot of the time data (of the namespace page in a time
    /// namespace).
    pub time_page: usize,
    /// `VDSO_TIMENS_PAGE_OFFSET`: the slot of the real time data in a time namespace.
    pub timens_page: usize,
    /// `VDSO_RNG_PAGE_OFFSET`.
    pub rng_page: usize,
    /// `VDSO_ARCH_PAGES_START` and `VDSO_ARCH_PAGES_END`, when given.
    pub arch_pages: Option<(usize, usize)>,
    /// x86: the pages of `[vvar_vclock]`.
    pub vclock_pages: Option<usize>,
    /// `VDSO_BASES`.
    pub vdso_bases: usize,
    /// `CS_BASES`.
    pub cs_bases: usize,
    /// `CS_HRES_COARSE`.
    pub cs_hres_coarse: usize,
    /// `CS_RAW`.
    pub cs_raw: usize,
    /// `MAX_AUX_CLOCKS`.
    pub max_aux_clocks: usize,
    /// `CLOCK_AUX`, the first auxiliary clock id, when given.
    pub clock_aux: Option<u64>,
    /// `enum vdso_clock_mode`: every `clock_mode.NAME: VALUE` line, in file order.
    pub clock_modes: Vec<(String, i32)>,
    /// `VDSO_CLOCKMODE_TIMENS`.
    pub timens_mode: i32,
    /// `VDSO_CLOCKMODE_TSC` (None: this architecture has no TSC mode).
    pub tsc_mode: Option<i32>,
    /// The modes whose counter this program reads ([`crate::timepage::counter_ordered`]), so
    /// that it can compute precise time: `tsc` on x86_64, `archtimer` and `archtimer_nocompat`
    /// on arm64.
    pub counter_modes: Vec<i32>,
    /// `struct vdso_time_data`.
    pub time_data: TimeDataLayout,
    /// `struct vdso_rng_data`.
    pub rng: RngLayout,
    /// Every `key: value` line, as read (comments removed).
    pub raw: BTreeMap<String, String>,
}

/// The `key: value` lines of a layout, looked up with errors that name what is missing.
struct Lines(BTreeMap<String, String>);

impl Lines {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn need(&self, key: &str) -> Result<&str> {
        self.get(key)
            .ok_or_else(|| anyhow!("layout has no `{key}` line"))
    }

    fn parse_num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T> {
        v.parse()
            .map_err(|_| anyhow!("layout: {key}: {} is not a number", quote(v)))
    }

    fn num<T: std::str::FromStr>(&self, key: &str) -> Result<T> {
        Self::parse_num(key, self.need(key)?)
    }

    fn opt_num<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>> {
        self.get(key).map(|v| Self::parse_num(key, v)).transpose()
    }

    fn parse_field(key: &str, v: &str) -> Result<Field> {
        let n: Vec<&str> = v.split_whitespace().collect();
        let [offset, size, count] = n[..] else {
            bail!(
                "layout: {key}: {} is not `OFFSET ELEMENT_SIZE COUNT`",
                quote(v)
            );
        };
        let f = Field {
            offset: Self::parse_num(key, offset)?,
            size: Self::parse_num(key, size)?,
            count: Self::parse_num(key, count)?,
        };
        ensure!(
            f.size > 0 && f.count > 0,
            "layout: {key}: element size and count must be positive, got {}",
            quote(v)
        );
        Ok(f)
    }

    fn opt_field(&self, key: &str) -> Result<Option<Field>> {
        self.get(key).map(|v| Self::parse_field(key, v)).transpose()
    }

    fn field(&self, key: &str) -> Result<Field> {
        Self::parse_field(key, self.need(key)?)
    }

    /// A scalar field of a type `size` bytes wide, inside a struct of `within` bytes.
    fn scalar(&self, key: &str, ty: &str, size: usize, within: (&str, usize)) -> Result<Field> {
        let f = self.field(key)?;
        check_scalar(key, f, ty, size, within)?;
        Ok(f)
    }

    fn opt_scalar(
        &self,
        key: &str,
        ty: &str,
        size: usize,
        within: (&str, usize),
    ) -> Result<Option<Field>> {
        let Some(f) = self.opt_field(key)? else {
            return Ok(None);
        };
        check_scalar(key, f, ty, size, within)?;
        Ok(Some(f))
    }

    /// An array of `count` elements of `elem_size` bytes, inside a struct of `within` bytes.
    fn array(
        &self,
        key: &str,
        elem: (&str, usize),
        count: (&str, usize),
        within: (&str, usize),
    ) -> Result<Field> {
        let f = self.field(key)?;
        ensure!(
            f.size == elem.1,
            "layout: {key}: elements of {} bytes, but {} is {}",
            f.size,
            elem.0,
            elem.1
        );
        ensure!(
            f.count == count.1,
            "layout: {key}: {} elements, but {} is {}",
            f.count,
            count.0,
            count.1
        );
        check_within(key, f, within)?;
        Ok(f)
    }
}

fn check_within(key: &str, f: Field, (name, size): (&str, usize)) -> Result<()> {
    match f.end() {
        Some(end) if end <= size => Ok(()),
        _ => bail!(
            "layout: {key} ({} + {} x {}) lies outside {name} ({size} bytes)",
            f.offset,
            f.size,
            f.count
        ),
    }
}

fn check_scalar(key: &str, f: Field, ty: &str, size: usize, within: (&str, usize)) -> Result<()> {
    ensure!(
        f.count == 1,
        "layout: {key}: {} elements, but it is one {ty}",
        f.count
    );
    ensure!(
        f.size == size,
        "layout: {key} is {} bytes, but it is a {ty} ({size} bytes)",
        f.size
    );
    check_within(key, f, within)
}

/// The `key: value` lines of a layout file: `#` lines are comments, and so is the rest of a
/// line from ` #` (no value contains `#`); blank lines are skipped. A key given twice is an
/// error.
fn layout_lines(text: &str) -> Result<BTreeMap<String, String>> {
    let lines: Vec<&str> = text
        .lines()
        .map(|l| l.find('#').map_or(l, |i| &l[..i]).trim_end())
        .filter(|l| !l.trim().is_empty())
        .collect();
    let joined = lines.join("\n");
    let mut map = BTreeMap::new();
    for (k, v) in crate::report::key_values(&joined).context("layout")? {
        let k = k.trim();
        ensure!(
            map.insert(k.to_string(), v.trim().to_string()).is_none(),
            "layout: `{k}` is given twice"
        );
    }
    Ok(map)
}

impl Layout {
    /// Parses and checks the text of the layout file.
    pub fn parse(text: &str) -> Result<Self> {
        let l = Lines(layout_lines(text)?);
        let page_size: usize = l.num("page_size")?;
        ensure!(
            page_size.is_power_of_two() && page_size >= 4096,
            "layout: page_size {page_size} is not a page size"
        );
        let vdso_pages: usize = l.num("vdso_pages")?;
        let slot = |key: &str| -> Result<usize> {
            let n: usize = l.num(key)?;
            ensure!(
                n < vdso_pages,
                "layout: {key} {n} is not a page of [vvar] (vdso_pages {vdso_pages})"
            );
            Ok(n)
        };
        let time_page = slot("vdso_pages.time")?;
        let timens_page = slot("vdso_pages.timens")?;
        let rng_page = slot("vdso_pages.rng")?;
        ensure!(
            time_page != timens_page,
            "layout: vdso_pages.time and vdso_pages.timens are the same page ({time_page})"
        );
        let arch_pages = match (
            l.opt_num::<usize>("vdso_pages.arch_start")?,
            l.opt_num::<usize>("vdso_pages.arch_end")?,
        ) {
            (Some(a), Some(b)) => Some((a, b)),
            _ => None,
        };
        let vdso_bases: usize = l.num("vdso_bases")?;
        let cs_bases: usize = l.num("cs_bases")?;
        let cs_hres_coarse: usize = l.num("cs_hres_coarse")?;
        let cs_raw: usize = l.num("cs_raw")?;
        for (k, v) in [("cs_hres_coarse", cs_hres_coarse), ("cs_raw", cs_raw)] {
            ensure!(
                v < cs_bases,
                "layout: {k} {v} is not below cs_bases {cs_bases}"
            );
        }
        let max_aux_clocks: usize = l.num("max_aux_clocks")?;

        let mut clock_modes = Vec::new();
        for (k, v) in &l.0 {
            if let Some(name) = k.strip_prefix("clock_mode.") {
                clock_modes.push((name.to_string(), Lines::parse_num::<i32>(k, v)?));
            }
        }
        clock_modes.sort_by_key(|(_, v)| *v);
        let mode = |name: &str| clock_modes.iter().find(|(n, _)| n == name).map(|m| m.1);
        let timens_mode =
            mode("timens").ok_or_else(|| anyhow!("layout has no `clock_mode.timens` line"))?;

        let size = |key: &str| -> Result<usize> {
            let n: usize = l.num(key)?;
            ensure!(n <= page_size, "layout: {key} {n} exceeds a page");
            Ok(n)
        };
        let ts_size = size("sizeof.vdso_timestamp")?;
        let off_size = size("sizeof.timens_offset")?;
        let clock_size = size("sizeof.vdso_clock")?;
        let time_size = size("sizeof.vdso_time_data")?;
        let rng_size = size("sizeof.vdso_rng_data")?;

        let ts = ("sizeof.vdso_timestamp", ts_size);
        let off = ("sizeof.timens_offset", off_size);
        let vc = ("sizeof.vdso_clock", clock_size);
        let td = ("sizeof.vdso_time_data", time_size);
        let clock = ClockLayout {
            size: clock_size,
            seq: l.scalar("vdso_clock.seq", "u32", 4, vc)?,
            clock_mode: l.scalar("vdso_clock.clock_mode", "s32", 4, vc)?,
            cycle_last: l.scalar("vdso_clock.cycle_last", "u64", 8, vc)?,
            max_cycles: l.opt_scalar("vdso_clock.max_cycles", "u64", 8, vc)?,
            mask: l.scalar("vdso_clock.mask", "u64", 8, vc)?,
            mult: l.scalar("vdso_clock.mult", "u32", 4, vc)?,
            shift: l.scalar("vdso_clock.shift", "u32", 4, vc)?,
            basetime: l.array("vdso_clock.basetime", ts, ("vdso_bases", vdso_bases), vc)?,
            offset: l.array("vdso_clock.offset", off, ("vdso_bases", vdso_bases), vc)?,
            ts_sec: l.scalar("vdso_timestamp.sec", "u64", 8, ts)?,
            ts_nsec: l.scalar("vdso_timestamp.nsec", "u64", 8, ts)?,
            off_sec: l.scalar("timens_offset.sec", "s64", 8, off)?,
            off_nsec: l.scalar("timens_offset.nsec", "u64", 8, off)?,
        };
        let time_data = TimeDataLayout {
            size: time_size,
            clock_data: l.array("vdso_time_data.clock_data", vc, ("cs_bases", cs_bases), td)?,
            aux_clock_data: l.array(
                "vdso_time_data.aux_clock_data",
                vc,
                ("max_aux_clocks", max_aux_clocks),
                td,
            )?,
            tz_minuteswest: l.scalar("vdso_time_data.tz_minuteswest", "s32", 4, td)?,
            tz_dsttime: l.scalar("vdso_time_data.tz_dsttime", "s32", 4, td)?,
            hrtimer_res: l.scalar("vdso_time_data.hrtimer_res", "u32", 4, td)?,
            clock,
        };
        // The sequence counts (atomics) and clock_data[].clock_mode (the namespace test) are
        // read in place: they must be 4-byte aligned (the page is).
        for (name, f) in [
            ("vdso_time_data.clock_data", time_data.clock_data),
            ("vdso_time_data.aux_clock_data", time_data.aux_clock_data),
        ] {
            for (field, at) in [
                ("seq", time_data.clock.seq.offset),
                ("clock_mode", time_data.clock.clock_mode.offset),
            ] {
                ensure!(
                    (f.offset + at) % 4 == 0 && f.size % 4 == 0,
                    "layout: the {field} of {name}[] is not 4-byte aligned"
                );
            }
        }
        let rd = ("sizeof.vdso_rng_data", rng_size);
        let rng = RngLayout {
            size: rng_size,
            generation: l.scalar("vdso_rng_data.generation", "u64", 8, rd)?,
            is_ready: l.scalar("vdso_rng_data.is_ready", "u8", 1, rd)?,
        };
        Ok(Layout {
            page_size,
            vdso_pages,
            time_page,
            timens_page,
            rng_page,
            arch_pages,
            vclock_pages: l.opt_num("vclock_pages")?,
            vdso_bases,
            cs_bases,
            cs_hres_coarse,
            cs_raw,
            max_aux_clocks,
            clock_aux: l.opt_num("clock_aux")?,
            tsc_mode: mode("tsc"),
            counter_modes: COUNTER_MODES.iter().filter_map(|n| mode(n)).collect(),
            clock_modes,
            timens_mode,
            time_data,
            rng,
            raw: l.0,
        })
    }

    /// Reads and parses [`LAYOUT_PATH`]; an error says why it is missing (the module not
    /// loaded: `insmod vdso_probe.ko`, debugfs not mounted, a module without the file).
    pub fn read() -> Result<Self> {
        Self::read_from(Path::new(LAYOUT_PATH))
    }

    /// Reads and parses a layout file (the module's, or a saved copy).
    pub fn read_from(path: &Path) -> Result<Self> {
        let text = Self::read_text(path)?;
        Self::parse(&text).with_context(|| path.display().to_string())
    }

    /// The text of a layout file; for [`LAYOUT_PATH`] an error says why it is missing.
    pub fn read_text(path: &Path) -> Result<String> {
        std::fs::read_to_string(path).map_err(|e| {
            if path == Path::new(LAYOUT_PATH) && e.kind() == std::io::ErrorKind::NotFound {
                // The layout comes from the module: say what is missing and what to do.
                let why = crate::report::debugfs_problem().unwrap_or_else(|| {
                    format!(
                        "the loaded vdso_probe has no layout file in {DEBUGFS_DIR} (an older \
                         module: rmmod vdso_probe; insmod vdso_probe.ko)"
                    )
                });
                return anyhow!("{LAYOUT_PATH}: {why}");
            }
            anyhow::Error::new(e).context(format!("reading {}", path.display()))
        })
    }

    /// The name of a `clock_mode` value: its `clock_mode.NAME` line, `unknown(N)` without one.
    pub fn clock_mode_name(&self, raw: i32) -> String {
        self.clock_modes
            .iter()
            .find(|(_, v)| *v == raw)
            .map_or_else(|| format!("unknown({raw})"), |(n, _)| n.clone())
    }

    /// What `clock_data[i]` serves.
    pub fn role(&self, i: usize) -> ClockRole {
        if i == self.cs_hres_coarse {
            ClockRole::HresCoarse
        } else if i == self.cs_raw {
            ClockRole::Raw
        } else {
            ClockRole::Other
        }
    }

    /// Offsets in a time-data page of the `seq` of every `vdso_clock`: the `clock_data[]`
    /// (`CS_HRES_COARSE` first) and the `aux_clock_data[]`.
    fn seq_offsets(&self) -> Vec<usize> {
        let t = &self.time_data;
        let seq = t.clock.seq.offset;
        let mut v = vec![t.clock_data.at(self.cs_hres_coarse) + seq];
        v.extend(
            (0..self.cs_bases)
                .filter(|&i| i != self.cs_hres_coarse)
                .map(|i| t.clock_data.at(i) + seq),
        );
        v.extend((0..self.max_aux_clocks).map(|i| t.aux_clock_data.at(i) + seq));
        v
    }

    /// Offset in a time-data page of `clock_data[CS_HRES_COARSE].clock_mode`.
    fn hres_mode_offset(&self) -> usize {
        self.time_data.clock_data.at(self.cs_hres_coarse) + self.time_data.clock.clock_mode.offset
    }

    /// Decodes a `struct vdso_time_data` from the first `sizeof.vdso_time_data` bytes of `page`.
    pub fn decode_time_data(&self, page: &[u8]) -> Result<TimeData> {
        let t = &self.time_data;
        ensure!(
            page.len() >= t.size,
            "a time data page of {} bytes, but sizeof.vdso_time_data is {}",
            page.len(),
            t.size
        );
        let clocks = |f: Field| -> Vec<VdsoClock> {
            (0..f.count)
                .map(|i| self.decode_clock(&page[f.at(i)..f.at(i) + t.clock.size]))
                .collect()
        };
        Ok(TimeData {
            clock_data: clocks(t.clock_data),
            aux_clock_data: clocks(t.aux_clock_data),
            tz_minuteswest: rd_i32(page, t.tz_minuteswest.offset),
            tz_dsttime: rd_i32(page, t.tz_dsttime.offset),
            hrtimer_res: rd_u32(page, t.hrtimer_res.offset),
        })
    }

    /// Decodes one `struct vdso_clock` (`bytes` is `sizeof.vdso_clock` long).
    fn decode_clock(&self, b: &[u8]) -> VdsoClock {
        let c = &self.time_data.clock;
        let raw = rd_i32(b, c.clock_mode.offset);
        let bases = if raw == self.timens_mode {
            Bases::Offset(
                (0..c.offset.count)
                    .map(|i| NsOffset {
                        sec: rd_i64(b, c.offset.at(i) + c.off_sec.offset),
                        nsec: rd_u64(b, c.offset.at(i) + c.off_nsec.offset),
                    })
                    .collect(),
            )
        } else {
            Bases::Basetime(
                (0..c.basetime.count)
                    .map(|i| Timestamp {
                        sec: rd_u64(b, c.basetime.at(i) + c.ts_sec.offset),
                        nsec: rd_u64(b, c.basetime.at(i) + c.ts_nsec.offset),
                    })
                    .collect(),
            )
        };
        VdsoClock {
            seq: rd_u32(b, c.seq.offset),
            clock_mode: ClockMode {
                raw,
                name: self.clock_mode_name(raw),
            },
            cycle_last: rd_u64(b, c.cycle_last.offset),
            max_cycles: c.max_cycles.map(|f| rd_u64(b, f.offset)),
            mask: rd_u64(b, c.mask.offset),
            mult: rd_u32(b, c.mult.offset),
            shift: rd_u32(b, c.shift.offset),
            bases,
        }
    }

    /// Decodes a `struct vdso_rng_data` from the first `sizeof.vdso_rng_data` bytes of `page`.
    pub fn decode_rng(&self, page: &[u8]) -> Result<RngData> {
        ensure!(
            page.len() >= self.rng.size,
            "an rng page of {} bytes, but sizeof.vdso_rng_data is {}",
            page.len(),
            self.rng.size
        );
        Ok(RngData {
            generation: rd_u64(page, self.rng.generation.offset),
            is_ready: page[self.rng.is_ready.offset],
        })
    }
}

fn rd<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[off..off + N]);
    a
}
fn rd_u32(b: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes(rd(b, off))
}
fn rd_i32(b: &[u8], off: usize) -> i32 {
    i32::from_ne_bytes(rd(b, off))
}
fn rd_u64(b: &[u8], off: usize) -> u64 {
    u64::from_ne_bytes(rd(b, off))
}
fn rd_i64(b: &[u8], off: usize) -> i64 {
    i64::from_ne_bytes(rd(b, off))
}

// ---------------------------------------------------------------------------------------------
// The decoded data
// ---------------------------------------------------------------------------------------------

/// What a `clock_data[]` entry serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockRole {
    /// `CS_HRES_COARSE`: REALTIME, MONOTONIC, BOOTTIME, TAI (hres) and the coarse clocks.
    HresCoarse,
    /// `CS_RAW`: MONOTONIC_RAW.
    Raw,
    /// An index the kernel gives no role.
    Other,
}

impl ClockRole {
    /// The `basetime[]` entries the kernel writes for this role (`kernel/time/vsyscall.c`), as
    /// `(clock id, nsec shifted left by shift)`: the hres clocks' `nsec` is nanoseconds <<
    /// `shift`, the coarse clocks' plain nanoseconds.
    pub fn basetimes(self) -> &'static [(usize, bool)] {
        match self {
            ClockRole::HresCoarse => &[
                (0, true),  // REALTIME
                (1, true),  // MONOTONIC
                (5, false), // REALTIME_COARSE
                (6, false), // MONOTONIC_COARSE
                (7, true),  // BOOTTIME
                (11, true), // TAI
            ],
            ClockRole::Raw => &[(4, true)], // MONOTONIC_RAW
            ClockRole::Other => &[],
        }
    }
}

/// The auxiliary clocks' one `basetime[]` entry, [`VDSO_BASE_AUX`], shifted.
pub const AUX_BASETIMES: &[(usize, bool)] = &[(VDSO_BASE_AUX, true)];

/// The `offset[]` entries a time namespace sets (`timens_setup_vdso_clock_data`): MONOTONIC,
/// MONOTONIC_RAW, MONOTONIC_COARSE, BOOTTIME, BOOTTIME_ALARM; the others are zero.
pub const TIMENS_OFFSETS: &[usize] = &[1, 4, 6, 7, 9];

/// A `clock_mode`: the raw `s32` and its name from the layout (`unknown(N)` without one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockMode {
    /// The value.
    pub raw: i32,
    /// `tsc`, `none`, `timens`, ... from the layout's `clock_mode.*` lines.
    pub name: String,
}

impl fmt::Display for ClockMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// `struct vdso_timestamp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timestamp {
    /// Seconds.
    pub sec: u64,
    /// Nanoseconds; for the hres clocks shifted left by the clock's `shift`.
    pub nsec: u64,
}

impl Timestamp {
    /// Nanoseconds: `sec * 1e9 + nsec`, with `nsec >> shift` when `shift` is given (an hres
    /// entry).
    pub fn ns(&self, shift: Option<u32>) -> i128 {
        let nsec = match shift {
            Some(s) => self.nsec.checked_shr(s).unwrap_or(0),
            None => self.nsec,
        };
        i128::from(self.sec) * 1_000_000_000 + i128::from(nsec)
    }
}

/// `struct timens_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NsOffset {
    /// Seconds (signed).
    pub sec: i64,
    /// Nanoseconds.
    pub nsec: u64,
}

impl NsOffset {
    /// Nanoseconds: `sec * 1e9 + nsec`.
    pub fn ns(&self) -> i128 {
        i128::from(self.sec) * 1_000_000_000 + i128::from(self.nsec)
    }
}

/// The union at the end of `struct vdso_clock`, read as the page's `clock_mode` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bases {
    /// `basetime[VDSO_BASES]`: a page of real time data.
    Basetime(Vec<Timestamp>),
    /// `offset[VDSO_BASES]`: a time-namespace page (`clock_mode` is `timens`).
    Offset(Vec<NsOffset>),
}

/// One `struct vdso_clock`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VdsoClock {
    /// `seq` (1 on a time-namespace page, forever).
    pub seq: u32,
    /// `clock_mode`.
    pub clock_mode: ClockMode,
    /// `cycle_last`.
    pub cycle_last: u64,
    /// `max_cycles` (None: a kernel without `CONFIG_GENERIC_VDSO_OVERFLOW_PROTECT`).
    pub max_cycles: Option<u64>,
    /// `mask`.
    pub mask: u64,
    /// `mult`.
    pub mult: u32,
    /// `shift`.
    pub shift: u32,
    /// `basetime[]` or `offset[]`.
    pub bases: Bases,
}

impl VdsoClock {
    /// `basetime[id]` (None on a time-namespace page or past `VDSO_BASES`).
    pub fn basetime(&self, id: usize) -> Option<Timestamp> {
        match &self.bases {
            Bases::Basetime(b) => b.get(id).copied(),
            Bases::Offset(_) => None,
        }
    }

    /// `offset[id]` (None on a page of real time data or past `VDSO_BASES`).
    pub fn offset(&self, id: usize) -> Option<NsOffset> {
        match &self.bases {
            Bases::Offset(o) => o.get(id).copied(),
            Bases::Basetime(_) => None,
        }
    }
}

/// One `struct vdso_time_data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeData {
    /// `clock_data[CS_BASES]`.
    pub clock_data: Vec<VdsoClock>,
    /// `aux_clock_data[MAX_AUX_CLOCKS]`.
    pub aux_clock_data: Vec<VdsoClock>,
    /// `tz_minuteswest`.
    pub tz_minuteswest: i32,
    /// `tz_dsttime`.
    pub tz_dsttime: i32,
    /// `hrtimer_res` (ns).
    pub hrtimer_res: u32,
}

/// One `struct vdso_rng_data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RngData {
    /// `generation`: how often the RNG was reseeded.
    pub generation: u64,
    /// `is_ready`.
    pub is_ready: u8,
}

/// The root time namespace or another one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Namespace {
    /// The root time namespace: the time slot holds the real data.
    Root,
    /// A time namespace: the time slot holds the namespace page, the timens slot the real data.
    Time,
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Namespace::Root => "root",
            Namespace::Time => "time namespace",
        })
    }
}

/// Which `vdso_calc_ns` the kernel builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalcNs {
    /// `lib/vdso/gettimeofday.c`: `delta = (cycles - cycle_last) & mask`; `delta < max_cycles`
    /// (or no `max_cycles`): `(delta * mult + base) >> shift` in 64 bits, else in 128.
    Generic,
    /// `arch/x86/include/asm/vdso/gettimeofday.h`: `delta = cycles - cycle_last` (no mask);
    /// `delta > max_cycles`: negative motion (bit 62 set) gives `base >> shift`, else the
    /// 128-bit product of `delta & S64_MAX`; otherwise the 64-bit one.
    X86,
}

impl CalcNs {
    /// The one this architecture's kernel builds.
    pub const NATIVE: CalcNs = if cfg!(any(target_arch = "x86_64", target_arch = "x86")) {
        CalcNs::X86
    } else {
        CalcNs::Generic
    };
}

/// `((delta * mult) + base) >> shift` in 64 bits, wrapping as the kernel's `u64` does.
pub fn ns_64(delta: u64, mult: u32, base: u64, shift: u32) -> u64 {
    delta
        .wrapping_mul(u64::from(mult))
        .wrapping_add(base)
        .checked_shr(shift)
        .unwrap_or(0)
}

/// `mul_u64_u32_add_u64_shr(delta, mult, base, shift)`: the same with a 128-bit product.
#[cold]
pub fn ns_128(delta: u64, mult: u32, base: u64, shift: u32) -> u64 {
    let v = (u128::from(delta) * u128::from(mult) + u128::from(base))
        .checked_shr(shift)
        .unwrap_or(0);
    v as u64 // the kernel's (u64) cast
}

/// `vdso_calc_ns(vc, cycles, base)`: nanoseconds since `vc`'s `basetime` for the counter value
/// `cycles` (as `__arch_get_hw_counter` returns it), `base` the `basetime[].nsec` (shifted).
pub fn calc_ns(variant: CalcNs, vc: &VdsoClock, cycles: u64, base: u64) -> u64 {
    match variant {
        CalcNs::Generic => {
            let delta = cycles.wrapping_sub(vc.cycle_last) & vc.mask;
            if vc.max_cycles.is_none_or(|m| delta < m) {
                ns_64(delta, vc.mult, base, vc.shift)
            } else {
                ns_128(delta, vc.mult, base, vc.shift)
            }
        }
        CalcNs::X86 => x86_ns(
            cycles.wrapping_sub(vc.cycle_last),
            vc.max_cycles.unwrap_or(u64::MAX),
            vc.mult,
            base,
            vc.shift,
        ),
    }
}

/// The `clock_mode.NAME`s whose counter [`crate::timepage::counter_ordered`] reads.
const COUNTER_MODES: &[&str] = if cfg!(target_arch = "x86_64") {
    &["tsc"]
} else if cfg!(target_arch = "aarch64") {
    &["archtimer", "archtimer_nocompat"]
} else {
    &[]
};

/// x86's `vdso_calc_ns()` from `delta = cycles - cycle_last` (the counter read as
/// `rdtsc_ordered() & S64_MAX`): up to `max_cycles` a 64-bit product; beyond it bit 62 set is
/// negative motion (a counter slightly behind `cycle_last`: the time at `cycle_last`), else a
/// 128-bit product of `delta & S64_MAX`. The one implementation, for `[vvar]` and the time page.
#[inline(always)]
pub fn x86_ns(delta: u64, max_cycles: u64, mult: u32, base: u64, shift: u32) -> u64 {
    if delta > max_cycles {
        if delta & (1 << 62) != 0 {
            return base.checked_shr(shift).unwrap_or(0);
        }
        return ns_128(delta & i64::MAX as u64, mult, base, shift);
    }
    ns_64(delta, mult, base, shift)
}

/// A consistent copy of `[vvar]`'s time data (and rng data), decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VvarSnapshot {
    /// The layout it was decoded with.
    pub layout: Layout,
    /// Which namespace the process is in.
    pub namespace: Namespace,
    /// The `[vvar]` slot the real time data came from (`vdso_pages.time`, or
    /// `vdso_pages.timens` in a time namespace).
    pub data_page: usize,
    /// The real time data (all of it from one even `seq` of every `vdso_clock`).
    pub data: TimeData,
    /// In a time namespace, the namespace page (the time slot): `clock_mode` `timens`, the
    /// offsets.
    pub ns_page: Option<TimeData>,
    /// The rng page, when the kernel has one (the vDSO exports `__vdso_getrandom`).
    pub rng: Option<RngData>,
    /// The counter as the vDSO reads it (x86: `rdtsc_ordered() & S64_MAX`; arm64: `cntvct_el0`),
    /// inside the read section of `data`: only when its clock mode is one of
    /// [`Layout::counter_modes`].
    pub cycles: Option<u64>,
    /// The `vdso_calc_ns` to compute with ([`CalcNs::NATIVE`]).
    pub calc: CalcNs,
}

impl VvarSnapshot {
    /// Decodes a snapshot from page bytes: `time_slot` (the `vdso_pages.time` page), and in a
    /// time namespace (the time slot's `clock_data[CS_HRES_COARSE].clock_mode` is `timens`)
    /// `timens_slot` (the real data, required then, ignored otherwise); `rng_slot` when the
    /// kernel has the rng page; `cycles` read in the same read section as the real data.
    pub fn decode(
        layout: &Layout,
        time_slot: &[u8],
        timens_slot: Option<&[u8]>,
        rng_slot: Option<&[u8]>,
        cycles: Option<u64>,
    ) -> Result<Self> {
        let first = layout
            .decode_time_data(time_slot)
            .context("the time page")?;
        let (namespace, data_page, data, ns_page) =
            if first.clock_data[layout.cs_hres_coarse].clock_mode.raw == layout.timens_mode {
                let real = timens_slot.context(
                    "the time page is a time-namespace page, but the real data page (the \
                     timens slot) was not given",
                )?;
                let data = layout
                    .decode_time_data(real)
                    .context("the real time data page (timens slot)")?;
                (Namespace::Time, layout.timens_page, data, Some(first))
            } else {
                (Namespace::Root, layout.time_page, first, None)
            };
        let rng = rng_slot
            .map(|b| layout.decode_rng(b))
            .transpose()
            .context("the rng page")?;
        Ok(VvarSnapshot {
            layout: layout.clone(),
            namespace,
            data_page,
            data,
            ns_page,
            rng,
            cycles,
            calc: CalcNs::NATIVE,
        })
    }

    /// Fails with what is wrong with the snapshot itself: the real data cannot be a
    /// time-namespace page, its `seq` must be even; a namespace page's `seq` is 1 and its every
    /// `clock_data[]` says `timens`.
    pub fn check(&self) -> Result<()> {
        let timens = self.layout.timens_mode;
        for (i, c) in self.data.clock_data.iter().enumerate() {
            ensure!(
                c.clock_mode.raw != timens,
                "the real time data (page {}) says clock_data[{i}].clock_mode timens",
                self.data_page
            );
            ensure!(
                c.seq % 2 == 0,
                "the copy of clock_data[{i}] has an odd seq {}",
                c.seq
            );
        }
        if let Some(ns) = &self.ns_page {
            for (i, c) in ns.clock_data.iter().enumerate() {
                ensure!(
                    c.clock_mode.raw == timens && c.seq == 1,
                    "the time-namespace page's clock_data[{i}] has clock_mode {} and seq {}, \
                     not timens and 1",
                    c.clock_mode,
                    c.seq
                );
            }
        }
        Ok(())
    }

    /// The real data's `vdso_clock` that serves `clock` (`CS_RAW` for MONOTONIC_RAW, else
    /// `CS_HRES_COARSE`).
    fn data_clock(&self, clock: Clock) -> &VdsoClock {
        let i = match clock {
            Clock::MonotonicRaw => self.layout.cs_raw,
            _ => self.layout.cs_hres_coarse,
        };
        &self.data.clock_data[i]
    }

    /// The namespace offset the vDSO adds to `clock` (`vcns->offset[clk]`, of the namespace
    /// page's `vdso_clock` that serves it): zero in the root namespace.
    pub fn ns_offset(&self, clock: Clock) -> Option<NsOffset> {
        let Some(ns) = &self.ns_page else {
            return Some(NsOffset::default());
        };
        let i = match clock {
            Clock::MonotonicRaw => self.layout.cs_raw,
            _ => self.layout.cs_hres_coarse,
        };
        ns.clock_data[i].offset(clock_index(clock))
    }

    /// Whether the real data's clock mode is one whose counter this program reads (`tsc`;
    /// arm64: `archtimer`): only then can the time be computed here.
    pub fn is_tsc(&self) -> bool {
        let mode = self.data.clock_data[self.layout.cs_hres_coarse]
            .clock_mode
            .raw;
        self.layout.counter_modes.contains(&mode)
    }

    /// The precise value of an hres clock (REALTIME, MONOTONIC, MONOTONIC_RAW, BOOTTIME, TAI)
    /// in ns for the counter value `cycles`, as `do_hres` (and in a time namespace
    /// `do_hres_timens`) computes it: `basetime.sec + (vdso_calc_ns(...) + offset)`. None
    /// unless the clock mode is `tsc` (on `none`, e.g. hpet, the hres fields are stale by
    /// design: `update_vsyscall` skips them), and for the coarse clocks.
    pub fn precise_at(&self, clock: Clock, cycles: u64) -> Option<i128> {
        if matches!(clock, Clock::RealtimeCoarse | Clock::MonotonicCoarse) || !self.is_tsc() {
            return None;
        }
        let vc = self.data_clock(clock);
        if vc.clock_mode.raw
            != self.data.clock_data[self.layout.cs_hres_coarse]
                .clock_mode
                .raw
        {
            return None;
        }
        let ts = vc.basetime(clock_index(clock))?;
        let ns = calc_ns(self.calc, vc, cycles, ts.nsec);
        let off = self.ns_offset(clock)?;
        Some(
            (i128::from(ts.sec) + i128::from(off.sec)) * 1_000_000_000
                + i128::from(ns)
                + i128::from(off.nsec),
        )
    }

    /// [`VvarSnapshot::precise_at`] the snapshot's own counter value.
    pub fn precise(&self, clock: Clock) -> Option<i128> {
        self.precise_at(clock, self.cycles?)
    }

    /// Precise CLOCK_MONOTONIC at the snapshot's counter value (see
    /// [`VvarSnapshot::precise_at`]).
    pub fn precise_monotonic(&self) -> Option<i128> {
        self.precise(Clock::Monotonic)
    }

    /// A coarse clock (REALTIME_COARSE, MONOTONIC_COARSE) in ns, as `do_coarse` (and
    /// `do_coarse_timens`) read it: `basetime[clk]` as is, plus the namespace offset. Valid
    /// whatever the clock mode; None for the other clocks.
    pub fn coarse(&self, clock: Clock) -> Option<i128> {
        if !matches!(clock, Clock::RealtimeCoarse | Clock::MonotonicCoarse) {
            return None;
        }
        let ts = self.data_clock(clock).basetime(clock_index(clock))?;
        Some(ts.ns(None) + self.ns_offset(clock)?.ns())
    }
}

// ---------------------------------------------------------------------------------------------
// Reading this process's [vvar]
// ---------------------------------------------------------------------------------------------

/// This process's `[vvar]`, read with a [`Layout`].
#[derive(Debug)]
pub struct Vvar {
    layout: Layout,
    start: usize,
    end: usize,
    rng: bool,
}

/// Whether this process's vDSO exports `__vdso_getrandom`: then the kernel has the rng page.
pub fn vdso_has_getrandom() -> bool {
    crate::vdso::LiveVdso::locate().is_ok_and(|v| {
        v.elf()
            .symbols()
            .iter()
            .any(|s| s.name == "__vdso_getrandom" && s.is_exported())
    })
}

/// A volatile copy of `len` bytes at `addr`, read as 8-byte words.
///
/// # Safety
///
/// `addr` must be 8-byte aligned and `[addr, addr + len rounded up to 8)` readable for the
/// duration of the call.
unsafe fn copy_volatile(addr: usize, len: usize) -> Vec<u8> {
    let words = len.div_ceil(8);
    let mut out = Vec::with_capacity(words * 8);
    for i in 0..words {
        // SAFETY: the caller guarantees the words are readable and aligned; volatile, because
        // the kernel writes them concurrently (a torn copy is discarded by the seq check).
        let w = unsafe { ptr::read_volatile((addr as *const u64).add(i)) };
        out.extend_from_slice(&w.to_ne_bytes());
    }
    out.truncate(len);
    out
}

impl Vvar {
    /// Finds `[vvar]` in `/proc/self/maps` and checks it against the layout (page size, at
    /// least `vdso_pages` pages); whether the rng page may be read is decided by the vDSO's
    /// symbols ([`vdso_has_getrandom`]).
    pub fn locate(layout: Layout) -> Result<Self> {
        let page = crate::vdso::page_size();
        if layout.page_size != page {
            return Err(problem(format_args!(
                "the layout's page_size {} is not this system's ({page})",
                layout.page_size
            )));
        }
        let m = crate::vdso::find_mapping(None, "[vvar]")?
            .context("/proc/self/maps has no [vvar] (booted with vdso=0?)")?;
        let rng = vdso_has_getrandom();
        let (start, end) = (
            usize::try_from(m.start).context("[vvar] start")?,
            usize::try_from(m.end).context("[vvar] end")?,
        );
        // SAFETY: `[vvar]` is the kernel's special mapping of this process, mapped read-only for
        // its lifetime (it is sealed on kernels with VM_SEALED_SYSMAP; this program never
        // unmaps it); `at` checks that the layout's pages fit in it.
        unsafe { Self::at(layout, start, end, rng) }
    }

    /// A `[vvar]` (or a stand-in with the same layout) at `[start, end)`.
    ///
    /// # Safety
    ///
    /// `[start, end)` must stay mapped and readable while the value lives: its time slot page
    /// always; the timens slot whenever the time slot is a time-namespace page; the rng slot if
    /// `rng`.
    pub unsafe fn at(layout: Layout, start: usize, end: usize, rng: bool) -> Result<Self> {
        let ps = layout.page_size;
        ensure!(start % ps == 0, "[vvar] at {start:#x} is not page aligned");
        let need = layout.vdso_pages * ps;
        if end < start || end - start < need {
            return Err(problem(format_args!(
                "[vvar] {start:#x}-{end:#x} is {} pages, the layout says {} (vdso_pages)",
                end.saturating_sub(start) / ps,
                layout.vdso_pages
            )));
        }
        Ok(Vvar {
            layout,
            start,
            end,
            rng,
        })
    }

    /// The layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// First address.
    pub fn start(&self) -> usize {
        self.start
    }

    /// One past the last address.
    pub fn end(&self) -> usize {
        self.end
    }

    /// Whether the rng page is read.
    pub fn has_rng(&self) -> bool {
        self.rng
    }

    fn page(&self, slot: usize) -> usize {
        self.start + slot * self.layout.page_size
    }

    /// The `seq` at `off` of the page at `page` as an atomic.
    fn seq_at(&self, page: usize, off: usize) -> &AtomicU32 {
        // SAFETY: `page` is a page of our mapping that exists (time slot, or the timens slot in
        // a time namespace), `off` a 4-byte aligned offset inside its vdso_time_data (checked
        // by Layout::parse), and the mapping outlives `&self`. AtomicU32 has the size and
        // alignment of u32; the mapping is read-only and only loaded through this view.
        unsafe { AtomicU32::from_ptr((page + off) as *mut u32) }
    }

    /// Which namespace this process is in: the time slot's `clock_data[CS_HRES_COARSE]
    /// .clock_mode` is `timens` only on a namespace page (touches the time slot only).
    pub fn namespace(&self) -> Namespace {
        let p = self.page(self.layout.time_page) + self.layout.hres_mode_offset();
        // SAFETY: the time slot always exists and is page aligned; the offset is inside its
        // vdso_time_data and 4-byte aligned (both checked by Layout::parse).
        let mode = unsafe { ptr::read_volatile(p as *const i32) };
        if mode == self.layout.timens_mode {
            Namespace::Time
        } else {
            Namespace::Root
        }
    }

    /// The slot of the real time data.
    pub fn data_page(&self) -> usize {
        match self.namespace() {
            Namespace::Root => self.layout.time_page,
            Namespace::Time => self.layout.timens_page,
        }
    }

    /// The live `seq` of the real data's `clock_data[CS_HRES_COARSE]` (acquire): a value read
    /// before and after something, and equal, says the data did not change meanwhile.
    pub fn data_seq(&self) -> u32 {
        let off = self.layout.seq_offsets()[0];
        self.seq_at(self.page(self.data_page()), off)
            .load(Ordering::Acquire)
    }

    /// Copies the real data page under the sequence rule of every `vdso_clock` in it, reading
    /// the counter inside the section when the clock mode is `tsc`. Gives up after
    /// [`SETTLE_LIMIT`].
    fn read_data(&self, slot: usize) -> Result<(Vec<u8>, Option<u64>)> {
        let page = self.page(slot);
        let offs = self.layout.seq_offsets();
        let seqs: Vec<&AtomicU32> = offs.iter().map(|&o| self.seq_at(page, o)).collect();
        let mode_off = self.layout.hres_mode_offset();
        let len = self.layout.time_data.size;
        let t0 = Instant::now();
        let mut spins = 0u32;
        let mut start = vec![0u32; seqs.len()];
        loop {
            for (s, a) in start.iter_mut().zip(&seqs) {
                *s = a.load(Ordering::Acquire);
            }
            if start.iter().all(|s| s % 2 == 0) {
                // SAFETY: the page exists (see `seq_at`) and is page aligned; `len` is at most
                // a page (checked by Layout::parse).
                let bytes = unsafe { copy_volatile(page, len) };
                let cycles = if self
                    .layout
                    .counter_modes
                    .contains(&rd_i32(&bytes, mode_off))
                {
                    // x86's vDSO masks the TSC to 63 bits; the generic one masks the delta.
                    crate::timepage::counter_ordered().map(|c| match CalcNs::NATIVE {
                        CalcNs::X86 => c & i64::MAX as u64,
                        CalcNs::Generic => c,
                    })
                } else {
                    None
                };
                // smp_rmb(): the copy is complete before seq is read again.
                fence(Ordering::Acquire);
                if seqs
                    .iter()
                    .zip(&start)
                    .all(|(a, &s)| a.load(Ordering::Relaxed) == s)
                {
                    return Ok((bytes, cycles));
                }
            }
            if t0.elapsed() > SETTLE_LIMIT {
                return Err(problem(format_args!(
                    "the time data of [vvar] page {slot} did not settle in {SETTLE_LIMIT:?}: a \
                     seq stayed odd or kept changing (clock_data[{}].seq {})",
                    self.layout.cs_hres_coarse, start[0]
                )));
            }
            spins = spins.wrapping_add(1);
            if spins % 1024 == 0 {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
    }

    /// A consistent snapshot: the real time data under its sequence rule (with the TSC when
    /// the clock mode is `tsc`); in a time namespace also the namespace page (static once the
    /// namespace's first task entered it: no sequence rule, its `seq` is 1 forever); the rng
    /// page if the kernel has one.
    pub fn snapshot(&self) -> Result<VvarSnapshot> {
        let l = &self.layout;
        let (ns_bytes, data_slot) = match self.namespace() {
            Namespace::Root => (None, l.time_page),
            Namespace::Time => (
                // SAFETY: the time slot always exists and is page aligned; `size` fits a page.
                Some(unsafe { copy_volatile(self.page(l.time_page), l.time_data.size) }),
                l.timens_page,
            ),
        };
        let (data, cycles) = self.read_data(data_slot)?;
        let rng = self.rng.then(|| {
            // SAFETY: the caller of `at` (or `locate`, from the vDSO's symbols) vouched that
            // the rng page exists; it is page aligned and `size` fits a page.
            unsafe { copy_volatile(self.page(l.rng_page), l.rng.size) }
        });
        let (time_slot, timens_slot) = match &ns_bytes {
            Some(ns) => (ns.as_slice(), Some(data.as_slice())),
            None => (data.as_slice(), None),
        };
        let snap = VvarSnapshot::decode(l, time_slot, timens_slot, rng.as_deref(), cycles)
            .map_err(|e| problem(crate::cli::error_line(&e)))?;
        if snap.data_page != data_slot {
            return Err(problem(
                "the process changed time namespace during the read",
            ));
        }
        Ok(snap)
    }
}

// ---------------------------------------------------------------------------------------------
// Checking a decode against the vDSO
// ---------------------------------------------------------------------------------------------

/// How a decoded value compares with the vDSO's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Coarse: the decoded value is the vDSO's, read at the same `seq`.
    Equal,
    /// Coarse: it is not (a wrong layout, or wrong arithmetic).
    Different,
    /// Coarse: the data changed during every try: nothing compared.
    Unsettled,
    /// Precise: between the two `clock_gettime` calls around the snapshot.
    Inside,
    /// Precise: not between them.
    Outside,
    /// Precise: the clock mode is not `tsc`: nothing to compute.
    Unavailable,
}

impl Verdict {
    /// A disagreement (exit status 1 of `vdso-vvar`).
    pub fn is_bad(self) -> bool {
        matches!(self, Verdict::Different | Verdict::Outside)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Equal => "equal",
            Verdict::Different => "different",
            Verdict::Unsettled => "unsettled",
            Verdict::Inside => "inside",
            Verdict::Outside => "outside",
            Verdict::Unavailable => "unavailable",
        })
    }
}

/// One decoded clock compared with `__vdso_clock_gettime`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// The clock.
    pub clock: Clock,
    /// `coarse` (compared for equality) or `precise` (bracketed).
    pub kind: &'static str,
    /// The outcome.
    pub verdict: Verdict,
    /// The decoded value, ns.
    pub decoded_ns: Option<i128>,
    /// Coarse: the vDSO's value, read after the snapshot at the same `seq`.
    pub vdso_ns: Option<i128>,
    /// Precise: the vDSO's value just before the snapshot.
    pub before_ns: Option<i128>,
    /// Precise: the vDSO's value just after it.
    pub after_ns: Option<i128>,
    /// The real data's `clock_data[CS_HRES_COARSE].seq` of the snapshot compared.
    pub seq: u32,
    /// The real data's clock mode.
    pub clock_mode: String,
}

/// How often a coarse comparison is tried before it is [`Verdict::Unsettled`].
pub const COMPARE_TRIES: usize = 10;

/// Compares decodes of `vvar` with the vDSO (`f`): the coarse clocks (REALTIME_COARSE,
/// MONOTONIC_COARSE) must equal `__vdso_clock_gettime` called after the snapshot while the real
/// data's `seq` did not move (tried up to [`COMPARE_TRIES`] times); precise MONOTONIC (clock
/// mode `tsc` only) must lie between `__vdso_clock_gettime` called just before and just after
/// the snapshot.
pub fn compare_with_vdso(vvar: &Vvar, f: &VdsoClockGettime) -> Result<Vec<Comparison>> {
    let mut out = Vec::new();
    for clock in [Clock::MonotonicCoarse, Clock::RealtimeCoarse] {
        let mut c = None;
        for _ in 0..COMPARE_TRIES {
            let s = vvar.snapshot()?;
            let v = timespec_ns(&f.get(clock)?);
            let seq = s.data.clock_data[s.layout.cs_hres_coarse].seq;
            let mode = s.data.clock_data[s.layout.cs_hres_coarse]
                .clock_mode
                .name
                .clone();
            let decoded = s.coarse(clock);
            let settled = vvar.data_seq() == seq;
            c = Some(Comparison {
                clock,
                kind: "coarse",
                verdict: match (settled, decoded == Some(v)) {
                    (false, _) => Verdict::Unsettled,
                    (true, true) => Verdict::Equal,
                    (true, false) => Verdict::Different,
                },
                decoded_ns: decoded,
                vdso_ns: Some(v),
                before_ns: None,
                after_ns: None,
                seq,
                clock_mode: mode,
            });
            if settled {
                break;
            }
        }
        out.extend(c);
    }
    let before = timespec_ns(&f.get(Clock::Monotonic)?);
    let s = vvar.snapshot()?;
    let after = timespec_ns(&f.get(Clock::Monotonic)?);
    let decoded = s.precise_monotonic();
    out.push(Comparison {
        clock: Clock::Monotonic,
        kind: "precise",
        verdict: match decoded {
            None => Verdict::Unavailable,
            Some(d) if (before..=after).contains(&d) => Verdict::Inside,
            Some(_) => Verdict::Outside,
        },
        decoded_ns: decoded,
        vdso_ns: None,
        before_ns: Some(before),
        after_ns: Some(after),
        seq: s.data.clock_data[s.layout.cs_hres_coarse].seq,
        clock_mode: s.data.clock_data[s.layout.cs_hres_coarse]
            .clock_mode
            .name
            .clone(),
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    /// Linux 7.3, x86_64, `CONFIG_GENERIC_VDSO_OVERFLOW_PROTECT`: worked out by hand from
    /// include/vdso/datapage.h (natural alignment, `vdso_time_data` cacheline aligned), in the
    /// module's format, comments and all.
    pub(crate) const X86_64: &str = include_str!("../tests/data/vvar-layout-x86_64.txt");

    /// The same without `max_cycles` (every later `vdso_clock` field 8 bytes earlier).
    fn without_max_cycles() -> String {
        let mut out = String::new();
        for l in X86_64.lines() {
            let line = match l.split('#').next().unwrap_or("").trim_end() {
                "vdso_clock.max_cycles: 16 8 1" => continue,
                "vdso_clock.mask: 24 8 1" => "vdso_clock.mask: 16 8 1",
                "vdso_clock.mult: 32 4 1" => "vdso_clock.mult: 24 4 1",
                "vdso_clock.shift: 36 4 1" => "vdso_clock.shift: 28 4 1",
                "vdso_clock.basetime: 40 16 12" => "vdso_clock.basetime: 32 16 12",
                "vdso_clock.offset: 40 16 12" => "vdso_clock.offset: 32 16 12",
                "sizeof.vdso_clock: 232" => "sizeof.vdso_clock: 224",
                "vdso_time_data.clock_data: 0 232 2" => "vdso_time_data.clock_data: 0 224 2",
                "vdso_time_data.aux_clock_data: 464 232 8" => {
                    "vdso_time_data.aux_clock_data: 448 224 8"
                }
                "vdso_time_data.tz_minuteswest: 2320 4 1" => {
                    "vdso_time_data.tz_minuteswest: 2240 4 1"
                }
                "vdso_time_data.tz_dsttime: 2324 4 1" => "vdso_time_data.tz_dsttime: 2244 4 1",
                "vdso_time_data.hrtimer_res: 2328 4 1" => "vdso_time_data.hrtimer_res: 2248 4 1",
                "sizeof.vdso_time_data: 2368" => "sizeof.vdso_time_data: 2304",
                _ => l,
            };
            out += line;
            out.push('\n');
        }
        out
    }

    /// Writes values into a synthetic page at the layout's offsets.
    struct Writer<'a> {
        l: &'a Layout,
        page: Vec<u8>,
    }

    impl<'a> Writer<'a> {
        fn new(l: &'a Layout) -> Self {
            Writer {
                l,
                page: vec![0; l.page_size],
            }
        }
        fn put(&mut self, off: usize, bytes: &[u8]) {
            self.page[off..off + bytes.len()].copy_from_slice(bytes);
        }
        fn clock_base(&self, aux: bool, i: usize) -> usize {
            let t = &self.l.time_data;
            if aux {
                t.aux_clock_data.at(i)
            } else {
                t.clock_data.at(i)
            }
        }
        #[allow(clippy::too_many_arguments)]
        fn clock(
            &mut self,
            aux: bool,
            i: usize,
            seq: u32,
            mode: i32,
            cycle_last: u64,
            max_cycles: u64,
            mask: u64,
            mult: u32,
            shift: u32,
        ) {
            let b = self.clock_base(aux, i);
            let c = self.l.time_data.clock.clone();
            self.put(b + c.seq.offset, &seq.to_ne_bytes());
            self.put(b + c.clock_mode.offset, &mode.to_ne_bytes());
            self.put(b + c.cycle_last.offset, &cycle_last.to_ne_bytes());
            if let Some(f) = c.max_cycles {
                self.put(b + f.offset, &max_cycles.to_ne_bytes());
            }
            self.put(b + c.mask.offset, &mask.to_ne_bytes());
            self.put(b + c.mult.offset, &mult.to_ne_bytes());
            self.put(b + c.shift.offset, &shift.to_ne_bytes());
        }
        fn basetime(&mut self, aux: bool, i: usize, id: usize, sec: u64, nsec: u64) {
            let b = self.clock_base(aux, i);
            let c = self.l.time_data.clock.clone();
            let e = b + c.basetime.at(id);
            self.put(e + c.ts_sec.offset, &sec.to_ne_bytes());
            self.put(e + c.ts_nsec.offset, &nsec.to_ne_bytes());
        }
        fn offset(&mut self, i: usize, id: usize, sec: i64, nsec: u64) {
            let b = self.clock_base(false, i);
            let c = self.l.time_data.clock.clone();
            let e = b + c.offset.at(id);
            self.put(e + c.off_sec.offset, &sec.to_ne_bytes());
            self.put(e + c.off_nsec.offset, &nsec.to_ne_bytes());
        }
        fn tz(&mut self, west: i32, dst: i32, res: u32) {
            let t = self.l.time_data.clone();
            self.put(t.tz_minuteswest.offset, &west.to_ne_bytes());
            self.put(t.tz_dsttime.offset, &dst.to_ne_bytes());
            self.put(t.hrtimer_res.offset, &res.to_ne_bytes());
        }
    }

    const SHIFT: u32 = 24;
    const MULT: u32 = 5_592_405; // ~ 2^24 / 3: a 3 GHz counter

    /// A real data page: tsc, MONOTONIC at 1000 s + 0.5 s (shifted), coarse values, RAW.
    fn real_page(l: &Layout, seq: u32) -> Vec<u8> {
        let mut w = Writer::new(l);
        let tsc = l.tsc_mode.unwrap();
        for i in 0..l.cs_bases {
            w.clock(
                false,
                i,
                seq,
                tsc,
                1_000_000,
                1 << 40,
                u64::MAX,
                MULT,
                SHIFT,
            );
        }
        let hres = l.cs_hres_coarse;
        w.basetime(false, hres, 0, 1_700_000_000, 250_000_000 << SHIFT); // REALTIME
        w.basetime(false, hres, 1, 1000, 500_000_000 << SHIFT); // MONOTONIC
        w.basetime(false, hres, 5, 1_700_000_000, 249_000_000); // REALTIME_COARSE
        w.basetime(false, hres, 6, 1000, 499_000_000); // MONOTONIC_COARSE
        w.basetime(false, hres, 7, 1010, 500_000_000 << SHIFT); // BOOTTIME
        w.basetime(false, hres, 11, 1_700_000_037, 250_000_000 << SHIFT); // TAI
        w.basetime(false, l.cs_raw, 4, 999, 7 << SHIFT); // MONOTONIC_RAW
        w.clock(true, 3, 6, tsc, 5, 9, u64::MAX, 3, 1);
        w.basetime(true, 3, VDSO_BASE_AUX, 42, 8 << 1);
        w.tz(-60, 1, 1);
        w.page
    }

    /// A time-namespace page as `timens_setup_vdso_clock_data` writes it.
    fn ns_page(l: &Layout, mono: (i64, u64), boot: (i64, u64)) -> Vec<u8> {
        let mut w = Writer::new(l);
        for i in 0..l.cs_bases {
            w.clock(false, i, 1, l.timens_mode, 0, 0, 0, 0, 0);
            for id in [1, 4, 6] {
                w.offset(i, id, mono.0, mono.1);
            }
            for id in [7, 9] {
                w.offset(i, id, boot.0, boot.1);
            }
        }
        w.page
    }

    fn rng_page(l: &Layout) -> Vec<u8> {
        let mut p = vec![0u8; l.page_size];
        p[l.rng.generation.offset..][..8].copy_from_slice(&77u64.to_ne_bytes());
        p[l.rng.is_ready.offset] = 1;
        p
    }

    #[test]
    fn parses_the_layout() {
        let l = Layout::parse(X86_64).unwrap();
        assert_eq!((l.page_size, l.vdso_pages), (4096, 4));
        assert_eq!((l.time_page, l.timens_page, l.rng_page), (0, 1, 2));
        assert_eq!(l.arch_pages, Some((3, 3)));
        assert_eq!(l.vclock_pages, Some(2));
        assert_eq!(
            (l.vdso_bases, l.cs_bases, l.cs_hres_coarse, l.cs_raw),
            (12, 2, 0, 1)
        );
        assert_eq!((l.max_aux_clocks, l.clock_aux), (8, Some(16)));
        assert_eq!(l.timens_mode, i32::MAX);
        assert_eq!(l.tsc_mode, Some(1));
        assert_eq!(l.clock_mode_name(0), "none");
        assert_eq!(l.clock_mode_name(3), "hvclock");
        assert_eq!(l.clock_mode_name(i32::MAX), "timens");
        assert_eq!(l.clock_mode_name(9), "unknown(9)");
        let c = &l.time_data.clock;
        assert_eq!(c.max_cycles.map(|f| f.offset), Some(16));
        assert_eq!(
            c.basetime,
            Field {
                offset: 40,
                size: 16,
                count: 12
            }
        );
        assert_eq!(l.time_data.aux_clock_data.at(1), 464 + 232);
        assert_eq!(l.rng.is_ready.offset, 8);
        assert_eq!(l.role(0), ClockRole::HresCoarse);
        assert_eq!(l.role(1), ClockRole::Raw);
        // Comments: whole lines and the rest of a line.
        assert_eq!(l.raw["vdso_pages"], "4");
        // Unknown keys are kept and ignored.
        let more = Layout::parse(&format!("{X86_64}future.key: 1 2 3\n")).unwrap();
        assert_eq!(more.raw["future.key"], "1 2 3");
        let l2 = Layout::parse(&without_max_cycles()).unwrap();
        assert_eq!(l2.time_data.clock.max_cycles, None);
        assert_eq!(l2.time_data.clock.size, 224);
    }

    fn err_of(text: &str) -> String {
        format!("{:#}", Layout::parse(text).unwrap_err())
    }

    fn without(key: &str) -> String {
        X86_64
            .lines()
            .filter(|l| !l.starts_with(&format!("{key}:")))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    fn replaced(line: &str, with: &str) -> String {
        assert!(X86_64.lines().any(|l| l.starts_with(line)), "{line}");
        X86_64
            .lines()
            .map(|l| {
                if l.starts_with(line) {
                    format!("{with}\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect()
    }

    #[test]
    fn a_missing_field_is_an_error_naming_it() {
        for key in [
            "page_size",
            "vdso_pages.timens",
            "cs_raw",
            "clock_mode.timens",
            "sizeof.vdso_clock",
            "vdso_clock.seq",
            "vdso_clock.clock_mode",
            "vdso_clock.cycle_last",
            "vdso_clock.mask",
            "vdso_clock.mult",
            "vdso_clock.shift",
            "vdso_clock.basetime",
            "vdso_clock.offset",
            "vdso_timestamp.nsec",
            "timens_offset.sec",
            "vdso_time_data.clock_data",
            "vdso_time_data.aux_clock_data",
            "vdso_time_data.hrtimer_res",
            "vdso_rng_data.is_ready",
        ] {
            let e = err_of(&without(key));
            assert_eq!(e, format!("layout has no `{key}` line"), "{key}");
        }
        // Optional: max_cycles, vclock_pages, clock_aux, the arch pages, the other modes.
        for key in [
            "vclock_pages",
            "clock_aux",
            "vdso_pages.arch_start",
            "clock_mode.pvclock",
        ] {
            Layout::parse(&without(key)).unwrap();
        }
        // Without `clock_mode.tsc`: decodes, but nothing is precise.
        assert_eq!(
            Layout::parse(&without("clock_mode.tsc")).unwrap().tsc_mode,
            None
        );
    }

    #[test]
    fn a_wrong_size_or_shape_is_an_error() {
        let e = err_of(&replaced("vdso_clock.seq:", "vdso_clock.seq: 0 8 1"));
        assert_eq!(
            e,
            "layout: vdso_clock.seq is 8 bytes, but it is a u32 (4 bytes)"
        );
        let e = err_of(&replaced(
            "vdso_rng_data.is_ready:",
            "vdso_rng_data.is_ready: 8 4 1",
        ));
        assert!(e.contains("is_ready is 4 bytes, but it is a u8"), "{e}");
        let e = err_of(&replaced("vdso_clock.mask:", "vdso_clock.mask: 24 8 2"));
        assert!(e.contains("vdso_clock.mask: 2 elements"), "{e}");
        let e = err_of(&replaced(
            "vdso_clock.basetime:",
            "vdso_clock.basetime: 40 16 11",
        ));
        assert!(e.contains("11 elements, but vdso_bases is 12"), "{e}");
        let e = err_of(&replaced(
            "vdso_clock.basetime:",
            "vdso_clock.basetime: 40 8 12",
        ));
        assert!(e.contains("elements of 8 bytes"), "{e}");
        let e = err_of(&replaced("vdso_clock.shift:", "vdso_clock.shift: 230 4 1"));
        assert!(
            e.contains("lies outside sizeof.vdso_clock (232 bytes)"),
            "{e}"
        );
        let e = err_of(&replaced(
            "vdso_time_data.clock_data:",
            "vdso_time_data.clock_data: 0 232 3",
        ));
        assert!(e.contains("3 elements, but cs_bases is 2"), "{e}");
        let e = err_of(&replaced("vdso_pages.rng:", "vdso_pages.rng: 4"));
        assert!(e.contains("not a page of [vvar]"), "{e}");
        let e = err_of(&replaced("vdso_clock.mult:", "vdso_clock.mult: 32 4"));
        assert!(e.contains("not `OFFSET ELEMENT_SIZE COUNT`"), "{e}");
        let e = err_of(&replaced("page_size:", "page_size: lots"));
        assert!(e.contains("page_size: 'lots' is not a number"), "{e}");
        let e = err_of(&format!("{X86_64}cs_raw: 1\n"));
        assert!(e.contains("`cs_raw` is given twice"), "{e}");
        let e = err_of(&format!("{X86_64}not a key value line\n"));
        assert!(e.contains("not a `key: value` line"), "{e}");
        let e = err_of(&replaced(
            "vdso_time_data.aux_clock_data:",
            "vdso_time_data.aux_clock_data: 466 232 8",
        ));
        assert!(
            e.contains("the seq of vdso_time_data.aux_clock_data[] is not 4-byte aligned"),
            "{e}"
        );
        let e = err_of(&replaced(
            "vdso_clock.clock_mode:",
            "vdso_clock.clock_mode: 6 4 1",
        ));
        assert!(
            e.contains("the clock_mode of vdso_time_data.clock_data[] is not 4-byte aligned"),
            "{e}"
        );
    }

    #[test]
    fn decodes_a_root_page() {
        let l = Layout::parse(X86_64).unwrap();
        let page = real_page(&l, 10);
        let rng = rng_page(&l);
        let s = VvarSnapshot::decode(&l, &page, None, Some(&rng), Some(1_000_300)).unwrap();
        s.check().unwrap();
        assert_eq!(s.namespace, Namespace::Root);
        assert_eq!(s.data_page, 0);
        assert!(s.ns_page.is_none());
        let c = &s.data.clock_data[0];
        assert_eq!(c.seq, 10);
        assert_eq!(c.clock_mode.name, "tsc");
        assert_eq!(c.clock_mode.raw, 1);
        assert_eq!(
            (c.cycle_last, c.max_cycles, c.mask, c.mult, c.shift),
            (1_000_000, Some(1 << 40), u64::MAX, MULT, SHIFT)
        );
        assert_eq!(
            c.basetime(1),
            Some(Timestamp {
                sec: 1000,
                nsec: 500_000_000 << SHIFT
            })
        );
        assert_eq!(c.basetime(1).unwrap().ns(Some(SHIFT)), 1_000_500_000_000);
        assert_eq!(c.offset(1), None);
        assert_eq!(
            s.data.clock_data[1].basetime(4).unwrap().ns(Some(SHIFT)),
            999_000_000_007
        );
        let aux = &s.data.aux_clock_data[3];
        assert_eq!(aux.seq, 6);
        assert_eq!(
            aux.basetime(VDSO_BASE_AUX).unwrap().ns(Some(aux.shift)),
            42_000_000_008
        );
        assert_eq!(s.data.aux_clock_data[0].clock_mode.name, "none");
        assert_eq!(s.data.aux_clock_data.len(), 8);
        assert_eq!(
            (s.data.tz_minuteswest, s.data.tz_dsttime, s.data.hrtimer_res),
            (-60, 1, 1)
        );
        assert_eq!(
            s.rng,
            Some(RngData {
                generation: 77,
                is_ready: 1
            })
        );
        // Coarse: as is.
        assert_eq!(s.coarse(Clock::MonotonicCoarse), Some(1_000_499_000_000));
        assert_eq!(
            s.coarse(Clock::RealtimeCoarse),
            Some(1_700_000_000_249_000_000)
        );
        assert_eq!(s.coarse(Clock::Monotonic), None);
        // Precise: 300 cycles at mult/2^24 ~ 1/3 ns: 99 ns (integer arithmetic).
        let d = ns_64(300, MULT, 500_000_000 << SHIFT, SHIFT);
        assert_eq!(d, 500_000_099);
        assert!(s.is_tsc());
        assert_eq!(s.precise_monotonic(), Some(1_000_000_000_000 + 500_000_099));
        assert_eq!(
            s.precise(Clock::Realtime),
            Some(1_700_000_000_000_000_000 + 250_000_099)
        );
        assert_eq!(s.precise(Clock::Boottime), Some(1_010_500_000_099));
        assert_eq!(s.precise(Clock::MonotonicRaw), Some(999_000_000_106));
        assert_eq!(s.precise(Clock::MonotonicCoarse), None);
        // Without a counter value, or on another clock mode: nothing precise.
        let s = VvarSnapshot::decode(&l, &page, None, None, None).unwrap();
        assert_eq!(s.precise_monotonic(), None);
        assert_eq!(s.rng, None);
        let mut none = page.clone();
        for i in 0..2 {
            let o = l.time_data.clock_data.at(i) + l.time_data.clock.clock_mode.offset;
            none[o..o + 4].copy_from_slice(&0i32.to_ne_bytes());
        }
        let s = VvarSnapshot::decode(&l, &none, None, None, Some(1_000_300)).unwrap();
        assert_eq!(s.data.clock_data[0].clock_mode.name, "none");
        assert!(!s.is_tsc());
        assert_eq!(s.precise_monotonic(), None);
        assert_eq!(s.coarse(Clock::MonotonicCoarse), Some(1_000_499_000_000));
        // A short page is an error, not a panic.
        assert!(VvarSnapshot::decode(&l, &page[..100], None, None, None).is_err());
    }

    #[test]
    fn decodes_a_timens_and_real_page_pair() {
        let l = Layout::parse(X86_64).unwrap();
        let ns = ns_page(&l, (86_400, 0), (172_800, 5));
        let real = real_page(&l, 12);
        let err = VvarSnapshot::decode(&l, &ns, None, None, None).unwrap_err();
        assert!(format!("{err:#}").contains("real data page"), "{err:#}");
        let s = VvarSnapshot::decode(&l, &ns, Some(&real), None, Some(1_000_300)).unwrap();
        s.check().unwrap();
        assert_eq!(s.namespace, Namespace::Time);
        assert_eq!(s.data_page, 1);
        let nsp = s.ns_page.as_ref().unwrap();
        let c = &nsp.clock_data[0];
        assert_eq!((c.seq, c.clock_mode.name.as_str()), (1, "timens"));
        assert_eq!(
            c.offset(1),
            Some(NsOffset {
                sec: 86_400,
                nsec: 0
            })
        );
        assert_eq!(
            c.offset(7),
            Some(NsOffset {
                sec: 172_800,
                nsec: 5
            })
        );
        assert_eq!(c.offset(0), Some(NsOffset::default()));
        assert_eq!(c.basetime(1), None);
        assert_eq!(s.data.clock_data[0].clock_mode.name, "tsc");
        let day = 86_400_000_000_000;
        assert_eq!(
            s.coarse(Clock::MonotonicCoarse),
            Some(1_000_499_000_000 + day)
        );
        assert_eq!(
            s.coarse(Clock::RealtimeCoarse),
            Some(1_700_000_000_249_000_000)
        );
        assert_eq!(s.precise_monotonic(), Some(1_000_500_000_099 + day));
        assert_eq!(s.precise(Clock::MonotonicRaw), Some(999_000_000_106 + day));
        assert_eq!(
            s.precise(Clock::Boottime),
            Some(1_010_500_000_099 + 2 * day + 5)
        );
        assert_eq!(s.precise(Clock::Realtime), Some(1_700_000_000_250_000_099));
        // A negative offset.
        let ns = ns_page(&l, (-500, 999_999_999), (0, 0));
        let s = VvarSnapshot::decode(&l, &ns, Some(&real), None, Some(1_000_300)).unwrap();
        assert_eq!(
            s.coarse(Clock::MonotonicCoarse),
            Some(1_000_499_000_000 - 500_000_000_000 + 999_999_999)
        );
        // A namespace page in the timens slot too: inconsistent.
        let s = VvarSnapshot::decode(&l, &ns, Some(&ns), None, None).unwrap();
        let e = format!("{:#}", s.check().unwrap_err());
        assert!(
            e.contains("real time data (page 1) says clock_data[0].clock_mode timens"),
            "{e}"
        );
    }

    #[test]
    fn decodes_a_layout_without_max_cycles() {
        let l = Layout::parse(&without_max_cycles()).unwrap();
        let real = real_page(&l, 4);
        let s = VvarSnapshot::decode(&l, &real, None, None, Some(1_000_300)).unwrap();
        let c = &s.data.clock_data[0];
        assert_eq!(c.max_cycles, None);
        assert_eq!((c.mask, c.mult, c.shift), (u64::MAX, MULT, SHIFT));
        assert_eq!(s.precise_monotonic(), Some(1_000_500_000_099));
        assert_eq!(s.coarse(Clock::MonotonicCoarse), Some(1_000_499_000_000));
        assert_eq!((s.data.tz_minuteswest, s.data.hrtimer_res), (-60, 1));
        // The same page read with the other layout is a different decode, not the same one.
        let other = Layout::parse(X86_64).unwrap();
        let s2 = VvarSnapshot::decode(&other, &real, None, None, Some(1_000_300)).unwrap();
        assert_ne!(s2.data.clock_data[0].mask, u64::MAX);
    }

    fn vc(cycle_last: u64, max_cycles: Option<u64>, mask: u64, mult: u32, shift: u32) -> VdsoClock {
        VdsoClock {
            seq: 0,
            clock_mode: ClockMode {
                raw: 1,
                name: "tsc".into(),
            },
            cycle_last,
            max_cycles,
            mask,
            mult,
            shift,
            bases: Bases::Basetime(vec![]),
        }
    }

    #[test]
    fn the_64_and_128_bit_paths_agree_below_max_cycles() {
        // clocks_calc_max_nsecs: max_cycles = ULLONG_MAX / (mult + maxadj), maxadj 11 %.
        for (mult, shift) in [(MULT, SHIFT), (1 << 31, 32), (4_194_304, 22), (100, 0)] {
            let maxadj = u64::from(mult) * 11 / 100;
            let max_cycles = u64::MAX / (u64::from(mult) + maxadj);
            let base = (999_999_999u64 << shift).min(u64::MAX >> 8);
            let mut x = 0x9e37_79b9_7f4a_7c15u64;
            let mut deltas = vec![0, 1, max_cycles / 2, max_cycles - 1, max_cycles];
            for _ in 0..1000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                deltas.push(x % max_cycles);
            }
            for d in deltas {
                assert_eq!(
                    ns_64(d, mult, base, shift),
                    ns_128(d, mult, base, shift),
                    "delta {d} mult {mult} shift {shift}"
                );
                // And both variants of vdso_calc_ns take the path that gives that value.
                let c = vc(1000, Some(max_cycles), u64::MAX, mult, shift);
                let want = ns_128(d, mult, base, shift);
                assert_eq!(calc_ns(CalcNs::Generic, &c, 1000 + d, base), want);
                assert_eq!(calc_ns(CalcNs::X86, &c, 1000 + d, base), want);
            }
        }
        // Past max_cycles the 64-bit product wraps; the 128-bit path is used and is right.
        let c = vc(7, Some(1 << 32), u64::MAX, 1 << 31, 32);
        let cycles = 7 + (1u64 << 40);
        let base = 5u64 << 32;
        assert_ne!(ns_64(1 << 40, 1 << 31, base, 32), (1 << 39) + 5);
        assert_eq!(calc_ns(CalcNs::Generic, &c, cycles, base), (1 << 39) + 5);
        assert_eq!(calc_ns(CalcNs::X86, &c, cycles, base), (1 << 39) + 5);
        // Without max_cycles the generic path is always 64-bit (as the kernel's).
        let c = vc(7, None, u64::MAX, 1 << 31, 32);
        assert_eq!(
            calc_ns(CalcNs::Generic, &c, cycles, base),
            ns_64(1 << 40, 1 << 31, base, 32)
        );
    }

    #[test]
    fn generic_masks_and_x86_filters_negative_motion() {
        // A 32-bit counter that wrapped: 0xffff_fff0 -> 0x10 is 0x20 cycles (generic masks).
        let c = vc(0xffff_fff0, Some(1 << 20), 0xffff_ffff, 1, 0);
        assert_eq!(calc_ns(CalcNs::Generic, &c, 0x10, 100), 0x20 + 100);
        // x86: a counter read behind cycle_last (TSC wobble across CPUs) gives base >> shift.
        let c = vc(1_000_000, Some(1 << 40), u64::MAX, 3, 1);
        assert_eq!(calc_ns(CalcNs::X86, &c, 999_000, 20 << 1), 20);
        // The generic one has no such filter: a huge delta, the 128-bit path.
        assert_eq!(
            calc_ns(CalcNs::Generic, &c, 999_000, 20 << 1),
            ns_128(999_000u64.wrapping_sub(1_000_000), 3, 40, 1)
        );
        // Degenerate shifts do not panic.
        let c = vc(0, None, u64::MAX, 1, 200);
        assert_eq!(calc_ns(CalcNs::Generic, &c, 5, 1), 0);
        assert_eq!(calc_ns(CalcNs::X86, &c, 5, 1), 0);
    }

    #[test]
    fn formats_ns() {
        assert_eq!(fmt_ns(1_000_500_000_099), "1000.500000099");
        assert_eq!(fmt_ns(-1_500_000_000), "-1.500000000");
        assert_eq!(fmt_ns(0), "0.000000000");
        assert_eq!(clock_name(7), "BOOTTIME");
        assert_eq!(clock_name(16), "CLOCK_16");
    }

    /// An anonymous 4-page stand-in for `[vvar]`, written by the test.
    struct FakeVvar {
        addr: usize,
        len: usize,
    }

    impl FakeVvar {
        fn new(l: &Layout) -> Self {
            let len = l.vdso_pages * l.page_size;
            FakeVvar {
                addr: crate::testing::anon_shared_mapping(len),
                len,
            }
        }
        fn write(&self, l: &Layout, slot: usize, bytes: &[u8]) {
            // SAFETY: our writable mapping, the page inside it.
            unsafe {
                ptr::copy_nonoverlapping(
                    bytes.as_ptr(),
                    (self.addr + slot * l.page_size) as *mut u8,
                    bytes.len().min(l.page_size),
                )
            };
        }
        fn vvar(&self, l: &Layout, rng: bool) -> Vvar {
            // SAFETY: the mapping lives until `self` drops, after the Vvar (test scope).
            unsafe { Vvar::at(l.clone(), self.addr, self.addr + self.len, rng) }.unwrap()
        }
    }

    impl Drop for FakeVvar {
        fn drop(&mut self) {
            // SAFETY: our own mapping.
            unsafe { libc::munmap(self.addr as *mut libc::c_void, self.len) };
        }
    }

    #[test]
    fn reads_a_mapped_root_and_namespace_vvar() {
        let l = Layout::parse(X86_64).unwrap();
        let fake = FakeVvar::new(&l);
        fake.write(&l, 0, &real_page(&l, 8));
        fake.write(&l, 2, &rng_page(&l));
        let v = fake.vvar(&l, true);
        assert_eq!(v.namespace(), Namespace::Root);
        assert_eq!(v.data_seq(), 8);
        let s = v.snapshot().unwrap();
        s.check().unwrap();
        assert_eq!(s.namespace, Namespace::Root);
        assert_eq!(s.rng.map(|r| r.generation), Some(77));
        assert_eq!(s.coarse(Clock::MonotonicCoarse), Some(1_000_499_000_000));
        #[cfg(target_arch = "x86_64")]
        assert!(s.cycles.is_some(), "tsc mode: the counter is read");
        // The namespace pair: slot 0 the namespace page, slot 1 the real data.
        fake.write(&l, 0, &ns_page(&l, (86_400, 0), (172_800, 0)));
        fake.write(&l, 1, &real_page(&l, 20));
        assert_eq!(v.namespace(), Namespace::Time);
        assert_eq!(v.data_seq(), 20);
        let s = v.snapshot().unwrap();
        s.check().unwrap();
        assert_eq!((s.namespace, s.data_page), (Namespace::Time, 1));
        assert_eq!(s.data.clock_data[0].seq, 20);
        assert_eq!(
            s.coarse(Clock::MonotonicCoarse),
            Some(1_000_499_000_000 + 86_400_000_000_000)
        );
        // A seq that stays odd: the read gives up with an error.
        fake.write(&l, 1, &real_page(&l, 21));
        let e = format!("{:#}", v.snapshot().unwrap_err());
        assert!(e.contains("did not settle"), "{e}");
        // Too small a mapping, an unaligned one.
        // SAFETY: never read (the constructor fails).
        let short = unsafe { Vvar::at(l.clone(), fake.addr, fake.addr + 4096, false) };
        assert!(format!("{:#}", short.unwrap_err()).contains("vdso_pages"));
        // SAFETY: as above.
        let odd = unsafe { Vvar::at(l.clone(), fake.addr + 8, fake.addr + fake.len, false) };
        assert!(odd.is_err());
    }

    /// A writer thread rewrites the page under the sequence protocol (every coarse field and
    /// the aux clock equal to the update number) while snapshots must each be one generation.
    #[test]
    fn snapshots_are_never_torn() {
        let l = Layout::parse(X86_64).unwrap();
        let fake = FakeVvar::new(&l);
        fake.write(&l, 0, &real_page(&l, 0));
        let v = fake.vvar(&l, false);
        let t = &l.time_data;
        let c = &t.clock;
        let seq0 = fake.addr + t.clock_data.at(0) + c.seq.offset;
        let seq1 = fake.addr + t.clock_data.at(1) + c.seq.offset;
        let aux = t.aux_clock_data.at(3);
        let aux_seq = fake.addr + aux + c.seq.offset;
        let mono_coarse = fake.addr + t.clock_data.at(0) + c.basetime.at(6) + c.ts_sec.offset;
        let real_coarse = fake.addr + t.clock_data.at(0) + c.basetime.at(5) + c.ts_sec.offset;
        let aux_sec = fake.addr + aux + c.basetime.at(VDSO_BASE_AUX) + c.ts_sec.offset;
        let aux_nsec = fake.addr + aux + c.basetime.at(VDSO_BASE_AUX) + c.ts_nsec.offset;
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let atom = |a: usize| {
                    // SAFETY: aligned u32 in the test's writable mapping, alive until join.
                    unsafe { AtomicU32::from_ptr(a as *mut u32) }
                };
                let bump = |a: usize| {
                    let s = atom(a);
                    s.store(s.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
                };
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    bump(seq0);
                    bump(seq1);
                    fence(Ordering::Release);
                    // SAFETY: aligned u64 fields of the writable mapping.
                    unsafe {
                        ptr::write_volatile(mono_coarse as *mut u64, n);
                        ptr::write_volatile(real_coarse as *mut u64, n);
                    }
                    fence(Ordering::Release);
                    bump(seq0);
                    bump(seq1);
                    // The aux clock under its own seq, half the time.
                    if n % 2 == 0 {
                        bump(aux_seq);
                        fence(Ordering::Release);
                        // SAFETY: as above.
                        unsafe {
                            ptr::write_volatile(aux_sec as *mut u64, n);
                            ptr::write_volatile(aux_nsec as *mut u64, n);
                        }
                        fence(Ordering::Release);
                        bump(aux_seq);
                    }
                }
                n
            })
        };
        let check = || -> std::result::Result<(), String> {
            let t0 = Instant::now();
            while v.data_seq() < 4 {
                if t0.elapsed() > Duration::from_secs(10) {
                    return Err("the writer made no update in 10 s".into());
                }
                std::thread::yield_now();
            }
            let mut last = 0;
            for _ in 0..5000 {
                let s = v.snapshot().map_err(|e| format!("{e:#}"))?;
                let c0 = &s.data.clock_data[0];
                let (m, r) = (c0.basetime(6).unwrap().sec, c0.basetime(5).unwrap().sec);
                let a = s.data.aux_clock_data[3].basetime(VDSO_BASE_AUX).unwrap();
                if m != r || m < last || a.sec != a.nsec || c0.seq % 2 != 0 {
                    return Err(format!("torn: mono {m} real {r} aux {a:?} seq {}", c0.seq));
                }
                last = m;
            }
            Ok(())
        };
        let result = check();
        stop.store(true, Ordering::Relaxed);
        let n = writer.join().unwrap();
        result.unwrap();
        assert!(n > 0);
    }
}
