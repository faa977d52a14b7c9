/* Metadata tree walker with an ETag-revalidated document cache. */
#include "interfaces/mi_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/url.h"

typedef struct {
    char *url, *etag, *body;
    bool used; /* reached in the current walk */
} cached_doc;

struct mi_fetcher {
    http_client *http;
    char *auth_header;
    cached_doc *docs;
    size_t n, cap;
};

mi_fetcher *mi_fetcher_new(const char *bearer_token, const http_client_conf *conf)
{
    mi_fetcher *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->http = http_client_new(conf);
    if (bearer_token) {
        size_t n = strlen(bearer_token) + 32;
        f->auth_header = malloc(n);
        if (f->auth_header)
            snprintf(f->auth_header, n, "Authorization: Bearer %s", bearer_token);
    }
    if (!f->http) {
        mi_fetcher_free(f);
        return NULL;
    }
    return f;
}

static void doc_clear(cached_doc *d)
{
    free(d->url);
    free(d->etag);
    free(d->body);
}

void mi_fetcher_free(mi_fetcher *f)
{
    if (!f)
        return;
    http_client_free(f->http);
    free(f->auth_header);
    for (size_t i = 0; i < f->n; i++)
        doc_clear(&f->docs[i]);
    free(f->docs);
    free(f);
}

static cached_doc *find_doc(mi_fetcher *f, const char *url)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->docs[i].url, url) == 0)
            return &f->docs[i];
    return NULL;
}

void mi_fetcher_seed(mi_fetcher *f, const char *url, const char *etag, const char *body)
{
    cached_doc *d = find_doc(f, url);
    if (!d) {
        if (f->n == f->cap) {
            size_t cap = f->cap ? f->cap * 2 : 16;
            cached_doc *nd = realloc(f->docs, cap * sizeof *nd);
            if (!nd)
                return;
            f->docs = nd;
            f->cap = cap;
        }
        d = &f->docs[f->n++];
        memset(d, 0, sizeof *d);
        d->url = strdup(url);
    }
    free(d->etag);
    free(d->body);
    d->etag = strdup(etag ? etag : "");
    d->body = strdup(body);
}

void mi_fetcher_each(const mi_fetcher *f, mi_doc_cb cb, void *ud)
{
    for (size_t i = 0; i < f->n; i++)
        cb(f->docs[i].url, f->docs[i].etag, f->docs[i].body, ud);
}

typedef struct {
    mi_fetcher *f;
    const char *origin; /* scheme://authority of the HostIndex */
    size_t origin_len;
    const mi_policy *pol;
    bool offline, changed;
    char *err;
    size_t errcap;
    size_t fetched;
} walk;

#define MI_MAX_DOCS 100000 /* documents in one tree */

/* Body of url (borrowed from the cache), fetching or revalidating it. */
static const char *get_doc(walk *w, const char *url)
{
    if (++w->fetched > MI_MAX_DOCS) {
        snprintf(w->err, w->errcap, "more than %d linked documents", MI_MAX_DOCS);
        return NULL;
    }
    if (strncmp(url, w->origin, w->origin_len) != 0 ||
        (url[w->origin_len] != '/' && url[w->origin_len] != 0)) {
        snprintf(w->err, w->errcap, "link to another origin refused: %s", url);
        return NULL;
    }
    cached_doc *d = find_doc(w->f, url);
    if (w->offline) {
        if (!d)
            snprintf(w->err, w->errcap, "document not stored: %s", url);
        if (d)
            d->used = true;
        return d ? d->body : NULL;
    }
    char inm[300] = "";
    const char *hdrs[4] = {0};
    size_t nh = 0;
    if (w->f->auth_header)
        hdrs[nh++] = w->f->auth_header;
    hdrs[nh++] = "Accept: application/cdni, application/json";
    if (d && d->etag && *d->etag) {
        snprintf(inm, sizeof inm, "If-None-Match: %s", d->etag);
        hdrs[nh++] = inm;
    }
    http_result res;
    if (http_client_do(w->f->http, "GET", url, hdrs, NULL, 0, &res) != 0) {
        snprintf(w->err, w->errcap, "GET %s: %s", url, res.error);
        http_result_free(&res);
        return NULL;
    }
    if (res.status == 304 && d) {
        http_result_free(&res);
        d->used = true;
        return d->body;
    }
    if (res.status != 200) {
        snprintf(w->err, w->errcap, "GET %s: HTTP %ld", url, res.status);
        http_result_free(&res);
        return NULL;
    }
    if (!d || strcmp(d->body, res.body) != 0)
        w->changed = true;
    mi_fetcher_seed(w->f, url, res.etag, res.body);
    http_result_free(&res);
    d = find_doc(w->f, url);
    d->used = true;
    return d->body;
}

