/*
 * /proc as programs read it (Linux fs/proc): the directory and its
 * listings, /proc/self as a symbolic link, the modes stat reports, the
 * field names and order of /proc/PID/{status,stat,statm,smaps,
 * smaps_rollup}, /proc/meminfo and /proc/vmstat, cmdline, and the
 * figures an mm test reads: a 16-page region's Rss, Pss, Anonymous and
 * Private_Dirty before and after a fork shares it, and its pagemap bits
 * (present, exclusive, file, the frame number for root, the same frame
 * in parent and child before a copy on write); with `swap` as its first
 * argument and swap on, the swapped bit and smaps' Swap and SwapPss of
 * pages MADV_PAGEOUT sent out. Passes under Linux 6.x (as root, and
 * without root with the frame checks skipped) and here.
 * Linux's soft-dirty bit (55) is not looked at: this kernel does not
 * track it.
 */
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include "utest.h"

#define PAGE 4096UL
#define PM_PRESENT (1ULL << 63)
#define PM_SWAP (1ULL << 62)
#define PM_FILE (1ULL << 61)
#define PM_EXCLUSIVE (1ULL << 56)
#define PM_PFN ((1ULL << 55) - 1)

static char buf[1 << 17];

/* Whether the field names (text before ':' or ' ' at each line start)
 * of `text` contain `names`, in this order. */
static int fields_in_order(const char *text, const char *const *names, char sep)
{
	const char *line = text;
	int i = 0;

	while (names[i] && *line) {
		const char *end = strchr(line, sep);
		const char *nl = strchr(line, '\n');
		if (end && (!nl || end < nl) && (size_t)(end - line) == strlen(names[i]) &&
		    strncmp(line, names[i], end - line) == 0)
			i++;
		if (!nl)
			break;
		line = nl + 1;
	}
	return names[i] == NULL;
}

/* The number after "name:" in `text`, or -1. */
static long field(const char *text, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
		if (strncmp(p, name, n) == 0 && p[n] == ':')
			return strtol(p + n + 1, NULL, 10);
	return -1;
}

static int dir_has(const char *path, const char *name, unsigned char *type)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int found = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, name) == 0) {
			found = 1;
			if (type)
				*type = e->d_type;
		}
	closedir(d);
	return found;
}

static int mode_is(const char *path, mode_t mode)
{
	struct stat st;
	return stat(path, &st) == 0 && st.st_mode == mode;
}

static uint64_t pagemap_of(void *addr)
{
	uint64_t e = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY);
	if (fd < 0)
		return ~0ULL;
	if (pread(fd, &e, 8, (uintptr_t)addr / PAGE * 8) != 8)
		e = ~0ULL;
	close(fd);
	return e;
}

