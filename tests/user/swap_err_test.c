/*
 * Swap I/O errors, run by tests/src/swap.rs on a swap disk whose first
 * slots fail (QEMU blkdebug), right after swapon, so that the first pages
 * this program sends to swap (MADV_PAGEOUT) take those slots. MIB is
 * more than the machine's free memory: touching that much pushes pages
 * out of the swap cache.
 *
 *   swap_err_test write MIB   writes fail: 64 pages paged out, memory
 *                             pressure, every page intact; again.
 *   swap_err_test sigbus MIB  reads fail: a child pages one page out, a
 *                             second child fills MIB MiB and checks it
 *                             (intact, exit 0), then the first touches
 *                             its page and must die of SIGBUS.
 *   swap_err_test hold MIB    reads fail: one page paged out and pushed
 *                             out of memory, "holding", then at SIGUSR1
 *                             touches it (swapoff ran meanwhile): this
 *                             must die of SIGBUS.
 *
 * Every page holds a pattern of its own (a checksum of its index and a
 * seed, word by word). Prints TAP lines and "PASS swap_err_test" (write,
 * sigbus); hold's verdict is its death.
 */
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "swap_pattern.h"
#include "utest.h"


static char *filled(unsigned long pages, unsigned long seed)
{
	char *base = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (base == MAP_FAILED)
		return NULL;
	for (unsigned long i = 0; i < pages; i++)
		for (unsigned long w = 0; w < WORDS; w++)
			((unsigned long *)(base + i * PAGE))[w] = pattern_word(i, w, seed);
	return base;
}

/* The pages of [0, pages) that do not hold their pattern. */
static unsigned long wrong(char *base, unsigned long pages, unsigned long seed)
{
	unsigned long bad = 0;

	for (unsigned long i = 0; i < pages; i++)
		for (unsigned long w = 0; w < WORDS; w++)
			if (((unsigned long *)(base + i * PAGE))[w] != pattern_word(i, w, seed)) {
				bad++;
				break;
			}
	return bad;
}

/* Whether the page at `p` is in memory (mapped or in the swap cache). */
static int resident(char *p)
{
	unsigned char vec = 0;

	return mincore(p, PAGE, &vec) != 0 || (vec & 1);
}

/* Pages `p` out, then applies pressure until it left memory (or gives up). */
static int pushed_out(char *p, unsigned long mib)
{
	if (madvise(p, PAGE, MADV_PAGEOUT) != 0)
		return 0;
	for (int tries = 0; tries < 10 && resident(p); tries++)
		pressure(mib);
	return !resident(p);
}

static int write_errors(unsigned long mib)
{
	const unsigned long pages = 64;
	char *base = filled(pages, 0x3e1);

	CHECK(base != NULL, "mmap of %lu pages", pages);
	if (!base)
		return utest_done();
	for (int round = 0; round < 2; round++) {
		CHECK(madvise(base, pages * PAGE, MADV_PAGEOUT) == 0, "MADV_PAGEOUT (round %d)", round);
		pressure(mib);
		CHECK(wrong(base, pages, 0x3e1) == 0, "every page intact after swap-out and pressure (round %d)", round);
	}
	return utest_done();
}

static int sigbus(unsigned long mib)
{
	int ready[2], go[2];

	CHECK(pipe(ready) == 0 && pipe(go) == 0, "pipes");
	pid_t victim = fork();
	if (victim == 0) {
		char *p = filled(1, 0xb05);
		char c;

		if (!p || madvise(p, PAGE, MADV_PAGEOUT) != 0)
			_exit(2);
		write(ready[1], "r", 1);
		if (read(go[0], &c, 1) != 1 || !pushed_out(p, mib / 4))
			_exit(3);
		/* The slot cannot be read: this is SIGBUS. */
		_exit(wrong(p, 1, 0xb05) == 0 ? 4 : 5);
	}
	char c;
	CHECK(victim > 0 && read(ready[0], &c, 1) == 1, "the first child paged its page out");
	pid_t bystander = fork();
	if (bystander == 0) {
		unsigned long pages = mib * 256;
		char *base = filled(pages, 0x5a5);

		_exit(base && wrong(base, pages, 0x5a5) == 0 && wrong(base, pages, 0x5a5) == 0 ? 0 : 1);
	}
	int status = -1;
	CHECK(bystander > 0 && waitpid(bystander, &status, 0) == bystander && WIFEXITED(status) &&
		      WEXITSTATUS(status) == 0,
	      "the second child's %lu MiB came back intact (status %#x)", mib, status);
	write(go[1], "g", 1);
	CHECK(waitpid(victim, &status, 0) == victim && WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS,
	      "the first child died of SIGBUS at its unreadable page (status %#x)", status);
	return utest_done();
}

static volatile sig_atomic_t released;

static void release(int sig)
{
	(void)sig;
	released = 1;
}

static int hold(unsigned long mib)
{
	char *p = filled(1, 0x401d);

	if (!p || !pushed_out(p, mib)) {
		utest_print("FAIL swap_err_test: the page did not leave memory\n");
		return 1;
	}
	signal(SIGUSR1, release);
	utest_print("holding\n");
	/* Polled with nanosleep: the one wait every kernel under test has. */
	while (!released)
		usleep(10000);
	/* Its data is lost: this is SIGBUS. */
	unsigned long bad = wrong(p, 1, 0x401d);
	utest_print("FAIL swap_err_test: a lost page read back (%s)\n", bad ? "wrong data" : "its old data");
	return 1;
}

int main(int argc, char **argv)
{
	unsigned long mib = argc > 2 ? strtoul(argv[2], NULL, 10) : 0;

	utest_start(argv[0]);
	if (mib == 0) {
		utest_print("usage: swap_err_test write|sigbus|hold MIB\n");
		return 2;
	}
	if (strcmp(argv[1], "write") == 0)
		return write_errors(mib);
	if (strcmp(argv[1], "sigbus") == 0)
		return sigbus(mib);
	if (strcmp(argv[1], "hold") == 0)
		return hold(mib);
	utest_print("usage: swap_err_test write|sigbus|hold MIB\n");
	return 2;
}
