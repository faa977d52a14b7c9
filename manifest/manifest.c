/* HLS or DASH dispatch. See manifest.h. */
#include "manifest/manifest.h"

#include <strings.h>

const char *mf_kind_name(mf_kind k)
{
    return k == MF_HLS ? "hls" : k == MF_DASH ? "dash" : "unknown";
}

mf_kind mf_detect(const char *in, size_t n)
{
    if (hls_is_playlist(in, n))
        return MF_HLS;
    if (dash_is_mpd(in, n))
        return MF_DASH;
    return MF_UNKNOWN;
}

mf_kind mf_kind_of_path(const char *path, size_t len)
{
    size_t e = len;
    while (e > 0 && path[e - 1] != '.' && path[e - 1] != '/')
        e--;
    if (e == 0 || path[e - 1] != '.')
        return MF_UNKNOWN;
    const char *ext = path + e;
    size_t n = len - e;
    if ((n == 4 && strncasecmp(ext, "m3u8", 4) == 0) || (n == 3 && strncasecmp(ext, "m3u", 3) == 0))
        return MF_HLS;
    if (n == 3 && strncasecmp(ext, "mpd", 3) == 0)
        return MF_DASH;
    return MF_UNKNOWN;
}

bool mf_rewrite(const char *in, size_t n, size_t max, const mf_policy *p, buf *out, mf_report *r)
{
    *r = (mf_report){.kind = mf_detect(in, n)};
    size_t at = out->len;
    if (r->kind == MF_HLS) {
        hls_stats st;
        hls_status s = hls_rewrite(in, n, max, p, out, &st);
        r->uris = st.uris;
        r->rewritten = st.rewritten;
        if (s != HLS_OK) {
            r->error = hls_status_text(s);
            buf_truncate(out, at);
        }
        return s == HLS_OK;
    }
    if (r->kind == MF_DASH) {
        dash_stats st;
        dash_status s = dash_rewrite(in, n, max, p, out, &st);
        r->uris = st.uris;
        r->rewritten = st.rewritten;
        if (s != DASH_OK) {
            r->error = dash_status_text(s);
            buf_truncate(out, at);
        }
        return s == DASH_OK;
    }
    r->error = "neither an HLS playlist nor a DASH MPD";
    return false;
}

bool mf_acceptable(const char *in, size_t n, const char **why)
{
    /* the rewrite that serving does, with nothing to rewrite */
    static const char *const none[] = {NULL};
    mf_policy p = {.base = "http://publish.invalid/m", .hosts = none, .target = "http://publish.invalid"};
    buf out;
    buf_init(&out, n + 64, 2 * n + 1024);
    mf_report r;
    bool ok = mf_policy_prepare(&p) && mf_rewrite(in, n, n, &p, &out, &r);
    buf_free(&out);
    *why = ok ? NULL : r.kind == MF_UNKNOWN ? "neither an HLS playlist (#EXTM3U) nor a DASH MPD"
                                            : r.error ? r.error : "cannot be served";
    return ok;
}
