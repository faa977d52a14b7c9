/* libmicrohttpd wrapper. See http_server.h.
 *
 * A request's life: the URI-log callback allocates the http_req and keeps
 * the raw request target (libmicrohttpd otherwise hands out only the
 * decoded path); the first access-handler call checks Content-Length; the
 * following calls collect the body up to max_body; the last call routes,
 * authenticates, runs the handler and queues its response.
 *
 * Threads: each of the listener's threads runs a libmicrohttpd daemon of
 * its own in "external epoll" mode, all of them accepting from one
 * listening socket. We wait on the daemon's epoll descriptor ourselves
 * and then let it process what is ready without blocking. (libmicrohttpd
 * 0.9.75's own threads can sleep in a second epoll_wait, for up to the
 * connection timeout, after a round that returned exactly 128 events,
 * with those connections not yet handled: answers held for 30 s under a
 * burst of requests.) */
#include "common/http_server.h"

#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <malloc.h>
#include <sys/eventfd.h>
#include <linux/tcp.h> /* struct tcp_info with tcpi_bytes_received */
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/supervise.h"
#include "common/thread.h"

#define MAX_RESP_HEADERS 12
/* Small things live inside the request object, so a typical request costs
 * one allocation of ours, and that one small enough for glibc's per-thread
 * cache (tcache, up to 1032 bytes); bigger ones fall back to the heap. */
#define TARGET_INLINE 256
#define CT_INLINE 48
#define HEADER_ARENA 224

/* A connection as the abuse limits see it. Each lives on the list of the
 * thread whose daemon holds it and is only touched by that thread. */
typedef struct conn_state {
    struct conn_state *prev, *next;
    int fd;
    long long deadline_ms; /* the current request head must be complete by then; 0: none */
    long long waiting_since_ms; /* when it began waiting for that head */
    bool killed;
    bool counted; /* in the per-address counts */
    bool had_request; /* a request head came: a TLS handshake was done */
    bool peer_read;   /* peer below is what the client certificate says (NULL: none) */
    tls_peer_cert *peer;
    int worker;   /* whose list it is on */
    unsigned char addr[16];
    bool v6;
} conn_state;

/* Connections per client address, over all of a listener's threads. */
typedef struct {
    pthread_mutex_t mu;
    struct ip_slot {
        unsigned char addr[16];
        uint8_t used; /* 0 empty, 1 in use, 2 deleted */
        bool v6;
        unsigned n;
    } *slot;
    size_t size; /* a power of two */
} ip_counts;

struct http_server {
    struct MHD_Daemon **d; /* one per thread */
    pthread_t *th;
    unsigned n;
    int *kick; /* eventfd per thread: a connection of its daemon was resumed, or the stop */
    _Atomic bool stopping;
    _Atomic unsigned next_thread;
    unsigned started;
    http_server_conf conf;
    const http_route *routes;
    size_t nroutes;
    unsigned char (*token_digest)[32];
    metric_cell *by_class[6]; /* 1xx..5xx, index by status/100 */
    metric_cell *unauthorized, *refused_per_ip, *head_timeouts, *shed, *tls_failed;
    tls_store *tls;        /* certificates, client CAs; for the process's life (a reload is a new worker) */
    bool wants_cert;       /* some token entry names a client certificate */
    _Atomic bool draining; /* stopping: no new connections, idle ones closed, last answers close */
    _Atomic unsigned quiesced;
    int listen_fd;
    conn_state **conns;  /* per thread: the list of its connections */
    ip_counts ips;
    _Atomic long open_conns, peak_conns; /* for giving memory back after a flood */
    char id_prefix[9];
    _Atomic unsigned long long seq;
};

static _Thread_local int tl_worker = -1; /* the listener thread's index */

/* A body not held in resp_body. */
typedef enum { SRC_FD, SRC_SHARED, SRC_STREAM } src_kind;
struct http_stream {
    struct MHD_Connection *conn;
    http_server *srv;
    int worker; /* the thread whose daemon holds the connection */
    http_req *req; /* NULL once the request is gone */
    http_stream_read read;
    void *ud;
    void (*free_ud)(void *);
};
typedef struct {
    src_kind kind;
    int fd;
    uint64_t offset, len;
    const char *shared;
    void (*unref)(void *);
    void *ref;
    http_stream *stream;
    bool stream_owned; /* not yet handed to libmicrohttpd */
} body_src;

struct http_req {
    http_server *srv;
    struct MHD_Connection *conn;
    char *target; /* raw request target, NUL-split into path and query;
                   * target_inline or malloc'd */
    const char *path, *query;
    size_t target_len;
    const char *method;
    char *body;
    size_t body_len, body_cap;
    bool started, too_large;
    char *params[HTTP_MAX_PARAMS];
    size_t nparams;
    const char *identity;
    char request_id[32];
    const http_route *route; /* set once routed; a resumed request runs it again */
    void *parked_state;
    bool parking; /* the handler parked instead of answering */
    int worker;   /* the thread that parked it */
    body_src *src;
    uint64_t streamed; /* bytes a stream body produced */
    void (*done_fn)(void *, const http_done_info *);
    void *done_ud;
    /* response */
    int status;
    char *resp_body;
    size_t resp_len;
    char *content_type; /* ct_inline or malloc'd */
    char *hname[MAX_RESP_HEADERS], *hvalue[MAX_RESP_HEADERS]; /* arena or malloc'd */
    size_t nheaders, arena_used;
    char ct_inline[CT_INLINE];
    char arena[HEADER_ARENA];
    char target_inline[TARGET_INLINE];
};

static bool owned(const http_req *r, const char *p)
{
    /* a pointer into the request object itself is not to be freed */
    return p && !(p >= (const char *)r && p < (const char *)(r + 1));
}

static void release(http_req *r, char *p)
{
    if (owned(r, p))
        free(p);
}

/* A copy of s in the request's arena, or on the heap when it is full. */
static char *req_strdup(http_req *r, const char *s)
{
    size_t n = strlen(s) + 1;
    if (n <= sizeof r->arena - r->arena_used) {
        char *p = r->arena + r->arena_used;
        memcpy(p, s, n);
        r->arena_used += n;
        return p;
    }
    return strdup(s);
}

/* --- accessors ---------------------------------------------------------- */
const char *http_method(const http_req *r) { return r->method; }
const char *http_path(const http_req *r) { return r->path; }
const char *http_raw_query(const http_req *r) { return r->query; }
const char *http_param(const http_req *r, size_t i) { return i < r->nparams ? r->params[i] : NULL; }
const char *http_identity(const http_req *r) { return r->identity; }
bool http_is_tls(const http_req *r) { return r->srv->tls != NULL; }
const char *http_request_id(const http_req *r) { return r->request_id; }

