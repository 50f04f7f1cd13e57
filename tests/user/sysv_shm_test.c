/*
 * System V shared memory as Linux's ipc/shm.c gives it:
 *
 *   sysv_shm_test
 *
 * Checks that
 *   - shmget makes segments (IPC_PRIVATE, and by key with IPC_CREAT), finds
 *     one by key, and refuses with Linux's errors: EEXIST (IPC_CREAT |
 *     IPC_EXCL on a used key), ENOENT (no IPC_CREAT, unused key), EINVAL
 *     (size 0, size past kernel.shmmax or past MAX_LFS_FILESIZE, a size
 *     larger than the segment's),
 *     ENOSPC past kernel.shmall (root);
 *   - IPC_STAT reports size, creator and last pids, owner, mode, key and
 *     the times; shm_nattch counts attaches: each shmat, each VMA a split
 *     makes, each a fork copies, and it falls at shmdt, exit and exec;
 *   - an attach is a shared mapping "/SYSV%08x (deleted)" in /proc/self/maps,
 *     whose data two attaches and a fork child share; SHM_RDONLY attaches
 *     read-only (a write faults, mprotect to writable is EACCES); an
 *     address is honoured, rounded with SHM_RND, EINVAL unaligned without
 *     it or over a mapping without SHM_REMAP, which takes the range over;
 *   - shmdt detaches the attach at an address (all its VMAs), EINVAL for
 *     any other address;
 *   - IPC_SET changes the mode; IPC_RMID with attaches left marks the
 *     segment SHM_DEST and takes its key (shmget by key: ENOENT), the id
 *     still attaches, and the segment goes at the last detach (then
 *     EINVAL); with none left it goes at once;
 *   - another user is refused (EACCES for shmget, shmat and IPC_STAT of a
 *     0640 segment, EPERM for IPC_RMID) (root only);
 *   - IPC_INFO and SHM_INFO report the limits and usage; the sysctls
 *     kernel.shmmax, shmall and shmmni have Linux's defaults; a bad id or
 *     command (IPC_64 included, on x86_64) is EINVAL.
 *
 * Passes on Linux (6.18) as root and as another user; root-only checks
 * are skipped otherwise. The exec check runs this program again as
 *   sysv_shm_test nattch ID EXPECTED
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "utest.h"

#define PAGE 4096
#define SHM_DEST 01000

static const char *self;

static struct shmid_ds stat_of(int id)
{
	struct shmid_ds ds;

	memset(&ds, 0xff, sizeof(ds));
	if (shmctl(id, IPC_STAT, &ds) != 0)
		memset(&ds, 0, sizeof(ds));
	return ds;
}

static unsigned long nattch(int id)
{
	struct shmid_ds ds;

	return shmctl(id, IPC_STAT, &ds) == 0 ? ds.shm_nattch : (unsigned long)-1;
}

/* Whether the /proc/self/maps line of `addr` ends `name` and says `perms`. */
static int maps_has(void *addr, const char *perms, const char *name)
{
	static char maps[65536];
	char prefix[32];

	if (utest_read_file("/proc/self/maps", maps, sizeof(maps)) <= 0)
		return 0;
	snprintf(prefix, sizeof(prefix), "%lx-", (unsigned long)addr);
	for (char *l = strtok(maps, "\n"); l; l = strtok(NULL, "\n")) {
		size_t n = strlen(l), k = strlen(name);
		if (strncmp(l, prefix, strlen(prefix)) == 0)
			return strstr(l, perms) != NULL && n >= k && strcmp(l + n - k, name) == 0;
	}
	return 0;
}

