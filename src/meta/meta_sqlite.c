/* meta_sqlite.c - the SQLite metadata driver (embedded default).
 *
 * Design: one sqlite3 connection per struct meta, WAL journal, synchronous=FULL so a committed
 * transaction is durable when COMMIT returns (berth acknowledges pushes only after that).
 * Write transactions start with BEGIN IMMEDIATE: the write lock is taken up front, so two
 * writers never deadlock on a read->write upgrade. Writers of this process queue first at the
 * database's write gate (in arrival order); busy_timeout makes other processes' wait.
 * Prepared statements are cached per connection (index = enum stmt_id) and reset after use.
 * Schema migrations are embedded (scripts/embed.sh) and tracked in PRAGMA user_version; they
 * run under BEGIN IMMEDIATE so concurrent processes (serve + gc CLI) apply them once. */
#include "../base/feat.h"

#include "meta.h"
#include "../base/mem.h"
#include "../base/util.h"
#include "sqlite_walbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct schema_step {
	int version;
	const char *sql;
};
extern const struct schema_step schema_sqlite[];

#define BUSY_TIMEOUT_MS 30000

enum stmt_id {
	S_BEGIN,
	S_COMMIT,
	S_ROLLBACK,
	S_SAVEPOINT,
	S_RELEASE,
	S_ROLLBACK_TO,
	S_REPO_INSERT,
	S_REPO_GET,
	S_REPO_UPDATE,
	S_REPO_DELETE,
	S_REPO_LIST,
	S_REPO_IMAGE_COUNT,
	S_IMAGE_GET,
	S_IMAGE_GET_NOMAN,
	S_IMAGE_BY_TAG,
	S_IMAGE_BY_TAG_NOMAN,
	S_IMAGE_INSERT,
	S_REF_INSERT,
	S_IMAGE_DELETE,
	S_IMAGE_LIST_ANY,
	S_IMAGE_LIST_TAGGED,
	S_IMAGE_LIST_UNTAGGED,
	S_IMAGE_TAGS,
	S_TAGS_RANGE,
	S_IMAGE_TOUCH,
	S_IMAGE_IS_CHILD,
	S_IMAGE_CHILDREN,
	S_TAG_SET,
	S_TAG_DELETE,
	S_TAG_COUNT,
	S_BLOB_GET,
	S_BLOB_INSERT,
	S_REPO_BLOB_LINK,
	S_REPO_BLOB_LINKED,
	S_REPO_BLOB_REF,
	S_REPO_BLOB_SIZE,
	S_UPLOAD_INSERT,
	S_UPLOAD_GET,
	S_UPLOAD_UPDATE,
	S_UPLOAD_DELETE,
	S_TAG_LIST,
	S_TAG_LIST_AFTER,
	S_REPO_NAMES,
	S_REPO_NAMES_AFTER,
	S_IMAGE_REFERRERS,
	S_REPO_BLOB_UNLINK,
	S_REGISTRY_BLOB_LINKED,
	S_REGISTRY_BLOB_REF,
	S_UPLOAD_STALE,
	S_REPO_LIST_LC,
	S_REPO_CHILDREN,
	S_PREVIEW_PUT,
	S_PREVIEW_GET,
	S_HISTORY_INSERT,
	S_HISTORY_ALL,
	S_HISTORY_REG,
	S_HISTORY_REPO,
	S_GC_CANDIDATES,
	S_GC_CANDIDATES_AFTER,
	S_GC_IS_GARBAGE,
	S_BLOB_NAMES,
	S_BLOB_DELETE_LINKS,
	S_BLOB_DELETE,
	S_TRASH_INSERT,
	S_TRASH_LIST,
	S_TRASH_DELETE,
	S_FILE_OWNED,
	S_BLOB_LIST,
	S_BLOB_LIST_AFTER,
	S_REFS_MISSING,
	S_KV_GET,
	S_KV_PUT,
	S_KV_DELETE,
	S__COUNT
};

#define REPO_COLS                                                                                  \
	"id, account, region, name, created_at, mutability, mutability_filters, scan_on_push, "    \
	"encryption_type, kms_key, resource_tags, policy, lifecycle_policy, "                      \
	"lifecycle_evaluated_at, tags_version"
#define IMAGE_COLS_NOMAN                                                                           \
	"i.id, i.repo_id, i.digest, i.media_type, i.artifact_type, i.subject, NULL, i.size, "      \
	"i.pushed_at, i.pulled_at, i.status"
#define IMAGE_COLS                                                                                 \
	"i.id, i.repo_id, i.digest, i.media_type, i.artifact_type, i.subject, i.manifest, "        \
	"i.size, i.pushed_at, i.pulled_at, i.status"

static const char *const stmt_sql[S__COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_SAVEPOINT] = "SAVEPOINT w",
    [S_RELEASE] = "RELEASE w",
    [S_ROLLBACK_TO] = "ROLLBACK TO w",
    [S_REPO_INSERT] = "INSERT INTO repos (account, region, name, created_at, mutability, "
                      "mutability_filters, scan_on_push, encryption_type, kms_key, "
                      "resource_tags, policy, lifecycle_policy, lifecycle_evaluated_at) "
                      "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
    [S_REPO_GET] = "SELECT " REPO_COLS " FROM repos WHERE account=? AND region=? AND name=?",
    [S_REPO_UPDATE] = "UPDATE repos SET mutability=?, mutability_filters=?, scan_on_push=?, "
                      "encryption_type=?, kms_key=?, resource_tags=?, policy=?, "
                      "lifecycle_policy=?, lifecycle_evaluated_at=? WHERE id=?",
    [S_REPO_DELETE] = "DELETE FROM repos WHERE id=?",
    [S_REPO_LIST] = "SELECT " REPO_COLS " FROM repos WHERE account=? AND region=? AND id>? "
                    "ORDER BY id LIMIT ?",
    [S_REPO_IMAGE_COUNT] = "SELECT count(*) FROM images WHERE repo_id=?",
    [S_IMAGE_GET] = "SELECT " IMAGE_COLS " FROM images i WHERE i.repo_id=? AND i.digest=?",
    [S_IMAGE_GET_NOMAN] =
        "SELECT " IMAGE_COLS_NOMAN " FROM images i WHERE i.repo_id=? AND i.digest=?",
    [S_IMAGE_BY_TAG] = "SELECT " IMAGE_COLS " FROM tags t JOIN images i ON i.id=t.image_id "
                       "WHERE t.repo_id=? AND t.name=?",
    [S_IMAGE_BY_TAG_NOMAN] =
        "SELECT " IMAGE_COLS_NOMAN " FROM tags t JOIN images i ON i.id=t.image_id "
        "WHERE t.repo_id=? AND t.name=?",
    [S_IMAGE_INSERT] = "INSERT INTO images (repo_id, digest, media_type, artifact_type, "
                       "subject, manifest, size, pushed_at, pulled_at, status) "
                       "VALUES (?,?,?,?,?,?,?,?,NULL,'ACTIVE')",
    [S_REF_INSERT] = "INSERT INTO image_refs (image_id, repo_id, kind, digest, media_type, "
                     "size) VALUES (?,?,?,?,?,?)",
    [S_IMAGE_DELETE] = "DELETE FROM images WHERE id=?",
    [S_IMAGE_LIST_ANY] = "SELECT " IMAGE_COLS_NOMAN " FROM images i WHERE i.repo_id=? AND "
                         "i.id>? ORDER BY i.id LIMIT ?",
    [S_IMAGE_LIST_TAGGED] =
        "SELECT " IMAGE_COLS_NOMAN " FROM images i WHERE i.repo_id=? AND i.id>? AND EXISTS (SELECT "
        "1 FROM tags t WHERE t.image_id=i.id) ORDER BY i.id LIMIT ?",
    [S_IMAGE_LIST_UNTAGGED] =
        "SELECT " IMAGE_COLS_NOMAN " FROM images i WHERE i.repo_id=? AND i.id>? AND NOT EXISTS "
        "(SELECT 1 FROM tags t WHERE t.image_id=i.id) ORDER BY i.id "
        "LIMIT ?",
    /* "+repo_id" keeps the planner off the (repo_id, name) key, which would read every tag of
     * the repository per page; the page's id range through tags_by_image is what is wanted. */
    [S_TAGS_RANGE] = "SELECT image_id, name FROM tags WHERE image_id>? AND image_id<=? AND "
                     "+repo_id=? ORDER BY image_id, seq",
    [S_IMAGE_TAGS] = "SELECT name FROM tags WHERE image_id=? ORDER BY seq",
    [S_IMAGE_TOUCH] = "UPDATE images SET pulled_at=?1 WHERE id=?2 AND pushed_at<=?1 AND "
                      "(pulled_at IS NULL OR pulled_at<?1)",
    [S_IMAGE_IS_CHILD] = "SELECT 1 FROM image_refs WHERE repo_id=? AND digest=? AND kind=1 "
                         "LIMIT 1",
    [S_IMAGE_CHILDREN] = "SELECT digest FROM image_refs WHERE image_id=? AND kind=1",
    [S_TAG_SET] = "INSERT INTO tags (repo_id, name, image_id, seq) VALUES (?,?,?, "
                  "(SELECT coalesce(max(seq),0)+1 FROM tags)) "
                  "ON CONFLICT (repo_id, name) DO UPDATE SET image_id=excluded.image_id, "
                  "seq=excluded.seq",
    [S_TAG_DELETE] = "DELETE FROM tags WHERE repo_id=? AND name=?",
    [S_TAG_COUNT] = "SELECT count(*) FROM tags WHERE image_id=?",
    [S_BLOB_GET] = "SELECT digest, size, gen FROM blobs WHERE digest=?",
    [S_BLOB_INSERT] = "INSERT INTO blobs (digest, size, gen, created_at) VALUES (?,?,?,?)",
    [S_REPO_BLOB_LINK] = "INSERT INTO repo_blobs (repo_id, digest, linked_at) VALUES (?,?,?) "
                         "ON CONFLICT (repo_id, digest) DO UPDATE SET "
                         "linked_at=excluded.linked_at",
    [S_REPO_BLOB_LINKED] = "SELECT 1 FROM repo_blobs WHERE repo_id=? AND digest=?",
    [S_REPO_BLOB_REF] = "SELECT media_type FROM image_refs WHERE repo_id=? AND digest=? AND "
                        "kind=0 LIMIT 1",
    /* both lookups are in indexes alone ((digest, kind, repo_id) and the primary key) */
    [S_REPO_BLOB_SIZE] =
        "SELECT digest, size, gen FROM blobs WHERE digest=?2 AND (EXISTS (SELECT 1 FROM "
        "image_refs WHERE digest=?2 AND kind=0 AND repo_id=?1) OR EXISTS "
        "(SELECT 1 FROM repo_blobs WHERE repo_id=?1 AND digest=?2))",
    [S_UPLOAD_INSERT] = "INSERT INTO uploads (id, repo_id, created_at, updated_at, size, "
                        "parts, small_part, last_part_size, hash_state, unsynced_boot) "
                        "VALUES (?,?,?,?,?,?,?,?,?,?)",
    [S_UPLOAD_GET] = "SELECT id, repo_id, created_at, updated_at, size, parts, small_part, "
                     "last_part_size, hash_state, unsynced_boot FROM uploads WHERE id=?",
    [S_UPLOAD_UPDATE] = "UPDATE uploads SET updated_at=?, size=?, parts=?, small_part=?, "
                        "last_part_size=?, hash_state=?, unsynced_boot=? WHERE id=?",
    [S_UPLOAD_DELETE] = "DELETE FROM uploads WHERE id=?",
    [S_TAG_LIST] = "SELECT name FROM tags WHERE repo_id=? ORDER BY name LIMIT ?",
    [S_TAG_LIST_AFTER] = "SELECT name FROM tags WHERE repo_id=? AND name>? ORDER BY name LIMIT ?",
    [S_REPO_NAMES] = "SELECT name FROM repos WHERE account=? AND region=? ORDER BY name LIMIT ?",
    [S_REPO_NAMES_AFTER] = "SELECT name FROM repos WHERE account=? AND region=? AND name>? "
                           "ORDER BY name LIMIT ?",
    [S_IMAGE_REFERRERS] = "SELECT " IMAGE_COLS " FROM images i WHERE i.repo_id=? AND "
                          "i.subject=? ORDER BY i.id",
    [S_REPO_BLOB_UNLINK] = "DELETE FROM repo_blobs WHERE repo_id=? AND digest=?",
    [S_REGISTRY_BLOB_LINKED] = "SELECT 1 FROM repo_blobs b JOIN repos r ON r.id=b.repo_id "
                               "WHERE b.digest=? AND r.account=? AND r.region=? LIMIT 1",
    [S_REGISTRY_BLOB_REF] = "SELECT 1 FROM image_refs f JOIN repos r ON r.id=f.repo_id "
                            "WHERE f.digest=? AND f.kind=0 AND r.account=? AND r.region=? LIMIT 1",
    [S_UPLOAD_STALE] = "SELECT id FROM uploads WHERE updated_at<? ORDER BY updated_at LIMIT ?",
    [S_REPO_LIST_LC] = "SELECT " REPO_COLS " FROM repos WHERE id>? AND lifecycle_policy IS NOT "
                       "NULL ORDER BY id LIMIT ?",
    [S_REPO_CHILDREN] = "SELECT DISTINCT f.digest FROM images i JOIN image_refs f ON "
                        "f.image_id=i.id WHERE i.repo_id=? AND f.kind=1",
    [S_PREVIEW_PUT] = "INSERT INTO lifecycle_previews (repo_id, policy, status, results, "
                      "created_at) VALUES (?,?,?,?,?) ON CONFLICT (repo_id) DO UPDATE SET "
                      "policy=excluded.policy, status=excluded.status, results=excluded.results, "
                      "created_at=excluded.created_at",
    [S_PREVIEW_GET] = "SELECT policy, status, results FROM lifecycle_previews WHERE repo_id=?",
    [S_HISTORY_INSERT] = "INSERT INTO lifecycle_history (at, account, region, repo_name, digest, "
                         "tags, rule_priority, action, pushed_at) VALUES (?,?,?,?,?,?,?,?,?)",
