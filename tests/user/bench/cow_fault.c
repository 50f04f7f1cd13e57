/*
 * Copy-on-write: cost of the first write to a page shared with the parent
 * after fork (write-protect fault, page copy, PTE update). The parent
 * touches 64 MiB and forks; the child writes every page, timing the loop,
 * and sends its ns/page to the parent through a pipe. ROUNDS x 16384
 * faults.
 */
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include "benchlib.h"

#define REGION ((64UL << 20) / bench_scale)

int main(int argc, char **argv)
{
	double rounds[ROUNDS];

	bench_args(argc, argv);
	char *p = map_anon(REGION);

	touch(p, REGION, 1);
	for (int r = 0; r < bench_rounds; r++) {
		int fds[2];
		if (pipe(fds) != 0) {
			perror("pipe");
			return 1;
		}
		pid_t pid = fork();
		if (pid == 0) {
			long long t0 = now_ns();
			touch(p, REGION, 2);
			double ns = (double)(now_ns() - t0) / (REGION / PAGE);
			_exit(write(fds[1], &ns, sizeof(ns)) == sizeof(ns) ? 0 : 1);
		}
		if (pid < 0 || read(fds[0], &rounds[r], sizeof(rounds[r])) != sizeof(rounds[r])) {
			fprintf(stderr, "cow_fault: no figure from the child\n");
			return 1;
		}
		waitpid(pid, NULL, 0);
		close(fds[0]);
		close(fds[1]);
	}
	report("user::cow_fault", rounds, bench_rounds, "ns/page");
	return 0;
}
