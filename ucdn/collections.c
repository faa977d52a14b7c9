/* Content collections (RFC 6983) and the manifests the uCDN serves with
 * their URIs pointed at the chosen dCDN (option 3.2).
 *
 * CSP API, /csp/v1/collections/{id}:
 *   PUT {"service": ID, "path": "/vod/m1/master.m3u8", "ccid": ...,
 *        "origin_url": URL | "manifest": TEXT, "live": false,
 *        "purge_id": ..., "auth_group": ...}
 *   GET, DELETE, and GET /csp/v1/collections (the caller's).
 * A collection belongs to one of the caller's delivery services; its path
 * is where players ask for the top-level manifest on that service's host.
 * Records live in Redis (hash cdni:<cdn>:{mi}:collections); every instance
 * reloads its in-process set on cdni:<cdn>:collections:changed.
 *
 * Delivery: a request for a collection's manifest is routed like any other,
 * but instead of a redirect the uCDN answers with the manifest, every URI
 * of the service's host or the origin's made absolute on the dCDN's
 * request router (HTTP-I) or on the surrogate its RI named (HTTP-R), so
 * the player's chunk requests never come back here. With URI signing in
 * force each of those URIs carries a token of ours for the dCDN: one for
 * the manifest's directory there, another for a URI outside it
 * (signing/manifest_tokens.h).
 *
 * Manifests from an origin are cached in process: VoD until the
 * collection changes, revalidated every manifests.vod_revalidate_s; live
 * for half the target duration (HLS EXT-X-TARGETDURATION, DASH
 * minimumUpdatePeriod). Origin down: a VoD copy no older than
 * manifests.stale_grace_s past its revalidation is served, live gets 504.
 * Rewritten manifests without tokens are cached per (collection, target);
 * responses carry an ETag and answer If-None-Match with 304. */
#include <ctype.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/clock.h"
#include "common/hash.h"
#include "common/http_client.h"
#include "common/log.h"
#include "common/url.h"
#include "manifest/manifest.h"
#include "signing/manifest_tokens.h"
#include "ucdn/ucdn.h"

typedef struct {
    char *id, *csp, *service, *host, *path, *ccid, *origin_url, *manifest, *purge_id, *auth_group;
    size_t manifest_len;
    bool live;
    long long updated;
} collection;

typedef struct {
    collection *c;
    size_t n;
    uint32_t *table; /* open addressing on host and path: index + 1, 0 empty */
    size_t table_size; /* a power of two, at least twice n */
} collection_set;

/* host (lower-cased, without port) and path, as the table hashes them */
static uint64_t key_hash(const char *host, size_t hl, const char *path)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < hl; i++) {
        h ^= (unsigned char)tolower((unsigned char)host[i]);
        h *= 1099511628211ull;
    }
    h ^= '\n';
    h *= 1099511628211ull;
    for (const char *p = path; *p; p++) {
        h ^= (unsigned char)*p;
        h *= 1099511628211ull;
    }
    return h;
}

static const collection *find(const collection_set *s, const char *host, const char *path)
{
    if (!s || !s->table_size)
        return NULL;
    size_t hl = strcspn(host, ":"), mask = s->table_size - 1;
    for (size_t i = key_hash(host, hl, path) & mask;; i = (i + 1) & mask) {
        uint32_t v = s->table[i];
        if (!v)
            return NULL;
        const collection *c = &s->c[v - 1];
        if (strlen(c->host) == hl && strncasecmp(c->host, host, hl) == 0 && strcmp(c->path, path) == 0)
            return c;
    }
}

/* --- the in-process set ------------------------------------------------------ */

static void set_free(void *p)
{
    collection_set *s = p;
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        collection *c = &s->c[i];
        char *f[] = {c->id, c->csp, c->service, c->host, c->path, c->ccid, c->origin_url, c->manifest,
                     c->purge_id, c->auth_group};
        for (size_t k = 0; k < sizeof f / sizeof *f; k++)
            free(f[k]);
    }
    free(s->c);
    free(s->table);
    free(s);
}

static char *dup_member(json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? strdup(v) : NULL;
}

