/*
 * Overcommit accounting and vm.max_map_count, as on Linux (mm/util.c
 * __vm_enough_memory, mm/mmap.c's VM_ACCOUNT charging):
 *   - the sysctls read as numbers with mode 0644, /proc/meminfo has
 *     CommitLimit and Committed_AS, and Committed_AS grows by the size of
 *     a private writable mapping (not of a read-only one) until munmap;
 *   - as root (else the rest is skipped), with every sysctl it changes
 *     restored at the end:
 *     - overcommit_memory refuses 3 and -1 (EINVAL); overcommit_ratio and
 *       overcommit_kbytes each zero the other when written;
 *     - mode 1 lets a private writable mapping larger than RAM and swap
 *       through, mode 0 refuses it (ENOMEM) unless MAP_NORESERVE;
 *     - mode 2, with the commit limit set 1 GiB above what is committed:
 *       a private writable mapping past the limit is ENOMEM, with
 *       MAP_NORESERVE too; a read-only one and a shared memfd mapping of
 *       the same size are not charged, but mprotect making the read-only
 *       one writable is ENOMEM; a 16 MiB mapping moves Committed_AS by
 *       16 MiB;
 *     - max_map_count lowered to 256: new mappings fail with ENOMEM once
 *       the count is passed, and so does an mprotect that must split.
 * Committed_AS is machine-wide: a delta is taken as the best of a few
 * tries within 2 MiB, so that other processes' mappings do not fail the
 * test on a busy Linux machine.
 */
#define _GNU_SOURCE
#include <sys/mman.h>
#include <sys/stat.h>

#include "utest.h"

#define MIB (1024L * 1024)
#define KB_SLACK 2048L

/* A /proc/meminfo field in kB, or -1. */
static long meminfo_kb(const char *field)
{
	static char text[8192];
	char key[64];

	if (utest_read_file("/proc/meminfo", text, sizeof(text)) <= 0)
		return -1;
	snprintf(key, sizeof(key), "\n%s:", field);
	const char *at = strncmp(text, key + 1, strlen(key + 1)) == 0 ? text - 1 : strstr(text, key);
	if (!at)
		return -1;
	return strtol(at + strlen(key), NULL, 10);
}

static long sysctl_get(const char *name)
{
	char path[96];

	snprintf(path, sizeof(path), "/proc/sys/vm/%s", name);
	return utest_read_number(path);
}

static int sysctl_set(const char *name, long value)
{
	char path[96], text[32];

	snprintf(path, sizeof(path), "/proc/sys/vm/%s", name);
	snprintf(text, sizeof(text), "%ld\n", value);
	return utest_write_text(path, text);
}

static int sysctl_set_text(const char *name, const char *text)
{
	char path[96];

	snprintf(path, sizeof(path), "/proc/sys/vm/%s", name);
	return utest_write_text(path, text);
}

/*
 * How much Committed_AS grows, in kB, while a mapping of `len` bytes with
 * `prot` and `flags` exists: of up to five tries, the one nearest
 * `want_kb`. -1 if the mapping fails.
 */
static long committed_delta(size_t len, int prot, int flags, long want_kb)
{
	long best = -1;

	for (int i = 0; i < 5; i++) {
		long before = meminfo_kb("Committed_AS");
		void *p = mmap(NULL, len, prot, flags, -1, 0);
		if (p == MAP_FAILED)
			return -1;
		long delta = meminfo_kb("Committed_AS") - before;
		munmap(p, len);
		if (best < 0 || labs(delta - want_kb) < labs(best - want_kb))
			best = delta;
		if (labs(best - want_kb) <= KB_SLACK)
			break;
	}
	return best;
}

static int near(long have, long want)
{
	return labs(have - want) <= KB_SLACK;
}

