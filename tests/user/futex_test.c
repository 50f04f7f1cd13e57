/*
 * futex(2) as Linux does it (kernel/futex/): FUTEX_WAIT with its value
 * check, relative timeout and interruption by a signal; FUTEX_WAIT_BITSET
 * with absolute CLOCK_MONOTONIC and CLOCK_REALTIME deadlines; FUTEX_WAKE
 * and FUTEX_WAKE_BITSET counting whom they woke; FUTEX_REQUEUE and
 * FUTEX_CMP_REQUEUE moving waiters between words; shared futexes meeting
 * across processes in MAP_SHARED anonymous memory and in a memfd mapped at
 * different offsets, and not meeting in private memory a fork copied; and
 * the errors: EAGAIN, ETIMEDOUT, EINTR, EFAULT, EINVAL, ENOSYS.
 *
 * Without threads the waiters are forked children. The parent learns how
 * many wait on a word without waking them by requeueing the word's waiters
 * onto itself (FUTEX_CMP_REQUEUE with no wake-ups returns how many it
 * moved). Every child waits with a 10 s timeout, so a lost wake-up fails
 * the test instead of hanging it.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "utest.h"

/* <linux/futex.h>, which musl does not ship. */
#define FUTEX_WAIT 0
#define FUTEX_WAKE 1
#define FUTEX_REQUEUE 3
#define FUTEX_CMP_REQUEUE 4
#define FUTEX_WAIT_BITSET 9
#define FUTEX_WAKE_BITSET 10
#define FUTEX_PRIVATE_FLAG 128
#define FUTEX_CLOCK_REALTIME 256
#define FUTEX_BITSET_MATCH_ANY 0xffffffffu

#define PAGE 4096UL
/* An address in the never-mapped first page. */
#define BAD_PTR ((void *)16)
/* How long a child waits before giving up (a lost wake-up). */
#define CHILD_TIMEOUT_S 10

typedef volatile uint32_t futex_t;

static long futex(futex_t *uaddr, int op, uint32_t val, const struct timespec *timeout, futex_t *uaddr2,
		  uint32_t val3)
{
	return syscall(SYS_futex, uaddr, op, val, timeout, uaddr2, val3);
}

/* The requeue operations take a count where the waits take a timeout. */
static long futex_requeue(futex_t *uaddr, int op, int nr_wake, int nr_requeue, futex_t *uaddr2, uint32_t val3)
{
	return syscall(SYS_futex, uaddr, op, nr_wake, (long)nr_requeue, uaddr2, val3);
}

static struct timespec ts_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	return ts;
}

static long long clock_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The absolute time `ms` from now on `clock`. */
static struct timespec deadline_ms(clockid_t clock, long ms)
{
	long long ns = clock_ns(clock) + ms * 1000000LL;
	struct timespec ts = { ns / 1000000000LL, ns % 1000000000LL };
	return ts;
}

static void sleep_ms(long ms)
{
	struct timespec ts = ts_ms(ms);
	nanosleep(&ts, NULL);
}

/* How many wait on `w` (shared or `priv`), found without waking them. */
static long waiters_on(futex_t *w, int priv)
{
	return futex_requeue(w, FUTEX_CMP_REQUEUE | priv, 0, INT_MAX, w, *w);
}

/* Polls until `n` wait on `w` or 10 s have passed; the last count. */
static long wait_for_waiters(futex_t *w, long n)
{
	long got = -1;

	for (int i = 0; i < 10000 && got != n; i++) {
		got = waiters_on(w, 0);
		if (got != n)
			sleep_ms(1);
	}
	return got;
}

/*
 * Forks a child that waits on `w` with operation `op`, value `val` and
 * mask `bitset` (a FUTEX_WAIT_BITSET op gets an absolute deadline) and
 * exits 0 if woken, 100 + errno otherwise.
 */
static pid_t fork_waiter(futex_t *w, int op, uint32_t val, uint32_t bitset)
{
	pid_t pid = fork();

	if (pid == 0) {
		struct timespec ts = (op & ~(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME)) == FUTEX_WAIT_BITSET
					     ? deadline_ms(CLOCK_MONOTONIC, CHILD_TIMEOUT_S * 1000)
					     : ts_ms(CHILD_TIMEOUT_S * 1000);
		long r = futex(w, op, val, &ts, NULL, bitset);
		_exit(r == 0 ? 0 : 100 + errno);
	}
	return pid;
}

