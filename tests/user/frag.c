/*
 * Fragments memory for compaction to repair, and checks that compaction
 * moved its pages without losing a byte: maps MIB MiB (default 32) of
 * anonymous memory, writes every page with a pattern of its own, frees
 * every other page with madvise(MADV_DONTNEED), then waits:
 *
 *   frag MIB SECONDS        sleeps SECONDS (default 0);
 *   frag MIB SECONDS busy   keeps using the pages it kept for SECONDS:
 *                           each pass writes a new generation of patterns
 *                           into every kept page, sends each kept page
 *                           through a pipe and back (write(2) copies out
 *                           of it, read(2) into it after it was zeroed, so
 *                           the kernel's user copies race any migration),
 *                           and checks every kept page;
 *   frag MIB wait           waits for SIGUSR1, however long compaction
 *                           takes (`kill -USR1 PID` under Linux);
 *   frag MIB wait busy      busy as above until SIGUSR1;
 *   frag MIB wait detach    the same in a child process, while the parent
 *                           exits as soon as the child's memory is
 *                           fragmented: a console that runs it in the
 *                           foreground goes on exactly when there is
 *                           something to compact;
 *   frag MIB wait shared    forks once fragmented, so that every kept page
 *                           is mapped by the parent and the child (shared
 *                           copy-on-write), and both wait; on SIGUSR1 the
 *                           parent passes it to the child, and both check
 *                           every page (the exit status covers both). It
 *                           also maps a memfd shared, one file page written
 *                           after every 64 anonymous pages (so the file's
 *                           page-cache pages lie among them), which both
 *                           map and check too.
 *
 * At the end every kept page must hold its last pattern and every freed
 * page must read back as zeros. Exit status 0 only if every check passed.
 *
 * Under our kernel the console suite runs `run frag 32 wait &` from a
 * ktest, compacts, then sends SIGUSR1; `cargo xtask test` runs
 * `run frag 16 wait detach` before its scripted `compact`; and
 * `wait busy` runs on a second CPU while compaction runs again and again.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL

static const size_t words = PAGE / sizeof(uint64_t);

/* In shared mode, a memfd page is written after every FILE_EVERY
 * anonymous pages, with its own generation of the pattern. */
#define FILE_EVERY 64
#define FILE_GEN 0x5eed

static volatile sig_atomic_t released;

static void release(int sig)
{
	(void)sig;
	released = 1;
}

/* Until SIGUSR1 has arrived. The handler ends a sleep early; the short
 * sleeps only cover a signal that lands between the test and the call. */
