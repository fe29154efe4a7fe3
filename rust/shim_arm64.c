// SPDX-License-Identifier: GPL-2.0
/*
 * arm64's arch facts for the C half (shim_arch.h): the mm context (mm->context.vdso, and the
 * [vdso] mapping the kernel installed there: arm64 keeps no image pointer), TIF_32BIT, no
 * vsyscall page, no fault hook, the probed system calls (__arm64_sys_*, __arm64_compat_sys_*)
 * and the layout's clock modes (ARCHTIMER, ARCHTIMER_NOCOMPAT). Each function for the same
 * reason as shim.c's: macros, inline functions and arch headers that Rust cannot reach in 7.3.
 */

#include <linux/build_bug.h>
#include <linux/elf.h>
#include <linux/mm.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <asm/unistd.h>
#ifdef CONFIG_COMPAT
#include <asm/unistd_compat_32.h>
#endif
#include <vdso/clocksource.h>
#include <vdso/datapage.h>

#include "shim_arch.h"
#include "uapi/vdso_probe.h"

/* The UAPI clock modes are the kernel's (include/vdso/clocksource.h, asm/vdso/clocksource.h). */
static_assert((int)VDSO_PROBE_CLOCK_NONE == (int)VDSO_CLOCKMODE_NONE);
static_assert((int)VDSO_PROBE_CLOCK_ARCHTIMER == (int)VDSO_CLOCKMODE_ARCHTIMER);
static_assert((int)VDSO_PROBE_CLOCK_ARCHTIMER_NOCOMPAT == (int)VDSO_CLOCKMODE_ARCHTIMER_NOCOMPAT);

/* Thread flags are arch macros: TIF_32BIT is AArch32's. */
bool vp_task_addr32(struct task_struct *t)
{
	return test_tsk_thread_flag(t, TIF_32BIT);
}

/*
 * The [vdso] mapping __setup_additional_pages() installed (arch/arm64/kernel/vdso.c): a special
 * mapping (no file, vm_ops->name, vm_private_data its struct vm_special_mapping) named [vdso].
 * Mmap lock held.
 */
static struct vm_area_struct *vp_arm64_vdso_vma(struct mm_struct *mm, unsigned long base)
{
	struct vm_area_struct *vma = base ? vma_lookup(mm, base) : NULL;

	const char *name;

	if (!vma || vma->vm_start != base || vma->vm_file || !vma->vm_ops || !vma->vm_ops->name)
		return NULL;
	/* A name() may return NULL (fs/proc/task_mmu.c falls back to other names then). */
	name = vma->vm_ops->name(vma);
	return name && !strcmp(name, "[vdso]") ? vma : NULL;
}

/*
 * mm->context.vdso is the text's start (vdso_mremap() follows a move); the image's size and ELF
 * identity come from the mapping there: its length, and the ELF header of its first page, read
 * from the kernel's own page (the image the kernel maps, not user memory). Mmap lock held.
 */
void vp_arch_mm_info(struct mm_struct *mm, struct vp_mm *out)
{
	unsigned long base = (unsigned long)mm->context.vdso;
	struct vm_area_struct *vma = vp_arm64_vdso_vma(mm, base);
	const struct vm_special_mapping *sm;

	out->vdso_base = base;
	out->has_vsyscall = false;
	out->image_size = 0;
	out->image_class = 0;
	out->image_machine = 0;
	if (!vma)
		return;
	out->image_size = vma->vm_end - vma->vm_start;
	sm = vma->vm_private_data;
	if (sm && sm->pages && sm->pages[0]) {
		/* e_ident and e_machine are at the same offsets in both classes. */
		const struct elf32_hdr *ehdr = page_address(sm->pages[0]);

		out->image_class = ehdr->e_ident[EI_CLASS];
		out->image_machine = ehdr->e_machine;
	}
}

/* arm64 has no vsyscall page. */
bool vp_vsyscall_pte_user(void)
{
	return false;
}

/*
 * The 64-bit tasks' [vdso] text size, from the enabling task's mapping (process context). Left
 * 0 (each call then reads its own task's ELF header) when that task has none or is AArch32.
 */
int vp_arch_attr_init(struct vp_arch_attr *aa)
{
	struct mm_struct *mm = current->mm;
	struct vm_area_struct *vma;

	aa->text_size = 0;
	if (!mm || is_compat_task())
		return 0;
	if (mmap_read_lock_killable(mm))
		return -EINTR;
	vma = vp_arm64_vdso_vma(mm, (unsigned long)mm->context.vdso);
	if (vma)
		aa->text_size = vma->vm_end - vma->vm_start;
	mmap_read_unlock(mm);
	return 0;
}

/*
 * The [vdso] text's size at base in the calling task, from the ELF header there: the kernel maps
 * the image's pages, vdso.so padded to a page (arch/arm64/kernel/vdso.S), and the linker puts
 * the section headers last. For AArch32 tasks (whose text size the module cannot learn once for
 * all: vdso_info is not exported) and when attribution was enabled from a task without a
 * 64-bit vDSO. Never cached: a task that mapped its own "header" there only misleads its own
 * counts. The probe may not sleep: a header page not present counts as one page of text.
 */
