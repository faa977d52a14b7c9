/* HTTP server: libmicrohttpd behind method+path routing.
 *
 * One server per listener, with `threads` threads (one per core is what
 * measured best here), each running a libmicrohttpd daemon of its own on
 * the listener's one socket (see http_server.c for why not libmicrohttpd's
 * own thread pool); handlers run on those threads and must not block for
 * long: a handler that waits parks its request (http_park), and whatever
 * thread resumes it (http_resume) wakes the request's thread. A handler gets the whole request
 * (body already read, within the size limit) and fills in the response with
 * the http_reply* functions; the response is queued when the handler
 * returns, on libmicrohttpd's second call, which keeps the connection alive.
 *
 * Bearer-token authentication is done here for every route not marked
 * public, comparing SHA-256 digests in constant time. */
#ifndef COMMON_HTTP_SERVER_H
#define COMMON_HTTP_SERVER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/jcheck.h"
#include "common/metrics.h"
#include "common/tls.h"
#include "common/url.h"

#define HTTP_MAX_PARAMS 4

typedef struct http_req http_req;
typedef void (*http_handler)(http_req *req, void *ctx);

typedef struct {
    const char *method;  /* "GET", "PUT", ...; GET routes also answer HEAD */
    const char *pattern; /* "/csp/v1/services/{id}": {x} captures one segment;
                          * a final segment "*" matches any remainder */
    http_handler fn;
    void *ctx;
    bool public_route; /* no bearer token needed */
} http_route;

/* A route table assembled module by module, each adding its own routes
 * (so nobody counts them). The server started with t->r keeps pointing at
 * it: free the table after the server stops. */
typedef struct {
    http_route *r;
    size_t n, cap;
    bool failed; /* out of memory: a route was lost (refuse to start) */
} http_routes;
void http_routes_add(http_routes *t, http_route route);
void http_routes_free(http_routes *t);

/* Who may call a listener's non-public routes. An entry with a token
 * needs that bearer token; one with cert needs a client certificate that
 * matches (on a TLS listener asking for them); one with both needs both,
 * from the same party. A wrong certificate beside a right token is 403. */
typedef struct {
    const char *token;    /* the secret; NULL: the certificate alone */
    const char *identity; /* who presents it (peer id, CSP id, "operator") */
    const tls_peer_id *cert; /* NULL: the token alone */
} http_token;

typedef struct {
    const char *name; /* listener name for logs and metrics: "peer", "csp", ... */
    const char *bind; /* numeric IPv4 or IPv6 address */
    int port;
    unsigned threads;
    unsigned max_connections;
    unsigned max_per_ip;     /* connections one client address may hold; 0: no cap */
    unsigned timeout_s;      /* idle connection, and how long a kept-alive
                              * connection may wait with its next request head */
    unsigned head_timeout_s; /* a new connection's first request head must be
                              * complete within this; trickling it does not extend
                              * it (0: only timeout_s) */
    unsigned drain_s;        /* how long a stop may wait for connections to finish */
    size_t max_body;        /* larger bodies get 413 */
    size_t max_header;      /* per-connection memory for the request and
                             * response heads; a request target longer than
                             * HTTP_MAX_TARGET(max_header) gets 414 */
    const http_token *tokens; /* NULL/0: no authentication on this listener */
    tls_conf tls;             /* no certificates: plain HTTP */
    size_t ntokens;
    metrics *metrics;
    bool suspendable; /* handlers may park requests and stream (http_park, http_reply_stream) */
    /* CORS for browsers (players, status pages of another origin): a
     * request whose Origin is listed gets that origin back in
     * Access-Control-Allow-Origin with credentials allowed (the session
     * cookies of HAS delivery); "*" lets any other origin read, without
     * credentials; OPTIONS preflights of GET/HEAD are answered.
     * NULL-terminated; none: no CORS headers added. */
#define HTTP_MAX_CORS 8
    const char *cors_origins[HTTP_MAX_CORS + 1];
} http_server_conf;

/* The request head and the response head share one buffer per connection,
 * and a redirect's Location repeats the target: half of it, less room for
 * the other header lines, is what a target may take. */
#define HTTP_MAX_TARGET(max_header) ((max_header) / 2 - 1024)

/* Request-head memory of listeners facing end users (players send short
 * heads; signed URLs of a few kilobytes still fit). */
#define DELIVERY_HEADER_BYTES 16384

typedef struct http_server http_server;

/* Starts listening; NULL with a logged reason on failure. routes must
 * outlive the server. */
http_server *http_server_start(const http_server_conf *conf, const http_route *routes,
                               size_t nroutes); /* new: http_server_stop */
void http_server_stop(http_server *s);
/* Stopping gently: the listeners stop accepting, answers from now on say
 * Connection: close, idle connections are closed; returns once no
 * connection is left or after timeout_s. Then stop them. */
void http_server_drain(http_server *const *servers, size_t n, unsigned timeout_s);
/* Every TLS listener of the process: [{"listener", "file", "not_after",
 * "days_left", "expiring"}] (expiring: within 14 days, or past);
 * *expiring if any is. For /readyz and the status pages. */
