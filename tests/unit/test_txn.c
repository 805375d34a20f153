/* test_txn.c - the group commit (core/txn.c): concurrent closures share transactions, a failing
 * closure is undone alone and reports its own error, and every acknowledged change is in the
 * database after the registry is closed and reopened; other connections' writes queue at the
 * write gate and are seen by the group commit; the writer's log starts over under load. */
#include "base/feat.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "base/err.h"
#include "base/mem.h"
#include "core/core.h"
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define THREADS 8
#define PER_THREAD 150
#define FAIL_EVERY 7 /* closures with (thread * PER_THREAD + i) % FAIL_EVERY == 0 fail */

static const struct registry_id reg = {"123456789012", "us-east-1"};

struct put {
	int n;
	bool fail;
	bool flaky; /* fails when run a second time */
	int runs;
};

/* Writes doc "d<n>". A failing closure with an odd n writes it and then fails (only an undo
 * removes it); one with an even n fails before writing. */
static enum berr_code put_doc(struct meta *m, void *ctx, struct berr *err)
{
	struct put *p = ctx;
	char name[32], value[32];
	if (++p->runs > 1 && p->flaky)
		return err_set(err, BERR_INTERNAL, "closure %d fails when run again", p->n);
	if (p->fail && p->n % 2 == 0)
		return err_set(err, BERR_INVALID, "closure %d fails", p->n);
	snprintf(name, sizeof(name), "d%d", p->n);
	snprintf(value, sizeof(value), "v%d", p->n);
	enum berr_code rc = m->ops->kv_put(m, reg.account, reg.region, name, value, err);
	if (rc == BERR_OK && p->fail)
		rc = err_set(err, BERR_INVALID, "closure %d fails", p->n);
	return rc;
}

struct worker {
	struct core *c;
	int id;
	int ok, failed_right;
};

static void *worker(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < PER_THREAD; i++) {
		struct put p = {w->id * PER_THREAD + i, false, false, 0};
		p.fail = p.n % FAIL_EVERY == 0;
		struct berr err;
		err_clear(&err);
		enum berr_code rc = core_txn(w->c, put_doc, &p, &err);
		char want[64];
		snprintf(want, sizeof(want), "closure %d fails", p.n);
		if (!p.fail && rc == BERR_OK)
			w->ok++;
		else if (p.fail && rc == BERR_INVALID && strcmp(err.msg, want) == 0)
			w->failed_right++;
	}
	return NULL;
}

/* Each test gets a fresh data directory (its path is the state). */
static int dir_setup(void **state)
{
	*state = test_mkdtemp("txn");
	return *state ? 0 : -1;
}

static int dir_teardown(void **state)
{
	test_rm_rf(*state);
	free(*state);
	return 0;
}

static struct core *open_core(const char *dir, int pool)
{
	struct core *c = NULL;
	struct berr err;
	assert_int_equal(core_open(dir, pool, &c, &err), BERR_OK);
	return c;
}

static void concurrent_closures(void **state)
{
	const char *dir = *state;
	struct core *c = open_core(dir, 4);
	struct berr err;

	pthread_t t[THREADS];
	struct worker w[THREADS];
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){c, i, 0, 0};
		assert_int_equal(pthread_create(&t[i], NULL, worker, &w[i]), 0);
	}
	int ok = 0, failed = 0;
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		ok += w[i].ok;
		failed += w[i].failed_right;
	}
	int total = THREADS * PER_THREAD, want_failed = (total + FAIL_EVERY - 1) / FAIL_EVERY;
	assert_int_equal(failed, want_failed);
	assert_int_equal(ok, total - want_failed);
	core_close(c);

	/* Reopened: exactly the acknowledged documents, with their values. */
	c = open_core(dir, 1);
	struct meta *m = meta_pool_acquire(c->pool);
	for (int n = 0; n < total; n++) {
		char name[32], want[32], *value = NULL;
		snprintf(name, sizeof(name), "d%d", n);
		snprintf(want, sizeof(want), "v%d", n);
		enum berr_code rc = core_doc_get(m, &reg, name, &value, &err);
		if (n % FAIL_EVERY == 0) {
			assert_int_equal(rc, BERR_NOT_FOUND);
		} else {
			assert_int_equal(rc, BERR_OK);
			assert_string_equal(value, want);
		}
		free(value);
	}
	meta_pool_release(c->pool, m);
	core_close(c);
}

