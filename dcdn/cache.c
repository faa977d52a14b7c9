/* The surrogate's cache and its acquisition. See cache.h. */
#include "dcdn/cache.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/hash.h"
#include "common/log.h"

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
    char *key, *path_query, *range, *ccid, *pid;
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

static double bits_d(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}
static uint64_t d_bits(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return b;
}

void cache_blob_unref(void *p)
{
    cache_blob *b = p;
    if (b && atomic_fetch_sub(&b->refs, 1) == 1) {
        if (b->map)
            munmap(b->map, b->map_len);
        free(b);
    }
}

/* Counts a blob in (sign 1) or out (-1) of its tier's budget. */
static void blob_account(cache *c, const cache_blob *b, int sign)
{
    _Atomic uint64_t *bytes = b->map ? &c->map_bytes : &c->mem_bytes, *n = b->map ? &c->map_objects : &c->mem_objects;
    if (sign > 0) {
        atomic_fetch_add(bytes, b->len);
        atomic_fetch_add(n, 1);
    } else {
        atomic_fetch_sub(bytes, b->len);
        atomic_fetch_sub(n, 1);
    }
}

static void obj_free(cache_obj *o)
{
    free(o->key);
    free(o->content_type);
    free(o->headers);
    free(o->etag);
    free(o->last_modified);
    free(o->ccid);
    free(o->pid);
    cache_blob_unref(o->mem);
    free(o);
}

void cache_obj_unref(cache_obj *o)
{
    if (o && atomic_fetch_sub(&o->refs, 1) == 1)
        obj_free(o);
}

static uint64_t key_hash(const char *k, size_t n) { return hash_fnv1a64(k, n); }

/* --- index ---------------------------------------------------------------------- */

static void index_cmd(cache *c, const char *op, const char *kind, const char *value, const char *key, bool *ok)
{
    if (!value || !c->conf.store)
        return;
    store_reply *r = store_cmd(c->conf.store, "%s %s:%s:%s %s", op, c->conf.index_prefix, kind, value, key);
    if (!r || store_reply_is(r, STORE_ERR))
        *ok = false;
    store_reply_free(r);
}

/* Unlinks the file and drops the index entries of an object no longer in
 * the table (counters already adjusted). */
static void obj_retire(cache *c, cache_obj *o)
{
    unlink(o->path);
    bool ok = true;
    index_cmd(c, "SREM", "ccid", o->ccid, o->key, &ok);
    index_cmd(c, "SREM", "pid", o->pid, o->key, &ok);
}

static void shard_account_remove(cache *c, cache_obj *o)
{
    atomic_fetch_sub(&c->bytes, o->size);
    atomic_fetch_sub(&c->objects, 1);
    if (o->mem)
        blob_account(c, o->mem, -1);
}

/* Puts o in the table (taking the caller's reference), replacing an
 * object of the same key, which is returned (or NULL). */
static cache_obj *table_put(cache *c, cache_obj *o)
{
    shard *s = &c->shards[o->hash % SHARDS];
    pthread_mutex_lock(&s->mu);
    if (s->n + 1 > s->nb) {
        size_t nb = s->nb ? s->nb * 2 : 256;
        cache_obj **b = calloc(nb, sizeof *b);
        for (size_t i = 0; b && i < s->nb; i++)
            for (cache_obj *x = s->b[i], *nx; x; x = nx) {
                nx = x->next;
                x->next = b[(x->hash / SHARDS) % nb];
                b[(x->hash / SHARDS) % nb] = x;
            }
        if (b) {
            free(s->b);
            s->b = b;
            s->nb = nb;
        }
    }
    cache_obj **pp = &s->b[(o->hash / SHARDS) % s->nb], *old = NULL;
    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->hash == o->hash && strcmp((*pp)->key, o->key) == 0) {
            old = *pp;
            *pp = old->next;
            old->removed = true;
            s->n--;
            shard_account_remove(c, old);
            break;
        }
    o->next = s->b[(o->hash / SHARDS) % s->nb];
    s->b[(o->hash / SHARDS) % s->nb] = o;
    s->n++;
    atomic_fetch_add(&c->bytes, o->size);
    atomic_fetch_add(&c->objects, 1);
    if (o->mem)
        blob_account(c, o->mem, 1);
    pthread_mutex_unlock(&s->mu);
    return old;
}

/* Takes o out of the table if it is still there; true if it was. */
static bool table_take(cache *c, cache_obj *o)
{
    shard *s = &c->shards[o->hash % SHARDS];
    bool found = false;
    pthread_mutex_lock(&s->mu);
    if (s->nb)
        for (cache_obj **pp = &s->b[(o->hash / SHARDS) % s->nb]; *pp; pp = &(*pp)->next)
            if (*pp == o) {
                *pp = o->next;
                o->removed = true;
                s->n--;
                shard_account_remove(c, o);
                found = true;
                break;
            }
    pthread_mutex_unlock(&s->mu);
    return found;
}

cache_obj *cache_lookup(cache *c, const char *key, size_t klen, long long now, cache_view *v)
{
    uint64_t h = key_hash(key, klen);
    shard *s = &c->shards[h % SHARDS];
    cache_obj *o = NULL;
    pthread_mutex_lock(&s->mu);
    if (s->nb)
        for (cache_obj *x = s->b[(h / SHARDS) % s->nb]; x; x = x->next)
            if (x->hash == h && strlen(x->key) == klen && memcmp(x->key, key, klen) == 0) {
                o = x;
                break;
            }
    if (o) { /* a 304 updates freshness under this lock */
        atomic_fetch_add(&o->refs, 1);
        v->mem = o->mem;
        if (v->mem)
            atomic_fetch_add(&v->mem->refs, 1);
        long long age = o->initial_age + (now - o->stored_at);
        if (age < 0)
            age = 0;
        long long grace = o->stale_if_error >= 0 ? o->stale_if_error : c->conf.stale_if_error_s;
        v->age = age;
        v->fresh = age < o->ttl && !o->always_revalidate;
        v->stale_usable = !o->must_revalidate && age < o->ttl + grace;
    }
    pthread_mutex_unlock(&s->mu);
    if (!o)
        return NULL;
    atomic_fetch_add_explicit(&o->hits, 1, memory_order_relaxed);
    atomic_store_explicit(&o->hit_l, atomic_load_explicit(&c->l_bits, memory_order_relaxed), memory_order_relaxed);
    v->status = o->status;
    v->content_type = o->content_type;
    v->headers = o->headers;
    v->etag = o->etag;
    v->last_modified = o->last_modified;
    v->size = o->size;
    v->path = o->path;
    v->body_offset = o->body_offset;
    return o;
}

static void evict(cache *c);
static bool over(uint64_t v, uint64_t max, double mark) { return max && (double)v > (double)max * mark; }

cache_blob *cache_map(cache *c, cache_obj *o, const cache_view *v)
{
    if (!c->conf.mapped_bytes || !c->conf.mapped_objects || v->size == 0 ||
        c->map_objects >= c->conf.mapped_objects * 2)
        return NULL; /* far over budget: eviction has not caught up yet */
    int fd = open(v->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), start = v->body_offset / page * page;
    size_t mlen = (size_t)(v->body_offset - start + v->size);
    void *base = mmap(NULL, mlen, PROT_READ, MAP_SHARED, fd, (off_t)start);
    close(fd);
    if (base == MAP_FAILED)
        return NULL;
    cache_blob *b = malloc(sizeof *b);
    if (!b) {
        munmap(base, mlen);
        return NULL;
    }
    b->refs = 2; /* the object's and the caller's */
    b->len = v->size;
    b->data = (const char *)base + (v->body_offset - start);
    b->map = base;
    b->map_len = mlen;
    shard *s = &c->shards[o->hash % SHARDS];
    pthread_mutex_lock(&s->mu);
    if (o->removed || o->mem) { /* gone, or another request mapped it first */
        cache_blob *have = o->removed ? NULL : o->mem;
        if (have)
            atomic_fetch_add(&have->refs, 1);
        pthread_mutex_unlock(&s->mu);
        b->refs = 1;
        cache_blob_unref(b);
        return have;
    }
    o->mem = b;
    blob_account(c, b, 1);
    pthread_mutex_unlock(&s->mu);
    if (over(c->map_bytes, c->conf.mapped_bytes, 1.0) || over(c->map_objects, c->conf.mapped_objects, 1.0))
        evict(c);
    return b;
}

