/*
 * fork and its memory semantics as Linux defines them (kernel/fork.c
 * dup_mmap, mm/memory.c copy-on-write): private pages copied on write,
 * MAP_SHARED anonymous pages shared, MADV_DONTFORK ranges left out of the
 * child; vfork, raw clone with its tid pointers, posix_spawn (clone with
 * CLONE_VM | CLONE_VFORK on a new stack), wait4 statuses for exits and
 * signals, getpid/getppid, and
 * execve of hello (found next to this program: /bin in the initramfs,
 * target/user on a build host).
 */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "utest.h"

#define PAGE 4096UL

static char *map(int flags)
{
	void *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, flags | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* Waits for `pid` and returns its wait status, or -1. */
static int wait_status(pid_t pid)
{
	int status = 0;
	struct rusage ru;

	return wait4(pid, &status, 0, &ru) == pid ? status : -1;
}

static void wait_byte(int fd)
{
	char c;

	while (read(fd, &c, 1) < 0 && errno == EINTR)
		;
}

static void private_pages_are_copied_on_write(void)
{
	volatile char *p = map(MAP_PRIVATE);
	int go[2];
	int ready = p != NULL && pipe(go) == 0;

	CHECK(ready, "a private page and a pipe");
	if (!ready)
		return;
	p[0] = 1;
	pid_t pid = fork();
	if (pid == 0) {
		p[0] = 2;
		wait_byte(go[0]);
		_exit(p[0] == 2 ? 0 : 1);
	}
	CHECK(pid > 0, "fork");
	p[0] = 3;
	write(go[1], "x", 1);
	int status = wait_status(pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child sees only its own write to a private page");
	CHECK(p[0] == 3, "the parent sees only its own write to a private page");
	close(go[0]);
	close(go[1]);
	munmap((void *)p, PAGE);
}

static void shared_pages_are_shared_both_ways(void)
{
	volatile char *p = map(MAP_SHARED);
	int go[2];
	int ready = p != NULL && pipe(go) == 0;

	CHECK(ready, "a shared page and a pipe");
	if (!ready)
		return;
	pid_t pid = fork();
	if (pid == 0) {
		wait_byte(go[0]);
		int saw_parent = p[0] == 7;
		p[1] = 42;
		_exit(saw_parent ? 0 : 1);
	}
	p[0] = 7;
	write(go[1], "x", 1);
	int status = wait_status(pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child sees the parent's write to a MAP_SHARED page");
	CHECK(p[1] == 42, "the parent sees the child's write to a MAP_SHARED page");
	close(go[0]);
	close(go[1]);
	munmap((void *)p, PAGE);
}

static void vfork_and_exit(void)
{
	pid_t pid = vfork();

	if (pid == 0)
		_exit(7);
	CHECK(pid > 0, "vfork");
	int status = wait_status(pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 7, "a vfork child's _exit(7) reaches the parent");
}

static void wait_statuses(void)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(3);
	int status = wait_status(pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 3, "wait4 reports exit status 3");
	CHECK(!WIFSIGNALED(status), "an exited child is not reported as signalled");

	int sigs[] = { SIGKILL, SIGTERM };
	for (int i = 0; i < 2; i++) {
		pid = fork();
		if (pid == 0) {
			for (;;)
				pause();
		}
		CHECK(kill(pid, sigs[i]) == 0, "kill(child, %s)", sigs[i] == SIGKILL ? "SIGKILL" : "SIGTERM");
		status = wait_status(pid);
		CHECK(WIFSIGNALED(status) && WTERMSIG(status) == sigs[i], "wait4 reports death by %s",
		      sigs[i] == SIGKILL ? "SIGKILL" : "SIGTERM");
	}
	errno = 0;
	CHECK(wait4(-1, &status, 0, NULL) == -1 && errno == ECHILD, "wait4 with no children fails with ECHILD");
}

static void pids(void)
{
	volatile pid_t *shared = (volatile pid_t *)map(MAP_SHARED);
	pid_t parent = getpid();

	CHECK(shared != NULL, "mmap of a shared page");
	if (!shared)
		return;
	pid_t pid = fork();
	if (pid == 0) {
		shared[0] = getpid();
		_exit(getppid() == parent ? 0 : 1);
	}
	int status = wait_status(pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child's getppid() is the parent's getpid()");
	CHECK(shared[0] == pid && pid != parent, "fork returns the child's getpid() to the parent");
	munmap((void *)shared, PAGE);
}

static void dontfork_range_is_absent_in_child(void)
{
	volatile char *p = map(MAP_PRIVATE);

	CHECK(p != NULL, "mmap of a private page");
	if (!p)
		return;
	p[0] = 1;
	CHECK(madvise((void *)p, PAGE, MADV_DONTFORK) == 0, "madvise(MADV_DONTFORK)");
	pid_t pid = fork();
	if (pid == 0) {
		p[0] = 2;
		_exit(0);
	}
	int status = wait_status(pid);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV, "a child touching an MADV_DONTFORK range gets SIGSEGV");
	CHECK(p[0] == 1, "the parent keeps its MADV_DONTFORK range");
	munmap((void *)p, PAGE);
}

/* hello's path, next to this program. */
static void hello_path(const char *argv0, char *path, size_t size)
{
	const char *slash = strrchr(argv0, '/');

	if (slash)
		snprintf(path, size, "%.*s/hello", (int)(slash - argv0), argv0);
	else
		snprintf(path, size, "/bin/hello");
}

/* The raw clone system call: fork-like flags, the tid pointers, a stack. */
static void clone_flags(const char *argv0)
{
	pid_t ptid = 0, ctid = 0;
	long pid = syscall(SYS_clone, SIGCHLD | CLONE_PARENT_SETTID | CLONE_CHILD_SETTID, 0, &ptid, &ctid, 0);

	if (pid == 0)
		_exit(ctid == getpid() && ptid == 0 ? 5 : 1);
	CHECK(pid > 0, "clone(SIGCHLD | CLONE_PARENT_SETTID | CLONE_CHILD_SETTID)");
	CHECK(ptid == pid, "CLONE_PARENT_SETTID stores the child's pid in the parent");
	CHECK(ctid == 0, "CLONE_CHILD_SETTID writes only the child's copy");
	int status = wait_status(pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 5,
	      "the clone child returns 0 and sees its pid at its CLONE_CHILD_SETTID word");

	/* posix_spawn: musl clones with CLONE_VM | CLONE_VFORK onto a stack of its own. */
	char path[512];
	hello_path(argv0, path, sizeof(path));
	char *argv[] = { path, "from-posix-spawn", NULL };
	char *envp[] = { NULL };
	pid_t spawned = -1;
	int err = posix_spawn(&spawned, path, NULL, NULL, argv, envp);
	CHECK(err == 0 && spawned > 0, "posix_spawn of %s (error %d)", path, err);
	status = wait_status(spawned);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the posix_spawned program exits 0");
}

static void exec_hello(const char *argv0)
{
	char path[512];

	hello_path(argv0, path, sizeof(path));
	pid_t pid = fork();
	if (pid == 0) {
		char *argv[] = { path, "from-fork-test", NULL };
		char *envp[] = { "UTEST=1", NULL };
		execve(path, argv, envp);
		_exit(127);
	}
	int status = wait_status(pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "execve of %s with an argument exits 0", path);
}

int main(int argc, char **argv)
{
	(void)argc;
	utest_start(argv[0]);
	private_pages_are_copied_on_write();
	shared_pages_are_shared_both_ways();
	vfork_and_exit();
	wait_statuses();
	pids();
	dontfork_range_is_absent_in_child();
	clone_flags(argv[0]);
	exec_hello(argv[0]);
	return utest_done();
}
