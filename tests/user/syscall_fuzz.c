/*
 * syscall_fuzz [SEED [BATCHES [CALLS [TRACE]]]]: tens of thousands of random system
 * calls with random and boundary arguments, to show that nothing user space
 * passes can panic, hang or leak in the kernel (issue 16).
 *
 * The run is seeded and prints its seed first, so a failure reproduces with
 * `syscall_fuzz SEED`. The parent forks one worker per batch; the worker
 * issues CALLS calls and exits, or dies on the way (it may munmap its own
 * text or stack, send itself a signal, jump through a bad signal frame), and
 * that only ends its batch. The parent reaps it with wait4 and starts the
 * next batch with the next sub-seed; a worker that starts no new call for
 * WATCHDOG_NS is killed and counted as a timeout, which fails the run: no
 * call the fuzzer makes may block (see the sanitizers in fuzz_one). A
 * worker that is merely slow (a loaded host) keeps starting calls, so it
 * is never killed for that.
 *
 * Arguments mix boundary values (0, 1, -1, 2^63, 2^64-1, the last user
 * page, the first non-canonical and kernel addresses, PAGE_SIZE +- 1),
 * small and random integers, pointers into a valid scratch buffer (followed
 * by a guard page), into unmapped memory, the kernel half and the
 * non-canonical hole, and page-aligned addresses in a fuzz window where
 * MAP_FIXED mappings, mprotect, mremap and munmap overlap each other. The mm
 * calls get most of the weight; every number 0..=450 is still drawn.
 *
 * Two modes, chosen by uname(2):
 * - under our kernel (release "6.1.0-mm"), every number is called, except
 *   pause, rt_sigsuspend (they wait for a signal nobody sends) and reboot;
 *   unimplemented numbers simply return ENOSYS. A number that gets
 *   implemented later and may block or reach other processes needs a
 *   sanitizer in fuzz_one.
 * - under Linux (a sanity check of the program itself, run as root on a
 *   development machine), only the numbers our kernel implements are
 *   called, with the same sanitizers: random arguments to the rest of
 *   Linux's table would unlink files, kill processes or reboot.
 *
 * The worker loop uses raw `syscall` instructions only: no libc, no errno,
 * no TLS (arch_prctl may move FS anywhere) and no stdio.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "utest.h"

#define PAGE 4096UL
#define NR_MAX 450
#define DEFAULT_SEED 0x5eed0f16c0ffee01ULL
#define DEFAULT_BATCHES 100
#define DEFAULT_CALLS 300
/* One call takes well under a millisecond even under TCG; a worker that
 * starts no call for this long is blocked in the kernel. */
#define WATCHDOG_NS (10ULL * 1000 * 1000 * 1000)

/* Where the worker maps, remaps, protects and unmaps: 512 pages at 16 TiB,
 * far from the program's text, heap, stack and mmap base. */
#define WINDOW 0x100000000000UL
#define WINDOW_PAGES 512
#define SCRATCH_PAGES 16

/* x86_64 syscall numbers the sanitizers below name. */
enum {
	NR_read = 0, NR_write = 1, NR_open = 2, NR_close = 3, NR_fstat = 5, NR_lseek = 8,
	NR_mmap = 9, NR_mprotect = 10, NR_munmap = 11, NR_brk = 12, NR_rt_sigaction = 13,
	NR_rt_sigprocmask = 14, NR_rt_sigreturn = 15, NR_ioctl = 16, NR_pread64 = 17,
	NR_pwrite64 = 18, NR_readv = 19, NR_writev = 20, NR_pipe = 22, NR_sched_yield = 24,
	NR_mremap = 25, NR_msync = 26, NR_mincore = 27, NR_madvise = 28, NR_shmget = 29,
	NR_shmctl = 31, NR_dup = 32,
	NR_dup2 = 33, NR_pause = 34, NR_nanosleep = 35, NR_getpid = 39, NR_clone = 56,
	NR_fork = 57, NR_vfork = 58, NR_execve = 59, NR_exit = 60, NR_wait4 = 61, NR_kill = 62,
	NR_uname = 63, NR_fcntl = 72, NR_getcwd = 79, NR_getuid = 102, NR_getgid = 104,
	NR_geteuid = 107, NR_getegid = 108, NR_getppid = 110, NR_rt_sigsuspend = 130,
	NR_sigaltstack = 131, NR_mlock = 149, NR_munlock = 150, NR_mlockall = 151,
	NR_munlockall = 152, NR_arch_prctl = 158, NR_reboot = 169, NR_gettid = 186,
	NR_tkill = 200, NR_futex = 202, NR_set_tid_address = 218, NR_clock_gettime = 228,
	NR_clock_nanosleep = 230, NR_exit_group = 231, NR_tgkill = 234, NR_openat = 257,
	NR_preadv = 295, NR_pwritev = 296, NR_dup3 = 292, NR_pipe2 = 293, NR_getrandom = 318,
	NR_execveat = 322, NR_mlock2 = 325, NR_preadv2 = 327, NR_pwritev2 = 328,
	NR_getitimer = 36, NR_alarm = 37, NR_setitimer = 38, NR_gettimeofday = 96, NR_getrusage = 98,
	NR_sysinfo = 99, NR_times = 100, NR_setpgid = 109, NR_getpgrp = 111, NR_setsid = 112,
	NR_getpgid = 121, NR_getsid = 124, NR_rt_sigpending = 127, NR_rt_sigtimedwait = 128,
	NR_time = 201, NR_sched_setaffinity = 203, NR_sched_getaffinity = 204, NR_timer_create = 222,
	NR_timer_settime = 223, NR_timer_gettime = 224, NR_timer_getoverrun = 225, NR_timer_delete = 226,
	NR_clock_getres = 229, NR_getcpu = 309,
};

