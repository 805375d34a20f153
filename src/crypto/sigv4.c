/* sigv4.c - AWS Signature Version 4 verification (header form, AWS4-HMAC-SHA256).
 *
 * Design: pure functions, no clock and no I/O. The caller parses the Authorization header, looks
 * the secret up by access key id, and passes the wall clock in; this module rebuilds the canonical
 * request exactly as the client must have, signs it and compares in constant time.
 *
 * Canonical request (AWS "Create a canonical request", non-S3 services):
 *   METHOD \n URI \n QUERY \n (name:value\n)* \n SIGNED-HEADERS \n PAYLOAD-HASH
 *   - URI: the path as sent, with "." / ".." segments and empty segments removed (a trailing '/'
 *     is kept), then every byte outside the RFC 3986 unreserved set percent-encoded. Because the
 *     path is encoded as sent, an already percent-encoded path is encoded a second time, which is
 *     what SDKs do for every service except S3.
 *   - QUERY: '&'-separated pairs, each key and value percent-decoded then re-encoded (unreserved
 *     set, uppercase hex), '=' always present, sorted by key then value (bytewise). A raw '+'
 *     decodes to a space, because botocore puts spaces on the wire as '+' (form encoding) while
 *     signing them as %20; a literal plus arrives as %2B. Malformed escapes stay literal bytes.
 *   - Headers: the SignedHeaders names in the order given, lowercase; values trimmed and inner runs
 *     of whitespace collapsed to one space. The header block ends with '\n' and a further '\n'
 *     separates it from SignedHeaders (the blank line AWS specifies).
 * Invariants: nothing derived from the secret leaves this file except the final hex signature;
 * error messages echo at most a short, sanitized prefix of client input. */
#include "../base/feat.h"

#include "sigv4.h"
#include "sha256.h"
#include "../base/mem.h"
#include "../base/util.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALGORITHM "AWS4-HMAC-SHA256"
#define TERMINATOR "aws4_request"
#define SKEW_S (15 * 60)
/* Cap on the canonical request built by sigv4_verify; the HTTP layer bounds headers already. */
#define CANONICAL_LIMIT (1024 * 1024)
/* Longest client text echoed back in an error message. */
#define ECHO_MAX 64

static const char msg_mismatch[] =
    "The request signature we calculated does not match the signature you provided. Check your "
    "AWS Secret Access Key and signing method. Consult the service documentation for details.";

/* ---- small character helpers ---- */

static bool is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static char lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* RFC 7230 tchar, the characters allowed in a header name. */
static bool is_tchar(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c) ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Copies at most ECHO_MAX bytes of s[0..n) into out (ECHO_MAX + 4 bytes), replacing anything
 * outside printable ASCII and quotes by '?', and marking truncation with "...". */
static void echo_copy(char out[ECHO_MAX + 4], const char *s, size_t n)
{
	size_t k = 0;
	for (; k < n && k < ECHO_MAX; k++) {
		unsigned char c = (unsigned char)s[k];
		out[k] =
		    (c >= 0x20 && c < 0x7f && c != '"' && c != '\'' && c != '\\') ? (char)c : '?';
	}
	if (k < n) {
		memcpy(out + k, "...", 3);
		k += 3;
	}
	out[k] = '\0';
}

/* ---- percent-encoding ---- */

/* Appends s[0..n) percent-encoded (unreserved set kept, uppercase hex). */
static enum berr_code put_encoded(struct buf *b, const char *s, size_t n, struct berr *err)
{
	static const char digits[] = "0123456789ABCDEF";
	size_t start = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (is_unreserved(c))
			continue;
		char esc[3] = {'%', digits[c >> 4], digits[c & 15]};
		enum berr_code rc = buf_append(b, s + start, i - start, err);
		if (rc == BERR_OK)
			rc = buf_append(b, esc, 3, err);
		if (rc != BERR_OK)
			return rc;
		start = i + 1;
	}
	return buf_append(b, s + start, n - start, err);
}

/* Form-decodes s[0..n) into out (at least n bytes): %XX escapes and '+' as space. Returns the
 * decoded length. A '%' not followed by two hex digits is kept as a literal byte. */
