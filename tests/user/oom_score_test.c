/*
 * /proc/PID/oom_score and /proc/PID/oom_score_adj as Linux has them
 * (fs/proc/base.c): the adjustment reads back, writes are parsed as
 * kstrtoint does and must be in -1000..1000 (EINVAL), oom_score is not
 * writable, -1000 reads an oom_score of 0 and a larger adjustment a
 * larger score, a child inherits the adjustment, and an unprivileged
 * writer may not go below the floor a privileged one set (EACCES).
 * Passes under Linux with CAP_SYS_RESOURCE and without (the privileged
 * checks are then skipped), and here.
 */
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include "utest.h"

static int write_adj(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

static long read_num(const char *path)
{
	char buf[64];

	if (utest_read_file(path, buf, sizeof(buf)) <= 0)
		return -99999;
	return strtol(buf, NULL, 10);
}

#define ADJ "/proc/self/oom_score_adj"
#define SCORE "/proc/self/oom_score"

int main(int argc, char **argv)
{
	char path[64], buf[64];
	int root;

	(void)argc;
	utest_start(argv[0]);
	long start = read_num(ADJ);
	CHECK(start >= -1000 && start <= 1000, "oom_score_adj reads a number in range (%ld)", start);
	CHECK(utest_read_file(ADJ, buf, sizeof(buf)) > 0 && buf[strlen(buf) - 1] == '\n', "it ends in a newline");
	CHECK(write_adj(ADJ, "500\n") == 0 && read_num(ADJ) == 500, "raising to 500 reads back");
	CHECK(write_adj(ADJ, "0x1f4") == 0 && read_num(ADJ) == 500, "hex is accepted (kstrtoint base 0)");
	CHECK(write_adj(ADJ, "1001") < 0 && errno == EINVAL, "1001 is EINVAL");
	CHECK(write_adj(ADJ, "-1001") < 0 && errno == EINVAL, "-1001 is EINVAL");
	CHECK(write_adj(ADJ, "12abc") < 0 && errno == EINVAL, "trailing garbage is EINVAL");
	CHECK(write_adj(ADJ, "") < 0 || read_num(ADJ) == 500, "an empty write changes nothing");
	CHECK(read_num(ADJ) == 500, "failed writes left 500");
	/* 0444 without a write method: open for writing is EACCES, or for
	 * root, whom the mode does not stop, succeeds and the write is
	 * EINVAL (no FMODE_CAN_WRITE). */
	int sfd = open(SCORE, O_WRONLY);
	CHECK(sfd < 0 ? errno == EACCES : write(sfd, "1", 1) < 0 && errno == EINVAL, "oom_score is read-only");
	if (sfd >= 0)
		close(sfd);
	snprintf(path, sizeof(path), "/proc/%d/oom_score_adj", getpid());
	CHECK(read_num(path) == 500, "/proc/PID/oom_score_adj is the same file");

	long high = read_num(SCORE);
	CHECK(write_adj(ADJ, "1000") == 0, "raising to 1000");
	long top = read_num(SCORE);
	CHECK(top > high && top >= 1000 && top <= 2000, "oom_score grows with the adjustment (%ld > %ld)", top, high);

	pid_t pid = fork();
	if (pid == 0)
		_exit(read_num(ADJ) == 1000 ? 0 : 1);
	int status;
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "a child inherits oom_score_adj");

	/* CAP_SYS_RESOURCE (root here; not every root in a container). */
	root = write_adj(ADJ, "-1") == 0;
	if (root) {
		CHECK(write_adj(ADJ, "-1000") == 0 && read_num(SCORE) == 0, "-1000 (root) reads oom_score 0");
		CHECK(write_adj(ADJ, "-500") == 0 && read_num(SCORE) < top, "-500 scores below 1000");
		pid = fork();
		if (pid == 0) {
			int ok = 1;
			STEP(setuid(65534) == 0);
			/* Linux makes a task that changed its ids undumpable, which
			 * gives its /proc files to root; this kernel has no such
			 * ownership (and no prctl). */
			prctl(PR_SET_DUMPABLE, 1);
			STEP(write_adj(ADJ, "-400") == 0 && read_num(ADJ) == -400);
			STEP(write_adj(ADJ, "-500") == 0);
			STEP(write_adj(ADJ, "-501") < 0 && errno == EACCES);
			STEP(read_num(ADJ) == -500);
			_exit(ok ? 0 : 1);
		}
		CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "unprivileged: may move above the floor root set, not below it (EACCES)");
		CHECK(write_adj(ADJ, "0") == 0 && read_num(ADJ) == 0, "root lowers it back to 0");
	} else {
		CHECK(errno == EACCES, "unprivileged: below the floor is EACCES");
	}
	return utest_done();
}
