/* common/idle_ids: the session ids of requests without a token. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "common/idle_ids.h"

static uint64_t id_of(idle_ids *t, const char *k, long long now) { return idle_id(t, k, strlen(k), now); }

static void test_an_id_lasts_while_its_key_comes_back_within_the_idle_time(void **st)
{
    (void)st;
    idle_ids *t = idle_ids_new(1024, 60000);
    assert_non_null(t);
    uint64_t a = id_of(t, "198.51.100.7|m-1", 0);
    assert_int_not_equal(a, 0);
    /* a segment every 6 s for 10 minutes: one session */
    for (long long now = 6000; now <= 600000; now += 6000)
        assert_int_equal(id_of(t, "198.51.100.7|m-1", now), a);
    /* another client, or another collection: other sessions */
    uint64_t b = id_of(t, "198.51.100.8|m-1", 600000), c = id_of(t, "198.51.100.7|m-2", 600000);
    assert_int_not_equal(b, a);
    assert_int_not_equal(c, a);
    assert_int_not_equal(b, c);
    /* exactly the idle time is still the session; one ms more is a new one */
    assert_int_equal(id_of(t, "198.51.100.7|m-1", 660000), a);
    uint64_t a2 = id_of(t, "198.51.100.7|m-1", 720001);
    assert_int_not_equal(a2, a);
    assert_int_equal(id_of(t, "198.51.100.7|m-1", 721000), a2);
    idle_ids_free(t);
}

/* A table far too small for its keys still answers: the entries seen
 * longest ago make room, the ones in use stay. */
static void test_a_full_table_forgets_the_oldest_first(void **st)
{
    (void)st;
    idle_ids *t = idle_ids_new(16, 3600000);
    uint64_t hot = id_of(t, "hot", 0), first = id_of(t, "cold-0", 0);
    char k[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(k, sizeof k, "cold-%d", i);
        assert_int_not_equal(id_of(t, k, 1 + i), 0);
        if (i % 4 == 0) /* the hot key keeps being seen */
            assert_int_equal(id_of(t, "hot", 1 + i), hot);
    }
    /* within its idle time, but pushed out by 5,000 newer keys: a new id */
    assert_int_not_equal(id_of(t, "cold-0", 6000), first);
    idle_ids_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_an_id_lasts_while_its_key_comes_back_within_the_idle_time),
        cmocka_unit_test(test_a_full_table_forgets_the_oldest_first),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
