/* URI signing at a hop (signing/hop) and session cookies (signing/cookie_auth). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <regex.h>

#include <cmocka.h>

#include "manifest/hls.h"
#include "signing/hop.h"
#include "signing/manifest_tokens.h"

#define NOW 2000000000LL

static jwk csp, me, other;
static jwk_set csp_set, my_set;
static hop_conf conf;

static int setup(void **st)
{
    assert_true(jwk_generate_ec("csp-1", &csp));
    assert_true(jwk_generate_ec("me-1", &me));
    assert_true(jwk_generate_ec("other-1", &other));
    csp_set = (jwk_set){&csp, 1};
    my_set = (jwk_set){&me, 1};
    conf = (hop_conf){.cdn_id = "ucdn-a", .issuer = "ucdn-a", .key = &me, .alg = JWS_ES256,
                      .own_keys = &my_set, .session_ttl_s = 300};
    return 0;
}

static int teardown(void **st)
{
    jwk_clear(&csp);
    jwk_clear(&me);
    jwk_clear(&other);
    return 0;
}

static char *tok(const jwk *k, const char *claims_json)
{
    json_t *c = json_loads(claims_json, 0, NULL);
    assert_non_null(c);
    char *t = us_mint(k, JWS_ES256, c);
    json_decref(c);
    assert_non_null(t);
    return t;
}

static bool run(const char *target, const char *cookie, json_t *policy, bool manifest, hop_result *r)
{
    us_trust trust = {NULL, &csp_set, false};
    hop_request q = {.scheme = "https", .host = "v.example", .target = target, .cookie = cookie,
                     .client_ip = "192.0.2.7", .now = NOW, .policy = policy, .collection = "m1",
                     .top_manifest = manifest};
    return hop_check(&conf, &trust, 1, &q, r);
}

static void test_open_enforced_and_next_hop_token(void **st)
{
    hop_result r;
    /* no policy, or enforce false: open, token left where it is */
    assert_true(run("/a.ts?URISigningPackage=x", NULL, NULL, false, &r));
    assert_int_equal(r.method, HOP_OPEN);
    assert_null(r.target);
    hop_result_free(&r);
    json_t *off = json_pack("{s:b}", "enforce", 0), *on = json_pack("{s:[s]}", "issuers", "csp");
    assert_true(run("/a.ts", NULL, off, false, &r));
    assert_int_equal(r.method, HOP_OPEN);
    hop_result_free(&r);
    /* enforced: no token is a 400 refusal */
    assert_false(run("/a.ts", NULL, on, false, &r));
    assert_int_equal(r.code, US_BAD_SIGNATURE);
    hop_result_free(&r);
    /* a CSP token: allowed, removed from the target, re-signed for the next hop */
    char *t = tok(&csp, "{\"iss\":\"csp\",\"exp\":2000000600,\"cdniuc\":\"regex:https://v\\\\.example/.*\"}");
    char target[1024];
    snprintf(target, sizeof target, "/vod/a.ts?sid=1&URISigningPackage=%s", t);
    assert_true(run(target, NULL, on, false, &r));
    assert_int_equal(r.method, HOP_TOKEN);
    assert_string_equal(r.target, "/vod/a.ts?sid=1");
    assert_null(r.set_cookie[1]); /* not a manifest: no session */
    char *loc = hop_next_location(&conf, NULL, 0, HOP_PROFILE_RFC9246, &r, "dcdn-b", "http://se1.dcdn/vod/a.ts?sid=1", NOW);
    assert_non_null(loc);
    assert_non_null(strstr(loc, "http://se1.dcdn/vod/a.ts?sid=1&URISigningPackage="));
    /* which the next hop accepts with our key only, for that host's directory */
    us_trust mine = {"ucdn-a", &my_set, false};
    const char *aud[] = {"dcdn-b"};
    us_verifier v = {.trust = &mine, .n_trust = 1, .audiences = aud, .n_audiences = 1};
    us_policy p;
    us_policy_default(&p);
    us_request rq = {.uri = loc, .now = NOW};
    us_result ur;
    assert_int_equal(us_check(&v, &p, &rq, &ur), US_VERIFIED);
    assert_string_equal(json_string_value(json_object_get(ur.claims, "cdniuc")),
                        "regex:http://se1\\.dcdn/vod/[^?#]*([?].*)?");
    assert_int_equal(json_integer_value(json_object_get(ur.claims, "exp")), 2000000600);
    us_result_free(&ur);
    free(loc);
    hop_result_free(&r);
    /* the same token with a key the metadata's issuer list does not name */
    free(t);
    t = tok(&csp, "{\"iss\":\"someone\",\"cdniuc\":\"regex:.*\"}");
    snprintf(target, sizeof target, "/vod/a.ts?URISigningPackage=%s", t);
    assert_false(run(target, NULL, on, false, &r));
    assert_int_equal(r.code, US_BAD_ISSUER);
    hop_result_free(&r);
    free(t);
    us_policy_free(&p);
    json_decref(off);
    json_decref(on);
}

