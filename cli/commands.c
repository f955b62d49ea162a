#include "cli/commands.h"

#include <stdio.h>
#include <string.h>

#include "common/config.h"
#include "common/util.h"

#include "cli/cli.h"
#include "supervisor/supervisor.h"
#include "cli/doctor.h"
#include "cli/gc_background.h"
#include "cli/index_cmds.h"
#include "cli/init.h"
#include "cli/monitor.h"
#include "cli/report.h"
#include "cli/sign_cmds.h"

static const struct command commands[] = {
	{ "__gc", cmd_gc_background, "internal: the gc of a store no supervisor serves",
	    "usage: kached __gc (started by a wrapper; logs to <store>/logs/gc.log)\n", 1 },
	{ "__worker", supervisor_worker_cmd, "internal: a supervisor worker",
	    "usage: kached __worker <role> <index> (started by the supervisor)\n", 1 },
	{ "__zygote", supervisor_zygote_cmd, "internal: forks the supervisor's workers",
	    "usage: kached __zygote (started by the supervisor)\n", 1 },
	{ "config", cmd_config, "print the effective settings and where each came from",
	    "usage: kache config\n"
	    "Prints every setting, its value, and its source: default, the config file\n"
	    "(~/.config/kache/config.toml, or $KACHE_CONFIG) or a KACHE_* variable.\n"
	    "Unknown keys in the file are named in a warning on stderr.\n",
	    0 },
	{ "daemon", supervisor_cmd, "alias of supervisor; alone, the supervisor's status",
	    "usage: kache daemon [status|log|...] (see `kache help supervisor`)\n", 1 },
	{ "doctor", cmd_doctor, "check the setup and name the fix for each problem",
	    "usage: kache doctor [--json]\n"
	    "Checks: kache and kached on PATH and of one version; cargo's rustc wrapper\n"
	    "(RUSTC_WRAPPER, .cargo/config.toml up from here, $CARGO_HOME/config.toml) is\n"
	    "kache; sccache not configured too; the store directory, its filesystem\n"
	    "(network? reflink?), free space, cache.max_size against it, and permissions;\n"
	    "the index opens; the supervisor, if running, answers and is of this version;\n"
	    "the remote answers with these credentials; no stale lock. Each problem is\n"
	    "printed with `fix:`. Exit status 1 while any check fails. --json: {schema, ok,\n"
	    "checks: [{name, status, detail, fix}]} (docs/cli.md).\n",
	    0 },
	{ "init", cmd_init, "make cargo use kache (rustc-wrapper, CC, CXX in ~/.cargo/config.toml)",
	    "usage: kache init [--check | --undo]\n"
	    "Writes build.rustc-wrapper = \"kache\" and, for build scripts' C and C++\n"
	    "compiles, [env] CC = \"kache cc\" and CXX = \"kache c++\" into\n"
	    "$CARGO_HOME/config.toml (default ~/.cargo), keeping the rest of the file byte\n"
	    "for byte and the old one as config.toml.kache-backup; refuses when the wrapper\n"
	    "is set to something else, and leaves a CC or CXX of yours as it is (saying\n"
	    "what to write instead). Running it again changes nothing. --check changes\n"
	    "nothing and exits 1 when cargo would not use kache. --undo removes the lines\n"
	    "init writes. Prints how to install the systemd user unit.\n",
	    0 },
	{ "monitor", cmd_monitor, "live view of compiles, the store, workers and the remote",
	    "usage: kache monitor\n"
	    "A terminal UI with four tabs: Build (compiles as they happen, totals, time\n"
	    "saved), Store (size against the cap, entries, top crates), Workers (the\n"
	    "supervisor's status), Remote (uploads, fetches, failures). Keys: 1-4 or Tab\n"
	    "switch tabs, f filter (Build: by crate), s sort (Store), p pause, q or Esc quit.\n"
	    "Without a supervisor (or with a hung one) the header says `daemon: offline`\n"
	    "and the journal and the store are read directly (docs/cli.md).\n",
	    0 },
	{ "report", cmd_report, "one build session's story: hits, misses by cause, time saved",
	    "usage: kache report [--since DURATION] [--format text|json|markdown]\n"
	    "Reads the journal (no supervisor needed): the last build session (the newest run\n"
	    "of compiles with no pause longer than prefetch.cooldown), or every compile of the\n"
	    "last DURATION (90s, 10m, 1h). Hits (local, remote), misses by cause (see\n"
	    "why-miss), pass-throughs by reason, time saved, bytes moved, the 10 slowest\n"
	    "misses. markdown suits a CI job summary ($GITHUB_STEP_SUMMARY); json carries\n"
	    "\"schema\": 1 (docs/report.schema.json, docs/cli.md).\n",
	    0 },
	{ "why-miss", cmd_why_miss, "say why a crate's last compile missed the cache",
	    "usage: kache why-miss CRATE [--json]\n"
	    "Compares the key of CRATE's last stored miss with the closest earlier compile of\n"
	    "that crate, part by part, and prints one line a cause: the compiler, an argument,\n"
	    "an environment variable, a source file, an env! variable, a dependency (--extern:\n"
	    "then why that crate changed, indented), the target dir or CARGO_HOME. CRATE as\n"
	    "rustc names it (fixture_core). Exit 1 when no miss of CRATE is recorded.\n",
	    0 },
	{ "help", cmd_help, "show help for a command", "usage: kache help [COMMAND]\n", 0 },
	{ "supervisor", supervisor_cmd, "run and manage the background supervisor and its workers",
	    "usage: kache supervisor [status [--json]]|start|stop [--timeout "
	    "DURATION]|restart|run\n"
	    "       kache supervisor log [WORKER] [-n N] [-f]\n"
	    "       kache supervisor install|uninstall|scale uploader=N\n"
	    "start runs it in the background (the wrapper also starts it on demand); run keeps\n"
	    "it in the foreground with logs on stderr; status (also with no subcommand) lists\n"
	    "the workers and the hits and misses, and tells a hung supervisor (exit 4) from a\n"
	    "stopped one (exit 3); log follows the supervisor's or a worker's log (uploader.0,\n"
	    "fetcher.0) as tail -f, or prints its last N lines with -n N; install adds a systemd\n"
	    "user unit. stop first uploads every intent to the remote (as `kache flush`,\n"
	    "for at most DURATION, default remote.flush_timeout) and exits 1 when some are\n"
	    "left. `kache daemon` is an alias. See docs/supervisor.md.\n",
	    0 },
	{ "flush", supervisor_flush_cmd, "upload every pending result to the remote now",
	    "usage: kache flush [--timeout DURATION]\n"
	    "Waits for the background stores still running, has the supervisor queue every\n"
	    "upload intent on disk and upload them all, showing progress on stderr; the\n"
	    "supervisor keeps running (start one first when none runs). DURATION: 90s, 10m,\n"
	    "1h (default remote.flush_timeout, 10m). Exit status 0 when everything reached\n"
	    "the remote (or no remote is configured), 1 when something is left: the line\n"
	    "says how much, and the intents stay on disk for the next run. `kache\n"
	    "supervisor stop` flushes the same way before it stops.\n",
	    0 },
	{ "gc", cmd_gc, "evict least recently used entries until the store fits its cap",
	    "usage: kache gc [--max-size SIZE] [--older-than DURATION] [-v]\n"
	    "Reads the journal into the index, then removes least recently used entries\n"
	    "(the entry, blobs no other entry uses, manifests left with no candidate)\n"
	    "until the store is at most SIZE (default: cache.max_size, 10G). Sizes take\n"
	    "K, M, G suffixes. --older-than (12h, 7d) also removes every entry not used\n"
	    "for that long. Also removes tmp/ files and unreferenced blobs older than\n"
	    "an hour. Prints what it removed; -v names each evicted entry.\n",
	    0 },
	{ "keygen", cmd_keygen, "make an Ed25519 key pair for signed remote uploads",
	    "usage: kache keygen [--out FILE]\n"
	    "Writes a new secret key to FILE (default signing.key beside the config file;\n"
	    "mode 0600, never over an existing file) and its public key, one line\n"
	    "`id:base64`, to FILE.pub and stdout. Writers set remote.signing_key = FILE\n"
	    "(KACHE_SIGNING_KEY_FILE); readers list the public line in remote.trusted_keys\n"
	    "(KACHE_TRUSTED_KEYS) and then import only objects signed by a listed key.\n"
	    "See docs/remote-layout.md (Signatures) and the CI recipe in README.md.\n",
	    0 },
	{ "list", cmd_list, "list cached entries, most recently used first",
	    "usage: kache list [CRATE] [--json]\n"
	    "Lists entries (crate, key prefix, size, last use, hits), most recently used\n"
	    "first, only CRATE's when given. --json prints an array of objects with\n"
	    "crate, key, size, created_ms, last_use_ms, hits (see docs/cli.md).\n",
	    0 },
	{ "prefetch", supervisor_prefetch_cmd,
	    "warm the store for a build before cargo runs (a CI job's first step)",
	    "usage: kache prefetch [--manifest-path PATH] [--target TRIPLE]\n"
	    "                      [--release | --profile NAME] [--check]\n"
	    "                      [--wait [--timeout DURATION]]\n"
	    "Starts the supervisor if none runs and begins the build session of the\n"
	    "workspace here (the Cargo.lock at or above the working directory, or of\n"
	    "--manifest-path): its prefetch worker imports the results the remote's session\n"
	    "manifest of this Cargo.lock, toolchain (`rustc -vV` there), target (default\n"
	    "CARGO_BUILD_TARGET, else the host) and profile (default dev) names, while the\n"
	    "job does its other setup. Name the target and profile the build will use, and\n"
	    "--check for a job of cargo check, clippy or doc (its sessions are their own); a\n"
	    "session under way (within prefetch.cooldown) is not started again. --wait\n"
	    "follows the session to its end (at most DURATION, default 10m) and says what it\n"
	    "imported. Exit status 0 once the session is started (whatever it then\n"
	    "imports: the rest is fetched or compiled on its miss), 1 when it cannot be\n"
	    "(no remote, no Cargo.lock, rustc does not answer), 2 on a usage error.\n",
	    0 },
	{ "purge", cmd_purge, "empty the cache (entries, blobs, manifests, memo, index)",
	    "usage: kache purge\n"
	    "Removes every entry, blob, manifest, memo, upload intent, journal and the\n"
	    "index, without asking: it is a cache. Keeps the configuration. Prints what\n"
	    "it freed.\n",
	    0 },
	{ "save-manifest", supervisor_save_manifest_cmd,
	    "record the result keys this store's build sessions used in the remote",
	    "usage: kache save-manifest\n"
	    "Folds the journal in, then writes one session manifest per build session of\n"
	    "this store (sessions/<fingerprint> in the remote: Cargo.lock, toolchain, target\n"
	    "and profile) listing the results it used, so that a fresh runner with the same\n"
	    "fingerprint prefetches exactly those. `kache supervisor stop` does it too, and\n"
	    "the supervisor after a session is idle for prefetch.cooldown, unless\n"
	    "prefetch.save_manifest is off. A read-only remote gets none. Exit status 1\n"
	    "when one could not be written (its keys stay for the next try).\n",
	    0 },
	{ "stats", cmd_stats, "show hits, misses, savings and store size",
	    "usage: kache stats [--json] [--zero]\n"
	    "Reads the journal into the index, then prints hits, misses, hit rate,\n"
	    "pass-throughs by reason, errors by reason, corrupt entries found, entry count,\n"
	    "store size, bytes restored, compile time saved and time spent in kache.\n"
	    "--json prints the same as one object with stable field names (docs/cli.md).\n"
	    "--zero prints them, then sets every counter back to zero (entries are kept):\n"
	    "a CI job's own numbers. Counters also restart from zero when a lost or\n"
	    "damaged index is rebuilt.\n",
	    0 },
	{ "verify", cmd_verify, "re-hash every blob; remove corrupt blobs and their entries",
	    "usage: kache verify\n"
	    "       kache verify --remote [--max N]\n"
	    "Re-hashes every blob and compares it with its name. Removes corrupt blobs,\n"
	    "entries that do not decode, and entries that reference a missing or corrupt\n"
	    "blob, naming each. Exit status: 0 when everything was sound, 1 when anything\n"
	    "was corrupt or missing (or verify could not finish).\n"
	    "--remote reads every object of the remote (at most N, default 100000, with\n"
	    "progress on stderr) and counts them by the key that signed them: trusted,\n"
	    "not trusted, unsigned, bad signature. Exit status 1 when, with\n"
	    "remote.trusted_keys set, any object would be refused, or one could not be read.\n",
	    0 },
	{ "version", cmd_version, "print the version", "usage: kache version\n", 0 },
};

const struct command *
command_find(const char *name)
{
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

const struct command *
command_table(int *n)
{
	*n = (int)(sizeof commands / sizeof commands[0]);
	return commands;
}
