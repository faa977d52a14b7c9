/* RFC 8006 metadata: the RFC's example documents, malformed variants, the
 * PatternMatch rules of §4.1.5, and effective-metadata resolution. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "common/iptable.h"
#include "interfaces/metadata.h"
#include "testutil.h"

static const mi_policy publisher = {NULL, true}; /* uCDN / cdnictl check */
static const mi_policy consumer = {NULL, false}; /* dCDN */

/* Parse a document of either shape and check it serializes back equal. */
static void round_trip(const char *name)
{
    size_t len;
    char *buf = read_data(name, &len);
    assert_non_null(buf);
    jerr e = {0};
    json_t *orig = json_loadb(buf, len, 0, NULL);
    assert_non_null(orig);
    json_t *out;
    if (json_object_get(orig, "hosts")) {
        mi_host_index *x = mi_host_index_parse(buf, len, &publisher, &e);
        if (!x)
            fail_msg("%s: %s: %s", name, e.path, e.reason);
        out = mi_host_index_to_json(x);
        mi_host_index_free(x);
    } else {
        mi_node *n = mi_node_parse(buf, len, &publisher, &e);
        if (!n)
            fail_msg("%s: %s: %s", name, e.path, e.reason);
        out = mi_node_to_json(n);
        mi_node_free(n);
    }
    if (!json_equal(orig, out)) {
        char *s = json_dumps(out, JSON_COMPACT);
        fail_msg("%s does not round-trip: %s", name, s);
    }
    json_decref(orig);
    json_decref(out);
    free(buf);
}

/* RFC 8006 §4.1.1-4.1.6 and §4.2 examples */
static void test_rfc8006_examples_parse_validate_and_round_trip(void **st)
{
    round_trip("rfc8006/host-index.json");
    round_trip("rfc8006/host-metadata.json");
    round_trip("rfc8006/path-metadata.json");
    round_trip("rfc8006/generic-metadata-all.json");
}

static void expect_refused(const char *name, const mi_policy *pol, const char *path)
{
    size_t len;
    char *buf = read_data(name, &len);
    assert_non_null(buf);
    jerr e = {0};
    mi_node *n = mi_node_parse(buf, len, pol, &e);
    if (n)
        fail_msg("%s was accepted", name);
    if (strcmp(e.path, path) != 0)
        fail_msg("%s refused at %s (%s), want %s", name, e.path, e.reason, path);
    free(buf);
}

static void test_malformed_documents_are_refused_naming_the_json_path(void **st)
{
    expect_refused("bad/wrong-type.json", &publisher,
                   "$.metadata[0].generic-metadata-value.exclude-query-strings");
    expect_refused("bad/unknown-mandatory.json", &publisher, "$.metadata[1].generic-metadata-type");
    expect_refused("bad/missing-required.json", &consumer,
                   "$.paths[0].path-metadata.metadata[0].generic-metadata-value.sources[0].protocol");
    expect_refused("bad/bad-footprint.json", &consumer,
                   "$.metadata[0].generic-metadata-value.locations[0].footprints[0].footprint-value[0]");
    expect_refused("bad/bad-escape.json", &consumer, "$.paths[0].path-pattern.pattern");
    expect_refused("bad/truncated.json", &consumer, "$");
}

static void test_oversized_document_is_refused_before_parsing(void **st)
{
    size_t n = MI_MAX_DOC + 1;
    char *big = malloc(n);
    memset(big, ' ', n);
    jerr e = {0};
    assert_null(mi_node_parse(big, n, &consumer, &e));
    assert_string_equal(e.path, "$");
    assert_non_null(strstr(e.reason, "exceeds"));
    free(big);
}

/* Build an indexed HostIndex from inline JSON text. */
static mi_host_index *index_of(const char *json)
{
    jerr e = {0};
    mi_host_index *x = mi_host_index_parse(json, strlen(json), &consumer, &e);
    if (!x)
        fail_msg("%s: %s", e.path, e.reason);
    assert_true(mi_index_build(x));
    return x;
}

static const char *value_of(const mi_resolution *r, const char *type, const char *member)
{
    for (size_t i = 0; i < r->n_effective; i++)
        if (strcmp(r->effective[i]->type, type) == 0)
            return json_string_value(json_object_get(r->effective[i]->value, member));
    return NULL;
}

