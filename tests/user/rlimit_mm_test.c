/*
 * The resource limits the memory manager enforces, as Linux does:
 * RLIMIT_AS in mmap and mremap (mm/mmap.c may_expand_vm), RLIMIT_DATA for
 * private writable mappings and brk (may_expand_vm, check_data_rlimit),
 * RLIMIT_MEMLOCK in mlock, mlockall and MAP_LOCKED for a process without
 * CAP_IPC_LOCK (mm/mlock.c, mlock_future_ok), RLIMIT_STACK in stack growth
 * (acct_stack_growth) and in the mmap layout an exec picks
 * (arch/x86/mm/mmap.c mmap_base).
 *
 * Each check runs in a forked child, so a lowered limit or a dropped
 * privilege never reaches the next one.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "utest.h"

#define MIB (1024UL * 1024)
#define RW (PROT_READ | PROT_WRITE)
#define ANON (MAP_PRIVATE | MAP_ANONYMOUS)
/* The top of user space (Linux TASK_SIZE_MAX, 4-level paging). */
#define TASK_SIZE 0x7ffffffff000UL

static long set_rl(int res, uint64_t cur, uint64_t max)
{
	uint64_t r[2] = { cur, max };

	return syscall(SYS_setrlimit, res, r);
}

static void *map(size_t len, int prot, int flags)
{
	return mmap(NULL, len, prot, flags, -1, 0);
}

/* Runs `fn` in a child: 0 if it exited 0, else its wait status. */
static int in_child(int (*fn)(void))
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(fn() ? 0 : 1);
	int status = -1;
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : status;
}

static int address_space(void)
{
	int ok = 1;

	STEP(set_rl(RLIMIT_AS, 32 * MIB, 32 * MIB) == 0);
	errno = 0;
	STEP(map(64 * MIB, PROT_NONE, ANON) == MAP_FAILED && errno == ENOMEM);
	char *p = map(4 * MIB, RW, ANON);
	STEP(p != MAP_FAILED);
	errno = 0;
	STEP(mremap(p, 4 * MIB, 64 * MIB, MREMAP_MAYMOVE) == MAP_FAILED && errno == ENOMEM);
	STEP(munmap(p, 4 * MIB) == 0);
	return ok;
}

static int data(void)
{
	int ok = 1;

	STEP(set_rl(RLIMIT_DATA, 8 * MIB, 8 * MIB) == 0);
	errno = 0;
	STEP(map(16 * MIB, RW, ANON) == MAP_FAILED && errno == ENOMEM);
	char *ro = map(16 * MIB, PROT_READ, ANON);
	STEP(ro != MAP_FAILED);
	errno = 0;
	STEP(map(16 * MIB, RW, MAP_SHARED | MAP_ANONYMOUS) != MAP_FAILED);
	unsigned long brk0 = syscall(SYS_brk, 0);
	STEP(syscall(SYS_brk, brk0 + 16 * MIB) == (long)brk0);
	STEP(syscall(SYS_brk, brk0 + 64 * 1024) == (long)(brk0 + 64 * 1024));
	return ok;
}

/* Drops root (and with it CAP_IPC_LOCK) for good. */
static int drop_privilege(void)
{
	return syscall(SYS_setgid, 65534) == 0 && syscall(SYS_setuid, 65534) == 0;
}

