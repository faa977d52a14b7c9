/* ucdn peering: what each dCDN advertises (RFC 8008 FCI) and how it is.
 *
 * Peer listener (each dCDN authenticates with its own bearer token, which
 * also says who it is):
 *   PUT  /fci/v1/capabilities   the dCDN's whole advertisement; replaces the
 *                               previous one only if it is valid
 *   GET  /fci/v1/capabilities   what we hold for the calling dCDN
 *   POST /fci/v1/heartbeat      {"load": 0.0..} liveness and load
 * Operator listener:
 *   GET  /v1/peers              every peer's state as this instance sees it
 *   POST /v1/peers/{id}/pull    fetch the advertisement from the peer's fci_url
 *
 * Everything is stored in Redis (hashes cdni:<cdn>:{peers}:fci and :hb) and
 * announced on cdni:<cdn>:peers:changed, so every ucdn instance rebuilds the
 * same routing snapshot. A heartbeat message carries its values, so
 * instances update liveness without reading Redis. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/ticker.h"
#include "common/http_client.h"
#include "common/log.h"
#include "ucdn/ucdn.h"

route_peer *peer_by_id(ucdn *u, const char *id, size_t *idx)
{
    for (size_t i = 0; id && i < u->n_peers; i++)
        if (strcmp(u->peers[i].id, id) == 0) {
            if (idx)
                *idx = i;
            return &u->peers[i];
        }
    return NULL;
}

/* Parse, apply our limits, return the canonical text (malloc'd) or NULL
 * with *e filled. */
static char *validate_fci(const char *body, size_t len, jerr *e)
{
    fci_set *s = fci_parse(body, len, e);
    if (!s)
        return NULL;
    if (s->n > ROUTE_MAX_CAPS_PER_PEER) {
        jfail(e, "$.capabilities", "at most %d capability objects", ROUTE_MAX_CAPS_PER_PEER);
        fci_free(s);
        return NULL;
    }
    json_t *j = fci_to_json(s);
    char *txt = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    fci_free(s);
    return txt;
}

/* Stored where a failover keeps it (redis.min_replicas_acked), else false:
 * the peer is answered 503 and sends it again. */
static bool store_fci(ucdn *u, const char *id, const char *txt)
{
    bool durable;
    store_reply *r = store_cmd_durable(u->store, &durable, "HSET %s %s %s", u->key_fci, id, txt);
    if (!r)
        return false;
    bool ok = !store_reply_is(r, STORE_ERR);
    store_reply_free(r);
    if (!ok)
        return false;
    char msg[200];
    snprintf(msg, sizeof msg, "fci %s", id);
    r = store_cmd(u->store, "PUBLISH %s %s", u->peer_channel, msg);
    store_reply_free(r);
    metric_add(u->m_fci_updates, 1);
    return durable;
}

static void redis_down(http_req *r)
{
    http_add_header(r, "Retry-After", "5");
    http_reply_problem(r, 503, "Service Unavailable", "the uCDN's store is unreachable, or has not the change on its replicas yet; retry", NULL);
}

static void fci_put(http_req *r, void *ctx)
{
    ucdn *u = ctx;
    const char *id = http_identity(r);
    size_t len;
    const char *body = http_body(r, &len);
    jerr e = {0};
    char *txt = validate_fci(body, len, &e);
    if (!txt) {
        http_reply_invalid(r, 400, "Invalid FCI advertisement", &e);
        return;
    }
    if (!store_fci(u, id, txt)) {
        free(txt);
        redis_down(r);
        return;
    }
    log_kv(LOG_INFO, "FCI advertisement stored", "peer", id, NULL);
    free(txt);
    http_reply(r, 204, NULL, NULL, 0);
}

static void fci_get(http_req *r, void *ctx)
{
    ucdn *u = ctx;
    store_reply *rep = store_cmd(u->store, "HGET %s %s", u->key_fci, http_identity(r));
    if (!rep) {
        redis_down(r);
        return;
    }
    size_t len;
    const char *text = store_reply_is(rep, STORE_STR) ? store_reply_str(rep, &len) : NULL;
    if (!text)
        http_reply_problem(r, 404, "Not Found", "no advertisement from this dCDN yet", NULL);
    else
        http_reply(r, 200, FCI_MEDIA_TYPE, text, len);
    store_reply_free(rep);
}

