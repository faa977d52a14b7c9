/* Ids that last while their key keeps being seen. See idle_ids.h. */
#include "common/idle_ids.h"

#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>

#include "common/hash.h"

#define SHARDS 16
#define PROBE 8

typedef struct {
    uint64_t key, id; /* key 0: empty */
    long long last_ms;
} slot;

struct idle_ids {
    long long idle_ms;
    size_t per_shard; /* a power of two */
    struct {
        pthread_mutex_t mu;
        slot *s;
    } sh[SHARDS];
};

idle_ids *idle_ids_new(size_t slots, long long idle_ms)
{
    idle_ids *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->idle_ms = idle_ms;
    t->per_shard = PROBE;
    while (t->per_shard * SHARDS < slots)
        t->per_shard *= 2;
    for (int i = 0; i < SHARDS; i++) {
        pthread_mutex_init(&t->sh[i].mu, NULL);
        t->sh[i].s = calloc(t->per_shard, sizeof(slot));
        if (!t->sh[i].s) {
            idle_ids_free(t);
            return NULL;
        }
    }
    return t;
}

void idle_ids_free(idle_ids *t)
{
    if (!t)
        return;
    for (int i = 0; i < SHARDS; i++) {
        free(t->sh[i].s);
        pthread_mutex_destroy(&t->sh[i].mu);
    }
    free(t);
}

static uint64_t fresh_id(void)
{
    uint64_t id = 0;
    while (!id)
        if (RAND_bytes((unsigned char *)&id, sizeof id) != 1)
            id = (uint64_t)rand() << 32 | (uint64_t)rand();
    return id;
}

uint64_t idle_id(idle_ids *t, const void *key, size_t n, long long now_ms)
{
    uint64_t k = hash_fnv1a64(key, n);
    k = k ? k : 1;
    /* FNV's low bits are weak for short keys: mix before indexing */
    uint64_t m = k * 0x9e3779b97f4a7c15ull;
    unsigned shard = (unsigned)(m >> 60);
    size_t mask = t->per_shard - 1, base = (size_t)(m >> 20) & mask;
    pthread_mutex_lock(&t->sh[shard].mu);
    slot *s = t->sh[shard].s, *victim = NULL;
    uint64_t id = 0;
    for (size_t i = 0; i < PROBE; i++) {
        slot *e = &s[(base + i) & mask];
        if (e->key == k) {
            if (now_ms - e->last_ms > t->idle_ms)
                e->id = fresh_id(); /* came back after the session ended: a new one */
            e->last_ms = now_ms;
            id = e->id;
            break;
        }
        if (!victim || (victim->key && (!e->key || e->last_ms < victim->last_ms)))
            victim = e;
    }
    if (!id) {
        victim->key = k;
        victim->id = id = fresh_id();
        victim->last_ms = now_ms;
    }
    pthread_mutex_unlock(&t->sh[shard].mu);
    return id;
}
