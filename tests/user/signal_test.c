/*
 * Page faults the kernel cannot resolve, as Linux reports them
 * (arch/x86/mm/fault.c): SIGSEGV with si_addr the faulting address and
 * si_code SEGV_ACCERR (a mapping forbids the access) or SEGV_MAPERR (no
 * mapping), SIGBUS with BUS_ADRERR for a file mapping's page past the end
 * of the file (mm/filemap.c's filemap_fault); an uncaught SIGSEGV kills
 * only its process; and bad user pointers given to system calls fail
 * with EFAULT instead of faulting.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "utest.h"

#define PAGE 4096UL
/* An address in the never-mapped first page. */
#define BAD_PTR ((void *)16)

static sigjmp_buf recover;
static volatile sig_atomic_t faults;
static volatile sig_atomic_t fault_sig;
static void *volatile fault_addr;
static volatile int fault_code;

static void on_fault(int sig, siginfo_t *info, void *ucontext)
{
	(void)ucontext;
	faults++;
	fault_sig = sig;
	fault_addr = info->si_addr;
	fault_code = info->si_code;
	siglongjmp(recover, 1);
}

/* Catches `sig` with on_fault. */
static int catch_faults(int sig)
{
	struct sigaction sa = { 0 };

	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	return sigaction(sig, &sa, NULL);
}

/* Runs `touch(p)` expecting one signal `sig` at `p` with `code`. */
static void expect_fault(void (*touch)(volatile char *), volatile char *p, int sig, int code, const char *what)
{
	faults = 0;
	fault_sig = 0;
	fault_addr = NULL;
	fault_code = 0;
	if (sigsetjmp(recover, 1) == 0)
		touch(p);
	CHECK(faults == 1 && fault_sig == sig, "%s raises %s (got signal %d)", what, sig == SIGBUS ? "SIGBUS" : "SIGSEGV",
	      (int)fault_sig);
	CHECK(fault_addr == (void *)p, "%s: si_addr is the faulting address (%p)", what, fault_addr);
	/* BUS_ADRERR and SEGV_ACCERR are both 2. */
	CHECK(fault_code == code, "%s: si_code is %s (%d)", what,
	      sig == SIGBUS ? "BUS_ADRERR" : code == SEGV_ACCERR ? "SEGV_ACCERR" : "SEGV_MAPERR", fault_code);
}

/* Runs `touch(p)` expecting one SIGSEGV at `p` with `code`. */
static void expect_segv(void (*touch)(volatile char *), volatile char *p, int code, const char *what)
{
	expect_fault(touch, p, SIGSEGV, code, what);
}

static void write_byte(volatile char *p)
{
	*p = 1;
}

static void read_byte(volatile char *p)
{
	(void)*p;
}

static void caught_faults(void)
{
	CHECK(catch_faults(SIGSEGV) == 0, "install an SA_SIGINFO SIGSEGV handler");

	char *ro = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *none = mmap(NULL, PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *gone = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int mapped = ro != MAP_FAILED && none != MAP_FAILED && gone != MAP_FAILED;

	CHECK(mapped, "mmap of a read-only, a PROT_NONE and a read-write page");
	if (!mapped)
		return;
	munmap(gone, PAGE);
	expect_segv(write_byte, ro + 8, SEGV_ACCERR, "a write to a PROT_READ page");
	expect_segv(read_byte, none + 8, SEGV_ACCERR, "a read of a PROT_NONE page");
	expect_segv(write_byte, gone + 8, SEGV_MAPERR, "a write to an unmapped page");
	expect_segv(read_byte, gone, SEGV_MAPERR, "a read of an unmapped page");
	CHECK(*(volatile char *)ro == 0, "the PROT_READ page is still readable after the faults");
	signal(SIGSEGV, SIG_DFL);
	munmap(ro, PAGE);
	munmap(none, PAGE);
}

/*
 * A page of a file mapping wholly past the end of the file: SIGBUS with
 * BUS_ADRERR for the program's access, EFAULT for a system call's; the
 * rest of the file's last page reads as zeros.
 */
static void file_page_past_the_end_is_sigbus(const char *self)
{
	int fd = open(self, O_RDONLY);
	off_t size = fd < 0 ? -1 : lseek(fd, 0, SEEK_END);

	CHECK(size > 0, "open the program's own file and find its size");
	if (size <= 0)
		return;
	size_t in_file = ((size_t)size + PAGE - 1) / PAGE * PAGE;
	char *p = mmap(NULL, in_file + 2 * PAGE, PROT_READ, MAP_PRIVATE, fd, 0);

	close(fd);
	CHECK(p != MAP_FAILED, "map the file and two pages past its end");
	if (p == MAP_FAILED)
		return;
	CHECK(catch_faults(SIGBUS) == 0, "install an SA_SIGINFO SIGBUS handler");
	CHECK(p[0] == 0x7f && p[1] == 'E', "the file's first page reads the ELF header");
	if ((size_t)size < in_file)
		CHECK(p[size] == 0 && p[in_file - 1] == 0, "the last page reads zeros past the end of the file");
	expect_fault(read_byte, p + in_file, SIGBUS, BUS_ADRERR, "a read of the first page past the end");
	expect_fault(read_byte, p + in_file + PAGE + 8, SIGBUS, BUS_ADRERR, "a read of the second page past the end");

	int fds[2];

	if (pipe(fds) == 0) {
		errno = 0;
		CHECK(write(fds[1], p + in_file, 1) == -1 && errno == EFAULT,
		      "write from a page past the end of the file fails with EFAULT");
		close(fds[0]);
		close(fds[1]);
	}
	signal(SIGBUS, SIG_DFL);
	munmap(p, in_file + 2 * PAGE);
}

static void uncaught_fault_kills_only_the_child(void)
{
	pid_t pid = fork();

	if (pid == 0) {
		/* Through a volatile so the compiler cannot see a null-page store. */
		volatile uintptr_t bad = (uintptr_t)BAD_PTR;
		write_byte((volatile char *)bad);
		_exit(0);
	}
	int status = 0;
	CHECK(waitpid(pid, &status, 0) == pid, "waitpid for the faulting child");
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV, "an uncaught SIGSEGV kills the child");
}

