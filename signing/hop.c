/* URI signing at one CDN hop. See hop.h. */
#include "signing/hop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/hash.h"
#include "common/log.h"

const char *hop_method_name(hop_method m)
{
    return m == HOP_TOKEN ? "token" : m == HOP_COOKIE ? "cookie" : "none";
}

const char *hop_session_name(hop_session s)
{
    return s == HOP_SESSION_COOKIE ? "cookie" : s == HOP_SESSION_QUERY ? "query" : "both";
}

hop_session hop_session_from_name(const char *s)
{
    return !s ? HOP_SESSION_DEFAULT
           : !strcmp(s, "both") ? HOP_SESSION_BOTH
           : !strcmp(s, "cookie") ? HOP_SESSION_COOKIE
           : !strcmp(s, "query") ? HOP_SESSION_QUERY
                                  : HOP_SESSION_DEFAULT;
}

void hop_result_free(hop_result *r)
{
    if (!r)
        return;
    free(r->target);
    free(r->token);
    json_decref(r->claims);
    free(r->set_cookie[0]);
    free(r->set_cookie[1]);
    memset(r, 0, sizeof *r);
}

static bool deny(hop_result *out, us_code code, const char *reason)
{
    out->allowed = false;
    out->code = code;
    snprintf(out->reason, sizeof out->reason, "%s", reason);
    return false;
}

/* the session cookie for this collection, on an authorized top-level manifest */
static void start_session(const hop_conf *c, const hop_request *rq, const char *collection, bool https,
                          hop_result *out)
{
    if (c->session_ttl_s <= 0 || !rq->top_manifest || !c->key || out->session_auth == HOP_SESSION_QUERY)
        return;
    char sid[HOP_SID_MAX];
    hop_session_id(out->claims, sid, sizeof sid);
    char *t = ca_mint(c->key, c->alg, c->cdn_id, collection, c->bind_client ? rq->client_ip : NULL, sid, rq->now,
                      c->session_ttl_s);
    char v[4096];
    if (t && ca_set_cookie(t, https, c->session_ttl_s, v, sizeof v))
        out->set_cookie[1] = strdup(v);
    free(t);
}

void hop_session_id(const json_t *claims, char *out, size_t cap)
{
    out[0] = 0;
    if (!claims)
        return;
    const char *id = json_string_value(json_object_get(claims, "sid")); /* our session cookie */
    if (!id)
        id = json_string_value(json_object_get(claims, "jti"));
    if (id) {
        snprintf(out, cap, "%s", id);
        return;
    }
    char *s = json_dumps(claims, JSON_COMPACT | JSON_SORT_KEYS);
    if (s) {
        snprintf(out, cap, "%016llx", (unsigned long long)hash_fnv1a64(s, strlen(s)));
        free(s);
    }
}

