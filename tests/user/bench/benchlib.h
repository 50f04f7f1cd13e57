/*
 * Shared by the user-space benchmarks: timing and the output format that
 * `cargo xtask bench` parses, one line per figure:
 *
 *     <name> <value> <unit>
 *
 * Each figure is the median of ROUNDS rounds; each program keeps its total
 * work to a few seconds under QEMU TCG (its header says how much). The
 * same static binaries run under Linux (cargo xtask bench --vs-linux) and
 * under our kernel (/bench in the initramfs, run by the kernel's benchmark
 * harness). With the argument "smoke" a program does one round of 1/64 of
 * its work: `cargo xtask test` runs it so that it cannot rot.
 */
#ifndef BENCHLIB_H
#define BENCHLIB_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS 7
#define PAGE 4096UL

/* Rounds to run and the divisor of each round's work: ROUNDS and 1, or 1
 * and 64 in a smoke run. */
static int bench_rounds = ROUNDS;
static unsigned long bench_scale = 1;

/* Call first: reads the optional "smoke" argument. */
static inline void bench_args(int argc, char **argv)
{
	if (argc > 1 && argv[1][0] == 's') {
		bench_rounds = 1;
		bench_scale = 64;
	}
}

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

/* A private anonymous read-write mapping of `len` bytes; exits on failure. */
static inline char *map_anon(unsigned long len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	return p;
}

/* Writes `value` to the first byte of every page of `p[0..len)`. */
static inline void touch(volatile char *p, unsigned long len, char value)
{
	for (unsigned long off = 0; off < len; off += PAGE)
		p[off] = value;
}

/* Prints the median of the first `n` per-operation costs in `rounds`. */
/* Ends the program on a failed call, naming it (errno's text after it). */
static inline void die(const char *what)
{
	perror(what);
	exit(1);
}

/* `len` bytes in as many write(2)s as it takes: a kernel may move fewer
 * per call (a short write; ours moves at most 64 KiB). */
/* A number from a "name value" or "Name: value kB" line of `path`. */
static inline unsigned long long proc_value(const char *path, const char *name)
{
	char line[256];
	size_t len = strlen(name);
	unsigned long long value = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		die(path);
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, name, len) == 0 && (line[len] == ' ' || line[len] == ':')) {
			value = strtoull(line + len + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return value;
}

static inline unsigned long long vmstat(const char *name)
{
	return proc_value("/proc/vmstat", name);
}

static inline void write_all(int fd, const char *buf, unsigned long len)
{
	for (unsigned long done = 0; done < len;) {
		ssize_t n = write(fd, buf + done, len - done);

		if (n <= 0)
			die("write");
		done += n;
	}
}

/* `sync` then `echo 3 > /proc/sys/vm/drop_caches`: a cold page cache
 * (both kernels have the file). */
static inline void drop_caches(void)
{
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);

	sync();
	if (fd < 0)
		die("open /proc/sys/vm/drop_caches");
	if (write(fd, "3\n", 2) != 2)
		die("write drop_caches");
	close(fd);
}

/* Mounts the ext2 disk `device` on `dir`, made if missing. */
static inline void mount_ext2(const char *device, const char *dir)
{
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		die("mkdir");
	if (mount(device, dir, "ext2", 0, NULL) != 0)
		die("mount");
}

static inline void report(const char *name, double *rounds, int n, const char *unit)
{
	qsort(rounds, n, sizeof(double), cmp_double);
	printf("%s %.3f %s\n", name, rounds[n / 2], unit);
	fflush(stdout);
}

#endif
