/* upload.c - blob upload sessions shared by the ECR layer API and /v2 uploads (spec §3.3,
 * §4.15).
 *
 * A session is a row in `uploads` (bytes received, parts, resumable SHA-256 state) plus a file
 * uploads/<id> in the blob store. Appends to one session are serialised with an exclusive
 * flock(2) on a lock file next to it, held by a core_upload_writer from open to close, so two
 * concurrent PATCH/UploadLayerPart requests can never interleave bytes. The row is re-read
 * under the lock and updated after the new bytes are written (extra bytes past `size`, from
 * a write that failed or crashed before its update, are overwritten by the next write and
 * cut off at completion).
 *
 * Durability: a part is acknowledged once its bytes are written out (the blob store's flush:
 * to the device or the page cache), not fsync'd - waiting for the disk on every PATCH would
 * stall the client for the whole write-back of each chunk. The row then records the kernel's
 * boot id (unsynced_boot): a process crash loses nothing, and a session written under
 * another boot (power loss or kernel crash: its bytes may be gone) is dropped when next
 * touched, so the client starts over instead of resuming on a hole. Completion fsyncs the file
 * before the blob appears, so a blob is durable before the 201. Completion finalises the saved
 * hash - the file is never re-read - and hands the file over from the session to the blob (see
 * hand_over and the ownership rules in gc.c). */
#include "../base/feat.h"

#include "core_int.h"
#include "../base/mem.h"
#include "../base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

struct hash_pipe;

struct core_upload_writer {
	struct core *c;
	struct blob_upload *file;
	int lock_fd;
	struct meta_upload row;
	struct sha256 hash; /* while a pipe runs, its thread's alone */
	struct hash_pipe *pipe;
	bool pipe_tried;
	int64_t start;   /* size before this write */
	int64_t written; /* bytes appended by this writer */
	int64_t checked; /* written when the storage reserve was last checked */
};

/* The storage reserve is checked when a write starts and every SPACE_STEP bytes, asking room
 * for SPACE_AHEAD bytes per upload receiving: its next step plus what the blob store may have
 * accepted but not yet allocated (asynchronous direct writes: a few MiB per upload). */
#define SPACE_STEP (1024 * 1024)
#define SPACE_AHEAD (SPACE_STEP + 4 * 1024 * 1024)

/* ---- hashing on another core ----
 * A request thread receiving a lone push spends about half its time in SHA-256 while the other
 * core idles. Once such a write passes PIPE_AFTER bytes, a pipe takes over the hashing: the
 * request thread copies the bytes into one of two buffers and hands each full one to the
 * pipe's thread, which hashes them in order into the writer's state and is joined before the
 * state is read. With other uploads receiving at the same time the cores are busy anyway, and
 * the copy and hand-offs would only add work: those hash inline.
 * Invariant: the buffers are hashed in the order they were filled (the thread takes 0, 1, 0,
 * ... as the request thread hands them); a buffer is refilled only once hashed. */
#define PIPE_BUF (1024 * 1024)
#define PIPE_AFTER (1024 * 1024)
#define PIPE_POOL 4 /* idle buffers kept (a fresh 1 MiB costs 256 page faults) */

static atomic_int writers_open; /* upload writers of this process receiving now */
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned char *pool[PIPE_POOL];
static int pool_n;

static unsigned char *pipe_buf_get(void)
{
	unsigned char *b = NULL;
	pthread_mutex_lock(&pool_mu);
	if (pool_n)
		b = pool[--pool_n];
	pthread_mutex_unlock(&pool_mu);
	return b ? b : xmalloc(PIPE_BUF);
}

static void pipe_buf_put(unsigned char *b)
{
	pthread_mutex_lock(&pool_mu);
	if (pool_n < PIPE_POOL) {
		pool[pool_n++] = b;
		b = NULL;
	}
	pthread_mutex_unlock(&pool_mu);
	free(b);
}

struct hash_pipe {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct sha256 *hash;
	unsigned char *buf[2];
	size_t len[2];
	bool full[2]; /* handed over, not hashed yet */
	int fill;     /* the buffer the request thread fills */
	bool stop;
};