bool cache_remove(cache *c, const char *key, size_t klen)
{
    cache_view v;
    cache_obj *o = cache_lookup(c, key, klen, 0, &v);
    if (!o)
        return false;
    cache_blob_unref(v.mem);
    bool was = table_take(c, o);
    if (was) {
        obj_retire(c, o);
        cache_obj_unref(o); /* the table's reference */
    }
    cache_obj_unref(o);
    return was;
}

long long cache_remove_indexed(cache *c, const char *index, const char *value)
{
    if (!cache_reindex(c, false)) /* an index Redis lost would miss objects */
        return -1;
    store_reply *r = store_cmd(c->conf.store, "SMEMBERS %s:%s:%s", c->conf.index_prefix, index, value);
    if (!r || !store_reply_is(r, STORE_ARRAY)) {
        store_reply_free(r);
        return -1;
    }
    long long n = 0;
    for (size_t i = 0; i < store_reply_count(r); i++) {
        size_t len;
        const char *key = store_reply_is(store_reply_at(r, i), STORE_STR) ? store_reply_at_str(r, i, &len) : NULL;
        if (key)
            n += cache_remove(c, key, len);
    }
    store_reply_free(r);
    store_reply *d = store_cmd(c->conf.store, "DEL %s:%s:%s", c->conf.index_prefix, index, value);
    store_reply_free(d);
    return n;
}

/* --- purge and invalidation by trigger (RFC 8007) ----------------------------------- *
 *
 * Both are first written to <dir>/tombstones ("<time>\t<P|I>\t<key>" lines,
 * fsync'd), then applied in memory. At start the file is applied again to
 * objects stored before it (a purged object whose file was not unlinked yet
 * goes; an invalidated one stays invalidated) and rewritten with only the
 * invalidations still needed. So a purge can answer once the objects are
 * out of the table: their files are unlinked in the background. */

static bool obj_invalidate(cache *c, cache_obj *o)
{
    shard *s = &c->shards[o->hash % SHARDS];
    pthread_mutex_lock(&s->mu);
    bool was = !o->removed;
    o->ttl = 0;                 /* never fresh: the next request revalidates */
    o->must_revalidate = true;  /* and no stale copy is served meanwhile */
    pthread_mutex_unlock(&s->mu);
    return was;
}

/* The objects of keys[0..n) in the table now, referenced (*np of them):
 * what a trigger acts on, and all that needs a tombstone. */
static cache_obj **held(cache *c, const char *const *keys, size_t n, size_t *np)
{
    cache_obj **out = calloc(n + 1, sizeof *out);
    *np = 0;
    for (size_t i = 0; out && i < n; i++) {
        cache_view v;
        cache_obj *o = cache_lookup(c, keys[i], strlen(keys[i]), 0, &v);
        if (o) {
            cache_blob_unref(v.mem);
            out[(*np)++] = o;
        }
    }
    return out;
}

static void release(cache_obj **objs, size_t n)
{
    for (size_t i = 0; objs && i < n; i++)
        cache_obj_unref(objs[i]);
    free(objs);
}

static bool tombstones(cache *c, char kind, cache_obj *const *objs, size_t n, long long now)
{
    if (!n)
        return true; /* nothing selected: nothing to remember */
    char p[400];
    snprintf(p, sizeof p, "%s/tombstones", c->conf.dir);
    int fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return false;
    char *w = malloc(64 * 1024);
    size_t wl = 0;
    char t[32];
    int tl = snprintf(t, sizeof t, "%lld\t%c\t", now, kind);
    bool ok = w != NULL;
    for (size_t i = 0; i < n && ok; i++) {
        const char *key = objs[i]->key;
        size_t kl = strlen(key);
        if (strchr(key, '\n') || kl > 16 * 1024)
            continue;
        if (wl + (size_t)tl + kl + 1 > 64 * 1024) {
            ok = write(fd, w, wl) == (ssize_t)wl;
            wl = 0;
        }
        memcpy(w + wl, t, (size_t)tl);
        memcpy(w + wl + tl, key, kl);
        w[wl + (size_t)tl + kl] = '\n';
        wl += (size_t)tl + kl + 1;
    }
    ok = ok && (!wl || write(fd, w, wl) == (ssize_t)wl) && fsync(fd) == 0;
    close(fd);
    free(w);
    return ok;
}

long long cache_invalidate(cache *c, const char *const *keys, size_t n_keys, long long now)
{
    size_t n;
    cache_obj **objs = held(c, keys, n_keys, &n);
    if (!objs || !tombstones(c, 'I', objs, n, now)) {
        release(objs, n);
        return -1;
    }
    long long hit = 0;
    for (size_t i = 0; i < n; i++)
        hit += obj_invalidate(c, objs[i]);
    release(objs, n);
    return hit;
}

static void *unlink_paths(void *arg)
{
    char **paths = arg;
    for (size_t i = 0; paths[i]; i++) {
        unlink(paths[i]);
        free(paths[i]);
    }
    free(paths);
    return NULL;
}

/* SREMs of index entries, sent as one pipeline; the sets are freed. */
static void index_srem(cache *c, int *argc, const char ***argv, char **sets, size_t n)
{
    store_reply *rep[512];
    size_t got = n ? store_pipeline(c->conf.store, n, argc, argv, NULL, rep) : 0;
    for (size_t k = 0; k < got; k++)
        store_reply_free(rep[k]);
    for (size_t k = 0; k < n; k++)
        free(sets[k]);
}

long long cache_purge(cache *c, const char *const *keys, size_t n_keys, long long now)
{
    size_t n;
    cache_obj **objs = held(c, keys, n_keys, &n);
    if (!objs || !tombstones(c, 'P', objs, n, now)) {
        release(objs, n);
        return -1;
    }
    char **paths = calloc(n + 1, sizeof *paths);
    size_t np = 0;
    /* index entries leave in pipelined batches; the objects stay referenced
     * (so their keys stay valid) until the last batch is sent */
    enum { BATCH = 512 };
    int argc[BATCH];
    const char **argv[BATCH], *av[BATCH][3];
    char *sets[BATCH];
    size_t nb = 0;
    long long removed = 0;
    for (size_t i = 0; i < n; i++) {
        cache_obj *o = objs[i];
        if (!table_take(c, o))
            continue;
        removed++;
        if (paths)
            paths[np++] = strdup(o->path);
        else
            unlink(o->path);
        const char *kinds[] = {"ccid", "pid"}, *vals[] = {o->ccid, o->pid};
        for (int k = 0; k < 2 && c->conf.store; k++) {
            if (!vals[k])
                continue;
            sets[nb] = malloc(strlen(c->conf.index_prefix) + strlen(vals[k]) + 8);
            sprintf(sets[nb], "%s:%s:%s", c->conf.index_prefix, kinds[k], vals[k]);
            av[nb][0] = "SREM";
            av[nb][1] = sets[nb];
            av[nb][2] = o->key;
            argv[nb] = av[nb];
            argc[nb] = 3;
            nb++;
        }
        cache_obj_unref(o); /* the table's reference; ours is in objs */
        if (nb + 2 > BATCH) {
            index_srem(c, argc, argv, sets, nb);
            nb = 0;
        }
    }
    index_srem(c, argc, argv, sets, nb);
    release(objs, n);
    if (paths && np) {
        pthread_t th;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&th, &at, unlink_paths, paths) != 0)
            unlink_paths(paths);
        pthread_attr_destroy(&at);
    } else
        free(paths);
    return removed;
}