const char *http_header(const http_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *http_query_arg(const http_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *http_body(const http_req *r, size_t *len)
{
    *len = r->body_len;
    return r->body ? r->body : "";
}

bool http_peer_addr(const http_req *r, unsigned char bytes[16], bool *v6)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr)
        return false;
    const struct sockaddr *sa = ci->client_addr;
    memset(bytes, 0, 16);
    if (sa->sa_family == AF_INET) {
        memcpy(bytes, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        *v6 = false;
        return true;
    }
    if (sa->sa_family != AF_INET6)
        return false;
    const unsigned char *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    if (memcmp(a, mapped, sizeof mapped) == 0) {
        memcpy(bytes, a + 12, 4);
        *v6 = false;
    } else {
        memcpy(bytes, a, 16);
        *v6 = true;
    }
    return true;
}

int http_canon_request(const http_req *r, http_canon *c, const char **detail)
{
    const char *host = http_header(r, "Host");
    *detail = NULL;
    c->host[0] = c->target[0] = 0;
    if (!host || url_canon_host(host, strlen(host), false, c->host, sizeof c->host, &c->host_name_len) !=
                     URL_CANON_OK) {
        *detail = "a valid Host header is required";
        return 400;
    }
    /* the target as received: path, then "?" and the query when there was one */
    char raw[URL_MAX_LEN + 2];
    size_t pl = strlen(r->path), ql = strlen(r->query);
    bool has_q = r->target_len > pl; /* "?" seen, even with nothing after it */
    if (pl + 1 + ql >= sizeof raw) {
        *detail = "the request target is too long";
        return 414;
    }
    memcpy(raw, r->path, pl);
    if (has_q) {
        raw[pl] = '?';
        memcpy(raw + pl + 1, r->query, ql);
    }
    size_t n = pl + (has_q ? 1 + ql : 0);
    url_canon_status st = url_canon_target(raw, n, c->target, sizeof c->target, &c->target_len, &c->path_len);
    if (st == URL_CANON_OK)
        return 0;
    *detail = url_canon_text(st);
    return st == URL_CANON_TOO_LONG ? 414 : 400;
}

/* --- responses ---------------------------------------------------------- */
static void set_ct(http_req *r, const char *ct)
{
    release(r, r->content_type);
    if (!ct)
        ct = "application/octet-stream";
    size_t n = strlen(ct) + 1;
    if (n <= sizeof r->ct_inline) {
        memcpy(r->ct_inline, ct, n);
        r->content_type = r->ct_inline;
    } else {
        r->content_type = strdup(ct);
    }
}

void http_reply_take(http_req *r, int status, const char *content_type, char *body, size_t len)
{
    free(r->resp_body);
    r->status = status;
    r->resp_body = body;
    r->resp_len = len;
    set_ct(r, content_type);
}

void http_reply(http_req *r, int status, const char *content_type, const char *body, size_t len)
{
    if (!len) {
        http_reply_take(r, status, content_type, NULL, 0);
        return;
    }
    char *copy = malloc(len + 1);
    if (!copy) {
        http_reply_take(r, 503, "text/plain", NULL, 0);
        return;
    }
    memcpy(copy, body, len);
    copy[len] = 0;
    http_reply_take(r, status, content_type, copy, len);
}

void http_reply_json(http_req *r, int status, const char *content_type, json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    if (!s) {
        http_reply_problem(r, 500, "Internal Server Error", "cannot encode response", NULL);
        return;
    }
    http_reply_take(r, status, content_type ? content_type : "application/json", s, strlen(s));
}

void http_reply_problem(http_req *r, int status, const char *title, const char *detail,
                        json_t *extra)
{
    json_t *p = json_pack("{s:s, s:s, s:i, s:s}", "type", "about:blank", "title", title,
                          "status", status, "request_id", r->request_id);
    if (detail)
        json_object_set_new(p, "detail", json_string(detail));
    if (extra) {
        json_object_update(p, extra);
        json_decref(extra);
    }
    char *s = json_dumps(p, JSON_COMPACT);
    json_decref(p);
    if (!s)
        s = strdup("{\"title\":\"error\"}");
    http_reply_take(r, status, "application/problem+json", s, s ? strlen(s) : 0);
}

void http_reply_invalid(http_req *r, int status, const char *title, const jerr *e)
{
    http_reply_problem(r, status, title, e->reason,
                       json_pack("{s:[{s:s, s:s}]}", "errors", "path", e->path, "reason", e->reason));
}

void http_add_header(http_req *r, const char *name, const char *value)
{
    if (r->nheaders == MAX_RESP_HEADERS)
        return;
    char *n = req_strdup(r, name), *v = req_strdup(r, value);
    if (!n || !v) {
        release(r, n);
        release(r, v);
        return;
    }
    r->hname[r->nheaders] = n;
    r->hvalue[r->nheaders] = v;
    r->nheaders++;
}

static void src_free(http_req *r)
{
    body_src *b = r->src;
    if (!b)
        return;
    if (b->kind == SRC_FD && b->fd >= 0)
        close(b->fd);
    if (b->kind == SRC_SHARED && b->unref)
        b->unref(b->ref);
    if (b->kind == SRC_STREAM && b->stream) {
        if (b->stream_owned) { /* never handed to libmicrohttpd */
            if (b->stream->free_ud)
                b->stream->free_ud(b->stream->ud);
            free(b->stream);
        } else {
            b->stream->req = NULL; /* libmicrohttpd frees it later */
        }
    }
    free(b);
    r->src = NULL;
}

static body_src *new_src(http_req *r, int status, const char *content_type, src_kind kind)
{
    src_free(r);
    free(r->resp_body);
    r->resp_body = NULL;
    r->resp_len = 0;
    body_src *b = calloc(1, sizeof *b);
    if (!b) {
        http_reply_take(r, 503, "text/plain", NULL, 0);
        return NULL;
    }
    b->kind = kind;
    b->fd = -1;
    r->src = b;
    r->status = status;
    set_ct(r, content_type);
    return b;
}

void http_reply_fd(http_req *r, int status, const char *content_type, int fd, uint64_t offset, uint64_t len)
{
    body_src *b = new_src(r, status, content_type, SRC_FD);
    if (!b) {
        close(fd);
        return;
    }
    b->fd = fd;
    b->offset = offset;
    b->len = len;
    r->resp_len = (size_t)len;
}

void http_reply_shared(http_req *r, int status, const char *content_type, const char *body, size_t len,
                       void (*unref)(void *), void *ref)
{
    body_src *b = new_src(r, status, content_type, SRC_SHARED);
    if (!b) {
        unref(ref);
        return;
    }
    b->shared = body;
    b->len = len;
    b->unref = unref;
    b->ref = ref;
    r->resp_len = len;
}

void http_reply_stream(http_req *r, int status, const char *content_type, uint64_t len, http_stream_read read,
                       void *ud, void (*free_ud)(void *))
{
    body_src *b = new_src(r, status, content_type, SRC_STREAM);
    http_stream *s = b ? calloc(1, sizeof *s) : NULL;
    if (!s) {
        if (b) {
            src_free(r);
            http_reply_take(r, 503, "text/plain", NULL, 0);
        }
        if (free_ud)
            free_ud(ud);
        return;
    }
    s->conn = r->conn;
    s->srv = r->srv;
    s->worker = tl_worker;
    s->read = read;
    s->ud = ud;
    s->free_ud = free_ud;
    b->stream = s;
    b->stream_owned = true;
    b->len = len;
}

/* After a resume, the thread of the connection's daemon is woken: it may
 * be waiting on the daemon's sockets with the resume not yet seen (the
 * daemon looks for resumed connections only when it is run). The request
 * or stream may be gone once resumed, so what is needed is read first. */
static void kick(http_server *s, int worker)
{
    uint64_t one = 1;
    if (worker >= 0 && (unsigned)worker < s->n && write(s->kick[worker], &one, sizeof one) < 0) {
        /* full counter: it is signalled already */
    }
}

void http_stream_pause(http_stream *s) { MHD_suspend_connection(s->conn); }

void http_stream_wake(http_stream *s)
{
    http_server *srv = s->srv;
    int w = s->worker;
    MHD_resume_connection(s->conn);
    kick(srv, w);
}

void http_park(http_req *r, void *state)
{
    r->parked_state = state;
    r->parking = true;
    r->worker = tl_worker;
    MHD_suspend_connection(r->conn);
}

void *http_parked_state(const http_req *r) { return r->parking ? NULL : r->parked_state; }

void http_resume(http_req *r)
{
    http_server *srv = r->srv;
    int w = r->worker;
    MHD_resume_connection(r->conn);
    kick(srv, w);
}

void http_on_done(http_req *r, void (*fn)(void *ud, const http_done_info *info), void *ud)
{
    r->done_fn = fn;
    r->done_ud = ud;
}

/* --- routing ------------------------------------------------------------ */

/* Does path match pattern? Captured segments go to r->params. */
static bool route_match(const char *pattern, const char *path, http_req *r)
{
    size_t np = 0;
    char *caps[HTTP_MAX_PARAMS];
    const char *p = pattern, *s = path;
    while (*p && *s) {
        if (p[0] == '*' && p[1] == 0) { /* a final "*" segment: any remainder */
            p++;
            s += strlen(s);
            break;
        }
        if (*p == '{') {
            const char *pe = strchr(p, '}');
            const char *se = strchr(s, '/');
            size_t n = se ? (size_t)(se - s) : strlen(s);
            if (!pe || n == 0 || np == HTTP_MAX_PARAMS)
                goto fail;
            caps[np++] = strndup(s, n);
            p = pe + 1;
            s += n;
            continue;
        }
        if (*p != *s)
            goto fail;
        p++;
        s++;
    }
    if (*p || *s)
        goto fail;
    for (size_t i = 0; i < r->nparams; i++)
        free(r->params[i]);
    memcpy(r->params, caps, np * sizeof *caps);
    r->nparams = np;
    return true;
fail:
    for (size_t i = 0; i < np; i++)
        free(caps[i]);
    return false;
}

typedef enum { AUTH_OK, AUTH_MISSING, AUTH_FORBIDDEN } auth_result;

static conn_state *conn_of(struct MHD_Connection *c);

/* The client certificate of the request's connection, verified in the
 * handshake; NULL if there is none. Read once per connection, not per
 * request: the certificate cannot change within it. */
static const tls_peer_cert *request_cert(http_req *r)
{
    if (!r->srv->tls)
        return NULL;
    conn_state *cs = conn_of(r->conn);
    if (!cs) /* (no memory for it when accepted): no certificate to go by */
        return NULL;
    if (cs->peer_read)
        return cs->peer;
    const union MHD_ConnectionInfo *i = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    tls_peer_cert *pc = i && i->tls_session ? malloc(sizeof *pc) : NULL;
    if (pc && !tls_session_peer((gnutls_session_t)i->tls_session, pc)) {
        free(pc);
        pc = NULL;
    }
    cs->peer = pc;
    cs->peer_read = true;
    return pc;
}

static auth_result authenticate(http_req *r)
{
    http_server *s = r->srv;
    if (s->conf.ntokens == 0)
        return AUTH_OK;
    const tls_peer_cert *pc = s->wants_cert ? request_cert(r) : NULL;
    bool have_cert = pc != NULL;
    const char *h = http_header(r, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
        /* no token: a certificate alone may do, for an entry that has no token */
        for (size_t i = 0; have_cert && i < s->conf.ntokens; i++)
            if (!s->conf.tokens[i].token && tls_peer_matches(s->conf.tokens[i].cert, pc)) {
                r->identity = s->conf.tokens[i].identity;
                return AUTH_OK;
            }
        return AUTH_MISSING;
    }
    const char *tok = h + 7;
    while (*tok == ' ')
        tok++;
    unsigned char d[32];
    unsigned int dl = 0;
    if (!EVP_Digest(tok, strlen(tok), d, &dl, EVP_sha256(), NULL))
        return AUTH_MISSING;
    /* Look at every token so the time taken does not say which one matched. */
    int found = -1;
    for (size_t i = 0; i < s->conf.ntokens; i++)
        if (s->conf.tokens[i].token && CRYPTO_memcmp(d, s->token_digest[i], 32) == 0)
            found = (int)i;
    if (found < 0)
        return AUTH_MISSING;
    const http_token *t = &s->conf.tokens[found];
    if (t->cert && !(have_cert && tls_peer_matches(t->cert, pc)))
        return AUTH_FORBIDDEN; /* the right token from the wrong party */
    r->identity = t->identity;
    return AUTH_OK;
}

/* The request's Origin if this listener names it (credentials allowed),
 * "*" if it allows any origin (then without credentials), or NULL. */
static const char *cors_origin(http_req *r)
{
    const char *const *allow = r->srv->conf.cors_origins;
    const char *o = allow[0] ? http_header(r, "Origin") : NULL;
    if (!o || !*o)
        return NULL;
    bool any = false;
    for (; *allow; allow++) {
        if (strcmp(*allow, o) == 0)
            return o;
        any |= strcmp(*allow, "*") == 0;
    }
    return any ? "*" : NULL;
}

static void dispatch(http_req *r)
{
    http_server *s = r->srv;
    if (strcmp(r->method, "OPTIONS") == 0 && cors_origin(r) && http_header(r, "Access-Control-Request-Method")) {
        /* a preflight: what a player may send */
        http_add_header(r, "Access-Control-Allow-Methods", "GET, HEAD");
        http_add_header(r, "Access-Control-Allow-Headers", "Range, Authorization");
        http_add_header(r, "Access-Control-Max-Age", "600");
        http_reply(r, 204, NULL, NULL, 0);
        return;
    }
    const char *m = strcmp(r->method, "HEAD") == 0 ? "GET" : r->method;
    const http_route *hit = NULL;
    bool path_seen = false;
    char allow[64] = "";
    if (r->target_len > HTTP_MAX_TARGET(s->conf.max_header)) {
        char d[96];
        snprintf(d, sizeof d, "the request target exceeds %zu bytes",
                 (size_t)HTTP_MAX_TARGET(s->conf.max_header));
        http_reply_problem(r, 414, "URI Too Long", d, NULL);
        return;
    }
    for (size_t i = 0; i < s->nroutes; i++) {
        if (!route_match(s->routes[i].pattern, r->path, r))
            continue;
        path_seen = true;
        if (strlen(allow) + strlen(s->routes[i].method) + 3 < sizeof allow) {
            if (allow[0])
                strcat(allow, ", ");
            strcat(allow, s->routes[i].method);
        }
        if (strcmp(s->routes[i].method, m) == 0) {
            hit = &s->routes[i];
            break;
        }
    }
    if (!hit) {
        if (path_seen) {
            http_add_header(r, "Allow", allow);
            http_reply_problem(r, 405, "Method Not Allowed", NULL, NULL);
        } else {
            http_reply_problem(r, 404, "Not Found", "no such resource", NULL);
        }
        return;
    }
    if (r->too_large) {
        char d[96];
        snprintf(d, sizeof d, "request body exceeds %zu bytes", s->conf.max_body);
        http_reply_problem(r, 413, "Payload Too Large", d, NULL);
        return;
    }
    auth_result ar = hit->public_route ? AUTH_OK : authenticate(r);
    if (ar != AUTH_OK) {
        metric_add(s->unauthorized, 1);
        if (ar == AUTH_FORBIDDEN) {
            http_reply_problem(r, 403, "Forbidden", "the client certificate is not the one configured for this token",
                               NULL);
            return;
        }
        http_add_header(r, "WWW-Authenticate", "Bearer realm=\"cdni\"");
        http_reply_problem(r, 401, "Unauthorized",
                           s->wants_cert ? "a valid bearer token or client certificate is required"
                                         : "a valid bearer token is required",
                           NULL);
        return;
    }
    r->route = hit;
    hit->fn(r, hit->ctx);
    if (!r->status && !r->parking)
        http_reply_problem(r, 500, "Internal Server Error", "handler gave no response", NULL);
}

/* --- abuse limits: connections per address, request-head deadlines ------ */

static bool sockaddr_key(const struct sockaddr *sa, unsigned char out[16], bool *v6)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    memset(out, 0, 16);
    if (sa && sa->sa_family == AF_INET) {
        memcpy(out, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        *v6 = false;
        return true;
    }
    if (!sa || sa->sa_family != AF_INET6)
        return false;
    const unsigned char *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    *v6 = memcmp(a, mapped, 12) != 0; /* an IPv4-mapped peer counts as its IPv4 address */
    memcpy(out, *v6 ? a : a + 12, *v6 ? 16 : 4);
    return true;
}

static size_t ip_hash(const unsigned char a[16], bool v6)
{
    uint64_t h = 1469598103934665603ull ^ v6;
    for (int i = 0; i < 16; i++)
        h = (h ^ a[i]) * 1099511628211ull;
    return (size_t)h;
}

/* The slot of an address (for n >= 0 changes); NULL when the table is full. */
static struct ip_slot *ip_find(ip_counts *t, const unsigned char a[16], bool v6, bool add)
{
    struct ip_slot *free_slot = NULL;
    size_t m = t->size - 1;
    for (size_t i = ip_hash(a, v6) & m, k = 0; k < t->size; i = (i + 1) & m, k++) {
        struct ip_slot *sl = &t->slot[i];
        if (sl->used == 1 && sl->v6 == v6 && memcmp(sl->addr, a, 16) == 0)
            return sl;
        if (sl->used != 1 && !free_slot)
            free_slot = sl;
        if (sl->used == 0)
            break;
    }
    if (!add || !free_slot)
        return NULL;
    memcpy(free_slot->addr, a, 16);
    free_slot->v6 = v6;
    free_slot->used = 1;
    free_slot->n = 0;
    return free_slot;
}

static unsigned ip_count(http_server *s, const unsigned char a[16], bool v6, int delta)
{
    pthread_mutex_lock(&s->ips.mu);
    struct ip_slot *sl = ip_find(&s->ips, a, v6, delta > 0);
    unsigned n = 0;
    if (sl) {
        if (delta > 0)
            sl->n++;
        else if (delta < 0 && sl->n > 0 && --sl->n == 0)
            sl->used = 2;
        n = sl->used == 1 ? sl->n : 0;
    }
    pthread_mutex_unlock(&s->ips.mu);
    return n;
}

/* Before a connection is set up: refused when its address holds its share already. */
/* A connection on_accept let in is counted there (check and count under
 * one lock, so two threads cannot both take the last place), and the
 * count handed to its conn_state when libmicrohttpd announces it on the
 * same thread; a connection libmicrohttpd dropped in between (its own
 * limit) never announces itself, and the next accept on the thread gives
 * its place back. */
static _Thread_local struct {
    http_server *s;
    unsigned char addr[16];
    bool v6;
} tl_resv;

static void resv_release(void)
{
    if (tl_resv.s) {
        ip_count(tl_resv.s, tl_resv.addr, tl_resv.v6, -1);
        tl_resv.s = NULL;
    }
}

static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t len)
{
    http_server *s = cls;
    unsigned char a[16];
    bool v6;
    resv_release();
    if (!sockaddr_key(addr, a, &v6))
        return MHD_YES;
    pthread_mutex_lock(&s->ips.mu);
    struct ip_slot *sl = ip_find(&s->ips, a, v6, true);
    bool full = s->conf.max_per_ip && sl && sl->used == 1 && sl->n >= s->conf.max_per_ip;
    if (sl && !full)
        sl->n++;
    pthread_mutex_unlock(&s->ips.mu);
    if (full) {
        metric_add(s->refused_per_ip, 1);
        return MHD_NO;
    }
    if (sl) {
        tl_resv.s = s;
        memcpy(tl_resv.addr, a, 16);
        tl_resv.v6 = v6;
    }
    return MHD_YES;
}

