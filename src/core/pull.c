/* pull.c - batched lastRecordedPullTime bookkeeping.
 *
 * Manifest pulls (GET /v2/.../manifests, BatchGetImage) call core_pull_record, which only
 * updates an in-memory map image id -> latest pull time under a mutex. A background task calls
 * core_pull_flush every few seconds (and the server once more at shutdown), writing all pending
 * times in one transaction; the UPDATE only moves a time forward, so flushes from several nodes
 * commute. A crash loses at most one interval of pull times, which ECR also records lazily.
 * Image ids can be reused after a delete; the UPDATE only applies a pull time that is not
 * older than the image's push, so a pending time never lands on a newer image. */
#include "../base/feat.h"

#include "core_int.h"
#include "../base/mem.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Open-addressing map with linear probing; id 0 marks an empty slot (row ids start at 1). */
struct core_pulls {
	pthread_mutex_t mu;
	int64_t *ids;
	int64_t *at;
	size_t cap; /* power of two */
	size_t n;
};

static struct core_pulls *pulls_get(struct core *c)
{
	return c->pulls;
}

struct core_pulls *core_pulls_new(void)
{
	struct core_pulls *p = xcalloc(1, sizeof(*p));
	pthread_mutex_init(&p->mu, NULL);
	return p;
}

void core_pulls_free(struct core_pulls *p)
{
	if (!p)
		return;
	pthread_mutex_destroy(&p->mu);
	free(p->ids);
	free(p->at);
	free(p);
}

static size_t slot(int64_t id, size_t cap)
{
	uint64_t h = (uint64_t)id * 0x9E3779B97F4A7C15ull;
	return (size_t)(h >> 32) & (cap - 1);
}

static void put(struct core_pulls *p, int64_t id, int64_t at)
{
	size_t i = slot(id, p->cap);
	while (p->ids[i] && p->ids[i] != id)
		i = (i + 1) & (p->cap - 1);
	if (!p->ids[i]) {
		p->ids[i] = id;
		p->at[i] = at;
		p->n++;
	} else if (at > p->at[i]) {
		p->at[i] = at;
	}
}

static void grow(struct core_pulls *p)
{
	size_t oldcap = p->cap;
	int64_t *oids = p->ids, *oat = p->at;
	p->cap = oldcap ? oldcap * 2 : 64;
	p->ids = xcalloc(p->cap, sizeof(int64_t));
	p->at = xcalloc(p->cap, sizeof(int64_t));
	p->n = 0;
	for (size_t i = 0; i < oldcap; i++)
		if (oids[i])
			put(p, oids[i], oat[i]);
	free(oids);
	free(oat);
}

void core_pull_record(struct core *c, int64_t image_id, int64_t at_ms)
{
	struct core_pulls *p = pulls_get(c);
	if (!p || image_id <= 0)
		return;
	pthread_mutex_lock(&p->mu);
	if ((p->n + 1) * 2 > p->cap)
		grow(p);
	put(p, image_id, at_ms);
	pthread_mutex_unlock(&p->mu);
}

enum berr_code core_pull_flush(struct core *c, struct meta *m, struct berr *err)
{
	struct core_pulls *p = pulls_get(c);
	if (!p)
		return BERR_OK;
	/* Swap the map out under the lock; write it without holding the lock. */
	pthread_mutex_lock(&p->mu);
	int64_t *ids = p->ids, *at = p->at;
	size_t cap = p->cap, n = p->n;
	p->ids = p->at = NULL;
	p->cap = p->n = 0;
	pthread_mutex_unlock(&p->mu);
	if (n == 0) {
		free(ids);
		free(at);
		return BERR_OK;
	}
	size_t k = 0;
	for (size_t i = 0; i < cap; i++) {
		if (ids[i]) {
			ids[k] = ids[i];
			at[k] = at[i];
			k++;
		}
	}
	enum berr_code rc = m->ops->image_pulls_flush(m, ids, at, k, err);
	if (rc != BERR_OK) {
		/* Keep the times for the next attempt. */
		for (size_t i = 0; i < k; i++)
			core_pull_record(c, ids[i], at[i]);
	}
	free(ids);
	free(at);
	return rc;
}
