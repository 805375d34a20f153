/* fsck.c - `berth fsck`: verifies that every blob file matches its digest, that every blob row
 * has a file and every file a row, and that every manifest's blob references exist.
 *
 * Repairs are the safe ones only: a corrupt or missing blob loses its row (and file), so the
 * registry stops serving bad bytes and a client can push the blob again; an orphan file whose
 * content matches its name is indexed again, otherwise removed. Manifests that reference
 * missing blobs are reported, not deleted: that is the operator's decision. */
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

/* Hashes blob digest's file. *present = the file exists; *ok = its content matches. */
static enum berr_code hash_file(struct fsck_ctx *f, const char *digest, bool *present, bool *ok,
                                int64_t *size, struct berr *err)
{
	int fd = -1;
	*present = *ok = false;
	enum berr_code rc = f->c->blobs->ops->open(f->c->blobs, digest, &fd, size, err);
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

/* Drops a bad blob's row and file under its lock. */
static void drop_blob(struct fsck_ctx *f, const char *digest)
{
	struct berr e;
	int lock = -1;
	if (core_blob_lock(f->c, digest, &lock, &e) != BERR_OK)
		return;
	if (f->m->ops->txn_begin(f->m, &e) == BERR_OK) {
		if (f->m->ops->blob_delete(f->m, digest, &e) == BERR_OK &&
		    f->m->ops->txn_commit(f->m, &e) == BERR_OK) {
			f->c->blobs->ops->remove(f->c->blobs, digest, &e);
			f->st->repaired++;
		} else {
			f->m->ops->txn_rollback(f->m);
		}
	}
	core_lock_release(lock);
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
			if ((rc = hash_file(f, l.v[i].digest, &present, &ok, &size, err)) !=
			    BERR_OK)
				goto out;
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
				drop_blob(f, l.v[i].digest);
		}
		snprintf(after, sizeof(after), "%s", l.v[l.n - 1].digest);
		if (l.n < CORE_BLOB_BATCH)
			break;
	}
out:
	free(l.v);
	return rc;
}

static int visit_file(void *ctx, const char *digest, int64_t size, int64_t mtime)
{
	(void)mtime;
	struct fsck_ctx *f = ctx;
	struct berr e;
	if (f->m->ops->blob_get(f->m, digest, NULL, &e) != BERR_NOT_FOUND)
		return 0;
	f->st->orphan_files++;
	say(f, "orphan: file for %s (%lld bytes) has no row", digest, (long long)size);
	if (!f->repair)
		return 0;
	bool present, ok;
	int64_t real = 0;
	if (hash_file(f, digest, &present, &ok, &real, &e) != BERR_OK || !present)
		return 0;
	int lock = -1;
	if (core_blob_lock(f->c, digest, &lock, &e) != BERR_OK)
		return 0;
	/* A valid orphan is indexed again (gc frees it later if nothing references it). */
	if (ok && f->m->ops->blob_insert(f->m, digest, real, &e) == BERR_OK)
		f->st->repaired++;
	else if (!ok && f->c->blobs->ops->remove(f->c->blobs, digest, &e) == BERR_OK)
		f->st->repaired++;
	core_lock_release(lock);
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
