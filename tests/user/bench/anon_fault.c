/*
 * Anonymous memory: cost of the first touch of a page (demand-zero fault:
 * exception, VMA lookup, page allocation and zeroing, PTE install), over a
 * 256 MiB region so page-table allocation is amortised as in a real
 * program. ROUNDS x 65536 faults: a few seconds under QEMU TCG.
 */
#include <sys/mman.h>
#include "benchlib.h"

#define REGION ((256UL << 20) / bench_scale)

int main(int argc, char **argv)
{
	double rounds[ROUNDS];

	bench_args(argc, argv);

	for (int r = 0; r < bench_rounds; r++) {
		char *p = map_anon(REGION);
		long long t0 = now_ns();
		touch(p, REGION, 1);
		rounds[r] = (double)(now_ns() - t0) / (REGION / PAGE);
		munmap(p, REGION);
	}
	report("user::anon_first_touch_fault", rounds, bench_rounds, "ns/page");
	return 0;
}
