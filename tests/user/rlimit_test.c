/*
 * Resource limits, credentials, /proc/sys and the system call number as
 * Linux defines them: getrlimit/setrlimit/prlimit64 (kernel/sys.c
 * do_prlimit), RLIMIT_NOFILE in open, dup, dup2, fcntl(F_DUPFD) and pipe
 * (fs/file.c alloc_fd, ksys_dup3, f_dupfd), the set*id rules and their
 * effect on capabilities (kernel/sys.c, security/commoncap.c), limits
 * kept across fork and exec, the /proc/sys text, and the syscall number
 * taken from the low 32 bits of RAX (arch/x86/entry/common.c).
 *
 * Every system call is made with syscall(2), since musl implements
 * getrlimit and setrlimit with prlimit64.
 *
 * Arguments, after the program name:
 *   init-rlimits     also check Linux's boot limits (INIT_RLIMITS) exactly;
 *                    on Linux, run under `prlimit` with those values
 *   default-sysctls  also check Linux's default /proc/sys/vm values exactly
 *   exec-check CORE UID   (internal) the exec'd image checks what it kept
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "utest.h"

#define INF RLIM_INFINITY
/* <linux/capability.h>, which musl does not ship. */
#define CAP_IPC_LOCK 14
#define CAP_SYS_RESOURCE 24
#define MIB (1024UL * 1024)

struct rl {
	uint64_t cur, max;
};

static long get_rl(int res, struct rl *r)
{
	return syscall(SYS_getrlimit, res, r);
}

static long set_rl(int res, uint64_t cur, uint64_t max)
{
	struct rl r = { cur, max };

	return syscall(SYS_setrlimit, res, &r);
}

static long prl(pid_t pid, int res, const struct rl *new, struct rl *old)
{
	return syscall(SYS_prlimit64, pid, res, new, old);
}

/* The number in /proc/sys/PATH, or -1; `exact` says the text was digits and one newline. */
static long long sysctl(const char *path, int *exact)
{
	char full[128], buf[64];

	snprintf(full, sizeof(full), "/proc/sys/%s", path);
	if (utest_read_file(full, buf, sizeof(buf)) <= 0)
		return -1;
	char *end;
	long long v = strtoll(buf, &end, 10);
	*exact = end != buf && end[0] == '\n' && end[1] == 0;
	return v;
}

/* Whether this process has capability `cap` in its effective set (/proc/self/status CapEff). */
static int has_cap(int cap)
{
	static char buf[4096];

	if (utest_read_file("/proc/self/status", buf, sizeof(buf)) <= 0)
		return -1;
	char *eff = strstr(buf, "CapEff:");
	if (!eff)
		return -1;
	return (strtoull(eff + 7, NULL, 16) >> cap) & 1;
}

/* Runs `fn` in a child; returns 1 if it exited 0. */
static int in_child(int (*fn)(void))
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(fn() ? 0 : 1);
	int status;
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return 0;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void check_shape(void)
{
	struct rl r;
	int ordered = 1;

	for (int res = 0; res < RLIM_NLIMITS; res++)
		if (get_rl(res, &r) != 0 || r.cur > r.max)
			ordered = 0;
	CHECK(ordered, "getrlimit of every resource succeeds with cur <= max");
	errno = 0;
	CHECK(get_rl(RLIM_NLIMITS, &r) == -1 && errno == EINVAL, "getrlimit(RLIM_NLIMITS) is EINVAL");
	errno = 0;
	CHECK(get_rl(RLIMIT_NOFILE, (struct rl *)8) == -1 && errno == EFAULT, "getrlimit to a bad pointer is EFAULT");
	errno = 0;
	CHECK(syscall(SYS_getrlimit, 0x100000000L | RLIMIT_STACK, &r) == 0,
	      "getrlimit's resource is an unsigned int: upper bits are ignored");
}

