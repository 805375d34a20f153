/* gc.c - online garbage collection: frees the bytes of blobs no manifest references, removes
 * abandoned upload sessions and files nothing owns. Pushes and pulls continue meanwhile, in
 * this process and in others (another server's pass, `berth gc`, `berth fsck`; and, with a
 * shared database and store, other nodes).
 *
 * How a blob's bytes are named and owned. A blob's file is (digest, gen), gen being the id of
 * the upload that wrote it (blob.h); a name is written once and deleted at most once. At any
 * time each file is owned by exactly one of:
 *   - the blob row of digest, if the row names gen (the blob is live);
 *   - the upload session gen, from the moment its completion renames the file into place
 *     until the transaction that ends the session (and makes the row, or trashes the file);
 *   - a trash row (digest, gen): nothing may use the file any more.
 * Only files owned by the trash are deleted, and the trash row goes only once the file is
 * gone. A file moves to the trash only inside a write transaction that saw no blob row name
 * it, and a blob row is made only for a file no trash row owns (a completing upload's own
 * file, or an orphan fsck re-indexes after checking inside its transaction). So:
 *   I1. while a blob row names (digest, gen), that file exists: it was durable before the row
 *       committed, and nothing deletes a file a blob row names;
 *   I2. a name never comes back: an upload id is never reused, so no writer can put bytes
 *       under a name that is being deleted. No lock between gc and writers is needed, only
 *       the database's serialisable write transactions.
 *
 * Every writer that can race a gc pass, and why it is safe:
 *   - Upload completion (ECR CompleteLayerUpload, /v2 PUT of an upload, monolithic POST),
 *     in any process or node: renames its own file (digest, upload id) into place, then in
 *     one transaction makes the blob row if digest has none (else trashes its duplicate
 *     file), links the blob to the repository (linked_at = now) and ends the session. gc
 *     moves a row to the trash only inside a write transaction that re-checks the row is
 *     still garbage: no manifest reference, no link newer than the grace period, created
 *     before it. The two transactions serialise: if gc's goes first, the upload finds no row
 *     and makes a new one for its own file (gc deletes only the old name); if the upload's
 *     goes first, gc's re-check sees the fresh link and skips.
 *   - Cross-repository mount: checks the blob and links it in one write transaction; the
 *     same argument (a fresh link).
 *   - Image put (PutImage, manifest PUT, both doors): checks that every referenced blob has a
 *     row and inserts the references in one write transaction. If gc's goes first, the put
 *     fails with LayersNotFound / MANIFEST_BLOB_UNKNOWN and the client uploads the blob
 *     again; if the put's goes first, gc's re-check sees the reference.
 *   - Another gc pass (the server's timer, `berth gc`, other nodes): moving a row to the
 *     trash happens once (the second re-check finds no row naming gen); deleting a trashed
 *     file and forgetting its trash row are idempotent.
 *   - fsck --repair: drops a damaged blob by moving its row to the trash (as gc does);
 *     re-indexes an orphan file only inside a transaction that finds it owned by nothing and
 *     still present, and digest without a row.
 *   - Upload expiry and cancel: delete the session row, then its upload file. A completion
 *     that had renamed the file into place but died before its transaction leaves a file
 *     owned by nothing once the session row is gone: an orphan.
 *   - Orphans (files owned by nothing: crash leftovers) are trashed in a transaction that
 *     re-checks that nothing owns them, then deleted. Because ownership passes from the
 *     upload session to the blob row or the trash inside one transaction, a file is never
 *     owned by nothing while it is still needed: no file age or clock is involved (orphans
 *     are kept for a grace period all the same, as a margin for people: see orphan_ctx).
 * The grace period is policy, not safety: it keeps blobs uploaded but not yet referenced for
 * the client to push its manifest. It is measured on the clock of whoever writes created_at
 * and linked_at (this machine for SQLite), so it must exceed any clock step between writers.
 * A crash anywhere leaves trash rows (their files are deleted by the next pass) or orphans,
 * never a blob row without its file. Upload sessions are removed under their session lock,
 * only if still idle past the grace; lock files of sessions that no longer exist go too. */
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

/* Candidates moved to the trash per write transaction: short transactions, few commits. */
#define TRASH_CHUNK 64

