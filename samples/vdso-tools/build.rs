// SPDX-License-Identifier: GPL-2.0
//! Builds `c/classic_loop.c` (the classic gettimeofday vDSO-vs-syscall loop) into a static
//! library linked into `vdso-bench`.

fn main() {
    // The Makefile's copy when it gives one (VDSO_PROBE_STAGED; see vdso-probe's build.rs).
    println!("cargo::rerun-if-env-changed=VDSO_PROBE_STAGED");
    let source = match std::env::var("VDSO_PROBE_STAGED") {
        Ok(dir) => format!("{dir}/classic_loop.c"),
        Err(_) => "c/classic_loop.c".to_string(),
    };
    println!("cargo::rerun-if-changed={source}");
    cc::Build::new()
        .file(&source)
        .std("c11")
        .warnings(true)
        .extra_warnings(true)
        .flag_if_supported("-Wstrict-prototypes")
        .opt_level(2)
        .compile("vdso_probe_classic");
}
