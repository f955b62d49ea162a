/* Shared by the files of `kache monitor`:
 *   monitor.c       the command: terminal setup and teardown, signals, keys, the loop
 *   monitor_src.c   the sources: the journal tail (Build), the PUB socket (Remote),
 *                   and a thread that asks the supervisor for its status and reads
 *                   the index read-only (Store, Workers) without blocking the screen
 *   monitor_draw.c  the four tabs, drawn with ncurses (which diffs the screen)
 * The main thread owns everything but `bg`, which the thread fills under `mu`. */
#ifndef KACHE_CLI_MONITOR_INTERNAL_H
#define KACHE_CLI_MONITOR_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/util.h"

#define MON_RING 1024 /* compiles kept for the Build tab */
#define MON_TOP 64    /* crates kept for the Store tab */
#define MON_CRATE_MAX 128

enum mon_tab { TAB_BUILD, TAB_STORE, TAB_WORKERS, TAB_REMOTE, TAB_COUNT };

/* A local hit on a result prefetch imported: shown apart in the ring. */
#define MON_PREFETCHED_HIT 100

struct mon_compile {
	int64_t ts_ms;
	int type; /* enum journal_type, or MON_PREFETCHED_HIT */
	char crate[MON_CRATE_MAX];
	char reason[64];
	char lang[8]; /* rust, c, c++, asm (journal_lang) */
	uint64_t ms, bytes;
};

/* The compiler languages the Build tab counts, in its order. */
#define MON_LANGS 4
extern const char *const mon_lang_names[MON_LANGS];

struct mon_crate {
	char name[MON_CRATE_MAX];
	uint64_t bytes, hits, entries;
};

/* What the background thread found; copied out under mu. */
struct mon_bg {
	int online;              /* the supervisor answered the last status request */
	int hung;                /* it holds its lock but did not answer */
	json_t *status;          /* its status document (owned), NULL offline */
	int store_ready;         /* the store numbers below have been read once */
	char store_err[160];     /* why not, when they could not be */
	uint64_t entries, bytes; /* per the index */
	uint64_t hits, remote_hits, misses, passes, ms_saved;
	struct mon_crate top[MON_TOP];
	size_t ntop;
	int64_t store_ms;  /* how long the last read of the index took */
	char gc_line[200]; /* the indexer's last gc line */
};

struct monitor {
	char *dir;
	uint64_t cap;
	int tab, paused, sort, filtering;
	char filter[MON_CRATE_MAX];
	/* Build: the ring of recent compiles and the totals since start */
	struct mon_compile ring[MON_RING];
	size_t nring, head;
	uint64_t n_hit, n_prefetched, n_remote, n_miss, n_pass, n_error, ms_saved, compile_ms,
	    bytes;
	uint64_t lang_hits[MON_LANGS], lang_misses[MON_LANGS]; /* hits include remote ones */
	json_t *imported; /* results prefetch imported, not used yet (report_hit_kind) */
	/* the journal tail */
	int jfd;
	ino_t jino;
	struct buf jpend;
	/* the PUB socket */
	void *zctx, *sub;
	uint64_t ev[8]; /* counts by enum msg_event */
	/* the background thread */
	pthread_t th;
	int th_started;
	pthread_mutex_t mu;
	volatile int stop;
	struct mon_bg bg;
};

/* monitor_src.c */
void mon_src_start(struct monitor *m);
void mon_src_stop(struct monitor *m);
/* Reads what the journal and the PUB socket have new; 1 when anything came. */
int mon_src_poll(struct monitor *m);

/* monitor_draw.c: draws the whole screen (ncurses sends only the changes). */
void mon_draw(struct monitor *m);

#endif