/* At start: tombstones applied to the objects stored before them; the file
 * is rewritten with only the invalidations still needed. */
static void apply_tombstones(cache *c)
{
    char p[400], tmp[410];
    snprintf(p, sizeof p, "%s/tombstones", c->conf.dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    FILE *f = fopen(p, "re");
    if (!f)
        return;
    FILE *out = fopen(tmp, "we");
    char *line = malloc(MAX_HEAD_LINE);
    while (line && fgets(line, MAX_HEAD_LINE, f)) {
        char *t1 = strchr(line, '\t'), *nl = strchr(line, '\n');
        if (!t1 || !nl || nl < t1 + 3 || t1[2] != '\t')
            continue;
        *nl = 0;
        long long when = atoll(line);
        char kind = t1[1];
        const char *key = t1 + 3;
        cache_view v;
        cache_obj *o = cache_lookup(c, key, strlen(key), 0, &v);
        if (!o)
            continue;
        cache_blob_unref(v.mem);
        /* a purge takes what was stored before its second (one refilled in
         * that same second is kept: its file is the new one); an
         * invalidation also what was stored in its second (revalidated once
         * more at worst) */
        if (o->stored_at < when && kind == 'P') {
            if (table_take(c, o)) {
                obj_retire(c, o);
                cache_obj_unref(o);
            }
        } else if (o->stored_at <= when && kind == 'I') {
            obj_invalidate(c, o);
            if (out)
                fprintf(out, "%lld\tI\t%s\n", when, key);
        }
        cache_obj_unref(o);
    }
    free(line);
    fclose(f);
    if (out && fflush(out) == 0 && fsync(fileno(out)) == 0) {
        fclose(out);
        rename(tmp, p);
    } else if (out) {
        fclose(out);
        unlink(tmp);
    }
}

bool cache_reindex(cache *c, bool force)
{
    if (!c->conf.store)
        return true;
    char mark[sizeof c->conf.index_prefix + 16];
    snprintf(mark, sizeof mark, "%s:indexed", c->conf.index_prefix);
    if (!force) {
        store_reply *r = store_cmd(c->conf.store, "EXISTS %s", mark);
        bool have = r && store_reply_is(r, STORE_INT) && store_reply_int(r) == 1, down = !r;
        store_reply_free(r);
        if (have || down)
            return have;
        log_kv(LOG_WARN, "the cache index is gone from Redis (emptied or restored from an older copy); rebuilding it "
                         "from the objects on disk", NULL);
    }
    /* SADDs in batches, one shard's lock held only while its objects are read */
    store_batch b = {0};
    size_t objects = 0;
    bool ok = true;
    for (int i = 0; i < SHARDS && ok; i++) {
        shard *s = &c->shards[i];
        pthread_mutex_lock(&s->mu);
        for (size_t k = 0; k < s->nb; k++)
            for (cache_obj *o = s->b[k]; o; o = o->next) {
                const char *kinds[] = {"ccid", "pid"}, *vals[] = {o->ccid, o->pid};
                for (int j = 0; j < 2; j++)
                    if (vals[j]) {
                        char set[sizeof c->conf.index_prefix + 300];
                        if (snprintf(set, sizeof set, "%s:%s:%s", c->conf.index_prefix, kinds[j], vals[j]) <
                            (int)sizeof set)
                            store_batch_add(&b, 3, (const char *[]){"SADD", set, o->key});
                    }
                objects++;
            }
        pthread_mutex_unlock(&s->mu);
        if (b.n >= 1000 || i == SHARDS - 1)
            ok = store_batch_send(c->conf.store, &b);
    }
    char num[32];
    snprintf(num, sizeof num, "%zu", objects);
    if (ok) {
        store_batch_add(&b, 3, (const char *[]){"SET", mark, num});
        ok = store_batch_send(c->conf.store, &b);
    }
    store_batch_free(&b);
    if (ok && (objects || !force))
        log_kv(LOG_INFO, "cache index written to Redis", "objects", num, NULL);
    return ok;
}

size_t cache_keys(cache *c, char ***out)
{
    size_t n = 0, cap = 0;
    char **k = NULL;
    for (int i = 0; i < SHARDS; i++) {
        shard *s = &c->shards[i];
        pthread_mutex_lock(&s->mu);
        for (size_t b = 0; b < s->nb; b++)
            for (cache_obj *o = s->b[b]; o; o = o->next) {
                if (n == cap) {
                    cap = cap ? cap * 2 : 1024;
                    char **nk = realloc(k, cap * sizeof *k);
                    if (!nk)
                        goto done;
                    k = nk;
                }
                if (!(k[n] = strdup(o->key)))
                    goto done;
                n++;
            }
    done:
        pthread_mutex_unlock(&s->mu);
    }
    *out = k;
    return n;
}

long long cache_indexed_keys(cache *c, const char *index, const char *value, char ***out)
{
    *out = NULL;
    if (!cache_reindex(c, false))
        return -1;
    store_reply *r = store_cmd(c->conf.store, "SMEMBERS %s:%s:%s", c->conf.index_prefix, index, value);
    if (!r || !store_reply_is(r, STORE_ARRAY)) {
        store_reply_free(r);
        return -1;
    }
    char **k = calloc(store_reply_count(r) + 1, sizeof *k);
    size_t n = 0;
    for (size_t i = 0; k && i < store_reply_count(r); i++)
        if (store_reply_is(store_reply_at(r, i), STORE_STR))
            k[n++] = strdup(store_reply_at_str(r, i, NULL));
    store_reply_free(r);
    *out = k;
    return (long long)n;
}

/* --- eviction ------------------------------------------------------------------ */

typedef struct {
    cache_obj *o;
    double prio;
} ranked;

static int by_prio(const void *a, const void *b)
{
    double x = ((const ranked *)a)->prio, y = ((const ranked *)b)->prio;
    return x < y ? -1 : x > y;
}

static void evict(cache *c)
{
    const cache_conf *k = &c->conf;
    if (!over(c->bytes, k->disk_bytes, k->high_water) && !over(c->objects, k->disk_objects, k->high_water) &&
        !over(c->mem_bytes, k->memory_bytes, 1.0) && !over(c->map_bytes, k->mapped_bytes, 1.0) &&
        !over(c->map_objects, k->mapped_objects, 1.0))
        return;
    if (pthread_mutex_trylock(&c->evict_mu) != 0)
        return; /* another thread is at it */
    size_t n = 0, cap = (size_t)c->objects + 64;
    ranked *all = malloc(cap * sizeof *all);
    for (int i = 0; all && i < SHARDS; i++) {
        shard *s = &c->shards[i];
        pthread_mutex_lock(&s->mu);
        for (size_t j = 0; j < s->nb; j++)
            for (cache_obj *o = s->b[j]; o && n < cap; o = o->next) {
                atomic_fetch_add(&o->refs, 1);
                double kb = (double)o->size / 1024.0;
                all[n].o = o;
                all[n].prio = bits_d(o->hit_l) + (double)(o->hits + 1) / (kb < 1 ? 1 : kb);
                n++;
            }
        pthread_mutex_unlock(&s->mu);
    }
    if (all)
        qsort(all, n, sizeof *all, by_prio);
    size_t i = 0;
    for (; i < n && (over(c->bytes, k->disk_bytes, k->low_water) || over(c->objects, k->disk_objects, k->low_water)); i++) {
        if (table_take(c, all[i].o)) {
            atomic_store(&c->l_bits, d_bits(all[i].prio));
            obj_retire(c, all[i].o);
            metric_add(c->m_evicted, 1);
            cache_obj_unref(all[i].o); /* the table's */
        }
    }
    /* memory copies and mappings, within their own budgets, lowest priority first */
    for (i = 0; i < n; i++) {
        bool mem_over = over(c->mem_bytes, k->memory_bytes, k->low_water);
        bool map_over = over(c->map_bytes, k->mapped_bytes, k->low_water) ||
                        over(c->map_objects, k->mapped_objects, k->low_water);
        if (!mem_over && !map_over)
            break;
        cache_obj *o = all[i].o;
        shard *s = &c->shards[o->hash % SHARDS];
        pthread_mutex_lock(&s->mu);
        cache_blob *m = o->removed ? NULL : o->mem;
        if (m && ((m->map && map_over) || (!m->map && mem_over))) {
            o->mem = NULL;
            blob_account(c, m, -1);
        } else {
            m = NULL;
        }
        pthread_mutex_unlock(&s->mu);
        cache_blob_unref(m);
    }
    for (size_t j = 0; j < n; j++)
        cache_obj_unref(all[j].o);
    free(all);
    pthread_mutex_unlock(&c->evict_mu);
}

/* --- fills ----------------------------------------------------------------------- */

static void fill_free(cache_fill *f)
{
    if (f->fd >= 0)
        close(f->fd);
    if (f->tmp[0])
        unlink(f->tmp);
    free(f->key);
    free(f->path_query);
    free(f->range);
    free(f->ccid);
    free(f->pid);
    free(f->content_type);
    free(f->headers);
    free(f->etag);
    free(f->last_modified);
    free(f->error);
    free(f->cc);
    free(f->expires);
    free(f->date);
    free(f->age);
    free(f->pragma);
    free(f->mem);
    free(f->w);
    json_decref(f->head);
    cache_obj_unref(f->reval);
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->done_cv);
    free(f);
}

