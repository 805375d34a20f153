/* meta.h - the metadata store interface: repositories, images, tags, blob links, upload
 * sessions and registry documents. The database is the only source of truth for metadata.
 *
 * One `struct meta` is one connection: use it from one thread at a time. Servers take
 * connections from a `struct meta_pool`. Drivers implement `struct meta_ops` (sqlite now,
 * postgres later) and embed `struct meta` first as `super`.
 *
 * Conventions: functions return BERR_OK, BERR_NOT_FOUND (lookups), BERR_CONFLICT (unique
 * violations), BERR_BUSY (lock timeout) or BERR_IO. Strings in out-structs are new and are
 * released by the matching *_clear(). Rows passed to callbacks are borrowed for the call.
 * Writes that must be atomic run between txn_begin and txn_commit; txn_begin takes the write
 * lock up front (no upgrade deadlocks). Times are epoch milliseconds. */
#ifndef BERTH_META_H
#define BERTH_META_H

#include "../base/err.h"
#include "../base/util.h"
#include "../crypto/sha256.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct meta_repo {
	int64_t id;
	char *account;
	char *region;
	char *name;
	int64_t created_at;
	char *mutability;
	char *mutability_filters; /* JSON array text or NULL */
	bool scan_on_push;
	char *encryption_type;
	char *kms_key;       /* NULL if none */
	char *resource_tags; /* JSON array text or NULL */
	char *policy;        /* NULL if none */
	char *lifecycle_policy;
	int64_t lifecycle_evaluated_at;
	int64_t tags_version; /* changes whenever the set of tag names changes (read-only) */
};

struct meta_image {
	int64_t id;
	int64_t repo_id;
	char *digest;
	char *media_type;
	char *artifact_type; /* NULL if none */
	char *subject;       /* subject digest or NULL */
	char *manifest;      /* exact bytes (NUL-terminated copy) or NULL when not loaded */
	size_t manifest_len;
	int64_t size;
	int64_t pushed_at;
	int64_t pulled_at; /* 0: never */
	char *status;
	/* Filled only by image_list: the tags in attachment order (NULL-terminated, new). */
	char **tags;
	size_t ntags;
};

enum meta_ref_kind { META_REF_BLOB = 0, META_REF_MANIFEST = 1 };

struct meta_ref {
	enum meta_ref_kind kind;
	const char *digest;     /* borrowed */
	const char *media_type; /* borrowed, may be NULL */
	int64_t size;
};

struct meta_upload {
	char id[37];
	int64_t repo_id;
	int64_t created_at;
	int64_t updated_at;
	int64_t size;
	int64_t parts;
	bool small_part;
	int64_t last_part_size;
	unsigned char *hash_state; /* new, may be NULL */
	size_t hash_state_len;
	/* Boot id of the kernel that holds the last bytes written in its page cache only; ""
	 * when every byte up to size is durable. */
	char unsynced_boot[40];
};

struct meta_history {
	int64_t id;
	int64_t at;
	const char *account;
	const char *region;
	const char *repo_name;
	const char *digest;
	const char *tags; /* JSON array text */
	int rule_priority;
	const char *action;
	int64_t pushed_at;
};

enum meta_tag_filter { META_TAGS_ANY, META_TAGS_TAGGED, META_TAGS_UNTAGGED };

/* A blob row: the blob store holds digest's bytes in the file of (digest, gen) (blob.h). */
struct meta_blob {
	char digest[DIGEST_STR_LEN];
	char gen[UUID_STR_LEN]; /* the id of the upload that wrote the file; "" before 0009 */
	int64_t size;
};

/* When garbage collection may take a blob: its row was created before created_before, no
 * manifest references it and no repository linked it since linked_after. */
struct meta_garbage {
	int64_t created_before;
	int64_t linked_after;
};

/* Callbacks return 0 to continue, non-zero to stop the iteration early. */
typedef int (*meta_repo_fn)(void *ctx, const struct meta_repo *r);
typedef int (*meta_image_fn)(void *ctx, const struct meta_image *img);
typedef int (*meta_str_fn)(void *ctx, const char *s);
typedef int (*meta_blob_fn)(void *ctx, const struct meta_blob *b);
typedef int (*meta_history_fn)(void *ctx, const struct meta_history *h);
typedef int (*meta_badref_fn)(void *ctx, const char *account, const char *region, const char *repo,
                              const char *image, const char *blob);

struct meta;

