/*
 * Memory hogs for the OOM killer's tests (tests/src/oom.rs). Modes:
 *
 *   oom_hog hog [ADJ]          sets its oom_score_adj to ADJ (default
 *                              unchanged), then maps and touches 1 MiB
 *                              after 1 MiB until it is killed; exits 3 if it
 *                              ever reaches 64 GiB.
 *   oom_hog hold MIB SECS [ADJ] sets its oom_score_adj, touches MIB MiB,
 *                              prints "holding", sleeps SECS seconds and
 *                              exits 0.
 *   oom_hog fill MIB [ADJ]     sets its oom_score_adj, touches MIB MiB,
 *                              exits 0 ("filled").
 *   oom_hog forkbomb N MIB     forks up to N children, each touching MIB
 *                              MiB and sleeping, until fork fails or N are
 *                              running; then kills the survivors, waits
 *                              for all, and reports how many the OOM
 *                              killer took (SIGKILL before its own kill):
 *                              "PASS oom_hog forkbomb N started, K oom-killed".
 *
 * Under memory exhaustion it is meant to be killed; only the test that
 * runs it knows what to expect. Do not run "hog" on a machine you care
 * about: on Linux it ends the same way, through Linux's OOM killer.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MIB (1UL << 20)
#define PAGE 4096UL

static void say(const char *s)
{
	ssize_t unused = write(1, s, strlen(s));
	(void)unused;
}

static void set_adj(const char *adj)
{
	int fd = open("/proc/self/oom_score_adj", O_WRONLY);

	if (fd < 0 || write(fd, adj, strlen(adj)) != (ssize_t)strlen(adj)) {
		perror("oom_score_adj");
		exit(2);
	}
	close(fd);
}

/* Maps and touches `mib` MiB; exits 2 if the map fails. */
static void touch_mib(unsigned long mib)
{
	for (unsigned long i = 0; i < mib; i++) {
		char *p = mmap(NULL, MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED) {
			perror("mmap");
			exit(2);
		}
		for (unsigned long off = 0; off < MIB; off += PAGE)
			p[off] = 1;
	}
}

static void sleep_s(long secs)
{
	struct timespec ts = { secs, 0 };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static int forkbomb(int n, unsigned long mib)
{
	pid_t *pids = calloc(n, sizeof(pid_t));
	int started = 0, killed = 0;

	if (!pids)
		return 2;
	while (started < n) {
		pid_t pid = fork();

		if (pid < 0)
			break;
		if (pid == 0) {
			touch_mib(mib);
			sleep_s(60);
			_exit(0);
		}
		pids[started++] = pid;
	}
	/* Give the last children time to touch their memory. */
	sleep_s(1);
	for (int i = 0; i < started; i++) {
		int status;

		if (waitpid(pids[i], &status, WNOHANG) == pids[i]) {
			killed += WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
			pids[i] = 0;
		}
	}
	for (int i = 0; i < started; i++)
		if (pids[i] > 0)
			kill(pids[i], SIGKILL);
	for (int i = 0; i < started; i++)
		if (pids[i] > 0)
			waitpid(pids[i], NULL, 0);
	printf("PASS oom_hog forkbomb %d started, %d oom-killed\n", started, killed);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "hog") == 0) {
		if (argc >= 3)
			set_adj(argv[2]);
		touch_mib(64UL << 10);
		return 3;
	}
	if (argc >= 4 && strcmp(argv[1], "hold") == 0) {
		if (argc >= 5)
			set_adj(argv[4]);
		touch_mib(strtoul(argv[2], NULL, 0));
		say("holding\n");
		sleep_s(strtol(argv[3], NULL, 0));
		return 0;
	}
	if (argc >= 3 && strcmp(argv[1], "fill") == 0) {
		if (argc >= 4)
			set_adj(argv[3]);
		touch_mib(strtoul(argv[2], NULL, 0));
		say("filled\n");
		return 0;
	}
	if (argc >= 4 && strcmp(argv[1], "forkbomb") == 0)
		return forkbomb(atoi(argv[2]), strtoul(argv[3], NULL, 0));
	fprintf(stderr, "usage: oom_hog hog [ADJ] | hold MIB SECS [ADJ] | fill MIB [ADJ] | forkbomb N MIB\n");
	return 2;
}
