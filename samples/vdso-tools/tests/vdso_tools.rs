// SPDX-License-Identifier: GPL-2.0
//! Host integration tests: run the vdso-* binaries and check their output against binutils
//! and against the kernel.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use vdso_probe::child::VdsoChild;

fn run(bin: &str, args: &[&str]) -> Output {
    let out = Command::new(bin)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {bin}: {e}"));
    assert!(
        out.status.success(),
        "{bin} {args:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("UTF-8 output")
}

use vdso_probe::testing::{skip, skip_env, symbol_lines, tool, wait_exec_done};

/// A path in a directory of its own, removed (with whatever was written there) on drop.
struct TempFile {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl TempFile {
    fn new(tag: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("vdso-tools-test-")
            .tempdir()
            .expect("a temporary directory");
        let path = dir.path().join(tag);
        TempFile { _dir: dir, path }
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn str(&self) -> &str {
        self.path.to_str().expect("UTF-8 temp path")
    }
}

/// Value of a `key:   value` line.
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim_start_matches(':').trim())
}

fn clocksource() -> Option<String> {
    std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
        .ok()
        .map(|s| s.trim().to_string())
}

#[test]
fn dump_is_accepted_by_objdump_and_readelf() {
    let file = TempFile::new("dump");
    let out = run(env!("CARGO_BIN_EXE_vdso-dump"), &["-o", file.str()]);
    let text = stdout(&out);
    let size: usize = field(&text, "size")
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("size line");
    assert_eq!(std::fs::metadata(file.path()).unwrap().len() as usize, size);
    assert!(
        field(&text, "address").unwrap().starts_with("0x7"),
        "{text}"
    );
    let build_id = field(&text, "build-id").expect("build-id line");

    for (name, args) in [("objdump", &["-T"][..]), ("readelf", &["-a", "-W"][..])] {
        let Some(t) = tool(name) else {
            eprintln!("skipped {name}: not found in PATH");
            continue;
        };
        let o = Command::new(t)
            .args(args)
            .arg(file.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "{name} rejected the dump");
        assert!(
            o.stderr.is_empty(),
            "{name} complained: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        if name == "readelf" {
            let re = String::from_utf8_lossy(&o.stdout);
            assert!(re.contains(&format!("Build ID: {build_id}")), "{re}");
            assert!(
                re.contains("Type:                              DYN"),
                "{re}"
            );
        }
    }
}

#[test]
fn syms_output_equals_objdump_t() {
    let Some(objdump) = tool("objdump") else {
        skip("objdump not found in PATH");
        return;
    };
    let file = TempFile::new("syms");
    run(env!("CARGO_BIN_EXE_vdso-dump"), &["-o", file.str()]);
    let theirs = Command::new(objdump)
        .arg("-T")
        .arg(file.path())
        .output()
        .unwrap();
    assert!(theirs.status.success());
    let theirs = String::from_utf8_lossy(&theirs.stdout).into_owned();
    // Verbatim: the TAB, the 16-digit columns and the version padding.
    let table = symbol_lines;
    let expected = table(&theirs);
    assert!(
        !expected.is_empty(),
        "objdump printed no symbols:\n{theirs}"
    );

    // From the file and from the live mapping.
    let from_file = table(&stdout(&run(
        env!("CARGO_BIN_EXE_vdso-syms"),
        &[file.str()],
    )));
    let live = table(&stdout(&run(env!("CARGO_BIN_EXE_vdso-syms"), &[])));
    assert_eq!(from_file, expected);
    assert_eq!(live, expected);
    assert!(
        expected
            .iter()
            .any(|l| l.ends_with("  LINUX_2.6   __vdso_clock_gettime")),
        "{expected:#?}"
    );
}

#[test]
fn dump_by_pid_matches_own_vdso() {
    let Some(sleep) = tool("sleep") else {
        skip("sleep not found in PATH");
        return;
    };
    let mut child = Command::new(&sleep).arg("30").spawn().unwrap();
    let pid = child.id().to_string();
    // Dump only after its exec finished (with the old wait, on the comm and a non-empty auxv,
    // `vdso-dump --pid` ran in the window before the vDSO is mapped: "has no [vdso] mapping").
    let ehdr = wait_exec_done(child.id());
    let theirs = TempFile::new("pid");
    let ours = TempFile::new("own");
    let out = Command::new(env!("CARGO_BIN_EXE_vdso-dump"))
        .args(["--pid", &pid, "-o", theirs.str()])
        .output()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    run(env!("CARGO_BIN_EXE_vdso-dump"), &["-o", ours.str()]);
    // Every process maps the same vDSO image.
    let (theirs, ours) = (
        std::fs::read(theirs.path()).unwrap(),
        std::fs::read(ours.path()).unwrap(),
    );
    assert!(
        theirs == ours,
        "pid {pid}'s vDSO (at {ehdr:#x}, {} bytes, first difference at {:?}) differs from ours \
         ({} bytes)",
        theirs.len(),
        theirs.iter().zip(&ours).position(|(a, b)| a != b),
        ours.len()
    );
}

/// `--whole-mapping` writes the whole `[vdso]` mapping, as long as /proc/self/maps says it
/// is: the image, then zeros; and the text says both sizes.
#[test]
fn dump_whole_mapping_is_the_image_and_zeros() {
    let (file, whole) = (TempFile::new("wm-file"), TempFile::new("wm-whole"));
    let text = stdout(&run(env!("CARGO_BIN_EXE_vdso-dump"), &["-o", file.str()]));
    run(
        env!("CARGO_BIN_EXE_vdso-dump"),
        &["--whole-mapping", "-o", whole.str()],
    );
    let maps = vdso_probe::report::parse_maps(&std::fs::read_to_string("/proc/self/maps").unwrap())
        .unwrap();
    let vdso = maps.iter().find(|m| m.name == "[vdso]").expect("[vdso]");
    let (image, mapping) = (
        std::fs::read(file.path()).unwrap(),
        std::fs::read(whole.path()).unwrap(),
    );
    assert_eq!(mapping.len() as u64, vdso.end - vdso.start);
    assert!(mapping.starts_with(&image) && mapping[image.len()..].iter().all(|&b| b == 0));
    assert!(
        text.contains(&format!(
            "mapping:  {} bytes ({} pages); the {} bytes after the file are zeros",
            mapping.len(),
            mapping.len() / 4096,
            mapping.len() - image.len()
        )),
        "{text}"
    );
}

/// `--compare`: exit 0 against our own dump, 1 when a byte outside the alternative sites
/// differs (with the offset in the verdict), 2 for a file that is not a vDSO image.
#[test]
fn dump_compare_exit_codes() {
    let own = TempFile::new("cmp-own");
    run(env!("CARGO_BIN_EXE_vdso-dump"), &["-o", own.str()]);
    let compare = |built: &str| {
        Command::new(env!("CARGO_BIN_EXE_vdso-dump"))
            .args(["--compare", built])
            .output()
            .unwrap()
    };
    let same = compare(own.str());
    assert_eq!(same.status.code(), Some(0), "{same:?}");
    assert!(
        stdout(&same).contains("rewritten at boot, no other byte differs"),
        "{}",
        stdout(&same)
    );
    let mut image = std::fs::read(own.path()).unwrap();
    image[9] ^= 0xff; // EI_PAD: in no alternative site
    let patched = TempFile::new("cmp-patched");
    std::fs::write(patched.path(), &image).unwrap();
    let differs = compare(patched.str());
    assert_eq!(differs.status.code(), Some(1), "{differs:?}");
    assert!(
        stdout(&differs).contains("1 other bytes differ, the first at 0x9"),
        "{}",
        stdout(&differs)
    );
    let not_elf = TempFile::new("cmp-text");
    std::fs::write(not_elf.path(), b"not an ELF file\n").unwrap();
    let bad = compare(not_elf.str());
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.starts_with("vdso-dump: comparing with "), "{err}");
}

