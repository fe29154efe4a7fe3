/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The C half of vdso_probe's FFI layer: what Rust cannot reach in 7.3 (macros, inline functions,
 * arch and timekeeping headers outside bindings_helper.h, RCU list walks): shim.c, and
 * shim_<arch>.c for the arch's facts (shim_arch.h). Each plain struct here
 * is mirrored by a #[repr(C)] type in rust/ffi.rs; both sides assert its size (VP_SIZEOF_*), so
 * the two cannot drift apart silently. Objects with callbacks (struct vp_hooks,
 * struct vp_timepage) are opaque to Rust and allocated per instance here: no C global holds a
 * callback or instance data.
 */
#ifndef VDSO_PROBE_SHIM_H
#define VDSO_PROBE_SHIM_H

#include <linux/types.h>

struct mm_struct;
struct page;
struct pid;
struct task_struct;
struct vm_area_struct;
struct workqueue_struct;
struct vp_attr;
struct vp_hooks;
struct vp_timepage;

#define VP_COMM_LEN 16

/* Decoded vm_flags: our own stable bits, so Rust never depends on VM_* macro expansions. */
enum {
	VP_VM_READ = 1 << 0,
	VP_VM_WRITE = 1 << 1,
	VP_VM_EXEC = 1 << 2,
	VP_VM_MAYSHARE = 1 << 3,
	VP_VM_IO = 1 << 4,
	VP_VM_PFNMAP = 1 << 5,
	VP_VM_MIXEDMAP = 1 << 6,
	VP_VM_DONTEXPAND = 1 << 7,
	VP_VM_DONTDUMP = 1 << 8,
	VP_VM_SEALED = 1 << 9,
	VP_VM_MAYWRITE = 1 << 10,
	VP_VM_MAYEXEC = 1 << 11,
};

struct vp_vma {
	unsigned long start, end, pgoff;
	const char *name; /* vm_ops->name(vma) of a VMA without a file, or NULL */
	u32 flags;        /* VP_VM_* */
	bool has_file;
};
#define VP_SIZEOF_VMA 40

struct vp_mm {
	unsigned long vdso_base;         /* mm->context.vdso */
	unsigned long image_size;        /* the vDSO image's size (x86: vdso_image; arm64: the VMA) */
	unsigned long auxv_sysinfo_ehdr; /* AT_SYSINFO_EHDR in mm->saved_auxv */
	int map_count;
	u16 image_machine;               /* e_machine of the mapped vDSO image */
	u8 image_class;                  /* EI_CLASS of the mapped vDSO image (0: none) */
	bool auxv_has_sysinfo_ehdr;
	bool has_vsyscall;               /* MM_CONTEXT_HAS_VSYSCALL */
};
#define VP_SIZEOF_MM 40

struct vp_timens {
	s64 mono_sec, mono_nsec, boot_sec, boot_nsec;
	unsigned long vvar_pfn; /* pfn of the namespace's vvar page, 0 for the root namespace */
	unsigned int inum;
	bool is_root;
};
#define VP_SIZEOF_TIMENS 48

struct vp_vvar_layout {
	u32 nr_pages, time, timens, rng, arch_start, arch_end;
	u32 vclock_pages, pvclock, hvclock; /* [vvar_vclock] */
};
#define VP_SIZEOF_VVAR_LAYOUT 36

struct vp_tp_stats {
	u64 updates;
	u32 vdso_readable;   /* clock_mode != VDSO_CLOCKMODE_NONE */
	u32 abi_size;
	char clocksource[32];
	char clock_mode[16]; /* the kernel's name of the VDSO_CLOCKMODE_* value */
	u32 clock_was_set_seq;
	u32 __pad;
};
#define VP_SIZEOF_TP_STATS 72

/* One change of clocksource or of its vdso_clock_mode, as the timekeeping notifier saw it. */
struct vp_cs_event {
	u64 seq;             /* the event's number since load */
	s64 mono_ns;         /* CLOCK_MONOTONIC at the timekeeping update that showed it */
	s64 real_sec;        /* CLOCK_REALTIME seconds at the same update */
	u32 mode;            /* vdso_clock_mode */
	u32 rating;
	char clocksource[32];
	char clock_mode[16]; /* the kernel's name of the VDSO_CLOCKMODE_* value */
};
#define VP_SIZEOF_CS_EVENT 80
#define VP_CS_LOG_LEN 64

enum { VP_EV_ADD = 0, VP_EV_REMOVE = 1, VP_EV_EXEC = 2 };
typedef void (*vp_task_event_fn)(void *data, struct task_struct *t, int ev);

