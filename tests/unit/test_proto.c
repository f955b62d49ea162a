/* Unit tests for proto/: every message round-trips; malformed input is
 * refused without crashing or allocating what it declares; a wrapper waiting
 * for a supervisor being started waits through its lock handover. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "common/clock.h"
#include "common/config.h"
#include "common/fs.h"
#include "common/hash.h"
#include "common/util.h"
#include "proto/client.h"
#include "proto/hint.h"
#include "proto/msg.h"
#include "proto/paths.h"

static const char key[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

static void
fill(struct msg *m, uint32_t type)
{
	msg_init(m, (enum msg_type)type, 0x1122334455667788ULL);
	strcpy(m->role, "uploader");
	m->index = 7;
	m->pid = 4242;
	snprintf(m->key, sizeof m->key, "%s", key);
	m->epoch = 1700000000;
	m->deadline = 50;
	m->status = -3;
	m->count = 4;
	m->total = 9;
	strcpy(m->phase, "blobs");
	msg_set_text(m, "hello");
}

static void
test_empty_strings(void **state)
{
	struct msg a, b;
	struct buf out;

	(void)state;
	msg_init(&a, MSG_JOB_DONE, 1);
	buf_init(&out);
	assert_int_equal(msg_encode(&a, &out), 0);
	assert_int_equal(msg_decode(out.p, out.len, &b), MSG_DECODE_OK);
	assert_string_equal(b.text, "");
	msg_clear(&b);
	buf_free(&out);
	msg_init(&a, MSG_READY, 1);
	buf_init(&out);
	assert_int_equal(msg_encode(&a, &out), 0);
	assert_int_equal(msg_decode(out.p, out.len, &b), MSG_DECODE_OK);
	assert_string_equal(b.role, "");
	msg_clear(&b);
	buf_free(&out);
}

static void
test_roundtrip_all(void **state)
{
	(void)state;
	for (uint32_t t = 0; t < MSG_TYPE_MAX; t++) {
		struct msg a, b;
		struct buf out;

		if (strcmp(msg_type_name(t), "?") == 0)
			continue;
		fill(&a, t);
		buf_init(&out);
		assert_int_equal(msg_encode(&a, &out), 0);
		assert_int_equal(msg_decode(out.p, out.len, &b), MSG_DECODE_OK);
		assert_int_equal(b.type, t);
		assert_int_equal(b.version, PROTO_VERSION);
		assert_true(b.id == a.id);
		/* each field either round-trips or is not part of this type */
		assert_true(b.role[0] == 0 || strcmp(b.role, a.role) == 0);
		assert_true(b.index == 0 || b.index == a.index);
		assert_true(b.pid == 0 || b.pid == a.pid);
		assert_true(b.key[0] == 0 || strcmp(b.key, a.key) == 0);
		assert_true(b.epoch == 0 || b.epoch == a.epoch);
		assert_true(b.deadline == 0 || b.deadline == a.deadline);
		assert_true(b.status == 0 || b.status == a.status);
		assert_true(b.count == 0 || b.count == a.count);
		assert_true(b.total == 0 || b.total == a.total);
		assert_true(b.phase[0] == 0 || strcmp(b.phase, a.phase) == 0);
		assert_true(b.text == NULL || strcmp(b.text, "hello") == 0);
		/* truncations of a valid message are all refused */
		for (size_t n = 0; n < out.len; n++) {
			struct msg c;
			assert_int_not_equal(msg_decode(out.p, n, &c), MSG_DECODE_OK);
			msg_clear(&c);
		}
		msg_clear(&a);
		msg_clear(&b);
		buf_free(&out);
	}
}

static void
test_specific_fields(void **state)
{
	struct msg a, b;
	struct buf out;

	(void)state;
	msg_init(&a, MSG_READY, 9);
	strcpy(a.role, "fetcher");
	a.index = 3;
	a.pid = 99;
	buf_init(&out);
	assert_int_equal(msg_encode(&a, &out), 0);
	assert_int_equal(msg_decode(out.p, out.len, &b), MSG_DECODE_OK);
	assert_string_equal(b.role, "fetcher");
	assert_int_equal(b.index, 3);
	assert_int_equal(b.pid, 99);
	msg_clear(&b);
	buf_free(&out);
	msg_clear(&a);
	assert_string_equal(msg_type_name(MSG_FETCH), "FETCH");
	assert_string_equal(msg_type_name(9999), "?");
}

static void
expect(const void *p, size_t n, enum msg_decode_result want)
{
	struct msg m;

	assert_int_equal(msg_decode(p, n, &m), want);
	msg_clear(&m);
}

