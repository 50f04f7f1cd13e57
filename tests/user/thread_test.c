/*
 * Threads (musl pthreads over clone(CLONE_VM | CLONE_THREAD | ...)):
 * thread ids, an address space changed by several threads at once on
 * several CPUs and checked against each thread's model, faults racing
 * on the same ptes, a page munmapped, write-protected or moved by one
 * thread while another keeps using it (the user must fault once the call
 * has returned: no stale translation survives, no freed page is read),
 * signals to a thread and
 * to the process, timers that outlive the thread that set them, and how a process with threads ends: exit_group from
 * any thread, a fatal signal in one thread, the main thread leaving with
 * pthread_exit, execve from a thread.
 *
 * Passes on Linux too. Run with the program's own path as argv[0] (it
 * re-executes itself).
 */
#define _GNU_SOURCE
#include "utest.h"

#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>

#define PAGE 4096UL
#define NTHREADS 4

static pid_t sys_gettid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ---- ids ---- */

struct ids {
	pid_t pid, tid, ppid;
};

static void *ids_thread(void *arg)
{
	struct ids *ids = arg;
	ids->pid = getpid();
	ids->tid = sys_gettid();
	ids->ppid = getppid();
	return (void *)(uintptr_t)0x1234;
}

static void test_ids(void)
{
	struct ids ids = { 0 };
	pthread_t t;
	void *ret = NULL;

	CHECK(sys_gettid() == getpid(), "the main thread's tid is the pid");
	CHECK(pthread_create(&t, NULL, ids_thread, &ids) == 0, "pthread_create");
	CHECK(pthread_join(t, &ret) == 0 && ret == (void *)(uintptr_t)0x1234, "pthread_join returns the thread's value");
	CHECK(ids.pid == getpid(), "a thread's getpid is the process's (%d, %d)", ids.pid, getpid());
	CHECK(ids.tid != getpid() && ids.tid > 0, "a thread has a tid of its own (%d)", ids.tid);
	CHECK(ids.ppid == getppid(), "a thread's getppid is the process's parent");
}

/* ---- /proc with threads, and the futex-based pthread primitives ---- */

static atomic_int proc_threads_stop;
static atomic_int proc_threads_ready;

static void *proc_sleeper(void *arg)
{
	atomic_int *tid = arg;
	atomic_store(tid, sys_gettid());
	atomic_fetch_add(&proc_threads_ready, 1);
	while (!atomic_load(&proc_threads_stop))
		sleep_ms(1);
	return NULL;
}

/* The number after "Threads:" in /proc/self/status, or -1. */
static int status_threads(void)
{
	char buf[4096];
	if (utest_read_file("/proc/self/status", buf, sizeof(buf)) <= 0)
		return -1;
	char *at = strstr(buf, "\nThreads:\t");
	return at ? atoi(at + 10) : -1;
}

/* Whether /proc/self/task lists exactly `n` threads, `tids` among them. */
static int task_dir_lists(const atomic_int *tids, int n)
{
	DIR *d = opendir("/proc/self/task");
	int found = 0, entries = 0;
	struct dirent *e;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		entries++;
		int tid = atoi(e->d_name);
		if (tid == getpid())
			found++;
		for (int i = 0; i < n - 1; i++)
			if (tid == atomic_load(&tids[i]))
				found++;
	}
	closedir(d);
	return entries == n && found == n;
}

static pthread_mutex_t counter_lock = PTHREAD_MUTEX_INITIALIZER;
static long counter;

static void *count_up(void *arg)
{
	(void)arg;
	for (int i = 0; i < 20000; i++) {
		pthread_mutex_lock(&counter_lock);
		counter++;
		pthread_mutex_unlock(&counter_lock);
	}
	return NULL;
}

static pthread_mutex_t pp_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pp_cond = PTHREAD_COND_INITIALIZER;
static int pp_turn, pp_rounds;

static void *ping_pong(void *arg)
{
	int me = (int)(uintptr_t)arg;
	for (int i = 0; i < 500; i++) {
		pthread_mutex_lock(&pp_lock);
		while (pp_turn != me)
			pthread_cond_wait(&pp_cond, &pp_lock);
		pp_turn = !me;
		pp_rounds++;
		pthread_cond_broadcast(&pp_cond);
		pthread_mutex_unlock(&pp_lock);
	}
	return NULL;
}

