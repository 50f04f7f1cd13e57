/*
 * The devices and /dev/shm a small Linux system has (drivers/char/mem.c,
 * devtmpfs, a tmpfs on /dev/shm):
 *
 *   dev_test
 *
 * Checks that
 *   - /dev/null, /dev/zero, /dev/full, /dev/random and /dev/urandom are
 *     character devices 1,3 1,5 1,7 1,8 1,9 of mode 0666 (stat and
 *     fstat), /dev/console 5,1;
 *   - /dev/null reads end of file and swallows writes; /dev/zero reads
 *     zeros and swallows writes; /dev/full reads zeros and refuses writes
 *     with ENOSPC; /dev/urandom and /dev/random read bytes that differ
 *     from read to read; lseek on /dev/null and /dev/zero gives 0;
 *     pread works;
 *   - mmap of /dev/zero: MAP_PRIVATE is private anonymous memory (zeros,
 *     a fork child's writes stay its own, and the parent's after the fork
 *     stay the parent's), MAP_SHARED is shared anonymous memory ("/dev/zero
 *     (deleted)" in /proc/self/maps; a child's writes reach the parent);
 *     MAP_SHARED|PROT_WRITE of a read-only open is EACCES; /dev/null
 *     cannot be mapped (ENODEV);
 *   - /dev/shm is a tmpfs (statfs TMPFS_MAGIC) directory of mode 1777;
 *     shm_open makes a file there that two processes map shared, and
 *     shm_unlink removes it (then ENOENT);
 *   - mknod of a character device: root makes one that works as the
 *     original does; another user gets EPERM; mknod of a directory is
 *     EPERM, of an unknown type EINVAL. (Root-only checks are skipped
 *     when not run as root.)
 *
 * Passes on Linux (6.18) as root and as another user.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#include "utest.h"

#define PAGE 4096
#define TMPFS_MAGIC 0x01021994

/* Whether `path` is character device major:minor of mode `mode`. */
static int is_chr(const char *path, unsigned major_nr, unsigned minor_nr, unsigned mode)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISCHR(st.st_mode) && major(st.st_rdev) == major_nr &&
	       minor(st.st_rdev) == minor_nr && (st.st_mode & 07777) == mode;
}

static void device_nodes(void)
{
	struct stat st;

	CHECK(is_chr("/dev/null", 1, 3, 0666), "/dev/null is char 1,3 mode 0666");
	CHECK(is_chr("/dev/zero", 1, 5, 0666), "/dev/zero is char 1,5 mode 0666");
	CHECK(is_chr("/dev/full", 1, 7, 0666), "/dev/full is char 1,7 mode 0666");
	CHECK(is_chr("/dev/random", 1, 8, 0666), "/dev/random is char 1,8 mode 0666");
	CHECK(is_chr("/dev/urandom", 1, 9, 0666), "/dev/urandom is char 1,9 mode 0666");
	CHECK(stat("/dev/console", &st) == 0 && S_ISCHR(st.st_mode) && major(st.st_rdev) == 5 &&
		      minor(st.st_rdev) == 1,
	      "/dev/console is char 5,1");
	int fd = open("/dev/zero", O_RDONLY);
	CHECK(fd >= 0 && fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 5),
	      "fstat of an open /dev/zero names the device");
	close(fd);
}

