// SPDX-License-Identifier: GPL-2.0
/*
 * C half of the FFI layer of vdso_probe: only what Rust cannot do in 7.3, each function with its
 * reason. Every function here is declared once in rust/ffi.rs, its only caller. No policy lives
 * here, and no C global holds a callback or per-instance data: the tracepoint probes and the
 * timekeeping notifier find their instance through the tracepoint's data argument and
 * container_of() on an embedded notifier_block.
 */

#include <linux/build_bug.h>
#include <linux/elf.h>
#include <linux/fs.h>
#include <linux/ftrace.h>
#include <linux/mm.h>
#include <linux/nsproxy.h>
#include <linux/pgtable.h>
#include <linux/pid.h>
#include <linux/pvclock_gtod.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/time_namespace.h>
#include <linux/timekeeper_internal.h>
#include <linux/uaccess.h>
#include <linux/tracepoint.h>
#include <linux/uio.h>
#include <linux/workqueue.h>
#include <asm/byteorder.h>
#include <asm/local.h>
#include <vdso/clocksource.h>
#include <vdso/datapage.h>

#include "shim_arch.h"
#include "uapi/vdso_probe.h"

/*
 * The probes (the page-fault tracepoint with interrupts off, the ftrace callback with preemption
 * off under ftrace's list function) take the Rust side's spinlock_t and allocate with
 * GFP_NOWAIT: both sleep on PREEMPT_RT, and 7.3's Rust has no raw spinlock to take instead.
 */
#ifdef CONFIG_PREEMPT_RT
#error "vdso_probe does not support PREEMPT_RT: its probes take spinlock_t in atomic context"
#endif

/* The mirrors in rust/ffi.rs assert the same sizes. */
static_assert(sizeof(struct vp_vma) == VP_SIZEOF_VMA);
static_assert(sizeof(struct vp_mm) == VP_SIZEOF_MM);
static_assert(sizeof(struct vp_timens) == VP_SIZEOF_TIMENS);
static_assert(sizeof(struct vp_vvar_layout) == VP_SIZEOF_VVAR_LAYOUT);
static_assert(sizeof(struct vp_tp_stats) == VP_SIZEOF_TP_STATS);
static_assert(sizeof(struct vp_time_call) == VP_SIZEOF_TIME_CALL);
static_assert(sizeof(struct vp_cs_event) == VP_SIZEOF_CS_EVENT);
static_assert(sizeof(struct vp_fault_event) == VP_SIZEOF_FAULT_EVENT);
static_assert(VP_COMM_LEN == TASK_COMM_LEN);

/* Tasks and pids: RCU walks over pid and thread lists (macros and inline helpers). */

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

/*
 * A thread of the process that still has its mm, with a reference: the leader when it is alive,
 * else another thread (the leader of a process whose main thread called pthread_exit() is a
 * zombie without mm or nsproxy). The idea of find_lock_task_mm(), which is not exported;
 * for_each_thread() is a macro over an RCU list.
 */
struct task_struct *vp_tgid_live_thread(struct pid *pid)
{
	struct task_struct *leader, *t, *found = NULL;

	rcu_read_lock();
	leader = pid_task(pid, PIDTYPE_TGID);
	if (leader && !(leader->flags & PF_KTHREAD)) {
		for_each_thread(leader, t) {
			task_lock(t);
			if (t->mm && t->nsproxy) {
				found = t;
				get_task_struct(found);
			}
			task_unlock(t);
			if (found)
				break;
		}
	}
	rcu_read_unlock();
	return found;
}

/* get_task_comm() is a macro (a racy read is best left to it). */
void vp_task_comm(struct task_struct *t, char *out)
{
	char comm[TASK_COMM_LEN];

	get_task_comm(comm, t);
	memcpy(out, comm, VP_COMM_LEN);
}

/*
 * The comm of process tgid (initial pid namespace), if it exists: attribution names a process's
 * counters when it drains them (atomic context: RCU only).
 */
bool vp_tgid_comm(int tgid, char *out)
{
	struct task_struct *t;

	rcu_read_lock();
	t = pid_task(find_pid_ns(tgid, &init_pid_ns), PIDTYPE_TGID);
	if (t)
		vp_task_comm(t, out);
	rcu_read_unlock();
	return t != NULL;
}

/* struct time_namespace and nsproxy are not in the bindings; task_lock() is inline. */
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

/* mm and VMAs: the page-table walk and vm_flags macros (the mm context: shim_<arch>.c). */

/* No killable variant in kernel::mm (MmWithUser::mmap_read_lock is not killable). */
int vp_mmap_read_lock(struct mm_struct *mm)
{
	return mmap_read_lock_killable(mm);
}