bool hop_check(const hop_conf *c, const us_trust *trust, size_t n_trust, const hop_request *rq,
               hop_result *out)
{
    memset(out, 0, sizeof *out);
    us_policy p;
    jerr e;
    if (!rq->policy) {
        out->allowed = true;
        return true;
    }
    if (!us_policy_parse(rq->policy, "MI.UriSigning", &p, &e)) {
        /* published metadata is validated; a value we cannot read is not
         * a reason to serve unsigned */
        return deny(out, US_NOT_CHECKED, e.reason);
    }
    snprintf(out->package, sizeof out->package, "%s", p.package);
    out->session_auth = rq->session_auth ? rq->session_auth : c->session_auth ? c->session_auth : HOP_SESSION_BOTH;
    if (!p.enforce) {
        us_policy_free(&p);
        out->allowed = true;
        return true;
    }
    bool https = strcmp(rq->scheme, "https") == 0;
    const char *collection = rq->collection ? rq->collection : rq->host;
    size_t ul = strlen(rq->scheme) + strlen(rq->host) + strlen(rq->target) + 4;
    char *uri = malloc(ul);
    if (!uri) {
        us_policy_free(&p);
        return deny(out, US_NOT_CHECKED, "out of memory");
    }
    snprintf(uri, ul, "%s://%s%s", rq->scheme, rq->host, rq->target);
    /* the peers' or CSP's keys, then our own (the tokens we renewed come back) */
    us_trust all[HOP_MAX_TRUST + 1];
    if (n_trust > HOP_MAX_TRUST)
        n_trust = HOP_MAX_TRUST;
    memcpy(all, trust, n_trust * sizeof *trust);
    if (c->own_keys)
        all[n_trust++] = (us_trust){c->issuer, c->own_keys, true};
    const char *aud[] = {c->cdn_id};
    us_verifier v = {.trust = all, .n_trust = n_trust, .enc_keys = c->enc_keys, .audiences = aud,
                     .n_audiences = 1, .skew_s = c->skew_s, .jti_fresh = c->jti_fresh, .jti_ctx = c->jti_ctx};
    us_request q = {.uri = uri, .cookie = rq->cookie, .client_ip = rq->client_ip, .now = rq->now};
    us_result r;
    us_code code = us_check(&v, &p, &q, &r);
    size_t prefix = strlen(rq->scheme) + 3 + strlen(rq->host);
    if (r.stripped_uri && strlen(r.stripped_uri) >= prefix && r.source != US_SRC_NONE &&
        r.source != US_SRC_COOKIE)
        out->target = strdup(r.stripped_uri + prefix);
    if (code == US_VERIFIED) {
        out->allowed = true;
        out->method = HOP_TOKEN;
        out->code = code;
        out->claims = json_incref(r.claims);
        /* attached again to the URIs of a manifest we serve, where its
         * cdniuc covers them: not a one-time token, not one to renew */
        if (r.source == US_SRC_QUERY && r.token && !json_object_get(r.claims, "jti") && !r.stt)
            out->token = strdup(r.token);
        snprintf(out->reason, sizeof out->reason, "verified (%s, issuer %s)",
                 r.source == US_SRC_COOKIE ? "cookie" : r.source == US_SRC_PATH ? "path" : "query",
                 r.issuer ? r.issuer : "-");
        if (r.stt == 1 && c->key) { /* renewal by cookie, for our own host */
            json_t *rc = us_renewal_claims(r.claims, rq->now, c->issuer);
            if (rc && json_object_get(rc, "aud")) /* it comes back to us */
                json_object_set_new(rc, "aud", json_string(c->cdn_id));
            char *t = rc ? us_mint(c->key, c->alg, rc) : NULL;
            char v2[4096];
            if (t && us_cookie(p.package, t, uri, r.std_depth, r.ets, v2, sizeof v2))
                out->set_cookie[0] = strdup(v2);
            free(t);
            json_decref(rc);
        }
        start_session(c, rq, collection, https, out);
    } else if ((r.source == US_SRC_NONE || r.source == US_SRC_COOKIE) && c->own_keys) {
        /* no token, or only one in a cookie that did not verify (a stale
         * renewal, another CDN's): a session cookie of ours may stand for
         * one. A token in the URI that fails stays a refusal. */
        json_t *cc = NULL;
        ca_status cs = ca_check(c->own_keys, c->cdn_id, rq->cookie, collection, rq->client_ip, rq->now,
                                c->skew_s, &cc);
        if (cs == CA_OK) {
            out->allowed = true;
            out->method = HOP_COOKIE;
            out->code = US_VERIFIED;
            out->claims = cc;
            snprintf(out->reason, sizeof out->reason, "session cookie for %s", collection);
        } else {
            deny(out, code, cs == CA_ABSENT || r.source == US_SRC_COOKIE ? r.reason : ca_status_text(cs));
            out->method = cs == CA_ABSENT ? HOP_TOKEN : HOP_COOKIE;
        }
    } else {
        deny(out, code, r.reason);
        out->method = HOP_TOKEN;
    }
    us_result_free(&r);
    us_policy_free(&p);
    free(uri);
    return out->allowed;
}

/* "regex:" + ERE for everything under location's directory. */
static char *dir_regex(const char *location)
{
    const char *q = location + strcspn(location, "?#");
    const char *sch = strstr(location, "://");
    const char *path = sch ? strchr(sch + 3, '/') : NULL;
    if (!path || path > q)
        return NULL;
    const char *slash = path;
    for (const char *x = path; x < q; x++)
        if (*x == '/')
            slash = x;
    size_t n = (size_t)(slash - location) + 1, cap = 6 + 2 * n + 32;
    char *out = malloc(cap), *w = out;
    if (!out)
        return NULL;
    w += sprintf(w, "regex:");
    for (size_t i = 0; i < n; i++) {
        if (strchr(".[]{}()\\*+?^$|", location[i]))
            *w++ = '\\';
        *w++ = location[i];
    }
    strcpy(w, "[^?#]*([?].*)?");
    return out;
}

