/* Unit tests for remote/session.c: a session manifest round-trips; every kind
 * of damage (truncation, a wrong count, a bad name or key, trailing bytes,
 * another version, a version not valid) is refused whole with a reason; the fingerprint depends on
 * each of its parts. Version 3's parts (ids, each key's part) round-trip and
 * are checked; a bundle part's bytes (remote/bundle.c) are refused whole when
 * any of it is wrong. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "remote/bundle.h"
#include "remote/session.h"
#include "store/pack.h"

#define R1 "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define R2 "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"

static const char good[] =
    "kache-session 1\nlock " R1 "\ntoolchain 0123456789abcdef\n"
    "target -\nprofile debug\ncreated 1700000000000\nkeys 2\n"
    "fixture_core " R1 " 1234 0.2.0-rc.1+b\nbuild_script_build " R2 " 0\nend\n";

static void
test_round_trip(void **state)
{
	struct remote_session s, t;
	struct buf b;
	char why[160];

	(void)state;
	assert_int_equal(remote_session_parse(good, strlen(good), &s, why, sizeof why), 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.k[0].crate, "fixture_core");
	assert_string_equal(s.k[1].res, R2);
	assert_int_equal(s.k[0].bytes, 1234);
	assert_string_equal(s.k[0].version, "0.2.0-rc.1+b");
	assert_string_equal(s.k[1].version, "");
	assert_string_equal(s.target, "");
	assert_string_equal(s.profile, "debug");
	assert_int_equal(s.created_ms, 1700000000000LL);
	buf_init(&b);
	remote_session_encode(&s, &b);
	assert_int_equal(b.len, strlen(good));
	assert_memory_equal(b.p, good, b.len);
	assert_int_equal(remote_session_parse(b.p, b.len, &t, why, sizeof why), 0);
	buf_free(&b);
	remote_session_free(&s);
	remote_session_free(&t);
}

/* s encoded is exactly text. */
static void
assert_encodes_to(const struct remote_session *s, const char *text)
{
	struct buf b;

	buf_init(&b);
	remote_session_encode(s, &b);
	assert_int_equal(b.len, strlen(text));
	assert_memory_equal(b.p, text, b.len);
	buf_free(&b);
}

/* Replaces the first occurrence of from in good with to. */
static size_t
damaged(char *out, size_t cap, const char *from, const char *to)
{
	const char *at = strstr(good, from);

	assert_non_null(at);
	return (
	    size_t)snprintf(out, cap, "%.*s%s%s", (int)(at - good), good, to, at + strlen(from));
}

static void
test_damage_refused(void **state)
{
	static const char *const edits[][2] = {
		{ "kache-session 1", "kache-session 2" },
		{ "keys 2", "keys 3" },
		{ "keys 2", "keys 1" },
		{ "keys 2", "keys -1" },
		{ "keys 2", "keys 99999999" },
		{ "fixture_core", "../etc" },
		{ "fixture_core " R1, "fixture_core " R1 "0" },
		{ " 1234 ", " 12a4 " },
		{ " 1234 0.2.0-rc.1+b\n", "\n" },
		{ " 1234 ", " " },
		{ " 1234 ", " 1234  " },
		{ "0.2.0-rc.1+b\n", "0.2/0\n" },
		{ "0.2.0-rc.1+b\n", "0.2.0 x\n" },
		{ "0.2.0-rc.1+b\n", "0.2.0 \n" },
		{ "lock 0", "lock X" },
		{ "target -", "target a/b" },
		{ "profile debug", "profile" },
		{ "created 1", "created x" },
		{ "end\n", "end\nmore\n" },
		{ "end\n", "end" },
		{ "end\n", "" },
		{ "\nprofile", "\r\nprofile" },
	};
	struct remote_session s;
	char buf[1024], why[160];
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
		n = damaged(buf, sizeof buf, edits[i][0], edits[i][1]);
		why[0] = '\0';
		if (remote_session_parse(buf, n, &s, why, sizeof why) != -1)
			fail_msg("edit %zu (%s -> %s) was accepted", i, edits[i][0], edits[i][1]);
		assert_true(why[0] != '\0');
	}
	/* every truncation of a valid object is refused */
	for (size_t k = 0; k < strlen(good); k++)
		assert_int_equal(remote_session_parse(good, k, &s, why, sizeof why), -1);
	/* a NUL inside a name */
	memcpy(buf, good, sizeof good);
	buf[strstr(good, "fixture_core") - good + 3] = '\0';
	assert_int_equal(remote_session_parse(buf, strlen(good), &s, why, sizeof why), -1);
}

