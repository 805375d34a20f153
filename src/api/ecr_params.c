/* ecr_params.c - request member validation with ECR's error texts (spec §1.5). Order of checks
 * in handlers: JSON types -> required -> lengths/enums/patterns -> lookups -> semantics. */
#include "../base/feat.h"

#include "ecr.h"
#include "../base/mem.h"
#include "../crypto/sha256.h"
#include "../oci/ref.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum berr_code ep_invalid(struct berr *err, const char *name, const char *fmt, ...)
{
	char c[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c, sizeof(c), fmt, ap);
	va_end(ap);
	return err_set(err, BERR_PARAM_INVALID,
	               "Invalid parameter at '%s' failed to satisfy constraint: '%s'", name, c);
}

#define NUL_CONSTRAINT "Member must not contain NUL characters"

static json_t *member(json_t *obj, const char *name)
{
	json_t *v = json_object_get(obj, name);
	return json_is_null(v) ? NULL : v;
}

static enum berr_code wrong_type(struct berr *err, const char *name, const char *want)
{
	return err_set(err, BERR_SERIALIZATION,
	               "Unexpected value type for member '%s': expected %s", name, want);
}

static enum berr_code missing(struct berr *err, const char *name)
{
	return ep_invalid(err, name, "Member must not be null");
}

/* Length in characters (UTF-8 code points) of the n bytes at s, as the service model counts;
 * a NUL byte counts as a character. */
static size_t utf8_len(const char *s, size_t n)
{
	size_t c = 0;
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			c++;
	return c;
}

/* The string member name: its text and byte length (which counts any NUL bytes inside), with
 * ECR's length checks in characters. *out untouched if absent. */
static enum berr_code str_member(json_t *obj, const char *name, bool required, size_t min,
                                 size_t max, const char **out, size_t *len, struct berr *err)
{
	json_t *v = member(obj, name);
	if (!v)
		return required ? missing(err, name) : BERR_OK;
	if (!json_is_string(v))
		return wrong_type(err, name, "string");
	const char *s = json_string_value(v);
	size_t n = utf8_len(s, json_string_length(v));
	if (n < min)
		return ep_invalid(err, name, "Member must have length greater than or equal to %zu",
		                  min);
	if (max && n > max)
		return ep_invalid(err, name, "Member must have length less than or equal to %zu",
		                  max);
	*out = s;
	*len = json_string_length(v);
	return BERR_OK;
}

static bool has_nul(const char *s, size_t len)
{
	return memchr(s, '\0', len) != NULL;
}

enum berr_code ep_str(json_t *obj, const char *name, bool required, size_t min, size_t max,
                      const char **out, struct berr *err)
{
	const char *s = NULL;
	size_t len = 0;
	enum berr_code rc = str_member(obj, name, required, min, max, &s, &len, err);
	if (rc != BERR_OK || !s)
		return rc;
	/* read as a C string, "a\u0000b" would be "a": a different, maybe valid, value */
	if (has_nul(s, len))
		return ep_invalid(err, name, NUL_CONSTRAINT);
	*out = s;
	return BERR_OK;
}

enum berr_code ep_bool(json_t *obj, const char *name, bool *out, struct berr *err)
{
	json_t *v = member(obj, name);
	if (!v)
		return BERR_OK;
	if (!json_is_boolean(v))
		return wrong_type(err, name, "boolean");
	*out = json_is_true(v);
	return BERR_OK;
}

enum berr_code ep_int(json_t *obj, const char *name, long long min, long long max, bool *has,
                      long long *out, struct berr *err)
{
	json_t *v = member(obj, name);
	if (has)
		*has = false;
	if (!v)
		return BERR_OK;
	if (!json_is_integer(v))
		return wrong_type(err, name, "integer");
	long long n = (long long)json_integer_value(v);
	if (n < min)
		return ep_invalid(err, name, "Member must have value greater than or equal to %lld",
		                  min);
	if (n > max)
		return ep_invalid(err, name, "Member must have value less than or equal to %lld",
		                  max);
	if (has)
		*has = true;
	*out = n;
	return BERR_OK;
}

enum berr_code ep_array(json_t *obj, const char *name, bool required, size_t min, size_t max,
                        json_t **out, struct berr *err)
{
	json_t *v = member(obj, name);
	if (!v)
		return required ? missing(err, name) : BERR_OK;
	if (!json_is_array(v))
		return wrong_type(err, name, "list");
	size_t n = json_array_size(v);
	if (n < min)
		return ep_invalid(err, name, "Member must have length greater than or equal to %zu",
		                  min);
	if (max && n > max)
		return ep_invalid(err, name, "Member must have length less than or equal to %zu",
		                  max);
	*out = v;
	return BERR_OK;
}

enum berr_code ep_object(json_t *obj, const char *name, bool required, json_t **out,
                         struct berr *err)
{
	json_t *v = member(obj, name);
	if (!v)
		return required ? missing(err, name) : BERR_OK;
	if (!json_is_object(v))
		return wrong_type(err, name, "structure");
	*out = v;
	return BERR_OK;
}

enum berr_code ep_enum(json_t *obj, const char *name, bool required, const char *const *values,
                       const char **out, struct berr *err)
{
	const char *s = NULL;
	enum berr_code rc = ep_str(obj, name, required, 0, 0, &s, err);
	if (rc != BERR_OK || !s)
		return rc;
	for (const char *const *v = values; *v; v++) {
		if (strcmp(*v, s) == 0) {
			*out = s;
			return BERR_OK;
		}
	}
	char list[512] = "";
	size_t o = 0;
	for (const char *const *v = values; *v && o < sizeof(list); v++)
		o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", v == values ? "" : ", ",
		                      *v);
	return ep_invalid(err, name, "Member must satisfy enum value set: [%s]", list);
}