static void bad_pointers_give_efault(void)
{
	int fds[2];

	int piped = pipe(fds) == 0;

	CHECK(piped, "pipe");
	if (!piped)
		return;
	/* A pipe, not fd 1: writes to /dev/null succeed without reading. */
	errno = 0;
	CHECK(write(fds[1], BAD_PTR, 10) == -1 && errno == EFAULT, "write from a bad buffer fails with EFAULT");
	CHECK(write(fds[1], "0123456789", 10) == 10, "write to a pipe");
	errno = 0;
	CHECK(read(fds[0], BAD_PTR, 10) == -1 && errno == EFAULT, "read into a bad buffer fails with EFAULT");
	close(fds[0]);
	close(fds[1]);
	/* syscall() bypasses the vDSO, which would fault in user space. */
	errno = 0;
	CHECK(syscall(SYS_clock_gettime, CLOCK_MONOTONIC, BAD_PTR) == -1 && errno == EFAULT,
	      "clock_gettime into a bad pointer fails with EFAULT");
	errno = 0;
	CHECK(syscall(SYS_openat, AT_FDCWD, BAD_PTR, O_RDONLY) == -1 && errno == EFAULT,
	      "openat of a bad path pointer fails with EFAULT");
}

static void on_usr1(int sig)
{
	(void)sig;
}

/*
 * A handled signal arriving while the stack pointer is near 0: the kernel
 * cannot build the signal frame below it and kills the process with
 * SIGSEGV (Linux force_sigsegv); the frame arithmetic once overflowed in
 * our kernel instead.
 */
static void signal_with_a_stack_near_zero_kills_with_sigsegv(void)
{
	pid_t pid = fork();

	if (pid == 0) {
		struct sigaction sa = { .sa_handler = on_usr1 };
		sigaction(SIGUSR1, &sa, NULL);
		long nr = SYS_kill, self = getpid(), sig = SIGUSR1;
		/* kill(self, SIGUSR1) with rsp = 0x200; the signal is delivered
		 * on the way back to user mode. */
		__asm__ volatile("mov $0x200, %%rsp\n\tsyscall\n\tud2"
				 : "+a"(nr)
				 : "D"(self), "S"(sig)
				 : "rcx", "r11", "memory");
		_exit(0);
	}
	int status = 0;
	CHECK(waitpid(pid, &status, 0) == pid, "waitpid for the child with rsp 0x200");
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV,
	      "a handled signal with rsp near 0 kills the process with SIGSEGV");
}

int main(int argc, char **argv)
{
	(void)argc;
	utest_start(argv[0]);
	caught_faults();
	file_page_past_the_end_is_sigbus(argv[0]);
	uncaught_fault_kills_only_the_child();
	signal_with_a_stack_near_zero_kills_with_sigsegv();
	bad_pointers_give_efault();
	return utest_done();
}
