/*
 * leak_test [N [MIB]]: N times (default 8), fork a child that touches MIB
 * MiB (default 8) of fresh anonymous memory and exits; the parent waits for
 * each. A kernel-side test compares free page counts before and after: a
 * process that exits must give back its pages, page tables and VMAs.
 */
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "utest.h"

#define PAGE 4096UL

static int touch(size_t bytes)
{
	char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return 1;
	for (size_t off = 0; off < bytes; off += PAGE)
		p[off] = 1;
	return 0;
}

int main(int argc, char **argv)
{
	long rounds = argc > 1 ? strtol(argv[1], NULL, 10) : 8;
	long mib = argc > 2 ? strtol(argv[2], NULL, 10) : 8;
	long good = 0;

	utest_start(argv[0]);
	for (long i = 0; i < rounds; i++) {
		pid_t pid = fork();
		if (pid == 0)
			_exit(touch((size_t)mib << 20));
		int status = 0;
		if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0)
			good++;
	}
	CHECK(good == rounds, "%ld of %ld children touched %ld MiB and exited 0", good, rounds, mib);
	return utest_done();
}
