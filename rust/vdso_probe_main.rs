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

/// The module state. Teardown: hooks first (no new events), then queued events are flushed, then
/// the fields drop in order: the global files, then the registry (which removes every
/// per-process file and the directory).
struct VdsoProbe {
    hooks: Option<ffi::Hooks<Registry>>,
    _vsyscall: ffi::DebugfsFile<Node>,
    _summary: ffi::DebugfsFile<Node>,
    _timepage_stats: ffi::DebugfsFile<Node>,
    _timepage: Pin<KBox<timepage::TimeDevice>>,
    registry: Arc<Registry>,
}

impl kernel::Module for VdsoProbe {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        kernel::warn_on!(module_parameters::selftest_warn.value());
        let registry = Registry::new(vsyscall::detect())?;
        let vsyscall = registry.global_file(c"vsyscall", Node::Vsyscall(registry.vsyscall()))?;
        let timepage = timepage::TimeDevice::new()?;
        let summary = registry.global_file(
            c"summary",
            Node::Summary(registry.stats(), timepage.state()),
        )?;
        let timepage_stats = registry.global_file(c"timepage", Node::TimePage(timepage.state()))?;
        // Hooks before the scan: a process forked during the scan is seen by one or the other.
        let hooks = ffi::Hooks::register(registry.clone())?;
        registry.scan()?;
        Ok(VdsoProbe {
            hooks: Some(hooks),
            _vsyscall: vsyscall,
            _summary: summary,
            _timepage_stats: timepage_stats,
            _timepage: timepage,
            registry,
        })
    }
}

impl Drop for VdsoProbe {
    fn drop(&mut self) {
        // No probe runs once the hooks are gone; after the flush no work item holds the registry,
        // so the last reference, and the registry's teardown, is ours.
        drop(self.hooks.take());
        self.registry.flush();
    }
}