static void heartbeat(http_req *r, void *ctx)
{
    ucdn *u = ctx;
    const char *id = http_identity(r);
    size_t len;
    const char *body = http_body(r, &len);
    jerr e = {0};
    json_t *v = len ? jparse(body, len, 4096, &e) : json_object();
    json_t *load = v ? json_object_get(v, "load") : NULL;
    if (!v || !json_is_object(v) || (load && (!json_is_number(load) || json_number_value(load) < 0 ||
                                              json_number_value(load) > 1000))) {
        if (v)
            jfail(&e, "$.load", "expected a number from 0 (idle) up; 1.0 is full capacity");
        http_reply_invalid(r, 400, "Invalid heartbeat", &e);
        json_decref(v);
        return;
    }
    unsigned milli = load ? (unsigned)(json_number_value(load) * 1000.0 + 0.5) : 0;
    json_decref(v);
    long long ts = wall_ms();
    char val[96];
    snprintf(val, sizeof val, "{\"ts\":%lld,\"load_milli\":%u}", ts, milli);
    store_reply *rep = store_cmd(u->store, "HSET %s %s %s", u->key_hb, id, val);
    if (!rep) {
        redis_down(r);
        return;
    }
    store_reply_free(rep);
    char msg[200];
    snprintf(msg, sizeof msg, "hb %s %lld %u", id, ts, milli);
    rep = store_cmd(u->store, "PUBLISH %s %s", u->peer_channel, msg);
    store_reply_free(rep);
    metric_add(u->m_heartbeats, 1);
    char hdr[32];
    snprintf(hdr, sizeof hdr, "%lld", u->rt.hb_timeout_ms / 3000 > 0 ? u->rt.hb_timeout_ms / 3000 : 1);
    http_add_header(r, "X-Heartbeat-Interval", hdr); /* what we expect: a third of the timeout */
    /* A store that came back empty (or from an older copy) lost the peer's
     * advertisement: say so, and the peer advertises again at once. */
    rep = store_cmd(u->store, "HEXISTS %s %s", u->key_fci, id);
    bool missing = rep && store_reply_is(rep, STORE_INT) && store_reply_int(rep) == 0;
    store_reply_free(rep);
    if (missing) {
        log_kv(LOG_WARN, "a peer's heartbeat, and no advertisement of it in the store: asking for it", "peer", id,
               NULL);
        http_reply_json(r, 200, NULL, json_pack("{s:s}", "advertisement", "missing"));
        return;
    }
    http_reply(r, 204, NULL, NULL, 0);
}

void peering_routes(ucdn *u, http_routes *out)
{
    http_routes_add(out, (http_route){"PUT", "/fci/v1/capabilities", fci_put, u, false});
    http_routes_add(out, (http_route){"GET", "/fci/v1/capabilities", fci_get, u, false});
    http_routes_add(out, (http_route){"POST", "/fci/v1/heartbeat", heartbeat, u, false});
}

/* --- operator ----------------------------------------------------------- */

/* "type value" for each footprint of a capability's "footprints" (unions
 * flattened), once each, at most max. */
static void footprint_texts(json_t *fps, json_t *out, size_t max)
{
    size_t i;
    json_t *fp;
    json_array_foreach(fps, i, fp)
    {
        const char *type = json_string_value(json_object_get(fp, "footprint-type"));
        json_t *vals = json_object_get(fp, "footprint-value");
        if (!type || !json_is_array(vals))
            continue;
        if (strcmp(type, "footprintunion") == 0) {
            footprint_texts(vals, out, max);
            continue;
        }
        size_t j;
        json_t *v;
        json_array_foreach(vals, j, v)
        {
            char t[300];
            if (!json_is_string(v) || json_array_size(out) >= max)
                continue;
            snprintf(t, sizeof t, "%s %s", type, json_string_value(v));
            bool seen = false;
            size_t k;
            json_t *x;
            json_array_foreach(out, k, x) seen |= strcmp(json_string_value(x), t) == 0;
            if (!seen)
                json_array_append_new(out, json_string(t));
        }
    }
}

