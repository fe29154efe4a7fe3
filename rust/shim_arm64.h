/* SPDX-License-Identifier: GPL-2.0 */
/*
 * arm64's hot arch facts (shim_arch.h): the system call from the user registers (syscallno,
 * orig_x0, TIF_32BIT for AArch32), and whether its PC is in the [vdso] text (mm->context.vdso
 * and the text's size). Included by shim.c through shim_arch.h only.
 */
#ifndef VDSO_PROBE_SHIM_ARM64_H
#define VDSO_PROBE_SHIM_ARM64_H

#include <linux/compat.h>
#include <linux/compiler.h>
#include <linux/mm_types.h>
#include <asm/ptrace.h>

/* No fault hook yet: arm64 has no page_fault_user tracepoint (shim_arm64.c). */
struct vp_arch_hooks {
};

struct vp_arch_attr {
	/*
	 * The [vdso] text's size for 64-bit tasks, 0 when unknown: the same for every such task
	 * (the kernel's vdso_info[VDSO_ABI_AA64].vdso_pages, which is not exported), taken from
	 * the [vdso] mapping of the task that enabled attribution (vp_arch_attr_init()).
	 */
	unsigned long text_size;
};

int vp_arch_attr_init(struct vp_arch_attr *aa);

/* syscallno is the number in the task's ABI; TIF_32BIT says AArch32. */
static __always_inline notrace long vp_arch_syscall(const struct pt_regs *regs, bool *compat)
{
	*compat = is_compat_task();
	return regs->syscallno;
}

/*
 * The first argument as el0_svc_common() saved it: orig_x0, what syscall_get_arguments(),
 * seccomp and audit see (x0 too at the wrapper's entry, unless a tracer rewrote it).
 */
static __always_inline notrace int vp_arch_clock_arg(const struct pt_regs *regs, bool compat)
{
	return (int)regs->orig_x0;
}

/* The size of the [vdso] text at base from its ELF header, for one call (shim_arm64.c). */
unsigned long vp_arm64_text_size(unsigned long base, bool compat);

/*
 * The origin of a system call of a task with an mm: whether the user PC (after the svc) is in
 * the [vdso] text. The vDSO's fallbacks make the svc themselves, in both ABIs (no
 * __kernel_vsyscall as on ia32).
 */
static __always_inline notrace u8 vp_arch_call_origin(struct vp_arch_attr *aa,
						      struct mm_struct *mm,
						      const struct pt_regs *regs, bool compat)
{
	unsigned long base, size;

	base = (unsigned long)READ_ONCE(mm->context.vdso);
	if (unlikely(!base))
		return VP_ORIGIN_NO_VDSO;
	size = compat ? 0 : aa->text_size;
	if (unlikely(!size))
		size = vp_arm64_text_size(base, compat);
	return regs->pc - base < size ? VP_ORIGIN_VDSO : VP_ORIGIN_ELSEWHERE;
}

#endif /* VDSO_PROBE_SHIM_ARM64_H */