int core_blob_batch_add(void *ctx, const struct meta_blob *b)
{
	struct core_blob_batch *l = ctx;
	l->v[l->n++] = *b;
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

/* Deletes the file of a trash row and forgets the row (the file first: see I1). */
static enum berr_code unlink_trashed(struct core *c, struct meta *m, const struct meta_blob *b,
                                     struct berr *err)
{
	enum berr_code rc = c->blobs->ops->remove(c->blobs, b->digest, b->gen, err);
	return rc == BERR_OK ? m->ops->trash_remove(m, b->digest, b->gen, err) : rc;
}

/* Deletes the files of the trash: left by a pass or a completion that crashed between its
 * commit and the unlink, or by one still running (deleting a file twice is harmless). */
static enum berr_code empty_trash(struct core *c, struct meta *m, struct berr *err)
{
	struct core_blob_batch l = {xcalloc(CORE_BLOB_BATCH, sizeof(*l.v)), 0};
	enum berr_code rc;
	do {
		l.n = 0;
		rc = m->ops->trash_list(m, CORE_BLOB_BATCH, core_blob_batch_add, &l, err);
		for (size_t i = 0; rc == BERR_OK && i < l.n; i++)
			rc = unlink_trashed(c, m, &l.v[i], err);
	} while (rc == BERR_OK && l.n == CORE_BLOB_BATCH);
	free(l.v);
	return rc;
}

/* Moves the rows of v[0..n) that are still garbage to the trash in one transaction, then
 * deletes their files. Adds what it freed to st. */
static enum berr_code trash_chunk(struct core *c, struct meta *m, const struct meta_garbage *g,
                                  const struct meta_blob *v, size_t n, struct core_gc_stats *st,
                                  struct berr *err)
{
	bool moved[TRASH_CHUNK] = {false};
	enum berr_code rc = m->ops->txn_begin(m, err);
	for (size_t i = 0; rc == BERR_OK && i < n; i++)
		rc = m->ops->blob_trash(m, v[i].digest, v[i].gen, g, &moved[i], err);
	if (rc == BERR_OK)
		rc = m->ops->txn_commit(m, err);
	if (rc != BERR_OK) {
		m->ops->txn_rollback(m);
		return rc;
	}
	for (size_t i = 0; i < n; i++) {
		if (!moved[i])
			continue;
		if ((rc = unlink_trashed(c, m, &v[i], err)) != BERR_OK)
			return rc; /* the trash row stays: the next pass retries */
		st->blobs++;
		st->bytes += v[i].size;
		log_debug("gc: deleted %s (%lld bytes)", v[i].digest, (long long)v[i].size);
	}
	return BERR_OK;
}

static enum berr_code collect_blobs(struct core *c, struct meta *m, const struct core_gc_opts *o,
                                    const struct meta_garbage *g, struct core_gc_stats *st,
                                    struct berr *err)
{
	struct core_blob_batch l = {xcalloc(CORE_BLOB_BATCH, sizeof(*l.v)), 0};
	char after[DIGEST_STR_LEN] = "";
	long long seen = 0;
	enum berr_code rc;
	for (;;) {
		l.n = 0;
		rc = m->ops->gc_candidates(m, g, after[0] ? after : NULL, CORE_BLOB_BATCH,
		                           core_blob_batch_add, &l, err);
		if (rc != BERR_OK || l.n == 0)
			break;
		for (size_t i = 0; i < l.n && rc == BERR_OK; i += TRASH_CHUNK) {
			size_t k = l.n - i < TRASH_CHUNK ? l.n - i : TRASH_CHUNK;
			if (o->dry_run) {
				for (size_t j = i; j < i + k; j++) {
					st->blobs++;
					st->bytes += l.v[j].size;
				}
			} else {
				rc = trash_chunk(c, m, g, l.v + i, k, st, err);
			}
		}
		if (rc != BERR_OK)
			break;
		seen += (long long)l.n;
		progress(o, "gc: %lld candidate blobs examined, %lld freed so far", seen,
		         (long long)st->blobs);
		snprintf(after, sizeof(after), "%s", l.v[l.n - 1].digest);
		if (l.n < CORE_BLOB_BATCH)
			break;
	}
	free(l.v);
	return rc;
}

/* Trashes the file (digest, gen) if nothing owns it, re-checked in a write transaction;
 * *trashed = it did. */
static enum berr_code trash_if_unowned(struct meta *m, const char *digest, const char *gen,
                                       bool *trashed, struct berr *err)
{
	bool owned = true;
	*trashed = false;
	enum berr_code rc = m->ops->txn_begin(m, err);
	if (rc == BERR_OK)
		rc = m->ops->blob_file_owned(m, digest, gen, &owned, err);
	if (rc == BERR_OK && !owned)
		rc = m->ops->trash_add(m, digest, gen, err);
	if (rc == BERR_OK)
		rc = m->ops->txn_commit(m, err);
	if (rc != BERR_OK) {
		m->ops->txn_rollback(m);
		return rc;
	}
	*trashed = !owned;
	return BERR_OK;
}

/* Orphans are left alone until they are older than the grace period. Safety does not need
 * that (see the top); it spares files a person is putting back by hand, or that a writer of
 * an older berth on the same store is committing. */
struct orphan_ctx {
	struct core *c;
	struct meta *m;
	const struct core_gc_opts *o;
	int64_t cutoff;
	struct core_gc_stats *st;
};

/* A blob file nothing owns. */
static int visit_blob_file(void *ctx, const char *digest, const char *gen, int64_t size,
                           int64_t mtime)
{
	struct orphan_ctx *oc = ctx;
	struct berr e;
	bool owned = true, trashed = false;
	if (mtime >= oc->cutoff ||
	    oc->m->ops->blob_file_owned(oc->m, digest, gen, &owned, &e) != BERR_OK || owned)
		return 0;
	if (oc->o->dry_run) {
		trashed = true;
	} else if (trash_if_unowned(oc->m, digest, gen, &trashed, &e) == BERR_OK && trashed) {
		struct meta_blob b = {.size = size};
		snprintf(b.digest, sizeof(b.digest), "%s", digest);
		snprintf(b.gen, sizeof(b.gen), "%s", gen);
		unlink_trashed(oc->c, oc->m, &b, &e);
	}
	if (trashed) {
		oc->st->orphan_files++;
		oc->st->orphan_bytes += size;
	}
	return 0;
}

/* An upload file whose session is gone. Sessions make their row before their file and drop
 * the row before the file, so a file without a row is never needed again. */
static int visit_upload_file(void *ctx, const char *id, const char *gen, int64_t size,
                             int64_t mtime)
{
	(void)gen;
	struct orphan_ctx *oc = ctx;
	if (mtime >= oc->cutoff)
		return 0;
	struct berr e;
	struct meta_upload u = {0};
	bool orphan = oc->m->ops->upload_get(oc->m, id, &u, &e) == BERR_NOT_FOUND;
	meta_upload_clear(&u);
	if (!orphan)
		return 0;
	oc->st->orphan_files++;
	oc->st->orphan_bytes += size;
	if (!oc->o->dry_run) {
		oc->c->blobs->ops->upload_remove(oc->c->blobs, id);
		core_lock_remove(oc->c, id);
	}
	return 0;
}

/* Lock files of upload sessions that no longer exist. */
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
	struct meta_garbage g = {cutoff, cutoff};
	enum berr_code rc = BERR_OK;
	/* 1. Files trashed by passes that did not finish. */
	if (!o->dry_run && (rc = empty_trash(c, m, err)) != BERR_OK)
		return rc;
	/* 2. Abandoned upload sessions: their files then count as orphans. */
	if (o->dry_run) {
		struct count_ctx cc = {m, 0};
		rc = m->ops->upload_list_stale(m, cutoff, 1000000, count_stale, &cc, err);
		st->uploads = cc.n;
	} else {
		rc = core_upload_expire(c, m, cutoff, &st->uploads, err);
	}
	if (rc != BERR_OK)
		return rc;
	/* 3. Unreferenced blobs. */
	if ((rc = collect_blobs(c, m, o, &g, st, err)) != BERR_OK)
		return rc;
	/* 4. Files nothing owns. */
	struct orphan_ctx oc = {c, m, o, cutoff, st};
	if ((rc = c->blobs->ops->walk(c->blobs, visit_blob_file, &oc, err)) != BERR_OK)
		return rc;
	if ((rc = c->blobs->ops->upload_walk(c->blobs, visit_upload_file, &oc, err)) != BERR_OK)
		return rc;
	collect_lock_files(c, m, cutoff, o->dry_run);
	return BERR_OK;
}
