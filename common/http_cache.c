/* HTTP caching semantics. See http_cache.h. */
#include "common/http_cache.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static size_t bounded(size_t n) { return n > HC_MAX_HEADER ? HC_MAX_HEADER : n; }

static bool is_space(char c) { return c == ' ' || c == '\t'; }

/* A delta-seconds value (RFC 9111 §1.2.2): digits, optionally quoted;
 * too big saturates at 2^31 as the RFC says. -1 if not a number. */
static long long delta_seconds(const char *s, size_t n)
{
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
        s++;
        n -= 2;
    }
    if (!n)
        return -1;
    long long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        if (v < 2147483648LL)
            v = v * 10 + (s[i] - '0');
    }
    return v > 2147483648LL ? 2147483648LL : v;
}

static bool name_is(const char *s, size_t n, const char *name)
{
    return strlen(name) == n && strncasecmp(s, name, n) == 0;
}

void hc_parse_cache_control(const char *s, size_t n, hc_directives *d)
{
    memset(d, 0, sizeof *d);
    d->max_age = d->s_maxage = d->stale_if_error = d->stale_while_revalidate = -1;
    if (!s)
        return;
    n = bounded(n);
    size_t i = 0;
    while (i < n) {
        while (i < n && (is_space(s[i]) || s[i] == ','))
            i++;
        size_t ns = i;
        while (i < n && s[i] != '=' && s[i] != ',' && !is_space(s[i]))
            i++;
        size_t nn = i - ns;
        const char *v = NULL;
        size_t vn = 0;
        while (i < n && is_space(s[i]))
            i++;
        if (i < n && s[i] == '=') {
            i++;
            while (i < n && is_space(s[i]))
                i++;
            v = s + i;
            if (i < n && s[i] == '"') { /* quoted-string: up to the closing quote */
                i++;
                while (i < n && s[i] != '"')
                    i += (s[i] == '\\' && i + 1 < n) ? 2 : 1;
                if (i < n)
                    i++;
            } else {
                while (i < n && s[i] != ',' && !is_space(s[i]))
                    i++;
            }
            vn = (size_t)(s + i - v);
        }
        while (i < n && s[i] != ',') /* ignore anything up to the next directive */
            i++;
        const char *nm = s + ns;
        if (name_is(nm, nn, "no-store"))
            d->no_store = true;
        else if (name_is(nm, nn, "no-cache"))
            d->no_cache = true; /* with field names it still forbids reuse without revalidation here */
        else if (name_is(nm, nn, "private"))
            d->private_ = true;
        else if (name_is(nm, nn, "public"))
            d->public_ = true;
        else if (name_is(nm, nn, "must-revalidate"))
            d->must_revalidate = true;
        else if (name_is(nm, nn, "proxy-revalidate"))
            d->proxy_revalidate = true;
        else if (v && name_is(nm, nn, "max-age"))
            d->max_age = delta_seconds(v, vn);
        else if (v && name_is(nm, nn, "s-maxage"))
            d->s_maxage = delta_seconds(v, vn);
        else if (v && name_is(nm, nn, "stale-if-error"))
            d->stale_if_error = delta_seconds(v, vn);
        else if (v && name_is(nm, nn, "stale-while-revalidate"))
            d->stale_while_revalidate = delta_seconds(v, vn);
    }
}

long long hc_parse_date(const char *s, size_t n)
{
    char b[64];
    if (!s || n == 0 || n >= sizeof b)
        return -1;
    memcpy(b, s, n);
    b[n] = 0;
    time_t t = curl_getdate(b, NULL);
    return t < 0 ? -1 : (long long)t;
}