static size_t form_decode(const char *s, size_t n, char *out)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		int hi, lo;
		if (s[i] == '%' && i + 2 < n && (hi = hex_digit((unsigned char)s[i + 1])) >= 0 &&
		    (lo = hex_digit((unsigned char)s[i + 2])) >= 0) {
			out[k++] = (char)(hi << 4 | lo);
			i += 2;
		} else if (s[i] == '+') {
			out[k++] = ' ';
		} else {
			out[k++] = s[i];
		}
	}
	return k;
}

/* New string: s[0..n) decoded then re-encoded canonically; *len gets its length. */
static char *query_part_canon(const char *s, size_t n, size_t *len)
{
	char *dec = xmalloc(n + 1);
	size_t dn = form_decode(s, n, dec);
	struct buf b;
	buf_init(&b, 0);
	/* Unlimited buffer: cannot fail. */
	put_encoded(&b, dec, dn, NULL);
	free(dec);
	return buf_steal(&b, len);
}

/* ---- canonical URI ---- */

struct seg {
	const char *p;
	size_t len;
};

static enum berr_code put_canonical_uri(struct buf *b, const char *path, struct berr *err)
{
	if (!path || !*path)
		return buf_puts(b, "/", err);
	size_t n = strlen(path);
	/* At most n/2 + 1 non-empty segments exist in n bytes. */
	struct seg *segs = xmalloc((n / 2 + 1) * sizeof(*segs));
	size_t nsegs = 0;
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && path[j] != '/')
			j++;
		size_t len = j - i;
		if (len == 2 && path[i] == '.' && path[i + 1] == '.') {
			if (nsegs)
				nsegs--;
		} else if (len > 0 && !(len == 1 && path[i] == '.')) {
			segs[nsegs].p = path + i;
			segs[nsegs].len = len;
			nsegs++;
		}
		i = j + 1;
	}
	enum berr_code rc = buf_puts(b, "/", err);
	for (size_t k = 0; k < nsegs && rc == BERR_OK; k++) {
		if (k)
			rc = buf_puts(b, "/", err);
		if (rc == BERR_OK)
			rc = put_encoded(b, segs[k].p, segs[k].len, err);
	}
	if (rc == BERR_OK && nsegs && path[n - 1] == '/')
		rc = buf_puts(b, "/", err);
	free(segs);
	return rc;
}

/* ---- canonical query string ---- */

struct qparam {
	char *key;
	size_t klen;
	char *val;
	size_t vlen;
};

static int bytes_cmp(const char *a, size_t an, const char *b, size_t bn)
{
	int c = memcmp(a, b, an < bn ? an : bn);
	if (c)
		return c;
	return an < bn ? -1 : an > bn ? 1 : 0;
}

static int qparam_cmp(const void *a, const void *b)
{
	const struct qparam *x = a, *y = b;
	int c = bytes_cmp(x->key, x->klen, y->key, y->klen);
	return c ? c : bytes_cmp(x->val, x->vlen, y->val, y->vlen);
}

static enum berr_code put_canonical_query(struct buf *b, const char *query, struct berr *err)
{
	if (!query || !*query)
		return BERR_OK;
	size_t n = strlen(query);
	struct qparam *ps = xmalloc((n / 2 + 1) * sizeof(*ps));
	size_t np = 0;
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && query[j] != '&')
			j++;
		if (j > i) {
			const char *eq = memchr(query + i, '=', j - i);
			size_t kend = eq ? (size_t)(eq - query) : j;
			size_t vstart = eq ? kend + 1 : j;
			ps[np].key = query_part_canon(query + i, kend - i, &ps[np].klen);
			ps[np].val = query_part_canon(query + vstart, j - vstart, &ps[np].vlen);
			np++;
		}
		i = j + 1;
	}
	qsort(ps, np, sizeof(*ps), qparam_cmp);
	enum berr_code rc = BERR_OK;
	for (size_t k = 0; k < np; k++) {
		if (rc == BERR_OK && k)
			rc = buf_puts(b, "&", err);
		if (rc == BERR_OK)
			rc = buf_append(b, ps[k].key, ps[k].klen, err);
		if (rc == BERR_OK)
			rc = buf_puts(b, "=", err);
		if (rc == BERR_OK)
			rc = buf_append(b, ps[k].val, ps[k].vlen, err);
		free(ps[k].key);
		free(ps[k].val);
	}
	free(ps);
	return rc;
}

