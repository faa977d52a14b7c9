/* dcdn router role: surrogate selection, the RI server (RFC 7975), end-user
 * redirects, and the peering thread (FCI advertisement and heartbeats to
 * each uCDN, surrogate registry refresh).
 *
 * Surrogate selection follows coverage-zone rules: the most specific zone
 * prefix covering the client that has a usable surrogate wins; within it,
 * the lowest metric; among equal metrics, round-robin (or rendezvous hashing
 * of the URI with router.uri_hashing). A surrogate is usable while its last
 * heartbeat is younger than surrogate_dead_after_s and its load is at most
 * surrogate_max_load. A zone 0.0.0.0/0 (and ::/0) is the catch-all; with no
 * usable surrogate anywhere, router.last_resort, else a refusal.
 *
 * Surrogates register and heartbeat through Redis: hash
 * cdni:<cdn>:{surrogates}, id -> {"url","load_milli","ts"}; a dcdn with a
 * "surrogate" section registers itself, others (existing caches) use
 * PUT /v1/surrogates/{id} on the operator listener. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/hash.h"
#include "common/clock.h"
#include "common/http_client.h"
#include "common/log.h"
#include "common/url.h"
#include "dcdn/dcdn.h"
#include "interfaces/fci.h"
#include "interfaces/mi_server.h"
#include "interfaces/redirection.h"
#include "manifest/manifest.h"
#include "signing/manifest_tokens.h"
#include "signing/authorize.h"


static void set_free(void *p)
{
    surrogate_set *s = p;
    if (s)
        free(s->s);
    free(s);
}

/* --- selection ------------------------------------------------------------- */

#define MAX_EQUALS 64

/* The chosen surrogate's URL copied into out; false when none is usable. */
static bool pick_surrogate(dcdn *d, const ipt_addr *client, const char *target, bool https, char *out,
                           size_t cap, char *id_out, size_t id_cap)
{
    if (!d->zone_table)
        return false;
    snap_ref *ref;
    const surrogate_set *set = snapshot_acquire(&d->surrogates, &ref);
    long long now = wall_ms();
    bool found = false;
    uint32_t e = ipt_lookup(d->zone_table, client);
    while (e != IPT_NONE && set && !found) {
        const ipt_entry *lvl = ipt_entry_at(d->zone_table, e);
        const surrogate_info *eq[MAX_EQUALS];
        size_t neq = 0;
        long long best = -1;
        /* all rules of this one prefix (identical prefixes chain together) */
        while (e != IPT_NONE) {
            const ipt_entry *x = ipt_entry_at(d->zone_table, e);
            if (x->len != lvl->len || memcmp(x->addr.bytes, lvl->addr.bytes, 16) != 0)
                break;
            const cz_rule *z = &d->zones[x->value];
            for (size_t i = 0; i < set->n; i++) {
                const surrogate_info *s = &set->s[i];
                if (strcmp(s->id, z->surrogate) != 0)
                    continue;
                if (now - s->ts_ms > d->surrogate_dead_ms ||
                    s->load_milli > (uint32_t)(d->surrogate_max_load * 1000.0) || (https && !s->https_url[0]))
                    break; /* a client that came over https is sent to an https surrogate only */
                if (best < 0 || z->metric < best) {
                    best = z->metric;
                    neq = 0;
                }
                if (z->metric == best && neq < MAX_EQUALS)
                    eq[neq++] = s;
                break;
            }
            e = x->parent;
        }
        if (neq) {
            size_t k;
            if (d->uri_hashing) {
                uint64_t uh = hash_fnv1a64(target, strcspn(target, "?")), top = 0;
                k = 0;
                for (size_t i = 0; i < neq; i++) {
                    uint64_t sc = (uh ^ hash_fnv1a64(eq[i]->id, strlen(eq[i]->id))) * 0x9e3779b97f4a7c15ull;
                    sc ^= sc >> 31;
                    if (i == 0 || sc > top) {
                        top = sc;
                        k = i;
                    }
                }
            } else {
                k = atomic_fetch_add(&d->rr, 1) % neq;
            }
            snprintf(out, cap, "%s", https ? eq[k]->https_url : eq[k]->url);
            snprintf(id_out, id_cap, "%s", eq[k]->id);
            found = true;
        }
    }
    snapshot_release(&d->surrogates, ref);
    return found;
}

