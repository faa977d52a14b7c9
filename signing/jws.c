/* Compact JWS. See jws.h. */
#include "signing/jws.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/b64url.h"
#include "common/jcheck.h"

#define MAX_TOKEN (64 * 1024)
#define MAX_HEADER 1024

const char *jws_status_text(jws_status s)
{
    static const char *const t[] = {"valid", "malformed token", "algorithm refused",
                                    "unsupported critical header", "no key fits",
                                    "bad signature"};
    return (unsigned)s < sizeof t / sizeof *t ? t[s] : "?";
}

static const struct {
    const char *name;
    jws_alg alg;
    const char *digest;
    size_t min_key; /* HMAC secret at least the hash size */
} ALGS[] = {{"HS256", JWS_HS256, "SHA256", 32},
            {"HS384", JWS_HS384, "SHA384", 48},
            {"HS512", JWS_HS512, "SHA512", 64},
            {"ES256", JWS_ES256, "SHA256", 0}};

jws_alg jws_alg_from_name(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof ALGS / sizeof *ALGS; i++)
        if (strlen(ALGS[i].name) == len && memcmp(ALGS[i].name, name, len) == 0)
            return ALGS[i].alg;
    return JWS_ALG_NONE;
}

const char *jws_alg_name(jws_alg a)
{
    return a >= JWS_HS256 && a <= JWS_ES256 ? ALGS[a - 1].name : "none";
}

bool jws_key_fits(const jwk *k, jws_alg a)
{
    if (a < JWS_HS256 || a > JWS_ES256 || k->enc)
        return false;
    if (k->alg[0] && strcmp(k->alg, ALGS[a - 1].name) != 0)
        return false;
    if (a == JWS_ES256)
        return k->kty == JWK_EC_P256;
    return k->kty == JWK_OCT && k->klen >= ALGS[a - 1].min_key;
}

/* --- per-thread state: keyed HMAC contexts, parsed headers ------------- */

/* A keyed EVP_MAC_CTX is re-initialised with EVP_MAC_init(ctx, NULL, ...),
 * which restarts from the precomputed inner and outer pads; building a
 * context per token cost more than the MAC itself. Tokens of one issuer
 * share their header, so its parse is kept too. Slots are matched on the
 * key bytes and the header bytes themselves, never on a hash alone. */
#define MAC_SLOTS 8
#define HDR_SLOTS 16
#define HDR_CACHE_MAX 192

typedef struct {
    struct mac_slot {
        EVP_MAC_CTX *ctx;
        jws_alg alg;
        size_t klen;
        unsigned char k[JWK_OCT_MAX];
    } mac[MAC_SLOTS];
    struct hdr_slot {
        size_t n; /* 0: empty */
        char b64[HDR_CACHE_MAX];
        jws_status st;
        jws_alg alg;
        char kid[JWK_KID_MAX];
    } hdr[HDR_SLOTS];
} jws_tls;

static EVP_MAC *g_hmac;
static pthread_key_t g_tls;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void tls_free(void *p)
{
    jws_tls *t = p;
    for (size_t i = 0; i < MAC_SLOTS; i++)
        EVP_MAC_CTX_free(t->mac[i].ctx);
    OPENSSL_cleanse(t, sizeof *t);
    free(t);
}

static void jws_once(void)
{
    g_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    pthread_key_create(&g_tls, tls_free);
}

static jws_tls *tls(void)
{
    pthread_once(&g_once, jws_once);
    jws_tls *t = pthread_getspecific(g_tls);
    if (!t && (t = calloc(1, sizeof *t)) != NULL && pthread_setspecific(g_tls, t) != 0) {
        free(t);
        t = NULL;
    }
    return t;
}

static bool hmac(jws_alg a, const jwk *k, const void *data, size_t n, unsigned char *out,
                 size_t *outlen)
{
    jws_tls *t = tls();
    if (!g_hmac)
        return false;
    struct mac_slot *sl = t ? &t->mac[(k->k[0] ^ k->k[k->klen - 1] ^ (unsigned)a) % MAC_SLOTS] : NULL;
    EVP_MAC_CTX *c;
    bool ok;
    if (sl && sl->ctx && sl->alg == a && sl->klen == k->klen && CRYPTO_memcmp(sl->k, k->k, k->klen) == 0) {
        c = sl->ctx;
        ok = EVP_MAC_init(c, NULL, 0, NULL);
    } else {
        c = EVP_MAC_CTX_new(g_hmac);
        OSSL_PARAM p[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                           (char *)ALGS[a - 1].digest, 0),
                          OSSL_PARAM_construct_end()};
        ok = c && EVP_MAC_init(c, k->k, k->klen, p);
        if (ok && sl) {
            EVP_MAC_CTX_free(sl->ctx);
            sl->ctx = c;
            sl->alg = a;
            sl->klen = k->klen;
            memcpy(sl->k, k->k, k->klen);
        }
    }
    ok = ok && EVP_MAC_update(c, data, n) && EVP_MAC_final(c, out, outlen, EVP_MAX_MD_SIZE);
    if (!sl || sl->ctx != c)
        EVP_MAC_CTX_free(c);
    return ok;
}

