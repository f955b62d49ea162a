/* SigV4 against the published AWS test-suite vectors and the S3 docs example. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "s3/s3_sign.h"

#define SUITE_DATE "20150830T123600Z"
#define SUITE_SCOPE "Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "

static struct s3_creds suite_creds = { "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
	NULL, 0, 0, NULL, NULL };

static void
check_suite(const char *method, const char *path, const struct s3_kv *q, size_t nq,
    const char *want_sig)
{
	struct s3_kv h[] = { { "Host", "example.amazonaws.com" }, { "X-Amz-Date", SUITE_DATE } };
	struct s3_sign_req r = { method, path, q, nq, h, 2, S3_EMPTY_SHA256, SUITE_DATE,
		"us-east-1", "service" };
	char *auth = s3_authorization(&r, &suite_creds);
	char *want = NULL;

	if (asprintf(&want,
	        "AWS4-HMAC-SHA256 " SUITE_SCOPE "SignedHeaders=host;x-amz-date, Signature=%s",
	        want_sig) < 0)
		fail();
	assert_string_equal(auth, want);
	free(auth);
	free(want);
}

static void
test_get_vanilla(void **state)
{
	(void)state;
	check_suite("GET", "/", NULL, 0,
	    "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

static void
test_post_vanilla(void **state)
{
	(void)state;
	check_suite("POST", "/", NULL, 0,
	    "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
}

static void
test_get_vanilla_query(void **state)
{
	struct s3_kv one[] = { { "Param1", "value1" } };
	struct s3_kv two[] = { { "Param2", "value2" }, { "Param1", "value1" } };

	(void)state;
	check_suite("GET", "/", one, 1,
	    "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb");
	check_suite("GET", "/", two, 2,
	    "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}

static void
test_get_space_and_utf8(void **state)
{
	(void)state;
	check_suite("GET", "/example space/", NULL, 0,
	    "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741");
	check_suite("GET", "/\xe1\x88\xb4", NULL, 0,
	    "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85");
}

static void
test_canonical_request_query_order(void **state)
{
	struct s3_kv q[] = { { "Param2", "value2" }, { "Param1", "value1" } };
	struct s3_kv h[] = { { "Host", "example.amazonaws.com" }, { "X-Amz-Date", SUITE_DATE } };
	struct s3_sign_req r = { "GET", "/", q, 2, h, 2, S3_EMPTY_SHA256, SUITE_DATE, "us-east-1",
		"service" };
	char *sh, *creq = s3_canonical_request(&r, &sh);

	(void)state;
	assert_string_equal(creq,
	    "GET\n/\nParam1=value1&Param2=value2\n"
	    "host:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-"
	    "date\n" S3_EMPTY_SHA256);
	assert_string_equal(sh, "host;x-amz-date");
	free(creq);
	free(sh);
}

/* The GET Object example of the S3 SigV4 header-auth documentation. */
static void
test_s3_docs_get_object(void **state)
{
	struct s3_creds cr = { "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		NULL, 0, 0, NULL, NULL };
	struct s3_kv h[] = { { "Host", "examplebucket.s3.amazonaws.com" }, { "Range", "bytes=0-9" },
		{ "x-amz-content-sha256", S3_EMPTY_SHA256 }, { "x-amz-date", "20130524T000000Z" } };
	struct s3_sign_req r = { "GET", "/test.txt", NULL, 0, h, 4, S3_EMPTY_SHA256,
		"20130524T000000Z", "us-east-1", "s3" };
	char *auth = s3_authorization(&r, &cr);

	(void)state;
	assert_string_equal(auth,
	    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/"
	    "us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;"
	    "x-amz-date, "
	    "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
	free(auth);
}

static void
check_enc(const char *in, int keep_slash, const char *want)
{
	char *got = s3_uri_encode(in, keep_slash);

	assert_string_equal(got, want);
	free(got);
}

static void
test_uri_encode(void **state)
{
	(void)state;
	check_enc("a/b c/d~e_f-g.h", 1, "a/b%20c/d~e_f-g.h");
	check_enc("a/b", 0, "a%2Fb");
	check_enc("k+y=1&x*'()!$,;:@", 1, "k%2By%3D1%26x%2A%27%28%29%21%24%2C%3B%3A%40");
	check_enc("\xe1\x88\xb4", 1, "%E1%88%B4");
	check_enc("", 1, "");
	check_enc("../x/./y", 1, "../x/./y");
}

static void
test_canonical_query_encoding(void **state)
{
	struct s3_kv q[] = { { "prefix", "kache/a b" }, { "list-type", "2" },
		{ "continuation-token", "x+y/z=" }, { "uploads", "" } };
	char *s = s3_canonical_query(q, 4);

	(void)state;
	assert_string_equal(s,
	    "continuation-token=x%2By%2Fz%3D&list-type=2&"
	    "prefix=kache%2Fa%20b&uploads=");
	free(s);
}

static void
test_header_value_trimming(void **state)
{
	struct s3_kv h[] = { { "My-Header1", "  a   b  c " }, { "host", "h" } };
	struct s3_sign_req r = { "GET", "/", NULL, 0, h, 2, S3_EMPTY_SHA256, SUITE_DATE,
		"us-east-1", "service" };
	char *creq = s3_canonical_request(&r, NULL);

	(void)state;
	assert_non_null(strstr(creq, "\nhost:h\nmy-header1:a b c\n\nhost;my-header1\n"));
	free(creq);
}

static void
test_sha256(void **state)
{
	char out[S3_SHA256_HEX_LEN + 1];

	(void)state;
	s3_sha256_hex("", 0, out);
	assert_string_equal(out, S3_EMPTY_SHA256);
	s3_sha256_hex("abc", 3, out);
	assert_string_equal(out,
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_vanilla),
		cmocka_unit_test(test_post_vanilla),
		cmocka_unit_test(test_get_vanilla_query),
		cmocka_unit_test(test_get_space_and_utf8),
		cmocka_unit_test(test_canonical_request_query_order),
		cmocka_unit_test(test_s3_docs_get_object),
		cmocka_unit_test(test_uri_encode),
		cmocka_unit_test(test_canonical_query_encoding),
		cmocka_unit_test(test_header_value_trimming),
		cmocka_unit_test(test_sha256),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
