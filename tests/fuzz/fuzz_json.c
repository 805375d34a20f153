/* fuzz_json.c - libFuzzer target for base/json_fast: the fast reader against jansson on the
 * same bytes, with flags 0 and with JSON_ALLOW_NUL. Whenever the fast reader builds a tree,
 * jansson (same flags) must accept the text and build an equal tree with the same key order
 * (json_equal compares string lengths, so NUL bytes count); json_fast_loadb must agree with
 * jansson either way. The input is copied to an exact-size buffer so ASan sees any overread. */
#include "base/feat.h"

#include "base/json_fast.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
	if (!cond)
		abort();
}

/* json_equal ignores key order; jansson keeps insertion order, and so must the fast reader. */
static int same_order(json_t *a, json_t *b)
{
	if (json_is_object(a)) {
		void *ia = json_object_iter(a), *ib = json_object_iter(b);
		for (; ia && ib;
		     ia = json_object_iter_next(a, ia), ib = json_object_iter_next(b, ib))
			if (strcmp(json_object_iter_key(ia), json_object_iter_key(ib)) != 0 ||
			    !same_order(json_object_iter_value(ia), json_object_iter_value(ib)))
				return 0;
		return !ia && !ib;
	}
	if (json_is_array(a)) {
		for (size_t i = 0; i < json_array_size(a); i++)
			if (!same_order(json_array_get(a, i), json_array_get(b, i)))
				return 0;
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size ? size : 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	static const size_t flag_sets[] = {0, JSON_ALLOW_NUL};
	for (size_t i = 0; i < sizeof(flag_sets) / sizeof(*flag_sets); i++) {
		size_t flags = flag_sets[i];
		json_t *fast = json_fast_only(s, size, flags);
		json_t *ref = json_loadb(s, size, flags, NULL);
		if (fast) {
			check(ref != NULL);
			check(json_equal(fast, ref));
			check(same_order(fast, ref));
		}
		json_t *both = json_fast_loadb(s, size, flags);
		check((both != NULL) == (ref != NULL));
		if (both)
			check(json_equal(both, ref));
		json_decref(both);
		json_decref(ref);
		json_decref(fast);
	}
	free(s);
	return 0;
}
