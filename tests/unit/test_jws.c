/* base64url, JWK and compact JWS: the RFC 9246 example tokens, every
 * refusal path, rotation by kid, and sign/verify round trips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/b64url.h"
#include "signing/jwk.h"
#include "signing/jws.h"
#include "testutil.h"

static void load_set(const char *json, jwk_set *s)
{
    jerr e;
    json_t *v = jparse(json, strlen(json), 1 << 16, &e);
    assert_non_null(v);
    if (!jwk_set_parse(v, "$", s, &e))
        fail_msg("%s: %s", e.path, e.reason);
    json_decref(v);
}

static void rfc_keys(jwk_set *s)
{
    jerr e;
    if (!jwk_set_load("tests/data/rfc9246/jwks.json", s, &e))
        fail_msg("%s: %s", e.path, e.reason);
    assert_int_equal(s->n, 3);
}

static void test_b64url(void **st)
{
    char out[32];
    assert_int_equal(b64url_encode((const unsigned char *)"\xfb\xff", 2, out, sizeof out), 3);
    assert_string_equal(out, "-_8");
    assert_int_equal(b64url_encode((const unsigned char *)"", 0, out, sizeof out), 0);
    unsigned char d[32];
    size_t n;
    assert_true(b64url_decode("-_8", 3, d, sizeof d, &n));
    assert_int_equal(n, 2);
    assert_memory_equal(d, "\xfb\xff", 2);
    assert_true(b64url_decode("aGVsbG8", 7, d, sizeof d, &n));
    assert_int_equal(n, 5);
    assert_memory_equal(d, "hello", 5);
    assert_false(b64url_decode("aGVsbG8=", 8, d, sizeof d, &n)); /* padding */
    assert_false(b64url_decode("+/8", 3, d, sizeof d, &n));       /* standard alphabet */
    assert_false(b64url_decode("a", 1, d, sizeof d, &n));         /* impossible length */
    assert_false(b64url_decode("aGVsbG9", 7, d, sizeof d, &n));   /* non-zero spare bits */
    assert_false(b64url_decode("aGV sbG8", 8, d, sizeof d, &n));  /* whitespace */
    assert_false(b64url_decode("aGVsbG8", 7, d, 4, &n));          /* too small */
    /* longer than one internal block */
    unsigned char big[1000], back[1000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (unsigned char)(i * 7);
    char enc[B64URL_ENC_LEN(1000)];
    size_t el = b64url_encode(big, sizeof big, enc, sizeof enc);
    assert_int_equal(el, 1334);
    assert_true(b64url_decode(enc, el, back, sizeof back, &n));
    assert_int_equal(n, 1000);
    assert_memory_equal(big, back, 1000);
}

static void test_rfc9246_examples_verify_with_the_public_key(void **st)
{
    jwk_set s;
    rfc_keys(&s);
    jwk_set pub = {.keys = &s.keys[0], .n = 1}; /* the public key alone */
    assert_false(s.keys[0].has_private);
    assert_true(s.keys[1].has_private);
    assert_true(s.keys[2].enc);
    static const char *names[] = {"a1-simple", "a2-complex", "a3-renewal", "a3-renewed"};
    for (size_t i = 0; i < 4; i++) {
        char *t = rfc9246_token(names[i]);
        jws_verified v;
        jws_status r = jws_verify(t, strlen(t), NULL, &pub, &v);
        if (r != JWS_OK)
            fail_msg("%s: %s", names[i], jws_status_text(r));
        assert_int_equal(v.alg, JWS_ES256);
        assert_string_equal(v.kid, "P5UpOv0eMq1wcxLf7WxIg09JdSYGYFDOWkldueaImf0");
        if (i == 0)
            assert_string_equal((char *)v.payload,
                                "{\"exp\":1646867369,\"iss\":\"uCDN Inc\",\"cdniuc\":\"hash:sha-256;"
                                "2tderfWPa86Ku7YnzW51YUp7dGUjBS_3SW3ELx4hmWY\"}");
        jws_verified_free(&v);
        /* one changed payload character breaks it */
        char *d1 = strchr(t, '.');
        d1[5] = d1[5] == 'A' ? 'B' : 'A';
        assert_int_equal(jws_verify(t, strlen(t), NULL, &pub, &v), JWS_BAD_SIGNATURE);
        free(t);
    }
    /* the header may come from the metadata instead (RFC 9246 §2.2) */
    char *t = rfc9246_token("a1-simple");
    char *d1 = strchr(t, '.');
    *d1 = 0;
    jws_verified v;
    assert_int_equal(jws_verify(d1 + 1, strlen(d1 + 1), t, &pub, &v), JWS_OK);
    jws_verified_free(&v);
    assert_int_equal(jws_verify(d1 + 1, strlen(d1 + 1), NULL, &pub, &v), JWS_MALFORMED);
    free(t);
    jwk_set_free(&s);
}

