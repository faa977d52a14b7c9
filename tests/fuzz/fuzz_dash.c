/* libFuzzer: DASH MPD rewriting on arbitrary bytes (libxml2 underneath).
 * Checks: no crash or leak, no more rewrites than URIs (plus the one
 * BaseURL absolutizing may add), and an output only on success. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "manifest/dash.h"

static bool hook(void *ud, const char *uri, size_t n, buf *out)
{
    buf_add(out, uri, n);
    buf_adds(out, "?t=<&>");
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const hosts[] = {"origin.example.com", "a", NULL};
    mf_policy p = {.base = "https://origin.example.com/d/m.mpd", .hosts = hosts, .target = "http://se1:81",
                   .absolutize = size & 1, .hook = (size & 2) ? hook : NULL};
    if (!mf_policy_prepare(&p))
        abort();
    buf out;
    buf_init(&out, 0, 1 << 22);
    dash_stats st;
    dash_status s = dash_rewrite((const char *)data, size, 1 << 20, &p, &out, &st);
    if (st.rewritten > st.uris + 1 || (s != DASH_OK && out.len != 0))
        abort();
    buf_free(&out);
    return 0;
}
