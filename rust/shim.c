// SPDX-License-Identifier: GPL-2.0
/*
 * C half of the FFI layer of vdso_probe: only what Rust cannot reach through `kernel::bindings`
 * (inline functions, macros, headers outside bindings_helper.h, x86-only structures). Every
 * function here is declared once in rust/ffi.rs, which is its only caller. No policy lives here:
 * these are accessors that copy kernel state into plain structs (struct vp_* in shim.h).
 */

#include <linux/cred.h>
#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/pgtable.h>
#include <linux/pid.h>
#include <linux/pvclock_gtod.h>
#include <linux/ptrace.h>
#include <linux/sched.h>
#include <linux/sched/exec_state.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/seq_file.h>
#include <linux/time_namespace.h>
#include <linux/timekeeper_internal.h>
#include <linux/tracepoint.h>
#include <linux/uaccess.h>
#include <linux/workqueue.h>
#include <asm/pgtable_types.h>
#include <asm/vdso.h>
#include <asm/vdso/vsyscall.h>
#include <asm/vsyscall.h>
#include <vdso/datapage.h>

#include "shim.h"
#include "uapi/vdso_probe.h"

/* ---------------------------------------------------------------- tasks and pids ---------- */

struct pid *vp_task_tgid_pid(struct task_struct *t)
{
	return get_task_pid(t, PIDTYPE_TGID);
}

struct task_struct *vp_pid_task(struct pid *pid)
{
	return get_pid_task(pid, PIDTYPE_TGID);
}

void vp_put_task(struct task_struct *t)
{
	put_task_struct(t);
}

void vp_put_pid(struct pid *pid)
{
	put_pid(pid);
}

int vp_pid_nr(struct pid *pid)
{
	return pid_nr(pid);
}

bool vp_task_is_kthread(struct task_struct *t)
{
	return t->flags & PF_KTHREAD;
}

/* A user process that has not finished exiting: some thread of it is still alive. */
bool vp_pid_alive(struct pid *pid)
{
	struct task_struct *t;
	bool alive;

	rcu_read_lock();
	t = pid_task(pid, PIDTYPE_TGID);
	alive = t && !(t->flags & PF_KTHREAD) && atomic_read(&t->signal->live) > 0;
	rcu_read_unlock();
	return alive;
}

/* The next thread-group leader with tgid >= *nr (initial pid namespace), with a reference. */
struct pid *vp_next_tgid(int *nr)
{
	struct pid *pid;
	struct task_struct *t;

	rcu_read_lock();
	for (;;) {
		pid = find_ge_pid(*nr, &init_pid_ns);
		if (!pid)
			break;
		*nr = pid_nr(pid);
		t = pid_task(pid, PIDTYPE_TGID);
		if (t && !(t->flags & PF_KTHREAD)) {
			get_pid(pid);
			break;
		}
		(*nr)++;
	}
	rcu_read_unlock();
	return pid;
}

void vp_task_comm(struct task_struct *t, char *out)
{
	char comm[TASK_COMM_LEN];

	BUILD_BUG_ON(TASK_COMM_LEN != VP_COMM_LEN);
	get_task_comm(comm, t);
	memcpy(out, comm, VP_COMM_LEN);
}

/*
 * What /proc/<pid>/maps requires (PTRACE_MODE_READ_FSCREDS), rebuilt from exported pieces because
 * ptrace_may_access() is not exported: same thread group, or matching fs credentials and a
 * dumpable task, or CAP_SYS_PTRACE in the target's user namespace.
 */