bool collections_reload(ucdn *u)
{
    store_reply *r = store_cmd(u->store, "HGETALL %s", u->key_collections);
    if (!r || !store_reply_is(r, STORE_ARRAY)) {
        store_reply_free(r);
        return false;
    }
    collection_set *s = calloc(1, sizeof *s);
    s->c = calloc(store_reply_count(r) / 2 + 1, sizeof *s->c);
    for (size_t i = 0; i + 1 < store_reply_count(r); i += 2) {
        json_t *o = store_reply_json(store_reply_at(r, i + 1));
        collection *c = &s->c[s->n];
        c->id = strdup(store_reply_at_str(r, i, NULL));
        c->csp = dup_member(o, "csp");
        c->service = dup_member(o, "service");
        c->host = dup_member(o, "host");
        c->path = dup_member(o, "path");
        c->ccid = dup_member(o, "ccid");
        c->origin_url = dup_member(o, "origin_url");
        c->manifest = dup_member(o, "manifest");
        c->purge_id = dup_member(o, "purge_id");
        c->auth_group = dup_member(o, "auth_group");
        c->manifest_len = c->manifest ? strlen(c->manifest) : 0;
        c->live = json_is_true(json_object_get(o, "live"));
        c->updated = json_integer_value(json_object_get(o, "updated"));
        json_decref(o);
        if (c->host && c->path && (c->origin_url || c->manifest))
            s->n++;
        else
            log_kv(LOG_ERROR, "unreadable collection record skipped", "id", c->id, NULL);
    }
    store_reply_free(r);
    size_t ts = 16;
    while (ts < 2 * s->n)
        ts *= 2;
    s->table = calloc(ts, sizeof *s->table);
    s->table_size = s->table ? ts : 0;
    for (size_t i = 0; s->table && i < s->n; i++) {
        size_t j = key_hash(s->c[i].host, strlen(s->c[i].host), s->c[i].path) & (ts - 1);
        while (s->table[j])
            j = (j + 1) & (ts - 1);
        s->table[j] = (uint32_t)i + 1;
    }
    atomic_store(&u->n_collections, s->n);
    snapshot_publish(&u->collections, s);
    return true;
}

void collections_on_message(const char *msg, void *ud)
{
    if (!collections_reload(ud))
        log_kv(LOG_WARN, "collections reload failed; serving the previous set", NULL);
}

/* --- caches -------------------------------------------------------------------- */

/* Two tables (origin copies, rewritten copies), so that rewrites for many
 * targets never push out the origin copies; each 4-way set-associative,
 * the oldest entry of a set making room. */
#define MC_SETS 256
#define MC_WAYS 4
struct mc_entry {
    char *key; /* "id|updated" or "id|updated|fetched|target" */
    char *body;
    size_t len;
    long long at_ms, fresh_until_ms, stored_ms;
    char etag[24];
};
struct mf_cache {
    pthread_mutex_t mu;
    struct mc_entry src[MC_SETS * MC_WAYS], rw[MC_SETS * MC_WAYS];
};

static struct mc_entry *mc_set(struct mc_entry *table, const char *key)
{
    return &table[(hash_fnv1a64(key, strlen(key)) % MC_SETS) * MC_WAYS];
}

/* A copy of the entry's body (malloc'd) if present; *fresh says whether it is. */
static char *mc_get(struct mf_cache *c, struct mc_entry *table, const char *key, size_t *len, long long now,
                    bool *fresh, long long *at_ms, char *etag)
{
    char *out = NULL;
    pthread_mutex_lock(&c->mu);
    struct mc_entry *set = mc_set(table, key);
    for (size_t w = 0; w < MC_WAYS && !out; w++) {
        struct mc_entry *e = &set[w];
        if (!e->key || strcmp(e->key, key) != 0 || !(out = malloc(e->len + 1)))
            continue;
        memcpy(out, e->body, e->len + 1);
        *len = e->len;
        *fresh = now < e->fresh_until_ms;
        if (at_ms)
            *at_ms = e->at_ms;
        if (etag)
            strcpy(etag, e->etag);
    }
    pthread_mutex_unlock(&c->mu);
    return out;
}

