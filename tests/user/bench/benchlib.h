/*
 * Shared by the user-space benchmarks: timing and the output format that
 * `cargo xtask bench` parses, one line per figure:
 *
 *     <name> <value> <unit>
 *
 * Each figure is the median of ROUNDS rounds. The same static binaries run
 * under Linux (cargo xtask bench --vs-linux) and, once user processes exist,
 * under our kernel.
 */
#ifndef BENCHLIB_H
#define BENCHLIB_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define ROUNDS 7

static inline long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Prints the median of `rounds` per-operation costs. */
static inline void report(const char *name, double *rounds, int n, const char *unit)
{
	qsort(rounds, n, sizeof(double), cmp_double);
	printf("%s %.3f %s\n", name, rounds[n / 2], unit);
	fflush(stdout);
}

#endif