/* Location for target: surrogate (or last resort) base + target. */
static bool location_for(dcdn *d, const ipt_addr *client, const char *target, bool https, char *out,
                         size_t cap, char *sid, size_t sid_cap)
{
    char base[520];
    if (!pick_surrogate(d, client, target, https, base, sizeof base, sid, sid_cap)) {
        if (!d->last_resort || https != (strncmp(d->last_resort, "https://", 8) == 0)) {
            metric_add(d->m_no_surrogate, 1);
            return false;
        }
        metric_add(d->m_last_resort, 1);
        snprintf(base, sizeof base, "%s", d->last_resort);
        snprintf(sid, sid_cap, "last-resort");
    }
    return url_join(base, target, out, cap);
}

double router_load(dcdn *d)
{
    snap_ref *ref;
    const surrogate_set *set = snapshot_acquire(&d->surrogates, &ref);
    long long now = wall_ms();
    double sum = 0;
    size_t n = 0;
    for (size_t i = 0; set && i < set->n; i++)
        if (now - set->s[i].ts_ms <= d->surrogate_dead_ms) {
            sum += set->s[i].load_milli / 1000.0;
            n++;
        }
    snapshot_release(&d->surrogates, ref);
    return n ? sum / (double)n : 0;
}

/* --- RI server (peer listener) ---------------------------------------------- */

static void ri_fail(http_req *r, int status, int code, const char *reason)
{
    json_t *e = ri_error(code, reason);
    char *s = json_dumps(e, JSON_COMPACT);
    json_decref(e);
    http_reply_take(r, status, RI_MEDIA_ERROR, s, strlen(s));
}

static void ri_redirect(http_req *r, void *ctx)
{
    dcdn *d = ctx;
    size_t len;
    const char *body = http_body(r, &len);
    ri_request q;
    jerr e;
    if (!ri_request_parse(body, len, &q, &e)) {
        char why[JPATH_MAX + 300];
        snprintf(why, sizeof why, "%s: %s", e.path, e.reason);
        metric_add(d->m_ri_err, 1);
        ri_fail(r, 400, RI_ERR_BAD_REQUEST, why);
        return;
    }
    const char *why = NULL;
    if (!ri_loop_ok(&q, d->cdn_id, &why)) {
        metric_add(d->m_ri_err, 1);
        ri_fail(r, 409, RI_ERR_LOOP, why);
        ri_request_free(&q);
        return;
    }
    ipt_addr client;
    const char *cip = q.iface == RI_HTTP ? q.c_ip : (q.c_subnet ? q.c_subnet : q.resolver_ip);
    size_t cl = strcspn(cip, "/");
    if (!ipt_parse_addr(cip, cl, &client)) {
        metric_add(d->m_ri_err, 1);
        ri_fail(r, 400, RI_ERR_BAD_REQUEST, q.iface == RI_HTTP ? "$.c-ip: not an IP address"
                                                                 : "$.c-subnet: not an address");
        ri_request_free(&q);
        return;
    }
    char loc[URL_MAX_LEN + 600], sid[sizeof ((surrogate_info *)0)->id];
    char hp[URL_MAX_LEN + 300] = "/";
    if (q.iface == RI_HTTP && !ri_host_path(q.host, q.url, hp, sizeof hp)) {
        metric_add(d->m_ri_err, 1);
        ri_fail(r, 400, RI_ERR_BAD_REQUEST, "$.host: not a host name");
        ri_request_free(&q);
        return;
    }
    if (!location_for(d, &client, hp, q.scheme && strcmp(q.scheme, "https") == 0, loc, sizeof loc, sid, sizeof sid)) {
        metric_add(d->m_ri_err, 1);
        ri_fail(r, 503, RI_ERR_UNAVAILABLE, "no surrogate available for this client");
        ri_request_free(&q);
        return;
    }
    json_t *resp;
    if (q.iface == RI_HTTP) {
        resp = ri_http_response(302, loc);
    } else {
        url_ref u;
        char host[256] = "";
        if (url_parse(loc, strlen(loc), &u) == URL_OK && u.host.len < sizeof host)
            snprintf(host, sizeof host, "%.*s", (int)u.host.len, loc + u.host.off);
        resp = ri_dns_response(q.qname, "CNAME", host, d->ri_max_age_s);
    }
    char cc[48];
    snprintf(cc, sizeof cc, "max-age=%d", d->ri_max_age_s);
    http_add_header(r, "Cache-Control", cc);
    http_add_header(r, "X-Surrogate", sid);
    metric_add(d->m_ri_ok, 1);
    ri_request_free(&q);
    http_reply_json(r, 200, RI_MEDIA_RESPONSE, resp);
}

static void fci_get(http_req *r, void *ctx)
{
    dcdn *d = ctx;
    if (!d->capabilities) {
        http_reply_problem(r, 404, "Not Found", "this dCDN has no capabilities configured", NULL);
        return;
    }
    http_reply_json(r, 200, FCI_MEDIA_TYPE, json_incref(d->capabilities));
}

