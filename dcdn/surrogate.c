/* dcdn surrogate role: delivery of delegated content to end users.
 *
 * A request: metadata for Host + target (refused if a mandatory-to-enforce
 * object is not understood), authorization (URI signing or session cookie,
 * trusting the upstream's keys and the tokens our router minted), the ACLs
 * (location, time window, protocol), then the cache: a fresh object is
 * served from memory or with sendfile; a stale one is revalidated; a miss
 * joins or starts an acquisition and streams from it. A source that fails
 * leaves a stale object usable within its grace (stale-if-error), else
 * 502/504 with a problem body.
 *
 * Every response ends in one delivery record handed to d->on_delivery
 * (times, bytes, status, cache outcome, CCID, session, auth method): the
 * CDNI logging producer's input. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/gz.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/url.h"
#include "dcdn/dcdn.h"
#include "manifest/manifest.h"
#include "signing/authorize.h"
#include "signing/manifest_tokens.h"

/* A manifest answered with a token on every URI (signing/manifest_tokens.h):
 * the request's authorization, and the URL the manifest answers for. */
typedef struct {
    hop_result hr;
    char scheme[8];
    char host[300];
    char base[URL_MAX_LEN + 320];
} signer;

static void signer_free(signer *sg)
{
    if (sg) {
        hop_result_free(&sg->hr);
        free(sg);
    }
}

/* What a parked request keeps until its fill has an answer. */
typedef struct {
    cache_fill *fill;
    cache_obj *stale;     /* the object being revalidated or refreshed, if any */
    char *range;          /* the client's Range */
    char *key;
    bool private_range;
    signer *sg;           /* a manifest to answer with tokens, or NULL */
    delivery_record *rec; /* borrowed: freed by the completion hook */
    bool reacquired;      /* after a 304 to an object purged since (once) */
} pending;

typedef struct {
    cache_fill *fill;
    uint64_t base, limit;
} stream_view;

static long long view_read(void *ud, http_stream *s, uint64_t pos, char *out, size_t max)
{
    stream_view *v = ud;
    if (pos >= v->limit)
        return HTTP_STREAM_END;
    if (max > v->limit - pos)
        max = (size_t)(v->limit - pos);
    return cache_fill_read(v->fill, s, v->base + pos, out, max);
}

static void view_free(void *ud)
{
    stream_view *v = ud;
    cache_fill_unref(v->fill);
    free(v);
}

static void pending_free(pending *p)
{
    if (!p)
        return;
    cache_fill_unref(p->fill);
    cache_obj_unref(p->stale);
    free(p->range);
    free(p->key);
    signer_free(p->sg);
    free(p);
}

/* --- delivery records ------------------------------------------------------------------ */

/* The default consumer until the logging producer takes over: one JSON
 * line per delivery when surrogate.access_log is set. */
void surrogate_access_log(void *ud, const delivery_record *r)
{
    char st[8], by[24], ms[24];
    snprintf(st, sizeof st, "%d", r->status);
    snprintf(by, sizeof by, "%llu", (unsigned long long)r->bytes);
    snprintf(ms, sizeof ms, "%lld", r->end_ms - r->start_ms);
    log_kv(LOG_INFO, "delivery", "client", r->client, "method", r->method, "host", r->host, "uri", r->uri,
           "status", st, "bytes", by, "ms", ms, "cache", r->cache, "ccid", r->ccid, "sid", r->sid, "auth",
           r->auth, "completed", r->completed ? "true" : "false", NULL);
}

/* --- answers ----------------------------------------------------------------------------- */

static void replay_headers(http_req *r, const char *lines)
{
    for (const char *p = lines; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        const char *colon = memchr(p, ':', n);
        if (colon) {
            char name[64], val[1100];
            size_t kn = (size_t)(colon - p);
            if (kn < sizeof name && n - kn - 2 < sizeof val && n >= kn + 2) {
                memcpy(name, p, kn);
                name[kn] = 0;
                memcpy(val, colon + 2, n - kn - 2);
                val[n - kn - 2] = 0;
                http_add_header(r, name, val);
            }
        }
        p = nl ? nl + 1 : p + n;
    }
}

/* Bodies from disk at least this long are mapped once and then sent like
 * memory: libmicrohttpd's sendfile path sends 128 KiB per event-loop turn,
 * which measured 0.43x nginx on 1 MiB segments (mapped: see make bench). */
#define MAP_MIN_BYTES (64 * 1024)

/* Headers a manifest with tokens does not repeat: its body is not the
 * source's, and no shared cache may keep it. */
