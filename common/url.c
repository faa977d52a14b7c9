/* RFC 3986 parsing, reference resolution and normalization. See url.h.
 *
 * Parsing follows the component split of Appendix B, then checks each
 * component against the character classes of §3, so a reference that splits
 * but contains, say, a space or a raw control byte is refused rather than
 * passed on to a peer. */
#include "common/url.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <idn2.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

const char *url_status_str(url_status s)
{
    switch (s) {
    case URL_OK: return "ok";
    case URL_ERR_TOO_LONG: return "URI too long";
    case URL_ERR_SYNTAX: return "URI syntax error";
    case URL_ERR_NOMEM: return "out of memory";
    }
    return "?";
}

/* RFC 3986 ALPHA / DIGIT are ASCII whatever the locale says. */
static bool is_alnum(unsigned char c)
{
    return (unsigned char)((c | 0x20) - 'a') < 26 || (unsigned char)(c - '0') < 10;
}
static bool is_unreserved(unsigned char c)
{
    return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}
static bool is_subdelim(unsigned char c) { return c && strchr("!$&'()*+,;=", c) != NULL; }
static bool is_hex(unsigned char c) { return isxdigit(c) != 0; }

/* Every byte of s[0..n) is pchar-ish per the class extra, with valid %XX. */
static bool span_ok(const char *s, size_t n, const char *extra)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n || !is_hex((unsigned char)s[i + 1]) || !is_hex((unsigned char)s[i + 2]))
                return false;
            i += 2;
            continue;
        }
        if (is_unreserved(c) || is_subdelim(c) || (c && strchr(extra, c)))
            continue;
        return false;
    }
    return true;
}

url_status url_parse(const char *s, size_t len, url_ref *u)
{
    memset(u, 0, sizeof *u);
    if (len > URL_MAX_LEN)
        return URL_ERR_TOO_LONG;
    size_t i = 0;
    /* scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":" before any / ? # */
    size_t j = 0;
    while (j < len && s[j] != ':' && s[j] != '/' && s[j] != '?' && s[j] != '#')
        j++;
    if (j < len && s[j] == ':' && j > 0) {
        if (!isalpha((unsigned char)s[0]))
            return URL_ERR_SYNTAX;
        for (size_t k = 1; k < j; k++) {
            unsigned char c = (unsigned char)s[k];
            if (!isalnum(c) && c != '+' && c != '-' && c != '.')
                return URL_ERR_SYNTAX;
        }
        u->scheme = (url_part){0, j, true};
        i = j + 1;
    }
    if (i + 1 < len && s[i] == '/' && s[i + 1] == '/') {
        u->authority = true;
        size_t a = i + 2, e = a;
        while (e < len && s[e] != '/' && s[e] != '?' && s[e] != '#')
            e++;
        size_t h = a;
        for (size_t k = a; k < e; k++)
            if (s[k] == '@') {
                u->userinfo = (url_part){a, k - a, true};
                if (!span_ok(s + a, k - a, ":"))
                    return URL_ERR_SYNTAX;
                h = k + 1;
                break;
            }
        size_t hend = e;
        if (h < e && s[h] == '[') { /* IP-literal */
            size_t k = h + 1;
            while (k < e && s[k] != ']')
                k++;
            if (k == e)
                return URL_ERR_SYNTAX;
            for (size_t q = h + 1; q < k; q++)
                if (!is_hex((unsigned char)s[q]) && s[q] != ':' && s[q] != '.')
                    return URL_ERR_SYNTAX;
            hend = k + 1;
            if (hend < e && s[hend] != ':')
                return URL_ERR_SYNTAX;
        } else {
            for (size_t k = h; k < e; k++)
                if (s[k] == ':') {
                    hend = k;
                    break;
                }
            if (!span_ok(s + h, hend - h, ""))
                return URL_ERR_SYNTAX;
        }
        u->host = (url_part){h, hend - h, true};
        if (hend < e) { /* ":" port */
            u->port = (url_part){hend + 1, e - hend - 1, true};
            if (u->port.len > 5)
                return URL_ERR_SYNTAX;
            long pv = 0;
            for (size_t k = hend + 1; k < e; k++) {
                if (!isdigit((unsigned char)s[k]))
                    return URL_ERR_SYNTAX;
                pv = pv * 10 + (s[k] - '0');
            }
            if (pv > 65535)
                return URL_ERR_SYNTAX;
        }
        i = e;
    }
    size_t p = i;
    while (i < len && s[i] != '?' && s[i] != '#')
        i++;
    u->path = (url_part){p, i - p, true};
    if (!span_ok(s + p, i - p, ":@/"))
        return URL_ERR_SYNTAX;
    if (i < len && s[i] == '?') {
        size_t q = ++i;
        while (i < len && s[i] != '#')
            i++;
        u->query = (url_part){q, i - q, true};
        if (!span_ok(s + q, i - q, ":@/?"))
            return URL_ERR_SYNTAX;
    }
    if (i < len && s[i] == '#') {
        size_t f = ++i;
        u->fragment = (url_part){f, len - f, true};
        if (!span_ok(s + f, len - f, ":@/?"))
            return URL_ERR_SYNTAX;
    }
    return URL_OK;
}

