/* json_fast.c - a JSON reader for the common case, building jansson trees (see json_fast.h).
 *
 * Why: jansson's reader costs ~10 ns per byte here (a character stream with a call per byte);
 * an ECR PutImage request and the manifest inside it took ~12 us of a put's ~150 us of CPU.
 * Building the same tree with jansson's constructors takes under 1 us.
 *
 * Invariants:
 *  - a tree comes back only for text jansson accepts with flags 0 (object or array at the top,
 *    nothing but whitespace after it), and it is the tree jansson builds: same values, keys in
 *    the same order, the last of duplicate keys winning in the first one's place;
 *  - with JSON_ALLOW_NUL in the flags, "\u0000" in a string value reads as a NUL byte inside
 *    the string (its length counts it), as jansson reads it; in an object key, or without the
 *    flag, it defers (jansson refuses both);
 *  - anything outside the subset read here defers to jansson (NULL from json_fast_only):
 *    bytes >= 0x80 or control characters in the text, fractions and exponents, integers of
 *    more than 18 digits, unpaired surrogates, nesting deeper than FAST_DEPTH, and every
 *    syntax error (so jansson decides what is wrong).
 * tests/fuzz/fuzz_json.c holds the reader to both against jansson. */
#include "feat.h"

#include "json_fast.h"
#include "util.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#define FAST_DEPTH 32
#define INT_DIGITS_MAX 18 /* always fits json_int_t (long long) */

struct rd {
	const unsigned char *p, *end;
	int depth;
	bool allow_nul; /* JSON_ALLOW_NUL: "\u0000" may stand in a string value */
};

static json_t *read_value(struct rd *r);

static void skip_ws(struct rd *r)
{
	while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t'))
		r->p++;
}

/* The four hex digits at s (s + 4 <= end), or -1. */
static long hex4(const unsigned char *s, const unsigned char *end)
{
	if (end - s < 4)
		return -1;
	long v = 0;
	for (int i = 0; i < 4; i++) {
		int h = hex_digit(s[i]);
		if (h < 0)
			return -1;
		v = v * 16 + h;
	}
	return v;
}

