/*
 * What ordinary programs expect of the system besides memory, as Linux
 * gives it: interval timers and alarm (kernel/time/itimer.c), POSIX
 * timers (kernel/time/posix-timers.c), the time of day and clock
 * resolutions, times and getrusage (kernel/sys.c), process groups and
 * sessions with kill to a group, waiting for signals (rt_sigtimedwait,
 * rt_sigsuspend, pause, rt_sigpending), sysinfo, CPU affinity, getcpu
 * and uname.
 *
 * Timers are tens of milliseconds; no check depends on how late a timer
 * fires, only on what it must have done by the time a wait returns.
 *
 * Usage: proc_abi_test (argv[0] must be a path the program can exec
 * itself by: the exec checks re-run it with a mode argument).
 */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/times.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "utest.h"

#define MS 1000000L

static volatile sig_atomic_t alarms, vtalarms, profs, usr1s;

static void on_signal(int sig)
{
	if (sig == SIGALRM)
		alarms++;
	else if (sig == SIGVTALRM)
		vtalarms++;
	else if (sig == SIGPROF)
		profs++;
	else if (sig == SIGUSR1)
		usr1s++;
}

static void handle(int sig)
{
	struct sigaction sa = { 0 };

	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
}

static void set_blocked(int sig, int block)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, sig);
	sigprocmask(block ? SIG_BLOCK : SIG_UNBLOCK, &set, NULL);
}

static long long ns_of(const struct timespec *ts)
{
	return ts->tv_sec * 1000000000LL + ts->tv_nsec;
}

static long long clock_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return ns_of(&ts);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * MS };

	while (nanosleep(&ts, &ts) != 0)
		;
}

/* Runs on the CPU for `ms` of this process's CPU time (bounded by 10 s of
 * real time, so a clock that does not advance fails instead of hanging). */
static void burn_cpu(long ms)
{
	long long start = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
	long long wall = clock_ns(CLOCK_MONOTONIC);
	volatile unsigned long x = 0;

	while (clock_ns(CLOCK_PROCESS_CPUTIME_ID) - start < ms * MS && clock_ns(CLOCK_MONOTONIC) - wall < 10000 * MS)
		for (int i = 0; i < 10000; i++)
			x += i;
}

/* Waits up to 10 s of real time for `*flag` to reach `n`, spinning (for
 * the CPU-time itimers, which count only while the process runs). */
static int spin_until(volatile sig_atomic_t *flag, int n)
{
	long long wall = clock_ns(CLOCK_MONOTONIC);
	volatile unsigned long x = 0;

	while (*flag < n && clock_ns(CLOCK_MONOTONIC) - wall < 10000 * MS)
		x++;
	return *flag >= n;
}

/* Waits for `sig` (blocked by the caller) with sigtimedwait, 10 s at most. */
static int wait_signal(int sig, siginfo_t *info)
{
	sigset_t set;
	struct timespec limit = { 10, 0 };

	sigemptyset(&set);
	sigaddset(&set, sig);
	return sigtimedwait(&set, info, &limit);
}

