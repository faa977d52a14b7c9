/* Manifest rewrite policy. See rewrite.h. */
#include "manifest/rewrite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/url.h"

/* Length of the "scheme://authority" of an absolute http(s) URI, or 0;
 * the host (no userinfo, no port) at *host_off, *host_len. One pass. */
static size_t origin_len(const char *u, size_t n, size_t *host_off, size_t *host_len)
{
    size_t s;
    if (n > 7 && (u[0] | 0x20) == 'h' && strncasecmp(u, "http", 4) == 0) {
        if (u[4] == ':' && u[5] == '/' && u[6] == '/')
            s = 7;
        else if (n > 8 && (u[4] | 0x20) == 's' && u[5] == ':' && u[6] == '/' && u[7] == '/')
            s = 8;
        else
            return 0;
    } else {
        return 0;
    }
    size_t h = s, colon = 0, e = s;
    bool bracket = false;
    for (; e < n; e++) {
        char c = u[e];
        if (c == '/' || c == '?' || c == '#')
            break;
        if (c == '@') {
            h = e + 1;
            colon = 0;
        } else if (c == '[') {
            bracket = true;
        } else if (c == ']') {
            bracket = false;
            colon = 0;
        } else if (c == ':' && !bracket) {
            colon = e;
        }
    }
    *host_off = h;
    *host_len = (colon > h ? colon : e) - h;
    return e;
}

/* The URI's port (its scheme's default when none is written); u, ol: the
 * URI and its origin length, h, n: its host. */
static unsigned uri_port(const char *u, size_t ol, const char *h, size_t n)
{
    const char *p = h + n, *e = u + ol;
    unsigned v = 0;
    if (p < e && *p == ':' && p + 1 < e) {
        for (p++; p < e && *p >= '0' && *p <= '9' && v < 65536; p++)
            v = v * 10 + (unsigned)(*p - '0');
        return v;
    }
    return (u[4] | 0x20) == 's' ? 443 : 80;
}

/* Is the URI's host one of ours? An entry "host" owns every port of its
 * name; an entry "host:port" only that port (an origin 127.0.0.1:8090 is
 * not a surrogate on 127.0.0.1:9085). */
static bool in_set(const mf_policy *p, const char *u, size_t ol, const char *h, size_t n)
{
    for (size_t i = 0; p->hosts && p->hosts[i]; i++) {
        const char *e = p->hosts[i];
        size_t el = i < MF_HOSTS_CACHED ? p->host_len[i] : strlen(e);
        const char *colon = e[0] == '[' ? (strchr(e, ']') ? strchr(e, ']') + 1 : NULL) : strrchr(e, ':');
        size_t name = colon && *colon == ':' ? (size_t)(colon - e) : el;
        if (name != n || strncasecmp(e, h, n) != 0)
            continue;
        if (name == el || (unsigned)strtoul(e + name + 1, NULL, 10) == uri_port(u, ol, h, n))
            return true;
    }
    return false;
}

static bool has_scheme(const char *u, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = u[i];
        if (c == ':')
            return i > 0;
        if (c == '/' || c == '?' || c == '#')
            return false;
    }
    return false;
}

bool mf_policy_prepare(mf_policy *p)
{
    size_t ho, hl;
    size_t bl = p->base ? strlen(p->base) : 0, tl = p->target ? strlen(p->target) : 0;
    size_t bo = bl ? origin_len(p->base, bl, &ho, &hl) : 0;
    size_t to = tl ? origin_len(p->target, tl, &ho, &hl) : 0;
    /* the target may carry a path prefix ("http://dcdn/video.example.com") */
    if (!bo || !to || (to != tl && (p->target[to] != '/' || p->target[tl - 1] == '/')))
        return false;
    /* the base's directory: path up to its last '/', before any query */
    size_t q = bo;
    while (q < bl && p->base[q] != '?' && p->base[q] != '#')
        q++;
    size_t dir = bo;
    for (size_t i = bo; i < q; i++)
        if (p->base[i] == '/')
            dir = i + 1;
    int w = snprintf(p->target_dir, sizeof p->target_dir, "%s%.*s%s", p->target, (int)(dir - bo), p->base + bo,
                     dir == bo ? "/" : "");
    if (w < 0 || (size_t)w >= sizeof p->target_dir)
        return false;
    p->target_len = tl;
    p->target_dir_len = (size_t)w;
    for (size_t i = 0; p->hosts && p->hosts[i] && i < MF_HOSTS_CACHED; i++)
        p->host_len[i] = strlen(p->hosts[i]);
    return true;
}

static mf_result emit(const mf_policy *p, const char *u, size_t n, buf *out)
{
    if (p->hook)
        return p->hook(p->hook_ud, u, n, out) ? MF_REWRITTEN : MF_FAILED;
    buf_add(out, u, n);
    return MF_REWRITTEN;
}

mf_result mf_rewrite_uri(const mf_policy *p, const char *u, size_t n, buf *out)
{
    size_t ho, hl, ol = origin_len(u, n, &ho, &hl);
    if (ol) {
        if (!in_set(p, u, ol, u + ho, hl))
            return MF_KEPT; /* not ours to touch */
        if (!p->hook) { /* straight into the output */
            buf_add(out, p->target, p->target_len);
            buf_add(out, u + ol, n - ol);
            return MF_REWRITTEN;
        }
        size_t fl = p->target_len + n - ol;
        char stack[4096], *fin = fl <= sizeof stack ? stack : malloc(fl);
        if (!fin)
            return MF_FAILED;
        memcpy(fin, p->target, p->target_len);
        memcpy(fin + p->target_len, u + ol, n - ol);
        mf_result r = emit(p, fin, fl, out);
        if (fin != stack)
            free(fin);
        return r;
    }
    if (n == 0 || has_scheme(u, n) || (n >= 2 && u[0] == '/' && u[1] == '/'))
        return MF_KEPT; /* data:, skd:, a scheme-relative reference */
    if (!p->absolutize)
        return p->hook ? emit(p, u, n, out) : MF_KEPT;
    /* the common case: "seg_1.ts", "720p/index.m3u8" - target dir + ref */
    bool simple = u[0] != '/' && u[0] != '.' && u[0] != '?' && u[0] != '#';
    char stack[4096];
    if (simple && p->target_dir_len + n < sizeof stack) {
        memcpy(stack, p->target_dir, p->target_dir_len);
        memcpy(stack + p->target_dir_len, u, n);
        return emit(p, stack, p->target_dir_len + n, out);
    }
    char *abs = NULL;
    if (url_resolve(p->base, strlen(p->base), u, n, &abs) != URL_OK)
        return MF_KEPT; /* leave what we cannot read as it was */
    size_t al = strlen(abs), aho, ahl, aol = origin_len(abs, al, &aho, &ahl);
    mf_result r = MF_KEPT;
    if (aol && p->target_len + al - aol < sizeof stack) {
        memcpy(stack, p->target, p->target_len);
        memcpy(stack + p->target_len, abs + aol, al - aol);
        r = emit(p, stack, p->target_len + al - aol, out);
    }
    free(abs);
    return r;
}

bool mf_add_query_param(void *ud, const char *uri, size_t n, buf *out)
{
    const mf_query_param *q = ud;
    const char *hash = memchr(uri, '#', n);
    size_t before = hash ? (size_t)(hash - uri) : n;
    buf_add(out, uri, before);
    buf_adds(out, memchr(uri, '?', before) ? "&" : "?");
    buf_adds(out, q->name);
    buf_adds(out, "=");
    buf_adds(out, q->value);
    buf_add(out, uri + before, n - before);
    return buf_ok(out);
}