void cache_fill_unref(void *p)
{
    cache_fill *f = p;
    if (f && atomic_fetch_sub(&f->refs, 1) == 1)
        fill_free(f);
}

static size_t fills_slot(cache *c, const char *key)
{
    return (size_t)(key_hash(key, strlen(key)) % c->nfills_b);
}

static void fills_remove(cache *c, cache_fill *f)
{
    pthread_mutex_lock(&c->fills_mu);
    if (f->in_table) {
        for (cache_fill **pp = &c->fills[fills_slot(c, f->key)]; *pp; pp = &(*pp)->next)
            if (*pp == f) {
                *pp = f->next;
                break;
            }
        f->in_table = false;
        f->next = NULL;
    }
    pthread_mutex_unlock(&c->fills_mu);
}

/* Wakes every waiter; f->mu held. */
static void wake_all(cache_fill *f)
{
    for (size_t i = 0; i < f->nw; i++) {
        if (f->w[i].is_stream)
            http_stream_wake(f->w[i].p);
        else
            http_resume(f->w[i].p);
    }
    f->nw = 0;
}

static bool add_waiter(cache_fill *f, bool stream, void *p)
{
    if (f->nw == f->cw) {
        size_t cw = f->cw ? f->cw * 2 : MAX_WAITERS_INIT;
        waiter *w = realloc(f->w, cw * sizeof *w);
        if (!w)
            return false;
        f->w = w;
        f->cw = cw;
    }
    f->w[f->nw++] = (waiter){stream, p};
    return true;
}

fill_state cache_fill_head(cache_fill *f, http_req *r, void *park_state, fill_head *h)
{
    pthread_mutex_lock(&f->mu);
    fill_state st = f->state;
    if (st == FILL_PENDING) {
        if (add_waiter(f, false, r))
            http_park(r, park_state);
        else
            st = FILL_FAILED;
    }
    if (st != FILL_PENDING) {
        h->state = st;
        h->status = f->status;
        h->content_type = f->content_type;
        h->headers = f->headers ? f->headers : "";
        h->error = f->error;
        h->length = f->length;
        h->stored = f->store;
    }
    pthread_mutex_unlock(&f->mu);
    return st;
}

long long cache_fill_read(cache_fill *f, http_stream *s, uint64_t pos, char *out, size_t max)
{
    pthread_mutex_lock(&f->mu);
    /* the last byte waits for the end of the fill: a client that has the
     * whole object knows the next request finds it stored */
    uint64_t avail = f->avail;
    if (!f->done && f->length != HTTP_LEN_UNKNOWN && avail >= f->length && avail)
        avail = f->length - 1;
    if (pos < avail) {
        size_t n = avail - pos < max ? (size_t)(avail - pos) : max;
        long long got;
        if (f->fd >= 0) {
            ssize_t k = pread(f->fd, out, n, (off_t)(f->off + pos));
            got = k > 0 ? k : HTTP_STREAM_ERROR;
        } else {
            memcpy(out, f->mem + pos, n);
            got = (long long)n;
        }
        pthread_mutex_unlock(&f->mu);
        return got;
    }
    long long rc;
    if (f->done)
        rc = f->body_error ? HTTP_STREAM_ERROR : HTTP_STREAM_END;
    else if (add_waiter(f, true, s)) {
        http_stream_pause(s);
        rc = HTTP_STREAM_WAIT;
    } else
        rc = HTTP_STREAM_ERROR;
    pthread_mutex_unlock(&f->mu);
    return rc;
}

long long cache_fill_body(cache_fill *f, http_req *r, void *park_state, size_t max, char **out)
{
    *out = NULL;
    pthread_mutex_lock(&f->mu);
    long long rc = -1;
    if (!f->done) {
        if (f->avail <= max && add_waiter(f, false, r)) {
            http_park(r, park_state);
            rc = -2;
        }
    } else if (!f->body_error && f->avail <= max) {
        char *b = malloc(f->avail + 1);
        bool ok = b && (f->fd >= 0 ? pread(f->fd, b, f->avail, (off_t)f->off) == (ssize_t)f->avail
                                   : (memcpy(b, f->mem, f->avail), true));
        if (ok) {
            b[f->avail] = 0;
            *out = b;
            rc = (long long)f->avail;
        } else {
            free(b);
        }
    }
    pthread_mutex_unlock(&f->mu);
    return rc;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

cache_fill *cache_reacquire(cache *c, cache_fill *f)
{
    fills_remove(c, f); /* its answer is known: not one to collapse onto again */
    cache_request q = {.key = f->key, .path_query = f->path_query, .sources = f->src, .n_sources = f->n_src,
                       .ccid = f->ccid, .purge_id = f->pid, .range = f->range};
    return cache_acquire(c, &q);
}

cache_fill *cache_join(cache *c, const char *key)
{
    pthread_mutex_lock(&c->fills_mu);
    cache_fill *f = c->fills[fills_slot(c, key)];
    while (f && strcmp(f->key, key) != 0)
        f = f->next;
    if (f)
        atomic_fetch_add(&f->refs, 1);
    pthread_mutex_unlock(&c->fills_mu);
    return f;
}

cache_fill *cache_acquire(cache *c, const cache_request *q)
{
    bool private_ = q->range != NULL;
    size_t slot = fills_slot(c, q->key);
    pthread_mutex_lock(&c->fills_mu);
    if (!private_)
        for (cache_fill *f = c->fills[slot]; f; f = f->next)
            if (strcmp(f->key, q->key) == 0) {
                atomic_fetch_add(&f->refs, 1);
                pthread_mutex_unlock(&c->fills_mu);
                return f; /* collapsed onto the acquisition in flight */
            }
    cache_fill *f = calloc(1, sizeof *f);
    if (!f) {
        pthread_mutex_unlock(&c->fills_mu);
        return NULL;
    }
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->done_cv, NULL);
    f->c = c;
    f->refs = 2; /* the caller's and the worker's */
    f->fd = -1;
    f->key = strdup(q->key);
    f->path_query = strdup(q->path_query);
    f->range = dup_or_null(q->range);
    f->ccid = dup_or_null(q->ccid);
    f->pid = dup_or_null(q->purge_id);
    f->private_ = private_;
    f->n_src = q->n_sources < CACHE_MAX_SOURCES ? q->n_sources : CACHE_MAX_SOURCES;
    memcpy(f->src, q->sources, f->n_src * sizeof *f->src);
    if (q->revalidate) {
        f->reval = q->revalidate;
        atomic_fetch_add(&f->reval->refs, 1);
    }
    if (!private_) {
        f->in_table = true;
        f->next = c->fills[slot];
        c->fills[slot] = f;
    }
    pthread_mutex_unlock(&c->fills_mu);
    atomic_fetch_add(&c->inflight, 1);
    pthread_mutex_lock(&c->q_mu);
    if (c->q_tail)
        c->q_tail->qnext = f;
    else
        c->q_head = f;
    c->q_tail = f;
    pthread_cond_signal(&c->q_cv);
    pthread_mutex_unlock(&c->q_mu);
    return f;
}