/* ---- canonical headers ---- */

/* Appends v trimmed, with each inner run of whitespace collapsed to one space. */
static enum berr_code put_header_value(struct buf *b, const char *v, struct berr *err)
{
	enum berr_code rc = BERR_OK;
	bool pending_space = false, any = false;
	while (*v && rc == BERR_OK) {
		if (is_ws(*v)) {
			pending_space = any;
			v++;
			continue;
		}
		const char *s = v;
		while (*v && !is_ws(*v))
			v++;
		if (pending_space)
			rc = buf_puts(b, " ", err);
		if (rc == BERR_OK)
			rc = buf_append(b, s, (size_t)(v - s), err);
		pending_space = false;
		any = true;
	}
	return rc;
}

static enum berr_code put_canonical_headers(struct buf *b, const struct sigv4_request *req,
                                            const char *signed_headers, struct berr *err)
{
	char name[sizeof(((struct sigv4_auth *)0)->signed_headers)];
	const char *p = signed_headers;
	enum berr_code rc = BERR_OK;
	while (*p && rc == BERR_OK) {
		size_t len = strcspn(p, ";");
		if (len >= sizeof(name))
			len = sizeof(name) - 1;
		for (size_t i = 0; i < len; i++)
			name[i] = lower(p[i]);
		name[len] = '\0';
		p += len;
		if (*p == ';')
			p++;
		if (!len)
			continue;
		/* An absent signed header canonicalises as empty: the signature then fails to
		 * match, which is the answer AWS gives too. */
		const char *v = req->header ? req->header(req->header_ctx, name) : NULL;
		rc = buf_append(b, name, len, err);
		if (rc == BERR_OK)
			rc = buf_puts(b, ":", err);
		if (rc == BERR_OK && v)
			rc = put_header_value(b, v, err);
		if (rc == BERR_OK)
			rc = buf_puts(b, "\n", err);
	}
	return rc;
}

enum berr_code sigv4_canonical_request(const struct sigv4_request *req,
                                       const struct sigv4_auth *auth, struct buf *out,
                                       struct berr *err)
{
	if (!req || !auth || !req->method || !req->payload_hash)
		return err_set(err, BERR_INTERNAL, "sigv4: incomplete request description");
	buf_reset(out);
	enum berr_code rc = buf_puts(out, req->method, err);
	if (rc == BERR_OK)
		rc = buf_puts(out, "\n", err);
	if (rc == BERR_OK)
		rc = put_canonical_uri(out, req->path, err);
	if (rc == BERR_OK)
		rc = buf_puts(out, "\n", err);
	if (rc == BERR_OK)
		rc = put_canonical_query(out, req->query, err);
	if (rc == BERR_OK)
		rc = buf_puts(out, "\n", err);
	if (rc == BERR_OK)
		rc = put_canonical_headers(out, req, auth->signed_headers, err);
	if (rc == BERR_OK)
		rc = buf_printf(out, err, "\n%s\n%s", auth->signed_headers, req->payload_hash);
	return rc;
}

enum berr_code sigv4_string_to_sign(const char *amz_date, const struct sigv4_auth *auth,
                                    const char *canonical_request, struct buf *out,
                                    struct berr *err)
{
	unsigned char h[SHA256_DIGEST_LEN];
	char hex[2 * SHA256_DIGEST_LEN + 1];
	struct sha256 ctx;
	sha256_init(&ctx);
	sha256_update(&ctx, canonical_request, strlen(canonical_request));
	sha256_final(&ctx, h);
	hex_encode(h, sizeof(h), hex);
	buf_reset(out);
	return buf_printf(out, err, ALGORITHM "\n%s\n%s/%s/%s/" TERMINATOR "\n%s", amz_date,
	                  auth->date, auth->region, auth->service, hex);
}