static void test_session_cookie_and_renewal(void **st)
{
    json_t *on = json_object();
    hop_result r;
    char target[1024], cookie[4096];
    /* a manifest authorized by token starts a session */
    char *t = tok(&csp, "{\"exp\":2000000600,\"cdniuc\":\"regex:https://v\\\\.example/.*\"}");
    snprintf(target, sizeof target, "/vod/master.m3u8?URISigningPackage=%s", t);
    assert_true(run(target, NULL, on, true, &r));
    assert_non_null(r.set_cookie[1]);
    assert_non_null(strstr(r.set_cookie[1], "; Path=/; Max-Age=300; HttpOnly; SameSite=Lax; Secure"));
    snprintf(cookie, sizeof cookie, "a=b; %.*s", (int)strcspn(r.set_cookie[1], ";"), r.set_cookie[1]);
    hop_result_free(&r);
    free(t);
    /* a segment with the cookie alone */
    assert_true(run("/vod/720/seg_1.ts", cookie, on, false, &r));
    assert_int_equal(r.method, HOP_COOKIE);
    char *loc = hop_next_location(&conf, NULL, 0, HOP_PROFILE_RFC9246, &r, "dcdn-b", "http://se1/vod/720/seg_1.ts", NOW);
    assert_non_null(loc);
    free(loc);
    hop_result_free(&r);
    /* a token cookie that does not verify (stale, another CDN's) leaves the session cookie to decide */
    char mixed[4200];
    snprintf(mixed, sizeof mixed, "URISigningPackage=eyJhbGciOiJub25lIn0.e30.; %s", cookie);
    assert_true(run("/vod/720/seg_1.ts", mixed, on, false, &r));
    assert_int_equal(r.method, HOP_COOKIE);
    hop_result_free(&r);
    /* a token in the URI that fails is a refusal, whatever cookie comes along */
    snprintf(target, sizeof target, "/vod/720/seg_1.ts?URISigningPackage=eyJhbGciOiJub25lIn0.e30.");
    assert_false(run(target, cookie, on, false, &r));
    hop_result_free(&r);
    /* the cookie, checked directly: other collection, other client, expired, forged */
    const char *val = strchr(cookie, ';') + 2;
    assert_int_equal(ca_check(&my_set, "ucdn-a", val, "m1", NULL, NOW, 0, NULL), CA_OK);
    assert_int_equal(ca_check(&my_set, "ucdn-a", val, "m2", NULL, NOW, 0, NULL), CA_OTHER_COLLECTION);
    assert_int_equal(ca_check(&my_set, "ucdn-a", val, "m1", NULL, NOW + 300, 0, NULL), CA_EXPIRED);
    assert_int_equal(ca_check(&my_set, "dcdn-b", val, "m1", NULL, NOW, 0, NULL), CA_BAD_SIGNATURE);
    jwk_set others = {&other, 1};
    assert_int_equal(ca_check(&others, "ucdn-a", val, "m1", NULL, NOW, 0, NULL), CA_BAD_SIGNATURE);
    assert_int_equal(ca_check(&my_set, "ucdn-a", "x=1", "m1", NULL, NOW, 0, NULL), CA_ABSENT);
    /* several of that name (another CDN's first, as a shared cookie jar sends them): ours is found */
    char *theirs = ca_mint(&other, JWS_ES256, "dcdn-b", "m1", NULL, NULL, NOW, 60);
    char *ours_m2 = ca_mint(&me, JWS_ES256, "ucdn-a", "m2", NULL, NULL, NOW, 60);
    char many[8192];
    snprintf(many, sizeof many, CA_COOKIE_NAME "=%s; a=b; " CA_COOKIE_NAME "=%s", theirs, val + strlen(CA_COOKIE_NAME) + 1);
    assert_int_equal(ca_check(&my_set, "ucdn-a", many, "m1", NULL, NOW, 0, NULL), CA_OK);
    /* none passes: the refusal says what is wrong with ours, not with theirs */
    snprintf(many, sizeof many, CA_COOKIE_NAME "=%s; " CA_COOKIE_NAME "=%s", theirs, ours_m2);
    assert_int_equal(ca_check(&my_set, "ucdn-a", many, "m1", NULL, NOW, 0, NULL), CA_OTHER_COLLECTION);
    snprintf(many, sizeof many, CA_COOKIE_NAME "=%s", theirs);
    assert_int_equal(ca_check(&my_set, "ucdn-a", many, "m1", NULL, NOW, 0, NULL), CA_BAD_SIGNATURE);
    free(theirs);
    free(ours_m2);
    char *bound = ca_mint(&me, JWS_ES256, "ucdn-a", "m1", "192.0.2.7", NULL, NOW, 60);
    snprintf(cookie, sizeof cookie, CA_COOKIE_NAME "=%s", bound);
    assert_int_equal(ca_check(&my_set, "ucdn-a", cookie, "m1", "192.0.2.7", NOW, 0, NULL), CA_OK);
    assert_int_equal(ca_check(&my_set, "ucdn-a", cookie, "m1", "192.0.2.8", NOW, 0, NULL), CA_OTHER_CLIENT);
    free(bound);
    /* renewal by cookie: cdnistt 1 gets a fresh token of ours for cdniets seconds */
    t = tok(&csp, "{\"exp\":2000000010,\"cdnistt\":1,\"cdniets\":30,\"cdnistd\":1,"
                  "\"cdniuc\":\"regex:https://v\\\\.example/.*\"}");
    snprintf(target, sizeof target, "/vod/seg_9.ts?URISigningPackage=%s", t);
    assert_true(run(target, NULL, on, false, &r));
    assert_non_null(r.set_cookie[0]);
    assert_int_equal(strncmp(r.set_cookie[0], "URISigningPackage=", 18), 0);
    assert_non_null(strstr(r.set_cookie[0], "; Path=/vod; Max-Age=30;"));
    /* and that cookie, back at us, is a token we accept (our issuer, our aud) */
    snprintf(cookie, sizeof cookie, "%.*s", (int)strcspn(r.set_cookie[0], ";"), r.set_cookie[0]);
    hop_result_free(&r);
    assert_true(run("/vod/seg_10.ts", cookie, on, false, &r));
    assert_int_equal(r.method, HOP_TOKEN);
    assert_non_null(r.set_cookie[0]); /* renewed again: the chain goes on */
    hop_result_free(&r);
    free(t);
    /* renewal by query (cdnistt 2): the token in our redirect is the renewed one */
    t = tok(&csp, "{\"exp\":2000000010,\"cdnistt\":2,\"cdniets\":45,\"cdniuc\":\"regex:https://v\\\\.example/.*\"}");
    snprintf(target, sizeof target, "/vod/seg_11.ts?URISigningPackage=%s", t);
    assert_true(run(target, NULL, on, false, &r));
    assert_null(r.set_cookie[0]);
    loc = hop_next_location(&conf, NULL, 0, HOP_PROFILE_RFC9246, &r, "dcdn-b", "http://se1/vod/seg_11.ts", NOW);
    assert_non_null(loc);
    jws_verified jv;
    const char *rt = strstr(loc, "URISigningPackage=") + 18;
    assert_int_equal(jws_verify(rt, strlen(rt), NULL, &my_set, &jv), JWS_OK);
    json_t *rc = json_loadb((const char *)jv.payload, jv.payload_len, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(rc, "exp")), NOW + 45);
    assert_int_equal(json_integer_value(json_object_get(rc, "cdnistt")), 2);
    json_decref(rc);
    jws_verified_free(&jv);
    free(loc);
    hop_result_free(&r);
    free(t);
    json_decref(on);
}

