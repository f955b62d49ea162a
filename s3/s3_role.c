/* Keys a role hands out: a web identity's (a token file exchanged with STS
 * for AWS_ROLE_ARN's keys: EKS, a CI's OIDC), which the credentials chain
 * (s3_creds_resolve) takes before the credentials file; then, its last
 * links, the container's (ECS, CodeBuild: the agent named by
 * AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI), else the EC2
 * instance's (IMDSv2: a session token first, then the role's name, then its
 * keys). Every answer is bounded in size and time and checked; the keys
 * expire, and the client renews them from the same source (s3_client.c). */
#include <curl/curl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/fs.h"
#include "s3/s3_internal.h"
#include "s3/s3_sign.h"

#define IMDS_DEFAULT "http://169.254.169.254"
#define CONTAINER_AGENT "http://169.254.170.2"
#define STS_GLOBAL "https://sts.amazonaws.com/"
#define REGION_MAX 40
#define ROLE_TIMEOUT_MS 1000L /* each request, connection included (as the AWS SDKs) */
#define STS_TIMEOUT_MS 5000L  /* STS over the internet, TLS included */
#define ROLE_ANSWER_MAX 16384
#define ROLE_AUTH_MAX 4096 /* AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE */
#define IMDS_TOKEN_TTL_HEADER "X-aws-ec2-metadata-token-ttl-seconds: 21600"

struct answer {
	struct buf b;
	int too_big;
	long timeout_ms; /* 0: ROLE_TIMEOUT_MS */
	int via_proxy;   /* the environment's proxy (https_proxy...), as the S3
	                  * requests: STS is on the internet */
	long code;       /* the HTTP status of the last answer; 0: none */
	int lost;        /* the last request timed out once connected */
};

static void wipe(struct buf *b);
static size_t on_data(char *p, size_t size, size_t n, void *arg);
static int request(CURL *h, const char *url, int put, const char *header, const char *post,
    struct answer *a, struct buf *err);
static int request_list(CURL *h, const char *url, int put, struct curl_slist *hdr, const char *post,
    struct answer *a, struct buf *err);
static int sts_keys(CURL *h, const char *url, const char *action, struct curl_slist *hdr,
    const char *form, struct s3_creds *out, struct buf *err);
static int64_t parse_expiration(const char *s);
static int role_name_ok(const char *s, size_t n);
static int keys_of(const struct answer *a, const char *url, struct s3_creds *out, struct buf *err);
static int instance_creds(CURL *h, struct s3_creds *out, struct buf *err);
static int container_creds(CURL *h, struct s3_creds *out, struct buf *err);
static int container_url_ok(const char *url);
static char *container_auth(struct buf *err);
static char *sts_field(const struct answer *a, const char *name);
static char *sts_url(const char *region, struct buf *err);
static int web_identity_creds(CURL *h, const char *region, struct s3_creds *out, struct buf *err);

/* A buffer that held a secret: zeroed, then freed (a string: s3_wipe_str). */
static void
wipe(struct buf *b)
{
	if (b->p != NULL)
		explicit_bzero(b->p, b->len);
	buf_free(b);
}

/* The variable name is "true" (any case), as the AWS SDKs read their switches. */
static int
env_true(const char *name)
{
	const char *v = getenv(name);

	return v != NULL && strcasecmp(v, "true") == 0;
}

static int
imds_disabled(void)
{
	return env_true("AWS_EC2_METADATA_DISABLED");
}

/* The token's PUT was refused as unknown (403, 404, 405) or went unanswered
 * once connected (the instance's hop limit of 1 drops its answer to a
 * container): as the AWS SDKs, the instance is then asked without a token
 * (IMDSv1), unless AWS_EC2_METADATA_V1_DISABLED=true. */
static int
token_unknown(const struct answer *a)
{
	return a->lost || a->code == 403 || a->code == 404 || a->code == 405;
}

static int
container_named(void)
{
	const char *rel = getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");

	return (rel != NULL && *rel != '\0') || (full != NULL && *full != '\0');
}

static size_t
on_data(char *p, size_t size, size_t n, void *arg)
{
	struct answer *a = arg;

	if (a->b.len + size * n > ROLE_ANSWER_MAX) {
		a->too_big = 1;
		return 0;
	}
	buf_add(&a->b, p, size * n);
	return size * n;
}

/* One GET (a PUT when put, a POST of the form post when it is not NULL) with
 * one header line, never through a proxy; the body in a, NUL-terminated. 0,
 * or -1 with why in err. */
