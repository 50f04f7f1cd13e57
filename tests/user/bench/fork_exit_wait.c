/*
 * A process's life with 64 MiB of touched anonymous memory: fork (copying
 * the VMAs and 16384 PTEs, write-protecting them), the child's _exit
 * (tearing its address space down) and the parent's waitpid.
 * ROUNDS x 10 forks.
 */
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include "benchlib.h"

#define REGION ((64UL << 20) / bench_scale)
#define FORKS 10

int main(int argc, char **argv)
{
	double rounds[ROUNDS];

	bench_args(argc, argv);
	char *p = map_anon(REGION);

	touch(p, REGION, 1);
	for (int r = 0; r < bench_rounds; r++) {
		long long t0 = now_ns();
		for (int i = 0; i < FORKS; i++) {
			pid_t pid = fork();
			if (pid == 0)
				_exit(0);
			if (pid < 0) {
				perror("fork");
				return 1;
			}
			waitpid(pid, NULL, 0);
		}
		rounds[r] = (double)(now_ns() - t0) / FORKS / 1000.0;
	}
	report("user::fork_exit_wait_64m", rounds, bench_rounds, "us/op");
	return 0;
}