static mi_resolution resolve(const mi_host_index *x, const char *host, const char *target)
{
    mi_resolution r;
    assert_int_equal(mi_resolve(x, host, strlen(host), target, strlen(target), &r), MI_RESOLVED);
    return r;
}

#define G(ccid) "{\"generic-metadata-type\":\"MI.Grouping\",\"generic-metadata-value\":{\"ccid\":\"" ccid "\"}}"
#define P(pat, ...) "{\"path-pattern\":{\"pattern\":\"" pat "\"" __VA_ARGS__ "},\"path-metadata\":{\"metadata\":["
#define HOST(h, md, paths) "{\"hosts\":[{\"host\":\"" h "\",\"host-metadata\":{\"metadata\":[" md "],\"paths\":[" paths "]}}]}"

static void test_pathmatch_first_match_wins_in_document_order(void **st)
{
    mi_host_index *x = index_of(HOST("v.example", G("host"),
        P("/movies/*") G("movies") "]}}," P("/movies/special/*") G("special") "]}}"));
    mi_resolution r = resolve(x, "v.example", "/movies/special/a.ts");
    assert_string_equal(value_of(&r, "MI.Grouping", "ccid"), "movies");
    r = resolve(x, "v.example", "/other");
    assert_string_equal(value_of(&r, "MI.Grouping", "ccid"), "host");
    assert_int_equal(r.depth, 0);
    mi_host_index_free(x);
}

static void test_effective_metadata_inherits_and_deepest_object_of_a_type_wins(void **st)
{
    mi_host_index *x = index_of(HOST("v.example",
        G("host") ",{\"generic-metadata-type\":\"MI.Cache\",\"generic-metadata-value\":{\"exclude-query-strings\":[]}}",
        P("/a/*") G("a") "],\"paths\":[" P("/a/b/*") "{\"generic-metadata-type\":\"MI.UriSigning\",\"generic-metadata-value\":{}}]}}]}}"));
    mi_resolution r = resolve(x, "v.example", "/a/b/c");
    assert_int_equal(r.depth, 2);
    assert_int_equal(r.n_effective, 3);
    assert_string_equal(value_of(&r, "MI.Grouping", "ccid"), "a");
    assert_non_null(json_object_get(r.effective[1]->value, "exclude-query-strings"));
    assert_string_equal(r.effective[2]->type, "MI.UriSigning");
    mi_host_index_free(x);
}


/* --- enforcement: ACLs and the cache key --------------------------------------- */

static mi_facts facts(const char *ip, long long now, const char *proto)
{
    mi_facts f = {.now = now, .protocol = proto};
    ipt_addr a;
    assert_true(ipt_parse_addr(ip, strlen(ip), &a));
    memcpy(f.ip, a.bytes, 16);
    f.v6 = a.v6;
    return f;
}

#define ACL(type, value, mand) "{\"generic-metadata-type\":\"" type "\",\"generic-metadata-value\":" value \
    ",\"mandatory-to-enforce\":" mand "}"

static void test_location_acl_first_matching_rule_decides_and_no_match_denies(void **st)
{
    mi_host_index *x = index_of(HOST("v.example",
        ACL("MI.LocationACL", "{\"locations\":["
            "{\"action\":\"deny\",\"footprints\":[{\"footprint-type\":\"ipv4cidr\",\"footprint-value\":[\"192.0.2.128/25\"]}]},"
            "{\"action\":\"allow\",\"footprints\":[{\"footprint-type\":\"ipv4cidr\",\"footprint-value\":[\"192.0.2.0/24\"]},"
            "{\"footprint-type\":\"ipv6cidr\",\"footprint-value\":[\"2001:db8::/32\"]}]}]}", "false"), ""));
    mi_resolution r = resolve(x, "v.example", "/a.ts");
    mi_facts f = facts("192.0.2.10", 0, "http/1.1");
    assert_int_equal(mi_acl_check(&r, &f), MI_ACL_ALLOW);
    f = facts("192.0.2.200", 0, "http/1.1"); /* the deny rule comes first */
    assert_int_equal(mi_acl_check(&r, &f), MI_ACL_LOCATION);
    f = facts("2001:db8::5", 0, "http/1.1"); /* any footprint of a rule matches */
    assert_int_equal(mi_acl_check(&r, &f), MI_ACL_ALLOW);
    f = facts("198.51.100.1", 0, "http/1.1"); /* no rule: deny */
    assert_int_equal(mi_acl_check(&r, &f), MI_ACL_LOCATION);
    mi_host_index_free(x);
    /* no "locations": allow all; empty: deny all; no action: deny */
    x = index_of(HOST("v.example", ACL("MI.LocationACL", "{}", "false"),
        P("/empty/*") ACL("MI.LocationACL", "{\"locations\":[]}", "false") "]}},"
        P("/noaction/*") ACL("MI.LocationACL", "{\"locations\":[{\"footprints\":[{\"footprint-type\":\"ipv4cidr\",\"footprint-value\":[\"0.0.0.0/0\"]}]}]}", "false") "]}}"));
    f = facts("192.0.2.10", 0, "http/1.1");
    r = resolve(x, "v.example", "/a.ts");
    assert_int_equal(mi_acl_check(&r, &f), MI_ACL_ALLOW);
    r = resolve(x, "v.example", "/empty/a.ts");
    assert_int_equal(mi_acl_check(&r, &f), MI_ACL_LOCATION);
    r = resolve(x, "v.example", "/noaction/a.ts");
    assert_int_equal(mi_acl_check(&r, &f), MI_ACL_LOCATION);
    mi_host_index_free(x);
}

