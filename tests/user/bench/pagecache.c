/*
 * The page cache's figures, on the ext2 file system of the bench
 * machine's second disk (/dev/vdb, as file_seq.c uses it), with a 16 MiB
 * file and 1 MiB read(2)s and write(2)s (ours moves at most 64 KiB a
 * call: the program loops on the short counts):
 *
 *   user::pagecache_write_16m         write(2) into the cache, no fsync
 *                                     (a new file each round: block
 *                                     allocation included), MB/s
 *   user::pagecache_write_fsync_16m   the same plus fsync(2): the rate at
 *                                     which data reaches the disk, MB/s
 *   user::pagecache_read_cold_16m     read(2) after drop_caches (the
 *                                     file written back, then 3 written
 *                                     to /proc/sys/vm/drop_caches), MB/s
 *   user::pagecache_read_cached_16m   read(2) of the file all in the
 *                                     cache, MB/s
 *   user::pagecache_mmap_fault_around     ns per page: mmap the cached
 *   user::pagecache_mmap_fault_nofa       file read-only, read a byte of
 *                                     every page, munmap; with the default
 *                                     fault-around (64 KiB: one fault maps
 *                                     16 pages) and with fault_around_bytes
 *                                     set to 4096 (every page faults)
 *
 * fault_around_bytes is Linux's debugfs file: the program mounts debugfs
 * on /sys/kernel/debug (ours has none to mount, and serves the file at
 * that path anyway), writes 4096, and writes the old value back after.
 * Where it cannot be set, the no-fault-around figure is left out, saying
 * so on stderr. Each figure is the median of ROUNDS rounds; a smoke run
 * moves 256 KiB once.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include "benchlib.h"

#define DEVICE "/dev/vdb"
#define MOUNT_POINT "/mnt-bench"
#define FILE_PATH MOUNT_POINT "/pagecache"
#define CHUNK (1UL << 20)
#define FILE_BYTES ((16UL << 20) / bench_scale)
#define FAULT_AROUND "/sys/kernel/debug/fault_around_bytes"

static double mb_per_s(long long t0)
{
	return (double)FILE_BYTES * 1000.0 / (double)(now_ns() - t0);
}

/* Reads the whole file from its start in CHUNK reads, checking the index
 * each page starts with. */
static void read_file(int fd, char *buf)
{
	if (lseek(fd, 0, SEEK_SET) != 0)
		die("lseek");
	for (unsigned long off = 0; off < FILE_BYTES;) {
		ssize_t n = read(fd, buf, CHUNK);

		if (n <= 0 || n % PAGE != 0)
			die("read");
		for (long p = 0; p < n; p += PAGE) {
			if (*(unsigned long *)(buf + p) != (off + p) / PAGE) {
				fprintf(stderr, "pagecache: wrong data at byte %lu\n", off + p);
				exit(1);
			}
		}
		off += n;
	}
}

/* Writes a new file; returns the open descriptor and MB/s, with or
 * without the fsync in the time. */
static int write_file(char *buf, int with_fsync, double *mbs)
{
	long long t0 = now_ns();
	int fd = open(FILE_PATH, O_RDWR | O_CREAT | O_TRUNC, 0644);

	if (fd < 0)
		die("open for writing");
	for (unsigned long off = 0; off < FILE_BYTES; off += CHUNK) {
		for (unsigned long p = 0; p < CHUNK; p += PAGE)
			*(unsigned long *)(buf + p) = (off + p) / PAGE;
		write_all(fd, buf, FILE_BYTES - off < CHUNK ? FILE_BYTES - off : CHUNK);
	}
	if (with_fsync && fsync(fd) != 0)
		die("fsync");
	*mbs = mb_per_s(t0);
	if (!with_fsync && fsync(fd) != 0)
		die("fsync");
	return fd;
}