#define HISTORY_COLS                                                                               \
	"id, at, account, region, repo_name, digest, tags, rule_priority, action, pushed_at"
    [S_HISTORY_ALL] = "SELECT " HISTORY_COLS " FROM lifecycle_history ORDER BY id DESC LIMIT ?",
    [S_HISTORY_REG] = "SELECT " HISTORY_COLS " FROM lifecycle_history WHERE account=? AND "
                      "region=? ORDER BY id DESC LIMIT ?",
    [S_HISTORY_REPO] = "SELECT " HISTORY_COLS " FROM lifecycle_history WHERE account=? AND "
                       "region=? AND repo_name=? ORDER BY id DESC LIMIT ?",
#define GC_GARBAGE                                                                                 \
	"NOT EXISTS (SELECT 1 FROM image_refs f WHERE f.digest=b.digest AND f.kind=0) AND NOT "    \
	"EXISTS (SELECT 1 FROM repo_blobs l WHERE l.digest=b.digest AND l.linked_at>=?)"
    [S_GC_CANDIDATES] =
        "SELECT b.digest, b.size, b.gen FROM blobs b WHERE b.created_at<? AND " GC_GARBAGE
        " ORDER BY b.digest LIMIT ?",
    [S_GC_CANDIDATES_AFTER] =
        "SELECT b.digest, b.size, b.gen FROM blobs b WHERE b.created_at<? AND " GC_GARBAGE
        " AND b.digest>? ORDER BY b.digest LIMIT ?",
    [S_GC_IS_GARBAGE] = "SELECT 1 FROM blobs b WHERE b.digest=? AND b.gen=? AND b.created_at<? "
                        "AND " GC_GARBAGE,
    [S_BLOB_NAMES] = "SELECT 1 FROM blobs WHERE digest=? AND gen=?",
    [S_BLOB_DELETE_LINKS] = "DELETE FROM repo_blobs WHERE digest=?",
    [S_BLOB_DELETE] = "DELETE FROM blobs WHERE digest=?",
    [S_TRASH_INSERT] = "INSERT INTO blob_trash (digest, gen, at) VALUES (?,?,?) "
                       "ON CONFLICT (digest, gen) DO NOTHING",
    [S_TRASH_LIST] = "SELECT digest, 0, gen FROM blob_trash ORDER BY at LIMIT ?",
    [S_TRASH_DELETE] = "DELETE FROM blob_trash WHERE digest=? AND gen=?",
    [S_FILE_OWNED] = "SELECT 1 WHERE EXISTS (SELECT 1 FROM blobs WHERE digest=?1 AND gen=?2) "
                     "OR EXISTS (SELECT 1 FROM uploads WHERE id=?2) OR EXISTS (SELECT 1 FROM "
                     "blob_trash WHERE digest=?1 AND gen=?2)",
    [S_BLOB_LIST] = "SELECT digest, size, gen FROM blobs ORDER BY digest LIMIT ?",
    [S_BLOB_LIST_AFTER] = "SELECT digest, size, gen FROM blobs WHERE digest>? ORDER BY digest "
                          "LIMIT ?",
    [S_REFS_MISSING] = "SELECT r.account, r.region, r.name, i.digest, f.digest FROM image_refs f "
                       "JOIN images i ON i.id=f.image_id JOIN repos r ON r.id=f.repo_id WHERE "
                       "f.kind=0 AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.digest=f.digest)",
    [S_KV_GET] = "SELECT value FROM registry_kv WHERE account=? AND region=? AND name=?",
    [S_KV_PUT] = "INSERT INTO registry_kv (account, region, name, value) VALUES (?,?,?,?) "
                 "ON CONFLICT (account, region, name) DO UPDATE SET value=excluded.value",
    [S_KV_DELETE] = "DELETE FROM registry_kv WHERE account=? AND region=? AND name=?",
};

/* The in-process write gate of one database file, shared by every connection this process
 * opens on it (keyed by device and inode; refcounted). Write transactions take it in arrival
 * order (a ticket) before BEGIN IMMEDIATE and leave it when the transaction ends, so writers
 * of this process queue on a condition variable instead of polling SQLite's lock: the busy
 * handler sleeps and retries, and the group commit, which holds the lock most of the time
 * under load, would starve it. Other processes (the gc command) still meet busy_timeout. */
struct write_gate {
	dev_t dev;
	ino_t ino;
	int refs;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t next, serving; /* tickets handed out, and the one that may write */
	struct write_gate *link;
};

static pthread_mutex_t gates_mu = PTHREAD_MUTEX_INITIALIZER;
static struct write_gate *gates;

struct ckpt;

struct meta_sqlite {
	struct meta super;
	sqlite3 *db;
	struct ckpt *ckpt; /* the group-commit writer's background checkpointer, else NULL */
	struct write_gate *gate;
	bool gate_held; /* this connection's write transaction holds its gate */
	sqlite3_stmt *stmts[S__COUNT];
	/* defer_durability: the WAL file, fdatasync'd by sq_sync (which may run on another thread
	 * than the connection's user, hence its own lock). -1 until first needed. Its path is
	 * taken at open: sq_sync must not call into the connection, which (opened NOMUTEX) its
	 * user may be running a statement on meanwhile. */
	pthread_mutex_t wal_mu;
	int wal_fd;
	char *wal_path;
	char *path; /* the database file (its file system is where the database grows) */
};

static struct meta_sqlite *self(struct meta *m)
{
	return container_of(m, struct meta_sqlite, super);
}

/* The gate of the file db is open on (a new one if none); a private one if it has no file. */
static struct write_gate *gate_get(sqlite3 *db)
{
	const char *path = sqlite3_db_filename(db, "main");
	struct stat st;
	bool shared = path && *path && stat(path, &st) == 0;
	pthread_mutex_lock(&gates_mu);
	struct write_gate *g = gates;
	while (shared && g && !(g->dev == st.st_dev && g->ino == st.st_ino))
		g = g->link;
	if (!shared || !g) {
		g = xcalloc(1, sizeof(*g));
		pthread_mutex_init(&g->mu, NULL);
		pthread_cond_init(&g->cv, NULL);
		if (shared) {
			g->dev = st.st_dev;
			g->ino = st.st_ino;
			g->link = gates;
			gates = g;
		}
	}
	g->refs++;
	pthread_mutex_unlock(&gates_mu);
	return g;
}

static void gate_put(struct write_gate *g)
{
	pthread_mutex_lock(&gates_mu);
	bool last = --g->refs == 0;
	if (last)
		for (struct write_gate **pp = &gates; *pp; pp = &(*pp)->link)
			if (*pp == g) {
				*pp = g->link;
				break;
			}
	pthread_mutex_unlock(&gates_mu);
	if (last) {
		pthread_cond_destroy(&g->cv);
		pthread_mutex_destroy(&g->mu);
		free(g);
	}
}

