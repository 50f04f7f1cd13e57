/*
 * shmem as Linux gives it: memfds and their seals, shared anonymous
 * memory, and shared mappings of files in a directory:
 *
 *   shmem_test DIR
 *
 * Checks that
 *   - memfd_create makes an empty, unlinked, read-write file (flags
 *     checked, name length checked, MFD_CLOEXEC honoured), which reads,
 *     writes, truncates, fsyncs and maps as "/memfd:NAME (deleted)";
 *   - every seal refuses what it must with EPERM: F_SEAL_SHRINK and
 *     F_SEAL_GROW (ftruncate, writes past the end), F_SEAL_WRITE (write,
 *     pwrite, a shared writable mmap, mprotect to writable of a shared
 *     read-only one; a private one still copies), F_SEAL_FUTURE_WRITE
 *     (the same, while a writable mapping made before keeps writing, and
 *     MADV_REMOVE through it), F_SEAL_SEAL (no more seals); a memfd
 *     without MFD_ALLOW_SEALING takes none; F_SEAL_WRITE while a shared
 *     mapping may write is EBUSY; unknown seal bits are EINVAL;
 *   - shared anonymous memory is faulted in on demand: untouched pages are
 *     not resident (mincore), RssShmem grows with touches only; it is
 *     "/dev/zero (deleted)" in /proc/self/maps; MADV_DONTNEED keeps its
 *     data, MADV_REMOVE zeroes it; grown by mremap, the new part is past
 *     the object's end (SIGBUS); mremap with old_len 0 maps it twice;
 *   - parent and child share shared anonymous memory and memfd mappings
 *     after fork, pages touched before or after the fork;
 *   - a file in DIR mapped shared by two processes is one page; a file in
 *     DIR takes seals only if DIR is tmpfs (F_SEAL_SEAL from the start).
 *
 * Passes on Linux with DIR on tmpfs (/dev/shm) or another file system
 * (/tmp on ext4).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "utest.h"

#define PAGE 4096
#define TMPFS_MAGIC 0x01021994

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif
#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

static sigjmp_buf bus_jump;
static volatile sig_atomic_t bus_seen;

static void on_sigbus(int sig)
{
	(void)sig;
	bus_seen = 1;
	siglongjmp(bus_jump, 1);
}

/* Whether touching `p` raises SIGBUS. */
static int touch_raises_sigbus(volatile char *p)
{
	bus_seen = 0;
	if (sigsetjmp(bus_jump, 1) == 0)
		(void)*p;
	return bus_seen;
}

static int memfd(const char *name, unsigned flags)
{
	return (int)syscall(SYS_memfd_create, name, flags);
}

/* Whether /proc/self/maps has a line for `addr` ending in `name`. */
static int maps_names(void *addr, const char *name)
{
	static char maps[16384];
	char start[32];

	if (utest_read_file("/proc/self/maps", maps, sizeof(maps)) < 0)
		return 0;
	snprintf(start, sizeof(start), "%lx-", (unsigned long)addr);
	for (char *line = maps; *line;) {
		char *end = strchr(line, '\n');
		if (end)
			*end = 0;
		size_t len = strlen(line), nlen = strlen(name);
		if (strncmp(line, start, strlen(start)) == 0 && len >= nlen && strcmp(line + len - nlen, name) == 0)
			return 1;
		if (!end)
			break;
		line = end + 1;
	}
	return 0;
}

/* A "Name:   value kB" line of /proc/self/status, in kB; -1 if absent. */
static long status_kb(const char *field)
{
	static char status[4096];

	if (utest_read_file("/proc/self/status", status, sizeof(status)) < 0)
		return -1;
	char *p = strstr(status, field);
	return p ? atol(p + strlen(field)) : -1;
}

/* How many of the `pages` pages at `addr` mincore says are resident. */
static int resident(void *addr, int pages, unsigned char *vec)
{
	int n = 0;

	if (mincore(addr, (size_t)pages * PAGE, vec) != 0)
		return -1;
	for (int i = 0; i < pages; i++)
		n += vec[i] & 1;
	return n;
}

