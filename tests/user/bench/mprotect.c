/*
 * mprotect of a populated 1 MiB region, alternating read-write and
 * read-only: the VMA update and a walk rewriting 256 PTEs with a TLB flush.
 * ROUNDS x 2000 calls.
 */
#include <sys/mman.h>
#include "benchlib.h"

#define REGION (1UL << 20)
#define CALLS (2000 / bench_scale)

int main(int argc, char **argv)
{
	double rounds[ROUNDS];

	bench_args(argc, argv);
	char *p = map_anon(REGION);

	touch(p, REGION, 1);
	for (int r = 0; r < bench_rounds; r++) {
		long long t0 = now_ns();
		for (unsigned long i = 0; i < CALLS; i++) {
			int prot = i % 2 ? PROT_READ | PROT_WRITE : PROT_READ;
			if (mprotect(p, REGION, prot) != 0) {
				perror("mprotect");
				return 1;
			}
		}
		rounds[r] = (double)(now_ns() - t0) / CALLS;
	}
	report("user::mprotect_1m", rounds, bench_rounds, "ns/op");
	return 0;
}