static void conn_unlink(http_server *s, conn_state *cs)
{
    conn_state **head = &s->conns[cs->worker];
    if (cs->prev)
        cs->prev->next = cs->next;
    else if (*head == cs)
        *head = cs->next;
    if (cs->next)
        cs->next->prev = cs->prev;
}

static conn_state *conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *i = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return i ? i->socket_context : NULL;
}

/* A TLS connection closed without a request: if its handshake did not
 * complete, it failed (or the client gave up): counted, and logged with
 * the client's address and the last reason this thread saw. */
static void note_tls_failure(http_server *s, struct MHD_Connection *c, conn_state *cs)
{
    const union MHD_ConnectionInfo *i = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    gnutls_session_t ses = i ? (gnutls_session_t)i->tls_session : NULL;
    if (ses && tls_session_done(ses))
        return;
    struct tcp_info ti;
    socklen_t tl = sizeof ti;
    if (cs->fd >= 0 && getsockopt(cs->fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) == 0 &&
        tl >= offsetof(struct tcp_info, tcpi_bytes_received) + sizeof ti.tcpi_bytes_received &&
        ti.tcpi_bytes_received <= 1) {
        /* connected and left without sending a byte (the count includes
         * the FIN): a port probe, a load balancer's TCP check; not a
         * failed handshake */
        tls_set_last_error(NULL);
        return;
    }
    metric_add(s->tls_failed, 1);
    char addr[INET6_ADDRSTRLEN] = "?";
    if (cs->counted)
        inet_ntop(cs->v6 ? AF_INET6 : AF_INET, cs->addr, addr, sizeof addr);
    const char *why = tls_last_error();
    log_kv(LOG_INFO, "tls handshake failed", "listener", s->conf.name, "client", addr, "detail",
           *why ? why : "closed during the handshake", NULL);
    tls_set_last_error(NULL);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    http_server *s = cls;
    /* started on a listener thread; closed there too, or by the stop once
     * those threads are gone */
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        conn_state *cs = tl_worker >= 0 ? calloc(1, sizeof *cs) : NULL;
        if (!cs)
            return;
        cs->worker = tl_worker;
        const union MHD_ConnectionInfo *fi = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        const union MHD_ConnectionInfo *ai = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        cs->fd = fi ? fi->connect_fd : -1;
        cs->counted = ai && sockaddr_key(ai->client_addr, cs->addr, &cs->v6);
        if (cs->counted && tl_resv.s == s && tl_resv.v6 == cs->v6 && memcmp(tl_resv.addr, cs->addr, 16) == 0)
            tl_resv.s = NULL; /* counted when accepted */
        else if (cs->counted)
            ip_count(s, cs->addr, cs->v6, +1);
        unsigned to = s->conf.head_timeout_s ? s->conf.head_timeout_s : s->conf.timeout_s;
        cs->waiting_since_ms = mono_ms();
        cs->deadline_ms = cs->waiting_since_ms + (long long)to * 1000;
        cs->next = s->conns[tl_worker];
        if (cs->next)
            cs->next->prev = cs;
        s->conns[tl_worker] = cs;
        *socket_context = cs;
        long open = atomic_fetch_add(&s->open_conns, 1) + 1;
        long peak = atomic_load(&s->peak_conns);
        while (open > peak && !atomic_compare_exchange_weak(&s->peak_conns, &peak, open)) {
        }
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        conn_state *cs = *socket_context;
        if (!cs)
            return;
        if (s->tls && !cs->had_request)
            note_tls_failure(s, c, cs);
        conn_unlink(s, cs);
        if (cs->counted)
            ip_count(s, cs->addr, cs->v6, -1);
        free(cs->peer);
        free(cs);
        *socket_context = NULL;
        atomic_fetch_sub(&s->open_conns, 1);
    }
}


