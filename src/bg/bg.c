/* bg.c - the background thread: flushes batched pull times every few seconds and removes
 * abandoned upload sessions periodically. It sleeps on a condition variable so bg_stop wakes it
 * at once; each task uses one pooled database connection for its duration. */
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
#define UPLOAD_SWEEP_MS (10LL * 60 * 1000)

struct bg {
	struct core *core;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
};

static void run_tasks(struct bg *b, int64_t *next_sweep)
{
	struct berr err;
	err_clear(&err);
	struct meta *m = meta_pool_acquire(b->core->pool);
	if (core_pull_flush(b->core, m, &err) != BERR_OK)
		log_warn("bg: flushing pull times: %s", err.msg);
	int64_t now = clock_now_ms();
	if (now >= *next_sweep) {
		int64_t n = 0;
		if (core_upload_expire(b->core, m, now - UPLOAD_TTL_MS, &n, &err) != BERR_OK)
			log_warn("bg: expiring uploads: %s", err.msg);
		else if (n)
			log_info("bg: removed %lld abandoned upload session(s)", (long long)n);
		*next_sweep = now + UPLOAD_SWEEP_MS;
	}
	meta_pool_release(b->core->pool, m);
}

static void *bg_main(void *arg)
{
	struct bg *b = arg;
	int64_t next_sweep = 0;
	pthread_mutex_lock(&b->mu);
	while (!b->stop) {
		pthread_mutex_unlock(&b->mu);
		run_tasks(b, &next_sweep);
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

enum berr_code bg_start(struct core *core, struct bg **out, struct berr *err)
{
	struct bg *b = xcalloc(1, sizeof(*b));
	b->core = core;
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
	pthread_mutex_lock(&b->mu);
	b->stop = true;
	pthread_cond_signal(&b->cv);
	pthread_mutex_unlock(&b->mu);
	pthread_join(b->thread, NULL);
	pthread_mutex_destroy(&b->mu);
	pthread_cond_destroy(&b->cv);
	free(b);
}
