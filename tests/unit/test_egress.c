/* The egress policy's decisions (common/egress.h): which URLs may be
 * fetched and which resolved addresses may be connected to. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "common/egress.h"

static ipt_addr addr(const char *s)
{
    ipt_addr a;
    if (!ipt_parse_addr(s, strlen(s), &a))
        fail_msg("bad address %s", s);
    return a;
}

/* an IPv6 address kept as IPv6 (ipt_parse_addr folds ::ffff:a.b.c.d) */
static ipt_addr addr6(const char *s)
{
    ipt_addr a = {.v6 = 1};
    if (inet_pton(AF_INET6, s, a.bytes) != 1)
        fail_msg("bad address %s", s);
    return a;
}

static void test_special_purpose_addresses_are_classified_and_public_ones_are_not(void **st)
{
    const char *special4[] = {"127.0.0.1", "127.255.0.9", "10.1.2.3", "172.16.0.1", "172.31.255.255",
                              "192.168.1.1", "169.254.169.254", "100.64.0.1", "100.127.255.254", "0.0.0.0",
                              "0.1.2.3", "224.0.0.1", "239.255.255.250", "255.255.255.255", "240.0.0.1",
                              "192.0.2.1", "198.51.100.7", "203.0.113.9", "198.18.0.1", "192.0.0.8"};
    for (size_t i = 0; i < sizeof special4 / sizeof *special4; i++) {
        ipt_addr a = addr(special4[i]);
        if (!egress_special(&a))
            fail_msg("%s taken as public", special4[i]);
    }
    const char *special6[] = {"::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "::ffff:127.0.0.1",
                              "::ffff:10.0.0.1", "64:ff9b::7f00:1", "64:ff9b::a00:1", "2002:7f00:1::1",
                              "2002:c0a8:101::", "::7f00:1", "2001:db8::1", "64:ff9b:1::1", "fec0::1", "2001::1",
                              "100::1"};
    for (size_t i = 0; i < sizeof special6 / sizeof *special6; i++) {
        ipt_addr a = addr6(special6[i]);
        if (!egress_special(&a))
            fail_msg("%s taken as public", special6[i]);
    }
    const char *public_[] = {"8.8.8.8", "1.1.1.1", "93.184.216.34", "172.32.0.1", "100.128.0.1", "11.0.0.1",
                             "223.255.255.255"};
    for (size_t i = 0; i < sizeof public_ / sizeof *public_; i++) {
        ipt_addr a = addr(public_[i]);
        if (egress_special(&a))
            fail_msg("%s taken as %s", public_[i], egress_special(&a));
    }
    const char *public6[] = {"2001:4860:4860::8888", "2a00:1450::1", "::ffff:8.8.8.8", "64:ff9b::808:808",
                             "2002:808:808::1"};
    for (size_t i = 0; i < sizeof public6 / sizeof *public6; i++) {
        ipt_addr a = addr6(public6[i]);
        if (egress_special(&a))
            fail_msg("%s taken as %s", public6[i], egress_special(&a));
    }
    ipt_addr lo = addr("127.0.0.1");
    assert_string_equal(egress_special(&lo), "loopback");
}

/* Reproduction 6 of the trust boundaries issue: every spelling of an
 * internal address in an origin_url. */
