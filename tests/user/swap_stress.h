/*
 * The integrity run of tests/user/swap_stress.c, shared with the
 * benchmark that times it on both kernels
 * (tests/user/bench/swap_integrity.c): see swap_stress.c for what it
 * does and checks. Call swap_stress_run(). Includers define _GNU_SOURCE
 * before any header (memfd_create).
 */
#ifndef SWAP_STRESS_H
#define SWAP_STRESS_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "swap_pattern.h"


#define WORKERS 4

/* Where the PASS and FAIL lines go. */
static int swap_stress_out = 1;

static const char *const names[WORKERS] = { "anon-a", "anon-b", "cow", "shmem" };

/* Round `r` rewrites the pages with (page + r) % 4 == 0. */
static int rewritten_in(unsigned long page, long r)
{
	return (page + (unsigned long)r) % 4 == 0;
}

/* The seed of `page` for worker `id` once rounds [0, done) have run;
 * `child` for the cow worker's child, whose rewrites differ. */
static unsigned long seed_of(int id, unsigned long page, long done, int child)
{
	for (long r = done - 1; r >= 0; r--)
		if (rewritten_in(page, r))
			return 0x5eed0000UL * (unsigned long)(id + 1) + (unsigned long)r * 0x9e37UL + (child ? 0xc41dUL : 0);
	return 0x1000UL * (unsigned long)(id + 1);
}

static void fill(char *base, unsigned long page, unsigned long seed)
{
	unsigned long *p = (unsigned long *)(base + page * PAGE);

	for (unsigned long w = 0; w < WORDS; w++)
		p[w] = pattern_word(page, w, seed);
}

static int page_ok(const unsigned long *p, unsigned long page, unsigned long seed)
{
	for (unsigned long w = 0; w < WORDS; w++)
		if (p[w] != pattern_word(page, w, seed))
			return 0;
	return 1;
}

static unsigned long gcd(unsigned long a, unsigned long b)
{
	while (b) {
		unsigned long t = a % b;
		a = b;
		b = t;
	}
	return a;
}

/* The `i`th page visited in round `r` of a region of `pages`. */
static unsigned long order(unsigned long i, unsigned long pages, long r)
{
	switch (r % 3) {
	case 0:
		return i;
	case 1:
		return pages - 1 - i;
	default: {
		unsigned long stride = 7919;

		while (gcd(stride, pages) != 1)
			stride += 2;
		return (i * stride) % pages;
	}
	}
}

static void fail(int id, const char *how, unsigned long page, long round)
{
	dprintf(swap_stress_out, "FAIL swap_stress: %s: page %lu wrong %s (round %ld)\n", names[id], page, how, round);
	_exit(1);
}

/* Checks every page of `base` as worker `id` after `done` rounds, in
 * round `done`'s order. */
static void check_all(int id, char *base, unsigned long pages, long done, int child, const char *how)
{
	for (unsigned long i = 0; i < pages; i++) {
		unsigned long page = order(i, pages, done);

		if (!page_ok((unsigned long *)(base + page * PAGE), page, seed_of(id, page, done, child)))
			fail(id, how, page, done);
	}
}

static void rewrite(int id, char *base, unsigned long pages, long round, int child)
{
	for (unsigned long page = 0; page < pages; page++)
		if (rewritten_in(page, round))
			fill(base, page, seed_of(id, page, round + 1, child));
}