static void test_location_acl_on_countries_is_unenforceable_only_when_mandatory(void **st)
{
#define COUNTRY_RULES "{\"locations\":[{\"action\":\"deny\",\"footprints\":[{\"footprint-type\":\"countrycode\",\"footprint-value\":[\"us\"]}]}," \
    "{\"action\":\"allow\",\"footprints\":[{\"footprint-type\":\"ipv4cidr\",\"footprint-value\":[\"0.0.0.0/0\"]}]}]}"
    mi_host_index *x = index_of(HOST("v.example", ACL("MI.LocationACL", COUNTRY_RULES, "false"),
        P("/strict/*") ACL("MI.LocationACL", COUNTRY_RULES, "true") "]}}"));
    mi_facts f = facts("192.0.2.10", 0, "http/1.1");
    mi_resolution r = resolve(x, "v.example", "/a.ts");
    assert_int_equal(mi_acl_check(&r, &f), MI_ACL_ALLOW);
    r = resolve(x, "v.example", "/strict/a.ts");
    assert_int_equal(mi_acl_check(&r, &f), MI_ACL_UNENFORCEABLE);
    mi_host_index_free(x);
}

static void test_time_and_protocol_acls_and_their_logical_and(void **st)
{
    mi_host_index *x = index_of(HOST("v.example",
        ACL("MI.TimeWindowACL", "{\"times\":[{\"action\":\"deny\",\"windows\":[{\"start\":150,\"end\":160}]},"
            "{\"action\":\"allow\",\"windows\":[{\"start\":100,\"end\":200}]}]}", "true") ","
        ACL("MI.ProtocolACL", "{\"protocol-acl\":[{\"action\":\"allow\",\"protocols\":[\"https/1.1\",\"HTTP/1.1\"]}]}", "true"),
        P("/tls/*") ACL("MI.ProtocolACL", "{\"protocol-acl\":[{\"action\":\"allow\",\"protocols\":[\"https/1.1\"]}]}", "true") "]}}"));
    mi_resolution r = resolve(x, "v.example", "/a.ts");
    mi_facts f = facts("192.0.2.1", 120, "http/1.1");
    assert_int_equal(mi_acl_check(&r, &f), MI_ACL_ALLOW);
    f.now = 155;
    assert_int_equal(mi_acl_check(&r, &f), MI_ACL_TIME);
    f.now = 99;
    assert_int_equal(mi_acl_check(&r, &f), MI_ACL_TIME);
    f.now = 200; /* the end second is inside */
    assert_int_equal(mi_acl_check(&r, &f), MI_ACL_ALLOW);
    r = resolve(x, "v.example", "/tls/a.ts");
    assert_int_equal(mi_acl_check(&r, &f), MI_ACL_PROTOCOL);
    f.protocol = "https/1.1";
    assert_int_equal(mi_acl_check(&r, &f), MI_ACL_ALLOW);
    mi_host_index_free(x);
}

static const char *key_of(const mi_host_index *x, const char *host, const char *target, const char *const *drop)
{
    static char out[512];
    mi_resolution r = resolve(x, host, target);
    size_t n;
    assert_true(mi_cache_key(&r, target, strlen(target), drop, out, sizeof out, &n));
    assert_int_equal(n, strlen(out));
    return out;
}

