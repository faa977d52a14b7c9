/* RFC 3986 parsing, §5.4 reference resolution examples, §6 normalization. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "common/url.h"

static void check_resolve(const char *ref, const char *want)
{
    static const char base[] = "http://a/b/c/d;p?q";
    char *out = NULL;
    assert_int_equal(url_resolve(base, strlen(base), ref, strlen(ref), &out), URL_OK);
    if (strcmp(out, want) != 0)
        fail_msg("resolve(%s) = %s, want %s", ref, out, want);
    free(out);
}

/* RFC 3986 §5.4.1 */
static void test_resolve_normal_examples_of_rfc3986_5_4_1(void **st)
{
    check_resolve("g:h", "g:h");
    check_resolve("g", "http://a/b/c/g");
    check_resolve("./g", "http://a/b/c/g");
    check_resolve("g/", "http://a/b/c/g/");
    check_resolve("/g", "http://a/g");
    check_resolve("//g", "http://g");
    check_resolve("?y", "http://a/b/c/d;p?y");
    check_resolve("g?y", "http://a/b/c/g?y");
    check_resolve("#s", "http://a/b/c/d;p?q#s");
    check_resolve("g#s", "http://a/b/c/g#s");
    check_resolve("g?y#s", "http://a/b/c/g?y#s");
    check_resolve(";x", "http://a/b/c/;x");
    check_resolve("g;x", "http://a/b/c/g;x");
    check_resolve("", "http://a/b/c/d;p?q");
    check_resolve(".", "http://a/b/c/");
    check_resolve("./", "http://a/b/c/");
    check_resolve("..", "http://a/b/");
    check_resolve("../", "http://a/b/");
    check_resolve("../g", "http://a/b/g");
    check_resolve("../..", "http://a/");
    check_resolve("../../", "http://a/");
    check_resolve("../../g", "http://a/g");
}

/* RFC 3986 §5.4.2 */
static void test_resolve_abnormal_examples_of_rfc3986_5_4_2(void **st)
{
    check_resolve("../../../g", "http://a/g");
    check_resolve("../../../../g", "http://a/g");
    check_resolve("/./g", "http://a/g");
    check_resolve("/../g", "http://a/g");
    check_resolve("g.", "http://a/b/c/g.");
    check_resolve(".g", "http://a/b/c/.g");
    check_resolve("g..", "http://a/b/c/g..");
    check_resolve("..g", "http://a/b/c/..g");
    check_resolve("./../g", "http://a/b/g");
    check_resolve("./g/.", "http://a/b/c/g/");
    check_resolve("g/./h", "http://a/b/c/g/h");
    check_resolve("g/../h", "http://a/b/c/h");
    check_resolve("g;x=1/./y", "http://a/b/c/g;x=1/y");
    check_resolve("g;x=1/../y", "http://a/b/c/y");
    check_resolve("g?y/./x", "http://a/b/c/g?y/./x");
    check_resolve("g?y/../x", "http://a/b/c/g?y/../x");
    check_resolve("g#s/./x", "http://a/b/c/g#s/./x");
    check_resolve("g#s/../x", "http://a/b/c/g#s/../x");
    check_resolve("http:g", "http:g");
}

static void check_norm(const char *in, const char *want)
{
    char *out = NULL;
    assert_int_equal(url_normalize(in, strlen(in), &out), URL_OK);
    if (strcmp(out, want) != 0)
        fail_msg("normalize(%s) = %s, want %s", in, out, want);
    free(out);
}

static void test_normalize_case_percent_dots_and_default_port(void **st)
{
    check_norm("HTTP://Video.Example.COM:80/a/./b/../c%7e%2f?X=%3a", "http://video.example.com/a/c~%2F?X=%3A");
    check_norm("https://h:443", "https://h/");
    check_norm("https://h:8443/x", "https://h:8443/x");
    check_norm("http://[2001:DB8::1]:8080/", "http://[2001:db8::1]:8080/");
}

static void test_parse_splits_components(void **st)
{
    const char *s = "http://user@host.example:8080/p/a?q=1#f";
    url_ref u;
    assert_int_equal(url_parse(s, strlen(s), &u), URL_OK);
    assert_int_equal(u.host.len, strlen("host.example"));
    assert_memory_equal(s + u.host.off, "host.example", u.host.len);
    assert_int_equal(url_port(s, &u), 8080);
    assert_memory_equal(s + u.path.off, "/p/a", u.path.len);
    assert_memory_equal(s + u.query.off, "q=1", u.query.len);
    assert_true(u.fragment.present);
}

static void test_parse_refuses_spaces_controls_bad_escapes_and_long_input(void **st)
{
    url_ref u;
    const char *bad[] = {"http://h/a b", "http://h/a\x01", "http://h/%zz", "http://h:99999/",
                         "http://[zz]/", "1http://h/"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(url_parse(bad[i], strlen(bad[i]), &u), URL_ERR_SYNTAX);
    char *big = malloc(URL_MAX_LEN + 2);
    memset(big, 'a', URL_MAX_LEN + 1);
    assert_int_equal(url_parse(big, URL_MAX_LEN + 1, &u), URL_ERR_TOO_LONG);
    free(big);
}

static void test_parse_never_reads_past_length(void **st)
{
    /* The bytes after the given length would be a syntax error. */
    const char s[] = "http://h/ok zzz";
    url_ref u;
    assert_int_equal(url_parse(s, strlen("http://h/ok"), &u), URL_OK);
    assert_int_equal(u.path.len, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resolve_normal_examples_of_rfc3986_5_4_1),
        cmocka_unit_test(test_resolve_abnormal_examples_of_rfc3986_5_4_2),
        cmocka_unit_test(test_normalize_case_percent_dots_and_default_port),
        cmocka_unit_test(test_parse_splits_components),
        cmocka_unit_test(test_parse_refuses_spaces_controls_bad_escapes_and_long_input),
        cmocka_unit_test(test_parse_never_reads_past_length),
    };
    return cmocka_run_group_tests_name("url", tests, NULL, NULL);
}