static void test_metadata_for_peers_names_us(void **st)
{
    json_t *doc = json_loads("{\"metadata\":[{\"generic-metadata-type\":\"MI.UriSigning\","
                             "\"generic-metadata-value\":{\"issuers\":[\"csp\"],\"jwt-header\":\"x\"}}],"
                             "\"paths\":[{\"path-metadata\":{\"metadata\":[{\"generic-metadata-type\":"
                             "\"MI.UriSigning\",\"generic-metadata-value\":{}}]}}]}",
                             0, NULL);
    assert_non_null(doc);
    hop_policy_for_peers(doc, "ucdn-a");
    char *s = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(s, "{\"metadata\":[{\"generic-metadata-type\":\"MI.UriSigning\","
                           "\"generic-metadata-value\":{\"issuers\":[\"ucdn-a\"]}}],"
                           "\"paths\":[{\"path-metadata\":{\"metadata\":[{\"generic-metadata-type\":"
                           "\"MI.UriSigning\",\"generic-metadata-value\":{\"issuers\":[\"ucdn-a\"]}}]}}]}");
    free(s);
    json_decref(doc);
}

/* The token a URI of a served manifest carries: what its own claims say. */
static json_t *claims_of(const char *uri_with_token, const char *aud_want)
{
    us_trust mine = {"ucdn-a", &my_set, true}, theirs = {NULL, &csp_set, false};
    us_trust both[] = {theirs, mine};
    const char *aud[] = {aud_want};
    us_verifier v = {.trust = both, .n_trust = 2, .audiences = aud, .n_audiences = 1};
    us_policy p;
    us_policy_default(&p);
    us_request rq = {.uri = uri_with_token, .now = NOW};
    us_result ur;
    json_t *c = us_check(&v, &p, &rq, &ur) == US_VERIFIED ? json_deep_copy(ur.claims) : NULL;
    us_result_free(&ur);
    us_policy_free(&p);
    return c;
}