static bool source_only(const char *line, size_t n)
{
    static const char *const names[] = {"ETag:", "Last-Modified:", "Cache-Control:", "Expires:",
                                        "Content-Encoding:", "Content-Range:"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (n >= strlen(names[i]) && strncasecmp(line, names[i], strlen(names[i])) == 0)
            return true;
    return false;
}

/* A manifest (whole body in memory, the source's status 200) answered
 * with a token on every URI; the body is taken. False: not a manifest
 * after all (the caller serves it as it is; body given back). */
static bool serve_signed(dcdn *d, http_req *r, signer *sg, char **body, size_t len, const char *ctype,
                         const char *headers, const char *outcome, long long age, delivery_record *rec)
{
    const char *src = *body;
    size_t sl = len;
    buf plain;
    buf_init(&plain, 0, MANIFEST_MAX_BYTES);
    if (gz_is_gzip(src, sl)) { /* stored as the source sent it */
        const char *why;
        if (!gz_inflate(src, sl, MANIFEST_MAX_BYTES, &plain, &why)) {
            buf_free(&plain);
            return false;
        }
        src = plain.data;
        sl = plain.len;
    }
    if (mf_detect(src, sl) == MF_UNKNOWN) {
        buf_free(&plain);
        return false;
    }
    char origin[sizeof sg->host + 16];
    snprintf(origin, sizeof origin, "%s://%s", sg->scheme, sg->host);
    const char *hosts[] = {sg->host, NULL};
    mt_rewrite q = {.conf = &d->us.conf, .hr = &sg->hr, .aud = d->cdn_id, .sign = true, .base = sg->base,
                    .hosts = hosts, .target = origin, .scope_base = sg->base, .now = rec->start_ms / 1000,
                    .max_bytes = MANIFEST_MAX_BYTES};
    buf out;
    mf_report rep = {0};
    bool ok = mt_rewrite_manifest(&q, src, sl, &out, &rep);
    buf_free(&plain);
    snprintf(rec->cache, sizeof rec->cache, "%s", outcome);
    if (!ok) {
        buf_free(&out);
        log_kv(LOG_WARN, "manifest: tokens cannot be added", "url", sg->base, "reason",
               rep.error ? rep.error : "signing", NULL);
        http_reply_problem(r, 502, "Bad Gateway", "the manifest cannot be served with tokens", NULL);
        return true;
    }
    for (const char *l = headers; l && *l;) {
        const char *nl = strchr(l, '\n');
        size_t n = nl ? (size_t)(nl - l) : strlen(l);
        const char *colon = memchr(l, ':', n);
        if (colon && !source_only(l, n) && (size_t)(colon - l) < 64 && n - (size_t)(colon - l) < 1100) {
            char name[64], val[1100];
            size_t kn = (size_t)(colon - l);
            memcpy(name, l, kn);
            name[kn] = 0;
            size_t vs = kn + 1 + (kn + 1 < n && l[kn + 1] == ' ');
            memcpy(val, l + vs, n - vs);
            val[n - vs] = 0;
            http_add_header(r, name, val);
        }
        l = nl ? nl + 1 : l + n;
    }
    char a[24];
    snprintf(a, sizeof a, "%lld", age);
    http_add_header(r, "Cache-Control", "private, no-store");
    http_add_header(r, "Age", a);
    http_add_header(r, "X-Cache", outcome);
    metric_add(d->m_served[strcmp(outcome, "HIT") == 0 ? 0 : strcmp(outcome, "STALE") == 0 ? 2 : 1], 1);
    metric_add(d->m_signed_manifests, 1);
    free(*body);
    *body = NULL;
    size_t ol;
    char *o = buf_take(&out, &ol);
    http_reply_take(r, 200, ctype ? ctype : rep.kind == MF_DASH ? "application/dash+xml"
                                                                 : "application/vnd.apple.mpegurl",
                    o, ol);
    return true;
}

/* A stored manifest answered with tokens; false: serve it as it is. */
static bool serve_object_signed(dcdn *d, http_req *r, signer *sg, cache_view *v, const char *outcome,
                                delivery_record *rec)
{
    if (v->status != 200 || v->size > MANIFEST_MAX_BYTES)
        return false;
    char *b = malloc(v->size + 1);
    if (!b)
        return false;
    bool got;
    if (v->mem) {
        memcpy(b, v->mem->data, v->size);
        got = true;
    } else {
        int fd = open(v->path, O_RDONLY | O_CLOEXEC);
        got = fd >= 0 && pread(fd, b, v->size, (off_t)v->body_offset) == (ssize_t)v->size;
        if (fd >= 0)
            close(fd);
    }
    bool done = got && serve_signed(d, r, sg, &b, v->size, v->content_type, v->headers, outcome, v->age, rec);
    free(b);
    return done;
}

/* A stored object; false if its file went away meanwhile (evicted). */
static bool serve_object(dcdn *d, http_req *r, cache_obj *o, cache_view *v, const char *outcome,
                         delivery_record *rec, signer *sg)
{
    if (sg && serve_object_signed(d, r, sg, v, outcome, rec))
        return true;
    char age[24];
    snprintf(age, sizeof age, "%lld", v->age);
    if (v->status == 200 && hc_not_modified(http_header(r, "If-None-Match"), http_header(r, "If-Modified-Since"),
                                            v->etag, v->last_modified)) {
        replay_headers(r, v->headers);
        http_add_header(r, "Age", age);
        http_add_header(r, "X-Cache", outcome);
        snprintf(rec->cache, sizeof rec->cache, "%s", outcome);
        http_reply(r, 304, NULL, NULL, 0);
        return true;
    }
    uint64_t first = 0, len = v->size;
    int status = v->status;
    char crange[96] = "";
    const char *rh = http_header(r, "Range");
    if (status == 200 && rh) {
        hc_range_status rs = hc_range(rh, strlen(rh), v->size, &first, &len);
        if (rs == HC_RANGE_UNSATISFIABLE) {
            snprintf(crange, sizeof crange, "bytes */%llu", (unsigned long long)v->size);
            http_add_header(r, "Content-Range", crange);
            http_reply_problem(r, 416, "Range Not Satisfiable", "the range is outside the object", NULL);
            return true;
        }
        if (rs == HC_RANGE_OK) {
            status = 206;
            snprintf(crange, sizeof crange, "bytes %llu-%llu/%llu", (unsigned long long)first,
                     (unsigned long long)(first + len - 1), (unsigned long long)v->size);
        } else {
            first = 0;
            len = v->size;
        }
    }
    int fd = -1;
    if (!v->mem && len >= MAP_MIN_BYTES)
        v->mem = cache_map(d->cache, o, v); /* the view now holds that reference */
    if (!v->mem) {
        fd = open(v->path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return false;
    }
    replay_headers(r, v->headers);
    if (crange[0])
        http_add_header(r, "Content-Range", crange);
    if (v->status == 200)
        http_add_header(r, "Accept-Ranges", "bytes");
    http_add_header(r, "Age", age);
    http_add_header(r, "X-Cache", outcome);
    snprintf(rec->cache, sizeof rec->cache, "%s", outcome);
    if (v->mem) {
        atomic_fetch_add(&v->mem->refs, 1);
        http_reply_shared(r, status, v->content_type, v->mem->data + first, (size_t)len, cache_blob_unref, v->mem);
    } else {
        http_reply_fd(r, status, v->content_type, fd, v->body_offset + first, len);
    }
    metric_add(d->m_served[strcmp(outcome, "HIT") == 0 ? 0 : strcmp(outcome, "STALE") == 0 ? 2 : 1], 1);
    return true;
}

/* The head of a fill is known: answer from it. True: r is parked (a
 * manifest waiting to be whole) and p stays. */
static bool serve_fill(dcdn *d, http_req *r, pending *p, const fill_head *h, delivery_record *rec)
{
    const char *outcome = p->stale ? "REFRESH" : p->private_range ? "BYPASS" : h->stored ? "MISS" : "BYPASS";
    if (p->sg && h->status == 200 && !p->private_range) { /* a manifest: whole, then with tokens */
        char *body = NULL;
        long long n = cache_fill_body(p->fill, r, p, MANIFEST_MAX_BYTES, &body);
        if (n == -2)
            return true; /* parked until the body is complete */
        bool done = n >= 0 && serve_signed(d, r, p->sg, &body, (size_t)n, h->content_type, h->headers, outcome, 0, rec);
        free(body);
        if (done)
            return false;
        if (n < 0) {
            snprintf(rec->cache, sizeof rec->cache, "ERROR");
            http_reply_problem(r, 502, "Bad Gateway", "the manifest cannot be acquired whole", NULL);
            return false;
        }
    }
    uint64_t first = 0, len = h->length;
    int status = h->status;
    char crange[96] = "";
    if (!p->private_range && p->range && status == 200 && h->length != HTTP_LEN_UNKNOWN) {
        /* a range from byte 0 on a miss: the whole object is filled, the range answered */
        if (hc_range(p->range, strlen(p->range), h->length, &first, &len) == HC_RANGE_OK) {
            status = 206;
            snprintf(crange, sizeof crange, "bytes %llu-%llu/%llu", (unsigned long long)first,
                     (unsigned long long)(first + len - 1), (unsigned long long)h->length);
        } else {
            first = 0;
            len = h->length;
        }
    }
    stream_view *sv = malloc(sizeof *sv);
    if (!sv) {
        http_reply_problem(r, 503, "Service Unavailable", "out of memory", NULL);
        return false;
    }
    sv->fill = p->fill;
    p->fill = NULL; /* the stream's now */
    sv->base = first;
    sv->limit = len == HTTP_LEN_UNKNOWN ? UINT64_MAX : len;
    replay_headers(r, h->headers);
    if (crange[0])
        http_add_header(r, "Content-Range", crange);
    if (status == 200 && h->length != HTTP_LEN_UNKNOWN)
        http_add_header(r, "Accept-Ranges", "bytes");
    http_add_header(r, "X-Cache", outcome);
    snprintf(rec->cache, sizeof rec->cache, "%s", outcome);
    metric_add(d->m_served[1], 1);
    http_reply_stream(r, status, h->content_type, len, view_read, sv, view_free);
    return false;
}

/* --- the request ----------------------------------------------------------------------- */

/* The sources of MI.SourceMetadata, in order; one source's endpoints
 * rotated by the key so equal endpoints share the load. */
static size_t sources_of(const mi_resolution *res, uint64_t kh, const egress_policy *eg, cache_source *out)
{
    size_t n = 0, i, j;
    json_t *s;
    json_array_foreach(json_object_get(mi_effective_value(res, "MI.SourceMetadata"), "sources"), i, s)
    {
        json_t *eps = json_object_get(s, "endpoints");
        size_t ne = json_array_size(eps);
        const char *proto = json_string_value(json_object_get(s, "protocol"));
        json_t *auth = json_object_get(s, "acquisition-auth");
        char hdr[600] = "";
        if (auth) {
            const char *t = json_string_value(json_object_get(auth, "auth-type"));
            json_t *av = json_object_get(auth, "auth-value");
            const char *hn = json_string_value(json_object_get(av, "header-name"));
            const char *hv = json_string_value(json_object_get(av, "header-value"));
            if (!t || strcmp(t, "CDNIGW.HeaderAuth") != 0 || !hn || !hv || !mi_auth_header_ok(hn, hv) ||
                strlen(hn) + strlen(hv) + 3 > sizeof hdr)
                continue; /* an authentication we cannot give: not a usable source */
            if (snprintf(hdr, sizeof hdr, "%s: %s", hn, hv) >= (int)sizeof hdr)
                continue;
        }
        for (j = 0; j < ne && n < CACHE_MAX_SOURCES; j++) {
            const char *ep = json_string_value(json_array_get(eps, (j + kh) % ne));
            if (!ep || strlen(ep) >= sizeof out[n].endpoint)
                continue;
            out[n].tls = proto && strncasecmp(proto, "https", 5) == 0;
            snprintf(out[n].endpoint, sizeof out[n].endpoint, "%s", ep);
            memcpy(out[n].auth_header, hdr, sizeof hdr);
            out[n].egress = eg;
            n++;
        }
    }
    return n;
}

/* What acquiring one request needs, copied out of the metadata (whose
 * snapshot goes back before the cache is asked). */
typedef struct {
    char key[URL_MAX_LEN + 300];
    size_t klen;
    cache_source src[CACHE_MAX_SOURCES];
    size_t nsrc;
    char ccid[256], pid[256];
    const char *up; /* the upstream's id (configuration: outlives the plan) */
} plan;

static bool plan_for(const mi_resolution *res, const upstream *up, const egress_policy *eg, const char *host,
                     const char *target, const char *const *drop, plan *p)
{
    p->up = up->id;
    if (!mi_cache_key(res, target, strlen(target), drop, p->key, sizeof p->key, &p->klen))
        return false;
    p->nsrc = sources_of(res, hash_fnv1a64(p->key, p->klen), eg, p->src);
    const char *ccid = json_string_value(json_object_get(mi_effective_value(res, "MI.Grouping"), "ccid"));
    const char *pid = json_string_value(json_object_get(mi_effective_value(res, "CDNIGW.PurgeIdentifier"), "purge-id"));
    snprintf(p->ccid, sizeof p->ccid, "%s", ccid ? ccid : "");
    snprintf(p->pid, sizeof p->pid, "%s", pid ? pid : "");
    return true;
}

static cache_request plan_request(const plan *p, const char *path_query)
{
    return (cache_request){.key = p->key, .path_query = path_query, .sources = p->src, .n_sources = p->nsrc,
                           .ccid = p->ccid[0] ? p->ccid : NULL, .purge_id = p->pid[0] ? p->pid : NULL,
                           .upstream = p->up};
}

static const char *problem_title(int status)
{
    return status == 504 ? "Gateway Timeout" : status == 503 ? "Service Unavailable" : "Bad Gateway";
}

static void finish(dcdn *d, http_req *r, pending *p, delivery_record *rec)
{
    fill_head h;
    if (cache_fill_head(p->fill, r, p, &h) == FILL_PENDING)
        return; /* parked; we run again when the head is known */
    long long now = wall_ms() / 1000;
    if (h.state == FILL_REVALIDATED) {
        cache_view v;
        cache_obj *o = cache_lookup(d->cache, p->key, strlen(p->key), now, &v);
        bool ok = o && serve_object(d, r, o, &v, "REVALIDATED", rec, p->sg);
        cache_blob_unref(o ? v.mem : NULL);
        cache_obj_unref(o);
        if (!ok && !p->reacquired) {
            /* purged (or evicted) between the source's 304 and now: what
             * the client asked for is acquired afresh, not refused */
            cache_fill *again = cache_reacquire(d->cache, p->fill);
            if (again) {
                cache_fill_unref(p->fill);
                cache_obj_unref(p->stale);
                p->stale = NULL;
                p->fill = again;
                p->reacquired = true;
                finish(d, r, p, rec);
                return;
            }
        }
        if (!ok)
            http_reply_problem(r, 503, "Service Unavailable", "the object went away; try again", NULL);
    } else if (h.state == FILL_FAILED) {
        cache_view v;
        cache_obj *o = p->stale ? cache_lookup(d->cache, p->key, strlen(p->key), now, &v) : NULL;
        bool ok = o && v.stale_usable && serve_object(d, r, o, &v, "STALE", rec, p->sg);
        if (o)
            cache_blob_unref(v.mem);
        cache_obj_unref(o);
        if (!ok) {
            snprintf(rec->cache, sizeof rec->cache, "ERROR");
            http_reply_problem(r, h.status, problem_title(h.status), "the content cannot be acquired from its sources",
                               json_pack("{s:s}", "reason", h.error ? h.error : "unknown"));
        }
    } else if (serve_fill(d, r, p, &h, rec)) {
        return; /* parked again */
    }
    pending_free(p);
}

static void refuse(dcdn *d, http_req *r, delivery_record *rec, int status, const char *title, const char *why)
{
    metric_add(d->m_refused, 1);
    snprintf(rec->cache, sizeof rec->cache, "REFUSED");
    http_reply_problem(r, status, title, why, NULL);
}

/* A request that may be served: from the cache, or from an acquisition.
 * sg (taken): a manifest to answer with tokens, or NULL. */
static void from_cache(dcdn *d, http_req *r, delivery_record *rec, const plan *pl, const char *src_path, signer *sg)
{
    long long now = rec->start_ms / 1000;
    cache_view v;
    cache_obj *o = cache_lookup(d->cache, pl->key, pl->klen, now, &v);
    if (o && v.fresh) {
        bool ok = serve_object(d, r, o, &v, "HIT", rec, sg);
        cache_blob_unref(v.mem);
        cache_obj_unref(o);
        if (ok) {
            signer_free(sg);
            return;
        }
        o = NULL; /* evicted under our feet: a miss */
    } else if (o) {
        cache_blob_unref(v.mem);
    }
    const char *rh = sg ? NULL : http_header(r, "Range"); /* a manifest with tokens is answered whole */
    long long first = rh ? hc_range_first(rh, strlen(rh)) : -1;
    pending *pd = calloc(1, sizeof *pd);
    if (!pd) {
        cache_obj_unref(o);
        signer_free(sg);
        http_reply_problem(r, 503, "Service Unavailable", "out of memory", NULL);
        return;
    }
    pd->sg = sg;
    pd->rec = rec;
    pd->key = strdup(pl->key);
    pd->stale = o;
    pd->range = rh ? strdup(rh) : NULL;
    /* a miss for a range not starting at 0 is passed through, not stored,
     * unless the whole object is on its way already */
    pd->private_range = !o && rh && first != 0 && first != -1;
    if (pd->private_range && (pd->fill = cache_join(d->cache, pl->key)) != NULL) {
        pd->private_range = false;
        finish(d, r, pd, rec);
        return;
    }
    cache_request q = plan_request(pl, src_path);
    q.range = pd->private_range ? rh : NULL;
    q.revalidate = o && (v.etag || v.last_modified) ? o : NULL;
    pd->fill = cache_acquire(d->cache, &q);
    if (!pd->fill) {
        pending_free(pd);
        http_reply_problem(r, 503, "Service Unavailable", "out of memory", NULL);
        return;
    }
    finish(d, r, pd, rec);
}

/* Does this request's answer carry a token on each of its URIs? A
 * manifest (by its path), authorized by a token or our session cookie,
 * whose session is not to go by cookie alone. */
static bool manifest_tokens_wanted(const hop_result *hr, const char *path)
{
    return hr->allowed && hr->method != HOP_OPEN && hr->claims && hr->session_auth != HOP_SESSION_COOKIE &&
           mf_kind_of_path(path, strcspn(path, "?")) != MF_UNKNOWN;
}

static void deliver(http_req *r, void *ctx)
{
    dcdn *d = ctx;
    pending *p = http_parked_state(r);
    if (p) { /* resumed: the fill has an answer */
        finish(d, r, p, p->rec);
        return;
    }
    delivery_record *rec = delivery_record_begin(d, r, d->surrogate_conf.port);
    if (!rec) {
        http_reply_problem(r, 503, "Service Unavailable", "out of memory", NULL);
        return;
    }
    static __thread http_canon tl_canon; /* the one form every step below sees */
    http_canon *c = &tl_canon;
    const char *why = NULL;
    int bad = http_canon_request(r, c, &why);
    if (bad) {
        refuse(d, r, rec, bad, bad == 414 ? "URI Too Long" : "Bad Request", why);
        return;
    }
    const char *host = c->host, *target = c->target;
    /* records keep no credential, refused requests' neither */
    delivery_record_uris(rec, target, NULL, NULL, US_DEFAULT_PACKAGE);
    bool v6 = rec->client_addr.v6;
    const unsigned char *ip = rec->client_addr.bytes;
    snap_ref *ref = NULL;
    mi_resolution res;
    dcdn_content ct;
    upstream *up = dcdn_resolve_request(d, host, target, &ct, &res, &ref);
    if (!up) {
        refuse(d, r, rec, 404, "Not Found", "this CDN does not deliver content for this host");
        return;
    }
    /* the authorize phase: metadata we can enforce, a token or our session
     * cookie where MI.UriSigning says, then the ACLs */
    hop_result hr;
    mi_facts f = {.v6 = v6, .now = rec->start_ms / 1000, .protocol = http_is_tls(r) ? "https/1.1" : "http/1.1"};
    memcpy(f.ip, ip, 16);
    us_trust trust = {NULL, &up->us_keys, false};
    authz_request q = {.scheme = http_is_tls(r) ? "https" : "http",
                       .host = host,
                       .target = target,
                       .cookie = http_header(r, "Cookie"),
                       .client_ip = rec->client,
                       .now = rec->start_ms / 1000,
                       .tenant = up->id,
                       .content_host = ct.host,
                       .acl = &f};
    authz_verdict av = authz_check(&d->us, &trust, up->us_keys.n ? 1 : 0, &res, &q, &hr, &why);
    int deny = av == AUTHZ_ALLOWED ? 0 : 403;
    snprintf(rec->auth, sizeof rec->auth, "%s", hop_method_name(hr.method));
    rec->upstream = (int)(up - d->ups);
    rec->us_code = (int)hr.code;
    if (!hr.allowed || (hr.code != US_VERIFIED && hr.code != US_NOT_CHECKED))
        snprintf(rec->us_reason, sizeof rec->us_reason, "%s", us_code_text(hr.code));

    /* what the source is asked for: the content's path, without our token */
    const char *src_target = dcdn_content_path(&ct, hr.target ? hr.target : target);
    const char *pkg = hr.package[0] ? hr.package : US_DEFAULT_PACKAGE;
    const char *drop[] = {pkg, NULL};
    plan pl_, *pl = &pl_; /* on the stack: this is the hit path */
    if (!deny && !plan_for(&res, up, dcdn_source_egress(d, up), ct.host, src_target, drop, pl)) {
        deny = 414;
        why = "the request target is too long to cache";
    }
    _Static_assert(sizeof rec->ccid == sizeof pl->ccid, "the record carries the plan's ccid");
    if (!deny)
        memcpy(rec->ccid, pl->ccid, sizeof rec->ccid);
    delivery_record_uris(rec, hr.target ? hr.target : target, ct.host, src_target, pkg);
    delivery_session(d, rec, &hr);
    /* everything below works on copies: the metadata snapshot goes back now */
    char src_path[URL_MAX_LEN + 2];
    size_t spl = strlen(src_target); /* within a target of that size */
    memcpy(src_path, src_target, spl < sizeof src_path ? spl + 1 : 0);
    src_path[sizeof src_path - 1] = 0;
    snapshot_release(&up->snap, ref);
    for (int k = 0; k < 2 && !deny; k++)
        if (hr.set_cookie[k])
            http_add_header(r, "Set-Cookie", hr.set_cookie[k]);
    signer *sg = NULL;
    if (!deny && manifest_tokens_wanted(&hr, src_path) && (sg = calloc(1, sizeof *sg)) != NULL) {
        /* the URIs of this manifest each get a token (the session needs no cookie) */
        const char *t = hr.target ? hr.target : target;
        size_t hl = strlen(host), tl = strlen(t);
        if (hl >= sizeof sg->host || hl + tl + 9 >= sizeof sg->base) {
            free(sg);
            sg = NULL;
            deny = 414;
            why = "the request target is too long";
        } else {
            snprintf(sg->scheme, sizeof sg->scheme, "%s", q.scheme);
            memcpy(sg->host, host, hl + 1);
            snprintf(sg->base, sizeof sg->base, "%s://%s", q.scheme, host);
            memcpy(sg->base + strlen(sg->base), t, tl + 1);
        }
    }
    if (sg) {
        free(hr.set_cookie[0]);
        free(hr.set_cookie[1]);
        hr.set_cookie[0] = hr.set_cookie[1] = NULL;
        sg->hr = hr; /* moved */
        memset(&hr, 0, sizeof hr);
    }
    hop_result_free(&hr);
    if (deny) {
        refuse(d, r, rec, deny, deny == 403 ? "Forbidden" : "URI Too Long", why);
        return;
    }
    from_cache(d, r, rec, pl, src_path, sg);
}

/* --- preposition: fetch into the cache ahead of demand --------------------------------- */

/* Jobs run one at a time on their own thread: each URL is resolved like a
 * delivery (its host must be one we deliver), fetched unless fresh, within
 * the job's time window and under its bandwidth cap (bytes/s, averaged
 * over the job). */
struct prepo_job {
    prepo_job *next;
    unsigned long long id;
    json_t *urls;
    long long not_before, not_after, max_bps;
    size_t fetched, fresh, failed, skipped;
    long long bytes;
    const char *state; /* queued, running, done, expired */
};

/* A content URL's host (with its port, if any) and request target ("/"
 * when empty); false when it is not an absolute URL with a host. */
static bool host_and_target(const char *url, char host[300], char *target, size_t tcap)
{
    url_ref u;
    size_t tl, pl;
    if (!url || url_parse(url, strlen(url), &u) != URL_OK || !u.authority || u.host.len == 0 || u.host.len > 255 ||
        url_canon_host(url + u.host.off, u.host.len + (u.port.present ? u.port.len + 1 : 0), false, host, 300, NULL) !=
            URL_CANON_OK)
        return false;
    /* the path and query in the one form requests are keyed in ("/" for an empty path) */
    const char *rest = url + u.path.off;
    size_t rn = u.fragment.present ? (size_t)(url + u.fragment.off - 1 - rest) : strlen(rest);
    char raw[URL_MAX_LEN + 2];
    int w = snprintf(raw, sizeof raw, "%s%.*s", rest[0] == '/' ? "" : "/", (int)rn, rest);
    return w > 0 && (size_t)w < sizeof raw && url_canon_target(raw, (size_t)w, target, tcap, &tl, &pl) == URL_CANON_OK;
}

/* The plan for a content URL (http or https; the scheme does not count),
 * if an upstream delivers its host (*up_idx: which). malloc'd; NULL: none. */
static plan *plan_for_url(dcdn *d, const char *url, char *target, size_t tcap, int *up_idx)
{
    char host[300];
    if (!host_and_target(url, host, target, tcap))
        return NULL;
    snap_ref *ref = NULL;
    mi_resolution res;
    upstream *up = dcdn_resolve(d, host, target, &res, &ref);
    if (!up)
        return NULL;
    const char *drop[] = {US_DEFAULT_PACKAGE, NULL};
    plan *pl = malloc(sizeof *pl);
    bool ok = pl && !res.blocking && plan_for(&res, up, dcdn_source_egress(d, up), host, target, drop, pl);
    if (up_idx)
        *up_idx = (int)(up - d->ups);
    snapshot_release(&up->snap, ref);
    if (!ok) {
        free(pl);
        return NULL;
    }
    return pl;
}

bool surrogate_key_for_url(dcdn *d, const char *url, int *up_idx, char *key, size_t cap)
{
    char target[URL_MAX_LEN + 2];
    plan *pl = plan_for_url(d, url, target, sizeof target, up_idx);
    bool ok = pl && pl->klen < cap;
    if (ok)
        memcpy(key, pl->key, pl->klen + 1);
    free(pl);
    return ok;
}

static int upstream_of(dcdn *d, const char *host, const char *target)
{
    snap_ref *ref = NULL;
    mi_resolution res;
    upstream *up = dcdn_resolve(d, host, target, &res, &ref);
    if (!up)
        return -1;
    snapshot_release(&up->snap, ref);
    return (int)(up - d->ups);
}

int surrogate_upstream_of_key(dcdn *d, const char *key)
{
    /* a key is the content's host (lower case, no port) then its path */
    size_t hl = strcspn(key, "/");
    char host[300];
    if (hl == 0 || hl >= sizeof host)
        return -1;
    memcpy(host, key, hl);
    host[hl] = 0;
    return upstream_of(d, host, key[hl] ? key + hl : "/");
}

int surrogate_upstream_of_url(dcdn *d, const char *url)
{
    char host[300], target[URL_MAX_LEN + 2];
    return host_and_target(url, host, target, sizeof target) ? upstream_of(d, host, target) : -1;
}

bool surrogate_prefetch(dcdn *d, const char *url, long long *bytes)
{
    char target[URL_MAX_LEN + 2];
    plan *pl = plan_for_url(d, url, target, sizeof target, NULL);
    if (!pl)
        return false;
    cache_request q = plan_request(pl, target);
    *bytes = cache_prefetch(d->cache, &q);
    free(pl);
    return *bytes >= 0;
}


static void run_job(dcdn *d, prepo_job *j)
{
    long long start = wall_ms();
    pthread_mutex_lock(&d->prepo_mu);
    j->state = "running";
    pthread_mutex_unlock(&d->prepo_mu);
    size_t i;
    json_t *u;
    json_array_foreach(j->urls, i, u)
    {
        long long now = wall_ms() / 1000;
        if (d->prepo_stop || (j->not_after && now > j->not_after)) {
            pthread_mutex_lock(&d->prepo_mu);
            j->skipped = json_array_size(j->urls) - i;
            j->state = "expired";
            pthread_mutex_unlock(&d->prepo_mu);
            return;
        }
        long long got = 0;
        bool ok = surrogate_prefetch(d, json_string_value(u), &got);
        pthread_mutex_lock(&d->prepo_mu);
        if (!ok)
            j->failed++;
        else if (got == 0)
            j->fresh++;
        else
            j->fetched++;
        j->bytes += got > 0 ? got : 0;
        pthread_mutex_unlock(&d->prepo_mu);
        if (j->max_bps > 0) { /* pace: sleep until the average is under the cap */
            long long due = start + j->bytes * 1000 / j->max_bps;
            pthread_mutex_lock(&d->prepo_mu);
            while (!d->prepo_stop && wall_ms() < due) {
                cond_wait_ms(&d->prepo_cv, &d->prepo_mu, 50);
            }
            pthread_mutex_unlock(&d->prepo_mu);
        }
    }
    pthread_mutex_lock(&d->prepo_mu);
    j->state = "done";
    pthread_mutex_unlock(&d->prepo_mu);
}

static void *prepo_thread(void *arg)
{
    dcdn *d = arg;
    pthread_mutex_lock(&d->prepo_mu);
    while (!d->prepo_stop) {
        prepo_job *j = NULL;
        long long now = wall_ms() / 1000;
        for (prepo_job *x = d->prepo_jobs; x; x = x->next)
            if (strcmp(x->state, "queued") == 0 && x->not_before <= now) {
                j = x;
                break;
            }
        if (!j) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&d->prepo_cv, &d->prepo_mu, &ts);
            continue;
        }
        pthread_mutex_unlock(&d->prepo_mu);
        run_job(d, j);
        pthread_mutex_lock(&d->prepo_mu);
    }
    pthread_mutex_unlock(&d->prepo_mu);
    return NULL;
}

