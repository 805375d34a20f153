/* blob_fs.c - filesystem blob store.
 *
 * Layout under the data directory:
 *     blobs/sha256/<first 2 hex>/<64 hex>   immutable blob files, 0644
 *     uploads/<uuid>                        upload in progress (same filesystem: rename works)
 * A blob appears only by rename(2) of a fully written, fsync'd upload file followed by an fsync
 * of its directory, so a reader never sees partial content and a crash leaves at worst an
 * orphan upload file (removed by upload expiry / gc). */
#include "../base/feat.h"

#include "blob.h"
#include "../base/mem.h"
#include "../base/util.h"
#include "../oci/ref.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct blob_fs {
	struct blob_store super;
	char *root;
	char *uploads;
};

static struct blob_fs *self(struct blob_store *b)
{
	return container_of(b, struct blob_fs, super);
}

static void upload_path(struct blob_fs *f, const char *id, char *out, size_t n)
{
	snprintf(out, n, "%s/%s", f->uploads, id);
}

/* Digests reach here already validated by the caller; re-check so a bad caller can never make
 * us touch a path outside blobs/. */
static enum berr_code blob_path(struct blob_fs *f, const char *digest, char *dir, char *file,
                                size_t n, struct berr *err)
{
	if (!ref_digest_is_supported(digest))
		return err_set(err, BERR_DIGEST_INVALID, "unsupported digest");
	const char *hex = digest + 7;
	snprintf(dir, n, "%s/blobs/sha256/%.2s", f->root, hex);
	snprintf(file, n, "%s/%s", dir, hex);
	return BERR_OK;
}

static void fs_close(struct blob_store *b)
{
	struct blob_fs *f = self(b);
	free(f->root);
	free(f->uploads);
	free(f);
}

static enum berr_code fs_upload_create(struct blob_store *b, const char *id, struct berr *err)
{
	char p[PATH_MAX];
	if (!uuid_is_valid(id))
		return err_set(err, BERR_INVALID, "bad upload id");
	upload_path(self(b), id, p, sizeof(p));
	int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return err_sys(err, BERR_IO, errno, "create %s: %s", p, strerror(errno));
	close(fd);
	return BERR_OK;
}

struct blob_upload {
	int fd;
	int64_t offset;
	int64_t flushed; /* writeback has been started for bytes before this offset */
	char *path;
};

/* Start writeback every this many appended bytes, so the final fdatasync finds most of the
 * data already on its way to disk instead of waiting for all of it (sync_file_range(2) with
 * SYNC_FILE_RANGE_WRITE only queues I/O; durability still comes from fdatasync). */
#define WRITEBACK_STEP (1024 * 1024)

static enum berr_code fs_upload_open(struct blob_store *b, const char *id, int64_t offset,
                                     struct blob_upload **out, struct berr *err)
{
	char p[PATH_MAX];
	if (!uuid_is_valid(id))
		return err_set(err, BERR_INVALID, "bad upload id");
	upload_path(self(b), id, p, sizeof(p));
	int fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return err_sys(err, errno == ENOENT ? BERR_NOT_FOUND : BERR_IO, errno,
		               "open %s: %s", p, strerror(errno));
	struct blob_upload *u = xcalloc(1, sizeof(*u));
	u->fd = fd;
	u->offset = offset;
	u->flushed = offset;
	u->path = xstrdup(p);
	*out = u;
	return BERR_OK;
}

static enum berr_code fs_upload_append(struct blob_upload *u, const void *data, size_t len,
                                       struct berr *err)
{
	const char *s = data;
	while (len) {
		ssize_t w = pwrite(u->fd, s, len, u->offset);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return err_sys(err, BERR_IO, errno, "write %s: %s", u->path,
			               strerror(errno));
		}
		s += w;
		len -= (size_t)w;
		u->offset += w;
	}
	if (u->offset - u->flushed >= WRITEBACK_STEP) {
		sync_file_range(u->fd, u->flushed, u->offset - u->flushed, SYNC_FILE_RANGE_WRITE);
		u->flushed = u->offset;
	}
	return BERR_OK;
}

static enum berr_code fs_upload_sync(struct blob_upload *u, struct berr *err)
{
	if (fdatasync(u->fd) < 0)
		return err_sys(err, BERR_IO, errno, "fdatasync %s: %s", u->path, strerror(errno));
	return BERR_OK;
}

