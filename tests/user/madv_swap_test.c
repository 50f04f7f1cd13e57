/*
 * madvise with swap (Linux mm/madvise.c), for a machine with swap on:
 * `madv_swap_test MIB`, MIB being more than the machine's free memory
 * (the pressure that makes reclaim run).
 *
 *   - MADV_PAGEOUT: the pages go to swap at once (VmSwap and pswpout
 *     rise by at least their number) and read back intact, before and
 *     after memory pressure pushed them out of the swap cache.
 *   - MADV_DONTNEED of swapped-out pages frees their swap (VmSwap falls
 *     back) and they read as zeros.
 *   - MADV_FREE: after memory pressure each page reads either as its old
 *     data or as zeros, never anything else; the pages written after the
 *     call keep what was written (pglazyfree counts the pages).
 *
 * Every page holds a pattern of its own (a checksum of its index and a
 * seed, word by word). Passes on Linux 6.1 with swap on.
 */
#include <stdlib.h>
#include <sys/mman.h>

#include "swap_pattern.h"
#include "utest.h"

#define PAGES 256UL

static void fill(char *base, unsigned long page, unsigned long seed)
{
	unsigned long *p = (unsigned long *)(base + page * PAGE);

	for (unsigned long w = 0; w < WORDS; w++)
		p[w] = pattern_word(page, w, seed);
}

/* What page `page` holds: 1 its pattern of `seed`, 0 zeros, -1 else. */
static int holds(char *base, unsigned long page, unsigned long seed)
{
	unsigned long *p = (unsigned long *)(base + page * PAGE);
	int pattern = 1, zero = 1;

	for (unsigned long w = 0; w < WORDS; w++) {
		pattern &= p[w] == pattern_word(page, w, seed);
		zero &= p[w] == 0;
	}
	return pattern ? 1 : zero ? 0 : -1;
}

/* The pages of [0, n) that do not hold their pattern of `seed`. */
static unsigned long wrong(char *base, unsigned long n, unsigned long seed)
{
	unsigned long bad = 0;

	for (unsigned long i = 0; i < n; i++)
		bad += holds(base, i, seed) != 1;
	return bad;
}

/* A number following `key` in the text file `path` (in kB for VmSwap). */
static long number_after(const char *path, const char *key)
{
	static char buf[32768];
	const char *at;

	if (utest_read_file(path, buf, sizeof(buf)) < 0 || !(at = strstr(buf, key)))
		return -1;
	return strtol(at + strlen(key), NULL, 10);
}

static long vmswap_kb(void)
{
	return number_after("/proc/self/status", "VmSwap:");
}

static long vmstat(const char *name)
{
	char key[64];

	snprintf(key, sizeof(key), "\n%s ", name);
	return number_after("/proc/vmstat", key);
}

static char *fresh(unsigned long seed)
{
	char *base = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (base != MAP_FAILED)
		for (unsigned long i = 0; i < PAGES; i++)
			fill(base, i, seed);
	return base;
}

static void pageout(unsigned long mib)
{
	char *base = fresh(0x9a6e);
	long swap0 = vmswap_kb(), out0 = vmstat("pswpout");

	CHECK(base != MAP_FAILED, "mmap of %lu pages", PAGES);
	if (base == MAP_FAILED)
		return;
	CHECK(madvise(base, PAGES * PAGE, MADV_PAGEOUT) == 0, "MADV_PAGEOUT succeeds");
	CHECK(vmswap_kb() >= swap0 + (long)(PAGES * 4), "VmSwap rose by the %lu pages (%ld -> %ld kB)", PAGES, swap0,
	      vmswap_kb());
	CHECK(vmstat("pswpout") >= out0 + (long)PAGES, "pswpout rose by the %lu pages (%ld -> %ld)", PAGES, out0,
	      vmstat("pswpout"));
	CHECK(wrong(base, PAGES, 0x9a6e) == 0, "every page reads back intact at once");
	CHECK(madvise(base, PAGES * PAGE, MADV_PAGEOUT) == 0, "MADV_PAGEOUT again");
	pressure(mib);
	CHECK(wrong(base, PAGES, 0x9a6e) == 0, "every page reads back intact after memory pressure");
	munmap(base, PAGES * PAGE);
}

static void dontneed(void)
{
	char *base = fresh(0xd0);
	long swap0 = vmswap_kb();

	CHECK(base != MAP_FAILED && madvise(base, PAGES * PAGE, MADV_PAGEOUT) == 0, "MADV_PAGEOUT for DONTNEED");
	if (base == MAP_FAILED)
		return;
	/* Other pages of this program may come and go meanwhile. */
	CHECK(vmswap_kb() >= (long)(PAGES * 4), "the pages are in swap (%ld -> %ld kB)", swap0, vmswap_kb());
	CHECK(madvise(base, PAGES * PAGE, MADV_DONTNEED) == 0, "MADV_DONTNEED of swapped-out pages succeeds");
	CHECK(vmswap_kb() <= swap0, "their swap entries are gone (%ld -> %ld kB)", swap0, vmswap_kb());
	unsigned long zeros = 0;
	for (unsigned long i = 0; i < PAGES; i++)
		zeros += holds(base, i, 0xd0) == 0;
	CHECK(zeros == PAGES, "they read as zeros (%lu of %lu)", zeros, PAGES);
	munmap(base, PAGES * PAGE);
}

/* Pages written again after MADV_FREE. */
#define REWRITTEN 16UL

static void lazyfree(unsigned long mib)
{
	char *base = fresh(0xf3ee);
	long lazy0 = vmstat("pglazyfree");

	CHECK(base != MAP_FAILED, "mmap for MADV_FREE");
	if (base == MAP_FAILED)
		return;
	CHECK(madvise(base, PAGES * PAGE, MADV_FREE) == 0, "MADV_FREE succeeds");
	/* The last few may wait in a per-CPU batch (Linux's too). */
	CHECK(vmstat("pglazyfree") >= lazy0 + (long)PAGES / 2, "pglazyfree counts the pages (%ld -> %ld)", lazy0,
	      vmstat("pglazyfree"));
	for (unsigned long i = 0; i < REWRITTEN; i++)
		fill(base, i, 0x2e);
	pressure(mib);
	unsigned long rewritten_ok = 0, old = 0, zeros = 0, other = 0;
	for (unsigned long i = 0; i < PAGES; i++) {
		if (i < REWRITTEN) {
			rewritten_ok += holds(base, i, 0x2e) == 1;
			continue;
		}
		int h = holds(base, i, 0xf3ee);
		old += h == 1;
		zeros += h == 0;
		other += h == -1;
	}
	CHECK(rewritten_ok == REWRITTEN, "the pages written after MADV_FREE keep it (%lu of %lu)", rewritten_ok,
	      REWRITTEN);
	CHECK(other == 0, "the others read as their old data or zeros (%lu old, %lu zeros, %lu other)", old, zeros,
	      other);
	munmap(base, PAGES * PAGE);
}

int main(int argc, char **argv)
{
	unsigned long mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 0;

	utest_start(argv[0]);
	if (mib == 0) {
		utest_print("usage: madv_swap_test MIB\n");
		return 2;
	}
	pageout(mib);
	dontneed();
	lazyfree(mib);
	return utest_done();
}