int vp_may_inspect(struct task_struct *t)
{
	const struct cred *cred = current_cred(), *tcred;
	const struct task_exec_state *es;
	bool ok;

	if (same_thread_group(t, current))
		return 0;
	rcu_read_lock();
	tcred = __task_cred(t);
	ok = uid_eq(cred->fsuid, tcred->euid) && uid_eq(cred->fsuid, tcred->suid) &&
	     uid_eq(cred->fsuid, tcred->uid) && gid_eq(cred->fsgid, tcred->egid) &&
	     gid_eq(cred->fsgid, tcred->sgid) && gid_eq(cred->fsgid, tcred->gid);
	if (!ok)
		ok = ns_capable_noaudit(tcred->user_ns, CAP_SYS_PTRACE);
	rcu_read_unlock();
	if (!ok)
		return -EACCES;
	smp_rmb(); /* dumpability after credentials, as __ptrace_may_access() */
	rcu_read_lock();
	es = rcu_dereference(t->exec_state);
	ok = READ_ONCE(es->dumpable) == TASK_DUMPABLE_OWNER ||
	     ns_capable_noaudit(es->user_ns, CAP_SYS_PTRACE);
	rcu_read_unlock();
	return ok ? 0 : -EACCES;
}

int vp_task_timens(struct task_struct *t, struct vp_timens *out)
{
	struct time_namespace *ns;

	task_lock(t);
	if (!t->nsproxy) {
		task_unlock(t);
		return -ESRCH;
	}
	ns = t->nsproxy->time_ns;
	out->is_root = ns == &init_time_ns;
	out->mono_sec = ns->offsets.monotonic.tv_sec;
	out->mono_nsec = ns->offsets.monotonic.tv_nsec;
	out->boot_sec = ns->offsets.boottime.tv_sec;
	out->boot_nsec = ns->offsets.boottime.tv_nsec;
	out->inum = ns->ns.inum;
	out->vvar_pfn = 0;
#ifdef CONFIG_TIME_NS_VDSO
	if (!out->is_root && ns->vvar_page)
		out->vvar_pfn = page_to_pfn(ns->vvar_page);
#endif
	task_unlock(t);
	return 0;
}

/* ---------------------------------------------------------------- mm and VMAs ------------- */

struct mm_struct *vp_task_mm(struct task_struct *t)
{
	return get_task_mm(t);
}

void vp_mmput(struct mm_struct *mm)
{
	mmput(mm);
}

int vp_mmap_read_lock(struct mm_struct *mm)
{
	return mmap_read_lock_killable(mm);
}

void vp_mmap_read_unlock(struct mm_struct *mm)
{
	mmap_read_unlock(mm);
}

void vp_mm_info(struct mm_struct *mm, struct vp_mm *out)
{
	const struct vdso_image *image = mm->context.vdso_image;
	const unsigned char *ehdr;
	int i;

	out->vdso_base = (unsigned long)mm->context.vdso;
	out->has_vsyscall = test_bit(MM_CONTEXT_HAS_VSYSCALL, &mm->context.flags);
	out->map_count = mm->map_count;
	out->image_size = image ? image->size : 0;
	out->image_class = 0;
	out->image_machine = 0;
	if (image) {
		ehdr = image->data;
		out->image_class = ehdr[EI_CLASS];
		out->image_machine = ehdr[18] | (ehdr[19] << 8); /* e_machine, little endian */
	}
	/*
	 * saved_auxv is read locklessly, as /proc/<pid>/auxv does. A compat (32-bit) ELF loader
	 * stores 32-bit words in it (compat_binfmt_elf.c: elf_addr_t is u32).
	 */
	out->auxv_sysinfo_ehdr = 0;
	out->auxv_has_sysinfo_ehdr = false;
	if (out->image_class == ELFCLASS32) {
		const u32 *a = (const u32 *)mm->saved_auxv;

		for (i = 0; i + 1 < 2 * AT_VECTOR_SIZE && a[i] != AT_NULL; i += 2) {
			if (a[i] == AT_SYSINFO_EHDR) {
				out->auxv_sysinfo_ehdr = a[i + 1];
				out->auxv_has_sysinfo_ehdr = true;
			}
		}
		return;
	}
	for (i = 0; i + 1 < AT_VECTOR_SIZE && mm->saved_auxv[i] != AT_NULL; i += 2) {
		if (mm->saved_auxv[i] == AT_SYSINFO_EHDR) {
			out->auxv_sysinfo_ehdr = mm->saved_auxv[i + 1];
			out->auxv_has_sysinfo_ehdr = true;
		}
	}
}