void router_peer_routes(dcdn *d, http_routes *out)
{
    http_routes_add(out, (http_route){"POST", "/ri/v1/redirect", ri_redirect, d, false});
    http_routes_add(out, (http_route){"GET", "/fci/v1/capabilities", fci_get, d, false});
}

/* --- end users (HTTP-I) ---------------------------------------------------- */

static bool is_manifest(const char *target)
{
    return mf_kind_of_path(target, strcspn(target, "?")) != MF_UNKNOWN;
}

/* The authorize phase (signing/authorize.h) on the end user's request: the
 * metadata decides; the upstream's keys are trusted and its session
 * cookies are its own. On success with a token, target loses the token. */
static authz_verdict authorize(dcdn *d, http_req *r, const http_canon *c, upstream *up, const dcdn_content *ct,
                               const mi_resolution *res, const char *client_ip, char *target, size_t cap,
                               hop_result *hr, const char **why)
{
    us_trust trust = {NULL, &up->us_keys, false};
    authz_request q = {.scheme = http_is_tls(r) ? "https" : "http",
                       .host = c->host,
                       .target = target,
                       .cookie = http_header(r, "Cookie"),
                       .client_ip = client_ip,
                       .now = wall_ms() / 1000,
                       .tenant = up->id,
                       .content_host = ct->host};
    authz_verdict v = authz_check(&d->us, &trust, up->us_keys.n ? 1 : 0, res, &q, hr, why);
    if (v == AUTHZ_ALLOWED && hr->target) {
        if (strlen(hr->target) >= cap)
            return AUTHZ_UNSIGNED;
        strcpy(target, hr->target);
    }
    return v;
}

/* --- two-step manifest rewriting (RFC 6983 option 3.3) ------------------------ */

/* A manifest whose metadata asks for the two-step rewrite
 * (CDNIGW.HASManifest "rewrite": "two-step"): fetched from the content's
 * source (MI.SourceMetadata), its URIs made absolute on the surrogate
 * chosen for this client, and answered here. false: not such a request. */
static bool two_step(dcdn *d, http_req *r, const upstream *up, const mi_resolution *res, const ipt_addr *client,
                     const char *host, const char *target, const hop_result *hr)
{
    json_t *has = mi_effective_value(res, "CDNIGW.HASManifest");
    const char *mode = json_string_value(json_object_get(has, "rewrite"));
    if (!mode || strcmp(mode, "two-step") != 0 || !is_manifest(target))
        return false;
    json_t *src = json_array_get(json_object_get(mi_effective_value(res, "MI.SourceMetadata"), "sources"), 0);
    const char *ep = json_string_value(json_array_get(json_object_get(src, "endpoints"), 0));
    const char *proto = json_string_value(json_object_get(src, "protocol"));
    char surl[URL_MAX_LEN + 300], base[URL_MAX_LEN + 300], sbase[800], sid[sizeof ((surrogate_info *)0)->id];
    if (!ep || strlen(ep) > 255) {
        http_reply_problem(r, 502, "Bad Gateway", "the content has no source to fetch the manifest from", NULL);
        return true;
    }
    bool tls = proto && strncmp(proto, "https", 5) == 0;
    snprintf(surl, sizeof surl, "%s://%s%s", tls ? "https" : "http", ep, target);
    snprintf(base, sizeof base, "%s://%s%s", http_is_tls(r) ? "https" : "http", host, target);
    if (!pick_surrogate(d, client, target, http_is_tls(r), sbase, sizeof sbase, sid, sizeof sid)) {
        http_add_header(r, "Retry-After", "10");
        http_reply_problem(r, 503, "Service Unavailable", "no surrogate available for this client", NULL);
        return true;
    }
    /* the surrogate's scheme and authority */
    url_ref sr;
    if (url_parse(sbase, strlen(sbase), &sr) == URL_OK && sr.path.off < strlen(sbase))
        sbase[sr.path.off] = 0;
    /* and the content's host as the first path segment (ri_host_path) */
    size_t sl0 = strlen(sbase);
    snprintf(sbase + sl0, sizeof sbase - sl0, "/%s", host);
    http_result res2 = {0};
    static http_client_slot source_clients = HTTP_CLIENT_SLOT_INIT;
    http_client_conf cc = {.connect_timeout_ms = 2000, .timeout_ms = 3000, .retries = 0,
                           .max_body = MANIFEST_MAX_BYTES};
    http_client *hc = http_client_per_thread(&source_clients, &cc);
    http_client_use_egress(hc, dcdn_source_egress(d, up)); /* the sources this upstream may name */
    int rc = http_client_do(hc, "GET", surl, NULL, NULL, 0, &res2);
    if (rc != 0 || res2.status != 200 || !res2.body) {
        log_kv(LOG_WARN, "two-step rewrite: source unavailable", "url", surl, "reason",
               rc ? res2.error : "non-200 answer", NULL);
        http_result_free(&res2);
        http_reply_problem(r, 504, "Gateway Timeout", "the manifest cannot be fetched from the source", NULL);
        return true;
    }
    char eph[256];
    snprintf(eph, sizeof eph, "%.*s", (int)strcspn(ep, ":"), ep);
    char hh[256];
    snprintf(hh, sizeof hh, "%.*s", (int)strcspn(host, ":"), host);
    const char *hosts[] = {hh, eph, NULL};
    /* with signing in force, every URI a token of ours for the surrogate */
    mt_rewrite q = {.conf = &d->us.conf, .hr = hr, .aud = d->cdn_id, .sign = hr->method != HOP_OPEN, .base = base,
                    .hosts = hosts, .target = sbase, .absolutize = true, .now = wall_ms() / 1000,
                    .max_bytes = MANIFEST_MAX_BYTES};
    buf out;
    mf_report rep = {0};
    bool ok = mt_rewrite_manifest(&q, res2.body, res2.body_len, &out, &rep);
    http_result_free(&res2);
    if (!ok) {
        log_kv(LOG_WARN, "two-step rewrite failed", "url", surl, "reason", rep.error ? rep.error : "signing", NULL);
        buf_free(&out);
        http_reply_problem(r, 502, "Bad Gateway", "the manifest cannot be served rewritten", NULL);
        return true;
    }
    size_t ol;
    char *body = buf_take(&out, &ol);
    metric_add(d->m_two_step, 1);
    http_add_header(r, "Cache-Control", json_is_true(json_object_get(has, "live")) ? "private, max-age=1"
                                                                                 : "private, max-age=30");
    http_add_header(r, "X-Surrogate", sid);
    for (int c = 0; c < 2; c++)
        if (hr->set_cookie[c])
            http_add_header(r, "Set-Cookie", hr->set_cookie[c]);
    http_reply_take(r, 200, rep.kind == MF_DASH ? "application/dash+xml" : "application/vnd.apple.mpegurl", body, ol);
    return true;
}