void sigv4_signature_compute(const char *secret, const struct sigv4_auth *auth,
                             const char *string_to_sign, char out[65])
{
	/* Two buffers: the derivation chain never hashes into the key it is reading. */
	unsigned char ka[SHA256_DIGEST_LEN], kb[SHA256_DIGEST_LEN], sig[SHA256_DIGEST_LEN];
	size_t slen = strlen(secret);
	char *k0 = xmalloc(slen + 5);
	memcpy(k0, "AWS4", 4);
	memcpy(k0 + 4, secret, slen + 1);
	hmac_sha256(k0, slen + 4, auth->date, strlen(auth->date), ka);
	/* Derived keys are as sensitive as the secret: wipe every copy. */
	explicit_bzero(k0, slen + 4);
	free(k0);
	hmac_sha256(ka, sizeof(ka), auth->region, strlen(auth->region), kb);
	hmac_sha256(kb, sizeof(kb), auth->service, strlen(auth->service), ka);
	hmac_sha256(ka, sizeof(ka), TERMINATOR, strlen(TERMINATOR), kb);
	hmac_sha256(kb, sizeof(kb), string_to_sign, strlen(string_to_sign), sig);
	explicit_bzero(ka, sizeof(ka));
	explicit_bzero(kb, sizeof(kb));
	hex_encode(sig, sizeof(sig), out);
}

/* ---- Authorization header ---- */

static enum berr_code malformed(struct berr *err, const char *what, const char *value)
{
	char echo[ECHO_MAX + 4];
	echo_copy(echo, value, strlen(value));
	return err_set(err, BERR_AUTH_SIGNATURE, "%s Authorization=%s", what, echo);
}

/* Checks s[0..n) for 1..max-1 bytes from [A-Za-z0-9] plus the bytes in extra. */
static bool field_ok(const char *s, size_t n, size_t max, const char *extra)
{
	if (n == 0 || n >= max)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c) ||
		      (c && strchr(extra, c))))
			return false;
	}
	return true;
}

static enum berr_code parse_credential(const char *v, size_t n, const char *value,
                                       struct sigv4_auth *out, struct berr *err)
{
	struct seg part[5];
	size_t np = 0, i = 0;
	while (np < 5) {
		size_t j = i;
		while (j < n && v[j] != '/')
			j++;
		part[np].p = v + i;
		part[np].len = j - i;
		np++;
		if (j >= n)
			break;
		i = j + 1;
	}
	if (np != 5 || part[4].p + part[4].len != v + n)
		return malformed(err,
		                 "Authorization header is malformed; the Credential is mal-formed;"
		                 " expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".",
		                 value);
	if (!field_ok(part[0].p, part[0].len, sizeof(out->akid), "_.-+=@"))
		return malformed(err,
		                 "Authorization header is malformed; the access key id in the "
		                 "Credential is invalid.",
		                 value);
	bool date_ok = part[1].len == 8;
	for (size_t k = 0; date_ok && k < 8; k++)
		date_ok = is_digit(part[1].p[k]);
	if (!date_ok) {
		char echo[ECHO_MAX + 4];
		echo_copy(echo, part[1].p, part[1].len);
		return err_set(err, BERR_AUTH_SIGNATURE,
		               "Invalid credential date \"%s\". Date is not "
		               "the required format: yyyyMMdd.",
		               echo);
	}
	if (!field_ok(part[2].p, part[2].len, sizeof(out->region), "-"))
		return malformed(err, "Credential should be scoped to a valid region.", value);
	if (!field_ok(part[3].p, part[3].len, sizeof(out->service), "-_."))
		return malformed(err, "Credential should be scoped to a valid service.", value);
	if (part[4].len != strlen(TERMINATOR) || memcmp(part[4].p, TERMINATOR, part[4].len) != 0) {
		char echo[ECHO_MAX + 4];
		echo_copy(echo, part[4].p, part[4].len);
		return err_set(err, BERR_AUTH_SIGNATURE,
		               "Credential should be scoped with a valid "
		               "terminator: 'aws4_request', not '%s'.",
		               echo);
	}
	memcpy(out->akid, part[0].p, part[0].len);
	memcpy(out->date, part[1].p, 8);
	memcpy(out->region, part[2].p, part[2].len);
	memcpy(out->service, part[3].p, part[3].len);
	return BERR_OK;
}

