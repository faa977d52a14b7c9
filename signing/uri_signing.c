/* URI Signing (RFC 9246). See uri_signing.h. */
#include "signing/uri_signing.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/b64url.h"
#include "common/hash.h"
#include "common/iptable.h"
#include "common/url.h"

const char *us_code_text(us_code c)
{
    switch (c) {
    case US_NOT_CHECKED: return "no signed JWT verification performed";
    case US_VERIFIED: return "verified";
    case US_BAD_SIGNATURE: return "incorrect signature";
    case US_BAD_ISSUER: return "issuer enforcement";
    case US_BAD_SUBJECT: return "subject enforcement";
    case US_BAD_AUDIENCE: return "audience enforcement";
    case US_EXPIRED: return "expiration time enforcement";
    case US_NOT_YET_VALID: return "not before enforcement";
    case US_RENEWAL_PAIR: return "only one of cdnistt and cdniets present";
    case US_REPLAYED: return "JWT ID enforcement";
    case US_BAD_VERSION: return "version enforcement";
    case US_BAD_CRITICAL: return "critical extension enforcement";
    case US_BAD_CLIENT_IP: return "client IP enforcement";
    case US_BAD_URI_CONTAINER: return "URI container enforcement";
    case US_MALFORMED_URI: return "malformed URI";
    }
    return "?";
}

/* --- policy (MI.UriSigning) ------------------------------------------------ */

void us_policy_default(us_policy *out)
{
    memset(out, 0, sizeof *out);
    out->enforce = true;
    strcpy(out->package, US_DEFAULT_PACKAGE);
}

void us_policy_free(us_policy *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_issuers; i++)
        free(p->issuers[i]);
    free(p->issuers);
    free(p->jwt_header);
    memset(p, 0, sizeof *p);
}