int hop_profile_from_name(const char *s)
{
    return !s || !strcmp(s, "rfc9246") ? HOP_PROFILE_RFC9246 : !strcmp(s, "ats") ? HOP_PROFILE_ATS : -1;
}

/* "regex:" + ERE for exactly location, with any query after it. */
static char *exact_regex(const char *location)
{
    size_t n = strcspn(location, "#"), cap = 6 + 2 * n + 16;
    char *out = malloc(cap), *w = out;
    if (!out)
        return NULL;
    w += sprintf(w, "regex:");
    for (size_t i = 0; i < n; i++) {
        if (strchr(".[]{}()\\*+?^$|", location[i]))
            *w++ = '\\';
        *w++ = location[i];
    }
    strcpy(w, memchr(location, '?', n) ? "(&.*)?$" : "([?].*)?$");
    return out;
}

/* Claims the ATS verifier refuses, taken out (see hop_profile). */
static void ats_claims(json_t *claims, long long now)
{
    json_t *ets = json_object_get(claims, "cdniets");
    if (json_integer_value(json_object_get(claims, "cdnistt")) == 2) {
        /* renewal by query is not understood: the renewed expiry, no renewal */
        if (json_is_number(ets) && json_number_value(ets) > 0)
            json_object_set_new(claims, "exp", json_integer(now + (long long)json_number_value(ets)));
        json_object_del(claims, "cdnistt");
        json_object_del(claims, "cdniets");
    }
    json_t *std = json_object_get(claims, "cdnistd");
    if (std && json_integer_value(std) != 0)
        json_object_del(claims, "cdnistd");
    static const char *const gone[] = {"jti", "cdniip", "cdnicrit"};
    for (size_t i = 0; i < sizeof gone / sizeof *gone; i++)
        json_object_del(claims, gone[i]);
}

char *hop_next_token(const hop_conf *c, const jwk *key, jws_alg alg, hop_profile prof, const hop_result *r,
                     const char *next_aud, const char *location, bool dir_scope, long long now)
{
    if (!r->claims || !c->key)
        return NULL;
    if (!key) {
        key = c->key;
        alg = c->alg;
    }
    json_t *from = r->claims;
    if (r->method == HOP_COOKIE) {
        /* from the session: the same expiry and client binding */
        from = json_pack("{s:O}", "exp", json_object_get(r->claims, "exp"));
        json_t *ip = json_object_get(r->claims, "cdniip");
        if (from && ip)
            json_object_set(from, "cdniip", ip);
    }
    /* cdniuc: the hash of this URI, or a regex for its directory on the next
     * host - asked for, or because the token we took was a regex (a session
     * token: the upstream regex names the host we are leaving) */
    const char *uc = json_string_value(json_object_get(from, "cdniuc"));
    bool dir = dir_scope || (uc && strncmp(uc, "regex:", 6) == 0);
    char *rx = dir ? dir_regex(location) : prof == HOP_PROFILE_ATS ? exact_regex(location) : NULL;
    json_t *claims = from && (!dir || rx) ? us_hop_claims(from, now, c->issuer, true, next_aud, dir ? NULL : location)
                                          : NULL;
    if (rx && claims) /* a regex: the directory's, or (ATS, no hash form) this URL's */
        json_object_set_new(claims, "cdniuc", json_string(rx));
    free(rx);
    /* the playback session travels on, so every hop logs one session id */
    char sid[HOP_SID_MAX];
    hop_session_id(r->claims, sid, sizeof sid);
    if (claims && dir_scope) /* one token for many URIs is not a one-time token */
        json_object_del(claims, "jti");
    if (claims && prof == HOP_PROFILE_ATS)
        ats_claims(claims, now);
    if (claims && sid[0] && !json_object_get(claims, "jti"))
        json_object_set_new(claims, "sid", json_string(sid));
    if (from != r->claims)
        json_decref(from);
    /* cdnistt and cdniets travel on: each hop renews for its own host; with
     * cdnistt 2 (RFC 9246 §3.3.1) renewal goes through the redirect's query,
     * so the token handed on is the renewed one */
    json_t *ets = json_object_get(claims, "cdniets");
    if (json_integer_value(json_object_get(claims, "cdnistt")) == 2 && json_is_number(ets) &&
        json_number_value(ets) > 0)
        json_object_set_new(claims, "exp", json_integer(now + (long long)json_number_value(ets)));
    char *t = claims ? us_mint(key, alg, claims) : NULL;
    json_decref(claims);
    return t;
}