static void deliver(http_req *r, void *ctx)
{
    dcdn *d = ctx;
    ipt_addr client;
    bool v6 = false;
    bool known = http_peer_addr(r, client.bytes, &v6);
    client.v6 = v6;
    char loc[URL_MAX_LEN + 900], sid[sizeof ((surrogate_info *)0)->id];
    static __thread http_canon tl_canon; /* the one form every step below sees */
    http_canon *c = &tl_canon;
    const char *why;
    int bad = http_canon_request(r, c, &why);
    if (bad) {
        http_reply_problem(r, bad, bad == 414 ? "URI Too Long" : "Bad Request", why, NULL);
        return;
    }
    char *target = c->target; /* loses its token once authorized */
    hop_result hr = {.allowed = true};
    char cip[INET6_ADDRSTRLEN] = "";
    if (known)
        inet_ntop(v6 ? AF_INET6 : AF_INET, client.bytes, cip, sizeof cip);
    snap_ref *ref = NULL;
    mi_resolution res;
    dcdn_content ct;
    const char *hosth = c->host;
    upstream *up = known ? dcdn_resolve_request(d, hosth, target, &ct, &res, &ref) : NULL;
    bool done = false;
    authz_verdict av = up ? authorize(d, r, c, up, &ct, &res, cip, target, sizeof c->target, &hr, &why) : AUTHZ_ALLOWED;
    if (av != AUTHZ_ALLOWED) {
        http_reply_problem(r, 403, "Forbidden", why, NULL);
        done = true;
    }
    /* the content's path (the token is gone from target by now) */
    const char *ctarget = up ? dcdn_content_path(&ct, target) : target;
    if (up && d->logger) { /* a CDNI log record for the redirect (or manifest) we answer */
        delivery_record *rec = delivery_record_begin(d, r, d->delivery_conf.port);
        if (rec) {
            rec->upstream = (int)(up - d->ups);
            rec->redirect = true;
            rec->us_code = (int)hr.code;
            delivery_record_uris(rec, hr.target ? hr.target : target, ct.host, ctarget,
                                 hr.package[0] ? hr.package : US_DEFAULT_PACKAGE);
            const char *ccid = json_string_value(json_object_get(mi_effective_value(&res, "MI.Grouping"), "ccid"));
            snprintf(rec->ccid, sizeof rec->ccid, "%s", ccid ? ccid : "");
            delivery_session(d, rec, &hr);
        }
    }
    if (!done && up)
        done = two_step(d, r, up, &res, &client, ct.host, ctarget, &hr);
    if (up)
        snapshot_release(&up->snap, ref);
    if (done) {
        hop_result_free(&hr);
        return;
    }
    char hp[URL_MAX_LEN + 300];
    if (!known || !ri_host_path(up ? ct.host : hosth ? hosth : "", ctarget, hp, sizeof hp) ||
        !location_for(d, &client, hp, http_is_tls(r), loc, sizeof loc, sid, sizeof sid)) {
        hop_result_free(&hr);
        http_add_header(r, "Retry-After", "10");
        http_reply_problem(r, 503, "Service Unavailable", "no surrogate available for this client", NULL);
        return;
    }
    if (hr.method != HOP_OPEN) { /* our surrogates check our tokens */
        char *signed_loc = hop_next_location(&d->us.conf, NULL, 0, HOP_PROFILE_RFC9246, &hr, d->cdn_id, loc, wall_ms() / 1000);
        if (!signed_loc || strlen(signed_loc) >= sizeof loc) {
            free(signed_loc);
            hop_result_free(&hr);
            log_kv(LOG_ERROR, "cannot sign the redirect for the surrogate", "surrogate", sid, NULL);
            http_reply_problem(r, 500, "Internal Server Error", "the redirect cannot be signed", NULL);
            return;
        }
        strcpy(loc, signed_loc);
        free(signed_loc);
    }
    metric_add(d->m_redirects, 1);
    http_add_header(r, "Location", loc);
    http_add_header(r, "Cache-Control", "no-store");
    for (int k = 0; k < 2; k++)
        if (hr.set_cookie[k])
            http_add_header(r, "Set-Cookie", hr.set_cookie[k]);
    hop_result_free(&hr);
    http_reply(r, 302, NULL, NULL, 0);
}