static json_t *job_json(const prepo_job *j)
{
    return json_pack("{s:I, s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "id", (json_int_t)j->id, "state", j->state, "urls",
                     (json_int_t)json_array_size(j->urls), "fetched", (json_int_t)j->fetched, "fresh",
                     (json_int_t)j->fresh, "failed", (json_int_t)j->failed, "skipped", (json_int_t)j->skipped,
                     "bytes", (json_int_t)j->bytes);
}

static void preposition_api(http_req *r, void *ctx)
{
    dcdn *d = ctx;
    size_t len;
    const char *body = http_body(r, &len);
    jerr e = {0};
    json_t *v = jparse(body, len, 4 << 20, &e);
    static const char *const keys[] = {"urls", "not_before", "not_after", "max_bytes_per_s", NULL};
    json_t *urls = NULL;
    long long nb = 0, na = 0, bps = 0;
    if (!v || !json_is_object(v) || !jonly(v, "$", keys, &e) || !jget_arr(v, "urls", "$", true, &urls, &e) ||
        !jstr_array(urls, "$.urls", &e) || !jget_int(v, "not_before", "$", false, 0, INT64_MAX, &nb, &e) ||
        !jget_int(v, "not_after", "$", false, 0, INT64_MAX, &na, &e) ||
        !jget_int(v, "max_bytes_per_s", "$", false, 0, INT64_MAX, &bps, &e) ||
        (na && na < nb && jfail(&e, "$.not_after", "before not_before"))) {
        if (!e.reason[0])
            jfail(&e, "$", "expected an object");
        http_reply_invalid(r, 400, "Invalid preposition request", &e);
        json_decref(v);
        return;
    }
    prepo_job *j = calloc(1, sizeof *j);
    j->urls = json_incref(urls);
    j->not_before = nb;
    j->not_after = na;
    j->max_bps = bps;
    j->state = "queued";
    json_decref(v);
    pthread_mutex_lock(&d->prepo_mu);
    j->id = ++d->prepo_seq;
    j->next = d->prepo_jobs;
    d->prepo_jobs = j;
    json_t *out = job_json(j);
    pthread_cond_broadcast(&d->prepo_cv);
    pthread_mutex_unlock(&d->prepo_mu);
    http_reply_json(r, 202, NULL, out);
}