#[test]
fn call_result_between_syscalls() {
    for clock in ["monotonic", "realtime", "monotonic-raw", "boottime", "tai"] {
        let out = run(env!("CARGO_BIN_EXE_vdso-call"), &["--clock", clock]);
        assert!(stdout(&out).contains("OK: syscall <= vDSO <= syscall"));
    }
    let bad = Command::new(env!("CARGO_BIN_EXE_vdso-call"))
        .args(["--clock", "bogus"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    // A clockid by number: CLOCK_MONOTONIC is 1; no kernel has clock 9999 (exit 2, one line).
    let by_id = run(env!("CARGO_BIN_EXE_vdso-call"), &["--clock-id", "1"]);
    assert!(stdout(&by_id).contains("OK: syscall <= vDSO <= syscall"));
    let refused = Command::new(env!("CARGO_BIN_EXE_vdso-call"))
        .args(["--clock-id", "9999"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert!(
        err.starts_with("vdso-call: ") && err.lines().count() == 1,
        "{err}"
    );
}

/// First CPU this process may run on (from `Cpus_allowed_list`), for `--cpu`.
fn allowed_cpu() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .map(|l| l.trim().split(['-', ',']).next().unwrap_or("0").to_string())
        })
        .unwrap_or_else(|| "0".to_string())
}

#[test]
fn bench_json_and_classic() {
    let cpu = allowed_cpu();
    let out = run(
        env!("CARGO_BIN_EXE_vdso-bench"),
        &[
            "--batches",
            "5",
            "--batch-size",
            "50",
            "--json",
            "--classic",
            "--classic-iterations",
            "1000",
            "--cpu",
            &cpu,
        ],
    );
    let doc = json_document(&out, "vdso-bench", "runs");
    let v = &doc["runs"][0];
    assert_eq!(v["config"]["batches"], 5);
    assert_eq!(v["environment"]["pinned_cpu"].to_string(), cpu);
    assert!(v["environment"]["kernel"]["release"].is_string());
    let rows = v["rows"].as_array().unwrap();
    let row = |name: &str| {
        rows.iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("no row {name}"))
    };
    for name in [
        "gettimeofday vdso",
        "gettimeofday syscall",
        "clock_gettime MONOTONIC vdso",
        "clock_gettime MONOTONIC syscall",
        "clock_gettime MONOTONIC_COARSE vdso",
    ] {
        let r = row(name);
        assert_eq!(r["status"], "measured", "{r}");
        let f = |k: &str| r[k].as_f64().unwrap_or_else(|| panic!("{k} in {r}"));
        assert!(f("min_ns") > 0.0, "{r}");
        assert!(
            f("p10_ns") <= f("median_ns") && f("median_ns") <= f("p90_ns"),
            "{r}"
        );
    }
    // Measured on emulate only without --xonly-vsyscall (bench_xonly_vsyscall has the flag).
    let vsyscall = row("gettimeofday vsyscall");
    let mode = &v["environment"]["vsyscall"];
    assert_eq!(
        vsyscall["status"] == "measured",
        mode == "emulate",
        "{vsyscall}"
    );
    if mode == "none" {
        assert_eq!(vsyscall["reason"], "no [vsyscall] mapping (vsyscall=none)");
    }
    if mode == "xonly" {
        assert_eq!(vsyscall["reason"], vdso_probe::bench::XONLY_SKIP);
    }
    let c = &v["classic"];
    for k in ["libc", "syscall"] {
        for unit in ["ns", "cycles"] {
            let f = c[format!("{k}_gettimeofday_{unit}_per_call")].as_f64();
            assert!(f.is_some_and(|f| f > 0.0), "{k} {unit}: {c}");
        }
    }
    // The vsyscall loop runs on emulate only without --xonly-vsyscall.
    assert_eq!(
        c["vsyscall_gettimeofday_ns_per_call"].is_f64(),
        mode == "emulate",
        "{c}"
    );
    // Without --cpu or --no-pin the tool pins itself (to the CPU it started on).
    let out = run(
        env!("CARGO_BIN_EXE_vdso-bench"),
        &["--batches", "2", "--batch-size", "10", "--json"],
    );
    let doc = json_document(&out, "vdso-bench", "runs");
    assert!(
        doc["runs"][0]["environment"]["pinned_cpu"].is_u64(),
        "{doc}"
    );
}

/// `--xonly-vsyscall`: the vsyscall row is measured wherever the page is executable.
#[test]
fn bench_xonly_vsyscall() {
    let out = run(
        env!("CARGO_BIN_EXE_vdso-bench"),
        &[
            "--batches",
            "3",
            "--batch-size",
            "10",
            "--json",
            "--xonly-vsyscall",
        ],
    );
    let doc = json_document(&out, "vdso-bench", "runs");
    let v = &doc["runs"][0];
    let mode = &v["environment"]["vsyscall"];
    let row = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "gettimeofday vsyscall")
        .expect("a vsyscall row")
        .clone();
    assert_eq!(
        row["status"] == "measured",
        mode == "emulate" || mode == "xonly",
        "{row}"
    );
}

#[test]
fn bench_table_has_stamps() {
    let out = run(
        env!("CARGO_BIN_EXE_vdso-bench"),
        &["--batches", "3", "--batch-size", "10"],
    );
    let text = stdout(&out);
    for key in [
        "kernel",
        "clocksource",
        "vsyscall",
        "cpu",
        "hypervisor",
        "tsc",
    ] {
        assert!(field(&text, key).is_some(), "missing {key}:\n{text}");
    }
    assert!(text.contains("clock_gettime TAI syscall"), "{text}");
}

#[test]
fn strace_demo_counts() {
    let n = 300u64;
    let out = run(
        env!("CARGO_BIN_EXE_vdso-strace-demo"),
        &["-n", &n.to_string(), "--json"],
    );
    let doc = json_document(&out, "vdso-strace-demo", "runs");
    let v = &doc["runs"][0];
    assert_eq!(v["calls"], n);
    assert_eq!(v["syscall"], n);
    match clocksource()
        .as_deref()
        .map(vdso_probe::vdso::vdso_clock_mode)
    {
        Some(vdso_probe::vdso::VdsoClockMode::Capable) => assert_eq!(v["vdso"], 0, "{v}"),
        Some(vdso_probe::vdso::VdsoClockMode::Fallback) => assert_eq!(v["vdso"], n, "{v}"),
        _ => skip_env(format!(
            "vDSO count not asserted: clocksource {:?} unknown",
            clocksource()
        )),
    }
    let text = stdout(&run(env!("CARGO_BIN_EXE_vdso-strace-demo"), &["-n", "10"]));
    assert!(text.contains("syscall path: 10 for 10 calls"), "{text}");
}

/// A running ia32 process: `samples/guest-tests/c/static32.c` built with `gcc -m32 -static`.
/// It prints its `AT_SYSINFO_EHDR` and waits for stdin to close; killed on drop.
struct Ia32Helper {
    child: VdsoChild,
    _exe: TempFile,
}

impl Ia32Helper {
    /// Builds and starts the helper; `None`, with the reason printed, where that is not
    /// possible (no gcc, no 32-bit multilib, no IA32 emulation in the kernel).
    fn start() -> Option<Self> {
        let Some(gcc) = tool("gcc") else {
            skip("gcc not found in PATH");
            return None;
        };
        // The source as compiled in, not by the checkout's path (see vdso-probe's start_ia32).
        let source = TempFile::new("static32.c");
        std::fs::write(
            source.path(),
            include_str!("../../guest-tests/c/static32.c"),
        )
        .unwrap();
        let src = source.path();
        let exe = TempFile::new("static32");
        let cc = Command::new(gcc)
            .args(["-m32", "-static", "-O2", "-o"])
            .arg(exe.path())
            .arg(src)
            .output()
            .unwrap();
        if !cc.status.success() {
            skip(format!(
                "gcc -m32 -static cannot build {} (gcc-multilib missing?): {}",
                src.display(),
                String::from_utf8_lossy(&cc.stderr)
            ));
            return None;
        }
        match VdsoChild::spawn(exe.path()) {
            Ok(child) => Some(Ia32Helper { child, _exe: exe }),
            Err(e) => {
                skip(format!("{e}; no IA32 emulation?"));
                None
            }
        }
    }
}

