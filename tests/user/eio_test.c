/*
 * A disk that fails to read one block of a file: the program sees EIO from
 * read(2) on that file and nothing worse, and the rest of the disk serves
 * it as before (Linux: the block layer completes the bio with an error,
 * filemap_read returns -EIO).
 *
 *   eio_test BAD GOOD TEXT
 *
 * BAD is a file of more than one block whose first data block the disk
 * fails (the kernel's test attaches a prepared disk with QEMU's blkdebug
 * failing that block; on Linux, the same QEMU disk, or a dm-error target
 * over the block); GOOD is another file on the same disk, holding exactly
 * TEXT. Checks:
 *   - BAD opens and stats (its inode is readable);
 *   - read() at offset 0 fails with EIO, and again with pread(): the
 *     failure is not remembered as data;
 *   - a read past the failing block succeeds;
 *   - BAD closes without error;
 *   - GOOD reads back as TEXT.
 */
#include <sys/stat.h>

#include "utest.h"

/* Larger than any block size ext2 uses, so a read covers a whole block. */
#define CHUNK 65536

static char buf[CHUNK];

static void failing_file(const char *path)
{
	struct stat st;
	int fd = open(path, O_RDONLY);

	CHECK(fd >= 0, "open %s: the inode is readable", path);
	if (fd < 0)
		return;
	CHECK(fstat(fd, &st) == 0 && st.st_size > CHUNK, "fstat: a file of more than %d bytes", CHUNK);
	errno = 0;
	CHECK(read(fd, buf, 4096) == -1 && errno == EIO, "read of the failing block: EIO");
	errno = 0;
	CHECK(pread(fd, buf, 4096, 0) == -1 && errno == EIO, "pread of it again: EIO again");
	CHECK(pread(fd, buf, 4096, CHUNK) == 4096, "a read past the failing block succeeds");
	CHECK(close(fd) == 0, "close");
}

static void good_file(const char *path, const char *text)
{
	size_t len = strlen(text);
	ssize_t n = -1;
	int fd = open(path, O_RDONLY);

	CHECK(fd >= 0, "open %s", path);
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf));
		close(fd);
	}
	CHECK(n == (ssize_t)len && memcmp(buf, text, len) == 0, "%s reads back whole (%zd bytes)", path, n);
}

int main(int argc, char **argv)
{
	utest_start(argv[0]);
	if (argc != 4) {
		utest_print("usage: eio_test BAD GOOD TEXT\n");
		return 2;
	}
	failing_file(argv[1]);
	good_file(argv[2], argv[3]);
	return utest_done();
}
