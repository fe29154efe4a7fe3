// SPDX-License-Identifier: GPL-2.0
/*
 * x86_64's arch facts for the C half (shim_arch.h): the mm context (mm->context.vdso and
 * vdso_image), TIF_ADDR32, the vsyscall page, the exceptions:page_fault_user hook, the probed
 * system calls (__x64_sys_*, __ia32_*), the ia32 origin through __kernel_vsyscall, and the
 * layout's vclock pages and clock modes. Each function for the same reason as shim.c's: macros,
 * inline functions and arch headers that Rust cannot reach in 7.3.
 */

#include <linux/build_bug.h>
#include <linux/elf.h>
#include <linux/mm.h>
#include <linux/pgtable.h>
#include <linux/sched.h>
#include <linux/tracepoint.h>
#include <linux/uaccess.h>
#include <asm/pgtable_types.h>
#include <asm/trap_pf.h>
#include <asm/vdso/vsyscall.h>
#include <asm/vsyscall.h>
#ifdef CONFIG_IA32_EMULATION
#include <asm/unistd_32_ia32.h>
#endif
#include <vdso/clocksource.h>
#include <vdso/datapage.h>

#include "shim_arch.h"
#include "uapi/vdso_probe.h"

/* The UAPI clock modes are the kernel's (include/vdso/clocksource.h, asm/vdso/clocksource.h). */
static_assert((int)VDSO_PROBE_CLOCK_NONE == (int)VDSO_CLOCKMODE_NONE);
static_assert((int)VDSO_PROBE_CLOCK_TSC == (int)VDSO_CLOCKMODE_TSC);
static_assert((int)VDSO_PROBE_CLOCK_PVCLOCK == (int)VDSO_CLOCKMODE_PVCLOCK);
static_assert((int)VDSO_PROBE_CLOCK_HVCLOCK == (int)VDSO_CLOCKMODE_HVCLOCK);

/* Thread flags are arch macros: TIF_ADDR32 is ia32's and x32's. */
bool vp_task_addr32(struct task_struct *t)
{
	return test_tsk_thread_flag(t, TIF_ADDR32);
}

/* mm->context is x86's; called with the mmap lock held (vdso_mremap() writes context.vdso). */
void vp_arch_mm_info(struct mm_struct *mm, struct vp_mm *out)
{
	const struct vdso_image *image = mm->context.vdso_image;

	out->vdso_base = (unsigned long)mm->context.vdso;
	out->has_vsyscall = test_bit(MM_CONTEXT_HAS_VSYSCALL, &mm->context.flags);
	out->image_size = image ? image->size : 0;
	out->image_class = 0;
	out->image_machine = 0;
	if (image) {
		const struct elf32_hdr *ehdr = image->data; /* e_ident, e_machine: same offsets */

		out->image_class = ehdr->e_ident[EI_CLASS];
		out->image_machine = ehdr->e_machine;
	}
}

/* true when the fixmap vsyscall page has a user-accessible PTE: only vsyscall=emulate maps it. */
bool vp_vsyscall_pte_user(void)
{
	unsigned int level;
	pte_t *pte = lookup_address(VSYSCALL_ADDR, &level);

	return pte && pte_present(*pte) && (pte_flags(*pte) & _PAGE_USER);
}

/*
 * x86's exceptions:page_fault_user, at the entry of every user page fault (interrupts off, in the
 * faulting task): the faults that populate a page of [vvar], [vvar_vclock] or [vdso]. map_vdso()
 * (arch/x86/entry/vdso/vma.c) lays them out from one address: [vvar] (VDSO_NR_PAGES pages),
 * [vvar_vclock] (VDSO_NR_VCLOCK_PAGES), the text at mm->context.vdso, __VDSO_PAGES pages after
 * the start. Only the faults that can populate are kept: not on a present page (X86_PF_PROT),
 * not a write (none of the three is writable: a write is a SIGSEGV). What is kept is a
 * first-touch fault: a read of a vclock page the clocksource does not use is one too, though
 * vvar_vclock_fault() answers it with SIGBUS. The layout is the one map_vdso() made: a [vdso]
 * moved alone by mremap(), or a [vvar] unmapped, is not followed. Populating without a user
 * fault (mlockall()'s prefault, GUP, a kernel access to a user address) does not come here.
 */
