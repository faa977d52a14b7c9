/* RFC 9246 claim checks on the RFC's example tokens and on tokens we mint:
 * every verification code, token placement and removal, renewal and hop
 * claims, cookies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "signing/uri_signing.h"
#include "testutil.h"

#define RFC_NOW 1646780970 /* after the complex example's nbf, before every exp */

static jwk_set rfc;
static jwk_set rfc_pub, rfc_enc;

static int setup(void **st)
{
    jerr e;
    if (!jwk_set_load("tests/data/rfc9246/jwks.json", &rfc, &e))
        return -1;
    rfc_pub = (jwk_set){.keys = &rfc.keys[0], .n = 1};
    rfc_enc = (jwk_set){.keys = &rfc.keys[2], .n = 1};
    return 0;
}

static int teardown(void **st)
{
    jwk_set_free(&rfc);
    return 0;
}

/* jti store for the tests: remembers up to 8 */
static char seen[8][64];
static size_t nseen;
static bool jti_fresh(void *ctx, const char *jti, long long exp)
{
    for (size_t i = 0; i < nseen; i++)
        if (strcmp(seen[i], jti) == 0)
            return false;
    snprintf(seen[nseen++ % 8], 64, "%s", jti);
    return true;
}

static us_code check(const char *uri, const char *cookie, const char *ip, long long now, const us_policy *p,
                     us_result *r)
{
    static const char *const auds[] = {"dCDN LLC"};
    us_trust trust[] = {{"uCDN Inc", &rfc_pub, false}, {NULL, &rfc_pub, false}};
    us_verifier v = {.trust = trust, .n_trust = 2, .enc_keys = &rfc_enc, .audiences = auds,
                     .n_audiences = 1, .jti_fresh = jti_fresh};
    us_request rq = {.uri = uri, .cookie = cookie, .client_ip = ip, .now = now};
    return us_check(&v, p, &rq, r);
}

static char *with_token(const char *fmt, const char *tok)
{
    char *u = malloc(strlen(fmt) + strlen(tok) + 1);
    sprintf(u, fmt, tok);
    return u;
}

static void test_rfc_simple_example_hash_container(void **st)
{
    us_policy p;
    us_policy_default(&p);
    char *t = rfc9246_token("a1-simple");
    us_result r;
    /* the hash is of http://cdni.example/foo/bar, token removed */
    char *u = with_token("http://cdni.example/foo/bar?URISigningPackage=%s", t);
    assert_int_equal(check(u, NULL, "192.0.2.1", RFC_NOW, &p, &r), US_VERIFIED);
    assert_int_equal(r.source, US_SRC_QUERY);
    assert_string_equal(r.stripped_uri, "http://cdni.example/foo/bar");
    assert_string_equal(r.issuer, "uCDN Inc");
    us_result_free(&r);
    free(u);
    /* normalization: upper-case host, default port, token in the middle */
    u = with_token("http://CDNI.example:80/foo/bar?URISigningPackage=%s", t);
    assert_int_equal(check(u, NULL, NULL, RFC_NOW, &p, &r), US_VERIFIED);
    us_result_free(&r);
    free(u);
    /* another path: URI container */
    u = with_token("http://cdni.example/foo/baz?URISigningPackage=%s", t);
    assert_int_equal(check(u, NULL, NULL, RFC_NOW, &p, &r), US_BAD_URI_CONTAINER);
    us_result_free(&r);
    free(u);
    /* path-style and cookie transport */
    u = with_token("http://cdni.example/foo/bar;URISigningPackage=%s", t);
    assert_int_equal(check(u, NULL, NULL, RFC_NOW, &p, &r), US_VERIFIED);
    assert_int_equal(r.source, US_SRC_PATH);
    us_result_free(&r);
    free(u);
    char *ck = with_token("lang=en; URISigningPackage=%s", t);
    assert_int_equal(check("http://cdni.example/foo/bar", ck, NULL, RFC_NOW, &p, &r), US_VERIFIED);
    assert_int_equal(r.source, US_SRC_COOKIE);
    us_result_free(&r);
    free(ck);
    /* expired: exp equal to now is already too late */
    u = with_token("http://cdni.example/foo/bar?URISigningPackage=%s", t);
    assert_int_equal(check(u, NULL, NULL, 1646867369, &p, &r), US_EXPIRED);
    us_result_free(&r);
    /* issuers listed in the metadata */
    us_policy q;
    json_t *m = json_pack("{s:[s]}", "issuers", "csp");
    jerr e;
    assert_true(us_policy_parse(m, "$", &q, &e));
    assert_int_equal(check(u, NULL, NULL, RFC_NOW, &q, &r), US_BAD_ISSUER);
    us_result_free(&r);
    us_policy_free(&q);
    json_decref(m);
    /* another package attribute name: ours is not found */
    m = json_pack("{s:s}", "package-attribute", "usp");
    assert_true(us_policy_parse(m, "$", &q, &e));
    assert_int_equal(check(u, NULL, NULL, RFC_NOW, &q, &r), US_BAD_SIGNATURE);
    assert_string_equal(r.reason, "no signed JWT in the request");
    us_result_free(&r);
    us_policy_free(&q);
    json_decref(m);
    free(u);
    free(t);
}