static void preposition_list(http_req *r, void *ctx)
{
    dcdn *d = ctx;
    json_t *a = json_array();
    pthread_mutex_lock(&d->prepo_mu);
    for (prepo_job *j = d->prepo_jobs; j; j = j->next)
        json_array_append_new(a, job_json(j));
    pthread_mutex_unlock(&d->prepo_mu);
    http_reply_json(r, 200, NULL, json_pack("{s:o}", "jobs", a));
}

static bool preposition_start(dcdn *d)
{
    pthread_mutex_init(&d->prepo_mu, NULL);
    pthread_cond_init(&d->prepo_cv, NULL);
    d->prepo_started = pthread_create(&d->prepo_th, NULL, prepo_thread, d) == 0;
    return d->prepo_started;
}

static void preposition_stop(dcdn *d)
{
    if (!d->prepo_started)
        return;
    pthread_mutex_lock(&d->prepo_mu);
    d->prepo_stop = true;
    pthread_cond_broadcast(&d->prepo_cv);
    pthread_mutex_unlock(&d->prepo_mu);
    pthread_join(d->prepo_th, NULL);
    for (prepo_job *j = d->prepo_jobs, *nx; j; j = nx) {
        nx = j->next;
        json_decref(j->urls);
        free(j);
    }
    d->prepo_started = false;
}

