/* Settings from common/config and credentials from config, env or file. */
#include "s3/s3_internal.h"

#include <ini.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/util.h"

#define MIB (1024ULL * 1024ULL)

struct profile_scan {
	const char *profile;
	struct s3_creds *c;
	int seen;
};

struct process_scan {
	const char *section; /* "default" or "profile <name>" */
	char *process;       /* its credential_process, or NULL */
};

static char *aws_file(const char *env, const char *name);
static int aws_file_fault(int rc, const char *path, const char *env, struct buf *err);
static int process_cb(void *user, const char *section, const char *name, const char *value);
static int process_find(const char *profile, char **command, struct buf *err);
static char *dup_nonempty(const char *s);
static int creds_from(const char *id, const char *secret, const char *token, struct s3_creds *out);
static int ini_creds_cb(void *user, const char *section, const char *name, const char *value);
static int creds_from_file(const struct config *cfg, int ask, struct s3_creds *out,
    struct buf *err);
static int ca_file_check(const char *path, struct buf *err);
static int creds_from_file_or_role(const struct config *cfg, int ask, struct s3_creds *out,
    struct buf *err);
static int creds_resolve(const struct config *cfg, int ask, struct s3_creds *out, struct buf *err);
static int config_from(const struct config *cfg, int ask, struct s3_settings *s, struct buf *err);

const char *
s3_result_name(enum s3_result r)
{
	static const char *const names[] = { "OK", "NOT_FOUND", "AUTH", "BAD_REQUEST", "TRANSIENT",
		"NO_BUCKET", "LOCAL" };

	if ((unsigned)r < sizeof names / sizeof names[0])
		return names[r];
	return "UNKNOWN";
}

void
s3_settings_defaults(struct s3_settings *s)
{
	memset(s, 0, sizeof *s);
	s->connect_timeout_ms = 5000;
	s->fail_fast_connect_ms = 1000;
	s->low_speed_limit = 1024;
	s->low_speed_time_s = 30;
	s->total_timeout_ms = 600000;
	s->max_attempts = 5;
	s->backoff_base_ms = 100;
	s->backoff_cap_ms = 5000;
	s->multipart_threshold = 64 * MIB;
	s->part_size = 8 * MIB;
	s->upload_concurrency = 4;
}

void
s3_wipe_str(char *s)
{
	if (s != NULL)
		explicit_bzero(s, strlen(s));
	free(s);
}

void
s3_creds_clear(struct s3_creds *c)
{
	s3_wipe_str(c->access_key_id);
	s3_wipe_str(c->secret_access_key);
	s3_wipe_str(c->session_token);
	free(c->process);
	free(c->process_profile);
	c->access_key_id = c->secret_access_key = c->session_token = NULL;
	c->process = c->process_profile = NULL;
}

void
s3_settings_clear(struct s3_settings *s)
{
	free(s->bucket);
	free(s->prefix);
	free(s->endpoint);
	free(s->region);
	free(s->ca_file);
	s3_creds_clear(&s->creds);
	s->bucket = s->prefix = s->endpoint = s->region = s->ca_file = NULL;
}

static char *
dup_nonempty(const char *s)
{
	return s != NULL && *s != '\0' ? xstrdup(s) : NULL;
}

/* An AWS file: the variable env names it, else ~/.aws/<name> (new string). */
static char *
aws_file(const char *env, const char *name)
{
	const char *file = getenv(env), *home = getenv("HOME");

	return file && *file ? xstrdup(file) : xasprintf("%s/.aws/%s", home ? home : "", name);
}

/* ini_parse's rc for the AWS file at path (named by env) said in err when the
 * file could be opened but not read whole (a syntax error's line, or no
 * memory): 1; else 0. */
static int
aws_file_fault(int rc, const char *path, const char *env, struct buf *err)
{
	if (rc > 0)
		buf_addf(err,
		    "S3 credentials: line %d of %s is not `name = value` or `[profile]`; fix it "
		    "(or point %s elsewhere)",
		    rc, path, env);
	else if (rc < -1)
		buf_addf(err, "S3 credentials: %s could not be read (out of memory)", path);
	return rc > 0 || rc < -1;
}