static void read_write(void)
{
	char buf[PAGE];
	int fd = open("/dev/null", O_RDWR);

	CHECK(fd >= 0, "open /dev/null");
	CHECK(read(fd, buf, sizeof(buf)) == 0, "/dev/null reads end of file");
	CHECK(write(fd, buf, sizeof(buf)) == sizeof(buf), "/dev/null swallows a write");
	CHECK(lseek(fd, 100, SEEK_SET) == 0, "lseek on /dev/null gives 0");
	close(fd);

	fd = open("/dev/zero", O_RDWR);
	memset(buf, 0xaa, sizeof(buf));
	ssize_t n = read(fd, buf, sizeof(buf));
	int zeros = 1;
	for (size_t i = 0; i < sizeof(buf); i++)
		zeros &= buf[i] == 0;
	CHECK(n == sizeof(buf) && zeros, "/dev/zero reads zeros");
	CHECK(write(fd, buf, 100) == 100, "/dev/zero swallows a write");
	memset(buf, 0xaa, 16);
	CHECK(pread(fd, buf, 16, 12345) == 16 && buf[0] == 0 && buf[15] == 0, "pread of /dev/zero reads zeros");
	CHECK(lseek(fd, 4096, SEEK_CUR) == 0, "lseek on /dev/zero gives 0");
	close(fd);

	fd = open("/dev/full", O_RDWR);
	errno = 0;
	CHECK(write(fd, buf, 10) == -1 && errno == ENOSPC, "/dev/full refuses a write with ENOSPC");
	buf[0] = 1;
	CHECK(read(fd, buf, 10) == 10 && buf[0] == 0, "/dev/full reads zeros");
	close(fd);

	unsigned char a[64], b[64], c[64];
	fd = open("/dev/urandom", O_RDONLY);
	CHECK(fd >= 0 && read(fd, a, sizeof(a)) == sizeof(a) && read(fd, b, sizeof(b)) == sizeof(b),
	      "/dev/urandom reads");
	CHECK(memcmp(a, b, sizeof(a)) != 0, "two reads of /dev/urandom differ");
	close(fd);
	fd = open("/dev/random", O_RDWR);
	CHECK(fd >= 0 && read(fd, c, sizeof(c)) == sizeof(c) && memcmp(c, a, sizeof(c)) != 0 &&
		      memcmp(c, b, sizeof(c)) != 0,
	      "/dev/random reads other bytes again");
	CHECK(write(fd, c, 8) == 8, "/dev/random takes a write");
	close(fd);
}

/* The /proc/self/maps line of the mapping at `addr` into `line`. */
static int maps_line(void *addr, char *line, size_t size)
{
	static char maps[65536];
	char prefix[32];

	if (utest_read_file("/proc/self/maps", maps, sizeof(maps)) <= 0)
		return 0;
	snprintf(prefix, sizeof(prefix), "%lx-", (unsigned long)addr);
	for (char *l = maps; *l;) {
		char *end = strchr(l, '\n');
		size_t len = end ? (size_t)(end - l) : strlen(l);
		if (strncmp(l, prefix, strlen(prefix)) == 0 && len < size) {
			memcpy(line, l, len);
			line[len] = 0;
			return 1;
		}
		l += len + (end != NULL);
	}
	return 0;
}

/* Forks a child that runs `child` and exits 0 if it returned true. */
static int in_child(int (*child)(char *), char *arg)
{
	pid_t pid = fork();
	int status;

	if (pid == 0)
		_exit(child(arg) ? 0 : 1);
	return pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static int child_sees_7_writes_9(char *p)
{
	int ok = p[0] == 7 && p[PAGE] == 0;
	p[0] = 9;
	p[PAGE] = 9;
	return ok;
}

static void mmap_zero(void)
{
	char line[256];
	int fd = open("/dev/zero", O_RDWR);

	char *priv = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	CHECK(priv != MAP_FAILED && priv[0] == 0 && priv[PAGE + 5] == 0, "private /dev/zero mapping reads zeros");
	priv[0] = 7;
	CHECK(in_child(child_sees_7_writes_9, priv), "a fork child sees the parent's page and writes its own copy");
	CHECK(priv[0] == 7 && priv[PAGE] == 0, "the child's writes to private /dev/zero memory stay its own");

	char *shared = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(shared != MAP_FAILED && shared[0] == 0, "shared /dev/zero mapping reads zeros");
	shared[0] = 7;
	CHECK(in_child(child_sees_7_writes_9, shared), "a fork child sees the shared page");
	CHECK(shared[0] == 9 && shared[PAGE] == 9, "the child's writes to shared /dev/zero memory reach the parent");
	CHECK(maps_line(shared, line, sizeof(line)) && strstr(line, " rw-s ") &&
		      strstr(line, "/dev/zero (deleted)"),
	      "/proc/self/maps shows the shared mapping as /dev/zero (deleted)");
	CHECK(maps_line(priv, line, sizeof(line)) && strstr(line, " rw-p ") && !strstr(line, "(deleted)"),
	      "/proc/self/maps shows the private mapping as private, not a shmem file");
	munmap(priv, 2 * PAGE);
	munmap(shared, 2 * PAGE);
	close(fd);

	fd = open("/dev/zero", O_RDONLY);
	errno = 0;
	CHECK(mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED && errno == EACCES,
	      "MAP_SHARED|PROT_WRITE of /dev/zero opened read-only is EACCES");
	close(fd);
	fd = open("/dev/null", O_RDWR);
	errno = 0;
	CHECK(mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 0) == MAP_FAILED && errno == ENODEV,
	      "/dev/null cannot be mapped (ENODEV)");
	close(fd);
}

