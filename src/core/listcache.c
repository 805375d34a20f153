/* listcache.c - recently built first pages of GET /v2/<name>/tags/list.
 *
 * A 10,000-tag list costs SQLite one index step per tag on every request, while the list
 * changes only when a tag name is added or removed. repos.tags_version counts exactly those
 * changes (database triggers, so every writer and every process bumps it in the transaction
 * that makes the change), and the repository row is read on every request anyway. A page
 * built after reading version v is therefore served again while the row still says v.
 *
 * Invariants: a page is stored with the version read before its rows were read, so its
 * content is never older than its version (at worst newer, from a change that committed in
 * between, which the next request's version misses and rebuilds). Direct-mapped by
 * repository id, a few slots, pages above a size limit are not kept: memory stays bounded. */
#include "../base/feat.h"

#include "core.h"
#include "../base/mem.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 8
#define PAGE_MAX (1024 * 1024) /* larger pages are rebuilt every time */

struct slot {
	int64_t repo_id; /* 0: empty */
	int64_t version;
	long long n;
	struct core_list_page page;
};

struct core_list_cache {
	pthread_mutex_t mu;
	struct slot s[SLOTS];
};

struct core_list_cache *core_list_cache_new(void)
{
	struct core_list_cache *lc = xcalloc(1, sizeof(*lc));
	pthread_mutex_init(&lc->mu, NULL);
	return lc;
}

void core_list_page_clear(struct core_list_page *p)
{
	free(p->body);
	free(p->last);
	memset(p, 0, sizeof(*p));
}

void core_list_cache_free(struct core_list_cache *lc)
{
	if (!lc)
		return;
	for (int i = 0; i < SLOTS; i++)
		core_list_page_clear(&lc->s[i].page);
	pthread_mutex_destroy(&lc->mu);
	free(lc);
}

static struct slot *slot_of(struct core_list_cache *lc, int64_t repo_id)
{
	return &lc->s[(uint64_t)repo_id % SLOTS];
}

bool core_list_cache_get(struct core_list_cache *lc, int64_t repo_id, int64_t version, long long n,
                         struct core_list_page *out)
{
	bool hit = false;
	pthread_mutex_lock(&lc->mu);
	struct slot *s = slot_of(lc, repo_id);
	if (s->repo_id == repo_id && s->version == version && s->n == n) {
		out->body = xmalloc(s->page.len ? s->page.len : 1);
		memcpy(out->body, s->page.body, s->page.len);
		out->len = s->page.len;
		out->last = s->page.last ? xstrdup(s->page.last) : NULL;
		hit = true;
	}
	pthread_mutex_unlock(&lc->mu);
	return hit;
}

void core_list_cache_put(struct core_list_cache *lc, int64_t repo_id, int64_t version, long long n,
                         const struct core_list_page *page)
{
	if (page->len > PAGE_MAX || repo_id <= 0)
		return;
	struct core_list_page copy = {xmalloc(page->len ? page->len : 1), page->len,
	                              page->last ? xstrdup(page->last) : NULL};
	memcpy(copy.body, page->body, page->len);
	pthread_mutex_lock(&lc->mu);
	struct slot *s = slot_of(lc, repo_id);
	struct core_list_page old = s->page;
	/* Keep the newer version if a slower request built an older page of the same list. */
	if (s->repo_id == repo_id && s->version > version) {
		old = copy;
	} else {
		s->repo_id = repo_id;
		s->version = version;
		s->n = n;
		s->page = copy;
	}
	pthread_mutex_unlock(&lc->mu);
	core_list_page_clear(&old);
}
