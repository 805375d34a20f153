/* ecr_image.c - image operations of the ECR door (spec §3.2, §4.1-§4.4, §4.13): PutImage,
 * BatchGetImage, BatchDeleteImage, DescribeImages, ListImages. */
#include "../base/feat.h"

#include "ecr.h"
#include "../base/mem.h"
#include "../base/util.h"
#include "../oci/manifest.h"
#include "../oci/ref.h"

#include <stdlib.h>
#include <string.h>

#define MEDIATYPE_MISSING_MSG "image manifest mediatype not provided in manifest or parameter"

/* Manifest problems surface on the ECR door as InvalidParameterException at 'ImageManifest',
 * except the media-type message which ECR sends bare. */
static enum berr_code manifest_err(enum berr_code rc, struct berr *err)
{
	if (rc != BERR_MANIFEST_INVALID && rc != BERR_MANIFEST_TOO_LARGE &&
	    rc != BERR_LIMIT_EXCEEDED)
		return rc;
	if (strcmp(err->msg, MEDIATYPE_MISSING_MSG) == 0)
		return err_set(err, BERR_PARAM_INVALID, "%s", MEDIATYPE_MISSING_MSG);
	char msg[sizeof(err->msg)];
	memcpy(msg, err->msg, sizeof(msg));
	return ep_invalid(err, "ImageManifest", "%s", msg);
}

enum berr_code ecr_put_image(struct ecr_call *c, struct berr *err)
{
	const char *manifest = NULL, *mt = NULL, *tag = NULL, *digest = NULL;
	struct meta_repo r = {0};
	struct core_put_result res = {0};
	enum berr_code rc;
	if ((rc = ep_str(c->in, "imageManifest", true, 1, MANIFEST_MAX_BYTES, &manifest, err)) !=
	        BERR_OK ||
	    (rc = ep_str(c->in, "imageManifestMediaType", false, 0, 0, &mt, err)) != BERR_OK ||
	    (rc = ep_str(c->in, "imageTag", false, 1, ECR_TAG_MAX, &tag, err)) != BERR_OK ||
	    (rc = ep_str(c->in, "imageDigest", false, 0, 0, &digest, err)) != BERR_OK)
		return rc;
	if (tag && !ref_tag_is_valid_ecr(tag))
		return ep_invalid(err, "imageTag",
		                  "Member must not contain '/', ':', '@', whitespace or control "
		                  "characters");
	/* The repository row is read inside the put's transaction; an error found before that
	 * gives way to RepositoryNotFoundException, as if the row had been read first. */
	struct registry_id reg;
	const char *name = NULL;
	if ((rc = ep_repo_addr(c, &reg, &name, err)) != BERR_OK)
		return rc;
	r.account = xstrdup(reg.account);
	r.region = xstrdup(reg.region);
	r.name = xstrdup(name);
	rc = core_image_put(c->core, &r, manifest, strlen(manifest), mt, tag, digest, CORE_PUT_ECR,
	                    &res, err);
	if (rc != BERR_OK && rc != BERR_REPO_NOT_FOUND && !r.id) {
		struct berr e2;
		struct meta_repo row = {0};
		if (core_repo_get(ecr_meta(c), &reg, name, &row, &e2) == BERR_REPO_NOT_FOUND) {
			*err = e2;
			rc = e2.code;
		}
		meta_repo_clear(&row);
	}
	if (rc == BERR_OK) {
		/* written as text: the answer carries the manifest back, and escaping it through a
		 * jansson tree cost ~5 % of a put's CPU */
		struct buf *b = &c->raw_out;
		buf_init(b, 0);
		buf_puts(b, "{\"image\":{\"registryId\":", NULL);
		buf_json_string(b, r.account);
		buf_puts(b, ",\"repositoryName\":", NULL);
		buf_json_string(b, r.name);
		buf_puts(b, ",\"imageId\":{\"imageDigest\":", NULL);
		buf_json_string(b, res.digest);
		if (tag) {
			buf_puts(b, ",\"imageTag\":", NULL);
			buf_json_string(b, tag);
		}
		buf_puts(b, "},\"imageManifest\":", NULL);
		buf_json_string(b, manifest);
		buf_puts(b, ",\"imageManifestMediaType\":", NULL);
		buf_json_string(b, res.media_type);
		buf_puts(b, "}}", NULL);
	}
	rc = manifest_err(rc, err);
	core_put_result_clear(&res);
	meta_repo_clear(&r);
	return rc;
}

