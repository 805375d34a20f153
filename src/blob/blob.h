/* blob.h - the blob store interface: immutable content-addressed bytes plus upload files.
 * It knows digests, never repositories (links live in meta).
 *
 * A stored blob is named by its digest and a generation: the id of the upload that wrote it
 * ("" for files written before generations existed, named by the digest alone). A (digest,
 * gen) name is written once, never overwritten, and deleted at most once: storing the same
 * bytes again makes a new name. So whoever deletes a name the metadata gave up can never take
 * bytes that another writer has just stored (core/gc.c), and no lock is needed between them.
 *
 * Invariant: a blob that exists is complete and matches its digest. Drivers make a blob
 * appear atomically (filesystem: fsync + rename + fsync dir) only in upload_commit, and the
 * caller has verified the digest while the bytes streamed in. Thread-safe. */
#ifndef BERTH_BLOB_H
#define BERTH_BLOB_H

#include "../base/err.h"

#include <stddef.h>
#include <stdint.h>

struct blob_store;
/* An upload file open for appending (driver-specific). */
struct blob_upload;

/* Walk callback: name is a digest ("sha256:<hex>") with its gen, or an upload id with gen "";
 * return non-zero to stop. */
typedef int (*blob_walk_fn)(void *ctx, const char *name, const char *gen, int64_t size,
                            int64_t mtime_ms);

struct blob_ops {
	void (*close)(struct blob_store *b);
	/* Creates an empty upload file named id (a UUID). */
	enum berr_code (*upload_create)(struct blob_store *b, const char *id, struct berr *err);
	/* Opens upload id for appending at offset (bytes past offset are overwritten). *out is
	 * new; release it with upload_close. */
	enum berr_code (*upload_open)(struct blob_store *b, const char *id, int64_t offset,
	                              struct blob_upload **out, struct berr *err);
	/* Appends len bytes. Not yet durable, and not yet visible to other handles: the driver
	 * may hold them until upload_flush or upload_sync. */
	enum berr_code (*upload_append)(struct blob_upload *u, const void *data, size_t len,
	                                struct berr *err);
	/* Writes out the bytes appended so far (visible to other handles; a process crash
	 * keeps them, a power loss may not). */
	enum berr_code (*upload_flush)(struct blob_upload *u, struct berr *err);
	/* Makes the bytes appended so far durable (includes upload_flush). */
	enum berr_code (*upload_sync)(struct blob_upload *u, struct berr *err);
	/* Releases u. Appended bytes not yet flushed or synced may be dropped or may have been
	 * written (callers truncate a failed write away with upload_truncate). */
	void (*upload_close)(struct blob_upload *u);
	/* Truncates upload id to size bytes (drops bytes of a failed write). */
	enum berr_code (*upload_truncate)(struct blob_store *b, const char *id, int64_t size,
	                                  struct berr *err);
	/* Makes upload id the blob (digest, gen = id): cuts it to size bytes (a failed write may
	 * have left more), makes it durable and moves it into place. Idempotent: when the upload
	 * file is gone and the blob is in place (an earlier call got that far), succeeds. */
	enum berr_code (*upload_commit)(struct blob_store *b, const char *id, int64_t size,
	                                const char *digest, struct berr *err);
	/* Removes an upload file; missing is not an error. */
	void (*upload_remove)(struct blob_store *b, const char *id);
	/* Opens blob (digest, gen) for reading: *fd is new (caller closes), *size its length.
	 * BERR_NOT_FOUND if absent. */
	enum berr_code (*open)(struct blob_store *b, const char *digest, const char *gen, int *fd,
	                       int64_t *size, struct berr *err);
	enum berr_code (*stat)(struct blob_store *b, const char *digest, const char *gen,
	                       int64_t *size, struct berr *err);
	/* Calls fn for every stored blob / every upload file (any order). Files whose names are
	 * not valid digests / upload ids are skipped. */
	enum berr_code (*walk)(struct blob_store *b, blob_walk_fn fn, void *ctx, struct berr *err);
	enum berr_code (*upload_walk)(struct blob_store *b, blob_walk_fn fn, void *ctx,
	                              struct berr *err);
	/* Free (*avail) and total bytes where blobs and uploads are written; both -1 when the
	 * store cannot tell (an object store). */
	enum berr_code (*space)(struct blob_store *b, int64_t *avail, int64_t *total,
	                        struct berr *err);
	/* Deletes blob (digest, gen); missing is not an error. */
	enum berr_code (*remove)(struct blob_store *b, const char *digest, const char *gen,
	                         struct berr *err);
};

struct blob_store {
	const struct blob_ops *ops;
};

/* Filesystem driver rooted at dir (creates dir/blobs and dir/uploads). *out is new. */
enum berr_code blob_fs_open(const char *dir, struct blob_store **out, struct berr *err);

static inline void blob_close(struct blob_store *b)
{
	if (b)
		b->ops->close(b);
}

#endif
