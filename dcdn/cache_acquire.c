/* The cache's acquisition: worker threads that take fills from the queue
 * and fetch them from their sources in turn (common/http_client streamed,
 * so a body reaches the waiting requests as it arrives), check the answer
 * (HTTP caching rules, ranges, headers we keep), and hand a complete,
 * storable one to cache_commit. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/http_client.h"
#include "common/log.h"
#include "dcdn/cache_int.h"

/* --- acquisition (worker threads) --------------------------------------------------- */

static void set_str(char **dst, const char *s, size_t n)
{
    free(*dst);
    *dst = strndup(s, n);
}

static void reset_attempt(cache_fill *f)
{
    char **fields[] = {&f->content_type, &f->etag, &f->last_modified, &f->cc, &f->expires, &f->date, &f->age,
                       &f->pragma, &f->headers};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        free(*fields[i]);
        *fields[i] = NULL;
    }
    f->vary = false;
    f->length = HTTP_LEN_UNKNOWN;
    f->head_seen = f->retry = false;
    f->cur_status = 0;
}

/* The response headers replayed to clients. */
typedef struct {
    char buf[2048];
    size_t len;
} hdr_acc;
static char *extra_headers(cache_fill *f, const char *encoding, const char *crange, const char *location,
                           const char *acao, const char *acac)
{
    hdr_acc a = {{0}, 0};
    /* with the source's own CORS answer, for players on other origins (a
     * listener's cors_origins, where set, takes its place) */
    const char *names[] = {"ETag", "Last-Modified", "Cache-Control", "Expires", "Content-Encoding", "Content-Range",
                           "Location", "Access-Control-Allow-Origin", "Access-Control-Allow-Credentials"};
    const char *vals[] = {f->etag, f->last_modified, f->cc, f->expires, encoding, crange, location, acao, acac};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (vals[i] && a.len + strlen(names[i]) + strlen(vals[i]) + 4 < sizeof a.buf)
            a.len += (size_t)snprintf(a.buf + a.len, sizeof a.buf - a.len, "%s: %s\n", names[i], vals[i]);
    return strdup(a.buf);
}

typedef struct {
    cache_fill *f;
    char encoding[128], crange[128], location[1100], acao[300], acac[8];
    size_t attempt, last;
    bool malformed; /* a header we keep or pass on has a control character */
} xfer;

