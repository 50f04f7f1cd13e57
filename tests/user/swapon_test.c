/*
 * swapon(2) and swapoff(2) as Linux defines them (mm/swapfile.c): the
 * order of their checks and the errno of each, and /proc/swaps.
 *
 *   swapon_test DEVICE
 *
 * DEVICE is a block device holding a swap header (mkswap) and not in use
 * as swap; the program turns it on with priority 7 and off again, and
 * leaves it as it found it. Run as root (with CAP_SYS_ADMIN); the
 * EPERM checks run in a child that gives its credentials up.
 *
 * Checked: flags outside SWAP_FLAGS_VALID (EINVAL, before anything
 * else), no CAP_SYS_ADMIN (EPERM for both calls), a missing path and an
 * empty one (ENOENT), a directory (EISDIR, from the read-write open), a
 * regular file without a swap header (EINVAL), swapon twice (EBUSY),
 * swapoff of something that is not an active area (EINVAL), and the
 * device's /proc/swaps line while on.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "utest.h"

#define NOT_SWAP "/swapon_test.notswap"

static long do_swapon(const char *path, long flags)
{
	return syscall(SYS_swapon, path, flags);
}

static long do_swapoff(const char *path)
{
	return syscall(SYS_swapoff, path);
}

/* The /proc/swaps line of `dev`, or NULL; `buf` holds the file. */
static const char *swaps_line(const char *dev, char *buf, size_t size)
{
	size_t len = strlen(dev);

	if (utest_read_file("/proc/swaps", buf, size) < 0)
		return NULL;
	for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		if (strncmp(line, dev, len) == 0 && (line[len] == ' ' || line[len] == '\t'))
			return line;
	}
	return NULL;
}

/* A child without CAP_SYS_ADMIN (setuid to nobody drops every capability). */
static int unprivileged_child(const char *dev)
{
	int ok = 1;

	STEP(setuid(65534) == 0);
	STEP(do_swapon(dev, 0) == -1 && errno == EPERM);
	STEP(do_swapoff(dev) == -1 && errno == EPERM);
	/* The flags are checked first, even without the capability. */
	STEP(do_swapon(dev, 0x100000) == -1 && errno == EINVAL);
	return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
	char buf[4096];
	const char *line;
	int status;
	pid_t pid;

	utest_start(argv[0]);
	if (argc != 2) {
		utest_print("usage: swapon_test DEVICE (a block device holding a swap header)\n");
		return 2;
	}
	const char *dev = argv[1];

	CHECK(do_swapon(dev, 0x100000) == -1 && errno == EINVAL, "swapon with a flag outside SWAP_FLAGS_VALID");
	pid = fork();
	if (pid == 0)
		_exit(unprivileged_child(dev));
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "without CAP_SYS_ADMIN swapon and swapoff are EPERM");
	CHECK(do_swapon("/nonexistent/swap", 0) == -1 && errno == ENOENT, "swapon of a missing path");
	CHECK(do_swapon("", 0) == -1 && errno == ENOENT, "swapon of an empty path");
	CHECK(do_swapon("/", 0) == -1 && errno == EISDIR, "swapon of a directory");
	CHECK(do_swapoff("/nonexistent/swap") == -1 && errno == ENOENT, "swapoff of a missing path");

	int fd = open(NOT_SWAP, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	static char zeros[65536];
	CHECK(fd >= 0 && write(fd, zeros, sizeof(zeros)) == (ssize_t)sizeof(zeros), "a file of zeros");
	close(fd);
	CHECK(do_swapon(NOT_SWAP, 0) == -1 && errno == EINVAL, "swapon of a file without a swap header");
	CHECK(do_swapoff(NOT_SWAP) == -1 && errno == EINVAL, "swapoff of a file that is no swap area");
	unlink(NOT_SWAP);

	CHECK(do_swapoff(dev) == -1 && errno == EINVAL, "swapoff of a device not in use as swap");
	CHECK(swaps_line(dev, buf, sizeof(buf)) == NULL, "%s is not in /proc/swaps before swapon", dev);
	CHECK(do_swapon(dev, SWAP_FLAG_PREFER | (7 << SWAP_FLAG_PRIO_SHIFT)) == 0, "swapon %s with priority 7", dev);
	line = swaps_line(dev, buf, sizeof(buf));
	CHECK(line && strstr(line, "partition\t") && strstr(line, "\t7\n"), "its /proc/swaps line: a partition of priority 7");
	static const char header[] = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n";
	CHECK(strncmp(buf, header, strlen(header)) == 0, "the /proc/swaps header");
	CHECK(do_swapon(dev, 0) == -1 && errno == EBUSY, "swapon of an active area");
	CHECK(do_swapoff(dev) == 0, "swapoff %s", dev);
	CHECK(swaps_line(dev, buf, sizeof(buf)) == NULL, "%s left /proc/swaps", dev);
	CHECK(do_swapoff(dev) == -1 && errno == EINVAL, "swapoff twice");
	return utest_done();
}