/* --- ECDSA: JWS carries r || s, OpenSSL speaks DER ------------------------ */

static bool es256_verify(const jwk *k, const void *data, size_t n, const unsigned char *sig,
                         size_t siglen)
{
    if (siglen != 64)
        return false;
    ECDSA_SIG *s = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 32, NULL), *ss = BN_bin2bn(sig + 32, 32, NULL);
    unsigned char *der = NULL;
    int dl = -1;
    if (s && r && ss && ECDSA_SIG_set0(s, r, ss)) {
        r = ss = NULL; /* now the signature's */
        dl = i2d_ECDSA_SIG(s, &der);
    }
    BN_free(r);
    BN_free(ss);
    ECDSA_SIG_free(s);
    bool ok = false;
    EVP_MD_CTX *m = dl > 0 ? EVP_MD_CTX_new() : NULL;
    if (m && EVP_DigestVerifyInit_ex(m, NULL, "SHA256", NULL, NULL, k->pkey, NULL) == 1)
        ok = EVP_DigestVerify(m, der, (size_t)dl, data, n) == 1;
    EVP_MD_CTX_free(m);
    OPENSSL_free(der);
    return ok;
}

static bool es256_sign(const jwk *k, const void *data, size_t n, unsigned char out[64])
{
    if (!k->has_private)
        return false;
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    unsigned char der[80];
    size_t dl = sizeof der;
    bool ok = m && EVP_DigestSignInit_ex(m, NULL, "SHA256", NULL, NULL, k->pkey, NULL) == 1 &&
              EVP_DigestSign(m, der, &dl, data, n) == 1;
    EVP_MD_CTX_free(m);
    if (!ok)
        return false;
    const unsigned char *p = der;
    ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &p, (long)dl);
    const BIGNUM *r, *ss;
    ok = s != NULL;
    if (ok) {
        ECDSA_SIG_get0(s, &r, &ss);
        ok = BN_bn2binpad(r, out, 32) == 32 && BN_bn2binpad(ss, out + 32, 32) == 32;
    }
    ECDSA_SIG_free(s);
    return ok;
}

/* --- header ---------------------------------------------------------------- */

static jws_status parse_header_json(const char *h, size_t n, jws_alg *alg, char *kid)
{
    unsigned char raw[MAX_HEADER];
    size_t rl;
    if (n == 0 || n > B64URL_ENC_LEN(sizeof raw) - 1 || !b64url_decode(h, n, raw, sizeof raw, &rl))
        return JWS_MALFORMED;
    jerr e;
    json_t *o = jparse((const char *)raw, rl, sizeof raw, &e);
    if (!json_is_object(o)) {
        json_decref(o);
        return JWS_MALFORMED;
    }
    jws_status st = JWS_OK;
    json_t *a = json_object_get(o, "alg"), *k = json_object_get(o, "kid");
    if (!json_is_string(a))
        st = JWS_MALFORMED;
    else if ((*alg = jws_alg_from_name(json_string_value(a), json_string_length(a))) == JWS_ALG_NONE)
        st = JWS_BAD_ALG;
    else if (json_object_get(o, "crit"))
        st = JWS_CRIT;
    else if (k && (!json_is_string(k) || json_string_length(k) >= JWK_KID_MAX))
        st = JWS_MALFORMED;
    else
        strcpy(kid, k ? json_string_value(k) : "");
    json_decref(o);
    return st;
}

static jws_status parse_header(const char *h, size_t n, jws_alg *alg, char *kid)
{
    jws_tls *t = n && n < HDR_CACHE_MAX ? tls() : NULL;
    if (!t)
        return parse_header_json(h, n, alg, kid);
    struct hdr_slot *sl = &t->hdr[(n ^ (unsigned char)h[n - 1] ^ (unsigned char)h[n / 2]) % HDR_SLOTS];
    if (sl->n != n || memcmp(sl->b64, h, n) != 0) {
        sl->kid[0] = 0;
        sl->alg = JWS_ALG_NONE;
        sl->st = parse_header_json(h, n, &sl->alg, sl->kid);
        memcpy(sl->b64, h, n);
        sl->n = n;
    }
    *alg = sl->alg;
    strcpy(kid, sl->kid);
    return sl->st;
}

