/* Logging: every line carries role and pid. The wrapper is silent unless asked. */
#ifndef KACHE_LOG_H
#define KACHE_LOG_H

#include <stdarg.h>
#include <stdio.h>

enum log_level { LOG_LEVEL_OFF = 0, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* Sets the role shown on each line, where lines go (NULL: nowhere) and the level. */
void log_init(const char *role, FILE *out, enum log_level level);
/* Opens path for appending and logs there; returns -1 (and keeps the old sink) on failure. */
int log_open_file(const char *path);
enum log_level log_level_from_string(const char *s);
enum log_level log_get_level(void);
const char *log_role(void);

/* Of the lines in the last 16 KiB of the log file path that hold marker, the
 * last one's text from marker to its end, into out (at most n bytes with its
 * NUL); "" when there is none or the file cannot be read. */
void log_last_line(const char *path, const char *marker, char *out, size_t n);
/* The text of the last warning in the last 16 KiB of the log file path (what
 * follows its "warn: "), as log_last_line. */
void log_last_warning(const char *path, char *out, size_t n);

void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
