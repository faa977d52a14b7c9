/* libFuzzer: HLS playlist rewriting on arbitrary bytes.
 * Checks: nothing to rewrite gives back the input byte for byte; with a
 * policy that rewrites (absolutizing, with a hook), no overflow, no more
 * rewrites than URIs, and a terminated buffer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "manifest/hls.h"

static bool hook(void *ud, const char *uri, size_t n, buf *out)
{
    buf_add(out, uri, n);
    buf_adds(out, "?t=1");
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const none[] = {NULL};
    static const char *const hosts[] = {"origin.example.com", "a", NULL};
    mf_policy keep = {.base = "http://origin.example.com/d/m.m3u8", .hosts = none, .target = "http://x"};
    if (!mf_policy_prepare(&keep))
        abort();
    buf out;
    buf_init(&out, 0, 0);
    hls_stats st;
    hls_status s = hls_rewrite((const char *)data, size, 1 << 20, &keep, &out, &st);
    if (s == HLS_OK && (out.len != size || memcmp(out.data, data, size) != 0 || st.rewritten))
        abort(); /* nothing was to change, so nothing may have */
    buf_free(&out);
    mf_policy p = {.base = "https://origin.example.com/d/e/m.m3u8?q", .hosts = hosts, .target = "http://se1:81",
                   .absolutize = size & 1, .hook = (size & 2) ? hook : NULL};
    if (!mf_policy_prepare(&p))
        abort();
    buf_init(&out, 0, 4 * size + 4096);
    s = hls_rewrite((const char *)data, size, 1 << 20, &p, &out, &st);
    if (s == HLS_OK && (st.rewritten > st.uris || !out.data || out.data[out.len] != 0))
        abort();
    buf_free(&out);
    return 0;
}