size_t url_remove_dot_segments(char *in, size_t len)
{
    /* §5.2.4, written over the same buffer: the output never outgrows the
     * input, so out trails the read position. */
    size_t r = 0, w = 0;
    while (r < len) {
        if (len - r >= 3 && memcmp(in + r, "../", 3) == 0) {
            r += 3;
        } else if (len - r >= 2 && memcmp(in + r, "./", 2) == 0) {
            r += 2;
        } else if (len - r >= 3 && memcmp(in + r, "/./", 3) == 0) {
            r += 2;
        } else if (len - r == 2 && memcmp(in + r, "/.", 2) == 0) {
            r += 1;
            in[r] = '/';
        } else if ((len - r >= 4 && memcmp(in + r, "/../", 4) == 0) ||
                   (len - r == 3 && memcmp(in + r, "/..", 3) == 0)) {
            r += 3;
            if (r == len) { /* "/.." at the end acts as "/" */
                r--;
                in[r] = '/';
            }
            while (w > 0 && in[w - 1] != '/')
                w--;
            if (w > 0)
                w--;
        } else if ((len - r == 1 && in[r] == '.') || (len - r == 2 && memcmp(in + r, "..", 2) == 0)) {
            r = len;
        } else {
            size_t k = r;
            if (in[k] == '/')
                k++;
            while (k < len && in[k] != '/')
                k++;
            memmove(in + w, in + r, k - r);
            w += k - r;
            r = k;
        }
    }
    return w;
}

