/* The gc of a store no supervisor serves (no remote: no indexer runs to apply
 * cache.max_size every supervisor.gc_interval). A wrapper that stored a result
 * when the last gc started that long ago runs `kached __gc` in the background
 * (wrapper_gc_kick); it takes run/gc.lock, so one runs at a time, and gives
 * way to a supervisor and to a command that holds the index. A command that
 * finds the index held by it waits for it (gc_background_wait). */
#include "cli/gc_background.h"
#include "cli/index_cmds.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/config.h"
#include "common/log.h"
#include "common/util.h"
#include "index/index.h"
#include "index/index_json.h"
#include "proto/paths.h"
#include "proto/worker.h"

/* The background gc's niceness: in cargo's session (see proto_gc_spawn) it
 * takes only what the build leaves. */
#define GC_NICE 19
/* A gc that has not ended by then (a store on a disk that hangs) is ended by
 * SIGALRM: the index and the store stay sound after a kill at any point, and
 * run/gc.lock goes with the process. */
#define GC_MAX_S (30 * 60)
#define GC_WAIT_POLL_US 50000

static int gc_lock(const char *dir, int how);
static int supervisor_here(const char *dir);
static void collect(const char *dir, const struct config *cfg);
static void stderr_to(const char *path);

/* Points stderr (/dev/null from the spawn) at the log file path. */
static void
stderr_to(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);

	if (fd != -1 && fd != STDERR_FILENO) {
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
}

/* Opens run/gc.lock (made, with run/, for LOCK_EX) and flocks it with how
 * (| LOCK_NB): the fd, or -1. */
static int
gc_lock(const char *dir, int how)
{
	char *run = xasprintf("%s/run", dir), *path = xasprintf("%s/gc.lock", run);
	int fd;

	if (how == LOCK_EX && mkdir(run, 0700) < 0 && errno != EEXIST)
		log_warn("mkdir %s", run);
	fd = open(path, (how == LOCK_EX ? O_RDWR | O_CREAT : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	free(path);
	free(run);
	if (fd != -1 && flock(fd, how | LOCK_NB) == -1) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* 1 when a supervisor runs or is being started for the store: its indexer
 * collects. */
static int
supervisor_here(const char *dir)
{
	struct proto_paths p;

	return proto_paths_init(&p, dir) == 0 &&
	    (proto_supervisor_starting(&p) || proto_supervisor_running(&p));
}

/* One gc to cache.max_size, said in the line `kache gc` prints. The index is
 * taken without waiting: whoever holds it (a command, a supervisor come up
 * meanwhile) is left alone, and the next miss past the interval tries again. */
static void
collect(const char *dir, const struct config *cfg)
{
	int64_t cap = config_get_size(cfg, "cache.max_size");
	struct index *ix;
	char line[512];
	json_t *doc;

	if ((ix = index_open_wait(dir, 0)) == NULL) {
		log_info("the index is %s; the next gc tries again",
		    errno == EBUSY ? "held by another process" : "not open");
		return;
	}
	doc = index_json_gc(ix, (uint64_t)cap, 0, 0, 0, NULL);
	index_free(&ix);
	if (!json_is_true(json_object_get(doc, "ok")))
		log_warnx("gc of %s did not finish", dir);
	gc_summary(doc, line, sizeof line);
	log_info("%s", line);
	json_decref(doc);
}

int
cmd_gc_background(int argc, char **argv)
{
	struct config *cfg;
	const char *dir;
	char *logs, *path;
	int lock;

	(void)argv;
	if (argc > 1)
		return 2;
	signal(SIGHUP, SIG_IGN);
	alarm(GC_MAX_S);
	if (setpriority(PRIO_PROCESS, 0, GC_NICE) < 0)
		log_debug("setpriority: %s", strerror(errno));
	cfg = config_load_warn(CONFIG_WARN_NONE, NULL);
	dir = config_get(cfg, "cache.dir");
	logs = xasprintf("%s/logs", dir);
	path = xasprintf("%s/gc.log", logs);
	log_init("gc", NULL, LOG_LEVEL_INFO);
	if ((mkdir(logs, 0700) == 0 || errno == EEXIST) && log_open_file(path) == 0) {
		proto_logfile_rotate(path, PROTO_LOG_MAX);
		stderr_to(path); /* what a crash or a sanitizer says */
	}
	if ((lock = gc_lock(dir, LOCK_EX)) == -1)
		log_debug("another gc runs");
	else if (supervisor_here(dir))
		log_info("a supervisor runs for %s: its indexer collects", dir);
	else
		collect(dir, cfg);
	if (lock != -1)
		close(lock);
	free(path);
	free(logs);
	config_free(&cfg);
	return 0;
}

int
gc_background_wait(const char *dir, int64_t wait_ms)
{
	int64_t end = clock_ms() + wait_ms;
	int fd, said = 0;

	while ((fd = gc_lock(dir, LOCK_SH)) == -1 && errno == EWOULDBLOCK && clock_ms() < end) {
		if (!said++)
			fprintf(stderr, "kache: waiting for the background gc of %s\n", dir);
		usleep(GC_WAIT_POLL_US);
	}
	if (fd != -1)
		close(fd);
	return said && fd != -1;
}