static void test_itimer_real(void)
{
	struct itimerval it = { { 0, 0 }, { 0, 30000 } }, cur, old;
	siginfo_t info;

	set_blocked(SIGALRM, 1);
	CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0, "setitimer(ITIMER_REAL, 30 ms)");
	CHECK(getitimer(ITIMER_REAL, &cur) == 0 && cur.it_value.tv_sec == 0 && cur.it_value.tv_usec > 0 &&
		      cur.it_value.tv_usec <= 30000 && cur.it_interval.tv_usec == 0,
	      "getitimer shows the time left (%ld us) and no period", (long)cur.it_value.tv_usec);
	CHECK(wait_signal(SIGALRM, &info) == SIGALRM && info.si_code == SI_KERNEL,
	      "its expiry sends SIGALRM from the kernel (si_code %d)", info.si_code);
	CHECK(getitimer(ITIMER_REAL, &cur) == 0 && cur.it_value.tv_sec == 0 && cur.it_value.tv_usec == 0,
	      "a one-shot timer is off once it fired");

	it.it_interval.tv_usec = 10000;
	it.it_value.tv_usec = 10000;
	CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0, "setitimer with a 10 ms period");
	int n = 0;
	while (n < 3 && wait_signal(SIGALRM, &info) == SIGALRM)
		n++;
	CHECK(n == 3, "a periodic ITIMER_REAL fires again after each SIGALRM is taken (%d of 3)", n);
	memset(&it, 0, sizeof(it));
	CHECK(setitimer(ITIMER_REAL, &it, &old) == 0 && old.it_interval.tv_usec == 10000 &&
		      (old.it_value.tv_sec > 0 || old.it_value.tv_usec > 0),
	      "disarming returns the old setting (period %ld us)", (long)old.it_interval.tv_usec);
	set_blocked(SIGALRM, 0);

	it.it_value.tv_usec = 1000000;
	errno = 0;
	CHECK(setitimer(ITIMER_REAL, &it, NULL) == -1 && errno == EINVAL, "tv_usec of 1000000 is EINVAL");
	it.it_value.tv_usec = 0;
	errno = 0;
	CHECK(setitimer(7, &it, NULL) == -1 && errno == EINVAL, "setitimer of an unknown timer is EINVAL");
	errno = 0;
	CHECK(getitimer(7, &cur) == -1 && errno == EINVAL, "getitimer of an unknown timer is EINVAL");

	CHECK(alarm(5) == 0, "alarm(5) with no alarm set returns 0");
	CHECK(getitimer(ITIMER_REAL, &cur) == 0 && cur.it_value.tv_sec >= 4 && cur.it_value.tv_sec <= 5,
	      "alarm arms ITIMER_REAL (%ld s left)", (long)cur.it_value.tv_sec);
	/* Rounded to the nearest second: 5 unless half a second passed
	 * since (a stalled host), so 4 is as right. */
	unsigned left = alarm(3);
	CHECK(left == 5 || left == 4, "alarm(3) returns the previous alarm's seconds, rounded (%u)", left);
	left = alarm(0);
	CHECK(left == 3 || left == 2, "alarm(0) cancels and returns the seconds left (%u)", left);
	CHECK(getitimer(ITIMER_REAL, &cur) == 0 && cur.it_value.tv_sec == 0 && cur.it_value.tv_usec == 0,
	      "alarm(0) disarms ITIMER_REAL");

	handle(SIGALRM);
	alarms = 0;
	it.it_value.tv_usec = 20000;
	setitimer(ITIMER_REAL, &it, NULL);
	errno = 0;
	CHECK(pause() == -1 && errno == EINTR && alarms == 1, "pause returns EINTR after the SIGALRM handler ran");
	signal(SIGALRM, SIG_DFL);
}

static void test_itimer_cpu(void)
{
	struct itimerval it = { { 0, 0 }, { 0, 20000 } }, cur;

	handle(SIGVTALRM);
	handle(SIGPROF);
	CHECK(setitimer(ITIMER_VIRTUAL, &it, NULL) == 0, "setitimer(ITIMER_VIRTUAL, 20 ms)");
	CHECK(getitimer(ITIMER_VIRTUAL, &cur) == 0 && (cur.it_value.tv_sec > 0 || cur.it_value.tv_usec > 0),
	      "getitimer(ITIMER_VIRTUAL) shows it armed");
	CHECK(spin_until(&vtalarms, 1), "20 ms of user time send SIGVTALRM");
	it.it_interval.tv_usec = 10000;
	CHECK(setitimer(ITIMER_PROF, &it, NULL) == 0, "setitimer(ITIMER_PROF, 20 ms, period 10 ms)");
	CHECK(spin_until(&profs, 2), "running sends SIGPROF, then again each period");
	memset(&it, 0, sizeof(it));
	setitimer(ITIMER_PROF, &it, NULL);
	CHECK(getitimer(ITIMER_PROF, &cur) == 0 && cur.it_value.tv_usec == 0 && cur.it_interval.tv_usec == 0,
	      "ITIMER_PROF disarmed");
	signal(SIGVTALRM, SIG_DFL);
	signal(SIGPROF, SIG_DFL);
}

static timer_t make_timer(clockid_t clock, int notify, int sig, int value)
{
	struct sigevent ev = { 0 };
	timer_t t = 0;

	ev.sigev_notify = notify;
	ev.sigev_signo = sig;
	ev.sigev_value.sival_int = value;
	if (timer_create(clock, &ev, &t) != 0)
		return (timer_t)-1;
	return t;
}

