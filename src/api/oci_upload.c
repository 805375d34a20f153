/* oci_upload.c - blob uploads through /v2: monolithic POST ?digest=, POST + PUT, chunked
 * POST/PATCH/PUT with Content-Range, streamed PATCH without it, status GET, cancel DELETE and
 * cross-repository mount with fallback to a normal upload.
 *
 * Bodies stream: api_begin hands the http layer a struct upload_stream whose write() appends
 * each chunk to the session file and the running SHA-256 (core_upload_write), so no blob is
 * ever held whole in memory. The session's lock is held from open to close; completion happens
 * after close (it takes the lock itself). The ECR layer API uses the same sessions. */
#include "../base/feat.h"

#include "oci.h"
#include "../base/log.h"
#include "../base/mem.h"
#include "../base/util.h"
#include "../oci/ref.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum upload_mode {
	UP_PATCH,    /* append a chunk, 202 */
	UP_PUT,      /* optional last chunk, then complete with ?digest, 201 */
	UP_POST_ONE, /* monolithic POST ?digest=: start, write, complete, 201 */
};

struct upload_stream {
	struct api_stream super;
	struct core *core;
	struct meta_repo repo;
	char id[37];
	struct core_upload_writer *w;
	enum upload_mode mode;
	char *digest;       /* PUT / POST ?digest= */
	int64_t expect_len; /* from Content-Range, -1 if none */
	int64_t got;
	bool failed;
	struct berr err;
};

static void location_upload(struct api_resp *resp, const char *name, const char *id, int64_t size)
{
	char *loc = xasprintf("/v2/%s/blobs/uploads/%s", name, id);
	char range[64];
	snprintf(range, sizeof(range), "0-%" PRId64, size > 0 ? size - 1 : 0);
	api_resp_header(resp, "Location", loc);
	api_resp_header(resp, "Range", range);
	api_resp_header(resp, "Docker-Upload-UUID", id);
	free(loc);
}

static void location_blob(struct api_resp *resp, const char *name, const char *digest)
{
	char *loc = xasprintf("/v2/%s/blobs/%s", name, digest);
	api_resp_header(resp, "Location", loc);
	api_resp_header(resp, "Docker-Content-Digest", digest);
	free(loc);
}

/* 416 with the session's current Range, as clients resume from it. */
static void range_error(struct api_resp *resp, const char *name, const char *id, int64_t size,
                        const char *msg)
{
	oci_fail(resp, BERR_RANGE_INVALID, "%s", msg);
	resp->status = 416;
	location_upload(resp, name, id, size);
}

/* Content-Range of a chunk: "a-b" (also tolerates a "bytes " / "bytes=" prefix). */
static bool parse_content_range(const char *h, int64_t *a, int64_t *b)
{
	if (strncmp(h, "bytes", 5) == 0) {
		h += 5;
		if (*h == ' ' || *h == '=')
			h++;
	}
	char *e = NULL;
	if (!isdigit((unsigned char)*h))
		return false;
	long long x = strtoll(h, &e, 10);
	if (*e != '-' || !isdigit((unsigned char)e[1]))
		return false;
	long long y = strtoll(e + 1, &e, 10);
	if (*e && *e != '/')
		return false;
	if (y < x || x < 0)
		return false;
	*a = x;
	*b = y;
	return true;
}

static void log_upload_failure(const struct api_req *req, const char *id, const struct berr *e)
{
	char what[64];
	snprintf(what, sizeof(what), "upload %s", id);
	api_log_failure(req->request_id, what, e);
}

static void stream_free(struct upload_stream *st)
{
	core_upload_abort(st->w);
	meta_repo_clear(&st->repo);
	free(st->digest);
	free(st);
}

static enum berr_code st_write(struct api_stream *s, const void *data, size_t len, struct berr *err)
{
	struct upload_stream *st = container_of(s, struct upload_stream, super);
	if (st->failed)
		return st->err.code;
	if (st->expect_len >= 0 && st->got + (int64_t)len > st->expect_len) {
		st->failed = true;
		err_set(&st->err, BERR_RANGE_INVALID, "chunk is longer than its Content-Range");
		*err = st->err;
		return st->err.code;
	}
	enum berr_code rc = core_upload_write(st->w, data, len, &st->err);
	if (rc != BERR_OK) {
		st->failed = true;
		*err = st->err;
		return rc;
	}
	st->got += (int64_t)len;
	return BERR_OK;
}