static size_t put_utf8(unsigned char *o, unsigned long cp)
{
	if (cp < 0x80) {
		o[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (unsigned char)(0xC0 | (cp >> 6));
		o[1] = (unsigned char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (unsigned char)(0xE0 | (cp >> 12));
		o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		o[2] = (unsigned char)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (unsigned char)(0xF0 | (cp >> 18));
	o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
	o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
	o[3] = (unsigned char)(0x80 | (cp & 0x3F));
	return 4;
}

/* Decodes the escaped string body s..e (no quote inside but escaped ones, every byte ASCII and
 * not a control character) into o, which has room for e - s bytes: no escape is shorter than
 * what it stands for. "\u0000" decodes to a NUL byte if nul_ok. Returns the decoded length, or
 * -1 to defer. */
static long unescape(const unsigned char *s, const unsigned char *e, unsigned char *o, bool nul_ok)
{
	unsigned char *start = o;
	while (s < e) {
		if (*s != '\\') {
			*o++ = *s++;
			continue;
		}
		s++; /* the escaped character is before e: the scan never ends inside an escape */
		switch (*s++) {
		case '"':
			*o++ = '"';
			break;
		case '\\':
			*o++ = '\\';
			break;
		case '/':
			*o++ = '/';
			break;
		case 'b':
			*o++ = '\b';
			break;
		case 'f':
			*o++ = '\f';
			break;
		case 'n':
			*o++ = '\n';
			break;
		case 'r':
			*o++ = '\r';
			break;
		case 't':
			*o++ = '\t';
			break;
		case 'u': {
			long cp = hex4(s, e);
			if (cp < 0 || (cp == 0 && !nul_ok) || (cp >= 0xDC00 && cp <= 0xDFFF))
				return -1; /* bad digits, a refused "\u0000", a low surrogate first */
			s += 4;
			if (cp >= 0xD800 && cp <= 0xDBFF) {
				long lo =
				    e - s >= 6 && s[0] == '\\' && s[1] == 'u' ? hex4(s + 2, e) : -1;
				if (lo < 0xDC00 || lo > 0xDFFF)
					return -1;
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
				s += 6;
			}
			o += put_utf8(o, (unsigned long)cp);
			break;
		}
		default:
			return -1;
		}
	}
	return o - start;
}

/* Reads a string whose opening quote is behind r->p. *out is the text: in the input when it
 * has no escapes, else decoded into *owned (the caller frees it). A key never holds a NUL
 * (jansson refuses one whatever the flags). */
static bool read_string(struct rd *r, bool is_key, const char **out, size_t *len,
                        unsigned char **owned)
{
	const unsigned char *s = r->p, *end = r->end;
	size_t n = (size_t)(end - s), i = 0;
	bool escaped = false;
	while (i < n && s[i] != '"') {
		if (s[i] < 0x20 || s[i] >= 0x80)
			return false;
		if (s[i] == '\\') {
			escaped = true;
			i++;
		}
		i++;
	}
	if (i >= n)
		return false;
	r->p = s + i + 1;
	if (!escaped) {
		*out = (const char *)s;
		*len = i;
		return true;
	}
	unsigned char *b = malloc(i ? i : 1);
	long m = b ? unescape(s, s + i, b, r->allow_nul && !is_key) : -1;
	if (m < 0) {
		free(b);
		return false;
	}
	*owned = b;
	*out = (const char *)b;
	*len = (size_t)m;
	return true;
}

static json_t *read_number(struct rd *r)
{
	const unsigned char *p = r->p, *end = r->end;
	bool neg = p < end && *p == '-';
	if (neg)
		p++;
	const unsigned char *digits = p;
	if (p >= end || *p < '0' || *p > '9')
		return NULL;
	if (*p == '0')
		p++;
	else
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	/* a fraction, an exponent, or a digit after a leading zero */
	if (p < end && (*p == '.' || *p == 'e' || *p == 'E' || (*p >= '0' && *p <= '9')))
		return NULL;
	if (p - digits > INT_DIGITS_MAX)
		return NULL;
	json_int_t v = 0;
	for (const unsigned char *d = digits; d < p; d++)
		v = v * 10 + (*d - '0');
	r->p = p;
	return json_integer(neg ? -v : v);
}

static bool literal(struct rd *r, const char *word, size_t n)
{
	if ((size_t)(r->end - r->p) < n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (r->p[i] != (unsigned char)word[i])
			return false;
	r->p += n;
	return true;
}

/* After a member of a container (whitespace and all): skips the "," before the next one (0),
 * or the closing character (1); -1 for anything else. */
static int next_member(struct rd *r, unsigned char close)
{
	skip_ws(r);
	if (r->p >= r->end)
		return -1;
	unsigned char c = *r->p++;
	if (c == close)
		return 1;
	if (c != ',')
		return -1;
	skip_ws(r);
	return 0;
}

/* An empty container's closing character (after its opening one), if that is what follows. */
static bool closes_at_once(struct rd *r, unsigned char close)
{
	skip_ws(r);
	if (r->p < r->end && *r->p == close) {
		r->p++;
		return true;
	}
	return false;
}

static json_t *read_array(struct rd *r)
{
	json_t *a = json_array();
	if (!a || closes_at_once(r, ']'))
		return a;
	for (;;) {
		json_t *v = read_value(r);
		int next = v && json_array_append_new(a, v) == 0 ? next_member(r, ']') : -1;
		if (next == 1)
			return a;
		if (next < 0)
			break;
	}
	json_decref(a);
	return NULL;
}

static json_t *read_object(struct rd *r)
{
	json_t *o = json_object();
	if (!o || closes_at_once(r, '}'))
		return o;
	for (;;) {
		const char *key;
		size_t klen;
		unsigned char *owned = NULL;
		if (r->p >= r->end || *r->p != '"')
			break;
		r->p++;
		if (!read_string(r, true, &key, &klen, &owned))
			break;
		skip_ws(r);
		json_t *v = NULL;
		if (r->p < r->end && *r->p == ':') {
			r->p++;
			skip_ws(r);
			v = read_value(r);
		}
		int set = v ? json_object_setn_new_nocheck(o, key, klen, v) : -1;
		free(owned);
		int next = set == 0 ? next_member(r, '}') : -1;
		if (next == 1)
			return o;
		if (next < 0)
			break;
	}
	json_decref(o);
	return NULL;
}

/* A value at r->p (whitespace before it already skipped). */
static json_t *read_value(struct rd *r)
{
	if (r->p >= r->end)
		return NULL;
	json_t *v = NULL;
	switch (*r->p) {
	case '{':
	case '[':
		if (++r->depth > FAST_DEPTH)
			return NULL;
		v = *r->p++ == '{' ? read_object(r) : read_array(r);
		r->depth--;
		return v;
	case '"': {
		const char *s;
		size_t n;
		unsigned char *owned = NULL;
		r->p++;
		if (read_string(r, false, &s, &n, &owned))
			v = json_stringn_nocheck(s, n);
		free(owned);
		return v;
	}
	case 't':
		return literal(r, "true", 4) ? json_true() : NULL;
	case 'f':
		return literal(r, "false", 5) ? json_false() : NULL;
	case 'n':
		return literal(r, "null", 4) ? json_null() : NULL;
	default:
		return read_number(r);
	}
}

json_t *json_fast_only(const char *buf, size_t len, size_t flags)
{
	if (!buf || (flags & ~(size_t)JSON_ALLOW_NUL))
		return NULL;
	struct rd r = {(const unsigned char *)buf, (const unsigned char *)buf + len, 0,
	               (flags & JSON_ALLOW_NUL) != 0};
	skip_ws(&r);
	if (r.p >= r.end || (*r.p != '{' && *r.p != '['))
		return NULL;
	json_t *v = read_value(&r);
	skip_ws(&r);
	if (v && r.p != r.end) {
		json_decref(v);
		v = NULL;
	}
	return v;
}

json_t *json_fast_loadb(const char *buf, size_t len, size_t flags)
{
	json_t *v = json_fast_only(buf, len, flags);
	return v ? v : json_loadb(buf, len, flags, NULL);
}