typedef struct {
    char *b;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_put(sbuf *sb, const char *s, size_t n)
{
    if (sb->oom)
        return;
    if (sb->n + n + 1 > sb->cap) {
        size_t cap = (sb->n + n + 1) * 2;
        char *nb = realloc(sb->b, cap);
        if (!nb) {
            sb->oom = true;
            return;
        }
        sb->b = nb;
        sb->cap = cap;
    }
    memcpy(sb->b + sb->n, s, n);
    sb->n += n;
    sb->b[sb->n] = 0;
}
#define SB_PART(sb, s, part) sb_put((sb), (s) + (part).off, (part).len)

/* Merge (§5.2.3) of base path and reference path into sb. */
static void merge_paths(sbuf *sb, const char *b, const url_ref *bu, const char *r, const url_ref *ru)
{
    if (bu->authority && bu->path.len == 0) {
        sb_put(sb, "/", 1);
    } else {
        const char *bp = b + bu->path.off;
        size_t k = bu->path.len;
        while (k > 0 && bp[k - 1] != '/')
            k--;
        sb_put(sb, bp, k);
    }
    SB_PART(sb, r, ru->path);
}

static url_status finish(sbuf *sb, char **out)
{
    if (sb->oom) {
        free(sb->b);
        return URL_ERR_NOMEM;
    }
    *out = sb->b ? sb->b : strdup("");
    return *out ? URL_OK : URL_ERR_NOMEM;
}

/* Append authority of u (from string s) into sb. */
static void put_authority(sbuf *sb, const char *s, const url_ref *u)
{
    sb_put(sb, "//", 2);
    if (u->userinfo.present) {
        SB_PART(sb, s, u->userinfo);
        sb_put(sb, "@", 1);
    }
    SB_PART(sb, s, u->host);
    if (u->port.present) {
        sb_put(sb, ":", 1);
        SB_PART(sb, s, u->port);
    }
}

/* Path into sb with dot segments removed. */
static void put_clean_path(sbuf *sb, const char *p, size_t n)
{
    char *tmp = malloc(n + 1);
    if (!tmp) {
        sb->oom = true;
        return;
    }
    memcpy(tmp, p, n);
    size_t m = url_remove_dot_segments(tmp, n);
    sb_put(sb, tmp, m);
    free(tmp);
}

url_status url_resolve(const char *base, size_t base_len, const char *ref, size_t ref_len,
                       char **out)
{
    url_ref b, r;
    url_status st;
    if ((st = url_parse(base, base_len, &b)) != URL_OK)
        return st;
    if ((st = url_parse(ref, ref_len, &r)) != URL_OK)
        return st;
    if (!b.scheme.present)
        return URL_ERR_SYNTAX; /* base must be absolute (§5.1) */
    sbuf sb = {0};
    if (r.scheme.present) {
        SB_PART(&sb, ref, r.scheme);
        sb_put(&sb, ":", 1);
        if (r.authority)
            put_authority(&sb, ref, &r);
        put_clean_path(&sb, ref + r.path.off, r.path.len);
        if (r.query.present) {
            sb_put(&sb, "?", 1);
            SB_PART(&sb, ref, r.query);
        }
    } else {
        SB_PART(&sb, base, b.scheme);
        sb_put(&sb, ":", 1);
        if (r.authority) {
            put_authority(&sb, ref, &r);
            put_clean_path(&sb, ref + r.path.off, r.path.len);
            if (r.query.present) {
                sb_put(&sb, "?", 1);
                SB_PART(&sb, ref, r.query);
            }
        } else {
            if (b.authority)
                put_authority(&sb, base, &b);
            if (r.path.len == 0) {
                SB_PART(&sb, base, b.path);
                const url_part *q = r.query.present ? &r.query : &b.query;
                const char *qs = r.query.present ? ref : base;
                if (q->present) {
                    sb_put(&sb, "?", 1);
                    SB_PART(&sb, qs, *q);
                }
            } else {
                sbuf path = {0};
                if (ref[r.path.off] == '/')
                    SB_PART(&path, ref, r.path);
                else
                    merge_paths(&path, base, &b, ref, &r);
                if (path.oom)
                    sb.oom = true;
                else
                    put_clean_path(&sb, path.b ? path.b : "", path.n);
                free(path.b);
                if (r.query.present) {
                    sb_put(&sb, "?", 1);
                    SB_PART(&sb, ref, r.query);
                }
            }
        }
    }
    if (r.fragment.present) {
        sb_put(&sb, "#", 1);
        SB_PART(&sb, ref, r.fragment);
    }
    return finish(&sb, out);
}

static int hexval(unsigned char c)
{
    return isdigit(c) ? c - '0' : (tolower(c) - 'a' + 10);
}

/* Percent-encoding normalization of one component (§6.2.2.1-2). */
static void put_pct_normalized(sbuf *sb, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n) {
            unsigned char v = (unsigned char)(hexval((unsigned char)s[i + 1]) * 16 +
                                              hexval((unsigned char)s[i + 2]));
            if (is_unreserved(v)) {
                char c = (char)v;
                sb_put(sb, &c, 1);
            } else {
                char e[3] = {'%', hex[v >> 4], hex[v & 15]};
                sb_put(sb, e, 3);
            }
            i += 2;
        } else {
            sb_put(sb, s + i, 1);
        }
    }
}

static void put_lower(sbuf *sb, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = (char)tolower((unsigned char)s[i]);
        sb_put(sb, &c, 1);
    }
}

int url_port(const char *s, const url_ref *u)
{
    if (u->port.present && u->port.len > 0) {
        int p = 0;
        for (size_t i = 0; i < u->port.len; i++)
            p = p * 10 + (s[u->port.off + i] - '0');
        return p <= 65535 ? p : -1;
    }
    if (u->scheme.len == 4 && strncasecmp(s + u->scheme.off, "http", 4) == 0)
        return 80;
    if (u->scheme.len == 5 && strncasecmp(s + u->scheme.off, "https", 5) == 0)
        return 443;
    return -1;
}

