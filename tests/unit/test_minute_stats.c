/* common/minute_stats: the window a status request asks for, and the sums
 * the status pages make of a window (the Redis side is in the integration
 * tests). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/minute_stats.h"

static void test_the_window_is_15_minutes_unless_1_to_60_is_asked(void **st)
{
    (void)st;
    int m = 0;
    assert_true(mstats_window_arg(NULL, &m));
    assert_int_equal(m, 15);
    assert_true(mstats_window_arg("", &m));
    assert_int_equal(m, 15);
    assert_true(mstats_window_arg("1", &m));
    assert_int_equal(m, 1);
    assert_true(mstats_window_arg("60", &m));
    assert_int_equal(m, 60);
    static const char *const bad[] = {"0", "61", "-5", "5m", "x", " 5", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(mstats_window_arg(bad[i], &m));
}

static void test_sums_of_one_field_and_of_a_prefix(void **st)
{
    (void)st;
    json_t *r = json_loads("{\"step_s\": 60, \"start\": 0, \"minutes\": 3, \"series\": {"
                           "\"redirect:dcdn-b\": [1, 2, 3], \"redirect:dcdn-c\": [0, 0, 4],"
                           " \"redirects\": [100, 0, 0], \"ri_error:dcdn-b\": [0, 1, 0]}}",
                           0, NULL);
    assert_non_null(r);
    assert_int_equal(mstats_total(r, "redirect:dcdn-b"), 6);
    assert_int_equal(mstats_total(r, "redirect:nobody"), 0);
    assert_int_equal(mstats_prefix_total(r, "redirect:"), 10); /* not "redirects" */
    assert_int_equal(mstats_prefix_total(r, "ri_error:"), 1);
    assert_int_equal(mstats_prefix_total(r, "cache:"), 0);
    assert_int_equal(mstats_total(NULL, "x"), 0);
    json_decref(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_window_is_15_minutes_unless_1_to_60_is_asked),
        cmocka_unit_test(test_sums_of_one_field_and_of_a_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