/* ---- image identifiers in batch requests ---- */

struct image_ref {
	json_t *id;         /* the request entry (borrowed) */
	const char *tag;    /* NULL if absent */
	const char *digest; /* NULL if absent */
	const char *failure_code;
	const char *failure_reason;
};

/* ECR batch digest rule (stricter than the layer-digest pattern: 64 hex digits). */
static bool batch_digest_ok(const char *d)
{
	const char *colon = strchr(d, ':');
	if (!colon || colon == d)
		return false;
	for (const char *p = d; p < colon; p++)
		if (!(strchr("_+.-", *p) || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= 'A' && *p <= 'Z')))
			return false;
	const char *hex = colon + 1;
	size_t n = strlen(hex);
	if (n < 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!strchr("0123456789abcdefABCDEF", hex[i]))
			return false;
	return true;
}

/* Parses one ImageIdentifier; per-entry problems become failure codes, wrong JSON types fail
 * the whole call. */
static enum berr_code parse_image_ref(json_t *e, struct image_ref *ir, struct berr *err)
{
	memset(ir, 0, sizeof(*ir));
	ir->id = e;
	if (!json_is_object(e))
		return err_set(err, BERR_SERIALIZATION,
		               "Unexpected value type in 'imageIds': expected ImageIdentifier");
	json_t *t = json_object_get(e, "imageTag"), *d = json_object_get(e, "imageDigest");
	if ((t && !json_is_null(t) && !json_is_string(t)) ||
	    (d && !json_is_null(d) && !json_is_string(d)))
		return err_set(err, BERR_SERIALIZATION,
		               "Unexpected value type in 'imageIds': expected strings");
	ir->tag = json_string_value(t);
	ir->digest = json_string_value(d);
	if (!ir->tag && !ir->digest) {
		ir->failure_code = "MissingDigestAndTag";
		ir->failure_reason =
		    "Invalid request parameters: both tag and digest cannot be null";
	} else if (ir->digest && !batch_digest_ok(ir->digest)) {
		ir->failure_code = "InvalidImageDigest";
		ir->failure_reason = "Invalid request parameters: image digest should satisfy the "
		                     "regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'";
	} else if (ir->tag && (strlen(ir->tag) > ECR_TAG_MAX || !ref_tag_is_valid_ecr(ir->tag))) {
		ir->failure_code = "InvalidImageTag";
		ir->failure_reason = "Invalid request parameters: image tag should be 1-300 "
		                     "characters without '/', ':', '@' or whitespace";
	}
	return BERR_OK;
}

static void add_failure(json_t *failures, json_t *id, const char *code, const char *reason)
{
	json_array_append_new(failures, json_pack("{s:O, s:s, s:s}", "imageId", id, "failureCode",
	                                          code, "failureReason", reason));
}

static const char *const NOT_FOUND_REASON = "Requested image not found";

