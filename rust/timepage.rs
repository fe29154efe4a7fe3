// SPDX-License-Identifier: GPL-2.0

//! The time page: `/dev/vdso_probe`, a read-only page of timekeeping data populated on fault.
//!
//! `mmap` accepts only a read-only shared mapping of the one page (`uapi/vdso_probe.h`) and maps
//! nothing; the first access faults and [`TimeState::fault`] inserts the page, as the vDSO's own
//! data pages have been populated since v4.5. The page's content is written by the shim on every
//! timekeeping update. Open files keep the module loaded (`rmmod` fails: `delete_module` returns
//! `EWOULDBLOCK`, "module in use").

use crate::faults::FaultLog;
use crate::ffi::{
    self,
    Fault,
    FaultEvent,
    PublishedPage,
    TimePageStats,
    VmaHandler, //
    ACCESS_READ,
    MAP_TIMEPAGE,
};
use core::fmt;
use kernel::{
    fs::File,
    miscdevice::{
        MiscDevice,
        MiscDeviceOptions,
        MiscDeviceRegistration, //
    },
    mm::virt::{
        flags,
        VmaNew,
        VmaRef, //
    },
    page::PAGE_SIZE,
    prelude::*,
    seq_file::SeqFile,
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        Arc, ArcBorrow,
    },
};

/// The page and its counters; shared by the device, open files, mappings and debugfs.
pub(crate) struct TimeState {
    page: PublishedPage,
    /// Told of every user fault that maps the page.
    fault_log: Arc<FaultLog>,
    /// Live mappings (VMAs).
    mappings: Atomic<i64>,
    /// `mmap` calls accepted.
    mmaps: Atomic<u64>,
    /// Faults handled.
    faults: Atomic<u64>,
}

impl VmaHandler for TimeState {
    fn fault(&self, vma: &VmaRef, pgoff: usize, address: usize, user: bool) -> Fault {
        self.faults.fetch_add(1, Relaxed);
        if pgoff != 0 {
            return Fault::SigBus;
        }
        // `mmap` set VM_MIXEDMAP, which `vm_insert_page` needs in a fault handler.
        let Some(vma) = vma.as_mixedmap_vma() else {
            return Fault::SigBus;
        };
        // The page of the faulting task's time namespace, as the vDSO's vvar_fault() does it.
        let page = match self.page.page_for_current() {
            Ok(page) => page,
            Err(ENOMEM) => return Fault::Oom,
            Err(_) => return Fault::SigBus,
        };
        match vma.vm_insert_page(address, &page.page()) {
            Ok(()) => {
                if user {
                    self.fault_log
                        .record(&FaultEvent::now(MAP_TIMEPAGE, 0, ACCESS_READ));
                }
                Fault::NoPage
            }
            // EBUSY: another thread's fault mapped it first.
            Err(EBUSY) => Fault::NoPage,
            Err(ENOMEM) => Fault::Oom,
            Err(_) => Fault::SigBus,
        }
    }

    fn open(&self) {
        self.mappings.fetch_add(1, Relaxed);
    }

    fn close(&self) {
        self.mappings.fetch_sub(1, Relaxed);
    }
}

impl TimeState {
    /// Checks a new mapping and arms the fault handler; maps nothing.
    fn mmap(&self, vma: &VmaNew) -> Result {
        let f = vma.flags();
        if f & flags::MAYSHARE == 0 {
            return Err(EINVAL); // MAP_PRIVATE
        }
        if f & (flags::WRITE | flags::EXEC) != 0 {
            return Err(EPERM);
        }
        if ffi::vma_pgoff(vma) != 0 || vma.end() - vma.start() > PAGE_SIZE {
            return Err(EINVAL);
        }
        // A later mprotect(PROT_WRITE|PROT_EXEC) fails with EACCES; growing mremap with EFAULT.
        vma.try_clear_maywrite()?;
        vma.try_clear_mayexec()?;
        vma.set_dontexpand();
        vma.set_dontdump();
        vma.set_mixedmap();
        // SAFETY: the VMA holds `vm_file`, whose private data is an `Arc` of `self` released only
        // when the file is, which is after every VMA derived from this one has been closed.
        unsafe { ffi::install(vma, self) };
        self.mmaps.fetch_add(1, Relaxed);
        self.mappings.fetch_add(1, Relaxed);
        Ok(())
    }
}

/// The clocksource as the last timekeeping update saw it, for `summary`.
pub(crate) struct Clocksource(TimePageStats);

impl TimeState {
    /// The current clocksource and whether the vDSO can read it.
    pub(crate) fn clocksource(&self) -> Clocksource {
        Clocksource(self.page.stats())
    }
}

impl TimeState {
    /// The published page (the attribution probes read its clock mode and clocksource log).
    pub(crate) fn page(&self) -> &PublishedPage {
        &self.page
    }