static void memfd_basics(void)
{
	struct stat st;
	char name[300], buf[8] = { 0 };

	CHECK(memfd("x", 0x100) == -1 && errno == EINVAL, "memfd_create with an unknown flag: EINVAL");
	memset(name, 'n', 250);
	name[250] = 0;
	CHECK(memfd(name, 0) == -1 && errno == EINVAL, "a 250-byte name: EINVAL");
	name[249] = 0;
	int longest = memfd(name, 0);
	CHECK(longest >= 0, "a 249-byte name");
	close(longest);

	int fd = memfd("basics", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	CHECK(fd >= 0, "memfd_create(MFD_CLOEXEC | MFD_ALLOW_SEALING)");
	if (fd < 0)
		return;
	CHECK(fcntl(fd, F_GETFD) == FD_CLOEXEC, "MFD_CLOEXEC sets FD_CLOEXEC");
	CHECK((fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR, "open for reading and writing");
	CHECK(fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0 && st.st_nlink == 0,
	      "an empty regular file with no link");
	CHECK(fcntl(fd, F_GET_SEALS) == 0, "no seals with MFD_ALLOW_SEALING");
	CHECK(write(fd, "memfd", 5) == 5 && pread(fd, buf, 5, 0) == 5 && memcmp(buf, "memfd", 5) == 0,
	      "writes and reads back");
	CHECK(ftruncate(fd, 3 * PAGE) == 0 && fstat(fd, &st) == 0 && st.st_size == 3 * PAGE, "ftruncate grows it");
	CHECK(pread(fd, buf, 4, 2 * PAGE) == 4 && memcmp(buf, "\0\0\0\0", 4) == 0, "the hole reads as zeros");
	CHECK(fsync(fd) == 0 && fdatasync(fd) == 0, "fsync and fdatasync succeed");
	char *m = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(m != MAP_FAILED, "mmap MAP_SHARED");
	if (m != MAP_FAILED) {
		CHECK(memcmp(m, "memfd", 5) == 0, "the mapping shows the data");
		m[2 * PAGE] = 'z';
		CHECK(pread(fd, buf, 1, 2 * PAGE) == 1 && buf[0] == 'z', "read(2) sees a write through it");
		CHECK(maps_names(m, "/memfd:basics (deleted)"), "/proc/self/maps names it /memfd:basics (deleted)");
		munmap(m, 3 * PAGE);
	}
	close(fd);

	fd = memfd("unsealable", 0);
	CHECK(fcntl(fd, F_GET_SEALS) == F_SEAL_SEAL, "without MFD_ALLOW_SEALING: F_SEAL_SEAL");
	CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE) == -1 && errno == EPERM, "and no seal can be added: EPERM");
	close(fd);
}

static void size_seals(void)
{
	int fd = memfd("size", MFD_ALLOW_SEALING);
	CHECK(fd >= 0 && write(fd, "0123456789", 10) == 10, "a 10-byte memfd");
	CHECK(fcntl(fd, F_ADD_SEALS, 0x40) == -1 && errno == EINVAL, "an unknown seal bit: EINVAL");
	CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) == 0, "F_SEAL_SHRINK");
	CHECK(ftruncate(fd, 5) == -1 && errno == EPERM, "shrinking: EPERM");
	CHECK(ftruncate(fd, 12) == 0, "growing is still allowed");
	CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_GROW) == 0, "F_SEAL_GROW");
	CHECK(fcntl(fd, F_GET_SEALS) == (F_SEAL_SHRINK | F_SEAL_GROW), "F_GET_SEALS shows both");
	CHECK(ftruncate(fd, 20) == -1 && errno == EPERM, "growing: EPERM");
	CHECK(ftruncate(fd, 12) == 0, "the same size is no change");
	CHECK(pwrite(fd, "ab", 2, 10) == 2, "a write inside the file");
	CHECK(pwrite(fd, "ab", 2, 11) == -1 && errno == EPERM, "a write past the end: EPERM");
	CHECK(lseek(fd, 0, SEEK_END) == 12 && write(fd, "x", 1) == -1 && errno == EPERM, "an append: EPERM");
	CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL) == 0, "F_SEAL_SEAL");
	CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE) == -1 && errno == EPERM, "then no more seals: EPERM");
	CHECK(fcntl(fd, F_GET_SEALS) == (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL), "the seals stay as they were");
	close(fd);
}