void hc_format_date(long long t, char *buf, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, cap, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static long long hdr_date(const char *h)
{
    return h ? hc_parse_date(h, strlen(h)) : -1;
}

static bool heuristically_cacheable(int status)
{
    static const int ok[] = {200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (ok[i] == status)
            return true;
    return false;
}

void hc_evaluate(const hc_response *r, const hc_heuristic *h, hc_verdict *v)
{
    memset(v, 0, sizeof *v);
    hc_directives d;
    hc_parse_cache_control(r->cache_control, r->cache_control ? strlen(r->cache_control) : 0, &d);
    v->stale_if_error = d.stale_if_error;
    v->must_revalidate = d.must_revalidate || d.proxy_revalidate || d.s_maxage >= 0;
    v->always_revalidate = d.no_cache || (!r->cache_control && r->pragma && strcasestr(r->pragma, "no-cache"));
    long long date = hdr_date(r->date);
    if (date < 0)
        date = r->response_time;
    /* age (§4.2.3) */
    long long age_value = r->age ? delta_seconds(r->age, strlen(r->age)) : 0;
    if (age_value < 0)
        age_value = 0;
    long long apparent = r->response_time - date;
    if (apparent < 0)
        apparent = 0;
    long long corrected = age_value + (r->response_time - r->request_time);
    v->initial_age = apparent > corrected ? apparent : corrected;
    if (d.no_store || d.private_ || r->status < 200 || r->status == 206) {
        v->storable = false; /* 206 parts are not stored as the object */
        return;
    }
    if (d.s_maxage >= 0) {
        v->ttl = d.s_maxage;
    } else if (d.max_age >= 0) {
        v->ttl = d.max_age;
    } else if (r->expires) {
        long long ex = hdr_date(r->expires);
        v->ttl = ex < 0 ? 0 : ex - date; /* an invalid Expires is in the past */
        if (v->ttl < 0)
            v->ttl = 0;
    } else if (heuristically_cacheable(r->status)) {
        long long lm = hdr_date(r->last_modified);
        long long ttl = h->min_ttl_s;
        if (lm >= 0 && lm <= date)
            ttl = (long long)((double)(date - lm) * h->age_multiplier);
        if (ttl < h->min_ttl_s)
            ttl = h->min_ttl_s;
        if (ttl > h->max_ttl_s)
            ttl = h->max_ttl_s;
        v->ttl = ttl;
        v->heuristic = true;
    } else {
        v->storable = false;
        return;
    }
    /* a response already stale on arrival and without a validator would be
     * refetched at once: storing it only costs */
    v->storable = v->ttl > v->initial_age || r->has_validator;
}

/* --- Range ---------------------------------------------------------------------- */

typedef struct {
    bool suffix;
    unsigned long long first, last; /* last ULLONG_MAX: open */
} one_range;

static bool digits(const char *s, size_t n, size_t *i, unsigned long long *out)
{
    size_t st = *i;
    unsigned long long v = 0;
    while (*i < n && s[*i] >= '0' && s[*i] <= '9') {
        if (v > (~0ULL - 9) / 10)
            return false;
        v = v * 10 + (unsigned)(s[*i] - '0');
        (*i)++;
    }
    *out = v;
    return *i > st;
}

static bool parse_range(const char *h, size_t n, one_range *r)
{
    if (!h)
        return false;
    n = bounded(n);
    size_t i = 0;
    while (i < n && is_space(h[i]))
        i++;
    if (n - i < 6 || strncasecmp(h + i, "bytes=", 6) != 0)
        return false;
    i += 6;
    while (i < n && is_space(h[i]))
        i++;
    r->suffix = false;
    r->last = ~0ULL;
    if (i < n && h[i] == '-') {
        i++;
        r->suffix = true;
        if (!digits(h, n, &i, &r->first))
            return false;
    } else {
        if (!digits(h, n, &i, &r->first) || i >= n || h[i] != '-')
            return false;
        i++;
        if (i < n && h[i] >= '0' && h[i] <= '9') {
            if (!digits(h, n, &i, &r->last) || r->last < r->first)
                return false;
        }
    }
    while (i < n && is_space(h[i]))
        i++;
    return i == n; /* a ',' means several ranges: not ours to split */
}

hc_range_status hc_range(const char *h, size_t n, uint64_t size, uint64_t *first, uint64_t *len)
{
    one_range r;
    if (!parse_range(h, n, &r))
        return HC_RANGE_NONE;
    if (r.suffix) {
        if (r.first == 0 || size == 0)
            return HC_RANGE_UNSATISFIABLE;
        unsigned long long k = r.first > size ? size : r.first;
        *first = size - k;
        *len = k;
        return HC_RANGE_OK;
    }
    if (r.first >= size)
        return HC_RANGE_UNSATISFIABLE;
    unsigned long long last = r.last >= size ? size - 1 : r.last;
    *first = r.first;
    *len = last - r.first + 1;
    return HC_RANGE_OK;
}

long long hc_range_first(const char *h, size_t n)
{
    one_range r;
    if (!parse_range(h, n, &r))
        return -1;
    if (r.suffix)
        return -2;
    return r.first > (unsigned long long)(1LL << 62) ? -1 : (long long)r.first;
}

/* --- conditionals -------------------------------------------------------------- */

/* Weak comparison: W/ prefixes do not count. */
static bool etag_eq(const char *a, size_t an, const char *b, size_t bn)
{
    if (an >= 2 && a[0] == 'W' && a[1] == '/') {
        a += 2;
        an -= 2;
    }
    if (bn >= 2 && b[0] == 'W' && b[1] == '/') {
        b += 2;
        bn -= 2;
    }
    return an == bn && memcmp(a, b, an) == 0;
}

bool hc_not_modified(const char *if_none_match, const char *if_modified_since, const char *etag,
                     const char *last_modified)
{
    if (if_none_match) {
        if (!etag)
            return false;
        size_t n = bounded(strlen(if_none_match)), en = strlen(etag), i = 0;
        while (i < n) {
            while (i < n && (is_space(if_none_match[i]) || if_none_match[i] == ','))
                i++;
            size_t st = i;
            while (i < n && if_none_match[i] != ',' && !is_space(if_none_match[i]))
                i++;
            if (i > st && ((i - st == 1 && if_none_match[st] == '*') ||
                           etag_eq(if_none_match + st, i - st, etag, en)))
                return true;
        }
        return false; /* If-Modified-Since is ignored when If-None-Match is there */
    }
    if (if_modified_since && last_modified) {
        long long ims = hdr_date(if_modified_since), lm = hdr_date(last_modified);
        return ims >= 0 && lm >= 0 && lm <= ims;
    }
    return false;
}