#[test]
fn ia32_dump_syms_equal_objdump() {
    let Some(objdump) = tool("objdump") else {
        skip("objdump not found in PATH");
        return;
    };
    let Some(helper) = Ia32Helper::start() else {
        return;
    };
    let file = TempFile::new("ia32");
    let pid = helper.child.pid().to_string();
    let text = stdout(&run(
        env!("CARGO_BIN_EXE_vdso-dump"),
        &["--pid", &pid, "-o", file.str()],
    ));
    let vdso = helper.child.vdso();
    // vdso-syms --pid reads the same image itself.
    let by_pid = stdout(&run(exe("vdso-syms"), &["--pid", &pid]));
    drop(helper);
    assert_eq!(
        by_pid,
        stdout(&run(exe("vdso-syms"), &[file.str()])),
        "vdso-syms --pid {pid} against vdso-syms of its dump"
    );
    let address = field(&text, "address")
        .and_then(|a| a.strip_prefix("0x"))
        .and_then(|a| u64::from_str_radix(a, 16).ok());
    assert_eq!(address, Some(vdso), "{text}");
    assert_eq!(field(&text, "abi"), Some("ia32 (ELF32, EM_386)"), "{text}");
    let size: u64 = field(&text, "size")
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("size line");
    assert_eq!(std::fs::metadata(file.path()).unwrap().len(), size);
    let build_id = field(&text, "build-id").expect("build-id line");

    let o = Command::new(objdump)
        .arg("-T")
        .arg(file.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "objdump -T rejected the ia32 dump");
    assert!(
        o.stderr.is_empty(),
        "objdump complained: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let theirs = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(theirs.contains("file format elf32-i386"), "{theirs}");
    let expected = symbol_lines(&theirs);
    assert!(
        !expected.is_empty(),
        "objdump printed no symbols:\n{theirs}"
    );
    let ours = symbol_lines(&stdout(&run(
        env!("CARGO_BIN_EXE_vdso-syms"),
        &[file.str()],
    )));
    assert_eq!(ours, expected);
    // ELF32: 8 hex digits of value and size.
    for line in &ours {
        let (value, rest) = line.split_at(8);
        assert!(value.bytes().all(|b| b.is_ascii_hexdigit()), "{line:?}");
        assert!(rest.starts_with(' '), "{line:?}");
        let size = rest.split_once('\t').expect("tab before size").1;
        assert!(size[..8].bytes().all(|b| b.is_ascii_hexdigit()), "{line:?}");
        assert_eq!(size.as_bytes()[8], b' ', "{line:?}");
    }
    for wanted in [
        " LINUX_2.6   __vdso_clock_gettime",
        " LINUX_2.6   __vdso_gettimeofday",
        " LINUX_2.5   __kernel_vsyscall",
    ] {
        assert!(ours.iter().any(|l| l.ends_with(wanted)), "{ours:#?}");
    }

    let Some(readelf) = tool("readelf") else {
        eprintln!("readelf check skipped: readelf not found in PATH");
        return;
    };
    let o = Command::new(readelf)
        .args(["-a", "-W"])
        .arg(file.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "readelf -a rejected the ia32 dump");
    assert!(
        o.stderr.is_empty(),
        "readelf complained: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let re = String::from_utf8_lossy(&o.stdout);
    let header = |key: &str| {
        re.lines()
            .find_map(|l| l.trim_start().strip_prefix(key))
            .map(str::trim)
    };
    assert_eq!(header("Class:"), Some("ELF32"), "{re}");
    assert_eq!(header("Machine:"), Some("Intel 80386"), "{re}");
    assert_eq!(header("Type:"), Some("DYN (Shared object file)"), "{re}");
    assert!(re.contains(&format!("Build ID: {build_id}")), "{re}");
}

// ---------------------------------------------------------------------------------------------
// The one convention of every tool (README "Command-line conventions", vdso_probe::cli)
// ---------------------------------------------------------------------------------------------

/// Every tool: name, binary, the first line of its `-h` (`--help` adds the final period).
const TOOLS: [(&str, &str, &str); 8] = [
    (
        "vdso-dump",
        env!("CARGO_BIN_EXE_vdso-dump"),
        "Dump the vDSO image of this process, or of another with --pid, as an ELF file",
    ),
    (
        "vdso-syms",
        env!("CARGO_BIN_EXE_vdso-syms"),
        "List the dynamic symbols of the vDSO, or of an ELF file, exactly as `objdump -T` does",
    ),
    (
        "vdso-call",
        env!("CARGO_BIN_EXE_vdso-call"),
        "Call __vdso_clock_gettime and check its value lies between two raw clock_gettime syscalls",
    ),
    (
        "vdso-bench",
        env!("CARGO_BIN_EXE_vdso-bench"),
        "Benchmark time reads: vDSO vs syscall vs vsyscall page vs the module's time page",
    ),
    (
        "vdso-strace-demo",
        env!("CARGO_BIN_EXE_vdso-strace-demo"),
        "Show that strace cannot see vDSO calls: count the syscalls a ptrace tracer sees",
    ),
    (
        "vdso-report",
        env!("CARGO_BIN_EXE_vdso-report"),
        "Read the vdso_probe report of each process and cross-check it with /proc",
    ),
    (
        "vdso-timepage",
        env!("CARGO_BIN_EXE_vdso-timepage"),
        "Print the vdso_probe time page and compare its time with clock_gettime",
    ),
    (
        "vdso-vvar",
        env!("CARGO_BIN_EXE_vdso-vvar"),
        "Decode this process's own [vvar] with the kernel's layout and check it against the vDSO",
    ),
];

fn exe(name: &str) -> &'static str {
    TOOLS
        .iter()
        .find(|t| t.0 == name)
        .map(|t| t.1)
        .expect("a tool")
}

/// Runs a tool with `RUST_BACKTRACE=1` (no backtrace may appear anyway), whatever its status.
fn run_any(name: &str, args: &[&str]) -> Output {
    Command::new(exe(name))
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap_or_else(|e| panic!("running {name}: {e}"))
}

/// The exit status of `out`, which must be a normal exit.
fn code(out: &Output) -> i32 {
    out.status.code().expect("exited, not killed by a signal")
}

/// Asserts the text has nothing of Rust's error and `Debug` forms.
fn assert_no_rust_syntax(text: &str) {
    for bad in [
        "Error:",
        "Caused by",
        "backtrace",
        "panicked",
        "Some(",
        "(os error",
        "\\\"",
    ] {
        assert!(!text.contains(bad), "{bad:?} in {text:?}");
    }
}

/// Stderr is exactly one line `prog: ...`; returns the message after `prog: `.
fn one_error_line(name: &str, out: &Output) -> String {
    let err = String::from_utf8(out.stderr.clone()).expect("UTF-8 stderr");
    assert_no_rust_syntax(&err);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{name}: not one line on stderr: {err:?}");
    lines[0]
        .strip_prefix(&format!("{name}: "))
        .unwrap_or_else(|| panic!("{name}: not `{name}: message`: {err:?}"))
        .to_string()
}

/// Stdout as one JSON document `{"tool": name, "version": ..., key: [...]}`, keys in that
/// order; returns it.
fn json_document(out: &Output, name: &str, key: &str) -> serde_json::Value {
    let text = String::from_utf8(out.stdout.clone()).expect("UTF-8 JSON");
    assert_no_rust_syntax(&text);
    let v: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{name}: stdout is not one JSON document ({e}): {text}"));
    let head = format!(
        "{{\n  \"tool\": \"{name}\",\n  \"version\": \"{}\",\n  \"{key}\": [",
        env!("CARGO_PKG_VERSION")
    );
    assert!(text.starts_with(&head), "{name}: {text}");
    assert_eq!(v.as_object().map(|o| o.len()), Some(3), "{name}: {text}");
    assert!(v[key].is_array(), "{name}: {text}");
    v
}

/// Asserts `v` is a `"0x..."` hex string.
fn assert_hex(v: &serde_json::Value, what: &str) {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("{what}: not a string: {v}"));
    let digits = s
        .strip_prefix("0x")
        .unwrap_or_else(|| panic!("{what}: {s}"));
    assert!(
        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_hexdigit()),
        "{what}: {s}"
    );
}

