/* kache-planner's client: a bounded JSON POST with libcurl (planner_client.h). */
#include "remote/planner_client.h"

#include <curl/curl.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fs.h"
#include "common/log.h"
#include "remote/session.h"

#define PLANNER_ENDPOINT_MAX 1024
#define PLANNER_TOKEN_MAX 255

struct planner_client {
	char endpoint[PLANNER_ENDPOINT_MAX + 1];
	char token[PLANNER_TOKEN_MAX + 1];
	char ca_file[PATH_MAX]; /* planner.ca_file; empty: libcurl's (the system's) */
	long timeout_ms;
};

struct sink {
	struct buf *b;
	int over;
};

static size_t on_data(char *p, size_t size, size_t n, void *arg);
static void curl_once(void);
static void http_reason(const struct buf *resp, long code, char *why, size_t whylen);
static const char *ca_file_fault(const char *path);

static pthread_once_t curl_once_ctl = PTHREAD_ONCE_INIT;
static int curl_rc;

static void
curl_once(void)
{
	curl_rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

/* Why planner.ca_file at path cannot serve (NULL: it can, or it is unset). */
static const char *
ca_file_fault(const char *path)
{
	if (path == NULL || *path == '\0')
		return NULL;
	if (strlen(path) >= PATH_MAX)
		return "too long a path";
	return fs_unreadable_why(path);
}

struct planner_client *
planner_client_open(const struct config *cfg)
{
	const char *ep = config_get(cfg, "planner.endpoint");
	const char *tok = config_get(cfg, "planner.token");
	const char *ca = config_get(cfg, "planner.ca_file"), *fault;
	int64_t t = config_get_int(cfg, "planner.timeout_ms");
	struct planner_client *pc;
	size_t n;

	if (ep == NULL || *ep == '\0')
		return NULL;
	if (strlen(ep) > PLANNER_ENDPOINT_MAX || (tok && strlen(tok) > PLANNER_TOKEN_MAX)) {
		log_warnx("planner.endpoint or planner.token too long; the planner is not used");
		return NULL;
	}
	if ((fault = ca_file_fault(ca)) != NULL) {
		log_warnx("planner.ca_file (KACHE_PLANNER_CA_FILE) %s: %s; the planner is not used "
		          "until it names a readable PEM file",
		    ca, fault);
		return NULL;
	}
	pc = xcalloc(1, sizeof *pc);
	snprintf(pc->ca_file, sizeof pc->ca_file, "%s", ca ? ca : "");
	snprintf(pc->endpoint, sizeof pc->endpoint, "%s", ep);
	n = strlen(pc->endpoint);
	while (n > 0 && pc->endpoint[n - 1] == '/') /* "http://h:1/" + "/v1/..." */
		pc->endpoint[--n] = '\0';
	snprintf(pc->token, sizeof pc->token, "%s", tok ? tok : "");
	pc->timeout_ms = t > 0 && t <= 600000 ? (long)t : 750;
	return pc;
}

void
planner_client_free(struct planner_client **pc)
{
	free(*pc);
	*pc = NULL;
}

const char *
planner_client_endpoint(const struct planner_client *pc)
{
	return pc->endpoint;
}

/* libcurl's write callback: keeps at most PLANNER_CLIENT_RESPONSE_MAX bytes,
 * stops the transfer past it. */
static size_t
on_data(char *p, size_t size, size_t n, void *arg)
{
	struct sink *s = arg;

	if (s->b->len + size * n > PLANNER_CLIENT_RESPONSE_MAX) {
		s->over = 1;
		return 0;
	}
	buf_add(s->b, p, size * n);
	return size * n;
}

/* "HTTP 401: <the server's error>" from a non-200 answer, the reason only
 * when it is a JSON object with a short string "error". */
static void
http_reason(const struct buf *resp, long code, char *why, size_t whylen)
{
	json_t *root = resp->len ? json_loadb(resp->p, resp->len, 0, NULL) : NULL;
	const char *e = root ? json_string_value(json_object_get(root, "error")) : NULL;

	snprintf(why, whylen, "HTTP %ld%s%.120s%s", code, e ? " (" : "", e ? e : "", e ? ")" : "");
	if (code == 401)
		snprintf(why + strlen(why), whylen - strlen(why),
		    ": the planner refused the token; check planner.token / KACHE_PLANNER_TOKEN");
	json_decref(root);
}

int
planner_client_post(struct planner_client *pc, const char *path, const char *body, struct buf *resp,
    char *why, size_t whylen)
{
	char *url = xasprintf("%s%s", pc->endpoint, path), *auth = NULL;
	struct curl_slist *hdr = NULL;
	struct sink s = { .b = resp, .over = 0 };
	long code = 0;
	CURLcode cc;
	CURL *c;

	pthread_once(&curl_once_ctl, curl_once);
	buf_reset(resp);
	if (curl_rc < 0 || (c = curl_easy_init()) == NULL) {
		snprintf(why, whylen, "libcurl could not start");
		free(url);
		return -1;
	}
	hdr = curl_slist_append(hdr, "Content-Type: application/json");
	if (pc->token[0] != '\0') {
		auth = xasprintf("Authorization: Bearer %s", pc->token);
		hdr = curl_slist_append(hdr, auth);
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, pc->timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, pc->timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
	if (pc->ca_file[0] != '\0')
		curl_easy_setopt(c, CURLOPT_CAINFO, pc->ca_file);
	cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	if (s.over)
		snprintf(why, whylen, "its answer is over %d bytes", PLANNER_CLIENT_RESPONSE_MAX);
	else if (cc == CURLE_OPERATION_TIMEDOUT)
		snprintf(why, whylen, "no answer within planner.timeout_ms (%ld ms)",
		    pc->timeout_ms);
	else if (cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE)
		snprintf(why, whylen,
		    "the planner's TLS certificate is not trusted (%s); set planner.ca_file "
		    "(KACHE_PLANNER_CA_FILE) to the PEM file of the CA that signed it",
		    curl_easy_strerror(cc));
	else if (cc != CURLE_OK)
		snprintf(why, whylen, "%s", curl_easy_strerror(cc));
	else if (code != 200)
		http_reason(resp, code, why, whylen);
	curl_easy_cleanup(c);
	curl_slist_free_all(hdr);
	free(auth);
	free(url);
	return cc == CURLE_OK && code == 200 && !s.over ? 0 : -1;
}

void
planner_client_build_fields(json_t *root, const char *fp, const char *toolchain, const char *target,
    const char *profile)
{
	json_object_set_new(root, "fingerprint", json_string(fp));
	if (toolchain[0])
		json_object_set_new(root, "toolchain", json_string(toolchain));
	if (target[0])
		json_object_set_new(root, "target", json_string(target));
	if (profile[0])
		json_object_set_new(root, "profile", json_string(profile));
}

int
planner_client_post_session(struct planner_client *pc, const char *fp,
    const struct remote_session *s)
{
	json_t *root = json_object(), *keys = json_array();
	char why[320], *body;
	const char *part;
	struct buf resp;
	int rc;

	planner_client_build_fields(root, fp, s->toolchain, s->target, s->profile);
	json_object_set_new(root, "created_ms", json_integer(s->created_ms));
	for (size_t i = 0; i < s->n; i++) {
		json_t *k = json_pack("{s:s, s:s, s:I, s:I}", "key", s->k[i].res, "crate",
		    s->k[i].crate, "bytes", (json_int_t)s->k[i].bytes, "order", (json_int_t)i);

		if (s->k[i].version[0] != '\0') /* crate@version: what the planner ranks by */
			json_object_set_new(k, "version", json_string(s->k[i].version));
		if ((part = remote_session_key_part(s, i)) != NULL) /* its plans name it */
			json_object_set_new(k, "part", json_string(part));
		json_array_append_new(keys, k);
	}
	json_object_set_new(root, "keys", keys);
	body = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	buf_init(&resp);
	rc = body ? planner_client_post(pc, "/v1/manifests", body, &resp, why, sizeof why) : -1;
	if (rc < 0)
		log_warnx("planner %s: session manifest %s not posted: %s", pc->endpoint, fp,
		    body ? why : "cannot encode it");
	free(body);
	buf_free(&resp);
	return rc;
}
