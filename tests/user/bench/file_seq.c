/*
 * Sequential file I/O through the file system: a 64 MiB file written with
 * 1 MiB write(2)s and fsync(2), then read back with 1 MiB read(2)s, on the
 * ext2 file system of the bench machine's second virtio disk (/dev/vdb,
 * made for each boot by xtask with `mke2fs -t ext2 -b 4096`; vda is the
 * raw disk the block benchmarks scribble on). ROUNDS x (64 MiB written +
 * 64 MiB read); a smoke run moves 1 MiB each way once.
 *
 * The program mounts the disk itself (mount(2) with "ext2": ours, or
 * Linux's ext4 driver, which serves ext2 in Debian's kernel) and unmounts
 * it at the end. Between writing and reading it writes 3 to
 * /proc/sys/vm/drop_caches, so that on both kernels the read comes from
 * the disk and not from the page cache the write filled.
 *
 * The write figure includes the fsync, so it is the rate at which data
 * reaches the disk, not the page cache. Each 4 KiB of the file starts with
 * its own index, checked on the way back.
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
#define FILE_PATH MOUNT_POINT "/file_seq"
#define CHUNK (1UL << 20)
#define FILE_BYTES ((64UL << 20) / bench_scale)

/* One CHUNK, in as many read(2)s as it takes (as write_all). */
static void read_all(int fd, char *buf)
{
	for (unsigned long done = 0; done < CHUNK;) {
		ssize_t n = read(fd, buf + done, CHUNK - done);

		if (n <= 0) {
			fprintf(stderr, "file_seq: read returned %zd\n", n);
			die("read");
		}
		done += n;
	}
}

/* Writes the file in CHUNK writes and fsyncs it; returns MB/s. */
static double write_file(char *buf)
{
	long long t0 = now_ns();
	int fd = open(FILE_PATH, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0)
		die("open for writing");
	for (unsigned long off = 0; off < FILE_BYTES; off += CHUNK) {
		for (unsigned long p = 0; p < CHUNK; p += PAGE)
			*(unsigned long *)(buf + p) = (off + p) / PAGE;
		write_all(fd, buf, CHUNK);
	}
	if (fsync(fd) != 0)
		die("fsync");
	close(fd);
	return (double)FILE_BYTES * 1000.0 / (double)(now_ns() - t0);
}

/* Reads the file back in CHUNK reads, checking each page's index;
 * returns MB/s. */
static double read_file(char *buf)
{
	long long t0 = now_ns();
	int fd = open(FILE_PATH, O_RDONLY);

	if (fd < 0)
		die("open for reading");
	for (unsigned long off = 0; off < FILE_BYTES; off += CHUNK) {
		read_all(fd, buf);
		for (unsigned long p = 0; p < CHUNK; p += PAGE) {
			if (*(unsigned long *)(buf + p) != (off + p) / PAGE) {
				fprintf(stderr, "file_seq: wrong data at byte %lu\n", off + p);
				exit(1);
			}
		}
	}
	close(fd);
	return (double)FILE_BYTES * 1000.0 / (double)(now_ns() - t0);
}

/* Under Linux: writes back and drops the page cache, so that the read
 * that follows comes from the disk. */
int main(int argc, char **argv)
{
	double write_mbs[ROUNDS], read_mbs[ROUNDS];

	bench_args(argc, argv);
	char *buf = map_anon(CHUNK);

	mount_ext2(DEVICE, MOUNT_POINT);
	for (int r = 0; r < bench_rounds; r++) {
		write_mbs[r] = write_file(buf);
		drop_caches();
		read_mbs[r] = read_file(buf);
		if (unlink(FILE_PATH) != 0)
			die("unlink");
	}
	if (umount(MOUNT_POINT) != 0)
		die("umount " MOUNT_POINT);
	report("user::file_seq_write_64m", write_mbs, bench_rounds, "MB/s");
	report("user::file_seq_read_64m", read_mbs, bench_rounds, "MB/s");
	return 0;
}
