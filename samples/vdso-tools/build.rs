// SPDX-License-Identifier: GPL-2.0
//! Builds `c/classic_loop.c` (the classic gettimeofday vDSO-vs-syscall loop) into a static
//! library linked into `vdso-bench`.

fn main() {
    println!("cargo::rerun-if-changed=c/classic_loop.c");
    cc::Build::new()
        .file("c/classic_loop.c")
        .std("c11")
        .warnings(true)
        .extra_warnings(true)
        .flag_if_supported("-Wstrict-prototypes")
        .opt_level(2)
        .compile("vdso_probe_classic");
}