static int arm(timer_t t, int flags, long long value_ns, long long interval_ns)
{
	struct itimerspec its = { { interval_ns / 1000000000, interval_ns % 1000000000 },
				  { value_ns / 1000000000, value_ns % 1000000000 } };

	return timer_settime(t, flags, &its, NULL);
}

static void test_posix_timers(void)
{
	siginfo_t info;
	struct itimerspec cur;

	set_blocked(SIGUSR1, 1);
	set_blocked(SIGUSR2, 1);
	timer_t t = make_timer(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGUSR1, 0x1234);
	CHECK(t != (timer_t)-1, "timer_create(CLOCK_MONOTONIC, SIGEV_SIGNAL)");
	CHECK(timer_gettime(t, &cur) == 0 && cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0,
	      "a new timer is disarmed");
	CHECK(arm(t, 0, 30 * MS, 0) == 0, "timer_settime 30 ms");
	CHECK(timer_gettime(t, &cur) == 0 && cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec > 0 &&
		      cur.it_value.tv_nsec <= 30 * MS,
	      "timer_gettime shows the time left (%ld ns)", (long)cur.it_value.tv_nsec);
	memset(&info, 0, sizeof(info));
	CHECK(wait_signal(SIGUSR1, &info) == SIGUSR1 && info.si_code == SI_TIMER && info.si_value.sival_int == 0x1234 &&
		      info.si_overrun == 0,
	      "expiry sends the signal with SI_TIMER, the sigev_value and no overrun (code %d value %#x)",
	      info.si_code, info.si_value.sival_int);
	CHECK(timer_gettime(t, &cur) == 0 && cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0,
	      "an expired one-shot timer reads as disarmed");

	CHECK(arm(t, 0, 5 * MS, 5 * MS) == 0, "a 5 ms periodic timer");
	sleep_ms(60);
	memset(&info, 0, sizeof(info));
	CHECK(wait_signal(SIGUSR1, &info) == SIGUSR1 && info.si_overrun >= 1,
	      "expiries while the signal was pending count as overruns (%d)", info.si_overrun);
	CHECK(timer_getoverrun(t) == info.si_overrun, "timer_getoverrun agrees (%d)", timer_getoverrun(t));
	CHECK(wait_signal(SIGUSR1, &info) == SIGUSR1, "the periodic timer goes on after its signal is taken");
	CHECK(timer_gettime(t, &cur) == 0 && cur.it_interval.tv_nsec == 5 * MS, "timer_gettime shows the period");
	CHECK(timer_delete(t) == 0, "timer_delete");
	errno = 0;
	CHECK(timer_gettime(t, &cur) == -1 && errno == EINVAL, "a deleted timer is EINVAL");
	/* musl's timer_delete returns the raw error; ask the kernel itself. */
	errno = 0;
	CHECK(syscall(SYS_timer_delete, (int)(intptr_t)t) == -1 && errno == EINVAL, "deleting it again is EINVAL");
	sigset_t pending;
	sigpending(&pending);
	if (sigismember(&pending, SIGUSR1))
		wait_signal(SIGUSR1, &info);

	timer_t none = make_timer(CLOCK_MONOTONIC, SIGEV_NONE, 0, 0);
	CHECK(none != (timer_t)-1 && arm(none, 0, 40 * MS, 0) == 0, "a SIGEV_NONE timer armed for 40 ms");
	CHECK(timer_gettime(none, &cur) == 0 && cur.it_value.tv_nsec > 0, "it counts down (%ld ns)",
	      (long)cur.it_value.tv_nsec);
	sleep_ms(50);
	CHECK(timer_gettime(none, &cur) == 0 && cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0,
	      "and reads 0 once expired, sending nothing");
	sigpending(&pending);
	CHECK(!sigismember(&pending, SIGUSR1) && !sigismember(&pending, SIGALRM), "no signal is pending");
	timer_delete(none);

	timer_t real = make_timer(CLOCK_REALTIME, SIGEV_SIGNAL, SIGUSR2, 77);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	CHECK(real != (timer_t)-1 && arm(real, TIMER_ABSTIME, ns_of(&now) + 20 * MS, 0) == 0,
	      "a CLOCK_REALTIME timer at an absolute time 20 ms ahead");
	CHECK(wait_signal(SIGUSR2, &info) == SIGUSR2 && info.si_value.sival_int == 77, "it fires");
	CHECK(arm(real, TIMER_ABSTIME, ns_of(&now) - 1000 * MS, 0) == 0 &&
		      wait_signal(SIGUSR2, &info) == SIGUSR2,
	      "an absolute time already past fires at once");
	timer_delete(real);

	timer_t dflt;
	CHECK(timer_create(CLOCK_MONOTONIC, NULL, &dflt) == 0, "timer_create without a sigevent");
	set_blocked(SIGALRM, 1);
	arm(dflt, 0, 10 * MS, 0);
	CHECK(wait_signal(SIGALRM, &info) == SIGALRM && info.si_code == SI_TIMER &&
		      info.si_value.sival_int == (int)(intptr_t)dflt,
	      "it sends SIGALRM with the timer id as value");
	timer_delete(dflt);
	set_blocked(SIGALRM, 0);

	struct sigevent bad = { 0 };
	timer_t x;
	bad.sigev_notify = 99;
	errno = 0;
	CHECK(timer_create(CLOCK_MONOTONIC, &bad, &x) == -1 && errno == EINVAL, "an unknown sigev_notify is EINVAL");
	bad.sigev_notify = SIGEV_SIGNAL;
	bad.sigev_signo = 0;
	errno = 0;
	CHECK(timer_create(CLOCK_MONOTONIC, &bad, &x) == -1 && errno == EINVAL, "signal 0 is EINVAL");
	bad.sigev_signo = SIGUSR1;
	errno = 0;
	CHECK(timer_create(10, &bad, &x) == -1 && errno == EINVAL, "an unknown clock is EINVAL");
	set_blocked(SIGUSR1, 0);
	set_blocked(SIGUSR2, 0);
}

