/* oci_manifest.c - PUT/GET/HEAD/DELETE /v2/<name>/manifests/<reference>.
 *
 * Pushes go through core_image_put like ECR's PutImage (same digest over the exact bytes, same
 * reference checks, same immutability rules with ECR's message under TAG_INVALID); a re-push of
 * a tag already on the image is an idempotent 201 here. GET/HEAD honour Accept; GET records the
 * pull (batched, see core/pull.c). */
#include "../base/feat.h"

#include "oci.h"
#include "../base/mem.h"
#include "../base/util.h"
#include "../oci/manifest.h"
#include "../oci/ref.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool ref_is_digest(const char *ref)
{
	return strchr(ref, ':') != NULL;
}

/* Validates the reference: a digest or an OCI tag. */
static bool check_ref(struct oci_call *c)
{
	if (ref_is_digest(c->ref)) {
		if (!ref_digest_is_valid(c->ref)) {
			oci_fail(c->resp, BERR_DIGEST_INVALID, "invalid digest '%.128s'", c->ref);
			return false;
		}
	} else if (!ref_tag_is_valid_oci(c->ref)) {
		oci_fail(c->resp, BERR_TAG_INVALID, "invalid tag '%.128s'", c->ref);
		return false;
	}
	return true;
}

/* Copies a Content-Type without parameters ("type/sub; charset=x" -> "type/sub"). */
static char *media_type_of(const char *ct)
{
	if (!ct)
		return NULL;
	size_t n = strcspn(ct, ";");
	while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
		n--;
	return n ? xstrndup(ct, n) : NULL;
}

/* True if the Accept header (all values joined by MHD as one string) admits mt. No header,
 * an empty one or a wildcard admits everything. */
static bool accepts(const char *accept, const char *mt)
{
	if (!accept || !*accept)
		return true;
	const char *p = accept;
	while (*p) {
		while (*p == ' ' || *p == ',')
			p++;
		size_t n = strcspn(p, ",;");
		size_t t = n;
		while (t && p[t - 1] == ' ')
			t--;
		if ((t == 3 && strncmp(p, "*/*", 3) == 0) ||
		    (t == strlen(mt) && strncasecmp(p, mt, t) == 0))
			return true;
		p += n;
		if (*p == ';')
			p += strcspn(p, ",");
	}
	return false;
}

void oci_manifest_get(struct oci_call *c)
{
	if (!check_ref(c))
		return;
	struct berr err;
	err_clear(&err);
	struct meta *m = meta_pool_acquire(c->core->pool);
	struct meta_repo r = {0};
	struct meta_image img = {0};
	bool digest = ref_is_digest(c->ref);
	enum berr_code rc = oci_repo(c, m, &r, &err);
	if (rc == BERR_OK)
		rc = core_image_find(m, &r, digest ? NULL : c->ref, digest ? c->ref : NULL, true,
		                     &img, &err);
	meta_pool_release(c->core->pool, m);
	if (rc != BERR_OK) {
		oci_fail_err(c, &err);
		goto out;
	}
	if (!accepts(oci_header(c, "Accept"), img.media_type)) {
		oci_fail(c->resp, BERR_IMAGE_NOT_FOUND,
		         "manifest %s has media type %s, which the Accept header does not allow",
		         img.digest, img.media_type);
		goto out;
	}
	bool head = strcmp(c->req->method, "HEAD") == 0;
	if (!head)
		core_pull_record(c->core, img.id, clock_now_ms());
	api_resp_header(c->resp, "Content-Type", img.media_type);
	api_resp_header(c->resp, "Docker-Content-Digest", img.digest);
	char *etag = xasprintf("\"%s\"", img.digest);
	api_resp_header(c->resp, "ETag", etag);
	free(etag);
	c->resp->head = head;
	api_resp_body(c->resp, img.manifest, img.manifest_len);
	img.manifest = NULL;
out:
	meta_image_clear(&img);
	meta_repo_clear(&r);
}

void oci_manifest_put(struct oci_call *c)
{
	if (!check_ref(c))
		return;
	if (c->req->body_too_large) {
		oci_fail(c->resp, BERR_MANIFEST_INVALID, "manifest exceeds %d bytes",
		         MANIFEST_MAX_BYTES);
		c->resp->status = 413;
		return;
	}
	struct berr err;
	err_clear(&err);
	bool digest = ref_is_digest(c->ref);
	char *mt = media_type_of(oci_header(c, "Content-Type"));
	if (mt && !manifest_media_type_is_known(mt)) {
		free(mt); /* e.g. application/json or octet-stream: judge by the body */
		mt = NULL;
	}
	struct meta *m = meta_pool_acquire(c->core->pool);
	struct meta_repo r = {0};
	struct core_put_result res = {0};
	enum berr_code rc = oci_repo(c, m, &r, &err);
	/* returned before the put, which waits on the writer connection (see ecr_meta) */
	meta_pool_release(c->core->pool, m);
	if (rc == BERR_OK)
		rc = core_image_put(c->core, &r, c->req->body ? c->req->body : "", c->req->body_len,
		                    mt, digest ? NULL : c->ref, digest ? c->ref : NULL,
		                    CORE_PUT_OCI, &res, &err);
	if (rc == BERR_IMAGE_DIGEST_MISMATCH)
		err.code = BERR_DIGEST_INVALID;
	if (rc != BERR_OK) {
		oci_fail_err(c, &err);
	} else {
		c->resp->status = 201;
		char *loc = xasprintf("/v2/%s/manifests/%s", c->name, res.digest);
		api_resp_header(c->resp, "Location", loc);
		api_resp_header(c->resp, "Docker-Content-Digest", res.digest);
		if (res.subject)
			api_resp_header(c->resp, "OCI-Subject", res.subject);
		free(loc);
	}
	core_put_result_clear(&res);
	meta_repo_clear(&r);
	free(mt);
}

void oci_manifest_delete(struct oci_call *c)
{
	if (!check_ref(c))
		return;
	struct berr err;
	err_clear(&err);
	bool digest = ref_is_digest(c->ref);
	struct meta *m = meta_pool_acquire(c->core->pool);
	struct meta_repo r = {0};
	enum berr_code rc = oci_repo(c, m, &r, &err);
	if (rc == BERR_OK)
		rc = core_image_delete(m, &r, digest ? NULL : c->ref, digest ? c->ref : NULL, &err);
	meta_pool_release(c->core->pool, m);
	meta_repo_clear(&r);
	if (rc != BERR_OK) {
		oci_fail_err(c, &err);
		return;
	}
	c->resp->status = 202;
}
