/*
 * File mappings through the page cache, as Linux gives them:
 *
 *   mmap_file_test DIR [dirty]
 *
 * In DIR (a file system with a page cache: ext2 here, ext4 or tmpfs on
 * Linux), checks that
 *   - a write through a MAP_SHARED mapping is what read(2) then reads,
 *     and a write(2) is what the mapping then shows: one page, two views;
 *   - a second process's MAP_SHARED mapping sees the first's writes;
 *   - a MAP_PRIVATE mapping reads the file, and its writes stay its own:
 *     the file and a shared mapping keep the old bytes;
 *   - msync(MS_SYNC) of a written shared mapping succeeds, and the data
 *     survives munmap, close and a new open;
 *   - touching a page past the end of the file raises SIGBUS, also after
 *     ftruncate shrank the file under a mapping that had the page mapped;
 *   - a mapping of a file opened read-only cannot be made shared and
 *     writable (EACCES);
 *   - /proc/self/maps names a mapped file by its absolute path, with
 *     " (deleted)" for a file mapped after its last name was unlinked.
 *
 * With "dirty", it only maps DIR/dirty shared, writes "dirty" at its start
 * and exits without msync: the kernel's test then finds the page dirty
 * in the cache, through the pte's dirty bit.
 *
 * With "persist LEN", it makes DIR/persist LEN bytes long with ftruncate,
 * fills it through a shared mapping with the bytes i*31 % 251 (the host
 * check's pattern) and msync(MS_SYNC)s it: the kernel's test then checks
 * nothing is left dirty, and the host reads the bytes from the disk.
 */
#include <setjmp.h>
#include <stdlib.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "utest.h"

#define PAGE 4096

static char path[256];
static sigjmp_buf bus_jump;
static volatile sig_atomic_t bus_seen;

static void on_sigbus(int sig)
{
	(void)sig;
	bus_seen = 1;
	siglongjmp(bus_jump, 1);
}

/* A file of `pages` pages, page i filled with the byte 'a' + i. */
static int make_file(const char *name, int pages)
{
	char page[PAGE];

	snprintf(path, sizeof(path), "%s", name);
	int fd = open(name, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return -1;
	for (int i = 0; i < pages; i++) {
		memset(page, 'a' + i, PAGE);
		if (write(fd, page, PAGE) != PAGE) {
			close(fd);
			return -1;
		}
	}
	return fd;
}

/* Whether touching `p` raises SIGBUS. */
static int touch_raises_sigbus(volatile char *p)
{
	bus_seen = 0;
	if (sigsetjmp(bus_jump, 1) == 0)
		(void)*p;
	return bus_seen;
}

static void shared_and_read_write_agree(void)
{
	int fd = make_file("shared", 2);
	CHECK(fd >= 0, "creating the test file");
	if (fd < 0)
		return;
	char *m = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(m != MAP_FAILED, "mmap MAP_SHARED of a file opened O_RDWR");
	if (m == MAP_FAILED)
		return;
	CHECK(m[0] == 'a' && m[PAGE] == 'b', "the mapping shows the file");
	memcpy(m + 100, "through the mapping", 19);
	char buf[32] = { 0 };
	CHECK(pread(fd, buf, 19, 100) == 19 && memcmp(buf, "through the mapping", 19) == 0,
	      "read(2) sees a write through the mapping");
	CHECK(pwrite(fd, "through write", 13, PAGE + 7) == 13, "pwrite");
	CHECK(memcmp(m + PAGE + 7, "through write", 13) == 0, "the mapping sees a write(2)");

	pid_t pid = fork();
	if (pid == 0) {
		char *c = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (c == MAP_FAILED)
			_exit(1);
		memcpy(c + 200, "child", 5);
		_exit(0);
	}
	int status = -1;
	CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
	CHECK(status == 0 && memcmp(m + 200, "child", 5) == 0, "another process's shared mapping writes the same page");
	CHECK(msync(m, 2 * PAGE, MS_SYNC) == 0, "msync(MS_SYNC)");
	munmap(m, 2 * PAGE);
	close(fd);

	fd = open("shared", O_RDONLY);
	CHECK(fd >= 0 && pread(fd, buf, 19, 100) == 19 && memcmp(buf, "through the mapping", 19) == 0,
	      "the written bytes survive munmap and close");
	CHECK(pread(fd, buf, 5, 200) == 5 && memcmp(buf, "child", 5) == 0, "the child's too");
	close(fd);
}

static void private_writes_stay_private(void)
{
	int fd = make_file("private", 1);
	CHECK(fd >= 0, "creating the test file");
	if (fd < 0)
		return;
	char *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	char *s = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED && s != MAP_FAILED, "a private and a shared mapping");
	if (p == MAP_FAILED || s == MAP_FAILED)
		return;
	CHECK(p[10] == 'a', "the private mapping reads the file");
	p[10] = 'X';
	char c = 0;
	CHECK(p[10] == 'X', "it sees its own write");
	CHECK(pread(fd, &c, 1, 10) == 1 && c == 'a', "the file keeps its byte");
	CHECK(s[10] == 'a', "and so does a shared mapping");
	CHECK(pwrite(fd, "Y", 1, 11) == 1 && p[11] == 'a', "a later write(2) does not reach the copied page");
	munmap(p, PAGE);
	munmap(s, PAGE);
	close(fd);
}

