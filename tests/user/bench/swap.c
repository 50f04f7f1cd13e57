/*
 * Swap's figures, on the bench machine's swap disk (/dev/vdc: a whole
 * virtio disk of four times the machine's memory and 64 MiB, which xtask
 * formats with util-linux mkswap for each boot, attached alike under
 * Linux). The program turns it on with swapon(2) and off at the end.
 * Each round maps an anonymous region R of twice MemTotal
 * (MADV_NOHUGEPAGE: 4 KiB pages on both kernels; Linux would write
 * transparent huge pages to swap whole) and:
 *
 *   user::swap_out_mib_s        MiB/s written to swap: pswpout (pages, in
 *                               /proc/vmstat) x 4 KiB over the time to
 *                               write one word to every page of R's second
 *                               half, after the first half filled memory.
 *                               Every page it touches needs a free page,
 *                               which reclaim makes by swapping out R's
 *                               oldest pages, so the time is that of
 *                               swap-out (the write of each page to the
 *                               disk is submitted in that time, and the
 *                               last few are still in flight at its end)
 *   user::swap_in_mib_s         MiB/s read from swap: pswpin x 4 KiB over
 *                               the time to read back R's first quarter,
 *                               swapped out by then, one word per page in
 *                               order, after MADV_DONTNEED freed R's
 *                               second half: memory is free for all of it,
 *                               so the time is that of swap-in (readahead
 *                               reads count in pswpin as they are made)
 *   user::swap_major_fault      ns per first read of a swapped-out page
 *                               of R's third eighth, at random (the median
 *                               of a round's reads, each timed alone; 32
 *                               pages or more apart, so that no readahead
 *                               window of one holds another) with
 *                               vm.page-cluster as the kernel has it (3 by
 *                               default: Linux reads up to 8 slots)
 *   user::swap_major_fault_cluster0
 *                               the same on R's fourth eighth with
 *                               /proc/sys/vm/page-cluster set to 0 (one
 *                               slot per fault), restored afterwards;
 *                               left out, saying why, if the file cannot
 *                               be written
 *
 * The raw rates of the same kind of disk in the same boot are the
 * in-kernel block::vda_seq_write_8m_pass and block::vda_seq_read_8m_pass
 * (xtask runs them with this program and prints swap / raw).
 *
 * Every page holds its index and the round's tag, checked when read
 * back. Run it with --mem 128 (a larger machine swaps more, and takes
 * longer). 5 rounds; what each round saw (resident pages, counts) goes
 * to stderr. A smoke run maps a 64th of the region once: there is no
 * pressure, nothing is swapped, and the figures only prove the program
 * runs.
 */
#include <stdint.h>
#include <string.h>
#include <sys/swap.h>
#include "benchlib.h"

#define DEVICE "/dev/vdc"
#define PAGE_CLUSTER "/proc/sys/vm/page-cluster"
#define SWAP_ROUNDS 5
#define MIB (1UL << 20)
/* Pages between two timed faults, at least: twice the largest
 * readahead window of the default page-cluster (8 slots). */
#define FAULT_STRIDE 32
/* Timed faults per range and round, at most. */
#define MAX_FAULTS 256

/* The word page `i` of round `tag` holds. */
static uint64_t word(unsigned long i, unsigned tag)
{
	return ((uint64_t)tag << 48) ^ i;
}

/* Writes each page's word into pages [from, to) of `p`. */
static void fill(char *p, unsigned long from, unsigned long to, unsigned tag)
{
	for (unsigned long i = from; i < to; i++)
		*(volatile uint64_t *)(p + i * PAGE) = word(i, tag);
}

/* Checks page `i`'s word; ends the program if it is wrong. */
static void check(const char *p, unsigned long i, unsigned tag)
{
	uint64_t got = *(const volatile uint64_t *)(p + i * PAGE);

	if (got != word(i, tag)) {
		fprintf(stderr, "swap: page %lu holds %#llx, not %#llx\n", i, (unsigned long long)got,
			(unsigned long long)word(i, tag));
		exit(1);
	}
}

/* Pages of [from, to) resident now (mincore). */
static unsigned long resident(char *p, unsigned long from, unsigned long to)
{
	static unsigned char vec[1UL << 18];
	unsigned long n = 0;

	for (unsigned long at = from; at < to;) {
		unsigned long len = to - at < sizeof(vec) ? to - at : sizeof(vec);

		if (mincore(p + at * PAGE, len * PAGE, vec) != 0)
			die("mincore");
		for (unsigned long i = 0; i < len; i++)
			n += vec[i] & 1;
		at += len;
	}
	return n;
}

/* MiB moved by `pages` pages in `ns`. */
static double mib_s(unsigned long long pages, long long ns)
{
	return ns > 0 ? (double)pages * PAGE / MIB * 1e9 / (double)ns : 0.0;
}

/* A fixed pseudo-random sequence (xorshift64). */
static uint64_t next_random(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*state = x;
	return x;
}

/* The median ns of a first read of pages of [from, to), FAULT_STRIDE or
 * more apart, in random order. */
