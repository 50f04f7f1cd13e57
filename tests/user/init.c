/*
 * A tiny init for benchmark boots: loads the modules in /modules in name
 * order (the virtio-blk and ext2 drivers the benchmark disks need, which
 * xtask copies there from the Linux kernel's package), mounts devtmpfs on
 * /dev and proc on /proc, loads /linux_kbench.ko if the archive holds it
 * (the in-kernel benchmarks as a Linux module, tests/linux-module), runs
 * the programs in /bench whose "user::<program>" name contains the
 * kernel command line's kbench_filter (all without one) in turn (their
 * output goes to the console), prints "bench-init: done" and powers the
 * machine off. Used as /init in the initramfs that `cargo xtask bench
 * --vs-linux` boots under Linux.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/klog.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MODULE_PATH "/linux_kbench.ko"
#define DISK_MODULE_DIR "/modules"

/* finit_module(2) flag: the file is compressed (.ko.xz, .ko.zst). */
#define MODULE_INIT_COMPRESSED_FILE 4

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

/* A file in DISK_MODULE_DIR, not "." or "..". */
static int is_module(const struct dirent *e)
{
	return e->d_name[0] != '.';
}

/*
 * Loads the disk drivers, each after the ones it depends on (xtask
 * numbers the files in that order), then makes their devices reachable:
 * /dev/vda for the module's block benchmarks, /dev/vdb for the file
 * benchmark, /proc/sys/vm/drop_caches for it too.
 */
static void load_disk_drivers(void)
{
	char path[512];
	struct dirent **names;
	int n = scandir(DISK_MODULE_DIR, &names, is_module, alphasort);

	for (int i = 0; i < n; i++) {
		size_t len = strlen(names[i]->d_name);
		int compressed = len < 3 || strcmp(names[i]->d_name + len - 3, ".ko") != 0;
		int fd;

		snprintf(path, sizeof(path), "%s/%s", DISK_MODULE_DIR, names[i]->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || syscall(SYS_finit_module, fd, "",
				      compressed ? MODULE_INIT_COMPRESSED_FILE : 0) != 0)
			printf("bench-init: loading %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		free(names[i]);
	}
	if (n >= 0)
		free(names);
	if (mount("devtmpfs", "/dev", "devtmpfs", 0, NULL) != 0)
		printf("bench-init: mount devtmpfs: %s\n", strerror(errno));
	mkdir("/proc", 0555);
	if (mount("proc", "/proc", "proc", 0, NULL) != 0)
		printf("bench-init: mount proc: %s\n", strerror(errno));
	fflush(stdout);
}

/* Whether the benchmark program `name` is wanted: "user::<name>" contains
 * the filter or one of its comma-separated parts, as our kernel's harness
 * decides (kernel/src/kbench.rs). */
static int wanted(const char *name)
{
	char full[300], parts[300];
	const char *filter = getenv("kbench_filter");

	if (!filter)
		return 1;
	snprintf(full, sizeof(full), "user::%s", name);
	snprintf(parts, sizeof(parts), "%s", filter);
	for (char *part = parts, *comma;; part = comma + 1) {
		comma = strchr(part, ',');
		if (comma)
			*comma = '\0';
		if (strstr(full, part))
			return 1;
		if (!comma)
			return 0;
	}
}

int main(void)
{
	char path[512];
	struct dirent *e;
	DIR *d;

	printf("bench-init: start\n");
	fflush(stdout);
	load_disk_drivers();
	run_module();
	d = opendir("/bench");
	while (d && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' || !wanted(e->d_name))
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
