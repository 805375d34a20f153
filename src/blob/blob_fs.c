/* blob_fs.c - filesystem blob store.
 *
 * Layout under the data directory:
 *     blobs/sha256/<first 2 hex>/<64 hex>.<gen>   immutable blob files, 0644 (gen: the id of
 *                                               the upload that wrote it)
 *     blobs/sha256/<first 2 hex>/<64 hex>         the same, written before generations
 *     uploads/<uuid>                              upload in progress (same file system)
 * A blob appears only by rename(2) of a fully written, fsync'd upload file (uploads/<gen>)
 * followed by an fsync of its directory, so a reader never sees partial content and a crash
 * leaves at worst an orphan file (removed by gc). */
#include "../base/feat.h"

#include "blob.h"
#include "../base/mem.h"
#include "../base/util.h"
#include "../oci/ref.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/aio_abi.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define DIO_ALIGN 4096           /* covers 512- and 4096-byte logical blocks */
#define STAGE_SIZE (1024 * 1024) /* bytes per direct write */
#define AIO_DEPTH 4              /* buffers per upload: one filling, the others in flight */
#define STAGE_POOL 8             /* idle staging buffers (and AIO contexts) kept */
#define EXTEND_STEP (64 << 20)   /* file size raised ahead of asynchronous writes */

struct blob_fs {
	struct blob_store super;
	char *root;
	char *uploads;
	atomic_bool direct; /* try O_DIRECT for upload files (cleared when the fs refuses it) */
	pthread_mutex_t mu;
	struct idle_pool {
		uintptr_t v[STAGE_POOL];
		int n;
	} bufs, ctxs; /* idle staging buffers and AIO contexts, under mu */
};

static struct blob_fs *self(struct blob_store *b)
{
	return container_of(b, struct blob_fs, super);
}

static void upload_path(struct blob_fs *f, const char *id, char *out, size_t n)
{
	snprintf(out, n, "%s/%s", f->uploads, id);
}

/* Digests and gens reach here already validated by the caller; re-check so a bad caller can
 * never make us touch a path outside blobs/. */
static enum berr_code blob_path(struct blob_fs *f, const char *digest, const char *gen, char *dir,
                                char *file, size_t n, struct berr *err)
{
	if (!ref_digest_is_supported(digest))
		return err_set(err, BERR_DIGEST_INVALID, "unsupported digest");
	if (gen[0] && !uuid_is_valid(gen))
		return err_set(err, BERR_INVALID, "bad blob generation");
	const char *hex = digest + 7;
	snprintf(dir, n, "%s/blobs/sha256/%.2s", f->root, hex);
	snprintf(file, n, "%s/%s%s%s", dir, hex, gen[0] ? "." : "", gen);
	return BERR_OK;
}

