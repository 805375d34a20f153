/* util.h - small libc-only helpers: clock, random ids, strings, files. */
#ifndef BERTH_UTIL_H
#define BERTH_UTIL_H

#include "err.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Wall-clock milliseconds since the epoch (CLOCK_REALTIME: follows libfaketime in tests). */
int64_t clock_now_ms(void);
/* Monotonic milliseconds, for timeouts and durations. */
int64_t clock_mono_ms(void);

/* Fills buf with n cryptographically random bytes (getrandom). Aborts if the kernel cannot. */
void rand_bytes(void *buf, size_t n);
/* Bytes of a UUID string with its NUL. */
#define UUID_STR_LEN 37
/* Writes a new lowercase RFC 4122 v4 UUID (36 chars + NUL) into out. */
void uuid_v4(char out[UUID_STR_LEN]);
/* True if s is 8-4-4-4-12 hex (either case). */
bool uuid_is_valid(const char *s);
/* The running kernel's boot id (a UUID, new at every boot), "" if it cannot be read: bytes
 * written under one boot id and not fsync'd may be gone under another. Thread-safe. */
const char *sys_boot_id(void);

/* Ends a worker thread that waits on cv under mu while *stop is false: sets *stop, wakes it
 * and joins it. */
void thread_stop(pthread_t t, pthread_mutex_t *mu, pthread_cond_t *cv, bool *stop);

bool str_has_prefix(const char *s, const char *prefix);
/* Whole-string glob: '*' matches any run (including empty); every other byte matches itself. */
bool str_glob_match(const char *pattern, const char *s);
/* Lowercase hex of n bytes into out (2n+1 bytes). */
void hex_encode(const unsigned char *in, size_t n, char *out);
/* The value of one hex digit (either case), or -1. */
int hex_digit(unsigned char c);
/* Parses a duration like "30s", "10m", "1h", "2d" or plain seconds; -1 if malformed. */
int64_t duration_parse_ms(const char *s);
/* Parses a size like "512", "64K", "64M", "1G", "2T" (powers of 1024; "MiB", "MB" and "m"
 * read alike); -1 if malformed or beyond 2^62. */
int64_t size_parse_bytes(const char *s);

/* mkdir -p with mode 0755. */
enum berr_code fs_mkdirs(const char *path, struct berr *err);
/* fsync a directory so a rename or create inside it is durable. */
enum berr_code fs_fsync_dir(const char *dir, struct berr *err);
/* Writes data to path via tmp file + fsync + rename + fsync dir: readers see old or new. */
enum berr_code fs_write_atomic(const char *path, const void *data, size_t len, int mode,
                               struct berr *err);
/* Bytes an unprivileged writer may still use (*avail) and the size (*total) of the file
 * system holding path. */
enum berr_code fs_space(const char *path, int64_t *avail, int64_t *total, struct berr *err);
/* Reads a whole (small) file; *out is new (free it); BERR_NOT_FOUND if absent. */
enum berr_code fs_read_all(const char *path, size_t limit, char **out, size_t *len,
                           struct berr *err);

#endif