long long cache_prefetch(cache *c, const cache_request *q)
{
    cache_view v;
    cache_obj *o = cache_lookup(c, q->key, strlen(q->key), wall_ms() / 1000, &v);
    if (o) {
        cache_blob_unref(v.mem);
        bool fresh = v.fresh, error = v.status >= 400;
        cache_obj_unref(o);
        if (fresh)
            return error ? -1 : 0; /* a stored 404 is no object there */
    }
    cache_fill *f = cache_acquire(c, q);
    if (!f)
        return -1;
    pthread_mutex_lock(&f->mu);
    while (!f->done)
        pthread_cond_wait(&f->done_cv, &f->mu);
    /* the source answering 4xx or 5xx is a failed acquisition, though the answer may be stored */
    long long n = f->state == FILL_FAILED || f->body_error || f->status >= 400 ? -1 : (long long)f->avail;
    pthread_mutex_unlock(&f->mu);
    cache_fill_unref(f);
    return n;
}

void cache_get_stats(cache *c, cache_stats *s)
{
    s->objects = c->objects;
    s->bytes = c->bytes;
    s->mem_objects = c->mem_objects;
    s->mem_bytes = c->mem_bytes;
    s->map_objects = c->map_objects;
    s->map_bytes = c->map_bytes;
    s->fills = c->inflight;
}

/* --- acquisition (worker threads) --------------------------------------------------- */

static void set_str(char **dst, const char *s, size_t n)
{
    free(*dst);
    *dst = strndup(s, n);
}

static void reset_attempt(cache_fill *f)
{
    char **fields[] = {&f->content_type, &f->etag, &f->last_modified, &f->cc, &f->expires, &f->date, &f->age,
                       &f->pragma, &f->headers};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        free(*fields[i]);
        *fields[i] = NULL;
    }
    f->vary = false;
    f->length = HTTP_LEN_UNKNOWN;
    f->head_seen = f->retry = false;
    f->cur_status = 0;
}

/* The response headers replayed to clients. */
typedef struct {
    char buf[2048];
    size_t len;
} hdr_acc;
static char *extra_headers(cache_fill *f, const char *encoding, const char *crange, const char *location,
                           const char *acao, const char *acac)
{
    hdr_acc a = {{0}, 0};
    /* with the source's own CORS answer, for players on other origins (a
     * listener's cors_origins, where set, takes its place) */
    const char *names[] = {"ETag", "Last-Modified", "Cache-Control", "Expires", "Content-Encoding", "Content-Range",
                           "Location", "Access-Control-Allow-Origin", "Access-Control-Allow-Credentials"};
    const char *vals[] = {f->etag, f->last_modified, f->cc, f->expires, encoding, crange, location, acao, acac};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (vals[i] && a.len + strlen(names[i]) + strlen(vals[i]) + 4 < sizeof a.buf)
            a.len += (size_t)snprintf(a.buf + a.len, sizeof a.buf - a.len, "%s: %s\n", names[i], vals[i]);
    return strdup(a.buf);
}

typedef struct {
    cache_fill *f;
    char encoding[128], crange[128], location[1100], acao[300], acac[8];
    size_t attempt, last;
    bool malformed; /* a header we keep or pass on has a control character */
} xfer;

