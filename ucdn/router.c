/* ucdn request router: the end user's first stop.
 *
 * Delivery listener, any GET/HEAD path. The Host and target are put in
 * their one canonical form (http_canon_request) before anything else; the
 * client's address is the peer's, or a trusted proxy's header, and its
 * country/ASN come from routing.geo_file. Then, in order:
 *   resolve  the host+path in the published metadata (in-process index);
 *   choose   a dCDN (routing.h: footprints, capabilities, health, load,
 *            rules);
 *   authorize where the metadata asks for URI signing: the CSP's token
 *            (trusted by the owning CSP's keys only) or our session cookie
 *            (signing/authorize.h), and re-sign for the chosen dCDN under
 *            its signing profile (ACLs are enforced where content is
 *            delivered);
 *   answer   a collection's top-level manifest rewritten toward the dCDN
 *            (RFC 6983 option 3.2, collections.c), or one redirect:
 *   HTTP-R  ask the dCDN's RI endpoint (RFC 7975) where to send the user and
 *           pass its answer on; answers are cached per dCDN, client subnet
 *           (/24, /48) and URL for as long as the dCDN's Cache-Control allows
 *           (capped by routing.ri_cache_max_s). An RI failure suspends that
 *           dCDN's RI for ri_retry_after_s and the next candidate is tried.
 *   HTTP-I  redirect to the dCDN's own request router (its delivery_url or
 *           FCI.RedirectTarget), which picks the surrogate.
 * With no candidate: routing.fallback_url + the path, else 503 problem.
 * The query string is kept in every redirect; each is counted per dCDN per
 * minute (minute_stats) for the status page.
 *
 * Operator listener: POST /v1/route/explain {"url", "client_ip"} shows every
 * candidate and why it won or lost, without calling any dCDN. */
#include <arpa/inet.h>
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/clock.h"
#include "common/http_client.h"
#include "common/log.h"
#include "common/url.h"
#include "interfaces/redirection.h"
#include "signing/authorize.h"
#include "ucdn/ucdn.h"

/* --- RI answer cache ------------------------------------------------------ */

#define RIC_SLOTS 65536
#define RIC_LOCKS 64
struct ri_cache {
    pthread_mutex_t mu[RIC_LOCKS];
    struct ric_slot {
        uint64_t h;
        long long expires_ms;
        char *key; /* binary, klen bytes */
        size_t klen;
        char *location;
    } slot[RIC_SLOTS];
};

static bool ric_get(struct ri_cache *c, const char *key, size_t klen, long long now, char *out,
                    size_t cap)
{
    uint64_t h = route_hash(key, klen);
    size_t i = h % RIC_SLOTS;
    pthread_mutex_t *mu = &c->mu[i % RIC_LOCKS];
    bool hit = false;
    pthread_mutex_lock(mu);
    struct ric_slot *s = &c->slot[i];
    if (s->key && s->h == h && s->expires_ms > now && s->klen == klen &&
        memcmp(s->key, key, klen) == 0 && strlen(s->location) < cap) {
        strcpy(out, s->location);
        hit = true;
    }
    pthread_mutex_unlock(mu);
    return hit;
}

static void ric_put(struct ri_cache *c, const char *key, size_t klen, long long expires,
                    const char *location)
{
    uint64_t h = route_hash(key, klen);
    size_t i = h % RIC_SLOTS;
    char *k = malloc(klen), *l = strdup(location);
    if (!k || !l) {
        free(k);
        free(l);
        return;
    }
    memcpy(k, key, klen);
    pthread_mutex_t *mu = &c->mu[i % RIC_LOCKS];
    pthread_mutex_lock(mu);
    struct ric_slot *s = &c->slot[i];
    char *ok = s->key, *ol = s->location; /* a collision replaces the older entry */
    *s = (struct ric_slot){h, expires, k, klen, l};
    pthread_mutex_unlock(mu);
    free(ok);
    free(ol);
}

static void ric_free(struct ri_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < RIC_SLOTS; i++) {
        free(c->slot[i].key);
        free(c->slot[i].location);
    }
    for (int i = 0; i < RIC_LOCKS; i++)
        pthread_mutex_destroy(&c->mu[i]);
    free(c);
}

