/* Running a short-lived helper command and reading what it prints; running as
 * background work beside a build. */
#ifndef KACHE_COMMON_RUN_H
#define KACHE_COMMON_RUN_H

#include <stddef.h>
#include <stdint.h>

/* Runs argv (argv[0] looked up on PATH unless it has a '/') in dir (NULL:
 * here), stdin and stderr on /dev/null, and keeps at most n-1 bytes of its
 * stdout in out (NUL-terminated; the rest is read and dropped). It gets
 * timeout_ms in all; then it is killed. Its exit status, or -1 (it could not
 * start, was killed or timed out). */
int run_capture(char *const argv[], const char *dir, char *out, size_t n, int64_t timeout_ms);

/* Makes the calling process background work that yields the CPU to a build:
 * its own session, that session's scheduling group niced (Linux's autogroups
 * weigh sessions against each other, so a nice value alone would yield only to
 * the processes of this session, never to cargo's), and the process niced (a
 * kernel without autogroups weighs processes). Call it before starting threads
 * (they inherit the nice value). 0; -1 when a nice value could not be set. */
int run_in_background(int nice);

#endif
