/* Prometheus counters and gauges, rendered as text exposition format.
 *
 * A registry holds a fixed set of series registered at start-up; each series
 * is one atomic 64-bit cell, so hot paths update it with one atomic add and
 * no lock. Registration after threads start is allowed (it takes a lock). */
#ifndef COMMON_METRICS_H
#define COMMON_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct metrics metrics;
typedef _Atomic uint64_t metric_cell;

metrics *metrics_new(void);                 /* caller frees with metrics_free */
void metrics_free(metrics *m);

/* Returns the cell of series name{labels}; the same cell for the same pair.
 * labels is the Prometheus label text without braces ("code=\"200\"") or "".
 * kind is "counter" or "gauge". The cell lives as long as the registry. */
metric_cell *metrics_series(metrics *m, const char *name, const char *labels,
                            const char *kind, const char *help);

static inline void metric_add(metric_cell *c, uint64_t n) { atomic_fetch_add_explicit(c, n, memory_order_relaxed); }
static inline void metric_set(metric_cell *c, uint64_t v) { atomic_store_explicit(c, v, memory_order_relaxed); }

/* Text exposition; returns a malloc'd string the caller frees. */
char *metrics_render(metrics *m, size_t *len);

#endif
