/* ucdn dCDN selection (pure): coverage by longest prefix and by geo,
 * capability checks, availability and load, policy rules, ranking, weights
 * and content hashing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "ucdn/routing.h"

#define NOW 1000000000LL

static fci_set *caps(const char *fps_json, const char *metadata)
{
    char doc[4096];
    snprintf(doc, sizeof doc,
             "{\"capabilities\":["
             "{\"capability-type\":\"FCI.DeliveryProtocol\",\"capability-value\":{\"delivery-protocols\":[\"http/1.1\"]}%s%s},"
             "{\"capability-type\":\"FCI.RedirectionMode\",\"capability-value\":{\"redirection-modes\":[\"HTTP-I\"]}},"
             "{\"capability-type\":\"FCI.RedirectTarget\",\"capability-value\":{\"http-target\":{\"host\":\"rr.example\"}}},"
             "{\"capability-type\":\"FCI.Metadata\",\"capability-value\":{\"metadata\":[%s]}}]}",
             fps_json ? ",\"footprints\":" : "", fps_json ? fps_json : "", metadata);
    jerr e;
    fci_set *s = fci_parse(doc, strlen(doc), &e);
    if (!s)
        fail_msg("%s: %s", e.path, e.reason);
    return s;
}

static route_peer peer(const char *id, long long prio, long long weight)
{
    route_peer p = {.id = id, .priority = prio, .weight = weight, .max_load = 0.9, .enabled = true};
    p.id_hash = route_hash(id, strlen(id));
    atomic_init(&p.last_hb_ms, NOW - 1000);
    atomic_init(&p.load_milli, 100);
    atomic_init(&p.ri_down_until_ms, 0);
    return p;
}

static route_req req(const char *ip)
{
    route_req q = {.host = "video.example.com", .path = "/vod/a.ts", .content_type = CT_SEGMENT,
                   .now_ms = NOW, .hb_timeout_ms = 180000};
    assert_true(ipt_parse_addr(ip, strlen(ip), &q.client.ip));
    return q;
}

static const char *V4(const char *p)
{
    static char b[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(b[k], sizeof b[k], "[{\"footprint-type\":\"ipv4cidr\",\"footprint-value\":[%s]}]", p);
    return b[k];
}

static void test_most_specific_footprint_wins_then_fallbacks(void **st)
{
    route_peer peers[3] = {peer("wide", 10, 1), peer("narrow", 10, 1), peer("geo", 10, 1)};
    fci_set **f = calloc(3, sizeof *f);
    f[0] = caps(V4("\"10.0.0.0/8\""), "\"MI.SourceMetadata\"");
    f[1] = caps(V4("\"10.1.0.0/16\""), "\"MI.SourceMetadata\"");
    f[2] = caps("[{\"footprint-type\":\"countrycode\",\"footprint-value\":[\"FR\"]}]", "\"MI.SourceMetadata\"");
    route_snap *s = route_snap_build(peers, 3, f);
    assert_non_null(s);
    route_eval ev[3];
    int rule;
    route_req q = req("10.1.2.3");
    assert_int_equal(route_select(s, NULL, 0, &q, ev, &rule), 1);
    assert_int_equal(ev[1].plen, 16);
    assert_int_equal(ev[0].why, RW_RANKED_LOWER);
    assert_int_equal(ev[2].why, RW_NOT_COVERED);
    q = req("10.2.0.1");
    assert_int_equal(route_select(s, NULL, 0, &q, ev, &rule), 0);
    assert_int_equal(ev[1].why, RW_NOT_COVERED);
    /* a French client outside the prefixes: only the geo footprint */
    q = req("192.0.2.1");
    strcpy(q.client.country, "FR");
    assert_int_equal(route_select(s, NULL, 0, &q, ev, &rule), 2);
    /* the narrow one goes silent, then overloaded: the wide one takes over */
    q = req("10.1.2.3");
    atomic_store(&peers[1].last_hb_ms, NOW - 200000);
    assert_int_equal(route_select(s, NULL, 0, &q, ev, &rule), 0);
    assert_int_equal(ev[1].why, RW_UNAVAILABLE);
    atomic_store(&peers[1].last_hb_ms, NOW);
    atomic_store(&peers[1].load_milli, 950);
    assert_int_equal(route_select(s, NULL, 0, &q, ev, &rule), 0);
    assert_int_equal(ev[1].why, RW_OVERLOADED);
    /* excluded after an RI failure */
    atomic_store(&peers[1].load_milli, 0);
    q.exclude = 1u << 1;
    assert_int_equal(route_select(s, NULL, 0, &q, ev, &rule), 0);
    assert_int_equal(ev[1].why, RW_RI_FAILED);
    /* nobody */
    q = req("172.16.0.1");
    assert_int_equal(route_select(s, NULL, 0, &q, ev, &rule), -1);
    route_snap_free(s);
}

