/* lifecycle.h - the lifecycle evaluator: one pure function from (policy, images, now) to the
 * images each rule acts on (spec §4.5.3). StartLifecyclePolicyPreview, the background applier
 * and `berth lifecycle` all call it, so a preview shows exactly what the applier will do. */
#ifndef BERTH_LIFECYCLE_H
#define BERTH_LIFECYCLE_H

#include "policy.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One image as the evaluator sees it. All pointers are borrowed for the call. */
struct lc_image {
	int64_t id; /* push order: larger = pushed later (tie-break) */
	const char *digest;
	const char *const *tags; /* tags[0..ntags) */
	size_t ntags;
	int64_t pushed_at;    /* ms */
	int64_t pulled_at;    /* ms, 0 = never pulled */
	int64_t archived_at;  /* ms, 0 = never archived */
	int64_t activated_at; /* ms, 0 = never restored from archive */
	bool archived;        /* storage class archive (else standard) */
	bool protected_child; /* referenced by a manifest list/index in the repository */
};

/* The evaluator's verdict for image i: rule < 0 = untouched; else the index into
 * policy->rules (sorted by priority) of the rule that acts on it and that rule's action. */
struct lc_decision {
	int rule;
	enum lc_action action;
};

/* Evaluates policy over imgs[0..n) at now_ms, writing out[0..n). Pure and deterministic:
 * same inputs, same outputs; no allocation failures (aborts on OOM). */
void lc_evaluate(const struct lc_policy *policy, const struct lc_image *imgs, size_t n,
                 int64_t now_ms, struct lc_decision *out);

/* The whole-tag wildcard match of tagPatternList ('*' = any run, including empty). */
bool lc_pattern_match(const char *pattern, const char *tag);

#endif
