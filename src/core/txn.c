/* txn.c - group commit for small, frequent state changes (image puts).
 *
 * One commit with synchronous=FULL waits for an fsync of the WAL, so writers that each commit
 * alone are bounded by the disk's flush rate however many CPUs are free. Here a change is a
 * closure run on one shared writer connection, in two stages:
 *
 *  1. commit: a caller queues its closure; whoever finds no leader becomes the leader, takes
 *     the queue (up to TXN_BATCH_MAX) and runs it in one transaction, each closure inside its
 *     own savepoint, and commits once. The writer connection commits without waiting for the
 *     disk (meta defer_durability), so the leader then hands the lead on at once.
 *  2. sync: committed requests wait in the unsynced list; whoever finds no sync running takes
 *     the whole list, syncs the log once (meta sync) and wakes them.
 *
 * Callers that arrive during a commit queue for the next batch and commits that finish during
 * a sync share the next sync, so both stages batch more as the load grows, and a lone caller
 * commits and syncs alone, at once. Roles go to waiting callers (each has its own condition
 * variable, so only the thread that is needed is woken).
 *
 * Invariants:
 *  - a caller returns BERR_OK only after a sync that began after its commit, so acknowledged
 *    changes are as durable as with one synchronous transaction per change (a committed change
 *    may be read by others before that sync; a power loss in that window drops it, and it was
 *    never acknowledged);
 *  - a closure that fails is undone to its savepoint and reports its own error; the others in
 *    the batch are unaffected (they see the database as if it had never run);
 *  - if the transaction itself is lost (BEGIN, a savepoint or COMMIT fails: I/O error, disk
 *    full) every closure of the batch fails with that error, and a failed sync fails every
 *    request it was to make durable;
 *  - closures run one at a time, in queue order, on the writer connection only; they must not
 *    call core_txn (it would wait for itself) or take locks a queued caller may hold;
 *  - whenever the queue (the unsynced list) is not empty and no leader (syncer) runs, its first
 *    request has been signalled or is about to look. */
#include "../base/feat.h"

#include "core_int.h"
#include "../base/mem.h"

#include <pthread.h>
#include <stdlib.h>

/* Bounds one transaction's size (its WAL growth and the time a batch waits for its commit). */
#define TXN_BATCH_MAX 64

enum txn_state { TXN_QUEUED, TXN_TAKEN, TXN_COMMITTED, TXN_DONE };

struct txn_req {
	core_txn_fn fn;
	void *ctx;
	struct berr err;
	enum berr_code rc;
	enum txn_state state;
	pthread_cond_t cv; /* signalled when done, or when it may take a role */
	struct txn_req *next;
};

struct txn_list {
	struct txn_req *head, **tail;
};

struct core_writer {
	pthread_mutex_t mu;
	struct txn_list queue;    /* TXN_QUEUED: not yet taken by a leader */
	struct txn_list unsynced; /* TXN_COMMITTED: waiting for a sync */
	bool leading;             /* a leader runs a batch (up to its COMMIT) */
	bool syncing;             /* a syncer runs */
	struct meta *m;           /* the writer connection, used by the leader only */
};

static void list_init(struct txn_list *l)
{
	l->head = NULL;
	l->tail = &l->head;
}

static void list_push(struct txn_list *l, struct txn_req *r)
{
	r->next = NULL;
	*l->tail = r;
	l->tail = &r->next;
}

/* Takes up to max requests off l (all if max <= 0), marking them state. */
static struct txn_req *list_take(struct txn_list *l, int max, enum txn_state state)
{
	struct txn_req *first = l->head, *last = first;
	last->state = state;
	for (int n = 1; (max <= 0 || n < max) && last->next; n++) {
		last = last->next;
		last->state = state;
	}
	l->head = last->next;
	last->next = NULL;
	if (!l->head)
		l->tail = &l->head;
	return first;
}

/* Wakes the first request of l, if any, to take the role l is waiting for. */
static void list_wake(struct txn_list *l, const struct txn_req *me)
{
	if (l->head && l->head != me)
		pthread_cond_signal(&l->head->cv);
}

static void finish(struct txn_req *r, const struct txn_req *me)
{
	r->state = TXN_DONE;
	if (r != me)
		pthread_cond_signal(&r->cv);
}