url_status url_normalize(const char *s, size_t len, char **out)
{
    url_ref u;
    url_status st = url_parse(s, len, &u);
    if (st != URL_OK)
        return st;
    sbuf sb = {0};
    bool http = false;
    if (u.scheme.present) {
        put_lower(&sb, s + u.scheme.off, u.scheme.len);
        sb_put(&sb, ":", 1);
        http = (u.scheme.len == 4 && strncasecmp(s + u.scheme.off, "http", 4) == 0) ||
               (u.scheme.len == 5 && strncasecmp(s + u.scheme.off, "https", 5) == 0);
    }
    if (u.authority) {
        sb_put(&sb, "//", 2);
        if (u.userinfo.present) {
            put_pct_normalized(&sb, s + u.userinfo.off, u.userinfo.len);
            sb_put(&sb, "@", 1);
        }
        put_lower(&sb, s + u.host.off, u.host.len);
        int explicit_port = u.port.present && u.port.len ? url_port(s, &u) : -1;
        url_ref nodefault = u;
        nodefault.port.present = false;
        if (explicit_port >= 0 && explicit_port != url_port(s, &nodefault)) {
            sb_put(&sb, ":", 1);
            SB_PART(&sb, s, u.port);
        }
    }
    sbuf path = {0};
    put_pct_normalized(&path, s + u.path.off, u.path.len);
    if (path.oom)
        sb.oom = true;
    else if (path.n == 0 && u.authority && http)
        sb_put(&sb, "/", 1);
    else
        put_clean_path(&sb, path.b ? path.b : "", path.n);
    free(path.b);
    if (u.query.present) {
        sb_put(&sb, "?", 1);
        put_pct_normalized(&sb, s + u.query.off, u.query.len);
    }
    if (u.fragment.present) {
        sb_put(&sb, "#", 1);
        put_pct_normalized(&sb, s + u.fragment.off, u.fragment.len);
    }
    return finish(&sb, out);
}

bool url_join(const char *base, const char *ref, char *out, size_t cap)
{
    size_t bl = strlen(base);
    while (bl && base[bl - 1] == '/')
        bl--;
    int n = snprintf(out, cap, "%.*s%s", (int)bl, base, ref);
    return n >= 0 && (size_t)n < cap;
}

/* --- canonical forms --------------------------------------------------------------- */

const char *url_canon_text(url_canon_status s)
{
    switch (s) {
    case URL_CANON_OK: return "ok";
    case URL_CANON_NOT_ORIGIN_FORM: return "the request target is not an absolute path";
    case URL_CANON_CONTROL: return "the request target has a control character or space";
    case URL_CANON_BAD_PERCENT: return "a \"%\" is not followed by two hexadecimal digits";
    case URL_CANON_ENCODED_SLASH: return "an encoded \"/\" (%2F) in the path is refused";
    case URL_CANON_BACKSLASH: return "a \"\\\" in the path is refused";
    case URL_CANON_NUL: return "an encoded NUL (%00) in the path is refused";
    case URL_CANON_FRAGMENT: return "a request target has no fragment";
    case URL_CANON_BAD_HOST: return "not a host name, IPv4 address or [IPv6] address";
    case URL_CANON_BAD_PORT: return "not a port number (1-65535)";
    case URL_CANON_TOO_LONG: return "too long";
    }
    return "?";
}

/* Characters a path may carry raw (pchar and "/"), and a query ("?" too). */
static bool raw_ok(unsigned char c, bool query)
{
    return is_unreserved(c) || is_subdelim(c) || c == ':' || c == '@' || c == '/' || (query && c == '?');
}

url_canon_status url_canon_target(const char *in, size_t len, char *out, size_t cap, size_t *out_len,
                                  size_t *path_len)
{
    static const char hex[] = "0123456789ABCDEF";
    *out_len = *path_len = 0;
    if (cap)
        out[0] = 0;
    if (len == 0 || in[0] != '/')
        return URL_CANON_NOT_ORIGIN_FORM;
    if (len > URL_MAX_LEN)
        return URL_CANON_TOO_LONG;
    size_t w = 0;
    bool query = false;
    size_t plen = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        char put[3];
        size_t n = 1;
        if (c == '?' && !query) {
            /* the path is complete: its dot segments go before the query is written */
            plen = url_remove_dot_segments(out, w);
            w = plen;
            query = true;
            put[0] = '?';
        } else if (c == '%') {
            if (i + 2 >= len || !is_hex((unsigned char)in[i + 1]) || !is_hex((unsigned char)in[i + 2]))
                return URL_CANON_BAD_PERCENT;
            unsigned char v = (unsigned char)(hexval((unsigned char)in[i + 1]) * 16 + hexval((unsigned char)in[i + 2]));
            i += 2;
            if (!query && v == '/')
                return URL_CANON_ENCODED_SLASH;
            if (!query && v == '\\')
                return URL_CANON_BACKSLASH;
            if (!query && v == 0)
                return URL_CANON_NUL;
            if (is_unreserved(v)) {
                put[0] = (char)v;
            } else {
                put[0] = '%', put[1] = hex[v >> 4], put[2] = hex[v & 15];
                n = 3;
            }
        } else if (c <= 0x20 || c == 0x7f) {
            return URL_CANON_CONTROL;
        } else if (c == '#') {
            return URL_CANON_FRAGMENT;
        } else if (c == '\\' && !query) {
            return URL_CANON_BACKSLASH;
        } else if (raw_ok(c, query)) {
            if (c == '/' && !query && w > 0 && out[w - 1] == '/')
                continue; /* "//" is "/" */
            put[0] = (char)c;
        } else { /* printable but not RFC 3986's, or not ASCII: its encoded form */
            put[0] = '%', put[1] = hex[c >> 4], put[2] = hex[c & 15];
            n = 3;
        }
        if (w + n + 1 > cap)
            return URL_CANON_TOO_LONG;
        memcpy(out + w, put, n);
        w += n;
    }
    if (!query) {
        plen = url_remove_dot_segments(out, w);
        w = plen;
    } else if (w == plen + 1) {
        w = plen; /* "?" and nothing: no query */
    }
    if (plen == 0) { /* every segment was a dot segment */
        if (w + 2 > cap)
            return URL_CANON_TOO_LONG;
        memmove(out + 1, out, w);
        out[0] = '/';
        plen = 1;
        w++;
    }
    out[w] = 0;
    *out_len = w;
    *path_len = plen;
    return URL_CANON_OK;
}

