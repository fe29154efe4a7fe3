/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * vdso_probe time page ABI: the one definition shared by the module (rust/shim.c fills it) and
 * userspace (samples/vdso-probe generates Rust bindings from this file with bindgen).
 *
 * Map it with mmap(NULL, VDSO_PROBE_PAGE_SIZE, PROT_READ, MAP_SHARED, open(VDSO_PROBE_DEVICE), 0).
 * Reading: s = seq (acquire); retry while odd; copy; read barrier; retry if seq != s.
 *
 * Precise time, as the kernel computes it (kernel/time/timekeeping.c), valid only when
 * clock_mode == VDSO_PROBE_CLOCK_TSC (cycles = rdtsc):
 *   delta     = (cycles - mono.cycle_last) & mono.mask
 *   MONOTONIC = mono.base_ns + ((delta * mono.mult + mono.xtime_nsec) >> mono.shift)
 *   REALTIME  = MONOTONIC + offs_real_ns;  BOOTTIME = MONOTONIC + offs_boot_ns;
 *   TAI       = MONOTONIC + offs_tai_ns
 *   MONOTONIC_RAW: the same with raw.*
 * The product is computed in 128 bits (delta can be large after an idle period).
 */
#ifndef _UAPI_VDSO_PROBE_H
#define _UAPI_VDSO_PROBE_H

#include <linux/types.h>

#define VDSO_PROBE_DEVICE	"/dev/vdso_probe"
#define VDSO_PROBE_MAGIC	0x70736476	/* "vdsp" little endian */
#define VDSO_PROBE_ABI_VERSION	1
#define VDSO_PROBE_PAGE_SIZE	4096

/* The clocksource's vdso_clock_mode (include/vdso/clocksource.h, x86 values). */
enum vdso_probe_clock_mode {
	VDSO_PROBE_CLOCK_NONE = 0,	/* userspace cannot read it: use the coarse fields */
	VDSO_PROBE_CLOCK_TSC = 1,
	VDSO_PROBE_CLOCK_PVCLOCK = 2,	/* kvm-clock: "cycles" are not the raw TSC */
	VDSO_PROBE_CLOCK_HVCLOCK = 3,
};

/* One struct tk_read_base. */
struct vdso_probe_clock {
	__u64 cycle_last;
	__u64 mask;
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
};

#endif /* _UAPI_VDSO_PROBE_H */
