/* ref.c - hand-written matchers for repository names, tags and digests (see ref.h).
 *
 * Design: every grammar is a single left-to-right scan over a NUL-terminated string, O(n) with no
 * allocation and no backtracking, so hostile input of any length is safe. No regex library: the
 * patterns are small and their corner cases (`__` but not `___`, any run of `-`) are clearer as
 * code than as POSIX ERE, which cannot express the ECR model pattern's alternation faithfully
 * anyway. All functions accept NULL and return false for it. */
#include "../base/feat.h"

#include "ref.h"

#include <string.h>

const char REF_REPO_NAME_PATTERN_MSG[] =
    "(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*";

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
	return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

static bool is_lower_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static bool is_hex(char c)
{
	return is_lower_hex(c) || (c >= 'A' && c <= 'F');
}

/* A separator run inside a name component is valid when it is ".", "_", "__" or one or more
 * '-'. p[0..n) holds only '.', '_' and '-'. */
static bool name_sep_is_valid(const char *p, size_t n)
{
	if (n == 1)
		return true;
	if (n == 2 && p[0] == '_' && p[1] == '_')
		return true;
	for (size_t i = 0; i < n; i++)
		if (p[i] != '-')
			return false;
	return true;
}

bool ref_repo_name_is_valid(const char *s)
{
	if (!s)
		return false;
	size_t len = strnlen(s, REPO_NAME_MAX + 1);
	if (len < REPO_NAME_MIN || len > REPO_NAME_MAX)
		return false;

	size_t i = 0;
	while (i < len) {
		/* One component: alnum-run (sep-run alnum-run)* */
		if (!is_lower_alnum(s[i]))
			return false;
		for (;;) {
			while (i < len && is_lower_alnum(s[i]))
				i++;
			if (i == len || s[i] == '/')
				break;
			size_t sep_start = i;
			while (i < len && (s[i] == '.' || s[i] == '_' || s[i] == '-'))
				i++;
			if (i == sep_start)
				return false; /* a character outside the grammar */
			if (!name_sep_is_valid(s + sep_start, i - sep_start))
				return false;
			if (i == len || !is_lower_alnum(s[i]))
				return false; /* trailing separator or separator before '/' */
		}
		if (i == len)
			return true;
		i++; /* skip '/'; the next component must start right here */
		if (i == len)
			return false; /* trailing '/' */
	}
	return false;
}

/* Decodes one UTF-8 sequence at p (at most n bytes available). Returns its length and stores
 * the code point, or 0 for an ill-formed sequence (overlong, surrogate, > U+10FFFF, truncated). */
static size_t utf8_decode(const unsigned char *p, size_t n, unsigned long *cp)
{
	unsigned char c = p[0];
	size_t need;
	unsigned long v, min;

	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if (c >= 0xc2 && c <= 0xdf) {
		need = 2;
		v = c & 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 3;
		v = c & 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 4;
		v = c & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (n < need)
		return 0;
	for (size_t i = 1; i < need; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (p[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return need;
}

/* Control characters (C0, DEL, C1) and Unicode White_Space code points. */
static bool cp_is_space_or_control(unsigned long cp)
{
	if (cp < 0x20 || cp == ' ' || (cp >= 0x7f && cp <= 0xa0))
		return true;
	switch (cp) {
	case 0x1680:
	case 0x2028:
	case 0x2029:
	case 0x202f:
	case 0x205f:
	case 0x3000:
	case 0xfeff: /* not White_Space, but an invisible BOM in a tag is never intended */
		return true;
	default:
		return cp >= 0x2000 && cp <= 0x200a;
	}
}

bool ref_tag_is_valid_ecr(const char *s)
{
	if (!s)
		return false;
	size_t len = strnlen(s, ECR_TAG_MAX + 1);
	if (len < 1 || len > ECR_TAG_MAX)
		return false;
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < len) {
		unsigned long cp;
		size_t n = utf8_decode(p + i, len - i, &cp);
		if (n == 0)
			return false;
		if (cp == '/' || cp == ':' || cp == '@' || cp_is_space_or_control(cp))
			return false;
		i += n;
	}
	return true;
}

bool ref_tag_is_valid_oci(const char *s)
{
	if (!s)
		return false;
	if (!(is_alnum(s[0]) || s[0] == '_'))
		return false;
	size_t i = 1;
	for (; s[i]; i++) {
		if (i >= OCI_TAG_MAX)
			return false;
		if (!(is_alnum(s[i]) || s[i] == '.' || s[i] == '_' || s[i] == '-'))
			return false;
	}
	return true;
}

bool ref_digest_matches_ecr_pattern(const char *s)
{
	if (!s)
		return false;
	size_t i = 0;
	while (is_alnum(s[i]) || s[i] == '-' || s[i] == '_' || s[i] == '+' || s[i] == '.')
		i++;
	if (i == 0 || s[i] != ':')
		return false;
	size_t hex_start = ++i;
	while (is_hex(s[i]))
		i++;
	return i > hex_start && s[i] == '\0';
}

/* True if s[0..n) is exactly n lowercase hex characters. */
static bool all_lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!is_lower_hex(s[i]))
			return false;
	return true;
}

bool ref_digest_is_valid(const char *s)
{
	if (!s)
		return false;

	/* algorithm ::= component (separator component)*; component ::= [a-z0-9]+;
	 * separator ::= [+._-] */
	size_t i = 0;
	for (;;) {
		size_t comp_start = i;
		while (is_lower_alnum(s[i]))
			i++;
		if (i == comp_start)
			return false;
		if (s[i] == '+' || s[i] == '.' || s[i] == '_' || s[i] == '-') {
			i++;
			continue;
		}
		break;
	}
	if (s[i] != ':')
		return false;
	size_t alg_len = i;
	const char *enc = s + i + 1;

	/* encoded ::= [a-zA-Z0-9=_-]+ */
	size_t enc_len = 0;
	while (is_alnum(enc[enc_len]) || enc[enc_len] == '=' || enc[enc_len] == '_' ||
	       enc[enc_len] == '-')
		enc_len++;
	if (enc_len == 0 || enc[enc_len] != '\0')
		return false;

	/* Registered algorithms pin the encoding. */
	if (alg_len == 6 && memcmp(s, "sha256", 6) == 0)
		return enc_len == 64 && all_lower_hex(enc, 64);
	if (alg_len == 6 && memcmp(s, "sha512", 6) == 0)
		return enc_len == 128 && all_lower_hex(enc, 128);
	return true;
}

bool ref_digest_is_supported(const char *s)
{
	if (!s || strncmp(s, "sha256:", 7) != 0)
		return false;
	return strnlen(s + 7, 65) == 64 && all_lower_hex(s + 7, 64);
}