static void
test_malformed(void **state)
{
	/* fixarray(3) [1, 13, 5] is a valid STATUS */
	static const unsigned char ok[] = { 0x93, 0x01, 0x0d, 0x05 };
	static const unsigned char array32_huge[] = { 0xdd, 0xff, 0xff, 0xff, 0xff, 0x01, 0x0d };
	static const unsigned char array16_huge[] = { 0xdc, 0xff, 0xff, 0x01, 0x0d, 0x05 };
	static const unsigned char map[] = { 0x83, 0x01, 0x01, 0x02, 0x02, 0x03, 0x03 };
	static const unsigned char str32_huge[] = { 0x94, 0x01, 0x14, 0x05, 0xdb, 0xff, 0xff, 0xff,
		0xff, 'a' };
	static const unsigned char nested[] = { 0x94, 0x01, 0x14, 0x05, 0x91, 0x01 };
	static const unsigned char wrong_type[] = { 0x94, 0x01, 0x14, 0x05, 0x07 };
	static const unsigned char wrong_count[] = { 0x94, 0x01, 0x0d, 0x05, 0x01 };
	static const unsigned char version[] = { 0x93, 0x02, 0x0d, 0x05 };
	static const unsigned char unknown[] = { 0x93, 0x01, 0x63, 0x05 };
	static const unsigned char trailing[] = { 0x93, 0x01, 0x0d, 0x05, 0x00 };
	static const unsigned char negative_id[] = { 0x93, 0x01, 0x0d, 0xff };
	static const unsigned char key_nul[] = { 0x95, 0x01, 0x0c, 0x05, 0xa1, 0x00, 0x01 };
	static const unsigned char ext[] = { 0x94, 0x01, 0x14, 0x05, 0xd4, 0x01, 0x01 };
	char *big;

	(void)state;
	expect(ok, sizeof ok, MSG_DECODE_OK);
	expect("", 0, MSG_DECODE_MALFORMED);
	expect("garbage!", 8, MSG_DECODE_MALFORMED);
	expect(array32_huge, sizeof array32_huge, MSG_DECODE_MALFORMED);
	expect(array16_huge, sizeof array16_huge, MSG_DECODE_MALFORMED);
	expect(map, sizeof map, MSG_DECODE_MALFORMED);
	expect(str32_huge, sizeof str32_huge, MSG_DECODE_MALFORMED);
	expect(nested, sizeof nested, MSG_DECODE_MALFORMED);
	expect(wrong_type, sizeof wrong_type, MSG_DECODE_MALFORMED);
	expect(wrong_count, sizeof wrong_count, MSG_DECODE_MALFORMED);
	expect(version, sizeof version, MSG_DECODE_VERSION);
	expect(unknown, sizeof unknown, MSG_DECODE_UNKNOWN);
	expect(trailing, sizeof trailing, MSG_DECODE_MALFORMED);
	expect(negative_id, sizeof negative_id, MSG_DECODE_MALFORMED);
	expect(key_nul, sizeof key_nul, MSG_DECODE_MALFORMED);
	expect(ext, sizeof ext, MSG_DECODE_MALFORMED);
	big = calloc(1, MSG_MAX_SIZE + 1);
	memcpy(big, ok, sizeof ok);
	expect(big, MSG_MAX_SIZE + 1, MSG_DECODE_TOO_BIG);
	free(big);
}

/* The index requests and their reply: fields round-trip, and each refuses
 * wrong counts and field types. */
static void
test_index_messages(void **state)
{
	/* [1, 17, 5, "serde", 10] is a valid INDEX_LIST */
	static const unsigned char list_ok[] = { 0x95, 0x01, 0x11, 0x05, 0xa5, 's', 'e', 'r', 'd',
		'e', 0x0a };
	static const unsigned char list_int_crate[] = { 0x95, 0x01, 0x11, 0x05, 0x07, 0x0a };
	static const unsigned char list_no_offset[] = { 0x94, 0x01, 0x11, 0x05, 0xa0 };
	static const unsigned char stats_ok[] = { 0x93, 0x01, 0x10, 0x05 };
	static const unsigned char stats_extra[] = { 0x94, 0x01, 0x10, 0x05, 0x01 };
	/* [1, 18, 5, -1, 1, 0]: cap -1, verbose, no age bound */
	static const unsigned char gc_ok[] = { 0x96, 0x01, 0x12, 0x05, 0xff, 0x01, 0x00 };
	static const unsigned char gc_no_age[] = { 0x95, 0x01, 0x12, 0x05, 0xff, 0x01 };
	static const unsigned char gc_str_size[] = { 0x96, 0x01, 0x12, 0x05, 0xa1, '1', 0x01,
		0x00 };
	static const unsigned char gc_huge[] = { 0x96, 0x01, 0x12, 0x05, 0xcf, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00 };
	static const unsigned char reply_ok[] = { 0x94, 0x01, 0x18, 0x05, 0xa2, '{', '}' };
	static const unsigned char reply_no_text[] = { 0x93, 0x01, 0x18, 0x05 };
	static const unsigned char reply_bin_text[] = { 0x94, 0x01, 0x18, 0x05, 0xc4, 0x01, '{' };
	static const unsigned char reply_short_str[] = { 0x94, 0x01, 0x18, 0x05, 0xa5, '{', '}' };
	struct msg a, b;
	struct buf out;

	(void)state;
	assert_string_equal(msg_type_name(MSG_INDEX_STATS), "INDEX_STATS");
	assert_string_equal(msg_type_name(MSG_INDEX_LIST), "INDEX_LIST");
	assert_string_equal(msg_type_name(MSG_INDEX_GC), "INDEX_GC");
	assert_string_equal(msg_type_name(MSG_INDEX_REPLY), "INDEX_REPLY");
	msg_init(&a, MSG_INDEX_GC, 3);
	a.count = -1;
	a.status = 1;
	a.total = 7 * 86400000LL; /* --older-than 7d */
	buf_init(&out);
	assert_int_equal(msg_encode(&a, &out), 0);
	assert_int_equal(msg_decode(out.p, out.len, &b), MSG_DECODE_OK);
	assert_int_equal(b.type, MSG_INDEX_GC);
	assert_int_equal(b.count, -1);
	assert_int_equal(b.status, 1);
	assert_int_equal(b.total, 7 * 86400000LL);
	msg_clear(&b);
	buf_free(&out);
	msg_init(&a, MSG_INDEX_LIST, 4);
	msg_set_text(&a, "serde");
	a.count = 2000;
	buf_init(&out);
	assert_int_equal(msg_encode(&a, &out), 0);
	assert_int_equal(msg_decode(out.p, out.len, &b), MSG_DECODE_OK);
	assert_string_equal(b.text, "serde");
	assert_int_equal(b.count, 2000);
	msg_clear(&a);
	msg_clear(&b);
	buf_free(&out);
	expect(list_ok, sizeof list_ok, MSG_DECODE_OK);
	expect(list_int_crate, sizeof list_int_crate, MSG_DECODE_MALFORMED);
	expect(list_no_offset, sizeof list_no_offset, MSG_DECODE_MALFORMED);
	expect(stats_ok, sizeof stats_ok, MSG_DECODE_OK);
	expect(stats_extra, sizeof stats_extra, MSG_DECODE_MALFORMED);
	expect(gc_ok, sizeof gc_ok, MSG_DECODE_OK);
	expect(gc_no_age, sizeof gc_no_age, MSG_DECODE_MALFORMED); /* a field short */
	expect(gc_str_size, sizeof gc_str_size, MSG_DECODE_MALFORMED);
	expect(gc_huge, sizeof gc_huge, MSG_DECODE_MALFORMED);
	expect(reply_ok, sizeof reply_ok, MSG_DECODE_OK);
	expect(reply_no_text, sizeof reply_no_text, MSG_DECODE_MALFORMED);
	expect(reply_bin_text, sizeof reply_bin_text, MSG_DECODE_MALFORMED);
	expect(reply_short_str, sizeof reply_short_str, MSG_DECODE_MALFORMED);
}

