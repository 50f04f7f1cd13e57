/*
 * Swap integrity: `swap_test MIB [hold KEEP]` maps MIB MiB of private anonymous
 * memory, fills every page with a pattern of its own (a checksum of its
 * index and a seed, word by word), forks, and has the child check every
 * page backwards and then rewrite half of them (copy-on-write), while
 * the parent checks every page forwards after the child is done, then
 * again backwards. With MIB above the machine's memory the pages must
 * go to swap and come back. Prints "PASS swap_test MIB" or the first bad
 * page and exits 1. With `hold KEEP`, instead of forking it unmaps all
 * but the first KEEP MiB (the pages swapped out first), prints
 * "holding", waits for SIGUSR1 (meanwhile swapoff must bring its pages
 * back) and then checks the KEEP MiB. Passes on Linux with swap on.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096UL
#define WORDS (PAGE / sizeof(unsigned long))

static unsigned long word(unsigned long page, unsigned long w, unsigned long seed)
{
	unsigned long x = (page * WORDS + w) ^ seed;

	x ^= x >> 31;
	x *= 0x9e3779b97f4a7c15UL;
	return x ^ (x >> 29);
}

static void fill(unsigned long *p, unsigned long page, unsigned long seed)
{
	for (unsigned long w = 0; w < WORDS; w++)
		p[w] = word(page, w, seed);
}

/* The first page in [0, pages) whose words are not its pattern, walking
 * backwards if `down`; -1 if none. `seed_of` gives each page's seed. */
static long check(char *base, unsigned long pages, int down, unsigned long (*seed_of)(unsigned long))
{
	for (unsigned long i = 0; i < pages; i++) {
		unsigned long page = down ? pages - 1 - i : i;
		unsigned long *p = (unsigned long *)(base + page * PAGE);

		for (unsigned long w = 0; w < WORDS; w++)
			if (p[w] != word(page, w, seed_of(page)))
				return (long)page;
	}
	return -1;
}

static unsigned long parent_seed(unsigned long page)
{
	(void)page;
	return 0x5eed;
}

static unsigned long child_seed(unsigned long page)
{
	return page % 2 ? 0xc41d : 0x5eed;
}

int main(int argc, char **argv)
{
	unsigned long mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 0;
	unsigned long pages = mib * 256;

	if (pages == 0) {
		fprintf(stderr, "usage: swap_test MIB\n");
		return 2;
	}
	char *base = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	for (unsigned long i = 0; i < pages; i++)
		fill((unsigned long *)(base + i * PAGE), i, parent_seed(i));
	if (argc > 3 && strcmp(argv[2], "hold") == 0) {
		unsigned long keep = strtoul(argv[3], NULL, 10) * 256;
		sigset_t set;

		if (keep == 0 || keep > pages || munmap(base + keep * PAGE, (pages - keep) * PAGE) != 0) {
			fprintf(stderr, "swap_test: bad KEEP\n");
			return 2;
		}
		sigemptyset(&set);
		sigaddset(&set, SIGUSR1);
		sigprocmask(SIG_BLOCK, &set, NULL);
		printf("holding\n");
		fflush(stdout);
		int sig;
		sigwait(&set, &sig);
		long bad = check(base, keep, 0, parent_seed);
		if (bad >= 0) {
			printf("FAIL swap_test: page %ld changed while held\n", bad);
			return 1;
		}
		printf("PASS swap_test %lu hold %lu\n", mib, keep / 256);
		return 0;
	}
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		return 1;
	}
	if (pid == 0) {
		long bad = check(base, pages, 1, parent_seed);
		if (bad >= 0) {
			printf("FAIL swap_test: the child found page %ld changed\n", bad);
			_exit(1);
		}
		for (unsigned long i = 1; i < pages; i += 2)
			fill((unsigned long *)(base + i * PAGE), i, child_seed(i));
		bad = check(base, pages, 0, child_seed);
		if (bad >= 0) {
			printf("FAIL swap_test: the child's own page %ld changed\n", bad);
			_exit(1);
		}
		_exit(0);
	}
	int status;
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		printf("FAIL swap_test: the child ended with status %#x\n", status);
		return 1;
	}
	for (int pass = 0; pass < 2; pass++) {
		long bad = check(base, pages, pass, parent_seed);
		if (bad >= 0) {
			printf("FAIL swap_test: page %ld changed (pass %d)\n", bad, pass);
			return 1;
		}
	}
	printf("PASS swap_test %lu\n", mib);
	return 0;
}
