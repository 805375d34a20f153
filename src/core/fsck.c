/* fsck.c - `berth fsck`: verifies that every blob file matches its digest, that every blob row
 * has a file and every file an owner, and that every manifest's blob references exist.
 *
 * It runs while servers and gc work on the same store, so a finding is reported only once it
 * is certain (the ownership rules are in gc.c): a row whose file is missing is damage only if
 * the row still names that file after the file was found missing (a row naming (digest, gen)
 * is never made again once gone, so it existed throughout, and gc never deletes a file a row
 * names); a file nothing owns is an orphan only if it is still there after that was found
 * (gc deletes a file only after trashing it, and forgets the trash row only after).
 *
 * Repairs are the safe ones only: a corrupt or missing blob goes to the trash like garbage, so
 * the registry stops serving bad bytes and a client can push the blob again; an orphan whose
 * content matches its name is indexed again (inside a transaction that re-checks all of the
 * above), otherwise trashed. Manifests that reference missing blobs are reported, not
 * deleted: that is the operator's decision. No lock is taken: only transactions. */
#include "../base/feat.h"

#include "core_int.h"
#include "../base/mem.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READ_CHUNK (1 << 20)

struct fsck_ctx {
	struct core *c;
	struct meta *m;
	bool repair;
	void (*report)(void *ctx, const char *line);
	void *rctx;
	struct core_fsck_stats *st;
	char *buf;
};

static void say(struct fsck_ctx *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct fsck_ctx *f, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (f->report)
		f->report(f->rctx, line);
}

/* Hashes the file (digest, gen). *present = it exists; *ok = its content matches. */
static enum berr_code hash_file(struct fsck_ctx *f, const char *digest, const char *gen,
                                bool *present, bool *ok, int64_t *size, struct berr *err)
{
	int fd = -1;
	*present = *ok = false;
	enum berr_code rc = f->c->blobs->ops->open(f->c->blobs, digest, gen, &fd, size, err);
	if (rc == BERR_NOT_FOUND)
		return BERR_OK;
	if (rc != BERR_OK)
		return rc;
	*present = true;
	struct sha256 h;
	sha256_init(&h);
	for (;;) {
		ssize_t n = read(fd, f->buf, READ_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = err_sys(err, BERR_IO, errno, "read %s: %s", digest, strerror(errno));
			break;
		}
		if (n == 0)
			break;
		sha256_update(&h, f->buf, (size_t)n);
	}
	close(fd);
	char got[DIGEST_STR_LEN];
	sha256_peek_str(&h, got);
	*ok = strcmp(got, digest) == 0;
	return rc;
}

/* Moves a bad blob's row to the trash (if it still names the same file) and deletes the
 * file, as gc would. */
static void drop_blob(struct fsck_ctx *f, const struct meta_blob *b)
{
	struct berr e;
	struct meta *m = f->m;
	bool moved = false;
	if (m->ops->txn_begin(m, &e) != BERR_OK)
		return;
	if (m->ops->blob_trash(m, b->digest, b->gen, NULL, &moved, &e) != BERR_OK ||
	    m->ops->txn_commit(m, &e) != BERR_OK) {
		m->ops->txn_rollback(m);
		return;
	}
	if (moved && f->c->blobs->ops->remove(f->c->blobs, b->digest, b->gen, &e) == BERR_OK &&
	    m->ops->trash_remove(m, b->digest, b->gen, &e) == BERR_OK)
		f->st->repaired++;
}

/* True if digest's row still names gen (it has named it all along: see the top). */
static bool still_names(struct fsck_ctx *f, const struct meta_blob *b)
{
	struct meta_blob now;
	struct berr e;
	return f->m->ops->blob_get(f->m, b->digest, &now, &e) == BERR_OK &&
	       strcmp(now.gen, b->gen) == 0;
}

