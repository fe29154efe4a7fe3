// SPDX-License-Identifier: GPL-2.0
//! What the workspace's tests share (the library's unit tests and the tools' integration tests).

use std::path::PathBuf;

/// `VDSO_PROBE_REQUIRE_TOOLS=1` (as `make check` sets it, after scripts/setup installed
/// everything): a test that cannot run fails instead of passing untested.
fn required() -> bool {
    std::env::var("VDSO_PROBE_REQUIRE_TOOLS").as_deref() == Ok("1")
}

/// Finds a host tool (`objdump`, `readelf`, `gcc`, ...) in `PATH`. Missing, the calling test
/// skips, unless `VDSO_PROBE_REQUIRE_TOOLS=1` (as `make check` sets it): then a missing tool
/// fails the test instead of letting it pass untested.
#[doc(hidden)]
pub fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() && required() {
        panic!("{name} is not in PATH, and VDSO_PROBE_REQUIRE_TOOLS=1: install it (scripts/setup)");
    }
    found
}

/// A test that cannot run here for `reason` (no 32-bit multilib, no IA32 emulation, ...): says
/// so and lets the caller return, unless `VDSO_PROBE_REQUIRE_TOOLS=1` (`make check`, where
/// scripts/setup installed everything): then it fails the test instead of letting it pass
/// untested.
#[doc(hidden)]
pub fn skip(reason: impl std::fmt::Display) {
    if required() {
        panic!("cannot run: {reason} (VDSO_PROBE_REQUIRE_TOOLS=1: scripts/setup provides it)");
    }
    eprintln!("skipped: {reason}");
}

/// A test that cannot run on this machine for a reason no installation fixes (the clocksource
/// cannot be read from userspace, the module is loaded on the host, not root): says so and lets
/// the caller return. Under `make check` (`VDSO_PROBE_SKIP_LOG` set) the test's name and reason
/// are appended to that file, so that it is counted as a skip, not as a pass.
#[doc(hidden)]
pub fn skip_env(reason: impl std::fmt::Display) {
    eprintln!("skipped: {reason}");
    if let Some(log) = std::env::var_os("VDSO_PROBE_SKIP_LOG") {
        use std::io::Write;
        let name = std::thread::current()
            .name()
            .unwrap_or("(unnamed test)")
            .to_string();
        let line = format!("{name}: {reason}\n");
        // One write of one line to an O_APPEND file: lines of parallel tests do not mix.
        let wrote = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = wrote {
            panic!("cannot record the skip in {}: {e}", log.to_string_lossy());
        }
    }
}

/// The symbol lines of an `objdump -T` style listing (ours or binutils'), verbatim.
#[doc(hidden)]
pub fn symbol_lines(text: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| !l.starts_with("DYNAMIC SYMBOL TABLE:"))
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// Waits until `pid`'s exec is complete and returns its `AT_SYSINFO_EHDR`; panics after 10 s.
/// A process's comm changes, and its new mm's saved auxv reads as one zero `AT_NULL` pair (16
/// bytes, not empty), from `exec_mmap` on: before `load_elf_binary` maps the vDSO
/// (`ARCH_SETUP_ADDITIONAL_PAGES`). `create_elf_tables` writes `AT_SYSINFO_EHDR` after that,
/// so this entry is the sign that the vDSO is mapped (a 64-bit process, with a vDSO).
#[doc(hidden)]
pub fn wait_exec_done(pid: u32) -> u64 {
    let auxv = format!("/proc/{pid}/auxv");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let a = std::fs::read(&auxv).unwrap_or_default();
        if let Some(ehdr) = crate::report::auxv_entry(&a, 8, libc::AT_SYSINFO_EHDR) {
            return ehdr;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "pid {pid} has no AT_SYSINFO_EHDR in {auxv} after 10 s: {a:02x?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// A fresh shared anonymous read-write mapping of `len` bytes (a test's stand-in for a page the
/// kernel writes), its address; the caller unmaps it.
#[doc(hidden)]
pub fn anon_shared_mapping(len: usize) -> usize {
    // SAFETY: a fresh anonymous mapping at an address of the kernel's choosing: it aliases
    // nothing.
    let addr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(addr, libc::MAP_FAILED, "mmap of {len} anonymous bytes");
    addr as usize
}
