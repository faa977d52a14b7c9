/* Refcounted snapshot swap. See snapshot.h. */
#include "common/snapshot.h"

#include <stdlib.h>

struct snap_ref {
    void *obj;
    unsigned long refs; /* holder's own reference counts as one */
};

void snapshot_init(snapshot_holder *h, void (*destroy)(void *obj))
{
    pthread_mutex_init(&h->mu, NULL);
    h->cur = NULL;
    h->destroy = destroy;
}

static void drop(snapshot_holder *h, snap_ref *r)
{
    /* called with the lock held; destroys outside of it */
    if (--r->refs == 0) {
        pthread_mutex_unlock(&h->mu);
        if (r->obj)
            h->destroy(r->obj);
        free(r);
        pthread_mutex_lock(&h->mu);
    }
}

void snapshot_publish(snapshot_holder *h, void *obj)
{
    snap_ref *r = calloc(1, sizeof *r);
    if (!r) { /* keep serving the old one rather than lose both */
        if (obj)
            h->destroy(obj);
        return;
    }
    r->obj = obj;
    r->refs = 1;
    pthread_mutex_lock(&h->mu);
    snap_ref *old = h->cur;
    h->cur = r;
    if (old)
        drop(h, old);
    pthread_mutex_unlock(&h->mu);
}

void *snapshot_acquire(snapshot_holder *h, snap_ref **ref)
{
    pthread_mutex_lock(&h->mu);
    snap_ref *r = h->cur;
    if (r)
        r->refs++;
    pthread_mutex_unlock(&h->mu);
    *ref = r;
    return r ? r->obj : NULL;
}

void snapshot_release(snapshot_holder *h, snap_ref *ref)
{
    if (!ref)
        return;
    pthread_mutex_lock(&h->mu);
    drop(h, ref);
    pthread_mutex_unlock(&h->mu);
}

void snapshot_destroy(snapshot_holder *h)
{
    pthread_mutex_lock(&h->mu);
    snap_ref *r = h->cur;
    h->cur = NULL;
    if (r)
        drop(h, r);
    pthread_mutex_unlock(&h->mu);
    pthread_mutex_destroy(&h->mu);
}