/* A closure's changes are visible to the next closure of the same batch or a later one, and a
 * lone caller commits at once (no waiting for company). */
static enum berr_code read_doc(struct meta *m, void *ctx, struct berr *err)
{
	char **out = ctx;
	return m->ops->kv_get(m, reg.account, reg.region, "d1", out, err);
}

static void sequential_visibility(void **state)
{
	struct core *c = open_core(*state, 2);
	struct berr err;
	struct put p = {1, false, false, 0};
	assert_int_equal(core_txn(c, put_doc, &p, &err), BERR_OK);
	char *v = NULL;
	assert_int_equal(core_txn(c, read_doc, &v, &err), BERR_OK);
	assert_string_equal(v, "v1");
	free(v);
	/* and through a pool connection, as a request would read it */
	struct meta *m = meta_pool_acquire(c->pool);
	assert_int_equal(core_doc_get(m, &reg, "d1", &v, &err), BERR_OK);
	assert_string_equal(v, "v1");
	free(v);
	meta_pool_release(c->pool, m);
	core_close(c);
}

/* A closure that ends the writer's transaction under the group commit: the transaction is
 * lost, so the closure fails with an I/O error and nothing of it stays; the writer, its
 * write gate and the pool's writers all go on afterwards. */
static enum berr_code lose_txn(struct meta *m, void *ctx, struct berr *err)
{
	(void)ctx;
	enum berr_code rc = m->ops->kv_put(m, reg.account, reg.region, "lost", "x", err);
	m->ops->txn_rollback(m);
	return rc;
}