/* INDEX_PROGRESS round-trips; counts and phase are checked beyond their types
 * (negative, past the total, a phase that is not a short lower-case word). */
static void
test_progress(void **state)
{
	/* [1, 25, 5, 3, 10, "blobs"] */
	static const unsigned char ok[] = { 0x96, 0x01, 0x19, 0x05, 0x03, 0x0a, 0xa5, 'b', 'l', 'o',
		'b', 's' };
	static const unsigned char negative[] = { 0x96, 0x01, 0x19, 0x05, 0xff, 0x0a, 0xa1, 'b' };
	static const unsigned char past_total[] = { 0x96, 0x01, 0x19, 0x05, 0x0b, 0x0a, 0xa1, 'b' };
	static const unsigned char neg_total[] = { 0x96, 0x01, 0x19, 0x05, 0x01, 0xfe, 0xa1, 'b' };
	static const unsigned char no_phase[] = { 0x96, 0x01, 0x19, 0x05, 0x01, 0x0a, 0xa0 };
	static const unsigned char escape[] = { 0x96, 0x01, 0x19, 0x05, 0x01, 0x0a, 0xa2, 0x1b,
		'c' };
	static const unsigned char long_phase[] = { 0x96, 0x01, 0x19, 0x05, 0x01, 0x0a, 0xb0, 'a',
		'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a' };
	static const unsigned char short_msg[] = { 0x95, 0x01, 0x19, 0x05, 0x01, 0x0a };
	static const unsigned char str_count[] = { 0x96, 0x01, 0x19, 0x05, 0xa1, '1', 0x0a, 0xa1,
		'b' };
	struct msg a, b;
	struct buf out;

	(void)state;
	assert_string_equal(msg_type_name(MSG_INDEX_PROGRESS), "INDEX_PROGRESS");
	msg_init(&a, MSG_INDEX_PROGRESS, 8);
	a.count = 1234;
	a.total = 5678;
	strcpy(a.phase, "blobs");
	buf_init(&out);
	assert_int_equal(msg_encode(&a, &out), 0);
	assert_int_equal(msg_decode(out.p, out.len, &b), MSG_DECODE_OK);
	assert_int_equal(b.count, 1234);
	assert_int_equal(b.total, 5678);
	assert_string_equal(b.phase, "blobs");
	msg_clear(&b);
	buf_free(&out);
	a.count = 5679; /* the encoder refuses what the decoder would */
	buf_init(&out);
	assert_int_equal(msg_encode(&a, &out), -1);
	buf_free(&out);
	expect(ok, sizeof ok, MSG_DECODE_OK);
	expect(negative, sizeof negative, MSG_DECODE_MALFORMED);
	expect(past_total, sizeof past_total, MSG_DECODE_MALFORMED);
	expect(neg_total, sizeof neg_total, MSG_DECODE_MALFORMED);
	expect(no_phase, sizeof no_phase, MSG_DECODE_MALFORMED);
	expect(escape, sizeof escape, MSG_DECODE_MALFORMED);
	expect(long_phase, sizeof long_phase, MSG_DECODE_MALFORMED);
	expect(short_msg, sizeof short_msg, MSG_DECODE_MALFORMED);
	expect(str_count, sizeof str_count, MSG_DECODE_MALFORMED);
}

