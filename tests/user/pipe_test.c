/*
 * Pipes and descriptors as Linux defines them (fs/pipe.c, fs/file.c):
 * data in order, end of file once the last writer closes, EPIPE and
 * SIGPIPE once the last reader closes, O_NONBLOCK's EAGAIN on an empty or
 * full pipe, a 64 KiB buffer, pipe2's flag checks, EFAULT for a bad fds
 * pointer, a pipe across fork, dup2/dup3 and the close-on-exec bit,
 * F_SETFL's O_NONBLOCK, readv/writev, a read into a bad buffer that loses
 * nothing, fstat's S_IFIFO and lseek's ESPIPE.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "utest.h"

#define BAD_PTR ((void *)0x10)

static volatile sig_atomic_t sigpipes;

static void on_sigpipe(int sig)
{
	(void)sig;
	sigpipes++;
}

static void data_and_end_of_file(void)
{
	int fds[2];
	char buf[16] = { 0 };

	CHECK(pipe(fds) == 0, "pipe");
	CHECK(write(fds[1], "hello", 5) == 5 && write(fds[1], "world", 5) == 5, "two writes");
	CHECK(read(fds[0], buf, 3) == 3 && memcmp(buf, "hel", 3) == 0, "a short read takes the first bytes");
	CHECK(read(fds[0], buf, sizeof(buf)) == 7 && memcmp(buf, "loworld", 7) == 0,
	      "a long read returns what is there, in order");
	CHECK(close(fds[1]) == 0, "close the write end");
	CHECK(read(fds[0], buf, sizeof(buf)) == 0, "read after the last writer closed returns 0 (end of file)");
	close(fds[0]);
}

static void no_reader_gives_epipe_and_sigpipe(void)
{
	int fds[2];
	struct sigaction sa = { .sa_handler = on_sigpipe };

	sigemptyset(&sa.sa_mask);
	CHECK(sigaction(SIGPIPE, &sa, NULL) == 0, "install a SIGPIPE handler");
	CHECK(pipe(fds) == 0, "pipe");
	close(fds[0]);
	CHECK(write(fds[1], "x", 0) == 0 && sigpipes == 0, "a zero-length write succeeds even with no reader");
	errno = 0;
	CHECK(write(fds[1], "x", 1) == -1 && errno == EPIPE, "write with no reader fails with EPIPE");
	CHECK(sigpipes == 1, "and raises SIGPIPE once");
	close(fds[1]);

	/* Default action: SIGPIPE kills. The read end closes before fork, so
	 * no process holds one when the child writes. */
	CHECK(pipe(fds) == 0, "pipe");
	close(fds[0]);
	pid_t pid = fork();
	if (pid == 0) {
		signal(SIGPIPE, SIG_DFL);
		write(fds[1], "x", 1);
		_exit(0);
	}
	close(fds[1]);
	int status = 0;
	CHECK(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status) && WTERMSIG(status) == SIGPIPE,
	      "an unhandled SIGPIPE kills the writer");
}

static void nonblocking_and_capacity(void)
{
	int fds[2];
	static char big[70000];
	char c;

	errno = 0;
	CHECK(pipe2(fds, 0x40000000) == -1 && errno == EINVAL, "pipe2 with an unknown flag fails with EINVAL");
	CHECK(pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0, "pipe2(O_NONBLOCK | O_CLOEXEC)");
	errno = 0;
	CHECK(read(fds[0], &c, 1) == -1 && errno == EAGAIN, "read of an empty O_NONBLOCK pipe fails with EAGAIN");
	CHECK(write(fds[1], big, sizeof(big)) == 65536, "a non-blocking write fills the 64 KiB pipe and stops");
	errno = 0;
	CHECK(write(fds[1], "x", 1) == -1 && errno == EAGAIN, "write to a full O_NONBLOCK pipe fails with EAGAIN");
	CHECK(fcntl(fds[0], F_GETFD) == FD_CLOEXEC, "pipe2(O_CLOEXEC) sets FD_CLOEXEC");
	CHECK((fcntl(fds[0], F_GETFL) & O_NONBLOCK) != 0, "F_GETFL shows O_NONBLOCK");
	close(fds[0]);
	close(fds[1]);

	CHECK(pipe(fds) == 0, "pipe");
	CHECK(fcntl(fds[0], F_GETFD) == 0, "a plain pipe has no FD_CLOEXEC");
	CHECK(fcntl(fds[0], F_SETFL, O_NONBLOCK) == 0, "F_SETFL O_NONBLOCK");
	errno = 0;
	CHECK(read(fds[0], &c, 1) == -1 && errno == EAGAIN, "after F_SETFL, an empty read fails with EAGAIN");
	CHECK(fcntl(fds[0], F_SETFD, FD_CLOEXEC) == 0 && fcntl(fds[0], F_GETFD) == FD_CLOEXEC, "F_SETFD FD_CLOEXEC");
	close(fds[0]);
	close(fds[1]);

	errno = 0;
	CHECK(syscall(SYS_pipe2, BAD_PTR, 0) == -1 && errno == EFAULT, "pipe2 to a bad pointer fails with EFAULT");
	int probe = dup(0);
	CHECK(probe >= 0 && probe <= 3, "and leaves no descriptor behind (next free is %d)", probe);
	close(probe);
}