char *hop_next_location(const hop_conf *c, const jwk *key, jws_alg alg, hop_profile prof, const hop_result *r,
                        const char *next_aud, const char *location, long long now)
{
    char *t = hop_next_token(c, key, alg, prof, r, next_aud, location, false, now);
    char *out = t ? us_add_to_query(location, r->package[0] ? r->package : US_DEFAULT_PACKAGE, t) : NULL;
    free(t);
    return out;
}


void hop_policy_for_peers(json_t *doc, const char *our_issuer)
{
    if (json_is_array(doc)) {
        size_t i;
        json_t *x;
        json_array_foreach(doc, i, x)
            hop_policy_for_peers(x, our_issuer);
        return;
    }
    if (!json_is_object(doc))
        return;
    const char *type = json_string_value(json_object_get(doc, "generic-metadata-type"));
    json_t *value = json_object_get(doc, "generic-metadata-value");
    if (type && strcmp(type, "MI.UriSigning") == 0 && json_is_object(value)) {
        json_object_set_new(value, "issuers", json_pack("[s]", our_issuer));
        json_object_del(value, "jwt-header");
        return;
    }
    const char *k;
    json_t *x;
    json_object_foreach(doc, k, x)
        hop_policy_for_peers(x, our_issuer);
}

/* --- configuration ------------------------------------------------------------ */

bool hop_trust_load(const char *file, const char *path, jwk_set *out, jerr *e)
{
    jerr fe = {0};
    if (jwk_set_load(file, out, &fe))
        return true;
    return jfail(e, path, "%s: %s %s", file, fe.path, fe.reason);
}

static bool jti_redis(void *ctx, const char *jti, long long exp)
{
    struct hop_jti *j = ctx;
    long long now = (long long)time(NULL), ttl = exp > now ? exp - now + 1 : j->max_ttl_s;
    if (ttl > j->max_ttl_s)
        ttl = j->max_ttl_s;
    char key[sizeof j->prefix + 300];
    if (snprintf(key, sizeof key, "%s%s", j->prefix, jti) >= (int)sizeof key)
        return false;
    bool durable;
    store_reply *r = store_cmd_durable(j->store, &durable, "SET %s 1 NX EX %lld", key, ttl > 0 ? ttl : 1);
    bool fresh = r && store_reply_is(r, STORE_STATUS); /* OK; nil when it existed */
    store_reply_free(r);
    if (fresh && !durable) {
        /* Its use is not on the replicas: a failover could forget it and let
         * the token play twice. Refused, and the mark taken back, so that
         * the viewer's retry can still use it once. */
        r = store_cmd(j->store, "DEL %s", key);
        store_reply_free(r);
        return false;
    }
    return fresh;
}

bool hop_keys_jti_store(hop_keys *k, const char *redis_url, const char *cdn_id)
{
    store_status st;
    k->jti.store = store_open(redis_url, &st);
    if (!k->jti.store)
        return false;
    snprintf(k->jti.prefix, sizeof k->jti.prefix, "cdni:%s:{jti}:", cdn_id);
    k->conf.jti_fresh = jti_redis;
    k->conf.jti_ctx = &k->jti;
    return true;
}