static int memlock(void)
{
	int ok = 1;

	STEP(set_rl(RLIMIT_MEMLOCK, 64 * 1024, 64 * 1024) == 0);
	char *p = map(256 * 1024, RW, ANON);
	STEP(p != MAP_FAILED);
	/* Root (CAP_IPC_LOCK) locks beyond the limit. */
	STEP(mlock(p, 256 * 1024) == 0);
	STEP(munlock(p, 256 * 1024) == 0);
	STEP(drop_privilege());
	errno = 0;
	STEP(mlock(p, 128 * 1024) == -1 && errno == ENOMEM);
	STEP(mlock(p, 32 * 1024) == 0);
	errno = 0;
	STEP(mlock(p + 32 * 1024, 64 * 1024) == -1 && errno == ENOMEM);
	STEP(mlock(p, 64 * 1024) == 0);
	errno = 0;
	STEP(map(128 * 1024, RW, ANON | MAP_LOCKED) == MAP_FAILED && errno == EAGAIN);
	errno = 0;
	STEP(mlockall(MCL_CURRENT) == -1 && errno == ENOMEM);
	STEP(munlock(p, 256 * 1024) == 0);
	STEP(set_rl(RLIMIT_MEMLOCK, 0, 0) == 0);
	errno = 0;
	STEP(mlock(p, 4096) == -1 && errno == EPERM);
	return ok;
}

/* Touches the stack `depth` * 64 KiB below here. */
static int __attribute__((noinline)) grow(int depth)
{
	volatile char frame[64 * 1024];

	for (size_t i = 0; i < sizeof(frame); i += 4096)
		frame[i] = (char)depth;
	return depth == 0 ? frame[0] : grow(depth - 1) + frame[4096];
}

static int stack(void)
{
	int ok = 1;

	STEP(set_rl(RLIMIT_STACK, 1 * MIB, RLIM_INFINITY) == 0);
	/* 2 MiB of frames: beyond the limit, a SIGSEGV ends the child. */
	grow(32);
	STEP(!"the stack grew beyond RLIMIT_STACK");
	return ok;
}

static int stack_within(void)
{
	int ok = 1;

	STEP(set_rl(RLIMIT_STACK, 8 * MIB, RLIM_INFINITY) == 0);
	grow(64);
	return ok;
}

static const char *self_path(const char *argv0)
{
	return strchr(argv0, '/') ? argv0 : "/bin/rlimit_mm_test";
}

/* The exec'd image: the first top-down mmap lies below the stack gap. */
static int mmap_base_check(unsigned long gap)
{
	char *p = map(4096, PROT_READ, ANON);

	return p != MAP_FAILED && (unsigned long)p + 4096 <= TASK_SIZE - gap ? 0 : 1;
}

static void check_mmap_base(const char *argv0)
{
	static const unsigned long stacks[] = { 8 * MIB, 1024 * MIB };
	/* Linux's gap: the stack limit (plus guard gap and random pad), at least 128 MiB. */
	static const unsigned long gaps[] = { 128 * MIB, 1024 * MIB };

	for (int i = 0; i < 2; i++) {
		pid_t pid = fork();
		if (pid == 0) {
			char gap[32];
			snprintf(gap, sizeof(gap), "%lu", gaps[i]);
			set_rl(RLIMIT_STACK, stacks[i], RLIM_INFINITY);
			char *args[] = { (char *)argv0, "mmap-base", gap, NULL };
			execve(self_path(argv0), args, (char *[]){ NULL });
			_exit(2);
		}
		int status = -1;
		waitpid(pid, &status, 0);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "exec with RLIMIT_STACK %lu MiB maps below TASK_SIZE - %lu MiB", stacks[i] / MIB, gaps[i] / MIB);
	}
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "mmap-base") == 0)
		return mmap_base_check(strtoul(argv[2], NULL, 10));
	utest_start(argv[0]);
	CHECK(in_child(address_space) == 0, "RLIMIT_AS: mmap and mremap beyond it are ENOMEM");
	CHECK(in_child(data) == 0, "RLIMIT_DATA: private writable mmap and brk beyond it are refused");
	CHECK(in_child(memlock) == 0,
	      "RLIMIT_MEMLOCK without CAP_IPC_LOCK: mlock ENOMEM, MAP_LOCKED EAGAIN, mlockall ENOMEM, limit 0 EPERM");
	int status = in_child(stack);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV,
	      "RLIMIT_STACK: growing beyond it is SIGSEGV (status %#x)", status);
	CHECK(in_child(stack_within) == 0, "the stack grows to 4 MiB within an 8 MiB limit");
	check_mmap_base(argv[0]);
	return utest_done();
}
