/* sha256.c - SHA-256, HMAC and base64 over OpenSSL libcrypto.
 *
 * We use the low-level SHA256_CTX API (deprecated in OpenSSL 3 but still built on the same
 * assembly as EVP) because its state is a plain struct that can be persisted with an upload
 * session; EVP_MD_CTX state is not exportable. */
#include "../base/feat.h"

#define OPENSSL_SUPPRESS_DEPRECATED 1

#include "sha256.h"
#include "../base/mem.h"
#include "../base/util.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <string.h>

_Static_assert(sizeof(SHA256_CTX) <= sizeof(((struct sha256 *)0)->st), "SHA256_CTX fits");

/* Exported state: 4-byte magic, then the context. */
#define STATE_MAGIC 0x42534831u /* "BSH1" */

void sha256_init(struct sha256 *h)
{
	memset(h, 0, sizeof(*h));
	SHA256_Init((SHA256_CTX *)h->st);
}

void sha256_update(struct sha256 *h, const void *data, size_t n)
{
	if (n)
		SHA256_Update((SHA256_CTX *)h->st, data, n);
}

void sha256_final(struct sha256 *h, unsigned char out[SHA256_DIGEST_LEN])
{
	SHA256_Final(out, (SHA256_CTX *)h->st);
}

static void to_str(const unsigned char md[SHA256_DIGEST_LEN], char out[DIGEST_STR_LEN])
{
	memcpy(out, "sha256:", 7);
	hex_encode(md, SHA256_DIGEST_LEN, out + 7);
}

void sha256_digest_str(const void *data, size_t n, char out[DIGEST_STR_LEN])
{
	/* not SHA256(): in OpenSSL 3 it looks the algorithm up by name on every call (twice the
	 * time for a manifest-sized input, and a lock shared by every thread) */
	struct sha256 h;
	unsigned char md[SHA256_DIGEST_LEN];
	sha256_init(&h);
	sha256_update(&h, data, n);
	sha256_final(&h, md);
	to_str(md, out);
}

void sha256_peek_str(const struct sha256 *h, char out[DIGEST_STR_LEN])
{
	struct sha256 copy = *h;
	unsigned char md[SHA256_DIGEST_LEN];
	sha256_final(&copy, md);
	to_str(md, out);
}

size_t sha256_state_size(void)
{
	return 4 + sizeof(SHA256_CTX);
}

void sha256_state_export(const struct sha256 *h, void *out)
{
	uint32_t magic = STATE_MAGIC;
	memcpy(out, &magic, 4);
	memcpy((char *)out + 4, h->st, sizeof(SHA256_CTX));
}

bool sha256_state_import(struct sha256 *h, const void *in, size_t n)
{
	uint32_t magic;
	if (n != sha256_state_size())
		return false;
	memcpy(&magic, in, 4);
	if (magic != STATE_MAGIC)
		return false;
	memset(h, 0, sizeof(*h));
	memcpy(h->st, (const char *)in + 4, sizeof(SHA256_CTX));
	return true;
}

void hmac_sha256(const void *key, size_t keylen, const void *data, size_t n,
                 unsigned char out[SHA256_DIGEST_LEN])
{
	unsigned int len = SHA256_DIGEST_LEN;
	HMAC(EVP_sha256(), key, (int)keylen, data, n, out, &len);
}

bool crypto_equal(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}

static const char b64std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static char *b64_enc(const void *in, size_t n, const char *alpha, bool pad)
{
	const unsigned char *s = in;
	char *out = xmalloc(4 * ((n + 2) / 3) + 1);
	size_t o = 0, i = 0;
	for (; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
		out[o++] = alpha[v >> 18];
		out[o++] = alpha[(v >> 12) & 63];
		out[o++] = alpha[(v >> 6) & 63];
		out[o++] = alpha[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0);
		out[o++] = alpha[v >> 18];
		out[o++] = alpha[(v >> 12) & 63];
		if (i + 1 < n)
			out[o++] = alpha[(v >> 6) & 63];
		else if (pad)
			out[o++] = '=';
		if (pad)
			out[o++] = '=';
	}
	out[o] = '\0';
	return out;
}

char *base64_encode(const void *in, size_t n)
{
	return b64_enc(in, n, b64std, true);
}
char *base64url_encode(const void *in, size_t n)
{
	return b64_enc(in, n, b64url, false);
}

static int b64_val(unsigned char c, bool url)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (url ? '-' : '+'))
		return 62;
	if (c == (url ? '_' : '/'))
		return 63;
	return -1;
}

static enum berr_code b64_dec(const char *in, size_t n, bool url, unsigned char **out,
                              size_t *outlen, struct berr *err)
{
	size_t pad = 0;
	if (!url) {
		if (n % 4)
			return err_set(err, BERR_INVALID, "invalid base64 length");
		if (n && in[n - 1] == '=')
			pad++;
		if (n > 1 && in[n - 2] == '=')
			pad++;
	} else if (n % 4 == 1) {
		return err_set(err, BERR_INVALID, "invalid base64url length");
	}
	size_t m = n - pad;
	unsigned char *o = xmalloc(m * 3 / 4 + 3);
	size_t k = 0;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < m; i++) {
		int v = b64_val((unsigned char)in[i], url);
		if (v < 0) {
			free(o);
			return err_set(err, BERR_INVALID, "invalid base64 character");
		}
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			o[k++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	/* Leftover bits must be zero for a canonical encoding. */
	if (acc != 0) {
		free(o);
		return err_set(err, BERR_INVALID, "invalid base64 padding bits");
	}
	*out = o;
	*outlen = k;
	return BERR_OK;
}

enum berr_code base64_decode(const char *in, size_t n, unsigned char **out, size_t *outlen,
                             struct berr *err)
{
	return b64_dec(in, n, false, out, outlen, err);
}

enum berr_code base64url_decode(const char *in, size_t n, unsigned char **out, size_t *outlen,
                                struct berr *err)
{
	return b64_dec(in, n, true, out, outlen, err);
}
