/* The message catalogue: every message between wrappers, the CLI, the
 * supervisor and its workers. One frame of msgpack per message:
 *
 *   [version, type, id, field...]
 *
 * where the fields and their order are fixed per type by the table in msg.c.
 * Numbers in enum msg_type are never reused: retire a number, never recycle it. */
#ifndef KACHE_PROTO_MSG_H
#define KACHE_PROTO_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

#define PROTO_VERSION 1
/* No message (one frame) is ever larger than this. */
#define MSG_MAX_SIZE (1024 * 1024)
#define MSG_ROLE_MAX 15
#define MSG_KEY_MAX 64
#define MSG_PHASE_MAX 15

enum msg_type {
	/* worker <-> supervisor */
	MSG_READY = 1,      /* worker is up: role, index, pid */
	MSG_HEARTBEAT = 2,  /* either way; any message counts as one */
	MSG_SHUTDOWN = 3,   /* supervisor -> worker: finish the current job and exit */
	MSG_JOB_UPLOAD = 4, /* supervisor -> uploader: key = result key */
	MSG_JOB_FETCH = 5,  /* supervisor -> fetcher: key = invocation key, deadline (ms left) */
	MSG_JOB_DONE = 6,   /* worker -> supervisor: id echoed, status = enum job_status, text */
	/* client (wrapper, CLI) -> supervisor */
	MSG_PING = 10,          /* epoch */
	MSG_FETCH = 11,         /* key, epoch, deadline (ms left) */
	MSG_NOTIFY_UPLOAD = 12, /* key, epoch */
	MSG_STATUS = 13,
	MSG_STOP = 14,
	MSG_SCALE = 15,        /* role, count */
	MSG_INDEX_STATS = 16,  /* routed to the indexer, which owns the index: its stats */
	MSG_INDEX_LIST = 17,   /* text = crate ("" for all), count = entries to skip */
	MSG_INDEX_GC = 18,     /* count = max size in bytes (-1: cache.max_size), status = verbose,
	                          total = ms an entry may go unused (0: no bound) */
	MSG_INDEX_VERIFY = 19, /* re-hash every blob, drop what is damaged */
	/* supervisor -> client */
	MSG_OK = 20,           /* text */
	MSG_ERROR = 21,        /* status = enum msg_error, text */
	MSG_FETCH_REPLY = 22,  /* status = enum job_status */
	MSG_STATUS_REPLY = 23, /* text = JSON document */
	MSG_INDEX_REPLY = 24,  /* text = JSON document (see docs/supervisor.md) */
	/* indexer -> supervisor -> client, any number before the reply: how far a
	 * long request (INDEX_VERIFY, INDEX_PURGE, INDEX_GC) got. count = done,
	 * total (0: not known), phase = what is counted ("blobs"). */
	MSG_INDEX_PROGRESS = 25,
	/* a build session starts: warm the store (proto/hint.h); and its job */
	MSG_PREFETCH_HINT = 26, /* client -> supervisor: key = Cargo.lock hash, text = hint */
	MSG_JOB_PREFETCH = 27,  /* supervisor -> prefetch: the hint's key and text */
	/* supervisor -> PUB subscribers */
	MSG_EVENT = 30, /* status = enum msg_event, key; also indexer -> supervisor */
	/* client <-> supervisor: upload every intent now (kache flush, stop) */
	MSG_FLUSH = 31,       /* count = 1 to begin a flush, 0 to ask how far it got */
	MSG_FLUSH_REPLY = 32, /* status = enum flush_state, count = uploads left, text = JSON */
	/* client -> supervisor (continued) */
	MSG_INDEX_PURGE = 40, /* remove every entry, blob and journal of the store */
	MSG_INDEX_ZERO = 41,  /* the stats as INDEX_STATS has them, then every counter zeroed */
	MSG_TYPE_MAX = 42
};

/* JOB_REMOTE_OFF: the remote refused this worker for good (403, clock skew,
 * no bucket); the supervisor stops sending it uploads. JOB_UNREACHABLE: a
 * fetch failed for want of a connection (refused, no such host, nothing
 * answered in time): the supervisor's fetch breaker opens at once. */
enum job_status {
	JOB_OK = 0,
	JOB_MISS = 1,
	JOB_FAILED = 2,
	JOB_REMOTE_OFF = 3,
	JOB_UNREACHABLE = 4
};
/* A flush: done (nothing queued, no background store running), still busy,
 * stuck (the remote is switched off, or no uploader can run), or no remote. */
enum flush_state { FLUSH_DONE = 0, FLUSH_BUSY = 1, FLUSH_STUCK = 2, FLUSH_NO_REMOTE = 3 };
enum msg_error {
	MSG_ERR_MALFORMED = 1,
	MSG_ERR_VERSION = 2,
	MSG_ERR_UNKNOWN = 3,
	MSG_ERR_STATE = 4
};
enum msg_event {
	EVENT_HIT = 1,
	EVENT_MISS = 2,
	EVENT_UPLOAD = 3,
	EVENT_FETCH = 4,
	EVENT_UPLOAD_FAILED = 5,
	EVENT_PREFETCH_HIT = 6 /* a HIT on an entry prefetch imported, its first use */
};

/* The union of all fields; which ones a type carries is in msg.c's table.
 * text is owned by the message (msg_clear frees it). */
struct msg {
	uint32_t version;
	uint32_t type;
	uint64_t id;
	char role[MSG_ROLE_MAX + 1];
	uint32_t index;
	int64_t pid;
	char key[MSG_KEY_MAX + 1];
	int64_t epoch;
	int64_t deadline;
	int64_t status;
	int64_t count;
	int64_t total;
	char phase[MSG_PHASE_MAX + 1];
	char *text;
};

/* What msg_decode found wrong; MSG_DECODE_OK is 0. */
enum msg_decode_result {
	MSG_DECODE_OK = 0,
	MSG_DECODE_MALFORMED, /* not msgpack, wrong shape, sizes beyond the bytes */
	MSG_DECODE_TOO_BIG,
	MSG_DECODE_VERSION, /* well-formed but another protocol version */
	MSG_DECODE_UNKNOWN  /* well-formed but a type we do not know */
};

/* Zeroes m and sets version, type and id. */
void msg_init(struct msg *m, enum msg_type type, uint64_t id);
/* Frees what m owns and zeroes it. */
void msg_clear(struct msg *m);
/* Sets m->text to a copy of s. */
void msg_set_text(struct msg *m, const char *s);
/* The name for logs ("READY"), "?" for numbers not in the catalogue. */
const char *msg_type_name(uint32_t type);
/* Appends the encoding of m to out. -1 when m does not fit its type's limits. */
int msg_encode(const struct msg *m, struct buf *out);
/* Decodes one message from exactly n bytes into m (which it initialises).
 * Checks every declared count and length against the bytes present before
 * anything is allocated; on failure m holds nothing to free, except that
 * m->type/id are kept when MSG_DECODE_VERSION or _UNKNOWN so an error reply
 * can echo the id. */
enum msg_decode_result msg_decode(const void *data, size_t n, struct msg *m);
const char *msg_decode_strerror(enum msg_decode_result r);

#endif