enum meta_savepoint { META_SP_BEGIN, META_SP_RELEASE, META_SP_UNDO };

struct meta_ops {
	void (*close)(struct meta *m);
	enum berr_code (*txn_begin)(struct meta *m, struct berr *err);
	enum berr_code (*txn_commit)(struct meta *m, struct berr *err);
	void (*txn_rollback)(struct meta *m);
	/* True when another write transaction of this process waits for the one m holds (the
	 * group commit then commits at once rather than keep its transaction open). */
	bool (*writers_waiting)(struct meta *m);
	/* Whether a transaction is open, and how many rows this connection has changed so far.
	 * A statement that fails is undone by the database and changes no count, so a closure
	 * that fails without moving the count left the transaction as it found it. */
	bool (*txn_changes)(struct meta *m, uint64_t *changes);
	/* Nested undo points inside a transaction (one level is all the group commit needs):
	 * BEGIN opens one, RELEASE keeps its changes, UNDO drops them. BERR_IO if the
	 * transaction itself is gone (an I/O error rolled it back). */
	enum berr_code (*savepoint)(struct meta *m, enum meta_savepoint op, struct berr *err);
	/* Group commit: after defer_durability, txn_commit returns once the transaction is
	 * atomic and visible but before it is on disk; sync then makes every commit so far
	 * durable. sync may run on another thread while the connection is in use. */
	enum berr_code (*defer_durability)(struct meta *m, struct berr *err);
	enum berr_code (*sync)(struct meta *m, struct berr *err);

	enum berr_code (*repo_insert)(struct meta *m, struct meta_repo *r, struct berr *err);
	enum berr_code (*repo_get)(struct meta *m, const char *account, const char *region,
	                           const char *name, struct meta_repo *out, struct berr *err);
	enum berr_code (*repo_update)(struct meta *m, const struct meta_repo *r, struct berr *err);
	enum berr_code (*repo_delete)(struct meta *m, int64_t repo_id, struct berr *err);
	enum berr_code (*repo_list)(struct meta *m, const char *account, const char *region,
	                            int64_t after_id, int64_t limit, meta_repo_fn fn, void *ctx,
	                            struct berr *err);
	enum berr_code (*repo_image_count)(struct meta *m, int64_t repo_id, int64_t *n,
	                                   struct berr *err);

	enum berr_code (*image_get)(struct meta *m, int64_t repo_id, const char *digest,
	                            bool with_manifest, struct meta_image *out, struct berr *err);
	enum berr_code (*image_get_by_tag)(struct meta *m, int64_t repo_id, const char *tag,
	                                   bool with_manifest, struct meta_image *out,
	                                   struct berr *err);
	enum berr_code (*image_insert)(struct meta *m, struct meta_image *img,
	                               const struct meta_ref *refs, size_t nrefs, struct berr *err);
	enum berr_code (*image_delete)(struct meta *m, int64_t image_id, struct berr *err);
	/* Images in push order with their tags (img->tags), one query for the tags of a page. */
	enum berr_code (*image_list)(struct meta *m, int64_t repo_id, int64_t after_id,
	                             int64_t limit, enum meta_tag_filter filter, meta_image_fn fn,
	                             void *ctx, struct berr *err);
	enum berr_code (*image_tags)(struct meta *m, int64_t image_id, meta_str_fn fn, void *ctx,
	                             struct berr *err);
	enum berr_code (*image_touch_pull)(struct meta *m, int64_t image_id, int64_t at,
	                                   struct berr *err);
	/* *out = true if a manifest list/index stored in the repository references digest. */
	enum berr_code (*image_is_child)(struct meta *m, int64_t repo_id, const char *digest,
	                                 bool *out, struct berr *err);
	/* Children (kind MANIFEST refs) of an image: calls fn with each child digest. */
	enum berr_code (*image_children)(struct meta *m, int64_t image_id, meta_str_fn fn,
	                                 void *ctx, struct berr *err);

	/* Points tag at image (insert or move), giving it a new attachment sequence number. */
	enum berr_code (*tag_set)(struct meta *m, int64_t repo_id, const char *tag,
	                          int64_t image_id, struct berr *err);
	enum berr_code (*tag_delete)(struct meta *m, int64_t repo_id, const char *tag,
	                             struct berr *err);
	enum berr_code (*tag_count)(struct meta *m, int64_t image_id, int64_t *n, struct berr *err);