/* The exit code of child `pid` (waiting for it), -1 if it did not exit. */
static int exit_code(pid_t pid)
{
	int status;

	if (pid <= 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

/* A shared anonymous page for the words processes share. */
static futex_t *shared_page(void)
{
	void *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		utest_print("Bail out! mmap: %s\n", utest_errno_name(errno));
		exit(1);
	}
	return p;
}

static void test_private_value_and_timeouts(void)
{
	futex_t word = 1;

	CHECK(futex(&word, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 2, NULL, NULL, 0) == -1 && errno == EAGAIN,
	      "FUTEX_WAIT on a word that holds another value: EAGAIN");
	CHECK(futex(&word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1, NULL, NULL, 0) == 0,
	      "FUTEX_WAKE with nobody waiting wakes 0");

	/* A page never touched: the kernel faults it in to read the word. */
	futex_t *fresh = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct timespec rel = ts_ms(50);
	long long t0 = clock_ns(CLOCK_MONOTONIC);
	long r = futex(fresh, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 0, &rel, NULL, 0);
	long long waited = clock_ns(CLOCK_MONOTONIC) - t0;
	CHECK(r == -1 && errno == ETIMEDOUT, "FUTEX_WAIT on a fresh zero page with a 50 ms timeout: ETIMEDOUT");
	CHECK(waited >= 50000000LL, "FUTEX_WAIT's relative timeout is not cut short (%lld ns)", waited);

	struct timespec abs = deadline_ms(CLOCK_MONOTONIC, 30);
	r = futex(fresh, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, 0, &abs, NULL, FUTEX_BITSET_MATCH_ANY);
	CHECK(r == -1 && errno == ETIMEDOUT, "FUTEX_WAIT_BITSET with a CLOCK_MONOTONIC deadline: ETIMEDOUT");
	CHECK(clock_ns(CLOCK_MONOTONIC) >= abs.tv_sec * 1000000000LL + abs.tv_nsec,
	      "FUTEX_WAIT_BITSET returns at its absolute deadline, not before");

	abs = deadline_ms(CLOCK_REALTIME, 30);
	r = futex(fresh, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME, 0, &abs, NULL,
		  FUTEX_BITSET_MATCH_ANY);
	CHECK(r == -1 && errno == ETIMEDOUT, "FUTEX_WAIT_BITSET with a CLOCK_REALTIME deadline: ETIMEDOUT");

	struct timespec past = { 1, 0 };
	r = futex(fresh, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, 0, &past, NULL, FUTEX_BITSET_MATCH_ANY);
	CHECK(r == -1 && errno == ETIMEDOUT, "FUTEX_WAIT_BITSET with a deadline already past: ETIMEDOUT");
	r = futex(fresh, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, 1, &past, NULL, FUTEX_BITSET_MATCH_ANY);
	CHECK(r == -1 && errno == EAGAIN, "the value is checked before the deadline: EAGAIN");

	struct timespec bad_nsec = { 0, 1000000000L }, negative = { -1, 0 };
	CHECK(futex(fresh, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 0, &bad_nsec, NULL, 0) == -1 && errno == EINVAL,
	      "a timeout of 10^9 ns: EINVAL");
	CHECK(futex(fresh, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 1, &negative, NULL, 0) == -1 && errno == EINVAL,
	      "a negative timeout: EINVAL, before the value is looked at");
	CHECK(futex(fresh, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 0, BAD_PTR, NULL, 0) == -1 && errno == EFAULT,
	      "a timeout at a bad address: EFAULT");
	munmap((void *)fresh, PAGE);
}

static volatile sig_atomic_t usr1_caught;

static void on_usr1(int sig)
{
	(void)sig;
	usr1_caught++;
}

/* A child waits on a private word of its own until signals interrupt it. */
static void test_signal_interrupts_wait(void)
{
	futex_t *ready = shared_page();
	pid_t pid = fork();

	if (pid == 0) {
		/* No SA_RESTART: Linux would restart the wait otherwise. */
		struct sigaction sa = { 0 };
		sa.sa_handler = on_usr1;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGUSR1, &sa, NULL);
		futex_t word = 0;
		struct timespec ts = ts_ms(CHILD_TIMEOUT_S * 1000);
		*ready = 1;
		long r = futex(&word, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 0, &ts, NULL, 0);
		_exit(r == -1 && errno == EINTR && usr1_caught > 0 ? 0 : 100 + errno);
	}
	while (pid > 0 && !*ready)
		sleep_ms(1);
	/* Until it exits: a signal sent before it sleeps only runs the handler. */
	int status = 0, exited = 0;
	for (int i = 0; pid > 0 && i < 500 && !exited; i++) {
		kill(pid, SIGUSR1);
		sleep_ms(20);
		exited = waitpid(pid, &status, WNOHANG) == pid;
	}
	CHECK(exited && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "a signal with a handler ends FUTEX_WAIT with EINTR (child status %#x)", status);
	munmap((void *)ready, PAGE);
}

