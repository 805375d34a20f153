/* sqlite_walbuf.c - a SQLite VFS that hands a transaction's log frames to the OS in one write.
 *
 * SQLite writes each WAL frame as two pwrite calls (its 24-byte header, then the page), so a
 * group commit of a few image puts costs some forty system calls, each through the file
 * system's buffered-write path. This VFS wraps the default one and, for the log file of a
 * connection opened with it, gathers consecutive appends in memory and writes them with one
 * call. It changes when bytes reach the OS within a transaction, never what reaches it or in
 * which order, so the log on disk is the same as without it.
 *
 * Invariants (the reasons are in SQLite's WAL protocol):
 *  - a commit is written out before SQLite publishes it: the page that follows a commit
 *    frame's header (nTruncate != 0) ends a commit, and xWrite flushes right after it, so an
 *    error reaches the COMMIT, and readers, which learn of frames from the shared-memory
 *    header published afterwards, only ever look for frames that are in the file;
 *  - nothing is held past the end of a write transaction: every shared-memory unlock on the
 *    database file flushes first, so frames of a transaction that rolled back are written
 *    before the write lock is released (as SQLite itself would have written them), never
 *    over frames of the next writer. Frames that cannot be written when the write lock is
 *    released belong to no commit and are dropped;
 *  - any other access to the log (read, size, sync, truncate, close) flushes first, and a
 *    write that does not append to the held bytes flushes them before it is buffered, so the
 *    connection itself reads what it wrote, in the order it wrote it.
 * The log file finds its database file through sqlite3_filename_database(), which returns
 * the very name pointer the pager opened the database file with. A log whose database file
 * is not found is written through, unbuffered. Files of one connection are used by one
 * thread at a time; the registry of open database files has its own lock. */
#include "../base/feat.h"

#include "sqlite_walbuf.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define WALBUF_VFS "berth-walbuf"
#define WALBUF_CAP (1024 * 1024) /* a bigger transaction is written in pieces of this size */
#define WAL_WRITE_LOCK 0         /* wal.c's index of the writer lock in shared memory */
#define WAL_FRAME_HDR 24

struct wb_wal;

struct wb_db {
	sqlite3_file base;
	sqlite3_file *real;
	const char *name;   /* as given to xOpen: identifies the connection's pager */
	struct wb_wal *wal; /* the same connection's log, while open */
	struct wb_db *next; /* registry */
};

struct wb_wal {
	sqlite3_file base;
	sqlite3_file *real;
	struct wb_db *db; /* NULL: written through */
	unsigned char *buf;
	size_t len, cap;
	sqlite3_int64 off; /* file offset of buf[0] */
	bool commit_hdr;   /* the last write was a commit frame's header */
};

#define WB_HDR_SIZE                                                                                \
	((sizeof(struct wb_db) > sizeof(struct wb_wal) ? sizeof(struct wb_db)                      \
	                                               : sizeof(struct wb_wal)) +                  \
	 15) /                                                                                     \
	    16 * 16

static sqlite3_vfs wb_vfs;
static sqlite3_vfs *wb_root;
static pthread_mutex_t wb_mu = PTHREAD_MUTEX_INITIALIZER;
static struct wb_db *wb_dbs;

/* The unix VFS writes at most 0x1ffff bytes per call (it masks the length, and reports a
 * write of a multiple of 128 KiB as "disk full"): hand it pieces below that. */
#define WALBUF_PIECE (124 * 1024)

static int wal_flush(struct wb_wal *w)
{
	size_t done = 0;
	int rc = SQLITE_OK;
	while (done < w->len && rc == SQLITE_OK) {
		size_t n = w->len - done < WALBUF_PIECE ? w->len - done : WALBUF_PIECE;
		rc = w->real->pMethods->xWrite(w->real, w->buf + done, (int)n,
		                               w->off + (sqlite3_int64)done);
		if (rc == SQLITE_OK)
			done += n;
	}
	if (done) { /* what is written is written; keep only the rest, in order */
		memmove(w->buf, w->buf + done, w->len - done);
		w->len -= done;
		w->off += (sqlite3_int64)done;
	}
	return rc;
}