static bool open_tmp(cache *c, cache_fill *f)
{
    if (!c->conf.dir)
        return false;
    snprintf(f->tmp, sizeof f->tmp, "%s/tmp/%llu", c->conf.dir, (unsigned long long)atomic_fetch_add(&c->gen, 1));
    f->fd = open(f->tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (f->fd < 0) {
        f->tmp[0] = 0;
        return false;
    }
    /* the head line, so the object survives a restart; commit builds the
     * object from the same description */
    json_t *h = json_pack("{s:s, s:i, s:s?, s:s?, s:s?, s:s?, s:I, s:I, s:I, s:I, s:b, s:b, s:s?, s:s?}", "key", f->key,
                          "status", f->status, "content_type", f->content_type, "headers", f->headers, "etag", f->etag,
                          "last_modified", f->last_modified, "ttl", (json_int_t)f->verdict.ttl, "stored_at",
                          (json_int_t)f->resp_time, "initial_age", (json_int_t)f->verdict.initial_age,
                          "stale_if_error", (json_int_t)f->verdict.stale_if_error, "always_revalidate",
                          f->verdict.always_revalidate, "must_revalidate", f->verdict.must_revalidate, "ccid", f->ccid,
                          "pid", f->pid);
    char *js = h ? json_dumps(h, JSON_COMPACT) : NULL;
    f->head = h;
    size_t jl = js ? strlen(js) : 0;
    bool ok = js && jl + sizeof HEAD_MAGIC + 1 < MAX_HEAD_LINE;
    if (ok) {
        char *line = malloc(jl + sizeof HEAD_MAGIC + 2);
        int n = sprintf(line, "%s%s\n", HEAD_MAGIC, js);
        ok = write(f->fd, line, (size_t)n) == n;
        f->off = (uint64_t)n;
        free(line);
    }
    free(js);
    if (!ok) {
        close(f->fd);
        unlink(f->tmp);
        f->fd = -1;
        f->tmp[0] = 0;
    }
    return ok;
}

/* The end of a response head. false: abort this attempt (a 5xx with
 * another source left to try). */
static bool head_complete(xfer *x)
{
    cache_fill *f = x->f;
    cache *c = f->c;
    f->resp_time = wall_ms() / 1000;
    if (x->malformed) { /* never relayed or stored: a Location cut by a bare CR, say */
        f->retry = true;
        return false;
    }
    if (f->cur_status >= 500 && x->attempt < x->last) {
        f->retry = true;
        return false;
    }
    if (f->cur_status >= 500) { /* the last source: relayed only if it says how long to cache it */
        hc_directives dv;
        hc_parse_cache_control(f->cc, f->cc ? strlen(f->cc) : 0, &dv);
        if (dv.max_age < 0 && dv.s_maxage < 0 && !f->expires) {
            f->retry = true;
            return false;
        }
    }
    if (f->reval && f->cur_status == 304) {
        /* RFC 9111 §4.3.4: the stored response is fresh again, with the
         * 304's freshness headers where it has them */
        cache_obj *o = f->reval;
        char date[40];
        hc_format_date(f->resp_time, date, sizeof date);
        hc_response r = {.status = o->status, .cache_control = f->cc, .expires = f->expires,
                         .date = f->date ? f->date : date, .last_modified = o->last_modified, .age = f->age,
                         .has_validator = true, .request_time = f->req_time, .response_time = f->resp_time};
        hc_verdict v;
        hc_evaluate(&r, &c->conf.heuristic, &v);
        shard *s = &c->shards[o->hash % SHARDS];
        pthread_mutex_lock(&s->mu);
        if (f->cc || f->expires) {
            o->ttl = v.ttl;
            o->always_revalidate = v.always_revalidate;
            o->must_revalidate = v.must_revalidate;
        }
        o->stored_at = f->resp_time;
        o->initial_age = v.initial_age;
        pthread_mutex_unlock(&s->mu);
        metric_add(c->m_reval304, 1);
        pthread_mutex_lock(&f->mu);
        f->status = 304;
        f->state = FILL_REVALIDATED;
        wake_all(f);
        pthread_mutex_unlock(&f->mu);
        return true;
    }
    char date[40];
    hc_format_date(f->resp_time, date, sizeof date);
    hc_response r = {.status = f->cur_status, .cache_control = f->cc, .expires = f->expires,
                     .date = f->date ? f->date : date, .last_modified = f->last_modified, .age = f->age,
                     .pragma = f->pragma, .has_validator = f->etag || f->last_modified,
                     .request_time = f->req_time, .response_time = f->resp_time};
    hc_evaluate(&r, &c->conf.heuristic, &f->verdict);
    f->status = f->cur_status;
    /* a source's redirect is passed on as it is, never followed */
    f->headers = extra_headers(f, x->encoding[0] ? x->encoding : NULL, x->crange[0] ? x->crange : NULL,
                               x->location[0] && f->cur_status / 100 == 3 ? x->location : NULL,
                               x->acao[0] ? x->acao : NULL, x->acac[0] ? x->acac : NULL);
    f->store = !f->private_ && f->verdict.storable && !f->vary &&
               (f->length == HTTP_LEN_UNKNOWN || f->length <= c->conf.max_object_bytes);
    /* the body goes to a file even when it is not kept: memory only if the disk fails */
    if (!open_tmp(c, f))
        f->store = false;
    pthread_mutex_lock(&f->mu);
    f->state = FILL_BODY;
    wake_all(f);
    pthread_mutex_unlock(&f->mu);
    return true;
}

static size_t on_header(char *b, size_t sz, size_t nm, void *ud)
{
    xfer *x = ud;
    cache_fill *f = x->f;
    size_t n = sz * nm;
    if (n >= 5 && memcmp(b, "HTTP/", 5) == 0) {
        const char *sp = memchr(b, ' ', n);
        f->cur_status = sp ? atoi(sp + 1) : 0;
        return n;
    }
    if (n <= 2 && (b[0] == '\r' || b[0] == '\n')) {
        if (f->cur_status < 200)
            return n; /* 1xx: the real head follows */
        f->head_seen = true;
        if (f->state != FILL_PENDING)
            return n;
        return head_complete(x) ? n : 0;
    }
    const char *colon = memchr(b, ':', n);
    if (!colon)
        return n;
    size_t kn = (size_t)(colon - b);
    const char *v = colon + 1;
    size_t vn = n - kn - 1;
    while (vn && (*v == ' ' || *v == '\t'))
        v++, vn--;
    while (vn && (v[vn - 1] == '\r' || v[vn - 1] == '\n' || v[vn - 1] == ' '))
        vn--;
    if (vn > 1024)
        return n; /* nothing we keep is that long */
#define IS(name) (kn == sizeof name - 1 && strncasecmp(b, name, kn) == 0)
    bool kept = IS("Content-Type") || IS("Content-Length") || IS("ETag") || IS("Last-Modified") ||
                IS("Cache-Control") || IS("Expires") || IS("Date") || IS("Age") || IS("Pragma") || IS("Vary") ||
                IS("Content-Encoding") || IS("Content-Range") || IS("Location") ||
                IS("Access-Control-Allow-Origin") || IS("Access-Control-Allow-Credentials");
    for (size_t i = 0; kept && i < vn; i++)
        if (((unsigned char)v[i] < 0x20 && v[i] != '\t') || v[i] == 0x7f)
            x->malformed = true;
    if (IS("Content-Type"))
        set_str(&f->content_type, v, vn);
    else if (IS("Content-Length")) {
        char tmp[32];
        snprintf(tmp, sizeof tmp, "%.*s", (int)(vn < 31 ? vn : 31), v);
        f->length = strtoull(tmp, NULL, 10);
    } else if (IS("ETag"))
        set_str(&f->etag, v, vn);
    else if (IS("Last-Modified"))
        set_str(&f->last_modified, v, vn);
    else if (IS("Cache-Control")) {
        if (f->cc) { /* several fields are one list */
            char *j = NULL;
            if (asprintf(&j, "%s, %.*s", f->cc, (int)vn, v) > 0) {
                free(f->cc);
                f->cc = j;
            }
        } else
            set_str(&f->cc, v, vn);
    } else if (IS("Expires"))
        set_str(&f->expires, v, vn);
    else if (IS("Date"))
        set_str(&f->date, v, vn);
    else if (IS("Age"))
        set_str(&f->age, v, vn);
    else if (IS("Pragma"))
        set_str(&f->pragma, v, vn);
    else if (IS("Vary"))
        f->vary = !(vn == 0);
    else if (IS("Content-Encoding"))
        snprintf(x->encoding, sizeof x->encoding, "%.*s", (int)vn, v);
    else if (IS("Content-Range"))
        snprintf(x->crange, sizeof x->crange, "%.*s", (int)vn, v);
    else if (IS("Location"))
        snprintf(x->location, sizeof x->location, "%.*s", (int)vn, v);
    else if (IS("Access-Control-Allow-Origin") && vn < sizeof x->acao)
        snprintf(x->acao, sizeof x->acao, "%.*s", (int)vn, v);
    else if (IS("Access-Control-Allow-Credentials") && vn < sizeof x->acac)
        snprintf(x->acac, sizeof x->acac, "%.*s", (int)vn, v);
#undef IS
    return n;
}

/* The disk failed under a fill: its body moves to memory; it is no longer stored. */
static bool to_memory(cache_fill *f, size_t extra)
{
    cache *c = f->c;
    if (f->avail + extra > c->conf.bypass_max_bytes)
        return false;
    char *m = malloc(f->avail + extra + 1);
    if (!m || (f->avail && pread(f->fd, m, f->avail, (off_t)f->off) != (ssize_t)f->avail)) {
        free(m);
        return false;
    }
    pthread_mutex_lock(&f->mu);
    f->mem = m;
    f->mem_cap = f->avail + extra + 1;
    close(f->fd);
    f->fd = -1;
    unlink(f->tmp);
    f->tmp[0] = 0;
    f->store = false;
    pthread_mutex_unlock(&f->mu);
    log_kv(LOG_WARN, "cache disk write failed; serving without storing", "key", f->key, NULL);
    return true;
}

static size_t on_body(char *b, size_t sz, size_t nm, void *ud)
{
    xfer *x = ud;
    cache_fill *f = x->f;
    size_t n = sz * nm;
    if (f->state != FILL_BODY)
        return n; /* a 304's or an aborted attempt's body */
    if (f->fd >= 0 && pwrite(f->fd, b, n, (off_t)(f->off + f->avail)) != (ssize_t)n && !to_memory(f, n))
        return 0;
    if (f->fd < 0) {
        if (f->avail + n > f->c->conf.bypass_max_bytes)
            return 0;
        pthread_mutex_lock(&f->mu);
        if (f->avail + n > f->mem_cap) {
            size_t cap = (f->avail + n) * 2;
            char *m = realloc(f->mem, cap);
            if (!m) {
                pthread_mutex_unlock(&f->mu);
                return 0;
            }
            f->mem = m;
            f->mem_cap = cap;
        }
        memcpy(f->mem + f->avail, b, n);
        pthread_mutex_unlock(&f->mu);
    }
    pthread_mutex_lock(&f->mu);
    f->avail += n;
    if (f->store && f->avail > f->c->conf.max_object_bytes)
        f->store = false;
    wake_all(f);
    pthread_mutex_unlock(&f->mu);
    return n;
}

static void mkdirs(const char *dir, const char *sub)
{
    char p[320];
    snprintf(p, sizeof p, "%s/%s", dir, sub);
    mkdir(p, 0700);
}

/* An object as its file's head line describes it (body at off, size bytes). */
static cache_obj *obj_from_head(json_t *h, uint64_t off, uint64_t size)
{
    const char *key = json_string_value(json_object_get(h, "key"));
    cache_obj *o = key ? calloc(1, sizeof *o) : NULL;
    if (!o)
        return NULL;
#define HSTR(name) dup_or_null(json_string_value(json_object_get(h, name)))
#define HINT(name) json_integer_value(json_object_get(h, name))
    o->refs = 1;
    o->key = strdup(key);
    o->hash = key_hash(key, strlen(key));
    o->status = (int)HINT("status");
    o->content_type = HSTR("content_type");
    o->headers = HSTR("headers");
    o->etag = HSTR("etag");
    o->last_modified = HSTR("last_modified");
    o->ccid = HSTR("ccid");
    o->pid = HSTR("pid");
    o->ttl = HINT("ttl");
    o->stored_at = HINT("stored_at");
    o->initial_age = HINT("initial_age");
    o->stale_if_error = HINT("stale_if_error");
    o->always_revalidate = json_is_true(json_object_get(h, "always_revalidate"));
    o->must_revalidate = json_is_true(json_object_get(h, "must_revalidate"));
#undef HSTR
#undef HINT
    o->body_offset = off;
    o->size = size;
    return o;
}

/* A complete, storable fill becomes a cache object. */
static void commit(cache *c, cache_fill *f)
{
    bool ok = true;
    index_cmd(c, "SADD", "ccid", f->ccid, f->key, &ok);
    index_cmd(c, "SADD", "pid", f->pid, f->key, &ok);
    if (!ok) {
        metric_add(c->m_bypass, 1);
        log_kv(LOG_WARN, "cache index unreachable; object served without being stored", "key", f->key, NULL);
        return;
    }
    uint64_t hash = key_hash(f->key, strlen(f->key));
    char sub[3], path[sizeof ((cache_obj *)0)->path];
    snprintf(sub, sizeof sub, "%02x", (unsigned)(hash >> 56));
    mkdirs(c->conf.dir, sub);
    snprintf(path, sizeof path, "%s/%s/%016llx-%llu", c->conf.dir, sub, (unsigned long long)hash,
             (unsigned long long)atomic_fetch_add(&c->gen, 1));
    cache_obj *o = obj_from_head(f->head, f->off, f->avail);
    if (!o || rename(f->tmp, path) != 0) {
        if (o)
            obj_free(o);
        return;
    }
    f->tmp[0] = 0;
    memcpy(o->path, path, sizeof path);
    o->hit_l = c->l_bits;
    if (o->size <= c->conf.memory_object_max && c->conf.memory_bytes) {
        cache_blob *m = malloc(sizeof *m + o->size + 1);
        if (m && pread(f->fd, m->bytes, o->size, (off_t)f->off) == (ssize_t)o->size) {
            m->refs = 1;
            m->len = o->size;
            m->data = m->bytes;
            m->map = NULL;
            o->mem = m;
        } else
            free(m);
    }
    cache_obj *old = table_put(c, o);
    if (old) {
        obj_retire(c, old);
        cache_obj_unref(old);
    }
    metric_add(c->m_stored, 1);
    evict(c);
}

static void acquire(cache *c, CURL *h, cache_fill *f)
{
    xfer x = {.f = f};
    x.last = f->n_src ? f->n_src - 1 : 0;
    CURLcode rc = CURLE_COULDNT_CONNECT;
    bool timeouts_only = true;
    char why[300] = "the content has no source";
    for (x.attempt = 0; x.attempt < f->n_src; x.attempt++) {
        const cache_source *s = &f->src[x.attempt];
        reset_attempt(f);
        x.encoding[0] = x.crange[0] = x.location[0] = x.acao[0] = x.acac[0] = 0;
        x.malformed = false;
        char url[4096];
        snprintf(url, sizeof url, "%s://%s%s", s->tls ? "https" : "http", s->endpoint, f->path_query);
        struct curl_slist *hl = NULL;
        char tmp[700];
        if (s->auth_header[0])
            hl = curl_slist_append(hl, s->auth_header);
        if (f->reval && f->reval->etag) {
            snprintf(tmp, sizeof tmp, "If-None-Match: %s", f->reval->etag);
            hl = curl_slist_append(hl, tmp);
        } else if (f->reval && f->reval->last_modified) {
            snprintf(tmp, sizeof tmp, "If-Modified-Since: %s", f->reval->last_modified);
            hl = curl_slist_append(hl, tmp);
        }
        if (f->range) {
            snprintf(tmp, sizeof tmp, "Range: %s", f->range);
            hl = curl_slist_append(hl, tmp);
        }
        egress_guard guard;
        if (egress_curl(h, s->egress, url, &guard) != EGRESS_OK) {
            curl_slist_free_all(hl);
            snprintf(why, sizeof why, "%s: %s", s->endpoint, guard.why);
            timeouts_only = false;
            log_kv(LOG_WARN, "source refused by the egress policy", "key", f->key, "reason", why, NULL);
            continue;
        }
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
        f->req_time = wall_ms() / 1000;
        rc = curl_easy_perform(h);
        curl_slist_free_all(hl);
        if (f->state != FILL_PENDING)
            break;
        if (f->retry) {
            if (x.malformed)
                snprintf(why, sizeof why, "%s answered with a malformed header (a control character)", s->endpoint);
            else
                snprintf(why, sizeof why, "%s answered %d", s->endpoint, f->cur_status);
            timeouts_only = false;
        } else if (guard.verdict != EGRESS_OK) { /* an address the policy refuses */
            snprintf(why, sizeof why, "%s: %s", s->endpoint, guard.why);
            timeouts_only = false;
            log_kv(LOG_WARN, "source refused by the egress policy", "key", f->key, "reason", why, NULL);
        } else {
            snprintf(why, sizeof why, "%s: %s", s->endpoint, curl_easy_strerror(rc));
            if (rc != CURLE_OPERATION_TIMEDOUT && rc != CURLE_COULDNT_CONNECT && rc != CURLE_COULDNT_RESOLVE_HOST)
                timeouts_only = false;
        }
        if (x.attempt + 1 < f->n_src) {
            metric_add(c->m_failover, 1);
            log_kv(LOG_WARN, "source failed; trying the next", "key", f->key, "reason", why, NULL);
        }
    }
    pthread_mutex_lock(&f->mu);
    if (f->state == FILL_PENDING) {
        f->state = FILL_FAILED;
        f->status = timeouts_only ? 504 : 502;
        f->error = strdup(why);
    } else if (f->state == FILL_BODY) {
        f->body_error = rc != CURLE_OK || (f->length != HTTP_LEN_UNKNOWN && f->avail != f->length);
    }
    pthread_mutex_unlock(&f->mu);
    bool ok = f->state == FILL_BODY ? !f->body_error : f->state == FILL_REVALIDATED;
    metric_add(ok ? c->m_acq_ok : c->m_acq_fail, 1);
    if (f->state == FILL_FAILED)
        log_kv(LOG_WARN, "acquisition failed", "key", f->key, "reason", why, NULL);
    /* stored before its readers see the end: whoever asks next finds the object */
    if (f->state == FILL_BODY && f->store && !f->body_error)
        commit(c, f);
    else if (f->state == FILL_BODY && !f->private_)
        metric_add(c->m_bypass, 1);
    fills_remove(c, f);
    pthread_mutex_lock(&f->mu);
    f->done = true;
    wake_all(f);
    pthread_cond_broadcast(&f->done_cv);
    pthread_mutex_unlock(&f->mu);
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    cache *c = ud;
    return c->stop ? 1 : 0; /* shutting down: in-flight transfers end now */
}

static void *worker(void *arg)
{
    cache *c = arg;
    CURL *h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, c);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->conf.connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, c->conf.stall_timeout_s);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, c->conf.timeout_s);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "cdni-gateway-surrogate");
    http_tls_curl(h, &c->conf.source_tls); /* https sources verified, never not */
    for (;;) {
        pthread_mutex_lock(&c->q_mu);
        while (!c->q_head && !c->stop)
            pthread_cond_wait(&c->q_cv, &c->q_mu);
        cache_fill *f = c->q_head;
        if (f) {
            c->q_head = f->qnext;
            if (!c->q_head)
                c->q_tail = NULL;
        }
        pthread_mutex_unlock(&c->q_mu);
        if (!f)
            break;
        if (!c->stop)
            acquire(c, h, f);
        else { /* shutting down: fail what is queued */
            pthread_mutex_lock(&f->mu);
            f->state = f->state == FILL_PENDING ? FILL_FAILED : f->state;
            f->status = 503;
            f->done = f->body_error = true;
            wake_all(f);
            pthread_cond_broadcast(&f->done_cv);
            pthread_mutex_unlock(&f->mu);
            fills_remove(c, f);
        }
        atomic_fetch_sub(&c->inflight, 1);
        cache_fill_unref(f);
    }
    curl_easy_cleanup(h);
    return NULL;
}

