#include "common/log.h"
#include "common/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *log_role_name = "kache";
static FILE *log_out;
static enum log_level log_lvl = LOG_LEVEL_WARN;

static void log_vemit(const char *tag, int with_errno, int err, const char *fmt, va_list ap);

void
log_init(const char *role, FILE *out, enum log_level level)
{
	log_role_name = role;
	log_out = out;
	log_lvl = level;
}

int
log_open_file(const char *path)
{
	int fd = fs_open_regular(path, O_WRONLY | O_APPEND | O_CREAT, 0644);
	FILE *f = fd < 0 ? NULL : fdopen(fd, "a");

	if (f == NULL) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	setvbuf(f, NULL, _IOLBF, 0);
	if (log_out != NULL && log_out != stderr && log_out != stdout)
		fclose(log_out);
	log_out = f;
	return 0;
}

enum log_level
log_level_from_string(const char *s)
{
	if (s == NULL || *s == '\0')
		return LOG_LEVEL_WARN;
	if (strcmp(s, "off") == 0 || strcmp(s, "0") == 0)
		return LOG_LEVEL_OFF;
	if (strcmp(s, "info") == 0)
		return LOG_LEVEL_INFO;
	if (strcmp(s, "debug") == 0 || strcmp(s, "1") == 0)
		return LOG_LEVEL_DEBUG;
	return LOG_LEVEL_WARN;
}

enum log_level
log_get_level(void)
{
	return log_lvl;
}

const char *
log_role(void)
{
	return log_role_name;
}

static void
log_vemit(const char *tag, int with_errno, int err, const char *fmt, va_list ap)
{
	char stamp[32];
	struct timeval tv;
	struct tm tm;

	if (log_out == NULL)
		return;
	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
	flockfile(log_out);
	fprintf(log_out, "%s.%03ld %s[%ld] %s: ", stamp, (long)tv.tv_usec / 1000, log_role_name,
	    (long)getpid(), tag);
	vfprintf(log_out, fmt, ap);
	if (with_errno)
		fprintf(log_out, ": %s", strerror(err));
	fputc('\n', log_out);
	funlockfile(log_out);
	fflush(log_out);
}

#define LOG_BODY(level, tag, with_errno)                                                           \
	do {                                                                                       \
		int saved = errno;                                                                 \
		va_list ap;                                                                        \
		if (log_lvl < (level))                                                             \
			return;                                                                    \
		va_start(ap, fmt);                                                                 \
		log_vemit(tag, with_errno, saved, fmt, ap);                                        \
		va_end(ap);                                                                        \
		errno = saved;                                                                     \
	} while (0)

void
log_last_line(const char *path, const char *marker, char *out, size_t n)
{
	char buf[16384];
	const char *at = NULL, *p;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	ssize_t got;

	out[0] = '\0';
	if (fd < 0)
		return;
	if (fstat(fd, &st) == 0 && st.st_size > (off_t)sizeof buf - 1)
		lseek(fd, st.st_size - (off_t)sizeof buf + 1, SEEK_SET);
	got = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (got <= 0)
		return;
	buf[got] = '\0';
	for (p = buf; (p = strstr(p, marker)) != NULL; p++)
		at = p;
	if (at != NULL)
		snprintf(out, n, "%.*s", (int)strcspn(at, "\n"), at);
}

void
log_last_warning(const char *path, char *out, size_t n)
{
	static const char tag[] = " warn: ";
	size_t len;

	log_last_line(path, tag, out, n);
	if ((len = strlen(out)) >= sizeof tag - 1)
		memmove(out, out + sizeof tag - 1, len - (sizeof tag - 1) + 1);
	else
		out[0] = '\0'; /* n cut it within the tag */
}

void
log_warn(const char *fmt, ...)
{
	LOG_BODY(LOG_LEVEL_WARN, "warn", 1);
}

void
log_warnx(const char *fmt, ...)
{
	LOG_BODY(LOG_LEVEL_WARN, "warn", 0);
}

void
log_info(const char *fmt, ...)
{
	LOG_BODY(LOG_LEVEL_INFO, "info", 0);
}

void
log_debug(const char *fmt, ...)
{
	LOG_BODY(LOG_LEVEL_DEBUG, "debug", 0);
}

void
fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	if (log_out == NULL)
		log_out = stderr;
	log_vemit("fatal", 1, saved, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (log_out == NULL)
		log_out = stderr;
	log_vemit("fatal", 0, 0, fmt, ap);
	va_end(ap);
	exit(1);
}