/* Version 2 carries the features line; version 1 must not. */
static void
test_version2_features(void **state)
{
	static const char v2[] = "kache-session 2\nlock " R1 "\ntoolchain -\ntarget -\n"
	                         "profile debug\nfeatures 0123456789abcdef\ncreated 5\nkeys 1\n"
	                         "tiny " R2 " 7\nend\n";
	struct remote_session s;
	struct buf b;
	char why[160], v1[512];

	(void)state;
	assert_int_equal(remote_session_parse(v2, strlen(v2), &s, why, sizeof why), 0);
	assert_string_equal(s.features, "0123456789abcdef");
	assert_encodes_to(&s, v2);
	remote_session_free(&s);
	/* the features line in a version 1 object is refused */
	snprintf(v1, sizeof v1, "kache-session 1%s", v2 + strlen("kache-session 2"));
	assert_int_equal(remote_session_parse(v1, strlen(v1), &s, why, sizeof why), -1);
	/* no features known: version 1 is written */
	assert_int_equal(remote_session_parse(good, strlen(good), &s, why, sizeof why), 0);
	assert_string_equal(s.features, "");
	buf_init(&b);
	remote_session_encode(&s, &b);
	assert_memory_equal(b.p, "kache-session 1\n", 16);
	buf_free(&b);
	remote_session_free(&s);
}

/* The digest is of the set of lines: order and repeats do not count. */
static const char v3[] = "kache-session 3\nlock " R1 "\ntoolchain -\ntarget -\n"
                         "profile debug\nfeatures -\ncreated 5\nkeys 3\n"
                         "a " R1 " 10 - 0\nb " R2 " 20 1.0.0 -\nc " R1 " 30 - 1\n"
                         "parts 2\n" R2 "\n" R1 "\nend\n";

/* Replaces the first from in v3 with to, and expects the result refused. */
static void
v3_refused(const char *from, const char *to)
{
	const char *at = strstr(v3, from);
	struct remote_session s;
	char buf[2048], why[160];
	int n;

	assert_non_null(at);
	n = snprintf(buf, sizeof buf, "%.*s%s%s", (int)(at - v3), v3, to, at + strlen(from));
	why[0] = '\0';
	assert_int_equal(remote_session_parse(buf, (size_t)n, &s, why, sizeof why), -1);
	assert_true(why[0] != '\0');
}

static void
test_version3_parts(void **state)
{
	struct remote_session s;
	struct buf b;
	char why[160];

	(void)state;
	assert_int_equal(remote_session_parse(v3, strlen(v3), &s, why, sizeof why), 0);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.nparts, 2);
	assert_string_equal(s.parts[0], R2);
	assert_int_equal(s.k[0].part, 0);
	assert_int_equal(s.k[1].part, -1);
	assert_string_equal(s.k[1].version, "1.0.0");
	assert_string_equal(s.k[2].version, "");
	assert_int_equal(s.k[2].part, 1);
	assert_string_equal(s.features, "");
	assert_encodes_to(&s, v3);
	/* no part left: written as version 1 again */
	s.nparts = 0;
	for (size_t i = 0; i < s.n; i++)
		s.k[i].part = -1;
	buf_init(&b);
	remote_session_encode(&s, &b);
	assert_true(strncmp(b.p, REMOTE_SESSION_MAGIC, strlen(REMOTE_SESSION_MAGIC)) == 0);
	buf_free(&b);
	remote_session_free(&s);
	v3_refused(" 30 - 1\n", " 30 - 2\n");       /* a part that is not there */
	v3_refused(" 10 - 0\n", " 10 - 00\n");      /* not a number as written */
	v3_refused(" 10 - 0\n", " 10 -\n");         /* four fields */
	v3_refused(" 10 - 0\n", " 10 - 0 x\n");     /* six */
	v3_refused("parts 2\n" R2, "parts 2\n" R1); /* an id twice */
	v3_refused("parts 2", "parts 3");           /* fewer ids than said */
	v3_refused("parts 2\n", "");                /* no parts line */
	v3_refused("\n" R1 "\nend", "\n0123\nend"); /* an id not hex */
	v3_refused("features -\n", "");             /* version 3 has the line */
}

