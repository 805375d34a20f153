/* buf.h - growable byte buffer with an optional cap (curl dynbuf). The content is always
 * NUL-terminated so text can be used as a C string; len excludes the terminator. */
#ifndef BERTH_BUF_H
#define BERTH_BUF_H

#include "err.h"

#include <stdbool.h>
#include <stddef.h>

struct buf {
	char *p;
	size_t len;
	size_t cap;   /* allocated bytes */
	size_t limit; /* 0 = unlimited; appends that would exceed it fail with BERR_TOO_LARGE */
};

void buf_init(struct buf *b, size_t limit);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);
/* Appends n bytes. BERR_TOO_LARGE (buffer unchanged) when the limit would be exceeded. */
enum berr_code buf_append(struct buf *b, const void *data, size_t n, struct berr *err);
enum berr_code buf_puts(struct buf *b, const char *s, struct berr *err);
enum berr_code buf_printf(struct buf *b, struct berr *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Appends s as a quoted JSON string (escaping '"', '\\' and control characters; s is UTF-8).
 * For hot paths that emit large JSON documents without building a jansson tree. */
void buf_json_string(struct buf *b, const char *s);
/* Hands the content to the caller (who frees it) and leaves b empty. */
char *buf_steal(struct buf *b, size_t *len);

#endif
