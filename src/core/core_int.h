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
 * other processes on the node (the CLI) alike. name is an upload id: the lock serialises the
 * writes to one upload session. Its file is removed (core_lock_remove) only by whoever ends
 * the session while holding it, or by gc once the session is gone: a waiter on an unlinked
 * file then finds no session row, and a newcomer makes a new file and finds none either. */
enum berr_code core_lock_acquire(struct core *c, const char *name, int *fd, struct berr *err);
void core_lock_release(int fd);
/* Removes the lock file of a thing that no longer exists (waiters then find no row). */
void core_lock_remove(struct core *c, const char *name);

/* A batch of blob rows read from the database (gc.c and fsck.c page through them). */
struct core_blob_batch {
	struct meta_blob *v; /* capacity CORE_BLOB_BATCH */
	size_t n;
};
#define CORE_BLOB_BATCH 500
/* meta_blob_fn that appends to a struct core_blob_batch. */
int core_blob_batch_add(void *ctx, const struct meta_blob *b);

#endif