void router_delivery_routes(dcdn *d, http_routes *out)
{
    http_routes_add(out, (http_route){"GET", "/*", deliver, d, true});
}

/* --- surrogate registry (operator) --------------------------------------- */

/* cs: the surrogate's own cache, for the status page (NULL: not told). */
static bool register_surrogate(dcdn *d, const char *id, const char *url, const char *https_url, unsigned milli,
                               const cache_stats *cs)
{
    json_t *v = json_pack("{s:s, s:I, s:I}", "url", url, "load_milli", (json_int_t)milli, "ts", (json_int_t)wall_ms());
    if (v && cs) {
        json_object_set_new(v, "cache_bytes", json_integer((json_int_t)cs->bytes));
        json_object_set_new(v, "cache_disk_bytes", json_integer((json_int_t)d->cache_conf.disk_bytes));
        json_object_set_new(v, "cache_objects", json_integer((json_int_t)cs->objects));
    }
    if (v && https_url)
        json_object_set_new(v, "https_url", json_string(https_url));
    char *val = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    store_reply *r = val ? store_cmd(d->store, "HSET %s %s %s", d->key_surrogates, id, val) : NULL;
    free(val);
    store_reply_free(r);
    return r != NULL;
}

static void surrogate_put(http_req *r, void *ctx)
{
    dcdn *d = ctx;
    const char *id = http_param(r, 0);
    size_t len;
    const char *body = http_body(r, &len);
    jerr e = {0};
    json_t *v = jparse(body, len, 4096, &e);
    const char *url = NULL, *hurl = NULL;
    json_t *load = v && json_is_object(v) ? json_object_get(v, "load") : NULL;
    bool ok = v && json_is_object(v) && jget_str(v, "url", "$", true, &url, &e) &&
              jget_str(v, "https_url", "$", false, &hurl, &e);
    if (ok && hurl && (strlen(hurl) > 500 || strncmp(hurl, "https://", 8) != 0 || strpbrk(hurl, "\"\\ ")))
        ok = jfail(&e, "$.https_url", "expected an https URL of at most 500 characters");
    if (ok && (strlen(url) > 500 || (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) ||
               strpbrk(url, "\"\\ ")))
        ok = jfail(&e, "$.url", "expected an http(s) URL of at most 500 characters");
    if (ok && load && (!json_is_number(load) || json_number_value(load) < 0 || json_number_value(load) > 1000))
        ok = jfail(&e, "$.load", "expected a number from 0 up (1.0 = full)");
    if (!mi_service_id_ok(id)) {
        http_reply_problem(r, 404, "Not Found", "surrogate ids are 1-64 of [A-Za-z0-9._-]", NULL);
    } else if (!ok) {
        http_reply_invalid(r, 400, "Invalid surrogate registration", &e);
    } else if (!register_surrogate(d, id, url, hurl, load ? (unsigned)(json_number_value(load) * 1000 + 0.5) : 0,
                                   NULL)) {
        http_reply_problem(r, 503, "Service Unavailable", "the store is unreachable", NULL);
    } else {
        http_reply(r, 204, NULL, NULL, 0);
    }
    json_decref(v);
}

