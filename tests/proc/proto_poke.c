/* A small client for the multi-process tests. It links kache_proto only (no
 * libzmq: the test checks its DT_NEEDED), like the wrapper does.
 *   proto_poke fetch KEY DEADLINE_MS   prints "<result> <elapsed_ms>"
 *   proto_poke notify KEY
 *   proto_poke ensure KACHED_PATH
 *   proto_poke raw CASE                sends a malformed message, prints what came back
 *   proto_poke flood CASE N [workers]  sends N malformed messages of CASE on one socket (to
 *                                      the worker socket with "workers"), prints "sent N"
 *   proto_poke events N MS             subscribes to the events; prints "event <status> <key>"
 *                                      for each, until N came or MS ms passed
 * The store is $KACHE_DIR. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "proto/client.h"
#include "proto/hint.h"
#include "proto/paths.h"
#include "proto/zmq_dl.h"

static int raw_case(const char *dir, const char *name);
static int events(const char *dir, int want, int ms);
static int flood(const char *dir, const char *name, int count, int workers);

#define ZDL_SUB 2
#define ZDL_SUBSCRIBE 6

static int
events(const char *dir, int want, int ms)
{
	const struct zmq_dl *z = zmq_dl_load();
	int64_t deadline = clock_ms() + ms;
	struct proto_paths p;
	struct zdl_pollitem it;
	char buf[4096];
	struct msg m;
	void *ctx, *s;
	int got, n = 0, linger = 0;

	if (z == NULL || proto_paths_init(&p, dir) == -1)
		return 2;
	ctx = z->ctx_new();
	s = z->socket(ctx, ZDL_SUB);
	z->setsockopt(s, ZDL_LINGER, &linger, sizeof linger);
	z->setsockopt(s, ZDL_SUBSCRIBE, "", 0);
	z->connect(s, p.pub);
	printf("subscribed\n");
	fflush(stdout);
	while (n < want && clock_left_ms(deadline) > 0) {
		it = (struct zdl_pollitem){ s, 0, ZDL_POLLIN, 0 };
		if (z->poll(&it, 1, (long)clock_left_ms(deadline)) != 1)
			continue;
		if ((got = z->recv(s, buf, sizeof buf, 0)) < 0)
			continue;
		if (msg_decode(buf, (size_t)got, &m) == MSG_DECODE_OK && m.type == MSG_EVENT) {
			printf("event %lld %s\n", (long long)m.status, m.key);
			fflush(stdout);
			n++;
		}
		msg_clear(&m);
	}
	z->close(s);
	z->ctx_term(ctx);
	return 0;
}

/* Builds the frames of a malformed case; returns the frame count. */
static int
build(const char *name, char *f[3], size_t n[3])
{
	static char oversize[2 * 1024 * 1024];
	static const unsigned char array32[] = { 0xdd, 0xff, 0xff, 0xff, 0xff, 0x01, 0x0d, 0x05 };
	static const unsigned char trunc[] = { 0x95, 0x01, 0x0b, 0x05, 0xd9, 0x40, 'a', 'b' };
	static const unsigned char version[] = { 0x93, 0x63, 0x0d, 0x05 };
	static const unsigned char unknown[] = { 0x93, 0x01, 0x63, 0x05 };
	static const unsigned char status[] = { 0x93, 0x01, 0x0d, 0x05 };
	/* INDEX_PROGRESS [1, 25, 5, done, total, phase]: well-formed, done past
	 * its total, a terminal escape for a phase, a string for a count */
	static const unsigned char progress[] = { 0x96, 0x01, 0x19, 0x05, 0x03, 0x0a, 0xa1, 'b' };
	static const unsigned char progress_past[] = { 0x96, 0x01, 0x19, 0x05, 0x0b, 0x0a, 0xa1,
		'b' };
	static const unsigned char progress_esc[] = { 0x96, 0x01, 0x19, 0x05, 0x01, 0x0a, 0xa3,
		0x1b, '[', 'J' };
	static const unsigned char progress_str[] = { 0x96, 0x01, 0x19, 0x05, 0xa1, '1', 0x0a, 0xa1,
		'b' };

	f[0] = f[1] = f[2] = NULL;
	if (strcmp(name, "garbage") == 0)
		return f[0] = "\xc1\xc1garbage", n[0] = 9, 1;
	if (strcmp(name, "empty") == 0)
		return f[0] = "", n[0] = 0, 1;
	if (strcmp(name, "frames") == 0) {
		f[0] = f[1] = f[2] = (char *)status;
		n[0] = n[1] = n[2] = sizeof status;
		return 3;
	}
	if (strcmp(name, "truncated") == 0)
		return f[0] = (char *)trunc, n[0] = sizeof trunc, 1;
	if (strcmp(name, "array32") == 0)
		return f[0] = (char *)array32, n[0] = sizeof array32, 1;
	if (strcmp(name, "version") == 0)
		return f[0] = (char *)version, n[0] = sizeof version, 1;
	if (strcmp(name, "unknown") == 0)
		return f[0] = (char *)unknown, n[0] = sizeof unknown, 1;
	if (strcmp(name, "progress") == 0)
		return f[0] = (char *)progress, n[0] = sizeof progress, 1;
	if (strcmp(name, "progress_past") == 0)
		return f[0] = (char *)progress_past, n[0] = sizeof progress_past, 1;
	if (strcmp(name, "progress_esc") == 0)
		return f[0] = (char *)progress_esc, n[0] = sizeof progress_esc, 1;
	if (strcmp(name, "progress_str") == 0)
		return f[0] = (char *)progress_str, n[0] = sizeof progress_str, 1;
	if (strcmp(name, "oversize") == 0) {
		memset(oversize, 0xc1, sizeof oversize);
		return f[0] = oversize, n[0] = sizeof oversize, 1;
	}
	return 0;
}

