/* sqlite_walbuf.h - a SQLite VFS that writes a transaction's log frames with one call (see
 * sqlite_walbuf.c). Internal to the SQLite driver. */
#ifndef BERTH_META_SQLITE_WALBUF_H
#define BERTH_META_SQLITE_WALBUF_H

/* Registers the VFS on first use (thread-safe) and returns its name for sqlite3_open_v2, or
 * NULL if the default VFS cannot be wrapped (then open with the default). */
const char *sqlite_walbuf_vfs(void);

#endif