json_t *peering_peers(ucdn *u)
{
    snap_ref *ref;
    route_snap *s = snapshot_acquire(&u->routing, &ref);
    long long now = wall_ms();
    json_t *a = json_array();
    for (size_t i = 0; i < u->n_peers; i++) {
        route_peer *p = &u->peers[i];
        long long hb = atomic_load(&p->last_hb_ms);
        bool avail = hb && now - hb <= u->rt.hb_timeout_ms;
        json_t *o = json_pack("{s:s, s:b, s:b, s:f, s:I, s:I}", "id", p->id, "enabled", p->enabled,
                              "available", avail, "load", atomic_load(&p->load_milli) / 1000.0,
                              "priority", (json_int_t)p->priority, "weight", (json_int_t)p->weight);
        if (hb)
            json_object_set_new(o, "last_heartbeat_age_ms", json_integer(now - hb));
        const fci_set *fs = s ? s->fci[i] : NULL;
        json_object_set_new(o, "capabilities", json_integer(fs ? (json_int_t)fs->n : 0));
        json_object_set_new(o, "prefixes", json_integer(fs ? (json_int_t)fci_prefix_count(fs) : 0));
        json_t *fps = json_array();
        json_t *doc = fs ? fci_to_json(fs) : NULL;
        size_t c;
        json_t *cap;
        json_array_foreach(json_object_get(doc, "capabilities"), c, cap)
            footprint_texts(json_object_get(cap, "footprints"), fps, 50);
        json_decref(doc);
        json_object_set_new(o, "footprints", fps);
        if (atomic_load(&p->ri_down_until_ms) > now)
            json_object_set_new(o, "ri_suspended_ms", json_integer(atomic_load(&p->ri_down_until_ms) - now));
        json_array_append_new(a, o);
    }
    snapshot_release(&u->routing, ref);
    return a;
}

static void peers_list(http_req *r, void *ctx)
{
    http_reply_json(r, 200, NULL, json_pack("{s:o}", "peers", peering_peers(ctx)));
}

/* Fetches p's advertisement from its fci_url and stores it: 0, or the
 * HTTP status to answer with (502 the peer, 503 the store) and why. */
static int pull_peer(ucdn *u, route_peer *p, char *why, size_t cap)
{
    http_client_conf cc = {.timeout_ms = 10000, .max_body = FCI_MAX_DOC, .egress = u->egress, .tls = &p->tls};
    http_client *c = http_client_new(&cc);
    char auth[512];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", p->ri_token);
    const char *hdrs[] = {auth, "Accept: " FCI_MEDIA_TYPE, NULL};
    http_result res = {0};
    int rc = http_client_do(c, "GET", p->fci_url, hdrs, NULL, 0, &res);
    http_client_free(c);
    if (rc != 0 || res.status != 200) {
        snprintf(why, cap, "%s answered %ld%s%s", p->fci_url, res.status, rc ? ": " : "", rc ? res.error : "");
        http_result_free(&res);
        return 502;
    }
    jerr e = {0};
    char *txt = validate_fci(res.body, res.body_len, &e);
    http_result_free(&res);
    if (!txt) {
        snprintf(why, cap, "the peer's advertisement is invalid at %s: %s", e.path, e.reason);
        return 502;
    }
    bool ok = store_fci(u, p->id, txt);
    free(txt);
    if (!ok) {
        snprintf(why, cap, "the uCDN's store is unreachable, or has not the change on its replicas yet");
        return 503;
    }
    return 0;
}

static void peer_pull(http_req *r, void *ctx)
{
    ucdn *u = ctx;
    route_peer *p = peer_by_id(u, http_param(r, 0), NULL);
    if (!p) {
        http_reply_problem(r, 404, "Not Found", "no such peer", NULL);
        return;
    }
    if (!p->fci_url) {
        http_reply_problem(r, 409, "Conflict", "this peer has no fci_url configured", NULL);
        return;
    }
    char why[1400];
    int st = pull_peer(u, p, why, sizeof why);
    if (st == 503)
        redis_down(r);
    else if (st)
        http_reply_problem(r, 502, "Bad Gateway", why, NULL);
    else
        http_reply_json(r, 200, NULL, json_pack("{s:s, s:s}", "peer", p->id, "result", "stored"));
}

void peering_op_routes(ucdn *u, http_routes *out)
{
    http_routes_add(out, (http_route){"GET", "/v1/peers", peers_list, u, false});
    http_routes_add(out, (http_route){"POST", "/v1/peers/{id}/pull", peer_pull, u, false});
}

/* --- snapshot ------------------------------------------------------------ */

static void apply_hb(route_peer *p, long long ts, unsigned milli)
{
    long long cur = atomic_load(&p->last_hb_ms);
    if (ts > cur)
        atomic_store(&p->last_hb_ms, ts);
    atomic_store(&p->load_milli, milli);
}

