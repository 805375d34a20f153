/* api.c - response helpers, credentials and the top-level dispatch between the two doors:
 * /v2/... is the OCI Distribution API, everything else is the ECR JSON API. */
#include "../base/feat.h"

#include "api.h"
#include "../base/mem.h"
#include "../base/json_fast.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void api_resp_init(struct api_resp *r)
{
	memset(r, 0, sizeof(*r));
	r->status = 200;
	r->fd = -1;
}

void api_resp_free(struct api_resp *r)
{
	for (size_t i = 0; i < r->nheaders; i++) {
		free(r->headers[i].name);
		free(r->headers[i].value);
	}
	free(r->headers);
	free(r->body);
	if (r->fd >= 0)
		close(r->fd);
	api_resp_init(r);
}

void api_resp_header(struct api_resp *r, const char *name, const char *value)
{
	r->headers = xrealloc(r->headers, (r->nheaders + 1) * sizeof(*r->headers));
	r->headers[r->nheaders].name = xstrdup(name);
	r->headers[r->nheaders].value = xstrdup(value);
	r->nheaders++;
}

void api_resp_body(struct api_resp *r, char *body, size_t len)
{
	free(r->body);
	r->body = body;
	r->body_len = len;
}

void api_json_body(struct api_resp *r, json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(13));
	if (!s)
		s = xstrdup("{}");
	api_resp_body(r, s, strlen(s));
}

static bool is_account(const char *s)
{
	size_t n = strlen(s);
	if (n != 12)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

enum berr_code api_creds_load(struct api_server *s, const char *path, struct berr *err)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return err_set(err, BERR_IO, "cannot open credentials file %s", path);
	char line[2048];
	int lineno = 0;
	enum berr_code rc = BERR_OK;
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		char *hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		char *save = NULL;
		char *akid = strtok_r(line, " \t\r\n", &save);
		if (!akid)
			continue;
		char *secret = strtok_r(NULL, " \t\r\n", &save);
		char *account = strtok_r(NULL, " \t\r\n", &save);
		char *extra = strtok_r(NULL, " \t\r\n", &save);
		if (!secret || !account || extra || !is_account(account) || strlen(akid) > 128) {
			rc = err_set(err, BERR_INVALID,
			             "%s:%d: expected ACCESS_KEY_ID SECRET_ACCESS_KEY ACCOUNT_ID "
			             "(12 digits)",
			             path, lineno);
			break;
		}
		s->creds = xrealloc(s->creds, (s->ncreds + 1) * sizeof(*s->creds));
		struct api_cred *c = &s->creds[s->ncreds++];
		c->akid = xstrdup(akid);
		c->secret = xstrdup(secret);
		snprintf(c->account, sizeof(c->account), "%s", account);
	}
	fclose(f);
	if (rc == BERR_OK && s->ncreds == 0)
		rc = err_set(err, BERR_INVALID, "%s: no credentials found", path);
	return rc;
}

void api_server_fini(struct api_server *s)
{
	for (size_t i = 0; i < s->ncreds; i++) {
		free(s->creds[i].akid);
		free(s->creds[i].secret);
	}
	free(s->creds);
	free(s->base_url);
	s->creds = NULL;
	s->ncreds = 0;
}

bool api_is_oci_path(const char *path)
{
	return strcmp(path, "/v2") == 0 || strncmp(path, "/v2/", 4) == 0;
}

enum api_plan api_begin(struct api_server *s, const struct api_req *req, size_t *limit,
                        struct api_stream **stream, struct api_resp *resp)
{
	*stream = NULL;
	*limit = API_ECR_MAX_BODY;
	if (api_is_oci_path(req->path))
		return oci_begin(s, req, limit, stream, resp);
	return API_PLAN_BUFFER;
}

void api_handle(struct api_server *s, const struct api_req *req, struct api_resp *resp)
{
	if (api_is_oci_path(req->path))
		oci_route(s, req, resp);
	else
		ecr_route(s, req, resp);
}

json_t *api_referrer_descriptor(const struct meta_image *img)
{
	json_t *d = json_pack("{s:s, s:s, s:I}", "mediaType", img->media_type, "digest",
	                      img->digest, "size", (json_int_t)img->manifest_len);
	if (img->artifact_type)
		json_object_set_new(d, "artifactType", json_string(img->artifact_type));
	json_t *man = json_fast_loadb(img->manifest, img->manifest_len, 0);
	json_t *ann = json_object_get(man, "annotations");
	if (json_is_object(ann) && json_object_size(ann))
		json_object_set(d, "annotations", ann);
	json_decref(man);
	return d;
}