/* Under pressure (the listener at 90 % of its connections), a connection
 * that has waited this long for a request head is shed: a client that
 * means to ask has sent its head by then; slow clients spread over many
 * addresses would otherwise hold every slot until their deadlines. */
#define SHED_AFTER_MS 1000
/* While draining, a connection has this long to send its next head. */
#define DRAIN_IDLE_MS 1000

/* The listener thread, between rounds: connections whose request head is
 * overdue are shut down (libmicrohttpd then sees the end of the stream and
 * closes them), and under pressure those that wait long for one; after a
 * flood has ebbed, freed memory goes back. */
static void enforce_deadlines(http_server *s, unsigned me)
{
    long long now = mono_ms();
    unsigned limit = s->conf.max_connections ? s->conf.max_connections : 1024;
    bool pressure = (unsigned long)atomic_load(&s->open_conns) * 10 >= (unsigned long)limit * 9;
    for (conn_state *cs = s->conns[me]; cs; cs = cs->next) {
        if (!cs->deadline_ms || cs->killed || cs->fd < 0)
            continue;
        bool overdue = now > cs->deadline_ms, shed = pressure && now - cs->waiting_since_ms > SHED_AFTER_MS;
        if (atomic_load(&s->draining) && now - cs->waiting_since_ms > DRAIN_IDLE_MS) {
            /* draining: a connection that has not asked for DRAIN_IDLE_MS
             * (kept alive after an answer, or new) is closed; its client
             * asks the next process. One that asks sooner is answered, with
             * Connection: close. Closing at once would race a client's next
             * request on its kept-alive connection. */
            shutdown(cs->fd, SHUT_RDWR);
            cs->killed = true;
            continue;
        }
        if (overdue || shed) {
            shutdown(cs->fd, SHUT_RDWR);
            cs->killed = true;
            metric_add(overdue ? s->head_timeouts : s->shed, 1);
        }
    }
    long open = atomic_load(&s->open_conns), peak = atomic_load(&s->peak_conns);
    if (me == 0 && peak >= 256 && open < peak / 4 &&
        atomic_compare_exchange_strong(&s->peak_conns, &peak, open)) {
        malloc_trim(0); /* the connections' memory pools, freed to the arenas */
    }
}

