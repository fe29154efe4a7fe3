/* SPDX-License-Identifier: GPL-2.0 */
/*
 * x86_64's hot arch facts (shim_arch.h): the system call from the user registers (orig_ax,
 * TS_COMPAT for ia32, x32's __X32_SYSCALL_BIT), and whether its IP is in the [vdso] text
 * (mm->context.vdso and vdso_image). Included by shim.c through shim_arch.h only.
 */
#ifndef VDSO_PROBE_SHIM_X86_H
#define VDSO_PROBE_SHIM_X86_H

#include <linux/compiler.h>
#include <linux/mm_types.h>
#include <asm/compat.h>
#include <asm/ptrace.h>
#include <asm/unistd.h>
#include <asm/vdso.h>

struct tracepoint;

struct vp_arch_hooks {
	struct tracepoint *page_fault_user; /* NULL until attached */
};

/* Nothing: the mm context has the vDSO image, its size included. */
struct vp_arch_attr {
};

static inline int vp_arch_attr_init(struct vp_arch_attr *aa)
{
	return 0;
}

/* orig_ax is the number, x32's with __X32_SYSCALL_BIT; TS_COMPAT says ia32. */
static __always_inline notrace long vp_arch_syscall(const struct pt_regs *regs, bool *compat)
{
	*compat = in_ia32_syscall();
	return *compat ? regs->orig_ax : regs->orig_ax & ~(long)__X32_SYSCALL_BIT;
}

/* The first argument: rdi for x86_64 and x32, ebx for ia32. */
static __always_inline notrace int vp_arch_clock_arg(const struct pt_regs *regs, bool compat)
{
	return compat ? (int)regs->bx : (int)regs->di;
}

/*
 * The origin of an ia32 system call of a task with an mm (shim_x86.c: __kernel_vsyscall's
 * caller).
 */
u8 vp_x86_compat_origin(struct mm_struct *mm, const struct pt_regs *regs);

/*
 * The origin of a system call of a task with an mm; x86_64's and x32's: whether the user IP is
 * in the [vdso] text. map_vdso() sets the base and the image together, vdso_mremap() moves the
 * base, and neither is ever cleared: no image, no vDSO was mapped (vdso=0). One munmap()ed
 * keeps its stale base and image, as for the kernel's own users (its signal return, the
 * vDSO's exception table): an IP there is then not in any vDSO text, and there is no text to
 * fall back from.
 */
static __always_inline notrace u8 vp_arch_call_origin(struct vp_arch_attr *aa,
						      struct mm_struct *mm,
						      const struct pt_regs *regs, bool compat)
{
	const struct vdso_image *image;

	if (unlikely(compat))
		return vp_x86_compat_origin(mm, regs);
	image = READ_ONCE(mm->context.vdso_image);
	if (unlikely(!image))
		return VP_ORIGIN_NO_VDSO;
	return regs->ip - (unsigned long)READ_ONCE(mm->context.vdso) < image->size ?
		       VP_ORIGIN_VDSO : VP_ORIGIN_ELSEWHERE;
}

#endif /* VDSO_PROBE_SHIM_X86_H */
