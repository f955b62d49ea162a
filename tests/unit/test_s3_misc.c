/* s3/: endpoints, credentials precedence, list XML scanning, settings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/config.h"
#include "common/fs.h"
#include "common/util.h"
#include "s3/s3_internal.h"

static void
check_ep(const char *url, int ok, int https, const char *host, const char *port)
{
	struct s3_endpoint ep;
	struct buf err;

	buf_init(&err);
	assert_int_equal(s3_endpoint_parse(url, &ep, &err), ok ? 0 : -1);
	if (ok) {
		assert_int_equal(ep.https, https);
		assert_string_equal(ep.host, host);
		if (port)
			assert_string_equal(ep.port, port);
		else
			assert_null(ep.port);
	} else {
		assert_non_null(strstr(err.p, "KACHE_S3_ENDPOINT"));
	}
	s3_endpoint_clear(&ep);
	buf_free(&err);
}

static void
test_endpoint_parse(void **state)
{
	(void)state;
	check_ep("http://127.0.0.1:9000", 1, 0, "127.0.0.1", "9000");
	check_ep("https://s3.eu-west-1.amazonaws.com/", 1, 1, "s3.eu-west-1.amazonaws.com", NULL);
	check_ep("http://[::1]:4566", 1, 0, "[::1]", "4566");
	check_ep("http://[::1]", 1, 0, "[::1]", NULL);
	check_ep("127.0.0.1:9000", 0, 0, NULL, NULL);
	check_ep("s3.amazonaws.com", 0, 0, NULL, NULL);
	check_ep("ftp://host", 0, 0, NULL, NULL);
	check_ep("http://", 0, 0, NULL, NULL);
	check_ep("http://host:99999", 0, 0, NULL, NULL);
	check_ep("http://host:", 0, 0, NULL, NULL);
	check_ep("http://user@host", 0, 0, NULL, NULL);
	check_ep("http://host/path", 0, 0, NULL, NULL);
	check_ep("http://host?x=1", 0, 0, NULL, NULL);
}

static void
test_endpoint_no_scheme_message(void **state)
{
	struct s3_endpoint ep;
	struct buf err;

	(void)state;
	buf_init(&err);
	assert_int_equal(s3_endpoint_parse("minio:9000", &ep, &err), -1);
	assert_non_null(strstr(err.p, "no http:// or https:// scheme"));
	buf_free(&err);
}

static void
test_endpoint_target(void **state)
{
	struct s3_endpoint ep;
	struct buf err;
	char *host, *path;

	(void)state;
	buf_init(&err);
	assert_int_equal(s3_endpoint_parse("http://localhost:9000", &ep, &err), 0);
	s3_endpoint_target(&ep, 0, "bkt", "kache/a b", &host, &path);
	assert_string_equal(host, "localhost:9000");
	assert_string_equal(path, "/bkt/kache/a b");
	free(host);
	free(path);
	s3_endpoint_target(&ep, 1, "bkt", "kache/x", &host, &path);
	assert_string_equal(host, "bkt.localhost:9000");
	assert_string_equal(path, "/kache/x");
	free(host);
	free(path);
	s3_endpoint_target(&ep, 0, "bkt", NULL, &host, &path);
	assert_string_equal(path, "/bkt");
	free(host);
	free(path);
	s3_endpoint_clear(&ep);
	buf_free(&err);
}

static void
test_default_endpoint_and_bad_one(void **state)
{
	struct s3_settings s;
	struct s3_client *c;
	struct buf err;

	(void)state;
	buf_init(&err);
	s3_settings_defaults(&s);
	s.bucket = xstrdup("b");
	s.region = xstrdup("eu-west-3");
	s.endpoint = xstrdup("");
	c = s3_client_new(&s, &err);
	assert_non_null(c);
	s3_client_free(&c);
	assert_null(c);
	free(s.endpoint);
	s.endpoint = xstrdup("localhost:9000");
	assert_null(s3_client_new(&s, &err));
	assert_non_null(strstr(err.p, "check KACHE_S3_ENDPOINT"));
	s3_settings_clear(&s);
	buf_free(&err);
}

/* A clean environment for the credentials tests: no real ~/.aws is read. */
static char *
scratch_dir(void)
{
	char tmpl[] = "/tmp/kache-s3-test.XXXXXX";
	char *d = mkdtemp(tmpl);

	assert_non_null(d);
	setenv("HOME", d, 1);
	setenv("KACHE_CONFIG", "/nonexistent/kache.toml", 1);
	unsetenv("AWS_SHARED_CREDENTIALS_FILE");
	unsetenv("AWS_PROFILE");
	unsetenv("KACHE_S3_PROFILE");
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("KACHE_S3_ACCESS_KEY_ID");
	unsetenv("KACHE_S3_SECRET_ACCESS_KEY");
	unsetenv("KACHE_S3_SESSION_TOKEN");
	return xstrdup(d);
}