static int
process_cb(void *user, const char *section, const char *name, const char *value)
{
	struct process_scan *ps = user;

	if (strcmp(section, ps->section) == 0 && strcmp(name, "credential_process") == 0) {
		free(ps->process);
		ps->process = value != NULL && *value != '\0' ? xstrdup(value) : NULL;
	}
	return 1;
}

/* The credential_process of profile (its section "[default]" or "[profile
 * NAME]") in AWS_CONFIG_FILE, else ~/.aws/config, into *command (new string):
 * 1; 0 when there is none (no file, no such profile, no such line); -1 with
 * why in err when the file cannot be read whole (its line said). */
static int
process_find(const char *profile, char **command, struct buf *err)
{
	char *path = aws_file("AWS_CONFIG_FILE", "config");
	struct process_scan ps = { NULL, NULL };
	char *sect =
	    strcmp(profile, "default") == 0 ? xstrdup("default") : xasprintf("profile %s", profile);
	int rc;

	ps.section = sect;
	rc = ini_parse(path, process_cb, &ps);
	free(sect);
	if (aws_file_fault(rc, path, "AWS_CONFIG_FILE", err)) {
		free(ps.process);
		ps.process = NULL;
	}
	free(path);
	*command = ps.process;
	return *command != NULL ? 1 : rc > 0 || rc < -1 ? -1 : 0;
}

/* 1 when id and secret are both set (out filled), 0 when neither, -1 when
 * only one is: half a key pair is a mistake worth reporting. */
static int
creds_from(const char *id, const char *secret, const char *token, struct s3_creds *out)
{
	int has_id = id != NULL && *id != '\0', has_secret = secret != NULL && *secret != '\0';

	if (!has_id && !has_secret)
		return 0;
	if (has_id != has_secret)
		return -1;
	out->access_key_id = xstrdup(id);
	out->secret_access_key = xstrdup(secret);
	out->session_token = dup_nonempty(token);
	return 1;
}

static int
ini_creds_cb(void *user, const char *section, const char *name, const char *value)
{
	struct profile_scan *ps = user;
	char **slot = NULL;

	if (strcmp(section, ps->profile) != 0)
		return 1;
	ps->seen = 1;
	if (strcmp(name, "aws_access_key_id") == 0)
		slot = &ps->c->access_key_id;
	else if (strcmp(name, "aws_secret_access_key") == 0)
		slot = &ps->c->secret_access_key;
	else if (strcmp(name, "aws_session_token") == 0)
		slot = &ps->c->session_token;
	if (slot != NULL) {
		free(*slot);
		*slot = dup_nonempty(value);
	}
	return 1;
}

/* The shared credentials file's profile (AWS_PROFILE, else s3.profile, else
 * "default"): 0 with its keys, or, when it has none, with those of the
 * profile's credential_process in ~/.aws/config (s3_process.c: its failure,
 * or that file's syntax error, is -2); -1 when there are none to take and a role may
 * have them (no file; no default profile, or one without keys, when none was
 * named); -2 when the file is wrong (a syntax error, a profile named that it
 * lacks or that has no keys, half a key pair): the error, so that a typo never
 * signs with the instance's keys instead (botocore stops at all but the
 * keyless named profile, whose role it would seek in ~/.aws/config, which
 * kache does not read). */
