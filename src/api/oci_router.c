/* oci_router.c - the /v2 door. This first cut serves the version check and blob downloads
 * through the signed URLs that GetDownloadUrlForLayer hands out; the full OCI Distribution
 * API (pushes, pulls, tags, referrers, token auth) builds on the same core functions. */
#include "../base/feat.h"

#include "api.h"
#include "../base/log.h"
#include "../base/mem.h"
#include "../base/util.h"
#include "../oci/ref.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oci_fail(struct api_resp *resp, enum berr_code code, const char *msg)
{
	struct berr e;
	err_set(&e, code, "%s", msg);
	api_oci_error(resp, &e);
}

/* GET/HEAD /v2/<name>/blobs/<digest>?X-Berth-...: a pre-signed download. */
static void blob_download(struct api_server *s, const struct api_req *req, const char *name,
                          const char *digest, struct api_resp *resp)
{
	const char *acct = req->arg(req->ctx, "X-Berth-Registry");
	const char *region = req->arg(req->ctx, "X-Berth-Region");
	const char *exp = req->arg(req->ctx, "X-Berth-Expires");
	const char *sig = req->arg(req->ctx, "X-Berth-Signature");
	struct berr err;
	err_clear(&err);
	if (!acct || !region || !exp || !sig || strlen(acct) >= 64 || strlen(region) >= 64) {
		oci_fail(resp, BERR_AUTH_MISSING, "authentication required");
		api_resp_header(resp, "WWW-Authenticate", "Basic realm=\"berth\"");
		return;
	}
	struct registry_id reg;
	snprintf(reg.account, sizeof(reg.account), "%s", acct);
	snprintf(reg.region, sizeof(reg.region), "%s", region);
	char *end = NULL;
	long long e = strtoll(exp, &end, 10);
	if (*end || core_blob_url_verify(s->core, &reg, name, digest, e, sig, clock_now_ms() / 1000,
	                                 &err) != BERR_OK) {
		oci_fail(resp, BERR_DENIED, err.msg[0] ? err.msg : "invalid download URL");
		return;
	}
	struct meta *m = meta_pool_acquire(s->core->pool);
	struct meta_repo r = {0};
	enum berr_code rc = core_repo_get(m, &reg, name, &r, &err);
	if (rc == BERR_OK)
		rc = core_blob_get(m, &r, digest, NULL, NULL, NULL, &err);
	meta_pool_release(s->core->pool, m);
	meta_repo_clear(&r);
	if (rc != BERR_OK) {
		api_oci_error(resp, &err);
		return;
	}
	int fd = -1;
	int64_t size = 0;
	rc = s->core->blobs->ops->open(s->core->blobs, digest, &fd, &size, &err);
	if (rc != BERR_OK) {
		log_error("%s blob %s: %s", req->request_id, digest, err.msg);
		if (rc == BERR_NOT_FOUND)
			err_set(&err, BERR_BLOB_UNKNOWN, "blob unknown to registry");
		api_oci_error(resp, &err);
		return;
	}
	resp->status = 200;
	resp->fd = fd;
	resp->offset = 0;
	resp->length = size;
	resp->head = strcmp(req->method, "HEAD") == 0;
	api_resp_header(resp, "Content-Type", "application/octet-stream");
	api_resp_header(resp, "Docker-Content-Digest", digest);
}

void oci_route(struct api_server *s, const struct api_req *req, struct api_resp *resp)
{
	api_resp_header(resp, "Docker-Distribution-Api-Version", "registry/2.0");
	bool get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
	if (strcmp(req->path, "/v2/") == 0 || strcmp(req->path, "/v2") == 0) {
		if (!get) {
			oci_fail(resp, BERR_METHOD_NOT_ALLOWED, "method not allowed");
			return;
		}
		api_resp_header(resp, "Content-Type", "application/json");
		api_resp_body(resp, xstrdup("{}"), 2);
		return;
	}
	const char *rest = req->path + 4;
	const char *blobs = strstr(rest, "/blobs/");
	if (get && blobs) {
		/* The last "/blobs/" splits name and digest (names may contain "/blobs"). */
		for (const char *p; (p = strstr(blobs + 1, "/blobs/"));)
			blobs = p;
		char *name = xstrndup(rest, (size_t)(blobs - rest));
		const char *digest = blobs + 7;
		if (!ref_repo_name_is_valid(name))
			oci_fail(resp, BERR_NAME_INVALID, "invalid repository name");
		else if (!ref_digest_is_valid(digest))
			oci_fail(resp, BERR_DIGEST_INVALID, "invalid digest");
		else
			blob_download(s, req, name, digest, resp);
		free(name);
		return;
	}
	oci_fail(resp, BERR_UNKNOWN_OPERATION, "this endpoint is not supported yet");
}