/* ---- the log file ---- */

static int wal_close(sqlite3_file *f)
{
	struct wb_wal *w = (struct wb_wal *)f;
	int rc = wal_flush(w);
	pthread_mutex_lock(&wb_mu);
	if (w->db)
		w->db->wal = NULL;
	pthread_mutex_unlock(&wb_mu);
	free(w->buf);
	int rc2 = w->real->pMethods->xClose(w->real);
	return rc != SQLITE_OK ? rc : rc2;
}

static int wal_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off)
{
	struct wb_wal *w = (struct wb_wal *)f;
	int rc = wal_flush(w);
	return rc != SQLITE_OK ? rc : w->real->pMethods->xRead(w->real, p, n, off);
}

static bool wal_reserve(struct wb_wal *w, size_t need)
{
	if (need <= w->cap)
		return true;
	size_t cap = w->cap ? w->cap : 64 * 1024;
	while (cap < need)
		cap *= 2;
	unsigned char *b = realloc(w->buf, cap);
	if (!b)
		return false;
	w->buf = b;
	w->cap = cap;
	return true;
}

static int wal_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off)
{
	struct wb_wal *w = (struct wb_wal *)f;
	size_t sz = (size_t)n;
	int rc;
	if (!w->db)
		return w->real->pMethods->xWrite(w->real, p, n, off);
	if (w->len && (off != w->off + (sqlite3_int64)w->len || w->len + sz > WALBUF_CAP) &&
	    (rc = wal_flush(w)) != SQLITE_OK)
		return rc;
	if (sz > WALBUF_CAP || !wal_reserve(w, w->len + sz)) { /* write through, in order */
		w->commit_hdr = false;
		if ((rc = wal_flush(w)) != SQLITE_OK)
			return rc;
		return w->real->pMethods->xWrite(w->real, p, n, off);
	}
	if (!w->len)
		w->off = off;
	memcpy(w->buf + w->len, p, sz);
	w->len += sz;
	if (sz == WAL_FRAME_HDR) {
		const unsigned char *h = p; /* big-endian: page number, then nTruncate */
		w->commit_hdr = (h[4] | h[5] | h[6] | h[7]) != 0;
		return SQLITE_OK;
	}
	if (w->commit_hdr) {
		w->commit_hdr = false;
		return wal_flush(w);
	}
	return SQLITE_OK;
}

static int wal_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	struct wb_wal *w = (struct wb_wal *)f;
	int rc = wal_flush(w);
	return rc != SQLITE_OK ? rc : w->real->pMethods->xTruncate(w->real, size);
}

static int wal_sync(sqlite3_file *f, int flags)
{
	struct wb_wal *w = (struct wb_wal *)f;
	int rc = wal_flush(w);
	return rc != SQLITE_OK ? rc : w->real->pMethods->xSync(w->real, flags);
}

static int wal_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
	struct wb_wal *w = (struct wb_wal *)f;
	int rc = wal_flush(w);
	return rc != SQLITE_OK ? rc : w->real->pMethods->xFileSize(w->real, size);
}

/* Pass-through methods shared by both wrappers: both keep the real file second. */
struct wb_any {
	sqlite3_file base;
	sqlite3_file *real;
};
#define REAL(f) (((struct wb_any *)(f))->real)

