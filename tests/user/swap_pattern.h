/*
 * Shared by the swap test programs (swap_test.c, swap_err_test.c,
 * swap_ra_test.c, madv_swap_test.c, swap_stress.h): each page's pattern,
 * memory pressure, and a wait for SIGUSR1 that needs nothing but signal
 * delivery and nanosleep (sigwait needs rt_sigtimedwait).
 */
#ifndef SWAP_PATTERN_H
#define SWAP_PATTERN_H

#include <signal.h>
#include <sys/mman.h>
#include <time.h>

#ifndef PAGE
#define PAGE 4096UL
#endif
#define WORDS (PAGE / sizeof(unsigned long))

/* Word `w` of page `page` under `seed`: every page and every seed its own. */
static inline unsigned long pattern_word(unsigned long page, unsigned long w, unsigned long seed)
{
	unsigned long x = (page * WORDS + w) ^ seed;

	x ^= x >> 31;
	x *= 0x9e3779b97f4a7c15UL;
	return x ^ (x >> 29);
}

/* Touches `mib` MiB of new memory, then lets it go: reclaim must run. */
static inline void pressure(unsigned long mib)
{
	char *p = mmap(NULL, mib << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return;
	for (unsigned long off = 0; off < mib << 20; off += PAGE)
		p[off] = 1;
	munmap(p, mib << 20);
}

static volatile sig_atomic_t usr1_seen;

static inline void on_usr1(int sig)
{
	(void)sig;
	usr1_seen = 1;
}

/* Installs the SIGUSR1 handler (inherited by children forked after). */
static inline void usr1_catch(void)
{
	struct sigaction sa = { .sa_handler = on_usr1 };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
}

/* Waits until the handler saw SIGUSR1, polling between short sleeps. */
static inline void usr1_wait(void)
{
	struct timespec nap = { .tv_nsec = 10 * 1000 * 1000 };

	while (!usr1_seen)
		nanosleep(&nap, NULL);
}

#endif