json_t *router_surrogates(dcdn *d)
{
    snap_ref *ref;
    const surrogate_set *set = snapshot_acquire(&d->surrogates, &ref);
    long long now = wall_ms();
    json_t *a = json_array();
    for (size_t i = 0; set && i < set->n; i++) {
        const surrogate_info *s = &set->s[i];
        bool alive = now - s->ts_ms <= d->surrogate_dead_ms;
        json_t *o = json_pack("{s:s, s:s, s:s?, s:f, s:I, s:b, s:b}", "id", s->id, "url", s->url, "https_url",
                              s->https_url[0] ? s->https_url : NULL, "load",
                              s->load_milli / 1000.0, "heartbeat_age_ms", (json_int_t)(now - s->ts_ms), "alive", alive,
                              "overloaded", s->load_milli > (uint32_t)(d->surrogate_max_load * 1000));
        if (s->cache_bytes >= 0)
            json_object_set_new(o, "cache", json_pack("{s:I, s:I, s:I}", "bytes", (json_int_t)s->cache_bytes,
                                                      "disk_bytes", (json_int_t)s->cache_disk_bytes, "objects",
                                                      (json_int_t)s->cache_objects));
        json_array_append_new(a, o);
    }
    snapshot_release(&d->surrogates, ref);
    return a;
}

static void surrogate_list(http_req *r, void *ctx)
{
    http_reply_json(r, 200, NULL, json_pack("{s:o}", "surrogates", router_surrogates(ctx)));
}

void router_op_routes(dcdn *d, http_routes *out)
{
    http_routes_add(out, (http_route){"PUT", "/v1/surrogates/{id}", surrogate_put, d, false});
    http_routes_add(out, (http_route){"GET", "/v1/surrogates", surrogate_list, d, false});
}

/* --- peering thread ---------------------------------------------------------- */

static void refresh_surrogates(dcdn *d)
{
    store_reply *r = store_cmd(d->store, "HGETALL %s", d->key_surrogates);
    if (!r || !store_reply_is(r, STORE_ARRAY)) {
        store_reply_free(r);
        return; /* keep the last set: routing continues while Redis is away */
    }
    surrogate_set *s = calloc(1, sizeof *s);
    s->s = calloc(store_reply_count(r) / 2 + 1, sizeof *s->s);
    for (size_t i = 0; i + 1 < store_reply_count(r); i += 2) {
        surrogate_info *x = &s->s[s->n];
        json_t *v = store_reply_json(store_reply_at(r, i + 1));
        const char *url = json_string_value(json_object_get(v, "url"));
        if (url && strlen(store_reply_at_str(r, i, NULL)) < sizeof x->id && strlen(url) < sizeof x->url) {
            snprintf(x->id, sizeof x->id, "%s", store_reply_at_str(r, i, NULL));
            snprintf(x->url, sizeof x->url, "%s", url);
            const char *hu = json_string_value(json_object_get(v, "https_url"));
            snprintf(x->https_url, sizeof x->https_url, "%s", hu && strlen(hu) < sizeof x->https_url ? hu : "");
            url_ref u;
            char h[262];
            size_t hl = 0;
            x->host[0] = 0;
            if (url_parse(url, strlen(url), &u) == URL_OK && u.host.len &&
                url_canon_host(url + u.host.off, u.host.len, false, h, sizeof h, &hl) == URL_CANON_OK &&
                hl < sizeof x->host) {
                memcpy(x->host, h, hl);
                x->host[hl] = 0;
            }
            x->load_milli = (uint32_t)json_integer_value(json_object_get(v, "load_milli"));
            x->ts_ms = json_integer_value(json_object_get(v, "ts"));
            json_t *cb = json_object_get(v, "cache_bytes"), *cd = json_object_get(v, "cache_disk_bytes"),
                   *co = json_object_get(v, "cache_objects");
            x->cache_bytes = json_is_integer(cb) ? json_integer_value(cb) : -1;
            x->cache_disk_bytes = json_is_integer(cd) ? json_integer_value(cd) : -1;
            x->cache_objects = json_is_integer(co) ? json_integer_value(co) : -1;
            s->n++;
        }
        json_decref(v);
    }
    store_reply_free(r);
    snapshot_publish(&d->surrogates, s);
}