static void test_cache_key_follows_mi_cache(void **st)
{
    static const char *const drop[] = {"URISigningPackage", NULL};
    mi_host_index *x = index_of(HOST("v.example", G("h"),
        P("/inc/*") "{\"generic-metadata-type\":\"MI.Cache\",\"generic-metadata-value\":{\"include-query-strings\":[\"q\",\"Lang\"]}}]}},"
        P("/none/*") "{\"generic-metadata-type\":\"MI.Cache\",\"generic-metadata-value\":{\"include-query-strings\":[]}}]}},"
        P("/exc/*") "{\"generic-metadata-type\":\"MI.Cache\",\"generic-metadata-value\":{\"exclude-query-strings\":[\"sid\"]}}]}},"
        P("/pp/*") "{\"generic-metadata-type\":\"MI.Cache\",\"generic-metadata-value\":{\"exclude-path-pattern\":\"/pp/*/v$*/*\"}}]}}"));
    /* no MI.Cache: the whole query, less the token; the HostMatch's host (the request's may carry a port) */
    assert_string_equal(key_of(x, "V.Example:8080", "/a.ts?b=1&URISigningPackage=xyz&c", drop), "v.example/a.ts?b=1&c");
    assert_string_equal(key_of(x, "v.example", "/a.ts?urisigningpackage=xyz", drop), "v.example/a.ts");
    /* include: in the list's order, repeated names aggregated, names case-insensitive */
    assert_string_equal(key_of(x, "v.example", "/inc/a.ts?lang=en&x=1&q=2&q=3", drop), "v.example/inc/a.ts?q=2&q=3&lang=en");
    assert_string_equal(key_of(x, "v.example", "/none/a.ts?lang=en&x=1", drop), "v.example/none/a.ts");
    assert_string_equal(key_of(x, "v.example", "/exc/a.ts?sid=9&x=1", drop), "v.example/exc/a.ts?x=1");
    /* only what the wildcards match counts: two hosts' edge paths share one key */
    assert_string_equal(key_of(x, "v.example", "/pp/edge1/v*/seg.ts", drop), "v.example/edge1seg.ts");
    assert_string_equal(key_of(x, "v.example", "/pp/no-match.ts", drop), "v.example/pp/no-match.ts");
    char small[8];
    mi_resolution r = resolve(x, "v.example", "/a.ts");
    assert_false(mi_cache_key(&r, "/a.ts", 5, NULL, small, sizeof small, NULL));
    mi_host_index_free(x);
}

static void test_pattern_wildcards_and_dollar_escapes_of_rfc8006_4_1_5(void **st)
{
    mi_host_index *x = index_of(HOST("v.example", G("none"),
        P("/lit$*star") G("star") "]}}," P("/q$?mark") G("qmark") "]}}," P("/d$$") G("dollar") "]}},"
        P("/seg?.ts") G("one") "]}}," P("*.m3u8") G("suffix") "]}}"));
    mi_resolution r = resolve(x, "v.example", "/lit*star");
    assert_string_equal(value_of(&r, "MI.Grouping", "ccid"), "star");
    r = resolve(x, "v.example", "/litXstar");
    assert_string_equal(value_of(&r, "MI.Grouping", "ccid"), "none");
    r = resolve(x, "v.example", "/q?mark");
    assert_string_equal(value_of(&r, "MI.Grouping", "ccid"), "qmark");
    r = resolve(x, "v.example", "/d$");
    assert_string_equal(value_of(&r, "MI.Grouping", "ccid"), "dollar");
    r = resolve(x, "v.example", "/seg1.ts");
    assert_string_equal(value_of(&r, "MI.Grouping", "ccid"), "one");
    r = resolve(x, "v.example", "/seg12.ts");
    assert_string_equal(value_of(&r, "MI.Grouping", "ccid"), "none");
    r = resolve(x, "v.example", "/x/y/master.m3u8");
    assert_string_equal(value_of(&r, "MI.Grouping", "ccid"), "suffix");
    mi_host_index_free(x);
}