#[test]
fn every_tool_help_says_what_it_does_and_ends_with_exit_status() {
    for (name, _, summary) in TOOLS {
        let short = stdout(&run(exe(name), &["-h"]));
        let long = stdout(&run(exe(name), &["--help"]));
        assert_eq!(short.lines().next(), Some(summary), "{name} -h:\n{short}");
        assert_eq!(
            long.lines().next(),
            Some(format!("{summary}.").as_str()),
            "{name} --help:\n{long}"
        );
        for text in [&short, &long] {
            assert!(!text.contains("thin binaries"), "{name}: {text}");
            let examples = text.find("\nEXAMPLES:\n").expect("EXAMPLES");
            let status = text.find("\nEXIT STATUS:\n").expect("EXIT STATUS");
            assert!(examples < status, "{name}: {text}");
            let section = &text[status..];
            assert!(section.contains("\n  0  success"), "{name}: {section}");
            assert!(
                section.contains("\n  2  could not run"),
                "{name}: {section}"
            );
            assert!(
                text[examples..status].contains(&format!("\n  {name}")),
                "{name}"
            );
        }
    }
    // Exit status 1 is documented by the tools that use it, and only by them.
    for (name, uses_1) in [
        ("vdso-dump", true),
        ("vdso-syms", false),
        ("vdso-call", true),
        ("vdso-bench", false),
        ("vdso-strace-demo", true),
        ("vdso-report", true),
        ("vdso-timepage", true),
        ("vdso-vvar", true),
    ] {
        let text = stdout(&run(exe(name), &["--help"]));
        assert_eq!(text.contains("\n  1  "), uses_1, "{name}: {text}");
    }
    // What a skipped benchmark row means.
    let bench = stdout(&run(exe("vdso-bench"), &["--help"]));
    assert!(bench.contains("A row is \"skipped\""), "{bench}");
}

#[test]
fn every_tool_version_is_its_name_and_the_workspace_version() {
    for (name, _, _) in TOOLS {
        for flag in ["--version", "-V"] {
            let out = run(exe(name), &[flag]);
            assert_eq!(
                stdout(&out),
                format!("{name} {}\n", env!("CARGO_PKG_VERSION")),
                "{name} {flag}"
            );
        }
    }
}

#[test]
fn every_tool_usage_error_is_one_line_exit_2() {
    for (name, _, _) in TOOLS {
        let out = run_any(name, &["--bogus"]);
        assert_eq!(code(&out), 2, "{name}");
        assert!(out.stdout.is_empty(), "{name}");
        let msg = one_error_line(name, &out);
        assert!(
            msg.starts_with("unexpected argument '--bogus' found")
                && msg.ends_with(&format!("; try '{name} --help'")),
            "{name}: {msg}"
        );
    }
    for (name, args) in [
        ("vdso-call", &["--clock", "bogus"][..]),
        ("vdso-bench", &["--batches", "0"][..]),
        ("vdso-strace-demo", &["-n", "many"][..]),
        ("vdso-timepage", &["--watch", "0"][..]),
    ] {
        let out = run_any(name, args);
        assert_eq!(code(&out), 2, "{name} {args:?}");
        let msg = one_error_line(name, &out);
        assert!(msg.starts_with("invalid value"), "{name}: {msg}");
    }
}

