// SPDX-License-Identifier: GPL-2.0
/*
 * classic_loop.c - the classic vDSO demonstration loop, in C.
 *
 * Times N calls of gettimeofday() through libc (which glibc routes to the vDSO, also in
 * static binaries since glibc 2.31) against N calls of syscall(SYS_gettimeofday), which
 * always enters the kernel. Each loop is bracketed by a raw
 * syscall(SYS_clock_gettime, CLOCK_MONOTONIC_RAW) so the bracket itself never depends on
 * the vDSO.
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
	uint64_t iterations;	/* calls per loop */
	uint64_t libc_ns;	/* total ns of the libc gettimeofday() loop */
	uint64_t syscall_ns;	/* total ns of the syscall(SYS_gettimeofday) loop */
};

static int raw_ns(uint64_t *out)
{
	struct timespec ts;

	if (syscall(SYS_clock_gettime, CLOCK_MONOTONIC_RAW, &ts) != 0)
		return errno;
	*out = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	return 0;
}

/*
 * Returns 0 on success or a positive errno. Both loops call opaque functions (libc's
 * gettimeofday() and syscall()) that write through &tv, so the compiler cannot drop calls.
 */
int vdso_probe_classic_loop(uint64_t iterations, struct vdso_probe_classic_result *out)
{
	struct timeval tv;
	uint64_t t0 = 0, t1 = 0, t2 = 0;
	uint64_t i;
	int err;

	if (!out || !iterations)
		return EINVAL;

	err = raw_ns(&t0);
	if (err)
		return err;
	for (i = 0; i < iterations; i++)
		if (gettimeofday(&tv, NULL) != 0)
			return errno;
	err = raw_ns(&t1);
	if (err)
		return err;
	for (i = 0; i < iterations; i++)
		if (syscall(SYS_gettimeofday, &tv, NULL) != 0)
			return errno;
	err = raw_ns(&t2);
	if (err)
		return err;

	out->iterations = iterations;
	out->libc_ns = t1 - t0;
	out->syscall_ns = t2 - t1;
	return 0;
}
