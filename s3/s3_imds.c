/* Credentials of an EC2 instance's role, from the instance metadata service
 * (IMDSv2: a session token first, then the role's name, then its keys), the
 * last link of the credentials chain (s3_creds_resolve). Every answer is
 * bounded in size and time; the keys expire and the client refreshes them
 * (s3_client.c). */
#include <curl/curl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/clock.h"
#include "s3/s3_internal.h"

#define IMDS_DEFAULT "http://169.254.169.254"
#define IMDS_TIMEOUT_MS 1000L /* each request, connection included (as the AWS SDKs) */
#define IMDS_ANSWER_MAX 16384
#define IMDS_TOKEN_TTL_HEADER "X-aws-ec2-metadata-token-ttl-seconds: 21600"

struct answer {
	struct buf b;
	int too_big;
};

static size_t on_data(char *p, size_t size, size_t n, void *arg);
static int request(CURL *h, const char *url, const char *token, struct answer *a,
    struct buf *err);
static int64_t parse_expiration(const char *s);
static int role_name_ok(const char *s, size_t n);

int
s3_imds_disabled(void)
{
	const char *off = getenv("AWS_EC2_METADATA_DISABLED");

	return off != NULL && strcasecmp(off, "true") == 0;
}

static size_t
on_data(char *p, size_t size, size_t n, void *arg)
{
	struct answer *a = arg;

	if (a->b.len + size * n > IMDS_ANSWER_MAX) {
		a->too_big = 1;
		return 0;
	}
	buf_add(&a->b, p, size * n);
	return size * n;
}

/* One request (a PUT for the token when token is NULL); the body in a. 0, or
 * -1 with why in err. */
static int
request(CURL *h, const char *url, const char *token, struct answer *a, struct buf *err)
{
	struct curl_slist *hdr = NULL;
	char *line = NULL;
	long code = 0;
	CURLcode cc;

	buf_reset(&a->b);
	a->too_big = 0;
	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
	curl_easy_setopt(h, CURLOPT_PROXY, ""); /* never through a proxy */
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, IMDS_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, IMDS_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, a);
	if (token == NULL) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
		hdr = curl_slist_append(hdr, IMDS_TOKEN_TTL_HEADER);
	} else {
		line = xasprintf("X-aws-ec2-metadata-token: %s", token);
		hdr = curl_slist_append(hdr, line);
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	curl_slist_free_all(hdr);
	free(line);
	if (cc == CURLE_OK && code == 200) {
		buf_addch(&a->b, '\0');
		a->b.len--;
		return 0;
	}
	if (a->too_big)
		buf_addf(err, "%s answered more than %d bytes", url, IMDS_ANSWER_MAX);
	else if (cc != CURLE_OK)
		buf_addf(err, "%s: %s", url, curl_easy_strerror(cc));
	else
		buf_addf(err, "%s answered HTTP %ld", url, code);
	return -1;
}

/* "2026-12-01T23:59:59Z" in milliseconds since the epoch; -1 when it is not. */
static int64_t
parse_expiration(const char *s)
{
	struct tm tm = { 0 };
	const char *end = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
	time_t t;

	if (end == NULL || strcmp(end, "Z") != 0 || (t = timegm(&tm)) == (time_t)-1)
		return -1;
	return (int64_t)t * 1000;
}

/* A role's name as IMDS lists it: [A-Za-z0-9+=,.@_-]{1,64}. */
static int
role_name_ok(const char *s, size_t n)
{
	static const char allowed[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                              "0123456789+=,.@_-";

	return n >= 1 && n <= 64 && strspn(s, allowed) == n;
}

int
s3_imds_creds(struct s3_creds *out, int64_t *expires_ms, struct buf *err)
{
	const char *ep = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	const char *base = ep != NULL && *ep != '\0' ? ep : IMDS_DEFAULT;
	const char *id, *secret, *token, *code;
	struct answer a = { 0 };
	char *url = NULL, *tok = NULL, *role = NULL;
	size_t blen = strlen(base), n;
	json_t *j = NULL;
	int rc = -1;
	CURL *h;

	while (blen > 0 && base[blen - 1] == '/')
		blen--;
	if (strncmp(base, "http://", 7) != 0) {
		buf_addf(err, "AWS_EC2_METADATA_SERVICE_ENDPOINT '%s' is not http://host[:port]",
		    base);
		return -1;
	}
	if ((h = curl_easy_init()) == NULL) {
		buf_addstr(err, "cannot start libcurl");
		return -1;
	}
	buf_init(&a.b);
	url = xasprintf("%.*s/latest/api/token", (int)blen, base);
	if (request(h, url, NULL, &a, err) < 0)
		goto out;
	tok = xstrndup(a.b.p, strcspn(a.b.p, "\r\n"));
	free(url);
	url = xasprintf("%.*s/latest/meta-data/iam/security-credentials/", (int)blen, base);
	if (request(h, url, tok, &a, err) < 0)
		goto out;
	n = strcspn(a.b.p, "\r\n");
	if (!role_name_ok(a.b.p, n)) {
		buf_addf(err, "%s names no instance role", url);
		goto out;
	}
	role = xstrndup(a.b.p, n);
	free(url);
	url = xasprintf("%.*s/latest/meta-data/iam/security-credentials/%s", (int)blen, base, role);
	if (request(h, url, tok, &a, err) < 0)
		goto out;
	j = json_loadb(a.b.p, a.b.len, 0, NULL);
	code = json_string_value(json_object_get(j, "Code"));
	id = json_string_value(json_object_get(j, "AccessKeyId"));
	secret = json_string_value(json_object_get(j, "SecretAccessKey"));
	token = json_string_value(json_object_get(j, "Token"));
	*expires_ms = parse_expiration(json_string_value(json_object_get(j, "Expiration")));
	if (code == NULL || strcmp(code, "Success") != 0 || id == NULL || *id == '\0' ||
	    secret == NULL || *secret == '\0' || *expires_ms < 0) {
		buf_addf(err, "%s: not the credentials of role %s (Code %s)", url, role,
		    code ? code : "missing");
		goto out;
	}
	out->access_key_id = xstrdup(id);
	out->secret_access_key = xstrdup(secret);
	out->session_token = token != NULL && *token != '\0' ? xstrdup(token) : NULL;
	rc = 0;
out:
	json_decref(j);
	if (a.b.p != NULL)
		explicit_bzero(a.b.p, a.b.len);
	buf_free(&a.b);
	if (tok != NULL)
		explicit_bzero(tok, strlen(tok));
	free(tok);
	free(role);
	free(url);
	curl_easy_cleanup(h);
	return rc;
}