static const int mm_calls[] = {
	NR_mmap, NR_mmap, NR_mmap, NR_munmap, NR_munmap, NR_mprotect, NR_mprotect, NR_mremap,
	NR_mremap, NR_madvise, NR_madvise, NR_mincore, NR_msync, NR_mlock, NR_munlock, NR_mlock2,
	NR_mlockall, NR_munlockall, NR_brk,
};

/* What our kernel implements (kernel/src/syscall.rs); under Linux, the only
 * numbers called. */
static const int implemented[] = {
	NR_read, NR_write, NR_open, NR_close, NR_fstat, NR_lseek, NR_mmap, NR_mprotect,
	NR_munmap, NR_brk, NR_rt_sigaction, NR_rt_sigprocmask, NR_rt_sigreturn, NR_ioctl,
	NR_readv, NR_writev, NR_pipe, NR_sched_yield, NR_mremap, NR_msync, NR_mincore,
	NR_madvise, NR_dup, NR_dup2, NR_nanosleep, NR_getpid, NR_clone, NR_fork, NR_vfork,
	NR_execve, NR_exit, NR_wait4, NR_kill, NR_uname, NR_fcntl, NR_getcwd, NR_getuid,
	NR_getgid, NR_geteuid, NR_getegid, NR_getppid, NR_sigaltstack, NR_mlock, NR_munlock,
	NR_mlockall, NR_munlockall, NR_arch_prctl, NR_gettid, NR_tkill, NR_set_tid_address,
	NR_clock_gettime, NR_clock_nanosleep, NR_exit_group, NR_tgkill, NR_openat, NR_dup3,
	NR_pipe2, NR_getrandom, NR_mlock2, NR_getitimer, NR_alarm, NR_setitimer, NR_gettimeofday,
	NR_getrusage, NR_sysinfo, NR_times, NR_setpgid, NR_getpgrp, NR_setsid, NR_getpgid, NR_getsid,
	NR_rt_sigpending, NR_rt_sigtimedwait, NR_time, NR_sched_setaffinity, NR_sched_getaffinity,
	NR_timer_create, NR_timer_settime, NR_timer_gettime, NR_timer_getoverrun, NR_timer_delete,
	NR_clock_getres, NR_getcpu,
};

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

static const uint64_t boundary[] = {
	0, 1, 2, 3, 0xffffffffffffffffULL, 0xfffffffffffffffeULL, 1ULL << 63, (1ULL << 63) - 1,
	(1ULL << 63) + 1, 1ULL << 32, (1ULL << 32) - 1, 1ULL << 31, (1ULL << 31) - 1,
	0x7fffffffffffULL, 0x7ffffffff000ULL, 0x7fffffffefffULL, 0x800000000000ULL,
	0x800000001000ULL, 0xffff800000000000ULL, 0xffff7fffffffffffULL, PAGE - 1, PAGE,
	PAGE + 1, 2 * PAGE, 1ULL << 21, (1ULL << 21) + PAGE, 1ULL << 30, -PAGE, -2 * PAGE,
	0x7fffffffULL, 0x80000000ULL, 0xffffffff80000000ULL,
};

/* Lengths for the mm calls: tiny, or too large for any address space (a
 * valid gigabyte could be populated or mlocked, and the test machine is
 * small). */
static const uint64_t mm_boundary_len[] = {
	0, 1, 2, PAGE - 1, PAGE + 1, 0xffffffffffffffffULL, 0xfffffffffffff000ULL, 1ULL << 63,
	(1ULL << 63) - 1, (1ULL << 63) + PAGE, 0x800000000000ULL, 0x7fffffffffffULL + 2,
	0xffff800000000000ULL, 1ULL << 48, -2 * PAGE,
};

static const uint64_t kernel_addrs[] = {
	0xffff800000000000ULL, 0xffff888000000000ULL, 0xffff888000100000ULL,
	0xffffc90000000000ULL, 0xfffffe0000000000ULL, 0xffffffff80000000ULL,
	0xffffffff80100000ULL, 0xffffffffff600000ULL, 0xfffffffffffff000ULL,
	0xffffffffffffffffULL,
};

static const uint64_t noncanonical[] = {
	0x800000000000ULL, 0x800000001000ULL, 0x0000fffffffff000ULL, 0x1000000000000ULL,
	0x7fff800000000000ULL, 0x8000000000000000ULL, 0xdead000000000000ULL,
	0xffff7ffffffff000ULL,
};

/* Everything a worker needs, set up by the parent before it forks. */
struct fuzz_env {
	int on_linux;
	int self_pid;         /* the worker's own pid, filled in after fork */
	int file_fd;          /* read-only, the program's own binary */
	int pipe_r, pipe_w;   /* one non-blocking pipe, both ends */
	uint8_t *scratch;     /* SCRATCH_PAGES read-write pages, then a guard page */
	uint64_t brk0;
	uint64_t last_child;
};

