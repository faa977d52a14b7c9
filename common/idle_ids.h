/* Ids that last while their key keeps being seen.
 *
 * idle_id(t, key, now) answers the same 64-bit id for a key as long as the
 * key comes back within idle_ms of its last sighting; after a longer gap,
 * or the first time, a new random id. A fixed-size table (set at creation,
 * no growth): when a key's neighbourhood is full, the entry seen longest
 * ago makes room, so a table too small shortens sessions rather than
 * failing. Keys are remembered by a 64-bit hash. Thread-safe (sharded
 * locks). */
#ifndef COMMON_IDLE_IDS_H
#define COMMON_IDLE_IDS_H

#include <stddef.h>
#include <stdint.h>

typedef struct idle_ids idle_ids;

idle_ids *idle_ids_new(size_t slots, long long idle_ms); /* new: idle_ids_free */
void idle_ids_free(idle_ids *t);
uint64_t idle_id(idle_ids *t, const void *key, size_t n, long long now_ms);

#endif