static void test_sigwait(void)
{
	sigset_t set, old;
	siginfo_t info;
	struct timespec zero = { 0, 0 }, short_wait = { 0, 20 * MS }, bad = { 0, 2000000000 };

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, &old);
	kill(getpid(), SIGUSR1);
	sigset_t pending;
	CHECK(sigpending(&pending) == 0 && sigismember(&pending, SIGUSR1), "a blocked signal shows in sigpending");
	memset(&info, 0, sizeof(info));
	CHECK(sigtimedwait(&set, &info, &zero) == SIGUSR1 && info.si_code == SI_USER && info.si_pid == getpid() &&
		      info.si_uid == getuid(),
	      "sigtimedwait takes it with kill's siginfo (code %d pid %d)", info.si_code, info.si_pid);
	CHECK(sigpending(&pending) == 0 && !sigismember(&pending, SIGUSR1), "and it is no longer pending");
	errno = 0;
	CHECK(sigtimedwait(&set, &info, &zero) == -1 && errno == EAGAIN, "a zero timeout only polls: EAGAIN");
	errno = 0;
	CHECK(sigtimedwait(&set, &info, &short_wait) == -1 && errno == EAGAIN, "a 20 ms timeout ends with EAGAIN");
	errno = 0;
	CHECK(sigtimedwait(&set, &info, &bad) == -1 && errno == EINVAL, "an invalid timeout is EINVAL");

	handle(SIGALRM);
	alarms = 0;
	struct itimerval it = { { 0, 0 }, { 0, 20000 } };
	setitimer(ITIMER_REAL, &it, NULL);
	struct timespec long_wait = { 10, 0 };
	/* musl's sigtimedwait retries after EINTR: the system call itself. */
	errno = 0;
	CHECK(syscall(SYS_rt_sigtimedwait, &set, &info, &long_wait, 8) == -1 && errno == EINTR && alarms == 1,
	      "another signal's handler interrupts rt_sigtimedwait: EINTR");

	handle(SIGUSR1);
	usr1s = 0;
	timer_t t = make_timer(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGUSR1, 0);
	arm(t, 0, 20 * MS, 0);
	sigset_t none;
	sigemptyset(&none);
	errno = 0;
	CHECK(sigsuspend(&none) == -1 && errno == EINTR && usr1s == 1, "sigsuspend returns EINTR after the handler");
	sigset_t now;
	sigprocmask(SIG_BLOCK, NULL, &now);
	CHECK(sigismember(&now, SIGUSR1), "and the mask it replaced is back");
	timer_delete(t);
	sigprocmask(SIG_SETMASK, &old, NULL);
	signal(SIGUSR1, SIG_DFL);
	signal(SIGALRM, SIG_DFL);
}