static void vp_probe_fault(void *data, unsigned long address, struct pt_regs *regs,
			   unsigned long error_code)
{
	struct mm_struct *mm = current->mm;
	const struct vdso_image *image;
	unsigned long text, off, page;
	u8 mapping;

	if (!mm || (error_code & (X86_PF_PROT | X86_PF_WRITE)))
		return;
	text = (unsigned long)READ_ONCE(mm->context.vdso);
	image = READ_ONCE(mm->context.vdso_image);
	if (!text || !image)
		return;
	off = address - (text - __VDSO_PAGES * PAGE_SIZE);
	if (off >= __VDSO_PAGES * PAGE_SIZE + image->size)
		return;
	page = off >> PAGE_SHIFT;
	if (page < VDSO_NR_PAGES) {
		mapping = VP_MAP_VVAR;
	} else if (page < __VDSO_PAGES) {
		mapping = VP_MAP_VCLOCK;
		page -= VDSO_NR_PAGES;
	} else {
		mapping = VP_MAP_VDSO;
		page -= __VDSO_PAGES;
	}
	vp_hooks_fault(data, mapping, page,
		       error_code & X86_PF_INSTR ? VP_ACCESS_EXEC : VP_ACCESS_READ);
}

bool vp_vdso_faults_traced(void)
{
	return true;
}

int vp_arch_fault_attach(struct vp_arch_hooks *ah, struct vp_hooks *h)
{
	struct tracepoint *tp = vp_find_tracepoint("page_fault_user");
	int err = tp ? tracepoint_probe_register(tp, vp_probe_fault, h) : -ENOENT;

	if (!err)
		ah->page_fault_user = tp;
	return err;
}

/* Idempotent: nothing to undo when not attached. */
void vp_arch_fault_detach(struct vp_arch_hooks *ah, struct vp_hooks *h)
{
	if (ah->page_fault_user)
		tracepoint_probe_unregister(ah->page_fault_user, vp_probe_fault, h);
	ah->page_fault_user = NULL;
}

/*
 * The probed entry points: the ABI wrappers (__x64_sys_*, __ia32_sys_*), each with its system
 * call number (regs->orig_ax) in its ABI. The ftrace filter is the symbols; the callback finds
 * the entry by (ABI, number).
 */
const struct vp_attr_call_def vp_attr_defs[] = {
	{ "__x64_sys_clock_gettime", __NR_clock_gettime, VP_SC_CLOCK_GETTIME, false, true },
	{ "__x64_sys_gettimeofday", __NR_gettimeofday, VP_SC_GETTIMEOFDAY, false, false },
	{ "__x64_sys_time", __NR_time, VP_SC_TIME, false, false },
	{ "__x64_sys_clock_getres", __NR_clock_getres, VP_SC_CLOCK_GETRES, false, true },
	{ "__x64_sys_getcpu", __NR_getcpu, VP_SC_GETCPU, false, false },
	{ "__x64_sys_getrandom", __NR_getrandom, VP_SC_GETRANDOM, false, false },
#ifdef CONFIG_IA32_EMULATION
	{ "__ia32_sys_clock_gettime", __NR_ia32_clock_gettime64, VP_SC_CLOCK_GETTIME64, true, true },
	{ "__ia32_compat_sys_gettimeofday", __NR_ia32_gettimeofday, VP_SC_GETTIMEOFDAY, true,
	  false },
	{ "__ia32_sys_clock_getres", __NR_ia32_clock_getres_time64, VP_SC_CLOCK_GETRES_TIME64, true,
	  true },
	{ "__ia32_sys_getcpu", __NR_ia32_getcpu, VP_SC_GETCPU, true, false },
	{ "__ia32_sys_getrandom", __NR_ia32_getrandom, VP_SC_GETRANDOM, true, false },
#ifdef CONFIG_COMPAT_32BIT_TIME
	{ "__ia32_sys_clock_gettime32", __NR_ia32_clock_gettime, VP_SC_CLOCK_GETTIME, true, true },
	{ "__ia32_sys_time32", __NR_ia32_time, VP_SC_TIME, true, false },
	{ "__ia32_sys_clock_getres_time32", __NR_ia32_clock_getres, VP_SC_CLOCK_GETRES, true, true },
#endif
#endif
};
const unsigned int vp_attr_ndefs = ARRAY_SIZE(vp_attr_defs);