static int
creds_from_file(const struct config *cfg, int ask, struct s3_creds *out, struct buf *err)
{
	const char *prof = getenv("AWS_PROFILE");
	char *path = aws_file("AWS_SHARED_CREDENTIALS_FILE", "credentials");
	struct s3_creds c = { 0 };
	struct profile_scan ps = { NULL, &c, 0 };
	int rc, named, keys;

	if (prof == NULL || *prof == '\0')
		prof = cfg ? config_get(cfg, "s3.profile") : "";
	named = *prof != '\0';
	ps.profile = named ? prof : "default";
	rc = ini_parse(path, ini_creds_cb, &ps);
	keys = (c.access_key_id != NULL) + (c.secret_access_key != NULL);
	if (rc == 0 && keys == 2) {
		*out = c;
		free(path);
		return 0;
	}
	if ((rc == 0 || rc == -1) && keys == 0) { /* the profile's credential_process */
		char *cmd;
		int found = process_find(ps.profile, &cmd, err);

		if (found != 0) {
			if (found > 0 && (!ask || s3_process_creds(cmd, ps.profile, out, err) == 0))
				found = 0;
			free(cmd);
			s3_creds_clear(&c);
			free(path);
			return found == 0 ? 0 : -2;
		}
	}
	if (rc == -1)
		buf_addf(err,
		    "no S3 credentials: set KACHE_S3_ACCESS_KEY_ID and "
		    "KACHE_S3_SECRET_ACCESS_KEY, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
		    "or create %s",
		    path);
	else if (rc != 0)
		(void)aws_file_fault(rc, path, "AWS_SHARED_CREDENTIALS_FILE", err);
	else if (!ps.seen)
		buf_addf(err,
		    "no S3 credentials: profile [%s] is not in %s; add it, or set AWS_PROFILE "
		    "(s3.profile) to one it has",
		    ps.profile, path);
	else
		buf_addf(err,
		    "no usable S3 credentials in profile [%s] of %s: it needs both "
		    "aws_access_key_id and aws_secret_access_key (or a credential_process in "
		    "~/.aws/config; its SSO and role_arn profiles are not read)",
		    ps.profile, path);
	rc = rc == -1 || (rc == 0 && keys == 0 && !named) ? -1 : -2;
	s3_creds_clear(&c);
	free(path);
	return rc;
}

/* The shared credentials file, else a role's keys. */
static int
creds_from_file_or_role(const struct config *cfg, int ask, struct s3_creds *out, struct buf *err)
{
	struct buf why, role;
	int rc;

	buf_init(&why);
	buf_init(&role);
	if ((rc = creds_from_file(cfg, ask, out, &why)) == 0 || (rc == -1 && !ask)) {
		rc = 0;
		goto out;
	}
	if (rc == -1 && s3_role_creds(S3_ROLE_ANY, config_get(cfg, "s3.region"), out, &role) == 0) {
		rc = 0;
		goto out;
	}
	s3_creds_clear(out);
	buf_add(err, why.p, why.len);
	if (role.len > 0)
		buf_addf(err,
		    "; nor a role's (%s; AWS_EC2_METADATA_DISABLED=true skips asking the "
		    "instance's)",
		    role.p);
	rc = -1;
out:
	buf_free(&why);
	buf_free(&role);
	return rc;
}

int
s3_creds_resolve(const struct config *cfg, struct s3_creds *out, struct buf *err)
{
	return creds_resolve(cfg, 1, out, err);
}

/* ask 0: the settings check's; what is local is read and checked (the keys
 * given, the credentials file, the config file's syntax), and a source that
 * must be asked (STS, a credential_process, a role's service) is not: 0 with
 * no keys in out. */
static int
creds_resolve(const struct config *cfg, int ask, struct s3_creds *out, struct buf *err)
{
	int rc = 0;

	memset(out, 0, sizeof *out);
	if (cfg != NULL)
		rc = creds_from(config_get(cfg, "s3.access_key_id"),
		    config_get(cfg, "s3.secret_access_key"), config_get(cfg, "s3.session_token"),
		    out);
	if (rc < 0) {
		buf_addstr(err,
		    "only one of s3.access_key_id / s3.secret_access_key "
		    "(KACHE_S3_ACCESS_KEY_ID / KACHE_S3_SECRET_ACCESS_KEY) is set; check "
		    "credentials");
		return -1;
	}
	if (rc == 0)
		rc = creds_from(getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY"),
		    getenv("AWS_SESSION_TOKEN"), out);
	if (rc < 0) {
		buf_addstr(err,
		    "only one of AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY is set; "
		    "check credentials");
		return -1;
	}
	if (rc > 0)
		return 0;
	if (s3_role_web_identity_named()) {
		if (!ask)
			return 0;
		if (s3_role_creds(S3_ROLE_WEB_IDENTITY, config_get(cfg, "s3.region"), out, err) ==
		    0)
			return 0;
		s3_creds_clear(out);
		buf_addstr(err, "; check AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN");
		return -1;
	}
	return creds_from_file_or_role(cfg, ask, out, err);
}

