/*
 * Files and directories as Linux defines them (fs/open.c, fs/namei.c,
 * fs/read_write.c, fs/stat.c, fs/readdir.c, fs/statfs.c, fs/sync.c):
 * every file system call and its main errors, run inside the directory
 * given as argv[1] (default: the current one), in a subdirectory it
 * makes and removes. The same binary passes on Linux (tmpfs or ext2)
 * and on this kernel (the ramfs root, tmpfs, ext2 on a loop device).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "utest.h"

/* Volatile, so the compiler cannot see the bad pointer and refuse the call. */
static void *volatile bad_ptr = (void *)0x10;
#define BAD_PTR bad_ptr

/* linux/magic.h, which musl's headers lack. */
#define TMPFS_MAGIC 0x01021994
#define RAMFS_MAGIC 0x858458f6

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#define RENAME_EXCHANGE (1 << 1)
#endif

/* struct statx of linux/stat.h (older musl lacks it), called by number. */
struct statx_ {
	uint32_t stx_mask, stx_blksize;
	uint64_t stx_attributes;
	uint32_t stx_nlink, stx_uid, stx_gid;
	uint16_t stx_mode, pad0;
	uint64_t stx_ino, stx_size, stx_blocks, stx_attributes_mask;
	struct { int64_t tv_sec; uint32_t tv_nsec; int32_t pad; } stx_atime, stx_btime, stx_ctime, stx_mtime;
	uint32_t stx_rdev_major, stx_rdev_minor, stx_dev_major, stx_dev_minor;
	uint64_t spare[14];
};
#define STATX_BASIC_STATS_ 0x7ffU

static long statx_(int dfd, const char *path, int flags, unsigned mask, struct statx_ *buf)
{
	return syscall(SYS_statx, dfd, path, flags, mask, buf);
}

static int in_memory_fs; /* tmpfs or ramfs: RENAME_EXCHANGE, O_DIRECT EINVAL */

static long renameat2_(int olddfd, const char *old, int newdfd, const char *new, unsigned flags)
{
	return syscall(SYS_renameat2, olddfd, old, newdfd, new, flags);
}

static int file_has(const char *path, const char *want)
{
	char buf[256];
	int fd = open(path, O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf));

	if (fd >= 0)
		close(fd);
	return n == (ssize_t)strlen(want) && memcmp(buf, want, n) == 0;
}

static int make_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0)
		return -1;
	int ok = write(fd, text, strlen(text)) == (ssize_t)strlen(text);
	close(fd);
	return ok ? 0 : -1;
}

static void open_create_and_flags(void)
{
	struct stat st;
	int fd;

	umask(022);
	fd = open("f", O_RDWR | O_CREAT | O_EXCL, 0666);
	CHECK(fd >= 0, "O_CREAT|O_EXCL creates");
	CHECK(fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0644 && st.st_size == 0,
	      "the mode loses the umask bits");
	close(fd);
	CHECK(open("f", O_RDWR | O_CREAT | O_EXCL, 0666) == -1 && errno == EEXIST, "O_EXCL on an existing file: EEXIST");
	CHECK(open("missing", O_RDONLY) == -1 && errno == ENOENT, "a missing file: ENOENT");
	CHECK(open("f/x", O_RDONLY) == -1 && errno == ENOTDIR, "a file as a directory: ENOTDIR");
	CHECK(open("f/", O_RDONLY) == -1 && errno == ENOTDIR, "a file with a trailing slash: ENOTDIR");
	CHECK(open("f", O_RDONLY | O_DIRECTORY) == -1 && errno == ENOTDIR, "O_DIRECTORY on a file: ENOTDIR");
	CHECK(open(".", O_WRONLY) == -1 && errno == EISDIR, "a directory opened for writing: EISDIR");
	CHECK(open("newdir/", O_RDWR | O_CREAT, 0644) == -1 && errno == EISDIR, "O_CREAT with a trailing slash: EISDIR");
	fd = open("f", O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0 && fcntl(fd, F_GETFD) == FD_CLOEXEC, "O_CLOEXEC sets FD_CLOEXEC");
	CHECK(write(fd, "x", 1) == -1 && errno == EBADF, "write to a read-only descriptor: EBADF");
	close(fd);
	if (in_memory_fs) {
		/* EINVAL before Linux 6.6, which gave tmpfs direct I/O. */
		fd = open("f", O_RDONLY | O_DIRECT);
		CHECK(fd >= 0 || errno == EINVAL, "O_DIRECT on tmpfs: EINVAL or (6.6+) an open file");
		if (fd >= 0)
			close(fd);
	}
	CHECK(open(BAD_PTR, O_RDONLY) == -1 && errno == EFAULT, "a bad path pointer: EFAULT");
	char name[300];
	memset(name, 'n', 256);
	name[256] = 0;
	CHECK(open(name, O_RDONLY | O_CREAT, 0644) == -1 && errno == ENAMETOOLONG, "a 256-byte name: ENAMETOOLONG");
	static char longpath[PATH_MAX + 8];
	for (int i = 0; i < PATH_MAX + 4; i += 2)
		memcpy(longpath + i, "./", 2);
	longpath[PATH_MAX + 4] = 0;
	CHECK(open(longpath, O_RDONLY) == -1 && errno == ENAMETOOLONG, "a path past PATH_MAX: ENAMETOOLONG");
	CHECK(creat("c", 0600) >= 0 && access("c", F_OK) == 0, "creat makes a file");
	CHECK(access("missing", F_OK) == -1 && errno == ENOENT, "access of a missing file: ENOENT");
}

