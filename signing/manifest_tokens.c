/* Tokens on the URIs of a manifest. See manifest_tokens.h. */
#include "signing/manifest_tokens.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/url.h"

void mt_free(mt_tokens *t)
{
    for (size_t i = 0; i < t->n_scopes; i++) {
        free(t->scope[i].dir);
        free(t->scope[i].token);
    }
    t->n_scopes = 0;
}

static bool is_http(const char *u, size_t n)
{
    return (n > 7 && strncasecmp(u, "http://", 7) == 0) || (n > 8 && strncasecmp(u, "https://", 8) == 0);
}

/* The length of u's directory: up to and with its last '/' before any query. */
static size_t dir_len(const char *u)
{
    const char *sch = strstr(u, "://");
    size_t start = sch ? (size_t)(sch - u) + 3 : 0, q = start + strcspn(u + start, "?#"), d = 0;
    for (size_t i = start; i < q; i++)
        if (u[i] == '/')
            d = i + 1;
    return d;
}

/* The token for the absolute URI abs; NULL on failure. *owned: the caller frees it. */
static const char *token_for(mt_tokens *t, const char *abs, char **owned)
{
    *owned = NULL;
    const char *uc = json_string_value(json_object_get(t->hr->claims, "cdniuc"));
    if (t->hr->token && uc && us_container_covers(uc, abs)) {
        t->reused++;
        return t->hr->token;
    }
    for (size_t i = 0; i < t->n_scopes; i++)
        if (strncmp(abs, t->scope[i].dir, t->scope[i].len) == 0)
            return t->scope[i].token;
    /* under the manifest's own directory: one token for all of it */
    const char *loc = abs;
    size_t dl = dir_len(abs), bd = t->base ? dir_len(t->base) : 0;
    if (bd && strncmp(abs, t->base, bd) == 0) {
        loc = t->base;
        dl = bd;
    }
    if (!dl)
        return NULL;
    char *tok = hop_next_token(t->conf, t->key, t->alg, t->profile, t->hr, t->aud, loc, true, t->now);
    if (!tok)
        return NULL;
    t->minted++;
    if (t->n_scopes == MT_SCOPES) { /* an odd manifest of many directories: one token each */
        *owned = tok;
        return tok;
    }
    char *dir = strndup(loc, dl);
    if (!dir) {
        *owned = tok;
        return tok;
    }
    t->scope[t->n_scopes].dir = dir;
    t->scope[t->n_scopes].len = dl;
    t->scope[t->n_scopes].token = tok;
    t->n_scopes++;
    return tok;
}

bool mt_hook(void *ud, const char *uri, size_t n, buf *out)
{
    mt_tokens *t = ud;
    const char *hash = memchr(uri, '#', n);
    size_t before = hash ? (size_t)(hash - uri) : n;
    /* the URI as the player will ask for it: absolute, without a fragment */
    char stack[4096], *heap = NULL;
    const char *abs = NULL;
    if (is_http(uri, before)) {
        if (before < sizeof stack) {
            memcpy(stack, uri, before);
            stack[before] = 0;
            abs = stack;
        } else {
            abs = heap = strndup(uri, before);
        }
    } else if (t->base && url_resolve(t->base, strlen(t->base), uri, before, &heap) == URL_OK) {
        abs = heap;
    }
    char *owned = NULL;
    const char *tok = abs ? token_for(t, abs, &owned) : NULL;
    free(heap);
    if (!tok)
        return false;
    const char *pkg = t->hr->package[0] ? t->hr->package : US_DEFAULT_PACKAGE;
    mf_query_param qp = {pkg, tok};
    bool ok = mf_add_query_param(&qp, uri, n, out);
    free(owned);
    return ok;
}

bool mt_rewrite_manifest(const mt_rewrite *q, const char *src, size_t len, buf *out, mf_report *rep)
{
    mf_policy p = {.base = q->base, .hosts = q->hosts, .target = q->target, .absolutize = q->absolutize};
    bool ok = mf_policy_prepare(&p);
    /* one token for the manifest's directory at the target, another for each URI outside it */
    char scope[sizeof p.target_dir + 2];
    snprintf(scope, sizeof scope, "%sx", p.target_dir);
    mt_tokens mt = {.conf = q->conf, .key = q->key, .alg = q->alg, .profile = q->profile, .hr = q->hr,
                    .aud = q->aud, .base = q->scope_base ? q->scope_base : scope, .now = q->now};
    if (q->sign) {
        p.hook = mt_hook;
        p.hook_ud = &mt;
    }
    buf_init(out, len + len / 4 + 1024, q->max_bytes * 2);
    ok = ok && mf_rewrite(src, len, q->max_bytes, &p, out, rep);
    mt_free(&mt);
    if (!ok)
        buf_free(out);
    return ok;
}