/* s3.ca_file, when set: a regular file this process can read (whether it
 * holds certificates, the TLS handshake tells). 0, or -1 with advice. */
static int
ca_file_check(const char *path, struct buf *err)
{
	const char *why;

	if (*path == '\0')
		return 0;
	if ((why = fs_unreadable_why(path)) != NULL)
		buf_addf(err,
		    "s3.ca_file '%s' cannot be read (%s); give the PEM file of the CA "
		    "certificates that sign the endpoint's certificate (KACHE_S3_CA_FILE), or "
		    "leave it empty for the system's",
		    path, why);
	return why != NULL ? -1 : 0;
}

/* The config keys map one to one; sizes are checked so that a typo in
 * s3.multipart_threshold is an error, not a silent default. */
int
s3_config_from(const struct config *cfg, struct s3_settings *s, struct buf *err)
{
	return config_from(cfg, 1, s, err);
}

static int
config_from(const struct config *cfg, int ask, struct s3_settings *s, struct buf *err)
{
	const char *addr = config_get(cfg, "s3.addressing");
	int64_t thr = config_get_size(cfg, "s3.multipart_threshold");
	int64_t conc = config_get_int(cfg, "s3.upload_concurrency");
	int64_t ffc = config_get_int(cfg, "s3.fetch_connect_timeout_ms");

	s3_settings_defaults(s);
	if (ffc < 100 || ffc > 60000) {
		buf_addf(err, "s3.fetch_connect_timeout_ms is '%s'; use 100 to 60000 (ms)",
		    config_get(cfg, "s3.fetch_connect_timeout_ms"));
		return -1;
	}
	if (strcmp(addr, "path") != 0 && strcmp(addr, "virtual") != 0) {
		buf_addf(err, "s3.addressing is '%s'; use 'path' or 'virtual'", addr);
		return -1;
	}
	if (thr < 5 * (int64_t)MIB) {
		buf_addstr(err, "s3.multipart_threshold must be a size of at least 5M");
		return -1;
	}
	if (ca_file_check(config_get(cfg, "s3.ca_file"), err) < 0)
		return -1;
	if (*config_get(cfg, "s3.bucket") == '\0') {
		buf_addstr(err, "s3.bucket is not set; set KACHE_S3_BUCKET");
		return -1;
	}
	s->bucket = xstrdup(config_get(cfg, "s3.bucket"));
	s->prefix = xstrdup(config_get(cfg, "s3.prefix"));
	s->endpoint = xstrdup(config_get(cfg, "s3.endpoint"));
	s->region = xstrdup(config_get(cfg, "s3.region"));
	s->virtual_hosted = strcmp(addr, "virtual") == 0;
	s->ca_file = dup_nonempty(config_get(cfg, "s3.ca_file"));
	s->read_only = config_get_bool(cfg, "s3.read_only");
	s->multipart_threshold = (uint64_t)thr;
	s->upload_concurrency = conc > 0 && conc < 256 ? (int)conc : 4;
	s->fail_fast_connect_ms = (long)ffc;
	if (creds_resolve(cfg, ask, &s->creds, err) < 0) {
		s3_settings_clear(s);
		return -1;
	}
	return 0;
}

int
s3_config_check(const struct config *cfg, struct buf *err)
{
	struct s3_settings s;
	int rc;

	if (config_from(cfg, 0, &s, err) < 0)
		return -1;
	rc = s3_settings_check(&s, err);
	s3_settings_clear(&s);
	return rc;
}