/* --- libmicrohttpd callbacks -------------------------------------------- */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    http_server *s = cls;
    /* Only the part before the inline buffers is cleared: those are
     * written before they are read. */
    http_req *r = malloc(sizeof *r);
    if (!r)
        return NULL;
    memset(r, 0, offsetof(http_req, ct_inline));
    r->srv = s;
    r->conn = c;
    if (s->tls) {
        conn_state *cs = conn_of(c);
        if (cs)
            cs->had_request = true;
    }
    if (!uri)
        uri = "/";
    size_t ulen = strlen(uri);
    r->target = ulen < sizeof r->target_inline ? r->target_inline : malloc(ulen + 1);
    if (!r->target) {
        free(r);
        return NULL;
    }
    memcpy(r->target, uri, ulen + 1);
    r->target_len = ulen;
    char *q = memchr(r->target, '?', ulen);
    if (q)
        *q++ = 0;
    r->path = r->target;
    r->query = q ? q : "";
    /* "<8 hex prefix>-<hex sequence>" without printf: this runs per request */
    unsigned long long n = atomic_fetch_add(&s->seq, 1);
    static const char hex[] = "0123456789abcdef";
    char digits[16];
    size_t nd = 0;
    do {
        digits[nd++] = hex[n & 15];
        n >>= 4;
    } while (n);
    memcpy(r->request_id, s->id_prefix, 8);
    r->request_id[8] = '-';
    for (size_t i = 0; i < nd; i++)
        r->request_id[9 + i] = digits[nd - 1 - i];
    r->request_id[9 + nd] = 0;
    return r;
}

