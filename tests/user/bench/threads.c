/*
 * Threads (issue 22's figures): what a thread costs to make and reap, how
 * fast a futex wake-up reaches another thread, and how page faults scale
 * with threads faulting at once in one address space.
 *
 * - user::thread_create_join: pthread_create of a thread that returns at
 *   once, then pthread_join (the stack's mmap, clone, the thread's exit
 *   with its futex wakes, the join's futex wait, the stack's munmap), us
 *   per pair; ROUNDS x 1000 pairs.
 * - user::futex_wake_latency: two threads hand a futex word back and
 *   forth (FUTEX_WAKE, the other's FUTEX_WAIT returns, it answers), us per
 *   hand-off, half a round trip; ROUNDS x 2000 round trips.
 * - user::thread_fault/N for N = 1, 2, 4: N threads, each first-touching
 *   a 16 MiB region of its own (4096 anonymous faults) in the shared
 *   address space, all released at once; faults per second over all
 *   threads, from the release until the last finishes (kfaults/s).
 *   ROUNDS x 7 x 4096 faults. More CPUs than one show the scaling:
 *   cargo xtask bench user::threads --cpus 4.
 *
 * Without threads (clone(CLONE_VM) refused) pthread_create fails: the
 * program prints a "skip:" line and no figure, and exits 0.
 */
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include "benchlib.h"

#define CREATE_PAIRS (1000 / bench_scale + 1)
#define ROUND_TRIPS (2000 / bench_scale + 1)
#define FAULT_REGION ((16UL << 20) / bench_scale)

/* <linux/futex.h>, which musl does not ship. */
#define FUTEX_WAIT_PRIVATE 128
#define FUTEX_WAKE_PRIVATE 129

static void futex_wait(atomic_uint *word, unsigned val)
{
	syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake(atomic_uint *word)
{
	syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void *returns(void *arg)
{
	return arg;
}

static void create_or_die(pthread_t *t, void *(*fn)(void *), void *arg)
{
	int err = pthread_create(t, NULL, fn, arg);

	if (err) {
		fprintf(stderr, "threads: pthread_create: %s\n", strerror(err));
		exit(1);
	}
}

static void bench_create_join(void)
{
	double rounds[ROUNDS];

	for (int r = 0; r < bench_rounds; r++) {
		long long t0 = now_ns();
		for (unsigned long i = 0; i < CREATE_PAIRS; i++) {
			pthread_t t;
			create_or_die(&t, returns, NULL);
			pthread_join(t, NULL);
		}
		rounds[r] = (double)(now_ns() - t0) / CREATE_PAIRS / 1000.0;
	}
	report("user::thread_create_join", rounds, bench_rounds, "us/op");
}

/* The word the two threads hand back and forth: odd when the partner's
 * turn, even when the main thread's. */
static atomic_uint pingpong;

static void *partner(void *arg)
{
	(void)arg;
	for (unsigned expect = 1; expect < 2 * ROUND_TRIPS; expect += 2) {
		while (atomic_load(&pingpong) != expect)
			futex_wait(&pingpong, expect - 1);
		atomic_store(&pingpong, expect + 1);
		futex_wake(&pingpong);
	}
	return NULL;
}

static void bench_wake_latency(void)
{
	double rounds[ROUNDS];

	for (int r = 0; r < bench_rounds; r++) {
		pthread_t t;
		atomic_store(&pingpong, 0);
		create_or_die(&t, partner, NULL);
		long long t0 = now_ns();
		for (unsigned i = 0; i < ROUND_TRIPS; i++) {
			unsigned mine = 2 * i + 1;
			atomic_store(&pingpong, mine);
			futex_wake(&pingpong);
			while (atomic_load(&pingpong) == mine)
				futex_wait(&pingpong, mine);
		}
		rounds[r] = (double)(now_ns() - t0) / ROUND_TRIPS / 2 / 1000.0;
		pthread_join(t, NULL);
	}
	report("user::futex_wake_latency", rounds, bench_rounds, "us/op");
}

static pthread_barrier_t start;

static void *fault_region(void *region)
{
	pthread_barrier_wait(&start);
	touch(region, FAULT_REGION, 1);
	return NULL;
}

static void bench_fault_scaling(int nthreads)
{
	double rounds[ROUNDS];
	char name[64];

	for (int r = 0; r < bench_rounds; r++) {
		pthread_t t[4];
		char *region[4];
		pthread_barrier_init(&start, NULL, nthreads + 1);
		for (int i = 0; i < nthreads; i++) {
			region[i] = map_anon(FAULT_REGION);
			create_or_die(&t[i], fault_region, region[i]);
		}
		long long t0 = now_ns();
		pthread_barrier_wait(&start);
		for (int i = 0; i < nthreads; i++)
			pthread_join(t[i], NULL);
		long long ns = now_ns() - t0;
		rounds[r] = (double)nthreads * (FAULT_REGION / PAGE) / ((double)ns / 1e9) / 1000.0;
		for (int i = 0; i < nthreads; i++)
			munmap(region[i], FAULT_REGION);
		pthread_barrier_destroy(&start);
	}
	snprintf(name, sizeof(name), "user::thread_fault/%d", nthreads);
	report(name, rounds, bench_rounds, "kfaults/s");
}

int main(int argc, char **argv)
{
	pthread_t probe;

	bench_args(argc, argv);
	int err = pthread_create(&probe, NULL, returns, NULL);
	if (err) {
		printf("skip: user::threads: pthread_create: %s (no threads in this kernel)\n", strerror(err));
		return 0;
	}
	pthread_join(probe, NULL);
	printf("threads: %ld CPUs online\n", sysconf(_SC_NPROCESSORS_ONLN));
	bench_create_join();
	bench_wake_latency();
	for (int n = 1; n <= 4; n *= 2)
		bench_fault_scaling(n);
	return 0;
}
