/* CSP API, /csp/v1: delivery services (a host and its CDNI metadata).
 *
 * A delivery service body is {"host": ..., "metadata": [...], "paths": [...]}:
 * a HostMatch's host and the HostMetadata that goes with it, checked with
 * the publisher policy (an unknown mandatory-to-enforce type is refused
 * here, before any dCDN would have to refuse the content). Errors are
 * application/problem+json; a validation error says which JSON path. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/url.h"
#include "ucdn/ucdn.h"

#define SERVICE_MAX_BYTES (16u << 20)
/* JSON nesting a service may have: room for the 16 levels of PathMetadata
 * the readers take, far within the depth any JSON reader of the record
 * (which wraps it twice) accepts */
#define SERVICE_MAX_DEPTH 128

void csp_reply_down(http_req *r)
{
    http_add_header(r, "Retry-After", "1");
    http_reply_problem(r, 503, "Service Unavailable",
                       "the shared store is unreachable; nothing was changed", NULL);
}

void csp_reply_not_durable(http_req *r)
{
    http_add_header(r, "Retry-After", "1");
    http_reply_problem(r, 503, "Service Unavailable",
                       "the change reached the shared store but not enough of its replicas in time, so a "
                       "failover could lose it; send it again", NULL);
}

bool csp_over_limit(ucdn *u, http_req *r, csp_request_class c)
{
    const char *csp = http_identity(r);
    size_t i = 0;
    while (i < u->n_csp && strcmp(u->csp_tokens[i].identity, csp) != 0)
        i++;
    if (i == u->n_csp)
        return false;
    struct csp_limits *l = &u->csp_limits[i];
    char key[200];
    snprintf(key, sizeof key, "cdni:%s:{rl}:%s:%s", u->cdn_id, csp, c == CSP_WRITE ? "writes" : "purges");
    long long wait = rl_take(u->store, key, c == CSP_WRITE ? &l->writes : &l->purges, wall_ms());
    if (wait <= 0) /* allowed, or the store is away (the request then answers 503 itself) */
        return false;
    metric_add(l->m_limited[c], 1);
    char ra[24], d[200];
    snprintf(ra, sizeof ra, "%lld", (wait + 999) / 1000);
    snprintf(d, sizeof d, "this CSP's %s rate limit is reached; retry in %lld ms",
             c == CSP_WRITE ? "write" : "purge", wait);
    http_add_header(r, "Retry-After", ra);
    http_reply_problem(r, 429, "Too Many Requests", d, NULL);
    return true;
}

void csp_api_init(ucdn *u)
{
    static const char *const cls[] = {"writes", "purges"};
    for (size_t i = 0; i < u->n_csp; i++)
        for (int c = 0; c < 2; c++) {
            bool first = true; /* a CSP with two tokens (a rotation) is counted on its first */
            for (size_t k = 0; k < i; k++)
                first &= strcmp(u->csp_tokens[k].identity, u->csp_tokens[i].identity) != 0;
            if (!first)
                continue;
            char labels[200];
            snprintf(labels, sizeof labels, "csp=\"%s\",class=\"%s\"", u->csp_tokens[i].identity, cls[c]);
            u->csp_limits[i].m_limited[c] =
                metrics_series(u->metrics, "cdni_csp_rate_limited_total", labels, "counter",
                               "CSP-API writes and purges refused with 429 for a CSP's rate limit");
        }
}

static bool id_or_404(http_req *r, const char *id)
{
    if (mi_service_id_ok(id))
        return true;
    http_reply_problem(r, 404, "Not Found", "delivery service ids are 1-64 of [A-Za-z0-9._-]", NULL);
    return false;
}

static void reply_invalid(http_req *r, const jerr *e)
{
    char detail[800];
    snprintf(detail, sizeof detail, "%s: %s", e->path, e->reason);
    http_reply_problem(r, 422, "Invalid delivery service", detail,
                       json_pack("{s:[{s:s, s:s}]}", "errors", "path", e->path, "reason", e->reason));
}

