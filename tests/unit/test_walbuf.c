/* test_walbuf.c - the log-buffering VFS (meta/sqlite_walbuf.c) against plain connections on
 * the same database: commits are in the file when COMMIT returns (a child that exits without
 * closing leaves them for recovery), other connections read them, spilled frames of a rolled
 * back transaction or savepoint never overwrite another writer's frames, and the database
 * passes integrity_check throughout. */
#include "base/feat.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "meta/sqlite_walbuf.h"
#include "testutil.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct fix {
	char *dir;
	char *path;
};

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	f->dir = test_mkdtemp("walbuf");
	assert_non_null(f->dir);
	f->path = xasprintf("%s/t.db", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	test_rm_rf(f->dir);
	free(f->path);
	free(f->dir);
	free(f);
	return 0;
}

static sqlite3 *open_db(const char *path, bool buffered)
{
	sqlite3 *db = NULL;
	const char *vfs = buffered ? sqlite_walbuf_vfs() : NULL;
	if (buffered)
		assert_non_null(vfs);
	assert_int_equal(
	    sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	return db;
}

static void exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK)
		fail_msg("%s: %s", sql, msg ? msg : sqlite3_errstr(rc));
}

static long long scalar(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *q = NULL;
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	long long v = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	return v;
}

static void assert_intact(const char *path)
{
	sqlite3 *db = open_db(path, false);
	sqlite3_stmt *q = NULL;
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(q, 0), "ok");
	sqlite3_finalize(q);
	sqlite3_close(db);
}

/* Inserts n rows of ~300 bytes tagged `tag` in one statement. */
static void insert_rows(sqlite3 *db, int tag, int n)
{
	char sql[256];
	snprintf(sql, sizeof(sql),
	         "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<%d) "
	         "INSERT INTO t (tag, pad) SELECT %d, randomblob(300) FROM c",
	         n, tag);
	exec(db, sql);
}

static long long count_tag(sqlite3 *db, int tag)
{
	char sql[96];
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM t WHERE tag=%d", tag);
	return scalar(db, sql);
}

static void create(const char *path)
{
	sqlite3 *db = open_db(path, false);
	exec(db, "PRAGMA journal_mode=WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, tag INTEGER, "
	         "pad BLOB); CREATE INDEX t_tag ON t (tag, pad)");
	sqlite3_close(db);
}

static void test_commits_visible_to_others(void **state)
{
	struct fix *f = *state;
	create(f->path);
	sqlite3 *w = open_db(f->path, true), *r = open_db(f->path, false);
	exec(w, "PRAGMA synchronous=NORMAL");
	for (int i = 1; i <= 50; i++) {
		exec(w, "BEGIN IMMEDIATE");
		insert_rows(w, i, i % 7 + 1);
		exec(w, "COMMIT");
		assert_int_equal(count_tag(r, i),
		                 i % 7 + 1); /* another connection sees it at once */
	}
	exec(w, "PRAGMA wal_checkpoint(TRUNCATE)");
	insert_rows(w, 99, 3); /* autocommit, after the log restarted */
	assert_int_equal(count_tag(r, 99), 3);
	sqlite3_close(r);
	sqlite3_close(w);
	assert_intact(f->path);
}

/* A child commits through the buffering VFS and exits without closing anything: recovery
 * must find every commit in the log file. */
static void test_commit_in_file_without_close(void **state)
{
	struct fix *f = *state;
	create(f->path);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		sqlite3 *w = open_db(f->path, true);
		exec(w, "PRAGMA synchronous=NORMAL");
		for (int i = 1; i <= 20; i++) {
			exec(w, "BEGIN IMMEDIATE");
			insert_rows(w, i, 5);
			exec(w, "COMMIT");
		}
		exec(w, "BEGIN IMMEDIATE");
		insert_rows(w, 1000, 5); /* never committed */
		_exit(0);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	sqlite3 *r = open_db(f->path, false);
	assert_int_equal(scalar(r, "SELECT count(*) FROM t WHERE tag<=20"), 100);
	assert_int_equal(count_tag(r, 1000), 0);
	sqlite3_close(r);
	assert_intact(f->path);
}

/* A transaction big enough to spill pages into the log rolls back; another connection then
 * writes; the first writes again. Nothing of the rolled-back frames may land over the other
 * writer's. The same with a savepoint undone inside a committed transaction. */
static void test_spill_rollback_and_savepoint(void **state)
{
	struct fix *f = *state;
	create(f->path);
	sqlite3 *w = open_db(f->path, true), *o = open_db(f->path, false);
	exec(w, "PRAGMA synchronous=NORMAL; PRAGMA cache_size=8; PRAGMA cache_spill=1");
	for (int round = 0; round < 5; round++) {
		exec(w, "BEGIN IMMEDIATE");
		insert_rows(w, 500 + round, 400); /* ~40 pages with an 8-page cache: spills */
		exec(w, "ROLLBACK");
		exec(o, "BEGIN IMMEDIATE");
		insert_rows(o, 600 + round, 50);
		exec(o, "COMMIT");
		exec(w, "BEGIN IMMEDIATE");
		insert_rows(w, 700 + round, 10);
		exec(w, "SAVEPOINT s");
		insert_rows(w, 800 + round, 400);
		exec(w, "ROLLBACK TO s; RELEASE s");
		insert_rows(w, 900 + round, 10);
		exec(w, "COMMIT");
		/* A fresh connection has no cached pages: it reads every frame from the file. */
		assert_intact(f->path);
		sqlite3 *r = open_db(f->path, false);
		assert_int_equal(count_tag(r, 500 + round), 0);
		assert_int_equal(count_tag(r, 600 + round), 50);
		assert_int_equal(count_tag(r, 700 + round), 10);
		assert_int_equal(count_tag(r, 800 + round), 0);
		assert_int_equal(count_tag(r, 900 + round), 10);
		sqlite3_close(r);
	}
	/* A big committed transaction goes out in pieces and still reads back whole. */
	exec(w, "BEGIN IMMEDIATE");
	insert_rows(w, 42, 8000);
	exec(w, "COMMIT");
	assert_int_equal(count_tag(o, 42), 8000);
	sqlite3_close(o);
	sqlite3_close(w);
	assert_intact(f->path);
}

/* Commits bigger than one write of the underlying VFS (it cannot take 128 KiB at once) and
 * bigger than the buffer, with a cache big enough that nothing spills first. */
static void test_big_commits(void **state)
{
	struct fix *f = *state;
	create(f->path);
	sqlite3 *w = open_db(f->path, true), *r = open_db(f->path, false);
	exec(w, "PRAGMA synchronous=NORMAL; PRAGMA cache_size=-65536");
	const int sizes[] = {100, 400, 420, 1000, 4000, 9000};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		exec(w, "BEGIN IMMEDIATE");
		insert_rows(w, 2000 + (int)i, sizes[i]);
		exec(w, "COMMIT");
		assert_int_equal(count_tag(r, 2000 + (int)i), sizes[i]);
	}
	sqlite3_close(r);
	sqlite3_close(w);
	assert_intact(f->path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_commits_visible_to_others, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_commit_in_file_without_close, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_spill_rollback_and_savepoint, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_big_commits, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