/* Writes the file back and drops the clean page cache. */
/* ns per page to map the cached file, read a byte of each page, unmap. */
static double mmap_touch(int fd)
{
	long long t0 = now_ns();
	volatile char *m = mmap(NULL, FILE_BYTES, PROT_READ, MAP_PRIVATE, fd, 0);
	unsigned long sum = 0;

	if (m == MAP_FAILED)
		die("mmap");
	for (unsigned long off = 0; off < FILE_BYTES; off += PAGE)
		sum += m[off];
	munmap((void *)m, FILE_BYTES);
	if (sum == ~0UL)
		printf("unreachable\n");
	return (double)(now_ns() - t0) / (double)(FILE_BYTES / PAGE);
}

/* Sets fault_around_bytes to `value`; returns the old value, or -1 if
 * it cannot be set here. */
static long set_fault_around(long value)
{
	char text[32];
	long old;
	int fd;
	ssize_t n;

	mkdir("/sys", 0755);
	mkdir("/sys/kernel", 0755);
	mkdir("/sys/kernel/debug", 0755);
	/* Linux: debugfs; ours: ENODEV, and the file is there all the same. */
	if (mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL) != 0 && errno != EBUSY)
		fprintf(stderr, "pagecache: mount debugfs: %s\n", strerror(errno));
	fd = open(FAULT_AROUND, O_RDWR);
	if (fd < 0) {
		fprintf(stderr, "pagecache: open %s: %s\n", FAULT_AROUND, strerror(errno));
		return -1;
	}
	n = read(fd, text, sizeof(text) - 1);
	if (n <= 0) {
		fprintf(stderr, "pagecache: read %s: %s\n", FAULT_AROUND, strerror(errno));
		close(fd);
		return -1;
	}
	text[n] = 0;
	old = atol(text);
	n = snprintf(text, sizeof(text), "%ld\n", value);
	/* A new open: debugfs attributes take one write at offset 0. */
	close(fd);
	fd = open(FAULT_AROUND, O_WRONLY);
	if (fd < 0 || write(fd, text, n) != n) {
		fprintf(stderr, "pagecache: write %s: %s\n", FAULT_AROUND, strerror(errno));
		old = -1;
	}
	if (fd >= 0)
		close(fd);
	return old;
}

int main(int argc, char **argv)
{
	double write_mbs[ROUNDS], fsync_mbs[ROUNDS], cold_mbs[ROUNDS], cached_mbs[ROUNDS];
	double around_ns[ROUNDS], nofa_ns[ROUNDS];
	int fd = -1;

	bench_args(argc, argv);
	char *buf = map_anon(CHUNK);

	mount_ext2(DEVICE, MOUNT_POINT);
	for (int r = 0; r < bench_rounds; r++) {
		close(write_file(buf, 1, &fsync_mbs[r]));
		fd = write_file(buf, 0, &write_mbs[r]);
		drop_caches();
		long long t0 = now_ns();
		read_file(fd, buf);
		cold_mbs[r] = mb_per_s(t0);
		t0 = now_ns();
		read_file(fd, buf);
		cached_mbs[r] = mb_per_s(t0);
		around_ns[r] = mmap_touch(fd);
		if (r + 1 < bench_rounds)
			close(fd);
	}
	long old = set_fault_around(PAGE);
	if (old >= 0) {
		for (int r = 0; r < bench_rounds; r++)
			nofa_ns[r] = mmap_touch(fd);
		if (set_fault_around(old) < 0)
			die("restoring fault_around_bytes");
	} else {
		fprintf(stderr, "pagecache: cannot set %s: no figure without fault-around\n", FAULT_AROUND);
	}
	close(fd);
	if (unlink(FILE_PATH) != 0)
		die("unlink");
	if (umount(MOUNT_POINT) != 0)
		die("umount " MOUNT_POINT);
	report("user::pagecache_write_16m", write_mbs, bench_rounds, "MB/s");
	report("user::pagecache_write_fsync_16m", fsync_mbs, bench_rounds, "MB/s");
	report("user::pagecache_read_cold_16m", cold_mbs, bench_rounds, "MB/s");
	report("user::pagecache_read_cached_16m", cached_mbs, bench_rounds, "MB/s");
	report("user::pagecache_mmap_fault_around", around_ns, bench_rounds, "ns/page");
	if (old >= 0)
		report("user::pagecache_mmap_fault_nofa", nofa_ns, bench_rounds, "ns/page");
	return 0;
}
