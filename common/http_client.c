/* libcurl wrapper. See http_client.h. */
#include "common/http_client.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct http_client {
    CURL *h;
    http_client_conf conf;
    egress_policy *public_only; /* when the conf names no policy */
    const egress_policy *egress; /* in force: the conf's, or one given for the next requests */
    const http_tls_client *tls;  /* likewise */
};

static void tls_curl(CURL *h, const http_tls_client *t);

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

http_client *http_client_new(const http_client_conf *conf)
{
    pthread_once(&curl_once, curl_init_once);
    http_client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    if (conf)
        c->conf = *conf;
    if (!c->conf.connect_timeout_ms)
        c->conf.connect_timeout_ms = 2000;
    if (!c->conf.timeout_ms)
        c->conf.timeout_ms = 10000;
    if (!c->conf.backoff_ms)
        c->conf.backoff_ms = 100;
    if (!c->conf.max_body)
        c->conf.max_body = 64u << 20;
    if (c->conf.retries < 0)
        c->conf.retries = 0;
    if (!c->conf.egress)
        c->conf.egress = c->public_only = egress_new(true);
    c->egress = c->conf.egress;
    c->tls = c->conf.tls;
    c->h = curl_easy_init();
    if (!c->h || !c->conf.egress) {
        curl_easy_cleanup(c->h);
        egress_free(c->public_only);
        free(c);
        return NULL;
    }
    return c;
}

void http_client_free(http_client *c)
{
    if (!c)
        return;
    curl_easy_cleanup(c->h);
    egress_free(c->public_only);
    free(c);
}

void http_result_free(http_result *res)
{
    free(res->body);
    res->body = NULL;
    res->body_len = 0;
}

typedef struct {
    http_result *res;
    size_t cap, max;
    int overflow;
} sink;

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    sink *s = ud;
    size_t len = sz * n;
    http_result *r = s->res;
    if (r->body_len + len > s->max) {
        s->overflow = 1;
        return 0;
    }
    if (r->body_len + len + 1 > s->cap) {
        size_t cap = (r->body_len + len + 1) * 2;
        char *nb = realloc(r->body, cap);
        if (!nb)
            return 0;
        r->body = nb;
        s->cap = cap;
    }
    memcpy(r->body + r->body_len, p, len);
    r->body_len += len;
    r->body[r->body_len] = 0;
    return len;
}

static void copy_header_value(char *dst, size_t cap, const char *v, size_t n)
{
    while (n && (v[0] == ' ' || v[0] == '\t')) {
        v++;
        n--;
    }
    while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
        n--;
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, v, n);
    dst[n] = 0;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    http_result *r = ud;
    size_t len = sz * n;
    static const struct {
        const char *name;
        size_t off, cap;
    } want[] = {
        {"etag:", offsetof(http_result, etag), sizeof((http_result *)0)->etag},
        {"content-type:", offsetof(http_result, content_type), sizeof((http_result *)0)->content_type},
        {"cache-control:", offsetof(http_result, cache_control), sizeof((http_result *)0)->cache_control},
        {"location:", offsetof(http_result, location), sizeof((http_result *)0)->location},
    };
    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) { /* a new response head: forget the old */
        r->etag[0] = r->content_type[0] = r->cache_control[0] = r->location[0] = 0;
        return len;
    }
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        size_t k = strlen(want[i].name);
        if (len > k && strncasecmp(p, want[i].name, k) == 0)
            copy_header_value((char *)r + want[i].off, want[i].cap, p + k, len - k);
    }
    return len;
}

static int idempotent(const char *m)
{
    return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 || strcmp(m, "PUT") == 0 ||
           strcmp(m, "DELETE") == 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int http_client_do(http_client *c, const char *method, const char *url,
                   const char *const *headers, const char *body, size_t body_len,
                   http_result *res)
{
    memset(res, 0, sizeof *res);
    if (!c) {
        snprintf(res->error, sizeof res->error, "no HTTP client (out of memory)");
        return -1;
    }
    struct curl_slist *hl = NULL;
    for (const char *const *h = headers; h && *h; h++)
        hl = curl_slist_append(hl, *h);
    if (body)
        hl = curl_slist_append(hl, "Expect:"); /* no 100-continue round trip */
    long backoff = c->conf.backoff_ms;
    int rc = -1;
    for (int attempt = 0; attempt <= c->conf.retries; attempt++) {
        http_result_free(res);
        memset(res, 0, sizeof *res);
        sink s = {res, 0, c->conf.max_body, 0};
        CURL *h = c->h;
        curl_easy_reset(h);
        egress_guard g;
        if (egress_curl(h, c->egress, url, &g) != EGRESS_OK) {
            snprintf(res->error, sizeof res->error, "%s", g.why);
            res->refused = true;
            break;
        }
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->conf.connect_timeout_ms);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->conf.timeout_ms);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, res);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
        tls_curl(h, c->tls);
        if (!c->conf.keep_encoding)
            curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
        if (strcmp(method, "HEAD") == 0)
            curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
        else if (strcmp(method, "GET") != 0)
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        if (body) {
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        }
        CURLcode cc = curl_easy_perform(h);
        if (cc == CURLE_OK) {
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &res->status);
            rc = 0;
            if (!(res->status == 502 || res->status == 503 || res->status == 504) ||
                !idempotent(method))
                break;
        } else {
            res->refused = g.verdict != EGRESS_OK;
            snprintf(res->error, sizeof res->error, "%s",
                     res->refused ? g.why : s.overflow ? "response body too large" : curl_easy_strerror(cc));
            res->status = 0;
            rc = -1;
            if (s.overflow || res->refused || !idempotent(method))
                break;
        }
        if (attempt < c->conf.retries) {
            sleep_ms(backoff);
            backoff *= 2;
        }
    }
    curl_slist_free_all(hl);
    if (!res->body) {
        res->body = calloc(1, 1);
    }
    return rc;
}

