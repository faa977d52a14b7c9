/* common/snapshot: readers keep the object they took however many
 * publications follow; each object is destroyed once, when its last
 * reader lets go (or at once when it had none); under threads that read
 * and a thread that publishes, nothing is destroyed twice or leaked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "common/snapshot.h"

static _Atomic int destroyed, alive;

typedef struct {
    int value;
    _Atomic int freed; /* 1 once destroyed: a reader must never see it */
} obj;

static obj *make(int v)
{
    obj *o = calloc(1, sizeof *o);
    o->value = v;
    atomic_fetch_add(&alive, 1);
    return o;
}

static void destroy(void *p)
{
    obj *o = p;
    assert_int_equal(atomic_exchange(&o->freed, 1), 0);
    atomic_fetch_add(&destroyed, 1);
    atomic_fetch_sub(&alive, 1);
    free(o);
}

static void test_a_reader_keeps_its_object_until_it_lets_go(void **st)
{
    (void)st;
    destroyed = alive = 0;
    snapshot_holder h;
    snapshot_init(&h, destroy);
    snap_ref *r0;
    assert_null(snapshot_acquire(&h, &r0)); /* nothing published yet */
    snapshot_release(&h, r0);
    snapshot_publish(&h, make(1));
    snap_ref *r1;
    obj *a = snapshot_acquire(&h, &r1);
    assert_int_equal(a->value, 1);
    snapshot_publish(&h, make(2));
    snapshot_publish(&h, make(3));
    assert_int_equal(destroyed, 1); /* 2 had no reader: gone at once; 1 is still held */
    assert_int_equal(a->value, 1);
    assert_int_equal(a->freed, 0);
    snap_ref *r3;
    obj *c = snapshot_acquire(&h, &r3);
    assert_int_equal(c->value, 3);
    snapshot_release(&h, r1);
    assert_int_equal(destroyed, 2); /* 1 with its last reader */
    snapshot_publish(&h, NULL);
    assert_int_equal(destroyed, 2); /* 3 still read */
    snapshot_release(&h, r3);
    assert_int_equal(destroyed, 3);
    snap_ref *rn;
    assert_null(snapshot_acquire(&h, &rn));
    snapshot_release(&h, rn);
    snapshot_destroy(&h);
    assert_int_equal(alive, 0);
}

static snapshot_holder shared;
static _Atomic bool stop;

static void *reader(void *arg)
{
    (void)arg;
    long seen = 0;
    while (!atomic_load(&stop)) {
        snap_ref *r;
        obj *o = snapshot_acquire(&shared, &r);
        if (o) {
            if (o->freed || o->value < 0)
                abort(); /* a destroyed object handed out */
            seen++;
        }
        snapshot_release(&shared, r);
    }
    return (void *)seen;
}

static void test_publications_under_readers_destroy_each_object_once(void **st)
{
    (void)st;
    destroyed = alive = 0;
    snapshot_init(&shared, destroy);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, reader, NULL);
    for (int v = 0; v < 20000; v++)
        snapshot_publish(&shared, make(v));
    atomic_store(&stop, true);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(destroyed, 19999); /* all but the current */
    snapshot_destroy(&shared);
    assert_int_equal(destroyed, 20000);
    assert_int_equal(alive, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_reader_keeps_its_object_until_it_lets_go),
        cmocka_unit_test(test_publications_under_readers_destroy_each_object_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
