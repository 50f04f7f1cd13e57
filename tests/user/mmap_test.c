/*
 * Anonymous memory system calls as Linux defines them: mmap, munmap,
 * mprotect, mremap, brk, madvise, mincore, mlock, msync. Each check is a
 * result or errno Linux returns (mm/mmap.c, mm/mprotect.c, mm/mremap.c,
 * mm/madvise.c, mm/mincore.c, mm/msync.c); VMA splits and merges are
 * observed through /proc/self/maps.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "utest.h"

#define PAGE 4096UL
#define RW (PROT_READ | PROT_WRITE)
#define ANON (MAP_PRIVATE | MAP_ANONYMOUS)

static char *map(size_t len, int prot, int flags)
{
	void *p = mmap(NULL, len, prot, flags, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* A free, page-aligned range of `len` bytes (mapped then unmapped). */
static char *hole(size_t len)
{
	char *p = map(len, PROT_NONE, ANON);

	if (p)
		munmap(p, len);
	return p;
}

/* Whether each page of [p, p+len) is resident; -1 with errno on failure. */
static int resident_pages(const void *p, size_t len)
{
	unsigned char vec[1024];
	size_t pages = len / PAGE;
	int n = 0;

	if (pages > sizeof(vec) || mincore((void *)p, len, vec) != 0)
		return -1;
	for (size_t i = 0; i < pages; i++)
		n += vec[i] & 1;
	return n;
}

/* Lines of /proc/self/maps whose range overlaps [start, end). */
static int vmas_in(const void *start, const void *end)
{
	static char buf[1 << 16];
	size_t len = 0;
	int fd = open("/proc/self/maps", O_RDONLY);

	if (fd < 0)
		return -1;
	for (;;) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			break;
		len += n;
	}
	close(fd);
	buf[len] = 0;
	int count = 0;
	for (char *line = buf; *line;) {
		char *next = strchr(line, '\n');
		uintptr_t lo = strtoul(line, NULL, 16);
		char *dash = strchr(line, '-');
		uintptr_t hi = dash ? strtoul(dash + 1, NULL, 16) : 0;
		if (lo < (uintptr_t)end && hi > (uintptr_t)start)
			count++;
		if (!next)
			break;
		line = next + 1;
	}
	return count;
}

static void argument_errors(void)
{
	char *p = map(PAGE, RW, ANON);

	errno = 0;
	CHECK(mmap(NULL, 0, RW, ANON, -1, 0) == MAP_FAILED && errno == EINVAL, "mmap of length 0 fails with EINVAL");
	errno = 0;
	CHECK(mmap(NULL, PAGE, RW, MAP_ANONYMOUS, -1, 0) == MAP_FAILED && errno == EINVAL,
	      "mmap without MAP_SHARED or MAP_PRIVATE fails with EINVAL");
	errno = 0;
	CHECK(mmap(p + 1, PAGE, RW, ANON | MAP_FIXED, -1, 0) == MAP_FAILED && errno == EINVAL,
	      "MAP_FIXED at an unaligned address fails with EINVAL");
	errno = 0;
	CHECK(munmap(p + 1, PAGE) == -1 && errno == EINVAL, "munmap of an unaligned address fails with EINVAL");
	errno = 0;
	CHECK(munmap(p, 0) == -1 && errno == EINVAL, "munmap of length 0 fails with EINVAL");
	/* musl's mprotect() rounds the address down; the kernel does not. */
	errno = 0;
	CHECK(syscall(SYS_mprotect, p + 1, PAGE, PROT_READ) == -1 && errno == EINVAL,
	      "mprotect of an unaligned address fails with EINVAL");
	CHECK(syscall(SYS_mprotect, p, 0, PROT_READ) == 0, "mprotect of length 0 succeeds and does nothing");
	munmap(p, PAGE);
}