static void test_time_of_day(void)
{
	struct timeval tv;
	struct timezone tz;
	struct timespec ts, res;
	time_t t = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	CHECK(syscall(SYS_gettimeofday, &tv, &tz) == 0 && tv.tv_usec >= 0 && tv.tv_usec < 1000000 &&
		      tv.tv_sec >= ts.tv_sec && tv.tv_sec <= ts.tv_sec + 1,
	      "gettimeofday agrees with CLOCK_REALTIME");
	CHECK(syscall(SYS_gettimeofday, NULL, NULL) == 0, "gettimeofday with null pointers");
	long r = syscall(SYS_time, &t);
	CHECK(r == t && r >= ts.tv_sec && r <= ts.tv_sec + 1, "time returns and stores the seconds");
	static const clockid_t clocks[] = { CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID,
					    CLOCK_THREAD_CPUTIME_ID, CLOCK_MONOTONIC_RAW, CLOCK_REALTIME_COARSE,
					    CLOCK_MONOTONIC_COARSE, CLOCK_BOOTTIME, CLOCK_TAI };
	int good = 0;
	for (unsigned i = 0; i < sizeof(clocks) / sizeof(clocks[0]); i++)
		good += clock_getres(clocks[i], &res) == 0 && res.tv_sec == 0 && res.tv_nsec > 0;
	CHECK(good == (int)(sizeof(clocks) / sizeof(clocks[0])), "clock_getres of every clock (%d good)", good);
	CHECK(clock_getres(CLOCK_MONOTONIC, NULL) == 0, "clock_getres with a null pointer");
	errno = 0;
	CHECK(clock_getres(10, &res) == -1 && errno == EINVAL, "clock_getres of clock 10 is EINVAL");
}

static long usage_us(const struct rusage *ru)
{
	return ru->ru_utime.tv_sec * 1000000L + ru->ru_utime.tv_usec + ru->ru_stime.tv_sec * 1000000L +
	       ru->ru_stime.tv_usec;
}

static void test_usage(void)
{
	struct rusage ru, before, child_ru;
	struct tms tms;

	getrusage(RUSAGE_SELF, &before);
	long long cpu0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
	burn_cpu(60);
	CHECK(clock_ns(CLOCK_PROCESS_CPUTIME_ID) - cpu0 >= 60 * MS, "CLOCK_PROCESS_CPUTIME_ID counts CPU time");
	CHECK(getrusage(RUSAGE_SELF, &ru) == 0 && usage_us(&ru) > usage_us(&before),
	      "getrusage(RUSAGE_SELF) counts it (%ld us)", usage_us(&ru));
	CHECK(getrusage(RUSAGE_THREAD, &ru) == 0 && usage_us(&ru) > 0, "getrusage(RUSAGE_THREAD)");
	errno = 0;
	CHECK(getrusage(7, &ru) == -1 && errno == EINVAL, "getrusage of an unknown who is EINVAL");

	size_t len = 4 << 20;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	madvise(p, len, MADV_NOHUGEPAGE);
	getrusage(RUSAGE_SELF, &before);
	for (size_t off = 0; off < len; off += 4096)
		p[off] = 1;
	getrusage(RUSAGE_SELF, &ru);
	CHECK(ru.ru_minflt - before.ru_minflt >= 512, "touching 1024 pages counts minor faults (%ld)",
	      ru.ru_minflt - before.ru_minflt);
	CHECK(ru.ru_maxrss >= 4096, "ru_maxrss covers the 4 MiB touched (%ld KiB)", ru.ru_maxrss);
	munmap(p, len);
	getrusage(RUSAGE_SELF, &before);
	CHECK(before.ru_maxrss >= ru.ru_maxrss, "ru_maxrss is a peak: unmapping keeps it");

	clock_t t0 = times(&tms);
	CHECK(t0 != (clock_t)-1 && tms.tms_utime + tms.tms_stime > 0, "times reports the CPU time used");
	pid_t pid = fork();
	if (pid == 0) {
		burn_cpu(60);
		char *q = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		for (size_t off = 0; off < len; off += 4096)
			q[off] = 1;
		_exit(0);
	}
	int status;
	CHECK(wait4(pid, &status, 0, &child_ru) == pid && usage_us(&child_ru) > 0 && child_ru.ru_maxrss >= 4096,
	      "wait4 reports the child's usage (%ld us, %ld KiB)", usage_us(&child_ru), child_ru.ru_maxrss);
	CHECK(getrusage(RUSAGE_CHILDREN, &ru) == 0 && usage_us(&ru) >= usage_us(&child_ru) && ru.ru_maxrss >= 4096,
	      "RUSAGE_CHILDREN adds the reaped child");
	CHECK(times(&tms) >= t0 && tms.tms_cutime + tms.tms_cstime > 0, "times reports the children's CPU time");
}

