/* core.c - opening the data directory, its one-server lock, registry documents and signed
 * blob URLs.
 *
 * Data directory layout:
 *     berth.db (+ -wal, -shm)   metadata (SQLite, WAL)
 *     secret                    32 random bytes, 0600: HMAC key for tokens and URLs; every
 *                               node of a cluster must share it
 *     serve.lock                held (flock(2), exclusive) by the one `berth serve` that owns
 *                               the directory, for its lifetime; holds its PID; never removed
 *     locks/<upload id>         flock(2) files serialising appends to one upload session
 *     blobs/, uploads/          the blob store (blob_fs.c)
 *
 * One server per data directory: a second one is nearly always a mistake (a copy left running,
 * a service started twice), and berth serve is built as the directory's one writer process:
 * its write gate and group commit queue the writers of its own process, and another server's
 * would fall back to SQLite's busy polling. Maintenance commands (gc, fsck, lifecycle) do not
 * take the lock: they are built to run beside a server. */
#include "../base/feat.h"

#include "core_int.h"
#include "../base/log.h"
#include "../base/mem.h"
#include "../base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/file.h>
#include <unistd.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enum berr_code load_secret(const char *dir, unsigned char key[32], struct berr *err)
{
	char *path = xasprintf("%s/secret", dir);
	char *data = NULL;
	size_t len = 0;
	enum berr_code rc = fs_read_all(path, 4096, &data, &len, err);
	if (rc == BERR_NOT_FOUND) {
		unsigned char fresh[32];
		rand_bytes(fresh, sizeof(fresh));
		rc = fs_write_atomic(path, fresh, sizeof(fresh), 0600, err);
		if (rc == BERR_OK)
			rc = fs_read_all(path, 4096, &data, &len, err);
	}
	if (rc == BERR_OK && len != 32)
		rc = err_set(err, BERR_IO, "%s: expected 32 bytes, found %zu", path, len);
	if (rc == BERR_OK)
		memcpy(key, data, 32);
	free(data);
	free(path);
	return rc;
}

enum berr_code core_open(const char *data_dir, int pool_size, struct core **out, struct berr *err)
{
	struct core *c = xcalloc(1, sizeof(*c));
	c->reserve = -1;
	c->pulls = core_pulls_new();
	c->lists = core_list_cache_new();
	enum berr_code rc = fs_mkdirs(data_dir, err);
	if (rc == BERR_OK)
		rc = load_secret(data_dir, c->secret, err);
	c->lock_dir = xasprintf("%s/locks", data_dir);
	if (rc == BERR_OK)
		rc = fs_mkdirs(c->lock_dir, err);
	if (rc == BERR_OK)
		rc = blob_fs_open(data_dir, &c->blobs, err);
	if (rc == BERR_OK) {
		char *db = xasprintf("%s/berth.db", data_dir);
		rc = meta_pool_open(db, pool_size, &c->pool, err);
		if (rc == BERR_OK) /* after the pool: its first connection migrates the schema */
			rc = core_writer_open(db, &c->writer, err);
		free(db);
	}
	if (rc != BERR_OK) {
		core_close(c);
		return rc;
	}
	*out = c;
	return BERR_OK;
}

enum berr_code core_serve_lock(const char *data_dir, int *fd, struct berr *err)
{
	enum berr_code rc = fs_mkdirs(data_dir, err);
	if (rc != BERR_OK)
		return rc;
	char *path = xasprintf("%s/serve.lock", data_dir);
	int d = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (d < 0) {
		rc = err_sys(err, BERR_IO, errno, "cannot open %s: %s", path, strerror(errno));
		goto out;
	}
	int r;
	while ((r = flock(d, LOCK_EX | LOCK_NB)) < 0 && errno == EINTR)
		;
	if (r < 0) {
		int e = errno;
		if (e == EWOULDBLOCK) {
			/* The owner writes its PID right after taking the lock: it may not be
			 * there yet. */
			char buf[32] = "";
			ssize_t n = pread(d, buf, sizeof(buf) - 1, 0);
			long pid = n > 0 ? strtol(buf, NULL, 10) : 0;
			char who[40] = "";
			if (pid > 0)
				snprintf(who, sizeof(who), " (pid %ld)", pid);
			rc = err_set(err, BERR_CONFLICT,
			             "data directory %s is in use by another berth serve%s",
			             data_dir, who);
		} else {
			rc = err_sys(err, BERR_IO, e, "cannot lock %s: %s", path, strerror(e));
		}
		close(d);
		goto out;
	}
	char pid[32];
	int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(d, 0) < 0 || pwrite(d, pid, (size_t)n, 0) != n) {
		rc = err_sys(err, BERR_IO, errno, "cannot write %s: %s", path, strerror(errno));
		close(d);
		goto out;
	}
	*fd = d;
