/* The cache's private parts, shared by its files (and nothing else):
 *   cache.c          objects and their table, the Redis index, eviction, start and restore
 *   cache_purge.c    purge and invalidation by trigger, tombstones
 *   cache_fill.c     fills in flight and the requests waiting on them
 *   cache_acquire.c  acquisition from the sources, on the worker threads
 * Locks, in the order they nest: fills_mu, then a fill's mu; a shard's mu
 * and evict_mu are never held with either. */
#ifndef DCDN_CACHE_INT_H
#define DCDN_CACHE_INT_H

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"
#include "dcdn/cache.h"

#define SHARDS 16
#define HEAD_MAGIC "CDNIGW-OBJ1 "
#define MAX_HEAD_LINE 16384
#define MAX_WAITERS_INIT 8

struct cache_obj {
    _Atomic int refs;
    cache_obj *next; /* shard chain */
    uint64_t hash;
    char *key;
    int status;
    char *content_type, *headers, *etag, *last_modified, *ccid, *pid;
    char *up; /* the upstream CDN the object is held for; NULL: its head (an older one) names none */
    uint64_t size, body_offset;
    long long stored_at, ttl, initial_age, stale_if_error;
    bool always_revalidate, must_revalidate;
    char path[300];
    cache_blob *mem;
    _Atomic uint32_t hits;
    _Atomic uint64_t hit_l; /* L at the last hit, as double bits */
    bool removed;
};

typedef struct {
    pthread_mutex_t mu;
    cache_obj **b;
    size_t nb, n;
} shard;

typedef struct waiter {
    bool is_stream;
    void *p; /* http_req * or http_stream * */
} waiter;

struct cache_fill {
    _Atomic int refs;
    cache *c;
    cache_fill *next;  /* fills in flight, by key */
    cache_fill *qnext; /* the acquisition queue */
    pthread_mutex_t mu;
    pthread_cond_t done_cv;
    fill_state state;
    bool in_table, private_;
    char *key, *path_query, *range, *ccid, *pid, *up;
    cache_source src[CACHE_MAX_SOURCES];
    size_t n_src;
    cache_obj *reval;
    /* the answer */
    int status;
    char *content_type, *headers, *etag, *last_modified, *error;
    char *cc, *expires, *date, *age, *pragma;
    bool vary;
    uint64_t length, avail;
    bool store, done, body_error;
    hc_verdict verdict;
    long long req_time, resp_time;
    json_t *head; /* what the file's head line says of the object */
    int fd; /* temporary file, or -1 with the body in mem */
    uint64_t off; /* where the body starts in the file */
    char tmp[300];
    char *mem;
    size_t mem_cap;
    waiter *w;
    size_t nw, cw;
    /* worker-only parsing state */
    bool head_seen, retry;
    int cur_status;
};

struct cache {
    cache_conf conf;
    shard shards[SHARDS];
    pthread_mutex_t fills_mu;
    cache_fill **fills; /* open hash by key */
    size_t nfills_b;
    pthread_mutex_t q_mu;
    pthread_cond_t q_cv;
    cache_fill *q_head, *q_tail;
    bool stop;
    pthread_t *th;
    unsigned nth;
    _Atomic uint64_t bytes, objects, mem_bytes, mem_objects, map_bytes, map_objects, inflight, gen;
    _Atomic uint64_t l_bits;
    pthread_mutex_t evict_mu;
    metric_cell *m_acq_ok, *m_acq_fail, *m_failover, *m_stored, *m_bypass, *m_evicted, *m_reval304;
};

static inline double bits_d(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}
static inline uint64_t d_bits(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return b;
}
static inline uint64_t key_hash(const char *k, size_t n) { return hash_fnv1a64(k, n); }
static inline char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }
static inline bool over(uint64_t v, uint64_t max, double mark) { return max && (double)v > (double)max * mark; }

/* cache.c */
void cache_blob_account(cache *c, const cache_blob *b, int sign); /* a blob in (1) or out (-1) of its tier's budget */
void cache_obj_free(cache_obj *o);
/* SADD or SREM of key in the kind ("ccid", "pid") index set of value; *ok cleared on failure */
void cache_index_cmd(cache *c, const char *op, const char *kind, const char *value, const char *key, bool *ok);
void cache_obj_retire(cache *c, cache_obj *o);
bool cache_table_take(cache *c, cache_obj *o);
void cache_evict(cache *c);
void cache_mkdirs(const char *dir, const char *sub);
void cache_commit(cache *c, cache_fill *f); /* a complete, storable fill becomes an object */

/* cache_purge.c: at start, the tombstones applied to the objects restored */
void cache_apply_tombstones(cache *c);

/* cache_fill.c */
void cache_fills_remove(cache *c, cache_fill *f); /* out of the table of fills in flight */
void cache_fill_wake_all(cache_fill *f);          /* with f->mu held: every waiter resumed */

/* cache_acquire.c: a worker thread's body (arg: the cache) */
void *cache_worker(void *arg); /* returns NULL */

#endif
