/* Endpoints: explicit schemes only, path-style or virtual-hosted targets. */
#include "s3/s3_internal.h"

#include <stdlib.h>
#include <string.h>

#include "common/util.h"

static int valid_host(const char *h, size_t n);
static int valid_port(const char *p, size_t n);

static int
valid_host(const char *h, size_t n)
{
	if (n == 0)
		return 0;
	if (h[0] == '[')
		return h[n - 1] == ']' && n > 2;
	for (size_t i = 0; i < n; i++)
		if (!(h[i] == '-' || h[i] == '.' || h[i] == '_' || (h[i] >= 'a' && h[i] <= 'z') ||
		        (h[i] >= 'A' && h[i] <= 'Z') || (h[i] >= '0' && h[i] <= '9')))
			return 0;
	return 1;
}

static int
valid_port(const char *p, size_t n)
{
	long v = 0;

	if (n == 0 || n > 5)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return 0;
		v = v * 10 + (p[i] - '0');
	}
	return v > 0 && v <= 65535;
}

/* A scheme-less endpoint is refused rather than taken as plain http: the
 * secret-signed requests would otherwise silently go out unencrypted. */
int
s3_endpoint_parse(const char *url, struct s3_endpoint *ep, struct buf *err)
{
	const char *rest, *end, *colon;

	memset(ep, 0, sizeof *ep);
	if (str_starts_with(url, "https://"))
		ep->https = 1, rest = url + 8;
	else if (str_starts_with(url, "http://"))
		rest = url + 7;
	else {
		buf_addf(err,
		    "S3 endpoint '%s' has no http:// or https:// scheme; "
		    "check KACHE_S3_ENDPOINT (e.g. https://s3.example.com or "
		    "http://127.0.0.1:9000)",
		    url);
		return -1;
	}
	end = rest + strcspn(rest, "/?#@");
	if (*end == '/' && end[1] == '\0')
		; /* a lone trailing slash is fine */
	else if (*end != '\0') {
		buf_addf(err,
		    "S3 endpoint '%s' must be only scheme://host[:port] (no path, "
		    "user or query); check KACHE_S3_ENDPOINT",
		    url);
		return -1;
	}
	colon = memrchr(rest, ':', (size_t)(end - rest));
	if (colon != NULL && memchr(colon, ']', (size_t)(end - colon)) != NULL)
		colon = NULL; /* the colon was inside [v6] */
	if (!valid_host(rest, (size_t)((colon ? colon : end) - rest)) ||
	    (colon && !valid_port(colon + 1, (size_t)(end - colon - 1)))) {
		buf_addf(err, "S3 endpoint '%s' has a bad host or port; check KACHE_S3_ENDPOINT",
		    url);
		return -1;
	}
	ep->host = xstrndup(rest, (size_t)((colon ? colon : end) - rest));
	if (colon)
		ep->port = xstrndup(colon + 1, (size_t)(end - colon - 1));
	return 0;
}

void
s3_endpoint_clear(struct s3_endpoint *ep)
{
	free(ep->host);
	free(ep->port);
	memset(ep, 0, sizeof *ep);
}

char *
s3_settings_url(const struct s3_settings *s)
{
	if (s->endpoint != NULL && *s->endpoint != '\0')
		return xstrdup(s->endpoint);
	return xasprintf("https://s3.%s.amazonaws.com",
	    s->region != NULL && *s->region != '\0' ? s->region : "us-east-1");
}

int
s3_settings_check(const struct s3_settings *s, struct buf *err)
{
	struct s3_endpoint ep = { 0 };
	char *url;
	int rc;

	if (s->bucket == NULL || *s->bucket == '\0') {
		buf_addstr(err, "no S3 bucket configured; set KACHE_S3_BUCKET");
		return -1;
	}
	url = s3_settings_url(s);
	rc = s3_endpoint_parse(url, &ep, err);
	s3_endpoint_clear(&ep);
	free(url);
	return rc;
}

void
s3_endpoint_target(const struct s3_endpoint *ep, int virtual_hosted, const char *bucket,
    const char *key, char **host, char **path)
{
	const char *port = ep->port ? ep->port : "";
	const char *sep = ep->port ? ":" : "";

	if (virtual_hosted) {
		*host = xasprintf("%s.%s%s%s", bucket, ep->host, sep, port);
		*path = xasprintf("/%s", key ? key : "");
	} else {
		*host = xasprintf("%s%s%s", ep->host, sep, port);
		*path = key ? xasprintf("/%s/%s", bucket, key) : xasprintf("/%s", bucket);
	}
}
