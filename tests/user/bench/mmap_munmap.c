/*
 * Mapping and unmapping anonymous memory that is never touched: the cost of
 * the VMA work alone (address search, VMA allocation and insertion, then
 * removal), for a 4 KiB and a 2 MiB region. ROUNDS x 2000 pairs each.
 */
#include <sys/mman.h>
#include "benchlib.h"

#define MAPS 2000

static void bench(const char *name, unsigned long len)
{
	double rounds[ROUNDS];

	for (int r = 0; r < ROUNDS; r++) {
		long long t0 = now_ns();
		for (int i = 0; i < MAPS; i++)
			munmap(map_anon(len), len);
		rounds[r] = (double)(now_ns() - t0) / MAPS;
	}
	report(name, rounds, ROUNDS, "ns/op");
}

int main(void)
{
	bench("user::mmap_munmap_4k", PAGE);
	bench("user::mmap_munmap_2m", 2UL << 20);
	return 0;
}
