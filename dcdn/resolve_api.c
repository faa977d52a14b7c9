/* Operator API, /v1/metadata: which CDNI metadata applies to a URL.
 *
 *   GET  /v1/metadata/resolve?url=http://video.example.com/vod/a.ts
 *   GET  /v1/metadata/status
 *   POST /v1/metadata/refresh
 *
 * Resolution reads the in-process snapshots only (no Redis, no uCDN). */
#include <stdio.h>
#include <string.h>

#include "common/url.h"
#include "dcdn/dcdn.h"
#include "interfaces/redirection.h"

upstream *dcdn_resolve(dcdn *d, const char *host, const char *target, mi_resolution *res, snap_ref **ref)
{
    for (size_t i = 0; host && i < d->n_ups; i++) {
        upstream *up = &d->ups[i];
        mi_host_index *x = snapshot_acquire(&up->snap, ref);
        if (x && mi_resolve(x, host, strlen(host), target, strlen(target), res) == MI_RESOLVED)
            return up;
        snapshot_release(&up->snap, *ref);
    }
    return NULL;
}

bool dcdn_own_host(dcdn *d, const char *host)
{
    size_t n = url_host_name_len(host);
    if (url_names_has(&d->own_hosts, host))
        return true;
    /* and every surrogate registered in this CDN */
    snap_ref *ref;
    const surrogate_set *set = snapshot_acquire(&d->surrogates, &ref);
    bool own = false;
    for (size_t i = 0; set && i < set->n && !own; i++)
        own = strlen(set->s[i].host) == n && memcmp(set->s[i].host, host, n) == 0;
    snapshot_release(&d->surrogates, ref);
    return own;
}

upstream *dcdn_resolve_request(dcdn *d, const char *host, const char *target, dcdn_content *c, mi_resolution *res,
                               snap_ref **ref)
{
    c->prefixed = false;
    c->prefix_len = 0;
    /* a Host of ours (a surrogate's, the router's) names no content: however
     * a CSP spelled its host, the content's host is the path's first segment */
    upstream *up = dcdn_own_host(d, host) ? NULL : dcdn_resolve(d, host, target, res, ref);
    if (up) {
        snprintf(c->host, sizeof c->host, "%s", host);
        c->target = target;
        return up;
    }
    const char *rest;
    char raw[262];
    if (!ri_split_host_path(target, raw, sizeof raw, &rest) ||
        url_canon_host(raw, strlen(raw), false, c->host, sizeof c->host, NULL) != URL_CANON_OK)
        return NULL;
    up = dcdn_resolve(d, c->host, rest, res, ref);
    if (up) {
        c->target = rest;
        c->prefixed = true;
        c->prefix_len = (size_t)(rest - target);
    }
    return up;
}

