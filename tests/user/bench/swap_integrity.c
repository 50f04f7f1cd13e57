/*
 * The time of swap's integrity run (tests/user/swap_stress.h, the test
 * `swapstress::` runs) on the bench machine's swap disk (/dev/vdc, made
 * by xtask with util-linux mkswap and attached alike under Linux; the
 * program turns it on with swapon(2) and off at the end):
 *
 *   user::swap_integrity_4x_ms  ms for four workers to fill four times
 *                               MemTotal with checksummed pages (private
 *                               anonymous memory, copy-on-write after
 *                               fork, a memfd) and check and rewrite them
 *                               in two rounds in different orders, every
 *                               page checked; the run fails, and no figure
 *                               is printed, if a page is wrong
 *
 * One run (it takes minutes under TCG); a smoke run moves a 64th.
 */
#define _GNU_SOURCE
#include <sys/swap.h>

#include "benchlib.h"
#include "../swap_stress.h"

#define DEVICE "/dev/vdc"
#define INTEGRITY_ROUNDS 2

int main(int argc, char **argv)
{
	bench_args(argc, argv);
	unsigned long mib = 4 * (proc_value("/proc/meminfo", "MemTotal") / 1024) / bench_scale;
	double ms;

	/* Whole multiples of the four workers' MiB. */
	mib &= ~3UL;
	if (mib == 0)
		mib = 4;
	if (swapon(DEVICE, 0) != 0) {
		perror("swapon " DEVICE);
		return 1;
	}
	swap_stress_out = 2;
	long long t0 = now_ns();
	int status = swap_stress_run(mib, INTEGRITY_ROUNDS, 0);
	ms = (double)(now_ns() - t0) / 1e6;
	if (swapoff(DEVICE) != 0) {
		perror("swapoff " DEVICE);
		return 1;
	}
	if (status != 0) {
		fprintf(stderr, "swap_integrity: %lu MiB failed\n", mib);
		return 1;
	}
	fprintf(stderr, "swap_integrity: %lu MiB x %d rounds in %.0f ms\n", mib, INTEGRITY_ROUNDS, ms);
	report("user::swap_integrity_4x_ms", &ms, 1, "ms");
	return 0;
}