static bool resolve_links(walk *w, mi_node *n, const char *base_url, int depth);

/* Fetch href (relative to base) as a HostMetadata/PathMetadata node. */
static mi_node *fetch_node(walk *w, const char *base_url, const char *href, int depth)
{
    char *abs = NULL;
    if (url_resolve(base_url, strlen(base_url), href, strlen(href), &abs) != URL_OK) {
        snprintf(w->err, w->errcap, "bad link href %s", href);
        return NULL;
    }
    mi_node *n = NULL;
    const char *body = get_doc(w, abs);
    if (body) {
        jerr e = {0};
        n = mi_node_parse(body, strlen(body), w->pol, &e);
        if (!n)
            snprintf(w->err, w->errcap, "%s: %s: %s", abs, e.path, e.reason);
        else if (!resolve_links(w, n, abs, depth + 1)) {
            mi_node_free(n);
            n = NULL;
        }
    }
    free(abs);
    return n;
}

static bool resolve_links(walk *w, mi_node *n, const char *base_url, int depth)
{
    if (depth > MI_MAX_DEPTH) {
        snprintf(w->err, w->errcap, "links nested deeper than %d", MI_MAX_DEPTH);
        return false;
    }
    for (size_t i = 0; i < n->n_paths; i++) {
        mi_path_match *pm = &n->paths[i];
        if (!pm->node && !(pm->node = fetch_node(w, base_url, pm->link.href, depth)))
            return false;
        if (pm->node && pm->link.href == NULL && !resolve_links(w, pm->node, base_url, depth + 1))
            return false;
    }
    return true;
}

mi_host_index *mi_fetch_tree(mi_fetcher *f, const char *index_url, const mi_policy *pol,
                             bool offline, bool *changed, char *err, size_t errcap)
{
    url_ref u;
    size_t ulen = strlen(index_url);
    if (url_parse(index_url, ulen, &u) != URL_OK || !u.scheme.present || !u.authority) {
        snprintf(err, errcap, "bad HostIndex URL %s", index_url);
        return NULL;
    }
    walk w = {f, index_url, u.path.off, pol, offline, false, err, errcap, 0};
    for (size_t i = 0; i < f->n; i++)
        f->docs[i].used = false;
    const char *body = get_doc(&w, index_url);
    if (!body)
        return NULL;
    jerr e = {0};
    mi_host_index *x = mi_host_index_parse(body, strlen(body), pol, &e);
    if (!x) {
        snprintf(err, errcap, "%s: %s: %s", index_url, e.path, e.reason);
        return NULL;
    }
    for (size_t i = 0; i < x->n_hosts; i++) {
        mi_host_match *m = &x->hosts[i];
        if (!m->node)
            m->node = fetch_node(&w, index_url, m->link.href, 0);
        else if (!resolve_links(&w, m->node, index_url, 0)) {
            mi_host_index_free(x);
            return NULL;
        }
        if (!m->node) {
            mi_host_index_free(x);
            return NULL;
        }
    }
    if (!mi_index_build(x)) {
        snprintf(err, errcap, "out of memory indexing metadata");
        mi_host_index_free(x);
        return NULL;
    }
    /* Forget documents the tree no longer links to; losing one is a change. */
    for (size_t i = 0; i < f->n;) {
        if (!f->docs[i].used) {
            doc_clear(&f->docs[i]);
            f->docs[i] = f->docs[--f->n];
            w.changed = true;
        } else {
            i++;
        }
    }
    *changed = w.changed;
    return x;
}