/* A part of two packs as bundle_write makes it. */
static size_t
part_bytes(char *out, size_t cap, const char *second_line)
{
	return (size_t)snprintf(out, cap,
	    "kache-bundle 1\npacks 2\ntiny " R1 " 3\n%s\nend\nabcdefgh", second_line);
}

static void
bundle_refused(const char *d, size_t n)
{
	struct bundle_index ix;
	char why[160] = "";

	assert_int_equal(bundle_parse(d, n, &ix, why, sizeof why), -1);
	assert_true(why[0] != '\0');
	assert_null(ix.p);
}

static void
test_bundle_part(void **state)
{
	struct bundle_index ix;
	char d[512], why[160];
	size_t n;

	(void)state;
	n = part_bytes(d, sizeof d, "core " R2 " 5");
	assert_int_equal(bundle_parse(d, n, &ix, why, sizeof why), 0);
	assert_int_equal(ix.n, 2);
	assert_string_equal(ix.p[0].crate, "tiny");
	assert_string_equal(ix.p[1].res, R2);
	assert_memory_equal(d + ix.p[0].off, "abc", 3);
	assert_memory_equal(d + ix.p[1].off, "defgh", 5);
	assert_int_equal(ix.p[1].len, 5);
	bundle_index_free(&ix);
	bundle_refused(d, n - 1); /* cut short */
	d[n] = 'x';
	bundle_refused(d, n + 1);                                    /* a byte past its packs */
	bundle_refused(d, part_bytes(d, sizeof d, "core " R2 " 6")); /* sizes past the end */
	bundle_refused(d, part_bytes(d, sizeof d, "core " R2 " 0"));
	bundle_refused(d, part_bytes(d, sizeof d, "core " R2 " 05"));
	bundle_refused(d, part_bytes(d, sizeof d, "co/re " R2 " 5")); /* not a crate name */
	bundle_refused(d, part_bytes(d, sizeof d, "core " R2 "0 5")); /* key too long */
	bundle_refused(d, part_bytes(d, sizeof d, "core " R2 " 5 x"));
	bundle_refused(d, part_bytes(d, sizeof d, "core  " R2 " 5"));
	bundle_refused(d, part_bytes(d, sizeof d, "core\t" R2 " 5"));
	n = part_bytes(d, sizeof d, "core " R2 " 5");
	d[strlen("kache-bundle ")] = '3';
	bundle_refused(d, n); /* another version */
	n = part_bytes(d, sizeof d, "core " R2 " 5");
	d[strlen("kache-bundle 1\npacks ")] = '3';
	bundle_refused(d, n); /* more packs said than there are lines */
	n = (size_t)snprintf(d, sizeof d, "kache-bundle 1\npacks 0\nend\n");
	bundle_refused(d, n); /* no pack */
	n = (size_t)snprintf(d, sizeof d, "kache-bundle 1\npacks 99999\nend\n");
	bundle_refused(d, n);
	bundle_refused("", 0);
}

/* A part of version 2: the sizes are the documents' (up to PACK_DOCS_MAX,
 * more than the object can hold), placed within the frame's content; the
 * frame itself is checked when it is inflated, not here. */