static void fs_upload_close(struct blob_upload *u)
{
	if (!u)
		return;
	close(u->fd);
	free(u->path);
	free(u);
}

/* fsync of a whole upload file by name (used before the commit rename). */
static enum berr_code sync_path(const char *p, struct berr *err)
{
	int fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return err_sys(err, errno == ENOENT ? BERR_NOT_FOUND : BERR_IO, errno,
		               "open %s: %s", p, strerror(errno));
	int rc = fsync(fd);
	int e = errno;
	close(fd);
	if (rc < 0)
		return err_sys(err, BERR_IO, e, "fsync %s: %s", p, strerror(e));
	return BERR_OK;
}

static enum berr_code fs_upload_truncate(struct blob_store *b, const char *id, int64_t size,
                                         struct berr *err)
{
	if (!uuid_is_valid(id))
		return err_set(err, BERR_INVALID, "bad upload id");
	char p[PATH_MAX];
	upload_path(self(b), id, p, sizeof(p));
	if (truncate(p, size) < 0)
		return err_sys(err, BERR_IO, errno, "truncate %s: %s", p, strerror(errno));
	return BERR_OK;
}

static enum berr_code fs_upload_commit(struct blob_store *b, const char *id, const char *digest,
                                       struct berr *err)
{
	if (!uuid_is_valid(id))
		return err_set(err, BERR_INVALID, "bad upload id");
	struct blob_fs *f = self(b);
	char up[PATH_MAX], dir[PATH_MAX], file[PATH_MAX];
	upload_path(f, id, up, sizeof(up));
	if (blob_path(f, digest, dir, file, sizeof(dir), err) != BERR_OK)
		return err->code;
	struct stat sb;
	if (stat(file, &sb) == 0) {
		/* Same digest, same bytes: keep the existing file. */
		unlink(up);
		return BERR_OK;
	}
	enum berr_code rc = sync_path(up, err);
	if (rc != BERR_OK)
		return rc;
	if ((rc = fs_mkdirs(dir, err)) != BERR_OK)
		return rc;
	if (rename(up, file) < 0)
		return err_sys(err, BERR_IO, errno, "rename %s: %s", file, strerror(errno));
	return fs_fsync_dir(dir, err);
}

static void fs_upload_remove(struct blob_store *b, const char *id)
{
	char p[PATH_MAX];
	if (!uuid_is_valid(id))
		return;
	upload_path(self(b), id, p, sizeof(p));
	unlink(p);
}

static enum berr_code fs_open(struct blob_store *b, const char *digest, int *fd, int64_t *size,
                              struct berr *err)
{
	char dir[PATH_MAX], file[PATH_MAX];
	if (blob_path(self(b), digest, dir, file, sizeof(dir), err) != BERR_OK)
		return err->code;
	int d = open(file, O_RDONLY | O_CLOEXEC);
	if (d < 0) {
		if (errno == ENOENT)
			return err_set(err, BERR_NOT_FOUND, "blob %s not found", digest);
		return err_sys(err, BERR_IO, errno, "open %s: %s", file, strerror(errno));
	}
	struct stat sb;
	if (fstat(d, &sb) < 0) {
		int e = errno;
		close(d);
		return err_sys(err, BERR_IO, e, "stat %s: %s", file, strerror(e));
	}
	*fd = d;
	if (size)
		*size = sb.st_size;
	return BERR_OK;
}

static enum berr_code fs_stat(struct blob_store *b, const char *digest, int64_t *size,
                              struct berr *err)
{
	char dir[PATH_MAX], file[PATH_MAX];
	if (blob_path(self(b), digest, dir, file, sizeof(dir), err) != BERR_OK)
		return err->code;
	struct stat sb;
	if (stat(file, &sb) < 0) {
		if (errno == ENOENT)
			return err_set(err, BERR_NOT_FOUND, "blob %s not found", digest);
		return err_sys(err, BERR_IO, errno, "stat %s: %s", file, strerror(errno));
	}
	if (size)
		*size = sb.st_size;
	return BERR_OK;
}

static enum berr_code fs_remove(struct blob_store *b, const char *digest, struct berr *err)
{
	char dir[PATH_MAX], file[PATH_MAX];
	if (blob_path(self(b), digest, dir, file, sizeof(dir), err) != BERR_OK)
		return err->code;
	if (unlink(file) < 0 && errno != ENOENT)
		return err_sys(err, BERR_IO, errno, "unlink %s: %s", file, strerror(errno));
	return BERR_OK;
}