static void lost_transaction_recovers(void **state)
{
	struct core *c = open_core(*state, 2);
	struct berr err;
	struct put p = {1, false, false, 0};
	assert_int_equal(core_txn(c, lose_txn, NULL, &err), BERR_IO);
	assert_int_equal(core_txn(c, put_doc, &p, &err), BERR_OK);
	struct meta *m = meta_pool_acquire(c->pool);
	char *v = NULL;
	assert_int_equal(core_doc_get(m, &reg, "lost", &v, &err), BERR_NOT_FOUND);
	assert_int_equal(core_doc_get(m, &reg, "d1", &v, &err), BERR_OK);
	free(v);
	assert_int_equal(m->ops->kv_put(m, reg.account, reg.region, "after", "y", &err), BERR_OK);
	meta_pool_release(c->pool, m);
	core_close(c);
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

struct gate_writer {
	struct meta *m;
	bool autocommit; /* a lone statement rather than BEGIN ... COMMIT */
	enum berr_code rc;
	volatile bool done;
};

static void *gate_writer_main(void *arg)
{
	struct gate_writer *g = arg;
	struct berr err;
	if (g->autocommit) {
		g->rc = g->m->ops->kv_put(g->m, reg.account, reg.region, "other", "x", &err);
	} else {
		g->rc = g->m->ops->txn_begin(g->m, &err);
		if (g->rc == BERR_OK)
			g->rc =
			    g->m->ops->kv_put(g->m, reg.account, reg.region, "other", "y", &err);
		if (g->rc == BERR_OK)
			g->rc = g->m->ops->txn_commit(g->m, &err);
	}
	g->done = true;
	return NULL;
}

/* A write transaction of another connection (or a lone write statement) waits at the gate
 * while one is open, the holder sees it waiting, and it runs once the holder commits. */
static void writes_queue_at_the_gate(void **state)
{
	struct core *c = open_core(*state, 2);
	struct berr err;
	for (int autocommit = 0; autocommit <= 1; autocommit++) {
		struct meta *m1 = meta_pool_acquire(c->pool), *m2 = meta_pool_acquire(c->pool);
		assert_false(m1->ops->writers_waiting(m1));
		assert_int_equal(m1->ops->txn_begin(m1, &err), BERR_OK);
		assert_int_equal(m1->ops->kv_put(m1, reg.account, reg.region, "first", "1", &err),
		                 BERR_OK);
		struct gate_writer g = {m2, autocommit, BERR_INTERNAL, false};
		pthread_t t;
		assert_int_equal(pthread_create(&t, NULL, gate_writer_main, &g), 0);
		bool seen = false;
		for (int i = 0; i < 500 && !seen; i++) {
			seen = m1->ops->writers_waiting(m1);
			if (!seen)
				sleep_ms(10);
		}
		assert_true(seen);
		assert_false(g.done);
		assert_int_equal(m1->ops->txn_commit(m1, &err), BERR_OK);
		pthread_join(t, NULL);
		assert_int_equal(g.rc, BERR_OK);
		assert_false(m1->ops->writers_waiting(m1));
		meta_pool_release(c->pool, m2);
		meta_pool_release(c->pool, m1);
	}
	core_close(c);
}

/* Pool writers keep going while the group commit is under load, and both sides' changes
 * are all there afterwards. */
struct pool_writes {
	struct core *c;
	int n, ok;
};

static void *pool_writes_main(void *arg)
{
	struct pool_writes *p = arg;
	struct meta *m = meta_pool_acquire(p->c->pool);
	for (int i = 0; i < p->n; i++) {
		char name[32];
		struct berr err;
		snprintf(name, sizeof(name), "pool%d", i);
		if (m->ops->kv_put(m, reg.account, reg.region, name, "p", &err) == BERR_OK)
			p->ok++;
	}
	meta_pool_release(p->c->pool, m);
	return NULL;
}

static void pool_writers_alongside(void **state)
{
	struct core *c = open_core(*state, 4);
	pthread_t t[THREADS], pt;
	struct worker w[THREADS];
	struct pool_writes pw = {c, 200, 0};
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){c, i, 0, 0};
		assert_int_equal(pthread_create(&t[i], NULL, worker, &w[i]), 0);
	}
	assert_int_equal(pthread_create(&pt, NULL, pool_writes_main, &pw), 0);
	int ok = 0;
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		ok += w[i].ok;
	}
	pthread_join(pt, NULL);
	assert_int_equal(pw.ok, pw.n);
	int total = THREADS * PER_THREAD;
	assert_int_equal(ok, total - (total + FAIL_EVERY - 1) / FAIL_EVERY);
	struct meta *m = meta_pool_acquire(c->pool);
	struct berr err;
	char *v = NULL;
	assert_int_equal(core_doc_get(m, &reg, "pool199", &v, &err), BERR_OK);
	free(v);
	assert_int_equal(core_doc_get(m, &reg, "d1", &v, &err), BERR_OK);
	free(v);
	meta_pool_release(c->pool, m);
	core_close(c);
}

/* A closure that fails after writing makes the transaction run again without it (txn.c
 * redo); closures there that fail on their second run report that failure. Whatever happens,
 * a document is in the database exactly when its put was acknowledged, and the rounds go on
 * until some closure has been run twice. */
#define REDO_ROUNDS 20

struct redo_worker {
	struct core *c;
	struct put *puts;
	enum berr_code *rc;
	int first, n;
};

static void *redo_worker_main(void *arg)
{
	struct redo_worker *w = arg;
	for (int i = w->first; i < w->first + w->n; i++) {
		struct berr err;
		w->rc[i] = core_txn(w->c, put_doc, &w->puts[i], &err);
	}
	return NULL;
}

