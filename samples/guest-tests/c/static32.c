// SPDX-License-Identifier: GPL-2.0
/*
 * An ia32 target for the guest tests (gcc -m32 -static): prints its own AT_SYSINFO_EHDR, touches
 * the vDSO's data pages through clock_gettime, then waits until stdin closes.
 */
#include <stdio.h>
#include <sys/auxv.h>
#include <time.h>
#include <unistd.h>

int main(void)
{
	struct timespec ts;
	char c;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	printf("%lx\n", getauxval(AT_SYSINFO_EHDR));
	fflush(stdout);
	while (read(0, &c, 1) > 0)
		;
	return 0;
}