static void read_write_seek(void)
{
	char buf[64] = { 0 };
	int fd = open("f", O_RDWR | O_TRUNC);

	CHECK(write(fd, "hello world", 11) == 11, "write");
	CHECK(lseek(fd, 0, SEEK_CUR) == 11, "the offset follows the write");
	CHECK(lseek(fd, 0, SEEK_SET) == 0 && read(fd, buf, 5) == 5 && memcmp(buf, "hello", 5) == 0, "read from 0");
	CHECK(lseek(fd, -5, SEEK_END) == 6 && read(fd, buf, 64) == 5 && memcmp(buf, "world", 5) == 0, "SEEK_END");
	CHECK(read(fd, buf, 64) == 0, "read at the end: 0");
	CHECK(lseek(fd, -100, SEEK_SET) == -1 && errno == EINVAL, "a negative offset: EINVAL");
	CHECK(lseek(fd, 0, 99) == -1 && errno == EINVAL, "a bad whence: EINVAL");
	CHECK(lseek(fd, 3, SEEK_DATA) == 3, "SEEK_DATA inside data");
	CHECK(lseek(fd, 3, SEEK_HOLE) == 11, "SEEK_HOLE finds the end");
	CHECK(lseek(fd, 11, SEEK_DATA) == -1 && errno == ENXIO, "SEEK_DATA at the end: ENXIO");
	CHECK(pwrite(fd, "HELLO", 5, 0) == 5 && lseek(fd, 0, SEEK_CUR) == 11, "pwrite leaves the offset");
	CHECK(pread(fd, buf, 11, 0) == 11 && memcmp(buf, "HELLO world", 11) == 0, "pread sees it");
	CHECK(pread(fd, buf, 1, -1) == -1 && errno == EINVAL, "pread at a negative offset: EINVAL");
	lseek(fd, 0, SEEK_SET);
	CHECK(read(fd, BAD_PTR, 4) == -1 && errno == EFAULT, "read into a bad buffer: EFAULT");
	CHECK(read(fd, buf, 4) == 4 && memcmp(buf, "HELL", 4) == 0, "the failed read consumed nothing");
	struct iovec iov[2] = { { "ab", 2 }, { "cde", 3 } };
	CHECK(lseek(fd, 0, SEEK_END) == 11 && writev(fd, iov, 2) == 5, "writev");
	char a[3] = { 0 }, b[4] = { 0 };
	struct iovec riov[2] = { { a, 2 }, { b, 3 } };
	CHECK(lseek(fd, 11, SEEK_SET) == 11 && readv(fd, riov, 2) == 5 && memcmp(a, "ab", 2) == 0 &&
		      memcmp(b, "cde", 3) == 0,
	      "readv scatters");
	close(fd);
	int pfd[2];
	CHECK(pipe(pfd) == 0 && pread(pfd[0], buf, 1, 0) == -1 && errno == ESPIPE, "pread on a pipe: ESPIPE");
	CHECK(fsync(pfd[0]) == -1 && errno == EINVAL, "fsync of a pipe: EINVAL");
	close(pfd[0]);
	close(pfd[1]);
}