static void mc_put(struct mf_cache *c, struct mc_entry *table, const char *key, const char *body, size_t len,
                   long long at_ms, long long fresh_until_ms, const char *etag)
{
    char *k = strdup(key), *b = malloc(len + 1);
    if (!k || !b) {
        free(k);
        free(b);
        return;
    }
    memcpy(b, body, len);
    b[len] = 0;
    pthread_mutex_lock(&c->mu);
    struct mc_entry *set = mc_set(table, key), *e = &set[0];
    for (size_t w = 0; w < MC_WAYS; w++) {
        if (!set[w].key || strcmp(set[w].key, key) == 0) {
            e = &set[w];
            break;
        }
        if (set[w].stored_ms < e->stored_ms)
            e = &set[w];
    }
    char *ok = e->key, *ob = e->body;
    *e = (struct mc_entry){k, b, len, at_ms, fresh_until_ms, wall_ms(), ""};
    snprintf(e->etag, sizeof e->etag, "%s", etag ? etag : "");
    pthread_mutex_unlock(&c->mu);
    free(ok);
    free(ob);
}

static void mc_free(struct mf_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < MC_SETS * MC_WAYS; i++) {
        free(c->src[i].key);
        free(c->src[i].body);
        free(c->rw[i].key);
        free(c->rw[i].body);
    }
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* How long a live manifest stays fresh: half its target duration. */
static long long live_ttl_ms(const char *b, size_t n)
{
    double secs = 2.0;
    const char *t = memmem(b, n, "#EXT-X-TARGETDURATION:", 22);
    const char *m = memmem(b, n, "minimumUpdatePeriod=\"PT", 23);
    if (t)
        secs = strtod(t + 22, NULL);
    else if (m)
        secs = strtod(m + 23, NULL);
    if (secs <= 0 || secs > 3600)
        secs = 2.0;
    return (long long)(secs * 500);
}

typedef enum { SRC_OK, SRC_STALE, SRC_DOWN, SRC_BAD } src_status;

/* The collection's manifest as published, in *body: an uploaded one is
 * the snapshot's own (valid while the caller holds it; *owned NULL), an
 * origin's a copy the caller frees (*owned). */
static src_status source(ucdn *u, const collection *c, const char **body, char **owned, size_t *len,
                         long long *at_ms, char *why, size_t wcap)
{
    long long now = wall_ms();
    *owned = NULL;
    if (c->manifest) {
        *body = c->manifest;
        *len = c->manifest_len;
        *at_ms = c->updated;
        return SRC_OK;
    }
    char key[600];
    snprintf(key, sizeof key, "%s|%lld", c->id, c->updated);
    bool fresh = false;
    char *cached = mc_get(u->mf_cache, u->mf_cache->src, key, len, now, &fresh, at_ms, NULL);
    if (cached && fresh) {
        *body = *owned = cached;
        return SRC_OK;
    }
    http_result res = {0};
    static http_client_slot origin_clients = HTTP_CLIENT_SLOT_INIT;
    http_client_conf cc = {.connect_timeout_ms = u->mf.origin_timeout_ms, .timeout_ms = u->mf.origin_timeout_ms,
                           .retries = 0, .max_body = (size_t)u->mf.max_bytes, .egress = u->egress};
    int rc = http_client_do(http_client_per_thread(&origin_clients, &cc), "GET", c->origin_url, NULL, NULL, 0, &res);
    if (rc == 0 && res.status == 200 && res.body && mf_detect(res.body, res.body_len) != MF_UNKNOWN) {
        long long ttl = c->live ? live_ttl_ms(res.body, res.body_len) : (long long)u->mf.vod_revalidate_s * 1000;
        mc_put(u->mf_cache, u->mf_cache->src, key, res.body, res.body_len, now, now + ttl, NULL);
        free(cached);
        *body = *owned = res.body;
        *len = res.body_len;
        *at_ms = now;
        res.body = NULL;
        http_result_free(&res);
        return SRC_OK;
    }
    bool bad = rc == 0 && res.status == 200; /* it answered, with something else */
    if (rc)
        snprintf(why, wcap, "%s", res.error);
    else if (bad)
        snprintf(why, wcap, "the origin's answer is neither HLS nor DASH");
    else
        snprintf(why, wcap, "the origin answered %ld", res.status);
    http_result_free(&res);
    /* VoD: the last copy, within the grace; live: nothing old is any good */
    if (cached && !c->live && now < *at_ms + (long long)(u->mf.vod_revalidate_s + u->mf.stale_grace_s) * 1000) {
        *body = *owned = cached;
        return SRC_STALE;
    }
    free(cached);
    return bad ? SRC_BAD : SRC_DOWN;
}

