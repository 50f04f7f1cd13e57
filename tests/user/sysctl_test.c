/*
 * /proc/sys files a program writes, as on Linux (run as root):
 *   - vm/drop_caches is write-only: opening it for reading is EACCES;
 *     writing 1 or 3 drops caches;
 *   - vm/dirty_ratio takes a new value (read back the same), refuses one
 *     above 100 with EINVAL, and is restored to what it was.
 */
#include <stdlib.h>

#include "utest.h"

static int write_text(const char *path, const char *text)
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

static long read_number(const char *path)
{
	char buf[32] = { 0 };
	if (utest_read_file(path, buf, sizeof(buf) - 1) <= 0)
		return -1;
	return strtol(buf, NULL, 10);
}

int main(int argc, char **argv)
{
	(void)argc;
	utest_start(argv[0]);
	errno = 0;
	CHECK(open("/proc/sys/vm/drop_caches", O_RDONLY) == -1 && errno == EACCES,
	      "drop_caches cannot be read: EACCES");
	CHECK(write_text("/proc/sys/vm/drop_caches", "3\n") == 0, "echo 3 > drop_caches");
	CHECK(write_text("/proc/sys/vm/drop_caches", "1") == 0, "echo 1 > drop_caches");

	long ratio = read_number("/proc/sys/vm/dirty_ratio");
	CHECK(ratio >= 0 && ratio <= 100, "dirty_ratio reads as a percentage (%ld)", ratio);
	CHECK(write_text("/proc/sys/vm/dirty_ratio", "37\n") == 0 && read_number("/proc/sys/vm/dirty_ratio") == 37,
	      "dirty_ratio takes 37 and reads it back");
	errno = 0;
	CHECK(write_text("/proc/sys/vm/dirty_ratio", "101") == -1 && errno == EINVAL, "101: EINVAL");
	CHECK(read_number("/proc/sys/vm/dirty_ratio") == 37, "a refused value changes nothing");
	char old[32];
	snprintf(old, sizeof(old), "%ld", ratio);
	CHECK(write_text("/proc/sys/vm/dirty_ratio", old) == 0, "restored to %s", old);
	return utest_done();
}
