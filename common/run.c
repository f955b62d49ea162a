/* Running a short-lived helper command (common/run.h). */
#include "common/run.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"

static void read_out(int fd, char *out, size_t n, int64_t deadline);

/* Reads fd until EOF or deadline, keeping the first n-1 bytes in out. */
static void
read_out(int fd, char *out, size_t n, int64_t deadline)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN, .revents = 0 };
	char drop[4096];
	size_t got = 0;
	ssize_t r;

	while (clock_left_ms(deadline) > 0 && poll(&pfd, 1, (int)clock_left_ms(deadline)) > 0) {
		if (got < n - 1)
			r = read(fd, out + got, n - 1 - got);
		else
			r = read(fd, drop, sizeof drop);
		if (r <= 0)
			break;
		if (got < n - 1)
			got += (size_t)r;
	}
	out[got] = '\0';
}

int
run_capture(char *const argv[], const char *dir, char *out, size_t n, int64_t timeout_ms)
{
	int64_t deadline = clock_ms() + timeout_ms;
	int fds[2], st = -1;
	pid_t pid;

	out[0] = '\0';
	if (n == 0 || pipe2(fds, O_CLOEXEC) < 0)
		return -1;
	if ((pid = fork()) == 0) {
		int nul = open("/dev/null", O_RDWR);

		if (nul < 0 || dup2(nul, 0) < 0 || dup2(fds[1], 1) < 0 || dup2(nul, 2) < 0 ||
		    (dir != NULL && chdir(dir) < 0))
			_exit(126);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(fds[1]);
	if (pid > 0)
		read_out(fds[0], out, n, deadline);
	close(fds[0]);
	while (pid > 0 && waitpid(pid, &st, WNOHANG) == 0) {
		if (clock_left_ms(deadline) <= 0) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return -1;
		}
		usleep(5000);
	}
	return pid > 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int
run_in_background(int nice)
{
	char v[16];
	int fd, len, rc = 0;

	(void)setsid(); /* EPERM: already a group leader, and its session stays */
	/* absent without CONFIG_SCHED_AUTOGROUP; with it switched off, it takes the
	 * value and the process's own nice value is the one weighed */
	if ((fd = open("/proc/self/autogroup", O_WRONLY | O_CLOEXEC)) >= 0) {
		len = snprintf(v, sizeof v, "%d", nice);
		if (write(fd, v, (size_t)len) != len)
			rc = -1;
		close(fd);
	}
	if (setpriority(PRIO_PROCESS, 0, nice) < 0)
		rc = -1;
	return rc;
}
