/* RFC 3986 parsing, reference resolution and normalization. See url.h.
 *
 * Parsing follows the component split of Appendix B, then checks each
 * component against the character classes of §3, so a reference that splits
 * but contains, say, a space or a raw control byte is refused rather than
 * passed on to a peer. */
#include "common/url.h"

#include <ctype.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

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
