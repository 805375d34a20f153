/* buf.c - see buf.h. */
#include "feat.h"

#include "buf.h"
#include "mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b, size_t limit)
{
	b->p = NULL;
	b->len = 0;
	b->cap = 0;
	b->limit = limit;
}

void buf_free(struct buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->p)
		b->p[0] = '\0';
}

static void grow(struct buf *b, size_t need)
{
	if (need <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	b->p = xrealloc(b->p, cap);
	b->cap = cap;
}

/* Room for n more bytes plus the terminating NUL; NULL (and err set) past the limit. The
 * caller writes at the returned pointer, then commits with commit(). */
static char *reserve(struct buf *b, size_t n, struct berr *err)
{
	if (b->limit && (n > b->limit || b->len > b->limit - n)) {
		err_set(err, BERR_TOO_LARGE, "content exceeds the limit of %zu bytes", b->limit);
		return NULL;
	}
	grow(b, b->len + n + 1);
	return b->p + b->len;
}

static void commit(struct buf *b, size_t n)
{
	b->len += n;
	b->p[b->len] = '\0';
}

enum berr_code buf_append(struct buf *b, const void *data, size_t n, struct berr *err)
{
	char *d = reserve(b, n, err);
	if (!d)
		return BERR_TOO_LARGE;
	if (n)
		memcpy(d, data, n);
	commit(b, n);
	return BERR_OK;
}

enum berr_code buf_puts(struct buf *b, const char *s, struct berr *err)
{
	return buf_append(b, s, strlen(s), err);
}

enum berr_code buf_printf(struct buf *b, struct berr *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = NULL;
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return err_set(err, BERR_INTERNAL, "out of memory");
	enum berr_code rc = buf_append(b, s, (size_t)n, err);
	free(s);
	return rc;
}

char *buf_steal(struct buf *b, size_t *len)
{
	if (!b->p)
		grow(b, 1), b->p[0] = '\0';
	char *p = b->p;
	if (len)
		*len = b->len;
	b->p = NULL;
	b->len = b->cap = 0;
	return p;
}

void buf_json_string(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	/* Fast path (names, digests, tags: nothing to escape): one copy. */
	size_t n = 0;
	while (s[n] && (unsigned char)s[n] >= 0x20 && s[n] != '"' && s[n] != '\\')
		n++;
	char *d;
	if (!s[n] && (d = reserve(b, n + 2, NULL)) != NULL) {
		d[0] = '"';
		memcpy(d + 1, s, n);
		d[n + 1] = '"';
		commit(b, n + 2);
		return;
	}
	buf_append(b, "\"", 1, NULL);
	const char *run = s;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		buf_append(b, run, (size_t)(s - run), NULL);
		char esc[6] = {'\\', (char)c, 0, 0, 0, 0};
		n = 2;
		if (c == '\n')
			esc[1] = 'n';
		else if (c == '\t')
			esc[1] = 't';
		else if (c == '\r')
			esc[1] = 'r';
		else if (c < 0x20) {
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			n = 6;
		}
		buf_append(b, esc, n, NULL);
		run = s + 1;
	}
	buf_append(b, run, (size_t)(s - run), NULL);
	buf_append(b, "\"", 1, NULL);
}
