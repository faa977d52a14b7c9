/* Refcounted snapshot swap. See snapshot.h. */
#include "common/snapshot.h"

#include <stdatomic.h>
#include <stdlib.h>

/* The lock guards only h->cur. A count can reach zero only after the
 * holder has dropped its own reference, which happens after the swap, so a
 * reader that found the ref under the lock always holds a live one; giving
 * it back needs no lock at all. */
struct snap_ref {
    void *obj;
    atomic_ulong refs; /* holder's own reference counts as one */
};

void snapshot_init(snapshot_holder *h, void (*destroy)(void *obj))
{
    pthread_mutex_init(&h->mu, NULL);
    h->cur = NULL;
    h->destroy = destroy;
}

static void drop(snapshot_holder *h, snap_ref *r)
{
    if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1) {
        if (r->obj)
            h->destroy(r->obj);
        free(r);
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
    atomic_init(&r->refs, 1);
    pthread_mutex_lock(&h->mu);
    snap_ref *old = h->cur;
    h->cur = r;
    pthread_mutex_unlock(&h->mu);
    if (old)
        drop(h, old);
}

void *snapshot_acquire(snapshot_holder *h, snap_ref **ref)
{
    pthread_mutex_lock(&h->mu);
    snap_ref *r = h->cur;
    if (r)
        atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
    pthread_mutex_unlock(&h->mu);
    *ref = r;
    return r ? r->obj : NULL;
}

void snapshot_release(snapshot_holder *h, snap_ref *ref)
{
    if (ref)
        drop(h, ref);
}

void snapshot_destroy(snapshot_holder *h)
{
    pthread_mutex_lock(&h->mu);
    snap_ref *r = h->cur;
    h->cur = NULL;
    pthread_mutex_unlock(&h->mu);
    if (r)
        drop(h, r);
    pthread_mutex_destroy(&h->mu);
}