/* A fault that populates a page of the vDSO's mappings or of the module's time page. */
enum { VP_MAP_VVAR, VP_MAP_VCLOCK, VP_MAP_VDSO, VP_MAP_TIMEPAGE };
enum { VP_ACCESS_READ, VP_ACCESS_EXEC = 2 };
struct vp_fault_event {
	int tgid;        /* in the initial pid namespace */
	u8 mapping;      /* VP_MAP_* */
	u8 access;       /* VP_ACCESS_* */
	u16 page;        /* the page's index in its mapping */
	u64 ns;          /* CLOCK_MONOTONIC at the fault */
	u64 start_ns;    /* CLOCK_MONOTONIC when the process was forked (group leader's start) */
};
#define VP_SIZEOF_FAULT_EVENT 24
/* In the faulting task, interrupts off (the page fault's entry): must not sleep. */
typedef void (*vp_fault_fn)(void *data, const struct vp_fault_event *ev);
void vp_fault_event_now(struct vp_fault_event *ev, u8 mapping, u16 page, u8 access);

bool vp_pid_alive(struct pid *pid);
struct pid *vp_next_tgid(int *nr);
struct task_struct *vp_tgid_live_thread(struct pid *pid);
void vp_task_comm(struct task_struct *t, char *out);
int vp_task_timens(struct task_struct *t, struct vp_timens *out);
bool vp_task_addr32(struct task_struct *t);

int vp_mmap_read_lock(struct mm_struct *mm);
void vp_mm_info(struct mm_struct *mm, bool addr32, struct vp_mm *out);
unsigned long vp_user_pfn(struct mm_struct *mm, unsigned long addr);
void vp_vma_info(struct vm_area_struct *vma, struct vp_vma *out);
void vp_vvar_layout(struct vp_vvar_layout *out);

/* One line of /sys/kernel/debug/vdso/layout: a constant (n == 1) or offset, size, count (n == 3). */
struct vp_layout_entry {
	const char *name;
	u32 v[3];
	u32 n;
};
const struct vp_layout_entry *vp_layout_entry(unsigned int i);

bool vp_vsyscall_pte_user(void);
ssize_t vp_read_file(const char *path, char *buf, size_t len);

struct vp_hooks *vp_hooks_register(vp_task_event_fn fn, vp_fault_fn fault, void *data);
/* Whether the arch's fault hook sees the faults on [vvar], [vvar_vclock] and [vdso]. */
bool vp_vdso_faults_traced(void);
void vp_hooks_unregister(struct vp_hooks *hooks);

/* Attribution: the time system calls and vsyscalls, as the probes see them. */
enum {
	VP_SC_CLOCK_GETTIME,
	VP_SC_CLOCK_GETTIME64,
	VP_SC_GETTIMEOFDAY,
	VP_SC_TIME,
	VP_SC_CLOCK_GETRES,
	VP_SC_CLOCK_GETRES_TIME64,
	VP_SC_GETCPU,
	VP_SC_GETRANDOM,
	VP_SC_VSYSCALL, /* a call into the vsyscall page; clock is the vsyscall number */
	VP_NR_SC,
};
enum {
	VP_ORIGIN_ELSEWHERE, /* the caller made the system call itself: it bypassed the vDSO */
	VP_ORIGIN_VDSO,      /* from the [vdso] text: the vDSO's own fallback */
	VP_ORIGIN_NO_VDSO,   /* the process has no [vdso] */
	VP_ORIGIN_VSYSCALL,  /* the vsyscall emulation */
};
struct vp_time_call {
	int tgid;        /* in the initial pid namespace */
	int clock;       /* the clockid_t argument, the vsyscall number, else 0 */
	u8 syscall;      /* VP_SC_* */
	u8 origin;       /* VP_ORIGIN_* */
	bool compat;     /* the ia32 entry point */
	bool readable;   /* VP_ORIGIN_VDSO: the clocksource was readable by the vDSO at the call */
	u32 cs_seq;      /* VP_ORIGIN_VDSO: the clocksource log's events at the call (the last is
			  * the clocksource then) */
	u64 count;       /* how many such calls since the last take (the probe merges repeats) */
};
#define VP_SIZEOF_TIME_CALL 24
/* A CPU's ring is full: drain every ring now (any context but NMI); false if it cannot. */
typedef bool (*vp_attr_full_fn)(void *data);

struct vp_attr *vp_attr_alloc(vp_attr_full_fn fn, void *data, struct vp_timepage *tp);
int vp_attr_start(struct vp_attr *attr);
void vp_attr_stop(struct vp_attr *attr);
unsigned int vp_attr_take(struct vp_attr *attr, struct vp_time_call *out, unsigned int max,
			  unsigned int *cpu);
void vp_attr_unregister(struct vp_attr *attr);
bool vp_tgid_comm(int tgid, char *out);
bool vp_timepage_log_entry(struct vp_timepage *tp, u64 seq, struct vp_cs_event *out);

struct vp_timepage *vp_timepage_start(struct page *page);
void vp_timepage_stop(struct vp_timepage *tp);
struct page *vp_timepage_page_get(struct vp_timepage *tp);
void vp_timepage_page_put(struct page *page);
void vp_timepage_stats(const struct vp_timepage *tp, struct vp_tp_stats *out);
unsigned int vp_timepage_log(struct vp_timepage *tp, struct vp_cs_event *out, unsigned int max,
			     u64 *total);

struct workqueue_struct *vp_alloc_wq(const char *name, unsigned int flags, int max_active);

#endif /* VDSO_PROBE_SHIM_H */