static void check_init_rlimits(void)
{
	struct rl r[RLIM_NLIMITS];

	for (int i = 0; i < RLIM_NLIMITS; i++)
		get_rl(i, &r[i]);
	CHECK(r[RLIMIT_STACK].cur == 8 * MIB && r[RLIMIT_STACK].max == INF, "RLIMIT_STACK is 8 MiB / unlimited");
	CHECK(r[RLIMIT_NOFILE].cur == 1024 && r[RLIMIT_NOFILE].max == 4096, "RLIMIT_NOFILE is 1024 / 4096");
	CHECK(r[RLIMIT_MEMLOCK].cur == 8 * MIB && r[RLIMIT_MEMLOCK].max == 8 * MIB, "RLIMIT_MEMLOCK is 8 MiB / 8 MiB");
	CHECK(r[RLIMIT_CORE].cur == 0 && r[RLIMIT_CORE].max == INF, "RLIMIT_CORE is 0 / unlimited");
	CHECK(r[RLIMIT_AS].cur == INF && r[RLIMIT_AS].max == INF, "RLIMIT_AS is unlimited");
	CHECK(r[RLIMIT_DATA].cur == INF && r[RLIMIT_DATA].max == INF, "RLIMIT_DATA is unlimited");
	CHECK(r[RLIMIT_MSGQUEUE].cur == 819200 && r[RLIMIT_MSGQUEUE].max == 819200, "RLIMIT_MSGQUEUE is 819200");
	CHECK(r[RLIMIT_NICE].max == 0 && r[RLIMIT_RTPRIO].max == 0, "RLIMIT_NICE and RLIMIT_RTPRIO are 0");
	CHECK(r[RLIMIT_NPROC].cur == r[RLIMIT_NPROC].max && r[RLIMIT_NPROC].cur >= 10,
	      "RLIMIT_NPROC is max_threads / 2 (%llu)", (unsigned long long)r[RLIMIT_NPROC].cur);
	CHECK(r[RLIMIT_SIGPENDING].cur == r[RLIMIT_NPROC].cur && r[RLIMIT_SIGPENDING].max == r[RLIMIT_NPROC].max,
	      "RLIMIT_SIGPENDING equals RLIMIT_NPROC");
	int exact;
	CHECK(sysctl("kernel/threads-max", &exact) / 2 == (long long)r[RLIMIT_NPROC].cur,
	      "RLIMIT_NPROC is half of /proc/sys/kernel/threads-max");
}

static void check_setrlimit(void)
{
	struct rl saved, r;
	int exact;

	get_rl(RLIMIT_CORE, &saved);
	errno = 0;
	CHECK(set_rl(RLIMIT_CORE, 2, 1) == -1 && errno == EINVAL, "setrlimit with cur > max is EINVAL");
	errno = 0;
	CHECK(set_rl(RLIM_NLIMITS, 0, 0) == -1 && errno == EINVAL, "setrlimit(RLIM_NLIMITS) is EINVAL");
	errno = 0;
	CHECK(syscall(SYS_setrlimit, RLIMIT_CORE, (void *)8) == -1 && errno == EFAULT,
	      "setrlimit from a bad pointer is EFAULT");
	long long nr_open = sysctl("fs/nr_open", &exact);
	CHECK(nr_open > 0 && exact, "/proc/sys/fs/nr_open reads as a number (%lld)", nr_open);
	errno = 0;
	CHECK(set_rl(RLIMIT_NOFILE, 64, nr_open + 1) == -1 && errno == EPERM,
	      "RLIMIT_NOFILE above nr_open is EPERM, even for root");
	CHECK(set_rl(RLIMIT_CORE, 4096, 8192) == 0 && get_rl(RLIMIT_CORE, &r) == 0 && r.cur == 4096 && r.max == 8192,
	      "setrlimit lowers a limit and getrlimit sees it");
	errno = 0;
	if (has_cap(CAP_SYS_RESOURCE) == 1)
		CHECK(set_rl(RLIMIT_CORE, 8192, INF) == 0 && get_rl(RLIMIT_CORE, &r) == 0 && r.max == INF,
		      "with CAP_SYS_RESOURCE a hard limit can be raised");
	else
		CHECK(set_rl(RLIMIT_CORE, 8192, INF) == -1 && errno == EPERM,
		      "without CAP_SYS_RESOURCE (this host withholds it) raising a hard limit is EPERM");
	set_rl(RLIMIT_CORE, saved.cur, saved.max);
}

