/* Unit tests for remote/session.c: a session manifest round-trips; every kind
 * of damage (truncation, a wrong count, a bad name or key, trailing bytes,
 * another version) is refused whole with a reason; the fingerprint depends on
 * each of its parts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "remote/session.h"

#define R1 "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define R2 "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"

static const char good[] = "kache-session 1\nlock " R1 "\ntoolchain 0123456789abcdef\n"
                           "target -\nprofile debug\ncreated 1700000000000\nkeys 2\n"
                           "fixture_core " R1 " 1234\nbuild_script_build " R2 " 0\nend\n";

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
		{ " 1234\n", " 12a4\n" },
		{ " 1234\n", "\n" },
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
	buf_init(&b);
	remote_session_encode(&s, &b);
	assert_int_equal(b.len, strlen(v2));
	assert_memory_equal(b.p, v2, b.len);
	buf_free(&b);
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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
