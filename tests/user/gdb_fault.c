/*
 * A first-touch write fault at a known address, for the GDB test
 * (cargo xtask test runs gdb against it, stopped in do_user_addr_fault):
 * one read-write page mapped at 0x50000000, then written.
 */
#include <sys/mman.h>

#include "utest.h"

#define FAULT_ADDR 0x50000000UL

int main(int argc, char **argv)
{
	(void)argc;
	utest_start(argv[0]);
	volatile char *p = mmap((void *)FAULT_ADDR, 4096, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	CHECK(p == (volatile char *)FAULT_ADDR, "a page mapped at %#lx", FAULT_ADDR);
	if (p == (volatile char *)FAULT_ADDR) {
		p[0] = 42;
		CHECK(p[0] == 42, "the write at %#lx faulted the page in", FAULT_ADDR);
	}
	return utest_done();
}
