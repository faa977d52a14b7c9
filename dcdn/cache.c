/* The surrogate's cache: objects and their table, the Redis index of
 * their content collections and purge ids, eviction (GDSF over memory,
 * mapped and disk tiers), start, restore from disk and stop. Purges are
 * in cache_purge.c, fills in cache_fill.c, acquisition in
 * cache_acquire.c; cache.h tells the whole. */
#include "dcdn/cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "dcdn/cache_int.h"

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
void cache_blob_account(cache *c, const cache_blob *b, int sign)
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

void cache_obj_free(cache_obj *o)
{
    free(o->key);
    free(o->content_type);
    free(o->headers);
    free(o->etag);
    free(o->last_modified);
    free(o->ccid);
    free(o->pid);
    free(o->up);
    cache_blob_unref(o->mem);
    free(o);
}

void cache_obj_unref(cache_obj *o)
{
    if (o && atomic_fetch_sub(&o->refs, 1) == 1)
        cache_obj_free(o);
}


/* --- index ---------------------------------------------------------------------- */

void cache_index_cmd(cache *c, const char *op, const char *kind, const char *value, const char *key, bool *ok)
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
void cache_obj_retire(cache *c, cache_obj *o)
{
    unlink(o->path);
    bool ok = true;
    cache_index_cmd(c, "SREM", "ccid", o->ccid, o->key, &ok);
    cache_index_cmd(c, "SREM", "pid", o->pid, o->key, &ok);
}

static void shard_account_remove(cache *c, cache_obj *o)
{
    atomic_fetch_sub(&c->bytes, o->size);
    atomic_fetch_sub(&c->objects, 1);
    if (o->mem)
        cache_blob_account(c, o->mem, -1);
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
        cache_blob_account(c, o->mem, 1);
    pthread_mutex_unlock(&s->mu);
    return old;
}

/* Takes o out of the table if it is still there; true if it was. */
bool cache_table_take(cache *c, cache_obj *o)
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
    cache_blob_account(c, b, 1);
    pthread_mutex_unlock(&s->mu);
    if (over(c->map_bytes, c->conf.mapped_bytes, 1.0) || over(c->map_objects, c->conf.mapped_objects, 1.0))
        cache_evict(c);
    return b;
}

bool cache_remove(cache *c, const char *key, size_t klen)
{
    cache_view v;
    cache_obj *o = cache_lookup(c, key, klen, 0, &v);
    if (!o)
        return false;
    cache_blob_unref(v.mem);
    bool was = cache_table_take(c, o);
    if (was) {
        cache_obj_retire(c, o);
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

/* A key and the upstream its object's head names, copied under the lock. */
typedef struct {
    char *key, *up;
} key_up;

/* The filter applied outside the shards' locks (it may resolve metadata);
 * the pairs are freed, the keys kept go to out. */
static size_t keep_keys(key_up *ku, size_t n, cache_key_filter keep, void *ud, char **out)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (!keep || keep(ud, ku[i].key, ku[i].up))
            out[m++] = ku[i].key;
        else
            free(ku[i].key);
        free(ku[i].up);
    }
    return m;
}

size_t cache_keys(cache *c, cache_key_filter keep, void *ud, char ***out)
{
    size_t n = 0, cap = 0;
    key_up *ku = NULL;
    for (int i = 0; i < SHARDS; i++) {
        shard *s = &c->shards[i];
        pthread_mutex_lock(&s->mu);
        for (size_t b = 0; b < s->nb; b++)
            for (cache_obj *o = s->b[b]; o; o = o->next) {
                if (n == cap) {
                    cap = cap ? cap * 2 : 1024;
                    key_up *nk = realloc(ku, cap * sizeof *ku);
                    if (!nk)
                        goto done;
                    ku = nk;
                }
                if (!(ku[n].key = strdup(o->key)))
                    goto done;
                ku[n++].up = dup_or_null(o->up);
            }
    done:
        pthread_mutex_unlock(&s->mu);
    }
    char **k = calloc(n + 1, sizeof *k);
    size_t m = k ? keep_keys(ku, n, keep, ud, k) : 0;
    for (size_t i = 0; !k && i < n; i++) {
        free(ku[i].key);
        free(ku[i].up);
    }
    free(ku);
    *out = k;
    return m;
}