/* The n-th URI line (0-based) of an HLS playlist, made absolute on base_dir. */
static char *nth_uri(const char *pl, int n, const char *base_dir)
{
    const char *l = pl;
    for (int k = -1; *l;) {
        const char *e = strchr(l, '\n');
        size_t len = e ? (size_t)(e - l) : strlen(l);
        if (len && l[0] != '#' && ++k == n) {
            char *out = malloc(strlen(base_dir) + len + 1);
            if (strncmp(l, "http", 4) == 0)
                sprintf(out, "%.*s", (int)len, l);
            else
                sprintf(out, "%s%.*s", base_dir, (int)len, l);
            return out;
        }
        l = e ? e + 1 : l + len;
    }
    return NULL;
}

static void test_manifest_tokens_on_every_uri(void **st)
{
    json_t *on = json_pack("{s:[s]}", "issuers", "csp");
    const char *pl = "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:2,\nseg_1.ts\n#EXTINF:2,\nsub/seg_2.ts?x=1\n"
                     "#EXTINF:2,\n../../other/seg_3.ts\n#EXTINF:2,\nhttps://ads.example/ad.ts\n";
    const char *base = "https://v.example/vod/m1/720p/index.m3u8", *dir = "https://v.example/vod/m1/720p/";
    /* a session token (regex, no jti) covering /vod/m1/: attached again where it covers */
    char *t = tok(&csp, "{\"iss\":\"csp\",\"exp\":2000000600,\"cdniuc\":\"regex:https://v\\\\.example/vod/m1/.*\"}");
    char target[1024];
    snprintf(target, sizeof target, "/vod/m1/720p/index.m3u8?URISigningPackage=%s", t);
    hop_result r;
    assert_true(run(target, NULL, on, true, &r));
    assert_string_equal(r.token, t);
    assert_int_equal(r.session_auth, HOP_SESSION_BOTH);
    assert_non_null(r.set_cookie[1]); /* both: the session cookie too */
    const char *hosts[] = {"v.example", NULL};
    mt_tokens mt = {.conf = &conf, .hr = &r, .aud = "ucdn-a", .base = base, .now = NOW};
    mf_policy p = {.base = base, .hosts = hosts, .target = "https://v.example", .hook = mt_hook, .hook_ud = &mt};
    assert_true(mf_policy_prepare(&p));
    buf out;
    buf_init(&out, 1024, 1 << 20);
    assert_int_equal(hls_rewrite(pl, strlen(pl), 1 << 20, &p, &out, NULL), HLS_OK);
    buf_add(&out, "", 1);
    const char *o = out.data;
    assert_non_null(strstr(o, "#EXT-X-MAP:URI=\"init.mp4?URISigningPackage="));
    assert_non_null(strstr(o, "https://ads.example/ad.ts\n")); /* a third party's: untouched */
    /* seg_1 and sub/seg_2 carry the request's own token; seg_3, outside it, one of ours */
    char *u1 = nth_uri(o, 0, dir), *u2 = nth_uri(o, 1, dir), *u3 = nth_uri(o, 2, dir);
    assert_non_null(strstr(u1, t));
    assert_non_null(strstr(u2, "sub/seg_2.ts?x=1&URISigningPackage="));
    assert_non_null(strstr(u2, t));
    assert_null(strstr(u3, t));
    assert_int_equal(mt.reused, 3); /* init.mp4, seg_1, seg_2 */
    assert_int_equal(mt.minted, 1);
    /* resolved as the player resolves it: /vod/other/seg_3.ts, which its token covers (our key, our aud) */
    char abs3[2048];
    snprintf(abs3, sizeof abs3, "https://v.example/vod/other/seg_3.ts%s", strchr(u3, '?'));
    json_t *c3 = claims_of(abs3, "ucdn-a");
    assert_non_null(c3);
    assert_string_equal(json_string_value(json_object_get(c3, "iss")), "ucdn-a");
    assert_int_equal(json_integer_value(json_object_get(c3, "exp")), 2000000600);
    assert_non_null(json_object_get(c3, "sid")); /* the session travels on */
    json_decref(c3);
    free(u1), free(u2), free(u3);
    mt_free(&mt);
    buf_free(&out);
    hop_result_free(&r);
    free(t);

    /* a one-time token (jti) is never attached again, nor put in what we mint */
    t = tok(&csp, "{\"iss\":\"csp\",\"exp\":2000000600,\"jti\":\"n-1\",\"cdniuc\":\"regex:https://v\\\\.example/.*\"}");
    snprintf(target, sizeof target, "/vod/m1/720p/index.m3u8?URISigningPackage=%s", t);
    conf.jti_fresh = NULL;
    assert_false(run(target, NULL, on, true, &r)); /* no jti store here: refused, as §2.1.7 says */
    hop_result_free(&r);
    free(t);
    t = tok(&csp, "{\"iss\":\"csp\",\"exp\":2000000600,\"cdniuc\":\"regex:https://v\\\\.example/.*\",\"cdnistt\":1,\"cdniets\":30}");
    snprintf(target, sizeof target, "/vod/m1/720p/index.m3u8?URISigningPackage=%s", t);
    assert_true(run(target, NULL, on, true, &r));
    assert_null(r.token); /* a token to renew: ours are minted instead */
    mt = (mt_tokens){.conf = &conf, .hr = &r, .aud = "ucdn-a", .base = base, .now = NOW};
    buf_init(&out, 1024, 1 << 20);
    assert_int_equal(hls_rewrite(pl, strlen(pl), 1 << 20, &p, &out, NULL), HLS_OK);
    assert_int_equal(mt.reused, 0);
    assert_int_equal(mt.minted, 2); /* the playlist's directory, and /vod/other/ */
    mt_free(&mt);
    buf_free(&out);
    hop_result_free(&r);
    free(t);

    /* "query": no session cookie; "cookie" is the configuration's to refuse without cookies */
    t = tok(&csp, "{\"iss\":\"csp\",\"exp\":2000000600,\"cdniuc\":\"regex:https://v\\\\.example/.*\"}");
    snprintf(target, sizeof target, "/vod/m1/720p/index.m3u8?URISigningPackage=%s", t);
    conf.session_auth = HOP_SESSION_QUERY;
    assert_true(run(target, NULL, on, true, &r));
    assert_null(r.set_cookie[1]);
    assert_int_equal(r.session_auth, HOP_SESSION_QUERY);
    hop_result_free(&r);
    conf.session_auth = HOP_SESSION_DEFAULT;
    free(t);
    json_decref(on);
}

