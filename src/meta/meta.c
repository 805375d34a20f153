/* meta.c - driver-independent parts of the metadata store: row clean-up and the connection
 * pool. The pool is a mutex-protected stack; connections are opened up front so a request never
 * pays for open+migrate, and a bounded pool bounds the database's concurrency. */
#include "../base/feat.h"

#include "meta.h"
#include "../base/mem.h"

#include <pthread.h>
#include <stdlib.h>

void meta_repo_clear(struct meta_repo *r)
{
	if (!r)
		return;
	free(r->account);
	free(r->region);
	free(r->name);
	free(r->mutability);
	free(r->mutability_filters);
	free(r->encryption_type);
	free(r->kms_key);
	free(r->resource_tags);
	free(r->policy);
	free(r->lifecycle_policy);
	*r = (struct meta_repo){0};
}

void meta_image_clear(struct meta_image *img)
{
	if (!img)
		return;
	free(img->digest);
	free(img->media_type);
	free(img->artifact_type);
	free(img->subject);
	free(img->manifest);
	free(img->status);
	if (img->tags) {
		for (size_t i = 0; i < img->ntags; i++)
			free(img->tags[i]);
		free(img->tags);
	}
	*img = (struct meta_image){0};
}

void meta_upload_clear(struct meta_upload *u)
{
	if (!u)
		return;
	free(u->hash_state);
	u->hash_state = NULL;
	u->hash_state_len = 0;
}

struct meta_pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int size;
	int nfree;
	struct meta **free; /* stack of idle connections */
	struct meta **all;
};

enum berr_code meta_pool_open(const char *path, int size, struct meta_pool **out, struct berr *err)
{
	struct meta_pool *p = xcalloc(1, sizeof(*p));
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->free = xcalloc((size_t)size, sizeof(*p->free));
	p->all = xcalloc((size_t)size, sizeof(*p->all));
	for (int i = 0; i < size; i++) {
		if (meta_sqlite_open(path, &p->all[i], err) != BERR_OK) {
			p->size = i;
			meta_pool_close(p);
			return err->code;
		}
		p->free[i] = p->all[i];
	}
	p->size = p->nfree = size;
	*out = p;
	return BERR_OK;
}

enum berr_code meta_pool_space(struct meta_pool *p, int64_t *avail, int64_t *total,
                               struct berr *err)
{
	struct meta *m = meta_pool_acquire(p);
	enum berr_code rc = m->ops->space(m, avail, total, err);
	meta_pool_release(p, m);
	return rc;
}

struct meta *meta_pool_acquire(struct meta_pool *p)
{
	pthread_mutex_lock(&p->mu);
	while (p->nfree == 0)
		pthread_cond_wait(&p->cv, &p->mu);
	struct meta *m = p->free[--p->nfree];
	pthread_mutex_unlock(&p->mu);
	return m;
}

void meta_pool_release(struct meta_pool *p, struct meta *m)
{
	if (!m)
		return;
	m->ops->txn_rollback(m); /* never hand on an open transaction */
	pthread_mutex_lock(&p->mu);
	p->free[p->nfree++] = m;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

void meta_pool_close(struct meta_pool *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->size; i++)
		meta_close(p->all[i]);
	free(p->free);
	free(p->all);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
}