/* --- operator API: purge and preposition (the triggers issue drives these) ------------- */

static void cache_purge_api(http_req *r, void *ctx)
{
    dcdn *d = ctx;
    size_t len;
    const char *body = http_body(r, &len);
    jerr e = {0};
    json_t *v = jparse(body, len, 1 << 20, &e);
    static const char *const keys[] = {"keys", "ccids", "purge_ids", NULL};
    json_t *ks = NULL, *cc = NULL, *pi = NULL;
    if (!v || !json_is_object(v) || !jonly(v, "$", keys, &e) || !jget_arr(v, "keys", "$", false, &ks, &e) ||
        !jget_arr(v, "ccids", "$", false, &cc, &e) || !jget_arr(v, "purge_ids", "$", false, &pi, &e) ||
        (ks && !jstr_array(ks, "$.keys", &e)) || (cc && !jstr_array(cc, "$.ccids", &e)) ||
        (pi && !jstr_array(pi, "$.purge_ids", &e))) {
        if (!e.reason[0])
            jfail(&e, "$", "expected an object");
        http_reply_invalid(r, 400, "Invalid purge", &e);
        json_decref(v);
        return;
    }
    long long n = 0;
    bool index_down = false;
    size_t i;
    json_t *x;
    json_array_foreach(ks, i, x)
        n += cache_remove(d->cache, json_string_value(x), json_string_length(x));
    json_array_foreach(cc, i, x)
    {
        long long k = cache_remove_indexed(d->cache, "ccid", json_string_value(x));
        index_down |= k < 0;
        n += k > 0 ? k : 0;
    }
    json_array_foreach(pi, i, x)
    {
        long long k = cache_remove_indexed(d->cache, "pid", json_string_value(x));
        index_down |= k < 0;
        n += k > 0 ? k : 0;
    }
    json_decref(v);
    if (index_down) {
        http_reply_problem(r, 503, "Service Unavailable", "the cache index (Redis) is unreachable", NULL);
        return;
    }
    http_reply_json(r, 200, NULL, json_pack("{s:I}", "removed", (json_int_t)n));
}

