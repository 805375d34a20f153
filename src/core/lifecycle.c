/* lifecycle.c - the pure lifecycle evaluator of spec §4.5.3: (policy, images, now) -> for every
 * image the rule (if any) that acts on it and that rule's action. No I/O, no globals, no clock:
 * the caller passes `now`, so a preview and the applier see exactly the same decisions.
 *
 * Algorithm, per rule in priority order (rules are visited by ascending priority even if a
 * hand-built policy is unsorted; policy.c already sorts them):
 *   1. M := images the rule's selection matches (storage class, tagStatus, tag lists);
 *   2. marks(r, M) - computed over all of M, claimed and protected images included, because
 *      "lower rules still count such images when deciding what to keep";
 *   3. a marked image is decided for r unless it is claimed (selected by a higher-priority rule)
 *      or a protected child (referenced by an index in the repository);
 *   4. claimed |= M.
 * Cost: selection O(n * tags * list) with a linear-ish glob, imageCountMoreThan one sort of M;
 * O(rules * n log n) overall, two scratch arrays of n entries reused across rules (the claimed
 * set and the matched set).
 *
 * Time references (§4.5.3):
 *   ageRef  = activated_at if the image was ever restored (non-zero), else pushed_at;
 *   pullRef = pulled_at if pulled after the later of its last push and last restore, else
 *             activated_at if restored, else pushed_at (never pulled -> push/restore time);
 *   archRef = archived_at.
 * "Older than N days" is strict: now - ref > N * 86400000 ms (exactly N days is kept). The
 * comparison is exact for all int64 times (done in uint64), so a huge countNumber (policy.c
 * accepts up to LLONG_MAX) simply marks nothing instead of overflowing.
 *
 * Decisions beyond §4.5.3:
 *   - sinceImageTransitioned never expires an image archived for 90 days or less, whatever
 *     countNumber says (§4.12: "minimum 90 days in archive before lifecycle deletion"; policy.c
 *     leaves that minimum to the evaluator). Same strictness as above.
 *   - an archived image with archived_at == 0 (transition time unknown) is never marked by
 *     sinceImageTransitioned: deleting on a missing timestamp would be irreversible.
 *
 * Invariants of the output: out[i].rule is -1 or an index into policy->rules; each image gets at
 * most one rule; a protected_child image always has rule -1; out[i].action is the rule's action
 * (LC_EXPIRE, meaningless, when rule is -1). */
#include "../base/feat.h"

#include "lifecycle.h"

#include "../base/mem.h"
#include "../base/util.h"

#include <stdlib.h>
#include <string.h>

#define LC_DAY_MS INT64_C(86400000)
#define LC_ARCHIVE_MIN_DAYS 90

/* One member of a rule's matched set, as imageCountMoreThan sorts it. */
struct lc_slot {
	int64_t age_ref;
	int64_t id;
	size_t idx; /* index into imgs; last tie-break, so the order is total and deterministic */
};

bool lc_pattern_match(const char *pattern, const char *tag)
{
	return str_glob_match(pattern, tag);
}

static int64_t age_ref(const struct lc_image *im)
{
	return im->activated_at != 0 ? im->activated_at : im->pushed_at;
}

static int64_t pull_ref(const struct lc_image *im)
{
	int64_t last = im->pushed_at > im->activated_at ? im->pushed_at : im->activated_at;

	if (im->pulled_at != 0 && im->pulled_at > last)
		return im->pulled_at;
	return age_ref(im);
}

/* now - ref > days * LC_DAY_MS, exactly, for any int64 operands: when now > ref the difference
 * fits in uint64 (< 2^64); a day count whose product exceeds uint64 can never be exceeded. */
static bool older_than(int64_t now, int64_t ref, long long days)
{
	uint64_t diff;

	if (now <= ref)
		return false;
	diff = (uint64_t)now - (uint64_t)ref;
	if (days <= 0)
		return true; /* policy.c enforces >= 1; be total anyway */
	if ((unsigned long long)days > UINT64_MAX / (uint64_t)LC_DAY_MS)
		return false;
	return diff > (uint64_t)days * (uint64_t)LC_DAY_MS;
}

static bool has_tag_with_prefix(const struct lc_image *im, const char *prefix)
{
	size_t plen = strlen(prefix);

	for (size_t t = 0; t < im->ntags; t++)
		if (im->tags[t] && strncmp(im->tags[t], prefix, plen) == 0)
			return true;
	return false;
}

static bool has_tag_matching(const struct lc_image *im, const char *pattern)
{
	for (size_t t = 0; t < im->ntags; t++)
		if (im->tags[t] && lc_pattern_match(pattern, im->tags[t]))
			return true;
	return false;
}

