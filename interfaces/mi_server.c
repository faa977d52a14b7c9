/* MI document catalog and its HTTP handlers. See mi_server.h. */
#include "interfaces/mi_server.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *path;
    char *body;
    size_t len;
    const char *media_type;
    char etag[40];
} mi_doc;

struct mi_catalog {
    mi_doc *docs;
    size_t n, cap;
    unsigned long long version;
};

bool mi_service_id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)id[i]) && !strchr("._-", id[i]))
            return false;
    return true;
}

static bool add_doc(mi_catalog *c, const char *path, json_t *v, const char *media_type)
{
    char *body = json_dumps(v, JSON_COMPACT);
    if (!body)
        return false;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        mi_doc *nd = realloc(c->docs, cap * sizeof *nd);
        if (!nd) {
            free(body);
            return false;
        }
        c->docs = nd;
        c->cap = cap;
    }
    mi_doc *d = &c->docs[c->n++];
    d->path = strdup(path);
    d->body = body;
    d->len = strlen(body);
    d->media_type = media_type;
    unsigned char md[32];
    unsigned int ml;
    EVP_Digest(body, d->len, md, &ml, EVP_sha256(), NULL);
    d->etag[0] = '"';
    for (int i = 0; i < 16; i++)
        snprintf(d->etag + 1 + 2 * i, 3, "%02x", md[i]);
    strcat(d->etag, "\"");
    return d->path != NULL;
}

static json_t *link_obj(const char *type, const char *base, const char *path)
{
    char href[2048];
    snprintf(href, sizeof href, "%s%s", base, path);
    return json_pack("{s:s, s:s}", "type", type, "href", href);
}

static int by_id(const void *a, const void *b)
{
    return strcmp(((const mi_service *)a)->id, ((const mi_service *)b)->id);
}

static int by_path(const void *a, const void *b)
{
    return strcmp(((const mi_doc *)a)->path, ((const mi_doc *)b)->path);
}

mi_catalog *mi_catalog_build(const mi_service *svcs, size_t n, const char *base_url,
                             bool link_paths, unsigned long long version)
{
    mi_catalog *c = calloc(1, sizeof *c);
    mi_service *sorted = calloc(n + 1, sizeof *sorted);
    if (!c || !sorted)
        goto fail;
    c->version = version;
    memcpy(sorted, svcs, n * sizeof *svcs);
    qsort(sorted, n, sizeof *sorted, by_id); /* stable documents, stable ETags */
    json_t *hosts = json_array();
    for (size_t i = 0; i < n; i++) {
        char hpath[256];
        snprintf(hpath, sizeof hpath, MI_PATH_PREFIX "/hosts/%s", sorted[i].id);
        json_array_append_new(hosts, json_pack("{s:s, s:o}", "host", sorted[i].host, "host-metadata",
                                               link_obj("MI.HostMetadata", base_url, hpath)));
        json_t *hm = json_deep_copy(sorted[i].metadata);
        json_t *paths = json_object_get(hm, "paths");
        size_t k;
        json_t *pm;
        bool ok = true;
        if (link_paths)
            json_array_foreach(paths, k, pm)
            {
                char ppath[300];
                snprintf(ppath, sizeof ppath, "%s/paths/%zu", hpath, k);
                ok = ok && add_doc(c, ppath, json_object_get(pm, "path-metadata"),
                                   "application/cdni; ptype=MI.PathMetadata");
                json_object_set_new(pm, "path-metadata", link_obj("MI.PathMetadata", base_url, ppath));
            }
        ok = ok && add_doc(c, hpath, hm, "application/cdni; ptype=MI.HostMetadata");
        json_decref(hm);
        if (!ok) {
            json_decref(hosts);
            goto fail;
        }
    }
    json_t *index = json_pack("{s:o}", "hosts", hosts);
    bool ok = add_doc(c, MI_PATH_PREFIX "/hostindex", index, "application/cdni; ptype=MI.HostIndex");
    json_decref(index);
    if (!ok)
        goto fail;
    free(sorted);
    qsort(c->docs, c->n, sizeof *c->docs, by_path); /* for mi_catalog_get */
    return c;
fail:
    free(sorted);
    mi_catalog_free(c);
    return NULL;
}

void mi_catalog_free(void *p)
{
    mi_catalog *c = p;
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++) {
        free(c->docs[i].path);
        free(c->docs[i].body);
    }
    free(c->docs);
    free(c);
}

unsigned long long mi_catalog_version(const mi_catalog *c) { return c->version; }
size_t mi_catalog_size(const mi_catalog *c) { return c->n; }

