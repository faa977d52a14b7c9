/* The cache's purge and invalidation by trigger (RFC 8007): objects out
 * of the table or marked stale, by key or through the Redis index, with
 * tombstones so that neither is undone by a restart. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "dcdn/cache_int.h"

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
        if (!cache_table_take(c, o))
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
void cache_apply_tombstones(cache *c)
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
            if (cache_table_take(c, o)) {
                cache_obj_retire(c, o);
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