static void check_files(void)
{
	static const char *const names[] = { "overcommit_memory",    "overcommit_ratio",    "overcommit_kbytes",
					     "max_map_count",	     "admin_reserve_kbytes", "user_reserve_kbytes" };
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char path[96];
		struct stat st;
		snprintf(path, sizeof(path), "/proc/sys/vm/%s", names[i]);
		CHECK(sysctl_get(names[i]) >= 0 && stat(path, &st) == 0 && (st.st_mode & 07777) == 0644,
		      "vm.%s reads as a number, mode 0644", names[i]);
	}
	long limit = meminfo_kb("CommitLimit"), committed = meminfo_kb("Committed_AS");
	CHECK(limit > 0 && committed > 0, "meminfo has CommitLimit (%ld kB) and Committed_AS (%ld kB)", limit, committed);
}

static void check_committed_moves(void)
{
	long rw = committed_delta(64 * MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, 64 * 1024);
	CHECK(near(rw, 64 * 1024), "a 64 MiB private writable mapping adds 64 MiB to Committed_AS (%ld kB)", rw);
	long ro = committed_delta(64 * MIB, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, 0);
	CHECK(near(ro, 0), "a read-only one adds nothing (%ld kB)", ro);
}

static void check_bad_writes(void)
{
	long om = sysctl_get("overcommit_memory");
	errno = 0;
	CHECK(sysctl_set("overcommit_memory", 3) == -1 && errno == EINVAL, "overcommit_memory=3: EINVAL");
	errno = 0;
	CHECK(sysctl_set_text("overcommit_memory", "-1") == -1 && errno == EINVAL, "overcommit_memory=-1: EINVAL");
	CHECK(sysctl_get("overcommit_memory") == om, "a refused value changes nothing");
	errno = 0;
	CHECK(sysctl_set_text("max_map_count", "-1") == -1 && errno == EINVAL, "max_map_count=-1: EINVAL");
	CHECK(sysctl_set("overcommit_kbytes", 123456) == 0 && sysctl_get("overcommit_kbytes") == 123456 &&
		      sysctl_get("overcommit_ratio") == 0,
	      "writing overcommit_kbytes zeroes overcommit_ratio");
	CHECK(sysctl_set("overcommit_ratio", 50) == 0 && sysctl_get("overcommit_ratio") == 50 &&
		      sysctl_get("overcommit_kbytes") == 0,
	      "writing overcommit_ratio zeroes overcommit_kbytes");
}

static void check_guess_and_always(void)
{
	size_t big = (size_t)(meminfo_kb("MemTotal") + meminfo_kb("SwapTotal")) * 1024 + 1024 * MIB;
	const int rw = PROT_READ | PROT_WRITE, pa = MAP_PRIVATE | MAP_ANONYMOUS;

	CHECK(sysctl_set("overcommit_memory", 1) == 0, "overcommit_memory=1");
	void *p = mmap(NULL, big, rw, pa, -1, 0);
	CHECK(p != MAP_FAILED, "mode 1: a mapping larger than RAM and swap (%zu MiB) is let through", big / MIB);
	if (p != MAP_FAILED)
		munmap(p, big);
	CHECK(sysctl_set("overcommit_memory", 0) == 0, "overcommit_memory=0");
	errno = 0;
	p = mmap(NULL, big, rw, pa, -1, 0);
	CHECK(p == MAP_FAILED && errno == ENOMEM, "mode 0: it is ENOMEM");
	if (p != MAP_FAILED)
		munmap(p, big);
	p = mmap(NULL, big, rw, pa | MAP_NORESERVE, -1, 0);
	CHECK(p != MAP_FAILED, "mode 0: with MAP_NORESERVE it is not charged");
	if (p != MAP_FAILED)
		munmap(p, big);
}