static enum berr_code check_rows(struct fsck_ctx *f, struct berr *err)
{
	struct core_blob_batch l = {xcalloc(CORE_BLOB_BATCH, sizeof(*l.v)), 0};
	char after[DIGEST_STR_LEN] = "";
	enum berr_code rc;
	for (;;) {
		l.n = 0;
		rc = f->m->ops->blob_list(f->m, after[0] ? after : NULL, CORE_BLOB_BATCH,
		                          core_blob_batch_add, &l, err);
		if (rc != BERR_OK || l.n == 0)
			break;
		for (size_t i = 0; i < l.n; i++) {
			bool present, ok;
			int64_t size = 0;
			if ((rc = hash_file(f, l.v[i].digest, l.v[i].gen, &present, &ok, &size,
			                    err)) != BERR_OK)
				goto out;
			if (!present && !still_names(f, &l.v[i]))
				continue; /* collected meanwhile */
			f->st->blobs_checked++;
			f->st->bytes_checked += size;
			if (!present) {
				f->st->missing_files++;
				say(f, "missing file: blob %s has a row but no file",
				    l.v[i].digest);
			} else if (!ok) {
				f->st->corrupt++;
				say(f, "corrupt: blob %s does not match its digest", l.v[i].digest);
			} else if (size != l.v[i].size) {
				f->st->corrupt++;
				say(f, "corrupt: blob %s is %lld bytes, its row says %lld",
				    l.v[i].digest, (long long)size, (long long)l.v[i].size);
				ok = false;
			}
			if ((!present || !ok) && f->repair)
				drop_blob(f, &l.v[i]);
		}
		snprintf(after, sizeof(after), "%s", l.v[l.n - 1].digest);
		if (l.n < CORE_BLOB_BATCH)
			break;
	}
out:
	free(l.v);
	return rc;
}

/* Indexes a valid orphan again, or trashes an invalid one, in a transaction that re-checks
 * that nothing owns it and that it is still there. */
static void repair_orphan(struct fsck_ctx *f, const char *digest, const char *gen)
{
	struct berr e;
	struct meta *m = f->m;
	bool present, ok, owned = true, trashed = false, fixed = false;
	struct meta_blob b = {0};
	if (hash_file(f, digest, gen, &present, &ok, &b.size, &e) != BERR_OK || !present)
		return;
	snprintf(b.digest, sizeof(b.digest), "%s", digest);
	snprintf(b.gen, sizeof(b.gen), "%s", gen);
	if (m->ops->txn_begin(m, &e) != BERR_OK)
		return;
	enum berr_code rc = m->ops->blob_file_owned(m, digest, gen, &owned, &e);
	if (rc == BERR_OK && !owned &&
	    f->c->blobs->ops->stat(f->c->blobs, digest, gen, NULL, &e) == BERR_OK) {
		rc = m->ops->blob_get(m, digest, NULL, &e);
		if (ok && rc == BERR_NOT_FOUND) {
			rc = m->ops->blob_insert(m, &b, &e); /* a valid blob: known again */
		} else if (rc == BERR_OK || rc == BERR_NOT_FOUND) {
			rc = m->ops->trash_add(m, digest, gen, &e); /* corrupt, or a duplicate */
			trashed = rc == BERR_OK;
		}
		fixed = rc == BERR_OK;
	}
	if (rc != BERR_OK || m->ops->txn_commit(m, &e) != BERR_OK) {
		m->ops->txn_rollback(m);
		return;
	}
	if (fixed)
		f->st->repaired++;
	if (trashed && f->c->blobs->ops->remove(f->c->blobs, digest, gen, &e) == BERR_OK)
		m->ops->trash_remove(m, digest, gen, &e);
}

static int visit_file(void *ctx, const char *digest, const char *gen, int64_t size, int64_t mtime)
{
	(void)mtime;
	struct fsck_ctx *f = ctx;
	struct berr e;
	bool owned = true;
	if (f->m->ops->blob_file_owned(f->m, digest, gen, &owned, &e) != BERR_OK || owned)
		return 0;
	if (f->c->blobs->ops->stat(f->c->blobs, digest, gen, NULL, &e) != BERR_OK)
		return 0; /* deleted meanwhile (gc trashed it after we listed it) */
	f->st->orphan_files++;
	say(f, "orphan: file for %s%s%s (%lld bytes) has no row", digest,
	    gen[0] ? " generation " : "", gen, (long long)size);
	if (f->repair)
		repair_orphan(f, digest, gen);
	return 0;
}

static int visit_badref(void *ctx, const char *account, const char *region, const char *repo,
                        const char *image, const char *blob)
{
	struct fsck_ctx *f = ctx;
	f->st->missing_refs++;
	say(f, "missing blob: image %s of %s (registry %s/%s) references %s, which is not stored",
	    image, repo, account, region, blob);
	return 0;
}

enum berr_code core_fsck(struct core *c, struct meta *m, bool repair,
                         void (*report)(void *ctx, const char *line), void *ctx,
                         struct core_fsck_stats *st, struct berr *err)
{
	memset(st, 0, sizeof(*st));
	struct fsck_ctx f = {c, m, repair, report, ctx, st, xmalloc(READ_CHUNK)};
	enum berr_code rc = check_rows(&f, err);
	if (rc == BERR_OK)
		rc = c->blobs->ops->walk(c->blobs, visit_file, &f, err);
	if (rc == BERR_OK)
		rc = m->ops->refs_missing(m, visit_badref, &f, err);
	free(f.buf);
	return rc;
}