static void append_and_truncate(void)
{
	struct stat st;
	char buf[32] = { 0 };
	int fd = open("f", O_WRONLY | O_TRUNC | O_APPEND);

	CHECK(fd >= 0 && fstat(fd, &st) == 0 && st.st_size == 0, "O_TRUNC empties");
	CHECK(write(fd, "one", 3) == 3 && lseek(fd, 0, SEEK_SET) == 0 && write(fd, "two", 3) == 3, "two appends");
	CHECK(pwrite(fd, "3", 1, 0) == 1, "pwrite with O_APPEND");
	close(fd);
	CHECK(file_has("f", "onetwo3"), "O_APPEND writes at the end, even pwrite's");
	CHECK(truncate("f", 10) == 0 && stat("f", &st) == 0 && st.st_size == 10, "truncate grows");
	fd = open("f", O_RDONLY);
	CHECK(read(fd, buf, 32) == 10 && memcmp(buf, "onetwo3\0\0\0", 10) == 0, "with zeros");
	CHECK(ftruncate(fd, 2) == -1 && errno == EINVAL, "ftruncate of a read-only descriptor: EINVAL");
	close(fd);
	fd = open("f", O_RDWR);
	CHECK(ftruncate(fd, 3) == 0 && fstat(fd, &st) == 0 && st.st_size == 3, "ftruncate shrinks");
	CHECK(ftruncate(fd, -1) == -1 && errno == EINVAL, "a negative length: EINVAL");
	CHECK(fsync(fd) == 0 && fdatasync(fd) == 0 && syncfs(fd) == 0, "fsync, fdatasync, syncfs");
	close(fd);
	sync();
	CHECK(truncate(".", 0) == -1 && errno == EISDIR, "truncate of a directory: EISDIR");
	CHECK(file_has("f", "one"), "the file holds what is left");
}

static void two_appenders(void)
{
	enum { RECORDS = 100, LEN = 32 };
	int ok = 1;

	close(open("log", O_WRONLY | O_CREAT | O_TRUNC, 0644));
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open("log", O_WRONLY | O_APPEND);
		char rec[LEN];
		for (int i = 0; i < RECORDS; i++) {
			memset(rec, 'c', LEN);
			rec[LEN - 1] = '\n';
			if (write(fd, rec, LEN) != LEN)
				_exit(1);
		}
		_exit(0);
	}
	int fd = open("log", O_WRONLY | O_APPEND);
	char rec[LEN];
	for (int i = 0; i < RECORDS; i++) {
		memset(rec, 'p', LEN);
		rec[LEN - 1] = '\n';
		STEP(write(fd, rec, LEN) == LEN);
	}
	close(fd);
	int status;
	STEP(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	struct stat st;
	STEP(stat("log", &st) == 0 && st.st_size == 2 * RECORDS * LEN);
	fd = open("log", O_RDONLY);
	int counts[2] = { 0, 0 };
	for (int i = 0; i < 2 * RECORDS; i++) {
		STEP(read(fd, rec, LEN) == LEN);
		int whole = rec[LEN - 1] == '\n';
		for (int j = 1; j < LEN - 1; j++)
			whole &= rec[j] == rec[0];
		STEP(whole && (rec[0] == 'c' || rec[0] == 'p'));
		counts[rec[0] == 'p']++;
	}
	close(fd);
	CHECK(ok && counts[0] == RECORDS && counts[1] == RECORDS,
	      "two processes appending: every record whole, none lost");
	unlink("log");
}