static void test_pattern_is_case_insensitive_unless_case_sensitive_true(void **st)
{
    mi_host_index *x = index_of(HOST("v.example", G("none"),
        P("/CS/*", ",\"case-sensitive\":true") G("cs") "]}}," P("/Ci/*") G("ci") "]}}"));
    mi_resolution r = resolve(x, "v.example", "/cs/a");
    assert_string_equal(value_of(&r, "MI.Grouping", "ccid"), "none");
    r = resolve(x, "v.example", "/CS/a");
    assert_string_equal(value_of(&r, "MI.Grouping", "ccid"), "cs");
    r = resolve(x, "v.example", "/cI/a");
    assert_string_equal(value_of(&r, "MI.Grouping", "ccid"), "ci");
    mi_host_index_free(x);
}

static void test_ignore_query_string_absent_empty_and_named(void **st)
{
    mi_host_index *x = index_of(HOST("v.example", G("none"),
        P("/all/*.ts", ",\"ignore-query-string\":[]") G("all") "]}},"
        P("/named/*.ts", ",\"ignore-query-string\":[\"SessionID\"]") G("named") "]}},"
        P("/keep/*.ts") G("keep") "]}}"));
    mi_resolution r = resolve(x, "v.example", "/all/a.ts?x=1&y=2");
    assert_string_equal(value_of(&r, "MI.Grouping", "ccid"), "all");
    r = resolve(x, "v.example", "/named/a.ts?sessionid=9");
    assert_string_equal(value_of(&r, "MI.Grouping", "ccid"), "named");
    r = resolve(x, "v.example", "/named/a.ts?sessionid=9&other=1");
    assert_string_equal(value_of(&r, "MI.Grouping", "ccid"), "none");
    r = resolve(x, "v.example", "/keep/a.ts?x=1");
    assert_string_equal(value_of(&r, "MI.Grouping", "ccid"), "none");
    r = resolve(x, "v.example", "/keep/a.ts");
    assert_string_equal(value_of(&r, "MI.Grouping", "ccid"), "keep");
    mi_host_index_free(x);
}

static void test_host_matches_case_insensitively_with_port_fallback(void **st)
{
    mi_host_index *x = index_of("{\"hosts\":[{\"host\":\"Video.Example.com\",\"host-metadata\":{\"metadata\":[" G("plain") "]}},"
                                "{\"host\":\"video.example.com:8080\",\"host-metadata\":{\"metadata\":[" G("port") "]}}]}");
    mi_resolution r = resolve(x, "VIDEO.example.COM", "/");
    assert_string_equal(value_of(&r, "MI.Grouping", "ccid"), "plain");
    r = resolve(x, "video.example.com:8080", "/");
    assert_string_equal(value_of(&r, "MI.Grouping", "ccid"), "port");
    r = resolve(x, "video.example.com:9999", "/");
    assert_string_equal(value_of(&r, "MI.Grouping", "ccid"), "plain");
    mi_resolution miss;
    assert_int_equal(mi_resolve(x, "other.example", 13, "/", 1, &miss), MI_NO_HOST);
    mi_host_index_free(x);
}

static void test_unknown_mandatory_object_makes_content_unservable_on_dcdn(void **st)
{
    mi_host_index *x = index_of(HOST("v.example",
        "{\"generic-metadata-type\":\"EXAMPLE.Optional\",\"generic-metadata-value\":{},\"mandatory-to-enforce\":false}",
        P("/locked/*") "{\"generic-metadata-type\":\"EXAMPLE.Watermark\",\"generic-metadata-value\":{}}]}},"
        P("/relayed/*") "{\"generic-metadata-type\":\"MI.Grouping\",\"generic-metadata-value\":{},\"incomprehensible\":true}]}}"));
    mi_resolution r = resolve(x, "v.example", "/open/a.ts");
    assert_null(r.blocking); /* unknown but optional: served, object ignored */
    r = resolve(x, "v.example", "/locked/a.ts"); /* mandatory-to-enforce defaults to true */
    assert_non_null(r.blocking);
    assert_string_equal(r.blocking->type, "EXAMPLE.Watermark");
    r = resolve(x, "v.example", "/relayed/a.ts");
    assert_non_null(r.blocking);
    mi_host_index_free(x);
}

static void test_extra_types_in_policy_are_understood(void **st)
{
    static const char *const extra[] = {"EXAMPLE.Watermark", NULL};
    mi_policy pol = {extra, true};
    const char *doc = "{\"metadata\":[{\"generic-metadata-type\":\"EXAMPLE.Watermark\",\"generic-metadata-value\":{}}]}";
    jerr e = {0};
    mi_node *n = mi_node_parse(doc, strlen(doc), &pol, &e);
    assert_non_null(n);
    assert_false(n->md[0].blocks);
    mi_node_free(n);
}

