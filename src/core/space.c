/* space.c - the storage reserve (core.h): pushes stop before the disk is full, so that the
 * operations that free space never find it full.
 *
 * A full disk is still handled where the reserve cannot help (something else filled the file
 * system, or writers outran the checks): writes then fail with BERR_NO_SPACE from the blob
 * store or the database, atomically, and the push is refused the same way. A check costs a
 * statvfs(2) (and, for the database, a look at its free pages); while there is plenty of room
 * (FAR more than the reserve) its answer is reused for a tenth of a second, so the hot paths
 * pay a clock read. */
#include "../base/feat.h"

#include "core.h"
#include "../base/util.h"

#include <stdatomic.h>

#define FAR (256LL << 20)
#define REUSE_MS 100

static int64_t reserve_for(const struct core *c, int64_t total)
{
	if (c->reserve >= 0)
		return c->reserve;
	return total / 10 < CORE_RESERVE_DEFAULT ? total / 10 : CORE_RESERVE_DEFAULT;
}

enum berr_code core_space_check(struct core *c, struct meta *m, enum core_space where, int64_t need,
                                struct berr *err)
{
	int64_t now = clock_mono_ms();
	if (now < atomic_load(&c->space_ok_until[where]))
		return BERR_OK;
	int64_t avail = -1, total = -1;
	struct berr e;
	enum berr_code rc;
	if (where == CORE_SPACE_BLOBS)
		rc = c->blobs->ops->space(c->blobs, &avail, &total, &e);
	else if (m)
		rc = m->ops->space(m, &avail, &total, &e);
	else
		rc = meta_pool_space(c->pool, &avail, &total, &e);
	if (rc != BERR_OK || avail < 0)
		return BERR_OK; /* cannot tell: let the write itself find out */
	int64_t keep = reserve_for(c, total);
	if (avail - need - keep > FAR)
		atomic_store(&c->space_ok_until[where], now + REUSE_MS);
	if (avail - need >= keep)
		return BERR_OK;
	return err_set(err, BERR_NO_SPACE,
	               "storage reserve reached on the %s file system: %lld bytes free, %lld "
	               "kept for deletes and gc",
	               where == CORE_SPACE_BLOBS ? "blob" : "database", (long long)avail,
	               (long long)keep);
}