static void check_prlimit(void)
{
	struct rl saved, new = { 100, 200 }, old, r;

	get_rl(RLIMIT_CORE, &saved);
	CHECK(prl(0, RLIMIT_CORE, &new, &old) == 0 && old.cur == saved.cur && old.max == saved.max,
	      "prlimit64(0) returns the old limit");
	CHECK(get_rl(RLIMIT_CORE, &r) == 0 && r.cur == 100 && r.max == 200, "and sets the new one");
	CHECK(prl(getpid(), RLIMIT_CORE, NULL, &old) == 0 && old.cur == 100, "prlimit64 of its own pid reads it");
	struct rl newer = { 150, 200 };
	errno = 0;
	CHECK(prl(0, RLIMIT_CORE, &newer, (struct rl *)8) == -1 && errno == EFAULT,
	      "prlimit64 with a bad old pointer is EFAULT");
	CHECK(get_rl(RLIMIT_CORE, &r) == 0 && r.cur == 150, "but the new limit was set first");
	errno = 0;
	CHECK(prl(0, RLIMIT_CORE, (struct rl *)8, NULL) == -1 && errno == EFAULT,
	      "prlimit64 from a bad new pointer is EFAULT");
	errno = 0;
	CHECK(prl(0, RLIM_NLIMITS, NULL, &old) == -1 && errno == EINVAL, "prlimit64 of RLIM_NLIMITS is EINVAL");
	errno = 0;
	CHECK(prl(0, RLIMIT_CORE, &(struct rl){ 300, 200 }, NULL) == -1 && errno == EINVAL,
	      "prlimit64 with cur > max is EINVAL");

	/* Another process: a child waiting on a pipe. */
	int go[2], back[2];
	if (pipe(go) != 0 || pipe(back) != 0) {
		CHECK(0, "pipes for the prlimit64 child");
		return;
	}
	pid_t pid = fork();
	if (pid == 0) {
		char c;
		read(go[0], &c, 1);
		struct rl mine;
		get_rl(RLIMIT_CORE, &mine);
		write(back[1], &mine, sizeof(mine));
		_exit(0);
	}
	CHECK(prl(pid, RLIMIT_CORE, NULL, &old) == 0 && old.cur == 150 && old.max == 200,
	      "prlimit64 reads a child's limit (inherited at fork)");
	CHECK(prl(pid, RLIMIT_CORE, &(struct rl){ 7, 77 }, NULL) == 0, "prlimit64 sets a child's limit");
	write(go[1], "x", 1);
	struct rl seen = { 0, 0 };
	read(back[0], &seen, sizeof(seen));
	CHECK(seen.cur == 7 && seen.max == 77, "the child sees what prlimit64 set");
	CHECK(get_rl(RLIMIT_CORE, &r) == 0 && r.cur == 150, "the parent's own limit is unchanged");
	waitpid(pid, NULL, 0);
	errno = 0;
	CHECK(prl(pid, RLIMIT_CORE, NULL, &old) == -1 && errno == ESRCH, "prlimit64 of a reaped pid is ESRCH");
	close(go[0]);
	close(go[1]);
	close(back[0]);
	close(back[1]);
	set_rl(RLIMIT_CORE, saved.cur, saved.max);
}

/* The lowest free descriptor. */
static int lowest_free(void)
{
	int fd = dup(0);

	if (fd >= 0)
		close(fd);
	return fd;
}

