/*
 * A tree that must outlive a power-off, for xtask's persistence test
 * (xtask/src/diskcheck.rs):
 *
 *   persist write DEV DIR   mounts DEV (ext2) on DIR, writes the tree,
 *                           syncs and unmounts
 *   persist check DEV DIR   mounts DEV read-only on DIR and checks it
 *
 * The tree: directories, a small file, a 5 MiB file of the pattern
 * (byte i is i * 31 % 251, the pattern xtask's debugfs check expects)
 * that reaches the double-indirect blocks of a 4 KiB-block file system, a
 * sparse file with one page at 40 MiB, a symlink, a hard link, a renamed
 * file and an unlinked one. Runs as root on Linux too (with a loop device
 * as DEV).
 */
#include <stdint.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "utest.h"

#define BIG (5L << 20)
#define SPARSE_AT (40L << 20)
#define CHUNK 65536

static unsigned char pattern(long i)
{
	return (unsigned char)((uint64_t)i * 31 % 251);
}

static char path_buf[512];

static const char *at(const char *dir, const char *name)
{
	snprintf(path_buf, sizeof(path_buf), "%s/%s", dir, name);
	return path_buf;
}

static int write_all(const char *path, const void *data, size_t len, off_t offset)
{
	int fd = open(path, O_WRONLY | O_CREAT, 0644);

	if (fd < 0)
		return -1;
	ssize_t n = pwrite(fd, data, len, offset);
	int ok = n == (ssize_t)len && fsync(fd) == 0;
	close(fd);
	return ok ? 0 : -1;
}

static int write_big(const char *path)
{
	static unsigned char buf[CHUNK];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0)
		return -1;
	for (long off = 0; off < BIG; off += CHUNK) {
		for (long i = 0; i < CHUNK; i++)
			buf[i] = pattern(off + i);
		if (write(fd, buf, CHUNK) != CHUNK) {
			close(fd);
			return -1;
		}
	}
	return close(fd);
}

/* 0 if the file at `path` is BIG bytes of the pattern. */
static int check_big(const char *path)
{
	static unsigned char buf[CHUNK];
	int fd = open(path, O_RDONLY);
	long off = 0;
	ssize_t n;

	if (fd < 0)
		return -1;
	while ((n = read(fd, buf, CHUNK)) > 0) {
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] != pattern(off + i)) {
				close(fd);
				return -1;
			}
		off += n;
	}
	close(fd);
	return n == 0 && off == BIG ? 0 : -1;
}

static int file_is(const char *path, const char *want)
{
	char buf[128];
	ssize_t len = utest_read_file(path, buf, sizeof(buf));

	return len == (ssize_t)strlen(want) && memcmp(buf, want, len) == 0;
}

static void write_tree(const char *dir)
{
	char page[4096];

	CHECK(mkdir(at(dir, "tree"), 0755) == 0, "mkdir tree");
	CHECK(mkdir(at(dir, "tree/sub"), 0755) == 0, "mkdir tree/sub");
	CHECK(write_all(at(dir, "tree/sub/small"), "persisted\n", 10, 0) == 0, "write tree/sub/small");
	CHECK(write_big(at(dir, "tree/big")) == 0, "write the 5 MiB tree/big");
	memset(page, 'S', sizeof(page));
	CHECK(write_all(at(dir, "tree/sparse"), page, sizeof(page), SPARSE_AT) == 0, "write a page at 40 MiB");
	CHECK(symlink("sub/small", at(dir, "tree/link")) == 0, "symlink tree/link");
	{
		char from[512];

		snprintf(from, sizeof(from), "%s/tree/sub/small", dir);
		CHECK(link(from, at(dir, "tree/hard")) == 0, "link tree/hard");
	}
	CHECK(write_all(at(dir, "tree/old-name"), "renamed\n", 8, 0) == 0, "write tree/old-name");
	{
		char from[512];

		snprintf(from, sizeof(from), "%s/tree/old-name", dir);
		CHECK(rename(from, at(dir, "tree/new-name")) == 0, "rename to tree/new-name");
	}
	CHECK(write_all(at(dir, "tree/gone"), "x", 1, 0) == 0, "write tree/gone");
	CHECK(unlink(at(dir, "tree/gone")) == 0, "unlink tree/gone");
	sync();
}

static void check_tree(const char *dir)
{
	struct stat st;
	char target[64];
	char page[4096];

	CHECK(file_is(at(dir, "tree/sub/small"), "persisted\n"), "tree/sub/small holds its text");
	CHECK(check_big(at(dir, "tree/big")) == 0, "tree/big holds 5 MiB of the pattern");
	CHECK(stat(at(dir, "tree/sparse"), &st) == 0 && st.st_size == SPARSE_AT + 4096, "tree/sparse is 40 MiB + 4 KiB");
	CHECK(st.st_blocks <= 64, "tree/sparse allocates only its page (%ld blocks)", (long)st.st_blocks);
	{
		int fd = open(at(dir, "tree/sparse"), O_RDONLY);
		int ok = fd >= 0 && pread(fd, page, sizeof(page), SPARSE_AT) == (ssize_t)sizeof(page) && page[0] == 'S' &&
			 page[4095] == 'S' && pread(fd, page, 16, 4096) == 16 && page[0] == 0 && page[15] == 0;
		if (fd >= 0)
			close(fd);
		CHECK(ok, "tree/sparse: its page reads back, a hole reads zeros");
	}
	ssize_t n = readlink(at(dir, "tree/link"), target, sizeof(target));
	CHECK(n == 9 && memcmp(target, "sub/small", 9) == 0, "tree/link points at sub/small");
	CHECK(file_is(at(dir, "tree/link"), "persisted\n"), "tree/link resolves");
	CHECK(stat(at(dir, "tree/hard"), &st) == 0 && st.st_nlink == 2, "tree/hard is a second link");
	CHECK(file_is(at(dir, "tree/new-name"), "renamed\n"), "tree/new-name holds the renamed file");
	CHECK(access(at(dir, "tree/old-name"), F_OK) == -1 && errno == ENOENT, "tree/old-name is gone");
	CHECK(access(at(dir, "tree/gone"), F_OK) == -1 && errno == ENOENT, "tree/gone stays unlinked");
}

int main(int argc, char **argv)
{
	utest_start(argv[0]);
	if (argc != 4 || (strcmp(argv[1], "write") != 0 && strcmp(argv[1], "check") != 0)) {
		utest_print("usage: persist write|check DEV DIR\n");
		return 2;
	}
	int writing = strcmp(argv[1], "write") == 0;
	const char *dev = argv[2], *dir = argv[3];

	CHECK(mkdir(dir, 0755) == 0 || errno == EEXIST, "mkdir %s", dir);
	CHECK(mount(dev, dir, "ext2", writing ? 0 : MS_RDONLY, NULL) == 0, "mount %s on %s", dev, dir);
	if (writing)
		write_tree(dir);
	else
		check_tree(dir);
	CHECK(umount(dir) == 0, "umount %s", dir);
	return utest_done();
}
