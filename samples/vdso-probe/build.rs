// SPDX-License-Identifier: GPL-2.0
//! Generates Rust bindings for the time page ABI, `rust/uapi/vdso_probe.h`, the one definition
//! shared with the module. The output (`$OUT_DIR/vdso_probe_uapi.rs`) is `include!`d by
//! `src/timepage.rs`; bindgen's layout assertions in it fail the build if the Rust view of a
//! struct ever differs from what clang computes for the header.
//!
//! Generated at build time rather than committed: a committed copy would be a second
//! definition of the ABI to keep in step with the header (the module and this library must
//! compile the same text). The cost is libclang at build time, which scripts/setup installs
//! (Debian's llvm-19, the same toolchain the kernel's bindgen uses); `LIBCLANG_PATH` overrides
//! the default below.

use std::{env, path::PathBuf};

/// Where Debian's libclang lives (the same default as the Makefile and scripts/lib.sh).
const DEFAULT_LIBCLANG_PATH: &str = "/usr/lib/llvm-19/lib";

fn main() {
    // The Makefile's copy of rust/uapi/vdso_probe.h (VDSO_PROBE_STAGED: cargo compares this
    // input's mtime, which a fresh clone renews; the copy keeps it while the content is the same,
    // so a clone reuses the cached build), or the header itself, by a path relative to the
    // package (a build script runs there) that does not name the checkout.
    println!("cargo::rerun-if-env-changed=VDSO_PROBE_STAGED");
    let header = match env::var("VDSO_PROBE_STAGED") {
        Ok(dir) => format!("{dir}/vdso_probe.h"),
        Err(_) => "../../rust/uapi/vdso_probe.h".to_string(),
    };
    let header = header.as_str();
    println!("cargo::rerun-if-changed={header}");
    println!("cargo::rerun-if-env-changed=LIBCLANG_PATH");

    if env::var_os("LIBCLANG_PATH").is_none() {
        // Build scripts are single-threaded until bindgen starts, so setting the variable that
        // clang-sys reads when it loads libclang is race-free here.
        env::set_var("LIBCLANG_PATH", DEFAULT_LIBCLANG_PATH);
    }

    let bindings = bindgen::Builder::default()
        .header(header)
        // Only the ABI; the types it uses from <linux/types.h> (`__u32`, ...) follow.
        .allowlist_item("(vdso_probe|VDSO_PROBE)_.*")
        .use_core()
        .layout_tests(true)
        .derive_default(true)
        .derive_debug(true)
        .derive_eq(true)
        .derive_hash(false)
        .generate_cstr(true)
        .prepend_enum_name(false)
        .default_enum_style(bindgen::EnumVariation::Consts)
        .formatter(bindgen::Formatter::Prettyplease)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .unwrap_or_else(|e| panic!("bindgen failed on {header}: {e}"));

    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR")).join("vdso_probe_uapi.rs");
    bindings
        .write_to_file(&out)
        .unwrap_or_else(|e| panic!("writing {}: {e}", out.display()));
}
