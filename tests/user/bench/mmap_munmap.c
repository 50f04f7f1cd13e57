/*
 * Mapping and unmapping anonymous memory that is never touched: the cost of
 * the VMA work alone (address search, VMA allocation and insertion, then
 * removal), for a 4 KiB and a 2 MiB region. ROUNDS x 2000 pairs each.
 */
#include <sys/mman.h>
#include "benchlib.h"

#define MAPS (2000 / bench_scale)

static void bench(const char *name, unsigned long len)
{
	double rounds[ROUNDS];

	for (int r = 0; r < bench_rounds; r++) {
		long long t0 = now_ns();
		for (unsigned long i = 0; i < MAPS; i++)
			munmap(map_anon(len), len);
		rounds[r] = (double)(now_ns() - t0) / MAPS;
	}
	report(name, rounds, bench_rounds, "ns/op");
}

int main(int argc, char **argv)
{
	bench_args(argc, argv);
	bench("user::mmap_munmap_4k", PAGE);
	bench("user::mmap_munmap_2m", 2UL << 20);
	return 0;
}