/* --- start, restore, stop -------------------------------------------------------- */

/* Objects already on disk (a restart) go back into the table. */
static void restore(cache *c)
{
    char p[400];
    size_t n = 0;
    for (int i = 0; i < 256; i++) {
        snprintf(p, sizeof p, "%s/%02x", c->conf.dir, i);
        DIR *d = opendir(p);
        if (!d)
            continue;
        struct dirent *de;
        while ((de = readdir(d))) {
            if (de->d_name[0] == '.')
                continue;
            char fp[700];
            snprintf(fp, sizeof fp, "%s/%s", p, de->d_name);
            FILE *fh = fopen(fp, "re");
            char *line = malloc(MAX_HEAD_LINE);
            json_t *h = NULL;
            struct stat st;
            if (fh && line && fgets(line, MAX_HEAD_LINE, fh) && strncmp(line, HEAD_MAGIC, strlen(HEAD_MAGIC)) == 0 &&
                fstat(fileno(fh), &st) == 0)
                h = json_loads(line + strlen(HEAD_MAGIC), 0, NULL);
            bool key = json_is_string(json_object_get(h, "key"));
            size_t ll = line ? strlen(line) : 0;
            cache_obj *o = key && (uint64_t)st.st_size >= ll && strlen(fp) < sizeof ((cache_obj *)0)->path
                               ? obj_from_head(h, ll, (uint64_t)st.st_size - ll)
                               : NULL;
            if (o) {
                memcpy(o->path, fp, strlen(fp) + 1); /* length checked above */
                cache_obj *old = table_put(c, o);
                if (old) {
                    unlink(old->path);
                    cache_obj_unref(old);
                }
                n++;
            } else {
                unlink(fp); /* not one of ours, or torn */
            }
            json_decref(h);
            free(line);
            if (fh)
                fclose(fh);
        }
        closedir(d);
    }
    if (n) {
        char num[32];
        snprintf(num, sizeof num, "%zu", n);
        log_kv(LOG_INFO, "cache restored from disk", "objects", num, NULL);
    }
}