/* max-age (or s-maxage) in Cache-Control; -1 if absent or no-store/no-cache. */
/* --- the decision ---------------------------------------------------------- */

typedef struct {
    char host[262];               /* canonical (common/url.h) */
    char target[URL_MAX_LEN + 2]; /* path?query, canonical */
    size_t path_len;
    char client_text[INET6_ADDRSTRLEN];
    fp_client client;
    mi_resolution res;
    mi_resolve_status rs;
    route_eval ev[ROUTE_MAX_PEERS];
    int rule;
    int chosen;
    route_req q;
} decision;

static void client_geo(ucdn *u, fp_client *c)
{
    if (!u->geo)
        return;
    uint32_t e = ipt_lookup(u->geo, &c->ip);
    if (e == IPT_NONE)
        return;
    const struct geo_rec *g = &u->geo_recs[ipt_entry_at(u->geo, e)->value];
    memcpy(c->country, g->country, sizeof c->country);
    memcpy(c->subdivision, g->subdivision, sizeof c->subdivision);
    c->asn = g->asn;
}

/* The client address: the peer, or, when the peer is a trusted proxy, the
 * right-most untrusted address of the configured header. */
static bool client_address(ucdn *u, http_req *r, ipt_addr *out, char *text, size_t cap,
                           bool *via_proxy)
{
    bool v6;
    *via_proxy = false;
    text[0] = 0; /* the peer's text is written only when needed (ask_ri) */
    if (!http_peer_addr(r, out->bytes, &v6))
        return false;
    out->v6 = v6;
    if (!u->rt.trusted || ipt_lookup(u->rt.trusted, out) == IPT_NONE)
        return true;
    *via_proxy = true;
    if (!u->rt.client_ip_header)
        return true;
    const char *h = http_header(r, u->rt.client_ip_header);
    if (!h)
        return true;
    const char *end = h + strlen(h);
    while (end > h) {
        const char *start = end;
        while (start > h && start[-1] != ',')
            start--;
        const char *a = start, *b = end;
        while (a < b && isspace((unsigned char)*a))
            a++;
        while (b > a && isspace((unsigned char)b[-1]))
            b--;
        ipt_addr x;
        if (b > a && ipt_parse_addr(a, (size_t)(b - a), &x)) {
            *out = x;
            snprintf(text, cap, "%.*s", (int)(b - a), a);
            if (ipt_lookup(u->rt.trusted, &x) == IPT_NONE)
                break;
        } else {
            break; /* garbage: keep the last good one */
        }
        end = start > h ? start - 1 : h;
    }
    return true;
}

/* Fills d (host, target, client already set). Uses the index snapshot the
 * caller holds. */
static void decide(ucdn *u, const route_snap *s, const mi_host_index *x, decision *d,
                   bool https, uint64_t exclude, uint64_t random)
{
    d->chosen = -1;
    d->rule = -1;
    d->rs = x ? mi_resolve(x, d->host, strlen(d->host), d->target, strlen(d->target), &d->res)
              : MI_NO_HOST;
    if (d->rs != MI_RESOLVED || d->res.blocking || !s)
        return;
    d->q = (route_req){.https = https,
                       .host = d->host,
                       .path = NULL,
                       .client = d->client,
                       .content_type = route_content_type(d->target, d->path_len),
                       .uri_hash = route_hash(d->target, d->path_len),
                       .content_hashing = u->rt.content_hashing,
                       .res = &d->res,
                       .exclude = exclude,
                       .now_ms = wall_ms(),
                       .hb_timeout_ms = u->rt.hb_timeout_ms,
                       .random = random};
    char path[URL_MAX_LEN + 1];
    if (u->n_rules) { /* rules glob on the path alone */
        memcpy(path, d->target, d->path_len);
        path[d->path_len] = 0;
        d->q.path = path;
    }
    d->chosen = route_select(s, u->rules, u->n_rules, &d->q, d->ev, &d->rule);
    d->q.path = NULL;
}

