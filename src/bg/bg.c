/* bg.c - the background thread: flushes batched pull times every few seconds, applies lifecycle
 * policies every --lifecycle-interval and collects garbage every --gc-interval. It sleeps on a
 * condition variable so bg_stop wakes it at once; each task uses one pooled database connection
 * for its duration. Every task is safe to run on several nodes at once (see lifecycle_run.c and
 * gc.c), so nodes need no leader. */
#include "../base/feat.h"

#include "bg.h"
#include "../base/log.h"
#include "../base/mem.h"
#include "../base/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#define PULL_FLUSH_MS 2000

struct bg {
	struct core *core;
	struct bg_opts o;
	int64_t next_lifecycle;
	int64_t next_gc;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
};

static void log_action(void *ctx, const struct meta_repo *repo, const struct core_lc_action *a)
{
	(void)ctx;
	log_info("lifecycle: %s %s/%s image %s (%zu tag%s) by rule %d",
	         a->applied ? "expired" : "would expire", repo->account, repo->name, a->digest,
	         a->ntags, a->ntags == 1 ? "" : "s", a->rule_priority);
}

static void run_tasks(struct bg *b)
{
	struct berr err;
	err_clear(&err);
	struct meta *m = meta_pool_acquire(b->core->pool);
	if (core_pull_flush(b->core, m, &err) != BERR_OK)
		log_warn("bg: flushing pull times: %s", err.msg);
	int64_t now = clock_now_ms();
	if (b->o.lifecycle_interval_ms > 0 && now >= b->next_lifecycle) {
		int64_t n = 0;
		if (core_lifecycle_apply_all(b->core, m, false, now, log_action, NULL, &n, &err) !=
		    BERR_OK)
			log_warn("bg: lifecycle: %s", err.msg);
		b->next_lifecycle = clock_now_ms() + b->o.lifecycle_interval_ms;
	}
	if (b->o.gc_interval_ms > 0 && now >= b->next_gc) {
		struct core_gc_opts go = {.grace_ms = b->o.gc_grace_ms};
		struct core_gc_stats st;
		if (core_gc(b->core, m, &go, &st, &err) != BERR_OK)
			log_warn("bg: gc: %s", err.msg);
		else if (st.blobs || st.uploads || st.orphan_files)
			log_info(
			    "gc: freed %lld blobs (%lld bytes), %lld upload sessions, %lld orphan "
			    "files (%lld bytes)",
			    (long long)st.blobs, (long long)st.bytes, (long long)st.uploads,
			    (long long)st.orphan_files, (long long)st.orphan_bytes);
		b->next_gc = clock_now_ms() + b->o.gc_interval_ms;
	}
	meta_pool_release(b->core->pool, m);
}

static void *bg_main(void *arg)
{
	struct bg *b = arg;
	pthread_mutex_lock(&b->mu);
	while (!b->stop) {
		pthread_mutex_unlock(&b->mu);
		run_tasks(b);
		pthread_mutex_lock(&b->mu);
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += PULL_FLUSH_MS / 1000;
		while (!b->stop && pthread_cond_timedwait(&b->cv, &b->mu, &ts) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&b->mu);
	return NULL;
}

enum berr_code bg_start(struct core *core, const struct bg_opts *o, struct bg **out,
                        struct berr *err)
{
	struct bg *b = xcalloc(1, sizeof(*b));
	b->core = core;
	b->o = *o;
	int64_t now = clock_now_ms();
	b->next_lifecycle = now + o->lifecycle_interval_ms;
	b->next_gc = now + o->gc_interval_ms;
	pthread_mutex_init(&b->mu, NULL);
	pthread_cond_init(&b->cv, NULL);
	if (pthread_create(&b->thread, NULL, bg_main, b) != 0) {
		free(b);
		return err_set(err, BERR_INTERNAL, "cannot start the background thread");
	}
	*out = b;
	return BERR_OK;
}

void bg_stop(struct bg *b)
{
	if (!b)
		return;
	thread_stop(b->thread, &b->mu, &b->cv, &b->stop);
	pthread_mutex_destroy(&b->mu);
	pthread_cond_destroy(&b->cv);
	free(b);
}