    /// Event number `seq` of the clocksource log, if it is still kept (any context but NMI).
    pub(crate) fn log_entry(&self, seq: u64) -> Option<ffi::CsEvent> {
        self.page.log_entry(seq)
    }

    /// Writes `clocksource_log`: one line per clocksource change, oldest first (copied out of
    /// the shim's ring first).
    pub(crate) fn show_log(&self, out: &SeqFile) -> Result {
        let (events, total) = self.page.clocksource_log()?;
        out.call_printf(format_args!(
            "# seq monotonic_ns realtime_s clocksource rating vdso_clock_mode ({total} events, \
             the last {} kept)\n",
            ffi::CS_LOG_LEN
        ));
        for e in events.iter() {
            out.call_printf(format_args!(
                "{} {} {} {} {} {}\n",
                e.seq,
                e.mono_ns,
                e.real_sec,
                ffi::str_until_nul(&e.clocksource),
                e.rating,
                ffi::str_until_nul(&e.clock_mode)
            ));
        }
        Ok(())
    }
}

fn clock_mode_name(s: &TimePageStats) -> &str {
    ffi::str_until_nul(&s.clock_mode)
}

fn clocksource_name(s: &TimePageStats) -> &str {
    ffi::str_until_nul(&s.clocksource)
}

impl fmt::Display for Clocksource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "clocksource: {}", clocksource_name(&self.0))?;
        writeln!(f, "vdso_clock_mode: {}", clock_mode_name(&self.0))?;
        // VDSO_CLOCKMODE_NONE: the vDSO falls back to the syscall for the precise clocks.
        let readable = if self.0.vdso_readable != 0 {
            "yes"
        } else {
            "no"
        };
        writeln!(f, "vdso_readable: {readable}")
    }
}

impl fmt::Display for TimeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.page.stats();
        writeln!(f, "mappings: {}", self.mappings.load(Relaxed))?;
        writeln!(f, "mmaps: {}", self.mmaps.load(Relaxed))?;
        writeln!(f, "faults: {}", self.faults.load(Relaxed))?;
        writeln!(f, "updates: {}", s.updates)?;
        writeln!(f, "clock_mode: {}", clock_mode_name(&s))?;
        writeln!(f, "clocksource: {}", clocksource_name(&s))?;
        writeln!(f, "abi_size: {}", s.abi_size)
    }
}

impl TimeState {
    /// Allocates the page and starts publishing.
    pub(crate) fn new(fault_log: Arc<FaultLog>) -> Result<Arc<Self>> {
        Ok(Arc::new(
            TimeState {
                page: PublishedPage::new()?,
                fault_log,
                mappings: Atomic::new(0),
                mmaps: Atomic::new(0),
                faults: Atomic::new(0),
            },
            GFP_KERNEL,
        )?)
    }
}

/// The misc device and the state its files share.
#[pin_data]
pub(crate) struct TimeDevice {
    /// Declared first, so dropped first: `misc_deregister` runs while `state` is still alive, and
    /// an `open` racing the teardown (possible while a failing init unwinds) never sees a
    /// dropped `state`.
    #[pin]
    reg: MiscDeviceRegistration<TimeFile>,
    /// Initialised before `reg`, so an `open` racing the registration finds it.
    state: Arc<TimeState>,
}

impl TimeDevice {
    /// Registers `/dev/vdso_probe` for `state`.
    pub(crate) fn new(state: Arc<TimeState>) -> Result<Pin<KBox<Self>>> {
        KBox::try_pin_init(
            try_pin_init!(Self {
                state,
                reg <- MiscDeviceRegistration::register(MiscDeviceOptions {
                    name: c"vdso_probe",
                }),
            }),
            GFP_KERNEL,
        )
    }
}

/// An open `/dev/vdso_probe`.
pub(crate) struct TimeFile;

#[vtable]
impl MiscDevice for TimeFile {
    type Ptr = Arc<TimeState>;

    fn open(_file: &File, misc: &MiscDeviceRegistration<Self>) -> Result<Arc<TimeState>> {
        let reg = core::ptr::from_ref(misc);
        // SAFETY: every `MiscDeviceRegistration<TimeFile>` is the `reg` field of a pinned
        // `TimeDevice` (`TimeDevice::new` is the only constructor). `misc_open` calls us only
        // while the device is registered; `state` is initialised before and dropped after the
        // registration (field order), so it is alive for this call.
        let dev = unsafe { &*kernel::container_of!(reg, TimeDevice, reg) };
        Ok(dev.state.clone())
    }

    fn mmap(state: ArcBorrow<'_, TimeState>, _file: &File, vma: &VmaNew) -> Result {
        state.mmap(vma)
    }
}