enum berr_code ecr_batch_get_image(struct ecr_call *c, struct berr *err)
{
	json_t *ids = NULL, *accepted = NULL;
	struct meta_repo r = {0};
	enum berr_code rc;
	if ((rc = ep_array(c->in, "imageIds", true, 1, 100, &ids, err)) != BERR_OK ||
	    (rc = ep_array(c->in, "acceptedMediaTypes", false, 1, 100, &accepted, err)) != BERR_OK)
		return rc;
	size_t i;
	json_t *e;
	json_array_foreach (accepted, i, e) {
		if (!json_is_string(e))
			return err_set(err, BERR_SERIALIZATION,
			               "Unexpected value type in 'acceptedMediaTypes'");
	}
	if ((rc = ep_repo(c, &r, err)) != BERR_OK)
		return rc;
	json_t *images = json_array(), *failures = json_array();
	json_object_set_new(c->out, "images", images);
	json_object_set_new(c->out, "failures", failures);
	int64_t now = clock_now_ms();
	json_array_foreach (ids, i, e) {
		struct image_ref ir;
		if ((rc = parse_image_ref(e, &ir, err)) != BERR_OK)
			goto out;
		if (ir.failure_code) {
			add_failure(failures, e, ir.failure_code, ir.failure_reason);
			continue;
		}
		struct meta_image img = {0};
		struct berr ferr;
		rc = ir.tag ? c->m->ops->image_get_by_tag(c->m, r.id, ir.tag, true, &img, &ferr)
		            : c->m->ops->image_get(c->m, r.id, ir.digest, true, &img, &ferr);
		if (rc == BERR_NOT_FOUND) {
			add_failure(failures, e, "ImageNotFound", NOT_FOUND_REASON);
			rc = BERR_OK;
			continue;
		}
		if (rc != BERR_OK) {
			*err = ferr;
			goto out;
		}
		bool ok = true;
		if (ir.tag && ir.digest && strcmp(ir.digest, img.digest) != 0) {
			add_failure(failures, e, "ImageTagDoesNotMatchDigest",
			            "Invalid request parameters: given tag does not map to given "
			            "digest");
			ok = false;
		}
		if (ok && accepted) {
			bool acc = false;
			size_t j;
			json_t *a;
			json_array_foreach (accepted, j, a)
				acc = acc || strcmp(json_string_value(a), img.media_type) == 0;
			if (!acc) {
				add_failure(failures, e, "ImageNotFound", NOT_FOUND_REASON);
				ok = false;
			}
		}
		if (ok) {
			json_t *id = json_pack("{s:s}", "imageDigest", img.digest);
			if (ir.tag)
				json_object_set_new(id, "imageTag", json_string(ir.tag));
			json_array_append_new(
			    images, json_pack("{s:s, s:s, s:o, s:s%, s:s}", "registryId", r.account,
			                      "repositoryName", r.name, "imageId", id,
			                      "imageManifest", img.manifest, img.manifest_len,
			                      "imageManifestMediaType", img.media_type));
			core_pull_record(c->core, img.id, now);
		}
		meta_image_clear(&img);
	}
out:
	meta_repo_clear(&r);
	return rc;
}

struct deleted_ctx {
	json_t *list;
};

static void on_deleted(void *ctx, const char *digest, const char *tag)
{
	struct deleted_ctx *d = ctx;
	json_t *id = json_pack("{s:s}", "imageDigest", digest);
	if (tag)
		json_object_set_new(id, "imageTag", json_string(tag));
	json_array_append_new(d->list, id);
}