static void across_fork_with_blocking(void)
{
	int fds[2];
	static char buf[200000];

	CHECK(pipe(fds) == 0, "pipe");
	pid_t pid = fork();
	if (pid == 0) {
		close(fds[0]);
		for (size_t i = 0; i < sizeof(buf); i++)
			buf[i] = (char)(i * 7);
		/* More than the pipe holds: the writer blocks until the reader drains. */
		size_t off = 0;
		while (off < sizeof(buf)) {
			ssize_t n = write(fds[1], buf + off, sizeof(buf) - off);
			if (n <= 0)
				_exit(1);
			off += n;
		}
		_exit(0);
	}
	close(fds[1]);
	size_t got = 0;
	int in_order = 1;
	for (;;) {
		char chunk[4096];
		ssize_t n = read(fds[0], chunk, sizeof(chunk));
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			in_order &= chunk[i] == (char)((got + i) * 7);
		got += n;
	}
	int status = 0;
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "the writing child exits 0");
	CHECK(got == sizeof(buf) && in_order, "200000 bytes cross the pipe in order (%zu)", got);
	close(fds[0]);
}

static void vectors_and_bad_buffers(void)
{
	int fds[2];
	char a[4] = { 0 }, b[4] = { 0 };
	struct iovec out[2] = { { "abc", 3 }, { "defg", 4 } };
	struct iovec in[2] = { { a, 3 }, { b, 4 } };

	CHECK(pipe(fds) == 0, "pipe");
	CHECK(writev(fds[1], out, 2) == 7, "writev of two buffers writes 7 bytes");
	errno = 0;
	CHECK(read(fds[0], BAD_PTR, 7) == -1 && errno == EFAULT, "read into a bad buffer fails with EFAULT");
	CHECK(readv(fds[0], in, 2) == 7 && memcmp(a, "abc", 3) == 0 && memcmp(b, "defg", 4) == 0,
	      "and loses nothing: readv gets all 7 bytes in order");
	CHECK(fcntl(fds[0], F_SETFL, O_NONBLOCK) == 0, "F_SETFL O_NONBLOCK");
	CHECK(write(fds[1], "xy", 2) == 2, "write 2 bytes");
	CHECK(readv(fds[0], in, 2) == 2 && memcmp(a, "xy", 2) == 0,
	      "readv returns what is there without waiting for more");
	struct iovec skip[2] = { { a, 0 }, { b, 4 } };
	CHECK(write(fds[1], "zz", 2) == 2 && readv(fds[0], skip, 2) == 2 && memcmp(b, "zz", 2) == 0,
	      "readv skips an empty first buffer");
	struct iovec negative[2] = { { a, 1 }, { b, (size_t)-1 } };
	errno = 0;
	CHECK(readv(fds[0], negative, 2) == -1 && errno == EINVAL, "readv of a length negative as ssize_t fails with EINVAL");
	errno = 0;
	CHECK(fcntl(fds[0], F_DUPFD, 1 << 30) == -1 && errno == EINVAL, "F_DUPFD beyond the descriptor limit fails with EINVAL");
	close(fds[0]);
	close(fds[1]);
}

static void dup2_dup3_fstat_lseek(void)
{
	int fds[2];
	struct stat st;
	char c = 0;

	CHECK(pipe(fds) == 0, "pipe");
	CHECK(dup2(fds[1], 10) == 10, "dup2 onto 10");
	CHECK(write(10, "z", 1) == 1 && read(fds[0], &c, 1) == 1 && c == 'z', "the copy writes into the same pipe");
	CHECK(dup2(10, 10) == 10, "dup2 onto itself returns the descriptor");
	errno = 0;
	CHECK(dup3(10, 10, 0) == -1 && errno == EINVAL, "dup3 onto itself fails with EINVAL");
	errno = 0;
	CHECK(dup2(99, 11) == -1 && errno == EBADF, "dup2 of a closed descriptor fails with EBADF");
	CHECK(dup3(fds[0], 11, O_CLOEXEC) == 11 && fcntl(11, F_GETFD) == FD_CLOEXEC, "dup3 with O_CLOEXEC");
	CHECK(fstat(fds[0], &st) == 0 && S_ISFIFO(st.st_mode), "fstat says S_IFIFO");
	errno = 0;
	CHECK(lseek(fds[0], 0, SEEK_SET) == -1 && errno == ESPIPE, "lseek on a pipe fails with ESPIPE");
	close(fds[1]);
	close(10);
	CHECK(read(fds[0], &c, 1) == 0, "end of file once every copy of the write end is closed");
	close(fds[0]);
	close(11);
}

int main(int argc, char **argv)
{
	(void)argc;
	utest_start(argv[0]);
	data_and_end_of_file();
	no_reader_gives_epipe_and_sigpipe();
	nonblocking_and_capacity();
	across_fork_with_blocking();
	vectors_and_bad_buffers();
	dup2_dup3_fstat_lseek();
	return utest_done();
}
