/*
 * The corners where this kernel used to differ from Linux (issue 16's
 * differential run), each checked as Linux behaves, so the same binary
 * passes on Linux and here: mprotect's partial application and its order
 * of checks, MAP_FIXED_NOREPLACE without a mapping type, mremap growing
 * into a neighbour and MREMAP_DONTUNMAP's unlocking, mremap's argument
 * checks before the VMA lookup, mincore's EFAULT/ENOMEM order,
 * MADV_WIPEONFORK/KEEPONFORK, file offsets past the largest file, and
 * non-canonical addresses that once stopped the machine.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "utest.h"

#define PAGE 4096UL
#define RW (PROT_READ | PROT_WRITE)
#define ANON (MAP_PRIVATE | MAP_ANONYMOUS)

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

/*
 * A free range of `pages` pages with a free page on each side, so that
 * what the test maps there merges with nothing else: reserved, then
 * released.
 */
static char *hole(size_t pages)
{
	char *p = mmap(NULL, (pages + 2) * PAGE, PROT_NONE, ANON, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	munmap(p, (pages + 2) * PAGE);
	return p + PAGE;
}

/* The /proc/self/maps line that starts at `addr`, copied into `line`. */
static int maps_line(void *addr, char *line, size_t size)
{
	static char buf[32768];
	char want[32];

	if (utest_read_file("/proc/self/maps", buf, sizeof(buf)) < 0)
		return -1;
	snprintf(want, sizeof(want), "%lx-", (unsigned long)addr);
	for (char *l = buf; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		if (strncmp(l, want, strlen(want)) == 0) {
			size_t k = strcspn(l, "\n");
			if (k >= size)
				k = size - 1;
			memcpy(line, l, k);
			line[k] = 0;
			return 0;
		}
	}
	return -1;
}

/* The end address of the VMA starting at `addr`, or 0. */
static unsigned long vma_end(void *addr)
{
	char line[256];

	if (maps_line(addr, line, sizeof(line)) != 0)
		return 0;
	return strtoul(strchr(line, '-') + 1, NULL, 16);
}

/* The permission string of the VMA starting at `addr`. */
static int vma_perms_are(void *addr, const char *perms)
{
	char line[256];

	if (maps_line(addr, line, sizeof(line)) != 0)
		return 0;
	return strncmp(strchr(line, ' ') + 1, perms, 4) == 0;
}

static void mprotect_semantics(const char *self)
{
	/* Linux changes the VMAs before a hole, then fails. */
	char *p = hole(4);
	CHECK(mmap(p, 2 * PAGE, RW, ANON | MAP_FIXED, -1, 0) == p, "map two pages before a hole");
	CHECK(mmap(p + 3 * PAGE, PAGE, RW, ANON | MAP_FIXED, -1, 0) == p + 3 * PAGE, "and one after it");
	CHECK(mprotect(p, 4 * PAGE, PROT_READ) == -1 && errno == ENOMEM, "mprotect over the hole fails with ENOMEM");
	CHECK(vma_perms_are(p, "r--p"), "the VMA before the hole was made read-only all the same");
	CHECK(vma_perms_are(p + 3 * PAGE, "rw-p"), "the VMA after the hole was not changed");
	munmap(p, 4 * PAGE);

	/* ... and before a VMA that may not take the protection (EACCES). */
	int fd = open(self, O_RDONLY);
	CHECK(fd >= 0, "open the program's own file read-only");
	p = hole(2);
	CHECK(mmap(p, PAGE, RW, ANON | MAP_FIXED, -1, 0) == p, "an anonymous page");
	CHECK(mmap(p + PAGE, PAGE, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0) == p + PAGE,
	      "then a shared mapping of a read-only file");
	CHECK(mprotect(p, 2 * PAGE, PROT_READ) == 0, "both can be made read-only");
	CHECK(mprotect(p, 2 * PAGE, RW) == -1 && errno == EACCES, "making both writable fails with EACCES");
	CHECK(vma_perms_are(p, "rw-p"), "the anonymous page before it was made writable all the same");
	CHECK(vma_perms_are(p + PAGE, "r--s"), "the file mapping was not");
	munmap(p, 2 * PAGE);
	close(fd);

	/* The order of checks: a zero length succeeds whatever the other bits. */
	p = mmap(NULL, PAGE, RW, ANON, -1, 0);
	CHECK(syscall(SYS_mprotect, p, 0, 0x10000) == 0, "mprotect of length 0 with unknown prot bits succeeds");
	CHECK(syscall(SYS_mprotect, p, PAGE, 0x10000) == -1 && errno == EINVAL,
	      "with a length the unknown bits are EINVAL");
	CHECK(syscall(SYS_mprotect, p, 0, PROT_GROWSDOWN | PROT_GROWSUP) == -1 && errno == EINVAL,
	      "both grow bits are EINVAL even with length 0");
	CHECK(syscall(SYS_mprotect, p, -PAGE, PROT_READ) == -1 && errno == ENOMEM, "a range that wraps is ENOMEM");
	CHECK(syscall(SYS_mprotect, p, PAGE, (1UL << 32) | PROT_READ) == -1 && errno == EINVAL,
	      "prot bits above bit 31 are EINVAL");
	munmap(p, PAGE);

	/* A non-canonical start once panicked the kernel. */
	CHECK(syscall(SYS_mprotect, 0x800000000000UL, PAGE, PROT_READ | PROT_GROWSDOWN) == -1 && errno == ENOMEM,
	      "mprotect(0x800000000000, PROT_GROWSDOWN) fails with ENOMEM");
	CHECK(syscall(SYS_mprotect, 0xffff800000000000UL, PAGE, PROT_READ) == -1 && errno == ENOMEM,
	      "mprotect of a kernel address fails with ENOMEM");
}

static void mmap_semantics(const char *self)
{
	char *p = mmap(NULL, PAGE, RW, ANON, -1, 0);
	char *free_page = hole(1);

	CHECK(syscall(SYS_mmap, p, PAGE, RW, MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) == -1 && errno == EEXIST,
	      "MAP_FIXED_NOREPLACE without a mapping type over a mapping fails with EEXIST");
	CHECK(syscall(SYS_mmap, free_page, PAGE, RW, MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) == -1 &&
		      errno == EINVAL,
	      "and over a free range with EINVAL");
	munmap(p, PAGE);

	int fd = open(self, O_RDONLY);
	CHECK(syscall(SYS_mmap, NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 0x7ffffffffffff000UL) == -1 &&
		      errno == EOVERFLOW,
	      "a file offset past the largest file fails with EOVERFLOW");
	CHECK(mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_GROWSDOWN, fd, 0) == MAP_FAILED && errno == EINVAL,
	      "a grows-down file mapping is EINVAL");
	close(fd);
	CHECK(syscall(SYS_mmap, 0x800000000000UL, PAGE, RW, ANON | MAP_FIXED, -1, 0) == -1 && errno == ENOMEM,
	      "MAP_FIXED at a non-canonical address fails with ENOMEM");
	CHECK(syscall(SYS_mmap, NULL, -PAGE, RW, ANON, -1, 0) == -1 && errno == ENOMEM,
	      "a length near 2^64 fails with ENOMEM");
}

