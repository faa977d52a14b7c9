/* HTTP caching semantics (RFC 9111) and the request headers a cache
 * answers itself (Range, RFC 9110 §14; conditionals, RFC 9110 §13), for a
 * shared cache. Pure: no I/O, no allocation; every parser takes (pointer,
 * length) and looks at no more than HC_MAX_HEADER bytes.
 *
 * Freshness when the origin gives none is the heuristic of the Cisco CDS
 * (and of RFC 9111 §4.2.2): a fraction ("age multiplier") of the time since
 * Last-Modified, kept between a minimum and a maximum TTL; without
 * Last-Modified, the minimum. */
#ifndef COMMON_HTTP_CACHE_H
#define COMMON_HTTP_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HC_MAX_HEADER 8192

/* Cache-Control directives of a response; -1: absent. */
typedef struct {
    bool no_store, no_cache, private_, public_, must_revalidate, proxy_revalidate;
    long long max_age, s_maxage, stale_if_error, stale_while_revalidate;
} hc_directives;

void hc_parse_cache_control(const char *s, size_t n, hc_directives *d);

/* An HTTP-date (IMF-fixdate, RFC 850 or asctime), seconds since the epoch;
 * -1 if it is not one. */
long long hc_parse_date(const char *s, size_t n);
/* IMF-fixdate into buf (at least 30 bytes). */
void hc_format_date(long long t, char *buf, size_t cap);

typedef struct {
    double age_multiplier; /* fraction of (Date - Last-Modified), e.g. 0.1 */
    long long min_ttl_s, max_ttl_s;
} hc_heuristic;

/* The parts of a response that decide its caching; NULL: header absent. */
typedef struct {
    int status;
    const char *cache_control, *expires, *date, *last_modified, *age, *pragma;
    bool has_validator;      /* ETag or Last-Modified */
    long long request_time;  /* when the request was sent (epoch s) */
    long long response_time; /* when the response arrived */
} hc_response;

typedef struct {
    bool storable;        /* a shared cache may keep it */
    bool heuristic;       /* ttl came from the heuristic */
    bool always_revalidate; /* no-cache (or Pragma: no-cache) */
    bool must_revalidate; /* never served stale, not even on error */
    long long ttl;        /* freshness lifetime, s */
    long long initial_age; /* the response's age when it arrived (§4.2.3) */
    long long stale_if_error; /* -1: the response does not say */
} hc_verdict;

/* RFC 9111 §3 and §4.2 for a shared cache: no-store and private are not
 * stored; s-maxage, then max-age, then Expires - Date give the lifetime;
 * without any, statuses heuristically cacheable (200, 203, 204, 300, 301,
 * 308, 404, 405, 410, 414, 501) get the heuristic and others are not
 * stored. So a 4xx/5xx is cached only for the lifetime it states. */
void hc_evaluate(const hc_response *r, const hc_heuristic *h, hc_verdict *v);

/* --- Range (one range; RFC 9110 §14.1.2) --------------------------------- */
typedef enum {
    HC_RANGE_NONE,         /* absent, malformed or several ranges: send all */
    HC_RANGE_OK,           /* [*first, *first + *len) */
    HC_RANGE_UNSATISFIABLE /* 416 */
} hc_range_status;

/* The range asked for, against an object of size bytes. */
hc_range_status hc_range(const char *h, size_t n, uint64_t size, uint64_t *first, uint64_t *len);
/* Before the size is known: does the range start at byte 0? (-1 if the
 * header is not one satisfiable single range form, else its first byte;
 * a suffix range "-n" gives -2.) */
long long hc_range_first(const char *h, size_t n);

/* --- conditionals ---------------------------------------------------------- */
/* Would If-None-Match (weak comparison) or, without it, If-Modified-Since
 * make the answer 304? Either header may be NULL; so may etag/last_modified. */
bool hc_not_modified(const char *if_none_match, const char *if_modified_since, const char *etag,
                     const char *last_modified);

#endif