/// Runs `cmd | head -1` in `sh -c` (a real pipe); returns head's line, the tool's own exit
/// status and its stderr.
fn head_1(name: &str, args: &[&str]) -> (String, i32, String) {
    let quoted: Vec<String> = std::iter::once(exe(name))
        .chain(args.iter().copied())
        .map(|a| format!("'{a}'"))
        .collect();
    // sh's stdout (fd 4 inside): the tool's status; head's line goes to a file.
    let line_file = TempFile::new(&format!("head-{name}"));
    let script = format!(
        "exec 4>&1; {{ {}; echo $? >&4; }} | head -1 >'{}'",
        quoted.join(" "),
        line_file.str()
    );
    let sh = Command::new("sh")
        .arg("-c")
        .arg(script)
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("sh");
    assert!(sh.status.success(), "{name}: sh -c '... | head -1' failed");
    let status: i32 = String::from_utf8_lossy(&sh.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{name}: no status: {:?}", sh.stdout));
    let line = std::fs::read_to_string(line_file.path()).unwrap();
    (
        line,
        status,
        String::from_utf8_lossy(&sh.stderr).into_owned(),
    )
}

/// The host's libc, if it is where Debian puts it.
fn libc_path() -> Option<&'static str> {
    [
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
        "/lib64/libc.so.6",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
}

#[test]
fn every_tool_piped_into_head_exits_0() {
    let reports = ReportDir::new("head");
    let me = std::process::id().to_string();
    let many_me: Vec<&str> = std::iter::repeat_n(me.as_str(), 2000).collect();
    let page = fake_time_page("head", FakePage::NoTsc);
    let dump = TempFile::new("head-dump");
    // Outputs far beyond a pipe's 64 KiB (libc's symbols, 2000 reports, 500 samples) make the
    // tool write into the closed pipe; the others end before head does.
    let libc = libc_path();
    let mut cases: Vec<(&str, Vec<&str>, &str)> = vec![
        ("vdso-dump", vec!["-o", dump.str()], "source:"),
        (
            "vdso-syms",
            libc.into_iter().collect(),
            "DYNAMIC SYMBOL TABLE:",
        ),
        ("vdso-call", vec![], "vDSO at 0x"),
        (
            "vdso-bench",
            vec!["--batches", "2", "--batch-size", "10"],
            "kernel:",
        ),
        ("vdso-strace-demo", vec!["-n", "10"], "vDSO path: "),
        (
            "vdso-timepage",
            vec![
                "--device",
                page.str(),
                "--watch",
                "500",
                "--interval-ms",
                "0",
            ],
            "magic:",
        ),
    ];
    let mut report_args = vec!["--dir", reports.str()];
    if reports.consistent {
        report_args.extend(many_me.iter().copied());
        cases.push(("vdso-report", report_args, "pid "));
    } else {
        skip_env("vdso-report | head not tested: this kernel's special mappings differ");
    }
    for (name, args, first) in cases {
        let (line, status, stderr) = head_1(name, &args);
        assert!(line.starts_with(first), "{name}: head printed {line:?}");
        assert_eq!(line.lines().count(), 1, "{name}: {line:?}");
        assert_eq!(
            status, 0,
            "{name} | head -1: the tool exited {status}: {stderr}"
        );
        assert!(stderr.is_empty(), "{name} | head -1: {stderr}");
    }
    // `vdso-dump -o F | head -1` still wrote F, whole.
    let out = run(exe("vdso-dump"), &[]);
    let size: u64 = field(&stdout(&out), "size")
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("size line");
    assert_eq!(std::fs::metadata(dump.path()).unwrap().len(), size);
}

#[test]
fn dump_to_stdout_is_the_image() {
    let file = TempFile::new("stdout-file");
    run(exe("vdso-dump"), &["-o", file.str()]);
    let out = run(exe("vdso-dump"), &["-o", "-"]);
    assert_eq!(out.stdout, std::fs::read(file.path()).unwrap());
    assert!(out.stderr.is_empty());
}

#[test]
fn dump_and_syms_errors_are_one_line_exit_2() {
    let out = run_any("vdso-dump", &["--pid", "999999999"]);
    assert_eq!(code(&out), 2);
    assert_eq!(
        one_error_line("vdso-dump", &out),
        "reading /proc/999999999/maps: No such file or directory"
    );
    // Nothing is printed before the file is written.
    let out = run_any("vdso-dump", &["-o", "/nonexistent/dir/vdso.so"]);
    assert_eq!(code(&out), 2);
    assert!(out.stdout.is_empty(), "{}", stdout(&out));
    assert_eq!(
        one_error_line("vdso-dump", &out),
        "writing /nonexistent/dir/vdso.so: No such file or directory"
    );
    let out = run_any("vdso-syms", &["/nonexistent.so"]);
    assert_eq!(code(&out), 2);
    assert_eq!(
        one_error_line("vdso-syms", &out),
        "/nonexistent.so: No such file or directory"
    );
    let not_elf = TempFile::new("not-elf");
    std::fs::write(not_elf.path(), b"hello").unwrap();
    let out = run_any("vdso-syms", &[not_elf.str()]);
    assert_eq!(code(&out), 2);
    assert!(one_error_line("vdso-syms", &out).starts_with(&format!("{}: ", not_elf.str())));
}

#[test]
fn bench_runtime_error_is_one_line_exit_2() {
    // An impossible CPU: sched_setaffinity refuses it.
    let out = run_any("vdso-bench", &["--cpu", "100000", "--batches", "1"]);
    assert_eq!(code(&out), 2);
    let msg = one_error_line("vdso-bench", &out);
    assert!(msg.contains("100000"), "{msg}");
    assert!(out.stdout.is_empty());
}

#[test]
fn strace_demo_and_bench_json_follow_the_convention() {
    let out = run(exe("vdso-strace-demo"), &["-n", "20", "--json"]);
    let doc = json_document(&out, "vdso-strace-demo", "runs");
    let runs = doc["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    let r = &runs[0];
    assert_hex(&r["vdso_function"], "vdso_function");
    for key in [
        "calls",
        "vdso",
        "libc",
        "syscall",
        "other_in_phases",
        "total_entries",
    ] {
        assert!(r[key].is_u64(), "{key}: {r}");
    }

    let out = run(
        exe("vdso-bench"),
        &["--batches", "2", "--batch-size", "10", "--json"],
    );
    let doc = json_document(&out, "vdso-bench", "runs");
    let r = &doc["runs"][0];
    assert_hex(&r["environment"]["vdso_base"], "vdso_base");
    assert!(r["environment"]["vsyscall"].is_string(), "{r}");
    assert!(r["environment"]["cpu"]["family_model_stepping"]["family"].is_u64());
    assert!(r["config"]["batches"].is_u64());
    assert!(r["classic"].is_null());
    for row in r["rows"].as_array().unwrap() {
        match row["status"].as_str() {
            Some("measured") => assert!(row["min_ns"].is_f64() && row["batches"].is_u64()),
            Some("skipped") => assert!(row["reason"].is_string()),
            other => panic!("row status {other:?}: {row}"),
        }
    }
}

// --- vdso-report on the host: the "could not run" paths, and --dir with reports made here ---

const AT_SYSINFO_EHDR: u64 = 33;

/// A directory of reports in the module's format, made from the captured report of init
/// with the values of real processes: this test process's (consistent with /proc, when this
/// kernel has the same special mappings as the capture) and a `sleep`'s with a wrong
/// `AT_SYSINFO_EHDR` (a disagreement).
struct ReportDir {
    dir: TempFile,
    consistent: bool,
    sleep: std::process::Child,
}

impl ReportDir {
    fn new(tag: &str) -> Self {
        let dir = TempFile::new(&format!("reports-{tag}"));
        std::fs::create_dir_all(dir.path()).unwrap();
        let me = std::process::id() as i32;
        let consistent = match report_text(me) {
            Some(text) => {
                std::fs::write(dir.path().join(me.to_string()), text).unwrap();
                true
            }
            None => false,
        };
        let sleep = Command::new(tool("sleep").expect("sleep"))
            .arg("30")
            .spawn()
            .unwrap();
        let pid = sleep.id() as i32;
        wait_exec_done(sleep.id());
        let text = report_text(pid)
            .unwrap_or_else(|| TEMPLATE.replacen("pid: 1\n", &format!("pid: {pid}\n"), 1))
            .lines()
            .map(|l| {
                if l.starts_with("auxv.sysinfo_ehdr: ") {
                    "auxv.sysinfo_ehdr: 0x1000".to_string()
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n";
        std::fs::write(dir.path().join(pid.to_string()), text).unwrap();
        ReportDir {
            dir,
            consistent,
            sleep,
        }
    }

    fn str(&self) -> &str {
        self.dir.str()
    }

    fn bad_pid(&self) -> String {
        self.sleep.id().to_string()
    }
}

impl Drop for ReportDir {
    fn drop(&mut self) {
        let _ = self.sleep.kill();
        let _ = self.sleep.wait();
    }
}

const TEMPLATE: &str = include_str!("../../vdso-probe/tests/data/report-init.txt");

/// The captured report with `pid`'s pid, ranges, permissions, `AT_SYSINFO_EHDR` and vsyscall
/// mode; `None` if its special mappings are not the capture's three.
fn report_text(pid: i32) -> Option<String> {
    let maps =
        vdso_probe::report::parse_maps(&std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?)
            .ok()?;
    let mapping = |name: &str| {
        maps.iter()
            .find(|m| m.name == name)
            .map(|m| (format!("{:x}-{:x}", m.start, m.end), m.perms.clone()))
    };
    let auxv = std::fs::read(format!("/proc/{pid}/auxv")).ok()?;
    let ehdr = vdso_probe::report::auxv_entry(&auxv, 8, AT_SYSINFO_EHDR)?;
    let vsyscall = match mapping("[vsyscall]").map(|m| m.1) {
        Some(p) if p == "r-xp" => "emulate",
        Some(p) if p == "--xp" => "xonly",
        _ => "none",
    };
    let mut out = String::new();
    for line in TEMPLATE.lines() {
        let (key, _) = line.split_once(": ")?;
        let value = match key.split_once('.') {
            _ if key == "pid" => pid.to_string(),
            _ if key == "context.vdso" || key == "auxv.sysinfo_ehdr" => format!("{ehdr:#x}"),
            _ if key == "vsyscall.mode" => vsyscall.to_string(),
            Some((m, "range")) => mapping(&format!("[{m}]"))?.0,
            Some((m, "perms")) => mapping(&format!("[{m}]"))?.1,
            _ => {
                out += line;
                out.push('\n');
                continue;
            }
        };
        out += &format!("{key}: {value}\n");
    }
    Some(out)
}

#[test]
fn report_without_the_module_is_one_line_exit_2() {
    if vdso_probe::report::debugfs_problem().is_none() {
        skip_env("the module is loaded and debugfs mounted here");
        return;
    }
    for args in [&[][..], &["1", "999999999", "2"][..], &["--json", "1"][..]] {
        let out = run_any("vdso-report", args);
        assert_eq!(code(&out), 2, "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}: {}", stdout(&out));
        let msg = one_error_line("vdso-report", &out);
        assert!(
            msg.contains("insmod vdso_probe.ko") || msg.contains("mount -t debugfs"),
            "{msg}"
        );
        assert!(msg.ends_with(": no report can be read"), "{msg}");
    }
}

#[test]
fn report_tells_the_causes_apart_and_reports_every_pid() {
    let reports = ReportDir::new("causes");
    let dir = reports.str();
    let bad = reports.bad_pid();
    // No such process.
    let out = run_any("vdso-report", &["--dir", dir, "999999999"]);
    assert_eq!(code(&out), 2);
    assert_eq!(
        one_error_line("vdso-report", &out),
        "pid 999999999: no such process"
    );
    // A kernel thread (kthreadd is pid 2 outside a pid namespace).
    if std::fs::read_to_string("/proc/2/comm").is_ok_and(|c| c.trim() == "kthreadd") {
        let out = run_any("vdso-report", &["--dir", dir, "2"]);
        assert_eq!(code(&out), 2);
        let msg = one_error_line("vdso-report", &out);
        assert!(
            msg.starts_with("pid 2: kthreadd is a kernel thread"),
            "{msg}"
        );
    }
    // A disagreement: exit 1, one line, the report with DISAGREES on stdout.
    let out = run_any("vdso-report", &["--dir", dir, &bad]);
    assert_eq!(code(&out), 1);
    let msg = one_error_line("vdso-report", &out);
    assert!(
        msg.starts_with(&format!("pid {bad}: the report disagrees")),
        "{msg}"
    );
    let text = stdout(&out);
    assert!(text.starts_with(&format!("pid {bad} (init)")), "{text}");
    assert!(
        text.contains("  DISAGREES: AT_SYSINFO_EHDR: report 0x1000, /proc auxv 0x"),
        "{text}"
    );
    assert_no_rust_syntax(&text);
    // Every pid is reported, the status is the worst.
    let me = std::process::id().to_string();
    let out = run_any("vdso-report", &["--dir", dir, "999999999", &bad, &me]);
    assert_eq!(code(&out), 2);
    let err = String::from_utf8_lossy(&out.stderr);
    // No such process, the disagreement, and this process's report when none could be made.
    let expected = if reports.consistent { 2 } else { 3 };
    assert_eq!(err.lines().count(), expected, "{err}");
    assert!(
        err.lines().all(|l| l.starts_with("vdso-report: pid ")),
        "{err}"
    );
    let text = stdout(&out);
    assert!(text.contains(&format!("pid {bad} (init)")), "{text}");
    if reports.consistent {
        assert!(
            text.contains(&format!("consistent with /proc/{me}/maps and auxv")),
            "{text}"
        );
        let out = run_any("vdso-report", &["--dir", dir, &me]);
        assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
        assert!(out.stderr.is_empty());
    }
}

#[test]
fn report_json_follows_the_convention() {
    let reports = ReportDir::new("json");
    let bad = reports.bad_pid();
    let me = std::process::id().to_string();
    let mut args = vec!["--dir", reports.str(), "--json", &bad];
    if reports.consistent {
        args.push(&me);
    }
    let out = run_any("vdso-report", &args);
    assert_eq!(code(&out), 1);
    let doc = json_document(&out, "vdso-report", "reports");
    let list = doc["reports"].as_array().unwrap();
    assert_eq!(list.len(), args.len() - 3);
    for r in list {
        assert!(r["pid"].is_i64(), "{r}");
        assert_eq!(r["comm"], "init");
        assert!(r.get("raw").is_none(), "raw repeats every field: {r}");
        assert_hex(&r["auxv_sysinfo_ehdr"], "auxv_sysinfo_ehdr");
        assert_hex(&r["context_vdso"], "context_vdso");
        assert!(r["timens_monotonic_ns"].is_i64() && r["timens_inum"].is_u64());
        assert!(r["vsyscall_usable"].is_boolean() && r["map_count"].is_u64());
        let mappings = r["mappings"].as_array().unwrap();
        assert_eq!(mappings.len(), 3, "{r}");
        for m in mappings {
            assert_hex(&m["start"], "start");
            assert_hex(&m["end"], "end");
            assert!(m["pages"].is_u64() && m["flags"].is_array());
            for role in m["page_roles"].as_array().unwrap() {
                assert!(
                    role["role"].is_string() && role["populated"].is_boolean(),
                    "{role}"
                );
            }
        }
        assert!(r["disagreements"].is_array());
    }
    assert_eq!(list[0]["pid"].to_string(), bad);
    assert!(list[0]["disagreements"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d
            .as_str()
            .unwrap()
            .starts_with("AT_SYSINFO_EHDR: report 0x1000")));
    if reports.consistent {
        assert_eq!(list[1]["disagreements"].as_array().unwrap().len(), 0);
    }
}

// --- vdso-timepage on the host: no module, and --device with pages made here ---

#[derive(Clone, Copy, PartialEq)]
enum FakePage {
    /// A valid header, clock mode none: only the coarse values (all 0: behind, fine).
    NoTsc,
    /// Clock mode TSC with all-zero parameters: precise time 0, outside every bracket.
    ZeroTsc,
    /// Not a time page.
    BadMagic,
}

/// A file holding one time page (the device's layout: `vdso_probe_time_page`).
fn fake_time_page(tag: &str, kind: FakePage) -> TempFile {
    use std::mem::offset_of;
    use vdso_probe::timepage::{self, vdso_probe_time_page as P, ClockMode};
    let mut page = vec![0u8; timepage::PAGE_SIZE];
    let mut put = |at: usize, bytes: &[u8]| page[at..at + bytes.len()].copy_from_slice(bytes);
    let magic = if kind == FakePage::BadMagic {
        0xdead_beef
    } else {
        timepage::MAGIC
    };
    let mode = if kind == FakePage::ZeroTsc {
        ClockMode::Tsc
    } else {
        ClockMode::None
    };
    put(offset_of!(P, magic), &magic.to_ne_bytes());
    put(
        offset_of!(P, abi_version),
        &timepage::ABI_VERSION.to_ne_bytes(),
    );
    put(
        offset_of!(P, size),
        &(timepage::ABI_SIZE as u32).to_ne_bytes(),
    );
    put(offset_of!(P, clock_mode), &mode.raw().to_ne_bytes());
    put(offset_of!(P, clocksource), b"fake\0");
    let file = TempFile::new(&format!("page-{tag}"));
    std::fs::write(file.path(), page).unwrap();
    file
}

#[test]
fn timepage_without_the_module_is_one_line_exit_2() {
    if Path::new(vdso_probe::timepage::DEVICE).exists() {
        skip_env("the module is loaded here");
        return;
    }
    for args in [&[][..], &["--json"][..], &["--watch", "3"][..]] {
        let out = run_any("vdso-timepage", args);
        assert_eq!(code(&out), 2, "{args:?}");
        assert!(out.stdout.is_empty());
        let msg = one_error_line("vdso-timepage", &out);
        assert!(msg.starts_with("/dev/vdso_probe: vdso_probe is "), "{msg}");
    }
    let out = run_any("vdso-timepage", &["--device", "/nonexistent"]);
    assert_eq!(code(&out), 2);
    assert_eq!(
        one_error_line("vdso-timepage", &out),
        "/nonexistent: No such file or directory"
    );
}

#[test]
fn timepage_problems_exit_1() {
    // Not a problem found but unreadable input: a file too short to hold a page.
    let empty = TempFile::new("page-empty");
    std::fs::write(empty.path(), b"").unwrap();
    let out = run_any("vdso-timepage", &["--device", empty.str()]);
    assert_eq!(code(&out), 2);
    assert!(one_error_line("vdso-timepage", &out).contains("too small to hold a time page"));
    let bad = fake_time_page("bad-magic", FakePage::BadMagic);
    let out = run_any("vdso-timepage", &["--device", bad.str()]);
    assert_eq!(code(&out), 1);
    let msg = one_error_line("vdso-timepage", &out);
    assert!(
        msg.starts_with(&format!("{}: magic 0xdeadbeef", bad.str())) && msg.ends_with("(MISMATCH)"),
        "{msg}"
    );
    let zero = fake_time_page("zero-tsc", FakePage::ZeroTsc);
    let out = run_any("vdso-timepage", &["--device", zero.str()]);
    assert_eq!(code(&out), 1);
    let msg = one_error_line("vdso-timepage", &out);
    assert!(msg.contains("precise MONOTONIC outside"), "{msg}");
    assert!(
        stdout(&out).contains("OUTSIDE the bracket"),
        "{}",
        stdout(&out)
    );
    let fine = fake_time_page("fine", FakePage::NoTsc);
    let out = run_any("vdso-timepage", &["--device", fine.str()]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty());
    assert_no_rust_syntax(&stdout(&out));
}

#[test]
fn timepage_json_follows_the_convention() {
    let page = fake_time_page("json", FakePage::ZeroTsc);
    let out = run_any(
        "vdso-timepage",
        &[
            "--device",
            page.str(),
            "--json",
            "--watch",
            "2",
            "--interval-ms",
            "0",
        ],
    );
    assert_eq!(code(&out), 1);
    let doc = json_document(&out, "vdso-timepage", "samples");
    let samples = doc["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 2);
    for s in samples {
        let p = &s["page"];
        assert_hex(&p["magic"], "magic");
        assert_hex(&p["mono"]["mask"], "mask");
        assert!(p["mono"]["cycle_last"].is_u64() && p["update_count"].is_u64());
        assert!(p["monotonic_coarse_ns"].is_i64() && p["offs_real_ns"].is_i64());
        assert_eq!(p["clock_mode"], "tsc");
        assert_eq!(p["clocksource"], "fake");
        let compare = s["compare"].as_array().unwrap();
        assert_eq!(compare.len(), 4);
        for c in compare {
            assert!(c["before_ns"].is_i64() && c["after_ns"].is_i64(), "{c}");
            assert!(
                c["page_ns"].is_i64() && c["page_minus_before_ns"].is_i64(),
                "{c}"
            );
            assert!(c["verdict"].is_string());
        }
        assert_eq!(compare[0]["verdict"], "outside");
        assert_eq!(compare[1]["verdict"], "behind");
        // The module's statistics, or why they are not there.
        assert!(
            s["stats"].is_object() != s["stats_error"].is_string(),
            "{s}"
        );
    }
}

// --- vdso-syms: exactly objdump -T, verbatim, on files that are not a vDSO ---

#[test]
fn syms_equal_objdump_verbatim_on_system_files() {
    let Some(objdump) = tool("objdump") else {
        skip("objdump not found in PATH");
        return;
    };
    let files: Vec<&str> = [
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/lib/x86_64-linux-gnu/libm.so.6",
        "/lib64/ld-linux-x86-64.so.2",
        "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
        "/usr/lib32/libc.so.6",
        "/bin/ls",
        "/bin/bash",
    ]
    .into_iter()
    .filter(|p| Path::new(p).exists())
    .collect();
    assert!(
        files.contains(&"/bin/ls") && libc_path().is_some(),
        "no /bin/ls or libc: {files:?}"
    );
    let mut verneed = 0;
    for f in files {
        let o = Command::new(&objdump).arg("-T").arg(f).output().unwrap();
        assert!(o.status.success(), "objdump -T {f}");
        let expected = symbol_lines(&String::from_utf8_lossy(&o.stdout));
        let ours = symbol_lines(&stdout(&run(exe("vdso-syms"), &[f])));
        assert!(!expected.is_empty(), "{f}");
        for (i, (a, b)) in expected.iter().zip(&ours).enumerate() {
            assert_eq!(b, a, "{f}: line {i}");
        }
        assert_eq!(ours.len(), expected.len(), "{f}");
        verneed += ours.iter().filter(|l| l.contains(" (GLIBC_")).count();
    }
    // Requirements from .gnu.version_r are parenthesised, like hidden versions.
    assert!(verneed > 0);
}

/// Offsets of the `.dynsym` entries of an ELF64 little-endian file, by symbol name.
fn dynsym_offsets(elf: &[u8]) -> Vec<(String, usize)> {
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(elf[o..o + 4].try_into().unwrap()) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap()) as usize;
    let (shoff, shentsize, shnum) = (u64_at(0x28), u16_at(0x3a), u16_at(0x3c));
    let sh = |i: usize| shoff + i * shentsize;
    let dynsym = (0..shnum)
        .find(|&i| u32_at(sh(i) + 4) == 11) // SHT_DYNSYM
        .expect(".dynsym");
    let (off, size) = (u64_at(sh(dynsym) + 0x18), u64_at(sh(dynsym) + 0x20));
    let strtab = u64_at(sh(u32_at(sh(dynsym) + 0x28)) + 0x18);
    (off..off + size)
        .step_by(24)
        .map(|sym| {
            let name = &elf[strtab + u32_at(sym)..];
            let end = name.iter().position(|&b| b == 0).unwrap();
            (String::from_utf8_lossy(&name[..end]).into_owned(), sym)
        })
        .collect()
}

#[test]
fn syms_visibility_equals_objdump() {
    let (Some(objdump), Some(gcc)) = (tool("objdump"), tool("gcc")) else {
        skip("objdump or gcc not found in PATH");
        return;
    };
    let src = TempFile::new("vis-src");
    let src_c = src.path().with_extension("c");
    std::fs::write(
        &src_c,
        "__attribute__((visibility(\"protected\"))) int prot_fn(void) { return 1; }\n\
         int hid_fn(void) { return 2; }\n\
         int int_fn(void) { return 3; }\n\
         int odd_fn(void) { return 4; }\n\
         int plain_fn(void) { return 5; }\n",
    )
    .unwrap();
    let so = TempFile::new("vis");
    let cc = Command::new(gcc)
        .args(["-shared", "-fPIC", "-nostdlib", "-O2", "-o"])
        .arg(so.path())
        .arg(&src_c)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&src_c);
    assert!(
        cc.status.success(),
        "{}",
        String::from_utf8_lossy(&cc.stderr)
    );
    // The linker drops hidden and internal symbols from .dynsym: set their st_other by hand,
    // and one value that is not a visibility (binutils prints it in hex).
    let mut elf = std::fs::read(so.path()).unwrap();
    for (name, other) in [("hid_fn", 2u8), ("int_fn", 1), ("odd_fn", 0x83)] {
        let (_, at) = dynsym_offsets(&elf)
            .into_iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{name} not in .dynsym"));
        elf[at + 5] = other;
    }
    std::fs::write(so.path(), &elf).unwrap();
    let o = Command::new(objdump)
        .arg("-T")
        .arg(so.path())
        .output()
        .unwrap();
    assert!(o.status.success() && o.stderr.is_empty());
    let expected = symbol_lines(&String::from_utf8_lossy(&o.stdout));
    let ours = symbol_lines(&stdout(&run(exe("vdso-syms"), &[so.str()])));
    assert_eq!(ours, expected);
    for tail in [
        " .protected prot_fn",
        " .hidden hid_fn",
        " .internal int_fn",
        " 0x83 odd_fn",
    ] {
        assert!(ours.iter().any(|l| l.ends_with(tail)), "{tail}: {ours:#?}");
    }
    // Default visibility: nothing between the size (no version table here) and the name.
    assert!(
        ours.iter().any(|l| l
            .split_once('\t')
            .is_some_and(|(_, t)| t.len() == 16 + " plain_fn".len() && t.ends_with(" plain_fn"))),
        "{ours:#?}"
    );
}

/// The file offset of the first section of type `sh_type` of an ELF64 little-endian file.
fn section_offset(elf: &[u8], sh_type: u32) -> Option<usize> {
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(elf[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap()) as usize;
    let (shoff, shentsize, shnum) = (u64_at(0x28), u16_at(0x3a), u16_at(0x3c));
    (0..shnum)
        .map(|i| shoff + i * shentsize)
        .find(|&sh| u32_at(sh + 4) == sh_type)
        .map(|sh| u64_at(sh + 0x18))
}

/// The section and version columns where the toolchain never puts them in a shared object:
/// `SHN_ABS` and `SHN_COMMON` indices (`*ABS*`, `*COM*`), a defined symbol whose version index
/// is `VER_NDX_GLOBAL` in a file that has version definitions (`Base`), and a hidden version
/// (the 0x8000 bit: parenthesised). Patched into a gcc-built library with a version script,
/// then listed by both.
#[test]
fn syms_section_and_version_edge_cases_equal_objdump() {
    let (Some(objdump), Some(gcc)) = (tool("objdump"), tool("gcc")) else {
        skip("objdump or gcc not found in PATH");
        return;
    };
    let dir = TempFile::new("edge");
    std::fs::create_dir_all(dir.path()).unwrap();
    let (src_c, map, so) = (
        dir.path().join("edge.c"),
        dir.path().join("edge.map"),
        dir.path().join("edge.so"),
    );
    let fns: String = ["abs_fn", "com_fn", "base_fn", "hidden_fn", "plain_fn"]
        .iter()
        .enumerate()
        .map(|(i, f)| format!("int {f}(void) {{ return {i}; }}\n"))
        .collect();
    std::fs::write(&src_c, fns).unwrap();
    std::fs::write(&map, "VERS_1 { global: *_fn; local: *; };\n").unwrap();
    let cc = Command::new(gcc)
        .args(["-shared", "-fPIC", "-nostdlib", "-O2"])
        .arg(format!("-Wl,--version-script={}", map.display()))
        .arg("-o")
        .arg(&so)
        .arg(&src_c)
        .output()
        .unwrap();
    assert!(
        cc.status.success(),
        "{}",
        String::from_utf8_lossy(&cc.stderr)
    );
    let mut elf = std::fs::read(&so).unwrap();
    let syms = dynsym_offsets(&elf);
    let dynsym = syms[0].1; // the null symbol: index 0
    let versym = section_offset(&elf, 0x6fff_ffff).expect(".gnu.version");
    let at = |name: &str| {
        syms.iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{name} not in .dynsym"))
            .1
    };
    let index = |name: &str| (at(name) - dynsym) / 24;
    for (name, shndx) in [("abs_fn", 0xfff1u16), ("com_fn", 0xfff2)] {
        let o = at(name) + 6;
        elf[o..o + 2].copy_from_slice(&shndx.to_le_bytes());
    }
    for (name, ver) in [("base_fn", 1u16), ("hidden_fn", 0x8002)] {
        let o = versym + 2 * index(name);
        elf[o..o + 2].copy_from_slice(&ver.to_le_bytes());
    }
    std::fs::write(&so, &elf).unwrap();
    let o = Command::new(objdump).arg("-T").arg(&so).output().unwrap();
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "objdump -T: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let expected = symbol_lines(&String::from_utf8_lossy(&o.stdout));
    let ours = symbol_lines(&stdout(&run(exe("vdso-syms"), &[so.to_str().unwrap()])));
    assert_eq!(ours, expected);
    // The patches took: each case is in the listing.
    for (name, what) in [
        ("abs_fn", "*ABS*"),
        ("com_fn", "*COM*"),
        ("base_fn", " Base "),
        ("hidden_fn", "(VERS_1)"),
        ("plain_fn", " VERS_1 "),
    ] {
        assert!(
            ours.iter().any(|l| l.ends_with(name) && l.contains(what)),
            "{name} without {what}: {ours:#?}"
        );
    }
}

/// A report that cannot be opened (EACCES) says so and what to do; run as `nobody` when the
/// tests run as root (as in `make check`).
#[test]
fn report_permission_denied_says_what_to_do() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        skip_env("needs root to run the tool as nobody");
        return;
    }
    let Some(setpriv) = tool("setpriv") else {
        skip("setpriv not found in PATH");
        return;
    };
    let reports = ReportDir::new("eacces");
    let bad = reports.bad_pid();
    let file = reports.dir.path().join(&bad);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, PermissionsExt::from_mode(0o000)).unwrap();
    std::fs::set_permissions(reports.dir.path(), PermissionsExt::from_mode(0o755)).unwrap();
    // The binary lives under root's home: run a copy nobody can reach.
    let exe_copy = reports.dir.path().join("vdso-report");
    std::fs::copy(exe("vdso-report"), &exe_copy).unwrap();
    let out = Command::new(setpriv)
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&exe_copy)
        .args(["--dir", reports.str(), &bad])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", String::from_utf8_lossy(&out.stderr));
    let msg = one_error_line("vdso-report", &out);
    assert!(
        msg.starts_with(&format!("pid {bad}: permission denied: ")) && msg.contains("run as root"),
        "{msg}"
    );
}

/// The README's JSON example is what the tool prints: the same document shape, the same keys
/// of the same JSON types in its element.
#[test]
fn readme_json_example_matches_the_tool() {
    let readme = include_str!("../../../README.md");
    let start = readme
        .find("$ vdso-strace-demo -n 200 --json\n")
        .expect("README has the vdso-strace-demo JSON example");
    let block = &readme[start..];
    let body = &block[block.find('\n').unwrap() + 1..block.find("```").unwrap()];
    let example: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("README example: {e}: {body}"));
    let out = run(
        env!("CARGO_BIN_EXE_vdso-strace-demo"),
        &["-n", "10", "--json"],
    );
    let doc = json_document(&out, "vdso-strace-demo", "runs");
    assert_eq!(example["tool"], doc["tool"]);
    assert_eq!(example.as_object().unwrap().len(), 3, "{example}");
    let kind = |v: &serde_json::Value| match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
        serde_json::Value::Number(_) => "float",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    };
    let shape = |v: &serde_json::Value| -> Vec<(String, &'static str)> {
        let mut keys: Vec<_> = v["runs"][0]
            .as_object()
            .expect("an element")
            .iter()
            .map(|(k, v)| (k.clone(), kind(v)))
            .collect();
        keys.sort();
        keys
    };
    assert_eq!(
        shape(&example),
        shape(&doc),
        "README example vs the tool: {doc}"
    );
}

