/* gc.c - online garbage collection: frees the bytes of blobs no manifest references, removes
 * abandoned upload sessions and files that no row names. Pushes and pulls continue meanwhile.
 *
 * Safety argument (why a blob a concurrent push references is never deleted):
 *  - Candidates are blobs whose row is older than the grace period, that no manifest of any
 *    repository references (image_refs) and that no repository linked within the grace period
 *    (an upload or mount links; a push references a blob only after linking it).
 *  - Each candidate is re-checked and its row deleted inside a write transaction. PutImage
 *    checks that every referenced blob has a row and inserts its references in one write
 *    transaction too. SQLite serialises the two: either gc commits first (the push then sees
 *    no row and fails with MANIFEST_BLOB_UNKNOWN / LayersNotFound, and the client uploads the
 *    blob again) or the push commits first (gc's re-check then sees the reference and skips).
 *  - The file is unlinked after the row's deletion commits, under the blob's lock. An upload
 *    completing the same digest takes that lock around "rename file into place + insert row",
 *    so it never keeps a file that gc is about to unlink: it either runs before (gc's re-check
 *    sees its fresh link and skips) or after (it renames a new file into place).
 *  - Upload sessions are removed under their session lock, only if still idle past the grace.
 *  - Orphan files (no row) are removed only when older than the grace period, so a blob being
 *    committed (file renamed, row not yet inserted) is never taken for an orphan.
 * A crash between commit and unlink leaves an orphan file, which the next pass removes. */
#include "../base/feat.h"

#include "core_int.h"
#include "../base/log.h"
#include "../base/mem.h"
#include "../base/util.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int core_blob_batch_add(void *ctx, const char *digest, int64_t size)
{
	struct core_blob_batch *l = ctx;
	snprintf(l->v[l->n].digest, sizeof(l->v[l->n].digest), "%s", digest);
	l->v[l->n].size = size;
	l->n++;
	return 0;
}

static void progress(const struct core_gc_opts *o, const char *fmt, long long a, long long b)
{
	if (!o->progress)
		return;
	char line[256];
	snprintf(line, sizeof(line), fmt, a, b);
	o->progress(o->ctx, line);
}

/* Deletes one candidate if it is still garbage; *freed = it was. */
static enum berr_code collect_one(struct core *c, struct meta *m, const char *digest,
                                  int64_t linked_after, bool *freed, struct berr *err)
{
	int lock = -1;
	bool garbage = false;
	*freed = false;
	enum berr_code rc = core_blob_lock(c, digest, &lock, err);
	if (rc != BERR_OK)
		return rc;
	if ((rc = m->ops->txn_begin(m, err)) != BERR_OK)
		goto out;
	if ((rc = m->ops->gc_is_garbage(m, digest, linked_after, &garbage, err)) == BERR_OK &&
	    garbage)
		rc = m->ops->blob_delete(m, digest, err);
	if (rc == BERR_OK)
		rc = m->ops->txn_commit(m, err);
	if (rc != BERR_OK) {
		m->ops->txn_rollback(m);
		goto out;
	}
	if (garbage) {
		rc = c->blobs->ops->remove(c->blobs, digest, err);
		*freed = rc == BERR_OK;
	}
out:
	core_lock_release(lock);
	return rc;
}

static enum berr_code collect_blobs(struct core *c, struct meta *m, const struct core_gc_opts *o,
                                    int64_t cutoff, struct core_gc_stats *st, struct berr *err)
{
	struct core_blob_batch l = {xcalloc(CORE_BLOB_BATCH, sizeof(*l.v)), 0};
	char after[DIGEST_STR_LEN] = "";
	long long seen = 0;
	enum berr_code rc;
	for (;;) {
		l.n = 0;
		rc = m->ops->gc_candidates(m, cutoff, cutoff, after[0] ? after : NULL,
		                           CORE_BLOB_BATCH, core_blob_batch_add, &l, err);
		if (rc != BERR_OK || l.n == 0)
			break;
		for (size_t i = 0; i < l.n; i++) {
			bool freed = o->dry_run;
			if (!o->dry_run &&
			    (rc = collect_one(c, m, l.v[i].digest, cutoff, &freed, err)) != BERR_OK)
				goto out;
			if (freed) {
				st->blobs++;
				st->bytes += l.v[i].size;
				log_debug("gc: %s %s (%lld bytes)",
				          o->dry_run ? "would delete" : "deleted", l.v[i].digest,
				          (long long)l.v[i].size);
			}
		}
		seen += (long long)l.n;
		progress(o, "gc: %lld candidate blobs examined, %lld freed so far", seen,
		         (long long)st->blobs);
		snprintf(after, sizeof(after), "%s", l.v[l.n - 1].digest);
		if (l.n < CORE_BLOB_BATCH)
			break;
	}
out:
	free(l.v);
	return rc;
}

