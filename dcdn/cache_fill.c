/* The cache's fills: one acquisition in flight per key, the requests and
 * streams parked on it until its head or more of its body arrives, and
 * the queue the acquisition workers take them from. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "dcdn/cache_int.h"

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
    free(f->up);
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

void cache_fills_remove(cache *c, cache_fill *f)
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
void cache_fill_wake_all(cache_fill *f)
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

cache_fill *cache_reacquire(cache *c, cache_fill *f)
{
    cache_fills_remove(c, f); /* its answer is known: not one to collapse onto again */
    cache_request q = {.key = f->key, .path_query = f->path_query, .sources = f->src, .n_sources = f->n_src,
                       .ccid = f->ccid, .purge_id = f->pid, .upstream = f->up, .range = f->range};
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
    f->up = dup_or_null(q->upstream);
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