// --- vdso-vvar on the host: no module, bad layouts, and the test data's layout ---

/// Linux 7.3's x86_64 layout, by hand (vdso-probe's test data).
const VVAR_LAYOUT: &str = include_str!("../../vdso-probe/tests/data/vvar-layout-x86_64.txt");

/// The test data's layout with `line` (a line's start) replaced by `with` (or removed).
fn vvar_layout_file(tag: &str, line: &str, with: Option<&str>) -> TempFile {
    let text: String = VVAR_LAYOUT
        .lines()
        .filter_map(|l| match (l.starts_with(line), with) {
            (true, Some(w)) => Some(format!("{w}\n")),
            (true, None) => None,
            (false, _) => Some(format!("{l}\n")),
        })
        .collect();
    let f = TempFile::new(tag);
    std::fs::write(f.path(), text).unwrap();
    f
}

#[test]
fn vvar_without_the_layout_is_one_line_exit_2() {
    if Path::new("/sys/kernel/debug/vdso/layout").exists() {
        skip_env("the module is loaded here");
    } else {
        for args in [&[][..], &["--json"][..]] {
            let out = run_any("vdso-vvar", args);
            assert_eq!(code(&out), 2, "{args:?}");
            assert!(out.stdout.is_empty(), "no document without a layout");
            let msg = one_error_line("vdso-vvar", &out);
            assert!(
                msg.starts_with("/sys/kernel/debug/vdso/layout: ")
                    && msg.contains("insmod vdso_probe.ko"),
                "{msg}"
            );
        }
    }
    let out = run_any("vdso-vvar", &["--layout", "/nonexistent/layout"]);
    assert_eq!(code(&out), 2);
    assert_eq!(
        one_error_line("vdso-vvar", &out),
        "reading /nonexistent/layout: No such file or directory"
    );
}

