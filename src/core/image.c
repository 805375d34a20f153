/* image.c - images: manifest put (both doors), lookup, tag moves and deletion (spec §3.2, §4.1-
 * §4.4, §4.6).
 *
 * Invariants kept in one transaction per change:
 *  - an image row holds the exact manifest bytes; its digest is SHA-256 of those bytes;
 *  - every blob an image manifest references is readable in the repository (linked or already
 *    referenced), every child of an index is an image of the repository;
 *  - a tag names at most one image; moving it leaves the old image in place (maybe untagged);
 *  - an image referenced by an index of the repository cannot be deleted. */
#include "../base/feat.h"

#include "core.h"
#include "../base/buf.h"
#include "../base/mem.h"
#include "../base/util.h"
#include "../oci/manifest.h"

#include <stdlib.h>
#include <string.h>

void core_put_result_clear(struct core_put_result *r)
{
	if (!r)
		return;
	free(r->media_type);
	free(r->subject);
	r->media_type = r->subject = NULL;
}

static int collect_str(void *ctx, const char *s)
{
	struct {
		char **v;
		size_t n, cap;
	} *a = ctx;
	if (a->n + 1 >= a->cap) {
		a->cap = a->cap ? a->cap * 2 : 8;
		a->v = xrealloc(a->v, a->cap * sizeof(char *));
	}
	a->v[a->n++] = xstrdup(s);
	a->v[a->n] = NULL;
	return 0;
}

enum berr_code core_image_tags(struct meta *m, int64_t image_id, char ***out, size_t *n,
                               struct berr *err)
{
	struct {
		char **v;
		size_t n, cap;
	} a = {0};
	enum berr_code rc = m->ops->image_tags(m, image_id, collect_str, &a, err);
	if (rc != BERR_OK) {
		core_strv_free(a.v);
		return rc;
	}
	if (!a.v)
		a.v = xcalloc(1, sizeof(char *));
	*out = a.v;
	if (n)
		*n = a.n;
	return BERR_OK;
}

void core_strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

enum berr_code core_image_not_found(struct berr *err, const struct meta_repo *repo,
                                    const char *digest, const char *tag)
{
	return err_set(err, BERR_IMAGE_NOT_FOUND,
	               "The image with imageId {imageDigest:'%s', imageTag:'%s'} does not exist "
	               "within the repository with name '%s' in the registry with id '%s'",
	               digest ? digest : "null", tag ? tag : "null", repo->name, repo->account);
}

enum berr_code core_image_find(struct meta *m, const struct meta_repo *repo, const char *tag,
                               const char *digest, bool with_manifest, struct meta_image *out,
                               struct berr *err)
{
	enum berr_code rc;
	if (tag)
		rc = m->ops->image_get_by_tag(m, repo->id, tag, with_manifest, out, err);
	else if (digest)
		rc = m->ops->image_get(m, repo->id, digest, with_manifest, out, err);
	else
		rc = BERR_NOT_FOUND;
	if (rc == BERR_OK && tag && digest && strcmp(out->digest, digest) != 0) {
		meta_image_clear(out);
		rc = BERR_NOT_FOUND;
	}
	if (rc == BERR_NOT_FOUND)
		return core_image_not_found(err, repo, digest, tag);
	return rc;
}

/* Formats "[d1, d2]" of the missing digests. */
static void list_append(struct buf *b, const char *d)
{
	buf_puts(b, b->len ? ", " : "", NULL);
	buf_puts(b, d, NULL);
}

/* Checks references and builds the ref rows. For an index *size becomes the largest child
 * size (spec §4.13). */