static char *forge(const char *header_json, const char *payload_json, const char *sig)
{
    char h[512], p[512];
    b64url_encode((const unsigned char *)header_json, strlen(header_json), h, sizeof h);
    b64url_encode((const unsigned char *)payload_json, strlen(payload_json), p, sizeof p);
    char *out = malloc(strlen(h) + strlen(p) + strlen(sig) + 3);
    sprintf(out, "%s.%s.%s", h, p, sig);
    return out;
}

static void test_refusals(void **st)
{
    jwk_set s;
    rfc_keys(&s);
    jws_verified v;
    const char *claims = "{\"exp\":1646867369}";
    /* header by header: what a forged token gets */
    static const struct {
        const char *header, *sig;
        jws_status want;
    } forgeries[] = {
        {"{\"alg\":\"none\"}", "", JWS_MALFORMED}, /* alg none, without a signature */
        {"{\"alg\":\"none\"}", "AAAA", JWS_BAD_ALG}, /* and with one */
        {"{\"alg\":\"RS256\"}", "AAAA", JWS_BAD_ALG},
        {"{\"alg\":\"ES256\",\"crit\":[\"exp\"],\"exp\":1}", "AAAA", JWS_CRIT}, /* an extension we lack */
        {"alg", "AAAA", JWS_MALFORMED},                /* header not JSON */
        {"[1]", "AAAA", JWS_MALFORMED},                /* not an object */
        {"{\"alg\":256}", "AAAA", JWS_MALFORMED},      /* alg not a string */
        {"{\"alg\":\"HS256\"}", "AAAA.AAAA", JWS_MALFORMED}, /* four parts */
    };
    char *t;
    for (size_t i = 0; i < sizeof forgeries / sizeof *forgeries; i++) {
        t = forge(forgeries[i].header, claims, forgeries[i].sig);
        if (jws_verify(t, strlen(t), NULL, &s, &v) != forgeries[i].want)
            fail_msg("forged header %s: got %d, want %d", forgeries[i].header, jws_verify(t, strlen(t), NULL, &s, &v),
                     forgeries[i].want);
        free(t);
    }
    /* algorithm confusion: an HMAC token "signed" with the EC public key's
     * coordinates as the secret finds no key, since the set has no oct
     * signing key (the oct key there is use=enc) */
    jwk conf;
    unsigned char pub[65];
    size_t pl;
    assert_true(EVP_PKEY_get_octet_string_param(s.keys[0].pkey, "pub", pub, sizeof pub, &pl));
    assert_true(jwk_oct(NULL, pub + 1, 64, &conf));
    char *forged = jws_sign(&conf, JWS_HS256, claims, strlen(claims));
    assert_non_null(forged);
    assert_int_equal(jws_verify(forged, strlen(forged), NULL, &s, &v), JWS_NO_KEY);
    free(forged);
    /* and an ES256 token is never checked against an oct key */
    jwk_set octs;
    load_set("{\"keys\":[{\"kty\":\"oct\",\"kid\":\"P5UpOv0eMq1wcxLf7WxIg09JdSYGYFDOWkldueaImf0\","
             "\"k\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\"}]}",
             &octs);
    t = rfc9246_token("a1-simple");
    assert_int_equal(jws_verify(t, strlen(t), NULL, &octs, &v), JWS_NO_KEY);
    free(t);
    jwk_set_free(&octs);
    /* a kid nobody has */
    jwk_set none = {0};
    t = rfc9246_token("a1-simple");
    assert_int_equal(jws_verify(t, strlen(t), NULL, &none, &v), JWS_NO_KEY);
    free(t);
    jwk_set_free(&s);
}