static double fault_latency(char *p, unsigned long from, unsigned long to, unsigned tag, uint64_t *seed)
{
	static unsigned long order[MAX_FAULTS];
	static double ns[MAX_FAULTS];
	unsigned long n = (to - from) / FAULT_STRIDE;

	if (n > MAX_FAULTS)
		n = MAX_FAULTS;
	if (n == 0)
		return 0.0;
	for (unsigned long i = 0; i < n; i++)
		order[i] = i;
	for (unsigned long i = n - 1; i > 0; i--) {
		unsigned long j = next_random(seed) % (i + 1), t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	for (unsigned long i = 0; i < n; i++) {
		unsigned long page = from + order[i] * FAULT_STRIDE + next_random(seed) % FAULT_STRIDE;
		long long t0 = now_ns();

		check(p, page, tag);
		ns[i] = (double)(now_ns() - t0);
	}
	qsort(ns, n, sizeof(double), cmp_double);
	return ns[n / 2];
}

/* Writes `value` to the page-cluster sysctl; 0 or an errno. */
static int set_page_cluster(const char *value)
{
	int fd = open(PAGE_CLUSTER, O_WRONLY);
	int err = 0;

	if (fd < 0)
		return errno;
	if (write(fd, value, strlen(value)) != (ssize_t)strlen(value))
		err = errno ? errno : EIO;
	close(fd);
	return err;
}

/* The page-cluster sysctl's value as text ("" if it cannot be read). */
static void get_page_cluster(char *buf, size_t size)
{
	int fd = open(PAGE_CLUSTER, O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, size - 1);

	buf[n > 0 ? n : 0] = '\0';
	if (fd >= 0)
		close(fd);
}

int main(int argc, char **argv)
{
	double out[SWAP_ROUNDS], in[SWAP_ROUNDS], fault[SWAP_ROUNDS], fault0[SWAP_ROUNDS];
	int cluster0 = 1;
	uint64_t seed = 0x9e3779b97f4a7c15ULL;
	char cluster[32];

	bench_args(argc, argv);
	int smoke = bench_scale > 1;
	int rounds = smoke ? 1 : SWAP_ROUNDS;
	unsigned long mem = proc_value("/proc/meminfo", "MemTotal") * 1024;
	unsigned long pages = ((2 * mem / bench_scale) & ~(MIB - 1)) / PAGE;
	unsigned long len = pages * PAGE;

	if (swapon(DEVICE, 0) != 0)
		die("swapon " DEVICE);
	get_page_cluster(cluster, sizeof(cluster));
	fprintf(stderr, "swap: %lu MiB of memory, a region of %lu MiB, %llu KiB of swap, page-cluster %s\n",
		mem >> 20, len >> 20, proc_value("/proc/meminfo", "SwapTotal"),
		cluster[0] ? strtok(cluster, "\n") : "(no such file)");
	for (int r = 0; r < rounds; r++) {
		unsigned tag = r + 1;
		char *p = map_anon(len);

		/* Ours has no transparent huge pages to refuse. */
		madvise(p, len, MADV_NOHUGEPAGE);
		fill(p, 0, pages / 2, tag);

		unsigned long long out0 = vmstat("pswpout");
		long long t0 = now_ns();
		fill(p, pages / 2, pages, tag);
		long long out_ns = now_ns() - t0;
		unsigned long long written = vmstat("pswpout") - out0;
		out[r] = mib_s(written, out_ns);

		if (madvise(p + len / 2, len / 2, MADV_DONTNEED) != 0)
			die("madvise(MADV_DONTNEED)");
		unsigned long quarter = pages / 4, eighth = pages / 8;
		unsigned long was_resident = resident(p, 0, pages / 2);
		unsigned long long in0 = vmstat("pswpin");
		t0 = now_ns();
		for (unsigned long i = 0; i < quarter; i++)
			check(p, i, tag);
		long long in_ns = now_ns() - t0;
		unsigned long long read = vmstat("pswpin") - in0;
		in[r] = mib_s(read, in_ns);

		in0 = vmstat("pswpin");
		fault[r] = fault_latency(p, quarter, quarter + eighth, tag, &seed);
		unsigned long long read_ra = vmstat("pswpin") - in0;
		unsigned long long read0 = 0;
		if (cluster0) {
			int err = set_page_cluster("0\n");

			if (err) {
				fprintf(stderr, "swap: no user::swap_major_fault_cluster0: writing 0 to %s: %s\n",
					PAGE_CLUSTER, strerror(err));
				cluster0 = 0;
			} else {
				in0 = vmstat("pswpin");
				fault0[r] = fault_latency(p, quarter + eighth, pages / 2, tag, &seed);
				read0 = vmstat("pswpin") - in0;
				err = set_page_cluster(cluster);
				if (err) {
					fprintf(stderr, "swap: restoring page-cluster %s: %s\n", cluster, strerror(err));
					exit(1);
				}
			}
		}
		fprintf(stderr, "swap: round %d: swap-out %llu pages in %.0f ms; first half %lu of %lu pages "
			"resident after; swap-in %llu pages in %.0f ms; random faults read %llu pages "
			"(page-cluster %s), %llu (page-cluster 0)\n", r, written, (double)out_ns / 1e6,
			was_resident, pages / 2, read, (double)in_ns / 1e6, read_ra, cluster[0] ? cluster : "-",
			read0);
		if (munmap(p, len) != 0)
			die("munmap");
	}
	if (swapoff(DEVICE) != 0)
		die("swapoff " DEVICE);
	report("user::swap_out_mib_s", out, rounds, "MiB/s");
	report("user::swap_in_mib_s", in, rounds, "MiB/s");
	report("user::swap_major_fault", fault, rounds, "ns/fault");
	if (cluster0)
		report("user::swap_major_fault_cluster0", fault0, rounds, "ns/fault");
	return 0;
}