enum berr_code ecr_batch_delete_image(struct ecr_call *c, struct berr *err)
{
	json_t *ids = NULL;
	struct meta_repo r = {0};
	struct image_ref *refs = NULL;
	bool *referenced = NULL;
	enum berr_code rc = ep_array(c->in, "imageIds", true, 1, 100, &ids, err);
	if (rc != BERR_OK)
		return rc;
	size_t n = json_array_size(ids);
	refs = xcalloc(n, sizeof(*refs));
	referenced = xcalloc(n, sizeof(*referenced));
	for (size_t i = 0; i < n; i++)
		if ((rc = parse_image_ref(json_array_get(ids, i), &refs[i], err)) != BERR_OK)
			goto out;
	if ((rc = c->m->ops->txn_begin(c->m, err)) != BERR_OK)
		goto out;
	if ((rc = ep_repo(c, &r, err)) != BERR_OK)
		goto rollback;
	/* Reference checks see the repository as it was when the request started: deleting an
	 * index and its children in one call deletes the index and refuses the children. */
	for (size_t i = 0; i < n; i++) {
		if (refs[i].failure_code)
			continue;
		struct meta_image img = {0};
		struct berr ferr;
		if (core_image_find(c->m, &r, refs[i].tag, refs[i].digest, false, &img, &ferr) ==
		    BERR_OK) {
			if ((rc = c->m->ops->image_is_child(c->m, r.id, img.digest, &referenced[i],
			                                    err)) != BERR_OK) {
				meta_image_clear(&img);
				goto rollback;
			}
		}
		meta_image_clear(&img);
	}
	json_t *deleted = json_array(), *failures = json_array();
	json_object_set_new(c->out, "imageIds", deleted);
	json_object_set_new(c->out, "failures", failures);
	struct deleted_ctx dc = {deleted};
	for (size_t i = 0; i < n; i++) {
		if (refs[i].failure_code) {
			add_failure(failures, refs[i].id, refs[i].failure_code,
			            refs[i].failure_reason);
			continue;
		}
		struct berr ferr;
		enum berr_code erc = core_image_delete_entry(c->m, &r, refs[i].tag, refs[i].digest,
		                                             referenced[i], on_deleted, &dc, &ferr);
		if (erc == BERR_IMAGE_NOT_FOUND)
			add_failure(failures, refs[i].id, "ImageNotFound", NOT_FOUND_REASON);
		else if (erc == BERR_IMAGE_REFERENCED)
			add_failure(failures, refs[i].id, "ImageReferencedByManifestList",
			            "Requested image referenced by manifest list");
		else if (erc != BERR_OK) {
			*err = ferr;
			rc = erc;
			goto rollback;
		}
	}
	if ((rc = c->m->ops->txn_commit(c->m, err)) == BERR_OK)
		goto out;
rollback:
	c->m->ops->txn_rollback(c->m);
out:
	free(refs);
	free(referenced);
	meta_repo_clear(&r);
	return rc;
}

/* ---- DescribeImages / ListImages ---- */

static const char *const tag_status_values[] = {"TAGGED", "UNTAGGED", "ANY", NULL};
static const char *const image_status_values[] = {"ACTIVE", "ARCHIVED", "ACTIVATING", "ANY", NULL};

/* filter.tagStatus / filter.imageStatus. *none = the filter can match nothing (berth has no
 * archived images yet). */
static enum berr_code parse_filter(json_t *in, enum meta_tag_filter *tf, bool *none,
                                   struct berr *err)
{
	json_t *filter = NULL;
	const char *ts = NULL, *is = NULL;
	enum berr_code rc;
	*tf = META_TAGS_ANY;
	*none = false;
	if ((rc = ep_object(in, "filter", false, &filter, err)) != BERR_OK ||
	    (rc = ep_enum(filter, "tagStatus", false, tag_status_values, &ts, err)) != BERR_OK ||
	    (rc = ep_enum(filter, "imageStatus", false, image_status_values, &is, err)) != BERR_OK)
		return rc;
	if (ts && strcmp(ts, "TAGGED") == 0)
		*tf = META_TAGS_TAGGED;
	else if (ts && strcmp(ts, "UNTAGGED") == 0)
		*tf = META_TAGS_UNTAGGED;
	*none = is && (strcmp(is, "ARCHIVED") == 0 || strcmp(is, "ACTIVATING") == 0);
	return BERR_OK;
}

struct image_page {
	struct ecr_call *c;
	const struct meta_repo *repo;
	json_t *list;
	struct ep_page pg;
	long long n;
	bool more;
	int64_t next_after; /* cursor of the next page when more */
	int64_t next_skip;
	bool describe; /* DescribeImages details vs ListImages identifiers */
	enum berr_code rc;
	struct berr *err;
};