noinline notrace unsigned long vp_arm64_text_size(unsigned long base, bool compat)
{
	const void __user *p = (const void __user *)base;
	unsigned long end = 0;

	if (compat) {
		struct elf32_hdr h;

		if (!copy_from_user_nofault(&h, p, sizeof(h)) && !memcmp(h.e_ident, ELFMAG, SELFMAG))
			end = h.e_shoff + (unsigned long)h.e_shnum * h.e_shentsize;
	} else {
		struct elf64_hdr h;

		if (!copy_from_user_nofault(&h, p, sizeof(h)) && !memcmp(h.e_ident, ELFMAG, SELFMAG))
			end = h.e_shoff + (unsigned long)h.e_shnum * h.e_shentsize;
	}
	/* A vDSO is a few pages; anything else is not its header. */
	if (!end || end > 64 * PAGE_SIZE)
		return PAGE_SIZE;
	return PAGE_ALIGN(end);
}

/* arm64 has no page-fault tracepoint (x86's exceptions:page_fault_user). */
bool vp_vdso_faults_traced(void)
{
	return false;
}

/* Not called: vp_vdso_faults_traced() is false. */
int vp_arch_fault_attach(struct vp_arch_hooks *ah, struct vp_hooks *h)
{
	return -EOPNOTSUPP;
}

void vp_arch_fault_detach(struct vp_arch_hooks *ah, struct vp_hooks *h)
{
}

/*
 * The probed entry points: the ABI wrappers (__arm64_sys_*, __arm64_compat_sys_*), each with its
 * system call number (regs->syscallno) in its ABI: asm/unistd.h for 64-bit tasks (no time()),
 * asm/unistd_compat_32.h for AArch32 ones, whose clock_gettime64 and clock_getres_time64 are the
 * 64-bit tasks' entry points.
 */
const struct vp_attr_call_def vp_attr_defs[] = {
	{ "__arm64_sys_clock_gettime", __NR_clock_gettime, VP_SC_CLOCK_GETTIME, false, true },
	{ "__arm64_sys_gettimeofday", __NR_gettimeofday, VP_SC_GETTIMEOFDAY, false, false },
	{ "__arm64_sys_clock_getres", __NR_clock_getres, VP_SC_CLOCK_GETRES, false, true },
	{ "__arm64_sys_getcpu", __NR_getcpu, VP_SC_GETCPU, false, false },
	{ "__arm64_sys_getrandom", __NR_getrandom, VP_SC_GETRANDOM, false, false },
#ifdef CONFIG_COMPAT
	{ "__arm64_sys_clock_gettime", __NR_compat32_clock_gettime64, VP_SC_CLOCK_GETTIME64, true,
	  true },
	{ "__arm64_compat_sys_gettimeofday", __NR_compat32_gettimeofday, VP_SC_GETTIMEOFDAY, true,
	  false },
	{ "__arm64_sys_clock_getres", __NR_compat32_clock_getres_time64, VP_SC_CLOCK_GETRES_TIME64,
	  true, true },
	{ "__arm64_sys_getcpu", __NR_compat32_getcpu, VP_SC_GETCPU, true, false },
	{ "__arm64_sys_getrandom", __NR_compat32_getrandom, VP_SC_GETRANDOM, true, false },
#ifdef CONFIG_COMPAT_32BIT_TIME
	{ "__arm64_sys_clock_gettime32", __NR_compat32_clock_gettime, VP_SC_CLOCK_GETTIME, true,
	  true },
	{ "__arm64_sys_clock_getres_time32", __NR_compat32_clock_getres, VP_SC_CLOCK_GETRES, true,
	  true },
#endif
#endif
};
const unsigned int vp_attr_ndefs = ARRAY_SIZE(vp_attr_defs);

const struct vp_layout_entry vp_arch_layout[] = {
	VP_CONST("clock_mode.archtimer", VDSO_CLOCKMODE_ARCHTIMER),
	VP_CONST("clock_mode.archtimer_nocompat", VDSO_CLOCKMODE_ARCHTIMER_NOCOMPAT),
};
const unsigned int vp_arch_layout_len = ARRAY_SIZE(vp_arch_layout);

/* arm64 has no [vvar_vclock]. */
void vp_arch_vclock_layout(struct vp_vvar_layout *out)
{
	out->vclock_pages = 0;
	out->pvclock = 0;
	out->hvclock = 0;
}

/* arch/arm64/include/asm/vdso/clocksource.h's modes. */
const char *vp_arch_clock_mode_name(u32 mode)
{
	switch (mode) {
	case VDSO_CLOCKMODE_ARCHTIMER:
		return "archtimer";
	case VDSO_CLOCKMODE_ARCHTIMER_NOCOMPAT:
		return "archtimer_nocompat";
	}
	return NULL;
}
