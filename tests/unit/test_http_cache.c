/* RFC 9111 freshness for a shared cache, the heuristic, Range and
 * conditional requests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "common/http_cache.h"

static const hc_heuristic heur = {0.1, 60, 86400};
#define NOW 1700000000LL

static hc_verdict eval(int status, const char *cc, const char *expires, const char *lm, const char *age)
{
    char date[40];
    hc_format_date(NOW, date, sizeof date);
    hc_response r = {.status = status, .cache_control = cc, .expires = expires, .date = date,
                     .last_modified = lm, .age = age, .has_validator = lm != NULL,
                     .request_time = NOW, .response_time = NOW};
    hc_verdict v;
    hc_evaluate(&r, &heur, &v);
    return v;
}

static void test_lifetime_precedence_s_maxage_max_age_expires(void **st)
{
    char exp[40];
    hc_format_date(NOW + 500, exp, sizeof exp);
    hc_verdict v = eval(200, "max-age=100, s-maxage=30", exp, NULL, NULL);
    assert_true(v.storable);
    assert_int_equal(v.ttl, 30);
    assert_true(v.must_revalidate); /* s-maxage implies proxy-revalidate */
    v = eval(200, "public, max-age=\"100\"", exp, NULL, NULL);
    assert_int_equal(v.ttl, 100);
    v = eval(200, NULL, exp, NULL, NULL);
    assert_int_equal(v.ttl, 500);
    assert_false(v.heuristic);
    v = eval(200, NULL, "0", NULL, NULL); /* invalid Expires: already expired, no validator */
    assert_false(v.storable);
}

static void test_no_store_private_and_no_cache(void **st)
{
    assert_false(eval(200, "no-store", NULL, NULL, NULL).storable);
    assert_false(eval(200, "max-age=60, Private", NULL, NULL, NULL).storable);
    hc_verdict v = eval(200, "no-cache, max-age=60", NULL, NULL, NULL);
    assert_true(v.storable);
    assert_true(v.always_revalidate);
    /* an unknown directive with a quoted comma does not hide the next one */
    v = eval(200, "ext=\"a, no-store\", max-age=7", NULL, NULL, NULL);
    assert_true(v.storable);
    assert_int_equal(v.ttl, 7);
}

static void test_heuristic_is_a_fraction_of_last_modified_age_within_bounds(void **st)
{
    char lm[40];
    hc_format_date(NOW - 10000, lm, sizeof lm);
    hc_verdict v = eval(200, NULL, NULL, lm, NULL);
    assert_true(v.heuristic);
    assert_int_equal(v.ttl, 1000);
    hc_format_date(NOW - 100, lm, sizeof lm); /* 10 s, below the minimum */
    assert_int_equal(eval(200, NULL, NULL, lm, NULL).ttl, 60);
    hc_format_date(NOW - 100000000, lm, sizeof lm);
    assert_int_equal(eval(200, NULL, NULL, lm, NULL).ttl, 86400);
    assert_int_equal(eval(200, NULL, NULL, NULL, NULL).ttl, 60); /* no Last-Modified: the minimum */
}

static void test_errors_are_cached_only_for_the_lifetime_they_state(void **st)
{
    assert_false(eval(503, NULL, NULL, NULL, NULL).storable);
    assert_false(eval(403, NULL, NULL, NULL, NULL).storable);
    hc_verdict v = eval(503, "max-age=5", NULL, NULL, NULL);
    assert_true(v.storable);
    assert_int_equal(v.ttl, 5);
    assert_true(eval(404, NULL, NULL, NULL, NULL).storable); /* heuristically cacheable */
    assert_false(eval(206, "max-age=60", NULL, NULL, NULL).storable);
}

static void test_age_on_arrival(void **st)
{
    hc_verdict v = eval(200, "max-age=100, stale-if-error=30", NULL, NULL, "40");
    assert_int_equal(v.initial_age, 40);
    assert_int_equal(v.stale_if_error, 30);
    assert_false(eval(200, "max-age=10", NULL, NULL, "40").storable); /* stale on arrival, no validator */
    assert_int_equal(eval(200, "max-age=10", NULL, NULL, "junk").initial_age, 0);
}