long long cache_indexed_keys(cache *c, const char *index, const char *value, cache_key_filter keep, void *ud,
                             char ***out)
{
    *out = NULL;
    if (!cache_reindex(c, false))
        return -1;
    store_reply *r = store_cmd(c->conf.store, "SMEMBERS %s:%s:%s", c->conf.index_prefix, index, value);
    if (!r || !store_reply_is(r, STORE_ARRAY)) {
        store_reply_free(r);
        return -1;
    }
    size_t n = store_reply_count(r), got = 0;
    key_up *ku = calloc(n + 1, sizeof *ku);
    for (size_t i = 0; ku && i < n; i++) {
        size_t klen;
        const char *key = store_reply_is(store_reply_at(r, i), STORE_STR) ? store_reply_at_str(r, i, &klen) : NULL;
        if (!key)
            continue;
        /* the upstream from the object itself: one not held here is left out */
        uint64_t h = key_hash(key, klen);
        shard *s = &c->shards[h % SHARDS];
        bool held = false;
        char *up = NULL;
        pthread_mutex_lock(&s->mu);
        for (cache_obj *x = s->nb ? s->b[(h / SHARDS) % s->nb] : NULL; x && !held; x = x->next)
            if (x->hash == h && strlen(x->key) == klen && memcmp(x->key, key, klen) == 0) {
                held = true;
                up = dup_or_null(x->up);
            }
        pthread_mutex_unlock(&s->mu);
        if (held && (ku[got].key = strdup(key)) != NULL)
            ku[got++].up = up;
        else
            free(up);
    }
    store_reply_free(r);
    char **k = calloc(got + 1, sizeof *k);
    size_t m = k ? keep_keys(ku, got, keep, ud, k) : 0;
    for (size_t i = 0; !k && i < got; i++) {
        free(ku[i].key);
        free(ku[i].up);
    }
    free(ku);
    *out = k;
    return k ? (long long)m : -1;
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

void cache_evict(cache *c)
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
        if (cache_table_take(c, all[i].o)) {
            atomic_store(&c->l_bits, d_bits(all[i].prio));
            cache_obj_retire(c, all[i].o);
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
            cache_blob_account(c, m, -1);
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

/* --- objects from fills and files ------------------------------------------------ */

void cache_mkdirs(const char *dir, const char *sub)
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
    o->up = HSTR("up");
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
void cache_commit(cache *c, cache_fill *f)
{
    bool ok = true;
    cache_index_cmd(c, "SADD", "ccid", f->ccid, f->key, &ok);
    cache_index_cmd(c, "SADD", "pid", f->pid, f->key, &ok);
    if (!ok) {
        metric_add(c->m_bypass, 1);
        log_kv(LOG_WARN, "cache index unreachable; object served without being stored", "key", f->key, NULL);
        return;
    }
    uint64_t hash = key_hash(f->key, strlen(f->key));
    char sub[3], path[sizeof ((cache_obj *)0)->path];
    snprintf(sub, sizeof sub, "%02x", (unsigned)(hash >> 56));
    cache_mkdirs(c->conf.dir, sub);
    snprintf(path, sizeof path, "%s/%s/%016llx-%llu", c->conf.dir, sub, (unsigned long long)hash,
             (unsigned long long)atomic_fetch_add(&c->gen, 1));
    cache_obj *o = obj_from_head(f->head, f->off, f->avail);
    if (!o || rename(f->tmp, path) != 0) {
        if (o)
            cache_obj_free(o);
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
        cache_obj_retire(c, old);
        cache_obj_unref(old);
    }
    metric_add(c->m_stored, 1);
    cache_evict(c);
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
    cache_mkdirs(conf->dir, "tmp");
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
    cache_apply_tombstones(c);
    cache_evict(c);
    cache_reindex(c, true); /* the Redis index of what is on disk, whatever Redis kept */
    c->nth = conf->threads ? conf->threads : 4;
    c->th = calloc(c->nth, sizeof *c->th);
    for (unsigned i = 0; i < c->nth; i++)
        pthread_create(&c->th[i], NULL, cache_worker, c);
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