static enum berr_code check_refs(struct meta *m, const struct meta_repo *repo,
                                 const struct manifest *man, struct meta_ref **out_refs,
                                 size_t *out_n, int64_t *size, struct berr *err)
{
	size_t cap = man->nlayers + man->nmanifests + 1;
	struct meta_ref *refs = xcalloc(cap, sizeof(*refs));
	size_t n = 0;
	struct buf missing;
	buf_init(&missing, 0);
	enum berr_code rc = BERR_OK;

	if (man->kind == MANIFEST_INDEX) {
		*size = 0;
		for (size_t i = 0; i < man->nmanifests; i++) {
			const struct descriptor *d = &man->manifests[i];
			struct meta_image child = {0};
			rc = m->ops->image_get(m, repo->id, d->digest, false, &child, err);
			if (rc == BERR_NOT_FOUND) {
				list_append(&missing, d->digest);
				rc = BERR_OK;
				continue;
			}
			if (rc != BERR_OK)
				goto out;
			if (child.size > *size)
				*size = child.size;
			meta_image_clear(&child);
			refs[n++] =
			    (struct meta_ref){META_REF_MANIFEST, d->digest, d->media_type, d->size};
		}
		if (missing.len) {
			rc = err_set(err, BERR_REFERENCED_NOT_FOUND,
			             "The following referenced images were not found: [%s]",
			             missing.p);
			goto out;
		}
	} else {
		const struct descriptor *all[1] = {&man->config};
		size_t nall = man->kind == MANIFEST_IMAGE && man->config.digest ? 1 : 0;
		for (size_t i = 0; i < nall + man->nlayers; i++) {
			const struct descriptor *d = i < nall ? all[i] : &man->layers[i - nall];
			if (d->has_urls)
				continue; /* foreign layer: not stored here */
			struct meta_blob blob;
			rc = m->ops->repo_blob_get(m, repo->id, d->digest, &blob, NULL, NULL, err);
			if (rc == BERR_NOT_FOUND) {
				list_append(&missing, d->digest);
				rc = BERR_OK;
				continue;
			}
			if (rc != BERR_OK)
				goto out;
			refs[n++] = (struct meta_ref){META_REF_BLOB, d->digest, d->media_type,
			                              d->size >= 0 ? d->size : blob.size};
		}
		if (missing.len) {
			rc =
			    err_set(err, BERR_LAYERS_NOT_FOUND,
			            "Layers with digests '[%s]' required for pushing image into "
			            "repository with name '%s' in the registry with id '%s' do not "
			            "exist",
			            missing.p, repo->name, repo->account);
			goto out;
		}
		*size = manifest_image_size(man);
		if (man->kind == MANIFEST_SCHEMA1) {
			/* schema 1 declares no sizes: sum the stored blobs (spec §4.13). */
			*size = 0;
			for (size_t i = 0; i < n; i++)
				*size += refs[i].size;
		}
	}
out:
	buf_free(&missing);
	if (rc != BERR_OK) {
		free(refs);
		return rc;
	}
	*out_refs = refs;
	*out_n = n;
	return BERR_OK;
}

/* One image put's transactional part (run by core_txn on the writer connection). */
struct put_job {
	struct meta_repo *repo;
	const struct manifest *man;
	const char *data;
	size_t len;
	const char *tag;
	enum core_put_mode mode;
	struct core_put_result *res;
};

static enum berr_code put_txn(struct meta *m, void *ctx, struct berr *err)
{
	struct put_job *j = ctx;
	struct meta_repo *repo = j->repo;
	const struct manifest *man = j->man;
	struct core_put_result *res = j->res;
	struct meta_ref *refs = NULL;
	size_t nrefs = 0;
	struct meta_image existing = {0}, holder = {0};
	enum berr_code rc;

	if (!repo->id) {
		struct meta_repo row = {0};
		struct registry_id reg = registry_id_of(repo->account, repo->region);
		if ((rc = core_repo_get(m, &reg, repo->name, &row, err)) != BERR_OK)
			return rc;
		meta_repo_clear(repo);
		*repo = row;
	}
	rc = m->ops->image_get(m, repo->id, res->digest, false, &existing, err);
	if (rc != BERR_OK && rc != BERR_NOT_FOUND)
		goto out;
	bool exists = rc == BERR_OK;
	rc = BERR_OK;

	if (j->tag) {
		rc = m->ops->image_get_by_tag(m, repo->id, j->tag, false, &holder, err);
		if (rc == BERR_OK) {
			if (strcmp(holder.digest, res->digest) == 0) {
				if (j->mode == CORE_PUT_ECR) {
					rc =
					    err_set(err, BERR_IMAGE_EXISTS,
					            "Image with digest '%s' and tag '%s' already "
					            "exists in the repository with name '%s' in "
					            "registry with id '%s'",
					            res->digest, j->tag, repo->name, repo->account);
					goto out;
				}
			} else if (core_tag_is_immutable(repo, j->tag)) {
				rc = err_set(err, BERR_TAG_IMMUTABLE,
				             "The image tag '%s' already exists in the '%s' "
				             "repository and cannot be overwritten because the "
				             "repository is immutable.",
				             j->tag, repo->name);
				goto out;
			}
		} else if (rc != BERR_NOT_FOUND) {
			goto out;
		}
		rc = BERR_OK;
	}

