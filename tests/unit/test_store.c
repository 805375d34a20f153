/* test_store.c - contract suites for the two storage interfaces: meta/meta.h (metadata) and
 * blob/blob.h (content-addressed bytes).
 *
 * Layout: each suite is a table of test cases (META_CASES, BLOB_CASES) written only against the
 * interface, plus one "opener" per driver that knows how to create an empty store, connect to
 * it and throw it away. main() crosses the tables with the openers. Adding a driver (PostgreSQL,
 * S3) means writing one opener and one line in main(); the cases stay as they are. Checks that
 * the interface cannot express (schema version, on-disk layout, escape from the data directory)
 * go through optional opener hooks and are skipped when a driver leaves them NULL.
 *
 * Every case gets a fresh, empty store (setup/teardown), so cases are independent. */
#include "base/feat.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "base/err.h"
#include "base/mem.h"
#include "base/util.h"
#include "blob/blob.h"
#include "crypto/sha256.h"
#include "meta/meta.h"
#include "testutil.h"

#include <dirent.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------------------ */
/* shared helpers */

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0)
		;
}

static void digest_of(const char *s, char out[DIGEST_STR_LEN])
{
	sha256_digest_str(s, strlen(s), out);
}

/* Fails the test with the error name and message unless expr returns want. */
#define assert_rc(expr, want, errp)                                                                \
	do {                                                                                       \
		enum berr_code rc_ = (expr);                                                       \
		if (rc_ != (want))                                                                 \
			fail_msg("%s: got %s, want %s (%s)", #expr, err_name(rc_), err_name(want), \
			         (errp)->msg);                                                     \
	} while (0)

/* Collected callback strings (tags, child digests). */
struct strs {
	size_t n;
	size_t stop_after; /* 0: never stop */
	char v[32][80];
};

static int collect_str(void *ctx, const char *s)
{
	struct strs *c = ctx;
	if (c->n < ARRAY_LEN(c->v))
		snprintf(c->v[c->n], sizeof(c->v[0]), "%s", s);
	c->n++;
	return c->stop_after && c->n >= c->stop_after;
}

static bool strs_has(const struct strs *c, const char *s)
{
	for (size_t i = 0; i < c->n && i < ARRAY_LEN(c->v); i++)
		if (strcmp(c->v[i], s) == 0)
			return true;
	return false;
}

/* ------------------------------------------------------------------------------------------ */
/* metadata store: openers */

struct meta_opener {
	const char *name;
	/* Creates an empty store; returns its handle or NULL. */
	void *(*create)(void);
	/* Opens a new connection to store h (any number of times, also after closing all). */
	enum berr_code (*connect)(void *h, struct meta **out, struct berr *err);
	/* Opens a connection pool of size connections on h. */
	enum berr_code (*pool)(void *h, int size, struct meta_pool **out, struct berr *err);
	/* Optional: schema version recorded in the store, and the version the driver ships. */
	int (*schema_version)(void *h);
	int (*schema_latest)(void);
	/* Removes the store (no connection is open). */
	void (*destroy)(void *h);
};

struct sqlite_store {
	char *dir;
	char *path;
};

static void *sqlite_create(void)
{
	struct sqlite_store *s = xcalloc(1, sizeof(*s));
	s->dir = test_mkdtemp("store");
	if (!s->dir) {
		free(s);
		return NULL;
	}
	s->path = xasprintf("%s/meta.db", s->dir);
	return s;
}

static enum berr_code sqlite_connect(void *h, struct meta **out, struct berr *err)
{
	return meta_sqlite_open(((struct sqlite_store *)h)->path, out, err);
}

static enum berr_code sqlite_pool(void *h, int size, struct meta_pool **out, struct berr *err)
{
	return meta_pool_open(((struct sqlite_store *)h)->path, size, out, err);
}

static int sqlite_schema_version(void *h)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	int v = -1;
	if (sqlite3_open_v2(((struct sqlite_store *)h)->path, &db, SQLITE_OPEN_READONLY, NULL) ==
	        SQLITE_OK &&
	    sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, NULL) == SQLITE_OK &&
	    sqlite3_step(q) == SQLITE_ROW)
		v = sqlite3_column_int(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return v;
}

/* The embedded migrations (build/<variant>/gen/schema_sqlite.c). */
struct schema_step {
	int version;
	const char *sql;
};
extern const struct schema_step schema_sqlite[];

static int sqlite_schema_latest(void)
{
	int v = 0;
	for (const struct schema_step *s = schema_sqlite; s->sql; s++)
		if (s->version > v)
			v = s->version;
	return v;
}

static void sqlite_destroy(void *h)
{
	struct sqlite_store *s = h;
	test_rm_rf(s->dir);
	free(s->dir);
	free(s->path);
	free(s);
}

static const struct meta_opener sqlite_meta = {
    .name = "sqlite",
    .create = sqlite_create,
    .connect = sqlite_connect,
    .pool = sqlite_pool,
    .schema_version = sqlite_schema_version,
    .schema_latest = sqlite_schema_latest,
    .destroy = sqlite_destroy,
};

/* ------------------------------------------------------------------------------------------ */
/* metadata store: fixture and helpers */

struct meta_fx {
	const struct meta_opener *drv;
	void *h;
	struct meta *m;
	struct berr err;
};

static int meta_setup(void **state)
{
	const struct meta_opener *drv = *state;
	struct meta_fx *fx = xcalloc(1, sizeof(*fx));
	fx->drv = drv;
	err_clear(&fx->err);
	fx->h = drv->create();
	if (!fx->h) {
		free(fx);
		return -1;
	}
	if (drv->connect(fx->h, &fx->m, &fx->err) != BERR_OK) {
		print_error("%s: connect: %s\n", drv->name, fx->err.msg);
		drv->destroy(fx->h);
		free(fx);
		return -1;
	}
	*state = fx;
	return 0;
}

static int meta_teardown(void **state)
{
	struct meta_fx *fx = *state;
	meta_close(fx->m);
	fx->drv->destroy(fx->h);
	free(fx);
	return 0;
}

/* CALL(conn, op, args...) runs conn->ops->op(conn, args..., &fx->err). */
#define CALL(conn, op, ...) ((conn)->ops->op((conn), __VA_ARGS__, &fx->err))
#define OP(op, ...) CALL(fx->m, op, __VA_ARGS__)
#define assert_ok(expr) assert_rc(expr, BERR_OK, &fx->err)
#define assert_err(expr, want) assert_rc(expr, want, &fx->err)

/* Inserts the blob row (digest, gen "", size). */
static enum berr_code blob_put(struct meta_fx *fx, const char *digest, int64_t size)
{
	struct meta_blob b = {.size = size};
	snprintf(b.digest, sizeof(b.digest), "%s", digest);
	return OP(blob_insert, &b);
}

/* blob_get / repo_blob_get reporting the size only. */
static enum berr_code blob_size(struct meta_fx *fx, const char *digest, int64_t *size)
{
	struct meta_blob b;
	enum berr_code rc = OP(blob_get, digest, &b);
	if (rc == BERR_OK && size)
		*size = b.size;
	return rc;
}

static enum berr_code repo_blob_size(struct meta_fx *fx, int64_t repo, const char *digest,
                                     int64_t *size, char **mt, bool *refd)
{
	struct meta_blob b;
	enum berr_code rc = OP(repo_blob_get, repo, digest, &b, mt, refd);
	if (rc == BERR_OK && size)
		*size = b.size;
	return rc;
}

#define META_TEST(name)                                                                            \
	static void name##_body(struct meta_fx *fx);                                               \
	static void name(void **state)                                                             \
	{                                                                                          \
		name##_body(*state);                                                               \
	}                                                                                          \
	static void name##_body(struct meta_fx *fx)

#define ACCT "111122223333"
#define ACCT2 "444455556666"
#define REGION "us-east-1"
#define REGION2 "eu-west-1"

static struct meta_repo repo_tmpl(const char *account, const char *region, const char *name)
{
	struct meta_repo r = {0};
	r.account = (char *)account;
	r.region = (char *)region;
	r.name = (char *)name;
	r.created_at = 1700000000123;
	r.mutability = (char *)"MUTABLE";
	r.encryption_type = (char *)"AES256";
	r.lifecycle_evaluated_at = 0;
	return r;
}

static int64_t put_repo_in(struct meta_fx *fx, const char *account, const char *region,
                           const char *name)
{
	struct meta_repo r = repo_tmpl(account, region, name);
	assert_ok(OP(repo_insert, &r));
	assert_true(r.id > 0);
	return r.id;
}

static int64_t put_repo(struct meta_fx *fx, const char *name)
{
	return put_repo_in(fx, ACCT, REGION, name);
}

static int64_t put_image_refs(struct meta_fx *fx, int64_t repo_id, const char *digest,
                              const char *manifest, size_t len, int64_t pushed_at,
                              const struct meta_ref *refs, size_t nrefs)
{
	struct meta_image img = {0};
	img.repo_id = repo_id;
	img.digest = (char *)digest;
	img.media_type = (char *)"application/vnd.oci.image.manifest.v1+json";
	img.manifest = (char *)manifest;
	img.manifest_len = len;
	img.size = 1234;
	img.pushed_at = pushed_at;
	assert_ok(OP(image_insert, &img, refs, nrefs));
	assert_true(img.id > 0);
	return img.id;
}

/* Inserts an image whose manifest is the string seed and whose digest is sha256(seed); the
 * digest is written to out when non-NULL. */
static int64_t put_image(struct meta_fx *fx, int64_t repo_id, const char *seed,
                         char out[DIGEST_STR_LEN])
{
	char d[DIGEST_STR_LEN];
	digest_of(seed, d);
	if (out)
		memcpy(out, d, DIGEST_STR_LEN);
	return put_image_refs(fx, repo_id, d, seed, strlen(seed), 1700000000000, NULL, 0);
}

static void txn_begin(struct meta_fx *fx, struct meta *m)
{
	assert_ok(m->ops->txn_begin(m, &fx->err));
}

static void txn_commit(struct meta_fx *fx, struct meta *m)
{
	assert_ok(m->ops->txn_commit(m, &fx->err));
}

/* Repo list collector. */
struct repo_ids {
	size_t n;
	size_t stop_after;
	int64_t id[64];
	char name[64][32];
};

static int collect_repo(void *ctx, const struct meta_repo *r)
{
	struct repo_ids *c = ctx;
	if (c->n < ARRAY_LEN(c->id)) {
		c->id[c->n] = r->id;
		snprintf(c->name[c->n], sizeof(c->name[0]), "%s", r->name);
	}
	c->n++;
	return c->stop_after && c->n >= c->stop_after;
}

static size_t count_repos(struct meta_fx *fx, struct meta *m, const char *account,
                          const char *region)
{
	struct repo_ids c = {0};
	assert_ok(CALL(m, repo_list, account, region, 0, 100000, collect_repo, &c));
	return c.n;
}

/* Image list collector; optionally reads each image's tags on the same connection. */
struct image_ids {
	size_t n;
	size_t stop_after;
	int64_t id[64];
	bool manifest_loaded;
	struct meta *m; /* when set, image_tags is called from inside the callback */
	size_t tags_seen;
};

static int collect_image(void *ctx, const struct meta_image *img)
{
	struct image_ids *c = ctx;
	if (c->n < ARRAY_LEN(c->id))
		c->id[c->n] = img->id;
	if (img->manifest)
		c->manifest_loaded = true;
	if (c->m) {
		struct strs t = {0};
		struct berr e;
		if (c->m->ops->image_tags(c->m, img->id, collect_str, &t, &e) == BERR_OK)
			c->tags_seen += t.n;
	}
	c->n++;
	return c->stop_after && c->n >= c->stop_after;
}

static void list_images(struct meta_fx *fx, int64_t repo_id, int64_t after, int64_t limit,
                        enum meta_tag_filter f, struct image_ids *c)
{
	assert_ok(OP(image_list, repo_id, after, limit, f, collect_image, c));
}