/* The ImageDetail of img; tags (borrowed) in attachment order. */
static json_t *image_detail(const struct meta_repo *repo, const struct meta_image *img,
                            char *const *tags, size_t ntags)
{
	json_t *d = json_pack("{s:s, s:s, s:s, s:I, s:o, s:s, s:s}", "registryId", repo->account,
	                      "repositoryName", repo->name, "imageDigest", img->digest,
	                      "imageSizeInBytes", (json_int_t)img->size, "imagePushedAt",
	                      ecr_time(img->pushed_at), "imageManifestMediaType", img->media_type,
	                      "imageStatus", img->status ? img->status : "ACTIVE");
	if (ntags) {
		json_t *t = json_array();
		for (size_t i = 0; i < ntags; i++)
			json_array_append_new(t, json_string(tags[i]));
		json_object_set_new(d, "imageTags", t);
	}
	if (img->artifact_type)
		json_object_set_new(d, "artifactMediaType", json_string(img->artifact_type));
	if (img->pulled_at)
		json_object_set_new(d, "lastRecordedPullTime", ecr_time(img->pulled_at));
	if (img->subject)
		json_object_set_new(d, "subjectManifestDigest", json_string(img->subject));
	return d;
}

/* The same ImageDetail written as JSON text (DescribeImages pages: the hot path). */
static void image_detail_raw(struct buf *b, const struct meta_repo *repo,
                             const struct meta_image *img, char *const *tags, size_t ntags)
{
	buf_puts(b, "{\"registryId\":", NULL);
	buf_json_string(b, repo->account);
	buf_puts(b, ",\"repositoryName\":", NULL);
	buf_json_string(b, repo->name);
	buf_puts(b, ",\"imageDigest\":", NULL);
	buf_json_string(b, img->digest);
	if (ntags) {
		buf_puts(b, ",\"imageTags\":[", NULL);
		for (size_t i = 0; i < ntags; i++) {
			if (i)
				buf_append(b, ",", 1, NULL);
			buf_json_string(b, tags[i]);
		}
		buf_append(b, "]", 1, NULL);
	}
	buf_printf(b, NULL, ",\"imageSizeInBytes\":%lld,\"imagePushedAt\":", (long long)img->size);
	ecr_time_raw(b, img->pushed_at);
	buf_puts(b, ",\"imageManifestMediaType\":", NULL);
	buf_json_string(b, img->media_type);
	if (img->artifact_type) {
		buf_puts(b, ",\"artifactMediaType\":", NULL);
		buf_json_string(b, img->artifact_type);
	}
	if (img->pulled_at) {
		buf_puts(b, ",\"lastRecordedPullTime\":", NULL);
		ecr_time_raw(b, img->pulled_at);
	}
	if (img->subject) {
		buf_puts(b, ",\"subjectManifestDigest\":", NULL);
		buf_json_string(b, img->subject);
	}
	buf_puts(b, ",\"imageStatus\":", NULL);
	buf_json_string(b, img->status ? img->status : "ACTIVE");
	buf_append(b, "}", 1, NULL);
}

/* Emits the entries of one image (DescribeImages: one detail; ListImages: one identifier per
 * tag, or one for an untagged image) until the page is full; a page may end inside an image's
 * tags, and the cursor then records how many of them were sent. */
static int add_image(void *ctx, const struct meta_image *img)
{
	struct image_page *p = ctx;
	char *const *tags = img->tags;
	size_t ntags = img->ntags;
	size_t nent = p->describe || ntags == 0 ? 1 : ntags;
	size_t start = img->id == p->pg.after + 1 ? (size_t)p->pg.skip : 0;
	for (size_t j = start; j < nent; j++) {
		if (p->n >= p->pg.limit) {
			p->more = true;
			p->next_after = img->id - 1;
			p->next_skip = (int64_t)j;
			return 1;
		}
		if (p->describe) {
			if (p->n)
				buf_append(&p->c->raw_out, ",", 1, NULL);
			image_detail_raw(&p->c->raw_out, p->repo, img, tags, ntags);
			p->n++;
			continue;
		}
		json_t *e;
		if (ntags)
			e = json_pack("{s:s, s:s}", "imageDigest", img->digest, "imageTag",
			              tags[j]);
		else
			e = json_pack("{s:s}", "imageDigest", img->digest);
		json_array_append_new(p->list, e);
		p->n++;
	}
	return 0;
}

