/*
 * Stacks that grow on demand (Linux mm/mmap.c expand_stack): the main
 * thread's stack grows down as deep frames touch it, up to RLIMIT_STACK
 * (8 MiB by default; this goes 4 MiB deep), and a MAP_GROWSDOWN mapping
 * grows when a page just below it is touched. Each case runs in a child so
 * a kernel that refuses the growth shows as a failed check (the child dies
 * of SIGSEGV), not as a lost program.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "utest.h"

#define PAGE 4096UL
#define FRAME (64 * 1024)
#define DEPTH 64 /* 64 frames of 64 KiB: 4 MiB of stack */

/* Fills a 64 KiB frame, recurses, then checks the frame survived. */
static int __attribute__((noinline)) deep(int depth)
{
	volatile unsigned char frame[FRAME];

	for (size_t i = 0; i < FRAME; i += PAGE / 2)
		frame[i] = (unsigned char)(depth + i / PAGE);
	int below = depth > 1 ? deep(depth - 1) : 0;
	for (size_t i = 0; i < FRAME; i += PAGE / 2) {
		if (frame[i] != (unsigned char)(depth + i / PAGE))
			return -1;
	}
	return below < 0 ? -1 : below + 1;
}

static int main_stack_grows(void)
{
	return deep(DEPTH) == DEPTH ? 0 : 1;
}

static int growsdown_mapping_grows(void)
{
	/* Room below, beyond Linux's 1 MiB stack guard gap, kept free. */
	size_t room = 4UL << 20;
	char *area = mmap(NULL, room, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED)
		return 2;
	munmap(area, room);
	volatile char *top = mmap(area + room - PAGE, PAGE, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN | MAP_FIXED, -1, 0);
	if (top == MAP_FAILED)
		return 3;
	top[0] = 1;
	top[-1] = 2;
	top[-(long)PAGE * 4] = 3;
	return top[0] == 1 && top[-1] == 2 && top[-(long)PAGE * 4] == 3 ? 0 : 1;
}

static void in_child(int (*test)(void), const char *what)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(test());
	int status = 0;
	CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s (wait status %#x)", what, status);
}

int main(int argc, char **argv)
{
	(void)argc;
	utest_start(argv[0]);
	in_child(main_stack_grows, "the main stack grows 4 MiB deep in 64 KiB frames");
	in_child(growsdown_mapping_grows, "a MAP_GROWSDOWN mapping grows when touched below");
	return utest_done();
}