static void directories(void)
{
	struct stat st;

	CHECK(mkdir("d", 0755) == 0 && stat("d", &st) == 0 && S_ISDIR(st.st_mode), "mkdir");
	CHECK(mkdir("d", 0755) == -1 && errno == EEXIST, "mkdir of an existing name: EEXIST");
	CHECK(mkdir("d/e/", 0755) == 0, "mkdir with a trailing slash");
	CHECK(mkdir("missing/x", 0755) == -1 && errno == ENOENT, "mkdir below a missing directory: ENOENT");
	CHECK(mkdir(".", 0755) == -1 && errno == EEXIST, "mkdir of .: EEXIST");
	CHECK(rmdir("d") == -1 && errno == ENOTEMPTY, "rmdir of a non-empty directory: ENOTEMPTY");
	CHECK(rmdir("f") == -1 && errno == ENOTDIR, "rmdir of a file: ENOTDIR");
	CHECK(rmdir("d/e/.") == -1 && errno == EINVAL, "rmdir of .: EINVAL");
	CHECK(unlink("d") == -1 && errno == EISDIR, "unlink of a directory: EISDIR");
	CHECK(unlink("missing") == -1 && errno == ENOENT, "unlink of a missing name: ENOENT");
	int dfd = open("d", O_RDONLY | O_DIRECTORY);
	CHECK(dfd >= 0 && mkdirat(dfd, "sub", 0700) == 0 && fstatat(dfd, "sub", &st, 0) == 0 && S_ISDIR(st.st_mode),
	      "mkdirat and fstatat relative to a directory descriptor");
	int ffd = openat(dfd, "g", O_WRONLY | O_CREAT, 0644);
	CHECK(ffd >= 0 && write(ffd, "G", 1) == 1, "openat creates relative to the descriptor");
	CHECK(openat(ffd, "x", O_RDONLY) == -1 && errno == ENOTDIR, "openat relative to a file: ENOTDIR");
	close(ffd);
	CHECK(unlinkat(dfd, "sub", AT_REMOVEDIR) == 0 && fstatat(dfd, "sub", &st, 0) == -1 && errno == ENOENT,
	      "unlinkat AT_REMOVEDIR");
	CHECK(unlinkat(dfd, "g", 0x8000) == -1 && errno == EINVAL, "unlinkat with a bad flag: EINVAL");
	CHECK(unlinkat(dfd, "g", 0) == 0, "unlinkat of a file");
	close(dfd);
}

static void dir_entries(void)
{
	char buf[1024];
	int fd = open("d", O_RDONLY | O_DIRECTORY);
	int seen_dot = 0, seen_dotdot = 0, seen_e = 0, n, total = 0;

	while ((n = syscall(SYS_getdents64, fd, buf, sizeof(buf))) > 0) {
		for (int off = 0; off < n;) {
			struct dirent64 *d = (struct dirent64 *)(buf + off);
			seen_dot += strcmp(d->d_name, ".") == 0;
			seen_dotdot += strcmp(d->d_name, "..") == 0;
			seen_e += strcmp(d->d_name, "e") == 0 && d->d_type == DT_DIR;
			total++;
			off += d->d_reclen;
		}
	}
	CHECK(n == 0 && seen_dot == 1 && seen_dotdot == 1 && seen_e == 1 && total == 3,
	      "getdents64 lists ., .. and the subdirectory once");
	lseek(fd, 0, SEEK_SET);
	CHECK(syscall(SYS_getdents64, fd, buf, 8) == -1 && errno == EINVAL, "a buffer too small for one entry: EINVAL");
	CHECK(syscall(SYS_getdents64, fd, BAD_PTR, sizeof(buf)) == -1 && errno == EFAULT, "a bad buffer: EFAULT");
	close(fd);
	fd = open("f", O_RDONLY);
	CHECK(syscall(SYS_getdents64, fd, buf, sizeof(buf)) == -1 && errno == ENOTDIR, "getdents64 of a file: ENOTDIR");
	close(fd);
}

