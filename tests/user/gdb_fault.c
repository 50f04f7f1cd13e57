/*
 * A first-touch write fault at a known address, for the GDB test
 * (cargo xtask test runs gdb against it, stopped in do_user_addr_fault):
 * one read-write page mapped at 0x50000000, then written.
 *
 *   gdb_fault [FILE]
 *
 * With FILE (a file on ext2, whose pages are in the page cache), it
 * first maps the file's first two pages shared at 0x60000000, reads the
 * first and writes the second, so that gdb finds them both in the cache
 * (mm-pagecache) and mapped (mm-page -v 0x60001000 names the file and
 * page 1).
 */
#include <sys/mman.h>

#include "utest.h"

#define FAULT_ADDR 0x50000000UL
#define FILE_ADDR 0x60000000UL
#define PAGE 4096

static void map_file(const char *file)
{
	int fd = open(file, O_RDWR);
	CHECK(fd >= 0, "%s opens read-write", file);
	if (fd < 0)
		return;
	volatile char *f = mmap((void *)FILE_ADDR, 2 * PAGE, PROT_READ | PROT_WRITE,
				MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0);
	CHECK(f == (volatile char *)FILE_ADDR, "%s mapped shared at %#lx", file, FILE_ADDR);
	close(fd);
	if (f != (volatile char *)FILE_ADDR)
		return;
	char first = f[0];
	f[PAGE] = first;
	CHECK(f[PAGE] == first, "the file's second page written through the mapping");
}

int main(int argc, char **argv)
{
	utest_start(argv[0]);
	if (argc > 1)
		map_file(argv[1]);
	volatile char *p = mmap((void *)FAULT_ADDR, 4096, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	CHECK(p == (volatile char *)FAULT_ADDR, "a page mapped at %#lx", FAULT_ADDR);
	if (p == (volatile char *)FAULT_ADDR) {
		p[0] = 42;
		CHECK(p[0] == 42, "the write at %#lx faulted the page in", FAULT_ADDR);
	}
	return utest_done();
}