static void st_abort(struct api_stream *s)
{
	stream_free(container_of(s, struct upload_stream, super));
}

static void st_finish(struct api_stream *s, const struct api_req *req, struct api_resp *resp)
{
	struct upload_stream *st = container_of(s, struct upload_stream, super);
	const char *name = st->repo.name;
	api_resp_header(resp, "Docker-Distribution-Api-Version", "registry/2.0");
	int64_t start = core_upload_writer_start(st->w);
	if (!st->failed && st->expect_len >= 0 && st->got != st->expect_len) {
		st->failed = true;
		err_set(&st->err, BERR_RANGE_INVALID,
		        "chunk length does not match its Content-Range");
	}
	if (st->failed) {
		/* Nothing is recorded: the session keeps its previous size. */
		if (st->err.code == BERR_RANGE_INVALID)
			range_error(resp, name, st->id, start, st->err.msg);
		else {
			log_upload_failure(req, st->id, &st->err);
			api_oci_error(resp, &st->err);
		}
		stream_free(st);
		return;
	}
	struct berr err;
	err_clear(&err);
	struct meta *m = meta_pool_acquire(st->core->pool);
	int64_t size = 0;
	struct core_upload_writer *w = st->w;
	st->w = NULL;
	enum berr_code rc = core_upload_close(w, m, &size, &err);
	if (rc == BERR_OK && st->mode == UP_PATCH) {
		resp->status = 202;
		location_upload(resp, name, st->id, size);
	} else if (rc == BERR_OK) {
		char digest[DIGEST_STR_LEN];
		const char *want[1] = {st->digest};
		rc = core_upload_complete(st->core, m, &st->repo, st->id, want, 1, CORE_UPLOAD_OCI,
		                          digest, &err);
		if (rc == BERR_OK) {
			resp->status = 201;
			location_blob(resp, name, digest);
		}
	}
	meta_pool_release(st->core->pool, m);
	if (rc != BERR_OK) {
		if (rc == BERR_LAYER_INVALID)
			err.code = BERR_DIGEST_INVALID;
		if (err_oci_status(rc) >= 500)
			log_upload_failure(req, st->id, &err);
		api_oci_error(resp, &err);
	}
	stream_free(st);
}

static bool blob_mounting_enabled(struct meta *m, const struct registry_id *reg)
{
	char *v = oci_setting(m, reg, "BLOB_MOUNTING", "DISABLED");
	bool on = strcmp(v, "ENABLED") == 0;
	free(v);
	return on;
}

/* POST ?mount=<digest>[&from=<repo>]: true (and a 201 written) if the blob was mounted. */
static bool try_mount(struct oci_call *c, struct meta *m, const struct meta_repo *to,
                      const char *digest)
{
	const char *from = oci_arg(c, "from");
	struct meta_repo fr = {0};
	struct berr err;
	bool ok = false;
	if (!ref_digest_is_supported(digest) || !blob_mounting_enabled(m, &c->reg))
		return false;
	if (from) {
		if (!ref_repo_name_is_valid(from) || core_repo_get(m, &c->reg, from, &fr, &err))
			goto out;
	}
	if (core_blob_mount(m, to, from ? &fr : NULL, digest, &err) == BERR_OK) {
		c->resp->status = 201;
		location_blob(c->resp, c->name, digest);
		ok = true;
	}
out:
	meta_repo_clear(&fr);
	return ok;
}

static struct upload_stream *stream_new(struct oci_call *c, struct meta_repo *repo, const char *id,
                                        enum upload_mode mode)
{
	struct upload_stream *st = xcalloc(1, sizeof(*st));
	st->super.write = st_write;
	st->super.finish = st_finish;
	st->super.abort = st_abort;
	st->core = c->core;
	st->repo = *repo; /* takes over the strings */
	memset(repo, 0, sizeof(*repo));
	snprintf(st->id, sizeof(st->id), "%s", id);
	st->mode = mode;
	st->expect_len = -1;
	return st;
}