static int
request(CURL *h, const char *url, int put, const char *header, const char *post, struct answer *a,
    struct buf *err)
{
	struct curl_slist *hdr = header != NULL ? curl_slist_append(NULL, header) : NULL;
	int rc = request_list(h, url, put, hdr, post, a, err);

	curl_slist_free_all(hdr);
	return rc;
}

/* request() with a list of header lines (hdr: the caller's). */
static int
request_list(CURL *h, const char *url, int put, struct curl_slist *hdr, const char *post,
    struct answer *a, struct buf *err)
{
	long code = 0;
	CURLcode cc;

	buf_reset(&a->b);
	a->too_big = 0;
	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	if (!a->via_proxy) /* the instance's and a container's own addresses */
		curl_easy_setopt(h, CURLOPT_PROXY, "");
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
	    a->timeout_ms ? a->timeout_ms : ROLE_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, a->timeout_ms ? a->timeout_ms : ROLE_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, a);
	if (put)
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
	if (post != NULL)
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, post);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	a->code = code;
	a->lost = 0;
	if (cc == CURLE_OPERATION_TIMEDOUT) {
		curl_off_t connected = 0;

		curl_easy_getinfo(h, CURLINFO_CONNECT_TIME_T, &connected);
		a->lost = connected > 0;
	}
	if (cc == CURLE_OK && code == 200) {
		buf_addch(&a->b, '\0');
		a->b.len--;
		return 0;
	}
	if (a->too_big)
		buf_addf(err, "%s answered more than %d bytes", url, ROLE_ANSWER_MAX);
	else if (cc != CURLE_OK)
		buf_addf(err, "%s: %s", url, curl_easy_strerror(cc));
	else
		buf_addf(err, "%s answered HTTP %ld", url, code);
	return -1;
}

/* "2026-12-01T23:59:59Z" (a fraction allowed) in milliseconds since the
 * epoch; -1 when it is not. */
static int64_t
parse_expiration(const char *s)
{
	int64_t ms;

	return s != NULL && s3_xml_parse_time(s, strlen(s), &ms) == 0 ? ms : -1;
}