static void munmap_and_fixed(void)
{
	char *p = map(3 * PAGE, RW, ANON);

	CHECK(p != NULL, "mmap of 3 pages");
	if (!p)
		return;
	munmap(p + PAGE, PAGE);
	errno = 0;
	CHECK(mprotect(p, 3 * PAGE, PROT_READ) == -1 && errno == ENOMEM, "mprotect over a hole fails with ENOMEM");
	CHECK(munmap(p, 3 * PAGE) == 0, "munmap of a range with a hole succeeds");
	CHECK(munmap(p, 3 * PAGE) == 0, "munmap of a hole succeeds");

	char *q = map(2 * PAGE, RW, ANON);
	CHECK(q != NULL, "mmap of 2 pages");
	if (!q)
		return;
	q[0] = 'A';
	q[PAGE] = 'B';
	errno = 0;
	CHECK(mmap(q + PAGE, PAGE, RW, ANON | MAP_FIXED_NOREPLACE, -1, 0) == MAP_FAILED && errno == EEXIST,
	      "MAP_FIXED_NOREPLACE over a mapping fails with EEXIST");
	CHECK(q[PAGE] == 'B', "the mapping MAP_FIXED_NOREPLACE refused is intact");
	CHECK(mmap(q, PAGE, RW, ANON | MAP_FIXED, -1, 0) == q, "MAP_FIXED over a mapping returns its address");
	CHECK(q[0] == 0 && q[PAGE] == 'B', "MAP_FIXED replaces the old page with a zero page, only in its range");
	munmap(q, 2 * PAGE);
}

static void mprotect_read(void)
{
	char *p = map(PAGE, RW, ANON);

	CHECK(p != NULL, "mmap of a page");
	if (!p)
		return;
	p[100] = 42;
	CHECK(mprotect(p, PAGE, PROT_READ) == 0, "mprotect to PROT_READ");
	CHECK(*(volatile char *)(p + 100) == 42, "a PROT_READ page stays readable with its contents");
	munmap(p, PAGE);
}

static void mremap_cases(void)
{
	/* Grow in place: the two pages after the mapping are free. */
	char *p = map(4 * PAGE, RW, ANON);
	CHECK(p != NULL, "mmap of 4 pages");
	if (!p)
		return;
	munmap(p + 2 * PAGE, 2 * PAGE);
	p[0] = 1;
	CHECK(mremap(p, 2 * PAGE, 4 * PAGE, 0) == p, "mremap grows in place into free space");
	p[3 * PAGE] = 4;
	CHECK(p[0] == 1 && p[3 * PAGE] == 4, "the grown mapping keeps its page and takes new ones");

	/* Shrink: the tail is unmapped. */
	CHECK(mremap(p, 4 * PAGE, PAGE, 0) == p, "mremap shrinks in place");
	errno = 0;
	CHECK(resident_pages(p + PAGE, PAGE) == -1 && errno == ENOMEM, "the shrunk-off tail is unmapped");

	/* Grow blocked by a neighbour: MREMAP_MAYMOVE moves the pages. */
	char *blocker = mmap(p + PAGE, PAGE, PROT_READ, ANON | MAP_FIXED_NOREPLACE, -1, 0);
	CHECK(blocker == p + PAGE, "a neighbour mapped right after the mapping");
	errno = 0;
	CHECK(mremap(p, PAGE, 8 * PAGE, 0) == MAP_FAILED && errno == ENOMEM,
	      "mremap cannot grow in place over a neighbour (ENOMEM)");
	char *moved = mremap(p, PAGE, 8 * PAGE, MREMAP_MAYMOVE);
	CHECK(moved != MAP_FAILED && moved != p, "MREMAP_MAYMOVE moves the mapping");
	if (moved == MAP_FAILED)
		return;
	CHECK(moved[0] == 1 && moved[7 * PAGE] == 0, "the moved mapping keeps its contents, new pages are zero");
	errno = 0;
	CHECK(resident_pages(p, PAGE) == -1 && errno == ENOMEM, "the old address is unmapped after the move");
	munmap(blocker, PAGE);

	/* MREMAP_FIXED: to an address of our choosing, replacing what is there. */
	char *target = map(8 * PAGE, PROT_READ, ANON);
	CHECK(target != NULL, "mmap of an 8-page target");
	if (!target)
		return;
	moved[5 * PAGE] = 6;
	char *fixed = mremap(moved, 8 * PAGE, 8 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, target);
	CHECK(fixed == target, "MREMAP_FIXED moves to the given address");
	CHECK(target[0] == 1 && target[5 * PAGE] == 6, "MREMAP_FIXED keeps the contents");
	target[PAGE] = 2;
	CHECK(target[PAGE] == 2, "the moved mapping keeps its protection (writable)");
	errno = 0;
	CHECK(mremap(target + 1, PAGE, PAGE, 0) == MAP_FAILED && errno == EINVAL,
	      "mremap of an unaligned address fails with EINVAL");
	munmap(target, 8 * PAGE);
}