#[test]
fn vvar_bad_layout_is_one_line_exit_1() {
    let cases = [
        (
            "vdso_clock.seq:",
            Some("vdso_clock.seq: 0 8 1"),
            "layout: vdso_clock.seq is 8 bytes, but it is a u32 (4 bytes)",
        ),
        (
            "vdso_clock.mask:",
            None,
            "layout has no `vdso_clock.mask` line",
        ),
        (
            "vdso_time_data.clock_data:",
            Some("vdso_time_data.clock_data: 0 232 3"),
            "layout: vdso_time_data.clock_data: 3 elements, but cs_bases is 2",
        ),
        (
            "page_size:",
            Some("page_size 4096"),
            "layout: not a `key: value` line: 'page_size 4096'",
        ),
    ];
    for (i, (line, with, want)) in cases.into_iter().enumerate() {
        let f = vvar_layout_file(&format!("bad-layout-{i}"), line, with);
        for args in [
            vec!["--layout", f.str()],
            vec!["--json", "--layout", f.str()],
        ] {
            let out = run_any("vdso-vvar", &args);
            assert_eq!(code(&out), 1, "{line}");
            assert!(out.stdout.is_empty(), "{line}: {}", stdout(&out));
            assert_eq!(
                one_error_line("vdso-vvar", &out),
                format!("{}: {want}", f.str())
            );
        }
    }
}

