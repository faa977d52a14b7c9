/* JWK parsing and generation. See jwk.h. */
#include "signing/jwk.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <string.h>

#include "common/b64url.h"

void jwk_clear(jwk *k)
{
    if (!k)
        return;
    EVP_PKEY_free(k->pkey);
    OPENSSL_cleanse(k, sizeof *k);
}

/* A base64url member decoding to exactly n bytes (n 0: 1..max bytes). */
static bool get_b64(json_t *o, const char *key, const char *path, bool required, unsigned char *out,
                    size_t n, size_t max, size_t *got, jerr *e)
{
    const char *s = NULL;
    if (!jget_str(o, key, path, required, &s, e))
        return false;
    if (!s) {
        *got = 0;
        return true;
    }
    char p[JPATH_MAX];
    jpath_key(p, path, key);
    size_t len = 0, cap = n ? n : max;
    if (!b64url_decode(s, strlen(s), out, cap, &len) || len == 0 || (n && len != n))
        return jfail(e, p, n ? "expected base64url of %zu bytes" : "expected base64url of 1..%zu bytes",
                     n ? n : max);
    *got = len;
    return true;
}

static EVP_PKEY *ec_from_raw(const unsigned char x[32], const unsigned char y[32],
                             const unsigned char *d)
{
    unsigned char pub[65];
    pub[0] = 4; /* uncompressed point */
    memcpy(pub + 1, x, 32);
    memcpy(pub + 33, y, 32);
    EVP_PKEY *k = NULL;
    BIGNUM *bn = d ? BN_bin2bn(d, 32, NULL) : NULL;
    OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (!b || !c || (d && !bn) ||
        !OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
        !OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub) ||
        (bn && !OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_PRIV_KEY, bn)) ||
        !(params = OSSL_PARAM_BLD_to_param(b)) || EVP_PKEY_fromdata_init(c) <= 0 ||
        EVP_PKEY_fromdata(c, &k, d ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY, params) <= 0)
        k = NULL;
    /* the point must be on the curve, and d must belong to it */
    if (k) {
        EVP_PKEY_CTX *chk = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
        bool ok = chk && EVP_PKEY_public_check(chk) > 0 && (!d || EVP_PKEY_pairwise_check(chk) > 0);
        EVP_PKEY_CTX_free(chk);
        if (!ok) {
            EVP_PKEY_free(k);
            k = NULL;
        }
    }
    EVP_PKEY_CTX_free(c);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(b);
    BN_clear_free(bn);
    return k;
}

/* fp: a digest of the key material, so caches keyed on it never confuse
 * two keys that share a kid or a reused address. */
static bool set_fp(jwk *k)
{
    unsigned char pub[65];
    size_t pl = 0;
    const void *m = k->k;
    size_t n = k->klen;
    if (k->kty == JWK_EC_P256) {
        if (!EVP_PKEY_get_octet_string_param(k->pkey, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub, &pl))
            return false;
        m = pub;
        n = pl;
    }
    return EVP_Digest(m, n, k->fp, NULL, EVP_sha256(), NULL) == 1;
}

bool jwk_parse(json_t *o, const char *path, jwk *out, jerr *e)
{
    static const char *const keys[] = {"kty", "kid", "alg", "use", "k", "crv", "x", "y", "d",
                                       "key_ops", "x5c", "x5t", "x5t#S256", "x5u", NULL};
    memset(out, 0, sizeof *out);
    if (!json_is_object(o))
        return jfail(e, path, "expected a JWK object");
    const char *kty = NULL, *kid = NULL, *alg = NULL, *use = NULL, *crv = NULL;
    if (!jonly(o, path, keys, e) || !jget_str(o, "kty", path, true, &kty, e) ||
        !jget_str(o, "kid", path, false, &kid, e) || !jget_str(o, "alg", path, false, &alg, e) ||
        !jget_str(o, "use", path, false, &use, e))
        return false;
    char p[JPATH_MAX];
    if (kid) {
        if (strlen(kid) >= sizeof out->kid) {
            jpath_key(p, path, "kid");
            return jfail(e, p, "longer than %d bytes", JWK_KID_MAX - 1);
        }
        strcpy(out->kid, kid);
    }
    if (use && strcmp(use, "sig") != 0 && strcmp(use, "enc") != 0) {
        jpath_key(p, path, "use");
        return jfail(e, p, "expected \"sig\" or \"enc\"");
    }
    out->enc = use && strcmp(use, "enc") == 0;
    if (strcmp(kty, "oct") == 0) {
        static const char *const algs[] = {"HS256", "HS384", "HS512", "A128GCM", "A192GCM", "A256GCM", "dir", NULL};
        out->kty = JWK_OCT;
        if (!get_b64(o, "k", path, true, out->k, 0, sizeof out->k, &out->klen, e))
            return false;
        if (out->klen < 16) {
            jpath_key(p, path, "k");
            return jfail(e, p, "a secret of at least 16 bytes is required");
        }
        if (alg) {
            bool known = false;
            for (size_t i = 0; algs[i]; i++)
                known |= strcmp(alg, algs[i]) == 0;
            if (!known) {
                jpath_key(p, path, "alg");
                return jfail(e, p, "\"%s\" is not an algorithm for an oct key here", alg);
            }
        }
    } else if (strcmp(kty, "EC") == 0) {
        out->kty = JWK_EC_P256;
        unsigned char x[32], y[32], d[32];
        size_t xl, yl, dl;
        if (!jget_str(o, "crv", path, true, &crv, e))
            return false;
        if (strcmp(crv, "P-256") != 0) {
            jpath_key(p, path, "crv");
            return jfail(e, p, "only P-256 is supported");
        }
        if (alg && strcmp(alg, "ES256") != 0) {
            jpath_key(p, path, "alg");
            return jfail(e, p, "a P-256 key is for ES256");
        }
        if (!get_b64(o, "x", path, true, x, 32, 32, &xl, e) ||
            !get_b64(o, "y", path, true, y, 32, 32, &yl, e) ||
            !get_b64(o, "d", path, false, d, 32, 32, &dl, e))
            return false;
        out->has_private = dl == 32;
        out->pkey = ec_from_raw(x, y, out->has_private ? d : NULL);
        OPENSSL_cleanse(d, sizeof d);
        if (!out->pkey)
            return jfail(e, path, out->has_private ? "x, y and d are not one P-256 key pair"
                                                   : "x, y are not a point on P-256");
    } else {
        jpath_key(p, path, "kty");
        return jfail(e, p, "only \"oct\" and \"EC\" keys are supported");
    }
    if (alg)
        snprintf(out->alg, sizeof out->alg, "%s", alg);
    return set_fp(out) || jfail(e, path, "cannot digest the key");
}