static void brk_cases(void)
{
	/* musl's brk() always fails; the system call is what a kernel serves. */
	char *start = (char *)syscall(SYS_brk, 0);
	char *end = start + 16 * PAGE;

	CHECK((uintptr_t)start % PAGE == 0, "the initial break is page-aligned");
	CHECK((char *)syscall(SYS_brk, end) == end, "brk grows the heap by 16 pages");
	memset(start, 0x5a, 16 * PAGE);
	CHECK(start[0] == 0x5a && start[16 * PAGE - 1] == 0x5a, "the grown heap is writable");
	CHECK((char *)syscall(SYS_brk, start + PAGE) == start + PAGE, "brk shrinks the heap to one page");
	errno = 0;
	CHECK(resident_pages(start + PAGE, PAGE) == -1 && errno == ENOMEM, "pages above a shrunk break are unmapped");
	CHECK((char *)syscall(SYS_brk, end) == end, "brk grows the heap again");
	CHECK(start[0] == 0x5a && start[PAGE] == 0 && start[16 * PAGE - 1] == 0,
	      "the kept page keeps its contents, the regrown pages are zero");
	CHECK((char *)syscall(SYS_brk, start - 1024 * PAGE) == end, "a break below the heap's start is refused");
	CHECK((char *)syscall(SYS_brk, start) == start, "brk back to the start");
}

static void madvise_and_mincore(void)
{
	char *p = map(4 * PAGE, RW, ANON);
	unsigned char vec[4];

	CHECK(p != NULL, "mmap of 4 pages");
	if (!p)
		return;
	CHECK(resident_pages(p, 4 * PAGE) == 0, "untouched anonymous pages are not resident");
	p[0] = 1;
	p[2 * PAGE] = 3;
	CHECK(resident_pages(p, 4 * PAGE) == 2, "touched pages are resident, the others not");
	CHECK(madvise(p, 4 * PAGE, MADV_DONTNEED) == 0, "MADV_DONTNEED");
	CHECK(resident_pages(p, 4 * PAGE) == 0, "MADV_DONTNEED drops the pages");
	CHECK(p[0] == 0 && p[2 * PAGE] == 0, "MADV_DONTNEED zeroes private anonymous pages");
	p[PAGE] = 2;
	CHECK(madvise(p, 4 * PAGE, MADV_FREE) == 0, "MADV_FREE is accepted");
	CHECK(madvise(p, 4 * PAGE, MADV_WILLNEED) == 0, "MADV_WILLNEED is accepted");
	errno = 0;
	CHECK(madvise(p + 1, PAGE, MADV_DONTNEED) == -1 && errno == EINVAL, "madvise of an unaligned address: EINVAL");
	errno = 0;
	CHECK(mincore(p + 1, PAGE, vec) == -1 && errno == EINVAL, "mincore of an unaligned address fails with EINVAL");
	munmap(p, 4 * PAGE);
	errno = 0;
	CHECK(mincore(p, PAGE, vec) == -1 && errno == ENOMEM, "mincore of an unmapped range fails with ENOMEM");
	errno = 0;
	CHECK(madvise(p, PAGE, MADV_DONTNEED) == -1 && errno == ENOMEM, "madvise of an unmapped range: ENOMEM");
}

/* A "Name: N kB" line of /proc/meminfo, or -1. */
static long meminfo_kb(const char *name)
{
	char line[128];
	long kb = -1;
	size_t len = strlen(name);
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, name, len) == 0 && line[len] == ':')
			kb = strtol(line + len + 1, NULL, 10);
	fclose(f);
	return kb;
}