bool hop_keys_parse(json_t *root, const char *cdn_id, hop_keys *out, jerr *e)
{
    static const char *const keys[] = {"issuer", "signing_key", "enc_keys", "clock_skew_s", "session_cookie_s",
                                       "session_auth", "bind_client", "jti_max_ttl_s", NULL};
    memset(out, 0, sizeof *out);
    json_t *o = NULL;
    if (!jget_obj(root, "uri_signing", "$", false, &o, e))
        return false;
    if (!o)
        return true;
    const char *iss = cdn_id, *kf = NULL, *ef = NULL, *sa = NULL;
    long long skew = 0, sess = 0, ttl = 86400;
    bool bind = false;
    const char *P = "$.uri_signing";
    if (!jonly(o, P, keys, e) || !jget_str(o, "issuer", P, false, &iss, e) ||
        !jget_str(o, "signing_key", P, true, &kf, e) || !jget_str(o, "enc_keys", P, false, &ef, e) ||
        !jget_int(o, "clock_skew_s", P, false, 0, 300, &skew, e) ||
        !jget_int(o, "session_cookie_s", P, false, 0, 86400, &sess, e) ||
        !jget_bool(o, "bind_client", P, false, &bind, e) ||
        !jget_int(o, "jti_max_ttl_s", P, false, 1, 30 * 86400, &ttl, e) ||
        !jget_str(o, "session_auth", P, false, &sa, e))
        return false;
    hop_session mode = hop_session_from_name(sa);
    if (sa && !mode)
        return jfail(e, "$.uri_signing.session_auth", "expected \"both\", \"cookie\" or \"query\"");
    if (mode == HOP_SESSION_COOKIE && sess == 0)
        return jfail(e, "$.uri_signing.session_auth", "\"cookie\" needs session cookies (session_cookie_s > 0)");
    jwk_set ks;
    if (!hop_trust_load(kf, "$.uri_signing.signing_key", &ks, e))
        return false;
    const jwk *k = ks.n == 1 ? &ks.keys[0] : NULL;
    if (!k || (k->kty == JWK_EC_P256 && !k->has_private) || k->enc) {
        jwk_set_free(&ks);
        return jfail(e, "$.uri_signing.signing_key", "expected one signing key: EC P-256 with its \"d\", or oct");
    }
    out->key = *k;
    ks.keys[0].pkey = NULL; /* now ours */
    jwk_set_free(&ks);
    jws_alg alg = out->key.alg[0] ? jws_alg_from_name(out->key.alg, strlen(out->key.alg))
                  : out->key.kty == JWK_EC_P256 ? JWS_ES256 : JWS_HS256;
    if (!jws_key_fits(&out->key, alg)) {
        jwk_clear(&out->key);
        return jfail(e, "$.uri_signing.signing_key", "the key cannot sign with %s (an HS256 secret needs 32 bytes)",
                     jws_alg_name(alg));
    }
    if (ef && !hop_trust_load(ef, "$.uri_signing.enc_keys", &out->enc, e)) {
        jwk_clear(&out->key);
        return false;
    }
    out->own = (jwk_set){&out->key, 1};
    out->present = true;
    out->jti.max_ttl_s = ttl;
    out->conf = (hop_conf){.cdn_id = cdn_id, .issuer = iss, .key = &out->key, .alg = alg,
                           .own_keys = &out->own, .enc_keys = ef ? &out->enc : NULL, .skew_s = (long)skew,
                           .session_ttl_s = (long)sess, .bind_client = bind,
                           .session_auth = mode ? mode : HOP_SESSION_BOTH};
    return true;
}

void hop_keys_free(hop_keys *k)
{
    if (!k || !k->present)
        return;
    jwk_clear(&k->key);
    if (k->enc.keys)
        jwk_set_free(&k->enc);
    store_close(k->jti.store);
    memset(k, 0, sizeof *k);
}

void hop_keys_metrics(hop_keys *k, metrics *m)
{
    static const char help[] = "URI-signing decisions on end-user requests";
    k->m_token = metrics_series(m, "cdni_uri_signing_total", "result=\"authorized\",method=\"token\"", "counter",
                                help);
    k->m_cookie = metrics_series(m, "cdni_uri_signing_total", "result=\"authorized\",method=\"cookie\"",
                                 "counter", help);
    k->m_refused = metrics_series(m, "cdni_uri_signing_total", "result=\"refused\"", "counter", help);
}

void hop_record(const hop_keys *k, const hop_result *r, const char *client, const char *host, const char *path)
{
    if (r->allowed) {
        if (r->method != HOP_OPEN)
            metric_add(r->method == HOP_COOKIE ? k->m_cookie : k->m_token, 1);
        return;
    }
    metric_add(k->m_refused, 1);
    char code[8];
    snprintf(code, sizeof code, "%d", (int)r->code);
    log_kv(LOG_INFO, "URI signing: request refused", "code", code, "method", hop_method_name(r->method),
           "reason", r->reason, "client", client, "host", host ? host : "-", "path", path, NULL);
}
