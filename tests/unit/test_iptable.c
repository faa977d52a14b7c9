/* IP prefix table: hand-made nesting cases, then random prefix sets checked
 * against a brute-force longest-prefix match, with and without DIR-24-8. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/iptable.h"

static iptable *build(const char *const *prefixes, size_t n, int dir24)
{
    iptable_builder *b = iptb_new();
    for (size_t i = 0; i < n; i++) {
        ipt_addr a;
        unsigned len;
        assert_true(ipt_parse_prefix(prefixes[i], strlen(prefixes[i]), &a, &len));
        assert_true(iptb_add(b, &a, len, (uint32_t)(100 + i)));
    }
    iptable *t = iptb_build(b, dir24);
    assert_non_null(t);
    return t;
}

static uint32_t look(const iptable *t, const char *ip)
{
    ipt_addr a;
    assert_true(ipt_parse_addr(ip, strlen(ip), &a));
    return ipt_lookup(t, &a);
}

static void nested(int dir24)
{
    static const char *const p[] = {"10.0.0.0/8",   "10.1.0.0/16",      "10.1.2.0/24",
                                    "10.1.2.128/25", "0.0.0.0/0",       "2001:db8::/32",
                                    "2001:db8:1::/48", "10.1.2.200/32", "10.1.0.0/16",
                                    "192.0.2.77/24"};
    iptable *t = build(p, sizeof p / sizeof p[0], dir24);
    assert_int_equal(look(t, "10.1.2.3"), 2);
    assert_int_equal(look(t, "10.1.2.130"), 3);
    assert_int_equal(look(t, "10.1.2.200"), 7);
    assert_int_equal(look(t, "10.1.3.1"), 8); /* duplicate /16: the later one */
    assert_int_equal(ipt_entry_at(t, 8)->parent, 1);
    assert_int_equal(ipt_entry_at(t, 1)->parent, 0);
    assert_int_equal(ipt_entry_at(t, 0)->parent, 4);
    assert_int_equal(ipt_entry_at(t, 4)->parent, IPT_NONE);
    assert_int_equal(ipt_entry_at(t, 3)->parent, 2);
    assert_int_equal(look(t, "10.200.0.1"), 0);
    assert_int_equal(look(t, "11.0.0.0"), 4);
    assert_int_equal(look(t, "255.255.255.255"), 4);
    assert_int_equal(look(t, "192.0.2.1"), 9); /* host bits were masked */
    assert_int_equal(look(t, "2001:db8:1::5"), 6);
    assert_int_equal(look(t, "2001:db8:2::5"), 5);
    assert_int_equal(look(t, "2001:db9::1"), IPT_NONE);
    assert_int_equal(look(t, "::ffff:10.1.2.3"), 2); /* v4-mapped is IPv4 */
    assert_int_equal(ipt_entry_at(t, 2)->value, 102);
    assert_int_equal(ipt_has_dir24(t), dir24 == 1);
    ipt_free(t);
}
static void test_nested_binary_search(void **st) { nested(0); }
static void test_nested_dir24(void **st) { nested(1); }

static void test_empty_and_full(void **st)
{
    iptable *t = iptb_build(iptb_new(), 1);
    assert_non_null(t);
    assert_int_equal(look(t, "1.2.3.4"), IPT_NONE);
    assert_int_equal(look(t, "::1"), IPT_NONE);
    ipt_free(t);
    static const char *const p[] = {"255.255.255.255/32", "::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"};
    t = build(p, 3, 1);
    assert_int_equal(look(t, "255.255.255.255"), 0);
    assert_int_equal(look(t, "255.255.255.254"), IPT_NONE);
    assert_int_equal(look(t, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), 2);
    assert_int_equal(look(t, "::"), 1);
    ipt_free(t);
}

static void test_parse_rejects(void **st)
{
    ipt_addr a;
    unsigned len;
    static const char *const bad[] = {"10.0.0.0", "10.0.0.0/33", "10.0.0.0/", "/8", "10.0.0/8",
                                      "2001:db8::/129", "10.0.0.0/-1", "10.0.0.0/8x", "x/8",
                                      "10.0.0.0/0008"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (ipt_parse_prefix(bad[i], strlen(bad[i]), &a, &len))
            fail_msg("accepted %s", bad[i]);
    assert_false(ipt_parse_addr("1.2.3.4\0", 8, &a));
    assert_false(ipt_parse_addr("", 0, &a));
    /* length-bounded: the text after n is not read */
    assert_true(ipt_parse_prefix("10.0.0.0/8garbage", 10, &a, &len));
    assert_int_equal(len, 8);
    char buf[IPT_TEXT_MAX];
    assert_true(ipt_parse_prefix("2001:DB8::7/32", 14, &a, &len));
    ipt_format_prefix(&a, len, buf, sizeof buf);
    assert_string_equal(buf, "2001:db8::/32");
}

/* --- randomized against brute force ------------------------------------- */
static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}

typedef struct {
    uint32_t a;
    unsigned len;
} p4;

static uint32_t brute(const p4 *p, size_t n, uint32_t x)
{
    uint32_t best = IPT_NONE;
    int bl = -1;
    for (size_t i = 0; i < n; i++) {
        uint32_t m = p[i].len ? ~0u << (32 - p[i].len) : 0;
        if ((x & m) == (p[i].a & m) && (int)p[i].len >= bl) /* later duplicates win */
            best = (uint32_t)i, bl = (int)p[i].len;
    }
    return best;
}

static void randomized(int dir24)
{
    enum { N = 3000, Q = 20000 };
    p4 *p = malloc(N * sizeof *p);
    iptable_builder *b = iptb_new();
    for (size_t i = 0; i < N; i++) {
        /* cluster in 10.0.0.0/12 so prefixes nest a lot */
        p[i].a = 0x0a000000u | (rnd() & 0x000fffffu);
        p[i].len = 12 + rnd() % 21;
        if (i % 97 == 0)
            p[i].len = 8 + rnd() % 4;
        uint32_t m = ~0u << (32 - p[i].len);
        p[i].a &= m;
        ipt_addr a = {0};
        a.bytes[0] = (uint8_t)(p[i].a >> 24), a.bytes[1] = (uint8_t)(p[i].a >> 16);
        a.bytes[2] = (uint8_t)(p[i].a >> 8), a.bytes[3] = (uint8_t)p[i].a;
        assert_true(iptb_add(b, &a, p[i].len, (uint32_t)i));
    }
    iptable *t = iptb_build(b, dir24);
    assert_non_null(t);
    for (size_t q = 0; q < Q; q++) {
        uint32_t x = q % 2 ? 0x0a000000u | (rnd() & 0x000fffffu) : rnd();
        if (q % 5 == 0)
            x = p[rnd() % N].a + (rnd() % 3) - 1; /* boundaries */
        uint32_t got = ipt_lookup4(t, x), want = brute(p, N, x);
        if (got != want)
            fail_msg("lookup %08x: got %u want %u", x, got, want);
    }
    ipt_free(t);
    free(p);
}
static void test_random_binary_search(void **st) { randomized(0); }
static void test_random_dir24(void **st) { randomized(1); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nested_binary_search), cmocka_unit_test(test_nested_dir24),
        cmocka_unit_test(test_empty_and_full),       cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_random_binary_search), cmocka_unit_test(test_random_dir24),
    };
    return cmocka_run_group_tests_name("iptable", tests, NULL, NULL);
}
