/* Session cookies (RFC 6983 §5.4/§5.5). See cookie_auth.h. */
#include "signing/cookie_auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/iptable.h"
#include "common/jcheck.h"

const char *ca_status_text(ca_status s)
{
    static const char *const t[] = {"valid", "no session cookie", "session cookie signature",
                                    "session cookie expired", "session cookie is for another collection",
                                    "session cookie is for another client"};
    return (unsigned)s < sizeof t / sizeof *t ? t[s] : "?";
}

char *ca_mint(const jwk *key, jws_alg alg, const char *cdn_id, const char *collection,
              const char *client_ip, const char *sid, long long now, long ttl_s)
{
    json_t *c = json_pack("{s:s, s:s, s:I, s:I, s:s}", "iss", cdn_id, "aud", cdn_id, "iat", (json_int_t)now,
                          "exp", (json_int_t)(now + ttl_s), "ccid", collection);
    if (!c)
        return NULL;
    if (client_ip)
        json_object_set_new(c, "cdniip", json_string(client_ip));
    if (sid && *sid)
        json_object_set_new(c, "sid", json_string(sid));
    char *s = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(c);
    char *t = s ? jws_sign(key, alg, s, strlen(s)) : NULL;
    free(s);
    return t;
}

static bool same_address(const char *a, const char *b)
{
    ipt_addr x, y;
    return ipt_parse_addr(a, strlen(a), &x) && ipt_parse_addr(b, strlen(b), &y) && x.v6 == y.v6 &&
           memcmp(x.bytes, y.bytes, sizeof x.bytes) == 0;
}

/* One CDNISession value (tok, tl) checked. */
static ca_status check_one(const jwk_set *keys, const char *cdn_id, const char *tok, size_t tl,
                           const char *collection, const char *client_ip, long long now, long skew_s,
                           json_t **claims)
{
    jws_verified v;
    if (jws_verify(tok, tl, NULL, keys, &v) != JWS_OK)
        return CA_BAD_SIGNATURE;
    jerr e;
    json_t *o = jparse((const char *)v.payload, v.payload_len, 4096, &e);
    jws_verified_free(&v);
    const char *iss = json_string_value(json_object_get(o, "iss"));
    const char *aud = json_string_value(json_object_get(o, "aud"));
    const char *grp = json_string_value(json_object_get(o, "ccid"));
    json_t *exp = json_object_get(o, "exp"), *ip = json_object_get(o, "cdniip");
    ca_status st = CA_OK;
    if (!iss || !aud || strcmp(iss, cdn_id) != 0 || strcmp(aud, cdn_id) != 0 || !grp || !json_is_integer(exp) ||
        (ip && !json_is_string(ip)))
        st = CA_BAD_SIGNATURE; /* signed by us, yet not ours: treat as forged */
    else if (json_integer_value(exp) + skew_s <= now)
        st = CA_EXPIRED;
    else if (!collection || strcmp(grp, collection) != 0)
        st = CA_OTHER_COLLECTION;
    else if (ip && (!client_ip || !same_address(json_string_value(ip), client_ip)))
        st = CA_OTHER_CLIENT;
    if (st == CA_OK && claims)
        *claims = json_incref(o);
    json_decref(o);
    return st;
}

#define CA_MAX_VALUES 8

ca_status ca_check(const jwk_set *keys, const char *cdn_id, const char *cookie_header,
                   const char *collection, const char *client_ip, long long now, long skew_s,
                   json_t **claims)
{
    if (claims)
        *claims = NULL;
    if (!cookie_header)
        return CA_ABSENT;
    /* "a=b; CDNISession=<token>; c=d". A player may carry several of that
     * name (another CDN's on the way, a jar that does not keep hosts
     * apart): each is tried, one of ours for this collection wins, and
     * what the others are matters only when none is. */
    const char *c = cookie_header;
    size_t nl = strlen(CA_COOKIE_NAME), seen = 0;
    ca_status first = CA_ABSENT;
    for (const char *p = c; seen < CA_MAX_VALUES && (p = strstr(p, CA_COOKIE_NAME)) != NULL; p += nl) {
        if (!((p == c || p[-1] == ' ' || p[-1] == ';') && p[nl] == '='))
            continue;
        const char *tok = p + nl + 1;
        size_t tl = strcspn(tok, "; ");
        if (!tl)
            continue;
        seen++;
        ca_status st = check_one(keys, cdn_id, tok, tl, collection, client_ip, now, skew_s, claims);
        if (st == CA_OK)
            return CA_OK;
        /* the most telling refusal: one of ours (expired, another collection
         * or client) over one that is not ours at all */
        if (first == CA_ABSENT || (first == CA_BAD_SIGNATURE && st != CA_BAD_SIGNATURE))
            first = st;
    }
    return first;
}

bool ca_set_cookie(const char *token, bool https, long max_age_s, char *out, size_t cap)
{
    int w = snprintf(out, cap, "%s=%s; Path=/; Max-Age=%ld; HttpOnly; SameSite=Lax%s", CA_COOKIE_NAME, token,
                     max_age_s > 0 ? max_age_s : 0, https ? "; Secure" : "");
    return w > 0 && (size_t)w < cap;
}