static void check_never(void)
{
	const int rw = PROT_READ | PROT_WRITE, pa = MAP_PRIVATE | MAP_ANONYMOUS;
	long swap = meminfo_kb("SwapTotal");
	long kbytes = meminfo_kb("Committed_AS") + 1024 * 1024 - swap;

	CHECK(sysctl_set("overcommit_kbytes", kbytes > 0 ? kbytes : 1) == 0, "overcommit_kbytes=%ld", kbytes);
	CHECK(sysctl_set("overcommit_memory", 2) == 0, "overcommit_memory=2");
	long gap = meminfo_kb("CommitLimit") - meminfo_kb("Committed_AS");
	CHECK(gap > 512 * 1024, "CommitLimit is above Committed_AS (by %ld kB)", gap);
	size_t over = (size_t)gap * 1024 + 64 * MIB;
	errno = 0;
	void *p = mmap(NULL, over, rw, pa, -1, 0);
	CHECK(p == MAP_FAILED && errno == ENOMEM, "mode 2: a private writable mapping past CommitLimit is ENOMEM");
	errno = 0;
	p = mmap(NULL, over, rw, pa | MAP_NORESERVE, -1, 0);
	CHECK(p == MAP_FAILED && errno == ENOMEM, "mode 2 ignores MAP_NORESERVE");
	p = mmap(NULL, over, PROT_READ, pa, -1, 0);
	CHECK(p != MAP_FAILED, "a read-only mapping of that size is not charged");
	if (p != MAP_FAILED) {
		errno = 0;
		CHECK(mprotect(p, over, rw) == -1 && errno == ENOMEM, "making it writable is charged: ENOMEM");
		munmap(p, over);
	}
	int fd = memfd_create("overcommit_test", 0);
	CHECK(fd >= 0 && ftruncate(fd, (off_t)over) == 0, "a memfd of that size");
	p = fd >= 0 ? mmap(NULL, over, rw, MAP_SHARED, fd, 0) : MAP_FAILED;
	CHECK(p != MAP_FAILED, "a shared writable mapping of it is not charged");
	if (p != MAP_FAILED)
		munmap(p, over);
	if (fd >= 0)
		close(fd);
	long small = committed_delta(16 * MIB, rw, pa, 16 * 1024);
	CHECK(near(small, 16 * 1024), "mode 2: a 16 MiB mapping adds 16 MiB to Committed_AS (%ld kB)", small);
	CHECK(sysctl_set("overcommit_memory", 0) == 0, "back to overcommit_memory=0");
}

/* Mappings of one page that do not merge: alternating protections. */
static void check_max_map_count(void)
{
	enum { MAX = 256, TRIES = MAX + 64 };
	static void *pages[TRIES];
	long page = sysconf(_SC_PAGESIZE);
	char *three = mmap(NULL, 3 * page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	CHECK(three != MAP_FAILED, "a three-page mapping");
	CHECK(sysctl_set("max_map_count", MAX) == 0 && sysctl_get("max_map_count") == MAX, "max_map_count=%d", MAX);
	int made = 0, err = 0;
	while (made < TRIES) {
		void *p = mmap(NULL, page, made % 2 ? PROT_READ : PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) {
			err = errno;
			break;
		}
		pages[made++] = p;
	}
	CHECK(made > 0 && made < TRIES && err == ENOMEM, "mmap is ENOMEM once the count is reached (after %d)", made);
	errno = 0;
	CHECK(three != MAP_FAILED && mprotect(three + page, page, PROT_NONE) == -1 && errno == ENOMEM,
	      "an mprotect that splits is ENOMEM too");
	for (int i = 0; i < made; i++)
		munmap(pages[i], page);
	if (three != MAP_FAILED)
		munmap(three, 3 * page);
}

int main(int argc, char **argv)
{
	(void)argc;
	utest_start(argv[0]);
	check_files();
	check_committed_moves();
	if (geteuid() != 0) {
		utest_print("# not root: the sysctl writes are skipped\n");
		return utest_done();
	}
	long om = sysctl_get("overcommit_memory"), ratio = sysctl_get("overcommit_ratio");
	long kbytes = sysctl_get("overcommit_kbytes"), max_map_count = sysctl_get("max_map_count");
	check_bad_writes();
	check_guess_and_always();
	check_never();
	check_max_map_count();
	/* Restored in this order: the ratio zeroes kbytes, kbytes the ratio. */
	CHECK(sysctl_set("max_map_count", max_map_count) == 0, "max_map_count restored to %ld", max_map_count);
	CHECK(sysctl_set("overcommit_memory", om) == 0, "overcommit_memory restored to %ld", om);
	CHECK(sysctl_set("overcommit_ratio", ratio) == 0 && (kbytes == 0 || sysctl_set("overcommit_kbytes", kbytes) == 0),
	      "overcommit_ratio and overcommit_kbytes restored to %ld and %ld", ratio, kbytes);
	return utest_done();
}