/* --- serving ----------------------------------------------------------------------- */

bool collections_serve(ucdn *u, http_req *r, const char *host, const char *path, bool https,
                       const char *location, const route_peer *peer, const char *http_target,
                       const mi_resolution *res, const hop_result *hr, const struct peer_signing *ps)
{
    if (atomic_load_explicit(&u->n_collections, memory_order_relaxed) == 0)
        return false; /* the common case of a CDN without collections: no snapshot traffic */
    snap_ref *ref;
    const collection_set *s = snapshot_acquire(&u->collections, &ref);
    const collection *c = find(s, host, path);
    if (!c) {
        snapshot_release(&u->collections, ref);
        return false;
    }
    /* two-step (option 3.3): the dCDN's own router gets the URIs, and rewrites again */
    json_t *has = mi_effective_value(res, "CDNIGW.HASManifest");
    const char *mode = json_string_value(json_object_get(has, "rewrite"));
    char iterative[320];
    if (mode && strcmp(mode, "two-step") == 0 && (peer->delivery_url || http_target)) {
        if (peer->delivery_url)
            snprintf(iterative, sizeof iterative, "%s", peer->delivery_url);
        else
            snprintf(iterative, sizeof iterative, "%s://%s/", https ? "https" : "http", http_target);
        location = iterative;
    }
    /* the target: scheme and authority of where the redirect would have gone */
    url_ref lr;
    char target[600], base[URL_MAX_LEN + 300];
    bool ok = url_parse(location, strlen(location), &lr) == URL_OK && lr.authority && lr.host.len &&
              lr.path.off < 300 && strlen(host) < 256;
    /* ... and the content's host as the first path segment (see ri_host_path) */
    if (ok)
        ok = snprintf(target, sizeof target, "%.*s/%s", (int)lr.path.off, location, host) < (int)sizeof target;
    snprintf(base, sizeof base, "%s://%s%s", https ? "https" : "http", host, path);
    char why[300] = "";
    const char *src = NULL;
    char *src_owned = NULL;
    size_t sl = 0;
    long long at = 0;
    src_status st = ok ? source(u, c, &src, &src_owned, &sl, &at, why, sizeof why) : SRC_BAD;
    if (!ok) {
        http_reply_problem(r, 502, "Bad Gateway", "the dCDN's location cannot be used as a manifest target", NULL);
    } else if (st == SRC_DOWN || st == SRC_BAD) {
        log_kv(LOG_WARN, "manifest unavailable", "collection", c->id, "reason", why, NULL);
        http_reply_problem(r, st == SRC_DOWN ? 504 : 502, st == SRC_DOWN ? "Gateway Timeout" : "Bad Gateway",
                           c->live ? "the live manifest cannot be fetched from the origin now"
                                   : "the manifest cannot be fetched from the origin",
                           NULL);
    } else {
        if (st == SRC_STALE)
            log_kv(LOG_WARN, "origin unavailable; serving the last VoD copy", "collection", c->id, "reason", why,
                   NULL);
        /* the service host and the origin's are ours to rewrite */
        char oh[256] = "";
        url_ref ou;
        if (c->origin_url && url_parse(c->origin_url, strlen(c->origin_url), &ou) == URL_OK &&
            ou.host.len + ou.port.len + 1 < sizeof oh) /* with its port: another port of that host is not the origin */
            snprintf(oh, sizeof oh, "%.*s%s%.*s", (int)ou.host.len, c->origin_url + ou.host.off, ou.port.len ? ":" : "",
                     (int)ou.port.len, c->origin_url + ou.port.off);
        const char *hosts[] = {c->host, oh[0] ? oh : NULL, NULL};
        bool signed_ = hr->method != HOP_OPEN;
        mt_rewrite q = {.conf = &u->us.conf, .key = ps->key.n ? &ps->key.keys[0] : NULL, .alg = ps->alg,
                        .profile = ps->profile, .hr = hr, .aud = ps->audience, .sign = signed_, .base = base,
                        .hosts = hosts, .target = target, .absolutize = true, .now = wall_ms() / 1000,
                        .max_bytes = (size_t)u->mf.max_bytes};
        char key[700], etag[24] = "";
        snprintf(key, sizeof key, "%s|%lld|%lld|%s", c->id, c->updated, at, target);
        size_t ol = 0;
        bool fresh;
        char *outb = !signed_ ? mc_get(u->mf_cache, u->mf_cache->rw, key, &ol, 0, &fresh, NULL, etag) : NULL;
        mf_report rep = {.kind = mf_detect(src, sl)};
        ok = true;
        if (!outb) {
            buf o;
            ok = mt_rewrite_manifest(&q, src, sl, &o, &rep);
            if (ok) {
                outb = buf_take(&o, &ol);
                snprintf(etag, sizeof etag, "\"%016llx\"", (unsigned long long)hash_fnv1a64(outb, ol));
                if (!signed_)
                    mc_put(u->mf_cache, u->mf_cache->rw, key, outb, ol, at, 0, etag);
            } else
                log_kv(LOG_WARN, "manifest not rewritten", "collection", c->id, "reason",
                       rep.error ? rep.error : "signing", NULL);
        }
        const char *inm = http_header(r, "If-None-Match");
        char cc[64];
        snprintf(cc, sizeof cc, "private, max-age=%lld", c->live ? live_ttl_ms(src, sl) / 1000 : 30LL);
        if (!ok || !outb) {
            http_reply_problem(r, 502, "Bad Gateway", "the manifest cannot be served rewritten", NULL);
        } else {
            http_add_header(r, "ETag", etag);
            http_add_header(r, "Cache-Control", cc);
            for (int k = 0; k < 2; k++) /* token renewal, session cookie */
                if (hr->set_cookie[k])
                    http_add_header(r, "Set-Cookie", hr->set_cookie[k]);
            if (st == SRC_STALE)
                http_add_header(r, "Warning", "110 - \"Response is Stale\"");
            if (inm && strstr(inm, etag)) {
                http_reply(r, 304, NULL, NULL, 0);
            } else {
                http_reply_take(r, 200, rep.kind == MF_DASH ? "application/dash+xml" : "application/vnd.apple.mpegurl",
                                outb, ol);
                outb = NULL;
            }
            metric_add(u->m_manifests, 1);
        }
        free(outb);
    }
    free(src_owned);
    snapshot_release(&u->collections, ref);
    return true;
}