/* Lists dir, calling visit(ctx, dir, entry name) for regular files. */
static enum berr_code list_dir(const char *dir, int (*visit)(void *, const char *, const char *),
                               void *ctx, bool *stopped, struct berr *err)
{
	DIR *d = opendir(dir);
	if (!d) {
		if (errno == ENOENT)
			return BERR_OK;
		return err_sys(err, BERR_IO, errno, "opendir %s: %s", dir, strerror(errno));
	}
	struct dirent *e;
	while (!*stopped && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (visit(ctx, dir, e->d_name))
			*stopped = true;
	}
	closedir(d);
	return BERR_OK;
}

struct walk_ctx {
	blob_walk_fn fn;
	void *ctx;
	bool stopped;
	struct berr *err;
	enum berr_code rc;
};

static int visit_file(struct walk_ctx *w, const char *dir, const char *file, const char *name)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s", dir, file);
	struct stat sb;
	if (lstat(p, &sb) < 0 || !S_ISREG(sb.st_mode))
		return 0;
	int64_t mtime = (int64_t)sb.st_mtim.tv_sec * 1000 + sb.st_mtim.tv_nsec / 1000000;
	return w->fn(w->ctx, name, sb.st_size, mtime);
}

static int visit_blob(void *ctx, const char *dir, const char *file)
{
	char digest[80];
	snprintf(digest, sizeof(digest), "sha256:%s", file);
	if (!ref_digest_is_supported(digest))
		return 0;
	return visit_file(ctx, dir, file, digest);
}

static int visit_prefix(void *ctx, const char *dir, const char *sub)
{
	struct walk_ctx *w = ctx;
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s", dir, sub);
	if (strlen(sub) != 2)
		return 0;
	w->rc = list_dir(p, visit_blob, w, &w->stopped, w->err);
	return w->rc != BERR_OK;
}

static enum berr_code fs_walk(struct blob_store *b, blob_walk_fn fn, void *ctx, struct berr *err)
{
	char root[PATH_MAX];
	snprintf(root, sizeof(root), "%s/blobs/sha256", self(b)->root);
	struct walk_ctx w = {fn, ctx, false, err, BERR_OK};
	enum berr_code rc = list_dir(root, visit_prefix, &w, &w.stopped, err);
	return rc != BERR_OK ? rc : w.rc;
}

static int visit_upload(void *ctx, const char *dir, const char *file)
{
	if (!uuid_is_valid(file))
		return 0;
	return visit_file(ctx, dir, file, file);
}

static enum berr_code fs_upload_walk(struct blob_store *b, blob_walk_fn fn, void *ctx,
                                     struct berr *err)
{
	struct walk_ctx w = {fn, ctx, false, err, BERR_OK};
	return list_dir(self(b)->uploads, visit_upload, &w, &w.stopped, err);
}

static const struct blob_ops fs_ops = {
    .close = fs_close,
    .upload_create = fs_upload_create,
    .upload_open = fs_upload_open,
    .upload_append = fs_upload_append,
    .upload_sync = fs_upload_sync,
    .upload_close = fs_upload_close,
    .upload_truncate = fs_upload_truncate,
    .upload_commit = fs_upload_commit,
    .upload_remove = fs_upload_remove,
    .open = fs_open,
    .stat = fs_stat,
    .walk = fs_walk,
    .upload_walk = fs_upload_walk,
    .remove = fs_remove,
};

enum berr_code blob_fs_open(const char *dir, struct blob_store **out, struct berr *err)
{
	struct blob_fs *f = xcalloc(1, sizeof(*f));
	f->super.ops = &fs_ops;
	f->root = xstrdup(dir);
	f->uploads = xasprintf("%s/uploads", dir);
	char *blobs = xasprintf("%s/blobs/sha256", dir);
	enum berr_code rc = fs_mkdirs(blobs, err);
	if (rc == BERR_OK)
		rc = fs_mkdirs(f->uploads, err);
	free(blobs);
	if (rc != BERR_OK) {
		fs_close(&f->super);
		return rc;
	}
	*out = &f->super;
	return BERR_OK;
}
