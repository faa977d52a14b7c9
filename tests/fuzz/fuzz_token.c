/* libFuzzer target: URI signing tokens. The input is used as a JWK or JWK
 * Set, as a compact JWS, and as the query, path and cookie a request
 * carries; with a fixed HS256 key, tokens that verify are re-signed and
 * must verify again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "signing/cookie_auth.h"
#include "signing/uri_signing.h"

static bool fresh(void *ctx, const char *jti, long long exp) { return true; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = 0;
    jerr e;
    json_t *j = jparse(s, size, 65536, &e);
    if (j) {
        jwk_set ks;
        if (jwk_set_parse(j, "$", &ks, &e))
            jwk_set_free(&ks);
        us_policy p;
        if (us_policy_parse(j, "$", &p, &e))
            us_policy_free(&p);
        json_decref(j);
    }
    static jwk hs;
    if (!hs.klen) {
        unsigned char secret[32];
        memset(secret, 7, sizeof secret);
        jwk_oct("k", secret, sizeof secret, &hs);
    }
    jwk_set set = {.keys = &hs, .n = 1};
    jws_verified v;
    if (jws_verify(s, strlen(s), NULL, &set, &v) == JWS_OK)
        jws_verified_free(&v);
    us_trust trust[] = {{"csp", &set, false}, {NULL, &set, false}};
    static const char *const aud[] = {"a"};
    us_verifier ver = {.trust = trust, .n_trust = 2, .audiences = aud, .n_audiences = 1, .jti_fresh = fresh};
    us_policy p;
    us_policy_default(&p);
    size_t ul = strlen(s) + 64;
    char *u = malloc(ul);
    const char *forms[] = {"http://cdni.example/v/a.ts?x=1&URISigningPackage=%s",
                           "http://cdni.example/v;URISigningPackage=%s/a.ts", "%s"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(u, ul, forms[i], s);
        us_request rq = {.uri = u, .cookie = i == 2 ? s : NULL, .client_ip = "10.0.0.1", .now = 2000000000};
        us_result r;
        if (us_check(&ver, &p, &rq, &r) == US_VERIFIED) {
            json_t *n = us_renewal_claims(r.claims, rq.now, "ucdn");
            json_t *h = us_hop_claims(r.claims, rq.now, "ucdn", true, "d", r.stripped_uri);
            char *t = n ? us_mint(&hs, JWS_HS256, n) : NULL;
            if (t && jws_verify(t, strlen(t), NULL, &set, &v) != JWS_OK)
                abort(); /* what we sign, we verify */
            jws_verified_free(&v);
            free(t);
            json_decref(n);
            json_decref(h);
        }
        us_result_free(&r);
    }
    /* the session cookie reader, on the input as a Cookie header */
    json_t *cc = NULL;
    if (ca_check(&set, "k", s, "m1", "10.0.0.1", 2000000000, 0, &cc) == CA_OK && !json_is_object(cc))
        abort();
    json_decref(cc);
    free(u);
    free(s);
    return 0;
}