/* sel(r, i) of §4.5.3. */
static bool lc_selects(const struct lc_rule *r, const struct lc_image *im)
{
	enum lc_storage_class cls = im->archived ? LC_ARCHIVE : LC_STANDARD;

	if (cls != r->storage_class)
		return false;
	switch (r->tag_status) {
	case LC_UNTAGGED:
		if (im->ntags != 0)
			return false;
		break;
	case LC_TAGGED:
		if (im->ntags == 0)
			return false;
		break;
	case LC_ANY:
		break;
	}
	/* Every prefix is a prefix of some tag; every pattern matches some tag (a list with an
	 * entry and an untagged image therefore never match). */
	for (size_t k = 0; k < r->nprefixes; k++)
		if (!has_tag_with_prefix(im, r->tag_prefixes[k]))
			return false;
	for (size_t k = 0; k < r->npatterns; k++)
		if (!has_tag_matching(im, r->tag_patterns[k]))
			return false;
	return true;
}

/* Newest first: larger ageRef, then later push (larger id), then larger index. */
static int cmp_slot_newest_first(const void *pa, const void *pb)
{
	const struct lc_slot *a = pa, *b = pb;

	if (a->age_ref != b->age_ref)
		return a->age_ref > b->age_ref ? -1 : 1;
	if (a->id != b->id)
		return a->id > b->id ? -1 : 1;
	if (a->idx != b->idx)
		return a->idx > b->idx ? -1 : 1;
	return 0;
}

/* marks(r, M) for the since* count types. */
static bool lc_since_marks(const struct lc_rule *r, const struct lc_image *im, int64_t now)
{
	long long days = r->count_number;

	switch (r->count_type) {
	case LC_SINCE_IMAGE_PUSHED:
		return older_than(now, age_ref(im), days);
	case LC_SINCE_IMAGE_PULLED:
		return older_than(now, pull_ref(im), days);
	case LC_SINCE_IMAGE_TRANSITIONED:
		if (im->archived_at == 0)
			return false;
		if (days < LC_ARCHIVE_MIN_DAYS)
			days = LC_ARCHIVE_MIN_DAYS;
		return older_than(now, im->archived_at, days);
	case LC_IMAGE_COUNT_MORE_THAN:
		break;
	}
	return false;
}

/* Decides image i for rule ri unless it is claimed or protected. */
static void lc_decide(const struct lc_policy *policy, size_t ri, const struct lc_image *imgs,
                      size_t i, const bool *claimed, struct lc_decision *out)
{
	if (claimed[i] || imgs[i].protected_child)
		return;
	out[i].rule = (int)ri;
	out[i].action = policy->rules[ri].action;
}

/* Rule indices in ascending priority (stable: equal priorities keep document order). */
static void lc_rule_order(const struct lc_policy *policy, size_t *order)
{
	for (size_t k = 0; k < policy->nrules; k++) {
		size_t j = k;

		while (j > 0 && policy->rules[order[j - 1]].priority > policy->rules[k].priority) {
			order[j] = order[j - 1];
			j--;
		}
		order[j] = k;
	}
}

void lc_evaluate(const struct lc_policy *policy, const struct lc_image *imgs, size_t n,
                 int64_t now_ms, struct lc_decision *out)
{
	bool *claimed;
	struct lc_slot *slots;
	size_t *order;

	for (size_t i = 0; i < n; i++) {
		out[i].rule = -1;
		out[i].action = LC_EXPIRE;
	}
	if (n == 0 || !policy || policy->nrules == 0)
		return;

	claimed = xcalloc(n, sizeof(*claimed));
	slots = xmalloc(n * sizeof(*slots));
	order = xmalloc(policy->nrules * sizeof(*order));
	lc_rule_order(policy, order);

	for (size_t k = 0; k < policy->nrules; k++) {
		size_t ri = order[k];
		const struct lc_rule *r = &policy->rules[ri];
		size_t m = 0;

		for (size_t i = 0; i < n; i++) {
			if (!lc_selects(r, &imgs[i]))
				continue;
			slots[m].age_ref = age_ref(&imgs[i]);
			slots[m].id = imgs[i].id;
			slots[m].idx = i;
			m++;
		}

		if (r->count_type == LC_IMAGE_COUNT_MORE_THAN) {
			/* Keep the newest N; any N >= m (up to LLONG_MAX) keeps everything. */
			size_t keep = m;

			if (r->count_number < 0)
				keep = 0;
			else if ((unsigned long long)r->count_number < m)
				keep = (size_t)r->count_number;
			if (keep < m) {
				qsort(slots, m, sizeof(*slots), cmp_slot_newest_first);
				for (size_t s = keep; s < m; s++)
					lc_decide(policy, ri, imgs, slots[s].idx, claimed, out);
			}
		} else {
			for (size_t s = 0; s < m; s++)
				if (lc_since_marks(r, &imgs[slots[s].idx], now_ms))
					lc_decide(policy, ri, imgs, slots[s].idx, claimed, out);
		}

		/* Claim M only now: this rule's marks were checked against higher rules only. */
		for (size_t s = 0; s < m; s++)
			claimed[slots[s].idx] = true;
	}

	free(order);
	free(slots);
	free(claimed);
}
