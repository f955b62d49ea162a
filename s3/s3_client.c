/* The client: one reused CURL handle, signed requests, retries. */
#include "s3/s3_internal.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/util.h"

#define RESP_CAP (8 * 1024 * 1024)
/* A role's keys are renewed when less than this is left of them ... */
#define CREDS_RENEW_MS (5 * 60 * 1000)
/* ... asking at most this often (while the service fails, or gives keys
 * that expire sooner than that) */
#define CREDS_ASK_MS 5000

struct s3_client {
	struct s3_settings s;
	struct s3_endpoint ep;
	CURL *curl;
	char err[1024];
	uint64_t rng;
	char *server_date;      /* Date header of the last answer */
	int fail_fast;          /* s3_client_fail_fast */
	int unreachable;        /* the last request failed for want of a connection */
	int64_t creds_asked_ms; /* when the role's keys were last asked for */
};

/* Per-attempt transfer state handed to the curl callbacks. */
struct xfer {
	struct s3_client *c;
	struct s3_req *r;
	uint64_t sent;
	uint64_t out_start;
	int write_errno;
	int read_errno;
	int unreachable; /* no connection was made: refused, the name not resolved, or
	                  * nothing answered within the connect timeout */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_init_rc;

static void curl_init_once(void);
static void copy_settings(struct s3_settings *dst, const struct s3_settings *src);
static size_t on_write(char *p, size_t sz, size_t n, void *u);
static size_t on_read(char *p, size_t sz, size_t n, void *u);
static size_t on_header(char *p, size_t sz, size_t n, void *u);
static struct curl_slist *sign_headers(struct s3_client *c, struct s3_req *r, const char *host,
    const char *path);
static void set_method(struct s3_client *c, struct s3_req *r, struct xfer *x);
static void set_limits(struct s3_client *c);
static long connect_ms(const struct s3_client *c);
static CURLcode attempt(struct s3_client *c, struct s3_req *r, struct xfer *x);
static enum s3_result classify_curl(struct s3_client *c, struct s3_req *r, struct xfer *x,
    CURLcode cc);
static enum s3_result classify_http(struct s3_client *c, struct s3_req *r);
static enum s3_result classify_403(struct s3_client *c, struct s3_req *r, const char *code);
static long skew_minutes(const struct s3_client *c);
static void backoff(struct s3_client *c, int attempt_no);
static int rewind_output(struct s3_req *r, uint64_t start);
static void renew_creds(struct s3_client *c);

static void
curl_init_once(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

static void
copy_settings(struct s3_settings *dst, const struct s3_settings *src)
{
	*dst = *src;
	dst->bucket = xstrdup(src->bucket ? src->bucket : "");
	dst->prefix = xstrdup(src->prefix ? src->prefix : "");
	dst->endpoint = xstrdup(src->endpoint ? src->endpoint : "");
	dst->region = xstrdup(src->region && *src->region ? src->region : "us-east-1");
	dst->ca_file = src->ca_file && *src->ca_file ? xstrdup(src->ca_file) : NULL;
	dst->creds.access_key_id =
	    xstrdup(src->creds.access_key_id ? src->creds.access_key_id : "");
	dst->creds.secret_access_key =
	    xstrdup(src->creds.secret_access_key ? src->creds.secret_access_key : "");
	dst->creds.session_token = src->creds.session_token && *src->creds.session_token ?
	    xstrdup(src->creds.session_token) :
	    NULL;
	dst->creds.process = src->creds.process ? xstrdup(src->creds.process) : NULL;
	dst->creds.process_profile =
	    src->creds.process_profile ? xstrdup(src->creds.process_profile) : NULL;
	if (dst->part_size < 5 * 1024 * 1024)
		dst->part_size = 5 * 1024 * 1024;
	if (dst->max_attempts < 1)
		dst->max_attempts = 1;
}

struct s3_client *
s3_client_new(const struct s3_settings *s, struct buf *err)
{
	struct s3_client *c;
	char *url;

	pthread_once(&curl_once, curl_init_once);
	if (curl_init_rc < 0) {
		buf_addstr(err, "libcurl could not be initialised");
		return NULL;
	}
	if (s3_settings_check(s, err) < 0)
		return NULL;
	c = xcalloc(1, sizeof *c);
	copy_settings(&c->s, s);
	c->creds_asked_ms = clock_wall_ms(); /* s3_config_from just did */
	url = s3_settings_url(&c->s);
	if (s3_endpoint_parse(url, &c->ep, err) < 0 || (c->curl = curl_easy_init()) == NULL) {
		if (c->ep.host != NULL)
			buf_addstr(err, "libcurl could not create a handle");
		free(url);
		s3_client_free(&c);
		return NULL;
	}
	free(url);
	c->rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)c;
	return c;
}

void
s3_client_free(struct s3_client **cp)
{
	struct s3_client *c = *cp;

	if (c == NULL)
		return;
	if (c->curl != NULL)
		curl_easy_cleanup(c->curl);
	s3_endpoint_clear(&c->ep);
	s3_settings_clear(&c->s);
	free(c->server_date);
	free(c);
	*cp = NULL;
}

const char *
s3_client_last_error(const struct s3_client *c)
{
	return c->err;
}

const struct s3_settings *
s3_client_settings(const struct s3_client *c)
{
	return &c->s;
}

enum s3_result
s3_fail(struct s3_client *c, enum s3_result r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof c->err, fmt, ap);
	va_end(ap);
	return r;
}

