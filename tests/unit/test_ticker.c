/* common/ticker: a run at start, another when woken (not only on the
 * interval), a stop that ends a long run early through ticker_stopping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdatomic.h>

#include "common/clock.h"
#include "common/ticker.h"

static _Atomic int runs;

static void count(ticker *t, void *ud)
{
    (void)t;
    (void)ud;
    atomic_fetch_add(&runs, 1);
}

static bool waited_for(int n)
{
    for (int i = 0; i < 500 && atomic_load(&runs) < n; i++)
        sleep_ms(10);
    return atomic_load(&runs) >= n;
}

static void test_runs_at_start_and_when_woken(void **st)
{
    (void)st;
    atomic_store(&runs, 0);
    ticker *t = ticker_start(count, NULL, 3600 * 1000LL); /* the interval never comes */
    assert_non_null(t);
    assert_true(waited_for(1));
    ticker_wake(t);
    assert_true(waited_for(2));
    ticker_wake(t);
    assert_true(waited_for(3));
    ticker_stop(t);
    int n = atomic_load(&runs);
    sleep_ms(50);
    assert_int_equal(atomic_load(&runs), n); /* stopped: no more runs */
    ticker_stop(NULL);
}

static void long_run(ticker *t, void *ud)
{
    (void)ud;
    atomic_fetch_add(&runs, 1);
    while (!ticker_stopping(t)) /* would run forever without the stop */
        sleep_ms(5);
}

static void test_stop_ends_a_long_run(void **st)
{
    (void)st;
    atomic_store(&runs, 0);
    ticker *t = ticker_start(long_run, NULL, 10);
    assert_true(waited_for(1));
    ticker_stop(t); /* returns: the run saw ticker_stopping */
    assert_int_equal(atomic_load(&runs), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runs_at_start_and_when_woken),
        cmocka_unit_test(test_stop_ends_a_long_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