static void gate_enter(struct write_gate *g)
{
	pthread_mutex_lock(&g->mu);
	uint64_t ticket = g->next++;
	while (g->serving != ticket)
		pthread_cond_wait(&g->cv, &g->mu);
	pthread_mutex_unlock(&g->mu);
}

static void gate_leave(struct write_gate *g)
{
	pthread_mutex_lock(&g->mu);
	g->serving++;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

static enum berr_code db_err(struct meta_sqlite *s, int rc, struct berr *err)
{
	int prim = rc & 0xff;
	if (prim == SQLITE_BUSY || prim == SQLITE_LOCKED)
		return err_set(err, BERR_BUSY, "database is busy");
	if (prim == SQLITE_CONSTRAINT)
		return err_set(err, BERR_CONFLICT, "constraint violation: %s",
		               sqlite3_errmsg(s->db));
	if (prim == SQLITE_FULL)
		return err_set(err, BERR_NO_SPACE, "database error: %s", sqlite3_errmsg(s->db));
	return err_set(err, BERR_IO, "database error: %s", sqlite3_errmsg(s->db));
}

/* Returns the cached statement, reset and with bindings cleared. NULL on prepare failure. */
static sqlite3_stmt *st(struct meta_sqlite *s, enum stmt_id id, struct berr *err)
{
	sqlite3_stmt *q = s->stmts[id];
	if (!q) {
		int rc = sqlite3_prepare_v3(s->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &q,
		                            NULL);
		if (rc != SQLITE_OK) {
			db_err(s, rc, err);
			return NULL;
		}
		s->stmts[id] = q;
	}
	return q;
}

static void done(sqlite3_stmt *q)
{
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
}

static void bind_text(sqlite3_stmt *q, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(q, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(q, i);
}

static char *col_text(sqlite3_stmt *q, int i)
{
	const unsigned char *t = sqlite3_column_text(q, i);
	if (!t)
		return NULL;
	return xstrndup((const char *)t, (size_t)sqlite3_column_bytes(q, i));
}

/* Runs a statement that returns no rows. A write outside a transaction is one of its own, and
 * takes the write gate like txn_begin. */
static enum berr_code exec_done(struct meta_sqlite *s, sqlite3_stmt *q, struct berr *err)
{
	bool gate = !s->gate_held && !sqlite3_stmt_readonly(q) && sqlite3_get_autocommit(s->db);
	if (gate)
		gate_enter(s->gate);
	int rc = sqlite3_step(q);
	if (gate)
		gate_leave(s->gate);
	enum berr_code ec = BERR_OK;
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		ec = db_err(s, rc, err);
	done(q);
	return ec;
}

static enum berr_code exec_simple(struct meta *m, enum stmt_id id, struct berr *err)
{
	struct meta_sqlite *s = self(m);
	sqlite3_stmt *q = st(s, id, err);
	if (!q)
		return err->code;
	return exec_done(s, q, err);
}

/* Leaves the gate once the connection's transaction has ended (committed, rolled back, or
 * rolled back by SQLite itself after an error). */
static void gate_leave_if_done(struct meta_sqlite *s)
{
	if (!s->gate_held || !sqlite3_get_autocommit(s->db))
		return;
	s->gate_held = false;
	gate_leave(s->gate);
}

static enum berr_code sq_txn_begin(struct meta *m, struct berr *err)
{
	struct meta_sqlite *s = self(m);
	if (!s->gate_held) {
		gate_enter(s->gate);
		s->gate_held = true;
	}
	enum berr_code rc = exec_simple(m, S_BEGIN, err);
	gate_leave_if_done(s);
	return rc;
}

static enum berr_code sq_txn_commit(struct meta *m, struct berr *err)
{
	enum berr_code rc = exec_simple(m, S_COMMIT, err);
	gate_leave_if_done(self(m));
	return rc;
}

static void sq_txn_rollback(struct meta *m)
{
	struct meta_sqlite *s = self(m);
	if (!sqlite3_get_autocommit(s->db)) {
		struct berr e;
		exec_simple(m, S_ROLLBACK, &e);
	}
	gate_leave_if_done(s);
}

/* Another write transaction of this process waits for the one this connection holds. */
static bool sq_writers_waiting(struct meta *m)
{
	struct write_gate *g = self(m)->gate;
	pthread_mutex_lock(&g->mu);
	bool waiting = g->next - g->serving > 1;
	pthread_mutex_unlock(&g->mu);
	return waiting;
}

static enum berr_code exec_sql(sqlite3 *db, const char *sql, struct berr *err);

/* Background checkpoints for the group-commit writer.
 *
 * SQLite checkpoints inside the COMMIT that takes the log past wal_autocheckpoint frames: it
 * copies every page of the log to the database file and syncs both, on the committing
 * connection. On the group-commit writer that stalls every put for the copy (~15 ms every
 * half second under a steady PutImage load: 5-9 % of the time). Here a thread with its own connection
 * copies the log in the background each CKPT_BG_FRAMES frames, concurrently with commits;
 * the writer keeps its automatic checkpoint, which then finds little left to copy and, being
 * the only one that runs while nothing else commits, is what lets the next transaction start
 * the log over (a background pass can rarely catch up with a log that keeps growing). */
#define CKPT_BG_FRAMES 2000
#define CKPT_AUTO_FRAMES 8000
#define STR_(x) #x
#define STR(x) STR_(x)

struct ckpt {
	sqlite3 *db; /* the checkpointer's own connection */
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool want, stop;
	int signalled_at; /* log size (frames) when a pass was last asked for */
};

static void *ckpt_main(void *arg)
{
	struct ckpt *k = arg;
	pthread_mutex_lock(&k->mu);
	for (;;) {
		while (!k->want && !k->stop)
			pthread_cond_wait(&k->cv, &k->mu);
		if (k->stop)
			break;
		k->want = false;
		pthread_mutex_unlock(&k->mu);
		/* PASSIVE: copies what no reader still needs, never waits; an error (busy: the
		 * writer's own checkpoint runs) just leaves the work to the next pass. */
		sqlite3_wal_checkpoint_v2(k->db, "main", SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
		pthread_mutex_lock(&k->mu);
	}
	pthread_mutex_unlock(&k->mu);
	return NULL;
}

/* The writer's WAL hook (it replaces wal_autocheckpoint, which is one too): runs after each
 * commit with the log's size in frames. */
static int ckpt_hook(void *arg, sqlite3 *db, const char *schema, int frames)
{
	struct ckpt *k = arg;
	if (frames >= CKPT_AUTO_FRAMES) {
		sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
		return SQLITE_OK;
	}
	pthread_mutex_lock(&k->mu);
	if (frames < k->signalled_at)
		k->signalled_at = 0; /* the log started over */
	if (frames - k->signalled_at >= CKPT_BG_FRAMES) {
		k->signalled_at = frames;
		k->want = true;
		pthread_cond_signal(&k->cv);
	}
	pthread_mutex_unlock(&k->mu);
	return SQLITE_OK;
}

static enum berr_code ckpt_start(struct meta_sqlite *s, struct berr *err)
{
	struct ckpt *k = xcalloc(1, sizeof(*k));
	const char *path = sqlite3_db_filename(s->db, "main");
	int rc = sqlite3_open_v2(path ? path : "", &k->db,
	                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		err_set(err, BERR_IO, "open database %s: %s", path ? path : "",
		        k->db ? sqlite3_errmsg(k->db) : sqlite3_errstr(rc));
		sqlite3_close(k->db);
		free(k);
		return BERR_IO;
	}
	sqlite3_busy_timeout(k->db, BUSY_TIMEOUT_MS);
	/* a connection reads the log's presence with the database's first page: until then it
	 * would take itself for a rollback-journal one and checkpoint nothing */
	if (exec_sql(k->db, "PRAGMA journal_mode=WAL", err) != BERR_OK) {
		sqlite3_close(k->db);
		free(k);
		return err->code;
	}
	pthread_mutex_init(&k->mu, NULL);
	pthread_cond_init(&k->cv, NULL);
	int e = pthread_create(&k->thread, NULL, ckpt_main, k);
	if (e != 0) {
		pthread_cond_destroy(&k->cv);
		pthread_mutex_destroy(&k->mu);
		sqlite3_close(k->db);
		free(k);
		return err_sys(err, BERR_IO, e, "starting the checkpointer");
	}
	s->ckpt = k;
	sqlite3_wal_hook(s->db, ckpt_hook, k);
	return BERR_OK;
}

static void ckpt_stop(struct ckpt *k)
{
	if (!k)
		return;
	thread_stop(k->thread, &k->mu, &k->cv, &k->stop);
	sqlite3_close(k->db);
	pthread_cond_destroy(&k->cv);
	pthread_mutex_destroy(&k->mu);
	free(k);
}

static void sq_close(struct meta *m)
{
	struct meta_sqlite *s = self(m);
	sq_txn_rollback(m); /* leaves the gate if a transaction was left open */
	ckpt_stop(s->ckpt);
	if (s->wal_fd >= 0)
		close(s->wal_fd);
	pthread_mutex_destroy(&s->wal_mu);
	free(s->wal_path);
	for (int i = 0; i < S__COUNT; i++)
		sqlite3_finalize(s->stmts[i]);
	sqlite3_close(s->db);
	gate_put(s->gate);
	free(s->path);
	free(s);
}

/* Commits stop syncing the WAL (synchronous=NORMAL: still atomic and consistent after a
 * crash, see sqlite.org/wal.html); sq_sync makes them durable, outside the write lock. */
static enum berr_code sq_defer_durability(struct meta *m, struct berr *err)
{
	/* The group commit's savepoints keep a sub-journal of every page a closure re-dirties:
	 * keep it in memory (bounded by the batch) rather than in temp files. */
	return exec_sql(self(m)->db, "PRAGMA synchronous=NORMAL; PRAGMA temp_store=MEMORY", err);
}

/* fdatasync of the WAL file through our own descriptor: on Linux it flushes the file (the
 * inode), whichever descriptor wrote the frames. Reopened if SQLite deleted the file. */
static enum berr_code sq_sync(struct meta *m, struct berr *err)
{
	struct meta_sqlite *s = self(m);
	enum berr_code rc = BERR_OK;
	pthread_mutex_lock(&s->wal_mu);
	struct stat stt;
	if (s->wal_fd >= 0 && (fstat(s->wal_fd, &stt) != 0 || stt.st_nlink == 0)) {
		close(s->wal_fd);
		s->wal_fd = -1;
	}
	if (s->wal_fd < 0) {
		s->wal_fd = open(s->wal_path, O_RDONLY | O_CLOEXEC);
		if (s->wal_fd < 0)
			rc = err_sys(err, BERR_IO, errno, "open %s", s->wal_path);
	}
	if (rc == BERR_OK && fdatasync(s->wal_fd) != 0)
		rc = err_sys(err, BERR_IO, errno, "fdatasync of the database log");
	pthread_mutex_unlock(&s->wal_mu);
	return rc;
}

static enum berr_code sq_savepoint(struct meta *m, enum meta_savepoint op, struct berr *err)
{
	struct meta_sqlite *s = self(m);
	if (sqlite3_get_autocommit(s->db))
		return err_set(err, BERR_IO,
		               "savepoint outside a transaction (it was rolled back)");
	if (op == META_SP_BEGIN)
		return exec_simple(m, S_SAVEPOINT, err);
	if (op == META_SP_UNDO) {
		enum berr_code rc = exec_simple(m, S_ROLLBACK_TO, err);
		if (rc != BERR_OK)
			return rc;
	}
	return exec_simple(m, S_RELEASE, err); /* ROLLBACK TO leaves the savepoint open */
}

/* total_changes counts every row an INSERT, UPDATE or DELETE statement changed once it
 * completed (trigger and foreign key actions included); a failed statement's own changes are
 * rolled back with it, and an I/O error that loses the transaction ends it (autocommit). */
static bool sq_txn_changes(struct meta *m, uint64_t *changes)
{
	struct meta_sqlite *s = self(m);
	*changes = (uint64_t)sqlite3_total_changes64(s->db);
	return !sqlite3_get_autocommit(s->db);
}

/* Steps a bound statement, calling row(q, ctx) per row until it returns non-zero; resets the
 * statement. The one loop every listing shares. */
typedef int (*row_fn)(sqlite3_stmt *q, void *ctx);

static enum berr_code each_row(struct meta_sqlite *s, sqlite3_stmt *q, row_fn row, void *ctx,
                               struct berr *err)
{
	int rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW)
		if (row(q, ctx))
			break;
	enum berr_code ec = BERR_OK;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		ec = db_err(s, rc, err);
	done(q);
	return ec;
}

/* ---- repositories ---- */

static void read_repo(sqlite3_stmt *q, struct meta_repo *r)
{
	r->id = sqlite3_column_int64(q, 0);
	r->account = col_text(q, 1);
	r->region = col_text(q, 2);
	r->name = col_text(q, 3);
	r->created_at = sqlite3_column_int64(q, 4);
	r->mutability = col_text(q, 5);
	r->mutability_filters = col_text(q, 6);
	r->scan_on_push = sqlite3_column_int(q, 7) != 0;
	r->encryption_type = col_text(q, 8);
	r->kms_key = col_text(q, 9);
	r->resource_tags = col_text(q, 10);
	r->policy = col_text(q, 11);
	r->lifecycle_policy = col_text(q, 12);
	r->lifecycle_evaluated_at = sqlite3_column_int64(q, 13);
	r->tags_version = sqlite3_column_int64(q, 14);
}

struct repo_cb {
	meta_repo_fn fn;
	void *ctx;
};

static int repo_row(sqlite3_stmt *q, void *ctx)
{
	struct repo_cb *cb = ctx;
	struct meta_repo r = {0};
	read_repo(q, &r);
	int stop = cb->fn(cb->ctx, &r);
	meta_repo_clear(&r);
	return stop;
}

static enum berr_code sq_repo_insert(struct meta *m, struct meta_repo *r, struct berr *err)
{
	struct meta_sqlite *s = self(m);
	sqlite3_stmt *q = st(s, S_REPO_INSERT, err);
	if (!q)
		return err->code;
	bind_text(q, 1, r->account);
	bind_text(q, 2, r->region);
	bind_text(q, 3, r->name);
	sqlite3_bind_int64(q, 4, r->created_at);
	bind_text(q, 5, r->mutability);
	bind_text(q, 6, r->mutability_filters);
	sqlite3_bind_int(q, 7, r->scan_on_push);
	bind_text(q, 8, r->encryption_type);
	bind_text(q, 9, r->kms_key);
	bind_text(q, 10, r->resource_tags);
	bind_text(q, 11, r->policy);
	bind_text(q, 12, r->lifecycle_policy);
	sqlite3_bind_int64(q, 13, r->lifecycle_evaluated_at);
	enum berr_code rc = exec_done(s, q, err);
	if (rc == BERR_OK)
		r->id = sqlite3_last_insert_rowid(s->db);
	return rc;
}

static enum berr_code sq_repo_get(struct meta *m, const char *account, const char *region,
                                  const char *name, struct meta_repo *out, struct berr *err)
{
	struct meta_sqlite *s = self(m);
	sqlite3_stmt *q = st(s, S_REPO_GET, err);
	if (!q)
		return err->code;
	bind_text(q, 1, account);
	bind_text(q, 2, region);
	bind_text(q, 3, name);
	int rc = sqlite3_step(q);
	enum berr_code ec = BERR_OK;
	if (rc == SQLITE_ROW)
		read_repo(q, out);
	else if (rc == SQLITE_DONE)
		ec = err_set(err, BERR_NOT_FOUND, "repository not found");
	else
		ec = db_err(s, rc, err);
	done(q);
	return ec;
}

static enum berr_code sq_repo_update(struct meta *m, const struct meta_repo *r, struct berr *err)
{
	struct meta_sqlite *s = self(m);
	sqlite3_stmt *q = st(s, S_REPO_UPDATE, err);
	if (!q)
		return err->code;
	bind_text(q, 1, r->mutability);
	bind_text(q, 2, r->mutability_filters);
	sqlite3_bind_int(q, 3, r->scan_on_push);
	bind_text(q, 4, r->encryption_type);
	bind_text(q, 5, r->kms_key);
	bind_text(q, 6, r->resource_tags);
	bind_text(q, 7, r->policy);
	bind_text(q, 8, r->lifecycle_policy);
	sqlite3_bind_int64(q, 9, r->lifecycle_evaluated_at);
	sqlite3_bind_int64(q, 10, r->id);
	return exec_done(s, q, err);
}

static enum berr_code sq_by_id(struct meta *m, enum stmt_id id, int64_t v, struct berr *err)
{
	struct meta_sqlite *s = self(m);
	sqlite3_stmt *q = st(s, id, err);
	if (!q)
		return err->code;
	sqlite3_bind_int64(q, 1, v);
	return exec_done(s, q, err);
}

static enum berr_code sq_repo_delete(struct meta *m, int64_t repo_id, struct berr *err)
{
	return sq_by_id(m, S_REPO_DELETE, repo_id, err);
}

static enum berr_code sq_repo_list(struct meta *m, const char *account, const char *region,
                                   int64_t after_id, int64_t limit, meta_repo_fn fn, void *ctx,
                                   struct berr *err)
{
	struct meta_sqlite *s = self(m);
	sqlite3_stmt *q = st(s, S_REPO_LIST, err);
	if (!q)
		return err->code;
	bind_text(q, 1, account);
	bind_text(q, 2, region);
	sqlite3_bind_int64(q, 3, after_id);
	sqlite3_bind_int64(q, 4, limit);
	struct repo_cb cb = {fn, ctx};
	return each_row(s, q, repo_row, &cb, err);
}

static enum berr_code count_query(struct meta *m, enum stmt_id id, int64_t v, int64_t *n,
                                  struct berr *err)
{
	struct meta_sqlite *s = self(m);
	sqlite3_stmt *q = st(s, id, err);
	if (!q)
		return err->code;
	sqlite3_bind_int64(q, 1, v);
	int rc = sqlite3_step(q);
	enum berr_code ec = BERR_OK;
	if (rc == SQLITE_ROW)
		*n = sqlite3_column_int64(q, 0);
	else
		ec = db_err(s, rc, err);
	done(q);
	return ec;
}

static enum berr_code sq_repo_image_count(struct meta *m, int64_t repo_id, int64_t *n,
                                          struct berr *err)
{
	return count_query(m, S_REPO_IMAGE_COUNT, repo_id, n, err);
}

/* ---- images ---- */

static void read_image(sqlite3_stmt *q, struct meta_image *img)
{
	img->id = sqlite3_column_int64(q, 0);
	img->repo_id = sqlite3_column_int64(q, 1);
	img->digest = col_text(q, 2);
	img->media_type = col_text(q, 3);
	img->artifact_type = col_text(q, 4);
	img->subject = col_text(q, 5);
	if (sqlite3_column_type(q, 6) != SQLITE_NULL) {
		const void *b = sqlite3_column_blob(q, 6);
		size_t n = (size_t)sqlite3_column_bytes(q, 6);
		img->manifest = xstrndup(b ? b : "", n);
		img->manifest_len = n;
	}
	img->size = sqlite3_column_int64(q, 7);
	img->pushed_at = sqlite3_column_int64(q, 8);
	img->pulled_at = sqlite3_column_int64(q, 9);
	img->status = col_text(q, 10);
}

struct image_cb {
	meta_image_fn fn;
	void *ctx;
};

static int image_row(sqlite3_stmt *q, void *ctx)
{
	struct image_cb *cb = ctx;
	struct meta_image img = {0};
	read_image(q, &img);
	int stop = cb->fn(cb->ctx, &img);
	meta_image_clear(&img);
	return stop;
}

static enum berr_code image_lookup(struct meta *m, enum stmt_id id, int64_t repo_id,
                                   const char *key, struct meta_image *out, struct berr *err)
{
	struct meta_sqlite *s = self(m);
	sqlite3_stmt *q = st(s, id, err);
	if (!q)
		return err->code;
	sqlite3_bind_int64(q, 1, repo_id);
	bind_text(q, 2, key);
	int rc = sqlite3_step(q);
	enum berr_code ec = BERR_OK;
	if (rc == SQLITE_ROW)
		read_image(q, out);
	else if (rc == SQLITE_DONE)
		ec = err_set(err, BERR_NOT_FOUND, "image not found");
	else
		ec = db_err(s, rc, err);
	done(q);
	return ec;
}

static enum berr_code sq_image_get(struct meta *m, int64_t repo_id, const char *digest,
                                   bool with_manifest, struct meta_image *out, struct berr *err)
{
	return image_lookup(m, with_manifest ? S_IMAGE_GET : S_IMAGE_GET_NOMAN, repo_id, digest,
	                    out, err);
}

static enum berr_code sq_image_get_by_tag(struct meta *m, int64_t repo_id, const char *tag,
                                          bool with_manifest, struct meta_image *out,
                                          struct berr *err)
{
	return image_lookup(m, with_manifest ? S_IMAGE_BY_TAG : S_IMAGE_BY_TAG_NOMAN, repo_id, tag,
	                    out, err);
}

static enum berr_code sq_image_insert(struct meta *m, struct meta_image *img,
                                      const struct meta_ref *refs, size_t nrefs, struct berr *err)
{
	struct meta_sqlite *s = self(m);
	sqlite3_stmt *q = st(s, S_IMAGE_INSERT, err);
	if (!q)
		return err->code;
	sqlite3_bind_int64(q, 1, img->repo_id);
	bind_text(q, 2, img->digest);
	bind_text(q, 3, img->media_type);
	bind_text(q, 4, img->artifact_type);
	bind_text(q, 5, img->subject);
	sqlite3_bind_blob64(q, 6, img->manifest, img->manifest_len, SQLITE_STATIC);
	sqlite3_bind_int64(q, 7, img->size);
	sqlite3_bind_int64(q, 8, img->pushed_at);
	enum berr_code ec = exec_done(s, q, err);
	if (ec != BERR_OK)
		return ec;
	img->id = sqlite3_last_insert_rowid(s->db);
	for (size_t i = 0; i < nrefs; i++) {
		q = st(s, S_REF_INSERT, err);
		if (!q)
			return err->code;
		sqlite3_bind_int64(q, 1, img->id);
		sqlite3_bind_int64(q, 2, img->repo_id);
		sqlite3_bind_int(q, 3, (int)refs[i].kind);
		bind_text(q, 4, refs[i].digest);
		bind_text(q, 5, refs[i].media_type);
		sqlite3_bind_int64(q, 6, refs[i].size);
		if ((ec = exec_done(s, q, err)) != BERR_OK)
			return ec;
	}
	return BERR_OK;
}

static enum berr_code sq_image_delete(struct meta *m, int64_t image_id, struct berr *err)
{
	return sq_by_id(m, S_IMAGE_DELETE, image_id, err);
}

/* Fills rows[i].tags for a page of images (ids ascending) with one range query. */
static enum berr_code attach_tags(struct meta_sqlite *s, int64_t repo_id, struct meta_image *rows,
                                  size_t n, struct berr *err)
{
	sqlite3_stmt *q = st(s, S_TAGS_RANGE, err);
	if (!q)
		return err->code;
	sqlite3_bind_int64(q, 1, rows[0].id - 1);
	sqlite3_bind_int64(q, 2, rows[n - 1].id);
	sqlite3_bind_int64(q, 3, repo_id);
	size_t k = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(q, 0);
		while (k < n && rows[k].id < id) {
			k++;
			cap = 0;
		}
		if (k == n)
			break;
		if (rows[k].id != id)
			continue; /* a tag of an image the filter left out */
		struct meta_image *img = &rows[k];
		if (img->ntags + 1 >= cap) {
			cap = cap ? cap * 2 : 4;
			img->tags = xrealloc(img->tags, cap * sizeof(char *));
		}
		img->tags[img->ntags++] = col_text(q, 1);
		img->tags[img->ntags] = NULL;
	}
	enum berr_code ec = BERR_OK;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		ec = db_err(s, rc, err);
	done(q);
	return ec;
}

static enum berr_code sq_image_list(struct meta *m, int64_t repo_id, int64_t after_id,
                                    int64_t limit, enum meta_tag_filter filter, meta_image_fn fn,
                                    void *ctx, struct berr *err)
{
	struct meta_sqlite *s = self(m);
	enum stmt_id id = filter == META_TAGS_TAGGED     ? S_IMAGE_LIST_TAGGED
	                  : filter == META_TAGS_UNTAGGED ? S_IMAGE_LIST_UNTAGGED
	                                                 : S_IMAGE_LIST_ANY;
	sqlite3_stmt *q = st(s, id, err);
	if (!q)
		return err->code;
	sqlite3_bind_int64(q, 1, repo_id);
	sqlite3_bind_int64(q, 2, after_id);
	sqlite3_bind_int64(q, 3, limit);
	/* Rows are copied out before the callback runs, so callbacks may use this connection
	 * (e.g. to read an image's tags) without disturbing the iteration. */
	size_t n = 0, cap = 16;
	struct meta_image *rows = xmalloc(cap * sizeof(*rows));
	int rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (n == cap)
			rows = xrealloc(rows, (cap *= 2) * sizeof(*rows));
		memset(&rows[n], 0, sizeof(rows[n]));
		read_image(q, &rows[n++]);
	}
	enum berr_code ec = BERR_OK;
	if (rc != SQLITE_DONE)
		ec = db_err(s, rc, err);
	done(q);
	if (ec == BERR_OK && n)
		ec = attach_tags(s, repo_id, rows, n, err);
	bool stopped = ec != BERR_OK;
	for (size_t i = 0; i < n; i++) {
		if (!stopped && fn(ctx, &rows[i]))
			stopped = true; /* keep looping only to free the copies */
		meta_image_clear(&rows[i]);
	}
	free(rows);
	return ec;
}