static void assert_ids(const struct image_ids *c, size_t n, const int64_t *want)
{
	assert_int_equal(c->n, n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(c->id[i], want[i]);
}

static void image_tags(struct meta_fx *fx, int64_t image_id, struct strs *out)
{
	memset(out, 0, sizeof(*out));
	assert_ok(OP(image_tags, image_id, collect_str, out));
}

static void assert_tags(struct meta_fx *fx, int64_t image_id, size_t n, const char *const *want)
{
	struct strs t;
	image_tags(fx, image_id, &t);
	if (t.n != n)
		fail_msg("image %lld has %zu tags, want %zu", (long long)image_id, t.n, n);
	for (size_t i = 0; i < n; i++)
		if (strcmp(t.v[i], want[i]) != 0)
			fail_msg("image %lld tag[%zu] = '%s', want '%s'", (long long)image_id, i,
			         t.v[i], want[i]);
}

static int64_t tag_count(struct meta_fx *fx, int64_t image_id)
{
	int64_t n = -1;
	assert_ok(OP(tag_count, image_id, &n));
	return n;
}

/* ------------------------------------------------------------------------------------------ */
/* metadata store: cases */

META_TEST(meta_migrate_fresh_and_reopen)
{
	int64_t id = put_repo(fx, "kept");
	if (fx->drv->schema_version) {
		int latest = fx->drv->schema_latest();
		assert_true(latest >= 1);
		assert_int_equal(fx->drv->schema_version(fx->h), latest);
	}
	/* Reopen twice: migrations are not re-applied and data survives. */
	for (int i = 0; i < 2; i++) {
		meta_close(fx->m);
		fx->m = NULL;
		assert_ok(fx->drv->connect(fx->h, &fx->m, &fx->err));
		struct meta_repo r = {0};
		assert_ok(OP(repo_get, ACCT, REGION, "kept", &r));
		assert_int_equal(r.id, id);
		meta_repo_clear(&r);
		if (fx->drv->schema_version)
			assert_int_equal(fx->drv->schema_version(fx->h), fx->drv->schema_latest());
	}
	/* A second live connection on a migrated store. */
	struct meta *m2 = NULL;
	assert_ok(fx->drv->connect(fx->h, &m2, &fx->err));
	assert_int_equal(count_repos(fx, m2, ACCT, REGION), 1);
	meta_close(m2);
}

struct opener_arg {
	const struct meta_opener *drv;
	void *h;
	atomic_int *go;
	enum berr_code rc;
	char msg[512];
	struct meta *m;
};

static void *concurrent_open_main(void *arg)
{
	struct opener_arg *a = arg;
	struct berr e;
	err_clear(&e);
	while (!atomic_load(a->go))
		;
	a->rc = a->drv->connect(a->h, &a->m, &e);
	snprintf(a->msg, sizeof(a->msg), "%s", e.msg);
	return NULL;
}

META_TEST(meta_migrate_concurrent_first_open)
{
	/* Several processes (threads here) opening a brand-new store at once must all succeed and
	 * agree on the schema. The fixture's own store is already migrated, so use a second one. */
	void *h = fx->drv->create();
	assert_non_null(h);
	atomic_int go = 0;
	struct opener_arg a[4];
	pthread_t th[4];
	for (int i = 0; i < 4; i++) {
		a[i] = (struct opener_arg){.drv = fx->drv, .h = h, .go = &go, .rc = BERR_INTERNAL};
		assert_int_equal(pthread_create(&th[i], NULL, concurrent_open_main, &a[i]), 0);
	}
	atomic_store(&go, 1);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	int failures = 0;
	for (int i = 0; i < 4; i++) {
		if (a[i].rc != BERR_OK) {
			print_error("connect %d: %s: %s\n", i, err_name(a[i].rc), a[i].msg);
			failures++;
		}
	}
	if (a[0].m) {
		struct meta_repo r = repo_tmpl(ACCT, REGION, "after-race");
		assert_ok(CALL(a[0].m, repo_insert, &r));
	}
	for (int i = 0; i < 4; i++)
		meta_close(a[i].m);
	if (fx->drv->schema_version && failures == 0)
		assert_int_equal(fx->drv->schema_version(h), fx->drv->schema_latest());
	fx->drv->destroy(h);
	assert_int_equal(failures, 0);
}

META_TEST(meta_repo_insert_get)
{
	struct meta_repo r = repo_tmpl(ACCT, REGION, "team/app");
	r.mutability = (char *)"IMMUTABLE_WITH_EXCLUSION";
	r.mutability_filters = (char *)"[{\"filterType\":\"WILDCARD\",\"filter\":\"latest\"}]";
	r.scan_on_push = true;
	r.encryption_type = (char *)"KMS";
	r.kms_key = (char *)"arn:aws:kms:us-east-1:111122223333:key/k";
	r.resource_tags =
	    (char *)"[{\"Key\":\"b\",\"Value\":\"2\"},{\"Key\":\"a\",\"Value\":\"1\"}]";
	r.policy = (char *)"{\"Version\":\"2012-10-17\"}";
	r.lifecycle_policy = (char *)"{\"rules\":[]}";
	r.lifecycle_evaluated_at = 1700000000999;
	assert_ok(OP(repo_insert, &r));
	assert_true(r.id > 0);

	struct meta_repo g = {0};
	assert_ok(OP(repo_get, ACCT, REGION, "team/app", &g));
	assert_int_equal(g.id, r.id);
	assert_string_equal(g.account, ACCT);
	assert_string_equal(g.region, REGION);
	assert_string_equal(g.name, "team/app");
	assert_int_equal(g.created_at, r.created_at);
	assert_string_equal(g.mutability, r.mutability);
	assert_string_equal(g.mutability_filters, r.mutability_filters);
	assert_true(g.scan_on_push);
	assert_string_equal(g.encryption_type, "KMS");
	assert_string_equal(g.kms_key, r.kms_key);
	assert_string_equal(g.resource_tags, r.resource_tags);
	assert_string_equal(g.policy, r.policy);
	assert_string_equal(g.lifecycle_policy, r.lifecycle_policy);
	assert_int_equal(g.lifecycle_evaluated_at, r.lifecycle_evaluated_at);
	meta_repo_clear(&g);

	/* Optional fields left NULL come back NULL. */
	int64_t id2 = put_repo(fx, "plain");
	assert_true(id2 > r.id);
	assert_ok(OP(repo_get, ACCT, REGION, "plain", &g));
	assert_null(g.mutability_filters);
	assert_null(g.kms_key);
	assert_null(g.resource_tags);
	assert_null(g.policy);
	assert_null(g.lifecycle_policy);
	assert_false(g.scan_on_push);
	meta_repo_clear(&g);

	/* Lookups are per (account, region, name). */
	assert_err(OP(repo_get, ACCT, REGION, "missing", &g), BERR_NOT_FOUND);
	assert_err(OP(repo_get, ACCT2, REGION, "plain", &g), BERR_NOT_FOUND);
	assert_err(OP(repo_get, ACCT, REGION2, "plain", &g), BERR_NOT_FOUND);
	assert_err(OP(repo_get, ACCT, REGION, "PLAIN", &g), BERR_NOT_FOUND);
}

META_TEST(meta_repo_duplicate_conflict)
{
	int64_t id = put_repo(fx, "dup");
	struct meta_repo r = repo_tmpl(ACCT, REGION, "dup");
	assert_err(OP(repo_insert, &r), BERR_CONFLICT);
	/* The same name in another account or region is a different repository. */
	int64_t a2 = put_repo_in(fx, ACCT2, REGION, "dup");
	int64_t r2 = put_repo_in(fx, ACCT, REGION2, "dup");
	assert_true(a2 != id && r2 != id && a2 != r2);
	/* The failed insert did not disturb the original. */
	struct meta_repo g = {0};
	assert_ok(OP(repo_get, ACCT, REGION, "dup", &g));
	assert_int_equal(g.id, id);
	meta_repo_clear(&g);
}

META_TEST(meta_repo_update)
{
	int64_t id = put_repo(fx, "upd");
	int64_t other = put_repo(fx, "other");
	struct meta_repo r = {0};
	assert_ok(OP(repo_get, ACCT, REGION, "upd", &r));
	struct meta_repo u = r;
	u.mutability = (char *)"IMMUTABLE";
	u.mutability_filters = (char *)"[]";
	u.scan_on_push = true;
	u.encryption_type = (char *)"KMS_DSSE";
	u.kms_key = (char *)"key-1";
	u.resource_tags = (char *)"[{\"Key\":\"k\",\"Value\":\"v\"}]";
	u.policy = (char *)"{\"p\":1}";
	u.lifecycle_policy = (char *)"{\"rules\":[1]}";
	u.lifecycle_evaluated_at = 42;
	assert_ok(OP(repo_update, &u));

	struct meta_repo g = {0};
	assert_ok(OP(repo_get, ACCT, REGION, "upd", &g));
	assert_int_equal(g.id, id);
	assert_string_equal(g.name, "upd");
	assert_int_equal(g.created_at, r.created_at);
	assert_string_equal(g.mutability, "IMMUTABLE");
	assert_string_equal(g.mutability_filters, "[]");
	assert_true(g.scan_on_push);
	assert_string_equal(g.encryption_type, "KMS_DSSE");
	assert_string_equal(g.kms_key, "key-1");
	assert_string_equal(g.resource_tags, u.resource_tags);
	assert_string_equal(g.policy, "{\"p\":1}");
	assert_string_equal(g.lifecycle_policy, "{\"rules\":[1]}");
	assert_int_equal(g.lifecycle_evaluated_at, 42);
	meta_repo_clear(&g);

	/* Clearing optional fields back to NULL. */
	u.policy = NULL;
	u.kms_key = NULL;
	u.resource_tags = NULL;
	assert_ok(OP(repo_update, &u));
	assert_ok(OP(repo_get, ACCT, REGION, "upd", &g));
	assert_null(g.policy);
	assert_null(g.kms_key);
	assert_null(g.resource_tags);
	meta_repo_clear(&g);
	meta_repo_clear(&r);

	/* Other repositories are untouched. */
	assert_ok(OP(repo_get, ACCT, REGION, "other", &g));
	assert_int_equal(g.id, other);
	assert_string_equal(g.mutability, "MUTABLE");
	assert_null(g.policy);
	meta_repo_clear(&g);
}

META_TEST(meta_repo_list_pagination)
{
	int64_t ids[7];
	char name[32];
	for (int i = 0; i < 7; i++) {
		snprintf(name, sizeof(name), "r%d", i);
		ids[i] = put_repo(fx, name);
		/* interleave repositories of other registries */
		snprintf(name, sizeof(name), "x%d", i);
		put_repo_in(fx, ACCT2, REGION, name);
		if (i % 2)
			put_repo_in(fx, ACCT, REGION2, name);
	}
	/* Pages of 3 following after_id. */
	struct repo_ids all = {0};
	int64_t after = 0;
	for (int page = 0; page < 10; page++) {
		struct repo_ids c = {0};
		assert_ok(OP(repo_list, ACCT, REGION, after, 3, collect_repo, &c));
		if (c.n == 0)
			break;
		assert_true(c.n <= 3);
		for (size_t i = 0; i < c.n; i++) {
			all.id[all.n] = c.id[i];
			snprintf(all.name[all.n], sizeof(all.name[0]), "%s", c.name[i]);
			all.n++;
		}
		after = c.id[c.n - 1];
	}
	assert_int_equal(all.n, 7);
	for (int i = 0; i < 7; i++) {
		snprintf(name, sizeof(name), "r%d", i);
		assert_int_equal(all.id[i], ids[i]);
		assert_string_equal(all.name[i], name);
	}

	/* after_id in the middle; limit larger than what is left. */
	struct repo_ids c = {0};
	assert_ok(OP(repo_list, ACCT, REGION, ids[4], 100, collect_repo, &c));
	assert_int_equal(c.n, 2);
	assert_int_equal(c.id[0], ids[5]);
	assert_int_equal(c.id[1], ids[6]);

	/* Registries are isolated. */
	assert_int_equal(count_repos(fx, fx->m, ACCT2, REGION), 7);
	assert_int_equal(count_repos(fx, fx->m, ACCT, REGION2), 3);
	assert_int_equal(count_repos(fx, fx->m, ACCT2, REGION2), 0);

	/* A callback returning non-zero stops the iteration without an error. */
	struct repo_ids s = {.stop_after = 2};
	assert_ok(OP(repo_list, ACCT, REGION, 0, 100, collect_repo, &s));
	assert_int_equal(s.n, 2);
}

META_TEST(meta_repo_delete_cascade)
{
	int64_t repo = put_repo(fx, "doomed");
	int64_t keep = put_repo(fx, "kept");
	char layer[DIGEST_STR_LEN], child[DIGEST_STR_LEN];
	digest_of("layer", layer);
	digest_of("child", child);
	assert_ok(blob_put(fx, layer, 5));

	char d1[DIGEST_STR_LEN], d2[DIGEST_STR_LEN];
	const struct meta_ref refs[] = {
	    {META_REF_BLOB, layer, "application/vnd.oci.image.layer.v1.tar+gzip", 5},
	    {META_REF_MANIFEST, child, "application/vnd.oci.image.manifest.v1+json", 10},
	};
	digest_of("img1", d1);
	int64_t i1 = put_image_refs(fx, repo, d1, "img1", 4, 1, refs, ARRAY_LEN(refs));
	int64_t i2 = put_image(fx, repo, "img2", d2);
	assert_ok(OP(tag_set, repo, "latest", i1));
	assert_ok(OP(tag_set, repo, "v2", i2));
	assert_ok(OP(repo_blob_link, repo, layer));
	char up[37];
	uuid_v4(up);
	struct meta_upload u = {.repo_id = repo, .created_at = 1, .updated_at = 1};
	memcpy(u.id, up, sizeof(up));
	assert_ok(OP(upload_insert, &u));

	/* The kept repository shares the digest and has its own tag. */
	int64_t k1 = put_image(fx, keep, "img1", NULL);
	assert_ok(OP(tag_set, keep, "latest", k1));
	assert_ok(OP(repo_blob_link, keep, layer));

	assert_ok(OP(repo_delete, repo));

	struct meta_repo r = {0};
	assert_err(OP(repo_get, ACCT, REGION, "doomed", &r), BERR_NOT_FOUND);
	struct meta_image img = {0};
	assert_err(OP(image_get, repo, d1, false, &img), BERR_NOT_FOUND);
	assert_err(OP(image_get, repo, d2, true, &img), BERR_NOT_FOUND);
	assert_err(OP(image_get_by_tag, repo, "latest", false, &img), BERR_NOT_FOUND);
	assert_err(OP(image_get_by_tag, repo, "v2", false, &img), BERR_NOT_FOUND);
	int64_t n = -1;
	assert_ok(OP(repo_image_count, repo, &n));
	assert_int_equal(n, 0);
	assert_int_equal(tag_count(fx, i1), 0);
	assert_int_equal(tag_count(fx, i2), 0);
	struct strs ch = {0};
	assert_ok(OP(image_children, i1, collect_str, &ch));
	assert_int_equal(ch.n, 0);
	bool is_child = true;
	assert_ok(OP(image_is_child, repo, child, &is_child));
	assert_false(is_child);
	int64_t sz;
	char *mt = NULL;
	bool refd;
	assert_err(repo_blob_size(fx, repo, layer, &sz, &mt, &refd), BERR_NOT_FOUND);
	assert_null(mt);
	struct meta_upload g = {0};
	assert_err(OP(upload_get, up, &g), BERR_NOT_FOUND);
	struct image_ids c = {0};
	list_images(fx, repo, 0, 100, META_TAGS_ANY, &c);
	assert_int_equal(c.n, 0);

	/* The global blob registry and the other repository are untouched. */
	assert_ok(blob_size(fx, layer, &sz));
	assert_int_equal(sz, 5);
	assert_ok(OP(image_get_by_tag, keep, "latest", false, &img));
	assert_int_equal(img.id, k1);
	meta_image_clear(&img);
	assert_ok(repo_blob_size(fx, keep, layer, &sz, NULL, &refd));
	assert_false(refd);

	/* A new repository with the same name starts empty. */
	int64_t again = put_repo(fx, "doomed");
	assert_true(again != repo);
	assert_err(OP(image_get_by_tag, again, "latest", false, &img), BERR_NOT_FOUND);
	assert_ok(OP(repo_image_count, again, &n));
	assert_int_equal(n, 0);
}

META_TEST(meta_repo_image_count)
{
	int64_t a = put_repo(fx, "a");
	int64_t b = put_repo(fx, "b");
	int64_t n = -1;
	assert_ok(OP(repo_image_count, a, &n));
	assert_int_equal(n, 0);
	put_image(fx, a, "1", NULL);
	put_image(fx, a, "2", NULL);
	put_image(fx, b, "1", NULL);
	assert_ok(OP(repo_image_count, a, &n));
	assert_int_equal(n, 2);
	assert_ok(OP(repo_image_count, b, &n));
	assert_int_equal(n, 1);
}

/* Manifest bytes with whitespace a JSON re-encoder would normalize, non-ASCII and a NUL. */
static const char odd_manifest[] = "\xef\xbb\xbf{ \t\"schemaVersion\" :2,\r\n\t\"mediaType\":"
                                   "\"application/vnd.oci.image.manifest.v1+json\" ,\n\n"
                                   "  \"annotations\": {\"k\": \"caf\xc3\xa9 \\u00e9\"}\f\v"
                                   " }\r\n \t \0tail";

META_TEST(meta_image_insert_get)
{
	int64_t repo = put_repo(fx, "img");
	int64_t other = put_repo(fx, "other");
	const size_t len = sizeof(odd_manifest) - 1; /* includes the embedded NUL */
	char d[DIGEST_STR_LEN], layer[DIGEST_STR_LEN], cfg[DIGEST_STR_LEN], subj[DIGEST_STR_LEN];
	sha256_digest_str(odd_manifest, len, d);
	digest_of("layer", layer);
	digest_of("config", cfg);
	digest_of("subject", subj);
	const struct meta_ref refs[] = {
	    {META_REF_BLOB, cfg, "application/vnd.oci.image.config.v1+json", 7},
	    {META_REF_BLOB, layer, "application/vnd.oci.image.layer.v1.tar+gzip", 1 << 20},
	};
	struct meta_image in = {0};
	in.repo_id = repo;
	in.digest = d;
	in.media_type = (char *)"application/vnd.oci.image.manifest.v1+json";
	in.artifact_type = (char *)"application/vnd.example+type";
	in.subject = subj;
	in.manifest = (char *)odd_manifest;
	in.manifest_len = len;
	in.size = 1048583;
	in.pushed_at = 1700000000456;
	assert_ok(OP(image_insert, &in, refs, ARRAY_LEN(refs)));
	assert_true(in.id > 0);

	struct meta_image g = {0};
	assert_ok(OP(image_get, repo, d, true, &g));
	assert_int_equal(g.id, in.id);
	assert_int_equal(g.repo_id, repo);
	assert_string_equal(g.digest, d);
	assert_string_equal(g.media_type, in.media_type);
	assert_string_equal(g.artifact_type, in.artifact_type);
	assert_string_equal(g.subject, subj);
	assert_int_equal(g.size, in.size);
	assert_int_equal(g.pushed_at, in.pushed_at);
	assert_int_equal(g.pulled_at, 0);
	assert_string_equal(g.status, "ACTIVE");
	assert_non_null(g.manifest);
	assert_int_equal(g.manifest_len, len);
	assert_memory_equal(g.manifest, odd_manifest, len);
	assert_int_equal(g.manifest[len], '\0'); /* NUL-terminated copy */
	meta_image_clear(&g);

	/* Without the manifest: same row, no bytes. */
	assert_ok(OP(image_get, repo, d, false, &g));
	assert_int_equal(g.id, in.id);
	assert_null(g.manifest);
	assert_int_equal(g.manifest_len, 0);
	assert_string_equal(g.digest, d);
	assert_int_equal(g.size, in.size);
	meta_image_clear(&g);

	/* By tag, with and without bytes. */
	assert_ok(OP(tag_set, repo, "odd", in.id));
	assert_ok(OP(image_get_by_tag, repo, "odd", true, &g));
	assert_int_equal(g.id, in.id);
	assert_int_equal(g.manifest_len, len);
	assert_memory_equal(g.manifest, odd_manifest, len);
	meta_image_clear(&g);
	assert_ok(OP(image_get_by_tag, repo, "odd", false, &g));
	assert_int_equal(g.id, in.id);
	assert_null(g.manifest);
	assert_string_equal(g.digest, d);
	meta_image_clear(&g);

	/* Optional columns NULL. */
	char d2[DIGEST_STR_LEN];
	int64_t i2 = put_image(fx, repo, "{}", d2);
	assert_ok(OP(image_get, repo, d2, true, &g));
	assert_int_equal(g.id, i2);
	assert_null(g.artifact_type);
	assert_null(g.subject);
	assert_int_equal(g.manifest_len, 2);
	assert_memory_equal(g.manifest, "{}", 2);
	meta_image_clear(&g);

	/* Not found: unknown digest, unknown tag, tag or digest of another repository. */
	char nope[DIGEST_STR_LEN];
	digest_of("nope", nope);
	assert_err(OP(image_get, repo, nope, true, &g), BERR_NOT_FOUND);
	assert_err(OP(image_get_by_tag, repo, "missing", true, &g), BERR_NOT_FOUND);
	assert_err(OP(image_get, other, d, true, &g), BERR_NOT_FOUND);
	assert_err(OP(image_get_by_tag, other, "odd", false, &g), BERR_NOT_FOUND);
	/* A tag is not a digest and vice versa. */
	assert_err(OP(image_get_by_tag, repo, d, false, &g), BERR_NOT_FOUND);
	assert_err(OP(image_get, repo, "odd", false, &g), BERR_NOT_FOUND);

	/* Same digest twice in one repository conflicts; in another repository it is fine. */
	struct meta_image dup = in;
	dup.id = 0;
	assert_err(OP(image_insert, &dup, NULL, 0), BERR_CONFLICT);
	dup.repo_id = other;
	assert_ok(OP(image_insert, &dup, refs, ARRAY_LEN(refs)));
	assert_true(dup.id != in.id);
	int64_t n;
	assert_ok(OP(repo_image_count, repo, &n));
	assert_int_equal(n, 2);
}

META_TEST(meta_image_delete)
{
	int64_t repo = put_repo(fx, "del");
	char child[DIGEST_STR_LEN], d[DIGEST_STR_LEN];
	digest_of("child", child);
	const struct meta_ref refs[] = {{META_REF_MANIFEST, child, NULL, 3}};
	digest_of("index", d);
	int64_t idx = put_image_refs(fx, repo, d, "index", 5, 1, refs, 1);
	int64_t other = put_image(fx, repo, "other", NULL);
	assert_ok(OP(tag_set, repo, "a", idx));
	assert_ok(OP(tag_set, repo, "b", other));
	assert_ok(OP(image_delete, idx));
	struct meta_image g = {0};
	assert_err(OP(image_get, repo, d, false, &g), BERR_NOT_FOUND);
	assert_err(OP(image_get_by_tag, repo, "a", false, &g), BERR_NOT_FOUND);
	assert_int_equal(tag_count(fx, idx), 0);
	bool is_child = true;
	assert_ok(OP(image_is_child, repo, child, &is_child));
	assert_false(is_child);
	assert_ok(OP(image_get_by_tag, repo, "b", false, &g));
	assert_int_equal(g.id, other);
	meta_image_clear(&g);
	/* The tag freed by the delete can be reused. */
	assert_ok(OP(tag_set, repo, "a", other));
	const char *const want[] = {"b", "a"};
	assert_tags(fx, other, 2, want);
}

META_TEST(meta_tag_set_move_order)
{
	int64_t repo = put_repo(fx, "tags");
	int64_t a = put_image(fx, repo, "A", NULL);
	int64_t b = put_image(fx, repo, "B", NULL);

	assert_ok(OP(tag_set, repo, "t1", a));
	assert_ok(OP(tag_set, repo, "t2", b));
	assert_ok(OP(tag_set, repo, "t3", a));
	assert_ok(OP(tag_set, repo, "t4", a));
	const char *const a1[] = {"t1", "t3", "t4"};
	assert_tags(fx, a, 3, a1);
	const char *const b1[] = {"t2"};
	assert_tags(fx, b, 1, b1);

	/* Move t1 to b: it leaves a and goes after b's existing tags. */
	assert_ok(OP(tag_set, repo, "t1", b));
	const char *const a2[] = {"t3", "t4"};
	assert_tags(fx, a, 2, a2);
	const char *const b2[] = {"t2", "t1"};
	assert_tags(fx, b, 2, b2);
	struct meta_image g = {0};
	assert_ok(OP(image_get_by_tag, repo, "t1", false, &g));
	assert_int_equal(g.id, b);
	meta_image_clear(&g);

	/* Move it back: attached last, not at its old place. */
	assert_ok(OP(tag_set, repo, "t1", a));
	const char *const a3[] = {"t3", "t4", "t1"};
	assert_tags(fx, a, 3, a3);
	assert_tags(fx, b, 1, b1);

	/* Re-setting a tag on the image it already names gives it a new sequence number too. */
	assert_ok(OP(tag_set, repo, "t3", a));
	const char *const a4[] = {"t4", "t1", "t3"};
	assert_tags(fx, a, 3, a4);

	/* Sequence numbers are not reused after the newest tag is deleted. */
	assert_ok(OP(tag_delete, repo, "t3"));
	assert_ok(OP(tag_set, repo, "t5", a));
	const char *const a5[] = {"t4", "t1", "t5"};
	assert_tags(fx, a, 3, a5);

	/* Tags are per repository: the same name elsewhere is independent. */
	int64_t repo2 = put_repo(fx, "tags2");
	int64_t c = put_image(fx, repo2, "A", NULL);
	assert_ok(OP(tag_set, repo2, "t1", c));
	assert_ok(OP(image_get_by_tag, repo, "t1", false, &g));
	assert_int_equal(g.id, a);
	meta_image_clear(&g);
	assert_int_equal(tag_count(fx, a), 3);
	assert_int_equal(tag_count(fx, c), 1);

	/* Pointing a tag at an image that does not exist is refused. */
	assert_err(OP(tag_set, repo, "ghost", 999999), BERR_CONFLICT);
	assert_err(OP(image_get_by_tag, repo, "ghost", false, &g), BERR_NOT_FOUND);
}

static int64_t tags_version(struct meta_fx *fx, const char *name)
{
	struct meta_repo r = {0};
	assert_ok(OP(repo_get, ACCT, REGION, name, &r));
	int64_t v = r.tags_version;
	meta_repo_clear(&r);
	return v;
}

/* tags_version changes with the set of tag names (the tags/list cache's key), and only then. */
META_TEST(meta_tags_version)
{
	int64_t repo = put_repo(fx, "ver");
	int64_t other = put_repo(fx, "ver2");
	int64_t a = put_image(fx, repo, "A", NULL);
	int64_t b = put_image(fx, repo, "B", NULL);
	int64_t c = put_image(fx, other, "C", NULL);
	int64_t v0 = tags_version(fx, "ver");
	assert_ok(OP(tag_set, repo, "t1", a));
	int64_t v1 = tags_version(fx, "ver");
	assert_true(v1 != v0);
	assert_ok(OP(tag_set, repo, "t1", b));  /* a move: same names */
	assert_ok(OP(tag_set, other, "t1", c)); /* another repository */
	assert_int_equal(tags_version(fx, "ver"), v1);
	assert_ok(OP(tag_delete, repo, "t1"));
	int64_t v2 = tags_version(fx, "ver");
	assert_true(v2 != v1);
	assert_ok(OP(tag_set, repo, "t2", a));
	int64_t v3 = tags_version(fx, "ver");
	assert_true(v3 != v2);
	assert_ok(OP(image_delete, a)); /* its tags go with it */
	assert_true(tags_version(fx, "ver") != v3);
}

META_TEST(meta_tag_delete_count)
{
	int64_t repo = put_repo(fx, "tags");
	int64_t a = put_image(fx, repo, "A", NULL);
	int64_t b = put_image(fx, repo, "B", NULL);
	assert_int_equal(tag_count(fx, a), 0);
	assert_ok(OP(tag_set, repo, "x", a));
	assert_ok(OP(tag_set, repo, "y", a));
	assert_ok(OP(tag_set, repo, "z", b));
	assert_int_equal(tag_count(fx, a), 2);
	assert_int_equal(tag_count(fx, b), 1);

	assert_ok(OP(tag_delete, repo, "x"));
	assert_int_equal(tag_count(fx, a), 1);
	struct meta_image g = {0};
	assert_err(OP(image_get_by_tag, repo, "x", false, &g), BERR_NOT_FOUND);
	/* The image stays; only the tag goes. */
	assert_ok(OP(image_get_by_tag, repo, "y", false, &g));
	assert_int_equal(g.id, a);
	meta_image_clear(&g);

	/* Deleting a tag that does not exist is not an error and changes nothing. */
	assert_ok(OP(tag_delete, repo, "x"));
	assert_ok(OP(tag_delete, repo, "never"));
	/* Deleting in another repository does not touch this one. */
	int64_t repo2 = put_repo(fx, "tags2");
	assert_ok(OP(tag_delete, repo2, "z"));
	assert_int_equal(tag_count(fx, b), 1);

	assert_ok(OP(tag_delete, repo, "y"));
	assert_ok(OP(tag_delete, repo, "z"));
	assert_int_equal(tag_count(fx, a), 0);
	assert_int_equal(tag_count(fx, b), 0);
	int64_t n;
	assert_ok(OP(repo_image_count, repo, &n));
	assert_int_equal(n, 2);
}

META_TEST(meta_image_list_filters)
{
	int64_t repo = put_repo(fx, "list");
	int64_t other = put_repo(fx, "other");
	int64_t id[6];
	char seed[16];
	for (int i = 0; i < 6; i++) {
		snprintf(seed, sizeof(seed), "m%d", i);
		id[i] = put_image(fx, repo, seed, NULL);
		put_image(fx, other, seed, NULL); /* interleaved ids of another repository */
	}
	/* tagged: 0 (two tags), 2, 5; untagged: 1, 3, 4 */
	assert_ok(OP(tag_set, repo, "a", id[0]));
	assert_ok(OP(tag_set, repo, "b", id[0]));
	assert_ok(OP(tag_set, repo, "c", id[2]));
	assert_ok(OP(tag_set, repo, "d", id[5]));
	/* a tag moved away leaves its image untagged */
	assert_ok(OP(tag_set, repo, "e", id[3]));
	assert_ok(OP(tag_set, repo, "e", id[5]));

	struct image_ids c = {0};
	list_images(fx, repo, 0, 100, META_TAGS_ANY, &c);
	assert_ids(&c, 6, id);
	assert_false(c.manifest_loaded);

	const int64_t tagged[] = {id[0], id[2], id[5]};
	memset(&c, 0, sizeof(c));
	list_images(fx, repo, 0, 100, META_TAGS_TAGGED, &c);
	assert_ids(&c, 3, tagged);

	const int64_t untagged[] = {id[1], id[3], id[4]};
	memset(&c, 0, sizeof(c));
	list_images(fx, repo, 0, 100, META_TAGS_UNTAGGED, &c);
	assert_ids(&c, 3, untagged);

	/* Pagination composes with the filters. */
	memset(&c, 0, sizeof(c));
	list_images(fx, repo, 0, 2, META_TAGS_ANY, &c);
	assert_ids(&c, 2, id);
	memset(&c, 0, sizeof(c));
	list_images(fx, repo, id[1], 2, META_TAGS_ANY, &c);
	assert_ids(&c, 2, id + 2);
	memset(&c, 0, sizeof(c));
	list_images(fx, repo, id[0], 1, META_TAGS_TAGGED, &c);
	assert_ids(&c, 1, tagged + 1);
	memset(&c, 0, sizeof(c));
	list_images(fx, repo, id[2], 100, META_TAGS_TAGGED, &c);
	assert_ids(&c, 1, tagged + 2);
	memset(&c, 0, sizeof(c));
	list_images(fx, repo, id[1], 1, META_TAGS_UNTAGGED, &c);
	assert_ids(&c, 1, untagged + 1);
	memset(&c, 0, sizeof(c));
	list_images(fx, repo, id[5], 100, META_TAGS_ANY, &c);
	assert_int_equal(c.n, 0);

	/* Early stop, and callbacks may use the same connection. */
	memset(&c, 0, sizeof(c));
	c.stop_after = 2;
	list_images(fx, repo, 0, 100, META_TAGS_ANY, &c);
	assert_int_equal(c.n, 2);
	memset(&c, 0, sizeof(c));
	c.m = fx->m;
	list_images(fx, repo, 0, 100, META_TAGS_ANY, &c);
	assert_int_equal(c.n, 6);
	assert_int_equal(c.tags_seen, 5);

	/* An empty repository lists nothing under every filter. */
	int64_t empty = put_repo(fx, "empty");
	for (int f = META_TAGS_ANY; f <= META_TAGS_UNTAGGED; f++) {
		memset(&c, 0, sizeof(c));
		list_images(fx, empty, 0, 100, (enum meta_tag_filter)f, &c);
		assert_int_equal(c.n, 0);
	}
}

META_TEST(meta_image_children_is_child)
{
	int64_t repo = put_repo(fx, "idx");
	int64_t repo2 = put_repo(fx, "idx2");
	char c1[DIGEST_STR_LEN], c2[DIGEST_STR_LEN], blob[DIGEST_STR_LEN], d[DIGEST_STR_LEN];
	digest_of("child-1", c1);
	digest_of("child-2", c2);
	digest_of("blob", blob);
	const struct meta_ref refs[] = {
	    {META_REF_MANIFEST, c1, "application/vnd.oci.image.manifest.v1+json", 100},
	    {META_REF_BLOB, blob, "application/vnd.oci.image.layer.v1.tar", 5},
	    {META_REF_MANIFEST, c2, "application/vnd.oci.image.manifest.v1+json", 200},
	};
	digest_of("index", d);
	int64_t idx = put_image_refs(fx, repo, d, "index", 5, 1, refs, ARRAY_LEN(refs));
	int64_t plain = put_image(fx, repo, "plain", NULL);

	bool v = false;
	assert_ok(OP(image_is_child, repo, c1, &v));
	assert_true(v);
	v = false;
	assert_ok(OP(image_is_child, repo, c2, &v));
	assert_true(v);
	v = true;
	assert_ok(OP(image_is_child, repo, blob, &v)); /* a blob ref is not a child manifest */
	assert_false(v);
	v = true;
	assert_ok(OP(image_is_child, repo, d, &v));
	assert_false(v);
	v = true;
	assert_ok(OP(image_is_child, repo2, c1, &v)); /* per repository */
	assert_false(v);

	struct strs ch = {0};
	assert_ok(OP(image_children, idx, collect_str, &ch));
	assert_int_equal(ch.n, 2);
	assert_true(strs_has(&ch, c1));
	assert_true(strs_has(&ch, c2));
	memset(&ch, 0, sizeof(ch));
	assert_ok(OP(image_children, plain, collect_str, &ch));
	assert_int_equal(ch.n, 0);
	memset(&ch, 0, sizeof(ch));
	ch.stop_after = 1;
	assert_ok(OP(image_children, idx, collect_str, &ch));
	assert_int_equal(ch.n, 1);
}

static int64_t pulled_at(struct meta_fx *fx, int64_t repo, const char *digest)
{
	struct meta_image g = {0};
	assert_ok(OP(image_get, repo, digest, false, &g));
	int64_t v = g.pulled_at;
	meta_image_clear(&g);
	return v;
}

META_TEST(meta_image_touch_pull)
{
	int64_t repo = put_repo(fx, "pull");
	char d[DIGEST_STR_LEN], d2[DIGEST_STR_LEN];
	int64_t id = put_image(fx, repo, "x", d);
	put_image(fx, repo, "y", d2);
	assert_int_equal(pulled_at(fx, repo, d), 0);
	assert_ok(OP(image_touch_pull, id, 1700000001000));
	assert_int_equal(pulled_at(fx, repo, d), 1700000001000);
	assert_ok(OP(image_touch_pull, id, 1700000000500)); /* older: ignored */
	assert_int_equal(pulled_at(fx, repo, d), 1700000001000);
	assert_ok(OP(image_touch_pull, id, 1700000001000)); /* equal: no change */
	assert_int_equal(pulled_at(fx, repo, d), 1700000001000);
	assert_ok(OP(image_touch_pull, id, 1700000002000));
	assert_int_equal(pulled_at(fx, repo, d), 1700000002000);
	assert_int_equal(pulled_at(fx, repo, d2), 0); /* other images untouched */
}

/* Collects blob rows (meta_blob_fn). */
struct blobs {
	struct meta_blob v[16];
	size_t n;
};

static int collect_blob(void *ctx, const struct meta_blob *b)
{
	struct blobs *l = ctx;
	if (l->n < ARRAY_LEN(l->v))
		l->v[l->n++] = *b;
	return 0;
}

META_TEST(meta_blob_rows)
{
	char d[DIGEST_STR_LEN], gen[UUID_STR_LEN], other[UUID_STR_LEN];
	digest_of("blob", d);
	uuid_v4(gen);
	uuid_v4(other);
	struct meta_blob b = {.size = 4}, got = {0};
	snprintf(b.digest, sizeof(b.digest), "%s", d);
	snprintf(b.gen, sizeof(b.gen), "%s", gen);
	assert_err(OP(blob_get, d, &got), BERR_NOT_FOUND);
	assert_ok(OP(blob_insert, &b));
	assert_ok(OP(blob_get, d, &got));
	assert_string_equal(got.digest, d);
	assert_string_equal(got.gen, gen);
	assert_int_equal(got.size, 4);
	assert_ok(OP(blob_get, d, NULL));
	/* One row per digest: a second one is a conflict, the first stays. */
	struct meta_blob again = b;
	again.size = 99;
	snprintf(again.gen, sizeof(again.gen), "%s", other);
	assert_err(OP(blob_insert, &again), BERR_CONFLICT);
	assert_ok(OP(blob_get, d, &got));
	assert_string_equal(got.gen, gen);
	assert_int_equal(got.size, 4);
	/* Inside a transaction too; gen "" (files named before generations). */
	char d2[DIGEST_STR_LEN];
	digest_of("blob2", d2);
	txn_begin(fx, fx->m);
	assert_ok(blob_put(fx, d2, 0));
	txn_commit(fx, fx->m);
	assert_ok(OP(blob_get, d2, &got));
	assert_string_equal(got.gen, "");
	assert_int_equal(got.size, 0);
	struct blobs l = {0};
	assert_ok(OP(blob_list, NULL, 10, collect_blob, &l));
	assert_int_equal(l.n, 2);
	bool first = strcmp(d, d2) < 0;
	assert_string_equal(l.v[first ? 0 : 1].gen, gen);
	assert_string_equal(l.v[first ? 1 : 0].gen, "");
}

/* A blob row (digest of seed) with a fresh gen; *gen receives it. */
static void put_gen_blob(struct meta_fx *fx, const char *seed, char digest[DIGEST_STR_LEN],
                         char gen[UUID_STR_LEN])
{
	struct meta_blob b = {.size = 10};
	digest_of(seed, digest);
	uuid_v4(gen);
	snprintf(b.digest, sizeof(b.digest), "%s", digest);
	snprintf(b.gen, sizeof(b.gen), "%s", gen);
	assert_ok(OP(blob_insert, &b));
}

static bool owned(struct meta_fx *fx, const char *digest, const char *gen)
{
	bool o = false;
	assert_ok(OP(blob_file_owned, digest, gen, &o));
	return o;
}

/* The ownership contract gc.c relies on: a row moves to the trash only if it still names the
 * file and (with a rule) is still garbage, re-checked by the call itself. */
META_TEST(meta_blob_trash)
{
	int64_t repo = put_repo(fx, "trash");
	int64_t now = clock_now_ms();
	const struct meta_garbage fresh_links_protect = {now + 60000, now - 60000};
	const struct meta_garbage any_link_old = {now + 60000, now + 60000};
	const struct meta_garbage too_young = {now - 60000, now + 60000};
	char x[DIGEST_STR_LEN], xg[UUID_STR_LEN], stranger[UUID_STR_LEN];
	put_gen_blob(fx, "x", x, xg);
	uuid_v4(stranger);
	assert_ok(OP(repo_blob_link, repo, x));
	assert_true(owned(fx, x, xg));
	assert_false(owned(fx, x, stranger));
	assert_false(owned(fx, x, ""));

	bool moved = true;
	txn_begin(fx, fx->m);
	/* linked within the window: not garbage */
	assert_ok(OP(blob_trash, x, xg, &fresh_links_protect, &moved));
	assert_false(moved);
	/* created within the window: not garbage */
	assert_ok(OP(blob_trash, x, xg, &too_young, &moved));
	assert_false(moved);
	/* the row names another file: nothing happens */
	assert_ok(OP(blob_trash, x, stranger, &any_link_old, &moved));
	assert_false(moved);
	assert_ok(OP(blob_trash, x, xg, &any_link_old, &moved));
	assert_true(moved);
	txn_commit(fx, fx->m);
	assert_err(OP(blob_get, x, NULL), BERR_NOT_FOUND);
	assert_err(OP(repo_blob_get, repo, x, NULL, NULL, NULL), BERR_NOT_FOUND);
	assert_true(owned(fx, x, xg)); /* by the trash now */
	struct blobs l = {0};
	assert_ok(OP(trash_list, 10, collect_blob, &l));
	assert_int_equal(l.n, 1);
	assert_string_equal(l.v[0].digest, x);
	assert_string_equal(l.v[0].gen, xg);
	/* a second pass finds nothing to move */
	txn_begin(fx, fx->m);
	assert_ok(OP(blob_trash, x, xg, &any_link_old, &moved));
	assert_false(moved);
	txn_commit(fx, fx->m);
	assert_ok(OP(trash_remove, x, xg));
	assert_ok(OP(trash_remove, x, xg)); /* twice: fine */
	assert_false(owned(fx, x, xg));
	l.n = 0;
	assert_ok(OP(trash_list, 10, collect_blob, &l));
	assert_int_equal(l.n, 0);

	/* A referenced blob is not garbage; without a rule (fsck dropping a damaged blob) it
	 * goes all the same. */
	char y[DIGEST_STR_LEN], yg[UUID_STR_LEN], m[DIGEST_STR_LEN];
	put_gen_blob(fx, "y", y, yg);
	const struct meta_ref refs[] = {{META_REF_BLOB, y, "application/octet-stream", 10}};
	digest_of("m", m);
	put_image_refs(fx, repo, m, "m", 1, 1, refs, ARRAY_LEN(refs));
	struct blobs cand = {0};
	assert_ok(OP(gc_candidates, &any_link_old, NULL, 10, collect_blob, &cand));
	assert_int_equal(cand.n, 0);
	txn_begin(fx, fx->m);
	assert_ok(OP(blob_trash, y, yg, &any_link_old, &moved));
	assert_false(moved);
	assert_ok(OP(blob_trash, y, yg, NULL, &moved));
	assert_true(moved);
	txn_commit(fx, fx->m);
	assert_err(OP(blob_get, y, NULL), BERR_NOT_FOUND);

	/* trash_add: a file no row names (a duplicate, an orphan); twice is fine. An upload
	 * session owns the file named by its id. */
	char z[DIGEST_STR_LEN], zg[UUID_STR_LEN];
	digest_of("z", z);
	uuid_v4(zg);
	assert_false(owned(fx, z, zg));
	struct meta_upload u = {.repo_id = repo, .created_at = 1, .updated_at = 1};
	memcpy(u.id, zg, sizeof(u.id));
	assert_ok(OP(upload_insert, &u));
	assert_true(owned(fx, z, zg));
	assert_ok(OP(upload_delete, zg));
	assert_false(owned(fx, z, zg));
	txn_begin(fx, fx->m);
	assert_ok(OP(trash_add, z, zg));
	assert_ok(OP(trash_add, z, zg));
	txn_commit(fx, fx->m);
	assert_true(owned(fx, z, zg));
}

/* gc lists a candidate, then an upload links the blob again before gc's transaction: the
 * transaction's own re-check must see the link (gc.c: upload completion vs gc). */
META_TEST(meta_blob_trash_rechecks_links)
{
	int64_t repo = put_repo(fx, "relinked");
	char x[DIGEST_STR_LEN], xg[UUID_STR_LEN];
	put_gen_blob(fx, "relinked", x, xg);
	int64_t cutoff = clock_now_ms() + 60000; /* everything so far is old */
	const struct meta_garbage g = {cutoff, cutoff};
	struct blobs cand = {0};
	assert_ok(OP(gc_candidates, &g, NULL, 10, collect_blob, &cand));
	assert_int_equal(cand.n, 1);
	assert_string_equal(cand.v[0].gen, xg);
	/* the link lands with linked_at = now; gc's window starts at "now" for this check */
	assert_ok(OP(repo_blob_link, repo, x));
	const struct meta_garbage at_check = {cutoff, clock_now_ms() - 1};
	bool moved = true;
	txn_begin(fx, fx->m);
	assert_ok(OP(blob_trash, x, cand.v[0].gen, &at_check, &moved));
	txn_commit(fx, fx->m);
	assert_false(moved);
	assert_ok(OP(repo_blob_get, repo, x, NULL, NULL, NULL));
}

META_TEST(meta_repo_blob_link_get)
{
	int64_t repo = put_repo(fx, "blobs");
	int64_t repo2 = put_repo(fx, "blobs2");
	char linked[DIGEST_STR_LEN], refd[DIGEST_STR_LEN], both[DIGEST_STR_LEN];
	char nowhere[DIGEST_STR_LEN], child[DIGEST_STR_LEN], d[DIGEST_STR_LEN];
	digest_of("linked", linked);
	digest_of("referenced", refd);
	digest_of("both", both);
	digest_of("nowhere", nowhere);
	digest_of("child", child);
	assert_ok(blob_put(fx, linked, 11));
	assert_ok(blob_put(fx, refd, 22));
	assert_ok(blob_put(fx, both, 33));
	assert_ok(blob_put(fx, nowhere, 44));

	int64_t sz = -1;
	char *mt = NULL;
	bool r = true;
	/* Registered globally but neither linked nor referenced here. */
	assert_err(repo_blob_size(fx, repo, nowhere, &sz, &mt, &r), BERR_NOT_FOUND);
	assert_null(mt);
	assert_err(repo_blob_size(fx, repo, linked, &sz, &mt, &r), BERR_NOT_FOUND);

	/* Linked only. */
	assert_ok(OP(repo_blob_link, repo, linked));
	assert_ok(OP(repo_blob_link, repo, linked)); /* again: fine */
	assert_ok(repo_blob_size(fx, repo, linked, &sz, &mt, &r));
	assert_int_equal(sz, 11);
	assert_null(mt);
	assert_false(r);
	assert_err(repo_blob_size(fx, repo2, linked, &sz, &mt, &r), BERR_NOT_FOUND);

	/* Referenced by a manifest of the repository (not linked): media type from the ref. */
	const struct meta_ref refs[] = {
	    {META_REF_BLOB, refd, "application/vnd.oci.image.layer.v1.tar+zstd", 22},
	    {META_REF_BLOB, both, "application/vnd.oci.image.config.v1+json", 33},
	    {META_REF_MANIFEST, child, "application/vnd.oci.image.manifest.v1+json", 5},
	};
	digest_of("m", d);
	put_image_refs(fx, repo, d, "m", 1, 1, refs, ARRAY_LEN(refs));
	r = false;
	assert_ok(repo_blob_size(fx, repo, refd, &sz, &mt, &r));
	assert_int_equal(sz, 22);
	assert_non_null(mt);
	assert_string_equal(mt, "application/vnd.oci.image.layer.v1.tar+zstd");
	assert_true(r);
	free(mt);
	mt = NULL;
	assert_err(repo_blob_size(fx, repo2, refd, &sz, &mt, &r), BERR_NOT_FOUND);

	/* Linked and referenced. */
	assert_ok(OP(repo_blob_link, repo, both));
	r = false;
	assert_ok(repo_blob_size(fx, repo, both, &sz, &mt, &r));
	assert_int_equal(sz, 33);
	assert_string_equal(mt, "application/vnd.oci.image.config.v1+json");
	assert_true(r);
	free(mt);
	mt = NULL;

	/* Out-parameters are optional. */
	assert_ok(OP(repo_blob_get, repo, refd, NULL, NULL, NULL));
	assert_ok(OP(repo_blob_get, repo, linked, NULL, NULL, NULL));

	/* A link to a blob that is not in the registry is not readable. */
	char ghost[DIGEST_STR_LEN];
	digest_of("ghost", ghost);
	assert_ok(OP(repo_blob_link, repo, ghost));
	assert_err(repo_blob_size(fx, repo, ghost, &sz, &mt, &r), BERR_NOT_FOUND);
	assert_null(mt);
	/* Linking in a repository that does not exist is refused. */
	assert_err(OP(repo_blob_link, 999999, linked), BERR_CONFLICT);
}

META_TEST(meta_uploads)
{
	int64_t repo = put_repo(fx, "up");
	unsigned char state[113];
	for (size_t i = 0; i < sizeof(state); i++)
		state[i] = (unsigned char)(i * 37 + 1);
	state[0] = 0;
	state[5] = 0; /* embedded NULs */
	state[sizeof(state) - 1] = 0xff;

	struct meta_upload u = {0};
	uuid_v4(u.id);
	u.repo_id = repo;
	u.created_at = 1700000000001;
	u.updated_at = 1700000000002;
	u.size = 0;
	u.parts = 0;
	u.hash_state = state;
	u.hash_state_len = sizeof(state);
	assert_ok(OP(upload_insert, &u));

	struct meta_upload g = {0};
	assert_ok(OP(upload_get, u.id, &g));
	assert_string_equal(g.id, u.id);
	assert_int_equal(g.repo_id, repo);
	assert_int_equal(g.created_at, u.created_at);
	assert_int_equal(g.updated_at, u.updated_at);
	assert_int_equal(g.size, 0);
	assert_int_equal(g.parts, 0);
	assert_false(g.small_part);
	assert_int_equal(g.last_part_size, 0);
	assert_int_equal(g.hash_state_len, sizeof(state));
	assert_memory_equal(g.hash_state, state, sizeof(state));
	meta_upload_clear(&g);

	/* Update every mutable column, with a different-size state. */
	unsigned char state2[40];
	memset(state2, 0xab, sizeof(state2));
	struct meta_upload v = u;
	v.updated_at = 1700000009999;
	v.size = 5 * 1024 * 1024 + 3;
	v.parts = 2;
	v.small_part = true;
	v.last_part_size = 3;
	v.hash_state = state2;
	v.hash_state_len = sizeof(state2);
	assert_ok(OP(upload_update, &v));
	assert_ok(OP(upload_get, u.id, &g));
	assert_int_equal(g.created_at, u.created_at);
	assert_int_equal(g.updated_at, v.updated_at);
	assert_int_equal(g.size, v.size);
	assert_int_equal(g.parts, 2);
	assert_true(g.small_part);
	assert_int_equal(g.last_part_size, 3);
	assert_int_equal(g.hash_state_len, sizeof(state2));
	assert_memory_equal(g.hash_state, state2, sizeof(state2));
	meta_upload_clear(&g);

	/* No state. */
	v.hash_state = NULL;
	v.hash_state_len = 0;
	assert_ok(OP(upload_update, &v));
	assert_ok(OP(upload_get, u.id, &g));
	assert_null(g.hash_state);
	assert_int_equal(g.hash_state_len, 0);
	meta_upload_clear(&g);

	/* Duplicate id; unknown repository. */
	assert_err(OP(upload_insert, &u), BERR_CONFLICT);
	struct meta_upload orphan = {0};
	uuid_v4(orphan.id);
	orphan.repo_id = 999999;
	assert_err(OP(upload_insert, &orphan), BERR_CONFLICT);
	assert_err(OP(upload_get, orphan.id, &g), BERR_NOT_FOUND);

	/* A second upload is independent; delete removes exactly one. */
	struct meta_upload w = {0};
	uuid_v4(w.id);
	w.repo_id = repo;
	assert_ok(OP(upload_insert, &w));
	assert_ok(OP(upload_delete, u.id));
	assert_err(OP(upload_get, u.id, &g), BERR_NOT_FOUND);
	assert_ok(OP(upload_get, w.id, &g));
	assert_null(g.hash_state);
	meta_upload_clear(&g);
	assert_ok(OP(upload_delete, u.id)); /* already gone: not an error */
}

META_TEST(meta_kv)
{
	char *v = NULL;
	assert_err(OP(kv_get, ACCT, REGION, "registry_policy", &v), BERR_NOT_FOUND);
	assert_null(v);
	assert_ok(OP(kv_put, ACCT, REGION, "registry_policy", "{\"a\":1}"));
	assert_ok(OP(kv_get, ACCT, REGION, "registry_policy", &v));
	assert_string_equal(v, "{\"a\":1}");
	free(v);
	v = NULL;
	/* overwrite */
	assert_ok(OP(kv_put, ACCT, REGION, "registry_policy", "{\"b\":2}"));
	assert_ok(OP(kv_get, ACCT, REGION, "registry_policy", &v));
	assert_string_equal(v, "{\"b\":2}");
	free(v);
	v = NULL;
	/* isolation by account, region and name */
	assert_err(OP(kv_get, ACCT2, REGION, "registry_policy", &v), BERR_NOT_FOUND);
	assert_err(OP(kv_get, ACCT, REGION2, "registry_policy", &v), BERR_NOT_FOUND);
	assert_err(OP(kv_get, ACCT, REGION, "scanning", &v), BERR_NOT_FOUND);
	assert_ok(OP(kv_put, ACCT2, REGION, "registry_policy", "other"));
	assert_ok(OP(kv_put, ACCT, REGION, "empty", ""));
	assert_ok(OP(kv_get, ACCT, REGION, "empty", &v));
	assert_string_equal(v, "");
	free(v);
	v = NULL;
	/* delete */
	assert_ok(OP(kv_delete, ACCT, REGION, "registry_policy"));
	assert_err(OP(kv_get, ACCT, REGION, "registry_policy", &v), BERR_NOT_FOUND);
	assert_ok(OP(kv_delete, ACCT, REGION, "registry_policy")); /* missing: not an error */
	assert_ok(OP(kv_get, ACCT2, REGION, "registry_policy", &v));
	assert_string_equal(v, "other");
	free(v);
}

META_TEST(meta_txn_rollback_commit)
{
	struct meta *m2 = NULL;
	assert_ok(fx->drv->connect(fx->h, &m2, &fx->err));
	struct meta_repo r = {0};

	/* Rolled back: gone everywhere, including rows inserted by several calls. */
	txn_begin(fx, fx->m);
	int64_t id = put_repo(fx, "rolled");
	put_image(fx, id, "img", NULL);
	assert_ok(OP(kv_put, ACCT, REGION, "k", "v"));
	assert_ok(OP(repo_get, ACCT, REGION, "rolled", &r)); /* visible inside the txn */
	meta_repo_clear(&r);
	assert_err(CALL(m2, repo_get, ACCT, REGION, "rolled", &r), BERR_NOT_FOUND);
	fx->m->ops->txn_rollback(fx->m);
	assert_err(OP(repo_get, ACCT, REGION, "rolled", &r), BERR_NOT_FOUND);
	char *v = NULL;
	assert_err(OP(kv_get, ACCT, REGION, "k", &v), BERR_NOT_FOUND);
	assert_int_equal(count_repos(fx, fx->m, ACCT, REGION), 0);

	/* Committed: visible to other connections only after the commit. */
	txn_begin(fx, fx->m);
	put_repo(fx, "kept");
	assert_err(CALL(m2, repo_get, ACCT, REGION, "kept", &r), BERR_NOT_FOUND);
	txn_commit(fx, fx->m);
	assert_ok(CALL(m2, repo_get, ACCT, REGION, "kept", &r));
	meta_repo_clear(&r);

	/* Rollback with no transaction open is harmless; a new transaction can start. */
	fx->m->ops->txn_rollback(fx->m);
	txn_begin(fx, fx->m);
	txn_commit(fx, fx->m);

	/* A failed statement inside a transaction leaves it usable and rollback undoes the rest. */
	txn_begin(fx, fx->m);
	put_repo(fx, "partial");
	struct meta_repo dup = repo_tmpl(ACCT, REGION, "kept");
	assert_err(OP(repo_insert, &dup), BERR_CONFLICT);
	fx->m->ops->txn_rollback(fx->m);
	assert_err(OP(repo_get, ACCT, REGION, "partial", &r), BERR_NOT_FOUND);
	assert_ok(OP(repo_get, ACCT, REGION, "kept", &r));
	meta_repo_clear(&r);
	meta_close(m2);
}

struct waiter {
	struct meta *m;
	atomic_int started;
	atomic_int begun;
	enum berr_code begin_rc, get_rc, insert_rc, commit_rc;
	char msg[512];
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;
	struct berr e;
	err_clear(&e);
	atomic_store(&w->started, 1);
	w->begin_rc = w->m->ops->txn_begin(w->m, &e);
	atomic_store(&w->begun, 1);
	if (w->begin_rc != BERR_OK) {
		snprintf(w->msg, sizeof(w->msg), "%s", e.msg);
		return NULL;
	}
	/* The first writer's commit is visible once we hold the lock. */
	struct meta_repo r = {0};
	w->get_rc = w->m->ops->repo_get(w->m, ACCT, REGION, "first", &r, &e);
	meta_repo_clear(&r);
	struct meta_repo n = repo_tmpl(ACCT, REGION, "second");
	w->insert_rc = w->m->ops->repo_insert(w->m, &n, &e);
	w->commit_rc = w->m->ops->txn_commit(w->m, &e);
	if (w->commit_rc != BERR_OK)
		w->m->ops->txn_rollback(w->m);
	return NULL;
}

META_TEST(meta_txn_begin_waits_for_writer)
{
	struct waiter w = {.begin_rc = BERR_INTERNAL};
	assert_ok(fx->drv->connect(fx->h, &w.m, &fx->err));

	txn_begin(fx, fx->m); /* holds the write lock */
	put_repo(fx, "first");
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, waiter_main, &w), 0);
	while (!atomic_load(&w.started))
		sleep_ms(1);
	int64_t t0 = clock_mono_ms();
	sleep_ms(300);
	int begun_early = atomic_load(&w.begun);
	/* Commit before asserting so a failure cannot leave the thread blocked. */
	enum berr_code crc = fx->m->ops->txn_commit(fx->m, &fx->err);
	pthread_join(th, NULL);
	int64_t waited = clock_mono_ms() - t0;

	assert_rc(crc, BERR_OK, &fx->err);
	assert_int_equal(begun_early, 0);
	assert_true(waited >= 300);
	if (w.begin_rc != BERR_OK)
		fail_msg("second txn_begin: %s (%s)", err_name(w.begin_rc), w.msg);
	assert_int_equal(w.get_rc, BERR_OK);
	assert_int_equal(w.insert_rc, BERR_OK);
	assert_int_equal(w.commit_rc, BERR_OK);
	struct meta_repo r = {0};
	assert_ok(OP(repo_get, ACCT, REGION, "second", &r));
	meta_repo_clear(&r);
	meta_close(w.m);
}