static void check_nofile(void)
{
	struct rl saved;
	get_rl(RLIMIT_NOFILE, &saved);
	int base = lowest_free();
	int limit = base + 3;

	CHECK(set_rl(RLIMIT_NOFILE, limit, saved.max) == 0, "RLIMIT_NOFILE lowered to %d", limit);
	int fds[3], got = 0;
	for (int i = 0; i < 3; i++)
		fds[i] = open("/proc/self/status", O_RDONLY);
	for (int i = 0; i < 3; i++)
		got += fds[i] >= 0 && fds[i] < limit;
	CHECK(got == 3, "open fills the descriptors below the limit");
	errno = 0;
	CHECK(open("/proc/self/status", O_RDONLY) == -1 && errno == EMFILE, "then open is EMFILE");
	errno = 0;
	CHECK(open("/no/such/file", O_RDONLY) == -1 && errno == EMFILE, "EMFILE comes before the path lookup");
	errno = 0;
	CHECK(dup(0) == -1 && errno == EMFILE, "dup is EMFILE");
	int p[2];
	errno = 0;
	CHECK(pipe(p) == -1 && errno == EMFILE, "pipe is EMFILE");
	errno = 0;
	CHECK(fcntl(0, F_DUPFD, limit) == -1 && errno == EINVAL, "F_DUPFD at the limit is EINVAL");
	errno = 0;
	CHECK(fcntl(0, F_DUPFD, base) == -1 && errno == EMFILE, "F_DUPFD below it with nothing free is EMFILE");
	errno = 0;
	CHECK(dup2(0, limit) == -1 && errno == EBADF, "dup2 to the limit is EBADF");
	errno = 0;
	CHECK(dup2(-5, limit) == -1 && errno == EBADF, "dup2 of a bad fd to the limit is EBADF");
	CHECK(dup2(0, limit - 1) == limit - 1, "dup2 below the limit replaces a descriptor");
	close(fds[0]);
	CHECK(fcntl(0, F_DUPFD, base) == fds[0], "F_DUPFD takes a freed descriptor");
	CHECK(set_rl(RLIMIT_NOFILE, base, saved.max) == 0, "RLIMIT_NOFILE lowered below open descriptors");
	char c;
	CHECK(read(fds[1], &c, 1) == 1, "descriptors above the limit stay usable");
	errno = 0;
	CHECK(dup(0) == -1 && errno == EMFILE, "but no new one is given");
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	close(limit - 1);
	CHECK(set_rl(RLIMIT_NOFILE, saved.cur, saved.max) == 0, "RLIMIT_NOFILE restored");
	int fd = open("/proc/self/status", O_RDONLY);
	CHECK(fd >= 0, "open works again");
	close(fd);
}

static void check_sysctls(int defaults)
{
	static const char *const files[] = { "vm/mmap_min_addr", "vm/overcommit_memory", "vm/overcommit_ratio",
					     "vm/max_map_count", "vm/min_free_kbytes", "fs/nr_open" };
	int exact;

	for (unsigned i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		long long v = sysctl(files[i], &exact);
		CHECK(v >= 0 && exact, "/proc/sys/%s reads as one number and a newline (%lld)", files[i], v);
	}
	CHECK(sysctl("vm/min_free_kbytes", &exact) > 0, "min_free_kbytes is positive");
	long long om = sysctl("vm/overcommit_memory", &exact);
	CHECK(om >= 0 && om <= 2, "overcommit_memory is 0, 1 or 2");
	if (!defaults)
		return;
	CHECK(sysctl("vm/mmap_min_addr", &exact) == 65536, "mmap_min_addr is 65536");
	CHECK(sysctl("vm/overcommit_memory", &exact) == 0, "overcommit_memory is 0");
	CHECK(sysctl("vm/overcommit_ratio", &exact) == 50, "overcommit_ratio is 50");
	CHECK(sysctl("vm/max_map_count", &exact) == 65530, "max_map_count is 65530");
	CHECK(sysctl("fs/nr_open", &exact) == 1048576, "nr_open is 1048576");
}

static void check_syscall_nr(void)
{
	pid_t me = getpid();

	CHECK(syscall(0x100000000L | SYS_getpid) == me, "syscall 0x1_0000_0027 is getpid");
	CHECK(syscall((long)0x8000000000000000UL | SYS_getpid) == me, "bit 63 is ignored too");
	CHECK(syscall(0xffffffff00000000L | SYS_getpid) == me, "and all upper 32 bits");
	errno = 0;
	CHECK(syscall(-1L) == -1 && errno == ENOSYS, "syscall -1 is ENOSYS");
	errno = 0;
	CHECK(syscall(0xffffffffL) == -1 && errno == ENOSYS, "syscall 0xffffffff (int -1) is ENOSYS");
	errno = 0;
	CHECK(syscall(0x80000000L | SYS_getpid) == -1 && errno == ENOSYS, "a negative int is ENOSYS");
	errno = 0;
	CHECK(syscall(0x100000000L + 500) == -1 && errno == ENOSYS, "an unassigned low half is ENOSYS");
}

/*
 * A hard limit a child can lower and then try to raise again: one below
 * the current RLIMIT_NOFILE hard limit (finite on every system).
 */
