/* Running the real rustc: output is forwarded as it comes (cargo reads rustc's
 * JSON notices as they arrive, for pipelining) and captured for the store. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/fs.h"
#include "wrapper/wrapper.h"

static volatile sig_atomic_t child_pid;

static void forward_signal(int sig);
static int pump(int fd, int to, struct buf *into);

static void
forward_signal(int sig)
{
	if (child_pid > 0)
		kill((pid_t)child_pid, sig);
}

void
exec_rustc(const char *rustc, int argc, char **argv)
{
	char **v = xcalloc((size_t)argc + 2, sizeof *v);

	v[0] = (char *)rustc;
	for (int i = 0; i < argc; i++)
		v[i + 1] = argv[i];
	execvp(rustc, v);
	/* Nothing else can be done: say so the way a shell would. */
	write(2, "kache: cannot run rustc: ", 25);
	write(2, strerror(errno), strlen(strerror(errno)));
	write(2, "\n", 1);
	_exit(127);
}

/* Moves what is readable on fd to `to` and into the buffer; 0 at EOF. */
static int
pump(int fd, int to, struct buf *into)
{
	char chunk[65536];
	ssize_t n = read(fd, chunk, sizeof chunk);

	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 1 : 0;
	if (n == 0)
		return 0;
	buf_add(into, chunk, (size_t)n);
	fs_write_all(to, chunk, (size_t)n);
	return 1;
}

int
run_rustc(const char *rustc, char *const argv[], char *const env_add[], struct run_result *r)
{
	int po[2], pe[2], status;
	struct pollfd fds[2];
	int64_t start = clock_ms();
	pid_t pid;
	struct sigaction sa = { .sa_handler = forward_signal }, old_int, old_term;

	buf_init(&r->out);
	buf_init(&r->err);
	if (pipe2(po, O_CLOEXEC) < 0)
		return -1;
	if (pipe2(pe, O_CLOEXEC) < 0) {
		close(po[0]);
		close(po[1]);
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		close(po[0]), close(po[1]), close(pe[0]), close(pe[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(po[1], 1);
		dup2(pe[1], 2);
		for (size_t i = 0; env_add != NULL && env_add[i] != NULL; i++)
			putenv(env_add[i]);
		execvp(rustc, argv);
		_exit(127);
	}
	child_pid = pid;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	close(po[1]);
	close(pe[1]);
	fds[0] = (struct pollfd){ .fd = po[0], .events = POLLIN };
	fds[1] = (struct pollfd){ .fd = pe[0], .events = POLLIN };
	while (fds[0].fd >= 0 || fds[1].fd >= 0) {
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int k = 0; k < 2; k++)
			if (fds[k].fd >= 0 && (fds[k].revents & (POLLIN | POLLHUP | POLLERR)) &&
			    !pump(fds[k].fd, k == 0 ? 1 : 2, k == 0 ? &r->out : &r->err)) {
				close(fds[k].fd);
				fds[k].fd = -1;
			}
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	child_pid = 0;
	r->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	r->ms = (uint64_t)(clock_ms() - start);
	return 0;
}