static void test_dates_round_trip_in_all_three_formats(void **st)
{
    char b[40];
    hc_format_date(784111777, b, sizeof b);
    assert_string_equal(b, "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_int_equal(hc_parse_date(b, strlen(b)), 784111777);
    const char *rfc850 = "Sunday, 06-Nov-94 08:49:37 GMT", *asc = "Sun Nov  6 08:49:37 1994";
    assert_int_equal(hc_parse_date(rfc850, strlen(rfc850)), 784111777);
    assert_int_equal(hc_parse_date(asc, strlen(asc)), 784111777);
    assert_int_equal(hc_parse_date("soon", 4), -1);
}

static void test_single_ranges(void **st)
{
    uint64_t f, l;
#define R(h) h, strlen(h)
    assert_int_equal(hc_range(R("bytes=0-99"), 1000, &f, &l), HC_RANGE_OK);
    assert_true(f == 0 && l == 100);
    assert_int_equal(hc_range(R("bytes=900-"), 1000, &f, &l), HC_RANGE_OK);
    assert_true(f == 900 && l == 100);
    assert_int_equal(hc_range(R("bytes=990-5000"), 1000, &f, &l), HC_RANGE_OK);
    assert_true(f == 990 && l == 10);
    assert_int_equal(hc_range(R("bytes=-300"), 1000, &f, &l), HC_RANGE_OK);
    assert_true(f == 700 && l == 300);
    assert_int_equal(hc_range(R("bytes=-3000"), 1000, &f, &l), HC_RANGE_OK);
    assert_true(f == 0 && l == 1000);
    assert_int_equal(hc_range(R("bytes=1000-"), 1000, &f, &l), HC_RANGE_UNSATISFIABLE);
    assert_int_equal(hc_range(R("bytes=-0"), 1000, &f, &l), HC_RANGE_UNSATISFIABLE);
    assert_int_equal(hc_range(R("bytes=5-1"), 1000, &f, &l), HC_RANGE_NONE);
    assert_int_equal(hc_range(R("bytes=0-1,5-9"), 1000, &f, &l), HC_RANGE_NONE);
    assert_int_equal(hc_range(R("items=0-1"), 1000, &f, &l), HC_RANGE_NONE);
    assert_int_equal(hc_range(R("bytes=99999999999999999999999-"), 1000, &f, &l), HC_RANGE_NONE);
    assert_int_equal(hc_range_first(R("bytes=0-")), 0);
    assert_int_equal(hc_range_first(R("bytes=10-20")), 10);
    assert_int_equal(hc_range_first(R("bytes=-20")), -2);
    assert_int_equal(hc_range_first(R("bytes=x")), -1);
}

static void test_conditionals(void **st)
{
    const char *lm = "Sun, 06 Nov 1994 08:49:37 GMT", *later = "Mon, 07 Nov 1994 08:49:37 GMT";
    assert_true(hc_not_modified("\"a\", W/\"b\"", NULL, "\"b\"", NULL));
    assert_true(hc_not_modified("*", NULL, "\"x\"", NULL));
    assert_false(hc_not_modified("\"a\"", later, "\"b\"", lm)); /* If-None-Match wins */
    assert_true(hc_not_modified(NULL, later, NULL, lm));
    assert_true(hc_not_modified(NULL, lm, NULL, lm));
    assert_false(hc_not_modified(NULL, lm, NULL, later));
    assert_false(hc_not_modified(NULL, NULL, "\"b\"", lm));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lifetime_precedence_s_maxage_max_age_expires),
        cmocka_unit_test(test_no_store_private_and_no_cache),
        cmocka_unit_test(test_heuristic_is_a_fraction_of_last_modified_age_within_bounds),
        cmocka_unit_test(test_errors_are_cached_only_for_the_lifetime_they_state),
        cmocka_unit_test(test_age_on_arrival),
        cmocka_unit_test(test_dates_round_trip_in_all_three_formats),
        cmocka_unit_test(test_single_ranges),
        cmocka_unit_test(test_conditionals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