struct str_cb {
	meta_str_fn fn;
	void *ctx;
};

static int str_row(sqlite3_stmt *q, void *ctx)
{
	struct str_cb *cb = ctx;
	const char *t = (const char *)sqlite3_column_text(q, 0);
	return cb->fn(cb->ctx, t ? t : "");
}

/* Steps a bound statement whose first column is text, calling fn per row. */
static enum berr_code str_rows_run(struct meta_sqlite *s, sqlite3_stmt *q, meta_str_fn fn,
                                   void *ctx, struct berr *err)
{
	struct str_cb cb = {fn, ctx};
	return each_row(s, q, str_row, &cb, err);
}

static enum berr_code str_rows(struct meta *m, enum stmt_id id, int64_t v, meta_str_fn fn,
                               void *ctx, struct berr *err)
{
	struct meta_sqlite *s = self(m);
	sqlite3_stmt *q = st(s, id, err);
	if (!q)
		return err->code;
	sqlite3_bind_int64(q, 1, v);
	return str_rows_run(s, q, fn, ctx, err);
}

static enum berr_code sq_image_tags(struct meta *m, int64_t image_id, meta_str_fn fn, void *ctx,
                                    struct berr *err)
{
	return str_rows(m, S_IMAGE_TAGS, image_id, fn, ctx, err);
}

