/* Counters per wall-clock minute, summed over every instance in Redis.
 *
 * Each process counts in memory (mstats_add: a short mutex-guarded table,
 * fit for request paths) and a background thread adds what it counted to
 * one Redis hash per minute, <prefix>:<epoch minute>, every flush_ms, in a
 * single pipeline (HINCRBY per field, then EXPIRE keep_min minutes). What
 * Redis does not take stays counted for the next flush; nothing is lost
 * while a process lives. mstats_read gives the last N minutes of every
 * field, as the status pages chart them.
 *
 * Fields are short free-form names (at most MSTATS_FIELD_MAX-1 bytes;
 * longer ones are cut); at most MSTATS_SLOTS (minute, field) pairs wait
 * between two flushes, beyond that adds are dropped and counted (the
 * "dropped" of mstats_read: this process's, since it started). */
#ifndef COMMON_MINUTE_STATS_H
#define COMMON_MINUTE_STATS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define MSTATS_FIELD_MAX 64
#define MSTATS_SLOTS 1024

typedef struct minute_stats minute_stats;

/* Opens its own Redis connection (redis_url) and flush thread. NULL on
 * failure to allocate or start the thread; Redis may be down. */
minute_stats *mstats_new(const char *redis_url, const char *prefix, int keep_min, long long flush_ms);
/* Flushes what is pending (once more), then stops. NULL: nothing. */
void mstats_free(minute_stats *m);

void mstats_add(minute_stats *m, const char *field, uint64_t n);
/* The same, with the field made of two parts: "<a>:<b>". */
void mstats_add2(minute_stats *m, const char *a, const char *b, uint64_t n);
/* {"step_s":60, "start": epoch seconds of the first minute, "minutes": N,
 *  "series": {field: [N counts, oldest first]}, "dropped": adds this
 *  process could not keep} for the N minutes (at most keep_min and
 * MSTATS_READ_MAX) up to and including the current one, or NULL if Redis
 * cannot be read. */
#define MSTATS_READ_MAX 60
json_t *mstats_read(minute_stats *m, int minutes); /* new reference */

/* Sums over the window of an mstats_read result: of one field, and of
 * every field starting with prefix. */
long long mstats_total(const json_t *read, const char *field);
long long mstats_prefix_total(const json_t *read, const char *prefix);
/* The window a request asks for: arg NULL or empty is 15 minutes; else
 * 1 to 60. false if arg is out of range or not a number. */
bool mstats_window_arg(const char *arg, int *minutes);

#endif