static void
test_bundle_part_2(void **state)
{
	struct bundle_index ix;
	char d[512], why[160];
	size_t n;

	(void)state;
	n = (size_t)snprintf(d, sizeof d,
	    "kache-bundle 2\npacks 2\ntiny " R1 " 3\ncore " R2 " 9000000\nend\nF");
	assert_int_equal(bundle_parse(d, n, &ix, why, sizeof why), 0);
	assert_int_equal(ix.version, 2);
	assert_int_equal(ix.n, 2);
	assert_int_equal(ix.p[0].off, 0);
	assert_int_equal(ix.p[1].off, 3);
	assert_int_equal(ix.p[1].len, 9000000);
	assert_int_equal(ix.docs_len, 9000003);
	assert_int_equal(ix.body_off, n - 1);
	bundle_index_free(&ix);
	n = part_bytes(d, sizeof d, "core " R2 " 5");
	assert_int_equal(bundle_parse(d, n, &ix, why, sizeof why), 0);
	assert_int_equal(ix.version, 1);
	assert_int_equal(ix.docs_len, 0);
	bundle_index_free(&ix);
	/* no frame after the lines */
	n = (size_t)snprintf(d, sizeof d, "kache-bundle 2\npacks 1\ntiny " R1 " 3\nend\n");
	bundle_refused(d, n);
	/* documents past what one region holds */
	n = (size_t)snprintf(d, sizeof d,
	    "kache-bundle 2\npacks 2\ntiny " R1 " %zu\ncore " R2 " 1\nend\nF", PACK_DOCS_MAX);
	bundle_refused(d, n);
	n = (size_t)snprintf(d, sizeof d, "kache-bundle 2\npacks 1\ntiny " R1 " %zu\nend\nF",
	    PACK_DOCS_MAX + 1);
	bundle_refused(d, n);
}

static void
test_features_digest(void **state)
{
	struct strv x, y;
	char a[17], b[17];

	(void)state;
	strv_init(&x);
	strv_init(&y);
	strv_push(&x, "fixture_core loud,polite");
	strv_push(&x, "fixture_app -");
	strv_push(&y, "fixture_app -");
	strv_push(&y, "fixture_core loud,polite");
	strv_push(&y, "fixture_app -");
	remote_session_features_digest(&x, a);
	remote_session_features_digest(&y, b);
	assert_int_equal(strlen(a), 16);
	assert_string_equal(a, b);
	strv_push(&y, "fixture_core polite");
	remote_session_features_digest(&y, b);
	assert_string_not_equal(a, b);
	strv_free(&x);
	strv_free(&y);
}

static void
test_fingerprint(void **state)
{
	char a[HASH_HEX_LEN + 1], b[HASH_HEX_LEN + 1];

	(void)state;
	remote_session_fingerprint(R1, "t", "", "debug", a);
	remote_session_fingerprint(R1, "t", "", "debug", b);
	assert_string_equal(a, b);
	remote_session_fingerprint(R2, "t", "", "debug", b);
	assert_string_not_equal(a, b);
	remote_session_fingerprint(R1, "u", "", "debug", b);
	assert_string_not_equal(a, b);
	remote_session_fingerprint(R1, "t", "x86_64-unknown-linux-gnu", "debug", b);
	assert_string_not_equal(a, b);
	remote_session_fingerprint(R1, "t", "", "release", b);
	assert_string_not_equal(a, b);
	/* the parts do not run into each other */
	remote_session_fingerprint(R1, "td", "", "ebug", b);
	assert_string_not_equal(a, b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_damage_refused),
		cmocka_unit_test(test_fingerprint),
		cmocka_unit_test(test_version2_features),
		cmocka_unit_test(test_features_digest),
		cmocka_unit_test(test_version3_parts),
		cmocka_unit_test(test_bundle_part),
		cmocka_unit_test(test_bundle_part_2),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