static int lower_nofile_max(struct rl *lowered)
{
	struct rl r;

	if (get_rl(RLIMIT_NOFILE, &r) != 0)
		return 0;
	lowered->max = r.max - 1;
	lowered->cur = r.cur < lowered->max ? r.cur : lowered->max;
	return set_rl(RLIMIT_NOFILE, lowered->cur, lowered->max) == 0;
}

/* Root gives every id away: the child is unprivileged for good. */
static int drop_to_nobody(void)
{
	uid_t r, e, s;
	gid_t gr, ge, gs;
	struct rl low, rl;
	int ok = 1;

	STEP(lower_nofile_max(&low));
	STEP(syscall(SYS_setgid, 65534) == 0);
	STEP(syscall(SYS_getresgid, &gr, &ge, &gs) == 0 && gr == 65534 && ge == 65534 && gs == 65534);
	STEP(syscall(SYS_setuid, 65534) == 0);
	STEP(syscall(SYS_getresuid, &r, &e, &s) == 0 && r == 65534 && e == 65534 && s == 65534);
	STEP(syscall(SYS_getuid) == 65534 && syscall(SYS_geteuid) == 65534);
	STEP(syscall(SYS_getgid) == 65534 && syscall(SYS_getegid) == 65534);
	STEP(has_cap(CAP_IPC_LOCK) == 0 && has_cap(CAP_SYS_RESOURCE) == 0);
	/* Unprivileged now. */
	errno = 0;
	STEP(syscall(SYS_setuid, 0) == -1 && errno == EPERM);
	STEP(syscall(SYS_setuid, 65534) == 0);
	errno = 0;
	STEP(syscall(SYS_setgid, 0) == -1 && errno == EPERM);
	errno = 0;
	STEP(syscall(SYS_setresuid, -1, 0, -1) == -1 && errno == EPERM);
	errno = 0;
	STEP(syscall(SYS_setreuid, 0, -1) == -1 && errno == EPERM);
	/* Limits: lowering is free, raising the hard limit needs CAP_SYS_RESOURCE. */
	STEP(set_rl(RLIMIT_NOFILE, low.cur - 1, low.max - 1) == 0);
	STEP(set_rl(RLIMIT_NOFILE, low.max - 1, low.max - 1) == 0);
	errno = 0;
	STEP(set_rl(RLIMIT_NOFILE, low.cur, low.max) == -1 && errno == EPERM);
	STEP(get_rl(RLIMIT_NOFILE, &rl) == 0 && rl.max == low.max - 1);
	errno = 0;
	STEP(prl(getppid(), RLIMIT_NOFILE, NULL, &rl) == -1 && errno == EPERM);
	/* Below mmap_min_addr only CAP_SYS_RAWIO may map. */
	int exact;
	long long min_addr = sysctl("vm/mmap_min_addr", &exact);
	errno = 0;
	STEP(min_addr > 0 && mmap((void *)(min_addr - 4096), 4096, PROT_READ,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED && errno == EPERM);
	return ok;
}

/* An effective uid away from 0 keeps the saved 0 and can come back, capabilities too. */
static int seteuid_and_back(void)
{
	uid_t r, e, s;
	struct rl low;
	int ok = 1;
	int resource = has_cap(CAP_SYS_RESOURCE);

	STEP(lower_nofile_max(&low));
	STEP(syscall(SYS_setresuid, 1000, 1000, 0) == 0);
	STEP(syscall(SYS_getresuid, &r, &e, &s) == 0 && r == 1000 && e == 1000 && s == 0);
	STEP(has_cap(CAP_IPC_LOCK) == 0);
	errno = 0;
	STEP(set_rl(RLIMIT_NOFILE, low.cur, low.max + 1) == -1 && errno == EPERM);
	STEP(syscall(SYS_setresuid, -1, 0, -1) == 0 && syscall(SYS_geteuid) == 0);
	STEP(has_cap(CAP_IPC_LOCK) == 1);
	/* Back to what root had, whatever that was. */
	STEP(has_cap(CAP_SYS_RESOURCE) == resource);
	return ok;
}

/* setreuid: the saved uid follows the effective one when the real uid is set. */
static int setreuid_rules(void)
{
	uid_t r, e, s;
	int ok = 1;

	STEP(syscall(SYS_setreuid, 1000, 2000) == 0);
	STEP(syscall(SYS_getresuid, &r, &e, &s) == 0 && r == 1000 && e == 2000 && s == 2000);
	STEP(syscall(SYS_setreuid, -1, 1000) == 0);
	STEP(syscall(SYS_getresuid, &r, &e, &s) == 0 && r == 1000 && e == 1000 && s == 2000);
	STEP(syscall(SYS_setreuid, -1, 2000) == 0);
	errno = 0;
	STEP(syscall(SYS_setreuid, -1, 3000) == -1 && errno == EPERM);
	errno = 0;
	STEP(syscall(SYS_setresuid, 3000, -1, -1) == -1 && errno == EPERM);
	STEP(syscall(SYS_setresuid, 2000, 1000, 1000) == 0);
	STEP(syscall(SYS_getresuid, &r, &e, &s) == 0 && r == 2000 && e == 1000 && s == 1000);
	STEP(syscall(SYS_setregid, 1000, 2000) == -1 && errno == EPERM);
	return ok;
}

static void check_creds(void)
{
	uid_t r, e, s;

	CHECK(syscall(SYS_getresuid, &r, &e, &s) == 0 && r == 0 && e == 0 && s == 0, "the test runs as root");
	errno = 0;
	CHECK(syscall(SYS_getresuid, &r, (uid_t *)8, &s) == -1 && errno == EFAULT, "getresuid to a bad pointer is EFAULT");
	errno = 0;
	CHECK(syscall(SYS_setuid, -1) == -1 && errno == EINVAL, "setuid(-1) is EINVAL");
	CHECK(syscall(SYS_setresuid, -1, -1, -1) == 0, "setresuid(-1, -1, -1) changes nothing");
	CHECK(in_child(drop_to_nobody),
	      "after setuid(65534): no capabilities, no way back, EPERM raising a hard limit, reading root's limits or mapping below mmap_min_addr");
	CHECK(in_child(seteuid_and_back), "setresuid(1000, 1000, 0) drops capabilities, euid 0 brings them back");
	CHECK(in_child(setreuid_rules), "setreuid and setresuid follow Linux's saved-uid rules");
}

static const char *self_path(const char *argv0)
{
	return strchr(argv0, '/') ? argv0 : "/bin/rlimit_test";
}

static void check_exec(const char *argv0)
{
	pid_t pid = fork();

	if (pid == 0) {
		set_rl(RLIMIT_NOFILE, 64, 100);
		syscall(SYS_setgid, 4321);
		syscall(SYS_setuid, 4321);
		char *args[] = { (char *)argv0, "exec-check", "64", "4321", NULL };
		execve(self_path(argv0), args, (char *[]){ NULL });
		_exit(2);
	}
	int status = -1;
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "limits and ids are kept across exec (status %#x)", status);
}

static int exec_check(const char *nofile, const char *uid)
{
	struct rl r;
	long id = atol(uid);
	int ok = 1;

	STEP(get_rl(RLIMIT_NOFILE, &r) == 0 && r.cur == strtoull(nofile, NULL, 10) && r.max == 100);
	STEP(syscall(SYS_getuid) == id && syscall(SYS_geteuid) == id && syscall(SYS_getgid) == id);
	STEP(getauxval(AT_UID) == (unsigned long)id && getauxval(AT_EUID) == (unsigned long)id);
	STEP(getauxval(AT_SECURE) == 0);
	STEP(has_cap(CAP_SYS_RESOURCE) == 0);
	return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "exec-check") == 0)
		return exec_check(argv[2], argv[3]);
	utest_start(argv[0]);
	int init = 0, defaults = 0;
	for (int i = 1; i < argc; i++) {
		init |= strcmp(argv[i], "init-rlimits") == 0;
		defaults |= strcmp(argv[i], "default-sysctls") == 0;
	}
	check_shape();
	if (init)
		check_init_rlimits();
	check_setrlimit();
	check_prlimit();
	check_nofile();
	check_sysctls(defaults);
	check_syscall_nr();
	check_creds();
	check_exec(argv[0]);
	return utest_done();
}