struct pool_worker {
	struct meta_pool *pool;
	int index;
	int iterations;
	atomic_int *in_use;
	atomic_int *max_in_use;
	atomic_int *failures;
};

static void *pool_worker_main(void *arg)
{
	struct pool_worker *pw = arg;
	for (int i = 0; i < pw->iterations; i++) {
		struct meta *m = meta_pool_acquire(pw->pool);
		int now = atomic_fetch_add(pw->in_use, 1) + 1;
		int max = atomic_load(pw->max_in_use);
		while (now > max && !atomic_compare_exchange_weak(pw->max_in_use, &max, now))
			;
		struct berr e;
		err_clear(&e);
		char name[32];
		snprintf(name, sizeof(name), "w%d-%d", pw->index, i);
		struct meta_repo r = repo_tmpl(ACCT, REGION, name);
		bool ok = m->ops->txn_begin(m, &e) == BERR_OK &&
		          m->ops->repo_insert(m, &r, &e) == BERR_OK &&
		          m->ops->txn_commit(m, &e) == BERR_OK;
		if (!ok)
			atomic_fetch_add(pw->failures, 1);
		atomic_fetch_sub(pw->in_use, 1);
		meta_pool_release(pw->pool, m);
	}
	return NULL;
}

struct pool_grabber {
	struct meta_pool *pool;
	atomic_int got;
	struct meta *m;
};