enum api_plan oci_upload_begin(struct oci_call *c, struct api_stream **stream)
{
	struct berr err;
	err_clear(&err);
	struct meta *m = meta_pool_acquire(c->core->pool);
	struct meta_repo r = {0};
	struct upload_stream *st = NULL;
	bool post = strcmp(c->req->method, "POST") == 0;
	bool put = strcmp(c->req->method, "PUT") == 0;
	const char *digest = oci_arg(c, "digest");
	enum berr_code rc = oci_repo(c, m, &r, &err);
	if (rc != BERR_OK)
		goto fail;
	if ((put || (post && digest)) && (!digest || !ref_digest_is_valid(digest))) {
		oci_fail(c->resp, BERR_DIGEST_INVALID, "a valid ?digest= is required");
		goto out;
	}
	if (digest && !ref_digest_is_supported(digest)) {
		oci_fail(c->resp, BERR_DIGEST_INVALID, "only sha256 digests are supported");
		goto out;
	}
	if (post) {
		const char *mount = oci_arg(c, "mount");
		if (mount && try_mount(c, m, &r, mount))
			goto out;
		char id[37];
		if ((rc = core_upload_start(c->core, m, &r, id, &err)) != BERR_OK)
			goto fail;
		if (!digest || mount) {
			/* Session only (a refused mount falls back to this too). */
			c->resp->status = 202;
			location_upload(c->resp, c->name, id, 0);
			goto out;
		}
		st = stream_new(c, &r, id, UP_POST_ONE);
	} else {
		const char *id = c->ref;
		if (!uuid_is_valid(id)) {
			oci_fail(c->resp, BERR_UPLOAD_NOT_FOUND, "upload '%.64s' is unknown", id);
			goto out;
		}
		st = stream_new(c, &r, id, put ? UP_PUT : UP_PATCH);
	}
	if (digest)
		st->digest = xstrdup(digest);
	int64_t first = -1, a = 0, b = 0;
	const char *cr = oci_header(c, "Content-Range");
	if (cr) {
		if (!parse_content_range(cr, &a, &b)) {
			int64_t have = 0;
			core_upload_size(m, &st->repo, st->id, &have, &err);
			range_error(c->resp, c->name, st->id, have, "malformed Content-Range");
			goto out;
		}
		first = a;
		st->expect_len = b - a + 1;
	}
	rc = core_upload_open(c->core, m, &st->repo, st->id, first, &st->w, &err);
	if (rc == BERR_LAYER_PART_INVALID) {
		range_error(c->resp, c->name, st->id, err.last_byte + 1,
		            "chunk does not start where the upload ends");
		goto out;
	}
	if (rc != BERR_OK)
		goto fail;
	meta_pool_release(c->core->pool, m);
	*stream = &st->super;
	return API_PLAN_STREAM;
fail:
	oci_fail_err(c, &err);
out:
	if (st)
		stream_free(st);
	meta_repo_clear(&r);
	meta_pool_release(c->core->pool, m);
	return API_PLAN_RESPOND;
}

void oci_upload_status(struct oci_call *c)
{
	struct berr err;
	err_clear(&err);
	struct meta *m = meta_pool_acquire(c->core->pool);
	struct meta_repo r = {0};
	int64_t size = 0;
	enum berr_code rc = oci_repo(c, m, &r, &err);
	if (rc == BERR_OK)
		rc = core_upload_size(m, &r, c->ref, &size, &err);
	meta_pool_release(c->core->pool, m);
	meta_repo_clear(&r);
	if (rc != BERR_OK) {
		oci_fail_err(c, &err);
		return;
	}
	c->resp->status = 204;
	location_upload(c->resp, c->name, c->ref, size);
}

void oci_upload_cancel(struct oci_call *c)
{
	struct berr err;
	err_clear(&err);
	struct meta *m = meta_pool_acquire(c->core->pool);
	struct meta_repo r = {0};
	enum berr_code rc = oci_repo(c, m, &r, &err);
	if (rc == BERR_OK)
		rc = core_upload_cancel(c->core, m, &r, c->ref, &err);
	meta_pool_release(c->core->pool, m);
	meta_repo_clear(&r);
	if (rc != BERR_OK) {
		oci_fail_err(c, &err);
		return;
	}
	c->resp->status = 204;
}