/* --- CSP API ------------------------------------------------------------------------- */

/* KEYS: collections claims claimrefs objclaims; ARGV: key record csp claims-json channel.
 * Returns 1 created, 0 replaced; an error "CLAIMED <claim>". */
static const char put_script[] =
    "%s"
    "local claims = cjson.decode(ARGV[4])\n"
    "local c = claims_conflict(KEYS[2], ARGV[3], claims)\n"
    "if c then return redis.error_reply('CLAIMED ' .. c) end\n"
    "local old = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "claims_apply(KEYS[2], KEYS[3], KEYS[4], ARGV[3], 'col:' .. ARGV[1], claims)\n"
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
    "redis.call('PUBLISH', ARGV[5], 1)\n"
    "if old then return 0 else return 1 end\n";

/* KEYS as put; ARGV: key csp channel. 1 deleted, 0 absent. */
static const char delete_script[] =
    "%s"
    "if not redis.call('HGET', KEYS[1], ARGV[1]) then return 0 end\n"
    "claims_apply(KEYS[2], KEYS[3], KEYS[4], ARGV[2], 'col:' .. ARGV[1], {})\n"
    "redis.call('HDEL', KEYS[1], ARGV[1])\n"
    "redis.call('PUBLISH', ARGV[3], 1)\n"
    "return 1\n";