static void test_proc_and_sync(void)
{
	enum { N = 3 };
	static atomic_int tids[N];
	pthread_t t[N];

	CHECK(status_threads() == 1, "/proc/self/status says Threads: 1 (%d)", status_threads());
	atomic_store(&proc_threads_stop, 0);
	atomic_store(&proc_threads_ready, 0);
	for (int i = 0; i < N; i++)
		pthread_create(&t[i], NULL, proc_sleeper, &tids[i]);
	while (atomic_load(&proc_threads_ready) < N)
		sleep_ms(1);
	CHECK(status_threads() == N + 1, "/proc/self/status says Threads: %d with %d threads (%d)", N + 1, N + 1,
	      status_threads());
	CHECK(task_dir_lists(tids, N + 1), "/proc/self/task lists the %d thread ids", N + 1);
	char path[64], buf[256];
	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", atomic_load(&tids[0]));
	long len = utest_read_file(path, buf, sizeof(buf));
	char prefix[32];
	snprintf(prefix, sizeof(prefix), "%d (", atomic_load(&tids[0]));
	CHECK(len > 0 && strncmp(buf, prefix, strlen(prefix)) == 0, "%s starts with the thread's id", path);
	atomic_store(&proc_threads_stop, 1);
	for (int i = 0; i < N; i++)
		pthread_join(t[i], NULL);
	/* A join returns at the thread's clear_child_tid wake, before the
	 * thread has left its process (on Linux too): poll a while. */
	for (int i = 0; i < 2000 && status_threads() != 1; i++)
		sleep_ms(1);
	CHECK(status_threads() == 1, "Threads: 1 again after the joins (%d)", status_threads());

	pthread_t c[NTHREADS];
	counter = 0;
	for (int i = 0; i < NTHREADS; i++)
		pthread_create(&c[i], NULL, count_up, NULL);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(c[i], NULL);
	CHECK(counter == NTHREADS * 20000L, "a pthread mutex keeps %d threads' increments apart (%ld)", NTHREADS,
	      counter);
	pthread_t a, b;
	pp_turn = 0;
	pp_rounds = 0;
	pthread_create(&a, NULL, ping_pong, (void *)0);
	pthread_create(&b, NULL, ping_pong, (void *)1);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	CHECK(pp_rounds == 1000, "a condition variable hands the turn back and forth 1000 times (%d)", pp_rounds);
}

/* ---- CPU time over threads, a SIGEV_THREAD timer ---- */

static atomic_int burner_tid;

/* Spins until it has had 200 ms of CPU time of its own. */
static void *burner(void *arg)
{
	(void)arg;
	struct timespec ts;
	atomic_store(&burner_tid, sys_gettid());
	do
		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	while (ts.tv_sec == 0 && ts.tv_nsec < 200 * 1000000L);
	return NULL;
}