static void on_resolve(http_req *r, void *ctx)
{
    dcdn *d = ctx;
    const char *target_url = http_query_arg(r, "url");
    url_ref u;
    if (!target_url || url_parse(target_url, strlen(target_url), &u) != URL_OK || !u.authority ||
        u.host.len == 0) {
        http_reply_problem(r, 400, "Bad Request", "query parameter url must be an absolute URL", NULL);
        return;
    }
    /* host[:port] as a Host header would carry it, canonical */
    char host[262];
    size_t hlen;
    if (url_canon_host(target_url + u.host.off, u.port.present ? u.port.off + u.port.len - u.host.off : u.host.len,
                       true, host, sizeof host, NULL) != URL_CANON_OK) {
        http_reply_problem(r, 400, "Bad Request", "the url's host is not a host name or address", NULL);
        return;
    }
    hlen = strlen(host);
    const char *target = target_url + u.path.off;
    size_t tlen = u.fragment.present ? u.fragment.off - 1 - u.path.off : strlen(target);
    char path_only[2] = "/";
    if (tlen == 0 || target[0] != '/') { /* "http://h" or "http://h?q" */
        target = path_only;
        tlen = 1;
    }
    bool any_loaded = false;
    for (size_t i = 0; i < d->n_ups; i++) {
        upstream *up = &d->ups[i];
        snap_ref *ref;
        mi_host_index *x = snapshot_acquire(&up->snap, &ref);
        if (!x) {
            snapshot_release(&up->snap, ref);
            continue;
        }
        any_loaded = true;
        mi_resolution res;
        mi_resolve_status st = mi_resolve(x, host, hlen, target, tlen, &res);
        if (st != MI_RESOLVED) {
            snapshot_release(&up->snap, ref);
            continue;
        }
        json_t *md = json_array(), *matched = json_array();
        for (size_t k = 0; k < res.n_effective; k++)
            json_array_append_new(md, mi_generic_to_json(res.effective[k]));
        for (size_t k = 0; k < res.depth; k++)
            json_array_append_new(matched, mi_pattern_to_json(res.matched[k]));
        json_t *out = json_pack("{s:s, s:s, s:s, s:b, s:o, s:o}", "url", target_url, "upstream", up->id,
                                "host", res.host->host, "servable", res.blocking == NULL,
                                "matched", matched, "metadata", md);
        if (res.blocking) {
            json_object_set_new(out, "refusal",
                                json_pack("{s:s, s:s}", "generic-metadata-type", res.blocking->type,
                                          "reason", res.blocking->understood
                                                        ? "mandatory-to-enforce metadata marked incomprehensible upstream"
                                                        : "mandatory-to-enforce metadata of a type this dCDN does not understand"));
            metric_add(d->m_resolve_refused, 1);
        } else {
            metric_add(d->m_resolve_ok, 1);
        }
        snapshot_release(&up->snap, ref);
        http_reply_json(r, 200, NULL, out);
        return;
    }
    if (!any_loaded) {
        http_add_header(r, "Retry-After", "1");
        http_reply_problem(r, 503, "Service Unavailable", "no metadata has been loaded yet", NULL);
        return;
    }
    metric_add(d->m_resolve_nohost, 1);
    http_reply_problem(r, 404, "Not Found", "no upstream CDN delegates this host", NULL);
}

static void on_status(http_req *r, void *ctx)
{
    dcdn *d = ctx;
    json_t *ups = json_array();
    for (size_t i = 0; i < d->n_ups; i++) {
        upstream *up = &d->ups[i];
        snap_ref *ref;
        mi_host_index *x = snapshot_acquire(&up->snap, &ref);
        json_t *hosts = json_array();
        for (size_t k = 0; x && k < x->n_hosts; k++)
            json_array_append_new(hosts, json_string(x->hosts[k].host));
        snapshot_release(&up->snap, ref);
        pthread_mutex_lock(&up->status_mu);
        json_t *o = json_pack("{s:s, s:s, s:b, s:o, s:I, s:I, s:I}", "id", up->id, "metadata_url",
                              up->metadata_url, "loaded", x != NULL, "hosts", hosts, "generation",
                              (json_int_t)up->generation, "last_success", (json_int_t)up->last_ok,
                              "last_attempt", (json_int_t)up->last_attempt);
        if (up->last_error[0])
            json_object_set_new(o, "last_error", json_string(up->last_error));
        pthread_mutex_unlock(&up->status_mu);
        json_array_append_new(ups, o);
    }
    http_reply_json(r, 200, NULL, json_pack("{s:o}", "upstreams", ups));
}

static void on_refresh(http_req *r, void *ctx)
{
    dcdn_sync_kick(ctx, false);
    http_reply_json(r, 202, NULL, json_pack("{s:s}", "status", "refresh requested"));
}

void resolve_api_routes(dcdn *d, http_routes *out)
{
    http_routes_add(out, (http_route){"GET", "/v1/metadata/resolve", on_resolve, d, false});
    http_routes_add(out, (http_route){"GET", "/v1/metadata/status", on_status, d, false});
    http_routes_add(out, (http_route){"POST", "/v1/metadata/refresh", on_refresh, d, false});
}
