// SPDX-License-Identifier: GPL-2.0
use super::*;
use crate::testing::{skip, symbol_lines, tool};
use object::elf;
use std::fs;
use std::path::Path;
use std::process::Command;

/// A fields-wise parse of one `objdump -T` symbol line.
#[derive(Debug, PartialEq, Eq)]
struct ObjdumpSym {
    value: String,
    flags: String,
    section: String,
    size: String,
    version: Option<String>,
    name: String,
}

fn parse_objdump_t(text: &str) -> Vec<ObjdumpSym> {
    let mut out = Vec::new();
    let mut in_table = false;
    for line in text.lines() {
        if line.starts_with("DYNAMIC SYMBOL TABLE:") {
            in_table = true;
            continue;
        }
        if !in_table || line.trim().is_empty() {
            continue;
        }
        // 16 hex digits for ELF64, 8 for ELF32.
        let w = line.find(' ').expect("space after value");
        let value = line[..w].to_string();
        let flags = line[w + 1..w + 8].to_string();
        let (section, rest) = line[w + 9..].split_once('\t').expect("tab after section");
        let size = rest[..w].to_string();
        let rest = rest[w..].trim_start();
        let (version, name) = if rest.starts_with('(') {
            let close = rest.find(')').expect("closing paren");
            (
                Some(rest[..=close].to_string()),
                rest[close + 1..].trim().to_string(),
            )
        } else {
            let toks: Vec<_> = rest.split_whitespace().collect();
            match toks.as_slice() {
                [name] => (None, (*name).to_string()),
                [v, name] => (Some((*v).to_string()), (*name).to_string()),
                _ => panic!("unexpected objdump line {line:?}"),
            }
        };
        out.push(ObjdumpSym {
            value,
            flags,
            section: section.to_string(),
            size,
            version,
            name,
        });
    }
    out
}

#[test]
fn image_size_covers_headers_and_segments() {
    let live = LiveVdso::locate().expect("locate vDSO");
    let img = live.image();
    assert_eq!(elf_image_size(img).unwrap(), img.len());
    // Size is derivable from the first page alone.
    assert_eq!(
        elf_image_size(&img[..img.len().min(4096)]).unwrap(),
        img.len()
    );
    ElfImage::parse(img).unwrap();
    assert!(ElfImage::parse(&img[..img.len() - 1]).is_err());
}

/// The dumped image is exactly the ELF file: it ends where readelf says its last part (the
/// section header table, which the linker puts last) ends, not at the mapping's page end.
#[test]
fn dump_ends_where_readelf_says_the_file_ends() {
    let readelf = tool("readelf").expect("readelf (binutils) is needed by this test");
    let dump = dump_self().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vdso.so");
    dump.write_to(&path).unwrap();
    let out = Command::new(readelf)
        .arg("-hlW")
        .arg(&path)
        .output()
        .unwrap();
    let len = fs::metadata(&path).unwrap().len();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |key: &str| -> u64 {
        let v = text
            .lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .unwrap_or_else(|| panic!("readelf -h shows no {key}"));
        v.trim_start_matches([':', ' '])
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{key}: {v}"))
    };
    let shdrs_end = field("Start of section headers")
        + field("Number of section headers") * field("Size of section headers");
    // The end of every LOAD segment's file contents (readelf -lW: Offset, FileSiz in hex).
    let loads_end = text
        .lines()
        .filter(|l| l.trim_start().starts_with("LOAD"))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap();
            hex(f[1]) + hex(f[4])
        })
        .max()
        .expect("readelf -l shows a LOAD segment");
    assert_eq!(len, shdrs_end.max(loads_end), "{text}");
}

#[test]
fn build_id_present() {
    let live = LiveVdso::locate().unwrap();
    let id = live.elf().build_id().expect("vDSO has a build-id");
    assert!(id.len() >= 8, "build-id too short: {}", hex(id));
}

#[test]
fn build_id_matches_readelf() {
    let Some(readelf) = tool("readelf") else {
        eprintln!("skipped: readelf not found in PATH");
        return;
    };
    let dump = dump_self().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vdso.so");
    dump.write_to(&path).unwrap();
    let out = Command::new(readelf).arg("-n").arg(&path).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let theirs = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Build ID: "))
        .expect("readelf shows a Build ID");
    assert_eq!(theirs.trim(), hex(dump.elf().build_id().unwrap()));
}