	/* Tag names of a repository in lexical order, after `after` (NULL = from the start). */
	enum berr_code (*tag_list)(struct meta *m, int64_t repo_id, const char *after,
	                           int64_t limit, meta_str_fn fn, void *ctx, struct berr *err);
	/* Repository names of a registry in lexical order, after `after` (NULL = start). */
	enum berr_code (*repo_names)(struct meta *m, const char *account, const char *region,
	                             const char *after, int64_t limit, meta_str_fn fn, void *ctx,
	                             struct berr *err);
	/* Images of a repository whose subject is digest, with manifest bytes, push order. */
	enum berr_code (*image_referrers)(struct meta *m, int64_t repo_id, const char *digest,
	                                  meta_image_fn fn, void *ctx, struct berr *err);

	/* Global blob registry (the blob store's index): one row per digest. *out may be NULL. */
	enum berr_code (*blob_get)(struct meta *m, const char *digest, struct meta_blob *out,
	                           struct berr *err);
	/* Inserts b's row, created now; BERR_CONFLICT if digest has a row already. */
	enum berr_code (*blob_insert)(struct meta *m, const struct meta_blob *b, struct berr *err);
	enum berr_code (*repo_blob_link)(struct meta *m, int64_t repo_id, const char *digest,
	                                 struct berr *err);
	/* Blob as seen by a repository: linked there or referenced by one of its manifests.
	 * *out the blob row, *media_type (new or NULL) from a referencing manifest, *referenced
	 * = referenced by a manifest of the repository (each may be NULL). BERR_NOT_FOUND
	 * otherwise. */
	enum berr_code (*repo_blob_get)(struct meta *m, int64_t repo_id, const char *digest,
	                                struct meta_blob *out, char **media_type, bool *referenced,
	                                struct berr *err);

	/* Removes a blob's link to a repository (manifest references are unaffected). */
	enum berr_code (*repo_blob_unlink)(struct meta *m, int64_t repo_id, const char *digest,
	                                   struct berr *err);
	/* *out = the blob is linked to or referenced in some repository of the registry. */
	enum berr_code (*registry_blob_known)(struct meta *m, const char *account,
	                                      const char *region, const char *digest, bool *out,
	                                      struct berr *err);
	/* Records pull times: for each i, pulled_at = max(pulled_at, at[i]) of image ids[i]. */
	enum berr_code (*image_pulls_flush)(struct meta *m, const int64_t *ids, const int64_t *at,
	                                    size_t n, struct berr *err);

	/* Calls fn with the ids of upload sessions last written before `before` (at most limit). */
	enum berr_code (*upload_list_stale)(struct meta *m, int64_t before, int64_t limit,
	                                    meta_str_fn fn, void *ctx, struct berr *err);
	enum berr_code (*upload_insert)(struct meta *m, const struct meta_upload *u,
	                                struct berr *err);
	enum berr_code (*upload_get)(struct meta *m, const char *id, struct meta_upload *out,
	                             struct berr *err);
	enum berr_code (*upload_update)(struct meta *m, const struct meta_upload *u,
	                                struct berr *err);
	enum berr_code (*upload_delete)(struct meta *m, const char *id, struct berr *err);

	/* ---- lifecycle ---- */
	/* Repositories of every registry that have a lifecycle policy, by id. */
	enum berr_code (*repo_list_lifecycle)(struct meta *m, int64_t after_id, int64_t limit,
	                                      meta_repo_fn fn, void *ctx, struct berr *err);
	/* Digests referenced as children by the repository's lists/indexes. */
	enum berr_code (*repo_child_digests)(struct meta *m, int64_t repo_id, meta_str_fn fn,
	                                     void *ctx, struct berr *err);
	enum berr_code (*preview_put)(struct meta *m, int64_t repo_id, const char *policy,
	                              const char *status, const char *results, int64_t at,
	                              struct berr *err);
	/* New strings; BERR_NOT_FOUND if the repository has no preview. */
	enum berr_code (*preview_get)(struct meta *m, int64_t repo_id, char **policy, char **status,
	                              char **results, struct berr *err);
	enum berr_code (*history_insert)(struct meta *m, const struct meta_history *h,
	                                 struct berr *err);
	/* Newest first; repo_name NULL = all repositories of the registry (account NULL = all). */
	enum berr_code (*history_list)(struct meta *m, const char *account, const char *region,
	                               const char *repo_name, int64_t limit, meta_history_fn fn,
	                               void *ctx, struct berr *err);