static void write_seal(void)
{
	int fd = memfd("write", MFD_ALLOW_SEALING);
	CHECK(fd >= 0 && ftruncate(fd, 2 * PAGE) == 0 && pwrite(fd, "data", 4, 0) == 4, "a 2-page memfd");
	char *w = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	char *r = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(w != MAP_FAILED && r != MAP_FAILED, "a shared writable and a shared read-only mapping");
	CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE) == -1 && errno == EBUSY,
	      "F_SEAL_WRITE while a shared mapping may write: EBUSY");
	munmap(w, 2 * PAGE);
	CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE) == -1 && errno == EBUSY,
	      "a read-only shared mapping of a writer may still become writable: EBUSY");
	munmap(r, PAGE);
	CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE) == 0, "F_SEAL_WRITE once they are gone");
	CHECK(write(fd, "x", 1) == -1 && errno == EPERM, "write: EPERM");
	CHECK(pwrite(fd, "x", 1, 100) == -1 && errno == EPERM, "pwrite: EPERM");
	errno = 0;
	CHECK(mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED && errno == EPERM,
	      "a shared writable mmap: EPERM");
	r = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(r != MAP_FAILED && memcmp(r, "data", 4) == 0, "a shared read-only mmap reads the data");
	CHECK(mprotect(r, PAGE, PROT_READ | PROT_WRITE) == -1 && errno == EACCES,
	      "and cannot be made writable: EACCES");
	char *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	CHECK(p != MAP_FAILED, "a private writable mmap is allowed");
	if (p != MAP_FAILED) {
		p[0] = 'D';
		CHECK(r[0] == 'd', "its write stays private");
		munmap(p, PAGE);
	}
	CHECK(ftruncate(fd, PAGE) == 0, "F_SEAL_WRITE alone does not stop truncation");
	munmap(r, PAGE);
	close(fd);
}

static void future_write_seal(void)
{
	char c = 0;
	int fd = memfd("future", MFD_ALLOW_SEALING);
	CHECK(fd >= 0 && ftruncate(fd, 2 * PAGE) == 0, "a 2-page memfd");
	char *w = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(w != MAP_FAILED, "a shared writable mapping");
	if (w == MAP_FAILED)
		return;
	CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) == 0, "F_SEAL_FUTURE_WRITE with it in place");
	w[PAGE] = 'w';
	CHECK(pread(fd, &c, 1, PAGE) == 1 && c == 'w', "the mapping made before still writes");
	CHECK(write(fd, "x", 1) == -1 && errno == EPERM, "write: EPERM");
	errno = 0;
	CHECK(mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED && errno == EPERM,
	      "a new shared writable mmap: EPERM");
	CHECK(madvise(w, PAGE, MADV_REMOVE) == -1 && errno == EPERM, "MADV_REMOVE through the old mapping: EPERM");
	CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE) == -1 && errno == EBUSY, "F_SEAL_WRITE on top: EBUSY");
	munmap(w, 2 * PAGE);
	close(fd);
}

static void shared_anonymous_is_lazy(void)
{
	enum { PAGES = 256, TOUCHED = 32 };
	static unsigned char vec[PAGES];

	long before = status_kb("RssShmem:");
	char *m = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(m != MAP_FAILED, "mmap MAP_SHARED | MAP_ANONYMOUS");
	if (m == MAP_FAILED)
		return;
	long mapped = status_kb("RssShmem:");
	CHECK(before >= 0 && mapped - before < 32, "mmap makes nothing resident (RssShmem %ld -> %ld kB)", before,
	      mapped);
	CHECK(resident(m, PAGES, vec) == 0, "no page is resident before a touch");
	CHECK(maps_names(m, "/dev/zero (deleted)"), "/proc/self/maps names it /dev/zero (deleted)");
	for (int i = 0; i < TOUCHED; i++)
		m[i * 8 * PAGE] = (char)(i + 1);
	long touched = status_kb("RssShmem:");
	CHECK(touched - mapped >= TOUCHED * 4 && touched - mapped < TOUCHED * 4 + 64,
	      "RssShmem grows by the %d pages touched (%ld -> %ld kB)", TOUCHED, mapped, touched);
	CHECK(resident(m, PAGES, vec) == TOUCHED && vec[0] == 1 && vec[8] == 1 && vec[1] == 0 && vec[7] == 0,
	      "exactly the touched pages are resident");
	CHECK(m[PAGE] == 0 && resident(m, PAGES, vec) == TOUCHED + 1, "a read of an untouched page reads zeros");

	CHECK(madvise(m, 16 * PAGE, MADV_DONTNEED) == 0, "MADV_DONTNEED");
	CHECK(m[0] == 1 && m[8 * PAGE] == 2, "drops the mapping, not the data");
	CHECK(madvise(m, 16 * PAGE, MADV_REMOVE) == 0, "MADV_REMOVE");
	CHECK(m[0] == 0 && m[8 * PAGE] == 0 && m[16 * PAGE] == 3, "frees the data in the range only");
	munmap(m, PAGES * PAGE);
}