static void test_bad_arguments(void)
{
	futex_t word = 0;
	void *gone = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(gone, PAGE);
	void *none = mmap(NULL, PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	futex_t *kernel = (futex_t *)0xffff800000000000UL;
	futex_t *unaligned = (futex_t *)((char *)&word + 1);
	struct timespec ts = ts_ms(10);

	CHECK(futex(NULL, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 0, &ts, NULL, 0) == -1 && errno == EFAULT,
	      "FUTEX_WAIT on NULL: EFAULT");
	CHECK(futex(gone, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 0, &ts, NULL, 0) == -1 && errno == EFAULT,
	      "FUTEX_WAIT on an unmapped word: EFAULT");
	CHECK(futex(none, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 0, &ts, NULL, 0) == -1 && errno == EFAULT,
	      "FUTEX_WAIT on a PROT_NONE word: EFAULT");
	CHECK(futex(kernel, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1, NULL, NULL, 0) == -1 && errno == EFAULT,
	      "FUTEX_WAKE on a kernel address: EFAULT");
	CHECK(futex(gone, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1, NULL, NULL, 0) == 0,
	      "FUTEX_WAKE_PRIVATE on an unmapped word wakes 0 (a private key needs no mapping)");
	CHECK(futex(gone, FUTEX_WAKE, 1, NULL, NULL, 0) == -1 && errno == EFAULT,
	      "a shared FUTEX_WAKE on an unmapped word: EFAULT");
	CHECK(futex(none, FUTEX_WAKE, 1, NULL, NULL, 0) == -1 && errno == EFAULT,
	      "a shared FUTEX_WAKE on a PROT_NONE word: EFAULT");
	CHECK(futex(unaligned, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 0, &ts, NULL, 0) == -1 && errno == EINVAL,
	      "FUTEX_WAIT on an unaligned word: EINVAL");
	CHECK(futex(unaligned, FUTEX_WAKE, 1, NULL, NULL, 0) == -1 && errno == EINVAL,
	      "FUTEX_WAKE on an unaligned word: EINVAL");
	CHECK(futex(&word, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, 0, &ts, NULL, 0) == -1 && errno == EINVAL,
	      "FUTEX_WAIT_BITSET with an empty mask: EINVAL");
	CHECK(futex(&word, FUTEX_WAKE_BITSET | FUTEX_PRIVATE_FLAG, 1, NULL, NULL, 0) == -1 && errno == EINVAL,
	      "FUTEX_WAKE_BITSET with an empty mask: EINVAL");
	CHECK(futex(&word, FUTEX_WAIT | FUTEX_CLOCK_REALTIME, 0, &ts, NULL, 0) == -1 && errno == ENOSYS,
	      "FUTEX_CLOCK_REALTIME with FUTEX_WAIT: ENOSYS");
	CHECK(futex(&word, FUTEX_WAKE | FUTEX_CLOCK_REALTIME, 1, NULL, NULL, 0) == -1 && errno == ENOSYS,
	      "FUTEX_CLOCK_REALTIME with FUTEX_WAKE: ENOSYS");
	CHECK(futex(&word, 14, 0, NULL, NULL, 0) == -1 && errno == ENOSYS, "operation 14: ENOSYS");
	CHECK(futex(&word, 99 | FUTEX_PRIVATE_FLAG, 0, NULL, NULL, 0) == -1 && errno == ENOSYS,
	      "operation 99: ENOSYS");
	CHECK(futex_requeue(&word, FUTEX_REQUEUE | FUTEX_PRIVATE_FLAG, -1, 0, &word, 0) == -1 && errno == EINVAL,
	      "FUTEX_REQUEUE waking -1: EINVAL");
	CHECK(futex_requeue(&word, FUTEX_REQUEUE | FUTEX_PRIVATE_FLAG, 1, -1, &word, 0) == -1 && errno == EINVAL,
	      "FUTEX_REQUEUE moving -1: EINVAL");
	CHECK(futex_requeue(&word, FUTEX_CMP_REQUEUE | FUTEX_PRIVATE_FLAG, 1, 1, unaligned, 0) == -1 &&
		      errno == EINVAL,
	      "FUTEX_CMP_REQUEUE to an unaligned word: EINVAL");
	munmap(none, PAGE);
}

/* Three children wait on a word in MAP_SHARED anonymous memory. */
static void test_shared_wake_counts(void)
{
	futex_t *w = shared_page();
	pid_t pid[3];

	for (int i = 0; i < 3; i++)
		pid[i] = fork_waiter(w, FUTEX_WAIT, 0, 0);
	CHECK(wait_for_waiters(w, 3) == 3, "three children of a fork wait on one MAP_SHARED word");
	CHECK(futex(w, FUTEX_WAKE, 2, NULL, NULL, 0) == 2, "FUTEX_WAKE of 2 wakes 2");
	CHECK(waiters_on(w, 0) == 1, "one still waits");
	CHECK(futex(w, FUTEX_WAKE, INT_MAX, NULL, NULL, 0) == 1, "FUTEX_WAKE of INT_MAX wakes the last");
	int ok = 1;
	for (int i = 0; i < 3; i++)
		ok &= exit_code(pid[i]) == 0;
	CHECK(ok, "each waiter's FUTEX_WAIT returned 0");
	munmap((void *)w, PAGE);
}

/* Four children wait on w1; requeues move them to w2. */
static void test_requeue(void)
{
	futex_t *w1 = shared_page(), *w2 = w1 + 1;
	pid_t pid[4];

	*w1 = 7;
	for (int i = 0; i < 4; i++)
		pid[i] = fork_waiter(w1, FUTEX_WAIT, 7, 0);
	CHECK(wait_for_waiters(w1, 4) == 4, "four wait on the first word");
	CHECK(futex_requeue(w1, FUTEX_CMP_REQUEUE, 1, 1, w2, 8) == -1 && errno == EAGAIN,
	      "FUTEX_CMP_REQUEUE when the word holds another value: EAGAIN");
	CHECK(waiters_on(w1, 0) == 4, "and nobody was woken or moved");
	CHECK(futex_requeue(w1, FUTEX_CMP_REQUEUE, 1, 1, w2, 7) == 2,
	      "FUTEX_CMP_REQUEUE waking 1 and moving 1 returns 2");
	CHECK(waiters_on(w1, 0) == 2 && waiters_on(w2, 0) == 1, "two wait on the first word, one on the second");
	CHECK(futex_requeue(w1, FUTEX_REQUEUE, 0, INT_MAX, w2, 0) == 2, "FUTEX_REQUEUE moves the other two");
	CHECK(waiters_on(w1, 0) == 0 && waiters_on(w2, 0) == 3, "all three wait on the second word");
	CHECK(futex(w1, FUTEX_WAKE, INT_MAX, NULL, NULL, 0) == 0, "a wake on the first word finds nobody");
	CHECK(futex(w2, FUTEX_WAKE, INT_MAX, NULL, NULL, 0) == 3, "a wake on the second word wakes the three");
	int ok = 1;
	for (int i = 0; i < 4; i++)
		ok &= exit_code(pid[i]) == 0;
	CHECK(ok, "each waiter's FUTEX_WAIT returned 0, woken where it was moved");
	munmap((void *)w1, PAGE);
}

/* Two children wait with masks 0x1 and 0x2 on one word. */
static void test_bitset(void)
{
	futex_t *w = shared_page();
	pid_t one = fork_waiter(w, FUTEX_WAIT_BITSET, 0, 0x1);
	CHECK(wait_for_waiters(w, 1) == 1, "a child waits with mask 0x1");
	pid_t two = fork_waiter(w, FUTEX_WAIT_BITSET, 0, 0x2);
	CHECK(wait_for_waiters(w, 2) == 2, "another with mask 0x2");
	CHECK(futex(w, FUTEX_WAKE_BITSET, INT_MAX, NULL, NULL, 0x6) == 1, "FUTEX_WAKE_BITSET 0x6 wakes one");
	CHECK(exit_code(two) == 0, "the one whose mask meets 0x6");
	CHECK(waiters_on(w, 0) == 1, "the other still waits");
	CHECK(futex(w, FUTEX_WAKE, 1, NULL, NULL, 0) == 1, "FUTEX_WAKE wakes any mask");
	CHECK(exit_code(one) == 0, "the 0x1 waiter was woken");
	munmap((void *)w, PAGE);
}

/*
 * A memfd's second page, mapped by the parent at one address and by the
 * child, after the fork, at another (page 0 of its mapping): the key is the
 * file's page, not the address.
 */
static void test_memfd_meets_across_mappings(void)
{
	int fd = memfd_create("futex_test", 0);
	if (fd < 0 || ftruncate(fd, 2 * PAGE) != 0) {
		CHECK(0, "memfd_create and ftruncate");
		return;
	}
	char *parent = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	futex_t *w = (futex_t *)(parent + PAGE + 8);
	pid_t pid = fork();

	if (pid == 0) {
		char *mine = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, PAGE);
		struct timespec ts = ts_ms(CHILD_TIMEOUT_S * 1000);
		long r = mine == MAP_FAILED ? -1 : futex((futex_t *)(mine + 8), FUTEX_WAIT, 0, &ts, NULL, 0);
		_exit(r == 0 ? 0 : 100 + errno);
	}
	CHECK(wait_for_waiters(w, 1) == 1, "the child's wait is found through the parent's mapping");
	CHECK(futex(w, FUTEX_WAKE, 1, NULL, NULL, 0) == 1, "the parent's FUTEX_WAKE wakes it");
	CHECK(exit_code(pid) == 0, "the child's FUTEX_WAIT returned 0");
	munmap(parent, 2 * PAGE);
	close(fd);
}

