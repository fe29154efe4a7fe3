// SPDX-License-Identifier: GPL-2.0
/*
 * An ia32 target for the guest tests (gcc -m32 -static): touches the vDSO's data pages through
 * clock_gettime, sleeps 10 ms (a 32-bit program on a kernel with COMPAT_32BIT_TIME can), prints
 * its own AT_SYSINFO_EHDR, then waits until stdin closes. If the sleep fails it prints why
 * instead of the address (the tests then fail with that line).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <time.h>
#include <unistd.h>

int main(void)
{
	struct timespec ts;
	char c;

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