bool vp_task_addr32(struct task_struct *t)
{
	return test_tsk_thread_flag(t, TIF_ADDR32);
}

/*
 * The leaf PTE of a user address, or 0 when nothing is mapped there. Called with the mmap lock
 * held (VMAs and upper page-table levels stay); PTE tables can be reclaimed under RCU only.
 */
static pte_t vp_user_pte(struct mm_struct *mm, unsigned long addr)
{
	pgd_t *pgd = pgd_offset(mm, addr);
	p4d_t *p4d;
	pud_t *pud;
	pmd_t *pmd, pmdval;
	pte_t pte = __pte(0);

	if (pgd_none(*pgd) || pgd_bad(*pgd))
		return pte;
	p4d = p4d_offset(pgd, addr);
	if (p4d_none(*p4d) || p4d_bad(*p4d))
		return pte;
	pud = pud_offset(p4d, addr);
	if (pud_none(*pud) || pud_leaf(*pud) || pud_bad(*pud))
		return pte;
	pmd = pmd_offset(pud, addr);
	rcu_read_lock();
	pmdval = pmdp_get_lockless(pmd);
	if (!pmd_none(pmdval) && !pmd_leaf(pmdval) && !pmd_bad(pmdval))
		pte = ptep_get_lockless(pte_offset_kernel(&pmdval, addr));
	rcu_read_unlock();
	return pte;
}

/* 0 when the page at addr is not populated, else its page frame number (1 if it has none). */
unsigned long vp_user_pfn(struct mm_struct *mm, unsigned long addr)
{
	pte_t pte = vp_user_pte(mm, addr);

	if (!pte_present(pte))
		return 0;
	return pte_pfn(pte) ?: 1;
}

/* The VMA containing addr, or NULL. */
struct vm_area_struct *vp_vma_lookup(struct mm_struct *mm, unsigned long addr)
{
	return vma_lookup(mm, addr);
}

/* The first VMA ending above addr, or NULL: the walk used when the fast path fails. */
struct vm_area_struct *vp_vma_next(struct mm_struct *mm, unsigned long addr)
{
	return find_vma(mm, addr);
}

void vp_vma_info(struct vm_area_struct *vma, struct vp_vma *out)
{
	vm_flags_t f = vma->vm_flags;
	const char *name = NULL;

	out->start = vma->vm_start;
	out->end = vma->vm_end;
	out->pgoff = vma->vm_pgoff;
	out->has_file = vma->vm_file != NULL;
	/* Exactly what /proc/<pid>/maps prints for a special mapping (fs/proc/task_mmu.c). */
	if (vma->vm_ops && vma->vm_ops->name)
		name = vma->vm_ops->name(vma);
	out->name = name;
	out->flags = (f & VM_READ ? VP_VM_READ : 0) | (f & VM_WRITE ? VP_VM_WRITE : 0) |
		     (f & VM_EXEC ? VP_VM_EXEC : 0) | (f & VM_SHARED ? VP_VM_SHARED : 0) |
		     (f & VM_IO ? VP_VM_IO : 0) | (f & VM_PFNMAP ? VP_VM_PFNMAP : 0) |
		     (f & VM_MIXEDMAP ? VP_VM_MIXEDMAP : 0) |
		     (f & VM_DONTEXPAND ? VP_VM_DONTEXPAND : 0) |
		     (f & VM_DONTDUMP ? VP_VM_DONTDUMP : 0) |
		     (f & VM_MAYWRITE ? VP_VM_MAYWRITE : 0) |
		     (f & VM_MAYEXEC ? VP_VM_MAYEXEC : 0);
#ifdef CONFIG_64BIT
	if (VM_SEALED != VM_NONE && (f & VM_SEALED))
		out->flags |= VP_VM_SEALED;
#endif
}