/* Results, in a MAP_SHARED page so that a worker that dies still counts. */
struct stats {
	uint64_t calls, ok;
	uint64_t last[7];     /* the call in progress: number, arguments */
	uint64_t err[512];    /* by errno */
	uint64_t nr_called[NR_MAX + 1];
};

static struct fuzz_env env;
/* Print every call of the worker (the TRACE argument). */
static int trace;
static struct stats *stats;

static inline long sc6(long n, long a, long b, long c, long d, long e, long f)
{
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	long ret;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

/*
 * fork, vfork and clone: the child exits at once, from inside the asm, so
 * that it touches no stack (vfork shares it; clone may have been given a
 * garbage one) and never runs fuzz calls of its own.
 */
static inline long sc6_fork(long n, long a, long b, long c, long d, long e, long f)
{
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	long ret;

	__asm__ volatile("syscall\n\t"
			 "test %%rax, %%rax\n\t"
			 "jnz 1f\n\t"
			 "mov $60, %%eax\n\t"
			 "xor %%edi, %%edi\n\t"
			 "syscall\n\t"
			 "ud2\n"
			 "1:"
			 : "=a"(ret)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

/* splitmix64: a good stream from any seed, including 0. */
static inline uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rng;

static inline uint64_t rnd(void) { return splitmix64(&rng); }
static inline uint64_t below(uint64_t n) { return rnd() % n; }
static inline int chance(int percent) { return below(100) < (uint64_t)percent; }
static inline uint64_t pick(const uint64_t *v, size_t n) { return v[below(n)]; }

/* The signal handler fuzzed rt_sigaction installs, and its restorer. */
static void fuzz_handler(int sig) { (void)sig; }
extern void fuzz_restorer(void);
__asm__(".text\n"
	"fuzz_restorer:\n\t"
	"mov $15, %eax\n\t"
	"syscall\n\t"
	"ud2\n");

static uint64_t window_addr(void)
{
	/* A page in the window, or just outside either end of it. */
	return WINDOW + (below(WINDOW_PAGES + 32) - 16) * PAGE;
}

static uint64_t unmapped_addr(void)
{
	static const uint64_t holes[] = { 0, 8, PAGE, 0x10000, 0xdead0000, 0x200000000000ULL };

	return chance(50) ? pick(holes, LEN(holes)) : WINDOW + WINDOW_PAGES * PAGE * 4 + below(64) * PAGE;
}

static uint64_t scratch_ptr(void)
{
	uint64_t base = (uint64_t)env.scratch;

	switch (below(4)) {
	case 0: return base;
	case 1: return base + below(SCRATCH_PAGES * PAGE);
	case 2: return base + SCRATCH_PAGES * PAGE - 1 - below(64);  /* runs into the guard */
	default: return base + below(SCRATCH_PAGES) * PAGE;
	}
}

/* A pointer of any kind: valid, unmapped, kernel, non-canonical. */
static uint64_t any_ptr(void)
{
	switch (below(6)) {
	case 0: case 1: return scratch_ptr();
	case 2: return unmapped_addr();
	case 3: return pick(kernel_addrs, LEN(kernel_addrs)) - below(2) * below(64);
	case 4: return pick(noncanonical, LEN(noncanonical));
	default: return window_addr() + (chance(20) ? below(PAGE) : 0);
	}
}

/* A pointer no call can ever read or write through: in the kernel half
 * or the non-canonical hole (any user address may have been mapped by a
 * fuzzed mmap, even page 0 under Linux as root). */
static uint64_t bad_ptr(void)
{
	if (chance(50))
		return pick(kernel_addrs, LEN(kernel_addrs)) - below(2) * below(64);
	return pick(noncanonical, LEN(noncanonical)) + below(2) * below(PAGE);
}

static uint64_t any_len(void)
{
	switch (below(8)) {
	case 0: case 1: return pick(boundary, LEN(boundary));
	case 2: return below(64);
	case 3: return (1 + below(16)) * PAGE + (chance(30) ? below(3) - 1 : 0);
	case 4: return rnd();
	case 5: return below(SCRATCH_PAGES * PAGE + 1);
	default: return (1 + below(4)) * PAGE;
	}
}

/* A length for the mm calls: mostly a few pages, sometimes a boundary
 * value; never more than 1024 valid pages, so populate and mlock cannot
 * take a small machine's memory. */
static uint64_t mm_len(void)
{
	switch (below(10)) {
	case 0: case 1: return pick(mm_boundary_len, LEN(mm_boundary_len));
	case 2: return (1 + below(1024)) * PAGE;
	case 3: return (1 + below(16)) * PAGE + below(3) - 1;
	default: return (1 + below(16)) * PAGE;
	}
}

static uint64_t mm_addr(void)
{
	switch (below(20)) {
	case 0: return pick(boundary, LEN(boundary));
	case 1: return any_ptr();
	case 2: return window_addr() + 1 + below(PAGE - 1);
	case 3: return pick(noncanonical, LEN(noncanonical));
	case 4: return pick(kernel_addrs, LEN(kernel_addrs));
	case 5: return 0x7ffffffff000ULL - below(4) * PAGE;
	default: return window_addr();
	}
}

static uint64_t prot(void)
{
	uint64_t p = below(8);  /* PROT_READ | PROT_WRITE | PROT_EXEC */

	if (chance(5))
		p |= PROT_GROWSDOWN;
	if (chance(3))
		p |= PROT_GROWSUP;
	if (chance(3))
		p = rnd() & 0xffffffff;
	return p;
}

static uint64_t mmap_flags(void)
{
	static const uint64_t extra[] = {
		MAP_FIXED, MAP_FIXED, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_POPULATE, MAP_GROWSDOWN,
		MAP_NORESERVE, MAP_LOCKED, MAP_STACK, MAP_32BIT, MAP_HUGETLB, MAP_SHARED_VALIDATE,
		MAP_SYNC, 0x4000000 /* MAP_UNINITIALIZED */,
	};
	uint64_t f = chance(80) ? MAP_PRIVATE : chance(80) ? MAP_SHARED : below(4);

	if (chance(85))
		f |= MAP_ANONYMOUS;
	for (int i = below(4); i > 0; i--)
		f |= pick(extra, LEN(extra));
	if (chance(3))
		f = rnd() & 0xffffffff;
	return f;
}

static uint64_t fd_arg(void)
{
	static const uint64_t bad[] = { -1ULL, 1000, 0x7fffffff, 0x80000000, 1ULL << 32, 64, 4095 };

	switch (below(8)) {
	case 0: return env.file_fd;
	case 1: return env.pipe_r;
	case 2: return env.pipe_w;
	case 3: return pick(bad, LEN(bad));
	case 4: return env.on_linux ? (uint64_t)env.file_fd : below(3);
	default: return below(24);
	}
}

/* An fd a read may use: never one that blocks (the console, a pipe
 * without O_NONBLOCK). */
static uint64_t read_fd(void)
{
	static const uint64_t bad[] = { -1ULL, 1000, 0x7fffffff, 1ULL << 32 };

	switch (below(3)) {
	case 0: return env.file_fd;
	case 1: return env.pipe_r;
	default: return pick(bad, LEN(bad));
	}
}

/* An fd close, dup2 and dup3 may replace: not stdio and not the fds the
 * sanitizers rely on. */
static uint64_t victim_fd(void)
{
	uint64_t fd;

	do
		fd = chance(90) ? 3 + below(40) : pick(boundary, LEN(boundary));
	while (fd <= 2 || fd == (uint64_t)env.file_fd || fd == (uint64_t)env.pipe_r || fd == (uint64_t)env.pipe_w);
	return fd;
}

/* A process kill, tkill and tgkill may target: the worker itself, a child
 * of it, or nobody. Never the parent, pid 1, a process group or -1. */
static uint64_t pid_arg(void)
{
	switch (below(4)) {
	case 0: return env.self_pid;
	case 1: return env.last_child ? env.last_child : (uint64_t)env.self_pid;
	case 2: return 0x3ffffff0;
	default: return 0x80000000; /* INT_MIN: ESRCH on Linux */
	}
}

static uint64_t signal_arg(void)
{
	/* Mostly signals whose default is to ignore them (or 0): a worker
	 * should survive most of its kills to make long batches. */
	static const uint64_t harmless[] = { 0, SIGCHLD, SIGURG, SIGWINCH, SIGCONT };
	uint64_t sig;

	if (chance(10))
		return pick(boundary, LEN(boundary));
	if (chance(85))
		return pick(harmless, LEN(harmless));
	/* No stop signals: a stopped worker would look like a hang. */
	do
		sig = below(66);
	while (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU);
	return sig;
}

static uint64_t timespec_ptr(void)
{
	/* Placed in the scratch area's last page by the worker's setup. */
	uint64_t *ts = (uint64_t *)(env.scratch + (SCRATCH_PAGES - 1) * PAGE);

	switch (below(4)) {
	case 0: return bad_ptr();
	case 1: return (uint64_t)&ts[2];  /* tv_nsec 2e9: EINVAL */
	case 2: return (uint64_t)&ts[4];  /* tv_sec -1: EINVAL */
	default: return (uint64_t)&ts[0]; /* 1 us */
	}
}

static uint64_t path_ptr(void)
{
	static const char *const paths[] = {
		"/nonexistent", "/", "/etc/initramfs-check", "/proc/self/maps", "",
	};

	return chance(50) ? bad_ptr() : (uint64_t)paths[below(LEN(paths))];
}

/* An iovec array in the scratch area (or a bad pointer), entries with
 * pointers and lengths of every kind; with `all_bad`, no entry points to
 * memory. */
static uint64_t iov_ptr(int all_bad)
{
	uint64_t *iov = (uint64_t *)(env.scratch + (SCRATCH_PAGES - 2) * PAGE);

	if (chance(20))
		return bad_ptr();
	for (int i = 0; i < 8; i++) {
		iov[2 * i] = all_bad || chance(30) ? bad_ptr() : any_ptr();
		iov[2 * i + 1] = any_len();
	}
	return (uint64_t)iov;
}

static uint64_t sigaction_ptr(int sig)
{
	/* struct k_sigaction: handler, flags, restorer, mask. */
	uint64_t *sa = (uint64_t *)(env.scratch + (SCRATCH_PAGES - 3) * PAGE);
	int sync = sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE || sig == SIGTRAP;

	if (chance(20))
		return chance(50) ? 0 : bad_ptr();
	switch (below(4)) {
	case 0: sa[0] = (uint64_t)SIG_DFL; break;
	case 1: sa[0] = (uint64_t)SIG_IGN; break;
	/* A handler that returns would re-run a faulting instruction forever. */
	case 2: sa[0] = sync ? (uint64_t)SIG_DFL : (uint64_t)fuzz_handler; break;
	default: sa[0] = any_ptr(); break;
	}
	sa[1] = (chance(90) ? 0x04000000 /* SA_RESTORER */ : 0) | (rnd() & 0xdc000007);
	sa[2] = chance(80) ? (uint64_t)fuzz_restorer : any_ptr();
	sa[3] = rnd();
	return (uint64_t)sa;
}

/* Appends `v` in hex to `p`. */
static char *hex(char *p, uint64_t v)
{
	int shift = 60;

	*p++ = '0';
	*p++ = 'x';
	while (shift > 0 && (v >> shift) == 0)
		shift -= 4;
	for (; shift >= 0; shift -= 4)
		*p++ = "0123456789abcdef"[(v >> shift) & 15];
	return p;
}

/* "nr(a0, ..., a5)", written with a raw write: the worker has no usable
 * libc (FS may point anywhere). */
static void trace_call(uint64_t nr, const uint64_t *a)
{
	char line[160], *p = line;

	p = hex(p, nr);
	*p++ = '(';
	for (int i = 0; i < 6; i++) {
		p = hex(p, a[i]);
		*p++ = i < 5 ? ',' : ')';
	}
	*p++ = '\n';
	sc6(NR_write, 1, (long)line, p - line, 0, 0, 0);
}

static void trace_ret(long r)
{
	char line[32] = "  = ", *p = line + 4;

	if (r < 0 && r > -4096) {
		*p++ = '-';
		r = -r;
	}
	p = hex(p, (uint64_t)r);
	*p++ = '\n';
	sc6(NR_write, 1, (long)line, p - line, 0, 0, 0);
}

/* One random call; returns what the kernel returned. */
static long fuzz_one(void)
{
	uint64_t nr;
	uint64_t a[6];

	switch (below(20)) {
	case 0: case 1: case 2: case 3: case 4: case 5: case 6: case 7: case 8:
		nr = mm_calls[below(LEN(mm_calls))];
		break;
	case 9: case 10: case 11:
		nr = implemented[below(LEN(implemented))];
		break;
	default:
		nr = env.on_linux ? (uint64_t)implemented[below(LEN(implemented))] : below(NR_MAX + 1);
		break;
	}
	for (int i = 0; i < 6; i++) {
		switch (below(5)) {
		case 0: a[i] = pick(boundary, LEN(boundary)); break;
		case 1: a[i] = any_ptr(); break;
		case 2: a[i] = below(64); break;
		case 3: a[i] = rnd(); break;
		default: a[i] = fd_arg(); break;
		}
	}

	switch (nr) {
	case NR_pause: case NR_rt_sigsuspend:
		return 0; /* wait for a signal that never comes */
	case NR_reboot:
		return 0;
	case NR_exit: case NR_exit_group:
		/* Ends the batch early: rarely. */
		if (!chance(2))
			return 0;
		break;
	case NR_rt_sigreturn:
		/* Restores a frame of garbage from the stack: the worker dies. */
		if (!chance(5))
			return 0;
		break;
	case NR_mmap:
		a[0] = mm_addr(); a[1] = mm_len(); a[2] = prot(); a[3] = mmap_flags();
		a[4] = (a[3] & MAP_ANONYMOUS) && chance(80) ? -1ULL : fd_arg();
		a[5] = chance(70) ? 0 : chance(50) ? below(8) * PAGE : pick(boundary, LEN(boundary));
		break;
	case NR_munmap: case NR_mlock: case NR_munlock:
		a[0] = mm_addr(); a[1] = mm_len();
		break;
	case NR_mprotect:
		a[0] = mm_addr(); a[1] = mm_len(); a[2] = prot();
		break;
	case NR_mremap:
		a[0] = mm_addr(); a[1] = mm_len(); a[2] = mm_len();
		a[3] = chance(90) ? below(8) : rnd() & 0xffffffff; /* MAYMOVE, FIXED, DONTUNMAP */
		a[4] = chance(70) ? window_addr() : mm_addr();
		break;
	case NR_madvise: {
		static const uint64_t advice[] = {
			0, 1, 2, 3, 4, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23,
			24, 25, 100, 101, 0x7fffffff, -1ULL,
		};
		a[0] = mm_addr(); a[1] = mm_len(); a[2] = pick(advice, LEN(advice));
		/* MADV_HWPOISON and MADV_SOFT_OFFLINE take real pages off a
		 * Linux machine when run as root. */
		if (env.on_linux && (a[2] == 100 || a[2] == 101))
			a[2] = 4;
		/* MADV_REMOVE punches holes in shared memory: a range running
		 * from the window to the top of user space would zero the
		 * stats page the parent reads (as it would on Linux). */
		if (a[2] == 9) {
			a[0] = window_addr();
			a[1] = (1 + below(16)) * PAGE;
		}
		break;
	}
	case NR_mincore:
		a[0] = mm_addr(); a[1] = mm_len(); a[2] = chance(70) ? scratch_ptr() : any_ptr();
		break;
	case NR_msync:
		a[0] = mm_addr(); a[1] = mm_len(); a[2] = chance(90) ? below(8) : rnd();
		break;
	case NR_mlock2:
		a[0] = mm_addr(); a[1] = mm_len(); a[2] = chance(80) ? below(2) : rnd();
		break;
	case NR_mlockall:
		a[0] = chance(90) ? below(8) : rnd();
		break;
	case NR_brk:
		switch (below(4)) {
		case 0: a[0] = 0; break;
		case 1: a[0] = env.brk0 + below(1024) * PAGE - 512 * PAGE + below(2) * below(PAGE); break;
		case 2: a[0] = chance(50) ? pick(kernel_addrs, LEN(kernel_addrs)) : pick(noncanonical, LEN(noncanonical)); break;
		/* Not the window nor a valid far address: under mlockall(MCL_FUTURE),
		 * a heap of gigabytes would be populated. */
		default: a[0] = below(1 << 20); break;
		}
		break;
	case NR_read: case NR_pread64: case NR_preadv: case NR_preadv2: case NR_readv:
		a[0] = read_fd();
		if (nr == NR_readv || nr == NR_preadv || nr == NR_preadv2) {
			a[1] = iov_ptr(0);
			a[2] = chance(90) ? below(9) : pick(boundary, LEN(boundary));
		}
		break;
	case NR_write: case NR_pwrite64: case NR_writev: case NR_pwritev: case NR_pwritev2: {
		int vec = nr == NR_writev || nr == NR_pwritev || nr == NR_pwritev2;
		/* The console only with bad buffers: no garbage in the test's
		 * output. Otherwise the read-only file, the non-blocking pipe
		 * or a bad fd. */
		int console = chance(30);
		if (console) {
			a[0] = 1 + below(2);
		} else {
			a[0] = read_fd();
			if (a[0] == (uint64_t)env.pipe_r)
				a[0] = env.pipe_w;
		}
		if (vec) {
			a[1] = iov_ptr(console);
			a[2] = chance(90) ? below(9) : pick(boundary, LEN(boundary));
		} else if (console) {
			a[1] = bad_ptr();
		}
		break;
	}
	case NR_open: case NR_openat: {
		int at = nr == NR_openat;
		a[at] = path_ptr();
		if (at)
			a[0] = chance(80) ? (uint64_t)-100 /* AT_FDCWD */ : fd_arg();
		a[at + 1] = chance(50) ? (O_RDONLY | (chance(30) ? O_CLOEXEC : 0)) : rnd() & 0xffffffff;
		/* Under Linux, as root: nothing that creates or truncates a file. */
		if (env.on_linux)
			a[at + 1] &= ~(uint64_t)(O_CREAT | O_TRUNC | O_WRONLY | O_RDWR | O_TMPFILE | O_APPEND);
		break;
	}
	case NR_close:
		a[0] = victim_fd();
		break;
	case NR_dup2: case NR_dup3:
		a[0] = fd_arg();
		a[1] = victim_fd();
		a[2] = chance(80) ? (chance(50) ? O_CLOEXEC : 0) : rnd();
		break;
	case NR_fcntl: {
		static const uint64_t cmds[] = { F_DUPFD, F_GETFD, F_SETFD, F_GETFL, F_SETFL, F_DUPFD_CLOEXEC,
						 0x7fffffff, -1ULL };
		a[0] = fd_arg();
		a[1] = pick(cmds, LEN(cmds));
		/* No fd may lose O_NONBLOCK: they may share the pipe's file. */
		if (a[1] == F_SETFL)
			a[2] = (a[2] & ~(uint64_t)O_ASYNC) | O_NONBLOCK;
		break;
	}
	case NR_ioctl:
		if (env.on_linux)
			a[0] = read_fd(); /* never a terminal of the machine running it */
		if (chance(50))
			a[1] = 0x5413; /* TIOCGWINSZ */
		break;
	case NR_nanosleep:
		a[0] = timespec_ptr();
		break;
	case NR_futex:
		/* Every wait times out (or fails): FUTEX_WAIT's relative 1 us,
		 * FUTEX_WAIT_BITSET's absolute time long past. */
		a[3] = timespec_ptr();
		break;
	case NR_clock_nanosleep:
		/* CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME or invalid ones:
		 * not a CPU-time clock, which a sleeping worker never advances. */
		a[0] = chance(80) ? (uint64_t[]){ 0, 1, 7 }[below(3)] : 1000 + below(1000);
		a[1] = below(2); /* 0 or TIMER_ABSTIME: both end at once for 1 us */
		a[2] = timespec_ptr();
		break;
	case NR_wait4:
		a[0] = chance(50) ? -1ULL : pid_arg();
		a[2] = (chance(80) ? 0 : rnd() & 0xffffffff) | WNOHANG;
		break;
	case NR_kill:
		a[0] = pid_arg(); a[1] = signal_arg();
		break;
	case NR_rt_sigtimedwait:
		/* Never without a timeout: nobody sends what it waits for. */
		a[2] = timespec_ptr();
		a[3] = chance(90) ? 8 : pick(boundary, LEN(boundary));
		break;
	case NR_sched_setaffinity:
		/* Under Linux, as root, a random pid could pin a system process. */
		a[0] = pid_arg();
		break;
	case NR_tkill:
		a[0] = pid_arg(); a[1] = signal_arg();
		break;
	case NR_tgkill:
		a[0] = pid_arg(); a[1] = pid_arg(); a[2] = signal_arg();
		break;
	case NR_rt_sigaction:
		a[0] = signal_arg();
		a[1] = sigaction_ptr((int)a[0]);
		a[2] = chance(70) ? scratch_ptr() : any_ptr();
		a[3] = chance(90) ? 8 : pick(boundary, LEN(boundary));
		break;
	case NR_rt_sigprocmask:
		a[0] = chance(90) ? below(3) : rnd();
		a[1] = chance(70) ? scratch_ptr() : any_ptr();
		a[3] = chance(90) ? 8 : pick(boundary, LEN(boundary));
		break;
	case NR_execve:
		a[0] = path_ptr();
		break;
	case NR_execveat:
		a[1] = path_ptr();
		a[4] &= ~(uint64_t)AT_EMPTY_PATH; /* would run the program open at a[0] */
		break;
	case NR_arch_prctl:
		if (chance(70))
			a[0] = 0x1001 + below(4); /* ARCH_SET_GS, SET_FS, GET_FS, GET_GS */
		break;
	case NR_clone:
		/* A stop signal as the exit signal would stop the worker. */
		if (chance(70) || (a[0] & 0xff) == SIGSTOP || (a[0] & 0xff) == SIGTSTP || (a[0] & 0xff) == SIGTTIN ||
		    (a[0] & 0xff) == SIGTTOU)
			a[0] = (rnd() & 0x7fffff00) | (signal_arg() & 0xff);
		break;
	default:
		break;
	}

	stats->calls++;
	if (nr <= NR_MAX)
		stats->nr_called[nr]++;
	stats->last[0] = nr;
	for (int i = 0; i < 6; i++)
		stats->last[i + 1] = a[i];
	if (trace)
		trace_call(nr, a);
	long r;
	if (nr == NR_fork || nr == NR_vfork || nr == NR_clone) {
		r = sc6_fork(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
		if (r > 0)
			env.last_child = r;
	} else {
		r = sc6(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
	}
	/* A System V segment outlives its creator (Linux too, without
	 * kernel.shm_rmid_forced): marked for removal at once, it goes with
	 * its last detach, at the latest the worker's exit. */
	if (nr == NR_shmget && r >= 0)
		sc6(NR_shmctl, r, 0 /* IPC_RMID */, 0, 0, 0, 0);
	if (trace)
		trace_ret(r);
	return r;
}

static void worker(uint64_t seed, long calls)
{
	uint64_t *ts = (uint64_t *)(env.scratch + (SCRATCH_PAGES - 1) * PAGE);

	rng = seed;
	env.self_pid = sc6(NR_getpid, 0, 0, 0, 0, 0, 0);
	env.brk0 = sc6(NR_brk, 0, 0, 0, 0, 0, 0);
	for (long i = 0; i < calls; i++) {
		/* Refreshed each time: a call may have written over them. */
		ts[0] = 0; ts[1] = 1000; ts[2] = 0; ts[3] = 2000000000; ts[4] = -1ULL; ts[5] = 0;
		long r = fuzz_one();
		if (r >= 0 || r < -4095)
			stats->ok++;
		else
			stats->err[-r < 512 ? -r : 0]++;
	}
	sc6(NR_exit_group, 0, 0, 0, 0, 0, 0);
}

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ULL + t.tv_nsec;
}

/* Waits for the worker, killing it if it starts no call for the
 * watchdog's time; returns its wait status, or -1 if it had to be killed. */
static int reap(pid_t pid)
{
	uint64_t progress = now_ns(), calls = stats->calls, nap = 200000;
	int status = 0;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return status;
		if (r < 0)
			return -2;
		if (stats->calls != calls) {
			calls = stats->calls;
			progress = now_ns();
		} else if (now_ns() - progress > WATCHDOG_NS) {
			/* Said before the kill: a worker the kernel cannot
			 * kill would leave the waitpid below waiting. */
			const uint64_t *l = stats->last;
			utest_print("syscall_fuzz: worker %d started no call for %llu s, last call "
				    "%llu(%#llx, %#llx, %#llx, %#llx, %#llx, %#llx): killing it\n",
				    pid, WATCHDOG_NS / 1000000000ULL, (unsigned long long)l[0],
				    (unsigned long long)l[1], (unsigned long long)l[2], (unsigned long long)l[3],
				    (unsigned long long)l[4], (unsigned long long)l[5], (unsigned long long)l[6]);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
		struct timespec t = { 0, (long)nap };
		nanosleep(&t, NULL);
		if (nap < 20000000)
			nap *= 2;
	}
}

static int mode_is_linux(void)
{
	struct utsname u;

	return uname(&u) != 0 || strcmp(u.release, "6.1.0-mm") != 0;
}

int main(int argc, char **argv)
{
	uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 0) : DEFAULT_SEED;
	long batches = argc > 2 ? strtol(argv[2], NULL, 0) : DEFAULT_BATCHES;
	long calls = argc > 3 ? strtol(argv[3], NULL, 0) : DEFAULT_CALLS;
	/* TRACE: stop after this batch, printing each of its calls and their
	 * results (the batches before it run too: they leave state behind,
	 * in the pipe, the file offset and the kernel), each announced. */
	long only = argc > 4 ? strtol(argv[4], NULL, 0) : -1;
	long exited = 0, signalled = 0, timeouts = 0, lost = 0;
	long by_signal[65] = { 0 };
	int pipefd[2];

	utest_start(argv[0]);
	env.on_linux = mode_is_linux();
	utest_print("syscall_fuzz: seed %#llx, %ld batches of %ld calls, mode %s\n", (unsigned long long)seed,
		    batches, calls,
		    env.on_linux ? "linux (only the numbers our kernel implements)"
				 : "mm-kernel (every number 0..=450 but pause, rt_sigsuspend, reboot)");

	/* A regular file to read and map: the program itself (the test
	 * harness runs it by its bare name). */
	const char *self = strchr(argv[0], '/') ? argv[0] : "/bin/syscall_fuzz";
	env.file_fd = open(self, O_RDONLY | O_CLOEXEC);
	CHECK(env.file_fd >= 0, "open %s", self);
	CHECK(pipe2(pipefd, O_NONBLOCK | O_CLOEXEC) == 0, "pipe2");
	env.pipe_r = pipefd[0];
	env.pipe_w = pipefd[1];
	uint8_t *scratch = mmap(NULL, (SCRATCH_PAGES + 1) * PAGE, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(scratch != MAP_FAILED, "mmap scratch");
	CHECK(scratch != MAP_FAILED && mprotect(scratch + SCRATCH_PAGES * PAGE, PAGE, PROT_NONE) == 0,
	      "guard page after scratch");
	env.scratch = scratch;
	stats = mmap(NULL, sizeof(*stats), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(stats != MAP_FAILED, "mmap shared stats");
	if (utest_failed)
		return utest_done();

	uint64_t start = now_ns();
	if (only >= 0)
		batches = only + 1;
	for (long b = 0; b < batches; b++) {
		uint64_t s = seed ^ (0x9e3779b97f4a7c15ULL * (uint64_t)(b + 1));
		uint64_t sub = splitmix64(&s);
		trace = b == only;
		if (only >= 0)
			utest_print("syscall_fuzz: batch %ld, sub-seed %#llx\n", b, (unsigned long long)sub);
		pid_t pid = fork();
		if (pid == 0)
			worker(sub, calls);
		if (pid < 0) {
			CHECK(pid > 0, "fork worker %ld", b);
			break;
		}
		int status = reap(pid);
		if (status == -1) {
			timeouts++;
			utest_print("syscall_fuzz: batch %ld (sub-seed %#llx) killed by the watchdog\n", b,
				    (unsigned long long)sub);
		} else if (status == -2) {
			lost++;
		} else if (WIFSIGNALED(status)) {
			signalled++;
			by_signal[WTERMSIG(status) & 63]++;
		} else {
			exited++;
		}
		if ((b + 1) % 25 == 0)
			utest_print("syscall_fuzz: %ld batches, %llu calls, %llu ms\n", b + 1,
				    (unsigned long long)stats->calls, (unsigned long long)((now_ns() - start) / 1000000));
	}
	/* Children a clone(CLONE_PARENT) handed to us. */
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;

	uint64_t other = 0, covered = 0;
	for (int e = 0; e < 512; e++)
		if (e != EPERM && e != ENOSYS && e != EFAULT && e != EINVAL && e != ENOMEM && e != EBADF)
			other += stats->err[e];
	for (int n = 0; n <= NR_MAX; n++)
		covered += stats->nr_called[n] != 0;
	char sigs[512] = "";
	for (int sig = 1, at = 0; sig <= 64 && at < (int)sizeof(sigs) - 16; sig++)
		if (by_signal[sig & 63])
			at += snprintf(sigs + at, sizeof(sigs) - at, " %d:%ld", sig, by_signal[sig & 63]);
	utest_print("syscall_fuzz: %llu calls, %llu numbers, %llu ms; batches: %ld ended, %ld killed by a signal "
		    "(signal:count%s), %ld timed out\n",
		    (unsigned long long)stats->calls, (unsigned long long)covered,
		    (unsigned long long)((now_ns() - start) / 1000000), exited, signalled, sigs, timeouts);
	utest_print("syscall_fuzz: results: ok %llu, ENOSYS %llu, EFAULT %llu, EINVAL %llu, ENOMEM %llu, "
		    "EBADF %llu, EPERM %llu, other %llu\n",
		    (unsigned long long)stats->ok, (unsigned long long)stats->err[ENOSYS],
		    (unsigned long long)stats->err[EFAULT], (unsigned long long)stats->err[EINVAL],
		    (unsigned long long)stats->err[ENOMEM], (unsigned long long)stats->err[EBADF],
		    (unsigned long long)stats->err[EPERM], (unsigned long long)other);
	CHECK(lost == 0, "every worker was reaped");
	CHECK(timeouts == 0, "no batch outlived the watchdog (no call blocked)");
	CHECK(exited + signalled == batches, "all %ld batches ran", batches);
	CHECK(stats->calls >= (uint64_t)batches * calls / 4, "most calls were made (%llu)",
	      (unsigned long long)stats->calls);
	return utest_done();
}
