/* Keys a profile of ~/.aws/config hands out through credential_process (an
 * external command: aws-vault, SSO's `aws configure export-credentials`, a
 * company's own tool), as the AWS SDKs run it: its JSON on stdout,
 * {"Version": 1, "AccessKeyId", "SecretAccessKey", "SessionToken"?,
 * "Expiration"?}. Keys that expire are renewed by running it again. */
#include "s3/s3_internal.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/run.h"
#include "common/util.h"

#define PROCESS_OUT_MAX 16384
#define PROCESS_TIMEOUT_MS 30000

/* The process's JSON (n bytes at out) into c: 0, or -1 with why in err. */
static int
parse_keys(const char *out, size_t n, struct s3_creds *c, struct buf *err)
{
	json_t *j = json_loadb(out, n, 0, NULL);
	json_t *v = json_object_get(j, "Version");
	const char *id = json_string_value(json_object_get(j, "AccessKeyId"));
	const char *secret = json_string_value(json_object_get(j, "SecretAccessKey"));
	const char *token = json_string_value(json_object_get(j, "SessionToken"));
	json_t *exp = json_object_get(j, "Expiration");
	int64_t ms = 0;
	int rc = -1;

	if (!json_is_object(j))
		buf_addstr(err, "it did not print its JSON");
	else if (!json_is_integer(v) || json_integer_value(v) != 1)
		buf_addstr(err, "its JSON is not of Version 1");
	else if (id == NULL || *id == '\0' || secret == NULL || *secret == '\0')
		buf_addstr(err, "its JSON lacks AccessKeyId and SecretAccessKey");
	else if (exp != NULL && !json_is_null(exp) &&
	    (!json_is_string(exp) ||
	        s3_xml_parse_time(json_string_value(exp), strlen(json_string_value(exp)), &ms) < 0))
		buf_addstr(err, "its JSON's Expiration is not a time (2026-12-01T23:59:59Z)");
	else {
		c->access_key_id = xstrdup(id);
		c->secret_access_key = xstrdup(secret);
		c->session_token = token != NULL && *token != '\0' ? xstrdup(token) : NULL;
		c->expires_ms = ms;
		rc = 0;
	}
	json_decref(j); /* jansson frees; the secret's copy in it is not wiped */
	return rc;
}

int
s3_process_creds(const char *command, const char *profile, struct s3_creds *out, struct buf *err)
{
	char *cmd = xstrdup(command), sh[] = "/bin/sh", c[] = "-c";
	char *argv[] = { sh, c, cmd, NULL };
	char *got = xmalloc(PROCESS_OUT_MAX);
	struct buf why;
	int st, rc = -1;

	memset(out, 0, sizeof *out);
	buf_init(&why);
	st = run_capture(argv, NULL, got, PROCESS_OUT_MAX, PROCESS_TIMEOUT_MS);
	if (st != 0) {
		if (st < 0)
			buf_addf(&why, "it could not run, or did not finish within %d s",
			    PROCESS_TIMEOUT_MS / 1000);
		else
			buf_addf(&why, "exited with status %d", st);
	} else if (parse_keys(got, strlen(got), out, &why) == 0) {
		out->role = S3_ROLE_PROCESS;
		out->process = xstrdup(command);
		out->process_profile = xstrdup(profile);
		rc = 0;
	}
	if (rc < 0)
		buf_addf(err, "the credential_process of profile [%s] (%s): %s", profile, command,
		    why.p);
	explicit_bzero(got, PROCESS_OUT_MAX);
	free(got);
	free(cmd);
	buf_free(&why);
	return rc;
}
