/* FCI capabilities (RFC 8008/8804/9388), footprint semantics and the RI
 * codec (RFC 7975) on example documents, and their error paths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "interfaces/fci.h"
#include "interfaces/footprint.h"
#include "interfaces/redirection.h"
#include "testutil.h"

static fci_set *load(const char *name)
{
    size_t n;
    char *b = read_data(name, &n);
    assert_non_null(b);
    jerr e;
    fci_set *s = fci_parse(b, n, &e);
    if (!s)
        fail_msg("%s: %s: %s", name, e.path, e.reason);
    free(b);
    return s;
}

static void test_rfc8008_delivery_protocol_example(void **st)
{
    fci_set *s = load("rfc8008/delivery-protocol.json");
    assert_int_equal(s->n, 1);
    assert_int_equal(s->caps[0].type, FCI_DELIVERY_PROTOCOL);
    assert_true(fci_has_item(&s->caps[0], "https/1.1"));
    assert_false(fci_has_item(&s->caps[0], "http/2"));
    assert_int_equal(s->caps[0].n_fps, 1);
    assert_int_equal(fci_prefix_count(s), 1);
    fci_free(s);
}

static void test_all_types_and_round_trip(void **st)
{
    fci_set *s = load("rfc8008/all-types.json");
    assert_int_equal(s->n, 8);
    assert_int_equal(s->caps[2].modes, FCI_HTTP_I | FCI_HTTP_R | FCI_DNS_I);
    assert_true(fci_has_field(&s->caps[3], "s-ccid"));
    assert_true(fci_has_field(&s->caps[3], "s-sid"));
    assert_string_equal(s->caps[3].compression[0], "gzip");
    assert_true(fci_has_item(&s->caps[4], "MI.UriSigning"));
    assert_string_equal(s->caps[5].http_target, "rr.dcdn.example:8443");
    assert_int_equal(s->caps[6].type, FCI_OTHER);
    assert_int_equal(fci_prefix_count(s), 2);
    /* serialize, parse again, serialize: the same document */
    json_t *a = fci_to_json(s);
    char *txt = json_dumps(a, JSON_SORT_KEYS | JSON_COMPACT);
    jerr e;
    fci_set *s2 = fci_parse(txt, strlen(txt), &e);
    assert_non_null(s2);
    json_t *b = fci_to_json(s2);
    assert_true(json_equal(a, b));
    /* codes came back upper case */
    assert_non_null(strstr(txt, "\"US\""));
    assert_non_null(strstr(txt, "\"US-NY\""));
    free(txt);
    json_decref(a);
    json_decref(b);
    fci_free(s);
    fci_free(s2);
}

static void expect_error(const char *doc, const char *path)
{
    jerr e;
    fci_set *s = fci_parse(doc, strlen(doc), &e);
    if (s)
        fail_msg("accepted: %s", doc);
    if (strcmp(e.path, path) != 0)
        fail_msg("error at %s (%s), want %s", e.path, e.reason, path);
}

static void test_errors_name_the_json_path(void **st)
{
    expect_error("[]", "$");
    expect_error("{}", "$.capabilities");
    expect_error("{\"capabilities\":[{\"capability-type\":\"FCI.RedirectionMode\","
                 "\"capability-value\":{\"redirection-modes\":[\"HTTP-I\",\"HTTP-X\"]}}]}",
                 "$.capabilities[0].capability-value.redirection-modes[1]");
    expect_error("{\"capabilities\":[{\"capability-type\":\"FCI.DeliveryProtocol\","
                 "\"capability-value\":{\"delivery-protocols\":[]}}]}",
                 "$.capabilities[0].capability-value.delivery-protocols");
    expect_error("{\"capabilities\":[{\"capability-type\":\"FCI.DeliveryProtocol\","
                 "\"capability-value\":{\"delivery-protocols\":[\"http/1.1\"]},"
                 "\"footprints\":[{\"footprint-type\":\"ipv4cidr\",\"footprint-value\":"
                 "[\"10.0.0.0/8\",\"2001:db8::/32\"]}]}]}",
                 "$.capabilities[0].footprints[0].footprint-value[1]");
    expect_error("{\"capabilities\":[{\"capability-type\":\"FCI.Metadata\","
                 "\"capability-value\":{\"metadata\":[\"MI.Cache\"]},"
                 "\"footprints\":[{\"footprint-type\":\"footprintunion\",\"footprint-value\":"
                 "[{\"footprint-type\":\"footprintunion\",\"footprint-value\":[]}]}]}]}",
                 "$.capabilities[0].footprints[0].footprint-value[0].footprint-type");
    expect_error("{\"capabilities\":[{\"capability-type\":\"FCI.RedirectTarget\","
                 "\"capability-value\":{\"redirecting-hosts\":[\"a.example\"]}}]}",
                 "$.capabilities[0].capability-value");
    expect_error("{\"capabilities\":[{\"capability-type\":\"FCI.Logging\","
                 "\"capability-value\":{\"record-types\":[\"cdni_http_request_v1\"],"
                 "\"fields\":[\"a b\"]}}]}",
                 "$.capabilities[0].capability-value.fields[0]");
    expect_error("{\"capabilities\":[{\"capability-type\":\"FCI.Metadata\","
                 "\"capability-value\":{\"metadata\":[\"MI.Cache\"]},"
                 "\"footprints\":[{\"footprint-type\":\"asn\",\"footprint-value\":[\"as0\"]}]}]}",
                 "$.capabilities[0].footprints[0].footprint-value[0]");
}