static bool set_target(decision *d, const char *path, const char *query)
{
    size_t pl = strlen(path), ql = strlen(query);
    if (pl + ql + 2 > sizeof d->target || pl > URL_MAX_LEN)
        return false;
    memcpy(d->target, path, pl);
    d->path_len = pl;
    if (ql) {
        d->target[pl] = '?';
        memcpy(d->target + pl + 1, query, ql + 1);
    } else {
        d->target[pl] = 0;
    }
    return true;
}

static bool set_host(decision *d, const char *h, size_t n)
{
    return h && url_canon_host(h, n, false, d->host, sizeof d->host, NULL) == URL_CANON_OK;
}

static uint64_t thread_random(void)
{
    static __thread uint64_t x;
    if (!x)
        x = (uint64_t)wall_ms() ^ (uint64_t)(uintptr_t)&x;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
}

/* Ask peer p's RI where the user goes. true with location filled. */
static bool ask_ri(ucdn *u, size_t pi, decision *d, bool https, char *location, size_t cap,
                   const char *ua)
{
    route_peer *p = &u->peers[pi];
    long long now = d->q.now_ms;
    /* cache key, binary: peer, scheme, the client's /24 or /48, host, target */
    char key[4 + sizeof d->client.ip.bytes + sizeof d->host + sizeof d->target];
    ipt_addr net = d->client.ip;
    unsigned keep = net.v6 ? 6 : 3;
    memset(net.bytes + keep, 0, sizeof net.bytes - keep);
    size_t kl = 0, hl = strlen(d->host), tl = strlen(d->target);
    key[kl++] = (char)pi;
    key[kl++] = (char)https;
    key[kl++] = (char)net.v6;
    memcpy(key + kl, net.bytes, sizeof net.bytes);
    kl += sizeof net.bytes;
    memcpy(key + kl, d->host, hl);
    kl += hl;
    key[kl++] = '\n';
    memcpy(key + kl, d->target, tl);
    kl += tl;
    if (ric_get(u->ri_cache, key, kl, now, location, cap)) {
        metric_add(u->m_ri_hit, 1);
        return true;
    }
    const char *path[] = {u->cdn_id};
    json_t *hdrs = ua ? json_pack("{s:s}", "user-agent", ua) : NULL;
    if (!d->client_text[0])
        inet_ntop(d->client.ip.v6 ? AF_INET6 : AF_INET, d->client.ip.bytes, d->client_text,
                  sizeof d->client_text);
    json_t *req = ri_http_request("GET", https ? "https" : "http", d->host, d->target,
                                  d->client_text, hdrs, path, 1, u->rt.max_hops);
    static http_client_slot ri_clients = HTTP_CLIENT_SLOT_INIT;
    http_client_conf cc = {.connect_timeout_ms = u->rt.ri_timeout_ms, .timeout_ms = u->rt.ri_timeout_ms,
                           .retries = 0, .max_body = RI_MAX_DOC, .egress = u->egress};
    http_client *hc = http_client_per_thread(&ri_clients, &cc);
    http_client_use_tls(hc, &p->tls);
    char why[JPATH_MAX + 512] = "";
    long ma, status;
    bool ok = ri_call(hc, p->ri_url, p->ri_token, req, location, cap, &ma, &status, why, sizeof why);
    json_decref(req);
    if (ok) {
        if (ma > u->rt.ri_cache_max_s)
            ma = u->rt.ri_cache_max_s;
        if (ma > 0)
            ric_put(u->ri_cache, key, kl, now + ma * 1000, location);
    }
    if (ok) {
        metric_add(u->m_ri_ok, 1);
        return true;
    }
    metric_add(u->m_ri_fail, 1);
    mstats_add2(u->stats, "ri_error", p->id, 1);
    /* transport failures and 5xx suspend this dCDN's RI; a refusal (4xx)
     * concerns this request only */
    if (status == 0 || status >= 500)
        atomic_store(&p->ri_down_until_ms, now + (long long)u->rt.ri_retry_after_s * 1000);
    log_kv(LOG_WARN, "RI request failed; trying the next dCDN", "peer", p->id, "reason", why, NULL);
    return false;
}