_Static_assert(sizeof(http_req) <= 1032, "http_req should fit glibc's tcache");

static void free_req(http_req *r)
{
    src_free(r);
    release(r, r->target);
    free(r->body);
    for (size_t i = 0; i < r->nparams; i++)
        free(r->params[i]);
    free(r->resp_body);
    release(r, r->content_type);
    for (size_t i = 0; i < r->nheaders; i++) {
        release(r, r->hname[i]);
        release(r, r->hvalue[i]);
    }
    free(r);
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
    http_req *r = *con_cls;
    http_server *s = cls;
    conn_state *cs = conn_of(c);
    if (cs && !cs->killed) { /* the next request's head: within the idle allowance */
        cs->waiting_since_ms = mono_ms();
        cs->deadline_ms = cs->waiting_since_ms + (long long)(s->conf.timeout_s ? s->conf.timeout_s : 30) * 1000;
    }
    if (r) {
        if (r->done_fn) {
            http_done_info info = {r->status, r->streamed, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK};
            if (info.completed && !r->streamed)
                info.body_bytes = r->resp_len;
            r->done_fn(r->done_ud, &info);
        }
        free_req(r);
    }
    *con_cls = NULL;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    http_stream *s = cls;
    long long n = s->read(s->ud, s, pos, buf, max);
    if (n > 0 && s->req)
        s->req->streamed = pos + (uint64_t)n;
    if (n == HTTP_STREAM_END)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (n < 0)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    return (ssize_t)n;
}

static void stream_free(void *cls)
{
    http_stream *s = cls;
    if (s->req && s->req->src)
        s->req->src->stream = NULL;
    if (s->free_ud)
        s->free_ud(s->ud);
    free(s);
}

static void shared_unref(void *cls)
{
    body_src *b = cls;
    b->unref(b->ref);
    free(b);
}

static struct MHD_Response *make_response(http_req *r)
{
    body_src *b = r->src;
    if (!b)
        return MHD_create_response_from_buffer(r->resp_len, r->resp_body ? r->resp_body : (void *)"",
                                               r->resp_body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    struct MHD_Response *resp = NULL;
    switch (b->kind) {
    case SRC_FD:
        resp = MHD_create_response_from_fd_at_offset64(b->len, b->fd, b->offset);
        if (resp)
            b->fd = -1; /* libmicrohttpd closes it */
        break;
    case SRC_SHARED:
        resp = MHD_create_response_from_buffer_with_free_callback_cls(b->len, (void *)b->shared, shared_unref, b);
        if (resp)
            r->src = NULL; /* freed by shared_unref */
        break;
    case SRC_STREAM:
        resp = MHD_create_response_from_callback(b->len == HTTP_LEN_UNKNOWN ? MHD_SIZE_UNKNOWN : b->len, 64 * 1024,
                                                 stream_read, b->stream, stream_free);
        if (resp) {
            b->stream->req = r;
            b->stream_owned = false; /* libmicrohttpd's now; the request keeps a view */
        }
        break;
    }
    return resp;
}

static enum MHD_Result send_response(http_req *r)
{
    struct MHD_Response *resp = make_response(r);
    if (!resp)
        return MHD_NO;
    if (!r->src)
        r->resp_body = NULL; /* now libmicrohttpd's */
    bool has_body = r->resp_len || r->src;
    if (r->content_type && has_body)
        MHD_add_response_header(resp, "Content-Type", r->content_type);
    MHD_add_response_header(resp, "X-Request-Id", r->request_id);
    const char *origin = cors_origin(r);
    if (origin) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin);
        if (strcmp(origin, "*") != 0)
            MHD_add_response_header(resp, "Access-Control-Allow-Credentials", "true");
        MHD_add_response_header(resp, "Access-Control-Expose-Headers", "X-Cache, Age, Content-Length, Content-Range");
    }
    if (r->srv->conf.cors_origins[0])
        MHD_add_response_header(resp, "Vary", "Origin");
    for (size_t i = 0; i < r->nheaders; i++) {
        /* the listener's CORS policy answers for it: no second Access-Control-Allow-Origin
         * (a cached origin's own, say), which browsers refuse */
        if (origin && (strcasecmp(r->hname[i], "Access-Control-Allow-Origin") == 0 ||
                       strcasecmp(r->hname[i], "Access-Control-Allow-Credentials") == 0 ||
                       strcasecmp(r->hname[i], "Access-Control-Expose-Headers") == 0))
            continue;
        MHD_add_response_header(resp, r->hname[i], r->hvalue[i]);
    }
    if (atomic_load(&r->srv->draining))
        MHD_add_response_header(resp, "Connection", "close"); /* the client's next request goes to the next process */
    int cls = r->status / 100;
    if (cls >= 1 && cls <= 5)
        metric_add(r->srv->by_class[cls], 1);
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    http_req *r = *con_cls;
    if (!r)
        return MHD_NO;
    if (!r->started) {
        r->started = true;
        r->method = method;
        conn_state *cs = conn_of(c);
        if (cs)
            cs->deadline_ms = 0; /* the head is complete */
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > r->srv->conf.max_body)
            r->too_large = true;
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->too_large || r->body_len + n > r->srv->conf.max_body) {
            r->too_large = true;
            return MHD_YES; /* read and drop, answer 413 at the end */
        }
        if (r->body_len + n + 1 > r->body_cap) {
            size_t cap = (r->body_len + n + 1) * 2;
            if (cap > r->srv->conf.max_body + 1)
                cap = r->srv->conf.max_body + 1;
            char *nb = realloc(r->body, cap);
            if (!nb)
                return MHD_NO;
            r->body = nb;
            r->body_cap = cap;
        }
        memcpy(r->body + r->body_len, upload_data, n);
        r->body_len += n;
        r->body[r->body_len] = 0;
        return MHD_YES;
    }
    if (r->route && r->parked_state) { /* resumed after http_park */
        r->parking = false;
        r->route->fn(r, r->route->ctx);
        if (!r->parking && !r->status)
            http_reply_problem(r, 500, "Internal Server Error", "handler gave no response", NULL);
    } else {
        dispatch(r);
    }
    if (r->parking)
        return MHD_YES;
    return send_response(r);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = 0;
    http_server *s = cls;
    if (s->tls && (strstr(msg, "TLS") || strstr(msg, "handshake") || strstr(msg, "certificate"))) {
        /* the reason of a failing handshake: logged with the connection */
        if (!*tls_last_error())
            tls_set_last_error(msg);
        return;
    }
    log_kv(LOG_WARN, "libmicrohttpd", "detail", msg, NULL);
}

/* One listener thread: waits for its daemon's sockets (or a resumed
 * request, or the stop), then has the daemon handle what is ready. */