/*
 * A word in private memory is the child's own copy after a fork: the
 * parent's shared wakes at the same address never reach the child, which
 * times out.
 */
static void test_private_memory_does_not_meet_across_fork(void)
{
	futex_t *ready = shared_page();
	futex_t *w = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	*w = 0;
	pid_t pid = fork();

	if (pid == 0) {
		struct timespec ts = ts_ms(300);
		*ready = 1;
		long r = futex(w, FUTEX_WAIT, 0, &ts, NULL, 0);
		_exit(r == -1 && errno == ETIMEDOUT ? 0 : 100 + errno);
	}
	while (pid > 0 && !*ready)
		sleep_ms(1);
	long woken = 0;
	int status = 0, exited = 0;
	for (int i = 0; pid > 0 && i < 1000 && !exited; i++) {
		woken += futex(w, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
		sleep_ms(5);
		exited = waitpid(pid, &status, WNOHANG) == pid;
	}
	CHECK(woken == 0, "the parent's wakes on its copy of the word wake nobody");
	CHECK(exited && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "the child's wait on its copy times out (status %#x)", status);
	munmap((void *)w, PAGE);
	munmap((void *)ready, PAGE);
}

int main(int argc, char **argv)
{
	(void)argc;
	utest_start(argv[0]);
	test_private_value_and_timeouts();
	test_signal_interrupts_wait();
	test_bad_arguments();
	test_shared_wake_counts();
	test_requeue();
	test_bitset();
	test_memfd_meets_across_mappings();
	test_private_memory_does_not_meet_across_fork();
	return utest_done();
}