static void count(ucdn *u, const decision *d)
{
    for (size_t p = 0; p < u->n_peers; p++)
        metric_add(u->m_decision[p * RW__COUNT + d->ev[p].why], 1);
}

/* --- URI signing ------------------------------------------------------------ */

/* The authorize phase (signing/authorize.h): the content's MI.UriSigning
 * decides; the owner CSP's keys are the trusted ones, and its session
 * cookies are scoped to that CSP. On success with a token, d->target loses
 * the token. */
static bool authorize(ucdn *u, http_req *r, const ucdn_index *ix, decision *d, bool https, hop_result *hr)
{
    mi_resolution res;
    if (mi_resolve(ix->x, d->host, strlen(d->host), d->target, strlen(d->target), &res) != MI_RESOLVED ||
        res.blocking)
        return true; /* answered by the routing path (404, 403) */
    if (!mi_effective_value(&res, "MI.UriSigning"))
        return true;
    const char *owner = ix->csp[res.host - ix->x->hosts];
    us_trust trust[HOP_MAX_TRUST];
    size_t nt = 0;
    for (size_t i = 0; i < u->n_csp && nt < HOP_MAX_TRUST; i++)
        if (u->csp_keys[i].n && strcmp(u->csp_tokens[i].identity, owner) == 0)
            trust[nt++] = (us_trust){NULL, &u->csp_keys[i], false};
    if (!d->client_text[0])
        inet_ntop(d->client.ip.v6 ? AF_INET6 : AF_INET, d->client.ip.bytes, d->client_text,
                  sizeof d->client_text);
    authz_request q = {.scheme = https ? "https" : "http",
                       .host = d->host,
                       .target = d->target,
                       .cookie = http_header(r, "Cookie"),
                       .client_ip = d->client_text,
                       .now = wall_ms() / 1000,
                       .tenant = owner,
                       .content_host = res.host->host};
    const char *why;
    if (authz_check(&u->us, trust, nt, &res, &q, hr, &why) != AUTHZ_ALLOWED)
        return false;
    if (hr->target) {
        char *qm = strchr(hr->target, '?');
        if (qm)
            *qm = 0;
        bool fits = set_target(d, hr->target, qm ? qm + 1 : "");
        if (qm)
            *qm = '?';
        if (!fits)
            return false;
    }
    return true;
}