void vp_vvar_layout(struct vp_vvar_layout *out)
{
	out->nr_pages = VDSO_NR_PAGES;
	out->time = VDSO_TIME_PAGE_OFFSET;
	out->timens = VDSO_TIMENS_PAGE_OFFSET;
	out->rng = VDSO_RNG_PAGE_OFFSET;
	out->arch_start = VDSO_ARCH_PAGES_START;
	out->arch_end = VDSO_ARCH_PAGES_END;
	out->vclock_pages = VDSO_NR_VCLOCK_PAGES;
	out->pvclock = VDSO_PAGE_PVCLOCK_OFFSET;
	out->hvclock = VDSO_PAGE_HVCLOCK_OFFSET;
}

/* ---------------------------------------------------------------- vsyscall ---------------- */

/* true when the fixmap vsyscall page has a user-accessible PTE: only vsyscall=emulate maps it. */
bool vp_vsyscall_pte_user(void)
{
	unsigned int level;
	pte_t *pte = lookup_address(VSYSCALL_ADDR, &level);

	return pte && pte_present(*pte) && (pte_flags(*pte) & _PAGE_USER);
}

/* Reads /proc/cmdline (saved_command_line is not exported). Returns bytes read or -errno. */
ssize_t vp_read_cmdline(char *buf, size_t len)
{
	struct file *f = filp_open("/proc/cmdline", O_RDONLY, 0);
	loff_t pos = 0;
	ssize_t n;

	if (IS_ERR(f))
		return PTR_ERR(f);
	n = kernel_read(f, buf, len, &pos);
	filp_close(f, NULL);
	return n;
}

/* ---------------------------------------------------------------- lifecycle hooks --------- */

static vp_task_event_fn vp_event_fn;
static void *vp_event_data;

static void vp_probe_fork(void *data, struct task_struct *parent, struct task_struct *child)
{
	if (child->pid == child->tgid && !(child->flags & PF_KTHREAD))
		vp_event_fn(vp_event_data, child, VP_EV_ADD);
}

static void vp_probe_exec(void *data, struct task_struct *p, pid_t old_pid,
			  struct linux_binprm *bprm)
{
	/* The first exec of a kernel-spawned user process (usermode helper) creates its entry. */
	vp_event_fn(vp_event_data, p, VP_EV_ADD);
}

static void vp_probe_exit(void *data, struct task_struct *p, bool group_dead)
{
	if (group_dead && !(p->flags & PF_KTHREAD))
		vp_event_fn(vp_event_data, p, VP_EV_REMOVE);
}

static struct {
	const char *name;
	void *probe;
	struct tracepoint *tp;
} vp_hooks[] = {
	{ "sched_process_fork", vp_probe_fork },
	{ "sched_process_exec", vp_probe_exec },
	{ "sched_process_exit", vp_probe_exit },
};

static void vp_find_tp(struct tracepoint *tp, void *priv)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(vp_hooks); i++)
		if (!strcmp(tp->name, vp_hooks[i].name))
			vp_hooks[i].tp = tp;
}

void vp_hooks_unregister(void)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(vp_hooks); i++) {
		if (vp_hooks[i].tp)
			tracepoint_probe_unregister(vp_hooks[i].tp, vp_hooks[i].probe, NULL);
		vp_hooks[i].tp = NULL;
	}
	/* No probe runs after this returns. */
	tracepoint_synchronize_unregister();
}

int vp_hooks_register(vp_task_event_fn fn, void *data)
{
	int i, err;

	vp_event_fn = fn;
	vp_event_data = data;
	for_each_kernel_tracepoint(vp_find_tp, NULL);
	for (i = 0; i < ARRAY_SIZE(vp_hooks); i++) {
		if (!vp_hooks[i].tp) {
			pr_err("vdso_probe: tracepoint %s not found\n", vp_hooks[i].name);
			err = -ENOENT;
			goto fail;
		}
	}
	for (i = 0; i < ARRAY_SIZE(vp_hooks); i++) {
		err = tracepoint_probe_register(vp_hooks[i].tp, vp_hooks[i].probe, NULL);
		if (err) {
			/* Only the ones registered so far are unregistered. */
			for (; i < ARRAY_SIZE(vp_hooks); i++)
				vp_hooks[i].tp = NULL;
			goto fail;
		}
	}
	return 0;
fail:
	vp_hooks_unregister();
	return err;
}