	/* ---- garbage collection and fsck ----
	 * Every blob file (digest, gen) is owned by exactly one of: the blob row naming it, the
	 * upload session whose id is gen (while it completes), the trash. Only files in the
	 * trash are deleted, and a file goes to the trash only in a write transaction that saw
	 * no blob row name it (core/gc.c has the whole argument). */
	/* Blobs that are garbage by g, in digest order after `after` (NULL = start). */
	enum berr_code (*gc_candidates)(struct meta *m, const struct meta_garbage *g,
	                                const char *after, int64_t limit, meta_blob_fn fn,
	                                void *ctx, struct berr *err);
	/* Inside a write transaction: if digest's row names gen (and, with g, is garbage by g),
	 * moves it to the trash: the row and every repository link to it go, a trash row for
	 * (digest, gen) comes. *moved = it did. */
	enum berr_code (*blob_trash)(struct meta *m, const char *digest, const char *gen,
	                             const struct meta_garbage *g, bool *moved, struct berr *err);
	/* Inside the write transaction that saw no blob row name the file (digest, gen): puts
	 * it in the trash (a duplicate upload, an orphan). Adding it twice is not an error. */
	enum berr_code (*trash_add)(struct meta *m, const char *digest, const char *gen,
	                            struct berr *err);
	/* Trash rows, oldest first, at most limit. */
	enum berr_code (*trash_list)(struct meta *m, int64_t limit, meta_blob_fn fn, void *ctx,
	                             struct berr *err);
	/* Forgets a trash row once its file is gone. */
	enum berr_code (*trash_remove)(struct meta *m, const char *digest, const char *gen,
	                               struct berr *err);
	/* *out = a blob row, the upload session gen or a trash row owns the file (digest, gen),
	 * read in one snapshot. */
	enum berr_code (*blob_file_owned)(struct meta *m, const char *digest, const char *gen,
	                                  bool *out, struct berr *err);
	/* All blob rows in digest order after `after` (NULL = start). */
	enum berr_code (*blob_list)(struct meta *m, const char *after, int64_t limit,
	                            meta_blob_fn fn, void *ctx, struct berr *err);
	/* Manifest references to blobs that have no blob row. */
	enum berr_code (*refs_missing)(struct meta *m, meta_badref_fn fn, void *ctx,
	                               struct berr *err);

	enum berr_code (*kv_get)(struct meta *m, const char *account, const char *region,
	                         const char *name, char **value, struct berr *err);
	enum berr_code (*kv_put)(struct meta *m, const char *account, const char *region,
	                         const char *name, const char *value, struct berr *err);
	enum berr_code (*kv_delete)(struct meta *m, const char *account, const char *region,
	                            const char *name, struct berr *err);

	/* Room the database can still use (*avail: free bytes of its file system plus pages it
	 * freed and will reuse) and the file system's size (*total); both -1 if unknown. */
	enum berr_code (*space)(struct meta *m, int64_t *avail, int64_t *total, struct berr *err);
};

struct meta {
	const struct meta_ops *ops;
};

void meta_repo_clear(struct meta_repo *r);
void meta_image_clear(struct meta_image *img);
void meta_upload_clear(struct meta_upload *u);

/* Opens a SQLite connection on path (creating and migrating the schema on first use).
 * *out is new (meta_close). Thread: the connection is used by one thread at a time. */
enum berr_code meta_sqlite_open(const char *path, struct meta **out, struct berr *err);
/* The same, for a connection that commits many small transactions (the group-commit writer):
 * each transaction's log frames reach the OS in one write at its commit (sqlite_walbuf.c). */
enum berr_code meta_sqlite_open_writer(const char *path, struct meta **out, struct berr *err);
static inline void meta_close(struct meta *m)
{
	if (m)
		m->ops->close(m);
}

/* A fixed-size pool of connections shared by server threads. acquire blocks while all are in
 * use. Thread-safe. */
struct meta_pool;
/* The space op on a connection of the pool (it waits for one: never call it holding one).
 * Thread-safe. */
enum berr_code meta_pool_space(struct meta_pool *p, int64_t *avail, int64_t *total,
                               struct berr *err);
enum berr_code meta_pool_open(const char *path, int size, struct meta_pool **out, struct berr *err);
struct meta *meta_pool_acquire(struct meta_pool *p);
void meta_pool_release(struct meta_pool *p, struct meta *m);
void meta_pool_close(struct meta_pool *p);

#endif