static int any_lock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xLock(REAL(f), l);
}
static int any_unlock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xUnlock(REAL(f), l);
}
static int any_check_reserved(sqlite3_file *f, int *out)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}
static int any_file_control(sqlite3_file *f, int op, void *arg)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}
static int any_sector_size(sqlite3_file *f)
{
	return REAL(f)->pMethods->xSectorSize(REAL(f));
}
static int any_device_chars(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

static const sqlite3_io_methods wal_methods = {
    .iVersion = 1,
    .xClose = wal_close,
    .xRead = wal_read,
    .xWrite = wal_write,
    .xTruncate = wal_truncate,
    .xSync = wal_sync,
    .xFileSize = wal_file_size,
    .xLock = any_lock,
    .xUnlock = any_unlock,
    .xCheckReservedLock = any_check_reserved,
    .xFileControl = any_file_control,
    .xSectorSize = any_sector_size,
    .xDeviceCharacteristics = any_device_chars,
};

/* ---- the database file: everything passes through; shared-memory unlocks flush the log ---- */

static int db_close(sqlite3_file *f)
{
	struct wb_db *d = (struct wb_db *)f;
	pthread_mutex_lock(&wb_mu);
	for (struct wb_db **pp = &wb_dbs; *pp; pp = &(*pp)->next) {
		if (*pp == d) {
			*pp = d->next;
			break;
		}
	}
	if (d->wal)
		d->wal->db = NULL; /* written through from now on */
	pthread_mutex_unlock(&wb_mu);
	return d->real->pMethods->xClose(d->real);
}

static int db_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off)
{
	return REAL(f)->pMethods->xRead(REAL(f), p, n, off);
}
static int db_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off)
{
	return REAL(f)->pMethods->xWrite(REAL(f), p, n, off);
}
static int db_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	return REAL(f)->pMethods->xTruncate(REAL(f), size);
}
static int db_sync(sqlite3_file *f, int flags)
{
	return REAL(f)->pMethods->xSync(REAL(f), flags);
}
static int db_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
	return REAL(f)->pMethods->xFileSize(REAL(f), size);
}
static int db_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **pp)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), pg, pgsz, extend, pp);
}

static int db_shm_lock(sqlite3_file *f, int ofst, int n, int flags)
{
	struct wb_db *d = (struct wb_db *)f;
	struct wb_wal *w = d->wal;
	if ((flags & SQLITE_SHM_UNLOCK) && w && w->len && wal_flush(w) != SQLITE_OK &&
	    ofst == WAL_WRITE_LOCK && (flags & SQLITE_SHM_EXCLUSIVE))
		w->len = 0; /* the write transaction is over and committed nothing of these */
	return d->real->pMethods->xShmLock(d->real, ofst, n, flags);
}

static void db_shm_barrier(sqlite3_file *f)
{
	REAL(f)->pMethods->xShmBarrier(REAL(f));
}
static int db_shm_unmap(sqlite3_file *f, int del)
{
	return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}
static int db_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **pp)
{
	return REAL(f)->pMethods->xFetch(REAL(f), off, n, pp);
}
static int db_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
	return REAL(f)->pMethods->xUnfetch(REAL(f), off, p);
}

static const sqlite3_io_methods db_methods = {
    .iVersion = 3,
    .xClose = db_close,
    .xRead = db_read,
    .xWrite = db_write,
    .xTruncate = db_truncate,
    .xSync = db_sync,
    .xFileSize = db_file_size,
    .xLock = any_lock,
    .xUnlock = any_unlock,
    .xCheckReservedLock = any_check_reserved,
    .xFileControl = any_file_control,
    .xSectorSize = any_sector_size,
    .xDeviceCharacteristics = any_device_chars,
    .xShmMap = db_shm_map,
    .xShmLock = db_shm_lock,
    .xShmBarrier = db_shm_barrier,
    .xShmUnmap = db_shm_unmap,
    .xFetch = db_fetch,
    .xUnfetch = db_unfetch,
};

/* ---- the VFS ---- */