static void *serve(void *arg)
{
    http_server *s = arg;
    unsigned me = atomic_fetch_add(&s->next_thread, 1);
    char name[16];
    snprintf(name, sizeof name, "http-%.9s", s->conf.name ? s->conf.name : "");
    thread_set(name, 0);
    tl_worker = (int)me;
    tls_use_store(s->tls);
    struct MHD_Daemon *d = s->d[me];
    const union MHD_DaemonInfo *ei = MHD_get_daemon_info(d, MHD_DAEMON_INFO_EPOLL_FD);
    int efd = ei ? ei->epoll_fd : -1;
    long long next_check = mono_ms() + 250;
    bool quiesced = false;
    while (!atomic_load(&s->stopping) && efd >= 0) {
        MHD_UNSIGNED_LONG_LONG to = 250;
        if (MHD_get_timeout(d, &to) != MHD_YES || to > 250)
            to = 250;
        struct pollfd p[2] = {{.fd = efd, .events = POLLIN}, {.fd = s->kick[me], .events = POLLIN}};
        poll(p, 2, (int)to); /* (to 0: a look, as a kick may be waiting) */
        if (atomic_load(&s->stopping))
            break;
        uint64_t k;
        if ((p[1].revents & POLLIN) && read(s->kick[me], &k, sizeof k) < 0) {
            /* another look took it: the run below sees the resume */
        }
        MHD_run(d);
        if (atomic_load(&s->draining) && !quiesced) {
            /* no more accepts here; the last thread to let go closes our
             * copy of the listening socket (the master keeps its own) */
            MHD_quiesce_daemon(d);
            quiesced = true;
            if (atomic_fetch_add(&s->quiesced, 1) + 1 == s->n && s->listen_fd >= 0)
                close(s->listen_fd);
            next_check = 0;
        }
        if (mono_ms() >= next_check) {
            enforce_deadlines(s, me);
            next_check = mono_ms() + 250;
        }
    }
    return NULL;
}

#define EXPIRY_WARN_S (14 * 86400)

/* The TLS listeners of this process, for the certificate report. */
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static http_server *registry[16];

static void reg_set(http_server *s, bool add)
{
    pthread_mutex_lock(&reg_mu);
    for (size_t i = 0; i < 16; i++)
        if (add ? !registry[i] : registry[i] == s) {
            registry[i] = add ? s : NULL;
            break;
        }
    pthread_mutex_unlock(&reg_mu);
}

json_t *http_tls_report(bool *expiring)
{
    json_t *a = json_array();
    time_t now = time(NULL);
    *expiring = false;
    pthread_mutex_lock(&reg_mu);
    for (size_t i = 0; i < 16; i++) {
        const char *file = NULL;
        time_t t = registry[i] && registry[i]->tls ? tls_store_first_expiry(registry[i]->tls, &file) : 0;
        if (!t)
            continue;
        char when[CLOCK_ISO8601_LEN];
        clock_iso8601(t, when);
        bool soon = t - now < EXPIRY_WARN_S;
        *expiring |= soon;
        json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:I, s:b}", "listener", registry[i]->conf.name, "file",
                                           file ? file : "", "not_after", when, "days_left",
                                           (json_int_t)((t - now) / 86400), "expiring", soon));
    }
    pthread_mutex_unlock(&reg_mu);
    return a;
}

static void warn_expiry(http_server *s)
{
    const char *file = NULL;
    time_t t = tls_store_first_expiry(s->tls, &file);
    if (t && t - time(NULL) < EXPIRY_WARN_S) {
        char when[CLOCK_ISO8601_LEN];
        clock_iso8601(t, when);
        log_kv(LOG_WARN, t < time(NULL) ? "certificate expired" : "certificate expires within 14 days", "listener",
               s->conf.name, "file", file ? file : "?", "not_after", when, NULL);
    }
}

