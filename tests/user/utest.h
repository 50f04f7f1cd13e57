/*
 * Shared by the user-space test programs (the .c files in tests/user): one line per
 * check, in TAP style, and a verdict line that harnesses look for:
 *
 *     ok 3 - munmap of a hole succeeds
 *     not ok 4 - mprotect over a hole fails: errno == ENOMEM (EINVAL)
 *     FAIL mmap_test (1 of 4 failed)
 *
 * A failed check names its condition and the errno it saw. Output goes
 * straight to fd 1 with write(2), never through stdio buffers, so a fork
 * cannot print a line twice and a crash loses nothing already printed.
 * The programs are static musl binaries that pass on Linux itself; the
 * same binaries run under our kernel from the initramfs.
 */
#ifndef UTEST_H
#define UTEST_H

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *utest_prog = "?";
static int utest_count;
static int utest_failed;

/* Writes the whole of a formatted line to fd 1. */
static void utest_print(const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	for (int off = 0; off < n;) {
		ssize_t w = write(1, line + off, n - off);
		if (w <= 0)
			return;
		off += w;
	}
}

static const char *utest_errno_name(int e)
{
	switch (e) {
	case 0: return "no errno";
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case ESRCH: return "ESRCH";
	case EINTR: return "EINTR";
	case EIO: return "EIO";
	case E2BIG: return "E2BIG";
	case ENOEXEC: return "ENOEXEC";
	case EBADF: return "EBADF";
	case ECHILD: return "ECHILD";
	case EAGAIN: return "EAGAIN";
	case ENOMEM: return "ENOMEM";
	case EACCES: return "EACCES";
	case EFAULT: return "EFAULT";
	case EBUSY: return "EBUSY";
	case EEXIST: return "EEXIST";
	case ENODEV: return "ENODEV";
	case ENOTDIR: return "ENOTDIR";
	case EISDIR: return "EISDIR";
	case EINVAL: return "EINVAL";
	case ENOSPC: return "ENOSPC";
	case ESPIPE: return "ESPIPE";
	case EPIPE: return "EPIPE";
	case ERANGE: return "ERANGE";
	case ENOSYS: return "ENOSYS";
	case EOVERFLOW: return "EOVERFLOW";
	case ENOTEMPTY: return "ENOTEMPTY";
	case ELOOP: return "ELOOP";
	case ENAMETOOLONG: return "ENAMETOOLONG";
	case EROFS: return "EROFS";
	case EXDEV: return "EXDEV";
	case EMLINK: return "EMLINK";
	case ENXIO: return "ENXIO";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	default: return "errno ?";
	}
}

/* Call first: names the program in the verdict line. */
static inline void utest_start(const char *argv0)
{
	const char *slash = strrchr(argv0, '/');

	utest_prog = slash ? slash + 1 : argv0;
}

static void utest_report(int ok, int err, const char *cond, const char *fmt, ...)
{
	char desc[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(desc, sizeof(desc), fmt, ap);
	va_end(ap);
	utest_count++;
	if (ok) {
		utest_print("ok %d - %s\n", utest_count, desc);
	} else {
		utest_failed++;
		utest_print("not ok %d - %s: %s (%s)\n", utest_count, desc, cond, utest_errno_name(err));
	}
}

/*
 * CHECK(cond, fmt, ...): one numbered check. errno is read right after
 * `cond` is evaluated and left as it was, so a check can test a call's
 * result and then its errno.
 */
#define CHECK(cond, ...)                                              \
	do {                                                          \
		int utest_ok_ = !!(cond);                             \
		int utest_errno_ = errno;                             \
		utest_report(utest_ok_, utest_errno_, #cond, __VA_ARGS__); \
		errno = utest_errno_;                                 \
	} while (0)

/*
 * Reads the small text file at `path` (a /proc file) into `buf`,
 * NUL-terminated; returns its length, or -1 if it cannot be opened.
 */
static inline ssize_t utest_read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY);
	ssize_t len = 0, n;

	if (fd < 0)
		return -1;
	while (len < (ssize_t)size - 1 && (n = read(fd, buf + len, size - 1 - len)) > 0)
		len += n;
	close(fd);
	buf[len] = 0;
	return len;
}

/*
 * STEP(cond): one step of a sequence run in a child (whose verdict the
 * parent reports as one check): on failure a TAP comment names the line,
 * the condition and errno, and the local `ok` becomes 0.
 */
#define STEP(cond)                                                                          \
	do {                                                                                \
		if (!(cond)) {                                                              \
			utest_print("# child step at line %d failed: %s (%s)\n", __LINE__, #cond, \
				    utest_errno_name(errno));                               \
			ok = 0;                                                             \
		}                                                                           \
	} while (0)

/* The verdict line; returns the exit status (0 if every check passed). */
static inline int utest_done(void)
{
	if (utest_failed == 0 && utest_count > 0) {
		utest_print("PASS %s\n", utest_prog);
		return 0;
	}
	utest_print("FAIL %s (%d of %d failed)\n", utest_prog, utest_failed, utest_count);
	return 1;
}

/* Writes `text` to the file `path` (a sysctl) in one write(2): 0, or -1
 * with errno set. */
static inline int utest_write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, text, strlen(text));
	int saved = errno;
	close(fd);
	errno = saved;
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* The number the file `path` (a sysctl) holds, or -1. */
static inline long utest_read_number(const char *path)
{
	char buf[32] = { 0 };
	if (utest_read_file(path, buf, sizeof(buf) - 1) <= 0)
		return -1;
	return strtol(buf, NULL, 10);
}

#endif
