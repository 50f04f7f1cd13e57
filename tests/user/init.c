/*
 * A tiny init for benchmark boots: runs every program in /bench in turn
 * (their output goes to the console), prints "bench-init: done" and powers
 * the machine off. Used as /init in the initramfs that
 * `cargo xtask bench --vs-linux` boots under Linux.
 */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/reboot.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
	char path[512];
	struct dirent *e;
	DIR *d = opendir("/bench");

	printf("bench-init: start\n");
	fflush(stdout);
	while (d && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/bench/%s", e->d_name);
		pid_t pid = fork();
		if (pid == 0) {
			char *argv[] = { path, NULL };
			execv(path, argv);
			perror("execv");
			_exit(127);
		}
		int status = 0;
		waitpid(pid, &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			printf("bench-init: %s failed (status %d)\n", path, status);
	}
	printf("bench-init: done\n");
	fflush(stdout);
	sync();
	reboot(RB_POWER_OFF);
	return 0;
}