static enum berr_code sq_image_children(struct meta *m, int64_t image_id, meta_str_fn fn, void *ctx,
                                        struct berr *err)
{
	return str_rows(m, S_IMAGE_CHILDREN, image_id, fn, ctx, err);
}

static enum berr_code sq_image_touch_pull(struct meta *m, int64_t image_id, int64_t at,
                                          struct berr *err)
{
	struct meta_sqlite *s = self(m);
	sqlite3_stmt *q = st(s, S_IMAGE_TOUCH, err);
	if (!q)
		return err->code;
	sqlite3_bind_int64(q, 1, at);
	sqlite3_bind_int64(q, 2, image_id);
	return exec_done(s, q, err);
}

static enum berr_code exists_query(struct meta_sqlite *s, sqlite3_stmt *q, bool *out,
                                   struct berr *err)
{
	int rc = sqlite3_step(q);
	enum berr_code ec = BERR_OK;
	if (rc == SQLITE_ROW)
		*out = true;
	else if (rc == SQLITE_DONE)
		*out = false;
	else
		ec = db_err(s, rc, err);
	done(q);
	return ec;
}

static enum berr_code sq_image_is_child(struct meta *m, int64_t repo_id, const char *digest,
                                        bool *out, struct berr *err)
{
	struct meta_sqlite *s = self(m);
	sqlite3_stmt *q = st(s, S_IMAGE_IS_CHILD, err);
	if (!q)
		return err->code;
	sqlite3_bind_int64(q, 1, repo_id);
	bind_text(q, 2, digest);
	return exists_query(s, q, out, err);
}

/* ---- tags ---- */

static enum berr_code sq_tag_set(struct meta *m, int64_t repo_id, const char *tag, int64_t image_id,
                                 struct berr *err)
{
	struct meta_sqlite *s = self(m);
	sqlite3_stmt *q = st(s, S_TAG_SET, err);
	if (!q)
		return err->code;
	sqlite3_bind_int64(q, 1, repo_id);
	bind_text(q, 2, tag);
	sqlite3_bind_int64(q, 3, image_id);
	return exec_done(s, q, err);
}

static enum berr_code sq_tag_delete(struct meta *m, int64_t repo_id, const char *tag,
                                    struct berr *err)
{
	struct meta_sqlite *s = self(m);
	sqlite3_stmt *q = st(s, S_TAG_DELETE, err);
	if (!q)
		return err->code;
	sqlite3_bind_int64(q, 1, repo_id);
	bind_text(q, 2, tag);
	return exec_done(s, q, err);
}

static enum berr_code sq_tag_count(struct meta *m, int64_t image_id, int64_t *n, struct berr *err)
{
	return count_query(m, S_TAG_COUNT, image_id, n, err);
}

/* ---- blobs ---- */

/* A blob row from columns (digest, size, gen). */
static void read_blob(sqlite3_stmt *q, struct meta_blob *b)
{
	const char *d = (const char *)sqlite3_column_text(q, 0);
	const char *g = (const char *)sqlite3_column_text(q, 2);
	snprintf(b->digest, sizeof(b->digest), "%s", d ? d : "");
	snprintf(b->gen, sizeof(b->gen), "%s", g ? g : "");
	b->size = sqlite3_column_int64(q, 1);
}

/* Steps q for one blob row; BERR_NOT_FOUND (missing) if none. */
static enum berr_code blob_one(struct meta_sqlite *s, sqlite3_stmt *q, struct meta_blob *out,
                               const char *missing, struct berr *err)
{
	int rc = sqlite3_step(q);
	enum berr_code ec = BERR_OK;
	if (rc == SQLITE_ROW) {
		if (out)
			read_blob(q, out);
	} else if (rc == SQLITE_DONE) {
		ec = err_set(err, BERR_NOT_FOUND, "%s", missing);
	} else {
		ec = db_err(s, rc, err);
	}
	done(q);
	return ec;
}

static enum berr_code sq_blob_get(struct meta *m, const char *digest, struct meta_blob *out,
                                  struct berr *err)
{
	struct meta_sqlite *s = self(m);
	sqlite3_stmt *q = st(s, S_BLOB_GET, err);
	if (!q)
		return err->code;
	bind_text(q, 1, digest);
	return blob_one(s, q, out, "blob not found", err);
}

