/* txn.c - group commit for small, frequent state changes (image puts).
 *
 * One commit with synchronous=FULL waits for an fsync of the WAL, so writers that each commit
 * alone are bounded by the disk's flush rate however many CPUs are free. Here a change is a
 * closure run on one shared writer connection, in three steps:
 *
 *  1. run: a caller queues its closure and sleeps; the runner thread takes the queue (up to
 *     TXN_BATCH_MAX) and runs it inside the writer's open transaction (begun if none is).
 *     Closures that succeed wait in the pending list, uncommitted. A
 *     closure runs without a savepoint (one copies every page the closure touches, ~15 % of a
 *     put's time on the connection): when it fails having changed no rows there is nothing to
 *     undo, and when it fails having changed some, the transaction is rolled back and what had
 *     succeeded in it runs again, each closure in a savepoint (redo; rare: image puts check
 *     before they write). The runner is a thread of its own, not the callers taking turns
 *     (leader/follower): a leader whose own change was synced returned and handed the lead to
 *     the next caller by a wake-up, and the connection sat idle until that thread got a CPU
 *     behind dozens of request threads on two cores, often longer than the batch it ran.
 *  2. commit: the transaction is committed when no sync is running, so that everything run
 *     while a sync was in flight shares one commit: one write of each page it dirtied instead
 *     of one per batch (a burst of puts dirties the same few B-tree pages). The writer
 *     connection commits without waiting for the disk (meta defer_durability). The runner
 *     commits a batch at once when it finds the syncer idle, or another write of this process
 *     waiting at the write gate, which the open transaction holds.
 *  3. sync: the syncer thread commits what is pending once the connection is free, syncs the
 *     log once (meta sync) for every committed request and wakes them; then starts over while
 *     there is work.
 *
 * Callers that arrive during a sync run in the transaction the next sync commits, so batches
 * grow with the load and with the number of callers, and a lone caller runs, commits and is
 * synced at once.
 *
 * Invariants:
 *  - a caller returns BERR_OK only after a sync that began after its commit, so acknowledged
 *    changes are as durable as with one synchronous transaction per change (a committed change
 *    may be read by others before that sync; a power loss in that window drops it, and it was
 *    never acknowledged);
 *  - a closure that fails is undone and reports its own error; the others in the transaction
 *    are unaffected (they see the database as if it had never run);
 *  - a closure may run more than once (redo); only its last run counts, so it sets its outputs
 *    afresh on every run;
 *  - if the transaction itself is lost (BEGIN, a savepoint or COMMIT fails: I/O error, disk
 *    full) every closure run in it fails with that error, and a failed sync fails every
 *    request it was to make durable;
 *  - the connection has one user at a time (conn_busy: the runner, or the syncer committing);
 *    closures run one at a time, in queue order; they must not call core_txn (it would wait
 *    for itself) or take locks a queued caller may hold;
 *  - the transaction is open exactly while requests are pending;
 *  - whenever the queue is not empty and the connection is free the runner is awake, and
 *    whenever the syncer has work it is awake. */
#include "../base/feat.h"

#include "core_int.h"
#include "../base/mem.h"
#include "../base/util.h"

#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Wake-ups one holder of mu may note before it releases it (more are delivered at once). */
#define WAKES_MAX 64

/* Bounds one transaction's size (its WAL growth and the time a batch waits for its commit). */
#define TXN_BATCH_MAX 64

enum txn_state { TXN_QUEUED, TXN_RUNNING, TXN_PENDING, TXN_COMMITTED, TXN_SYNCING, TXN_DONE };

struct txn_req {
	core_txn_fn fn;
	void *ctx;
	struct berr err;
	enum berr_code rc;
	enum txn_state state;
	atomic_uint wake; /* bumped (under mu) when done, or when it may take a role */
	struct txn_req *next;
};

struct txn_list {
	struct txn_req *head, **tail;
};