/* The last label of a name is numeric (decimal, or 0x hex): resolvers
 * would read the whole name as an IPv4 address in some form. */
static bool numeric_last_label(const char *s, size_t n)
{
    size_t b = n;
    while (b > 0 && s[b - 1] != '.')
        b--;
    const char *l = s + b;
    size_t ln = n - b;
    if (ln == 0)
        return false;
    if (ln >= 2 && l[0] == '0' && (l[1] == 'x' || l[1] == 'X')) {
        for (size_t i = 2; i < ln; i++)
            if (!is_hex((unsigned char)l[i]))
                return false;
        return true;
    }
    for (size_t i = 0; i < ln; i++)
        if (!isdigit((unsigned char)l[i]))
            return false;
    return true;
}

/* Four decimal octets without leading zeros. */
static bool dotted_quad(const char *s, size_t n)
{
    int parts = 0;
    size_t i = 0;
    while (i < n) {
        size_t st = i;
        unsigned v = 0;
        while (i < n && isdigit((unsigned char)s[i]) && i - st < 4)
            v = v * 10 + (unsigned)(s[i++] - '0');
        size_t dl = i - st;
        if (dl == 0 || dl > 3 || v > 255 || (dl > 1 && s[st] == '0'))
            return false;
        parts++;
        if (i < n && (s[i] != '.' || i + 1 == n))
            return false;
        if (i < n)
            i++;
    }
    return parts == 4;
}