static char *script(const char *body)
{
    size_t n = strlen(ucdn_claims_lua) + strlen(body);
    char *s = malloc(n);
    if (s)
        snprintf(s, n, body, ucdn_claims_lua);
    return s;
}

/* The caller's collection id, or NULL after answering 404. */
static json_t *record(ucdn *u, const char *csp, const char *id, bool *down)
{
    char key[300];
    *down = false;
    if (!mi_service_id_ok(id) || !ucdn_object_key(csp, id, key, sizeof key))
        return NULL;
    store_reply *x = store_cmd(u->store, "HGET %s %s", u->key_collections, key);
    *down = !x;
    json_t *o = store_reply_json(x);
    store_reply_free(x);
    const char *owner = json_string_value(json_object_get(o, "csp"));
    if (o && (!owner || strcmp(owner, csp) != 0)) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

static void on_put(http_req *r, void *ctx)
{
    ucdn *u = ctx;
    const char *id = http_param(r, 0), *me = http_identity(r);
    if (!mi_service_id_ok(id)) {
        http_reply_problem(r, 404, "Not Found", "collection ids are 1-64 of [A-Za-z0-9._-]", NULL);
        return;
    }
    if (csp_over_limit(u, r, CSP_WRITE))
        return;
    static const char *const keys[] = {"service", "path", "ccid", "origin_url", "manifest", "live",
                                       "purge_id", "auth_group", NULL};
    size_t len;
    const char *body = http_body(r, &len);
    jerr e = {0};
    json_t *v = jparse(body, len, (size_t)u->mf.max_bytes + 65536, &e);
    const char *svc = NULL, *path = NULL, *ccid = NULL, *origin = NULL, *manifest = NULL, *pid = NULL, *grp = NULL;
    bool live = false;
    bool ok = v && json_is_object(v) && jonly(v, "$", keys, &e) && jget_str(v, "service", "$", true, &svc, &e) &&
              jget_str(v, "path", "$", true, &path, &e) && jget_str(v, "ccid", "$", true, &ccid, &e) &&
              jget_str(v, "origin_url", "$", false, &origin, &e) && jget_str(v, "manifest", "$", false, &manifest, &e) &&
              jget_bool(v, "live", "$", false, &live, &e) && jget_str(v, "purge_id", "$", false, &pid, &e) &&
              jget_str(v, "auth_group", "$", false, &grp, &e);
    if (v && !json_is_object(v) && !e.path[0])
        jfail(&e, "$", "expected an object");
    /* the path players ask for, in the one form requests are matched in */
    char cpath[URL_MAX_LEN + 2];
    size_t cl, cpl;
    if (ok && (path[0] != '/' || strlen(path) > 2048 || strpbrk(path, "?# ") ||
               url_canon_target(path, strlen(path), cpath, sizeof cpath, &cl, &cpl) != URL_CANON_OK))
        ok = jfail(&e, "$.path", "expected an absolute path without query, fragment or spaces");
    if (ok && (!ccid[0] || strlen(ccid) > 256))
        ok = jfail(&e, "$.ccid", "expected 1-256 characters");
    if (ok && pid && (!pid[0] || strlen(pid) > 256))
        ok = jfail(&e, "$.purge_id", "expected 1-256 characters");
    if (ok && grp && (!grp[0] || strlen(grp) > 256))
        ok = jfail(&e, "$.auth_group", "expected 1-256 characters");
    if (ok && !origin == !manifest)
        ok = jfail(&e, "$", "exactly one of origin_url and manifest is needed");
    egress_target et;
    egress_verdict ev = origin ? egress_check_url(u->egress, origin, strlen(origin), &et) : EGRESS_OK;
    if (ok && ev != EGRESS_OK) /* the addresses it resolves to are checked when it is fetched */
        ok = jfail(&e, "$.origin_url", "expected an absolute http(s) URL without credentials: %s",
                   egress_verdict_text(ev));
    const char *mwhy = NULL;
    if (ok && manifest && !mf_acceptable(manifest, strlen(manifest), &mwhy))
        ok = jfail(&e, "$.manifest", "%s", mwhy);
    if (ok && manifest && strlen(manifest) > (size_t)u->mf.max_bytes)
        ok = jfail(&e, "$.manifest", "larger than manifests.max_bytes (%lld)", u->mf.max_bytes);
    if (!ok) {
        http_reply_invalid(r, 422, "Invalid content collection", &e);
        json_decref(v);
        return;
    }
    svc_status ss;
    json_t *srec = ucdn_service_get(u, me, svc, &ss);
    const char *host = json_string_value(json_object_get(srec, "host"));
    char key[300];
    ucdn_object_key(me, id, key, sizeof key);
    if (ss == SVC_DOWN) {
        csp_reply_down(r);
    } else if (!srec) {
        jfail(&e, "$.service", "no delivery service \"%s\" of yours", svc);
        http_reply_invalid(r, 422, "Invalid content collection", &e);
    } else {
        snap_ref *ref;
        const collection *same = find(snapshot_acquire(&u->collections, &ref), host, cpath);
        bool taken = same && strcmp(same->id, key) != 0;
        snapshot_release(&u->collections, ref);
        if (taken) {
            http_reply_problem(r, 409, "Conflict", "another collection of yours is published at this host and path",
                               NULL);
        } else {
            json_t *rec = json_deep_copy(v);
            json_object_set_new(rec, "id", json_string(id));
            json_object_set_new(rec, "path", json_string(cpath));
            json_object_set_new(rec, "csp", json_string(me));
            json_object_set_new(rec, "host", json_string(host));
            json_object_set_new(rec, "updated", json_integer(wall_ms()));
            json_t *claims = ucdn_collection_claims(rec);
            char *s = json_dumps(rec, JSON_COMPACT), *ct = json_dumps(claims, JSON_COMPACT), *sc = script(put_script);
            json_decref(claims);
            const char *argv[] = {"EVAL", sc, "4", u->key_collections, u->key_claims, u->key_claimrefs,
                                  u->key_objclaims, key, s, me, ct, u->channel_collections};
            enum { N = sizeof argv / sizeof *argv };
            size_t lens[N];
            for (size_t k = 0; k < N; k++)
                lens[k] = argv[k] ? strlen(argv[k]) : 0;
            bool durable = false;
            store_reply *x = sc && s && ct ? store_cmdargv_durable(u->store, N, argv, lens, &durable) : NULL;
            if (!x) {
                csp_reply_down(r);
            } else if (store_reply_is(x, STORE_ERR) && !strncmp(store_reply_str(x, NULL), "CLAIMED ", 8)) {
                char what[600], d[700];
                snprintf(d, sizeof d, "%s belongs to another CSP", ucdn_claim_text(store_reply_str(x, NULL) + 8, what, sizeof what));
                http_reply_problem(r, 409, "Conflict", d, NULL);
            } else if (!store_reply_is(x, STORE_INT)) {
                log_kv(LOG_ERROR, "redis refused a collection write", "detail", store_reply_str(x, NULL) ? store_reply_str(x, NULL) : "?", NULL);
                csp_reply_down(r);
            } else if (!durable) {
                collections_reload(u);
                csp_reply_not_durable(r);
            } else {
                collections_reload(u); /* read-your-writes on this instance */
                log_kv(LOG_INFO, "content collection published", "id", id, "ccid", ccid, "csp", me, NULL);
                json_object_del(rec, "manifest");
                if (manifest)
                    json_object_set_new(rec, "manifest_bytes", json_integer((json_int_t)strlen(manifest)));
                http_reply_json(r, store_reply_int(x) ? 201 : 200, NULL, json_incref(rec));
            }
            store_reply_free(x);
            free(s);
            free(ct);
            free(sc);
            json_decref(rec);
        }
    }
    json_decref(srec);
    json_decref(v);
}

/* The caller's collection {id}, or NULL after answering (404, or 503). */
static json_t *owned(ucdn *u, http_req *r)
{
    bool down;
    json_t *o = record(u, http_identity(r), http_param(r, 0), &down);
    if (o)
        return o;
    if (down)
        csp_reply_down(r);
    else
        http_reply_problem(r, 404, "Not Found", "no such collection of yours", NULL);
    return NULL;
}

static void on_get(http_req *r, void *ctx)
{
    json_t *o = owned(ctx, r);
    if (o) {
        json_t *m = json_object_get(o, "manifest");
        if (m) {
            json_object_set_new(o, "manifest_bytes", json_integer((json_int_t)json_string_length(m)));
            json_object_del(o, "manifest");
        }
        if (!json_object_get(o, "id"))
            json_object_set_new(o, "id", json_string(http_param(r, 0)));
        http_reply_json(r, 200, NULL, json_incref(o));
    }
    json_decref(o);
}

static void on_delete(http_req *r, void *ctx)
{
    ucdn *u = ctx;
    if (csp_over_limit(u, r, CSP_WRITE))
        return;
    json_t *o = owned(u, r);
    if (!o)
        return;
    json_decref(o);
    char key[300], *sc = script(delete_script);
    const char *me = http_identity(r);
    ucdn_object_key(me, http_param(r, 0), key, sizeof key);
    const char *argv[] = {"EVAL", sc, "4", u->key_collections, u->key_claims, u->key_claimrefs, u->key_objclaims,
                          key, me, u->channel_collections};
    enum { N = sizeof argv / sizeof *argv };
    size_t lens[N];
    for (size_t k = 0; k < N; k++)
        lens[k] = argv[k] ? strlen(argv[k]) : 0;
    bool durable = false;
    store_reply *x = sc ? store_cmdargv_durable(u->store, N, argv, lens, &durable) : NULL;
    if (x && store_reply_is(x, STORE_INT) && !durable) {
        collections_reload(u);
        csp_reply_not_durable(r);
    } else if (x && store_reply_is(x, STORE_INT)) {
        collections_reload(u);
        http_reply(r, 204, NULL, NULL, 0);
    } else {
        csp_reply_down(r);
    }
    store_reply_free(x);
    free(sc);
}

static void on_list(http_req *r, void *ctx)
{
    ucdn *u = ctx;
    snap_ref *ref;
    const collection_set *s = snapshot_acquire(&u->collections, &ref);
    json_t *a = json_array();
    for (size_t i = 0; s && i < s->n; i++) {
        const collection *c = &s->c[i];
        if (!c->csp || strcmp(c->csp, http_identity(r)) != 0)
            continue;
        const char *tilde = strchr(c->id, '~');
        json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s, s:b, s:s}", "id", tilde ? tilde + 1 : c->id,
                                           "service", c->service ?: "", "host", c->host, "path", c->path, "live",
                                           c->live, "ccid", c->ccid ?: ""));
    }
    snapshot_release(&u->collections, ref);
    http_reply_json(r, 200, NULL, json_pack("{s:o}", "collections", a));
}