/* ---------------------------------------------------------------- debugfs files ----------- */

static vp_show_fn vp_show;
static vp_open_fn vp_open_check;

static int vp_seq_show(struct seq_file *m, void *v)
{
	return vp_show(m, m->private);
}

static int vp_open(struct inode *inode, struct file *file)
{
	int err = vp_open_check(inode->i_private);

	return err ?: single_open(file, vp_seq_show, inode->i_private);
}

static const struct file_operations vp_fops = {
	.owner = THIS_MODULE,
	.open = vp_open,
	.read = seq_read,
	.llseek = seq_lseek,
	.release = single_release,
};

void vp_debugfs_set_ops(vp_open_fn open, vp_show_fn show)
{
	vp_open_check = open;
	vp_show = show;
}

struct dentry *vp_debugfs_file(const char *name, struct dentry *parent, void *data)
{
	return debugfs_create_file(name, 0400, parent, data, &vp_fops);
}

int vp_seq_write(struct seq_file *m, const char *s, size_t len)
{
	seq_write(m, s, len);
	return seq_has_overflowed(m) ? -EOVERFLOW : 0;
}

/* ---------------------------------------------------------------- workqueue --------------- */

struct workqueue_struct *vp_alloc_wq(void)
{
	return alloc_ordered_workqueue("vdso_probe", WQ_HIGHPRI);
}

void vp_flush_wq(struct workqueue_struct *wq)
{
	flush_workqueue(wq);
}

/* ---------------------------------------------------------------- time page --------------- */

static struct vdso_probe_time_page *vp_tp;
static bool vp_registering; /* the synchronous call of pvclock_gtod_register_notifier() */

static void vp_ts_add_ns(struct vdso_probe_timespec *out, const struct vdso_probe_timespec *a,
			 s64 ns)
{
	struct timespec64 ts = timespec64_add(
		(struct timespec64){ .tv_sec = a->sec, .tv_nsec = a->nsec }, ns_to_timespec64(ns));

	out->sec = ts.tv_sec;
	out->nsec = ts.tv_nsec;
}

static void vp_copy_clock(struct vdso_probe_clock *out, const struct tk_read_base *tkr)
{
	out->cycle_last = tkr->cycle_last;
	out->mask = tkr->mask;
	out->mult = tkr->mult;
	out->shift = tkr->shift;
	out->xtime_nsec = tkr->xtime_nsec;
	out->base_ns = ktime_to_ns(tkr->base);
}

/*
 * The pvclock_gtod notifier: called with tk_core.lock held, interrupts off and inside the write
 * side of tk_core.seq (timekeeping_update_from_shadow()), with the new (shadow) timekeeper. So:
 * plain stores under the page's own sequence counter, nothing that sleeps or reads the clock.
 * Calls are serialised by tk_core.lock. The copy mirrors update_vsyscall() (kernel/time/vsyscall.c).
 */
