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

static void check_target(const char *in, const char *want)
{
    char out[512];
    size_t n, pl;
    url_canon_status st = url_canon_target(in, strlen(in), out, sizeof out, &n, &pl);
    if (st != URL_CANON_OK)
        fail_msg("canon(%s): %s", in, url_canon_text(st));
    if (strcmp(out, want) != 0)
        fail_msg("canon(%s) = %s, want %s", in, out, want);
    assert_int_equal(n, strlen(out));
    assert_int_equal(pl, strcspn(out, "?"));
    char again[512];
    size_t n2, pl2;
    assert_int_equal(url_canon_target(out, n, again, sizeof again, &n2, &pl2), URL_CANON_OK);
    assert_string_equal(again, out); /* a fixed point */
}

static void check_target_refused(const char *in, size_t len, url_canon_status want)
{
    char out[512];
    size_t n, pl;
    url_canon_status st = url_canon_target(in, len, out, sizeof out, &n, &pl);
    if (st != want)
        fail_msg("canon(%.*s) = %s, want %s", (int)len, in, url_canon_text(st), url_canon_text(want));
}

/* Each spelling that once reached the origin without a token (the trust
 * boundaries issue, reproduction 5) is the one canonical path. */
static void test_canonical_target_is_one_spelling_per_resource(void **st)
{
    check_target("/vod/x/../m1/seg_1.ts", "/vod/m1/seg_1.ts");
    check_target("/vod/%6d1/seg_1.ts", "/vod/m1/seg_1.ts");
    check_target("/vod//m1/seg_1.ts", "/vod/m1/seg_1.ts");
    check_target("/./vod/m1/seg_1.ts", "/vod/m1/seg_1.ts");
    check_target("/vod/%2e%2e/vod/m1/seg_1.ts", "/vod/m1/seg_1.ts");
    check_target("/vod/%2E/m1/./seg_1.ts", "/vod/m1/seg_1.ts");
    check_target("/../../vod/m1/seg_1.ts", "/vod/m1/seg_1.ts");
    check_target("/vod/m1/..", "/vod/");
    check_target("/..", "/");
    check_target("/.", "/");
    check_target("/", "/");
    check_target("//", "/");
    check_target("/a/%7e%41%2d%5f", "/a/~A-_");
}

static void test_canonical_target_normalizes_percent_encoding_and_raw_bytes(void **st)
{
    check_target("/a%3b%3F%25/b?q=%2f%3a%7E&r=%5c", "/a%3B%3F%25/b?q=%2F%3A~&r=%5C");
    check_target("/a|b^c{d}?x=[1]|2", "/a%7Cb%5Ec%7Bd%7D?x=%5B1%5D%7C2");
    check_target("/caf\xc3\xa9", "/caf%C3%A9");
    check_target("/v/m;URISigningPackage=e30.e30.s-_/seg.ts?a=1", "/v/m;URISigningPackage=e30.e30.s-_/seg.ts?a=1");
    check_target("/a?", "/a");
    check_target("/a?/../b//c?d", "/a?/../b//c?d"); /* the query is data: no path rules */
    check_target("/a/b/?x=\\", "/a/b/?x=%5C");
}

static void test_canonical_target_refuses_second_spellings_of_slash_and_nul(void **st)
{
    check_target_refused("/vod/m1%2fseg_1.ts", 18, URL_CANON_ENCODED_SLASH);
    check_target_refused("/vod/m1%2Fseg_1.ts", 18, URL_CANON_ENCODED_SLASH);
    check_target_refused("/vod\\m1", 7, URL_CANON_BACKSLASH);
    check_target_refused("/vod%5cm1", 9, URL_CANON_BACKSLASH);
    check_target_refused("/vod%00.ts", 10, URL_CANON_NUL);
    check_target_refused("/a%2", 4, URL_CANON_BAD_PERCENT);
    check_target_refused("/a%zz", 5, URL_CANON_BAD_PERCENT);
    check_target_refused("/a b", 4, URL_CANON_CONTROL);
    check_target_refused("/a\x7f", 3, URL_CANON_CONTROL);
    check_target_refused("/a\0b", 4, URL_CANON_CONTROL);
    check_target_refused("/a#f", 4, URL_CANON_FRAGMENT);
    check_target_refused("a/b", 3, URL_CANON_NOT_ORIGIN_FORM);
    check_target_refused("http://h/a", 10, URL_CANON_NOT_ORIGIN_FORM);
    check_target_refused("", 0, URL_CANON_NOT_ORIGIN_FORM);
    /* the length given is the end, whatever follows it */
    check_target_refused("/ok%2", 3, URL_CANON_OK);
    char out[8];
    size_t n, pl;
    assert_int_equal(url_canon_target("/abcdefgh", 9, out, sizeof out, &n, &pl), URL_CANON_TOO_LONG);
    assert_int_equal(url_canon_target("/|", 2, out, 4, &n, &pl), URL_CANON_TOO_LONG);
}

