/*
 * Reclaim's figures, on the ext2 file system of the bench machine's
 * second disk (/dev/vdb, as file_seq.c uses it), with a file twice the
 * machine's memory (MemTotal), written once:
 *
 *   user::reclaim_kswapd_pages_s   pages kswapd reclaimed per second
 *                                  (pgsteal_kswapd in /proc/vmstat over
 *                                  the time) while a cold read(2) of the
 *                                  whole file streams through memory
 *   user::reclaim_stream_read      that read's rate, MB/s
 *   user::reclaim_anon_fault       ns per page to touch anonymous memory
 *                                  of a quarter of MemTotal while the
 *                                  rest is full of clean page cache:
 *                                  every allocation finds free memory
 *                                  low, and waits for direct reclaim or
 *                                  kswapd (compare with
 *                                  user::anon_first_touch_fault)
 *
 * Run it with --mem 128: the file must fit the 320 MiB disk (a larger
 * machine gets a file of 90% of the free space, said on stderr, and
 * less pressure). Each round drops the caches first. 3 rounds; the
 * direct reclaim and kswapd counts of each round go to stderr. A smoke run uses a 4 MiB
 * file and touches 1 MiB once (no pressure: the figures only prove the
 * program runs).
 */
#include <string.h>
#include <sys/statvfs.h>
#include "benchlib.h"

#define DEVICE "/dev/vdb"
#define MOUNT_POINT "/mnt-bench"
#define FILE_PATH MOUNT_POINT "/reclaim"
#define CHUNK (1UL << 20)
#define RECLAIM_ROUNDS 3

/* Reads the whole file in CHUNK reads, checking the index each page
 * starts with. */
static void read_file(const char *path, unsigned long bytes, char *buf)
{
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		die("open for reading");
	for (unsigned long off = 0; off < bytes;) {
		ssize_t n = read(fd, buf, CHUNK);

		if (n <= 0 || n % PAGE != 0)
			die("read");
		for (long p = 0; p < n; p += PAGE) {
			if (*(unsigned long *)(buf + p) != (off + p) / PAGE) {
				fprintf(stderr, "reclaim: wrong data at byte %lu\n", off + p);
				exit(1);
			}
		}
		off += n;
	}
	close(fd);
}

int main(int argc, char **argv)
{
	double kswapd_rate[RECLAIM_ROUNDS], stream[RECLAIM_ROUNDS], fault[RECLAIM_ROUNDS];
	int rounds;
	char *buf;

	bench_args(argc, argv);
	int smoke = bench_scale > 1;
	unsigned long mem = proc_value("/proc/meminfo", "MemTotal") * 1024;
	unsigned long bytes = smoke ? 4UL << 20 : (2 * mem) & ~(CHUNK - 1);
	unsigned long anon = smoke ? 1UL << 20 : (mem / 4) & ~(PAGE - 1);

	buf = map_anon(CHUNK);
	mount_ext2(DEVICE, MOUNT_POINT);
	struct statvfs fs;
	if (statvfs(MOUNT_POINT, &fs) != 0)
		die("statvfs");
	unsigned long room = ((unsigned long)fs.f_bavail * fs.f_frsize / 10 * 9) & ~(CHUNK - 1);
	if (bytes > room) {
		fprintf(stderr, "reclaim: %lu MiB of memory, only %lu MiB of disk: less pressure\n", mem >> 20,
			room >> 20);
		bytes = room;
	}
	int fd = open(FILE_PATH, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die("open for writing");
	for (unsigned long off = 0; off < bytes; off += CHUNK) {
		for (unsigned long p = 0; p < CHUNK; p += PAGE)
			*(unsigned long *)(buf + p) = (off + p) / PAGE;
		write_all(fd, buf, CHUNK);
	}
	if (fsync(fd) != 0)
		die("fsync");
	close(fd);
	rounds = smoke ? 1 : RECLAIM_ROUNDS;
	for (int r = 0; r < rounds; r++) {
		drop_caches();
		unsigned long long kswapd0 = vmstat("pgsteal_kswapd"), direct0 = vmstat("pgsteal_direct");
		long long t0 = now_ns();
		read_file(FILE_PATH, bytes, buf);
		long long ns = now_ns() - t0;
		unsigned long long kswapd = vmstat("pgsteal_kswapd") - kswapd0;
		unsigned long long direct = vmstat("pgsteal_direct") - direct0;
		kswapd_rate[r] = (double)kswapd * 1e9 / (double)ns;
		stream[r] = (double)bytes * 1000.0 / (double)ns;
		/* Memory is full of the file's clean pages now. */
		kswapd0 = vmstat("pgsteal_kswapd");
		direct0 = vmstat("pgsteal_direct");
		char *p = map_anon(anon);
		t0 = now_ns();
		touch(p, anon, 1);
		fault[r] = (double)(now_ns() - t0) / (double)(anon / PAGE);
		if (munmap(p, anon) != 0)
			die("munmap");
		fprintf(stderr, "reclaim: round %d: read %lu MiB: pgsteal_kswapd +%llu, pgsteal_direct +%llu; "
			"anon touch: pgsteal_kswapd +%llu, pgsteal_direct +%llu\n", r, bytes >> 20, kswapd, direct,
			vmstat("pgsteal_kswapd") - kswapd0, vmstat("pgsteal_direct") - direct0);
	}
	if (unlink(FILE_PATH) != 0)
		die("unlink");
	if (umount(MOUNT_POINT) != 0)
		die("umount " MOUNT_POINT);
	report("user::reclaim_kswapd_pages_s", kswapd_rate, rounds, "pages/s");
	report("user::reclaim_stream_read", stream, rounds, "MB/s");
	report("user::reclaim_anon_fault", fault, rounds, "ns/page");
	return 0;
}
