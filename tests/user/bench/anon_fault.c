/*
 * Anonymous memory: cost of the first touch of a page (demand-zero fault:
 * exception, VMA lookup, page allocation and zeroing, PTE install) and of
 * mmap+munmap of a small region.
 */
#include <sys/mman.h>
#include "benchlib.h"

#define REGION (32UL << 20)
#define PAGE 4096UL
#define MAPS 2000

int main(void)
{
	double rounds[ROUNDS];

	for (int r = 0; r < ROUNDS; r++) {
		char *p = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) {
			perror("mmap");
			return 1;
		}
		long long t0 = now_ns();
		for (unsigned long off = 0; off < REGION; off += PAGE)
			p[off] = 1;
		rounds[r] = (double)(now_ns() - t0) / (REGION / PAGE);
		munmap(p, REGION);
	}
	report("user::anon_first_touch_fault", rounds, ROUNDS, "ns/page");

	for (int r = 0; r < ROUNDS; r++) {
		long long t0 = now_ns();
		for (int i = 0; i < MAPS; i++) {
			void *p = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (p == MAP_FAILED) {
				perror("mmap");
				return 1;
			}
			munmap(p, 4 * PAGE);
		}
		rounds[r] = (double)(now_ns() - t0) / MAPS;
	}
	report("user::mmap_munmap_16k", rounds, ROUNDS, "ns/op");
	return 0;
}