	int64_t image_id = existing.id;
	if (!exists) {
		int64_t size = 0;
		if ((rc = check_refs(m, repo, man, &refs, &nrefs, &size, err)) != BERR_OK)
			goto out;
		struct meta_image img = {0};
		img.repo_id = repo->id;
		img.digest = res->digest;
		img.media_type = man->media_type;
		img.artifact_type =
		    man->artifact_type ? man->artifact_type : man->config.media_type;
		img.subject = man->has_subject ? man->subject.digest : NULL;
		img.manifest = (char *)j->data;
		img.manifest_len = j->len;
		img.size = size;
		img.pushed_at = clock_now_ms();
		if ((rc = m->ops->image_insert(m, &img, refs, nrefs, err)) != BERR_OK)
			goto out;
		image_id = img.id;
	}
	if (j->tag && (!holder.digest || strcmp(holder.digest, res->digest) != 0)) {
		if ((rc = m->ops->tag_set(m, repo->id, j->tag, image_id, err)) != BERR_OK)
			goto out;
	}
	free(res->media_type);
	res->media_type = xstrdup(exists ? existing.media_type : man->media_type);
out:
	meta_image_clear(&existing);
	meta_image_clear(&holder);
	free(refs);
	return rc;
}

enum berr_code core_image_put(struct core *c, struct meta_repo *repo, const char *data, size_t len,
                              const char *media_type_hint, const char *tag,
                              const char *expect_digest, enum core_put_mode mode,
                              struct core_put_result *res, struct berr *err)
{
	struct manifest *man = NULL;
	enum berr_code rc = manifest_parse(data, len, media_type_hint, &man, err);
	if (rc != BERR_OK)
		return rc;
	memset(res, 0, sizeof(*res));
	if (!man->media_type) {
		/* The structure told the kind, but an image needs a recorded media type. */
		rc = err_set(err, BERR_MANIFEST_INVALID,
		             "image manifest mediatype not provided in manifest or parameter");
		goto out;
	}
	sha256_digest_str(data, len, res->digest);
	if (expect_digest && strcmp(expect_digest, res->digest) != 0) {
		rc = err_set(err, BERR_IMAGE_DIGEST_MISMATCH,
		             "The provided image digest '%s' does not match the digest '%s' "
		             "calculated for the image",
		             expect_digest, res->digest);
		goto out;
	}
	/* a row with the manifest bytes, references and index entries: a few times len */
	if ((rc = core_space_check(c, NULL, CORE_SPACE_META, 4 * (int64_t)len + 16384, err)) !=
	    BERR_OK)
		goto out;
	struct put_job job = {repo, man, data, len, tag, mode, res};
	if ((rc = core_txn(c, put_txn, &job, err)) != BERR_OK)
		goto out;
	res->subject = man->has_subject ? xstrdup(man->subject.digest) : NULL;
out:
	if (rc != BERR_OK)
		core_put_result_clear(res);
	manifest_free(man);
	return rc;
}

struct deleted_tags {
	core_deleted_fn fn;
	void *ctx;
	const char *digest;
	int count;
};

static int report_tag(void *ctx, const char *tag)
{
	struct deleted_tags *d = ctx;
	d->fn(d->ctx, d->digest, tag);
	d->count++;
	return 0;
}

enum berr_code core_image_delete_entry(struct meta *m, const struct meta_repo *repo,
                                       const char *tag, const char *digest,
                                       bool referenced_at_start, core_deleted_fn fn, void *ctx,
                                       struct berr *err)
{
	struct meta_image img = {0};
	enum berr_code rc = core_image_find(m, repo, tag, digest, false, &img, err);
	if (rc != BERR_OK)
		return rc;
	int64_t ntags = 0;
	if ((rc = m->ops->tag_count(m, img.id, &ntags, err)) != BERR_OK)
		goto out;
	bool whole = digest != NULL || ntags <= 1;
	if (whole) {
		bool referenced = referenced_at_start;
		if (!referenced && (rc = m->ops->image_is_child(m, repo->id, img.digest,
		                                                &referenced, err)) != BERR_OK)
			goto out;
		if (referenced) {
			rc = err_set(err, BERR_IMAGE_REFERENCED,
			             "Requested image referenced by manifest list");
			goto out;
		}
		struct deleted_tags d = {fn, ctx, img.digest, 0};
		if ((rc = m->ops->image_tags(m, img.id, report_tag, &d, err)) != BERR_OK)
			goto out;
		if (d.count == 0)
			fn(ctx, img.digest, NULL);
		rc = m->ops->image_delete(m, img.id, err);
	} else {
		if ((rc = m->ops->tag_delete(m, repo->id, tag, err)) == BERR_OK)
			fn(ctx, img.digest, tag);
	}
out:
	meta_image_clear(&img);
	return rc;
}