static int child_writes_shm(char *name)
{
	int fd = shm_open(name, O_RDWR, 0);
	if (fd < 0)
		return 0;
	char *p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED || p[PAGE] != 'p')
		return 0;
	strcpy(p, "from the child");
	return 1;
}

static void dev_shm(void)
{
	struct statfs sfs;
	struct stat st;
	char name[64];

	CHECK(statfs("/dev/shm", &sfs) == 0 && sfs.f_type == TMPFS_MAGIC, "/dev/shm is a tmpfs");
	CHECK(stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 01777,
	      "/dev/shm is a directory of mode 1777");
	snprintf(name, sizeof(name), "/dev_test.%d", (int)getpid());
	int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	CHECK(fd >= 0 && ftruncate(fd, 2 * PAGE) == 0, "shm_open makes an object, ftruncate sizes it");
	char *p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED, "the object maps shared");
	p[PAGE] = 'p';
	CHECK(in_child(child_writes_shm, name), "a child opens the object by name and maps it");
	CHECK(strcmp(p, "from the child") == 0, "the child's write reaches the parent's mapping");
	char path[96];
	snprintf(path, sizeof(path), "/dev/shm%s", name);
	CHECK(stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 2 * PAGE, "the object is %s", path);
	CHECK(shm_unlink(name) == 0, "shm_unlink removes it");
	errno = 0;
	CHECK(shm_open(name, O_RDWR, 0) == -1 && errno == ENOENT, "then shm_open without O_CREAT is ENOENT");
	CHECK(p[PAGE] == 'p', "the mapping outlives the name");
	munmap(p, 2 * PAGE);
	close(fd);
}

static int child_mknod_eperm(char *path)
{
	if (setuid(65534) != 0)
		return 0;
	errno = 0;
	return mknod(path, S_IFCHR | 0666, makedev(1, 3)) == -1 && errno == EPERM;
}

static void mknod_devices(void)
{
	char path[64], buf[16];
	struct stat st;

	snprintf(path, sizeof(path), "/dev/shm/dev_test_null.%d", (int)getpid());
	errno = 0;
	CHECK(mknod(path, S_IFDIR | 0755, 0) == -1 && errno == EPERM, "mknod of a directory is EPERM");
	errno = 0;
	CHECK(mknod(path, 0170000 | 0644, 0) == -1 && errno == EINVAL, "mknod of an unknown type is EINVAL");
	if (geteuid() != 0) {
		utest_print("# not root: the mknod of devices is skipped\n");
		return;
	}
	CHECK(in_child(child_mknod_eperm, path), "mknod of a device by another user is EPERM");
	CHECK(mknod(path, S_IFCHR | 0666, makedev(1, 3)) == 0, "root makes a node for char 1,3");
	CHECK(stat(path, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3), "it stats as char 1,3");
	int fd = open(path, O_RDWR);
	CHECK(fd >= 0 && write(fd, "x", 1) == 1 && read(fd, buf, sizeof(buf)) == 0, "it is /dev/null");
	close(fd);
	CHECK(unlink(path) == 0, "the node unlinks");
}

int main(int argc, char **argv)
{
	(void)argc;
	utest_start(argv[0]);
	device_nodes();
	read_write();
	mmap_zero();
	dev_shm();
	mknod_devices();
	return utest_done();
}