out:
	free(path);
	return rc;
}

void core_serve_unlock(int fd)
{
	if (fd >= 0)
		close(fd); /* drops the flock; the file and its stale PID stay */
}

void core_close(struct core *c)
{
	if (!c)
		return;
	if (c->pool) {
		/* Last flush of pending pull times. */
		struct berr e;
		struct meta *m = meta_pool_acquire(c->pool);
		core_pull_flush(c, m, &e);
		meta_pool_release(c->pool, m);
	}
	core_pulls_free(c->pulls);
	core_list_cache_free(c->lists);
	core_writer_close(c->writer);
	meta_pool_close(c->pool);
	blob_close(c->blobs);
	free(c->lock_dir);
	free(c);
}

enum berr_code core_doc_get(struct meta *m, const struct registry_id *reg, const char *name,
                            char **value, struct berr *err)
{
	return m->ops->kv_get(m, reg->account, reg->region, name, value, err);
}

enum berr_code core_doc_put(struct meta *m, const struct registry_id *reg, const char *name,
                            const char *value, struct berr *err)
{
	return m->ops->kv_put(m, reg->account, reg->region, name, value, err);
}

enum berr_code core_doc_delete(struct meta *m, const struct registry_id *reg, const char *name,
                               struct berr *err)
{
	return m->ops->kv_delete(m, reg->account, reg->region, name, err);
}

static char *url_mac(const struct core *c, const struct registry_id *reg, const char *repo,
                     const char *digest, int64_t expires_s)
{
	char *msg = xasprintf("blob|%s|%s|%s|%s|%" PRId64, reg->account, reg->region, repo, digest,
	                      expires_s);
	unsigned char mac[SHA256_DIGEST_LEN];
	hmac_sha256(c->secret, sizeof(c->secret), msg, strlen(msg), mac);
	free(msg);
	return base64url_encode(mac, sizeof(mac));
}

char *core_blob_url_sig(const struct core *c, const struct registry_id *reg, const char *repo,
                        const char *digest, int64_t expires_s)
{
	return url_mac(c, reg, repo, digest, expires_s);
}

enum berr_code core_blob_url_verify(const struct core *c, const struct registry_id *reg,
                                    const char *repo, const char *digest, int64_t expires_s,
                                    const char *sig, int64_t now_s, struct berr *err)
{
	char *want = url_mac(c, reg, repo, digest, expires_s);
	bool ok = strlen(sig) == strlen(want) && crypto_equal(sig, want, strlen(want));
	free(want);
	if (!ok)
		return err_set(err, BERR_DENIED, "invalid download URL signature");
	if (now_s > expires_s)
		return err_set(err, BERR_DENIED, "the download URL has expired");
	return BERR_OK;
}

enum berr_code core_lock_acquire(struct core *c, const char *name, int *fd, struct berr *err)
{
	char *p = xasprintf("%s/%s", c->lock_dir, name);
	int d = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	free(p);
	if (d < 0)
		return err_sys(err, BERR_IO, errno, "open lock %s: %s", name, strerror(errno));
	while (flock(d, LOCK_EX) < 0) {
		if (errno != EINTR) {
			int e = errno;
			close(d);
			return err_sys(err, BERR_IO, e, "lock %s: %s", name, strerror(e));
		}
	}
	*fd = d;
	return BERR_OK;
}

void core_lock_release(int fd)
{
	if (fd >= 0)
		close(fd); /* drops the flock */
}

void core_lock_remove(struct core *c, const char *name)
{
	char *p = xasprintf("%s/%s", c->lock_dir, name);
	unlink(p);
	free(p);
}