static void test_hmac_rotation_and_key_rules(void **st)
{
    jwk_set s;
    load_set("{\"keys\":["
             "{\"kty\":\"oct\",\"kid\":\"2026-10\",\"k\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\"},"
             "{\"kty\":\"oct\",\"kid\":\"2026-11\",\"alg\":\"HS256\",\"k\":\"HxweHRwbGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgEA\"},"
             "{\"kty\":\"oct\",\"kid\":\"short\",\"k\":\"AAECAwQFBgcICQoLDA0ODw\"}]}",
             &s);
    const char *claims = "{\"iss\":\"csp\"}";
    jws_verified v;
    for (size_t i = 0; i < 2; i++) {
        char *t = jws_sign(&s.keys[i], JWS_HS256, claims, strlen(claims));
        assert_non_null(t);
        assert_int_equal(jws_verify(t, strlen(t), NULL, &s, &v), JWS_OK);
        assert_ptr_equal(v.key, &s.keys[i]);
        assert_string_equal((char *)v.payload, claims);
        jws_verified_free(&v);
        free(t);
    }
    /* HS512 needs a 64-byte secret; a key declaring HS256 is for HS256 only */
    assert_null(jws_sign(&s.keys[0], JWS_HS512, claims, strlen(claims)));
    assert_null(jws_sign(&s.keys[1], JWS_HS384, claims, strlen(claims)));
    char *empty = jws_sign(&s.keys[0], JWS_HS256, "", 0); /* empty payload */
    assert_non_null(empty);
    assert_int_equal(jws_verify(empty, strlen(empty), NULL, &s, &v), JWS_OK);
    assert_int_equal(v.payload_len, 0);
    jws_verified_free(&v);
    free(empty);
    /* a 16-byte secret is too short for any HS algorithm */
    assert_null(jws_sign(&s.keys[2], JWS_HS256, claims, strlen(claims)));
    /* no kid in the header: every fitting key is tried */
    jwk nokid = s.keys[1];
    nokid.kid[0] = 0;
    nokid.pkey = NULL;
    char *t = jws_sign(&nokid, JWS_HS256, claims, strlen(claims));
    assert_int_equal(jws_verify(t, strlen(t), NULL, &s, &v), JWS_OK);
    assert_ptr_equal(v.key, &s.keys[1]);
    jws_verified_free(&v);
    free(t);
    /* the wrong secret under the right kid */
    jwk wrong = s.keys[0];
    wrong.k[0] ^= 1;
    t = jws_sign(&wrong, JWS_HS256, claims, strlen(claims));
    assert_int_equal(jws_verify(t, strlen(t), NULL, &s, &v), JWS_BAD_SIGNATURE);
    free(t);
    jwk_set_free(&s);
}