static enum berr_code sq_blob_insert(struct meta *m, const struct meta_blob *b, struct berr *err)
{
	struct meta_sqlite *s = self(m);
	sqlite3_stmt *q = st(s, S_BLOB_INSERT, err);
	if (!q)
		return err->code;
	bind_text(q, 1, b->digest);
	sqlite3_bind_int64(q, 2, b->size);
	bind_text(q, 3, b->gen);
	sqlite3_bind_int64(q, 4, clock_now_ms());
	return exec_done(s, q, err);
}

static enum berr_code sq_repo_blob_link(struct meta *m, int64_t repo_id, const char *digest,
                                        struct berr *err)
{
	struct meta_sqlite *s = self(m);
	sqlite3_stmt *q = st(s, S_REPO_BLOB_LINK, err);
	if (!q)
		return err->code;
	sqlite3_bind_int64(q, 1, repo_id);
	bind_text(q, 2, digest);
	sqlite3_bind_int64(q, 3, clock_now_ms());
	return exec_done(s, q, err);
}

static enum berr_code sq_repo_blob_get(struct meta *m, int64_t repo_id, const char *digest,
                                       struct meta_blob *out, char **media_type, bool *referenced,
                                       struct berr *err)
{
	struct meta_sqlite *s = self(m);
	bool linked = false, refd = false;
	char *mt = NULL;
	sqlite3_stmt *q;
	if (!media_type && !referenced) {
		/* existence and the row only (every manifest put asks this per reference) */
		if (!(q = st(s, S_REPO_BLOB_SIZE, err)))
			return err->code;
		sqlite3_bind_int64(q, 1, repo_id);
		bind_text(q, 2, digest);
		return blob_one(s, q, out, "blob not found in repository", err);
	}
	if (!(q = st(s, S_REPO_BLOB_REF, err)))
		return err->code;
	sqlite3_bind_int64(q, 1, repo_id);
	bind_text(q, 2, digest);
	int rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		refd = true;
		mt = col_text(q, 0);
	} else if (rc != SQLITE_DONE) {
		enum berr_code ec = db_err(s, rc, err);
		done(q);
		return ec;
	}
	done(q);
	if (!refd) {
		q = st(s, S_REPO_BLOB_LINKED, err);
		if (!q)
			return err->code;
		sqlite3_bind_int64(q, 1, repo_id);
		bind_text(q, 2, digest);
		enum berr_code ec = exists_query(s, q, &linked, err);
		if (ec != BERR_OK)
			return ec;
	}
	if (!refd && !linked)
		return err_set(err, BERR_NOT_FOUND, "blob not found in repository");
	enum berr_code ec = sq_blob_get(m, digest, out, err);
	if (ec != BERR_OK) {
		free(mt);
		return ec;
	}
	if (media_type)
		*media_type = mt;
	else
		free(mt);
	if (referenced)
		*referenced = refd;
	return BERR_OK;
}

static enum berr_code sq_tag_list(struct meta *m, int64_t repo_id, const char *after, int64_t limit,
                                  meta_str_fn fn, void *ctx, struct berr *err)
{
	struct meta_sqlite *s = self(m);
	sqlite3_stmt *q = st(s, after ? S_TAG_LIST_AFTER : S_TAG_LIST, err);
	if (!q)
		return err->code;
	int i = 1;
	sqlite3_bind_int64(q, i++, repo_id);
	if (after)
		bind_text(q, i++, after);
	sqlite3_bind_int64(q, i, limit);
	return str_rows_run(s, q, fn, ctx, err);
}

static enum berr_code sq_repo_names(struct meta *m, const char *account, const char *region,
                                    const char *after, int64_t limit, meta_str_fn fn, void *ctx,
                                    struct berr *err)
{
	struct meta_sqlite *s = self(m);
	sqlite3_stmt *q = st(s, after ? S_REPO_NAMES_AFTER : S_REPO_NAMES, err);
	if (!q)
		return err->code;
	int i = 1;
	bind_text(q, i++, account);
	bind_text(q, i++, region);
	if (after)
		bind_text(q, i++, after);
	sqlite3_bind_int64(q, i, limit);
	return str_rows_run(s, q, fn, ctx, err);
}

static enum berr_code sq_image_referrers(struct meta *m, int64_t repo_id, const char *digest,
                                         meta_image_fn fn, void *ctx, struct berr *err)
{
	struct meta_sqlite *s = self(m);
	sqlite3_stmt *q = st(s, S_IMAGE_REFERRERS, err);
	if (!q)
		return err->code;
	sqlite3_bind_int64(q, 1, repo_id);
	bind_text(q, 2, digest);
	struct image_cb cb = {fn, ctx};
	return each_row(s, q, image_row, &cb, err);
}

static enum berr_code sq_repo_blob_unlink(struct meta *m, int64_t repo_id, const char *digest,
                                          struct berr *err)
{
	struct meta_sqlite *s = self(m);
	sqlite3_stmt *q = st(s, S_REPO_BLOB_UNLINK, err);
	if (!q)
		return err->code;
	sqlite3_bind_int64(q, 1, repo_id);
	bind_text(q, 2, digest);
	return exec_done(s, q, err);
}

static enum berr_code sq_registry_blob_known(struct meta *m, const char *account,
                                             const char *region, const char *digest, bool *out,
                                             struct berr *err)
{
	struct meta_sqlite *s = self(m);
	enum stmt_id ids[2] = {S_REGISTRY_BLOB_LINKED, S_REGISTRY_BLOB_REF};
	*out = false;
	for (int i = 0; i < 2 && !*out; i++) {
		sqlite3_stmt *q = st(s, ids[i], err);
		if (!q)
			return err->code;
		bind_text(q, 1, digest);
		bind_text(q, 2, account);
		bind_text(q, 3, region);
		enum berr_code ec = exists_query(s, q, out, err);
		if (ec != BERR_OK)
			return ec;
	}
	return BERR_OK;
}

static enum berr_code sq_image_pulls_flush(struct meta *m, const int64_t *ids, const int64_t *at,
                                           size_t n, struct berr *err)
{
	enum berr_code rc = sq_txn_begin(m, err);
	if (rc != BERR_OK)
		return rc;
	for (size_t i = 0; i < n && rc == BERR_OK; i++)
		rc = sq_image_touch_pull(m, ids[i], at[i], err);
	if (rc == BERR_OK)
		rc = sq_txn_commit(m, err);
	if (rc != BERR_OK)
		sq_txn_rollback(m);
	return rc;
}

/* ---- uploads ---- */

static enum berr_code sq_upload_list_stale(struct meta *m, int64_t before, int64_t limit,
                                           meta_str_fn fn, void *ctx, struct berr *err)
{
	struct meta_sqlite *s = self(m);
	sqlite3_stmt *q = st(s, S_UPLOAD_STALE, err);
	if (!q)
		return err->code;
	sqlite3_bind_int64(q, 1, before);
	sqlite3_bind_int64(q, 2, limit);
	return str_rows_run(s, q, fn, ctx, err);
}

/* Binds hash_state at i and unsynced_boot at i + 1. */
static void bind_upload_state(sqlite3_stmt *q, int i, const struct meta_upload *u)
{
	if (u->hash_state)
		sqlite3_bind_blob(q, i, u->hash_state, (int)u->hash_state_len, SQLITE_STATIC);
	else
		sqlite3_bind_null(q, i);
	if (u->unsynced_boot[0])
		bind_text(q, i + 1, u->unsynced_boot);
	else
		sqlite3_bind_null(q, i + 1);
}

static enum berr_code sq_upload_insert(struct meta *m, const struct meta_upload *u,
                                       struct berr *err)
{
	struct meta_sqlite *s = self(m);
	sqlite3_stmt *q = st(s, S_UPLOAD_INSERT, err);
	if (!q)
		return err->code;
	bind_text(q, 1, u->id);
	sqlite3_bind_int64(q, 2, u->repo_id);
	sqlite3_bind_int64(q, 3, u->created_at);
	sqlite3_bind_int64(q, 4, u->updated_at);
	sqlite3_bind_int64(q, 5, u->size);
	sqlite3_bind_int64(q, 6, u->parts);
	sqlite3_bind_int(q, 7, u->small_part);
	sqlite3_bind_int64(q, 8, u->last_part_size);
	bind_upload_state(q, 9, u);
	return exec_done(s, q, err);
}

static enum berr_code sq_upload_get(struct meta *m, const char *id, struct meta_upload *out,
                                    struct berr *err)
{
	struct meta_sqlite *s = self(m);
	sqlite3_stmt *q = st(s, S_UPLOAD_GET, err);
	if (!q)
		return err->code;
	bind_text(q, 1, id);
	int rc = sqlite3_step(q);
	enum berr_code ec = BERR_OK;
	if (rc == SQLITE_ROW) {
		memset(out, 0, sizeof(*out));
		const char *t = (const char *)sqlite3_column_text(q, 0);
		snprintf(out->id, sizeof(out->id), "%s", t ? t : "");
		out->repo_id = sqlite3_column_int64(q, 1);
		out->created_at = sqlite3_column_int64(q, 2);
		out->updated_at = sqlite3_column_int64(q, 3);
		out->size = sqlite3_column_int64(q, 4);
		out->parts = sqlite3_column_int64(q, 5);
		out->small_part = sqlite3_column_int(q, 6) != 0;
		out->last_part_size = sqlite3_column_int64(q, 7);
		if (sqlite3_column_type(q, 8) == SQLITE_BLOB) {
			size_t n = (size_t)sqlite3_column_bytes(q, 8);
			out->hash_state = xmalloc(n);
			memcpy(out->hash_state, sqlite3_column_blob(q, 8), n);
			out->hash_state_len = n;
		}
		t = (const char *)sqlite3_column_text(q, 9);
		snprintf(out->unsynced_boot, sizeof(out->unsynced_boot), "%s", t ? t : "");
	} else if (rc == SQLITE_DONE) {
		ec = err_set(err, BERR_NOT_FOUND, "upload not found");
	} else {
		ec = db_err(s, rc, err);
	}
	done(q);
	return ec;
}

static enum berr_code sq_upload_update(struct meta *m, const struct meta_upload *u,
                                       struct berr *err)
{
	struct meta_sqlite *s = self(m);
	sqlite3_stmt *q = st(s, S_UPLOAD_UPDATE, err);
	if (!q)
		return err->code;
	sqlite3_bind_int64(q, 1, u->updated_at);
	sqlite3_bind_int64(q, 2, u->size);
	sqlite3_bind_int64(q, 3, u->parts);
	sqlite3_bind_int(q, 4, u->small_part);
	sqlite3_bind_int64(q, 5, u->last_part_size);
	bind_upload_state(q, 6, u);
	bind_text(q, 8, u->id);
	return exec_done(s, q, err);
}