static void mremap_semantics(void)
{
	/* Growing in place into a compatible neighbour merges with it. */
	char *p = hole(4);
	CHECK(mmap(p, PAGE, RW, ANON | MAP_FIXED, -1, 0) == p, "map a page");
	CHECK(mmap(p + 2 * PAGE, 2 * PAGE, RW, ANON | MAP_FIXED, -1, 0) == p + 2 * PAGE,
	      "and two more a page after it");
	CHECK(mremap(p, PAGE, 2 * PAGE, 0) == p, "mremap grows the first in place up to the second");
	CHECK(vma_end(p) == (unsigned long)(p + 4 * PAGE), "and the two VMAs are one");
	munmap(p, 4 * PAGE);

	/* MREMAP_DONTUNMAP unlocks the whole old VMA. */
	p = mmap(NULL, 3 * PAGE, RW, ANON, -1, 0);
	CHECK(mlock(p, 3 * PAGE) == 0, "mlock three pages");
	CHECK(madvise(p, PAGE, MADV_DONTNEED) == -1 && errno == EINVAL, "MADV_DONTNEED of a locked page is EINVAL");
	char *q = mremap(p + PAGE, PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP);
	CHECK(q != MAP_FAILED, "MREMAP_DONTUNMAP moves the middle page");
	CHECK(madvise(p, PAGE, MADV_DONTNEED) == 0 && madvise(p + 2 * PAGE, PAGE, MADV_DONTNEED) == 0,
	      "the rest of the old VMA is no longer locked");
	munmap(p, 3 * PAGE);
	if (q != MAP_FAILED)
		munmap(q, PAGE);

	/* The arguments are checked before the old VMA is looked up. */
	char *gone = hole(4);
	CHECK(mremap(gone, PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, gone + 1) == MAP_FAILED && errno == EINVAL,
	      "an unaligned new address is EINVAL even when nothing is mapped");
	CHECK(mremap(gone, 2 * PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, gone + PAGE) == MAP_FAILED &&
		      errno == EINVAL,
	      "overlapping old and new ranges are EINVAL even when nothing is mapped");
	CHECK(mremap(gone, PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, gone + 2 * PAGE) == MAP_FAILED &&
		      errno == EFAULT,
	      "then an unmapped old address is EFAULT");
	p = mmap(NULL, 2 * PAGE, RW, ANON, -1, 0);
	CHECK(syscall(SYS_mremap, p, PAGE, 2 * PAGE, MREMAP_MAYMOVE | (1UL << 32), 0) == -1 && errno == EINVAL,
	      "mremap flags above bit 31 are EINVAL");
	munmap(p, 2 * PAGE);
	CHECK(syscall(SYS_mremap, 0x800000000000UL, PAGE, 2 * PAGE, MREMAP_MAYMOVE, 0) == -1 && errno == EFAULT,
	      "mremap of a non-canonical address is EFAULT");
	p = mmap(NULL, PAGE, RW, ANON, -1, 0);
	CHECK(syscall(SYS_mremap, p, PAGE, -PAGE, MREMAP_MAYMOVE, 0) == -1 && errno == EINVAL,
	      "a new length near 2^64 is EINVAL");
	munmap(p, PAGE);
}