static void *pipe_main(void *arg)
{
	struct hash_pipe *p = arg;
	pthread_mutex_lock(&p->mu);
	for (int i = 0;; i ^= 1) {
		while (!p->full[i] && !p->stop)
			pthread_cond_wait(&p->cv, &p->mu);
		if (!p->full[i])
			break; /* stopped, all handed buffers hashed */
		pthread_mutex_unlock(&p->mu);
		sha256_update(p->hash, p->buf[i], p->len[i]);
		pthread_mutex_lock(&p->mu);
		p->full[i] = false;
		pthread_cond_broadcast(&p->cv);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

static struct hash_pipe *pipe_start(struct sha256 *hash)
{
	struct hash_pipe *p = xcalloc(1, sizeof(*p));
	p->hash = hash;
	p->buf[0] = pipe_buf_get();
	p->buf[1] = pipe_buf_get();
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	if (pthread_create(&p->thread, NULL, pipe_main, p) != 0) {
		pthread_cond_destroy(&p->cv);
		pthread_mutex_destroy(&p->mu);
		pipe_buf_put(p->buf[0]);
		pipe_buf_put(p->buf[1]);
		free(p);
		return NULL; /* hash inline */
	}
	return p;
}

/* Hands the buffer being filled to the thread and waits until the other one is free. */
static void pipe_hand(struct hash_pipe *p)
{
	int f = p->fill;
	pthread_mutex_lock(&p->mu);
	p->full[f] = true;
	pthread_cond_broadcast(&p->cv);
	while (p->full[f ^ 1])
		pthread_cond_wait(&p->cv, &p->mu);
	pthread_mutex_unlock(&p->mu);
	p->fill = f ^ 1;
	p->len[p->fill] = 0;
}

static void pipe_put(struct hash_pipe *p, const unsigned char *data, size_t len)
{
	while (len) {
		int f = p->fill;
		size_t n = PIPE_BUF - p->len[f] < len ? PIPE_BUF - p->len[f] : len;
		memcpy(p->buf[f] + p->len[f], data, n);
		p->len[f] += n;
		data += n;
		len -= n;
		if (p->len[f] == PIPE_BUF)
			pipe_hand(p);
	}
}

/* Hashes what is left, joins the thread and frees the pipe: the state is the caller's again. */
static void pipe_finish(struct hash_pipe *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	if (p->len[p->fill])
		p->full[p->fill] = true;
	p->stop = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->thread, NULL);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	pipe_buf_put(p->buf[0]);
	pipe_buf_put(p->buf[1]);
	free(p);
}

static enum berr_code upload_not_found(struct berr *err, const struct meta_repo *repo,
                                       const char *id)
{
	return err_set(err, BERR_UPLOAD_NOT_FOUND,
	               "The upload with id '%s' does not exist in the repository with name '%s' in "
	               "the registry with id '%s'",
	               id, repo->name, repo->account);
}

/* Loads the session row and checks it belongs to repo. */
static enum berr_code load_row(struct meta *m, const struct meta_repo *repo, const char *id,
                               struct meta_upload *row, struct berr *err)
{
	if (!uuid_is_valid(id))
		return upload_not_found(err, repo, id);
	enum berr_code rc = m->ops->upload_get(m, id, row, err);
	if (rc == BERR_NOT_FOUND || (rc == BERR_OK && row->repo_id != repo->id)) {
		meta_upload_clear(row);
		return upload_not_found(err, repo, id);
	}
	if (rc == BERR_OK && row->unsynced_boot[0] &&
	    strcmp(row->unsynced_boot, sys_boot_id()) != 0) {
		/* Written before a reboot and never fsync'd: the file may have lost bytes the row
		 * counts. Drop the session (the file becomes an orphan for gc). */
		struct berr e;
		m->ops->upload_delete(m, id, &e);
		meta_upload_clear(row);
		return upload_not_found(err, repo, id);
	}
	return rc;
}

enum berr_code core_upload_start(struct core *c, struct meta *m, const struct meta_repo *repo,
                                 char out_id[37], struct berr *err)
{
	enum berr_code rc = core_space_check(c, m, CORE_SPACE_META, 16384, err);
	if (rc != BERR_OK)
		return rc;
	struct meta_upload u = {0};
	uuid_v4(u.id);
	u.repo_id = repo->id;
	u.created_at = u.updated_at = clock_now_ms();
	struct sha256 h;
	sha256_init(&h);
	unsigned char state[256];
	sha256_state_export(&h, state);
	u.hash_state = state;
	u.hash_state_len = sha256_state_size();
	/* Row first, then file: gc treats an upload file without a row as an orphan, so the row
	 * must exist before the file can be seen (a crash in between leaves a row whose file is
	 * missing, which upload expiry removes). */
	if ((rc = m->ops->upload_insert(m, &u, err)) != BERR_OK)
		return rc;
	if ((rc = c->blobs->ops->upload_create(c->blobs, u.id, err)) != BERR_OK) {
		struct berr e;
		m->ops->upload_delete(m, u.id, &e);
		return rc;
	}
	memcpy(out_id, u.id, 37);
	return BERR_OK;
}

/* Per-session lock (see core_lock_acquire): held by a writer from open to close. */
static enum berr_code upload_lock_acquire(struct core *c, const char *id, int *fd, struct berr *err)
{
	if (!uuid_is_valid(id))
		return err_set(err, BERR_UPLOAD_NOT_FOUND, "upload '%s' does not exist", id);
	return core_lock_acquire(c, id, fd, err);
}

#define upload_lock_release core_lock_release
#define upload_lock_remove core_lock_remove

enum berr_code core_upload_open(struct core *c, struct meta *m, const struct meta_repo *repo,
                                const char *id, int64_t first_byte, struct core_upload_writer **out,
                                struct berr *err)
{
	struct core_upload_writer *w = xcalloc(1, sizeof(*w));
	w->c = c;
	w->lock_fd = -1;
	enum berr_code rc = upload_lock_acquire(c, id, &w->lock_fd, err);
	if (rc != BERR_OK) {
		free(w);
		return rc;
	}
	atomic_fetch_add(&writers_open, 1); /* writer_free takes it back */
	if ((rc = load_row(m, repo, id, &w->row, err)) != BERR_OK)
		goto fail;
	if (first_byte >= 0 && first_byte != w->row.size) {
		rc = err_set(err, BERR_LAYER_PART_INVALID,
		             "The part's first byte %lld does not follow the last byte received "
		             "(%lld) for upload '%s'",
		             (long long)first_byte, (long long)w->row.size - 1, id);
		err->last_byte = w->row.size - 1;
		goto fail;
	}
	if (!w->row.hash_state ||
	    !sha256_state_import(&w->hash, w->row.hash_state, w->row.hash_state_len)) {
		rc = err_set(err, BERR_INTERNAL, "upload '%s' has no usable hash state", id);
		goto fail;
	}
	w->start = w->row.size;
	if ((rc = core_space_check(c, NULL, CORE_SPACE_BLOBS, SPACE_AHEAD, err)) != BERR_OK)
		goto fail;
	if ((rc = c->blobs->ops->upload_open(c->blobs, id, w->start, &w->file, err)) != BERR_OK)
		goto fail;
	*out = w;
	return BERR_OK;
fail:
	core_upload_abort(w);
	return rc;
}

int64_t core_upload_writer_start(const struct core_upload_writer *w)
{
	return w->start;
}
int64_t core_upload_writer_parts(const struct core_upload_writer *w)
{
	return w->row.parts;
}

enum berr_code core_upload_write(struct core_upload_writer *w, const void *data, size_t len,
                                 struct berr *err)
{
	if (w->written - w->checked >= SPACE_STEP) {
		int64_t need = (int64_t)SPACE_AHEAD * atomic_load(&writers_open);
		enum berr_code rc = core_space_check(w->c, NULL, CORE_SPACE_BLOBS, need, err);
		if (rc != BERR_OK)
			return rc;
		w->checked = w->written;
	}
	enum berr_code rc = w->c->blobs->ops->upload_append(w->file, data, len, err);
	if (rc != BERR_OK)
		return rc;
	if (w->pipe)
		pipe_put(w->pipe, data, len);
	else
		sha256_update(&w->hash, data, len);
	w->written += (int64_t)len;
	if (!w->pipe_tried && w->written >= PIPE_AFTER) {
		w->pipe_tried = true;
		if (atomic_load(&writers_open) == 1 && sysconf(_SC_NPROCESSORS_ONLN) > 1)
			w->pipe = pipe_start(&w->hash);
	}
	return BERR_OK;
}

static void writer_free(struct core_upload_writer *w)
{
	pipe_finish(w->pipe);
	atomic_fetch_sub(&writers_open, 1);
	if (w->file)
		w->c->blobs->ops->upload_close(w->file);
	upload_lock_release(w->lock_fd);
	meta_upload_clear(&w->row);
	free(w);
}

enum berr_code core_upload_close(struct core_upload_writer *w, struct meta *m, int64_t *size,
                                 struct berr *err)
{
	/* Without a boot id to tie unsynced bytes to, fall back to fsync per part. */
	const char *boot = sys_boot_id();
	const struct blob_ops *ops = w->c->blobs->ops;
	enum berr_code rc = !w->written ? BERR_OK
	                    : boot[0]   ? ops->upload_flush(w->file, err)
	                                : ops->upload_sync(w->file, err);
	if (rc != BERR_OK) {
		core_upload_abort(w);
		return rc;
	}
	pipe_finish(w->pipe);
	w->pipe = NULL;
	unsigned char state[256];
	sha256_state_export(&w->hash, state);
	meta_upload_clear(&w->row); /* drop the old state buffer; point at ours */
	w->row.hash_state = NULL;
	struct meta_upload u = w->row;
	u.hash_state = state;
	u.hash_state_len = sha256_state_size();
	if (w->written > 0) {
		/* A part smaller than the minimum followed by another part breaks ECR's rule;
		 * remember it so CompleteLayerUpload can report it. */
		if (u.parts > 0 && u.last_part_size < ECR_MIN_PART_SIZE)
			u.small_part = true;
		u.parts++;
		u.last_part_size = w->written;
		snprintf(u.unsynced_boot, sizeof(u.unsynced_boot), "%s", boot);
	}
	u.size = w->start + w->written;
	u.updated_at = clock_now_ms();
	rc = m->ops->upload_update(m, &u, err);
	if (rc != BERR_OK) {
		core_upload_abort(w);
		return rc;
	}
	if (size)
		*size = u.size;
	writer_free(w);
	return BERR_OK;
}

void core_upload_abort(struct core_upload_writer *w)
{
	if (!w)
		return;
	if (w->written > 0) {
		struct berr e;
		w->c->blobs->ops->upload_truncate(w->c->blobs, w->row.id, w->start, &e);
	}
	writer_free(w);
}

static void discard(struct core *c, struct meta *m, const char *id)
{
	struct berr e;
	m->ops->upload_delete(m, id, &e);
	c->blobs->ops->upload_remove(c->blobs, id);
	upload_lock_remove(c, id);
}

/* Makes the completed upload id the blob digest of repo. The bytes are stored once: if digest
 * has a row, the session's file is dropped; else it is made durable and renamed into place as
 * (digest, id) before the transaction that makes the row. That transaction also links the
 * blob to repo and ends the session, so the file passes from the session to the blob row (or,
 * when another upload of the same bytes made the row first, to the trash) at one instant:
 * never owned by nothing, never deleted while a row names it. */
static enum berr_code hand_over(struct core *c, struct meta *m, const struct meta_repo *repo,
                                const char *id, const char *digest, int64_t size, struct berr *err)
{
	struct meta_blob b = {.size = size};
	snprintf(b.digest, sizeof(b.digest), "%s", digest);
	snprintf(b.gen, sizeof(b.gen), "%s", id);
	bool placed = false; /* our file is in place as (digest, id) */
	bool duplicate = false;
	enum berr_code rc = m->ops->blob_get(m, digest, NULL, err);
	if (rc == BERR_NOT_FOUND) {
		if ((rc = c->blobs->ops->upload_commit(c->blobs, id, size, digest, err)) != BERR_OK)
			return rc;
		placed = true;
	} else if (rc != BERR_OK) {
		return rc;
	}
	for (int attempt = 0; attempt < 2; attempt++) {
		if ((rc = m->ops->txn_begin(m, err)) != BERR_OK)
			return rc;
		rc = m->ops->blob_get(m, digest, NULL, err);
		if (rc == BERR_NOT_FOUND && !placed) {
			/* collected since we looked: store our copy after all */
			m->ops->txn_rollback(m);
			rc = c->blobs->ops->upload_commit(c->blobs, id, size, digest, err);
			if (rc != BERR_OK)
				return rc;
			placed = true;
			continue;
		}
		if (rc == BERR_NOT_FOUND) {
			rc = m->ops->blob_insert(m, &b, err);
		} else if (rc == BERR_OK && placed) {
			rc = m->ops->trash_add(m, digest, id, err);
			duplicate = true;
		}
		if (rc == BERR_OK)
			rc = m->ops->repo_blob_link(m, repo->id, digest, err);
		if (rc == BERR_OK)
			rc = m->ops->upload_delete(m, id, err);
		if (rc == BERR_OK)
			rc = m->ops->txn_commit(m, err);
		if (rc != BERR_OK)
			m->ops->txn_rollback(m);
		break;
	}
	if (rc != BERR_OK)
		return rc; /* the session stays: a retry finds the file in place */
	struct berr e;
	if (duplicate && c->blobs->ops->remove(c->blobs, digest, id, &e) == BERR_OK)
		m->ops->trash_remove(m, digest, id, &e); /* else the next gc pass does it */
	else if (!placed)
		c->blobs->ops->upload_remove(c->blobs, id);
	return BERR_OK;
}

enum berr_code core_upload_complete(struct core *c, struct meta *m, const struct meta_repo *repo,
                                    const char *id, const char *const *want, size_t nwant,
                                    enum core_upload_rules rules, char out_digest[DIGEST_STR_LEN],
                                    struct berr *err)
{
	int lock_fd = -1;
	struct meta_upload row = {0};
	enum berr_code rc = upload_lock_acquire(c, id, &lock_fd, err);
	if (rc != BERR_OK)
		return rc;
	if ((rc = load_row(m, repo, id, &row, err)) != BERR_OK)
		goto out;
	if (rules == CORE_UPLOAD_ECR && row.parts == 0) {
		rc = err_set(err, BERR_UPLOAD_EMPTY,
		             "The upload with id '%s' does not contain any layer parts", id);
		goto out;
	}
	if (rules == CORE_UPLOAD_ECR && row.small_part) {
		rc = err_set(err, BERR_LAYER_PART_TOO_SMALL,
		             "Layer part size must be at least %d bytes except for the final part",
		             ECR_MIN_PART_SIZE);
		goto out;
	}
	struct sha256 h;
	if (!row.hash_state || !sha256_state_import(&h, row.hash_state, row.hash_state_len)) {
		rc = err_set(err, BERR_INTERNAL, "upload '%s' has no usable hash state", id);
		goto out;
	}
	sha256_peek_str(&h, out_digest);
	bool match = nwant == 0;
	for (size_t i = 0; i < nwant && !match; i++)
		match = strcmp(want[i], out_digest) == 0;
	if (!match) {
		discard(c, m, id);
		rc = err_set(err, BERR_LAYER_INVALID,
		             "The calculated digest '%s' of the upload '%s' does not match the "
		             "provided digest",
		             out_digest, id);
		goto out;
	}
	if (rules == CORE_UPLOAD_ECR) {
		rc = m->ops->repo_blob_get(m, repo->id, out_digest, NULL, NULL, NULL, err);
		if (rc == BERR_OK) {
			discard(c, m, id);
			rc = err_set(err, BERR_LAYER_EXISTS,
			             "The layer with digest '%s' already exists in the repository "
			             "with name '%s' in the registry with id '%s'",
			             out_digest, repo->name, repo->account);
			goto out;
		}
		if (rc != BERR_NOT_FOUND)
			goto out;
	}
	if ((rc = hand_over(c, m, repo, id, out_digest, row.size, err)) == BERR_OK)
		upload_lock_remove(c, id);
out:
	upload_lock_release(lock_fd);
	meta_upload_clear(&row);
	return rc;
}

enum berr_code core_upload_size(struct meta *m, const struct meta_repo *repo, const char *id,
                                int64_t *size, struct berr *err)
{
	struct meta_upload row = {0};
	enum berr_code rc = load_row(m, repo, id, &row, err);
	if (rc == BERR_OK)
		*size = row.size;
	meta_upload_clear(&row);
	return rc;
}

enum berr_code core_upload_cancel(struct core *c, struct meta *m, const struct meta_repo *repo,
                                  const char *id, struct berr *err)
{
	int lock_fd = -1;
	struct meta_upload row = {0};
	enum berr_code rc = upload_lock_acquire(c, id, &lock_fd, err);
	if (rc != BERR_OK)
		return rc;
	if ((rc = load_row(m, repo, id, &row, err)) == BERR_OK)
		discard(c, m, id);
	upload_lock_release(lock_fd);
	meta_upload_clear(&row);
	return rc;
}

static int collect_id(void *ctx, const char *id)
{
	struct {
		char (*ids)[37];
		size_t n, cap;
	} *a = ctx;
	if (a->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 64;
		a->ids = xrealloc(a->ids, a->cap * sizeof(*a->ids));
	}
	snprintf(a->ids[a->n++], 37, "%s", id);
	return 0;
}

enum berr_code core_upload_expire(struct core *c, struct meta *m, int64_t before, int64_t *n,
                                  struct berr *err)
{
	struct {
		char (*ids)[37];
		size_t n, cap;
	} a = {0};
	*n = 0;
	enum berr_code rc = m->ops->upload_list_stale(m, before, 1000, collect_id, &a, err);
	for (size_t i = 0; rc == BERR_OK && i < a.n; i++) {
		int lock_fd = -1;
		struct meta_upload row = {0};
		if (upload_lock_acquire(c, a.ids[i], &lock_fd, err) != BERR_OK)
			continue;
		/* Re-check under the lock: a writer may have just extended the session. */
		if (m->ops->upload_get(m, a.ids[i], &row, err) == BERR_OK &&
		    row.updated_at < before) {
			discard(c, m, a.ids[i]);
			(*n)++;
		}
		meta_upload_clear(&row);
		upload_lock_release(lock_fd);
	}
	free(a.ids);
	return rc;
}