static int
raw_case(const char *dir, const char *name)
{
	const struct zmq_dl *z = zmq_dl_load();
	struct proto_paths p;
	char *f[3], reply[4096];
	size_t n[3];
	int nf = build(name, f, n), linger = 0, got;
	void *ctx, *s;
	struct zdl_pollitem it;
	struct msg m;

	if (z == NULL || nf == 0 || proto_paths_init(&p, dir) == -1)
		return 2;
	ctx = z->ctx_new();
	s = z->socket(ctx, ZDL_DEALER);
	z->setsockopt(s, ZDL_LINGER, &linger, sizeof linger);
	z->connect(s, p.ctl);
	for (int i = 0; i < nf; i++)
		z->send(s, f[i], n[i], i + 1 < nf ? ZDL_SNDMORE : 0);
	it = (struct zdl_pollitem){ s, 0, ZDL_POLLIN, 0 };
	if (z->poll(&it, 1, 1500) == 1 && (got = z->recv(s, reply, sizeof reply, 0)) >= 0) {
		if (msg_decode(reply, (size_t)got, &m) == MSG_DECODE_OK)
			printf("reply %s %lld\n", msg_type_name(m.type), (long long)m.status);
		else
			printf("reply undecodable\n");
		msg_clear(&m);
	} else {
		printf("noreply\n");
	}
	z->close(s);
	z->ctx_term(ctx);
	return 0;
}

/* A flood of one malformed case; replies are drained as they come. */
static int
flood(const char *dir, const char *name, int count, int workers)
{
	const struct zmq_dl *z = zmq_dl_load();
	struct proto_paths p;
	char *f[3], reply[4096];
	size_t n[3];
	int nf = build(name, f, n), linger = 0, sent = 0;
	void *ctx, *s;

	if (z == NULL || nf == 0 || proto_paths_init(&p, dir) == -1)
		return 2;
	ctx = z->ctx_new();
	s = z->socket(ctx, ZDL_DEALER);
	z->setsockopt(s, ZDL_LINGER, &linger, sizeof linger);
	z->connect(s, workers ? p.wrk : p.ctl);
	for (int k = 0; k < count; k++) {
		for (int i = 0; i < nf; i++)
			z->send(s, f[i], n[i], i + 1 < nf ? ZDL_SNDMORE : 0);
		sent++;
		while (z->recv(s, reply, sizeof reply, ZDL_DONTWAIT) >= 0)
			;
	}
	linger = 3000; /* let the last ones go out */
	z->setsockopt(s, ZDL_LINGER, &linger, sizeof linger);
	z->close(s);
	z->ctx_term(ctx);
	printf("sent %d\n", sent);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *dir = getenv("KACHE_DIR");
	int64_t t0;
	enum proto_result r;

	if (dir == NULL || argc < 3)
		return 2;
	if (strcmp(argv[1], "fetch") == 0 && (argc == 4 || argc == 5)) {
		/* fetch KEY MS, or fetch KEY ACK_MS MS */
		t0 = clock_ms();
		r = proto_client_fetch(dir, argv[2], t0 + atoi(argv[3]), t0 + atoi(argv[argc - 1]));
		printf("%s %lld\n", proto_result_name(r), (long long)(clock_ms() - t0));
		return 0;
	}
	if (strcmp(argv[1], "hint") == 0 && argc >= 4 && argc <= 7) {
		/* hint ROOT LOCK [PROFILE [guess|compile [LOCK_HASH]]]: a build
		 * session starts in ROOT (prefetch); guess: an early hint */
		struct proto_hint h = { .target = "" };

		snprintf(h.root, sizeof h.root, "%s", argv[2]);
		snprintf(h.lock, sizeof h.lock, "%s", argv[3]);
		if (argc >= 5)
			snprintf(h.profile, sizeof h.profile, "%s", argv[4]);
		h.guess = argc >= 6 && strcmp(argv[5], "guess") == 0;
		if (argc == 7)
			snprintf(h.lock_hash, sizeof h.lock_hash, "%s", argv[6]);
		r = proto_client_prefetch_hint(dir, &h, clock_ms() + 2000);
		printf("%s\n", proto_result_name(r));
		return r == PROTO_OK ? 0 : 1;
	}
	if (strcmp(argv[1], "hintfile") == 0 && argc == 5) {
		/* hintfile NAME ROOT LOCK: the hint file NAME a wrapper leaves
		 * in run/hints when no supervisor answers */
		struct proto_hint h = { .profile = "debug" };

		snprintf(h.root, sizeof h.root, "%s", argv[3]);
		snprintf(h.lock, sizeof h.lock, "%s", argv[4]);
		return proto_hint_file_write(dir, argv[2], &h) == 0 ? 0 : 1;
	}
	if (strcmp(argv[1], "notify") == 0) {
		proto_client_notify_upload(dir, argv[2]);
		return 0;
	}
	if (strcmp(argv[1], "ensure") == 0)
		return proto_supervisor_ensure(dir, argv[2]) == 0 ? 0 : 1;
	if (strcmp(argv[1], "events") == 0 && argc == 4)
		return events(dir, atoi(argv[2]), atoi(argv[3]));
	if (strcmp(argv[1], "raw") == 0)
		return raw_case(dir, argv[2]);
	if (strcmp(argv[1], "flood") == 0 && argc >= 4)
		return flood(dir, argv[2], atoi(argv[3]),
		    argc == 5 && strcmp(argv[4], "workers") == 0);
	return 2;
}
