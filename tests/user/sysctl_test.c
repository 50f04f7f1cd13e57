/*
 * /proc/sys files a program writes, as on Linux (run as root):
 *   - vm/drop_caches is write-only: opening it for reading is EACCES;
 *     writing 1 or 3 drops caches;
 *   - vm/dirty_ratio takes a new value (read back the same), refuses one
 *     above 100 with EINVAL, and is restored to what it was.
 */
#include <stdlib.h>

#include "utest.h"

int main(int argc, char **argv)
{
	(void)argc;
	utest_start(argv[0]);
	errno = 0;
	CHECK(open("/proc/sys/vm/drop_caches", O_RDONLY) == -1 && errno == EACCES,
	      "drop_caches cannot be read: EACCES");
	CHECK(utest_write_text("/proc/sys/vm/drop_caches", "3\n") == 0, "echo 3 > drop_caches");
	CHECK(utest_write_text("/proc/sys/vm/drop_caches", "1") == 0, "echo 1 > drop_caches");

	long ratio = utest_read_number("/proc/sys/vm/dirty_ratio");
	CHECK(ratio >= 0 && ratio <= 100, "dirty_ratio reads as a percentage (%ld)", ratio);
	CHECK(utest_write_text("/proc/sys/vm/dirty_ratio", "37\n") == 0 && utest_read_number("/proc/sys/vm/dirty_ratio") == 37,
	      "dirty_ratio takes 37 and reads it back");
	errno = 0;
	CHECK(utest_write_text("/proc/sys/vm/dirty_ratio", "101") == -1 && errno == EINVAL, "101: EINVAL");
	CHECK(utest_read_number("/proc/sys/vm/dirty_ratio") == 37, "a refused value changes nothing");
	char old[32];
	snprintf(old, sizeof(old), "%ld", ratio);
	CHECK(utest_write_text("/proc/sys/vm/dirty_ratio", old) == 0, "restored to %s", old);
	return utest_done();
}
