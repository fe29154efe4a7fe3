/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The C half of vdso_probe's FFI layer. Mirrored field for field by the #[repr(C)] types and the
 * extern "C" block in rust/ffi.rs; keep the two in step.
 */
#ifndef VDSO_PROBE_SHIM_H
#define VDSO_PROBE_SHIM_H

#include <linux/types.h>

struct dentry;
struct mm_struct;
struct page;
struct pid;
struct seq_file;
struct task_struct;
struct vm_area_struct;
struct workqueue_struct;

#define VP_COMM_LEN 16

/* Decoded vm_flags: our own stable bits, so Rust never depends on VM_* macro expansions. */
enum {
	VP_VM_READ = 1 << 0,
	VP_VM_WRITE = 1 << 1,
	VP_VM_EXEC = 1 << 2,
	VP_VM_SHARED = 1 << 3,
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
	const char *name; /* vm_ops->name(vma), or NULL */
	u32 flags;        /* VP_VM_* */
	bool has_file;
};

struct vp_mm {
	unsigned long vdso_base;         /* mm->context.vdso */
	unsigned long image_size;        /* mm->context.vdso_image->size */
	unsigned long auxv_sysinfo_ehdr; /* AT_SYSINFO_EHDR in mm->saved_auxv */
	int map_count;
	u16 image_machine;               /* e_machine of the mapped vDSO image */
	u8 image_class;                  /* EI_CLASS of the mapped vDSO image (0: none) */
	bool auxv_has_sysinfo_ehdr;
	bool has_vsyscall;               /* MM_CONTEXT_HAS_VSYSCALL */
};

struct vp_timens {
	s64 mono_sec, mono_nsec, boot_sec, boot_nsec;
	unsigned long vvar_pfn; /* pfn of the namespace's vvar page, 0 for the root namespace */
	unsigned int inum;
	bool is_root;
};

struct vp_vvar_layout {
	u32 nr_pages, time, timens, rng, arch_start, arch_end;
	u32 vclock_pages, pvclock, hvclock; /* [vvar_vclock] */
};

enum { VP_EV_ADD = 0, VP_EV_REMOVE = 1 };
typedef void (*vp_task_event_fn)(void *data, struct task_struct *t, int ev);
typedef int (*vp_open_fn)(void *data);
typedef int (*vp_show_fn)(struct seq_file *m, void *data);

struct pid *vp_task_tgid_pid(struct task_struct *t);
struct task_struct *vp_pid_task(struct pid *pid);
void vp_put_task(struct task_struct *t);
void vp_put_pid(struct pid *pid);
int vp_pid_nr(struct pid *pid);
bool vp_task_is_kthread(struct task_struct *t);
bool vp_pid_alive(struct pid *pid);
struct pid *vp_next_tgid(int *nr);
void vp_task_comm(struct task_struct *t, char *out);
int vp_may_inspect(struct task_struct *t);
int vp_task_timens(struct task_struct *t, struct vp_timens *out);
bool vp_task_addr32(struct task_struct *t);

struct mm_struct *vp_task_mm(struct task_struct *t);
void vp_mmput(struct mm_struct *mm);
int vp_mmap_read_lock(struct mm_struct *mm);
void vp_mmap_read_unlock(struct mm_struct *mm);
void vp_mm_info(struct mm_struct *mm, struct vp_mm *out);
unsigned long vp_user_pfn(struct mm_struct *mm, unsigned long addr);
struct vm_area_struct *vp_vma_lookup(struct mm_struct *mm, unsigned long addr);
struct vm_area_struct *vp_vma_next(struct mm_struct *mm, unsigned long addr);
void vp_vma_info(struct vm_area_struct *vma, struct vp_vma *out);
void vp_vvar_layout(struct vp_vvar_layout *out);

bool vp_vsyscall_pte_user(void);
ssize_t vp_read_cmdline(char *buf, size_t len);

int vp_hooks_register(vp_task_event_fn fn, void *data);
void vp_hooks_unregister(void);

void vp_debugfs_set_ops(vp_open_fn open, vp_show_fn show);
struct dentry *vp_debugfs_file(const char *name, struct dentry *parent, void *data);
int vp_seq_write(struct seq_file *m, const char *s, size_t len);

struct vp_tp_stats {
	u64 updates;
	u32 clock_mode;
	u32 abi_size;
	char clocksource[32];
};

typedef unsigned int (*vp_fault_fn)(void *data, struct vm_area_struct *vma, unsigned long pgoff,
				    unsigned long address);
typedef void (*vp_vma_fn)(void *data);

int vp_timepage_start(struct page *page);
void vp_timepage_stop(void);
void vp_timepage_stats(struct vp_tp_stats *out);
void vp_vm_set_ops(vp_fault_fn fault, vp_vma_fn open, vp_vma_fn close);
void vp_vm_install(struct vm_area_struct *vma, void *data);
unsigned long vp_vma_pgoff(struct vm_area_struct *vma);

struct workqueue_struct *vp_alloc_wq(void);
void vp_flush_wq(struct workqueue_struct *wq);

#endif /* VDSO_PROBE_SHIM_H */