static void deliver(http_req *r, void *ctx)
{
    ucdn *u = ctx;
    static __thread decision tl_decision; /* one per server thread: no allocation per request */
    decision *d = &tl_decision;
    static __thread http_canon tl_canon; /* the one form every step below sees */
    const char *refusal;
    int bad = http_canon_request(r, &tl_canon, &refusal);
    if (bad) {
        http_reply_problem(r, bad, bad == 414 ? "URI Too Long" : "Bad Request", refusal, NULL);
        return;
    }
    memcpy(d->host, tl_canon.host, sizeof d->host);
    memcpy(d->target, tl_canon.target, tl_canon.target_len + 1);
    d->path_len = tl_canon.path_len;
    memset(&d->client, 0, sizeof d->client);
    bool via_proxy;
    if (!client_address(u, r, &d->client.ip, d->client_text, sizeof d->client_text, &via_proxy)) {
        http_reply_problem(r, 400, "Bad Request", "client address unknown", NULL);
        return;
    }
    client_geo(u, &d->client);
    const char *proto = via_proxy ? http_header(r, "X-Forwarded-Proto") : NULL;
    /* the scheme the client used: ours if it reached us over TLS, else what a trusted proxy says */
    bool https = http_is_tls(r) || (proto && strcasecmp(proto, "https") == 0);

    snap_ref *iref, *sref;
    const ucdn_index *ix = snapshot_acquire(&u->index, &iref);
    const mi_host_index *x = ix ? ix->x : NULL;
    const route_snap *s = snapshot_acquire(&u->routing, &sref);
    uint64_t exclude = 0;
    char location[3 * URL_MAX_LEN];
    bool have = false;
    hop_result hr = {.allowed = true};
    char orig_target[sizeof d->target];
    if (u->us.present && x) {
        strcpy(orig_target, d->target);
        if (!authorize(u, r, ix, d, https, &hr)) {
            http_reply_problem(r, 403, "Forbidden", "the request is not authorized for this content", NULL);
            hop_result_free(&hr);
            snapshot_release(&u->routing, sref);
            snapshot_release(&u->index, iref);
            return;
        }
    }
    for (int attempt = 0; attempt <= (int)u->n_peers && !have; attempt++) {
        decide(u, s, x, d, https, exclude, thread_random());
        if (d->rs != MI_RESOLVED || d->res.blocking || d->chosen < 0)
            break;
        const route_peer *p = &u->peers[d->chosen];
        const route_eval *v = &d->ev[d->chosen];
        if (v->use_ri) {
            have = ask_ri(u, (size_t)d->chosen, d, https, location, sizeof location,
                          http_header(r, "User-Agent"));
            if (!have)
                exclude |= 1ull << d->chosen;
        } else {
            const char *base = p->delivery_url;
            char tb[300];
            if (base && https != (strncmp(base, "https://", 8) == 0))
                base = NULL; /* a redirect keeps the client's scheme: the advertised target then */
            if (!base) {
                snprintf(tb, sizeof tb, "%s://%s", https ? "https" : "http", v->http_target);
                base = tb;
            }
            char hp[sizeof d->target + 300];
            have = ri_host_path(d->host, d->target, hp, sizeof hp) && url_join(base, hp, location, sizeof location);
        }
    }
    /* a collection's top-level manifest: served rewritten toward the dCDN (option 3.2) */
    char cpath[URL_MAX_LEN + 1]; /* the canonical path alone, as collections are published */
    memcpy(cpath, d->target, d->path_len);
    cpath[d->path_len] = 0;
    if (have && collections_serve(u, r, d->host, cpath, https, location, &u->peers[d->chosen],
                                  d->ev[d->chosen].http_target, &d->res, &hr, &u->peer_sig[d->chosen])) {
        mstats_add2(u->stats, "redirect", u->peers[d->chosen].id, 1); /* delegated by a rewritten manifest */
        count(u, d);
        hop_result_free(&hr);
        snapshot_release(&u->routing, sref);
        snapshot_release(&u->index, iref);
        return;
    }
    if (have && hr.method != HOP_OPEN) { /* the dCDN gets a token of ours */
        const struct peer_signing *ps = &u->peer_sig[d->chosen];
        char *signed_loc = hop_next_location(&u->us.conf, ps->key.n ? &ps->key.keys[0] : NULL, ps->alg, ps->profile, &hr,
                                             ps->audience, location, wall_ms() / 1000);
        have = signed_loc && strlen(signed_loc) < sizeof location;
        if (have)
            strcpy(location, signed_loc);
        else
            log_kv(LOG_ERROR, "cannot sign the redirect for the dCDN", "peer", u->peers[d->chosen].id, NULL);
        free(signed_loc);
    }
    /* the fallback (the CSP's origin, say) gets the request as it came */
    bool fallback = !have && u->rt.fallback_url && d->rs == MI_RESOLVED && !d->res.blocking &&
                    url_join(u->rt.fallback_url, hr.method != HOP_OPEN ? orig_target : d->target, location,
                             sizeof location);
    if (d->rs == MI_NO_HOST || d->rs == MI_UNLINKED) {
        http_reply_problem(r, 404, "Not Found", "no delivery service for this host", NULL);
    } else if (d->res.blocking) {
        char det[300];
        snprintf(det, sizeof det, "metadata %s must be enforced and cannot be", d->res.blocking->type);
        http_reply_problem(r, 403, "Forbidden", det, NULL);
    } else if (have || fallback) {
        count(u, d);
        metric_add(have ? u->m_redirects : u->m_fallback, 1);
        mstats_add2(u->stats, "redirect", have ? u->peers[d->chosen].id : "fallback", 1);
        http_add_header(r, "Location", location);
        http_add_header(r, "Cache-Control", "no-store");
        for (int c = 0; c < 2; c++)
            if (hr.set_cookie[c])
                http_add_header(r, "Set-Cookie", hr.set_cookie[c]);
        http_reply(r, u->rt.redirect_status, NULL, NULL, 0);
    } else {
        count(u, d);
        metric_add(u->m_unroutable, 1);
        mstats_add(u->stats, "unroutable", 1);
        json_t *why = json_object();
        for (size_t p = 0; p < u->n_peers; p++)
            json_object_set_new(why, u->peers[p].id, json_string(route_why_name(d->ev[p].why)));
        http_add_header(r, "Retry-After", "10");
        http_reply_problem(r, 503, "Service Unavailable",
                           "no downstream CDN can serve this request now and no fallback is configured",
                           json_pack("{s:o}", "candidates", why));
    }
    hop_result_free(&hr);
    snapshot_release(&u->routing, sref);
    snapshot_release(&u->index, iref);
}