struct core_writer {
	pthread_mutex_t mu;
	struct txn_list queue;    /* TXN_QUEUED: not yet taken by the runner */
	struct txn_list pending;  /* TXN_PENDING: run in the open transaction, not committed */
	struct txn_list unsynced; /* TXN_COMMITTED: waiting for a sync */
	bool conn_busy;           /* the runner runs closures, or the syncer commits */
	bool in_txn;              /* the writer's transaction is open (only its user changes it) */
	bool syncing;             /* the syncer is in a sync */
	bool stop;                /* core_writer_close: the threads end once idle */
	bool runner_idle;         /* the runner sleeps on run_wake and no one has woken it */
	atomic_uint run_wake;     /* bumped (under mu) when the idle runner has work */
	pthread_cond_t sync_cv;   /* signalled when the idle syncer has work */
	atomic_uint *wakes[WAKES_MAX]; /* noted under mu, delivered once it is released */
	int nwakes;
	pthread_t runner, syncer;
	struct meta *m; /* the writer connection, used by its current user only */
};

/* A waiting caller, and the idle runner, sleep on a futex word of their own, not on a condition
 * variable of mu: whoever wakes them does so after releasing mu (unlock), so they do not wake
 * only to block on mu. A wake-up delivered after a caller has returned is harmless: a futex
 * wake on memory that no one waits on does nothing, and any later waiter there re-checks
 * (futex waiters, glibc's own included, tolerate spurious wake-ups). */
