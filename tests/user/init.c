/*
 * A tiny init for benchmark boots: loads /linux_kbench.ko if the archive
 * holds it (the in-kernel benchmarks as a Linux module,
 * tests/linux-module), runs every program in /bench in turn (their output
 * goes to the console), prints "bench-init: done" and powers the machine
 * off. Used as /init in the initramfs that `cargo xtask bench --vs-linux`
 * boots under Linux.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/klog.h>
#include <sys/reboot.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MODULE_PATH "/linux_kbench.ko"

/* syslog(2) actions and console log levels (Linux include/linux/syslog.h,
 * include/linux/kern_levels.h). */
#define SYSLOG_ACTION_CONSOLE_LEVEL 8
#define LOGLEVEL_INFO 6
#define LOGLEVEL_WARNING 4 /* what `quiet` sets */

/*
 * Loads the benchmark module with finit_module(2), passing the kernel
 * command line's kbench_filter= (which Linux hands to init in its
 * environment) as the module's filter. Its pr_info result lines reach the
 * console because the console log level is raised while it runs.
 */
static void run_module(void)
{
	char params[256];
	const char *filter = getenv("kbench_filter");
	int fd = open(MODULE_PATH, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	snprintf(params, sizeof(params), "filter=%s", filter ? filter : "");
	klogctl(SYSLOG_ACTION_CONSOLE_LEVEL, NULL, LOGLEVEL_INFO + 1);
	if (syscall(SYS_finit_module, fd, params, 0) != 0)
		printf("bench-init: finit_module %s: %s\n", MODULE_PATH, strerror(errno));
	klogctl(SYSLOG_ACTION_CONSOLE_LEVEL, NULL, LOGLEVEL_WARNING);
	close(fd);
	fflush(stdout);
}

int main(void)
{
	char path[512];
	struct dirent *e;
	DIR *d;

	printf("bench-init: start\n");
	fflush(stdout);
	run_module();
	d = opendir("/bench");
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