static enum berr_code sq_upload_delete(struct meta *m, const char *id, struct berr *err)
{
	struct meta_sqlite *s = self(m);
	sqlite3_stmt *q = st(s, S_UPLOAD_DELETE, err);
	if (!q)
		return err->code;
	bind_text(q, 1, id);
	return exec_done(s, q, err);
}

/* ---- registry documents ---- */

static sqlite3_stmt *kv_stmt(struct meta_sqlite *s, enum stmt_id id, const char *account,
                             const char *region, const char *name, struct berr *err)
{
	sqlite3_stmt *q = st(s, id, err);
	if (!q)
		return NULL;
	bind_text(q, 1, account);
	bind_text(q, 2, region);
	bind_text(q, 3, name);
	return q;
}

static enum berr_code sq_kv_get(struct meta *m, const char *account, const char *region,
                                const char *name, char **value, struct berr *err)
{
	struct meta_sqlite *s = self(m);
	sqlite3_stmt *q = kv_stmt(s, S_KV_GET, account, region, name, err);
	if (!q)
		return err->code;
	int rc = sqlite3_step(q);
	enum berr_code ec = BERR_OK;
	if (rc == SQLITE_ROW)
		*value = col_text(q, 0);
	else if (rc == SQLITE_DONE)
		ec = err_set(err, BERR_NOT_FOUND, "%s not set", name);
	else
		ec = db_err(s, rc, err);
	done(q);
	return ec;
}

static enum berr_code sq_kv_put(struct meta *m, const char *account, const char *region,
                                const char *name, const char *value, struct berr *err)
{
	struct meta_sqlite *s = self(m);
	sqlite3_stmt *q = kv_stmt(s, S_KV_PUT, account, region, name, err);
	if (!q)
		return err->code;
	bind_text(q, 4, value);
	return exec_done(s, q, err);
}

static enum berr_code sq_kv_delete(struct meta *m, const char *account, const char *region,
                                   const char *name, struct berr *err)
{
	struct meta_sqlite *s = self(m);
	sqlite3_stmt *q = kv_stmt(s, S_KV_DELETE, account, region, name, err);
	if (!q)
		return err->code;
	return exec_done(s, q, err);
}

/* ---- lifecycle ---- */

static enum berr_code sq_repo_list_lifecycle(struct meta *m, int64_t after_id, int64_t limit,
                                             meta_repo_fn fn, void *ctx, struct berr *err)
{
	struct meta_sqlite *s = self(m);
	sqlite3_stmt *q = st(s, S_REPO_LIST_LC, err);
	if (!q)
		return err->code;
	sqlite3_bind_int64(q, 1, after_id);
	sqlite3_bind_int64(q, 2, limit);
	struct repo_cb cb = {fn, ctx};
	return each_row(s, q, repo_row, &cb, err);
}

static enum berr_code sq_repo_child_digests(struct meta *m, int64_t repo_id, meta_str_fn fn,
                                            void *ctx, struct berr *err)
{
	return str_rows(m, S_REPO_CHILDREN, repo_id, fn, ctx, err);
}

static enum berr_code sq_preview_put(struct meta *m, int64_t repo_id, const char *policy,
                                     const char *status, const char *results, int64_t at,
                                     struct berr *err)
{
	struct meta_sqlite *s = self(m);
	sqlite3_stmt *q = st(s, S_PREVIEW_PUT, err);
	if (!q)
		return err->code;
	sqlite3_bind_int64(q, 1, repo_id);
	bind_text(q, 2, policy);
	bind_text(q, 3, status);
	bind_text(q, 4, results);
	sqlite3_bind_int64(q, 5, at);
	return exec_done(s, q, err);
}

static enum berr_code sq_preview_get(struct meta *m, int64_t repo_id, char **policy, char **status,
                                     char **results, struct berr *err)
{
	struct meta_sqlite *s = self(m);
	sqlite3_stmt *q = st(s, S_PREVIEW_GET, err);
	if (!q)
		return err->code;
	sqlite3_bind_int64(q, 1, repo_id);
	int rc = sqlite3_step(q);
	enum berr_code ec = BERR_OK;
	if (rc == SQLITE_ROW) {
		*policy = col_text(q, 0);
		*status = col_text(q, 1);
		*results = col_text(q, 2);
	} else if (rc == SQLITE_DONE) {
		ec = err_set(err, BERR_NOT_FOUND, "no preview");
	} else {
		ec = db_err(s, rc, err);
	}
	done(q);
	return ec;
}

static enum berr_code sq_history_insert(struct meta *m, const struct meta_history *h,
                                        struct berr *err)
{
	struct meta_sqlite *s = self(m);
	sqlite3_stmt *q = st(s, S_HISTORY_INSERT, err);
	if (!q)
		return err->code;
	sqlite3_bind_int64(q, 1, h->at);
	bind_text(q, 2, h->account);
	bind_text(q, 3, h->region);
	bind_text(q, 4, h->repo_name);
	bind_text(q, 5, h->digest);
	bind_text(q, 6, h->tags);
	sqlite3_bind_int(q, 7, h->rule_priority);
	bind_text(q, 8, h->action);
	sqlite3_bind_int64(q, 9, h->pushed_at);
	return exec_done(s, q, err);
}

struct history_cb {
	meta_history_fn fn;
	void *ctx;
};

static int history_row(sqlite3_stmt *q, void *ctx)
{
	struct history_cb *cb = ctx;
	struct meta_history h = {
	    .id = sqlite3_column_int64(q, 0),
	    .at = sqlite3_column_int64(q, 1),
	    .account = (const char *)sqlite3_column_text(q, 2),
	    .region = (const char *)sqlite3_column_text(q, 3),
	    .repo_name = (const char *)sqlite3_column_text(q, 4),
	    .digest = (const char *)sqlite3_column_text(q, 5),
	    .tags = (const char *)sqlite3_column_text(q, 6),
	    .rule_priority = sqlite3_column_int(q, 7),
	    .action = (const char *)sqlite3_column_text(q, 8),
	    .pushed_at = sqlite3_column_int64(q, 9),
	};
	return cb->fn(cb->ctx, &h);
}

static enum berr_code sq_history_list(struct meta *m, const char *account, const char *region,
                                      const char *repo_name, int64_t limit, meta_history_fn fn,
                                      void *ctx, struct berr *err)
{
	struct meta_sqlite *s = self(m);
	enum stmt_id id = !account ? S_HISTORY_ALL : repo_name ? S_HISTORY_REPO : S_HISTORY_REG;
	sqlite3_stmt *q = st(s, id, err);
	if (!q)
		return err->code;
	int i = 1;
	if (account) {
		bind_text(q, i++, account);
		bind_text(q, i++, region);
		if (repo_name)
			bind_text(q, i++, repo_name);
	}
	sqlite3_bind_int64(q, i, limit);
	struct history_cb cb = {fn, ctx};
	return each_row(s, q, history_row, &cb, err);
}

/* ---- garbage collection and fsck ---- */

struct blob_cb {
	meta_blob_fn fn;
	void *ctx;
};

static int blob_row(sqlite3_stmt *q, void *ctx)
{
	struct blob_cb *cb = ctx;
	struct meta_blob b;
	read_blob(q, &b);
	return cb->fn(cb->ctx, &b);
}

static enum berr_code blob_rows(struct meta_sqlite *s, sqlite3_stmt *q, meta_blob_fn fn, void *ctx,
                                struct berr *err)
{
	struct blob_cb cb = {fn, ctx};
	return each_row(s, q, blob_row, &cb, err);
}

static enum berr_code sq_gc_candidates(struct meta *m, const struct meta_garbage *g,
                                       const char *after, int64_t limit, meta_blob_fn fn, void *ctx,
                                       struct berr *err)
{
	struct meta_sqlite *s = self(m);
	sqlite3_stmt *q = st(s, after ? S_GC_CANDIDATES_AFTER : S_GC_CANDIDATES, err);
	if (!q)
		return err->code;
	int i = 1;
	sqlite3_bind_int64(q, i++, g->created_before);
	sqlite3_bind_int64(q, i++, g->linked_after);
	if (after)
		bind_text(q, i++, after);
	sqlite3_bind_int64(q, i, limit);
	return blob_rows(s, q, fn, ctx, err);
}

/* Statement id with (digest, gen) bound as its parameters 1 and 2. */
static sqlite3_stmt *blob_stmt(struct meta_sqlite *s, enum stmt_id id, const char *digest,
                               const char *gen, struct berr *err)
{
	sqlite3_stmt *q = st(s, id, err);
	if (q) {
		bind_text(q, 1, digest);
		bind_text(q, 2, gen);
	}
	return q;
}

static enum berr_code sq_blob_trash(struct meta *m, const char *digest, const char *gen,
                                    const struct meta_garbage *g, bool *moved, struct berr *err)
{
	struct meta_sqlite *s = self(m);
	*moved = false;
	sqlite3_stmt *q = blob_stmt(s, g ? S_GC_IS_GARBAGE : S_BLOB_NAMES, digest, gen, err);
	if (!q)
		return err->code;
	if (g) {
		sqlite3_bind_int64(q, 3, g->created_before);
		sqlite3_bind_int64(q, 4, g->linked_after);
	}
	bool hit = false;
	enum berr_code ec = exists_query(s, q, &hit, err);
	if (ec != BERR_OK || !hit)
		return ec;
	enum stmt_id ids[2] = {S_BLOB_DELETE_LINKS, S_BLOB_DELETE};
	for (int i = 0; i < 2; i++) {
		if (!(q = st(s, ids[i], err)))
			return err->code;
		bind_text(q, 1, digest);
		if ((ec = exec_done(s, q, err)) != BERR_OK)
			return ec;
	}
	if ((ec = m->ops->trash_add(m, digest, gen, err)) == BERR_OK)
		*moved = true;
	return ec;
}

static enum berr_code sq_trash_add(struct meta *m, const char *digest, const char *gen,
                                   struct berr *err)
{
	struct meta_sqlite *s = self(m);
	sqlite3_stmt *q = blob_stmt(s, S_TRASH_INSERT, digest, gen, err);
	if (!q)
		return err->code;
	sqlite3_bind_int64(q, 3, clock_now_ms());
	return exec_done(s, q, err);
}

static enum berr_code sq_trash_list(struct meta *m, int64_t limit, meta_blob_fn fn, void *ctx,
                                    struct berr *err)
{
	struct meta_sqlite *s = self(m);
	sqlite3_stmt *q = st(s, S_TRASH_LIST, err);
	if (!q)
		return err->code;
	sqlite3_bind_int64(q, 1, limit);
	return blob_rows(s, q, fn, ctx, err);
}