void router_routes(ucdn *u, http_routes *out)
{
    http_routes_add(out, (http_route){"GET", "/*", deliver, u, true});
}

/* --- explain --------------------------------------------------------------- */

static void explain(http_req *r, void *ctx)
{
    ucdn *u = ctx;
    size_t len;
    const char *body = http_body(r, &len);
    jerr e = {0};
    json_t *v = jparse(body, len, 64 * 1024, &e);
    const char *url = NULL, *cip = NULL;
    bool https = false;
    if (!v || !json_is_object(v) || !jget_str(v, "url", "$", true, &url, &e) ||
        !jget_str(v, "client_ip", "$", true, &cip, &e)) {
        if (v && !e.path[0])
            jfail(&e, "$", "expected {\"url\": ..., \"client_ip\": ...}");
        http_reply_invalid(r, 400, "Bad Request", &e);
        json_decref(v);
        return;
    }
    decision *d = calloc(1, sizeof *d);
    url_ref ur;
    bool ok = url_parse(url, strlen(url), &ur) == URL_OK && ur.authority && ur.host.len;
    if (ok) {
        https = ur.scheme.len == 5 && strncasecmp(url + ur.scheme.off, "https", 5) == 0;
        size_t hl = ur.host.len + (ur.port.present ? ur.port.len + 1 : 0);
        char path[2 * URL_MAX_LEN + 4];
        snprintf(path, sizeof path, "%.*s%s%.*s", (int)(ur.path.len ? ur.path.len : 1),
                 ur.path.len ? url + ur.path.off : "/", ur.query.present ? "?" : "", (int)ur.query.len,
                 url + ur.query.off);
        size_t tl;
        ok = set_host(d, url + ur.host.off, hl) &&
             url_canon_target(path, strlen(path), d->target, sizeof d->target, &tl, &d->path_len) == URL_CANON_OK;
    }
    if (!ok || !ipt_parse_addr(cip, strlen(cip), &d->client.ip)) {
        http_reply_problem(r, 400, "Bad Request",
                           ok ? "client_ip is not an IP address" : "url must be an absolute http(s) URL",
                           NULL);
        json_decref(v);
        free(d);
        return;
    }
    snprintf(d->client_text, sizeof d->client_text, "%s", cip);
    client_geo(u, &d->client);
    snap_ref *iref, *sref;
    const ucdn_index *ix = snapshot_acquire(&u->index, &iref);
    const mi_host_index *x = ix ? ix->x : NULL;
    const route_snap *s = snapshot_acquire(&u->routing, &sref);
    decide(u, s, x, d, https, 0, 0);
    json_t *client = json_pack("{s:s}", "ip", cip);
    if (d->client.country[0])
        json_object_set_new(client, "country", json_string(d->client.country));
    if (d->client.subdivision[0])
        json_object_set_new(client, "subdivision", json_string(d->client.subdivision));
    if (d->client.asn)
        json_object_set_new(client, "asn", json_integer(d->client.asn));
    json_t *out = json_pack("{s:s, s:s, s:o}", "host", d->host, "target", d->target, "client", client);
    if (d->rs != MI_RESOLVED) {
        json_object_set_new(out, "result", json_string("no_delivery_service"));
    } else if (d->res.blocking) {
        json_object_set_new(out, "result", json_string("unservable"));
        json_object_set_new(out, "blocking_metadata", json_string(d->res.blocking->type));
    } else {
        json_t *req = json_array();
        for (size_t m = 0; m < d->res.n_effective; m++)
            if (d->res.effective[m]->mandatory_to_enforce)
                json_array_append_new(req, json_string(d->res.effective[m]->type));
        json_object_set_new(out, "metadata_required", req);
        static const char *const cts[] = {"hls", "dash", "segment", "other"};
        unsigned ct = d->q.content_type;
        json_object_set_new(out, "content_type",
                            json_string(cts[ct == CT_HLS ? 0 : ct == CT_DASH ? 1 : ct == CT_SEGMENT ? 2 : 3]));
        json_object_set_new(out, "rule", d->rule >= 0 ? json_integer(d->rule) : json_null());
        json_t *cands = json_array();
        long long now = wall_ms();
        for (size_t p = 0; p < u->n_peers; p++) {
            const route_eval *ev = &d->ev[p];
            const route_peer *pr = &u->peers[p];
            long long hb = atomic_load(&pr->last_hb_ms);
            json_t *c = json_pack("{s:s, s:s, s:b, s:I, s:I, s:f}", "id", pr->id, "result",
                                  route_why_name(ev->why), "covered", ev->covered, "priority",
                                  (json_int_t)pr->priority, "weight", (json_int_t)pr->weight,
                                  "load", atomic_load(&pr->load_milli) / 1000.0);
            if (ev->covered && ev->plen)
                json_object_set_new(c, "prefix_length", json_integer(ev->plen));
            if (ev->missing)
                json_object_set_new(c, "missing", json_string(ev->missing));
            if (hb)
                json_object_set_new(c, "heartbeat_age_ms", json_integer(now - hb));
            if (ev->why == RW_SELECTED || ev->why == RW_RANKED_LOWER)
                json_object_set_new(c, "mode", json_string(ev->use_ri ? "HTTP-R" : "HTTP-I"));
            json_array_append_new(cands, c);
        }
        json_object_set_new(out, "candidates", cands);
        if (d->chosen >= 0) {
            json_object_set_new(out, "result", json_string("redirect"));
            json_object_set_new(out, "selected", json_string(u->peers[d->chosen].id));
        } else if (u->rt.fallback_url) {
            json_object_set_new(out, "result", json_string("fallback"));
            json_object_set_new(out, "fallback_url", json_string(u->rt.fallback_url));
        } else {
            json_object_set_new(out, "result", json_string("unroutable"));
        }
    }
    snapshot_release(&u->routing, sref);
    snapshot_release(&u->index, iref);
    json_decref(v);
    free(d);
    http_reply_json(r, 200, NULL, out);
}

