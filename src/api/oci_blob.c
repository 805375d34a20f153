/* oci_blob.c - GET/HEAD/DELETE /v2/<name>/blobs/<digest>.
 *
 * A repository reads only blobs linked to it or referenced by its manifests (BLOB_UNKNOWN
 * otherwise, even when the bytes exist for another repository). Downloads are file-descriptor
 * responses (sendfile); a single `Range: bytes=a-b` is honoured with 206. */
#include "../base/feat.h"

#include "oci.h"
#include "../base/mem.h"
#include "../base/util.h"
#include "../oci/ref.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Parses "bytes=a-b", "bytes=a-", "bytes=-n" against size. 0 ok, -1 unsatisfiable, 1 ignore
 * (malformed or multi-range: serve the whole blob, as RFC 9110 allows). */
static int parse_range(const char *h, int64_t size, int64_t *start, int64_t *end)
{
	if (strncmp(h, "bytes=", 6) != 0 || strchr(h, ','))
		return 1;
	const char *p = h + 6;
	char *e = NULL;
	if (*p == '-') {
		if (!isdigit((unsigned char)p[1]))
			return 1;
		long long n = strtoll(p + 1, &e, 10);
		if (*e)
			return 1;
		if (n <= 0 || size == 0)
			return -1;
		*start = n >= size ? 0 : size - n;
		*end = size - 1;
		return 0;
	}
	if (!isdigit((unsigned char)*p))
		return 1;
	long long a = strtoll(p, &e, 10);
	if (*e != '-')
		return 1;
	long long b = size - 1;
	if (e[1]) {
		char *e2 = NULL;
		if (!isdigit((unsigned char)e[1]))
			return 1;
		b = strtoll(e + 1, &e2, 10);
		if (*e2)
			return 1;
		if (b < a)
			return 1;
	}
	if (a >= size)
		return -1;
	if (b >= size)
		b = size - 1;
	*start = a;
	*end = b;
	return 0;
}

/* Verifies a GetDownloadUrlForLayer signature; the URL names its registry. */
static bool signed_url_ok(struct oci_call *c)
{
	const char *acct = oci_arg(c, "X-Berth-Registry");
	const char *region = oci_arg(c, "X-Berth-Region");
	const char *exp = oci_arg(c, "X-Berth-Expires");
	const char *sig = oci_arg(c, "X-Berth-Signature");
	if (!acct || !region || !exp || !sig || strlen(acct) >= sizeof(c->reg.account) ||
	    strlen(region) >= sizeof(c->reg.region)) {
		oci_fail(c->resp, BERR_DENIED, "invalid download URL");
		return false;
	}
	snprintf(c->reg.account, sizeof(c->reg.account), "%s", acct);
	snprintf(c->reg.region, sizeof(c->reg.region), "%s", region);
	char *end = NULL;
	long long e = strtoll(exp, &end, 10);
	struct berr err;
	err_clear(&err);
	if (*end || core_blob_url_verify(c->core, &c->reg, c->name, c->ref, e, sig,
	                                 clock_now_ms() / 1000, &err) != BERR_OK) {
		oci_fail(c->resp, BERR_DENIED, "%s", err.msg[0] ? err.msg : "invalid download URL");
		return false;
	}
	return true;
}

void oci_blob_get(struct oci_call *c)
{
	struct berr err;
	err_clear(&err);
	if (!ref_digest_is_valid(c->ref)) {
		oci_fail(c->resp, BERR_DIGEST_INVALID, "invalid digest '%.128s'", c->ref);
		return;
	}
	if (oci_arg(c, "X-Berth-Signature") && !signed_url_ok(c))
		return;
	struct meta *m = meta_pool_acquire(c->core->pool);
	struct meta_repo r = {0};
	int fd = -1;
	int64_t size = 0;
	enum berr_code rc = oci_repo(c, m, &r, &err);
	if (rc == BERR_OK)
		rc = core_blob_open(c->core, m, &r, c->ref, &fd, &size, &err);
	meta_pool_release(c->core->pool, m);
	meta_repo_clear(&r);
	if (rc != BERR_OK) {
		oci_fail_err(c, &err);
		return;
	}
	struct api_resp *resp = c->resp;
	int64_t start = 0, end = size - 1;
	const char *range = oci_header(c, "Range");
	int pr = range ? parse_range(range, size, &start, &end) : 1;
	if (pr < 0) {
		close(fd);
		char cr[64];
		snprintf(cr, sizeof(cr), "bytes */%" PRId64, size);
		oci_fail(resp, BERR_RANGE_INVALID, "requested range not satisfiable");
		resp->status = 416;
		api_resp_header(resp, "Content-Range", cr);
		return;
	}
	if (pr == 0) {
		char cr[96];
		snprintf(cr, sizeof(cr), "bytes %" PRId64 "-%" PRId64 "/%" PRId64, start, end,
		         size);
		resp->status = 206;
		api_resp_header(resp, "Content-Range", cr);
	} else {
		start = 0;
		end = size - 1;
		resp->status = 200;
	}
	resp->fd = fd;
	resp->offset = start;
	resp->length = end - start + 1;
	resp->head = strcmp(c->req->method, "HEAD") == 0;
	api_resp_header(resp, "Content-Type", "application/octet-stream");
	api_resp_header(resp, "Docker-Content-Digest", c->ref);
	api_resp_header(resp, "Accept-Ranges", "bytes");
	char *etag = xasprintf("\"%s\"", c->ref);
	api_resp_header(resp, "ETag", etag);
	free(etag);
	api_resp_header(resp, "Cache-Control", "max-age=31536000");
}

void oci_blob_delete(struct oci_call *c)
{
	struct berr err;
	err_clear(&err);
	if (!ref_digest_is_valid(c->ref)) {
		oci_fail(c->resp, BERR_DIGEST_INVALID, "invalid digest '%.128s'", c->ref);
		return;
	}
	struct meta *m = meta_pool_acquire(c->core->pool);
	struct meta_repo r = {0};
	enum berr_code rc = oci_repo(c, m, &r, &err);
	if (rc == BERR_OK)
		rc = core_blob_unlink(m, &r, c->ref, &err);
	meta_pool_release(c->core->pool, m);
	meta_repo_clear(&r);
	if (rc != BERR_OK) {
		oci_fail_err(c, &err);
		return;
	}
	c->resp->status = 202;
	api_resp_header(c->resp, "Docker-Content-Digest", c->ref);
}