static void renames(void)
{
	struct stat st;

	make_file("r1", "one");
	make_file("r2", "two");
	CHECK(rename("r1", "r3") == 0 && access("r1", F_OK) == -1 && file_has("r3", "one"), "rename moves");
	CHECK(rename("r3", "r2") == 0 && file_has("r2", "one") && access("r3", F_OK) == -1, "rename replaces a file");
	CHECK(rename("r2", "d/r2") == 0 && file_has("d/r2", "one"), "rename into a directory");
	CHECK(rename("d/r2", "r2") == 0, "and back");
	CHECK(rename("missing", "x") == -1 && errno == ENOENT, "rename of a missing name: ENOENT");
	CHECK(mkdir("full", 0755) == 0 && make_file("full/x", "x") == 0 && mkdir("empty", 0755) == 0, "two dirs");
	CHECK(rename("empty", "full") == -1 && errno == ENOTEMPTY, "over a non-empty directory: ENOTEMPTY");
	CHECK(rename("empty", "r2") == -1 && errno == ENOTDIR, "a directory over a file: ENOTDIR");
	CHECK(rename("r2", "empty") == -1 && errno == EISDIR, "a file over a directory: EISDIR");
	CHECK(rename("full", "full/sub") == -1 && errno == EINVAL, "a directory into itself: EINVAL");
	CHECK(rename("empty", "d/moved") == 0 && stat("d/moved", &st) == 0 && S_ISDIR(st.st_mode) &&
		      stat("d/moved/..", &st) == 0,
	      "a directory moves, its .. follows");
	CHECK(rename("d/moved", "full2") == 0 && rmdir("full2") == 0, "moved back and removed");
	make_file("r4", "four");
	CHECK(renameat2_(AT_FDCWD, "r4", AT_FDCWD, "r2", RENAME_NOREPLACE) == -1 && errno == EEXIST,
	      "RENAME_NOREPLACE over a name: EEXIST");
	CHECK(renameat2_(AT_FDCWD, "r4", AT_FDCWD, "r2", RENAME_NOREPLACE | RENAME_EXCHANGE) == -1 && errno == EINVAL,
	      "NOREPLACE with EXCHANGE: EINVAL");
	CHECK(renameat2_(AT_FDCWD, "r4", AT_FDCWD, "r2", 0x80) == -1 && errno == EINVAL, "an unknown flag: EINVAL");
	long r = renameat2_(AT_FDCWD, "r4", AT_FDCWD, "r2", RENAME_EXCHANGE);
	CHECK((r == 0 && file_has("r2", "four") && file_has("r4", "one")) || (!in_memory_fs && r == -1 && errno == EINVAL),
	      "RENAME_EXCHANGE swaps (or EINVAL where the fs lacks it)");
	CHECK(rename(".", "x") == -1 && errno == EBUSY, "rename of .: EBUSY");
	unlink("r2");
	unlink("r4");
	unlink("full/x");
	rmdir("full");
}