void router_op_routes(ucdn *u, http_routes *out)
{
    http_routes_add(out, (http_route){"POST", "/v1/route/explain", explain, u, false});
}

/* --- set-up ---------------------------------------------------------------- */

/* Geo file: "prefix,country,subdivision,asn" per line; '#' comments; empty
 * fields allowed ("10.0.0.0/8,FR,,64496"). */
static bool load_geo(ucdn *u)
{
    FILE *f = fopen(u->rt.geo_file, "r");
    if (!f) {
        log_kv(LOG_ERROR, "cannot open routing.geo_file", "file", u->rt.geo_file, NULL);
        return false;
    }
    iptable_builder *b = iptb_new();
    size_t n = 0, cap = 0, lineno = 0;
    char line[512];
    bool ok = true;
    while (ok && fgets(line, sizeof line, f)) {
        lineno++;
        char *s = line;
        s[strcspn(s, "\r\n")] = 0;
        if (!*s || *s == '#')
            continue;
        char *fld[4] = {0};
        int k = 0;
        for (char *t = s; k < 4; k++) {
            fld[k] = t;
            char *c = strchr(t, ',');
            if (!c) {
                k++;
                break;
            }
            *c = 0;
            t = c + 1;
        }
        ipt_addr a;
        unsigned len;
        struct geo_rec g = {0};
        if (k < 2 || !ipt_parse_prefix(fld[0], strlen(fld[0]), &a, &len) || strlen(fld[1]) > 2 ||
            (fld[2] && strlen(fld[2]) > 6)) {
            char ln[32];
            snprintf(ln, sizeof ln, "%zu", lineno);
            log_kv(LOG_ERROR, "bad line in routing.geo_file", "file", u->rt.geo_file, "line", ln, NULL);
            ok = false;
            break;
        }
        for (int i = 0; fld[1][i]; i++)
            g.country[i] = (char)toupper((unsigned char)fld[1][i]);
        for (int i = 0; fld[2] && fld[2][i]; i++)
            g.subdivision[i] = (char)toupper((unsigned char)fld[2][i]);
        if (fld[3]) {
            const char *an = fld[3];
            if (!strncasecmp(an, "as", 2))
                an += 2;
            g.asn = (uint32_t)strtoul(an, NULL, 10);
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            u->geo_recs = realloc(u->geo_recs, cap * sizeof *u->geo_recs);
        }
        u->geo_recs[n] = g;
        iptb_add(b, &a, len, (uint32_t)n++);
    }
    fclose(f);
    u->geo = iptb_build(b, -1);
    return ok && u->geo;
}

