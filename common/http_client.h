/* HTTP client: libcurl behind one call per request.
 *
 * A client owns one curl easy handle, so connections are reused between
 * requests; it is not thread-safe: give each thread its own. A request is
 * either whole (http_client_do: the body kept, retries with exponential
 * backoff on connection failures and 502/503/504 for idempotent methods)
 * or streamed (http_client_stream: head lines and body pieces handed to
 * the caller as they arrive, never retried). Redirects are never followed (a peer must not steer
 * us elsewhere), and every request passes the client's egress policy
 * (common/egress.h): only http and https, and only to addresses it
 * allows. */
#ifndef COMMON_HTTP_CLIENT_H
#define COMMON_HTTP_CLIENT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/egress.h"

/* Our side of TLS to a peer: the server is always verified (name and
 * chain), against ca if given, else the system's CAs. */
typedef struct {
    const char *ca;         /* PEM bundle; NULL: the system's */
    const char *cert, *key; /* our client certificate (PEM); NULL: none */
    const char *pin;        /* "sha256//<base64>[;...]": the server's key must be one of these */
} http_tls_client;

typedef struct {
    long connect_timeout_ms; /* default 2000 */
    long timeout_ms;         /* whole request, default 10000 */
    int retries;             /* extra attempts, default 2 */
    long backoff_ms;         /* first backoff, doubled each retry, default 100 */
    size_t max_body;         /* responses larger than this fail, default 64 MiB */
    bool keep_encoding;      /* bodies as sent (gzip stays gzip'd); default: decoded */
    const egress_policy *egress; /* borrowed, outlives the client; NULL: public addresses only */
    const http_tls_client *tls;  /* borrowed; NULL: system CAs, no client certificate */
    long stall_timeout_s;        /* a transfer under 1 byte/s for this long fails; 0: none */
    const char *user_agent;      /* borrowed; NULL: libcurl sends none */
    /* polled during transfers: true ends the one in flight at once (shutting down) */
    bool (*cancelled)(void *ud);
    void *cancelled_ud;
} http_client_conf;

typedef struct {
    long status;         /* 0 when no HTTP answer came */
    char *body;          /* malloc'd, NUL-terminated; caller frees */
    size_t body_len;
    char etag[256];      /* ETag response header, "" if none */
    char content_type[128];
    char cache_control[128];
    char location[1024];
    char error[256];     /* transport error text when status is 0 */
    bool refused;        /* the egress policy refused the URL or its address */
} http_result;

typedef struct http_client http_client;

http_client *http_client_new(const http_client_conf *conf); /* NULL conf: defaults; new: http_client_free */
void http_client_free(http_client *c);

/* headers: NULL-terminated "Name: value" strings (may be NULL).
 * body may be NULL for no body; c NULL fails like a transport error. Returns 0 when an HTTP answer came (any
 * status), -1 otherwise (res->error says why). Free res->body. */
int http_client_do(http_client *c, const char *method, const char *url,
                   const char *const *headers, const char *body, size_t body_len,
                   http_result *res);

void http_result_free(http_result *res);

/* A streamed request. on_head gets each line of every response head as it
 * arrives, status lines included, with its CRLF ("HTTP/1.1 200 OK\r\n",
 * "ETag: \"x\"\r\n", the blank line that ends the head); on_body each
 * piece of the body. Either returning false ends the transfer (FAILED).
 * HTTP/1.1 is spoken, and the body is handed over as sent (no decoding). */
typedef struct {
    bool (*on_head)(void *ud, const char *line, size_t len);
    bool (*on_body)(void *ud, const char *p, size_t len);
    void *ud;
} http_stream_cb;
typedef enum {
    HTTP_STREAM_DONE,        /* the whole answer came */
    HTTP_STREAM_REFUSED,     /* the egress policy refused the URL: nothing was sent */
    HTTP_STREAM_REFUSED_ADDR,/* it refused the address the name led to */
    HTTP_STREAM_TIMEOUT,     /* connecting or the transfer took too long */
    HTTP_STREAM_UNREACHABLE, /* no connection (refused, or the name did not resolve) */
    HTTP_STREAM_FAILED,      /* anything else, a callback's false and cancellation included */
} http_stream_end;
/* headers as for http_client_do; err[0..cap) gets why it did not end DONE. */
http_stream_end http_client_stream(http_client *c, const char *method, const char *url, const char *const *headers,
                                   const http_stream_cb *cb, char *err, size_t cap);

/* The policy the next requests pass instead of the conf's (a per-thread
 * client used for URLs of several peers, each with its own); NULL: back to
 * the conf's. p is borrowed. */
void http_client_use_egress(http_client *c, const egress_policy *p);
/* Likewise the TLS settings of the next requests; NULL: the conf's. */
void http_client_use_tls(http_client *c, const http_tls_client *t);

/* One client per thread for one purpose (RI calls, origin fetches): the
 * slot is a static of the caller's, HTTP_CLIENT_SLOT_INIT; the client is
 * made with conf on the thread's first call and freed when the thread
 * ends. NULL on failure. */
typedef struct {
    pthread_once_t once;
    pthread_key_t key;
} http_client_slot;
#define HTTP_CLIENT_SLOT_INIT {PTHREAD_ONCE_INIT, 0}
/* Borrowed: the thread's own, freed when the thread ends. */
http_client *http_client_per_thread(http_client_slot *slot, const http_client_conf *conf);

#endif