static void fs_close(struct blob_store *b)
{
	struct blob_fs *f = self(b);
	for (int i = 0; i < f->bufs.n; i++)
		munmap((void *)f->bufs.v[i], STAGE_SIZE);
	for (int i = 0; i < f->ctxs.n; i++)
		syscall(SYS_io_destroy, (aio_context_t)f->ctxs.v[i]);
	pthread_mutex_destroy(&f->mu);
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

/* Upload files are written with direct I/O where the filesystem allows it: appends are
 * copied into an aligned staging buffer and written a full buffer at a time with O_DIRECT,
 * straight from user memory to the device. A pushed layer is rarely read back right away,
 * and it must reach the disk before the 201 anyway, so the page cache would only add a copy,
 * page allocation and write-back work per byte (on a VM each new page-cache page can also
 * cost the host a fault), while the final fdatasync has less left to wait for.
 *
 * Invariants: the staging buffer holds the file's bytes [stage_off, offset) with stage_off a
 * multiple of DIO_ALIGN; every flush writes only those bytes (whole blocks with O_DIRECT, a
 * last partial block through the buffered descriptor), so bytes past offset are never
 * touched. Full buffers are written asynchronously (Linux AIO), up to AIO_DEPTH - 1 at a
 * time while the next one fills, so receiving, hashing and the device overlap; bytes before
 * stage_off may still be in flight, and a flush or close first waits for all of them.
 * Buffers and AIO contexts are pooled. Where O_DIRECT is refused (tmpfs on older kernels,
 * some FUSE or network file systems) the upload falls back to buffered writes for good. */

struct blob_upload {
	struct blob_fs *fs;
	int fd;          /* buffered, read-write */
	int dfd;         /* O_DIRECT, or -1 */
	int64_t offset;  /* end of the appended bytes (staged or written) */
	int64_t flushed; /* buffered path: writeback started for bytes before this offset */
	char *stage;     /* NULL until the first direct append */
	int64_t stage_off;
	size_t stage_len;
	aio_context_t aio; /* 0: none yet */
	bool no_aio;       /* direct writes stay synchronous */
	int64_t size0;     /* the file's size when the first asynchronous write started */
	int64_t size;      /* the file's size: size0, or as raised ahead (see aio_start) */
	bool extended;     /* size was raised past the data: the last flush sets it back */
	struct aio_buf {
		char *p; /* NULL: slot unused */
		size_t len;
		int64_t off;
	} fly[AIO_DEPTH]; /* writes in flight */
	int nfly;
	char *spare[AIO_DEPTH]; /* idle buffers of this upload */
	int nspare;
	int nbufs; /* buffers taken from the pool, the stage included */
	char *path;
};

/* Start writeback every this many appended bytes, so the final fdatasync finds most of the
 * data already on its way to disk instead of waiting for all of it (sync_file_range(2) with
 * SYNC_FILE_RANGE_WRITE only queues I/O; durability still comes from fdatasync). */
#define WRITEBACK_STEP (1024 * 1024)

/* An idle item, or 0. */
static uintptr_t pool_take(struct blob_fs *f, struct idle_pool *p)
{
	pthread_mutex_lock(&f->mu);
	uintptr_t x = p->n ? p->v[--p->n] : 0;
	pthread_mutex_unlock(&f->mu);
	return x;
}

/* Keeps x; false if the pool is full (the caller releases x). */
static bool pool_give(struct blob_fs *f, struct idle_pool *p, uintptr_t x)
{
	pthread_mutex_lock(&f->mu);
	bool kept = p->n < STAGE_POOL;
	if (kept)
		p->v[p->n++] = x;
	pthread_mutex_unlock(&f->mu);
	return kept;
}

static char *stage_get(struct blob_fs *f)
{
	char *p = (char *)pool_take(f, &f->bufs);
	if (!p) {
		/* mmap: page-aligned, and given back to the kernel whole when not pooled */
		p = mmap(NULL, STAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		         0);
		if (p == MAP_FAILED)
			return NULL;
	}
	return p;
}

static void stage_put(struct blob_fs *f, char *p)
{
	if (p && !pool_give(f, &f->bufs, (uintptr_t)p))
		munmap(p, STAGE_SIZE);
}

/* AIO contexts are pooled like the buffers: io_destroy waits for an RCU grace period
 * (tens of milliseconds), far too long to pay per request. */
static aio_context_t aio_get(struct blob_fs *f)
{
	aio_context_t ctx = (aio_context_t)pool_take(f, &f->ctxs);
	if (!ctx && syscall(SYS_io_setup, AIO_DEPTH, &ctx) < 0)
		ctx = 0;
	return ctx;
}

/* Returns an idle context (no write in flight) to the pool. */
static void aio_put(struct blob_fs *f, aio_context_t ctx)
{
	if (ctx && !pool_give(f, &f->ctxs, (uintptr_t)ctx))
		syscall(SYS_io_destroy, ctx);
}

static enum berr_code fs_upload_open(struct blob_store *b, const char *id, int64_t offset,
                                     struct blob_upload **out, struct berr *err)
{
	char p[PATH_MAX];
	if (!uuid_is_valid(id))
		return err_set(err, BERR_INVALID, "bad upload id");
	upload_path(self(b), id, p, sizeof(p));
	int fd = open(p, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return err_sys(err, errno == ENOENT ? BERR_NOT_FOUND : BERR_IO, errno,
		               "open %s: %s", p, strerror(errno));
	struct blob_upload *u = xcalloc(1, sizeof(*u));
	u->fs = self(b);
	u->fd = fd;
	u->dfd = atomic_load(&u->fs->direct) ? open(p, O_WRONLY | O_DIRECT | O_CLOEXEC) : -1;
	u->offset = offset;
	u->flushed = offset;
	u->path = xstrdup(p);
	*out = u;
	return BERR_OK;
}

static enum berr_code write_all(struct blob_upload *u, int fd, const char *s, size_t len,
                                int64_t at, struct berr *err)
{
	while (len) {
		ssize_t w = pwrite(fd, s, len, at);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return err_sys(err, BERR_IO, errno, "write %s: %s", u->path,
			               strerror(errno));
		}
		s += w;
		len -= (size_t)w;
		at += w;
	}
	return BERR_OK;
}

/* Stops using direct I/O for this upload (and for the store, if the file system refused it):
 * staged bytes stay staged and the next flush writes them buffered. */
static void direct_off(struct blob_upload *u, int e)
{
	if (e == EINVAL)
		atomic_store(&u->fs->direct, false);
	close(u->dfd);
	u->dfd = -1;
}

/* Completes a direct write of len bytes from p at off that returned res (-errno on
 * failure): a refusal turns direct I/O off, and what it did not write (short write,
 * refusal) goes out through the buffered descriptor. */
static enum berr_code direct_done(struct blob_upload *u, long long res, const char *p, size_t len,
                                  int64_t off, struct berr *err)
{
	size_t done = 0;
	if (res == -EINVAL || res == -EOPNOTSUPP) {
		if (u->dfd >= 0)
			direct_off(u, (int)-res);
	} else if (res < 0) {
		return err_sys(err, BERR_IO, (int)-res, "write %s: %s", u->path,
		               strerror((int)-res));
	} else {
		done = (size_t)res;
	}
	return done < len ? write_all(u, u->fd, p + done, len - done, off + (int64_t)done, err)
	                  : BERR_OK;
}

/* Reaps at least min finished writes (what one did not write goes out buffered) and makes
 * their buffers idle. Returns the first error. */
static enum berr_code aio_reap(struct blob_upload *u, long min, struct berr *err)
{
	struct io_event ev[AIO_DEPTH];
	long n;
	do
		n = syscall(SYS_io_getevents, u->aio, min, (long)AIO_DEPTH, ev, NULL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return err_sys(err, BERR_IO, errno, "write %s: io_getevents: %s", u->path,
		               strerror(errno));
	enum berr_code rc = BERR_OK;
	for (long i = 0; i < n; i++) {
		struct aio_buf *b = (struct aio_buf *)(uintptr_t)ev[i].data;
		if (rc == BERR_OK)
			rc = direct_done(u, ev[i].res, b->p, b->len, b->off, err);
		u->spare[u->nspare++] = b->p;
		b->p = NULL;
		u->nfly--;
	}
	return rc;
}

static enum berr_code aio_wait_all(struct blob_upload *u, struct berr *err)
{
	enum berr_code rc = BERR_OK;
	while (u->nfly) {
		enum berr_code r = aio_reap(u, u->nfly, err);
		if (r != BERR_OK && rc == BERR_OK)
			rc = r;
		if (r != BERR_OK && u->nfly)
			break; /* io_getevents itself failed */
	}
	return rc;
}

/* Starts writing the full staging buffer asynchronously and stages into an idle buffer
 * (waiting for a write to finish when all are busy). *started is false if it could not
 * (the caller writes synchronously); errors are those of earlier writes. */
static enum berr_code aio_start(struct blob_upload *u, bool *started, struct berr *err)
{
	*started = false;
	if (!u->aio) {
		struct stat sb;
		if (u->no_aio || fstat(u->fd, &sb) < 0 || !(u->aio = aio_get(u->fs))) {
			u->no_aio = true;
			return BERR_OK;
		}
		u->size = u->size0 = sb.st_size;
	}
	if (!u->nspare && u->nbufs < AIO_DEPTH) {
		char *p = stage_get(u->fs);
		if (!p)
			return BERR_OK;
		u->spare[u->nspare++] = p;
		u->nbufs++;
	}
	if (!u->nspare) {
		enum berr_code rc = aio_reap(u, 1, err);
		if (rc != BERR_OK || !u->nspare)
			return rc;
	}
	/* A write past the end of the file completes synchronously inside io_submit (ext4,
	 * xfs), so the size is raised ahead in big steps; the last flush sets the real size. */
	int64_t end = u->stage_off + (int64_t)u->stage_len;
	if (end > u->size) {
		if (ftruncate(u->fd, end + EXTEND_STEP) < 0)
			return BERR_OK;
		u->size = end + EXTEND_STEP;
		u->extended = true;
	}
	struct aio_buf *b = u->fly;
	while (b->p)
		b++; /* a free slot exists: nfly < AIO_DEPTH - 1 here */
	struct iocb cb = {0};
	struct iocb *cbs[1] = {&cb};
	cb.aio_data = (uint64_t)(uintptr_t)b;
	cb.aio_lio_opcode = IOCB_CMD_PWRITE;
	cb.aio_fildes = (uint32_t)u->dfd;
	cb.aio_buf = (uint64_t)(uintptr_t)u->stage;
	cb.aio_nbytes = u->stage_len;
	cb.aio_offset = u->stage_off;
	if (syscall(SYS_io_submit, u->aio, 1, cbs) != 1)
		return BERR_OK;
	*b = (struct aio_buf){u->stage, u->stage_len, u->stage_off};
	u->nfly++;
	u->stage = u->spare[--u->nspare];
	u->stage_off += (int64_t)u->stage_len;
	u->stage_len = 0;
	*started = true;
	return BERR_OK;
}

/* Writes the staged bytes: whole blocks direct, a partial last block buffered. The partial
 * block stays staged (it is the head of the next block); with all set, nothing stays. */
static enum berr_code stage_flush(struct blob_upload *u, bool all, struct berr *err)
{
	enum berr_code rc;
	if (!all && u->dfd >= 0 && u->stage_len == STAGE_SIZE) {
		bool started;
		if ((rc = aio_start(u, &started, err)) != BERR_OK || started)
			return rc;
	}
	if ((rc = aio_wait_all(u, err)) != BERR_OK)
		return rc;
	size_t whole = u->dfd >= 0 ? u->stage_len & ~(size_t)(DIO_ALIGN - 1) : 0;
	if (whole) {
		ssize_t w;
		do
			w = pwrite(u->dfd, u->stage, whole, u->stage_off);
		while (w < 0 && errno == EINTR);
		rc = direct_done(u, w < 0 ? -errno : w, u->stage, whole, u->stage_off, err);
		if (rc != BERR_OK)
			return rc;
	}
	size_t rest = u->stage_len - whole;
	if (rest && (all || u->dfd < 0)) {
		rc =
		    write_all(u, u->fd, u->stage + whole, rest, u->stage_off + (int64_t)whole, err);
		if (rc != BERR_OK)
			return rc;
		whole += rest;
		rest = 0;
	}
	if (whole && rest)
		memmove(u->stage, u->stage + whole, rest);
	u->stage_off += (int64_t)whole;
	u->stage_len = rest;
	if (all && u->extended) {
		int64_t keep = u->offset > u->size0 ? u->offset : u->size0;
		if (ftruncate(u->fd, keep) < 0)
			return err_sys(err, BERR_IO, errno, "truncate %s: %s", u->path,
			               strerror(errno));
		u->size = keep;
		u->extended = false;
	}
	return BERR_OK;
}

/* Starts staging at offset: the block's bytes before offset are read back from the file
 * (zeros past its end), so whole-block writes rewrite them unchanged. */
static enum berr_code stage_begin(struct blob_upload *u, struct berr *err)
{
	if (!(u->stage = stage_get(u->fs)))
		return err_set(err, BERR_INTERNAL, "out of memory for an upload buffer");
	u->nbufs++;
	u->stage_off = u->offset & ~(int64_t)(DIO_ALIGN - 1);
	u->stage_len = (size_t)(u->offset - u->stage_off);
	size_t got = 0;
	while (got < u->stage_len) {
		ssize_t r =
		    pread(u->fd, u->stage + got, u->stage_len - got, u->stage_off + (int64_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return err_sys(err, BERR_IO, errno, "read %s: %s", u->path,
			               strerror(errno));
		if (r == 0)
			break;
		got += (size_t)r;
	}
	memset(u->stage + got, 0, u->stage_len - got);
	return BERR_OK;
}

static enum berr_code fs_upload_append(struct blob_upload *u, const void *data, size_t len,
                                       struct berr *err)
{
	const char *s = data;
	if (u->dfd < 0 && !u->stage_len) {
		enum berr_code rc = write_all(u, u->fd, s, len, u->offset, err);
		if (rc != BERR_OK)
			return rc;
		u->offset += (int64_t)len;
		if (u->offset - u->flushed >= WRITEBACK_STEP) {
			sync_file_range(u->fd, u->flushed, u->offset - u->flushed,
			                SYNC_FILE_RANGE_WRITE);
			u->flushed = u->offset;
		}
		return BERR_OK;
	}
	if (!len)
		return BERR_OK;
	if (!u->stage) {
		enum berr_code rc = stage_begin(u, err);
		if (rc != BERR_OK)
			return rc;
	}
	while (len) {
		size_t n = STAGE_SIZE - u->stage_len;
		if (n > len)
			n = len;
		memcpy(u->stage + u->stage_len, s, n);
		u->stage_len += n;
		u->offset += (int64_t)n;
		s += n;
		len -= n;
		if (u->stage_len == STAGE_SIZE || u->dfd < 0) {
			enum berr_code rc = stage_flush(u, false, err);
			if (rc != BERR_OK)
				return rc;
		}
	}
	return BERR_OK;
}

static enum berr_code fs_upload_flush(struct blob_upload *u, struct berr *err)
{
	return u->stage_len || u->nfly || u->extended ? stage_flush(u, true, err) : BERR_OK;
}

static enum berr_code fs_upload_sync(struct blob_upload *u, struct berr *err)
{
	enum berr_code rc = fs_upload_flush(u, err);
	if (rc != BERR_OK)
		return rc;
	if (fdatasync(u->fd) < 0)
		return err_sys(err, BERR_IO, errno, "fdatasync %s: %s", u->path, strerror(errno));
	return BERR_OK;
}

static void fs_upload_close(struct blob_upload *u)
{
	if (!u)
		return;
	struct berr e;
	if (aio_wait_all(u, &e) != BERR_OK && u->nfly) {
		/* cannot reap: io_destroy waits for the writes, then the buffers are free */
		syscall(SYS_io_destroy, u->aio);
		u->aio = 0;
		for (int i = 0; i < AIO_DEPTH; i++)
			if (u->fly[i].p)
				u->spare[u->nspare++] = u->fly[i].p;
	}
	aio_put(u->fs, u->aio);
	stage_put(u->fs, u->stage);
	for (int i = 0; i < u->nspare; i++)
		stage_put(u->fs, u->spare[i]);
	if (u->dfd >= 0)
		close(u->dfd);
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

static enum berr_code fs_upload_commit(struct blob_store *b, const char *id, int64_t size,
                                       const char *digest, struct berr *err)
{
	if (!uuid_is_valid(id))
		return err_set(err, BERR_INVALID, "bad upload id");
	struct blob_fs *f = self(b);
	char up[PATH_MAX], dir[PATH_MAX], file[PATH_MAX];
	upload_path(f, id, up, sizeof(up));
	if (blob_path(f, digest, id, dir, file, sizeof(dir), err) != BERR_OK)
		return err->code;
	if (truncate(up, size) < 0) {
		struct stat sb;
		if (errno == ENOENT && stat(file, &sb) == 0)
			return fs_fsync_dir(dir, err); /* committed before; make sure it lasts */
		return err_sys(err, errno == ENOENT ? BERR_NOT_FOUND : BERR_IO, errno,
		               "truncate %s: %s", up, strerror(errno));
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

static enum berr_code fs_open(struct blob_store *b, const char *digest, const char *gen, int *fd,
                              int64_t *size, struct berr *err)
{
	char dir[PATH_MAX], file[PATH_MAX];
	if (blob_path(self(b), digest, gen, dir, file, sizeof(dir), err) != BERR_OK)
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

static enum berr_code fs_stat(struct blob_store *b, const char *digest, const char *gen,
                              int64_t *size, struct berr *err)
{
	char dir[PATH_MAX], file[PATH_MAX];
	if (blob_path(self(b), digest, gen, dir, file, sizeof(dir), err) != BERR_OK)
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

static enum berr_code fs_remove(struct blob_store *b, const char *digest, const char *gen,
                                struct berr *err)
{
	char dir[PATH_MAX], file[PATH_MAX];
	if (blob_path(self(b), digest, gen, dir, file, sizeof(dir), err) != BERR_OK)
		return err->code;
	if (unlink(file) < 0 && errno != ENOENT)
		return err_sys(err, BERR_IO, errno, "unlink %s: %s", file, strerror(errno));
	return BERR_OK;
}

static enum berr_code fs_space_of(struct blob_store *b, int64_t *avail, int64_t *total,
                                  struct berr *err)
{
	return fs_space(self(b)->uploads, avail, total, err);
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

static int visit_file(struct walk_ctx *w, const char *dir, const char *file, const char *name,
                      const char *gen)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s", dir, file);
	struct stat sb;
	if (lstat(p, &sb) < 0 || !S_ISREG(sb.st_mode))
		return 0;
	int64_t mtime = (int64_t)sb.st_mtim.tv_sec * 1000 + sb.st_mtim.tv_nsec / 1000000;
	return w->fn(w->ctx, name, gen, sb.st_size, mtime);
}

/* <64 hex> or <64 hex>.<gen> */
static int visit_blob(void *ctx, const char *dir, const char *file)
{
	const char *dot = strchr(file, '.');
	size_t hexlen = dot ? (size_t)(dot - file) : strlen(file);
	if (hexlen != 64 || (dot && !uuid_is_valid(dot + 1)))
		return 0;
	char digest[80];
	snprintf(digest, sizeof(digest), "sha256:%.64s", file);
	if (!ref_digest_is_supported(digest))
		return 0;
	return visit_file(ctx, dir, file, digest, dot ? dot + 1 : "");
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
	return visit_file(ctx, dir, file, file, "");
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
    .upload_flush = fs_upload_flush,
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
    .space = fs_space_of,
};

enum berr_code blob_fs_open(const char *dir, struct blob_store **out, struct berr *err)
{
	struct blob_fs *f = xcalloc(1, sizeof(*f));
	f->super.ops = &fs_ops;
	f->direct = !getenv("BERTH_NO_DIRECT_IO");
	pthread_mutex_init(&f->mu, NULL);
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