static enum berr_code list_page(struct ecr_call *c, const struct meta_repo *r, bool describe,
                                const char *out_key, struct berr *err)
{
	struct image_page p = {c, r, NULL, {0}, 0, false, 0, 0, describe, BERR_OK, err};
	enum meta_tag_filter tf;
	bool none = false;
	enum berr_code rc;
	if ((rc = ep_page(c->in, 1000, 100, &p.pg, err)) != BERR_OK ||
	    (rc = parse_filter(c->in, &tf, &none, err)) != BERR_OK)
		return rc;
	p.list = json_array();
	json_object_set_new(c->out, out_key, p.list);
	if (none)
		return BERR_OK;
	/* DescribeImages writes its page as JSON text directly (no tree, no float printing). */
	if (describe) {
		buf_init(&c->raw_out, 0);
		buf_puts(&c->raw_out, "{\"imageDetails\":[", NULL);
	}
	/* One image more than the page can hold tells whether a next page exists. */
	rc = c->m->ops->image_list(c->m, r->id, p.pg.after, p.pg.limit + 1, tf, add_image, &p, err);
	if (rc == BERR_OK)
		rc = p.rc;
	if (describe) {
		buf_append(&c->raw_out, "]", 1, NULL);
		if (rc == BERR_OK && p.more) {
			json_t *t = ep_token(p.next_after, p.next_skip);
			buf_puts(&c->raw_out, ",\"nextToken\":", NULL);
			buf_json_string(&c->raw_out, json_string_value(t));
			json_decref(t);
		}
		buf_append(&c->raw_out, "}", 1, NULL);
	} else if (rc == BERR_OK && p.more) {
		json_object_set_new(c->out, "nextToken", ep_token(p.next_after, p.next_skip));
	}
	return rc;
}

enum berr_code ecr_describe_images(struct ecr_call *c, struct berr *err)
{
	json_t *ids = NULL;
	struct meta_repo r = {0};
	enum berr_code rc = ep_array(c->in, "imageIds", false, 1, 100, &ids, err);
	if (rc != BERR_OK)
		return rc;
	if (ids && (json_object_get(c->in, "nextToken") || json_object_get(c->in, "maxResults")))
		return ep_invalid(err, "nextToken", "nextToken cannot be used with imageIds");
	if ((rc = ep_repo(c, &r, err)) != BERR_OK)
		return rc;
	/* Pending pull times of this node first, so a pull is visible to the next describe. */
	struct berr ferr;
	core_pull_flush(c->core, c->m, &ferr);
	if (!ids) {
		rc = list_page(c, &r, true, "imageDetails", err);
		goto out;
	}
	json_t *list = json_array();
	json_object_set_new(c->out, "imageDetails", list);
	json_t *seen = json_object();
	size_t i;
	json_t *e;
	json_array_foreach (ids, i, e) {
		struct image_ref ir;
		if ((rc = parse_image_ref(e, &ir, err)) != BERR_OK)
			break;
		struct meta_image img = {0};
		if (ir.failure_code && !ir.tag && !ir.digest) {
			rc = core_image_not_found(err, &r, NULL, NULL);
			break;
		}
		if ((rc = core_image_find(c->m, &r, ir.tag, ir.digest, false, &img, err)) !=
		    BERR_OK)
			break;
		if (!json_object_get(seen, img.digest)) {
			json_object_set_new(seen, img.digest, json_true());
			char **tags = NULL;
			size_t ntags = 0;
			rc = core_image_tags(c->m, img.id, &tags, &ntags, err);
			if (rc == BERR_OK)
				json_array_append_new(list, image_detail(&r, &img, tags, ntags));
			core_strv_free(tags);
		}
		meta_image_clear(&img);
		if (rc != BERR_OK)
			break;
	}
	json_decref(seen);
out:
	meta_repo_clear(&r);
	return rc;
}