static footprint fp(const char *json)
{
    jerr e;
    json_t *v = jparse(json, strlen(json), 65536, &e);
    assert_non_null(v);
    footprint f;
    if (!fp_parse(v, "$", &f, &e))
        fail_msg("%s: %s", e.path, e.reason);
    json_decref(v);
    return f;
}

static fp_client client(const char *ip, unsigned asn, const char *cc, const char *sub)
{
    fp_client c = {0};
    assert_true(ipt_parse_addr(ip, strlen(ip), &c.ip));
    c.asn = asn;
    strcpy(c.country, cc);
    strcpy(c.subdivision, sub);
    return c;
}

static void test_footprint_semantics(void **st)
{
    footprint l[2];
    l[0] = fp("{\"footprint-type\":\"ipv4cidr\",\"footprint-value\":[\"10.0.0.0/8\",\"10.1.0.0/16\"]}");
    l[1] = fp("{\"footprint-type\":\"countrycode\",\"footprint-value\":[\"fr\"]}");
    unsigned plen = 0;
    fp_client in_fr = client("10.1.2.3", 0, "FR", "");
    fp_client in_de = client("10.1.2.3", 0, "DE", "");
    fp_client v6 = client("2001:db8::1", 0, "FR", "");
    assert_true(fp_match(&l[0], &in_fr, &plen));
    assert_int_equal(plen, 16); /* the longest matching value */
    assert_true(fp_list_match(l, 2, &in_fr));  /* narrowing: both hold */
    assert_false(fp_list_match(l, 2, &in_de)); /* the country does not */
    assert_false(fp_list_match(l, 2, &v6));
    assert_true(fp_list_match(NULL, 0, &in_de)); /* no footprint: everywhere */
    assert_true(fp_is_ip(&l[0]));
    assert_false(fp_is_ip(&l[1]));
    footprint u = fp("{\"footprint-type\":\"footprintunion\",\"footprint-value\":["
                     "{\"footprint-type\":\"ipv6cidr\",\"footprint-value\":[\"2001:db8::/32\"]},"
                     "{\"footprint-type\":\"subdivisioncode\",\"footprint-value\":[\"DE-BY\"]}]}");
    assert_true(fp_match(&u, &v6, &plen));
    assert_int_equal(plen, 32);
    fp_client bav = client("10.9.9.9", 0, "DE", "DE-BY");
    assert_true(fp_match(&u, &bav, NULL)); /* union: either member */
    assert_false(fp_match(&u, &in_de, NULL));
    assert_false(fp_is_ip(&u));
    footprint a = fp("{\"footprint-type\":\"asn\",\"footprint-value\":[\"AS64496\"]}");
    fp_client unknown = client("10.0.0.1", 0, "", "");
    assert_false(fp_match(&a, &unknown, NULL));
    fp_client as = client("10.0.0.1", 64496, "", "");
    assert_true(fp_match(&a, &as, NULL));
    fp_free(&l[0]);
    fp_free(&l[1]);
    fp_free(&u);
    fp_free(&a);
}

static void test_ri_http_request_and_response(void **st)
{
    size_t n;
    char *b = read_data("rfc7975/http-request.json", &n);
    ri_request r;
    jerr e;
    assert_true(ri_request_parse(b, n, &r, &e));
    assert_int_equal(r.iface, RI_HTTP);
    assert_string_equal(r.url, "/vod/m1/seg_001.ts?token=abc");
    assert_string_equal(r.c_ip, "192.0.2.7");
    const char *why = NULL;
    assert_true(ri_loop_ok(&r, "dcdn-b", &why));
    assert_false(ri_loop_ok(&r, "AS64496:0", &why)); /* already on the path */
    ri_request_free(&r);
    free(b);

    b = read_data("rfc7975/http-response.json", &n);
    ri_response resp;
    assert_true(ri_response_parse(b, n, &resp, &e));
    assert_int_equal(resp.code, 302);
    assert_string_equal(resp.location, "http://se1.dcdn.example/vod/m1/seg_001.ts?token=abc");
    ri_response_free(&resp);
    free(b);

    b = read_data("rfc7975/dns-request.json", &n);
    assert_true(ri_request_parse(b, n, &r, &e));
    assert_int_equal(r.iface, RI_DNS);
    assert_string_equal(r.qtype, "A");
    ri_request_free(&r);
    free(b);

    /* a request we build parses back */
    const char *path[] = {"ucdn-a"};
    json_t *q = ri_http_request("GET", "https", "h.example", "/x", "::1", NULL, path, 1, 2);
    char *t = json_dumps(q, 0);
    assert_true(ri_request_parse(t, strlen(t), &r, &e));
    assert_int_equal(r.max_hops, 2);
    assert_true(ri_loop_ok(&r, "dcdn-b", &why));
    ri_request_free(&r);
    free(t);
    json_decref(q);
}