/* Whether addr lies in the [vdso] text of mm (the image, not the vvar pages before it). */
static notrace bool vp_x86_in_vdso_text(struct mm_struct *mm, unsigned long addr)
{
	unsigned long base = (unsigned long)READ_ONCE(mm->context.vdso);
	const struct vdso_image *image = READ_ONCE(mm->context.vdso_image);

	return base && image && addr - base < image->size;
}

/*
 * The origin of an ia32 system call: 64-bit processes' never come from their vDSO; one made
 * through __kernel_vsyscall is attributed to its caller. Out of line: the x86_64 path is short.
 */
noinline notrace u8 vp_x86_compat_origin(struct mm_struct *mm, const struct pt_regs *regs)
{
	unsigned long ip = regs->ip;
	const struct vdso_image *image;

	if (!READ_ONCE(mm->context.vdso))
		return VP_ORIGIN_NO_VDSO;
	image = READ_ONCE(mm->context.vdso_image);
	/*
	 * A 64-bit process's ia32 system call (int $0x80, or sysenter/syscall32, which return
	 * through the 32-bit landing pad's offset into whatever vDSO is mapped): never its vDSO's.
	 */
	if (image && !image->sym_int80_landing_pad)
		return VP_ORIGIN_ELSEWHERE;
	if (vp_x86_in_vdso_text(mm, ip) &&
	    ip - (unsigned long)mm->context.vdso == image->sym_int80_landing_pad) {
		/*
		 * Every ia32 system call made through __kernel_vsyscall (libc's as well as the
		 * vDSO's own fallbacks) comes back to its landing pad, in the vDSO: the caller is
		 * the one that called __kernel_vsyscall. Its return address lies above the three
		 * registers __kernel_vsyscall pushed (arch/x86/entry/vdso/vdso32/system_call.S);
		 * regs->sp is the user stack pointer at the sysenter/syscall/int $0x80. A probe may
		 * not sleep: a stack page that is not present reads as "elsewhere".
		 */
		u32 caller;

		if (copy_from_user_nofault(&caller,
					   (const void __user *)(unsigned long)((u32)regs->sp + 12),
					   sizeof(caller)))
			return VP_ORIGIN_ELSEWHERE;
		ip = caller;
	}
	return vp_x86_in_vdso_text(mm, ip) ? VP_ORIGIN_VDSO : VP_ORIGIN_ELSEWHERE;
}

const struct vp_layout_entry vp_arch_layout[] = {
	VP_CONST("vclock_pages", VDSO_NR_VCLOCK_PAGES),
	VP_CONST("vclock_pages.pvclock", VDSO_PAGE_PVCLOCK_OFFSET),
	VP_CONST("vclock_pages.hvclock", VDSO_PAGE_HVCLOCK_OFFSET),
	VP_CONST("clock_mode.tsc", VDSO_CLOCKMODE_TSC),
	VP_CONST("clock_mode.pvclock", VDSO_CLOCKMODE_PVCLOCK),
	VP_CONST("clock_mode.hvclock", VDSO_CLOCKMODE_HVCLOCK),
};
const unsigned int vp_arch_layout_len = ARRAY_SIZE(vp_arch_layout);

/* The vclock page offsets are x86 vDSO headers (asm/vdso/vsyscall.h), not in the bindings. */
void vp_arch_vclock_layout(struct vp_vvar_layout *out)
{
	out->vclock_pages = VDSO_NR_VCLOCK_PAGES;
	out->pvclock = VDSO_PAGE_PVCLOCK_OFFSET;
	out->hvclock = VDSO_PAGE_HVCLOCK_OFFSET;
}

/* arch/x86/include/asm/vdso/clocksource.h's modes. */
const char *vp_arch_clock_mode_name(u32 mode)
{
	switch (mode) {
	case VDSO_CLOCKMODE_TSC:
		return "tsc";
	case VDSO_CLOCKMODE_PVCLOCK:
		return "pvclock";
	case VDSO_CLOCKMODE_HVCLOCK:
		return "hvclock";
	}
	return NULL;
}
