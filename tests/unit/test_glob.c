/* common/glob: the one glob of RFC 8006 PatternMatch, RFC 8007 content
 * patterns and exclude-path-pattern; escapes, case, backtracking, and the
 * wildcard marks the cache key is built from. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "common/glob.h"

static bool m(const char *pat, const char *s, bool cs)
{
    uint16_t prog[256];
    size_t n;
    assert_true(glob_compile(pat, strlen(pat), cs, false, prog, 256, &n, NULL));
    return glob_match(prog, n, s, strlen(s), cs, NULL);
}

static void test_wildcards_escapes_and_case(void **st)
{
    (void)st;
    assert_true(m("/video/*.ts", "/video/a/b/seg_1.ts", true));
    assert_false(m("/video/*.ts", "/video/seg_1.ts?x", true));
    assert_true(m("/v?deo/*", "/video/", true));
    assert_false(m("/v?deo/*", "/vdeo/", true));
    assert_true(m("*", "", true));
    assert_false(m("?", "", true));
    assert_true(m("a$*b", "a*b", true)); /* escaped: a literal '*' */
    assert_false(m("a$*b", "axb", true));
    assert_true(m("a$?$$", "a?$", true));
    assert_true(m("a$x", "a$x", true)); /* '$' before anything else stands for itself */
    assert_true(m("cost$", "cost$", true));
    assert_false(m("/A/*", "/a/b", true));
    assert_true(m("/A/*", "/a/b", false));
    assert_true(m("/a/*", "/A/B", false));
    assert_true(m("*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab", true)); /* backtracking, not exponential */
    assert_false(m("*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", true));
}

static void test_strict_escapes_and_room(void **st)
{
    (void)st;
    uint16_t prog[8];
    size_t n, bad = 0;
    assert_false(glob_compile("ab$c", 4, true, true, prog, 8, &n, &bad));
    assert_int_equal(bad, 2);
    assert_false(glob_compile("ab$", 3, true, true, prog, 8, &n, &bad)); /* a '$' that ends the pattern */
    assert_int_equal(bad, 2);
    assert_true(glob_compile("a**b", 4, true, true, prog, 8, &n, &bad));
    assert_int_equal(n, 3); /* "**" is one '*' */
    assert_int_equal(prog[1], GLOB_ANY);
    assert_false(glob_compile("abcdefghij", 10, true, false, prog, 8, &n, NULL)); /* no room */
    /* only the first n bytes count: a pattern need not be NUL-terminated */
    assert_true(glob_compile("a*IGNORED", 2, true, true, prog, 8, &n, NULL));
    assert_true(glob_match(prog, n, "abc", 3, true, NULL));
}

static void test_wild_marks_what_the_wildcards_matched(void **st)
{
    (void)st;
    uint16_t prog[32];
    size_t n;
    const char *pat = "/v/*/seg?.ts", *s = "/v/abc/seg7.ts";
    assert_true(glob_compile(pat, strlen(pat), true, false, prog, 32, &n, NULL));
    unsigned char wild[32];
    assert_true(glob_match(prog, n, s, strlen(s), true, wild));
    const char *want = "00011100001000"; /* "abc" by '*', "7" by '?' */
    for (size_t i = 0; i < strlen(s); i++)
        assert_int_equal(wild[i], want[i] - '0');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wildcards_escapes_and_case),
        cmocka_unit_test(test_strict_escapes_and_room),
        cmocka_unit_test(test_wild_marks_what_the_wildcards_matched),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