static void redo_keeps_what_was_acknowledged(void **state)
{
	struct core *c = open_core(*state, 2);
	int total = THREADS * PER_THREAD, reruns = 0, round;
	struct put *puts = xcalloc((size_t)total, sizeof(*puts));
	enum berr_code *rc = xcalloc((size_t)total, sizeof(*rc));
	for (round = 0; round < REDO_ROUNDS && reruns == 0; round++) {
		for (int i = 0; i < total; i++) {
			int n = round * total + i;
			puts[i] = (struct put){n, n % FAIL_EVERY == 1, n % 5 == 0, 0};
		}
		pthread_t t[THREADS];
		struct redo_worker w[THREADS];
		for (int i = 0; i < THREADS; i++) {
			w[i] = (struct redo_worker){c, puts, rc, i * PER_THREAD, PER_THREAD};
			assert_int_equal(pthread_create(&t[i], NULL, redo_worker_main, &w[i]), 0);
		}
		for (int i = 0; i < THREADS; i++)
			pthread_join(t[i], NULL);
		struct meta *m = meta_pool_acquire(c->pool);
		for (int i = 0; i < total; i++) {
			char name[32], *v = NULL;
			struct berr err;
			snprintf(name, sizeof(name), "d%d", puts[i].n);
			enum berr_code got = core_doc_get(m, &reg, name, &v, &err);
			free(v);
			assert_int_equal(got, rc[i] == BERR_OK ? BERR_OK : BERR_NOT_FOUND);
			if (puts[i].fail)
				assert_int_not_equal(rc[i], BERR_OK);
			reruns += puts[i].runs > 1;
		}
		meta_pool_release(c->pool, m);
	}
	assert_true(reruns > 0);
	free(rc);
	free(puts);
	core_close(c);
}

/* Closures that each write ~20 pages of log (~50 MiB over the test): with checkpoints in the
 * background the log must still start over (not grow with everything written). */
#define BIG_DOCS 40
#define BIG_ROUNDS 600

static enum berr_code put_big(struct meta *m, void *ctx, struct berr *err)
{
	int round = *(int *)ctx;
	char name[32], value[2048];
	enum berr_code rc = BERR_OK;
	for (int i = 0; i < BIG_DOCS && rc == BERR_OK; i++) {
		snprintf(name, sizeof(name), "b%d", i);
		for (size_t k = 0; k + 1 < sizeof(value); k++)
			value[k] = (char)('a' + (round * 31 + i * 7 + (int)k) % 26);
		value[sizeof(value) - 1] = 0;
		rc = m->ops->kv_put(m, reg.account, reg.region, name, value, err);
	}
	return rc;
}

static void log_starts_over(void **state)
{
	const char *dir = *state;
	struct core *c = open_core(dir, 2);
	struct berr err;
	for (int r = 0; r < BIG_ROUNDS; r++)
		assert_int_equal(core_txn(c, put_big, &r, &err), BERR_OK);
	char *wal = xasprintf("%s/berth.db-wal", dir);
	struct stat st;
	assert_int_equal(stat(wal, &st), 0);
	/* written: BIG_ROUNDS commits of >= BIG_DOCS / 2 pages each, ~12,000+ frames (~50 MiB);
	 * kept: at most the checkpoint interval (8,000 frames) plus a commit or two */
	assert_true(st.st_size < (off_t)9000 * 4120);
	free(wal);
	core_close(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(concurrent_closures, dir_setup, dir_teardown),
	    cmocka_unit_test_setup_teardown(sequential_visibility, dir_setup, dir_teardown),
	    cmocka_unit_test_setup_teardown(lost_transaction_recovers, dir_setup, dir_teardown),
	    cmocka_unit_test_setup_teardown(redo_keeps_what_was_acknowledged, dir_setup,
	                                    dir_teardown),
	    cmocka_unit_test_setup_teardown(writes_queue_at_the_gate, dir_setup, dir_teardown),
	    cmocka_unit_test_setup_teardown(pool_writers_alongside, dir_setup, dir_teardown),
	    cmocka_unit_test_setup_teardown(log_starts_over, dir_setup, dir_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
