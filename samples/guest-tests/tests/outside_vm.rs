// SPDX-License-Identifier: GPL-2.0
//! The guest test binary refuses to run a test outside the test VM (it would insmod, rmmod and
//! remount debugfs on the host).

use std::process::Command;

#[test]
fn refuses_to_run_a_test_on_the_host() {
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    assert!(
        !cmdline.contains("VP_FLAVOUR="),
        "this host test runs on the host, not in the test VM"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_vdso-guest-tests"))
        .arg("module-load-unload")
        .env_remove("VDSO_GUEST_TESTS_ANYWHERE")
        .output()
        .expect("run vdso-guest-tests");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("vdso-guest-tests: refusing to run outside the test VM"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    // Listing the tests is harmless and allowed.
    let list = Command::new(env!("CARGO_BIN_EXE_vdso-guest-tests"))
        .arg("--list")
        .output()
        .expect("run vdso-guest-tests --list");
    assert!(list.status.success());
    assert!(String::from_utf8_lossy(&list.stdout)
        .lines()
        .any(|l| l == "module-load-unload"));
}
