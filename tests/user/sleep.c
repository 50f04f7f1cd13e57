/*
 * A process to look at: maps and touches MIB MiB of anonymous memory, then
 * sleeps SECONDS (default 60 s, 4 MiB). The mm console runs it in the
 * background (`run sleep 30 8 &`) so that `ps` and `maps $!` have a live
 * address space to show.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

int main(int argc, char **argv)
{
	long seconds = argc > 1 ? atol(argv[1]) : 60;
	long mib = argc > 2 ? atol(argv[2]) : 4;
	size_t len = (size_t)mib << 20;
	struct timespec ts = { .tv_sec = seconds, .tv_nsec = 0 };

	if (seconds < 0 || mib < 0) {
		fprintf(stderr, "usage: sleep [SECONDS [MIB]]\n");
		return 2;
	}
	if (len) {
		char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) {
			perror("mmap");
			return 1;
		}
		memset(p, 0x5a, len);
	}
	while (nanosleep(&ts, &ts) != 0)
		;
	return 0;
}