/* The blob row of digest as seen by repo. */
static enum berr_code blob_row(struct meta *m, const struct meta_repo *repo, const char *digest,
                               struct meta_blob *out, char **media_type, bool *referenced,
                               struct berr *err)
{
	enum berr_code rc =
	    m->ops->repo_blob_get(m, repo->id, digest, out, media_type, referenced, err);
	if (rc == BERR_NOT_FOUND)
		return err_set(err, BERR_BLOB_UNKNOWN,
		               "The layer with digest '%s' does not exist in the repository with "
		               "name '%s' in the registry with id '%s'",
		               digest, repo->name, repo->account);
	return rc;
}

enum berr_code core_blob_get(struct meta *m, const struct meta_repo *repo, const char *digest,
                             int64_t *size, char **media_type, bool *referenced, struct berr *err)
{
	struct meta_blob b;
	enum berr_code rc = blob_row(m, repo, digest, &b, media_type, referenced, err);
	if (rc == BERR_OK && size)
		*size = b.size;
	return rc;
}

enum berr_code core_blob_open(struct core *c, struct meta *m, const struct meta_repo *repo,
                              const char *digest, int *fd, int64_t *size, struct berr *err)
{
	/* The file named by the row we read may be collected before we open it, and the blob
	 * pushed again under a new name: one more look finds that one. */
	for (int attempt = 0;; attempt++) {
		struct meta_blob b;
		enum berr_code rc = blob_row(m, repo, digest, &b, NULL, NULL, err);
		if (rc != BERR_OK)
			return rc;
		rc = c->blobs->ops->open(c->blobs, digest, b.gen, fd, size, err);
		if (rc != BERR_NOT_FOUND)
			return rc;
		if (attempt == 1)
			return err_set(err, BERR_BLOB_UNKNOWN, "blob unknown to registry");
	}
}

enum berr_code core_blob_mount(struct meta *m, const struct meta_repo *to,
                               const struct meta_repo *from, const char *digest, struct berr *err)
{
	/* One write transaction: gc, re-checking the blob in its own, then sees the new link
	 * (or has removed the row first, and the mount is refused). */
	enum berr_code rc = m->ops->txn_begin(m, err);
	if (rc != BERR_OK)
		return rc;
	bool ok = false;
	if (from) {
		rc = m->ops->repo_blob_get(m, from->id, digest, NULL, NULL, NULL, err);
		ok = rc == BERR_OK;
		if (rc == BERR_NOT_FOUND)
			rc = BERR_OK;
	} else {
		rc = m->ops->registry_blob_known(m, to->account, to->region, digest, &ok, err);
		if (rc == BERR_OK && ok &&
		    (rc = m->ops->blob_get(m, digest, NULL, err)) == BERR_NOT_FOUND) {
			ok = false;
			rc = BERR_OK;
		}
	}
	if (rc == BERR_OK && !ok)
		rc = err_set(err, BERR_BLOB_UNKNOWN, "blob %s is not available to mount", digest);
	if (rc == BERR_OK)
		rc = m->ops->repo_blob_link(m, to->id, digest, err);
	if (rc == BERR_OK)
		rc = m->ops->txn_commit(m, err);
	if (rc != BERR_OK)
		m->ops->txn_rollback(m);
	return rc;
}

enum berr_code core_blob_unlink(struct meta *m, const struct meta_repo *repo, const char *digest,
                                struct berr *err)
{
	bool referenced = false;
	enum berr_code rc = core_blob_get(m, repo, digest, NULL, NULL, &referenced, err);
	if (rc != BERR_OK)
		return rc;
	/* A blob that a manifest of the repository references stays readable as long as the
	 * manifest does (spec §4.16): refuse rather than report a deletion that did nothing. */
	if (referenced)
		return err_set(err, BERR_METHOD_NOT_ALLOWED,
		               "blob %s is referenced by a manifest in repository '%s'; delete the "
		               "manifest first",
		               digest, repo->name);
	return m->ops->repo_blob_unlink(m, repo->id, digest, err);
}

static void ignore_deleted(void *ctx, const char *digest, const char *tag)
{
	(void)ctx;
	(void)digest;
	(void)tag;
}

enum berr_code core_image_delete(struct meta *m, const struct meta_repo *repo, const char *tag,
                                 const char *digest, struct berr *err)
{
	enum berr_code rc = m->ops->txn_begin(m, err);
	if (rc != BERR_OK)
		return rc;
	rc = core_image_delete_entry(m, repo, tag, digest, false, ignore_deleted, NULL, err);
	if (rc == BERR_OK)
		rc = m->ops->txn_commit(m, err);
	if (rc != BERR_OK)
		m->ops->txn_rollback(m);
	return rc;
}