enum berr_code ecr_list_images(struct ecr_call *c, struct berr *err)
{
	struct meta_repo r = {0};
	enum berr_code rc = ep_repo(c, &r, err);
	if (rc == BERR_OK)
		rc = list_page(c, &r, false, "imageIds", err);
	meta_repo_clear(&r);
	return rc;
}

/* ---- ListImageReferrers (the control-plane twin of GET /v2/<name>/referrers) ---- */

struct referrer_page {
	json_t *list;
	json_t *types; /* filter.artifactTypes or NULL */
	struct ep_page pg;
	long long n;
	bool more;
	int64_t last_id;
};

static int add_referrer(void *ctx, const struct meta_image *img)
{
	struct referrer_page *p = ctx;
	if (img->id <= p->pg.after)
		return 0;
	if (p->types) {
		bool match = false;
		size_t i;
		json_t *t;
		json_array_foreach (p->types, i, t)
			match = match || (img->artifact_type &&
			                  strcmp(json_string_value(t), img->artifact_type) == 0);
		if (!match)
			return 0;
	}
	if (p->n >= p->pg.limit) {
		p->more = true;
		return 1;
	}
	json_t *d = api_referrer_descriptor(img);
	json_object_set_new(d, "artifactStatus", json_string(img->status ? img->status : "ACTIVE"));
	json_array_append_new(p->list, d);
	p->n++;
	p->last_id = img->id;
	return 0;
}

static const char *const artifact_status_values[] = {"ACTIVE", "ARCHIVED", "ACTIVATING", "ANY",
                                                     NULL};

enum berr_code ecr_list_image_referrers(struct ecr_call *c, struct berr *err)
{
	json_t *subject = NULL, *filter = NULL, *types = NULL;
	const char *digest = NULL, *status = NULL;
	struct referrer_page p = {0};
	struct meta_repo r = {0};
	enum berr_code rc;
	if ((rc = ep_object(c->in, "subjectId", true, &subject, err)) != BERR_OK ||
	    (rc = ep_str(subject, "imageDigest", true, 0, 0, &digest, err)) != BERR_OK ||
	    (rc = ep_object(c->in, "filter", false, &filter, err)) != BERR_OK ||
	    (rc = ep_array(filter, "artifactTypes", false, 0, 5, &types, err)) != BERR_OK ||
	    (rc = ep_enum(filter, "artifactStatus", false, artifact_status_values, &status, err)) !=
	        BERR_OK ||
	    (rc = ep_page(c->in, 50, 20, &p.pg, err)) != BERR_OK)
		return rc;
	size_t i;
	json_t *t;
	json_array_foreach (types, i, t) {
		if (!json_is_string(t))
			return err_set(err, BERR_SERIALIZATION,
			               "Unexpected value type in 'artifactTypes': expected string");
	}
	if (!ref_digest_matches_ecr_pattern(digest))
		return ep_invalid(err, "subjectId.imageDigest",
		                  "Member must satisfy regular expression "
		                  "'[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'");
	if ((rc = ep_repo(c, &r, err)) != BERR_OK)
		return rc;
	p.list = json_array();
	p.types = json_array_size(types) ? types : NULL;
	json_object_set_new(c->out, "referrers", p.list);
	/* berth has no archived images yet: ARCHIVED/ACTIVATING filters match nothing. */
	if (!status || strcmp(status, "ACTIVE") == 0 || strcmp(status, "ANY") == 0)
		rc = c->m->ops->image_referrers(c->m, r.id, digest, add_referrer, &p, err);
	if (rc == BERR_OK && p.more)
		json_object_set_new(c->out, "nextToken", ep_token(p.last_id, 0));
	meta_repo_clear(&r);
	return rc;
}