static void test_urls_with_other_schemes_credentials_or_numeric_hosts_are_refused(void **st)
{
    egress_policy *p = egress_new(true);
    egress_target t;
    struct {
        const char *url;
        egress_verdict want;
    } cases[] = {
        {"http://2130706433/x", EGRESS_BAD_URL},
        {"http://127.1/x", EGRESS_BAD_URL},
        {"http://0x7f000001/x", EGRESS_BAD_URL},
        {"http://user:pw@127.0.0.1/x", EGRESS_USERINFO},
        {"http://@origin.example/x", EGRESS_USERINFO},
        {"file:///etc/passwd", EGRESS_SCHEME},
        {"gopher://127.0.0.1:6379/_INFO", EGRESS_SCHEME},
        {"ftp://origin.example/x", EGRESS_SCHEME},
        {"dict://127.0.0.1:11211/stat", EGRESS_SCHEME},
        {"/relative", EGRESS_BAD_URL},
        {"http:///x", EGRESS_BAD_URL},
        {"http://[::1/x", EGRESS_BAD_URL},
        {"http://origin.example:99999/x", EGRESS_BAD_URL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        egress_verdict v = egress_check_url(p, cases[i].url, strlen(cases[i].url), &t);
        if (v != cases[i].want)
            fail_msg("%s: %s, want %s", cases[i].url, egress_verdict_text(v), egress_verdict_text(cases[i].want));
    }
    assert_int_equal(egress_check_url(p, "HTTPS://Origin.Example.:443/a", strlen("HTTPS://Origin.Example.:443/a"), &t), EGRESS_OK);
    assert_string_equal(t.host, "origin.example");
    assert_int_equal(t.port, 443);
    assert_true(t.https);
    assert_false(t.named);
    /* the URL passes; the addresses it resolves to decide */
    const char *internal[] = {"127.0.0.1", "10.0.0.1", "169.254.169.254", "::ffff:127.0.0.1"};
    assert_int_equal(egress_check_url(p, "http://localhost/", strlen("http://localhost/"), &t), EGRESS_OK);
    for (size_t i = 0; i < sizeof internal / sizeof *internal; i++) {
        ipt_addr a = strchr(internal[i], ':') ? addr6(internal[i]) : addr(internal[i]);
        assert_int_equal(egress_check_addr(p, &t, &a), EGRESS_ADDRESS);
    }
    ipt_addr pub = addr("93.184.216.34");
    assert_int_equal(egress_check_addr(p, &t, &pub), EGRESS_OK);
    egress_free(p);
}

static void test_allow_entries_name_addresses_prefixes_hosts_and_ports(void **st)
{
    egress_policy *p = egress_new(true);
    char why[200];
    assert_true(egress_allow(p, "127.0.0.1:8090", why, sizeof why));
    assert_true(egress_allow(p, "10.20.0.0/16", why, sizeof why));
    assert_true(egress_allow(p, "[fd00::/8]:443", why, sizeof why));
    assert_true(egress_allow(p, "Origin.Internal.", why, sizeof why));
    assert_true(egress_allow(p, "media.internal:8443", why, sizeof why));
    egress_target t;
    ipt_addr lo = addr("127.0.0.1"), lo2 = addr("127.0.0.2"), ten = addr("10.20.3.4"), ten2 = addr("10.21.0.1"),
             fd = addr6("fd00::5");
    egress_check_url(p, "http://127.0.0.1:8090/v", strlen("http://127.0.0.1:8090/v"), &t);
    assert_int_equal(egress_check_addr(p, &t, &lo), EGRESS_OK);
    assert_int_equal(egress_check_addr(p, &t, &lo2), EGRESS_ADDRESS); /* another internal host */
    egress_check_url(p, "http://127.0.0.1:8091/v", strlen("http://127.0.0.1:8091/v"), &t);
    assert_int_equal(egress_check_addr(p, &t, &lo), EGRESS_ADDRESS); /* another port */
    assert_int_equal(egress_check_addr(p, &t, &ten), EGRESS_OK);     /* a prefix of any port */
    assert_int_equal(egress_check_addr(p, &t, &ten2), EGRESS_ADDRESS);
    egress_check_url(p, "https://[fd00::5]/", strlen("https://[fd00::5]/"), &t);
    assert_int_equal(egress_check_addr(p, &t, &fd), EGRESS_OK);
    egress_check_url(p, "http://[fd00::5]/", strlen("http://[fd00::5]/"), &t);
    assert_int_equal(egress_check_addr(p, &t, &fd), EGRESS_ADDRESS);
    /* a name the operator vouches for reaches what it resolves to */
    egress_check_url(p, "http://origin.internal/x", strlen("http://origin.internal/x"), &t);
    assert_true(t.named);
    assert_int_equal(egress_check_addr(p, &t, &lo2), EGRESS_OK);
    egress_check_url(p, "http://media.internal/x", strlen("http://media.internal/x"), &t);
    assert_false(t.named); /* port 80, the entry says 8443 */
    egress_check_url(p, "https://media.internal:8443/x", strlen("https://media.internal:8443/x"), &t);
    assert_true(t.named);
    const char *bad[] = {"", "10.0.0.0/33", "[::1", "::1", "a b", "x.example:0", "x.example:65536", "127.1",
                         "[::1]x", "host/8"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (egress_allow(p, bad[i], why, sizeof why))
            fail_msg("entry \"%s\" accepted", bad[i]);
    egress_free(p);
}

static void test_without_public_addresses_only_the_entries_pass(void **st)
{
    egress_policy *p = egress_new(false);
    char why[100];
    assert_true(egress_allow(p, "198.51.100.0/24", why, sizeof why));
    assert_true(egress_allow_origin(p, "https://dcdn.example:9443/triggers"));
    assert_false(egress_allow_origin(p, "ftp://dcdn.example/"));
    egress_target t;
    ipt_addr pub = addr("93.184.216.34"), doc = addr("198.51.100.9");
    egress_check_url(p, "http://origin.example/", strlen("http://origin.example/"), &t);
    assert_int_equal(egress_check_addr(p, &t, &pub), EGRESS_NOT_ALLOWED);
    assert_int_equal(egress_check_addr(p, &t, &doc), EGRESS_OK);
    egress_check_url(p, "https://DCDN.example:9443/triggers/1", strlen("https://DCDN.example:9443/triggers/1"), &t);
    assert_true(t.named);
    egress_free(p);
}

static void test_policy_from_config_names_the_bad_entry(void **st)
{
    jerr e = {0};
    json_t *v = json_loads("{\"allow\": [\"127.0.0.1:8090\", \"10.0.0.0/99\"]}", 0, NULL);
    assert_null(egress_from_json(v, "$.egress", &e));
    assert_string_equal(e.path, "$.egress.allow[1]");
    json_decref(v);
    v = json_loads("{\"allow\": [\"127.0.0.1:8090\"], \"allow_public\": false, \"x\": 1}", 0, NULL);
    assert_null(egress_from_json(v, "$.egress", &e));
    json_decref(v);
    v = json_loads("{\"allow\": [\"127.0.0.1:8090\"], \"allow_public\": false}", 0, NULL);
    egress_policy *p = egress_from_json(v, "$.egress", &e);
    assert_non_null(p);
    egress_free(p);
    json_decref(v);
    p = egress_from_json(NULL, "$.egress", &e); /* absent: public addresses only */
    assert_non_null(p);
    egress_target t;
    ipt_addr lo = addr("127.0.0.1");
    egress_check_url(p, "http://127.0.0.1/", strlen("http://127.0.0.1/"), &t);
    assert_int_equal(egress_check_addr(p, &t, &lo), EGRESS_ADDRESS);
    egress_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_special_purpose_addresses_are_classified_and_public_ones_are_not),
        cmocka_unit_test(test_urls_with_other_schemes_credentials_or_numeric_hosts_are_refused),
        cmocka_unit_test(test_allow_entries_name_addresses_prefixes_hosts_and_ports),
        cmocka_unit_test(test_without_public_addresses_only_the_entries_pass),
        cmocka_unit_test(test_policy_from_config_names_the_bad_entry),
    };
    return cmocka_run_group_tests_name("egress", tests, NULL, NULL);
}