static void test_rfc_complex_example_jwe_client_ip_audience_and_jti(void **st)
{
    us_policy p;
    us_policy_default(&p);
    char *t = rfc9246_token("a2-complex");
    char *u = with_token("http://cdni.example/foo/bar/123.png?URISigningPackage=%s", t);
    us_result r;
    nseen = 0;
    /* cdniip is a JWE of 2001:db8::1/32 under the RFC's A128GCM key */
    assert_int_equal(check(u, NULL, "192.0.2.1", RFC_NOW, &p, &r), US_BAD_CLIENT_IP);
    us_result_free(&r);
    assert_int_equal(check(u, NULL, "2001:db8:ffff::7", RFC_NOW, &p, &r), US_VERIFIED);
    assert_string_equal(json_string_value(json_object_get(r.claims, "jti")), "5DAafLhZAfhsbe");
    us_result_free(&r);
    /* jti: the second use is a replay */
    assert_int_equal(check(u, NULL, "2001:db8::1", RFC_NOW, &p, &r), US_REPLAYED);
    us_result_free(&r);
    /* nbf in the future */
    nseen = 0;
    assert_int_equal(check(u, NULL, "2001:db8::1", 1646780968, &p, &r), US_NOT_YET_VALID);
    us_result_free(&r);
    assert_int_equal(nseen, 0); /* a refused token does not use up its nonce */
    /* regex container: 3 digits only */
    free(u);
    u = with_token("http://cdni.example/foo/bar/1234.png?URISigningPackage=%s", t);
    assert_int_equal(check(u, NULL, "2001:db8::1", RFC_NOW, &p, &r), US_BAD_URI_CONTAINER);
    us_result_free(&r);
    free(u);
    free(t);
}

static jwk hs;

static char *mint(json_t *claims)
{
    char *t = us_mint(&hs, JWS_HS256, claims);
    json_decref(claims);
    assert_non_null(t);
    return t;
}

static us_code check_hs(const char *tok, const char *uri_fmt, us_result *r, long skew, long long now)
{
    jwk_set s = {.keys = &hs, .n = 1};
    us_trust trust[] = {{"csp", &s, false}};
    static const char *const auds[] = {"ucdn-a"};
    us_verifier v = {.trust = trust, .n_trust = 1, .audiences = auds, .n_audiences = 1,
                     .skew_s = skew, .jti_fresh = jti_fresh};
    us_policy p;
    us_policy_default(&p);
    char *u = with_token(uri_fmt, tok);
    us_request rq = {.uri = u, .client_ip = "198.51.100.7", .now = now};
    us_code c = us_check(&v, &p, &rq, r);
    free(u);
    return c;
}

