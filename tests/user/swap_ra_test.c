/*
 * Swap readahead from a program: `swap_ra_test MIB [CLUSTER]` sets
 * /proc/sys/vm/page-cluster to CLUSTER if given (and reads it back, and
 * sees 32 refused with EINVAL), maps MIB MiB of private anonymous memory,
 * fills every page with a pattern of its own, then reads every page in
 * order: with MIB above the machine's memory the first pages went to swap
 * while the last were written, and come back by sequential faults, which
 * swap readahead serves (the harness compares /proc/vmstat's swap_ra and
 * swap_ra_hit). Passes on Linux with swap on (as root, for the sysctl).
 */
#include <stdlib.h>
#include <sys/mman.h>

#include "swap_pattern.h"
#include "utest.h"

/* The seed of every page's pattern. */
#define SEED 0x5a11UL

int main(int argc, char **argv)
{
	utest_start(argv[0]);
	unsigned long pages = (argc > 1 ? strtoul(argv[1], NULL, 10) : 0) * 256;
	if (pages == 0) {
		utest_print("usage: swap_ra_test MIB [CLUSTER]\n");
		return 2;
	}
	if (argc > 2) {
		long cluster = strtol(argv[2], NULL, 10);
		CHECK(utest_write_text("/proc/sys/vm/page-cluster", argv[2]) == 0, "page-cluster takes %s", argv[2]);
		CHECK(utest_read_number("/proc/sys/vm/page-cluster") == cluster, "page-cluster reads back %ld", cluster);
		errno = 0;
		CHECK(utest_write_text("/proc/sys/vm/page-cluster", "32") == -1 && errno == EINVAL, "32: EINVAL");
		CHECK(utest_read_number("/proc/sys/vm/page-cluster") == cluster, "a refused value changes nothing");
	}
	char *base = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(base != MAP_FAILED, "mmap of %lu pages", pages);
	if (base == MAP_FAILED)
		return utest_done();
	for (unsigned long i = 0; i < pages; i++) {
		unsigned long *p = (unsigned long *)(base + i * PAGE);
		for (unsigned long w = 0; w < WORDS; w++)
			p[w] = pattern_word(i, w, SEED);
	}
	long bad = -1;
	for (unsigned long i = 0; i < pages && bad < 0; i++) {
		unsigned long *p = (unsigned long *)(base + i * PAGE);
		for (unsigned long w = 0; w < WORDS; w++)
			if (p[w] != pattern_word(i, w, SEED)) {
				bad = (long)i;
				break;
			}
	}
	CHECK(bad < 0, "every page read back in order is intact (first bad: %ld)", bad);
	return utest_done();
}
