/* CDNI Request Routing Redirection interface (RFC 7975): the objects a uCDN
 * sends to a dCDN's RI endpoint and what comes back.
 *
 * Request (POST, application/cdni; ptype=RedirectionRequest):
 *   {"interface": "http", "method": "GET", "scheme": "http",
 *    "http-version": "HTTP/1.1", "host": "video.example", "url": "/a/b?x=1",
 *    "c-ip": "192.0.2.7", "headers": {"user-agent": "..."},
 *    "cdn-path": ["ucdn-a"], "max-hops": 3}
 *   {"interface": "dns", "resolver-ip": "...", "c-subnet": "192.0.2.0/24",
 *    "qname": "video.example", "qtype": "A", "qclass": "IN", "cdn-path": [...],
 *    "max-hops": 3}
 * Response (200, ptype=RedirectionResponse):
 *   {"code": 302, "headers": {"location": "http://..."}, "body": "..."}
 *   {"rcode": 0, "rr": [{"name", "ttl", "type", "class", "rdata"}]}
 * Error (4xx/5xx, ptype=RedirectionError): {"error-code": 404, "reason": "..."}
 * Cache-Control/Expires on the RI response say how long the uCDN may reuse
 * the answer.
 *
 * Loop prevention: each CDN appends its identifier to cdn-path; a CDN that
 * finds itself already on the path, or a path at max-hops, refuses with
 * error-code 508. Pure: no I/O. */
#ifndef INTERFACES_REDIRECTION_H
#define INTERFACES_REDIRECTION_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/jcheck.h"

#define RI_MAX_DOC (256u << 10)
#define RI_MAX_HOPS_DEFAULT 3
#define RI_MEDIA_REQUEST "application/cdni; ptype=RedirectionRequest"
#define RI_MEDIA_RESPONSE "application/cdni; ptype=RedirectionResponse"
#define RI_MEDIA_ERROR "application/cdni; ptype=RedirectionError"

/* error-code values we send */
enum {
    RI_ERR_BAD_REQUEST = 400,   /* malformed or unsupported request */
    RI_ERR_NOT_ACCEPTED = 403,  /* the dCDN will not take this request */
    RI_ERR_NO_ROUTE = 404,      /* nothing here can serve it */
    RI_ERR_UNAVAILABLE = 503,   /* no surrogate available now */
    RI_ERR_LOOP = 508,          /* loop or max-hops */
};

typedef enum { RI_HTTP, RI_DNS } ri_interface;

typedef struct {
    json_t *doc; /* owns every string below */
    ri_interface iface;
    /* HTTP */
    const char *method, *scheme, *http_version, *host, *url, *c_ip;
    json_t *headers; /* object, lower-case names -> strings, or NULL */
    /* DNS */
    const char *resolver_ip, *c_subnet, *qname, *qtype, *qclass;
    /* both */
    json_t *cdn_path; /* array of strings */
    long long max_hops;
} ri_request;

typedef struct {
    json_t *doc;
    int code;
    const char *location; /* headers.location, if any */
    json_t *headers;
    const char *body;
    /* DNS */
    bool dns;
    int rcode;
    json_t *rr;
} ri_response;

bool ri_request_parse(const char *buf, size_t len, ri_request *out, jerr *e);
void ri_request_free(ri_request *r);
/* Builds an HTTP request object (new reference); headers may be NULL. */
json_t *ri_http_request(const char *method, const char *scheme, const char *host,
                        const char *url, const char *c_ip, json_t *headers,
                        const char *const *cdn_path, size_t n_path, int max_hops);

bool ri_response_parse(const char *buf, size_t len, ri_response *out, jerr *e);
void ri_response_free(ri_response *r);
json_t *ri_http_response(int code, const char *location); /* new reference */
json_t *ri_dns_response(const char *name, const char *type, const char *rdata, int ttl); /* new reference */
json_t *ri_error(int code, const char *reason); /* new reference */
/* Parse an error body; false if it is not one. */
bool ri_error_parse(const char *buf, size_t len, int *code, char *reason, size_t cap);

/* --- the client call (a uCDN asking a dCDN) ---------------------------------
 * POSTs req (an ri_http_request) to ri_url with the peer's bearer token
 * on hc (the caller's: egress and TLS set for that peer), and reads the
 * answer: true with the redirect target in location[0..cap) and how long
 * the answer may be reused (*max_age_s: its Cache-Control max-age or
 * s-maxage; -1 none or no-store). false with why[0..why_cap) and
 * *status (0: no answer came; else the status, 4xx a refusal of this
 * request, 5xx the dCDN's trouble). */
struct http_client;
bool ri_call(struct http_client *hc, const char *ri_url, const char *token, const json_t *req, char *location,
             size_t cap, long *max_age_s, long *status, char *why, size_t why_cap);

/* Loop check for a CDN named self: false with *why when the request must be
 * refused (self already on the path, or path length reached max-hops). */
bool ri_loop_ok(const ri_request *r, const char *self, const char **why);

/* --- the content's host across a redirect ------------------------------------
 * A redirect to another CDN's host loses the content's host: the new Host
 * header names the delivering CDN. So the content host travels as the first
 * path segment, as RFC 7975's examples do (http://sur1.dcdn.example/
 * ucdn/example.com): http://dcdn.example/video.example.com/vod/a.ts.
 * A delivering node that does not deliver the Host it is asked for reads
 * the content host from there. */

/* "/" host target into out; false if it does not fit or host is not a
 * host[:port]. */
bool ri_host_path(const char *host, const char *target, char *out, size_t cap);
/* Splits "/<host>/<rest>": the host into host (cap bytes), *rest at
 * "/<rest>". false if the first segment is not a plausible host[:port]. */
bool ri_split_host_path(const char *target, char *host, size_t cap, const char **rest);

#endif