typedef struct {
    long long next_push, next_hb;
    bool pushed;
    int https; /* whether the last advertisement named https/1.1; -1: none sent */
} up_state;

/* Whether a live surrogate serves HTTPS. */
static bool https_surrogates(dcdn *d)
{
    snap_ref *ref;
    const surrogate_set *set = snapshot_acquire(&d->surrogates, &ref);
    long long now = wall_ms();
    bool any = false;
    for (size_t i = 0; set && i < set->n && !any; i++)
        any = set->s[i].https_url[0] && now - set->s[i].ts_ms <= d->surrogate_dead_ms;
    snapshot_release(&d->surrogates, ref);
    return any;
}

/* The configured advertisement, less https/1.1 while no surrogate serves
 * HTTPS: a uCDN must not send https clients where none can be served. */
static char *advertisement(dcdn *d, bool https)
{
    json_t *adv = json_deep_copy(d->capabilities);
    size_t i, j;
    json_t *c, *p;
    json_array_foreach(json_object_get(adv, "capabilities"), i, c) {
        const char *t = json_string_value(json_object_get(c, "capability-type"));
        json_t *list = json_object_get(json_object_get(c, "capability-value"), "delivery-protocols");
        if (!https && t && strcmp(t, "FCI.DeliveryProtocol") == 0 && json_is_array(list))
            json_array_foreach(list, j, p) if (json_string_value(p) && strcmp(json_string_value(p), "https/1.1") == 0) {
                json_array_remove(list, j);
                break;
            }
    }
    char *body = json_dumps(adv, JSON_COMPACT);
    json_decref(adv);
    return body;
}

/* One round of registration, advertisements and heartbeats; true when
 * one is due again at once (an upstream lost our advertisement). */
static bool peer_loop_once(dcdn *d, http_client *c, up_state *st, long long *next_self)
{
    bool again = false;
    long long now = wall_ms();
    if (d->self_id && now >= *next_self) {
        cache_stats cs;
        cache *own = atomic_load(&d->cache_open) ? d->cache : NULL;
        if (own) {
            cache_get_stats(own, &cs);
            cache_reindex(own, false); /* a Redis that lost the index gets it back */
        }
        if (!register_surrogate(d, d->self_id, d->self_url, d->self_https_url, 0, own ? &cs : NULL))
            log_kv(LOG_WARN, "surrogate self-registration failed (redis down?)", NULL);
        *next_self = now + (long long)d->self_heartbeat_s * 1000;
    }
    refresh_surrogates(d);
    bool https = https_surrogates(d);
    for (size_t i = 0; i < d->n_ups; i++) {
        upstream *u = &d->ups[i];
        if (!u->fci_url)
            continue;
        char url[1100], auth[600];
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", u->token);
        http_client_use_tls(c, &u->tls);
        if (st[i].pushed && st[i].https != (int)https)
            st[i].next_push = now; /* HTTPS surrogates came or went */
        if (d->capabilities && now >= st[i].next_push) {
            char *body = advertisement(d, https);
            const char *h[] = {auth, "Content-Type: " FCI_MEDIA_TYPE, NULL};
            http_result res = {0};
            url_join(u->fci_url, "/capabilities", url, sizeof url);
            int rc = http_client_do(c, "PUT", url, h, body, strlen(body), &res);
            free(body);
            bool ok = rc == 0 && res.status / 100 == 2;
            if (!ok)
                log_kv(LOG_WARN, "FCI advertisement not accepted; retrying", "upstream", u->id,
                       "detail", rc ? res.error : (res.body ? res.body : ""), NULL);
            else if (!st[i].pushed) {
                log_kv(LOG_INFO, "FCI advertisement accepted", "upstream", u->id, NULL);
                st[i].next_hb = now; /* announce liveness right away */
            }
            metric_add(ok ? d->m_fci_push_ok : d->m_fci_push_fail, 1);
            st[i].pushed = ok;
            st[i].https = ok ? (int)https : -1;
            /* re-advertise every 10 heartbeats, so a uCDN that lost its
             * state learns it again; retry failures soon */
            st[i].next_push = now + (ok ? 10LL * u->heartbeat_s * 1000 : 2000);
            http_result_free(&res);
        }
        if (now >= st[i].next_hb) {
            char body[64];
            snprintf(body, sizeof body, "{\"load\":%.3f}", router_load(d));
            const char *h[] = {auth, "Content-Type: application/json", NULL};
            http_result res = {0};
            url_join(u->fci_url, "/heartbeat", url, sizeof url);
            int rc = http_client_do(c, "POST", url, h, body, strlen(body), &res);
            bool ok = rc == 0 && res.status / 100 == 2;
            metric_add(ok ? d->m_hb_ok : d->m_hb_fail, 1);
            st[i].next_hb = now + (ok ? (long long)u->heartbeat_s * 1000 : 2000);
            /* the uCDN's store lost our advertisement (emptied, or restored
             * from an older copy): advertise again now, not in ten beats */
            json_t *hb = ok && res.status == 200 && res.body ? json_loads(res.body, 0, NULL) : NULL;
            const char *adv = json_string_value(json_object_get(hb, "advertisement"));
            if (adv && !strcmp(adv, "missing") && d->capabilities) {
                log_kv(LOG_WARN, "the uCDN has lost our advertisement; advertising again", "upstream", u->id, NULL);
                st[i].next_push = now;
                st[i].pushed = false;
                again = true;
            }
            json_decref(hb);
            http_result_free(&res);
        }
    }
    return again;
}