/* --- streamed requests --------------------------------------------------------------------- */

typedef struct {
    const http_stream_cb *cb;
    http_client *c;
} stream_ctx;

static size_t stream_head(char *p, size_t sz, size_t n, void *ud)
{
    stream_ctx *x = ud;
    return x->cb->on_head(x->cb->ud, p, sz * n) ? sz * n : 0;
}

static size_t stream_body(char *p, size_t sz, size_t n, void *ud)
{
    stream_ctx *x = ud;
    return x->cb->on_body(x->cb->ud, p, sz * n) ? sz * n : 0;
}

static int stream_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    http_client *c = ud;
    return c->conf.cancelled && c->conf.cancelled(c->conf.cancelled_ud) ? 1 : 0;
}

http_stream_end http_client_stream(http_client *c, const char *method, const char *url, const char *const *headers,
                                   const http_stream_cb *cb, char *err, size_t cap)
{
    if (!c) {
        snprintf(err, cap, "no HTTP client (out of memory)");
        return HTTP_STREAM_FAILED;
    }
    CURL *h = c->h;
    curl_easy_reset(h);
    egress_guard g;
    if (egress_curl(h, c->egress, url, &g) != EGRESS_OK) {
        snprintf(err, cap, "%s", g.why);
        return HTTP_STREAM_REFUSED;
    }
    struct curl_slist *hl = NULL;
    for (const char *const *hd = headers; hd && *hd; hd++)
        hl = curl_slist_append(hl, *hd);
    stream_ctx x = {cb, c};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->conf.connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->conf.timeout_ms);
    if (c->conf.stall_timeout_s > 0) {
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, c->conf.stall_timeout_s);
    }
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    if (c->conf.user_agent)
        curl_easy_setopt(h, CURLOPT_USERAGENT, c->conf.user_agent);
    if (c->conf.cancelled) {
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, stream_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, c);
    }
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, stream_head);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, stream_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "GET") != 0)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    tls_curl(h, c->tls);
    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(hl);
    if (rc == CURLE_OK)
        return HTTP_STREAM_DONE;
    if (g.verdict != EGRESS_OK) {
        snprintf(err, cap, "%s", g.why);
        return HTTP_STREAM_REFUSED_ADDR;
    }
    snprintf(err, cap, "%s", curl_easy_strerror(rc));
    if (rc == CURLE_OPERATION_TIMEDOUT)
        return HTTP_STREAM_TIMEOUT;
    if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST)
        return HTTP_STREAM_UNREACHABLE;
    return HTTP_STREAM_FAILED;
}

/* --- settings ------------------------------------------------------------------------------ */

static void tls_curl(CURL *h, const http_tls_client *t)
{
    /* libcurl verifies the server (chain and name) unless told not to; we never do */
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (!t)
        return;
    if (t->ca)
        curl_easy_setopt(h, CURLOPT_CAINFO, t->ca);
    if (t->cert && t->key) {
        curl_easy_setopt(h, CURLOPT_SSLCERT, t->cert);
        curl_easy_setopt(h, CURLOPT_SSLKEY, t->key);
    }
    if (t->pin)
        curl_easy_setopt(h, CURLOPT_PINNEDPUBLICKEY, t->pin);
}

void http_client_use_tls(http_client *c, const http_tls_client *t)
{
    if (c)
        c->tls = t ? t : c->conf.tls;
}

void http_client_use_egress(http_client *c, const egress_policy *p)
{
    if (c)
        c->egress = p ? p : c->conf.egress;
}

/* pthread_once takes no argument: the slot being set up is handed over in
 * a thread-local for the duration of the call. */
static __thread http_client_slot *g_slot_in_setup;
static void slot_client_free(void *c) { http_client_free(c); }
static void slot_setup(void) { pthread_key_create(&g_slot_in_setup->key, slot_client_free); }

http_client *http_client_per_thread(http_client_slot *slot, const http_client_conf *conf)
{
    g_slot_in_setup = slot;
    pthread_once(&slot->once, slot_setup);
    http_client *c = pthread_getspecific(slot->key);
    if (!c && (c = http_client_new(conf)) != NULL && pthread_setspecific(slot->key, c) != 0) {
        http_client_free(c);
        c = NULL;
    }
    return c;
}