char *
s3_full_key(const struct s3_client *c, const char *key)
{
	const char *p = c->s.prefix;
	size_t n = strlen(p);

	while (*p == '/')
		p++, n--;
	while (n > 0 && p[n - 1] == '/')
		n--;
	if (n == 0)
		return xstrdup(key);
	return xasprintf("%.*s/%s", (int)n, p, key);
}

void
s3_req_clear(struct s3_req *r)
{
	buf_free(&r->resp);
	free(r->etag);
	r->etag = NULL;
}

/* 2xx bodies of streamed GETs go to out_fd; everything else is kept (capped)
 * in r->resp for XML and error messages. */
static size_t
on_write(char *p, size_t sz, size_t n, void *u)
{
	struct xfer *x = u;
	size_t len = sz * n;
	long code = 0;

	curl_easy_getinfo(x->c->curl, CURLINFO_RESPONSE_CODE, &code);
	if (x->r->out_mem != NULL && code >= 200 && code < 300) {
		curl_off_t cl = -1;

		/* said at once when the answer's length is known: nothing read for nothing */
		curl_easy_getinfo(x->c->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
		if (len > x->r->out_cap - x->r->received ||
		    (cl >= 0 && (uint64_t)cl > x->r->out_cap)) {
			x->r->out_too_big = 1;
			x->write_errno = EFBIG;
			return 0;
		}
		memcpy(x->r->out_mem + x->r->received, p, len);
		x->r->received += len;
		return len;
	}
	x->r->received += len;
	if (x->r->out_fd >= 0 && code >= 200 && code < 300) {
		if (fs_write_all(x->r->out_fd, p, len) < 0) {
			x->write_errno = errno;
			return 0;
		}
		return len;
	}
	if (x->r->resp.len < RESP_CAP)
		buf_add(&x->r->resp, p,
		    len < RESP_CAP - x->r->resp.len ? len : RESP_CAP - x->r->resp.len);
	return len;
}

static size_t
on_read(char *p, size_t sz, size_t n, void *u)
{
	struct xfer *x = u;
	const struct s3_body *b = x->r->body;
	uint64_t left = b->len - x->sent;
	size_t want = sz * n < left ? sz * n : (size_t)left;
	ssize_t got;

	if (want == 0)
		return 0;
	if (b->mem != NULL) {
		memcpy(p, (const char *)b->mem + x->sent, want);
		got = (ssize_t)want;
	} else {
		do
			got = pread(b->fd, p, want, (off_t)(b->off + x->sent));
		while (got < 0 && errno == EINTR);
		if (got <= 0) {
			x->read_errno = got < 0 ? errno : EIO;
			return CURL_READFUNC_ABORT;
		}
	}
	x->sent += (uint64_t)got;
	return (size_t)got;
}

/* Keeps the ETag and Date of the final answer (a new status line resets). */
static size_t
on_header(char *p, size_t sz, size_t n, void *u)
{
	struct xfer *x = u;
	size_t len = sz * n, vl;
	char **slot = NULL;
	const char *v;

	if (len > 5 && strncmp(p, "HTTP/", 5) == 0) {
		free(x->r->etag);
		x->r->etag = NULL;
	} else if (len > 5 && strncasecmp(p, "etag:", 5) == 0) {
		slot = &x->r->etag, v = p + 5;
	} else if (len > 5 && strncasecmp(p, "date:", 5) == 0) {
		slot = &x->c->server_date, v = p + 5;
	}
	if (slot == NULL)
		return len;
	while (v < p + len && (*v == ' ' || *v == '\t'))
		v++;
	vl = (size_t)(p + len - v);
	while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
		vl--;
	free(*slot);
	*slot = xstrndup(v, vl);
	return len;
}

/* Signs host, x-amz-content-sha256, x-amz-date and (with a session token)
 * x-amz-security-token, and returns the header list curl sends. */
static struct curl_slist *
sign_headers(struct s3_client *c, struct s3_req *r, const char *host, const char *path)
{
	const char *hash = r->body ? r->body->sha256 : S3_EMPTY_SHA256;
	const char *token = c->s.creds.session_token;
	struct s3_kv h[4] = { { "host", host }, { "x-amz-content-sha256", hash },
		{ "x-amz-date", NULL }, { "x-amz-security-token", token } };
	struct s3_sign_req sr = { r->method, path, r->query, r->nquery, h, token ? 4 : 3, hash,
		NULL, c->s.region, "s3" };
	struct curl_slist *l;
	char date[32];
	struct tm tm;
	time_t now = time(NULL);

	gmtime_r(&now, &tm);
	strftime(date, sizeof date, "%Y%m%dT%H%M%SZ", &tm);
	h[2].value = sr.amz_date = date;
	l = s3_signed_header_list(&sr, &c->s.creds);
	return curl_slist_append(l, "Content-Type:");
}

struct curl_slist *
s3_signed_header_list(const struct s3_sign_req *sr, const struct s3_creds *cr)
{
	struct curl_slist *l = NULL;
	char *auth = s3_authorization(sr, cr), *line;

	for (size_t i = 0; i < sr->nheaders; i++) {
		line = xasprintf("%s: %s", sr->headers[i].name, sr->headers[i].value);
		l = curl_slist_append(l, line);
		s3_wipe_str(line);
	}
	line = xasprintf("Authorization: %s", auth);
	l = curl_slist_append(l, line);
	l = curl_slist_append(l, "Expect:");
	free(line);
	free(auth);
	return l;
}

static void
set_method(struct s3_client *c, struct s3_req *r, struct xfer *x)
{
	curl_off_t len = r->body ? (curl_off_t)r->body->len : 0;
	CURL *h = c->curl;

	if (r->head) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (strcmp(r->method, "PUT") == 0) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, len);
	} else if (strcmp(r->method, "POST") == 0) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, len);
	} else if (strcmp(r->method, "GET") != 0) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
	}
	if (r->body != NULL) {
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(h, CURLOPT_READDATA, x);
	}
}