static enum berr_code parse_signed_headers(const char *v, size_t n, const char *value,
                                           struct sigv4_auth *out, struct berr *err)
{
	bool ok = n > 0 && n < sizeof(out->signed_headers) && v[0] != ';' && v[n - 1] != ';';
	for (size_t i = 0; ok && i < n; i++)
		ok = v[i] == ';' ? v[i + 1] != ';' : is_tchar(v[i]);
	if (!ok)
		return malformed(err,
		                 "Authorization header is malformed; SignedHeaders must be "
		                 "header names separated by ';'.",
		                 value);
	for (size_t i = 0; i < n; i++)
		out->signed_headers[i] = lower(v[i]);
	out->signed_headers[n] = '\0';
	return BERR_OK;
}

static enum berr_code parse_signature(const char *v, size_t n, const char *value,
                                      struct sigv4_auth *out, struct berr *err)
{
	bool ok = n == 64;
	for (size_t i = 0; ok && i < n; i++)
		ok = hex_digit((unsigned char)v[i]) >= 0;
	if (!ok)
		return malformed(err,
		                 "Authorization header is malformed; the Signature must be 64 "
		                 "hexadecimal characters.",
		                 value);
	for (size_t i = 0; i < n; i++)
		out->signature[i] = lower(v[i]);
	out->signature[n] = '\0';
	return BERR_OK;
}

enum berr_code sigv4_parse_authorization(const char *value, struct sigv4_auth *out,
                                         struct berr *err)
{
	memset(out, 0, sizeof(*out));
	if (!value)
		return err_set(err, BERR_AUTH_MISSING, "Missing Authentication Token");
	const char *p = value;
	while (is_ws(*p))
		p++;
	size_t alen = strcspn(p, " \t");
	if (alen != strlen(ALGORITHM) || memcmp(p, ALGORITHM, alen) != 0) {
		if (alen > 5 && memcmp(p, "AWS4-", 5) == 0) {
			char echo[ECHO_MAX + 4];
			echo_copy(echo, p, alen);
			return err_set(err, BERR_AUTH_SIGNATURE,
			               "Unsupported AWS 'algorithm': '%s'.", echo);
		}
		return err_set(err, BERR_AUTH_MISSING, "Missing Authentication Token");
	}
	p += alen;

	enum { P_CRED, P_SH, P_SIG, P__N };
	static const char *const names[P__N] = {"Credential", "SignedHeaders", "Signature"};
	bool seen[P__N] = {false, false, false};
	enum berr_code rc = BERR_OK;
	while (*p && rc == BERR_OK) {
		while (is_ws(*p) || *p == ',')
			p++;
		if (!*p)
			break;
		size_t len = strcspn(p, ",");
		while (len && is_ws(p[len - 1]))
			len--;
		const char *eq = memchr(p, '=', len);
		if (!eq) {
			char e1[ECHO_MAX + 4], e2[ECHO_MAX + 4];
			echo_copy(e1, p, len);
			echo_copy(e2, value, strlen(value));
			rc = err_set(err, BERR_AUTH_SIGNATURE,
			             "'%s' not a valid key=value pair (missing "
			             "equal-sign) in Authorization header: '%s'.",
			             e1, e2);
			break;
		}
		size_t klen = (size_t)(eq - p);
		const char *v = eq + 1;
		size_t vlen = len - klen - 1;
		int which = -1;
		for (int k = 0; k < P__N; k++)
			if (klen == strlen(names[k]) && memcmp(p, names[k], klen) == 0)
				which = k;
		p += len;
		while (*p && *p != ',')
			p++;
		/* Unknown parameters are ignored, as AWS does. */
		if (which < 0)
			continue;
		if (seen[which]) {
			char msg[96];
			snprintf(msg, sizeof(msg),
			         "Authorization header has a duplicate '%s' parameter.",
			         names[which]);
			rc = malformed(err, msg, value);
			break;
		}
		seen[which] = true;
		rc = which == P_CRED ? parse_credential(v, vlen, value, out, err)
		     : which == P_SH ? parse_signed_headers(v, vlen, value, out, err)
		                     : parse_signature(v, vlen, value, out, err);
	}
	if (rc == BERR_OK && (!seen[P_CRED] || !seen[P_SH] || !seen[P_SIG])) {
		char msg[256] = "";
		size_t m = 0;
		for (int k = 0; k < P__N; k++)
			if (!seen[k])
				m += (size_t)snprintf(msg + m, sizeof(msg) - m,
				                      "%sAuthorization header "
				                      "requires '%s' parameter.",
				                      m ? " " : "", names[k]);
		rc = malformed(err, msg, value);
	}
	/* Never hand back a half-filled result. */
	if (rc != BERR_OK)
		memset(out, 0, sizeof(*out));
	return rc;
}