static void test_groups(const char *self)
{
	pid_t me = getpid();
	pid_t pgrp = getpgrp();

	CHECK(pgrp > 0 && getpgid(0) == pgrp && getpgid(me) == pgrp, "getpgrp, getpgid(0) and getpgid(self) agree");
	CHECK(getsid(0) > 0 && getsid(0) == getsid(me), "getsid(0) and getsid(self) agree");
	errno = 0;
	CHECK(getpgid(0x7ffffff0) == -1 && errno == ESRCH, "getpgid of no process is ESRCH");
	errno = 0;
	CHECK(setpgid(0, -1) == -1 && errno == EINVAL, "a negative pgid is EINVAL");
	errno = 0;
	CHECK(setpgid(1, 1) == -1 && errno == ESRCH, "setpgid of a process not ours is ESRCH");

	pid_t pid = fork();
	if (pid == 0) {
		int ok = getpgrp() == pgrp && getsid(0) == getsid(getppid());
		if (!ok)
			utest_print("# child step: group or session not inherited\n");
		pid_t sid = setsid();
		STEP(sid == getpid());
		STEP(getsid(0) == sid && getpgrp() == sid);
		errno = 0;
		STEP(setsid() == -1 && errno == EPERM);
		errno = 0;
		STEP(setpgid(0, 0) == -1 && errno == EPERM);
		_exit(ok ? 0 : 1);
	}
	int status;
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "a child inherits the group and session, and setsid makes it lead new ones");

	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, &old);
	pid = fork();
	if (pid == 0) {
		siginfo_t info;
		_exit(wait_signal(SIGUSR1, &info) == SIGUSR1 ? 42 : 1);
	}
	CHECK(setpgid(pid, pid) == 0 && getpgid(pid) == pid, "setpgid moves the child into a group of its own");
	errno = 0;
	CHECK(setpgid(pid, 0x7ffffff0) == -1 && errno == EPERM, "a group that does not exist is EPERM");
	CHECK(kill(0, 0) == 0, "kill(0, 0) probes the caller's group");
	CHECK(kill(-1, 0) == 0, "kill(-1, 0) finds processes to signal");
	CHECK(kill(-pid, SIGUSR1) == 0, "kill(-pgrp, SIGUSR1) signals the group");
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 42,
	      "the child in that group got it");
	errno = 0;
	CHECK(kill(-pid, 0) == -1 && errno == ESRCH, "the group is gone with its only member: ESRCH");
	sigprocmask(SIG_SETMASK, &old, NULL);

	/* A child that has called execve can no longer be moved (EACCES). */
	int fds[2];
	pipe(fds);
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		char fd[16];
		snprintf(fd, sizeof(fd), "%d", fds[1]);
		execl(self, self, "exec-then-wait", fd, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	char c = 0;
	CHECK(read(fds[0], &c, 1) == 1 && c == 'x', "the child ran its exec'd program");
	errno = 0;
	CHECK(setpgid(pid, pid) == -1 && errno == EACCES, "setpgid of a child after its execve is EACCES");
	kill(pid, SIGTERM);
	waitpid(pid, &status, 0);
	close(fds[0]);

	mode_t m = umask(027);
	CHECK(umask(m) == 027, "umask returns the previous mask");
}

/* Timers across fork and exec: a fork child inherits none; across exec,
 * ITIMER_REAL survives and POSIX timers are deleted. */
