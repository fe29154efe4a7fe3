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

/// Finds a host tool in PATH.
fn tool(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// A temporary file removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(tag: &str) -> Self {
        TempFile(
            std::env::temp_dir().join(format!("vdso-tools-test-{tag}-{}.so", std::process::id())),
        )
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn str(&self) -> &str {
        self.0.to_str().expect("UTF-8 temp path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
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
        eprintln!("skipped: objdump not found in PATH");
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
    let table = |text: &str| -> Vec<String> {
        text.lines()
            .skip_while(|l| !l.starts_with("DYNAMIC SYMBOL TABLE:"))
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    };
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
            .any(|l| l.ends_with(" LINUX_2.6 __vdso_clock_gettime")),
        "{expected:#?}"
    );
}

#[test]
fn dump_by_pid_matches_own_vdso() {
    let Some(sleep) = tool("sleep") else {
        eprintln!("skipped: sleep not found in PATH");
        return;
    };
    let mut child = Command::new(sleep).arg("30").spawn().unwrap();
    let pid = child.id().to_string();
    // Dump only after its exec finished: before that it has no (or our) vDSO mapping.
    let comm = format!("/proc/{pid}/comm");
    for _ in 0..500 {
        if std::fs::read_to_string(&comm).is_ok_and(|c| c.trim() == "sleep") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
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
    assert_eq!(
        std::fs::read(theirs.path()).unwrap(),
        std::fs::read(ours.path()).unwrap()
    );
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
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
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
        assert!(r["min_ns"].as_f64().unwrap() <= r["median_ns"].as_f64().unwrap());
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
    assert!(
        v["classic"]["libc_gettimeofday_ns_per_call"]
            .as_f64()
            .unwrap()
            > 0.0
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
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
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
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(v["calls"], n);
    assert_eq!(v["syscall"], n);
    match clocksource().as_deref() {
        Some("tsc") | Some("kvm-clock") => assert_eq!(v["vdso"], 0, "{v}"),
        other => eprintln!("vDSO count not asserted: clocksource {other:?}"),
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
            eprintln!("skipped: gcc not found in PATH");
            return None;
        };
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-tests/c/static32.c");
        let exe = TempFile(
            std::env::temp_dir().join(format!("vdso-tools-test-static32-{}", std::process::id())),
        );
        let cc = Command::new(gcc)
            .args(["-m32", "-static", "-O2", "-o"])
            .arg(exe.path())
            .arg(&src)
            .output()
            .unwrap();
        if !cc.status.success() {
            eprintln!(
                "skipped: gcc -m32 -static cannot build {} (gcc-multilib missing?): {}",
                src.display(),
                String::from_utf8_lossy(&cc.stderr)
            );
            return None;
        }
        match VdsoChild::spawn(exe.path()) {
            Ok(child) => Some(Ia32Helper { child, _exe: exe }),
            Err(e) => {
                eprintln!("skipped: {e}; no IA32 emulation?");
                None
            }
        }
    }
}

/// The symbol lines of an `objdump -T` style listing, verbatim.
fn symbol_lines(text: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| !l.starts_with("DYNAMIC SYMBOL TABLE:"))
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn ia32_dump_syms_equal_objdump() {
    let Some(objdump) = tool("objdump") else {
        eprintln!("skipped: objdump not found in PATH");
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
    drop(helper);
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