#[test]
fn symbols_match_objdump() {
    let Some(objdump) = tool("objdump") else {
        eprintln!("skipped: objdump not found in PATH");
        return;
    };
    let dump = dump_self().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vdso.so");
    dump.write_to(&path).unwrap();
    let out = Command::new(objdump).arg("-T").arg(&path).output().unwrap();
    assert!(
        out.status.success(),
        "objdump -T rejected the dump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stderr.is_empty(), "objdump warned: {:?}", out.stderr);
    let theirs = parse_objdump_t(&String::from_utf8_lossy(&out.stdout));
    let ours: Vec<_> = dynamic_symbols(&dump.image)
        .unwrap()
        .iter()
        .map(|s| ObjdumpSym {
            value: format!("{:016x}", s.value),
            flags: s.objdump_flags(),
            section: s.section.clone(),
            size: format!("{:016x}", s.size),
            version: s.objdump_version().filter(|v| !v.is_empty()),
            name: s.name.clone(),
        })
        .collect();
    assert!(!ours.is_empty());
    assert_eq!(ours, theirs);
    // The formatted line re-parses to the same fields.
    let ours_text: String = dynamic_symbols(&dump.image)
        .unwrap()
        .iter()
        .map(|s| s.objdump_line() + "\n")
        .collect();
    let reparsed = parse_objdump_t(&format!("DYNAMIC SYMBOL TABLE:\n{ours_text}"));
    assert_eq!(reparsed, theirs);
}

#[test]
fn clock_gettime_symbol_is_versioned() {
    let live = LiveVdso::locate().unwrap();
    let sym = live
        .elf()
        .find_symbol(CLOCK_GETTIME_SYMBOL, VDSO_VERSION)
        .unwrap();
    assert_eq!(sym.kind, elf::STT_FUNC);
    assert_eq!(sym.section, ".text");
    assert!(live
        .elf()
        .find_symbol(CLOCK_GETTIME_SYMBOL, "LINUX_9.9")
        .is_err());
    assert!(live
        .elf()
        .find_symbol("__vdso_nonexistent", VDSO_VERSION)
        .is_err());
}

#[test]
fn vdso_clock_gettime_between_syscalls() {
    let f = LiveVdso::locate().unwrap().clock_gettime().unwrap();
    for clock in [
        Clock::Monotonic,
        Clock::Realtime,
        Clock::MonotonicRaw,
        Clock::Boottime,
    ] {
        let before = syscall_clock_gettime(clock.id()).unwrap();
        let mid = f.get(clock).unwrap();
        let after = syscall_clock_gettime(clock.id()).unwrap();
        let (b, m, a) = (timespec_ns(&before), timespec_ns(&mid), timespec_ns(&after));
        assert!(b <= m && m <= a, "{clock}: {b} <= {m} <= {a} violated");
    }
}

#[test]
fn vdso_rejects_bad_clock() {
    let f = LiveVdso::locate().unwrap().clock_gettime().unwrap();
    let mut ts = zero_timespec();
    assert_eq!(f.call(-12345, &mut ts), -libc::EINVAL);
}

#[test]
fn vdso_gettimeofday_between_syscalls() {
    let f = LiveVdso::locate().unwrap().gettimeofday().unwrap();
    let us = |tv: &libc::timeval| i128::from(tv.tv_sec) * 1_000_000 + i128::from(tv.tv_usec);
    let (mut a, mut b, mut c) = (zero_timeval(), zero_timeval(), zero_timeval());
    assert_eq!(raw_syscall_gettimeofday(&mut a), 0);
    assert_eq!(f.call(&mut b), 0);
    assert_eq!(raw_syscall_gettimeofday(&mut c), 0);
    assert!(us(&a) <= us(&b) && us(&b) <= us(&c));
}

#[test]
fn dump_pid_self_matches_live() {
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    let a = dump_pid(pid).unwrap();
    let b = dump_self().unwrap();
    assert_eq!(a.address, b.address);
    assert_eq!(a.image, b.image);
}

#[test]
fn maps_parsing() {
    let text = "7f17-7f18 r-xp 00000000 00:00 0                          [vdso]\n\
                ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0  [vsyscall]\n\
                5600-5700 r--p 00000000 fe:00 1 /usr/bin/a b\n";
    let m = parse_maps(text).unwrap();
    assert_eq!(m[0].name, "[vdso]");
    assert_eq!(m[0].start, 0x7f17);
    assert!(m[0].executable());
    assert_eq!(VsyscallMode::from_entry(Some(&m[1])), VsyscallMode::Xonly);
    assert_eq!(m[2].name, "/usr/bin/a b");
    assert_eq!(VsyscallMode::from_entry(None), VsyscallMode::None);
}

#[test]
fn clock_names() {
    assert_eq!(
        "monotonic-raw".parse::<Clock>().unwrap(),
        Clock::MonotonicRaw
    );
    assert_eq!("CLOCK_TAI".parse::<Clock>().unwrap(), Clock::Tai);
    assert!("bogus".parse::<Clock>().is_err());
    assert_eq!(Clock::Boottime.to_string(), "CLOCK_BOOTTIME");
}

#[test]
fn objdump_line_layout() {
    let s = DynamicSymbol {
        index: 1,
        name: "clock_gettime".into(),
        value: 0xaf0,
        size: 0x386,
        bind: elf::STB_WEAK,
        kind: elf::STT_FUNC,
        section: ".text".into(),
        undefined: false,
        version: SymbolVersion::Named("LINUX_2.6".into()),
        hidden: false,
        versym_hidden: false,
        other: 0,
        class: ElfClass::Elf64,
    };
    assert_eq!(
        s.objdump_line(),
        "0000000000000af0  w   DF .text\t0000000000000386  LINUX_2.6   clock_gettime"
    );
    let h = DynamicSymbol {
        version: SymbolVersion::Base,
        hidden: true,
        bind: elf::STB_GLOBAL,
        name: "example".into(),
        ..s.clone()
    };
    assert_eq!(
        h.objdump_line(),
        "0000000000000af0 g    DF .text\t0000000000000386 (Base)       example"
    );
    // A requirement from .gnu.version_r (parenthesised like a hidden version) and the
    // visibilities, as binutils 2.40 prints them.
    let need = DynamicSymbol {
        version: SymbolVersion::Named("GLIBC_2.2.5".into()),
        hidden: true,
        bind: elf::STB_GLOBAL,
        value: 0,
        size: 0,
        section: "*UND*".into(),
        undefined: true,
        name: "getenv".into(),
        ..s.clone()
    };
    assert_eq!(
        need.objdump_line(),
        "0000000000000000      DF *UND*\t0000000000000000 (GLIBC_2.2.5) getenv"
    );
    for (other, tail) in [
        (elf::STV_PROTECTED, "  LINUX_2.6   .protected clock_gettime"),
        (elf::STV_HIDDEN, "  LINUX_2.6   .hidden clock_gettime"),
        (elf::STV_INTERNAL, "  LINUX_2.6   .internal clock_gettime"),
        (0x83, "  LINUX_2.6   0x83 clock_gettime"),
    ] {
        let v = DynamicSymbol { other, ..s.clone() };
        assert!(v.objdump_line().ends_with(tail), "{}", v.objdump_line());
    }
    // ELF32 (ia32/x32): 8 hex digits, as `objdump -T` prints for an elf32-i386 file.
    let s32 = DynamicSymbol {
        name: "__vdso_clock_gettime".into(),
        value: 0xc70,
        size: 0x5ae,
        bind: elf::STB_GLOBAL,
        class: ElfClass::Elf32,
        ..s
    };
    assert_eq!(
        s32.objdump_line(),
        "00000c70 g    DF .text\t000005ae  LINUX_2.6   __vdso_clock_gettime"
    );
    let h32 = DynamicSymbol {
        class: ElfClass::Elf32,
        ..h
    };
    assert_eq!(
        h32.objdump_line(),
        "00000af0 g    DF .text\t00000386 (Base)       example"
    );
}

#[test]
fn elf_class_and_abi() {
    let live = LiveVdso::locate().unwrap();
    assert_eq!(ElfClass::of(live.image()).unwrap(), ElfClass::Elf64);
    assert_eq!(VdsoAbi::of(live.image()).unwrap(), VdsoAbi::X86_64);
    assert!(live
        .elf()
        .symbols()
        .iter()
        .all(|s| s.class == ElfClass::Elf64));
    assert!(ElfClass::of(b"\x7fELF").is_err());
    assert!(ElfClass::of(&[0u8; 64]).is_err());
    // Flip the class byte: the ELF64 header no longer parses as ELF32 (or at all).
    let mut img = live.image().to_vec();
    img[4] = elf::ELFCLASS32;
    assert_eq!(ElfClass::of(&img).unwrap(), ElfClass::Elf32);
    assert!(ElfImage::parse(&img).is_err());
    img[4] = 3;
    assert!(elf_image_size(&img).is_err());
    assert_eq!(VdsoAbi::Ia32.class(), ElfClass::Elf32);
    assert_eq!(VdsoAbi::X32.to_string(), "x32 (ELF32, EM_X86_64)");
}

/// Compiles `args` with gcc into `out`; `None` (with the reason printed) if gcc is missing
/// or cannot build for the requested ABI (e.g. no gcc-multilib).
fn gcc(args: &[&std::ffi::OsStr], out: &Path) -> Option<()> {
    let Some(gcc) = tool("gcc") else {
        eprintln!("skipped: gcc not found in PATH");
        return None;
    };
    let o = Command::new(gcc)
        .args(args)
        .arg("-o")
        .arg(out)
        .output()
        .ok()?;
    if !o.status.success() {
        skip(format!(
            "gcc {args:?} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        ));
        return None;
    }
    Some(())
}

/// The symbol lines of `objdump -T path`, verbatim.
fn objdump_t_lines(objdump: &Path, path: &Path) -> Vec<String> {
    let out = Command::new(objdump).arg("-T").arg(path).output().unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "objdump -T {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    symbol_lines(&String::from_utf8(out.stdout).unwrap())
}

/// ELF64, ia32 and x32 shared objects shaped like a vDSO (versioned with a version script)
/// plus the symbol kinds a vDSO lacks (weak, hidden version, undefined, weak undefined, TLS,
/// IFUNC, protected visibility): our listing equals `objdump -T` exactly for each class.
#[test]
fn shared_objects_of_each_class_match_objdump() {
    let Some(objdump) = tool("objdump") else {
        eprintln!("skipped: objdump not found in PATH");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("v.c");
    let lds = dir.path().join("v.lds");
    fs::write(
        &src,
        "extern int ext_fn(void);\n\
         extern int ext_weak(void) __attribute__((weak));\n\
         __thread int tls_var = 1;\n\
         int __vdso_clock_gettime(int c, void *ts)\n\
         { return c + (ts != 0) + ext_fn() + (ext_weak ? ext_weak() : 0) + tls_var; }\n\
         __attribute__((weak)) int __vdso_time(void *t) { return t != 0; }\n\
         int old_fn(void) { return 1; }\n\
         int new_fn(void) { return 2; }\n\
         __asm__(\".symver old_fn,compat_fn@LINUX_2.5\");\n\
         __asm__(\".symver new_fn,compat_fn@@LINUX_2.6\");\n\
         static int ifn_impl(void) { return 0; }\n\
         static void *ifn_resolver(void) { return ifn_impl; }\n\
         int ifn(void) __attribute__((ifunc(\"ifn_resolver\")));\n\
         int data_obj = 3;\n\
         __attribute__((visibility(\"protected\"))) int prot_fn(void) { return 4; }\n",
    )
    .unwrap();
    fs::write(
        &lds,
        "LINUX_2.5 { global: __vdso_time; compat_fn; local: *; };\n\
         LINUX_2.6 { global: __vdso_clock_gettime; data_obj; compat_fn; tls_var; ifn; prot_fn; }\n\
         LINUX_2.5;\n",
    )
    .unwrap();
    let mut tested = 0;
    for (flag, abi) in [
        ("-m64", VdsoAbi::X86_64),
        ("-m32", VdsoAbi::Ia32),
        ("-mx32", VdsoAbi::X32),
    ] {
        let so = dir.path().join(format!("v{flag}.so"));
        let script = format!("-Wl,--version-script={}", lds.display());
        let args = [
            flag,
            "-shared",
            "-nostdlib",
            "-fPIC",
            "-O2",
            "-Wl,--build-id",
            "-Wl,--hash-style=both",
            &script,
        ];
        let mut args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
        args.push(src.as_os_str());
        if gcc(&args, &so).is_none() {
            continue;
        }
        let data = fs::read(&so).unwrap();
        assert_eq!(VdsoAbi::of(&data).unwrap(), abi, "{flag}");
        assert_eq!(ElfClass::of(&data).unwrap(), abi.class(), "{flag}");
        let image = ElfImage::parse(&data).unwrap();
        assert!(elf_image_size(&data).unwrap() <= data.len());
        assert!(image.build_id().is_some_and(|id| id.len() == 20));
        let syms = image.symbols();
        assert_eq!(syms, dynamic_symbols(&data).unwrap());
        assert!(syms.iter().all(|s| s.class == abi.class()));
        let ours: Vec<_> = syms.iter().map(DynamicSymbol::objdump_line).collect();
        assert_eq!(ours, objdump_t_lines(&objdump, &so), "{flag}");
        let w = abi.class().address_digits();
        for (tail, flags) in [
            (" ext_fn", "     D "),
            (" ext_weak", " w   D "),
            (" tls_var", "g    D "),
            (" ifn", "g   iD "),
            (" __vdso_time", " w   DF"),
            (" .protected prot_fn", "g    DF"),
        ] {
            assert!(
                ours.iter()
                    .any(|l| l.ends_with(tail) && &l[w + 1..w + 8] == flags),
                "{flag}: no {tail:?} with flags {flags:?}: {ours:#?}"
            );
        }
        let compat = image.find_symbol("compat_fn", "LINUX_2.6").unwrap();
        assert!(!compat.hidden);
        assert!(image.find_symbol("compat_fn", "LINUX_2.5").unwrap().hidden);
        let f = image
            .find_symbol(CLOCK_GETTIME_SYMBOL, VDSO_VERSION)
            .unwrap();
        image.check_in_exec_segment(f.value, f.size).unwrap();
        assert_eq!(image.load_bias(0x1000_0000).unwrap(), 0x1000_0000);
        tested += 1;
    }
    eprintln!("{tested} of 3 classes tested");
    if tested < 3 {
        skip(format!("only {tested} of the 3 ELF classes could be built"));
    }
}

/// Builds and starts `samples/guest-tests/c/static32.c` (`gcc -m32 -static`), an ia32
/// process; `None` (reason printed) if it cannot be built or run here.
fn start_ia32(dir: &tempfile::TempDir) -> Option<crate::child::VdsoChild> {
    // The source as compiled in, not by the checkout's path: a test binary cached by content
    // (make test) may be reused by another clone, and the one that built it may be gone.
    let src = dir.path().join("static32.c");
    fs::write(&src, include_str!("../../../guest-tests/c/static32.c")).unwrap();
    let exe = dir.path().join("static32");
    gcc(
        &[
            "-m32".as_ref(),
            "-static".as_ref(),
            "-O2".as_ref(),
            src.as_os_str(),
        ],
        &exe,
    )?;
    crate::child::VdsoChild::spawn(&exe)
        .map_err(|e| skip(format!("{e}: no IA32 emulation?")))
        .ok()
}

/// The ia32 vDSO of a running 32-bit process: an ELF32 `EM_386` image with the same
/// kernel version note as our own, versioned symbols, and an `objdump -T` identical listing.
#[test]
fn ia32_process_vdso_parses() {
    let dir = tempfile::tempdir().unwrap();
    let Some(helper) = start_ia32(&dir) else {
        return;
    };
    let dump = dump_pid(helper.pid()).unwrap();
    assert_eq!(dump.address, helper.vdso());
    let img = &dump.image;
    assert_eq!(dump.elf().abi(), VdsoAbi::Ia32);
    assert_eq!(elf_image_size(img).unwrap(), img.len());
    ElfImage::parse(img).unwrap();
    assert!(ElfImage::parse(&img[..img.len() - 1]).is_err());
    let elf = dump.elf();
    assert!(elf.build_id().is_some());
    assert_eq!(
        elf.linux_version_code(),
        dump_self().unwrap().elf().linux_version_code()
    );
    assert!(elf.symbols().iter().all(|s| s.class == ElfClass::Elf32));
    let cg = elf.find_symbol(CLOCK_GETTIME_SYMBOL, VDSO_VERSION).unwrap();
    assert_eq!(cg.kind, elf::STT_FUNC);
    assert_eq!(cg.section, ".text");
    elf.check_in_exec_segment(cg.value, cg.size).unwrap();
    elf.find_symbol("__kernel_vsyscall", "LINUX_2.5").unwrap();
    let bias = elf.load_bias(dump.address).unwrap();
    assert!(bias.wrapping_add(cg.value) < dump.address + img.len() as u64);
    if let Some(objdump) = tool("objdump") {
        let path = dir.path().join("vdso32.so");
        dump.write_to(&path).unwrap();
        let ours: Vec<_> = elf
            .symbols()
            .iter()
            .map(DynamicSymbol::objdump_line)
            .collect();
        assert_eq!(ours, objdump_t_lines(&objdump, &path));
        assert!(ours.iter().all(|l| l.as_bytes()[8] == b' '), "{ours:#?}");
    } else {
        eprintln!("objdump comparison skipped: objdump not found in PATH");
    }
}

/// `.altinstructions` as `readelf` lays it out: as many 14-byte entries as the section holds,
/// each site inside the executable segment.
#[test]
fn alternative_sites_match_the_section_table() {
    let Some(readelf) = tool("readelf") else {
        return skip("readelf not found in PATH");
    };
    let dump = dump_self().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vdso.so");
    fs::write(&path, &dump.image).unwrap();
    let out = Command::new(readelf)
        .arg("-SW")
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // [Nr] Name Type Address Off Size ES ...: the size of .altinstructions, in hex.
    let size = text
        .lines()
        .find(|l| l.contains(" .altinstructions "))
        .and_then(|l| l.split_whitespace().skip_while(|f| *f != "PROGBITS").nth(3))
        .map(|s| u64::from_str_radix(s, 16).unwrap());
    let sites = alternative_sites(&dump.image).unwrap();
    let Some(size) = size else {
        assert!(sites.is_empty(), "sites without a section: {sites:?}");
        return skip("this vDSO has no .altinstructions");
    };
    assert_eq!(sites.len() as u64 * 14, size, "{sites:?}");
    for s in &sites {
        // The assembler pads the original to the longest replacement (asm/alternative.h).
        assert!(s.len > 0 && s.replacement_len <= s.len, "{s:?}");
        dump.elf()
            .check_in_exec_segment(s.offset, u64::from(s.len))
            .unwrap_or_else(|e| panic!("{s:?}: {e:#}"));
    }
}

/// A byte rewritten inside an alternative site is a patched site; one outside every site is
/// unexplained; a size difference is not the build.
#[test]
fn compare_with_build_tells_patched_sites_from_other_bytes() {
    let built = dump_self().unwrap().image;
    let sites = alternative_sites(&built).unwrap();
    let Some(site) = sites.first() else {
        return skip("this vDSO has no .altinstructions");
    };
    let same = compare_with_build(&built, &built).unwrap();
    assert!(same.is_the_build() && same.patched.is_empty() && same.entries == sites.len());
    let mut live = built.clone();
    live[site.offset as usize] ^= 0xff;
    let d = compare_with_build(&live, &built).unwrap();
    assert!(d.is_the_build(), "{d:?}");
    assert_eq!(d.patched.len(), 1);
    assert_eq!(d.patched[0].offset, site.offset);
    // EI_PAD (e_ident[9]) is in no site.
    live[9] ^= 0xff;
    let d = compare_with_build(&live, &built).unwrap();
    assert!(!d.is_the_build());
    assert_eq!(d.unexplained, vec![(9, built[9], live[9])]);
    let d = compare_with_build(&built[..built.len() - 1], &built).unwrap();
    assert!(!d.is_the_build() && d.unexplained.is_empty());
}

/// A table entry that points outside the image is an error, never a panic or a wrong site.
#[test]
fn alternative_sites_reject_an_entry_outside_the_image() {
    let mut img = dump_self().unwrap().image;
    let Some(first) = alternative_sites(&img).unwrap().first().copied() else {
        return skip("this vDSO has no .altinstructions");
    };
    // The first entry's instr_offset field, found back from the site it gives.
    let entry = (0..img.len() - 4)
        .find(|&at| {
            let rel = i32::from_le_bytes(img[at..at + 4].try_into().unwrap());
            at as i64 + i64::from(rel) == first.offset as i64
                && img.get(at + 12) == Some(&first.len)
        })
        .expect("the first entry");
    for rel in [i32::MAX, i32::MIN] {
        img[entry..entry + 4].copy_from_slice(&rel.to_le_bytes());
        let e = alternative_sites(&img).unwrap_err();
        assert!(
            format!("{e:#}").contains("points outside the image"),
            "{e:#}"
        );
    }
    // The rest of the image still parses.
    ElfImage::parse(&img).unwrap();
}