static bool token_char(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

bool us_policy_parse(json_t *v, const char *path, us_policy *out, jerr *e)
{
    static const char *const keys[] = {"enforce", "issuers", "package-attribute", "jwt-header", NULL};
    us_policy_default(out);
    if (!json_is_object(v))
        return jfail(e, path, "expected an object");
    const char *pkg = NULL;
    json_t *iss = NULL, *hdr = json_object_get(v, "jwt-header");
    if (!jonly(v, path, keys, e) || !jget_bool(v, "enforce", path, false, &out->enforce, e) ||
        !jget_arr(v, "issuers", path, false, &iss, e) ||
        !jget_str(v, "package-attribute", path, false, &pkg, e))
        return false;
    char p[JPATH_MAX];
    if (pkg) {
        size_t n = strlen(pkg);
        bool ok = n > 0 && n < sizeof out->package;
        for (size_t i = 0; ok && i < n; i++)
            ok = token_char((unsigned char)pkg[i]);
        if (!ok) {
            jpath_key(p, path, "package-attribute");
            return jfail(e, p, "expected 1..%d letters, digits, '-', '_', '.' or '~'", US_PACKAGE_MAX - 1);
        }
        strcpy(out->package, pkg);
    }
    if (iss) {
        jpath_key(p, path, "issuers");
        if (!jstr_array(iss, p, e))
            return false;
        out->issuers = calloc(json_array_size(iss) + 1, sizeof *out->issuers);
        for (size_t i = 0; out->issuers && i < json_array_size(iss); i++)
            out->issuers[out->n_issuers++] = strdup(json_string_value(json_array_get(iss, i)));
    }
    if (hdr) {
        /* §4.4 calls it a string in serialized form; its example shows an
         * object: take either, keep the base64url form */
        jpath_key(p, path, "jwt-header");
        char buf[1024];
        if (json_is_string(hdr)) {
            snprintf(buf, sizeof buf, "%s", json_string_value(hdr));
        } else if (json_is_object(hdr)) {
            char *s = json_dumps(hdr, JSON_COMPACT);
            size_t ok = s ? b64url_encode((unsigned char *)s, strlen(s), buf, sizeof buf) : 0;
            free(s);
            if (!ok) {
                us_policy_free(out);
                return jfail(e, p, "too long");
            }
        } else {
            us_policy_free(out);
            return jfail(e, p, "expected a string or an object");
        }
        out->jwt_header = strdup(buf);
    }
    return true;
}

/* --- finding the token ------------------------------------------------------ */

static bool sub_delim(char c) { return c && strchr("!$&'()*+,;=", c) != NULL; }

/* In s[0..n), the value of "name=" right after one of the `starts`
 * characters; the value runs to the next character in `ends` or n. */
static bool find_param(const char *s, size_t n, const char *starts, const char *ends, const char *name,
                       size_t *param_at, size_t *val_at, size_t *val_end)
{
    size_t nl = strlen(name);
    bool is_start[256] = {0};
    for (const char *c = starts; *c; c++)
        is_start[(unsigned char)*c] = true;
    for (size_t i = 0; i + 1 + nl < n; i++) {
        if (!is_start[(unsigned char)s[i]])
            continue;
        if (memcmp(s + i + 1, name, nl) != 0 || s[i + 1 + nl] != '=')
            continue;
        size_t v = i + 2 + nl, j = v + strcspn(s + v, ends); /* s is a C string */
        if (j > n)
            j = n;
        *param_at = i + 1;
        *val_at = v;
        *val_end = j;
        return true;
    }
    return false;
}

/* Locates the token in rq and builds the URI without it (§2.1.15). */
static bool locate(const us_policy *p, const us_request *rq, us_result *out)
{
    const char *u = rq->uri;
    size_t n = strlen(u);
    const char *q = memchr(u, '?', n);
    size_t qoff = q ? (size_t)(q - u) : n;
    size_t pa = 0, va = 0, ve = 0;
    bool found = false;
    /* form-style, in the query: ?name=v or &name=v */
    if (q && find_param(u + qoff, n - qoff, "?&", "&#", p->package, &pa, &va, &ve)) {
        pa += qoff, va += qoff, ve += qoff;
        out->source = US_SRC_QUERY;
        found = true;
    } else {
        /* path-style, in the path: ;name=v, ending at / ; ? or the end */
        const char *sch = memmem(u, qoff, "://", 3);
        size_t from = sch ? (size_t)(sch - u) + 3 : 0;
        const char *slash = memchr(u + from, '/', qoff - from);
        from = slash ? (size_t)(slash - u) : qoff;
        if (find_param(u + from, qoff - from, ";", "/;?", p->package, &pa, &va, &ve)) {
            pa += from, va += from, ve += from;
            out->source = US_SRC_PATH;
            found = true;
        }
    }
    if (found) {
        out->token = strndup(u + va, ve - va);
        /* the removal rule of §2.1.15: a sub-delimiter after the token goes
         * with it; otherwise the reserved character before the attribute does */
        size_t cut_from, cut_to;
        if (ve < n && sub_delim(u[ve])) {
            cut_from = pa;
            cut_to = ve + 1;
        } else {
            cut_from = pa - 1;
            cut_to = ve;
        }
        out->stripped_uri = malloc(n + 1);
        if (!out->token || !out->stripped_uri)
            return false;
        memcpy(out->stripped_uri, u, cut_from);
        memcpy(out->stripped_uri + cut_from, u + cut_to, n - cut_to + 1);
        return true;
    }
    out->stripped_uri = strdup(u);
    if (rq->cookie) { /* Cookie: a=b; name=token */
        const char *c = rq->cookie;
        size_t cl = strlen(c), nl = strlen(p->package);
        for (size_t i = 0; i + nl < cl; i++) {
            if ((i == 0 || c[i - 1] == ' ' || c[i - 1] == ';') && memcmp(c + i, p->package, nl) == 0 &&
                c[i + nl] == '=') {
                size_t v = i + nl + 1, j = v;
                while (j < cl && c[j] != ';' && c[j] != ' ')
                    j++;
                out->token = strndup(c + v, j - v);
                out->source = US_SRC_COOKIE;
                break;
            }
        }
    }
    return out->stripped_uri != NULL;
}

/* --- claims helpers -------------------------------------------------------- */

static bool num_claim(json_t *c, const char *name, bool *present, double *v)
{
    json_t *x = json_object_get(c, name);
    *present = x != NULL;
    if (!x)
        return true;
    if (!json_is_number(x))
        return false;
    *v = json_number_value(x);
    return true;
}

static us_code fail(us_result *out, us_code c, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static us_code fail(us_result *out, us_code c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->reason, sizeof out->reason, fmt, ap);
    va_end(ap);
    json_decref(out->claims);
    out->claims = NULL;
    return out->code = c;
}

/* Claims this implementation understands (RFC 7519 registered + RFC 9246). */
static bool understood(const char *name, size_t n)
{
    static const char *const known[] = {"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "cdniv",
                                        "cdnicrit", "cdniip", "cdniuc", "cdniets", "cdnistt",
                                        "cdnistd", NULL};
    for (size_t i = 0; known[i]; i++)
        if (strlen(known[i]) == n && memcmp(known[i], name, n) == 0)
            return true;
    return false;
}

/* --- JWE "dir" + AES-GCM, for an encrypted cdniip -------------------------- */

static bool jwe_decrypt(const char *jwe, const jwk_set *keys, char *out, size_t cap)
{
    const char *d[4];
    const char *s = jwe;
    for (int i = 0; i < 4; i++) {
        d[i] = strchr(s, '.');
        if (!d[i])
            return false;
        s = d[i] + 1;
    }
    if (strchr(s, '.') || d[1] != d[0] + 1) /* five parts, empty encrypted key */
        return false;
    unsigned char hdr[512], iv[16], tag[16], ct[256];
    size_t hl, ivl, tl, cl;
    if (!b64url_decode(jwe, (size_t)(d[0] - jwe), hdr, sizeof hdr - 1, &hl) ||
        !b64url_decode(d[1] + 1, (size_t)(d[2] - d[1] - 1), iv, sizeof iv, &ivl) || ivl != 12 ||
        !b64url_decode(d[2] + 1, (size_t)(d[3] - d[2] - 1), ct, sizeof ct, &cl) || cl >= cap ||
        !b64url_decode(d[3] + 1, strlen(d[3] + 1), tag, sizeof tag, &tl) || tl != 16)
        return false;
    jerr e;
    json_t *h = jparse((const char *)hdr, hl, sizeof hdr, &e);
    const char *alg = json_string_value(json_object_get(h, "alg"));
    const char *enc = json_string_value(json_object_get(h, "enc"));
    const char *kid = json_string_value(json_object_get(h, "kid"));
    size_t klen = !enc ? 0 : !strcmp(enc, "A128GCM") ? 16 : !strcmp(enc, "A192GCM") ? 24 : !strcmp(enc, "A256GCM") ? 32 : 0;
    bool ok = false;
    if (alg && !strcmp(alg, "dir") && klen && !json_object_get(h, "crit") && !json_object_get(h, "zip")) {
        const EVP_CIPHER *c = klen == 16 ? EVP_aes_128_gcm() : klen == 24 ? EVP_aes_192_gcm() : EVP_aes_256_gcm();
        for (size_t i = 0; keys && i < keys->n && !ok; i++) {
            const jwk *k = &keys->keys[i];
            if (k->kty != JWK_OCT || k->klen != klen || (kid && strcmp(kid, k->kid) != 0))
                continue;
            EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
            int l1 = 0, l2 = 0;
            ok = x && EVP_DecryptInit_ex(x, c, NULL, k->k, iv) == 1 &&
                 EVP_DecryptUpdate(x, NULL, &l1, (const unsigned char *)jwe, (int)(d[0] - jwe)) == 1 &&
                 EVP_DecryptUpdate(x, (unsigned char *)out, &l1, ct, (int)cl) == 1 &&
                 EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1 &&
                 EVP_DecryptFinal_ex(x, (unsigned char *)out + l1, &l2) == 1;
            EVP_CIPHER_CTX_free(x);
            if (ok)
                out[l1 + l2] = 0;
        }
    }
    json_decref(h);
    return ok;
}

/* --- regular expressions, compiled once per thread ------------------------ */

#define RX_SLOTS 64
typedef struct {
    char *src;
    regex_t re;
    bool ok;
} rx_slot;
static pthread_key_t rx_key;
static pthread_once_t rx_once = PTHREAD_ONCE_INIT;

static void rx_free(void *p)
{
    rx_slot *t = p;
    for (size_t i = 0; i < RX_SLOTS; i++)
        if (t[i].src) {
            if (t[i].ok)
                regfree(&t[i].re);
            free(t[i].src);
        }
    free(t);
}
static void rx_init(void) { pthread_key_create(&rx_key, rx_free); }

/* Does the whole of s match the ERE src? -1 if src does not compile. */
static int rx_match(const char *src, const char *s)
{
    pthread_once(&rx_once, rx_init);
    rx_slot *t = pthread_getspecific(rx_key);
    if (!t) {
        t = calloc(RX_SLOTS, sizeof *t);
        if (!t)
            return -1;
        pthread_setspecific(rx_key, t);
    }
    /* slot by length and a few bytes; strcmp below decides */
    size_t sn = strlen(src);
    rx_slot *sl = &t[(sn * 31 + (unsigned char)src[sn / 2] * 7 + (unsigned char)src[sn ? sn - 1 : 0]) % RX_SLOTS];
    if (!sl->src || strcmp(sl->src, src) != 0) {
        if (sl->src) {
            if (sl->ok)
                regfree(&sl->re);
            free(sl->src);
        }
        /* anchored: the container must describe the whole URI */
        size_t n = strlen(src);
        char *anch = malloc(n + 5);
        sl->src = strdup(src);
        if (!anch || !sl->src) {
            free(anch);
            free(sl->src);
            sl->src = NULL;
            return -1;
        }
        snprintf(anch, n + 5, "^(%s)$", src);
        sl->ok = regcomp(&sl->re, anch, REG_EXTENDED | REG_NOSUB) == 0;
        free(anch);
    }
    if (!sl->ok)
        return -1;
    return regexec(&sl->re, s, 0, NULL, 0) == 0;
}

/* --- verified tokens, remembered per thread -------------------------------- */

/* With a regex cdniuc (or a cookie) one token authorizes every chunk of a
 * session, so the same bytes arrive again and again. What depends on the
 * bytes alone - the signature and the parsed claims - is kept, per thread,
 * in a 4-way set-associative table; everything that depends on the request, the
 * policy or the time (iss list, aud, exp, nbf, cdniip, cdniuc, jti) is
 * checked on every request. A hit needs the same token bytes (compared in
 * full) and a key with the same material (jwk.fp) and kid still trusted,
 * so a key taken out of a trust set stops a remembered token at once.
 * Tokens completed by the metadata's jwt-header are not remembered. */
#define TC_WAYS 4
#define TC_SETS 2048
#define TC_SLOTS (TC_WAYS * TC_SETS)
#define TC_MAX_TOKEN 2048

typedef struct {
    char *tok; /* NULL: empty */
    size_t n;
    json_t *claims;
    jws_alg alg;
    char kid[JWK_KID_MAX];
    unsigned char fp[32];
} tc_slot;
static pthread_key_t tc_key;
static pthread_once_t tc_once = PTHREAD_ONCE_INIT;

static void tc_free(void *p)
{
    tc_slot *t = p;
    for (size_t i = 0; i < TC_SLOTS; i++) {
        free(t[i].tok);
        json_decref(t[i].claims);
    }
    free(t);
}
static void tc_init(void) { pthread_key_create(&tc_key, tc_free); }

/* The slot holding this token, or the one to fill with it (*hit false). */
static tc_slot *tc_slot_for(const char *tok, size_t n, bool *hit)
{
    static __thread unsigned victim;
    *hit = false;
    if (n > TC_MAX_TOKEN || n < 16)
        return NULL;
    pthread_once(&tc_once, tc_init);
    tc_slot *t = pthread_getspecific(tc_key);
    if (!t) {
        if (!(t = calloc(TC_SLOTS, sizeof *t)))
            return NULL;
        if (pthread_setspecific(tc_key, t) != 0) {
            free(t);
            return NULL;
        }
    }
    /* the signature's last characters are as good as random */
    tc_slot *set = &t[(hash_fnv1a64(tok + n - 16, 16) % TC_SETS) * TC_WAYS], *empty = NULL;
    for (size_t w = 0; w < TC_WAYS; w++) {
        if (set[w].tok && set[w].n == n && memcmp(set[w].tok, tok, n) == 0) {
            *hit = true;
            return &set[w];
        }
        if (!set[w].tok && !empty)
            empty = &set[w];
    }
    return empty ? empty : &set[victim++ % TC_WAYS];
}

/* The trust entry holding a key that verified this slot's token, if any. */
static const us_trust *tc_trusted(const us_verifier *v, const tc_slot *sl)
{
    for (size_t i = 0; i < v->n_trust; i++)
        for (size_t j = 0; v->trust[i].keys && j < v->trust[i].keys->n; j++) {
            const jwk *k = &v->trust[i].keys->keys[j];
            if (memcmp(k->fp, sl->fp, sizeof sl->fp) == 0 && (!sl->kid[0] || !strcmp(k->kid, sl->kid)) &&
                jws_key_fits(k, sl->alg))
                return &v->trust[i];
        }
    return NULL;
}

static void tc_put(tc_slot *sl, const char *tok, size_t n, json_t *claims, const jws_verified *jv)
{
    char *copy = malloc(n);
    if (!copy)
        return;
    memcpy(copy, tok, n);
    free(sl->tok);
    json_decref(sl->claims);
    sl->tok = copy;
    sl->n = n;
    sl->claims = json_incref(claims);
    sl->alg = jv->alg;
    strcpy(sl->kid, jv->kid);
    memcpy(sl->fp, jv->key->fp, sizeof sl->fp);
}

/* --- the check -------------------------------------------------------------- */

bool us_uri_hash(const char *uri, char *out, size_t cap)
{
    char *norm = NULL;
    if (url_normalize(uri, strlen(uri), &norm) != URL_OK)
        return false;
    unsigned char md[32];
    unsigned int ml = 0;
    bool ok = EVP_Digest(norm, strlen(norm), md, &ml, EVP_sha256(), NULL) == 1;
    free(norm);
    char b[64];
    if (!ok || !b64url_encode(md, 32, b, sizeof b))
        return false;
    return (size_t)snprintf(out, cap, "sha-256;%s", b) < cap;
}

static bool container_matches(const char *uc, const char *uri, char *why, size_t wcap)
{
    if (strncmp(uc, "hash:", 5) == 0) {
        char h[80];
        if (!us_uri_hash(uri, h, sizeof h)) {
            snprintf(why, wcap, "URI does not normalize");
            return false;
        }
        /* RFC 6920 truncated forms: sha-256-128 etc. compare a prefix */
        const char *want = uc + 5;
        static const struct { const char *name; size_t bits; } forms[] = {
            {"sha-256;", 256}, {"sha-256-128;", 128}, {"sha-256-120;", 120},
            {"sha-256-96;", 96}, {"sha-256-64;", 64}, {"sha-256-32;", 32}};
        for (size_t i = 0; i < sizeof forms / sizeof *forms; i++) {
            size_t fl = strlen(forms[i].name);
            if (strncmp(want, forms[i].name, fl) != 0)
                continue;
            unsigned char a[32], b[32];
            size_t al, bl;
            const char *ours = strchr(h, ';') + 1;
            if (!b64url_decode(want + fl, strlen(want + fl), a, sizeof a, &al) ||
                al * 8 != forms[i].bits || !b64url_decode(ours, strlen(ours), b, sizeof b, &bl))
                break;
            if (memcmp(a, b, al) == 0)
                return true;
            snprintf(why, wcap, "hash of %s differs", uri);
            return false;
        }
        snprintf(why, wcap, "unsupported hash container");
        return false;
    }
    if (strncmp(uc, "regex:", 6) == 0) {
        int m = rx_match(uc + 6, uri);
        if (m == 1)
            return true;
        snprintf(why, wcap, m < 0 ? "regex does not compile" : "%s does not match the regex", uri);
        return false;
    }
    snprintf(why, wcap, "unknown container form");
    return false;
}

bool us_container_covers(const char *cdniuc, const char *uri)
{
    char why[200];
    return cdniuc && uri && container_matches(cdniuc, uri, why, sizeof why);
}

static bool ip_in(const char *cidr, const char *ip)
{
    ipt_addr net, a;
    unsigned len;
    const char *s = cidr;
    size_t n = strlen(s);
    if (n && s[0] == '[' && s[n - 1] == ']') /* "[2001:db8::1/32]" */
        s++, n -= 2;
    if (memchr(s, '/', n)) { /* host bits are masked by the parser */
        if (!ipt_parse_prefix(s, n, &net, &len))
            return false;
    } else {
        if (!ipt_parse_addr(s, n, &net))
            return false;
        len = net.v6 ? 128 : 32;
    }
    return ipt_parse_addr(ip, strlen(ip), &a) && ipt_contains(&net, len, &a);
}

us_code us_check(const us_verifier *v, const us_policy *p, const us_request *rq, us_result *out)
{
    memset(out, 0, sizeof *out);
    if (!rq->uri || !locate(p, rq, out))
        return fail(out, US_MALFORMED_URI, "no URI");
    url_ref ur;
    if (url_parse(out->stripped_uri, strlen(out->stripped_uri), &ur) != URL_OK || !ur.scheme.present)
        return fail(out, US_MALFORMED_URI, "the URI does not parse");
    if (!out->token)
        return fail(out, US_BAD_SIGNATURE, "no signed JWT in the request");
    /* signature, by a key of some trusted issuer */
    size_t tn = strlen(out->token), parts = 1;
    for (const char *d = out->token; parts < 4 && (d = memchr(d, '.', tn - (size_t)(d - out->token)));
         d++)
        parts++;
    bool hit = false;
    tc_slot *sl = parts == 3 ? tc_slot_for(out->token, tn, &hit) : NULL;
    const us_trust *by = NULL;
    if (hit && (by = tc_trusted(v, sl)) != NULL) {
        out->claims = json_incref(sl->claims);
    } else {
        jws_verified jv = {0};
        jws_status js = JWS_NO_KEY;
        for (size_t i = 0; i < v->n_trust && js != JWS_OK; i++) {
            jws_status r = jws_verify(out->token, tn, p->jwt_header, v->trust[i].keys, &jv);
            if (r == JWS_OK)
                by = &v->trust[i];
            if (r != JWS_NO_KEY) /* "no key" only if no issuer had one */
                js = r;
        }
        if (js != JWS_OK)
            return fail(out, US_BAD_SIGNATURE, "signed JWT: %s", jws_status_text(js));
        jerr e;
        out->claims = jparse((const char *)jv.payload, jv.payload_len, 64 * 1024, &e);
        if (sl && json_is_object(out->claims))
            tc_put(sl, out->token, tn, out->claims, &jv);
        jws_verified_free(&jv);
    }
    json_t *c = out->claims; /* shared with the cache: read only */
    if (!json_is_object(c))
        return fail(out, US_BAD_SIGNATURE, "claims are not a JSON object");
    out->issuer = by->iss ? by->iss : json_string_value(json_object_get(c, "iss"));
    /* cdniv */
    json_t *ver = json_object_get(c, "cdniv");
    if (ver && (!json_is_integer(ver) || json_integer_value(ver) != 1))
        return fail(out, US_BAD_VERSION, "unsupported cdniv");
    /* cdnicrit: we implement no extension claim, and RFC 9246 names may not be listed */
    json_t *crit = json_object_get(c, "cdnicrit");
    if (crit) {
        const char *cs = json_string_value(crit);
        if (!cs || !*cs)
            return fail(out, US_BAD_CRITICAL, "cdnicrit is not a non-empty string");
        const char *comma = strchr(cs, ',');
        size_t n = comma ? (size_t)(comma - cs) : strlen(cs);
        return fail(out, US_BAD_CRITICAL, "critical claim \"%.*s\" %s", (int)n, cs,
                    understood(cs, n) ? "is not an extension" : "is not understood");
    }
    /* iss: must name the key's issuer, and be allowed by the metadata */
    json_t *iss = json_object_get(c, "iss");
    if (iss) {
        const char *is = json_string_value(iss);
        if (!is || (by->iss && strcmp(is, by->iss) != 0))
            return fail(out, US_BAD_ISSUER, "issuer does not match the signing key");
        bool listed = p->n_issuers == 0 || by->self;
        for (size_t i = 0; i < p->n_issuers && !listed; i++)
            listed = strcmp(p->issuers[i], is) == 0;
        if (!listed)
            return fail(out, US_BAD_ISSUER, "issuer %s is not in the metadata's list", is);
    } else if (p->n_issuers) {
        return fail(out, US_BAD_ISSUER, "no iss, and the metadata lists issuers");
    }
    /* aud: a string or an array naming us */
    json_t *aud = json_object_get(c, "aud");
    if (aud) {
        bool ok = false;
        size_t na = json_is_array(aud) ? json_array_size(aud) : 1;
        for (size_t i = 0; i < na && !ok; i++) {
            const char *a = json_string_value(json_is_array(aud) ? json_array_get(aud, i) : aud);
            for (size_t j = 0; a && j < v->n_audiences && !ok; j++)
                ok = strcmp(a, v->audiences[j]) == 0;
        }
        if (!ok)
            return fail(out, US_BAD_AUDIENCE, "aud does not name this CDN");
    }
    bool has;
    double t;
    if (!num_claim(c, "exp", &has, &t))
        return fail(out, US_EXPIRED, "exp is not a number");
    if (has && t + (double)v->skew_s <= (double)rq->now)
        return fail(out, US_EXPIRED, "expired at %.0f, now %lld", t, rq->now);
    double exp_at = has ? t : 0;
    if (!num_claim(c, "nbf", &has, &t))
        return fail(out, US_NOT_YET_VALID, "nbf is not a number");
    if (has && t - (double)v->skew_s > (double)rq->now)
        return fail(out, US_NOT_YET_VALID, "not valid before %.0f, now %lld", t, rq->now);
    if (!num_claim(c, "iat", &has, &t))
        return fail(out, US_BAD_SIGNATURE, "iat is not a number");
    /* cdnistt and cdniets come together */
    json_t *stt = json_object_get(c, "cdnistt"), *ets = json_object_get(c, "cdniets"),
           *std = json_object_get(c, "cdnistd");
    if (!stt != !ets)
        return fail(out, US_RENEWAL_PAIR, "cdnistt and cdniets must come together");
    if (stt && (!json_is_integer(stt) || json_integer_value(stt) < 0 || json_integer_value(stt) > 2 ||
                !json_is_number(ets) || json_number_value(ets) <= 0))
        return fail(out, US_RENEWAL_PAIR, "cdnistt must be 0, 1 or 2 and cdniets a positive number");
    if (std && (!json_is_integer(std) || json_integer_value(std) < 0))
        return fail(out, US_RENEWAL_PAIR, "cdnistd must be a non-negative integer");
    /* cdniip: a JWE (as §2.1.10 wants) or plain CIDR text */
    json_t *ip = json_object_get(c, "cdniip");
    if (ip) {
        const char *s = json_string_value(ip);
        char plain[256];
        if (!s)
            return fail(out, US_BAD_CLIENT_IP, "cdniip is not a string");
        size_t dots = 0;
        for (const char *q = s; *q; q++)
            dots += *q == '.';
        if (dots == 4) { /* JWE compact form; an IPv4 prefix has three */
            if (!jwe_decrypt(s, v->enc_keys, plain, sizeof plain))
                return fail(out, US_BAD_CLIENT_IP, "cdniip cannot be decrypted");
            s = plain;
        }
        if (!rq->client_ip || !ip_in(s, rq->client_ip))
            return fail(out, US_BAD_CLIENT_IP, "client %s is outside cdniip", rq->client_ip ? rq->client_ip : "?");
    }
    /* cdniuc: mandatory */
    const char *uc = json_string_value(json_object_get(c, "cdniuc"));
    if (!uc)
        return fail(out, US_BAD_URI_CONTAINER, "no cdniuc");
    char why[160];
    if (!container_matches(uc, out->stripped_uri, why, sizeof why))
        return fail(out, US_BAD_URI_CONTAINER, "%s", why);
    /* jti last: only a token that passed everything uses up its nonce */
    json_t *jti = json_object_get(c, "jti");
    if (jti) {
        if (!json_is_string(jti) || !v->jti_fresh)
            return fail(out, US_REPLAYED, "jti cannot be enforced");
        if (!v->jti_fresh(v->jti_ctx, json_string_value(jti), (long long)exp_at))
            return fail(out, US_REPLAYED, "jti already used");
    }
    if (stt && json_integer_value(stt) > 0) {
        out->stt = (int)json_integer_value(stt);
        out->ets = (long long)json_number_value(ets);
        out->std_depth = std ? json_integer_value(std) : 0;
    }
    out->code = US_VERIFIED;
    strcpy(out->reason, "verified");
    return US_VERIFIED;
}

void us_result_free(us_result *r)
{
    if (!r)
        return;
    free(r->token);
    free(r->stripped_uri);
    json_decref(r->claims);
    memset(r, 0, sizeof *r);
}

/* --- minting ---------------------------------------------------------------- */

json_t *us_hop_claims(const json_t *claims, long long now, const char *our_iss, bool add_iss,
                      const char *next_aud, const char *new_uri)
{
    json_t *c = json_deep_copy(claims);
    if (!c)
        return NULL;
    if (json_object_get(c, "iss") || add_iss) {
        if (our_iss)
            json_object_set_new(c, "iss", json_string(our_iss));
        else
            json_object_del(c, "iss");
    }
    if (json_object_get(c, "iat"))
        json_object_set_new(c, "iat", json_integer(now));
    if (next_aud)
        json_object_set_new(c, "aud", json_string(next_aud));
    else
        json_object_del(c, "aud");
    const char *uc = json_string_value(json_object_get(c, "cdniuc"));
    if (new_uri && (!uc || strncmp(uc, "regex:", 6) != 0)) {
        char h[96], v[104];
        if (!us_uri_hash(new_uri, h, sizeof h)) {
            json_decref(c);
            return NULL;
        }
        snprintf(v, sizeof v, "hash:%s", h);
        json_object_set_new(c, "cdniuc", json_string(v));
    }
    return c;
}

json_t *us_renewal_claims(const json_t *claims, long long now, const char *our_iss)
{
    json_t *c = json_deep_copy(claims);
    json_t *ets = json_object_get(c, "cdniets");
    if (!c || !json_is_number(ets)) {
        json_decref(c);
        return NULL;
    }
    /* from the time of validation, never from the old exp (no chaining) */
    json_object_set_new(c, "exp", json_integer(now + (long long)json_number_value(ets)));
    if (json_object_get(c, "iat"))
        json_object_set_new(c, "iat", json_integer(now));
    if (json_object_get(c, "iss") && our_iss)
        json_object_set_new(c, "iss", json_string(our_iss));
    json_object_del(c, "jti"); /* a one-time nonce is not handed out twice */
    return c;
}

char *us_mint(const jwk *key, jws_alg alg, const json_t *claims)
{
    char *s = json_dumps(claims, JSON_COMPACT | JSON_SORT_KEYS);
    if (!s)
        return NULL;
    char *t = jws_sign(key, alg, s, strlen(s));
    free(s);
    return t;
}

char *us_add_to_query(const char *uri, const char *package, const char *token)
{
    size_t n = strlen(uri);
    const char *hash = strchr(uri, '#');
    size_t base = hash ? (size_t)(hash - uri) : n;
    const char *q = memchr(uri, '?', base);
    char sep = !q ? '?' : (base > 0 && (uri[base - 1] == '?' || uri[base - 1] == '&')) ? 0 : '&';
    size_t cap = n + strlen(package) + strlen(token) + 3;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    int w = snprintf(out, cap, "%.*s%s%s=%s%s", (int)base, uri, sep ? (char[]){sep, 0} : "", package,
                     token, uri + base);
    if (w < 0 || (size_t)w >= cap) {
        free(out);
        return NULL;
    }
    return out;
}

bool us_cookie(const char *package, const char *token, const char *uri, long long depth,
               long long max_age, char *out, size_t cap)
{
    url_ref ur;
    if (url_parse(uri, strlen(uri), &ur) != URL_OK)
        return false;
    bool https = ur.scheme.len == 5 && strncasecmp(uri + ur.scheme.off, "https", 5) == 0;
    const char *p = uri + ur.path.off;
    size_t pl = ur.path.len, end = 0;
    long long seen = 0;
    if (depth > 0) {
        /* the first `depth` segments: "/a/b/c.ts" depth 2 -> "/a/b" */
        for (size_t i = 0; i < pl && seen < depth; i++)
            if (p[i] == '/') {
                size_t j = i + 1;
                while (j < pl && p[j] != '/')
                    j++;
                if (j == pl) /* the last segment is the resource, not a directory */
                    break;
                seen++;
                end = j;
            }
        if (seen < depth)
            return false;
    }
    int w = snprintf(out, cap, "%s=%s; Path=%.*s; Max-Age=%lld; HttpOnly; SameSite=Lax%s", package, token,
                     (int)(end ? end : 1), end ? p : "/", max_age > 0 ? max_age : 0,
                     https ? "; Secure" : "");
    return w > 0 && (size_t)w < cap;
}

void us_drop_package(char *uri, const char *package)
{
    char *q = strchr(uri, '?');
    if (!q)
        return;
    size_t pn = strlen(package);
    char *p = q + 1;
    while (*p) {
        char *e = p + strcspn(p, "&");
        if (strncasecmp(p, package, pn) == 0 && (p[pn] == '=' || p + pn == e)) {
            char *from = *e ? e + 1 : e;
            if (!*e && p > q + 1)
                p--; /* the last parameter: its '&' goes too */
            memmove(p, from, strlen(from) + 1);
            continue;
        }
        p = *e ? e + 1 : e;
    }
    size_t n = strlen(uri);
    if (n && uri[n - 1] == '?')
        uri[n - 1] = 0;
}