static void test_every_refusal_code(void **st)
{
    assert_true(jwk_generate_oct("csp-1", 32, &hs));
    const char *uri = "https://video.example.com/vod/m1/seg_1.ts?a=1&URISigningPackage=%s";
    const char *uc = "regex:https://video\\.example\\.com/vod/m1/.*";
    const char *uc_json = "regex:https://video\\\\.example\\\\.com/vod/m1/.*"; /* JSON-escaped */
    long long now = 2000000000;
    static const struct {
        const char *claims;
        us_code want;
    } cases[] = {
        {"{\"iss\":\"csp\",\"cdniuc\":\"%s\"}", US_VERIFIED},
        {"{\"iss\":\"someone\",\"cdniuc\":\"%s\"}", US_BAD_ISSUER},
        {"{\"iss\":\"csp\",\"aud\":\"other\",\"cdniuc\":\"%s\"}", US_BAD_AUDIENCE},
        {"{\"iss\":\"csp\",\"aud\":[\"x\",\"ucdn-a\"],\"cdniuc\":\"%s\"}", US_VERIFIED},
        {"{\"iss\":\"csp\",\"exp\":1999999999,\"cdniuc\":\"%s\"}", US_EXPIRED},
        {"{\"iss\":\"csp\",\"exp\":\"soon\",\"cdniuc\":\"%s\"}", US_EXPIRED},
        {"{\"iss\":\"csp\",\"nbf\":2000000001,\"cdniuc\":\"%s\"}", US_NOT_YET_VALID},
        {"{\"iss\":\"csp\",\"cdnistt\":1,\"cdniuc\":\"%s\"}", US_RENEWAL_PAIR},
        {"{\"iss\":\"csp\",\"cdniets\":30,\"cdniuc\":\"%s\"}", US_RENEWAL_PAIR},
        {"{\"iss\":\"csp\",\"cdnistt\":3,\"cdniets\":30,\"cdniuc\":\"%s\"}", US_RENEWAL_PAIR},
        {"{\"iss\":\"csp\",\"cdniv\":2,\"cdniuc\":\"%s\"}", US_BAD_VERSION},
        {"{\"iss\":\"csp\",\"cdnicrit\":\"x-ext\",\"x-ext\":1,\"cdniuc\":\"%s\"}", US_BAD_CRITICAL},
        {"{\"iss\":\"csp\",\"cdnicrit\":\"exp\",\"exp\":2100000000,\"cdniuc\":\"%s\"}", US_BAD_CRITICAL},
        {"{\"iss\":\"csp\",\"cdniip\":\"203.0.113.0/24\",\"cdniuc\":\"%s\"}", US_BAD_CLIENT_IP},
        {"{\"iss\":\"csp\",\"cdniip\":\"198.51.100.0/24\",\"cdniuc\":\"%s\"}", US_VERIFIED},
        {"{\"iss\":\"csp\"}", US_BAD_URI_CONTAINER},
        {"{\"iss\":\"csp\",\"cdniuc\":\"regex:https://video\\\\.example\\\\.com/vod/m2/.*\"}", US_BAD_URI_CONTAINER},
        {"{\"iss\":\"csp\",\"cdniuc\":\"regex:([\"}", US_BAD_URI_CONTAINER},
        {"{\"iss\":\"csp\",\"cdniuc\":\"glob:*\"}", US_BAD_URI_CONTAINER},
        {"{\"iss\":\"csp\",\"jti\":\"n-1\",\"cdniuc\":\"%s\"}", US_VERIFIED},
        {"{\"iss\":\"csp\",\"jti\":\"n-1\",\"cdniuc\":\"%s\"}", US_REPLAYED},
    };
    nseen = 0;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char cl[512];
        snprintf(cl, sizeof cl, cases[i].claims, uc_json);
        jerr e;
        json_t *c = jparse(cl, strlen(cl), 4096, &e);
        if (!c)
            fail_msg("case %zu: %s", i, e.reason);
        char *t = mint(c);
        us_result r;
        us_code got = check_hs(t, uri, &r, 0, now);
        if (got != cases[i].want)
            fail_msg("case %zu: %d (%s), expected %d", i, got, r.reason, cases[i].want);
        us_result_free(&r);
        free(t);
    }
    /* a partial match is not a match: the regex must describe the whole URI */
    char *t = mint(json_pack("{s:s,s:s}", "iss", "csp", "cdniuc", "regex:/vod/m1/"));
    us_result r;
    assert_int_equal(check_hs(t, uri, &r, 0, now), US_BAD_URI_CONTAINER);
    us_result_free(&r);
    free(t);
    /* skew, when an operator allows it */
    t = mint(json_pack("{s:s,s:I,s:s}", "iss", "csp", "exp", (json_int_t)now - 5, "cdniuc", uc));
    assert_int_equal(check_hs(t, uri, &r, 0, now), US_EXPIRED);
    us_result_free(&r);
    assert_int_equal(check_hs(t, uri, &r, 10, now), US_VERIFIED);
    us_result_free(&r);
    /* a signature by an unknown key, and garbage */
    jwk other;
    assert_true(jwk_generate_oct("csp-1", 32, &other));
    json_t *c = json_pack("{s:s,s:s}", "iss", "csp", "cdniuc", uc);
    char *bad = us_mint(&other, JWS_HS256, c);
    json_decref(c);
    assert_int_equal(check_hs(bad, uri, &r, 0, now), US_BAD_SIGNATURE);
    us_result_free(&r);
    free(bad);
    assert_int_equal(check_hs("not.a.token", uri, &r, 0, now), US_BAD_SIGNATURE);
    us_result_free(&r);
    assert_int_equal(check_hs("x", "::not a uri %s", &r, 0, now), US_MALFORMED_URI);
    us_result_free(&r);
    free(t);
}