/* ---- dates ---- */

/* Days since 1970-01-01 of a proleptic Gregorian date (era-based civil calendar arithmetic). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static int days_in_month(int64_t y, int m)
{
	static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return m == 2 && leap ? 29 : dim[m - 1];
}

static int num(const char *s, int n)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (!is_digit(s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

static bool to_epoch(int y, int mo, int d, int h, int mi, int s, int64_t *out)
{
	if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h < 0 || h > 23 ||
	    mi < 0 || mi > 59 || s < 0 || s > 59)
		return false;
	*out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
	return true;
}

/* "yyyymmddThhmmssZ", exactly. */
static bool parse_amz_date(const char *s, int64_t *out)
{
	if (strlen(s) != 16 || s[8] != 'T' || s[15] != 'Z')
		return false;
	return to_epoch(num(s, 4), num(s + 4, 2), num(s + 6, 2), num(s + 9, 2), num(s + 11, 2),
	                num(s + 13, 2), out);
}

/* RFC 1123 "Sun, 06 Nov 1994 08:49:37 GMT" (weekday not cross-checked). */
static bool parse_http_date(const char *s, int64_t *out)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	if (strlen(s) != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' ||
	    s[16] != ' ' || s[19] != ':' || s[22] != ':' || strcmp(s + 25, " GMT") != 0)
		return false;
	int mo = 0;
	for (int k = 0; k < 12; k++)
		if (memcmp(s + 8, months + 3 * k, 3) == 0)
			mo = k + 1;
	return to_epoch(num(s + 12, 4), mo, num(s + 5, 2), num(s + 17, 2), num(s + 20, 2),
	                num(s + 23, 2), out);
}

static void put_digits(char *o, int64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--, v /= 10)
		o[i] = (char)('0' + v % 10);
}

/* Formats t as yyyymmddThhmmssZ, clamped to years 0000..9999. */
static void format_amz_date(int64_t t, char out[17])
{
	const int64_t lo = days_from_civil(0, 1, 1) * 86400;
	const int64_t hi = days_from_civil(9999, 12, 31) * 86400 + 86399;
	t = t < lo ? lo : t > hi ? hi : t;
	int64_t days = (t - lo) / 86400 + days_from_civil(0, 1, 1);
	int64_t sec = t - days * 86400, y;
	int m, d;
	civil_from_days(days, &y, &m, &d);
	put_digits(out, y, 4);
	put_digits(out + 4, m, 2);
	put_digits(out + 6, d, 2);
	out[8] = 'T';
	put_digits(out + 9, sec / 3600, 2);
	put_digits(out + 11, sec / 60 % 60, 2);
	put_digits(out + 13, sec % 60, 2);
	out[15] = 'Z';
	out[16] = '\0';
}

/* Copies header value v without surrounding whitespace into out (cap bytes); false if it does
 * not fit. */
static bool trimmed_copy(const char *v, char *out, size_t cap)
{
	while (is_ws(*v))
		v++;
	size_t n = strlen(v);
	while (n && is_ws(v[n - 1]))
		n--;
	if (n >= cap)
		return false;
	memcpy(out, v, n);
	out[n] = '\0';
	return true;
}