/* The trie must find exactly what a plain in-order scan finds. */
static void test_indexed_resolution_agrees_with_linear_scan(void **st)
{
    srand(7);
    static const char *parts[] = {"/a", "/b", "/A", "*", "?", "/c", ".ts", "$*", "/"};
    json_t *paths = json_array();
    for (int i = 0; i < 300; i++) {
        char pat[64] = "";
        int k = 1 + rand() % 5;
        for (int j = 0; j < k; j++)
            strcat(pat, parts[rand() % 9]);
        json_t *pm = json_pack("{s:{s:s, s:b}, s:{s:[{s:s, s:{s:i}}]}}", "path-pattern", "pattern", pat,
                               "case-sensitive", rand() % 2, "path-metadata", "metadata",
                               "generic-metadata-type", "MI.Grouping", "generic-metadata-value", "ccid", i);
        json_array_append_new(paths, pm);
    }
    /* ccid is an integer here only to carry the index; the value check
     * wants a string, so rewrite it. */
    size_t i;
    json_t *pm;
    json_array_foreach(paths, i, pm)
    {
        json_t *val = json_object_get(json_array_get(json_object_get(json_object_get(pm, "path-metadata"), "metadata"), 0),
                                      "generic-metadata-value");
        char s[32];
        snprintf(s, sizeof s, "%zu", i);
        json_object_set_new(val, "ccid", json_string(s));
    }
    json_t *doc = json_pack("{s:[{s:s, s:{s:[], s:o}}]}", "hosts", "host", "h", "host-metadata", "metadata", "paths", paths);
    jerr e = {0};
    mi_host_index *x = mi_host_index_from_json(doc, "$", &consumer, &e);
    assert_non_null(x);
    assert_true(mi_index_build(x));
    const mi_node *hn = x->hosts[0].node;
    static const char *tparts[] = {"/a", "/b", "/A", "/c", ".ts", "*", "x", "/", "?q=1"};
    for (int t = 0; t < 20000; t++) {
        char target[64] = "";
        int k = 1 + rand() % 6;
        for (int j = 0; j < k; j++)
            strcat(target, tparts[rand() % 9]);
        long want = -1;
        for (size_t p = 0; p < hn->n_paths; p++)
            if (mi_pattern_match(&hn->paths[p].pattern, target, strlen(target))) {
                want = (long)p;
                break;
            }
        mi_resolution r;
        assert_int_equal(mi_resolve(x, "h", 1, target, strlen(target), &r), MI_RESOLVED);
        long got = r.depth ? atol(value_of(&r, "MI.Grouping", "ccid")) : -1;
        if (got != want)
            fail_msg("target %s: index chose %ld, scan chose %ld", target, got, want);
    }
    mi_host_index_free(x);
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc8006_examples_parse_validate_and_round_trip),
        cmocka_unit_test(test_malformed_documents_are_refused_naming_the_json_path),
        cmocka_unit_test(test_oversized_document_is_refused_before_parsing),
        cmocka_unit_test(test_pathmatch_first_match_wins_in_document_order),
        cmocka_unit_test(test_effective_metadata_inherits_and_deepest_object_of_a_type_wins),
        cmocka_unit_test(test_pattern_wildcards_and_dollar_escapes_of_rfc8006_4_1_5),
        cmocka_unit_test(test_pattern_is_case_insensitive_unless_case_sensitive_true),
        cmocka_unit_test(test_ignore_query_string_absent_empty_and_named),
        cmocka_unit_test(test_host_matches_case_insensitively_with_port_fallback),
        cmocka_unit_test(test_unknown_mandatory_object_makes_content_unservable_on_dcdn),
        cmocka_unit_test(test_extra_types_in_policy_are_understood),
        cmocka_unit_test(test_indexed_resolution_agrees_with_linear_scan),
        cmocka_unit_test(test_location_acl_first_matching_rule_decides_and_no_match_denies),
        cmocka_unit_test(test_location_acl_on_countries_is_unenforceable_only_when_mandatory),
        cmocka_unit_test(test_time_and_protocol_acls_and_their_logical_and),
        cmocka_unit_test(test_cache_key_follows_mi_cache),
    };
    return cmocka_run_group_tests_name("metadata", tests, NULL, NULL);
}
