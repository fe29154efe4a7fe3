// SPDX-License-Identifier: GPL-2.0
/*
 * An ia32 target for the guest tests (gcc -m32 -static): touches the vDSO's data pages through
 * clock_gettime, sleeps 10 ms (a 32-bit program on a kernel with COMPAT_32BIT_TIME can), prints
 * its own AT_SYSINFO_EHDR, then waits until stdin closes. If the sleep fails it prints why
 * instead of the address (the tests then fail with that line).
 *
 * `static32 attribution N` (attribution-ia32-static) makes N clock_gettime(CLOCK_MONOTONIC) and N
 * clock_gettime(CLOCK_PROCESS_CPUTIME_ID) through glibc (the vDSO's __vdso_clock_gettime64: the
 * second falls back, through __kernel_vsyscall), then N syscall(SYS_clock_gettime64,
 * CLOCK_MONOTONIC) (glibc's own system call), prints "ready" and waits until stdin closes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* The kernel's struct __kernel_timespec: 64-bit seconds, as clock_gettime64 writes it. */
struct timespec64 {
	long long tv_sec;
	long long tv_nsec;
};

static int attribution(long n)
{
	struct timespec ts;
	struct timespec64 ts64;
	char c;
	long i;

	for (i = 0; i < n; i++)
		clock_gettime(CLOCK_MONOTONIC, &ts);
	for (i = 0; i < n; i++)
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	for (i = 0; i < n; i++)
		syscall(SYS_clock_gettime64, CLOCK_MONOTONIC, &ts64);
	printf("ready\n");
	fflush(stdout);
	while (read(0, &c, 1) > 0)
		;
	return 0;
}

int main(int argc, char **argv)
{
	struct timespec ts;
	char c;

	if (argc == 3 && !strcmp(argv[1], "attribution"))
		return attribution(strtol(argv[2], NULL, 10));

	struct timespec nap = { .tv_sec = 0, .tv_nsec = 10 * 1000 * 1000 };

	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (nanosleep(&nap, NULL) != 0) {
		printf("nanosleep: %s\n", strerror(errno));
		return 1;
	}
	printf("%lx\n", getauxval(AT_SYSINFO_EHDR));
	fflush(stdout);
	while (read(0, &c, 1) > 0)
		;
	return 0;
}