static bool open_tmp(cache *c, cache_fill *f)
{
    if (!c->conf.dir)
        return false;
    snprintf(f->tmp, sizeof f->tmp, "%s/tmp/%llu", c->conf.dir, (unsigned long long)atomic_fetch_add(&c->gen, 1));
    f->fd = open(f->tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (f->fd < 0) {
        f->tmp[0] = 0;
        return false;
    }
    /* the head line, so the object survives a restart; commit builds the
     * object from the same description */
    json_t *h = json_pack("{s:s, s:i, s:s?, s:s?, s:s?, s:s?, s:I, s:I, s:I, s:I, s:b, s:b, s:s?, s:s?, s:s?}", "key", f->key,
                          "status", f->status, "content_type", f->content_type, "headers", f->headers, "etag", f->etag,
                          "last_modified", f->last_modified, "ttl", (json_int_t)f->verdict.ttl, "stored_at",
                          (json_int_t)f->resp_time, "initial_age", (json_int_t)f->verdict.initial_age,
                          "stale_if_error", (json_int_t)f->verdict.stale_if_error, "always_revalidate",
                          f->verdict.always_revalidate, "must_revalidate", f->verdict.must_revalidate, "ccid", f->ccid,
                          "pid", f->pid, "up", f->up);
    char *js = h ? json_dumps(h, JSON_COMPACT) : NULL;
    f->head = h;
    size_t jl = js ? strlen(js) : 0;
    bool ok = js && jl + sizeof HEAD_MAGIC + 1 < MAX_HEAD_LINE;
    if (ok) {
        char *line = malloc(jl + sizeof HEAD_MAGIC + 2);
        int n = sprintf(line, "%s%s\n", HEAD_MAGIC, js);
        ok = write(f->fd, line, (size_t)n) == n;
        f->off = (uint64_t)n;
        free(line);
    }
    free(js);
    if (!ok) {
        close(f->fd);
        unlink(f->tmp);
        f->fd = -1;
        f->tmp[0] = 0;
    }
    return ok;
}

/* The end of a response head. false: abort this attempt (a 5xx with
 * another source left to try). */
static bool head_complete(xfer *x)
{
    cache_fill *f = x->f;
    cache *c = f->c;
    f->resp_time = wall_ms() / 1000;
    if (x->malformed) { /* never relayed or stored: a Location cut by a bare CR, say */
        f->retry = true;
        return false;
    }
    if (f->cur_status >= 500 && x->attempt < x->last) {
        f->retry = true;
        return false;
    }
    if (f->cur_status >= 500) { /* the last source: relayed only if it says how long to cache it */
        hc_directives dv;
        hc_parse_cache_control(f->cc, f->cc ? strlen(f->cc) : 0, &dv);
        if (dv.max_age < 0 && dv.s_maxage < 0 && !f->expires) {
            f->retry = true;
            return false;
        }
    }
    if (f->reval && f->cur_status == 304) {
        /* RFC 9111 §4.3.4: the stored response is fresh again, with the
         * 304's freshness headers where it has them */
        cache_obj *o = f->reval;
        char date[40];
        hc_format_date(f->resp_time, date, sizeof date);
        hc_response r = {.status = o->status, .cache_control = f->cc, .expires = f->expires,
                         .date = f->date ? f->date : date, .last_modified = o->last_modified, .age = f->age,
                         .has_validator = true, .request_time = f->req_time, .response_time = f->resp_time};
        hc_verdict v;
        hc_evaluate(&r, &c->conf.heuristic, &v);
        shard *s = &c->shards[o->hash % SHARDS];
        pthread_mutex_lock(&s->mu);
        if (f->cc || f->expires) {
            o->ttl = v.ttl;
            o->always_revalidate = v.always_revalidate;
            o->must_revalidate = v.must_revalidate;
        }
        o->stored_at = f->resp_time;
        o->initial_age = v.initial_age;
        pthread_mutex_unlock(&s->mu);
        metric_add(c->m_reval304, 1);
        pthread_mutex_lock(&f->mu);
        f->status = 304;
        f->state = FILL_REVALIDATED;
        cache_fill_wake_all(f);
        pthread_mutex_unlock(&f->mu);
        return true;
    }
    char date[40];
    hc_format_date(f->resp_time, date, sizeof date);
    hc_response r = {.status = f->cur_status, .cache_control = f->cc, .expires = f->expires,
                     .date = f->date ? f->date : date, .last_modified = f->last_modified, .age = f->age,
                     .pragma = f->pragma, .has_validator = f->etag || f->last_modified,
                     .request_time = f->req_time, .response_time = f->resp_time};
    hc_evaluate(&r, &c->conf.heuristic, &f->verdict);
    f->status = f->cur_status;
    /* a source's redirect is passed on as it is, never followed */
    f->headers = extra_headers(f, x->encoding[0] ? x->encoding : NULL, x->crange[0] ? x->crange : NULL,
                               x->location[0] && f->cur_status / 100 == 3 ? x->location : NULL,
                               x->acao[0] ? x->acao : NULL, x->acac[0] ? x->acac : NULL);
    f->store = !f->private_ && f->verdict.storable && !f->vary &&
               (f->length == HTTP_LEN_UNKNOWN || f->length <= c->conf.max_object_bytes);
    /* the body goes to a file even when it is not kept: memory only if the disk fails */
    if (!open_tmp(c, f))
        f->store = false;
    pthread_mutex_lock(&f->mu);
    f->state = FILL_BODY;
    cache_fill_wake_all(f);
    pthread_mutex_unlock(&f->mu);
    return true;
}

static bool on_header(void *ud, const char *b, size_t n)
{
    xfer *x = ud;
    cache_fill *f = x->f;
    if (n >= 5 && memcmp(b, "HTTP/", 5) == 0) {
        const char *sp = memchr(b, ' ', n);
        f->cur_status = sp ? atoi(sp + 1) : 0;
        return true;
    }
    if (n <= 2 && (b[0] == '\r' || b[0] == '\n')) {
        if (f->cur_status < 200)
            return true; /* 1xx: the real head follows */
        f->head_seen = true;
        if (f->state != FILL_PENDING)
            return true;
        return head_complete(x);
    }
    const char *colon = memchr(b, ':', n);
    if (!colon)
        return true;
    size_t kn = (size_t)(colon - b);
    const char *v = colon + 1;
    size_t vn = n - kn - 1;
    while (vn && (*v == ' ' || *v == '\t'))
        v++, vn--;
    while (vn && (v[vn - 1] == '\r' || v[vn - 1] == '\n' || v[vn - 1] == ' '))
        vn--;
    if (vn > 1024)
        return true; /* nothing we keep is that long */
#define IS(name) (kn == sizeof name - 1 && strncasecmp(b, name, kn) == 0)
    bool kept = IS("Content-Type") || IS("Content-Length") || IS("ETag") || IS("Last-Modified") ||
                IS("Cache-Control") || IS("Expires") || IS("Date") || IS("Age") || IS("Pragma") || IS("Vary") ||
                IS("Content-Encoding") || IS("Content-Range") || IS("Location") ||
                IS("Access-Control-Allow-Origin") || IS("Access-Control-Allow-Credentials");
    for (size_t i = 0; kept && i < vn; i++)
        if (((unsigned char)v[i] < 0x20 && v[i] != '\t') || v[i] == 0x7f)
            x->malformed = true;
    if (IS("Content-Type"))
        set_str(&f->content_type, v, vn);
    else if (IS("Content-Length")) {
        char tmp[32];
        snprintf(tmp, sizeof tmp, "%.*s", (int)(vn < 31 ? vn : 31), v);
        f->length = strtoull(tmp, NULL, 10);
    } else if (IS("ETag"))
        set_str(&f->etag, v, vn);
    else if (IS("Last-Modified"))
        set_str(&f->last_modified, v, vn);
    else if (IS("Cache-Control")) {
        if (f->cc) { /* several fields are one list */
            char *j = NULL;
            if (asprintf(&j, "%s, %.*s", f->cc, (int)vn, v) > 0) {
                free(f->cc);
                f->cc = j;
            }
        } else
            set_str(&f->cc, v, vn);
    } else if (IS("Expires"))
        set_str(&f->expires, v, vn);
    else if (IS("Date"))
        set_str(&f->date, v, vn);
    else if (IS("Age"))
        set_str(&f->age, v, vn);
    else if (IS("Pragma"))
        set_str(&f->pragma, v, vn);
    else if (IS("Vary"))
        f->vary = !(vn == 0);
    else if (IS("Content-Encoding"))
        snprintf(x->encoding, sizeof x->encoding, "%.*s", (int)vn, v);
    else if (IS("Content-Range"))
        snprintf(x->crange, sizeof x->crange, "%.*s", (int)vn, v);
    else if (IS("Location"))
        snprintf(x->location, sizeof x->location, "%.*s", (int)vn, v);
    else if (IS("Access-Control-Allow-Origin") && vn < sizeof x->acao)
        snprintf(x->acao, sizeof x->acao, "%.*s", (int)vn, v);
    else if (IS("Access-Control-Allow-Credentials") && vn < sizeof x->acac)
        snprintf(x->acac, sizeof x->acac, "%.*s", (int)vn, v);
#undef IS
    return true;
}

/* The disk failed under a fill: its body moves to memory; it is no longer stored. */
static bool to_memory(cache_fill *f, size_t extra)
{
    cache *c = f->c;
    if (f->avail + extra > c->conf.bypass_max_bytes)
        return false;
    char *m = malloc(f->avail + extra + 1);
    if (!m || (f->avail && pread(f->fd, m, f->avail, (off_t)f->off) != (ssize_t)f->avail)) {
        free(m);
        return false;
    }
    pthread_mutex_lock(&f->mu);
    f->mem = m;
    f->mem_cap = f->avail + extra + 1;
    close(f->fd);
    f->fd = -1;
    unlink(f->tmp);
    f->tmp[0] = 0;
    f->store = false;
    pthread_mutex_unlock(&f->mu);
    log_kv(LOG_WARN, "cache disk write failed; serving without storing", "key", f->key, NULL);
    return true;
}

static bool on_body(void *ud, const char *b, size_t n)
{
    xfer *x = ud;
    cache_fill *f = x->f;
    if (f->state != FILL_BODY)
        return true; /* a 304's or an aborted attempt's body */
    if (f->fd >= 0 && pwrite(f->fd, b, n, (off_t)(f->off + f->avail)) != (ssize_t)n && !to_memory(f, n))
        return false;
    if (f->fd < 0) {
        if (f->avail + n > f->c->conf.bypass_max_bytes)
            return false;
        pthread_mutex_lock(&f->mu);
        if (f->avail + n > f->mem_cap) {
            size_t cap = (f->avail + n) * 2;
            char *m = realloc(f->mem, cap);
            if (!m) {
                pthread_mutex_unlock(&f->mu);
                return false;
            }
            f->mem = m;
            f->mem_cap = cap;
        }
        memcpy(f->mem + f->avail, b, n);
        pthread_mutex_unlock(&f->mu);
    }
    pthread_mutex_lock(&f->mu);
    f->avail += n;
    if (f->store && f->avail > f->c->conf.max_object_bytes)
        f->store = false;
    cache_fill_wake_all(f);
    pthread_mutex_unlock(&f->mu);
    return true;
}

static void acquire(cache *c, http_client *hc, cache_fill *f)
{
    xfer x = {.f = f};
    x.last = f->n_src ? f->n_src - 1 : 0;
    http_stream_end end = HTTP_STREAM_UNREACHABLE;
    bool timeouts_only = true;
    char why[300] = "the content has no source";
    const http_stream_cb cb = {on_header, on_body, &x};
    for (x.attempt = 0; x.attempt < f->n_src; x.attempt++) {
        const cache_source *s = &f->src[x.attempt];
        reset_attempt(f);
        x.encoding[0] = x.crange[0] = x.location[0] = x.acao[0] = x.acac[0] = 0;
        x.malformed = false;
        char url[4096];
        snprintf(url, sizeof url, "%s://%s%s", s->tls ? "https" : "http", s->endpoint, f->path_query);
        const char *hl[4];
        size_t nh = 0;
        char cond[700], range[700];
        if (s->auth_header[0])
            hl[nh++] = s->auth_header;
        if (f->reval && f->reval->etag) {
            snprintf(cond, sizeof cond, "If-None-Match: %s", f->reval->etag);
            hl[nh++] = cond;
        } else if (f->reval && f->reval->last_modified) {
            snprintf(cond, sizeof cond, "If-Modified-Since: %s", f->reval->last_modified);
            hl[nh++] = cond;
        }
        if (f->range) {
            snprintf(range, sizeof range, "Range: %s", f->range);
            hl[nh++] = range;
        }
        hl[nh] = NULL;
        http_client_use_egress(hc, s->egress);
        f->req_time = wall_ms() / 1000;
        char err[256] = "";
        end = http_client_stream(hc, "GET", url, hl, &cb, err, sizeof err);
        if (end == HTTP_STREAM_REFUSED) { /* the URL itself: nothing was sent */
            snprintf(why, sizeof why, "%s: %s", s->endpoint, err);
            timeouts_only = false;
            log_kv(LOG_WARN, "source refused by the egress policy", "key", f->key, "reason", why, NULL);
            continue;
        }
        if (f->state != FILL_PENDING)
            break;
        if (f->retry) {
            if (x.malformed)
                snprintf(why, sizeof why, "%s answered with a malformed header (a control character)", s->endpoint);
            else
                snprintf(why, sizeof why, "%s answered %d", s->endpoint, f->cur_status);
            timeouts_only = false;
        } else if (end == HTTP_STREAM_REFUSED_ADDR) { /* an address the policy refuses */
            snprintf(why, sizeof why, "%s: %s", s->endpoint, err);
            timeouts_only = false;
            log_kv(LOG_WARN, "source refused by the egress policy", "key", f->key, "reason", why, NULL);
        } else {
            snprintf(why, sizeof why, "%s: %s", s->endpoint, err);
            if (end != HTTP_STREAM_TIMEOUT && end != HTTP_STREAM_UNREACHABLE)
                timeouts_only = false;
        }
        if (x.attempt + 1 < f->n_src) {
            metric_add(c->m_failover, 1);
            log_kv(LOG_WARN, "source failed; trying the next", "key", f->key, "reason", why, NULL);
        }
    }
    pthread_mutex_lock(&f->mu);
    if (f->state == FILL_PENDING) {
        f->state = FILL_FAILED;
        f->status = timeouts_only ? 504 : 502;
        f->error = strdup(why);
    } else if (f->state == FILL_BODY) {
        f->body_error = end != HTTP_STREAM_DONE || (f->length != HTTP_LEN_UNKNOWN && f->avail != f->length);
    }
    pthread_mutex_unlock(&f->mu);
    bool ok = f->state == FILL_BODY ? !f->body_error : f->state == FILL_REVALIDATED;
    metric_add(ok ? c->m_acq_ok : c->m_acq_fail, 1);
    if (f->state == FILL_FAILED)
        log_kv(LOG_WARN, "acquisition failed", "key", f->key, "reason", why, NULL);
    /* stored before its readers see the end: whoever asks next finds the object */
    if (f->state == FILL_BODY && f->store && !f->body_error)
        cache_commit(c, f);
    else if (f->state == FILL_BODY && !f->private_)
        metric_add(c->m_bypass, 1);
    cache_fills_remove(c, f);
    pthread_mutex_lock(&f->mu);
    f->done = true;
    cache_fill_wake_all(f);
    pthread_cond_broadcast(&f->done_cv);
    pthread_mutex_unlock(&f->mu);
}

static bool stopping(void *ud)
{
    cache *c = ud;
    return c->stop; /* shutting down: in-flight transfers end now */
}

void *cache_worker(void *arg)
{
    cache *c = arg;
    http_client_conf conf = {.connect_timeout_ms = c->conf.connect_timeout_ms,
                             .timeout_ms = (long)c->conf.timeout_s * 1000,
                             .stall_timeout_s = c->conf.stall_timeout_s,
                             .keep_encoding = true,
                             .egress = NULL, /* each source's own, set per attempt */
                             .tls = &c->conf.source_tls, /* https sources verified, never not */
                             .user_agent = "cdni-gateway-surrogate",
                             .cancelled = stopping,
                             .cancelled_ud = c};
    http_client *hc = http_client_new(&conf);
    for (;;) {
        pthread_mutex_lock(&c->q_mu);
        while (!c->q_head && !c->stop)
            pthread_cond_wait(&c->q_cv, &c->q_mu);
        cache_fill *f = c->q_head;
        if (f) {
            c->q_head = f->qnext;
            if (!c->q_head)
                c->q_tail = NULL;
        }
        pthread_mutex_unlock(&c->q_mu);
        if (!f)
            break;
        if (!c->stop)
            acquire(c, hc, f);
        else { /* shutting down: fail what is queued */
            pthread_mutex_lock(&f->mu);
            f->state = f->state == FILL_PENDING ? FILL_FAILED : f->state;
            f->status = 503;
            f->done = f->body_error = true;
            cache_fill_wake_all(f);
            pthread_cond_broadcast(&f->done_cv);
            pthread_mutex_unlock(&f->mu);
            cache_fills_remove(c, f);
        }
        atomic_fetch_sub(&c->inflight, 1);
        cache_fill_unref(f);
    }
    http_client_free(hc);
    return NULL;
}