static void check_host(const char *in, bool idna, const char *want, size_t want_name)
{
    char out[300];
    size_t nl;
    url_canon_status st = url_canon_host(in, strlen(in), idna, out, sizeof out, &nl);
    if (st != URL_CANON_OK)
        fail_msg("host(%s): %s", in, url_canon_text(st));
    if (strcmp(out, want) != 0)
        fail_msg("host(%s) = %s, want %s", in, out, want);
    assert_int_equal(nl, want_name);
    char again[300];
    assert_int_equal(url_canon_host(out, strlen(out), idna, again, sizeof again, NULL), URL_CANON_OK);
    assert_string_equal(again, out);
}

/* Reproduction 3: "video.example.com:80" is "video.example.com". */
static void test_canonical_host_drops_case_trailing_dot_and_default_ports(void **st)
{
    check_host("Video.Example.COM", false, "video.example.com", 17);
    check_host("video.example.com.", false, "video.example.com", 17);
    check_host("video.example.com:80", false, "video.example.com", 17);
    check_host("video.example.com:443", false, "video.example.com", 17);
    check_host("video.example.com.:0080", false, "video.example.com", 17);
    check_host("video.example.com:8080", false, "video.example.com:8080", 17);
    check_host("video.example.com:", false, "video.example.com", 17);
    check_host("127.0.0.1:9085", false, "127.0.0.1:9085", 9);
    check_host("[2001:DB8:0:0::1]:8080", false, "[2001:db8::1]:8080", 13);
    check_host("[::FFFF:127.0.0.1]", false, "[::ffff:127.0.0.1]", 18);
    check_host("b\xc3\xbc" "cher.example", true, "xn--bcher-kva.example", 21);
    check_host("XN--BCHER-KVA.example", false, "xn--bcher-kva.example", 21);
    check_host("a_b.example", false, "a_b.example", 11);
}

static void test_canonical_host_refuses_numeric_forms_and_bad_names(void **st)
{
    const char *bad[] = {"2130706433", "127.1", "0x7f000001", "0x7f.0.0.1", "127.0.0.01", "256.0.0.1",
                         "a..b", ".a", "a b", "a/b", "", "[::1", "[zz]", "[fe80::1%25eth0]", "a.example:x",
                         "a.example:65536", "a.example:0", "b\xc3\xbc" "cher.example", "[::1]x",
                         "1.2.3.4.5", "example.123"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char out[300];
        if (url_canon_host(bad[i], strlen(bad[i]), false, out, sizeof out, NULL) == URL_CANON_OK)
            fail_msg("host(%s) accepted as %s", bad[i], out);
    }
    char label[80];
    memset(label, 'a', 64);
    strcpy(label + 64, ".example");
    char out[300];
    assert_int_not_equal(url_canon_host(label, strlen(label), false, out, sizeof out, NULL), URL_CANON_OK);
}

static void test_same_origin_compares_scheme_canonical_host_and_effective_port(void **st)
{
    assert_true(url_same_origin("http://Dcdn.Example/triggers", "http://dcdn.example:80/triggers/12"));
    assert_true(url_same_origin("https://a.example:443/x", "https://A.EXAMPLE./y"));
    assert_false(url_same_origin("http://a.example/x", "https://a.example/x"));
    assert_false(url_same_origin("http://a.example/x", "http://a.example:8080/x"));
    assert_false(url_same_origin("http://a.example/x", "http://a.example.evil/x"));
    assert_false(url_same_origin("http://a.example/x", "/relative"));
    assert_false(url_same_origin("http://a.example/x", "http://127.1/x"));
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
        cmocka_unit_test(test_canonical_target_is_one_spelling_per_resource),
        cmocka_unit_test(test_canonical_target_normalizes_percent_encoding_and_raw_bytes),
        cmocka_unit_test(test_canonical_target_refuses_second_spellings_of_slash_and_nul),
        cmocka_unit_test(test_canonical_host_drops_case_trailing_dot_and_default_ports),
        cmocka_unit_test(test_canonical_host_refuses_numeric_forms_and_bad_names),
        cmocka_unit_test(test_same_origin_compares_scheme_canonical_host_and_effective_port),
    };
    return cmocka_run_group_tests_name("url", tests, NULL, NULL);
}