static void on_put(http_req *r, void *ctx)
{
    ucdn *u = ctx;
    const char *id = http_param(r, 0);
    if (!id_or_404(r, id) || csp_over_limit(u, r, CSP_WRITE))
        return;
    size_t len;
    const char *body = http_body(r, &len);
    jerr e = {0};
    json_t *doc = jparse(body, len, SERVICE_MAX_BYTES, &e);
    if (!doc) {
        reply_invalid(r, &e);
        return;
    }
    const char *host = NULL;
    json_t *hm = NULL;
    mi_node *node = NULL;
    if (!jdepth_ok(doc, SERVICE_MAX_DEPTH, "$", &e) || !(node = mi_service_parse(doc, &u->policy, &host, &hm, &e)))
        goto invalid;
    /* the one form hosts are compared, routed and keyed in */
    char chost[262];
    if (url_canon_host(host, strlen(host), true, chost, sizeof chost, NULL) != URL_CANON_OK) {
        jfail(&e, "$.host", "not a host name, IPv4 address or [IPv6] address with an optional port");
        goto invalid;
    }
    if (ucdn_host_reserved(u, chost)) {
        jfail(&e, "$.host", "%s is the address of a gateway, a peer CDN or a surrogate: it names no content", chost);
        goto invalid;
    }
    host = chost;
    const char *if_match = http_header(r, "If-Match");
    char im[32] = "";
    if (if_match) { /* our ETags are "v<version>" */
        const char *p = strchr(if_match, 'v');
        snprintf(im, sizeof im, "%lld", p ? atoll(p + 1) : -1);
    }
    long long version = 0;
    char detail[512] = "";
    svc_status st = ucdn_service_put(u, http_identity(r), id, host, hm, if_match ? im : NULL,
                                     &version, detail, sizeof detail);
    json_decref(hm);
    mi_node_free(node);
    json_t *answer = json_pack("{s:s, s:s, s:I}", "id", id, "host", host, "version", (json_int_t)version);
    json_decref(doc); /* host pointed into it */
    host = json_string_value(json_object_get(answer, "host"));
    char etag[40], loc[128];
    snprintf(etag, sizeof etag, "\"v%lld\"", version);
    snprintf(loc, sizeof loc, "/csp/v1/services/%s", id);
    switch (st) {
    case SVC_OK:
    case SVC_CREATED:
        log_kv(LOG_INFO, "delivery service published", "id", id, "host", host, "csp", http_identity(r), NULL);
        http_add_header(r, "ETag", etag);
        if (st == SVC_CREATED)
            http_add_header(r, "Location", loc);
        http_reply_json(r, st == SVC_CREATED ? 201 : 200, NULL, answer);
        return;
    case SVC_CONFLICT:
        json_decref(answer);
        http_reply_problem(r, 409, "Conflict", detail, NULL);
        return;
    case SVC_PRECONDITION:
        json_decref(answer);
        http_reply_problem(r, 412, "Precondition Failed", detail, NULL);
        return;
    case SVC_NOT_DURABLE:
        json_decref(answer);
        csp_reply_not_durable(r);
        return;
    default:
        json_decref(answer);
        csp_reply_down(r);
        return;
    }
invalid:
    json_decref(hm);
    mi_node_free(node);
    json_decref(doc);
    reply_invalid(r, &e);
}

/* The record named by the {id} of the path, if it exists and belongs to
 * the caller; otherwise a reply has been sent and NULL is returned. */
static json_t *owned_record(ucdn *u, http_req *r)
{
    const char *id = http_param(r, 0);
    if (!id_or_404(r, id))
        return NULL;
    svc_status st;
    json_t *rec = ucdn_service_get(u, http_identity(r), id, &st);
    if (st == SVC_DOWN) {
        csp_reply_down(r);
        return NULL;
    }
    if (!rec) { /* ids are the caller's own: another CSP's is not even looked at */
        http_reply_problem(r, 404, "Not Found", "no such delivery service", NULL);
        return NULL;
    }
    return rec;
}

static void on_get(http_req *r, void *ctx)
{
    json_t *rec = owned_record(ctx, r);
    if (!rec)
        return;
    char etag[40];
    snprintf(etag, sizeof etag, "\"v%lld\"", (long long)json_integer_value(json_object_get(rec, "version")));
    http_add_header(r, "ETag", etag);
    http_reply_json(r, 200, NULL, rec);
}

static void on_delete(http_req *r, void *ctx)
{
    const char *id = http_param(r, 0);
    if (csp_over_limit(ctx, r, CSP_WRITE))
        return;
    json_t *rec = owned_record(ctx, r);
    if (!rec)
        return;
    json_decref(rec);
    long long v;
    svc_status st = ucdn_service_delete(ctx, http_identity(r), id, &v);
    if (st == SVC_OK) {
        log_kv(LOG_INFO, "delivery service withdrawn", "id", id, "csp", http_identity(r), NULL);
        http_reply(r, 204, NULL, "", 0);
    } else if (st == SVC_NOT_FOUND) {
        http_reply_problem(r, 404, "Not Found", "no such delivery service", NULL);
    } else if (st == SVC_NOT_DURABLE) {
        csp_reply_not_durable(r);
    } else {
        csp_reply_down(r);
    }
}

static void on_list(http_req *r, void *ctx)
{
    svc_status st;
    json_t *list = ucdn_service_list(ctx, http_identity(r), &st);
    if (!list) {
        csp_reply_down(r);
        return;
    }
    http_reply_json(r, 200, NULL, list);
}

static void on_versions(http_req *r, void *ctx)
{
    const char *id = http_param(r, 0);
    json_t *rec = owned_record(ctx, r);
    if (!rec)
        return;
    json_decref(rec);
    svc_status st;
    json_t *h = ucdn_service_history(ctx, http_identity(r), id, &st);
    if (!h) {
        csp_reply_down(r);
        return;
    }
    http_reply_json(r, 200, NULL, h);
}

void csp_api_routes(ucdn *u, http_routes *out)
{
    http_routes_add(out, (http_route){"GET", "/csp/v1/services", on_list, u, false});
    http_routes_add(out, (http_route){"PUT", "/csp/v1/services/{id}", on_put, u, false});
    http_routes_add(out, (http_route){"GET", "/csp/v1/services/{id}", on_get, u, false});
    http_routes_add(out, (http_route){"DELETE", "/csp/v1/services/{id}", on_delete, u, false});
    http_routes_add(out, (http_route){"GET", "/csp/v1/services/{id}/versions", on_versions, u, false});
}