json_t *surrogate_cache_json(dcdn *d)
{
    cache_stats s;
    cache_get_stats(d->cache, &s);
    return json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "surrogate", d->self_id ? d->self_id : "",
                     "objects", (json_int_t)s.objects, "bytes", (json_int_t)s.bytes, "disk_bytes",
                     (json_int_t)d->cache_conf.disk_bytes, "memory_objects", (json_int_t)s.mem_objects, "memory_bytes",
                     (json_int_t)s.mem_bytes, "mapped_objects", (json_int_t)s.map_objects, "mapped_bytes",
                     (json_int_t)s.map_bytes, "acquisitions_in_flight", (json_int_t)s.fills);
}

static void cache_stats_api(http_req *r, void *ctx)
{
    http_reply_json(r, 200, NULL, surrogate_cache_json(ctx));
}

void surrogate_op_routes(dcdn *d, http_routes *out)
{
    http_routes_add(out, (http_route){"POST", "/v1/cache/purge", cache_purge_api, d, false});
    http_routes_add(out, (http_route){"GET", "/v1/cache", cache_stats_api, d, false});
    http_routes_add(out, (http_route){"POST", "/v1/cache/preposition", preposition_api, d, false});
    http_routes_add(out, (http_route){"GET", "/v1/cache/preposition", preposition_list, d, false});
}