static void
test_key_too_long(void **state)
{
	/* a 65-byte key is refused on decode */
	unsigned char m[4 + 2 + 65 + 1] = { 0x95, 0x01, 0x0c, 0x05, 0xd9, 65 };
	struct msg out;

	(void)state;
	memset(m + 6, 'a', 65);
	m[6 + 65] = 0x01;
	assert_int_equal(msg_decode(m, sizeof m, &out), MSG_DECODE_MALFORMED);
	msg_clear(&out);
}

static void
test_encode_refuses_unknown(void **state)
{
	struct msg m;
	struct buf out;

	(void)state;
	msg_init(&m, (enum msg_type)99, 1);
	buf_init(&out);
	assert_int_equal(msg_encode(&m, &out), -1);
	buf_free(&out);
}

static void
test_paths(void **state)
{
	struct proto_paths p;
	char longdir[300];

	(void)state;
	assert_int_equal(proto_paths_init(&p, "/home/u/.cache/kache"), 0);
	assert_string_equal(p.ctl, "ipc:///home/u/.cache/kache/run/ctl");
	assert_string_equal(p.lock, "/home/u/.cache/kache/run/supervisor.lock");
	memset(longdir, 'x', sizeof longdir);
	longdir[0] = '/';
	longdir[sizeof longdir - 1] = '\0';
	assert_int_equal(proto_paths_init(&p, longdir), 0);
	assert_true(strlen(proto_endpoint_file(p.wrk)) < 108);
	assert_string_not_equal(p.sockdir, p.rundir);
}

/* Holds an exclusive flock on path (blocking: a waiter's probe lasts an
 * instant); the descriptor. */
static int
hold(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0 || flock(fd, LOCK_EX) < 0)
		_exit(2);
	return fd;
}

/* The child of test_wait_through_the_lock_handover: a supervisor being
 * started, told when by the parent. It holds the spawn lock, then takes the
 * store lock at the instant a waiter's probe of it has just ended (its own
 * try fails while the probe holds it shared, and succeeds right after), and
 * lets go of the spawn lock at once: the handover falls where a waiter that
 * asks about the store lock first would next ask about the spawn lock. */
static void
handover_child(const struct proto_paths *p, int in, int out)
{
	int spawn = hold(p->spawnlock), sup = open(p->lock, O_RDWR | O_CLOEXEC);
	char c;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (sup < 0 || write(out, "k", 1) != 1)
		_exit(2);
	while (read(in, &c, 1) == 1 && c == 'g') {
		int64_t end = clock_ms() + 1000;
		int probed = 0;

		while (clock_ms() < end) {
			if (flock(sup, LOCK_EX | LOCK_NB) == 0) {
				if (probed)
					break;
				flock(sup, LOCK_UN);
			} else {
				probed = 1;
			}
		}
		close(spawn); /* the supervisor holds its lock: the spawn lock goes */
		/* until the parent's wait is over; then back to a start to come */
		if (read(in, &c, 1) != 1)
			break;
		spawn = hold(p->spawnlock);
		flock(sup, LOCK_UN);
		if (write(out, "k", 1) != 1)
			break;
	}
	_exit(0);
}

/* A supervisor being started takes its own lock before it lets go of the spawn
 * lock the wrapper handed it: at every instant one of the two is held. A
 * wrapper waiting for it (proto_supervisor_wait) must never see neither and
 * give up before its deadline: it then compiled what it could have fetched
 * (a first-misses scenario failed so, once, under load). With no socket yet,
 * every wait through a handover must last to its deadline. */
static void
test_wait_through_the_lock_handover(void **state)
{
	char dir[] = "/tmp/kache-test-XXXXXX", c;
	int to_child[2], from_child[2];
	struct proto_paths p;
	pid_t child;
	char *run;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(proto_paths_init(&p, dir), 0);
	run = xasprintf("%s/run", dir);
	assert_int_equal(fs_mkdir_p(run, 0700), 0);
	close(hold(p.lock)); /* the file exists before the child opens it */
	assert_int_equal(pipe(to_child), 0);
	assert_int_equal(pipe(from_child), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		close(to_child[1]); /* else its read never sees the parent's end */
		close(from_child[0]);
		handover_child(&p, to_child[0], from_child[1]);
	}
	assert_int_equal(read(from_child[0], &c, 1), 1);
	for (int i = 0; i < 20; i++) {
		int64_t t0;

		assert_int_equal(write(to_child[1], "g", 1), 1);
		t0 = clock_ms();
		assert_int_equal(proto_supervisor_wait(dir, t0 + 60), 0);
		assert_true(clock_ms() - t0 >= 50); /* to the deadline, not before */
		assert_int_equal(write(to_child[1], "r", 1), 1);
		assert_int_equal(read(from_child[0], &c, 1), 1);
	}
	close(to_child[1]);
	waitpid(child, NULL, 0);
	close(to_child[0]);
	close(from_child[0]);
	close(from_child[1]);
	assert_int_equal(fs_remove_tree(dir), 0);
	free(run);
}

