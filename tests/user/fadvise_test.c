/*
 * Readahead advice, as Linux takes it:
 *
 *   fadvise_test DIR
 *
 * In DIR (a file system with a page cache: ext2 here, ext4 on Linux; on
 * tmpfs the cache checks would fail, since Linux ignores the advice
 * there), checks
 *   - posix_fadvise's errors: EBADF (closed, O_PATH), ESPIPE (a pipe),
 *     EINVAL (unknown advice, negative length), and every advice on a
 *     file, any range, succeeding;
 *   - readahead(2)'s: EBADF (closed, write-only), EINVAL (a pipe, a
 *     directory);
 *   - what the page cache holds, seen through mincore(2) of a mapping no
 *     one touches (which reports the cache for pages without ptes):
 *     POSIX_FADV_DONTNEED of a clean file empties it, WILLNEED and
 *     readahead(2) fill exactly their range, DONTNEED keeps partial pages
 *     at the range's ends and pages another mapping maps, and dirty data
 *     survives it;
 *   - POSIX_FADV_RANDOM: a one-page read caches that page alone, where
 *     NORMAL reads ahead (Linux's initial window of 4 pages); the mode
 *     belongs to the open file, not the inode;
 *   - MADV_RANDOM: a fault reads its page alone; MADV_SEQUENTIAL and no
 *     advice read ahead around it; MADV_WILLNEED reads the range;
 *   - O_DIRECT opens or is EINVAL (ours refuses it on cached files).
 *
 * Linux starts WILLNEED reads without waiting for them, so the cache
 * checks after it poll mincore for up to 2 seconds.
 */
#define _GNU_SOURCE
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "utest.h"

#define PAGE 4096
#define PAGES 64

static const char *name = "fadvise";