void surrogate_routes(dcdn *d, http_routes *out)
{
    http_routes_add(out, (http_route){"GET", "/*", deliver, d, true});
}

bool surrogate_start(dcdn *d)
{
    metrics *m = d->metrics;
    d->m_served[0] = metrics_series(m, "cdni_surrogate_responses_total", "cache=\"hit\"", "counter", "deliveries by cache outcome");
    d->m_served[1] = metrics_series(m, "cdni_surrogate_responses_total", "cache=\"miss\"", "counter", "deliveries by cache outcome");
    d->m_served[2] = metrics_series(m, "cdni_surrogate_responses_total", "cache=\"stale\"", "counter", "deliveries by cache outcome");
    d->m_refused = metrics_series(m, "cdni_surrogate_refusals_total", "", "counter", "requests refused (metadata, authorization, ACL)");
    d->m_signed_manifests = metrics_series(m, "cdni_manifests_signed_total", "", "counter",
                                           "manifests answered with a token on every URI");
    d->cache_conf.store = d->store;
    d->cache_conf.metrics = m;
    snprintf(d->cache_conf.index_prefix, sizeof d->cache_conf.index_prefix, "cdni:%s:cache:%s", d->cdn_id, d->self_id);
    d->cache = cache_open(&d->cache_conf);
    if (!d->cache)
        return false;
    atomic_store(&d->cache_open, true); /* the router's heartbeats may read it now */
    if (d->access_log) {
        d->on_delivery = surrogate_access_log;
        d->on_delivery_ud = d;
    }
    return preposition_start(d);
}

/* Before the listener stops: acquisition ends and every parked request is woken. */
void surrogate_quiesce(dcdn *d)
{
    preposition_stop(d);
    cache_close(d->cache);
}

void surrogate_stop(dcdn *d)
{
    atomic_store(&d->cache_open, false);
    cache_free(d->cache);
    d->cache = NULL;
}