static bool host_is_signed(const char *signed_headers)
{
	for (const char *p = signed_headers; *p;) {
		size_t len = strcspn(p, ";");
		if (len == 4 && memcmp(p, "host", 4) == 0)
			return true;
		p += len;
		if (*p)
			p++;
	}
	return false;
}

enum berr_code sigv4_verify(const struct sigv4_request *req, const struct sigv4_auth *auth,
                            const char *secret, int64_t now_ms, struct berr *err)
{
	if (!req || !auth || !secret || !req->header)
		return err_set(err, BERR_INTERNAL, "sigv4: incomplete request description");

	/* Request time: X-Amz-Date wins; else Date, converted to the basic format AWS signs. */
	char amz[17], tmp[40];
	int64_t t = 0;
	const char *xd = req->header(req->header_ctx, "x-amz-date");
	const char *hd = xd ? NULL : req->header(req->header_ctx, "date");
	if (xd) {
		if (!trimmed_copy(xd, amz, sizeof(amz)) || !parse_amz_date(amz, &t))
			return err_set(err, BERR_AUTH_SIGNATURE,
			               "X-Amz-Date must be in the ISO8601 "
			               "Long Format \"yyyyMMdd'T'HHmmss'Z'\"");
	} else if (hd) {
		if (!trimmed_copy(hd, tmp, sizeof(tmp)) || !parse_http_date(tmp, &t))
			return err_set(err, BERR_AUTH_SIGNATURE,
			               "Date must be in RFC 1123 format, "
			               "e.g. \"Sun, 30 Aug 2015 12:36:00 GMT\"");
		format_amz_date(t, amz);
	} else {
		return err_set(err, BERR_AUTH_SIGNATURE,
		               "Authorization header requires existence of "
		               "either a 'X-Amz-Date' or a 'Date' header.");
	}

	if (!host_is_signed(auth->signed_headers))
		return err_set(err, BERR_AUTH_SIGNATURE,
		               "'Host' or ':authority' must be a 'SignedHeader' in the AWS "
		               "Authorization.");

	int64_t now = now_ms >= 0 ? now_ms / 1000 : -((-now_ms + 999) / 1000);
	if (t < now - SKEW_S || t > now + SKEW_S) {
		char lim[17], nowstr[17];
		format_amz_date(t < now ? now - SKEW_S : now + SKEW_S, lim);
		format_amz_date(now, nowstr);
		if (t < now)
			return err_set(err, BERR_AUTH_SKEW,
			               "Signature expired: %s is now earlier than "
			               "%s (%s - 15 min.)",
			               amz, lim, nowstr);
		return err_set(err, BERR_AUTH_SKEW,
		               "Signature not yet current: %s is still later "
		               "than %s (%s + 15 min.)",
		               amz, lim, nowstr);
	}

	if (strlen(auth->date) != 8 || memcmp(auth->date, amz, 8) != 0)
		return err_set(
		    err, BERR_AUTH_SIGNATURE,
		    "Date in Credential scope does not match "
		    "YYYYMMDD from ISO-8601 version of date from HTTP: '%.8s' != '%.8s', "
		    "from '%s'.",
		    auth->date, amz, amz);

	struct buf creq, sts;
	buf_init(&creq, CANONICAL_LIMIT);
	buf_init(&sts, 0);
	enum berr_code rc = sigv4_canonical_request(req, auth, &creq, err);
	if (rc == BERR_OK)
		rc = sigv4_string_to_sign(amz, auth, creq.p, &sts, err);
	if (rc == BERR_TOO_LARGE)
		rc = err_set(err, BERR_AUTH_SIGNATURE,
		             "The request is too large to verify its signature.");
	if (rc == BERR_OK) {
		char sig[65];
		sigv4_signature_compute(secret, auth, sts.p, sig);
		if (strlen(auth->signature) != 64 || !crypto_equal(sig, auth->signature, 64))
			rc = err_set(err, BERR_AUTH_SIGNATURE, "%s", msg_mismatch);
	}
	buf_free(&creq);
	buf_free(&sts);
	return rc;
}