static void *pool_grabber_main(void *arg)
{
	struct pool_grabber *g = arg;
	g->m = meta_pool_acquire(g->pool);
	atomic_store(&g->got, 1);
	return NULL;
}

META_TEST(meta_pool_threads)
{
	enum { POOL = 3, THREADS = 8, ITER = 25 };
	struct meta_pool *pool = NULL;
	assert_ok(fx->drv->pool(fx->h, POOL, &pool, &fx->err));
	atomic_int in_use = 0, max_in_use = 0, failures = 0;
	struct pool_worker pw[THREADS];
	pthread_t th[THREADS];
	for (int i = 0; i < THREADS; i++) {
		pw[i] = (struct pool_worker){pool, i, ITER, &in_use, &max_in_use, &failures};
		assert_int_equal(pthread_create(&th[i], NULL, pool_worker_main, &pw[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(atomic_load(&failures), 0);
	assert_true(atomic_load(&max_in_use) <= POOL);
	assert_int_equal(atomic_load(&in_use), 0);
	assert_int_equal(count_repos(fx, fx->m, ACCT, REGION), THREADS * ITER);
	meta_pool_close(pool);

	/* A pool of one: acquire blocks until release; release rolls back an open transaction. */
	assert_ok(fx->drv->pool(fx->h, 1, &pool, &fx->err));
	struct meta *m = meta_pool_acquire(pool);
	assert_non_null(m);
	txn_begin(fx, m);
	struct meta_repo ghost = repo_tmpl(ACCT, REGION, "ghost");
	assert_ok(CALL(m, repo_insert, &ghost));
	struct pool_grabber g = {.pool = pool};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, pool_grabber_main, &g), 0);
	sleep_ms(150);
	int got_early = atomic_load(&g.got);
	meta_pool_release(pool, m);
	pthread_join(t, NULL);
	assert_int_equal(got_early, 0);
	assert_ptr_equal(g.m, m);
	struct meta_repo r = {0};
	assert_err(CALL(g.m, repo_get, ACCT, REGION, "ghost", &r), BERR_NOT_FOUND);
	txn_begin(fx, g.m); /* no transaction was left open */
	txn_commit(fx, g.m);
	meta_pool_release(pool, g.m);
	meta_pool_close(pool);
}

/* The metadata contract: every driver must pass every case. */
#define META_CASES(X)                                                                              \
	X(meta_migrate_fresh_and_reopen)                                                           \
	X(meta_migrate_concurrent_first_open)                                                      \
	X(meta_repo_insert_get)                                                                    \
	X(meta_repo_duplicate_conflict)                                                            \
	X(meta_repo_update)                                                                        \
	X(meta_repo_list_pagination)                                                               \
	X(meta_repo_delete_cascade)                                                                \
	X(meta_repo_image_count)                                                                   \
	X(meta_image_insert_get)                                                                   \
	X(meta_image_delete)                                                                       \
	X(meta_tag_set_move_order)                                                                 \
	X(meta_tags_version)                                                                       \
	X(meta_tag_delete_count)                                                                   \
	X(meta_image_list_filters)                                                                 \
	X(meta_image_children_is_child)                                                            \
	X(meta_image_touch_pull)                                                                   \
	X(meta_blob_rows)                                                                          \
	X(meta_blob_trash)                                                                         \
	X(meta_blob_trash_rechecks_links)                                                          \
	X(meta_repo_blob_link_get)                                                                 \
	X(meta_uploads)                                                                            \
	X(meta_kv)                                                                                 \
	X(meta_txn_rollback_commit)                                                                \
	X(meta_txn_begin_waits_for_writer)                                                         \
	X(meta_pool_threads)

/* ------------------------------------------------------------------------------------------ */
/* blob store: openers */

struct blob_opener {
	const char *name;
	void *(*create)(void);
	enum berr_code (*open)(void *h, struct blob_store **out, struct berr *err);
	/* Optional raw views of the backing storage, for checks the interface cannot express:
	 * the stored bytes of a blob at its documented location (*out new), whether an upload's
	 * scratch object exists, and whether anything was written outside the store's area. */
	bool (*raw_blob)(void *h, const char *digest, const char *gen, char **out, size_t *len);
	bool (*raw_upload_exists)(void *h, const char *id);
	bool (*raw_escaped)(void *h, char *what, size_t n);
	void (*destroy)(void *h);
};

struct fs_store {
	char *base; /* temp dir: holds only "store" */
	char *root; /* base/store: the blob store directory */
};

static void *fs_create(void)
{
	struct fs_store *s = xcalloc(1, sizeof(*s));
	s->base = test_mkdtemp("store");
	if (!s->base) {
		free(s);
		return NULL;
	}
	s->root = xasprintf("%s/store", s->base);
	return s;
}

static enum berr_code fs_open_store(void *h, struct blob_store **out, struct berr *err)
{
	return blob_fs_open(((struct fs_store *)h)->root, out, err);
}

static bool fs_raw_blob(void *h, const char *digest, const char *gen, char **out, size_t *len)
{
	struct fs_store *s = h;
	char *p = xasprintf("%s/blobs/sha256/%.2s/%s%s%s", s->root, digest + 7, digest + 7,
	                    gen[0] ? "." : "", gen);
	struct berr e;
	bool ok = fs_read_all(p, 64u << 20, out, len, &e) == BERR_OK;
	free(p);
	return ok;
}

static bool fs_raw_upload_exists(void *h, const char *id)
{
	struct fs_store *s = h;
	char *p = xasprintf("%s/uploads/%s", s->root, id);
	struct stat sb;
	bool ok = stat(p, &sb) == 0;
	free(p);
	return ok;
}

/* True if dir holds an entry not in allowed (NULL-terminated). */
static bool dir_has_other(const char *dir, const char *const *allowed, char *what, size_t n)
{
	DIR *d = opendir(dir);
	if (!d)
		return false;
	bool other = false;
	struct dirent *de;
	while (!other && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		bool ok = false;
		for (const char *const *a = allowed; *a; a++)
			ok = ok || strcmp(de->d_name, *a) == 0;
		if (!ok) {
			snprintf(what, n, "%s/%s", dir, de->d_name);
			other = true;
		}
	}
	closedir(d);
	return other;
}

static bool fs_raw_escaped(void *h, char *what, size_t n)
{
	struct fs_store *s = h;
	static const char *const in_base[] = {"store", NULL};
	static const char *const in_root[] = {"blobs", "uploads", NULL};
	static const char *const in_blobs[] = {"sha256", NULL};
	char *blobs = xasprintf("%s/blobs", s->root);
	bool esc = dir_has_other(s->base, in_base, what, n) ||
	           dir_has_other(s->root, in_root, what, n) ||
	           dir_has_other(blobs, in_blobs, what, n);
	free(blobs);
	return esc;
}

static void fs_destroy(void *h)
{
	struct fs_store *s = h;
	test_rm_rf(s->base);
	free(s->base);
	free(s->root);
	free(s);
}

static const struct blob_opener fs_blob = {
    .name = "fs",
    .create = fs_create,
    .open = fs_open_store,
    .raw_blob = fs_raw_blob,
    .raw_upload_exists = fs_raw_upload_exists,
    .raw_escaped = fs_raw_escaped,
    .destroy = fs_destroy,
};

/* ------------------------------------------------------------------------------------------ */
/* blob store: fixture and helpers */

struct blob_fx {
	const struct blob_opener *drv;
	void *h;
	struct blob_store *b;
	struct berr err;
};

static int blob_setup(void **state)
{
	const struct blob_opener *drv = *state;
	struct blob_fx *fx = xcalloc(1, sizeof(*fx));
	fx->drv = drv;
	err_clear(&fx->err);
	fx->h = drv->create();
	if (!fx->h) {
		free(fx);
		return -1;
	}
	if (drv->open(fx->h, &fx->b, &fx->err) != BERR_OK) {
		print_error("%s: open: %s\n", drv->name, fx->err.msg);
		drv->destroy(fx->h);
		free(fx);
		return -1;
	}
	*state = fx;
	return 0;
}

static int blob_teardown(void **state)
{
	struct blob_fx *fx = *state;
	blob_close(fx->b);
	fx->drv->destroy(fx->h);
	free(fx);
	return 0;
}

#define BOP(op, ...) (fx->b->ops->op(fx->b, __VA_ARGS__, &fx->err))

#define BLOB_TEST(name)                                                                            \
	static void name##_body(struct blob_fx *fx);                                               \
	static void name(void **state)                                                             \
	{                                                                                          \
		name##_body(*state);                                                               \
	}                                                                                          \
	static void name##_body(struct blob_fx *fx)

/* Reads the whole blob through the interface (open + read) and compares it with want. */
static void assert_blob_is(struct blob_fx *fx, const char *digest, const char *gen,
                           const void *want, size_t len)
{
	int fd = -1;
	int64_t size = -1;
	assert_ok(BOP(open, digest, gen, &fd, &size));
	assert_true(fd >= 0);
	assert_int_equal(size, (int64_t)len);
	char *got = xmalloc(len + 1);
	size_t n = 0;
	for (;;) {
		ssize_t r = read(fd, got + n, len + 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
		if (n == len + 1)
			break;
	}
	close(fd);
	assert_int_equal(n, len);
	assert_memory_equal(got, want, len);
	free(got);
	assert_ok(BOP(stat, digest, gen, &size));
	assert_int_equal(size, (int64_t)len);
	if (fx->drv->raw_blob) {
		char *raw = NULL;
		size_t rlen = 0;
		if (!fx->drv->raw_blob(fx->h, digest, gen, &raw, &rlen))
			fail_msg("%s: blob %s not at its documented location", fx->drv->name,
			         digest);
		assert_int_equal(rlen, len);
		assert_memory_equal(raw, want, len);
		free(raw);
	}
}

static void assert_not_escaped(struct blob_fx *fx)
{
	char what[PATH_MAX];
	if (fx->drv->raw_escaped && fx->drv->raw_escaped(fx->h, what, sizeof(what)))
		fail_msg("%s: unexpected entry %s", fx->drv->name, what);
}

static bool upload_exists(struct blob_fx *fx, const char *id)
{
	return fx->drv->raw_upload_exists ? fx->drv->raw_upload_exists(fx->h, id) : false;
}

/* Writes len bytes at offset into upload id: upload_open, upload_append, upload_flush,
 * upload_close. */
static enum berr_code up_write(struct blob_fx *fx, const char *id, int64_t offset, const void *data,
                               size_t len)
{
	struct blob_upload *u = NULL;
	enum berr_code rc = fx->b->ops->upload_open(fx->b, id, offset, &u, &fx->err);
	if (rc != BERR_OK)
		return rc;
	rc = fx->b->ops->upload_append(u, data, len, &fx->err);
	if (rc == BERR_OK)
		rc = fx->b->ops->upload_flush(u, &fx->err);
	fx->b->ops->upload_close(u);
	return rc;
}

/* Makes upload id durable through a fresh handle. */
static enum berr_code up_sync(struct blob_fx *fx, const char *id)
{
	struct blob_upload *u = NULL;
	enum berr_code rc = fx->b->ops->upload_open(fx->b, id, 0, &u, &fx->err);
	if (rc != BERR_OK)
		return rc;
	rc = fx->b->ops->upload_sync(u, &fx->err);
	fx->b->ops->upload_close(u);
	return rc;
}

/* Stores data as a blob through a fresh upload; returns its digest in out and its gen (the
 * upload's id) in gen. */
static void put_blob(struct blob_fx *fx, const void *data, size_t len, char out[DIGEST_STR_LEN],
                     char gen[UUID_STR_LEN])
{
	uuid_v4(gen);
	sha256_digest_str(data, len, out);
	assert_ok(BOP(upload_create, gen));
	assert_ok(up_write(fx, gen, 0, data, len));
	assert_ok(BOP(upload_commit, gen, (int64_t)len, out));
}

/* ------------------------------------------------------------------------------------------ */
/* blob store: cases */

BLOB_TEST(blob_upload_commit)
{
	static const char content[] = "hello, berth blob store\n\0with a NUL and more bytes";
	const size_t len = sizeof(content) - 1;
	char id[37], d[DIGEST_STR_LEN];
	uuid_v4(id);
	sha256_digest_str(content, len, d);

	assert_ok(BOP(upload_create, id));
	if (fx->drv->raw_upload_exists)
		assert_true(upload_exists(fx, id));
	/* Out of order at explicit offsets: tail first (leaves a hole), then the head. */
	assert_ok(up_write(fx, id, 20, content + 20, len - 20));
	assert_ok(up_write(fx, id, 0, content, 7));
	assert_ok(up_write(fx, id, 7, content + 7, 13));
	assert_ok(up_sync(fx, id));
	int64_t sz;
	assert_err(BOP(stat, d, id, &sz), BERR_NOT_FOUND); /* not a blob before commit */
	assert_ok(BOP(upload_commit, id, (int64_t)len, d));

	assert_blob_is(fx, d, id, content, len);
	assert_err(BOP(stat, d, "", &sz), BERR_NOT_FOUND); /* named by its generation only */
	if (fx->drv->raw_upload_exists)
		assert_false(upload_exists(fx, id));
	/* The upload is consumed; committing it again (a retried completion) is fine. */
	assert_err(up_write(fx, id, 0, "x", 1), BERR_NOT_FOUND);
	assert_ok(BOP(upload_commit, id, (int64_t)len, d));
	assert_blob_is(fx, d, id, content, len);
	assert_not_escaped(fx);

	/* The empty blob. */
	char e[DIGEST_STR_LEN];
	uuid_v4(id);
	sha256_digest_str("", 0, e);
	assert_ok(BOP(upload_create, id));
	assert_ok(BOP(upload_commit, id, 0, e));
	assert_blob_is(fx, e, id, "", 0);

	/* Commit cuts what a failed write left past the recorded size. */
	uuid_v4(id);
	sha256_digest_str("kept", 4, e);
	assert_ok(BOP(upload_create, id));
	assert_ok(up_write(fx, id, 0, "kept+junk", 9));
	assert_ok(BOP(upload_commit, id, 4, e));
	assert_blob_is(fx, e, id, "kept", 4);
}

BLOB_TEST(blob_upload_handle_appends)
{
	char id[37], d[DIGEST_STR_LEN];
	uuid_v4(id);
	assert_ok(BOP(upload_create, id));
	struct blob_upload *u = NULL;
	assert_ok(fx->b->ops->upload_open(fx->b, id, 0, &u, &fx->err));
	assert_non_null(u);
	/* consecutive appends continue where the previous one ended */
	assert_ok(fx->b->ops->upload_append(u, "abc", 3, &fx->err));
	assert_ok(fx->b->ops->upload_append(u, "", 0, &fx->err));
	assert_ok(fx->b->ops->upload_append(u, "defg", 4, &fx->err));
	assert_ok(fx->b->ops->upload_sync(u, &fx->err));
	fx->b->ops->upload_close(u);
	/* a later request resumes at the stored size */
	u = NULL;
	assert_ok(fx->b->ops->upload_open(fx->b, id, 7, &u, &fx->err));
	assert_ok(fx->b->ops->upload_append(u, "hi", 2, &fx->err));
	assert_ok(fx->b->ops->upload_sync(u, &fx->err));
	fx->b->ops->upload_close(u);
	/* reopening at an earlier offset overwrites from there */
	u = NULL;
	assert_ok(fx->b->ops->upload_open(fx->b, id, 3, &u, &fx->err));
	assert_ok(fx->b->ops->upload_append(u, "DE", 2, &fx->err));
	assert_ok(fx->b->ops->upload_flush(u, &fx->err));
	fx->b->ops->upload_close(u);
	fx->b->ops->upload_close(NULL); /* closing nothing is harmless */
	digest_of("abcDEfghi", d);
	assert_ok(BOP(upload_commit, id, 9, d));
	assert_blob_is(fx, d, id, "abcDEfghi", 9);

	/* opening an upload that does not exist */
	uuid_v4(id);
	u = NULL;
	assert_err(fx->b->ops->upload_open(fx->b, id, 0, &u, &fx->err), BERR_NOT_FOUND);
	assert_null(u);
}

/* Writes data (len bytes) into a new upload the way requests do: each handle starts where
 * the previous one flushed (mostly not at a block boundary) and appends pieces of odd sizes;
 * every third handle then appends bytes it closes without a flush (the driver may drop them
 * or have written them; the next handle writes over them either way). */
static void upload_in_pieces(struct blob_fx *fx, const unsigned char *data, size_t len)
{
	static const size_t piece[] = {1, 4095, 100003, 4096, 777777, 3, 2 << 20, 65536, 12289};
	char id[37], d[DIGEST_STR_LEN];
	uuid_v4(id);
	assert_ok(BOP(upload_create, id));
	size_t at = 0, k = 0;
	for (int h = 0; at < len; h++) {
		struct blob_upload *u = NULL;
		assert_ok(fx->b->ops->upload_open(fx->b, id, (int64_t)at, &u, &fx->err));
		for (int i = 0; i < 3 && at < len; i++, k++) {
			size_t n = piece[k % (sizeof(piece) / sizeof(piece[0]))];
			if (n > len - at)
				n = len - at;
			assert_ok(fx->b->ops->upload_append(u, data + at, n, &fx->err));
			at += n;
		}
		assert_ok(fx->b->ops->upload_flush(u, &fx->err));
		if (h % 3 == 2 && at < len) /* dropped, or overwritten by the next handle */
			assert_ok(fx->b->ops->upload_append(u, "junk", 4, &fx->err));
		fx->b->ops->upload_close(u);
	}
	assert_ok(up_sync(fx, id));
	sha256_digest_str(data, len, d);
	assert_ok(BOP(upload_commit, id, (int64_t)len, d));
	assert_blob_is(fx, d, id, data, len);
}

/* Large appends cross the driver's staging (direct I/O) buffers at unaligned offsets; the
 * bytes must come out the same with direct I/O and with buffered writes only. */
BLOB_TEST(blob_upload_large_unaligned)
{
	size_t len = (5u << 20) + 123;
	unsigned char *data = xmalloc(len);
	uint32_t x = 2463534242u;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		data[i] = (unsigned char)x;
	}
	upload_in_pieces(fx, data, len);
	if (strcmp(fx->drv->name, "fs") == 0) {
		blob_close(fx->b);
		fx->b = NULL;
		setenv("BERTH_NO_DIRECT_IO", "1", 1);
		enum berr_code rc = fx->drv->open(fx->h, &fx->b, &fx->err);
		unsetenv("BERTH_NO_DIRECT_IO");
		assert_ok(rc);
		data[0] ^= 1; /* another digest */
		upload_in_pieces(fx, data, len);
	}
	free(data);
}

BLOB_TEST(blob_upload_overwrite_and_truncate)
{
	char id[37], d[DIGEST_STR_LEN];
	uuid_v4(id);
	assert_ok(BOP(upload_create, id));
	assert_ok(up_write(fx, id, 0, "0123456789", 10));
	/* a failed write is rolled back by truncating to the last good size */
	assert_ok(BOP(upload_truncate, id, 4));
	assert_ok(up_write(fx, id, 4, "abc", 3));
	/* rewriting a range replaces those bytes */
	assert_ok(up_write(fx, id, 1, "XY", 2));
	assert_ok(up_sync(fx, id));
	digest_of("0XY3abc", d);
	assert_ok(BOP(upload_commit, id, 7, d));
	assert_blob_is(fx, d, id, "0XY3abc", 7);

	/* truncate to zero, then content from scratch */
	uuid_v4(id);
	assert_ok(BOP(upload_create, id));
	assert_ok(up_write(fx, id, 0, "garbage", 7));
	assert_ok(BOP(upload_truncate, id, 0));
	assert_ok(up_write(fx, id, 0, "ok", 2));
	digest_of("ok", d);
	assert_ok(BOP(upload_commit, id, 2, d));
	assert_blob_is(fx, d, id, "ok", 2);
}

/* Each upload of the same bytes is stored under a name of its own: deleting one name (gc
 * dropping the old copy) never touches another (a new upload of the same bytes). */
BLOB_TEST(blob_generations)
{
	char d[DIGEST_STR_LEN], g1[UUID_STR_LEN], g2[UUID_STR_LEN];
	put_blob(fx, "original", 8, d, g1);
	put_blob(fx, "original", 8, d, g2);
	assert_true(strcmp(g1, g2) != 0);
	assert_blob_is(fx, d, g1, "original", 8);
	assert_blob_is(fx, d, g2, "original", 8);
	assert_ok(BOP(remove, d, g1));
	int64_t sz;
	assert_err(BOP(stat, d, g1, &sz), BERR_NOT_FOUND);
	assert_blob_is(fx, d, g2, "original", 8);
	assert_not_escaped(fx);
}

BLOB_TEST(blob_open_stat_remove)
{
	char d[DIGEST_STR_LEN], d2[DIGEST_STR_LEN], g[UUID_STR_LEN], g2[UUID_STR_LEN];
	put_blob(fx, "one", 3, d, g);
	put_blob(fx, "two!", 4, d2, g2);
	int64_t sz = -1;
	assert_ok(BOP(stat, d, g, &sz));
	assert_int_equal(sz, 3);
	assert_ok(BOP(stat, d, g, NULL));
	int fd = -1;
	assert_ok(BOP(open, d, g, &fd, NULL));
	close(fd);

	assert_ok(BOP(remove, d, g));
	assert_err(BOP(stat, d, g, &sz), BERR_NOT_FOUND);
	fd = -1;
	assert_err(BOP(open, d, g, &fd, &sz), BERR_NOT_FOUND);
	assert_int_equal(fd, -1);
	assert_ok(BOP(remove, d, g)); /* missing: not an error */
	assert_blob_is(fx, d2, g2, "two!", 4);

	/* An open descriptor keeps reading after remove (filesystem semantics). */
	assert_ok(BOP(open, d2, g2, &fd, &sz));
	assert_ok(BOP(remove, d2, g2));
	char buf[8] = {0};
	assert_int_equal(read(fd, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "two!", 4);
	close(fd);

	/* A removed digest can be stored again (under a new name). */
	put_blob(fx, "one", 3, d, g);
	assert_blob_is(fx, d, g, "one", 3);
}

BLOB_TEST(blob_not_found)
{
	char d[DIGEST_STR_LEN], id[37];
	digest_of("absent", d);
	uuid_v4(id);
	int64_t sz;
	int fd = -1;
	assert_err(BOP(stat, d, id, &sz), BERR_NOT_FOUND);
	assert_err(BOP(open, d, "", &fd, &sz), BERR_NOT_FOUND);
	assert_int_equal(fd, -1);
	assert_err(up_write(fx, id, 0, "x", 1), BERR_NOT_FOUND);
	assert_err(up_sync(fx, id), BERR_NOT_FOUND);
	assert_err(BOP(upload_commit, id, 0, d), BERR_NOT_FOUND);
	assert_err(BOP(stat, d, id, &sz), BERR_NOT_FOUND);
	assert_true(BOP(upload_truncate, id, 0) != BERR_OK);
	fx->b->ops->upload_remove(fx->b, id); /* missing: no effect */
	assert_not_escaped(fx);
	/* Creating the same upload twice is refused. */
	assert_ok(BOP(upload_create, id));
	assert_true(BOP(upload_create, id) != BERR_OK);
	fx->b->ops->upload_remove(fx->b, id);
	if (fx->drv->raw_upload_exists)
		assert_false(upload_exists(fx, id));
	assert_err(up_write(fx, id, 0, "x", 1), BERR_NOT_FOUND);
}

static const char *const bad_digests[] = {
    "sha256:../../x",
    "sha256:../../../../../../tmp/berth-escape",
    "sha256:/etc/passwd",
    "../../x",
    "sha256:",
    "",
    "sha256",
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",   /* 63 */
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8555", /* 65 */
    "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",  /* upper */
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85/",
    "sha256:..b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "sha256:e3/0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "SHA256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
    "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
    "md5:d41d8cd98f00b204e9800998ecf8427e",
    " sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
};

BLOB_TEST(blob_invalid_digest_rejected)
{
	char id[37];
	uuid_v4(id);
	assert_ok(BOP(upload_create, id));
	assert_ok(up_write(fx, id, 0, "payload", 7));
	for (size_t i = 0; i < ARRAY_LEN(bad_digests); i++) {
		const char *d = bad_digests[i];
		int64_t sz = -1;
		int fd = -1;
		enum berr_code rc;
		if ((rc = BOP(stat, d, "", &sz)) != BERR_DIGEST_INVALID)
			fail_msg("stat('%s') = %s", d, err_name(rc));
		if ((rc = BOP(open, d, id, &fd, &sz)) != BERR_DIGEST_INVALID)
			fail_msg("open('%s') = %s", d, err_name(rc));
		assert_int_equal(fd, -1);
		if ((rc = BOP(remove, d, "")) != BERR_DIGEST_INVALID)
			fail_msg("remove('%s') = %s", d, err_name(rc));
		if ((rc = BOP(upload_commit, id, 7, d)) != BERR_DIGEST_INVALID)
			fail_msg("upload_commit('%s') = %s", d, err_name(rc));
		/* the upload is still there, untouched */
		assert_ok(up_write(fx, id, 7, "", 0));
		assert_not_escaped(fx);
	}
	char d[DIGEST_STR_LEN];
	digest_of("payload", d);
	/* Generations that are not upload ids cannot name a path either. */
	static const char *const bad_gens[] = {"../../x", "x/../y", ".", "not-a-uuid", "/etc"};
	for (size_t i = 0; i < ARRAY_LEN(bad_gens); i++) {
		int64_t sz;
		int fd = -1;
		if (BOP(stat, d, bad_gens[i], &sz) != BERR_INVALID ||
		    BOP(open, d, bad_gens[i], &fd, &sz) != BERR_INVALID ||
		    BOP(remove, d, bad_gens[i]) != BERR_INVALID)
			fail_msg("generation '%s' accepted", bad_gens[i]);
	}
	assert_ok(BOP(upload_commit, id, 7, d));
	assert_blob_is(fx, d, id, "payload", 7);
	assert_not_escaped(fx);
}

/* Upload ids that are not UUIDs; the first ones aim at a blob file and outside the store. */
static void bad_ids(const char *digest, char out[][160], size_t *n)
{
	size_t k = 0;
	snprintf(out[k++], 160, "../blobs/sha256/%.2s/%s", digest + 7, digest + 7);
	snprintf(out[k++], 160, "../../escape");
	snprintf(out[k++], 160, "../uploads/../../escape");
	snprintf(out[k++], 160, "%s", "");
	snprintf(out[k++], 160, "not-a-uuid");
	snprintf(out[k++], 160, "0123456789abcdef0123456789abcdef"); /* no dashes */
	snprintf(out[k++], 160, "01234567-89ab-cdef-0123-456789abcdef/x");
	snprintf(out[k++], 160, "01234567-89ab-cdef-0123-456789abcde");
	snprintf(out[k++], 160, "01234567-89ab-cdef-0123-456789abcdeg");
	snprintf(out[k++], 160, ".");
	snprintf(out[k++], 160, "..");
	*n = k;
}

/* Runs one upload operation with every bad id against a store holding one blob; the operation
 * must refuse (BERR_INVALID), leave that blob intact and write nothing outside the store. */
enum upload_op { UP_CREATE, UP_OPEN, UP_TRUNCATE, UP_COMMIT, UP_REMOVE };

static void check_bad_upload_ids(struct blob_fx *fx, enum upload_op op)
{
	static const char *const names[] = {"upload_create", "upload_open", "upload_truncate",
	                                    "upload_commit", "upload_remove"};
	char d[DIGEST_STR_LEN], g[UUID_STR_LEN];
	put_blob(fx, "precious bytes", 14, d, g);
	char ids[16][160];
	size_t n = 0;
	bad_ids(d, ids, &n);
	int failures = 0;
	for (size_t i = 0; i < n; i++) {
		enum berr_code rc = BERR_INVALID;
		char target[DIGEST_STR_LEN], seed[32];
		snprintf(seed, sizeof(seed), "target-%zu", i);
		digest_of(seed, target);
		err_clear(&fx->err);
		switch (op) {
		case UP_CREATE:
			rc = BOP(upload_create, ids[i]);
			break;
		case UP_OPEN:
			rc = up_write(fx, ids[i], 0, "EVIL", 4);
			break;
		case UP_TRUNCATE:
			rc = BOP(upload_truncate, ids[i], 0);
			break;
		case UP_COMMIT:
			rc = BOP(upload_commit, ids[i], 0, target);
			break;
		case UP_REMOVE:
			fx->b->ops->upload_remove(fx->b, ids[i]);
			break;
		}
		if (rc != BERR_INVALID) {
			print_error("%s('%s') = %s, want BERR_INVALID\n", names[op], ids[i],
			            err_name(rc));
			failures++;
		}
		int64_t sz = -1;
		if (BOP(stat, target, "", &sz) == BERR_OK) {
			print_error("%s('%s') created blob %s\n", names[op], ids[i], target);
			failures++;
		}
		/* The blob must be intact after every call. */
		bool intact = BOP(stat, d, g, &sz) == BERR_OK && sz == 14;
		if (intact && fx->drv->raw_blob) {
			char *raw = NULL;
			size_t len = 0;
			intact = fx->drv->raw_blob(fx->h, d, g, &raw, &len) && len == 14 &&
			         memcmp(raw, "precious bytes", 14) == 0;
			free(raw);
		}
		if (!intact) {
			print_error("%s('%s') modified or moved blob %s\n", names[op], ids[i], d);
			failures++;
			/* restore for the next id */
			assert_ok(BOP(remove, d, g));
			put_blob(fx, "precious bytes", 14, d, g);
		}
		char what[PATH_MAX];
		if (fx->drv->raw_escaped && fx->drv->raw_escaped(fx->h, what, sizeof(what))) {
			print_error("%s('%s'): unexpected entry %s\n", names[op], ids[i], what);
			failures++;
		}
	}
	if (failures)
		fail_msg("%s accepted upload ids that are not UUIDs (%d problems)", names[op],
		         failures);
}

BLOB_TEST(blob_upload_create_rejects_non_uuid)
{
	check_bad_upload_ids(fx, UP_CREATE);
}

BLOB_TEST(blob_upload_open_rejects_non_uuid)
{
	check_bad_upload_ids(fx, UP_OPEN);
}

BLOB_TEST(blob_upload_truncate_rejects_non_uuid)
{
	check_bad_upload_ids(fx, UP_TRUNCATE);
}

BLOB_TEST(blob_upload_commit_rejects_non_uuid)
{
	check_bad_upload_ids(fx, UP_COMMIT);
}

BLOB_TEST(blob_upload_remove_ignores_non_uuid)
{
	check_bad_upload_ids(fx, UP_REMOVE);
}

BLOB_TEST(blob_upload_uuid_case)
{
	/* Upper-case UUIDs are UUIDs too (uuid_is_valid accepts either case). */
	char id[37], d[DIGEST_STR_LEN];
	uuid_v4(id);
	for (char *p = id; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	assert_ok(BOP(upload_create, id));
	assert_ok(up_write(fx, id, 0, "UP", 2));
	digest_of("UP", d);
	assert_ok(BOP(upload_commit, id, 2, d));
	assert_blob_is(fx, d, id, "UP", 2);
}

BLOB_TEST(blob_reopen_keeps_blobs)
{
	char d[DIGEST_STR_LEN], id[37], g[UUID_STR_LEN];
	put_blob(fx, "persist", 7, d, g);
	uuid_v4(id);
	assert_ok(BOP(upload_create, id));
	assert_ok(up_write(fx, id, 0, "half", 4));
	blob_close(fx->b);
	fx->b = NULL;
	assert_ok(fx->drv->open(fx->h, &fx->b, &fx->err));
	assert_blob_is(fx, d, g, "persist", 7);
	/* an upload in progress survives a restart */
	assert_ok(up_write(fx, id, 4, "-done", 5));
	char d2[DIGEST_STR_LEN];
	digest_of("half-done", d2);
	assert_ok(BOP(upload_commit, id, 9, d2));
	assert_blob_is(fx, d2, id, "half-done", 9);
	assert_not_escaped(fx);
}

struct committer {
	struct blob_store *b;
	const char *digest;
	atomic_int *go;
	enum berr_code rc;
	char id[UUID_STR_LEN];
};

static void *committer_main(void *arg)
{
	struct committer *c = arg;
	struct berr e;
	struct blob_upload *u = NULL;
	char *id = c->id;
	uuid_v4(id);
	c->rc = c->b->ops->upload_create(c->b, id, &e);
	if (c->rc == BERR_OK)
		c->rc = c->b->ops->upload_open(c->b, id, 0, &u, &e);
	if (c->rc == BERR_OK) {
		c->rc = c->b->ops->upload_append(u, "same", 4, &e);
		if (c->rc == BERR_OK)
			c->rc = c->b->ops->upload_append(u, " bytes", 6, &e);
		if (c->rc == BERR_OK)
			c->rc = c->b->ops->upload_sync(u, &e);
		c->b->ops->upload_close(u);
	}
	while (!atomic_load(c->go))
		;
	if (c->rc == BERR_OK)
		c->rc = c->b->ops->upload_commit(c->b, id, 10, c->digest, &e);
	return NULL;
}

BLOB_TEST(blob_concurrent_commit_same_digest)
{
	enum { N = 6 };
	char d[DIGEST_STR_LEN];
	digest_of("same bytes", d);
	atomic_int go = 0;
	struct committer c[N];
	pthread_t th[N];
	for (int i = 0; i < N; i++) {
		c[i] = (struct committer){fx->b, d, &go, BERR_INTERNAL, ""};
		assert_int_equal(pthread_create(&th[i], NULL, committer_main, &c[i]), 0);
	}
	atomic_store(&go, 1);
	for (int i = 0; i < N; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < N; i++) {
		assert_int_equal(c[i].rc, BERR_OK);
		assert_blob_is(fx, d, c[i].id, "same bytes", 10); /* each under its own name */
	}
	assert_not_escaped(fx);
	/* no upload files left behind */
	if (fx->drv == &fs_blob) {
		char *up = xasprintf("%s/uploads", ((struct fs_store *)fx->h)->root);
		static const char *const none[] = {NULL};
		char what[PATH_MAX];
		bool left = dir_has_other(up, none, what, sizeof(what));
		free(up);
		if (left)
			fail_msg("upload left behind: %s", what);
	}
}

/* The blob store contract: every driver must pass every case. */
#define BLOB_CASES(X)                                                                              \
	X(blob_upload_commit)                                                                      \
	X(blob_upload_handle_appends)                                                              \
	X(blob_upload_large_unaligned)                                                             \
	X(blob_upload_overwrite_and_truncate)                                                      \
	X(blob_generations)                                                                        \
	X(blob_open_stat_remove)                                                                   \
	X(blob_not_found)                                                                          \
	X(blob_invalid_digest_rejected)                                                            \
	X(blob_upload_create_rejects_non_uuid)                                                     \
	X(blob_upload_open_rejects_non_uuid)                                                       \
	X(blob_upload_truncate_rejects_non_uuid)                                                   \
	X(blob_upload_commit_rejects_non_uuid)                                                     \
	X(blob_upload_remove_ignores_non_uuid)                                                     \
	X(blob_upload_uuid_case)                                                                   \
	X(blob_reopen_keeps_blobs)                                                                 \
	X(blob_concurrent_commit_same_digest)

/* ------------------------------------------------------------------------------------------ */

/* One CMUnitTest per (driver, case); the driver's opener is the test's initial state. */
#define META_ENTRY(drv, c) {#drv "/" #c, c, meta_setup, meta_teardown, (void *)&drv##_meta},
#define BLOB_ENTRY(drv, c) {#drv "/" #c, c, blob_setup, blob_teardown, (void *)&drv##_blob},
#define META_SQLITE(c) META_ENTRY(sqlite, c)
#define BLOB_FS(c) BLOB_ENTRY(fs, c)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    META_CASES(META_SQLITE) /* add: META_CASES(META_POSTGRES) */
	    BLOB_CASES(BLOB_FS)     /* add: BLOB_CASES(BLOB_S3) */
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