static void test_token_removal_rules(void **st)
{
    us_policy p;
    us_policy_default(&p);
    static const struct {
        const char *uri, *stripped;
    } cases[] = {
        {"http://a/x?URISigningPackage=T", "http://a/x"},
        {"http://a/x?a=1&URISigningPackage=T", "http://a/x?a=1"},
        {"http://a/x?URISigningPackage=T&b=2", "http://a/x?b=2"},
        {"http://a/x?a=1&URISigningPackage=T&b=2", "http://a/x?a=1&b=2"},
        {"http://a/d;URISigningPackage=T/x.ts", "http://a/d/x.ts"},
        {"http://a/d;URISigningPackage=T;v=1/x.ts", "http://a/d;v=1/x.ts"},
        {"http://a/x?notURISigningPackage=T", "http://a/x?notURISigningPackage=T"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        us_result r;
        us_verifier v = {0};
        us_request rq = {.uri = cases[i].uri, .now = 1};
        us_check(&v, &p, &rq, &r);
        if (strcmp(r.stripped_uri, cases[i].stripped) != 0)
            fail_msg("case %zu: %s", i, r.stripped_uri);
        us_result_free(&r);
    }
}

static void test_renewal_and_hop_claims_and_cookie(void **st)
{
    json_t *c = json_pack("{s:s,s:s,s:I,s:I,s:i,s:i,s:i,s:s,s:s}", "iss", "csp", "sub", "eyJ.x", "exp",
                          (json_int_t)2000000100, "iat", (json_int_t)1999999000, "cdniets", 30, "cdnistt", 1,
                          "cdnistd", 2, "jti", "n", "cdniuc", "regex:https://v\\.example/vod/.*");
    json_t *n = us_renewal_claims(c, 2000000000, "ucdn-a");
    /* exp from the time of validation, not from the old exp */
    assert_int_equal(json_integer_value(json_object_get(n, "exp")), 2000000030);
    assert_int_equal(json_integer_value(json_object_get(n, "iat")), 2000000000);
    assert_string_equal(json_string_value(json_object_get(n, "iss")), "ucdn-a");
    assert_null(json_object_get(n, "jti"));
    assert_int_equal(json_integer_value(json_object_get(n, "cdnistd")), 2);
    json_decref(n);
    /* next hop: iss ours, aud the dCDN, exp/sub/jti kept, regex kept */
    n = us_hop_claims(c, 2000000000, "ucdn-a", false, "dcdn-b", "https://se1.dcdn/vod/x.ts");
    assert_string_equal(json_string_value(json_object_get(n, "iss")), "ucdn-a");
    assert_string_equal(json_string_value(json_object_get(n, "aud")), "dcdn-b");
    assert_int_equal(json_integer_value(json_object_get(n, "exp")), 2000000100);
    assert_string_equal(json_string_value(json_object_get(n, "jti")), "n");
    assert_string_equal(json_string_value(json_object_get(n, "sub")), "eyJ.x");
    assert_string_equal(json_string_value(json_object_get(n, "cdniuc")), "regex:https://v\\.example/vod/.*");
    json_decref(n);
    /* a hash container is rewritten for the URI the next hop will see */
    json_object_set_new(c, "cdniuc", json_string("hash:sha-256;x"));
    n = us_hop_claims(c, 2000000000, "ucdn-a", false, NULL, "http://cdni.example/foo/bar");
    assert_string_equal(json_string_value(json_object_get(n, "cdniuc")),
                        "hash:sha-256;2tderfWPa86Ku7YnzW51YUp7dGUjBS_3SW3ELx4hmWY");
    assert_null(json_object_get(n, "aud"));
    json_decref(n);
    json_decref(c);
    char ck[512];
    assert_true(us_cookie("URISigningPackage", "T", "https://v.example/vod/m1/seg_1.ts", 2, 30, ck, sizeof ck));
    assert_string_equal(ck, "URISigningPackage=T; Path=/vod/m1; Max-Age=30; HttpOnly; SameSite=Lax; Secure");
    assert_true(us_cookie("URISigningPackage", "T", "http://v.example/vod/m1/seg_1.ts", 0, 30, ck, sizeof ck));
    assert_string_equal(ck, "URISigningPackage=T; Path=/; Max-Age=30; HttpOnly; SameSite=Lax");
    /* fewer segments than cdnistd: no renewal token */
    assert_false(us_cookie("URISigningPackage", "T", "http://v.example/seg_1.ts", 2, 30, ck, sizeof ck));
    char *u = us_add_to_query("http://a/x?b=1#f", "URISigningPackage", "T");
    assert_string_equal(u, "http://a/x?b=1&URISigningPackage=T#f");
    free(u);
    u = us_add_to_query("http://a/x", "usp", "T");
    assert_string_equal(u, "http://a/x?usp=T");
    free(u);
}

static void test_rfc_renewal_example_and_policy_errors(void **st)
{
    us_policy p;
    us_policy_default(&p);
    char *t = rfc9246_token("a3-renewal");
    char *u = with_token("http://cdni.example/foo/bar/456.ts?URISigningPackage=%s", t);
    us_result r;
    assert_int_equal(check(u, NULL, NULL, RFC_NOW, &p, &r), US_VERIFIED);
    assert_int_equal(r.stt, 1);
    assert_int_equal(r.ets, 30);
    assert_int_equal(r.std_depth, 2);
    us_result_free(&r);
    free(u);
    free(t);
    static const struct {
        const char *json, *path;
    } bad[] = {{"{\"enforce\":\"yes\"}", "$.enforce"},
               {"{\"issuers\":[1]}", "$.issuers[0]"},
               {"{\"package-attribute\":\"a b\"}", "$.package-attribute"},
               {"{\"jwt-header\":3}", "$.jwt-header"},
               {"{\"other\":1}", "$.other"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        jerr e;
        json_t *v = jparse(bad[i].json, strlen(bad[i].json), 1024, &e);
        us_policy q;
        assert_false(us_policy_parse(v, "$", &q, &e));
        if (strcmp(e.path, bad[i].path) != 0)
            fail_msg("case %zu: %s: %s", i, e.path, e.reason);
        json_decref(v);
    }
    /* the header carried by the metadata, as an object */
    jerr e;
    json_t *v = json_pack("{s:{s:s,s:s}}", "jwt-header", "alg", "ES256", "kid",
                          "P5UpOv0eMq1wcxLf7WxIg09JdSYGYFDOWkldueaImf0");
    us_policy q;
    assert_true(us_policy_parse(v, "$", &q, &e));
    json_decref(v);
    t = rfc9246_token("a1-simple");
    char *nohdr = strchr(t, '.') + 1; /* payload.signature */
    u = with_token("http://cdni.example/foo/bar?URISigningPackage=%s", nohdr);
    /* as an object it is serialized compactly in its own member order,
     * which here is the order the RFC's token was signed with */
    assert_int_equal(check(u, NULL, NULL, RFC_NOW, &q, &r), US_VERIFIED);
    us_result_free(&r);
    us_policy_free(&q);
    *strchr(t, '.') = 0;
    v = json_pack("{s:s}", "jwt-header", t);
    assert_true(us_policy_parse(v, "$", &q, &e));
    assert_int_equal(check(u, NULL, NULL, RFC_NOW, &q, &r), US_VERIFIED);
    us_result_free(&r);
    us_policy_free(&q);
    json_decref(v);
    free(u);
    free(t);
}

/* The per-thread cache of verified tokens keeps only what the bytes decide:
 * a remembered token is still checked against the time, the URI, the
 * client and the keys trusted now. */
static void test_remembered_tokens_are_checked_again(void **st)
{
    jwk k1, k1_rotated, other;
    unsigned char secret[32];
    memset(secret, 0x41, sizeof secret);
    assert_true(jwk_oct("k1", secret, sizeof secret, &k1));
    secret[0] ^= 1;
    assert_true(jwk_oct("k1", secret, sizeof secret, &k1_rotated)); /* same kid, new secret */
    assert_true(jwk_generate_oct("k2", 32, &other));
    json_t *c = json_pack("{s:s, s:I, s:s, s:s}", "iss", "csp", "exp", (json_int_t)2000000100, "cdniip",
                          "198.51.100.0/24", "cdniuc", "regex:https://v\\.example/s/[0-9]+\\.ts");
    char *tok = us_mint(&k1, JWS_HS256, c);
    json_decref(c);
    assert_non_null(tok);
    jwk_set s1 = {.keys = &k1, .n = 1}, s_rot = {.keys = &k1_rotated, .n = 1}, s_other = {.keys = &other, .n = 1};
    us_trust trust = {"csp", &s1, false};
    us_verifier v = {.trust = &trust, .n_trust = 1};
    us_policy p;
    us_policy_default(&p);
    struct {
        const char *uri, *ip;
        long long now;
        const jwk_set *keys;
        us_code want;
    } steps[] = {
        {"https://v.example/s/1.ts", "198.51.100.7", 2000000000, &s1, US_VERIFIED},
        {"https://v.example/s/2.ts", "198.51.100.7", 2000000000, &s1, US_VERIFIED}, /* remembered */
        {"https://v.example/s/x.ts", "198.51.100.7", 2000000000, &s1, US_BAD_URI_CONTAINER},
        {"https://v.example/s/3.ts", "203.0.113.9", 2000000000, &s1, US_BAD_CLIENT_IP},
        {"https://v.example/s/4.ts", "198.51.100.7", 2000000100, &s1, US_EXPIRED},
        {"https://v.example/s/5.ts", "198.51.100.7", 2000000000, &s_rot, US_BAD_SIGNATURE},
        {"https://v.example/s/6.ts", "198.51.100.7", 2000000000, &s_other, US_BAD_SIGNATURE},
        {"https://v.example/s/7.ts", "198.51.100.7", 2000000000, &s1, US_VERIFIED},
    };
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
        trust.keys = steps[i].keys;
        char uri[1024];
        snprintf(uri, sizeof uri, "%s?URISigningPackage=%s", steps[i].uri, tok);
        us_request rq = {.uri = uri, .client_ip = steps[i].ip, .now = steps[i].now};
        us_result r;
        us_code got = us_check(&v, &p, &rq, &r);
        if (got != steps[i].want)
            fail_msg("step %zu: got %d (%s), want %d", i, got, r.reason, steps[i].want);
        if (got == US_VERIFIED)
            assert_string_equal(json_string_value(json_object_get(r.claims, "iss")), "csp");
        us_result_free(&r);
    }
    /* the issuer a remembered token is trusted under is today's */
    us_trust two[] = {{"someone-else", &s_other, false}, {"csp", &s1, false}};
    v.trust = two;
    v.n_trust = 2;
    char uri[1024];
    snprintf(uri, sizeof uri, "https://v.example/s/8.ts?URISigningPackage=%s", tok);
    us_request rq = {.uri = uri, .client_ip = "198.51.100.9", .now = 2000000000};
    us_result r;
    assert_int_equal(us_check(&v, &p, &rq, &r), US_VERIFIED);
    assert_string_equal(r.issuer, "csp");
    us_result_free(&r);
    free(tok);
    us_policy_free(&p);
}

static void test_package_dropped_from_uris_before_logging(void **st)
{
    char a[] = "/a.ts?x=1&URISigningPackage=tok&y=2", b[] = "/a.ts?urisigningpackage=tok",
         c[] = "/a.ts?x=1&URISigningPackage=tok", d[] = "/a.ts?URISigningPackagex=1", e[] = "/a.ts";
    us_drop_package(a, US_DEFAULT_PACKAGE);
    us_drop_package(b, US_DEFAULT_PACKAGE);
    us_drop_package(c, US_DEFAULT_PACKAGE);
    us_drop_package(d, US_DEFAULT_PACKAGE);
    us_drop_package(e, US_DEFAULT_PACKAGE);
    assert_string_equal(a, "/a.ts?x=1&y=2");
    assert_string_equal(b, "/a.ts");
    assert_string_equal(c, "/a.ts?x=1");
    assert_string_equal(d, "/a.ts?URISigningPackagex=1");
    assert_string_equal(e, "/a.ts");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_package_dropped_from_uris_before_logging),
        cmocka_unit_test(test_rfc_simple_example_hash_container),
        cmocka_unit_test(test_rfc_complex_example_jwe_client_ip_audience_and_jti),
        cmocka_unit_test(test_every_refusal_code),
        cmocka_unit_test(test_token_removal_rules),
        cmocka_unit_test(test_renewal_and_hop_claims_and_cookie),
        cmocka_unit_test(test_rfc_renewal_example_and_policy_errors),
        cmocka_unit_test(test_remembered_tokens_are_checked_again),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