url_canon_status url_canon_host(const char *in, size_t len, bool idna, char *out, size_t cap, size_t *name_len)
{
    if (name_len)
        *name_len = 0;
    if (cap)
        out[0] = 0;
    if (len == 0 || len > 1024)
        return len ? URL_CANON_TOO_LONG : URL_CANON_BAD_HOST;
    char name[256];
    size_t nn = 0;
    const char *port = NULL;
    size_t port_len = 0;
    if (in[0] == '[') {
        const char *rb = memchr(in, ']', len);
        if (!rb || rb == in + 1 || (size_t)(rb - in - 1) >= 64)
            return URL_CANON_BAD_HOST;
        char lit[64];
        memcpy(lit, in + 1, (size_t)(rb - in - 1));
        lit[rb - in - 1] = 0;
        struct in6_addr a6;
        if (inet_pton(AF_INET6, lit, &a6) != 1) /* also refuses a zone ("%eth0") */
            return URL_CANON_BAD_HOST;
        char txt[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, &a6, txt, sizeof txt);
        nn = (size_t)snprintf(name, sizeof name, "[%s]", txt);
        size_t rest = len - (size_t)(rb + 1 - in);
        if (rest) {
            if (rb[1] != ':')
                return URL_CANON_BAD_HOST;
            port = rb + 2;
            port_len = rest - 1;
        }
    } else {
        const char *colon = memchr(in, ':', len);
        size_t hn = colon ? (size_t)(colon - in) : len;
        if (colon) {
            port = colon + 1;
            port_len = len - hn - 1;
        }
        bool ascii = true;
        for (size_t i = 0; i < hn; i++)
            ascii &= (unsigned char)in[i] < 0x80;
        char tmp[1025];
        const char *h = in;
        char *alabel = NULL;
        if (!ascii) {
            if (!idna)
                return URL_CANON_BAD_HOST;
            memcpy(tmp, in, hn);
            tmp[hn] = 0;
            if (idn2_to_ascii_8z(tmp, &alabel, IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT) != IDN2_OK || !alabel)
                return URL_CANON_BAD_HOST;
            h = alabel;
            hn = strlen(alabel);
        }
        if (hn && h[hn - 1] == '.')
            hn--; /* the root's empty label */
        bool ok = hn > 0 && hn <= 253;
        size_t label = 0;
        for (size_t i = 0; ok && i < hn; i++) {
            unsigned char c = (unsigned char)tolower((unsigned char)h[i]);
            if (c == '.') {
                ok = label > 0;
                label = 0;
            } else {
                ok = (is_alnum(c) || c == '-' || c == '_') && ++label <= 63;
            }
            name[i] = (char)c;
        }
        ok = ok && label > 0;
        nn = hn;
        idn2_free(alabel);
        if (!ok)
            return URL_CANON_BAD_HOST;
        name[nn] = 0;
        if (numeric_last_label(name, nn) && !dotted_quad(name, nn))
            return URL_CANON_BAD_HOST;
    }
    unsigned long pv = 0;
    if (port && port_len) {
        if (port_len > 16)
            return URL_CANON_BAD_PORT;
        for (size_t i = 0; i < port_len; i++) {
            if (!isdigit((unsigned char)port[i]))
                return URL_CANON_BAD_PORT;
            pv = pv * 10 + (unsigned long)(port[i] - '0');
            if (pv > 65535)
                return URL_CANON_BAD_PORT;
        }
        if (pv == 0)
            return URL_CANON_BAD_PORT;
    }
    int w = pv && pv != 80 && pv != 443 ? snprintf(out, cap, "%s:%lu", name, pv) : snprintf(out, cap, "%s", name);
    if (w < 0 || (size_t)w >= cap)
        return URL_CANON_TOO_LONG;
    if (name_len)
        *name_len = nn;
    return URL_CANON_OK;
}

bool url_same_origin(const char *a, const char *b)
{
    url_ref ua, ub;
    if (!a || !b || url_parse(a, strlen(a), &ua) != URL_OK || url_parse(b, strlen(b), &ub) != URL_OK ||
        !ua.authority || !ub.authority || !ua.scheme.present || !ub.scheme.present)
        return false;
    if (ua.scheme.len != ub.scheme.len || strncasecmp(a + ua.scheme.off, b + ub.scheme.off, ua.scheme.len) != 0)
        return false;
    char ha[300], hb[300];
    size_t na, nb;
    if (url_canon_host(a + ua.host.off, ua.host.len, false, ha, sizeof ha, &na) != URL_CANON_OK ||
        url_canon_host(b + ub.host.off, ub.host.len, false, hb, sizeof hb, &nb) != URL_CANON_OK)
        return false;
    return na == nb && memcmp(ha, hb, na) == 0 && url_port(a, &ua) == url_port(b, &ub);
}

bool url_names_add(url_names *set, const char *s, bool is_url)
{
    url_ref u;
    const char *h = s;
    size_t hl = s ? strlen(s) : 0;
    if (is_url) {
        if (!s || url_parse(s, strlen(s), &u) != URL_OK || !u.host.len)
            return false;
        h = s + u.host.off;
        hl = u.host.len + (u.port.present ? u.port.len + 1 : 0);
    }
    char c[262];
    size_t nl;
    if (!h || url_canon_host(h, hl, true, c, sizeof c, &nl) != URL_CANON_OK || nl >= sizeof *set->v)
        return false;
    c[nl] = 0;
    if (url_names_has(set, c))
        return true;
    char (*nv)[256] = realloc(set->v, (set->n + 1) * sizeof *nv);
    if (!nv)
        return false;
    set->v = nv;
    memcpy(set->v[set->n++], c, nl + 1);
    return true;
}

size_t url_host_name_len(const char *host)
{
    return host[0] == '[' ? strcspn(host, "]") + 1 : strcspn(host, ":");
}

bool url_names_has(const url_names *set, const char *host)
{
    size_t n = url_host_name_len(host);
    for (size_t i = 0; i < set->n; i++)
        if (strlen(set->v[i]) == n && memcmp(set->v[i], host, n) == 0)
            return true;
    return false;
}

void url_names_free(url_names *set)
{
    free(set->v);
    set->v = NULL;
    set->n = 0;
}