bool jwk_set_parse(json_t *v, const char *path, jwk_set *out, jerr *e)
{
    memset(out, 0, sizeof *out);
    json_t *arr = json_object_get(v, "keys");
    char ap[JPATH_MAX];
    if (!arr) { /* a single key */
        out->keys = calloc(1, sizeof *out->keys);
        if (!out->keys)
            return jfail(e, path, "out of memory");
        if (!jwk_parse(v, path, &out->keys[0], e)) {
            jwk_set_free(out);
            return false;
        }
        out->n = 1;
        return true;
    }
    jpath_key(ap, path, "keys");
    if (!json_is_array(arr) || json_array_size(arr) == 0)
        return jfail(e, ap, "expected a non-empty array of JWKs");
    out->keys = calloc(json_array_size(arr), sizeof *out->keys);
    if (!out->keys)
        return jfail(e, ap, "out of memory");
    for (size_t i = 0; i < json_array_size(arr); i++) {
        char p[JPATH_MAX];
        jpath_idx(p, ap, i);
        if (!jwk_parse(json_array_get(arr, i), p, &out->keys[i], e)) {
            jwk_set_free(out);
            return false;
        }
        out->n++;
    }
    return true;
}

bool jwk_set_load(const char *filename, jwk_set *out, jerr *e)
{
    json_t *v = jparse_file(filename, 1 << 20, e);
    if (!v)
        return false;
    bool ok = jwk_set_parse(v, "$", out, e);
    json_decref(v);
    return ok;
}

void jwk_set_free(jwk_set *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        jwk_clear(&s->keys[i]);
    free(s->keys);
    s->keys = NULL;
    s->n = 0;
}

static void set_b64(json_t *o, const char *key, const unsigned char *b, size_t n)
{
    char buf[B64URL_ENC_LEN(JWK_OCT_MAX)];
    if (b64url_encode(b, n, buf, sizeof buf))
        json_object_set_new(o, key, json_string(buf));
}

json_t *jwk_to_json(const jwk *k, bool with_secret)
{
    json_t *o = json_object();
    if (k->kid[0])
        json_object_set_new(o, "kid", json_string(k->kid));
    if (k->alg[0])
        json_object_set_new(o, "alg", json_string(k->alg));
    json_object_set_new(o, "use", json_string(k->enc ? "enc" : "sig"));
    if (k->kty == JWK_OCT) {
        json_object_set_new(o, "kty", json_string("oct"));
        if (with_secret)
            set_b64(o, "k", k->k, k->klen);
        return o;
    }
    json_object_set_new(o, "kty", json_string("EC"));
    json_object_set_new(o, "crv", json_string("P-256"));
    unsigned char pub[65];
    size_t pl = 0;
    if (EVP_PKEY_get_octet_string_param(k->pkey, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub, &pl) &&
        pl == 65 && pub[0] == 4) {
        set_b64(o, "x", pub + 1, 32);
        set_b64(o, "y", pub + 33, 32);
    }
    if (with_secret && k->has_private) {
        BIGNUM *bn = NULL;
        unsigned char d[32];
        if (EVP_PKEY_get_bn_param(k->pkey, OSSL_PKEY_PARAM_PRIV_KEY, &bn) && BN_bn2binpad(bn, d, 32) == 32)
            set_b64(o, "d", d, 32);
        OPENSSL_cleanse(d, sizeof d);
        BN_clear_free(bn);
    }
    return o;
}

bool jwk_generate_ec(const char *kid, jwk *out)
{
    memset(out, 0, sizeof *out);
    out->kty = JWK_EC_P256;
    snprintf(out->kid, sizeof out->kid, "%s", kid ? kid : "");
    strcpy(out->alg, "ES256");
    out->pkey = EVP_EC_gen("P-256");
    out->has_private = out->pkey != NULL;
    return out->pkey != NULL && set_fp(out);
}

bool jwk_generate_oct(const char *kid, size_t bytes, jwk *out)
{
    memset(out, 0, sizeof *out);
    if (bytes < 16 || bytes > sizeof out->k)
        return false;
    out->kty = JWK_OCT;
    snprintf(out->kid, sizeof out->kid, "%s", kid ? kid : "");
    out->klen = bytes;
    return RAND_bytes(out->k, (int)bytes) == 1 && set_fp(out);
}

bool jwk_oct(const char *kid, const void *secret, size_t n, jwk *out)
{
    memset(out, 0, sizeof *out);
    if (n < 16 || n > sizeof out->k)
        return false;
    out->kty = JWK_OCT;
    snprintf(out->kid, sizeof out->kid, "%s", kid ? kid : "");
    memcpy(out->k, secret, n);
    out->klen = n;
    return set_fp(out);
}