struct orphan_ctx {
	struct core *c;
	struct meta *m;
	const struct core_gc_opts *o;
	int64_t cutoff;
	struct core_gc_stats *st;
	bool uploads; /* walking upload files (else blob files) */
};

static int visit_orphan(void *ctx, const char *name, int64_t size, int64_t mtime)
{
	struct orphan_ctx *oc = ctx;
	struct berr e;
	if (mtime >= oc->cutoff)
		return 0;
	bool orphan;
	if (oc->uploads) {
		struct meta_upload u = {0};
		orphan = oc->m->ops->upload_get(oc->m, name, &u, &e) == BERR_NOT_FOUND;
		meta_upload_clear(&u);
	} else {
		orphan = oc->m->ops->blob_get(oc->m, name, NULL, &e) == BERR_NOT_FOUND;
	}
	if (!orphan)
		return 0;
	oc->st->orphan_files++;
	oc->st->orphan_bytes += size;
	if (oc->o->dry_run)
		return 0;
	if (oc->uploads) {
		oc->c->blobs->ops->upload_remove(oc->c->blobs, name);
		core_lock_remove(oc->c, name);
		return 0;
	}
	/* Re-check under the blob lock: a commit may have inserted the row meanwhile. */
	int lock = -1;
	if (core_blob_lock(oc->c, name, &lock, &e) != BERR_OK)
		return 0;
	if (oc->m->ops->blob_get(oc->m, name, NULL, &e) == BERR_NOT_FOUND)
		oc->c->blobs->ops->remove(oc->c->blobs, name, &e);
	core_lock_release(lock);
	return 0;
}

/* Lock files of upload sessions that no longer exist (blob lock stripes are permanent). */
static void collect_lock_files(struct core *c, struct meta *m, int64_t cutoff, bool dry_run)
{
	DIR *d = opendir(c->lock_dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!uuid_is_valid(e->d_name))
			continue;
		char *p = xasprintf("%s/%s", c->lock_dir, e->d_name);
		struct stat sb;
		struct meta_upload u = {0};
		struct berr err;
		if (!dry_run && stat(p, &sb) == 0 && (int64_t)sb.st_mtim.tv_sec * 1000 < cutoff &&
		    m->ops->upload_get(m, e->d_name, &u, &err) == BERR_NOT_FOUND)
			unlink(p);
		meta_upload_clear(&u);
		free(p);
	}
	closedir(d);
}

struct count_ctx {
	struct meta *m;
	int64_t n;
};

static int count_stale(void *ctx, const char *id)
{
	(void)id;
	((struct count_ctx *)ctx)->n++;
	return 0;
}

enum berr_code core_gc(struct core *c, struct meta *m, const struct core_gc_opts *o,
                       struct core_gc_stats *st, struct berr *err)
{
	memset(st, 0, sizeof(*st));
	int64_t cutoff = clock_now_ms() - o->grace_ms;
	enum berr_code rc;
	/* 1. Abandoned upload sessions first: their files then count as orphans no more. */
	if (o->dry_run) {
		struct count_ctx cc = {m, 0};
		rc = m->ops->upload_list_stale(m, cutoff, 1000000, count_stale, &cc, err);
		st->uploads = cc.n;
	} else {
		rc = core_upload_expire(c, m, cutoff, &st->uploads, err);
	}
	if (rc != BERR_OK)
		return rc;
	/* 2. Unreferenced blobs. */
	if ((rc = collect_blobs(c, m, o, cutoff, st, err)) != BERR_OK)
		return rc;
	/* 3. Files no row names. */
	struct orphan_ctx oc = {c, m, o, cutoff, st, false};
	if ((rc = c->blobs->ops->walk(c->blobs, visit_orphan, &oc, err)) != BERR_OK)
		return rc;
	oc.uploads = true;
	if ((rc = c->blobs->ops->upload_walk(c->blobs, visit_orphan, &oc, err)) != BERR_OK)
		return rc;
	collect_lock_files(c, m, cutoff, o->dry_run);
	return BERR_OK;
}