/* The mm's vDSO facts: the arch's mm context, and saved_auxv. Mmap lock held. */
void vp_mm_info(struct mm_struct *mm, bool addr32, struct vp_mm *out)
{
	int i;

	vp_arch_mm_info(mm, out);
	out->map_count = mm->map_count;
	/*
	 * saved_auxv is read locklessly, as /proc/<pid>/auxv does. A compat ELF loader (ia32, x32
	 * and AArch32: addr32) stores 32-bit words in it (compat_binfmt_elf.c: elf_addr_t is u32),
	 * whether or not a vDSO image was mapped.
	 */
	out->auxv_sysinfo_ehdr = 0;
	out->auxv_has_sysinfo_ehdr = false;
	if (addr32) {
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

/*
 * The leaf PTE of a user address, or 0 when nothing is mapped there: __pte_offset_map()
 * (mm/pgtable-generic.c) open-coded, because it is not exported. Called with the mmap lock held,
 * which keeps the VMA and the upper page-table levels; PTE tables can be freed under the read
 * lock (PT_RECLAIM, khugepaged) but only after an RCU grace period, hence the RCU section.
 */
static pte_t vp_user_pte(struct mm_struct *mm, unsigned long addr)
{
	pgd_t *pgdp = pgd_offset(mm, addr), pgd = pgdp_get(pgdp);
	p4d_t *p4dp, p4d;
	pud_t *pudp, pud;
	pmd_t pmd;
	pte_t pte = __pte(0);

	if (pgd_none(pgd) || pgd_bad(pgd))
		return pte;
	p4dp = p4d_offset(pgdp, addr);
	p4d = p4dp_get(p4dp);
	if (p4d_none(p4d) || p4d_bad(p4d))
		return pte;
	pudp = pud_offset(p4dp, addr);
	pud = pudp_get(pudp);
	if (pud_none(pud) || pud_leaf(pud) || pud_bad(pud))
		return pte;
	rcu_read_lock();
	pmd = pmdp_get_lockless(pmd_offset(pudp, addr));
	if (!pmd_none(pmd) && pmd_present(pmd) && !pmd_trans_huge(pmd) && !pmd_bad(pmd))
		pte = ptep_get_lockless(pte_offset_kernel(&pmd, addr));
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

static const struct {
	vm_flags_t vm;
	u32 vp;
} vp_vm_flags[] = {
	{ VM_READ, VP_VM_READ },	   { VM_WRITE, VP_VM_WRITE },
	{ VM_EXEC, VP_VM_EXEC },	   { VM_MAYSHARE, VP_VM_MAYSHARE },
	{ VM_IO, VP_VM_IO },		   { VM_PFNMAP, VP_VM_PFNMAP },
	{ VM_MIXEDMAP, VP_VM_MIXEDMAP },   { VM_DONTEXPAND, VP_VM_DONTEXPAND },
	{ VM_DONTDUMP, VP_VM_DONTDUMP },   { VM_MAYWRITE, VP_VM_MAYWRITE },
	{ VM_MAYEXEC, VP_VM_MAYEXEC },
};

/*
 * vm_flags bits are macros (VM_SEALED is absent from kernel::mm::virt::flags). The name is what
 * /proc/<pid>/maps prints for a VMA without a file (fs/proc/task_mmu.c, get_vma_name()): only
 * such VMAs' vm_ops->name is consulted. Called under the mmap lock, which keeps the name valid
 * until the caller has copied it.
 */
void vp_vma_info(struct vm_area_struct *vma, struct vp_vma *out)
{
	vm_flags_t f = vma->vm_flags;
	int i;

	out->start = vma->vm_start;
	out->end = vma->vm_end;
	out->pgoff = vma->vm_pgoff;
	out->has_file = vma->vm_file != NULL;
	out->name = NULL;
	if (!vma->vm_file && vma->vm_ops && vma->vm_ops->name)
		out->name = vma->vm_ops->name(vma);
	out->flags = 0;
	for (i = 0; i < ARRAY_SIZE(vp_vm_flags); i++)
		if (f & vp_vm_flags[i].vm)
			out->flags |= vp_vm_flags[i].vp;
#ifdef CONFIG_64BIT
	if (VM_SEALED != VM_NONE && (f & VM_SEALED))
		out->flags |= VP_VM_SEALED;
#endif
}

/*
 * /sys/kernel/debug/vdso/layout: the vDSO data structures of this kernel, compiled from its own
 * headers (vdso/datapage.h, vdso/time.h; the arch's clock modes and vclock pages follow, from
 * shim_<arch>.c), so that a decoder of [vvar] (vdso-vvar) hard-codes no kernel version's layout.
 * Not in the bindings: the structs are vDSO headers, and offsetof is C's.
 */
static const struct vp_layout_entry vp_layout[] = {
	VP_CONST("page_size", PAGE_SIZE),
	VP_CONST("vdso_pages", VDSO_NR_PAGES),
	VP_CONST("vdso_pages.time", VDSO_TIME_PAGE_OFFSET),
	VP_CONST("vdso_pages.timens", VDSO_TIMENS_PAGE_OFFSET),
	VP_CONST("vdso_pages.rng", VDSO_RNG_PAGE_OFFSET),
	VP_CONST("vdso_pages.arch_start", VDSO_ARCH_PAGES_START),
	VP_CONST("vdso_pages.arch_end", VDSO_ARCH_PAGES_END),
	VP_CONST("vdso_bases", VDSO_BASES),
	VP_CONST("cs_bases", CS_BASES),
	VP_CONST("cs_hres_coarse", CS_HRES_COARSE),
	VP_CONST("cs_raw", CS_RAW),
	VP_CONST("max_aux_clocks", MAX_AUX_CLOCKS),
	VP_CONST("clock_aux", CLOCK_AUX),
	VP_CONST("clock_mode.none", VDSO_CLOCKMODE_NONE),
	VP_CONST("clock_mode.timens", VDSO_CLOCKMODE_TIMENS),
	VP_SIZEOF(vdso_time_data),
	VP_SIZEOF(vdso_clock),
	VP_SIZEOF(vdso_timestamp),
	VP_SIZEOF(timens_offset),
	VP_SIZEOF(vdso_rng_data),
	VP_SIZEOF(vdso_arch_data),
	VP_SIZEOF(arch_vdso_time_data),
	VP_FIELD(vdso_time_data, arch_data),
	VP_ARRAY(vdso_time_data, clock_data),
	VP_ARRAY(vdso_time_data, aux_clock_data),
	VP_FIELD(vdso_time_data, tz_minuteswest),
	VP_FIELD(vdso_time_data, tz_dsttime),
	VP_FIELD(vdso_time_data, hrtimer_res),
	VP_FIELD(vdso_clock, seq),
	VP_FIELD(vdso_clock, clock_mode),
	VP_FIELD(vdso_clock, cycle_last),
#ifdef CONFIG_GENERIC_VDSO_OVERFLOW_PROTECT
	VP_FIELD(vdso_clock, max_cycles),
#endif
	VP_FIELD(vdso_clock, mask),
	VP_FIELD(vdso_clock, mult),
	VP_FIELD(vdso_clock, shift),
	VP_ARRAY(vdso_clock, basetime),
	VP_ARRAY(vdso_clock, offset),
	VP_FIELD(vdso_timestamp, sec),
	VP_FIELD(vdso_timestamp, nsec),
	VP_FIELD(timens_offset, sec),
	VP_FIELD(timens_offset, nsec),
	VP_FIELD(vdso_rng_data, generation),
	VP_FIELD(vdso_rng_data, is_ready),
};

/* Entry i of the layout table, the arch's after the generic ones, or NULL past its end. */
const struct vp_layout_entry *vp_layout_entry(unsigned int i)
{
	if (i < ARRAY_SIZE(vp_layout))
		return &vp_layout[i];
	i -= ARRAY_SIZE(vp_layout);
	return i < vp_arch_layout_len ? &vp_arch_layout[i] : NULL;
}

/* enum vdso_pages is a vDSO header (vdso/datapage.h), not in the bindings. */
void vp_vvar_layout(struct vp_vvar_layout *out)
{
	out->nr_pages = VDSO_NR_PAGES;
	out->time = VDSO_TIME_PAGE_OFFSET;
	out->timens = VDSO_TIMENS_PAGE_OFFSET;
	out->rng = VDSO_RNG_PAGE_OFFSET;
	out->arch_start = VDSO_ARCH_PAGES_START;
	out->arch_end = VDSO_ARCH_PAGES_END;
	vp_arch_vclock_layout(out);
}

/*
 * One read at *pos into a kernel buffer. kernel_read() refuses a file with only .read, as
 * /proc/<pid>/maps has (.read = seq_read): its seq_file is read with seq_read_iter() and a kernel
 * buffer, which is what seq_read() does with a user one, after the checks kernel_read() makes
 * (rw_verify_area). The upstream fix would be .read_iter = seq_read_iter in
 * proc_pid_maps_operations.
 */
static ssize_t vp_read_at(struct file *f, char *buf, size_t len, loff_t *pos)
{
	struct kvec kv = { .iov_base = buf, .iov_len = len };
	struct kiocb kiocb;
	struct iov_iter iter;
	ssize_t n;

	if (f->f_op->read_iter || f->f_op->read != seq_read)
		return kernel_read(f, buf, len, pos);
	/* What __kernel_read() checks first: the LSMs' file_permission and fsnotify's. */
	n = rw_verify_area(READ, f, pos, len);
	if (n)
		return n;
	init_sync_kiocb(&kiocb, f);
	kiocb.ki_pos = *pos;
	iov_iter_kvec(&iter, ITER_DEST, &kv, 1, len);
	n = seq_read_iter(&kiocb, &iter);
	*pos = kiocb.ki_pos;
	return n;
}

/*
 * Reads a file from the caller's context into buf (no kernel::fs wrapper for reading in 7.3):
 * the bytes read, or an error, never a part that an error cut short.
 */
ssize_t vp_read_file(const char *path, char *buf, size_t len)
{
	struct file *f = filp_open(path, O_RDONLY, 0);
	loff_t pos = 0;
	ssize_t n, total = 0;

	if (IS_ERR(f))
		return PTR_ERR(f);
	while (total < len) {
		n = vp_read_at(f, buf + total, len - total, &pos);
		if (n < 0)
			total = n;
		if (n <= 0)
			break;
		total += n;
	}
	filp_close(f, NULL);
	return total;
}

/*
 * Lifecycle hooks. The probes' prototypes must match the tracepoints' (kCFI type hashes), and
 * tracepoint internals are macros: the probes stay in C. Their instance is the data argument.
 */

/*
 * Registered in this order: the exit probe first, so that every process whose fork the fork
 * probe sees also has its exit seen. (Fork first left a window, the exit registration's
 * RCU wait after an earlier unload among it, in which a child forked, got its file and exited
 * unseen: hardening-scan-vs-exit.) Processes forked before are found by the scan, which runs
 * after both.
 */
enum { VP_HOOK_EXIT, VP_HOOK_FORK, VP_HOOK_EXEC, VP_NR_HOOKS };

struct vp_hooks {
	vp_task_event_fn fn;
	vp_fault_fn fault;
	void *data;
	struct tracepoint *tp[VP_NR_HOOKS];
	struct vp_arch_hooks arch; /* the fault hook (zeroed: not attached) */
};

static void vp_probe_fork(void *data, struct task_struct *parent, struct task_struct *child)
{
	struct vp_hooks *h = data;

	/*
	 * Every new user process, usermode helpers included (user_mode_thread() does not set
	 * PF_KTHREAD): processes that existed at load come from the scan.
	 */
	if (child->pid == child->tgid && !(child->flags & PF_KTHREAD))
		h->fn(h->data, child, VP_EV_ADD);
}

static void vp_probe_exit(void *data, struct task_struct *p, bool group_dead)
{
	struct vp_hooks *h = data;

	if (group_dead && !(p->flags & PF_KTHREAD))
		h->fn(h->data, p, VP_EV_REMOVE);
}

/* After de_thread(): p is the thread group's only thread, and its leader. */
static void vp_probe_exec(void *data, struct task_struct *p, pid_t old_pid,
			  struct linux_binprm *bprm)
{
	struct vp_hooks *h = data;

	h->fn(h->data, p, VP_EV_EXEC);
}

/* The calling task's fault at this moment. */
void vp_fault_event_now(struct vp_fault_event *ev, u8 mapping, u16 page, u8 access)
{
	*ev = (struct vp_fault_event){
		.tgid = current->tgid,
		.mapping = mapping,
		.access = access,
		.page = page,
		.ns = ktime_get_ns(),
		.start_ns = current->group_leader->start_time,
	};
}

/* A fault the arch's hook saw (shim_<arch>.c), in the faulting task: must not sleep. */
void vp_hooks_fault(struct vp_hooks *h, u8 mapping, u16 page, u8 access)
{
	struct vp_fault_event ev;

	vp_fault_event_now(&ev, mapping, page, access);
	h->fault(h->data, &ev);
}

static const struct {
	const char *name;
	void *probe;
} vp_hook_defs[VP_NR_HOOKS] = {
	[VP_HOOK_EXIT] = { "sched_process_exit", vp_probe_exit },
	[VP_HOOK_FORK] = { "sched_process_fork", vp_probe_fork },
	[VP_HOOK_EXEC] = { "sched_process_exec", vp_probe_exec },
};

struct vp_tp_lookup {
	const char *name;
	struct tracepoint *tp;
};

static void vp_tp_match(struct tracepoint *tp, void *priv)
{
	struct vp_tp_lookup *l = priv;

	if (!strcmp(tp->name, l->name))
		l->tp = tp;
}

/*
 * The tracepoint called name, or NULL: the ones used here are not exported
 * (EXPORT_TRACEPOINT_SYMBOL), so they are found by name among the kernel's.
 */
struct tracepoint *vp_find_tracepoint(const char *name)
{
	struct vp_tp_lookup l = { .name = name };

	for_each_kernel_tracepoint(vp_tp_match, &l);
	if (!l.tp)
		pr_err("vdso_probe: tracepoint %s not found\n", name);
	return l.tp;
}

static void vp_hooks_detach(struct vp_hooks *h, int registered)
{
	int i;

	vp_arch_fault_detach(&h->arch, h);
	for (i = registered - 1; i >= 0; i--)
		tracepoint_probe_unregister(h->tp[i], vp_hook_defs[i].probe, h);
	/* No probe runs after this returns. */
	tracepoint_synchronize_unregister();
}

/*
 * Attaches the probes; they call fn(data, task, VP_EV_*) and fault(data, event) until
 * vp_hooks_unregister().
 */
struct vp_hooks *vp_hooks_register(vp_task_event_fn fn, vp_fault_fn fault, void *data)
{
	struct vp_hooks *h = kzalloc(sizeof(*h), GFP_KERNEL);
	int i, err = 0;

	if (!h)
		return ERR_PTR(-ENOMEM);
	h->fn = fn;
	h->fault = fault;
	h->data = data;
	for (i = 0; i < VP_NR_HOOKS; i++) {
		h->tp[i] = vp_find_tracepoint(vp_hook_defs[i].name);
		err = h->tp[i] ? tracepoint_probe_register(h->tp[i], vp_hook_defs[i].probe, h) :
				 -ENOENT;
		if (err)
			break;
	}
	/* An arch without a fault hook logs the time page's faults only. */
	if (!err && vp_vdso_faults_traced())
		err = vp_arch_fault_attach(&h->arch, h);
	if (err) {
		vp_hooks_detach(h, i);
		kfree(h);
		return ERR_PTR(err);
	}
	return h;
}

void vp_hooks_unregister(struct vp_hooks *h)
{
	vp_hooks_detach(h, VP_NR_HOOKS);
	kfree(h);
}

/*
 * Attribution: an ftrace callback on the entry points of the time system calls, and the vsyscall
 * emulation's tracepoint (x86). What a call's origin is takes arch facts (shim_<arch>.h): the
 * user registers (task_pt_regs), mm->context.vdso and the vDSO text's size. The entry points are
 * the ABI wrappers (x86: __x64_sys_*, __ia32_sys_*; arm64: __arm64_sys_*, __arm64_compat_sys_*;
 * the tables are in shim_<arch>.c); the ftrace_ops filters on exactly those, so other system
 * calls do not pay, and an unregistered ops costs nothing (the call sites are NOPs again).
 *
 * Not kprobes: on 7.3.4 a second registration of kprobes on ftrace call sites, after the first
 * set was unregistered (the static kprobe_ftrace_ops registered again), made the next call of a
 * probed function jump to address 0 (attribution-switch, off then on). An ftrace_ops of our own
 * is allocated per instance, so each registration gets a fresh trampoline (FTRACE_OPS_FL_DYNAMIC),
 * and it is cheaper (no kprobe layer, no saved registers).
 */
static bool vp_tp_readable(const struct vp_timepage *tp);
static void vp_tp_write_all_ns(struct vp_timepage *tp);
static u32 vp_tp_log_events(const struct vp_timepage *tp);

/*
 * Each CPU's calls, in order: the probes append (preemption off, so one writer per ring), the
 * consumer takes them under its own lock (vp_attr_take()). head and tail only grow; the slots
 * from tail to head - 1 are not freed yet: all but the last have calls not yet counted.
 *
 * A call like the last one appended (same process, system call, clock, origin and state) only
 * increments that slot's count: a process calling in a loop costs a compare and an increment
 * per call and no drain (bench-attribution-overhead). So that there always is a last slot, a
 * ring is never empty: it starts with a slot no call is like, and the consumer frees a slot
 * only once the probe has moved past it. count is a local_t, raised by the owner CPU's probe
 * only and read by the consumer from any CPU (Documentation/core-api/local_ops.rst); taken is
 * the consumer's only: how much of count it has counted, zeroed when it frees the slot. Each
 * take counts count - taken of every slot and frees all but the last, so a call lands in a
 * count this take or the next one reads. A full ring (head - tail == VP_ATTR_RING) makes the
 * probe ask the consumer to drain, and try again: no call is lost.
 */
#define VP_ATTR_RING 256
/* The callback's lookup table: the probed numbers are distinct modulo this (vp_attr_alloc()). */
#define VP_ATTR_INDEX 64

/*
 * What a call is counted by, struct vp_time_call's first 16 bytes as two words, built in
 * registers: w[0] = tgid | clock << 32, w[1] = syscall | origin << 8 | compat << 16 |
 * readable << 24 | cs_seq << 32.
 */
struct vp_attr_key {
	u64 w[2];
};

static_assert(offsetof(struct vp_time_call, tgid) == 0 && offsetof(struct vp_time_call, clock) == 4);
static_assert(offsetof(struct vp_time_call, syscall) == 8 &&
	      offsetof(struct vp_time_call, origin) == 9 &&
	      offsetof(struct vp_time_call, compat) == 10 &&
	      offsetof(struct vp_time_call, readable) == 11 &&
	      offsetof(struct vp_time_call, cs_seq) == 12 &&
	      offsetof(struct vp_time_call, count) == sizeof(struct vp_attr_key));
#ifndef __LITTLE_ENDIAN
#error "struct vp_attr_key is struct vp_time_call's key on a little-endian machine only"
#endif

struct vp_attr_slot {
	struct vp_attr_key key;
	local_t count;       /* calls: written by the owner CPU's probe only */
	unsigned long taken; /* of them counted; 0 when free: written by the consumer only */
};

struct vp_attr_ring {
	u32 head; /* the next slot to write: written by the owner CPU only */
	u32 tail; /* the oldest slot not freed: written by the consumer only */
	struct vp_attr_slot ev[VP_ATTR_RING];
};

/* A probed entry point, where the callback looks it up: by ABI and number % VP_ATTR_INDEX. */
struct vp_attr_entry {
	long nr;     /* its system call number; LONG_MIN for none (no probed call's orig_ax) */
	u32 key;     /* its key's w[1] but the origin: syscall | compat << 16 */
	bool has_clock;
};

struct vp_attr {
	struct ftrace_ops ops;
	vp_attr_full_fn full;
	void *data;
	struct vp_timepage *tp; /* the clock mode and clocksource log at each vDSO fallback */
	struct vp_attr_ring __percpu *rings;
	struct vp_attr_entry index[2][VP_ATTR_INDEX];
	struct tracepoint *vsyscall_tp;
	struct vp_arch_attr arch; /* what the arch's origin check keeps */
	bool ops_registered;
	bool vsyscall_registered;
	bool leaked; /* the ops could not be unregistered: never freed */
};

/*
 * Counts a call like the last one of this CPU's ring in that slot; false if it is not alike.
 * Preemption off: the only writer of this ring.
 */
static __always_inline bool vp_attr_repeat(struct vp_attr_ring *r, const struct vp_attr_key *key)
{
	struct vp_attr_slot *slot = &r->ev[(r->head - 1) % VP_ATTR_RING];

	if (slot->key.w[0] != key->w[0] || slot->key.w[1] != key->w[1])
		return false;
	local_inc(&slot->count);
	return true;
}

/*
 * Counts a call like the last one of this CPU's ring, or appends it; false if the ring is full.
 * Preemption off: the only writer of this ring.
 */
static __always_inline bool vp_attr_append(struct vp_attr_ring *r, const struct vp_attr_key *key)
{
	struct vp_attr_slot *slot;
	u32 head = r->head;

	if (vp_attr_repeat(r, key))
		return true;
	/* The consumer has read the slots it freed. */
	if (head - smp_load_acquire(&r->tail) == VP_ATTR_RING)
		return false;
	slot = &r->ev[head % VP_ATTR_RING];
	slot->key = *key;
	local_set(&slot->count, 1); /* taken is 0: the consumer freed the slot */
	/* The consumer reads the slot after it sees head. */
	smp_store_release(&r->head, head + 1);
	return true;
}

/* Counts a call in this CPU's ring, draining the rings while it is full. */
static noinline notrace void vp_attr_add(struct vp_attr *a, u64 key0, u64 key1)
{
	struct vp_attr_key key = { { key0, key1 } };
	bool done;

	for (;;) {
		preempt_disable_notrace();
		done = vp_attr_append(this_cpu_ptr(a->rings), &key);
		preempt_enable_notrace();
		if (done || !a->full(a->data))
			return;
	}
}

/* A vDSO fallback: counted with why, the published clock mode and clocksource now. */
static noinline notrace void vp_attr_add_fallback(struct vp_attr *a, u64 key0, u64 key1)
{
	key1 |= (u64)vp_tp_readable(a->tp) << 24 | (u64)vp_tp_log_events(a->tp) << 32;
	vp_attr_add(a, key0, key1);
}

/*
 * Counts the call e of a task with an mm. Inline for the 64-bit ABI, whose every instruction
 * every probed call pays (the benchmark counts them under -icount): a repeat of the last call
 * is an increment here, which makes no call and so takes no callee-saved register; a new slot,
 * a full ring and a vDSO fallback are out of line, tail calls.
 */
static_assert(VP_ORIGIN_ELSEWHERE == 0);
static __always_inline void vp_attr_probe(struct vp_attr *a, const struct vp_attr_entry *e,
					  struct mm_struct *mm, const struct pt_regs *regs,
					  bool compat)
{
	u64 key0, key1;
	bool done;
	u8 origin;

	key0 = (u32)current->tgid; /* the initial pid namespace's */
	if (e->has_clock)
		key0 |= (u64)(u32)vp_arch_clock_arg(regs, compat) << 32;
	origin = vp_arch_call_origin(&a->arch, mm, regs, compat);
	key1 = e->key; /* | VP_ORIGIN_ELSEWHERE << 8, which is 0 */
	if (unlikely(origin != VP_ORIGIN_ELSEWHERE)) {
		key1 |= (u32)origin << 8;
		if (origin == VP_ORIGIN_VDSO) {
			vp_attr_add_fallback(a, key0, key1);
			return;
		}
	}
	preempt_disable_notrace();
	done = vp_attr_repeat(this_cpu_ptr(a->rings), &(struct vp_attr_key){ { key0, key1 } });
	preempt_enable_notrace();
	if (unlikely(!done))
		vp_attr_add(a, key0, key1);
}

/* The 32-bit ABI's calls (ia32, AArch32), out of line: the 64-bit path stays call-free. */
static noinline notrace void vp_attr_probe_compat(struct vp_attr *a, const struct vp_attr_entry *e,
						  struct mm_struct *mm,
						  const struct pt_regs *regs)
{
	vp_attr_probe(a, e, mm, regs, true);
}

/*
 * The ftrace callback, at the entry of one of the probed functions, in the calling task's
 * context; preemptible, or not when another ftrace user shares the function (ftrace's list
 * function). The ops has no FTRACE_OPS_FL_RECURSION, whose assist function cost more than the
 * rest of the callback (bench-attribution-overhead). Recursion cannot happen: the
 * ops traces only the system calls' entry points, and nothing here makes a system call. The
 * system call, its ABI, argument and origin come from the user registers (shim_<arch>.h). On
 * x86 the vsyscall emulation calls __x64_sys_gettimeofday/time/getcpu itself with orig_ax set to
 * -1: no number matches, so it is counted once, by its tracepoint.
 */
static notrace void vp_attr_ftrace(unsigned long ip, unsigned long parent_ip, struct ftrace_ops *op,
				   struct ftrace_regs *fregs)
{
	struct vp_attr *a = container_of(op, struct vp_attr, ops);
	/* Every task's, a kernel thread's too (unused there), so reading it is safe. */
	const struct pt_regs *regs = task_pt_regs(current);
	/*
	 * Kernel threads have none, or one borrowed (kthread_use_mm()): they never enter these
	 * entry points, and their pt_regs are zeroed (copy_thread(): orig_ax 0, not probed).
	 */
	struct mm_struct *mm = current->mm;
	const struct vp_attr_entry *e;
	bool compat;
	long nr;

	if (unlikely(!mm))
		return;
	nr = vp_arch_syscall(regs, &compat);
	e = &a->index[compat][(unsigned long)nr % VP_ATTR_INDEX];
	if (e->nr != nr)
		return;
	if (unlikely(compat))
		vp_attr_probe_compat(a, e, mm, regs);
	else
		vp_attr_probe(a, e, mm, regs, false);
}

/*
 * The vsyscall emulation (emulate and xonly: the page is never executable, every call traps into
 * __emulate_vsyscall()); nr is the vsyscall's number, negative for a jump to no entry point.
 */
static void vp_attr_vsyscall(void *data, int nr)
{
	if (nr >= 0)
		vp_attr_add(data, (u32)current->tgid | (u64)(u32)nr << 32,
			    VP_SC_VSYSCALL | VP_ORIGIN_VSYSCALL << 8);
}

static void vp_attr_detach(struct vp_attr *a)
{
	if (a->ops_registered) {
		/*
		 * Waits (RCU tasks) until no callback runs or is preempted in the trampoline. It
		 * fails only if ftrace was disabled after an ftrace_bug(): then the ops may still
		 * be called, and the object is leaked rather than freed under it.
		 */
		if (WARN_ONCE(unregister_ftrace_function(&a->ops),
			      "vdso_probe: the ftrace ops did not unregister: leaking it\n"))
			a->leaked = true;
		a->ops_registered = false;
	}
	if (!a->leaked)
		ftrace_free_filter(&a->ops);
	if (a->vsyscall_registered) {
		tracepoint_probe_unregister(a->vsyscall_tp, vp_attr_vsyscall, a);
		tracepoint_synchronize_unregister();
		a->vsyscall_registered = false;
	}
}

static void vp_attr_free(struct vp_attr *a)
{
	if (a->leaked)
		return;
	free_percpu(a->rings);
	kfree(a);
}

/*
 * Allocates the probes' state and rings and sets the ftrace filter; nothing is attached until
 * vp_attr_start(), so that the consumer can know the rings first. Process context.
 */
struct vp_attr *vp_attr_alloc(vp_attr_full_fn full, void *data, struct vp_timepage *tp)
{
	struct vp_attr *a = kzalloc(sizeof(*a), GFP_KERNEL);
	char sym[48];
	unsigned int abi, i;
	int cpu, err;

	if (!a)
		return ERR_PTR(-ENOMEM);
	a->rings = alloc_percpu(struct vp_attr_ring);
	if (!a->rings) {
		kfree(a);
		return ERR_PTR(-ENOMEM);
	}
	a->full = full;
	a->data = data;
	a->tp = tp;
	err = vp_arch_attr_init(&a->arch);
	if (err) {
		vp_attr_free(a);
		return ERR_PTR(err);
	}
	for_each_possible_cpu(cpu) {
		struct vp_attr_ring *r = per_cpu_ptr(a->rings, cpu);

		/* The first last slot, which no call is like (no call has syscall 0xff). */
		r->ev[0].key.w[1] = 0xff;
		r->head = 1;
	}
	a->ops.func = vp_attr_ftrace;
	a->ops.flags = 0; /* see vp_attr_ftrace() */
	for (abi = 0; abi < ARRAY_SIZE(a->index); abi++)
		for (i = 0; i < VP_ATTR_INDEX; i++)
			a->index[abi][i].nr = LONG_MIN;
	for (i = 0; i < vp_attr_ndefs; i++) {
		const struct vp_attr_call_def *def = &vp_attr_defs[i];
		struct vp_attr_entry *e = &a->index[def->compat][def->nr % VP_ATTR_INDEX];

		/* A clash would make the callback miss calls: a table to fix, not a runtime state. */
		if (WARN_ON_ONCE(e->nr != LONG_MIN)) {
			vp_attr_free(a);
			return ERR_PTR(-EINVAL);
		}
		e->nr = def->nr;
		e->key = def->syscall | (u32)def->compat << 16;
		e->has_clock = def->has_clock;
	}
	for (i = 0; i < vp_attr_ndefs; i++) {
		/* ftrace_set_filter() parses (and may write into) its buffer. */
		strscpy(sym, vp_attr_defs[i].symbol);
		err = ftrace_set_filter(&a->ops, sym, strlen(sym), i == 0);
		if (err) {
			pr_err("vdso_probe: cannot trace %s: %d\n", vp_attr_defs[i].symbol, err);
			vp_attr_detach(a);
			vp_attr_free(a);
			return ERR_PTR(err);
		}
	}
	return a;
}

/*
 * Attaches the callback and the tracepoint probe: from now on they append every time system
 * call and vsyscall to the rings, and call full(data) when one is full. Process context
 * (registration sleeps). On failure nothing stays attached.
 */
int vp_attr_start(struct vp_attr *a)
{
	int err = register_ftrace_function(&a->ops);

	if (err)
		return err;
	a->ops_registered = true;
#ifdef CONFIG_X86_VSYSCALL_EMULATION
	a->vsyscall_tp = vp_find_tracepoint("emulate_vsyscall");
	err = a->vsyscall_tp ? tracepoint_probe_register(a->vsyscall_tp, vp_attr_vsyscall, a) :
			       -ENOENT;
	if (err) {
		vp_attr_detach(a);
		return err;
	}
	a->vsyscall_registered = true;
#endif
	return 0;
}

/* Detaches the probes (idempotent): no probe runs after this returns; the rings stay. */
void vp_attr_stop(struct vp_attr *a)
{
	vp_attr_detach(a);
}

/*
 * Takes up to max events, each CPU's in order from CPU *cpu on: what the slots' counts grew by
 * since the last take. *cpu is where the next take goes on, nr_cpu_ids once every CPU's ring
 * has been read (so a drain ends even while every CPU keeps calling). The caller serialises the
 * takes (its lock); the probes may append meanwhile.
 */
unsigned int vp_attr_take(struct vp_attr *a, struct vp_time_call *out, unsigned int max,
			  unsigned int *cpu)
{
	unsigned int n = 0;

	for (*cpu = cpumask_next((int)*cpu - 1, cpu_possible_mask); *cpu < nr_cpu_ids;
	     *cpu = cpumask_next(*cpu, cpu_possible_mask)) {
		struct vp_attr_ring *r = per_cpu_ptr(a->rings, *cpu);
		/* The probe writes the slots before head, and no more to those before head - 1. */
		u32 tail = r->tail, head = smp_load_acquire(&r->head);

		for (; tail != head && n < max; tail++) {
			struct vp_attr_slot *slot = &r->ev[tail % VP_ATTR_RING];
			unsigned long count = local_read(&slot->count);

			if (count != slot->taken) {
				memcpy(&out[n], &slot->key, sizeof(slot->key));
				out[n++].count = count - slot->taken;
			}
			/* The last slot stays: the probe may still count in it. */
			if (tail + 1 == head) {
				slot->taken = count;
				break;
			}
			slot->taken = 0;
		}
		/* The slots are read, and their taken zeroed, before the probe may reuse them. */
		smp_store_release(&r->tail, tail);
		if (n == max)
			break;
	}
	return n;
}

/* Detaches the probes and frees everything, events not taken included. */
void vp_attr_unregister(struct vp_attr *a)
{
	vp_attr_detach(a);
	vp_attr_free(a);
}

/* alloc_workqueue() is a macro with a format string. */
struct workqueue_struct *vp_alloc_wq(const char *name, unsigned int flags, int max_active)
{
	return alloc_workqueue("%s", flags, max_active, name);
}

/*
 * The time page: struct timekeeper and the pvclock_gtod notifier chain are not in the bindings
 * (timekeeper_internal.h), and the notifier runs with tk_core.lock held and interrupts off.
 */

static const char *vp_clock_mode_name(u32 mode);

/* Time namespaces with a page of their own at a time. */
#define VP_TP_NS_MAX 16

struct vp_timepage {
	struct notifier_block nb;
	struct vdso_probe_time_page *p;
	/*
	 * The live timekeeper (&tk_core.timekeeper), learnt from the first notifier call, which is
	 * the synchronous one of our pvclock_gtod_register_notifier(): NULL until then. Only
	 * touched by the notifier, so only under tk_core.lock (registration and every later call
	 * are serialised by it).
	 */
	const struct timekeeper *live_tk;
	/*
	 * The clocksource log: every change of clocksource or of its vdso_clock_mode the notifier
	 * saw (the first call logs the state at load), the last VP_CS_LOG_LEN of them. Written by
	 * the notifier (interrupts off, under tk_core.lock), read by vp_timepage_log().
	 */
	raw_spinlock_t log_lock;
	const struct clocksource *last_cs;
	u32 last_mode;
	u64 log_total;
	struct vp_cs_event log[VP_CS_LOG_LEN];
	/*
	 * The pages of the time namespaces whose processes faulted the page, each the host page
	 * with the namespace's offsets applied. Keyed by the offsets, not the namespace (the
	 * module cannot hold a reference: free_time_ns() is not exported; the offsets are frozen
	 * once a task is in the namespace, and two namespaces with the same offsets read the same
	 * time). A page no process maps any more (page_count 1, our reference) is freed when a
	 * slot is needed. The notifier (under tk_core.lock, interrupts off) and the fault path
	 * take ns_lock.
	 */
	raw_spinlock_t ns_lock;
	struct vp_tp_ns {
		struct page *page; /* NULL: a free slot */
		s64 mono_ns, boot_ns;
	} ns[VP_TP_NS_MAX];
};

/* Appends a clocksource event if the clocksource or its vDSO mode changed since the last call. */
static void vp_cs_log(struct vp_timepage *tp, const struct timekeeper *tk)
{
	const struct clocksource *cs = tk->tkr_mono.clock;
	u32 mode = READ_ONCE(cs->vdso_clock_mode);
	struct vp_cs_event *ev;

	if (tp->log_total && cs == tp->last_cs && mode == tp->last_mode)
		return;
	raw_spin_lock(&tp->log_lock);
	ev = &tp->log[tp->log_total % VP_CS_LOG_LEN];
	ev->seq = tp->log_total;
	/* CLOCK_MONOTONIC as of cycle_last: tk_update_ktime_data()'s base plus the shifted ns. */
	ev->mono_ns = ktime_to_ns(tk->tkr_mono.base) + (tk->tkr_mono.xtime_nsec >> tk->tkr_mono.shift);
	ev->real_sec = tk->xtime_sec;
	ev->mode = mode;
	ev->rating = cs->rating;
	strscpy_pad(ev->clocksource, cs->name);
	strscpy_pad(ev->clock_mode, vp_clock_mode_name(mode));
	/* Read without the lock by vp_tp_log_events(). */
	WRITE_ONCE(tp->log_total, tp->log_total + 1);
	raw_spin_unlock(&tp->log_lock);
	tp->last_cs = cs;
	tp->last_mode = mode;
}

/* Whether the vDSO could read the clocksource at the last update (any context). */
static notrace bool vp_tp_readable(const struct vp_timepage *tp)
{
	return READ_ONCE(tp->p->clock_mode) != VDSO_CLOCKMODE_NONE;
}

/* How many clocksource events were logged so far (any context). */
static notrace u32 vp_tp_log_events(const struct vp_timepage *tp)
{
	return READ_ONCE(tp->log_total);
}

/* The log's event number seq, if it is still kept. */
bool vp_timepage_log_entry(struct vp_timepage *tp, u64 seq, struct vp_cs_event *out)
{
	unsigned long flags;
	bool kept;

	raw_spin_lock_irqsave(&tp->log_lock, flags);
	kept = seq < tp->log_total && tp->log_total - seq <= VP_CS_LOG_LEN;
	if (kept)
		*out = tp->log[seq % VP_CS_LOG_LEN];
	raw_spin_unlock_irqrestore(&tp->log_lock, flags);
	return kept;
}

/* Copies the newest events, oldest first, into out (room for max); returns how many. */
unsigned int vp_timepage_log(struct vp_timepage *tp, struct vp_cs_event *out, unsigned int max,
			     u64 *total)
{
	unsigned long flags;
	unsigned int n;
	u64 first;

	raw_spin_lock_irqsave(&tp->log_lock, flags);
	*total = tp->log_total;
	n = min3((u64)max, tp->log_total, (u64)VP_CS_LOG_LEN);
	for (first = tp->log_total - n; first < tp->log_total; first++)
		*out++ = tp->log[first % VP_CS_LOG_LEN];
	raw_spin_unlock_irqrestore(&tp->log_lock, flags);
	return n;
}

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
	out->max_cycles = tkr->clock->max_cycles; /* as update_vsyscall() publishes it */
	out->mult = tkr->mult;
	out->shift = tkr->shift;
	out->xtime_nsec = tkr->xtime_nsec;
	out->base_ns = ktime_to_ns(tkr->base);
}

/*
 * The pvclock_gtod notifier. Called with tk_core.lock held and interrupts off: at registration
 * with the live timekeeper, afterwards from timekeeping_update_from_shadow() inside the write
 * side of tk_core.seq with the new (shadow) timekeeper. So: plain stores under the page's own
 * sequence counter, nothing that sleeps or reads the clock. The copy mirrors update_vsyscall()
 * (kernel/time/vsyscall.c).
 */
static int vp_tk_notify(struct notifier_block *nb, unsigned long was_set, void *priv)
{
	struct vp_timepage *tp = container_of(nb, struct vp_timepage, nb);
	const struct timekeeper *tk = priv;
	struct vdso_probe_time_page *p = tp->p;
	u32 seq = p->seq;
	bool from_shadow;

	if (!tp->live_tk)
		tp->live_tk = tk;
	vp_cs_log(tp, tk);
	/*
	 * Every registration, ours and any other notifier's, calls the whole chain with was_set
	 * true and the live timekeeper, and increments nothing. Only
	 * timekeeping_update_from_shadow() passes the shadow timekeeper, and it increments
	 * clock_was_set_seq after calling us when was_set.
	 */
	from_shadow = tk != tp->live_tk;
	WRITE_ONCE(p->seq, seq + 1);
	smp_wmb();

	p->update_count++;
	p->clock_mode = tk->tkr_mono.clock->vdso_clock_mode;
	p->clock_was_set_seq = tk->clock_was_set_seq + (was_set && from_shadow ? 1 : 0);
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
	vp_tp_write_all_ns(tp);
	return NOTIFY_OK;
}

/*
 * Writes namespace page q from the host page p (complete: not being written), with the
 * namespace's offsets: the MONOTONIC-based clocks move by mono, BOOTTIME by boot, REALTIME and
 * TAI stay (their offsets from MONOTONIC shrink by mono).
 */
static void vp_tp_write_ns(struct vdso_probe_time_page *q, const struct vdso_probe_time_page *p,
			   s64 mono, s64 boot)
{
	const size_t from = offsetof(struct vdso_probe_time_page, update_count);
	u32 seq = q->seq;

	WRITE_ONCE(q->seq, seq + 1);
	smp_wmb();
	memcpy((char *)q + from, (const char *)p + from, sizeof(*q) - from);
	q->mono.base_ns += mono;
	q->raw.base_ns += mono;
	q->offs_real_ns -= mono;
	q->offs_tai_ns -= mono;
	q->offs_boot_ns += boot - mono;
	vp_ts_add_ns(&q->monotonic_coarse, &q->monotonic_coarse, mono);
	vp_ts_add_ns(&q->boottime_coarse, &q->boottime_coarse, boot);
	q->timens_monotonic_ns = mono;
	q->timens_boottime_ns = boot;
	smp_wmb();
	WRITE_ONCE(q->seq, seq + 2);
}

/* Every namespace page, from the host page just written (the notifier). */
static void vp_tp_write_all_ns(struct vp_timepage *tp)
{
	unsigned int i;

	raw_spin_lock(&tp->ns_lock);
	for (i = 0; i < VP_TP_NS_MAX; i++)
		if (tp->ns[i].page)
			vp_tp_write_ns(page_address(tp->ns[i].page), tp->p, tp->ns[i].mono_ns,
				       tp->ns[i].boot_ns);
	raw_spin_unlock(&tp->ns_lock);
}

/*
 * The page for the calling task's time namespace, with a reference for the caller
 * (vp_timepage_page_put()): the host page in the root namespace, else the namespace's, made on
 * the first fault from it. ERR_PTR(-ENOMEM), or -ENOSPC with VP_TP_NS_MAX namespaces' pages
 * mapped. Process context (the fault handler): the task's nsproxy is stable for itself.
 */
struct page *vp_timepage_page_get(struct vp_timepage *tp)
{
	const struct time_namespace *ns = current->nsproxy->time_ns;
	struct page *host = virt_to_page(tp->p), *fresh = NULL, *stale[VP_TP_NS_MAX], *ret;
	unsigned int i, nstale = 0;
	unsigned long flags;
	s64 mono, boot;
	u32 seq;

	if (ns == &init_time_ns) {
		get_page(host);
		return host;
	}
	mono = timespec64_to_ns(&ns->offsets.monotonic);
	boot = timespec64_to_ns(&ns->offsets.boottime);
	/* The namespace's page if it has one; else make one (allocated unlocked) and look again. */
	for (;;) {
		raw_spin_lock_irqsave(&tp->ns_lock, flags);
		for (i = 0; i < VP_TP_NS_MAX; i++) {
			struct vp_tp_ns *e = &tp->ns[i];

			if (e->page && e->mono_ns == mono && e->boot_ns == boot) {
				ret = e->page;
				goto found;
			}
		}
		if (fresh)
			break;
		raw_spin_unlock_irqrestore(&tp->ns_lock, flags);
		fresh = alloc_page(GFP_KERNEL | __GFP_ZERO);
		if (!fresh)
			return ERR_PTR(-ENOMEM);
	}
	ret = ERR_PTR(-ENOSPC);
	for (i = 0; i < VP_TP_NS_MAX && fresh; i++) {
		struct vp_tp_ns *e = &tp->ns[i];

		if (e->page && page_count(e->page) == 1) {
			stale[nstale++] = e->page;
			e->page = NULL;
		}
		if (!e->page) {
			struct vdso_probe_time_page *q = page_address(fresh);

			q->magic = VDSO_PROBE_MAGIC;
			q->abi_version = VDSO_PROBE_ABI_VERSION;
			q->size = sizeof(*q);
			/*
			 * A consistent host page to start from: the notifier writes it outside
			 * ns_lock and takes ns_lock only after, so this wait ends.
			 */
			do {
				seq = smp_load_acquire(&tp->p->seq);
				if (!(seq & 1))
					vp_tp_write_ns(q, tp->p, mono, boot);
				smp_rmb();
			} while ((seq & 1) || READ_ONCE(tp->p->seq) != seq);
			*e = (struct vp_tp_ns){ .page = fresh, .mono_ns = mono, .boot_ns = boot };
			ret = fresh;
			fresh = NULL;
		}
	}
found:
	if (!IS_ERR(ret))
		get_page(ret);
	raw_spin_unlock_irqrestore(&tp->ns_lock, flags);
	while (nstale)
		put_page(stale[--nstale]);
	if (fresh)
		__free_page(fresh);
	return ret;
}

/* Drops the reference vp_timepage_page_get() gave (put_page() is inline). */
void vp_timepage_page_put(struct page *page)
{
	put_page(page);
}

/* Starts publishing into the (zeroed) page; fills it once before returning. */
struct vp_timepage *vp_timepage_start(struct page *page)
{
	struct vp_timepage *tp = kzalloc(sizeof(*tp), GFP_KERNEL);
	struct vdso_probe_time_page *p = page_address(page);
	int ret;

	BUILD_BUG_ON(sizeof(*p) > VDSO_PROBE_PAGE_SIZE || VDSO_PROBE_PAGE_SIZE != PAGE_SIZE);
	if (!tp)
		return ERR_PTR(-ENOMEM);
	p->magic = VDSO_PROBE_MAGIC;
	p->abi_version = VDSO_PROBE_ABI_VERSION;
	p->size = sizeof(*p);
	tp->p = p;
	raw_spin_lock_init(&tp->log_lock);
	raw_spin_lock_init(&tp->ns_lock);
	tp->nb.notifier_call = vp_tk_notify;
	ret = pvclock_gtod_register_notifier(&tp->nb);
	if (ret) {
		kfree(tp);
		return ERR_PTR(ret);
	}
	return tp;
}

/* After unregistering no notifier call runs (unregistration takes tk_core.lock). */
void vp_timepage_stop(struct vp_timepage *tp)
{
	unsigned int i;

	pvclock_gtod_unregister_notifier(&tp->nb);
	/* No mapping is left: each holds the device file, which holds the module. */
	for (i = 0; i < VP_TP_NS_MAX; i++)
		if (tp->ns[i].page)
			put_page(tp->ns[i].page);
	kfree(tp);
}

/*
 * The name of a vdso_clock_mode, from the kernel's own constants: so Rust mirrors none of their
 * values (include/vdso/clocksource.h; the arch's modes: shim_<arch>.c).
 */
static const char *vp_clock_mode_name(u32 mode)
{
	const char *name;

	switch (mode) {
	case VDSO_CLOCKMODE_NONE:
		return "none";
	case VDSO_CLOCKMODE_TIMENS:
		return "timens";
	}
	name = vp_arch_clock_mode_name(mode);
	return name ?: "unknown";
}

/* A consistent copy of the statistics the page carries (the writer is the notifier). */
void vp_timepage_stats(const struct vp_timepage *tp, struct vp_tp_stats *out)
{
	const struct vdso_probe_time_page *p = tp->p;
	u32 seq, mode;

	for (;;) {
		seq = smp_load_acquire(&p->seq);
		if (seq & 1) {
			cpu_relax();
			continue;
		}
		out->updates = data_race(p->update_count);
		out->clock_was_set_seq = data_race(p->clock_was_set_seq);
		mode = data_race(p->clock_mode);
		memcpy(out->clocksource, p->clocksource, sizeof(out->clocksource));
		smp_rmb();
		if (READ_ONCE(p->seq) == seq)
			break;
	}
	out->abi_size = sizeof(*p);
	out->vdso_readable = mode != VDSO_CLOCKMODE_NONE;
	strscpy_pad(out->clock_mode, vp_clock_mode_name(mode));
}