bool mi_catalog_get(const mi_catalog *c, const char *path, const char **body, size_t *len,
                    const char **media_type, const char **etag)
{
    mi_doc key = {.path = (char *)path};
    const mi_doc *d = bsearch(&key, c->docs, c->n, sizeof *c->docs, by_path);
    if (!d)
        return false;
    *body = d->body;
    *len = d->len;
    *media_type = d->media_type;
    *etag = d->etag;
    return true;
}

/* Does an If-None-Match header name this ETag (or "*")? */
static bool etag_matches(const char *inm, const char *etag)
{
    if (!inm)
        return false;
    size_t el = strlen(etag);
    for (const char *p = inm; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        if (*p == '*')
            return true;
        if (strncmp(p, "W/", 2) == 0)
            p += 2;
        if (strncmp(p, etag, el) == 0)
            return true;
        while (*p && *p != ',')
            p++;
    }
    return false;
}

static void on_document(http_req *r, void *vctx)
{
    mi_server_ctx *ctx = vctx;
    snap_ref *ref;
    mi_catalog *c = snapshot_acquire(ctx->catalog, &ref);
    if (!c) {
        http_add_header(r, "Retry-After", "1");
        http_reply_problem(r, 503, "Service Unavailable", "metadata not loaded yet", NULL);
        return;
    }
    const char *body, *mt, *etag;
    size_t len;
    if (!mi_catalog_get(c, http_path(r), &body, &len, &mt, &etag)) {
        snapshot_release(ctx->catalog, ref);
        http_reply_problem(r, 404, "Not Found", "no such metadata object", NULL);
        return;
    }
    char cc[48];
    snprintf(cc, sizeof cc, "max-age=%d", ctx->max_age_s);
    http_add_header(r, "ETag", etag);
    http_add_header(r, "Cache-Control", cc);
    if (etag_matches(http_header(r, "If-None-Match"), etag))
        http_reply(r, 304, NULL, "", 0);
    else
        http_reply(r, 200, mt, body, len);
    snapshot_release(ctx->catalog, ref);
}

void mi_server_routes(mi_server_ctx *ctx, http_routes *out)
{
    http_routes_add(out, (http_route){"GET", MI_PATH_PREFIX "/hostindex", on_document, ctx, false});
    http_routes_add(out, (http_route){"GET", MI_PATH_PREFIX "/hosts/{id}", on_document, ctx, false});
    http_routes_add(out, (http_route){"GET", MI_PATH_PREFIX "/hosts/{id}/paths/{n}", on_document, ctx, false});
}

/* A Link inside a CSP document would make us serve what we never saw. */
static bool has_links(const mi_node *n, char *path, size_t cap)
{
    for (size_t i = 0; i < n->n_paths; i++) {
        size_t len = strlen(path);
        snprintf(path + len, cap - len, ".paths[%zu].path-metadata", i);
        if (n->paths[i].link.href || (n->paths[i].node && has_links(n->paths[i].node, path, cap)))
            return true;
        path[len] = 0;
    }
    return false;
}

mi_node *mi_service_parse(json_t *doc, const mi_policy *pol, const char **host, json_t **hm,
                          jerr *e)
{
    static const char *const keys[] = {"host", "metadata", "paths", NULL};
    *hm = NULL;
    if (!json_is_object(doc)) {
        jfail(e, "$", "expected an object");
        return NULL;
    }
    json_t *md = NULL;
    if (!jonly(doc, "$", keys, e) || !jget_str(doc, "host", "$", true, host, e) ||
        !jget_arr(doc, "metadata", "$", true, &md, e))
        return NULL;
    /* Check the host the way the HostIndex will carry it. */
    json_t *probe = json_pack("{s:[{s:s, s:{s:[]}}]}", "hosts", "host", *host, "host-metadata", "metadata");
    mi_host_index *hx = mi_host_index_from_json(probe, "$", pol, NULL);
    json_decref(probe);
    if (!hx) {
        jfail(e, "$.host", "not a host name or address with optional port");
        return NULL;
    }
    mi_host_index_free(hx);
    json_t *node_json = json_pack("{s:O}", "metadata", md);
    if (json_object_get(doc, "paths"))
        json_object_set(node_json, "paths", json_object_get(doc, "paths"));
    mi_node *n = mi_node_from_json(node_json, "$", pol, e);
    char lpath[JPATH_MAX] = "$";
    if (n && has_links(n, lpath, sizeof lpath)) {
        jfail(e, lpath, "Links are not accepted from CSPs: give the PathMetadata inline");
        mi_node_free(n);
        n = NULL;
    }
    if (!n)
        json_decref(node_json);
    else
        *hm = node_json;
    return n;
}