void collections_routes(ucdn *u, http_routes *out)
{
    http_routes_add(out, (http_route){"PUT", "/csp/v1/collections/{id}", on_put, u, false});
    http_routes_add(out, (http_route){"GET", "/csp/v1/collections/{id}", on_get, u, false});
    http_routes_add(out, (http_route){"DELETE", "/csp/v1/collections/{id}", on_delete, u, false});
    http_routes_add(out, (http_route){"GET", "/csp/v1/collections", on_list, u, false});
}

bool collections_init(ucdn *u)
{
    snprintf(u->key_collections, sizeof u->key_collections, "cdni:%s:{mi}:collections", u->cdn_id);
    snprintf(u->channel_collections, sizeof u->channel_collections, "cdni:%s:collections:changed", u->cdn_id);
    snapshot_init(&u->collections, set_free);
    u->mf_cache = calloc(1, sizeof *u->mf_cache);
    if (!u->mf_cache)
        return false;
    pthread_mutex_init(&u->mf_cache->mu, NULL);
    u->m_manifests = metrics_series(u->metrics, "cdni_manifests_served_total", "", "counter",
                                    "top-level manifests served rewritten toward a dCDN");
    return true;
}

void collections_free(ucdn *u)
{
    snapshot_destroy(&u->collections);
    mc_free(u->mf_cache);
}
