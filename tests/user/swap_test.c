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
 * back) and then checks the KEEP MiB.
 *
 * `swap_test shmem MIB [hold KEEP]` does the same for shmem: half of MIB in a
 * MAP_SHARED|MAP_ANONYMOUS region, then half in a memfd written with
 * write(2), each page with a pattern of its own. It prints how many pages
 * of each are resident ("resident shm N file N of N", from mincore),
 * checks the region and prints the counts again (past RAM, the region
 * is out first, then the memfd), forks,
 * and the child checks both through mappings and rewrites half of each
 * (the region's odd pages through the mapping, the memfd's even pages
 * with pwrite); the parent then checks the region through its mapping
 * and the memfd through pread(2) and through a mapping, and finally
 * truncates the memfd to 0 and unmaps everything. With `hold KEEP`,
 * instead of forking it keeps the first KEEP/2 MiB of each (the memfd
 * truncated, the region's tail freed with MADV_REMOVE), prints "holding",
 * waits for SIGUSR1 (meanwhile swapoff must bring the pages back) and
 * then checks what it kept. Prints "PASS swap_test shmem MIB[ hold KEEP]"
 * or the first bad page and exits 1.
 *
 * Passes on Linux with swap on.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "swap_pattern.h"

static int shmem_main(unsigned long mib, unsigned long keep_mib);

/* Prints "holding" and waits for SIGUSR1. */
static void hold_until_sigusr1(void)
{
	usr1_catch();
	printf("holding\n");
	fflush(stdout);
	usr1_wait();
}

static void fill(unsigned long *p, unsigned long page, unsigned long seed)
{
	for (unsigned long w = 0; w < WORDS; w++)
		p[w] = pattern_word(page, w, seed);
}

/* The first page in [0, pages) whose words are not its pattern, walking
 * backwards if `down`; -1 if none. `seed_of` gives each page's seed. */
static long check(char *base, unsigned long pages, int down, unsigned long (*seed_of)(unsigned long))
{
	for (unsigned long i = 0; i < pages; i++) {
		unsigned long page = down ? pages - 1 - i : i;
		unsigned long *p = (unsigned long *)(base + page * PAGE);

		for (unsigned long w = 0; w < WORDS; w++)
			if (p[w] != pattern_word(page, w, seed_of(page)))
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
	if (argc > 2 && strcmp(argv[1], "shmem") == 0)
		return shmem_main(strtoul(argv[2], NULL, 10),
				  argc > 4 && strcmp(argv[3], "hold") == 0 ? strtoul(argv[4], NULL, 10) : 0);

	unsigned long mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 0;
	unsigned long pages = mib * 256;

	if (pages == 0) {
		fprintf(stderr, "usage: swap_test MIB [hold KEEP] | swap_test shmem MIB [hold KEEP]\n");
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

		if (keep == 0 || keep > pages || munmap(base + keep * PAGE, (pages - keep) * PAGE) != 0) {
			fprintf(stderr, "swap_test: bad KEEP\n");
			return 2;
		}
		hold_until_sigusr1();
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

/* The shmem half: seeds of the memfd's and the region's pages, before
 * and after the child rewrote half of them. */
static unsigned long file_seed(unsigned long page)
{
	(void)page;
	return 0xf11e;
}

static unsigned long file_seed_after(unsigned long page)
{
	return page % 2 ? 0xf11e : 0xd00d;
}

static unsigned long shm_seed(unsigned long page)
{
	(void)page;
	return 0x5a5a;
}

static unsigned long shm_seed_after(unsigned long page)
{
	return page % 2 ? 0xc0c0 : 0x5a5a;
}

/* The first page of the file `fd` in [0, pages) whose words read with
 * pread(2) are not its pattern; -1 if none, -2 if a read failed. */
static long check_read(int fd, unsigned long pages, unsigned long (*seed_of)(unsigned long))
{
	static unsigned long buf[WORDS];

	for (unsigned long page = 0; page < pages; page++) {
		if (pread(fd, buf, PAGE, (off_t)(page * PAGE)) != (ssize_t)PAGE) {
			perror("pread");
			return -2;
		}
		for (unsigned long w = 0; w < WORDS; w++)
			if (buf[w] != pattern_word(page, w, seed_of(page)))
				return (long)page;
	}
	return -1;
}

static unsigned long resident(char *base, unsigned long pages)
{
	static unsigned char vec[1 << 16];
	unsigned long n = 0;

	for (unsigned long at = 0; at < pages; at += sizeof(vec)) {
		unsigned long len = pages - at < sizeof(vec) ? pages - at : sizeof(vec);

		if (mincore(base + at * PAGE, len * PAGE, vec) != 0) {
			perror("mincore");
			return 0;
		}
		for (unsigned long i = 0; i < len; i++)
			n += vec[i] & 1;
	}
	return n;
}

/* Checks the region `shm` and the memfd `fd` (mapped at `file`) against
 * the seeds given; prints the first bad page. */
static int check_both(char *shm, int fd, char *file, unsigned long pages, unsigned long (*shm_of)(unsigned long),
		      unsigned long (*file_of)(unsigned long), const char *who)
{
	long bad = check(shm, pages, 0, shm_of);

	if (bad >= 0) {
		printf("FAIL swap_test shmem: %s: page %ld of the shared region changed\n", who, bad);
		return 1;
	}
	bad = check_read(fd, pages, file_of);
	if (bad != -1) {
		printf("FAIL swap_test shmem: %s: page %ld of the memfd read wrong\n", who, bad);
		return 1;
	}
	bad = check(file, pages, 1, file_of);
	if (bad >= 0) {
		printf("FAIL swap_test shmem: %s: page %ld of the memfd mapped wrong\n", who, bad);
		return 1;
	}
	return 0;
}

static int shmem_main(unsigned long mib, unsigned long keep_mib)
{
	unsigned long pages = mib * 256 / 2, keep = keep_mib * 256 / 2;
	static unsigned long buf[WORDS];

	if (pages == 0 || keep > pages) {
		fprintf(stderr, "usage: swap_test shmem MIB [hold KEEP]\n");
		return 2;
	}
	char *shm = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shm == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	for (unsigned long i = 0; i < pages; i++)
		fill((unsigned long *)(shm + i * PAGE), i, shm_seed(i));
	int fd = memfd_create("swap_test", 0);
	if (fd < 0 || ftruncate(fd, (off_t)(pages * PAGE)) != 0) {
		perror("memfd");
		return 1;
	}
	for (unsigned long i = 0; i < pages; i++) {
		fill(buf, i, file_seed(i));
		if (pwrite(fd, buf, PAGE, (off_t)(i * PAGE)) != (ssize_t)PAGE) {
			perror("pwrite");
			return 1;
		}
	}
	char *file = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (file == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	/* The region, written first, has gone to swap for the memfd; read
	 * back, it sends the memfd there in turn. */
	printf("resident shm %lu file %lu of %lu\n", resident(shm, pages), resident(file, pages), pages);
	long bad = check(shm, pages, 0, shm_seed);
	if (bad >= 0) {
		printf("FAIL swap_test shmem: page %ld of the shared region changed\n", bad);
		return 1;
	}
	printf("resident shm %lu file %lu of %lu\n", resident(shm, pages), resident(file, pages), pages);
	fflush(stdout);
	if (keep > 0) {
		if (ftruncate(fd, (off_t)(keep * PAGE)) != 0 ||
		    madvise(shm + keep * PAGE, (pages - keep) * PAGE, MADV_REMOVE) != 0) {
			perror("release the tails");
			return 1;
		}
		hold_until_sigusr1();
		if (check_both(shm, fd, file, keep, shm_seed, file_seed, "held"))
			return 1;
		printf("PASS swap_test shmem %lu hold %lu\n", mib, keep_mib);
		return 0;
	}
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		return 1;
	}
	if (pid == 0) {
		long bad = check(shm, pages, 1, shm_seed);
		if (bad >= 0) {
			printf("FAIL swap_test shmem: the child found page %ld of the shared region changed\n", bad);
			_exit(1);
		}
		bad = check(file, pages, 1, file_seed);
		if (bad >= 0) {
			printf("FAIL swap_test shmem: the child found page %ld of the memfd changed\n", bad);
			_exit(1);
		}
		for (unsigned long i = 1; i < pages; i += 2)
			fill((unsigned long *)(shm + i * PAGE), i, shm_seed_after(i));
		for (unsigned long i = 0; i < pages; i += 2) {
			fill(buf, i, file_seed_after(i));
			if (pwrite(fd, buf, PAGE, (off_t)(i * PAGE)) != (ssize_t)PAGE)
				_exit(1);
		}
		_exit(0);
	}
	int status;
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		printf("FAIL swap_test shmem: the child ended with status %#x\n", status);
		return 1;
	}
	if (check_both(shm, fd, file, pages, shm_seed_after, file_seed_after, "parent"))
		return 1;
	if (ftruncate(fd, 0) != 0 || munmap(file, pages * PAGE) != 0 || munmap(shm, pages * PAGE) != 0 ||
	    close(fd) != 0) {
		perror("release");
		return 1;
	}
	printf("PASS swap_test shmem %lu\n", mib);
	return 0;
}