enum berr_code core_writer_open(const char *db_path, struct core_writer **out, struct berr *err)
{
	struct core_writer *w = xcalloc(1, sizeof(*w));
	enum berr_code rc = meta_sqlite_open_writer(db_path, &w->m, err);
	if (rc == BERR_OK)
		rc = w->m->ops->defer_durability(w->m, err);
	if (rc != BERR_OK) {
		meta_close(w->m);
		free(w);
		return rc;
	}
	pthread_mutex_init(&w->mu, NULL);
	list_init(&w->queue);
	list_init(&w->unsynced);
	*out = w;
	return BERR_OK;
}

void core_writer_close(struct core_writer *w)
{
	if (!w)
		return;
	meta_close(w->m);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

static void fail_all(struct txn_req *batch, const struct berr *why)
{
	for (struct txn_req *r = batch; r; r = r->next) {
		r->err = *why;
		r->rc = why->code;
	}
}

/* Runs a batch in one transaction and commits it; sets every request's rc/err. */
static void run_batch(struct meta *m, struct txn_req *batch)
{
	struct berr e;
	err_clear(&e);
	if (m->ops->txn_begin(m, &e) != BERR_OK) {
		fail_all(batch, &e);
		return;
	}
	for (struct txn_req *r = batch; r; r = r->next) {
		if (m->ops->savepoint(m, META_SP_BEGIN, &e) != BERR_OK)
			goto lost;
		err_clear(&r->err);
		r->rc = r->fn(m, r->ctx, &r->err);
		if (m->ops->savepoint(m, r->rc == BERR_OK ? META_SP_RELEASE : META_SP_UNDO, &e) !=
		    BERR_OK)
			goto lost;
	}
	if (m->ops->txn_commit(m, &e) == BERR_OK)
		return;
lost:
	m->ops->txn_rollback(m);
	fail_all(batch, &e);
}

/* Stage 1, called with mu held and returning with it held. */
static void lead(struct core_writer *w, struct txn_req *me)
{
	w->leading = true;
	struct txn_req *batch = list_take(&w->queue, TXN_BATCH_MAX, TXN_TAKEN);
	pthread_mutex_unlock(&w->mu);
	run_batch(w->m, batch);
	pthread_mutex_lock(&w->mu);
	w->leading = false;
	list_wake(&w->queue, me);
	for (struct txn_req *r = batch, *next; r; r = next) {
		next = r->next;
		if (r->rc != BERR_OK) {
			finish(r, me); /* nothing of it was committed */
		} else {
			r->state = TXN_COMMITTED;
			list_push(&w->unsynced, r);
		}
	}
	if (!w->syncing)
		list_wake(&w->unsynced, me);
}

/* Stage 2, same locking as lead. */
static void sync_all(struct core_writer *w, struct txn_req *me)
{
	w->syncing = true;
	struct txn_req *batch = list_take(&w->unsynced, 0, TXN_TAKEN);
	pthread_mutex_unlock(&w->mu);
	struct berr e;
	if (w->m->ops->sync(w->m, &e) != BERR_OK)
		fail_all(batch, &e);
	pthread_mutex_lock(&w->mu);
	w->syncing = false;
	for (struct txn_req *r = batch, *next; r; r = next) {
		next = r->next; /* r may return, and its stack go, once it is done */
		finish(r, me);
	}
	list_wake(&w->unsynced, me);
}

enum berr_code core_txn(struct core *c, core_txn_fn fn, void *ctx, struct berr *err)
{
	struct core_writer *w = c->writer;
	struct txn_req me = {.fn = fn, .ctx = ctx, .state = TXN_QUEUED};
	pthread_cond_init(&me.cv, NULL);
	pthread_mutex_lock(&w->mu);
	list_push(&w->queue, &me);
	while (me.state != TXN_DONE) {
		if (me.state == TXN_QUEUED && !w->leading)
			lead(w, &me);
		else if (me.state == TXN_COMMITTED && !w->syncing)
			sync_all(w, &me);
		else
			pthread_cond_wait(&me.cv, &w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	pthread_cond_destroy(&me.cv);
	if (me.rc != BERR_OK && err)
		*err = me.err;
	return me.rc;
}