static double cpu_seconds(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static atomic_int timer_fired;
static atomic_int timer_tid;

static void on_timer(union sigval v)
{
	atomic_store(&timer_tid, sys_gettid());
	atomic_store(&timer_fired, v.sival_int);
}

static void test_usage_and_timers(void)
{
	pthread_t t;
	double thread0 = cpu_seconds(CLOCK_THREAD_CPUTIME_ID);
	pthread_create(&t, NULL, burner, NULL);
	pthread_join(t, NULL);
	/* Its time joins the process's as it leaves (after the join). */
	for (int i = 0; i < 2000 && syscall(SYS_tgkill, getpid(), atomic_load(&burner_tid), 0) == 0; i++)
		sleep_ms(1);
	double thread = cpu_seconds(CLOCK_THREAD_CPUTIME_ID) - thread0;
	double process = cpu_seconds(CLOCK_PROCESS_CPUTIME_ID);
	struct rusage self, me;
	getrusage(RUSAGE_SELF, &self);
	getrusage(RUSAGE_THREAD, &me);
	double self_s = self.ru_utime.tv_sec + self.ru_utime.tv_usec / 1e6 + self.ru_stime.tv_sec +
			self.ru_stime.tv_usec / 1e6;
	double me_s = me.ru_utime.tv_sec + me.ru_utime.tv_usec / 1e6 + me.ru_stime.tv_sec + me.ru_stime.tv_usec / 1e6;
	utest_print("# a thread spun for 200 ms of CPU: process CPU %.3f s, main thread %.3f s; rusage self %.3f s, "
		    "thread %.3f s\n",
		    process, thread, self_s, me_s);
	CHECK(process >= thread + 0.2, "CLOCK_PROCESS_CPUTIME_ID counts the joined thread's time (%.3f, %.3f)", process,
	      thread);
	/* getrusage's times are sampled by the tick here (exact on Linux). */
	CHECK(self_s >= me_s + 0.02, "getrusage(RUSAGE_SELF) counts it, RUSAGE_THREAD does not (%.3f, %.3f)", self_s,
	      me_s);

	struct sigevent ev = { 0 };
	timer_t timer;
	ev.sigev_notify = SIGEV_THREAD;
	ev.sigev_notify_function = on_timer;
	ev.sigev_value.sival_int = 77;
	CHECK(timer_create(CLOCK_MONOTONIC, &ev, &timer) == 0, "timer_create with SIGEV_THREAD");
	struct itimerspec its = { { 0, 0 }, { 0, 20 * 1000000 } };
	CHECK(timer_settime(timer, 0, &its, NULL) == 0, "timer_settime 20 ms");
	for (int i = 0; i < 2000 && !atomic_load(&timer_fired); i++)
		sleep_ms(1);
	CHECK(atomic_load(&timer_fired) == 77 && atomic_load(&timer_tid) != sys_gettid(),
	      "the timer's function ran in a thread of its own with its value (%d)", atomic_load(&timer_fired));
	timer_delete(timer);
}

static timer_t armer_timer;
static atomic_int armer_tid;

/* Arms a POSIX timer (SIGUSR2) and ITIMER_REAL, 300 ms each, and exits. */
static void *timer_armer(void *arg)
{
	(void)arg;
	atomic_store(&armer_tid, sys_gettid());
	struct sigevent ev = { 0 };
	ev.sigev_notify = SIGEV_SIGNAL;
	ev.sigev_signo = SIGUSR2;
	ev.sigev_value.sival_int = 99;
	struct itimerspec its = { { 0, 0 }, { 0, 300 * 1000000 } };
	struct itimerval itv = { { 0, 0 }, { 0, 300 * 1000 } };
	if (timer_create(CLOCK_MONOTONIC, &ev, &armer_timer) != 0 || timer_settime(armer_timer, 0, &its, NULL) != 0 ||
	    setitimer(ITIMER_REAL, &itv, NULL) != 0)
		return (void *)1;
	return NULL;
}

/* A process's timers belong to it, not to the thread that set them
 * (Linux keeps them in signal_struct): they fire after that thread has
 * gone. */
static void test_timers_outlive_their_thread(void)
{
	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGALRM);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	pthread_t t;
	void *ret = (void *)1;
	pthread_create(&t, NULL, timer_armer, NULL);
	pthread_join(t, &ret);
	CHECK(ret == NULL, "a thread arms a POSIX timer and ITIMER_REAL, then exits");
	/* The join returns before the thread is gone; wait until it is. */
	for (int i = 0; i < 2000 && syscall(SYS_tgkill, getpid(), atomic_load(&armer_tid), 0) == 0; i++)
		sleep_ms(1);
	struct timespec limit = { 10, 0 };
	siginfo_t si;
	int got_usr2 = 0, got_alrm = 0, sig;
	while (!(got_usr2 && got_alrm) && (sig = sigtimedwait(&set, &si, &limit)) > 0) {
		if (sig == SIGUSR2 && si.si_code == SI_TIMER && si.si_value.sival_int == 99)
			got_usr2 = 1;
		if (sig == SIGALRM)
			got_alrm = 1;
	}
	CHECK(got_usr2, "the POSIX timer's SIGUSR2 (SI_TIMER, its value) comes after its thread has gone");
	CHECK(got_alrm, "ITIMER_REAL's SIGALRM comes after its thread has gone");
	timer_delete(armer_timer);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* ---- the concurrent address-space model ---- */

#define SLOTS 8
#define ROUNDS 300

struct region {
	unsigned char *addr;
	size_t pages;
	int prot;
	unsigned char seed; /* page i holds (seed + i) in every byte checked */
};

struct worker {
	int index;
	unsigned seed;
	struct region slot[SLOTS];
	long ops, checks, mismatches, failures;
	int cpu;
};

static unsigned next_rand(unsigned *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* The bytes of page i that the model checks: first, middle, last. */
static void fill_page(unsigned char *p, unsigned char v)
{
	p[0] = v;
	p[PAGE / 2] = v;
	p[PAGE - 1] = v;
}

static int page_matches(const unsigned char *p, unsigned char v)
{
	return p[0] == v && p[PAGE / 2] == v && p[PAGE - 1] == v;
}

static void verify(struct worker *w, struct region *r)
{
	for (size_t i = 0; i < r->pages; i++) {
		w->checks++;
		if (!page_matches(r->addr + i * PAGE, (unsigned char)(r->seed + i)))
			w->mismatches++;
	}
}

static void *model_worker(void *arg)
{
	struct worker *w = arg;

	w->cpu = sched_getcpu();
	for (int round = 0; round < ROUNDS; round++) {
		struct region *r = &w->slot[next_rand(&w->seed) % SLOTS];
		unsigned op = next_rand(&w->seed) % 5;

		w->ops++;
		if (!r->addr) {
			/* map and fill */
			size_t pages = 1 + next_rand(&w->seed) % 16;
			void *p = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (p == MAP_FAILED) {
				w->failures++;
				continue;
			}
			r->addr = p;
			r->pages = pages;
			r->prot = PROT_READ | PROT_WRITE;
			r->seed = (unsigned char)(w->index * 61 + round);
			for (size_t i = 0; i < pages; i++)
				fill_page(r->addr + i * PAGE, (unsigned char)(r->seed + i));
			continue;
		}
		switch (op) {
		case 0: /* unmap all of it */
			verify(w, r);
			if (munmap(r->addr, r->pages * PAGE) != 0)
				w->failures++;
			r->addr = NULL;
			break;
		case 1: /* unmap the upper half */
			if (r->pages > 1) {
				size_t keep = r->pages / 2;
				if (munmap(r->addr + keep * PAGE, (r->pages - keep) * PAGE) != 0)
					w->failures++;
				r->pages = keep;
			}
			verify(w, r);
			break;
		case 2: /* read-only, check, writable again */
			if (mprotect(r->addr, r->pages * PAGE, PROT_READ) != 0)
				w->failures++;
			verify(w, r);
			if (mprotect(r->addr, r->pages * PAGE, PROT_READ | PROT_WRITE) != 0)
				w->failures++;
			break;
		case 3: { /* grow, maybe moving */
			size_t more = r->pages + 1 + next_rand(&w->seed) % 8;
			void *p = mremap(r->addr, r->pages * PAGE, more * PAGE, MREMAP_MAYMOVE);
			if (p == MAP_FAILED) {
				w->failures++;
				break;
			}
			r->addr = p;
			for (size_t i = r->pages; i < more; i++)
				fill_page(r->addr + i * PAGE, (unsigned char)(r->seed + i));
			r->pages = more;
			verify(w, r);
			break;
		}
		default: /* rewrite with a new seed */
			r->seed = (unsigned char)(r->seed + 7);
			for (size_t i = 0; i < r->pages; i++)
				fill_page(r->addr + i * PAGE, (unsigned char)(r->seed + i));
			verify(w, r);
			break;
		}
	}
	for (int s = 0; s < SLOTS; s++) {
		if (w->slot[s].addr) {
			verify(w, &w->slot[s]);
			munmap(w->slot[s].addr, w->slot[s].pages * PAGE);
		}
	}
	return NULL;
}

/* All threads fault the same pages at once, each writing its own byte. */
#define SHARED_PAGES 256
static unsigned char *shared_region;
static atomic_int shared_go;

static void *shared_faulter(void *arg)
{
	int index = (int)(uintptr_t)arg;

	while (!atomic_load(&shared_go))
		;
	for (int i = 0; i < SHARED_PAGES; i++) {
		int page = (i * 7 + index * 64) % SHARED_PAGES;
		shared_region[page * PAGE + 8 + index] = (unsigned char)(page ^ index);
	}
	return NULL;
}

static void test_model(void)
{
	struct worker w[NTHREADS];
	pthread_t t[NTHREADS];
	long ops = 0, checks = 0, mismatches = 0, failures = 0;
	int created = 0;

	memset(w, 0, sizeof(w));
	for (int i = 0; i < NTHREADS; i++) {
		w[i].index = i;
		w[i].seed = 0x9e3779b9u * (i + 1);
		if (pthread_create(&t[i], NULL, model_worker, &w[i]) == 0)
			created++;
	}
	CHECK(created == NTHREADS, "%d threads created to map, unmap, protect and remap at once", NTHREADS);
	for (int i = 0; i < created; i++) {
		pthread_join(t[i], NULL);
		ops += w[i].ops;
		checks += w[i].checks;
		mismatches += w[i].mismatches;
		failures += w[i].failures;
	}
	utest_print("# model: %ld operations, %ld page checks; CPUs %d %d %d %d\n", ops, checks, w[0].cpu, w[1].cpu,
		    w[2].cpu, w[3].cpu);
	CHECK(failures == 0, "no mmap, munmap, mprotect or mremap failed (%ld)", failures);
	CHECK(mismatches == 0 && checks > 0, "every page read back holds what its thread's model says (%ld wrong)",
	      mismatches);

	shared_region = mmap(NULL, SHARED_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(shared_region != MAP_FAILED, "mmap of the shared region");
	if (shared_region == MAP_FAILED)
		return;
	atomic_store(&shared_go, 0);
	for (int i = 0; i < NTHREADS; i++)
		pthread_create(&t[i], NULL, shared_faulter, (void *)(uintptr_t)i);
	atomic_store(&shared_go, 1);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	long wrong = 0;
	for (int page = 0; page < SHARED_PAGES; page++)
		for (int i = 0; i < NTHREADS; i++)
			if (shared_region[page * PAGE + 8 + i] != (unsigned char)(page ^ i))
				wrong++;
	CHECK(wrong == 0, "%d threads faulting the same %d pages at once lose no write (%ld lost)", NTHREADS,
	      SHARED_PAGES, wrong);
	munmap(shared_region, SHARED_PAGES * PAGE);
}

/* ---- a mapping changed under a thread on another CPU ---- */

#define UNMAP_ROUNDS 200
#define MAGIC 0x5a

/* What the main thread does to the page the other thread uses. */
enum change { UNMAP, PROTECT, MOVE };
static const char *const change_name[] = { "munmap", "mprotect(PROT_READ)", "mremap to elsewhere" };

static volatile unsigned char *volatile target;
static enum change change;
static atomic_int changed;
static atomic_int round_no;
static atomic_int user_in;
static __thread sigjmp_buf user_jb;
static __thread volatile uintptr_t user_fault_addr;

static void user_segv(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	user_fault_addr = (uintptr_t)si->si_addr;
	siglongjmp(user_jb, 1);
}

struct user_result {
	long faulted, stale, wrong_value, wrong_addr;
	int cpu;
};

/* Reads (or, against mprotect, writes) the page until it faults. */
static void *page_user(void *arg)
{
	struct user_result *res = arg;

	res->cpu = sched_getcpu();
	for (int r = 1; r <= UNMAP_ROUNDS; r++) {
		while (atomic_load(&round_no) != r)
			;
		volatile unsigned char *p = target;
		if (sigsetjmp(user_jb, 1) == 0) {
			atomic_store(&user_in, r);
			for (;;) {
				int done = atomic_load(&changed);
				if (change == PROTECT) {
					*p = MAGIC;
				} else if (*p != MAGIC) {
					res->wrong_value++;
				}
				if (done) {
					/* The change had returned, yet the access went through. */
					res->stale++;
					break;
				}
			}
		} else {
			res->faulted++;
			if (user_fault_addr != (uintptr_t)p)
				res->wrong_addr++;
		}
		atomic_store(&round_no, -r);
	}
	return NULL;
}

static void test_change_under_user(enum change what)
{
	struct sigaction sa = { 0 }, old;
	struct user_result res = { 0 };
	pthread_t t;

	change = what;
	sa.sa_sigaction = user_segv;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigaction(SIGSEGV, &sa, &old);
	atomic_store(&round_no, 0);
	atomic_store(&user_in, 0);
	CHECK(pthread_create(&t, NULL, page_user, &res) == 0, "%s: thread created", change_name[what]);
	int rounds = 0;
	for (int r = 1; r <= UNMAP_ROUNDS; r++) {
		unsigned char *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		/* Mapped now, so that it cannot take p's address; its first
		 * touch after the change likely gets p's freed page. */
		unsigned char *q = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		/* Where mremap moves p: a reserved hole of its own. */
		unsigned char *hole = mmap(NULL, PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED || q == MAP_FAILED || hole == MAP_FAILED)
			break;
		*p = MAGIC;
		target = p;
		atomic_store(&changed, 0);
		atomic_store(&round_no, r);
		/* Let the thread load the translation and loop on it. */
		while (atomic_load(&user_in) != r)
			;
		for (volatile int spin = 0; spin < 2000; spin++)
			;
		unsigned char *moved = NULL;
		if (what == UNMAP)
			munmap(p, PAGE);
		else if (what == PROTECT)
			mprotect(p, PAGE, PROT_READ);
		else
			moved = mremap(p, PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, hole);
		atomic_store(&changed, 1);
		memset(q, 0xa5, PAGE);
		while (atomic_load(&round_no) != -r)
			;
		if (what == PROTECT)
			munmap(p, PAGE);
		if (what == MOVE && moved != hole)
			res.wrong_value++;
		munmap(q, PAGE);
		munmap(hole, PAGE);
		rounds++;
	}
	atomic_store(&round_no, UNMAP_ROUNDS + 1);
	pthread_join(t, NULL);
	sigaction(SIGSEGV, &old, NULL);
	utest_print("# %s under a thread: main on CPU %d, the other on CPU %d, %ld faults in %d rounds\n",
		    change_name[what], sched_getcpu(), res.cpu, res.faulted, rounds);
	CHECK(rounds == UNMAP_ROUNDS, "%s: %d rounds run (%d)", change_name[what], UNMAP_ROUNDS, rounds);
	CHECK(res.stale == 0, "%s: no access after it returned went through a stale translation (%ld did)",
	      change_name[what], res.stale);
	CHECK(res.wrong_value == 0, "%s: the thread never saw another page's bytes (%ld times)", change_name[what],
	      res.wrong_value);
	CHECK(res.faulted == UNMAP_ROUNDS && res.wrong_addr == 0,
	      "%s: the thread took SIGSEGV at the page in each round (%ld, %ld at another address)",
	      change_name[what], res.faulted, res.wrong_addr);
}

/* ---- signals ---- */

static atomic_int usr1_tid, usr2_tid;
static atomic_int sig_thread_tid;
static atomic_int sig_thread_stop;

static void on_usr1(int sig)
{
	(void)sig;
	atomic_store(&usr1_tid, sys_gettid());
}

static void on_usr2(int sig)
{
	(void)sig;
	atomic_store(&usr2_tid, sys_gettid());
}

static void *sig_thread(void *arg)
{
	(void)arg;
	atomic_store(&sig_thread_tid, sys_gettid());
	while (!atomic_load(&sig_thread_stop))
		sleep_ms(1);
	return NULL;
}

static void test_signals(void)
{
	pthread_t t;
	sigset_t set, old;

	signal(SIGUSR1, on_usr1);
	signal(SIGUSR2, on_usr2);
	atomic_store(&sig_thread_stop, 0);
	CHECK(pthread_create(&t, NULL, sig_thread, NULL) == 0, "signal thread created");
	while (!atomic_load(&sig_thread_tid))
		sleep_ms(1);
	int tid = atomic_load(&sig_thread_tid);

	CHECK(syscall(SYS_tgkill, getpid(), tid, SIGUSR1) == 0, "tgkill to the thread");
	for (int i = 0; i < 2000 && !atomic_load(&usr1_tid); i++)
		sleep_ms(1);
	CHECK(atomic_load(&usr1_tid) == tid, "tgkill's signal is handled by that thread (%d, wanted %d)",
	      atomic_load(&usr1_tid), tid);

	/* The process's signal goes to the thread that does not block it. */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	CHECK(kill(getpid(), SIGUSR2) == 0, "kill to the process");
	for (int i = 0; i < 2000 && !atomic_load(&usr2_tid); i++)
		sleep_ms(1);
	CHECK(atomic_load(&usr2_tid) == tid, "the process's signal is taken by the thread not blocking it (%d)",
	      atomic_load(&usr2_tid));
	pthread_sigmask(SIG_SETMASK, &old, NULL);

	errno = 0;
	CHECK(syscall(SYS_tgkill, getpid() + 100000, tid, SIGUSR1) == -1 && errno == ESRCH,
	      "tgkill naming another process fails with ESRCH");
	errno = 0;
	CHECK(syscall(SYS_tgkill, getpid(), -1, SIGUSR1) == -1 && errno == EINVAL, "tgkill to tid -1 is EINVAL");
	atomic_store(&sig_thread_stop, 1);
	pthread_join(t, NULL);
	/* The join returns at the thread's clear_child_tid wake, which comes
	 * before the thread is gone (Linux's mm_release before
	 * release_task): it may still be found for a moment. */
	int tries = 0;
	while (syscall(SYS_tgkill, getpid(), tid, 0) == 0 && tries++ < 2000)
		sleep_ms(1);
	errno = 0;
	CHECK(syscall(SYS_tgkill, getpid(), tid, 0) == -1 && errno == ESRCH, "tgkill to a joined thread is ESRCH");
	signal(SIGUSR1, SIG_DFL);
	signal(SIGUSR2, SIG_DFL);
}

/* ---- how a process with threads ends ---- */

static void *sleeper(void *arg)
{
	(void)arg;
	for (;;)
		sleep_ms(1000);
	return NULL;
}

static void *exit7(void *arg)
{
	(void)arg;
	sleep_ms(20);
	exit(7);
}

static volatile int *volatile null_ptr;

static void *segfaulter(void *arg)
{
	(void)arg;
	sleep_ms(20);
	*null_ptr = 1;
	return NULL;
}

static void *exit5_later(void *arg)
{
	(void)arg;
	sleep_ms(50);
	exit(5);
}

static const char *self_path;

static void *execer(void *arg)
{
	(void)arg;
	sleep_ms(20);
	char *argv[] = { (char *)self_path, "exec-child", NULL };
	execv(self_path, argv);
	_exit(99);
}

/* Runs `body` in a child and returns its wait status (-1 on failure). */
static int in_child(void (*body)(void))
{
	pid_t pid = fork();
	if (pid == 0) {
		body();
		_exit(100);
	}
	if (pid < 0)
		return -1;
	int status;
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return status;
}

static void child_exit_group(void)
{
	pthread_t t;
	for (int i = 0; i < 3; i++)
		pthread_create(&t, NULL, sleeper, NULL);
	pthread_create(&t, NULL, exit7, NULL);
	sleeper(NULL);
}

static void child_segv(void)
{
	pthread_t t;
	for (int i = 0; i < 2; i++)
		pthread_create(&t, NULL, sleeper, NULL);
	pthread_create(&t, NULL, segfaulter, NULL);
	sleeper(NULL);
}

static void child_main_leaves(void)
{
	pthread_t t;
	pthread_create(&t, NULL, exit5_later, NULL);
	pthread_exit(NULL);
}

static void child_exec_from_thread(void)
{
	pthread_t t;
	pthread_create(&t, NULL, sleeper, NULL);
	pthread_create(&t, NULL, execer, NULL);
	sleeper(NULL);
}

static void test_endings(void)
{
	int st = in_child(child_exit_group);
	CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 7,
	      "exit() in one of five threads ends the process with its status (%#x)", st);
	st = in_child(child_segv);
	CHECK(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV,
	      "a thread's fatal SIGSEGV kills the whole process (%#x)", st);
	st = in_child(child_main_leaves);
	CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 5,
	      "after the main thread's pthread_exit the process lives on until another thread exits (%#x)", st);
	st = in_child(child_exec_from_thread);
	CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 42,
	      "execve from a thread ends the others and runs the new program (%#x)", st);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "exec-child") == 0)
		return 42;
	utest_start(argv[0]);
	self_path = argv[0];
	test_ids();
	test_proc_and_sync();
	test_usage_and_timers();
	test_timers_outlive_their_thread();
	test_model();
	test_change_under_user(UNMAP);
	test_change_under_user(PROTECT);
	test_change_under_user(MOVE);
	test_signals();
	test_endings();
	return utest_done();
}