static const char creds_file[] =
    "[default]\naws_access_key_id = FILEDEFAULT\naws_secret_access_key = filesecret0\n"
    "[ci]\naws_access_key_id = FILECI\naws_secret_access_key = filesecret1\n"
    "aws_session_token = citoken\n"
    "[half]\naws_access_key_id = ONLYID\n";

static void
resolve(const char *want_id, const char *want_secret, const char *want_token)
{
	struct config *cfg = config_load(NULL);
	struct s3_creds c;
	struct buf err;

	buf_init(&err);
	assert_int_equal(s3_creds_resolve(cfg, &c, &err), 0);
	assert_string_equal(c.access_key_id, want_id);
	assert_string_equal(c.secret_access_key, want_secret);
	if (want_token)
		assert_string_equal(c.session_token, want_token);
	else
		assert_null(c.session_token);
	s3_creds_clear(&c);
	config_free(&cfg);
	buf_free(&err);
}

static void
test_creds_precedence(void **state)
{
	char *d = scratch_dir(), *aws = xasprintf("%s/.aws", d),
	     *f = xasprintf("%s/credentials", aws);

	(void)state;
	assert_int_equal(fs_mkdir_p(aws, 0700), 0);
	assert_int_equal(fs_write_atomic(f, creds_file, strlen(creds_file), 0600), 0);
	resolve("FILEDEFAULT", "filesecret0", NULL);
	setenv("KACHE_S3_PROFILE", "ci", 1);
	resolve("FILECI", "filesecret1", "citoken");
	setenv("AWS_PROFILE", "default", 1);
	resolve("FILEDEFAULT", "filesecret0", NULL);
	setenv("AWS_ACCESS_KEY_ID", "ENVID", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
	setenv("AWS_SESSION_TOKEN", "envtoken", 1);
	resolve("ENVID", "envsecret", "envtoken");
	setenv("KACHE_S3_ACCESS_KEY_ID", "KACHEID", 1);
	setenv("KACHE_S3_SECRET_ACCESS_KEY", "kachesecret", 1);
	resolve("KACHEID", "kachesecret", NULL);
	fs_remove_tree(d);
	free(f);
	free(aws);
	free(d);
}

/* The message of a resolution that fails (new string). */
static char *
no_creds_message(void)
{
	struct config *cfg = config_load(NULL);
	struct s3_creds c;
	struct buf err;

	buf_init(&err);
	assert_int_equal(s3_creds_resolve(cfg, &c, &err), -1);
	config_free(&cfg);
	return buf_detach(&err, NULL);
}

static void
expect_no_creds(const char *needle)
{
	char *m = no_creds_message();

	assert_non_null(strstr(m, needle));
	assert_null(strstr(m, "secret0"));
	free(m);
}

/* The resolution fails and its message has no needle. */
static void
expect_not(const char *needle)
{
	char *m = no_creds_message();

	assert_null(strstr(m, needle));
	free(m);
}

static void
test_creds_errors(void **state)
{
	char *d = scratch_dir(), *f = xasprintf("%s/creds.ini", d);

	(void)state;
	expect_no_creds("no S3 credentials");
	expect_no_creds("; nor a role's (http://127.0.0.1:1/latest/api/token: ");
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	expect_no_creds("no S3 credentials");
	expect_not("nor a role's");
	unsetenv("AWS_EC2_METADATA_DISABLED");
	assert_int_equal(fs_write_atomic(f, creds_file, strlen(creds_file), 0600), 0);
	setenv("AWS_SHARED_CREDENTIALS_FILE", f, 1);
	setenv("AWS_PROFILE", "half", 1);
	expect_no_creds("profile [half] of");
	expect_not("nor a role's"); /* a wrong file is the error: no role asked */
	setenv("AWS_PROFILE", "nosuch", 1);
	expect_no_creds("profile [nosuch] is not in");
	expect_not("nor a role's");
	setenv("AWS_ACCESS_KEY_ID", "ONLYID", 1);
	expect_no_creds("only one of AWS_ACCESS_KEY_ID");
	unsetenv("AWS_PROFILE");
	unsetenv("AWS_ACCESS_KEY_ID");
	resolve("FILEDEFAULT", "filesecret0", NULL);
	fs_remove_tree(d);
	free(f);
	free(d);
}

static void
test_config_from(void **state)
{
	char *d = scratch_dir();
	struct config *cfg;
	struct s3_settings s;
	struct buf err;

	(void)state;
	buf_init(&err);
	setenv("AWS_ACCESS_KEY_ID", "A", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "S", 1);
	cfg = config_load(NULL);
	assert_int_equal(s3_config_from(cfg, &s, &err), -1);
	assert_non_null(strstr(err.p, "KACHE_S3_BUCKET"));
	config_set(cfg, "s3.bucket", "bkt");
	config_set(cfg, "s3.addressing", "virtual");
	config_set(cfg, "s3.multipart_threshold", "16M");
	config_set(cfg, "s3.read_only", "true");
	assert_int_equal(s3_config_from(cfg, &s, &err), 0);
	assert_string_equal(s.bucket, "bkt");
	assert_string_equal(s.prefix, "kache");
	assert_int_equal(s.virtual_hosted, 1);
	assert_int_equal(s.read_only, 1);
	assert_int_equal(s.multipart_threshold, 16 * 1024 * 1024);
	assert_string_equal(s.creds.access_key_id, "A");
	s3_settings_clear(&s);
	config_set(cfg, "s3.addressing", "sideways");
	assert_int_equal(s3_config_from(cfg, &s, &err), -1);
	config_free(&cfg);
	fs_remove_tree(d);
	free(d);
	buf_free(&err);
}

static const char list_ok[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
    "<Name>b</Name><Prefix>kache/</Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys>"
    "<IsTruncated>true</IsTruncated>"
    "<Contents><Key>kache/a&amp;b &lt;c&gt; "
    "&#233;&#x41;</Key><LastModified>2009-10-12T17:50:30.000Z</LastModified>"
    "<ETag>&quot;e&quot;</ETag><Size>12582912</Size><StorageClass>STANDARD</StorageClass>"
    "</Contents>"
    "<Contents><Key>kache/z</Key><Size>0</Size></Contents>"
    "<NextContinuationToken>tok+/=</NextContinuationToken></ListBucketResult>";

static void
test_xml_list_ok(void **state)
{
	struct s3_list_page p;

	(void)state;
	assert_int_equal(s3_xml_parse_list(list_ok, strlen(list_ok), &p), 0);
	assert_int_equal(p.n, 2);
	assert_string_equal(p.obj[0].key,
	    "kache/a&b <c> \xc3\xa9"
	    "A");
	assert_int_equal(p.obj[0].size, 12582912);
	assert_int_equal(p.obj[0].mtime_ms, 1255369830000LL);
	assert_int_equal(p.obj[1].mtime_ms, 0); /* absent: the oldest */
	assert_string_equal(p.obj[1].key, "kache/z");
	assert_int_equal(p.obj[1].size, 0);
	assert_int_equal(p.truncated, 1);
	assert_string_equal(p.next_token, "tok+/=");
	s3_list_page_clear(&p);
}

static void
expect_bad_list(const char *xml)
{
	struct s3_list_page p;

	assert_int_equal(s3_xml_parse_list(xml, strlen(xml), &p), -1);
	assert_int_equal(p.n, 0);
	assert_null(p.obj);
}

#define LB "<ListBucketResult>"
#define LE "</ListBucketResult>"

static void
test_xml_list_malicious(void **state)
{
	char *cut = xstrndup(list_ok, 300);

	(void)state;
	expect_bad_list("");
	expect_bad_list(cut);
	expect_bad_list(LB "<IsTruncated>false</IsTruncated>");
	expect_bad_list(LB "<Contents><Key>a</Key><Size>1</Size>" LE);
	expect_bad_list(LB "<Contents><Key>a</Key></Contents><IsTruncated>false</IsTruncated>" LE);
	expect_bad_list(LB "<Contents><Key>a</Key><Size>-1</Size></Contents>"
	                   "<IsTruncated>false</IsTruncated>" LE);
	expect_bad_list(LB "<Contents><Key>a</Key><Size>99999999999999999999</Size></Contents>"
	                   "<IsTruncated>false</IsTruncated>" LE);
	expect_bad_list(LB "<Contents><Key>a&#0;b</Key><Size>1</Size></Contents>"
	                   "<IsTruncated>false</IsTruncated>" LE);
	expect_bad_list(LB "<Contents><Key>a&bogus;</Key><Size>1</Size></Contents>"
	                   "<IsTruncated>false</IsTruncated>" LE);
	expect_bad_list(LB "<Contents><Key>a&#-5;</Key><Size>1</Size></Contents>"
	                   "<IsTruncated>false</IsTruncated>" LE);
	expect_bad_list(LB "<Contents><Key>a&amp</Key><Size>1</Size></Contents>"
	                   "<IsTruncated>false</IsTruncated>" LE);
	expect_bad_list(LB "<Contents><Key>a</Key><Size>1</Size><LastModified>yesterday"
	                   "</LastModified></Contents><IsTruncated>false</IsTruncated>" LE);
	expect_bad_list(LB "<Contents><Key>a</Key><Size>1</Size><LastModified>2020-01-01T00:00"
	                   ":00Z</Contents><IsTruncated>false</IsTruncated>" LE);
	expect_bad_list(LB "<IsTruncated>maybe</IsTruncated>" LE);
	expect_bad_list(LB "<IsTruncated>true</IsTruncated>" LE);
	free(cut);
}

static void
expect_time(const char *s, int64_t want)
{
	int64_t ms = -2;

	assert_int_equal(s3_xml_parse_time(s, strlen(s), &ms), 0);
	assert_int_equal(ms, want);
}

static void
expect_bad_time(const char *s)
{
	int64_t ms;

	assert_int_equal(s3_xml_parse_time(s, strlen(s), &ms), -1);
}

/* LastModified as S3 and its look-alikes write it; anything else refused. */
static void
test_xml_time(void **state)
{
	(void)state;
	expect_time("1970-01-01T00:00:00Z", 0);
	expect_time("1970-01-01T00:00:00.001Z", 1);
	expect_time("2009-10-12T17:50:30.000Z", 1255369830000LL);
	expect_time("2009-10-12T17:50:30.5Z", 1255369830500LL);
	expect_time("2009-10-12T17:50:30.123456789Z", 1255369830123LL);
	expect_time("2024-02-29T23:59:59Z", 1709251199000LL);
	expect_time("2000-03-01T00:00:00Z", 951868800000LL);
	expect_time("9999-12-31T23:59:59.999Z", 253402300799999LL);
	expect_bad_time("");
	expect_bad_time("x");
	expect_bad_time("2009-10-12T17:50:30");       /* no zone */
	expect_bad_time("2009-10-12T17:50:30+01:00"); /* another zone */
	expect_bad_time("2009-10-12 17:50:30Z");
	expect_bad_time("2009-10-12T17:50:30.Z");
	expect_bad_time("2009-10-12T17:50:30.1234567890Z");
	expect_bad_time("2009-10-12T17:50:30,000Z");
	expect_bad_time("2009-10-12T17:50:30.00aZ");
	expect_bad_time("2023-02-29T00:00:00Z");
	expect_bad_time("1900-02-29T00:00:00Z");
	expect_bad_time("2009-13-12T17:50:30Z");
	expect_bad_time("2009-00-12T17:50:30Z");
	expect_bad_time("2009-10-00T17:50:30Z");
	expect_bad_time("2009-10-32T17:50:30Z");
	expect_bad_time("2009-10-12T24:00:00Z");
	expect_bad_time("2009-10-12T17:60:30Z");
	expect_bad_time("2009-10-12T17:50:60Z");
	expect_bad_time("1969-12-31T23:59:59Z");
	expect_bad_time("-009-10-12T17:50:30Z");
	expect_bad_time("+2009-10-12T17:50:30Z");
	expect_bad_time("2009-1-012T17:50:30Z");
	expect_bad_time("20091012T175030Z");
	expect_bad_time("2009-10-12T17:50:30ZZ");
}

static void
test_xml_list_embedded_nul(void **state)
{
	static const char xml[] = LB "<Contents><Key>a\0b</Key><Size>1</Size></Contents>"
	                             "<IsTruncated>false</IsTruncated>" LE;
	struct s3_list_page p;

	(void)state;
	assert_int_equal(s3_xml_parse_list(xml, sizeof xml - 1, &p), -1);
}

static void
test_xml_text_and_escape(void **state)
{
	static const char err[] = "<Error><Code>RequestTimeTooSkewed</Code><Message>m</Message>";
	char *t = s3_xml_text(err, strlen(err), "Code"), *e = s3_xml_escape("\"a&b<c>\"");

	(void)state;
	assert_string_equal(t, "RequestTimeTooSkewed");
	assert_null(s3_xml_text(err, strlen(err), "UploadId"));
	assert_null(s3_xml_text("<Code>unterminated", 18, "Code"));
	assert_string_equal(e, "&quot;a&amp;b&lt;c&gt;&quot;");
	free(t);
	free(e);
}

static void
test_result_names(void **state)
{
	(void)state;
	assert_string_equal(s3_result_name(S3_OK), "OK");
	assert_string_equal(s3_result_name(S3_NO_BUCKET), "NO_BUCKET");
	assert_string_equal(s3_result_name((enum s3_result)99), "UNKNOWN");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_endpoint_parse),
		cmocka_unit_test(test_endpoint_no_scheme_message),
		cmocka_unit_test(test_endpoint_target),
		cmocka_unit_test(test_default_endpoint_and_bad_one),
		cmocka_unit_test(test_creds_precedence),
		cmocka_unit_test(test_creds_errors),
		cmocka_unit_test(test_config_from),
		cmocka_unit_test(test_xml_list_ok),
		cmocka_unit_test(test_xml_list_malicious),
		cmocka_unit_test(test_xml_list_embedded_nul),
		cmocka_unit_test(test_xml_time),
		cmocka_unit_test(test_xml_text_and_escape),
		cmocka_unit_test(test_result_names),
	};

	/* the last link of the credentials chain asks the instance metadata
	 * service: here a closed loopback port, refused at once (the IMDS
	 * itself: tests/s3/test_s3_moto.py TestImds) */
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1", 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
