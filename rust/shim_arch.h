/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The arch facts of the C half, behind one interface: shim.c is arch-independent, and each arch
 * has one .c file for what runs rarely (its mm context, its vsyscall page, its fault hook, its
 * layout constants, its probed system calls) and one header for what the attribution callback
 * runs on every probed system call (the system call's number, argument and origin from the user
 * registers), static inline so that it stays inlined there. Internal to the C half: Rust sees
 * only shim.h.
 */
#ifndef VDSO_PROBE_SHIM_ARCH_H
#define VDSO_PROBE_SHIM_ARCH_H

#include <linux/types.h>

#include "shim.h"

struct mm_struct;
struct tracepoint;

/* One probed system call entry point; shim_<arch>.c has the arch's table. */
struct vp_attr_call_def {
	const char *symbol;
	int nr;         /* its system call number in its ABI */
	u8 syscall;     /* VP_SC_* */
	bool compat;    /* the 32-bit ABI's entry point (ia32, AArch32) */
	bool has_clock; /* first argument: a clockid_t */
};
extern const struct vp_attr_call_def vp_attr_defs[];
extern const unsigned int vp_attr_ndefs;

/*
 * The layout table's entries (struct vp_layout_entry): a constant (one value) or a field
 * (offset, element size, element count), compiled from the kernel's own headers. The arch's
 * (clock modes, vclock pages) follow the generic ones.
 */
#define VP_CONST(name, v) { name, { (v) }, 1 }
#define VP_SIZEOF(s) { "sizeof." #s, { sizeof(struct s) }, 1 }
#define VP_FIELD(s, f) { #s "." #f, { offsetof(struct s, f), sizeof_field(struct s, f), 1 }, 3 }
#define VP_ARRAY(s, f)                                                                    \
	{ #s "." #f,                                                                      \
	  { offsetof(struct s, f), sizeof(((struct s *)0)->f[0]),                          \
	    ARRAY_SIZE(((struct s *)0)->f) }, 3 }
extern const struct vp_layout_entry vp_arch_layout[];
extern const unsigned int vp_arch_layout_len;

/* The mm context's vDSO facts: base, image size and ELF identity, vsyscall. Mmap lock held. */
void vp_arch_mm_info(struct mm_struct *mm, struct vp_mm *out);
/* The [vvar_vclock] part of the layout (0 where the arch has no such mapping). */
void vp_arch_vclock_layout(struct vp_vvar_layout *out);
/* The arch's name of a VDSO_CLOCKMODE_* value, or NULL for none of its own. */
const char *vp_arch_clock_mode_name(u32 mode);

/* Shared by the shim files: a tracepoint that is not exported, found by name (or NULL). */
struct tracepoint *vp_find_tracepoint(const char *name);

/*
 * The fault hook: the arch calls vp_hooks_fault() for each fault that may populate a page of
 * the vDSO's mappings, in the faulting task. Attached only where vp_vdso_faults_traced() (the
 * fault log says which); detach undoes what attach did, if anything (its struct vp_arch_hooks
 * starts zeroed), before shim.c's tracepoint_synchronize_unregister().
 */
struct vp_arch_hooks;
int vp_arch_fault_attach(struct vp_arch_hooks *ah, struct vp_hooks *h);
void vp_arch_fault_detach(struct vp_arch_hooks *ah, struct vp_hooks *h);
void vp_hooks_fault(struct vp_hooks *h, u8 mapping, u16 page, u8 access);

#if defined(CONFIG_X86_64)
#include "shim_x86.h"
#elif defined(CONFIG_ARM64)
#include "shim_arm64.h"
#else
#error "vdso_probe supports x86_64 and arm64"
#endif

/*
 * Each arch header defines:
 *   struct vp_arch_hooks;      what its fault hook keeps (in struct vp_hooks)
 *   struct vp_arch_attr;       what its attribution keeps (in struct vp_attr)
 *   int vp_arch_attr_init(struct vp_arch_attr *aa);  at allocation, process context
 *   long vp_arch_syscall(const struct pt_regs *regs, bool *compat);
 *                              the user's system call number and ABI
 *   int vp_arch_clock_arg(const struct pt_regs *regs, bool compat);
 *                              its first argument, as a clockid_t
 *   u8 vp_arch_call_origin(struct vp_arch_attr *aa, struct mm_struct *mm,
 *                          const struct pt_regs *regs, bool compat);
 *                              VP_ORIGIN_VDSO, _ELSEWHERE or _NO_VDSO; mm is the
 *                              calling task's, not NULL
 * (the last three static __always_inline notrace: the ftrace callback's hot path).
 */

#endif /* VDSO_PROBE_SHIM_ARCH_H */
