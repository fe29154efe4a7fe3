// SPDX-License-Identifier: GPL-2.0

//! vdso_probe: the vDSO as the kernel sees it.
//!
//! `/sys/kernel/debug/vdso/<tgid>` reports, for every user process, its `[vvar]`,
//! `[vvar_vclock]` and `[vdso]` mappings, the vsyscall mode and the cross-checks (saved
//! `AT_SYSINFO_EHDR`, `mm->context.vdso`, time namespace); `vsyscall` and `summary` are global.
//! The line format is specified in the README. `/dev/vdso_probe` publishes a time page that
//! userspace maps read-only and that is populated on page fault (`timepage`).

use kernel::{
    prelude::*,
    sync::Arc, //
};

mod ffi;
mod registry;
mod report;
mod timepage;
mod vsyscall;

use registry::{
    Node,
    Registry, //
};

module! {
    type: VdsoProbe,
    name: "vdso_probe",
    authors: ["vdso_probe developers"],
    description: "Per-process vDSO, vvar and vsyscall report in debugfs",
    license: "GPL",
    params: {
        selftest_warn: bool {
            default: false,
            description: "Hit a WARN_ON at load: lets the test harness prove it catches splats",
        },
    },
}

/// The module state. `init` builds it step by step, the user-visible interfaces last (the hooks,
/// the scan, then `/dev/vdso_probe`), so that a failure at any step drops what exists through the
/// same `Drop` as `rmmod`: nothing stays queued, registered or allocated. Teardown: the device,
/// then the hooks (no new events), then the registry's background work is stopped; then the
/// fields drop in order: the global files, the registry (every per-process file and the
/// directory), the time page.
struct VdsoProbe {
    device: Option<Pin<KBox<timepage::TimeDevice>>>,
    hooks: Option<ffi::Hooks<Registry>>,
    globals: KVec<ffi::DebugfsFile<Node>>,
    registry: Arc<Registry>,
    time: Arc<timepage::TimeState>,
}

impl kernel::Module for VdsoProbe {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        kernel::warn_on!(module_parameters::selftest_warn.value());
        let vsyscall = vsyscall::detect().inspect_err(|e| {
            pr_err!(
                "cannot tell the vsyscall mode (reading /proc/self/maps, /proc/cmdline): {e:?}\n"
            );
        })?;
        let registry = Registry::new(vsyscall)?;
        let time = timepage::TimeState::new()?;
        let mut this = VdsoProbe {
            device: None,
            hooks: None,
            globals: KVec::with_capacity(3, GFP_KERNEL)?,
            registry,
            time,
        };
        let reg = &this.registry;
        for (name, node) in [
            (c"vsyscall", Node::Vsyscall(reg.vsyscall())),
            (c"summary", Node::Summary(reg.stats(), this.time.clone())),
            (c"timepage", Node::TimePage(this.time.clone())),
        ] {
            let file = reg.global_file(name, node)?;
            this.globals.push(file, GFP_KERNEL)?;
        }
        // Hooks before the scan: a process forked during the scan is seen by one or the other.
        this.hooks = Some(ffi::Hooks::register(this.registry.clone())?);
        this.registry.scan()?;
        this.device = Some(timepage::TimeDevice::new(this.time.clone())?);
        Ok(this)
    }
}

impl Drop for VdsoProbe {
    fn drop(&mut self) {
        drop(self.device.take());
        // No probe runs once the hooks are gone; after the shutdown no work item runs or holds
        // the registry, so the last reference, and the registry's teardown, is ours.
        drop(self.hooks.take());
        self.registry.shutdown();
    }
}