static void *peer_thread(void *arg)
{
    dcdn *d = arg;
    http_client_conf cc = {.timeout_ms = 5000, .retries = 0, .egress = d->egress};
    http_client *c = http_client_new(&cc);
    up_state *st = calloc(d->n_ups ? d->n_ups : 1, sizeof *st);
    long long next_self = 0;
    pthread_mutex_lock(&d->peer_mu);
    while (!d->peer_stop) {
        pthread_mutex_unlock(&d->peer_mu);
        bool again = peer_loop_once(d, c, st, &next_self);
        pthread_mutex_lock(&d->peer_mu);
        if (again)
            continue;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        if (!d->peer_stop)
            pthread_cond_timedwait(&d->peer_cv, &d->peer_mu, &ts);
    }
    pthread_mutex_unlock(&d->peer_mu);
    free(st);
    http_client_free(c);
    return NULL;
}

bool router_start(dcdn *d)
{
    snprintf(d->key_surrogates, sizeof d->key_surrogates, "cdni:%s:{surrogates}", d->cdn_id);
    snapshot_init(&d->surrogates, set_free);
    pthread_mutex_init(&d->peer_mu, NULL);
    pthread_cond_init(&d->peer_cv, NULL);
    metrics *m = d->metrics;
    d->m_ri_ok = metrics_series(m, "cdni_ri_answers_total", "result=\"redirect\"", "counter", "RI requests answered");
    d->m_ri_err = metrics_series(m, "cdni_ri_answers_total", "result=\"error\"", "counter", "RI requests answered");
    d->m_redirects = metrics_series(m, "cdni_router_redirects_total", "", "counter", "end-user redirects to a surrogate");
    d->m_two_step = metrics_series(m, "cdni_manifests_rewritten_total", "", "counter",
                                   "manifests rewritten toward a surrogate (two-step, RFC 6983 option 3.3)");
    d->m_last_resort = metrics_series(m, "cdni_router_last_resort_total", "", "counter", "requests sent to the last resort");
    d->m_no_surrogate = metrics_series(m, "cdni_router_no_surrogate_total", "", "counter", "requests with no usable surrogate");
    d->m_fci_push_ok = metrics_series(m, "cdni_fci_advertisements_total", "result=\"ok\"", "counter", "FCI pushes to uCDNs");
    d->m_fci_push_fail = metrics_series(m, "cdni_fci_advertisements_total", "result=\"failed\"", "counter", "FCI pushes to uCDNs");
    d->m_hb_ok = metrics_series(m, "cdni_heartbeats_sent_total", "result=\"ok\"", "counter", "heartbeats to uCDNs");
    d->m_hb_fail = metrics_series(m, "cdni_heartbeats_sent_total", "result=\"failed\"", "counter", "heartbeats to uCDNs");
    hop_keys_metrics(&d->us, m);
    refresh_surrogates(d);
    if (pthread_create(&d->peer_th, NULL, peer_thread, d) != 0)
        return false;
    d->peer_th_started = true;
    return true;
}

void router_stop(dcdn *d)
{
    if (d->peer_th_started) {
        pthread_mutex_lock(&d->peer_mu);
        d->peer_stop = true;
        pthread_cond_broadcast(&d->peer_cv);
        pthread_mutex_unlock(&d->peer_mu);
        pthread_join(d->peer_th, NULL);
    }
    snapshot_destroy(&d->surrogates);
    ipt_free(d->zone_table);
    free(d->zones);
}