static void links(void)
{
	struct stat st;
	char buf[64];

	make_file("l1", "linked");
	CHECK(link("l1", "l2") == 0 && stat("l1", &st) == 0 && st.st_nlink == 2, "link: two names");
	CHECK(link("l1", "l2") == -1 && errno == EEXIST, "link onto an existing name: EEXIST");
	CHECK(link("d", "dl") == -1 && errno == EPERM, "link to a directory: EPERM");
	CHECK(link("missing", "x") == -1 && errno == ENOENT, "link of a missing file: ENOENT");
	CHECK(unlink("l1") == 0 && file_has("l2", "linked") && stat("l2", &st) == 0 && st.st_nlink == 1,
	      "unlink of one name leaves the other");
	CHECK(symlink("l2", "s1") == 0, "symlink");
	ssize_t n = readlink("s1", buf, sizeof(buf));
	CHECK(n == 2 && memcmp(buf, "l2", 2) == 0, "readlink gives the target");
	CHECK(readlink("s1", buf, 1) == 1 && buf[0] == 'l', "readlink truncates to the buffer");
	CHECK(readlink("l2", buf, sizeof(buf)) == -1 && errno == EINVAL, "readlink of a file: EINVAL");
	CHECK(syscall(SYS_readlinkat, AT_FDCWD, "s1", buf, 0) == -1 && errno == EINVAL, "readlink with size 0: EINVAL");
	CHECK(lstat("s1", &st) == 0 && S_ISLNK(st.st_mode) && st.st_size == 2, "lstat sees the link");
	CHECK(stat("s1", &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 6, "stat follows it");
	CHECK(file_has("s1", "linked"), "open follows it");
	CHECK(open("s1", O_RDONLY | O_NOFOLLOW) == -1 && errno == ELOOP, "O_NOFOLLOW on a link: ELOOP");
	CHECK(fstatat(AT_FDCWD, "s1", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode), "AT_SYMLINK_NOFOLLOW");
	CHECK(symlink("l2", "s1") == -1 && errno == EEXIST, "symlink onto a name: EEXIST");
	CHECK(symlink("loop2", "loop1") == 0 && symlink("loop1", "loop2") == 0, "a loop of links");
	CHECK(open("loop1", O_RDONLY) == -1 && errno == ELOOP, "following a loop: ELOOP");
	CHECK(symlink("nowhere", "dangling") == 0 && stat("dangling", &st) == -1 && errno == ENOENT,
	      "a dangling link: ENOENT");
	CHECK(symlink("d", "sd") == 0 && stat("sd/e", &st) == 0 && S_ISDIR(st.st_mode), "a link inside a path");
	CHECK(stat("sd/", &st) == 0 && S_ISDIR(st.st_mode), "a trailing slash follows a link to a directory");
	CHECK(symlink("../f", "d/up") == 0 && file_has("d/up", "one"), "a relative target starts at the link's directory");
	/* 41 links in a chain: one more than MAXSYMLINKS. */
	char a[16], b[16];
	for (int i = 0; i < 41; i++) {
		snprintf(a, sizeof(a), "c%d", i);
		snprintf(b, sizeof(b), "c%d", i + 1);
		symlink(b, a);
	}
	make_file("c41", "end");
	CHECK(open("c1", O_RDONLY) >= 0, "40 links are followed");
	CHECK(open("c0", O_RDONLY) == -1 && errno == ELOOP, "41 links: ELOOP");
	for (int i = 0; i <= 41; i++) {
		snprintf(a, sizeof(a), "c%d", i);
		unlink(a);
	}
	unlink("loop1");
	unlink("loop2");
	unlink("dangling");
	unlink("sd");
	unlink("d/up");
	unlink("s1");
	{
		int fd = open("l2", O_RDWR);
		CHECK(unlink("l2") == 0 && read(fd, buf, 6) == 6 && memcmp(buf, "linked", 6) == 0,
		      "an unlinked file stays readable while open");
		CHECK(pwrite(fd, "orphan", 6, 0) == 6 && pread(fd, buf, 6, 0) == 6 && memcmp(buf, "orphan", 6) == 0,
		      "and writable");
		close(fd);
	}
}

static void stats(void)
{
	struct stat st, st2;
	struct statx_ sx;
	struct statfs sfs;
	int fd = open("f", O_RDONLY);

	CHECK(fstat(fd, &st) == 0 && stat("f", &st2) == 0 && st.st_ino == st2.st_ino && st.st_dev == st2.st_dev,
	      "fstat and stat agree");
	CHECK(fstatat(fd, "", &st2, AT_EMPTY_PATH) == 0 && st2.st_ino == st.st_ino, "AT_EMPTY_PATH stats the descriptor");
	CHECK(fstatat(AT_FDCWD, "", &st2, 0) == -1 && errno == ENOENT, "an empty path: ENOENT");
	CHECK(syscall(SYS_newfstatat, AT_FDCWD, "f", &st2, 0x4) == -1 && errno == EINVAL, "a bad flag: EINVAL");
	CHECK(syscall(SYS_stat, "f", BAD_PTR) == -1 && errno == EFAULT, "a bad buffer: EFAULT");
	CHECK(statx_(AT_FDCWD, "f", 0, STATX_BASIC_STATS_, &sx) == 0 &&
		      (sx.stx_mask & STATX_BASIC_STATS_) == STATX_BASIC_STATS_ &&
		      sx.stx_size == (uint64_t)st.st_size && sx.stx_ino == st.st_ino && S_ISREG(sx.stx_mode),
	      "statx gives the basic fields");
	CHECK(statx_(AT_FDCWD, "f", 0x6000, STATX_BASIC_STATS_, &sx) == -1 && errno == EINVAL,
	      "statx: both sync flags: EINVAL");
	CHECK(statfs(".", &sfs) == 0 && sfs.f_bsize > 0 && sfs.f_namelen == 255, "statfs");
	CHECK(fstatfs(fd, &sfs) == 0 && sfs.f_bsize > 0, "fstatfs");
	CHECK(statfs("missing", &sfs) == -1 && errno == ENOENT, "statfs of a missing path: ENOENT");
	close(fd);
}

static void working_directory(const char *base)
{
	char cwd[PATH_MAX], want[PATH_MAX + 8];
	int fd = open(".", O_RDONLY | O_DIRECTORY);

	CHECK(chdir("d") == 0 && getcwd(cwd, sizeof(cwd)) == cwd, "chdir and getcwd");
	snprintf(want, sizeof(want), "%s/d", base);
	CHECK(strcmp(cwd, want) == 0, "getcwd names the directory (%s)", cwd);
	CHECK(access("e", F_OK) == 0 && access("../f", F_OK) == 0, "relative paths start there, .. goes up");
	CHECK(syscall(SYS_getcwd, cwd, 2) == -1 && errno == ERANGE, "getcwd into a small buffer: ERANGE");
	CHECK(chdir("../f") == -1 && errno == ENOTDIR, "chdir to a file: ENOTDIR");
	CHECK(chdir("missing") == -1 && errno == ENOENT, "chdir to a missing directory: ENOENT");
	CHECK(fchdir(fd) == 0 && getcwd(cwd, sizeof(cwd)) && strcmp(cwd, base) == 0, "fchdir goes back");
	close(fd);
	CHECK(chdir("/") == 0 && getcwd(cwd, sizeof(cwd)) && strcmp(cwd, "/") == 0 && stat("..", &(struct stat){ 0 }) == 0,
	      "the root is its own parent");
	CHECK(chdir(base) == 0, "chdir back");
}

static void mount_errors(void)
{
	CHECK(umount2(".", 0x100) == -1 && errno == EINVAL, "umount2 with an unknown flag: EINVAL");
}

static void sparse_file(void)
{
	struct stat st;
	char buf[16];
	int fd = open("sparse", O_RDWR | O_CREAT | O_TRUNC, 0644);
	off_t far = 5 << 20;

	CHECK(pwrite(fd, "end", 3, far) == 3 && fstat(fd, &st) == 0 && st.st_size == far + 3, "a write far out");
	CHECK(pread(fd, buf, 16, 4096) == 16 && memcmp(buf, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16) == 0,
	      "the hole reads as zeros");
	CHECK(pread(fd, buf, 16, far) == 3 && memcmp(buf, "end", 3) == 0, "the data is there");
	close(fd);
	unlink("sparse");
}

int main(int argc, char **argv)
{
	char base[PATH_MAX];
	struct statfs sfs;

	utest_start(argv[0]);
	if (argc > 1 && chdir(argv[1]) != 0) {
		utest_print("cannot chdir to %s\n", argv[1]);
		return 2;
	}
	rmdir("file_test.d");
	if (mkdir("file_test.d", 0755) != 0 || chdir("file_test.d") != 0 || !getcwd(base, sizeof(base))) {
		utest_print("cannot make the work directory\n");
		return 2;
	}
	if (statfs(".", &sfs) == 0)
		in_memory_fs = sfs.f_type == TMPFS_MAGIC || sfs.f_type == RAMFS_MAGIC;
	if (argc > 2 && strcmp(argv[2], "append") == 0) {
		/* Only the two-appenders check (a test of its own in the kernel's suite). */
		two_appenders();
		CHECK(chdir("..") == 0 && rmdir("file_test.d") == 0, "the work directory is removed empty");
		return utest_done();
	}
	open_create_and_flags();
	read_write_seek();
	append_and_truncate();
	two_appenders();
	directories();
	dir_entries();
	renames();
	links();
	stats();
	working_directory(base);
	mount_errors();
	sparse_file();
	unlink("f");
	unlink("c");
	rmdir("d/e");
	rmdir("d");
	CHECK(chdir("..") == 0 && rmdir("file_test.d") == 0, "the work directory is removed empty");
	return utest_done();
}