static void wait_for_release(void)
{
	while (!released) {
		struct timespec ts = { .tv_sec = 0, .tv_nsec = 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}

/* The word at `word` of page `page` in generation `gen`: different for
 * every word of every page and generation, and never zero. */
static uint64_t pattern(size_t page, size_t word, uint64_t gen)
{
	return ((uint64_t)page * 0x9e3779b97f4a7c15ULL) ^ ((uint64_t)word << 48) ^ (gen * 0xbf58476d1ce4e5b9ULL) ^
	       0x5a5a5a5a5a5a5a5aULL;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Kept pages of `p` not holding generation `gen`. */
static size_t check_kept(const uint64_t *p, size_t pages, uint64_t gen)
{
	size_t bad = 0;

	for (size_t i = 0; i < pages; i += 2) {
		for (size_t w = 0; w < words; w++) {
			if (p[i * words + w] != pattern(i, w, gen)) {
				bad++;
				break;
			}
		}
	}
	return bad;
}

/* Page `page` out through the pipe and back in after zeroing it; 0 if
 * both calls moved the whole page. */
static int pipe_round_trip(const int fds[2], uint64_t *page)
{
	size_t done = 0;

	if (write(fds[1], page, PAGE) != (ssize_t)PAGE)
		return -1;
	memset(page, 0, PAGE);
	while (done < PAGE) {
		ssize_t n = read(fds[0], (char *)page + done, PAGE - done);
		if (n <= 0)
			return -1;
		done += n;
	}
	return 0;
}

/* The busy mode's passes until `seconds` have gone by (or, if
 * `until_released`, until SIGUSR1); returns the last generation written,
 * and counts failed checks and calls in `bad`. */
static uint64_t busy(uint64_t *p, size_t pages, long seconds, int until_released, size_t *bad)
{
	double end = now() + seconds;
	uint64_t gen = 0;
	size_t pipe_errors = 0;
	int fds[2];

	if (pipe(fds) != 0) {
		perror("frag: pipe");
		(*bad)++;
		return gen;
	}
	while (until_released ? !released : now() < end) {
		gen++;
		for (size_t i = 0; i < pages; i += 2)
			for (size_t w = 0; w < words; w++)
				p[i * words + w] = pattern(i, w, gen);
		for (size_t i = 0; i < pages; i += 2)
			if (pipe_round_trip(fds, p + i * words) != 0)
				pipe_errors++;
		*bad += check_kept(p, pages, gen);
	}
	*bad += pipe_errors;
	if (pipe_errors)
		printf("frag: %zu pipe round trips failed\n", pipe_errors);
	printf("frag: %llu passes\n", (unsigned long long)gen);
	close(fds[0]);
	close(fds[1]);
	return gen;
}

int main(int argc, char **argv)
{
	long mib = argc > 1 ? atol(argv[1]) : 32;
	int wait_mode = argc > 2 && strcmp(argv[2], "wait") == 0;
	long seconds = argc > 2 && !wait_mode ? atol(argv[2]) : 0;
	int busy_mode = argc > 3 && strcmp(argv[3], "busy") == 0;
	int detach = argc > 3 && wait_mode && strcmp(argv[3], "detach") == 0;
	int shared = argc > 3 && wait_mode && strcmp(argv[3], "shared") == 0;
	pid_t sharer = -1;
	size_t len = (size_t)mib << 20, pages = len / PAGE;
	struct timespec ts = { .tv_sec = seconds, .tv_nsec = 0 };
	size_t bad_kept = 0, bad_holes = 0;
	uint64_t gen = 0;
	int ready[2] = { -1, -1 };

	if (mib <= 0 || seconds < 0 || (argc > 3 && !busy_mode && !detach && !shared) || argc > 4) {
		fprintf(stderr, "usage: frag [MIB [SECONDS|wait [busy|detach|shared]]]\n");
		return 2;
	}
	if (wait_mode && signal(SIGUSR1, release) == SIG_ERR) {
		perror("frag: signal");
		return 1;
	}
	if (detach) {
		char byte;
		pid_t child;

		if (pipe(ready) != 0) {
			perror("frag: pipe");
			return 1;
		}
		child = fork();
		if (child < 0) {
			perror("frag: fork");
			return 1;
		}
		if (child > 0) {
			close(ready[1]);
			if (read(ready[0], &byte, 1) != 1) {
				printf("FAIL frag: child %d ended before fragmenting\n", (int)child);
				return 1;
			}
			printf("frag: child %d fragmented, waiting for SIGUSR1\n", (int)child);
			return 0;
		}
		close(ready[0]);
	}
	uint64_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("frag: mmap");
		return 1;
	}
	uint64_t *f = NULL;
	size_t fpages = shared ? pages / FILE_EVERY : 0;
	if (fpages) {
		int fd = memfd_create("frag", 0);
		if (fd < 0 || ftruncate(fd, fpages * PAGE) != 0) {
			perror("frag: memfd");
			return 1;
		}
		f = mmap(NULL, fpages * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		close(fd);
		if (f == MAP_FAILED) {
			perror("frag: mmap of the memfd");
			return 1;
		}
	}
	for (size_t i = 0; i < pages; i++) {
		for (size_t w = 0; w < words; w++)
			p[i * words + w] = pattern(i, w, 0);
		if (i % FILE_EVERY == 0 && i / FILE_EVERY < fpages)
			for (size_t w = 0; w < words; w++)
				f[i / FILE_EVERY * words + w] = pattern(i, w, FILE_GEN);
	}
	for (size_t i = 1; i < pages; i += 2) {
		if (madvise((char *)p + i * PAGE, PAGE, MADV_DONTNEED) != 0) {
			perror("frag: madvise");
			return 1;
		}
	}
	if (wait_mode)
		printf("frag: %zu pages kept, %zu freed; %s until SIGUSR1\n", (pages + 1) / 2, pages / 2,
		       busy_mode ? "rewriting them" : "waiting");
	else
		printf("frag: %zu pages kept, %zu freed; %s %ld s\n", (pages + 1) / 2, pages / 2,
		       busy_mode ? "rewriting them for" : "sleeping", seconds);
	fflush(stdout);
	if (detach && (write(ready[1], "", 1) != 1 || close(ready[1]) != 0)) {
		perror("frag: write");
		return 1;
	}
	if (shared) {
		sharer = fork();
		if (sharer < 0) {
			perror("frag: fork");
			return 1;
		}
	}
	if (busy_mode) {
		gen = busy(p, pages, seconds, wait_mode, &bad_kept);
	} else if (wait_mode) {
		wait_for_release();
	} else {
		while (nanosleep(&ts, &ts) != 0)
			;
	}
	if (sharer > 0) {
		int status;

		if (kill(sharer, SIGUSR1) != 0 || waitpid(sharer, &status, 0) != sharer || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0) {
			printf("FAIL frag: the child sharing the pages failed\n");
			bad_kept++;
		}
	}
	bad_kept += check_kept(p, pages, gen);
	for (size_t j = 0; j < fpages; j++) {
		for (size_t w = 0; w < words; w++) {
			if (f[j * words + w] != pattern(j * FILE_EVERY, w, FILE_GEN)) {
				bad_kept++;
				break;
			}
		}
	}
	for (size_t i = 1; i < pages; i += 2) {
		for (size_t w = 0; w < words; w++) {
			if (p[i * words + w] != 0) {
				bad_holes++;
				break;
			}
		}
	}
	if (bad_kept || bad_holes) {
		printf("FAIL frag: %zu failed checks of kept pages, %zu freed pages not zero\n", bad_kept, bad_holes);
		return 1;
	}
	printf("PASS frag: %zu kept pages intact\n", (pages + 1) / 2);
	return 0;
}