http_server *http_server_start(const http_server_conf *conf, const http_route *routes,
                               size_t nroutes)
{
    http_server *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->conf = *conf;
    s->routes = routes;
    s->nroutes = nroutes;
    unsigned char rnd[4];
    RAND_bytes(rnd, sizeof rnd);
    snprintf(s->id_prefix, sizeof s->id_prefix, "%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3]);
    if (conf->ntokens) {
        s->token_digest = calloc(conf->ntokens, 32);
        for (size_t i = 0; i < conf->ntokens; i++) {
            unsigned int dl;
            s->wants_cert |= conf->tokens[i].cert != NULL;
            if (!conf->tokens[i].token)
                continue;
            EVP_Digest(conf->tokens[i].token, strlen(conf->tokens[i].token), s->token_digest[i],
                       &dl, EVP_sha256(), NULL);
        }
    }
    if (conf->metrics) {
        static const char *classes[] = {"", "1xx", "2xx", "3xx", "4xx", "5xx"};
        for (int i = 1; i <= 5; i++) {
            char labels[96];
            snprintf(labels, sizeof labels, "listener=\"%s\",code=\"%s\"", conf->name, classes[i]);
            s->by_class[i] = metrics_series(conf->metrics, "cdni_http_responses_total", labels,
                                            "counter", "HTTP responses sent, by listener and status class");
        }
        char labels[64];
        snprintf(labels, sizeof labels, "listener=\"%s\"", conf->name);
        s->unauthorized = metrics_series(conf->metrics, "cdni_http_unauthorized_total", labels,
                                         "counter", "requests refused for a missing or wrong bearer token");
        s->refused_per_ip = metrics_series(conf->metrics, "cdni_http_connections_refused_total", labels, "counter",
                                           "connections refused: their client address held max_connections_per_ip");
        s->head_timeouts = metrics_series(conf->metrics, "cdni_http_head_timeouts_total", labels, "counter",
                                          "connections closed: no complete request head within its deadline");
        s->shed = metrics_series(conf->metrics, "cdni_http_connections_shed_total", labels, "counter",
                                 "connections closed with the listener near its limit: waiting over 1 s for a head");
        s->tls_failed = metrics_series(conf->metrics, "cdni_tls_handshake_failures_total", labels, "counter",
                                       "TLS connections closed before their handshake completed");
    } else {
        static metric_cell sink[11];
        for (int i = 1; i <= 5; i++)
            s->by_class[i] = &sink[i];
        s->unauthorized = &sink[6];
        s->refused_per_ip = &sink[7];
        s->head_timeouts = &sink[8];
        s->shed = &sink[9];
        s->tls_failed = &sink[10];
    }
    if (conf->tls.ncerts) {
        char err[256];
        s->tls = tls_store_load(&conf->tls, err, sizeof err);
        if (!s->tls) {
            log_kv(LOG_ERROR, "cannot load TLS", "listener", conf->name, "detail", err, NULL);
            free(s->token_digest);
            free(s);
            return NULL;
        }
        warn_expiry(s);
    }

    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG; /* our threads: see the top of this file */
    if (s->tls)
        flags |= MHD_USE_TLS;
    if (conf->suspendable)
        flags |= MHD_ALLOW_SUSPEND_RESUME;
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, conf->bind, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)conf->port);
    } else if (inet_pton(AF_INET6, conf->bind, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)conf->port);
        flags |= MHD_USE_IPv6;
    } else {
        log_kv(LOG_ERROR, "bad listen address", "listener", conf->name, "bind", conf->bind, NULL);
        tls_store_free(s->tls);
        free(s->token_digest);
        free(s);
        return NULL;
    }
    s->n = conf->threads ? conf->threads : 1;
    s->conns = calloc(s->n, sizeof *s->conns);
    pthread_mutex_init(&s->ips.mu, NULL);
    for (s->ips.size = 64; s->ips.size < 2 * (size_t)(conf->max_connections ? conf->max_connections : 1024);)
        s->ips.size *= 2;
    s->ips.slot = calloc(s->ips.size, sizeof *s->ips.slot);
    s->d = calloc(s->n, sizeof *s->d);
    s->th = calloc(s->n, sizeof *s->th);
    s->kick = malloc(s->n * sizeof *s->kick);
    for (unsigned i = 0; s->kick && i < s->n; i++)
        s->kick[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    unsigned limit = (conf->max_connections ? conf->max_connections : 1024) / s->n;
    int lfd = supervise_listen_fd(conf->bind, conf->port); /* the master's socket, handed down */
    s->listen_fd = -1;
    bool ok = s->d && s->th && s->kick && s->conns && s->ips.slot;
    for (unsigned i = 0; ok && i < s->n; i++)
        ok = s->kick[i] >= 0;
    unsigned timeout = conf->timeout_s ? conf->timeout_s : 30;
    size_t mem = conf->max_header ? conf->max_header : 32768;
    for (unsigned i = 0; ok && i < s->n; i++) {
        /* the first daemon binds the socket; the others accept from it */
        struct MHD_OptionItem where[] = {
            i == 0 && lfd < 0 ? (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &ss}
                              : (struct MHD_OptionItem){MHD_OPTION_LISTEN_SOCKET, lfd, NULL},
            /* certificates by SNI from the current store; client
             * certificates asked for and checked there too */
            s->tls ? (struct MHD_OptionItem){MHD_OPTION_HTTPS_CERT_CALLBACK, 0, (void *)&tls_retrieve_cert}
                   : (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL},
            {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)(s->tls ? tls_store_priorities(s->tls) : "")},
            {MHD_OPTION_END, 0, NULL}};
        s->d[i] = MHD_start_daemon(flags, (uint16_t)conf->port, on_accept, s, &on_request, s,
                                   MHD_OPTION_EXTERNAL_LOGGER, &on_mhd_log, s, MHD_OPTION_ARRAY, where,
                                   MHD_OPTION_CONNECTION_LIMIT,
                                   limit ? limit : 1, MHD_OPTION_CONNECTION_TIMEOUT, timeout,
                                   MHD_OPTION_CONNECTION_MEMORY_LIMIT, mem, MHD_OPTION_URI_LOG_CALLBACK, &on_uri, s,
                                   MHD_OPTION_NOTIFY_COMPLETED, &on_done, s, MHD_OPTION_NOTIFY_CONNECTION,
                                   &on_connection, s, MHD_OPTION_END);
        ok = s->d[i] != NULL;
        if (ok && i == 0) {
            const union MHD_DaemonInfo *li = MHD_get_daemon_info(s->d[0], MHD_DAEMON_INFO_LISTEN_FD);
            lfd = li ? li->listen_fd : -1;
            s->listen_fd = lfd;
            ok = lfd >= 0;
        }
    }
    for (unsigned i = 0; ok && i < s->n; i++)
        ok = pthread_create(&s->th[i], NULL, serve, s) == 0 && ++s->started;
    if (!ok) {
        char port[16];
        snprintf(port, sizeof port, "%d", conf->port);
        log_kv(LOG_ERROR, "cannot listen", "listener", conf->name, "bind", conf->bind, "port", port, NULL);
        http_server_stop(s);
        return NULL;
    }
    char port[16];
    snprintf(port, sizeof port, "%d", conf->port);
    log_kv(LOG_INFO, "listening", "listener", conf->name, "bind", conf->bind, "port", port, NULL);
    if (s->tls)
        reg_set(s, true);
    return s;
}

void http_server_drain(http_server *const *servers, size_t n, unsigned timeout_s)
{
    for (size_t i = 0; i < n; i++)
        if (servers[i]) {
            atomic_store(&servers[i]->draining, true);
            for (unsigned t = 0; servers[i]->kick && t < servers[i]->n; t++)
                kick(servers[i], (int)t);
        }
    long long end = mono_ms() + (long long)timeout_s * 1000;
    for (;;) {
        long open = 0;
        for (size_t i = 0; i < n; i++)
            if (servers[i])
                open += atomic_load(&servers[i]->open_conns);
        if (open == 0)
            return;
        if (mono_ms() >= end) {
            char left[24];
            snprintf(left, sizeof left, "%ld", open);
            log_kv(LOG_WARN, "drain bound reached; closing what is left", "connections", left, NULL);
            return;
        }
        sleep_ms(50);
    }
}

void http_server_stop(http_server *s)
{
    if (!s)
        return;
    if (s->tls)
        reg_set(s, false);
    atomic_store(&s->stopping, true);
    for (unsigned i = 0; s->kick && i < s->n; i++)
        if (s->kick[i] >= 0)
            kick(s, (int)i);
    for (unsigned i = 0; i < s->started; i++)
        pthread_join(s->th[i], NULL);
    /* the listening socket is the first daemon's: the others let go of it first */
    for (unsigned i = 1; s->d && i < s->n; i++)
        if (s->d[i]) {
            MHD_quiesce_daemon(s->d[i]);
            MHD_stop_daemon(s->d[i]);
        }
    if (s->d && s->d[0])
        MHD_stop_daemon(s->d[0]);
    for (unsigned i = 0; s->kick && i < s->n; i++)
        if (s->kick[i] >= 0)
            close(s->kick[i]);
    free(s->kick);
    free(s->d);
    free(s->th);
    free(s->token_digest);
    tls_store_free(s->tls);
    free(s->conns);
    free(s->ips.slot);
    pthread_mutex_destroy(&s->ips.mu);
    free(s);
}

void http_routes_add(http_routes *t, http_route route)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        http_route *r = realloc(t->r, cap * sizeof *r);
        if (!r) {
            t->failed = true;
            return;
        }
        t->r = r;
        t->cap = cap;
    }
    t->r[t->n++] = route;
}

void http_routes_free(http_routes *t)
{
    free(t->r);
    *t = (http_routes){0};
}