jws_status jws_verify(const char *tok, size_t n, const char *detached_header, const jwk_set *keys,
                      jws_verified *out)
{
    memset(out, 0, sizeof *out);
    if (n == 0 || n > MAX_TOKEN)
        return JWS_MALFORMED;
    const char *d1 = memchr(tok, '.', n);
    const char *d2 = d1 ? memchr(d1 + 1, '.', (size_t)(tok + n - d1 - 1)) : NULL;
    /* "payload.signature" with a header from the metadata (RFC 9246 §2.2) */
    char *joined = NULL;
    if (d1 && !d2 && detached_header) {
        size_t hl = strlen(detached_header);
        if (hl > MAX_HEADER * 2 || !(joined = malloc(hl + 1 + n)))
            return JWS_MALFORMED;
        memcpy(joined, detached_header, hl);
        joined[hl] = '.';
        memcpy(joined + hl + 1, tok, n);
        tok = joined;
        n += hl + 1;
        d1 = tok + hl;
        d2 = memchr(d1 + 1, '.', (size_t)(tok + n - d1 - 1));
    }
    jws_status st = JWS_MALFORMED;
    unsigned char sig[EVP_MAX_MD_SIZE * 2], *payload = NULL;
    size_t siglen = 0, plen = 0;
    const char *sigb = d2 ? d2 + 1 : NULL;
    size_t sign = sigb ? (size_t)(tok + n - sigb) : 0;
    if (!d2 || memchr(sigb, '.', sign) || sign == 0 ||
        !b64url_decode(sigb, sign, sig, sizeof sig, &siglen))
        goto done;
    if ((st = parse_header(tok, (size_t)(d1 - tok), &out->alg, out->kid)) != JWS_OK)
        goto done;
    size_t pb = (size_t)(d2 - d1 - 1);
    payload = malloc(B64URL_DEC_MAX(pb) + 1);
    if (!payload || !b64url_decode(d1 + 1, pb, payload, B64URL_DEC_MAX(pb), &plen)) {
        st = JWS_MALFORMED;
        goto done;
    }
    payload[plen] = 0;
    const void *signing_input = tok;
    size_t silen = (size_t)(d2 - tok);
    st = JWS_NO_KEY;
    for (size_t i = 0; keys && i < keys->n; i++) {
        const jwk *k = &keys->keys[i];
        if ((out->kid[0] && strcmp(k->kid, out->kid) != 0) || !jws_key_fits(k, out->alg))
            continue;
        bool ok;
        if (out->alg == JWS_ES256) {
            ok = es256_verify(k, signing_input, silen, sig, siglen);
        } else {
            unsigned char mac[EVP_MAX_MD_SIZE];
            size_t ml = 0;
            ok = hmac(out->alg, k, signing_input, silen, mac, &ml) && ml == siglen &&
                 CRYPTO_memcmp(mac, sig, ml) == 0;
        }
        if (ok) {
            out->key = k;
            out->payload = payload;
            out->payload_len = plen;
            payload = NULL;
            st = JWS_OK;
            break;
        }
        st = JWS_BAD_SIGNATURE;
    }
done:
    free(payload);
    free(joined);
    return st;
}

void jws_verified_free(jws_verified *v)
{
    if (v) {
        free(v->payload);
        v->payload = NULL;
    }
}

char *jws_sign(const jwk *k, jws_alg alg, const void *payload, size_t len)
{
    if (!jws_key_fits(k, alg) || len > MAX_TOKEN)
        return NULL;
    char header[JWK_KID_MAX * 2 + 64];
    json_t *h = json_pack("{s:s}", "alg", jws_alg_name(alg));
    if (k->kid[0])
        json_object_set_new(h, "kid", json_string(k->kid));
    char *hs = json_dumps(h, JSON_COMPACT);
    json_decref(h);
    if (!hs)
        return NULL;
    size_t hl = b64url_encode((const unsigned char *)hs, strlen(hs), header, sizeof header);
    free(hs);
    size_t cap = hl + 1 + B64URL_ENC_LEN(len) + 1 + B64URL_ENC_LEN(EVP_MAX_MD_SIZE * 2);
    char *out = hl ? malloc(cap) : NULL;
    if (!out)
        return NULL;
    memcpy(out, header, hl);
    out[hl] = '.';
    size_t pl = b64url_encode(payload, len, out + hl + 1, cap - hl - 1);
    size_t si = hl + 1 + pl; /* signing input length */
    unsigned char sig[EVP_MAX_MD_SIZE * 2];
    size_t sl = 0;
    bool ok = pl || len == 0;
    if (ok && alg == JWS_ES256) {
        ok = es256_sign(k, out, si, sig);
        sl = 64;
    } else if (ok) {
        ok = hmac(alg, k, out, si, sig, &sl);
    }
    if (!ok) {
        free(out);
        return NULL;
    }
    out[si] = '.';
    if (!b64url_encode(sig, sl, out + si + 1, cap - si - 1)) {
        free(out);
        return NULL;
    }
    return out;
}