static void test_timer_inheritance(const char *self)
{
	struct itimerval it = { { 0, 0 }, { 100, 0 } }, cur;
	timer_t t = make_timer(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGUSR1, 0);

	setitimer(ITIMER_REAL, &it, NULL);
	arm(t, 0, 100000 * MS, 0);
	pid_t pid = fork();
	if (pid == 0) {
		struct itimerspec its;
		int ok = 1;
		STEP(getitimer(ITIMER_REAL, &cur) == 0 && cur.it_value.tv_sec == 0 && cur.it_value.tv_usec == 0);
		errno = 0;
		STEP(timer_gettime(t, &its) == -1 && errno == EINVAL);
		_exit(ok ? 0 : 1);
	}
	int status;
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "a fork child inherits neither itimers nor POSIX timers");

	pid = fork();
	if (pid == 0) {
		char id[16];
		timer_t mine = make_timer(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGUSR1, 0);
		arm(mine, 0, 100000 * MS, 0);
		setitimer(ITIMER_REAL, &it, NULL);
		snprintf(id, sizeof(id), "%d", (int)(intptr_t)mine);
		execl(self, self, "after-exec", id, (char *)NULL);
		_exit(127);
	}
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "across execve ITIMER_REAL survives and POSIX timers are deleted");
	memset(&it, 0, sizeof(it));
	setitimer(ITIMER_REAL, &it, NULL);
	timer_delete(t);
}

static void test_system(void)
{
	struct sysinfo si;
	cpu_set_t set, one;
	struct utsname u;

	CHECK(sysinfo(&si) == 0 && si.uptime > 0 && si.totalram > 0 && si.freeram <= si.totalram &&
		      si.freeswap <= si.totalswap && si.mem_unit >= 1 && si.procs >= 1,
	      "sysinfo (uptime %ld s, %lu of %lu units free, unit %u, %u procs)", si.uptime, si.freeram, si.totalram,
	      si.mem_unit, si.procs);

	CPU_ZERO(&set);
	CHECK(sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) >= 1, "sched_getaffinity (%d CPUs)",
	      CPU_COUNT(&set));
	unsigned cpu = 99, node = 99;
	CHECK(syscall(SYS_getcpu, &cpu, &node, NULL) == 0 && cpu < CPU_SETSIZE && CPU_ISSET(cpu, &set),
	      "getcpu gives a CPU of the affinity mask (%u)", cpu);
	CHECK(sched_getcpu() >= 0, "sched_getcpu");
	CPU_ZERO(&one);
	CPU_SET(sched_getcpu(), &one);
	CHECK(sched_setaffinity(0, sizeof(one), &one) == 0, "sched_setaffinity to the CPU it runs on");
	CHECK(sched_setaffinity(0, sizeof(set), &set) == 0, "and back to every CPU");
	CPU_ZERO(&one);
	errno = 0;
	CHECK(sched_setaffinity(0, sizeof(one), &one) == -1 && errno == EINVAL, "an empty mask is EINVAL");
	unsigned long word;
	errno = 0;
	CHECK(syscall(SYS_sched_getaffinity, 0, 4, &word) == -1 && errno == EINVAL,
	      "a mask buffer not a whole number of longs is EINVAL");

	int major = 0, minor = 0;
	CHECK(uname(&u) == 0 && strcmp(u.sysname, "Linux") == 0 && strcmp(u.machine, "x86_64") == 0 &&
		      sscanf(u.release, "%d.%d", &major, &minor) == 2 && major >= 3,
	      "uname: Linux %s on %s", u.release, u.machine);
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "after-exec") == 0) {
		struct itimerval cur;
		struct itimerspec its;
		timer_t t = (timer_t)(intptr_t)atoi(argv[2]);
		if (getitimer(ITIMER_REAL, &cur) != 0 || cur.it_value.tv_sec == 0)
			return 1;
		errno = 0;
		if (timer_gettime(t, &its) != -1 || errno != EINVAL)
			return 2;
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "exec-then-wait") == 0) {
		int fd = atoi(argv[2]);
		write(fd, "x", 1);
		for (;;)
			pause();
	}
	utest_start(argv[0]);
	test_itimer_real();
	test_itimer_cpu();
	test_posix_timers();
	test_sigwait();
	test_time_of_day();
	test_usage();
	test_groups(argv[0]);
	test_timer_inheritance(argv[0]);
	test_system();
	return utest_done();
}