static void wipe_tmp(const char *dir)
{
    char p[400];
    snprintf(p, sizeof p, "%s/tmp", dir);
    DIR *d = opendir(p);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.') {
            char fp[700];
            snprintf(fp, sizeof fp, "%s/%s", p, de->d_name);
            unlink(fp);
        }
    closedir(d);
}

cache *cache_open(const cache_conf *conf)
{
    cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->conf = *conf;
    if (mkdir(conf->dir, 0700) != 0 && errno != EEXIST) {
        log_kv(LOG_ERROR, "cannot create the cache directory", "dir", conf->dir, "reason", strerror(errno), NULL);
        free(c);
        return NULL;
    }
    mkdirs(conf->dir, "tmp");
    wipe_tmp(conf->dir); /* fills a previous run left unfinished */
    for (int i = 0; i < SHARDS; i++)
        pthread_mutex_init(&c->shards[i].mu, NULL);
    pthread_mutex_init(&c->fills_mu, NULL);
    pthread_mutex_init(&c->q_mu, NULL);
    pthread_cond_init(&c->q_cv, NULL);
    pthread_mutex_init(&c->evict_mu, NULL);
    c->nfills_b = 1024;
    c->fills = calloc(c->nfills_b, sizeof *c->fills);
    metrics *m = conf->metrics;
    c->m_acq_ok = metrics_series(m, "cdni_cache_acquisitions_total", "result=\"ok\"", "counter", "acquisitions from sources");
    c->m_acq_fail = metrics_series(m, "cdni_cache_acquisitions_total", "result=\"failed\"", "counter", "acquisitions from sources");
    c->m_failover = metrics_series(m, "cdni_cache_source_failovers_total", "", "counter", "acquisitions moved on to the next source");
    c->m_stored = metrics_series(m, "cdni_cache_stored_total", "", "counter", "objects stored");
    c->m_bypass = metrics_series(m, "cdni_cache_bypass_total", "", "counter", "acquired objects served without being stored");
    c->m_evicted = metrics_series(m, "cdni_cache_evicted_total", "", "counter", "objects evicted (GDSF)");
    c->m_reval304 = metrics_series(m, "cdni_cache_revalidated_total", "", "counter", "stale objects a 304 made fresh again");
    restore(c);
    apply_tombstones(c);
    evict(c);
    cache_reindex(c, true); /* the Redis index of what is on disk, whatever Redis kept */
    c->nth = conf->threads ? conf->threads : 4;
    c->th = calloc(c->nth, sizeof *c->th);
    for (unsigned i = 0; i < c->nth; i++)
        pthread_create(&c->th[i], NULL, worker, c);
    return c;
}

void cache_close(cache *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->q_mu);
    c->stop = true;
    pthread_cond_broadcast(&c->q_cv);
    pthread_mutex_unlock(&c->q_mu);
    for (unsigned i = 0; i < c->nth; i++)
        pthread_join(c->th[i], NULL);
    free(c->th);
    c->th = NULL;
    c->nth = 0;
}

void cache_free(cache *c)
{
    if (!c)
        return;
    cache_close(c);
    for (int i = 0; i < SHARDS; i++) {
        shard *s = &c->shards[i];
        for (size_t j = 0; j < s->nb; j++)
            for (cache_obj *o = s->b[j], *nx; o; o = nx) {
                nx = o->next;
                cache_obj_unref(o);
            }
        free(s->b);
    }
    free(c->fills);
    free(c);
}