static void test_capabilities_must_cover_the_request(void **st)
{
    route_peer peers[2] = {peer("a", 1, 1), peer("b", 2, 1)};
    fci_set **f = calloc(2, sizeof *f);
    f[0] = caps(NULL, "\"MI.SourceMetadata\"");
    f[1] = caps(NULL, "\"MI.SourceMetadata\", \"MI.UriSigning\"");
    route_snap *s = route_snap_build(peers, 2, f);
    mi_generic g[2] = {{.type = "MI.SourceMetadata", .mandatory_to_enforce = true},
                       {.type = "MI.UriSigning", .mandatory_to_enforce = true}};
    mi_resolution res = {.effective = {&g[0], &g[1]}, .n_effective = 2};
    route_eval ev[2];
    int rule;
    route_req q = req("198.51.100.1");
    q.res = &res;
    assert_int_equal(route_select(s, NULL, 0, &q, ev, &rule), 1);
    assert_int_equal(ev[0].why, RW_METADATA);
    assert_string_equal(ev[0].missing, "MI.UriSigning");
    g[1].mandatory_to_enforce = false; /* not mandatory: a wins on priority */
    assert_int_equal(route_select(s, NULL, 0, &q, ev, &rule), 0);
    q.https = true; /* nobody advertised https/1.1 */
    assert_int_equal(route_select(s, NULL, 0, &q, ev, &rule), -1);
    assert_int_equal(ev[0].why, RW_DELIVERY_PROTOCOL);
    route_snap_free(s);
}

static void test_policy_rules_restrict_exclude_and_prefer(void **st)
{
    route_peer peers[3] = {peer("a", 1, 1), peer("b", 2, 1), peer("c", 3, 1)};
    fci_set **f = calloc(3, sizeof *f);
    for (int i = 0; i < 3; i++)
        f[i] = caps(NULL, "\"MI.SourceMetadata\"");
    route_snap *s = route_snap_build(peers, 3, f);
    const char *only_bc[] = {"b", "c", NULL}, *pref_c[] = {"c", NULL}, *excl_a[] = {"a", NULL};
    route_rule rules[2] = {{.path = "/live/*", .only = only_bc, .prefer = pref_c},
                           {.content_types = CT_HLS, .exclude = excl_a}};
    route_eval ev[3];
    int rule;
    route_req q = req("198.51.100.1");
    assert_int_equal(route_select(s, rules, 2, &q, ev, &rule), 0);
    assert_int_equal(rule, -1);
    q.path = "/live/x.ts";
    assert_int_equal(route_select(s, rules, 2, &q, ev, &rule), 2); /* preferred over priority */
    assert_int_equal(rule, 0);
    assert_int_equal(ev[0].why, RW_RULE_EXCLUDED);
    q.path = "/vod/m.m3u8";
    q.content_type = CT_HLS;
    assert_int_equal(route_select(s, rules, 2, &q, ev, &rule), 1);
    assert_int_equal(rule, 1);
    route_snap_free(s);
}

static void test_weights_and_content_hashing(void **st)
{
    route_peer peers[3] = {peer("a", 1, 1), peer("b", 1, 3), peer("c", 1, 0 + 1)};
    peers[2].enabled = false;
    fci_set **f = calloc(3, sizeof *f);
    for (int i = 0; i < 3; i++)
        f[i] = caps(NULL, "\"MI.SourceMetadata\"");
    route_snap *s = route_snap_build(peers, 3, f);
    route_eval ev[3];
    int rule, hits[3] = {0};
    route_req q = req("198.51.100.1");
    for (uint64_t i = 0; i < 4000; i++) {
        q.random = i * 2654435761u;
        hits[route_select(s, NULL, 0, &q, ev, &rule)]++;
    }
    assert_int_equal(hits[2], 0); /* disabled */
    assert_true(hits[1] > 2 * hits[0]); /* weight 3 against 1 */
    /* hashing: the same URI always goes to the same dCDN; URIs spread by weight */
    q.content_hashing = true;
    int first[200], spread[3] = {0};
    for (int i = 0; i < 200; i++) {
        char uri[32];
        snprintf(uri, sizeof uri, "/vod/seg_%d.ts", i);
        q.uri_hash = route_hash(uri, strlen(uri));
        q.random = (uint64_t)i * 7919;
        first[i] = route_select(s, NULL, 0, &q, ev, &rule);
        spread[first[i]]++;
        q.random = (uint64_t)i * 104729;
        assert_int_equal(route_select(s, NULL, 0, &q, ev, &rule), first[i]);
    }
    assert_true(spread[0] > 10 && spread[1] > spread[0]);
    /* a's removal moves only a's URIs */
    peers[0].enabled = false;
    for (int i = 0; i < 200; i++) {
        char uri[32];
        snprintf(uri, sizeof uri, "/vod/seg_%d.ts", i);
        q.uri_hash = route_hash(uri, strlen(uri));
        int now = route_select(s, NULL, 0, &q, ev, &rule);
        if (first[i] == 1)
            assert_int_equal(now, 1);
    }
    route_snap_free(s);
}

static void test_content_type_from_the_path(void **st)
{
    assert_int_equal(route_content_type("/a/master.m3u8", 14), CT_HLS);
    assert_int_equal(route_content_type("/a/m.MPD", 8), CT_DASH);
    assert_int_equal(route_content_type("/a/s.ts", 7), CT_SEGMENT);
    assert_int_equal(route_content_type("/a.b/index", 10), CT_OTHER);
    assert_int_equal(route_content_type("/", 1), CT_OTHER);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_most_specific_footprint_wins_then_fallbacks),
        cmocka_unit_test(test_capabilities_must_cover_the_request),
        cmocka_unit_test(test_policy_rules_restrict_exclude_and_prefer),
        cmocka_unit_test(test_weights_and_content_hashing),
        cmocka_unit_test(test_content_type_from_the_path),
    };
    return cmocka_run_group_tests_name("ucdn routing", tests, NULL, NULL);
}