/* Sets run/spawn.backoff's times, in ms from now: atime is the earliest next
 * spawn, mtime the last one. */
static void
set_backoff(const struct proto_paths *p, int64_t next_ms, int64_t last_ms)
{
	int64_t now = clock_wall_ms(), t[2] = { now + next_ms, now + last_ms };
	struct timespec ts[2];
	int fd = open(p->backoff, O_RDONLY | O_CREAT | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	for (int i = 0; i < 2; i++) {
		ts[i].tv_sec = t[i] / 1000;
		ts[i].tv_nsec = t[i] % 1000 * 1000000;
	}
	assert_int_equal(futimens(fd, ts), 0);
	close(fd);
}

/* Lines in path (the fake kached's log of its runs), waiting up to 10 s for want. */
static int
count_lines(const char *path, int want)
{
	int64_t end = clock_ms() + 10000;
	int n;

	do {
		FILE *f = fopen(path, "r");
		int c;

		n = 0;
		if (f != NULL) {
			while ((c = fgetc(f)) != EOF)
				n += c == '\n';
			fclose(f);
		}
		if (n >= want)
			break;
		usleep(10000);
	} while (clock_ms() < end);
	return n;
}

/* A store directory for the spawn tests: run/ made, and in place of kached a
 * script that appends a line to spawns each time it runs. */
struct spawn_dir {
	char dir[32];
	char *kached, *spawns;
	struct proto_paths p;
};

static void
spawn_dir_make(struct spawn_dir *d)
{
	char *run, *script;

	snprintf(d->dir, sizeof d->dir, "/tmp/kache-test-XXXXXX");
	assert_non_null(mkdtemp(d->dir));
	assert_int_equal(proto_paths_init(&d->p, d->dir), 0);
	run = xasprintf("%s/run", d->dir);
	d->kached = xasprintf("%s/kached", d->dir);
	d->spawns = xasprintf("%s/spawns", d->dir);
	script = xasprintf("#!/bin/sh\necho $$ >> %s\n", d->spawns);
	assert_int_equal(fs_mkdir_p(run, 0700), 0);
	assert_int_equal(fs_write_atomic(d->kached, script, strlen(script), 0755), 0);
	free(run);
	free(script);
}

static void
spawn_dir_remove(struct spawn_dir *d)
{
	assert_int_equal(fs_remove_tree(d->dir), 0);
	free(d->kached);
	free(d->spawns);
}

/* The first spawn into a store makes run/spawn.backoff, and the kernel stamps
 * its creation with its own clock: later than the spawner's reading of the
 * clock when it was descheduled in between, as under load. Such a file, both
 * times the same instant, records no spawn and must not hold the spawn back:
 * it did, and two wrappers of a fresh runner's first cargo command both found
 * no supervisor, neither starting nor running, and compiled what the remote
 * had (a prefetch scenario failed so, in CI). A real record (its next spawn
 * after its last) is still honoured. */
static void
test_spawn_is_not_held_back_by_a_file_with_no_record(void **state)
{
	struct spawn_dir d;
	struct stat before, after;

	(void)state;
	spawn_dir_make(&d);

	set_backoff(&d.p, 300, 300); /* made "after" the spawner's clock reading */
	assert_int_equal(proto_supervisor_start(d.dir, d.kached, 0), 0);
	assert_int_equal(count_lines(d.spawns, 1), 1);
	assert_int_equal(stat(d.p.backoff, &after), 0);
	assert_true(after.st_atim.tv_sec * 1000LL + after.st_atim.tv_nsec / 1000000 >
	    after.st_mtim.tv_sec * 1000LL + after.st_mtim.tv_nsec / 1000000);

	set_backoff(&d.p, 60000, -10); /* a spawn 10 ms ago: the next in a minute */
	assert_int_equal(stat(d.p.backoff, &before), 0);
	assert_int_equal(proto_supervisor_start(d.dir, d.kached, 0), 0);
	assert_int_equal(stat(d.p.backoff, &after), 0);
	assert_int_equal(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
	assert_int_equal(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
	assert_int_equal(after.st_atim.tv_nsec, before.st_atim.tv_nsec);

	spawn_dir_remove(&d);
}

/* A waiter (proto_supervisor_wait) probes the spawn lock with a shared flock
 * for an instant. A spawner that tried its exclusive flock in that instant
 * took the probe for another spawner and left without starting anything;
 * the waiter, its probe over, saw neither lock held and gave up too: both
 * compiled, and no supervisor came. A shared holder is a probe, not a spawn:
 * the spawner tries again. The probe is stretched here (a child holds the
 * lock shared for 20 ms), the spawn must still happen; a child holding it
 * exclusive (a spawn under way) still keeps the spawner out. */
static void
test_spawn_is_not_given_up_for_a_waiters_probe(void **state)
{
	int ready[2], kinds[] = { LOCK_SH, LOCK_EX };
	struct spawn_dir d;
	char c;

	(void)state;
	spawn_dir_make(&d);
	for (int k = 0; k < 2; k++) {
		pid_t child;

		unlink(d.p.backoff); /* no back-off between the two cases */
		assert_int_equal(pipe(ready), 0);
		if ((child = fork()) == 0) {
			int fd = open(d.p.spawnlock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

			if (fd < 0 || flock(fd, kinds[k]) < 0 || write(ready[1], "k", 1) != 1)
				_exit(2);
			usleep(k == 0 ? 20000 : 300000);
			_exit(0);
		}
		assert_true(child > 0);
		assert_int_equal(read(ready[0], &c, 1), 1);
		assert_int_equal(proto_supervisor_start(d.dir, d.kached, 0), 0);
		waitpid(child, NULL, 0);
		close(ready[0]);
		close(ready[1]);
		if (k == 0) /* shared: spawned once the probe is over */
			assert_int_equal(count_lines(d.spawns, 1), 1);
		else /* exclusive: not by us, nor a spawn recorded */
			assert_int_equal(access(d.p.backoff, F_OK), -1);
	}
	spawn_dir_remove(&d);
}

/* A hint goes through the message whole; anything outside its rules is refused. */
static void
test_prefetch_hint(void **state)
{
	struct proto_hint h = { 0 }, got;
	struct msg m, d;
	struct buf out;
	static const char *const bad[] = {
		"root=rel\nlock=/w/Cargo.lock\ntarget=\nprofile=\n",
		"root=/w\nlock=/w/Cargo.lock\ntarget=a/b\nprofile=\n",
		"root=/w\nlock=/w/Cargo.lock\nextra=1\n",
		"root=/w\nlock=/w/Cargo.lock",
		"root=/w\nlock=/w/Cargo.lock\nguess=0\n",
		"root=/w\nlock=/w/Cargo.lock\nguess=yes\n",
		"",
	};

	(void)state;
	snprintf(h.root, sizeof h.root, "%s", "/w");
	snprintf(h.lock, sizeof h.lock, "%s", "/w/Cargo.lock");
	snprintf(h.target, sizeof h.target, "%s", "x86_64-unknown-linux-gnu");
	snprintf(h.profile, sizeof h.profile, "%s", "debug");
	snprintf(h.lock_hash, sizeof h.lock_hash, "%s", key);
	msg_init(&m, MSG_PREFETCH_HINT, 9);
	assert_int_equal(proto_hint_to_msg(&h, &m), 0);
	buf_init(&out);
	assert_int_equal(msg_encode(&m, &out), 0);
	assert_int_equal(msg_decode(out.p, out.len, &d), MSG_DECODE_OK);
	assert_int_equal(proto_hint_from_msg(&d, &got), 0);
	assert_memory_equal(&got, &h, sizeof h);
	assert_int_equal(got.guess, 0);
	msg_clear(&d);
	/* an early hint says so, and only so */
	h.guess = 1;
	assert_int_equal(proto_hint_to_msg(&h, &m), 0);
	assert_non_null(strstr(m.text, "\nguess=1\n"));
	assert_int_equal(proto_hint_from_msg(&m, &got), 0);
	assert_memory_equal(&got, &h, sizeof h);
	h.guess = 0;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		msg_set_text(&m, bad[i]);
		assert_int_equal(proto_hint_from_msg(&m, &got), -1);
	}
	snprintf(m.key, sizeof m.key, "%s", "not-hex");
	msg_set_text(&m, "root=/w\nlock=/w/Cargo.lock\ntarget=\nprofile=\n");
	assert_int_equal(proto_hint_from_msg(&m, &got), -1);
	snprintf(h.root, sizeof h.root, "%s", "relative");
	assert_int_equal(proto_hint_to_msg(&h, &m), -1);
	msg_clear(&m);
	buf_free(&out);
}

/* The hint as a file (run/hints/<16 hex>): written whole, read back the same;
 * a bad name, garbage, another message or an oversized file is refused. */
static void
test_prefetch_hint_file(void **state)
{
	char dir[] = "/tmp/kache-hint-XXXXXX", *path, *junk;
	struct proto_hint h = { 0 }, got;
	struct msg m;
	struct buf b;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(h.root, sizeof h.root, "%s", "/w");
	snprintf(h.lock, sizeof h.lock, "%s", "/w/Cargo.lock");
	snprintf(h.lock_hash, sizeof h.lock_hash, "%s", key);
	assert_int_equal(proto_hint_file_write(dir, "0123456789abcdef", &h), 0);
	assert_int_equal(proto_hint_file_write(dir, "../escape", &h), -1);
	assert_int_equal(proto_hint_file_name_ok("0123456789abcdef"), 1);
	assert_int_equal(proto_hint_file_name_ok(".0123456789abcde"), 0);
	path = xasprintf("%s/" PROTO_HINT_DIR "/0123456789abcdef", dir);
	assert_int_equal(proto_hint_file_read(path, &m), 0);
	assert_int_equal(proto_hint_from_msg(&m, &got), 0);
	assert_memory_equal(&got, &h, sizeof h);
	msg_clear(&m);
	junk = xasprintf("%s/junk", dir);
	f = fopen(junk, "wb");
	assert_non_null(f);
	fputs("\x93not a message", f);
	fclose(f);
	assert_int_equal(proto_hint_file_read(junk, &m), -1);
	msg_init(&m, MSG_PING, 1); /* a message, not a hint */
	buf_init(&b);
	assert_int_equal(msg_encode(&m, &b), 0);
	f = fopen(junk, "wb");
	fwrite(b.p, 1, b.len, f);
	for (int i = 0; i < PROTO_HINT_FILE_MAX; i++)
		fputc(0, f);
	fclose(f);
	assert_int_equal(proto_hint_file_read(junk, &m), -1); /* too large */
	f = fopen(junk, "wb");
	fwrite(b.p, 1, b.len, f);
	fclose(f);
	assert_int_equal(proto_hint_file_read(junk, &m), -1); /* not a hint */
	buf_free(&b);
	unlink(junk);
	unlink(path);
	free(junk);
	free(path);
	path = xasprintf("%s/" PROTO_HINT_DIR, dir);
	rmdir(path);
	free(path);
	path = xasprintf("%s/run", dir);
	rmdir(path);
	free(path);
	rmdir(dir);
}

/* The build session's marker (proto_hint_leave): an absent marker leaves
 * the hint and the marker (no supervisor runs here: LEFT_NO_SUPERVISOR); a
 * fresh one, or another writer holding its lock, leaves nothing
 * (UNDER_WAY); a Cargo.lock written after the marker makes it stale; with
 * prefetch off the marker only (MARKED); a hint that cannot be written
 * leaves the marker as it was (FAILED). */
static void
test_hint_leave(void **state)
{
	char dir[] = "/tmp/kache-leave-XXXXXX", ws[17], *lock, *marker, *hintf, *hints, *lk;
	struct proto_hint h = { 0 };
	struct stat ls, ms, ms2;
	struct config *cfg;
	struct buf b;
	int fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	setenv("KACHE_CONFIG", "/nonexistent/kache.toml", 1);
	unsetenv("KACHE_PREFETCH_COOLDOWN");
	unsetenv("KACHE_PREFETCH_MAX_BYTES");
	cfg = config_load(NULL);
	lock = xasprintf("%s/Cargo.lock", dir);
	assert_int_equal(fs_write_atomic(lock, "version = 3\n", 12, 0644), 0);
	assert_int_equal(stat(lock, &ls), 0);
	proto_hint_workspace(&h, lock);
	assert_string_equal(h.root, dir);
	assert_string_equal(h.lock, lock);
	assert_int_equal(strlen(h.lock_hash), HASH_HEX_LEN);
	proto_hint_ws_id(lock, 0, ws);
	marker = proto_hint_marker(dir, ws);
	hintf = xasprintf("%s/" PROTO_HINT_DIR "/%s", dir, ws);
	hints = xasprintf("%s/" PROTO_HINT_DIR, dir);
	lk = xasprintf("%s.lock", marker);
	assert_int_equal(proto_hint_leave(dir, cfg, marker, &ls, &h),
	    PROTO_HINT_LEFT_NO_SUPERVISOR);
	assert_int_equal(stat(hintf, &ms), 0);
	buf_init(&b);
	assert_int_equal(fs_read_file(marker, &b, 4096), 0);
	buf_addch(&b, '\0');
	assert_true(str_starts_with(b.p, "lock="));
	assert_non_null(strstr(b.p, lock));
	buf_free(&b);
	assert_int_equal(unlink(hintf), 0);
	/* fresh: nothing */
	assert_int_equal(proto_hint_leave(dir, cfg, marker, &ls, &h), PROTO_HINT_UNDER_WAY);
	assert_int_not_equal(stat(hintf, &ms), 0);
	/* Cargo.lock written since: stale, but another writer holds the lock */
	usleep(20000);
	assert_int_equal(fs_write_atomic(lock, "version = 4\n", 12, 0644), 0);
	assert_int_equal(stat(lock, &ls), 0);
	fd = open(lk, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0 && flock(fd, LOCK_EX) == 0);
	assert_int_equal(proto_hint_leave(dir, cfg, marker, &ls, &h), PROTO_HINT_UNDER_WAY);
	close(fd);
	assert_int_equal(proto_hint_leave(dir, cfg, marker, &ls, &h),
	    PROTO_HINT_LEFT_NO_SUPERVISOR);
	assert_int_equal(unlink(hintf), 0);
	/* prefetch off: the marker only */
	usleep(20000);
	assert_int_equal(fs_write_atomic(lock, "version = 5\n", 12, 0644), 0);
	assert_int_equal(stat(lock, &ls), 0);
	config_set(cfg, "prefetch.max_bytes", "0");
	assert_int_equal(proto_hint_leave(dir, cfg, marker, &ls, &h), PROTO_HINT_MARKED);
	assert_int_not_equal(stat(hintf, &ms), 0);
	/* the hint cannot be written (run/hints is a file): the marker stays */
	config_set(cfg, "prefetch.max_bytes", "2G");
	usleep(20000);
	assert_int_equal(fs_write_atomic(lock, "version = 6\n", 12, 0644), 0);
	assert_int_equal(stat(lock, &ls), 0);
	assert_int_equal(rmdir(hints), 0);
	assert_int_equal(fs_write_atomic(hints, "x", 1, 0644), 0);
	assert_int_equal(stat(marker, &ms), 0);
	assert_int_equal(proto_hint_leave(dir, cfg, marker, &ls, &h), PROTO_HINT_FAILED);
	assert_int_equal(stat(marker, &ms2), 0);
	assert_int_equal(ms2.st_mtim.tv_sec, ms.st_mtim.tv_sec);
	assert_int_equal(ms2.st_mtim.tv_nsec, ms.st_mtim.tv_nsec);
	assert_int_equal(fs_remove_tree(dir), 0);
	config_free(&cfg);
	free(lk);
	free(hints);
	free(hintf);
	free(marker);
	free(lock);
}

/* A cargo command's link (proto/hint.h): it names its session while the
 * marker is within the cooldown; stale, dangling or naming no session id it
 * names none; a build and a check session of one Cargo.lock have two ids;
 * the sweep removes the links (and a link's leftover temp) of processes gone
 * and nothing else. */
static void
test_hint_cargo_link(void **state)
{
	char dir[] = "/tmp/kache-link-XXXXXX", b_ws[17], c_ws[17], ws[17], *lock, *marker, *link;
	char *dead, *dead_tmp, *other, *sessions;
	struct timespec old[2];
	struct config *cfg;
	pid_t child;

	(void)state;
	assert_non_null(mkdtemp(dir));
	setenv("KACHE_CONFIG", "/nonexistent/kache.toml", 1);
	unsetenv("KACHE_PREFETCH_COOLDOWN");
	cfg = config_load(NULL);
	lock = xasprintf("%s/Cargo.lock", dir);
	proto_hint_ws_id(lock, 0, b_ws);
	proto_hint_ws_id(lock, 1, c_ws);
	assert_int_equal(strlen(b_ws), 16);
	assert_int_equal(strlen(c_ws), 16);
	assert_string_not_equal(b_ws, c_ws);
	sessions = xasprintf("%s/run/sessions", dir);
	assert_int_equal(fs_mkdir_p(sessions, 0700), 0);
	marker = proto_hint_marker(dir, c_ws);
	link = proto_hint_cargo_link(dir, (long)getpid());
	/* dangling: the marker is not there yet */
	proto_hint_cargo_link_set(link, c_ws);
	assert_int_equal(proto_hint_cargo_session(cfg, link, ws), -1);
	assert_int_equal(fs_write_atomic(marker, "lock=x\n", 7, 0600), 0);
	assert_int_equal(proto_hint_cargo_session(cfg, link, ws), 0);
	assert_string_equal(ws, c_ws);
	/* set again, to the build's: replaced */
	free(marker);
	marker = proto_hint_marker(dir, b_ws);
	assert_int_equal(fs_write_atomic(marker, "lock=x\n", 7, 0600), 0);
	proto_hint_cargo_link_set(link, b_ws);
	assert_int_equal(proto_hint_cargo_session(cfg, link, ws), 0);
	assert_string_equal(ws, b_ws);
	/* the marker older than the cooldown (5 min): stale */
	old[0].tv_sec = old[1].tv_sec = time(NULL) - 301;
	old[0].tv_nsec = old[1].tv_nsec = 0;
	assert_int_equal(utimensat(AT_FDCWD, marker, old, 0), 0);
	assert_int_equal(proto_hint_cargo_session(cfg, link, ws), -1);
	assert_int_equal(utimensat(AT_FDCWD, marker, NULL, 0), 0);
	/* a link naming no session id (a file of that name exists) */
	other = proto_hint_cargo_link(dir, 1);
	assert_int_equal(symlink("Cargo.lock", other), 0);
	assert_int_equal(fs_write_atomic(lock, "version = 3\n", 12, 0644), 0);
	assert_int_equal(proto_hint_cargo_session(cfg, other, ws), -1);
	/* the sweep: a pid gone (a child reaped) loses its link and temp; this
	 * process and pid 1 keep theirs */
	child = fork();
	assert_true(child >= 0);
	if (child == 0)
		_exit(0);
	assert_int_equal(waitpid(child, NULL, 0), child);
	dead = proto_hint_cargo_link(dir, (long)child);
	dead_tmp = xasprintf("%s.%ld", dead, (long)child);
	proto_hint_cargo_link_set(dead, b_ws);
	assert_int_equal(symlink(b_ws, dead_tmp), 0);
	assert_int_equal(proto_hint_sweep_links(dir), 2);
	assert_int_not_equal(access(dead, F_OK), 0);
	assert_int_not_equal(access(dead_tmp, F_OK), 0);
	assert_int_equal(proto_hint_cargo_session(cfg, link, ws), 0);
	assert_int_equal(proto_hint_sweep_links(dir), 0);
	assert_int_equal(fs_remove_tree(dir), 0);
	config_free(&cfg);
	free(dead_tmp);
	free(dead);
	free(other);
	free(link);
	free(marker);
	free(sessions);
	free(lock);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_all),
		cmocka_unit_test(test_specific_fields),
		cmocka_unit_test(test_empty_strings),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_index_messages),
		cmocka_unit_test(test_progress),
		cmocka_unit_test(test_key_too_long),
		cmocka_unit_test(test_encode_refuses_unknown),
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_wait_through_the_lock_handover),
		cmocka_unit_test(test_spawn_is_not_held_back_by_a_file_with_no_record),
		cmocka_unit_test(test_spawn_is_not_given_up_for_a_waiters_probe),
		cmocka_unit_test(test_prefetch_hint),
		cmocka_unit_test(test_prefetch_hint_file),
		cmocka_unit_test(test_hint_leave),
		cmocka_unit_test(test_hint_cargo_link),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
