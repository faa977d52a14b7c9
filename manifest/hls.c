/* HLS playlist rewriting. See hls.h.
 *
 * One pass over the input: lines are found with memchr, copied in runs,
 * and only URIs are looked at, so a playlist of relative URIs that stay
 * relative costs little more than a copy. */
#include "manifest/hls.h"

#include <string.h>

const char *hls_status_text(hls_status s)
{
    static const char *const t[] = {"ok", "not an HLS playlist (no #EXTM3U)", "playlist too large",
                                    "rewrite failed (memory or hook)"};
    return (unsigned)s < sizeof t / sizeof *t ? t[s] : "?";
}

bool hls_is_playlist(const char *in, size_t n)
{
    if (n >= 3 && (unsigned char)in[0] == 0xEF && (unsigned char)in[1] == 0xBB && (unsigned char)in[2] == 0xBF)
        in += 3, n -= 3;
    return n >= 7 && memcmp(in, "#EXTM3U", 7) == 0 && (n == 7 || in[7] == '\n' || in[7] == '\r' ||
                                                        in[7] == ' ' || in[7] == '\t');
}

/* URI-bearing tags and their attributes ("" ends a list). */
static const struct {
    const char *tag;
    const char *attrs[3];
} URI_TAGS[] = {
    {"EXT-X-KEY", {"URI", ""}},
    {"EXT-X-SESSION-KEY", {"URI", ""}},
    {"EXT-X-MAP", {"URI", ""}},
    {"EXT-X-MEDIA", {"URI", ""}},
    {"EXT-X-I-FRAME-STREAM-INF", {"URI", ""}},
    {"EXT-X-PART", {"URI", ""}},
    {"EXT-X-PRELOAD-HINT", {"URI", ""}},
    {"EXT-X-RENDITION-REPORT", {"URI", ""}},
    {"EXT-X-SESSION-DATA", {"URI", ""}},
    {"EXT-X-CONTENT-STEERING", {"SERVER-URI", ""}},
    {"EXT-X-DATERANGE", {"X-ASSET-URI", "X-ASSET-LIST", ""}},
};

/* The URI tag a line "#EXT...:" starts, or -1. */
static int uri_tag(const char *l, size_t n, size_t *attrs_at)
{
    if (n < 6 || l[1] != 'E' || l[2] != 'X' || l[3] != 'T' || l[4] != '-' || l[5] != 'X')
        return -1; /* #EXTINF, #EXTM3U, comments: the common lines, out at once */
    const char *colon = memchr(l, ':', n);
    if (!colon)
        return -1;
    size_t tl = (size_t)(colon - l) - 1;
    for (size_t i = 0; i < sizeof URI_TAGS / sizeof *URI_TAGS; i++)
        if (strlen(URI_TAGS[i].tag) == tl && memcmp(URI_TAGS[i].tag, l + 1, tl) == 0) {
            *attrs_at = (size_t)(colon - l) + 1;
            return (int)i;
        }
    return -1;
}

static bool wanted(int tag, const char *name, size_t n)
{
    for (size_t i = 0; URI_TAGS[tag].attrs[i][0]; i++)
        if (strlen(URI_TAGS[tag].attrs[i]) == n && memcmp(URI_TAGS[tag].attrs[i], name, n) == 0)
            return true;
    return false;
}

/* One attribute-list line; false if it cannot be read (then nothing was
 * written and the caller copies the line). */
static bool rewrite_attrs(const char *l, size_t n, size_t at, int tag, const mf_policy *p, buf *out,
                          hls_stats *st, bool *failed)
{
    /* first pass: check the syntax, so that a bad line is copied whole */
    size_t i = at;
    while (i < n) {
        size_t ns = i;
        while (i < n && l[i] != '=' && l[i] != ',')
            i++;
        if (i == n || l[i] != '=' || i == ns)
            return false;
        i++;
        if (i < n && l[i] == '"') {
            const char *q = memchr(l + i + 1, '"', n - i - 1);
            if (!q)
                return false;
            i = (size_t)(q - l) + 1;
        } else {
            while (i < n && l[i] != ',')
                i++;
        }
        if (i < n && l[i] != ',')
            return false;
        if (i < n)
            i++;
    }
    size_t copied = 0;
    i = at;
    while (i < n) {
        size_t ns = i;
        while (l[i] != '=')
            i++;
        size_t nl = i - ns;
        i++;
        if (i < n && l[i] == '"') {
            size_t vs = i + 1;
            size_t ve = (size_t)((const char *)memchr(l + vs, '"', n - vs) - l);
            if (wanted(tag, l + ns, nl)) {
                st->uris++;
                buf_add(out, l + copied, vs - copied);
                mf_result r = mf_rewrite_uri(p, l + vs, ve - vs, out);
                if (r == MF_FAILED)
                    *failed = true;
                if (r != MF_REWRITTEN)
                    buf_add(out, l + vs, ve - vs);
                else
                    st->rewritten++;
                copied = ve;
            }
            i = ve + 1;
        } else {
            while (i < n && l[i] != ',')
                i++;
        }
        if (i < n)
            i++;
    }
    buf_add(out, l + copied, n - copied);
    return true;
}

hls_status hls_rewrite(const char *in, size_t n, size_t max, const mf_policy *p, buf *out, hls_stats *st)
{
    hls_stats dummy;
    if (!st)
        st = &dummy;
    memset(st, 0, sizeof *st);
    if (n > max)
        return HLS_TOO_LARGE;
    if (!hls_is_playlist(in, n))
        return HLS_NOT_PLAYLIST;
    if (!buf_grow(out, n + n / 8))
        return HLS_FAILED;
    bool failed = false;
    size_t run = 0, pos = 0; /* in[run..pos) is waiting to be copied */
    while (pos < n) {
        const char *nl = memchr(in + pos, '\n', n - pos);
        size_t end = nl ? (size_t)(nl - in) : n; /* the line is in[pos..end) */
        size_t le = end;
        if (le > pos && in[le - 1] == '\r')
            le--;
        const char *l = in + pos;
        size_t ll = le - pos;
        if (ll == 0) {
            /* blank */
        } else if (l[0] == '#') {
            size_t at;
            int tag = ll > 4 && l[1] == 'E' ? uri_tag(l, ll, &at) : -1;
            if (tag >= 0) {
                buf_add(out, in + run, pos - run);
                size_t before = out->len;
                if (!rewrite_attrs(l, ll, at, tag, p, out, st, &failed)) {
                    buf_truncate(out, before);
                    buf_add(out, l, ll);
                    st->unreadable_tags++;
                }
                run = le;
            }
        } else {
            /* a URI line; surrounding white space is not part of it */
            size_t a = 0, b = ll;
            while (a < b && (l[a] == ' ' || l[a] == '\t'))
                a++;
            while (b > a && (l[b - 1] == ' ' || l[b - 1] == '\t'))
                b--;
            st->uris++;
            size_t before = out->len;
            buf_add(out, in + run, pos + a - run);
            mf_result r = mf_rewrite_uri(p, l + a, b - a, out);
            if (r == MF_REWRITTEN) {
                st->rewritten++;
                run = pos + b;
            } else {
                buf_truncate(out, before); /* nothing changed: keep the run going */
                if (r == MF_FAILED)
                    failed = true;
            }
        }
        pos = nl ? end + 1 : n;
    }
    buf_add(out, in + run, n - run);
    return failed || !buf_ok(out) ? HLS_FAILED : HLS_OK;
}
