/* core_int.h - declarations shared by the files of core/ only (not part of its interface). */
#ifndef BERTH_CORE_INT_H
#define BERTH_CORE_INT_H

#include "core.h"

/* txn.c: the group commit writer, with its own connection on the database at db_path. */
enum berr_code core_writer_open(const char *db_path, struct core_writer **out, struct berr *err);
void core_writer_close(struct core_writer *w);

/* pull.c */
struct core_pulls *core_pulls_new(void);
void core_pulls_free(struct core_pulls *p);

/* Named exclusive locks: flock(2) on locks/<name> in the data directory. flock conflicts
 * between separate open file descriptions, so a lock serialises threads of this process and
 * other processes on the node (the CLI) alike; a multi-node store will need a database-level
 * lock instead. name is [A-Za-z0-9-]+ (upload ids, "blob-<2 hex>"). */
enum berr_code core_lock_acquire(struct core *c, const char *name, int *fd, struct berr *err);
void core_lock_release(int fd);
/* Removes the lock file of a thing that no longer exists (waiters then find no row). */
void core_lock_remove(struct core *c, const char *name);
/* The lock that orders a blob's appearance (upload commit) against its deletion (gc). */
enum berr_code core_blob_lock(struct core *c, const char *digest, int *fd, struct berr *err);

/* A batch of blobs read from the database (gc.c and fsck.c page through blob rows). */
struct core_blob_batch {
	struct {
		char digest[DIGEST_STR_LEN];
		int64_t size;
	} * v; /* capacity CORE_BLOB_BATCH */
	size_t n;
};
#define CORE_BLOB_BATCH 500
/* meta_blob_fn that appends to a struct core_blob_batch. */
int core_blob_batch_add(void *ctx, const char *digest, int64_t size);

#endif
