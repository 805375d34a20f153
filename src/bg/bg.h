/* bg.h - background work of a serving node: periodic tasks on one thread (redis bio idea).
 * Tasks take their work from the database, so any node of a cluster may run them. */
#ifndef BERTH_BG_H
#define BERTH_BG_H

#include "../base/err.h"
#include "../core/core.h"

struct bg;

/* Starts the background thread over core (borrowed; must outlive bg). */
enum berr_code bg_start(struct core *core, struct bg **out, struct berr *err);
/* Stops the thread (finishing the task in progress) and frees bg. NULL-safe. */
void bg_stop(struct bg *b);

#endif