static long
connect_ms(const struct s3_client *c)
{
	long ms = c->s.connect_timeout_ms, cap = c->s.fail_fast_connect_ms;

	/* a fail-fast client's connection (TCP and TLS) gets at most
	 * s3.fetch_connect_timeout_ms: an endpoint behind a firewall that drops
	 * packets answers nothing, and each fetch a wrapper waits on would
	 * otherwise last s3.connect_timeout_ms (5 s) */
	return c->fail_fast && cap > 0 && (ms <= 0 || ms > cap) ? cap : ms;
}

static void
set_limits(struct s3_client *c)
{
	CURL *h = c->curl;

	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	/* a pack's body in 256 KiB reads, not curl's 16 KiB: a prefetch of
	 * ws-small's 55 packs took 7 % less CPU (docs/bench.md) */
	curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 256L * 1024);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms(c));
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, c->s.low_speed_limit);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, c->s.low_speed_time_s);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->s.total_timeout_ms);
	if (c->s.ca_file != NULL)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->s.ca_file);
}

/* One signed try. The handle is reset (its connection cache survives). */
static CURLcode
attempt(struct s3_client *c, struct s3_req *r, struct xfer *x)
{
	char *host, *path, *epath, *query, *url;
	struct curl_slist *hdrs;
	CURLcode cc;

	s3_endpoint_target(&c->ep, c->s.virtual_hosted, c->s.bucket, r->key, &host, &path);
	epath = s3_uri_encode(path, 1);
	query = s3_canonical_query(r->query, r->nquery);
	url = xasprintf("%s://%s%s%s%s", c->ep.https ? "https" : "http", host, epath,
	    *query ? "?" : "", query);
	hdrs = sign_headers(c, r, host, path);
	curl_easy_reset(c->curl);
	set_limits(c);
	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(c->curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c->curl, CURLOPT_HEADERDATA, x);
	set_method(c, r, x);
	log_debug("s3: %s %s", r->method, url);
	cc = curl_easy_perform(c->curl);
	curl_slist_free_all(hdrs);
	free(host);
	free(path);
	free(epath);
	free(query);
	free(url);
	return cc;
}

