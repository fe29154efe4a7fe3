// SPDX-License-Identifier: GPL-2.0
/*
 * classic_loop.c - the classic vDSO demonstration loop, in C.
 *
 * As the classic gettimeofday benchmark does (10,000,000 calls, one rdtsc around each loop):
 * N calls of gettimeofday() through libc (which glibc routes to the vDSO, also in static
 * binaries since glibc 2.31), of syscall(SYS_gettimeofday), which always enters the kernel,
 * and (x86_64) of the legacy vsyscall page's gettimeofday at 0xffffffffff600000. The cycles
 * are the TSC's on x86_64, the virtual counter's (cntvct_el0) on arm64.
 *
 * Called from Rust (vdso-bench --classic); the result struct layout is mirrored there with
 * #[repr(C)].
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

struct vdso_probe_classic_result {
	uint64_t iterations;		/* calls per loop */
	uint64_t libc_ns;		/* total ns of the libc gettimeofday() loop */
	uint64_t syscall_ns;		/* total ns of the syscall(SYS_gettimeofday) loop */
	uint64_t vsyscall_ns;		/* total ns of the vsyscall-page loop (0: not run) */
	uint64_t libc_cycles;		/* counter ticks of each loop: one read before, one after */
	uint64_t syscall_cycles;
	uint64_t vsyscall_cycles;
};

#if defined(__x86_64__)
/* The legacy vsyscall page's gettimeofday entry (arch/x86/entry/vsyscall/vsyscall_emu_64.S). */
#define VSYSCALL_GETTIMEOFDAY 0xffffffffff600000UL

static inline uint64_t counter(void)
{
	uint32_t lo, hi;

	__asm__ volatile("lfence; rdtsc; lfence" : "=a"(lo), "=d"(hi) :: "memory");
	return ((uint64_t)hi << 32) | lo;
}
#elif defined(__aarch64__)
/* No vsyscall page on arm64: the loop is never asked for (vsyscall is 0). */
#define VSYSCALL_GETTIMEOFDAY 0UL

/* The virtual counter, ordered as the vDSO orders it (isb before, as __arch_get_hw_counter). */
static inline uint64_t counter(void)
{
	uint64_t v;

	__asm__ volatile("isb; mrs %0, cntvct_el0; isb" : "=r"(v) :: "memory");
	return v;
}
#else
#error "classic_loop.c: x86_64 and arm64 only"
#endif
typedef int (*gtod_fn)(struct timeval *, struct timezone *);

static int raw_ns(uint64_t *out)
{
	struct timespec ts;

	if (syscall(SYS_clock_gettime, CLOCK_MONOTONIC_RAW, &ts) != 0)
		return errno;
	*out = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	return 0;
}

/* One loop of `iterations` calls of `which`: 0 libc, 1 syscall, 2 the vsyscall page. */
static int one_loop(int which, uint64_t iterations, uint64_t *ns, uint64_t *cycles)
{
	gtod_fn vsys = (gtod_fn)VSYSCALL_GETTIMEOFDAY;
	struct timeval tv;
	uint64_t t0 = 0, t1 = 0, c0, c1, i;
	int err, rc;

	err = raw_ns(&t0);
	if (err)
		return err;
	c0 = counter();
	for (i = 0; i < iterations; i++) {
		if (which == 0)
			rc = gettimeofday(&tv, NULL);
		else if (which == 1)
			rc = syscall(SYS_gettimeofday, &tv, NULL);
		else
			rc = vsys(&tv, NULL);
		if (rc != 0)
			return which == 2 ? EINVAL : errno;
	}
	c1 = counter();
	err = raw_ns(&t1);
	if (err)
		return err;
	*ns = t1 - t0;
	*cycles = c1 - c0;
	return 0;
}

/*
 * The classic loops: `iterations` calls each of libc's gettimeofday() (the vDSO), of
 * syscall(SYS_gettimeofday) and, if `vsyscall` (the caller knows the page is executable:
 * emulate or xonly; on none a call is SIGSEGV), of the vsyscall page's entry. Each loop is
 * bracketed by a raw syscall(SYS_clock_gettime, CLOCK_MONOTONIC_RAW), which never depends on the
 * vDSO, and by one ordered counter read. Returns 0 or a positive errno. The calls are opaque (libc,
 * syscall(), a function pointer) and write through &tv: the compiler cannot drop them.
 */
int vdso_probe_classic_loop(uint64_t iterations, int vsyscall,
			    struct vdso_probe_classic_result *out)
{
	int err;

	if (!out || !iterations)
		return EINVAL;
	out->iterations = iterations;
	out->vsyscall_ns = out->vsyscall_cycles = 0;
	err = one_loop(0, iterations, &out->libc_ns, &out->libc_cycles);
	if (!err)
		err = one_loop(1, iterations, &out->syscall_ns, &out->syscall_cycles);
	if (!err && vsyscall && VSYSCALL_GETTIMEOFDAY)
		err = one_loop(2, iterations, &out->vsyscall_ns, &out->vsyscall_cycles);
	return err;
}