static int wb_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
	(void)vfs;
	if (!(flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL)))
		return wb_root->xOpen(wb_root, name, f, flags, out_flags);
	sqlite3_file *real = (sqlite3_file *)((char *)f + WB_HDR_SIZE);
	memset(f, 0, WB_HDR_SIZE);
	int rc = wb_root->xOpen(wb_root, name, real, flags, out_flags);
	if (!real->pMethods)
		return rc; /* f->pMethods stays NULL: SQLite will not close it */
	if (flags & SQLITE_OPEN_MAIN_DB) {
		if (real->pMethods->iVersion < 3) { /* no shared memory to watch: use it as it is */
			real->pMethods->xClose(real);
			return wb_root->xOpen(wb_root, name, f, flags, out_flags);
		}
		struct wb_db *d = (struct wb_db *)f;
		d->real = real;
		d->name = name;
		pthread_mutex_lock(&wb_mu);
		d->next = wb_dbs;
		wb_dbs = d;
		pthread_mutex_unlock(&wb_mu);
		f->pMethods = &db_methods;
		return rc;
	}
	struct wb_wal *w = (struct wb_wal *)f;
	w->real = real;
	const char *db_name = name ? sqlite3_filename_database(name) : NULL;
	pthread_mutex_lock(&wb_mu);
	for (struct wb_db *d = wb_dbs; d && db_name; d = d->next) {
		if (d->name == db_name && !d->wal) {
			d->wal = w;
			w->db = d;
			break;
		}
	}
	pthread_mutex_unlock(&wb_mu);
	f->pMethods = &wal_methods;
	return rc;
}

static int wb_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
	(void)vfs;
	return wb_root->xDelete(wb_root, name, sync_dir);
}
static int wb_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
	(void)vfs;
	return wb_root->xAccess(wb_root, name, flags, out);
}
static int wb_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
	(void)vfs;
	return wb_root->xFullPathname(wb_root, name, n, out);
}
static void *wb_dlopen(sqlite3_vfs *vfs, const char *name)
{
	(void)vfs;
	return wb_root->xDlOpen(wb_root, name);
}
static void wb_dlerror(sqlite3_vfs *vfs, int n, char *msg)
{
	(void)vfs;
	wb_root->xDlError(wb_root, n, msg);
}
static void (*wb_dlsym(sqlite3_vfs *vfs, void *h, const char *sym))(void)
{
	(void)vfs;
	return wb_root->xDlSym(wb_root, h, sym);
}
static void wb_dlclose(sqlite3_vfs *vfs, void *h)
{
	(void)vfs;
	wb_root->xDlClose(wb_root, h);
}
static int wb_randomness(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	return wb_root->xRandomness(wb_root, n, out);
}
static int wb_sleep(sqlite3_vfs *vfs, int us)
{
	(void)vfs;
	return wb_root->xSleep(wb_root, us);
}
static int wb_current_time(sqlite3_vfs *vfs, double *out)
{
	(void)vfs;
	return wb_root->xCurrentTime(wb_root, out);
}
static int wb_last_error(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	return wb_root->xGetLastError ? wb_root->xGetLastError(wb_root, n, out) : 0;
}
static int wb_current_time64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
	(void)vfs;
	return wb_root->xCurrentTimeInt64(wb_root, out);
}

static const char *wb_registered;

static void wb_register(void)
{
	wb_root = sqlite3_vfs_find(NULL);
	if (!wb_root || wb_root->iVersion < 2 || !wb_root->xCurrentTimeInt64)
		return;
	wb_vfs = (sqlite3_vfs){
	    .iVersion = 2,
	    .szOsFile = (int)WB_HDR_SIZE + wb_root->szOsFile,
	    .mxPathname = wb_root->mxPathname,
	    .zName = WALBUF_VFS,
	    .xOpen = wb_open,
	    .xDelete = wb_delete,
	    .xAccess = wb_access,
	    .xFullPathname = wb_full_pathname,
	    .xDlOpen = wb_dlopen,
	    .xDlError = wb_dlerror,
	    .xDlSym = wb_dlsym,
	    .xDlClose = wb_dlclose,
	    .xRandomness = wb_randomness,
	    .xSleep = wb_sleep,
	    .xCurrentTime = wb_current_time,
	    .xGetLastError = wb_last_error,
	    .xCurrentTimeInt64 = wb_current_time64,
	};
	if (sqlite3_vfs_register(&wb_vfs, 0) == SQLITE_OK)
		wb_registered = WALBUF_VFS;
}

const char *sqlite_walbuf_vfs(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, wb_register);
	return wb_registered;
}