static int wait_child(pid_t pid)
{
	int status;

	return waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* The cow worker's child of round `r`: checks the parent's pages, then
 * rewrites its quarter and checks its own copy. */
static void cow_child(char *base, unsigned long pages, long r)
{
	check_all(2, base, pages, r, 0, "in the child before copy-on-write");
	rewrite(2, base, pages, r, 1);
	for (unsigned long page = 0; page < pages; page++) {
		unsigned long seed = rewritten_in(page, r) ? seed_of(2, page, r + 1, 1) : seed_of(2, page, r, 0);

		if (!page_ok((unsigned long *)(base + page * PAGE), page, seed))
			fail(2, "in the child after copy-on-write", page, r);
	}
	_exit(0);
}

/* The shmem worker's child of round `r`: the shared mapping, then
 * pread(2) backwards. */
static void shmem_child(int fd, char *base, unsigned long pages, long r)
{
	static unsigned long buf[WORDS];

	check_all(3, base, pages, r, 0, "through the shared mapping in a child");
	for (unsigned long i = 0; i < pages; i++) {
		unsigned long page = pages - 1 - i;

		if (pread(fd, buf, PAGE, (off_t)(page * PAGE)) != (ssize_t)PAGE)
			fail(3, "(pread failed)", page, r);
		if (!page_ok(buf, page, seed_of(3, page, r, 0)))
			fail(3, "through pread", page, r);
	}
	_exit(0);
}

static void worker(int id, unsigned long pages, long rounds, unsigned long keep, int ready)
{
	int fd = -1;
	char *base;

	if (id == 3) {
		fd = memfd_create("swap_stress", 0);
		if (fd < 0 || ftruncate(fd, (off_t)(pages * PAGE)) != 0) {
			dprintf(swap_stress_out, "FAIL swap_stress: shmem: memfd: %s\n", strerror(errno));
			_exit(1);
		}
		base = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	} else {
		base = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	}
	if (base == MAP_FAILED) {
		dprintf(swap_stress_out, "FAIL swap_stress: %s: mmap: %s\n", names[id], strerror(errno));
		_exit(1);
	}
	for (unsigned long page = 0; page < pages; page++)
		fill(base, page, seed_of(id, page, 0, 0));
	for (long r = 0; r < rounds; r++) {
		if (id >= 2) {
			pid_t pid = fork();

			if (pid < 0) {
				dprintf(swap_stress_out, "FAIL swap_stress: %s: fork: %s\n", names[id], strerror(errno));
				_exit(1);
			}
			if (pid == 0) {
				if (id == 2)
					cow_child(base, pages, r);
				shmem_child(fd, base, pages, r);
			}
			if (!wait_child(pid)) {
				dprintf(swap_stress_out, "FAIL swap_stress: %s: the child of round %ld failed\n", names[id], r);
				_exit(1);
			}
		}
		check_all(id, base, pages, r, 0, "in the worker");
		rewrite(id, base, pages, r, 0);
	}
	if (keep == 0)
		_exit(0);
	if (keep < pages) {
		int gone = id == 3 ? ftruncate(fd, (off_t)(keep * PAGE)) : 0;

		if (gone != 0 || munmap(base + keep * PAGE, (pages - keep) * PAGE) != 0) {
			dprintf(swap_stress_out, "FAIL swap_stress: %s: giving memory back: %s\n", names[id], strerror(errno));
			_exit(1);
		}
	}
	/* Closed once written, so the main process's read sees the end of
	 * the pipe if a worker fails before it is ready. */
	if (write(ready, "r", 1) != 1)
		_exit(1);
	close(ready);
	usr1_wait();
	check_all(id, base, keep < pages ? keep : pages, rounds, 0, "after swapoff");
	_exit(0);
}

/* The run `swap_stress MIB ROUNDS [KEEP]` describes (KEEP 0: none): 0 if
 * it passed, 1 if not, 2 for bad arguments. */
static int swap_stress_run(unsigned long mib, long rounds, unsigned long keep_mib)
{
	unsigned long pages = mib * 256 / WORKERS;
	pid_t pids[WORKERS];
	int ready[2];

	if (pages == 0 || rounds <= 0)
		return 2;
	usr1_catch();
	if (pipe(ready) != 0) {
		dprintf(swap_stress_out, "FAIL swap_stress: pipe: %s\n", strerror(errno));
		return 1;
	}
	for (int id = 0; id < WORKERS; id++) {
		pids[id] = fork();
		if (pids[id] < 0) {
			dprintf(swap_stress_out, "FAIL swap_stress: fork: %s\n", strerror(errno));
			return 1;
		}
		if (pids[id] == 0) {
			close(ready[0]);
			worker(id, pages, rounds, keep_mib * 256 / WORKERS, ready[1]);
		}
	}
	close(ready[1]);
	if (keep_mib) {
		char c;
		int n = 0;

		while (n < WORKERS && read(ready[0], &c, 1) == 1)
			n++;
		if (n == WORKERS) {
			dprintf(swap_stress_out, "holding\n");
			usr1_wait();
		}
		for (int id = 0; id < WORKERS; id++)
			kill(pids[id], SIGUSR1);
	}
	int failed = 0;
	for (int id = 0; id < WORKERS; id++) {
		int status;

		if (waitpid(pids[id], &status, 0) != pids[id] || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			dprintf(swap_stress_out, "FAIL swap_stress: worker %s ended with status %#x\n", names[id], status);
			failed = 1;
		}
	}
	if (failed)
		return 1;
	dprintf(swap_stress_out, "PASS swap_stress %lu %ld%s\n", mib, rounds, keep_mib ? " kept" : "");
	return 0;
}

#endif