/* The file: PAGES pages, page i filled with the byte i + 1, written back. */
static int make_file(void)
{
	char page[PAGE];
	int fd = open(name, O_RDWR | O_CREAT | O_TRUNC, 0644);

	if (fd < 0)
		return -1;
	for (int i = 0; i < PAGES; i++) {
		memset(page, i + 1, PAGE);
		if (write(fd, page, PAGE) != PAGE) {
			close(fd);
			return -1;
		}
	}
	if (fsync(fd) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static long sys_readahead(int fd, long offset, long count)
{
	return syscall(SYS_readahead, fd, offset, count);
}

/* A read-only shared mapping of the whole file that nothing touches. */
static unsigned char *probe;

/* The cache state of pages [first, first + n): 1 if all are resident, 0
 * if none is, -1 if mixed or mincore failed. */
static int cached(int first, int n)
{
	unsigned char vec[PAGES];
	int in = 0;

	if (mincore(probe, PAGES * PAGE, vec) != 0)
		return -1;
	for (int i = first; i < first + n; i++)
		in += vec[i] & 1;
	return in == n ? 1 : in == 0 ? 0 : -1;
}

/* Waits up to 2 s for pages [first, first + n) to be resident. */
static int becomes_cached(int first, int n)
{
	for (int i = 0; i < 200; i++) {
		if (cached(first, n) == 1)
			return 1;
		usleep(10000);
	}
	return 0;
}

/* Empties the file's cache: written back first, so that every page is
 * clean (Linux's DONTNEED only starts write-back and keeps the pages
 * under it); the probe maps nothing. */
static int drop(int fd)
{
	return fsync(fd) == 0 && posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0 && cached(0, PAGES) == 0;
}

static void errors(int fd)
{
	int p[2];

	CHECK(posix_fadvise(-1, 0, 0, POSIX_FADV_NORMAL) == EBADF, "fadvise of a bad descriptor: EBADF");
	int path_fd = open(name, O_PATH);
	CHECK(path_fd >= 0 && posix_fadvise(path_fd, 0, 0, POSIX_FADV_WILLNEED) == EBADF, "fadvise of O_PATH: EBADF");
	close(path_fd);
	CHECK(pipe(p) == 0, "pipe");
	CHECK(posix_fadvise(p[0], 0, 0, POSIX_FADV_NORMAL) == ESPIPE, "fadvise of a pipe: ESPIPE");
	CHECK(posix_fadvise(p[0], 0, -1, 77) == ESPIPE, "ESPIPE comes before EINVAL");
	CHECK(posix_fadvise(fd, 0, 0, 77) == EINVAL, "unknown advice: EINVAL");
	CHECK(posix_fadvise(fd, 0, -1, POSIX_FADV_NORMAL) == EINVAL, "a negative length: EINVAL");
	for (int advice = POSIX_FADV_NORMAL; advice <= POSIX_FADV_NOREUSE; advice++)
		CHECK(posix_fadvise(fd, 0, 0, advice) == 0, "advice %d on the file", advice);
	CHECK(posix_fadvise(fd, 1 << 30, PAGE, POSIX_FADV_WILLNEED) == 0, "WILLNEED past the end: nothing, no error");
	CHECK(posix_fadvise(fd, -PAGE, PAGE, POSIX_FADV_DONTNEED) == 0, "a negative offset is not checked");
	CHECK(posix_fadvise(fd, 0, 0, POSIX_FADV_NORMAL) == 0, "back to NORMAL");

	errno = 0;
	CHECK(sys_readahead(-1, 0, PAGE) == -1 && errno == EBADF, "readahead of a bad descriptor: EBADF");
	int wr = open(name, O_WRONLY);
	errno = 0;
	CHECK(wr >= 0 && sys_readahead(wr, 0, PAGE) == -1 && errno == EBADF, "readahead of a write-only file: EBADF");
	close(wr);
	errno = 0;
	CHECK(sys_readahead(p[0], 0, PAGE) == -1 && errno == EINVAL, "readahead of a pipe: EINVAL");
	int dir = open(".", O_RDONLY | O_DIRECTORY);
	errno = 0;
	CHECK(dir >= 0 && sys_readahead(dir, 0, PAGE) == -1 && errno == EINVAL, "readahead of a directory: EINVAL");
	close(dir);
	close(p[0]);
	close(p[1]);

	int direct = open(name, O_RDONLY | O_DIRECT);
	CHECK(direct >= 0 || errno == EINVAL, "O_DIRECT opens, or is EINVAL");
	if (direct >= 0)
		close(direct);
}

static void willneed_and_dontneed(int fd)
{
	char buf[PAGE];

	CHECK(drop(fd), "DONTNEED of the clean file empties its cache");
	CHECK(posix_fadvise(fd, 8 * PAGE, 16 * PAGE, POSIX_FADV_WILLNEED) == 0, "WILLNEED of pages 8..24");
	CHECK(becomes_cached(8, 16), "they become resident");
	CHECK(cached(0, 8) == 0 && cached(24, PAGES - 24) == 0, "and nothing else");
	CHECK(sys_readahead(fd, 30 * PAGE + 1, 2 * PAGE) == 0, "readahead(2) of bytes 30P+1..32P+1");
	CHECK(becomes_cached(30, 3), "brings pages 30..33 in, partial ones included");

	/* Bytes 8P+100 .. 13P+99: whole pages 9..12 go, 8 and 13 stay. */
	CHECK(posix_fadvise(fd, 8 * PAGE + 100, 5 * PAGE, POSIX_FADV_DONTNEED) == 0, "DONTNEED of a partial range");
	CHECK(cached(9, 4) == 0, "the whole pages inside it leave the cache");
	CHECK(cached(8, 1) == 1 && cached(13, 1) == 1, "the partial pages at its ends stay");

	CHECK(drop(fd), "DONTNEED of the whole file again");
	char *m = mmap(NULL, PAGES * PAGE, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(m != MAP_FAILED, "a second mapping");
	if (m != MAP_FAILED) {
		CHECK(posix_fadvise(fd, 20 * PAGE, PAGE, POSIX_FADV_WILLNEED) == 0 &&
		      posix_fadvise(fd, 40 * PAGE, PAGE, POSIX_FADV_WILLNEED) == 0 && becomes_cached(20, 1) &&
		      becomes_cached(40, 1), "pages 20 and 40 read in");
		CHECK(m[20 * PAGE] == 21, "the second mapping maps page 20");
		CHECK(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0, "DONTNEED of everything");
		CHECK(cached(20, 1) == 1, "the mapped page stays");
		CHECK(cached(40, 1) == 0, "the unmapped one goes");
		munmap(m, PAGES * PAGE);
	}

	memset(buf, 'd', PAGE);
	CHECK(pwrite(fd, buf, PAGE, 50 * PAGE) == PAGE, "a write dirties page 50");
	CHECK(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0, "DONTNEED with a dirty page");
	memset(buf, 0, PAGE);
	CHECK(pread(fd, buf, PAGE, 50 * PAGE) == PAGE && buf[0] == 'd' && buf[PAGE - 1] == 'd',
	      "the written data survives it");
}

static void random_mode_reads_no_more(int fd)
{
	char c;

	CHECK(drop(fd), "an empty cache");
	CHECK(pread(fd, &c, 1, 0) == 1 && c == 1, "NORMAL: read page 0");
	CHECK(cached(1, 3) == 1, "it read ahead pages 1..4");

	CHECK(drop(fd), "an empty cache");
	CHECK(posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM) == 0, "POSIX_FADV_RANDOM");
	CHECK(pread(fd, &c, 1, 0) == 1 && c == 1, "RANDOM: read page 0");
	CHECK(cached(0, 1) == 1 && cached(1, 1) == 0, "it read page 0 alone");
	CHECK(pread(fd, &c, 1, 10 * PAGE) == 1 && c == 11 && cached(11, 1) == 0, "and page 10 alone");

	CHECK(drop(fd), "an empty cache");
	int other = open(name, O_RDONLY);
	CHECK(other >= 0 && pread(other, &c, 1, 0) == 1 && c == 1, "another open file reads page 0");
	CHECK(cached(1, 3) == 1, "with readahead: the advice was the first open file's");
	close(other);
	CHECK(posix_fadvise(fd, 0, 0, POSIX_FADV_NORMAL) == 0, "back to NORMAL");
}

static void madvise_steers_faults(int fd)
{
	char *m = mmap(NULL, PAGES * PAGE, PROT_READ, MAP_PRIVATE, fd, 0);

	CHECK(m != MAP_FAILED, "a private mapping");
	if (m == MAP_FAILED)
		return;
	CHECK(drop(fd), "an empty cache");
	CHECK(madvise(m, PAGES * PAGE, MADV_RANDOM) == 0, "MADV_RANDOM");
	CHECK(m[0] == 1, "a fault on page 0");
	CHECK(cached(1, 1) == 0, "read page 0 alone");

	CHECK(madvise(m, PAGES * PAGE, MADV_NORMAL) == 0, "MADV_NORMAL");
	CHECK(m[32 * PAGE] == 33, "a fault on page 32");
	CHECK(cached(24, 16) == 1, "read around it");

	munmap(m, PAGES * PAGE);
	m = mmap(NULL, PAGES * PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
	CHECK(m != MAP_FAILED, "a new mapping");
	if (m == MAP_FAILED)
		return;
	CHECK(drop(fd), "an empty cache");
	CHECK(madvise(m, PAGES * PAGE, MADV_SEQUENTIAL) == 0, "MADV_SEQUENTIAL");
	CHECK(m[0] == 1, "a fault on page 0");
	CHECK(cached(1, 15) == 1, "read ahead from it");

	CHECK(madvise(m + 48 * PAGE, 8 * PAGE, MADV_WILLNEED) == 0, "MADV_WILLNEED of pages 48..56");
	CHECK(becomes_cached(48, 8), "they become resident");
	CHECK(madvise(m, PAGES * PAGE, 99) == -1 && errno == EINVAL, "unknown advice: EINVAL");
	munmap(m, PAGES * PAGE);
}

int main(int argc, char **argv)
{
	utest_start("fadvise_test");
	if (argc < 2 || chdir(argv[1]) != 0) {
		utest_print("usage: fadvise_test DIR\n");
		return 2;
	}
	int fd = make_file();
	CHECK(fd >= 0, "creating the test file");
	if (fd < 0)
		return utest_done();
	probe = mmap(NULL, PAGES * PAGE, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(probe != MAP_FAILED, "the probe mapping");
	if (probe == MAP_FAILED)
		return utest_done();
	errors(fd);
	willneed_and_dontneed(fd);
	random_mode_reads_no_more(fd);
	madvise_steers_faults(fd);
	munmap(probe, PAGES * PAGE);
	close(fd);
	unlink(name);
	return utest_done();
}
