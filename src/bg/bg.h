/* bg.h - background work of a serving node: periodic tasks on one thread (redis bio idea).
 * Tasks take their work from the database, so any node of a cluster may run them. */
#ifndef BERTH_BG_H
#define BERTH_BG_H

#include "../base/err.h"
#include "../core/core.h"

struct bg;

struct bg_opts {
	int64_t lifecycle_interval_ms; /* apply lifecycle policies this often; 0 = never */
	int64_t gc_interval_ms;        /* collect garbage this often; 0 = never */
	int64_t gc_grace_ms;           /* gc grace period (recent uploads, upload idle limit) */
};

/* Starts the background thread over core (borrowed; must outlive bg). The first lifecycle and
 * gc passes run one interval after start. */
enum berr_code bg_start(struct core *core, const struct bg_opts *o, struct bg **out,
                        struct berr *err);
/* Stops the thread (finishing the task in progress) and frees bg. NULL-safe. */
void bg_stop(struct bg *b);

#endif