/// With the test data's layout, on a kernel that has it (7.3 x86_64; 6.18's is the same): the
/// text, the JSON document and `| head -1`. Another kernel's [vvar] does not decode with it
/// (exit 1): skipped.
#[test]
fn vvar_with_the_test_layout_follows_the_convention() {
    let f = vvar_layout_file("layout", "# no such line", None);
    let out = run_any("vdso-vvar", &["--layout", f.str()]);
    if code(&out) != 0 {
        skip_env(format!(
            "this kernel's [vvar] does not decode with Linux 7.3's x86_64 layout: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
        return;
    }
    assert!(out.stderr.is_empty());
    let text = stdout(&out);
    for key in [
        "layout",
        "vvar",
        "namespace",
        "clock_data[0].clock_mode",
        "clock_data[0].basetime.MONOTONIC",
        "clock_data[1].basetime.MONOTONIC_RAW",
        "aux_clock_data[7].seq",
        "hrtimer_res",
        "time.MONOTONIC_COARSE",
        "check.MONOTONIC_COARSE",
        "check.MONOTONIC",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{key}: "))),
            "no `{key}:` line:\n{text}"
        );
    }
    assert_eq!(field(&text, "namespace"), Some("root"));
    let doc = json_document(
        &run(exe("vdso-vvar"), &["--json", "--layout", f.str()]),
        "vdso-vvar",
        "snapshots",
    );
    let s = &doc["snapshots"][0];
    assert_hex(&s["vvar_start"], "vvar_start");
    assert_hex(&s["vvar_end"], "vvar_end");
    assert_eq!(s["namespace"], "root");
    let c = &s["clock_data"][0];
    assert_hex(&c["mask"], "mask");
    assert!(
        c["clock_mode"].is_string() && c["clock_mode_raw"].is_i64(),
        "{c}"
    );
    assert!(c["seq"].is_u64() && c["cycle_last"].is_u64() && c["shift"].is_u64());
    assert!(c["max_cycles"].is_u64(), "{c}");
    for b in c["basetime"].as_array().unwrap() {
        assert!(
            b["clock"].is_string() && b["ns"].is_u64() && b["sec"].is_u64(),
            "{b}"
        );
    }
    assert_eq!(s["aux_clock_data"].as_array().map(Vec::len), Some(8));
    assert!(s["ns_page"].is_null());
    assert!(s["rng"].is_null() || s["rng"]["generation"].is_u64());
    for c in s["checks"].as_array().unwrap() {
        assert!(
            ["equal", "inside", "unavailable", "unsettled"]
                .contains(&c["verdict"].as_str().unwrap()),
            "{c}"
        );
    }
    let (line, status, stderr) = head_1("vdso-vvar", &["--layout", f.str()]);
    assert_eq!(line, format!("layout: {}\n", f.str()));
    assert_eq!(status, 0, "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}