static int vp_tk_notify(struct notifier_block *nb, unsigned long was_set, void *priv)
{
	const struct timekeeper *tk = priv;
	struct vdso_probe_time_page *p = vp_tp;
	u32 seq = p->seq;

	WRITE_ONCE(p->seq, seq + 1);
	smp_wmb();

	p->update_count++;
	p->clock_mode = tk->tkr_mono.clock->vdso_clock_mode;
	/*
	 * timekeeping_update_from_shadow() increments it only after calling us; registration
	 * passes was_set without incrementing anything.
	 */
	p->clock_was_set_seq = tk->clock_was_set_seq + (was_set && !vp_registering ? 1 : 0);
	strscpy_pad(p->clocksource, tk->tkr_mono.clock->name);

	p->realtime_coarse.sec = tk->xtime_sec;
	p->realtime_coarse.nsec = tk->coarse_nsec;
	vp_ts_add_ns(&p->monotonic_coarse, &p->realtime_coarse,
		     timespec64_to_ns(&tk->wall_to_monotonic));
	vp_ts_add_ns(&p->boottime_coarse, &p->monotonic_coarse, ktime_to_ns(tk->offs_boot));
	vp_ts_add_ns(&p->tai_coarse, &p->realtime_coarse, (s64)tk->tai_offset * NSEC_PER_SEC);

	vp_copy_clock(&p->mono, &tk->tkr_mono);
	vp_copy_clock(&p->raw, &tk->tkr_raw);
	p->offs_real_ns = ktime_to_ns(tk->offs_real);
	p->offs_boot_ns = ktime_to_ns(tk->offs_boot);
	p->offs_tai_ns = ktime_to_ns(tk->offs_tai);

	smp_wmb();
	WRITE_ONCE(p->seq, seq + 2);
	return NOTIFY_OK;
}

static struct notifier_block vp_tk_nb = { .notifier_call = vp_tk_notify };

/* Starts publishing into the (zeroed) page; fills it once before returning. */
int vp_timepage_start(struct page *page)
{
	struct vdso_probe_time_page *p = page_address(page);
	int ret;

	BUILD_BUG_ON(sizeof(*p) > VDSO_PROBE_PAGE_SIZE || VDSO_PROBE_PAGE_SIZE != PAGE_SIZE);
	p->magic = VDSO_PROBE_MAGIC;
	p->abi_version = VDSO_PROBE_ABI_VERSION;
	p->size = sizeof(*p);
	vp_tp = p;
	vp_registering = true;
	ret = pvclock_gtod_register_notifier(&vp_tk_nb);
	vp_registering = false;
	return ret;
}

/* After this returns no notifier call runs (unregistration takes tk_core.lock). */
void vp_timepage_stop(void)
{
	pvclock_gtod_unregister_notifier(&vp_tk_nb);
}

/* A consistent copy of the statistics the page carries. */
void vp_timepage_stats(struct vp_tp_stats *out)
{
	const struct vdso_probe_time_page *p = vp_tp;
	u32 seq;

	do {
		seq = smp_load_acquire(&p->seq);
		out->updates = p->update_count;
		out->clock_mode = p->clock_mode;
		memcpy(out->clocksource, p->clocksource, sizeof(out->clocksource));
		smp_rmb();
	} while ((seq & 1) || READ_ONCE(p->seq) != seq);
	out->abi_size = sizeof(*p);
}

static vp_fault_fn vp_fault_cb;
static vp_vma_fn vp_vma_open_cb, vp_vma_close_cb;

static vm_fault_t vp_vm_fault(struct vm_fault *vmf)
{
	return vp_fault_cb(vmf->vma->vm_private_data, vmf->vma, vmf->pgoff, vmf->address);
}

static void vp_vm_open(struct vm_area_struct *vma)
{
	vp_vma_open_cb(vma->vm_private_data);
}

static void vp_vm_close(struct vm_area_struct *vma)
{
	vp_vma_close_cb(vma->vm_private_data);
}

static const struct vm_operations_struct vp_vm_ops = {
	.fault = vp_vm_fault,
	.open = vp_vm_open,
	.close = vp_vm_close,
};

void vp_vm_set_ops(vp_fault_fn fault, vp_vma_fn open, vp_vma_fn close)
{
	vp_fault_cb = fault;
	vp_vma_open_cb = open;
	vp_vma_close_cb = close;
}

void vp_vm_install(struct vm_area_struct *vma, void *data)
{
	vma->vm_private_data = data;
	vma->vm_ops = &vp_vm_ops;
}

unsigned long vp_vma_pgoff(struct vm_area_struct *vma)
{
	return vma->vm_pgoff;
}