static enum s3_result
classify_curl(struct s3_client *c, struct s3_req *r, struct xfer *x, CURLcode cc)
{
	curl_off_t started = 0;

	if (cc == CURLE_WRITE_ERROR && x->write_errno != 0)
		return s3_fail(c, S3_LOCAL, "cannot write the download of %s: %s", r->key,
		    strerror(x->write_errno));
	if (cc == CURLE_ABORTED_BY_CALLBACK && x->read_errno != 0)
		return s3_fail(c, S3_LOCAL, "cannot read the upload of %s: %s", r->key,
		    strerror(x->read_errno));
	if (cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE)
		return s3_fail(c, S3_AUTH,
		    "S3 request to %s: the server's TLS certificate is not trusted (%s); set "
		    "s3.ca_file (KACHE_S3_CA_FILE) to the PEM file of the CA that signed it",
		    c->ep.host, curl_easy_strerror(cc));
	x->unreachable = cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST ||
	    cc == CURLE_COULDNT_RESOLVE_PROXY;
	/* nothing answered the connection within its time: the transfer never
	 * began (its pre-transfer time is 0). Not the connect time, which is 0
	 * too for a kept-alive connection reused, whose request was sent and
	 * merely not answered in time: a slow remote, retried */
	if (cc == CURLE_OPERATION_TIMEDOUT && x->sent == 0 && r->received == 0 &&
	    curl_easy_getinfo(c->curl, CURLINFO_PRETRANSFER_TIME_T, &started) == CURLE_OK &&
	    started == 0) {
		x->unreachable = 1;
		return s3_fail(c, S3_TRANSIENT,
		    "S3 request to %s: no connection within %ld ms; check KACHE_S3_ENDPOINT "
		    "and the network",
		    c->ep.host, connect_ms(c));
	}
	if (cc == CURLE_OPERATION_TIMEDOUT)
		return s3_fail(c, S3_TRANSIENT,
		    "S3 request to %s timed out (%s); check "
		    "KACHE_S3_ENDPOINT and the network",
		    c->ep.host, curl_easy_strerror(cc));
	if (cc == CURLE_PARTIAL_FILE)
		return s3_fail(c, S3_TRANSIENT,
		    "S3 answer for %s was truncated (%llu bytes "
		    "received)",
		    r->key ? r->key : c->s.bucket, (unsigned long long)r->received);
	return s3_fail(c, S3_TRANSIENT,
	    "S3 request to %s failed: %s; check KACHE_S3_ENDPOINT "
	    "and the network",
	    c->ep.host, curl_easy_strerror(cc));
}

/* Minutes between the server's Date header and our clock; 0 when unknown. */
static long
skew_minutes(const struct s3_client *c)
{
	long s;

	return s3_client_clock_skew(c, &s) == 0 ? -s / 60 : 0;
}

void
s3_client_fail_fast(struct s3_client *c, int on)
{
	c->fail_fast = on != 0;
}

int
s3_client_unreachable(const struct s3_client *c)
{
	return c->unreachable;
}

int
s3_client_clock_skew(const struct s3_client *c, long *seconds)
{
	struct tm tm;
	const char *end;

	if (c->server_date == NULL)
		return -1;
	memset(&tm, 0, sizeof tm);
	end = strptime(c->server_date, "%a, %d %b %Y %H:%M:%S", &tm);
	if (end == NULL || (*end != '\0' && strcmp(end, " GMT") != 0))
		return -1;
	*seconds = (long)(timegm(&tm) - time(NULL));
	return 0;
}