static void lock_sync_populate(void)
{
	char *p = map(8 * PAGE, RW, ANON);

	CHECK(p != NULL, "mmap of 8 pages");
	if (!p)
		return;
	CHECK(mlock(p, PAGE) == 0, "mlock of one page");
	CHECK(resident_pages(p, PAGE) == 1, "an mlocked page is resident");
	CHECK(munlock(p, PAGE) == 0, "munlock");
	/* 2 MiB: Linux folds each CPU's counter into /proc/meminfo only past
	 * a threshold (up to 125 pages), so at least half must show. */
	char *big = map(512 * PAGE, RW, ANON);
	long before = meminfo_kb("Mlocked");
	CHECK(big && mlock(big, 512 * PAGE) == 0, "mlock of 2 MiB");
	long locked = meminfo_kb("Mlocked");
	CHECK(before >= 0 && locked >= before + 1024, "mlock counts its pages in Mlocked");
	CHECK(big && munlock(big, 512 * PAGE) == 0, "munlock of 2 MiB");
	CHECK(meminfo_kb("Mlocked") <= locked - 1024, "munlock takes them out of Mlocked");
	if (big)
		munmap(big, 512 * PAGE);
	CHECK(msync(p, 8 * PAGE, MS_SYNC) == 0, "msync(MS_SYNC) of anonymous memory succeeds");
	munmap(p, 8 * PAGE);
	errno = 0;
	CHECK(msync(p, 8 * PAGE, MS_SYNC) == -1 && errno == ENOMEM, "msync of an unmapped range fails with ENOMEM");

	char *q = map(16 * PAGE, RW, ANON | MAP_POPULATE);
	CHECK(q != NULL, "mmap with MAP_POPULATE");
	if (!q)
		return;
	CHECK(resident_pages(q, 16 * PAGE) == 16, "MAP_POPULATE makes every page resident");
	munmap(q, 16 * PAGE);
}

static void vma_split_and_merge(void)
{
	char *p = map(3 * PAGE, RW, ANON);

	if (!p)
		return;
	memset(p, 1, 3 * PAGE);
	CHECK(vmas_in(p, p + 3 * PAGE) == 1, "a fresh 3-page mapping is one VMA");
	CHECK(mprotect(p + PAGE, PAGE, PROT_READ) == 0, "mprotect the middle page");
	CHECK(vmas_in(p, p + 3 * PAGE) == 3, "mprotect of the middle page splits the VMA in three");
	CHECK(mprotect(p + PAGE, PAGE, RW) == 0, "mprotect the middle page back");
	CHECK(vmas_in(p, p + 3 * PAGE) == 1, "mprotect back merges the three VMAs into one");
	munmap(p, 3 * PAGE);

	char *q = hole(3 * PAGE);
	if (!q)
		return;
	CHECK(mmap(q, PAGE, RW, ANON | MAP_FIXED_NOREPLACE, -1, 0) == q, "map a page");
	CHECK(mmap(q + PAGE, PAGE, RW, ANON | MAP_FIXED_NOREPLACE, -1, 0) == q + PAGE, "map the page after it");
	CHECK(vmas_in(q, q + 2 * PAGE) == 1, "adjacent anonymous mappings with the same protection merge");
	CHECK(mmap(q + 2 * PAGE, PAGE, PROT_READ, ANON | MAP_FIXED_NOREPLACE, -1, 0) == q + 2 * PAGE,
	      "map a read-only page after them");
	CHECK(vmas_in(q, q + 3 * PAGE) == 2, "a neighbour with another protection does not merge");
	munmap(q, 3 * PAGE);
}

int main(int argc, char **argv)
{
	(void)argc;
	utest_start(argv[0]);
	brk_cases();
	argument_errors();
	munmap_and_fixed();
	mprotect_read();
	mremap_cases();
	madvise_and_mincore();
	lock_sync_populate();
	vma_split_and_merge();
	return utest_done();
}
