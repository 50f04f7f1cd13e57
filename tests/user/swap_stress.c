/*
 * Swap's integrity run: `swap_stress MIB ROUNDS [KEEP]` has four workers
 * fill MIB MiB between them with per-page checksummed patterns and read
 * them back, ROUNDS times, each round in another order (forwards,
 * backwards, a stride through the pages), rewriting a quarter of the
 * pages each round:
 *   - anon-a, anon-b: private anonymous memory, a process each;
 *   - cow: private anonymous memory whose worker forks a child every
 *     round; the child checks every page and rewrites its round's
 *     quarter (copy-on-write), the parent then checks its own copy;
 *   - shmem: a memfd mapped shared; every round a child checks it
 *     through the shared mapping and through pread(2), then the worker
 *     checks it through the mapping and rewrites its round's quarter.
 * With MIB above the machine's memory the pages go to swap and come
 * back. Each page's pattern is a function of its index and of the last
 * round that rewrote it, so every process knows what every page must
 * hold. Prints "PASS swap_stress MIB ROUNDS", or a FAIL line naming the
 * worker, the page and the round, and exits 1.
 *
 * With KEEP, after the rounds each worker keeps only the first KEEP/4
 * MiB of its memory (munmap, or ftruncate for the memfd), the main
 * process prints "holding" once all have, and waits for SIGUSR1
 * (meanwhile swapoff must bring the kept pages back); it then hands
 * SIGUSR1 on, and each worker checks its kept pages once more.
 *
 * Passes on Linux with enough swap.
 */
#define _GNU_SOURCE
#include "swap_stress.h"

int main(int argc, char **argv)
{
	unsigned long mib = argc > 2 ? strtoul(argv[1], NULL, 10) : 0;
	long rounds = argc > 2 ? strtol(argv[2], NULL, 10) : 0;
	unsigned long keep_mib = argc > 3 ? strtoul(argv[3], NULL, 10) : 0;
	int status = argc > 3 && keep_mib == 0 ? 2 : swap_stress_run(mib, rounds, keep_mib);

	if (status == 2)
		dprintf(1, "usage: swap_stress MIB ROUNDS [KEEP]\n");
	return status;
}
