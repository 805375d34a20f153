/* mem.h - allocation that aborts on out-of-memory (redis zmalloc, h2o). Size caps on untrusted
 * input are enforced by callers (buf_*), never by failing malloc. */
#ifndef BERTH_MEM_H
#define BERTH_MEM_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t n);
void *xrealloc(void *p, size_t n);
/* New copy of s (NULL -> NULL). */
char *xstrdup(const char *s);
/* New copy of the first n bytes of s, NUL-terminated. */
char *xstrndup(const char *s, size_t n);
/* New printf-formatted string. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