static void ri_bad(const char *doc, const char *path, bool response)
{
    jerr e;
    ri_request r;
    ri_response s;
    bool ok = response ? ri_response_parse(doc, strlen(doc), &s, &e)
                       : ri_request_parse(doc, strlen(doc), &r, &e);
    if (ok)
        fail_msg("accepted: %s", doc);
    if (strcmp(e.path, path) != 0)
        fail_msg("error at %s (%s), want %s", e.path, e.reason, path);
}

static void test_content_host_travels_in_the_path(void **st)
{
    char out[64], host[32];
    const char *rest;
    assert_true(ri_host_path("video.example.com:8080", "/vod/a.ts?x=1", out, sizeof out));
    assert_string_equal(out, "/video.example.com:8080/vod/a.ts?x=1");
    assert_true(ri_split_host_path(out, host, sizeof host, &rest));
    assert_string_equal(host, "video.example.com:8080");
    assert_string_equal(rest, "/vod/a.ts?x=1");
    assert_true(ri_host_path("[2001:db8::1]", "/a", out, sizeof out));
    assert_false(ri_host_path("bad host", "/a", out, sizeof out));
    assert_false(ri_host_path("h", "a", out, sizeof out));
    assert_false(ri_host_path("video.example.com", "/a", out, 10)); /* does not fit */
    assert_false(ri_split_host_path("/only-one-segment", host, sizeof host, &rest));
    assert_false(ri_split_host_path("/a%2f/b", host, sizeof host, &rest));
    assert_false(ri_split_host_path("//b", host, sizeof host, &rest));
    assert_false(ri_split_host_path("/a?b/c", host, sizeof host, &rest));
    assert_false(ri_split_host_path("/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/x", host, sizeof host, &rest));
}

static void test_ri_errors(void **st)
{
    ri_bad("{\"interface\":\"smtp\"}", "$.interface", false);
    ri_bad("{\"interface\":\"http\",\"method\":\"GET\",\"scheme\":\"http\",\"host\":\"h\","
           "\"url\":\"x\",\"c-ip\":\"1.2.3.4\"}",
           "$.url", false);
    ri_bad("{\"interface\":\"http\",\"method\":\"GET\",\"scheme\":\"ftp\",\"host\":\"h\","
           "\"url\":\"/x\",\"c-ip\":\"1.2.3.4\"}",
           "$.scheme", false);
    ri_bad("{\"interface\":\"http\",\"method\":\"GET\",\"scheme\":\"http\",\"host\":\"h\","
           "\"url\":\"/x\",\"c-ip\":\"1.2.3.4\",\"max-hops\":0}",
           "$.max-hops", false);
    ri_bad("{\"interface\":\"http\",\"method\":\"GET\",\"scheme\":\"http\",\"host\":\"h\","
           "\"url\":\"/x\",\"c-ip\":\"1.2.3.4\",\"headers\":{\"a\":1}}",
           "$.headers.a", false);
    ri_bad("{\"code\":302}", "$.headers", true);
    ri_bad("{\"code\":302,\"headers\":{\"Location\":\"javascript:x\"}}", "$.headers.location", true);
    ri_bad("{\"code\":302,\"headers\":{\"Location\":\"http://a/b c\"}}", "$.headers.location", true);
    ri_bad("{\"code\":99}", "$.code", true);
    int code;
    char reason[64];
    const char *err = "{\"error-code\":508,\"reason\":\"loop\"}";
    assert_true(ri_error_parse(err, strlen(err), &code, reason, 64));
    assert_int_equal(code, 508);
    assert_string_equal(reason, "loop");
    assert_false(ri_error_parse("{\"code\":1}", 10, &code, reason, 64));
    /* max-hops reached */
    ri_request r;
    jerr e;
    const char *doc = "{\"interface\":\"dns\",\"resolver-ip\":\"1.1.1.1\",\"qname\":\"a\","
                      "\"qtype\":\"A\",\"cdn-path\":[\"x\",\"y\"],\"max-hops\":2}";
    assert_true(ri_request_parse(doc, strlen(doc), &r, &e));
    const char *why;
    assert_false(ri_loop_ok(&r, "z", &why));
    ri_request_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc8008_delivery_protocol_example),
        cmocka_unit_test(test_all_types_and_round_trip),
        cmocka_unit_test(test_errors_name_the_json_path),
        cmocka_unit_test(test_footprint_semantics),
        cmocka_unit_test(test_ri_http_request_and_response),
        cmocka_unit_test(test_ri_errors),
        cmocka_unit_test(test_content_host_travels_in_the_path),
    };
    return cmocka_run_group_tests_name("fci+ri", tests, NULL, NULL);
}