static enum s3_result
classify_403(struct s3_client *c, struct s3_req *r, const char *code)
{
	long skew = skew_minutes(c);

	if ((code && strcmp(code, "RequestTimeTooSkewed") == 0) || labs(skew) >= 15)
		return s3_fail(c, S3_AUTH,
		    "S3 refused the request: RequestTimeTooSkewed: the "
		    "machine clock is off by %ld minutes from the server's; fix the clock (NTP)",
		    skew);
	return s3_fail(c, S3_AUTH,
	    "S3 denied access to bucket %s (403 %s); check credentials "
	    "(KACHE_S3_ACCESS_KEY_ID, AWS_ACCESS_KEY_ID or the profile) and the bucket policy",
	    c->s.bucket, code ? code : "Forbidden");
}

static enum s3_result
classify_http(struct s3_client *c, struct s3_req *r)
{
	char *code = s3_xml_text(r->resp.p ? r->resp.p : "", r->resp.len, "Code");
	enum s3_result res;
	long st = r->status;

	if (st == 403)
		res = classify_403(c, r, code);
	else if (st == 404 && code && strcmp(code, "NoSuchBucket") == 0)
		res = s3_fail(c, S3_NO_BUCKET,
		    "bucket '%s' does not exist at %s; check "
		    "KACHE_S3_BUCKET and KACHE_S3_ENDPOINT",
		    c->s.bucket, c->ep.host);
	else if (st == 404)
		res = s3_fail(c, S3_NOT_FOUND, "%s: not found", r->key ? r->key : c->s.bucket);
	else if (st >= 500 || st == 429 || st == 408)
		res = s3_fail(c, S3_TRANSIENT, "S3 answered %ld %s", st, code ? code : "");
	else if (st == 301 || st == 307 ||
	    (code && strcmp(code, "AuthorizationHeaderMalformed") == 0))
		res = s3_fail(c, S3_BAD_REQUEST,
		    "S3 answered %ld %s: the bucket lives elsewhere; "
		    "check KACHE_S3_REGION (now %s) and KACHE_S3_ENDPOINT",
		    st, code ? code : "", c->s.region);
	else
		res = s3_fail(c, S3_BAD_REQUEST, "S3 answered %ld %s for %s %s", st,
		    code ? code : "", r->method, r->key ? r->key : c->s.bucket);
	free(code);
	return res;
}