static enum berr_code sq_trash_remove(struct meta *m, const char *digest, const char *gen,
                                      struct berr *err)
{
	struct meta_sqlite *s = self(m);
	sqlite3_stmt *q = blob_stmt(s, S_TRASH_DELETE, digest, gen, err);
	return q ? exec_done(s, q, err) : err->code;
}

static enum berr_code sq_blob_file_owned(struct meta *m, const char *digest, const char *gen,
                                         bool *out, struct berr *err)
{
	struct meta_sqlite *s = self(m);
	sqlite3_stmt *q = blob_stmt(s, S_FILE_OWNED, digest, gen, err);
	return q ? exists_query(s, q, out, err) : err->code;
}

static enum berr_code sq_blob_list(struct meta *m, const char *after, int64_t limit,
                                   meta_blob_fn fn, void *ctx, struct berr *err)
{
	struct meta_sqlite *s = self(m);
	sqlite3_stmt *q = st(s, after ? S_BLOB_LIST_AFTER : S_BLOB_LIST, err);
	if (!q)
		return err->code;
	int i = 1;
	if (after)
		bind_text(q, i++, after);
	sqlite3_bind_int64(q, i, limit);
	return blob_rows(s, q, fn, ctx, err);
}

struct badref_cb {
	meta_badref_fn fn;
	void *ctx;
};

static int badref_row(sqlite3_stmt *q, void *ctx)
{
	struct badref_cb *cb = ctx;
	const char *v[5];
	for (int i = 0; i < 5; i++) {
		v[i] = (const char *)sqlite3_column_text(q, i);
		if (!v[i])
			v[i] = "";
	}
	return cb->fn(cb->ctx, v[0], v[1], v[2], v[3], v[4]);
}

static enum berr_code sq_refs_missing(struct meta *m, meta_badref_fn fn, void *ctx,
                                      struct berr *err)
{
	struct meta_sqlite *s = self(m);
	sqlite3_stmt *q = st(s, S_REFS_MISSING, err);
	if (!q)
		return err->code;
	struct badref_cb cb = {fn, ctx};
	return each_row(s, q, badref_row, &cb, err);
}

/* The integer a PRAGMA returns. */
static enum berr_code pragma_int(struct meta_sqlite *s, const char *sql, int64_t *out,
                                 struct berr *err)
{
	sqlite3_stmt *q = NULL;
	int rc = sqlite3_prepare_v2(s->db, sql, -1, &q, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW)
		*out = sqlite3_column_int64(q, 0);
	enum berr_code ec = rc == SQLITE_ROW ? BERR_OK : db_err(s, rc, err);
	sqlite3_finalize(q);
	return ec;
}

static enum berr_code sq_space(struct meta *m, int64_t *avail, int64_t *total, struct berr *err)
{
	struct meta_sqlite *s = self(m);
	enum berr_code rc = fs_space(s->path, avail, total, err);
	int64_t pages = 0, page_size = 0;
	if (rc == BERR_OK &&
	    (rc = pragma_int(s, "PRAGMA freelist_count", &pages, err)) == BERR_OK &&
	    (rc = pragma_int(s, "PRAGMA page_size", &page_size, err)) == BERR_OK)
		*avail += pages * page_size; /* freed pages are reused before the file grows */
	return rc;
}

static const struct meta_ops sqlite_ops = {
    .close = sq_close,
    .txn_begin = sq_txn_begin,
    .txn_commit = sq_txn_commit,
    .txn_rollback = sq_txn_rollback,
    .writers_waiting = sq_writers_waiting,
    .txn_changes = sq_txn_changes,
    .savepoint = sq_savepoint,
    .defer_durability = sq_defer_durability,
    .sync = sq_sync,
    .repo_insert = sq_repo_insert,
    .repo_get = sq_repo_get,
    .repo_update = sq_repo_update,
    .repo_delete = sq_repo_delete,
    .repo_list = sq_repo_list,
    .repo_image_count = sq_repo_image_count,
    .image_get = sq_image_get,
    .image_get_by_tag = sq_image_get_by_tag,
    .image_insert = sq_image_insert,
    .image_delete = sq_image_delete,
    .image_list = sq_image_list,
    .image_tags = sq_image_tags,
    .image_touch_pull = sq_image_touch_pull,
    .image_is_child = sq_image_is_child,
    .image_children = sq_image_children,
    .tag_set = sq_tag_set,
    .tag_delete = sq_tag_delete,
    .tag_count = sq_tag_count,
    .blob_get = sq_blob_get,
    .blob_insert = sq_blob_insert,
    .repo_blob_link = sq_repo_blob_link,
    .repo_blob_get = sq_repo_blob_get,
    .upload_list_stale = sq_upload_list_stale,
    .upload_insert = sq_upload_insert,
    .upload_get = sq_upload_get,
    .upload_update = sq_upload_update,
    .upload_delete = sq_upload_delete,
    .tag_list = sq_tag_list,
    .repo_names = sq_repo_names,
    .image_referrers = sq_image_referrers,
    .repo_blob_unlink = sq_repo_blob_unlink,
    .registry_blob_known = sq_registry_blob_known,
    .image_pulls_flush = sq_image_pulls_flush,
    .repo_list_lifecycle = sq_repo_list_lifecycle,
    .repo_child_digests = sq_repo_child_digests,
    .preview_put = sq_preview_put,
    .preview_get = sq_preview_get,
    .history_insert = sq_history_insert,
    .history_list = sq_history_list,
    .gc_candidates = sq_gc_candidates,
    .blob_trash = sq_blob_trash,
    .trash_add = sq_trash_add,
    .trash_list = sq_trash_list,
    .trash_remove = sq_trash_remove,
    .blob_file_owned = sq_blob_file_owned,
    .blob_list = sq_blob_list,
    .refs_missing = sq_refs_missing,
    .kv_get = sq_kv_get,
    .kv_put = sq_kv_put,
    .kv_delete = sq_kv_delete,
    .space = sq_space,
};

static enum berr_code exec_sql(sqlite3 *db, const char *sql, struct berr *err)
{
	char *msg = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		enum berr_code c = (rc & 0xff) == SQLITE_BUSY ? BERR_BUSY : BERR_IO;
		err_set(err, c, "sqlite: %s", msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return c;
	}
	return BERR_OK;
}

static int user_version(sqlite3 *db)
{
	sqlite3_stmt *q = NULL;
	int v = -1;
	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, NULL) == SQLITE_OK &&
	    sqlite3_step(q) == SQLITE_ROW)
		v = sqlite3_column_int(q, 0);
	sqlite3_finalize(q);
	return v;
}

/* Applies pending migrations, each in its own IMMEDIATE transaction, re-reading the version
 * under the lock so two processes starting together apply each step once. */
static enum berr_code migrate(sqlite3 *db, struct berr *err)
{
	for (const struct schema_step *step = schema_sqlite; step->sql; step++) {
		if (user_version(db) >= step->version)
			continue;
		if (exec_sql(db, "BEGIN IMMEDIATE", err) != BERR_OK)
			return err->code;
		if (user_version(db) < step->version) {
			char pragma[64];
			snprintf(pragma, sizeof(pragma), "PRAGMA user_version=%d", step->version);
			if (exec_sql(db, step->sql, err) != BERR_OK ||
			    exec_sql(db, pragma, err) != BERR_OK) {
				exec_sql(db, "ROLLBACK", NULL);
				return err->code;
			}
		}
		if (exec_sql(db, "COMMIT", err) != BERR_OK) {
			exec_sql(db, "ROLLBACK", NULL);
			return err->code;
		}
	}
	return BERR_OK;
}

/* Process-wide library settings, before SQLite initialises itself. Memory statistics cost a
 * global mutex and bookkeeping on every allocation (~10 us of the writer's time per image put)
 * and berth reads none of them. */
static void lib_configure(void)
{
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static void lib_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, lib_configure);
}

static enum berr_code open_conn(const char *path, const char *vfs, struct meta **out,
                                struct berr *err)
{
	sqlite3 *db = NULL;
	int rc = sqlite3_open_v2(
	    path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, vfs);
	if (rc != SQLITE_OK) {
		err_set(err, BERR_IO, "open database %s: %s", path,
		        db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close(db);
		return BERR_IO;
	}
	sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
	sqlite3_extended_result_codes(db, 1);
	/* Switching a new database to WAL (and some lock transitions on first open) can answer
	 * SQLITE_BUSY without consulting the busy handler when several processes open it at
	 * once; every step here is idempotent, so retry a bounded number of times. */
	enum berr_code ec = BERR_BUSY;
	for (int attempt = 0; attempt < 100 && ec == BERR_BUSY; attempt++) {
		if (attempt)
			sqlite3_sleep(10 + attempt);
		/* wal_autocheckpoint: image puts rewrite the same index pages commit after commit;
		 * checkpointing every 8,000 frames (32 MiB of log) rather than 1,000 copies each
		 * of them to the database file far less often (+~17 % PutImage). */
		ec = exec_sql(
		    db,
		    "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
		    "PRAGMA foreign_keys=ON; PRAGMA wal_autocheckpoint=" STR(CKPT_AUTO_FRAMES) ";",
		    err);
		if (ec == BERR_OK)
			ec = migrate(db, err);
	}
	if (ec != BERR_OK) {
		sqlite3_close(db);
		return err->code;
	}
	struct meta_sqlite *s = xcalloc(1, sizeof(*s));
	s->super.ops = &sqlite_ops;
	s->db = db;
	s->gate = gate_get(db);
	pthread_mutex_init(&s->wal_mu, NULL);
	s->wal_fd = -1;
	const char *full = sqlite3_db_filename(db, "main"); /* the pager's: as the WAL is named */
	s->wal_path = xasprintf("%s-wal", full ? full : path);
	s->path = xstrdup(path);
	*out = &s->super;
	return BERR_OK;
}

enum berr_code meta_sqlite_open(const char *path, struct meta **out, struct berr *err)
{
	lib_init();
	return open_conn(path, NULL, out, err);
}

enum berr_code meta_sqlite_open_writer(const char *path, struct meta **out, struct berr *err)
{
	lib_init();
	enum berr_code rc = open_conn(path, sqlite_walbuf_vfs(), out, err);
	if (rc == BERR_OK && (rc = ckpt_start(self(*out), err)) != BERR_OK) {
		meta_close(*out);
		*out = NULL;
	}
	return rc;
}
