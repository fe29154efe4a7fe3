// SPDX-License-Identifier: GPL-2.0
//! Clocks and the raw time system calls (what the vDSO is compared with).

use std::fmt;
use std::str::FromStr;

use anyhow::{anyhow, Context, Result};
use serde::Serialize;

/// The POSIX clocks the vDSO implements (or falls back to the syscall for).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Clock {
    /// `CLOCK_REALTIME`
    Realtime,
    /// `CLOCK_MONOTONIC`
    Monotonic,
    /// `CLOCK_MONOTONIC_RAW`
    MonotonicRaw,
    /// `CLOCK_BOOTTIME`
    Boottime,
    /// `CLOCK_TAI`
    Tai,
    /// `CLOCK_REALTIME_COARSE`
    RealtimeCoarse,
    /// `CLOCK_MONOTONIC_COARSE`
    MonotonicCoarse,
}

impl Clock {
    /// Every clock, in the order the benchmark reports them.
    pub const ALL: [Clock; 7] = [
        Clock::Realtime,
        Clock::Monotonic,
        Clock::MonotonicRaw,
        Clock::Boottime,
        Clock::Tai,
        Clock::RealtimeCoarse,
        Clock::MonotonicCoarse,
    ];

    /// The `clockid_t` value.
    pub fn id(self) -> libc::clockid_t {
        match self {
            Clock::Realtime => libc::CLOCK_REALTIME,
            Clock::Monotonic => libc::CLOCK_MONOTONIC,
            Clock::MonotonicRaw => libc::CLOCK_MONOTONIC_RAW,
            Clock::Boottime => libc::CLOCK_BOOTTIME,
            Clock::Tai => libc::CLOCK_TAI,
            Clock::RealtimeCoarse => libc::CLOCK_REALTIME_COARSE,
            Clock::MonotonicCoarse => libc::CLOCK_MONOTONIC_COARSE,
        }
    }

    /// The name without the `CLOCK_` prefix, e.g. `MONOTONIC_RAW`.
    pub fn short_name(self) -> &'static str {
        match self {
            Clock::Realtime => "REALTIME",
            Clock::Monotonic => "MONOTONIC",
            Clock::MonotonicRaw => "MONOTONIC_RAW",
            Clock::Boottime => "BOOTTIME",
            Clock::Tai => "TAI",
            Clock::RealtimeCoarse => "REALTIME_COARSE",
            Clock::MonotonicCoarse => "MONOTONIC_COARSE",
        }
    }
}

impl fmt::Display for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CLOCK_{}", self.short_name())
    }
}

impl FromStr for Clock {
    type Err = anyhow::Error;

    /// Accepts `monotonic`, `MONOTONIC`, `CLOCK_MONOTONIC`, `monotonic-raw`, ...
    fn from_str(s: &str) -> Result<Self> {
        let upper = s.trim().to_ascii_uppercase().replace('-', "_");
        let bare = upper.strip_prefix("CLOCK_").unwrap_or(&upper);
        Clock::ALL
            .into_iter()
            .find(|c| c.short_name() == bare)
            .ok_or_else(|| {
                let names: Vec<_> = Clock::ALL.iter().map(|c| c.short_name()).collect();
                anyhow!(
                    "unknown clock {}; expected one of {}",
                    crate::cli::quote(s),
                    names.join(", ")
                )
            })
    }
}

/// A zeroed `timespec`.
pub fn zero_timespec() -> libc::timespec {
    libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    }
}

/// A zeroed `timeval`.
pub fn zero_timeval() -> libc::timeval {
    libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    }
}

/// `timespec` as nanoseconds (valid for any clock value a running system produces).
pub fn timespec_ns(ts: &libc::timespec) -> i128 {
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

/// Raw `clock_gettime` system call (never the vDSO). Returns the kernel's return value
/// (0 on success, -1 with `errno` set on failure, as `syscall(2)` reports it).
#[inline]
pub fn raw_syscall_clock_gettime(clock: libc::clockid_t, ts: &mut libc::timespec) -> libc::c_long {
    // SAFETY: SYS_clock_gettime takes (clockid_t, struct __kernel_timespec *). On x86_64
    // `libc::timespec` has the same layout as `__kernel_timespec` (two 64-bit fields), and `ts`
    // is a valid, exclusively borrowed pointer for the duration of the call. An invalid clock
    // id makes the kernel return -EINVAL without touching memory.
    unsafe { libc::syscall(libc::SYS_clock_gettime, clock, ts as *mut libc::timespec) }
}

/// Raw `gettimeofday` system call (never the vDSO), with a NULL timezone.
#[inline]
pub fn raw_syscall_gettimeofday(tv: &mut libc::timeval) -> libc::c_long {
    // SAFETY: SYS_gettimeofday takes (struct timeval *, struct timezone *); `tv` is a valid,
    // exclusively borrowed `timeval` (the kernel layout on x86_64) and the timezone pointer
    // is NULL, which the kernel accepts and ignores.
    unsafe {
        libc::syscall(
            libc::SYS_gettimeofday,
            tv as *mut libc::timeval,
            std::ptr::null_mut::<libc::timezone>(),
        )
    }
}

/// Reads `clock` through the raw system call.
pub fn syscall_clock_gettime(clock: libc::clockid_t) -> Result<libc::timespec> {
    let mut ts = zero_timespec();
    if raw_syscall_clock_gettime(clock, &mut ts) != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("syscall(SYS_clock_gettime, {clock})"));
    }
    Ok(ts)
}

/// Reads `clock` through libc's `clock_gettime` (which itself uses the vDSO when it can).
pub fn libc_clock_gettime(clock: libc::clockid_t) -> Result<libc::timespec> {
    let mut ts = zero_timespec();
    // SAFETY: `ts` is a valid, exclusively borrowed timespec; libc validates the clock id.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("clock_gettime({clock})"));
    }
    Ok(ts)
}