static void mincore_semantics(void)
{
	unsigned char vec[4];
	char *gone = hole(4);
	char *p = mmap(NULL, PAGE, RW, ANON, -1, 0);

	CHECK(mincore(gone, PAGE, (unsigned char *)gone) == -1 && errno == ENOMEM,
	      "mincore of an unmapped range with an unmapped user vector is ENOMEM");
	CHECK(mincore(gone, PAGE, (unsigned char *)0xffff800000000000UL) == -1 && errno == EFAULT,
	      "with a kernel vector it is EFAULT");
	CHECK(mincore(p, PAGE, (unsigned char *)gone) == -1 && errno == EFAULT,
	      "a mapped range with an unmapped vector is EFAULT");
	CHECK(mincore(p, PAGE, vec) == 0, "a mapped range with a good vector succeeds");
	CHECK(syscall(SYS_mincore, p, -PAGE, vec) == -1 && errno == ENOMEM, "a length near 2^64 is ENOMEM");
	munmap(p, PAGE);
}

static void wipeonfork_semantics(void)
{
	char *p = mmap(NULL, PAGE, RW, ANON, -1, 0);
	char *s = mmap(NULL, PAGE, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int status;

	p[0] = 'x';
	CHECK(madvise(s, PAGE, MADV_WIPEONFORK) == -1 && errno == EINVAL, "MADV_WIPEONFORK of shared memory is EINVAL");
	CHECK(madvise(p, PAGE, MADV_WIPEONFORK) == 0, "MADV_WIPEONFORK of private memory succeeds");
	pid_t pid = fork();
	if (pid == 0)
		_exit(p[0] == 0 ? 0 : 1);
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "the child sees the page zeroed");
	CHECK(p[0] == 'x', "the parent keeps its data");
	CHECK(madvise(p, PAGE, MADV_KEEPONFORK) == 0, "MADV_KEEPONFORK undoes it");
	pid = fork();
	if (pid == 0)
		_exit(p[0] == 'x' ? 0 : 1);
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "then the child sees the data");
	munmap(p, PAGE);
	munmap(s, PAGE);
}

static void madvise_semantics(void)
{
	CHECK(syscall(SYS_madvise, 0x800000000000UL, PAGE, MADV_DONTNEED) == -1 && errno == ENOMEM,
	      "madvise of a non-canonical range is ENOMEM");
	CHECK(syscall(SYS_madvise, PAGE, -PAGE, MADV_DONTNEED) == -1 && errno == EINVAL,
	      "a length that wraps is EINVAL");
	CHECK(syscall(SYS_mlock, 0x800000000000UL, 0) == 0, "mlock of length 0 anywhere succeeds");
	CHECK(syscall(SYS_mlock, 0x800000000000UL, PAGE) == -1 && errno == ENOMEM,
	      "mlock of a non-canonical range is ENOMEM");
	CHECK(syscall(SYS_msync, 0x800000000000UL, PAGE, MS_SYNC) == -1 && errno == ENOMEM,
	      "msync of a non-canonical range is ENOMEM");
	CHECK(syscall(SYS_munmap, 0x800000000000UL, PAGE) == -1 && errno == EINVAL,
	      "munmap of a non-canonical range is EINVAL");
}

int main(int argc, char **argv)
{
	(void)argc;
	utest_start(argv[0]);
	mprotect_semantics(argv[0]);
	mmap_semantics(argv[0]);
	mremap_semantics();
	mincore_semantics();
	wipeonfork_semantics();
	madvise_semantics();
	return utest_done();
}