/* A role's name as IMDS lists it: [A-Za-z0-9+=,.@_-]{1,64}. */
static int
role_name_ok(const char *s, size_t n)
{
	static const char allowed[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                              "0123456789+=,.@_-";

	return n >= 1 && n <= 64 && strspn(s, allowed) == n;
}

/* The keys' JSON (both services'): a key id, a secret, an expiration, and
 * a Code of Success when there is one (IMDS's). */
static int
keys_of(const struct answer *a, const char *url, struct s3_creds *out, struct buf *err)
{
	json_t *j = json_loadb(a->b.p, a->b.len, 0, NULL);
	const char *code = json_string_value(json_object_get(j, "Code"));
	const char *id = json_string_value(json_object_get(j, "AccessKeyId"));
	const char *secret = json_string_value(json_object_get(j, "SecretAccessKey"));
	const char *token = json_string_value(json_object_get(j, "Token"));
	int64_t exp = parse_expiration(json_string_value(json_object_get(j, "Expiration")));
	int ok = (code == NULL || strcmp(code, "Success") == 0) && id != NULL && *id != '\0' &&
	    secret != NULL && *secret != '\0' && exp >= 0;

	if (ok) {
		out->access_key_id = xstrdup(id);
		out->secret_access_key = xstrdup(secret);
		out->session_token = token != NULL && *token != '\0' ? xstrdup(token) : NULL;
		out->expires_ms = exp;
	} else {
		buf_addf(err,
		    "%s: not a role's keys (%s; a key id, a secret and an Expiration are needed)",
		    url,
		    j == NULL        ? "not JSON" :
		        code != NULL ? code :
		                       "no Code");
	}
	json_decref(j);
	return ok ? 0 : -1;
}

static int
instance_creds(CURL *h, struct s3_creds *out, struct buf *err)
{
	const char *ep = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	const char *base = ep != NULL && *ep != '\0' ? ep : IMDS_DEFAULT;
	struct answer a = { 0 };
	char *url = NULL, *tok = NULL;
	size_t blen = strlen(base), n;
	struct buf v1, *e = err; /* e: where the requests' failures are said */
	int rc = -1;

	while (blen > 0 && base[blen - 1] == '/')
		blen--;
	if (strncmp(base, "http://", 7) != 0) {
		buf_addf(err, "AWS_EC2_METADATA_SERVICE_ENDPOINT '%s' is not http://host[:port]",
		    base);
		return -1;
	}
	buf_init(&a.b);
	buf_init(&v1);
	url = xasprintf("%.*s/latest/api/token", (int)blen, base);
	if (request(h, url, 1, IMDS_TOKEN_TTL_HEADER, NULL, &a, &v1) == 0) {
		tok =
		    xasprintf("X-aws-ec2-metadata-token: %.*s", (int)strcspn(a.b.p, "\r\n"), a.b.p);
	} else if (!token_unknown(&a) || env_true("AWS_EC2_METADATA_V1_DISABLED")) {
		buf_add(err, v1.p, v1.len);
		if (token_unknown(&a))
			buf_addstr(err, " (AWS_EC2_METADATA_V1_DISABLED=true: no IMDSv1)");
		goto out;
	} else { /* the PUT's failure is said only if IMDSv1 fails too */
		buf_addstr(&v1, "; without a token (IMDSv1): ");
		e = &v1;
	}
	free(url);
	url = xasprintf("%.*s/latest/meta-data/iam/security-credentials/", (int)blen, base);
	if (request(h, url, 0, tok, NULL, &a, e) < 0)
		goto out;
	if (!role_name_ok(a.b.p, n = strcspn(a.b.p, "\r\n"))) {
		buf_addf(e, "%s names no instance role", url);
		goto out;
	}
	free(url);
	url = xasprintf("%.*s/latest/meta-data/iam/security-credentials/%.*s", (int)blen, base,
	    (int)n, a.b.p);
	if (request(h, url, 0, tok, NULL, &a, e) == 0)
		rc = keys_of(&a, url, out, e);
out:
	if (rc < 0 && e != err)
		buf_add(err, v1.p, v1.len);
	buf_free(&v1);
	wipe(&a.b);
	s3_wipe_str(tok);
	free(url);
	return rc;
}

/* As the AWS SDKs allow: https anywhere; plain http only to loopback or the
 * container agent's addresses. */
static int
container_url_ok(const char *url)
{
	static const char *const http_hosts[] = { "http://127.",
		"http://localhost:", "http://localhost/",
		"http://169.254.170.2:", "http://169.254.170.2/",
		"http://169.254.170.23:", "http://169.254.170.23/", "http://[::1]" };

	if (strncmp(url, "https://", 8) == 0)
		return 1;
	for (size_t i = 0; i < sizeof http_hosts / sizeof *http_hosts; i++)
		if (strncmp(url, http_hosts[i], strlen(http_hosts[i])) == 0)
			return 1;
	return 0;
}

/* "Authorization: <token>" from AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, else
 * AWS_CONTAINER_AUTHORIZATION_TOKEN; NULL when neither is set (or -1 said in
 * err: a file that cannot be read). */
static char *
container_auth(struct buf *err)
{
	const char *file = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	const char *tok = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");
	struct buf b;
	char *line = NULL;

	if (file != NULL && *file != '\0') {
		buf_init(&b);
		if (fs_read_file(file, &b, ROLE_AUTH_MAX) < 0 || b.len > ROLE_AUTH_MAX)
			buf_addf(err, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s cannot be read",
			    file);
		else
			line = xasprintf("Authorization: %.*s",
			    (int)strcspn(b.p ? b.p : "", "\r\n"), b.p ? b.p : "");
		wipe(&b);
		return line;
	}
	if (tok != NULL && *tok != '\0' && strcspn(tok, "\r\n") == strlen(tok))
		line = xasprintf("Authorization: %s", tok);
	return line;
}

static int
container_creds(CURL *h, struct s3_creds *out, struct buf *err)
{
	const char *rel = getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	struct answer a = { 0 };
	char *url, *auth = NULL;
	size_t said = err->len;
	int rc = -1;

	url = rel != NULL && *rel == '/' ? xasprintf("%s%s", CONTAINER_AGENT, rel) :
	                                   xstrdup(full != NULL ? full : "");
	if (!container_url_ok(url)) {
		buf_addf(err,
		    "the container's keys: %s is not https, nor http to loopback or the container "
		    "agent (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI must begin with '/')",
		    *url ? url : "an empty URL");
		free(url);
		return -1;
	}
	if (rel == NULL || *rel != '/')
		auth = container_auth(err);
	buf_init(&a.b);
	if (err->len == said && request(h, url, 0, auth, NULL, &a, err) == 0)
		rc = keys_of(&a, url, out, err);
	wipe(&a.b);
	s3_wipe_str(auth);
	free(url);
	return rc;
}

/* "<field>" of STS's answer (new string), or NULL. */
static char *
sts_field(const struct answer *a, const char *name)
{
	return s3_xml_text(a->b.p, a->b.len, name);
}

/* Where AssumeRoleWithWebIdentity goes (new string): AWS_ENDPOINT_URL_STS;
 * else, as the AWS SDKs' major versions since 2022 do, the STS endpoint of
 * the region (https://sts.<region>.amazonaws.com/; .amazonaws.com.cn in
 * China, whose partition has no global one); the global endpoint with
 * AWS_STS_REGIONAL_ENDPOINTS=legacy. NULL with why in err when the region
 * cannot be part of a host name. */
static char *
sts_url(const char *region, struct buf *err)
{
	const char *ep = getenv("AWS_ENDPOINT_URL_STS"),
	           *mode = getenv("AWS_STS_REGIONAL_ENDPOINTS");
	size_t n = strlen(region);

	if (ep != NULL && *ep != '\0')
		return xstrdup(ep);
	if (mode != NULL && strcmp(mode, "legacy") == 0)
		return xstrdup(STS_GLOBAL);
	if (n == 0 || n > REGION_MAX ||
	    strspn(region, "abcdefghijklmnopqrstuvwxyz0123456789-") != n) {
		buf_addf(err,
		    "s3.region '%s' is not a region name, and STS's endpoint is made from it; "
		    "set s3.region (KACHE_S3_REGION), or AWS_ENDPOINT_URL_STS",
		    region);
		return NULL;
	}
	return xasprintf("https://sts.%s.%s/", region,
	    strncmp(region, "cn-", 3) == 0 ? "amazonaws.com.cn" : "amazonaws.com");
}

/* AssumeRoleWithWebIdentity: the token file's token (read anew each time:
 * it is rotated) for AWS_ROLE_ARN's keys, at sts_url(region). The request is
 * not signed (the token is the proof). */
static int
web_identity_creds(CURL *h, const char *region, struct s3_creds *out, struct buf *err)
{
	const char *file = getenv("AWS_WEB_IDENTITY_TOKEN_FILE"), *arn = getenv("AWS_ROLE_ARN");
	const char *name = getenv("AWS_ROLE_SESSION_NAME");
	struct curl_slist *hdr;
	struct buf tok, form;
	char *e_arn = NULL, *e_tok = NULL, *e_name = NULL, *url;
	int rc = -1;

	if ((url = sts_url(region, err)) == NULL)
		return -1;
	buf_init(&tok);
	buf_init(&form);
	if (fs_read_file(file, &tok, ROLE_ANSWER_MAX) < 0 || tok.len == 0 ||
	    tok.len > ROLE_ANSWER_MAX) {
		buf_addf(err,
		    "AWS_WEB_IDENTITY_TOKEN_FILE %s cannot be read, or is empty or over %d "
		    "bytes",
		    file, ROLE_ANSWER_MAX);
		goto out;
	}
	e_tok = curl_easy_escape(h, tok.p, (int)strcspn(tok.p, "\r\n"));
	e_arn = curl_easy_escape(h, arn, 0);
	e_name = curl_easy_escape(h, name != NULL && *name != '\0' ? name : "kache", 0);
	buf_addf(&form,
	    "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&DurationSeconds=3600&"
	    "RoleArn=%s&RoleSessionName=%s&WebIdentityToken=%s",
	    e_arn, e_name, e_tok);
	hdr = curl_slist_append(NULL, "Content-Type: application/x-www-form-urlencoded");
	rc = sts_keys(h, url, "AssumeRoleWithWebIdentity", hdr, form.p, out, err);
	curl_slist_free_all(hdr);
out:
	wipe(&tok);
	wipe(&form);
	curl_free(e_tok);
	curl_free(e_arn);
	curl_free(e_name);
	free(url);
	return rc;
}

/* One POST of form to STS at url (action: what it asks, said in errors), its
 * answer's keys into out: 0, or -1 with why in err (STS's error code in it
 * when it gave one). */
static int
sts_keys(CURL *h, const char *url, const char *action, struct curl_slist *hdr, const char *form,
    struct s3_creds *out, struct buf *err)
{
	struct answer a = { .timeout_ms = STS_TIMEOUT_MS, .via_proxy = 1 };
	char *exp, *code;
	int rc = -1;

	buf_init(&a.b);
	if (request_list(h, url, 0, hdr, form, &a, err) < 0) {
		if ((code = sts_field(&a, "Code")) != NULL) /* STS's reason, when it gave one */
			buf_addf(err, " (%s)", code);
		free(code);
		goto out;
	}
	out->access_key_id = sts_field(&a, "AccessKeyId");
	out->secret_access_key = sts_field(&a, "SecretAccessKey");
	out->session_token = sts_field(&a, "SessionToken");
	exp = sts_field(&a, "Expiration");
	out->expires_ms = parse_expiration(exp);
	free(exp);
	if (out->access_key_id == NULL || *out->access_key_id == '\0' ||
	    out->secret_access_key == NULL || *out->secret_access_key == '\0' ||
	    out->expires_ms < 0)
		buf_addf(err, "%s: not a role's keys (%s gave no key id, secret or Expiration)",
		    url, action);
	else
		rc = 0;
out:
	wipe(&a.b);
	return rc;
}

int
s3_role_assume(const struct s3_assume *r, const char *region, const struct s3_creds *src,
    struct s3_creds *out, struct buf *err)
{
	CURL *h;
	struct curl_slist *hdr = NULL;
	struct s3_endpoint ep;
	struct buf form;
	char *url, *host, *e, date[32], hash[S3_SHA256_HEX_LEN + 1];
	const char *sign_region;
	struct tm tm;
	time_t now = time(NULL);
	int rc = -1;

	memset(out, 0, sizeof *out);
	if ((url = sts_url(region, err)) == NULL)
		return -1;
	buf_init(&form);
	if (s3_endpoint_parse(url, &ep, &form) < 0) { /* its words are about the S3 endpoint */
		buf_addf(err,
		    "STS's endpoint '%s' is not http(s)://host[:port]; check AWS_ENDPOINT_URL_STS",
		    url);
		buf_free(&form);
		free(url);
		return -1;
	}
	buf_free(&form);
	host = ep.port ? xasprintf("%s:%s", ep.host, ep.port) : xstrdup(ep.host);
	s3_endpoint_clear(&ep);
	if ((h = curl_easy_init()) == NULL) {
		buf_addstr(err, "cannot start libcurl");
		goto out0;
	}
	buf_init(&form);
	buf_addstr(&form, "Action=AssumeRole&Version=2011-06-15");
	buf_addf(&form, "&DurationSeconds=%d", r->duration_s);
	buf_addf(&form, "&RoleArn=%s", e = curl_easy_escape(h, r->role_arn, 0));
	curl_free(e);
	buf_addf(&form, "&RoleSessionName=%s", e = curl_easy_escape(h, r->session_name, 0));
	curl_free(e);
	if (r->external_id != NULL) {
		buf_addf(&form, "&ExternalId=%s", e = curl_easy_escape(h, r->external_id, 0));
		curl_free(e);
	}
	/* SigV4 for STS: the global endpoint signs for us-east-1 */
	sign_region = strcmp(url, STS_GLOBAL) == 0 ? "us-east-1" : region;
	gmtime_r(&now, &tm);
	strftime(date, sizeof date, "%Y%m%dT%H%M%SZ", &tm);
	s3_sha256_hex(form.p, form.len, hash);
	{
		struct s3_kv kv[4] = { { "content-type", "application/x-www-form-urlencoded" },
			{ "host", host }, { "x-amz-date", date },
			{ "x-amz-security-token", src->session_token } };
		struct s3_sign_req sr = { "POST", "/", NULL, 0, kv, src->session_token ? 4 : 3,
			hash, date, sign_region, "sts" };

		hdr = s3_signed_header_list(&sr, src);
	}
	rc = sts_keys(h, url, "AssumeRole", hdr, form.p, out, err);
	curl_slist_free_all(hdr);
	wipe(&form);
	curl_easy_cleanup(h);
out0:
	free(host);
	free(url);
	return rc;
}

int
s3_role_web_identity_named(void)
{
	const char *file = getenv("AWS_WEB_IDENTITY_TOKEN_FILE"), *arn = getenv("AWS_ROLE_ARN");

	return file != NULL && *file != '\0' && arn != NULL && *arn != '\0';
}

int
s3_role_creds(int source, const char *region, struct s3_creds *out, struct buf *err)
{
	CURL *h;
	int rc;

	if (source == S3_ROLE_ANY)
		source = container_named() ? S3_ROLE_CONTAINER :
		    imds_disabled()        ? S3_ROLE_NONE :
		                             S3_ROLE_INSTANCE;
	if (source == S3_ROLE_NONE)
		return -1;
	if ((h = curl_easy_init()) == NULL) {
		buf_addstr(err, "cannot start libcurl");
		return -1;
	}
	memset(out, 0, sizeof *out);
	rc = source == S3_ROLE_CONTAINER   ? container_creds(h, out, err) :
	    source == S3_ROLE_WEB_IDENTITY ? web_identity_creds(h, region, out, err) :
	                                     instance_creds(h, out, err);
	out->role = source;
	curl_easy_cleanup(h);
	return rc;
}