static bool fresh(void *ctx, const char *jti, long long exp_s)
{
    (void)ctx, (void)jti, (void)exp_s;
    return true;
}

/* The ATS profile: what a CSP's per-URL, one-time, client-bound, renewing
 * token becomes for a Traffic Server verifier. */
static void test_ats_profile_mints_only_what_ats_accepts(void **st)
{
    char hash[128], claims[1024], target[2048];
    assert_true(us_uri_hash("https://v.example/vod/a.ts", hash, sizeof hash));
    snprintf(claims, sizeof claims,
             "{\"iss\":\"csp\",\"exp\":2000000010,\"jti\":\"one-1\",\"cdniip\":\"192.0.2.7\",\"cdnistt\":2,"
             "\"cdniets\":45,\"cdniuc\":\"hash:%s\"}",
             hash);
    char *t = tok(&csp, claims);
    json_t *on = json_pack("{s:[s]}", "issuers", "csp");
    conf.jti_fresh = fresh;
    snprintf(target, sizeof target, "/vod/a.ts?URISigningPackage=%s", t);
    hop_result r;
    assert_true(run(target, NULL, on, false, &r));
    conf.jti_fresh = NULL;
    const char *next = "http://ats.dcdn:8080/vod/a.ts";
    /* RFC 9246 profile: the hash of the next URL, and what the CSP asked for */
    char *loc = hop_next_location(&conf, NULL, 0, HOP_PROFILE_RFC9246, &r, "dcdn-b", next, NOW);
    jws_verified jv;
    const char *rt = strstr(loc, "URISigningPackage=") + 18;
    assert_int_equal(jws_verify(rt, strlen(rt), NULL, &my_set, &jv), JWS_OK);
    json_t *rc = json_loadb((const char *)jv.payload, jv.payload_len, 0, NULL);
    assert_int_equal(strncmp(json_string_value(json_object_get(rc, "cdniuc")), "hash:", 5), 0);
    assert_string_equal(json_string_value(json_object_get(rc, "jti")), "one-1");
    assert_non_null(json_object_get(rc, "cdniip"));
    assert_int_equal(json_integer_value(json_object_get(rc, "cdnistt")), 2);
    json_decref(rc);
    jws_verified_free(&jv);
    free(loc);
    /* ATS profile: a regex of exactly that URL, no jti, cdniip or cdnistt 2,
     * the renewed expiry in exp; the session id stays (ATS ignores it) */
    loc = hop_next_location(&conf, NULL, 0, HOP_PROFILE_ATS, &r, "dcdn-b", next, NOW);
    assert_non_null(loc);
    rt = strstr(loc, "URISigningPackage=") + 18;
    assert_int_equal(jws_verify(rt, strlen(rt), NULL, &my_set, &jv), JWS_OK);
    rc = json_loadb((const char *)jv.payload, jv.payload_len, 0, NULL);
    const char *uc = json_string_value(json_object_get(rc, "cdniuc"));
    assert_string_equal(uc, "regex:http://ats\\.dcdn:8080/vod/a\\.ts([?].*)?$");
    static const char *const gone[] = {"jti", "cdniip", "cdnistt", "cdniets", "cdnicrit"};
    for (size_t i = 0; i < sizeof gone / sizeof *gone; i++)
        assert_null(json_object_get(rc, gone[i]));
    assert_int_equal(json_integer_value(json_object_get(rc, "exp")), NOW + 45);
    assert_string_equal(json_string_value(json_object_get(rc, "iss")), "ucdn-a");
    assert_string_equal(json_string_value(json_object_get(rc, "aud")), "dcdn-b");
    assert_non_null(json_object_get(rc, "sid"));
    /* the regex, as ATS matches it (the whole URL with its token), covers
     * this URL and no other */
    regex_t re;
    assert_int_equal(regcomp(&re, uc + 6, REG_EXTENDED | REG_NOSUB), 0);
    assert_int_equal(regexec(&re, loc, 0, NULL, 0), 0);
    assert_int_equal(regexec(&re, "http://ats.dcdn:8080/vod/a.ts", 0, NULL, 0), 0);
    assert_int_not_equal(regexec(&re, "http://ats.dcdn:8080/vod/a.tsx", 0, NULL, 0), 0);
    assert_int_not_equal(regexec(&re, "http://ats.dcdn:8080/vod/aXts", 0, NULL, 0), 0);
    assert_int_not_equal(regexec(&re, "http://ats.dcdn:8080/vod/a.ts/../b.ts", 0, NULL, 0), 0);
    regfree(&re);
    json_decref(rc);
    jws_verified_free(&jv);
    free(loc);
    /* a URL with a query: the token's own parameter follows with '&' */
    loc = hop_next_location(&conf, NULL, 0, HOP_PROFILE_ATS, &r, "dcdn-b", "http://ats.dcdn/a.ts?x=(1)", NOW);
    rt = strstr(loc, "URISigningPackage=") + 18;
    assert_int_equal(jws_verify(rt, strlen(rt), NULL, &my_set, &jv), JWS_OK);
    rc = json_loadb((const char *)jv.payload, jv.payload_len, 0, NULL);
    uc = json_string_value(json_object_get(rc, "cdniuc"));
    assert_string_equal(uc, "regex:http://ats\\.dcdn/a\\.ts\\?x=\\(1\\)(&.*)?$");
    assert_int_equal(regcomp(&re, uc + 6, REG_EXTENDED | REG_NOSUB), 0);
    assert_int_equal(regexec(&re, loc, 0, NULL, 0), 0);
    assert_int_not_equal(regexec(&re, "http://ats.dcdn/a.ts?x=(2)", 0, NULL, 0), 0);
    regfree(&re);
    json_decref(rc);
    jws_verified_free(&jv);
    free(loc);
    assert_int_equal(hop_profile_from_name(NULL), HOP_PROFILE_RFC9246);
    assert_int_equal(hop_profile_from_name("ats"), HOP_PROFILE_ATS);
    assert_int_equal(hop_profile_from_name("ATS "), -1);
    hop_result_free(&r);
    json_decref(on);
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_enforced_and_next_hop_token),
        cmocka_unit_test(test_session_cookie_and_renewal),
        cmocka_unit_test(test_metadata_for_peers_names_us),
        cmocka_unit_test(test_manifest_tokens_on_every_uri),
        cmocka_unit_test(test_ats_profile_mints_only_what_ats_accepts),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