/* The smaps block of the VMA starting at `addr`, into `out`. */
static int smaps_block(void *addr, char *out, size_t size)
{
	char head[32];
	snprintf(head, sizeof(head), "%lx-", (unsigned long)addr);
	if (utest_read_file("/proc/self/smaps", buf, sizeof(buf)) <= 0)
		return -1;
	char *p = buf;
	while (p && strncmp(p, head, strlen(head)) != 0) {
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	if (!p)
		return -1;
	char *end = strstr(p, "VmFlags:");
	if (!end || (end = strchr(end, '\n')) == NULL)
		return -1;
	size_t n = end + 1 - p;
	if (n >= size)
		return -1;
	memcpy(out, p, n);
	out[n] = 0;
	return 0;
}

static const char *const SMAPS_FIELDS[] = { "Size", "KernelPageSize", "MMUPageSize", "Rss", "Pss", "Pss_Dirty",
	"Shared_Clean", "Shared_Dirty", "Private_Clean", "Private_Dirty", "Referenced", "Anonymous", "KSM",
	"LazyFree", "AnonHugePages", "ShmemPmdMapped", "FilePmdMapped", "Shared_Hugetlb", "Private_Hugetlb",
	"Swap", "SwapPss", "Locked", "THPeligible", "VmFlags", NULL };

/* Every field of the block after its first line, in order, and nothing
 * else (Linux's ProtectionKey line, shown with pkeys, excepted). */
static int smaps_fields_exact(const char *block)
{
	const char *line = strchr(block, '\n');
	int i = 0;

	while (line && line[1]) {
		line++;
		const char *colon = strchr(line, ':');
		if (!colon)
			return 0;
		if (!(colon - line == 13 && strncmp(line, "ProtectionKey", 13) == 0)) {
			if (!SMAPS_FIELDS[i] || (size_t)(colon - line) != strlen(SMAPS_FIELDS[i]) ||
			    strncmp(line, SMAPS_FIELDS[i], colon - line) != 0)
				return 0;
			i++;
		}
		line = strchr(line, '\n');
	}
	return SMAPS_FIELDS[i] == NULL;
}

static void check_directory(void)
{
	char self[32], link[32];
	struct stat st;
	unsigned char type = 0;

	snprintf(self, sizeof(self), "%d", getpid());
	ssize_t n = readlink("/proc/self", link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	CHECK(n > 0 && strcmp(link, self) == 0, "readlink(/proc/self) is the pid (%s)", link);
	CHECK(lstat("/proc/self", &st) == 0 && S_ISLNK(st.st_mode), "/proc/self is a symbolic link");
	CHECK(mode_is("/proc", S_IFDIR | 0555), "/proc is a directory, 0555");
	CHECK(stat("/proc/self", &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid(),
	      "/proc/self leads to a directory the process's euid owns");
	CHECK(dir_has("/proc", self, &type) && type == DT_DIR, "/proc lists this process's pid as a directory");
	CHECK(dir_has("/proc", "self", &type) && type == DT_LNK, "/proc lists self as a link");
	CHECK(dir_has("/proc", "meminfo", &type) && type == DT_REG && dir_has("/proc", "sys", NULL), "/proc lists meminfo and sys");
	const char *files[] = { "status", "stat", "statm", "maps", "smaps", "smaps_rollup", "pagemap", "cmdline",
		"environ", "comm", "mounts", "oom_score", "oom_score_adj", "task", NULL };
	int all = 1;
	for (int i = 0; files[i]; i++)
		all &= dir_has("/proc/self", files[i], NULL);
	CHECK(all, "/proc/self lists status, stat, statm, maps, smaps, smaps_rollup, pagemap, cmdline, task ...");
	CHECK(dir_has("/proc/self/task", self, &type) && type == DT_DIR, "/proc/self/task lists the thread");
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/task/%s/status", self);
	CHECK(utest_read_file(path, buf, sizeof(buf)) > 0 && field(buf, "Pid") == getpid(), "%s", path);
	CHECK(mode_is("/proc/self/status", S_IFREG | 0444) && mode_is("/proc/self/pagemap", S_IFREG | 0400) &&
		      mode_is("/proc/self/oom_score_adj", S_IFREG | 0644) && mode_is("/proc/self/task", S_IFDIR | 0555),
	      "pid files have Linux's modes");
	CHECK(open("/proc/no-such-file", O_RDONLY) < 0 && errno == ENOENT, "a name /proc does not have: ENOENT");
	int fd = open("/proc/self/status", O_WRONLY);
	CHECK(fd < 0 ? errno == EACCES : (write(fd, "x", 1) < 0 && errno == EINVAL), "status is not writable");
	if (fd >= 0)
		close(fd);
	fd = open("/proc/self", O_RDONLY | O_DIRECTORY);
	int rel = fd >= 0 ? openat(fd, "statm", O_RDONLY) : -1;
	CHECK(rel >= 0, "openat relative to /proc/self");
	close(rel);
	close(fd);
}

static void check_sysctls(void)
{
	struct utsname u;
	char text[128];

	CHECK(mode_is("/proc/sys/vm/drop_caches", S_IFREG | 0200) && mode_is("/proc/sys/vm/swappiness", S_IFREG | 0644) &&
		      mode_is("/proc/sys/vm/min_free_kbytes", S_IFREG | 0644) &&
		      mode_is("/proc/sys/vm/page-cluster", S_IFREG | 0644) && mode_is("/proc/sys/kernel/pid_max", S_IFREG | 0644) &&
		      mode_is("/proc/sys/kernel/osrelease", S_IFREG | 0444),
	      "sysctls have Linux's modes");
	const char *exist[] = { "vm/overcommit_memory", "vm/overcommit_ratio", "vm/max_map_count", "kernel/tainted", NULL };
	int all = 1;
	for (int i = 0; exist[i]; i++) {
		snprintf(text, sizeof(text), "/proc/sys/%s", exist[i]);
		all &= utest_read_number(text) >= 0;
	}
	CHECK(all, "overcommit_memory, overcommit_ratio, max_map_count, tainted read as numbers");
	CHECK(dir_has("/proc/sys/vm", "swappiness", NULL) && dir_has("/proc/sys", "kernel", NULL), "/proc/sys lists");
	CHECK(uname(&u) == 0 && utest_read_file("/proc/sys/kernel/osrelease", text, sizeof(text)) > 0 &&
		      strncmp(text, u.release, strlen(u.release)) == 0 && text[strlen(u.release)] == '\n',
	      "osrelease is uname's release (%s)", u.release);
	long pid_max = utest_read_number("/proc/sys/kernel/pid_max");
	CHECK(pid_max >= 301, "pid_max %ld", pid_max);
	if (geteuid() == 0) {
		CHECK(utest_write_text("/proc/sys/kernel/pid_max", "300") < 0 && errno == EINVAL, "pid_max 300: EINVAL");
		snprintf(text, sizeof(text), "%ld\n", pid_max);
		CHECK(utest_write_text("/proc/sys/kernel/pid_max", text) == 0, "pid_max written back");
	}
}

static void check_formats(int argc, char **argv)
{
	static const char *const status[] = { "Name", "Umask", "State", "Tgid", "Ngid", "Pid", "PPid", "TracerPid",
		"Uid", "Gid", "Groups", "NStgid", "NSpid", "NSpgid", "NSsid", "Kthread", "VmPeak", "VmSize", "VmLck",
		"VmPin", "VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem", "VmData", "VmStk", "VmExe", "VmLib",
		"VmPTE", "VmSwap", "HugetlbPages", "CoreDumping", "THP_enabled", "untag_mask", "Threads", "SigQ",
		"SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb",
		"NoNewPrivs", "Seccomp", "Seccomp_filters", "Cpus_allowed", "Cpus_allowed_list",
		"voluntary_ctxt_switches", "nonvoluntary_ctxt_switches", NULL };
	static const char *const rollup[] = { "Rss", "Pss", "Pss_Dirty", "Pss_Anon", "Pss_File", "Pss_Shmem",
		"Shared_Clean", "Shared_Dirty", "Private_Clean", "Private_Dirty", "Referenced", "Anonymous", "KSM",
		"LazyFree", "AnonHugePages", "ShmemPmdMapped", "FilePmdMapped", "Shared_Hugetlb", "Private_Hugetlb",
		"Swap", "SwapPss", "Locked", NULL };
	static const char *const meminfo[] = { "MemTotal", "MemFree", "MemAvailable", "Buffers", "Cached",
		"SwapCached", NULL };
	static char stat[1024], statm[256];

	CHECK(utest_read_file("/proc/self/status", buf, sizeof(buf)) > 0 && fields_in_order(buf, status, ':'),
	      "status has Linux's fields in Linux's order");
	CHECK(strncmp(buf, "Name:\tproc_test\n", 16) == 0 && field(buf, "Pid") == getpid() &&
		      field(buf, "PPid") == getppid() && field(buf, "Threads") == 1 && strstr(buf, "\nState:\tR (running)\n"),
	      "status: Name, Pid, PPid, Threads, State");
	CHECK(utest_read_file("/proc/self/stat", stat, sizeof(stat)) > 0 &&
		      utest_read_file("/proc/self/statm", statm, sizeof(statm)) > 0,
	      "stat and statm read");
	/* Fields 3..52 follow the last ')' (the name may hold spaces). */
	static char copy[1024];
	char *save = NULL;
	unsigned long long f[53] = { 0 };
	int n = 2;
	char state = 0;
	strcpy(copy, stat);
	f[1] = strtoull(copy, NULL, 10);
	char *rest = strrchr(copy, ')');
	for (char *tok = rest ? strtok_r(rest + 1, " \n", &save) : NULL; tok; tok = strtok_r(NULL, " \n", &save)) {
		n++;
		if (n == 3)
			state = tok[0];
		else if (n <= 52)
			f[n] = (unsigned long long)strtoll(tok, NULL, 10);
	}
	CHECK(n == 52, "stat has 52 fields (%d)", n);
	CHECK(f[1] == (unsigned long long)getpid() && strncmp(strchr(stat, '('), "(proc_test) R ", 14) == 0 && state == 'R' &&
		      f[4] == (unsigned long long)getppid() && f[20] == 1 && f[38] == SIGCHLD,
	      "stat: pid (comm) state ppid ... num_threads ... exit_signal");
	unsigned long size, resident, shared, text, lib, data, dt;
	CHECK(sscanf(statm, "%lu %lu %lu %lu %lu %lu %lu", &size, &resident, &shared, &text, &lib, &data, &dt) == 7 &&
		      lib == 0 && dt == 0 && size >= resident && resident >= shared && data > 0 && text > 0,
	      "statm: size resident shared text 0 data 0");
	CHECK(f[23] == size * PAGE, "stat's vsize is statm's size in bytes");
	/* cmdline: argv as exec laid it out, each string with its NUL. */
	size_t want = 0;
	for (int i = 0; i < argc; i++)
		want += strlen(argv[i]) + 1;
	int fd = open("/proc/self/cmdline", O_RDONLY);
	ssize_t got = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;
	close(fd);
	int same = got == (ssize_t)want;
	for (size_t off = 0, i = 0; same && i < (size_t)argc; off += strlen(argv[i]) + 1, i++)
		same = strcmp(buf + off, argv[i]) == 0;
	CHECK(same, "cmdline is argv, NUL-separated (%zd bytes)", got);
	CHECK(f[49] - f[48] == want, "stat's arg_end - arg_start is cmdline's length");
	CHECK(utest_read_file("/proc/self/smaps_rollup", buf, sizeof(buf)) > 0 && strstr(buf, "[rollup]\n") &&
		      fields_in_order(strchr(buf, '\n') + 1, rollup, ':'),
	      "smaps_rollup: [rollup] and Linux's fields");
	CHECK(utest_read_file("/proc/meminfo", buf, sizeof(buf)) > 0 && fields_in_order(buf, meminfo, ':') &&
		      strncmp(buf, "MemTotal:", 9) == 0,
	      "meminfo starts MemTotal, MemFree, MemAvailable, Buffers, Cached, SwapCached");
	CHECK(utest_read_file("/proc/vmstat", buf, sizeof(buf)) > 0 && strncmp(buf, "nr_free_pages ", 14) == 0,
	      "vmstat starts with nr_free_pages");
	CHECK(utest_read_file("/proc/self/comm", buf, sizeof(buf)) > 0 && strcmp(buf, "proc_test\n") == 0, "comm");
	CHECK(utest_read_file("/proc/mounts", buf, sizeof(buf)) > 0 && strstr(buf, " /proc proc "), "mounts shows proc");
}

/* A private region of `pages` pages between two PROT_NONE guards, so
 * that no neighbour merges into its VMA; page i written with i + 1. */
static char *region(int pages)
{
	char *guard = mmap(NULL, (pages + 2) * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (guard == MAP_FAILED || mprotect(guard + PAGE, pages * PAGE, PROT_READ | PROT_WRITE) != 0)
		return NULL;
	for (int i = 0; i < pages; i++)
		guard[(i + 1) * PAGE] = i + 1;
	return guard + PAGE;
}

static void check_smaps_and_pagemap(void)
{
	static char block[4096];
	int root = geteuid() == 0;
	char *r = region(16);

	CHECK(r != NULL, "a 16-page region");
	if (!r)
		return;
	CHECK(smaps_block(r, block, sizeof(block)) == 0 && smaps_fields_exact(block), "smaps: Linux's fields in Linux's order");
	CHECK(field(block, "Size") == 64 && field(block, "KernelPageSize") == 4 && field(block, "Rss") == 64 &&
		      field(block, "Pss") == 64 && field(block, "Private_Dirty") == 64 && field(block, "Anonymous") == 64 &&
		      field(block, "Shared_Dirty") == 0 && field(block, "Swap") == 0 && field(block, "Locked") == 0,
	      "16 written pages: Rss 64 kB, Pss 64 kB, Private_Dirty 64 kB, Anonymous 64 kB");
	CHECK(strstr(block, "\nVmFlags: rd wr mr mw me ") != NULL, "VmFlags: rd wr mr mw me");

	uint64_t e = pagemap_of(r);
	CHECK((e & (PM_PRESENT | PM_SWAP | PM_FILE | PM_EXCLUSIVE)) == (PM_PRESENT | PM_EXCLUSIVE),
	      "pagemap of a written page: present, exclusive, anonymous (%#llx)", (unsigned long long)e);
	CHECK(root ? (e & PM_PFN) != 0 : (e & PM_PFN) == 0, "its frame number: %s", root ? "shown to root" : "hidden");
	char *untouched = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK((pagemap_of(untouched) & (PM_PRESENT | PM_SWAP | PM_FILE | PM_EXCLUSIVE | PM_PFN)) == 0,
	      "pagemap of an untouched page: nothing");
	volatile char c = untouched[PAGE];
	(void)c;
	e = pagemap_of(untouched + PAGE);
	CHECK((e & (PM_PRESENT | PM_FILE | PM_EXCLUSIVE)) == PM_PRESENT, "a read page (the zero page): present only");
	char *shared = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	shared[0] = 1;
	CHECK((pagemap_of(shared) & (PM_PRESENT | PM_FILE)) == (PM_PRESENT | PM_FILE), "shared anonymous: a file page");

	int fd = open("/proc/self/pagemap", O_RDONLY);
	uint64_t two[2];
	CHECK(pread(fd, two, 8, (uintptr_t)r / PAGE * 8 + 4) < 0 && errno == EINVAL, "pagemap at an unaligned offset: EINVAL");
	CHECK(pread(fd, two, 12, (uintptr_t)r / PAGE * 8) < 0 && errno == EINVAL, "pagemap of a partial entry: EINVAL");
	CHECK(pread(fd, two, 16, (uintptr_t)r / PAGE * 8) == 16 && (two[1] & PM_PRESENT), "two entries in one read");
	close(fd);

	/* Fork shares every page: each side's Pss is half until a write. */
	int to_parent[2], to_child[2];
	if (pipe(to_parent) || pipe(to_child))
		return;
	pid_t pid = fork();
	if (pid == 0) {
		uint64_t mine = pagemap_of(r);
		char go;
		if (write(to_parent[1], &mine, 8) != 8 || read(to_child[0], &go, 1) != 1)
			_exit(2);
		_exit(0);
	}
	uint64_t childs = 0;
	CHECK(read(to_parent[0], &childs, 8) == 8, "the child's pagemap entry");
	e = pagemap_of(r);
	CHECK(!(e & PM_EXCLUSIVE) && !(childs & PM_EXCLUSIVE) && (childs & PM_PRESENT), "shared by fork: not exclusive");
	if (root)
		CHECK((e & PM_PFN) == (childs & PM_PFN) && (e & PM_PFN) != 0, "shared by fork: the same frame in both");
	CHECK(smaps_block(r, block, sizeof(block)) == 0 && field(block, "Rss") == 64 && field(block, "Pss") == 32 &&
		      field(block, "Shared_Dirty") == 64 && field(block, "Private_Dirty") == 0,
	      "after fork: Rss 64 kB, Pss 32 kB, Shared_Dirty 64 kB (Pss %ld)", field(block, "Pss"));
	for (int i = 0; i < 4; i++)
		r[i * PAGE] = 0x55;
	CHECK(smaps_block(r, block, sizeof(block)) == 0 && field(block, "Pss") == 16 + 24 &&
		      field(block, "Private_Dirty") == 16 && field(block, "Shared_Dirty") == 48,
	      "four pages copied on write: Pss 40 kB, Private_Dirty 16 kB");
	e = pagemap_of(r);
	CHECK((e & PM_EXCLUSIVE) && (!root || (e & PM_PFN) != (childs & PM_PFN)), "the copy is exclusive, another frame");
	int status;
	CHECK(write(to_child[1], "g", 1) == 1 && waitpid(pid, &status, 0) == pid && status == 0, "the child exits");
}

/*
 * With swap on (`proc_test swap`): pages MADV_PAGEOUT sent to swap are
 * swapped in pagemap (bit 62, the swap type and offset for root) and
 * count in smaps' Swap and SwapPss, which halves once a fork shares the
 * slots; they read back intact.
 */
static void check_swap(void)
{
	static char block[4096];
	if (utest_read_file("/proc/meminfo", buf, sizeof(buf)) <= 0 || field(buf, "SwapTotal") <= 0) {
		utest_print("# no swap: the swap checks are skipped\n");
		return;
	}
	char *r = region(8);
	CHECK(r && madvise(r, 8 * PAGE, MADV_PAGEOUT) == 0, "MADV_PAGEOUT of 8 pages");
	if (!r)
		return;
	uint64_t e = pagemap_of(r);
	CHECK((e & (PM_PRESENT | PM_SWAP)) == PM_SWAP, "pagemap of a swapped-out page: swapped, not present (%#llx)",
	      (unsigned long long)e);
	CHECK(geteuid() == 0 ? (e & PM_PFN) >> 5 != 0 : (e & PM_PFN) == 0, "its swap offset: %s",
	      geteuid() == 0 ? "shown to root" : "hidden");
	CHECK(smaps_block(r, block, sizeof(block)) == 0 && field(block, "Swap") == 32 && field(block, "SwapPss") == 32 &&
		      field(block, "Rss") == 0,
	      "smaps: Swap 32 kB, SwapPss 32 kB, Rss 0 (Swap %ld)", field(block, "Swap"));
	int to_child[2];
	if (pipe(to_child))
		return;
	pid_t pid = fork();
	if (pid == 0) {
		char go;
		_exit(read(to_child[0], &go, 1) == 1 ? 0 : 2);
	}
	CHECK(smaps_block(r, block, sizeof(block)) == 0 && field(block, "Swap") == 32 && field(block, "SwapPss") == 16,
	      "after fork: SwapPss 16 kB (%ld)", field(block, "SwapPss"));
	int status;
	CHECK(write(to_child[1], "g", 1) == 1 && waitpid(pid, &status, 0) == pid && status == 0, "the child exits");
	int intact = 1;
	for (int i = 0; i < 8; i++)
		intact &= r[i * PAGE] == i + 1;
	CHECK(intact && (pagemap_of(r) & PM_PRESENT), "the pages read back intact, present again");
}

int main(int argc, char **argv)
{
	utest_start(argv[0]);
	check_directory();
	check_sysctls();
	check_formats(argc, argv);
	check_smaps_and_pagemap();
	if (argc > 1 && strcmp(argv[1], "swap") == 0)
		check_swap();
	return utest_done();
}