bool peering_reload(ucdn *u)
{
    store_reply *f = store_cmd(u->store, "HGETALL %s", u->key_fci);
    store_reply *h = f ? store_cmd(u->store, "HGETALL %s", u->key_hb) : NULL;
    if (!f || !h || !store_reply_is(f, STORE_ARRAY) || !store_reply_is(h, STORE_ARRAY)) {
        store_reply_free(f);
        if (h)
            store_reply_free(h);
        return false;
    }
    fci_set **sets = calloc(u->n_peers ? u->n_peers : 1, sizeof *sets);
    for (size_t i = 0; i + 1 < store_reply_count(f); i += 2) {
        size_t idx;
        if (!peer_by_id(u, store_reply_at_str(f, i, NULL), &idx))
            continue; /* a peer no longer configured */
        jerr e = {0};
        size_t len;
        const char *text = store_reply_at_str(f, i + 1, &len);
        fci_set *s = text ? fci_parse(text, len, &e) : NULL;
        if (!s)
            log_kv(LOG_WARN, "stored FCI advertisement unreadable; peer ignored", "peer",
                   store_reply_at_str(f, i, NULL), "path", e.path, "reason", e.reason, NULL);
        sets[idx] = s;
    }
    for (size_t i = 0; i + 1 < store_reply_count(h); i += 2) {
        route_peer *p = peer_by_id(u, store_reply_at_str(h, i, NULL), NULL);
        long long ts = 0;
        unsigned milli = 0;
        if (p && sscanf(store_reply_at_str(h, i + 1, NULL), "{\"ts\":%lld,\"load_milli\":%u}", &ts, &milli) == 2)
            apply_hb(p, ts, milli);
    }
    store_reply_free(f);
    store_reply_free(h);
    route_snap *s = route_snap_build(u->peers, u->n_peers, sets);
    if (!s) {
        log_kv(LOG_ERROR, "routing snapshot build failed; keeping the previous one", NULL);
        return false;
    }
    snapshot_publish(&u->routing, s);
    metric_add(u->m_routing_rebuilds, 1);
    return true;
}

void peering_on_message(const char *msg, void *ud)
{
    ucdn *u = ud;
    char id[128];
    long long ts;
    unsigned milli;
    if (msg && sscanf(msg, "hb %127s %lld %u", id, &ts, &milli) == 3) {
        route_peer *p = peer_by_id(u, id, NULL);
        if (p)
            apply_hb(p, ts, milli);
        return;
    }
    if (!peering_reload(u))
        log_kv(LOG_WARN, "routing reload failed; serving the previous snapshot", NULL);
}

/* --- peers with nothing stored ------------------------------------------ *
 * A configured peer whose advertisement is not in the store (the store came
 * back empty or from an older copy, or this uCDN is newer than the peer's
 * last advertisement) would be routed around until the peer advertises
 * again. Every 2 s the store is asked which peers it has; a peer with an
 * fci_url that it lacks is pulled at once, and again every 5 s while that
 * fails. Storing it publishes, and every instance reloads. */
static void pull_missing(ticker *t, void *ud)
{
    ucdn *u = ud;
    store_reply *r = store_cmd(u->store, "HKEYS %s", u->key_fci);
    if (!r || !store_reply_is(r, STORE_ARRAY)) {
        store_reply_free(r);
        return;
    }
    long long now = wall_ms();
    for (size_t i = 0; i < u->n_peers && !ticker_stopping(t); i++) {
        route_peer *p = &u->peers[i];
        if (!p->enabled || !p->fci_url || now - atomic_load(&p->auto_pull_ms) < 5000)
            continue;
        bool have = false;
        for (size_t k = 0; k < store_reply_count(r) && !have; k++)
            have = store_reply_is(store_reply_at(r, k), STORE_STR) && strcmp(store_reply_at_str(r, k, NULL), p->id) == 0;
        if (have)
            continue;
        atomic_store(&p->auto_pull_ms, now);
        char why[1400];
        int st = pull_peer(u, p, why, sizeof why);
        log_kv(st ? LOG_WARN : LOG_INFO,
               st ? "no advertisement of a peer stored, and pulling it failed"
                  : "no advertisement of a peer stored: pulled it from the peer",
               "peer", p->id, "detail", st ? why : p->fci_url, NULL);
    }
    store_reply_free(r);
}

bool peering_start(ucdn *u)
{
    bool any = false;
    for (size_t i = 0; i < u->n_peers; i++)
        any |= u->peers[i].fci_url != NULL;
    return !any || (u->peer_tick = ticker_start(pull_missing, u, 2000)) != NULL;
}

void peering_stop(ucdn *u)
{
    ticker_stop(u->peer_tick);
    u->peer_tick = NULL;
}