/* Equal jitter: half the capped exponential delay, plus a random half. */
static void
backoff(struct s3_client *c, int attempt_no)
{
	long delay = c->s.backoff_base_ms;
	struct timespec ts;

	for (int i = 1; i < attempt_no && delay < c->s.backoff_cap_ms; i++)
		delay *= 2;
	if (delay > c->s.backoff_cap_ms)
		delay = c->s.backoff_cap_ms;
	c->rng ^= c->rng << 13;
	c->rng ^= c->rng >> 7;
	c->rng ^= c->rng << 17;
	delay = delay / 2 + (long)(c->rng % (uint64_t)(delay / 2 + 1));
	ts.tv_sec = delay / 1000;
	ts.tv_nsec = (delay % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int
rewind_output(struct s3_req *r, uint64_t start)
{
	if (r->out_fd < 0)
		return 0;
	if (ftruncate(r->out_fd, (off_t)start) < 0 || lseek(r->out_fd, (off_t)start, SEEK_SET) < 0)
		return -1;
	return 0;
}

void
s3_req_init(struct s3_req *r, const char *method, const char *key)
{
	memset(r, 0, sizeof *r);
	r->method = method;
	r->key = key;
	r->out_fd = -1;
	r->head = strcmp(method, "HEAD") == 0;
	buf_init(&r->resp);
}

static enum s3_result
request_once(struct s3_client *c, struct s3_req *r, struct xfer *x)
{
	curl_off_t cl = -1;
	CURLcode cc;

	buf_reset(&r->resp);
	r->received = r->content_length = 0;
	r->status = 0;
	memset(x, 0, sizeof *x);
	x->c = c;
	x->r = r;
	cc = attempt(c, r, x);
	if (cc != CURLE_OK)
		return classify_curl(c, r, x, cc);
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_getinfo(c->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
	if (cl >= 0)
		r->content_length = (uint64_t)cl;
	if (r->status < 200 || r->status >= 300)
		return classify_http(c, r);
	if (!r->head && cl >= 0 && r->received != (uint64_t)cl)
		return s3_fail(c, S3_TRANSIENT,
		    "S3 answer for %s was truncated: %llu of %lld "
		    "bytes",
		    r->key ? r->key : c->s.bucket, (unsigned long long)r->received, (long long)cl);
	c->err[0] = '\0';
	return S3_OK;
}

/* A role's keys, asked for again before they expire; the old
 * ones are used until then when that fails. */
static void
renew_creds(struct s3_client *c)
{
	int64_t now = clock_wall_ms();
	struct s3_creds fresh = { 0 };
	int role = c->s.creds.role;
	const char *whose = role == S3_ROLE_PROCESS ? "credential_process's" :
	    role == S3_ROLE_ASSUMED                 ? "assumed role's" :
	                                              "role's";
	struct buf why;

	if (c->s.creds.expires_ms == 0 || now < c->s.creds.expires_ms - CREDS_RENEW_MS ||
	    now - c->creds_asked_ms < CREDS_ASK_MS)
		return;
	c->creds_asked_ms = now;
	buf_init(&why);
	if ((role == S3_ROLE_PROCESS ?
	            s3_process_creds(c->s.creds.process, c->s.creds.process_profile, &fresh, &why) :
	            role == S3_ROLE_ASSUMED ?
	            s3_profile_assume(c->s.creds.process_profile, c->s.region, &fresh, &why) :
	            s3_role_creds(role, c->s.region, &fresh, &why)) == 0) {
		s3_creds_clear(&c->s.creds);
		c->s.creds = fresh;
		log_info("s3: the %s keys renewed; they expire in %lld s", whose,
		    (long long)((fresh.expires_ms - now) / 1000));
	} else {
		s3_creds_clear(&fresh);
		log_warnx("s3: the %s keys could not be renewed (%s); the old ones serve "
		          "until they expire, in %lld s",
		    whose, why.p, (long long)((c->s.creds.expires_ms - now) / 1000));
	}
	buf_free(&why);
}

/* Retries TRANSIENT answers with back-off, up to max_attempts, but never an
 * endpoint that could not be reached (refused, not resolved, no connection
 * within the connect timeout) when the client fails fast. Streamed
 * output is rewound before each try and after a final failure. Failures are
 * logged here, once; a miss (NOT_FOUND) only at debug level. */
enum s3_result
s3_request(struct s3_client *c, struct s3_req *r)
{
	enum s3_result res;
	struct xfer x;
	off_t start = 0;
	size_t n;
	int not_retried = 0;

	c->unreachable = 0;
	renew_creds(c);
	if (r->out_fd >= 0 && (start = lseek(r->out_fd, 0, SEEK_CUR)) < 0)
		return s3_fail(c, S3_LOCAL, "cannot seek the download file: %s", strerror(errno));
	for (int i = 1;; i++) {
		if (rewind_output(r, (uint64_t)start) < 0)
			return s3_fail(c, S3_LOCAL, "cannot truncate the download file: %s",
			    strerror(errno));
		res = request_once(c, r, &x);
		not_retried = c->fail_fast && x.unreachable;
		if (res != S3_TRANSIENT || i >= c->s.max_attempts || not_retried)
			break;
		log_info("s3: %s (attempt %d of %d); retrying", c->err, i, c->s.max_attempts);
		backoff(c, i);
	}
	if (res == S3_TRANSIENT && (n = strlen(c->err)) < sizeof c->err) {
		if (not_retried)
			snprintf(c->err + n, sizeof c->err - n,
			    " (not retried: the remote cannot be reached)");
		else
			snprintf(c->err + n, sizeof c->err - n, " (gave up after %d attempts)",
			    c->s.max_attempts);
	}
	c->unreachable = res == S3_TRANSIENT && x.unreachable;
	if (res != S3_OK)
		(void)rewind_output(r, (uint64_t)start);
	if (res == S3_NOT_FOUND || r->out_too_big)
		log_debug("s3: %s", c->err);
	else if (res != S3_OK)
		log_info("s3: %s", c->err);
	return res;
}