static void test_es256_and_hs512_round_trips_and_jwk_export(void **st)
{
    jwk k;
    assert_true(jwk_generate_ec("ucdn-2026", &k));
    const char *claims = "{\"cdniuc\":\"regex:.*\"}";
    char *t = jws_sign(&k, JWS_ES256, claims, strlen(claims));
    assert_non_null(t);
    /* the exported public half verifies; the private half does not leak */
    json_t *pub = jwk_to_json(&k, false);
    assert_null(json_object_get(pub, "d"));
    jwk_set s;
    jerr e;
    assert_true(jwk_set_parse(pub, "$", &s, &e));
    jws_verified v;
    assert_int_equal(jws_verify(t, strlen(t), NULL, &s, &v), JWS_OK);
    jws_verified_free(&v);
    /* a public key cannot sign */
    assert_null(jws_sign(&s.keys[0], JWS_ES256, claims, strlen(claims)));
    json_decref(pub);
    jwk_set_free(&s);
    free(t);
    /* private export re-imports as a working key pair */
    json_t *priv = jwk_to_json(&k, true);
    assert_non_null(json_object_get(priv, "d"));
    jwk k2;
    assert_true(jwk_parse(priv, "$", &k2, &e));
    assert_true(k2.has_private);
    t = jws_sign(&k2, JWS_ES256, claims, strlen(claims));
    jwk_set one = {.keys = &k, .n = 1};
    assert_int_equal(jws_verify(t, strlen(t), NULL, &one, &v), JWS_OK);
    jws_verified_free(&v);
    free(t);
    json_decref(priv);
    jwk_clear(&k2);
    jwk_clear(&k);
    jwk o;
    assert_true(jwk_generate_oct("s", 64, &o));
    t = jws_sign(&o, JWS_HS512, claims, strlen(claims));
    jwk_set os = {.keys = &o, .n = 1};
    assert_int_equal(jws_verify(t, strlen(t), NULL, &os, &v), JWS_OK);
    assert_int_equal(v.alg, JWS_HS512);
    jws_verified_free(&v);
    free(t);
}

static void test_jwk_errors_name_the_member(void **st)
{
    static const struct {
        const char *json, *path;
    } cases[] = {
        {"{\"kty\":\"RSA\",\"n\":\"AQAB\"}", "$.n"},
        {"{\"kty\":\"RSA\"}", "$.kty"},
        {"{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"AA\",\"y\":\"AA\"}", "$.crv"},
        {"{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"be807S4O7dzB6I4hTiCUvmxCI6FuxWba1xYBlLSSsZ8\"}", "$.y"},
        /* y of another point: not on the curve */
        {"{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"be807S4O7dzB6I4hTiCUvmxCI6FuxWba1xYBlLSSsZ8\","
         "\"y\":\"rOGD4vI69g-WF9AGEVI37sNNwbjIzBxSjLvIL7f3RBA\"}", "$"},
        /* d of another key */
        {"{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"be807S4O7dzB6I4hTiCUvmxCI6FuxWba1xYBlLSSsZ8\","
         "\"y\":\"rOGC4vI69g-WF9AGEVI37sNNwbjIzBxSjLvIL7f3RBA\","
         "\"d\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\"}", "$"},
        {"{\"kty\":\"oct\",\"k\":\"AAEC\"}", "$.k"},
        {"{\"kty\":\"oct\",\"k\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\",\"alg\":\"ES256\"}", "$.alg"},
        {"{\"keys\":[]}", "$.keys"},
        {"{\"keys\":[{\"kty\":\"oct\",\"k\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\"},{\"kty\":\"x\"}]}",
         "$.keys[1].kty"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        jerr e;
        json_t *v = jparse(cases[i].json, strlen(cases[i].json), 4096, &e);
        assert_non_null(v);
        jwk_set s;
        if (jwk_set_parse(v, "$", &s, &e))
            fail_msg("case %zu accepted", i);
        if (strcmp(e.path, cases[i].path) != 0)
            fail_msg("case %zu: path %s (%s), expected %s", i, e.path, e.reason, cases[i].path);
        json_decref(v);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64url),
        cmocka_unit_test(test_rfc9246_examples_verify_with_the_public_key),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_hmac_rotation_and_key_rules),
        cmocka_unit_test(test_es256_and_hs512_round_trips_and_jwk_export),
        cmocka_unit_test(test_jwk_errors_name_the_member),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
