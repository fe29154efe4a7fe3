/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * vdso_probe time page ABI: the one definition shared by the module (rust/shim.c fills it) and
 * userspace (samples/vdso-probe generates Rust bindings from this file with bindgen).
 *
 * Map it with mmap(NULL, VDSO_PROBE_PAGE_SIZE, PROT_READ, MAP_SHARED, open(VDSO_PROBE_DEVICE), 0).
 * The page is populated on the first access (a page fault), for the faulting process's time
 * namespace: in a time namespace other than the root one, MONOTONIC, MONOTONIC_RAW, BOOTTIME and
 * their coarse values include the namespace's offsets (timens_monotonic_ns, timens_boottime_ns;
 * REALTIME and TAI do not move), as clock_gettime() there returns them. A mapping keeps the page
 * of the namespace its first access was made in, and fork copies it: after setns(CLONE_NEWTIME),
 * or in a child forked into a new time namespace, map it again (timens_monotonic_ns and
 * timens_boottime_ns say which namespace a page is for; compare /proc/self/timens_offsets).
 *
 * Reading, the rules the vDSO follows (lib/vdso/gettimeofday.c, arch/{x86,arm64}/include/asm/vdso/
 * gettimeofday.h):
 *  1. s = seq, an acquire load; while s is odd (an update is in progress) read it again.
 *  2. Read the fields. For precise time only when the clock mode is the arch's counter (x86:
 *     VDSO_PROBE_CLOCK_TSC; arm64: VDSO_PROBE_CLOCK_ARCHTIMER or _ARCHTIMER_NOCOMPAT, the
 *     latter for 64-bit tasks only); else the clocksource cannot be read from userspace, and its
 *     fields are stale: use the coarse values or clock_gettime(). Read the counter here, inside
 *     the section, with an ordered read (x86: lfence; rdtsc, the kernel's rdtsc_ordered(), and
 *     the vDSO masks it to 63 bits (& S64_MAX); arm64: isb; mrs cntvct_el0, as the vDSO's
 *     __arch_get_hw_counter()), so that it is not older than the cycle_last it is compared with.
 *  3. A read barrier, then seq again: if it is not s, start over.
 *  4. delta = (cycles - mono.cycle_last) & mono.mask (64-bit wrap-around; the TSC's mask is all
 *     ones, and x86's vdso_calc_ns() applies none: its counter's 63 bits are the mask; the arch
 *     timer's mask is its counter's width, 56 bits or more).
 *     - delta <= mono.max_cycles: ns = (delta * mono.mult + mono.xtime_nsec) >> mono.shift, all
 *       in 64 bits (max_cycles is the clocksource's bound below which the product cannot
 *       overflow: the fast path).
 *     - else if bit 62 of delta is set: negative motion (a counter slightly behind cycle_last,
 *       read on another CPU): ns = mono.xtime_nsec >> mono.shift, the time at cycle_last.
 *     - else (a long time since the update): the same sum with a 128-bit product.
 *     MONOTONIC = mono.base_ns + ns.
 *  5. REALTIME = MONOTONIC + offs_real_ns;  BOOTTIME = MONOTONIC + offs_boot_ns;
 *     TAI = MONOTONIC + offs_tai_ns;  MONOTONIC_RAW: the same steps with raw.*.
 * The coarse values are the time at the last update: what the *_COARSE clocks return.
 */
#ifndef _UAPI_VDSO_PROBE_H
#define _UAPI_VDSO_PROBE_H

#include <linux/types.h>

#define VDSO_PROBE_DEVICE	"/dev/vdso_probe"
#define VDSO_PROBE_MAGIC	0x70736476	/* "vdsp" little endian */
#define VDSO_PROBE_ABI_VERSION	2	/* 2: max_cycles, the time namespace's offsets */
#define VDSO_PROBE_PAGE_SIZE	4096

/*
 * The clocksource's vdso_clock_mode (include/vdso/clocksource.h): the values after NONE are the
 * arch's (asm/vdso/clocksource.h), so the same number means a different counter on each arch.
 */
enum vdso_probe_clock_mode {
	VDSO_PROBE_CLOCK_NONE = 0,	/* userspace cannot read it: use the coarse fields */
	/* x86 */
	VDSO_PROBE_CLOCK_TSC = 1,
	VDSO_PROBE_CLOCK_PVCLOCK = 2,	/* kvm-clock: "cycles" are not the raw TSC */
	VDSO_PROBE_CLOCK_HVCLOCK = 3,
	/* arm64: the architected timer's virtual counter (cntvct_el0) */
	VDSO_PROBE_CLOCK_ARCHTIMER = 1,
	VDSO_PROBE_CLOCK_ARCHTIMER_NOCOMPAT = 2, /* readable by 64-bit tasks only */
};

/* One struct tk_read_base. */
struct vdso_probe_clock {
	__u64 cycle_last;
	__u64 mask;
	__u64 max_cycles;	/* the clocksource's max_cycles: the 64-bit product's bound */
	__u32 mult;
	__u32 shift;
	__u64 xtime_nsec;	/* nanoseconds << shift */
	__s64 base_ns;		/* tk_read_base.base: the clock at the last update, less xtime_nsec >> shift */
};

struct vdso_probe_timespec {
	__s64 sec;
	__s64 nsec;
};

struct vdso_probe_time_page {
	__u32 magic;		/* VDSO_PROBE_MAGIC */
	__u32 abi_version;	/* VDSO_PROBE_ABI_VERSION */
	__u32 size;		/* sizeof(struct vdso_probe_time_page) */
	__u32 seq;		/* odd while the module updates the page */
	__u64 update_count;	/* timekeeping updates seen */
	__u32 clock_mode;	/* enum vdso_probe_clock_mode */
	__u32 clock_was_set_seq;/* changes when the clock is set (settimeofday, ...) */
	char clocksource[32];	/* the clocksource's name, NUL-terminated */

	/* Coarse clocks: the time at the last update (what the *_COARSE clocks return). */
	struct vdso_probe_timespec realtime_coarse;
	struct vdso_probe_timespec monotonic_coarse;
	struct vdso_probe_timespec boottime_coarse;
	struct vdso_probe_timespec tai_coarse;

	/* Precise clocks. */
	struct vdso_probe_clock mono;
	struct vdso_probe_clock raw;
	__s64 offs_real_ns;
	__s64 offs_boot_ns;
	__s64 offs_tai_ns;

	/* The time namespace the page is for: its offsets, included above (0 in the root one). */
	__s64 timens_monotonic_ns;
	__s64 timens_boottime_ns;
};

#endif /* _UAPI_VDSO_PROBE_H */
