/* kache: the RUSTC_WRAPPER. cargo runs `kache <rustc> <args>`, and `kache
 * <workspace wrapper> <rustc> <args>` for a workspace's members under
 * RUSTC_WORKSPACE_WRAPPER (driver.c: clippy-driver is cached); `kache rustc
 * <args>` finds rustc on PATH; `kache gcc <args>` (any C compiler, cc.h) caches a
 * C compile. Every other first argument is a command, which
 * is served by kached (beside this binary) so this one stays lean. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/path.h"
#include "store/journal.h"
#include "wrapper/cc.h"
#include "wrapper/wrapper.h"

static void exec_kached(char **argv) __attribute__((noreturn));
static void setup_log(const struct config *cfg);
static void journal_pass(struct store *s, const char *reason, const char *crate);

static void
exec_kached(char **argv)
{
	char *kached = wrapper_kached_path();

	if (kached == NULL) {
		fprintf(stderr, "kache: cannot find my own binary: %s\n", strerror(errno));
		exit(1);
	}
	argv[0] = "kache";
	execv(kached, argv);
	fprintf(stderr, "kache: cannot run %s: %s (is kache installed completely?)\n", kached,
	    strerror(errno));
	exit(1);
}

/* Silent unless asked: cargo replays what a wrapper prints. */
static void
setup_log(const struct config *cfg)
{
	enum log_level lvl = log_level_from_string(config_get(cfg, "log.level"));
	const char *file = config_get(cfg, "log.file");
	char *path;

	log_init("wrapper", NULL, lvl);
	if (lvl == LOG_LEVEL_OFF)
		return;
	if (file[0] != '\0') {
		log_open_file(file);
		return;
	}
	path = xasprintf("%s/logs", config_get(cfg, "cache.dir"));
	fs_mkdir_p(path, config_get_bool(cfg, "cache.shared") ? 0755 : 0700);
	free(path);
	path = xasprintf("%s/logs/wrapper.log", config_get(cfg, "cache.dir"));
	log_open_file(path);
	free(path);
}

static void
journal_pass(struct store *s, const char *reason, const char *crate)
{
	struct journal_event ev;

	log_info("pass-through (%s): %s", reason, crate ? crate : "-");
	if (s == NULL)
		return;
	memset(&ev, 0, sizeof ev);
	ev.type = JOURNAL_PASS;
	snprintf(ev.reason, sizeof ev.reason, "%s", reason);
	snprintf(ev.crate, sizeof ev.crate, "%s", crate ? crate : "");
	journal_append(store_dir(s), &ev);
}

int
main(int argc, char **argv)
{
	struct wrapper w;
	char *driver = NULL; /* the workspace wrapper's path (driver_kind) */
	enum driver_kind dk = argc >= 2 ? driver_kind(argc - 1, argv + 1, &driver) : DRIVER_NONE;
	int rc, skip;

	/* RUSTC_WORKSPACE_WRAPPER=kache beside RUSTC_WRAPPER=kache: `kache kache
	 * rustc <args>` is one kache (not a pass-through to a second one) */
	if (dk == DRIVER_OTHER && strcmp(path_basename(argv[1]), path_basename(argv[0])) == 0) {
		argc--;
		argv++;
		dk = DRIVER_NONE;
		free(driver);
		driver = NULL;
	}
	skip = dk == DRIVER_NONE ? 2 : 3; /* kache, [driver,] rustc */

	/* the one dispatch to the C path (wrapper/cc.c), on the compiler's name */
	if (argc >= 2 && cc_is_compiler(argv[1]))
		return cc_main(argc - 1, argv + 1);
	if (dk == DRIVER_NONE &&
	    (argc < 2 || (strchr(argv[1], '/') == NULL && strcmp(argv[1], "rustc") != 0)))
		exec_kached(argv);
	memset(&w, 0, sizeof w);
	w.start_us = clock_us();
	w.driver = driver;
	w.rustc = argv[skip - 1];
	w.cfg = config_load(NULL);
	/* every fallback runs the command as cargo gave it */
	if (config_get_bool(w.cfg, "cache.disabled"))
		exec_rustc(argv[1], argc - 2, argv + 2);
	setup_log(w.cfg);
	args_parse(&w.args, argc - skip, argv + skip);
	if (dk == DRIVER_OTHER && w.args.pass_reason == NULL)
		w.args.pass_reason = "workspace-wrapper";
	w.store = store_open_shared(config_get(w.cfg, "cache.dir"),
	    config_get_bool(w.cfg, "cache.shared"));
	if (w.store == NULL) {
		log_warn("cannot open store %s", config_get(w.cfg, "cache.dir"));
		exec_rustc(argv[1], argc - 2, argv + 2);
	}
	rc = wrapper_compile(&w);
	if (rc < 0) {
		journal_pass(w.store, w.args.pass_reason ? w.args.pass_reason : "kache-error",
		    w.args.crate_name);
		/* cargo's questions, to rustc or through clippy-driver */
		if (dk == DRIVER_OTHER || (rc = query_answer(&w)) < 0)
			exec_rustc(argv[1], argc - 2, argv + 2);
	}
	args_free(&w.args);
	roots_free(&w.roots);
	memo_free(&w);
	trace_free(&w);
	strv_free(&w.key_files);
	free(w.driver_conf);
	free(driver);
	buf_free(&w.key_hashes);
	store_free(&w.store);
	config_free(&w.cfg);
	return rc;
}
