/* Snapshot holder: the current immutable object plus a reference count.
 *
 * Readers on request threads take a reference, use the object without any
 * lock, and give it back; a refresher swaps in a new object, and the old
 * one is destroyed when its last reader lets go. A lock is held only to
 * read or swap the current pointer; counts are atomic, and giving a
 * reference back takes no lock. */
#ifndef COMMON_SNAPSHOT_H
#define COMMON_SNAPSHOT_H

#include <pthread.h>
#include <stdbool.h>

typedef struct snap_ref snap_ref;

typedef struct {
    pthread_mutex_t mu;
    snap_ref *cur;
    void (*destroy)(void *obj);
} snapshot_holder;

void snapshot_init(snapshot_holder *h, void (*destroy)(void *obj));
void snapshot_destroy(snapshot_holder *h);

/* Installs obj (may be NULL) as current; the previous one is released. */
void snapshot_publish(snapshot_holder *h, void *obj);

/* Current object or NULL; pass *ref back to snapshot_release. */
void *snapshot_acquire(snapshot_holder *h, snap_ref **ref);
void snapshot_release(snapshot_holder *h, snap_ref *ref);

#endif