/* Runs `child` in a fork child; whether it exited 0. Its pid goes to *pid. */
static int in_child(int (*child)(int, char *), int id, char *p, pid_t *pid_out)
{
	int status;
	pid_t pid = fork();

	if (pid == 0)
		_exit(child(id, p) ? 0 : 1);
	if (pid_out)
		*pid_out = pid;
	return pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static int child_shares(int id, char *p)
{
	int ok = strcmp(p, "parent") == 0 && nattch(id) == 4;
	strcpy(p, "child");
	return ok;
}

static void create_attach_fork(void)
{
	time_t before = time(NULL);
	int id = shmget(IPC_PRIVATE, 10000, IPC_CREAT | 0600);
	CHECK(id >= 0, "shmget(IPC_PRIVATE, 10000) makes a segment");
	struct shmid_ds ds = stat_of(id);
	CHECK(ds.shm_segsz == 10000 && ds.shm_nattch == 0 && ds.shm_cpid == getpid() && ds.shm_lpid == 0,
	      "IPC_STAT: size 10000, no attaches, creator this process, no last pid");
	CHECK(ds.shm_perm.__key == IPC_PRIVATE && (ds.shm_perm.mode & 0777) == 0600 && ds.shm_perm.uid == geteuid() &&
		      ds.shm_perm.cuid == geteuid() && ds.shm_perm.gid == getegid(),
	      "IPC_STAT: key 0, mode 0600, owned and made by the caller");
	CHECK(ds.shm_atime == 0 && ds.shm_dtime == 0 && ds.shm_ctime >= before, "IPC_STAT: times");

	char *p = shmat(id, NULL, 0);
	CHECK(p != (void *)-1, "shmat attaches it");
	CHECK(p[0] == 0 && p[9999] == 0, "a new segment reads zeros");
	strcpy(p, "parent");
	ds = stat_of(id);
	CHECK(ds.shm_nattch == 1 && ds.shm_lpid == getpid() && ds.shm_atime >= before, "one attach counted, stamped");
	char name[64];
	snprintf(name, sizeof(name), "/SYSV%08x (deleted)", 0);
	CHECK(maps_has(p, " rw-s ", name), "/proc/self/maps names the attach %s", name);
	char *q = shmat(id, NULL, 0);
	CHECK(q != (void *)-1 && q != p && strcmp(q, "parent") == 0 && nattch(id) == 2,
	      "a second attach elsewhere sees the same data; nattch 2");

	pid_t child;
	CHECK(in_child(child_shares, id, p, &child), "a fork child sees the data with nattch 4 (its copies count)");
	ds = stat_of(id);
	CHECK(strcmp(q, "child") == 0, "the child's write reaches both of the parent's attaches");
	CHECK(ds.shm_nattch == 2 && ds.shm_lpid == child, "the child's exit detached its copies (nattch 2, lpid its)");

	CHECK(shmdt(q) == 0 && nattch(id) == 1 && stat_of(id).shm_dtime >= before, "shmdt detaches one; dtime set");
	errno = 0;
	CHECK(shmdt(q) == -1 && errno == EINVAL, "shmdt of a detached address is EINVAL");
	errno = 0;
	CHECK(shmdt(p + 1) == -1 && errno == EINVAL, "shmdt of an unaligned address is EINVAL");
	errno = 0;
	CHECK(shmdt(p + PAGE) == -1 && errno == EINVAL, "shmdt inside the attach is EINVAL");

	/* A split: three VMAs of one attach count three; shmdt takes all. */
	CHECK(mprotect(p + PAGE, PAGE, PROT_READ) == 0 && nattch(id) == 3, "splitting the attach in three: nattch 3");
	CHECK(shmdt(p) == 0 && nattch(id) == 0, "shmdt removes every VMA of the attach");
	CHECK(shmctl(id, IPC_RMID, NULL) == 0, "IPC_RMID of an unattached segment");
	errno = 0;
	CHECK(shmctl(id, IPC_STAT, &ds) == -1 && errno == EINVAL, "it is gone at once (EINVAL)");
}

static void errors_by_key(void)
{
	key_t key = 0x5e000000 | (getpid() & 0xffff);
	int id = shmget(key, 2 * PAGE, IPC_CREAT | IPC_EXCL | 0640);

	CHECK(id >= 0, "shmget(key, IPC_CREAT | IPC_EXCL) makes a segment");
	errno = 0;
	CHECK(shmget(key, 2 * PAGE, IPC_CREAT | IPC_EXCL | 0640) == -1 && errno == EEXIST,
	      "again with IPC_EXCL: EEXIST");
	CHECK(shmget(key, PAGE, 0) == id && shmget(key, 0, IPC_CREAT) == id, "the key finds it, smaller size too");
	errno = 0;
	CHECK(shmget(key, 3 * PAGE, 0) == -1 && errno == EINVAL, "a larger size than the segment's: EINVAL");
	errno = 0;
	CHECK(shmget(key + 1, PAGE, 0600) == -1 && errno == ENOENT, "an unused key without IPC_CREAT: ENOENT");
	errno = 0;
	CHECK(shmget(IPC_PRIVATE, 0, IPC_CREAT | 0600) == -1 && errno == EINVAL, "size 0: EINVAL");
	errno = 0;
	CHECK(shmget(IPC_PRIVATE, (size_t)-1, IPC_CREAT | 0600) == -1 && errno == EINVAL,
	      "a size past kernel.shmmax: EINVAL");
	errno = 0;
	CHECK(shmget(IPC_PRIVATE, ((size_t)1 << 63) + PAGE, IPC_CREAT | 0600) == -1 && errno == EINVAL,
	      "a size within kernel.shmmax but past MAX_LFS_FILESIZE: EINVAL (the shmem file refuses it)");
	char *p = shmat(id, NULL, 0);
	char name[64];
	snprintf(name, sizeof(name), "/SYSV%08x (deleted)", (unsigned)key);
	CHECK(p != (void *)-1 && maps_has(p, " rw-s ", name), "its attach is %s", name);
	shmdt(p);

	struct shmid_ds ds = stat_of(id);
	ds.shm_perm.mode = 0600;
	CHECK(shmctl(id, IPC_SET, &ds) == 0 && (stat_of(id).shm_perm.mode & 0777) == 0600, "IPC_SET sets the mode");
	ds.shm_perm.mode = 0640;
	shmctl(id, IPC_SET, &ds);
	struct shmid_ds bad;
	errno = 0;
	CHECK(shmctl(-1, IPC_STAT, &bad) == -1 && errno == EINVAL, "IPC_STAT of id -1: EINVAL");
	errno = 0;
	CHECK(shmctl(id + 1, IPC_STAT, &bad) == -1 && errno == EINVAL, "IPC_STAT of an unused id: EINVAL");
	errno = 0;
	CHECK(shmctl(id, 99, &bad) == -1 && errno == EINVAL, "an unknown command: EINVAL");
	errno = 0;
	CHECK(syscall(SYS_shmctl, id, IPC_STAT | 0x100, &bad) == -1 && errno == EINVAL,
	      "IPC_STAT | IPC_64 is EINVAL on x86_64");
	CHECK(shmctl(id, IPC_RMID, NULL) == 0, "removed");
}

static int child_attaches_and_execs(int id, char *p)
{
	(void)p;
	char idtext[16], expected[16];
	if (shmat(id, NULL, 0) == (void *)-1 || shmat(id, NULL, SHM_RDONLY) == (void *)-1)
		return 0;
	/* After exec the child's two attaches are gone: the parent's one is left. */
	snprintf(idtext, sizeof(idtext), "%d", id);
	snprintf(expected, sizeof(expected), "%d", 1);
	execl(self, self, "nattch", idtext, expected, (char *)NULL);
	return 0;
}

static sigjmp_buf segv_jump;

static void on_segv(int sig)
{
	(void)sig;
	siglongjmp(segv_jump, 1);
}

static void rmid_with_attaches(void)
{
	key_t key = 0x5f000000 | (getpid() & 0xffff);
	int id = shmget(key, 3 * PAGE, IPC_CREAT | IPC_EXCL | 0600);
	char *p = shmat(id, NULL, 0);

	CHECK(id >= 0 && p != (void *)-1, "a keyed segment, attached");
	strcpy(p, "kept");
	CHECK(in_child(child_attaches_and_execs, id, NULL, NULL), "exec detaches: the new program sees nattch 1");
	CHECK(nattch(id) == 1, "and after its exit nattch is still 1");

	char *r = shmat(id, NULL, SHM_RDONLY);
	CHECK(r != (void *)-1 && strcmp(r, "kept") == 0 && maps_has(r, " r--s ", "(deleted)"),
	      "SHM_RDONLY attaches read-only");
	struct sigaction sa = { .sa_handler = on_segv }, old;
	sigaction(SIGSEGV, &sa, &old);
	volatile int faulted = 0;
	if (sigsetjmp(segv_jump, 1) == 0)
		r[0] = 'x';
	else
		faulted = 1;
	sigaction(SIGSEGV, &old, NULL);
	CHECK(faulted && p[0] == 'k', "a write through it faults");
	errno = 0;
	CHECK(mprotect(r, PAGE, PROT_READ | PROT_WRITE) == -1 && errno == EACCES, "mprotect to writable: EACCES");

	CHECK(shmctl(id, IPC_RMID, NULL) == 0, "IPC_RMID with two attaches left");
	struct shmid_ds ds = stat_of(id);
	CHECK((ds.shm_perm.mode & SHM_DEST) && ds.shm_perm.__key == IPC_PRIVATE && ds.shm_nattch == 2,
	      "it is SHM_DEST, its key IPC_PRIVATE, still attached twice");
	errno = 0;
	CHECK(shmget(key, 0, 0600) == -1 && errno == ENOENT, "its key no longer finds it");
	CHECK(strcmp(p, "kept") == 0, "its data is still there");
	char *again = shmat(id, NULL, 0);
	CHECK(again != (void *)-1 && strcmp(again, "kept") == 0 && nattch(id) == 3, "its id still attaches (Linux)");
	CHECK(shmdt(again) == 0 && shmdt(r) == 0 && nattch(id) == 1, "two detaches leave one");
	CHECK(shmdt(p) == 0, "the last detach");
	errno = 0;
	CHECK(shmctl(id, IPC_STAT, &ds) == -1 && errno == EINVAL, "destroyed at the last detach (EINVAL)");
}

static void addresses(void)
{
	int id = shmget(IPC_PRIVATE, 2 * PAGE, IPC_CREAT | 0600);
	char *hole = mmap(NULL, 4 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(hole, 4 * PAGE);

	CHECK(shmat(id, hole, 0) == hole, "shmat at a free address maps there");
	CHECK(shmdt(hole) == 0, "and detaches");
	CHECK(shmat(id, hole + 123, SHM_RND) == hole, "SHM_RND rounds the address down");
	shmdt(hole);
	errno = 0;
	CHECK(shmat(id, hole + 123, 0) == (void *)-1 && errno == EINVAL, "an unaligned address without SHM_RND: EINVAL");
	errno = 0;
	CHECK(shmat(id, NULL, SHM_REMAP) == (void *)-1 && errno == EINVAL, "SHM_REMAP without an address: EINVAL");
	char *busy = mmap(hole + PAGE, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	errno = 0;
	CHECK(busy == hole + PAGE && shmat(id, hole, 0) == (void *)-1 && errno == EINVAL,
	      "over a mapping without SHM_REMAP: EINVAL");
	char *taken = shmat(id, hole, SHM_REMAP);
	CHECK(taken == hole && maps_has(hole, " rw-s ", "(deleted)"), "SHM_REMAP takes the range over");
	taken[PAGE] = 1;
	CHECK(shmdt(hole) == 0 && shmctl(id, IPC_RMID, NULL) == 0, "detached and removed");
	errno = 0;
	CHECK(shmat(id, NULL, 0) == (void *)-1 && errno == EINVAL, "shmat of a removed id: EINVAL");
	errno = 0;
	CHECK(shmat(-1, NULL, 0) == (void *)-1 && errno == EINVAL, "shmat of id -1: EINVAL");
}

static void info_and_sysctls(void)
{
	struct shminfo info;
	struct shm_info usage;
	int id = shmget(IPC_PRIVATE, PAGE, IPC_CREAT | 0600);

	CHECK(utest_read_number("/proc/sys/kernel/shmmni") == 4096, "kernel.shmmni is 4096");
	char text[32];
	utest_read_file("/proc/sys/kernel/shmmax", text, sizeof(text));
	CHECK(strcmp(text, "18446744073692774399\n") == 0, "kernel.shmmax is ULONG_MAX - 2^24");
	utest_read_file("/proc/sys/kernel/shmall", text, sizeof(text));
	CHECK(strcmp(text, "18446744073692774399\n") == 0, "kernel.shmall is ULONG_MAX - 2^24");
	CHECK(shmctl(0, IPC_INFO, (struct shmid_ds *)&info) >= 0 && info.shmmni == 4096 && info.shmmin == 1 &&
		      info.shmmax == 18446744073692774399UL,
	      "IPC_INFO reports the limits");
	CHECK(shmctl(0, SHM_INFO, (struct shmid_ds *)&usage) >= 0 && usage.used_ids >= 1 && usage.shm_tot >= 1,
	      "SHM_INFO counts the segments in use");
	shmctl(id, IPC_RMID, NULL);

	if (geteuid() != 0) {
		utest_print("# not root: kernel.shmall's ENOSPC is skipped\n");
		return;
	}
	char old[32];
	utest_read_file("/proc/sys/kernel/shmall", old, sizeof(old));
	CHECK(utest_write_text("/proc/sys/kernel/shmall", "1") == 0, "root sets kernel.shmall to 1 page");
	errno = 0;
	int big = shmget(IPC_PRIVATE, 2 * PAGE, IPC_CREAT | 0600);
	CHECK(big == -1 && errno == ENOSPC, "then a 2-page segment is ENOSPC");
	utest_write_text("/proc/sys/kernel/shmall", old);
}

static int child_is_refused(int id, char *p)
{
	(void)p;
	struct shmid_ds ds;
	int ok = 1;
	key_t key = 0x5d000000 | (getppid() & 0xffff);

	if (setgid(65534) != 0 || setuid(65534) != 0)
		return 0;
	errno = 0;
	STEP(shmget(key, 0, 0600) == -1 && errno == EACCES);
	errno = 0;
	STEP(shmget(key, 0, 0) == id);
	errno = 0;
	STEP(shmat(id, NULL, SHM_RDONLY) == (void *)-1 && errno == EACCES);
	errno = 0;
	STEP(shmctl(id, IPC_STAT, &ds) == -1 && errno == EACCES);
	errno = 0;
	STEP(shmctl(id, IPC_RMID, NULL) == -1 && errno == EPERM);
	return ok;
}

static void other_users(void)
{
	if (geteuid() != 0) {
		utest_print("# not root: the other-user checks are skipped\n");
		return;
	}
	key_t key = 0x5d000000 | (getpid() & 0xffff);
	int id = shmget(key, PAGE, IPC_CREAT | IPC_EXCL | 0640);
	CHECK(id >= 0, "a 0640 segment of root's");
	CHECK(in_child(child_is_refused, id, NULL, NULL),
	      "another user: shmget asking rw, shmat and IPC_STAT are EACCES, IPC_RMID EPERM");
	shmctl(id, IPC_RMID, NULL);
}

/* `sysv_shm_test nattch ID EXPECTED`: exit 0 if segment ID has EXPECTED attaches. */
static int exec_mode(char **argv)
{
	return nattch(atoi(argv[2])) == (unsigned long)atol(argv[3]) ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "nattch") == 0)
		return exec_mode(argv);
	self = argv[0];
	utest_start(argv[0]);
	create_attach_fork();
	errors_by_key();
	rmid_with_attaches();
	addresses();
	info_and_sysctls();
	other_users();
	return utest_done();
}