json_t *http_tls_report(bool *expiring); /* new reference */

/* --- request accessors (borrowed; valid during the handler) ------------- */
const char *http_method(const http_req *r);
const char *http_path(const http_req *r);           /* raw, not decoded; borrowed from r */
const char *http_raw_query(const http_req *r);      /* raw, without '?'; "" if none; borrowed from r */
const char *http_param(const http_req *r, size_t i); /* {x} captures, in order; borrowed from r */
const char *http_header(const http_req *r, const char *name); /* borrowed from r */
const char *http_query_arg(const http_req *r, const char *name); /* decoded; borrowed from r */
const char *http_body(const http_req *r, size_t *len); /* borrowed from r */
const char *http_identity(const http_req *r); /* from the bearer token or certificate, or NULL; borrowed from r */
bool http_is_tls(const http_req *r);          /* the request came over TLS */
const char *http_request_id(const http_req *r); /* borrowed from r */
/* The peer address in binary, network order: IPv4 (also an IPv4-mapped
 * IPv6 peer) in the first 4 bytes with *v6 false. false if unknown. */
bool http_peer_addr(const http_req *r, unsigned char bytes[16], bool *v6);

/* The request's Host and target in the canonical forms of common/url.h,
 * the forms every later step of a delivery request works on. 0 when both
 * are fine; else the status to answer (400, or 414 when too long) with
 * *detail saying why. */
typedef struct {
    char host[262];        /* canonical host[:port] */
    size_t host_name_len;  /* without ":port" */
    char target[URL_MAX_LEN + 2]; /* canonical path?query */
    size_t target_len, path_len;
} http_canon;
int http_canon_request(const http_req *r, http_canon *c, const char **detail);

/* --- responses ----------------------------------------------------------- */
void http_reply(http_req *r, int status, const char *content_type, const char *body, size_t len);
/* Takes ownership of a malloc'd body. */
void http_reply_take(http_req *r, int status, const char *content_type, char *body, size_t len);
/* Takes the reference v; content_type NULL means application/json. */
void http_reply_json(http_req *r, int status, const char *content_type, json_t *v);
/* application/problem+json (RFC 9457); extra (may be NULL) is merged in and
 * its reference taken. */
void http_reply_problem(http_req *r, int status, const char *title, const char *detail,
                        json_t *extra);
/* A problem whose "errors" member names the JSON path of the bad value. */
void http_reply_invalid(http_req *r, int status, const char *title, const jerr *e);
void http_add_header(http_req *r, const char *name, const char *value);

/* --- bodies not held in the request -------------------------------------- */
/* len bytes of fd from offset, sent with sendfile(2); fd is closed when the
 * response is done (also on failure). */
void http_reply_fd(http_req *r, int status, const char *content_type, int fd, uint64_t offset,
                   uint64_t len);
/* A body owned by someone else: unref(ref) is called once it is sent. */
void http_reply_shared(http_req *r, int status, const char *content_type, const char *body, size_t len,
                       void (*unref)(void *), void *ref);

/* A body produced while it is sent (suspendable listeners only). read()
 * copies up to max bytes from position pos into buf and returns how many,
 * or HTTP_STREAM_END, HTTP_STREAM_ERROR (the connection is closed), or
 * HTTP_STREAM_WAIT after calling http_stream_pause(s) (under the lock of
 * whatever will call http_stream_wake, so the wake cannot come first).
 * len: the body's length, or HTTP_LEN_UNKNOWN (chunked). free_ud(ud) runs
 * when the response is gone. */
typedef struct http_stream http_stream;
typedef long long (*http_stream_read)(void *ud, http_stream *s, uint64_t pos, char *buf, size_t max);
#define HTTP_STREAM_WAIT 0
#define HTTP_STREAM_END (-1)
#define HTTP_STREAM_ERROR (-2)
#define HTTP_LEN_UNKNOWN UINT64_MAX
void http_reply_stream(http_req *r, int status, const char *content_type, uint64_t len, http_stream_read read,
                       void *ud, void (*free_ud)(void *));
void http_stream_pause(http_stream *s); /* from read() only */
void http_stream_wake(http_stream *s);  /* any thread, once per pause */

/* --- answering later (suspendable listeners only) ------------------------- */
/* The handler cannot answer yet: the connection is suspended until
 * http_resume(r) (any thread, exactly once; call http_park under the lock
 * of whoever will resume, so the resume cannot come first). The handler
 * then runs again for the same request, with http_parked_state(r) giving
 * state back; the state stays the handler's to free. */
void http_park(http_req *r, void *state);
void *http_parked_state(const http_req *r); /* the handler's own */
void http_resume(http_req *r);

/* --- completion ------------------------------------------------------------- */
typedef struct {
    int status;
    uint64_t body_bytes; /* sent (as far as known: a whole body once completed) */
    bool completed;      /* the response went out entirely */
} http_done_info;
/* fn runs once when the request is over (sent, failed or abandoned). */
void http_on_done(http_req *r, void (*fn)(void *ud, const http_done_info *info), void *ud);

#endif
