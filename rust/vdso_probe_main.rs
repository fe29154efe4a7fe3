// SPDX-License-Identifier: GPL-2.0

//! vdso_probe: the vDSO as the kernel sees it.
//!
//! `/sys/kernel/debug/vdso/<tgid>` reports, for every user process, its `[vvar]`,
//! `[vvar_vclock]` and `[vdso]` mappings, the vsyscall mode and the cross-checks (saved
//! `AT_SYSINFO_EHDR`, `mm->context.vdso`, time namespace); `vsyscall` and `summary` are global.
//! The line format is specified in the README. `/dev/vdso_probe` publishes a time page that
//! userspace maps read-only and that is populated on page fault (`timepage`). `attribution`
//! counts every process's time system calls by origin (`fallbacks`, the reports), and the
//! timekeeping notifier logs clocksource changes (`clocksource_log`).

use kernel::{
    prelude::*,
    sync::Arc, //
};

mod attribution;
mod faults;
mod ffi;
mod registry;
mod report;
mod timepage;
mod vsyscall;

use attribution::Attribution;
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
        attribution: bool {
            default: true,
            description: "Count the time system calls from load on (the attribution file switches it)",
        },
    },
}

/// The module state. `init` builds it step by step, the user-visible interfaces last (the hooks,
/// the scan, then `/dev/vdso_probe`), so that a failure at any step drops what exists through the
/// same `Drop` as `rmmod`: nothing stays queued, registered or allocated. Teardown: the device,
/// then the hooks (no new events), then the registry's background work is stopped; then the
/// fields drop in order: the global files, the registry (every per-process file and the
/// directory), the attribution table, the time page. The attribution probes are attached last
/// (after the hooks, which tell it of every exec and exit) and detached first.
struct VdsoProbe {
    device: Option<Pin<KBox<timepage::TimeDevice>>>,
    hooks: Option<ffi::Hooks<Registry>>,
    globals: KVec<ffi::DebugfsFile<Node>>,
    switch: Option<ffi::DebugfsFile<attribution::SwitchFile>>,
    registry: Arc<Registry>,
    attribution: Arc<Attribution>,
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
        let faults = faults::FaultLog::new()?;
        let time = timepage::TimeState::new(faults.clone())?;
        let attribution = Attribution::new(time.clone(), vsyscall)?;
        let registry = Registry::new(vsyscall, attribution.clone(), faults.clone())?;
        let mut this = VdsoProbe {
            device: None,
            hooks: None,
            globals: KVec::with_capacity(7, GFP_KERNEL)?,
            switch: None,
            registry,
            attribution,
            time,
        };
        let reg = &this.registry;
        for (name, node) in [
            (c"vsyscall", Node::Vsyscall(reg.vsyscall())),
            (c"summary", Node::Summary(reg.stats(), this.time.clone())),
            (c"timepage", Node::TimePage(this.time.clone())),
            (c"fallbacks", Node::Fallbacks(this.attribution.clone())),
            (c"clocksource_log", Node::ClocksourceLog(this.time.clone())),
            (c"layout", Node::Layout),
            (c"faults", Node::Faults(faults)),
        ] {
            let file = reg.global_file(name, node)?;
            this.globals.push(file, GFP_KERNEL)?;
        }
        let switch = attribution::SwitchFile(this.attribution.clone());
        this.switch = Some(reg.other_file(c"attribution", Arc::new(switch, GFP_KERNEL)?)?);
        // Hooks before the scan: a process forked during the scan is seen by one or the other.
        this.hooks = Some(ffi::Hooks::register(this.registry.clone())?);
        this.registry.scan()?;
        // Without attribution the rest still works: said, not fatal.
        if module_parameters::attribution.value() {
            if let Err(e) = this.attribution.set(true) {
                pr_warn!(
                    "attribution not started ({e:?}): echo on > .../vdso/attribution retries\n"
                );
            }
        }
        this.device = Some(timepage::TimeDevice::new(this.time.clone())?);
        Ok(this)
    }
}

impl Drop for VdsoProbe {
    fn drop(&mut self) {
        drop(self.device.take());
        // The attribution probes hold a reference to the table: detached for good first.
        self.attribution.close();
        // No probe runs once the hooks are gone; after the shutdown no work item runs or holds
        // the registry, so the last reference, and the registry's teardown, is ours.
        drop(self.hooks.take());
        self.registry.shutdown();
    }
}