enum berr_code ep_repo_name(json_t *obj, const char *name, const char **out, struct berr *err)
{
	const char *s = NULL;
	size_t len = 0;
	enum berr_code rc =
	    str_member(obj, name, true, REPO_NAME_MIN, REPO_NAME_MAX, &s, &len, err);
	if (rc != BERR_OK)
		return rc;
	/* a NUL is a character the pattern does not allow */
	if (has_nul(s, len) || !ref_repo_name_is_valid(s))
		return ep_invalid(err, name, "must satisfy regular expression '%s'",
		                  REF_REPO_NAME_PATTERN_MSG);
	*out = s;
	return BERR_OK;
}

/* Whether v, or any string inside it at any depth, holds a NUL byte (keys never do: the parser
 * refuses them). */
static bool tree_has_nul(json_t *v)
{
	size_t i;
	const char *k;
	json_t *e;
	if (json_is_string(v))
		return has_nul(json_string_value(v), json_string_length(v));
	if (json_is_array(v)) {
		json_array_foreach (v, i, e)
			if (tree_has_nul(e))
				return true;
	} else if (json_is_object(v)) {
		json_object_foreach (v, k, e)
			if (tree_has_nul(e))
				return true;
	}
	return false;
}

enum berr_code ep_nul_check(json_t *in, struct berr *err)
{
	const char *name;
	json_t *v;
	json_object_foreach (in, name, v) {
		if (!tree_has_nul(v))
			continue;
		const char *s = NULL;
		if (strcmp(name, "repositoryName") == 0 && json_is_string(v))
			return ep_repo_name(in, name, &s, err); /* its length, else its pattern */
		return ep_invalid(err, name, NUL_CONSTRAINT);
	}
	return BERR_OK;
}

static bool all_digits(const char *s, size_t n)
{
	if (strlen(s) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

enum berr_code ep_registry(struct ecr_call *c, bool strict, const char *repo,
                           struct registry_id *out, struct berr *err)
{
	*out = c->caller;
	const char *id = NULL;
	enum berr_code rc = ep_str(c->in, "registryId", false, 0, 63, &id, err);
	if (rc != BERR_OK)
		return rc;
	if (!id)
		return BERR_OK;
	if (strict && !all_digits(id, 12))
		return ep_invalid(err, "registryId", "must satisfy regular expression '[0-9]{12}'");
	snprintf(out->account, sizeof(out->account), "%s", id);
	return api_access_check(c->srv, c->caller.account, out, c->action, repo, err);
}

enum berr_code ep_repo_addr(struct ecr_call *c, struct registry_id *reg, const char **name,
                            struct berr *err)
{
	enum berr_code rc = ep_repo_name(c->in, "repositoryName", name, err);
	return rc == BERR_OK ? ep_registry(c, false, *name, reg, err) : rc;
}

enum berr_code ep_repo(struct ecr_call *c, struct meta_repo *out, struct berr *err)
{
	struct registry_id reg;
	const char *name = NULL;
	enum berr_code rc = ep_repo_addr(c, &reg, &name, err);
	return rc == BERR_OK ? core_repo_get(c->m, &reg, name, out, err) : rc;
}

/* Tokens are base64url("p1:<last id>[:<skip>]"): opaque to clients, stable across calls (ids
 * only grow), and cheap to resume from with an indexed range scan. skip counts entries of the
 * row <last id>+1.. already returned (ListImages pages by (image, tag) pairs, so a page may end
 * inside one image's tags). */
json_t *ep_token(int64_t last_id, int64_t skip)
{
	char raw[64];
	int n = skip ? snprintf(raw, sizeof(raw), "p1:%" PRId64 ":%" PRId64, last_id, skip)
	             : snprintf(raw, sizeof(raw), "p1:%" PRId64, last_id);
	char *t = base64url_encode(raw, (size_t)n);
	json_t *j = json_string(t);
	free(t);
	return j;
}

/* Parses "p1:<id>[:<skip>]"; false if malformed. */
static bool parse_token(const char *tok, int64_t *after, int64_t *skip)
{
	unsigned char *raw = NULL;
	size_t len = 0;
	struct berr e;
	bool ok = false;
	if (base64url_decode(tok, strlen(tok), &raw, &len, &e) != BERR_OK)
		return false;
	char buf[64];
	if (len < sizeof(buf) && len > 3 && memcmp(raw, "p1:", 3) == 0) {
		memcpy(buf, raw, len);
		buf[len] = '\0';
		char *end = NULL;
		if (isdigit((unsigned char)buf[3])) {
			long long id = strtoll(buf + 3, &end, 10);
			long long sk = 0;
			if (*end == ':' && isdigit((unsigned char)end[1]))
				sk = strtoll(end + 1, &end, 10);
			ok = *end == '\0' && id >= 0 && sk >= 0;
			*after = id;
			*skip = sk;
		}
	}
	free(raw);
	return ok;
}

enum berr_code ep_page(json_t *obj, long long max, long long def, struct ep_page *pg,
                       struct berr *err)
{
	bool has = false;
	long long n = def;
	const char *tok = NULL;
	enum berr_code rc = ep_int(obj, "maxResults", 1, max, &has, &n, err);
	if (rc == BERR_OK)
		rc = ep_str(obj, "nextToken", false, 0, 4096, &tok, err);
	if (rc != BERR_OK)
		return rc;
	pg->limit = n;
	pg->after = 0;
	pg->skip = 0;
	pg->given = has || tok;
	if (tok && !parse_token(tok, &pg->after, &pg->skip))
		return ep_invalid(err, "nextToken", "Invalid pagination token");
	return BERR_OK;
}