static void futex_wake1(atomic_uint *word)
{
	syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* With mu held: the sleeper on word has something to look at. */
static void notify(struct core_writer *w, atomic_uint *word)
{
	atomic_fetch_add(word, 1);
	if (w->nwakes < WAKES_MAX)
		w->wakes[w->nwakes++] = word;
	else
		futex_wake1(word);
}

/* Releases mu, then delivers the wake-ups noted under it. */
static void unlock(struct core_writer *w)
{
	atomic_uint *v[WAKES_MAX];
	int n = w->nwakes;
	memcpy(v, w->wakes, (size_t)n * sizeof(*v));
	w->nwakes = 0;
	pthread_mutex_unlock(&w->mu);
	for (int i = 0; i < n; i++)
		futex_wake1(v[i]);
}

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

/* Releases mu and sleeps until *word moves from seen (or spuriously); returns with mu held. */
static void sleep_on(struct core_writer *w, atomic_uint *word, unsigned seen)
{
	unlock(w);
	syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
	pthread_mutex_lock(&w->mu);
}

/* With mu held: the queue has work the runner can take. One wake-up is enough: the runner
 * counts as busy from then on, so the callers queued before it gets a CPU add none. */
static void wake_runner(struct core_writer *w)
{
	if (w->runner_idle && w->queue.head && !w->conn_busy) {
		w->runner_idle = false;
		notify(w, &w->run_wake);
	}
}

static void finish(struct core_writer *w, struct txn_req *r)
{
	r->state = TXN_DONE;
	notify(w, &r->wake);
}

static void fail_all(struct core_writer *w, struct txn_req *batch, const struct berr *why)
{
	for (struct txn_req *r = batch, *next; r; r = next) {
		next = r->next; /* r may return, and its stack go, once it is done */
		r->err = *why;
		r->rc = why->code;
		finish(w, r);
	}
}

/* Ends the open transaction after a failure: everything run in it is lost. Called by the
 * connection's user with mu held. */
static void abandon(struct core_writer *w, const struct berr *why)
{
	w->m->ops->txn_rollback(w->m);
	w->in_txn = false;
	if (w->pending.head)
		fail_all(w, list_take(&w->pending, 0, TXN_DONE), why);
}

/* Commits the pending list and moves it to unsynced. Called by the connection's user, with mu
 * held and returning with it held (released during the COMMIT). */
static void commit_pending(struct core_writer *w)
{
	struct txn_req *batch = list_take(&w->pending, 0, TXN_COMMITTED);
	struct berr e;
	unlock(w);
	enum berr_code rc = w->m->ops->txn_commit(w->m, &e);
	pthread_mutex_lock(&w->mu);
	if (rc != BERR_OK) {
		abandon(w, &e);
		fail_all(w, batch, &e);
		return;
	}
	w->in_txn = false;
	for (struct txn_req *r = batch, *next; r; r = next) {
		next = r->next;
		list_push(&w->unsynced, r);
	}
}

/* Work for the syncer: committed requests, or pending ones it can commit first. */
static bool sync_work(const struct core_writer *w)
{
	return w->unsynced.head || (w->pending.head && !w->conn_busy);
}

enum run_result { RUN_DONE, RUN_DIRTY, RUN_LOST };

/* Runs r's closure in the open transaction. In a savepoint (safe) a failure is undone there;
 * without one (the usual way: a savepoint copies every page the closure touches) a failure
 * that changed no rows leaves nothing to undo, and RUN_DIRTY says this one did. RUN_LOST: the
 * transaction is gone (*e says why). */
static enum run_result run_one(struct meta *m, struct txn_req *r, bool safe, struct berr *e)
{
	if (safe) {
		if (m->ops->savepoint(m, META_SP_BEGIN, e) != BERR_OK)
			return RUN_LOST;
		err_clear(&r->err);
		r->rc = r->fn(m, r->ctx, &r->err);
		enum meta_savepoint end = r->rc == BERR_OK ? META_SP_RELEASE : META_SP_UNDO;
		return m->ops->savepoint(m, end, e) == BERR_OK ? RUN_DONE : RUN_LOST;
	}
	uint64_t before = 0, after = 0;
	bool open = m->ops->txn_changes(m, &before);
	if (open) {
		err_clear(&r->err);
		r->rc = r->fn(m, r->ctx, &r->err);
		open = m->ops->txn_changes(m, &after);
	}
	if (!open) {
		/* an I/O error ended the transaction, in this closure or before it */
		if (r->rc != BERR_OK)
			*e = r->err;
		else
			err_set(e, BERR_IO, "the transaction was rolled back");
		return RUN_LOST;
	}
	return r->rc != BERR_OK && after != before ? RUN_DIRTY : RUN_DONE;
}

/* A closure of the batch failed after changing rows: its changes are in the transaction with
 * everything else run in it. Start the transaction over and run again, each in a savepoint,
 * the closures that had succeeded in it: the pending ones (the connection's user alone touches
 * that list) and those of the batch before the failed one. One that fails this time reports
 * that (a pending one once its transaction is synced, with nothing of it in it). False (and
 * *e) if the transaction is lost. */
static bool redo(struct core_writer *w, struct txn_req *batch, const struct txn_req *failed,
                 struct berr *e)
{
	struct meta *m = w->m;
	m->ops->txn_rollback(m);
	if (m->ops->txn_begin(m, e) != BERR_OK)
		return false;
	struct txn_req *lists[2] = {w->pending.head, batch};
	for (int i = 0; i < 2; i++)
		for (struct txn_req *r = lists[i]; r && r != failed; r = r->next)
			if (r->rc == BERR_OK && run_one(m, r, true, e) != RUN_DONE)
				return false;
	return true;
}

/* Step 1: runs a batch from the queue. Called by the runner with mu held and returning with
 * it held. */
static void run_batch(struct core_writer *w)
{
	w->conn_busy = true;
	struct txn_req *batch = list_take(&w->queue, TXN_BATCH_MAX, TXN_RUNNING);
	bool begin = !w->in_txn;
	unlock(w);

	struct meta *m = w->m;
	struct berr e;
	err_clear(&e);
	bool lost = begin && m->ops->txn_begin(m, &e) != BERR_OK;
	for (struct txn_req *r = batch; r && !lost; r = r->next) {
		enum run_result res = run_one(m, r, false, &e);
		lost = res == RUN_LOST || (res == RUN_DIRTY && !redo(w, batch, r, &e));
	}

	pthread_mutex_lock(&w->mu);
	if (lost) {
		abandon(w, &e);
		fail_all(w, batch, &e);
	} else {
		w->in_txn = true;
		for (struct txn_req *next; batch; batch = next) {
			next = batch->next;
			if (batch->rc != BERR_OK) {
				finish(w, batch); /* failed: none of it is in the transaction */
			} else {
				batch->state = TXN_PENDING;
				list_push(&w->pending, batch);
			}
		}
		if (!w->pending.head) {
			/* every closure failed: end the transaction rather than hold the write lock */
			m->ops->txn_rollback(m);
			w->in_txn = false;
		} else if (!w->syncing || m->ops->writers_waiting(m)) {
			/* the syncer is idle (it syncs at once), or another writer waits for the lock */
			commit_pending(w);
		}
	}
	w->conn_busy = false;
	if (!w->syncing && sync_work(w))
		pthread_cond_signal(&w->sync_cv);
}

/* Step 1, on a thread of its own: runs batches while the queue has some and the connection is
 * free; sleeps otherwise (whoever makes work for it wakes it: wake_runner). */
static void *runner_main(void *arg)
{
	struct core_writer *w = arg;
	pthread_mutex_lock(&w->mu);
	for (;;) {
		if (w->queue.head && !w->conn_busy) {
			run_batch(w);
			continue;
		}
		if (w->stop)
			break;
		w->runner_idle = true;
		sleep_on(w, &w->run_wake, atomic_load(&w->run_wake));
		w->runner_idle = false;
	}
	unlock(w);
	return NULL;
}

/* Steps 2 and 3, on a thread of their own: commit what is pending once the connection is
 * free, then sync everything committed, for as long as there is work. */
static void *syncer_main(void *arg)
{
	struct core_writer *w = arg;
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!w->stop && !sync_work(w)) {
			if (w->nwakes) { /* deliver them before sleeping */
				unlock(w);
				pthread_mutex_lock(&w->mu);
				continue;
			}
			pthread_cond_wait(&w->sync_cv, &w->mu);
		}
		if (!sync_work(w))
			break; /* stopping, and nothing left */
		if (w->pending.head && !w->conn_busy) {
			w->conn_busy = true;
			commit_pending(w);
			w->conn_busy = false;
			wake_runner(w); /* the queue waited for the connection */
			if (!w->unsynced.head)
				continue; /* the commit failed */
		}
		w->syncing = true;
		struct txn_req *batch = list_take(&w->unsynced, 0, TXN_SYNCING);
		unlock(w);
		struct berr e;
		enum berr_code rc = w->m->ops->sync(w->m, &e);
		pthread_mutex_lock(&w->mu);
		w->syncing = false;
		if (rc != BERR_OK)
			fail_all(w, batch, &e);
		else
			for (struct txn_req *r = batch, *next; r; r = next) {
				next =
				    r->next; /* r may return, and its stack go, once it is done */
				finish(w, r);
			}
	}
	unlock(w);
	return NULL;
}