static void shared_anonymous_mremap(void)
{
	struct sigaction sa = { .sa_handler = on_sigbus };
	sigaction(SIGBUS, &sa, NULL);
	char *m = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(m != MAP_FAILED, "a 2-page shared anonymous mapping");
	if (m == MAP_FAILED)
		return;
	m[PAGE] = 'm';
	char *dup = mremap(m + PAGE, 0, PAGE, MREMAP_MAYMOVE);
	CHECK(dup != MAP_FAILED && dup != m + PAGE && dup[0] == 'm', "mremap with old_len 0 maps it a second time");
	if (dup != MAP_FAILED) {
		dup[1] = 'd';
		CHECK(m[PAGE + 1] == 'd', "one page under both");
		munmap(dup, PAGE);
	}
	char *g = mremap(m, 2 * PAGE, 3 * PAGE, MREMAP_MAYMOVE);
	CHECK(g != MAP_FAILED && g[PAGE] == 'm', "grown by mremap, the old pages stay");
	if (g == MAP_FAILED)
		return;
	CHECK(touch_raises_sigbus(g + 2 * PAGE), "the new page is past the object's end: SIGBUS");
	char *private = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(mremap(private, 0, PAGE, MREMAP_MAYMOVE) == MAP_FAILED && errno == EINVAL,
	      "old_len 0 of a private mapping: EINVAL");
	munmap(private, PAGE);
	munmap(g, 3 * PAGE);
	signal(SIGBUS, SIG_DFL);
}

/* Runs `child` in a child process; whether it exited 0. */
static int in_child(int (*child)(char *), char *arg)
{
	pid_t pid = fork();
	if (pid == 0)
		_exit(child(arg));
	int status = -1;
	return pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* Sees the parent's page 0, writes page 1 (untouched before the fork). */
static int child_shares(char *m)
{
	if (m[0] != 'p')
		return 1;
	m[PAGE] = 'c';
	m[0] = 'C';
	return 0;
}

static void fork_shares_shared_memory(void)
{
	char *m = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(m != MAP_FAILED, "shared anonymous memory");
	if (m == MAP_FAILED)
		return;
	m[0] = 'p';
	CHECK(in_child(child_shares, m), "the child sees a page the parent wrote before fork");
	CHECK(m[PAGE] == 'c' && m[0] == 'C', "the parent sees the child's writes, to a new page and an old one");
	munmap(m, 2 * PAGE);

	int fd = memfd("forked", 0);
	CHECK(fd >= 0 && ftruncate(fd, 2 * PAGE) == 0, "a memfd");
	m = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(m != MAP_FAILED, "mapped shared");
	if (m == MAP_FAILED)
		return;
	m[0] = 'p';
	char c = 0;
	CHECK(in_child(child_shares, m), "the child sees the parent's write to the memfd");
	CHECK(m[PAGE] == 'c' && pread(fd, &c, 1, 0) == 1 && c == 'C', "and the parent and the file see the child's");
	munmap(m, 2 * PAGE);
	close(fd);
}

/* Maps DIR/file itself and writes its second page. */
static int child_maps_the_file(char *name)
{
	int fd = open(name, O_RDWR);
	char *c = fd < 0 ? MAP_FAILED : mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (c == MAP_FAILED || c[0] != 'f')
		return 1;
	memcpy(c + PAGE, "child", 5);
	return 0;
}

static void a_file_is_shared_between_processes(void)
{
	struct statfs sfs;
	char buf[8] = { 0 };
	int fd = open("shared", O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0 && ftruncate(fd, 2 * PAGE) == 0, "a 2-page file in DIR");
	char *m = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(m != MAP_FAILED, "mapped shared");
	if (m == MAP_FAILED)
		return;
	m[0] = 'f';
	CHECK(in_child(child_maps_the_file, "shared"), "another process maps it and sees the first page");
	CHECK(memcmp(m + PAGE, "child", 5) == 0, "its write shows in this mapping");
	CHECK(pread(fd, buf, 5, PAGE) == 5 && memcmp(buf, "child", 5) == 0, "and in read(2)");
	CHECK(fsync(fd) == 0, "fsync");
	munmap(m, 2 * PAGE);
	if (fstatfs(fd, &sfs) == 0 && sfs.f_type == TMPFS_MAGIC) {
		CHECK(fcntl(fd, F_GET_SEALS) == F_SEAL_SEAL, "a tmpfs file has F_SEAL_SEAL");
		CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE) == -1 && errno == EPERM, "and takes no seal: EPERM");
	} else {
		CHECK(fcntl(fd, F_GET_SEALS) == -1 && errno == EINVAL, "a file not on tmpfs has no seals: EINVAL");
	}
	close(fd);
	unlink("shared");
}

int main(int argc, char **argv)
{
	utest_start("shmem_test");
	if (argc < 2 || chdir(argv[1]) != 0) {
		utest_print("usage: shmem_test DIR\n");
		return 2;
	}
	memfd_basics();
	size_seals();
	write_seal();
	future_write_seal();
	shared_anonymous_is_lazy();
	shared_anonymous_mremap();
	fork_shares_shared_memory();
	a_file_is_shared_between_processes();
	return utest_done();
}