static void past_the_end_is_sigbus(void)
{
	struct sigaction sa = { .sa_handler = on_sigbus };
	sigaction(SIGBUS, &sa, NULL);
	int fd = make_file("short", 1);
	CHECK(fd >= 0, "creating the test file");
	if (fd < 0)
		return;
	char *m = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(m != MAP_FAILED, "mmap of 3 pages over a 1-page file");
	if (m == MAP_FAILED)
		return;
	CHECK(!touch_raises_sigbus(m), "inside the file: no signal");
	CHECK(touch_raises_sigbus(m + PAGE), "a page past the end: SIGBUS");
	CHECK(ftruncate(fd, 2 * PAGE) == 0 && !touch_raises_sigbus(m + PAGE), "grown: the page reads");
	CHECK(m[PAGE] == 0, "as zeros");
	CHECK(ftruncate(fd, PAGE) == 0 && touch_raises_sigbus(m + 2 * PAGE), "shrunk: past the end again");
	CHECK(touch_raises_sigbus(m + PAGE), "a page mapped before the shrink: SIGBUS too (truncation unmapped it)");
	CHECK(!touch_raises_sigbus(m) && m[0] == 'a', "the page before the end stays");
	munmap(m, 3 * PAGE);
	close(fd);
	signal(SIGBUS, SIG_DFL);
}

static void a_read_only_file_maps_shared_read_only(void)
{
	int fd = make_file("readonly", 1);
	CHECK(fd >= 0, "creating the test file");
	if (fd < 0)
		return;
	close(fd);
	fd = open("readonly", O_RDONLY);
	errno = 0;
	void *m = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(m == MAP_FAILED && errno == EACCES, "MAP_SHARED and PROT_WRITE of an O_RDONLY file: EACCES");
	m = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	CHECK(m != MAP_FAILED, "MAP_PRIVATE of it may write");
	if (m != MAP_FAILED)
		munmap(m, PAGE);
	close(fd);
}

/* Whether /proc/self/maps has a line for `addr` ending in `name`. */
static int maps_names(void *addr, const char *name)
{
	char line[512], want[32];
	FILE *f = fopen("/proc/self/maps", "r");
	int found = 0;

	if (!f)
		return 0;
	snprintf(want, sizeof(want), "%lx-", (unsigned long)addr);
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		size_t n = strlen(line), k = strlen(name);
		if (strncmp(line, want, strlen(want)) == 0 && n >= k && strcmp(line + n - k, name) == 0)
			found = 1;
	}
	fclose(f);
	return found;
}

static void maps_name_the_file(void)
{
	char cwd[200], name[256];
	int fd = make_file("named", 1);
	CHECK(fd >= 0 && getcwd(cwd, sizeof(cwd)) != NULL, "creating the test file");
	if (fd < 0)
		return;
	snprintf(name, sizeof(name), " %s/named", cwd);
	char *m = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(m != MAP_FAILED && maps_names(m, name), "/proc/self/maps names the file by its path");
	if (m != MAP_FAILED)
		munmap(m, PAGE);
	CHECK(unlink("named") == 0, "unlink");
	snprintf(name, sizeof(name), " %s/named (deleted)", cwd);
	m = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(m != MAP_FAILED && maps_names(m, name), "and as deleted once its name is gone");
	if (m != MAP_FAILED)
		munmap(m, PAGE);
	close(fd);
}

static int dirty_only(void)
{
	int fd = make_file("dirty", 1);
	if (fd < 0 || fsync(fd) != 0)
		return 1;
	char *m = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return 1;
	memcpy(m, "dirty", 5);
	return 0;
}

static int persist(const char *len_text)
{
	long len = strtol(len_text, NULL, 10);
	int fd = open("persist", O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (len <= 0 || fd < 0 || ftruncate(fd, len) != 0)
		return 1;
	unsigned char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return 1;
	for (long i = 0; i < len; i++)
		m[i] = (unsigned char)(i * 31 % 251);
	if (msync(m, len, MS_SYNC) != 0)
		return 1;
	return munmap(m, len) == 0 && close(fd) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	utest_start("mmap_file_test");
	if (argc < 2 || chdir(argv[1]) != 0) {
		utest_print("usage: mmap_file_test DIR [dirty]\n");
		return 2;
	}
	if (argc > 2 && strcmp(argv[2], "dirty") == 0)
		return dirty_only();
	if (argc > 3 && strcmp(argv[2], "persist") == 0)
		return persist(argv[3]);
	shared_and_read_write_agree();
	private_writes_stay_private();
	past_the_end_is_sigbus();
	a_read_only_file_maps_shared_read_only();
	maps_name_the_file();
	return utest_done();
}