/* Stops the runner (the syncer is stopped by thread_stop, on its condition variable). */
static void runner_stop(struct core_writer *w)
{
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	if (w->runner_idle)
		notify(w, &w->run_wake);
	unlock(w);
	pthread_join(w->runner, NULL);
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
	pthread_cond_init(&w->sync_cv, NULL);
	list_init(&w->queue);
	list_init(&w->pending);
	list_init(&w->unsynced);
	int e = pthread_create(&w->syncer, NULL, syncer_main, w);
	if (e == 0 && (e = pthread_create(&w->runner, NULL, runner_main, w)) != 0)
		thread_stop(w->syncer, &w->mu, &w->sync_cv, &w->stop);
	if (e != 0) {
		err_sys(err, BERR_IO, e, "starting the database writer threads");
		pthread_cond_destroy(&w->sync_cv);
		pthread_mutex_destroy(&w->mu);
		meta_close(w->m);
		free(w);
		return BERR_IO;
	}
	*out = w;
	return BERR_OK;
}

void core_writer_close(struct core_writer *w)
{
	if (!w)
		return;
	runner_stop(w);
	thread_stop(w->syncer, &w->mu, &w->sync_cv, &w->stop);
	meta_close(w->m);
	pthread_cond_destroy(&w->sync_cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

enum berr_code core_txn(struct core *c, core_txn_fn fn, void *ctx, struct berr *err)
{
	struct core_writer *w = c->writer;
	struct txn_req me = {.fn = fn, .ctx = ctx, .state = TXN_QUEUED};
	pthread_mutex_lock(&w->mu);
	list_push(&w->queue, &me);
	wake_runner(w);
	while (me.state != TXN_DONE)
		sleep_on(w, &me.wake, atomic_load(&me.wake)); /* notify() bumps it under mu */
	unlock(w);
	if (me.rc != BERR_OK && err)
		*err = me.err;
	return me.rc;
}