static void index_free(void *p)
{
    ucdn_index *ix = p;
    if (!ix)
        return;
    for (size_t i = 0; ix->x && i < ix->x->n_hosts; i++)
        free(ix->csp[i]);
    free(ix->csp);
    mi_host_index_free(ix->x);
    free(ix);
}

bool router_init(ucdn *u)
{
    snapshot_init(&u->index, index_free);
    snapshot_init(&u->routing, route_snap_free);
    u->ri_cache = calloc(1, sizeof *u->ri_cache);
    if (!u->ri_cache)
        return false;
    for (int i = 0; i < RIC_LOCKS; i++)
        pthread_mutex_init(&u->ri_cache->mu[i], NULL);
    if (u->rt.geo_file && !load_geo(u))
        return false;
    metrics *m = u->metrics;
    u->m_decision = calloc(u->n_peers * RW__COUNT + 1, sizeof *u->m_decision);
    for (size_t p = 0; p < u->n_peers; p++)
        for (int w = 0; w < RW__COUNT; w++) {
            char l[200];
            snprintf(l, sizeof l, "peer=\"%s\",reason=\"%s\"", u->peers[p].id, route_why_name((route_why)w));
            u->m_decision[p * RW__COUNT + (size_t)w] = metrics_series(
                m, "cdni_route_decisions_total", l, "counter",
                "per routed request, each dCDN's outcome: selected or why not");
        }
    u->m_redirects = metrics_series(m, "cdni_route_redirects_total", "target=\"dcdn\"", "counter",
                                    "end-user redirects");
    u->m_fallback = metrics_series(m, "cdni_route_redirects_total", "target=\"fallback\"", "counter",
                                   "end-user redirects");
    u->m_unroutable = metrics_series(m, "cdni_route_unroutable_total", "", "counter",
                                     "requests answered 503: no dCDN and no fallback");
    u->m_ri_hit = metrics_series(m, "cdni_ri_requests_total", "result=\"cache_hit\"", "counter",
                                 "RI (RFC 7975) lookups by outcome");
    u->m_ri_ok = metrics_series(m, "cdni_ri_requests_total", "result=\"ok\"", "counter",
                                "RI (RFC 7975) lookups by outcome");
    u->m_ri_fail = metrics_series(m, "cdni_ri_requests_total", "result=\"failed\"", "counter",
                                  "RI (RFC 7975) lookups by outcome");
    u->m_fci_updates = metrics_series(m, "cdni_fci_updates_total", "", "counter",
                                      "FCI advertisements stored");
    u->m_heartbeats = metrics_series(m, "cdni_peer_heartbeats_total", "", "counter",
                                     "dCDN heartbeats received");
    u->m_routing_rebuilds = metrics_series(m, "cdni_routing_rebuilds_total", "", "counter",
                                           "routing snapshot rebuilds");
    hop_keys_metrics(&u->us, m);
    return true;
}

void router_free(ucdn *u)
{
    snapshot_destroy(&u->routing);
    snapshot_destroy(&u->index);
    ric_free(u->ri_cache);
    ipt_free(u->geo);
    free(u->geo_recs);
    free(u->m_decision);
}
