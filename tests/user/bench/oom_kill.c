/*
 * Time from a memory hog's start to its death by the OOM killer: a child
 * maps and touches 1 MiB after 1 MiB of anonymous memory until it is
 * killed; the parent measures from fork to waitpid's SIGKILL status. The
 * figure grows with the machine's memory (run it with --mem 128) and
 * includes every fault of the hog. 3 rounds (one smoke round touches
 * 4 MiB and exits without an OOM kill).
 */
#include <signal.h>
#include <sys/wait.h>
#include "benchlib.h"

#define MIB (1UL << 20)
#define OOM_ROUNDS 3

int main(int argc, char **argv)
{
	double rounds[OOM_ROUNDS];
	int n = 0;

	bench_args(argc, argv);
	int smoke = bench_scale > 1;
	for (int r = 0; r < (smoke ? 1 : OOM_ROUNDS); r++) {
		long long t0 = now_ns();
		pid_t pid = fork();

		if (pid < 0)
			die("fork");
		if (pid == 0) {
			for (unsigned long mib = 0; !smoke || mib < 4; mib++)
				touch(map_anon(MIB), MIB, 1);
			_exit(0);
		}
		int status;
		if (waitpid(pid, &status, 0) != pid)
			die("waitpid");
		if (!smoke && !(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)) {
			fprintf(stderr, "oom_kill: the hog ended with status %#x, not SIGKILL\n", status);
			return 1;
		}
		rounds[n++] = (double)(now_ns() - t0) / 1e6;
	}
	report("user::oom_kill_hog_ms", rounds, n, "ms");
	return 0;
}
